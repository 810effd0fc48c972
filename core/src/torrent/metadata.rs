//! The metadata phase: a magnet link is a torrent whose info dictionary is
//! not known yet (BEP 9 over BEP 10).
//!
//! [`Torrent::from_magnet`] starts in [`TorrentState::FetchingMetadata`].
//! It finds and keeps peers exactly as a torrent does (trackers from the
//! link, DHT, PEX, user addresses; the same sessions, budgets and timers),
//! learns the metadata's size from their extension handshakes, and asks
//! those that speak `ut_metadata` for its 16 KiB pieces — two at a time per
//! peer, in parallel. When every piece is in, the SHA-1 of the whole must
//! be the info-hash; only then is it parsed, once, into the torrent's
//! [`TorrentInfo`], and the torrent reports
//! [`TorrentEvent::MetadataReceived`] and waits in
//! [`TorrentState::AwaitingStart`] until [`Torrent::start`] says what is
//! on disk. Every connection stays open through the handover: the sessions
//! learn the piece count and what their peers said they have counts from
//! then on.
//!
//! Hostile peers cannot stop it: a size over [`MAX_METADATA_SIZE`] (or the
//! torrent's own `max_metadata_size`) is ignored before anything is
//! allocated; a piece of the wrong length, an
//! unrequested piece or a wrong `total_size` drops the peer; when the
//! assembled whole does not hash right, a sole contributor is banned, and
//! several contributors put the fetch in single-source mode — one peer
//! provides everything, so the next failure names the liar. A reject or a
//! request unanswered for [`REQUEST_TIMEOUT`] sends the piece to another
//! peer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sha1::{Digest, Sha1};

use super::layers::LayerFetch;
use super::*;
use crate::metainfo::hash_tree::FileTrees;
use crate::wire::{metadata_piece_count, MetadataMessage, MAX_METADATA_SIZE, METADATA_PIECE};

/// Requests in flight to one peer.
const REQUESTS_PER_PEER: usize = 2;
/// A peer that rejected a request is not asked again for this long.
const REJECT_BACKOFF: Duration = Duration::from_secs(30);
/// A piece request unanswered this long goes to another peer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Missing,
    Requested { conn: ConnId, at: Instant },
    Have { from: SocketAddr },
}

/// What we asked one peer for.
#[derive(Clone, Copy, Debug, Default)]
struct Asked {
    outstanding: usize,
    /// Not asked again before this (it rejected or timed out).
    resting_until: Option<Instant>,
}

/// The pieces of the info dictionary being assembled.
#[derive(Debug, Default)]
pub(super) struct MetadataFetch {
    /// The size being assembled (the one most peers report).
    size: Option<u64>,
    slots: Vec<Slot>,
    buffer: Vec<u8>,
    /// After a failed hash with several contributors: one peer at a time.
    single_source: bool,
    asked: BTreeMap<ConnId, Asked>,
    /// A v2-only torrent's info dictionary is in; its piece layers are
    /// being fetched (BEP 52).
    pub(super) layers: Option<LayerFetch>,
    /// A peer with `ut_metadata` claimed a size over the limit.
    too_large: bool,
}

impl MetadataFetch {
    /// A peer is gone: what it was asked for is missing again.
    pub(super) fn peer_gone(&mut self, conn: ConnId) {
        if let Some(l) = &mut self.layers {
            l.peer_gone(conn);
        }
        self.asked.remove(&conn);
        for s in &mut self.slots {
            if matches!(s, Slot::Requested { conn: c, .. } if *c == conn) {
                *s = Slot::Missing;
            }
        }
    }

    /// The earliest request deadline.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let layers = self.layers.as_ref().and_then(LayerFetch::poll_timeout);
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Requested { at, .. } => Some(*at + REQUEST_TIMEOUT),
                _ => None,
            })
            .chain(layers)
            .min()
    }

    /// Requests unanswered for too long are missing again; their peers
    /// rest.
    pub(super) fn expire(&mut self, now: Instant) {
        if let Some(l) = &mut self.layers {
            l.expire(now);
        }
        for i in 0..self.slots.len() {
            if let Slot::Requested { conn, at } = self.slots[i] {
                if now.saturating_duration_since(at) >= REQUEST_TIMEOUT {
                    self.slots[i] = Slot::Missing;
                    self.rest(now, conn);
                }
            }
        }
    }

    fn rest(&mut self, now: Instant, conn: ConnId) {
        let a = self.asked.entry(conn).or_default();
        a.outstanding = a.outstanding.saturating_sub(1);
        a.resting_until = Some(now + REJECT_BACKOFF);
    }
}

