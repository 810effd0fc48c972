//! Message stream encryption against libtorrent (python3-libtorrent), all
//! on 127.0.0.1, with libtorrent's encryption forced both ways
//! (`out_enc_policy` = `in_enc_policy` = pe_forced) and RC4 the only level
//! it allows (`allowed_enc_level` = pe_rc4), so nothing but an RC4 stream
//! gets through:
//! - `bittide download` (default `--encryption enabled`, and `required`)
//!   from a forced libtorrent seeder, byte for byte; with `--encryption
//!   disabled` the same download gets nothing, which shows the others were
//!   encrypted;
//! - `bittide seed --encryption required` → a forced libtorrent leecher;
//! - `bittide download` (`enabled`) from a libtorrent with encryption
//!   disabled: the plaintext retry after the refused encrypted try.
//!
//! Peers are given by address (libtorrent never dialled an
//! encryption-forced peer it learned from a tracker in our runs;
//! shared/INTEROP.md). Fails, never skips, without python3-libtorrent.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bittide_tests::{
    assert_same_file, bittide, free_port, libtorrent, libtorrent_server, one_file_torrent,
    start_seeding, ChildGuard, TempDir,
};

/// `bittide download` from `peer` with `--encryption mode`; whether it
/// finished within `limit` (its own `--timeout` is `timeout`).
fn download(torrent: &Path, out: &Path, peer: u16, mode: &str, timeout: &str) -> bool {
    let child = Command::new(bittide())
        .args(["download", torrent.to_str().unwrap(), "-o"])
        .arg(out)
        .args([
            "--encryption",
            mode,
            "--no-dht",
            "--json",
            "--timeout",
            timeout,
        ])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--peer", &format!("127.0.0.1:{peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bittide download");
    let mut child = ChildGuard(child);
    let limit = Duration::from_secs(90);
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("bittide download --encryption {mode} did not end within {limit:?}");
}

#[test]
fn bittide_downloads_from_an_encryption_forced_libtorrent() {
    let dir = TempDir::new("mse-from-lt");
    let (src, torrent) = one_file_torrent(dir.path(), "secret.bin", 3_000_017, 29, "64K", None);
    let port = free_port();
    let _seeder = libtorrent_server(&[
        "--encryption",
        "forced",
        "seed",
        torrent.to_str().unwrap(),
        src.to_str().unwrap(),
        &port.to_string(),
    ]);

    for mode in ["enabled", "required"] {
        let out = dir.path().join(format!("out-{mode}"));
        let started = Instant::now();
        assert!(
            download(&torrent, &out, port, mode, "60"),
            "--encryption {mode}: the download failed"
        );
        eprintln!("--encryption {mode}: {:?}", started.elapsed());
        assert_same_file(&src.join("secret.bin"), &out.join("secret.bin"));
    }

    // Plaintext only: libtorrent refuses every connection.
    let out = dir.path().join("out-disabled");
    let started = Instant::now();
    assert!(
        !download(&torrent, &out, port, "disabled", "8"),
        "a plaintext download from a forced seeder cannot succeed"
    );
    eprintln!(
        "--encryption disabled: gave up after {:?}",
        started.elapsed()
    );
    let got = std::fs::read(out.join("secret.bin")).unwrap_or_default();
    assert!(
        got.iter().all(|b| *b == 0),
        "no data may arrive in plaintext"
    );
}

#[test]
fn an_encryption_forced_libtorrent_downloads_from_bittide() {
    let dir = TempDir::new("mse-to-lt");
    let (src, torrent) = one_file_torrent(dir.path(), "secret.bin", 3_000_017, 29, "64K", None);
    let port = free_port();
    let mut cmd = Command::new(bittide());
    cmd.args(["seed", torrent.to_str().unwrap(), "-o"])
        .arg(&src)
        .args(["--encryption", "required", "--no-dht", "--json"])
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    let log = dir.path().join("seed.log");
    let _seeder = ChildGuard(start_seeding(&mut cmd, &log, Duration::from_secs(30)));

    let out = dir.path().join("lt-out");
    std::fs::create_dir_all(&out).unwrap();
    let started = Instant::now();
    let verdict = libtorrent(&[
        "--encryption",
        "forced",
        "leech",
        torrent.to_str().unwrap(),
        out.to_str().unwrap(),
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(verdict, "done");
    eprintln!("libtorrent leech: {:?}", started.elapsed());
    assert_same_file(&src.join("secret.bin"), &out.join("secret.bin"));
}

/// `--encryption enabled` against a libtorrent that refuses encryption
/// (both policies disabled): the encrypted first try is refused, the
/// retry in plaintext downloads everything.
#[test]
fn bittide_falls_back_to_plaintext_for_a_libtorrent_without_encryption() {
    let dir = TempDir::new("mse-fallback");
    let (src, torrent) = one_file_torrent(dir.path(), "secret.bin", 3_000_017, 29, "64K", None);
    let port = free_port();
    let _seeder = libtorrent_server(&[
        "--encryption",
        "disabled",
        "seed",
        torrent.to_str().unwrap(),
        src.to_str().unwrap(),
        &port.to_string(),
    ]);
    let out = dir.path().join("out");
    let started = Instant::now();
    assert!(download(&torrent, &out, port, "enabled", "60"));
    eprintln!("fallback download: {:?}", started.elapsed());
    assert_same_file(&src.join("secret.bin"), &out.join("secret.bin"));
    // `required` never falls back.
    let out = dir.path().join("out-required");
    assert!(!download(&torrent, &out, port, "required", "8"));
}
