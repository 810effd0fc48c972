//! Files the user did not select are not created: their share of the
//! pieces they have in common with selected files is kept in the part
//! file (`.<info-hash>.parts` in the download folder, as libtorrent does)
//! and moved into place when they are selected later. And the disk errors
//! a download meets end with the path and the OS's own words.
//!
//! - `bittide download --only 1` of three files that share pieces (from a
//!   libtorrent seeder on loopback), then two restarts without a peer (one
//!   trusting resume data, one rechecking every piece), then the whole
//!   torrent;
//! - a session: one file selected, a restart, a move to another folder,
//!   then all of them;
//! - libtorrent reads our part file and we read its;
//! - a file or a folder in the way, a read-only and a full file system.
//!
//! Every process and wait is bounded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bittide_core::bencode::Value;
use bittide_core::metainfo::Metainfo;
use bittide_core::picker::Priority;
use bittide_core::InfoHash;
use bittide_driver::session::views::{AddOptions, AddSource, TorrentStatus, TorrentView};
use bittide_driver::session::{Session, SessionConfig, SessionHandle};
use bittide_tests::{bittide, content_bytes, free_port, run_bounded, ChildGuard, TempDir};
use bittide_tokio::runtime::TokioRuntime;
use sha1::{Digest, Sha1};

const PIECE: usize = 16384;
/// Odd sizes: every file shares a piece with the next.
const SIZES: [usize; 3] = [30_001, 40_002, 29_997];

/// The files' contents.
fn contents() -> Vec<Vec<u8>> {
    SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| content_bytes(n, 40 + i as u64))
        .collect()
}

/// A torrent named `top` of files `f0.bin`, `f1.bin`, … holding `files`.
fn torrent(files: &[Vec<u8>]) -> Vec<u8> {
    torrent_of(
        files
            .iter()
            .enumerate()
            .map(|(i, d)| (vec![format!("f{i}.bin").into_bytes()], d)),
    )
}

/// A torrent named `top` of these (path components, content).
fn torrent_of<'a>(files: impl Iterator<Item = (Vec<Vec<u8>>, &'a Vec<u8>)>) -> Vec<u8> {
    let files: Vec<_> = files.collect();
    let all: Vec<u8> = files.iter().flat_map(|(_, d)| d.to_vec()).collect();
    let pieces: Vec<u8> = all
        .chunks(PIECE)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let list = files
        .iter()
        .map(|(path, data)| {
            Value::dict(vec![
                (b"length", Value::int(data.len() as i64)),
                (
                    b"path",
                    Value::list(path.iter().map(|c| Value::bytes(c)).collect()),
                ),
            ])
        })
        .collect();
    let info = Value::dict(vec![
        (b"files", Value::list(list)),
        (b"name", Value::bytes(b"top")),
        (b"piece length", Value::int(PIECE as i64)),
        (b"pieces", Value::bytes(&pieces)),
    ]);
    Value::dict(vec![(b"info", info)]).to_vec()
}

/// libtorrent seeding `torrent_file` from `save/f<i>`.
fn lt_seed(torrent_file: &Path, save: &Path, files: &[Vec<u8>]) -> (u16, ChildGuard) {
    std::fs::create_dir_all(save).unwrap();
    for (i, data) in files.iter().enumerate() {
        std::fs::write(save.join(format!("f{i}")), data).unwrap();
    }
    let port = free_port();
    let guard = bittide_tests::libtorrent_server(&[
        "seed-flat",
        torrent_file.to_str().unwrap(),
        save.to_str().unwrap(),
        &port.to_string(),
    ]);
    (port, guard)
}

