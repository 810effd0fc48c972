//! Entry points for the fuzz targets of the driver side (behind the
//! private `fuzzing` feature, as the core's `bittide_core::fuzzing`): the
//! loaders and front ends that read outside bytes outside the core.
//!
//! - [`resume`]: resume data as read from the state folder;
//! - [`tracker_front`]: the tracker server's HTTP front end (head reading,
//!   routing, answering) and UDP loop over one server;
//! - [`units`]: the command line's size, rate, duration and hash parsers;
//! - [`receive_buffer`]: a connection's receive buffer under a hostile
//!   peer's bytes, read in any sizes.
//!
//! Oracles, not just "does not panic": what a loader accepts re-saves to
//! bytes that load equal; every HTTP answer is a well-formed response
//! whose body is bencoded; parsers agree with their formatters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::bencode;
use bittide_core::tracker::http::{announce_url, parse_announce_response, scrape_request_url};
use bittide_core::tracker::server::{ServerConfig, TrackerServer};
use bittide_core::tracker::udp::{UdpRequest, UdpResponse};
use bittide_core::tracker::{AnnounceEvent, AnnounceRequest};
use bittide_core::wire::PeerId;
use bittide_core::{InfoHash, Instant, Seed};

use crate::tracker_server::{push_head, respond, HeadState, MAX_HEAD};

/// The download folder the `resume` target's files are for.
pub const RESUME_FOLDER: &[u8] = b"/downloads";

/// resume: the first byte picks the number of files (0-3) and the piece
/// count, then 16 bytes per file give its (length, mtime) as the disk
/// has it now (length `u64::MAX`: missing); the rest is the resume file.
/// What loads has the torrent's piece count and at most `MAX_PEERS`
/// usable IPv4 peers, saves to bytes that load equal, and never loads for
/// another torrent, another download folder, or once a file changed.
pub fn resume(data: &[u8]) {
    use crate::resume::{encode, parse, MAX_PEERS};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let files = usize::from(mode % 4);
    let piece_count = u32::from(mode >> 2) * 5;
    if rest.len() < files * 16 {
        return;
    }
    let (stat_bytes, file) = rest.split_at(files * 16);
    let mut stats: Vec<Option<(u64, i64)>> = stat_bytes
        .chunks_exact(16)
        .map(|c| {
            let len = u64::from_be_bytes(c[..8].try_into().unwrap());
            let mtime = i64::from_be_bytes(c[8..].try_into().unwrap());
            (len != u64::MAX).then_some((len, mtime))
        })
        .collect();
    let hash = InfoHash([0xab; 20]);
    let Some(r) = parse(file, &hash, RESUME_FOLDER, piece_count, &stats) else {
        return;
    };
    assert_eq!(r.pieces.len(), piece_count);
    assert!(r.peers.len() <= MAX_PEERS, "{} peers loaded", r.peers.len());
    for p in &r.peers {
        assert!(p.is_ipv4() && p.port() != 0, "loaded peer {p}");
    }
    let saved = encode(&hash, RESUME_FOLDER, &r.pieces, &r.peers, &stats);
    assert_eq!(
        parse(&saved, &hash, RESUME_FOLDER, piece_count, &stats).as_ref(),
        Some(&r),
        "resume data did not re-save equal"
    );
    assert!(
        parse(
            file,
            &InfoHash([0xac; 20]),
            RESUME_FOLDER,
            piece_count,
            &stats
        )
        .is_none(),
        "loaded for another torrent"
    );
    assert!(
        parse(file, &hash, b"/elsewhere", piece_count, &stats).is_none(),
        "loaded for another download folder"
    );
    if let Some(first) = stats.first_mut() {
        *first = match *first {
            Some((len, mtime)) => Some((len, mtime.wrapping_add(1))),
            None => Some((0, 0)),
        };
        assert!(
            parse(file, &hash, RESUME_FOLDER, piece_count, &stats).is_none(),
            "trusted after a file changed"
        );
    }
}

#[derive(Debug, arbitrary::Arbitrary)]
enum FrontOp {
    /// A connection from `client` sending these chunks, then waiting.
    Http { client: u8, chunks: Vec<Vec<u8>> },
    /// A well-formed announce over HTTP.
    Announce {
        client: u8,
        hash: u8,
        port: u16,
        left: u32,
        event: u8,
    },
    /// A well-formed scrape over HTTP.
    Scrape { hashes: Vec<u8> },
    /// A datagram from `client`.
    Udp { client: u8, datagram: Vec<u8> },
    /// A datagram from `client` after a completed connect, its first
    /// eight bytes replaced by the connection id.
    Connected { client: u8, datagram: Vec<u8> },
    /// The clock moves by this many seconds and idle peers expire.
    Advance(u16),
}

