//! Issue 19's simulation: a DHT of engines, some seeding small torrents
//! (announced on the DHT, metadata served by BEP 9), and the crawler that
//! `bittide dht crawl --index` runs, on virtual time
//! (tests/src/sim/crawl.rs). The crawl indexes every torrent with its name
//! and files; its harvest and index rates per virtual hour and its heap
//! (charged to it by tests/src/sim/heap.rs) are printed, and the heap must
//! stay flat: the sixth hour's peak within 10 % of the first's.
//!
//! `SIM_SEED=n` replays one seed; `SIM_INDEX_NODES`, `SIM_INDEX_TORRENTS`
//! and `SIM_INDEX_HOURS` change the scale (the default is 2,000 nodes,
//! 2,000 torrents, 6 hours); `--nocapture` shows the figures.

use std::time::Duration;

use bittide_core::dht::crawler::CrawlConfig;
use bittide_core::engine::FetchConfig;
use bittide_tests::sim::crawl::{CrawlSim, CrawlSpec, WORDS};
use bittide_tests::sim::heap::{self, NodeHeap};
use bittide_tests::sim::network::UdpModel;
use bittide_tests::sim::for_each_seed;

#[global_allocator]
static HEAP: NodeHeap = NodeHeap;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn model() -> UdpModel {
    UdpModel {
        latency: (Duration::from_millis(20), Duration::from_millis(200)),
        loss_ppm: 10_000,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        mtu: usize::MAX,
        queue: None,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

#[test]
fn a_crawl_indexes_every_announced_torrent_and_its_heap_stays_flat() {
    for_each_seed(&[19], |seed| {
        let spec = CrawlSpec {
            nodes: env("SIM_INDEX_NODES", 2_000),
            torrents: env("SIM_INDEX_TORRENTS", 2_000),
            per_seeder: 5,
            udp: model(),
        };
        let hours = env("SIM_INDEX_HOURS", 6) as u64;
        let wall = std::time::Instant::now();
        let mut sim = CrawlSim::new(seed, &spec, Duration::from_secs(600));
        let built = wall.elapsed().as_secs_f64();
        heap::watch(spec.nodes);
        let crawler = sim.start_crawler(CrawlConfig::default(), FetchConfig::default());
        let start = sim.now();
        let mut peaks = Vec::new();
        let mut last = crawler.stats();
        eprintln!("seed {seed}: {spec:?}, built in {built:.1} s wall");
        eprintln!("hour  harvested  fetched  indexed  total indexed  crawler heap peak  process heap  wall s");
        for hour in 1..=hours {
            sim.exec
                .run_until(start + Duration::from_secs(3600 * hour), || false);
            let s = crawler.stats();
            let total = crawler.with_index(|ix| ix.stats().expect("stats")).torrents;
            let peak = heap::take_peak();
            peaks.push(peak);
            eprintln!(
                "{hour:>4}  {:>9}  {:>7}  {:>7}  {total:>13}  {:>13.2} MiB  {:>8.1} MiB  {:>6.1}",
                s.harvested - last.harvested,
                s.fetched - last.fetched,
                s.stored - last.stored,
                mib(peak),
                mib(heap::process_live()),
                wall.elapsed().as_secs_f64(),
            );
            last = s;
        }
        eprintln!("{:?}", crawler.stats());
        assert!(!crawler.ended(), "the crawler's loop ended");
        assert_eq!(crawler.flush_errors(), 0);

        // Every torrent, with its name and files.
        let mut missing = Vec::new();
        for made in &sim.made {
            let Some((hit, files)) = crawler.with_index(|ix| ix.get(&made.info_hash).expect("get"))
            else {
                missing.push(made.name.clone());
                continue;
            };
            assert_eq!(hit.name, made.name);
            let listed: Vec<(String, u64)> = files.iter().map(|f| (f.path.clone(), f.size)).collect();
            assert_eq!(listed, made.files, "files of {}", made.name);
            assert!(hit.seeders.is_some_and(|s| s >= 1), "{} counted no seeder: {:?}", made.name, hit.seeders);
        }
        assert!(missing.is_empty(), "{} of {} not indexed: {missing:?}", missing.len(), sim.made.len());

        // Found by the words of their names.
        let word = WORDS[0];
        let expected = sim.made.iter().filter(|m| m.name.split(' ').any(|w| w == word)).count();
        let hits = crawler.with_index(|ix| ix.search(word, 10_000).expect("search"));
        assert_eq!(hits.len(), expected, "a search for {word}");

        // Flat: the last hour's peak within 10 % of the first's.
        if let (Some(&first), Some(&end)) = (peaks.first(), peaks.last()) {
            assert!(
                end * 10 <= first * 11,
                "the crawler's heap grew from {:.2} MiB in the first hour to {:.2} MiB in hour {hours}",
                mib(first),
                mib(end)
            );
        }
    });
}
