//! The `bittide` commands over uTP (BEP 29, run by the engine on its UDP
//! socket) against libtorrent 2.0 (python3-libtorrent) with TCP turned off
//! on its side, all on 127.0.0.1:
//! - `bittide download` from a uTP-only libtorrent seeder with the default
//!   transports (libtorrent takes the TCP connection and hangs up; the
//!   engine opens it again over uTP), with `--no-tcp`, and — to show the
//!   others went over uTP — with `--no-utp`, which gets nothing;
//! - `bittide seed` (default transports) to a uTP-only libtorrent leecher;
//! - MSE over uTP both ways, libtorrent's encryption forced (RC4 only).
//!
//! 16 MiB each way, compared byte for byte. Fails, never skips, without
//! python3-libtorrent.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bittide_tests::{
    assert_same_file, bittide, free_port, libtorrent, libtorrent_server, one_file_torrent,
    run_bounded, start_seeding, ChildGuard, TempDir,
};

/// `bittide download` from 127.0.0.1:`peer` with `args` added; whether it
/// finished (its own `--timeout` is `timeout`).
fn download(torrent: &Path, out: &Path, peer: u16, args: &[&str], timeout: &str) -> bool {
    let started = Instant::now();
    let mut cmd = Command::new(bittide());
    cmd.args(["download", torrent.to_str().unwrap(), "-o"])
        .arg(out)
        .args(["--no-dht", "--json", "--timeout", timeout])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--peer", &format!("127.0.0.1:{peer}")])
        .args(args);
    let done = run_bounded(&mut cmd, Duration::from_secs(90));
    eprintln!(
        "bittide download {args:?}: {:?}, {}",
        started.elapsed(),
        done.status
    );
    done.status.success()
}

#[test]
fn bittide_downloads_from_a_utp_only_libtorrent() {
    let dir = TempDir::new("utp-engine-from-lt");
    let (src, torrent) = one_file_torrent(dir.path(), "utp.bin", 16 << 20, 41, "256K", None);
    let port = free_port();
    let _seeder = libtorrent_server(&[
        "seed-utp",
        torrent.to_str().unwrap(),
        src.to_str().unwrap(),
        &port.to_string(),
    ]);
    for (name, args) in [("default", &[][..]), ("no-tcp", &["--no-tcp"][..])] {
        let out = dir.path().join(name);
        assert!(
            download(&torrent, &out, port, args, "60"),
            "{name}: the download failed"
        );
        assert_same_file(&src.join("utp.bin"), &out.join("utp.bin"));
    }
    // TCP alone reaches nothing: the downloads above went over uTP.
    let out = dir.path().join("no-utp");
    assert!(!download(&torrent, &out, port, &["--no-utp"], "6"));
    let got = std::fs::read(out.join("utp.bin")).unwrap_or_default();
    assert!(got.iter().all(|b| *b == 0), "no data came over TCP");
}

/// Seeds `torrent` from `src` with `args` added; the guard stops it.
fn seed(dir: &Path, torrent: &Path, src: &Path, port: u16, args: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(bittide());
    cmd.args(["seed", torrent.to_str().unwrap(), "-o"])
        .arg(src)
        .args(["--no-dht", "--json"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args);
    let log = dir.join(format!("seed-{port}.log"));
    ChildGuard(start_seeding(&mut cmd, &log, Duration::from_secs(30)))
}

#[test]
fn a_utp_only_libtorrent_downloads_from_bittide() {
    let dir = TempDir::new("utp-engine-to-lt");
    let (src, torrent) = one_file_torrent(dir.path(), "utp.bin", 16 << 20, 41, "256K", None);
    let port = free_port();
    let _seeder = seed(dir.path(), &torrent, &src, port, &[]);
    let out = dir.path().join("lt-out");
    std::fs::create_dir_all(&out).unwrap();
    let started = Instant::now();
    let verdict = libtorrent(&[
        "leech-utp",
        torrent.to_str().unwrap(),
        out.to_str().unwrap(),
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(verdict, "done");
    eprintln!("libtorrent leech over uTP: {:?}", started.elapsed());
    assert_same_file(&src.join("utp.bin"), &out.join("utp.bin"));
}

#[test]
fn encrypted_over_utp_both_ways() {
    let dir = TempDir::new("utp-engine-mse");
    let (src, torrent) = one_file_torrent(dir.path(), "utp.bin", 16 << 20, 41, "256K", None);

    let port = free_port();
    let seeder = libtorrent_server(&[
        "--encryption",
        "forced",
        "seed-utp",
        torrent.to_str().unwrap(),
        src.to_str().unwrap(),
        &port.to_string(),
    ]);
    let out = dir.path().join("from-lt");
    assert!(download(
        &torrent,
        &out,
        port,
        &["--encryption", "required", "--no-tcp"],
        "60"
    ));
    assert_same_file(&src.join("utp.bin"), &out.join("utp.bin"));
    drop(seeder);

    let port = free_port();
    let _seeder = seed(
        dir.path(),
        &torrent,
        &src,
        port,
        &["--encryption", "required", "--no-tcp"],
    );
    let out = dir.path().join("to-lt");
    std::fs::create_dir_all(&out).unwrap();
    let verdict = libtorrent(&[
        "--encryption",
        "forced",
        "leech-utp",
        torrent.to_str().unwrap(),
        out.to_str().unwrap(),
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(verdict, "done");
    assert_same_file(&src.join("utp.bin"), &out.join("utp.bin"));
}
