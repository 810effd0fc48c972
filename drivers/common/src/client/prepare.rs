//! Before a torrent runs: its .torrent read into storage, resume data and
//! file selection (`prepare`, and `magnet_ready` once a magnet's metadata
//! is in), the output folder checked, and for `seed` the content checked
//! where the torrent says it is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bittide_core::engine::Engine;
use bittide_core::metainfo::Metainfo;
use bittide_core::picker::Priority;
use bittide_core::torrent::{StartMode, TorrentInfo};
use bittide_core::TorrentId;

use super::{err, exit, Progress, SessionError, SessionOptions, TorrentSource};
use crate::disk::Storage;
use crate::resume;

/// Checks that `folder` exists (creating it) and can be written.
pub(super) fn check_folder(folder: &Path) -> Result<(), SessionError> {
    std::fs::create_dir_all(folder).map_err(|e| {
        err(
            exit::IO,
            format!("{}: cannot create the output folder: {e}", folder.display()),
        )
    })?;
    let probe = folder.join(format!(".bittide-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        err(
            exit::IO,
            format!("{}: output folder is not writable: {e}", folder.display()),
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// What a session needs of a torrent once its files are known.
#[derive(Clone)]
pub(super) struct Prepared {
    pub(super) info: TorrentInfo,
    /// The torrent's name as it appears on disk.
    pub(super) name: String,
    pub(super) storage: Arc<Storage>,
    pub(super) start: StartMode,
    pub(super) priorities: Option<Vec<Priority>>,
    pub(super) file_count: usize,
    /// Peers from the resume data.
    pub(super) resume_peers: Vec<SocketAddr>,
}

impl Prepared {
    /// Tells the storage which files are wanted: unselected ones are not
    /// created, their share of boundary pieces goes to the part file.
    pub(super) fn select(&self) -> Result<(), SessionError> {
        self.storage
            .set_priorities(self.priorities.as_deref())
            .map_err(|e| err(exit::IO, format!("cannot set up the part file: {e}")))
    }

    /// What a progress report says of the torrent once its files are
    /// known: name, where, size, and what resume data vouched for.
    pub(super) fn describe(&self, folder: &Path, p: &mut Progress) {
        p.name = Some(self.name.clone());
        p.info_hash = Some(self.info.info_hash);
        p.content = Some(folder.join(&self.name));
        p.size = self.info.layout.total_length();
        p.resumed = match &self.start {
            StartMode::Trusted(have) => Some(
                have.iter()
                    .filter(|i| i.0 < self.info.layout.piece_count())
                    .map(|i| u64::from(self.info.layout.piece_size(i)))
                    .sum(),
            ),
            _ => None,
        };
    }
}

/// `bittide seed`: every file of the torrent must be where the torrent
/// says, at its full length, before serving starts. The error names the
/// first path missing and, when the user pointed at the content folder
/// itself rather than the folder that holds it, the folder to give.
pub(super) fn check_content(folder: &Path, p: &Prepared) -> Result<(), SessionError> {
    for i in 0..p.info.layout.file_count() {
        if p.info.layout.is_padding(i) {
            continue;
        }
        let (Some(path), Some(range)) = (p.storage.path(i), p.info.layout.file_range(i)) else {
            continue;
        };
        let expected = range.end - range.start;
        let problem = match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => "is not a file".to_owned(),
            Ok(m) if m.len() < expected => {
                format!("is {} bytes, the torrent says {expected}", m.len())
            }
            Ok(_) => continue,
            Err(e) => format!("cannot be read: {e}"),
        };
        let mut message = format!(
            "{}: {problem}; `seed` serves content already on disk, expected at {}",
            path.display(),
            folder.join(&p.name).display()
        );
        if let Some(hint) = likely_folder(folder, p) {
            message.push_str(&format!(" (did you mean `{}`?)", hint.display()));
        }
        return Err(err(exit::IO, message));
    }
    Ok(())
}

/// The folder the user probably meant, when they gave the content folder
/// itself (its name is the torrent's, or the torrent's files are right
/// inside it): its parent.
fn likely_folder(folder: &Path, p: &Prepared) -> Option<PathBuf> {
    let named_like_it = folder.file_name().is_some_and(|n| n == p.name.as_str());
    let files_inside = p.storage.path(0).is_some_and(|first| {
        first
            .strip_prefix(folder.join(&p.name))
            .is_ok_and(|rest| folder.join(rest).is_file())
    });
    if !(named_like_it || files_inside) {
        return None;
    }
    let parent = std::fs::canonicalize(folder).ok()?.parent()?.to_owned();
    Some(parent)
}

/// `bittide seed` whose check found pieces missing: the content is not
/// this torrent's, or not all of it.
pub(super) fn content_mismatch(folder: &Path, last: &Progress, p: &Prepared) -> SessionError {
    let pieces = p.info.layout.piece_count();
    let missing = last.total.saturating_sub(last.done);
    let mut message = format!(
        "{}: the data on disk does not match the torrent ({missing} of {} bytes missing or different, {pieces} pieces checked)",
        folder.join(&p.name).display(),
        last.total
    );
    if let Some(hint) = likely_folder(folder, p) {
        message.push_str(&format!(" (did you mean `{}`?)", hint.display()));
    }
    err(exit::IO, message)
}

/// Reads a .torrent for the session: its storage under the folder, what
/// resume data says is on disk, and the files `--only` names.
pub(super) fn prepare(options: &SessionOptions, torrent: &[u8]) -> Result<Prepared, SessionError> {
    let metainfo =
        Metainfo::from_bytes(torrent).map_err(|e| err(exit::BAD_TORRENT, e.to_string()))?;
    let info = TorrentInfo::from_metainfo(&metainfo);
    let storage = Arc::new(Storage::new(&options.folder, &metainfo));
    let file_count = metainfo.info.files().len();
    let state = options.state_dir.as_deref().filter(|_| !options.recheck);
    let (start, resume_peers) = resume::start_mode(
        state,
        &info.info_hash,
        info.layout.piece_count(),
        &storage,
        file_count,
    );
    if let Some(bad) = options.only.iter().flatten().find(|&&i| i >= file_count) {
        return Err(err(
            2,
            format!("--only: the torrent has no file {bad} (it has {file_count})"),
        ));
    }
    let priorities = options.only.as_ref().map(|list| {
        (0..file_count)
            .map(|i| {
                if list.contains(&i) {
                    Priority::Normal
                } else {
                    Priority::Skip
                }
            })
            .collect()
    });
    let name = storage
        .path(0)
        .and_then(|p| {
            p.strip_prefix(&options.folder)
                .ok()?
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| String::from_utf8_lossy(metainfo.info.name()).into_owned());
    Ok(Prepared {
        info,
        name,
        storage,
        start,
        priorities,
        file_count,
        resume_peers,
    })
}

/// A magnet's metadata arrived: its .torrent (written to `--save-torrent`
/// when asked), prepared like a file's.
pub(super) fn magnet_ready(
    engine: &Engine,
    id: TorrentId,
    options: &SessionOptions,
) -> Result<Prepared, SessionError> {
    let bytes = engine
        .magnet_torrent_file(id)
        .ok_or_else(|| err(exit::BAD_TORRENT, "metadata missing"))?;
    if let Some(path) = &options.save_torrent {
        write_atomically(path, &bytes).map_err(|e| {
            err(
                exit::IO,
                format!("{}: cannot write the torrent: {e}", path.display()),
            )
        })?;
    }
    // BEP 53: the link's `so=` selects files (the engine applies it to the
    // picker); the storage must know too, so unselected files are not
    // created. `--only` wins over it.
    match (&options.torrent, &options.only) {
        (TorrentSource::Magnet(m), None) if !m.select_only.is_empty() => {
            // Indices past the last file are ignored, as the engine does.
            let files = Metainfo::from_bytes(&bytes).map_or(0, |t| t.info.files().len());
            let only = m
                .select_only
                .iter()
                .flat_map(|r| {
                    (*r.start() as usize)..(*r.end() as usize).saturating_add(1).min(files)
                })
                .collect();
            let selected = SessionOptions {
                only: Some(only),
                ..options.clone()
            };
            prepare(&selected, &bytes)
        }
        _ => prepare(options, &bytes),
    }
    .and_then(|p| p.select().map(|()| p))
}

/// Writes `bytes` to a temporary beside `path`, then renames it over.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A device or a pipe is written into: a rename would replace the node.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::write(path, bytes);
    }
    let tmp = path.with_extension(format!("part.{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
