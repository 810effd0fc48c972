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
//! A magnet link is a torrent too ([`Torrent::from_magnet`]): it begins in
//! [`TorrentState::FetchingMetadata`] with the same connections, peer list
//! and announces, fetches its info dictionary from peers (the `metadata`
//! module) and then goes on over the same sessions after
//! [`start`](Torrent::start).
//!
//! Methods:
//!
//! - inputs: [`handle_connected`](Torrent::handle_connected),
//!   [`handle_incoming`](Torrent::handle_incoming),
//!   [`handle_connect_failed`](Torrent::handle_connect_failed),
//!   [`handle_bytes`](Torrent::handle_bytes),
//!   [`handle_closed`](Torrent::handle_closed),
//!   [`handle_verified_run`](Torrent::handle_verified_run),
//!   [`handle_read`](Torrent::handle_read),
//!   [`handle_checked`](Torrent::handle_checked),
//!   [`handle_written`](Torrent::handle_written),
//!   [`handle_timeout`](Torrent::handle_timeout);
//! - commands: [`start`](Torrent::start) (a magnet's, once its metadata is
//!   in), [`add_peers`](Torrent::add_peers), [`pause`](Torrent::pause),
//!   [`resume`](Torrent::resume),
//!   [`set_file_priorities`](Torrent::set_file_priorities),
//!   [`set_sequential`](Torrent::set_sequential);
//! - outputs: [`poll_output`](Torrent::poll_output) until `None`, then
//!   [`poll_timeout`](Torrent::poll_timeout).

mod announces;
pub mod choker;
mod commands;
mod config;
mod connections;
pub mod exchange;
pub mod holepunch;
mod layers;
mod leaves;
mod metadata;
mod outputs;
pub mod peers;
mod queueing;
mod requests;
mod startup;
mod stats;
mod uploads;
mod verification;
mod web_seeds;
mod write_through;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::error::PeerError;
use crate::handles::ConnId;
use crate::metainfo::{
    FileLayout, FileSlice, Info, InfoHash, MetainfoError, PieceHash, PieceIndex, RunningHash,
};
use crate::peer::{CloseReason, Direction, PeerEvent, PeerSession, RemotePieces, TokenBucket};
use crate::picker::{BlockReceived, PeerPieces, PickOptions, PiecePicker, Priority};
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::tracker::tiers::Announcer;
use crate::tracker::{AnnounceRequest, AnnounceResponse, TrackerError};
use crate::wire::{BlockRef, PexFlags, Reserved, BLOCK_SIZE, UT_HOLEPUNCH, UT_METADATA, UT_PEX};
pub use announces::TrackerStatus;
use choker::{ChokeCandidate, Choker};
pub use config::{StartMode, TorrentConfig, TorrentInfo};
use exchange::{our_extensions, PeerExchange, OUR_UT_METADATA, OUR_UT_PEX};
use holepunch::{Holepunch, OUR_UT_HOLEPUNCH};
pub use outputs::{TorrentEvent, TorrentOutput, VerifyPiece};
use peers::{PeerList, PeerSource};
pub use queueing::{start_state, SessionShare};
pub use stats::{PeerFlags, PeerInfo, TransferHistory};
pub use web_seeds::{WebJob, WebSeedInfo, WebSeedState};

/// The torrent's life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorrentState {
    /// A magnet link: connecting to peers and fetching the info dictionary
    /// from them (BEP 9).
    FetchingMetadata,
    /// A magnet link's metadata is in and verified
    /// ([`TorrentEvent::MetadataReceived`]); the connections stay open until
    /// [`Torrent::start`] says what is on disk.
    AwaitingStart,
    /// Verifying existing data.
    Checking,
    /// Downloading.
    Downloading,
    /// Every wanted piece is on disk; uploading.
    Seeding,
    /// No connections until resumed.
    Paused,
    /// Waiting for a slot under the session's active limits: no
    /// connections, trackers told `stopped`; the engine starts it again
    /// when a slot frees, in queue order ([`Torrent::queue`]).
    Queued,
    /// Shut down for good (the engine sends trackers `stopped`).
    Stopped,
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
    /// The name an outgoing connection gives the torrent, chosen when
    /// dialling (BEP 52: a hybrid's v2 name for a peer of that swarm), so
    /// its MSE key and its handshake agree.
    name: InfoHash,
    /// `None` while the TCP connection is being opened.
    session: Option<PeerSession>,
    counted: Counted,
    connected_event_sent: bool,
    /// Metadata served and addresses exchanged with it.
    exchange: PeerExchange,
    /// The connection runs over uTP (BEP 29), not TCP.
    utp: bool,
    /// What it may still cost us in holepunch messages (BEP 55).
    punch_budget: holepunch::PeerBudget,
    /// What our uploads to it hold in memory.
    uploads: uploads::UploadWindow,
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

