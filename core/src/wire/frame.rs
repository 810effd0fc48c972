//! Peer wire frames: `<u32 length><u8 id><payload>`, and the streaming
//! decoder.

use bytes::{Buf, Bytes, BytesMut};

use super::handshake::{Handshake, HANDSHAKE_LEN};
use super::hashes::{HashList, HashRequest, HASH_REQUEST_LEN, MAX_HASHES};
use crate::coding::Reader;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::metainfo::PieceIndex;

/// The block size every client requests. BEP 3: "All current
/// implementations use 2^14 (16 kiB), and close connections which request
/// an amount greater than that."
pub const BLOCK_SIZE: u32 = 16 * 1024;
/// Largest bitfield accepted before the torrent's piece count is known
/// (magnet links): 2 Mi pieces.
pub const MAX_BITFIELD_BYTES: usize = 1 << 18;
/// Largest BEP 10 extended message: a ut_metadata piece is 16 KiB plus a
/// small dictionary; PEX and handshakes are far smaller.
pub const MAX_EXTENDED_LEN: usize = 1 << 17;
/// Largest message of an id we do not know (skipped, not an error).
pub const MAX_UNKNOWN_LEN: usize = 1 << 17;

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE: u8 = 7;
const CANCEL: u8 = 8;
const PORT: u8 = 9;
const SUGGEST: u8 = 0x0d;
const HAVE_ALL: u8 = 0x0e;
const HAVE_NONE: u8 = 0x0f;
const REJECT: u8 = 0x10;
const ALLOWED_FAST: u8 = 0x11;
const EXTENDED: u8 = 0x14;
const HASH_REQUEST: u8 = 0x15;
const HASHES: u8 = 0x16;
const HASH_REJECT: u8 = 0x17;

/// A block of a piece: what `request`, `cancel` and `reject` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRef {
    /// The piece.
    pub piece: PieceIndex,
    /// Byte offset inside the piece.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// One peer wire message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Zero-length message that keeps the connection open.
    KeepAlive,
    /// We will not serve requests.
    Choke,
    /// We will serve requests.
    Unchoke,
    /// We want something the peer has.
    Interested,
    /// We want nothing the peer has.
    NotInterested,
    /// We now have (and verified) this piece.
    Have(PieceIndex),
    /// The pieces we have, one bit each, high bit of byte 0 first.
    Bitfield(Bytes),
    /// Please send this block.
    Request(BlockRef),
    /// A block of data; `data` is a slice of the receive buffer.
    Piece {
        /// The piece.
        piece: PieceIndex,
        /// Byte offset inside the piece.
        offset: u32,
        /// The block's bytes.
        data: Bytes,
    },
    /// Never mind that request.
    Cancel(BlockRef),
    /// BEP 5: our DHT node listens on this UDP port.
    Port(u16),
    /// BEP 6: you might want this piece.
    Suggest(PieceIndex),
    /// BEP 6: we have every piece.
    HaveAll,
    /// BEP 6: we have no piece.
    HaveNone,
    /// BEP 6: that request will not be served.
    Reject(BlockRef),
    /// BEP 6: you may request this piece even while choked.
    AllowedFast(PieceIndex),
    /// BEP 10: an extension message; id 0 is the extension handshake.
    Extended {
        /// The extended message id.
        id: u8,
        /// The bencoded payload (and for some, raw data after it).
        payload: Bytes,
    },
    /// BEP 52: send these merkle hashes (v2 connections only).
    HashRequest(HashRequest),
    /// BEP 52: the hashes asked for, then their uncles.
    Hashes {
        /// What they answer.
        request: HashRequest,
        /// The hashes, 32 bytes each.
        hashes: HashList,
    },
    /// BEP 52: that hash request will not be served.
    HashReject(HashRequest),
    /// A message id we do not know; BEP 3 leaves room for them and peers
    /// skip them.
    Unknown {
        /// The message id.
        id: u8,
        /// Its payload.
        payload: Bytes,
    },
}

