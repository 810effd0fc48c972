//! Issue 19 on real software: `bittide dht crawl --index` in a DHT of 16
//! libtorrent nodes on 127.0.0.1 that seed 30 torrents (libtorrent's
//! default hybrids, BEP 52, so the DHT names each by two hashes). The crawl
//! samples the nodes (BEP 51), looks each hash up, fetches the metadata
//! from the libtorrent seeders (BEP 9) and stores it; then `bittide index`
//! finds every torrent with its name and files, by words of its name.
//!
//! And the shared index: two crawler processes filling one PostgreSQL (a
//! private cluster on 127.0.0.1) from the same lab at once: every torrent
//! once, none lost, both crawlers' finds there.
//!
//! Needs `python3-libtorrent` and `postgresql` (`./scripts/test` installs
//! them); fails, never skips, without them. Every process is bounded in time and killed at the
//! end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bittide_tests::postgres::Postgres;
use bittide_tests::{
    bittide, require_tool, run_bittide, run_bounded, workspace_root, ChildGuard, TempDir,
    DEBIAN_PYTHON,
};

const LT_NODES: u16 = 16;
const TORRENTS: usize = 30;

/// A running `lt_tool.py dht-lab`: its nodes start at `base`; the
/// torrents it seeds, as (info-hash, name).
struct Lab {
    _child: ChildGuard,
    base: u16,
    torrents: Vec<(String, String)>,
}

/// One lab at a time: 16 libtorrent nodes and a crawl are a lot for two
/// cores.
static LABS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Lab {
    fn start(dir: &TempDir) -> Lab {
        require_tool(
            DEBIAN_PYTHON,
            &["-c", "import libtorrent"],
            "python3-libtorrent",
        );
        let content = dir.path().join("content");
        std::fs::create_dir_all(&content).unwrap();
        let base = bittide_tests::free_ports(LT_NODES + 2);
        let mut child = Command::new(DEBIAN_PYTHON)
            .arg(workspace_root().join("tests/interop/lt_tool.py"))
            .args(["dht-lab", &LT_NODES.to_string(), &base.to_string()])
            .arg(&content)
            .arg(TORRENTS.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lt_tool.py dht-lab");
        let stdout = child.stdout.take().unwrap();
        let guard = ChildGuard(child);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut torrents: Vec<(String, String)> = Vec::new();
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(120))
                .expect("lt_tool.py dht-lab did not get ready");
            if line == "ready" {
                break;
            }
            let rest = line
                .strip_prefix("torrent ")
                .unwrap_or_else(|| panic!("lt_tool.py dht-lab: {line}"));
            let (hash, name) = rest.split_once(' ').expect("HASH NAME");
            torrents.push((hash.to_owned(), name.to_owned()));
        }
        assert_eq!(torrents.len(), TORRENTS);
        Lab {
            _child: guard,
            base,
            torrents,
        }
    }
}

/// `bittide dht crawl --index INDEX` in `lab` for 40 s on `port`.
fn crawl(lab: &Lab, index: &str, port: u16) -> std::process::Output {
    run_bounded(
        Command::new(bittide()).args([
            "dht",
            "crawl",
            "--index",
            index,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--dht-bootstrap",
            &format!("127.0.0.1:{}", lab.base),
            "--dht-allow-local",
            "--duration",
            "40s",
            "--json",
        ]),
        Duration::from_secs(90),
    )
}

