//! Extents: adjacent pieces fetched one after another, so they complete
//! together and go to disk as one run (one job, one large write) — see
//! the module documentation of [`super`] and `torrent::verification`.

use super::{PeerPieces, PiecePicker, ABSENT};
use crate::metainfo::PieceIndex;

/// Bytes in a picking extent (see the module documentation): one disk
/// write of adjacent small pieces.
pub const EXTENT_BYTES: u64 = 1 << 20;

/// Most pieces in an extent: with tiny pieces, a 1 MiB extent would have
/// every peer that starts one fetch the same long row of pieces (30
/// leechers of one seeder of a thousand 16 KiB pieces made the seeder
/// upload 3.3 times the torrent instead of under 3).
pub const EXTENT_PIECES: u64 = 4;

impl PiecePicker {
    /// The pieces of `piece`'s extent (pieces picked one after another).
    pub fn extent_of(&self, piece: PieceIndex) -> std::ops::Range<u32> {
        let n = (EXTENT_BYTES / u64::from(self.piece_length)).clamp(1, EXTENT_PIECES) as u32;
        let start = piece.0 / n * n;
        start..start.saturating_add(n).min(self.piece_count)
    }

    /// The fresh piece to take instead of `found` (fresh, in band `band`
    /// with availability `k`), as rare and as wanted: the next such piece
    /// of the extent being fetched, or the first of `found`'s extent.
    pub(super) fn in_extent(
        &mut self,
        found: u32,
        band: usize,
        k: usize,
        pieces: PeerPieces<'_>,
    ) -> u32 {
        let alike = |q: u32| {
            q < self.piece_count
                && self.partial_at[q as usize] == ABSENT
                && self.wanted(q)
                && self.priority[q as usize].band() == Some(band)
                && usize::from(self.availability[q as usize]) == k
                && pieces.has(q)
        };
        // The rest of the extent being fetched, else `found`'s.
        let going = self
            .next_fresh
            .and_then(|c| (c..self.extent_of(PieceIndex(c)).end).find(|&q| alike(q)));
        let pick = going.unwrap_or_else(|| {
            self.extent_of(PieceIndex(found))
                .find(|&q| alike(q))
                .unwrap_or(found)
        });
        let next = pick + 1;
        self.next_fresh = self
            .extent_of(PieceIndex(pick))
            .contains(&next)
            .then_some(next);
        pick
    }
}
