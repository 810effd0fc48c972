//! `PeerSession`: one peer connection's protocol state machine.
//!
//! It speaks the wire protocol (handshake, choke/interest, requests, blocks,
//! BEP 6 fast extension, BEP 10 extension handshake) and keeps the
//! connection's timers (handshake, keep-alive, inactivity, request
//! timeouts). It does not decide *what* to download or *whom* to unchoke:
//! its owner, the torrent, does, from the events it reports.
//!
//! Methods, in quinn-proto's vocabulary:
//!
//! - inputs: [`handle_bytes`](PeerSession::handle_bytes) (what the socket
//!   read), [`handle_eof`](PeerSession::handle_eof),
//!   [`handle_timeout`](PeerSession::handle_timeout);
//! - commands from the torrent: [`start`](PeerSession::start) (right after
//!   [`PeerEvent::Connected`]), [`request`](PeerSession::request),
//!   [`cancel`](PeerSession::cancel), [`set_interested`](PeerSession::set_interested),
//!   [`choke`](PeerSession::choke) / [`unchoke`](PeerSession::unchoke),
//!   [`have`](PeerSession::have), [`send_block`](PeerSession::send_block),
//!   [`reject`](PeerSession::reject), [`close`](PeerSession::close);
//! - outputs: [`poll_event`](PeerSession::poll_event),
//!   [`poll_transmit`](PeerSession::poll_transmit),
//!   [`poll_timeout`](PeerSession::poll_timeout).
//!
//! After any input or command, drain `poll_event` and `poll_transmit`, then
//! re-read `poll_timeout`.

mod commands;
mod fast;
mod inputs;
mod rate;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;

pub use fast::allowed_fast_set;
pub use rate::{RateMeter, TokenBucket};

use crate::bitfield::Bitfield;
use crate::error::PeerError;
use crate::metainfo::{InfoHash, PieceIndex};
use crate::time::Instant;
use crate::wire::{
    BlockRef, ExtensionHandshake, Frame, FrameDecoder, FrameLimits, Handshake, HashList,
    HashRequest, PeerId, Reserved, BLOCK_SIZE,
};

/// Timing and size settings of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The handshake must complete within this.
    pub handshake_timeout: Duration,
    /// Send a keep-alive when we have sent nothing for this long (BEP 3:
    /// "generally sent once every two minutes").
    pub keepalive_interval: Duration,
    /// Drop the peer when it has sent nothing for this long.
    pub inactivity_timeout: Duration,
    /// With requests outstanding and no block for this long, the peer is
    /// snubbed: its requests go back to the picker.
    pub request_timeout: Duration,
    /// Most requests we queue from the peer (our `reqq`). A fast leecher
    /// keeps seconds of transfer requested: at 250 a libtorrent leecher
    /// on loopback took 1.4 times as long as at 1000 (libtorrent accepts
    /// 2000). Queued requests cost a few bytes each; what is read for
    /// them is bounded by the torrent's upload window.
    pub max_incoming_requests: usize,
    /// Most requests we keep outstanding at the peer (capped by its `reqq`).
    pub max_outgoing_requests: usize,
    /// How many seconds of the peer's rate to keep requested.
    pub request_queue_time: Duration,
    /// Blocks we never asked for that are tolerated (late arrivals after a
    /// cancel or timeout) before the peer is dropped.
    pub unrequested_tolerance: u32,
    /// Our client name in the extension handshake.
    pub client_name: String,
    /// Our listen port, for the extension handshake.
    pub listen_port: Option<u16>,
    /// Size of the allowed-fast set we grant (0 disables).
    pub allowed_fast: usize,
    /// The BEP 10 extensions we speak, with the ids we want them under
    /// (our handshake's `m`).
    pub extensions: Vec<(String, u8)>,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            handshake_timeout: Duration::from_secs(20),
            keepalive_interval: Duration::from_secs(120),
            inactivity_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            max_incoming_requests: 1000,
            max_outgoing_requests: 250,
            request_queue_time: Duration::from_secs(3),
            unrequested_tolerance: 16,
            client_name: concat!("bittide/", env!("CARGO_PKG_VERSION")).to_owned(),
            listen_port: None,
            allowed_fast: 10,
            extensions: Vec::new(),
        }
    }
}

/// Who opened the connection: the side that connects sends its handshake
/// first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We connected.
    Outgoing,
    /// The peer connected to us.
    Incoming,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer broke the protocol.
    Protocol(PeerError),
    /// The peer closed the connection.
    RemoteClosed,
    /// The handshake did not complete in time.
    HandshakeTimeout,
    /// Our side closed it (the torrent decided).
    Local,
}

