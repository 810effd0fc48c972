//! A set of pieces, one bit each, in the wire's order (BEP 3: "the high bit
//! in the first byte corresponds to piece index 0").

use crate::metainfo::PieceIndex;

/// A fixed-size set of piece indices.
#[derive(Clone, PartialEq, Eq, Debug, Default, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; (len as usize).div_ceil(8)],
            len,
            ones: 0,
        }
    }

    /// The full set over `len` pieces.
    pub fn full(len: u32) -> Bitfield {
        let mut b = Bitfield::new(len);
        for byte in &mut b.bytes {
            *byte = 0xff;
        }
        if !len.is_multiple_of(8) {
            if let Some(last) = b.bytes.last_mut() {
                *last = 0xff << (8 - len % 8);
            }
        }
        b.ones = len;
        b
    }

    /// From wire bytes; `None` if the size is wrong for `len` pieces or a
    /// spare bit is set.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Option<Bitfield> {
        if bytes.len() != (len as usize).div_ceil(8) {
            return None;
        }
        if !len.is_multiple_of(8) && bytes.last().is_some_and(|b| b & (0xff >> (len % 8)) != 0) {
            return None;
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Some(Bitfield {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the set ranges over no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pieces in the set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Whether every piece is in the set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Whether `piece` is in the set (false if out of range).
    pub fn get(&self, piece: PieceIndex) -> bool {
        let i = piece.0 as usize;
        self.bytes
            .get(i / 8)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    /// Adds `piece`; returns whether it was newly added (false if it was
    /// there already or is out of range).
    pub fn set(&mut self, piece: PieceIndex) -> bool {
        let i = piece.0 as usize;
        match self.bytes.get_mut(i / 8) {
            Some(b) if *b & (0x80 >> (i % 8)) == 0 && piece.0 < self.len => {
                *b |= 0x80 >> (i % 8);
                self.ones += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes `piece`; returns whether it was there.
    pub fn clear(&mut self, piece: PieceIndex) -> bool {
        let i = piece.0 as usize;
        match self.bytes.get_mut(i / 8) {
            Some(b) if *b & (0x80 >> (i % 8)) != 0 => {
                *b &= !(0x80 >> (i % 8));
                self.ones -= 1;
                true
            }
            _ => false,
        }
    }

    /// The pieces in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .flat_map(|(i, b)| {
                (0..8)
                    .filter(move |bit| b & (0x80 >> bit) != 0)
                    .map(move |bit| PieceIndex((i * 8 + bit) as u32))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_order_and_counts() {
        let mut b = Bitfield::new(10);
        assert!(b.set(PieceIndex(0)));
        assert!(b.set(PieceIndex(9)));
        assert!(!b.set(PieceIndex(9)));
        assert!(!b.set(PieceIndex(10)), "out of range");
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![PieceIndex(0), PieceIndex(9)]
        );
        assert!(b.clear(PieceIndex(0)));
        assert!(!b.get(PieceIndex(0)));
        assert_eq!(Bitfield::full(10).as_bytes(), &[0xff, 0xc0]);
        assert!(Bitfield::full(16).is_full());
    }

    #[test]
    fn from_bytes_checks_size_and_spare_bits() {
        assert!(Bitfield::from_bytes(&[0xff, 0xc0], 10).is_some());
        assert!(Bitfield::from_bytes(&[0xff, 0xe0], 10).is_none());
        assert!(Bitfield::from_bytes(&[0xff], 10).is_none());
        assert_eq!(Bitfield::from_bytes(&[0xf0], 8).unwrap().count(), 4);
    }
}
