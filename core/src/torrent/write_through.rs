//! Pieces too large to hold in memory: written in runs as their blocks
//! arrive, hashed on the way to the disk.
//!
//! The in-memory path (verify a whole piece from its buffered blocks, then
//! write it) needs the whole piece in memory at once. A .torrent may have
//! pieces of up to 512 MiB, more than any sensible memory budget, and a
//! piece larger than the budget would never complete. So a torrent whose
//! pieces are larger than a quarter of [`TorrentConfig::max_buffered_bytes`]
//! writes blocks before the piece is complete:
//!
//! - **Runs.** A piece's blocks are held until they make a run of
//!   [`RUN`] bytes in piece order from where the last run ended (or reach
//!   the piece's end), and go to the disk together
//!   ([`TorrentOutput::Write`]): one disk job and one large write (which
//!   the driver can do with `O_DIRECT`) instead of one per 16 KiB block.
//! - **Hashed on the way.** Each run carries the piece's running hash
//!   ([`RunningHash`]): the disk feeds it the run and hands it back, and
//!   the run that ends the piece brings back the verdict. A piece has one
//!   run at the disk at a time, so the hash sees its bytes in order, and
//!   nothing is read back.
//! - **Out of order.** Blocks that arrive ahead of the run (from another
//!   peer, or after a choke dropped a request) wait in memory until the
//!   gap fills.
//! - **Memory.** Held blocks count in the budget like any buffered block.
//!   Blocks that continue a piece's run only wait for the run at the disk
//!   to come back, however many there are. Blocks beyond a gap may wait
//!   for a request that is not coming (its peer choked us): when those of
//!   all pieces pass [`HELD_SHARE`] of the budget, every piece sends what
//!   it can, its run whatever its length, and the blocks beyond a gap
//!   straight to disk unhashed. That breaks the piece's hash chain; such a
//!   piece is read back and hashed once all its blocks are written
//!   ([`TorrentOutput::Check`], answered with
//!   [`handle_checked`](Torrent::handle_checked)). So held blocks can
//!   never fill the budget and stop the download. (Counting every held
//!   block here broke the chain of 48 of the 128 pieces of a 1 GiB
//!   download: a slow disk write plus one block out of order was enough.)
//!
//! Unverified bytes do reach the disk, but nothing claims them: the piece
//! is announced, served and recorded in resume data only after its hash
//! matched; a piece that fails is downloaded again over the bad bytes.
//! Peers that sent a bad piece are found exactly as on the in-memory path.
//!
//! [`TorrentConfig::max_buffered_bytes`]: super::TorrentConfig::max_buffered_bytes

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Torrent, TorrentOutput};
use crate::handles::ConnId;
use crate::metainfo::{HashProgress, PieceIndex, RunningHash};
use crate::time::Instant;
use crate::wire::{BlockRef, BLOCK_SIZE};

/// Bytes a run waits for before it goes to the disk (unless it reaches the
/// piece's end first): the driver writes aligned runs this long with
/// `O_DIRECT`, past the page cache.
pub(super) const RUN: u32 = 256 * 1024;

/// The share of the memory budget (1/`HELD_SHARE`) that blocks held
/// beyond a gap may take before they go to disk unhashed.
pub(super) const HELD_SHARE: u64 = 4;

/// Every write-through piece with blocks held or at the disk.
#[derive(Debug, Default)]
pub(super) struct WriteThrough {
    pieces: BTreeMap<u32, Writing>,
    /// Bytes of blocks held beyond a gap (or by a piece whose chain is
    /// broken): those that may wait for a request that is not coming.
    /// Blocks that continue a chain only wait for its run to come back.
    beyond: u64,
}

/// One piece's blocks on their way to the disk.
#[derive(Debug, Default)]
struct Writing {
    /// Piece bytes sent in hashed runs, from its start.
    chained: u32,
    /// Held blocks `chained..run_end` continue the chain (none once it
    /// is broken: `run_end == chained`).
    run_end: u32,
    /// The running hash while no run is at the disk (`None` before the
    /// first run, while one is out, or once the chain is broken).
    hasher: Option<RunningHash>,
    /// Where the hashed run at the disk starts, if one is.
    run_out: Option<u32>,
    /// Blocks were written outside the chain: the piece is verified by
    /// reading it back.
    broken: bool,
    /// The last run brought the verdict.
    verdict: Option<bool>,
    /// Blocks received and not yet sent, by offset.
    held: BTreeMap<u32, Bytes>,
    /// Writes at the disk.
    in_flight: u32,
    failed: bool,
    /// The peer whose block completed the piece.
    last_sender: Option<ConnId>,
}

