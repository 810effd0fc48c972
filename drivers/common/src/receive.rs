//! A connection's receive buffer: where each read puts the bytes, and which
//! of them are handed to the engine.
//!
//! A runtime that can scatter a read over several buffers
//! ([`ConnRead::read_chunk`](crate::runtime::ConnRead::read_chunk) with
//! [`ReceiveBuffer::regions`] and [`ReceiveBuffer::commit`]) reads the rest
//! of the frame it is in into that frame's own buffer, and each following
//! frame into a slot of its own, placed so that a `piece` message's block
//! starts at a [`PAYLOAD_ALIGN`] address. Whole frames are handed over (the
//! decoder joins two reads only after a frame that did not fit), and the blocks are aligned as
//! `O_DIRECT` wants them: the disk writes them from where they were received
//! (see `disk`). A `FrameCursor` (from the core) follows the frame
//! boundaries. A frame that did not fit where it was put (the slot assumed
//! a full `piece` message and it was not one) or a stream that is not
//! followed (MSE) is handed over as it came, and all is still correct: only
//! the alignment of those blocks is lost.
//!
//! Until a full `piece` message has come, and after any other frame, a
//! read goes into one contiguous buffer instead, reused while it has room
//! (a seeding connection receives only small requests).
//!
//! Other runtimes read into one contiguous buffer
//! ([`ReceiveBuffer::contiguous`]) and hand over whatever came, as before.

use std::collections::VecDeque;
use std::mem::MaybeUninit;

use bittide_core::wire::{FrameCursor, PIECE_FRAME_LEN, PIECE_HEADER_LEN};
use bytes::{Buf, Bytes, BytesMut};

/// Bytes a read asks for, about (four full `piece` messages).
pub const READ_CHUNK: usize = 64 * 1024;

/// The address alignment a block's bytes get in a slot: what `O_DIRECT`
/// asks of memory on common Linux block devices (`dma_alignment` + 1; the
/// disk checks the file's own figure before it relies on it).
pub const PAYLOAD_ALIGN: usize = 4096;

/// Slots a read spreads over when it starts at a frame boundary (about
/// [`READ_CHUNK`]).
const SLOTS_PER_READ: usize = 4;

/// Where a connection's received bytes go; see the module documentation.
#[derive(Debug, Default)]
pub struct ReceiveBuffer {
    cursor: FrameCursor,
    /// The start of an incomplete frame, not yet handed over, with room
    /// after it for the rest; or, for a contiguous reader, its buffer.
    current: BytesMut,
    /// Slots for the frames after it, each with room for a full `piece`
    /// message whose block starts at a [`PAYLOAD_ALIGN`] address.
    slots: VecDeque<BytesMut>,
    /// Room in `current` for the read being planned.
    room: usize,
    /// Slots the read being planned may fill (after `current`).
    planned_slots: usize,
    /// The read being planned goes into one contiguous buffer: the frames
    /// are not followed (yet).
    contiguous_read: bool,
}

impl ReceiveBuffer {
    /// A buffer for a new connection.
    pub fn new() -> ReceiveBuffer {
        ReceiveBuffer::default()
    }

    /// The buffers the next read may fill, in order: the rest of the
    /// current frame, then fresh slots. Call [`commit`](Self::commit)
    /// after the read.
    pub fn regions(&mut self) -> Vec<&mut [MaybeUninit<u8>]> {
        self.plan();
        let slots = self.planned_slots;
        let mut out = Vec::with_capacity(1 + slots);
        if self.room > 0 {
            out.push(&mut self.current.spare_capacity_mut()[..self.room]);
        }
        for slot in self.slots.iter_mut().take(slots) {
            out.push(&mut slot.spare_capacity_mut()[..PIECE_FRAME_LEN]);
        }
        out
    }

