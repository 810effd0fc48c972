//! Engines back to back over uTP (the harness of `tests.rs`, whose
//! datagrams arrive within a millisecond): a transfer with TCP off on
//! both sides, the fallback from a refused TCP connect to uTP, and from an
//! unanswered uTP SYN to TCP, and MSE over uTP.

use super::tests::{info, run, seeder_and_leecher_configured, test_data, Node, World};
use super::*;
use crate::tracker::server::{ServerConfig, TrackerServer};
use crate::utp::{self, is_utp_datagram};

const UTP_ONLY: Transports = Transports {
    tcp: false,
    utp: true,
};

/// Seeder and leecher with these transports and encryption modes, found
/// through a tracker: whether the leecher finished (with the right
/// bytes), and the world's record.
fn transfer(transports: [Transports; 2], encryption: EncryptionMode) -> (bool, World, Vec<Node>) {
    transfer_in(World::default(), transports, encryption)
}

fn transfer_in(
    mut world: World,
    transports: [Transports; 2],
    encryption: EncryptionMode,
) -> (bool, World, Vec<Node>) {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let mut nodes = seeder_and_leecher_configured(&info, &data, |i, config| {
        config.transports = transports[i];
        config.encryption = encryption;
    });
    world.tracker = Some(TrackerServer::new(
        ServerConfig::default(),
        Seed::from_u64(3),
    ));
    let (finished, _) = run(&mut nodes, &mut world);
    if finished {
        assert_eq!(nodes[1].disk, data);
    }
    (finished, world, nodes)
}

/// Payload bytes the node sent in uTP datagrams.
fn utp_bytes(world: &World, node: usize) -> usize {
    world
        .datagrams
        .iter()
        .filter(|(from, _, d)| *from == node && is_utp_datagram(d))
        .map(|(_, _, d)| d.len())
        .sum()
}

/// Whether the node's uTP datagrams carried a plaintext BitTorrent
/// handshake.
fn utp_plaintext_handshake(world: &World, node: usize) -> bool {
    world
        .datagrams
        .iter()
        .filter(|(from, _, d)| *from == node && is_utp_datagram(d))
        .any(|(_, _, d)| d.windows(19).any(|w| w == b"BitTorrent protocol"))
}

#[test]
fn a_torrent_downloads_over_utp_alone() {
    let (finished, world, _) = transfer([UTP_ONLY; 2], EncryptionMode::Disabled);
    assert!(finished);
    assert!(world.connects.is_empty(), "no TCP connect was asked for");
    assert!(
        utp_bytes(&world, 0) > test_data().len(),
        "the data went as uTP datagrams"
    );
    assert!(utp_plaintext_handshake(&world, 1));
}

#[test]
fn mse_runs_over_utp() {
    let (finished, world, _) = transfer([UTP_ONLY; 2], EncryptionMode::Required);
    assert!(finished);
    assert!(!utp_plaintext_handshake(&world, 0));
    assert!(!utp_plaintext_handshake(&world, 1));
}

/// A seeder that takes no TCP: the leecher's TCP connect is refused and
/// the same connection is opened over uTP; its torrent never hears of the
/// refusal.
#[test]
fn a_refused_tcp_connect_falls_back_to_utp() {
    let both = Transports::default();
    let (finished, world, _) = transfer([UTP_ONLY, both], EncryptionMode::Enabled);
    assert!(finished);
    assert_eq!(world.connects.get(&1), Some(&1), "one TCP attempt");
    assert!(utp_bytes(&world, 0) > test_data().len());
}

/// A seeder that takes TCP connections and hangs up at once (libtorrent
/// with incoming TCP off): the leecher's connection is opened again over
/// uTP, its handshake sent again, and the torrent never sees the hang-up.
#[test]
fn a_peer_hanging_up_on_tcp_is_reached_over_utp() {
    for encryption in [EncryptionMode::Disabled, EncryptionMode::Required] {
        let mut world = World::default();
        world.hang_up_tcp.push(0);
        let both = Transports::default();
        let (finished, world, nodes) = transfer_in(world, [both; 2], encryption);
        assert!(finished, "{encryption}");
        assert_eq!(world.connects.get(&1), Some(&1), "one TCP attempt");
        assert!(utp_bytes(&world, 0) > test_data().len());
        let learned = nodes[1].engine.transport.learned.values();
        assert!(learned.into_iter().all(|t| *t == Transport::Utp));
    }
}

/// An engine that learned a peer speaks uTP dials it over uTP; a SYN
/// nobody answers (a TCP-only peer) gives way to TCP on the same
/// connection within libtorrent's three seconds.
#[test]
fn an_unanswered_utp_syn_falls_back_to_tcp() {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let mut engine = Engine::new(EngineConfig::default(), Seed::from_u64(9));
    let id = engine
        .add_torrent(Instant::ZERO, info, StartMode::Fresh)
        .unwrap();
    let peer = SocketAddr::from(([127, 0, 0, 9], 6881));
    engine.transport.learn(peer, Transport::Utp);
    engine.add_peers(Instant::ZERO, id, vec![peer]);
    let mut now = Instant::ZERO;
    let mut syns = 0;
    let mut tcp = None;
    while now < Instant::ZERO + Duration::from_secs(10) && tcp.is_none() {
        let wake = loop {
            match engine.poll_output(now) {
                Output::Timeout(t) => break t,
                Output::Udp { to, payload } if to == peer && is_utp_datagram(&payload) => {
                    syns += 1;
                }
                Output::Tcp {
                    conn,
                    action: TcpAction::Connect(addr),
                } if addr == peer => tcp = Some((conn, now)),
                _ => {}
            }
        };
        now = wake.max(now + Duration::from_millis(1));
        engine.handle_timeout(now);
    }
    let (conn, at) = tcp.expect("TCP after uTP");
    assert_eq!(syns, 2, "the SYN and one retransmission");
    assert!(at <= Instant::ZERO + Duration::from_millis(3100), "{at:?}");
    assert_eq!(engine.transport_of(conn), Some(Transport::Tcp));
    engine.handle_tcp_connected(now, conn);
    assert_eq!(
        engine.torrent(id).unwrap().peer_count(),
        1,
        "the torrent kept its connection"
    );
}

