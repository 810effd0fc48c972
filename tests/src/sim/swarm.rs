//! Swarms of whole nodes: each a real [`Engine`] run by the real
//! [`Driver`] loop on its own [`VirtualRuntime`], with an in-memory disk,
//! all sharing one torrent.
//!
//! Events reach the simulation only through the loop's callback, as they
//! reach an application: each is appended to the event log (whose SHA-1
//! names the run), and after each one the node's torrents are checked
//! (`Torrent::check_invariants` every time, `check_picker` every
//! [`DEEP_CHECK_EVERY`] events and at [`Swarm::deep_check`]), and
//! connection routing is checked from the events: a connection id belongs
//! to one torrent for as long as it is open, and a torrent id is never
//! handed out twice by one engine.
//!
//! `SIM_TRACE=3,4` prints nodes 3 and 4's events as they happen.
//!
//! What a test wants to know about a node beyond its events it asks with
//! [`Swarm::inspect`], which runs a closure on the node's engine from
//! inside the loop's callback (the engine belongs to the loop).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bittide_core::dht::DhtConfig;
use bittide_core::engine::{DhtSettings, Engine, EngineConfig, Event, Transports};
use bittide_core::metainfo::{Magnet, PieceHasher, TorrentBuilder};
use bittide_core::torrent::{StartMode, TorrentConfig, TorrentEvent, TorrentInfo};
use bittide_core::tracker::server::{ServerConfig, TrackerServer};
use bittide_core::wire::PeerId;
use bittide_core::{ConnId, Instant, Rng, Seed, TorrentId};
use bittide_driver::disk::Disk;
use bittide_driver::driver::{Command, Control, Driver, Handle};
use bittide_driver::runtime::Runtime;
use sha1::{Digest, Sha1};

use super::disk::{DiskSpec, MemDisk};
use super::network::{HostSpec, Network, UdpModel};
use super::runtime::{Executor, VirtualRuntime};

/// Events between full picker checks on a node.
pub const DEEP_CHECK_EVERY: u64 = 512;
/// The port every node listens on.
pub const PORT: u16 = 6881;

/// How a node is built.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    /// Its links.
    pub host: HostSpec,
    /// Its disk.
    pub disk: DiskSpec,
    /// Starts with all the data (checked from its disk).
    pub seeder: bool,
    /// Joins through a magnet link (BEP 9) whose `x.pe` are the peers it
    /// is told about, instead of the .torrent.
    pub magnet: bool,
    /// Runs a DHT node (BEP 5) that joins through these nodes (by index);
    /// `None`: no DHT.
    pub dht: Option<Vec<usize>>,
    /// Torrent settings (peer id and port are filled in).
    pub config: TorrentConfig,
    /// Which transports carry its peer connections (uTP rides the
    /// network's UDP model: its latency, loss, duplication, reordering).
    pub transports: Transports,
}

impl PeerSpec {
    /// An honest leecher uploading `upload` bytes/s.
    pub fn leecher(upload: u64) -> PeerSpec {
        PeerSpec {
            host: HostSpec {
                upload,
                ..HostSpec::default()
            },
            disk: DiskSpec::default(),
            seeder: false,
            magnet: false,
            dht: None,
            config: TorrentConfig::default(),
            transports: Transports::default(),
        }
    }

    /// An honest seeder uploading `upload` bytes/s.
    pub fn seeder(upload: u64) -> PeerSpec {
        PeerSpec {
            seeder: true,
            ..PeerSpec::leecher(upload)
        }
    }

    /// Whether it plays by the rules.
    pub fn honest(&self) -> bool {
        !self.disk.corrupt_reads
    }
}

type Query = Box<dyn FnOnce(&Engine) + Send>;

