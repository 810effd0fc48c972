//! `ut_metadata` messages (BEP 9): how peers trade a torrent's info
//! dictionary, 16 KiB at a time, so a magnet link is enough to start.
//!
//! Each message is an extended message (BEP 10) whose payload is a bencoded
//! dictionary — `msg_type` 0 request, 1 data, 2 reject, and `piece` — and,
//! for data, `total_size` followed by the piece's bytes right after the
//! dictionary.

use bytes::Bytes;

use crate::bencode::{self, Decoder, Value};
use crate::error::{DecodeError, DecodeErrorKind};

/// The extension's name in the BEP 10 handshake's `m`.
pub const UT_METADATA: &str = "ut_metadata";
/// BEP 9: every metadata piece is 16 KiB except the last.
pub const METADATA_PIECE: usize = 16 * 1024;
/// Largest info dictionary we accept (BEP 9 leaves it open; 64 MiB is far
/// above any real torrent's and still a bounded allocation).
pub const MAX_METADATA_SIZE: u64 = 64 << 20;
/// The dictionary in front of a data piece is tiny; anything larger is not
/// a ut_metadata message.
const MAX_HEADER: usize = 256;

/// One ut_metadata message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: send me this piece.
    Request {
        /// Piece index (16 KiB units).
        piece: u32,
    },
    /// `msg_type` 1: a piece of the info dictionary.
    Data {
        /// Piece index.
        piece: u32,
        /// Size of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes (at most [`METADATA_PIECE`]).
        data: Bytes,
    },
    /// `msg_type` 2: the peer will not send this piece.
    Reject {
        /// Piece index.
        piece: u32,
    },
    /// A `msg_type` this version does not know: BEP 9 says to ignore it.
    Unknown {
        /// The type number.
        msg_type: i64,
    },
}

/// How many 16 KiB pieces an info dictionary of `size` bytes has.
pub fn metadata_piece_count(size: u64) -> u32 {
    size.div_ceil(METADATA_PIECE as u64)
        .min(u64::from(u32::MAX)) as u32
}

