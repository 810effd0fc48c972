//! `Torrent`: one torrent's swarm logic — its peer sessions, piece picker,
//! choker, peer list and piece bookkeeping — as a sans-IO machine.
//!
//! Data path: blocks arrive as `Bytes` slices of the receive buffers and
//! are kept in memory until their piece is complete; the piece is then
//! handed to the driver to **verify from memory and, if it passes, write**
//! in one job ([`TorrentOutput::Verify`], with the file slices it covers:
//! one trip to the blocking pool per piece). Nothing unverified is ever
//! written, and nothing is read back to be verified. A piece is announced (`have`) and served
//! only once it is on disk. Memory is bounded by
//! [`TorrentConfig::max_buffered_bytes`]: when blocks in flight and pieces
//! awaiting verification or writing reach it, no more requests go out
//! (back-pressure) until the disk catches up. Pieces too large for that
//! budget are written block by block and verified from disk instead
//! ([`write_through`]).
//!
//! Methods:
//!
//! - inputs: [`handle_connected`](Torrent::handle_connected),
//!   [`handle_incoming`](Torrent::handle_incoming),
//!   [`handle_connect_failed`](Torrent::handle_connect_failed),
//!   [`handle_bytes`](Torrent::handle_bytes),
//!   [`handle_closed`](Torrent::handle_closed),
//!   [`handle_verified`](Torrent::handle_verified),
//!   [`handle_read`](Torrent::handle_read),
//!   [`handle_checked`](Torrent::handle_checked),
//!   [`handle_written`](Torrent::handle_written),
//!   [`handle_timeout`](Torrent::handle_timeout);
//! - commands: [`add_peers`](Torrent::add_peers), [`pause`](Torrent::pause),
//!   [`resume`](Torrent::resume),
//!   [`set_file_priorities`](Torrent::set_file_priorities),
//!   [`set_sequential`](Torrent::set_sequential);
//! - outputs: [`poll_output`](Torrent::poll_output) until `None`, then
//!   [`poll_timeout`](Torrent::poll_timeout).

pub mod choker;
pub mod exchange;
pub mod fetch;
pub mod peers;
mod write_through;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::error::PeerError;
use crate::handles::{ConnId, ConnIds};
use crate::metainfo::{FileLayout, FileSlice, InfoHash, PieceIndex};
use crate::peer::{
    CloseReason, Direction, PeerEvent, PeerSession, RemotePieces, SessionConfig, TokenBucket,
};
use crate::picker::{BlockReceived, PeerPieces, PickOptions, PiecePicker, Priority};
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::tracker::tiers::Announcer;
use crate::tracker::{AnnounceRequest, AnnounceResponse, TrackerError};
use crate::wire::{BlockRef, PeerId, PexFlags, Reserved, BLOCK_SIZE, UT_METADATA, UT_PEX};
use choker::{ChokeCandidate, Choker, SeedChoking};
use exchange::{our_extensions, PeerExchange, OUR_UT_METADATA, OUR_UT_PEX};
use peers::{PeerList, PeerSource};

/// What a torrent needs to know about its content.
#[derive(Clone, Debug)]
pub struct TorrentInfo {
    /// The v1 info-hash.
    pub info_hash: InfoHash,
    /// Piece and file geometry.
    pub layout: FileLayout,
    /// The SHA-1 of every piece.
    pub piece_hashes: Vec<[u8; 20]>,
    /// BEP 27: peers only from trackers.
    pub private: bool,
    /// Tracker tiers (BEP 12), each a list of announce URLs.
    pub trackers: Vec<Vec<String>>,
    /// The bencoded info dictionary, served to peers that ask for it
    /// (BEP 9); `None` when not kept.
    pub metadata: Option<Bytes>,
}

impl TorrentInfo {
    /// From a parsed .torrent.
    pub fn from_metainfo(m: &crate::metainfo::Metainfo<'_>) -> TorrentInfo {
        let count = m.info.piece_count();
        TorrentInfo {
            info_hash: m.info_hash,
            layout: m.info.layout().clone(),
            piece_hashes: (0..count)
                .filter_map(|p| m.info.piece_hash(PieceIndex(p)))
                .collect(),
            private: m.info.is_private(),
            trackers: m
                .trackers()
                .into_iter()
                .map(|tier| tier.into_iter().map(str::to_owned).collect())
                .collect(),
            metadata: Some(Bytes::copy_from_slice(m.info.raw())),
        }
    }
}

/// Settings of one torrent.
#[derive(Clone, Debug)]
pub struct TorrentConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Extension bits we advertise.
    pub reserved: Reserved,
    /// Most connected peers.
    pub max_peers: usize,
    /// Most connections per IP, in either direction (a host must not take
    /// every slot).
    pub max_peers_per_ip: usize,
    /// Most connection attempts in progress at once.
    pub max_half_open: usize,
    /// Regular unchoke slots (one optimistic slot comes on top).
    pub unchoke_slots: usize,
    /// Whether to keep an optimistic unchoke slot.
    pub optimistic_unchoke: bool,
    /// How a seeding torrent picks whom to unchoke.
    pub seed_choking: SeedChoking,
    /// Peer session timing.
    pub session: SessionConfig,
    /// Budget for block data held in memory (requested, received, awaiting
    /// verification or writing).
    pub max_buffered_bytes: u64,
    /// Pieces checked against the disk at once during start-up checking.
    pub max_checks_in_flight: usize,
    /// Where this torrent's outgoing connections get their ids (an engine
    /// shares one source between itself and all its torrents).
    pub conn_ids: ConnIds,
    /// The port we accept peers on, for tracker announces.
    pub listen_port: u16,
    /// Peers to ask each tracker for.
    pub numwant: Option<u32>,
    /// Upload limit in bytes/s (0: none).
    pub upload_rate: u64,
    /// Download limit in bytes/s (0: none).
    pub download_rate: u64,
}

impl Default for TorrentConfig {
    fn default() -> TorrentConfig {
        TorrentConfig {
            peer_id: PeerId(*b"-BT0001-000000000000"),
            reserved: Reserved::FAST.with(Reserved::EXTENSION),
            max_peers: 50,
            max_peers_per_ip: peers::DEFAULT_MAX_PER_IP,
            max_half_open: 8,
            unchoke_slots: 4,
            optimistic_unchoke: true,
            seed_choking: SeedChoking::UploadRate,
            session: SessionConfig::default(),
            max_buffered_bytes: 64 << 20,
            max_checks_in_flight: 4,
            conn_ids: ConnIds::new(),
            listen_port: 6881,
            numwant: Some(50),
            upload_rate: 0,
            download_rate: 0,
        }
    }
}

