//! The `Engine`: the one machine a driver talks to.
//!
//! It owns the torrents, routes incoming connections to them by info-hash,
//! and speaks to trackers for them (HTTP requests go out as
//! [`Output::Http`]; UDP trackers run inside as [`UdpTrackerClient`]s).
//! With [`EngineConfig::dht`] set it also runs a DHT node on the same UDP
//! socket (KRPC datagrams start with `d`, tracker replies with a zero
//! byte) and announces every public torrent there, feeding the peers it
//! finds to the torrent (BEP 5; never for private torrents, BEP 27).
//! Its shape is str0m's: `handle_*` inputs and commands, then
//! [`poll_output`](Engine::poll_output) until it returns
//! [`Output::Timeout`].
//!
//! **The drain rule**: after every input or command, call `poll_output`
//! until it returns `Output::Timeout(t)`; carry out each output; then wait
//! for the next input or for `t`, whichever comes first, and call
//! [`handle_timeout`](Engine::handle_timeout) when `t` passes. Every output
//! that expects an answer names what to answer with.
//!
//! ```
//! use bittide_core::engine::{Engine, EngineConfig, Output};
//! use bittide_core::{Instant, Seed};
//!
//! let mut engine = Engine::new(EngineConfig::default(), Seed::from_u64(1));
//! let mut now = Instant::ZERO;
//! // A driver's loop, with the I/O left out:
//! for _ in 0..3 {
//!     let wake = loop {
//!         match engine.poll_output(now) {
//!             Output::Timeout(t) => break t,
//!             Output::Tcp { .. } | Output::Udp { .. } | Output::Disk { .. } => { /* do it */ }
//!             Output::Http { .. } | Output::Resolve { .. } | Output::Event(_) => { /* do it */ }
//!         }
//!     };
//!     // ... wait for socket/disk/HTTP input or `wake`; here: the timer.
//!     now = wake.max(now);
//!     engine.handle_timeout(now);
//! }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::dht::{Dht, DhtConfig, DhtEvent, LookupId};
use crate::handles::{ConnId, ConnIds, TorrentId};
use crate::metainfo::{FileSlice, InfoHash, PieceIndex};
use crate::metainfo::{Magnet, Metainfo, MetainfoError, PeerAddr};
use crate::picker::Priority;
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::torrent::fetch::{FetchConfig, FetchEvent, MetadataFetch};
use crate::torrent::{
    StartMode, Torrent, TorrentConfig, TorrentEvent, TorrentInfo, TorrentOutput, TorrentState,
};
use crate::tracker::http::{announce_url, parse_announce_response};
use crate::tracker::udp::{UdpTrackerClient, UdpTrackerEvent};
use crate::tracker::{AnnounceRequest, TrackerError};
use crate::wire::{BlockRef, PeerId, PROTOCOL};
pub use handshakes::HandshakeLimits;
use handshakes::{Admission, PendingHandshakes};
use swarm::Swarm;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peers on.
    pub listen_port: u16,
    /// Settings every torrent starts from.
    pub torrent: TorrentConfig,
    /// Limits on incoming connections still waiting for their handshake.
    pub handshakes: HandshakeLimits,
    /// The DHT node (`None`: no DHT).
    pub dht: Option<DhtSettings>,
}

/// How the engine's DHT node starts and announces.
#[derive(Clone, Debug)]
pub struct DhtSettings {
    /// The node's settings (a saved id goes in `config.id`).
    pub config: DhtConfig,
    /// Nodes to join through, by address (a saved state's nodes).
    pub nodes: Vec<SocketAddr>,
    /// Routers to join through, `host:port`, resolved by the driver.
    pub routers: Vec<String>,
    /// How often a downloading torrent looks for peers (and announces).
    pub search_interval: Duration,
    /// How often a seeding torrent announces.
    pub announce_interval: Duration,
}

impl Default for DhtSettings {
    fn default() -> DhtSettings {
        DhtSettings {
            config: DhtConfig::default(),
            nodes: Vec::new(),
            routers: Vec::new(),
            search_interval: Duration::from_secs(5 * 60),
            announce_interval: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            peer_id: PeerId(*b"-BT0001-000000000000"),
            listen_port: 6881,
            torrent: TorrentConfig::default(),
            handshakes: HandshakeLimits::default(),
            dht: None,
        }
    }
}

/// A TCP action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpAction {
    /// Open a connection (answer `handle_tcp_connected` or
    /// `handle_tcp_failed`).
    Connect(SocketAddr),
    /// Send bytes.
    Send(Vec<u8>),
    /// Close it (no answer needed).
    Close,
}

/// A disk job; the answer is the matching [`DiskResult`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// Read a block for a peer.
    Read {
        /// The peer's connection.
        conn: ConnId,
        /// The block.
        block: BlockRef,
        /// Where the bytes are.
        slices: Vec<FileSlice>,
    },
    /// SHA-1 a piece held in memory and, only if it matches, write it.
    Verify {
        /// The piece.
        piece: PieceIndex,
        /// Its blocks in order.
        blocks: Vec<Bytes>,
        /// Expected hash.
        hash: [u8; 20],
        /// Where the bytes go once verified (skip padding slices).
        slices: Vec<FileSlice>,
    },
    /// Read and SHA-1 a piece on disk (streaming: pieces may be up to
    /// 512 MiB).
    Check {
        /// The piece.
        piece: PieceIndex,
        /// Where its bytes are.
        slices: Vec<FileSlice>,
        /// Expected hash.
        hash: [u8; 20],
    },
    /// Create these zero-length files if they do not exist (no piece
    /// covers them, so no write ever would). Asked for once, when every
    /// wanted piece is on disk.
    CreateEmpty {
        /// File indices in torrent order.
        files: Vec<u32>,
    },
    /// Write one block of a piece too large to hold in memory (verified
    /// with a `Check` once all its blocks are written).
    Write {
        /// The block.
        block: BlockRef,
        /// Its bytes.
        data: Bytes,
        /// Where they go (skip padding slices).
        slices: Vec<FileSlice>,
    },
}