impl Frame {
    /// Appends the frame, length prefix included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut header = |len: usize, id: u8| {
            out.extend_from_slice(&(len as u32 + 1).to_be_bytes());
            out.push(id);
        };
        match self {
            Frame::KeepAlive => out.extend_from_slice(&[0; 4]),
            Frame::Choke => header(0, CHOKE),
            Frame::Unchoke => header(0, UNCHOKE),
            Frame::Interested => header(0, INTERESTED),
            Frame::NotInterested => header(0, NOT_INTERESTED),
            Frame::HaveAll => header(0, HAVE_ALL),
            Frame::HaveNone => header(0, HAVE_NONE),
            Frame::Have(p) | Frame::Suggest(p) | Frame::AllowedFast(p) => {
                let id = match self {
                    Frame::Have(_) => HAVE,
                    Frame::Suggest(_) => SUGGEST,
                    _ => ALLOWED_FAST,
                };
                header(4, id);
                out.extend_from_slice(&p.0.to_be_bytes());
            }
            Frame::Bitfield(bits) => {
                header(bits.len(), BITFIELD);
                out.extend_from_slice(bits);
            }
            Frame::Request(b) | Frame::Cancel(b) | Frame::Reject(b) => {
                let id = match self {
                    Frame::Request(_) => REQUEST,
                    Frame::Cancel(_) => CANCEL,
                    _ => REJECT,
                };
                header(12, id);
                out.extend_from_slice(&b.piece.0.to_be_bytes());
                out.extend_from_slice(&b.offset.to_be_bytes());
                out.extend_from_slice(&b.length.to_be_bytes());
            }
            Frame::Piece {
                piece,
                offset,
                data,
            } => {
                out.extend_from_slice(&Frame::piece_header(*piece, *offset, data.len() as u32));
                out.extend_from_slice(data);
            }
            Frame::Port(port) => {
                header(2, PORT);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Frame::Extended { id, payload } => {
                header(payload.len() + 1, EXTENDED);
                out.push(*id);
                out.extend_from_slice(payload);
            }
            Frame::HashRequest(r) | Frame::HashReject(r) => {
                let id = match self {
                    Frame::HashRequest(_) => HASH_REQUEST,
                    _ => HASH_REJECT,
                };
                header(HASH_REQUEST_LEN, id);
                r.encode(out);
            }
            Frame::Hashes { request, hashes } => {
                header(HASH_REQUEST_LEN + hashes.0.len(), HASHES);
                request.encode(out);
                out.extend_from_slice(&hashes.0);
            }
            Frame::Unknown { id, payload } => {
                header(payload.len(), *id);
                out.extend_from_slice(payload);
            }
        }
    }

    /// The 13-byte header of a `piece` message carrying `length` bytes, so
    /// an upload can send header and block data without copying the block.
    pub fn piece_header(piece: PieceIndex, offset: u32, length: u32) -> [u8; 13] {
        let mut h = [0u8; 13];
        h[..4].copy_from_slice(&(length + 9).to_be_bytes());
        h[4] = PIECE;
        h[5..9].copy_from_slice(&piece.0.to_be_bytes());
        h[9..13].copy_from_slice(&offset.to_be_bytes());
        h
    }
}

/// What the decoder accepts; see the constants for the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest block in a `piece` message.
    pub max_block: u32,
    /// The torrent's piece count, once known: bitfields must then be
    /// exactly the right size with zero spare bits.
    pub piece_count: Option<u32>,
    /// Largest extended message payload.
    pub max_extended: usize,
}

impl Default for FrameLimits {
    fn default() -> FrameLimits {
        FrameLimits {
            max_block: BLOCK_SIZE,
            piece_count: None,
            max_extended: MAX_EXTENDED_LEN,
        }
    }
}

