//! BEP 55 at the engine: one engine and a relay played by hand over TCP.
//! A `connect` becomes a dial over uTP alone (no TCP connect, no TCP
//! fallback when the SYN goes unanswered); a dial yields to the peer's
//! SYN that arrived first; `ut_holepunch` is advertised only with uTP on;
//! a malformed message ends the relay's connection, not the engine.
//! (The relay's own rules are tested on the torrent:
//! `torrent/tests/holepunch.rs`; the whole story on a NAT'd network in
//! `tests/tests/sim_holepunch.rs`.)

use std::time::Duration;

use super::*;
use crate::utp::{Packet, PacketType};
use crate::wire::{
    ExtensionHandshake, Frame, FrameDecoder, FrameLimits, Handshake, HolepunchMessage, PeerId,
    Reserved, UT_HOLEPUNCH,
};

/// The id the hand-played relay takes `ut_holepunch` under.
const RELAY_HOLEPUNCH: u8 = 9;

/// The peer the relay's `connect` names.
fn target() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 3], 6881))
}

fn leeching_engine(transports: Transports) -> (Engine, InfoHash) {
    let info = super::hostile_tests::small_info();
    let hash = info.info_hash;
    let config = EngineConfig {
        transports,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config, Seed::from_u64(55));
    engine
        .add_torrent(Instant::ZERO, info, StartMode::Fresh)
        .unwrap();
    (engine, hash)
}

/// What the engine did, as far as these tests care.
#[derive(Default)]
struct Seen {
    tcp_connects: Vec<SocketAddr>,
    closed: Vec<ConnId>,
    /// uTP packet types sent, by destination.
    utp: Vec<(SocketAddr, PacketType)>,
    /// Bytes sent to each connection.
    sent: BTreeMap<ConnId, Vec<u8>>,
}

fn drain(engine: &mut Engine, now: Instant, seen: &mut Seen) {
    loop {
        match engine.poll_output(now) {
            Output::Timeout(_) => return,
            Output::Tcp { conn, action } => match action {
                TcpAction::Connect(addr) => seen.tcp_connects.push(addr),
                TcpAction::Close => seen.closed.push(conn),
                TcpAction::Send(data) => seen.sent.entry(conn).or_default().extend(data),
            },
            Output::Udp { to, payload } => {
                if let Ok(p) = Packet::decode(&payload) {
                    seen.utp.push((to, p.kind));
                }
            }
            _ => {}
        }
    }
}

/// A relay connects in over TCP with a plaintext handshake and an
/// extension handshake that offers `ut_holepunch`.
fn relay_joins(engine: &mut Engine, hash: InfoHash, seen: &mut Seen) -> ConnId {
    let now = Instant::ZERO;
    let relay = SocketAddr::from(([127, 0, 0, 2], 40_000));
    let conn = engine.handle_tcp_incoming(now, relay).unwrap();
    let mut bytes = Vec::new();
    Handshake {
        reserved: Reserved::FAST.with(Reserved::EXTENSION),
        info_hash: hash,
        peer_id: PeerId([2; 20]),
    }
    .encode(&mut bytes);
    let mut ext = Vec::new();
    ExtensionHandshake {
        messages: vec![(UT_HOLEPUNCH.to_owned(), RELAY_HOLEPUNCH)],
        port: Some(6881),
        ..ExtensionHandshake::default()
    }
    .encode(&mut ext);
    Frame::Extended {
        id: 0,
        payload: ext.into(),
    }
    .encode(&mut bytes);
    engine.handle_tcp_data(now, conn, &bytes);
    drain(engine, now, seen);
    conn
}

/// An engine with these transports and a relay connected to it.
fn with_relay(transports: Transports) -> (Engine, ConnId, Seen) {
    let (mut engine, hash) = leeching_engine(transports);
    let mut seen = Seen::default();
    let relay = relay_joins(&mut engine, hash, &mut seen);
    (engine, relay, seen)
}

