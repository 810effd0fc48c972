//! What the compatibility tests (qBittorrent WebAPI, Transmission RPC;
//! issue 16) share: a daemon with API credentials, content seeded by
//! libtorrent (with an opentracker of its own when asked), the PyPI
//! clients run as Python scripts, and the check that downloaded data is
//! byte-identical.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::Daemon;
use crate::{
    compat_python, content_bytes, free_port, libtorrent, libtorrent_server, opentracker,
    run_bittide, run_bounded, ChildGuard,
};

/// The daemon's API user name (`--api-username`).
pub const USER: &str = "sonarr";
/// The daemon's API password: with a colon, which Basic auth must split
/// on the first one only.
pub const PASS: &str = "s3cret:pass";

/// A `bittide daemon` with [`USER`]/[`PASS`], its state in `dir/state`,
/// downloads in `dir/dl` (returned), and `extra` flags.
pub fn daemon_with_credentials(dir: &Path, extra: &[&str]) -> (Daemon, PathBuf) {
    let download = dir.join("dl");
    let mut args = vec!["--api-username", USER, "--api-password", PASS];
    args.extend_from_slice(extra);
    (
        Daemon::start(&dir.join("state"), &download, &args),
        download,
    )
}

/// Runs a Python script with the compat virtualenv (`args` become
/// `sys.argv[1:]`), killed after `limit`; its last stdout line as JSON.
/// A failure shows its output and `context` (e.g. the daemon's log).
pub fn run_python(script: &str, args: &[&str], limit: Duration, context: &str) -> Value {
    let out = run_bounded(
        Command::new(compat_python())
            .arg("-c")
            .arg(script)
            .args(args),
        limit,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the script failed ({:?}):\n{stdout}\n{}\n{context}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A one-file torrent of `len` bytes (content from `seed`) made in `dir`
/// with no tracker, for tests that need one in the session but no peers:
/// the .torrent's path and bytes.
pub fn small_torrent(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let content = dir.join(name);
    std::fs::write(&content, content_bytes(len, seed)).expect("content");
    let torrent = dir.join(format!("{name}.torrent"));
    run_bittide(&[
        "create",
        content.to_str().expect("UTF-8 path"),
        "-o",
        torrent.to_str().expect("UTF-8 path"),
    ]);
    let bytes = std::fs::read(&torrent).expect("the .torrent");
    (torrent, bytes)
}

/// Content and its .torrent, before seeding.
pub struct Made {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// The folder the content is in (what a seeder serves from).
    pub src: PathBuf,
    /// The info-hash, hex.
    pub hash: String,
    /// (path under a save folder, content)
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// The torrent's own opentracker, if it has one.
    pub tracker: Option<ChildGuard>,
}

/// Writes `files` (content from `seed`) under `dir/src-<name>/<name>` (one
/// file: that path itself) and makes a .torrent with 64 KiB pieces; with
/// `tracked`, the torrent announces to an opentracker of its own, started
/// here (a port taken meanwhile is retried).
pub fn make(dir: &Path, name: &str, files: &[(&str, usize)], seed: u64, tracked: bool) -> Made {
    let src = dir.join(format!("src-{name}"));
    let root = src.join(name);
    let mut out = Vec::new();
    for (i, (file, len)) in files.iter().enumerate() {
        let data = content_bytes(*len, seed + i as u64);
        let (path, relative) = if files.len() == 1 {
            (root.clone(), PathBuf::from(name))
        } else {
            (root.join(file), Path::new(name).join(file))
        };
        std::fs::create_dir_all(path.parent().expect("under src")).expect("content folder");
        std::fs::write(&path, &data).expect("content");
        out.push((relative, data));
    }
    let torrent = dir.join(format!("{name}.torrent"));
    let root_text = root.display().to_string();
    let torrent_text = torrent.display().to_string();
    let hash_of = || libtorrent(&["hash", &torrent_text]);
    let mut tracker = None;
    for _ in 0..5 {
        let mut args = vec![
            "create",
            &root_text,
            "--piece-size",
            "64K",
            "-o",
            &torrent_text,
        ];
        if !tracked {
            run_bittide(&args);
            break;
        }
        let port = free_port();
        let announce = format!("http://127.0.0.1:{port}/announce");
        args.extend(["-t", &announce]);
        run_bittide(&args);
        tracker = opentracker(&dir.join(format!("tracker-{name}")), port, &[hash_of()]);
        if tracker.is_some() {
            break;
        }
    }
    assert!(!tracked || tracker.is_some(), "opentracker did not start");
    Made {
        torrent,
        src,
        hash: hash_of(),
        files: out,
        tracker,
    }
}

/// Content served by a rate-limited libtorrent seeder.
pub struct Served {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// The info-hash, hex.
    pub hash: String,
    /// The seeder's port on 127.0.0.1.
    pub port: u16,
    /// (path under a save folder, content)
    pub files: Vec<(PathBuf, Vec<u8>)>,
    _seeder: ChildGuard,
    _tracker: Option<ChildGuard>,
}

/// Seeds `made` at `rate` bytes/s with libtorrent (it announces to the
/// torrent's tracker, already up).
pub fn seed(made: Made, rate: u64) -> Served {
    let port = free_port();
    let seeder = libtorrent_server(&[
        "seed",
        made.torrent.to_str().expect("UTF-8 path"),
        made.src.to_str().expect("UTF-8 path"),
        &port.to_string(),
        &rate.to_string(),
    ]);
    Served {
        torrent: made.torrent,
        hash: made.hash,
        port,
        files: made.files,
        _seeder: seeder,
        _tracker: made.tracker,
    }
}

/// The served files are byte-identical under `save_path`, except those
/// whose index is in `skip`, which must be absent (bittide keeps unwanted
/// pieces in a part file).
pub fn same_files(s: &Served, save_path: &Path, skip: &[usize]) {
    for (i, (path, data)) in s.files.iter().enumerate() {
        let on_disk = save_path.join(path);
        if skip.contains(&i) {
            assert!(
                !on_disk.exists(),
                "{} was unwanted but exists",
                on_disk.display()
            );
            continue;
        }
        let got = std::fs::read(&on_disk).unwrap_or_else(|e| panic!("{}: {e}", on_disk.display()));
        assert!(
            got == *data,
            "{} differs from the seed's",
            on_disk.display()
        );
    }
}
