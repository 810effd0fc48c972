//! Peers announced to us (BEP 5 `announce_peer`), with expiry and bounded
//! memory: a cap per info-hash (oldest out) and overall (new torrents
//! refused when full). Each remembers whether it announced as a seed, for
//! BEP 33's `noseed` and scrape filters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::scrape::ScrapeBloom;
use crate::metainfo::InfoHash;
use crate::rng::Rng;
use crate::time::Instant;

/// How long an announce lasts.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);

/// One announced peer.
#[derive(Clone, Copy, Debug)]
struct Stored {
    addr: SocketAddr,
    expires: Instant,
    seed: bool,
    /// Its bits in BEP 33's filters, hashed once.
    bloom: [u16; 2],
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct PeerStore {
    by_hash: BTreeMap<InfoHash, Vec<Stored>>,
    total: usize,
    max_per_hash: usize,
    max_total: usize,
}

impl PeerStore {
    /// A store with the given caps.
    pub fn new(max_per_hash: usize, max_total: usize) -> PeerStore {
        PeerStore {
            by_hash: BTreeMap::new(),
            total: 0,
            max_per_hash: max_per_hash.max(1),
            max_total: max_total.max(1),
        }
    }

    /// Peers stored, over all torrents.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether any peer is stored for `hash`.
    pub fn has(&self, hash: &InfoHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Torrents with peers.
    pub fn torrents(&self) -> usize {
        self.by_hash.len()
    }

    /// Records `peer` (a seed or not, BEP 33) for `hash` until
    /// `now + PEER_TTL`. Returns false when the store is full.
    pub fn add(&mut self, now: Instant, hash: InfoHash, peer: SocketAddr, seed: bool) -> bool {
        let expires = now + PEER_TTL;
        if let Some(list) = self.by_hash.get_mut(&hash) {
            if let Some(e) = list.iter_mut().find(|e| e.addr == peer) {
                e.expires = expires;
                e.seed = seed;
                return true;
            }
        }
        if self.total >= self.max_total {
            self.expire(now);
            if self.total >= self.max_total {
                return false;
            }
        }
        let list = self.by_hash.entry(hash).or_default();
        if list.len() >= self.max_per_hash {
            // The oldest announce makes room.
            if let Some(i) = (0..list.len()).min_by_key(|&i| list[i].expires) {
                list.swap_remove(i);
                self.total -= 1;
            }
        }
        list.push(Stored {
            addr: peer,
            expires,
            seed,
            bloom: ScrapeBloom::bits_of(peer.ip()),
        });
        self.total += 1;
        true
    }

    /// Drops expired peers.
    pub fn expire(&mut self, now: Instant) {
        let mut total = 0;
        self.by_hash.retain(|_, list| {
            list.retain(|e| e.expires > now);
            total += list.len();
            !list.is_empty()
        });
        self.total = total;
    }

    /// Up to `n` live peers for `hash`, a random subset; without seeds if
    /// `noseed` (BEP 33: the asker seeds).
    pub fn get(
        &self,
        now: Instant,
        hash: &InfoHash,
        n: usize,
        noseed: bool,
        rng: &mut Rng,
    ) -> Vec<SocketAddr> {
        let Some(list) = self.by_hash.get(hash) else {
            return Vec::new();
        };
        let mut live: Vec<SocketAddr> = list
            .iter()
            .filter(|e| e.expires > now && !(noseed && e.seed))
            .map(|e| e.addr)
            .collect();
        rng.shuffle(&mut live);
        live.truncate(n);
        live
    }

    /// BEP 33's filters of the live peers for `hash`: (seeds, the others).
    pub fn blooms(&self, now: Instant, hash: &InfoHash) -> (ScrapeBloom, ScrapeBloom) {
        let mut seeds = ScrapeBloom::default();
        let mut peers = ScrapeBloom::default();
        for e in self.by_hash.get(hash).into_iter().flatten() {
            if e.expires > now {
                match e.seed {
                    true => seeds.set(e.bloom),
                    false => peers.set(e.bloom),
                }
            }
        }
        (seeds, peers)
    }

    /// Up to `n` stored info-hashes, a random subset (BEP 51).
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Vec<InfoHash> {
        let total = self.by_hash.len();
        if total <= n {
            return self.by_hash.keys().copied().collect();
        }
        let start = rng.below(total as u64) as usize;
        self.by_hash
            .keys()
            .cycle()
            .skip(start)
            .take(n)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([20, 0, 0, 1], p))
    }

    #[test]
    fn expiry_caps_and_samples() {
        let mut rng = Rng::new(Seed::from_u64(1));
        let mut s = PeerStore::new(3, 5);
        let t0 = Instant::ZERO;
        let h = InfoHash([1; 20]);
        for p in 1..=4 {
            assert!(s.add(t0 + Duration::from_secs(u64::from(p)), h, addr(p), p == 4));
        }
        let got = s.get(t0, &h, 10, false, &mut rng);
        assert_eq!(got.len(), 3, "per-hash cap, oldest out");
        assert!(!got.contains(&addr(1)));
        // BEP 33: seeds left out on request, counted apart.
        assert_eq!(s.get(t0, &h, 10, true, &mut rng).len(), 2);
        let (seeds, peers) = s.blooms(t0, &h);
        // One IP for all: one address in each filter.
        assert_eq!((seeds.count(), peers.count()), (1, 1));
        assert!(s.add(t0, InfoHash([2; 20]), addr(9), false));
        assert!(s.add(t0, InfoHash([3; 20]), addr(9), false));
        assert!(!s.add(t0, InfoHash([4; 20]), addr(9), false), "overall cap");
        assert_eq!(s.sample(10, &mut rng).len(), 3);
        s.expire(t0 + PEER_TTL + Duration::from_secs(10));
        assert!(s.is_empty());
    }
}
