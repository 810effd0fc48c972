//! Incoming connections whose handshake has not yet named a torrent.
//!
//! A peer that connects to our listen port is routed by the info-hash in
//! its handshake (BEP 3: 1 + 19 + 8 bytes, then the 20-byte info-hash).
//! Until those 48 bytes are in, the connection belongs to no torrent and
//! sits here. Whoever can open TCP connections can fill this table, so it
//! is built not to be a pool an outsider can hold:
//!
//! - every entry has a deadline from accept: a short one for the first byte
//!   (honest peers send their handshake at once) and a longer one for the
//!   whole routing prefix;
//! - one IP holds at most `max_per_ip` entries;
//! - when the table is full, a newcomer takes the slot of the oldest entry,
//!   preferring one that has sent nothing. An honest peer's handshake takes
//!   one round trip, so a flood has to outpace that to push it out, and the
//!   per-IP cap makes it spread over many addresses to try.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::handles::ConnId;
use crate::time::Instant;

/// Limits on connections waiting for their handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// Most connections waiting at once.
    pub max_total: usize,
    /// Most of those from one IP.
    pub max_per_ip: usize,
    /// Time from accept to the first byte.
    pub first_byte: Duration,
    /// Time from accept to the whole routing prefix of the handshake.
    pub handshake: Duration,
}

impl Default for HandshakeLimits {
    fn default() -> HandshakeLimits {
        HandshakeLimits {
            max_total: 64,
            max_per_ip: 4,
            first_byte: Duration::from_secs(5),
            handshake: Duration::from_secs(10),
        }
    }
}

/// What became of a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// It waits for its handshake.
    Admitted,
    /// It waits for its handshake; this older connection made room and
    /// must be closed.
    Evicted(ConnId),
    /// Its IP already holds its share: close it.
    Refused,
}

#[derive(Debug)]
struct Waiting {
    addr: SocketAddr,
    accepted: Instant,
    buf: Vec<u8>,
    /// Whether it has sent anything (an MSE handshake in progress has,
    /// though nothing of its BitTorrent handshake is in `buf` yet).
    spoke: bool,
}

impl Waiting {
    fn deadline(&self, limits: &HandshakeLimits) -> Instant {
        let wait = if !self.spoke {
            limits.first_byte
        } else {
            limits.handshake
        };
        self.accepted + wait
    }
}

/// See the module documentation. Connection ids grow with each accept,
/// so the smallest id waiting is the oldest.
#[derive(Debug, Default)]
pub(super) struct PendingHandshakes {
    limits: HandshakeLimits,
    waiting: BTreeMap<ConnId, Waiting>,
    per_ip: BTreeMap<IpAddr, usize>,
}

impl PendingHandshakes {
    pub(super) fn new(limits: HandshakeLimits) -> PendingHandshakes {
        PendingHandshakes {
            limits,
            waiting: BTreeMap::new(),
            per_ip: BTreeMap::new(),
        }
    }

    /// Caps how many may wait (the session's connection budget keeps a
    /// reserve for them); those already waiting stay.
    pub(super) fn set_max_total(&mut self, max_total: usize) {
        self.limits.max_total = max_total;
    }

    /// Whether a newcomer would replace an older connection rather than
    /// add one.
    pub(super) fn is_full(&self) -> bool {
        self.waiting.len() >= self.limits.max_total
    }

    /// Connections waiting.
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// A peer connected from `addr`; `conn` is the id it would get.
    pub(super) fn admit(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) -> Admission {
        if self.limits.max_total == 0 {
            return Admission::Refused;
        }
        if self.per_ip.get(&addr.ip()).copied().unwrap_or(0) >= self.limits.max_per_ip {
            return Admission::Refused;
        }
        let evicted = if self.waiting.len() >= self.limits.max_total {
            let silent = self.waiting.iter().find(|(_, w)| !w.spoke);
            let oldest = silent.or_else(|| self.waiting.iter().next());
            let victim = oldest.map(|(c, _)| *c);
            if let Some(v) = victim {
                self.remove(v);
            }
            victim
        } else {
            None
        };
        *self.per_ip.entry(addr.ip()).or_insert(0) += 1;
        self.waiting.insert(
            conn,
            Waiting {
                addr,
                accepted: now,
                buf: Vec::new(),
                spoke: false,
            },
        );
        match evicted {
            Some(v) => Admission::Evicted(v),
            None => Admission::Admitted,
        }
    }

    /// Whether `conn` is waiting here.
    pub(super) fn contains(&self, conn: ConnId) -> bool {
        self.waiting.contains_key(&conn)
    }

    /// Bytes arrived on `conn`: its buffer so far (empty if `conn` is not
    /// waiting here).
    pub(super) fn push(&mut self, conn: ConnId, data: &[u8]) -> &[u8] {
        match self.waiting.get_mut(&conn) {
            Some(w) => {
                w.buf.extend_from_slice(data);
                w.spoke |= !data.is_empty();
                &w.buf
            }
            None => &[],
        }
    }

