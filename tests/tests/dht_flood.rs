//! A DHT node under a `get_peers` flood from forged source addresses must
//! not be an amplifier (issue 12): it sends back fewer bytes than the
//! flood brings, while an honest lookup through it still finds the
//! announcer. A 1,000-node network on a virtual clock, 20–200 ms latency,
//! 5 % loss (tests/src/sim/dht.rs); `SIM_SEED=n` replays one seed.

use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::dht::budget::{ReplyLimits, ReplyStats};
use bittide_core::dht::{DhtEvent, LookupId};
use bittide_core::krpc::{Body, Message, NodeId, Query, Want};
use bittide_core::InfoHash;
use bittide_tests::sim::dht::{address, DhtSim};
use bittide_tests::sim::for_each_seed;

const NODES: usize = 1000;
/// Flood queries a second, for `FLOOD_SECS`: 300,000 in all.
const FLOOD_RATE: u64 = 5000;
const FLOOD_SECS: u64 = 60;
/// When, into the flood, the honest lookup starts.
const LOOKUP_AT: u64 = 10;

fn random_bytes(sim: &mut DhtSim) -> [u8; 20] {
    let mut h = [0u8; 20];
    for b in &mut h {
        *b = sim.below(256) as u8;
    }
    h
}

/// What one flood did.
#[derive(Debug)]
struct Flood {
    /// Bytes the victim received and sent during the flood (everything:
    /// the flood, answers to it, its own traffic).
    bytes_in: u64,
    bytes_out: u64,
    /// The victim's reply counters over the flood.
    stats: ReplyStats,
    /// The honest lookup found the announcer.
    found: bool,
    /// The victim answered the honest lookup.
    victim_answered: bool,
}

impl Flood {
    fn ratio(&self) -> f64 {
        self.bytes_out as f64 / self.bytes_in.max(1) as f64
    }
}

fn diff(a: ReplyStats, b: ReplyStats) -> ReplyStats {
    ReplyStats {
        queries: a.queries - b.queries,
        query_bytes: a.query_bytes - b.query_bytes,
        replies: a.replies - b.replies,
        reply_bytes: a.reply_bytes - b.reply_bytes,
        dropped_by_source: a.dropped_by_source - b.dropped_by_source,
        dropped_by_budget: a.dropped_by_budget - b.dropped_by_budget,
        blocks: a.blocks - b.blocks,
    }
}

/// Announces a new info-hash, then floods the node that stores it closest
/// to it with `get_peers` (random info-hashes) from `sources` forged
/// addresses, `FLOOD_RATE` a second for `FLOOD_SECS`; `LOOKUP_AT` seconds
/// in, another node looks the info-hash up. Returns the victim and what
/// happened.
fn flood(sim: &mut DhtSim, sources: u32, limits: Option<ReplyLimits>) -> (usize, Flood) {
    let hash = InfoHash(random_bytes(sim));
    let announcer = sim.below(NODES as u64) as usize;
    let now = sim.now;
    sim.node(announcer)
        .expect("live")
        .announce(now, hash, 7000, false);
    sim.flush(announcer);
    let until = sim.now + Duration::from_secs(60);
    sim.run_until(until);
    // The victim: of the nodes storing the announcer, the closest to the
    // info-hash (so every lookup of it asks the victim).
    let target = NodeId(hash.0);
    let victim = (0..NODES)
        .filter(|&i| i != announcer)
        .filter(|&i| sim.nodes[i].as_ref().is_some_and(|n| n.store().has(&hash)))
        .min_by_key(|&i| sim.nodes[i].as_ref().map(|n| n.id().distance(&target)))
        .expect("someone stores the announced peer");
    let seeker = loop {
        let s = sim.below(NODES as u64) as usize;
        if s != announcer && s != victim {
            break s;
        }
    };
    if let Some(limits) = limits {
        let now = sim.now;
        sim.node(victim)
            .expect("live")
            .set_reply_limits(now, limits);
    }
    let forged: Vec<(SocketAddr, NodeId)> = (0..sources)
        .map(|k| {
            let ip = [40, (k >> 16) as u8, (k >> 8) as u8, k as u8];
            (SocketAddr::from((ip, 6881)), NodeId(random_bytes(sim)))
        })
        .collect();
    let start = sim.now;
    let node = sim.nodes[victim].as_ref().expect("live");
    let (in0, out0, stats0) = (
        sim.bytes_in[victim],
        sim.bytes_out[victim],
        node.reply_stats(),
    );
    let mut lookup: Option<LookupId> = None;
    for second in 0..FLOOD_SECS {
        if second == LOOKUP_AT {
            let now = sim.now;
            lookup = Some(sim.node(seeker).expect("live").get_peers(now, hash));
            sim.flush(seeker);
        }
        for k in 0..FLOOD_RATE {
            let n = second * FLOOD_RATE + k;
            let at = start + Duration::from_micros(n * 1_000_000 / FLOOD_RATE);
            let (from, id) = forged[(n % u64::from(sources)) as usize];
            let mut bytes = Vec::new();
            Message {
                tx: (n as u32).to_be_bytes()[2..].to_vec(),
                id: Some(id),
                version: None,
                ip: None,
                read_only: false,
                body: Body::Query(Query::GetPeers {
                    info_hash: InfoHash(random_bytes(sim)),
                    want: Want::default(),
                    scrape: false,
                    noseed: false,
                }),
            }
            .encode(&mut bytes);
            sim.inject(at, from, victim, bytes);
        }
        sim.run_until(start + Duration::from_secs(second + 1));
    }
    // The last answers leave.
    let until = sim.now + Duration::from_secs(1);
    sim.run_until(until);
    let node = sim.nodes[victim].as_ref().expect("live");
    let stats = diff(node.reply_stats(), stats0);
    let victim_id = node.id();
    let lookup = lookup.expect("started");
    let expected = SocketAddr::new(address(announcer).ip(), 7000);
    let found = sim.events[seeker].iter().any(|e| {
        matches!(e, DhtEvent::Peers { lookup: l, peers, .. } if *l == lookup && peers.contains(&expected))
    });
    let victim_answered = sim.events[seeker].iter().any(|e| {
        matches!(e, DhtEvent::LookupDone { lookup: l, closest, .. }
            if *l == lookup && closest.iter().any(|c| c.id == victim_id))
    });
    let f = Flood {
        bytes_in: sim.bytes_in[victim] - in0,
        bytes_out: sim.bytes_out[victim] - out0,
        stats,
        found,
        victim_answered,
    };
    (victim, f)
}

