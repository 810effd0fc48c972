//! `SeenFilter`: "have we met this info-hash lately?" in flat memory, for
//! walks that run for days (the crawler meets millions of hashes).
//!
//! Two Bloom filters, a young one and an old one. A hash is seen if either
//! holds it; it is added to the young one. When the young one holds its
//! capacity, or has lived a generation's time, it becomes the old one and a
//! fresh young one starts. So memory stays at two filters' worth whatever
//! the walk meets, and a hash is new again after one to two generations:
//! the index behind the crawler keeps what it already stored (a hash met
//! again only refreshes when it was last seen) and fetches again what it
//! could not fetch before (nobody served the metadata then); this only
//! keeps the same hash from being reported over and over.
//!
//! The bit positions are a keyed hash of the info-hash: info-hashes come
//! from strangers, who could otherwise pick hashes that set the bits of
//! torrents they want hidden. Two 64-bit halves of SHA-1(key ‖ hash) give
//! every position (Kirsch and Mitzenmacher's double hashing).

use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::metainfo::InfoHash;
use crate::time::Instant;

/// Bits per entry for a false-positive rate of about 0.1 % per filter
/// (`-ln(0.001) / ln(2)²` ≈ 14.4).
const BITS_PER_ENTRY: u64 = 15;
/// Positions set per entry (`ln 2 × BITS_PER_ENTRY` ≈ 10).
const PROBES: u64 = 10;

/// One Bloom filter of a fixed size.
#[derive(Clone, Debug)]
struct Bloom {
    words: Vec<u64>,
    entries: usize,
}

impl Bloom {
    fn new(capacity: usize) -> Bloom {
        let bits = (capacity as u64)
            .max(1)
            .saturating_mul(BITS_PER_ENTRY)
            .max(64);
        Bloom {
            words: vec![0; bits.div_ceil(64) as usize],
            entries: 0,
        }
    }

