//! Outstanding KRPC queries.
//!
//! Each query gets a short random transaction id and a deadline. A reply
//! counts only if its transaction id *and* source address match a query we
//! sent: anything else (late, unknown, forged — e.g. spoofed replies trying
//! to poison a lookup) is dropped and counted. The number of queries in
//! flight is capped, so a flood of work cannot grow memory without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::rng::{Rng, Seed};
use crate::time::Instant;

/// Default time a query waits for its answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default cap on queries in flight.
pub const DEFAULT_MAX_OUTSTANDING: usize = 1024;

#[derive(Clone, Debug)]
struct Pending<T> {
    to: SocketAddr,
    deadline: Instant,
    context: T,
}

/// The table; `T` is whatever the caller needs to handle the reply (which
/// lookup, which node).
#[derive(Clone, Debug)]
pub struct Transactions<T> {
    pending: BTreeMap<u16, Pending<T>>,
    deadlines: BTreeSet<(Instant, u16)>,
    timeout: Duration,
    max_outstanding: usize,
    unmatched: u64,
    rng: Rng,
}

impl<T> Transactions<T> {
    /// A table whose queries wait `timeout`, at most `max_outstanding` at a
    /// time.
    pub fn new(timeout: Duration, max_outstanding: usize, seed: Seed) -> Transactions<T> {
        Transactions {
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            timeout,
            max_outstanding: max_outstanding.min(u16::MAX as usize / 2),
            unmatched: 0,
            rng: Rng::new(seed),
        }
    }

    /// Queries in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether another query may start.
    pub fn has_room(&self) -> bool {
        self.pending.len() < self.max_outstanding
    }

    /// Replies that matched nothing (dropped).
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// Registers a query to `to`; returns its transaction id, or `None` when
    /// the cap is reached.
    pub fn start(&mut self, now: Instant, to: SocketAddr, context: T) -> Option<[u8; 2]> {
        if !self.has_room() {
            return None;
        }
        let id = loop {
            let candidate = self.rng.next_u32() as u16;
            if !self.pending.contains_key(&candidate) {
                break candidate;
            }
        };
        let deadline = now + self.timeout;
        self.pending.insert(
            id,
            Pending {
                to,
                deadline,
                context,
            },
        );
        self.deadlines.insert((deadline, id));
        Some(id.to_be_bytes())
    }

    /// A reply with transaction id `tx` came from `from`: its context if it
    /// answers one of our queries to that very address.
    pub fn complete(&mut self, tx: &[u8], from: SocketAddr) -> Option<T> {
        let id = <[u8; 2]>::try_from(tx).ok().map(u16::from_be_bytes);
        match id.and_then(|id| self.pending.get(&id).map(|p| (id, p.to))) {
            Some((id, to)) if to == from => {
                let p = self.pending.remove(&id)?;
                self.deadlines.remove(&(p.deadline, id));
                Some(p.context)
            }
            _ => {
                self.unmatched += 1;
                None
            }
        }
    }

    /// Queries whose deadline passed, removed, with where they went.
    pub fn expire(&mut self, now: Instant) -> Vec<(SocketAddr, T)> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.pending.remove(&id) {
                out.push((p.to, p.context));
            }
        }
        out
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([20, 0, 0, 1], p))
    }

    #[test]
    fn replies_must_match_id_and_address() {
        let mut t = Transactions::new(DEFAULT_TIMEOUT, 10, Seed::from_u64(1));
        let now = Instant::ZERO;
        let tx = t.start(now, addr(1), "lookup 1").unwrap();
        assert_eq!(t.complete(&tx, addr(2)), None, "wrong address");
        assert_eq!(t.complete(&[tx[0], tx[1] ^ 1], addr(1)), None, "wrong id");
        assert_eq!(t.complete(b"abc", addr(1)), None, "malformed id");
        assert_eq!(t.unmatched(), 3);
        assert_eq!(t.complete(&tx, addr(1)), Some("lookup 1"));
        assert_eq!(t.complete(&tx, addr(1)), None, "only once");
        assert!(t.is_empty());
    }

    #[test]
    fn deadlines_and_cap() {
        let mut t = Transactions::new(Duration::from_secs(2), 3, Seed::from_u64(2));
        let t0 = Instant::ZERO;
        for i in 0..3 {
            assert!(t
                .start(t0 + Duration::from_millis(i * 100), addr(i as u16), i)
                .is_some());
        }
        assert!(t.start(t0, addr(9), 9).is_none(), "cap reached");
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(2)));
        let expired = t.expire(t0 + Duration::from_millis(2150));
        assert_eq!(expired, vec![(addr(0), 0), (addr(1), 1)]);
        assert_eq!(t.len(), 1);
        assert!(t.has_room());
    }
}
