//! Engines back to back with each encryption mode (the harness of
//! `tests.rs`): who talks to whom, and whether a plaintext BitTorrent
//! handshake ever crosses the wire.

use super::tests::{info, run, seeder_and_leecher_with, test_data, World};
use super::*;
use crate::tracker::server::{ServerConfig, TrackerServer};

/// Seeder and leecher with these modes, found through a tracker: whether
/// the leecher finished, and the world's record.
fn transfer(seeder: EncryptionMode, leecher: EncryptionMode) -> (bool, World, Instant) {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let mut nodes = seeder_and_leecher_with(&info, &data, None, [seeder, leecher]);
    let mut world = World::default();
    world.tracker = Some(TrackerServer::new(
        ServerConfig::default(),
        Seed::from_u64(3),
    ));
    let (finished, at) = run(&mut nodes, &mut world);
    if finished {
        assert_eq!(nodes[1].disk, data);
    }
    (finished, world, at)
}

/// Both `enabled`: the MSE handshake is obfuscated, but the stream after
/// it is plaintext (`CryptoMethods::select`, libtorrent's default), so
/// the BitTorrent handshakes show; `required` on either side hides
/// everything.
#[test]
fn obfuscated_by_default_and_encrypted_when_required() {
    let (finished, world, _) = transfer(EncryptionMode::Enabled, EncryptionMode::Enabled);
    assert!(finished);
    assert!(!world.plaintext_handshakes.is_empty());
    let (finished, world, _) = transfer(EncryptionMode::Enabled, EncryptionMode::Required);
    assert!(finished);
    assert!(
        world.plaintext_handshakes.is_empty(),
        "RC4 hides the handshake"
    );
}

#[test]
fn a_required_seeder_serves_an_enabled_leecher() {
    let (finished, world, _) = transfer(EncryptionMode::Required, EncryptionMode::Enabled);
    assert!(finished);
    assert!(world.plaintext_handshakes.is_empty());
    let (finished, world, _) = transfer(EncryptionMode::Enabled, EncryptionMode::Required);
    assert!(finished);
    assert!(world.plaintext_handshakes.is_empty());
}

/// The leecher's encrypted handshake is refused by a plaintext-only
/// seeder; its next attempt (after the torrent's back-off) is plaintext.
#[test]
fn an_enabled_leecher_falls_back_to_plaintext() {
    let (finished, world, at) = transfer(EncryptionMode::Disabled, EncryptionMode::Enabled);
    assert!(finished);
    assert!(world.plaintext_handshakes[&1] > 0, "the leecher fell back");
    assert!(world.connects[&1] >= 2, "one encrypted try, then plaintext");
    assert!(
        at < Instant::ZERO + Duration::from_secs(120),
        "finished at {at:?}"
    );
}

#[test]
fn required_and_disabled_never_talk() {
    let (finished, world, _) = transfer(EncryptionMode::Disabled, EncryptionMode::Required);
    assert!(!finished);
    assert!(
        !world.plaintext_handshakes.contains_key(&1),
        "the leecher never sends plaintext"
    );
    let (finished, world, _) = transfer(EncryptionMode::Required, EncryptionMode::Disabled);
    assert!(!finished);
    assert!(!world.plaintext_handshakes.contains_key(&0));
}

fn closes(engine: &mut Engine, now: Instant, conn: ConnId) -> bool {
    let mut closed = false;
    loop {
        match engine.poll_output(now) {
            Output::Timeout(_) => return closed,
            Output::Tcp {
                conn: c,
                action: TcpAction::Close,
            } if c == conn => closed = true,
            _ => {}
        }
    }
}

#[test]
fn incoming_garbage_is_dropped_within_the_padding_window() {
    let mut engine = Engine::new(EngineConfig::default(), Seed::from_u64(1));
    let now = Instant::ZERO;
    let from = SocketAddr::from(([127, 0, 0, 9], 5000));
    let conn = engine.handle_tcp_incoming(now, from).unwrap();
    let mut noise = vec![0u8; 96 + 512 + 20];
    crate::rng::Rng::new(Seed::from_u64(2)).fill(&mut noise);
    noise[0] = 0x42;
    engine.handle_tcp_data(now, conn, &noise[..300]);
    assert!(!closes(&mut engine, now, conn), "could still be MSE");
    engine.handle_tcp_data(now, conn, &noise[300..]);
    assert!(closes(&mut engine, now, conn));
    assert_eq!(engine.pending_handshakes(), 0);
}

