//! Connections: opening them within the half-open and per-IP budgets,
//! accepting incoming peers (evicting an idle one when full), routing each
//! session's events, and taking peers out again.

use super::*;
use crate::metainfo::merkle::LEAF;

impl Torrent {
    pub(super) fn half_open(&self) -> usize {
        self.peers.values().filter(|p| p.session.is_none()).count()
    }

    pub(super) fn connect_more(&mut self, now: Instant) {
        // Whatever happens below, look again one interval from now (not
        // sooner: a full half-open budget must not spin the timer).
        self.next_connect = now + CONNECT_INTERVAL;
        if !self.is_connecting() {
            return;
        }
        let room = self
            .max_peers()
            .saturating_sub(self.peers.len())
            .min(self.max_half_open().saturating_sub(self.half_open()));
        if room == 0 {
            return;
        }
        for addr in self.list.to_connect(now, room) {
            let conn = self.config.conn_ids.next_id();
            let name = self.dial_name(&addr);
            self.peers.insert(conn, Peer::dialling(now, addr, name));
            self.out.push_back(TorrentOutput::Connect { conn, addr });
        }
        self.next_connect = now + CONNECT_INTERVAL;
    }

    pub(super) fn new_session(
        &self,
        now: Instant,
        direction: Direction,
        addr: SocketAddr,
        name: InfoHash,
    ) -> PeerSession {
        let mut config = self.config.session.clone();
        config.listen_port = Some(self.config.listen_port);
        let ip = Some(addr.ip());
        let (hash, id, reserved) = (
            self.info.info_hash,
            self.config.peer_id,
            self.config.reserved,
        );
        // BEP 52: a torrent with a v2 half says so; a hybrid answers to
        // both names, and dials with the v2 one a peer found under it
        // (a magnet with both as well, while its metadata comes).
        let reserved = match self.info.info_hash_v2 {
            Some(_) => reserved.with(Reserved::V2),
            None => reserved,
        };
        let (mut hash, mut other) = (hash, self.info.other_hash());
        if direction == Direction::Outgoing && name != hash {
            (hash, other) = (name, Some(hash));
        }
        let mut session = if self.fetch.is_some() {
            // We receive metadata (and cannot serve it yet); whether the
            // torrent is private is not known, so PEX goes on until it is.
            config.extensions = our_extensions(false, true, self.config.holepunch);
            let reserved = reserved.with(Reserved::EXTENSION);
            PeerSession::new_for_metadata(now, config, direction, hash, id, reserved, ip)
        } else {
            config.extensions = our_extensions(
                self.info.private,
                self.info.metadata.is_some(),
                self.config.holepunch,
            );
            let count = self.info.layout.piece_count();
            PeerSession::new(now, config, direction, hash, id, reserved, count, ip)
        };
        if let Some(other) = other {
            session.also_known_as(other);
        }
        session
    }

    /// The name an outgoing connection to `addr` gives the torrent (in
    /// its handshake and its MSE key): a hybrid's v2 name for a peer
    /// found under it (BEP 52; a v2-only client knows no other), else the
    /// torrent's info-hash.
    pub fn dial_name(&self, addr: &SocketAddr) -> InfoHash {
        match self.info.other_hash() {
            Some(v2) if self.list.in_v2_swarm(addr) => v2,
            _ => self.info.info_hash,
        }
    }

    /// The name connection `conn` was dialled under ([`dial_name`](
    /// Torrent::dial_name) when it was), for its MSE key.
    pub fn name_of(&self, conn: ConnId) -> InfoHash {
        self.peers
            .get(&conn)
            .map_or(self.info.info_hash, |p| p.name)
    }