/// What the peer announced it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemotePieces {
    /// Nothing announced yet (or have none).
    None,
    /// A bitfield, updated by `have`.
    Some(Bitfield),
    /// Have all, or a full bitfield.
    All,
}

/// What the torrent should learn from a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// Handshake done; call [`PeerSession::start`] now.
    Connected {
        /// The peer's id.
        peer_id: PeerId,
        /// The peer's extension bits.
        reserved: Reserved,
    },
    /// The peer's bitfield, have all or have none arrived
    /// ([`PeerSession::remote_pieces`] has it).
    PiecesKnown,
    /// The peer has a new piece.
    Have(PieceIndex),
    /// The peer choked us.
    Choked,
    /// The peer unchoked us: requests may flow.
    Unchoked,
    /// The peer is interested in us.
    Interested,
    /// The peer is no longer interested.
    NotInterested,
    /// The peer asks for a block: check it and answer with
    /// [`send_block`](PeerSession::send_block) after reading it, or
    /// [`reject`](PeerSession::reject).
    Request(BlockRef),
    /// A block arrived.
    Block {
        /// Which block.
        block: BlockRef,
        /// Its bytes (a slice of the receive buffer).
        data: Bytes,
    },
    /// Our requests that will not be answered (choked without the fast
    /// extension, rejected, or timed out): give them back to the picker.
    RequestsDropped(Vec<BlockRef>),
    /// BEP 6: we may request this piece while choked.
    AllowedFast(PieceIndex),
    /// BEP 6: the peer suggests this piece.
    Suggest(PieceIndex),
    /// BEP 10 extension handshake arrived.
    ExtensionHandshake(Box<ExtensionHandshake>),
    /// A BEP 10 extension message (id as *we* assigned it).
    Extended {
        /// Our id for the extension.
        id: u8,
        /// Its payload.
        payload: Bytes,
    },
    /// BEP 5: the peer's DHT port.
    DhtPort(u16),
    /// BEP 52: the peer asks for merkle hashes: answer with
    /// [`answer_hashes`](PeerSession::answer_hashes).
    HashRequest(HashRequest),
    /// BEP 52: hashes we asked for with
    /// [`request_hashes`](PeerSession::request_hashes), unchecked.
    Hashes {
        /// What they answer.
        request: HashRequest,
        /// The requested hashes, then the uncles.
        hashes: HashList,
    },
    /// BEP 52: the peer will not send those hashes.
    HashesRejected(HashRequest),
    /// The session is over; drop the connection.
    Closed(CloseReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Handshaking,
    /// Handshake done, waiting for the torrent's `start`.
    Connected,
    Active,
    Closed,
}

/// Most `have` messages kept before the piece count is known; more are
/// dropped (the peer's availability is then undercounted, nothing worse).
const MAX_EARLY_HAVES: usize = 1 << 16;
/// Our hash requests (BEP 52) unanswered at once on one connection
/// (libtorrent keeps two).
pub const MAX_HASH_REQUESTS: usize = 4;

/// What a peer said it has before we knew the piece count (BEP 9: a magnet
/// link's peers send their bitfield right after the handshake, long before
/// the metadata is in). Checked against the piece count once it is known.
#[derive(Debug, Default)]
struct EarlyPieces {
    /// The first message after the handshake, if it said what the peer has.
    first: Option<EarlyFirst>,
    haves: Vec<u32>,
}

/// A bitfield, or BEP 6 `have all` / `have none`.
#[derive(Debug)]
enum EarlyFirst {
    Bitfield(Bytes),
    All,
    Nothing,
}

