//! Holepunching (BEP 55 `ut_holepunch`): a torrent connected to two peers
//! that cannot reach each other helps them connect, and asks its peers for
//! the same help.
//!
//! **Relay.** A peer A sends `rendezvous(B)`. BEP 55: the relay answers
//! with an error when B is A itself (`NoSelf`), when it is not connected
//! to B (`NotConnected`; unknown addresses get it too: we keep no list to
//! tell the two apart) or when B did not advertise `ut_holepunch`
//! (`NoSupport`); otherwise it sends `connect(B)` to A and `connect(A)` to
//! B, each peer named by its listen address (the connection's IP with the
//! port of its extension handshake's `p`, else the connection's port).
//!
//! A relay must not become a packet cannon: every peer has a budget
//! ([`RELAY_BURST`] messages, one more every [`RELAY_REFILL`]) that pays
//! for each rendezvous or connect it sends us *and* for each connect we
//! send it on someone else's behalf. A message over budget is dropped
//! without an answer (an error is a packet too, and the requester learns
//! the same from silence: its attempt times out). So one peer makes us
//! send at most two packets per refill in the long run, and a target
//! hears at most one connect per refill however many peers ask for it.
//!
//! **Initiator.** An address learned from a peer R's PEX with the
//! holepunch flag (0x08), from an R that speaks `ut_holepunch` itself, is
//! remembered with R (bounded, oldest forgotten). When a dial to it fails
//! on both transports we send `rendezvous(it)` to R, at most once per
//! address per [`RENDEZVOUS_BACKOFF`] (a bounded table, oldest evicted).
//! A `connect(X)` from a peer — the answer, or the other half of someone
//! else's rendezvous — makes us dial X over uTP (BEP 55 punches through
//! with uTP: both sides' SYNs open their own NATs) unless we are
//! connected to it, do not want peers, or its IP has no room. Errors are
//! counted and reported ([`TorrentEvent::HolepunchFailed`]); the attempt
//! ends there. Both sides dial at once; the uTP socket keeps one of the
//! two crossing SYNs (`utp::UtpSocket`), so the losing side's dial fails
//! quietly and the connection arrives at it as an incoming one.
//!
//! Private torrents (BEP 27) have neither PEX nor holepunching: peers
//! come from their trackers only.

use super::*;
use crate::wire::{HolepunchErrorCode, HolepunchMessage, UT_HOLEPUNCH};

/// The id we receive `ut_holepunch` under (our handshake's `m`).
pub const OUR_UT_HOLEPUNCH: u8 = 3;
/// Messages one peer may cost us in a burst (rendezvous and connects it
/// sends, connects we send it)…
pub const RELAY_BURST: u64 = 5;
/// …and how often one more is allowed.
pub const RELAY_REFILL: Duration = Duration::from_secs(10);
/// How soon we ask a relay about the same address again.
pub const RENDEZVOUS_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Addresses remembered with the relay that told us about them, and
/// addresses we asked about (each table; the oldest entry goes first).
const MAX_REMEMBERED: usize = 256;

/// Units of a [`TokenBucket`] one message costs: the bucket refills one
/// unit a second.
const MESSAGE_COST: u64 = RELAY_REFILL.as_secs();

/// What holepunching did, for tests and statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HolepunchStats {
    /// Rendezvous we relayed (a connect to each side).
    pub relayed: u64,
    /// Rendezvous we answered with an error.
    pub refused: u64,
    /// Messages dropped because a peer was over its budget.
    pub over_budget: u64,
    /// Rendezvous we sent as initiator.
    pub rendezvous_sent: u64,
    /// Connect messages we received.
    pub connects_received: u64,
    /// Dials over uTP that a connect message started.
    pub dials: u64,
    /// Errors relays sent us.
    pub errors_received: u64,
}

/// A peer's holepunch budget, kept with the peer.
#[derive(Debug)]
pub(super) struct PeerBudget(TokenBucket);

impl PeerBudget {
    pub(super) fn new(now: Instant) -> PeerBudget {
        PeerBudget(TokenBucket::with_burst(1, RELAY_BURST * MESSAGE_COST, now))
    }

    fn spend(&mut self, now: Instant) -> bool {
        self.0.try_take(now, MESSAGE_COST)
    }
}

