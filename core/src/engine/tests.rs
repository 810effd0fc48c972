//! Engines back to back, every output carried out by hand on a virtual
//! clock: a seeder and a leecher find each other through an in-test
//! tracker (HTTP through `Output::Http`), or through a DHT node (UDP through
//! `Output::Udp`), and the leecher downloads everything.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::dht::DhtConfig;
use crate::metainfo::FileSlice;
use crate::metainfo::{Magnet, PeerAddr};
use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use crate::torrent::{TorrentEvent, TorrentState};
use crate::tracker::http::{encode_announce_response, parse_announce_query};
use crate::tracker::server::{ServerConfig, TrackerServer};
use crate::wire::PeerId;

pub(super) struct Node {
    pub(super) engine: Engine,
    addr: SocketAddr,
    /// The torrent's bytes back to back (file slices map into it).
    pub(super) disk: Vec<u8>,
    layout: crate::metainfo::FileLayout,
    pub(super) torrent: TorrentId,
}

pub(super) fn info(data: &[u8], tracker: &str, private: bool) -> TorrentInfo {
    let mut b = TorrentBuilder::single_file("e.bin", data.len() as u64);
    b.set_piece_length(16384);
    b.add_tracker_tier(vec![tracker.to_owned()]);
    b.set_private(private);
    let mut h = PieceHasher::new(16384);
    h.update(data);
    let bytes = b.build(&h.finish()).unwrap();
    TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).unwrap())
}

pub(super) fn test_data() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect()
}

/// A seeder (node 0) and a leecher (node 1) of `info`, on 127.0.0.1:7000
/// and 127.0.0.2:7001 (TCP and UDP alike).
fn seeder_and_leecher(info: &TorrentInfo, data: &[u8], dht: Option<DhtSettings>) -> Vec<Node> {
    seeder_and_leecher_with(info, data, dht, [EncryptionMode::default(); 2])
}

/// [`seeder_and_leecher`] with each node's encryption mode.
pub(super) fn seeder_and_leecher_with(
    info: &TorrentInfo,
    data: &[u8],
    dht: Option<DhtSettings>,
    encryption: [EncryptionMode; 2],
) -> Vec<Node> {
    seeder_and_leecher_configured(info, data, |i, config| {
        config.dht = dht.clone();
        config.encryption = encryption[i];
    })
}

/// [`seeder_and_leecher`] with each node's settings changed by
/// `configure(node, settings)`.
pub(super) fn seeder_and_leecher_configured(
    info: &TorrentInfo,
    data: &[u8],
    configure: impl Fn(usize, &mut EngineConfig),
) -> Vec<Node> {
    (0..2u16)
        .map(|i| {
            let mut config = EngineConfig {
                listen_port: 7000 + i,
                ..EngineConfig::default()
            };
            configure(usize::from(i), &mut config);
            config.peer_id = PeerId([i as u8 + 1; 20]);
            let mut engine = Engine::new(config, Seed::from_u64(u64::from(i)));
            let start = if i == 0 {
                StartMode::Check
            } else {
                StartMode::Fresh
            };
            let torrent = engine
                .add_torrent(Instant::ZERO, info.clone(), start)
                .unwrap();
            assert!(engine
                .add_torrent(Instant::ZERO, info.clone(), StartMode::Fresh)
                .is_none());
            Node {
                engine,
                addr: SocketAddr::from(([127, 0, 0, 1 + i as u8], 7000 + i)),
                layout: info.layout.clone(),
                disk: if i == 0 {
                    data.to_vec()
                } else {
                    vec![0; data.len()]
                },
                torrent,
            }
        })
        .collect()
}

/// Where a file slice lies in a node's `disk`.
fn disk_at(layout: &crate::metainfo::FileLayout, s: &FileSlice) -> usize {
    (layout.file_range(s.file).map_or(0, |r| r.start) + s.offset) as usize
}

