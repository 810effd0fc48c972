//! The one simulator: whole engines and the real driver loop on a
//! [`runtime::VirtualRuntime`], in a seeded [`network::Network`], with
//! in-memory disks; and bare DHT nodes on the same network for scale.
//!
//! Like quinn-proto's test harness and str0m's netem, it is the driver loop
//! on virtual time. Everything random (latencies, losses, which peers a
//! node learns, which blocks a hostile peer corrupts) comes from one master
//! seed, so a run is a function of it; the event log's hash names the run.
//!
//! The parts, bottom up:
//! - [`network`]: who gets what when: TCP streams (per-link latency,
//!   per-host upload and download pipes, resets, black holes) and UDP
//!   datagrams (latency range, loss, duplication, reordering).
//! - [`runtime`]: the [`runtime::Executor`] (one thread, FIFO ready queue,
//!   a clock that jumps to the next timer or delivery) and
//!   [`runtime::VirtualRuntime`], the driver's `Runtime` for one node;
//!   its sockets live in `sockets`.
//! - [`disk`]: [`disk::MemDisk`], the driver's `Disk` in memory, with
//!   slowness, write failures and corrupt reads.
//! - [`swarm`]: [`swarm::Swarm`], nodes that are real `Engine`s run by the
//!   real `Driver` loop, events logged and invariants checked through the
//!   loop's callback.
//! - [`crawl`]: [`crawl::CrawlSim`], a DHT of engines seeding many small
//!   torrents and one crawler indexing them (`dht crawl --index`), its
//!   heap counted by [`heap`].
//! - [`dht`]: [`dht::DhtSim`], bare `Dht` nodes on the same network model
//!   (10,000 of them fit in the test budget), with hostile nodes.
//!
//! Every scenario runs a fixed list of seeds or `SIM_SEED`, and prints the
//! seed that failed ([`for_each_seed`]).

pub mod crawl;
pub mod dht;
pub mod disk;
pub mod heap;
pub mod network;
pub mod runtime;
mod sockets;
pub mod swarm;

/// The seeds a scenario runs: `SIM_SEED=n` for one, else a fixed list.
pub fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(s) => vec![s],
        None => default.to_vec(),
    }
}

/// Runs `scenario` for every seed, printing the seed of a failure.
pub fn for_each_seed(default: &[u64], scenario: impl Fn(u64)) {
    for seed in seeds(default) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(seed)));
        if let Err(e) = result {
            eprintln!("scenario failed with SIM_SEED={seed}");
            std::panic::resume_unwind(e);
        }
    }
}
