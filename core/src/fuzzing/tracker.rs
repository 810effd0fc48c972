//! Tracker targets: the HTTP codec both ways, the UDP client in every
//! phase, and the UDP server.

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
    use crate::tracker::udp::{UdpJob, UdpRequest, UdpResponse, UdpTrackerClient};
    use crate::tracker::AnnounceRequest;
    use crate::wire::PeerId;
    use crate::{InfoHash, Instant, Seed};

    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let tracker = if mode & 1 == 1 {
        std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 6969))
    } else {
        std::net::SocketAddr::from(([127, 0, 0, 1], 6969))
    };
    let mut c = UdpTrackerClient::new(tracker, Seed::from_u64(u64::from(mode)));
    let now = Instant::ZERO;
    if mode & 2 == 0 {
        let request = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 1);
        c.announce(now, UdpJob(1), request, b"");
    } else {
        c.scrape(
            now,
            UdpJob(1),
            vec![InfoHash([1; 20]); usize::from(mode >> 2) + 1],
        );
    }
    // Optionally complete the connect so the datagrams hit the request phase.
    if mode & 4 == 4 {
        if let Some((_, p)) = c.poll_transmit() {
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
