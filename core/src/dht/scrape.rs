//! BEP 33 (DHT scrapes): a node answering `get_peers` with `scrape=1`
//! adds two Bloom filters of the addresses it stores for the torrent,
//! `BFsd` (seeds) and `BFpe` (the others). Filters from many nodes are
//! merged by OR, and the number of addresses behind a filter is estimated
//! from its empty bits, so a lookup counts a swarm without anyone holding
//! all of it.
//!
//! The filter is fixed by the BEP: 2,048 bits, two bits per IP address
//! (the first two little-endian 16-bit words of the SHA-1 of its 4 or 16
//! bytes), and the estimate `ln(c / m) / (k · ln(1 − 1/m))` with `c` the
//! zero bits (at most `m − 1`, and here at least 1: a filter of ones,
//! which a liar can send, estimates about 7,800, not infinity).
//!
//! One node stores a bounded number of peers per torrent, so a lookup
//! takes a node's filter only if it holds at most [`MAX_PER_ANSWER`]
//! addresses: a liar cannot claim a swarm of thousands alone.

use std::net::IpAddr;

use sha1::{Digest, Sha1};

/// Bits in a filter.
const M: usize = 256 * 8;
/// Bits set per address.
const K: f64 = 2.0;
/// Addresses one node's filter may stand for (libtorrent stores a few
/// hundred peers per torrent at most).
pub const MAX_PER_ANSWER: f64 = 500.0;

/// One BEP 33 filter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ScrapeBloom(pub [u8; 256]);

impl Default for ScrapeBloom {
    fn default() -> ScrapeBloom {
        ScrapeBloom([0; 256])
    }
}

impl std::fmt::Debug for ScrapeBloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScrapeBloom(~{:.0})", self.estimate())
    }
}

impl ScrapeBloom {
    /// A filter read from a message: exactly 256 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<ScrapeBloom> {
        Some(ScrapeBloom(b.try_into().ok()?))
    }

    /// The two bits an address sets (its IP only: ports do not count).
    /// A store computes them once per address, not once per scrape.
    pub fn bits_of(ip: IpAddr) -> [u16; 2] {
        let hash = match ip {
            IpAddr::V4(v4) => Sha1::digest(v4.octets()),
            IpAddr::V6(v6) => Sha1::digest(v6.octets()),
        };
        [0, 2].map(|i| ((u16::from(hash[i]) | u16::from(hash[i + 1]) << 8) as usize % M) as u16)
    }

    /// Sets an address's bits ([`bits_of`](ScrapeBloom::bits_of)).
    pub fn set(&mut self, bits: [u16; 2]) {
        for index in bits.map(usize::from) {
            self.0[index / 8] |= 1 << (index % 8);
        }
    }

    /// Adds an address.
    pub fn insert(&mut self, ip: IpAddr) {
        self.set(ScrapeBloom::bits_of(ip));
    }

    /// Adds every address of `other` (the union).
    pub fn merge(&mut self, other: &ScrapeBloom) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// How many addresses were added, estimated (BEP 33; an empty filter
    /// is none, though the BEP's formula says half of one).
    pub fn estimate(&self) -> f64 {
        let zeros: u32 = self.0.iter().map(|b| b.count_zeros()).sum();
        if zeros == M as u32 {
            return 0.0;
        }
        let c = f64::from(zeros.clamp(1, M as u32 - 1));
        let m = M as f64;
        (c / m).ln() / (K * (1.0 - 1.0 / m).ln())
    }

    /// Whether one node's answer may carry this filter (see the module
    /// documentation).
    pub fn is_plausible(&self) -> bool {
        self.estimate() <= MAX_PER_ANSWER
    }

    /// [`estimate`](ScrapeBloom::estimate) rounded to a count.
    pub fn count(&self) -> u32 {
        self.estimate().round().clamp(0.0, f64::from(u32::MAX)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The BEP's test vectors: 192.0.2.0–192.0.2.255 estimate 257.854;
    /// with 2001:db8::–2001:db8::3e7 too, 1,224.93.
    #[test]
    fn the_bep_test_vectors() {
        let mut bloom = ScrapeBloom::default();
        for i in 0..=255u8 {
            bloom.insert(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)));
        }
        let e = bloom.estimate();
        assert!((e - 257.854).abs() < 0.001, "{e}");
        for i in 0..0x3e8u128 {
            bloom.insert(IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i)));
        }
        let e = bloom.estimate();
        assert!((e - 1224.93).abs() < 0.001, "{e}");
    }

    #[test]
    fn union_and_small_counts() {
        let mut a = ScrapeBloom::default();
        assert_eq!(a.count(), 0);
        assert!(a.is_empty());
        let mut b = ScrapeBloom::default();
        for i in 0..10u8 {
            a.insert(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)));
            b.insert(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)));
        }
        // The same address twice counts once.
        a.insert(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(a.count(), 10);
        a.merge(&b);
        assert_eq!(a.count(), 20);
        assert_eq!(ScrapeBloom::from_bytes(&a.0), Some(a));
        assert_eq!(ScrapeBloom::from_bytes(&[0; 255]), None);
        // A filter of ones: a bounded estimate, and no node's answer.
        let full = ScrapeBloom([0xff; 256]);
        assert!(full.estimate().is_finite() && full.count() < 8000);
        assert!(!full.is_plausible() && a.is_plausible());
    }
}
