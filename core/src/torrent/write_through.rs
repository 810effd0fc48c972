//! Pieces too large to hold in memory: blocks written as they arrive, the
//! piece verified from disk once complete.
//!
//! The in-memory path (verify a whole piece from its buffered blocks, then
//! write it) needs the whole piece in memory at once. A .torrent may have
//! pieces of up to 512 MiB, more than any sensible memory budget, and a
//! piece larger than the budget would never complete. So a torrent whose
//! pieces are larger than a quarter of [`TorrentConfig::max_buffered_bytes`]
//! writes each block as soon as it arrives ([`TorrentOutput::Write`]) and,
//! once every block of a piece is written, has the driver read the piece
//! back and hash it ([`TorrentOutput::Check`], answered with
//! [`handle_checked`](Torrent::handle_checked), streaming through a small
//! buffer). Memory then holds only the blocks requested and those waiting
//! for their write, which the budget bounds as before.
//!
//! The cost is one read of each such piece, usually from the page cache it
//! was just written to. Unverified bytes do reach the disk, but nothing
//! claims them: the piece is announced, served and recorded in resume
//! data only after its hash matched; a piece that fails is downloaded
//! again over the bad bytes. Peers that sent a bad piece are found exactly
//! as on the in-memory path.
//!
//! [`TorrentConfig::max_buffered_bytes`]: super::TorrentConfig::max_buffered_bytes

use bytes::Bytes;

use super::{Torrent, TorrentOutput};
use crate::handles::ConnId;
use crate::metainfo::PieceIndex;
use crate::time::Instant;
use crate::wire::BlockRef;

/// Blocks of one piece still being written.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Writing {
    in_flight: u32,
    failed: bool,
    /// The peer whose block completed the piece.
    last_sender: Option<ConnId>,
}

impl Torrent {
    /// Whether this torrent's pieces are written block by block (see the
    /// module documentation).
    pub(super) fn writes_through(&self) -> bool {
        u64::from(self.info.layout.piece_length()) > self.config.max_buffered_bytes / 4
    }

    /// A new block of a write-through piece: off to the disk now.
    pub(super) fn write_block(&mut self, conn: ConnId, block: BlockRef, data: Bytes) {
        let piece = block.piece;
        self.buffered_bytes += data.len() as u64;
        let w = self.writing.entry(piece.0).or_default();
        w.in_flight += 1;
        w.last_sender = Some(conn);
        let slices = self
            .info
            .layout
            .slices(piece, block.offset, block.length)
            .collect();
        self.out.push_back(TorrentOutput::Write {
            block,
            data,
            slices,
        });
    }

    /// A block handed out with [`TorrentOutput::Write`] is on disk (`ok`)
    /// or could not be written.
    pub fn handle_written(&mut self, now: Instant, block: BlockRef, ok: bool) {
        self.now = now;
        let piece = block.piece;
        let Some(w) = self.writing.get_mut(&piece.0) else {
            return;
        };
        self.buffered_bytes = self.buffered_bytes.saturating_sub(u64::from(block.length));
        w.in_flight = w.in_flight.saturating_sub(1);
        w.failed |= !ok;
        if w.in_flight > 0 {
            return;
        }
        let w = *w;
        if w.failed {
            self.writing.remove(&piece.0);
            // The piece is not on disk: fetch it again; the application
            // decides whether to go on.
            self.picker.on_hash_failed(piece);
            self.emit(super::TorrentEvent::WriteFailed(piece));
        } else if self.picker.is_complete(piece) {
            self.writing.remove(&piece.0);
            self.verify_on_disk(piece, w.last_sender);
        }
        self.fill_requests(now);
    }

    /// Every block of `piece` is written: read it back and hash it.
    fn verify_on_disk(&mut self, piece: PieceIndex, last_sender: Option<ConnId>) {
        let Some(&hash) = self.info.piece_hashes.get(piece.0 as usize) else {
            return;
        };
        if let Some(conn) = last_sender {
            self.note_exclusive(piece.0, conn);
        }
        self.verifying.insert(piece.0);
        self.out.push_back(TorrentOutput::Check {
            piece,
            slices: self.info.layout.piece_slices(piece).collect(),
            hash,
        });
    }
}
