//! Entry points for the fuzz targets, one per target (rustls's approach:
//! the logic lives in the library, `fuzz/fuzz_targets/*.rs` are one-liners).
//!
//! Each checks an oracle stronger than "did not panic": decoded values must
//! survive an encode → decode round trip unchanged. The same functions
//! replay the committed seeds and regressions under `cargo test`
//! (`tests/tests/fuzz_replay.rs`), so a crash once found stays fixed on
//! stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::bencode::{self, Decoder};
use crate::metainfo::{Magnet, Metainfo, PieceIndex};

/// bencode: lenient decode; if it succeeds, the canonical encoding must
/// decode strictly to the same value and re-encode to the same bytes; and
/// input that was canonical must round-trip byte for byte. The pull
/// [`bencode::Reader`] must accept exactly what the tree decoder accepts,
/// and refuse the rest with the same error.
pub fn bencode(data: &[u8]) {
    let walked = walk(data);
    let decoded = Decoder::new().decode(data);
    match (&walked, &decoded) {
        (Ok(()), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b, "reader and decoder disagree"),
        _ => panic!(
            "reader {walked:?} vs decoder {:?}",
            decoded.as_ref().map(|_| ())
        ),
    }
    let Ok(doc) = decoded else {
        return;
    };
    let encoded = doc.root.to_vec();
    let again = bencode::decode_strict(&encoded).expect("canonical encoding must decode strictly");
    assert_eq!(again.to_vec(), encoded, "encoding is not idempotent");
    if doc.key_order.is_canonical() {
        assert_eq!(encoded, data, "canonical input did not round-trip");
    }
    assert_eq!(doc.root.raw(), data, "root span must cover the input");
}

/// Walks `data` with the pull reader to its end.
fn walk(data: &[u8]) -> Result<(), crate::error::DecodeError> {
    let mut r = bencode::Reader::new(data);
    loop {
        r.next_token()?;
        if r.depth() == 0 {
            return r.finish();
        }
    }
}

/// metainfo: a torrent that parses must re-encode (canonically) to a
/// torrent that parses to the same content, and its layout must cover every
/// piece exactly.
pub fn metainfo(data: &[u8]) {
    let Ok(m) = Metainfo::from_bytes(data) else {
        return;
    };
    assert_eq!(m.info_hash, crate::InfoHash::of_info(m.info.raw()));
    let layout = m.info.layout();
    let mut covered = 0u64;
    for p in 0..layout.piece_count().min(4096) {
        let size = layout.piece_size(PieceIndex(p));
        let sum: u64 = layout.piece_slices(PieceIndex(p)).map(|s| s.length).sum();
        assert_eq!(sum, u64::from(size));
        covered += sum;
    }
    if layout.piece_count() <= 4096 {
        assert_eq!(covered, layout.total_length());
    }
    let reencoded = bencode::decode(data).unwrap().to_vec();
    let m2 = Metainfo::from_bytes_strict(&reencoded).expect("re-encoded torrent must parse");
    assert_eq!(m2.info.files(), m.info.files());
    assert_eq!(m2.info.name(), m.info.name());
    assert_eq!(m2.info.piece_length(), m.info.piece_length());
    assert_eq!(m2.info.piece_count(), m.info.piece_count());
    assert_eq!(m2.trackers(), m.trackers());
    if m.key_order.is_canonical() {
        assert_eq!(m2.info_hash, m.info_hash);
    }
}

/// magnet: a magnet that parses must format to a URI that parses back
/// equal.
pub fn magnet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Magnet::parse(text) else {
        return;
    };
    let formatted = m.to_string();
    let again = Magnet::parse(&formatted).expect("formatted magnet must parse");
    assert_eq!(again, m, "magnet did not round-trip through {formatted}");
}

/// handshake: a 68-byte handshake that decodes re-encodes to the same
/// bytes; `check_prefix` never refuses a prefix of a valid one.
pub fn handshake(data: &[u8]) {
    use crate::wire::Handshake;
    if let Ok(h) = Handshake::decode(data) {
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, data);
        for n in 0..out.len() {
            assert!(Handshake::check_prefix(&out[..n]).is_ok());
        }
    }
}

