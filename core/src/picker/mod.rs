//! The piece picker: which blocks to request from which peer.
//!
//! BEP 3 leaves the choice to the client; what every good client does, and
//! what this does:
//!
//! - **Availability**: how many connected peers have each piece, from their
//!   bitfield / have / have all / have none messages and disconnects.
//!   Peers that have everything are counted once, globally, so a seed
//!   joining costs O(1).
//! - **Finish what is started**: partially downloaded pieces come first, so
//!   pieces complete (and can be verified, shared and written) early.
//! - **Rarest first** among the rest, ties broken at random from the
//!   picker's seed, so that different peers spread different pieces.
//! - **Extents**: after a fresh piece, the next piece of its extent (about
//!   [`EXTENT_BYTES`], at most [`EXTENT_PIECES`]) if it is as rare and as
//!   wanted, so adjacent pieces complete together and go to disk as one
//!   run (libtorrent's "piece extent affinity" does the same for its disk
//!   cache).
//! - **Blocks**: requests are for 16 KiB blocks; a block is requested from
//!   one peer at a time, except in **endgame** (every missing block already
//!   requested), where the rest are requested from other peers too and the
//!   duplicates cancelled when one arrives.
//! - **Streaming**: a sequential mode, and a list of time-critical pieces
//!   (see [`streaming_window`]) served before everything else.
//! - **Priorities**: per piece, usually from file priorities
//!   ([`PiecePicker::set_file_priorities`]); a skipped file's pieces are not
//!   requested unless they also hold bytes of a wanted file.
//! - **Hash failures**: the piece goes back to be requested again, and the
//!   peers that contributed to it are returned so the torrent can narrow
//!   down who sends bad data. A peer on parole gets whole pieces to itself
//!   ([`PickOptions::exclusive`]), the way libtorrent's parole mode works.
//!
//! The picker holds no time and does no I/O; the torrent calls it as
//! messages arrive. Work per `have` is O(1) (see [`order`]).

mod extents;
mod order;
mod priorities;
mod runs;

use smallvec::SmallVec;

use crate::bitfield::Bitfield;
use crate::handles::ConnId;
use crate::metainfo::{FileLayout, PieceIndex};
use crate::rng::{Rng, Seed};
use crate::wire::{BlockRef, BLOCK_SIZE};
pub use extents::{EXTENT_BYTES, EXTENT_PIECES};
use order::BucketOrder;

/// How much a piece (or file) is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Not downloaded.
    Skip,
    /// After everything else.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Before everything else (after time-critical pieces).
    High,
}

impl Priority {
    /// Index into the picker's per-priority orders (High first).
    fn band(self) -> Option<usize> {
        match self {
            Priority::High => Some(0),
            Priority::Normal => Some(1),
            Priority::Low => Some(2),
            Priority::Skip => None,
        }
    }
}

/// Which pieces a peer has.
#[derive(Clone, Copy, Debug)]
pub enum PeerPieces<'a> {
    /// A seed (have all, or a full bitfield).
    All,
    /// The peer's bitfield.
    Some(&'a Bitfield),
}

impl PeerPieces<'_> {
    fn has(&self, piece: u32) -> bool {
        match self {
            PeerPieces::All => true,
            PeerPieces::Some(b) => b.get(PieceIndex(piece)),
        }
    }
}

/// Options for one [`PiecePicker::pick`] call.
#[derive(Clone, Copy, Debug, Default)]
pub struct PickOptions {
    /// The peer is on parole: only whole pieces nobody else touches, so a
    /// hash failure in them is unambiguously its fault.
    pub exclusive: bool,
}

/// What an arriving block meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockReceived {
    /// New data; `cancel` lists the other peers that were asked for the
    /// same block in endgame, whose requests should now be cancelled.
    New {
        /// Peers to send `cancel` to.
        cancel: SmallVec<[ConnId; 2]>,
    },
    /// Another peer delivered this block first; drop the data.
    Duplicate,
    /// Not a block of a piece we want (already have it, skipped, or not a
    /// block boundary).
    Unwanted,
}

