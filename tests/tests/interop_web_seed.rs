//! Web seeds (BEP 19) against a real HTTP server: Debian's nginx on
//! 127.0.0.1, started by each test with the content, as the only source
//! of a single-file and a multi-file torrent (nested folders, names that
//! need percent-encoding); alongside a libtorrent peer (both used: the
//! split is printed); a seed that serves wrong bytes is dropped and the
//! peer completes the download; seeds that answer 404 or stall do not
//! hold it up.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bittide_tests::nginx::Nginx;
use bittide_tests::{
    assert_same_file, bittide, content_bytes, free_port, libtorrent_server, run_bittide,
    run_bounded, TempDir,
};

/// `bittide download TORRENT -o OUT --json` with `extra`, no DHT, no
/// peers but those given; its JSON events, after checking it succeeded.
fn download(torrent: &Path, out: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(bittide());
    cmd.arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args([
            "--json",
            "--no-dht",
            "--timeout",
            "40s",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra);
    let o = run_bounded(&mut cmd, Duration::from_secs(90));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        o.status.success(),
        "bittide download failed ({:?}): {}\n{events:?}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    events
}

/// Whether a `progress` event showed `n` web seeds in use.
fn saw_web_seeds(events: &[serde_json::Value], n: u64) -> bool {
    events
        .iter()
        .any(|e| e["event"] == "progress" && e["web_seeds"] == n)
}

/// One file of `len` bytes at `root/files/<name>` and its torrent with
/// the web seeds `seeds` (and `64K` pieces) at `dir/<name>.torrent`.
fn one_file(
    dir: &Path,
    root: &Path,
    name: &str,
    len: usize,
    seeds: &[String],
) -> std::path::PathBuf {
    let files = root.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let file = files.join(name);
    std::fs::write(&file, content_bytes(len, 7)).unwrap();
    let torrent = dir.join(format!("{name}.torrent"));
    let mut args = vec![
        "create".to_string(),
        file.to_str().unwrap().into(),
        "--piece-size".into(),
        "64K".into(),
        "-o".into(),
        torrent.to_str().unwrap().into(),
    ];
    for s in seeds {
        args.extend(["--web-seed".into(), s.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bittide(&args);
    torrent
}

#[test]
fn a_single_file_comes_from_nginx_alone() {
    let dir = TempDir::new("ws-single");
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    let nginx = Nginx::serve(&dir.path().join("nginx"), &root, "");
    // The URL names the file itself (BEP 19, single-file).
    let torrent = one_file(
        dir.path(),
        &root,
        "disk.img",
        6 << 20,
        &[nginx.url("/files/disk.img")],
    );
    let out = dir.path().join("out");
    let events = download(&torrent, &out, &[]);
    assert_same_file(&root.join("files/disk.img"), &out.join("disk.img"));
    assert!(saw_web_seeds(&events, 1), "{events:?}");
    let log = nginx.log();
    assert!(
        log.lines().all(|l| l.starts_with("206 ")),
        "range requests only: {log}"
    );
    assert!(
        log.contains("\"bytes=0-262143\""),
        "a first run of 256 KiB: {log}"
    );
}

#[test]
fn a_folder_comes_from_nginx_by_percent_encoded_paths() {
    let dir = TempDir::new("ws-folder");
    let root = dir.path().join("www");
    // Spaces, `#`, `%`, `?`, non-ASCII: each must be percent-encoded, or
    // nginx serves another path (or none).
    let top = root.join("pub/My Stuff");
    let files: [(&str, usize); 4] = [
        ("sub dir/a b#c.bin", 700_000),
        ("ünïcode 100%.txt", 3_000),
        ("deep/er/why?.bin", 2_100_000),
        ("deep/empty.txt", 0),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        let p = top.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content_bytes(*len, i as u64 + 1)).unwrap();
    }
    let nginx = Nginx::serve(&dir.path().join("nginx"), &root, "");
    let torrent = dir.path().join("t.torrent");
    // Multi-file: the URL is the folder holding the torrent's top folder.
    run_bittide(&[
        "create",
        top.to_str().unwrap(),
        "--piece-size",
        "32K",
        "--web-seed",
        &nginx.url("/pub/"),
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let out = dir.path().join("out");
    download(&torrent, &out, &[]);
    for (path, _) in files {
        assert_same_file(&top.join(path), &out.join("My Stuff").join(path));
    }
    let log = nginx.log();
    assert!(
        log.contains("/pub/My%20Stuff/sub%20dir/a%20b%23c.bin")
            && log.contains("/pub/My%20Stuff/%C3%BCn%C3%AFcode%20100%25.txt")
            && log.contains("/pub/My%20Stuff/deep/er/why%3F.bin"),
        "{log}"
    );
    assert!(
        !log.contains("empty.txt"),
        "an empty file is never asked for: {log}"
    );
}

/// A libtorrent seeder of `torrent` with the data in `save`, uploading at
/// most `rate` bytes/s; its port.
fn lt_seed(torrent: &Path, save: &Path, rate: u64) -> (bittide_tests::ChildGuard, u16) {
    let port = free_port();
    let guard = libtorrent_server(&[
        "seed",
        torrent.to_str().unwrap(),
        save.to_str().unwrap(),
        &port.to_string(),
        &rate.to_string(),
    ]);
    (guard, port)
}

#[test]
fn a_web_seed_and_a_libtorrent_peer_share_a_download() {
    let dir = TempDir::new("ws-shared");
    let root = dir.path().join("www");
    // Both sources slowed to about the same pace (nginx per connection,
    // and bittide keeps two runs in flight), so both matter.
    let nginx = Nginx::serve(&dir.path().join("nginx"), &root, "limit_rate 1500k;");
    let len = 16 << 20;
    let torrent = one_file(
        dir.path(),
        &root,
        "both.bin",
        len,
        &[nginx.url("/files/both.bin")],
    );
    let (_lt, port) = lt_seed(&torrent, &root.join("files"), 3 << 20);
    let out = dir.path().join("out");
    let peer = format!("127.0.0.1:{port}");
    download(&torrent, &out, &["--peer", &peer]);
    assert_same_file(&root.join("files/both.bin"), &out.join("both.bin"));
    let from_web = nginx.sent_bytes();
    eprintln!(
        "split: {from_web} bytes sent by the web seed, at least {} by the libtorrent peer, of {len}",
        (len as u64).saturating_sub(from_web)
    );
    assert!(from_web >= 1 << 20, "the web seed gave little: {from_web}");
    assert!(
        from_web < len as u64 * 9 / 10,
        "the peer gave little: web {from_web}"
    );
}

#[test]
fn a_web_seed_sending_wrong_bytes_is_dropped_and_the_peer_completes() {
    let dir = TempDir::new("ws-liar");
    let root = dir.path().join("www");
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    let nginx = Nginx::serve(&dir.path().join("nginx"), &root, "");
    let len = 4 << 20;
    let torrent = one_file(
        dir.path(),
        &root,
        "data.bin",
        len,
        &[nginx.url("/files/data.bin")],
    );
    // The peer has the real content; the mirror a copy with one byte
    // wrong in the first piece (the first run asks for it).
    std::fs::copy(root.join("files/data.bin"), good.join("data.bin")).unwrap();
    let mut bad = std::fs::read(root.join("files/data.bin")).unwrap();
    bad[1000] ^= 0xff;
    std::fs::write(root.join("files/data.bin"), bad).unwrap();
    let (_lt, port) = lt_seed(&torrent, &good, 0);
    let out = dir.path().join("out");
    let peer = format!("127.0.0.1:{port}");
    let events = download(&torrent, &out, &["--peer", &peer]);
    assert_same_file(&good.join("data.bin"), &out.join("data.bin"));
    let dropped: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "web_seed_dropped")
        .collect();
    assert_eq!(dropped.len(), 1, "{events:?}");
    assert_eq!(
        dropped[0]["web_seed"],
        format!("http://127.0.0.1:{}", nginx.port)
    );
    assert!(
        dropped[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed the hash check of piece 0")),
        "{dropped:?}"
    );
}

/// A server that accepts connections and reads requests but never
/// answers, for `limit`; its port.
fn stalling_server(limit: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut held = Vec::new();
        while start.elapsed() < limit {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_read_timeout(Some(Duration::from_millis(10)));
                let _ = s.read(&mut [0u8; 4096]);
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    port
}

#[test]
fn web_seeds_that_404_or_stall_do_not_hold_up_a_download() {
    let dir = TempDir::new("ws-down");
    let root = dir.path().join("www");
    let nginx = Nginx::serve(&dir.path().join("nginx"), &root, "");
    let stall = stalling_server(Duration::from_secs(80));
    let len = 3 << 20;
    let seeds = [
        nginx.url("/missing/data.bin"),
        format!("http://127.0.0.1:{stall}/data.bin"),
    ];
    let torrent = one_file(dir.path(), &root, "data.bin", len, &seeds);
    let (_lt, port) = lt_seed(&torrent, &root.join("files"), 0);
    let out = dir.path().join("out");
    let peer = format!("127.0.0.1:{port}");
    let start = std::time::Instant::now();
    download(&torrent, &out, &["--peer", &peer]);
    assert_same_file(&root.join("files/data.bin"), &out.join("data.bin"));
    // The stalled seed's run is taken by the peer in endgame, not after
    // the 15 s read timeout.
    assert!(
        start.elapsed() < Duration::from_secs(14),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        nginx.log().lines().all(|l| l.starts_with("404 ")),
        "{}",
        nginx.log()
    );
}

#[test]
fn no_web_seeds_means_none_are_asked() {
    let dir = TempDir::new("ws-off");
    let root = dir.path().join("www");
    let nginx = Nginx::serve(&dir.path().join("nginx"), &root, "");
    let torrent = one_file(
        dir.path(),
        &root,
        "x.bin",
        1 << 20,
        &[nginx.url("/files/x.bin")],
    );
    let (_lt, port) = lt_seed(&torrent, &root.join("files"), 0);
    let out = dir.path().join("out");
    let peer = format!("127.0.0.1:{port}");
    let events = download(&torrent, &out, &["--peer", &peer, "--no-web-seeds"]);
    assert_same_file(&root.join("files/x.bin"), &out.join("x.bin"));
    assert!(nginx.log().is_empty(), "{}", nginx.log());
    assert!(saw_web_seeds(&events, 0) && !saw_web_seeds(&events, 1));
}

#[test]
fn a_web_seed_that_redirects_is_followed() {
    let dir = TempDir::new("ws-redirect");
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).unwrap();
    // Mirrors often answer with a redirect to where the file is.
    let nginx = Nginx::serve(
        &dir.path().join("nginx"),
        &root,
        "location /old/ { rewrite ^/old/(.*)$ /files/$1 redirect; }",
    );
    let torrent = one_file(
        dir.path(),
        &root,
        "moved.bin",
        2 << 20,
        &[nginx.url("/old/moved.bin")],
    );
    let out = dir.path().join("out");
    download(&torrent, &out, &[]);
    assert_same_file(&root.join("files/moved.bin"), &out.join("moved.bin"));
    let log = nginx.log();
    assert!(log.lines().any(|l| l.starts_with("302 ")), "{log}");
}
