//! Many uTP connections behind one UDP socket.
//!
//! BEP 29 connections are told apart by the remote address and the
//! `connection_id` in each packet (our `conn_id_recv`). An incoming
//! `ST_SYN` for an unknown id is a new connection to accept; any other
//! packet for an unknown id is answered with `ST_RESET`, as libutp does,
//! so the peer stops retransmitting into the void.
//!
//! Anyone can send SYNs from forged addresses, so the table is capped
//! twice: [`SocketLimits::max_connections`] in all, and
//! [`SocketLimits::max_half_open`] accepted SYNs not yet confirmed by the
//! initiator's next packet (those expire after the handshake timeout). A
//! SYN beyond the half-open cap replaces the oldest unconfirmed one, which
//! is dropped without a packet: a flood of forged SYNs cannot keep a real
//! peer out, since a real initiator confirms within a round trip.
//! Resets are queued at most [`SocketLimits::max_pending_resets`] at a
//! time, so we never amplify a flood.
//!
//! Methods by role: [`connect`](UtpSocket::connect) and
//! [`connection`](UtpSocket::connection) (commands and the per-connection
//! stream), [`handle_datagram`](UtpSocket::handle_datagram) and
//! [`handle_timeout`](UtpSocket::handle_timeout) (inputs), then drain
//! [`poll_transmit`](UtpSocket::poll_transmit) and
//! [`poll_event`](UtpSocket::poll_event) to `None` and sleep until
//! [`poll_timeout`](UtpSocket::poll_timeout).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;

use super::connection::{Connection, State};
use super::packet::{Packet, PacketType};
use super::seq::SeqNr;
use super::{CloseReason, Config, Event, Transmit};
use crate::rng::{Rng, Seed};
use crate::time::Instant;

/// A connection's handle within its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtpConnId(u64);

impl fmt::Display for UtpConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "utp#{}", self.0)
    }
}

/// Caps that keep the socket's memory bounded whatever arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketLimits {
    /// Connections in all.
    pub max_connections: usize,
    /// Accepted handshakes the initiator has not confirmed yet.
    pub max_half_open: usize,
    /// `ST_RESET` replies waiting to be sent.
    pub max_pending_resets: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            max_connections: 500,
            max_half_open: 32,
            max_pending_resets: 64,
        }
    }
}

/// Why [`UtpSocket::connect`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// [`SocketLimits::max_connections`] reached.
    TooManyConnections,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::TooManyConnections => f.write_str("too many uTP connections"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// What the socket reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum SocketEvent {
    /// A peer opened a connection to us.
    Incoming(UtpConnId, SocketAddr),
    /// A connection's handshake completed.
    Connected(UtpConnId),
    /// A connection ended; its handle goes once time-wait is over.
    Closed(UtpConnId, CloseReason),
}

struct Entry {
    addr: SocketAddr,
    conn: Connection,
}

/// The demultiplexer: connections by (address, connection id).
pub struct UtpSocket {
    config: Config,
    limits: SocketLimits,
    rng: Rng,
    accepting: bool,
    conns: BTreeMap<UtpConnId, Entry>,
    by_key: BTreeMap<(SocketAddr, u16), UtpConnId>,
    next_id: u64,
    /// Where the next `poll_transmit` starts, so connections take turns.
    cursor: u64,
    resets: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<SocketEvent>,
    /// Datagrams that did not decode or matched nothing.
    ignored: u64,
}

impl UtpSocket {
    /// A socket whose connections use `config`, seeded with `seed`.
    pub fn new(config: Config, limits: SocketLimits, seed: Seed) -> UtpSocket {
        UtpSocket {
            config,
            limits,
            rng: Rng::new(seed),
            accepting: true,
            conns: BTreeMap::new(),
            by_key: BTreeMap::new(),
            next_id: 0,
            cursor: 0,
            resets: VecDeque::new(),
            events: VecDeque::new(),
            ignored: 0,
        }
    }