/// What stands between the engines besides TCP.
#[derive(Default)]
pub(super) struct World {
    /// Answers HTTP announces (`None`: every HTTP request fails).
    pub(super) tracker: Option<TrackerServer>,
    /// TCP sends that carried a plaintext BitTorrent handshake, by node.
    pub(super) plaintext_handshakes: BTreeMap<usize, usize>,
    /// A plain DHT node at `router_addr`.
    router: Option<Dht>,
    router_addr: Option<SocketAddr>,
    /// Every datagram an engine sent: (from node, to, payload).
    pub(super) datagrams: Vec<(usize, SocketAddr, Vec<u8>)>,
    /// Magnets whose metadata arrived and that were started.
    magnets_started: usize,
    /// Peers node 1 banned (for wrong metadata, or bad pieces).
    bad_metadata: usize,
    /// Connections each node opened, by node.
    pub(super) connects: BTreeMap<usize, usize>,
    /// Nodes that take a TCP connection and close it at once (libtorrent
    /// with incoming TCP off).
    pub(super) hang_up_tcp: Vec<usize>,
    /// Events not handled above, by node.
    events: Vec<(usize, Event)>,
}

/// Carries every output out until node 1 finishes (or virtual time runs
/// out); returns whether it did and the virtual time it took.
pub(super) fn run(nodes: &mut [Node], world: &mut World) -> (bool, Instant) {
    // (node, conn) -> (node, conn)
    let mut links: BTreeMap<(usize, ConnId), (usize, ConnId)> = BTreeMap::new();
    let mut now = Instant::ZERO;
    let deadline = Instant::ZERO + Duration::from_secs(3600);
    // Datagrams in flight: (to, from, payload).
    let mut udp: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)> = VecDeque::new();
    let mut finished = false;
    while now < deadline {
        let mut wakes = Vec::new();
        // Rounds at the same instant until every node is idle (data handed
        // to a node polled earlier in the round is answered at once).
        let mut busy = true;
        while busy {
            busy = false;
            wakes.clear();
            for i in 0..nodes.len() {
                loop {
                    let o = nodes[i].engine.poll_output(now);
                    if !matches!(o, Output::Timeout(_)) {
                        busy = true;
                    }
                    match o {
                        Output::Timeout(t) => {
                            wakes.push(t);
                            break;
                        }
                        Output::Tcp { conn, action } => match action {
                            TcpAction::Connect(addr) => {
                                *world.connects.entry(i).or_default() += 1;
                                let Some(j) = nodes.iter().position(|n| n.addr == addr) else {
                                    nodes[i].engine.handle_tcp_failed(now, conn);
                                    continue;
                                };
                                if world.hang_up_tcp.contains(&j) {
                                    nodes[i].engine.handle_tcp_connected(now, conn);
                                    nodes[i].engine.handle_tcp_closed(now, conn);
                                    continue;
                                }
                                let from =
                                    SocketAddr::from(([127, 0, 0, 1 + i as u8], 40000 + i as u16));
                                let Some(remote) = nodes[j].engine.handle_tcp_incoming(now, from)
                                else {
                                    nodes[i].engine.handle_tcp_failed(now, conn);
                                    continue;
                                };
                                links.insert((i, conn), (j, remote));
                                links.insert((j, remote), (i, conn));
                                nodes[i].engine.handle_tcp_connected(now, conn);
                            }
                            TcpAction::Send(bytes) => {
                                if bytes.windows(19).any(|w| w == b"BitTorrent protocol") {
                                    *world.plaintext_handshakes.entry(i).or_default() += 1;
                                }
                                if let Some(&(j, rc)) = links.get(&(i, conn)) {
                                    nodes[j].engine.handle_tcp_data(now, rc, &bytes);
                                }
                                nodes[i].engine.handle_tcp_sent(now, conn, bytes.len());
                            }
                            TcpAction::Close => {
                                if let Some((j, rc)) = links.remove(&(i, conn)) {
                                    links.remove(&(j, rc));
                                    nodes[j].engine.handle_tcp_closed(now, rc);
                                }
                            }
                        },
                        Output::Http { request, url, .. } => {
                            let query = url.split_once('?').unwrap().1;
                            let a = parse_announce_query(query.as_bytes()).unwrap();
                            let peer = SocketAddr::new(nodes[i].addr.ip(), a.request.port);
                            match &mut world.tracker {
                                Some(tracker) => {
                                    let r = tracker.announce(now, peer, &a.request).unwrap();
                                    let body = encode_announce_response(&r, true);
                                    nodes[i].engine.handle_http(now, request, Ok(body));
                                }
                                None => nodes[i].engine.handle_http(
                                    now,
                                    request,
                                    Err(TrackerError::Unreachable("connection refused".into())),
                                ),
                            }
                        }
                        Output::Disk { torrent, op } => {
                            let result = match op {
                                DiskOp::Check {
                                    piece,
                                    slices,
                                    hash,
                                } => {
                                    let mut h = hash.checker();
                                    for s in slices {
                                        h.update(
                                            &nodes[i].disk[disk_at(&nodes[i].layout, &s)
                                                ..disk_at(&nodes[i].layout, &s)
                                                    + s.length as usize],
                                        );
                                    }
                                    DiskResult::Checked {
                                        piece,
                                        ok: h.finish(),
                                    }
                                }
                                DiskOp::Verify {
                                    first,
                                    pieces,
                                    blocks,
                                    slices,
                                } => {
                                    let verdicts = run_verdicts(&pieces, &blocks);
                                    let ok = verdicts.iter().all(|&v| v);
                                    if ok {
                                        let all: Vec<u8> = blocks.concat();
                                        let mut at = 0;
                                        for s in slices {
                                            let (o, l) =
                                                (disk_at(&nodes[i].layout, &s), s.length as usize);
                                            nodes[i].disk[o..o + l]
                                                .copy_from_slice(&all[at..at + l]);
                                            at += l;
                                        }
                                    }
                                    DiskResult::Verified {
                                        first,
                                        verdicts,
                                        written: ok,
                                    }
                                }
                                DiskOp::CreateEmpty { .. } => DiskResult::Created { ok: true },
                                DiskOp::Write {
                                    block,
                                    blocks,
                                    slices,
                                    hasher,
                                } => {
                                    let data = blocks.concat();
                                    let mut at = 0;
                                    for s in slices {
                                        let (o, l) =
                                            (disk_at(&nodes[i].layout, &s), s.length as usize);
                                        nodes[i].disk[o..o + l].copy_from_slice(&data[at..at + l]);
                                        at += l;
                                    }
                                    DiskResult::Written {
                                        block,
                                        ok: true,
                                        hash: crate::engine::write_hash(hasher, &blocks),
                                    }
                                }
                                DiskOp::Read {
                                    conn,
                                    block,
                                    slices,
                                } => {
                                    let mut d = Vec::new();
                                    for s in slices {
                                        d.extend_from_slice(
                                            &nodes[i].disk[disk_at(&nodes[i].layout, &s)
                                                ..disk_at(&nodes[i].layout, &s)
                                                    + s.length as usize],
                                        );
                                    }
                                    DiskResult::Read {
                                        conn,
                                        block,
                                        data: Some(d),
                                    }
                                }
                            };
                            nodes[i].engine.handle_disk(now, torrent, result);
                        }
                        Output::Event(Event::Torrent(_, TorrentEvent::Finished)) if i == 1 => {
                            finished = true;
                        }
                        // Loopback carries probes of any size.
                        Output::Udp { to, payload } | Output::UdpProbe { to, payload } => {
                            world.datagrams.push((i, to, payload.clone()));
                            udp.push_back((to, nodes[i].addr, payload));
                        }
                        Output::Event(Event::Torrent(id, TorrentEvent::MetadataReceived)) => {
                            // A fresh disk: nothing to check.
                            nodes[i]
                                .engine
                                .start_magnet(now, id, StartMode::Fresh)
                                .unwrap();
                            world.magnets_started += 1;
                        }
                        Output::Event(Event::Torrent(_, TorrentEvent::PeerBanned(_))) if i == 1 => {
                            world.bad_metadata += 1;
                        }
                        Output::Event(e) => world.events.push((i, e)),
                        Output::Resolve { .. } | Output::WebSeed { .. } => {}
                    }
                }
            }
        }
        if finished {
            // Stop once this round's outputs (the tracker's `completed`)
            // are carried out.
            return (true, now);
        }
        // Datagrams arrive at once (and whatever the router answers, in
        // the next round).
        while let Some((to, from, payload)) = udp.pop_front() {
            if let Some(j) = nodes.iter().position(|n| n.addr == to) {
                nodes[j].engine.handle_udp(now, from, &payload);
            } else if let (Some(router), Some(addr)) = (&mut world.router, world.router_addr) {
                if to == addr {
                    router.handle_datagram(now, from, &payload);
                }
            }
        }
        if let Some(router) = &mut world.router {
            if router.poll_timeout().is_some_and(|t| t <= now) {
                router.handle_timeout(now);
            }
            while let Some((to, payload)) = router.poll_transmit() {
                if let Some(j) = nodes.iter().position(|n| n.addr == to) {
                    nodes[j]
                        .engine
                        .handle_udp(now, world.router_addr.unwrap(), &payload);
                }
            }
            while router.poll_event().is_some() {}
            if let Some(t) = router.poll_timeout() {
                wakes.push(t);
            }
        }
        // Due timers fire; otherwise time moves a millisecond (a round of
        // messages) or to the next deadline.
        let next = wakes.into_iter().min().unwrap();
        now = next.max(now + Duration::from_millis(1));
        for n in nodes.iter_mut() {
            n.engine.handle_timeout(now);
        }
    }
    (false, now)
}

