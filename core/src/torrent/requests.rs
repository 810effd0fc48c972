//! Interest and requests: which peers we want blocks from, and filling
//! their pipelines within the memory budget and the download limit.

use super::*;

impl Torrent {
    pub(super) fn peer_has_wanted(&self, s: &PeerSession) -> bool {
        has_wanted(&self.picker, s)
    }

    pub(super) fn update_interest(&mut self, now: Instant, conn: ConnId) {
        let wanted = self
            .peers
            .get(&conn)
            .and_then(|p| p.session.as_ref())
            .is_some_and(|s| self.peer_has_wanted(s));
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.set_interested(now, wanted);
        }
    }

    pub(super) fn refresh_interest(&mut self, now: Instant) {
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.update_interest(now, c);
            self.flush(now, c);
        }
    }

    pub(super) fn outstanding_bytes(&self) -> u64 {
        self.web.outstanding_bytes()
            + self
                .peers
                .values()
                .filter_map(|p| p.session.as_ref())
                .map(|s| s.outstanding().map(|b| u64::from(b.length)).sum::<u64>())
                .sum::<u64>()
    }

    /// Gives every peer with room in its pipeline new requests, within the
    /// memory budget.
    pub(super) fn fill_requests(&mut self, now: Instant) {
        self.rate_held = false;
        if self.fetch.is_some() {
            return self.request_metadata(now);
        }
        if self.state != TorrentState::Downloading {
            return;
        }
        let memory = self
            .max_buffered_bytes()
            .saturating_sub(self.buffered_bytes + self.outstanding_bytes());
        let mut budget = memory.min(self.down_bucket.available(now));
        let start = budget;
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        let mut blocks = Vec::new();
        for conn in conns {
            if budget < u64::from(BLOCK_SIZE) {
                break;
            }
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            let Some(s) = peer.session.as_mut() else {
                continue;
            };
            let room = s
                .request_room(now)
                .min((budget / u64::from(BLOCK_SIZE)) as usize);
            if room == 0 {
                continue;
            }
            let exclusive = self.list.on_parole(&peer.addr);
            blocks.clear();
            let pieces = match s.remote_pieces() {
                RemotePieces::All => PeerPieces::All,
                RemotePieces::Some(b) => PeerPieces::Some(b),
                RemotePieces::None => continue,
            };
            if s.peer_choking() {
                // Choked: only allowed-fast pieces may be requested.
                let allowed: Vec<PieceIndex> = s.allowed_fast_in().to_vec();
                let mut only = Bitfield::new(self.info.layout.piece_count());
                for p in allowed {
                    if s.remote_has(p) {
                        only.set(p);
                    }
                }
                self.picker.pick(
                    conn,
                    PeerPieces::Some(&only),
                    room,
                    PickOptions { exclusive },
                    &mut blocks,
                );
            } else {
                self.picker
                    .pick(conn, pieces, room, PickOptions { exclusive }, &mut blocks);
            }
            if blocks.is_empty() {
                if s.outstanding().next().is_none() && !s.peer_choking() {
                    let wanted = has_wanted(&self.picker, s);
                    s.set_interested(now, wanted);
                }
            } else {
                let bytes: u64 = blocks.iter().map(|b| u64::from(b.length)).sum();
                budget = budget.saturating_sub(bytes);
                let _ = self.down_bucket.try_take(now, bytes);
                s.request(now, &blocks);
            }
            self.flush(now, conn);
        }
        self.fill_web_seeds(now, &mut budget);
        // Memory for another block but no tokens: the limit alone holds
        // requests back (a peer without room costs one early wake-up).
        let memory_left = memory - (start - budget);
        self.rate_held = self.down_bucket.available(now) < u64::from(BLOCK_SIZE)
            && memory_left >= u64::from(BLOCK_SIZE);
    }

    /// A block arrived from `conn`; whether it was new (not a duplicate,
    /// nor unwanted).
    pub(super) fn on_block(
        &mut self,
        now: Instant,
        conn: ConnId,
        block: BlockRef,
        data: Bytes,
    ) -> bool {
        self.downloaded += data.len() as u64;
        match self.picker.on_block(block, conn) {
            BlockReceived::New { cancel } => {
                for other in cancel {
                    if let Some(s) = self.peers.get_mut(&other).and_then(|p| p.session.as_mut()) {
                        s.cancel(now, block);
                    }
                    self.flush(now, other);
                }
                let piece = block.piece.0;
                if self.writes_through() {
                    self.write_block(conn, block, data);
                    return true;
                }
                let count = self.picker.block_count(piece) as usize;
                let buf = self.buffers.entry(piece).or_default();
                if buf.blocks.len() != count {
                    buf.blocks = vec![None; count];
                }
                let index = (block.offset / BLOCK_SIZE) as usize;
                if buf.blocks[index].is_none() {
                    self.buffered_bytes += data.len() as u64;
                }
                buf.blocks[index] = Some(data);
                if self.picker.is_complete(block.piece)
                    && !self.verifying.contains(&piece)
                    && !self.ready.contains_key(&piece)
                {
                    self.piece_complete(now, piece, conn);
                }
                true
            }
            BlockReceived::Duplicate | BlockReceived::Unwanted => false,
        }
    }
}

/// Whether the peer has a piece we want and lack.
pub(super) fn has_wanted(picker: &PiecePicker, s: &PeerSession) -> bool {
    match s.remote_pieces() {
        RemotePieces::None => false,
        RemotePieces::All => !picker.is_finished(),
        RemotePieces::Some(b) => b
            .iter()
            .any(|p| !picker.has(p) && picker.priority(p) != Priority::Skip),
    }
}
