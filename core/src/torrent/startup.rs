//! The start-up check: every piece on disk hashed against its SHA-1
//! ([`TorrentOutput::Check`]) before the torrent downloads or seeds.

use super::*;

impl Torrent {
    /// Starts downloading or seeding from what `start` says is on disk
    /// (checking it first for [`StartMode::Check`]).
    pub(super) fn begin(&mut self, now: Instant, start: StartMode) {
        self.state = TorrentState::Downloading;
        let count = self.info.layout.piece_count();
        match start {
            StartMode::Fresh => {}
            StartMode::Trusted(have) => {
                for p in have.iter() {
                    if p.0 < count {
                        self.picker.on_piece_verified(p);
                        self.on_disk.set(p);
                    }
                }
            }
            StartMode::Check => {
                self.state = TorrentState::Checking;
                self.checks_pending = (0..count).collect();
                self.pump_checks();
            }
        }
        self.recount_left();
        if self.state != TorrentState::Checking {
            // Complete from the start: a seed, not a finished download (no
            // `Finished` event, no `completed` announce).
            self.finished_reported = self.picker.is_finished();
            self.after_progress();
        }
        self.list.set_seeding(self.state == TorrentState::Seeding);
        self.emit(TorrentEvent::StateChanged(self.state));
        self.pump_announces(now);
        if self.state != TorrentState::Checking {
            self.checked(now, &Bitfield::new(count));
        }
    }

    /// What the check found is settled: peers already connected hear of
    /// every piece on disk that `told` lacks (BEP 3 allows the bitfield
    /// only right after the handshake, so these are `have`s), and the
    /// torrent goes looking for peers and blocks.
    fn checked(&mut self, now: Instant, told: &Bitfield) {
        let news: Vec<PieceIndex> = self.on_disk.iter().filter(|&p| !told.get(p)).collect();
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                for &p in &news {
                    s.have(now, p);
                }
            }
            self.update_interest(now, c);
            self.flush(now, c);
            self.drop_if_both_seeds(now, c);
        }
        self.connect_more(now);
        self.fill_requests(now);
    }

    /// Forces a recheck: every piece is hashed from disk again as with
    /// [`StartMode::Check`] (the user suspects the files changed). Requests
    /// pause meanwhile (outstanding ones are cancelled, partial pieces
    /// dropped); the connections stay. Afterwards what is on disk and the
    /// bytes left are what the check found, peers hear of pieces they were
    /// not told of yet, and downloading or seeding resumes. Only while
    /// downloading or seeding.
    pub fn recheck(&mut self, now: Instant) {
        self.now = now;
        if !matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            return;
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in &conns {
            if let Some(s) = self.peers.get_mut(c).and_then(|p| p.session.as_mut()) {
                for b in s.outstanding().copied().collect::<Vec<_>>() {
                    s.cancel(now, b);
                }
            }
        }
        // A fresh picker: nothing verified, the same priorities and order,
        // the peers' pieces counted again.
        let count = self.info.layout.piece_count();
        let mut picker = PiecePicker::new(&self.info.layout, self.rng.child_seed());
        for p in (0..count).map(PieceIndex) {
            picker.set_priority(p, self.picker.priority(p));
        }
        picker.set_sequential(self.picker.is_sequential());
        for p in self.peers.values() {
            match (
                p.counted,
                p.session.as_ref().map(PeerSession::remote_pieces),
            ) {
                (Counted::Seed, _) => picker.peer_bitfield(PeerPieces::All),
                (Counted::Bits, Some(RemotePieces::Some(b))) => {
                    picker.peer_bitfield(PeerPieces::Some(b));
                }
                _ => {}
            }
        }
        self.picker = picker;
        // Pieces out for verification keep their verdict (complete ones
        // go out now); partial ones go.
        self.pump_ready(now, true);
        let partial: Vec<u32> = self
            .buffers
            .keys()
            .copied()
            .filter(|p| !self.verifying.contains(p))
            .collect();
        for p in partial {
            self.release_buffer(p);
        }
        self.told_before_check = Some(std::mem::replace(&mut self.on_disk, Bitfield::new(count)));
        self.recount_left();
        self.set_state(TorrentState::Checking);
        self.checks_pending = (0..count).collect();
        self.pump_checks();
        for c in conns {
            self.flush(now, c);
        }
    }

    /// While the start-up check runs: pieces whose check has come back,
    /// and pieces in all (for a progress display); `None` otherwise.
    pub fn check_progress(&self) -> Option<(u32, u32)> {
        let count = self.info.layout.piece_count();
        let checking = self.state == TorrentState::Checking
            || (matches!(self.state, TorrentState::Paused | TorrentState::Queued)
                && self.paused_from == TorrentState::Checking);
        let waiting = self.checks_pending.len() + self.checks_in_flight;
        checking.then(|| (count.saturating_sub(waiting as u32), count))
    }

    pub(super) fn pump_checks(&mut self) {
        while self.checks_in_flight < self.config.max_checks_in_flight {
            let Some(p) = self.checks_pending.pop_front() else {
                break;
            };
            let piece = PieceIndex(p);
            let Some(&hash) = self.info.piece_hashes.get(p as usize) else {
                continue;
            };
            self.checks_in_flight += 1;
            self.out.push_back(TorrentOutput::Check {
                piece,
                slices: self.info.layout.piece_slices(piece).collect(),
                hash,
            });
        }
    }

    /// The result of a [`TorrentOutput::Check`]: whether the piece on disk
    /// matched its hash.
    pub fn handle_checked(&mut self, now: Instant, piece: PieceIndex, ok: bool) {
        self.now = now;
        if self.verifying.contains(&piece.0) {
            // A write-through piece: its data is already on disk.
            self.handle_verified(now, piece, ok, true);
            return;
        }
        let paused = self.state == TorrentState::Paused;
        let queued = self.state == TorrentState::Queued;
        let checking = self.state == TorrentState::Checking
            || ((paused || queued) && self.paused_from == TorrentState::Checking);
        if !checking || self.checks_in_flight == 0 {
            return;
        }
        self.checks_in_flight -= 1;
        if ok && piece.0 < self.info.layout.piece_count() {
            self.picker.on_piece_verified(piece);
            self.mark_on_disk(piece);
        }
        if !queued {
            // A queued torrent's disk time belongs to those with a slot.
            self.pump_checks();
        }
        if self.checks_in_flight == 0 && self.checks_pending.is_empty() {
            if paused || queued {
                // Checking finished while out of the running: resume into
                // downloading (a seed if it is all there, without a
                // `Finished`: nothing was downloaded).
                self.paused_from = TorrentState::Downloading;
                self.finished_reported = self.picker.is_finished();
                return;
            }
            // Straight to seeding when it is all there: one state change,
            // not a glimpse of downloading first.
            self.state = TorrentState::Downloading;
            self.finished_reported = self.picker.is_finished();
            self.after_progress();
            if self.state == TorrentState::Downloading {
                self.emit(TorrentEvent::StateChanged(TorrentState::Downloading));
            }
            self.pump_announces(now);
            let told = self
                .told_before_check
                .take()
                .unwrap_or_else(|| Bitfield::new(self.info.layout.piece_count()));
            self.checked(now, &told);
        }
    }
}