impl MetadataMessage {
    /// Decodes an extended message's payload (the `Bytes` is kept so a
    /// data piece is a slice of it, not a copy).
    pub fn decode(payload: &Bytes) -> Result<MetadataMessage, DecodeError> {
        let head = &payload[..payload.len().min(MAX_HEADER)];
        let (doc, used) = Decoder::new().decode_prefix(head).map_err(|e| {
            if payload.len() > MAX_HEADER && e.offset() >= MAX_HEADER.saturating_sub(1) {
                DecodeError::new(DecodeErrorKind::SizeLimit, MAX_HEADER, "ut_metadata header")
            } else {
                e
            }
        })?;
        let dict = doc.root.as_dict().ok_or(DecodeError::new(
            DecodeErrorKind::UnexpectedByte,
            0,
            "ut_metadata dictionary",
        ))?;
        let int = |key: &'static [u8], context: &'static str| {
            dict.get(key)
                .ok_or(DecodeError::new(DecodeErrorKind::MissingField, 0, context))
                .and_then(|v| {
                    v.as_int().ok_or(DecodeError::new(
                        DecodeErrorKind::UnexpectedByte,
                        v.offset(),
                        context,
                    ))
                })
        };
        let msg_type = int(b"msg_type", "ut_metadata msg_type")?;
        if !(0..=2).contains(&msg_type) {
            return Ok(MetadataMessage::Unknown { msg_type });
        }
        let piece_value = int(b"piece", "ut_metadata piece")?;
        let piece = u32::try_from(piece_value)
            .map_err(|_| DecodeError::new(DecodeErrorKind::OutOfRange, 0, "ut_metadata piece"))?;
        let rest = payload.len() - used;
        match msg_type {
            0 | 2 if rest > 0 => Err(DecodeError::new(
                DecodeErrorKind::TrailingBytes,
                used,
                "ut_metadata request or reject",
            )),
            0 => Ok(MetadataMessage::Request { piece }),
            2 => Ok(MetadataMessage::Reject { piece }),
            _ => {
                let total = int(b"total_size", "ut_metadata total_size")?;
                let total_size = u64::try_from(total)
                    .ok()
                    .filter(|&t| t > 0 && t <= MAX_METADATA_SIZE)
                    .ok_or(DecodeError::new(
                        DecodeErrorKind::OutOfRange,
                        0,
                        "ut_metadata total_size",
                    ))?;
                if rest > METADATA_PIECE {
                    return Err(DecodeError::new(
                        DecodeErrorKind::SizeLimit,
                        used + METADATA_PIECE,
                        "ut_metadata data piece",
                    ));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: payload.slice(used..),
                })
            }
        }
    }

    /// Appends the payload (canonical dictionary, then a data piece's
    /// bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (msg_type, piece) = match self {
            MetadataMessage::Request { piece } => (0, *piece),
            MetadataMessage::Data { piece, .. } => (1, *piece),
            MetadataMessage::Reject { piece } => (2, *piece),
            MetadataMessage::Unknown { msg_type } => {
                Value::dict(vec![(b"msg_type", Value::int(*msg_type))]).encode(out);
                return;
            }
        };
        out.push(b'd');
        bencode::encode_bytes(out, b"msg_type");
        bencode::encode_int(out, msg_type);
        bencode::encode_bytes(out, b"piece");
        bencode::encode_int(out, i64::from(piece));
        if let MetadataMessage::Data {
            total_size, data, ..
        } = self
        {
            bencode::encode_bytes(out, b"total_size");
            bencode::encode_int(out, (*total_size).min(i64::MAX as u64) as i64);
            out.push(b'e');
            out.extend_from_slice(data);
        } else {
            out.push(b'e');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: &MetadataMessage) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(
            &MetadataMessage::decode(&Bytes::from(out.clone())).unwrap(),
            m
        );
        out
    }

    #[test]
    fn bep9_examples() {
        // The request and reject examples of BEP 9, byte for byte.
        assert_eq!(
            round_trip(&MetadataMessage::Request { piece: 0 }),
            b"d8:msg_typei0e5:piecei0ee"
        );
        assert_eq!(
            round_trip(&MetadataMessage::Reject { piece: 0 }),
            b"d8:msg_typei2e5:piecei0ee"
        );
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 3425,
            data: Bytes::from_static(b"xxxx"),
        };
        assert_eq!(
            round_trip(&data),
            b"d8:msg_typei1e5:piecei0e10:total_sizei3425eexxxx"
        );
    }

    #[test]
    fn unknown_types_are_ignored_and_bad_ones_refused() {
        let m = MetadataMessage::decode(&Bytes::from_static(b"d8:msg_typei7e5:piecei0ee"));
        assert_eq!(m.unwrap(), MetadataMessage::Unknown { msg_type: 7 });
        for bad in [
            &b"d5:piecei0ee"[..],
            b"d8:msg_typei0ee",
            b"d8:msg_typei0e5:piecei-1ee",
            b"d8:msg_typei0e5:piecei0eextra",
            b"d8:msg_typei1e5:piecei0ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei0ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei99999999999ee",
            b"le",
            b"",
        ] {
            assert!(
                MetadataMessage::decode(&Bytes::copy_from_slice(bad)).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A data piece may not be longer than 16 KiB.
        let mut big = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        big.resize(big.len() + METADATA_PIECE + 1, 0);
        assert!(MetadataMessage::decode(&Bytes::from(big)).is_err());
    }

    #[test]
    fn piece_counts() {
        assert_eq!(metadata_piece_count(1), 1);
        assert_eq!(metadata_piece_count(16384), 1);
        assert_eq!(metadata_piece_count(16385), 2);
        assert_eq!(metadata_piece_count(MAX_METADATA_SIZE), 4096);
    }
}
