//! A DHT of whole engines with torrents to find, and one crawler that
//! indexes them (issue 19's simulation).
//!
//! Every node is a real [`Engine`] run by the real [`Driver`] loop on the
//! [`Executor`]: a few seed many small torrents (and so announce them on
//! the DHT and serve their metadata, BEP 9), the rest are DHT nodes only.
//! The crawler is what `bittide dht crawl --index` runs: the driver's
//! [`harvest`] loop feeding an [`Indexer`] that writes a SQLite index in
//! a temporary folder, flushed once a (virtual) second as the command
//! line's store thread does. Its heap is charged to it by
//! [`super::heap`], so a scenario can show that memory stays flat hour
//! after hour.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bittide_core::dht::crawler::{CrawlConfig, CrawlStats};
use bittide_core::dht::{Dht, DhtConfig};
use bittide_core::engine::{Engine, FetchConfig};
use bittide_core::metainfo::{InfoHash, Metainfo, PieceHasher, TorrentBuilder};
use bittide_core::torrent::{StartMode, TorrentInfo};
use bittide_core::{Instant, Rng, Seed};
use bittide_driver::client::SessionDht;
use bittide_driver::driver::{first, Command, Control, Driver, Handle};
use bittide_driver::harvest::{harvest, HarvestOptions};
use bittide_driver::runtime::Runtime;
use bittide_index::{Index, Indexer, IndexerStats, SqliteIndex, UnixTime};

use super::disk::{DiskSpec, MemDisk};
use super::network::{HostSpec, Network, UdpModel};
use super::runtime::Executor;
use super::swarm::{address, content, engine_config, PORT};
use crate::TempDir;

/// Words torrent names are made of (a search finds them by these).
pub const WORDS: [&str; 16] = [
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
    "kestrel", "lagoon", "meadow", "nectar", "orchid", "prairie",
];

/// The wall clock the index sees at virtual time zero (Unix seconds).
const UNIX_AT_ZERO: UnixTime = 1_800_000_000;
/// How often the crawler writes and claims, as the command line's store
/// thread does.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Seconds a claim holds (the command line's window).
const CLAIM_WINDOW: i64 = 180;

/// The shape of a crawl scenario.
#[derive(Clone, Debug)]
pub struct CrawlSpec {
    /// DHT nodes (engines) at the start, the crawler not counted (at
    /// least five).
    pub nodes: usize,
    /// DHT nodes without an engine, added after the engines (the
    /// simulator's scale: bare nodes cost a small part of an engine).
    pub bare: usize,
    /// Torrents seeded (and so announced) in all.
    pub torrents: usize,
    /// Torrents per seeding node.
    pub per_seeder: usize,
    /// The network's datagram conditions.
    pub udp: UdpModel,
}

/// A torrent of the scenario, as the index should list it.
#[derive(Clone, Debug)]
pub struct Made {
    /// Its v1 info-hash.
    pub info_hash: InfoHash,
    /// Its name.
    pub name: String,
    /// Its files' paths (joined with `/`; the name for a single file) and
    /// sizes, in the torrent's order.
    pub files: Vec<(String, u64)>,
}

/// The world; see the module documentation. Nodes are numbered in the
/// order they join; the first five are everyone's way in.
pub struct CrawlSim {
    /// The executor and the network.
    pub exec: Executor,
    /// The torrents seeded, in the order they were made, and when.
    pub made: Vec<(Made, Instant)>,
    /// Nodes so far (the crawler not counted).
    nodes: usize,
    /// Live nodes that seed nothing, the first five (everyone's way in)
    /// apart: those that may leave.
    quiet: Vec<usize>,
    /// Nodes that left.
    gone: usize,
    per_seeder: usize,
    master: Seed,
    rng: Rng,
}

/// The crawler's node tag: apart from every other node's.
pub const CRAWLER: usize = usize::MAX - 1;