/// The size a peer's extension handshake claims, if believable and at
/// most `limit`.
fn claimed_size(s: &PeerSession, limit: u64) -> Option<u64> {
    s.remote_extensions()?
        .metadata_size
        .filter(|&n| n > 0 && n <= MAX_METADATA_SIZE.min(limit))
}

impl Torrent {
    /// A magnet link's torrent: only its info-hash and trackers (tiers,
    /// BEP 12) are known; it fetches the rest from peers (see the module
    /// documentation). Give it peers with [`add_peers`](Torrent::add_peers).
    pub fn from_magnet(
        now: Instant,
        info_hash: InfoHash,
        trackers: Vec<Vec<String>>,
        config: TorrentConfig,
        seed: Seed,
    ) -> Torrent {
        // No pieces until the metadata says how many.
        let layout = FileLayout::new(METADATA_PIECE as u32, std::iter::empty())
            .unwrap_or_else(|| unreachable!("an empty layout with a non-zero piece length"));
        let info = TorrentInfo {
            info_hash,
            info_hash_v2: None,
            info_hash_v1: None,
            layout,
            piece_hashes: Vec::new(),
            private: false,
            trackers,
            metadata: None,
            web_seeds: Vec::new(),
            trees: Default::default(),
        };
        let mut t = Torrent::with_info(now, info, config, seed);
        t.fetch = Some(MetadataFetch::default());
        t.state = TorrentState::FetchingMetadata;
        t.paused_from = TorrentState::FetchingMetadata;
        t.emit(TorrentEvent::StateChanged(t.state));
        t.pump_announces(now);
        t
    }

    /// What the torrent knows of its content (a magnet's only once
    /// [`TorrentEvent::MetadataReceived`] came).
    pub fn info(&self) -> &TorrentInfo {
        &self.info
    }

    /// While fetching metadata: a peer offered it at a size over
    /// `max_metadata_size`, so it was not fetched from that peer.
    pub fn metadata_too_large(&self) -> bool {
        self.fetch.as_ref().is_some_and(|f| f.too_large)
    }

    /// The bencoded info dictionary, if known (a magnet's once verified).
    pub fn metadata(&self) -> Option<&Bytes> {
        self.info.metadata.as_ref()
    }

    /// A .torrent file for it: `announce` and `announce-list` from its
    /// tracker tiers, the info dictionary byte for byte (so the info-hash
    /// is the same), a v2 torrent's `piece layers` (BEP 52), then its web
    /// seeds as `url-list` (BEP 19). `None` until the metadata is known.
    pub fn torrent_file(&self) -> Option<Vec<u8>> {
        use crate::bencode::{encode_bytes, Value};
        let info = self.info.metadata.as_ref()?;
        let tiers = &self.info.trackers;
        let mut out = vec![b'd'];
        if let Some(first) = tiers.iter().flatten().next() {
            encode_bytes(&mut out, b"announce");
            encode_bytes(&mut out, first.as_bytes());
            encode_bytes(&mut out, b"announce-list");
            Value::list(
                tiers
                    .iter()
                    .map(|t| Value::list(t.iter().map(|u| Value::bytes(u.as_bytes())).collect()))
                    .collect(),
            )
            .encode(&mut out);
        }
        encode_bytes(&mut out, b"info");
        out.extend_from_slice(info);
        // A v2 torrent's layers, fetched from peers for a magnet (BEP 52).
        if !self.info.trees.is_empty() {
            encode_bytes(&mut out, b"piece layers");
            out.push(b'd');
            for (root, layer) in self.info.trees.piece_layers() {
                encode_bytes(&mut out, root);
                encode_bytes(&mut out, &layer);
            }
            out.push(b'e');
        }
        let seeds = self.web_seed_urls();
        if !seeds.is_empty() {
            encode_bytes(&mut out, b"url-list");
            Value::list(seeds.iter().map(|u| Value::bytes(u.as_bytes())).collect())
                .encode(&mut out);
        }
        out.push(b'e');
        Some(out)
    }