/// What the loop's callback records about a node.
#[derive(Default)]
pub struct PeerState {
    /// Its torrent.
    pub torrent: Option<TorrentId>,
    /// When it finished downloading.
    pub finished_at: Option<Instant>,
    /// Addresses it banned (`PeerBanned`).
    pub banned: BTreeSet<IpAddr>,
    /// When its loop ended.
    pub stopped: bool,
    /// Pieces that failed their hash check.
    pub hash_failures: u64,
    /// Events it produced.
    pub events: u64,
    /// Every address it had a peer session with (`PeerConnected`), and
    /// when first.
    pub met: BTreeMap<SocketAddr, Instant>,
    /// Open connections and their torrent (routing check).
    open: BTreeMap<ConnId, TorrentId>,
    /// Torrent ids it was given (never twice).
    torrents_seen: BTreeSet<TorrentId>,
    queries: Vec<Query>,
}

/// One node.
pub struct Peer {
    /// Its listening address.
    pub addr: SocketAddr,
    /// Its disk.
    pub disk: Arc<MemDisk>,
    /// How it was built.
    pub spec: PeerSpec,
    /// When it joined.
    pub joined_at: Instant,
    state: Arc<Mutex<PeerState>>,
    handle: Handle,
    /// It left (shut down) or vanished.
    pub gone: bool,
}

impl Peer {
    /// What its callback recorded.
    pub fn state(&self) -> MutexGuard<'_, PeerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether it has every piece.
    pub fn finished(&self) -> bool {
        self.state().finished_at.is_some()
    }
}

struct EventLog {
    hash: Sha1,
    len: u64,
}

/// Deterministic content of `len` bytes for a seed.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(Seed::from_u64(seed ^ 0x5eed));
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// A single-file torrent over `content` with pieces of `piece_length`,
/// private (BEP 27) or not, announcing to `trackers` (one tier).
pub fn torrent_info(
    content: &[u8],
    piece_length: u32,
    private: bool,
    trackers: &[String],
) -> TorrentInfo {
    let mut b = TorrentBuilder::single_file("sim.bin", content.len() as u64);
    b.set_piece_length(piece_length);
    b.set_private(private);
    if !trackers.is_empty() {
        b.add_tracker_tier(trackers.to_vec());
    }
    let mut h = PieceHasher::new(piece_length);
    h.update(content);
    let bytes = b.build(&h.finish()).expect("valid torrent");
    let m = bittide_core::metainfo::Metainfo::from_bytes(&bytes).expect("parses");
    TorrentInfo::from_metainfo(&m)
}

/// Address of node `i`.
pub fn address(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 1 + (i / 250) as u8, 0, (i % 250) as u8 + 1], PORT))
}

/// Node `i`'s engine settings: its peer id and port, and a DHT node
/// (BEP 5) joining through the nodes `dht` (by index), if any.
pub fn engine_config(i: usize, dht: Option<&[usize]>) -> EngineConfig {
    let mut config = EngineConfig::default();
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-SIM002-");
    id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
    config.peer_id = PeerId(id);
    config.listen_port = PORT;
    if let Some(boot) = dht {
        let mut settings = DhtConfig::default();
        // Simulated addresses are loopback ones.
        settings.table.allow_local = true;
        config.dht = Some(DhtSettings {
            config: settings,
            nodes: boot.iter().map(|&k| address(k)).collect(),
            ..DhtSettings::default()
        });
    }
    config
}

/// Where the simulated UDP tracker listens ([`Swarm::add_udp_tracker`]).
pub const TRACKER_ADDR: ([u8; 4], u16) = ([127, 250, 0, 1], 6969);

/// The simulated tracker's announce URL.
pub fn tracker_url() -> String {
    let (ip, port) = TRACKER_ADDR;
    format!(
        "udp://{}.{}.{}.{}:{port}/announce",
        ip[0], ip[1], ip[2], ip[3]
    )
}

/// The tracker's node tag (apart from every peer's).
const TRACKER_NODE: usize = usize::MAX;

/// The simulation; see the module documentation.
pub struct Swarm {
    /// The executor and the world.
    pub exec: Executor,
    /// The torrent's bytes.
    pub content: Vec<u8>,
    /// The torrent.
    pub info: TorrentInfo,
    /// The nodes, in the order they joined.
    pub peers: Vec<Peer>,
    log: Arc<Mutex<EventLog>>,
    master: Seed,
    /// The scenario's generator (who knows whom).
    pub rng: Rng,
    started: std::time::Instant,
    tracker: Option<Arc<Mutex<TrackerServer>>>,
}