impl CrawlSim {
    /// Builds the DHT: nodes join through the first five, a hundred every
    /// 3 s; the first `torrents / per_seeder` seed; then it settles for
    /// `settle` so that every torrent is announced.
    pub fn new(seed: u64, spec: &CrawlSpec, settle: Duration) -> CrawlSim {
        let master = Seed::from_u64(seed);
        let per = spec.per_seeder.max(1);
        let mut sim = CrawlSim {
            exec: Executor::new(Network::new(master.child(1), spec.udp.clone())),
            made: Vec::new(),
            nodes: 0,
            quiet: Vec::new(),
            gone: 0,
            per_seeder: per,
            master,
            rng: Rng::new(master.child(2)),
        };
        let seeders = spec.torrents.div_ceil(per);
        assert!(seeders <= spec.nodes, "more seeders than nodes");
        for i in 0..spec.nodes {
            if i > 0 && i.is_multiple_of(100) {
                let until = sim.exec.now() + Duration::from_secs(3);
                sim.exec.run_until(until, || false);
            }
            let count = if i < seeders {
                per.min(spec.torrents - i * per)
            } else {
                0
            };
            sim.add_node(count);
        }
        for k in 0..spec.bare {
            if k.is_multiple_of(200) {
                let until = sim.exec.now() + Duration::from_secs(3);
                sim.exec.run_until(until, || false);
            }
            sim.add_bare_node();
        }
        let until = sim.exec.now() + settle;
        sim.exec.run_until(until, || false);
        sim
    }

    /// New nodes join, seeding `torrents` new torrents between them (the
    /// scenario's number per node), and as many nodes that seed nothing
    /// vanish (churn: the network keeps its size).
    pub fn add_torrents(&mut self, torrents: usize) {
        let mut left = torrents;
        while left > 0 {
            let count = left.min(self.per_seeder);
            self.add_node(count);
            left -= count;
            if !self.quiet.is_empty() {
                let k = self.rng.below(self.quiet.len() as u64) as usize;
                let gone = self.quiet.swap_remove(k);
                self.exec.kill(gone, address(gone).ip());
                self.gone += 1;
            }
        }
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.exec.now()
    }

    /// Nodes in the network now (the crawler not counted).
    pub fn live_nodes(&self) -> usize {
        self.nodes - self.gone
    }

    /// A torrent of one to three small files named by two words and its
    /// number; returns it with its bytes.
    fn make_torrent(&mut self) -> (TorrentInfo, Vec<u8>) {
        let k = self.made.len();
        let rng = &mut self.rng;
        let word = |rng: &mut Rng| WORDS[rng.below(WORDS.len() as u64) as usize];
        let name = format!("{} {} {k:04}", word(rng), word(rng));
        let count = 1 + rng.below(3) as usize;
        let sizes: Vec<u64> = (0..count).map(|_| 1 + rng.below(20_000)).collect();
        let mut files = Vec::new();
        let mut b = if count == 1 {
            files.push((name.clone(), sizes[0]));
            TorrentBuilder::single_file(name.clone(), sizes[0])
        } else {
            let mut b = TorrentBuilder::multi_file(name.clone());
            for (j, &size) in sizes.iter().enumerate() {
                let dir = word(rng).to_owned();
                let file = format!("part {j}.bin");
                files.push((format!("{dir}/{file}"), size));
                b.add_file(vec![dir, file], size);
            }
            b
        };
        b.set_piece_length(16 * 1024);
        let total: u64 = sizes.iter().sum();
        let bytes = content(total as usize, 0xc4a1_0000 + k as u64);
        let mut hasher = PieceHasher::new(16 * 1024);
        hasher.update(&bytes);
        let torrent = b.build(&hasher.finish()).expect("a valid torrent");
        let info = TorrentInfo::from_metainfo(&Metainfo::from_bytes(&torrent).expect("parses"));
        let now = self.exec.now();
        self.made.push((
            Made {
                info_hash: info.info_hash,
                name,
                files,
            },
            now,
        ));
        (info, bytes)
    }

