//! Small networks of nodes on 127.0.0.1 with instant delivery.

use std::collections::BTreeMap;

use super::*;
use crate::dht::{SavedDht, SavedNode};

struct Net {
    nodes: Vec<Dht>,
    addrs: Vec<SocketAddr>,
    now: Instant,
    events: Vec<Vec<DhtEvent>>,
    delivered: u64,
}

fn config() -> DhtConfig {
    DhtConfig {
        table: TableConfig {
            allow_local: true,
            ..TableConfig::default()
        },
        ..DhtConfig::default()
    }
}

impl Net {
    fn new(n: usize, seed: u64) -> Net {
        Net::on(n, seed, |i| {
            SocketAddr::from(([127, 0, 0, 1], 20000 + i as u16))
        })
    }

    /// `n` nodes at `addr(i)`.
    fn on(n: usize, seed: u64, addr: impl Fn(usize) -> SocketAddr) -> Net {
        let addrs: Vec<SocketAddr> = (0..n).map(addr).collect();
        let nodes = (0..n)
            .map(|i| {
                Dht::new(
                    Instant::ZERO,
                    config(),
                    Seed::from_u64(seed * 1000 + i as u64),
                )
            })
            .collect();
        Net {
            nodes,
            addrs,
            now: Instant::ZERO,
            events: vec![Vec::new(); n],
            delivered: 0,
        }
    }

    /// Delivers datagrams until quiet; then advances to the next timer
    /// `rounds` times.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            loop {
                let mut any = false;
                for i in 0..self.nodes.len() {
                    while let Some((to, bytes)) = self.nodes[i].poll_transmit() {
                        any = true;
                        self.delivered += 1;
                        if let Some(j) = self.addrs.iter().position(|a| *a == to) {
                            let from = self.addrs[i];
                            self.nodes[j].handle_datagram(self.now, from, &bytes);
                        }
                    }
                    while let Some(e) = self.nodes[i].poll_event() {
                        self.events[i].push(e);
                    }
                }
                if !any {
                    break;
                }
            }
            let next = self
                .nodes
                .iter()
                .filter_map(Dht::poll_timeout)
                .min()
                .unwrap();
            self.now = next.max(self.now + Duration::from_millis(1));
            for n in &mut self.nodes {
                n.handle_timeout(self.now);
            }
        }
    }
}

#[test]
fn ping_pong_and_tables_fill() {
    let mut net = Net::new(2, 1);
    let b = net.addrs[1];
    net.nodes[0].ping(Instant::ZERO, b);
    net.run(1);
    assert!(matches!(net.events[0][0], DhtEvent::Pong { node } if node.addr == b));
    assert_eq!(net.nodes[0].table().len(), 1);
    assert_eq!(net.nodes[1].table().len(), 1);
}