/// How to begin.
#[derive(Clone, Debug)]
pub enum StartMode {
    /// Nothing on disk yet.
    Fresh,
    /// Verify whatever is on disk first ([`TorrentOutput::Check`]).
    Check,
    /// Resume data says these pieces are on disk and verified.
    Trusted(Bitfield),
}

/// The torrent's life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorrentState {
    /// Verifying existing data.
    Checking,
    /// Downloading.
    Downloading,
    /// Every wanted piece is on disk; uploading.
    Seeding,
    /// No connections until resumed.
    Paused,
    /// Shut down for good (the engine sends trackers `stopped`).
    Stopped,
}

/// What the torrent reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorrentEvent {
    /// A new state.
    StateChanged(TorrentState),
    /// A piece passed its hash check and is on disk.
    PieceDone(PieceIndex),
    /// A piece failed its hash check.
    HashFailed {
        /// The piece.
        piece: PieceIndex,
        /// Peers that sent blocks of it.
        contributors: Vec<SocketAddr>,
    },
    /// Every wanted piece is on disk.
    Finished,
    /// A peer session is established.
    PeerConnected {
        /// The connection.
        conn: ConnId,
        /// The peer.
        addr: SocketAddr,
    },
    /// A peer session ended.
    PeerDisconnected {
        /// The connection.
        conn: ConnId,
        /// The peer.
        addr: SocketAddr,
        /// Why.
        reason: CloseReason,
    },
    /// A peer was banned for sending bad data.
    PeerBanned(SocketAddr),
    /// A tracker answered.
    TrackerReply {
        /// The tracker.
        url: String,
        /// How many peers it gave.
        peers: usize,
    },
    /// A verified piece could not be written (disk full, permissions): it
    /// will be fetched again, but the application should probably stop.
    WriteFailed(PieceIndex),
    /// A tracker failed or refused.
    TrackerError {
        /// The tracker.
        url: String,
        /// What went wrong.
        error: TrackerError,
    },
}

/// What the torrent asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum TorrentOutput {
    /// Open a TCP connection; answer with `handle_connected` or
    /// `handle_connect_failed`.
    Connect {
        /// The id to use for it.
        conn: ConnId,
        /// Where.
        addr: SocketAddr,
    },
    /// Send bytes on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close a connection (no `handle_closed` needed).
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Hash a complete piece from memory and, only if it matches, write
    /// it; answer with `handle_verified`.
    Verify {
        /// The piece.
        piece: PieceIndex,
        /// Its blocks in order.
        blocks: Vec<Bytes>,
        /// The expected SHA-1.
        hash: [u8; 20],
        /// Where its bytes go once verified (padding slices: skip).
        slices: Vec<FileSlice>,
    },
    /// Write one block of a piece too large to hold in memory (it is
    /// verified from disk once complete); answer with `handle_written`.
    Write {
        /// The block.
        block: BlockRef,
        /// Its bytes.
        data: Bytes,
        /// Where they go (padding slices: skip).
        slices: Vec<FileSlice>,
    },
    /// Read a block a peer requested; answer with `handle_read`.
    Read {
        /// The requesting connection.
        conn: ConnId,
        /// The block.
        block: BlockRef,
        /// Where its bytes are.
        slices: Vec<FileSlice>,
    },
    /// Read and hash a piece on disk (a start-up check, or a write-through
    /// piece whose blocks are all written); answer with `handle_checked`.
    Check {
        /// The piece.
        piece: PieceIndex,
        /// Where its bytes are.
        slices: Vec<FileSlice>,
        /// The expected SHA-1.
        hash: [u8; 20],
    },
    /// Announce to a tracker (HTTP or UDP by the URL's scheme); answer
    /// with `handle_announce`.
    Announce {
        /// The tracker URL.
        url: String,
        /// What to announce.
        request: AnnounceRequest,
    },
    /// Something the application should know.
    Event(TorrentEvent),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counted {
    Nothing,
    Bits,
    Seed,
}

#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    /// `None` while the TCP connection is being opened.
    session: Option<PeerSession>,
    counted: Counted,
    connected_event_sent: bool,
    /// Metadata served and addresses exchanged with it.
    exchange: PeerExchange,
}

#[derive(Debug, Default)]
struct PieceBuffer {
    blocks: Vec<Option<Bytes>>,
}

/// Seconds between choker rounds; every third round rotates the optimistic
/// unchoke (BEP 3 practice: 10 s and 30 s).
const CHOKE_INTERVAL: Duration = Duration::from_secs(10);
/// How often to look for peers to connect to when under budget.
const CONNECT_INTERVAL: Duration = Duration::from_secs(1);
/// With every slot taken, a newcomer may replace a peer that has
/// exchanged no block with us for this long (and has been connected at
/// least as long): slots go to peers that trade, not to idle ones.
const IDLE_EVICTION: Duration = Duration::from_secs(60);

/// See the module documentation.
#[derive(Debug)]
pub struct Torrent {
    info: TorrentInfo,
    config: TorrentConfig,
    state: TorrentState,
    paused_from: TorrentState,
    picker: PiecePicker,
    /// Pieces on disk (verified and written): what we announce and serve.
    on_disk: Bitfield,
    /// Bytes of wanted pieces not on disk (kept up to date: progress is
    /// read after every event).
    left: u64,
    peers: BTreeMap<ConnId, Peer>,
    list: PeerList,
    choker: Choker,
    choke_round: u64,
    next_choke: Instant,
    next_connect: Instant,
    buffers: BTreeMap<u32, PieceBuffer>,
    /// Write-through pieces with blocks on their way to the disk.
    writing: BTreeMap<u32, write_through::Writing>,
    buffered_bytes: u64,
    verifying: BTreeSet<u32>,
    /// Pieces whose last verification had an exclusive (parole) source.
    exclusive_pieces: BTreeMap<u32, ConnId>,
    checks_pending: VecDeque<u32>,
    checks_in_flight: usize,
    uploaded: u64,
    downloaded: u64,
    finished_reported: bool,
    out: VecDeque<TorrentOutput>,
    announcer: Announcer,
    /// `tracker id` values trackers gave us, sent back to them.
    tracker_ids: BTreeMap<String, Vec<u8>>,
    /// Our announce key (random, stable for the torrent's life).
    key: u32,
    up_bucket: TokenBucket,
    down_bucket: TokenBucket,
    /// Peer requests waiting for upload tokens.
    pending_reads: VecDeque<(ConnId, BlockRef)>,
    rng: Rng,
    now: Instant,
}

