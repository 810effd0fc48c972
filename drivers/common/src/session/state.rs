//! The state folder: everything a session keeps between runs, in one
//! documented, versioned format (`docs/state-folder.md`).
//!
//! ```text
//! STATE/lock                     held (flock) by the running session
//! STATE/session                  queue order and settings changed at run time
//! STATE/dht                      the DHT node's id and nodes
//! STATE/torrents/<hash>/torrent  the .torrent (as added, or built from a magnet's metadata)
//! STATE/torrents/<hash>/magnet   the magnet link, until its metadata arrives
//! STATE/torrents/<hash>/settings what the user chose for it, and its lifetime totals
//! STATE/torrents/<hash>/resume   verified pieces (see `crate::resume`)
//! STATE/corrupt/<hash>[.N]/      entries that could not be read, set aside
//! ```
//!
//! Files are bencoded dictionaries with a `version`. Every write goes to
//! a temporary file that is fsynced, renamed over the old one, and the
//! folder fsynced, so a `kill -9` or power cut leaves either the old file
//! or the new one, never a torn one. A torrent is on disk (its .torrent or
//! magnet and settings) before it is added to the engine, so an added
//! torrent survives any crash.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bittide_core::bencode::{self, Value};
use bittide_core::picker::Priority;
use bittide_core::InfoHash;

use super::views::SessionSettings;
use crate::disk::ContentLayout;

/// Format version of `session` and `settings` files.
const VERSION: i64 = 1;

/// A registry file of the state folder `root` (categories, tags), read
/// with `decode`: a missing file is an empty registry, an unreadable one
/// an empty registry and a warning (it is rewritten at the next change).
pub(crate) fn load_registry<T: Default>(
    root: &Path,
    name: &str,
    decode: impl FnOnce(&[u8]) -> Option<T>,
    warnings: &mut Vec<String>,
) -> T {
    let path = root.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
            warnings.push(format!("{}: not a {name} file; ignored", path.display()));
            T::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => T::default(),
        Err(e) => {
            warnings.push(format!("{}: {e}", path.display()));
            T::default()
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new
/// content: temporary file, fsync, rename, fsync of the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    std::fs::create_dir_all(dir)?;
    // A name of its own per write: two writes of one file at once must
    // not share a temporary.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The state folder of a session.
#[derive(Clone, Debug)]
pub(crate) struct StateDir {
    root: PathBuf,
}

/// What the user chose for one torrent, and what it did in earlier runs.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct TorrentSettings {
    /// The folder that holds its content.
    pub save_path: PathBuf,
    /// The name its top folder (or single file) was renamed to.
    pub root_name: Option<String>,
    /// How its files are laid out under `save_path`.
    pub content_layout: ContentLayout,
    /// Paused by the user (or its seeding goal).
    pub paused: bool,
    /// Force-started: outside the queue's active limits.
    pub force_start: bool,
    pub sequential: bool,
    pub first_last_piece: bool,
    pub category: Option<String>,
    pub tags: Vec<String>,
    /// File priorities (`None`: all normal).
    pub priorities: Option<Vec<Priority>>,
    /// A magnet's file selection, applied when its metadata arrives.
    pub only: Option<Vec<usize>>,
    pub upload_limit: u64,
    pub download_limit: u64,
    /// Seconds since the Unix epoch.
    pub added_at: u64,
    pub completed_at: Option<u64>,
    /// Payload bytes of earlier runs.
    pub downloaded: u64,
    pub uploaded: u64,
    /// Seconds spent seeding in earlier runs (for the seeding-time goal).
    pub seeding_time: u64,
    /// Peers the user gave when adding it, tried again at every start.
    pub peers: Vec<std::net::SocketAddr>,
    /// Its own seeding goal (`None`: the session's).
    pub share_limits: Option<super::shares::ShareLimits>,
}

/// What the `session` file holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SessionFile {
    /// Info-hashes in queue order.
    pub queue: Vec<InfoHash>,
    /// Settings changed at run time (they win over the config file's).
    pub settings: Option<SessionSettings>,
}

