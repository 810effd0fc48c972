//! Transports under the peer sessions: TCP, carried out by the driver
//! ([`Output::Tcp`]), and uTP (BEP 29), run here on the UDP socket the
//! DHT and UDP trackers share. Above this module a connection is a byte
//! stream with a [`ConnId`]; MSE, routing and the torrents never learn
//! which transport carries it (BEP 29: uTP gives the peer wire protocol
//! the ordered stream TCP would).
//!
//! **Which transport an outgoing connection tries** ([`Transports`]):
//! with both on, uTP where the peer is known to speak it (peer exchange's
//! flag 0x04, or an earlier connection that only worked over uTP), TCP
//! otherwise. A connection that cannot be opened, or that the peer closes
//! before saying a byte (libtorrent with TCP off accepts TCP connections
//! and closes them at once), is opened once more over the other transport
//! before its torrent hears anything: what was sent on the first one is
//! sent again, so the layers above never learn of the switch. The
//! transport that worked is remembered for the address. TCP first for
//! unknown peers keeps the fast path
//! where both work (loopback and LAN transfers run several times faster
//! over TCP than over any uTP, libtorrent's included), while the
//! fallback reaches uTP-only peers; libtorrent tries uTP first for
//! everyone, which costs a three-second wait for every TCP-only peer.
//!
//! **uTP connections** get their ids from the same source as TCP ones,
//! and incoming ones pass the same admission (per-IP and handshake
//! limits). What a session writes goes into the connection's send buffer;
//! what does not fit waits here, bounded ([`MAX_UNSENT`]: a peer that
//! does not read is dropped, as the driver drops a TCP peer whose send
//! queue is full). Bytes are read as their datagram arrives, and a peer's
//! FIN is the end of the stream, as TCP's would be.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::{Engine, Output, TcpAction, Transports};
use crate::handles::ConnId;
use crate::rng::Seed;
use crate::time::Instant;
use crate::utp::{self, SocketEvent, SocketLimits, UtpConnId, UtpSocket};

/// A peer connection's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP, carried out by the driver.
    Tcp,
    /// uTP (BEP 29) on the engine's UDP socket.
    Utp,
}

/// Bytes a uTP connection may hold beyond its send buffer before the
/// peer is taken for one that does not read (a full request queue of
/// 16 KiB blocks fits several times over).
const MAX_UNSENT: usize = 16 << 20;

/// Addresses whose working transport is remembered (oldest forgotten).
const MAX_REMEMBERED: usize = 4096;

/// How long a closed uTP connection may take to deliver what was written
/// before it is reset.
const CLOSE_DEADLINE: Duration = Duration::from_secs(30);

/// Bytes kept of what an outgoing connection sent before the peer's first
/// byte, to send again over the other transport (a handshake, an
/// extension handshake and a bitfield take a few KiB).
const MAX_REPLAY: usize = 256 << 10;

/// The uTP socket and what ties its connections to the engine's.
#[derive(Debug)]
pub(super) struct TransportState {
    transports: Transports,
    socket: UtpSocket,
    links: BTreeMap<ConnId, UtpLink>,
    by_utp: BTreeMap<UtpConnId, ConnId>,
    /// Outgoing connections not open yet.
    dialing: BTreeMap<ConnId, Dial>,
    /// The transport that last opened (or last failed to open) for an
    /// address, so a reconnect tries the right one first.
    pub(super) learned: BTreeMap<SocketAddr, Transport>,
    learned_order: VecDeque<SocketAddr>,
    /// Links to drop once the current input is handled (they stopped
    /// reading).
    dropped: BTreeSet<ConnId>,
    /// Incoming uTP connections whose initiator has not confirmed yet
    /// (a SYN proves nothing about its source address, so these take no
    /// place among the engine's pending handshakes; the socket caps them).
    accepting: BTreeMap<UtpConnId, SocketAddr>,
    /// Bytes each link's send buffer took since the torrents were last
    /// told ([`Torrent::handle_sent`](crate::torrent::Torrent::handle_sent)),
    /// as a driver tells of a TCP socket's writes.
    taken: BTreeMap<ConnId, usize>,
}

#[derive(Debug)]
struct UtpLink {
    utp: UtpConnId,
    /// Written by the session, not yet taken by the send buffer.
    unsent: VecDeque<Vec<u8>>,
    unsent_bytes: usize,
    /// Close once `unsent` is empty.
    close_when_sent: bool,
    /// When a close still waiting on the peer gives up and resets: a peer
    /// that acknowledges but never opens its window would hold the link
    /// (and a socket slot) for ever.
    close_by: Option<Instant>,
    /// The engine heard the stream end (the peer's FIN, or the close).
    ended: bool,
}

