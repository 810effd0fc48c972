//! The uTP packet: a 20-byte header, a chain of extensions, a payload
//! (BEP 29, "header format").
//!
//! ```text
//! 0       4       8               16              24              32
//! +-------+-------+---------------+---------------+---------------+
//! | type  | ver   | extension     | connection_id                 |
//! +-------+-------+---------------+---------------+---------------+
//! | timestamp_microseconds                                        |
//! | timestamp_difference_microseconds                             |
//! | wnd_size                                                      |
//! | seq_nr                        | ack_nr                        |
//! +---------------+---------------+---------------+---------------+
//! ```
//!
//! Each extension is `next extension type (1 byte)`, `len (1 byte)`, then
//! `len` bytes. Type 1 is the selective ACK; others (type 2, "extension
//! bits") are skipped, as the BEP lets a receiver do. Decoding borrows the
//! payload, never allocates and never panics.

use std::fmt;

use super::seq::SeqNr;
use crate::coding::Reader;
use crate::error::{DecodeError, DecodeErrorKind};

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 20;

/// BEP 29: "The current version is 1."
pub const VERSION: u8 = 1;

/// Extensions a packet may chain before we refuse it. BEP 29 defines two;
/// a long chain is an attacker making us loop.
pub const MAX_EXTENSIONS: usize = 8;

/// Bytes of selective-ACK bitmask we keep (256 packets past `ack_nr + 1`).
/// Longer masks are legal and are truncated: what lies beyond is only a hint.
pub const MAX_SACK_BYTES: usize = 32;

/// Bytes a selective-ACK extension of the largest size we send adds.
pub const MAX_SACK_EXTENSION_LEN: usize = 2 + MAX_SACK_BYTES;

const EXTENSION_NONE: u8 = 0;
const EXTENSION_SELECTIVE_ACK: u8 = 1;

/// The packet's role (BEP 29, "type").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `ST_DATA` (0): carries payload and uses a sequence number.
    Data = 0,
    /// `ST_FIN` (1): the last sequence number the sender will use.
    Fin = 1,
    /// `ST_STATE` (2): an ACK with no payload; uses no sequence number.
    State = 2,
    /// `ST_RESET` (3): the connection is forcibly closed.
    Reset = 3,
    /// `ST_SYN` (4): opens a connection.
    Syn = 4,
}

impl PacketType {
    fn from_nibble(n: u8) -> Option<PacketType> {
        Some(match n {
            0 => PacketType::Data,
            1 => PacketType::Fin,
            2 => PacketType::State,
            3 => PacketType::Reset,
            4 => PacketType::Syn,
            _ => return None,
        })
    }
}

/// A selective ACK: which packets after `ack_nr + 1` were received.
///
/// BEP 29: "The first bit in the mask therefore represents ack_nr + 2"
/// (`ack_nr + 1` is assumed lost); bit `i` is bit `i % 8` of byte `i / 8`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SelectiveAck {
    mask: [u8; MAX_SACK_BYTES],
    len: u8,
}

impl SelectiveAck {
    /// A mask of `len` bytes, all clear; `len` is rounded up to a multiple
    /// of 4 and clamped to `4..=MAX_SACK_BYTES`.
    pub fn new(len: usize) -> SelectiveAck {
        let len = len.div_ceil(4).clamp(1, MAX_SACK_BYTES / 4) * 4;
        SelectiveAck {
            mask: [0; MAX_SACK_BYTES],
            len: len as u8,
        }
    }

    /// Packets the mask covers.
    pub fn bits(&self) -> usize {
        usize::from(self.len) * 8
    }

    /// Marks `ack_nr + 2 + i` received (ignored past the mask).
    pub fn set(&mut self, i: usize) {
        if i < self.bits() {
            self.mask[i / 8] |= 1 << (i % 8);
        }
    }

    /// Whether `ack_nr + 2 + i` was received.
    pub fn is_set(&self, i: usize) -> bool {
        i < self.bits() && self.mask[i / 8] & (1 << (i % 8)) != 0
    }

    /// The mask bytes as they go on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.mask[..usize::from(self.len)]
    }
}

impl fmt::Debug for SelectiveAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SelectiveAck(")?;
        for b in self.as_bytes() {
            write!(f, "{b:08b} ")?;
        }
        f.write_str(")")
    }
}