/// The answer to a [`DiskOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskResult {
    /// A `Read` finished (`None`: it failed).
    Read {
        /// The peer's connection.
        conn: ConnId,
        /// The block.
        block: BlockRef,
        /// Its bytes.
        data: Option<Vec<u8>>,
    },
    /// A `Verify` finished.
    Verified {
        /// The piece.
        piece: PieceIndex,
        /// Whether the hash matched.
        ok: bool,
        /// Whether it was then written (false: not verified, or the disk
        /// failed, e.g. full).
        written: bool,
    },
    /// A `Check` finished.
    Checked {
        /// The piece.
        piece: PieceIndex,
        /// Whether the data on disk matched.
        ok: bool,
    },
    /// A `CreateEmpty` finished.
    Created {
        /// Whether every file exists now.
        ok: bool,
    },
    /// A `Write` finished.
    Written {
        /// The block.
        block: BlockRef,
        /// Whether it is on disk.
        ok: bool,
    },
}

/// Identifies an HTTP request or name resolution the engine asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// What the application learns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Something happened in a torrent.
    Torrent(TorrentId, TorrentEvent),
    /// The DHT node learned our external address or took a new id (a good
    /// moment to save its state).
    Dht(DhtEvent),
    /// Something happened while fetching a magnet link's metadata; after
    /// [`FetchEvent::Done`], call [`Engine::start_magnet`].
    Magnet(TorrentId, FetchEvent),
    /// A disk job other than a piece write failed (creating a torrent's
    /// zero-length files); its storage knows why.
    DiskFailed(TorrentId),
    /// [`Engine::shutdown`] is complete: trackers were told `stopped` (or
    /// did not answer in time) and no disk job is in flight. Nothing more
    /// will come; the driver syncs its disks and ends.
    Stopped,
}

/// What the engine asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Output {
    /// A TCP action on a connection.
    Tcp {
        /// The connection.
        conn: ConnId,
        /// What to do.
        action: TcpAction,
    },
    /// Send a datagram from our UDP socket.
    Udp {
        /// Destination.
        to: SocketAddr,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A disk job for a torrent; answer with `handle_disk`.
    Disk {
        /// The torrent.
        torrent: TorrentId,
        /// The job.
        op: DiskOp,
    },
    /// An HTTP(S) GET; answer with `handle_http`.
    Http {
        /// Its id.
        request: RequestId,
        /// The full URL.
        url: String,
    },
    /// Resolve `host:port` (a UDP tracker, a DHT router, a magnet's `x.pe`
    /// peer); answer with `handle_resolved`.
    Resolve {
        /// Its id.
        request: RequestId,
        /// `host:port`.
        host: String,
    },
    /// Something for the application.
    Event(Event),
    /// Nothing more now; call `handle_timeout` at this instant.
    Timeout(Instant),
}

#[derive(Debug)]
struct UdpTracker {
    client: UdpTrackerClient,
    addr: Option<SocketAddr>,
    /// Waiting for the address.
    queued: Option<AnnounceRequest>,
}

#[derive(Clone, Debug)]
enum Pending {
    Announce {
        torrent: TorrentId,
        url: String,
    },
    Resolve {
        torrent: TorrentId,
        url: String,
    },
    DhtRouter,
    /// A magnet's `x.pe` peer given by name.
    Peer {
        torrent: TorrentId,
    },
}

/// A shutdown in progress ([`Engine::shutdown`]).
#[derive(Debug)]
struct Shutdown {
    /// When to report [`Event::Stopped`] even if trackers have not answered.
    deadline: Instant,
    reported: bool,
}

/// How long a shutdown waits for trackers to hear `stopped` and for disk
/// jobs to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The engine's DHT node and its schedule.
#[derive(Debug)]
struct DhtState {
    node: Dht,
    settings: DhtSettings,
    started: bool,
    /// Each public torrent's lookups.
    torrents: BTreeMap<TorrentId, DhtSchedule>,
}

/// When a torrent next looks itself up on the DHT, and how the last lookup
/// went.
#[derive(Debug)]
struct DhtSchedule {
    next: Instant,
    /// The lookup in flight.
    lookup: Option<LookupId>,
    /// Peers it found so far.
    found: usize,
    /// Lookups in a row that found nobody.
    dry: u32,
}

/// Wait before a torrent's first DHT lookup is retried while the table is
/// still empty.
const DHT_NOT_READY_RETRY: Duration = Duration::from_secs(5);
/// Wait after a downloading torrent's lookup found nobody; doubles with
/// each dry lookup up to the search interval (someone may announce soon:
/// a seeder that has just started, a swarm that is forming).
const DHT_DRY_RETRY: Duration = Duration::from_secs(30);