#[test]
fn two_engines_and_a_tracker() {
    let data = test_data();
    let url = "http://127.0.0.1:9/announce";
    let info = info(&data, url, false);
    let mut nodes = seeder_and_leecher(&info, &data, None);
    let mut world = World {
        tracker: Some(TrackerServer::new(
            ServerConfig::default(),
            Seed::from_u64(3),
        )),
        ..World::default()
    };
    let (finished, _) = run(&mut nodes, &mut world);
    assert!(finished, "the leecher never finished");
    assert_eq!(nodes[1].disk, data);
    assert!(nodes[1]
        .engine
        .torrent(nodes[1].torrent)
        .unwrap()
        .is_finished());
    let tracker = world.tracker.as_ref().unwrap();
    assert_eq!(tracker.scrape(&[info.info_hash])[0].downloaded, 1);
    assert!(world.datagrams.is_empty(), "no DHT, no datagrams");
}

/// A seeder with `goal` and a leecher, run until the leecher has it all:
/// the nodes, what they said, the seeder's id, whether the leecher
/// finished and when.
fn seed_with_goal(goal: SeedingGoal) -> (Vec<Node>, World, TorrentId, bool, Instant) {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let mut nodes = seeder_and_leecher(&info, &data, None);
    let seeder = nodes[0].torrent;
    nodes[0]
        .engine
        .set_seeding_goal(Instant::ZERO, seeder, Some(goal));
    let mut world = World {
        tracker: Some(TrackerServer::new(
            ServerConfig::default(),
            Seed::from_u64(3),
        )),
        ..World::default()
    };
    let (finished, at) = run(&mut nodes, &mut world);
    (nodes, world, seeder, finished, at)
}