impl Torrent {
    /// A torrent starting at `now`.
    pub fn new(
        now: Instant,
        info: TorrentInfo,
        config: TorrentConfig,
        start: StartMode,
        seed: Seed,
    ) -> Torrent {
        let mut rng = Rng::new(seed);
        let picker = PiecePicker::new(&info.layout, rng.child_seed());
        let announcer = Announcer::new(now, info.trackers.clone(), &mut rng);
        let key = rng.next_u32();
        let count = info.layout.piece_count();
        let mut t = Torrent {
            state: TorrentState::Downloading,
            paused_from: TorrentState::Downloading,
            picker,
            on_disk: Bitfield::new(count),
            left: 0,
            peers: BTreeMap::new(),
            list: PeerList::new(config.max_peers_per_ip),
            choker: Choker::default(),
            choke_round: 0,
            next_choke: now + CHOKE_INTERVAL,
            next_connect: now,
            buffers: BTreeMap::new(),
            writing: BTreeMap::new(),
            buffered_bytes: 0,
            verifying: BTreeSet::new(),
            exclusive_pieces: BTreeMap::new(),
            checks_pending: VecDeque::new(),
            checks_in_flight: 0,
            uploaded: 0,
            downloaded: 0,
            finished_reported: false,
            out: VecDeque::new(),
            announcer,
            tracker_ids: BTreeMap::new(),
            key,
            up_bucket: TokenBucket::new(config.upload_rate, now),
            down_bucket: TokenBucket::new(config.download_rate, now),
            pending_reads: VecDeque::new(),
            info,
            config,
            rng,
            now,
        };
        match start {
            StartMode::Fresh => {}
            StartMode::Trusted(have) => {
                for p in have.iter() {
                    if p.0 < count {
                        t.picker.on_piece_verified(p);
                        t.on_disk.set(p);
                    }
                }
            }
            StartMode::Check => {
                t.state = TorrentState::Checking;
                t.checks_pending = (0..count).collect();
                t.pump_checks();
            }
        }
        t.recount_left();
        if t.state != TorrentState::Checking {
            // Complete from the start: a seed, not a finished download (no
            // `Finished` event, no `completed` announce).
            t.finished_reported = t.picker.is_finished();
            t.after_progress();
        }
        t.emit(TorrentEvent::StateChanged(t.state));
        t.pump_announces(now);
        t
    }

    // --- trackers -------------------------------------------------------

    /// Emits every announce that is due.
    fn pump_announces(&mut self, now: Instant) {
        if matches!(self.state, TorrentState::Checking | TorrentState::Paused) {
            return;
        }
        while let Some(due) = self.announcer.poll_announce(now) {
            let (uploaded, downloaded, left) = self.counters();
            let request = AnnounceRequest {
                info_hash: self.info.info_hash,
                peer_id: self.config.peer_id,
                port: self.config.listen_port,
                uploaded,
                downloaded,
                left,
                event: due.event,
                numwant: self.config.numwant,
                key: Some(self.key),
                tracker_id: self.tracker_ids.get(&due.url).cloned(),
                ip: None,
            };
            self.out.push_back(TorrentOutput::Announce {
                url: due.url,
                request,
            });
        }
    }

    /// The result of a [`TorrentOutput::Announce`]: the peers go to the
    /// peer list.
    pub fn handle_announce(
        &mut self,
        now: Instant,
        url: &str,
        result: Result<AnnounceResponse, TrackerError>,
    ) {
        self.now = now;
        match result {
            Ok(resp) => {
                self.announcer.handle_success(now, url, &resp);
                if let Some(id) = &resp.tracker_id {
                    self.tracker_ids.insert(url.to_owned(), id.clone());
                }
                self.emit(TorrentEvent::TrackerReply {
                    url: url.to_owned(),
                    peers: resp.peers.len(),
                });
                if !matches!(self.state, TorrentState::Stopped) {
                    for a in resp.peers {
                        self.list.add(now, a, PeerSource::Tracker);
                    }
                    self.connect_more(now);
                }
            }
            Err(error) => {
                self.announcer.handle_failure(now, url);
                self.emit(TorrentEvent::TrackerError {
                    url: url.to_owned(),
                    error,
                });
            }
        }
        self.pump_announces(now);
    }

    // --- getters --------------------------------------------------------

