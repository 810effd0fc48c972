//! How the engine finds peers beyond trackers.
//!
//! BEP 32: with `ipv6`, a second DHT node on the IPv6 socket, with its own
//! id and table; datagrams reach the node of their family, routers and
//! saved nodes are shared out by family, and the state keeps both.
//!
//! BEP 14: with `lsd`, public torrents are announced to the multicast
//! groups (never private ones), and announces heard there become peers.

use std::net::SocketAddr;

use super::tests::{info, test_data};
use super::{DhtSettings, Engine, EngineConfig, Output};
use crate::dht::SavedDht;
use crate::krpc::{Body, Message, NodeId, Query};
use crate::lsd::{LsdMessage, GROUP_V4, GROUP_V6};
use crate::torrent::peers::PeerSource;
use crate::torrent::{StartMode, TorrentInfo};
use crate::TorrentId;
use crate::{Instant, IpFamily, Seed};

fn dual_stack_engine(nodes: Vec<SocketAddr>) -> Engine {
    let mut dht = DhtSettings {
        ipv6: true,
        id6: Some(NodeId([6; 20])),
        nodes,
        ..DhtSettings::default()
    };
    dht.config.id = Some(NodeId([4; 20]));
    dht.config.table.allow_local = true;
    let config = EngineConfig {
        dht: Some(dht),
        ..EngineConfig::default()
    };
    Engine::new(config, Seed::from_u64(32))
}

/// Every datagram the engine sends until it waits that `decode` reads.
fn datagrams<T>(
    engine: &mut Engine,
    now: Instant,
    decode: impl Fn(&[u8]) -> Option<T>,
) -> Vec<(SocketAddr, T)> {
    let mut out = Vec::new();
    loop {
        match engine.poll_output(now) {
            Output::Udp { to, payload } => out.extend(decode(&payload).map(|m| (to, m))),
            Output::Timeout(_) => return out,
            _ => {}
        }
    }
}

/// A KRPC ping from node 9…9.
fn ping() -> Vec<u8> {
    let ping = Message {
        tx: b"aa".to_vec(),
        id: Some(NodeId([9; 20])),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Query(Query::Ping),
    };
    let mut bytes = Vec::new();
    ping.encode(&mut bytes);
    bytes
}

/// The KRPC messages the engine sends until it waits.
fn sent(engine: &mut Engine, now: Instant) -> Vec<(SocketAddr, Message)> {
    datagrams(engine, now, |p| Message::decode(p).ok())
}

#[test]
fn each_family_joins_through_its_own_nodes_under_its_own_id() {
    let v4: SocketAddr = "127.0.0.1:6881".parse().unwrap();
    let v6: SocketAddr = "[::1]:6881".parse().unwrap();
    let mut e = dual_stack_engine(vec![v4, v6]);
    e.handle_timeout(Instant::ZERO);
    let queries = sent(&mut e, Instant::ZERO);
    let from = |addr: SocketAddr| -> Vec<NodeId> {
        queries
            .iter()
            .filter(|(to, m)| *to == addr && matches!(m.body, Body::Query(_)))
            .filter_map(|(_, m)| m.id)
            .collect()
    };
    assert_eq!(from(v4), vec![NodeId([4; 20])], "the IPv4 node's join");
    assert_eq!(from(v6), vec![NodeId([6; 20])], "the IPv6 node's join");
    assert_eq!(queries.len(), 2, "{queries:?}");
}