fn limits_from(data: &[u8]) -> (crate::wire::FrameLimits, &[u8]) {
    use crate::wire::FrameLimits;
    match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => (
            FrameLimits {
                piece_count: Some(u32::from(b >> 1) * 8 + u32::from(b & 7)),
                ..FrameLimits::default()
            },
            rest,
        ),
        Some((_, rest)) => (FrameLimits::default(), rest),
        None => (FrameLimits::default(), data),
    }
}

fn decode_all(
    limits: crate::wire::FrameLimits,
    chunks: &[&[u8]],
) -> (Vec<crate::wire::Frame>, Option<crate::DecodeError>) {
    let mut d = crate::wire::FrameDecoder::new(limits);
    let mut frames = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// wire_frame: every frame decoded from a stream re-encodes to exactly the
/// bytes it was decoded from.
pub fn wire_frame(data: &[u8]) {
    let (limits, input) = limits_from(data);
    let (frames, _) = decode_all(limits, &[input]);
    let mut out = Vec::new();
    for f in &frames {
        f.encode(&mut out);
    }
    assert_eq!(
        &input[..out.len()],
        &out[..],
        "frames did not re-encode to their bytes"
    );
}

/// wire_stream: the input split at fuzz-chosen points decodes to the same
/// frames (and the same error) as the whole input at once.
pub fn wire_stream(data: &[u8]) {
    let (limits, rest) = limits_from(data);
    let Some((&n_cuts, rest)) = rest.split_first() else {
        return;
    };
    let n_cuts = usize::from(n_cuts % 16).min(rest.len() / 2);
    let (cut_bytes, input) = rest.split_at(n_cuts);
    let mut cuts: Vec<usize> = cut_bytes
        .iter()
        .map(|&c| usize::from(c) * input.len() / 256)
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut at = 0;
    for c in cuts {
        chunks.push(&input[at..c]);
        at = c;
    }
    chunks.push(&input[at..]);
    let whole = decode_all(limits, &[input]);
    let split = decode_all(limits, &chunks);
    assert_eq!(whole.0, split.0, "chunking changed the frames");
    assert_eq!(
        whole.1.map(|e| e.kind()),
        split.1.map(|e| e.kind()),
        "chunking changed the error"
    );
}

#[derive(Debug, arbitrary::Arbitrary)]
enum SessionOp {
    Bytes(Vec<u8>),
    Frame(FrameOp),
    Advance(u16),
    Timeout,
    Request { piece: u8, block: u8 },
    Cancel { index: u8 },
    Choke,
    Unchoke,
    Interested(bool),
    Have(u8),
    Serve { index: u8 },
    Reject { index: u8 },
    Eof,
}

#[derive(Debug, arbitrary::Arbitrary)]
enum FrameOp {
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u8),
    Bitfield(Vec<u8>),
    Request(u8, u8, u16),
    Piece(u8, u8, u16),
    Cancel(u8, u8),
    Reject(u8, u8),
    HaveAll,
    HaveNone,
    AllowedFast(u8),
    Extended(u8, Vec<u8>),
    KeepAlive,
}

