//! The start-up check: every piece on disk hashed against its SHA-1
//! ([`TorrentOutput::Check`]) before the torrent downloads or seeds.

use super::*;

impl Torrent {
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
        let checking = self.state == TorrentState::Checking
            || (paused && self.paused_from == TorrentState::Checking);
        if !checking || self.checks_in_flight == 0 {
            return;
        }
        self.checks_in_flight -= 1;
        if ok && piece.0 < self.info.layout.piece_count() {
            self.picker.on_piece_verified(piece);
            self.mark_on_disk(piece);
        }
        self.pump_checks();
        if self.checks_in_flight == 0 && self.checks_pending.is_empty() {
            if paused {
                // Checking finished while paused: resume into downloading.
                self.paused_from = TorrentState::Downloading;
                return;
            }
            self.state = TorrentState::Downloading;
            self.emit(TorrentEvent::StateChanged(TorrentState::Downloading));
            self.finished_reported = self.picker.is_finished();
            self.after_progress();
            self.connect_more(now);
            self.pump_announces(now);
        }
    }
}