/// The seeder's goal is a share ratio of 1: once it has uploaded the
/// whole torrent to the leecher it is paused and says why.
#[test]
fn a_seed_reaching_its_share_ratio_is_paused() {
    let data = test_data();
    let goal = SeedingGoal {
        ratio: Some(1.0),
        ..SeedingGoal::default()
    };
    let (mut nodes, world, seeder, finished, at) = seed_with_goal(goal);
    assert!(finished, "the leecher never finished");
    let later = at + Duration::from_secs(1);
    nodes[0].engine.handle_timeout(later);
    let outs = drain(&mut nodes[0].engine, later);
    let engine = &nodes[0].engine;
    let t = engine.torrent(seeder).unwrap();
    assert_eq!(t.counters().0, data.len() as u64);
    assert_eq!(t.wanted_bytes(), data.len() as u64);
    assert_eq!(t.state(), TorrentState::Paused);
    let reached = Output::Event(Event::SeedingGoalReached(seeder));
    let told = world
        .events
        .iter()
        .any(|(i, e)| *i == 0 && *e == Event::SeedingGoalReached(seeder));
    assert!(told || outs.contains(&reached), "{outs:?}");
    let (uploaded, _) = engine.totals();
    assert_eq!(uploaded, data.len() as u64);
}

/// The seeder may stay idle 3 s: it is not stopped while it uploads,
/// only once nothing more is asked. (On this model the transfer takes no
/// virtual time, so the count restarting at each upload is shown by
/// `policy_tests::inactivity_counts_from_the_last_sample_that_saw_an_upload`.)
#[test]
fn an_inactivity_goal_counts_from_the_last_upload() {
    let data = test_data();
    let goal = SeedingGoal {
        inactive_time: Some(Duration::from_secs(3)),
        ..SeedingGoal::default()
    };
    let (mut nodes, world, seeder, finished, at) = seed_with_goal(goal);
    assert!(finished, "the seeder stopped while uploading");
    let stopped_early = world
        .events
        .iter()
        .any(|(i, e)| *i == 0 && *e == Event::SeedingGoalReached(seeder));
    assert!(!stopped_early, "stopped before the download ended");
    let t = nodes[0].engine.torrent(seeder).unwrap();
    assert_eq!(t.counters().0, data.len() as u64);
    // Every second after, nothing is uploaded: stopped within idle + 2 ticks.
    let mut paused_at = None;
    for s in 1..=6 {
        let later = at + Duration::from_secs(s);
        nodes[0].engine.handle_timeout(later);
        let _ = drain(&mut nodes[0].engine, later);
        let state = nodes[0].engine.torrent(seeder).unwrap().state();
        if state == TorrentState::Paused {
            paused_at = Some(s);
            break;
        }
    }
    let paused_at = paused_at.expect("never stopped for inactivity");
    assert!(
        paused_at >= 2,
        "stopped {paused_at} s after the last upload"
    );
    eprintln!("download took {at:?}; stopped {paused_at} s after");
}