impl Swarm {
    /// An empty network for a torrent over `content`.
    pub fn new(seed: u64, content: Vec<u8>, piece_length: u32, udp: UdpModel) -> Swarm {
        let info = torrent_info(&content, piece_length, false, &[]);
        Swarm::with_info(seed, content, info, udp)
    }

    /// An empty network for `info`, a torrent over `content`.
    pub fn with_info(seed: u64, content: Vec<u8>, info: TorrentInfo, udp: UdpModel) -> Swarm {
        let master = Seed::from_u64(seed);
        Swarm {
            tracker: None,
            exec: Executor::new(Network::new(master.child(1), udp)),
            content,
            info,
            peers: Vec::new(),
            log: Arc::new(Mutex::new(EventLog {
                hash: Sha1::new(),
                len: 0,
            })),
            master,
            rng: Rng::new(master.child(2)),
            started: std::time::Instant::now(),
        }
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.exec.now()
    }

    /// Runs a UDP tracker (BEP 15, the core's `TrackerServer`) at
    /// [`TRACKER_ADDR`], for torrents that list [`tracker_url`].
    pub fn add_udp_tracker(&mut self) {
        let (ip, port) = TRACKER_ADDR;
        let addr = SocketAddr::from((ip, port));
        self.exec
            .with_net(|n| n.add_host(addr.ip(), HostSpec::default()));
        let rt = self.exec.runtime(TRACKER_NODE, addr.ip(), Duration::ZERO);
        let socket = rt.bind_udp_now(addr).expect("the tracker's own address");
        let server = Arc::new(Mutex::new(TrackerServer::new(
            ServerConfig::default(),
            self.master.child(3),
        )));
        self.tracker = Some(server.clone());
        let clock = rt.clone();
        rt.spawn(Box::pin(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let now = clock.now();
                let reply = {
                    let mut s = server.lock().unwrap_or_else(|e| e.into_inner());
                    s.handle_timeout(now);
                    s.handle_udp(now, from, &buf[..n])
                };
                if let Some(r) = reply {
                    let _ = socket.send_to(&r, from).await;
                }
            }
        }));
    }

    /// A shared handle on the tracker, for conditions that read it while
    /// the swarm runs.
    pub fn tracker_handle(&self) -> Arc<Mutex<TrackerServer>> {
        self.tracker.clone().expect("add_udp_tracker was called")
    }

    /// The tracker's state (after [`Swarm::add_udp_tracker`]).
    pub fn tracker(&self) -> MutexGuard<'_, TrackerServer> {
        self.tracker
            .as_ref()
            .expect("add_udp_tracker was called")
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a node that knows nodes `known` (by index: earlier ones, or
    /// later ones, whose addresses are fixed by their index) and starts its
    /// loop; returns its index.
    pub fn add_peer(&mut self, spec: PeerSpec, known: &[usize]) -> usize {
        let i = self.peers.len();
        let addr = address(i);
        self.exec
            .with_net(|n| n.add_host(addr.ip(), spec.host.clone()));
        let rt = self.exec.runtime(i, addr.ip(), spec.disk.delay);
        let now = rt.now();
        let mut config = engine_config(i, spec.dht.as_deref());
        config.torrent = spec.config.clone();
        config.transports = spec.transports;
        let mut engine = Engine::new(config, self.master.child(1000 + i as u64));
        let layout = &self.info.layout;
        let disk = Arc::new(if spec.seeder {
            MemDisk::full(layout, &self.content, spec.disk)
        } else {
            MemDisk::empty(layout, spec.disk)
        });
        let peers: Vec<SocketAddr> = known.iter().map(|&k| address(k)).collect();
        let torrent = if spec.magnet {
            join_by_magnet(&mut engine, now, &self.info, &peers)
        } else {
            let start = if spec.seeder {
                StartMode::Check
            } else {
                StartMode::Fresh
            };
            let id = engine
                .add_torrent(now, self.info.clone(), start)
                .expect("a new engine has no torrent yet");
            engine.add_peers(now, id, peers);
            id
        };
        let mut driver = Driver::new(rt.clone(), engine);
        if !spec.magnet {
            driver.set_storage(torrent, disk.clone());
        }
        driver.listen(rt.listen_now(addr).expect("each node has its own address"));
        driver.set_udp(
            rt.bind_udp_now(addr)
                .expect("each node has its own address"),
        );
        let handle = driver.handle();
        let state = Arc::new(Mutex::new(PeerState::default()));
        let trace =
            std::env::var("SIM_TRACE").is_ok_and(|v| v.split(',').any(|n| n == i.to_string()));
        let callback = Callback {
            node: i,
            trace,
            rt: rt.clone(),
            state: state.clone(),
            log: self.log.clone(),
            handle: handle.clone(),
            disk: disk.clone(),
        };
        let done = state.clone();
        rt.spawn(Box::pin(async move {
            let mut cb = callback;
            driver.run(move |e, engine| cb.on_event(e, engine)).await;
            done.lock().unwrap_or_else(|e| e.into_inner()).stopped = true;
        }));
        self.peers.push(Peer {
            addr,
            disk,
            spec,
            joined_at: now,
            state,
            handle,
            gone: false,
        });
        i
    }

    /// Node `i` shuts down gracefully (its loop stops its torrent and ends).
    pub fn leave(&mut self, i: usize) {
        self.peers[i].handle.send(Command::Shutdown);
        self.peers[i].gone = true;
    }

    /// Node `i` vanishes: its connections are reset, its tasks dropped.
    pub fn vanish(&mut self, i: usize) {
        let ip = self.peers[i].addr.ip();
        self.exec.kill(i, ip);
        self.peers[i].gone = true;
    }

    /// Node `i` goes silent: connections stay open, nothing it sends
    /// arrives, connects to it hang.
    pub fn black_hole(&mut self, i: usize) {
        let ip = self.peers[i].addr.ip();
        self.exec.with_net(|n| n.set_black_hole(ip, true));
    }

    /// Runs until `done(peers)` or until `until` (virtual); returns
    /// whether `done` held.
    pub fn run_until(&mut self, until: Instant, done: impl Fn(&[Peer]) -> bool) -> bool {
        let peers = &self.peers;
        self.exec.run_until(until, || done(peers))
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now() + d;
        self.run_until(until, |_| false);
    }

    /// Runs `f` on node `i`'s engine from inside its loop; `None` if its
    /// loop has ended.
    pub fn inspect<T: Send + 'static>(
        &mut self,
        i: usize,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Option<T> {
        let answer = Arc::new(Mutex::new(None));
        let slot = answer.clone();
        self.peers[i].state().queries.push(Box::new(move |e| {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(f(e));
        }));
        let until = self.now() + Duration::from_secs(2);
        let state = self.peers[i].state.clone();
        let ready = || {
            answer.lock().map(|a| a.is_some()).unwrap_or(false)
                || state.lock().map(|s| s.stopped).unwrap_or(true)
        };
        self.exec.run_until(until, ready);
        let value = answer.lock().ok()?.take();
        value
    }

    /// The full picker check on every running node.
    pub fn deep_check(&mut self) {
        for i in 0..self.peers.len() {
            if self.peers[i].gone {
                continue;
            }
            let r = self.inspect(i, |e| {
                e.torrent_ids()
                    .into_iter()
                    .filter_map(|t| e.torrent(t))
                    .try_for_each(|t| t.check_picker())
            });
            if let Some(Err(e)) = r {
                panic!("picker invariant broken at node {i}: {e}");
            }
        }
    }

    /// The SHA-1 of the event log so far: equal runs, equal hashes.
    pub fn log_hash(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let digest: [u8; 20] = log.hash.clone().finalize().into();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Events logged.
    pub fn log_len(&self) -> u64 {
        self.log.lock().map(|l| l.len).unwrap_or(0)
    }

    /// One line of speed figures: events and virtual seconds per wall
    /// second.
    pub fn speed(&self) -> String {
        let wall = self.started.elapsed().as_secs_f64();
        let virt = self.now().since_epoch().as_secs_f64();
        format!(
            "{} events, {} polls, {:.1} virtual s in {wall:.1} s wall: {:.0} events/s, {:.1} virtual s per wall s",
            self.log_len(),
            self.exec.stats.polls,
            virt,
            self.log_len() as f64 / wall,
            virt / wall
        )
    }
}

/// Joins by magnet link: `Engine::add_magnet`, then, on
/// `TorrentEvent::MetadataReceived`, the `StartMagnet` command (see
/// [`start_magnet`]).
fn join_by_magnet(
    engine: &mut Engine,
    now: Instant,
    info: &TorrentInfo,
    peers: &[SocketAddr],
) -> TorrentId {
    let mut uri = format!("magnet:?xt=urn:btih:{}", info.info_hash);
    for p in peers {
        uri.push_str(&format!("&x.pe={p}"));
    }
    let magnet = Magnet::parse(&uri).expect("a well-formed magnet link");
    engine
        .add_magnet(now, &magnet)
        .expect("a new engine has no torrent yet")
}

/// The application's answer to a magnet's metadata (see
/// [`join_by_magnet`]).
fn start_magnet(handle: &Handle, torrent: TorrentId, disk: Arc<MemDisk>) {
    let storage: Arc<dyn Disk> = disk;
    handle.send(Command::StartMagnet {
        torrent,
        storage,
        start: StartMode::Fresh,
        priorities: None,
        sequential: false,
        peers: Vec::new(),
    });
}

struct Callback {
    node: usize,
    /// Print this node's events (`SIM_TRACE=<node>`).
    trace: bool,
    rt: VirtualRuntime,
    state: Arc<Mutex<PeerState>>,
    log: Arc<Mutex<EventLog>>,
    handle: Handle,
    disk: Arc<MemDisk>,
}

impl Callback {
    fn on_event(&mut self, event: Option<&Event>, engine: &Engine) -> Control {
        let now = self.rt.now();
        let node = self.node;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let queries = std::mem::take(&mut state.queries);
        for q in queries {
            q(engine);
        }
        let Some(event) = event else {
            return Control::Continue;
        };
        state.events += 1;
        {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let line = format!("{} n{node} {event:?}\n", now.as_nanos());
            if self.trace {
                eprint!("{line}");
            }
            log.hash.update(line.as_bytes());
            log.len += 1;
        }
        let fail = |what: &str| -> ! { panic!("node {node} at t={now}: {what} (after {event:?})") };
        if let Event::Torrent(t, e) = event {
            if state.torrents_seen.insert(*t) && state.torrent.is_some_and(|old| old != *t) {
                fail("a second torrent id for the one torrent");
            }
            state.torrent = Some(*t);
            match e {
                TorrentEvent::PeerConnected { conn, addr } => {
                    state.met.entry(*addr).or_insert(now);
                    let other = state.open.insert(*conn, *t);
                    if other.is_some_and(|o| o != *t) {
                        fail("a connection routed to two torrents");
                    }
                }
                TorrentEvent::PeerDisconnected { conn, .. } => {
                    let routed = state.open.remove(conn);
                    if routed.is_some_and(|o| o != *t) {
                        fail("a connection closed by a torrent it was not routed to");
                    }
                }
                TorrentEvent::Finished => {
                    state.finished_at.get_or_insert(now);
                }
                TorrentEvent::PeerBanned(addr) => {
                    state.banned.insert(addr.ip());
                }
                TorrentEvent::HashFailed { .. } => state.hash_failures += 1,
                TorrentEvent::MetadataReceived => {
                    start_magnet(&self.handle, *t, self.disk.clone());
                }
                _ => {}
            }
        }
        for id in engine.torrent_ids() {
            let Some(t) = engine.torrent(id) else {
                fail("a listed torrent id without a torrent");
            };
            if let Err(e) = t.check_invariants() {
                fail(e);
            }
            if state.events.is_multiple_of(DEEP_CHECK_EVERY) {
                if let Err(e) = t.check_picker() {
                    fail(e);
                }
            }
        }
        Control::Continue
    }
}
