//! The torrent's peer list: addresses we may connect to, with back-off for
//! ones that failed, trust for ones that sent data, and bans.
//!
//! Addresses are keyed by IP *and* port: loopback test swarms share one IP,
//! and a ban must not catch innocent neighbours there. (On the public
//! network one IP per peer is the norm, so the difference does not matter.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
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
}

/// Trust at or below which a peer is banned.
const BAN_TRUST: i32 = -6;
/// Most addresses remembered.
const MAX_CANDIDATES: usize = 4000;
/// Failed connection attempts before an address is forgotten.
const MAX_FAILURES: u32 = 6;

#[derive(Clone, Debug)]
struct Candidate {
    source: PeerSource,
    next_attempt: Instant,
    failures: u32,
    connected: bool,
    banned: bool,
    trust: i32,
    parole: bool,
    gave_data: bool,
    /// What peer exchange said of it (BEP 11: seed, encryption, uTP,
    /// reachable).
    flags: PexFlags,
}

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct PeerList {
    candidates: BTreeMap<SocketAddr, Candidate>,
    /// We are a seed: peers known to be seeds are not worth a connection.
    seeding: bool,
}

impl PeerList {
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
        if self.candidates.len() >= MAX_CANDIDATES {
            return;
        }
        self.candidates.entry(addr).or_insert(Candidate {
            source,
            next_attempt: now,
            failures: 0,
            connected: false,
            banned: false,
            trust: 0,
            parole: false,
            gave_data: false,
            flags,
        });
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

    /// Whether `addr` is banned.
    pub fn is_banned(&self, addr: &SocketAddr) -> bool {
        self.candidates.get(addr).is_some_and(|c| c.banned)
    }

    /// Whether `addr` is on parole (gets pieces to itself).
    pub fn on_parole(&self, addr: &SocketAddr) -> bool {
        self.candidates.get(addr).is_some_and(|c| c.parole)
    }

    /// Where `addr` came from.
    pub fn source(&self, addr: &SocketAddr) -> Option<PeerSource> {
        self.candidates.get(addr).map(|c| c.source)
    }

    /// Never connect to or accept `addr` again (it lied to us).
    pub fn ban(&mut self, addr: &SocketAddr) {
        if let Some(c) = self.candidates.get_mut(addr) {
            c.banned = true;
        }
    }

    /// Every address worth connecting to (not banned, not the source
    /// port of a peer that connected to us), those that gave us data
    /// first.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut v: Vec<(&SocketAddr, &Candidate)> = self
            .candidates
            .iter()
            .filter(|(_, c)| !c.banned && c.source != PeerSource::Incoming)
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
    /// due; those that gave us data before first, then fewest failures.
    pub fn to_connect(&mut self, now: Instant, n: usize) -> Vec<SocketAddr> {
        let mut due: Vec<(&SocketAddr, &Candidate)> = self
            .candidates
            .iter()
            .filter(|(_, c)| !c.connected && !c.banned && c.next_attempt <= now)
            .filter(|(_, c)| !(self.seeding && c.flags.has(PexFlags::SEED)))
            .collect();
        due.sort_by_key(|(a, c)| (!c.gave_data, c.failures, **a));
        let chosen: Vec<SocketAddr> = due.into_iter().take(n).map(|(a, _)| *a).collect();
        for a in &chosen {
            if let Some(c) = self.candidates.get_mut(a) {
                c.connected = true;
            }
        }
        chosen
    }

    /// The earliest time an unconnected address becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.candidates
            .values()
            .filter(|c| !c.connected && !c.banned)
            .filter(|c| !(self.seeding && c.flags.has(PexFlags::SEED)))
            .map(|c| c.next_attempt)
            .min()
    }

    /// A peer connected to us: mark it connected (adding it if new).
    /// Returns false if it is banned or already connected.
    pub fn accept(&mut self, now: Instant, addr: SocketAddr) -> bool {
        self.add(now, addr, PeerSource::Incoming);
        match self.candidates.get_mut(&addr) {
            Some(c) if !c.banned && !c.connected => {
                c.connected = true;
                true
            }
            Some(_) => false,
            // The list is full: accept without remembering.
            None => true,
        }
    }

    /// Connecting failed: back off exponentially, forget after repeated
    /// failures.
    pub fn connect_failed(&mut self, now: Instant, addr: SocketAddr) {
        let Some(c) = self.candidates.get_mut(&addr) else {
            return;
        };
        c.connected = false;
        c.failures += 1;
        if c.failures > MAX_FAILURES && !c.gave_data {
            self.candidates.remove(&addr);
            return;
        }
        let backoff = Duration::from_secs(30) * (1u32 << c.failures.min(7));
        c.next_attempt = now + backoff;
    }

    /// A connection ended; it may be retried after a pause.
    pub fn disconnected(&mut self, now: Instant, addr: SocketAddr) {
        if let Some(c) = self.candidates.get_mut(&addr) {
            c.connected = false;
            c.next_attempt = now + Duration::from_secs(60);
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
        if c.trust <= BAN_TRUST {
            c.banned = true;
        }
        c.banned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
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
        assert_eq!(l.next_due(), Some(t + Duration::from_secs(60)));
        for _ in 0..MAX_FAILURES {
            l.connect_failed(t, addr(1));
        }
        assert!(l.is_empty());
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
