//! The handshake (BEP 3): `<19>"BitTorrent protocol"<8 reserved><20
//! info-hash><20 peer id>`.

use std::fmt;

use crate::coding::Reader;
use crate::error::{DecodeError, DecodeErrorKind, PeerError};
use crate::metainfo::InfoHash;

/// The protocol string, after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Length of a whole handshake.
pub const HANDSHAKE_LEN: usize = 68;

/// A peer's 20-byte id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub [u8; 20]);

impl fmt::Debug for PeerId {
    /// Printable bytes as text (client prefixes like `-BT0100-`), the rest
    /// as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerId(")?;
        for &b in &self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str(")")
    }
}

/// The 8 reserved handshake bytes: one bit per extension.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// BEP 5: "the last bit of the 8 reserved bytes": we run a DHT node and
    /// accept `port` messages.
    pub const DHT: Reserved = Reserved([0, 0, 0, 0, 0, 0, 0, 0x01]);
    /// BEP 6: "the third least significant bit in the 8th reserved byte":
    /// the fast extension.
    pub const FAST: Reserved = Reserved([0, 0, 0, 0, 0, 0, 0, 0x04]);
    /// BEP 10: "the 20th bit from the right (reserved_byte[5] & 0x10)":
    /// the extension protocol.
    pub const EXTENSION: Reserved = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0]);

    /// BEP 52: "the 4th most significant bit in the last byte of the
    /// reserved bitfield": we also know the torrent by its v2 info-hash,
    /// and the other side may answer with that one to make the connection
    /// a v2 one.
    pub const V2: Reserved = Reserved([0, 0, 0, 0, 0, 0, 0, 0x10]);

    /// No extensions.
    pub const NONE: Reserved = Reserved([0; 8]);

    /// The union of two sets of bits.
    pub const fn with(self, other: Reserved) -> Reserved {
        let mut out = self.0;
        let mut i = 0;
        while i < 8 {
            out[i] |= other.0[i];
            i += 1;
        }
        Reserved(out)
    }

    /// Whether every bit of `flag` is set.
    pub fn supports(self, flag: Reserved) -> bool {
        self.0.iter().zip(flag.0).all(|(a, b)| a & b == b)
    }
}

/// A handshake, either direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Handshake {
    /// Extension bits.
    pub reserved: Reserved,
    /// The torrent the connection is for.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Appends the 68 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(PROTOCOL.len() as u8);
        out.extend_from_slice(PROTOCOL);
        out.extend_from_slice(&self.reserved.0);
        out.extend_from_slice(&self.info_hash.0);
        out.extend_from_slice(&self.peer_id.0);
    }

    /// Checks what is known so far of an incoming handshake, so a
    /// connection that is not BitTorrent fails at its first wrong byte
    /// rather than after 68.
    pub fn check_prefix(bytes: &[u8]) -> Result<(), DecodeError> {
        let n = bytes.len().min(1 + PROTOCOL.len());
        let mut expected = [0u8; 20];
        expected[0] = PROTOCOL.len() as u8;
        expected[1..].copy_from_slice(PROTOCOL);
        match bytes[..n].iter().zip(expected).position(|(a, b)| *a != b) {
            Some(at) => Err(DecodeError::new(
                DecodeErrorKind::UnexpectedByte,
                at,
                "handshake protocol string",
            )),
            None => Ok(()),
        }
    }

    /// Decodes a whole handshake from exactly [`HANDSHAKE_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Handshake, DecodeError> {
        Handshake::check_prefix(bytes)?;
        let mut r = Reader::new(bytes);
        r.take(1 + PROTOCOL.len(), "handshake protocol string")?;
        let reserved = Reserved(r.array("handshake reserved bytes")?);
        let info_hash = InfoHash(r.array("handshake info-hash")?);
        let peer_id = PeerId(r.array("handshake peer id")?);
        r.expect_end("handshake")?;
        Ok(Handshake {
            reserved,
            info_hash,
            peer_id,
        })
    }

    /// Checks a remote handshake against what we expect: the torrent we
    /// asked for (or serve) under one of its names (a hybrid's v1 and
    /// truncated v2 info-hashes, BEP 52), and not our own peer id (a
    /// connection to ourselves, e.g. through our own announced address).
    pub fn validate(&self, expected: &[InfoHash], our_id: PeerId) -> Result<(), PeerError> {
        if !expected.contains(&self.info_hash) {
            return Err(PeerError::WrongInfoHash);
        }
        if self.peer_id == our_id {
            return Err(PeerError::ConnectedToSelf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: Reserved::DHT.with(Reserved::FAST).with(Reserved::EXTENSION),
            info_hash: InfoHash([0xaa; 20]),
            peer_id: PeerId(*b"-BT0001-abcdefghijkl"),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let h = sample();
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out.len(), HANDSHAKE_LEN);
        assert_eq!(&out[..20], b"\x13BitTorrent protocol");
        assert_eq!(out[25], 0x10, "BEP 10 bit");
        assert_eq!(out[27], 0x05, "BEP 5 and BEP 6 bits");
        assert_eq!(Handshake::decode(&out).unwrap(), h);
        assert!(h.reserved.supports(Reserved::FAST));
        assert!(!Reserved::NONE.supports(Reserved::DHT));
    }

    #[test]
    fn wrong_protocol_fails_at_the_first_byte() {
        assert!(Handshake::check_prefix(b"\x13Bit").is_ok());
        let e = Handshake::check_prefix(b"GET / HTTP/1.1").unwrap_err();
        assert_eq!(e.offset(), 0);
        let e = Handshake::check_prefix(b"\x13BitTorrent pro_ocol").unwrap_err();
        assert_eq!(e.offset(), 15);
        let mut out = Vec::new();
        sample().encode(&mut out);
        assert!(Handshake::decode(&out[..67]).is_err());
    }

    #[test]
    fn validation_refuses_wrong_torrent_and_self() {
        let h = sample();
        assert_eq!(h.validate(&[InfoHash([0xaa; 20])], PeerId([0; 20])), Ok(()));
        assert_eq!(
            h.validate(&[InfoHash([0xbb; 20])], PeerId([0; 20])),
            Err(PeerError::WrongInfoHash)
        );
        // A hybrid's other name (BEP 52) is the same torrent.
        let names = [InfoHash([0xbb; 20]), InfoHash([0xaa; 20])];
        assert_eq!(h.validate(&names, PeerId([0; 20])), Ok(()));
        assert_eq!(
            h.validate(&[InfoHash([0xaa; 20])], h.peer_id),
            Err(PeerError::ConnectedToSelf)
        );
    }
}
