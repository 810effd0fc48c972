//! DHT interop: bittide's Mainline DHT node against a network of libtorrent
//! nodes on 127.0.0.1 (`lt_tool.py dht-swarm`).
//!
//! Both directions: bittide's one-shot commands (`bittide dht ping`,
//! `find-node`, `get-peers`, `announce`) and its crawler (`bittide dht
//! crawl`, BEP 51) query libtorrent nodes, and
//! libtorrent queries a running `bittide dht serve` (BEP 51
//! `sample_infohashes`, and a lookup that can only reach the network
//! through bittide's answers).
//!
//! And the DHT inside `bittide download` and `bittide seed`: a torrent
//! without trackers, and a bare magnet link, download from a libtorrent
//! seeder that only the DHT names, and a libtorrent leecher finds `bittide
//! seed` the same way; and the same over IPv6 only, in a libtorrent DHT on
//! `::1` (BEP 32: bittide's IPv6 node finds and announces there).
//!
//! Needs `python3-libtorrent` (`./scripts/test` installs it); fails, never
//! skips, without it. Every process is bounded in time and killed at the end.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use bittide_tests::{
    bittide, content_bytes, require_tool, run_bittide, run_bounded, workspace_root, ChildGuard,
    TempDir, DEBIAN_PYTHON,
};

/// Announced by libtorrent's node 0.
const LT_HASH: &str = "0123456789abcdef0123456789abcdef01234567";
/// Announced by bittide into the libtorrent network.
const BT_HASH: &str = "89abcdef0123456789abcdef0123456789abcdef";
/// Announced by bittide to the network that includes `bittide dht serve`.
const SERVED_HASH: &str = "fedcba9876543210fedcba9876543210fedcba98";

const LT_NODES: u16 = 6;

/// A running `lt_tool.py dht-swarm`: its stdin for commands, its stdout
/// lines on a channel (read by a thread, so every wait has a deadline).
struct LtSwarm {
    _child: ChildGuard,
    stdin: ChildStdin,
    lines: Receiver<String>,
    base: u16,
    ip: &'static str,
}

impl LtSwarm {
    fn start(base: u16) -> LtSwarm {
        LtSwarm::start_seeding(base, LT_HASH, &[])
    }

    /// A swarm on 127.0.0.1 whose node 0 announces `hash`; with
    /// `[torrent, dir]` it also seeds that torrent from `dir`.
    fn start_seeding(base: u16, hash: &str, seed: &[&str]) -> LtSwarm {
        LtSwarm::start_on("127.0.0.1", base, hash, seed)
    }

    /// The same on `ip` (`::1`: an IPv6 DHT, BEP 32).
    fn start_on(ip: &'static str, base: u16, hash: &str, seed: &[&str]) -> LtSwarm {
        require_tool(
            DEBIAN_PYTHON,
            &["-c", "import libtorrent"],
            "python3-libtorrent",
        );
        let mut child = Command::new(DEBIAN_PYTHON)
            .arg(workspace_root().join("tests/interop/lt_tool.py"))
            .args(["--ip", ip])
            .args(["dht-swarm", &LT_NODES.to_string(), &base.to_string(), hash])
            .args(seed)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lt_tool.py dht-swarm");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut swarm = LtSwarm {
            _child: ChildGuard(child),
            stdin,
            lines,
            base,
            ip,
        };
        let ready = swarm.next_line(Duration::from_secs(120));
        assert_eq!(
            ready,
            format!("ready {base}"),
            "libtorrent swarm did not start"
        );
        swarm
    }

    fn next_line(&mut self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("lt_tool.py dht-swarm: no answer ({e})"))
    }

    /// Sends one command line and returns the answer line.
    fn ask(&mut self, command: &str) -> String {
        self.ask_within(command, Duration::from_secs(60))
    }

    fn ask_within(&mut self, command: &str, limit: Duration) -> String {
        writeln!(self.stdin, "{command}").expect("write to lt_tool.py");
        self.stdin.flush().unwrap();
        self.next_line(limit)
    }

    fn node(&self, i: u16) -> String {
        std::net::SocketAddr::new(self.ip.parse().unwrap(), self.base + i).to_string()
    }
}

