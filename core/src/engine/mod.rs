//! The `Engine`: the one machine a driver talks to.
//!
//! It owns the torrents and their lifecycle (add, pause, remove,
//! [`shutdown`](Engine::shutdown)), and composes the parts, each in its
//! own module:
//!
//! - `routing`: which torrent each connection belongs to (one map; ids
//!   carry no meaning), incoming connections until their handshake names a
//!   torrent (`handshakes` bounds how many may wait);
//! - `transport`: TCP (the driver's) and uTP (BEP 29, on the UDP
//!   socket) under every connection ([`Transports`]), which transport an
//!   outgoing connection tries first and the fallback to the other;
//! - `encryption`: MSE/PE on connections ([`EncryptionMode`]), between
//!   the transports and the torrents, which see plaintext either way;
//! - `trackers`: every torrent's announces; HTTP as [`Output::Http`], UDP
//!   through one [`UdpTrackerClient`](crate::tracker::udp::UdpTrackerClient)
//!   per tracker address shared by all torrents;
//! - `dht`: with [`EngineConfig::dht`] set, a DHT node on the same UDP
//!   socket (KRPC datagrams start with `d`), and one on the IPv6 socket
//!   (BEP 32), announcing every public torrent and feeding it the peers
//!   they find (BEP 5; never for private torrents, BEP 27);
//! - `timers`: the table of deadlines, which says which part set the next
//!   wake-up ([`Engine::next_timer`]);
//! - `output`: what the engine asks of the driver and tells the
//!   application.
//!
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
//!             _ => { /* kinds added later */ }
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

use crate::dht::{Dht, SavedDht};
use crate::handles::{ConnId, ConnIds, TorrentId};
use crate::lsd::LocalDiscovery;
use crate::metainfo::InfoHash;
use crate::metainfo::Magnet;
use crate::picker::Priority;
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::torrent::peers::PeerSource;
use crate::torrent::{StartMode, Torrent, TorrentInfo};
use crate::tracker::TrackerError;
use crate::IpFamily;
pub use config::{DhtSettings, EngineConfig, SeedingGoal, SessionLimits, Transports};
use dht::DhtState;
use encryption::Encryption;
pub use encryption::{EncryptionMode, UnknownEncryptionMode};
use fetches::Fetches;
pub use fetches::{FetchConfig, FetchFailure, FetchStats};
pub use handshakes::HandshakeLimits;
use handshakes::PendingHandshakes;
pub use output::{
    run_verdicts, write_hash, DiskOp, DiskResult, Event, Output, RequestId, RequestIds, TcpAction,
};
use policy::Policy;
use table::TorrentTable;
pub use timers::TimerReason;
use timers::{Timer, Timers};
use trackers::Trackers;
pub use transport::Transport;
use transport::TransportState;

