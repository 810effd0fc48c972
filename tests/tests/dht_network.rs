//! The DHT in a 2,000-node network on a virtual clock, 20–200 ms latency,
//! 5 % loss (tests/src/sim/dht.rs). `SIM_SEED=n` replays one seed.

use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::dht::{DhtEvent, LookupId};
use bittide_core::krpc::{Body, Message, NodeId, Response};
use bittide_core::{InfoHash, Instant, Seed};
use bittide_tests::sim::dht::{address, DhtSim, NetModel};
use bittide_tests::sim::for_each_seed;

const NODES: usize = 2000;

fn random_hash(sim: &mut DhtSim) -> InfoHash {
    let mut h = [0u8; 20];
    for b in &mut h {
        *b = sim.below(256) as u8;
    }
    InfoHash(h)
}

/// Announces `count` random info-hashes from random nodes, then looks each
/// up from another random node; returns (successes, queries per lookup,
/// rounds per lookup).
fn announce_and_find(sim: &mut DhtSim, count: usize) -> (usize, Vec<usize>, Vec<usize>) {
    let live: Vec<usize> = (0..sim.nodes.len())
        .filter(|&i| sim.nodes[i].is_some())
        .collect();
    let jobs = sim.announce_random(count);
    let until = sim.now + Duration::from_secs(60);
    sim.run_until(until);
    let mut lookups: Vec<(usize, LookupId, SocketAddr)> = Vec::new();
    for (hash, announcer) in &jobs {
        let seeker = loop {
            let s = live[sim.below(live.len() as u64) as usize];
            if s != *announcer {
                break s;
            }
        };
        let now = sim.now;
        let l = sim.node(seeker).expect("live").get_peers(now, *hash);
        sim.flush(seeker);
        lookups.push((seeker, l, SocketAddr::new(address(*announcer).ip(), 7000)));
    }
    let until = sim.now + Duration::from_secs(60);
    sim.run_until(until);
    let mut ok = 0;
    let (mut queries, mut rounds) = (Vec::new(), Vec::new());
    for (seeker, l, expected) in lookups {
        let found = sim.events[seeker].iter().any(|e| {
            matches!(e, DhtEvent::Peers { lookup, peers, .. } if *lookup == l && peers.contains(&expected))
        });
        if found {
            ok += 1;
        }
        for e in &sim.events[seeker] {
            if let DhtEvent::LookupDone {
                lookup,
                queries: q,
                rounds: r,
                ..
            } = e
            {
                if *lookup == l {
                    queries.push(*q);
                    rounds.push(*r);
                }
            }
        }
    }
    (ok, queries, rounds)
}

fn median(mut v: Vec<usize>) -> usize {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn network(seed: u64) -> String {
    let mut sim = DhtSim::joined(seed, NODES);
    let sizes: Vec<usize> = sim
        .nodes
        .iter()
        .flatten()
        .map(|n| n.table().len())
        .collect();
    let small = sizes.iter().filter(|&&s| s < 8).count();
    assert!(
        small * 100 < NODES,
        "{small} nodes have fewer than 8 table entries"
    );

    // BEP 42: every node learned its address from the answers' `ip` and
    // took an id derived from it; the tables were rebuilt around the new
    // ids and lookups still work (below).
    let secure = (0..NODES)
        .filter(|&i| {
            let id = sim.nodes[i].as_ref().expect("present").id();
            bittide_core::dht::security::id_matches(&id, &address(i).ip())
        })
        .count();
    assert!(
        secure * 100 >= NODES * 99,
        "only {secure} nodes took a BEP 42 id"
    );

    let (ok, queries, rounds) = announce_and_find(&mut sim, 100);
    eprintln!(
        "seed {seed}: {ok}/100 lookups found the announcer; median {} queries, {} rounds; {} datagrams ({} lost)",
        median(queries.clone()),
        median(rounds.clone()),
        sim.sent(),
        sim.lost()
    );
    assert!(ok >= 99, "only {ok}/100 lookups found the announcer");

    // Churn: 10 % leave, as many join; lookups still succeed.
    for _ in 0..NODES / 10 {
        let i = 5 + sim.below((NODES - 5) as u64) as usize;
        sim.remove(i);
    }
    let boot: Vec<SocketAddr> = (0..5).map(address).collect();
    for k in 0..NODES / 10 {
        let seed = Seed::from_u64(seed * 7919 + k as u64);
        let i = sim.add_node(seed);
        let now = sim.now;
        sim.node(i).expect("new").bootstrap(now, &boot);
        sim.flush(i);
    }
    let until = sim.now + Duration::from_secs(180);
    sim.run_until(until);
    let (ok, queries, _) = announce_and_find(&mut sim, 100);
    eprintln!(
        "seed {seed}: after churn {ok}/100, median {} queries",
        median(queries)
    );
    assert!(
        ok >= 99,
        "after churn only {ok}/100 lookups found the announcer"
    );
    sim.log_hash()
}

#[test]
fn two_thousand_nodes_find_announcers_before_and_after_churn() {
    for_each_seed(&[1, 2], |seed| {
        network(seed);
    });
}

#[test]
fn forged_replies_do_not_reach_the_table() {
    for_each_seed(&[2], |seed| {
        let mut sim = DhtSim::new(seed, 50, NetModel::default());
        let boot = [address(0)];
        for i in 1..50 {
            let now = sim.now;
            sim.node(i).expect("present").bootstrap(now, &boot);
            sim.flush(i);
        }
        let until = sim.now + Duration::from_secs(60);
        sim.run_until(until);
        let victim = 7;
        let before: Vec<NodeId> = sim.nodes[victim]
            .as_ref()
            .unwrap()
            .table()
            .nodes()
            .map(|e| e.node.id)
            .collect();
        let now = sim.now;
        let target = NodeId([0x55; 20]);
        sim.node(victim).unwrap().find_node(now, target);
        sim.flush(victim);
        // 10,000 responses with random transaction ids from random sources,
        // each claiming a made-up node id and offering made-up nodes.
        for k in 0..10_000u32 {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&k.to_be_bytes());
            let from = SocketAddr::from(([40, (k >> 16) as u8, (k >> 8) as u8, k as u8], 6881));
            let mut bytes = Vec::new();
            Message {
                tx: vec![(k >> 8) as u8, k as u8],
                id: Some(NodeId(id)),
                version: None,
                ip: None,
                read_only: false,
                body: Body::Response(Response::default()),
            }
            .encode(&mut bytes);
            let now = sim.now;
            sim.node(victim).unwrap().handle_datagram(now, from, &bytes);
        }
        let node = sim.nodes[victim].as_ref().unwrap();
        assert!(node.unmatched_replies() >= 10_000);
        let forged_in = node
            .table()
            .nodes()
            .filter(|e| e.node.addr.ip().to_string().starts_with("40."))
            .count();
        assert_eq!(forged_in, 0, "forged nodes entered the table");
        let after: Vec<NodeId> = node.table().nodes().map(|e| e.node.id).collect();
        assert!(after.len() >= before.len().min(8));
        let _ = Instant::ZERO;
    });
}