    /// After [`TorrentEvent::MetadataReceived`]: `start` says what is on
    /// disk (the application can tell only now that it knows the files).
    /// The torrent checks or downloads over the connections it already
    /// has. Does nothing in any other state.
    pub fn start(&mut self, now: Instant, start: StartMode) {
        self.now = now;
        if self.state != TorrentState::AwaitingStart {
            return;
        }
        self.begin(now, start);
    }

    /// A `ut_metadata` message while fetching: pieces and rejects go to
    /// the fetch; false for requests (answered as any torrent does).
    pub(super) fn on_fetch_message(&mut self, now: Instant, conn: ConnId, payload: &Bytes) -> bool {
        match MetadataMessage::decode(payload) {
            Ok(MetadataMessage::Data {
                piece,
                total_size,
                data,
            }) => self.on_metadata_piece(now, conn, piece, total_size, data),
            Ok(MetadataMessage::Reject { piece }) => self.on_metadata_reject(now, conn, piece),
            Ok(MetadataMessage::Request { .. }) => return false,
            Ok(MetadataMessage::Unknown { .. }) => {}
            Err(e) => self.drop_peer(
                now,
                conn,
                CloseReason::Protocol(PeerError::Malformed(e)),
                true,
            ),
        }
        true
    }

    fn on_metadata_piece(
        &mut self,
        now: Instant,
        conn: ConnId,
        piece: u32,
        total: u64,
        data: Bytes,
    ) {
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        let i = piece as usize;
        let requested =
            matches!(f.slots.get(i), Some(Slot::Requested { conn: c, .. }) if *c == conn);
        let expected = f.size.map(|size| {
            let start = (i * METADATA_PIECE).min(size as usize);
            METADATA_PIECE.min(size as usize - start)
        });
        if !requested || f.size != Some(total) || Some(data.len()) != expected {
            // Not what we asked for: a broken or hostile peer.
            return self.drop_peer(now, conn, CloseReason::Protocol(PeerError::BadData), true);
        }
        let Some(addr) = self.peers.get(&conn).map(|p| p.addr) else {
            return;
        };
        let a = f.asked.entry(conn).or_default();
        a.outstanding = a.outstanding.saturating_sub(1);
        f.slots[i] = Slot::Have { from: addr };
        let start = i * METADATA_PIECE;
        f.buffer[start..start + data.len()].copy_from_slice(&data);
        let complete = f.slots.iter().all(|s| matches!(s, Slot::Have { .. }));
        self.list.good_piece(&addr, false);
        if complete {
            self.assemble_metadata(now);
        }
    }

    fn on_metadata_reject(&mut self, now: Instant, conn: ConnId, piece: u32) {
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        let i = piece as usize;
        if matches!(f.slots.get(i), Some(Slot::Requested { conn: c, .. }) if *c == conn) {
            f.slots[i] = Slot::Missing;
            f.rest(now, conn);
        }
    }

