//! Where a connection's frames end, followed as bytes arrive, without
//! decoding them.
//!
//! A reader that knows where the frame it is receiving ends can read the
//! rest of it into the same buffer, start the next frame in a buffer of its
//! own placed so that a `piece` message's block lands on an aligned
//! address, and hand over whole frames only. The decoder
//! ([`FrameDecoder`](super::FrameDecoder)) then seldom copies a frame split
//! between two reads, and the disk can write the blocks with `O_DIRECT`
//! straight from where they were received instead of gathering them into an
//! aligned buffer first (a copy of every byte downloaded).
//!
//! Only bookkeeping is done here: the length prefixes are followed, nothing
//! is checked. The frames are found after the first plain handshake: at
//! the start of the stream, or where the remote's handshake comes in the
//! clear after an MSE handshake that settled on plaintext (an outgoing
//! connection's; found by its protocol string within the first
//! [`SEARCH_LIMIT`] bytes). An incoming MSE connection's handshake comes
//! encrypted (BEP 8's initial payload), and an RC4 stream stays so: neither
//! is followed. A peer that lies
//! in a length prefix, or puts a protocol string in its MSE padding,
//! misleads only where its bytes are put: the decoder still judges every
//! frame.

use super::frame::BLOCK_SIZE;
use super::handshake::{HANDSHAKE_LEN, PROTOCOL};
use crate::mse::MAX_PAD;

/// Bytes of a `piece` message before its block: the length prefix, the
/// id, the piece index and the offset (BEP 3: `<len=0009+X><id=7><index>
/// <begin><block>`).
pub const PIECE_HEADER_LEN: usize = 13;

/// A whole `piece` message carrying a full block, length prefix included:
/// the frame a downloading connection receives most.
pub const PIECE_FRAME_LEN: usize = PIECE_HEADER_LEN + BLOCK_SIZE as usize;

/// How far into the stream a plain handshake is looked for: past the
/// longest MSE handshake a responder sends before it (BEP 8: its 96-byte
/// key, up to 512 bytes of padding, then VC, crypto_select, len(padD) and
/// up to 512 bytes of padD), with room to spare.
const SEARCH_LIMIT: usize = 96 + MAX_PAD + 14 + MAX_PAD + 1024;

/// Where the stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Looking for a handshake's first 20 bytes (its length byte and
    /// protocol string): `matched` of them found so far, `seen` bytes of
    /// the stream looked at.
    Searching { matched: usize, seen: usize },
    /// At a frame boundary (`have` 0) or `have` bytes into a length prefix.
    Prefix { have: usize, bytes: [u8; 4] },
    /// Inside a frame (or the handshake) of `len` bytes in all, prefix
    /// included, `left` of them still to come.
    Inside { len: usize, left: usize },
    /// No handshake within [`SEARCH_LIMIT`]: nothing more is known.
    Lost,
}

/// The byte at `i` of a handshake's start: its length byte, then the
/// protocol string.
fn handshake_byte(i: usize) -> u8 {
    match i {
        0 => PROTOCOL.len() as u8,
        i => PROTOCOL[i - 1],
    }
}

/// Follows frame boundaries through a connection's received bytes.
#[derive(Clone, Debug)]
pub struct FrameCursor {
    position: Position,
    /// The length of the last whole frame, prefix included (0 before the
    /// first).
    last_len: usize,
}

impl Default for FrameCursor {
    fn default() -> Self {
        FrameCursor::new()
    }
}

impl FrameCursor {
    /// A cursor at the start of a connection, where the 68-byte handshake
    /// comes first.
    pub fn new() -> FrameCursor {
        FrameCursor {
            position: Position::Searching {
                matched: 0,
                seen: 0,
            },
            last_len: 0,
        }
    }

    /// Follows `bytes`, the next ones of the stream, and returns how many of
    /// them come before the last frame boundary among them (0 if none).
    pub fn follow(&mut self, bytes: &[u8]) -> usize {
        let (mut at, mut boundary) = (0, 0);
        while at < bytes.len() {
            self.position = match self.position {
                Position::Lost => return boundary,
                Position::Searching { seen, .. } if seen >= SEARCH_LIMIT => Position::Lost,
                Position::Searching { matched, seen } => {
                    let b = bytes[at];
                    at += 1;
                    let matched = match b == handshake_byte(matched) {
                        true => matched + 1,
                        // The length byte occurs only at the start.
                        false => usize::from(b == handshake_byte(0)),
                    };
                    match matched {
                        20 => Position::Inside {
                            len: HANDSHAKE_LEN,
                            left: HANDSHAKE_LEN - 20,
                        },
                        matched => Position::Searching {
                            matched,
                            seen: seen + 1,
                        },
                    }
                }
                Position::Prefix {
                    have,
                    bytes: mut bytes4,
                } => {
                    bytes4[have] = bytes[at];
                    at += 1;
                    match have + 1 {
                        4 => match u32::from_be_bytes(bytes4) as usize {
                            // A keep-alive is the whole frame.
                            0 => {
                                boundary = at;
                                self.last_len = 4;
                                Position::Prefix {
                                    have: 0,
                                    bytes: [0; 4],
                                }
                            }
                            len => match len.checked_add(4) {
                                Some(whole) => Position::Inside {
                                    len: whole,
                                    left: len,
                                },
                                // Only where usize is 32 bits: no such frame
                                // is followed.
                                None => Position::Lost,
                            },
                        },
                        have => Position::Prefix {
                            have,
                            bytes: bytes4,
                        },
                    }
                }
                Position::Inside { len, left } => {
                    let take = left.min(bytes.len() - at);
                    at += take;
                    match left - take {
                        0 => {
                            boundary = at;
                            self.last_len = len;
                            Position::Prefix {
                                have: 0,
                                bytes: [0; 4],
                            }
                        }
                        left => Position::Inside { len, left },
                    }
                }
            };
        }
        boundary
    }