/// A partial piece's blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Block {
    Free,
    Requested(SmallVec<[ConnId; 2]>),
    Received(ConnId),
}

#[derive(Clone, Debug)]
struct Partial {
    piece: u32,
    blocks: Vec<Block>,
    free: u32,
    received: u32,
    /// Set for a piece given to a peer on parole.
    owner: Option<ConnId>,
    contributors: SmallVec<[ConnId; 4]>,
}

/// Most peers asked for the same block in endgame.
const MAX_ENDGAME_REQUESTERS: usize = 3;
const ABSENT: u32 = u32::MAX;

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct PiecePicker {
    piece_length: u32,
    total_length: u64,
    piece_count: u32,
    have: Bitfield,
    /// Peers with a bitfield that includes the piece (seeds not counted).
    availability: Vec<u16>,
    seeds: u32,
    priority: Vec<Priority>,
    /// Wanted, missing pieces by availability, one order per priority band.
    orders: [BucketOrder; 3],
    partials: Vec<Partial>,
    /// Index in `partials` of each piece, or `ABSENT`.
    partial_at: Vec<u32>,
    /// Wanted pieces we do not have.
    wanted_missing: u32,
    /// Blocks of wanted missing pieces that nobody has been asked for.
    free_blocks: u64,
    sequential: bool,
    critical: Vec<PieceIndex>,
    /// Where the last web seed run ended ([`PiecePicker::pick_run`]).
    run_cursor: u32,
    /// The piece after the last fresh one picked, in the same extent.
    next_fresh: Option<u32>,
    rng: Rng,
}

impl PiecePicker {
    /// A picker for a torrent with this layout, every piece missing and at
    /// normal priority.
    pub fn new(layout: &FileLayout, seed: Seed) -> PiecePicker {
        let piece_count = layout.piece_count();
        let mut p = PiecePicker {
            piece_length: layout.piece_length(),
            total_length: layout.total_length(),
            piece_count,
            have: Bitfield::new(piece_count),
            availability: vec![0; piece_count as usize],
            seeds: 0,
            priority: vec![Priority::Normal; piece_count as usize],
            orders: [
                BucketOrder::new(piece_count),
                BucketOrder::new(piece_count),
                BucketOrder::new(piece_count),
            ],
            partials: Vec::new(),
            partial_at: vec![ABSENT; piece_count as usize],
            wanted_missing: piece_count,
            free_blocks: 0,
            sequential: false,
            critical: Vec::new(),
            run_cursor: 0,
            next_fresh: None,
            rng: Rng::new(seed),
        };
        // Insert in a random order: ties within a bucket start shuffled.
        let mut pieces: Vec<u32> = (0..piece_count).collect();
        p.rng.shuffle(&mut pieces);
        for piece in pieces {
            p.orders[1].insert(piece, 0);
            p.free_blocks += u64::from(p.block_count(piece));
        }
        p
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// The pieces we have (verified).
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Whether we have `piece`.
    pub fn has(&self, piece: PieceIndex) -> bool {
        self.have.get(piece)
    }

    /// Whether every wanted piece is verified.
    pub fn is_finished(&self) -> bool {
        self.wanted_missing == 0
    }

    /// Wanted pieces still missing.
    pub fn wanted_missing(&self) -> u32 {
        self.wanted_missing
    }

    /// Every missing block is requested from someone: further picks
    /// duplicate requests.
    pub fn is_endgame(&self) -> bool {
        self.wanted_missing > 0 && self.free_blocks == 0
    }

    /// How many connected peers have `piece` (seeds included).
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        self.availability
            .get(piece.0 as usize)
            .map_or(0, |&a| u32::from(a) + self.seeds)
    }

    /// Whether some block of `piece` is requested or received and the
    /// piece is not yet verified.
    pub fn is_partial(&self, piece: PieceIndex) -> bool {
        self.partial_at
            .get(piece.0 as usize)
            .is_some_and(|&i| i != ABSENT)
    }