/// See the module documentation.
#[derive(Debug)]
pub struct PeerSession {
    config: SessionConfig,
    /// The name the torrent goes by on this connection: the one we sent,
    /// then the one the peer's handshake used.
    info_hash: InfoHash,
    /// A hybrid torrent's other name (BEP 52: the v1 hash and the v2 hash
    /// truncated), accepted from the peer as well.
    other_hash: Option<InfoHash>,
    our_id: PeerId,
    our_reserved: Reserved,
    direction: Direction,
    piece_count: u32,
    /// Before the metadata is known (a magnet link): nothing can be
    /// requested or served, and what the peer says it has waits in
    /// `early` until [`learn_piece_count`](PeerSession::learn_piece_count).
    metadata_only: bool,
    early: EarlyPieces,
    remote_ip: Option<IpAddr>,
    state: State,
    decoder: FrameDecoder,
    out: Vec<u8>,
    events: VecDeque<PeerEvent>,
    remote: Option<Handshake>,
    remote_ext: Option<ExtensionHandshake>,
    remote_pieces: RemotePieces,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    /// Our requests to the peer, oldest first.
    outstanding: VecDeque<BlockRef>,
    /// Requests we cancelled whose blocks may still arrive.
    cancelled: VecDeque<BlockRef>,
    unrequested: u32,
    /// The peer's requests to us not yet answered.
    incoming: VecDeque<BlockRef>,
    /// Pieces we allowed the peer to request while choked.
    allowed_out: Vec<PieceIndex>,
    /// Pieces the peer allowed us to request while choked.
    allowed_in: Vec<PieceIndex>,
    /// Our hash requests not yet answered (BEP 52).
    hashes_asked: Vec<HashRequest>,
    started: Instant,
    last_received: Instant,
    last_sent: Instant,
    /// Last time a block arrived or the request queue was (re)started.
    last_progress: Instant,
    /// Last time a block went either way (or the session began).
    last_payload: Instant,
    snubbed: bool,
    down: RateMeter,
    up: RateMeter,
}

