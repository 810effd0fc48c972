//! Seeds for the peer-discovery targets: KRPC and DHT datagrams, the DHT
//! state file, and local service discovery announces.

use super::*;

pub(super) fn krpc() -> Seeds {
    let v = |s: &[u8]| s.to_vec();
    vec![
        ("ping", v(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")),
        ("pong", v(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re")),
        ("error", v(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee")),
        (
            "find-node",
            v(b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe"),
        ),
        (
            "get-peers-values",
            v(b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"),
        ),
        (
            "announce",
            v(b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"),
        ),
        (
            "scrape-query",
            v(b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:noseedi1e6:scrapei1ee1:q9:get_peers1:t2:aa1:y1:qe"),
        ),
        (
            "announce-seed",
            v(b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e4:seedi1e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"),
        ),
        ("scrape-answer", scrape_answer()),
        (
            "samples",
            v(b"d1:rd2:id20:abcdefghij01234567898:intervali21600e3:numi2e7:samples40:0123456789012345678901234567890123456789e1:t2:aa1:y1:re"),
        ),
    ]
}

/// A `get_peers` answer with BEP 33's two filters.
fn scrape_answer() -> Vec<u8> {
    let mut m = b"d1:rd4:BFpe256:".to_vec();
    m.extend_from_slice(&[0x11; 256]);
    m.extend_from_slice(b"4:BFsd256:");
    m.extend_from_slice(&[0x80; 256]);
    m.extend_from_slice(b"2:id20:abcdefghij01234567895:token8:aoeusnthe1:t2:aa1:y1:re");
    m
}

pub(super) fn dht_datagram() -> Seeds {
    // The krpc seeds, joined by the target's separator, as a conversation.
    let mut joined = Vec::new();
    for (_, m) in krpc() {
        joined.extend_from_slice(&m);
        joined.push(0xfd);
    }
    vec![("conversation", joined)]
}

pub(super) fn lsd_announce() -> Seeds {
    use bittide_core::lsd::{LsdMessage, GROUP_V4};
    use bittide_core::InfoHash;
    let msg = |hashes: Vec<InfoHash>, cookie: Option<&str>| {
        LsdMessage {
            port: 6881,
            info_hashes: hashes,
            cookie: cookie.map(str::to_owned),
        }
        .encode(GROUP_V4)
    };
    vec![
        ("ours", msg(vec![InfoHash([0x11; 20])], Some("c00c1e"))),
        ("two", msg(vec![InfoHash([0x11; 20]), InfoHash([0x22; 20])], None)),
        (
            "libtorrent",
            b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 47300\r\nInfohash: 1111111111111111111111111111111111111111\r\ncookie: 6d3ba830\r\n\r\n\r\n".to_vec(),
        ),
        (
            "bad-port",
            b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: 1111111111111111111111111111111111111111\r\n\r\n".to_vec(),
        ),
    ]
}

pub(super) fn dht_state() -> Seeds {
    use bittide_core::dht::{SavedDht, SavedNode};
    use bittide_core::krpc::NodeId;
    let part = |id: u8, addrs: Vec<std::net::SocketAddr>| SavedNode {
        id: NodeId([id; 20]),
        nodes: addrs
            .into_iter()
            .enumerate()
            .map(|(i, a)| (NodeId([i as u8 + 1; 20]), a))
            .collect(),
    };
    let v4 = || {
        part(
            0xaa,
            (1..6u8).map(|i| ([10, 0, 0, i], 6881).into()).collect(),
        )
    };
    let v6 = || {
        let addrs = (1..4u16)
            .map(|i| {
                (
                    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i),
                    6881,
                )
                    .into()
            })
            .collect();
        part(0xcc, addrs)
    };
    let saved = |v4, v6| SavedDht { v4, v6 }.encode();
    vec![
        ("saved", saved(Some(v4()), None)),
        ("no-nodes", saved(Some(part(0xbb, Vec::new())), None)),
        ("both-families", saved(Some(v4()), Some(v6()))),
        ("v6-only", saved(None, Some(v6()))),
        ("short-id", b"d2:id3:abc5:nodes0:e".to_vec()),
        (
            "ragged-nodes",
            b"d2:id20:abcdefghij01234567895:nodes7:1234567e".to_vec(),
        ),
    ]
}
