//! Holepunching (BEP 55) in the one simulator: whole engines and driver
//! loops on a network where two of them sit behind NATs
//! (`tests/src/sim/network.rs`: inbound TCP refused, datagrams only from
//! addresses the host sent to within 30 s).
//!
//! Node 0, R, is public and relays; it downloads at 1 byte/s, so it never
//! completes a piece and has nothing to upload. Node 1, A, is a leecher
//! and node 2, B, the only seeder; both are behind NATs and know only R.
//! A learns B's address from R's peer exchange (flagged 0x08: B speaks
//! ut_holepunch), its direct dial fails on both transports, it asks R for
//! a rendezvous, both dial each other over uTP, and A downloads the
//! torrent from B: the only peer that has any piece.
//!
//! B joins [`B_JOINS`] after A. R's peer exchange names B to A a minute
//! after A and R met, and names A to B no sooner than a minute after B
//! and R met (BEP 11), at [`B_LEARNS_A`] at the earliest. Before then B
//! cannot know A's address but from R's `connect`, so an A–B session
//! before it is the holepunch's doing. Without holepunching at R (the
//! negative case) A's failed dial stays failed: A has not reached B by
//! then. (Later, B's own direct dial of A opens B's NAT for A, and a
//! retry of A's within 30 s of it gets through: a simultaneous open by
//! chance, which BEP 55 arranges on purpose; so the negative case stops
//! there.)

use std::time::Duration;

use bittide_core::torrent::TorrentConfig;
use bittide_core::Instant;
use bittide_tests::sim::for_each_seed;
use bittide_tests::sim::network::{HostSpec, UdpModel};
use bittide_tests::sim::swarm::{content, PeerSpec, Swarm};

const MIB: usize = 1 << 20;
/// Virtual time a run may take: PEX's first message comes a minute after
/// peers meet, the failed direct dial takes a few seconds more.
const TIME_BUDGET: Duration = Duration::from_secs(400);
/// How long after A the seeder B joins.
const B_JOINS: Duration = Duration::from_secs(50);
/// The earliest B can hear of A from R's peer exchange (BEP 11: a minute
/// after meeting).
const B_LEARNS_A: Duration = Duration::from_secs(50 + 60);

fn udp() -> UdpModel {
    UdpModel {
        latency: (Duration::from_millis(20), Duration::from_millis(60)),
        loss_ppm: 10_000,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        mtu: usize::MAX,
        queue: None,
    }
}

fn behind_nat(spec: PeerSpec) -> PeerSpec {
    PeerSpec {
        host: HostSpec {
            behind_nat: true,
            ..spec.host
        },
        ..spec
    }
}

struct Outcome {
    /// A finished, with the seeder's bytes.
    finished: bool,
    /// When A first had a peer session with B.
    a_met_b: Option<Instant>,
    /// Pieces R ever had.
    relay_pieces: u32,
    /// Rendezvous R relayed.
    relayed: u64,
    /// A NAT refused a TCP connect (A dialled B directly).
    tried_directly: bool,
    log: String,
}

/// Runs the scenario; `relay_holepunch` turns BEP 55 on or off at R.
fn scenario(seed: u64, relay_holepunch: bool, budget: Duration) -> Outcome {
    let mut sim = Swarm::new(seed, content(2 * MIB, seed), 256 * 1024, udp());
    let relay = PeerSpec {
        config: TorrentConfig {
            download_rate: 1,
            holepunch: relay_holepunch,
            ..TorrentConfig::default()
        },
        ..PeerSpec::leecher(8 * MIB as u64)
    };
    let r = sim.add_peer(relay, &[]);
    let a = sim.add_peer(behind_nat(PeerSpec::leecher(8 * MIB as u64)), &[r]);
    sim.run_for(B_JOINS);
    let b = sim.add_peer(behind_nat(PeerSpec::seeder(8 * MIB as u64)), &[r]);
    let until = Instant::ZERO + budget;
    let finished = sim.run_until(until, |p| p[a].finished());
    let b_addr = sim.peers[b].addr;
    let a_met_b = sim.peers[a].state().met.get(&b_addr).copied();
    let (relay_pieces, relayed) = sim
        .inspect(r, |e| {
            let id = e.torrent_ids()[0];
            let t = e.torrent(id).expect("R's torrent");
            (t.have().count(), t.holepunch_stats().relayed)
        })
        .expect("R runs");
    if finished {
        sim.deep_check();
        assert!(
            sim.peers[a].disk.bytes() == sim.content,
            "seed {seed}: A's bytes differ"
        );
    }
    let net = sim.exec.with_net(|n| n.stats);
    eprintln!(
        "seed {seed}: finished={finished} at t={} met={a_met_b:?} relayed={relayed} \
         nat_filtered={} nat_refused={}",
        sim.now(),
        net.nat_filtered,
        net.nat_refused
    );
    Outcome {
        finished,
        a_met_b,
        relay_pieces,
        relayed,
        tried_directly: net.nat_refused > 0,
        log: sim.log_hash(),
    }
}

#[test]
fn two_peers_behind_nats_meet_through_a_relay_and_trade() {
    for_each_seed(&[1, 2, 3], |seed| {
        let o = scenario(seed, true, TIME_BUDGET);
        assert!(o.finished, "seed {seed}: A did not finish");
        let met = o.a_met_b.expect("A had a session with B");
        assert!(
            met < Instant::ZERO + B_LEARNS_A,
            "seed {seed}: A met B at {met}, when B could know A without the relay"
        );
        assert_eq!(o.relay_pieces, 0, "seed {seed}: R had pieces to give");
        assert!(o.relayed >= 1, "seed {seed}: R relayed nothing");
    });
}

#[test]
fn without_a_relay_that_holepunches_they_never_meet() {
    for_each_seed(&[1], |seed| {
        let o = scenario(seed, false, B_LEARNS_A);
        assert_eq!(o.a_met_b, None, "seed {seed}: A reached B through its NAT");
        assert!(o.tried_directly, "seed {seed}: A never dialled B");
        assert!(!o.finished);
        assert_eq!(o.relay_pieces, 0);
        assert_eq!(o.relayed, 0);
    });
}

#[test]
fn a_holepunch_replays_from_its_seed() {
    let first = scenario(7, true, TIME_BUDGET);
    assert!(first.finished);
    assert_eq!(first.log, scenario(7, true, TIME_BUDGET).log);
}