/// Everything `engine` wants done now.
fn drain(engine: &mut Engine, now: Instant) -> Vec<Output> {
    std::iter::from_fn(|| Some(engine.poll_output(now)))
        .take_while(|o| !matches!(o, Output::Timeout(_)))
        .take(10_000)
        .collect()
}

#[test]
fn recheck_and_reannounce_through_the_engine() {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let mut engine = Engine::new(EngineConfig::default(), Seed::from_u64(4));
    let n = info.layout.piece_count();
    let id = engine
        .add_torrent(
            Instant::ZERO,
            info,
            StartMode::Trusted(crate::bitfield::Bitfield::full(n)),
        )
        .unwrap();
    let first = drain(&mut engine, Instant::ZERO)
        .into_iter()
        .find_map(|o| match o {
            Output::Http { request, .. } => Some(request),
            _ => None,
        })
        .expect("the started announce");
    let reply = crate::tracker::AnnounceResponse {
        interval: 1800,
        ..Default::default()
    };
    engine.handle_http(
        Instant::ZERO,
        first,
        Ok(encode_announce_response(&reply, true)),
    );
    let later = Instant::ZERO + Duration::from_secs(5);
    let http = |outputs: Vec<Output>| {
        outputs
            .into_iter()
            .filter(|o| matches!(o, Output::Http { .. }))
            .count()
    };
    engine.handle_timeout(later);
    assert_eq!(http(drain(&mut engine, later)), 0, "next one in 30 minutes");
    engine.reannounce(later, id);
    assert_eq!(http(drain(&mut engine, later)), 1, "at once");
    engine.recheck(later, id);
    let checks = drain(&mut engine, later)
        .into_iter()
        .filter(|o| {
            matches!(
                o,
                Output::Disk {
                    op: DiskOp::Check { .. },
                    ..
                }
            )
        })
        .count();
    assert!(checks > 0, "pieces go to be checked");
    let t = engine.torrent(id).unwrap();
    assert_eq!(t.state(), TorrentState::Checking);
    assert_eq!(t.have().count(), 0);
}

/// DHT settings for a test network on loopback that joins through `router`.
fn loopback_dht(router: SocketAddr) -> DhtSettings {
    let mut settings = DhtSettings {
        nodes: vec![router],
        ..DhtSettings::default()
    };
    settings.config.table.allow_local = true;
    settings
}