    /// Decides where the next read goes.
    fn plan(&mut self) {
        self.contiguous_read = self.cursor.is_lost();
        if self.contiguous_read || !self.cursor.after_block() {
            // Not followed (everything is handed over), or small frames
            // (requests, haves: slots would be wasted on them): one
            // contiguous buffer, reused while it has room; slots are not
            // kept for a connection that may never receive a block again.
            self.planned_slots = 0;
            self.slots.clear();
            if self.current.capacity() - self.current.len() < READ_CHUNK / 4 {
                let mut fresh = BytesMut::with_capacity(READ_CHUNK + self.current.len());
                fresh.extend_from_slice(&self.current);
                self.current = fresh;
            }
            self.room = self.current.capacity() - self.current.len();
            return;
        }
        // The rest of the current frame goes where its start is: exactly
        // that much when its length is known, else as much as a full piece
        // message would need.
        self.room = match self.cursor.frame_left() {
            _ if self.cursor.at_boundary() => 0,
            Some(left) => left.min(READ_CHUNK),
            None => PIECE_FRAME_LEN - self.cursor.received(),
        };
        // A block whose frame began where the block would not be aligned
        // (after a frame the slot did not expect) moves to a slot of its
        // own before the rest of it comes: a copy of what is in so far,
        // where the disk would otherwise copy all of it.
        let piece_sized = self
            .cursor
            .frame_len()
            .is_none_or(|len| len == PIECE_FRAME_LEN);
        let misplaced =
            !(self.current.as_ptr() as usize + PIECE_HEADER_LEN).is_multiple_of(PAYLOAD_ALIGN);
        let fits = self.current.capacity() - self.current.len() >= self.room;
        if !self.current.is_empty() && piece_sized && (misplaced || !fits) {
            let mut slot = new_slot();
            slot.extend_from_slice(&self.current);
            self.current = slot;
        }
        self.current.reserve(self.room);
        // Slots only after a frame that ends within this read.
        let ends_here = self
            .cursor
            .frame_left()
            .is_none_or(|left| left <= self.room);
        self.planned_slots = match ends_here {
            true if self.room == 0 => SLOTS_PER_READ,
            true => SLOTS_PER_READ - 1,
            false => 0,
        };
        while self.slots.len() < self.planned_slots {
            self.slots.push_back(new_slot());
        }
    }

    /// Takes `n` bytes just read into [`regions`](Self::regions) (filled
    /// in order) and returns what is handed over: whole frames, or what
    /// could not be followed, in stream order.
    ///
    /// # Safety
    /// The first `n` bytes of the regions, in order, were written, and no
    /// other method was called since [`regions`](Self::regions).
    #[allow(unsafe_code)]
    pub unsafe fn commit(&mut self, n: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut rest = n;
        let take = rest.min(self.room);
        rest -= take;
        let len = self.current.len();
        // SAFETY: the caller wrote the first `take` bytes of `current`'s
        // spare capacity (its region); capacity was reserved in `plan`.
        unsafe { self.current.set_len(len + take) };
        let mut current = std::mem::take(&mut self.current);
        if take > 0 {
            let keep_tail = !self.contiguous_read && rest == 0;
            self.hand_over(&mut current, take, keep_tail, &mut out);
        }
        let mut slots = self.planned_slots;
        while rest > 0 && slots > 0 {
            let Some(mut slot) = self.slots.pop_front() else {
                break;
            };
            slots -= 1;
            let take = rest.min(PIECE_FRAME_LEN);
            rest -= take;
            // SAFETY: as above, the slot's region is its first
            // PIECE_FRAME_LEN spare bytes, reserved in `new_slot`.
            unsafe { slot.set_len(take) };
            self.hand_over(&mut slot, take, rest == 0, &mut out);
            if !slot.is_empty() {
                current = slot;
            }
        }
        self.current = current;
        self.room = 0;
        self.planned_slots = 0;
        out
    }

    /// One scatter read from `src`, of at most `max` bytes, copied into
    /// the [`regions`](Self::regions) and committed: how many bytes were
    /// taken, and what is handed over. What a socket's `readv` does, for
    /// the tests and the fuzz target.
    pub fn read_from(&mut self, src: &[u8], max: usize) -> (usize, Vec<Bytes>) {
        let mut n = 0;
        for region in self.regions() {
            let take = region.len().min(src.len() - n).min(max - n);
            for (dst, &byte) in region.iter_mut().zip(&src[n..n + take]) {
                dst.write(byte);
            }
            n += take;
        }
        // SAFETY: the first `n` bytes of the regions were written, in
        // order, just now.
        #[allow(unsafe_code)]
        let out = unsafe { self.commit(n) };
        (n, out)
    }

    /// Bytes a scatter read ([`regions`](Self::regions) and
    /// [`commit`](Self::commit)) received but did not hand over: the start
    /// of an incomplete frame, at most a full `piece` message. (For a
    /// reader of [`contiguous`](Self::contiguous) it means nothing.)
    pub fn held(&self) -> usize {
        self.current.len()
    }