#[test]
fn a_crawl_indexes_every_torrent_of_a_libtorrent_dht() {
    let _one = LABS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("interop-index");
    let lab = Lab::start(&dir);
    let torrents = &lab.torrents;
    let index = dir.path().join("state/index.db");
    let out = crawl(&lab, index.to_str().unwrap(), lab.base + LT_NODES);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "crawl failed: {stderr}");
    let printed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    eprintln!("crawl: {} lines printed; {stderr}", printed.len());

    let at = ["--index", index.to_str().unwrap(), "--json"];
    let stats: serde_json::Value =
        serde_json::from_str(&run_bittide(&[&["index", "stats"], &at[..]].concat())).unwrap();
    assert_eq!(stats["torrents"], TORRENTS, "{stats}; crawl said: {stderr}");
    // BEP 33: the fetches' lookups scraped libtorrent's nodes, which keep
    // their seeders' announces as seeds (one IP here: one seeder).
    assert!(stats["with_swarm"].as_u64().unwrap_or(0) >= 25, "{stats}");

    for (k, (hash, name)) in torrents.iter().enumerate() {
        let shown: serde_json::Value =
            serde_json::from_str(&run_bittide(&[&["index", "show", hash], &at[..]].concat()))
                .unwrap();
        assert_eq!(shown["name"], name.as_str());
        assert_eq!(shown["files"], 2);
        if !shown["seeders"].is_null() {
            assert_eq!(
                (shown["seeders"].as_u64(), shown["leechers"].as_u64()),
                (Some(1), Some(0)),
                "{shown}"
            );
        }
        assert!(shown["info_hash_v2"].is_string(), "a hybrid: {shown}");
        let paths: Vec<&str> = shown["file_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["path"].as_str())
            .collect();
        assert!(
            paths.contains(&format!("data/part{k:02}.bin").as_str()),
            "{paths:?}"
        );
        assert!(paths.contains(&"readme.txt"), "{paths:?}");
    }

    // Words of their names find them; every result carries a magnet.
    let found: Vec<serde_json::Value> = serde_json::from_str(&run_bittide(
        &[&["index", "search", "LAB", "Amber"], &at[..]].concat(),
    ))
    .unwrap();
    let mut names: Vec<&str> = found.iter().filter_map(|h| h["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["lab amber 00", "lab amber 10", "lab amber 20"]);
    assert!(found.iter().all(|h| h["magnet"]
        .as_str()
        .is_some_and(|m| m.starts_with("magnet:?xt=urn:btih:"))));
    let one: Vec<serde_json::Value> = serde_json::from_str(&run_bittide(
        &[&["index", "search", "garnet", "16"], &at[..]].concat(),
    ))
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["info_hash"], torrents[16].0.as_str());
}

#[test]
fn two_crawlers_fill_one_postgresql_together() {
    let _one = LABS.lock().unwrap_or_else(|e| e.into_inner());
    let pg = Postgres::start();
    let dir = TempDir::new("interop-index-pg");
    let lab = Lab::start(&dir);
    let url = pg.url();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| crawl(&lab, &url, lab.base + LT_NODES));
        let b = s.spawn(|| crawl(&lab, &url, lab.base + LT_NODES + 1));
        (a.join().expect("crawler a"), b.join().expect("crawler b"))
    });
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "crawl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("crawler: {}", String::from_utf8_lossy(&out.stderr));
    }
    let at = ["--index", url.as_str(), "--json"];
    let stats: serde_json::Value =
        serde_json::from_str(&run_bittide(&[&["index", "stats"], &at[..]].concat())).unwrap();
    assert_eq!(stats["torrents"], TORRENTS, "{stats}");
    assert_eq!(
        stats["crawlers"], 2,
        "both crawlers' finds are there: {stats}"
    );
    let exported = run_bittide(&["index", "export", "--jsonl", "--index", url.as_str()]);
    let mut hashes: Vec<String> = exported
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["info_hash"].as_str().map(str::to_owned))
        .collect();
    hashes.sort();
    let mut expected: Vec<String> = lab.torrents.iter().map(|(h, _)| h.clone()).collect();
    expected.sort();
    assert_eq!(hashes, expected, "every torrent once, none lost");
    // Each torrent was new to exactly one of them (the claims shared the
    // work; a torrent met by both of its names may be fetched twice, never
    // stored twice).
    let stored = |o: &std::process::Output| -> usize {
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| l.contains("new torrents indexed"));
        last.and_then(|l| l.split(", ").last()?.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no summary: {err}"))
    };
    assert_eq!(stored(&a) + stored(&b), TORRENTS);
}
