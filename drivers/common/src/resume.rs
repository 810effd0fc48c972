//! Resume data: which pieces are verified on disk, so a restart need not
//! hash everything again.
//!
//! One bencoded file per torrent in the session's state folder,
//! `STATE/torrents/<info-hash>/resume`, never in the download folder (a
//! torrent's content could land on it there: one named `.bittide` once
//! overwrote another torrent's resume data). It holds the download folder
//! it describes, the verified-piece bitfield, each file's length and
//! modification time when it was written, and peers worth reconnecting
//! to. It is written
//! atomically (temporary file, then rename), only after the data files are
//! flushed, so it never claims a piece that is not on disk. On start it is
//! trusted only for the same download folder and if every file still has
//! the recorded length and mtime; otherwise the data present is verified
//! again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bittide_core::bencode::{self, Value};
use bittide_core::compact;
use bittide_core::torrent::StartMode;
use bittide_core::{Bitfield, InfoHash};

use crate::disk::Storage;

/// Format version written and accepted.
const VERSION: i64 = 2;

/// Where a torrent's resume data lives in the state folder.
pub fn path(state: &Path, info_hash: &InfoHash) -> PathBuf {
    state
        .join("torrents")
        .join(info_hash.to_string())
        .join("resume")
}

/// The download folder as bytes, as recorded.
fn folder_bytes(storage: &Storage) -> &[u8] {
    storage.folder().as_os_str().as_encoded_bytes()
}

/// (length, mtime in ns since the epoch) of each file, `None` if missing.
fn file_stats(storage: &Storage, count: usize) -> Vec<Option<(u64, i64)>> {
    (0..count)
        .map(|i| {
            let meta = std::fs::metadata(storage.path(i)?).ok()?;
            let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
            Some((
                meta.len(),
                i64::try_from(mtime.as_nanos()).unwrap_or(i64::MAX),
            ))
        })
        .collect()
}

/// What a valid resume file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// Pieces verified on disk.
    pub pieces: Bitfield,
    /// Peers to try first.
    pub peers: Vec<SocketAddr>,
}

/// Most peers kept in resume data (written and read).
pub const MAX_PEERS: usize = 50;

/// Loads resume data if it exists, is for this torrent in this folder,
/// and matches the files as they are now.
pub fn load(
    state: &Path,
    info_hash: &InfoHash,
    piece_count: u32,
    storage: &Storage,
    file_count: usize,
) -> Option<Resume> {
    let bytes = std::fs::read(path(state, info_hash)).ok()?;
    parse(
        &bytes,
        info_hash,
        folder_bytes(storage),
        piece_count,
        &file_stats(storage, file_count),
    )
}

/// How a torrent stored in `storage` starts: the pieces its resume data
/// in `state` vouches for (if it matches the files as they are), else
/// verifying whatever files are already there, else from nothing; and
/// the peers the resume data remembers. `state` `None`: no resume data.
pub fn start_mode(
    state: Option<&Path>,
    info_hash: &InfoHash,
    piece_count: u32,
    storage: &Storage,
    file_count: usize,
) -> (StartMode, Vec<SocketAddr>) {
    if let Some(r) = state.and_then(|s| load(s, info_hash, piece_count, storage, file_count)) {
        return (StartMode::Trusted(r.pieces), r.peers);
    }
    let exists = (0..file_count).any(|i| storage.path(i).is_some_and(|p| p.exists()));
    let start = if exists {
        StartMode::Check
    } else {
        StartMode::Fresh
    };
    (start, Vec::new())
}

/// Reads resume data (the bytes of the file) against the files as they
/// are now (`now`: (length, mtime) of each file, `None` if missing);
/// `None` unless it is for this torrent in download folder `folder` and
/// every file is as recorded.
pub fn parse(
    bytes: &[u8],
    info_hash: &InfoHash,
    folder: &[u8],
    piece_count: u32,
    now: &[Option<(u64, i64)>],
) -> Option<Resume> {
    let root = bencode::decode(bytes).ok()?;
    let d = root.as_dict()?;
    let Recorded { pieces, files } = recorded(d, info_hash, folder, piece_count)?;
    // A file we never wrote may have appeared or vanished harmlessly only
    // if it holds no verified piece; keep it simple: any change means
    // recheck.
    if files != now {
        return None;
    }
    let field = |key: &[u8]| d.get(key).and_then(Value::as_bytes).unwrap_or_default();
    let peers = compact::decode_v4(field(b"peers"))
        .chain(compact::decode_v6(field(b"peers6")))
        .take(MAX_PEERS)
        .collect();
    Some(Resume { pieces, peers })
}

