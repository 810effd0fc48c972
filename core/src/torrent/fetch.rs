//! `MetadataFetch`: getting a torrent's info dictionary from its peers
//! when all we have is a magnet link (BEP 9 over BEP 10).
//!
//! It finds peers (trackers from the link, addresses it is given: `x.pe`,
//! the DHT), connects with [`PeerSession::new_for_metadata`], learns the
//! metadata's size from their extension handshakes, and asks the peers that
//! speak `ut_metadata` for its 16 KiB pieces — two at a time per peer, in
//! parallel. When every piece is in, the SHA-1 of the whole must be the
//! info-hash; only then is it [`FetchEvent::Done`].
//!
//! Hostile peers cannot stop it: a size over [`MAX_METADATA_SIZE`] is
//! ignored before anything is allocated; a piece of the wrong length, an
//! unrequested piece or a wrong `total_size` drops the peer; when the
//! assembled whole does not hash right, a sole contributor is banned, and
//! several contributors put the fetch in single-source mode — one peer
//! provides everything, so the next failure names the liar. A reject or a
//! request unanswered for [`FetchConfig::request_timeout`] sends the piece
//! to another peer.
//!
//! Same shape as [`Torrent`](super::Torrent): `handle_*` inputs, then
//! [`poll_output`](MetadataFetch::poll_output) and
//! [`poll_event`](MetadataFetch::poll_event) until `None`, then
//! [`poll_timeout`](MetadataFetch::poll_timeout).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use sha1::{Digest, Sha1};

use super::exchange::OUR_UT_METADATA;
use super::peers::{PeerList, PeerSource};
use super::{TorrentConfig, TorrentOutput};
use crate::bitfield::Bitfield;
use crate::handles::{ConnId, ConnIds};
use crate::metainfo::InfoHash;
use crate::peer::{Direction, PeerEvent, PeerSession, SessionConfig};
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::tracker::tiers::Announcer;
use crate::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse, TrackerError};
use crate::wire::{
    metadata_piece_count, MetadataMessage, PeerId, Reserved, MAX_METADATA_SIZE, METADATA_PIECE,
    UT_METADATA,
};

/// Settings of a fetch.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Extension bits we advertise.
    pub reserved: Reserved,
    /// Our listen port (announced, and in the extension handshake).
    pub listen_port: u16,
    /// Where connection ids come from.
    pub conn_ids: ConnIds,
    /// Most connected peers.
    pub max_peers: usize,
    /// Most connections per IP.
    pub max_peers_per_ip: usize,
    /// Peer session timing.
    pub session: SessionConfig,
    /// A piece request unanswered this long goes to another peer.
    pub request_timeout: Duration,
    /// Peers asked of trackers.
    pub numwant: Option<u32>,
}

impl FetchConfig {
    /// The settings a torrent would use, for the fetch that comes before it.
    pub fn from_torrent(config: &TorrentConfig) -> FetchConfig {
        FetchConfig {
            peer_id: config.peer_id,
            reserved: config.reserved,
            listen_port: config.listen_port,
            conn_ids: config.conn_ids.clone(),
            max_peers: config.max_peers.min(30),
            max_peers_per_ip: config.max_peers_per_ip,
            session: config.session.clone(),
            request_timeout: Duration::from_secs(10),
            numwant: config.numwant,
        }
    }
}

/// What a fetch tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchEvent {
    /// A peer connected.
    PeerConnected {
        /// Its address.
        addr: SocketAddr,
    },
    /// The metadata is complete and hashes to the info-hash.
    Done {
        /// The bencoded info dictionary.
        metadata: Bytes,
    },
    /// A peer sent metadata that did not hash right (alone, or as the
    /// single source) and is banned.
    BadMetadata {
        /// Its address.
        addr: SocketAddr,
    },
    /// A tracker failed.
    TrackerError {
        /// Its URL.
        url: String,
        /// Why.
        error: TrackerError,
    },
}