impl Writing {
    /// Holds a block; returns the bytes it adds to, or takes from, those
    /// held beyond a gap (a block that fills a gap brings the blocks after
    /// it into the run).
    fn hold(&mut self, offset: u32, data: Bytes) -> i64 {
        let len = data.len() as u32;
        self.held.insert(offset, data);
        if self.broken || offset != self.run_end {
            return i64::from(len);
        }
        self.run_end += len;
        let mut joined = 0;
        while let Some(b) = self.held.get(&self.run_end) {
            let n = b.len() as u32;
            joined += i64::from(n);
            self.run_end += n;
        }
        -joined
    }

    /// Bytes held beyond a gap.
    fn beyond(&self) -> u64 {
        let all: u64 = self.held.values().map(|b| b.len() as u64).sum();
        all - u64::from(self.run_end - self.chained)
    }

    /// Takes the held blocks before offset `to` (none is held before
    /// `chained`: those went in runs).
    fn take_before(&mut self, to: u32) -> Vec<Bytes> {
        let rest = self.held.split_off(&to);
        std::mem::replace(&mut self.held, rest)
            .into_values()
            .collect()
    }
}

impl Torrent {
    /// Whether this torrent's pieces are written block by block (see the
    /// module documentation).
    pub(super) fn writes_through(&self) -> bool {
        u64::from(self.info.layout.piece_length()) > self.config.max_buffered_bytes / 4
    }

    /// Whether blocks held beyond gaps have passed their share of the
    /// budget.
    fn pressed(&self) -> bool {
        self.writing.beyond > self.max_buffered_bytes() / HELD_SHARE
    }

    /// A new block of a write-through piece: held for its run.
    pub(super) fn write_block(&mut self, conn: ConnId, block: BlockRef, data: Bytes) {
        let piece = block.piece.0;
        self.buffered_bytes += data.len() as u64;
        let w = self.writing.pieces.entry(piece).or_default();
        w.last_sender = Some(conn);
        let change = w.hold(block.offset, data);
        self.writing.beyond = self.writing.beyond.saturating_add_signed(change);
        if self.pressed() {
            let pieces: Vec<u32> = self.writing.pieces.keys().copied().collect();
            for p in pieces {
                self.send_writes(p, true);
            }
        } else {
            self.send_writes(piece, false);
        }
    }

    /// Sends what `piece` has ready: its run when long enough or complete
    /// (any run at all when `pressed`); and every held block, unhashed,
    /// once the chain is broken or, when `pressed`, to break it.
    fn send_writes(&mut self, piece: u32, pressed: bool) {
        let piece_len = self.info.layout.piece_size(PieceIndex(piece));
        let hash = self.info.piece_hashes.get(piece as usize).copied();
        let complete = self.picker.is_complete(PieceIndex(piece));
        let Some(w) = self.writing.pieces.get_mut(&piece) else {
            return;
        };
        let mut sends: Vec<(u32, Vec<Bytes>, Option<RunningHash>)> = Vec::new();
        let len = w.run_end - w.chained;
        if w.run_out.is_none() && !w.broken && len > 0 {
            let ends = w.run_end >= piece_len;
            if len >= RUN || ends || pressed {
                let hasher = match (w.hasher.take(), hash) {
                    (Some(h), _) => Some(h),
                    (None, Some(h)) if w.chained == 0 => Some(h.hasher(u64::from(piece_len))),
                    _ => None,
                };
                let blocks = w.take_before(w.run_end);
                if hasher.is_some() {
                    w.run_out = Some(w.chained);
                } else {
                    w.broken = true;
                }
                sends.push((w.chained, blocks, hasher));
                w.chained = w.run_end;
            }
        }
        // Blocks that only wait for the run at the disk stay: it comes
        // back. Blocks beyond a gap may wait for a request that is not
        // coming; under pressure they go, and with them the hash chain.
        if w.broken || (pressed && w.beyond() > 0) {
            if !w.broken {
                w.broken = true;
                w.hasher = None;
                // From now on every held block counts as beyond.
                self.writing.beyond += u64::from(w.run_end - w.chained);
                w.run_end = w.chained;
            }
            // Adjacent blocks still go together, in runs as above.
            let mut held = std::mem::take(&mut w.held).into_iter().peekable();
            while let Some((start, first)) = held.next() {
                let mut end = start + first.len() as u32;
                let mut blocks = vec![first];
                while let Some((_, b)) = held.next_if(|(o, _)| *o == end) {
                    end += b.len() as u32;
                    blocks.push(b);
                }
                if pressed || complete || end - start >= RUN || end >= piece_len {
                    self.writing.beyond =
                        self.writing.beyond.saturating_sub(u64::from(end - start));
                    sends.push((start, blocks, None));
                } else {
                    let offsets = (start..end).step_by(BLOCK_SIZE as usize);
                    w.held.extend(offsets.zip(blocks));
                }
            }
        }
        for (offset, blocks, hasher) in sends {
            self.send_run(piece, offset, blocks, hasher);
        }
    }

