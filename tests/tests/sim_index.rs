//! Issue 19's simulation: a DHT of engines, some seeding small torrents
//! (announced on the DHT, metadata served by BEP 9), and the crawler that
//! `bittide dht crawl --index` runs, on virtual time
//! (tests/src/sim/crawl.rs). New seeders keep joining with new torrents
//! while it crawls, and as many other nodes leave. The crawl indexes the torrents with their names and
//! files; its harvest and index rates per virtual hour and its heap
//! (charged to it by tests/src/sim/heap.rs) are printed.
//!
//! By default (the test suite) 2,000 nodes seed 2,000 torrents and the
//! crawl runs 30 virtual minutes. `SIM_INDEX_MINUTES=360` is the
//! benchmark's six hours (`benches/index.py --sim`), where the heap must
//! stay flat: the sixth hour's heap at its end within 10 % of the first
//! hour's, its peak within 10 % of the second hour's (the first hour's
//! is the first sweep). At any length, the nodes the walk remembers must
//! follow the network's size.
//! `SIM_INDEX_NODES` (engines), `SIM_INDEX_BARE` (DHT nodes without an
//! engine), `SIM_INDEX_TORRENTS` and `SIM_INDEX_NEW_PER_HOUR` change the
//! scale; `SIM_SEED=n` replays one seed; `--nocapture` shows
//! the figures.

use std::time::Duration;

use bittide_core::dht::crawler::CrawlConfig;
use bittide_core::engine::FetchConfig;
use bittide_tests::sim::crawl::{CrawlSim, CrawlSpec, CRAWLER, WORDS};
use bittide_tests::sim::for_each_seed;
use bittide_tests::sim::heap::{self, NodeHeap};
use bittide_tests::sim::network::UdpModel;

#[global_allocator]
static HEAP: NodeHeap = NodeHeap;