/// Bytes of the handshake up to and including the info-hash.
const HANDSHAKE_PREFIX: usize = 1 + PROTOCOL.len() + 8 + 20;

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    torrents: BTreeMap<TorrentId, Torrent>,
    /// Magnet links whose metadata is on its way (or in, waiting for
    /// [`Engine::start_magnet`]), with the links.
    magnets: BTreeMap<TorrentId, (MetadataFetch, Magnet)>,
    by_hash: BTreeMap<InfoHash, TorrentId>,
    /// Which torrent each connection belongs to: the only record of it
    /// (ids carry no meaning).
    conns: BTreeMap<ConnId, TorrentId>,
    /// Ids for every connection, ours and the torrents'.
    conn_ids: ConnIds,
    /// Incoming connections not yet routed to a torrent.
    handshakes: PendingHandshakes,
    udp: BTreeMap<(TorrentId, String), UdpTracker>,
    pending: BTreeMap<RequestId, Pending>,
    next_torrent: u64,
    next_request: u64,
    /// Disk jobs handed out and not yet answered (a shutdown waits for
    /// them).
    disk_in_flight: usize,
    /// Each torrent's zero-length files, created once when it is complete.
    empty_files: BTreeMap<TorrentId, Vec<u32>>,
    shutdown: Option<Shutdown>,
    out: VecDeque<Output>,
    dht: Option<DhtState>,
    rng: Rng,
    now: Instant,
}

impl Engine {
    /// An engine with no torrents.
    pub fn new(config: EngineConfig, seed: Seed) -> Engine {
        let mut rng = Rng::new(seed);
        let dht = config.dht.clone().map(|settings| DhtState {
            node: Dht::new(Instant::ZERO, settings.config.clone(), rng.child_seed()),
            settings,
            started: false,
            torrents: BTreeMap::new(),
        });
        Engine {
            handshakes: PendingHandshakes::new(config.handshakes.clone()),
            config,
            torrents: BTreeMap::new(),
            magnets: BTreeMap::new(),
            by_hash: BTreeMap::new(),
            conns: BTreeMap::new(),
            udp: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_torrent: 1,
            conn_ids: ConnIds::new(),
            next_request: 1,
            disk_in_flight: 0,
            empty_files: BTreeMap::new(),
            shutdown: None,
            out: VecDeque::new(),
            dht,
            rng,
            now: Instant::ZERO,
        }
    }

    /// The DHT node, if enabled (for its state, to save).
    pub fn dht(&self) -> Option<&Dht> {
        self.dht.as_ref().map(|d| &d.node)
    }

    /// The torrent with this id.
    pub fn torrent(&self, id: TorrentId) -> Option<&Torrent> {
        self.torrents.get(&id)
    }

    /// The metadata fetch of a magnet link added with
    /// [`add_magnet`](Engine::add_magnet), until it is started.
    pub fn magnet(&self, id: TorrentId) -> Option<&MetadataFetch> {
        self.magnets.get(&id).map(|(f, _)| f)
    }

    /// A magnet's .torrent file once its metadata is in: the info
    /// dictionary as received (so the info-hash is the same) with the
    /// link's trackers.
    pub fn magnet_torrent_file(&self, id: TorrentId) -> Option<Vec<u8>> {
        let (fetch, magnet) = self.magnets.get(&id)?;
        Some(torrent_file(fetch.metadata()?, &magnet_tiers(magnet)))
    }

