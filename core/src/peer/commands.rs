//! What the torrent tells the session to do, and the frames that go out.

use super::*;
use crate::metainfo::merkle::Hash;

impl PeerSession {
    /// Sends the first messages after the handshake: our pieces (bitfield,
    /// or have all / have none with BEP 6), the extension handshake when
    /// both speak BEP 10, and our allowed-fast set.
    pub fn start(&mut self, now: Instant, ours: &Bitfield, metadata_size: Option<u64>) {
        if self.state != State::Connected {
            return;
        }
        self.state = State::Active;
        let fast = self.fast();
        if self.metadata_only {
            if fast {
                self.send(now, &Frame::HaveNone);
            }
        } else if fast && ours.is_full() {
            self.send(now, &Frame::HaveAll);
        } else if fast && ours.count() == 0 {
            self.send(now, &Frame::HaveNone);
        } else if ours.count() > 0 {
            self.send(
                now,
                &Frame::Bitfield(Bytes::copy_from_slice(ours.as_bytes())),
            );
        }
        let both_ext = self
            .remote
            .is_some_and(|h| h.reserved.supports(Reserved::EXTENSION))
            && self.our_reserved.supports(Reserved::EXTENSION);
        if both_ext {
            let ext = ExtensionHandshake {
                messages: self.config.extensions.clone(),
                port: self.config.listen_port,
                client: Some(self.config.client_name.clone()),
                your_ip: self.remote_ip,
                reqq: Some(self.config.max_incoming_requests as u32),
                metadata_size,
            };
            let mut payload = Vec::new();
            ext.encode(&mut payload);
            self.send(
                now,
                &Frame::Extended {
                    id: 0,
                    payload: payload.into(),
                },
            );
        }
        if fast && self.config.allowed_fast > 0 && !self.metadata_only {
            if let Some(IpAddr::V4(ip)) = self.remote_ip {
                let set = allowed_fast_set(
                    ip,
                    &self.info_hash,
                    self.piece_count,
                    self.config.allowed_fast,
                );
                for p in set {
                    // Only pieces we can serve are useful to announce.
                    if ours.get(p) {
                        self.send(now, &Frame::AllowedFast(p));
                    }
                    self.allowed_out.push(p);
                }
            }
        }
    }

    /// Announces a piece we now have.
    pub fn have(&mut self, now: Instant, piece: PieceIndex) {
        if self.state == State::Active {
            self.send(now, &Frame::Have(piece));
        }
    }

    /// Sets whether we are interested in the peer.
    pub fn set_interested(&mut self, now: Instant, interested: bool) {
        if self.state == State::Active && self.am_interested != interested {
            self.am_interested = interested;
            if interested {
                self.last_progress = now;
            }
            let f = if interested {
                Frame::Interested
            } else {
                Frame::NotInterested
            };
            self.send(now, &f);
        }
    }

    /// Sends requests for `blocks` (the picker chose them).
    pub fn request(&mut self, now: Instant, blocks: &[BlockRef]) {
        if self.state != State::Active {
            return;
        }
        if self.outstanding.is_empty() {
            self.last_progress = now;
        }
        for b in blocks {
            self.outstanding.push_back(*b);
            self.send(now, &Frame::Request(*b));
        }
    }

    /// Cancels a request (endgame: another peer delivered the block).
    pub fn cancel(&mut self, now: Instant, block: BlockRef) {
        if let Some(pos) = self.outstanding.iter().position(|b| *b == block) {
            self.outstanding.remove(pos);
            self.remember_cancelled(block);
            self.send(now, &Frame::Cancel(block));
        }
    }