    /// The torrent's info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info.info_hash
    }

    /// How many addresses in the peer list came from `source`.
    pub fn known_peers(&self, source: PeerSource) -> usize {
        self.list.count_from(source)
    }

    /// BEP 27: peers come only from its trackers (no DHT, no PEX).
    pub fn is_private(&self) -> bool {
        self.info.private
    }

    /// Current state.
    pub fn state(&self) -> TorrentState {
        self.state
    }

    /// Pieces on disk.
    pub fn have(&self) -> &Bitfield {
        &self.on_disk
    }

    /// Payload bytes uploaded, downloaded, and wanted bytes still missing:
    /// what trackers ask for.
    pub fn counters(&self) -> (u64, u64, u64) {
        (self.uploaded, self.downloaded, self.left)
    }

    /// Counts the bytes of wanted pieces not on disk anew (at start and
    /// when file priorities change).
    fn recount_left(&mut self) {
        self.left = self.count_left();
    }

    fn count_left(&self) -> u64 {
        (0..self.info.layout.piece_count())
            .map(PieceIndex)
            .filter(|&p| !self.on_disk.get(p) && self.picker.priority(p) != Priority::Skip)
            .map(|p| u64::from(self.info.layout.piece_size(p)))
            .sum()
    }

    /// A piece is now on disk.
    fn mark_on_disk(&mut self, piece: PieceIndex) {
        if !self.on_disk.get(piece) {
            self.on_disk.set(piece);
            if self.picker.priority(piece) != Priority::Skip {
                self.left = self
                    .left
                    .saturating_sub(u64::from(self.info.layout.piece_size(piece)));
            }
        }
    }

    /// Connected (or connecting) peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Addresses of the peers with an open session (for resume data).
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.peers
            .values()
            .filter(|p| p.session.as_ref().is_some_and(PeerSession::is_active))
            .map(|p| p.addr)
            .collect()
    }

    /// Whether every wanted piece is on disk.
    pub fn is_finished(&self) -> bool {
        self.picker.is_finished() && self.verifying.is_empty()
    }

    /// Whether `addr` is banned.
    pub fn is_banned(&self, addr: &SocketAddr) -> bool {
        self.list.is_banned(addr)
    }

    /// Bytes of block data held in memory.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered_bytes
    }

    /// The configured memory budget.
    pub fn max_buffered_bytes(&self) -> u64 {
        self.config.max_buffered_bytes
    }

    /// Checks the torrent's invariants (for simulations; cheap enough to
    /// run after every step): nothing we have on disk is requested;
    /// nothing unverified is on disk; memory stays within budget (plus at
    /// most one request window per peer that was in flight when the budget
    /// filled).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        for peer in self.peers.values() {
            if let Some(s) = &peer.session {
                if s.outstanding().any(|b| self.on_disk.get(b.piece)) {
                    return Err("requested a piece we have on disk");
                }
            }
        }
        let verified = self.picker.have().as_bytes();
        let unverified_on_disk = self
            .on_disk
            .as_bytes()
            .iter()
            .zip(verified)
            .any(|(disk, ok)| disk & !ok != 0);
        if unverified_on_disk {
            return Err("a piece is on disk without having been verified");
        }
        let slack = (self.peers.len() as u64 + 1) * 256 * u64::from(BLOCK_SIZE);
        if self.buffered_bytes > self.config.max_buffered_bytes + slack {
            return Err("buffered block data exceeds the memory budget");
        }
        Ok(())
    }

    /// The picker's full internal consistency check (O(pieces)); see
    /// [`PiecePicker::check_invariants`]; and the bytes-left counter.
    pub fn check_picker(&self) -> Result<(), &'static str> {
        if self.count_left() != self.left {
            return Err("the bytes-left counter drifted from the pieces on disk");
        }
        self.picker.check_invariants()
    }

    // --- outputs ----------------------------------------------------------

    /// The next thing for the driver to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<TorrentOutput> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Torrent::handle_timeout) wants to run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            TorrentState::Paused => return None,
            TorrentState::Stopped => return self.announcer.poll_timeout().map(|t| t.max(self.now)),
            _ => {}
        }
        let mut t = self.next_choke;
        if self.state != TorrentState::Checking {
            if let Some(a) = self.announcer.poll_timeout() {
                t = t.min(a);
            }
        }
        let connecting = matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        );
        if connecting && self.peers.len() < self.config.max_peers {
            if let Some(due) = self.list.next_due() {
                t = t.min(due.max(self.next_connect));
            }
        }
        for p in self.peers.values() {
            if let Some(s) = &p.session {
                if let Some(st) = s.poll_timeout() {
                    t = t.min(st);
                }
            }
        }
        if let Some((_, block)) = self.pending_reads.front() {
            t = t.min(self.up_bucket.ready_at(self.now, u64::from(block.length)));
        }
        if self.down_bucket.is_limited()
            && self.state == TorrentState::Downloading
            && !self.peers.is_empty()
        {
            let ready = self.down_bucket.ready_at(self.now, u64::from(BLOCK_SIZE));
            if ready > self.now {
                t = t.min(ready);
            }
        }
        Some(t.max(self.now))
    }

    fn emit(&mut self, e: TorrentEvent) {
        self.out.push_back(TorrentOutput::Event(e));
    }

    // --- commands ---------------------------------------------------------

    /// Adds peer addresses (from a tracker, the DHT, PEX or the user).
    pub fn add_peers(
        &mut self,
        now: Instant,
        addrs: impl IntoIterator<Item = SocketAddr>,
        source: PeerSource,
    ) {
        self.now = now;
        for a in addrs {
            self.list.add(now, a, source);
        }
        self.connect_more(now);
    }

    /// Closes every connection and stops until [`resume`](Torrent::resume).
    pub fn pause(&mut self, now: Instant) {
        self.now = now;
        if matches!(self.state, TorrentState::Paused | TorrentState::Stopped) {
            return;
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.drop_peer(now, c, CloseReason::Local, true);
        }
        self.paused_from = self.state;
        self.set_state(TorrentState::Paused);
    }

    /// Closes every connection for good: a stopped torrent does nothing
    /// more (its owner saves resume data and drops it).
    pub fn stop(&mut self, now: Instant) {
        self.now = now;
        if self.state == TorrentState::Stopped {
            return;
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.drop_peer(now, c, CloseReason::Local, true);
        }
        self.checks_pending.clear();
        self.set_state(TorrentState::Stopped);
        self.announcer.stop(now);
        self.pump_announces(now);
    }

    /// Resumes after [`pause`](Torrent::pause).
    pub fn resume(&mut self, now: Instant) {
        self.now = now;
        if self.state == TorrentState::Paused {
            self.set_state(self.paused_from);
            self.after_progress();
            self.connect_more(now);
            self.pump_announces(now);
        }
    }

    /// Sets file priorities (one per file, padding files ignored).
    pub fn set_file_priorities(&mut self, now: Instant, files: &[Priority]) {
        self.now = now;
        self.picker.set_file_priorities(&self.info.layout, files);
        self.recount_left();
        self.after_progress();
        self.refresh_interest(now);
        self.fill_requests(now);
    }

    /// Downloads pieces in order (for streaming) instead of rarest first.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.picker.set_sequential(sequential);
    }

    /// Pieces to download before everything else (a streaming window).
    pub fn set_critical(&mut self, pieces: Vec<PieceIndex>) {
        self.picker.set_critical(pieces);
    }

    fn set_state(&mut self, s: TorrentState) {
        if self.state != s {
            self.state = s;
            self.list.set_seeding(s == TorrentState::Seeding);
            self.emit(TorrentEvent::StateChanged(s));
        }
    }

    // --- connections ------------------------------------------------------

    fn half_open(&self) -> usize {
        self.peers.values().filter(|p| p.session.is_none()).count()
    }

    fn connect_more(&mut self, now: Instant) {
        // Whatever happens below, look again one interval from now (not
        // sooner: a full half-open budget must not spin the timer).
        self.next_connect = now + CONNECT_INTERVAL;
        if !matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            return;
        }
        let room = self
            .config
            .max_peers
            .saturating_sub(self.peers.len())
            .min(self.config.max_half_open.saturating_sub(self.half_open()));
        if room == 0 {
            return;
        }
        for addr in self.list.to_connect(now, room) {
            let conn = self.config.conn_ids.next_id();
            self.peers.insert(
                conn,
                Peer {
                    addr,
                    session: None,
                    counted: Counted::Nothing,
                    connected_event_sent: false,
                    exchange: PeerExchange::default(),
                },
            );
            self.out.push_back(TorrentOutput::Connect { conn, addr });
        }
        self.next_connect = now + CONNECT_INTERVAL;
    }

    fn new_session(&self, now: Instant, direction: Direction, addr: SocketAddr) -> PeerSession {
        let mut config = self.config.session.clone();
        config.listen_port = Some(self.config.listen_port);
        config.extensions = our_extensions(self.info.private, self.info.metadata.is_some());
        PeerSession::new(
            now,
            config,
            direction,
            self.info.info_hash,
            self.config.peer_id,
            self.config.reserved,
            self.info.layout.piece_count(),
            Some(addr.ip()),
        )
    }

    /// An outgoing connection we asked for is open.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        let Some(addr) = self.peers.get(&conn).map(|p| p.addr) else {
            return;
        };
        let session = self.new_session(now, Direction::Outgoing, addr);
        if let Some(p) = self.peers.get_mut(&conn) {
            p.session = Some(session);
        }
        self.flush(now, conn);
    }

    /// An outgoing connection failed.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if let Some(p) = self.peers.remove(&conn) {
            self.list.connect_failed(now, p.addr);
        }
        self.connect_more(now);
    }

    /// A peer connected to us (the engine routed it here by info-hash).
    /// Returns false if refused (banned, its IP at its limit or just
    /// dropped for idling, or every slot taken by peers that trade); the
    /// driver should then close it. With every slot taken, the peer idle
    /// the longest makes room, and its IP stays away for a while.
    pub fn handle_incoming(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) -> bool {
        self.now = now;
        if matches!(
            self.state,
            TorrentState::Paused | TorrentState::Stopped | TorrentState::Checking
        ) || !self.list.accept(now, addr)
        {
            return false;
        }
        if self.peers.len() >= self.config.max_peers {
            let Some(idle) = self.most_idle_peer(now) else {
                self.list.disconnected(now, addr);
                return false;
            };
            if let Some(p) = self.peers.get(&idle) {
                self.list.dropped_for_idling(now, p.addr);
            }
            self.disconnect(now, idle, CloseReason::Local, true);
        }
        let session = self.new_session(now, Direction::Incoming, addr);
        self.peers.insert(
            conn,
            Peer {
                addr,
                session: Some(session),
                counted: Counted::Nothing,
                connected_event_sent: false,
                exchange: PeerExchange::default(),
            },
        );
        true
    }

    /// Bytes arrived on a connection (copied; see
    /// [`handle_chunk`](Torrent::handle_chunk)).
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.handle_chunk(now, conn, Bytes::copy_from_slice(data));
    }

    /// A chunk arrived on a connection; blocks in it stay slices of it all
    /// the way to the disk write.
    pub fn handle_chunk(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        self.now = now;
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.handle_chunk(now, data);
        }
        self.flush(now, conn);
        self.fill_requests(now);
    }

    /// The connection closed (by the peer or the network).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.handle_eof();
        }
        self.flush(now, conn);
        self.fill_requests(now);
    }

    /// Processes everything a session has to say, then sends its bytes.
    fn flush(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(event) = self
                .peers
                .get_mut(&conn)
                .and_then(|p| p.session.as_mut())
                .and_then(PeerSession::poll_event)
            else {
                break;
            };
            self.on_peer_event(now, conn, event);
        }
        let mut data = Vec::new();
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            let _ = s.poll_transmit(&mut data);
        }
        if !data.is_empty() {
            self.out.push_back(TorrentOutput::Send { conn, data });
        }
    }

    fn on_peer_event(&mut self, now: Instant, conn: ConnId, event: PeerEvent) {
        match event {
            PeerEvent::Connected { .. } => {
                let metadata = self.info.metadata.as_ref().map(|m| m.len() as u64);
                let have = self.on_disk.clone();
                let addr = match self.peers.get_mut(&conn) {
                    Some(p) => {
                        p.connected_event_sent = true;
                        if let Some(s) = p.session.as_mut() {
                            s.start(now, &have, metadata);
                        }
                        p.addr
                    }
                    None => return,
                };
                self.emit(TorrentEvent::PeerConnected { conn, addr });
            }
            PeerEvent::PiecesKnown => {
                let Some(p) = self.peers.get_mut(&conn) else {
                    return;
                };
                let Some(s) = p.session.as_ref() else {
                    return;
                };
                match s.remote_pieces() {
                    RemotePieces::All => {
                        self.picker.peer_bitfield(PeerPieces::All);
                        p.counted = Counted::Seed;
                    }
                    RemotePieces::Some(b) => {
                        self.picker.peer_bitfield(PeerPieces::Some(b));
                        p.counted = Counted::Bits;
                    }
                    RemotePieces::None => {}
                }
                self.update_interest(now, conn);
                self.drop_if_both_seeds(now, conn);
            }
            PeerEvent::Have(piece) => {
                let Some(p) = self.peers.get_mut(&conn) else {
                    return;
                };
                match p.counted {
                    Counted::Seed => {}
                    Counted::Nothing | Counted::Bits => {
                        self.picker.peer_has(piece);
                        p.counted = Counted::Bits;
                        if let Some(RemotePieces::All) =
                            p.session.as_ref().map(|s| s.remote_pieces())
                        {
                            self.picker
                                .peer_became_seed(&Bitfield::full(self.info.layout.piece_count()));
                            p.counted = Counted::Seed;
                        }
                    }
                }
                if self.picker.priority(piece) != Priority::Skip && !self.picker.has(piece) {
                    if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                        s.set_interested(now, true);
                    }
                }
                self.drop_if_both_seeds(now, conn);
            }
            PeerEvent::Choked
            | PeerEvent::Unchoked
            | PeerEvent::AllowedFast(_)
            | PeerEvent::Suggest(_)
            | PeerEvent::ExtensionHandshake(_)
            | PeerEvent::DhtPort(_) => {}
            PeerEvent::Extended { id, payload } => self.on_extended(now, conn, id, payload),
            PeerEvent::Interested | PeerEvent::NotInterested => {
                // Unchoke promptly when a slot is free rather than waiting
                // up to 10 s for the next round.
                self.maybe_fill_slot(now, conn);
            }
            PeerEvent::Request(block) => self.on_request(now, conn, block),
            PeerEvent::Block { block, data } => self.on_block(now, conn, block, data),
            PeerEvent::RequestsDropped(blocks) => {
                for b in blocks {
                    self.picker.abort_request(b, conn);
                }
            }
            PeerEvent::Closed(reason) => self.drop_peer(now, conn, reason, false),
        }
    }

    /// A BEP 10 message under one of our ids: a metadata request (BEP 9)
    /// or a peer list (BEP 11).
    fn on_extended(&mut self, now: Instant, conn: ConnId, id: u8, payload: Bytes) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(s) = p.session.as_mut() else {
            return;
        };
        match id {
            OUR_UT_METADATA => {
                let their_id = s.remote_extensions().and_then(|e| e.id_of(UT_METADATA));
                let reply = p
                    .exchange
                    .metadata_request(&payload, self.info.metadata.as_ref());
                if let (Some(their_id), Some(reply)) = (their_id, reply) {
                    s.send_extended(now, their_id, reply.into());
                }
            }
            OUR_UT_PEX if !self.info.private => {
                let addrs = p.exchange.pex_received(now, &payload);
                let own = SocketAddr::new(p.addr.ip(), self.config.listen_port);
                let mut any = false;
                for (a, flags) in addrs.into_iter().filter(|(a, _)| *a != own) {
                    self.list.add_flagged(now, a, PeerSource::Pex, flags);
                    any = true;
                }
                if any {
                    self.connect_more(now);
                }
            }
            _ => {}
        }
    }

    /// BEP 11: tells each peer that speaks `ut_pex`, once a minute, which
    /// peers we connected to and dropped since. Peers are named by their
    /// listen address (ours for outgoing connections, the extension
    /// handshake's `p` for incoming ones).
    fn exchange_peers(&mut self, now: Instant) {
        if self.info.private {
            return;
        }
        let connected: Vec<(ConnId, SocketAddr, PexFlags)> = self
            .peers
            .iter()
            .filter_map(|(c, p)| {
                let s = p.session.as_ref().filter(|s| s.is_active())?;
                let (addr, mut flags) = match s.direction() {
                    Direction::Outgoing => (p.addr, PexFlags::REACHABLE),
                    Direction::Incoming => {
                        let port = s.remote_extensions()?.port?;
                        (SocketAddr::new(p.addr.ip(), port), 0)
                    }
                };
                if matches!(s.remote_pieces(), RemotePieces::All) {
                    flags |= PexFlags::SEED;
                }
                Some((*c, addr, PexFlags(flags)))
            })
            .collect();
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            let Some(p) = self.peers.get_mut(&conn) else {
                continue;
            };
            let Some(s) = p.session.as_mut().filter(|s| s.is_active()) else {
                continue;
            };
            let Some(their_id) = s.remote_extensions().and_then(|e| e.id_of(UT_PEX)) else {
                continue;
            };
            let others: Vec<(SocketAddr, PexFlags)> = connected
                .iter()
                .filter(|(c, _, _)| *c != conn)
                .map(|(_, a, f)| (*a, *f))
                .collect();
            if let Some(m) = p.exchange.pex_due(now, &others) {
                let mut payload = Vec::new();
                m.encode(&mut payload);
                s.send_extended(now, their_id, payload.into());
                self.flush(now, conn);
            }
        }
    }

    fn drop_if_both_seeds(&mut self, now: Instant, conn: ConnId) {
        let both = self.state == TorrentState::Seeding
            && self
                .peers
                .get(&conn)
                .and_then(|p| p.session.as_ref())
                .is_some_and(|s| *s.remote_pieces() == RemotePieces::All);
        if both {
            self.drop_peer(now, conn, CloseReason::Local, true);
        }
    }

    /// The connected peer that has gone longest without a block either
    /// way, if that is at least [`IDLE_EVICTION`].
    fn most_idle_peer(&self, now: Instant) -> Option<ConnId> {
        self.peers
            .iter()
            .filter_map(|(c, p)| Some((*c, p.session.as_ref()?)))
            .filter(|(_, s)| s.is_active() && s.last_payload() + IDLE_EVICTION <= now)
            .min_by_key(|(c, s)| (s.last_payload(), *c))
            .map(|(c, _)| c)
    }

    fn drop_peer(&mut self, now: Instant, conn: ConnId, reason: CloseReason, close_socket: bool) {
        self.disconnect(now, conn, reason, close_socket);
        self.connect_more(now);
    }

    /// Takes a peer out (its requests back to the picker, its pieces out
    /// of the availability), closing the socket unless the peer did.
    fn disconnect(&mut self, now: Instant, conn: ConnId, reason: CloseReason, close_socket: bool) {
        let Some(mut peer) = self.peers.remove(&conn) else {
            return;
        };
        if let Some(s) = peer.session.as_mut() {
            for b in s.outstanding().copied().collect::<Vec<_>>() {
                self.picker.abort_request(b, conn);
            }
            match peer.counted {
                Counted::Seed => self.picker.peer_gone(PeerPieces::All),
                Counted::Bits => {
                    if let RemotePieces::Some(b) = s.remote_pieces() {
                        self.picker.peer_gone(PeerPieces::Some(b));
                    }
                }
                Counted::Nothing => {}
            }
        }
        // Anything requested from this peer that the picker still lists.
        for b in self.picker.requests_of(conn) {
            self.picker.abort_request(b, conn);
        }
        self.list.disconnected(now, peer.addr);
        if close_socket || !matches!(reason, CloseReason::RemoteClosed) {
            self.out.push_back(TorrentOutput::Close { conn });
        }
        if peer.connected_event_sent {
            self.emit(TorrentEvent::PeerDisconnected {
                conn,
                addr: peer.addr,
                reason,
            });
        }
    }

    // --- interest and requests --------------------------------------------

    fn peer_has_wanted(&self, s: &PeerSession) -> bool {
        has_wanted(&self.picker, s)
    }

    fn update_interest(&mut self, now: Instant, conn: ConnId) {
        let wanted = self
            .peers
            .get(&conn)
            .and_then(|p| p.session.as_ref())
            .is_some_and(|s| self.peer_has_wanted(s));
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.set_interested(now, wanted);
        }
    }

    fn refresh_interest(&mut self, now: Instant) {
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.update_interest(now, c);
            self.flush(now, c);
        }
    }

    fn outstanding_bytes(&self) -> u64 {
        self.peers
            .values()
            .filter_map(|p| p.session.as_ref())
            .map(|s| s.outstanding().map(|b| u64::from(b.length)).sum::<u64>())
            .sum()
    }

    /// Gives every peer with room in its pipeline new requests, within the
    /// memory budget.
    fn fill_requests(&mut self, now: Instant) {
        if self.state != TorrentState::Downloading {
            return;
        }
        let mut budget = self
            .config
            .max_buffered_bytes
            .saturating_sub(self.buffered_bytes + self.outstanding_bytes())
            .min(self.down_bucket.available(now));
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        let mut blocks = Vec::new();
        for conn in conns {
            if budget < u64::from(BLOCK_SIZE) {
                break;
            }
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            let Some(s) = peer.session.as_mut() else {
                continue;
            };
            let room = s
                .request_room(now)
                .min((budget / u64::from(BLOCK_SIZE)) as usize);
            if room == 0 {
                continue;
            }
            let exclusive = self.list.on_parole(&peer.addr);
            blocks.clear();
            let pieces = match s.remote_pieces() {
                RemotePieces::All => PeerPieces::All,
                RemotePieces::Some(b) => PeerPieces::Some(b),
                RemotePieces::None => continue,
            };
            if s.peer_choking() {
                // Choked: only allowed-fast pieces may be requested.
                let allowed: Vec<PieceIndex> = s.allowed_fast_in().to_vec();
                let mut only = Bitfield::new(self.info.layout.piece_count());
                for p in allowed {
                    if s.remote_has(p) {
                        only.set(p);
                    }
                }
                self.picker.pick(
                    conn,
                    PeerPieces::Some(&only),
                    room,
                    PickOptions { exclusive },
                    &mut blocks,
                );
            } else {
                self.picker
                    .pick(conn, pieces, room, PickOptions { exclusive }, &mut blocks);
            }
            if blocks.is_empty() {
                if s.outstanding().next().is_none() && !s.peer_choking() {
                    let wanted = has_wanted(&self.picker, s);
                    s.set_interested(now, wanted);
                }
            } else {
                let bytes: u64 = blocks.iter().map(|b| u64::from(b.length)).sum();
                budget = budget.saturating_sub(bytes);
                let _ = self.down_bucket.try_take(now, bytes);
                s.request(now, &blocks);
            }
            self.flush(now, conn);
        }
    }

    fn on_block(&mut self, now: Instant, conn: ConnId, block: BlockRef, data: Bytes) {
        self.downloaded += data.len() as u64;
        match self.picker.on_block(block, conn) {
            BlockReceived::New { cancel } => {
                for other in cancel {
                    if let Some(s) = self.peers.get_mut(&other).and_then(|p| p.session.as_mut()) {
                        s.cancel(now, block);
                    }
                    self.flush(now, other);
                }
                let piece = block.piece.0;
                if self.writes_through() {
                    self.write_block(conn, block, data);
                    return;
                }
                let count = self.picker.block_count(piece) as usize;
                let buf = self.buffers.entry(piece).or_default();
                if buf.blocks.len() != count {
                    buf.blocks = vec![None; count];
                }
                let index = (block.offset / BLOCK_SIZE) as usize;
                if buf.blocks[index].is_none() {
                    self.buffered_bytes += data.len() as u64;
                }
                buf.blocks[index] = Some(data);
                if self.picker.is_complete(block.piece) && !self.verifying.contains(&piece) {
                    self.start_verify(piece, conn);
                }
            }
            BlockReceived::Duplicate | BlockReceived::Unwanted => {}
        }
    }

    fn start_verify(&mut self, piece: u32, last_sender: ConnId) {
        let Some(buf) = self.buffers.get(&piece) else {
            return;
        };
        let blocks: Vec<Bytes> = buf.blocks.iter().flatten().cloned().collect();
        if blocks.len() != buf.blocks.len() {
            return;
        }
        let Some(&hash) = self.info.piece_hashes.get(piece as usize) else {
            return;
        };
        self.note_exclusive(piece, last_sender);
        self.verifying.insert(piece);
        let slices = self.info.layout.piece_slices(PieceIndex(piece)).collect();
        self.out.push_back(TorrentOutput::Verify {
            piece: PieceIndex(piece),
            blocks,
            hash,
            slices,
        });
    }

    /// Remembers that `piece` came from one peer on parole alone (its
    /// verdict ends or prolongs the parole).
    fn note_exclusive(&mut self, piece: u32, last_sender: ConnId) {
        let contributors = self.picker.contributors(PieceIndex(piece));
        if contributors.len() == 1
            && self
                .peers
                .get(&last_sender)
                .is_some_and(|p| self.list.on_parole(&p.addr))
        {
            self.exclusive_pieces.insert(piece, last_sender);
        }
    }

    /// The verdict on a piece handed out with [`TorrentOutput::Verify`]:
    /// whether its hash matched (`ok`) and, if so, whether it was written
    /// (`written` false: the disk failed, e.g. full).
    pub fn handle_verified(&mut self, now: Instant, piece: PieceIndex, ok: bool, written: bool) {
        self.now = now;
        let p = piece.0;
        if !self.verifying.remove(&p) {
            return;
        }
        let contributors: Vec<ConnId> = self.picker.contributors(piece).to_vec();
        let addrs: Vec<SocketAddr> = contributors
            .iter()
            .filter_map(|c| self.peers.get(c).map(|peer| peer.addr))
            .collect();
        let exclusive = self.exclusive_pieces.remove(&p).is_some();
        if ok {
            self.picker.on_piece_verified(piece);
            for a in &addrs {
                self.list.good_piece(a, exclusive);
            }
            self.after_write(now, piece, written);
            return;
        } else {
            self.release_buffer(p);
            self.picker.on_hash_failed(piece);
            self.emit(TorrentEvent::HashFailed {
                piece,
                contributors: addrs.clone(),
            });
            let sole = contributors.len() == 1;
            for (conn, addr) in contributors.iter().zip(&addrs) {
                if self.list.bad_piece(addr, sole) {
                    self.emit(TorrentEvent::PeerBanned(*addr));
                    self.drop_peer(now, *conn, CloseReason::Protocol(PeerError::BadData), true);
                }
            }
        }
        self.fill_requests(now);
    }

    fn release_buffer(&mut self, piece: u32) {
        if let Some(buf) = self.buffers.remove(&piece) {
            let bytes: u64 = buf.blocks.iter().flatten().map(|b| b.len() as u64).sum();
            self.buffered_bytes -= bytes;
        }
    }

    /// A verified piece is on disk (`ok`) or could not be written.
    fn after_write(&mut self, now: Instant, piece: PieceIndex, ok: bool) {
        self.release_buffer(piece.0);
        if !ok {
            // The disk failed: the piece is not on disk, so it must be
            // fetched again; the application decides whether to go on.
            self.picker.on_hash_failed(piece);
            self.emit(TorrentEvent::WriteFailed(piece));
            return;
        }
        self.mark_on_disk(piece);
        self.emit(TorrentEvent::PieceDone(piece));
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                s.have(now, piece);
            }
            self.flush(now, c);
        }
        self.after_progress();
        self.fill_requests(now);
    }

    /// Switches to seeding once every wanted piece is on disk.
    fn after_progress(&mut self) {
        if self.is_finished() && self.state == TorrentState::Downloading {
            self.set_state(TorrentState::Seeding);
            if !self.finished_reported {
                self.finished_reported = true;
                self.emit(TorrentEvent::Finished);
                self.announcer.completed(self.now);
                self.pump_announces(self.now);
            }
            let now = self.now;
            let conns: Vec<ConnId> = self.peers.keys().copied().collect();
            for c in conns {
                if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                    s.set_interested(now, false);
                }
                self.flush(now, c);
                self.drop_if_both_seeds(now, c);
            }
        } else if !self.is_finished() && self.state == TorrentState::Seeding {
            // New files were selected.
            self.set_state(TorrentState::Downloading);
        }
    }

    // --- uploads ----------------------------------------------------------

    fn on_request(&mut self, now: Instant, conn: ConnId, block: BlockRef) {
        let size = self.info.layout.piece_size(block.piece);
        let in_range = block.piece.0 < self.info.layout.piece_count()
            && u64::from(block.offset) + u64::from(block.length) <= u64::from(size);
        if !in_range || !self.on_disk.get(block.piece) {
            if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                s.close(CloseReason::Protocol(PeerError::RequestOutOfRange));
            }
            let _ = now;
            return;
        }
        self.pending_reads.push_back((conn, block));
        self.pump_uploads(now);
    }

    /// Issues disk reads for queued peer requests while upload tokens last.
    fn pump_uploads(&mut self, now: Instant) {
        while let Some(&(conn, block)) = self.pending_reads.front() {
            if !self.peers.contains_key(&conn) {
                self.pending_reads.pop_front();
                continue;
            }
            if !self.up_bucket.try_take(now, u64::from(block.length)) {
                break;
            }
            self.pending_reads.pop_front();
            let slices = self
                .info
                .layout
                .slices(block.piece, block.offset, block.length)
                .collect();
            self.out.push_back(TorrentOutput::Read {
                conn,
                block,
                slices,
            });
        }
    }

    /// The data for a [`TorrentOutput::Read`] (or `None` if reading failed).
    pub fn handle_read(
        &mut self,
        now: Instant,
        conn: ConnId,
        block: BlockRef,
        data: Option<&[u8]>,
    ) {
        self.now = now;
        let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) else {
            return;
        };
        match data {
            Some(d) => {
                s.send_block(now, block, d);
                self.uploaded += d.len() as u64;
            }
            None => s.reject(now, block),
        }
        self.flush(now, conn);
    }

    // --- start-up checking ------------------------------------------------

    fn pump_checks(&mut self) {
        while self.checks_in_flight < self.config.max_checks_in_flight {
            let Some(p) = self.checks_pending.pop_front() else {
                break;
            };
            let piece = PieceIndex(p);
            let Some(&hash) = self.info.piece_hashes.get(p as usize) else {
                continue;
            };
            self.checks_in_flight += 1;
            self.out.push_back(TorrentOutput::Check {
                piece,
                slices: self.info.layout.piece_slices(piece).collect(),
                hash,
            });
        }
    }

    /// The result of a [`TorrentOutput::Check`]: whether the piece on disk
    /// matched its hash.
    pub fn handle_checked(&mut self, now: Instant, piece: PieceIndex, ok: bool) {
        self.now = now;
        if self.verifying.contains(&piece.0) {
            // A write-through piece: its data is already on disk.
            self.handle_verified(now, piece, ok, true);
            return;
        }
        let paused = self.state == TorrentState::Paused;
        let checking = self.state == TorrentState::Checking
            || (paused && self.paused_from == TorrentState::Checking);
        if !checking || self.checks_in_flight == 0 {
            return;
        }
        self.checks_in_flight -= 1;
        if ok && piece.0 < self.info.layout.piece_count() {
            self.picker.on_piece_verified(piece);
            self.mark_on_disk(piece);
        }
        self.pump_checks();
        if self.checks_in_flight == 0 && self.checks_pending.is_empty() {
            if paused {
                // Checking finished while paused: resume into downloading.
                self.paused_from = TorrentState::Downloading;
                return;
            }
            self.state = TorrentState::Downloading;
            self.emit(TorrentEvent::StateChanged(TorrentState::Downloading));
            self.finished_reported = self.picker.is_finished();
            self.after_progress();
            self.connect_more(now);
            self.pump_announces(now);
        }
    }

    // --- time -------------------------------------------------------------

    /// A deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.pump_announces(now);
        if matches!(self.state, TorrentState::Paused | TorrentState::Stopped) {
            return;
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            let due = self
                .peers
                .get(&c)
                .and_then(|p| p.session.as_ref())
                .and_then(PeerSession::poll_timeout)
                .is_some_and(|t| t <= now);
            if due {
                if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                    s.handle_timeout(now);
                }
                self.flush(now, c);
            }
        }
        if now >= self.next_choke {
            self.next_choke = now + CHOKE_INTERVAL;
            self.choke_round += 1;
            self.rechoke(now, self.choke_round % 3 == 1);
            self.exchange_peers(now);
        }
        if now >= self.next_connect {
            self.connect_more(now);
        }
        self.pump_uploads(now);
        self.fill_requests(now);
    }

    fn maybe_fill_slot(&mut self, now: Instant, conn: ConnId) {
        let unchoked = self
            .peers
            .values()
            .filter_map(|p| p.session.as_ref())
            .filter(|s| !s.am_choking())
            .count();
        let interested = self
            .peers
            .get(&conn)
            .and_then(|p| p.session.as_ref())
            .is_some_and(|s| s.peer_interested());
        let slots = self.config.unchoke_slots + usize::from(self.config.optimistic_unchoke);
        if interested && unchoked < slots {
            if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                s.unchoke(now);
            }
        }
    }

    fn rechoke(&mut self, now: Instant, rotate: bool) {
        let mut candidates = Vec::new();
        for (conn, p) in self.peers.iter_mut() {
            if let Some(s) = p.session.as_mut() {
                if s.is_active() {
                    candidates.push(ChokeCandidate {
                        conn: *conn,
                        interested: s.peer_interested(),
                        download_rate: s.download_rate(now),
                        upload_rate: s.upload_rate(now),
                        snubbed: s.is_snubbed(),
                    });
                }
            }
        }
        let seeding = (self.state == TorrentState::Seeding).then_some(self.config.seed_choking);
        let mut set = self.choker.unchoke_set(
            &candidates,
            self.config.unchoke_slots,
            seeding,
            rotate,
            &mut self.rng,
        );
        if !self.config.optimistic_unchoke {
            set.truncate(self.config.unchoke_slots);
        }
        for c in candidates {
            if let Some(s) = self.peers.get_mut(&c.conn).and_then(|p| p.session.as_mut()) {
                if set.contains(&c.conn) {
                    s.unchoke(now);
                } else {
                    s.choke(now);
                }
            }
            self.flush(now, c.conn);
        }
    }
}

/// Whether the peer has a piece we want and lack.
fn has_wanted(picker: &PiecePicker, s: &PeerSession) -> bool {
    match s.remote_pieces() {
        RemotePieces::None => false,
        RemotePieces::All => !picker.is_finished(),
        RemotePieces::Some(b) => b
            .iter()
            .any(|p| !picker.has(p) && picker.priority(p) != Priority::Skip),
    }
}

#[cfg(test)]
mod tests;
