//! IPv6 on ::1 (BEP 7), loopback only:
//! - a `bittide seed` listening on both families (`--listen 127.0.0.1:P
//!   --listen [::1]:0`, the second taking the same port) serves an IPv6
//!   downloader over TCP and over uTP, and an IPv4 one; so does a `bittide
//!   daemon` given the same two `--listen`;
//! - an IPv6-only swarm: `bittide tracker serve` on [::1] answers with
//!   `peers6`, a libtorrent seeder on [::1] announces to it, and `bittide
//!   download` finds the seeder through it alone.
//!
//! Fails, never skips, without python3-libtorrent or IPv6 on loopback.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bittide_tests::daemon::{entry, Daemon};
use bittide_tests::{
    assert_same_file, bittide, bittide_tracker, free_port, libtorrent_server, one_file_torrent,
    run_bounded, start_seeding, ChildGuard, TempDir,
};

/// `bittide download` with `args`; whether it finished.
fn download(torrent: &Path, out: &Path, args: &[&str]) -> bool {
    let started = Instant::now();
    let mut cmd = Command::new(bittide());
    cmd.args(["download", torrent.to_str().unwrap(), "-o"])
        .arg(out)
        .args(["--no-dht", "--json", "--timeout", "60"])
        .args(args);
    let done = run_bounded(&mut cmd, Duration::from_secs(90));
    eprintln!(
        "bittide download {args:?}: {:?}, {}: {}",
        started.elapsed(),
        done.status,
        String::from_utf8_lossy(&done.stderr)
    );
    done.status.success()
}

#[test]
fn a_seed_on_both_families_serves_each() {
    let dir = TempDir::new("ipv6-both");
    let (src, torrent) = one_file_torrent(dir.path(), "six.bin", 4 << 20, 6, "64K", None);
    let port = free_port();
    let mut cmd = Command::new(bittide());
    cmd.args(["seed", torrent.to_str().unwrap(), "-o"])
        .arg(&src)
        .args(["--no-dht", "--json"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--listen", "[::1]:0"]);
    let log = dir.path().join("seed.log");
    let _seeder = ChildGuard(start_seeding(&mut cmd, &log, Duration::from_secs(30)));

    serves_each_family(dir.path(), &src, &torrent, port);
}

#[test]
fn a_daemon_on_both_families_serves_each() {
    let dir = TempDir::new("ipv6-daemon");
    let (src, torrent) = one_file_torrent(dir.path(), "six.bin", 4 << 20, 6, "64K", None);
    // `Daemon::start` listens on 127.0.0.1:P; `[::1]:0` takes the same
    // port on ::1 (the daemon's `--listen` repeats).
    let d = Daemon::start(&dir.path().join("state"), &src, &["--listen", "[::1]:0"]);
    let hash = d.add_file(&torrent, "");
    d.wait(
        "the daemon seeds",
        Duration::from_secs(30),
        |_| {},
        |list| entry(list, &hash)["state"] == "seeding",
    );
    let listen: std::net::SocketAddr = d.get("/api/v1/stats")["listen"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .expect("the daemon's listen address");
    serves_each_family(dir.path(), &src, &torrent, listen.port());
}

/// Downloads from `[::1]:port` over TCP and over uTP, and from
/// `127.0.0.1:port`, each byte-identical to `src`.
fn serves_each_family(dir: &Path, src: &Path, torrent: &Path, port: u16) {
    let v6 = format!("[::1]:{port}");
    let v4 = format!("127.0.0.1:{port}");
    for (name, args) in [
        (
            "v6-tcp",
            vec!["--listen", "[::1]:0", "--peer", &v6, "--no-utp"],
        ),
        (
            "v6-utp",
            vec!["--listen", "[::1]:0", "--peer", &v6, "--no-tcp"],
        ),
        ("v4", vec!["--listen", "127.0.0.1:0", "--peer", &v4]),
    ] {
        let out = dir.join(name);
        assert!(
            download(torrent, &out, &args),
            "{name}: the download failed"
        );
        assert_same_file(&src.join("six.bin"), &out.join("six.bin"));
    }
}

#[test]
fn an_ipv6_swarm_is_found_through_a_tracker_answering_peers6() {
    let dir = TempDir::new("ipv6-swarm");
    let tracker_port = free_port();
    let _tracker = bittide_tracker(&[
        "--http",
        &format!("[::1]:{tracker_port}"),
        "--interval",
        "5",
    ]);
    let url = format!("http://[::1]:{tracker_port}/announce");
    let (src, torrent) = one_file_torrent(dir.path(), "six.bin", 4 << 20, 6, "64K", Some(&url));
    let seed_port = free_port();
    let _seeder = libtorrent_server(&[
        "--ip",
        "::1",
        "seed",
        torrent.to_str().unwrap(),
        src.to_str().unwrap(),
        &seed_port.to_string(),
    ]);
    let out = dir.path().join("out");
    assert!(
        download(&torrent, &out, &["--listen", "[::1]:0"]),
        "no download through the tracker's peers6"
    );
    assert_same_file(&src.join("six.bin"), &out.join("six.bin"));
}