impl FrameLimits {
    /// The largest length prefix any message may have.
    fn max_len(&self) -> usize {
        let bitfield = self.bitfield_bytes().unwrap_or(MAX_BITFIELD_BYTES);
        1 + [
            bitfield,
            8 + self.max_block as usize,
            1 + self.max_extended,
            MAX_UNKNOWN_LEN,
            HASH_REQUEST_LEN + 32 * MAX_HASHES,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    fn bitfield_bytes(&self) -> Option<usize> {
        self.piece_count.map(|n| (n as usize).div_ceil(8))
    }

    /// Checks a length prefix against its message id before the payload is
    /// buffered.
    fn check(&self, id: u8, len: usize) -> Result<(), (DecodeErrorKind, &'static str)> {
        use DecodeErrorKind::{InvalidLength, LengthLimit};
        let exact = |n: usize, what| {
            if len == n {
                Ok(())
            } else {
                Err((InvalidLength, what))
            }
        };
        match id {
            CHOKE | UNCHOKE | INTERESTED | NOT_INTERESTED | HAVE_ALL | HAVE_NONE => {
                exact(1, "message without payload")
            }
            HAVE | SUGGEST | ALLOWED_FAST => exact(5, "piece index message"),
            REQUEST | CANCEL | REJECT => exact(13, "block message"),
            PORT => exact(3, "port message"),
            HASH_REQUEST | HASH_REJECT => exact(1 + HASH_REQUEST_LEN, "hash request message"),
            HASHES
                if len < 1 + HASH_REQUEST_LEN
                    || !(len - 1 - HASH_REQUEST_LEN).is_multiple_of(32) =>
            {
                Err((InvalidLength, "hashes message"))
            }
            HASHES if (len - 1 - HASH_REQUEST_LEN) / 32 > MAX_HASHES => {
                Err((LengthLimit, "hashes message"))
            }
            BITFIELD => match self.bitfield_bytes() {
                Some(n) => exact(n + 1, "bitfield"),
                None if len - 1 <= MAX_BITFIELD_BYTES => Ok(()),
                None => Err((LengthLimit, "bitfield")),
            },
            PIECE if len < 9 => Err((InvalidLength, "piece message")),
            PIECE if len - 9 > self.max_block as usize => Err((LengthLimit, "piece message")),
            EXTENDED if len < 2 => Err((InvalidLength, "extended message")),
            EXTENDED if len - 2 > self.max_extended => Err((LengthLimit, "extended message")),
            PIECE | EXTENDED | HASHES => Ok(()),
            _ if len - 1 > MAX_UNKNOWN_LEN => Err((LengthLimit, "unknown message")),
            _ => Ok(()),
        }
    }
}

/// Streaming decoder of one connection's incoming bytes: first the
/// handshake ([`next_handshake`](FrameDecoder::next_handshake)), then
/// frames ([`next_frame`](FrameDecoder::next_frame)).
///
/// Bytes handed over as [`Bytes`] ([`push_bytes`](FrameDecoder::push_bytes))
/// are decoded in place: a frame that lies wholly inside one received chunk
/// is a slice of it, not a copy. Only a frame split across chunks is
/// assembled in a small carry-over buffer.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// The start of a frame (or the handshake) split across chunks.
    carry: BytesMut,
    /// The unread rest of the latest chunk; it follows `carry` in the
    /// stream.
    chunk: Bytes,
    /// Stream offset of the next unread byte, for error offsets.
    consumed: usize,
    limits: FrameLimits,
}

impl FrameDecoder {
    /// A decoder with `limits`.
    pub fn new(limits: FrameLimits) -> FrameDecoder {
        FrameDecoder {
            carry: BytesMut::new(),
            chunk: Bytes::new(),
            consumed: 0,
            limits,
        }
    }

    /// Sets the piece count once the metadata is known (BEP 9).
    pub fn set_piece_count(&mut self, piece_count: u32) {
        self.limits.piece_count = Some(piece_count);
    }

    /// Appends bytes read from the connection (copied).
    pub fn push(&mut self, data: &[u8]) {
        self.push_bytes(Bytes::copy_from_slice(data));
    }

    /// Appends a chunk read from the connection, without copying it.
    pub fn push_bytes(&mut self, data: Bytes) {
        if !self.chunk.is_empty() {
            // The previous chunk was not drained: keep stream order.
            self.carry.extend_from_slice(&self.chunk);
        }
        self.chunk = data;
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.carry.len() + self.chunk.len()
    }

    fn error(&self, kind: DecodeErrorKind, at: usize, context: &'static str) -> DecodeError {
        DecodeError::new(kind, self.consumed + at, context)
    }