#[test]
fn required_refuses_plaintext_and_disabled_refuses_mse() {
    let from = SocketAddr::from(([127, 0, 0, 9], 5000));
    let now = Instant::ZERO;
    for (mode, first) in [
        (EncryptionMode::Required, &b"\x13BitTorrent protocol"[..]),
        (EncryptionMode::Disabled, &[0x42; 96][..]),
    ] {
        let config = EngineConfig {
            encryption: mode,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(config, Seed::from_u64(1));
        let conn = engine.handle_tcp_incoming(now, from).unwrap();
        engine.handle_tcp_data(now, conn, first);
        assert!(closes(&mut engine, now, conn), "{mode}");
    }
}

/// An engine with one torrent told of `peer`, and the id of its first
/// dial.
fn dialing(peer: SocketAddr) -> (Engine, ConnId) {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let mut engine = Engine::new(EngineConfig::default(), Seed::from_u64(1));
    let id = engine
        .add_torrent(Instant::ZERO, info, crate::torrent::StartMode::Fresh)
        .unwrap();
    engine.add_peers(Instant::ZERO, id, vec![peer]);
    let conn = next_dial(&mut engine, Instant::ZERO, peer).expect("the torrent dials the peer");
    (engine, conn)
}

fn next_dial(engine: &mut Engine, now: Instant, peer: SocketAddr) -> Option<ConnId> {
    let mut conn = None;
    loop {
        match engine.poll_output(now) {
            Output::Tcp {
                conn: c,
                action: TcpAction::Connect(a),
            } if a == peer => conn = Some(c),
            Output::Timeout(_) => return conn,
            _ => {}
        }
    }
}

/// What the engine sends on `conn` right now.
fn sent(engine: &mut Engine, now: Instant, conn: ConnId) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match engine.poll_output(now) {
            Output::Tcp {
                conn: c,
                action: TcpAction::Send(bytes),
            } if c == conn => out.extend(bytes),
            Output::Timeout(_) => return out,
            _ => {}
        }
    }
}

/// An outgoing handshake to a peer that accepts and never answers fails
/// at its deadline instead of holding a connection slot.
#[test]
fn a_silent_peer_fails_the_outgoing_handshake_in_time() {
    let peer = SocketAddr::from(([127, 0, 0, 9], 6000));
    let (mut engine, conn) = dialing(peer);
    let mut now = Instant::ZERO;
    engine.handle_tcp_connected(now, conn);
    assert!(!closes(&mut engine, now, conn));
    now += encryption::HANDSHAKE_TIMEOUT;
    engine.handle_timeout(now);
    assert!(closes(&mut engine, now, conn));
}

/// A peer that hangs up on our MSE handshake gets a plaintext one on the
/// next attempt.
#[test]
fn a_peer_that_hangs_up_on_mse_is_dialled_again_in_plaintext() {
    let peer = SocketAddr::from(([127, 0, 0, 9], 6000));
    let (mut engine, conn) = dialing(peer);
    let mut now = Instant::ZERO;
    engine.handle_tcp_connected(now, conn);
    let first = sent(&mut engine, now, conn);
    assert!((96..=96 + 512).contains(&first.len()), "Ya and PadA");
    engine.handle_tcp_closed(now, conn);
    let retry = loop {
        now += Duration::from_secs(1);
        assert!(
            now < Instant::ZERO + Duration::from_secs(60),
            "never retried"
        );
        engine.handle_timeout(now);
        if let Some(c) = next_dial(&mut engine, now, peer) {
            break c;
        }
    };
    engine.handle_tcp_connected(now, retry);
    let plain = sent(&mut engine, now, retry);
    assert!(plain.starts_with(b"\x13BitTorrent protocol"));
}
