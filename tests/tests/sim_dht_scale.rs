//! Issue 13, scale (a): a 10,000-node DHT on the simulator's network model
//! (tests/src/sim/dht.rs) with 5 % loss, 20–300 ms latency, 10 % churn and
//! 200 hostile nodes (Sybil ids next to every target, forged peers and
//! tokens in their answers, `announce_peer` with tokens they never got,
//! replies forged from honest nodes' addresses): lookups still find the
//! announced peers, and no honest node stores a poisoned announce.
//!
//! `SIM_SEED=n` replays one seed; `--nocapture` shows the figures.

use std::time::Duration;

use bittide_core::dht::{DhtEvent, LookupId};
use bittide_tests::sim::dht::{address, is_forged_peer, poisoned_hash, DhtSim, NetModel};
use bittide_tests::sim::for_each_seed;

/// What a run measured.
struct Outcome {
    found: usize,
    lookups: usize,
    rounds: Vec<usize>,
    queries: Vec<usize>,
    forged_peers_seen: usize,
    hash: String,
}

fn median(mut v: Vec<usize>) -> usize {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn model() -> NetModel {
    NetModel {
        latency: (Duration::from_millis(20), Duration::from_millis(300)),
        loss_ppm: 50_000,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        mtu: usize::MAX,
        queue: None,
    }
}

/// Joins `n` nodes, lets `hostile` liars in, churns 10 %, then announces
/// `lookups` info-hashes and looks each up from another node.
fn run(seed: u64, n: usize, hostile: usize, lookups: usize) -> Outcome {
    let wall = std::time::Instant::now();
    let mut sim = DhtSim::joined_with(seed, n, model(), n / 40, Duration::from_secs(30));
    sim.add_hostile(hostile, 20);
    let until = sim.now + Duration::from_secs(30);
    sim.run_until(until);

    // Churn: 10 % leave silently, as many new nodes join.
    for _ in 0..n / 10 {
        let i = 5 + sim.below((n - 5) as u64) as usize;
        sim.remove(i);
    }
    let boot = sim.boot_nodes();
    for k in 0..n / 10 {
        let child = bittide_core::Seed::from_u64(seed).child(1000 + k as u64);
        let i = sim.add_node(child);
        let now = sim.now;
        sim.node(i).expect("new").bootstrap(now, &boot);
        sim.flush(i);
    }
    let until = sim.now + Duration::from_secs(60);
    sim.run_until(until);

    let jobs = sim.announce_random(lookups);
    let until = sim.now + Duration::from_secs(30);
    sim.run_until(until);
    let mut started: Vec<(usize, LookupId, std::net::SocketAddr)> = Vec::new();
    for (hash, announcer) in &jobs {
        let seeker = loop {
            let s = sim.random_live();
            if s != *announcer {
                break s;
            }
        };
        let now = sim.now;
        let l = sim.node(seeker).expect("live").get_peers(now, *hash);
        sim.flush(seeker);
        let expected = std::net::SocketAddr::new(address(*announcer).ip(), 7000);
        started.push((seeker, l, expected));
    }
    let until = sim.now + Duration::from_secs(30);
    sim.run_until(until);

    let mut out = Outcome {
        found: 0,
        lookups,
        rounds: Vec::new(),
        queries: Vec::new(),
        forged_peers_seen: 0,
        hash: String::new(),
    };
    for (seeker, l, expected) in started {
        let mut found = false;
        for e in &sim.events[seeker] {
            match e {
                DhtEvent::Peers { lookup, peers, .. } if *lookup == l => {
                    found |= peers.contains(&expected);
                    out.forged_peers_seen += peers.iter().filter(|p| is_forged_peer(p)).count();
                }
                DhtEvent::LookupDone {
                    lookup,
                    queries,
                    rounds,
                    ..
                } if *lookup == l => {
                    out.queries.push(*queries);
                    out.rounds.push(*rounds);
                }
                _ => {}
            }
        }
        out.found += usize::from(found);
    }

    // Wrong tokens: no honest node took a hostile announce.
    for k in 0..16 {
        let poisoned = sim
            .nodes
            .iter()
            .flatten()
            .filter(|d| d.store().has(&poisoned_hash(k)))
            .count();
        assert_eq!(
            poisoned, 0,
            "{poisoned} nodes stored a wrong-token announce"
        );
    }
    let secs = wall.elapsed().as_secs_f64();
    eprintln!(
        "seed {seed}, {n} nodes + {hostile} hostile: {}/{} lookups found the announcer; median {} rounds, {} queries; {} forged peers offered; {} datagrams ({} lost); {} steps in {secs:.1} s wall for {:.0} s virtual: {:.0} steps/s, {:.1} virtual s per wall s",
        out.found,
        out.lookups,
        median(out.rounds.clone()),
        median(out.queries.clone()),
        out.forged_peers_seen,
        sim.sent(),
        sim.lost(),
        sim.steps,
        sim.now.since_epoch().as_secs_f64(),
        sim.steps as f64 / secs,
        sim.now.since_epoch().as_secs_f64() / secs,
    );
    out.hash = sim.log_hash();
    out
}

#[test]
fn ten_thousand_nodes_with_churn_and_liars_find_announced_peers() {
    for_each_seed(&[1], |seed| {
        let out = run(seed, 10_000, 200, 100);
        assert!(
            out.found * 100 >= out.lookups * 95,
            "only {}/{} lookups found the announcer",
            out.found,
            out.lookups
        );
    });
}

/// Scale (c) for the DHT: the same seed gives the same event log, another
/// seed a different one (a smaller network, the same code path).
#[test]
fn determinism_dht_runs_replay_from_their_seed() {
    for_each_seed(&[7], |seed| {
        let a = run(seed, 1000, 20, 20).hash;
        let b = run(seed, 1000, 20, 20).hash;
        assert_eq!(a, b, "same seed, different event logs");
        let c = run(seed + 1, 1000, 20, 20).hash;
        assert_ne!(a, c, "different seeds, same event log");
    });
}