    /// Moves bytes from the chunk into the carry-over buffer until it holds
    /// `n` bytes (or the chunk is empty).
    fn fill_carry(&mut self, n: usize) {
        let take = n.saturating_sub(self.carry.len()).min(self.chunk.len());
        if take > 0 {
            self.carry.extend_from_slice(&self.chunk[..take]);
            self.chunk.advance(take);
        }
    }

    /// The bytes at the front of the stream as one slice: the carry-over
    /// buffer when it holds anything, else the chunk.
    fn front(&self) -> &[u8] {
        if self.carry.is_empty() {
            &self.chunk
        } else {
            &self.carry
        }
    }

    /// Takes `n` bytes from the front (which must hold them).
    fn take_front(&mut self, n: usize) -> Bytes {
        self.consumed += n;
        if self.carry.is_empty() {
            self.chunk.split_to(n)
        } else {
            self.carry.split_to(n).freeze()
        }
    }

    /// Makes `n` contiguous bytes available at the front if the stream has
    /// them; a chunk too short for them moves into the carry-over buffer.
    fn want(&mut self, n: usize) -> bool {
        if self.carry.is_empty() {
            if self.chunk.len() >= n {
                return true;
            }
            let rest = std::mem::take(&mut self.chunk);
            self.carry.extend_from_slice(&rest);
            return false;
        }
        self.fill_carry(n);
        self.carry.len() >= n
    }

    /// The remote handshake once all 68 bytes are here; an error as soon as
    /// a byte of the protocol string is wrong.
    pub fn next_handshake(&mut self) -> Result<Option<Handshake>, DecodeError> {
        self.fill_carry(HANDSHAKE_LEN);
        Handshake::check_prefix(&self.carry)
            .map_err(|e| self.error(e.kind(), e.offset(), e.context()))?;
        if self.carry.len() < HANDSHAKE_LEN {
            return Ok(None);
        }
        let bytes = self.take_front(HANDSHAKE_LEN);
        Handshake::decode(&bytes).map(Some)
    }

