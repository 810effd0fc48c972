//! Uploads: peers' requests become disk reads within the upload limit, and
//! the choker decides whom we serve.

use super::*;

impl Torrent {
    pub(super) fn on_request(&mut self, now: Instant, conn: ConnId, block: BlockRef) {
        let size = self.info.layout.piece_size(block.piece);
        let in_range = block.piece.0 < self.info.layout.piece_count()
            && u64::from(block.offset) + u64::from(block.length) <= u64::from(size);
        let told = self
            .told_before_check
            .as_ref()
            .is_some_and(|b| b.get(block.piece));
        if in_range && !self.on_disk.get(block.piece) && told {
            // Announced before a recheck that is still running: the peer
            // asked in good faith.
            if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                s.reject(now, block);
            }
            return;
        }
        if !in_range || !self.on_disk.get(block.piece) {
            if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                s.close(CloseReason::Protocol(PeerError::RequestOutOfRange));
            }
            return;
        }
        self.pending_reads.push_back((conn, block));
        self.pump_uploads(now);
    }

    /// Issues disk reads for queued peer requests while upload tokens last.
    pub(super) fn pump_uploads(&mut self, now: Instant) {
        while let Some(&(conn, block)) = self.pending_reads.front() {
            if !self.peers.contains_key(&conn) {
                self.pending_reads.pop_front();
                continue;
            }
            if !self.up_bucket.try_take(now, u64::from(block.length)) {
                break;
            }
            self.pending_reads.pop_front();
            let slices = self
                .info
                .layout
                .slices(block.piece, block.offset, block.length)
                .collect();
            self.out.push_back(TorrentOutput::Read {
                conn,
                block,
                slices,
            });
        }
    }

    /// The data for a [`TorrentOutput::Read`] (or `None` if reading failed).
    pub fn handle_read(
        &mut self,
        now: Instant,
        conn: ConnId,
        block: BlockRef,
        data: Option<&[u8]>,
    ) {
        self.now = now;
        if self.leaf_read_done(now, conn, block, data) {
            return;
        }
        let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) else {
            return;
        };
        match data {
            Some(d) => {
                s.send_block(now, block, d);
                self.uploaded += d.len() as u64;
            }
            None => s.reject(now, block),
        }
        self.flush(now, conn);
    }

    pub(super) fn maybe_fill_slot(&mut self, now: Instant, conn: ConnId) {
        let unchoked = self
            .peers
            .values()
            .filter_map(|p| p.session.as_ref())
            .filter(|s| !s.am_choking())
            .count();
        let interested = self
            .peers
            .get(&conn)
            .and_then(|p| p.session.as_ref())
            .is_some_and(|s| s.peer_interested());
        let slots = self.config.unchoke_slots + usize::from(self.config.optimistic_unchoke);
        if interested && unchoked < slots {
            if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                s.unchoke(now);
            }
        }
    }

    pub(super) fn rechoke(&mut self, now: Instant, rotate: bool) {
        let mut candidates = Vec::new();
        for (conn, p) in self.peers.iter_mut() {
            if let Some(s) = p.session.as_mut() {
                if s.is_active() {
                    candidates.push(ChokeCandidate {
                        conn: *conn,
                        interested: s.peer_interested(),
                        download_rate: s.download_rate(now),
                        upload_rate: s.upload_rate(now),
                        snubbed: s.is_snubbed(),
                    });
                }
            }
        }
        let seeding = (self.state == TorrentState::Seeding).then_some(self.config.seed_choking);
        let mut set = self.choker.unchoke_set(
            &candidates,
            self.config.unchoke_slots,
            seeding,
            rotate,
            &mut self.rng,
        );
        if !self.config.optimistic_unchoke {
            set.truncate(self.config.unchoke_slots);
        }
        for c in candidates {
            if let Some(s) = self.peers.get_mut(&c.conn).and_then(|p| p.session.as_mut()) {
                if set.contains(&c.conn) {
                    s.unchoke(now);
                } else {
                    s.choke(now);
                }
            }
            self.flush(now, c.conn);
        }
    }
}