    fn swarm(&mut self, id: TorrentId) -> Option<Swarm<'_>> {
        if let Some(t) = self.torrents.get_mut(&id) {
            return Some(Swarm::Torrent(t));
        }
        self.magnets.get_mut(&id).map(|(f, _)| Swarm::Fetch(f))
    }

    /// Incoming connections waiting for their handshake.
    pub fn pending_handshakes(&self) -> usize {
        self.handshakes.len()
    }

    /// Ids of all torrents.
    pub fn torrent_ids(&self) -> Vec<TorrentId> {
        self.torrents.keys().copied().collect()
    }

    // --- commands -----------------------------------------------------------

    /// Adds a torrent; `None` if one with the same info-hash is already in.
    pub fn add_torrent(
        &mut self,
        now: Instant,
        info: TorrentInfo,
        start: StartMode,
    ) -> Option<TorrentId> {
        self.now = now;
        if self.by_hash.contains_key(&info.info_hash) || self.shutdown.is_some() {
            return None;
        }
        let id = TorrentId::new(self.next_torrent);
        self.next_torrent += 1;
        let config = self.torrent_config();
        self.by_hash.insert(info.info_hash, id);
        self.note_empty_files(id, &info);
        if !info.private {
            self.schedule_dht(now, id);
        }
        let torrent = Torrent::new(now, info, config, start, self.rng.child_seed());
        self.torrents.insert(id, torrent);
        Some(id)
    }

    /// Adds a magnet link: its metadata is fetched from peers (BEP 9) found
    /// through its `tr` trackers, its `x.pe` addresses (names are resolved
    /// with [`Output::Resolve`]) and the DHT. `None` without a v1
    /// info-hash, if the torrent is already in, or during a shutdown.
    pub fn add_magnet(&mut self, now: Instant, magnet: &Magnet) -> Option<TorrentId> {
        self.now = now;
        let info_hash = magnet.info_hash?;
        if self.by_hash.contains_key(&info_hash) || self.shutdown.is_some() {
            return None;
        }
        let id = TorrentId::new(self.next_torrent);
        self.next_torrent += 1;
        let config = self.torrent_config();
        let mut fetch = MetadataFetch::new(
            now,
            info_hash,
            magnet_tiers(magnet),
            FetchConfig::from_torrent(&config),
            self.rng.child_seed(),
        );
        let peers = magnet.peers.iter().filter_map(|p| match p {
            PeerAddr::Ip(a) => Some(*a),
            PeerAddr::Host(..) => None,
        });
        fetch.add_peers(now, peers, crate::torrent::peers::PeerSource::User);
        for p in &magnet.peers {
            if let PeerAddr::Host(host, port) = p {
                let request = self.request_id();
                self.pending.insert(request, Pending::Peer { torrent: id });
                self.out.push_back(Output::Resolve {
                    request,
                    host: format!("{host}:{port}"),
                });
            }
        }
        self.by_hash.insert(info_hash, id);
        self.schedule_dht(now, id);
        self.magnets.insert(id, (fetch, magnet.clone()));
        Some(id)
    }

    /// Turns a magnet whose metadata is in ([`FetchEvent::Done`]) into a
    /// torrent, as if added from its .torrent file: it reconnects to the
    /// peers the fetch met, and downloads only the files the link's `so=`
    /// names (BEP 53), if it names any. `start` says what is already on
    /// disk (the driver can tell only now that it knows the files).
    pub fn start_magnet(
        &mut self,
        now: Instant,
        id: TorrentId,
        start: StartMode,
    ) -> Result<(), MetainfoError> {
        self.now = now;
        let Some(bytes) = self.magnet_torrent_file(id) else {
            return Err(MetainfoError::MissingField { field: "info" });
        };
        let metainfo = Metainfo::from_bytes(&bytes)?;
        let info = TorrentInfo::from_metainfo(&metainfo);
        let Some((fetch, magnet)) = self.magnets.remove(&id) else {
            return Err(MetainfoError::MissingField { field: "info" });
        };
        let file_count = metainfo.info.files().len();
        let peers = fetch.addresses();
        if info.private {
            if let Some(d) = &mut self.dht {
                d.torrents.remove(&id);
            }
        }
        let config = self.torrent_config();
        self.note_empty_files(id, &info);
        let mut torrent = Torrent::new(now, info, config, start, self.rng.child_seed());
        if !magnet.select_only.is_empty() {
            let priorities: Vec<Priority> = (0..file_count as u32)
                .map(|i| {
                    if magnet.select_only.iter().any(|r| r.contains(&i)) {
                        Priority::Normal
                    } else {
                        Priority::Skip
                    }
                })
                .collect();
            torrent.set_file_priorities(now, &priorities);
        }
        torrent.add_peers(now, peers, crate::torrent::peers::PeerSource::User);
        self.torrents.insert(id, torrent);
        Ok(())
    }

    fn torrent_config(&self) -> crate::torrent::TorrentConfig {
        let mut config = self.config.torrent.clone();
        config.peer_id = self.config.peer_id;
        config.listen_port = self.config.listen_port;
        config.conn_ids = self.conn_ids.clone();
        config
    }

    fn note_empty_files(&mut self, id: TorrentId, info: &TorrentInfo) {
        let layout = &info.layout;
        let files: Vec<u32> = (0..layout.file_count())
            .filter(|&i| !layout.is_padding(i))
            .filter(|&i| layout.file_range(i).is_some_and(|r| r.is_empty()))
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        if !files.is_empty() {
            self.empty_files.insert(id, files);
        }
    }

    /// Stops every torrent (trackers are told `stopped`), refuses new
    /// peers and torrents, and reports [`Event::Stopped`] once the
    /// trackers have answered and no disk job is in flight, or
    /// [`SHUTDOWN_GRACE`] from now at the latest. The driver carries on
    /// draining outputs until then: lifecycle is the engine's, not the
    /// driver's.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = now;
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(Shutdown {
            deadline: now + SHUTDOWN_GRACE,
            reported: false,
        });
        for id in self.torrent_ids() {
            self.stop(now, id);
        }
        let magnets: Vec<TorrentId> = self.magnets.keys().copied().collect();
        for id in magnets {
            if let Some((f, _)) = self.magnets.get_mut(&id) {
                f.close(now, false);
            }
        }
        for conn in self.handshakes.drain() {
            self.close(conn);
        }
    }

    /// Whether a shutdown has been asked for.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Nothing left that a shutdown waits for.
    fn is_quiet(&self) -> bool {
        self.disk_in_flight == 0
            && !self
                .pending
                .values()
                .any(|p| matches!(p, Pending::Announce { .. } | Pending::Resolve { .. }))
            && self.udp.values().all(|t| !t.client.is_busy())
            && self.torrents.values().all(|t| t.poll_timeout().is_none())
    }

    fn schedule_dht(&mut self, now: Instant, id: TorrentId) {
        if let Some(d) = &mut self.dht {
            d.torrents.insert(
                id,
                DhtSchedule {
                    next: now,
                    lookup: None,
                    found: 0,
                    dry: 0,
                },
            );
        }
    }

    /// Adds peer addresses to a torrent (from the user, a magnet's `x.pe`).
    pub fn add_peers(&mut self, now: Instant, id: TorrentId, peers: Vec<SocketAddr>) {
        self.now = now;
        match self.swarm(id) {
            Some(Swarm::Torrent(t)) => {
                t.add_peers(now, peers, crate::torrent::peers::PeerSource::User)
            }
            Some(Swarm::Fetch(f)) => {
                f.add_peers(now, peers, crate::torrent::peers::PeerSource::User)
            }
            None => {}
        }
    }

    /// Pauses a torrent.
    pub fn pause(&mut self, now: Instant, id: TorrentId) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.pause(now);
        }
    }

    /// Resumes a torrent.
    pub fn resume(&mut self, now: Instant, id: TorrentId) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.resume(now);
        }
    }

    /// Stops a torrent for good (it announces `stopped`; it stays listed
    /// until [`remove`](Engine::remove)).
    pub fn stop(&mut self, now: Instant, id: TorrentId) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.stop(now);
        }
    }

    /// Removes a torrent (stopping it first if needed).
    pub fn remove(&mut self, now: Instant, id: TorrentId) {
        self.stop(now, id);
        if let Some((f, _)) = self.magnets.get_mut(&id) {
            f.close(now, false);
        }
        self.drain_torrent(id);
        if let Some(t) = self.torrents.remove(&id) {
            self.by_hash.remove(&t.info_hash());
        }
        if let Some((f, _)) = self.magnets.remove(&id) {
            self.by_hash.remove(&f.info_hash());
        }
        self.conns.retain(|_, t| *t != id);
        self.udp.retain(|(t, _), _| *t != id);
    }

    /// Sets file priorities of a torrent.
    pub fn set_file_priorities(&mut self, now: Instant, id: TorrentId, files: &[Priority]) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.set_file_priorities(now, files);
        }
    }

    /// Downloads a torrent in piece order.
    pub fn set_sequential(&mut self, id: TorrentId, sequential: bool) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.set_sequential(sequential);
        }
    }

    // --- inputs -------------------------------------------------------------

    fn torrent_of(&self, conn: ConnId) -> Option<TorrentId> {
        self.conns.get(&conn).copied()
    }

    /// An outgoing connection opened.
    pub fn handle_tcp_connected(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if let Some(id) = self.torrent_of(conn) {
            self.conns.insert(conn, id);
            if let Some(t) = self.swarm(id) {
                t.handle_connected(now, conn);
            }
        }
    }

    /// An outgoing connection failed.
    pub fn handle_tcp_failed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if let Some(id) = self.torrent_of(conn) {
            self.conns.remove(&conn);
            if let Some(t) = self.swarm(id) {
                t.handle_connect_failed(now, conn);
            }
        }
    }

    /// A peer connected to our listen port. Returns the id to use for it,
    /// or `None` to close it at once (its IP already has as many
    /// handshakes waiting as it may). To make room, an older connection
    /// still waiting may be closed (the `handshakes` module explains the rules).
    pub fn handle_tcp_incoming(&mut self, now: Instant, addr: SocketAddr) -> Option<ConnId> {
        self.now = now;
        if self.shutdown.is_some() {
            return None;
        }
        let conn = self.conn_ids.next_id();
        match self.handshakes.admit(now, conn, addr) {
            Admission::Refused => return None,
            Admission::Evicted(old) => self.close(old),
            Admission::Admitted => {}
        }
        Some(conn)
    }

    fn close(&mut self, conn: ConnId) {
        self.out.push_back(Output::Tcp {
            conn,
            action: TcpAction::Close,
        });
    }

    /// Bytes arrived on a connection (copied; see
    /// [`handle_tcp_chunk`](Engine::handle_tcp_chunk)).
    pub fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.handle_tcp_chunk(now, conn, Bytes::copy_from_slice(data));
    }

    /// A chunk arrived on a connection; blocks are decoded in place.
    pub fn handle_tcp_chunk(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        self.now = now;
        if self.handshakes.contains(conn) {
            self.route_handshake(now, conn, &data);
            return;
        }
        if let Some(&id) = self.conns.get(&conn) {
            if let Some(t) = self.swarm(id) {
                t.handle_chunk(now, conn, data);
            }
        }
    }

    /// Bytes of an incoming connection not yet routed: once the
    /// handshake names an info-hash, the connection goes to that torrent
    /// with everything it sent so far.
    fn route_handshake(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let buf = self.handshakes.push(conn, data);
        if crate::wire::Handshake::check_prefix(buf).is_err() {
            self.handshakes.remove(conn);
            self.close(conn);
            return;
        }
        if buf.len() < HANDSHAKE_PREFIX {
            return;
        }
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&buf[HANDSHAKE_PREFIX - 20..HANDSHAKE_PREFIX]);
        let Some((addr, bytes)) = self.handshakes.remove(conn) else {
            return;
        };
        let routed = self.by_hash.get(&InfoHash(hash)).copied().and_then(|id| {
            let t = self.swarm(id)?;
            t.handle_incoming(now, conn, addr).then_some(id)
        });
        match routed {
            Some(id) => {
                self.conns.insert(conn, id);
                if let Some(t) = self.swarm(id) {
                    t.handle_chunk(now, conn, Bytes::from(bytes));
                }
            }
            None => self.close(conn),
        }
    }

    /// A connection closed.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        self.handshakes.remove(conn);
        if let Some(id) = self.conns.remove(&conn) {
            if let Some(t) = self.swarm(id) {
                t.handle_closed(now, conn);
            }
        }
    }

    /// A datagram arrived on our UDP socket.
    pub fn handle_udp(&mut self, now: Instant, from: SocketAddr, payload: &[u8]) {
        self.now = now;
        if payload.first() == Some(&b'd') {
            if let Some(d) = &mut self.dht {
                d.node.handle_datagram(now, from, payload);
                self.collect_dht(now);
            }
            return;
        }
        for tracker in self.udp.values_mut() {
            if tracker.addr == Some(from) && tracker.client.is_busy() {
                tracker.client.handle_datagram(now, payload);
            }
        }
        self.collect_udp(now);
    }

    /// A disk job finished.
    pub fn handle_disk(&mut self, now: Instant, torrent: TorrentId, result: DiskResult) {
        self.now = now;
        self.disk_in_flight = self.disk_in_flight.saturating_sub(1);
        let Some(t) = self.torrents.get_mut(&torrent) else {
            return;
        };
        match result {
            DiskResult::Created { ok } => {
                if !ok {
                    self.out
                        .push_back(Output::Event(Event::DiskFailed(torrent)));
                }
            }
            DiskResult::Read { conn, block, data } => {
                t.handle_read(now, conn, block, data.as_deref())
            }
            DiskResult::Verified { piece, ok, written } => {
                t.handle_verified(now, piece, ok, written)
            }
            DiskResult::Checked { piece, ok } => t.handle_checked(now, piece, ok),
            DiskResult::Written { block, ok } => t.handle_written(now, block, ok),
        }
    }

    /// An HTTP request finished: the body, or why it failed.
    pub fn handle_http(
        &mut self,
        now: Instant,
        request: RequestId,
        result: Result<Vec<u8>, TrackerError>,
    ) {
        self.now = now;
        let Some(Pending::Announce { torrent, url }) = self.pending.remove(&request) else {
            return;
        };
        let parsed = result.and_then(|body| parse_announce_response(&body));
        if let Some(t) = self.swarm(torrent) {
            t.handle_announce(now, &url, parsed);
        }
    }

    /// A name resolution finished.
    pub fn handle_resolved(&mut self, now: Instant, request: RequestId, addrs: Vec<SocketAddr>) {
        self.now = now;
        let (torrent, url) = match self.pending.remove(&request) {
            Some(Pending::Resolve { torrent, url }) => (torrent, url),
            Some(Pending::Peer { torrent }) => {
                self.add_peers(now, torrent, addrs);
                return;
            }
            Some(Pending::DhtRouter) => {
                if let Some(d) = &mut self.dht {
                    // Each router answers with many nodes: one join is
                    // enough, later routers only help while the table is
                    // nearly empty.
                    let v4: Vec<SocketAddr> =
                        addrs.into_iter().filter(SocketAddr::is_ipv4).collect();
                    if !v4.is_empty() && d.node.table().len() < crate::dht::routing::K {
                        d.node.bootstrap(now, &v4);
                    }
                }
                self.collect_dht(now);
                return;
            }
            _ => return,
        };
        let key = (torrent, url.clone());
        match (addrs.first(), self.udp.get_mut(&key)) {
            (Some(addr), Some(tracker)) => {
                tracker.addr = Some(*addr);
                if let Some(req) = tracker.queued.take() {
                    tracker.client.announce(now, req);
                }
                self.collect_udp(now);
            }
            _ => {
                self.udp.remove(&key);
                if let Some(t) = self.swarm(torrent) {
                    t.handle_announce(now, &url, Err(TrackerError::BadUrl("host did not resolve")));
                }
            }
        }
    }

    /// A deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for conn in self.handshakes.expire(now) {
            self.close(conn);
        }
        for t in self.torrents.values_mut() {
            if t.poll_timeout().is_some_and(|d| d <= now) {
                t.handle_timeout(now);
            }
        }
        for (f, _) in self.magnets.values_mut() {
            if f.poll_timeout().is_some_and(|d| d <= now) {
                f.handle_timeout(now);
            }
        }
        for tracker in self.udp.values_mut() {
            if tracker.client.poll_timeout().is_some_and(|d| d <= now) {
                tracker.client.handle_timeout(now);
            }
        }
        self.collect_udp(now);
        if let Some(d) = &mut self.dht {
            if d.node.poll_timeout().is_some_and(|t| t <= now) {
                d.node.handle_timeout(now);
            }
        }
        self.dht_lookups(now);
        self.collect_dht(now);
    }

    // --- DHT ----------------------------------------------------------------

    /// Starts the node (once), then looks up every public, running torrent
    /// whose turn has come.
    fn dht_lookups(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        let Some(d) = &mut self.dht else {
            return;
        };
        if !d.started {
            d.started = true;
            if !d.settings.nodes.is_empty() {
                let nodes = d.settings.nodes.clone();
                d.node.bootstrap(now, &nodes);
            }
            for host in d.settings.routers.clone() {
                let id = RequestId(self.next_request);
                self.next_request += 1;
                self.pending.insert(id, Pending::DhtRouter);
                self.out.push_back(Output::Resolve { request: id, host });
            }
        }
        let Some(d) = &mut self.dht else {
            return;
        };
        d.torrents
            .retain(|id, _| self.torrents.contains_key(id) || self.magnets.contains_key(id));
        for (id, s) in d.torrents.iter_mut() {
            // A magnet looks for peers until its metadata is in.
            let (info_hash, state) = match (self.torrents.get(id), self.magnets.get(id)) {
                (Some(t), _) => (t.info_hash(), t.state()),
                (None, Some((f, _))) if f.metadata().is_none() => {
                    (f.info_hash(), TorrentState::Downloading)
                }
                _ => continue,
            };
            if s.next > now {
                continue;
            }
            let running = matches!(state, TorrentState::Downloading | TorrentState::Seeding);
            if !running || d.node.table().is_empty() {
                // Checking, paused or stopped, or no node known yet: look
                // again in a moment.
                s.next = now + DHT_NOT_READY_RETRY;
                continue;
            }
            // An announce lookup also returns the peers it meets (BEP 5:
            // get_peers, then announce_peer to the closest with tokens).
            s.lookup = Some(
                d.node
                    .announce(now, info_hash, self.config.listen_port, false),
            );
            s.found = 0;
            // Until the lookup ends (and as a fallback should it never
            // report).
            s.next = now + d.settings.search_interval;
        }
    }

    /// After a torrent's lookup: when to look again.
    fn dht_lookup_done(&mut self, now: Instant, lookup: LookupId) {
        let Some(d) = &mut self.dht else {
            return;
        };
        let Some((id, s)) = d
            .torrents
            .iter_mut()
            .find(|(_, s)| s.lookup == Some(lookup))
        else {
            return;
        };
        s.lookup = None;
        let seeding = self
            .torrents
            .get(id)
            .is_some_and(|t| t.state() == TorrentState::Seeding);
        let wait = if seeding {
            d.settings.announce_interval
        } else if s.found == 0 {
            let wait = DHT_DRY_RETRY.saturating_mul(1 << s.dry.min(16));
            s.dry += 1;
            wait.min(d.settings.search_interval)
        } else {
            s.dry = 0;
            d.settings.search_interval
        };
        s.next = now + wait;
    }

    /// Moves the DHT node's datagrams out and its peers to their torrents.
    fn collect_dht(&mut self, now: Instant) {
        let Some(d) = &mut self.dht else {
            return;
        };
        while let Some((to, payload)) = d.node.poll_transmit() {
            self.out.push_back(Output::Udp { to, payload });
        }
        let mut done = Vec::new();
        let mut found = Vec::new();
        while let Some(e) = d.node.poll_event() {
            match e {
                DhtEvent::Peers {
                    lookup,
                    info_hash,
                    peers,
                } => {
                    if let Some(s) = d.torrents.values_mut().find(|s| s.lookup == Some(lookup)) {
                        s.found += peers.len();
                    }
                    if let Some(&id) = self.by_hash.get(&info_hash) {
                        found.push((id, peers));
                    }
                }
                DhtEvent::LookupDone { lookup, .. } => done.push(lookup),
                DhtEvent::ExternalAddress(_) | DhtEvent::IdChanged(_) => {
                    self.out.push_back(Output::Event(Event::Dht(e)));
                }
                _ => {}
            }
        }
        for (id, peers) in found {
            if let Some(t) = self.swarm(id) {
                t.add_dht_peers(now, peers);
            }
        }
        for lookup in done {
            self.dht_lookup_done(now, lookup);
        }
    }

    // --- output -------------------------------------------------------------

    fn request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    fn announce(
        &mut self,
        now: Instant,
        torrent: TorrentId,
        url: String,
        request: AnnounceRequest,
    ) {
        if url.starts_with("http://") || url.starts_with("https://") {
            let id = self.request_id();
            self.pending.insert(
                id,
                Pending::Announce {
                    torrent,
                    url: url.clone(),
                },
            );
            self.out.push_back(Output::Http {
                request: id,
                url: announce_url(&url, &request),
            });
        } else if let Some(rest) = url.strip_prefix("udp://") {
            let rest = rest.to_owned();
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let key = (torrent, url.clone());
            if !self.udp.contains_key(&key) {
                let ipv6 = host.starts_with('[');
                let client =
                    UdpTrackerClient::new(ipv6, path.as_bytes().to_vec(), self.rng.child_seed());
                self.udp.insert(
                    key.clone(),
                    UdpTracker {
                        client,
                        addr: None,
                        queued: None,
                    },
                );
            }
            let literal: Option<SocketAddr> = host.parse().ok();
            let Some(tracker) = self.udp.get_mut(&key) else {
                return;
            };
            if let Some(a) = literal {
                tracker.addr = Some(a);
            }
            if tracker.addr.is_some() {
                tracker.client.announce(now, request);
                self.collect_udp(now);
            } else {
                tracker.queued = Some(request);
                let id = self.request_id();
                self.pending.insert(id, Pending::Resolve { torrent, url });
                self.out.push_back(Output::Resolve {
                    request: id,
                    host: host.to_owned(),
                });
            }
        } else if let Some(t) = self.swarm(torrent) {
            t.handle_announce(
                now,
                &url,
                Err(TrackerError::BadUrl("scheme must be http, https or udp")),
            );
        }
    }

    /// Moves UDP tracker datagrams and results where they belong.
    fn collect_udp(&mut self, now: Instant) {
        let mut results = Vec::new();
        for ((torrent, url), tracker) in self.udp.iter_mut() {
            while let Some(payload) = tracker.client.poll_transmit() {
                if let Some(to) = tracker.addr {
                    self.out.push_back(Output::Udp { to, payload });
                }
            }
            while let Some(ev) = tracker.client.poll_event() {
                results.push((*torrent, url.clone(), ev));
            }
        }
        for (torrent, url, ev) in results {
            let Some(t) = self.swarm(torrent) else {
                continue;
            };
            match ev {
                UdpTrackerEvent::Announced(r) => t.handle_announce(now, &url, Ok(r)),
                UdpTrackerEvent::Failed(e) => t.handle_announce(now, &url, Err(e)),
                UdpTrackerEvent::Scraped(_) => {}
            }
        }
    }

    /// Moves one torrent's outputs into the engine's queue (and a fetch's
    /// events: once the metadata is in, its connections close, and the
    /// torrent takes over on [`start_magnet`](Engine::start_magnet)).
    fn drain_torrent(&mut self, id: TorrentId) {
        while let Some((f, _)) = self.magnets.get_mut(&id) {
            let Some(e) = f.poll_event() else {
                break;
            };
            if matches!(e, FetchEvent::Done { .. }) {
                f.close(self.now, true);
                if let Some(d) = &mut self.dht {
                    // Looked up again as a torrent once started.
                    if let Some(s) = d.torrents.get_mut(&id) {
                        s.next = self.now;
                        s.lookup = None;
                    }
                }
            }
            self.out.push_back(Output::Event(Event::Magnet(id, e)));
        }
        loop {
            let Some(o) = self.swarm(id).and_then(Swarm::poll_output) else {
                break;
            };
            let now = self.now;
            match o {
                TorrentOutput::Connect { conn, addr } => {
                    self.conns.insert(conn, id);
                    self.out.push_back(Output::Tcp {
                        conn,
                        action: TcpAction::Connect(addr),
                    });
                }
                TorrentOutput::Send { conn, data } => {
                    self.out.push_back(Output::Tcp {
                        conn,
                        action: TcpAction::Send(data),
                    });
                }
                TorrentOutput::Close { conn } => {
                    self.conns.remove(&conn);
                    self.out.push_back(Output::Tcp {
                        conn,
                        action: TcpAction::Close,
                    });
                }
                TorrentOutput::Verify {
                    piece,
                    blocks,
                    hash,
                    slices,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Verify {
                        piece,
                        blocks,
                        hash,
                        slices,
                    },
                }),
                TorrentOutput::Write {
                    block,
                    data,
                    slices,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Write {
                        block,
                        data,
                        slices,
                    },
                }),
                TorrentOutput::Read {
                    conn,
                    block,
                    slices,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Read {
                        conn,
                        block,
                        slices,
                    },
                }),
                TorrentOutput::Check {
                    piece,
                    slices,
                    hash,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Check {
                        piece,
                        slices,
                        hash,
                    },
                }),
                TorrentOutput::Announce { url, request } => self.announce(now, id, url, request),
                TorrentOutput::Event(e) => {
                    // Every wanted piece is on disk (downloaded, or found
                    // so by the start-up check): the empty files too.
                    let complete = matches!(
                        e,
                        TorrentEvent::Finished | TorrentEvent::StateChanged(TorrentState::Seeding)
                    );
                    if let Some(files) = complete.then(|| self.empty_files.remove(&id)).flatten() {
                        let op = DiskOp::CreateEmpty { files };
                        self.out.push_back(Output::Disk { torrent: id, op });
                    }
                    self.out.push_back(Output::Event(Event::Torrent(id, e)))
                }
            }
        }
    }

    /// Reports [`Event::Stopped`] once a shutdown has nothing left to wait
    /// for.
    fn check_stopped(&mut self) {
        if self.shutdown.as_ref().is_none_or(|s| s.reported) {
            return;
        }
        let quiet = self.is_quiet();
        let Some(s) = &mut self.shutdown else {
            return;
        };
        if quiet || self.now >= s.deadline {
            s.reported = true;
            self.out.push_back(Output::Event(Event::Stopped));
        }
    }

    /// The next thing to do; always ends with [`Output::Timeout`].
    pub fn poll_output(&mut self, now: Instant) -> Output {
        self.now = self.now.max(now);
        if self.out.is_empty() {
            let ids: Vec<TorrentId> = self
                .torrents
                .keys()
                .chain(self.magnets.keys())
                .copied()
                .collect();
            for id in ids {
                self.drain_torrent(id);
            }
        }
        if self.out.is_empty() {
            self.check_stopped();
        }
        if let Some(o) = self.out.pop_front() {
            if matches!(o, Output::Disk { .. }) {
                self.disk_in_flight += 1;
            }
            return o;
        }
        let mut next = self.handshakes.next_deadline().unwrap_or(Instant::MAX);
        if let Some(s) = &self.shutdown {
            if !s.reported {
                next = next.min(s.deadline);
            }
        }
        for t in self.torrents.values() {
            if let Some(d) = t.poll_timeout() {
                next = next.min(d);
            }
        }
        for (f, _) in self.magnets.values() {
            if let Some(d) = f.poll_timeout() {
                next = next.min(d);
            }
        }
        for tracker in self.udp.values() {
            if let Some(d) = tracker.client.poll_timeout() {
                next = next.min(d);
            }
        }
        if let Some(d) = &self.dht {
            if !d.started && self.shutdown.is_none() {
                next = next.min(self.now);
            }
            if let Some(t) = d.node.poll_timeout() {
                next = next.min(t);
            }
            for s in d.torrents.values() {
                next = next.min(s.next);
            }
        }
        // Deadlines never go backwards past what we have seen (str0m).
        Output::Timeout(next.max(self.now))
    }
}

/// A magnet's trackers as tiers: each its own, as libtorrent does.
fn magnet_tiers(magnet: &Magnet) -> Vec<Vec<String>> {
    magnet.trackers.iter().map(|t| vec![t.clone()]).collect()
}

/// A .torrent file around an info dictionary: `announce` and
/// `announce-list` from `tiers`, then `info` byte for byte.
fn torrent_file(info: &[u8], tiers: &[Vec<String>]) -> Vec<u8> {
    use crate::bencode::{encode_bytes, Value};
    let mut out = vec![b'd'];
    if let Some(first) = tiers.iter().flatten().next() {
        encode_bytes(&mut out, b"announce");
        encode_bytes(&mut out, first.as_bytes());
        encode_bytes(&mut out, b"announce-list");
        Value::list(
            tiers
                .iter()
                .map(|t| Value::list(t.iter().map(|u| Value::bytes(u.as_bytes())).collect()))
                .collect(),
        )
        .encode(&mut out);
    }
    encode_bytes(&mut out, b"info");
    out.extend_from_slice(info);
    out.push(b'e');
    out
}

mod handshakes;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod lifecycle_tests;
mod swarm;
#[cfg(test)]
mod tests;
