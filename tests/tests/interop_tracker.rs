//! Tracker interop: bittide's HTTP and UDP tracker clients against
//! opentracker, and libtorrent against `bittide tracker serve`.
//!
//! Needs the Debian packages `opentracker` and `python3-libtorrent`
//! (`./scripts/test` installs them); fails, never skips, without them.
//! Everything listens on 127.0.0.1 and every process is killed at the end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bittide_tests::{
    bittide_tracker, free_port, libtorrent, require_tool, run_bittide, ChildGuard, TempDir,
};

const HASH: &str = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffee0001";

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).expect("one JSON object")
}

fn peers(v: &serde_json::Value) -> Vec<String> {
    v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// opentracker on a free port, allowing only `HASH`; returns it and the
/// port, trying another port if the first was taken before it bound.
fn opentracker(dir: &TempDir) -> (ChildGuard, u16) {
    for _attempt in 0..5 {
        let port = free_port();
        if let Some(t) = bittide_tests::opentracker(dir.path(), port, &[HASH.to_owned()]) {
            return (t, port);
        }
    }
    panic!("opentracker did not start");
}

#[test]
fn bittide_clients_announce_and_scrape_against_opentracker() {
    let dir = TempDir::new("opentracker");
    let (_tracker, port) = opentracker(&dir);
    let http = format!("http://127.0.0.1:{port}/announce");
    let udp = format!("udp://127.0.0.1:{port}");

    // A leecher over HTTP, a seed over UDP: each gets the other back.
    run_bittide(&[
        "tracker",
        "announce",
        &http,
        HASH,
        "--port",
        "1111",
        "--json",
        "--timeout",
        "10",
    ]);
    let v = json(&run_bittide(&[
        "tracker",
        "announce",
        &udp,
        HASH,
        "--port",
        "2222",
        "--left",
        "0",
        "--json",
        "--timeout",
        "10",
    ]));
    assert!(peers(&v).contains(&"127.0.0.1:1111".to_owned()), "{v}");
    assert_eq!(v["seeders"], 1);
    let v = json(&run_bittide(&[
        "tracker", "announce", &http, HASH, "--port", "1111", "--event", "none", "--json",
    ]));
    assert!(peers(&v).contains(&"127.0.0.1:2222".to_owned()), "{v}");
    assert_eq!(
        (v["seeders"].as_u64(), v["leechers"].as_u64()),
        (Some(1), Some(1))
    );

    for url in [&http, &udp] {
        let s = json(&run_bittide(&[
            "tracker",
            "scrape",
            url,
            HASH,
            "--json",
            "--timeout",
            "10",
        ]));
        let f = &s["files"][HASH];
        assert_eq!(
            (f["seeders"].as_u64(), f["leechers"].as_u64()),
            (Some(1), Some(1)),
            "{url}: {s}"
        );
    }

    // A torrent opentracker does not allow: its refusal reaches the user.
    let out = Command::new(bittide_tests::bittide())
        .args(["tracker", "announce", &http, &"ab".repeat(20)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tracker refused") && err.contains("not authorized"),
        "{err}"
    );

    // `stopped` removes the peer.
    run_bittide(&[
        "tracker",
        "announce",
        &udp,
        HASH,
        "--port",
        "2222",
        "--event",
        "stopped",
        "--timeout",
        "10",
    ]);
    let s = json(&run_bittide(&["tracker", "scrape", &http, HASH, "--json"]));
    assert_eq!(s["files"][HASH]["seeders"].as_u64(), Some(0), "{s}");
}

/// `bittide tracker serve` on a free port, HTTP and UDP; returns the
/// port and its guard.
fn tracker_on_a_free_port() -> (u16, ChildGuard) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    (port, bittide_tracker(&["--http", &addr, "--udp", &addr]))
}

#[test]
fn libtorrent_announces_to_bittide_tracker_over_http_and_udp() {
    let (port, _server) = tracker_on_a_free_port();
    let dir = TempDir::new("lt-announce");
    let data = dir.path().join("payload.bin");
    std::fs::write(&data, bittide_tests::content_bytes(100_000, 5)).unwrap();
    for (i, url) in [
        format!("http://127.0.0.1:{port}/announce"),
        format!("udp://127.0.0.1:{port}"),
    ]
    .iter()
    .enumerate()
    {
        let torrent = dir.path().join(format!("t{i}.torrent"));
        // A different piece size per round gives a different torrent.
        let piece = if i == 0 { "16K" } else { "32K" };
        run_bittide(&[
            "create",
            data.to_str().unwrap(),
            "-t",
            url,
            "--piece-size",
            piece,
            "--no-date",
            "-o",
            torrent.to_str().unwrap(),
        ]);
        let info = json(&run_bittide(&["info", "--json", torrent.to_str().unwrap()]));
        let hash = info["info_hash"].as_str().unwrap().to_owned();
        // Another client (bittide's own announce) is in the swarm first.
        run_bittide(&[
            "tracker",
            "announce",
            url,
            &hash,
            "--port",
            "4444",
            "--left",
            "0",
            "--timeout",
            "10",
        ]);
        // libtorrent announces as a seed (the data is there). Our tracker
        // gives seeds only leechers, so a leecher joins too; libtorrent must
        // get it back, and the tracker's counts must include libtorrent.
        run_bittide(&[
            "tracker",
            "announce",
            url,
            &hash,
            "--port",
            "5555",
            "--left",
            "10",
            "--timeout",
            "10",
        ]);
        let reply = libtorrent(&[
            "announce",
            torrent.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ]);
        let words: Vec<&str> = reply.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"peers"), "{url}: {reply}");
        let number = |i: usize| {
            words
                .get(i)
                .and_then(|w| w.parse::<u64>().ok())
                .unwrap_or(0)
        };
        assert!(number(1) >= 1, "{url}: libtorrent got no peers: {reply}");
        assert_eq!(
            number(3),
            2,
            "{url}: seeders should be bittide's 4444 and libtorrent: {reply}"
        );
        assert_eq!(number(5), 1, "{url}: leechers should be 5555: {reply}");
        // libtorrent sent `stopped` when it removed the torrent: it is gone
        // again (give the datagram a moment).
        let mut seeders = 0;
        for _ in 0..50 {
            let s = json(&run_bittide(&[
                "tracker",
                "scrape",
                url,
                &hash,
                "--json",
                "--timeout",
                "10",
            ]));
            seeders = s["files"][hash.as_str()]["seeders"].as_u64().unwrap();
            if seeders == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(seeders, 1, "{url}: libtorrent's stopped not honoured");
    }
}