/// Gone connections whose addresses are kept for blame (see
/// `Torrent::departed`): more than the peers of a torrent, so every
/// contributor of a piece in progress is still there when it is checked.
const DEPARTED_KEPT: usize = 256;
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
    /// While a magnet's metadata is on its way.
    fetch: Option<metadata::MetadataFetch>,
    /// Pieces on disk (verified and written): what we announce and serve.
    on_disk: Bitfield,
    /// Bytes of wanted pieces, on disk or not (for share ratios).
    wanted: u64,
    /// The file priorities last set (`None`: every file normal), kept to
    /// lay first-and-last-piece priority over them.
    file_priorities: Option<Vec<Priority>>,
    first_last: bool,
    /// What the session lets this torrent use on top of `config`.
    share: SessionShare,
    /// A torrent queued before it ever began: how to begin.
    pending_start: Option<StartMode>,
    /// Queueing told the trackers `stopped`: the next start announces
    /// `started` again.
    trackers_stopped: bool,
    /// Since when the torrent seeds (while it does).
    seeding_since: Option<Instant>,
    /// Time spent seeding before `seeding_since` (earlier sessions'
    /// included).
    seeded: Duration,
    /// Bytes moved in earlier sessions (its `seeding_time` is unused:
    /// that lives in `seeded`).
    prior: TransferHistory,
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
    /// Write-through pieces with blocks held or on their way to the disk.
    writing: write_through::WriteThrough,
    buffered_bytes: u64,
    /// Complete pieces not yet out for verification, and when each
    /// completed: waiting a moment for the next piece of their extent, or
    /// for a run at the disk to come back (see `verification`).
    ready: BTreeMap<u32, Instant>,
    /// Runs of pieces out for verification.
    runs_out: usize,
    verifying: BTreeSet<u32>,
    /// Pieces whose last verification had an exclusive (parole) source.
    exclusive_pieces: BTreeMap<u32, ConnId>,
    /// The addresses of connections that have gone, newest
    /// [`DEPARTED_KEPT`]: a piece they contributed to may fail its hash
    /// check after they left, and the blame is theirs to take.
    departed: BTreeMap<ConnId, SocketAddr>,
    checks_pending: VecDeque<u32>,
    checks_in_flight: usize,
    /// During a [`recheck`](Torrent::recheck): the pieces peers were told
    /// we have before it.
    told_before_check: Option<Bitfield>,
    uploaded: u64,
    downloaded: u64,
    finished_reported: bool,
    out: VecDeque<TorrentOutput>,
    announcer: Announcer,
    /// `tracker id` values trackers gave us, sent back to them.
    tracker_ids: BTreeMap<String, Vec<u8>>,
    /// What each tracker last said, by URL (for [`Torrent::trackers`]).
    heard: BTreeMap<String, announces::Heard>,
    /// Our announce key (random, stable for the torrent's life).
    key: u32,
    up_bucket: TokenBucket,
    down_bucket: TokenBucket,
    /// The last [`fill_requests`](Torrent::fill_requests) left requests
    /// unmade for want of download tokens alone: they are due when the
    /// bucket has a block's worth again (see `poll_timeout`).
    rate_held: bool,
    /// Peer requests waiting for upload tokens.
    pending_reads: VecDeque<(ConnId, BlockRef)>,
    /// Holepunching (BEP 55): relays to ask, rendezvous asked, our dials.
    punch: Holepunch,
    /// Web seeds (BEP 19) and the runs asked of them.
    web: web_seeds::WebSeeds,
    /// Failed v2 pieces waiting for their leaf hashes, and leaf requests
    /// being answered (BEP 52).
    leaves: leaves::Leaves,
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
        let mut t = Torrent::with_info(now, info, config, seed);
        t.begin(now, start);
        t
    }

    /// The machine around `info`, not yet started.
    fn with_info(now: Instant, info: TorrentInfo, config: TorrentConfig, seed: Seed) -> Torrent {
        let mut rng = Rng::new(seed);
        let picker = PiecePicker::new(&info.layout, rng.child_seed());
        let announcer = Announcer::new(now, info.trackers.clone(), &mut rng);
        let key = rng.next_u32();
        let count = info.layout.piece_count();
        let web_seeds = info.web_seeds.clone();
        let mut t = Torrent {
            state: TorrentState::Downloading,
            paused_from: TorrentState::Downloading,
            picker,
            fetch: None,
            on_disk: Bitfield::new(count),
            wanted: 0,
            file_priorities: None,
            first_last: false,
            share: SessionShare::default(),
            pending_start: None,
            trackers_stopped: false,
            seeding_since: None,
            seeded: Duration::ZERO,
            prior: TransferHistory::default(),
            left: 0,
            peers: BTreeMap::new(),
            list: PeerList::new(config.max_peers_per_ip),
            choker: Choker::default(),
            choke_round: 0,
            next_choke: now + CHOKE_INTERVAL,
            next_connect: now,
            buffers: BTreeMap::new(),
            writing: write_through::WriteThrough::default(),
            buffered_bytes: 0,
            ready: BTreeMap::new(),
            runs_out: 0,
            verifying: BTreeSet::new(),
            exclusive_pieces: BTreeMap::new(),
            departed: BTreeMap::new(),
            checks_pending: VecDeque::new(),
            checks_in_flight: 0,
            told_before_check: None,
            uploaded: 0,
            downloaded: 0,
            finished_reported: false,
            out: VecDeque::new(),
            announcer,
            tracker_ids: BTreeMap::new(),
            heard: BTreeMap::new(),
            key,
            up_bucket: TokenBucket::new(config.upload_rate, now),
            down_bucket: TokenBucket::new(config.download_rate, now),
            rate_held: false,
            pending_reads: VecDeque::new(),
            punch: Holepunch::default(),
            web: web_seeds::WebSeeds::default(),
            leaves: leaves::Leaves::default(),
            info,
            config,
            rng,
            now,
        };
        t.push_web_seeds(web_seeds);
        t
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

    /// Pieces on their way to disk, sorted: requested or partly received,
    /// being verified, or verified and not yet written.
    pub fn pieces_in_progress(&self) -> Vec<PieceIndex> {
        let mut out: BTreeSet<u32> = self.picker.partial_pieces().map(|p| p.0).collect();
        out.extend(self.verifying.iter().copied());
        out.extend(self.ready.keys().copied());
        out.extend(
            (0..self.picker.piece_count())
                .filter(|&p| self.picker.has(PieceIndex(p)) && !self.on_disk.get(PieceIndex(p))),
        );
        out.into_iter().map(PieceIndex).collect()
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
        self.wanted = (0..self.info.layout.piece_count())
            .map(PieceIndex)
            .filter(|&p| self.picker.priority(p) != Priority::Skip)
            .map(|p| u64::from(self.info.layout.piece_size(p)))
            .sum();
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

    /// The memory budget in force: the configured one, or the session's
    /// share of its own when smaller.
    pub fn max_buffered_bytes(&self) -> u64 {
        let own = self.config.max_buffered_bytes;
        self.share.max_buffered_bytes.map_or(own, |s| s.min(own))
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
            TorrentState::Stopped | TorrentState::Queued => {
                return self.announcer.poll_timeout().map(|t| t.max(self.now))
            }
            _ => {}
        }
        // Without peers there is nothing to choke: an idle torrent sleeps
        // (a session of a thousand must not wake a hundred times a
        // second), and rechokes as soon as its first peer comes.
        let mut t = if self.peers.is_empty() {
            Instant::MAX
        } else {
            self.next_choke
        };
        if self.state != TorrentState::Checking {
            if let Some(a) = self.announcer.poll_timeout() {
                t = t.min(a);
            }
        }
        if let Some(due) = self.fetch.as_ref().and_then(|f| f.poll_timeout()) {
            t = t.min(due);
        }
        if let Some(due) = self.leaves_timeout() {
            t = t.min(due);
        }
        if self.is_connecting() && self.peers.len() < self.max_peers() {
            if let Some(due) = self.list.next_deadline() {
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
        if self.state == TorrentState::Downloading {
            if let Some(retry) = self.web.next_retry() {
                t = t.min(retry);
            }
        }
        if let Some(due) = self.ready_deadline() {
            t = t.min(due);
        }
        if let Some((_, block)) = self.pending_reads.front() {
            t = t.min(self.up_bucket.ready_at(self.now, u64::from(block.length)));
        }
        // Due even if the tokens came back before this is asked: an input
        // that moved the clock on without filling (a send reported) must
        // not hide it, or requests wait for the next choke round.
        if self.rate_held {
            t = t.min(self.down_bucket.ready_at(self.now, u64::from(BLOCK_SIZE)));
        }
        (t != Instant::MAX).then(|| t.max(self.now))
    }

    /// Whether the torrent makes and accepts connections in its state (not
    /// while checking what is on disk, nor paused or stopped).
    fn is_connecting(&self) -> bool {
        matches!(
            self.state,
            TorrentState::FetchingMetadata | TorrentState::Downloading | TorrentState::Seeding
        )
    }

    fn emit(&mut self, e: TorrentEvent) {
        self.out.push_back(TorrentOutput::Event(e));
    }

    fn set_state(&mut self, s: TorrentState) {
        if self.state != s {
            if s == TorrentState::Seeding {
                self.seeding_since = Some(self.now);
            } else if let Some(since) = self.seeding_since.take() {
                self.seeded += self.now.saturating_duration_since(since);
            }
            self.state = s;
            self.list.set_seeding(s == TorrentState::Seeding);
            self.emit(TorrentEvent::StateChanged(s));
        }
    }

    // --- time -------------------------------------------------------------

    /// A deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.pump_announces(now);
        if matches!(
            self.state,
            TorrentState::Paused | TorrentState::Stopped | TorrentState::Queued
        ) {
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
        if let Some(f) = self.fetch.as_mut() {
            f.expire(now);
        }
        self.expire_leaf_requests(now);
        self.pump_ready(now, false);
        let held: Vec<ConnId> = (self.peers.iter())
            .filter(|(_, p)| p.uploads.is_holding())
            .map(|(c, _)| *c)
            .collect();
        for conn in held {
            self.resume_held(now, conn);
        }
        self.pump_uploads(now);
        self.fill_requests(now);
        self.web.retries_seen(now);
    }
}

#[cfg(test)]
mod tests;