/// peer_session_ops: an arbitrary sequence of network input, commands and
/// clock steps into one `PeerSession` (after a valid handshake). It must
/// never panic, and these must hold after every step: outstanding requests
/// never exceed the configured cap; the timeout never lies in the past
/// before the clock moves; nothing comes out after `Closed`.
pub fn peer_session_ops(data: &[u8]) {
    use std::time::Duration;

    use bytes::Bytes;

    use crate::peer::{Direction, PeerEvent, PeerSession, SessionConfig};
    use crate::wire::{BlockRef, Frame, Handshake, PeerId, Reserved, BLOCK_SIZE};
    use crate::{Bitfield, InfoHash, Instant, PieceIndex};

    const PIECES: u32 = 40;
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = u.arbitrary::<Vec<SessionOp>>() else {
        return;
    };
    let hash = InfoHash([3; 20]);
    let reserved = Reserved::FAST.with(Reserved::EXTENSION).with(Reserved::DHT);
    let config = SessionConfig::default();
    let cap = config.max_outgoing_requests;
    let mut now = Instant::ZERO;
    let mut s = PeerSession::new(
        now,
        config,
        Direction::Incoming,
        hash,
        PeerId([1; 20]),
        reserved,
        PIECES,
        Some(std::net::IpAddr::from([127, 0, 0, 1])),
    );
    let mut hs = Vec::new();
    Handshake {
        reserved,
        info_hash: hash,
        peer_id: PeerId([2; 20]),
    }
    .encode(&mut hs);
    s.handle_bytes(now, &hs);
    let mut ours = Bitfield::new(PIECES);
    for p in (0..PIECES).step_by(2) {
        ours.set(PieceIndex(p));
    }
    let mut closed = false;
    let mut requests_in: Vec<BlockRef> = Vec::new();
    let mut sink = Vec::new();
    let block = |piece: u8, b: u8, len: u16| BlockRef {
        piece: PieceIndex(u32::from(piece)),
        offset: u32::from(b) * BLOCK_SIZE,
        length: u32::from(len),
    };
    for op in ops {
        match op {
            SessionOp::Bytes(b) => s.handle_bytes(now, &b),
            SessionOp::Frame(f) => {
                let frame = match f {
                    FrameOp::Choke => Frame::Choke,
                    FrameOp::Unchoke => Frame::Unchoke,
                    FrameOp::Interested => Frame::Interested,
                    FrameOp::NotInterested => Frame::NotInterested,
                    FrameOp::Have(p) => Frame::Have(PieceIndex(u32::from(p))),
                    FrameOp::Bitfield(b) => Frame::Bitfield(Bytes::from(b)),
                    FrameOp::Request(p, b, l) => Frame::Request(block(p, b, l)),
                    FrameOp::Piece(p, b, l) => Frame::Piece {
                        piece: PieceIndex(u32::from(p)),
                        offset: u32::from(b) * BLOCK_SIZE,
                        data: Bytes::from(vec![0u8; usize::from(l).min(BLOCK_SIZE as usize)]),
                    },
                    FrameOp::Cancel(p, b) => Frame::Cancel(block(p, b, BLOCK_SIZE as u16 / 2)),
                    FrameOp::Reject(p, b) => Frame::Reject(block(p, b, BLOCK_SIZE as u16 / 2)),
                    FrameOp::HaveAll => Frame::HaveAll,
                    FrameOp::HaveNone => Frame::HaveNone,
                    FrameOp::AllowedFast(p) => Frame::AllowedFast(PieceIndex(u32::from(p))),
                    FrameOp::Extended(id, p) => Frame::Extended {
                        id,
                        payload: Bytes::from(p),
                    },
                    FrameOp::KeepAlive => Frame::KeepAlive,
                };
                let mut bytes = Vec::new();
                frame.encode(&mut bytes);
                s.handle_bytes(now, &bytes);
            }
            SessionOp::Advance(ms) => now += Duration::from_millis(u64::from(ms) * 50),
            SessionOp::Timeout => s.handle_timeout(now),
            SessionOp::Request { piece, block: b } => {
                let room = s.request_room(now);
                if room > 0 {
                    s.request(
                        now,
                        &[block(piece % PIECES as u8, b % 4, BLOCK_SIZE as u16 / 2)],
                    );
                }
            }
            SessionOp::Cancel { index } => {
                let out: Vec<BlockRef> = s.outstanding().copied().collect();
                if !out.is_empty() {
                    s.cancel(now, out[usize::from(index) % out.len()]);
                }
            }
            SessionOp::Choke => s.choke(now),
            SessionOp::Unchoke => s.unchoke(now),
            SessionOp::Interested(i) => s.set_interested(now, i),
            SessionOp::Have(p) => s.have(now, PieceIndex(u32::from(p) % PIECES)),
            SessionOp::Serve { index } => {
                if !requests_in.is_empty() {
                    let b = requests_in.remove(usize::from(index) % requests_in.len());
                    s.send_block(now, b, &vec![7u8; b.length as usize]);
                }
            }
            SessionOp::Reject { index } => {
                if !requests_in.is_empty() {
                    let b = requests_in.remove(usize::from(index) % requests_in.len());
                    s.reject(now, b);
                }
            }
            SessionOp::Eof => s.handle_eof(),
        }
        while let Some(e) = s.poll_event() {
            assert!(!closed, "event after Closed: {e:?}");
            match e {
                PeerEvent::Connected { .. } => s.start(now, &ours, None),
                PeerEvent::Request(b) => requests_in.push(b),
                PeerEvent::Closed(_) => closed = true,
                _ => {}
            }
        }
        sink.clear();
        let _ = s.poll_transmit(&mut sink);
        assert!(s.outstanding().count() <= cap);
        if let Some(t) = s.poll_timeout() {
            assert!(!closed);
            let _ = t;
        }
    }
}