    /// The buffer of a reader that reads contiguously: at least a quarter
    /// of [`READ_CHUNK`] zeroed bytes to read into; after reading `n` bytes
    /// into its start, call [`take_contiguous`](Self::take_contiguous).
    pub fn contiguous(&mut self) -> &mut BytesMut {
        if self.current.len() < READ_CHUNK / 4 {
            self.current = BytesMut::zeroed(READ_CHUNK);
        }
        &mut self.current
    }

    /// The first `n` bytes of the contiguous buffer, handed over.
    pub fn take_contiguous(&mut self, n: usize) -> Vec<Bytes> {
        let n = n.min(self.current.len());
        vec![self.current.split_to(n).freeze()]
    }

    /// Hands over the bytes of `region` up to the last frame boundary in
    /// its `new` last bytes, keeping the incomplete frame after it if
    /// `keep_tail` (the read ended in this region; the next read continues
    /// it there, or in a slot it moves to) and the frame is no larger than
    /// a slot (a larger one is handed
    /// over as it comes, for the decoder to judge early); all of them
    /// otherwise.
    fn hand_over(
        &mut self,
        region: &mut BytesMut,
        new: usize,
        keep_tail: bool,
        out: &mut Vec<Bytes>,
    ) {
        let start = region.len() - new;
        let boundary = self.cursor.follow(&region[start..]);
        let small = self
            .cursor
            .frame_len()
            .is_none_or(|len| len <= PIECE_FRAME_LEN);
        let upto = match keep_tail && small && !self.cursor.is_lost() {
            true if boundary > 0 => start + boundary,
            true => 0,
            false => region.len(),
        };
        if upto > 0 {
            out.push(region.split_to(upto).freeze());
        }
    }
}

