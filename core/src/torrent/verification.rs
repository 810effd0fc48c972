//! Verification: complete pieces go out to be hashed from memory and
//! written; the verdict bans liars or marks the piece on disk, tells every
//! peer (`have`) and may finish the download.
//!
//! Adjacent pieces go together: the picker hands out the pieces of an
//! extent (about a MiB) one after another ([`PiecePicker::extent_of`]), so
//! a complete piece whose next piece in the extent is on its way waits for
//! it (at most [`READY_HOLD`], and not while more than a quarter of the
//! memory budget waits), and the run goes to the disk as one job: every
//! piece hashed, the run written with as few writes as its files allow.
//! Pieces of 256 KiB cost a job, a thread wake-up and a device write each;
//! a run of four costs one. Runs wait for a verdict while
//! [`RUNS_IN_FLIGHT`] are at the disk (more would not hash faster, and
//! each holds a write buffer), except those a stream waits for and those
//! sent when the torrent pauses, stops or is queued.

use super::*;

/// Longest a complete piece waits for the next piece of its extent.
const READY_HOLD: Duration = Duration::from_millis(200);

/// Most bytes in one run.
const MAX_RUN_BYTES: u64 = 4 << 20;

/// Runs at the disk at once, beyond which complete pieces wait for a
/// verdict (see the module documentation for the exceptions).
const RUNS_IN_FLIGHT: usize = 4;

impl Torrent {
    /// Every block of `piece` is in (the last from `last_sender`).
    pub(super) fn piece_complete(&mut self, now: Instant, piece: u32, last_sender: ConnId) {
        // Whether it ends a parole is known now: its sender may be gone by
        // the time it goes out.
        self.note_exclusive(piece, last_sender);
        self.ready.insert(piece, now);
        self.pump_ready(now, false);
    }

    /// Sends out the runs of waiting pieces that may go, lowest first,
    /// while fewer than [`RUNS_IN_FLIGHT`] are at the disk; a run with a
    /// piece a stream waits for goes regardless, and every run if `all`
    /// (the torrent pauses, stops, is queued or rechecked).
    pub(super) fn pump_ready(&mut self, now: Instant, all: bool) {
        let piece_length = u64::from(self.info.layout.piece_length());
        let crowded = self.ready.len() as u64 * piece_length > self.max_buffered_bytes() / 4;
        let mut from = 0;
        while let Some((&first, _)) = self.ready.range(from..).next() {
            let mut last = first;
            let (mut overdue, mut urgent) = (false, false);
            while let Some(&since) = self.ready.get(&last) {
                overdue |= since + READY_HOLD <= now;
                urgent |= self.picker.critical().contains(&PieceIndex(last));
                if !self.ready.contains_key(&(last + 1))
                    || u64::from(last - first + 2) * piece_length > MAX_RUN_BYTES
                {
                    break;
                }
                last += 1;
            }
            let room = self.runs_out < RUNS_IN_FLIGHT;
            let due = crowded || overdue || !self.waits_for_next(last);
            if all || urgent || (room && due) {
                self.dispatch_run(first, last);
            }
            from = last + 1;
        }
    }

    /// Whether complete `piece` should wait for the next piece of its
    /// extent: some of its blocks are requested or in, and it is not yet
    /// complete.
    fn waits_for_next(&self, piece: u32) -> bool {
        let next = piece + 1;
        self.picker.extent_of(PieceIndex(piece)).contains(&next)
            && self.picker.is_partial(PieceIndex(next))
            && !self.ready.contains_key(&next)
            && !self.verifying.contains(&next)
    }

    /// When a waiting piece has waited long enough (if a run may go).
    pub(super) fn ready_deadline(&self) -> Option<Instant> {
        if self.runs_out >= RUNS_IN_FLIGHT {
            return None;
        }
        let oldest = *self.ready.values().min()?;
        Some(oldest + READY_HOLD)
    }

    /// Hands pieces `first..=last` (complete, in memory) to the disk as
    /// one [`TorrentOutput::Verify`] (their blocks and slices come from
    /// the same layout, so they always line up).
    fn dispatch_run(&mut self, first: u32, last: u32) {
        let mut run = Run::default();
        for piece in first..=last {
            self.ready.remove(&piece);
            let Some(buf) = self.buffers.get(&piece) else {
                continue;
            };
            let blocks: Vec<Bytes> = buf.blocks.iter().flatten().cloned().collect();
            let Some(&hash) = self.info.piece_hashes.get(piece as usize) else {
                continue;
            };
            if blocks.len() != buf.blocks.len() {
                continue;
            }
            self.verifying.insert(piece);
            if run.next != Some(piece) {
                self.send_verify(&mut run);
            }
            let slices = self.info.layout.piece_slices(PieceIndex(piece));
            run.push(piece, hash, blocks, slices);
        }
        self.send_verify(&mut run);
    }

