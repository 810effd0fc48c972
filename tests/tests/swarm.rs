//! Deterministic swarm scenarios on the simulator (tests/src/sim.rs).
//!
//! Each runs over a fixed list of seeds, or the one in `SIM_SEED`:
//! `SIM_SEED=7 cargo test -p bittide-tests --test swarm`.

use std::time::Duration;

use bittide_core::torrent::TorrentState;
use bittide_tests::sim_old::{content, for_each_seed, Behaviour, NodeSpec, Sim};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn assert_data(sim: &Sim, node: usize) {
    assert!(
        sim.nodes[node].torrent.is_finished(),
        "node {node} not finished"
    );
    assert!(
        sim.nodes[node].disk == sim.content,
        "node {node} has different data"
    );
}

/// Scenario 1: One seeder, one leecher: the leecher completes with identical data.
fn one_seeder_one_leecher(seed: u64) -> String {
    let data = content(3 * MIB as usize + 12_345, seed);
    let mut sim = Sim::new(
        seed,
        data,
        64 * KIB as u32,
        vec![NodeSpec::seeder(4 * MIB), NodeSpec::leecher(4 * MIB)],
    );
    sim.add_peers(1, &[0]);
    sim.drive_bounded(200_000, Duration::from_secs(120), |s| {
        s.nodes[1].torrent.is_finished()
    });
    assert_data(&sim, 1);
    assert_eq!(sim.nodes[1].torrent.state(), TorrentState::Seeding);
    sim.log_hash()
}

#[test]
fn scenario_1_one_seeder_one_leecher() {
    for_each_seed(&[1, 2, 3], |seed| {
        one_seeder_one_leecher(seed);
    });
}

/// Scenario 2: One seeder and 30 leechers with limited upload on a 1,000-piece
/// torrent: everyone completes, and the seeder uploads less than 3× the
/// torrent (rarest first spreads pieces so leechers trade).
fn thirty_leechers(seed: u64) -> String {
    let data = content(1000 * 16 * KIB as usize, seed);
    let size = data.len() as u64;
    // Everyone, the seeder included, uploads at 1 MiB/s: the seeder alone
    // could not feed 30 leechers, so they must trade.
    let mut specs = vec![NodeSpec::seeder(MIB)];
    for _ in 0..30 {
        specs.push(NodeSpec::leecher(MIB));
    }
    let mut sim = Sim::new(seed, data, 16 * KIB as u32, specs);
    // Every leecher learns the seeder and 20 random others, as from a tracker.
    sim.announce_all(20);
    for i in 1..31 {
        sim.add_peers(i, &[0]);
    }
    sim.drive_bounded(3_000_000, Duration::from_secs(600), |s| {
        s.all_leechers_done()
    });
    for i in 1..31 {
        assert_data(&sim, i);
    }
    let seeded = sim.nodes[0].uploaded;
    assert!(
        seeded < 3 * size,
        "seeder uploaded {seeded} bytes, {:.2}× the torrent",
        seeded as f64 / size as f64
    );
    eprintln!(
        "seed {seed}: 30 leechers done by t={}, seeder uploaded {:.2}× the torrent, {} steps",
        sim.now,
        seeded as f64 / size as f64,
        sim.steps
    );
    sim.log_hash()
}

#[test]
fn scenario_2_one_seeder_thirty_leechers() {
    for_each_seed(&[11, 12], |seed| {
        thirty_leechers(seed);
    });
}

/// Scenario 3: A hostile peer sends corrupted blocks among honest seeders: every
/// leecher finishes with correct data and the hostile peer is banned.
fn hostile_peer(seed: u64) -> String {
    hostile_peer_with_budget(seed, None)
}

/// Scenario 3 with `budget` bytes of block memory per leecher (`Some`
/// small enough: pieces are written block by block and verified from
/// disk).
fn hostile_peer_with_budget(seed: u64, budget: Option<u64>) -> String {
    let data = content(2 * MIB as usize, seed);
    let mut specs = vec![NodeSpec::seeder(MIB), NodeSpec::seeder(MIB)];
    let mut evil = NodeSpec::seeder(8 * MIB);
    evil.behaviour = Behaviour::Corrupt;
    specs.push(evil);
    for _ in 0..4 {
        let mut leecher = NodeSpec::leecher(MIB);
        if let Some(b) = budget {
            leecher.config.max_buffered_bytes = b;
        }
        specs.push(leecher);
    }
    // 64 KiB pieces: 4 blocks each, so bad pieces can have several
    // contributors and parole has to narrow the culprit down.
    let mut sim = Sim::new(seed, data, 64 * KIB as u32, specs);
    for i in 3..7 {
        sim.add_peers(i, &[0, 1, 2]);
    }
    sim.drive_bounded(2_000_000, Duration::from_secs(600), |s| {
        s.all_leechers_done()
    });
    let evil_addr = sim.nodes[2].addr;
    let mut banned_by = 0;
    for i in 3..7 {
        assert_data(&sim, i);
        if sim.nodes[i].torrent.is_banned(&evil_addr) {
            banned_by += 1;
        }
        for honest in [0, 1, 3, 4, 5, 6] {
            assert!(
                !sim.nodes[i].torrent.is_banned(&sim.nodes[honest].addr),
                "node {i} banned honest node {honest}"
            );
        }
    }
    assert!(banned_by > 0, "nobody banned the hostile peer");
    sim.log_hash()
}