/// A throwaway CA and a certificate for 127.0.0.1 signed by it, made with
/// the openssl command line.
fn make_certs(dir: &std::path::Path) {
    require_tool("openssl", &["version"], "openssl");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=bittide test CA",
        "-days",
        "1",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "leaf.pem",
        "-extfile",
        "ext",
    ]);
}

#[test]
fn https_trackers_work_and_untrusted_certificates_are_refused() {
    let dir = TempDir::new("https-tracker");
    make_certs(dir.path());
    let (backend, _server) = tracker_on_a_free_port();
    // TLS in front of the tracker, as nginx would be.
    let port = free_port();
    let script = bittide_tests::workspace_root().join("tests/interop/tls_proxy.py");
    let mut proxy = Command::new(bittide_tests::DEBIAN_PYTHON)
        .arg(script)
        .arg(port.to_string())
        .arg(dir.path().join("leaf.pem"))
        .arg(dir.path().join("leaf.key"))
        .arg(backend.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the TLS proxy");
    let stdout = proxy.stdout.take().unwrap();
    let _proxy = ChildGuard(proxy);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let url = format!("https://127.0.0.1:{port}/announce");
    let announce = |port: &str, trust: bool| {
        let mut cmd = Command::new(bittide_tests::bittide());
        cmd.args([
            "tracker",
            "announce",
            &url,
            HASH,
            "--port",
            port,
            "--json",
            "--timeout",
            "10",
        ]);
        if trust {
            cmd.env("SSL_CERT_FILE", dir.path().join("ca.pem"));
        } else {
            cmd.env_remove("SSL_CERT_FILE");
        }
        cmd.output().unwrap()
    };
    let first = announce("7001", true);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = announce("7002", true);
    let v = json(&String::from_utf8_lossy(&second.stdout));
    assert_eq!(peers(&v), vec!["127.0.0.1:7001".to_owned()]);

    // Without the CA, the certificate is not trusted: a clear error.
    let refused = announce("7003", false);
    assert_eq!(refused.status.code(), Some(5));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(err.lines().count(), 1);
}