/// A slot with room for a full `piece` message, placed so that its block
/// starts at a [`PAYLOAD_ALIGN`] address.
fn new_slot() -> BytesMut {
    let mut slot = BytesMut::with_capacity(PIECE_FRAME_LEN + PAYLOAD_ALIGN);
    let block_at = slot.as_ptr() as usize + PIECE_HEADER_LEN;
    let skip = (PAYLOAD_ALIGN - block_at % PAYLOAD_ALIGN) % PAYLOAD_ALIGN;
    slot.resize(skip, 0);
    slot.advance(skip);
    slot
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittide_core::metainfo::{InfoHash, PieceIndex};
    use bittide_core::wire::{Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved};

    /// A handshake, then `frames`.
    fn stream(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        Handshake {
            reserved: Reserved::default(),
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId([1; 20]),
        }
        .encode(&mut out);
        for f in frames {
            f.encode(&mut out);
        }
        out
    }

    fn block(piece: u32, offset: u32, len: usize) -> Frame {
        Frame::Piece {
            piece: PieceIndex(piece),
            offset,
            data: Bytes::from(
                (0..len)
                    .map(|i| (i % 251) as u8 ^ offset as u8)
                    .collect::<Vec<_>>(),
            ),
        }
    }

    /// Feeds `bytes` through the buffer as a socket would, at most
    /// `max_read` bytes per read (a scatter read); returns the chunks
    /// handed over.
    fn scatter(bytes: &[u8], max_read: usize) -> Vec<Bytes> {
        let mut rx = ReceiveBuffer::new();
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let (n, out) = rx.read_from(&bytes[at..], max_read);
            at += n;
            chunks.extend(out);
        }
        chunks
    }

    fn decode(chunks: &[Bytes]) -> Vec<Frame> {
        let mut d = FrameDecoder::new(FrameLimits::default());
        let mut frames = Vec::new();
        let mut shaken = false;
        for c in chunks {
            d.push_bytes(c.clone());
            if !shaken {
                shaken = d.next_handshake().unwrap().is_some();
                if !shaken {
                    continue;
                }
            }
            while let Some(f) = d.next_frame().unwrap() {
                frames.push(f);
            }
        }
        frames
    }

    fn aligned(f: &Frame) -> bool {
        matches!(f, Frame::Piece { data, .. } if (data.as_ptr() as usize).is_multiple_of(PAYLOAD_ALIGN))
    }

    #[test]
    fn full_blocks_land_aligned_and_whole_frames_are_handed_over() {
        let frames: Vec<Frame> = (0..12)
            .map(|i| block(i / 4, (i % 4) * 16384, 16384))
            .collect();
        let bytes = stream(&frames);
        for max_read in [7, 1000, 16397, 30000, READ_CHUNK, usize::MAX] {
            let chunks = scatter(&bytes, max_read);
            let got = decode(&chunks);
            assert_eq!(got, frames, "reads of {max_read}");
            // The first read is one contiguous buffer (the handshake is
            // found in it); from the next on, every block is aligned.
            let first_read = READ_CHUNK / PIECE_FRAME_LEN + 2;
            assert!(
                got.iter().skip(first_read).all(aligned),
                "reads of {max_read}"
            );
            // Whole frames only: every chunk after the handshake's ends at
            // a frame boundary.
            // (after the reads that found the handshake).
            let (mut cursor, mut at) = (FrameCursor::new(), 0);
            for c in &chunks {
                let boundary = cursor.follow(c);
                if at >= READ_CHUNK {
                    assert_eq!(boundary, c.len(), "reads of {max_read}");
                }
                at += c.len();
            }
        }
    }

    #[test]
    fn other_frames_between_blocks_cost_only_the_alignment_of_a_few() {
        let mut frames = vec![
            Frame::Unchoke,
            block(0, 0, 16384),
            Frame::Have(PieceIndex(9)),
        ];
        frames.extend((1..6).map(|i| block(0, i * 16384, 16384)));
        frames.push(Frame::KeepAlive);
        frames.push(block(2, 0, 100));
        frames.extend((0..4).map(|i| block(3, i * 16384, 16384)));
        frames.push(Frame::Extended {
            id: 1,
            payload: Bytes::from(vec![b'd'; 40_000]),
        });
        frames.extend((0..8).map(|i| block(4 + i / 4, (i % 4) * 16384, 16384)));
        let bytes = stream(&frames);
        for max_read in [1, 5, 999, 16397, READ_CHUNK, usize::MAX] {
            let chunks = scatter(&bytes, max_read);
            let got = decode(&chunks);
            assert_eq!(got, frames, "reads of {max_read}");
            // The blocks after the last odd frame are aligned again.
            // Those in the read after the odd frame's are aligned again.
            assert!(
                got[got.len() - 4..].iter().all(aligned),
                "reads of {max_read}"
            );
        }
    }

    #[test]
    fn any_frames_read_in_any_sizes_come_out_whole_and_in_order() {
        // A small xorshift: the test is a function of its seeds.
        for seed in 1..=40u64 {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut next = move |below: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % below
            };
            let frames: Vec<Frame> = (0..60)
                .map(|i| match next(10) {
                    0 => Frame::Have(PieceIndex(i)),
                    1 => Frame::KeepAlive,
                    2 => block(i, 0, 1 + next(16384) as usize),
                    3 => Frame::Extended {
                        id: 3,
                        payload: Bytes::from(vec![b'e'; next(50_000) as usize]),
                    },
                    _ => block(i, 16384, 16384),
                })
                .collect();
            let bytes = stream(&frames);
            let mut rx = ReceiveBuffer::new();
            let (mut chunks, mut at) = (Vec::new(), 0);
            while at < bytes.len() {
                if next(4) == 0 {
                    // A read that would block plans again.
                    let _ = rx.regions();
                }
                let max_read = [1, 13, 4000, 16397, 70_000][next(5) as usize];
                let (n, out) = rx.read_from(&bytes[at..], max_read);
                at += n;
                chunks.extend(out);
            }
            assert_eq!(chunks.concat(), bytes, "seed {seed}");
            assert_eq!(decode(&chunks), frames, "seed {seed}");
        }
    }

    #[test]
    fn an_encrypted_stream_is_handed_over_as_it_comes() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + 3) as u8).collect();
        for max_read in [100, READ_CHUNK, usize::MAX] {
            let chunks = scatter(&bytes, max_read);
            assert_eq!(chunks.concat(), bytes);
        }
    }

    #[test]
    fn the_contiguous_path_hands_over_what_was_read() {
        let mut rx = ReceiveBuffer::new();
        let buf = rx.contiguous();
        buf[..5].copy_from_slice(b"hello");
        assert_eq!(rx.take_contiguous(5), vec![Bytes::from_static(b"hello")]);
        assert!(rx.contiguous().len() >= READ_CHUNK / 4);
    }
}
