//! Downloading and seeding against real clients, all on 127.0.0.1:
//! - a libtorrent seeder + opentracker → `bittide download`, single-file
//!   and multi-file (nested folders, a zero-length file), via an HTTP and
//!   via a UDP tracker; data compared byte for byte;
//! - `bittide seed` → a libtorrent leecher and an aria2c leecher.
//!
//! Needs `opentracker`, `python3-libtorrent` and `aria2` (installed by
//! `./scripts/test`); fails, never skips, without them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bittide_tests::{
    bittide, content_bytes, free_port, require_tool, run_bittide, ChildGuard, TempDir,
};

fn make_single(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("single.bin");
    std::fs::write(&p, content_bytes(3_000_017, 11)).unwrap();
    p
}

fn make_tree(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("tree");
    for (name, len) in [
        ("a.bin", 700_001usize),
        ("empty.txt", 0),
        ("deep/er/b.bin", 1_300_000),
        ("deep/c.txt", 5),
    ] {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content_bytes(len, len as u64 + 1)).unwrap();
    }
    root
}

/// Every file under `a` exists under `b` with the same bytes (and the
/// other way round).
fn same_tree(a: &Path, b: &Path) {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<std::path::PathBuf>) {
        let here = root.join(rel);
        if here.is_file() {
            out.push(rel.to_owned());
            return;
        }
        for e in std::fs::read_dir(&here).unwrap() {
            walk(root, &rel.join(e.unwrap().file_name()), out);
        }
    }
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    walk(a, Path::new(""), &mut fa);
    walk(b, Path::new(""), &mut fb);
    fa.sort();
    fb.sort();
    assert_eq!(fa, fb, "different file lists");
    for f in fa {
        assert!(
            std::fs::read(a.join(&f)).unwrap() == std::fs::read(b.join(&f)).unwrap(),
            "{} differs",
            f.display()
        );
    }
}

fn opentracker(dir: &Path, port: u16, hashes: &[String]) -> ChildGuard {
    // The torrents name this port: it cannot move to another.
    bittide_tests::opentracker(dir, port, hashes)
        .unwrap_or_else(|| panic!("opentracker exited: port {port} was taken by another process"))
}

fn info_hash(torrent: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&run_bittide(&["info", "--json", torrent.to_str().unwrap()])).unwrap();
    v["info_hash"].as_str().unwrap().to_owned()
}

/// A libtorrent seeder for `torrent` with its data in `save`; returns once
/// it is seeding.
fn lt_seed(torrent: &Path, save: &Path, port: u16) -> ChildGuard {
    bittide_tests::libtorrent_server(&[
        "seed",
        torrent.to_str().unwrap(),
        save.to_str().unwrap(),
        &port.to_string(),
    ])
}

/// Runs `bittide download`, killing it after `limit`.
fn bittide_download(torrent: &Path, out: &Path, limit: Duration) {
    bittide_download_with(torrent.to_str().unwrap(), out, limit, &[]);
}