    /// An outgoing connection we asked for is open.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        let Some(addr) = self.peers.get(&conn).map(|p| p.addr) else {
            return;
        };
        let name = self
            .peers
            .get(&conn)
            .map_or(self.info.info_hash, |p| p.name);
        let session = self.new_session(now, Direction::Outgoing, addr, name);
        self.holepunch_dial_done(conn);
        if let Some(p) = self.peers.get_mut(&conn) {
            p.session = Some(session);
        }
        self.flush(now, conn);
    }

    /// An outgoing connection failed.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if let Some(p) = self.peers.remove(&conn) {
            self.list.connect_failed(now, p.addr);
            self.holepunch_after_failure(now, conn, p.addr);
        }
        self.connect_more(now);
    }

    /// A peer connected to us (the engine routed it here by info-hash).
    /// Returns false if refused (banned, its IP at its limit or just
    /// dropped for idling, or every slot taken by peers that trade); the
    /// driver should then close it. With every slot taken, the peer idle
    /// the longest makes room, and its IP stays away for a while.
    pub fn handle_incoming(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) -> bool {
        self.now = now;
        if !self.is_connecting() || !self.list.accept(now, addr) {
            return false;
        }
        if self.peers.len() >= self.max_peers() {
            let Some(idle) = self.most_idle_peer(now) else {
                self.list.disconnected(now, addr);
                return false;
            };
            if let Some(p) = self.peers.get(&idle) {
                self.list.dropped_for_idling(now, p.addr);
            }
            self.disconnect(now, idle, CloseReason::Local, true);
        }
        let name = self.info.info_hash;
        let mut peer = Peer::dialling(now, addr, name);
        peer.session = Some(self.new_session(now, Direction::Incoming, addr, name));
        self.peers.insert(conn, peer);
        true
    }

    /// Whether the engine carries `conn` over uTP (BEP 29) rather than
    /// TCP: peer exchange tells others the peer speaks it (BEP 11 flag
    /// 0x04), and [`PeerInfo::utp`] shows it.
    pub fn set_utp(&mut self, conn: ConnId, utp: bool) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.utp = utp;
        }
    }

    /// Whether peer exchange said `addr` speaks uTP (BEP 11 flag 0x04).
    pub fn advertises_utp(&self, addr: &SocketAddr) -> bool {
        self.list.flags(addr).has(PexFlags::UTP)
    }

    /// Bytes arrived on a connection (copied; see
    /// [`handle_chunk`](Torrent::handle_chunk)).
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.handle_chunk(now, conn, Bytes::copy_from_slice(data));
    }

    /// A chunk arrived on a connection; blocks in it stay slices of it all
    /// the way to the disk write.
    pub fn handle_chunk(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        self.handle_chunks(now, conn, std::iter::once(data));
    }

    /// Chunks that arrived together on `conn`, in order: decoded one after
    /// another, answered once.
    pub fn handle_chunks(
        &mut self,
        now: Instant,
        conn: ConnId,
        chunks: impl IntoIterator<Item = Bytes>,
    ) {
        self.now = now;
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            for data in chunks {
                s.handle_chunk(now, data);
            }
        }
        self.flush(now, conn);
        self.fill_requests(now);
    }

    /// The connection closed (by the peer or the network).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.handle_eof(now);
        }
        self.flush(now, conn);
        self.fill_requests(now);
    }

    /// Processes everything a session has to say, then sends its bytes.
    pub(super) fn flush(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(event) = self
                .peers
                .get_mut(&conn)
                .and_then(|p| p.session.as_mut())
                .and_then(PeerSession::poll_event)
            else {
                break;
            };
            self.on_peer_event(now, conn, event);
        }
        if !self.pending_reads.is_empty() {
            self.pump_uploads(now);
        }
        let mut data = Vec::new();
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            let _ = s.poll_transmit(&mut data);
        }
        if !data.is_empty() {
            if let Some(p) = self.peers.get_mut(&conn) {
                p.uploads.handed_over(data.len());
            }
            self.out.push_back(TorrentOutput::Send { conn, data });
        }
    }

    pub(super) fn on_peer_event(&mut self, now: Instant, conn: ConnId, event: PeerEvent) {
        match event {
            PeerEvent::Connected { .. } => {
                let metadata = self.info.metadata.as_ref().map(|m| m.len() as u64);
                let have = self.on_disk.clone();
                let addr = match self.peers.get_mut(&conn) {
                    Some(p) => {
                        p.connected_event_sent = true;
                        if let Some(s) = p.session.as_mut() {
                            s.start(now, &have, metadata);
                        }
                        p.addr
                    }
                    None => return,
                };
                self.emit(TorrentEvent::PeerConnected { conn, addr });
            }
            PeerEvent::PiecesKnown => {
                let Some(p) = self.peers.get_mut(&conn) else {
                    return;
                };
                let Some(s) = p.session.as_ref() else {
                    return;
                };
                match s.remote_pieces() {
                    RemotePieces::All => {
                        self.picker.peer_bitfield(PeerPieces::All);
                        p.counted = Counted::Seed;
                    }
                    RemotePieces::Some(b) => {
                        self.picker.peer_bitfield(PeerPieces::Some(b));
                        p.counted = Counted::Bits;
                    }
                    RemotePieces::None => {}
                }
                self.update_interest(now, conn);
                self.drop_if_both_seeds(now, conn);
            }
            PeerEvent::Have(piece) => {
                let Some(p) = self.peers.get_mut(&conn) else {
                    return;
                };
                match p.counted {
                    Counted::Seed => {}
                    Counted::Nothing | Counted::Bits => {
                        self.picker.peer_has(piece);
                        p.counted = Counted::Bits;
                        if let Some(RemotePieces::All) =
                            p.session.as_ref().map(|s| s.remote_pieces())
                        {
                            self.picker
                                .peer_became_seed(&Bitfield::full(self.info.layout.piece_count()));
                            p.counted = Counted::Seed;
                        }
                    }
                }
                if self.picker.priority(piece) != Priority::Skip && !self.picker.has(piece) {
                    if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                        s.set_interested(now, true);
                    }
                }
                self.drop_if_both_seeds(now, conn);
            }
            PeerEvent::Choked
            | PeerEvent::Unchoked
            | PeerEvent::AllowedFast(_)
            | PeerEvent::Suggest(_)
            | PeerEvent::ExtensionHandshake(_)
            | PeerEvent::DhtPort(_) => {}
            PeerEvent::Extended { id, payload } => self.on_extended(now, conn, id, payload),
            PeerEvent::HashRequest(request)
                if request.base_layer == 0 && self.info.layout.piece_length() as usize > LEAF =>
            {
                self.on_leaf_request(now, conn, request)
            }
            PeerEvent::HashRequest(request) => {
                // Enough to fetch every layer twice over, whatever the
                // choke state (BEP 52 lets clients limit them): 53 bytes
                // asked cost up to 16 KiB.
                let budget = 64 + 2 * self.info.trees.chunks();
                let trees = &self.info.trees;
                if let Some(p) = self.peers.get_mut(&conn) {
                    let served = &mut p.exchange.hashes_served;
                    let hashes = (*served < budget).then(|| trees.hashes(&request)).flatten();
                    *served += 1;
                    if let Some(s) = p.session.as_mut() {
                        s.answer_hashes(now, request, hashes.as_deref());
                    }
                }
            }
            PeerEvent::Hashes { request, hashes } => {
                if !self.on_leaf_hashes(now, conn, &request, &hashes) {
                    self.on_hashes(now, conn, request, hashes)
                }
            }
            PeerEvent::HashesRejected(request) => {
                if !self.on_leaf_hashes_rejected(now, conn, &request) {
                    self.on_hashes_rejected(now, conn, request)
                }
            }
            PeerEvent::Interested | PeerEvent::NotInterested => {
                self.fill_free_slots(now);
            }
            PeerEvent::Request(block) => self.on_request(now, conn, block),
            PeerEvent::Block { block, data } => {
                self.on_block(now, conn, block, data);
            }
            PeerEvent::RequestsDropped(blocks) => {
                for b in blocks {
                    self.picker.abort_request(b, conn);
                }
            }
            PeerEvent::Closed(reason) => self.drop_peer(now, conn, reason, false),
        }
    }

    /// A BEP 10 message under one of our ids: a metadata request (BEP 9),
    /// a peer list (BEP 11) or a holepunch message (BEP 55).
    pub(super) fn on_extended(&mut self, now: Instant, conn: ConnId, id: u8, payload: Bytes) {
        if id == OUR_UT_HOLEPUNCH {
            self.on_holepunch(now, conn, &payload);
            return;
        }
        if id == OUR_UT_METADATA
            && self.fetch.is_some()
            && self.on_fetch_message(now, conn, &payload)
        {
            return;
        }
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Some(s) = p.session.as_mut() else {
            return;
        };
        match id {
            OUR_UT_METADATA => {
                let their_id = s.remote_extensions().and_then(|e| e.id_of(UT_METADATA));
                let reply = p
                    .exchange
                    .metadata_request(&payload, self.info.metadata.as_ref());
                if let (Some(their_id), Some(reply)) = (their_id, reply) {
                    s.send_extended(now, their_id, reply.into());
                }
            }
            OUR_UT_PEX if !self.info.private => {
                let addrs = p.exchange.pex_received(now, &payload);
                let own = SocketAddr::new(p.addr.ip(), self.config.listen_port);
                let mut any = false;
                for (a, flags) in addrs.into_iter().filter(|(a, _)| *a != own) {
                    self.list.add_flagged(now, a, PeerSource::Pex, flags);
                    self.note_holepunch_candidate(conn, a, flags);
                    any = true;
                }
                if any {
                    self.connect_more(now);
                }
            }
            _ => {}
        }
    }

    /// BEP 11: tells each peer that speaks `ut_pex`, once a minute, which
    /// peers we connected to and dropped since. Peers are named by their
    /// listen address (ours for outgoing connections, the extension
    /// handshake's `p` for incoming ones).
    pub(super) fn exchange_peers(&mut self, now: Instant) {
        if self.info.private {
            return;
        }
        let connected: Vec<(ConnId, SocketAddr, PexFlags)> = self
            .peers
            .iter()
            .filter_map(|(c, p)| {
                let s = p.session.as_ref().filter(|s| s.is_active())?;
                let (addr, mut flags) = match s.direction() {
                    Direction::Outgoing => (p.addr, PexFlags::REACHABLE),
                    Direction::Incoming => {
                        let port = s.remote_extensions()?.port?;
                        (SocketAddr::new(p.addr.ip(), port), 0)
                    }
                };
                if matches!(s.remote_pieces(), RemotePieces::All) {
                    flags |= PexFlags::SEED;
                }
                if p.utp {
                    flags |= PexFlags::UTP;
                }
                // BEP 11's 0x08: it speaks ut_holepunch (BEP 55).
                if s.remote_extensions()
                    .is_some_and(|e| e.id_of(UT_HOLEPUNCH).is_some())
                {
                    flags |= PexFlags::HOLEPUNCH;
                }
                Some((*c, addr, PexFlags(flags)))
            })
            .collect();
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            let Some(p) = self.peers.get_mut(&conn) else {
                continue;
            };
            let Some(s) = p.session.as_mut().filter(|s| s.is_active()) else {
                continue;
            };
            let Some(their_id) = s.remote_extensions().and_then(|e| e.id_of(UT_PEX)) else {
                continue;
            };
            let others: Vec<(SocketAddr, PexFlags)> = connected
                .iter()
                .filter(|(c, _, _)| *c != conn)
                .map(|(_, a, f)| (*a, *f))
                .collect();
            if let Some(m) = p.exchange.pex_due(now, &others) {
                let mut payload = Vec::new();
                m.encode(&mut payload);
                s.send_extended(now, their_id, payload.into());
                self.flush(now, conn);
            }
        }
    }

    pub(super) fn drop_if_both_seeds(&mut self, now: Instant, conn: ConnId) {
        let both = self.state == TorrentState::Seeding
            && self
                .peers
                .get(&conn)
                .and_then(|p| p.session.as_ref())
                .is_some_and(|s| *s.remote_pieces() == RemotePieces::All)
            // Leaf hashes that name who sent a failed piece's bad blocks
            // are on their way.
            && !self.leaves.busy_with(conn);
        if both {
            self.drop_peer(now, conn, CloseReason::Local, true);
        }
    }

    /// The connected peer that has gone longest without a block either
    /// way, if that is at least [`IDLE_EVICTION`].
    pub(super) fn most_idle_peer(&self, now: Instant) -> Option<ConnId> {
        self.peers
            .iter()
            .filter_map(|(c, p)| Some((*c, p.session.as_ref()?)))
            .filter(|(_, s)| s.is_active() && s.last_payload() + IDLE_EVICTION <= now)
            .min_by_key(|(c, s)| (s.last_payload(), *c))
            .map(|(c, _)| c)
    }

    pub(super) fn drop_peer(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: CloseReason,
        close_socket: bool,
    ) {
        self.disconnect(now, conn, reason, close_socket);
        self.connect_more(now);
    }

    /// Takes a peer out (its requests back to the picker, its pieces out
    /// of the availability), closing the socket unless the peer did.
    pub(super) fn disconnect(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: CloseReason,
        close_socket: bool,
    ) {
        let Some(mut peer) = self.peers.remove(&conn) else {
            return;
        };
        self.holepunch_dial_done(conn);
        if let Some(f) = self.fetch.as_mut() {
            f.peer_gone(conn);
        }
        if let Some(s) = peer.session.as_mut() {
            for b in s.outstanding().copied().collect::<Vec<_>>() {
                self.picker.abort_request(b, conn);
            }
            match peer.counted {
                Counted::Seed => self.picker.peer_gone(PeerPieces::All),
                Counted::Bits => {
                    if let RemotePieces::Some(b) = s.remote_pieces() {
                        self.picker.peer_gone(PeerPieces::Some(b));
                    }
                }
                Counted::Nothing => {}
            }
        }
        // Anything requested from this peer that the picker still lists.
        for b in self.picker.requests_of(conn) {
            self.picker.abort_request(b, conn);
        }
        self.picker.peer_left(conn);
        self.list.disconnected(now, peer.addr);
        self.departed.insert(conn, peer.addr);
        if self.departed.len() > DEPARTED_KEPT {
            self.departed.pop_first();
        }
        if close_socket || !matches!(reason, CloseReason::RemoteClosed) {
            self.out.push_back(TorrentOutput::Close { conn });
        }
        if peer.connected_event_sent {
            self.emit(TorrentEvent::PeerDisconnected {
                conn,
                addr: peer.addr,
                reason,
            });
        }
        self.fill_free_slots(now);
    }
}