#[test]
fn leecher_finds_the_seeder_through_the_dht() {
    let data = test_data();
    // The tracker never answers: the DHT is the only way to meet.
    let public = info(&data, "http://127.0.0.1:9/announce", false);
    let router_addr = SocketAddr::from(([127, 0, 0, 1], 6881));
    let mut router_config = DhtConfig::default();
    router_config.table.allow_local = true;
    let mut world = World {
        router: Some(Dht::new(Instant::ZERO, router_config, Seed::from_u64(9))),
        router_addr: Some(router_addr),
        ..World::default()
    };
    let mut nodes = seeder_and_leecher(&public, &data, Some(loopback_dht(router_addr)));
    // The leecher also has a private torrent: it must never reach the DHT.
    let secret = info(&[7; 40_000], "http://127.0.0.1:9/announce", true);
    nodes[1]
        .engine
        .add_torrent(Instant::ZERO, secret.clone(), StartMode::Fresh)
        .unwrap();
    let (finished, at) = run(&mut nodes, &mut world);
    assert!(finished, "the leecher never found the seeder");
    assert_eq!(nodes[1].disk, data);
    // The leecher's first lookup came before the seeder had announced; a
    // dry lookup is retried after 30 s, not the 5-minute search interval.
    assert!(at <= Instant::ZERO + Duration::from_secs(120), "{at:?}");
    let mentions = |hash: &InfoHash| {
        world
            .datagrams
            .iter()
            .filter(|(_, _, p)| p.windows(20).any(|w| w == hash.0))
            .count()
    };
    assert!(
        mentions(&public.info_hash) >= 2,
        "get_peers and announce_peer"
    );
    assert_eq!(
        mentions(&secret.info_hash),
        0,
        "BEP 27: private stays off the DHT"
    );
    // Both engines announced themselves to the router (announce_peer).
    let announced = world
        .datagrams
        .iter()
        .filter(|(_, to, p)| *to == router_addr && p.windows(13).any(|w| w == b"announce_peer"))
        .map(|(i, _, _)| *i)
        .collect::<std::collections::BTreeSet<_>>();
    assert!(announced.contains(&0), "the seeder announced");
}

/// A seeder with the torrent and a leecher with only a magnet link.
fn seeder_and_magnet(
    info: &TorrentInfo,
    data: &[u8],
    magnet: &Magnet,
    dht: Option<DhtSettings>,
) -> Vec<Node> {
    let mut nodes = seeder_and_leecher(info, data, dht.clone());
    let mut config = EngineConfig {
        listen_port: 7001,
        dht,
        ..EngineConfig::default()
    };
    config.peer_id = PeerId([2; 20]);
    let mut engine = Engine::new(config, Seed::from_u64(5));
    let torrent = engine.add_magnet(Instant::ZERO, magnet).unwrap();
    assert!(
        engine.add_magnet(Instant::ZERO, magnet).is_none(),
        "added twice"
    );
    let state = engine.torrent(torrent).map(Torrent::state);
    assert_eq!(state, Some(TorrentState::FetchingMetadata));
    nodes[1].engine = engine;
    nodes[1].torrent = torrent;
    nodes
}

#[test]
fn a_magnet_link_with_a_peer_address_downloads() {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let magnet = Magnet {
        info_hash: Some(info.info_hash),
        peers: vec![PeerAddr::Ip(SocketAddr::from(([127, 0, 0, 1], 7000)))],
        ..Magnet::default()
    };
    let mut nodes = seeder_and_magnet(&info, &data, &magnet, None);
    let mut world = World::default();
    let (finished, _) = run(&mut nodes, &mut world);
    assert!(finished, "the magnet leecher never finished");
    assert_eq!(world.magnets_started, 1);
    assert_eq!(nodes[1].disk, data);
    let t = nodes[1].engine.torrent(nodes[1].torrent).unwrap();
    assert_eq!(t.info_hash(), info.info_hash);
    assert_eq!(t.state(), TorrentState::Seeding);
    // The connection made while fetching the metadata carried the
    // download: one connection to the one peer, over the whole magnet.
    assert_eq!(world.connects.get(&1), Some(&1));
    let file = nodes[1]
        .engine
        .magnet_torrent_file(nodes[1].torrent)
        .unwrap();
    assert_eq!(
        Metainfo::from_bytes(&file).unwrap().info_hash,
        info.info_hash
    );
}

#[test]
fn a_bare_magnet_link_finds_its_peers_on_the_dht() {
    let data = test_data();
    let info = info(&data, "http://127.0.0.1:9/announce", false);
    let router_addr = SocketAddr::from(([127, 0, 0, 1], 6881));
    let mut router_config = DhtConfig::default();
    router_config.table.allow_local = true;
    let mut world = World {
        router: Some(Dht::new(Instant::ZERO, router_config, Seed::from_u64(9))),
        router_addr: Some(router_addr),
        ..World::default()
    };
    let magnet = Magnet {
        info_hash: Some(info.info_hash),
        ..Magnet::default()
    };
    let mut nodes = seeder_and_magnet(&info, &data, &magnet, Some(loopback_dht(router_addr)));
    let (finished, at) = run(&mut nodes, &mut world);
    assert!(finished, "the magnet leecher never finished");
    assert_eq!(world.magnets_started, 1);
    assert_eq!(nodes[1].disk, data);
    assert!(at <= Instant::ZERO + Duration::from_secs(180), "{at:?}");
}

