//! Transfers both ways under loss, reordering, duplication and latency
//! complete with identical bytes and a clean close.

use std::time::Duration;

use super::path::PathModel;
use super::Pair;
use crate::time::Instant;

const MIB: usize = 1 << 20;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A path with `loss` per mille, one-way `latency`, jitter that reorders,
/// duplication, and a 10 MiB/s bottleneck with half a second of buffer.
fn lossy(loss_permille: u64, latency: Duration, jitter: Duration, dup_permille: u64) -> PathModel {
    PathModel {
        latency,
        jitter,
        loss_permille,
        dup_permille,
        rate: Some(10 * MIB as u64),
        buffer: ms(500),
    }
}

fn transfer(seed: u64, model: PathModel) -> Pair {
    let mut pair = Pair::new(seed, model, 4 * MIB, MIB);
    pair.run_to_completion();
    pair.assert_delivered();
    eprintln!(
        "seed {seed}: {model:?}: delivered at {}, closed at {}, {} steps; \
         {} lost at random, {} tail drops",
        pair.delivered_at(),
        pair.now,
        pair.steps,
        pair.net.random_losses,
        pair.net.tail_drops
    );
    pair
}

#[test]
fn clean_path() {
    let pair = transfer(1, lossy(0, ms(10), Duration::ZERO, 0));
    let done = pair.delivered_at();
    // 5 MiB at 10 MiB/s is half a second of serialisation.
    assert!(
        done < Instant::ZERO + ms(800),
        "5 MiB over a clean 10 MiB/s path took {done}"
    );
}

#[test]
fn one_percent_loss_with_reordering_and_duplicates() {
    transfer(2, lossy(10, ms(50), ms(10), 10));
}

#[test]
fn five_percent_loss() {
    transfer(3, lossy(50, ms(100), ms(20), 20));
}

#[test]
fn ten_percent_loss_at_300_ms() {
    transfer(4, lossy(100, ms(300), ms(50), 50));
}

#[test]
fn heavy_reordering_and_duplication_without_loss() {
    transfer(5, lossy(0, ms(20), ms(40), 100));
}

#[test]
fn clocks_that_disagree_and_wrap() {
    let mut pair = Pair::new(6, lossy(10, ms(30), ms(5), 0), 2 * MIB, 2 * MIB);
    // Host 1's microsecond clock wraps (2³² µs ≈ 4295 s) a second in.
    pair.hosts[1].clock_offset =
        Duration::from_micros(u64::from(u32::MAX)) - Duration::from_secs(1);
    pair.run_to_completion();
    pair.assert_delivered();
}

/// Path MTU discovery: over a path narrower than the largest datagram,
/// probes past it are lost, the connection settles just under it, and the
/// transfer completes; over a wide one it settles at the largest.
#[test]
fn the_datagram_size_settles_under_the_path_mtu() {
    for (seed, mtu) in [(7, 1300), (8, 1400), (9, usize::MAX)] {
        let mut pair = Pair::new(seed, lossy(0, ms(20), Duration::ZERO, 0), 2 * MIB, 0);
        pair.path_mtu = mtu;
        pair.run_to_completion();
        pair.assert_delivered();
        let stats = pair.sender_stats();
        let top = mtu.min(crate::utp::Config::default().max_datagram);
        eprintln!(
            "path MTU {mtu}: {stats:?}, {} probes dropped",
            pair.probes_dropped
        );
        assert!(
            stats.datagram_size <= top
                && stats.datagram_size + super::super::mtu::SEARCH_DONE >= top,
            "path MTU {mtu}: settled at {}",
            stats.datagram_size
        );
        assert!(stats.probes_acked > 0);
        assert_eq!(u64::from(stats.probes_lost), pair.probes_dropped);
        assert_eq!(
            pair.probes_dropped > 0,
            mtu < 1472,
            "probes lost only on a narrow path"
        );
    }
}