    fn send_verify(&mut self, run: &mut Run) {
        if let Some(verify) = run.take() {
            self.runs_out += 1;
            self.out.push_back(verify);
        }
    }

    /// Remembers that `piece` came from one peer on parole alone (its
    /// verdict ends or prolongs the parole).
    pub(super) fn note_exclusive(&mut self, piece: u32, last_sender: ConnId) {
        let contributors = self.picker.contributors(PieceIndex(piece));
        if contributors.len() == 1
            && self
                .peers
                .get(&last_sender)
                .is_some_and(|p| self.list.on_parole(&p.addr))
        {
            self.exclusive_pieces.insert(piece, last_sender);
        }
    }

    /// The verdicts on a run handed out with [`TorrentOutput::Verify`],
    /// from `first` on, and whether the run was written (`written` false:
    /// a piece failed, or the disk did, e.g. full).
    pub fn handle_verified_run(
        &mut self,
        now: Instant,
        first: PieceIndex,
        verdicts: &[bool],
        written: bool,
    ) {
        self.now = now;
        self.runs_out = self.runs_out.saturating_sub(1);
        let all = verdicts.iter().all(|&ok| ok);
        let mut stored = Vec::with_capacity(verdicts.len());
        for (&ok, piece) in verdicts.iter().zip(first.0..) {
            if ok && !all {
                // Not written for another piece's sake: it goes again,
                // alone.
                if self.verifying.remove(&piece) {
                    self.dispatch_run(piece, piece);
                }
                continue;
            }
            stored.extend(self.take_verdict(now, PieceIndex(piece), ok, written));
        }
        self.send_haves(now, &stored);
        self.pump_ready(now, false);
    }

    /// The verdict on one piece: whether its hash matched (`ok`) and, if
    /// so, whether it is on disk (`written` false: the disk failed, e.g.
    /// full). A write-through piece's comes from its last run or from
    /// reading it back.
    pub(crate) fn handle_verified(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        ok: bool,
        written: bool,
    ) {
        if let Some(piece) = self.take_verdict(now, piece, ok, written) {
            self.send_haves(now, &[piece]);
        }
    }

    /// [`Self::handle_verified`] short of announcing: the piece, if it is
    /// now verified and on disk, for [`Self::send_haves`].
    fn take_verdict(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        ok: bool,
        written: bool,
    ) -> Option<PieceIndex> {
        self.now = now;
        let p = piece.0;
        if !self.verifying.remove(&p) {
            return None;
        }
        let contributors: Vec<ConnId> = self.picker.contributors(piece).to_vec();
        // Each contributor with its own address: connected, or gone since
        // (kept in `departed`; pairing two lists by position would blame
        // the wrong peer). Web seeds have none.
        let sources: Vec<(ConnId, Option<SocketAddr>)> = contributors
            .iter()
            .map(|c| {
                let addr = self.peers.get(c).map(|peer| peer.addr);
                (*c, addr.or_else(|| self.departed.get(c).copied()))
            })
            .collect();
        let addrs: Vec<SocketAddr> = sources.iter().filter_map(|(_, a)| *a).collect();
        let exclusive = self.exclusive_pieces.remove(&p).is_some();
        if ok {
            self.picker.on_piece_verified(piece);
            for a in &addrs {
                self.list.good_piece(a, exclusive);
            }
            return self.after_write(piece, written).then_some(piece);
        }
        self.emit(TorrentEvent::HashFailed {
            piece,
            contributors: addrs.clone(),
        });
        // A contributor already banned (for bad data elsewhere) is the
        // likely culprit: its honest co-contributors keep their trust,
        // or every piece a liar touched before it was caught would
        // cost them some until they too were banned.
        let known_liar = addrs.iter().any(|a| self.list.is_banned(a));
        // A v2 piece's leaves can tell exactly who sent the bad blocks
        // (the blame then waits for them).
        let deferred = !known_liar && self.blame_by_leaves(now, piece, &sources);
        self.release_buffer(p);
        self.picker.on_hash_failed(piece);
        if !known_liar && !deferred {
            self.blame(now, piece, &sources, contributors.len() == 1);
        }
        self.fill_requests(now);
        None
    }

