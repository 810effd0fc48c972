//! LEDBAT end to end: the queue uTP builds at a bottleneck stays near the
//! 100 ms target instead of filling the buffer, and a competing flow on
//! the same bottleneck makes uTP yield.

use std::time::Duration;

use super::path::PathModel;
use super::{FixedRateFlow, Pair};
use crate::time::Instant;

const RATE: u64 = 1_000_000;

fn bottleneck() -> PathModel {
    PathModel {
        latency: Duration::from_millis(20),
        jitter: Duration::ZERO,
        loss_permille: 0,
        dup_permille: 0,
        rate: Some(RATE),
        buffer: Duration::from_secs(2),
    }
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

/// Runs `pair` until `until`, recording the bottleneck's queuing delay.
fn run_until(pair: &mut Pair, until: Instant) -> Vec<(Instant, Duration)> {
    let mut queue = Vec::new();
    while pair.now < until {
        pair.step();
        queue.push((pair.now, pair.net.queue_delay(pair.now, 0)));
    }
    queue
}

#[test]
fn the_queue_stays_near_the_target_delay() {
    let mut pair = Pair::new(11, bottleneck(), 40 * RATE as usize, 0);
    let queue = run_until(&mut pair, at(30));
    let steady: Vec<Duration> = queue
        .iter()
        .filter(|(t, _)| *t >= at(10))
        .map(|&(_, d)| d)
        .collect();
    let mean = steady.iter().sum::<Duration>() / steady.len() as u32;
    let max = steady.iter().max().copied().unwrap_or_default();
    let throughput = pair.received_between(at(10), at(30)) as u64 / 20;
    eprintln!("queue mean {mean:?} max {max:?}; throughput {throughput} B/s of {RATE}");
    assert!(mean <= Duration::from_millis(150), "queue mean {mean:?}");
    assert!(
        max < Duration::from_millis(400),
        "queue max {max:?} (buffer 2 s)"
    );
    assert!(
        throughput >= RATE * 8 / 10,
        "bottleneck underused: {throughput} B/s"
    );
    assert_eq!(pair.net.tail_drops, 0, "LEDBAT never fills the buffer");
}

#[test]
fn a_competing_flow_makes_utp_yield() {
    let mut pair = Pair::new(12, bottleneck(), 60 * RATE as usize, 0);
    // 70 % of the bottleneck from 20 s to 40 s.
    let competitor_rate = RATE * 7 / 10;
    pair.competitor = Some(FixedRateFlow {
        rate: competitor_rate,
        datagram: 1000,
        active: (at(20), at(40)),
        next_send: at(20),
        delays: Vec::new(),
    });
    run_until(&mut pair, at(50));
    let alone = pair.received_between(at(10), at(20)) as u64 / 10;
    let shared = pair.received_between(at(25), at(40)) as u64 / 15;
    let after = pair.received_between(at(43), at(50)) as u64 / 7;
    let flow = pair.competitor.as_ref().unwrap();
    let mean = |from: usize, to: usize| {
        let d = &flow.delays[from.min(flow.delays.len())..to.min(flow.delays.len())];
        d.iter().sum::<Duration>() / d.len().max(1) as u32
    };
    // 700 datagrams a second: the first 5 s while uTP backs off, the
    // last 10 s once it has.
    let settling = mean(0, 3500);
    let mean_delay = mean(7000, 14000);
    eprintln!("competitor's queuing delay: {settling:?} in its first 5 s, {mean_delay:?} in its last 10 s");
    let expected = (competitor_rate * 20 / 1000) as usize;
    eprintln!(
        "uTP alone {alone} B/s, with the competitor {shared} B/s, after {after} B/s; \
         competitor: {} of {expected} datagrams, mean queuing delay {mean_delay:?}; tail drops {}",
        flow.delays.len(),
        pair.net.tail_drops
    );
    assert!(alone >= RATE * 8 / 10, "alone: {alone} B/s");
    // uTP leaves the competitor its 70 %: it takes at most the rest (plus
    // header overhead slack), and still uses some of it.
    assert!(shared <= RATE * 35 / 100, "uTP did not yield: {shared} B/s");
    assert!(shared >= RATE / 20, "uTP starved completely: {shared} B/s");
    assert!(
        flow.delays.len() + 1 >= expected,
        "the competitor lost datagrams: {} of {expected}",
        flow.delays.len()
    );
    assert!(
        mean_delay <= Duration::from_millis(200),
        "the competitor queued {mean_delay:?} on average"
    );
    assert!(
        after >= RATE * 7 / 10,
        "uTP did not take the link back: {after} B/s"
    );
}