    /// The next node: an engine with a DHT node joining through the first
    /// five, seeding `count` new torrents, its loop started.
    fn add_node(&mut self, count: usize) {
        let i = self.nodes;
        self.nodes += 1;
        if count == 0 && i >= 5 {
            self.quiet.push(i);
        }
        let known: Vec<usize> = (0..5).filter(|&b| b != i).collect();
        let torrents: Vec<(TorrentInfo, Vec<u8>)> =
            (0..count).map(|_| self.make_torrent()).collect();
        let addr = address(i);
        self.exec
            .with_net(|n| n.add_host(addr.ip(), HostSpec::default()));
        let rt = self.exec.runtime(i, addr.ip(), Duration::ZERO);
        let now = rt.now();
        let mut engine = Engine::new(
            engine_config(i, Some(&known)),
            self.master.child(1000 + i as u64),
        );
        let mut disks = Vec::new();
        for (info, bytes) in torrents {
            let disk = Arc::new(MemDisk::full(&info.layout, &bytes, DiskSpec::default()));
            let id = engine
                .add_torrent(now, info, StartMode::Check)
                .expect("distinct torrents");
            disks.push((id, disk));
        }
        let mut driver = Driver::new(rt.clone(), engine);
        // Nothing here reads the callback's beat: idle nodes sleep.
        driver.set_tick(None);
        for (id, disk) in disks {
            driver.set_storage(id, disk);
        }
        driver.listen(rt.listen_now(addr).expect("each node has its own address"));
        driver.set_udp(
            rt.bind_udp_now(addr)
                .expect("each node has its own address"),
        );
        rt.spawn(Box::pin(async move {
            driver.run(|_, _| Control::Continue).await;
        }));
    }

    /// The next node: a bare DHT node (BEP 5, no engine) joining through
    /// the first five, in a loop of its own that only carries datagrams
    /// and timeouts; it stores announces and answers samples and scrapes
    /// as any node does.
    fn add_bare_node(&mut self) {
        let i = self.nodes;
        self.nodes += 1;
        let addr = address(i);
        self.exec
            .with_net(|n| n.add_host(addr.ip(), HostSpec::default()));
        let rt = self.exec.runtime(i, addr.ip(), Duration::ZERO);
        let socket = rt
            .bind_udp_now(addr)
            .expect("each node has its own address");
        let mut config = DhtConfig::default();
        config.table.allow_local = true;
        let now = rt.now();
        let mut dht = Dht::new(now, config, self.master.child(1000 + i as u64));
        let boot: Vec<SocketAddr> = (0..5).map(address).collect();
        dht.bootstrap(now, &boot);
        let clock = rt.clone();
        rt.spawn(Box::pin(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                while let Some((to, bytes)) = dht.poll_transmit() {
                    if socket.send_to(&bytes, to).await.is_err() {
                        return;
                    }
                }
                while dht.poll_event().is_some() {}
                let now = clock.now();
                let wake = dht.poll_timeout().unwrap_or(now + Duration::from_secs(60));
                let received = first(socket.recv_from(&mut buf), clock.sleep_until(wake)).await;
                match received {
                    Ok(Ok((n, from))) => dht.handle_datagram(clock.now(), from, &buf[..n]),
                    Ok(Err(_)) => return,
                    Err(()) => dht.handle_timeout(clock.now()),
                }
            }
        }));
    }

    /// Starts the crawler (node [`CRAWLER`]) with `crawl` and `fetch`
    /// limits, indexing into a SQLite file of its own.
    pub fn start_crawler(&mut self, crawl: CrawlConfig, fetch: FetchConfig) -> Crawler {
        // Out of the way of the nodes that join later.
        let addr = address(60_000);
        self.exec
            .with_net(|n| n.add_host(addr.ip(), HostSpec::default()));
        let rt = self.exec.runtime(CRAWLER, addr.ip(), Duration::ZERO);
        let dir = TempDir::new("sim-index");
        let index = SqliteIndex::open(&dir.path().join("index.db")).expect("a new index");
        let max_pending = 2 * fetch.max_in_flight.max(1);
        let state = Arc::new(Mutex::new(CrawlerState {
            indexer: Indexer::new(format!("sim:{addr}"), CLAIM_WINDOW, max_pending),
            index,
            handle: None,
            crawl: None,
            last_flush: rt.now(),
            flush_errors: 0,
            ended: false,
        }));
        let options = HarvestOptions {
            listen: SocketAddr::new(addr.ip(), PORT),
            dht: SessionDht {
                bootstrap: (0..5).map(|b| address(b).to_string()).collect(),
                state_file: None,
                allow_local: true,
            },
            enforce_node_ids: false,
            duration: None,
            crawl,
            fetch,
            seed: Some(self.master.child(999)),
        };
        let (on_start, on_event, on_end) = (state.clone(), state.clone(), state.clone());
        let clock = rt.clone();
        rt.clone().spawn(Box::pin(async move {
            let ended = harvest(
                rt,
                options,
                move |handle, _| lock(&on_start).handle = Some(handle),
                move |event, engine| {
                    lock(&on_event).handle_event(clock.now(), event, engine);
                    Control::Continue
                },
            )
            .await;
            assert!(ended.is_ok(), "the crawler could not start: {ended:?}");
            lock(&on_end).ended = true;
        }));
        Crawler { state, _dir: dir }
    }
}

