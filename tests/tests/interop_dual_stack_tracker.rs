//! BEP 7 against libtorrent: a dual-stack `bittide seed` announces to a
//! tracker named by a host name with both an IPv4 and an IPv6 address
//! once over each family, so the tracker hands out both of its addresses:
//! a libtorrent leecher that has only IPv6 and one that has only IPv4 both
//! find it there and download. (Announcing once, over whichever address
//! the name resolves to first, registers one family and strands the
//! other leecher.)
//!
//! Inside a network namespace the test creates, whose own hosts file
//! gives `tracker.test` both `127.0.0.1` and `::1`. Needs root and
//! python3-libtorrent; without root it says so and returns.

use std::time::Duration;

use bittide_tests::netns::Netns;
use bittide_tests::{
    assert_same_file, bittide, free_port, one_file_torrent, require_tool, serve_tracker,
    start_seeding, ChildGuard, TempDir, DEBIAN_PYTHON,
};

#[test]
fn both_families_find_a_dual_stack_seed_through_one_tracker_name() {
    require_tool(
        DEBIAN_PYTHON,
        &["-c", "import libtorrent"],
        "python3-libtorrent",
    );
    let Some(ns) = Netns::create("bep7") else {
        eprintln!(
            "interop_dual_stack_tracker: cannot create a network namespace (not root?); not run"
        );
        return;
    };
    ns.hosts("127.0.0.1 localhost tracker.test\n::1 localhost tracker.test\n");
    let dir = TempDir::new("bep7");
    let tracker_port = free_port();
    let _tracker = serve_tracker(
        ns.command(bittide()),
        &[
            "--http",
            &format!("127.0.0.1:{tracker_port}"),
            "--http",
            &format!("[::1]:{tracker_port}"),
            "--interval",
            "3",
        ],
    );
    let url = format!("http://tracker.test:{tracker_port}/announce");
    let (src, torrent) = one_file_torrent(dir.path(), "both.bin", 3 << 20, 7, "64K", Some(&url));

    let seed_port = free_port();
    let mut cmd = ns.command(bittide());
    cmd.args(["seed", torrent.to_str().unwrap(), "-o"])
        .arg(&src)
        .args(["--no-dht", "--json"])
        .args(["--listen", &format!("127.0.0.1:{seed_port}")])
        .args(["--listen", &format!("[::1]:{seed_port}")]);
    let seed_log = dir.path().join("seed.log");
    let _seed = ChildGuard(start_seeding(&mut cmd, &seed_log, Duration::from_secs(30)));

    for ip in ["::1", "127.0.0.1"] {
        let out = dir.path().join(format!("lt-{}", ip.replace(':', "_")));
        std::fs::create_dir_all(&out).unwrap();
        let (_leecher, done) = ns.libtorrent(&[
            "--ip",
            ip,
            "leech",
            torrent.to_str().unwrap(),
            out.to_str().unwrap(),
            "-",
            ip,
            "60",
        ]);
        let started = std::time::Instant::now();
        let result = done.recv_timeout(Duration::from_secs(90));
        eprintln!(
            "libtorrent on {ip}: {result:?} after {:?}",
            started.elapsed()
        );
        assert_eq!(
            result.as_deref(),
            Ok("done"),
            "a libtorrent leecher on {ip} did not get bittide's seed from the tracker; seed log: {}",
            std::fs::read_to_string(&seed_log).unwrap_or_default()
        );
        assert_same_file(&src.join("both.bin"), &out.join("both.bin"));
    }
}