fn client_addr(client: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, client % 8, 1], 40_000 + u16::from(client % 3)))
}

fn hash_of(h: u8) -> InfoHash {
    InfoHash([h % 4; 20])
}

/// Reads `chunks` as one connection would and answers; checks the head
/// limit and the response's form. Returns the status and body, `None` if
/// the head never completed (the connection would time out unanswered).
fn http_exchange(
    server: &mut TrackerServer,
    now: Instant,
    remote: SocketAddr,
    chunks: &[&[u8]],
) -> Option<(u16, Vec<u8>)> {
    let mut head = Vec::new();
    let mut state = HeadState::Partial;
    for chunk in chunks {
        state = push_head(&mut head, chunk);
        assert!(head.len() <= MAX_HEAD, "head grew to {}", head.len());
        if state != HeadState::Partial {
            break;
        }
    }
    if state == HeadState::Partial {
        return None;
    }
    let response = respond(server, now, remote, &head, state);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(at)) = parsed.parse(&response) else {
        panic!(
            "malformed response {:?}",
            String::from_utf8_lossy(&response)
        );
    };
    let code = parsed.code.expect("status code");
    let length: usize = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
        .expect("content-length");
    let body = &response[at..];
    assert_eq!(length, body.len(), "content-length disagrees with the body");
    let root = bencode::decode_strict(body).expect("bodies are canonical bencode");
    let dict = root.as_dict().expect("bodies are dictionaries");
    match code {
        200 => {}
        400 | 404 | 431 => assert!(dict.get(b"failure reason").is_some()),
        other => panic!("status {other}"),
    }
    assert!(
        (code == 431) == (state == HeadState::TooLong),
        "431 exactly for overlong heads"
    );
    Some((code, body.to_vec()))
}

fn get(path_and_query: &str) -> Vec<u8> {
    format!("GET {path_and_query} HTTP/1.1\r\nHost: tracker\r\n\r\n").into_bytes()
}