/// The relay says [`target`] dials us now.
fn relay_connects(engine: &mut Engine, relay: ConnId, seen: &mut Seen) {
    let connect = HolepunchMessage::Connect(target()).to_vec();
    relay_says(engine, Instant::ZERO, relay, &connect, seen);
}

/// The relay sends a `ut_holepunch` payload under the id we advertised.
fn relay_says(engine: &mut Engine, now: Instant, conn: ConnId, payload: &[u8], seen: &mut Seen) {
    let mut bytes = Vec::new();
    Frame::Extended {
        id: crate::torrent::holepunch::OUR_UT_HOLEPUNCH,
        payload: payload.to_vec().into(),
    }
    .encode(&mut bytes);
    engine.handle_tcp_data(now, conn, &bytes);
    drain(engine, now, seen);
}

/// The extension handshake the engine sent on `conn`.
fn our_extension_handshake(seen: &Seen, conn: ConnId) -> ExtensionHandshake {
    let mut d = FrameDecoder::new(FrameLimits::default());
    d.push(&seen.sent[&conn]);
    d.next_handshake().unwrap().unwrap();
    while let Ok(Some(f)) = d.next_frame() {
        if let Frame::Extended { id: 0, payload } = f {
            return ExtensionHandshake::decode(&payload).unwrap();
        }
    }
    panic!("no extension handshake");
}

#[test]
fn a_connect_is_dialled_over_utp_alone() {
    let (mut engine, relay, mut seen) = with_relay(Transports::default());
    assert!(our_extension_handshake(&seen, relay)
        .id_of(UT_HOLEPUNCH)
        .is_some());
    let target = target();
    relay_connects(&mut engine, relay, &mut seen);
    assert_eq!(seen.utp, vec![(target, PacketType::Syn)]);
    // Nobody answers: the SYN is resent, then given up, never TCP.
    let mut now = Instant::ZERO;
    for _ in 0..100 {
        now += Duration::from_millis(100);
        engine.handle_timeout(now);
        drain(&mut engine, now, &mut seen);
    }
    assert!(seen.tcp_connects.is_empty(), "{:?}", seen.tcp_connects);
    assert!(seen.utp.len() >= 2, "the SYN was resent");
    assert!(seen
        .utp
        .iter()
        .all(|&(to, k)| to == target && k == PacketType::Syn));
    let id = engine.torrent_ids()[0];
    let stats = engine.torrent(id).unwrap().holepunch_stats();
    assert_eq!((stats.connects_received, stats.dials), (1, 1));
}

#[test]
fn a_dial_yields_to_the_peers_syn_that_came_first() {
    let (mut engine, relay, mut seen) = with_relay(Transports::default());
    let target = target();
    // The target's holepunch SYN arrives before the relay's connect.
    engine.handle_udp(Instant::ZERO, target, &crate::utp::tests::syn(4242));
    drain(&mut engine, Instant::ZERO, &mut seen);
    relay_connects(&mut engine, relay, &mut seen);
    assert_eq!(
        seen.utp,
        vec![(target, PacketType::State)],
        "the SYN answered, no SYN of ours"
    );
    assert!(seen.tcp_connects.is_empty());
}

#[test]
fn without_utp_no_holepunch_is_offered() {
    let tcp_only = Transports {
        tcp: true,
        utp: false,
    };
    let (mut engine, relay, mut seen) = with_relay(tcp_only);
    assert_eq!(
        our_extension_handshake(&seen, relay).id_of(UT_HOLEPUNCH),
        None
    );
    relay_connects(&mut engine, relay, &mut seen);
    assert!(seen.utp.is_empty() && seen.tcp_connects.is_empty());
}

#[test]
fn a_malformed_holepunch_message_ends_the_relays_connection() {
    let (mut engine, relay, mut seen) = with_relay(Transports::default());
    relay_says(&mut engine, Instant::ZERO, relay, &[1, 9, 9], &mut seen);
    assert_eq!(seen.closed, vec![relay]);
    let id = engine.torrent_ids()[0];
    assert_eq!(engine.torrent(id).unwrap().peer_count(), 0);
}