/// An outgoing connection until the peer's first byte.
#[derive(Debug)]
struct Dial {
    addr: SocketAddr,
    via: Transport,
    /// The other transport may still be tried.
    fallback: bool,
    /// The transport is open.
    open: bool,
    /// The layers above heard that it opened (a second transport opening
    /// is not news to them).
    told: bool,
    /// What they sent since, to send again on the other transport
    /// (`None`: more than [`MAX_REPLAY`]).
    sent: Option<Vec<u8>>,
}

impl Transport {
    fn other(self) -> Transport {
        match self {
            Transport::Tcp => Transport::Utp,
            Transport::Utp => Transport::Tcp,
        }
    }
}

impl TransportState {
    pub(super) fn new(transports: Transports, seed: Seed) -> TransportState {
        let mut config = utp::Config::default();
        if transports.tcp {
            // With TCP to fall back on, a SYN unanswered twice (1 s + 2 s)
            // is enough: libtorrent's `utp_connect_timeout` is 3 s too.
            config.syn_retries = 1;
        }
        let mut socket = UtpSocket::new(config, SocketLimits::default(), seed);
        socket.set_accepting(transports.utp);
        TransportState {
            transports,
            socket,
            links: BTreeMap::new(),
            by_utp: BTreeMap::new(),
            dialing: BTreeMap::new(),
            learned: BTreeMap::new(),
            learned_order: VecDeque::new(),
            dropped: BTreeSet::new(),
            accepting: BTreeMap::new(),
            taken: BTreeMap::new(),
        }
    }

    /// Connections carried over uTP.
    #[cfg(test)]
    pub(super) fn utp_links(&self) -> usize {
        self.links.len()
    }

    /// When the uTP connections' timers (or a close's deadline) next fire.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let closes = self.links.values().filter_map(|l| l.close_by).min();
        match (self.socket.poll_timeout(), closes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Closes `conn`'s link once what waits is sent, resetting it if that
    /// takes longer than [`CLOSE_DEADLINE`].
    fn close_link(&mut self, now: Instant, conn: ConnId) {
        if let Some(link) = self.links.get_mut(&conn) {
            link.close_when_sent = true;
            link.close_by.get_or_insert(now + CLOSE_DEADLINE);
        }
        self.flush(conn);
    }

    pub(super) fn learn(&mut self, addr: SocketAddr, works: Transport) {
        if self.learned.insert(addr, works).is_none() {
            self.learned_order.push_back(addr);
            if self.learned_order.len() > MAX_REMEMBERED {
                if let Some(old) = self.learned_order.pop_front() {
                    self.learned.remove(&old);
                }
            }
        }
    }

    /// The transport to try first for `addr`.
    fn first_choice(&self, addr: SocketAddr, advertises_utp: bool) -> Transport {
        match (self.transports.tcp, self.transports.utp) {
            (true, false) | (false, false) => Transport::Tcp,
            (false, true) => Transport::Utp,
            (true, true) => match self.learned.get(&addr) {
                Some(&t) => t,
                None if advertises_utp => Transport::Utp,
                None => Transport::Tcp,
            },
        }
    }

    /// Whether a uTP connection from `addr` is coming in: accepted and
    /// not confirmed yet, or confirmed and not routed to a torrent yet.
    fn incoming_from(&self, addr: SocketAddr) -> bool {
        self.accepting.values().any(|a| *a == addr)
            || self.links.iter().any(|(conn, link)| {
                !self.dialing.contains_key(conn) && self.socket.addr_of(link.utp) == Some(addr)
            })
    }

    fn enabled(&self, t: Transport) -> bool {
        match t {
            Transport::Tcp => self.transports.tcp,
            Transport::Utp => self.transports.utp,
        }
    }

    fn link(&mut self, conn: ConnId, utp: UtpConnId) {
        self.by_utp.insert(utp, conn);
        self.links.insert(
            conn,
            UtpLink {
                utp,
                unsent: VecDeque::new(),
                unsent_bytes: 0,
                close_when_sent: false,
                close_by: None,
                ended: false,
            },
        );
    }

    fn unlink(&mut self, utp: UtpConnId) -> Option<ConnId> {
        let conn = self.by_utp.remove(&utp)?;
        self.links.remove(&conn);
        Some(conn)
    }

    /// Moves what waits into the send buffer; closes once all of it is
    /// in, if asked.
    fn flush(&mut self, conn: ConnId) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let Some(c) = self.socket.connection(link.utp) else {
            return;
        };
        while let Some(front) = link.unsent.front_mut() {
            let n = c.write(front);
            link.unsent_bytes -= n;
            if n > 0 {
                *self.taken.entry(conn).or_default() += n;
            }
            if n < front.len() {
                front.drain(..n);
                return;
            }
            link.unsent.pop_front();
        }
        if link.close_when_sent {
            c.close();
        }
    }
}