    /// Whether the frames are not (yet) followed: no handshake found so
    /// far, or none within [`SEARCH_LIMIT`].
    pub fn is_lost(&self) -> bool {
        matches!(self.position, Position::Lost | Position::Searching { .. })
    }

    /// Whether the stream stands at a frame boundary.
    pub fn at_boundary(&self) -> bool {
        matches!(self.position, Position::Prefix { have: 0, .. })
    }

    /// Bytes of the current frame received so far, prefix included (0 at
    /// a boundary).
    pub fn received(&self) -> usize {
        match self.position {
            Position::Prefix { have, .. } => have,
            Position::Inside { len, left } => len - left,
            Position::Searching { .. } | Position::Lost => 0,
        }
    }

    /// The current frame's whole length, prefix included, once its prefix
    /// is in.
    pub fn frame_len(&self) -> Option<usize> {
        match self.position {
            Position::Inside { len, .. } => Some(len),
            _ => None,
        }
    }

    /// Whether the last whole frame was a `piece` message with a full
    /// block: the stream is likely carrying blocks.
    pub fn after_block(&self) -> bool {
        self.last_len == PIECE_FRAME_LEN
    }

    /// Bytes still to come of the current frame, once its prefix is in.
    pub fn frame_left(&self) -> Option<usize> {
        match self.position {
            Position::Inside { left, .. } => Some(left),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::PieceIndex;
    use crate::wire::{Frame, Handshake, PeerId, Reserved};
    use bytes::Bytes;

    fn stream() -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        Handshake {
            reserved: Reserved::default(),
            info_hash: crate::metainfo::InfoHash([7; 20]),
            peer_id: PeerId([1; 20]),
        }
        .encode(&mut out);
        let mut ends = vec![out.len()];
        let frames = [
            Frame::Unchoke,
            Frame::KeepAlive,
            Frame::Have(PieceIndex(3)),
            Frame::Piece {
                piece: PieceIndex(1),
                offset: 0,
                data: Bytes::from(vec![9; BLOCK_SIZE as usize]),
            },
            Frame::Piece {
                piece: PieceIndex(1),
                offset: BLOCK_SIZE,
                data: Bytes::from(vec![8; 100]),
            },
        ];
        for f in frames {
            f.encode(&mut out);
            ends.push(out.len());
        }
        (out, ends)
    }

    #[test]
    fn boundaries_are_found_whatever_the_chunking() {
        let (bytes, ends) = stream();
        for step in [1, 3, 4, 13, 68, 1000, PIECE_FRAME_LEN, bytes.len()] {
            let mut cursor = FrameCursor::new();
            let mut found = Vec::new();
            for (i, chunk) in bytes.chunks(step).enumerate() {
                let b = cursor.follow(chunk);
                if b > 0 {
                    found.push(i * step + b);
                }
            }
            // The last boundary of each chunk is reported.
            let expect: Vec<usize> = bytes
                .chunks(step)
                .enumerate()
                .filter_map(|(i, c)| {
                    let (from, to) = (i * step, i * step + c.len());
                    ends.iter().rev().find(|&&e| e > from && e <= to).copied()
                })
                .collect();
            assert_eq!(found, expect, "chunks of {step}");
            assert!(cursor.at_boundary());
        }
    }

    #[test]
    fn the_current_frame_is_known_once_its_prefix_is_in() {
        let (bytes, ends) = stream();
        let piece_at = ends[3];
        let mut cursor = FrameCursor::new();
        assert_eq!(cursor.follow(&bytes[..piece_at + 2]), piece_at);
        assert!(!cursor.after_block());
        assert_eq!((cursor.received(), cursor.frame_len()), (2, None));
        assert!(!cursor.at_boundary());
        cursor.follow(&bytes[piece_at + 2..piece_at + 100]);
        assert_eq!(cursor.frame_len(), Some(PIECE_FRAME_LEN));
        assert_eq!(cursor.frame_left(), Some(PIECE_FRAME_LEN - 100));
        assert_eq!(cursor.received(), 100);
        cursor.follow(&bytes[piece_at + 100..ends[4]]);
        assert!(cursor.after_block());
    }

    #[test]
    fn frames_are_found_after_an_mse_handshake_that_settled_on_plaintext() {
        let (bytes, ends) = stream();
        // An MSE reply (key, padding, …) holding a near miss of the
        // protocol string, then the plain handshake.
        let mut mse: Vec<u8> = (0..700u32).map(|i| (i * 37 % 256) as u8).collect();
        mse.extend_from_slice(b"\x13BitTorrent protoco!");
        let mut cursor = FrameCursor::new();
        assert_eq!(cursor.follow(&mse), 0);
        assert!(cursor.is_lost());
        let b = cursor.follow(&bytes[..ends[3] + 5]);
        assert_eq!(b, ends[3]);
        assert!(!cursor.is_lost());
        assert_eq!(cursor.received(), 5);
    }

    #[test]
    fn an_encrypted_stream_is_not_followed() {
        let mut cursor = FrameCursor::new();
        assert_eq!(cursor.follow(&[0x13; 10]), 0);
        assert_eq!(cursor.follow(&vec![0x5a; SEARCH_LIMIT]), 0);
        assert!(cursor.is_lost());
        // Not even a handshake after that.
        assert_eq!(cursor.follow(&stream().0), 0);
        assert!(cursor.is_lost() && !cursor.at_boundary());
    }
}
