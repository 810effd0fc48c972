//! Verification: a complete piece goes out to be hashed from memory and
//! written; the verdict bans liars or marks the piece on disk, tells every
//! peer (`have`) and may finish the download.

use super::*;

impl Torrent {
    pub(super) fn start_verify(&mut self, piece: u32, last_sender: ConnId) {
        let Some(buf) = self.buffers.get(&piece) else {
            return;
        };
        let blocks: Vec<Bytes> = buf.blocks.iter().flatten().cloned().collect();
        if blocks.len() != buf.blocks.len() {
            return;
        }
        let Some(&hash) = self.info.piece_hashes.get(piece as usize) else {
            return;
        };
        self.note_exclusive(piece, last_sender);
        self.verifying.insert(piece);
        let slices = self.info.layout.piece_slices(PieceIndex(piece)).collect();
        self.out.push_back(TorrentOutput::Verify {
            piece: PieceIndex(piece),
            blocks,
            hash,
            slices,
        });
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

    /// The verdict on a piece handed out with [`TorrentOutput::Verify`]:
    /// whether its hash matched (`ok`) and, if so, whether it was written
    /// (`written` false: the disk failed, e.g. full).
    pub fn handle_verified(&mut self, now: Instant, piece: PieceIndex, ok: bool, written: bool) {
        self.now = now;
        let p = piece.0;
        if !self.verifying.remove(&p) {
            return;
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
            self.after_write(now, piece, written);
            return;
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
        if let Some(buf) = self.buffers.remove(&piece) {
            let bytes: u64 = buf.blocks.iter().flatten().map(|b| b.len() as u64).sum();
            self.buffered_bytes -= bytes;
        }
    }

    /// A verified piece is on disk (`ok`) or could not be written.
    pub(super) fn after_write(&mut self, now: Instant, piece: PieceIndex, ok: bool) {
        self.release_buffer(piece.0);
        if !ok {
            // The disk failed: the piece is not on disk, so it must be
            // fetched again; the application decides whether to go on.
            self.picker.on_hash_failed(piece);
            self.emit(TorrentEvent::WriteFailed(piece));
            return;
        }
        self.mark_on_disk(piece);
        self.emit(TorrentEvent::PieceDone(piece));
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                s.have(now, piece);
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