impl PeerSession {
    /// A session for `info_hash` over a connection `direction` opened at
    /// `now`. An outgoing session queues its handshake at once.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        config: SessionConfig,
        direction: Direction,
        info_hash: InfoHash,
        our_id: PeerId,
        our_reserved: Reserved,
        piece_count: u32,
        remote_ip: Option<IpAddr>,
    ) -> PeerSession {
        let mut s = PeerSession {
            config,
            info_hash,
            other_hash: None,
            our_id,
            our_reserved,
            direction,
            piece_count,
            metadata_only: false,
            early: EarlyPieces::default(),
            remote_ip,
            state: State::Handshaking,
            decoder: FrameDecoder::new(FrameLimits {
                piece_count: Some(piece_count),
                ..FrameLimits::default()
            }),
            out: Vec::new(),
            events: VecDeque::new(),
            remote: None,
            remote_ext: None,
            remote_pieces: RemotePieces::None,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            outstanding: VecDeque::new(),
            cancelled: VecDeque::new(),
            unrequested: 0,
            incoming: VecDeque::new(),
            allowed_out: Vec::new(),
            allowed_in: Vec::new(),
            hashes_asked: Vec::new(),
            started: now,
            last_received: now,
            last_sent: now,
            last_progress: now,
            last_payload: now,
            snubbed: false,
            down: RateMeter::default(),
            up: RateMeter::default(),
        };
        if direction == Direction::Outgoing {
            s.send_handshake(now);
        }
        s
    }

    /// A session for a torrent whose metadata we do not have yet (BEP 9):
    /// it speaks the handshakes and extension messages; the peer's
    /// bitfield and haves are kept unchecked until
    /// [`learn_piece_count`](PeerSession::learn_piece_count), fast-extension
    /// hints are ignored, and its requests are refused.
    pub fn new_for_metadata(
        now: Instant,
        config: SessionConfig,
        direction: Direction,
        info_hash: InfoHash,
        our_id: PeerId,
        our_reserved: Reserved,
        remote_ip: Option<IpAddr>,
    ) -> PeerSession {
        let mut s = PeerSession::new(
            now,
            config,
            direction,
            info_hash,
            our_id,
            our_reserved,
            0,
            remote_ip,
        );
        s.metadata_only = true;
        s.decoder = FrameDecoder::new(FrameLimits::default());
        s
    }

    /// Accepts `other` from the peer too: a hybrid torrent's other
    /// info-hash (BEP 52). Set before any byte arrives.
    pub fn also_known_as(&mut self, other: InfoHash) {
        self.other_hash = Some(other);
    }

    // --- getters --------------------------------------------------------

    /// The info-hash the connection uses: the one we sent until the
    /// peer's handshake arrives, then the one it used.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The peer's handshake, once received.
    pub fn remote(&self) -> Option<&Handshake> {
        self.remote.as_ref()
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The peer's extension handshake, once received.
    pub fn remote_extensions(&self) -> Option<&ExtensionHandshake> {
        self.remote_ext.as_ref()
    }

    /// What the peer has.
    pub fn remote_pieces(&self) -> &RemotePieces {
        &self.remote_pieces
    }

    /// Whether the peer has `piece`.
    pub fn remote_has(&self, piece: PieceIndex) -> bool {
        match &self.remote_pieces {
            RemotePieces::None => false,
            RemotePieces::All => piece.0 < self.piece_count,
            RemotePieces::Some(b) => b.get(piece),
        }
    }

    /// Whether both sides speak BEP 6.
    pub fn fast(&self) -> bool {
        self.remote.is_some_and(|h| {
            h.reserved.supports(Reserved::FAST) && self.our_reserved.supports(Reserved::FAST)
        })
    }

    /// We are choking the peer.
    pub fn am_choking(&self) -> bool {
        self.am_choking
    }

    /// We are interested in the peer.
    pub fn am_interested(&self) -> bool {
        self.am_interested
    }

    /// The peer is choking us.
    pub fn peer_choking(&self) -> bool {
        self.peer_choking
    }

    /// The peer asked for `block` and we have neither sent nor refused it.
    pub fn is_asked(&self, block: BlockRef) -> bool {
        self.incoming.contains(&block)
    }

    /// The peer is interested in us.
    pub fn peer_interested(&self) -> bool {
        self.peer_interested
    }

    /// The peer stopped sending blocks for requests it had.
    pub fn is_snubbed(&self) -> bool {
        self.snubbed
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the handshake is done and `start` was called.
    pub fn is_active(&self) -> bool {
        self.state == State::Active
    }

    /// Our requests not yet answered.
    pub fn outstanding(&self) -> impl Iterator<Item = &BlockRef> {
        self.outstanding.iter()
    }

    /// Download rate from this peer, bytes per second.
    pub fn download_rate(&mut self, now: Instant) -> u64 {
        self.down.rate(now)
    }

    /// Upload rate to this peer, bytes per second.
    pub fn upload_rate(&mut self, now: Instant) -> u64 {
        self.up.rate(now)
    }

    /// Download and upload rates without moving the meters' windows
    /// (see [`RateMeter::rate_at`]).
    pub fn rates_at(&self, now: Instant) -> (u64, u64) {
        (self.down.rate_at(now), self.up.rate_at(now))
    }

    /// When a block last went either way (the session's start if none
    /// has): how idle the peer is.
    pub fn last_payload(&self) -> Instant {
        self.last_payload
    }

    /// Payload bytes received and sent.
    pub fn totals(&self) -> (u64, u64) {
        (self.down.total(), self.up.total())
    }

    /// Pieces the peer allows us to request while choked.
    pub fn allowed_fast_in(&self) -> &[PieceIndex] {
        &self.allowed_in
    }

    /// How many more blocks we should request now: the queue depth follows
    /// the peer's measured rate (`request_queue_time` worth of blocks),
    /// between 4 and the peer's `reqq`; 1 while snubbed; 0 unless we may
    /// request (unchoked, or fast pieces allowed), and 0 while less than a
    /// quarter of the depth is free.
    pub fn request_room(&mut self, now: Instant) -> usize {
        if self.state != State::Active || !self.am_interested {
            return 0;
        }
        if self.peer_choking && self.allowed_in.is_empty() {
            return 0;
        }
        let cap = self
            .remote_ext
            .as_ref()
            .and_then(|e| e.reqq)
            .map_or(self.config.max_outgoing_requests, |q| {
                (q as usize).min(self.config.max_outgoing_requests)
            })
            .max(1);
        let depth = if self.snubbed {
            1
        } else {
            let rate = self.down.rate(now) as u128;
            let want =
                rate * self.config.request_queue_time.as_millis() / 1000 / u128::from(BLOCK_SIZE);
            (want as usize).clamp(4, cap.max(4)).min(cap)
        };
        // A deep pipeline is topped up a quarter at a time: a message of
        // requests for each read's few blocks was most of what a download
        // sent (12,000 sends per GiB from one seeder, each a syscall here
        // and a wake-up there).
        match depth.saturating_sub(self.outstanding.len()) {
            room if room < depth / 4 => 0,
            room => room,
        }
    }

    // --- outputs ----------------------------------------------------------

    /// The next event for the torrent.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// Moves the bytes to send into `buf` (appending); returns how many.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        if buf.is_empty() {
            // Blocks make this megabytes: hand the buffer over, not a copy.
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.append(&mut self.out);
        }
        n
    }

    /// When [`handle_timeout`](PeerSession::handle_timeout) wants to run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Handshaking => Some(self.started + self.config.handshake_timeout),
            State::Connected | State::Active => {
                let mut t = (self.last_received + self.config.inactivity_timeout)
                    .min(self.last_sent + self.config.keepalive_interval);
                if !self.outstanding.is_empty() && !self.snubbed {
                    t = t.min(self.last_progress + self.config.request_timeout);
                }
                Some(t)
            }
        }
    }
}

#[cfg(test)]
mod tests;