/// `bittide download` of `torrent_file` into `out` from `peer` (none: no
/// peers at all), state in `state`; returns (exit code, stderr).
fn download(
    torrent_file: &Path,
    out: &Path,
    state: &Path,
    peer: Option<u16>,
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut cmd = Command::new(bittide());
    cmd.arg("download")
        .arg(torrent_file)
        .arg("-o")
        .arg(out)
        .arg("--state-dir")
        .arg(state)
        .args(["--no-dht", "--timeout", "30"])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(extra);
    if let Some(p) = peer {
        cmd.args(["--peer", &format!("127.0.0.1:{p}")]);
    }
    let r = run_bounded(&mut cmd, Duration::from_secs(90));
    (
        r.status.code(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The pieces a part file holds, from its header: piece count and length,
/// then each piece's slot or -1 (big-endian), as libtorrent writes it.
fn held(part: &Path) -> Vec<u32> {
    let bytes = std::fs::read(part).unwrap();
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!(word(4) as usize, PIECE);
    let slots: Vec<u32> = (0..word(0)).map(|p| word(8 + 4 * p as usize)).collect();
    // Each slot 16 KiB after a 1 KiB header, the last one cut at its end
    // of data.
    let used = slots.iter().filter(|&&s| s != u32::MAX).count() as u64;
    assert!(bytes.len() as u64 <= 1024 + used * PIECE as u64);
    (0..word(0))
        .filter(|&p| slots[p as usize] != u32::MAX)
        .collect()
}

fn part_name(torrent: &[u8]) -> String {
    format!(
        ".{}.parts",
        Metainfo::from_bytes(torrent).unwrap().info_hash
    )
}

#[test]
fn only_one_file_leaves_the_others_absent_until_they_are_wanted() {
    let dir = TempDir::new("partfile-cli");
    let files = contents();
    let bytes = torrent(&files);
    let t = dir.path().join("t.torrent");
    std::fs::write(&t, &bytes).unwrap();
    let (port, seeder) = lt_seed(&t, &dir.path().join("seed"), &files);
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let part = part_name(&bytes);

    let (code, err) = download(&t, &out, &state, Some(port), &["--only", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        std::fs::read(out.join("top/f1.bin")).unwrap() == files[1],
        "f1.bin differs"
    );
    assert_eq!(names(&out), vec![part.clone(), "top".into()]);
    assert_eq!(names(&out.join("top")), vec!["f1.bin"]);
    // The two boundary pieces, f0|f1 and f1|f2, and nothing else.
    assert_eq!(held(&out.join(&part)), vec![1, 4]);

    // The part file outlives the process: a restart trusts the resume
    // data, and a recheck finds the boundary pieces in it. No peer.
    drop(seeder);
    let (code, err) = download(&t, &out, &state, None, &["--only", "1"]);
    assert_eq!(code, Some(0), "restart: {err}");
    let (code, err) = download(&t, &out, &state, None, &["--only", "1", "--recheck"]);
    assert_eq!(code, Some(0), "recheck: {err}");
    assert_eq!(names(&out.join("top")), vec!["f1.bin"]);

    // Now all of it: the boundary bytes move out of the part file, which
    // goes, and the rest comes from the seeder.
    let (port, _seeder) = lt_seed(&t, &dir.path().join("seed2"), &files);
    let (code, err) = download(&t, &out, &state, Some(port), &[]);
    assert_eq!(code, Some(0), "everything: {err}");
    for (i, data) in files.iter().enumerate() {
        let got = std::fs::read(out.join(format!("top/f{i}.bin"))).unwrap();
        assert!(got == *data, "f{i}.bin differs");
    }
    assert_eq!(names(&out), vec!["top"]);
    let (code, err) = download(&t, &out, &state, None, &["--recheck"]);
    assert_eq!(code, Some(0), "recheck of everything: {err}");
}

#[test]
fn a_magnet_links_own_selection_leaves_the_other_files_absent() {
    // BEP 53: `so=1` in the link selects file 1 as `--only 1` would.
    let dir = TempDir::new("partfile-magnet");
    let files = contents();
    let bytes = torrent(&files);
    let t = dir.path().join("t.torrent");
    std::fs::write(&t, &bytes).unwrap();
    let (port, _seeder) = lt_seed(&t, &dir.path().join("seed"), &files);
    let hash = Metainfo::from_bytes(&bytes).unwrap().info_hash;
    let magnet = format!("magnet:?xt=urn:btih:{hash}&so=1");
    let out = dir.path().join("out");
    let (code, err) = download(
        Path::new(&magnet),
        &out,
        &dir.path().join("state"),
        Some(port),
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::read(out.join("top/f1.bin")).unwrap() == files[1]);
    assert_eq!(names(&out), vec![part_name(&bytes), "top".into()]);
    assert_eq!(names(&out.join("top")), vec!["f1.bin"]);
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bittide-partfile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn open(
    state: &Path,
    download: &Path,
) -> (
    SessionHandle<TokioRuntime>,
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    let mut config = SessionConfig::new(
        state.to_owned(),
        download.to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.max_peers_per_ip = 4;
    let session = Session::open(TokioRuntime::current(), config)
        .await
        .expect("session opens");
    let (handle, addr) = (session.handle(), session.listen_addr());
    let task = tokio::spawn(async move {
        session.run().await;
    });
    (handle, addr, task)
}

async fn close(h: SessionHandle<TokioRuntime>, task: tokio::task::JoinHandle<()>) {
    h.shutdown();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the session stops")
        .unwrap();
}

async fn wait_for(
    h: &SessionHandle<TokioRuntime>,
    hash: InfoHash,
    what: &str,
    ok: impl Fn(&TorrentView) -> bool,
) -> TorrentView {
    for _ in 0..600 {
        let list = h.list().await.unwrap();
        if let Some(t) = list.iter().find(|t| t.info_hash == hash) {
            if ok(t) {
                return t.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {:?}", h.list().await);
}

#[test]
fn a_session_moves_part_file_bytes_into_files_selected_later() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let files = contents();
        let bytes = torrent(&files);
        let part = part_name(&bytes);
        let seed_dir = temp("seed-data");
        for (i, data) in files.iter().enumerate() {
            std::fs::create_dir_all(seed_dir.join("top")).unwrap();
            std::fs::write(seed_dir.join(format!("top/f{i}.bin")), data).unwrap();
        }
        let (seed_state, dl_state, dl) = (temp("seed-state"), temp("dl-state"), temp("dl"));
        let (seeder, seeder_addr, seeder_task) = open(&seed_state, &seed_dir).await;
        let hash = seeder
            .add(AddSource::TorrentFile(bytes.clone()), AddOptions::default())
            .await
            .unwrap();
        wait_for(&seeder, hash, "the seeder to check its data", |t| {
            t.state == TorrentStatus::Seeding
        })
        .await;

        let (leecher, _, task) = open(&dl_state, &dl).await;
        let options = AddOptions {
            peers: vec![seeder_addr],
            only: Some(vec![1]),
            ..AddOptions::default()
        };
        leecher
            .add(AddSource::TorrentFile(bytes.clone()), options)
            .await
            .unwrap();
        wait_for(&leecher, hash, "file 1", |t| t.progress == 1.0).await;
        assert!(std::fs::read(dl.join("top/f1.bin")).unwrap() == files[1]);
        assert_eq!(names(&dl), vec![part.clone(), "top".into()]);
        assert_eq!(names(&dl.join("top")), vec!["f1.bin"]);

        // A restart in between: still complete, the part file as it was.
        close(leecher, task).await;
        let (leecher, _, task) = open(&dl_state, &dl).await;
        wait_for(&leecher, hash, "file 1 after a restart", |t| {
            t.progress == 1.0 && t.state != TorrentStatus::Checking
        })
        .await;
        assert_eq!(names(&dl), vec![part.clone(), "top".into()]);

        // Moving the torrent takes the part file along.
        let moved = temp("moved");
        leecher.move_storage(hash, moved.clone()).await.unwrap();
        assert_eq!(names(&moved), vec![part.clone(), "top".into()]);
        assert!(names(&dl).is_empty(), "{:?}", names(&dl));
        let dl = moved;

        let all = vec![(0, Priority::Normal), (2, Priority::Normal)];
        leecher.set_file_priorities(hash, all).await.unwrap();
        // The boundary bytes are in f0 and f2 before the engine asks for
        // the rest; the part file is gone.
        assert_eq!(names(&dl), vec!["top"]);
        assert_eq!(names(&dl.join("top")), vec!["f0.bin", "f1.bin", "f2.bin"]);
        let tail = std::fs::read(dl.join("top/f0.bin")).unwrap();
        assert!(tail[PIECE..] == files[0][PIECE..], "f0's boundary bytes");
        wait_for(&leecher, hash, "everything", |t| {
            t.wanted == t.size && t.progress == 1.0
        })
        .await;
        for (i, data) in files.iter().enumerate() {
            let got = std::fs::read(dl.join(format!("top/f{i}.bin"))).unwrap();
            assert!(got == *data, "f{i}.bin differs");
        }
        close(leecher, task).await;
        close(seeder, seeder_task).await;
        for d in [seed_dir, seed_state, dl_state, dl, temp("dl")] {
            let _ = std::fs::remove_dir_all(d);
        }
    });
}

/// Downloads a torrent of `path` (30,000 bytes, below the folder `top`)
/// into `out` after `prepare` made trouble there; returns stderr, checking
/// the exit code is 1 (an I/O error) and the message one line.
fn failing_download(tag: &str, path: &[&str], prepare: impl FnOnce(&Path)) -> String {
    let dir = TempDir::new(tag);
    let data = content_bytes(30_000, 11);
    let components = path.iter().map(|c| c.as_bytes().to_vec()).collect();
    let t = dir.path().join("t.torrent");
    std::fs::write(&t, torrent_of([(components, &data)].into_iter())).unwrap();
    let (port, _seeder) = lt_seed(&t, &dir.path().join("seed"), std::slice::from_ref(&data));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    prepare(&out);
    let (code, err) = download(&t, &out, &dir.path().join("state"), Some(port), &[]);
    let _ = Command::new("umount").arg(out.join("top")).output();
    assert_eq!(code, Some(1), "{tag}: {err}");
    assert_eq!(err.lines().count(), 1, "{tag}: {err}");
    err
}

/// Mounts a tmpfs of `size` (with `ro`, read-only) at `at`.
fn tmpfs(at: &Path, options: &str) {
    std::fs::create_dir_all(at).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mount -t tmpfs failed although running as root");
}

#[test]
fn disk_errors_end_with_the_path_and_the_os_error() {
    // `top` is a file: ENOTDIR, where mkdir itself would say EEXIST.
    let err = failing_download("pf-enotdir", &["f.bin"], |out| {
        std::fs::write(out.join("top"), b"in the way").unwrap();
    });
    assert!(err.contains("out/top: Not a directory"), "{err}");
    // A folder where the file goes (was "Bad file descriptor").
    let err = failing_download("pf-eisdir", &["f.bin"], |out| {
        std::fs::create_dir_all(out.join("top/f.bin")).unwrap();
    });
    assert!(err.contains("out/top/f.bin: Is a directory"), "{err}");
    // A name longer than the file system takes.
    let long = "n".repeat(300);
    let err = failing_download("pf-enametoolong", &[&long], |_| {});
    assert!(
        err.contains(&format!("out/top/{long}: File name too long")),
        "{err}"
    );
    // The mounts below need root (CI runs as root); anyone else gets the
    // cases above and a note.
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping EROFS and ENOSPC: mounting a tmpfs needs root");
        return;
    }
    // The torrent's folder on a read-only file system.
    let err = failing_download("pf-erofs", &["f.bin"], |out| {
        tmpfs(&out.join("top"), "size=1m,ro")
    });
    assert!(
        err.contains("out/top/f.bin: Read-only file system"),
        "{err}"
    );
    // A full one: 16 KiB for 30,000 bytes.
    let err = failing_download("pf-enospc", &["f.bin"], |out| {
        tmpfs(&out.join("top"), "size=16k")
    });
    assert!(
        err.contains("out/top/f.bin: No space left on device"),
        "{err}"
    );
}

/// libtorrent with file priorities 0, 1, 0: `leech PORT` downloads file 1
/// from 127.0.0.1:PORT; `check` verifies what is on disk. Prints the
/// pieces it has.
const LT_SELECTED: &str = r#"
import libtorrent as lt, sys, time
torrent, save, what = sys.argv[1], sys.argv[2], sys.argv[3]
ses = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False,
                  'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(torrent)
p.save_path = save
p.file_priorities = [0, 1, 0]
h = ses.add_torrent(p)
if what == 'leech':
    h.connect_peer(('127.0.0.1', int(sys.argv[4])))
else:
    h.force_recheck()
for i in range(600):
    time.sleep(0.1)
    s = h.status()
    if i > 5 and s.state in (lt.torrent_status.finished, lt.torrent_status.seeding):
        break
print(' '.join(str(i) for i, x in enumerate(h.status().pieces) if x))
"#;

fn lt_selected(torrent_file: &Path, save: &Path, what: &[&str]) -> String {
    let mut cmd = Command::new(bittide_tests::DEBIAN_PYTHON);
    cmd.args(["-c", LT_SELECTED])
        .arg(torrent_file)
        .arg(save)
        .args(what);
    let r = run_bounded(&mut cmd, Duration::from_secs(90));
    assert!(
        r.status.success(),
        "libtorrent: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).trim().to_owned()
}

#[test]
fn part_files_are_interchangeable_with_libtorrent() {
    let dir = TempDir::new("partfile-lt");
    let files = contents();
    let bytes = torrent(&files);
    let t = dir.path().join("t.torrent");
    std::fs::write(&t, &bytes).unwrap();
    let (port, _seeder) = lt_seed(&t, &dir.path().join("seed"), &files);
    let part = part_name(&bytes);
    // Pieces 1 and 4 are shared with the unselected files.
    let file_1 = "1 2 3 4";

    // libtorrent's part file: a recheck here finds the boundary pieces.
    let theirs = dir.path().join("theirs");
    assert_eq!(
        lt_selected(&t, &theirs, &["leech", &port.to_string()]),
        file_1
    );
    assert_eq!(names(&theirs), vec![part.clone(), "top".into()]);
    let state = dir.path().join("state");
    let (code, err) = download(&t, &theirs, &state, None, &["--only", "1", "--recheck"]);
    assert_eq!(code, Some(0), "bittide on libtorrent's part file: {err}");

    // Ours: libtorrent's recheck finds them.
    let ours = dir.path().join("ours");
    let (code, err) = download(&t, &ours, &state, Some(port), &["--only", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(lt_selected(&t, &ours, &["check"]), file_1);
}