impl Engine {
    /// Whether a TCP event for `conn` is stale: the connection moved to
    /// uTP (a re-dial), so what its TCP socket still reports (a second
    /// close, bytes queued behind the close) is about a socket it no
    /// longer uses.
    pub(super) fn tcp_event_is_stale(&self, conn: ConnId) -> bool {
        self.transport.links.contains_key(&conn)
    }

    /// The transport carrying (or opening) `conn`; `None` for a
    /// connection the engine does not know.
    pub fn transport_of(&self, conn: ConnId) -> Option<Transport> {
        let t = &self.transport;
        if t.links.contains_key(&conn) {
            return Some(Transport::Utp);
        }
        if let Some(d) = t.dialing.get(&conn) {
            return Some(d.via);
        }
        (self.conns.contains_key(&conn) || self.handshakes.contains(conn)).then_some(Transport::Tcp)
    }

    /// Opens `conn` to `addr` for a torrent, over the transport
    /// [`TransportState::first_choice`] picks; a holepunch dial (BEP 55)
    /// over uTP alone, with no fallback: its point is the datagrams that
    /// open our NAT while the peer dials us.
    pub(super) fn stream_connect(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) {
        let torrent = self.torrent_of(conn).and_then(|id| self.torrents.get(&id));
        let advertised = torrent.is_some_and(|t| t.advertises_utp(&addr));
        let punch = torrent.is_some_and(|t| t.is_holepunch_dial(conn));
        let t = &mut self.transport;
        if punch && t.incoming_from(addr) {
            // The peer's holepunch SYN got here before ours left: its
            // connection carries the stream, and ours would be a second
            // one (one of the two would be refused, and each side could
            // refuse the other's).
            self.stream_failed(now, conn);
            return;
        }
        let (via, fallback) = if punch && t.enabled(Transport::Utp) {
            (Transport::Utp, false)
        } else {
            let via = t.first_choice(addr, advertised);
            (via, t.enabled(via.other()))
        };
        t.dialing.insert(
            conn,
            Dial {
                addr,
                via,
                fallback,
                open: false,
                told: false,
                sent: Some(Vec::new()),
            },
        );
        self.dial(now, conn, addr, via);
    }

    fn dial(&mut self, now: Instant, conn: ConnId, addr: SocketAddr, via: Transport) {
        match via {
            Transport::Tcp => self.out.push_back(Output::Tcp {
                conn,
                action: TcpAction::Connect(addr),
            }),
            Transport::Utp => match self.transport.socket.connect(now, addr) {
                Ok(utp) => {
                    self.transport.link(conn, utp);
                    self.pump_utp(now);
                }
                Err(_) => {
                    // The socket is full: as if this attempt failed.
                    self.dial_failed(now, conn);
                }
            },
        }
    }

    /// An outgoing attempt failed before it opened: the other transport
    /// is tried if it may be, else the connection failed (or, for a
    /// second attempt, closed: the layers above saw it open).
    pub(super) fn dial_failed(&mut self, now: Instant, conn: ConnId) {
        let t = &mut self.transport;
        let Some(dial) = t.dialing.get_mut(&conn) else {
            self.stream_failed(now, conn);
            return;
        };
        if !dial.fallback {
            let told = dial.told;
            t.dialing.remove(&conn);
            if told {
                self.closed_above(now, conn);
            } else {
                self.stream_failed(now, conn);
            }
            return;
        }
        dial.fallback = false;
        dial.via = dial.via.other();
        let (addr, via) = (dial.addr, dial.via);
        self.dial(now, conn, addr, via);
    }

    /// An outgoing transport opened; whether the layers above are to hear
    /// of it (not for a second transport: what they sent on the first one
    /// goes out again instead).
    pub(super) fn transport_opened(&mut self, conn: ConnId) -> bool {
        let Some(d) = self.transport.dialing.get_mut(&conn) else {
            return true;
        };
        d.open = true;
        if !d.told {
            d.told = true;
            return true;
        }
        if let Some(bytes) = d.sent.clone() {
            self.transmit(conn, bytes);
        }
        false
    }

