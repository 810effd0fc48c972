//! The engine-routing target: which machine the engine hands each
//! incoming connection, chunk and datagram to, before and after a peer is
//! attached.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::dht::routing::TableConfig;
use crate::dht::DhtConfig;
use crate::engine::{
    DhtSettings, DiskOp, DiskResult, Engine, EngineConfig, Event, Output, RequestId, TcpAction,
};
use crate::handles::{ConnId, TorrentId};
use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use crate::torrent::{StartMode, TorrentEvent, TorrentInfo};
use crate::tracker::udp::{UdpRequest, UdpResponse};
use crate::wire::{Handshake, PeerId, Reserved};
use crate::{Bitfield, InfoHash, Instant, Seed};

#[derive(Debug, arbitrary::Arbitrary)]
enum RouteOp {
    /// A peer connects to our listen port.
    Incoming { from: u8 },
    /// A well-formed handshake (for torrent 0, 1 or an unknown one), in
    /// one chunk with `extra` bytes after it, on an open connection.
    Handshake {
        conn: u8,
        torrent: u8,
        extra: Vec<u8>,
    },
    /// Raw bytes on an open connection.
    Chunk { conn: u8, data: Vec<u8> },
    /// Raw bytes on a connection already closed (or never opened).
    Stale { conn: u8, data: Vec<u8> },
    /// The peer closes an open connection.
    Closed { conn: u8 },
    /// An outgoing connection we were asked to open succeeds or fails.
    Connect { conn: u8, ok: bool },
    /// Peers for a torrent (the user's, say), so it connects out.
    AddPeers { torrent: u8, count: u8 },
    /// A datagram from the DHT node we know, the UDP tracker, or a
    /// stranger.
    Udp { from: u8, data: Vec<u8> },
    /// The UDP tracker answers its latest request honestly.
    TrackerAnswer { peers: u8 },
    /// The HTTP tracker answers the oldest request with this body.
    Http { body: Vec<u8> },
    /// The clock moves and deadlines run.
    Advance(u16),
    /// The chunks one read handed over together, on an open connection.
    Chunks { conn: u8, parts: Vec<Vec<u8>> },
}

const DHT_NODE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9)),
    7100,
);
const UDP_TRACKER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)),
    6969,
);
const UDP_URL: &str = "udp://127.0.0.2:6969";
const HTTP_URL: &str = "http://127.0.0.3/announce";
const MAX_PENDING: usize = 4;
const MAX_PENDING_PER_IP: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    /// Accepted from our listen port.
    Incoming,
    /// We asked to open it; the driver has not answered yet.
    Connecting,
    /// Open, outgoing.
    Outgoing,
}

struct Model {
    engine: Engine,
    now: Instant,
    content: Vec<Vec<u8>>,
    hashes: Vec<InfoHash>,
    ids: Vec<TorrentId>,
    piece_length: u64,
    /// Connections open as far as the driver knows.
    open: BTreeMap<ConnId, Conn>,
    /// Connections closed, by either side.
    closed: BTreeSet<ConnId>,
    /// Incoming connections that have sent nothing yet (surely pending).
    silent: BTreeSet<ConnId>,
    /// Where each incoming connection came from.
    from: BTreeMap<ConnId, std::net::IpAddr>,
    /// The UDP tracker's requests not yet answered.
    tracker_requests: VecDeque<UdpRequest>,
    /// Datagrams reached the tracker client since its last reply.
    tracker_touched: bool,
    http: VecDeque<RequestId>,
}

fn torrent_info(data: &[u8], private: bool) -> TorrentInfo {
    let mut b = TorrentBuilder::single_file("r.bin", data.len() as u64);
    b.set_piece_length(16384)
        .add_tracker_tier(vec![UDP_URL.into()])
        .add_tracker_tier(vec![HTTP_URL.into()])
        .set_private(private);
    let mut h = PieceHasher::new(16384);
    h.update(data);
    let bytes = b.build(&h.finish()).expect("valid torrent");
    TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).expect("our torrent parses"))
}

