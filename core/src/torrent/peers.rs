//! The torrent's peer list: addresses we may connect to, with back-off for
//! ones that failed, trust for ones that sent data, and bans.
//!
//! Addresses are keyed by IP and port (two clients behind one NAT are two
//! candidates), but the limits an outsider could abuse are by IP: a ban
//! holds for every port of the IP (a peer that reconnects from a new
//! source port is still banned), and one IP has at most
//! [`max_per_ip`](PeerList::new) connections, in either direction, so a
//! single host cannot take every slot. Tests that run many peers on one
//! IP raise the cap or give each peer its own loopback address
//! (127.0.0.2 is another IP than 127.0.0.1).
//!
//! Addresses of peers that connected to us (their source ports) are kept
//! only while connected: they are never dialled, and a host cycling
//! through source ports must not fill the list.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::time::Instant;
use crate::wire::PexFlags;

/// Where an address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerSource {
    /// A tracker announce.
    Tracker,
    /// The DHT.
    Dht,
    /// Peer exchange.
    Pex,
    /// The user or a magnet's `x.pe`.
    User,
    /// The peer connected to us.
    Incoming,
    /// Local service discovery (BEP 14): a host on our network.
    Lsd,
}

/// Trust at or below which a peer is banned.
const BAN_TRUST: i32 = -6;
/// Most addresses remembered.
const MAX_CANDIDATES: usize = 4000;
/// Failed connection attempts before an address is forgotten.
const MAX_FAILURES: u32 = 6;
/// First retry of a peer the user named, doubling per failure…
const USER_RETRY: Duration = Duration::from_secs(2);
/// …up to this.
const USER_RETRY_MAX: Duration = Duration::from_secs(30);
/// How soon a peer the user named is dialled again after it disconnects.
const USER_RECONNECT: Duration = Duration::from_secs(5);
/// Most banned IPs remembered (the oldest ban goes first).
const MAX_BANS: usize = 4000;
/// How long an IP whose peer was dropped for idling may not come back:
/// otherwise a host with spare addresses takes each slot freed for a
/// newcomer by reconnecting first.
pub const IDLE_COOLDOWN: Duration = Duration::from_secs(10 * 60);
/// Connections per IP unless configured (libtorrent's default too).
pub const DEFAULT_MAX_PER_IP: usize = 1;

#[derive(Clone, Debug)]
struct Candidate {
    source: PeerSource,
    next_attempt: Instant,
    failures: u32,
    connected: bool,
    trust: i32,
    parole: bool,
    gave_data: bool,
    /// What peer exchange said of it (BEP 11: seed, encryption, uTP,
    /// reachable).
    flags: PexFlags,
    /// Found under a hybrid torrent's v2 name (BEP 52): dialled with it,
    /// since a v2-only client knows no other.
    v2_swarm: bool,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct PeerList {
    candidates: BTreeMap<SocketAddr, Candidate>,
    /// We are a seed: peers known to be seeds are not worth a connection.
    seeding: bool,
    max_per_ip: usize,
    /// Connections (and attempts) per IP.
    connected: BTreeMap<IpAddr, usize>,
    /// Banned IPs, in the order they were banned.
    banned: BTreeSet<IpAddr>,
    ban_order: VecDeque<IpAddr>,
    /// IPs dropped for idling, until when they stay away.
    cooling: BTreeMap<IpAddr, Instant>,
}

impl Default for PeerList {
    fn default() -> PeerList {
        PeerList::new(DEFAULT_MAX_PER_IP)
    }
}

impl PeerList {
    /// An empty list allowing `max_per_ip` connections per IP (at least 1).
    pub fn new(max_per_ip: usize) -> PeerList {
        PeerList {
            candidates: BTreeMap::new(),
            seeding: false,
            max_per_ip: max_per_ip.max(1),
            connected: BTreeMap::new(),
            banned: BTreeSet::new(),
            ban_order: VecDeque::new(),
            cooling: BTreeMap::new(),
        }
    }