/// One uTP packet, its payload borrowed from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// What the packet does.
    pub kind: PacketType,
    /// The connection it belongs to, as the receiver knows it.
    pub conn_id: u16,
    /// The sender's clock in microseconds when it sent the packet.
    pub timestamp_us: u32,
    /// The sender's last measured one-way delay of our packets, in µs.
    pub timestamp_diff_us: u32,
    /// Bytes the sender can still receive (its advertised window).
    pub wnd_size: u32,
    /// This packet's sequence number.
    pub seq_nr: SeqNr,
    /// The last sequence number the sender received in order from us.
    pub ack_nr: SeqNr,
    /// Packets received past `ack_nr + 1`, if any.
    pub selective_ack: Option<SelectiveAck>,
    /// The data.
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Decodes one datagram.
    ///
    /// Refuses a version other than 1, an unknown type, a truncated header
    /// or extension, an over-long extension chain, and an empty selective
    /// ACK. BEP 29 says "the len field of the extension header must be at
    /// least 4 and in multiples of 4", but libtorrent sends masks of any
    /// length (`(span + 7) / 8` bytes), so a shorter or odd one is accepted
    /// and padded with zeros (packets not reported received).
    pub fn decode(datagram: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let mut r = Reader::new(datagram);
        let type_ver = r.u8("uTP type and version")?;
        if type_ver & 0x0f != VERSION {
            return Err(DecodeError::new(
                DecodeErrorKind::OutOfRange,
                0,
                "uTP version",
            ));
        }
        let kind = PacketType::from_nibble(type_ver >> 4).ok_or(DecodeError::new(
            DecodeErrorKind::OutOfRange,
            0,
            "uTP packet type",
        ))?;
        let mut extension = r.u8("uTP first extension")?;
        let conn_id = r.be_u16("uTP connection id")?;
        let timestamp_us = r.be_u32("uTP timestamp")?;
        let timestamp_diff_us = r.be_u32("uTP timestamp difference")?;
        let wnd_size = r.be_u32("uTP window size")?;
        let seq_nr = SeqNr(r.be_u16("uTP seq_nr")?);
        let ack_nr = SeqNr(r.be_u16("uTP ack_nr")?);
        let mut selective_ack = None;
        let mut chained = 0;
        while extension != EXTENSION_NONE {
            chained += 1;
            if chained > MAX_EXTENSIONS {
                return Err(r.error(DecodeErrorKind::ItemLimit, "uTP extension chain"));
            }
            let next = r.u8("uTP next extension")?;
            let len = usize::from(r.u8("uTP extension length")?);
            let body = r.take(len, "uTP extension body")?;
            if extension == EXTENSION_SELECTIVE_ACK {
                if len == 0 {
                    return Err(r.error(DecodeErrorKind::InvalidLength, "uTP selective ACK"));
                }
                let kept = len.min(MAX_SACK_BYTES);
                let mut sack = SelectiveAck::new(kept);
                sack.mask[..kept].copy_from_slice(&body[..kept]);
                selective_ack = Some(sack);
            }
            extension = next;
        }
        Ok(Packet {
            kind,
            conn_id,
            timestamp_us,
            timestamp_diff_us,
            wnd_size,
            seq_nr,
            ack_nr,
            selective_ack,
            payload: r.rest(),
        })
    }

    /// Appends the encoded packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(((self.kind as u8) << 4) | VERSION);
        out.push(if self.selective_ack.is_some() {
            EXTENSION_SELECTIVE_ACK
        } else {
            EXTENSION_NONE
        });
        out.extend_from_slice(&self.conn_id.to_be_bytes());
        out.extend_from_slice(&self.timestamp_us.to_be_bytes());
        out.extend_from_slice(&self.timestamp_diff_us.to_be_bytes());
        out.extend_from_slice(&self.wnd_size.to_be_bytes());
        out.extend_from_slice(&self.seq_nr.0.to_be_bytes());
        out.extend_from_slice(&self.ack_nr.0.to_be_bytes());
        if let Some(sack) = &self.selective_ack {
            out.push(EXTENSION_NONE);
            out.push(sack.len);
            out.extend_from_slice(sack.as_bytes());
        }
        out.extend_from_slice(self.payload);
    }

    /// The packet as a new datagram.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Bytes [`encode`](Packet::encode) appends.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.selective_ack.map_or(0, |s| 2 + s.as_bytes().len()) + self.payload.len()
    }
}