    /// The peer's first byte: the transport works, and is remembered for
    /// the address.
    pub(super) fn transport_proven(&mut self, conn: ConnId) {
        let Some(d) = self.transport.dialing.remove(&conn) else {
            return;
        };
        self.transport.learn(d.addr, d.via);
        // The torrent heard of the first transport; this one is final.
        if let Some(t) = self
            .torrent_of(conn)
            .and_then(|id| self.torrents.get_mut(&id))
        {
            t.set_utp(conn, d.via == Transport::Utp);
        }
    }

    /// An outgoing connection closed before the peer's first byte: opened
    /// again over the other transport if it may be (returns true: the
    /// layers above hear nothing). Otherwise the other transport is
    /// remembered for the address, for the next attempt.
    pub(super) fn redial(&mut self, now: Instant, conn: ConnId) -> bool {
        let t = &mut self.transport;
        let Some(d) = t.dialing.get_mut(&conn).filter(|d| d.open) else {
            return false;
        };
        let (addr, other) = (d.addr, d.via.other());
        if !d.fallback || d.sent.is_none() {
            t.dialing.remove(&conn);
            if t.enabled(other) {
                t.learn(addr, other);
            }
            return false;
        }
        d.fallback = false;
        d.via = other;
        d.open = false;
        if let Some(link) = t.links.remove(&conn) {
            t.by_utp.remove(&link.utp);
            if let Some(c) = t.socket.connection(link.utp) {
                c.abort();
            }
        }
        self.dial(now, conn, addr, other);
        true
    }

    /// An incoming uTP connection its initiator confirmed, admitted like a
    /// TCP one.
    fn utp_incoming(&mut self, now: Instant, utp: UtpConnId, addr: SocketAddr) {
        match self.admit_incoming(now, addr) {
            Some(conn) => {
                self.transport.link(conn, utp);
                self.utp_read(now, conn);
            }
            None => {
                if let Some(c) = self.transport.socket.connection(utp) {
                    c.abort();
                }
            }
        }
    }

    /// Bytes for the peer on `conn`.
    pub(super) fn stream_send(&mut self, conn: ConnId, data: Vec<u8>) {
        if let Some(d) = self.transport.dialing.get_mut(&conn) {
            match &mut d.sent {
                // A second transport opening (a re-dial needs `sent`): all
                // of it goes out once it is open, whatever its size.
                Some(sent) if !d.open => {
                    sent.extend_from_slice(&data);
                    return;
                }
                Some(sent) if sent.len() + data.len() <= MAX_REPLAY => {
                    sent.extend_from_slice(&data);
                }
                _ => d.sent = None,
            }
        }
        self.transmit(conn, data);
    }

    /// Bytes onto `conn`'s transport.
    fn transmit(&mut self, conn: ConnId, data: Vec<u8>) {
        let Some(link) = self.transport.links.get_mut(&conn) else {
            self.out.push_back(Output::Tcp {
                conn,
                action: TcpAction::Send(data),
            });
            return;
        };
        if link.ended || data.is_empty() {
            return;
        }
        link.unsent_bytes += data.len();
        link.unsent.push_back(data);
        if link.unsent_bytes > MAX_UNSENT {
            self.transport.dropped.insert(conn);
            return;
        }
        self.transport.flush(conn);
    }

    /// Closes `conn` (what was sent before still goes out).
    pub(super) fn stream_close(&mut self, conn: ConnId) {
        self.transport.dialing.remove(&conn);
        let Some(link) = self.transport.links.get_mut(&conn) else {
            self.out.push_back(Output::Tcp {
                conn,
                action: TcpAction::Close,
            });
            return;
        };
        link.ended = true;
        let now = self.now;
        self.transport.close_link(now, conn);
    }

    /// A datagram [`utp::is_utp_datagram`] claimed.
    pub(super) fn handle_utp(&mut self, now: Instant, from: SocketAddr, payload: &[u8]) {
        let Some(utp) = self.transport.socket.handle_datagram(now, from, payload) else {
            return;
        };
        if let Some(&conn) = self.transport.by_utp.get(&utp) {
            self.transport.flush(conn);
            self.utp_read(now, conn);
        }
        self.pump_utp(now);
    }