    /// Size of `piece` in bytes.
    pub fn piece_size(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * u64::from(self.piece_length);
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    /// Number of 16 KiB blocks in `piece`.
    pub fn block_count(&self, piece: u32) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_SIZE)
    }

    fn block_ref(&self, piece: u32, index: u32) -> BlockRef {
        let offset = index * BLOCK_SIZE;
        BlockRef {
            piece: PieceIndex(piece),
            offset,
            length: (self.piece_size(piece) - offset).min(BLOCK_SIZE),
        }
    }

    fn wanted(&self, piece: u32) -> bool {
        !self.have.get(PieceIndex(piece)) && self.priority[piece as usize] != Priority::Skip
    }

    /// Unrequested blocks of `piece` (all of them if it is not partial).
    fn free_in(&self, piece: u32) -> u32 {
        match self.partial_at[piece as usize] {
            ABSENT => self.block_count(piece),
            i => self.partials[i as usize].free,
        }
    }

    // --- availability -------------------------------------------------

    /// A peer announced `piece` (have, or one bit of its bitfield).
    pub fn peer_has(&mut self, piece: PieceIndex) {
        let p = piece.0;
        let Some(a) = self.availability.get_mut(p as usize) else {
            return;
        };
        if *a == u16::MAX {
            return;
        }
        let old = *a as usize;
        *a += 1;
        if let Some(band) = self.priority[p as usize].band() {
            self.orders[band].raise(p, old);
        }
    }

    /// A peer that had `piece` is gone (or, oddly, lost it).
    pub fn peer_lost(&mut self, piece: PieceIndex) {
        let p = piece.0;
        let Some(a) = self.availability.get_mut(p as usize) else {
            return;
        };
        if *a == 0 {
            return;
        }
        let old = *a as usize;
        *a -= 1;
        if let Some(band) = self.priority[p as usize].band() {
            self.orders[band].lower(p, old);
        }
    }

    /// A peer's bitfield arrived (or a peer with this bitfield joined).
    pub fn peer_bitfield(&mut self, pieces: PeerPieces<'_>) {
        match pieces {
            PeerPieces::All => self.seeds += 1,
            PeerPieces::Some(b) => {
                for piece in b.iter() {
                    self.peer_has(piece);
                }
            }
        }
    }

    /// A peer with these pieces disconnected.
    pub fn peer_gone(&mut self, pieces: PeerPieces<'_>) {
        match pieces {
            PeerPieces::All => self.seeds = self.seeds.saturating_sub(1),
            PeerPieces::Some(b) => {
                for piece in b.iter() {
                    self.peer_lost(piece);
                }
            }
        }
    }

    /// A peer that was counted through its bitfield turned out to have
    /// everything (its last missing piece arrived): count it as a seed.
    pub fn peer_became_seed(&mut self, pieces: &Bitfield) {
        self.peer_gone(PeerPieces::Some(pieces));
        self.seeds += 1;
    }

    // --- picking ------------------------------------------------------

    /// Appends up to `max` blocks for `peer` to request to `out`, marking
    /// them requested. Returns how many were added.
    pub fn pick(
        &mut self,
        peer: ConnId,
        pieces: PeerPieces<'_>,
        max: usize,
        options: PickOptions,
        out: &mut Vec<BlockRef>,
    ) -> usize {
        let start = out.len();
        let room = |out: &Vec<BlockRef>| max.saturating_sub(out.len() - start);

        for i in 0..self.critical.len() {
            if room(out) == 0 {
                break;
            }
            let p = self.critical[i].0;
            if p < self.piece_count && self.wanted(p) && pieces.has(p) {
                self.take(p, peer, room(out), options, out);
            }
        }
        // Partial pieces first, oldest first.
        let mut i = 0;
        while i < self.partials.len() && room(out) > 0 {
            let p = self.partials[i].piece;
            if pieces.has(p) && self.wanted(p) {
                self.take(p, peer, room(out), options, out);
            }
            i += 1;
        }
        if self.sequential {
            let mut p = 0;
            while p < self.piece_count && room(out) > 0 {
                if self.wanted(p) && pieces.has(p) && self.partial_at[p as usize] == ABSENT {
                    self.take(p, peer, room(out), options, out);
                }
                p += 1;
            }
        }
        while room(out) > 0 {
            let Some(p) = self.rarest_fresh(pieces) else {
                break;
            };
            self.take(p, peer, room(out), options, out);
        }
        if room(out) > 0 && self.is_endgame() && !options.exclusive {
            self.endgame(peer, pieces, room(out), out);
        }
        out.len() - start
    }

    /// The rarest wanted piece the peer has that nobody has started.
    fn rarest_fresh(&mut self, pieces: PeerPieces<'_>) -> Option<u32> {
        for band in 0..self.orders.len() {
            if self.orders[band].len() == 0 {
                continue;
            }
            for k in 0..self.orders[band].buckets() {
                let n = self.orders[band].bucket(k).len();
                if n == 0 {
                    continue;
                }
                let offset = self.rng.below(n as u64) as usize;
                let bucket = self.orders[band].bucket(k);
                let found = (0..n)
                    .map(|j| bucket[(offset + j) % n])
                    .find(|&p| self.partial_at[p as usize] == ABSENT && pieces.has(p));
                if let Some(p) = found {
                    return Some(self.in_extent(p, band, k, pieces));
                }
            }
        }
        None
    }

    fn partial_index(&mut self, piece: u32) -> usize {
        match self.partial_at[piece as usize] {
            ABSENT => {
                let blocks = vec![Block::Free; self.block_count(piece) as usize];
                self.partials.push(Partial {
                    piece,
                    free: blocks.len() as u32,
                    blocks,
                    received: 0,
                    owner: None,
                    contributors: SmallVec::new(),
                });
                let i = self.partials.len() - 1;
                self.partial_at[piece as usize] = i as u32;
                i
            }
            i => i as usize,
        }
    }

    /// Requests free blocks of `piece` for `peer`.
    fn take(
        &mut self,
        piece: u32,
        peer: ConnId,
        max: usize,
        options: PickOptions,
        out: &mut Vec<BlockRef>,
    ) {
        let fresh = self.partial_at[piece as usize] == ABSENT;
        let i = self.partial_index(piece);
        let part = &self.partials[i];
        if part.owner.is_some_and(|o| o != peer) || part.free == 0 {
            return;
        }
        if options.exclusive && !fresh && part.owner != Some(peer) {
            return;
        }
        if options.exclusive {
            self.partials[i].owner = Some(peer);
        }
        let mut taken = 0;
        for b in 0..self.partials[i].blocks.len() {
            if taken == max {
                break;
            }
            if self.partials[i].blocks[b] == Block::Free {
                self.partials[i].blocks[b] = Block::Requested(smallvec::smallvec![peer]);
                self.partials[i].free -= 1;
                self.free_blocks -= 1;
                out.push(self.block_ref(piece, b as u32));
                taken += 1;
            }
        }
    }

    /// Duplicate requests for blocks others were asked for.
    fn endgame(
        &mut self,
        peer: ConnId,
        pieces: PeerPieces<'_>,
        max: usize,
        out: &mut Vec<BlockRef>,
    ) {
        let mut added = 0;
        for i in 0..self.partials.len() {
            let piece = self.partials[i].piece;
            if !pieces.has(piece) || !self.wanted(piece) || self.partials[i].owner.is_some() {
                continue;
            }
            for b in 0..self.partials[i].blocks.len() {
                if added == max {
                    return;
                }
                if let Block::Requested(by) = &mut self.partials[i].blocks[b] {
                    if !by.contains(&peer) && by.len() < MAX_ENDGAME_REQUESTERS {
                        by.push(peer);
                        added += 1;
                        out.push(self.block_ref(piece, b as u32));
                    }
                }
            }
        }
    }

    fn block_index(&self, block: &BlockRef) -> Option<usize> {
        let p = block.piece.0;
        if p >= self.piece_count || !block.offset.is_multiple_of(BLOCK_SIZE) {
            return None;
        }
        let index = block.offset / BLOCK_SIZE;
        (index < self.block_count(p) && self.block_ref(p, index) == *block)
            .then_some(index as usize)
    }

    /// A request for `block` sent to `peer` will not be answered (rejected,
    /// timed out, choked, or the peer left): the block can be picked again.
    pub fn abort_request(&mut self, block: BlockRef, peer: ConnId) {
        let Some(b) = self.block_index(&block) else {
            return;
        };
        let i = self.partial_at[block.piece.0 as usize];
        if i == ABSENT {
            return;
        }
        let wanted = self.wanted(block.piece.0);
        let part = &mut self.partials[i as usize];
        if let Block::Requested(by) = &mut part.blocks[b] {
            by.retain(|p| *p != peer);
            if by.is_empty() {
                part.blocks[b] = Block::Free;
                part.free += 1;
                if wanted {
                    self.free_blocks += 1;
                }
            }
        }
        if part.owner == Some(peer) && part.received == 0 && part.free as usize == part.blocks.len()
        {
            part.owner = None;
        }
    }

    /// `peer` has gone: pieces it had to itself (on parole) are open to
    /// everyone again, with whatever it delivered kept. Without this a
    /// parole peer that left mid-piece would hold the rest of its piece
    /// forever and the download would never end.
    pub fn peer_left(&mut self, peer: ConnId) {
        for part in &mut self.partials {
            if part.owner == Some(peer) {
                part.owner = None;
            }
        }
    }

    /// `peer` delivered `block`.
    pub fn on_block(&mut self, block: BlockRef, peer: ConnId) -> BlockReceived {
        let Some(b) = self.block_index(&block) else {
            return BlockReceived::Unwanted;
        };
        let p = block.piece.0;
        if !self.wanted(p) {
            return BlockReceived::Unwanted;
        }
        let i = self.partial_index(p);
        let part = &mut self.partials[i];
        let cancel = match std::mem::replace(&mut part.blocks[b], Block::Received(peer)) {
            Block::Received(first) => {
                part.blocks[b] = Block::Received(first);
                return BlockReceived::Duplicate;
            }
            Block::Free => {
                // Late data after a timeout, or unsolicited: still useful.
                part.free -= 1;
                self.free_blocks -= 1;
                SmallVec::new()
            }
            Block::Requested(by) => by.into_iter().filter(|q| *q != peer).collect(),
        };
        part.received += 1;
        if !part.contributors.contains(&peer) {
            part.contributors.push(peer);
        }
        BlockReceived::New { cancel }
    }

    /// Pieces with a block asked for or received but not yet verified, in
    /// no particular order: what a client shows as "downloading".
    pub fn partial_pieces(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.partials.iter().map(|p| PieceIndex(p.piece))
    }

    /// Whether every block of `piece` has arrived (it can be verified).
    pub fn is_complete(&self, piece: PieceIndex) -> bool {
        match self.partial_at.get(piece.0 as usize) {
            Some(&i) if i != ABSENT => {
                let part = &self.partials[i as usize];
                part.received as usize == part.blocks.len()
            }
            _ => false,
        }
    }

    /// The peers that sent blocks of `piece` so far.
    pub fn contributors(&self, piece: PieceIndex) -> &[ConnId] {
        match self.partial_at.get(piece.0 as usize) {
            Some(&i) if i != ABSENT => &self.partials[i as usize].contributors,
            _ => &[],
        }
    }

    /// Who sent each block of `piece` (`None`: not received); empty when
    /// it is not in progress.
    pub fn senders(&self, piece: PieceIndex) -> Vec<Option<ConnId>> {
        match self.partial_at.get(piece.0 as usize) {
            Some(&i) if i != ABSENT => self.partials[i as usize]
                .blocks
                .iter()
                .map(|b| match b {
                    Block::Received(c) => Some(*c),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn drop_partial(&mut self, piece: u32) -> Option<Partial> {
        let i = self.partial_at[piece as usize];
        if i == ABSENT {
            return None;
        }
        let part = self.partials.remove(i as usize);
        self.partial_at[piece as usize] = ABSENT;
        for later in &self.partials[i as usize..] {
            self.partial_at[later.piece as usize] -= 1;
        }
        Some(part)
    }

    /// `piece` passed its hash check (or was found on disk at start-up):
    /// never pick it again.
    pub fn on_piece_verified(&mut self, piece: PieceIndex) {
        let p = piece.0;
        if p >= self.piece_count || self.have.get(piece) {
            return;
        }
        let was_wanted = self.wanted(p);
        let free = u64::from(self.free_in(p));
        self.drop_partial(p);
        if let Some(band) = self.priority[p as usize].band() {
            self.orders[band].remove(p, self.availability[p as usize] as usize);
        }
        if was_wanted {
            self.wanted_missing -= 1;
            self.free_blocks -= free;
        }
        self.have.set(piece);
    }

    /// `piece` failed its hash check: its blocks will be requested again.
    /// Returns the peers that contributed to it.
    pub fn on_hash_failed(&mut self, piece: PieceIndex) -> SmallVec<[ConnId; 4]> {
        let p = piece.0;
        if p >= self.piece_count {
            return SmallVec::new();
        }
        let wanted = self.wanted(p);
        let Some(part) = self.drop_partial(p) else {
            return SmallVec::new();
        };
        // Requests still out for it are abandoned with the partial; the
        // blocks all count as free again.
        if wanted {
            self.free_blocks += u64::from(self.block_count(p) - part.free);
        }
        part.contributors
    }

    /// Outstanding requests of `peer`, for when it disconnects.
    pub fn requests_of(&self, peer: ConnId) -> Vec<BlockRef> {
        let mut out = Vec::new();
        for part in &self.partials {
            for (b, state) in part.blocks.iter().enumerate() {
                if matches!(state, Block::Requested(by) if by.contains(&peer)) {
                    out.push(self.block_ref(part.piece, b as u32));
                }
            }
        }
        out
    }

    /// Checks the picker's internal bookkeeping (for tests and simulations).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut free = 0u64;
        let mut wanted = 0u32;
        for p in 0..self.piece_count {
            let w = self.wanted(p);
            if w {
                wanted += 1;
                free += u64::from(self.free_in(p));
            }
            let in_orders = self.orders.iter().filter(|o| o.contains(p)).count();
            let expected = usize::from(
                !self.have.get(PieceIndex(p)) && self.priority[p as usize] != Priority::Skip,
            );
            if in_orders != expected {
                return Err("piece in the wrong number of orders");
            }
        }
        for (i, part) in self.partials.iter().enumerate() {
            if self.partial_at[part.piece as usize] as usize != i {
                return Err("partial index out of date");
            }
            if self.have.get(PieceIndex(part.piece)) {
                return Err("partial piece that we have");
            }
            let f = part.blocks.iter().filter(|b| **b == Block::Free).count() as u32;
            let r = part
                .blocks
                .iter()
                .filter(|b| matches!(b, Block::Received(_)))
                .count() as u32;
            if f != part.free || r != part.received {
                return Err("partial block counts out of date");
            }
        }
        if free != self.free_blocks {
            return Err("free block count out of date");
        }
        if wanted != self.wanted_missing {
            return Err("wanted piece count out of date");
        }
        Ok(())
    }
}

/// Time-critical pieces for streaming `file` from byte `position`: the
/// piece under the read position first (a reader waits on it now), then
/// the file's first and last pieces (players read headers and indexes
/// there), then the next `window - 1` pieces, in order (read-ahead).
pub fn streaming_window(
    layout: &FileLayout,
    file: usize,
    position: u64,
    window: u32,
) -> Vec<PieceIndex> {
    let range = layout.file_pieces(file);
    if range.is_empty() {
        return Vec::new();
    }
    let first = range.start;
    let last = PieceIndex(range.end.0 - 1);
    let from = layout
        .locate(file, position)
        .map_or(first, |(piece, _)| piece);
    let mut out = vec![from];
    for p in [first, last] {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    for p in from.0.saturating_add(1)..range.end.0.min(from.0.saturating_add(window)) {
        if !out.contains(&PieceIndex(p)) {
            out.push(PieceIndex(p));
        }
    }
    out
}

#[cfg(test)]
mod tests;
