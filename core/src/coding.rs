//! The checked cursor every decoder reads through.
//!
//! Modelled on `Reader` in rustls's `msgs/codec.rs`: every read states how
//! many bytes it wants and gets either exactly those (borrowed, no copy) or a
//! [`DecodeError`] carrying the offset and what was being read. A length
//! prefix is compared with what is left *before* anything is sliced or
//! allocated.

use crate::error::{DecodeError, DecodeErrorKind};

/// A cursor over borrowed input that never reads past the end.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Added to positions in errors, so a sub-reader reports offsets in the
    /// outer input.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Offset of the next byte, counted from the start of the outermost input.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The next byte, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// An error of `kind` at the current offset.
    pub fn error(&self, kind: DecodeErrorKind, context: &'static str) -> DecodeError {
        DecodeError::new(kind, self.offset(), context)
    }

    /// Consumes exactly `n` bytes, or fails with `UnexpectedEnd` without
    /// consuming anything.
    pub fn take(&mut self, n: usize, context: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.left() {
            return Err(self.error(DecodeErrorKind::UnexpectedEnd, context));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Consumes one byte.
    pub fn u8(&mut self, context: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, context)?[0])
    }

    /// Consumes a big-endian `u16` (network order, as every BitTorrent
    /// binary format uses).
    pub fn be_u16(&mut self, context: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, context)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Consumes a big-endian `u32`.
    pub fn be_u32(&mut self, context: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, context)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Consumes a big-endian `u64`.
    pub fn be_u64(&mut self, context: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, context)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Consumes a fixed-size array (hashes, ids).
    pub fn array<const N: usize>(&mut self, context: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, context)?;
        let mut a = [0; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// Consumes `n` bytes and returns a reader over just those, for a
    /// length-prefixed part; offsets in its errors stay absolute.
    pub fn sub(&mut self, n: usize, context: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let buf = self.take(n, context)?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// Fails with `TrailingBytes` unless everything was read.
    pub fn expect_end(&self, context: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(DecodeErrorKind::TrailingBytes, context))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_stops_at_the_end() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 0, 3, 9]);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.be_u16("b").unwrap(), 2);
        assert_eq!(r.be_u32("c").unwrap(), 3);
        assert_eq!(r.offset(), 7);
        let e = r.be_u16("d").unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(e.offset(), 7);
        assert_eq!(r.left(), 1, "a failed read consumes nothing");
        assert_eq!(
            r.expect_end("e").unwrap_err().kind(),
            DecodeErrorKind::TrailingBytes
        );
    }

    #[test]
    fn sub_readers_report_absolute_offsets() {
        let mut r = Reader::new(b"xxabcd");
        r.take(2, "skip").unwrap();
        let mut s = r.sub(3, "part").unwrap();
        assert_eq!(s.array::<2>("two").unwrap(), *b"ab");
        let e = s.be_u16("past").unwrap_err();
        assert_eq!(e.offset(), 4);
        assert_eq!(r.rest(), b"d");
        assert!(r.sub(2, "too long").is_err());
    }

    #[test]
    fn huge_lengths_are_refused_before_slicing() {
        let mut r = Reader::new(b"abc");
        assert!(r.take(usize::MAX, "huge").is_err());
        assert_eq!(
            r.be_u64("short").unwrap_err().kind(),
            DecodeErrorKind::UnexpectedEnd
        );
    }
}