#[test]
fn a_query_is_answered_by_the_node_of_its_family() {
    let mut e = dual_stack_engine(Vec::new());
    e.handle_timeout(Instant::ZERO);
    let _ = sent(&mut e, Instant::ZERO);
    for (from, id) in [
        ("127.0.0.2:7000", NodeId([4; 20])),
        ("[::1]:7000", NodeId([6; 20])),
    ] {
        let from: SocketAddr = from.parse().unwrap();
        e.handle_udp(Instant::ZERO, from, &ping());
        let answers = sent(&mut e, Instant::ZERO);
        let answer = answers
            .iter()
            .find(|(to, m)| *to == from && matches!(m.body, Body::Response(_)))
            .unwrap_or_else(|| panic!("no answer to {from}: {answers:?}"));
        assert_eq!(answer.1.id, Some(id), "answered by the {from} node");
    }
    // Each node learned the querier of its own family only.
    assert_eq!(e.dht(IpFamily::V4).unwrap().table().len(), 1);
    assert_eq!(e.dht(IpFamily::V6).unwrap().table().len(), 1);
    assert_eq!(e.dht_nodes(), Some(2));
    let saved = SavedDht::decode(&e.dht_state().unwrap().encode()).unwrap();
    assert_eq!(saved.v4.as_ref().map(|p| p.id), Some(NodeId([4; 20])));
    assert_eq!(saved.v6.as_ref().map(|p| p.id), Some(NodeId([6; 20])));
    assert_eq!(
        saved.v6.unwrap().addrs(),
        vec!["[::1]:7000".parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn without_ipv6_an_ipv6_datagram_reaches_no_node() {
    let mut settings = DhtSettings::default();
    settings.config.table.allow_local = true;
    let config = EngineConfig {
        dht: Some(settings),
        ..EngineConfig::default()
    };
    let mut e = Engine::new(config, Seed::from_u64(1));
    e.handle_timeout(Instant::ZERO);
    let _ = sent(&mut e, Instant::ZERO);
    e.handle_udp(Instant::ZERO, "[::1]:7000".parse().unwrap(), &ping());
    assert!(sent(&mut e, Instant::ZERO).is_empty());
    assert!(e.dht(IpFamily::V6).is_none());
    assert_eq!(e.dht_nodes(), Some(0));
}

fn lsd_engine() -> Engine {
    let config = EngineConfig {
        listen_port: 6999,
        lsd: IpFamily::ALL.to_vec(),
        ..EngineConfig::default()
    };
    Engine::new(config, Seed::from_u64(14))
}

/// An LSD engine with one public torrent, announced once: the engine, the
/// torrent, its id, and that first announce.
fn lsd_engine_announcing() -> (
    Engine,
    TorrentInfo,
    TorrentId,
    Vec<(SocketAddr, LsdMessage)>,
) {
    let mut e = lsd_engine();
    let public = info(&test_data(), "http://127.0.0.1:9/announce", false);
    let t0 = Instant::ZERO;
    let id = e.add_torrent(t0, public.clone(), StartMode::Fresh).unwrap();
    e.handle_timeout(t0);
    let first = announces(&mut e, t0);
    (e, public, id, first)
}

/// The LSD announces the engine sends until it waits.
fn announces(engine: &mut Engine, now: Instant) -> Vec<(SocketAddr, LsdMessage)> {
    datagrams(engine, now, |p| LsdMessage::decode(p).ok())
}

#[test]
fn public_torrents_are_announced_on_both_groups_private_ones_never() {
    let mut e = lsd_engine();
    let data = test_data();
    let public = info(&data, "http://127.0.0.1:9/announce", false);
    let secret = info(&[7; 40_000], "http://127.0.0.1:9/announce", true);
    let t0 = Instant::ZERO;
    e.add_torrent(t0, public.clone(), StartMode::Fresh).unwrap();
    e.add_torrent(t0, secret.clone(), StartMode::Fresh).unwrap();
    e.handle_timeout(t0);
    let sent = announces(&mut e, t0);
    let groups: Vec<_> = sent.iter().map(|(to, _)| *to).collect();
    assert_eq!(groups, vec![GROUP_V4, GROUP_V6]);
    for (_, m) in &sent {
        assert_eq!(m.port, 6999);
        assert_eq!(
            m.info_hashes,
            vec![public.info_hash],
            "BEP 27: never the private one"
        );
    }
}

#[test]
fn an_announce_heard_becomes_a_peer_of_that_torrent_until_it_is_removed() {
    let (mut e, public, id, _) = lsd_engine_announcing();
    let t0 = Instant::ZERO;
    let theirs = LsdMessage {
        port: 51413,
        info_hashes: vec![public.info_hash],
        cookie: Some("someone else".into()),
    };
    let from = "192.168.7.9:6771".parse().unwrap();
    e.handle_udp(t0, from, &theirs.encode(GROUP_V4));
    let t = e.torrent(id).unwrap();
    assert_eq!(t.known_peers(PeerSource::Lsd), 1);
    // Removed: no more announces, and what is heard goes nowhere.
    e.remove(t0, id);
    let later = t0 + crate::lsd::ANNOUNCE_INTERVAL;
    e.handle_timeout(later);
    assert!(announces(&mut e, later).is_empty());
    e.handle_udp(later, from, &theirs.encode(GROUP_V4));
    assert!(e.torrent(id).is_none());
}

#[test]
fn a_paused_torrent_is_not_announced_and_is_again_once_resumed() {
    let (mut e, public, id, first) = lsd_engine_announcing();
    let t0 = Instant::ZERO;
    assert!(!first.is_empty());
    e.pause(t0, id);
    // The driver drains the engine after every command.
    let _ = announces(&mut e, t0);
    let later = t0 + crate::lsd::ANNOUNCE_INTERVAL;
    e.handle_timeout(later);
    assert!(announces(&mut e, later).is_empty(), "paused: not announced");
    e.resume(later, id);
    let mut sent = announces(&mut e, later);
    e.handle_timeout(later);
    sent.extend(announces(&mut e, later));
    assert!(
        sent.iter()
            .any(|(_, m)| m.info_hashes == vec![public.info_hash]),
        "resumed: announced at once: {sent:?}"
    );
}

/// A hybrid (BEP 52) is announced under both names, and a host heard
/// under the v2 name is dialled with it.
#[test]
fn a_hybrid_is_announced_under_both_names_and_its_v2_peers_dialled_so() {
    let mut e = lsd_engine();
    let mut hybrid = info(&test_data(), "http://127.0.0.1:9/announce", false);
    hybrid.info_hash_v2 = Some([0x42; 32]);
    let v2 = crate::metainfo::InfoHash::truncated(&[0x42; 32]);
    let t0 = Instant::ZERO;
    let id = e.add_torrent(t0, hybrid.clone(), StartMode::Fresh).unwrap();
    e.handle_timeout(t0);
    for (_, mut m) in announces(&mut e, t0) {
        m.info_hashes.sort();
        let mut both = vec![hybrid.info_hash, v2];
        both.sort();
        assert_eq!(m.info_hashes, both);
    }
    let theirs = LsdMessage {
        port: 51413,
        info_hashes: vec![v2],
        cookie: Some("someone else".into()),
    };
    e.handle_udp(
        t0,
        "192.168.7.9:6771".parse().unwrap(),
        &theirs.encode(GROUP_V4),
    );
    let t = e.torrent(id).unwrap();
    assert_eq!(t.known_peers(PeerSource::Lsd), 1);
    assert_eq!(t.dial_name(&"192.168.7.9:51413".parse().unwrap()), v2);
}