    /// The uTP timers.
    pub(super) fn utp_timeout(&mut self, now: Instant) {
        let t = &mut self.transport;
        let mut late = false;
        for link in t.links.values_mut() {
            if link.close_by.is_some_and(|at| at <= now) {
                link.close_by = None;
                link.unsent.clear();
                link.unsent_bytes = 0;
                if let Some(c) = t.socket.connection(link.utp) {
                    c.abort();
                }
                late = true;
            }
        }
        let due = t.socket.poll_timeout().is_some_and(|at| at <= now);
        if due {
            t.socket.handle_timeout(now);
        }
        if due || late {
            self.pump_utp(now);
        }
    }

    /// Hands what `conn` received to the layers above; the peer's FIN
    /// ends the stream.
    fn utp_read(&mut self, now: Instant, conn: ConnId) {
        let Some(link) = self.transport.links.get_mut(&conn) else {
            return;
        };
        let Some(c) = self.transport.socket.connection(link.utp) else {
            return;
        };
        let n = c.readable();
        let data = (n > 0 && !link.ended).then(|| {
            let mut buf = vec![0; n];
            let read = c.read(&mut buf);
            buf.truncate(read);
            Bytes::from(buf)
        });
        let eof = c.at_eof() && !link.ended;
        if eof {
            link.ended = true;
        }
        if let Some(data) = data {
            self.stream_data(now, conn, data);
        }
        if eof {
            self.transport.close_link(now, conn);
            self.stream_closed(now, conn);
        }
    }

    /// Sends what the uTP connections have for the wire and handles what
    /// they report. Returns whether a torrent heard anything (its outputs
    /// then need draining).
    pub(super) fn pump_utp(&mut self, now: Instant) -> bool {
        let mut heard = false;
        loop {
            while let Some((to, t)) = self.transport.socket.poll_transmit(now) {
                let payload = t.payload;
                self.out.push_back(match t.probe {
                    true => Output::UdpProbe { to, payload },
                    false => Output::Udp { to, payload },
                });
            }
            let dropped = std::mem::take(&mut self.transport.dropped);
            let taken = std::mem::take(&mut self.transport.taken);
            let mut events = Vec::new();
            while let Some(e) = self.transport.socket.poll_event() {
                events.push(e);
            }
            if events.is_empty() && dropped.is_empty() && taken.is_empty() {
                return heard;
            }
            heard = true;
            for (conn, bytes) in taken {
                self.stream_sent(now, conn, bytes);
            }
            for conn in dropped {
                if let Some(link) = self.transport.links.get_mut(&conn) {
                    let first = !link.ended;
                    link.ended = true;
                    link.unsent.clear();
                    link.unsent_bytes = 0;
                    if let Some(c) = self.transport.socket.connection(link.utp) {
                        c.abort();
                    }
                    if first {
                        self.stream_closed(now, conn);
                    }
                }
            }
            for e in events {
                match e {
                    SocketEvent::Incoming(utp, addr) => {
                        self.transport.accepting.insert(utp, addr);
                    }
                    SocketEvent::Connected(utp) if self.transport.accepting.contains_key(&utp) => {
                        if let Some(addr) = self.transport.accepting.remove(&utp) {
                            self.utp_incoming(now, utp, addr);
                        }
                    }
                    SocketEvent::Connected(utp) => {
                        let conn = self.transport.by_utp.get(&utp).copied();
                        let dialled =
                            |c: &ConnId| self.transport.dialing.get(c).is_some_and(|d| !d.open);
                        if let Some(conn) = conn.filter(dialled) {
                            self.stream_connected(now, conn);
                        }
                    }
                    SocketEvent::Closed(utp, reason) => self.utp_closed(now, utp, reason),
                }
            }
        }
    }

    fn utp_closed(&mut self, now: Instant, utp: UtpConnId, reason: utp::CloseReason) {
        self.transport.accepting.remove(&utp);
        let Some(link) = self
            .transport
            .by_utp
            .get(&utp)
            .and_then(|c| self.transport.links.get(c))
        else {
            return;
        };
        let ended = link.ended;
        let Some(conn) = self.transport.unlink(utp) else {
            return;
        };
        let dialling = self.transport.dialing.get(&conn).is_some_and(|d| !d.open);
        if dialling && reason == utp::CloseReason::Crossed {
            // The peer's simultaneous SYN won: its connection reaches us
            // as an incoming one, so this attempt ends without a fallback.
            self.transport.dialing.remove(&conn);
            self.stream_failed(now, conn);
        } else if dialling {
            self.dial_failed(now, conn);
        } else if !ended {
            self.stream_closed(now, conn);
        }
    }
}