/// `bittide download SOURCE` (a .torrent path or a magnet link) with more
/// arguments, killed after `limit`.
fn bittide_download_with(source: &str, out: &Path, limit: Duration, extra: &[&str]) {
    let port = free_port();
    let mut child = Command::new(bittide())
        .args(["download", source, "-o", out.to_str().unwrap()])
        .args(extra)
        .args([
            "--no-dht",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--timeout",
            "60",
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bittide download");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "bittide download failed: {err}");
            return;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bittide download did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bittide_downloads_from_libtorrent_via_http_and_udp_trackers() {
    let dir = TempDir::new("dl-from-lt");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let single = make_single(&src);
    let tree = make_tree(&src);
    let tracker_port = free_port();
    let mut torrents = Vec::new();
    for (content, scheme) in [
        (&single, "http"),
        (&tree, "udp"),
        (&tree, "http"),
        (&single, "udp"),
    ] {
        let url = match scheme {
            "http" => format!("http://127.0.0.1:{tracker_port}/announce"),
            _ => format!("udp://127.0.0.1:{tracker_port}"),
        };
        let t = dir.path().join(format!(
            "{}-{scheme}.torrent",
            content.file_name().unwrap().to_str().unwrap()
        ));
        // Distinct piece sizes make distinct torrents for the same content.
        let piece = if scheme == "http" { "32K" } else { "64K" };
        run_bittide(&[
            "create",
            content.to_str().unwrap(),
            "-t",
            &url,
            "--piece-size",
            piece,
            "-o",
            t.to_str().unwrap(),
        ]);
        torrents.push((t, content.clone(), scheme));
    }
    let hashes: Vec<String> = torrents.iter().map(|(t, _, _)| info_hash(t)).collect();
    let _tracker = opentracker(&dir.path().join("ot"), tracker_port, &hashes);
    for (torrent, content, scheme) in &torrents {
        let _seeder = lt_seed(torrent, &src, free_port());
        let out = dir.path().join(format!(
            "out-{}",
            torrent.file_name().unwrap().to_str().unwrap()
        ));
        bittide_download(torrent, &out, Duration::from_secs(90));
        let name = content.file_name().unwrap();
        if content.is_file() {
            assert!(
                std::fs::read(out.join(name)).unwrap() == std::fs::read(content).unwrap(),
                "{scheme}: data differs"
            );
        } else {
            same_tree(content, &out.join(name));
        }
    }
}

#[test]
fn bittide_downloads_magnet_links_from_libtorrent() {
    let dir = TempDir::new("magnet-from-lt");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tree = make_tree(&src);
    let tracker_port = free_port();
    let torrent = dir.path().join("tree.torrent");
    let announce = format!("http://127.0.0.1:{tracker_port}/announce");
    run_bittide(&[
        "create",
        tree.to_str().unwrap(),
        "-t",
        &announce,
        "--piece-size",
        "32K",
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let hash = info_hash(&torrent);
    let _tracker = opentracker(
        &dir.path().join("ot"),
        tracker_port,
        std::slice::from_ref(&hash),
    );
    let seed_port = free_port();
    let _seeder = lt_seed(&torrent, &src, seed_port);
    let tr: String = announce
        .bytes()
        .map(|b| match b {
            b':' => "%3A".to_owned(),
            b'/' => "%2F".to_owned(),
            _ => (b as char).to_string(),
        })
        .collect();
    // The tracker only, then a peer address only: the metadata comes from
    // libtorrent (BEP 9), then the data.
    for (label, magnet) in [
        ("tr", format!("magnet:?xt=urn:btih:{hash}&dn=tree&tr={tr}")),
        (
            "x.pe",
            format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:{seed_port}"),
        ),
    ] {
        let out = dir.path().join(format!("out-{label}"));
        let saved = dir.path().join(format!("saved-{label}.torrent"));
        bittide_download_with(
            &magnet,
            &out,
            Duration::from_secs(90),
            &["--save-torrent", saved.to_str().unwrap()],
        );
        same_tree(&tree, &out.join("tree"));
        // The saved .torrent is the same torrent (same info-hash), and
        // keeps the link's tracker.
        assert_eq!(info_hash(&saved), hash, "{label}");
        let v: serde_json::Value =
            serde_json::from_str(&run_bittide(&["info", "--json", saved.to_str().unwrap()]))
                .unwrap();
        if label == "tr" {
            assert!(v.to_string().contains(&announce), "{label}: {v}");
        }
    }
}

#[test]
fn libtorrent_and_aria2_download_from_bittide_seed() {
    let dir = TempDir::new("seed-to-others");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let tree = make_tree(&src);
    let tracker_port = free_port();
    let torrent = dir.path().join("tree.torrent");
    let url = format!("http://127.0.0.1:{tracker_port}/announce");
    run_bittide(&[
        "create",
        tree.to_str().unwrap(),
        "-t",
        &url,
        "--piece-size",
        "32K",
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let _tracker = opentracker(&dir.path().join("ot"), tracker_port, &[info_hash(&torrent)]);
    let seed_port = free_port();
    let seeder = Command::new(bittide())
        .args(["seed", torrent.to_str().unwrap(), src.to_str().unwrap()])
        .args([
            "--no-dht",
            "--listen",
            &format!("127.0.0.1:{seed_port}"),
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bittide seed");
    let _seeder = ChildGuard(seeder);

    // libtorrent, pointed straight at our seeder.
    let lt_out = dir.path().join("lt-out");
    std::fs::create_dir_all(&lt_out).unwrap();
    let verdict = bittide_tests::libtorrent(&[
        "leech",
        torrent.to_str().unwrap(),
        lt_out.to_str().unwrap(),
        &format!("127.0.0.1:{seed_port}"),
    ]);
    assert_eq!(verdict, "done");
    same_tree(&tree, &lt_out.join("tree"));

    // libtorrent again, from a bare magnet link: it fetches the info
    // dictionary from our seeder (BEP 9, checked against the info-hash by
    // libtorrent), then the data.
    let magnet_out = dir.path().join("magnet-out");
    std::fs::create_dir_all(&magnet_out).unwrap();
    let verdict = bittide_tests::libtorrent(&[
        "magnet-leech",
        &format!("magnet:?xt=urn:btih:{}", info_hash(&torrent)),
        magnet_out.to_str().unwrap(),
        &format!("127.0.0.1:{seed_port}"),
    ]);
    assert!(verdict.starts_with("done "), "{verdict}");
    same_tree(&tree, &magnet_out.join("tree"));

    // aria2c, which finds us through the HTTP tracker.
    require_tool("aria2c", &["--version"], "aria2");
    let aria_out = dir.path().join("aria-out");
    let mut aria = Command::new("aria2c")
        .args([
            "--enable-dht=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            "--seed-time=0",
            "--console-log-level=warn",
            "--summary-interval=0",
        ])
        .arg(format!("--listen-port={}", free_port()))
        .arg(format!("--dir={}", aria_out.display()))
        .arg(&torrent)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aria2c");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = aria.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = aria.kill();
            let _ = aria.wait();
            panic!("aria2c did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "aria2c failed");
    same_tree(&tree, &aria_out.join("tree"));
}