/// A name lookup of the engine's own (trackers keep theirs).
#[derive(Clone, Debug)]
enum Pending {
    DhtRouter,
    /// A magnet's `x.pe` peer given by name.
    Peer {
        torrent: TorrentId,
    },
    /// A run asked of a torrent's web seed (BEP 19).
    WebSeed {
        torrent: TorrentId,
        job: crate::torrent::WebJob,
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

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    torrents: TorrentTable,
    /// The links of magnets not yet started (their `so=` applies at
    /// [`Engine::start_magnet`]).
    magnets: BTreeMap<TorrentId, Magnet>,
    by_hash: BTreeMap<InfoHash, TorrentId>,
    /// Which torrent each connection belongs to: the only record of it
    /// (ids carry no meaning).
    conns: BTreeMap<ConnId, TorrentId>,
    /// Ids for every connection, ours and the torrents'.
    conn_ids: ConnIds,
    /// Incoming connections not yet routed to a torrent.
    handshakes: PendingHandshakes,
    /// MSE handshakes and ciphers of the connections that have them.
    encryption: Encryption,
    /// The uTP socket and which transport each connection uses.
    transport: TransportState,
    trackers: Trackers,
    pending: BTreeMap<RequestId, Pending>,
    requests: RequestIds,
    next_torrent: u64,
    /// Disk jobs handed out and not yet answered (a shutdown waits for
    /// them).
    disk_in_flight: usize,
    /// Each torrent's zero-length files, created once when it is complete.
    empty_files: BTreeMap<TorrentId, Vec<u32>>,
    shutdown: Option<Shutdown>,
    out: VecDeque<Output>,
    dht: Option<DhtState>,
    lsd: Option<LocalDiscovery>,
    /// When each part wants its `handle_timeout`, as of the last
    /// `poll_output`.
    timers: Timers,
    /// Which torrents run, and what each may use.
    policy: Policy,
    /// Metadata fetches for an index ([`Engine::fetch_metadata`]).
    fetches: Fetches,
    rng: Rng,
    now: Instant,
}

impl Engine {
    /// An engine with no torrents.
    pub fn new(config: EngineConfig, seed: Seed) -> Engine {
        let mut rng = Rng::new(seed);
        let dht = config
            .dht
            .clone()
            .map(|settings| DhtState::new(settings, &mut rng));
        let lsd = (!config.lsd.is_empty()).then(|| {
            LocalDiscovery::new(
                Instant::ZERO,
                config.listen_port,
                &config.lsd,
                rng.child_seed(),
            )
        });
        let trackers = Trackers::new(rng.child_seed(), config.listen_families.clone());
        let transport = TransportState::new(config.transports, rng.child_seed());
        let mut engine = Engine {
            transport,
            handshakes: PendingHandshakes::new(config.handshakes.clone()),
            encryption: Encryption::new(config.encryption),
            config,
            torrents: TorrentTable::default(),
            magnets: BTreeMap::new(),
            by_hash: BTreeMap::new(),
            conns: BTreeMap::new(),
            trackers,
            pending: BTreeMap::new(),
            requests: RequestIds::default(),
            next_torrent: 1,
            conn_ids: ConnIds::new(),
            disk_in_flight: 0,
            empty_files: BTreeMap::new(),
            shutdown: None,
            out: VecDeque::new(),
            dht,
            lsd,
            timers: Timers::default(),
            policy: Policy::default(),
            fetches: Fetches::new(FetchConfig::default()),
            rng,
            now: Instant::ZERO,
        };
        let reserve = engine.incoming_reserve();
        engine.handshakes.set_max_total(reserve);
        engine
    }

    /// The DHT node of `family`, if it runs (BEP 32: one per family).
    pub fn dht(&self, family: IpFamily) -> Option<&Dht> {
        self.dht.as_ref().and_then(|d| d.node(family))
    }

    /// Nodes in the DHT routing tables, both families together, if the
    /// DHT is on.
    pub fn dht_nodes(&self) -> Option<usize> {
        let d = self.dht.as_ref()?;
        Some(
            IpFamily::ALL
                .iter()
                .filter_map(|&f| d.node(f))
                .map(|n| n.table().len())
                .sum(),
        )
    }

    /// What the DHT nodes keep across restarts (their ids and tables), if
    /// the DHT is on; [`SavedDht::encode`] gives the file's bytes.
    pub fn dht_state(&self) -> Option<SavedDht> {
        self.dht.as_ref().map(DhtState::saved)
    }

    /// The torrent with this id.
    pub fn torrent(&self, id: TorrentId) -> Option<&Torrent> {
        self.torrents.get(&id)
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
        self.insert_torrent(now, info, start, false)
    }

    /// Adds a torrent, running, queued or `paused`.
    fn insert_torrent(
        &mut self,
        now: Instant,
        info: TorrentInfo,
        start: StartMode,
        paused: bool,
    ) -> Option<TorrentId> {
        self.now = now;
        let names = info.names();
        if names.iter().any(|h| self.by_hash.contains_key(h)) || self.shutdown.is_some() {
            return None;
        }
        let id = TorrentId::new(self.next_torrent);
        self.next_torrent += 1;
        let config = self.torrent_config();
        // A hybrid answers to both names (BEP 52): peers of either swarm
        // reach it.
        for name in &names {
            self.by_hash.insert(*name, id);
        }
        self.note_empty_files(id, &info);
        if !info.private {
            self.schedule_discovery(now, id, &names);
        }
        let seed = self.rng.child_seed();
        let run = self.admit_to_queue(id, &info, &start);
        let torrent = match (paused, run) {
            (true, _) => Torrent::new_paused(now, info, config, start, seed),
            (false, true) => Torrent::new(now, info, config, start, seed),
            (false, false) => Torrent::new_queued(now, info, config, start, seed),
        };
        self.torrents.insert(id, torrent);
        self.rebalance(now);
        Some(id)
    }

