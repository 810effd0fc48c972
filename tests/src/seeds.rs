//! Seed inputs for the fuzz targets, generated from code so they cover each
//! decoder's interesting shapes on purpose: valid values of every kind, each
//! error the decoders name, and real-looking torrents and magnets.
//!
//! `tests/fuzz_replay.rs` checks every seed here is committed under
//! `fuzz/seeds/<target>/` (write them with `BITTIDE_WRITE_SEEDS=1`), and
//! replays the committed seeds and regressions through the fuzz entry
//! points on stable Rust.

use bittide_core::bencode::Value;
use bittide_core::metainfo::{Magnet, PeerAddr, TorrentBuilder};
use bittide_core::wire::{BlockRef, Frame, Handshake, PeerId, Reserved};
use bittide_core::{InfoHash, PieceIndex, Rng, Seed};
use bytes::Bytes;

mod discovery;
mod files;
mod streams;
mod trackers;
use discovery::{dht_datagram, dht_state, krpc, lsd_announce};
use files::{disk_paths, resume, state_files, units};
use streams::receive_buffer;
use trackers::{
    tracker_client, tracker_http_request, tracker_http_response, tracker_udp_client,
    tracker_udp_server,
};
/// Named seeds for one target.
pub type Seeds = Vec<(&'static str, Vec<u8>)>;

/// The targets that have seeds.
pub const TARGETS: [&str; 40] = [
    "bencode",
    "metainfo",
    "magnet",
    "handshake",
    "wire_frame",
    "wire_stream",
    "peer_session_ops",
    "tracker_http_response",
    "tracker_http_request",
    "tracker_udp_client",
    "tracker_udp_server",
    "krpc",
    "dht_datagram",
    "ut_metadata",
    "pex",
    "ut_holepunch",
    "metadata_fetch",
    "extension_handshake",
    "bitfield",
    "compact",
    "dht_state",
    "engine_routing",
    "torrent_swarm",
    "torrent_swarm_v2",
    "resume",
    "tracker_front",
    "units",
    "tracker_client",
    "disk_paths",
    "state_files",
    "utp_packet",
    "utp_connection",
    "mse_initiator",
    "mse_responder",
    "lsd_announce",
    "web_seed",
    "file_tree",
    "hash_tree",
    "listing",
    "receive_buffer",
];

/// Seeds of `target`.
pub fn for_target(target: &str) -> Seeds {
    match target {
        "bencode" => bencode(),
        "metainfo" => metainfo(),
        "magnet" => magnet(),
        "handshake" => handshake(),
        "wire_frame" => wire_frame(),
        "wire_stream" => wire_stream(),
        "peer_session_ops" => peer_session_ops(),
        "tracker_http_response" => tracker_http_response(),
        "tracker_http_request" => tracker_http_request(),
        "tracker_udp_client" => tracker_udp_client(),
        "tracker_udp_server" => tracker_udp_server(),
        "krpc" => krpc(),
        "dht_datagram" => dht_datagram(),
        "ut_metadata" => ut_metadata(),
        "pex" => pex(),
        "ut_holepunch" => ut_holepunch(),
        "metadata_fetch" => metadata_fetch(),
        "extension_handshake" => extension_handshake(),
        "bitfield" => bitfield(),
        "compact" => compact(),
        "dht_state" => dht_state(),
        "engine_routing" => random_seeds(79),
        "torrent_swarm" => random_seeds(80),
        "torrent_swarm_v2" => random_seeds(86),
        "web_seed" => random_seeds(84),
        "file_tree" => file_tree(),
        "listing" => listing(),
        "hash_tree" => random_seeds(85),
        "resume" => resume(),
        "state_files" => state_files(),
        "tracker_front" => random_seeds(81),
        "units" => units(),
        "tracker_client" => tracker_client(),
        "disk_paths" => disk_paths(),
        "utp_packet" => utp_packet(),
        "utp_connection" => random_seeds(82),
        "mse_initiator" => mse(82),
        "mse_responder" => mse(83),
        "lsd_announce" => lsd_announce(),
        "receive_buffer" => receive_buffer(),
        _ => Vec::new(),
    }
}

fn bencode() -> Seeds {
    let v = |s: &'static str| s.as_bytes().to_vec();
    vec![
        ("int", v("i42e")),
        ("int-negative", v("i-9223372036854775808e")),
        ("string", v("4:spam")),
        ("empty-string", v("0:")),
        ("list", v("l4:spami3ee")),
        ("dict", v("d3:cow3:moo4:spam4:eggse")),
        ("nested", v("d1:ald1:bli1ei2eeee1:zdee")),
        ("unsorted", v("d1:bi1e1:ai2ee")),
        ("duplicate", v("d1:ai1e1:ai2ee")),
        ("leading-zero", v("i03e")),
        ("negative-zero", v("i-0e")),
        ("overflow", v("i9223372036854775808e")),
        ("string-past-end", v("10:abc")),
        ("key-not-string", v("di1ei2ee")),
        ("deep", "l".repeat(100).into_bytes()),
        ("trailing", v("i1ei2e")),
        ("torrent", metainfo().remove(0).1),
    ]
}

fn single_file() -> Vec<u8> {
    let mut b = TorrentBuilder::single_file("file.bin", 40_000);
    b.set_piece_length(16384)
        .add_tracker_tier(vec!["http://127.0.0.1:6969/announce".into()]);
    b.build(&[[1; 20], [2; 20], [3; 20]]).expect("valid seed")
}

fn multi_file() -> Vec<u8> {
    let mut b = TorrentBuilder::multi_file("folder");
    b.add_file(vec!["a.txt".into()], 10)
        .add_file(vec!["empty".into()], 0)
        .add_file(vec!["sub".into(), "b.bin".into()], 20_000)
        .set_piece_length(16384)
        .add_tracker_tier(vec!["http://127.0.0.1:6969/announce".into()])
        .add_tracker_tier(vec!["udp://127.0.0.1:6969".into()])
        .add_web_seed("http://127.0.0.1:8080/".into())
        .set_private(true)
        .set_comment("seed".into());
    b.build(&[[4; 20], [5; 20]]).expect("valid seed")
}

fn info_torrent(info: Vec<(&'static [u8], Value<'static>)>) -> Vec<u8> {
    Value::dict(vec![(b"info", Value::dict(info))]).to_vec()
}

fn metainfo() -> Seeds {
    let padded = info_torrent(vec![
        (b"name", Value::bytes(b"padded")),
        (b"piece length", Value::int(16384)),
        (b"pieces", Value::bytes(&[9; 40])),
        (
            b"files",
            Value::list(vec![
                Value::dict(vec![
                    (b"length", Value::int(100)),
                    (b"path", Value::list(vec![Value::bytes(b"a")])),
                    (b"attr", Value::bytes(b"x")),
                ]),
                Value::dict(vec![
                    (b"length", Value::int(16284)),
                    (
                        b"path",
                        Value::list(vec![Value::bytes(b".pad"), Value::bytes(b"16284")]),
                    ),
                    (b"attr", Value::bytes(b"p")),
                ]),
                Value::dict(vec![
                    (b"length", Value::int(5)),
                    (b"path", Value::list(vec![Value::bytes(b"b")])),
                ]),
            ]),
        ),
    ]);
    let hybrid = info_torrent(vec![
        (b"name", Value::bytes(b"h")),
        (b"piece length", Value::int(16384)),
        (b"pieces", Value::bytes(&[7; 20])),
        (b"length", Value::int(5)),
        (b"meta version", Value::int(2)),
        (b"file tree", Value::dict(vec![])),
    ]);
    let v2_only = info_torrent(vec![
        (b"name", Value::bytes(b"v2")),
        (b"piece length", Value::int(16384)),
        (b"meta version", Value::int(2)),
        (b"file tree", Value::dict(vec![])),
    ]);
    let hostile = info_torrent(vec![
        (b"name", Value::bytes(b"top")),
        (b"piece length", Value::int(16384)),
        (b"pieces", Value::bytes(&[7; 20])),
        (
            b"files",
            Value::list(vec![Value::dict(vec![
                (b"length", Value::int(5)),
                (
                    b"path",
                    Value::list(vec![Value::bytes(b".."), Value::bytes(b"x")]),
                ),
            ])]),
        ),
    ]);
    let mut unsorted = b"d4:infod6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:".to_vec();
    unsorted.extend_from_slice(&[3; 20]);
    unsorted.extend_from_slice(b"1:ai0eee");
    vec![
        ("single-file", single_file()),
        ("multi-file", multi_file()),
        ("padding", padded),
        ("hybrid", hybrid),
        ("v2-only", v2_only),
        ("hostile-path", hostile),
        ("unsorted-info", unsorted),
    ]
}

fn magnet() -> Seeds {
    let hash = InfoHash([0xc1; 20]);
    let full = Magnet {
        info_hash: Some(hash),
        info_hash_v2: Some([0xab; 32]),
        display_name: Some("Some name + more".into()),
        trackers: vec![
            "http://127.0.0.1:6969/announce".into(),
            "udp://127.0.0.1:6969".into(),
        ],
        web_seeds: vec!["http://127.0.0.1:8080/x".into()],
        peers: vec![
            PeerAddr::Ip("127.0.0.1:6881".parse().expect("literal")),
            PeerAddr::Ip("[::1]:6882".parse().expect("literal")),
            PeerAddr::Host("peer.example".into(), 7000),
        ],
        select_only: vec![0..=0, 2..=5],
    };
    let v = |s: &str| s.as_bytes().to_vec();
    vec![
        ("full", full.to_string().into_bytes()),
        ("hex", v(&format!("magnet:?xt=urn:btih:{hash}"))),
        (
            "base32",
            v("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=x"),
        ),
        (
            "plus-name",
            v(&format!("magnet:?xt=urn:btih:{hash}&dn=a+b%20c&tr.1=x")),
        ),
        (
            "bad-percent",
            v(&format!("magnet:?xt=urn:btih:{hash}&dn=%z1")),
        ),
        (
            "bad-peer",
            v(&format!("magnet:?xt=urn:btih:{hash}&x.pe=::1:80")),
        ),
        ("no-hash", v("magnet:?dn=nothing")),
    ]
}

fn handshake() -> Seeds {
    let mut valid = Vec::new();
    Handshake {
        reserved: Reserved::FAST.with(Reserved::EXTENSION).with(Reserved::DHT),
        info_hash: InfoHash([0xab; 20]),
        peer_id: PeerId(*b"-BT0001-123456789012"),
    }
    .encode(&mut valid);
    let mut wrong = valid.clone();
    wrong[5] = b'X';
    vec![
        ("valid", valid),
        ("wrong-protocol", wrong),
        ("http", b"GET /announce HTTP/1.1\r\n".to_vec()),
    ]
}

fn all_frames() -> Vec<u8> {
    let b = BlockRef {
        piece: PieceIndex(3),
        offset: 16384,
        length: 16384,
    };
    let frames = [
        Frame::KeepAlive,
        Frame::Choke,
        Frame::Unchoke,
        Frame::Interested,
        Frame::NotInterested,
        Frame::Have(PieceIndex(5)),
        Frame::Bitfield(Bytes::from_static(&[0xff, 0xe0])),
        Frame::Request(b),
        Frame::Piece {
            piece: PieceIndex(3),
            offset: 0,
            data: Bytes::from(vec![0x42; 64]),
        },
        Frame::Cancel(b),
        Frame::Port(6881),
        Frame::Suggest(PieceIndex(1)),
        Frame::HaveAll,
        Frame::HaveNone,
        Frame::Reject(b),
        Frame::AllowedFast(PieceIndex(2)),
        Frame::Extended {
            id: 0,
            payload: Bytes::from_static(b"d1:md6:ut_pexi1eee"),
        },
        Frame::Unknown {
            id: 0x63,
            payload: Bytes::from_static(b"??"),
        },
    ];
    let mut out = Vec::new();
    for f in &frames {
        f.encode(&mut out);
    }
    out
}

fn wire_frame() -> Seeds {
    // First byte odd: the torrent has 11 pieces (bitfields are 2 bytes).
    let mut eleven = vec![0x03];
    eleven.extend(all_frames());
    let mut unknown_count = vec![0x00];
    unknown_count.extend(all_frames());
    let mut oversized = vec![0x00];
    oversized.extend_from_slice(&[0, 0, 0x40, 0x0a, 7, 0, 0, 0, 0]);
    vec![
        ("all-frames", eleven),
        ("no-piece-count", unknown_count),
        ("oversized-piece", oversized),
    ]
}

fn wire_stream() -> Seeds {
    let mut one = vec![0x03, 3, 10, 100, 200];
    one.extend(all_frames());
    let mut many = vec![0x00, 15];
    many.extend((0..15u8).map(|i| i * 17));
    many.extend(all_frames());
    vec![("three-cuts", one), ("fifteen-cuts", many)]
}

fn peer_session_ops() -> Seeds {
    random_seeds(77)
}

/// Random bytes of a few sizes: for targets that read operation lists
/// with `arbitrary`, as good a start as any.
fn random_seeds(seed: u64) -> Seeds {
    let mut rng = Rng::new(Seed::from_u64(seed));
    (0..4)
        .map(|i| {
            let mut v = vec![0u8; 256 << i];
            rng.fill(&mut v);
            (["random-256", "random-512", "random-1k", "random-2k"][i], v)
        })
        .collect()
}

/// MSE seeds: the first byte picks raw bytes (even) or an honest peer's
/// messages with the rest xored over them (odd), the next two the split
/// point.
fn mse(seed: u64) -> Seeds {
    let mut rng = Rng::new(Seed::from_u64(seed));
    let input = |mode: u8, split: u16, noise: &mut dyn FnMut(&mut Vec<u8>)| {
        let mut v = vec![mode];
        v.extend_from_slice(&split.to_be_bytes());
        noise(&mut v);
        v
    };
    let mut garbage = vec![0u8; 1024];
    rng.fill(&mut garbage);
    vec![
        ("honest", input(1, 0, &mut |_| {})),
        ("honest-split-in-key", input(1, 50, &mut |_| {})),
        ("honest-split-late", input(1, 700, &mut |_| {})),
        // Flips one byte far into the stream: in the VC, the method or the
        // padding length, depending on the padding drawn.
        (
            "flip-late",
            input(1, 300, &mut |v| {
                v.extend((0..680).map(|i| u8::from(i == 679)))
            }),
        ),
        ("flip-key", input(1, 0, &mut |v| v.push(0x80))),
        (
            "raw-garbage",
            input(0, 512, &mut |v| v.extend_from_slice(&garbage)),
        ),
        ("raw-zero-key", input(0, 0, &mut |v| v.extend([0u8; 96]))),
    ]
}

fn ut_metadata() -> Seeds {
    let v = |s: &[u8]| s.to_vec();
    let mut data = b"d8:msg_typei1e5:piecei1e10:total_sizei16390ee".to_vec();
    data.extend_from_slice(b"123456");
    vec![
        ("request", v(b"d8:msg_typei0e5:piecei0ee")),
        ("reject", v(b"d8:msg_typei2e5:piecei3ee")),
        ("data-last", data),
        (
            "data-empty",
            v(b"d8:msg_typei1e5:piecei0e10:total_sizei1ee"),
        ),
        ("unknown-type", v(b"d8:msg_typei9e5:piecei0ee")),
        ("no-piece", v(b"d8:msg_typei0ee")),
        ("negative-piece", v(b"d8:msg_typei0e5:piecei-1ee")),
        (
            "huge-size",
            v(b"d8:msg_typei1e5:piecei0e10:total_sizei9999999999ee"),
        ),
        ("extra-keys", v(b"d1:xi1e8:msg_typei0e5:piecei0ee")),
    ]
}

fn ut_holepunch() -> Seeds {
    use bittide_core::wire::{HolepunchErrorCode, HolepunchMessage};
    let v4 = std::net::SocketAddr::from(([10, 0, 0, 1], 6881));
    let v6 = std::net::SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 51413));
    let error = |code| HolepunchMessage::Error {
        addr: v4,
        code: HolepunchErrorCode::from_code(code),
    };
    let mut long = HolepunchMessage::Connect(v4).to_vec();
    long.push(0);
    vec![
        ("rendezvous", HolepunchMessage::Rendezvous(v4).to_vec()),
        ("rendezvous-v6", HolepunchMessage::Rendezvous(v6).to_vec()),
        ("connect", HolepunchMessage::Connect(v4).to_vec()),
        ("connect-v6", HolepunchMessage::Connect(v6).to_vec()),
        ("no-such-peer", error(1).to_vec()),
        ("not-connected", error(2).to_vec()),
        ("no-support", error(3).to_vec()),
        ("no-self", error(4).to_vec()),
        ("unknown-code", error(77).to_vec()),
        (
            "truncated",
            HolepunchMessage::Connect(v6).to_vec()[..19].to_vec(),
        ),
        ("trailing", long),
        (
            "unknown-type",
            vec![3, 0, 10, 0, 0, 1, 0x1a, 0xe1, 0, 0, 0, 0],
        ),
        (
            "unknown-family",
            vec![0, 2, 10, 0, 0, 1, 0x1a, 0xe1, 0, 0, 0, 0],
        ),
        (
            "code-on-connect",
            vec![1, 0, 10, 0, 0, 1, 0x1a, 0xe1, 0, 0, 0, 4],
        ),
        ("empty", Vec::new()),
        (
            "libtorrent-connect",
            HolepunchMessage::Connect(v4).to_vec()[..8].to_vec(),
        ),
        (
            "libtorrent-rendezvous-v6",
            HolepunchMessage::Rendezvous(v6).to_vec()[..20].to_vec(),
        ),
        ("error-without-code", error(2).to_vec()[..8].to_vec()),
    ]
}

