//! Uploads: peers' requests become disk reads within the upload limit, and
//! the choker decides whom we serve.

use super::*;

/// The most bytes one upload read covers (16 blocks): large enough that a
/// piece costs a few disk jobs, small enough that a peer's reads in flight
/// stay a few of them.
const READ_SPAN: u32 = 256 * 1024;

/// Upload bytes one peer may hold in memory (being read, or sent and not
/// yet written to its socket): half a second of its upload rate, within
/// these bounds. 8 MiB keeps a loopback leecher at 450 MiB/s busy (4 MiB
/// cost it 5 %); a peer that stops reading drops to the floor.
const WINDOW_FLOOR: u64 = 1 << 20;
const WINDOW_CEILING: u64 = 8 << 20;

/// What one peer's uploads hold in memory: bytes being read for it and
/// bytes handed to its connection that the driver has not reported
/// written ([`Torrent::handle_sent`]); while those fill its window
/// ([`WINDOW_FLOOR`] to [`WINDOW_CEILING`]), its requests are held back
/// here instead of read.
#[derive(Debug, Default)]
pub(super) struct UploadWindow {
    reading: u64,
    unsent: u64,
    held: VecDeque<BlockRef>,
}

impl UploadWindow {
    /// Bytes went to the peer's connection, to be written.
    pub(super) fn handed_over(&mut self, bytes: usize) {
        self.unsent += bytes as u64;
    }

    pub(super) fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    fn has_room(&self, session: Option<&PeerSession>, now: Instant) -> bool {
        let rate = session.map_or(0, |s| s.rates_at(now).1);
        self.reading + self.unsent < (rate / 2).clamp(WINDOW_FLOOR, WINDOW_CEILING)
    }
}

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
        // Read once the peer's whole message batch is in (`flush`), so a
        // run of requests becomes one read.
        self.pending_reads.push_back((conn, block));
    }

    /// Issues disk reads for queued peer requests while upload tokens last.
    /// Consecutive requests of one peer for adjacent blocks of one piece
    /// (how clients ask for a piece) are read at once, up to
    /// [`READ_SPAN`]: one disk job and one buffer instead of one per 16 KiB.
    /// A peer whose [`UploadWindow`] is full gets no read: its requests
    /// wait with it until its connection has written enough.
    pub(super) fn pump_uploads(&mut self, now: Instant) {
        while let Some(&(conn, first)) = self.pending_reads.front() {
            let Some(peer) = self.peers.get_mut(&conn) else {
                self.pending_reads.pop_front();
                continue;
            };
            if !peer.uploads.has_room(peer.session.as_ref(), now) {
                self.pending_reads.pop_front();
                peer.uploads.held.push_back(first);
                continue;
            }
            if !peer.uploads.held.is_empty() {
                // Room again: what it asked for earlier goes first.
                self.release_held(conn);
                continue;
            }
            if !self.up_bucket.try_take(now, u64::from(first.length)) {
                break;
            }
            self.pending_reads.pop_front();
            let mut span = first;
            while let Some(&(c, next)) = self.pending_reads.front() {
                let adjacent = c == conn
                    && next.piece == span.piece
                    && u64::from(next.offset) == u64::from(span.offset) + u64::from(span.length)
                    && span.length + next.length <= READ_SPAN;
                if !adjacent || !self.up_bucket.try_take(now, u64::from(next.length)) {
                    break;
                }
                self.pending_reads.pop_front();
                span.length += next.length;
            }
            if let Some(p) = self.peers.get_mut(&conn) {
                p.uploads.reading += u64::from(span.length);
            }
            let slices = self
                .info
                .layout
                .slices(span.piece, span.offset, span.length)
                .collect();
            self.out.push_back(TorrentOutput::Read {
                conn,
                block: span,
                slices,
            });
        }
    }

    /// The driver wrote `bytes` of what this torrent sent on `conn` (its
    /// socket took them): room in the peer's [`UploadWindow`].
    pub fn handle_sent(&mut self, now: Instant, conn: ConnId, bytes: usize) {
        self.now = now;
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        p.uploads.unsent = p.uploads.unsent.saturating_sub(bytes as u64);
        self.resume_held(now, conn);
    }

    /// Reads what `conn` asked for and was held back, if its window has
    /// room now (something was written or read, or its rate rose).
    pub(super) fn resume_held(&mut self, now: Instant, conn: ConnId) {
        let room = self.peers.get(&conn).is_some_and(|p| {
            !p.uploads.held.is_empty() && p.uploads.has_room(p.session.as_ref(), now)
        });
        if room {
            self.release_held(conn);
            self.pump_uploads(now);
        }
    }

    /// Puts `conn`'s held requests back at the head of the queue: they
    /// were asked before anything behind them.
    fn release_held(&mut self, conn: ConnId) {
        if let Some(p) = self.peers.get_mut(&conn) {
            for block in std::mem::take(&mut p.uploads.held).into_iter().rev() {
                self.pending_reads.push_front((conn, block));
            }
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
        if let Some(p) = self.peers.get_mut(&conn) {
            p.uploads.reading = p.uploads.reading.saturating_sub(u64::from(block.length));
        }
        if self.leaf_read_done(now, conn, block, data) {
            return;
        }
        let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) else {
            return;
        };
        match data {
            Some(d) => self.uploaded += s.send_blocks(now, block, d),
            None => s.reject_within(now, block),
        }
        self.flush(now, conn);
        self.resume_held(now, conn);
    }

    /// Gives every free unchoke slot to an interested peer at once: one
    /// that just became interested, or one waiting when a peer we served
    /// lost interest (it finished) or left. Waiting for the next 10-second
    /// round left slots empty: 20 leechers of a seed finishing in waves
    /// took twice as long.
    pub(super) fn fill_free_slots(&mut self, now: Instant) {
        if !matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            return;
        }
        let slots = self.config.unchoke_slots + usize::from(self.config.optimistic_unchoke);
        let sessions = || {
            self.peers
                .iter()
                .filter_map(|(c, p)| Some((*c, p.session.as_ref()?)))
        };
        let served = sessions()
            .filter(|(_, s)| !s.am_choking() && s.peer_interested())
            .count();
        if served >= slots {
            return;
        }
        let mut waiting: Vec<ConnId> = sessions()
            .filter(|(_, s)| s.is_active() && s.am_choking() && s.peer_interested())
            .map(|(c, _)| c)
            .collect();
        for _ in served..slots {
            if waiting.is_empty() {
                break;
            }
            let pick = self.rng.below(waiting.len() as u64) as usize;
            let conn = waiting.swap_remove(pick);
            if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                s.unchoke(now);
            }
            self.flush(now, conn);
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
            if let Some(p) = self.peers.get_mut(&c.conn) {
                if let Some(s) = p.session.as_mut() {
                    if set.contains(&c.conn) {
                        s.unchoke(now);
                    } else if !s.am_choking() {
                        // Its requests are refused (but for allowed-fast
                        // pieces, BEP 6): those held are not read.
                        s.choke(now);
                        p.uploads.held.retain(|b| s.is_asked(*b));
                    }
                }
            }
            self.flush(now, c.conn);
        }
    }
}
