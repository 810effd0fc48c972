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

mod fast;
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
    BlockRef, ExtensionHandshake, Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved,
    BLOCK_SIZE,
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
    /// Most requests we queue from the peer (our `reqq`).
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
            max_incoming_requests: 250,
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
    info_hash: InfoHash,
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

    // --- getters --------------------------------------------------------

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
    /// between 2 and the peer's `reqq`; 1 while snubbed; 0 unless we may
    /// request (unchoked, or fast pieces allowed).
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
        depth.saturating_sub(self.outstanding.len())
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
        buf.append(&mut self.out);
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

    // --- inputs -----------------------------------------------------------

    /// A deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => {}
            State::Handshaking => {
                if now >= self.started + self.config.handshake_timeout {
                    self.close_with(CloseReason::HandshakeTimeout);
                }
            }
            State::Connected | State::Active => {
                if now >= self.last_received + self.config.inactivity_timeout {
                    self.close_with(CloseReason::Protocol(PeerError::Inactive));
                    return;
                }
                if !self.outstanding.is_empty()
                    && !self.snubbed
                    && now >= self.last_progress + self.config.request_timeout
                {
                    self.snubbed = true;
                    let dropped: Vec<BlockRef> = self.outstanding.drain(..).collect();
                    // Blocks may still come: tolerate them.
                    for b in &dropped {
                        self.remember_cancelled(*b);
                    }
                    self.events.push_back(PeerEvent::RequestsDropped(dropped));
                }
                if now >= self.last_sent + self.config.keepalive_interval {
                    self.send(now, &Frame::KeepAlive);
                }
            }
        }
    }

    /// The peer closed the connection (or it broke) at `now`.
    pub fn handle_eof(&mut self, now: Instant) {
        self.last_received = now;
        self.close_with(CloseReason::RemoteClosed);
    }

    /// The metadata is in (BEP 9): the session becomes a full one for a
    /// torrent of `piece_count` pieces. What the peer said it has so far
    /// is checked now: a bitfield of the wrong length or a `have` out of
    /// range closes the session ([`PeerEvent::Closed`]); otherwise
    /// [`PeerEvent::PiecesKnown`] reports it.
    pub fn learn_piece_count(&mut self, piece_count: u32) {
        if !self.metadata_only {
            return;
        }
        self.metadata_only = false;
        self.piece_count = piece_count;
        self.decoder.set_piece_count(piece_count);
        let early = std::mem::take(&mut self.early);
        if self.state == State::Closed {
            return;
        }
        let bad_length = PeerError::Malformed(crate::DecodeError::new(
            crate::DecodeErrorKind::InvalidLength,
            0,
            "bitfield",
        ));
        let mut pieces = match early.first {
            None if early.haves.is_empty() => return,
            None | Some(EarlyFirst::Nothing) => Bitfield::new(piece_count),
            Some(EarlyFirst::All) => Bitfield::full(piece_count),
            Some(EarlyFirst::Bitfield(bytes)) => match Bitfield::from_bytes(&bytes, piece_count) {
                Some(b) => b,
                None => return self.close_with(CloseReason::Protocol(bad_length)),
            },
        };
        for p in early.haves {
            if p >= piece_count {
                return self.close_with(CloseReason::Protocol(PeerError::RequestOutOfRange));
            }
            pieces.set(PieceIndex(p));
        }
        self.remote_pieces = if pieces.is_full() {
            RemotePieces::All
        } else {
            RemotePieces::Some(pieces)
        };
        self.events.push_back(PeerEvent::PiecesKnown);
    }

    /// Bytes read from the connection (copied; see
    /// [`handle_chunk`](PeerSession::handle_chunk)).
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        self.handle_chunk(now, Bytes::copy_from_slice(data));
    }

    /// A chunk read from the connection; blocks inside it are handed on as
    /// slices of it, without a copy.
    pub fn handle_chunk(&mut self, now: Instant, data: Bytes) {
        if self.state == State::Closed {
            return;
        }
        self.last_received = now;
        self.decoder.push_bytes(data);
        if let Err(e) = self.drain_input(now) {
            self.close_with(CloseReason::Protocol(e));
        }
    }

    fn drain_input(&mut self, now: Instant) -> Result<(), PeerError> {
        if self.state == State::Handshaking {
            let Some(hs) = self
                .decoder
                .next_handshake()
                .map_err(PeerError::Malformed)?
            else {
                return Ok(());
            };
            hs.validate(self.info_hash, self.our_id)?;
            if self.direction == Direction::Incoming {
                self.send_handshake(now);
            }
            self.remote = Some(hs);
            self.state = State::Connected;
            self.events.push_back(PeerEvent::Connected {
                peer_id: hs.peer_id,
                reserved: hs.reserved,
            });
        }
        while self.state != State::Closed {
            let Some(frame) = self.decoder.next_frame().map_err(PeerError::Malformed)? else {
                break;
            };
            self.on_frame(now, frame)?;
        }
        Ok(())
    }

    fn on_frame(&mut self, now: Instant, frame: Frame) -> Result<(), PeerError> {
        let fast = self.fast();
        if self.metadata_only {
            match frame {
                Frame::HaveAll | Frame::HaveNone if !fast => {
                    return Err(PeerError::UnexpectedMessage)
                }
                Frame::Bitfield(_) | Frame::HaveAll | Frame::HaveNone
                    if self.early.first.is_some() =>
                {
                    // A later one (aria2 sends fresh bitfields): the first
                    // and the haves already say enough.
                    return Ok(());
                }
                Frame::Bitfield(bytes) => {
                    self.early.first = Some(EarlyFirst::Bitfield(bytes));
                    return Ok(());
                }
                Frame::HaveAll => {
                    self.early.first = Some(EarlyFirst::All);
                    return Ok(());
                }
                Frame::HaveNone => {
                    self.early.first = Some(EarlyFirst::Nothing);
                    return Ok(());
                }
                Frame::Have(p) => {
                    if self.early.haves.len() < MAX_EARLY_HAVES {
                        self.early.haves.push(p.0);
                    }
                    return Ok(());
                }
                Frame::Suggest(_) | Frame::AllowedFast(_) => return Ok(()),
                Frame::Request(block) => {
                    if fast {
                        self.send(now, &Frame::Reject(block));
                    }
                    return Ok(());
                }
                Frame::Piece { .. } => return Err(PeerError::UnrequestedPiece),
                _ => {}
            }
        }
        let check_piece = |p: PieceIndex| {
            if p.0 < self.piece_count {
                Ok(p)
            } else {
                Err(PeerError::RequestOutOfRange)
            }
        };
        match frame {
            Frame::KeepAlive => {}
            Frame::Choke => {
                if !self.peer_choking {
                    self.peer_choking = true;
                    self.events.push_back(PeerEvent::Choked);
                    // BEP 6: with the fast extension a choke no longer
                    // discards requests; the peer rejects them one by one.
                    if !fast {
                        let dropped: Vec<BlockRef> = self.outstanding.drain(..).collect();
                        if !dropped.is_empty() {
                            for b in &dropped {
                                self.remember_cancelled(*b);
                            }
                            self.events.push_back(PeerEvent::RequestsDropped(dropped));
                        }
                    }
                }
            }
            Frame::Unchoke => {
                if self.peer_choking {
                    self.peer_choking = false;
                    self.last_progress = now;
                    self.events.push_back(PeerEvent::Unchoked);
                }
            }
            Frame::Interested => {
                if !self.peer_interested {
                    self.peer_interested = true;
                    self.events.push_back(PeerEvent::Interested);
                }
            }
            Frame::NotInterested => {
                if self.peer_interested {
                    self.peer_interested = false;
                    self.events.push_back(PeerEvent::NotInterested);
                }
            }
            Frame::Have(p) => {
                let p = check_piece(p)?;
                let new = match &mut self.remote_pieces {
                    RemotePieces::All => false,
                    RemotePieces::Some(b) => b.set(p),
                    none @ RemotePieces::None => {
                        let mut b = Bitfield::new(self.piece_count);
                        b.set(p);
                        *none = RemotePieces::Some(b);
                        true
                    }
                };
                if let RemotePieces::Some(b) = &self.remote_pieces {
                    if b.is_full() {
                        self.remote_pieces = RemotePieces::All;
                    }
                }
                if new {
                    self.events.push_back(PeerEvent::Have(p));
                }
            }
            Frame::Bitfield(bytes) => {
                let b = Bitfield::from_bytes(&bytes, self.piece_count).ok_or(
                    PeerError::Malformed(crate::DecodeError::new(
                        crate::DecodeErrorKind::InvalidLength,
                        0,
                        "bitfield",
                    )),
                )?;
                if self.remote_pieces != RemotePieces::None {
                    // BEP 3 allows a bitfield only first, but some clients
                    // (aria2) send a fresh one later instead of `have`s:
                    // take it as a `have` for every new piece.
                    for p in b.iter() {
                        self.on_frame(now, Frame::Have(p))?;
                    }
                    return Ok(());
                }
                self.remote_pieces = if b.is_full() {
                    RemotePieces::All
                } else {
                    RemotePieces::Some(b)
                };
                self.events.push_back(PeerEvent::PiecesKnown);
            }
            Frame::HaveAll | Frame::HaveNone if !fast => return Err(PeerError::UnexpectedMessage),
            Frame::HaveAll => {
                self.remote_pieces = RemotePieces::All;
                self.events.push_back(PeerEvent::PiecesKnown);
            }
            Frame::HaveNone => {
                self.remote_pieces = RemotePieces::Some(Bitfield::new(self.piece_count));
                self.events.push_back(PeerEvent::PiecesKnown);
            }
            Frame::Request(block) => self.on_request(block)?,
            Frame::Cancel(block) => {
                self.incoming.retain(|b| *b != block);
            }
            Frame::Piece {
                piece,
                offset,
                data,
            } => {
                let block = BlockRef {
                    piece,
                    offset,
                    length: data.len() as u32,
                };
                if let Some(pos) = self.outstanding.iter().position(|b| *b == block) {
                    self.outstanding.remove(pos);
                } else if let Some(pos) = self.cancelled.iter().position(|b| *b == block) {
                    self.cancelled.remove(pos);
                } else {
                    self.unrequested += 1;
                    if self.unrequested > self.config.unrequested_tolerance {
                        return Err(PeerError::UnrequestedPiece);
                    }
                    return Ok(());
                }
                self.last_progress = now;
                self.last_payload = now;
                self.snubbed = false;
                self.down.add(now, u64::from(block.length));
                self.events.push_back(PeerEvent::Block { block, data });
            }
            Frame::Port(port) => self.events.push_back(PeerEvent::DhtPort(port)),
            Frame::Suggest(_) | Frame::AllowedFast(_) | Frame::Reject(_) if !fast => {
                return Err(PeerError::UnexpectedMessage)
            }
            Frame::Suggest(p) => self.events.push_back(PeerEvent::Suggest(check_piece(p)?)),
            Frame::AllowedFast(p) => {
                let p = check_piece(p)?;
                if !self.allowed_in.contains(&p) && self.allowed_in.len() < 64 {
                    self.allowed_in.push(p);
                    self.events.push_back(PeerEvent::AllowedFast(p));
                }
            }
            Frame::Reject(block) => {
                let pos = self
                    .outstanding
                    .iter()
                    .position(|b| *b == block)
                    .ok_or(PeerError::UnexpectedMessage)?;
                self.outstanding.remove(pos);
                self.events
                    .push_back(PeerEvent::RequestsDropped(vec![block]));
            }
            Frame::Extended { id: 0, payload } => {
                let ext = ExtensionHandshake::decode(&payload).map_err(PeerError::Malformed)?;
                self.remote_ext = Some(ext.clone());
                self.events
                    .push_back(PeerEvent::ExtensionHandshake(Box::new(ext)));
            }
            Frame::Extended { id, payload } => {
                self.events.push_back(PeerEvent::Extended { id, payload });
            }
            Frame::Unknown { .. } => {}
        }
        Ok(())
    }

    fn on_request(&mut self, block: BlockRef) -> Result<(), PeerError> {
        if block.length == 0 || block.length > BLOCK_SIZE || block.piece.0 >= self.piece_count {
            return Err(PeerError::RequestOutOfRange);
        }
        let allowed = self.allowed_out.contains(&block.piece);
        if self.am_choking && !allowed {
            // BEP 6: reject explicitly; without it, requests while choked
            // are silently dropped.
            if self.fast() {
                self.send_now(&Frame::Reject(block));
            }
            return Ok(());
        }
        if self.incoming.len() >= self.config.max_incoming_requests {
            if self.fast() {
                self.send_now(&Frame::Reject(block));
            }
            return Ok(());
        }
        if !self.incoming.contains(&block) {
            self.incoming.push_back(block);
            self.events.push_back(PeerEvent::Request(block));
        }
        Ok(())
    }

    // --- commands ---------------------------------------------------------

    /// Sends the first messages after the handshake: our pieces (bitfield,
    /// or have all / have none with BEP 6), the extension handshake when
    /// both speak BEP 10, and our allowed-fast set.
    pub fn start(&mut self, now: Instant, ours: &Bitfield, metadata_size: Option<u64>) {
        if self.state != State::Connected {
            return;
        }
        self.state = State::Active;
        let fast = self.fast();
        if self.metadata_only {
            if fast {
                self.send(now, &Frame::HaveNone);
            }
        } else if fast && ours.is_full() {
            self.send(now, &Frame::HaveAll);
        } else if fast && ours.count() == 0 {
            self.send(now, &Frame::HaveNone);
        } else if ours.count() > 0 {
            self.send(
                now,
                &Frame::Bitfield(Bytes::copy_from_slice(ours.as_bytes())),
            );
        }
        let both_ext = self
            .remote
            .is_some_and(|h| h.reserved.supports(Reserved::EXTENSION))
            && self.our_reserved.supports(Reserved::EXTENSION);
        if both_ext {
            let ext = ExtensionHandshake {
                messages: self.config.extensions.clone(),
                port: self.config.listen_port,
                client: Some(self.config.client_name.clone()),
                your_ip: self.remote_ip,
                reqq: Some(self.config.max_incoming_requests as u32),
                metadata_size,
            };
            let mut payload = Vec::new();
            ext.encode(&mut payload);
            self.send(
                now,
                &Frame::Extended {
                    id: 0,
                    payload: payload.into(),
                },
            );
        }
        if fast && self.config.allowed_fast > 0 && !self.metadata_only {
            if let Some(IpAddr::V4(ip)) = self.remote_ip {
                let set = allowed_fast_set(
                    ip,
                    &self.info_hash,
                    self.piece_count,
                    self.config.allowed_fast,
                );
                for p in set {
                    // Only pieces we can serve are useful to announce.
                    if ours.get(p) {
                        self.send(now, &Frame::AllowedFast(p));
                    }
                    self.allowed_out.push(p);
                }
            }
        }
    }

    /// Announces a piece we now have.
    pub fn have(&mut self, now: Instant, piece: PieceIndex) {
        if self.state == State::Active {
            self.send(now, &Frame::Have(piece));
        }
    }

    /// Sets whether we are interested in the peer.
    pub fn set_interested(&mut self, now: Instant, interested: bool) {
        if self.state == State::Active && self.am_interested != interested {
            self.am_interested = interested;
            if interested {
                self.last_progress = now;
            }
            let f = if interested {
                Frame::Interested
            } else {
                Frame::NotInterested
            };
            self.send(now, &f);
        }
    }

    /// Sends requests for `blocks` (the picker chose them).
    pub fn request(&mut self, now: Instant, blocks: &[BlockRef]) {
        if self.state != State::Active {
            return;
        }
        if self.outstanding.is_empty() {
            self.last_progress = now;
        }
        for b in blocks {
            self.outstanding.push_back(*b);
            self.send(now, &Frame::Request(*b));
        }
    }

    /// Cancels a request (endgame: another peer delivered the block).
    pub fn cancel(&mut self, now: Instant, block: BlockRef) {
        if let Some(pos) = self.outstanding.iter().position(|b| *b == block) {
            self.outstanding.remove(pos);
            self.remember_cancelled(block);
            self.send(now, &Frame::Cancel(block));
        }
    }

    fn remember_cancelled(&mut self, block: BlockRef) {
        const REMEMBERED: usize = 512;
        if self.cancelled.len() == REMEMBERED {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(block);
    }

    /// Chokes the peer: its queued requests are dropped (BEP 3), or
    /// rejected one by one with BEP 6, except allowed-fast ones.
    pub fn choke(&mut self, now: Instant) {
        if self.state != State::Active || self.am_choking {
            return;
        }
        self.am_choking = true;
        self.send(now, &Frame::Choke);
        let fast = self.fast();
        let allowed = self.allowed_out.clone();
        let mut keep = VecDeque::new();
        for b in std::mem::take(&mut self.incoming) {
            if allowed.contains(&b.piece) {
                keep.push_back(b);
            } else if fast {
                self.send(now, &Frame::Reject(b));
            }
        }
        self.incoming = keep;
    }

    /// Unchokes the peer: it may request.
    pub fn unchoke(&mut self, now: Instant) {
        if self.state == State::Active && self.am_choking {
            self.am_choking = false;
            self.send(now, &Frame::Unchoke);
        }
    }

    /// Sends a block the peer requested (read from disk). Dropped if the
    /// request was cancelled or discarded meanwhile.
    pub fn send_block(&mut self, now: Instant, block: BlockRef, data: &[u8]) {
        let Some(pos) = self.incoming.iter().position(|b| *b == block) else {
            return;
        };
        if data.len() != block.length as usize {
            return;
        }
        self.incoming.remove(pos);
        self.out.extend_from_slice(&Frame::piece_header(
            block.piece,
            block.offset,
            block.length,
        ));
        self.out.extend_from_slice(data);
        self.last_sent = now;
        self.last_payload = now;
        self.up.add(now, u64::from(block.length));
    }

    /// Refuses a request (we cannot serve it after all).
    pub fn reject(&mut self, now: Instant, block: BlockRef) {
        if let Some(pos) = self.incoming.iter().position(|b| *b == block) {
            self.incoming.remove(pos);
            if self.fast() {
                self.send(now, &Frame::Reject(block));
            }
        }
    }

    /// Sends a BEP 10 extension message under the peer's id for it.
    pub fn send_extended(&mut self, now: Instant, id: u8, payload: Bytes) {
        if self.state == State::Active {
            self.send(now, &Frame::Extended { id, payload });
        }
    }

    /// Closes the session from our side (or because the peer misbehaved in
    /// a way only the torrent can see).
    pub fn close(&mut self, reason: CloseReason) {
        self.close_with(reason);
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        let dropped: Vec<BlockRef> = self.outstanding.drain(..).collect();
        if !dropped.is_empty() {
            self.events.push_back(PeerEvent::RequestsDropped(dropped));
        }
        self.incoming.clear();
        self.events.push_back(PeerEvent::Closed(reason));
    }

    fn send_handshake(&mut self, now: Instant) {
        Handshake {
            reserved: self.our_reserved,
            info_hash: self.info_hash,
            peer_id: self.our_id,
        }
        .encode(&mut self.out);
        self.last_sent = now;
    }

    fn send(&mut self, now: Instant, frame: &Frame) {
        frame.encode(&mut self.out);
        self.last_sent = now;
    }

    /// Sends without touching the keep-alive clock (used where `now` is not
    /// at hand; every input path updates it soon after).
    fn send_now(&mut self, frame: &Frame) {
        frame.encode(&mut self.out);
    }
}

#[cfg(test)]
mod tests;