fn pex() -> Seeds {
    let v = |s: &[u8]| s.to_vec();
    vec![
        (
            "libtorrent",
            v(b"d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.f1:\x126:added60:8:added6.f0:7:dropped0:8:dropped60:e"),
        ),
        (
            "v6",
            v(b"d6:added618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe18:added6.f1:\x108:dropped618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x50e"),
        ),
        ("dropped", v(b"d7:dropped12:\x0a\x00\x00\x01\x00\x50\x0a\x00\x00\x02\x00\x51e")),
        ("ragged", v(b"d5:added5:12345e")),
        ("port-zero", v(b"d5:added6:\x01\x02\x03\x04\x00\x00e")),
        ("empty", v(b"de")),
    ]
}

fn metadata_fetch() -> Seeds {
    random_seeds(78)
}

fn extension_handshake() -> Seeds {
    use bittide_core::wire::ExtensionHandshake;
    let mut ours = Vec::new();
    ExtensionHandshake {
        messages: vec![("ut_metadata".into(), 1), ("ut_pex".into(), 2)],
        port: Some(6881),
        client: Some("bittide 0.1".into()),
        your_ip: Some("10.0.0.1".parse().expect("literal")),
        reqq: Some(250),
        metadata_size: Some(31235),
    }
    .encode(&mut ours);
    let mut lossy = b"d1:md6:ut_pexi1ee1:v64:".to_vec();
    lossy.extend_from_slice(&[0xff; 64]);
    lossy.push(b'e');
    let v = |s: &[u8]| s.to_vec();
    vec![
        ("ours", ours),
        (
            "libtorrent",
            v(b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e4:reqqi500e11:upload_onlyi0e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e"),
        ),
        ("disabled-and-odd", v(b"d1:md6:ut_pexi0e1:xi300e1:yi-1e2:\xff\xfei3ee1:pi0e4:reqqi0ee")),
        ("non-utf8-client", lossy),
        ("not-a-dict", v(b"li1ee")),
    ]
}

fn bitfield() -> Seeds {
    let v = |s: &[u8]| s.to_vec();
    vec![
        ("eleven", v(&[0, 11, 0xff, 0xe0])),
        ("eight-full", v(&[0, 8, 0xff])),
        ("empty", v(&[0, 0])),
        ("spare-bit", v(&[0, 11, 0xff, 0xf0])),
        ("too-long", v(&[0, 8, 0xff, 0x00])),
        ("sparse", v(&[0, 20, 0x81, 0x00, 0x10])),
    ]
}

fn compact() -> Seeds {
    let mut mixed = Vec::new();
    for a in ["10.0.0.1:6881", "192.168.1.2:80", "[2001:db8::1]:51413"] {
        bittide_core::compact::encode(&mut mixed, &a.parse().expect("literal"));
    }
    let mut port_zero = vec![1, 2, 3, 4, 0, 0];
    port_zero.extend_from_slice(&[5, 6, 7, 8, 0x1a, 0xe1, 9]);
    vec![
        ("mixed", mixed),
        ("port-zero-partial", port_zero),
        ("one-v4", vec![127, 0, 0, 1, 0x1a, 0xe1]),
    ]
}

/// uTP packets of every type (BEP 29), with and without a selective ACK,
/// an unknown extension before it, and the shapes the decoder refuses.
fn utp_packet() -> Seeds {
    use bittide_core::utp::{Packet, PacketType, SelectiveAck, SeqNr};

    let mut sack = SelectiveAck::new(4);
    sack.set(0);
    sack.set(7);
    let data = Packet {
        kind: PacketType::Data,
        conn_id: 0x3039,
        timestamp_us: 0x0102_0304,
        timestamp_diff_us: 1500,
        wnd_size: 1 << 20,
        seq_nr: SeqNr(0xfffe),
        ack_nr: SeqNr(77),
        selective_ack: Some(sack),
        payload: b"\x13BitTorrent protocol",
    };
    let bare = |kind| {
        Packet {
            kind,
            selective_ack: None,
            payload: &[],
            ..data
        }
        .to_vec()
    };
    let mut extension_bits = bare(PacketType::State);
    extension_bits[1] = 2;
    extension_bits.extend_from_slice(&[1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0xff, 0, 0, 1]);
    let mut short_sack = data.to_vec();
    short_sack[21] = 3;
    let mut empty_sack = data.to_vec();
    empty_sack[21] = 0;
    let mut version_2 = bare(PacketType::Syn);
    version_2[0] = 0x42;
    vec![
        ("data-with-sack", data.to_vec()),
        ("syn", bare(PacketType::Syn)),
        ("state", bare(PacketType::State)),
        ("fin", bare(PacketType::Fin)),
        ("reset", bare(PacketType::Reset)),
        ("extension-bits-then-sack", extension_bits),
        ("sack-of-3-bytes", short_sack),
        ("empty-sack", empty_sack),
        ("version-2", version_2),
    ]
}

/// BEP 52 file trees: a file, a folder of two, an empty file, and shapes
/// the parser refuses (a node both file and folder, an unsafe name).
/// Info dictionaries as a crawler meets them: ordinary ones, and the
/// hostile shapes `Listing` must make safe.
fn listing() -> Seeds {
    let file = |len: i64, path: &[&'static [u8]]| {
        Value::dict(vec![
            (b"length", Value::int(len)),
            (
                b"path",
                Value::list(path.iter().map(|p| Value::bytes(p)).collect()),
            ),
        ])
    };
    let info = |name: &'static [u8], files: Value<'static>| {
        Value::dict(vec![
            (b"files", files),
            (b"name", Value::bytes(name)),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[1; 20])),
        ])
        .to_vec()
    };
    let single = Value::dict(vec![
        (b"length", Value::int(5)),
        (b"name", Value::bytes(b"one.iso")),
        (b"piece length", Value::int(16384)),
        (b"pieces", Value::bytes(&[1; 20])),
    ])
    .to_vec();
    let many: Vec<Value<'static>> = (0..300).map(|_| file(1, &[b"d", b"f"])).collect();
    vec![
        ("single", single),
        ("folder", info(b"dir", Value::list(vec![file(3, &[b"a", b"b.txt"]), file(4, &[b"c"])]))),
        ("control", info(b"n\x00\x1b[2J\n", Value::list(vec![file(1, &[b"a\x00b", b"\x7f"])]))),
        ("slash", info(b"x", Value::list(vec![file(1, &[b"../../etc", b"a/b"])]))),
        ("negative", info(b"x", Value::list(vec![file(-1, &[b"a"])]))),
        ("not-utf8", info(b"\xff\xfe", Value::list(vec![file(1, &[b"\xc3"])]))),
        ("many", info(b"many", Value::list(many))),
        ("v2", b"d9:file treed1:ad0:d6:lengthi5e11:pieces root32:rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrreee12:meta versioni2e4:name1:t12:piece lengthi16384ee".to_vec()),
    ]
}

fn file_tree() -> Seeds {
    let leaf = |len: i64| {
        if len == 0 {
            Value::dict(vec![(b"", Value::dict(vec![(b"length", Value::int(0))]))])
        } else {
            Value::dict(vec![(
                b"",
                Value::dict(vec![
                    (b"length", Value::int(len)),
                    (b"pieces root", Value::bytes(&[7u8; 32])),
                ]),
            )])
        }
    };
    let trees = [
        ("one", Value::dict(vec![(b"a.bin", leaf(100_000))])),
        (
            "folder",
            Value::dict(vec![
                (b"d", Value::dict(vec![(b"x", leaf(5)), (b"y", leaf(0))])),
                (b"z", leaf(1)),
            ]),
        ),
        (
            "both",
            Value::dict(vec![(
                b"n",
                Value::dict(vec![(b"", Value::dict(vec![])), (b"m", leaf(1))]),
            )]),
        ),
        ("unsafe", Value::dict(vec![(b"..", leaf(1))])),
    ];
    trees
        .into_iter()
        .map(|(name, v)| (name, v.to_vec()))
        .collect()
}