impl Model {
    fn new() -> Model {
        let dht = DhtSettings {
            config: DhtConfig {
                table: TableConfig {
                    allow_local: true,
                    ..TableConfig::default()
                },
                ..DhtConfig::default()
            },
            nodes: vec![DHT_NODE],
            ..DhtSettings::default()
        };
        let config = EngineConfig {
            handshakes: crate::engine::HandshakeLimits {
                max_total: MAX_PENDING,
                max_per_ip: MAX_PENDING_PER_IP,
                ..crate::engine::HandshakeLimits::default()
            },
            dht: Some(dht),
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(config, Seed::from_u64(21));
        let content: Vec<Vec<u8>> = (0..2u32)
            .map(|t| (0..40_000u32).map(|i| (i * (7 + t) % 251) as u8).collect())
            .collect();
        let mut ids = Vec::new();
        let mut hashes = Vec::new();
        for (t, data) in content.iter().enumerate() {
            let info = torrent_info(data, t == 1);
            hashes.push(info.info_hash);
            // Torrent 0 seeds (it answers reads), torrent 1 downloads.
            let start = if t == 0 {
                StartMode::Trusted(Bitfield::full(3))
            } else {
                StartMode::Fresh
            };
            ids.push(
                engine
                    .add_torrent(Instant::ZERO, info, start)
                    .expect("new torrent"),
            );
        }
        Model {
            engine,
            now: Instant::ZERO,
            content,
            hashes,
            ids,
            piece_length: 16384,
            open: BTreeMap::new(),
            closed: BTreeSet::new(),
            silent: BTreeSet::new(),
            from: BTreeMap::new(),
            tracker_requests: VecDeque::new(),
            tracker_touched: false,
            http: VecDeque::new(),
        }
    }

    fn nth_open(&self, n: u8, want: impl Fn(Conn) -> bool) -> Option<ConnId> {
        let conns: Vec<ConnId> = self
            .open
            .iter()
            .filter(|(_, k)| want(**k))
            .map(|(c, _)| *c)
            .collect();
        (!conns.is_empty()).then(|| conns[usize::from(n) % conns.len()])
    }

    fn torrent_index(&self, id: TorrentId) -> usize {
        self.ids.iter().position(|t| *t == id).expect("our torrent")
    }

    /// Drains the engine to its timeout, carrying out disk jobs honestly
    /// and checking every output.
    fn drain(&mut self) {
        for _ in 0..20_000 {
            let o = self.engine.poll_output(self.now);
            match o {
                Output::Timeout(t) => {
                    assert!(t >= self.now, "a deadline in the past");
                    return;
                }
                Output::Tcp { conn, action } => self.tcp(conn, action),
                Output::Udp { to, payload } | Output::UdpProbe { to, payload } => {
                    assert!(!payload.is_empty(), "an empty datagram");
                    if to == UDP_TRACKER {
                        if let Ok(r) = UdpRequest::decode(&payload) {
                            self.tracker_requests.push_back(r);
                        }
                    }
                }
                Output::Disk { torrent, op } => self.disk(torrent, op),
                Output::Http { request, url, .. } => {
                    assert!(url.starts_with(HTTP_URL), "HTTP request to {url}");
                    self.http.push_back(request);
                }
                Output::Resolve { request, .. } => {
                    self.engine.handle_resolved(self.now, request, Vec::new());
                }
                Output::WebSeed { request, .. } => {
                    let refused = crate::webseed::WebSeedError::Status(404);
                    self.engine.handle_web_seed(self.now, request, Err(refused));
                }
                Output::Event(e) => self.event(e),
            }
        }
        panic!("poll_output never reached its timeout");
    }

    fn tcp(&mut self, conn: ConnId, action: TcpAction) {
        assert!(
            !self.closed.contains(&conn),
            "{action:?} on closed {conn:?}"
        );
        match action {
            TcpAction::Connect(_) => {
                assert!(!self.open.contains_key(&conn), "connect reuses {conn:?}");
                self.open.insert(conn, Conn::Connecting);
            }
            TcpAction::Send(data) => {
                assert!(!data.is_empty(), "an empty send");
                let state = self.open.get(&conn);
                assert!(
                    matches!(state, Some(Conn::Incoming | Conn::Outgoing)),
                    "send on {conn:?} ({state:?})"
                );
                // The socket takes it at once.
                self.engine.handle_tcp_sent(self.now, conn, data.len());
            }
            TcpAction::Close => {
                assert!(
                    self.open.remove(&conn).is_some(),
                    "close of unknown {conn:?}"
                );
                self.silent.remove(&conn);
                self.closed.insert(conn);
            }
        }
    }

    fn disk(&mut self, torrent: TorrentId, op: DiskOp) {
        let t = self.torrent_index(torrent);
        let result = match op {
            DiskOp::Read { conn, block, .. } => {
                assert!(self.open.contains_key(&conn), "read for {conn:?}, not open");
                let start = u64::from(block.piece.0) * self.piece_length + u64::from(block.offset);
                let end = start + u64::from(block.length);
                let data = self.content[t]
                    .get(start as usize..end as usize)
                    .map(<[u8]>::to_vec);
                assert!(data.is_some(), "read beyond the content: {block:?}");
                DiskResult::Read { conn, block, data }
            }
            DiskOp::Verify {
                first,
                pieces,
                blocks,
                ..
            } => {
                let verdicts = crate::engine::run_verdicts(&pieces, &blocks);
                DiskResult::Verified {
                    first,
                    written: verdicts.iter().all(|&ok| ok),
                    verdicts,
                }
            }
            DiskOp::Check { piece, .. } => DiskResult::Checked { piece, ok: false },
            DiskOp::Write {
                block,
                blocks,
                hasher,
                ..
            } => DiskResult::Written {
                block,
                ok: true,
                hash: crate::engine::write_hash(hasher, &blocks),
            },
            DiskOp::CreateEmpty { .. } => DiskResult::Created { ok: true },
        };
        self.engine.handle_disk(self.now, torrent, result);
    }

    fn event(&mut self, e: Event) {
        if let Event::Torrent(_, e) = e {
            match e {
                TorrentEvent::PeerConnected { conn, .. } => {
                    assert!(
                        self.open.contains_key(&conn),
                        "{conn:?} connected, not open"
                    );
                }
                TorrentEvent::TrackerReply { url, .. } if url == UDP_URL => {
                    assert!(
                        self.tracker_touched,
                        "a UDP tracker reply nobody sent (datagram misrouted)"
                    );
                    self.tracker_touched = false;
                }
                _ => {}
            }
        }
    }

    fn apply(&mut self, op: RouteOp) {
        let now = self.now;
        match op {
            RouteOp::Incoming { from } => {
                let addr = SocketAddr::from(([10, 1, 0, from % 16], 5000 + u16::from(from)));
                let from_ip = |c: &ConnId| self.from.get(c) == Some(&addr.ip());
                let silent = self.silent.iter().filter(|c| from_ip(c)).count();
                let open = self
                    .open
                    .iter()
                    .filter(|(c, k)| **k == Conn::Incoming && from_ip(c))
                    .count();
                match self.engine.handle_tcp_incoming(now, addr) {
                    Some(conn) => {
                        assert!(
                            silent < MAX_PENDING_PER_IP,
                            "accepted beyond the per-IP pending limit"
                        );
                        assert!(
                            self.engine.pending_handshakes() <= MAX_PENDING,
                            "more handshakes pending than the limit (an older one must make room)"
                        );
                        assert!(
                            !self.open.contains_key(&conn) && !self.closed.contains(&conn),
                            "incoming reuses {conn:?}"
                        );
                        self.open.insert(conn, Conn::Incoming);
                        self.silent.insert(conn);
                        self.from.insert(conn, addr.ip());
                    }
                    None => assert!(
                        open >= MAX_PENDING_PER_IP,
                        "refused under the per-IP pending limit"
                    ),
                }
            }
            RouteOp::Handshake {
                conn,
                torrent,
                extra,
            } => {
                let Some(c) = self.nth_open(conn, |k| k != Conn::Connecting) else {
                    return;
                };
                let info_hash = match torrent % 3 {
                    2 => InfoHash([0x77; 20]),
                    t => self.hashes[usize::from(t)],
                };
                let mut bytes = Vec::new();
                Handshake {
                    reserved: Reserved::FAST.with(Reserved::EXTENSION),
                    info_hash,
                    peer_id: PeerId([torrent; 20]),
                }
                .encode(&mut bytes);
                bytes.extend_from_slice(&extra);
                self.silent.remove(&c);
                self.engine.handle_tcp_chunk(now, c, Bytes::from(bytes));
            }
            RouteOp::Chunk { conn, data } => {
                let Some(c) = self.nth_open(conn, |k| k != Conn::Connecting) else {
                    return;
                };
                if !data.is_empty() {
                    self.silent.remove(&c);
                }
                self.engine.handle_tcp_chunk(now, c, Bytes::from(data));
            }
            RouteOp::Chunks { conn, parts } => {
                let Some(c) = self.nth_open(conn, |k| k != Conn::Connecting) else {
                    return;
                };
                if parts.iter().any(|p| !p.is_empty()) {
                    self.silent.remove(&c);
                }
                let parts = parts.into_iter().map(Bytes::from).collect();
                self.engine.handle_tcp_chunks(now, c, parts);
            }
            RouteOp::Stale { conn, data } => {
                let closed: Vec<ConnId> = self.closed.iter().copied().collect();
                let c = if closed.is_empty() {
                    ConnId::new(u64::from(conn) << 50)
                } else {
                    closed[usize::from(conn) % closed.len()]
                };
                if self.open.contains_key(&c) {
                    return;
                }
                self.engine.handle_tcp_chunk(now, c, Bytes::from(data));
                let o = self.engine.poll_output(now);
                if let Output::Tcp { conn, .. } = &o {
                    assert_ne!(*conn, c, "output for a closed connection");
                }
                // Whatever came out is still checked.
                match o {
                    Output::Timeout(_) => {}
                    Output::Tcp { conn, action } => self.tcp(conn, action),
                    Output::Disk { torrent, op } => self.disk(torrent, op),
                    Output::Event(e) => self.event(e),
                    Output::Http { request, .. } => self.http.push_back(request),
                    Output::Resolve { request, .. } => {
                        self.engine.handle_resolved(now, request, Vec::new())
                    }
                    Output::WebSeed { request, .. } => {
                        let refused = crate::webseed::WebSeedError::Status(404);
                        self.engine.handle_web_seed(now, request, Err(refused));
                    }
                    Output::Udp { to, payload } | Output::UdpProbe { to, payload } => {
                        if to == UDP_TRACKER {
                            if let Ok(r) = UdpRequest::decode(&payload) {
                                self.tracker_requests.push_back(r);
                            }
                        }
                    }
                }
            }
            RouteOp::Closed { conn } => {
                let Some(c) = self.nth_open(conn, |k| k != Conn::Connecting) else {
                    return;
                };
                self.open.remove(&c);
                self.silent.remove(&c);
                self.closed.insert(c);
                self.engine.handle_tcp_closed(now, c);
            }
            RouteOp::Connect { conn, ok } => {
                let Some(c) = self.nth_open(conn, |k| k == Conn::Connecting) else {
                    return;
                };
                if ok {
                    self.open.insert(c, Conn::Outgoing);
                    self.engine.handle_tcp_connected(now, c);
                } else {
                    self.open.remove(&c);
                    self.closed.insert(c);
                    self.engine.handle_tcp_failed(now, c);
                }
            }
            RouteOp::AddPeers { torrent, count } => {
                let id = self.ids[usize::from(torrent % 2)];
                let peers = (0..count % 8)
                    .map(|i| SocketAddr::from(([10, 2, torrent % 4, i], 6881)))
                    .collect();
                self.engine.add_peers(now, id, peers);
            }
            RouteOp::Udp { from, data } => {
                let from = match from % 4 {
                    0 => DHT_NODE,
                    1 => UDP_TRACKER,
                    _ => SocketAddr::from(([10, 3, 0, from], 7000)),
                };
                if from == UDP_TRACKER {
                    self.tracker_touched = true;
                }
                self.engine.handle_udp(now, from, &data);
            }
            RouteOp::TrackerAnswer { peers } => {
                let Some(request) = self.tracker_requests.pop_back() else {
                    return;
                };
                let response = match request {
                    UdpRequest::Connect { tx } => UdpResponse::Connect { tx, conn_id: 99 },
                    UdpRequest::Announce { tx, .. } => UdpResponse::Announce {
                        tx,
                        interval: 600,
                        leechers: 1,
                        seeders: 1,
                        peers: (0..peers % 8)
                            .map(|i| SocketAddr::from(([10, 4, 0, i], 6881)))
                            .collect(),
                    },
                    UdpRequest::Scrape { tx, .. } => UdpResponse::Scrape {
                        tx,
                        counts: Vec::new(),
                    },
                };
                let mut bytes = Vec::new();
                response.encode(&mut bytes);
                self.tracker_touched = true;
                self.engine.handle_udp(now, UDP_TRACKER, &bytes);
            }
            RouteOp::Http { body } => {
                if let Some(request) = self.http.pop_front() {
                    self.engine.handle_http(now, request, Ok(body));
                }
            }
            RouteOp::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(ms) * 20);
                self.engine.handle_timeout(self.now);
            }
        }
        self.drain();
    }
}

/// engine_routing: an engine with a seeding torrent, a downloading private
/// one, a DHT node and UDP and HTTP trackers, under arbitrary incoming
/// connections, handshakes for known and unknown torrents, raw, batched
/// and late chunks, closes, connect results, datagrams from the DHT node, the
/// tracker and strangers, honest tracker answers, HTTP bodies and clock
/// steps, every output carried out (disk jobs honestly). After every
/// step: every TCP action names a connection that is open (a connect a
/// fresh one), nothing names a closed one, sends wait for the connect,
/// reads are for open connections and within the content; incoming
/// connections are refused only at the per-IP pending limit (counted from
/// the silent ones up, the open ones down) and never more than the
/// pending limit wait (a newcomer evicts an older one); a UDP tracker
/// reply follows
/// only datagrams from the tracker; deadlines never lie in the past and
/// draining always reaches one.
pub fn engine_routing(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = u.arbitrary::<Vec<RouteOp>>() else {
        return;
    };
    let mut m = Model::new();
    m.drain();
    for op in ops {
        m.apply(op);
    }
}