/// Requests in flight to one peer.
const REQUESTS_PER_PEER: usize = 2;
/// A peer that rejected a request is not asked again for this long.
const REJECT_BACKOFF: Duration = Duration::from_secs(30);
/// How often to look for peers to connect to.
const CONNECT_INTERVAL: Duration = Duration::from_secs(1);
/// Most connection attempts in flight.
const MAX_HALF_OPEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Missing,
    Requested { conn: ConnId, at: Instant },
    Have { from: SocketAddr },
}

#[derive(Debug)]
struct FetchPeer {
    addr: SocketAddr,
    /// `None` while connecting.
    session: Option<PeerSession>,
    /// The peer's id for `ut_metadata`, once its extension handshake came.
    their_id: Option<u8>,
    /// The size it says the metadata has.
    size: Option<u64>,
    outstanding: usize,
    /// Not asked again before this (it rejected or timed out).
    resting_until: Option<Instant>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: InfoHash,
    config: FetchConfig,
    announcer: Announcer,
    key: u32,
    peers: BTreeMap<ConnId, FetchPeer>,
    list: PeerList,
    /// The size being assembled, and its pieces.
    size: Option<u64>,
    slots: Vec<Slot>,
    buffer: Vec<u8>,
    /// After a failed hash with several contributors: one peer at a time.
    single_source: bool,
    done: Option<Bytes>,
    out: VecDeque<TorrentOutput>,
    events: VecDeque<FetchEvent>,
    next_connect: Instant,
    now: Instant,
}

impl MetadataFetch {
    /// A fetch of `info_hash`'s metadata, announcing to `trackers` (tiers,
    /// BEP 12).
    pub fn new(
        now: Instant,
        info_hash: InfoHash,
        trackers: Vec<Vec<String>>,
        config: FetchConfig,
        seed: Seed,
    ) -> MetadataFetch {
        let mut rng = Rng::new(seed);
        let announcer = Announcer::new(now, trackers, &mut rng);
        let key = rng.next_u32();
        let mut f = MetadataFetch {
            list: PeerList::new(config.max_peers_per_ip),
            info_hash,
            config,
            announcer,
            key,
            peers: BTreeMap::new(),
            size: None,
            slots: Vec::new(),
            buffer: Vec::new(),
            single_source: false,
            done: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_connect: now,
            now,
        };
        f.pump_announces(now);
        f
    }

    /// The info-hash being fetched.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The verified metadata, once done.
    pub fn metadata(&self) -> Option<&Bytes> {
        self.done.as_ref()
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.values().filter(|p| p.session.is_some()).count()
    }