    fn bits(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    fn contains(&self, probes: &[u64; PROBES as usize]) -> bool {
        probes.iter().all(|&p| {
            let bit = p % self.bits();
            self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
    }

    fn insert(&mut self, probes: &[u64; PROBES as usize]) {
        let bits = self.bits();
        for &p in probes {
            let bit = p % bits;
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.entries += 1;
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct SeenFilter {
    key: [u8; 16],
    capacity: usize,
    generation: Duration,
    /// When the young filter started.
    young_since: Instant,
    young: Bloom,
    old: Bloom,
}

impl SeenFilter {
    /// A filter, from `now`, that remembers at least `capacity` hashes met
    /// within the last `generation` (up to twice as many, as long ago),
    /// keyed by `key` (secret: from the node's seed). A zero `generation`
    /// ends generations by count only.
    pub fn new(now: Instant, capacity: usize, generation: Duration, key: [u8; 16]) -> SeenFilter {
        let capacity = capacity.max(1);
        SeenFilter {
            key,
            capacity,
            generation,
            young_since: now,
            young: Bloom::new(capacity),
            old: Bloom::new(capacity),
        }
    }

    /// Bytes of memory the filter holds (constant).
    pub fn memory(&self) -> usize {
        (self.young.words.len() + self.old.words.len()) * 8
    }

    fn probes(&self, hash: &InfoHash) -> [u64; PROBES as usize] {
        let mut h = Sha1::new();
        h.update(self.key);
        h.update(hash.0);
        let d = h.finalize();
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&d[..8]);
        b.copy_from_slice(&d[8..16]);
        let (h1, h2) = (u64::from_le_bytes(a), u64::from_le_bytes(b) | 1);
        std::array::from_fn(|i| h1.wrapping_add((i as u64).wrapping_mul(h2)))
    }

    /// Whether `hash` was inserted lately (false positives at about 0.1 %
    /// per generation; no false negatives within a generation's span).
    pub fn contains(&self, hash: &InfoHash) -> bool {
        let p = self.probes(hash);
        self.young.contains(&p) || self.old.contains(&p)
    }

    /// Adds `hash` at `now`; `true` if it was not seen lately.
    pub fn insert(&mut self, now: Instant, hash: &InfoHash) -> bool {
        self.age(now);
        let p = self.probes(hash);
        if self.young.contains(&p) || self.old.contains(&p) {
            return false;
        }
        if self.young.entries >= self.capacity {
            // Full early: the next generation's time starts now, so the
            // old one is kept a whole generation.
            self.next_generation();
            self.young_since = now;
        }
        self.young.insert(&p);
        true
    }

    /// Ends the generations whose time is over (they start every
    /// `generation` from the first): the young one after one, both after
    /// two (a quiet spell).
    fn age(&mut self, now: Instant) {
        let Some(over) = (now - self.young_since)
            .as_nanos()
            .checked_div(self.generation.as_nanos())
        else {
            return;
        };
        for _ in 0..over.min(2) {
            self.next_generation();
        }
        let over = u32::try_from(over).unwrap_or(u32::MAX);
        self.young_since += self.generation.saturating_mul(over);
    }

    /// The young filter becomes the old one; the old one's memory is
    /// cleared for the new young one.
    fn next_generation(&mut self) {
        let mut fresh = std::mem::replace(
            &mut self.old,
            Bloom {
                words: Vec::new(),
                entries: 0,
            },
        );
        fresh.words.fill(0);
        fresh.entries = 0;
        self.old = std::mem::replace(&mut self.young, fresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(minutes: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(60 * minutes)
    }

    fn hash(i: u32) -> InfoHash {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&i.to_be_bytes());
        InfoHash(h)
    }

    #[test]
    fn remembers_what_it_was_given_and_few_others() {
        let mut f = SeenFilter::new(Instant::ZERO, 10_000, HOUR, [7; 16]);
        // A Bloom filter may take a new hash for a seen one (about 0.1 %).
        let new = (0..10_000)
            .filter(|&i| f.insert(Instant::ZERO, &hash(i)))
            .count();
        assert!(new > 9_950, "{new} of 10,000 new");
        assert!((0..10_000).all(|i| f.contains(&hash(i))));
        let false_positives = (10_000..110_000).filter(|&i| f.contains(&hash(i))).count();
        // About 0.1 % of 100,000.
        assert!(false_positives < 300, "{false_positives} false positives");
        assert!(!f.insert(Instant::ZERO, &hash(5)));
    }

    #[test]
    fn memory_is_flat_and_old_generations_are_forgotten() {
        let mut f = SeenFilter::new(Instant::ZERO, 1_000, HOUR, [1; 16]);
        let memory = f.memory();
        for i in 0..100_000 {
            f.insert(Instant::ZERO, &hash(i));
        }
        assert_eq!(f.memory(), memory);
        // The last generation is remembered, the first long gone.
        assert!((99_000..100_000).all(|i| f.contains(&hash(i))));
        let early = (0..1_000).filter(|&i| f.contains(&hash(i))).count();
        assert!(early < 20, "{early} of the first generation still seen");
    }

    #[test]
    fn the_key_changes_the_positions() {
        let a = SeenFilter::new(Instant::ZERO, 100, HOUR, [1; 16]);
        let b = SeenFilter::new(Instant::ZERO, 100, HOUR, [2; 16]);
        assert_ne!(a.probes(&hash(1)), b.probes(&hash(1)));
    }

    #[test]
    fn a_hash_is_new_again_after_one_to_two_generations() {
        let mut f = SeenFilter::new(at(0), 1_000, HOUR, [3; 16]);
        assert!(f.insert(at(0), &hash(1)));
        assert!(f.insert(at(50), &hash(2)));
        // Within its generation and the next, a hash is not new.
        assert!(!f.insert(at(59), &hash(1)));
        assert!(!f.insert(at(70), &hash(1)));
        assert!(!f.insert(at(119), &hash(2)));
        // The generation of 0:00–1:00 is forgotten at 2:00 (generations
        // keep their hours however late the hashes come).
        assert!(f.insert(at(121), &hash(1)));
        // A quiet spell of two generations forgets everything.
        assert!(f.insert(at(130), &hash(3)));
        assert!(f.insert(at(400), &hash(3)));
    }
}