/// Whether a datagram on the shared UDP socket is uTP rather than DHT
/// (bencoded, so it starts with `d`) or a UDP tracker packet (BEP 15: it
/// starts with a 64-bit connection id or a 32-bit action whose first byte
/// is 0).
///
/// A uTP packet starts with `type << 4 | 1` for a type in 0..=4, and is at
/// least a header long.
pub fn is_utp_datagram(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN
        && datagram[0] & 0x0f == VERSION
        && PacketType::from_nibble(datagram[0] >> 4).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Packet<'_> {
        let mut sack = SelectiveAck::new(4);
        sack.set(0);
        sack.set(9);
        Packet {
            kind: PacketType::Data,
            conn_id: 0xbeef,
            timestamp_us: 0x0102_0304,
            timestamp_diff_us: 77,
            wnd_size: 1 << 20,
            seq_nr: SeqNr(0xfffe),
            ack_nr: SeqNr(3),
            selective_ack: Some(sack),
            payload,
        }
    }

    #[test]
    fn round_trips_with_and_without_sack() {
        let p = sample(b"hello");
        let bytes = p.to_vec();
        assert_eq!(bytes.len(), p.encoded_len());
        assert_eq!(bytes[0], 0x01, "ST_DATA, version 1");
        assert_eq!(bytes[1], 1, "selective ACK follows");
        assert_eq!(Packet::decode(&bytes).unwrap(), p);
        let sack = p.selective_ack.unwrap();
        assert!(sack.is_set(0) && sack.is_set(9) && !sack.is_set(1));
        assert_eq!(sack.as_bytes(), &[0b0000_0001, 0b0000_0010, 0, 0]);

        let plain = Packet {
            kind: PacketType::Syn,
            selective_ack: None,
            ..sample(b"")
        };
        let bytes = plain.to_vec();
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(bytes[0], 0x41);
        assert_eq!(Packet::decode(&bytes).unwrap(), plain);
    }

    #[test]
    fn refuses_bad_versions_types_and_lengths() {
        let good = sample(b"x").to_vec();
        let kind = |b: &[u8]| Packet::decode(b).unwrap_err().kind();
        let mut v = good.clone();
        v[0] = 0x02;
        assert_eq!(kind(&v), DecodeErrorKind::OutOfRange, "version 2");
        v[0] = 0x51;
        assert_eq!(kind(&v), DecodeErrorKind::OutOfRange, "type 5");
        assert_eq!(kind(&good[..19]), DecodeErrorKind::UnexpectedEnd);
        assert_eq!(
            kind(&good[..23]),
            DecodeErrorKind::UnexpectedEnd,
            "cut SACK"
        );
        let mut v = good.clone();
        v[21] = 0;
        assert_eq!(kind(&v), DecodeErrorKind::InvalidLength, "empty SACK");
        let mut chain = sample(b"").to_vec()[..HEADER_LEN].to_vec();
        chain[1] = 2;
        for _ in 0..=MAX_EXTENSIONS {
            chain.extend_from_slice(&[2, 0]);
        }
        assert_eq!(kind(&chain), DecodeErrorKind::ItemLimit);
    }

    #[test]
    fn accepts_libtorrents_short_masks() {
        let mut v = sample(b"").to_vec()[..HEADER_LEN].to_vec();
        v[1] = 1;
        v.extend_from_slice(&[0, 3, 0b1000_0001, 0, 0b0000_0100]);
        let sack = Packet::decode(&v).unwrap().selective_ack.unwrap();
        assert_eq!(sack.as_bytes(), &[0b1000_0001, 0, 0b0000_0100, 0]);
        assert!(sack.is_set(0) && sack.is_set(7) && sack.is_set(18) && !sack.is_set(24));
    }

    #[test]
    fn skips_unknown_extensions_and_truncates_long_masks() {
        let mut v = sample(b"").to_vec()[..HEADER_LEN].to_vec();
        v[1] = 2; // extension bits first
        v.extend_from_slice(&[1, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[0, 64]);
        v.extend(std::iter::repeat_n(0xff, 64));
        v.extend_from_slice(b"data");
        let p = Packet::decode(&v).unwrap();
        assert_eq!(p.payload, b"data");
        let sack = p.selective_ack.unwrap();
        assert_eq!(sack.bits(), MAX_SACK_BYTES * 8);
        assert!(sack.is_set(255) && !sack.is_set(256));
    }

    #[test]
    fn tells_utp_from_dht_and_trackers() {
        assert!(is_utp_datagram(&sample(b"").to_vec()));
        assert!(!is_utp_datagram(
            b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe"
        ));
        let mut connect = 0x0417_2710_1980u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0; 8]);
        connect.extend_from_slice(&[0; 4]);
        assert!(!is_utp_datagram(&connect), "BEP 15 connect request");
        let mut announce_reply = 1u32.to_be_bytes().to_vec();
        announce_reply.extend_from_slice(&[0; 16]);
        assert!(!is_utp_datagram(&announce_reply), "BEP 15 reply");
        assert!(!is_utp_datagram(&[0x41; 10]), "too short");
    }
}