#[test]
fn thirty_nodes_bootstrap_find_each_other_and_get_peers_finds_the_announcer() {
    let mut net = Net::new(30, 2);
    let boot = net.addrs[0];
    for i in 1..30 {
        net.nodes[i].bootstrap(Instant::ZERO, &[boot]);
        net.run(2);
    }
    // A second round lets early joiners learn about late ones.
    for i in 1..30 {
        let own = net.nodes[i].id();
        net.nodes[i].find_node(net.now, own);
    }
    net.run(3);
    let sizes: Vec<usize> = net.nodes.iter().map(|n| n.table().len()).collect();
    assert!(sizes.iter().all(|&s| s >= 8), "{sizes:?}");

    let hash = InfoHash([0x42; 20]);
    let announcer = 7;
    let lookup = net.nodes[announcer].announce(net.now, hash, 6881, false);
    net.run(3);
    assert!(
        net.events[announcer].iter().any(
            |e| matches!(e, DhtEvent::Announced { lookup: l, nodes } if *l == lookup && *nodes > 0)
        ),
        "{:?}",
        net.events[announcer]
    );
    let seeker = 23;
    let lookup = net.nodes[seeker].get_peers(net.now, hash);
    net.run(3);
    let found: Vec<SocketAddr> = net.events[seeker]
        .iter()
        .filter_map(|e| match e {
            DhtEvent::Peers {
                lookup: l, peers, ..
            } if *l == lookup => Some(peers.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let expected = SocketAddr::new(net.addrs[announcer].ip(), 6881);
    assert!(found.contains(&expected), "{found:?}");
    assert!(net.events[seeker]
        .iter()
        .any(|e| matches!(e, DhtEvent::LookupDone { lookup: l, .. } if *l == lookup)));
}

/// BEP 33 both ways: nodes keep who announced as a seed, answer a
/// `scrape` with their filters, and a scrape lookup merges and counts
/// them (each node on an IP of its own: the filters count addresses).
#[test]
fn a_scrape_counts_seeds_and_leechers() {
    let mut net = Net::on(24, 9, |i| {
        SocketAddr::from(([127, 0, 1, i as u8 + 1], 6881))
    });
    let boot = net.addrs[0];
    for i in 1..24 {
        net.nodes[i].bootstrap(Instant::ZERO, &[boot]);
        net.run(2);
    }
    let hash = InfoHash([0x33; 20]);
    for (i, seed) in [(3, true), (4, true), (5, false), (6, false), (7, false)] {
        net.nodes[i].announce_as(net.now, hash, 7000, false, seed);
        net.run(3);
    }
    let seeker = 20;
    let lookup = net.nodes[seeker].scrape(net.now, hash);
    net.run(3);
    let scraped = net.events[seeker].iter().find_map(|e| match e {
        DhtEvent::Scraped {
            lookup: l,
            seeders,
            leechers,
            ..
        } if *l == lookup => Some((*seeders, *leechers)),
        _ => None,
    });
    assert_eq!(scraped, Some((2, 3)), "{:?}", net.events[seeker]);
    // A plain lookup asks for no filters and reports none.
    let plain = net.nodes[seeker].get_peers(net.now, hash);
    net.run(3);
    assert!(!net.events[seeker]
        .iter()
        .any(|e| matches!(e, DhtEvent::Scraped { lookup: l, .. } if *l == plain)));
}

#[test]
fn bad_tokens_forged_replies_and_floods_are_refused() {
    let mut net = Net::new(2, 3);
    let (a, b) = (net.addrs[0], net.addrs[1]);
    // An announce with a made-up token is refused with error 203.
    let mut bytes = Vec::new();
    Message {
        tx: b"zz".to_vec(),
        id: Some(NodeId([9; 20])),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Query(Query::AnnouncePeer {
            info_hash: InfoHash([1; 20]),
            port: 1234,
            token: b"madeup".to_vec(),
            implied_port: false,
            seed: false,
        }),
    }
    .encode(&mut bytes);
    net.nodes[1].handle_datagram(Instant::ZERO, a, &bytes);
    let (_, answer) = net.nodes[1].poll_transmit().unwrap();
    let m = Message::decode(&answer).unwrap();
    assert_eq!(m.body, Body::Error(code::PROTOCOL, "bad token".into()));
    assert!(net.nodes[1].store().is_empty());

    // A reply nobody asked for is dropped and counted.
    let mut forged = Vec::new();
    Message {
        tx: vec![1, 2],
        id: Some(NodeId([8; 20])),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Response(Response::default()),
    }
    .encode(&mut forged);
    net.nodes[0].handle_datagram(Instant::ZERO, b, &forged);
    assert_eq!(net.nodes[0].unmatched_replies(), 1);
    assert!(
        net.nodes[0].table().is_empty(),
        "forged replies do not enter the table"
    );

    // A flood of pings from one IP is cut off by the rate limit.
    let mut ping = Vec::new();
    Message {
        tx: vec![3],
        id: Some(NodeId([7; 20])),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Query(Query::Ping),
    }
    .encode(&mut ping);
    let mut answers = 0;
    for _ in 0..1000 {
        net.nodes[1].handle_datagram(Instant::ZERO, a, &ping);
        while net.nodes[1].poll_transmit().is_some() {
            answers += 1;
        }
    }
    assert!(answers < 200, "{answers} answers to a flood");
    assert!(net.nodes[1].dropped_queries() > 800);
}

#[test]
fn read_only_nodes_answer_nothing_and_stay_out_of_tables() {
    let mut net = Net::new(2, 4);
    net.nodes[0] = Dht::new(
        Instant::ZERO,
        DhtConfig {
            read_only: true,
            ..config()
        },
        Seed::from_u64(99),
    );
    let (a, b) = (net.addrs[0], net.addrs[1]);
    net.nodes[0].ping(Instant::ZERO, b);
    net.run(1);
    assert!(
        net.nodes[1].table().is_empty(),
        "a read-only node is not inserted"
    );
    assert_eq!(net.nodes[0].table().len(), 1, "it still learns of others");
    net.nodes[1].ping(net.now, a);
    net.run(1);
    assert!(net.events[1].is_empty(), "no answer from a read-only node");
    let _ = BTreeMap::<u8, u8>::new();
}

#[test]
fn state_round_trips() {
    let mut net = Net::new(5, 5);
    let boot = net.addrs[0];
    for i in 1..5 {
        net.nodes[i].bootstrap(Instant::ZERO, &[boot]);
        net.run(2);
    }
    let saved = SavedDht::of([&net.nodes[3]]).encode();
    let part = SavedDht::decode(&saved).unwrap().v4.unwrap();
    assert_eq!(part.id, net.nodes[3].id());
    assert_eq!(part.nodes.len(), net.nodes[3].table().len());
}

#[test]
fn a_loaded_state_keeps_at_most_a_table_of_nodes() {
    // The file is outside data and each node loaded costs a bootstrap
    // query: a state with more nodes than a table holds is cut short.
    let nodes: Vec<(NodeId, SocketAddr)> = (0..MAX_STATE_NODES as u32 + 20)
        .map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            (NodeId([c; 20]), SocketAddr::from(([10, a, b, c], 6881)))
        })
        .collect();
    let mut bytes = b"d2:id20:".to_vec();
    bytes.extend_from_slice(&[7; 20]);
    bytes.extend_from_slice(format!("5:nodes{}:", nodes.len() * 26).as_bytes());
    for (id, addr) in &nodes {
        bytes.extend_from_slice(&id.0);
        crate::compact::encode(&mut bytes, addr);
    }
    bytes.push(b'e');
    let loaded = SavedDht::decode(&bytes).unwrap();
    assert_eq!(loaded.v4.as_ref().unwrap().nodes.len(), MAX_STATE_NODES);
    let resaved = SavedDht {
        v4: Some(SavedNode {
            id: NodeId([7; 20]),
            nodes,
        }),
        v6: None,
    };
    assert_eq!(SavedDht::decode(&resaved.encode()), Some(loaded));
}

#[test]
fn a_crawl_harvests_every_announced_hash_once() {
    let mut net = Net::new(30, 9);
    let boot = net.addrs[0];
    for i in 1..30 {
        net.nodes[i].bootstrap(Instant::ZERO, &[boot]);
    }
    net.run(20);
    let hashes: Vec<InfoHash> = (0..40u8)
        .map(|i| InfoHash([i.wrapping_mul(37); 20]))
        .collect();
    for (k, h) in hashes.iter().enumerate() {
        let i = 1 + k % 28;
        let now = net.now;
        net.nodes[i].announce(now, *h, 7000, false);
    }
    net.run(20);
    let crawler = 29;
    let now = net.now;
    net.nodes[crawler].crawl(now, crate::dht::crawler::CrawlConfig::default());
    net.run(40);
    let harvested: Vec<InfoHash> = net.events[crawler]
        .iter()
        .filter_map(|e| match e {
            DhtEvent::Harvested { info_hash, .. } => Some(*info_hash),
            _ => None,
        })
        .collect();
    let distinct: BTreeSet<InfoHash> = harvested.iter().copied().collect();
    assert_eq!(distinct.len(), harvested.len(), "reported once each");
    for h in &hashes {
        assert!(distinct.contains(h), "{h} not harvested");
    }
    let stats = net.nodes[crawler].crawl_stats().expect("crawling");
    assert!(stats.samples_sent >= 28, "{stats:?}");
    assert_eq!(stats.harvested as usize, distinct.len());

    // Passive: a get_peers sent to the crawler (the node closest to its own
    // id) reports its info-hash.
    let asked = InfoHash(net.nodes[crawler].id().0);
    let now = net.now;
    net.nodes[3].get_peers(now, asked);
    net.run(5);
    let passive = net.events[crawler].iter().any(|e| {
        matches!(e, DhtEvent::Harvested { info_hash, source: HarvestSource::GetPeers, .. } if *info_hash == asked)
    });
    assert!(passive, "get_peers to the crawler not harvested");
    net.nodes[crawler].stop_crawl();
    assert!(net.nodes[crawler].crawl_stats().is_none());
}

#[test]
fn add_node_pings_and_shares_what_another_node_learned() {
    let mut net = Net::new(12, 4);
    let boot = net.addrs[0];
    for i in 1..11 {
        net.nodes[i].bootstrap(Instant::ZERO, &[boot]);
    }
    net.run(20);
    // Node 11 joins only through what node 5 knows.
    let known: Vec<SocketAddr> = net.nodes[5].table().nodes().map(|e| e.node.addr).collect();
    assert!(known.len() >= 8);
    let now = net.now;
    for a in known {
        net.nodes[11].add_node(now, a);
    }
    net.run(5);
    assert!(
        net.nodes[11].table().len() >= 8,
        "{}",
        net.nodes[11].table().len()
    );
}

#[test]
fn bep42_enforcement_keeps_mismatched_ids_out_of_the_table() {
    let config = DhtConfig {
        enforce_node_ids: true,
        ..DhtConfig::default()
    };
    let mut dht = Dht::new(Instant::ZERO, config, Seed::from_u64(1));
    let from = SocketAddr::from(([30, 1, 2, 3], 6881));
    let other = SocketAddr::from(([30, 1, 2, 4], 6881));
    let ping = |id: NodeId| {
        let mut bytes = Vec::new();
        Message {
            tx: vec![1],
            id: Some(id),
            version: None,
            ip: None,
            read_only: false,
            body: Body::Query(Query::Ping),
        }
        .encode(&mut bytes);
        bytes
    };
    dht.handle_datagram(Instant::ZERO, from, &ping(NodeId([0x77; 20])));
    assert!(dht.poll_transmit().is_some(), "still answered");
    assert_eq!(dht.table().len(), 0);
    let secure = crate::dht::security::secure_id(&other.ip(), 3, [5; 17]);
    dht.handle_datagram(Instant::ZERO, other, &ping(secure));
    assert_eq!(dht.table().len(), 1);
}

fn query(tx: u32, id: NodeId, q: Query) -> Vec<u8> {
    let mut bytes = Vec::new();
    Message {
        tx: tx.to_be_bytes().to_vec(),
        id: Some(id),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Query(q),
    }
    .encode(&mut bytes);
    bytes
}

fn node_id(first: u8, k: u32) -> NodeId {
    let mut id = [first; 20];
    id[16..].copy_from_slice(&k.to_be_bytes());
    NodeId(id)
}

/// Issue 12: 300 forged sources send 100 get_peers a second each for 10 s
/// to a node whose table is full enough that answers carry nodes; an
/// honest source asks once a second meanwhile (from 1.5 s: in the first
/// half second the flood's bursts take the whole byte budget). The node sends back fewer
/// bytes than the flood brought, and answers every honest query.
#[test]
fn a_flood_from_forged_sources_gets_fewer_bytes_back_and_honest_queries_are_answered() {
    let mut dht = Dht::new(Instant::ZERO, DhtConfig::default(), Seed::from_u64(8));
    // 100 nodes that answered our pings: what answers give out.
    for k in 0..100u32 {
        let from = SocketAddr::from(([31, 0, 0, k as u8], 6881));
        dht.ping(Instant::ZERO, from);
        let (_, bytes) = dht.poll_transmit().unwrap();
        let tx = Message::decode(&bytes).unwrap().tx;
        let mut pong = Vec::new();
        Message {
            tx,
            id: Some(node_id((k as u8).wrapping_mul(37), k)),
            version: None,
            ip: None,
            read_only: false,
            body: Body::Response(Response::default()),
        }
        .encode(&mut pong);
        dht.handle_datagram(Instant::ZERO, from, &pong);
    }
    while dht.poll_event().is_some() {}
    let mut bytes_in = 0u64;
    assert!(dht.table().len() >= 16, "{}", dht.table().len());
    let honest = SocketAddr::from(([30, 9, 9, 9], 6881));
    let (mut bytes_out, mut honest_answers, mut honest_asked) = (0u64, 0, 0);
    let mut drain = |dht: &mut Dht, honest_answers: &mut usize| {
        while let Some((to, bytes)) = dht.poll_transmit() {
            bytes_out += bytes.len() as u64;
            if to == honest {
                *honest_answers += 1;
                let m = Message::decode(&bytes).unwrap();
                assert!(matches!(m.body, Body::Response(r) if r.nodes.len() == K));
            }
        }
    };
    drain(&mut dht, &mut honest_answers);
    for ms in 0..10_000u64 {
        let now = Instant::ZERO + Duration::from_millis(ms);
        for k in 0..30u32 {
            let n = ms as u32 * 30 + k;
            let src = n % 300;
            let from = SocketAddr::from(([40, 0, (src >> 8) as u8, src as u8], 6881));
            let info_hash = InfoHash(node_id(n as u8, n).0);
            let q = query(
                n,
                node_id(0x40, src),
                Query::GetPeers {
                    info_hash,
                    want: Want::default(),
                    scrape: false,
                    noseed: false,
                },
            );
            bytes_in += q.len() as u64;
            dht.handle_datagram(now, from, &q);
        }
        // Once a second, from when the flooding sources are blocked.
        if ms % 1000 == 500 && ms > 1000 {
            let q = query(
                ms as u32,
                NodeId([0x99; 20]),
                Query::GetPeers {
                    info_hash: InfoHash([0x42; 20]),
                    want: Want::default(),
                    scrape: false,
                    noseed: false,
                },
            );
            bytes_in += q.len() as u64;
            honest_asked += 1;
            dht.handle_datagram(now, honest, &q);
        }
        dht.handle_timeout(now);
        drain(&mut dht, &mut honest_answers);
    }
    let s = dht.reply_stats();
    assert_eq!(s.query_bytes, bytes_in, "every query counted");
    assert!(
        bytes_out <= bytes_in,
        "out {bytes_out} > in {bytes_in}: {s:?}"
    );
    assert!(s.reply_bytes <= bytes_out);
    assert_eq!(honest_answers, honest_asked, "{s:?}");
    assert_eq!(s.blocks, 300, "every flooding source was blocked: {s:?}");
    assert_eq!(
        dht.dropped_queries(),
        s.dropped_by_source + s.dropped_by_budget
    );
    assert_eq!(s.queries, s.replies + dht.dropped_queries());
}

/// A stream of queries from new ids whose bucket is full pings the
/// bucket's oldest questionable node once, not once per newcomer.
#[test]
fn newcomers_to_a_full_bucket_ping_its_node_once_at_a_time() {
    let config = DhtConfig {
        id: Some(NodeId([0; 20])),
        ..DhtConfig::default()
    };
    let mut dht = Dht::new(Instant::ZERO, config, Seed::from_u64(9));
    let pings = |dht: &mut Dht| {
        let mut n = 0;
        while let Some((_, bytes)) = dht.poll_transmit() {
            if let Ok(Message {
                body: Body::Query(Query::Ping),
                ..
            }) = Message::decode(&bytes)
            {
                n += 1;
            }
        }
        n
    };
    // Nine nodes far from us (first bit set) fill their bucket.
    for k in 0..9u32 {
        let from = SocketAddr::from(([30, 0, 0, k as u8], 6881));
        dht.handle_datagram(
            Instant::ZERO,
            from,
            &query(k, node_id(0x80, k), Query::Ping),
        );
    }
    assert_eq!(pings(&mut dht), 1, "the ninth asks for a ping");
    for k in 9..200u32 {
        let from = SocketAddr::from(([30, 0, 1, k as u8], 6881));
        dht.handle_datagram(
            Instant::ZERO,
            from,
            &query(k, node_id(0x80, k), Query::Ping),
        );
    }
    assert_eq!(pings(&mut dht), 0, "that ping is still in flight");
    let later = Instant::ZERO + DhtConfig::default().query_timeout + Duration::from_secs(1);
    dht.handle_timeout(later);
    let _ = pings(&mut dht);
    let from = SocketAddr::from(([30, 0, 2, 1], 6881));
    dht.handle_datagram(later, from, &query(300, node_id(0x80, 300), Query::Ping));
    assert_eq!(pings(&mut dht), 1, "after its timeout, a new ping");
}

/// Queries waiting behind a full transaction table wait for an answer or
/// an expiry: the node's deadline is the expiry, not "now" (it was, and a
/// crawler whose table filled spun at one instant: in the simulator time
/// stopped, on a real clock a core burned until the expiry).
#[test]
fn a_full_transaction_table_is_a_wait_not_a_busy_loop() {
    let mut c = config();
    c.max_outstanding = 2;
    let timeout = c.query_timeout;
    let mut node = Dht::new(Instant::ZERO, c, Seed::from_u64(5));
    node.crawl(Instant::ZERO, crate::dht::crawler::CrawlConfig::default());
    let silent: Vec<SocketAddr> = (0..5)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 30000 + i)))
        .collect();
    node.bootstrap(Instant::ZERO, &silent);
    let sent = std::iter::from_fn(|| node.poll_transmit()).count();
    assert_eq!(sent, 2);
    let wake = node.poll_timeout().expect("a deadline");
    assert_eq!(wake, Instant::ZERO + timeout);
    // At the expiry the queue moves into the room the expired left.
    node.handle_timeout(wake);
    assert_eq!(std::iter::from_fn(|| node.poll_transmit()).count(), 2);
    assert!(node.poll_timeout().expect("a deadline") > wake);
}