/// tracker_http_response: a body that parses re-encodes (compact and
/// dictionary forms) to one that parses to the same peers and counts.
pub fn tracker_http_response(data: &[u8]) {
    use crate::tracker::http;
    let _ = http::parse_scrape_response(data);
    let Ok(r) = http::parse_announce_response(data) else {
        return;
    };
    let mut peers = r.peers.clone();
    peers.sort();
    for compact in [true, false] {
        let again = http::parse_announce_response(&http::encode_announce_response(&r, compact))
            .expect("re-encoded response parses");
        let mut p = again.peers.clone();
        p.sort();
        assert_eq!(p, peers);
        assert_eq!(
            (again.interval, again.complete, again.incomplete),
            (r.interval, r.complete, r.incomplete)
        );
    }
}

/// tracker_http_request: a query the server accepts, written back as a
/// client URL, parses to the same request.
pub fn tracker_http_request(data: &[u8]) {
    use crate::tracker::http;
    let _ = http::parse_scrape_query(data);
    let Ok(a) = http::parse_announce_query(data) else {
        return;
    };
    let url = http::announce_url("http://127.0.0.1/announce", &a.request);
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let again = http::parse_announce_query(query.as_bytes()).expect("our own URL parses");
    assert_eq!(again.request.info_hash, a.request.info_hash);
    assert_eq!(again.request.peer_id, a.request.peer_id);
    assert_eq!(again.request.port, a.request.port);
    assert_eq!(again.request.event, a.request.event);
    assert_eq!(again.request.left, a.request.left);
}

/// tracker_udp_client: datagrams a tracker (or an attacker) could send, fed
/// to a client in every phase. Never panics; a datagram either advances the
/// exchange or is counted as ignored.
pub fn tracker_udp_client(data: &[u8]) {
    use crate::tracker::udp::{UdpRequest, UdpResponse, UdpTrackerClient};
    use crate::tracker::AnnounceRequest;
    use crate::wire::PeerId;
    use crate::{InfoHash, Instant, Seed};

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut c = UdpTrackerClient::new(mode & 1 == 1, Vec::new(), Seed::from_u64(u64::from(mode)));
    let now = Instant::ZERO;
    if mode & 2 == 0 {
        c.announce(
            now,
            AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 1),
        );
    } else {
        c.scrape(now, vec![InfoHash([1; 20]); usize::from(mode >> 2) + 1]);
    }
    // Optionally complete the connect so the datagrams hit the request phase.
    if mode & 4 == 4 {
        if let Some(p) = c.poll_transmit() {
            if let Ok(UdpRequest::Connect { tx }) = UdpRequest::decode(&p) {
                let mut answer = Vec::new();
                UdpResponse::Connect { tx, conn_id: 7 }.encode(&mut answer);
                c.handle_datagram(now, &answer);
            }
        }
    }
    for chunk in rest.split(|&b| b == 0xff) {
        let before = c.ignored();
        let busy = c.is_busy();
        c.handle_datagram(now, chunk);
        let advanced = c.poll_event().is_some() || c.poll_transmit().is_some();
        assert!(advanced || c.ignored() == before + 1 || !busy);
    }
}