    /// The peer at `addr` was dropped to make room because it idled: its
    /// IP stays away for [`IDLE_COOLDOWN`].
    pub fn dropped_for_idling(&mut self, now: Instant, addr: SocketAddr) {
        self.cooling.retain(|_, until| *until > now);
        if self.cooling.len() >= MAX_BANS {
            let first = self
                .cooling
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(ip, _)| *ip);
            if let Some(ip) = first {
                self.cooling.remove(&ip);
            }
        }
        self.cooling.insert(addr.ip(), now + IDLE_COOLDOWN);
    }

    fn cooling_down(&self, now: Instant, ip: IpAddr) -> bool {
        self.cooling.get(&ip).is_some_and(|until| *until > now)
    }

    /// Connections (and attempts) to or from `ip` now.
    pub fn connections_from(&self, ip: IpAddr) -> usize {
        self.connected.get(&ip).copied().unwrap_or(0)
    }

    fn ip_full(&self, ip: IpAddr) -> bool {
        self.connections_from(ip) >= self.max_per_ip
    }

    /// Marks `addr` connected or not, keeping the per-IP count.
    fn set_connected(&mut self, addr: SocketAddr, on: bool) {
        let Some(c) = self.candidates.get_mut(&addr) else {
            return;
        };
        if c.connected == on {
            return;
        }
        c.connected = on;
        if on {
            *self.connected.entry(addr.ip()).or_insert(0) += 1;
        } else if let Some(n) = self.connected.get_mut(&addr.ip()) {
            *n -= 1;
            if *n == 0 {
                self.connected.remove(&addr.ip());
            }
        }
    }

    /// A connection to `addr` ended or failed: an incoming peer's source
    /// address is forgotten (module documentation).
    fn release(&mut self, addr: SocketAddr) {
        self.set_connected(addr, false);
        if self
            .candidates
            .get(&addr)
            .is_some_and(|c| c.source == PeerSource::Incoming)
        {
            self.candidates.remove(&addr);
        }
    }
    /// Adds an address (no-op if known or banned, or the list is full).
    pub fn add(&mut self, now: Instant, addr: SocketAddr, source: PeerSource) {
        self.add_flagged(now, addr, source, PexFlags::default());
    }

    /// Adds an address with what peer exchange said of it; for a known
    /// address the flags are updated.
    pub fn add_flagged(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        source: PeerSource,
        flags: PexFlags,
    ) {
        if let Some(c) = self.candidates.get_mut(&addr) {
            if flags != PexFlags::default() {
                c.flags = flags;
            }
            return;
        }
        if self.candidates.len() >= MAX_CANDIDATES || self.banned.contains(&addr.ip()) {
            return;
        }
        self.candidates.entry(addr).or_insert(Candidate {
            source,
            next_attempt: now,
            failures: 0,
            connected: false,
            trust: 0,
            parole: false,
            gave_data: false,
            flags,
            v2_swarm: false,
        });
    }

    /// `addr` was found under the torrent's v2 name (BEP 52).
    pub fn set_v2_swarm(&mut self, addr: &SocketAddr) {
        if let Some(c) = self.candidates.get_mut(addr) {
            c.v2_swarm = true;
        }
    }

    /// Whether `addr` was found under the torrent's v2 name.
    pub fn in_v2_swarm(&self, addr: &SocketAddr) -> bool {
        self.candidates.get(addr).is_some_and(|c| c.v2_swarm)
    }

    /// What peer exchange said of `addr`.
    pub fn flags(&self, addr: &SocketAddr) -> PexFlags {
        self.candidates
            .get(addr)
            .map(|c| c.flags)
            .unwrap_or_default()
    }

    /// Whether we are a seed (then peers flagged as seeds are skipped).
    pub fn set_seeding(&mut self, seeding: bool) {
        self.seeding = seeding;
    }

    /// Number of known addresses.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Whether `addr`'s IP is banned.
    pub fn is_banned(&self, addr: &SocketAddr) -> bool {
        self.banned.contains(&addr.ip())
    }