/// A torrent as found in the state folder.
#[derive(Debug)]
pub(crate) struct StoredTorrent {
    pub info_hash: InfoHash,
    /// The .torrent, once known.
    pub torrent: Option<Vec<u8>>,
    /// The magnet link, while the metadata is not in.
    pub magnet: Option<String>,
    pub settings: TorrentSettings,
}

/// `content_layout` in the settings files: 0 original, 1 subfolder, 2 no
/// subfolder (absent or unknown: original, as before it existed).
fn layout_code(l: ContentLayout) -> i64 {
    match l {
        ContentLayout::Original => 0,
        ContentLayout::Subfolder => 1,
        ContentLayout::NoSubfolder => 2,
    }
}

fn layout_from_code(n: Option<i64>) -> ContentLayout {
    match n {
        Some(1) => ContentLayout::Subfolder,
        Some(2) => ContentLayout::NoSubfolder,
        _ => ContentLayout::Original,
    }
}

fn priority_code(p: Priority) -> i64 {
    match p {
        Priority::Skip => 0,
        Priority::Low => 1,
        Priority::Normal => 4,
        Priority::High => 7,
    }
}

fn priority_from_code(n: i64) -> Priority {
    match n {
        ..=0 => Priority::Skip,
        1..=3 => Priority::Low,
        4..=6 => Priority::Normal,
        _ => Priority::High,
    }
}

fn int(n: u64) -> Value<'static> {
    Value::int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn uint(v: Option<&Value<'_>>) -> Option<u64> {
    v?.as_int().and_then(|n| u64::try_from(n).ok())
}

fn text(v: Option<&Value<'_>>) -> Option<String> {
    v?.as_str().map(str::to_owned)
}

impl TorrentSettings {
    /// The torrent's files where these settings put them.
    pub(crate) fn storage(
        &self,
        metainfo: &bittide_core::metainfo::Metainfo<'_>,
    ) -> crate::disk::Storage {
        crate::disk::Storage::new(&self.save_path, metainfo)
            .with_root(self.root_name.clone())
            .with_layout(self.content_layout)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let path = self.save_path.as_os_str().as_bytes();
        let tags: Vec<Value<'_>> = self
            .tags
            .iter()
            .map(|t| Value::bytes(t.as_bytes()))
            .collect();
        let mut entries = vec![
            (&b"version"[..], Value::int(VERSION)),
            (b"save_path", Value::bytes(path)),
            (b"paused", Value::int(i64::from(self.paused))),
            (b"force_start", Value::int(i64::from(self.force_start))),
            (
                b"content_layout",
                Value::int(layout_code(self.content_layout)),
            ),
            (b"sequential", Value::int(i64::from(self.sequential))),
            (
                b"first_last_piece",
                Value::int(i64::from(self.first_last_piece)),
            ),
            (b"tags", Value::list(tags)),
            (b"upload_limit", int(self.upload_limit)),
            (b"download_limit", int(self.download_limit)),
            (b"added_at", int(self.added_at)),
            (b"downloaded", int(self.downloaded)),
            (b"uploaded", int(self.uploaded)),
            (b"seeding_time", int(self.seeding_time)),
        ];
        let peers: Vec<String> = self.peers.iter().map(|p| p.to_string()).collect();
        if !peers.is_empty() {
            let list = peers.iter().map(|p| Value::bytes(p.as_bytes())).collect();
            entries.push((b"peers", Value::list(list)));
        }
        if let Some(c) = &self.category {
            entries.push((b"category", Value::bytes(c.as_bytes())));
        }
        if let Some(r) = &self.root_name {
            entries.push((b"root_name", Value::bytes(r.as_bytes())));
        }
        if let Some(p) = &self.priorities {
            let list = p.iter().map(|&p| Value::int(priority_code(p))).collect();
            entries.push((b"priorities", Value::list(list)));
        }
        if let Some(o) = &self.only {
            entries.push((
                b"only",
                Value::list(o.iter().map(|&i| int(i as u64)).collect()),
            ));
        }
        if let Some(t) = self.completed_at {
            entries.push((b"completed_at", int(t)));
        }
        entries.extend(super::shares::encode(self.share_limits.as_ref()));
        Value::dict(entries).to_vec()
    }