fn env(name: &str, default: u64) -> u64 {
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

/// New torrents join this often while the crawl runs.
const NEW_EVERY: Duration = Duration::from_secs(15 * 60);

#[test]
fn a_crawl_indexes_the_announced_torrents_and_its_heap_stays_flat() {
    for_each_seed(&[19], |seed| {
        let spec = CrawlSpec {
            nodes: env("SIM_INDEX_NODES", 2_000) as usize,
            bare: env("SIM_INDEX_BARE", 0) as usize,
            torrents: env("SIM_INDEX_TORRENTS", 2_000) as usize,
            per_seeder: 5,
            udp: model(),
        };
        let minutes = env("SIM_INDEX_MINUTES", 30);
        let new_per_hour = env("SIM_INDEX_NEW_PER_HOUR", 200) as usize;
        let wall = std::time::Instant::now();
        // Twenty minutes: every torrent is announced again (every 15) in
        // the whole network, not only among the nodes that had joined
        // when its seeder first announced it.
        let mut sim = CrawlSim::new(seed, &spec, Duration::from_secs(20 * 60));
        eprintln!(
            "seed {seed}: {spec:?}, {new_per_hour} new torrents an hour, built in {:.1} s wall",
            wall.elapsed().as_secs_f64()
        );
        heap::watch(CRAWLER);
        let crawler = sim.start_crawler(CrawlConfig::default(), FetchConfig::default());
        let start = sim.now();
        let end = start + Duration::from_secs(60 * minutes);

        // (peak, live at its end) of each hour.
        let mut hours: Vec<(u64, u64)> = Vec::new();
        let mut last = crawler.stats();
        eprintln!(
            "hour  harvested  fetched  indexed  in index  crawler heap: peak   at end  process heap  wall s"
        );
        let mut next_new = start + NEW_EVERY;
        let mut hour_end = start + Duration::from_secs(3600);
        let mut hour = 1;
        loop {
            let until = next_new.min(hour_end).min(end);
            sim.exec.run_until(until, || false);
            if sim.now() >= next_new {
                sim.add_torrents(new_per_hour * NEW_EVERY.as_secs() as usize / 3600);
                next_new += NEW_EVERY;
            }
            if sim.now() >= hour_end || sim.now() >= end {
                let s = crawler.stats();
                let total = crawler.with_index(|ix| ix.stats().expect("stats")).torrents;
                let (peak, live) = (heap::take_peak(), heap::live());
                hours.push((peak, live));
                eprintln!(
                    "{hour:>4}  {:>9}  {:>7}  {:>7}  {total:>8}  {:>12.2} MiB  {:>5.2} MiB  {:>8.1} MiB  {:>6.1}",
                    s.harvested - last.harvested,
                    s.fetched - last.fetched,
                    s.stored - last.stored,
                    mib(peak),
                    mib(live),
                    mib(heap::process_live()),
                    wall.elapsed().as_secs_f64(),
                );
                last = s;
                hour += 1;
                hour_end += Duration::from_secs(3600);
            }
            if sim.now() >= end {
                break;
            }
        }
        eprintln!("{:?}", crawler.stats());
        assert!(!crawler.ended(), "the crawler's loop ended");
        assert_eq!(crawler.flush_errors(), 0);

        // The torrents there when the crawl started, with their names and
        // files. A fetch whose lookup met none of the nodes holding the
        // announce times out; the crawler reports the hash again an hour
        // or two later and it is fetched then.
        let due: Vec<_> = sim
            .made
            .iter()
            .filter(|(_, at)| *at < start)
            .map(|(m, _)| m)
            .collect();
        // Those that came later are found as the crawler meets them: in
        // queries to it (passive), or in samples, which each node renews
        // only every six hours (BEP 51 `interval`), so in a network this
        // small, slowly; this is a figure, not a target.
        let later: Vec<_> = sim.made.iter().filter(|(_, at)| *at >= start).collect();
        let later_indexed = later
            .iter()
            .filter(|(m, _)| {
                crawler
                    .with_index(|ix| ix.get(&m.info_hash).expect("get"))
                    .is_some()
            })
            .count();
        eprintln!(
            "{later_indexed} of {} torrents that joined during the crawl indexed",
            later.len()
        );
        let (mut missing, mut with_seeders) = (Vec::new(), 0);
        for made in &due {
            let Some((hit, files)) = crawler.with_index(|ix| ix.get(&made.info_hash).expect("get"))
            else {
                missing.push(made.name.clone());
                continue;
            };
            assert_eq!(hit.name, made.name);
            let listed: Vec<(String, u64)> =
                files.iter().map(|f| (f.path.clone(), f.size)).collect();
            assert_eq!(listed, made.files, "files of {}", made.name);
            with_seeders += usize::from(hit.seeders.is_some_and(|s| s >= 1));
        }
        eprintln!(
            "{} of {} torrents there at the start indexed (not yet: {missing:?}); {with_seeders} counted with a seeder (BEP 33)",
            due.len() - missing.len(),
            due.len()
        );
        let allowed = if minutes >= 180 { 0 } else { due.len() / 100 };
        assert!(
            missing.len() <= allowed,
            "{} of {} not indexed",
            missing.len(),
            due.len()
        );
        // BEP 33 estimates come from the nodes a lookup asks, some of which
        // may not hold the seeder's announce yet.
        assert!(
            with_seeders * 20 >= due.len() * 19,
            "only {with_seeders} counted with a seeder"
        );

        // Found by the words of their names.
        let word = WORDS[0];
        let indexed: Vec<_> = due
            .iter()
            .filter(|m| !missing.contains(&m.name) && m.name.split(' ').any(|w| w == word))
            .collect();
        let hits = crawler.with_index(|ix| ix.search(word, 10_000).expect("search"));
        assert!(hits.iter().all(|h| h.name.split(' ').any(|w| w == word)));
        for m in indexed {
            assert!(
                hits.iter().any(|h| h.info_hash == m.info_hash),
                "a search for {word} misses {}",
                m.name
            );
        }

        // What the walk remembers follows the network: nodes that left are
        // forgotten (after two failed queries), not kept for good.
        let walk = crawler.crawl_stats().expect("crawling");
        let live = sim.live_nodes();
        eprintln!(
            "the walk remembers {} nodes; {live} in the network",
            walk.nodes_known
        );
        assert!(
            walk.nodes_known <= live + live / 4,
            "the walk remembers {} nodes of a network of {live}",
            walk.nodes_known
        );

        // Flat: the sixth hour's heap at its end within 10 % of the first
        // hour's, and its peak within 10 % of the second hour's (the first
        // hour's peak is the first sweep, 64 fetches at once).
        if let (Some(&(_, end1)), Some(&(peak2, _)), Some(&(peak6, end6))) =
            (hours.first(), hours.get(1), hours.get(5))
        {
            eprintln!(
                "crawler heap, hour 6: peak {:.3} of hour 2's, at its end {:.3} of hour 1's",
                peak6 as f64 / peak2 as f64,
                end6 as f64 / end1 as f64
            );
            assert!(peak6 * 10 <= peak2 * 11, "peak grew: {hours:?}");
            assert!(
                end6 * 10 <= end1 * 11,
                "heap at the hour's end grew: {hours:?}"
            );
        }
    });
}
