use super::*;

fn round_trip(m: &Message) {
    let mut out = Vec::new();
    m.encode(&mut out);
    let back = Message::decode(&out).unwrap();
    assert_eq!(&back, m, "{}", String::from_utf8_lossy(&out));
    // Canonical: encoding what we decoded gives the same bytes.
    let mut again = Vec::new();
    back.encode(&mut again);
    assert_eq!(again, out);
}

#[test]
fn bep5_examples_decode() {
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    let m = Message::decode(ping).unwrap();
    assert_eq!(m.tx, b"aa");
    assert_eq!(m.id, Some(NodeId(*b"abcdefghij0123456789")));
    assert_eq!(m.body, Body::Query(Query::Ping));
    let mut out = Vec::new();
    m.encode(&mut out);
    assert_eq!(&out[..], &ping[..], "canonical example re-encodes exactly");

    let pong = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
    let m = Message::decode(pong).unwrap();
    assert!(matches!(m.body, Body::Response(_)));

    let err = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
    let m = Message::decode(err).unwrap();
    assert_eq!(
        m.body,
        Body::Error(code::GENERIC, "A Generic Error Ocurred".into())
    );

    let announce = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
    let m = Message::decode(announce).unwrap();
    assert_eq!(
        m.body,
        Body::Query(Query::AnnouncePeer {
            info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
            port: 6881,
            token: b"aoeusnth".to_vec(),
            implied_port: true,
            seed: false,
        })
    );
}

#[test]
fn every_kind_round_trips() {
    let id = NodeId([7; 20]);
    let base = |body| Message {
        tx: vec![1, 2],
        id: Some(id),
        version: Some(b"BT01".to_vec()),
        ip: Some("1.2.3.4:5678".parse().unwrap()),
        read_only: true,
        body,
    };
    let want = Want { v4: true, v6: true };
    for q in [
        Query::Ping,
        Query::FindNode {
            target: NodeId([9; 20]),
            want,
        },
        Query::GetPeers {
            info_hash: InfoHash([3; 20]),
            want: Want::default(),
            scrape: false,
            noseed: false,
        },
        // BEP 33's flags.
        Query::GetPeers {
            info_hash: InfoHash([3; 20]),
            want,
            scrape: true,
            noseed: true,
        },
        Query::AnnouncePeer {
            info_hash: InfoHash([3; 20]),
            port: 1,
            token: vec![5; 8],
            implied_port: false,
            seed: false,
        },
        Query::AnnouncePeer {
            info_hash: InfoHash([3; 20]),
            port: 1,
            token: vec![5; 8],
            implied_port: true,
            seed: true,
        },
        Query::SampleInfohashes {
            target: NodeId([1; 20]),
            want,
        },
    ] {
        round_trip(&base(Body::Query(q)));
    }
    round_trip(&base(Body::Response(Response {
        nodes: vec![CompactNode {
            id: NodeId([1; 20]),
            addr: "10.0.0.1:6881".parse().unwrap(),
        }],
        nodes6: vec![CompactNode {
            id: NodeId([2; 20]),
            addr: "[2001:db8::1]:6881".parse().unwrap(),
        }],
        values: vec![
            "10.0.0.2:51413".parse().unwrap(),
            "[::1]:1".parse().unwrap(),
        ],
        token: Some(vec![9; 4]),
        samples: vec![InfoHash([4; 20]), InfoHash([5; 20])],
        interval: Some(21600),
        num: Some(1234),
        bf_seeds: Some(Box::new(crate::dht::scrape::ScrapeBloom([0x81; 256]))),
        bf_peers: Some(Box::new(crate::dht::scrape::ScrapeBloom([0x18; 256]))),
    })));
    round_trip(&Message {
        tx: vec![0],
        id: None,
        version: None,
        ip: None,
        read_only: false,
        body: Body::Error(code::METHOD_UNKNOWN, "Method Unknown".into()),
    });
}

#[test]
fn malformed_and_hostile_input() {
    assert!(matches!(
        Message::decode(b"garbage"),
        Err(KrpcError::Malformed(_))
    ));
    assert_eq!(
        Message::decode(b"le"),
        Err(KrpcError::Protocol("not a dictionary"))
    );
    assert_eq!(
        Message::decode(b"d1:y1:qe"),
        Err(KrpcError::Protocol("transaction id"))
    );
    let long_tx = format!("d1:t40:{}1:y1:re", "x".repeat(40));
    assert_eq!(
        Message::decode(long_tx.as_bytes()),
        Err(KrpcError::Protocol("transaction id"))
    );
    assert_eq!(
        Message::decode(b"d1:ad2:id3:abce1:q4:ping1:t1:a1:y1:qe"),
        Err(KrpcError::Protocol("a.id"))
    );
    let unknown = b"d1:ad2:id20:abcdefghij0123456789e1:q5:frobz1:t1:a1:y1:qe";
    assert_eq!(
        Message::decode(unknown).unwrap().body,
        Body::Query(Query::Unknown {
            method: b"frobz".to_vec()
        })
    );
    // Nodes with a trailing partial entry keep the whole ones.
    let mut nodes = vec![1u8; 26];
    nodes[24] = 0x1a;
    nodes.extend_from_slice(&[0; 10]);
    let mut r = b"d1:rd2:id20:abcdefghij01234567895:nodes36:".to_vec();
    r.extend_from_slice(&nodes);
    r.extend_from_slice(b"e1:t1:a1:y1:re");
    let Body::Response(resp) = Message::decode(&r).unwrap().body else {
        panic!()
    };
    assert_eq!(resp.nodes.len(), 1);
}

#[test]
fn distance_is_xor() {
    let a = NodeId([0xff; 20]);
    let b = NodeId([0x0f; 20]);
    assert_eq!(a.distance(&b), [0xf0; 20]);
    assert_eq!(a.distance(&a), [0; 20]);
}