#[test]
fn dht_runs_are_a_function_of_their_seed() {
    let run = |seed: u64| {
        let mut sim = DhtSim::new(seed, 200, NetModel::default());
        let boot = [address(0)];
        for i in 1..200 {
            let now = sim.now;
            sim.node(i).expect("present").bootstrap(now, &boot);
            sim.flush(i);
        }
        let until = sim.now + Duration::from_secs(30);
        sim.run_until(until);
        sim.log_hash()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

/// BEP 51 crawl: 5,000 info-hashes announced by random nodes of a
/// 2,000-node network; a crawler that joins afterwards harvests ≥ 90 % of
/// them within 10 virtual minutes.
#[test]
fn a_crawler_harvests_most_of_five_thousand_info_hashes_in_ten_minutes() {
    for_each_seed(&[3], |seed| {
        let mut sim = DhtSim::joined(seed, NODES);
        let mut announced = std::collections::BTreeSet::new();
        for batch in 0..10 {
            for _ in 0..500 {
                let hash = random_hash(&mut sim);
                let i = sim.below(NODES as u64) as usize;
                let now = sim.now;
                sim.node(i).expect("live").announce(now, hash, 7000, false);
                sim.flush(i);
                announced.insert(hash);
            }
            let until = sim.now + Duration::from_secs(if batch == 9 { 60 } else { 10 });
            sim.run_until(until);
        }
        let stored: usize = sim
            .nodes
            .iter()
            .flatten()
            .map(|n| n.store().torrents())
            .sum();
        let crawler = sim.add_node(Seed::from_u64(seed ^ 0xc4a1));
        let boot: Vec<SocketAddr> = (0..5).map(address).collect();
        let start = sim.now;
        sim.node(crawler).expect("new").bootstrap(start, &boot);
        sim.flush(crawler);
        sim.node(crawler)
            .expect("new")
            .crawl(start, bittide_core::dht::crawler::CrawlConfig::default());
        sim.flush(crawler);
        let mut harvested = std::collections::BTreeSet::new();
        let mut at_minute = Vec::new();
        for minute in 1..=10 {
            sim.run_until(start + Duration::from_secs(60 * minute));
            for e in &sim.events[crawler] {
                if let DhtEvent::Harvested { info_hash, .. } = e {
                    harvested.insert(*info_hash);
                }
            }
            at_minute.push(harvested.intersection(&announced).count());
        }
        let stats = sim.nodes[crawler].as_ref().unwrap().crawl_stats().unwrap();
        eprintln!(
            "seed {seed}: {} info-hashes ({stored} stored copies); harvested per minute {at_minute:?}; {stats:?}",
            announced.len()
        );
        let found = at_minute.last().copied().unwrap_or(0);
        assert!(
            found * 10 >= announced.len() * 9,
            "harvested {found} of {}",
            announced.len()
        );
    });
}