    /// Blames `culprits` for `piece`: each loses trust (and is banned when
    /// `sole`, the certain culprit, or out of trust); a web seed is
    /// dropped.
    pub(super) fn blame(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        culprits: &[(ConnId, Option<SocketAddr>)],
        sole: bool,
    ) {
        let conns: Vec<ConnId> = culprits.iter().map(|(c, _)| *c).collect();
        self.blame_web_seeds(piece, &conns, sole);
        for (conn, addr) in culprits {
            let Some(addr) = addr else {
                continue;
            };
            let known = self.list.is_banned(addr);
            if self.list.bad_piece(addr, sole) && !known {
                self.emit(TorrentEvent::PeerBanned(*addr));
                self.drop_peer(now, *conn, CloseReason::Protocol(PeerError::BadData), true);
            }
        }
    }

    pub(super) fn release_buffer(&mut self, piece: u32) {
        self.ready.remove(&piece);
        if let Some(buf) = self.buffers.remove(&piece) {
            let bytes: u64 = buf.blocks.iter().flatten().map(|b| b.len() as u64).sum();
            self.buffered_bytes -= bytes;
        }
    }

    /// A verified piece is on disk (`ok`) or could not be written;
    /// whether it is now ours to announce.
    fn after_write(&mut self, piece: PieceIndex, ok: bool) -> bool {
        self.release_buffer(piece.0);
        if !ok {
            // The disk failed: the piece is not on disk, so it must be
            // fetched again; the application decides whether to go on.
            self.picker.on_hash_failed(piece);
            self.emit(TorrentEvent::WriteFailed(piece));
            return false;
        }
        self.mark_on_disk(piece);
        self.emit(TorrentEvent::PieceDone(piece));
        true
    }

    /// Tells every peer of `pieces`, now on disk (BEP 3 `have`), in one
    /// send each: a run's pieces are announced together rather than one
    /// message per piece. Then the requests freed by them go out.
    fn send_haves(&mut self, now: Instant, pieces: &[PieceIndex]) {
        if pieces.is_empty() {
            return;
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                for &piece in pieces {
                    s.have(now, piece);
                }
            }
            self.flush(now, c);
        }
        self.after_progress();
        self.fill_requests(now);
    }

    /// Switches to seeding once every wanted piece is on disk.
    pub(super) fn after_progress(&mut self) {
        if self.is_finished() && self.state == TorrentState::Downloading {
            self.set_state(TorrentState::Seeding);
            if !self.finished_reported {
                self.finished_reported = true;
                self.emit(TorrentEvent::Finished);
                self.announcer.completed(self.now);
                self.pump_announces(self.now);
            }
            let now = self.now;
            let conns: Vec<ConnId> = self.peers.keys().copied().collect();
            for c in conns {
                if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                    s.set_interested(now, false);
                }
                self.flush(now, c);
                self.drop_if_both_seeds(now, c);
            }
        } else if !self.is_finished() && self.state == TorrentState::Seeding {
            // New files were selected.
            self.set_state(TorrentState::Downloading);
        }
    }
}

/// A [`TorrentOutput::Verify`] being put together.
#[derive(Default)]
struct Run {
    first: u32,
    /// The piece that would continue it.
    next: Option<u32>,
    pieces: Vec<VerifyPiece>,
    blocks: Vec<Bytes>,
    slices: Vec<FileSlice>,
}

impl Run {
    fn push(
        &mut self,
        piece: u32,
        hash: PieceHash,
        blocks: Vec<Bytes>,
        slices: impl Iterator<Item = FileSlice>,
    ) {
        if self.next.is_none() {
            self.first = piece;
        }
        self.next = Some(piece + 1);
        self.pieces.push(VerifyPiece {
            hash,
            blocks: blocks.len(),
        });
        self.blocks.extend(blocks);
        for s in slices {
            match self.slices.last_mut() {
                // The next bytes of the same file: one slice, one write.
                Some(l)
                    if l.file == s.file
                        && l.padding == s.padding
                        && l.offset + l.length == s.offset =>
                {
                    l.length += s.length;
                }
                _ => self.slices.push(s),
            }
        }
    }

    /// The run as an output (none if empty); the run is empty after.
    fn take(&mut self) -> Option<TorrentOutput> {
        let run = std::mem::take(self);
        run.next.map(|_| TorrentOutput::Verify {
            first: PieceIndex(run.first),
            pieces: run.pieces,
            blocks: run.blocks,
            slices: run.slices,
        })
    }
}
