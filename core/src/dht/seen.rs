//! `SeenFilter`: "have we met this info-hash lately?" in flat memory, for
//! walks that run for days (the crawler meets millions of hashes).
//!
//! Two Bloom filters, a young one and an old one. A hash is seen if either
//! holds it; it is added to the young one. When the young one holds its
//! capacity it becomes the old one and a fresh young one starts, so memory
//! stays at two filters' worth whatever the walk meets, and a hash not met
//! for two generations is new again (the index behind the crawler keeps
//! what it already stored; this only keeps the same hash from being
//! fetched twice in a row).
//!
//! The bit positions are a keyed hash of the info-hash: info-hashes come
//! from strangers, who could otherwise pick hashes that set the bits of
//! torrents they want hidden. Two 64-bit halves of SHA-1(key ‖ hash) give
//! every position (Kirsch and Mitzenmacher's double hashing).

use sha1::{Digest, Sha1};

use crate::metainfo::InfoHash;

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
    young: Bloom,
    old: Bloom,
}

impl SeenFilter {
    /// A filter that remembers at least `capacity` hashes (between
    /// `capacity` and twice that), keyed by `key` (secret: from the
    /// node's seed).
    pub fn new(capacity: usize, key: [u8; 16]) -> SeenFilter {
        let capacity = capacity.max(1);
        SeenFilter {
            key,
            capacity,
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

    /// Adds `hash`; `true` if it was not seen lately.
    pub fn insert(&mut self, hash: &InfoHash) -> bool {
        let p = self.probes(hash);
        if self.young.contains(&p) || self.old.contains(&p) {
            return false;
        }
        if self.young.entries >= self.capacity {
            // Reuse the old filter's memory for the new generation.
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
        self.young.insert(&p);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u32) -> InfoHash {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&i.to_be_bytes());
        InfoHash(h)
    }

    #[test]
    fn remembers_what_it_was_given_and_few_others() {
        let mut f = SeenFilter::new(10_000, [7; 16]);
        // A Bloom filter may take a new hash for a seen one (about 0.1 %).
        let new = (0..10_000).filter(|&i| f.insert(&hash(i))).count();
        assert!(new > 9_950, "{new} of 10,000 new");
        assert!((0..10_000).all(|i| f.contains(&hash(i))));
        let false_positives = (10_000..110_000).filter(|&i| f.contains(&hash(i))).count();
        // About 0.1 % of 100,000.
        assert!(false_positives < 300, "{false_positives} false positives");
        assert!(!f.insert(&hash(5)));
    }

    #[test]
    fn memory_is_flat_and_old_generations_are_forgotten() {
        let mut f = SeenFilter::new(1_000, [1; 16]);
        let memory = f.memory();
        for i in 0..100_000 {
            f.insert(&hash(i));
        }
        assert_eq!(f.memory(), memory);
        // The last generation is remembered, the first long gone.
        assert!((99_000..100_000).all(|i| f.contains(&hash(i))));
        let early = (0..1_000).filter(|&i| f.contains(&hash(i))).count();
        assert!(early < 20, "{early} of the first generation still seen");
    }

    #[test]
    fn the_key_changes_the_positions() {
        let a = SeenFilter::new(100, [1; 16]);
        let b = SeenFilter::new(100, [2; 16]);
        assert_ne!(a.probes(&hash(1)), b.probes(&hash(1)));
    }
}