#[test]
fn scenario_3_hostile_peer_is_banned() {
    for_each_seed(&[21, 22, 23], |seed| {
        hostile_peer(seed);
    });
}

/// Scenario 3 with pieces four times a quarter of the memory budget
/// (64 KiB pieces, 64 KiB budget): blocks go to disk unverified, pieces
/// are verified from disk, the hostile peer is still found and banned.
#[test]
fn scenario_3_write_through_pieces_find_the_hostile_peer_too() {
    for_each_seed(&[24, 25], |seed| {
        hostile_peer_with_budget(seed, Some(64 * KIB));
    });
}

/// Scenario 4: Peers that vanish mid-piece (reset, or silently) and a peer that
/// chokes forever: the download still completes from the rest.
fn vanishing_and_choking(seed: u64) -> String {
    let data = content(4 * MIB as usize, seed);
    let mut reset = NodeSpec::seeder(2 * MIB);
    reset.behaviour = Behaviour::VanishAt(Duration::from_millis(700));
    let mut silent = NodeSpec::seeder(2 * MIB);
    silent.behaviour = Behaviour::BlackholeAt(Duration::from_millis(900));
    let mut choker = NodeSpec::seeder(2 * MIB);
    choker.config.unchoke_slots = 0;
    choker.config.optimistic_unchoke = false;
    choker.config.session.allowed_fast = 0;
    let slow = NodeSpec::seeder(256 * KIB);
    let specs = vec![
        reset,
        silent,
        choker,
        slow,
        NodeSpec::leecher(MIB),
        NodeSpec::leecher(MIB),
    ];
    let mut sim = Sim::new(seed, data, 64 * KIB as u32, specs);
    for i in 4..6 {
        sim.add_peers(i, &[0, 1, 2, 3]);
    }
    sim.drive_bounded(2_000_000, Duration::from_secs(900), |s| {
        s.nodes[4].torrent.is_finished() && s.nodes[5].torrent.is_finished()
    });
    assert_data(&sim, 4);
    assert_data(&sim, 5);
    assert_eq!(sim.nodes[2].uploaded, 0, "the choking peer never uploaded");
    sim.log_hash()
}

#[test]
fn scenario_4_vanishing_and_choking_peers() {
    for_each_seed(&[31, 32, 33], |seed| {
        vanishing_and_choking(seed);
    });
}

/// Scenario 6: peers find each other only through the swarm's tracker:
/// everyone completes, each leecher reports `completed` once, and after
/// everyone stops (`stopped`) the tracker holds no peer.
fn tracker_swarm(seed: u64) -> String {
    let data = content(2 * MIB as usize, seed);
    let mut specs = vec![NodeSpec::seeder(MIB)];
    for _ in 0..8 {
        specs.push(NodeSpec::leecher(MIB));
    }
    let mut sim = Sim::with_tracker(seed, data, 32 * KIB as u32, specs);
    sim.drive_bounded(2_000_000, Duration::from_secs(600), |s| {
        s.all_leechers_done()
    });
    for i in 1..9 {
        assert_data(&sim, i);
    }
    let hash = sim.info().info_hash;
    // The last `completed` announces are still on their way.
    sim.drive_bounded(4_000_000, Duration::from_secs(900), |s| {
        s.tracker.as_ref().unwrap().scrape(&[hash])[0].complete == 9
    });
    let counts = sim.tracker.as_ref().unwrap().scrape(&[hash])[0];
    assert_eq!(
        counts.downloaded, 8,
        "one completed per leecher, none from the seed"
    );
    assert_eq!(counts.incomplete, 0);
    for i in 0..9 {
        sim.stop(i);
    }
    sim.settle(100_000);
    assert_eq!(
        sim.tracker.as_ref().unwrap().peer_count(),
        0,
        "everyone sent stopped"
    );
    sim.log_hash()
}

#[test]
fn scenario_6_peers_found_through_the_tracker() {
    for_each_seed(&[51, 52], |seed| {
        tracker_swarm(seed);
    });
}