    /// `None` if the bytes are not a settings file of this version.
    pub(crate) fn decode(bytes: &[u8]) -> Option<TorrentSettings> {
        let root = bencode::decode(bytes).ok()?;
        let d = root.as_dict()?;
        if d.get(b"version")?.as_int()? != VERSION {
            return None;
        }
        let flag = |k: &[u8]| d.get(k).and_then(Value::as_int).unwrap_or(0) != 0;
        let save_path = d.get(b"save_path")?.as_bytes()?;
        Some(TorrentSettings {
            save_path: PathBuf::from(std::ffi::OsStr::from_bytes(save_path)),
            root_name: text(d.get(b"root_name")),
            paused: flag(b"paused"),
            force_start: flag(b"force_start"),
            content_layout: layout_from_code(d.get(b"content_layout").and_then(Value::as_int)),
            sequential: flag(b"sequential"),
            first_last_piece: flag(b"first_last_piece"),
            category: text(d.get(b"category")),
            tags: d
                .get(b"tags")
                .and_then(Value::as_list)
                .map(|l| l.iter().filter_map(|t| text(Some(t))).collect())
                .unwrap_or_default(),
            priorities: d.get(b"priorities").and_then(Value::as_list).map(|l| {
                l.iter()
                    .map(|p| priority_from_code(p.as_int().unwrap_or(4)))
                    .collect()
            }),
            only: d.get(b"only").and_then(Value::as_list).map(|l| {
                l.iter()
                    .filter_map(|i| uint(Some(i)).map(|i| i as usize))
                    .collect()
            }),
            upload_limit: uint(d.get(b"upload_limit")).unwrap_or(0),
            download_limit: uint(d.get(b"download_limit")).unwrap_or(0),
            added_at: uint(d.get(b"added_at")).unwrap_or(0),
            completed_at: uint(d.get(b"completed_at")),
            downloaded: uint(d.get(b"downloaded")).unwrap_or(0),
            uploaded: uint(d.get(b"uploaded")).unwrap_or(0),
            seeding_time: uint(d.get(b"seeding_time")).unwrap_or(0),
            peers: d
                .get(b"peers")
                .and_then(Value::as_list)
                .map(|l| {
                    l.iter()
                        .filter_map(|p| p.as_str()?.parse().ok())
                        .take(crate::resume::MAX_PEERS)
                        .collect()
                })
                .unwrap_or_default(),
            share_limits: super::shares::decode(d),
        })
    }
}

fn opt_int(n: Option<u64>) -> Value<'static> {
    n.map_or(Value::int(-1), int)
}

fn from_opt_int(v: Option<&Value<'_>>) -> Option<u64> {
    uint(v)
}