/// tracker_udp_server: packets a client could send, into a server. Never
/// panics; every answer is a well-formed response.
pub fn tracker_udp_server(data: &[u8]) {
    use crate::tracker::server::{ServerConfig, TrackerServer};
    use crate::tracker::udp::{UdpRequest, UdpResponse};
    use crate::{Instant, Seed};

    let mut s = TrackerServer::new(ServerConfig::default(), Seed::from_u64(9));
    let from = std::net::SocketAddr::from(([127, 0, 0, 1], 6881));
    let now = Instant::ZERO;
    for packet in data.split(|&b| b == 0xfe) {
        if let Ok(req) = UdpRequest::decode(packet) {
            let mut out = Vec::new();
            req.encode(&mut out);
            assert_eq!(
                UdpRequest::decode(&out).as_ref(),
                Ok(&req),
                "request round trip"
            );
        }
        if let Some(answer) = s.handle_udp(now, from, packet) {
            UdpResponse::decode(&answer, false).expect("server answers decode");
        }
        // Also try with a valid connection id patched in.
        if packet.len() >= 16 {
            let mut connect = Vec::new();
            UdpRequest::Connect { tx: 1 }.encode(&mut connect);
            if let Some(a) = s.handle_udp(now, from, &connect) {
                if let Ok(UdpResponse::Connect { conn_id, .. }) = UdpResponse::decode(&a, false) {
                    let mut p = packet.to_vec();
                    p[..8].copy_from_slice(&conn_id.to_be_bytes());
                    if let Some(answer) = s.handle_udp(now, from, &p) {
                        UdpResponse::decode(&answer, false).expect("server answers decode");
                    }
                }
            }
        }
    }
}

/// krpc: a datagram that decodes re-encodes to one that decodes to the
/// same message, and that encoding is stable.
pub fn krpc(data: &[u8]) {
    use crate::krpc::Message;
    let Ok(m) = Message::decode(data) else {
        return;
    };
    let mut out = Vec::new();
    m.encode(&mut out);
    let again = Message::decode(&out).expect("our encoding decodes");
    assert_eq!(again, m, "krpc round trip");
    let mut out2 = Vec::new();
    again.encode(&mut out2);
    assert_eq!(out2, out, "krpc encoding is stable");
}

/// dht_datagram: arbitrary datagrams (from a few fixed sources) into a
/// running node with a lookup in flight, crawling. Never panics; the
/// routing table and the crawl stay within their bounds, the table never
/// holds our own id; every datagram the node sends decodes.
pub fn dht_datagram(data: &[u8]) {
    use crate::dht::routing::TableConfig;
    use crate::dht::{Dht, DhtConfig};
    use crate::krpc::{Message, NodeId};
    use crate::{InfoHash, Instant, Seed};

    let config = DhtConfig {
        table: TableConfig {
            allow_local: true,
            ..TableConfig::default()
        },
        ..DhtConfig::default()
    };
    let mut dht = Dht::new(Instant::ZERO, config, Seed::from_u64(5));
    let sources: Vec<std::net::SocketAddr> = (0..4u16)
        .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], 6000 + p)))
        .collect();
    dht.bootstrap(Instant::ZERO, &sources);
    dht.get_peers(Instant::ZERO, InfoHash([3; 20]));
    let crawl = crate::dht::crawler::CrawlConfig {
        max_nodes: 16,
        max_hashes: 16,
        ..Default::default()
    };
    dht.crawl(Instant::ZERO, crawl);
    let mut now = Instant::ZERO;
    for (i, chunk) in data.split(|&b| b == 0xfd).enumerate() {
        now += std::time::Duration::from_millis(300);
        dht.handle_datagram(now, sources[i % sources.len()], chunk);
        if i % 4 == 3 {
            dht.handle_timeout(now);
        }
        while let Some((_, bytes)) = dht.poll_transmit() {
            Message::decode(&bytes).expect("our datagrams decode");
        }
        while dht.poll_event().is_some() {}
        assert!(dht.table().len() <= 160 * 8);
        assert!(dht.table().get(&dht.id()).is_none());
        let stats = dht.crawl_stats().expect("crawling");
        assert!(stats.nodes_known <= 16 && stats.frontier <= 16);
        let _ = NodeId::default();
    }
}

