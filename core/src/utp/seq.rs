//! uTP sequence numbers: 16 bits that wrap (BEP 29: "seq_nr … the sequence
//! number of this packet", "ack_nr … the sequence number the sender of the
//! packet last received in the other direction").
//!
//! Comparisons are modular, as in TCP: `a` is before `b` when `b - a`,
//! taken mod 2¹⁶, lies in the lower half of the space. Both ends keep far
//! fewer than 2¹⁵ packets outstanding, so the order is never ambiguous.

use std::fmt;

/// A 16-bit wrapping uTP sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SeqNr(pub u16);

impl SeqNr {
    /// The number after this one.
    #[must_use]
    pub const fn next(self) -> SeqNr {
        SeqNr(self.0.wrapping_add(1))
    }

    /// The number before this one.
    #[must_use]
    pub const fn prev(self) -> SeqNr {
        SeqNr(self.0.wrapping_sub(1))
    }

    /// This number plus `n`, wrapping.
    #[must_use]
    pub const fn plus(self, n: u16) -> SeqNr {
        SeqNr(self.0.wrapping_add(n))
    }

    /// How far `self` is ahead of `earlier`, mod 2¹⁶.
    pub const fn distance_from(self, earlier: SeqNr) -> u16 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Whether `self` comes strictly before `other` in modular order.
    pub const fn is_before(self, other: SeqNr) -> bool {
        let d = other.0.wrapping_sub(self.0);
        d != 0 && d < 0x8000
    }
}

impl fmt::Display for SeqNr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_wraps_around() {
        assert!(SeqNr(1).is_before(SeqNr(2)));
        assert!(!SeqNr(2).is_before(SeqNr(1)));
        assert!(!SeqNr(5).is_before(SeqNr(5)));
        assert!(SeqNr(0xfffe).is_before(SeqNr(3)), "wraps");
        assert_eq!(SeqNr(0xffff).next(), SeqNr(0));
        assert_eq!(SeqNr(0).prev(), SeqNr(0xffff));
        assert_eq!(SeqNr(2).distance_from(SeqNr(0xfffe)), 4);
        assert_eq!(SeqNr(0xfff0).plus(0x20), SeqNr(0x10));
    }
}
