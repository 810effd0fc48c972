//! Runs for web seeds (BEP 19): an HTTP server answers one range request
//! as fast as many small ones, so a web seed is given a *contiguous* run
//! of blocks — whole pieces in file order — while peers take the rarest
//! pieces one by one. The two meet without overlap: a run stops at the
//! first piece someone else has started.

use super::{Block, PiecePicker, ABSENT, MAX_ENDGAME_REQUESTERS};
use crate::handles::ConnId;
use crate::wire::BlockRef;

impl PiecePicker {
    /// Appends to `out` up to `max` blocks for the web seed `seed`, one
    /// contiguous run of the torrent's bytes, marking them requested.
    /// Where the run starts: a time-critical piece (streaming), else the
    /// first free block of a piece already started (someone else's
    /// leftovers finish sooner), else the next piece nobody has started
    /// from where the last run ended, highest priority first; in endgame,
    /// blocks others were asked for. Returns how many were added.
    pub fn pick_run(&mut self, seed: ConnId, max: usize, out: &mut Vec<BlockRef>) -> usize {
        let start = out.len();
        if max == 0 {
            return 0;
        }
        let Some((mut piece, mut block)) = self.run_start(seed) else {
            return self.endgame_run(seed, max, out);
        };
        loop {
            let i = self.partial_index(piece);
            let count = self.partials[i].blocks.len();
            while block < count
                && out.len() - start < max
                && self.partials[i].blocks[block] == Block::Free
            {
                self.partials[i].blocks[block] = Block::Requested(smallvec::smallvec![seed]);
                self.partials[i].free -= 1;
                self.free_blocks -= 1;
                out.push(self.block_ref(piece, block as u32));
                block += 1;
            }
            let next = piece + 1;
            if block < count || out.len() - start == max || !self.run_continues_into(next, seed) {
                break;
            }
            piece = next;
            block = 0;
        }
        self.run_cursor = piece;
        out.len() - start
    }

    /// Whether a run may go on into `piece`: wanted, and its first block
    /// free (nobody started it, or what was asked was given back).
    fn run_continues_into(&self, piece: u32, seed: ConnId) -> bool {
        if piece >= self.piece_count || !self.wanted(piece) {
            return false;
        }
        match self.partial_at[piece as usize] {
            ABSENT => true,
            i => {
                let part = &self.partials[i as usize];
                part.owner.is_none_or(|o| o == seed) && part.blocks.first() == Some(&Block::Free)
            }
        }
    }

    /// Where the next run for `seed` begins: a piece and its first free
    /// block.
    fn run_start(&self, seed: ConnId) -> Option<(u32, usize)> {
        let open = |p: u32| -> Option<usize> {
            if p >= self.piece_count || !self.wanted(p) {
                return None;
            }
            match self.partial_at[p as usize] {
                ABSENT => Some(0),
                i => {
                    let part = &self.partials[i as usize];
                    if part.owner.is_some_and(|o| o != seed) {
                        return None;
                    }
                    part.blocks.iter().position(|b| *b == Block::Free)
                }
            }
        };
        for c in &self.critical {
            if let Some(b) = open(c.0) {
                return Some((c.0, b));
            }
        }
        for part in &self.partials {
            if let Some(b) = open(part.piece) {
                return Some((part.piece, b));
            }
        }
        // An unstarted wanted piece has free blocks: none left (endgame),
        // no scan.
        if self.free_blocks == 0 {
            return None;
        }
        for band in 0..self.orders.len() {
            if self.orders[band].len() == 0 {
                continue;
            }
            let from = self.run_cursor.min(self.piece_count);
            let found = (from..self.piece_count).chain(0..from).find(|&p| {
                self.partial_at[p as usize] == ABSENT
                    && self.wanted(p)
                    && self.priority[p as usize].band() == Some(band)
            });
            if let Some(p) = found {
                return Some((p, 0));
            }
        }
        None
    }

    /// Endgame for a web seed: the first block others were asked for and
    /// `seed` was not, and those after it in the same piece.
    fn endgame_run(&mut self, seed: ConnId, max: usize, out: &mut Vec<BlockRef>) -> usize {
        if !self.is_endgame() {
            return 0;
        }
        let joinable = |b: &Block| matches!(b, Block::Requested(by) if !by.contains(&seed) && by.len() < MAX_ENDGAME_REQUESTERS);
        let mut added = 0;
        for i in 0..self.partials.len() {
            let piece = self.partials[i].piece;
            if !self.wanted(piece) || self.partials[i].owner.is_some() {
                continue;
            }
            let Some(first) = self.partials[i].blocks.iter().position(joinable) else {
                continue;
            };
            for b in first..self.partials[i].blocks.len() {
                if added == max || !joinable(&self.partials[i].blocks[b]) {
                    break;
                }
                if let Block::Requested(by) = &mut self.partials[i].blocks[b] {
                    by.push(seed);
                }
                out.push(self.block_ref(piece, b as u32));
                added += 1;
            }
            break;
        }
        added
    }

    /// The first piece a run would start at, for tests.
    #[cfg(test)]
    pub(super) fn next_run_piece(&self) -> Option<crate::metainfo::PieceIndex> {
        self.run_start(ConnId::new(u64::MAX))
            .map(|(p, _)| crate::metainfo::PieceIndex(p))
    }
}