impl SessionFile {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let queue = self.queue.iter().map(|h| Value::bytes(&h.0)).collect();
        let mut entries = vec![
            (&b"version"[..], Value::int(VERSION)),
            (b"queue", Value::list(queue)),
        ];
        let dir;
        if let Some(s) = &self.settings {
            dir = s.download_dir.as_os_str().as_bytes().to_vec();
            let ratio = s.seed_ratio.map(|r| (r * 1000.0).round() as u64);
            entries.push((
                b"settings",
                Value::dict(vec![
                    (&b"upload_rate"[..], int(s.upload_rate)),
                    (b"download_rate", int(s.download_rate)),
                    (b"max_connections", int(s.max_connections as u64)),
                    (
                        b"active_downloads",
                        opt_int(s.active_downloads.map(|n| n as u64)),
                    ),
                    (b"active_seeds", opt_int(s.active_seeds.map(|n| n as u64))),
                    (b"seed_ratio_milli", opt_int(ratio)),
                    (b"seed_time", opt_int(s.seed_time)),
                    (b"seed_inactive_time", opt_int(s.seed_inactive_time)),
                    (b"content_layout", Value::int(layout_code(s.content_layout))),
                    (
                        b"seed_goal_remove",
                        Value::int(i64::from(s.seed_goal_remove)),
                    ),
                    (b"download_dir", Value::bytes(&dir)),
                ]),
            ));
        }
        Value::dict(entries).to_vec()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<SessionFile> {
        let root = bencode::decode(bytes).ok()?;
        let d = root.as_dict()?;
        if d.get(b"version")?.as_int()? != VERSION {
            return None;
        }
        let queue = d
            .get(b"queue")?
            .as_list()?
            .iter()
            .filter_map(|h| Some(InfoHash(h.as_bytes()?.try_into().ok()?)))
            .collect();
        let settings = match d.get(b"settings").and_then(Value::as_dict) {
            None => None,
            Some(s) => Some(SessionSettings {
                upload_rate: uint(s.get(b"upload_rate")).unwrap_or(0),
                download_rate: uint(s.get(b"download_rate")).unwrap_or(0),
                max_connections: uint(s.get(b"max_connections")).unwrap_or(0) as usize,
                active_downloads: from_opt_int(s.get(b"active_downloads")).map(|n| n as usize),
                active_seeds: from_opt_int(s.get(b"active_seeds")).map(|n| n as usize),
                seed_ratio: from_opt_int(s.get(b"seed_ratio_milli")).map(|n| n as f64 / 1000.0),
                seed_time: from_opt_int(s.get(b"seed_time")),
                seed_inactive_time: from_opt_int(s.get(b"seed_inactive_time")),
                content_layout: layout_from_code(s.get(b"content_layout").and_then(Value::as_int)),
                seed_goal_remove: s.get(b"seed_goal_remove").and_then(Value::as_int) == Some(1),
                download_dir: PathBuf::from(std::ffi::OsStr::from_bytes(
                    s.get(b"download_dir")?.as_bytes()?,
                )),
            }),
        };
        Some(SessionFile { queue, settings })
    }
}