    /// Whether incoming SYNs are accepted (`--no-utp` turns this off).
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    /// Connections in the table.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Datagrams that did not decode or matched no connection.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    fn half_open(&self) -> usize {
        self.conns
            .values()
            .filter(|e| e.conn.state() == State::SynReceived)
            .count()
    }

    fn insert(&mut self, addr: SocketAddr, conn: Connection) -> UtpConnId {
        let id = UtpConnId(self.next_id);
        self.next_id += 1;
        self.by_key.insert((addr, conn.recv_id()), id);
        self.conns.insert(id, Entry { addr, conn });
        id
    }

    /// Opens a connection to `addr`.
    pub fn connect(&mut self, now: Instant, addr: SocketAddr) -> Result<UtpConnId, ConnectError> {
        if self.conns.len() >= self.limits.max_connections {
            return Err(ConnectError::TooManyConnections);
        }
        // The peer answers the SYN, and sends everything after it, on our
        // recv_id: it must be free for this address (the cap on
        // connections keeps this loop short).
        let recv_id = loop {
            let id = (self.rng.next_u32() & 0xffff) as u16;
            if !self.by_key.contains_key(&(addr, id)) {
                break id;
            }
        };
        let conn = Connection::connect(now, self.config.for_peer(&addr), recv_id);
        Ok(self.insert(addr, conn))
    }

    /// The remote address of connection `id`.
    pub fn addr_of(&self, id: UtpConnId) -> Option<SocketAddr> {
        self.conns.get(&id).map(|e| e.addr)
    }

    /// The connection behind `id`, to read, write or close.
    pub fn connection(&mut self, id: UtpConnId) -> Option<&mut Connection> {
        self.conns.get_mut(&id).map(|e| &mut e.conn)
    }

    /// A datagram from `from` that [`is_utp_datagram`](super::is_utp_datagram)
    /// claimed. Returns the connection it went to (a new one for an
    /// accepted SYN), whose bytes may now be readable or whose send
    /// buffer may have room.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Option<UtpConnId> {
        let Ok(packet) = Packet::decode(datagram) else {
            self.ignored += 1;
            return None;
        };
        let id = match packet.kind {
            PacketType::Syn => return self.handle_syn(now, from, &packet),
            // The sender of a RESET echoes whichever of our two ids it knows.
            PacketType::Reset => [
                packet.conn_id,
                packet.conn_id.wrapping_sub(1),
                packet.conn_id.wrapping_add(1),
            ]
            .into_iter()
            .find_map(|k| self.by_key.get(&(from, k)).copied()),
            _ => {
                let id = self.by_key.get(&(from, packet.conn_id)).copied();
                if id.is_none() {
                    self.queue_reset(now, from, &packet);
                }
                id
            }
        };
        match id.and_then(|id| self.conns.get_mut(&id)) {
            Some(e) => e.conn.handle_packet(now, &packet),
            None => self.ignored += 1,
        }
        id
    }

    fn handle_syn(
        &mut self,
        now: Instant,
        from: SocketAddr,
        syn: &Packet<'_>,
    ) -> Option<UtpConnId> {
        if let Some(&id) = self.by_key.get(&(from, syn.conn_id.wrapping_add(1))) {
            if let Some(e) = self.conns.get_mut(&id) {
                e.conn.handle_packet(now, syn);
            }
            return Some(id);
        }
        if !self.accepting || self.conns.len() >= self.limits.max_connections {
            self.ignored += 1;
            return None;
        }
        if !self.simultaneous_open(from, syn.conn_id) {
            self.ignored += 1;
            return None;
        }
        if self.half_open() >= self.limits.max_half_open {
            let oldest = self
                .conns
                .values_mut()
                .find(|e| e.conn.state() == State::SynReceived);
            match oldest {
                Some(e) => e.conn.forget(CloseReason::Aborted),
                None => {
                    self.ignored += 1;
                    return None;
                }
            }
        }
        let seq = SeqNr((self.rng.next_u32() & 0xffff) as u16);
        let conn = Connection::accept(now, self.config.for_peer(&from), syn, seq);
        let id = self.insert(from, conn);
        self.events.push_back(SocketEvent::Incoming(id, from));
        Some(id)
    }

    /// A SYN from `from` while our own SYN to it is unanswered: both
    /// sides dialled at once (BEP 55's holepunch makes them, on purpose).
    /// Accepting both would leave two connections, and a peer that keeps
    /// one per address drops both. So both sides keep the SYN with the
    /// lower connection id, a rule each side applies alike: if it is
    /// theirs, our attempt ends (quietly: [`CloseReason::Crossed`]) and
    /// theirs is accepted (returns true); if it is ours, theirs is
    /// ignored and ours goes on (false). With equal ids, both are kept.
    fn simultaneous_open(&mut self, from: SocketAddr, their_id: u16) -> bool {
        let ours = self
            .conns
            .values_mut()
            .find(|e| e.addr == from && e.conn.state() == State::SynSent);
        match ours {
            Some(e) if e.conn.recv_id() < their_id => false,
            Some(e) if e.conn.recv_id() > their_id => {
                e.conn.forget(CloseReason::Crossed);
                true
            }
            _ => true,
        }
    }

    fn queue_reset(&mut self, now: Instant, to: SocketAddr, packet: &Packet<'_>) {
        if self.resets.len() >= self.limits.max_pending_resets {
            return;
        }
        let reset = Packet {
            kind: PacketType::Reset,
            conn_id: packet.conn_id,
            timestamp_us: (now.as_nanos() / 1_000) as u32,
            timestamp_diff_us: 0,
            wnd_size: 0,
            seq_nr: SeqNr((self.rng.next_u32() & 0xffff) as u16),
            ack_nr: packet.seq_nr,
            selective_ack: None,
            payload: &[],
        };
        self.resets.push_back((to, reset.to_vec()));
    }

    /// Fires the connections' due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for e in self.conns.values_mut() {
            if e.conn.poll_timeout().is_some_and(|t| t <= now) {
                e.conn.handle_timeout(now);
            }
        }
    }

    /// The next datagram and where to send it. Connections take turns.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(SocketAddr, Transmit)> {
        if let Some((to, payload)) = self.resets.pop_front() {
            let probe = false;
            return Some((to, Transmit { payload, probe }));
        }
        let cursor = UtpConnId(self.cursor);
        let found = first_transmit(self.conns.range_mut(cursor..), now)
            .or_else(|| first_transmit(self.conns.range_mut(..cursor), now));
        if let Some((id, addr, datagram)) = found {
            self.cursor = id.0 + 1;
            return Some((addr, datagram));
        }
        self.reap();
        None
    }

    /// Collects the connections' events and drops closed connections
    /// once they have nothing left to send or wait for.
    fn reap(&mut self) {
        let mut closed = Vec::new();
        for (&id, e) in self.conns.iter_mut() {
            while let Some(event) = e.conn.poll_event() {
                self.events.push_back(match event {
                    Event::Connected => SocketEvent::Connected(id),
                    Event::Closed(reason) => SocketEvent::Closed(id, reason),
                });
            }
            // Closed ones stay while time-wait still runs.
            if matches!(e.conn.state(), State::Closed(_)) && e.conn.poll_timeout().is_none() {
                closed.push(id);
            }
        }
        for id in closed {
            if let Some(e) = self.conns.remove(&id) {
                self.by_key.remove(&(e.addr, e.conn.recv_id()));
            }
        }
    }

    /// The next event. Connection events are collected when
    /// `poll_transmit` runs dry, so drain that first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SocketEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](UtpSocket::handle_timeout) must next be
    /// called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|e| e.conn.poll_timeout())
            .min()
    }
}

/// The first of `entries` with a datagram to send.
fn first_transmit<'a>(
    mut entries: impl Iterator<Item = (&'a UtpConnId, &'a mut Entry)>,
    now: Instant,
) -> Option<(UtpConnId, SocketAddr, Transmit)> {
    entries.find_map(|(&id, e)| e.conn.poll_transmit(now).map(|d| (id, e.addr, d)))
}

impl fmt::Debug for UtpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UtpSocket")
            .field("connections", &self.conns.len())
            .field("pending_resets", &self.resets.len())
            .finish()
    }
}