/// A SYN alone (from a forged address, as far as anyone knows) takes no
/// place among the pending handshakes: only a confirmed connection does.
#[test]
fn an_unconfirmed_utp_syn_is_not_a_pending_handshake() {
    use crate::utp::{SocketLimits, UtpSocket};
    let mut engine = Engine::new(EngineConfig::default(), Seed::from_u64(9));
    let us = SocketAddr::from(([127, 0, 0, 1], 6881));
    let mut forger = UtpSocket::new(
        utp::Config::default(),
        SocketLimits::default(),
        Seed::from_u64(4),
    );
    for i in 0..40u8 {
        let _ = forger.connect(Instant::ZERO, us).unwrap();
        while let Some((_, syn)) = forger.poll_transmit(Instant::ZERO) {
            engine.handle_udp(
                Instant::ZERO,
                SocketAddr::from(([10, 0, 0, i], 9)),
                &syn.payload,
            );
        }
        while !matches!(engine.poll_output(Instant::ZERO), Output::Timeout(_)) {}
    }
    assert_eq!(engine.pending_handshakes(), 0);
}

/// A peer dialling in over uTP is admitted like a TCP one, routed by its
/// handshake, and shown (and exchanged) as a uTP peer.
#[test]
fn an_incoming_utp_peer_is_routed_and_shown_as_utp() {
    use crate::utp::{SocketLimits, UtpSocket};
    use crate::wire::{Handshake, PeerId, Reserved};
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let info_hash = info.info_hash;
    let mut engine = Engine::new(EngineConfig::default(), Seed::from_u64(9));
    let id = engine
        .add_torrent(Instant::ZERO, info, StartMode::Fresh)
        .unwrap();
    let (us, them) = (
        SocketAddr::from(([127, 0, 0, 1], 6881)),
        SocketAddr::from(([127, 0, 0, 2], 7000)),
    );
    let mut peer = UtpSocket::new(
        utp::Config::default(),
        SocketLimits::default(),
        Seed::from_u64(5),
    );
    let mut now = Instant::ZERO;
    let conn = peer.connect(now, us).unwrap();
    let mut wrote = false;
    for _ in 0..200 {
        while let Some((to, d)) = peer.poll_transmit(now) {
            assert_eq!(to, us);
            engine.handle_udp(now, them, &d.payload);
        }
        while let Some(e) = peer.poll_event() {
            if e == utp::SocketEvent::Connected(conn) && !wrote {
                let mut hs = Vec::new();
                Handshake {
                    reserved: Reserved::default(),
                    info_hash,
                    peer_id: PeerId([7; 20]),
                }
                .encode(&mut hs);
                assert_eq!(peer.connection(conn).unwrap().write(&hs), hs.len());
                wrote = true;
            }
        }
        loop {
            match engine.poll_output(now) {
                Output::Timeout(_) => break,
                Output::Udp { to, payload } | Output::UdpProbe { to, payload } if to == them => {
                    let _ = peer.handle_datagram(now, us, &payload);
                }
                _ => {}
            }
        }
        now += Duration::from_millis(5);
        engine.handle_timeout(now);
        peer.handle_timeout(now);
    }
    let peers = engine.torrent(id).unwrap().peers_info(now);
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert!(peers[0].utp);
    assert_eq!(peers[0].addr, them);
    assert_eq!(engine.transport_of(peers[0].conn), Some(Transport::Utp));
    // Our handshake came back over uTP.
    let mut got = vec![0; 68];
    assert_eq!(peer.connection(conn).unwrap().read(&mut got), 68);
    assert_eq!(Handshake::decode(&got).unwrap().info_hash, info_hash);

    // The torrent goes and the peer falls silent: the closing link is
    // reset within the close deadline (30 s), not after uTP's own
    // minutes of retransmissions.
    engine.remove(now, id);
    let end = now + Duration::from_secs(31);
    while now < end {
        while !matches!(engine.poll_output(now), Output::Timeout(_)) {}
        now += Duration::from_millis(500);
        engine.handle_timeout(now);
    }
    while !matches!(engine.poll_output(now), Output::Timeout(_)) {}
    assert_eq!(engine.transport.utp_links(), 0);
}

/// With uTP off, a uTP SYN is not taken up and nothing of it reaches
/// the torrents.
#[test]
fn utp_off_takes_no_utp_connections() {
    let tcp_only = Transports {
        tcp: true,
        utp: false,
    };
    let (finished, world, nodes) = transfer([tcp_only, UTP_ONLY], EncryptionMode::Enabled);
    assert!(!finished);
    assert_eq!(utp_bytes(&world, 0), 0, "the seeder never answered");
    assert!(nodes[0]
        .engine
        .torrent(nodes[0].torrent)
        .unwrap()
        .peers_info(Instant::ZERO)
        .is_empty());
}