    /// The next complete frame, `None` if more bytes are needed, or an
    /// error (the connection should then be dropped: the stream cannot be
    /// resynchronised).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if !self.want(4) {
            return Ok(None);
        }
        let head = self.front();
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len == 0 {
            let _ = self.take_front(4);
            return Ok(Some(Frame::KeepAlive));
        }
        if len > self.limits.max_len() {
            return Err(self.error(DecodeErrorKind::LengthLimit, 0, "message length"));
        }
        if !self.want(5) {
            return Ok(None);
        }
        let id = self.front()[4];
        self.limits
            .check(id, len)
            .map_err(|(kind, context)| self.error(kind, 0, context))?;
        if !self.want(4 + len) {
            // Bounded by the checks above.
            let missing = (4 + len).saturating_sub(self.carry.len());
            self.carry.reserve(missing);
            return Ok(None);
        }
        let start = self.consumed;
        let mut payload = self.take_front(4 + len);
        payload.advance(5);
        self.parse(id, payload, start)
    }

    fn parse(&self, id: u8, payload: Bytes, start: usize) -> Result<Option<Frame>, DecodeError> {
        let mut r = Reader::new(&payload);
        let block = |r: &mut Reader<'_>| -> Result<BlockRef, DecodeError> {
            Ok(BlockRef {
                piece: PieceIndex(r.be_u32("block piece index")?),
                offset: r.be_u32("block offset")?,
                length: r.be_u32("block length")?,
            })
        };
        let frame = match id {
            CHOKE => Frame::Choke,
            UNCHOKE => Frame::Unchoke,
            INTERESTED => Frame::Interested,
            NOT_INTERESTED => Frame::NotInterested,
            HAVE_ALL => Frame::HaveAll,
            HAVE_NONE => Frame::HaveNone,
            HAVE => Frame::Have(PieceIndex(r.be_u32("have")?)),
            SUGGEST => Frame::Suggest(PieceIndex(r.be_u32("suggest")?)),
            ALLOWED_FAST => Frame::AllowedFast(PieceIndex(r.be_u32("allowed fast")?)),
            REQUEST => Frame::Request(block(&mut r)?),
            CANCEL => Frame::Cancel(block(&mut r)?),
            REJECT => Frame::Reject(block(&mut r)?),
            PORT => Frame::Port(r.be_u16("port")?),
            BITFIELD => {
                if let (Some(count), Some(&last)) = (self.limits.piece_count, payload.last()) {
                    let spare = (8 - count % 8) % 8;
                    let mask = ((1u16 << spare) - 1) as u8;
                    if last & mask != 0 {
                        return Err(DecodeError::new(
                            DecodeErrorKind::SpareBits,
                            start + 4 + payload.len(),
                            "bitfield",
                        ));
                    }
                }
                Frame::Bitfield(payload)
            }
            PIECE => {
                let piece = PieceIndex(r.be_u32("piece index")?);
                let offset = r.be_u32("piece offset")?;
                Frame::Piece {
                    piece,
                    offset,
                    data: payload.slice(8..),
                }
            }
            HASH_REQUEST => Frame::HashRequest(HashRequest::decode(&mut r)?),
            HASH_REJECT => Frame::HashReject(HashRequest::decode(&mut r)?),
            HASHES => Frame::Hashes {
                request: HashRequest::decode(&mut r)?,
                hashes: HashList(payload.slice(HASH_REQUEST_LEN..)),
            },
            EXTENDED => Frame::Extended {
                id: r.u8("extended message id")?,
                payload: payload.slice(1..),
            },
            _ => Frame::Unknown { id, payload },
        };
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_frames() -> Vec<Frame> {
        let b = BlockRef {
            piece: PieceIndex(7),
            offset: 16384,
            length: 16384,
        };
        vec![
            Frame::KeepAlive,
            Frame::Choke,
            Frame::Unchoke,
            Frame::Interested,
            Frame::NotInterested,
            Frame::Have(PieceIndex(3)),
            Frame::Bitfield(Bytes::from_static(&[0xff, 0xf0])),
            Frame::Request(b),
            Frame::Piece {
                piece: PieceIndex(7),
                offset: 0,
                data: Bytes::from(vec![9u8; 16384]),
            },
            Frame::Cancel(b),
            Frame::Port(6881),
            Frame::Suggest(PieceIndex(1)),
            Frame::HaveAll,
            Frame::HaveNone,
            Frame::Reject(b),
            Frame::AllowedFast(PieceIndex(2)),
            Frame::Extended {
                id: 0,
                payload: Bytes::from_static(b"d1:md11:ut_metadatai1eee"),
            },
            Frame::HashRequest(hash_request()),
            Frame::Hashes {
                request: hash_request(),
                hashes: HashList(Bytes::from(vec![5u8; 32 * 3])),
            },
            Frame::HashReject(hash_request()),
            Frame::Unknown {
                id: 0x63,
                payload: Bytes::from_static(b"xyz"),
            },
        ]
    }

    fn hash_request() -> HashRequest {
        HashRequest {
            pieces_root: [0x5a; 32],
            base_layer: 2,
            index: 4,
            length: 2,
            proof_layers: 1,
        }
    }

    fn encode_all(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            f.encode(&mut out);
        }
        out
    }

    fn limits() -> FrameLimits {
        FrameLimits {
            piece_count: Some(12),
            ..FrameLimits::default()
        }
    }

    #[test]
    fn every_frame_round_trips_in_any_chunking() {
        let frames = all_frames();
        let bytes = encode_all(&frames);
        for chunk in [1, 2, 3, 7, 100, bytes.len()] {
            let mut d = FrameDecoder::new(limits());
            let mut got = Vec::new();
            for part in bytes.chunks(chunk) {
                d.push(part);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "chunk size {chunk}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn piece_payload_is_a_slice_of_the_receive_buffer() {
        let mut bytes = Vec::new();
        Frame::Piece {
            piece: PieceIndex(0),
            offset: 0,
            data: Bytes::from(vec![1u8; 100]),
        }
        .encode(&mut bytes);
        let mut d = FrameDecoder::new(limits());
        d.push(&bytes);
        let Some(Frame::Piece { data, .. }) = d.next_frame().unwrap() else {
            panic!("expected a piece");
        };
        assert_eq!(data.len(), 100);
    }

    #[test]
    fn frames_inside_a_pushed_chunk_are_not_copied() {
        let mut bytes = Vec::new();
        for i in 0..3u32 {
            Frame::Piece {
                piece: PieceIndex(i),
                offset: 0,
                data: Bytes::from(vec![i as u8; 1000]),
            }
            .encode(&mut bytes);
        }
        let chunk = Bytes::from(bytes);
        let range = chunk.as_ptr() as usize..chunk.as_ptr() as usize + chunk.len();
        // Split the stream inside the second frame: the first frame is a
        // slice of the first chunk, the second is assembled, the third is a
        // slice of the second chunk.
        let mut d = FrameDecoder::new(limits());
        d.push_bytes(chunk.slice(..1500));
        let Some(Frame::Piece { data: first, .. }) = d.next_frame().unwrap() else {
            panic!()
        };
        assert!(
            range.contains(&(first.as_ptr() as usize)),
            "first frame copied"
        );
        assert_eq!(d.next_frame().unwrap(), None);
        d.push_bytes(chunk.slice(1500..));
        let Some(Frame::Piece { data: second, .. }) = d.next_frame().unwrap() else {
            panic!()
        };
        assert!(!range.contains(&(second.as_ptr() as usize)));
        assert_eq!(second, Bytes::from(vec![1u8; 1000]));
        let Some(Frame::Piece { data: third, .. }) = d.next_frame().unwrap() else {
            panic!()
        };
        assert!(
            range.contains(&(third.as_ptr() as usize)),
            "third frame copied"
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn oversized_lengths_fail_before_the_payload_arrives() {
        let mut d = FrameDecoder::new(limits());
        // A piece frame claiming 16 KiB + 1 of data: refused from 5 bytes.
        d.push(&(9 + BLOCK_SIZE + 1).to_be_bytes());
        d.push(&[PIECE]);
        let e = d.next_frame().unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::LengthLimit);

        let mut d = FrameDecoder::new(FrameLimits::default());
        d.push(&u32::MAX.to_be_bytes());
        assert_eq!(
            d.next_frame().unwrap_err().kind(),
            DecodeErrorKind::LengthLimit
        );

        // A bitfield longer than the torrent needs.
        let mut d = FrameDecoder::new(limits());
        d.push(&[0, 0, 0, 4, BITFIELD]);
        assert_eq!(
            d.next_frame().unwrap_err().kind(),
            DecodeErrorKind::InvalidLength
        );

        // A `have` of the wrong size.
        let mut d = FrameDecoder::new(limits());
        d.push(&[0, 0, 0, 4, HAVE]);
        assert_eq!(
            d.next_frame().unwrap_err().kind(),
            DecodeErrorKind::InvalidLength
        );
    }

    #[test]
    fn spare_bits_are_an_error() {
        // 12 pieces: two bytes, the low 4 bits of the second are spare.
        let mut v = Vec::new();
        Frame::Bitfield(Bytes::from_static(&[0xff, 0xf8])).encode(&mut v);
        let mut d = FrameDecoder::new(limits());
        d.push(&v);
        assert_eq!(
            d.next_frame().unwrap_err().kind(),
            DecodeErrorKind::SpareBits
        );
    }

    #[test]
    fn handshake_then_frames_from_one_stream() {
        let hs = Handshake {
            reserved: crate::wire::Reserved::FAST,
            info_hash: crate::InfoHash([1; 20]),
            peer_id: crate::wire::PeerId([2; 20]),
        };
        let mut bytes = Vec::new();
        hs.encode(&mut bytes);
        Frame::HaveAll.encode(&mut bytes);
        let mut d = FrameDecoder::new(limits());
        d.push(&bytes[..30]);
        assert_eq!(d.next_handshake().unwrap(), None);
        d.push(&bytes[30..]);
        assert_eq!(d.next_handshake().unwrap(), Some(hs));
        assert_eq!(d.next_frame().unwrap(), Some(Frame::HaveAll));

        let mut d = FrameDecoder::new(limits());
        d.push(b"GET /announce HTTP/1.1");
        assert!(d.next_handshake().is_err());
    }
}