    /// Whether `conn` is waiting and has sent nothing yet.
    pub(super) fn is_silent(&self, conn: ConnId) -> bool {
        self.waiting.get(&conn).is_some_and(|w| !w.spoke)
    }

    /// `conn` sent bytes that are not (yet) its BitTorrent handshake (an
    /// MSE handshake): it counts as a connection that spoke.
    pub(super) fn mark_spoken(&mut self, conn: ConnId) {
        if let Some(w) = self.waiting.get_mut(&conn) {
            w.spoke = true;
        }
    }

    /// Takes `conn` out: its address and the bytes it sent.
    pub(super) fn remove(&mut self, conn: ConnId) -> Option<(SocketAddr, Vec<u8>)> {
        let w = self.waiting.remove(&conn)?;
        if let Some(n) = self.per_ip.get_mut(&w.addr.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&w.addr.ip());
            }
        }
        Some((w.addr, w.buf))
    }

    /// Takes out every connection (a shutdown closes them all).
    pub(super) fn drain(&mut self) -> Vec<ConnId> {
        self.per_ip.clear();
        std::mem::take(&mut self.waiting).into_keys().collect()
    }

    /// Takes out every connection whose deadline has passed; they must be
    /// closed.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<ConnId> {
        let late: Vec<ConnId> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.deadline(&self.limits) <= now)
            .map(|(c, _)| *c)
            .collect();
        for c in &late {
            self.remove(*c);
        }
        late
    }

    /// The earliest deadline (a scan: the table holds at most
    /// `max_total` entries).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.waiting
            .values()
            .map(|w| w.deadline(&self.limits))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, ip], port))
    }

    fn limits() -> HandshakeLimits {
        HandshakeLimits {
            max_total: 3,
            max_per_ip: 2,
            ..HandshakeLimits::default()
        }
    }

    #[test]
    fn one_ip_holds_at_most_its_share() {
        let mut p = PendingHandshakes::new(limits());
        let t = Instant::ZERO;
        assert_eq!(p.admit(t, ConnId::new(1), addr(1, 1)), Admission::Admitted);
        assert_eq!(p.admit(t, ConnId::new(2), addr(1, 2)), Admission::Admitted);
        assert_eq!(p.admit(t, ConnId::new(3), addr(1, 3)), Admission::Refused);
        p.remove(ConnId::new(1));
        assert_eq!(p.admit(t, ConnId::new(4), addr(1, 4)), Admission::Admitted);
    }

    #[test]
    fn a_newcomer_evicts_the_oldest_silent_connection() {
        let mut p = PendingHandshakes::new(limits());
        let t = Instant::ZERO;
        for i in 1..=3 {
            assert_eq!(
                p.admit(t, ConnId::new(i), addr(i as u8, 1)),
                Admission::Admitted
            );
        }
        // The oldest has started its handshake: the next oldest goes.
        p.push(ConnId::new(1), b"\x13Bit");
        assert_eq!(
            p.admit(t, ConnId::new(4), addr(9, 1)),
            Admission::Evicted(ConnId::new(2))
        );
        assert!(!p.contains(ConnId::new(2)));
        // Nobody silent left but 3 and 4; 3 is older.
        assert_eq!(
            p.admit(t, ConnId::new(5), addr(9, 2)),
            Admission::Evicted(ConnId::new(3))
        );
        p.push(ConnId::new(4), b"\x13");
        p.push(ConnId::new(5), b"\x13");
        // All have spoken: the oldest goes.
        assert_eq!(
            p.admit(t, ConnId::new(6), addr(8, 1)),
            Admission::Evicted(ConnId::new(1))
        );
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn deadlines_run_from_accept() {
        let mut p = PendingHandshakes::new(HandshakeLimits::default());
        let t = Instant::ZERO;
        p.admit(t, ConnId::new(1), addr(1, 1));
        p.admit(t + Duration::from_secs(1), ConnId::new(2), addr(2, 1));
        p.push(ConnId::new(2), b"\x13");
        assert_eq!(p.next_deadline(), Some(t + Duration::from_secs(5)));
        assert!(p.expire(t + Duration::from_secs(4)).is_empty());
        assert_eq!(p.expire(t + Duration::from_secs(5)), vec![ConnId::new(1)]);
        // A trickle of bytes does not extend the deadline.
        p.push(ConnId::new(2), b"B");
        assert_eq!(p.next_deadline(), Some(t + Duration::from_secs(11)));
        assert_eq!(p.expire(t + Duration::from_secs(11)), vec![ConnId::new(2)]);
        assert_eq!(p.len(), 0);
        assert!(p.per_ip.is_empty());
    }
}