/// What resume data records beside its peers.
struct Recorded {
    /// Verified pieces.
    pieces: Bitfield,
    /// Each file's (length, mtime in ns) when written, `None` if missing.
    files: Vec<Option<(u64, i64)>>,
}

/// What resume data `d` records, if it is for this torrent in `folder`.
fn recorded(
    d: &bencode::Dict<'_>,
    info_hash: &InfoHash,
    folder: &[u8],
    piece_count: u32,
) -> Option<Recorded> {
    if d.get(b"version")?.as_int()? != VERSION
        || d.get(b"info_hash")?.as_bytes()? != info_hash.0
        || d.get(b"folder")?.as_bytes()? != folder
    {
        return None;
    }
    let pieces = Bitfield::from_bytes(d.get(b"pieces")?.as_bytes()?, piece_count)?;
    let files = d
        .get(b"files")?
        .as_list()?
        .iter()
        .map(|r| {
            let r = r.as_list()?;
            Some(match (r.first()?.as_int()?, r.get(1)?.as_int()?) {
                (-1, _) => None,
                (len, mtime) => Some((u64::try_from(len).ok()?, mtime)),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Recorded { pieces, files })
}

/// The files that resume data in `state` says were there, holding
/// verified pieces, and that are gone now (qBittorrent's "missing files":
/// the torrent should wait for them, not download everything again).
/// Empty when there is no such resume data or nothing is missing.
pub fn missing_files(
    state: &Path,
    info_hash: &InfoHash,
    piece_count: u32,
    storage: &Storage,
    file_count: usize,
) -> Vec<usize> {
    let Ok(bytes) = std::fs::read(path(state, info_hash)) else {
        return Vec::new();
    };
    let Some(root) = bencode::decode(&bytes).ok() else {
        return Vec::new();
    };
    let Some(Recorded { pieces, files }) = root
        .as_dict()
        .and_then(|d| recorded(d, info_hash, folder_bytes(storage), piece_count))
    else {
        return Vec::new();
    };
    if pieces.count() == 0 || files.len() != file_count {
        return Vec::new();
    }
    let now = file_stats(storage, file_count);
    files
        .iter()
        .zip(&now)
        .enumerate()
        .filter(|(_, (was, is))| matches!(was, Some((len, _)) if *len > 0) && is.is_none())
        .map(|(i, _)| i)
        .collect()
}

/// Flushes the data files, then writes resume data atomically.
pub fn save(
    state: &Path,
    info_hash: &InfoHash,
    pieces: &Bitfield,
    peers: &[SocketAddr],
    storage: &Storage,
    file_count: usize,
) -> std::io::Result<()> {
    storage.sync()?;
    let stats = file_stats(storage, file_count);
    let bytes = encode(info_hash, folder_bytes(storage), pieces, peers, &stats);
    let target = path(state, info_hash);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = target.with_extension("part");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The bytes of a resume file: `pieces` verified in download folder
/// `folder` while the files were as `stats` says, and up to [`MAX_PEERS`]
/// peers: IPv4 ones compact in `peers`, IPv6 ones in `peers6` (18 bytes
/// each, as BEP 7 writes them for trackers).
pub fn encode(
    info_hash: &InfoHash,
    folder: &[u8],
    pieces: &Bitfield,
    peers: &[SocketAddr],
    stats: &[Option<(u64, i64)>],
) -> Vec<u8> {
    let files: Vec<Value<'_>> = stats
        .iter()
        .map(|s| match s {
            Some((len, mtime)) => Value::list(vec![
                Value::int(i64::try_from(*len).unwrap_or(i64::MAX)),
                Value::int(*mtime),
            ]),
            None => Value::list(vec![Value::int(-1), Value::int(0)]),
        })
        .collect();
    let (mut compact_peers, mut compact_peers6) = (Vec::new(), Vec::new());
    for p in peers.iter().take(MAX_PEERS) {
        let out = if p.is_ipv4() {
            &mut compact_peers
        } else {
            &mut compact_peers6
        };
        compact::encode(out, p);
    }
    Value::dict(vec![
        (b"version", Value::int(VERSION)),
        (b"info_hash", Value::bytes(&info_hash.0)),
        (b"folder", Value::bytes(folder)),
        (b"pieces", Value::bytes(pieces.as_bytes())),
        (b"files", Value::list(files)),
        (b"peers", Value::bytes(&compact_peers)),
        (b"peers6", Value::bytes(&compact_peers6)),
    ])
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittide_core::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
    use bittide_core::PieceIndex;

    #[test]
    fn resume_data_keeps_at_most_the_peers_it_saves() {
        let hash = InfoHash([1; 20]);
        let peers: Vec<SocketAddr> = (1..=MAX_PEERS as u16 + 1)
            .map(|i| SocketAddr::from(([10, 0, 0, 1], i)))
            .collect();
        let mut compact_peers = Vec::new();
        for p in &peers {
            compact::encode(&mut compact_peers, p);
        }
        let bytes = Value::dict(vec![
            (b"version", Value::int(VERSION)),
            (b"info_hash", Value::bytes(&hash.0)),
            (b"folder", Value::bytes(b"/dl")),
            (b"pieces", Value::bytes(&[])),
            (b"files", Value::list(vec![])),
            (b"peers", Value::bytes(&compact_peers)),
        ])
        .to_vec();
        let r = parse(&bytes, &hash, b"/dl", 0, &[]).unwrap();
        assert_eq!(r.peers, peers[..MAX_PEERS]);
        let saved = encode(&hash, b"/dl", &r.pieces, &r.peers, &[]);
        assert_eq!(parse(&saved, &hash, b"/dl", 0, &[]), Some(r));
    }

    #[test]
    fn resume_data_keeps_ipv6_peers_too() {
        let hash = InfoHash([2; 20]);
        let peers: Vec<SocketAddr> = vec![
            "10.0.0.1:6881".parse().unwrap(),
            "[2001:db8::7]:51413".parse().unwrap(),
            "[::1]:6881".parse().unwrap(),
        ];
        let saved = encode(&hash, b"/dl", &Bitfield::new(0), &peers, &[]);
        let r = parse(&saved, &hash, b"/dl", 0, &[]).unwrap();
        let mut got = r.peers.clone();
        got.sort();
        let mut want = peers.clone();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn saved_resume_loads_until_a_file_changes() {
        let dir = std::env::temp_dir().join(format!("bittide-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = vec![7u8; 40_000];
        let mut b = TorrentBuilder::single_file("r.bin", data.len() as u64);
        b.set_piece_length(16384);
        let mut h = PieceHasher::new(16384);
        h.update(&data);
        let bytes = b.build(&h.finish()).unwrap();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let state = dir.join("state");
        let storage = Storage::new(&dir, &m);
        let slices: Vec<_> = m.info.layout().piece_slices(PieceIndex(0)).collect();
        storage.write(&slices, &data[..16384]).unwrap();
        let mut have = Bitfield::new(3);
        have.set(PieceIndex(0));
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        save(&state, &m.info_hash, &have, &[peer], &storage, 1).unwrap();
        assert!(path(&state, &m.info_hash).starts_with(dir.join("state/torrents")));
        let r = load(&state, &m.info_hash, 3, &storage, 1).unwrap();
        assert_eq!(r.pieces, have);
        assert_eq!(r.peers, vec![peer]);
        // Another torrent's hash, another download folder, or a changed
        // file: not trusted.
        assert!(load(&state, &InfoHash([9; 20]), 3, &storage, 1).is_none());
        let elsewhere = Storage::new(&dir.join("elsewhere"), &m);
        assert!(load(&state, &m.info_hash, 3, &elsewhere, 1).is_none());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("r.bin"), vec![1u8; 40_000]).unwrap();
        assert!(load(&state, &m.info_hash, 3, &storage, 1).is_none());
        // Changed is not missing; gone is.
        assert_eq!(missing_files(&state, &m.info_hash, 3, &storage, 1), []);
        std::fs::remove_file(dir.join("r.bin")).unwrap();
        assert_eq!(missing_files(&state, &m.info_hash, 3, &storage, 1), [0]);
        // Nothing verified to lose: not missing.
        save(&state, &m.info_hash, &Bitfield::new(3), &[], &storage, 1).unwrap();
        assert_eq!(missing_files(&state, &m.info_hash, 3, &storage, 1), []);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
