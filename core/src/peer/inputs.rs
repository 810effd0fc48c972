//! What the session reads: the handshake, then frames, checked against
//! the protocol's rules (BEP 3, BEP 6, BEP 10); timers and end of stream.

use super::*;

impl PeerSession {
    /// A deadline may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => {}
            State::Handshaking => {
                if now >= self.started + self.config.handshake_timeout {
                    self.close_with(CloseReason::HandshakeTimeout);
                }
            }
            State::Connected | State::Active => {
                if now >= self.last_received + self.config.inactivity_timeout {
                    self.close_with(CloseReason::Protocol(PeerError::Inactive));
                    return;
                }
                if !self.outstanding.is_empty()
                    && !self.snubbed
                    && now >= self.last_progress + self.config.request_timeout
                {
                    self.snubbed = true;
                    let dropped: Vec<BlockRef> = self.outstanding.drain(..).collect();
                    // Blocks may still come: tolerate them.
                    for b in &dropped {
                        self.remember_cancelled(*b);
                    }
                    self.events.push_back(PeerEvent::RequestsDropped(dropped));
                }
                if now >= self.last_sent + self.config.keepalive_interval {
                    self.send(now, &Frame::KeepAlive);
                }
            }
        }
    }

    /// The peer closed the connection (or it broke) at `now`.
    pub fn handle_eof(&mut self, now: Instant) {
        self.last_received = now;
        self.close_with(CloseReason::RemoteClosed);
    }

    /// The metadata is in (BEP 9): the session becomes a full one for a
    /// torrent of `piece_count` pieces. What the peer said it has so far
    /// is checked now: a bitfield of the wrong length or a `have` out of
    /// range closes the session ([`PeerEvent::Closed`]); otherwise
    /// [`PeerEvent::PiecesKnown`] reports it.
    pub fn learn_piece_count(&mut self, piece_count: u32) {
        if !self.metadata_only {
            return;
        }
        self.metadata_only = false;
        self.piece_count = piece_count;
        self.decoder.set_piece_count(piece_count);
        let early = std::mem::take(&mut self.early);
        if self.state == State::Closed {
            return;
        }
        let bad_length = PeerError::Malformed(crate::DecodeError::new(
            crate::DecodeErrorKind::InvalidLength,
            0,
            "bitfield",
        ));
        let mut pieces = match early.first {
            None if early.haves.is_empty() => return,
            None | Some(EarlyFirst::Nothing) => Bitfield::new(piece_count),
            Some(EarlyFirst::All) => Bitfield::full(piece_count),
            Some(EarlyFirst::Bitfield(bytes)) => match Bitfield::from_bytes(&bytes, piece_count) {
                Some(b) => b,
                None => return self.close_with(CloseReason::Protocol(bad_length)),
            },
        };
        for p in early.haves {
            if p >= piece_count {
                return self.close_with(CloseReason::Protocol(PeerError::RequestOutOfRange));
            }
            pieces.set(PieceIndex(p));
        }
        self.remote_pieces = if pieces.is_full() {
            RemotePieces::All
        } else {
            RemotePieces::Some(pieces)
        };
        self.events.push_back(PeerEvent::PiecesKnown);
    }

    /// Bytes read from the connection (copied; see
    /// [`handle_chunk`](PeerSession::handle_chunk)).
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        self.handle_chunk(now, Bytes::copy_from_slice(data));
    }

    /// A chunk read from the connection; blocks inside it are handed on as
    /// slices of it, without a copy.
    pub fn handle_chunk(&mut self, now: Instant, data: Bytes) {
        if self.state == State::Closed {
            return;
        }
        self.last_received = now;
        self.decoder.push_bytes(data);
        if let Err(e) = self.drain_input(now) {
            self.close_with(CloseReason::Protocol(e));
        }
    }

    pub(super) fn drain_input(&mut self, now: Instant) -> Result<(), PeerError> {
        if self.state == State::Handshaking {
            let Some(hs) = self
                .decoder
                .next_handshake()
                .map_err(PeerError::Malformed)?
            else {
                return Ok(());
            };
            let names: &[InfoHash] = match self.other_hash {
                Some(other) => &[self.info_hash, other],
                None => &[self.info_hash],
            };
            hs.validate(names, self.our_id)?;
            // Incoming: we answer with the name the peer used. Outgoing:
            // a hybrid's peer may answer our v1 hash with the v2 one, which
            // makes the connection a v2 one (BEP 52, "Upgrade Path").
            self.info_hash = hs.info_hash;
            if self.direction == Direction::Incoming {
                self.send_handshake(now);
            }
            self.remote = Some(hs);
            self.state = State::Connected;
            self.events.push_back(PeerEvent::Connected {
                peer_id: hs.peer_id,
                reserved: hs.reserved,
            });
        }
        while self.state != State::Closed {
            let Some(frame) = self.decoder.next_frame().map_err(PeerError::Malformed)? else {
                break;
            };
            self.on_frame(now, frame)?;
        }
        Ok(())
    }

    pub(super) fn on_frame(&mut self, now: Instant, frame: Frame) -> Result<(), PeerError> {
        let fast = self.fast();
        if self.metadata_only {
            match frame {
                Frame::HaveAll | Frame::HaveNone if !fast => {
                    return Err(PeerError::UnexpectedMessage)
                }
                Frame::Bitfield(_) | Frame::HaveAll | Frame::HaveNone
                    if self.early.first.is_some() =>
                {
                    // A later one (aria2 sends fresh bitfields): the first
                    // and the haves already say enough.
                    return Ok(());
                }
                Frame::Bitfield(bytes) => {
                    self.early.first = Some(EarlyFirst::Bitfield(bytes));
                    return Ok(());
                }
                Frame::HaveAll => {
                    self.early.first = Some(EarlyFirst::All);
                    return Ok(());
                }
                Frame::HaveNone => {
                    self.early.first = Some(EarlyFirst::Nothing);
                    return Ok(());
                }
                Frame::Have(p) => {
                    if self.early.haves.len() < MAX_EARLY_HAVES {
                        self.early.haves.push(p.0);
                    }
                    return Ok(());
                }
                Frame::Suggest(_) | Frame::AllowedFast(_) => return Ok(()),
                Frame::Request(block) => {
                    if fast {
                        self.send(now, &Frame::Reject(block));
                    }
                    return Ok(());
                }
                Frame::Piece { .. } => return Err(PeerError::UnrequestedPiece),
                _ => {}
            }
        }
        let check_piece = |p: PieceIndex| {
            if p.0 < self.piece_count {
                Ok(p)
            } else {
                Err(PeerError::RequestOutOfRange)
            }
        };
        match frame {
            Frame::KeepAlive => {}
            Frame::Choke => {
                if !self.peer_choking {
                    self.peer_choking = true;
                    self.events.push_back(PeerEvent::Choked);
                    // BEP 6: with the fast extension a choke no longer
                    // discards requests; the peer rejects them one by one.
                    if !fast {
                        let dropped: Vec<BlockRef> = self.outstanding.drain(..).collect();
                        if !dropped.is_empty() {
                            for b in &dropped {
                                self.remember_cancelled(*b);
                            }
                            self.events.push_back(PeerEvent::RequestsDropped(dropped));
                        }
                    }
                }
            }
            Frame::Unchoke => {
                if self.peer_choking {
                    self.peer_choking = false;
                    self.last_progress = now;
                    self.events.push_back(PeerEvent::Unchoked);
                }
            }
            Frame::Interested => {
                if !self.peer_interested {
                    self.peer_interested = true;
                    self.events.push_back(PeerEvent::Interested);
                }
            }
            Frame::NotInterested => {
                if self.peer_interested {
                    self.peer_interested = false;
                    self.events.push_back(PeerEvent::NotInterested);
                }
            }
            Frame::Have(p) => {
                let p = check_piece(p)?;
                let new = match &mut self.remote_pieces {
                    RemotePieces::All => false,
                    RemotePieces::Some(b) => b.set(p),
                    none @ RemotePieces::None => {
                        let mut b = Bitfield::new(self.piece_count);
                        b.set(p);
                        *none = RemotePieces::Some(b);
                        true
                    }
                };
                if let RemotePieces::Some(b) = &self.remote_pieces {
                    if b.is_full() {
                        self.remote_pieces = RemotePieces::All;
                    }
                }
                if new {
                    self.events.push_back(PeerEvent::Have(p));
                }
            }
            Frame::Bitfield(bytes) => {
                let b = Bitfield::from_bytes(&bytes, self.piece_count).ok_or(
                    PeerError::Malformed(crate::DecodeError::new(
                        crate::DecodeErrorKind::InvalidLength,
                        0,
                        "bitfield",
                    )),
                )?;
                if self.remote_pieces != RemotePieces::None {
                    // BEP 3 allows a bitfield only first, but some clients
                    // (aria2) send a fresh one later instead of `have`s:
                    // take it as a `have` for every new piece.
                    for p in b.iter() {
                        self.on_frame(now, Frame::Have(p))?;
                    }
                    return Ok(());
                }
                self.remote_pieces = if b.is_full() {
                    RemotePieces::All
                } else {
                    RemotePieces::Some(b)
                };
                self.events.push_back(PeerEvent::PiecesKnown);
            }
            Frame::HaveAll | Frame::HaveNone if !fast => return Err(PeerError::UnexpectedMessage),
            Frame::HaveAll => {
                self.remote_pieces = RemotePieces::All;
                self.events.push_back(PeerEvent::PiecesKnown);
            }
            Frame::HaveNone => {
                self.remote_pieces = RemotePieces::Some(Bitfield::new(self.piece_count));
                self.events.push_back(PeerEvent::PiecesKnown);
            }
            Frame::Request(block) => self.on_request(block)?,
            Frame::Cancel(block) => {
                self.incoming.retain(|b| *b != block);
            }
            Frame::Piece {
                piece,
                offset,
                data,
            } => {
                let block = BlockRef {
                    piece,
                    offset,
                    length: data.len() as u32,
                };
                if let Some(pos) = self.outstanding.iter().position(|b| *b == block) {
                    self.outstanding.remove(pos);
                } else if let Some(pos) = self.cancelled.iter().position(|b| *b == block) {
                    self.cancelled.remove(pos);
                } else {
                    self.unrequested += 1;
                    if self.unrequested > self.config.unrequested_tolerance {
                        return Err(PeerError::UnrequestedPiece);
                    }
                    return Ok(());
                }
                self.last_progress = now;
                self.last_payload = now;
                self.snubbed = false;
                self.down.add(now, u64::from(block.length));
                self.events.push_back(PeerEvent::Block { block, data });
            }
            Frame::Port(port) => self.events.push_back(PeerEvent::DhtPort(port)),
            Frame::Suggest(_) | Frame::AllowedFast(_) | Frame::Reject(_) if !fast => {
                return Err(PeerError::UnexpectedMessage)
            }
            Frame::Suggest(p) => self.events.push_back(PeerEvent::Suggest(check_piece(p)?)),
            Frame::AllowedFast(p) => {
                let p = check_piece(p)?;
                if !self.allowed_in.contains(&p) && self.allowed_in.len() < 64 {
                    self.allowed_in.push(p);
                    self.events.push_back(PeerEvent::AllowedFast(p));
                }
            }
            Frame::Reject(block) => {
                let pos = self
                    .outstanding
                    .iter()
                    .position(|b| *b == block)
                    .ok_or(PeerError::UnexpectedMessage)?;
                self.outstanding.remove(pos);
                self.events
                    .push_back(PeerEvent::RequestsDropped(vec![block]));
            }
            Frame::Extended { id: 0, payload } => {
                let ext = ExtensionHandshake::decode(&payload).map_err(PeerError::Malformed)?;
                self.remote_ext = Some(ext.clone());
                self.events
                    .push_back(PeerEvent::ExtensionHandshake(Box::new(ext)));
            }
            Frame::Extended { id, payload } => {
                self.events.push_back(PeerEvent::Extended { id, payload });
            }
            Frame::HashRequest(request) => self.on_hash_request(now, request),
            Frame::Hashes { request, hashes } => {
                self.take_hash_answer(&request)?;
                self.events.push_back(PeerEvent::Hashes { request, hashes });
            }
            Frame::HashReject(request) => {
                self.take_hash_answer(&request)?;
                self.events.push_back(PeerEvent::HashesRejected(request));
            }
            Frame::Unknown { .. } => {}
        }
        Ok(())
    }

    /// BEP 52: a hash request goes to the torrent, which knows the trees
    /// (and limits them); without metadata there is nothing to answer.
    fn on_hash_request(&mut self, now: Instant, request: HashRequest) {
        if self.metadata_only {
            self.send(now, &Frame::HashReject(request));
            return;
        }
        self.events.push_back(PeerEvent::HashRequest(request));
    }

    /// An answer to one of our hash requests: unasked ones end the
    /// session (BEP 52: "This message MUST correlate with a 'hash
    /// request'").
    fn take_hash_answer(&mut self, request: &HashRequest) -> Result<(), PeerError> {
        let pos = self
            .hashes_asked
            .iter()
            .position(|r| r == request)
            .ok_or(PeerError::UnexpectedMessage)?;
        self.hashes_asked.remove(pos);
        Ok(())
    }

    pub(super) fn on_request(&mut self, block: BlockRef) -> Result<(), PeerError> {
        if block.length == 0 || block.length > BLOCK_SIZE || block.piece.0 >= self.piece_count {
            return Err(PeerError::RequestOutOfRange);
        }
        let allowed = self.allowed_out.contains(&block.piece);
        if self.am_choking && !allowed {
            // BEP 6: reject explicitly; without it, requests while choked
            // are silently dropped.
            if self.fast() {
                self.send_now(&Frame::Reject(block));
            }
            return Ok(());
        }
        if self.incoming.len() >= self.config.max_incoming_requests {
            if self.fast() {
                self.send_now(&Frame::Reject(block));
            }
            return Ok(());
        }
        if !self.incoming.contains(&block) {
            self.incoming.push_back(block);
            self.events.push_back(PeerEvent::Request(block));
        }
        Ok(())
    }
}