/// ut_metadata: a payload that decodes re-encodes to one that decodes to
/// the same message (a data piece's bytes included), stably.
pub fn ut_metadata(data: &[u8]) {
    use crate::wire::MetadataMessage;
    let Ok(m) = MetadataMessage::decode(&bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut out = Vec::new();
    m.encode(&mut out);
    let again =
        MetadataMessage::decode(&bytes::Bytes::from(out.clone())).expect("our encoding decodes");
    assert_eq!(again, m, "ut_metadata round trip");
    let mut out2 = Vec::new();
    again.encode(&mut out2);
    assert_eq!(out2, out, "ut_metadata encoding is stable");
}

/// pex: a payload that decodes re-encodes (canonically) to one that
/// decodes to the same peers and flags, stably.
pub fn pex(data: &[u8]) {
    use crate::wire::PexMessage;
    let Ok(m) = PexMessage::decode(data) else {
        return;
    };
    assert!(m.added.len() <= 2 * crate::wire::MAX_PEX_PEERS);
    assert!(m.dropped.len() <= 2 * crate::wire::MAX_PEX_PEERS);
    let mut out = Vec::new();
    m.encode(&mut out);
    let again = PexMessage::decode(&out).expect("our encoding decodes");
    assert_eq!(again, m, "pex round trip");
    assert_eq!(
        bencode::decode_strict(&out).expect("canonical").to_vec(),
        out,
        "pex encoding is canonical"
    );
}

#[derive(Debug, arbitrary::Arbitrary)]
enum FetchOp {
    /// Raw bytes from a peer.
    Bytes { peer: u8, data: Vec<u8> },
    /// A well-formed extension handshake.
    ExtHandshake { peer: u8, size: u32, id: u8 },
    /// A ut_metadata message with chosen fields and filler data.
    Metadata {
        peer: u8,
        msg_type: u8,
        piece: u8,
        total: u32,
        len: u16,
        fill: u8,
    },
    /// A correct piece of the real metadata.
    Honest { peer: u8, piece: u8 },
    /// The clock moves.
    Advance(u16),
    /// A peer's connection closes.
    Close { peer: u8 },
}

/// metadata_fetch: three peers of a magnet link send whatever they like
/// (raw bytes, handshakes with any metadata size, ut_metadata messages
/// with any fields, or honest pieces) while the clock moves. The fetch
/// never panics, never allocates for a size over the cap, and if it says
/// it is done, the metadata hashes to the info-hash.
pub fn metadata_fetch(data: &[u8]) {
    use std::time::Duration;

    use bytes::Bytes;
    use sha1::{Digest, Sha1};

    use crate::handles::ConnId;
    use crate::torrent::fetch::{FetchConfig, MetadataFetch};
    use crate::torrent::peers::PeerSource;
    use crate::torrent::{TorrentConfig, TorrentOutput};
    use crate::wire::{
        ExtensionHandshake, Frame, Handshake, MetadataMessage, PeerId, Reserved, METADATA_PIECE,
    };
    use crate::{InfoHash, Instant, Seed};

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = u.arbitrary::<Vec<FetchOp>>() else {
        return;
    };
    // Three pieces of "metadata": the fetch checks only its SHA-1.
    let real: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let hash = InfoHash(Sha1::digest(&real).into());
    let config = FetchConfig::from_torrent(&TorrentConfig::default());
    let mut now = Instant::ZERO;
    let mut f = MetadataFetch::new(now, hash, Vec::new(), config, Seed::from_u64(3));
    let addrs: Vec<std::net::SocketAddr> = (0..3u8)
        .map(|i| std::net::SocketAddr::from(([10, 0, 0, i + 1], 6881)))
        .collect();
    f.add_peers(now, addrs.clone(), PeerSource::User);
    let mut conns: [Option<ConnId>; 3] = [None; 3];
    let reserved = Reserved::FAST.with(Reserved::EXTENSION);
    let frame = |fr: Frame| {
        let mut out = Vec::new();
        fr.encode(&mut out);
        Bytes::from(out)
    };
    let ext = |payload: Vec<u8>| Frame::Extended {
        id: 1,
        payload: Bytes::from(payload),
    };
    // Carry out connects (every peer answers with its handshake), forget
    // closed connections.
    let drain = |f: &mut MetadataFetch, conns: &mut [Option<ConnId>; 3], now: Instant| {
        for _ in 0..64 {
            let Some(o) = f.poll_output() else {
                break;
            };
            match o {
                TorrentOutput::Connect { conn, addr } => {
                    let Some(i) = addrs.iter().position(|a| *a == addr) else {
                        continue;
                    };
                    conns[i] = Some(conn);
                    f.handle_connected(now, conn);
                    let mut hs = Vec::new();
                    Handshake {
                        reserved,
                        info_hash: hash,
                        peer_id: PeerId([i as u8 + 1; 20]),
                    }
                    .encode(&mut hs);
                    f.handle_chunk(now, conn, Bytes::from(hs));
                }
                TorrentOutput::Close { conn } => {
                    for c in conns.iter_mut() {
                        if *c == Some(conn) {
                            *c = None;
                        }
                    }
                }
                _ => {}
            }
        }
        while f.poll_event().is_some() {}
    };
    drain(&mut f, &mut conns, now);
    for op in ops {
        let to = |peer: u8| conns[usize::from(peer % 3)];
        match op {
            FetchOp::Bytes { peer, data } => {
                if let Some(c) = to(peer) {
                    f.handle_chunk(now, c, Bytes::from(data));
                }
            }
            FetchOp::ExtHandshake { peer, size, id } => {
                if let Some(c) = to(peer) {
                    let mut p = Vec::new();
                    ExtensionHandshake {
                        messages: vec![("ut_metadata".into(), id)],
                        metadata_size: Some(u64::from(size)),
                        ..ExtensionHandshake::default()
                    }
                    .encode(&mut p);
                    f.handle_chunk(
                        now,
                        c,
                        frame(Frame::Extended {
                            id: 0,
                            payload: p.into(),
                        }),
                    );
                }
            }
            FetchOp::Metadata {
                peer,
                msg_type,
                piece,
                total,
                len,
                fill,
            } => {
                if let Some(c) = to(peer) {
                    let m = match msg_type % 3 {
                        0 => MetadataMessage::Request {
                            piece: piece.into(),
                        },
                        1 => MetadataMessage::Data {
                            piece: piece.into(),
                            total_size: u64::from(total),
                            data: Bytes::from(vec![fill; usize::from(len) % (METADATA_PIECE + 2)]),
                        },
                        _ => MetadataMessage::Reject {
                            piece: piece.into(),
                        },
                    };
                    let mut p = Vec::new();
                    m.encode(&mut p);
                    f.handle_chunk(now, c, frame(ext(p)));
                }
            }
            FetchOp::Honest { peer, piece } => {
                if let Some(c) = to(peer) {
                    let i = usize::from(piece % 3);
                    let start = i * METADATA_PIECE;
                    let end = (start + METADATA_PIECE).min(real.len());
                    let mut p = Vec::new();
                    MetadataMessage::Data {
                        piece: i as u32,
                        total_size: real.len() as u64,
                        data: Bytes::copy_from_slice(&real[start..end]),
                    }
                    .encode(&mut p);
                    f.handle_chunk(now, c, frame(ext(p)));
                }
            }
            FetchOp::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms) * 10);
                f.handle_timeout(now);
            }
            FetchOp::Close { peer } => {
                if let Some(c) = to(peer) {
                    f.handle_closed(now, c);
                }
            }
        }
        drain(&mut f, &mut conns, now);
        if let Some(m) = f.metadata() {
            assert_eq!(
                m.as_ref(),
                &real[..],
                "done with metadata that is not the real one"
            );
        }
        assert!(f.peer_count() <= 3);
    }
}