#[test]
fn a_flooded_node_sends_fewer_bytes_than_it_receives_and_lookups_still_work() {
    for_each_seed(&[7], |seed| {
        let mut sim = DhtSim::joined(seed, NODES);
        let dropped: u64 = sim
            .nodes
            .iter()
            .flatten()
            .map(|n| n.dropped_queries())
            .sum();
        assert_eq!(dropped, 0, "honest traffic was refused while joining");

        // Control: the same flood against a node that answers everything
        // is amplified (so the measurement below can fail).
        let (v0, open) = flood(&mut sim, 256, Some(ReplyLimits::unlimited()));
        eprintln!(
            "seed {seed}: unlimited node: in {} out {} ratio {:.3}; {:?}",
            open.bytes_in,
            open.bytes_out,
            open.ratio(),
            open.stats
        );
        assert!(open.bytes_out > open.bytes_in, "{open:?}");
        assert_eq!(open.stats.replies, open.stats.queries);

        // The default budgets, 256 forged sources: the per-source limit
        // blocks each after its burst.
        let (v1, f) = flood(&mut sim, 256, None);
        eprintln!(
            "seed {seed}: 256 sources: in {} out {} ratio {:.3}; {:?}; lookup found {}, victim answered it {}",
            f.bytes_in,
            f.bytes_out,
            f.ratio(),
            f.stats,
            f.found,
            f.victim_answered
        );
        assert!(f.stats.queries >= FLOOD_RATE * FLOOD_SECS, "{f:?}");
        assert!(f.bytes_out <= f.bytes_in, "amplified: {f:?}");
        assert!(f.stats.dropped_by_source > 0, "{f:?}");
        assert!(f.found, "the honest lookup did not find the announcer");
        assert!(
            f.victim_answered,
            "the victim did not answer the honest lookup"
        );

        // 65,536 forged sources, each sending a few queries: no source goes
        // over its rate, the byte budget alone holds. The victim answers
        // only some queries, but the announcer is stored at K nodes.
        let (v2, g) = flood(&mut sim, 65_536, None);
        eprintln!(
            "seed {seed}: 65,536 sources: in {} out {} ratio {:.3}; {:?}; lookup found {}, victim answered it {}",
            g.bytes_in,
            g.bytes_out,
            g.ratio(),
            g.stats,
            g.found,
            g.victim_answered
        );
        assert!(g.bytes_out <= g.bytes_in, "amplified: {g:?}");
        assert!(g.stats.dropped_by_budget > 0, "{g:?}");
        assert!(g.found, "the honest lookup did not find the announcer");

        // Nobody else refused an honest query all along.
        let others: u64 = (0..NODES)
            .filter(|i| ![v0, v1, v2].contains(i))
            .filter_map(|i| sim.nodes[i].as_ref())
            .map(|n| n.dropped_queries())
            .sum();
        assert_eq!(others, 0, "honest queries were refused");
    });
}