fn lock(state: &Mutex<CrawlerState>) -> MutexGuard<'_, CrawlerState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wall clock the index is told at virtual time `now`.
fn unix(now: Instant) -> UnixTime {
    UNIX_AT_ZERO + now.since_epoch().as_secs() as i64
}

struct CrawlerState {
    indexer: Indexer,
    index: SqliteIndex,
    handle: Option<Handle>,
    /// The walk's counters, as of the last flush.
    crawl: Option<CrawlStats>,
    last_flush: Instant,
    flush_errors: u64,
    ended: bool,
}

impl CrawlerState {
    /// The loop's callback: every event to the indexer, and once a second
    /// a flush whose claims go back to the engine as fetches.
    fn handle_event(
        &mut self,
        now: Instant,
        event: Option<&bittide_core::engine::Event>,
        engine: &Engine,
    ) {
        if let Some(e) = event {
            self.indexer.handle_event(unix(now), e);
        }
        if now - self.last_flush < FLUSH_EVERY {
            return;
        }
        self.last_flush = now;
        self.crawl = engine.crawl_stats();
        match self.indexer.flush(&mut self.index, unix(now)) {
            Ok(fetch) => {
                if let Some(h) = &self.handle {
                    for info_hash in fetch {
                        h.send(Command::FetchMetadata(info_hash));
                    }
                }
            }
            Err(_) => self.flush_errors += 1,
        }
    }
}

/// The running crawler.
pub struct Crawler {
    state: Arc<Mutex<CrawlerState>>,
    _dir: TempDir,
}

impl Crawler {
    /// The indexer's counters.
    pub fn stats(&self) -> IndexerStats {
        lock(&self.state).indexer.stats()
    }

    /// The walk's counters (nodes remembered, …).
    pub fn crawl_stats(&self) -> Option<CrawlStats> {
        lock(&self.state).crawl
    }

    /// Flushes that failed.
    pub fn flush_errors(&self) -> u64 {
        lock(&self.state).flush_errors
    }

    /// Whether its loop ended (it should not, while the scenario runs).
    pub fn ended(&self) -> bool {
        lock(&self.state).ended
    }

    /// Runs `f` on the index (between runs of the executor).
    pub fn with_index<T>(&self, f: impl FnOnce(&mut dyn Index) -> T) -> T {
        f(&mut lock(&self.state).index)
    }
}