/// Why the state folder cannot be used at all.
#[derive(Debug)]
pub enum StateError {
    /// Another session holds it.
    Locked(PathBuf),
    /// It cannot be created or read.
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Locked(p) => write!(
                f,
                "{}: another bittide session is using this state folder",
                p.display()
            ),
            StateError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for StateError {}

/// The lock on a state folder, held while the session runs (released
/// when dropped, or by the kernel when the process dies).
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

impl StateDir {
    pub(crate) fn new(root: PathBuf) -> StateDir {
        StateDir { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the folder and takes its lock: two sessions on one state
    /// folder would overwrite each other's files.
    pub(crate) fn lock(&self) -> Result<StateLock, StateError> {
        let io = |e| StateError::Io(self.root.clone(), e);
        std::fs::create_dir_all(self.root.join("torrents")).map_err(io)?;
        let path = self.root.join("lock");
        let file = File::create(&path).map_err(|e| StateError::Io(path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked(self.root.clone()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StateError::Io(path, e)),
        }
        Ok(StateLock { _file: file })
    }

    pub(crate) fn torrent_dir(&self, h: &InfoHash) -> PathBuf {
        self.root.join("torrents").join(h.to_string())
    }

    pub(crate) fn dht_file(&self) -> PathBuf {
        self.root.join("dht")
    }

    fn session_file(&self) -> PathBuf {
        self.root.join("session")
    }

    /// Writes a new torrent's files: its .torrent or magnet, and settings.
    pub(crate) fn save_new(
        &self,
        h: &InfoHash,
        torrent: Option<&[u8]>,
        magnet: Option<&str>,
        settings: &TorrentSettings,
    ) -> io::Result<()> {
        let dir = self.torrent_dir(h);
        if let Some(t) = torrent {
            write_atomic(&dir.join("torrent"), t)?;
        }
        if let Some(m) = magnet {
            write_atomic(&dir.join("magnet"), m.as_bytes())?;
        }
        self.save_settings(h, settings)
    }

    /// A magnet's metadata arrived: its .torrent replaces the link.
    pub(crate) fn save_metadata(&self, h: &InfoHash, torrent: &[u8]) -> io::Result<()> {
        let dir = self.torrent_dir(h);
        write_atomic(&dir.join("torrent"), torrent)?;
        match std::fs::remove_file(dir.join("magnet")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(crate) fn save_settings(&self, h: &InfoHash, s: &TorrentSettings) -> io::Result<()> {
        write_atomic(&self.torrent_dir(h).join("settings"), &s.encode())
    }

    pub(crate) fn read_torrent(&self, h: &InfoHash) -> io::Result<Vec<u8>> {
        std::fs::read(self.torrent_dir(h).join("torrent"))
    }

    /// Forgets a torrent (its resume data too).
    pub(crate) fn remove(&self, h: &InfoHash) -> io::Result<()> {
        match std::fs::remove_dir_all(self.torrent_dir(h)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(crate) fn save_session(&self, file: &SessionFile) -> io::Result<()> {
        write_atomic(&self.session_file(), &file.encode())
    }

    /// The `session` file; a corrupt one is set aside (named in the
    /// warnings) and the defaults apply.
    pub(crate) fn load_session(&self, warnings: &mut Vec<String>) -> SessionFile {
        let path = self.session_file();
        let Ok(bytes) = std::fs::read(&path) else {
            return SessionFile::default();
        };
        match SessionFile::decode(&bytes) {
            Some(f) => f,
            None => {
                let aside = self.root.join("session.corrupt");
                let _ = std::fs::rename(&path, &aside);
                warnings.push(format!(
                    "{}: not a session file of this version; set aside as {}",
                    path.display(),
                    aside.display()
                ));
                SessionFile::default()
            }
        }
    }

    /// Every torrent in the folder. One that cannot be read is moved to
    /// `corrupt/` and named in `warnings`; the others load.
    pub(crate) fn load_torrents(&self, warnings: &mut Vec<String>) -> Vec<StoredTorrent> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.root.join("torrents")) else {
            return out;
        };
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            match read_entry(&dir) {
                Ok(Some(t)) => out.push(t),
                // A folder with resume data only (a one-shot download's).
                Ok(None) => {}
                Err(why) => {
                    let aside = self.set_aside(&dir);
                    warnings.push(format!(
                        "{}: {why}; set aside as {}",
                        dir.display(),
                        aside.display()
                    ));
                }
            }
        }
        out
    }

    fn set_aside(&self, dir: &Path) -> PathBuf {
        let name = dir.file_name().map(|n| n.to_owned()).unwrap_or_default();
        let corrupt = self.root.join("corrupt");
        let _ = std::fs::create_dir_all(&corrupt);
        let mut target = corrupt.join(&name);
        let mut n = 1;
        while target.exists() {
            let mut with_n = name.clone();
            with_n.push(format!(".{n}"));
            target = corrupt.join(with_n);
            n += 1;
        }
        let _ = std::fs::rename(dir, &target);
        target
    }
}

/// One `torrents/<hash>` folder: `Ok(None)` if it holds no torrent (only
/// resume data), `Err` with why if it cannot be used.
fn read_entry(dir: &Path) -> Result<Option<StoredTorrent>, String> {
    let torrent = std::fs::read(dir.join("torrent")).ok();
    let magnet = std::fs::read(dir.join("magnet")).ok();
    if torrent.is_none() && magnet.is_none() {
        return Ok(None);
    }
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the folder name is not an info-hash")?;
    let info_hash =
        InfoHash::from_hex(name.as_bytes()).ok_or("the folder name is not an info-hash")?;
    let settings = std::fs::read(dir.join("settings"))
        .ok()
        .and_then(|b| TorrentSettings::decode(&b))
        .ok_or("settings missing or not readable")?;
    let magnet = match magnet {
        Some(m) => Some(String::from_utf8(m).map_err(|_| "magnet is not UTF-8")?),
        None => None,
    };
    Ok(Some(StoredTorrent {
        info_hash,
        torrent,
        magnet,
        settings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip() {
        let s = TorrentSettings {
            save_path: PathBuf::from("/tmp/x y"),
            root_name: Some("renamed".into()),
            content_layout: ContentLayout::NoSubfolder,
            paused: true,
            force_start: true,
            sequential: true,
            first_last_piece: false,
            category: Some("linux".into()),
            tags: vec!["a".into(), "b".into()],
            priorities: Some(vec![
                Priority::Skip,
                Priority::Low,
                Priority::Normal,
                Priority::High,
            ]),
            only: Some(vec![0, 3]),
            upload_limit: 10,
            download_limit: 20,
            added_at: 1_700_000_000,
            completed_at: Some(1_700_000_100),
            downloaded: 1 << 40,
            uploaded: 5,
            seeding_time: 3600,
            peers: vec![
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:1".parse().unwrap(),
            ],
            share_limits: Some(super::super::shares::ShareLimits {
                ratio: Some(2.0),
                seeding_time: None,
                inactive_time: Some(std::time::Duration::from_secs(300)),
            }),
        };
        assert_eq!(TorrentSettings::decode(&s.encode()), Some(s));
        assert_eq!(TorrentSettings::decode(b"d7:versioni9ee"), None);
        assert_eq!(TorrentSettings::decode(b"garbage"), None);
    }

    #[test]
    fn session_file_round_trip() {
        let f = SessionFile {
            queue: vec![InfoHash([1; 20]), InfoHash([2; 20])],
            settings: Some(SessionSettings {
                upload_rate: 1,
                download_rate: 2,
                max_connections: 3,
                active_downloads: Some(2),
                active_seeds: None,
                seed_ratio: Some(1.5),
                seed_time: Some(3600),
                seed_inactive_time: Some(600),
                content_layout: ContentLayout::Subfolder,
                seed_goal_remove: true,
                download_dir: PathBuf::from("/d"),
            }),
        };
        assert_eq!(SessionFile::decode(&f.encode()), Some(f));
    }

    #[test]
    fn a_corrupt_entry_is_set_aside_and_the_others_load() {
        let root = std::env::temp_dir().join(format!("bittide-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let state = StateDir::new(root.clone());
        let _lock = state.lock().unwrap();
        let good = InfoHash([7; 20]);
        let settings = TorrentSettings {
            save_path: root.join("dl"),
            ..TorrentSettings::default()
        };
        state
            .save_new(&good, None, Some("magnet:?xt=urn:btih:0707"), &settings)
            .unwrap();
        let bad = InfoHash([8; 20]);
        state
            .save_new(&bad, Some(b"torrent"), None, &settings)
            .unwrap();
        std::fs::write(state.torrent_dir(&bad).join("settings"), b"d7:ver").unwrap();
        let mut warnings = Vec::new();
        let loaded = state.load_torrents(&mut warnings);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].info_hash, good);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains(&bad.to_string()), "{warnings:?}");
        assert!(root.join("corrupt").join(bad.to_string()).exists());
        // A second session cannot take the folder while the first holds it.
        assert!(matches!(state.lock(), Err(StateError::Locked(_))));
        let _ = std::fs::remove_dir_all(&root);
    }
}
