//! What the picker is asked to prefer: each piece's priority (from file
//! priorities: skip, low, normal, high), sequential order, and the
//! time-critical pieces a stream needs first.

use super::{PiecePicker, Priority};
use crate::metainfo::{FileLayout, PieceIndex};

impl PiecePicker {
    /// Sets one piece's priority.
    pub fn set_priority(&mut self, piece: PieceIndex, priority: Priority) {
        let p = piece.0;
        let Some(&old) = self.priority.get(p as usize) else {
            return;
        };
        if old == priority {
            return;
        }
        let missing = !self.have.get(piece);
        if missing {
            let key = self.availability[p as usize] as usize;
            if let Some(band) = old.band() {
                self.orders[band].remove(p, key);
            }
            if let Some(band) = priority.band() {
                self.orders[band].insert(p, key);
            }
            let free = u64::from(self.free_in(p));
            match (old == Priority::Skip, priority == Priority::Skip) {
                (true, false) => {
                    self.wanted_missing += 1;
                    self.free_blocks += free;
                }
                (false, true) => {
                    self.wanted_missing -= 1;
                    self.free_blocks -= free;
                }
                _ => {}
            }
        }
        self.priority[p as usize] = priority;
    }

    /// The priority of `piece`.
    pub fn priority(&self, piece: PieceIndex) -> Priority {
        self.priority
            .get(piece.0 as usize)
            .copied()
            .unwrap_or(Priority::Skip)
    }

    /// Sets piece priorities from file priorities: a piece gets the highest
    /// priority of the (non-padding) files it holds bytes of, so a piece
    /// shared between a skipped and a wanted file is still downloaded.
    pub fn set_file_priorities(&mut self, layout: &FileLayout, files: &[Priority]) {
        let mut pieces = vec![Priority::Skip; self.piece_count as usize];
        for (file, &prio) in files.iter().enumerate() {
            if layout.is_padding(file) {
                continue;
            }
            let range = layout.file_pieces(file);
            for p in range.start.0..range.end.0 {
                let slot = &mut pieces[p as usize];
                *slot = (*slot).max(prio);
            }
        }
        for (p, prio) in pieces.into_iter().enumerate() {
            self.set_priority(PieceIndex(p as u32), prio);
        }
    }

    /// Whether pieces are picked in index order.
    pub fn is_sequential(&self) -> bool {
        self.sequential
    }

    /// In sequential mode, pieces are picked in index order (after
    /// time-critical and partial pieces) instead of rarest first.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.sequential = sequential;
    }

    /// Pieces to pick before everything else, in this order (see
    /// [`streaming_window`](super::streaming_window)).
    pub fn set_critical(&mut self, pieces: Vec<PieceIndex>) {
        self.critical = pieces;
    }

    /// The pieces to pick before everything else, in order.
    pub fn critical(&self) -> &[PieceIndex] {
        &self.critical
    }
}
