//! Swarms of whole engines, each run by the real driver loop on a
//! `VirtualRuntime` (tests/src/sim/swarm.rs). `SIM_SEED=n` replays one
//! seed; `--nocapture` shows the figures.

use std::time::Duration;

use bittide_core::Instant;
use bittide_tests::sim::for_each_seed;
use bittide_tests::sim::network::UdpModel;
use bittide_tests::sim::swarm::{content, PeerSpec, Swarm};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

/// One seeder, one leecher through two engines and two driver loops.
fn pair(seed: u64) -> String {
    let data = content(3 * MIB as usize + 12_345, seed);
    let mut sim = Swarm::new(seed, data, 64 * KIB as u32, UdpModel::default());
    sim.add_peer(PeerSpec::seeder(4 * MIB), &[]);
    sim.add_peer(PeerSpec::leecher(4 * MIB), &[0]);
    let done = sim.run_until(at(120), |p| p[1].finished());
    assert!(done, "not finished by t={}", sim.now());
    sim.deep_check();
    assert!(sim.peers[1].disk.bytes() == sim.content, "different data");
    eprintln!("seed {seed}: pair done by t={}; {}", sim.now(), sim.speed());
    sim.log_hash()
}

#[test]
fn one_seeder_one_leecher_through_engines_and_driver_loops() {
    for_each_seed(&[1, 2], |seed| {
        pair(seed);
    });
}