fn dht_json(bootstrap: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["dht", "--dht-allow-local", "--json", "--timeout", "20"];
    if !bootstrap.is_empty() {
        all.extend(["--bootstrap", bootstrap]);
    }
    all.extend(args);
    serde_json::from_str(run_bittide(&all).trim()).expect("one JSON object")
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bittide_and_libtorrent_dht_nodes_understand_each_other() {
    // The swarm's nodes, the fresh node `get_peers_via` starts, our server.
    let base = bittide_tests::free_ports(LT_NODES + 2);
    let serve_port = base + LT_NODES + 1;
    let mut swarm = LtSwarm::start(base);
    let entry = swarm.node(1);

    // ping: libtorrent answers with its id.
    let pong = dht_json("", &["ping", &swarm.node(0)]);
    assert_eq!(pong["node"], swarm.node(0));
    assert_eq!(pong["id"].as_str().map(str::len), Some(40), "{pong}");

    // find_node: joining through one node finds all of them.
    let found = dht_json(
        &entry,
        &["find-node", "5555555555555555555555555555555555555555"],
    );
    let closest = strings(&found["closest"]);
    for i in 0..LT_NODES {
        let addr = swarm.node(i);
        assert!(
            closest.iter().any(|c| c.ends_with(&addr)),
            "{addr} missing from {closest:?}"
        );
    }

    // get_peers: libtorrent's announce, found by bittide.
    let got = dht_json(&entry, &["get-peers", LT_HASH]);
    assert!(
        strings(&got["peers"]).contains(&swarm.node(0)),
        "libtorrent's peer not found: {got}"
    );

    // announce_peer: bittide's announce (with libtorrent's tokens), found by
    // libtorrent.
    let announced = dht_json(&entry, &["announce", BT_HASH, "7777"]);
    assert!(
        announced["announced_to"].as_u64().unwrap_or(0) >= 3,
        "{announced}"
    );
    let lt_peers = swarm.ask(&format!("get_peers {BT_HASH}"));
    assert_eq!(lt_peers, "peers 127.0.0.1:7777");

    // BEP 51 the other way: bittide's crawler harvests both info-hashes
    // from libtorrent's sample_infohashes answers.
    let crawl = run_bittide(&[
        "dht",
        "--dht-allow-local",
        "--json",
        "--bootstrap",
        &entry,
        "--timeout",
        "20",
        "crawl",
        "--for",
        "6s",
        // Three nodes in one process, sharing the nodes they meet.
        "--nodes",
        "3",
    ]);
    let sampled: Vec<String> = crawl
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["source"] == "sample")
        .filter_map(|v| v["info_hash"].as_str().map(str::to_owned))
        .collect();
    for hash in [LT_HASH, BT_HASH] {
        assert!(
            sampled.iter().any(|h| h == hash),
            "{hash} not crawled: {crawl}"
        );
    }
    let mut all: Vec<&str> = crawl.lines().collect();
    let lines = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), lines, "an info-hash printed twice: {crawl}");

    // A long-lived bittide node that libtorrent queries.
    let mut server = Command::new(bittide())
        .args([
            "dht",
            "--dht-allow-local",
            "--port",
            &serve_port.to_string(),
        ])
        .args(["--bootstrap", &entry, "--timeout", "20"])
        .args(["serve", "--duration", "240"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bittide dht serve");
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _server = ChildGuard(server);
    assert!(
        first.starts_with(&format!("serving on 0.0.0.0:{serve_port}")),
        "{first}"
    );
    let served = format!("127.0.0.1:{serve_port}");

    // Announced through the server, so it is among the closest and stores it.
    let announced = dht_json(&served, &["announce", SERVED_HASH, "8888"]);
    let to = strings(&announced["closest"]);
    assert!(
        to.iter().any(|c| c.ends_with(&served)),
        "server not among {to:?}"
    );

    // BEP 51: libtorrent parses bittide's sample_infohashes answer.
    let samples = swarm.ask(&format!("sample {served}"));
    assert!(samples.starts_with("samples num="), "{samples}");
    assert!(samples.contains(SERVED_HASH), "{samples}");
    let nodes: usize = samples
        .split_whitespace()
        .find_map(|w| w.strip_prefix("nodes="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(nodes >= 1, "no nodes in the sample answer: {samples}");

    // A new libtorrent node that knows only the server finds libtorrent's
    // peer: its lookup runs on bittide's find_node/get_peers answers.
    let via = swarm.ask(&format!("get_peers_via {served} {LT_HASH}"));
    assert_eq!(via, format!("peers {}", swarm.node(0)));
}

/// What the DHT download tests share: a file libtorrent seeds and one
/// bittide seeds, in `src`, each with a trackerless torrent.
struct Shared {
    src: std::path::PathBuf,
    lt_data: Vec<u8>,
    bt_data: Vec<u8>,
    lt_torrent: std::path::PathBuf,
    bt_torrent: std::path::PathBuf,
    lt_hash: String,
}

impl Shared {
    /// The two files, each `(name, length, content seed)`.
    fn make(dir: &std::path::Path, lt: (&str, usize, u64), bt: (&str, usize, u64)) -> Shared {
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        let lt_data = content_bytes(lt.1, lt.2);
        std::fs::write(src.join(lt.0), &lt_data).unwrap();
        let bt_data = content_bytes(bt.1, bt.2);
        std::fs::write(src.join(bt.0), &bt_data).unwrap();
        let lt_torrent = dir.join(format!("{}.torrent", lt.0));
        let bt_torrent = dir.join(format!("{}.torrent", bt.0));
        let lt_hash = trackerless_torrent(&src.join(lt.0), &lt_torrent);
        trackerless_torrent(&src.join(bt.0), &bt_torrent);
        Shared {
            src,
            lt_data,
            bt_data,
            lt_torrent,
            bt_torrent,
            lt_hash,
        }
    }
}

/// `bittide create` for `path` with no tracker; returns the info-hash.
fn trackerless_torrent(path: &std::path::Path, out: &std::path::Path) -> String {
    run_bittide(&[
        "create",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--piece-size",
        "64K",
        "--no-date",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&run_bittide(&["info", "--json", out.to_str().unwrap()])).unwrap();
    info["info_hash"].as_str().unwrap().to_owned()
}

#[test]
fn download_and_seed_with_peers_found_only_on_the_dht() {
    let dir = TempDir::new("dht-download");
    let Shared {
        src,
        lt_data,
        bt_data,
        lt_torrent,
        bt_torrent,
        lt_hash,
    } = Shared::make(
        dir.path(),
        ("from-lt.bin", 3 << 20, 11),
        ("from-bt.bin", (2 << 20) + 12_345, 12),
    );

    // Six libtorrent nodes; node 0 seeds from-lt.bin and announces it.
    // Then the fresh node `leech` starts, a bittide downloader, a bittide
    // seeder.
    let base = bittide_tests::free_ports(LT_NODES + 1);
    let mut swarm = LtSwarm::start_seeding(
        base,
        &lt_hash,
        &[lt_torrent.to_str().unwrap(), src.to_str().unwrap()],
    );
    let entry = swarm.node(1);
    let dht_args = |state: &str| {
        vec![
            "--dht-bootstrap".to_owned(),
            entry.clone(),
            "--dht-allow-local".to_owned(),
            "--dht-state".to_owned(),
            dir.path().join(state).to_str().unwrap().to_owned(),
        ]
    };

    // bittide: no tracker, no --peer; the DHT names libtorrent's node 0.
    let out = dir.path().join("out");
    let r = run_bounded(
        Command::new(bittide())
            .args(["download", lt_torrent.to_str().unwrap(), "-o"])
            .arg(&out)
            .args([
                "--listen",
                &format!("127.0.0.1:{}", bittide_tests::free_port()),
            ])
            .args(["--timeout", "60"])
            .args(dht_args("leecher.dht")),
        Duration::from_secs(120),
    );
    assert!(
        r.status.success(),
        "bittide download through the DHT failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(std::fs::read(out.join("from-lt.bin")).unwrap() == lt_data);
    // The node's id and the nodes it met are kept for the next run.
    let state = std::fs::read(dir.path().join("leecher.dht")).expect("DHT state saved");
    assert!(
        state.len() > 20 + 26,
        "state holds nodes: {} bytes",
        state.len()
    );

    // A bare magnet link: peers from the DHT only, the metadata from
    // libtorrent (BEP 9), then the data.
    let magnet_out = dir.path().join("magnet-out");
    let r = run_bounded(
        Command::new(bittide())
            .args(["download", &format!("magnet:?xt=urn:btih:{lt_hash}"), "-o"])
            .arg(&magnet_out)
            .args([
                "--listen",
                &format!("127.0.0.1:{}", bittide_tests::free_port()),
            ])
            .args(["--timeout", "60", "--json"])
            .args(dht_args("magnet.dht")),
        Duration::from_secs(120),
    );
    assert!(
        r.status.success(),
        "bittide download of a bare magnet failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("\"event\":\"metadata\""),
        "no metadata event"
    );
    assert!(std::fs::read(magnet_out.join("from-lt.bin")).unwrap() == lt_data);

    // The other way: `bittide seed` announces itself; a new libtorrent
    // node that knows only the DHT finds it and downloads.
    let seed_port = bittide_tests::free_port();
    let listen = format!("127.0.0.1:{seed_port}");
    let leeched = lt_leeches_bittide_seed(
        &mut swarm,
        dir.path(),
        &bt_torrent,
        &src,
        &listen,
        &dht_args("seeder.dht"),
    );
    assert_eq!(leeched, "done", "libtorrent did not find bittide's seed");
    assert!(std::fs::read(dir.path().join("lt-out/from-bt.bin")).unwrap() == bt_data);
}

/// `bittide seed` of `torrent` from `src` on `listen` with `dht_args`,
/// announcing itself on the DHT; a new libtorrent node of `swarm` that
/// knows only the DHT downloads it into `dir/lt-out`. Its answer.
fn lt_leeches_bittide_seed(
    swarm: &mut LtSwarm,
    dir: &std::path::Path,
    torrent: &std::path::Path,
    src: &std::path::Path,
    listen: &str,
    dht_args: &[String],
) -> String {
    let seeder = Command::new(bittide())
        .args(["seed", torrent.to_str().unwrap(), src.to_str().unwrap()])
        .args(["--listen", listen])
        .args(dht_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bittide seed");
    let _seeder = ChildGuard(seeder);
    let lt_out = dir.join("lt-out");
    std::fs::create_dir_all(&lt_out).unwrap();
    swarm.ask_within(
        &format!("leech {} {}", torrent.display(), lt_out.display()),
        Duration::from_secs(120),
    )
}

#[test]
fn on_ipv6_only_bittide_finds_and_announces_in_a_libtorrent_dht() {
    let dir = TempDir::new("dht-ipv6");
    let Shared {
        src,
        lt_data,
        bt_data,
        lt_torrent,
        bt_torrent,
        lt_hash,
    } = Shared::make(
        dir.path(),
        ("lt6.bin", (2 << 20) + 777, 21),
        ("bt6.bin", (1 << 20) + 4321, 22),
    );

    // Six libtorrent nodes on ::1 only; node 0 seeds lt6.bin and announces
    // it on the IPv6 DHT.
    let base = bittide_tests::free_ports(LT_NODES + 1);
    let mut swarm = LtSwarm::start_on(
        "::1",
        base,
        &lt_hash,
        &[lt_torrent.to_str().unwrap(), src.to_str().unwrap()],
    );
    let entry = swarm.node(1);
    let state = dir.path().join("leecher.dht");
    let listen = |port: u16| format!("[::1]:{port}");

    // bittide listens on ::1 only: its IPv6 node joins through a
    // libtorrent node and finds the seeder's IPv6 address.
    let out = dir.path().join("out");
    let r = run_bounded(
        Command::new(bittide())
            .args(["download", lt_torrent.to_str().unwrap(), "-o"])
            .arg(&out)
            .args(["--listen", &listen(bittide_tests::free_port())])
            .args(["--timeout", "60"])
            .args([
                "--dht-bootstrap",
                &entry,
                "--dht-allow-local",
                "--dht-state",
            ])
            .arg(&state),
        Duration::from_secs(120),
    );
    assert!(
        r.status.success(),
        "bittide download over the IPv6 DHT failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(std::fs::read(out.join("lt6.bin")).unwrap() == lt_data);
    // The IPv6 node's id and the IPv6 nodes it met are kept (`id6`,
    // `nodes6`: 38 bytes each).
    let saved = bittide_core::dht::SavedDht::decode(&std::fs::read(&state).unwrap())
        .expect("DHT state saved");
    let v6 = saved.v6.expect("the IPv6 node's part");
    assert!(
        !v6.nodes.is_empty() && v6.nodes.iter().all(|(_, a)| a.is_ipv6()),
        "{:?}",
        v6.nodes
    );

    // The other way: `bittide seed` on ::1 announces itself on the IPv6
    // DHT; a new libtorrent node that knows only the swarm finds it.
    let dht_args = ["--dht-bootstrap", &entry, "--dht-allow-local"].map(String::from);
    let leeched = lt_leeches_bittide_seed(
        &mut swarm,
        dir.path(),
        &bt_torrent,
        &src,
        &listen(bittide_tests::free_port()),
        &dht_args,
    );
    assert_eq!(
        leeched, "done",
        "libtorrent did not find bittide's seed over IPv6"
    );
    assert!(std::fs::read(dir.path().join("lt-out/bt6.bin")).unwrap() == bt_data);
}
