//! Seeds for the tracker targets: HTTP announce requests and answers, the
//! UDP tracker protocol from both sides, and the blocking tracker client.

use super::*;

pub(super) fn tracker_http_response() -> Seeds {
    use bittide_core::tracker::http::{encode_announce_response, encode_scrape_response};
    use bittide_core::tracker::{AnnounceResponse, ScrapeEntry};
    let r = AnnounceResponse {
        interval: 1800,
        min_interval: Some(900),
        complete: Some(3),
        incomplete: Some(4),
        peers: vec![
            "10.0.0.1:6881".parse().expect("literal"),
            "[2001:db8::1]:6882".parse().expect("literal"),
        ],
        warning: Some("be nice".into()),
        ..AnnounceResponse::default()
    };
    let scrape = encode_scrape_response(&[ScrapeEntry {
        info_hash: InfoHash([7; 20]),
        complete: 1,
        downloaded: 2,
        incomplete: 3,
    }]);
    vec![
        ("compact", encode_announce_response(&r, true)),
        ("dictionary", encode_announce_response(&r, false)),
        (
            "failure",
            b"d14:failure reason17:torrent not founde".to_vec(),
        ),
        ("html", b"<html><body>502</body></html>".to_vec()),
        ("scrape", scrape),
    ]
}

pub(super) fn tracker_http_request() -> Seeds {
    use bittide_core::tracker::http::{announce_url, scrape_request_url};
    use bittide_core::tracker::{AnnounceEvent, AnnounceRequest};
    let mut r = AnnounceRequest::new(InfoHash([0xc4; 20]), PeerId(*b"-BT0001-abcdefghijkl"), 6881);
    r.left = 12345;
    r.event = AnnounceEvent::Started;
    r.numwant = Some(50);
    r.key = Some(0x1234);
    let url = announce_url("http://127.0.0.1/announce", &r);
    let scrape = scrape_request_url(
        "http://127.0.0.1/scrape",
        &[InfoHash([1; 20]), InfoHash([2; 20])],
    );
    let query = |u: &str| {
        u.split_once('?')
            .map(|(_, q)| q.as_bytes().to_vec())
            .unwrap_or_default()
    };
    vec![("announce", query(&url)), ("scrape", query(&scrape))]
}

pub(super) fn tracker_udp_client() -> Seeds {
    use bittide_core::tracker::udp::UdpResponse;
    let mut connect = vec![0x04];
    UdpResponse::Connect { tx: 1, conn_id: 2 }.encode(&mut connect);
    let mut announce = vec![0x04];
    UdpResponse::Announce {
        tx: 3,
        interval: 1800,
        leechers: 1,
        seeders: 2,
        peers: vec!["10.0.0.1:6881".parse().expect("literal")],
    }
    .encode(&mut announce);
    let mut error = vec![0x06, 0xff];
    UdpResponse::Error {
        tx: 4,
        message: b"go away".to_vec(),
    }
    .encode(&mut error);
    vec![
        ("connect", connect),
        ("announce", announce),
        ("error", error),
    ]
}

pub(super) fn tracker_udp_server() -> Seeds {
    use bittide_core::tracker::udp::UdpRequest;
    use bittide_core::tracker::AnnounceRequest;
    let mut connect = Vec::new();
    UdpRequest::Connect { tx: 1 }.encode(&mut connect);
    let mut announce = Vec::new();
    UdpRequest::Announce {
        conn_id: 0,
        tx: 2,
        request: AnnounceRequest::new(InfoHash([3; 20]), PeerId([4; 20]), 6881),
        url_data: b"/announce?k=1".to_vec(),
    }
    .encode(&mut announce);
    let mut scrape = Vec::new();
    UdpRequest::Scrape {
        conn_id: 0,
        tx: 3,
        hashes: vec![InfoHash([3; 20]), InfoHash([5; 20])],
    }
    .encode(&mut scrape);
    let mut all = connect.clone();
    all.push(0xfe);
    all.extend_from_slice(&announce);
    all.push(0xfe);
    all.extend_from_slice(&scrape);
    vec![
        ("connect", connect),
        ("announce", announce),
        ("scrape", scrape),
        ("sequence", all),
    ]
}

pub(super) fn tracker_client() -> Seeds {
    // URL line; mode byte (bit 0: scrape); datagrams split at 0xff, each
    // after a delay byte (100 ms units); a bare delay is the honest answer.
    let with = |url: &str, mode: u8, script: &[u8]| {
        let mut out = url.as_bytes().to_vec();
        out.push(b'\n');
        out.push(mode);
        out.extend_from_slice(script);
        out
    };
    let mut junk = vec![2];
    junk.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4]);
    junk.extend_from_slice(&[0xff, 1]);
    vec![
        (
            "announce",
            with("udp://127.0.0.1:6969/announce?k=1", 0, &[1, 0xff, 1]),
        ),
        ("scrape", with("udp://tracker.example:80", 5, &[0, 0xff, 3])),
        ("junk-then-honest", with("udp://[::1]:6969", 0, &junk)),
        ("silent", with("udp:///nohost", 0, &[])),
        ("late", with("http://x/announce", 0, &[250, 0xff, 250])),
    ]
}
