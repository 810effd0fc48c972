//! Torrents whose names make trouble on disk, downloaded by `bittide`
//! from a libtorrent seeder on loopback (which serves each file from a
//! plain name of its own, `f<i>`, so it can serve names no file system
//! takes):
//! - files that would share a path (duplicates, case variants, names that
//!   are not UTF-8, a file and a folder of one name) each get their own,
//!   and a recheck finds every piece;
//! - a torrent named `.bittide` cannot touch another torrent's resume data;
//! - a folder that is a file, a 300-byte name and a 3,000-level path end
//!   with the OS's own error and the path, not a guess.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bittide_core::bencode::Value;
use bittide_tests::{bittide, content_bytes, free_port, run_bounded, ChildGuard, TempDir};
use sha1::{Digest, Sha1};

const PIECE: usize = 16384;

/// A multi-file torrent named `name` with these files (path components,
/// content); returns its bytes.
fn torrent(name: &[u8], files: &[(Vec<&[u8]>, Vec<u8>)]) -> Vec<u8> {
    let all: Vec<u8> = files.iter().flat_map(|(_, d)| d.clone()).collect();
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
        (b"name", Value::bytes(name)),
        (b"piece length", Value::int(PIECE as i64)),
        (b"pieces", Value::bytes(&pieces)),
    ]);
    Value::dict(vec![(b"info", info)]).to_vec()
}

/// libtorrent seeding `torrent_file` from `save/f<i>`.
fn lt_seed_flat(torrent_file: &Path, save: &Path, files: &[Vec<u8>]) -> (u16, ChildGuard) {
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

/// `bittide download` of `torrent_file` into `out` from `peer` (none:
/// no peers at all), state in `state`; returns (exit code, stderr).
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

#[test]
fn files_that_would_share_a_path_each_get_their_own() {
    let dir = TempDir::new("collide");
    let files: Vec<(Vec<&[u8]>, Vec<u8>)> = vec![
        (vec![b"x.txt"], content_bytes(40_000, 1)),
        (vec![b"x.txt"], content_bytes(30_000, 2)),
        (vec![b"X.TXT"], content_bytes(20_000, 3)),
        (vec![b"\xff"], content_bytes(25_000, 4)),
        (vec![b"\xfe"], content_bytes(25_000, 5)),
        (vec![b"d"], content_bytes(10_000, 6)),
        (vec![b"d", b"e"], content_bytes(10_000, 7)),
    ];
    let t = dir.path().join("c.torrent");
    std::fs::write(&t, torrent(b"coll", &files)).unwrap();
    let data: Vec<Vec<u8>> = files.iter().map(|(_, d)| d.clone()).collect();
    let (port, _seeder) = lt_seed_flat(&t, &dir.path().join("seed"), &data);
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let (code, err) = download(&t, &out, &state, Some(port), &[]);
    assert_eq!(code, Some(0), "{err}");
    let expected = ["x.txt", "x.1.txt", "X.2.TXT", "%FF", "%FE", "d", "d.1/e"];
    for (name, data) in expected.iter().zip(&data) {
        let got = std::fs::read(out.join("coll").join(name)).unwrap();
        assert!(got == *data, "{name} holds another file's bytes");
    }
    // Every piece verifies on disk again, without any peer.
    let (code, err) = download(&t, &out, &state, None, &["--recheck"]);
    assert_eq!(code, Some(0), "recheck: {err}");
}

#[test]
fn a_torrent_named_dot_bittide_leaves_resume_data_alone() {
    let dir = TempDir::new("dotbittide");
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    // Torrent A, downloaded first: its resume data is saved.
    let a_files: Vec<(Vec<&[u8]>, Vec<u8>)> = vec![(vec![b"a.bin"], content_bytes(50_000, 8))];
    let a = dir.path().join("a.torrent");
    std::fs::write(&a, torrent(b"a", &a_files)).unwrap();
    let (port, seeder) = lt_seed_flat(&a, &dir.path().join("seed-a"), &[a_files[0].1.clone()]);
    let (code, err) = download(&a, &out, &state, Some(port), &[]);
    assert_eq!(code, Some(0), "{err}");
    drop(seeder);
    let a_hash = info_hash(&a);
    let resume = state.join("torrents").join(&a_hash).join("resume");
    let before = std::fs::read(&resume).expect("A's resume data is in the state folder");
    // A torrent named `.bittide` with a file named like A's resume data
    // (where resume data used to live) lands in the same folder.
    let name = format!("{a_hash}.resume");
    let b_files: Vec<(Vec<&[u8]>, Vec<u8>)> =
        vec![(vec![name.as_bytes()], content_bytes(20_000, 9))];
    let b = dir.path().join("b.torrent");
    std::fs::write(&b, torrent(b".bittide", &b_files)).unwrap();
    let (port, _seeder) = lt_seed_flat(&b, &dir.path().join("seed-b"), &[b_files[0].1.clone()]);
    let (code, err) = download(&b, &out, &state, Some(port), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read(out.join(".bittide").join(&name)).unwrap(),
        b_files[0].1
    );
    assert_eq!(
        std::fs::read(&resume).unwrap(),
        before,
        "A's resume data changed"
    );
    // A is still complete from its resume data: no peer needed.
    let (code, err) = download(&a, &out, &state, None, &[]);
    assert_eq!(code, Some(0), "{err}");
}

fn info_hash(torrent_file: &Path) -> String {
    let out = Command::new(bittide())
        .args(["info", "--json"])
        .arg(torrent_file)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["info_hash"].as_str().unwrap().to_owned()
}

/// Downloads a one-file torrent whose file is at `path` (below the
/// torrent's folder `top`) into `out`; returns stderr, checking the exit
/// code is 1 (an I/O error) and the message one line.
fn failing_download(tag: &str, path: Vec<&[u8]>, prepare: impl FnOnce(&Path)) -> String {
    let dir = TempDir::new(tag);
    let files = vec![(path, content_bytes(30_000, 10))];
    let t = dir.path().join("t.torrent");
    std::fs::write(&t, torrent(b"top", &files)).unwrap();
    let (port, _seeder) = lt_seed_flat(&t, &dir.path().join("seed"), &[files[0].1.clone()]);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    prepare(&out);
    let (code, err) = download(&t, &out, &dir.path().join("state"), Some(port), &[]);
    assert_eq!(code, Some(1), "{tag}: {err}");
    assert_eq!(err.lines().count(), 1, "{tag}: {err}");
    err
}

#[test]
fn disk_errors_name_the_os_error_and_the_path() {
    // A file where the torrent's folder goes.
    let err = failing_download("enotdir", vec![b"f.bin"], |out| {
        std::fs::write(out.join("top"), b"in the way").unwrap();
    });
    assert!(err.contains("out/top: Not a directory"), "{err}");
    // A 300-byte name.
    let long = vec![b'n'; 300];
    let err = failing_download("enametoolong", vec![&long], |_| {});
    assert!(err.contains("File name too long"), "{err}");
    assert!(err.contains("nnnnnnnn"), "{err}");
    // A path 3,000 folders deep.
    let mut deep: Vec<&[u8]> = vec![b"d"; 3000];
    deep.push(b"f.bin");
    let err = failing_download("deep", deep, |_| {});
    assert!(err.contains("File name too long"), "{err}");
    assert!(err.contains("d/d/d/d"), "{err}");
}