/// The torrent's holepunch state.
#[derive(Debug, Default)]
pub(super) struct Holepunch {
    /// Addresses a relay told us about (PEX flag 0x08), and which.
    via: BTreeMap<SocketAddr, ConnId>,
    via_order: VecDeque<SocketAddr>,
    /// When we last sent a rendezvous for each address.
    asked: BTreeMap<SocketAddr, Instant>,
    asked_order: VecDeque<SocketAddr>,
    /// Our dials for a connect message: over uTP only, and their failure
    /// asks no relay again.
    dials: BTreeSet<ConnId>,
    stats: HolepunchStats,
}

/// Inserts into a bounded table, forgetting the oldest key when full.
fn remember<V>(
    map: &mut BTreeMap<SocketAddr, V>,
    order: &mut VecDeque<SocketAddr>,
    key: SocketAddr,
    value: V,
) {
    if map.insert(key, value).is_none() {
        order.push_back(key);
        if order.len() > MAX_REMEMBERED {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

impl Peer {
    /// A peer we are dialling under `name` (or that dialled us).
    pub(super) fn dialling(now: Instant, addr: SocketAddr, name: InfoHash) -> Peer {
        Peer {
            addr,
            name,
            session: None,
            counted: Counted::Nothing,
            connected_event_sent: false,
            exchange: PeerExchange::default(),
            utp: false,
            punch_budget: PeerBudget::new(now),
            uploads: Default::default(),
        }
    }

    /// Where the peer accepts connections: the address we dialled, or
    /// its IP with the port of its extension handshake (BEP 10 `p`), else
    /// the connection's port.
    fn listen_addr(&self) -> SocketAddr {
        let Some(s) = self.session.as_ref() else {
            return self.addr;
        };
        match (s.direction(), s.remote_extensions().and_then(|e| e.port)) {
            (Direction::Incoming, Some(port)) => SocketAddr::new(self.addr.ip(), port),
            _ => self.addr,
        }
    }

    /// The peer's id for `ut_holepunch`, if it speaks it.
    fn holepunch_id(&self) -> Option<u8> {
        self.session
            .as_ref()
            .filter(|s| s.is_active())?
            .remote_extensions()?
            .id_of(UT_HOLEPUNCH)
    }
}

impl Torrent {
    /// Whether this torrent holepunches (BEP 55): configured on and not
    /// private.
    pub(super) fn holepunching(&self) -> bool {
        self.config.holepunch && !self.info.private
    }

    /// What holepunching did so far.
    pub fn holepunch_stats(&self) -> HolepunchStats {
        self.punch.stats
    }

    /// Whether `conn` is a dial a BEP 55 connect message asked for: the
    /// engine opens it over uTP only.
    pub fn is_holepunch_dial(&self, conn: ConnId) -> bool {
        self.punch.dials.contains(&conn)
    }

    /// Peer `relay` listed `addr` in its PEX with `flags`: remember it as
    /// the relay to ask, if both speak `ut_holepunch`.
    pub(super) fn note_holepunch_candidate(
        &mut self,
        relay: ConnId,
        addr: SocketAddr,
        flags: PexFlags,
    ) {
        let relays = self
            .peers
            .get(&relay)
            .is_some_and(|p| p.holepunch_id().is_some());
        if self.holepunching() && relays && flags.has(PexFlags::HOLEPUNCH) {
            let p = &mut self.punch;
            remember(&mut p.via, &mut p.via_order, addr, relay);
        }
    }

    /// An outgoing connection failed (both transports): ask the relay that
    /// told us about `addr`, if any, for a rendezvous — unless `conn` was
    /// a holepunch dial itself (then nobody is asked again).
    pub(super) fn holepunch_after_failure(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) {
        if self.punch.dials.remove(&conn) {
            return;
        }
        if !self.holepunching() || !self.list.flags(&addr).has(PexFlags::HOLEPUNCH) {
            return;
        }
        let Some(&relay) = self.punch.via.get(&addr) else {
            return;
        };
        let recent = self
            .punch
            .asked
            .get(&addr)
            .is_some_and(|&t| now.saturating_duration_since(t) < RENDEZVOUS_BACKOFF);
        if recent {
            return;
        }
        if self.send_holepunch(now, relay, HolepunchMessage::Rendezvous(addr)) {
            let p = &mut self.punch;
            remember(&mut p.asked, &mut p.asked_order, addr, now);
            p.stats.rendezvous_sent += 1;
        }
    }

    /// A holepunch dial opened, or its peer left: it is an ordinary
    /// connection from now on.
    pub(super) fn holepunch_dial_done(&mut self, conn: ConnId) {
        self.punch.dials.remove(&conn);
    }

    /// A `ut_holepunch` message from `conn` (under our id).
    pub(super) fn on_holepunch(&mut self, now: Instant, conn: ConnId, payload: &[u8]) {
        if !self.holepunching() {
            return;
        }
        let message = match HolepunchMessage::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                let reason = CloseReason::Protocol(PeerError::Malformed(e.into()));
                self.drop_peer(now, conn, reason, true);
                return;
            }
        };
        let Some(budget) = self.peers.get_mut(&conn).map(|p| &mut p.punch_budget) else {
            return;
        };
        if !budget.spend(now) {
            self.punch.stats.over_budget += 1;
            return;
        }
        match message {
            HolepunchMessage::Rendezvous(target) => self.relay(now, conn, target),
            HolepunchMessage::Connect(addr) => self.holepunch_connect(now, addr),
            HolepunchMessage::Error { addr, code } => {
                self.punch.stats.errors_received += 1;
                if let Some(relay) = self.peers.get(&conn).map(|p| p.addr) {
                    self.emit(TorrentEvent::HolepunchFailed {
                        relay,
                        target: addr,
                        error: code,
                    });
                }
            }
        }
    }

    /// BEP 55's relay: `conn` asks us to introduce it to `target`. A
    /// requester that did not offer `ut_holepunch` could hear neither an
    /// answer nor its connect: nothing is done for it.
    fn relay(&mut self, now: Instant, conn: ConnId, target: SocketAddr) {
        let Some(requester) = self.peers.get(&conn).filter(|p| p.holepunch_id().is_some()) else {
            return;
        };
        let (from, from_addr) = (requester.listen_addr(), requester.addr);
        let error = |code| HolepunchMessage::Error { addr: target, code };
        let found = self
            .peers
            .iter()
            .filter(|(c, p)| **c != conn && p.session.as_ref().is_some_and(|s| s.is_active()))
            .find(|(_, p)| p.listen_addr() == target || p.addr == target)
            .map(|(c, p)| (*c, p.holepunch_id().is_some()));
        let answer = if target == from || target == from_addr {
            Some(error(HolepunchErrorCode::NoSelf))
        } else {
            match found {
                None => Some(error(HolepunchErrorCode::NotConnected)),
                Some((_, false)) => Some(error(HolepunchErrorCode::NoSupport)),
                Some((_, true)) => None,
            }
        };
        if let Some(answer) = answer {
            self.punch.stats.refused += 1;
            self.send_holepunch(now, conn, answer);
            return;
        }
        let Some((other, _)) = found else {
            return;
        };
        let afford = self
            .peers
            .get_mut(&other)
            .is_some_and(|p| p.punch_budget.spend(now));
        if !afford {
            self.punch.stats.over_budget += 1;
            return;
        }
        self.punch.stats.relayed += 1;
        self.send_holepunch(now, conn, HolepunchMessage::Connect(target));
        self.send_holepunch(now, other, HolepunchMessage::Connect(from));
    }

    /// A relay says `addr` dials us now: dial it too, over uTP.
    fn holepunch_connect(&mut self, now: Instant, addr: SocketAddr) {
        self.punch.stats.connects_received += 1;
        let port_ok = addr.port() != 0;
        let ip = addr.ip();
        let routable = !ip.is_unspecified() && !ip.is_multicast();
        let connected = self
            .peers
            .values()
            .any(|p| p.addr == addr || p.listen_addr() == addr);
        let room = self.peers.len() < self.max_peers()
            && self.half_open() < self.max_half_open()
            && self.is_connecting();
        if !port_ok || !routable || connected || !room {
            return;
        }
        if !self.list.claim(now, addr, PeerSource::Pex) {
            return;
        }
        let conn = self.config.conn_ids.next_id();
        let name = self.dial_name(&addr);
        self.peers.insert(conn, Peer::dialling(now, addr, name));
        self.punch.dials.insert(conn);
        self.punch.stats.dials += 1;
        self.out.push_back(TorrentOutput::Connect { conn, addr });
    }

    /// Sends `message` to `conn` if it speaks `ut_holepunch`; returns
    /// whether it went.
    fn send_holepunch(&mut self, now: Instant, conn: ConnId, message: HolepunchMessage) -> bool {
        let Some(p) = self.peers.get_mut(&conn) else {
            return false;
        };
        let Some(id) = p.holepunch_id() else {
            return false;
        };
        let Some(s) = p.session.as_mut() else {
            return false;
        };
        s.send_extended(now, id, message.to_vec().into());
        self.flush(now, conn);
        true
    }
}