    /// Hashes every piece of a torrent on disk again
    /// ([`Torrent::recheck`]).
    pub fn recheck(&mut self, now: Instant, id: TorrentId) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.recheck(now);
        }
    }

    /// Announces a torrent to its trackers now ([`Torrent::reannounce`]).
    pub fn reannounce(&mut self, now: Instant, id: TorrentId) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.reannounce(now);
        }
    }

    fn torrent_config(&self) -> crate::torrent::TorrentConfig {
        let mut config = self.config.torrent.clone();
        config.peer_id = self.config.peer_id;
        config.listen_port = self.config.listen_port;
        config.conn_ids = self.conn_ids.clone();
        // BEP 55 punches through NATs with uTP.
        config.holepunch &= self.config.transports.utp;
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
    /// five seconds from now at the latest. The driver carries on
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
            && self.trackers.is_quiet()
            && self.torrents.values().all(|t| t.poll_timeout().is_none())
    }

    /// Adds peer addresses to a torrent (from the user, a magnet's `x.pe`).
    pub fn add_peers(&mut self, now: Instant, id: TorrentId, peers: Vec<SocketAddr>) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.add_peers(now, peers, PeerSource::User);
        }
    }

    /// Pauses a torrent (queued or not): the queue never starts it until
    /// [`resume`](Engine::resume). Its slot goes to the next in the queue.
    pub fn pause(&mut self, now: Instant, id: TorrentId) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.pause(now);
            self.apply_queue(now);
        }
    }

    /// Resumes a paused torrent; with no free slot for it under the
    /// active limits it is queued instead.
    pub fn resume(&mut self, now: Instant, id: TorrentId) {
        self.now = now;
        self.resume_or_queue(now, id);
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
        self.now = now;
        self.stop(now, id);
        self.drain_torrent(id);
        self.unschedule_discovery(id);
        if let Some(t) = self.torrents.remove(&id) {
            self.by_hash.retain(|_, named| *named != id);
            self.forget_in_queue(now, &t, id);
        }
        self.magnets.remove(&id);
        self.conns.retain(|_, t| *t != id);
        self.trackers.forget(id);
        self.empty_files.remove(&id);
    }

    /// Sets file priorities of a torrent.
    pub fn set_file_priorities(&mut self, now: Instant, id: TorrentId, files: &[Priority]) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.set_file_priorities(now, files);
        }
    }

    /// Sets a torrent's upload and download limits in bytes/s (0: none).
    pub fn set_rate_limits(&mut self, now: Instant, id: TorrentId, upload: u64, download: u64) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.set_rate_limits(now, upload, download);
        }
    }

    /// Downloads a torrent in piece order.
    pub fn set_sequential(&mut self, id: TorrentId, sequential: bool) {
        if let Some(t) = self.torrents.get_mut(&id) {
            t.set_sequential(sequential);
        }
    }

    // --- inputs -------------------------------------------------------------

    /// A datagram arrived on our UDP socket.
    pub fn handle_udp(&mut self, now: Instant, from: SocketAddr, payload: &[u8]) {
        self.now = now;
        if payload.first() == Some(&b'd') {
            if let Some(d) = &mut self.dht {
                d.handle_datagram(now, from, payload);
                self.collect_dht(now);
            }
            return;
        }
        if crate::lsd::is_lsd_datagram(payload) {
            if let Some(lsd) = &mut self.lsd {
                lsd.handle_datagram(now, from, payload);
                self.collect_lsd(now);
            }
            return;
        }
        if crate::utp::is_utp_datagram(payload) {
            self.handle_utp(now, from, payload);
            return;
        }
        if self.trackers.handle_datagram(now, from, payload) {
            self.collect_trackers(now);
        }
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
            DiskResult::Verified {
                first,
                verdicts,
                written,
            } => t.handle_verified_run(now, first, &verdicts, written),
            DiskResult::Checked { piece, ok } => t.handle_checked(now, piece, ok),
            DiskResult::Written { block, ok, hash } => t.handle_written(now, block, ok, hash),
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
        if self.trackers.handle_http(now, request, result) {
            self.collect_trackers(now);
        }
    }

    /// A name resolution finished.
    pub fn handle_resolved(&mut self, now: Instant, request: RequestId, addrs: Vec<SocketAddr>) {
        self.now = now;
        if self.trackers.handle_resolved(now, request, &addrs) {
            self.collect_trackers(now);
            return;
        }
        match self.pending.remove(&request) {
            Some(Pending::Peer { torrent }) => self.add_peers(now, torrent, addrs),
            Some(Pending::DhtRouter) => self.dht_router_resolved(now, &addrs),
            Some(Pending::WebSeed { .. }) | None => {}
        }
    }

    /// A deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        for conn in self.handshakes.expire(now) {
            self.close(conn);
        }
        self.expire_mse(now);
        self.utp_timeout(now);
        for id in self.timers.due_torrents(now) {
            if let Some(t) = self.torrents.get_mut(&id) {
                if t.poll_timeout().is_some_and(|d| d <= now) {
                    t.handle_timeout(now);
                }
            }
        }
        if self.trackers.poll_timeout().is_some_and(|d| d <= now) {
            self.trackers.handle_timeout(now);
        }
        self.collect_trackers(now);
        if let Some(d) = &mut self.dht {
            d.handle_timeout(now);
        }
        self.dht_lookups(now);
        self.collect_dht(now);
        self.collect_lsd(now);
        self.policy_timeout(now);
        self.expire_fetches(now);
    }

    // --- output -------------------------------------------------------------

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

    /// Fills the timer table from every part's deadline.
    fn update_timers(&mut self) {
        let shutdown = self.shutdown.as_ref().filter(|s| !s.reported);
        let handshakes = match (
            self.handshakes.next_deadline(),
            self.encryption.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.timers.set(Timer::Handshakes, handshakes);
        self.timers.set(Timer::Utp, self.transport.next_deadline());
        self.timers
            .set(Timer::Shutdown, shutdown.map(|s| s.deadline));
        self.timers
            .set(Timer::Trackers, self.trackers.poll_timeout());
        let (node, lookups) = match &self.dht {
            Some(d) => {
                // The node starts on the first timeout, and joins again
                // while its table stays empty.
                let start = d.next_join(self.now).filter(|_| self.shutdown.is_none());
                let lookups = match (start, d.schedules.next_deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (d.poll_timeout(), lookups)
            }
            None => (None, None),
        };
        let policy = self.policy_deadline();
        self.timers.set(Timer::Policy, policy);
        self.timers.set(Timer::DhtNode, node);
        self.timers.set(Timer::DhtLookups, lookups);
        self.timers.set(Timer::Lsd, self.lsd_deadline());
        self.timers
            .set(Timer::Fetches, self.fetches.next_deadline());
        // Only a torrent that changed can have a new deadline.
        for id in self.torrents.take_touched() {
            let at = self.torrents.get(&id).and_then(Torrent::poll_timeout);
            self.timers.set_torrent(id, at);
        }
    }

    /// The deadline the last [`Output::Timeout`] gave and which part of
    /// the engine set it (for traces).
    pub fn next_timer(&self) -> Option<(Instant, TimerReason)> {
        self.timers.earliest()
    }

    /// The next thing to do; always ends with [`Output::Timeout`].
    pub fn poll_output(&mut self, now: Instant) -> Output {
        self.now = self.now.max(now);
        if self.out.is_empty() {
            let now = self.now;
            loop {
                self.drain_torrents();
                if self.policy.dirty {
                    // A state changed (a download finished, a check
                    // ended): slots and budgets follow before the driver
                    // waits.
                    self.run_policy(now);
                    self.drain_torrents();
                }
                // What the sessions wrote on uTP connections leaves as
                // datagrams; what the connections report may give the
                // torrents more to say.
                if !self.pump_utp(now) {
                    break;
                }
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
        self.update_timers();
        let next = self.timers.earliest().map_or(Instant::MAX, |(at, _)| at);
        // Deadlines never go backwards past what we have seen (str0m).
        Output::Timeout(next.max(self.now))
    }
}

#[cfg(test)]
mod budget_tests;
mod config;
mod dht;
#[cfg(test)]
mod discovery_tests;
mod drain;
mod encryption;
#[cfg(test)]
mod encryption_tests;
#[cfg(test)]
mod families_tests;
mod fetches;
mod handshakes;
#[cfg(test)]
mod holepunch_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod lifecycle_tests;
mod lsd;
mod magnets;
mod output;
mod policy;
#[cfg(test)]
mod policy_tests;
mod routing;
mod shares;
mod table;
#[cfg(test)]
mod tests;
mod timers;
mod trackers;
mod transport;
#[cfg(test)]
mod transport_tests;
mod web_seeds;