/// Scenario 7: upload and download limits hold on average: a 2 MiB
/// download from a seeder capped at 256 KiB/s takes at least ~8 s; a
/// leecher capped at 128 KiB/s needs at least ~16 s.
fn rate_limits(seed: u64) -> String {
    let size = 2 * MIB;
    let data = content(size as usize, seed);
    let mut seeder = NodeSpec::seeder(8 * MIB);
    seeder.config.upload_rate = 256 * KIB;
    let mut sim = Sim::new(
        seed,
        data.clone(),
        64 * KIB as u32,
        vec![seeder, NodeSpec::leecher(8 * MIB)],
    );
    sim.add_peers(1, &[0]);
    sim.drive_bounded(2_000_000, Duration::from_secs(120), |s| {
        s.nodes[1].torrent.is_finished()
    });
    assert_data(&sim, 1);
    let took = sim.nodes[1]
        .finished_at
        .unwrap()
        .since_epoch()
        .as_secs_f64();
    assert!(took >= 7.0, "upload limit not respected: {took:.2} s");
    assert!(took <= 12.0, "upload limit far too strict: {took:.2} s");

    let mut leecher = NodeSpec::leecher(8 * MIB);
    leecher.config.download_rate = 128 * KIB;
    let mut sim2 = Sim::new(
        seed,
        data,
        64 * KIB as u32,
        vec![NodeSpec::seeder(8 * MIB), leecher],
    );
    sim2.add_peers(1, &[0]);
    sim2.drive_bounded(2_000_000, Duration::from_secs(120), |s| {
        s.nodes[1].torrent.is_finished()
    });
    assert_data(&sim2, 1);
    let took = sim2.nodes[1]
        .finished_at
        .unwrap()
        .since_epoch()
        .as_secs_f64();
    assert!(took >= 15.0, "download limit not respected: {took:.2} s");
    assert!(took <= 24.0, "download limit far too strict: {took:.2} s");
    sim.log_hash()
}

#[test]
fn scenario_7_rate_limits() {
    for_each_seed(&[61, 62], |seed| {
        rate_limits(seed);
    });
}

/// Scenario 5: Determinism: the same seed gives the same event log; another seed a
/// different one.
/// Scenario 8 (BEP 11): 20 peers and no tracker; each leecher knows one
/// peer (a chain back to the seeder). Peer exchange spreads the addresses:
/// everyone completes, and every leecher learned peers through PEX.
fn pex_chain(seed: u64, private: bool) -> (Vec<usize>, bool) {
    // Slow enough (128 KiB/s each) that the swarm is still downloading
    // when the first PEX messages go out, a minute after peers meet.
    let data = content(4 * MIB as usize, seed);
    let mut specs = vec![NodeSpec::seeder(32 * KIB)];
    for _ in 0..19 {
        specs.push(NodeSpec::leecher(32 * KIB));
    }
    let mut sim = if private {
        Sim::new_private(seed, data, 16 * KIB as u32, specs)
    } else {
        Sim::new(seed, data, 16 * KIB as u32, specs)
    };
    for i in 1..20 {
        sim.add_peers(i, &[i - 1]);
    }
    let limit = Duration::from_secs(1800);
    while !sim.all_leechers_done() && sim.now <= bittide_core::Instant::ZERO + limit {
        if !sim.step() {
            break;
        }
    }
    let learned = (1..20)
        .map(|i| {
            sim.nodes[i]
                .torrent
                .known_peers(bittide_core::torrent::peers::PeerSource::Pex)
        })
        .collect();
    let done = sim.all_leechers_done();
    if done {
        for i in 1..20 {
            assert_data(&sim, i);
        }
    }
    eprintln!(
        "seed {seed} private={private}: done={done} by t={}, learned by PEX {learned:?}",
        sim.now
    );
    (learned, done)
}

#[test]
fn scenario_8_peer_exchange_spreads_a_chain() {
    for_each_seed(&[21, 22], |seed| {
        let (learned, done) = pex_chain(seed, false);
        assert!(done, "not everyone completed");
        for (i, n) in learned.iter().enumerate() {
            assert!(*n >= 1, "leecher {} learned no peer by PEX", i + 1);
        }
        let total: usize = learned.iter().sum();
        assert!(
            total >= 3 * learned.len(),
            "PEX spread only {total} addresses"
        );
        // BEP 27: the same swarm on a private torrent exchanges nothing
        // (and still completes along the chain).
        let (learned, done) = pex_chain(seed, true);
        assert!(done, "the private chain did not complete");
        assert!(
            learned.iter().all(|n| *n == 0),
            "private torrent used PEX: {learned:?}"
        );
    });
}

#[test]
fn scenario_5_runs_are_a_function_of_their_seed() {
    for_each_seed(&[41], |seed| {
        for scenario in [
            one_seeder_one_leecher,
            hostile_peer,
            vanishing_and_choking,
            tracker_swarm,
        ] {
            let a = scenario(seed);
            let b = scenario(seed);
            assert_eq!(a, b, "same seed, different runs");
            let c = scenario(seed + 1000);
            assert_ne!(a, c, "different seeds, same run");
        }
    });
}