    fn send_run(
        &mut self,
        piece: u32,
        offset: u32,
        blocks: Vec<Bytes>,
        hasher: Option<RunningHash>,
    ) {
        let length: u32 = blocks.iter().map(|b| b.len() as u32).sum();
        if let Some(w) = self.writing.pieces.get_mut(&piece) {
            w.in_flight += 1;
        }
        let block = BlockRef {
            piece: PieceIndex(piece),
            offset,
            length,
        };
        let slices = self
            .info
            .layout
            .slices(block.piece, offset, length)
            .collect();
        self.out.push_back(TorrentOutput::Write {
            block,
            blocks,
            slices,
            hasher,
        });
    }

    /// A run handed out with [`TorrentOutput::Write`] is on disk (`ok`) or
    /// could not be written; `hash` is the hash it carried, fed.
    pub fn handle_written(
        &mut self,
        now: Instant,
        block: BlockRef,
        ok: bool,
        hash: Option<HashProgress>,
    ) {
        self.now = now;
        let piece = block.piece;
        let Some(w) = self.writing.pieces.get_mut(&piece.0) else {
            return;
        };
        self.buffered_bytes = self.buffered_bytes.saturating_sub(u64::from(block.length));
        w.in_flight = w.in_flight.saturating_sub(1);
        w.failed |= !ok;
        if w.run_out == Some(block.offset) {
            w.run_out = None;
            match hash {
                Some(HashProgress::Running(h)) if !w.broken => w.hasher = Some(h),
                Some(HashProgress::Verdict(v)) if !w.broken => w.verdict = Some(v),
                // A disk that did not feed the hash: read the piece back.
                _ => w.broken = true,
            }
        }
        let pressed = self.pressed();
        self.send_writes(piece.0, pressed);
        self.finish_writing(now, piece);
        self.fill_requests(now);
    }

    /// Once nothing of `piece` is held or at the disk: a failed write
    /// fetches it again; a complete piece gets its verdict (from its last
    /// run, or by reading it back).
    fn finish_writing(&mut self, now: Instant, piece: PieceIndex) {
        let Some(w) = self.writing.pieces.get(&piece.0) else {
            return;
        };
        if w.in_flight > 0 || !(w.failed || w.held.is_empty()) {
            return;
        }
        let failed = w.failed;
        if !failed && !self.picker.is_complete(piece) {
            return;
        }
        let Some(w) = self.writing.pieces.remove(&piece.0) else {
            return;
        };
        let dropped: u64 = w.held.values().map(|b| b.len() as u64).sum();
        self.writing.beyond = self.writing.beyond.saturating_sub(w.beyond());
        self.buffered_bytes = self.buffered_bytes.saturating_sub(dropped);
        if failed {
            // The piece is not on disk: fetch it again; the application
            // decides whether to go on.
            self.picker.on_hash_failed(piece);
            self.emit(super::TorrentEvent::WriteFailed(piece));
            return;
        }
        if let Some(conn) = w.last_sender {
            self.note_exclusive(piece.0, conn);
        }
        self.verifying.insert(piece.0);
        match w.verdict {
            Some(ok) => self.handle_verified(now, piece, ok, true),
            None => self.verify_on_disk(piece),
        }
    }

    /// Every block of `piece` is written but its hash was not carried
    /// through: read it back and hash it.
    fn verify_on_disk(&mut self, piece: PieceIndex) {
        let Some(&hash) = self.info.piece_hashes.get(piece.0 as usize) else {
            return;
        };
        self.out.push_back(TorrentOutput::Check {
            piece,
            slices: self.info.layout.piece_slices(piece).collect(),
            hash,
        });
    }
}