    /// Whether `addr` is on parole (gets pieces to itself).
    pub fn on_parole(&self, addr: &SocketAddr) -> bool {
        self.candidates.get(addr).is_some_and(|c| c.parole)
    }

    /// Where `addr` came from.
    pub fn source(&self, addr: &SocketAddr) -> Option<PeerSource> {
        self.candidates.get(addr).map(|c| c.source)
    }

    /// Never connect to or accept `addr`'s IP again (it lied to us).
    pub fn ban(&mut self, addr: &SocketAddr) {
        let ip = addr.ip();
        if !self.banned.insert(ip) {
            return;
        }
        self.ban_order.push_back(ip);
        if self.ban_order.len() > MAX_BANS {
            if let Some(old) = self.ban_order.pop_front() {
                self.banned.remove(&old);
            }
        }
        // Its addresses are of no more use; connected ones stay counted
        // until their connections end.
        self.candidates.retain(|a, c| a.ip() != ip || c.connected);
    }

    /// Every address worth connecting to (not banned, not the source
    /// port of a peer that connected to us), those that gave us data
    /// first.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut v: Vec<(&SocketAddr, &Candidate)> = self
            .candidates
            .iter()
            .filter(|(a, c)| !self.is_banned(a) && c.source != PeerSource::Incoming)
            .collect();
        v.sort_by_key(|(a, c)| (!c.gave_data, c.failures, **a));
        v.into_iter().map(|(a, _)| *a).collect()
    }

    /// How many known addresses came from `source`.
    pub fn count_from(&self, source: PeerSource) -> usize {
        self.candidates
            .values()
            .filter(|c| c.source == source)
            .count()
    }

    /// Up to `n` addresses to connect to now: not connected, not banned,
    /// due, on an IP with room; those that gave us data before first,
    /// then fewest failures.
    pub fn to_connect(&mut self, now: Instant, n: usize) -> Vec<SocketAddr> {
        let mut due: Vec<(SocketAddr, bool, u32)> = self
            .candidates
            .iter()
            .filter(|(a, c)| !c.connected && !self.is_banned(a) && c.next_attempt <= now)
            .filter(|(_, c)| c.source != PeerSource::Incoming)
            .filter(|(_, c)| !(self.seeding && c.flags.has(PexFlags::SEED)))
            .map(|(a, c)| (*a, !c.gave_data, c.failures))
            .collect();
        due.sort_by_key(|&(a, no_data, failures)| (no_data, failures, a));
        let mut chosen = Vec::new();
        for (a, _, _) in due {
            if chosen.len() == n {
                break;
            }
            if !self.ip_full(a.ip()) {
                self.set_connected(a, true);
                chosen.push(a);
            }
        }
        chosen
    }

    /// The earliest time an unconnected address becomes due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.candidates
            .iter()
            .filter(|(_, c)| !c.connected && c.source != PeerSource::Incoming)
            .filter(|(a, _)| !self.is_banned(a) && !self.ip_full(a.ip()))
            .filter(|(_, c)| !(self.seeding && c.flags.has(PexFlags::SEED)))
            .map(|(_, c)| c.next_attempt)
            .min()
    }

    /// A peer connected to us: mark it connected (adding it if new).
    /// Returns false if its IP is banned, has no room or was just dropped
    /// for idling, or the address is already connected, or the list is
    /// full.
    pub fn accept(&mut self, now: Instant, addr: SocketAddr) -> bool {
        if self.is_banned(&addr) || self.ip_full(addr.ip()) || self.cooling_down(now, addr.ip()) {
            return false;
        }
        self.add(now, addr, PeerSource::Incoming);
        match self.candidates.get(&addr) {
            Some(c) if !c.connected => {
                self.set_connected(addr, true);
                true
            }
            // Already connected, or the list is full (nothing to count
            // the connection against).
            _ => false,
        }
    }

    /// Claims `addr` for a dial the list did not choose (a BEP 55
    /// holepunch: the relay says the peer dials us now, whatever our
    /// back-off for it). Returns false, claiming nothing, when its IP is
    /// banned, cooling down or at its limit, the address is connected
    /// already, or the list is full.
    pub fn claim(&mut self, now: Instant, addr: SocketAddr, source: PeerSource) -> bool {
        if self.is_banned(&addr) || self.ip_full(addr.ip()) || self.cooling_down(now, addr.ip()) {
            return false;
        }
        self.add(now, addr, source);
        match self.candidates.get(&addr) {
            Some(c) if !c.connected => {
                self.set_connected(addr, true);
                true
            }
            _ => false,
        }
    }

    /// Connecting failed: back off exponentially, forget after repeated
    /// failures.
    pub fn connect_failed(&mut self, now: Instant, addr: SocketAddr) {
        self.set_connected(addr, false);
        let Some(c) = self.candidates.get_mut(&addr) else {
            return;
        };
        c.failures += 1;
        // A peer the user named is the one they want: never forgotten,
        // and tried again within seconds (it may just be starting).
        let user = c.source == PeerSource::User;
        if c.failures > MAX_FAILURES && !c.gave_data && !user {
            self.candidates.remove(&addr);
            return;
        }
        let backoff = if user {
            (USER_RETRY * (1u32 << c.failures.min(5))).min(USER_RETRY_MAX)
        } else {
            Duration::from_secs(30) * (1u32 << c.failures.min(7))
        };
        c.next_attempt = now + backoff;
    }

    /// A connection ended; it may be retried after a pause (a short one
    /// for a peer the user named).
    pub fn disconnected(&mut self, now: Instant, addr: SocketAddr) {
        self.release(addr);
        if let Some(c) = self.candidates.get_mut(&addr) {
            let pause = if c.source == PeerSource::User {
                USER_RECONNECT
            } else {
                Duration::from_secs(60)
            };
            c.next_attempt = now + pause;
        }
    }

    /// We closed the connection for want of room (the session's budget
    /// moved to other torrents), not for anything the peer did: it may be
    /// dialled again as soon as there is room.
    pub fn closed_for_room(&mut self, now: Instant, addr: SocketAddr) {
        self.release(addr);
        if let Some(c) = self.candidates.get_mut(&addr) {
            c.next_attempt = now;
        }
    }

    /// The peer contributed to a piece that verified.
    pub fn good_piece(&mut self, addr: &SocketAddr, exclusive: bool) {
        if let Some(c) = self.candidates.get_mut(addr) {
            c.gave_data = true;
            c.failures = 0;
            c.trust = (c.trust + 1).min(8);
            if exclusive {
                c.parole = false;
            }
        }
    }

    /// The peer contributed to a piece that failed its hash check. A sole
    /// contributor is certainly at fault and banned; one of several is put
    /// on parole and loses trust, and banned once trust runs out. Returns
    /// whether it is now banned.
    pub fn bad_piece(&mut self, addr: &SocketAddr, sole: bool) -> bool {
        let Some(c) = self.candidates.get_mut(addr) else {
            return false;
        };
        c.trust -= if sole { 2 * BAN_TRUST.abs() } else { 2 };
        c.parole = true;
        let out_of_trust = c.trust <= BAN_TRUST;
        if out_of_trust {
            self.ban(addr);
        }
        self.is_banned(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, host], 6881))
    }

    fn port(host: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, host], port))
    }

    #[test]
    fn one_ip_gets_at_most_its_share_of_connections() {
        let mut l = PeerList::new(2);
        let t = Instant::ZERO;
        for p in 1..=3 {
            l.add(t, port(1, p), PeerSource::Tracker);
        }
        l.add(t, addr(2), PeerSource::Tracker);
        assert_eq!(l.to_connect(t, 5), vec![port(1, 1), port(1, 2), addr(2)]);
        assert!(!l.accept(t, port(1, 40_000)), "127.0.0.1 is full");
        assert!(l.accept(t, port(3, 40_000)));
        assert!(!l.accept(t, port(3, 40_000)), "already connected");
        l.connect_failed(t, port(1, 1));
        assert!(l.accept(t, port(1, 40_001)));
        assert_eq!(l.connections_from(port(1, 0).ip()), 2);
        // Incoming source ports are forgotten when they leave.
        l.disconnected(t, port(1, 40_001));
        assert_eq!(l.connections_from(port(1, 0).ip()), 1);
        assert_eq!(l.source(&port(1, 40_001)), None);
    }

    #[test]
    fn a_ban_covers_every_port_of_the_ip() {
        let mut l = PeerList::new(4);
        let t = Instant::ZERO;
        assert!(l.accept(t, port(5, 50_000)));
        assert!(l.bad_piece(&port(5, 50_000), true));
        l.disconnected(t, port(5, 50_000));
        assert!(
            !l.accept(t, port(5, 50_001)),
            "reconnecting from a new port"
        );
        l.add(t, port(5, 6881), PeerSource::Pex);
        assert!(l.to_connect(t, 5).is_empty());
        assert_eq!(l.next_deadline(), None);
    }

    #[test]
    fn a_seed_does_not_dial_peers_pex_calls_seeds() {
        let mut l = PeerList::default();
        let t = Instant::ZERO;
        l.add_flagged(t, addr(1), PeerSource::Pex, PexFlags(PexFlags::SEED));
        l.add_flagged(t, addr(2), PeerSource::Pex, PexFlags(PexFlags::REACHABLE));
        // Learned again with flags: they are updated.
        l.add(t, addr(3), PeerSource::Tracker);
        l.add_flagged(t, addr(3), PeerSource::Pex, PexFlags(PexFlags::SEED));
        assert!(l.flags(&addr(3)).has(PexFlags::SEED));
        l.set_seeding(true);
        assert_eq!(l.to_connect(t, 5), vec![addr(2)]);
        l.set_seeding(false);
        assert_eq!(l.to_connect(t, 5), vec![addr(1), addr(3)]);
    }

    #[test]
    fn back_off_and_forget() {
        let mut l = PeerList::default();
        let t = Instant::ZERO;
        l.add(t, addr(1), PeerSource::Tracker);
        assert_eq!(l.to_connect(t, 5), vec![addr(1)]);
        assert!(l.to_connect(t, 5).is_empty(), "already connecting");
        l.connect_failed(t, addr(1));
        assert!(l.to_connect(t, 5).is_empty());
        assert_eq!(l.next_deadline(), Some(t + Duration::from_secs(60)));
        for _ in 0..MAX_FAILURES {
            l.connect_failed(t, addr(1));
        }
        assert!(l.is_empty());
    }

    #[test]
    fn a_peer_the_user_named_is_retried_soon_and_never_forgotten() {
        let mut l = PeerList::default();
        let t = Instant::ZERO;
        l.add(t, addr(1), PeerSource::User);
        assert_eq!(l.to_connect(t, 5), vec![addr(1)]);
        l.connect_failed(t, addr(1));
        assert_eq!(l.next_deadline(), Some(t + Duration::from_secs(4)));
        for _ in 0..MAX_FAILURES * 2 {
            l.connect_failed(t, addr(1));
        }
        assert_eq!(l.next_deadline(), Some(t + USER_RETRY_MAX));
        assert_eq!(l.to_connect(t + USER_RETRY_MAX, 5), vec![addr(1)]);
        l.disconnected(t, addr(1));
        assert_eq!(l.next_deadline(), Some(t + Duration::from_secs(5)));
    }

    #[test]
    fn peers_that_gave_data_come_first_and_bans_stick() {
        let mut l = PeerList::default();
        let t = Instant::ZERO;
        for p in 1..=3 {
            l.add(t, addr(p), PeerSource::Dht);
        }
        l.good_piece(&addr(3), false);
        assert_eq!(l.to_connect(t, 1), vec![addr(3)]);
        assert!(!l.bad_piece(&addr(1), false));
        assert!(l.on_parole(&addr(1)));
        assert!(l.bad_piece(&addr(2), true), "sole contributor is banned");
        assert!(!l.accept(t, addr(2)));
        l.disconnected(t, addr(3));
        assert!(l.to_connect(t, 5).iter().all(|a| *a != addr(2)));
    }
}