    /// Every address worth trying for the torrent: the peers we met first.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.list.addresses()
    }

    /// Adds peer addresses (from `x.pe`, the DHT, …).
    pub fn add_peers(
        &mut self,
        now: Instant,
        addrs: impl IntoIterator<Item = SocketAddr>,
        source: PeerSource,
    ) {
        self.now = now;
        for a in addrs {
            self.list.add(now, a, source);
        }
        self.connect_more(now);
    }

    /// Ends the fetch: every connection closes, trackers hear `stopped`
    /// (for a torrent that will not follow) unless `handing_over`.
    pub fn close(&mut self, now: Instant, handing_over: bool) {
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            self.peers.remove(&conn);
            self.out.push_back(TorrentOutput::Close { conn });
        }
        if !handing_over {
            self.announcer.stop(now);
            self.pump_announces(now);
        }
    }

    // --- trackers -------------------------------------------------------

    fn pump_announces(&mut self, now: Instant) {
        if self.done.is_some() {
            return;
        }
        while let Some(due) = self.announcer.poll_announce(now) {
            let request = AnnounceRequest {
                info_hash: self.info_hash,
                peer_id: self.config.peer_id,
                port: self.config.listen_port,
                uploaded: 0,
                downloaded: 0,
                // Unknown until the metadata arrives; any non-zero value
                // makes us a leecher to the tracker.
                left: 1,
                event: if due.event == AnnounceEvent::Completed {
                    AnnounceEvent::None
                } else {
                    due.event
                },
                numwant: self.config.numwant,
                key: Some(self.key),
                tracker_id: None,
                ip: None,
            };
            self.out.push_back(TorrentOutput::Announce {
                url: due.url,
                request,
            });
        }
    }

    /// The result of a [`TorrentOutput::Announce`].
    pub fn handle_announce(
        &mut self,
        now: Instant,
        url: &str,
        result: Result<AnnounceResponse, TrackerError>,
    ) {
        self.now = now;
        match result {
            Ok(resp) => {
                self.announcer.handle_success(now, url, &resp);
                self.add_peers(now, resp.peers, PeerSource::Tracker);
            }
            Err(error) => {
                self.announcer.handle_failure(now, url);
                self.events.push_back(FetchEvent::TrackerError {
                    url: url.to_owned(),
                    error,
                });
            }
        }
        self.pump_announces(now);
    }

    // --- connections ----------------------------------------------------

    fn connect_more(&mut self, now: Instant) {
        if self.done.is_some() {
            return;
        }
        let half_open = self.peers.values().filter(|p| p.session.is_none()).count();
        let room = self
            .config
            .max_peers
            .saturating_sub(self.peers.len())
            .min(MAX_HALF_OPEN.saturating_sub(half_open));
        for addr in self.list.to_connect(now, room) {
            let conn = self.config.conn_ids.next_id();
            self.peers.insert(
                conn,
                FetchPeer {
                    addr,
                    session: None,
                    their_id: None,
                    size: None,
                    outstanding: 0,
                    resting_until: None,
                },
            );
            self.out.push_back(TorrentOutput::Connect { conn, addr });
        }
        self.next_connect = now + CONNECT_INTERVAL;
    }

    fn new_session(&self, now: Instant, direction: Direction, addr: SocketAddr) -> PeerSession {
        let mut config = self.config.session.clone();
        config.listen_port = Some(self.config.listen_port);
        // We can receive metadata; we have none to serve, and whether the
        // torrent is private (no PEX, BEP 27) is not known yet.
        config.extensions = vec![(UT_METADATA.to_owned(), OUR_UT_METADATA)];
        PeerSession::new_for_metadata(
            now,
            config,
            direction,
            self.info_hash,
            self.config.peer_id,
            self.config.reserved.with(Reserved::EXTENSION),
            Some(addr.ip()),
        )
    }

    /// An outgoing connection we asked for is open.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        let Some(addr) = self.peers.get(&conn).map(|p| p.addr) else {
            return;
        };
        let session = self.new_session(now, Direction::Outgoing, addr);
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
        }
        self.connect_more(now);
    }

    /// A peer connected to us for this info-hash; false if refused.
    pub fn handle_incoming(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) -> bool {
        self.now = now;
        if self.done.is_some()
            || self.peers.len() >= self.config.max_peers
            || !self.list.accept(now, addr)
        {
            return false;
        }
        let session = self.new_session(now, Direction::Incoming, addr);
        self.peers.insert(
            conn,
            FetchPeer {
                addr,
                session: Some(session),
                their_id: None,
                size: None,
                outstanding: 0,
                resting_until: None,
            },
        );
        true
    }

    /// Bytes arrived on a connection.
    pub fn handle_chunk(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        self.now = now;
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.handle_chunk(now, data);
        }
        self.flush(now, conn);
        self.request_more(now);
    }

    /// The connection closed.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            s.handle_eof(now);
        }
        self.flush(now, conn);
        self.request_more(now);
    }

    /// Timers: sessions, request deadlines, trackers, connecting.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.pump_announces(now);
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            let due = self
                .peers
                .get(&c)
                .and_then(|p| p.session.as_ref())
                .and_then(PeerSession::poll_timeout)
                .is_some_and(|t| t <= now);
            if due {
                if let Some(s) = self.peers.get_mut(&c).and_then(|p| p.session.as_mut()) {
                    s.handle_timeout(now);
                }
                self.flush(now, c);
            }
        }
        for i in 0..self.slots.len() {
            if let Slot::Requested { conn, at } = self.slots[i] {
                if now.saturating_duration_since(at) >= self.config.request_timeout {
                    self.slots[i] = Slot::Missing;
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.outstanding = p.outstanding.saturating_sub(1);
                        p.resting_until = Some(now + REJECT_BACKOFF);
                    }
                }
            }
        }
        if now >= self.next_connect {
            self.connect_more(now);
        }
        self.request_more(now);
    }

    // --- outputs --------------------------------------------------------

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<TorrentOutput> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FetchEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](MetadataFetch::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done.is_some() {
            return None;
        }
        let mut t = self.announcer.poll_timeout();
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if self.peers.len() < self.config.max_peers {
            if let Some(due) = self.list.next_due() {
                at(due.max(self.next_connect));
            }
        }
        for p in self.peers.values() {
            if let Some(st) = p.session.as_ref().and_then(PeerSession::poll_timeout) {
                at(st);
            }
        }
        for s in &self.slots {
            if let Slot::Requested { at: sent, .. } = s {
                at(*sent + self.config.request_timeout);
            }
        }
        t.map(|t| t.max(self.now))
    }

    // --- the exchange ---------------------------------------------------

    fn flush(&mut self, now: Instant, conn: ConnId) {
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
        let mut data = Vec::new();
        if let Some(s) = self.peers.get_mut(&conn).and_then(|p| p.session.as_mut()) {
            let _ = s.poll_transmit(&mut data);
        }
        if !data.is_empty() {
            self.out.push_back(TorrentOutput::Send { conn, data });
        }
    }

    fn on_peer_event(&mut self, now: Instant, conn: ConnId, event: PeerEvent) {
        match event {
            PeerEvent::Connected { .. } => {
                let Some(p) = self.peers.get_mut(&conn) else {
                    return;
                };
                if let Some(s) = p.session.as_mut() {
                    s.start(now, &Bitfield::new(0), None);
                }
                let addr = p.addr;
                self.events.push_back(FetchEvent::PeerConnected { addr });
            }
            PeerEvent::ExtensionHandshake(ext) => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.their_id = ext.id_of(UT_METADATA);
                    p.size = ext
                        .metadata_size
                        .filter(|&s| s > 0 && s <= MAX_METADATA_SIZE);
                }
            }
            PeerEvent::Extended { id, payload } if id == OUR_UT_METADATA => {
                match MetadataMessage::decode(&payload) {
                    Ok(MetadataMessage::Data {
                        piece,
                        total_size,
                        data,
                    }) => self.on_data(now, conn, piece, total_size, data),
                    Ok(MetadataMessage::Reject { piece }) => self.on_reject(now, conn, piece),
                    Ok(MetadataMessage::Request { piece }) => {
                        // We have nothing to give yet.
                        self.reply(now, conn, &MetadataMessage::Reject { piece });
                    }
                    Ok(MetadataMessage::Unknown { .. }) => {}
                    Err(_) => self.drop_peer(now, conn),
                }
            }
            PeerEvent::Closed(_) => self.drop_peer(now, conn),
            _ => {}
        }
    }

    fn reply(&mut self, now: Instant, conn: ConnId, m: &MetadataMessage) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let (Some(id), Some(s)) = (p.their_id, p.session.as_mut()) else {
            return;
        };
        let mut payload = Vec::new();
        m.encode(&mut payload);
        s.send_extended(now, id, payload.into());
    }

    fn on_data(&mut self, now: Instant, conn: ConnId, piece: u32, total: u64, data: Bytes) {
        let Some(size) = self.size else {
            return self.drop_peer(now, conn);
        };
        let i = piece as usize;
        let expected = METADATA_PIECE.min(size as usize - (i * METADATA_PIECE).min(size as usize));
        let requested =
            matches!(self.slots.get(i), Some(Slot::Requested { conn: c, .. }) if *c == conn);
        if !requested || total != size || data.len() != expected {
            // Not what we asked for: a broken or hostile peer.
            return self.drop_peer(now, conn);
        }
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        p.outstanding = p.outstanding.saturating_sub(1);
        self.list.good_piece(&p.addr, false);
        self.slots[i] = Slot::Have { from: p.addr };
        let start = i * METADATA_PIECE;
        self.buffer[start..start + data.len()].copy_from_slice(&data);
        if self.slots.iter().all(|s| matches!(s, Slot::Have { .. })) {
            self.assemble(now);
        }
    }

    fn on_reject(&mut self, now: Instant, conn: ConnId, piece: u32) {
        let i = piece as usize;
        if matches!(self.slots.get(i), Some(Slot::Requested { conn: c, .. }) if *c == conn) {
            self.slots[i] = Slot::Missing;
            if let Some(p) = self.peers.get_mut(&conn) {
                p.outstanding = p.outstanding.saturating_sub(1);
                p.resting_until = Some(now + REJECT_BACKOFF);
            }
        }
    }

    /// Every piece is in: check the whole against the info-hash.
    fn assemble(&mut self, now: Instant) {
        let hash: [u8; 20] = Sha1::digest(&self.buffer).into();
        if hash == self.info_hash.0 {
            let metadata = Bytes::from(std::mem::take(&mut self.buffer));
            self.done = Some(metadata.clone());
            self.slots.clear();
            self.events.push_back(FetchEvent::Done { metadata });
            return;
        }
        let mut sources: Vec<SocketAddr> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Have { from } => Some(*from),
                _ => None,
            })
            .collect();
        sources.sort();
        sources.dedup();
        if let [liar] = sources[..] {
            self.ban(now, liar);
        } else {
            self.single_source = true;
        }
        for s in &mut self.slots {
            *s = Slot::Missing;
        }
        // A size only liars claimed goes with them.
        if !self.peers.values().any(|p| p.size == self.size) {
            self.size = None;
        }
    }

    fn ban(&mut self, now: Instant, addr: SocketAddr) {
        self.list.ban(&addr);
        self.events.push_back(FetchEvent::BadMetadata { addr });
        let conns: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.addr == addr)
            .map(|(c, _)| *c)
            .collect();
        for c in conns {
            self.drop_peer(now, c);
        }
    }

    fn drop_peer(&mut self, now: Instant, conn: ConnId) {
        let Some(p) = self.peers.remove(&conn) else {
            return;
        };
        for s in &mut self.slots {
            if matches!(s, Slot::Requested { conn: c, .. } if *c == conn) {
                *s = Slot::Missing;
            }
        }
        self.list.disconnected(now, p.addr);
        self.out.push_back(TorrentOutput::Close { conn });
        self.connect_more(now);
    }

    /// Picks the size to assemble (the one most peers report) and sends
    /// requests for missing pieces to peers with room.
    fn request_more(&mut self, now: Instant) {
        if self.done.is_some() {
            return;
        }
        if self.size.is_none() {
            let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
            for p in self.peers.values().filter(|p| p.their_id.is_some()) {
                if let Some(s) = p.size {
                    *votes.entry(s).or_default() += 1;
                }
            }
            let Some((&size, _)) = votes
                .iter()
                .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
            else {
                return;
            };
            self.size = Some(size);
            self.buffer = vec![0; size as usize];
            self.slots = vec![Slot::Missing; metadata_piece_count(size) as usize];
        }
        let size = self.size;
        let mut askable: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.their_id.is_some()
                    && p.size == size
                    && p.session.as_ref().is_some_and(PeerSession::is_active)
                    && p.resting_until.is_none_or(|t| t <= now)
            })
            .map(|(c, _)| *c)
            .collect();
        if self.single_source {
            // The peer already providing keeps going; else the first.
            let current = self.slots.iter().find_map(|s| match s {
                Slot::Requested { conn, .. } => Some(*conn),
                _ => None,
            });
            askable = match current.or_else(|| askable.first().copied()) {
                Some(c) if askable.contains(&c) => vec![c],
                _ => Vec::new(),
            };
        }
        for conn in askable {
            loop {
                let room = self
                    .peers
                    .get(&conn)
                    .is_some_and(|p| p.outstanding < REQUESTS_PER_PEER);
                let Some(i) = self.slots.iter().position(|s| *s == Slot::Missing) else {
                    return;
                };
                if !room {
                    break;
                }
                self.slots[i] = Slot::Requested { conn, at: now };
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.outstanding += 1;
                }
                self.reply(now, conn, &MetadataMessage::Request { piece: i as u32 });
                self.flush(now, conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
    use crate::torrent::{StartMode, Torrent, TorrentInfo};

    /// A torrent with many files, so its info dictionary spans several
    /// 16 KiB metadata pieces.
    fn info(files: usize, salt: u8) -> TorrentInfo {
        let mut b = TorrentBuilder::multi_file("m");
        for i in 0..files {
            b.add_file(vec![format!("file-{salt}-{i:05}.bin")], 1000);
        }
        b.set_piece_length(16384);
        let total = files as u64 * 1000;
        let mut h = PieceHasher::new(16384);
        h.update(&vec![salt; total as usize]);
        let bytes = b.build(&h.finish()).unwrap();
        TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).unwrap())
    }

    struct Net {
        fetch: MetadataFetch,
        seeders: Vec<(SocketAddr, Torrent)>,
        /// fetch conn -> (seeder, its conn), and back.
        links: BTreeMap<ConnId, (usize, ConnId)>,
        back: BTreeMap<(usize, ConnId), ConnId>,
        events: Vec<FetchEvent>,
        now: Instant,
    }

    impl Net {
        fn new(seeders: Vec<TorrentInfo>, hash: InfoHash) -> Net {
            let fetch_config = FetchConfig::from_torrent(&TorrentConfig {
                peer_id: PeerId([9; 20]),
                ..TorrentConfig::default()
            });
            let fetch = MetadataFetch::new(
                Instant::ZERO,
                hash,
                Vec::new(),
                fetch_config,
                Seed::from_u64(1),
            );
            let seeders = seeders
                .into_iter()
                .enumerate()
                .map(|(i, info)| {
                    let n = info.layout.piece_count();
                    let config = TorrentConfig {
                        peer_id: PeerId([i as u8; 20]),
                        ..TorrentConfig::default()
                    };
                    let t = Torrent::new(
                        Instant::ZERO,
                        info,
                        config,
                        StartMode::Trusted(Bitfield::full(n)),
                        Seed::from_u64(10 + i as u64),
                    );
                    (SocketAddr::from(([10, 0, 0, i as u8 + 1], 6881)), t)
                })
                .collect();
            Net {
                fetch,
                seeders,
                links: BTreeMap::new(),
                back: BTreeMap::new(),
                events: Vec::new(),
                now: Instant::ZERO,
            }
        }

        fn quiet(&mut self) {
            let me = SocketAddr::from(([10, 0, 0, 100], 6881));
            let mut next_remote = 0u64;
            for _ in 0..10_000 {
                let mut any = false;
                while let Some(o) = self.fetch.poll_output() {
                    any = true;
                    match o {
                        TorrentOutput::Connect { conn, addr } => {
                            let j = self.seeders.iter().position(|(a, _)| *a == addr).unwrap();
                            next_remote += 1;
                            let remote = ConnId::new((1 << 30) + next_remote + conn.get());
                            if self.seeders[j].1.handle_incoming(self.now, remote, me) {
                                self.links.insert(conn, (j, remote));
                                self.back.insert((j, remote), conn);
                                self.fetch.handle_connected(self.now, conn);
                            } else {
                                self.fetch.handle_connect_failed(self.now, conn);
                            }
                        }
                        TorrentOutput::Send { conn, data } => {
                            if let Some(&(j, rc)) = self.links.get(&conn) {
                                self.seeders[j].1.handle_bytes(self.now, rc, &data);
                            }
                        }
                        TorrentOutput::Close { conn } => {
                            if let Some((j, rc)) = self.links.remove(&conn) {
                                self.back.remove(&(j, rc));
                                self.seeders[j].1.handle_closed(self.now, rc);
                            }
                        }
                        _ => {}
                    }
                }
                for j in 0..self.seeders.len() {
                    while let Some(o) = self.seeders[j].1.poll_output() {
                        any = true;
                        match o {
                            TorrentOutput::Send { conn, data } => {
                                if let Some(&fc) = self.back.get(&(j, conn)) {
                                    self.fetch.handle_chunk(self.now, fc, Bytes::from(data));
                                }
                            }
                            TorrentOutput::Close { conn } => {
                                if let Some(fc) = self.back.remove(&(j, conn)) {
                                    self.links.remove(&fc);
                                    self.fetch.handle_closed(self.now, fc);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                while let Some(e) = self.fetch.poll_event() {
                    self.events.push(e);
                }
                if !any {
                    return;
                }
            }
            panic!("no quiet");
        }

        /// Runs for up to `secs` virtual seconds, or until done.
        fn run(&mut self, secs: u64) -> Option<Bytes> {
            for _ in 0..secs {
                self.quiet();
                if let Some(m) = self.fetch.metadata() {
                    return Some(m.clone());
                }
                self.now += Duration::from_secs(1);
                self.fetch.handle_timeout(self.now);
                for (_, t) in &mut self.seeders {
                    t.handle_timeout(self.now);
                }
            }
            None
        }

        fn add_all(&mut self) {
            let addrs: Vec<SocketAddr> = self.seeders.iter().map(|(a, _)| *a).collect();
            self.fetch.add_peers(self.now, addrs, PeerSource::User);
        }
    }

    /// A seeder claiming `real`'s info-hash but serving `fake`'s metadata.
    fn liar(real: &TorrentInfo, fake: TorrentInfo) -> TorrentInfo {
        TorrentInfo {
            info_hash: real.info_hash,
            ..fake
        }
    }

    #[test]
    fn fetches_from_honest_seeders() {
        let real = info(1200, 1);
        let size = real.metadata.as_ref().unwrap().len();
        assert!(size > 2 * METADATA_PIECE, "spans several pieces: {size}");
        let mut net = Net::new(
            vec![real.clone(), real.clone(), real.clone()],
            real.info_hash,
        );
        net.add_all();
        let got = net.run(60).expect("metadata fetched");
        assert_eq!(&got, real.metadata.as_ref().unwrap());
        assert_eq!(InfoHash::of_info(&got), real.info_hash);
        assert!(!net
            .events
            .iter()
            .any(|e| matches!(e, FetchEvent::BadMetadata { .. })));
    }

    #[test]
    fn a_liar_is_found_and_the_fetch_completes() {
        let real = info(1200, 1);
        for fake in [info(1200, 2), info(500, 3)] {
            // The liar first, so it is asked too; same or another size.
            let mut net = Net::new(
                vec![liar(&real, fake.clone()), real.clone(), liar(&real, fake)],
                real.info_hash,
            );
            net.add_all();
            let got = net.run(300).expect("metadata fetched despite the liars");
            assert_eq!(&got, real.metadata.as_ref().unwrap());
            let banned: Vec<SocketAddr> = net
                .events
                .iter()
                .filter_map(|e| match e {
                    FetchEvent::BadMetadata { addr } => Some(*addr),
                    _ => None,
                })
                .collect();
            let honest = net.seeders[1].0;
            assert!(!banned.is_empty(), "a liar was caught");
            assert!(!banned.contains(&honest), "the honest seeder was banned");
        }
    }

    #[test]
    fn liars_alone_never_complete_and_are_banned() {
        let real = info(1200, 1);
        let mut net = Net::new(vec![liar(&real, info(1200, 2))], real.info_hash);
        net.add_all();
        assert!(net.run(60).is_none());
        assert!(net
            .events
            .iter()
            .any(|e| matches!(e, FetchEvent::BadMetadata { .. })));
        assert_eq!(net.fetch.peer_count(), 0);
    }
}