#[test]
fn a_peer_serving_wrong_metadata_does_not_stop_a_magnet() {
    let data = test_data();
    let real = info(&data, "http://127.0.0.1:9/announce", false);
    let magnet = Magnet {
        info_hash: Some(real.info_hash),
        // The liar first.
        peers: vec![
            PeerAddr::Ip(SocketAddr::from(([127, 0, 0, 3], 7002))),
            PeerAddr::Ip(SocketAddr::from(([127, 0, 0, 1], 7000))),
        ],
        ..Magnet::default()
    };
    let mut nodes = seeder_and_magnet(&real, &data, &magnet, None);
    // A seeder of other content that answers to our info-hash and serves
    // its own (wrong) info dictionary of the same size.
    let other: Vec<u8> = data.iter().map(|b| b.wrapping_add(1)).collect();
    let wrong = info(&other, "http://127.0.0.1:9/announce", false);
    assert_eq!(
        wrong.metadata.as_ref().unwrap().len(),
        real.metadata.as_ref().unwrap().len()
    );
    let liar_info = TorrentInfo {
        info_hash: real.info_hash,
        ..wrong
    };
    let mut config = EngineConfig {
        listen_port: 7002,
        ..EngineConfig::default()
    };
    config.peer_id = PeerId([3; 20]);
    let mut engine = Engine::new(config, Seed::from_u64(7));
    // Ready at once (the honest seeder checks its disk first), so the liar
    // is the first peer asked.
    let pieces = liar_info.layout.piece_count();
    let torrent = engine
        .add_torrent(
            Instant::ZERO,
            liar_info,
            StartMode::Trusted(crate::bitfield::Bitfield::full(pieces)),
        )
        .unwrap();
    nodes.push(Node {
        engine,
        addr: SocketAddr::from(([127, 0, 0, 3], 7002)),
        disk: other,
        layout: real.layout.clone(),
        torrent,
    });
    let mut world = World::default();
    let (finished, _) = run(&mut nodes, &mut world);
    assert!(finished, "the magnet leecher never finished");
    assert_eq!(world.magnets_started, 1);
    assert_eq!(world.bad_metadata, 1, "the liar was asked, and caught");
    assert_eq!(world.connects.get(&1), Some(&2), "one connection per peer");
    assert_eq!(nodes[1].disk, data);
    let t = nodes[1].engine.torrent(nodes[1].torrent).unwrap();
    assert_eq!(t.info_hash(), real.info_hash);
}

#[test]
fn a_magnets_so_selects_the_files_downloaded() {
    // Two files of four pieces each; the link asks for the second only
    // (BEP 53 `so=1`).
    let data = test_data()[..8 * 16384].to_vec();
    let mut b = TorrentBuilder::multi_file("two");
    b.add_file(vec!["a".into()], 4 * 16384)
        .add_file(vec!["b".into()], 4 * 16384)
        .set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    let bytes = b.build(&h.finish()).unwrap();
    let info = TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).unwrap());
    let magnet = Magnet {
        info_hash: Some(info.info_hash),
        peers: vec![PeerAddr::Ip(SocketAddr::from(([127, 0, 0, 1], 7000)))],
        select_only: vec![1..=1],
        ..Magnet::default()
    };
    let mut nodes = seeder_and_magnet(&info, &data, &magnet, None);
    let mut world = World::default();
    let (finished, _) = run(&mut nodes, &mut world);
    assert!(finished, "the magnet leecher never finished");
    assert_eq!(&nodes[1].disk[4 * 16384..], &data[4 * 16384..]);
    assert!(
        nodes[1].disk[..4 * 16384].iter().all(|&x| x == 0),
        "file 0 was downloaded"
    );
    let t = nodes[1].engine.torrent(nodes[1].torrent).unwrap();
    assert_eq!(t.counters().2, 0);
}