    pub(super) fn remember_cancelled(&mut self, block: BlockRef) {
        const REMEMBERED: usize = 512;
        if self.cancelled.len() == REMEMBERED {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(block);
    }

    /// Chokes the peer: its queued requests are dropped (BEP 3), or
    /// rejected one by one with BEP 6, except allowed-fast ones.
    pub fn choke(&mut self, now: Instant) {
        if self.state != State::Active || self.am_choking {
            return;
        }
        self.am_choking = true;
        self.send(now, &Frame::Choke);
        let fast = self.fast();
        let allowed = self.allowed_out.clone();
        let mut keep = VecDeque::new();
        for b in std::mem::take(&mut self.incoming) {
            if allowed.contains(&b.piece) {
                keep.push_back(b);
            } else if fast {
                self.send(now, &Frame::Reject(b));
            }
        }
        self.incoming = keep;
    }

    /// Unchokes the peer: it may request.
    pub fn unchoke(&mut self, now: Instant) {
        if self.state == State::Active && self.am_choking {
            self.am_choking = false;
            self.send(now, &Frame::Unchoke);
        }
    }

    /// Sends a block the peer requested (read from disk). Dropped if the
    /// request was cancelled or discarded meanwhile.
    pub fn send_block(&mut self, now: Instant, block: BlockRef, data: &[u8]) {
        let Some(pos) = self.incoming.iter().position(|b| *b == block) else {
            return;
        };
        if data.len() != block.length as usize {
            return;
        }
        self.incoming.remove(pos);
        self.write_piece(block, data);
        self.last_sent = now;
        self.last_payload = now;
        self.up.add(now, u64::from(block.length));
    }

    /// A `piece` message with `block`'s bytes, into the send buffer.
    fn write_piece(&mut self, block: BlockRef, data: &[u8]) {
        let header = Frame::piece_header(block.piece, block.offset, block.length);
        self.out.extend_from_slice(&header);
        self.out.extend_from_slice(data);
    }

    /// Sends every block the peer requested that lies within `span`, whose
    /// bytes are `data`: the torrent reads a run of one peer's requests of
    /// one piece at once. Returns the payload bytes sent; blocks cancelled
    /// meanwhile are skipped, the others go in the order they were asked.
    pub fn send_blocks(&mut self, now: Instant, span: BlockRef, data: &[u8]) -> u64 {
        if data.len() != span.length as usize {
            return 0;
        }
        let mut sent = 0u64;
        let mut i = 0;
        while i < self.incoming.len() {
            let block = self.incoming[i];
            let Some(at) = offset_within(span, block) else {
                i += 1;
                continue;
            };
            self.incoming.remove(i);
            self.write_piece(block, &data[at..at + block.length as usize]);
            sent += u64::from(block.length);
        }
        if sent > 0 {
            self.last_sent = now;
            self.last_payload = now;
            self.up.add(now, sent);
        }
        sent
    }

    /// Refuses every request within `span` (its read failed).
    pub fn reject_within(&mut self, now: Instant, span: BlockRef) {
        let fast = self.fast();
        let (refused, keep): (VecDeque<BlockRef>, VecDeque<BlockRef>) =
            std::mem::take(&mut self.incoming)
                .into_iter()
                .partition(|b| offset_within(span, *b).is_some());
        self.incoming = keep;
        if fast {
            for block in refused {
                self.send(now, &Frame::Reject(block));
            }
        }
    }

    /// Refuses a request (we cannot serve it after all).
    pub fn reject(&mut self, now: Instant, block: BlockRef) {
        if let Some(pos) = self.incoming.iter().position(|b| *b == block) {
            self.incoming.remove(pos);
            if self.fast() {
                self.send(now, &Frame::Reject(block));
            }
        }
    }

    /// Answers a [`PeerEvent::HashRequest`] (BEP 52): the hashes and
    /// their uncles, or a `hash reject` when `hashes` is `None`.
    pub fn answer_hashes(&mut self, now: Instant, request: HashRequest, hashes: Option<&[Hash]>) {
        let frame = match hashes {
            Some(h) => Frame::Hashes {
                request,
                hashes: HashList::from_hashes(h),
            },
            None => Frame::HashReject(request),
        };
        self.send(now, &frame);
    }

    /// Asks the peer for merkle hashes (BEP 52); false (nothing sent)
    /// while [`MAX_HASH_REQUESTS`] are unanswered or the same request is.
    pub fn request_hashes(&mut self, now: Instant, request: HashRequest) -> bool {
        if self.hashes_asked.len() >= MAX_HASH_REQUESTS || self.hashes_asked.contains(&request) {
            return false;
        }
        self.hashes_asked.push(request);
        self.send(now, &Frame::HashRequest(request));
        true
    }

    /// Our hash requests the peer has not answered yet.
    pub fn hash_requests(&self) -> &[HashRequest] {
        &self.hashes_asked
    }

    /// Sends a BEP 10 extension message under the peer's id for it.
    pub fn send_extended(&mut self, now: Instant, id: u8, payload: Bytes) {
        if self.state == State::Active {
            self.send(now, &Frame::Extended { id, payload });
        }
    }

    /// Closes the session from our side (or because the peer misbehaved in
    /// a way only the torrent can see).
    pub fn close(&mut self, reason: CloseReason) {
        self.close_with(reason);
    }

    pub(super) fn close_with(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        let dropped: Vec<BlockRef> = self.outstanding.drain(..).collect();
        if !dropped.is_empty() {
            self.events.push_back(PeerEvent::RequestsDropped(dropped));
        }
        self.incoming.clear();
        self.events.push_back(PeerEvent::Closed(reason));
    }

    pub(super) fn send_handshake(&mut self, now: Instant) {
        Handshake {
            reserved: self.our_reserved,
            info_hash: self.info_hash,
            peer_id: self.our_id,
        }
        .encode(&mut self.out);
        self.last_sent = now;
    }

    pub(super) fn send(&mut self, now: Instant, frame: &Frame) {
        frame.encode(&mut self.out);
        self.last_sent = now;
    }

    /// Sends without touching the keep-alive clock (used where `now` is not
    /// at hand; every input path updates it soon after).
    pub(super) fn send_now(&mut self, frame: &Frame) {
        frame.encode(&mut self.out);
    }
}

/// Where `block` starts within `span`, if it lies wholly inside it.
fn offset_within(span: BlockRef, block: BlockRef) -> Option<usize> {
    let end = |b: BlockRef| u64::from(b.offset) + u64::from(b.length);
    (block.piece == span.piece && block.offset >= span.offset && end(block) <= end(span))
        .then(|| (block.offset - span.offset) as usize)
}