/// tracker_front: one tracker server behind its HTTP front end and its UDP
/// loop, under raw HTTP chunks, well-formed announces and scrapes, raw and
/// connected datagrams, and clock steps. The head never grows past
/// `MAX_HEAD`; every answer is a well-formed HTTP response whose
/// Content-Length is its body's, a canonical bencoded dictionary (a
/// `failure reason` with any error status); well-formed announces get a
/// peer list and show up in a scrape at once; every UDP answer decodes
/// and carries the request's transaction id.
pub fn tracker_front(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = u.arbitrary::<Vec<FrontOp>>() else {
        return;
    };
    let config = ServerConfig {
        interval: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let mut server = TrackerServer::new(config, Seed::from_u64(12));
    let mut now = Instant::ZERO;
    for op in ops {
        match op {
            FrontOp::Http { client, chunks } => {
                let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
                let _ = http_exchange(&mut server, now, client_addr(client), &chunks);
            }
            FrontOp::Announce {
                client,
                hash,
                port,
                left,
                event,
            } => {
                let port = port.max(1);
                let mut req = AnnounceRequest::new(hash_of(hash), PeerId([client; 20]), port);
                req.left = u64::from(left);
                req.event = match event % 4 {
                    0 => AnnounceEvent::None,
                    1 => AnnounceEvent::Started,
                    2 => AnnounceEvent::Completed,
                    _ => AnnounceEvent::Stopped,
                };
                let url = announce_url("http://tracker/announce", &req);
                let path = url.strip_prefix("http://tracker").expect("our URL");
                let (code, body) =
                    http_exchange(&mut server, now, client_addr(client), &[&get(path)])
                        .expect("a whole head is answered");
                assert_eq!(code, 200);
                let answer = parse_announce_response(&body).expect("announce answered");
                assert!(answer.interval > 0);
                if req.event != AnnounceEvent::Stopped {
                    let url = scrape_request_url("http://tracker/scrape", &[req.info_hash]);
                    let path = url.strip_prefix("http://tracker").expect("our URL");
                    let (code, body) =
                        http_exchange(&mut server, now, client_addr(client), &[&get(path)])
                            .expect("a whole head is answered");
                    assert_eq!(code, 200);
                    let entries = bittide_core::tracker::http::parse_scrape_response(&body)
                        .expect("scrape answered");
                    let e = entries
                        .iter()
                        .find(|e| e.info_hash == req.info_hash)
                        .expect("the announced torrent is scraped");
                    assert!(e.complete + e.incomplete >= 1, "announced peer not counted");
                }
            }
            FrontOp::Scrape { hashes } => {
                let hashes: Vec<InfoHash> = hashes.iter().map(|&h| hash_of(h)).collect();
                let url = scrape_request_url("http://tracker/scrape", &hashes);
                let path = url.strip_prefix("http://tracker").expect("our URL");
                let (code, _) = http_exchange(&mut server, now, client_addr(0), &[&get(path)])
                    .expect("a whole head is answered");
                assert_eq!(code, 200);
            }
            FrontOp::Udp { client, datagram } => {
                udp_exchange(&mut server, now, client_addr(client), &datagram);
            }
            FrontOp::Connected {
                client,
                mut datagram,
            } => {
                let from = client_addr(client);
                let mut connect = Vec::new();
                UdpRequest::Connect { tx: 7 }.encode(&mut connect);
                let answer = server
                    .handle_udp(now, from, &connect)
                    .expect("connect answered");
                let Ok(UdpResponse::Connect { tx: 7, conn_id }) =
                    UdpResponse::decode(&answer, false)
                else {
                    panic!("connect answered with {answer:?}");
                };
                if datagram.len() >= 8 {
                    datagram[..8].copy_from_slice(&conn_id.to_be_bytes());
                }
                udp_exchange(&mut server, now, from, &datagram);
            }
            FrontOp::Advance(secs) => {
                now += Duration::from_secs(u64::from(secs));
                server.handle_timeout(now);
            }
        }
    }
}

/// One datagram through the UDP loop: its answer, if any, decodes and
/// answers the request's transaction.
fn udp_exchange(server: &mut TrackerServer, now: Instant, from: SocketAddr, datagram: &[u8]) {
    let Some(answer) = server.handle_udp(now, from, datagram) else {
        return;
    };
    let response = UdpResponse::decode(&answer, false).expect("server answers decode");
    let request = UdpRequest::decode(datagram).expect("only requests are answered");
    let tx = |r: &UdpRequest| match r {
        UdpRequest::Connect { tx } | UdpRequest::Announce { tx, .. } => *tx,
        UdpRequest::Scrape { tx, .. } => *tx,
    };
    let answered = match &response {
        UdpResponse::Connect { tx, .. }
        | UdpResponse::Announce { tx, .. }
        | UdpResponse::Scrape { tx, .. }
        | UdpResponse::Error { tx, .. } => *tx,
    };
    assert_eq!(answered, tx(&request), "answer to another transaction");
}

/// units: the input as text through every command-line parser. A size is
/// also a valid rate of the same value; every value parsed formats back
/// (as plain digits, seconds, or `1h30m`) to text that parses to the same
/// value; an info-hash formats to the lowercase of what was typed; `human` of
/// any byte count reads back within 5 %.
pub fn units(data: &[u8]) {
    use crate::units::{
        format_duration, human, parse_duration, parse_hash, parse_rate, parse_size,
    };
    if let Some(n) = data.first_chunk::<8>() {
        let n = u64::from_le_bytes(*n);
        let text = human(n);
        let (value, unit) = text.split_once(' ').expect("value and unit");
        let value: f64 = value.parse().expect("a number");
        let scale = match unit {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            other => panic!("unit {other}"),
        };
        let back = value * scale;
        assert!(
            (back - n as f64).abs() <= n as f64 * 0.05 + 0.5,
            "human({n}) = {text}"
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(size) = parse_size(text) {
        assert_eq!(parse_size(&size.to_string()), Ok(size));
        assert_eq!(parse_rate(text), Ok(u64::from(size)), "a size is a rate");
    }
    if let Ok(rate) = parse_rate(text) {
        assert_eq!(parse_rate(&rate.to_string()), Ok(rate));
        let t = text.trim();
        let unit: u64 = match t.as_bytes().last() {
            Some(b'k' | b'K') => 1 << 10,
            Some(b'm' | b'M') => 1 << 20,
            Some(b'g' | b'G') => 1 << 30,
            _ => 1,
        };
        if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited") {
            assert_eq!(rate, 0, "`{t}` is no limit");
        } else {
            assert_eq!(rate % unit, 0, "`{t}` is not a whole number of its unit");
        }
    }
    if let Ok(d) = parse_duration(text) {
        assert_eq!(d.subsec_nanos(), 0);
        assert_eq!(parse_duration(&d.as_secs().to_string()), Ok(d));
        assert_eq!(parse_duration(&format!("{}s", d.as_secs())), Ok(d));
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
    if let Ok(h) = parse_hash(text) {
        assert_eq!(h.to_string(), text.to_ascii_lowercase());
        assert_eq!(parse_hash(&h.to_string()), Ok(h));
    }
}

/// A simulated tracker socket on a virtual clock: scripted datagrams
/// arrive after their delays; an empty one stands for the honest answer
/// to the latest request.
struct ScriptPort {
    now: Instant,
    script: std::collections::VecDeque<(Duration, Vec<u8>)>,
    sent: Vec<Vec<u8>>,
    delivered: usize,
    waits: usize,
}

impl ScriptPort {
    fn honest_answer(&self) -> Vec<u8> {
        let Some(Ok(request)) = self.sent.last().map(|p| UdpRequest::decode(p)) else {
            return Vec::new();
        };
        let response = match request {
            UdpRequest::Connect { tx } => UdpResponse::Connect { tx, conn_id: 5 },
            UdpRequest::Announce { tx, .. } => UdpResponse::Announce {
                tx,
                interval: 900,
                leechers: 2,
                seeders: 3,
                peers: vec![SocketAddr::from(([10, 0, 0, 1], 6881))],
            },
            UdpRequest::Scrape { tx, hashes, .. } => UdpResponse::Scrape {
                tx,
                counts: hashes.iter().map(|_| (1, 2, 3)).collect(),
            },
        };
        let mut out = Vec::new();
        response.encode(&mut out);
        out
    }
}

impl crate::tracker::UdpPort for ScriptPort {
    fn now(&self) -> Instant {
        self.now
    }

    fn send(&mut self, packet: &[u8]) {
        assert!(
            UdpRequest::decode(packet).is_ok(),
            "the client sent a request that does not decode"
        );
        self.sent.push(packet.to_vec());
    }

    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> crate::tracker::Received {
        use crate::tracker::Received;
        self.waits += 1;
        match self.script.front() {
            Some((delay, _)) if *delay <= wait => {
                let (delay, mut datagram) = self.script.pop_front().expect("front exists");
                self.now += delay;
                if datagram.is_empty() {
                    datagram = self.honest_answer();
                }
                let n = datagram.len().min(buf.len());
                buf[..n].copy_from_slice(&datagram[..n]);
                self.delivered += 1;
                Received::Datagram(n)
            }
            Some((delay, _)) => {
                let left = *delay - wait;
                if let Some(front) = self.script.front_mut() {
                    front.0 = left;
                }
                self.now += wait;
                Received::TimedOut
            }
            None => {
                self.now += wait;
                Received::TimedOut
            }
        }
    }
}

/// tracker_client: the driver's side of talking to a tracker. The first
/// line is a tracker URL: a `udp://` one splits into a non-empty authority
/// and URL data that put back together give the URL. The rest (a mode
/// byte, then datagrams each after a delay byte, split at 0xff; an empty
/// one is the honest answer to the latest request) is what the socket
/// receives while the driver's UDP loop runs an announce or a scrape on a
/// virtual clock. The loop sends only requests that decode, ends by its
/// deadline (never waiting without the clock moving), ends with the
/// result of the kind asked for, and only after a datagram arrived.
pub fn tracker_client(data: &[u8]) {
    use bittide_core::tracker::udp::{UdpJob, UdpTrackerClient, UdpTrackerEvent};
    use bittide_core::tracker::TrackerUrl;

    use crate::tracker::exchange;

    let (url, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut url_data = Vec::new();
    if let Ok(url) = std::str::from_utf8(url) {
        match TrackerUrl::parse(url) {
            Ok(TrackerUrl::Udp {
                host,
                port,
                url_data: path,
            }) => {
                assert!(!host.is_empty() && !host.contains(['/', '?']));
                assert!(host.ends_with(&format!(":{port}")) && port != 0);
                assert!(path.is_empty() || path[0] == b'/' || path[0] == b'?');
                let path = std::str::from_utf8(&path).expect("a slice of the URL");
                assert_eq!(
                    format!("{host}{path}"),
                    url[url.len() - host.len() - path.len()..]
                );
                url_data = path.as_bytes().to_vec();
            }
            Ok(TrackerUrl::Http(u)) => assert_eq!(u, url),
            Err(_) => {}
        }
    }
    let Some((&mode, rest)) = rest.split_first() else {
        return;
    };
    let script = rest
        .split(|&b| b == 0xff)
        .filter_map(|d| d.split_first())
        .map(|(&delay, d)| (Duration::from_millis(u64::from(delay) * 100), d.to_vec()))
        .collect();
    let tracker = std::net::SocketAddr::from(([127, 0, 0, 1], 6969));
    let mut client = UdpTrackerClient::new(tracker, Seed::from_u64(u64::from(mode)));
    const JOB: UdpJob = UdpJob(1);
    let start = Instant::ZERO;
    let scraping = mode & 1 == 1;
    if scraping {
        client.scrape(
            start,
            JOB,
            vec![InfoHash([1; 20]); usize::from(mode >> 1) % 80 + 1],
        );
    } else {
        let request = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 1);
        client.announce(start, JOB, request, &url_data);
    }
    let mut port = ScriptPort {
        now: start,
        script,
        sent: Vec::new(),
        delivered: 0,
        waits: 0,
    };
    let end = start + Duration::from_secs(60);
    let result = exchange(&mut client, &mut port, end);
    assert!(port.waits <= 60_000 + port.delivered, "the loop spun");
    match result {
        Err(bittide_core::tracker::TrackerError::TimedOut) => {
            assert!(port.now >= end, "timed out early")
        }
        Err(_) => assert!(port.delivered > 0, "failed with no answer"),
        Ok(UdpTrackerEvent::Announced(..)) => {
            assert!(
                !scraping && port.delivered > 0,
                "announced without an answer"
            )
        }
        Ok(UdpTrackerEvent::Scraped(..)) => {
            assert!(scraping && port.delivered > 0, "scraped without an answer")
        }
        Ok(UdpTrackerEvent::Failed(..)) => {}
    }
    assert!(
        port.now <= end + Duration::from_millis(1),
        "waited past its deadline"
    );
}

/// state_files: a daemon's state-folder files. The first byte picks the
/// `settings` (even) or `session` (odd) decoder; the rest is the file.
/// Decoding never panics; what decodes encodes to bytes that decode
/// equal; no more than `MAX_PEERS` peers load.
pub fn state_files(data: &[u8]) {
    use crate::session::state::{SessionFile, TorrentSettings};
    let Some((&which, file)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        if let Some(s) = TorrentSettings::decode(file) {
            assert!(s.peers.len() <= crate::resume::MAX_PEERS);
            assert_eq!(TorrentSettings::decode(&s.encode()), Some(s));
        }
    } else if let Some(f) = SessionFile::decode(file) {
        assert_eq!(SessionFile::decode(&f.encode()), Some(f));
    }
}

/// receive_buffer: the first byte says whether a plain handshake comes
/// first (bit 0: the frames are followed) and how many of the next bytes
/// are read sizes (bits 1-4, one to sixteen); a read size of 0 is a read
/// that would block (the buffer plans again). The rest is the stream a
/// peer sends, read in those sizes over and over. After every read: the
/// bytes handed over are the stream's, in order, none lost or repeated; at
/// most one `piece` message's worth is held back; and a read always has
/// room (a read into nothing would look like the end of the stream).
pub fn receive_buffer(data: &[u8]) {
    use crate::receive::ReceiveBuffer;
    use bittide_core::wire::{Handshake, Reserved, PIECE_FRAME_LEN};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from((mode >> 1) & 0x0f) + 1;
    if rest.len() < count {
        return;
    }
    let (sizes, body) = rest.split_at(count);
    if sizes.iter().all(|&s| s == 0) {
        return;
    }
    let mut stream = Vec::new();
    if mode & 1 == 1 {
        Handshake {
            reserved: Reserved::default(),
            info_hash: InfoHash([7; 20]),
            peer_id: PeerId([1; 20]),
        }
        .encode(&mut stream);
    }
    stream.extend_from_slice(body);
    let mut rx = ReceiveBuffer::new();
    // Bytes read so far, and handed over so far.
    let (mut at, mut handed) = (0, 0);
    for &size in sizes.iter().cycle() {
        if at == stream.len() {
            break;
        }
        let room: usize = rx.regions().iter().map(|r| r.len()).sum();
        assert!(room > 0, "a read with no room at {at}");
        if size == 0 {
            continue;
        }
        // Sizes up to about five full piece messages.
        let max = usize::from(size) * 331;
        let (n, out) = rx.read_from(&stream[at..], max);
        assert!(n > 0 && n <= max, "read {n} of at most {max}");
        at += n;
        for chunk in out {
            assert!(
                stream[handed..].starts_with(&chunk),
                "bytes out of order at {handed}"
            );
            handed += chunk.len();
        }
        assert_eq!(handed + rx.held(), at, "bytes lost or repeated");
        assert!(
            rx.held() <= PIECE_FRAME_LEN,
            "{} bytes held back",
            rx.held()
        );
    }
}