    /// Every piece is in: check the whole against the info-hash.
    fn assemble_metadata(&mut self, now: Instant) {
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        // A v2-only magnet names the torrent by its v2 hash alone.
        let v2_only = self
            .info
            .info_hash_v2
            .filter(|v2| InfoHash::truncated(v2) == self.info.info_hash);
        let matches = match v2_only {
            Some(v2) => <[u8; 32]>::from(sha2::Sha256::digest(&f.buffer)) == v2,
            None if <[u8; 20]>::from(Sha1::digest(&f.buffer)) == self.info.info_hash.0 => true,
            None => {
                // The DHT names a v2 or hybrid torrent by its truncated v2
                // hash too (BEP 52); a crawler meets it by that name alone.
                let v2 = <[u8; 32]>::from(sha2::Sha256::digest(&f.buffer));
                let named = InfoHash::truncated(&v2) == self.info.info_hash;
                if named {
                    self.info.info_hash_v2 = Some(v2);
                }
                named
            }
        };
        if matches {
            let metadata = Bytes::from(std::mem::take(&mut f.buffer));
            return self.handover(now, metadata);
        }
        let mut sources: Vec<SocketAddr> = f
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Have { from } => Some(*from),
                _ => None,
            })
            .collect();
        sources.sort();
        sources.dedup();
        for s in &mut f.slots {
            *s = Slot::Missing;
        }
        if let [liar] = sources[..] {
            self.list.ban(&liar);
            self.emit(TorrentEvent::PeerBanned(liar));
            let conns: Vec<ConnId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.addr == liar)
                .map(|(c, _)| *c)
                .collect();
            for c in conns {
                self.drop_peer(now, c, CloseReason::Protocol(PeerError::BadData), true);
            }
        } else if let Some(f) = self.fetch.as_mut() {
            f.single_source = true;
        }
        // A size only liars claimed goes with them.
        let limit = self.config.max_metadata_size;
        let size = self.fetch.as_ref().and_then(|f| f.size);
        let still_claimed = self
            .peers
            .values()
            .filter_map(|p| p.session.as_ref())
            .any(|s| claimed_size(s, limit) == size);
        if let (false, Some(f)) = (still_claimed, self.fetch.as_mut()) {
            f.size = None;
        }
    }

    /// The verified metadata: a v2-only torrent first fetches the piece
    /// layers it does not carry ([`LayerFetch`]); any other becomes the
    /// torrent's at once.
    fn handover(&mut self, now: Instant, metadata: Bytes) {
        let Ok(info) = Info::from_bytes(&metadata) else {
            return self.handover_with(now, metadata, None);
        };
        // BEP 52: a v2 half's hash is the SHA-256 of the same bytes. It
        // must be the link's `btmh` if it gave one, a v2-only torrent is
        // named by it, and a v1-only one has none.
        let has_v2 = info.is_v2_only() || info.is_hybrid();
        let v2 = has_v2.then(|| <[u8; 32]>::from(sha2::Sha256::digest(&metadata)));
        let named_by_v1 = v2.is_some_and(|v2| InfoHash::truncated(&v2) != self.info.info_hash);
        let agrees = match (self.info.info_hash_v2, v2) {
            (Some(given), Some(v2)) => given == v2,
            (Some(_), None) => false,
            (None, _) => !(info.is_v2_only() && named_by_v1),
        };
        if !agrees {
            self.fetch = None;
            self.emit(TorrentEvent::MetadataInvalid(MetainfoError::V2HashMismatch));
            self.stop(now);
            return;
        }
        self.info.info_hash_v2 = v2;
        if !info.is_v2_only() {
            return self.handover_with(now, metadata, None);
        }
        if let Some(lf) = LayerFetch::new(metadata.clone(), &info) {
            if let Some(f) = self.fetch.as_mut() {
                f.layers = Some(lf);
            }
            return self.request_layers(now);
        }
        // Every file fits in a piece: its root is its piece's hash.
        let hashes = crate::metainfo::piece_hashes(&info, &BTreeMap::new());
        self.handover_with(now, metadata, hashes.map(|h| (h, FileTrees::default())))
    }

    /// The metadata becomes the torrent's, with a v2-only torrent's piece
    /// hashes and trees (`v2`): parsed once, the sessions learn the piece
    /// count, and the torrent waits for [`start`](Torrent::start).
    pub(super) fn handover_with(
        &mut self,
        now: Instant,
        metadata: Bytes,
        v2: Option<(Vec<PieceHash>, FileTrees)>,
    ) {
        let trackers = std::mem::take(&mut self.info.trackers);
        let v2_hash = self.info.info_hash_v2;
        let parsed = Info::from_bytes(&metadata).and_then(|info| {
            let mut t =
                TorrentInfo::from_info(self.info.info_hash, &info, trackers, metadata.clone());
            if info.is_v2_only() {
                let (hashes, trees) = v2.ok_or(MetainfoError::PieceLayer { file: 0 })?;
                t.piece_hashes = hashes;
                t.trees = std::sync::Arc::new(trees);
            }
            t.info_hash_v2 = v2_hash;
            if info.is_hybrid() {
                // Fetched by its v1 hash, or (a `btmh` link) by its v2
                // name: then the v1 hash is the metadata's SHA-1.
                let by_v2 = v2_hash.is_some_and(|h| InfoHash::truncated(&h) == t.info_hash);
                t.info_hash_v1 = Some(if by_v2 {
                    InfoHash::of_info(&metadata)
                } else {
                    t.info_hash
                });
            }
            Ok(t)
        });
        self.fetch = None;
        let info = match parsed {
            Ok(info) => info,
            Err(e) => {
                self.emit(TorrentEvent::MetadataInvalid(e));
                self.stop(now);
                return;
            }
        };
        let count = info.layout.piece_count();
        self.picker = PiecePicker::new(&info.layout, self.rng.child_seed());
        self.on_disk = Bitfield::new(count);
        self.info = info;
        // What was derived from the old info (nothing, before metadata).
        self.leaves = leaves::Leaves::default();
        self.recount_left();
        self.emit(TorrentEvent::MetadataReceived);
        self.set_state(TorrentState::AwaitingStart);
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                s.learn_piece_count(count);
            }
            self.flush(now, c);
        }
    }

    /// The magnet's `btmh` (BEP 52): a hybrid's is a second name, a
    /// v2-only torrent's (named by its truncation) is what the metadata
    /// must hash to.
    pub fn set_v2_hash(&mut self, v2: [u8; 32]) {
        if self.fetch.is_some() {
            self.info.info_hash_v2 = Some(v2);
        }
    }

    /// Picks the size to assemble (the one most peers report) and sends
    /// requests for missing pieces to peers with room.
    pub(super) fn request_metadata(&mut self, now: Instant) {
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        if f.layers.is_some() {
            return self.request_layers(now);
        }
        let limit = self.config.max_metadata_size;
        if f.size.is_none() {
            let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
            for s in self.peers.values().filter_map(|p| p.session.as_ref()) {
                if metadata_id(s).is_none() {
                    continue;
                }
                match claimed_size(s, limit) {
                    Some(n) => *votes.entry(n).or_default() += 1,
                    None => {
                        f.too_large |= s
                            .remote_extensions()
                            .and_then(|e| e.metadata_size)
                            .is_some_and(|n| n > limit)
                    }
                }
            }
            let Some((&size, _)) = votes
                .iter()
                .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
            else {
                return;
            };
            f.size = Some(size);
            f.buffer = vec![0; size as usize];
            f.slots = vec![Slot::Missing; metadata_piece_count(size) as usize];
        }
        let size = f.size;
        let mut askable: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(c, p)| {
                p.session.as_ref().is_some_and(|s| {
                    s.is_active() && metadata_id(s).is_some() && claimed_size(s, limit) == size
                }) && f
                    .asked
                    .get(c)
                    .and_then(|a| a.resting_until)
                    .is_none_or(|t| t <= now)
            })
            .map(|(c, _)| *c)
            .collect();
        if f.single_source {
            // The peer already providing keeps going; else the first.
            let current = f.slots.iter().find_map(|s| match s {
                Slot::Requested { conn, .. } => Some(*conn),
                _ => None,
            });
            askable = match current.or_else(|| askable.first().copied()) {
                Some(c) if askable.contains(&c) => vec![c],
                _ => Vec::new(),
            };
        }
        for conn in askable {
            while self.peers.contains_key(&conn) {
                let Some(f) = self.fetch.as_mut() else {
                    return;
                };
                let Some(i) = f.slots.iter().position(|s| *s == Slot::Missing) else {
                    return;
                };
                let a = f.asked.entry(conn).or_default();
                if a.outstanding >= REQUESTS_PER_PEER {
                    break;
                }
                a.outstanding += 1;
                f.slots[i] = Slot::Requested { conn, at: now };
                let mut payload = Vec::new();
                MetadataMessage::Request { piece: i as u32 }.encode(&mut payload);
                if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
                    if let Some(id) = metadata_id(s) {
                        s.send_extended(now, id, payload.into());
                    }
                }
                self.flush(now, conn);
            }
        }
    }
}

/// The peer's id for `ut_metadata`, once its extension handshake came.
fn metadata_id(s: &PeerSession) -> Option<u8> {
    s.remote_extensions()?.id_of(UT_METADATA)
}
