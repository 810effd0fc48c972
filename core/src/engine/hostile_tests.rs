//! One engine seeding, attacked through its listen port by hand: idle
//! connections by the thousand, one host opening many, peers that
//! handshake and then only idle. Each test checks that an honest peer
//! still gets in while the attack goes on.

use std::time::Duration;

use super::*;
use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use crate::wire::PeerId;
use crate::wire::{Handshake, Reserved};

/// A torrent of 64 KiB of sevens in 16 KiB pieces.
pub(super) fn small_info() -> TorrentInfo {
    let data = vec![7u8; 64 * 1024];
    let mut b = TorrentBuilder::single_file("x.bin", data.len() as u64);
    b.set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    let bytes = b.build(&h.finish()).unwrap();
    TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).unwrap())
}

fn seeding_engine(config: EngineConfig) -> (Engine, InfoHash, TorrentId) {
    let info = small_info();
    let hash = info.info_hash;
    let mut engine = Engine::new(config, Seed::from_u64(9));
    let have = crate::Bitfield::full(info.layout.piece_count());
    let id = engine
        .add_torrent(Instant::ZERO, info, StartMode::Trusted(have))
        .unwrap();
    drain(&mut engine, Instant::ZERO);
    (engine, hash, id)
}

/// Carries out nothing; returns the connections the engine closed.
fn drain(engine: &mut Engine, now: Instant) -> Vec<ConnId> {
    let mut closed = Vec::new();
    loop {
        match engine.poll_output(now) {
            Output::Timeout(_) => return closed,
            Output::Tcp {
                conn,
                action: TcpAction::Close,
            } => closed.push(conn),
            _ => {}
        }
    }
}

fn handshake(hash: InfoHash, n: u8) -> Vec<u8> {
    let mut out = Vec::new();
    Handshake {
        reserved: Reserved::FAST,
        info_hash: hash,
        peer_id: PeerId([n; 20]),
    }
    .encode(&mut out);
    out
}

fn ip(n: u32) -> SocketAddr {
    let [_, a, b, c] = n.to_be_bytes();
    SocketAddr::from(([127, a, b, c], 40_000))
}

/// 10,000 connections from 256 addresses that never send a byte, and an
/// honest peer arriving in the middle of them: it is routed, and the idle
/// ones are all closed within the first-byte deadline.
#[test]
fn idle_connections_cannot_lock_peers_out() {
    let (mut engine, hash, id) = seeding_engine(EngineConfig::default());
    let mut now = Instant::ZERO;
    let mut admitted = Vec::new();
    for i in 0..10_000u32 {
        if let Some(c) = engine.handle_tcp_incoming(now, ip(1 + i % 256)) {
            admitted.push(c);
        }
        if i == 5_000 {
            let honest = engine
                .handle_tcp_incoming(now, SocketAddr::from(([127, 1, 0, 1], 6881)))
                .expect("the honest peer gets a slot");
            engine.handle_tcp_data(now, honest, &handshake(hash, 1));
            assert_eq!(engine.torrent(id).unwrap().peer_count(), 1);
        }
        now += Duration::from_millis(1);
        drain(&mut engine, now);
    }
    assert!(admitted.len() >= 1_000, "newcomers replace old idle ones");
    assert!(engine.pending_handshakes() <= 64);
    now += Duration::from_secs(5);
    engine.handle_timeout(now);
    drain(&mut engine, now);
    assert_eq!(engine.pending_handshakes(), 0);
    assert_eq!(engine.torrent(id).unwrap().peer_count(), 1);
}

/// One host opens 60 connections and handshakes on each: it gets one
/// peer slot; another host still gets in.
#[test]
fn one_host_gets_one_slot() {
    let (mut engine, hash, id) = seeding_engine(EngineConfig::default());
    let now = Instant::ZERO;
    let host = |port| SocketAddr::from(([127, 0, 0, 9], port));
    let mut closed = 0;
    for port in 0..60u16 {
        let c = engine
            .handle_tcp_incoming(now, host(50_000 + port))
            .unwrap();
        engine.handle_tcp_data(now, c, &handshake(hash, 2));
        closed += drain(&mut engine, now).len();
    }
    assert_eq!(closed, 59);
    assert_eq!(engine.torrent(id).unwrap().peer_count(), 1);
    let honest = engine
        .handle_tcp_incoming(now, SocketAddr::from(([127, 0, 0, 10], 6881)))
        .unwrap();
    engine.handle_tcp_data(now, honest, &handshake(hash, 3));
    assert_eq!(engine.torrent(id).unwrap().peer_count(), 2);
}

/// Every slot taken by peers that handshake and then only idle: after a
/// minute of nothing, a newcomer takes the slot of one of them, whose IP
/// then stays away.
#[test]
fn idle_peers_yield_their_slots() {
    let mut config = EngineConfig::default();
    config.torrent.max_peers = 10;
    let (mut engine, hash, id) = seeding_engine(config);
    let mut now = Instant::ZERO;
    for i in 0..10u32 {
        let c = engine.handle_tcp_incoming(now, ip(100 + i)).unwrap();
        engine.handle_tcp_data(now, c, &handshake(hash, 4));
    }
    drain(&mut engine, now);
    assert_eq!(engine.torrent(id).unwrap().peer_count(), 10);
    let late = |engine: &mut Engine, now, n: u32| {
        let c = engine.handle_tcp_incoming(now, ip(200 + n)).unwrap();
        engine.handle_tcp_data(now, c, &handshake(hash, 5));
        let closed = drain(engine, now);
        (c, closed)
    };
    // Early on, the idle peers keep their slots: the newcomer is refused.
    now += Duration::from_secs(10);
    let (c, closed) = late(&mut engine, now, 0);
    assert_eq!(closed, vec![c]);
    // After a minute without a block, one of them makes room.
    now += Duration::from_secs(60);
    let (c, closed) = late(&mut engine, now, 1);
    assert_eq!(closed.len(), 1);
    assert_ne!(closed[0], c, "an idle peer was closed, not the newcomer");
    assert_eq!(engine.torrent(id).unwrap().peer_count(), 10);
    // The IP dropped for idling (the first in, ip(100)) may not take the
    // next slot that frees up: it stays away for a while.
    let again = engine.handle_tcp_incoming(now, ip(100)).unwrap();
    engine.handle_tcp_data(now, again, &handshake(hash, 6));
    assert_eq!(drain(&mut engine, now), vec![again]);
}
