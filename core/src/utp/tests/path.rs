//! A seeded model of the path between two hosts, on virtual time: one-way
//! latency with jitter (which reorders), random loss and duplication, and
//! per-direction bottlenecks (a rate and a drop-tail buffer measured in
//! queuing delay), the way str0m's netem crate and quinn-proto's test
//! pairs model a link.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::rng::{Rng, Seed};
use crate::time::Instant;

/// How one direction of the path behaves.
#[derive(Clone, Copy, Debug)]
pub(super) struct PathModel {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Extra delay, uniform in `0..jitter`, per datagram.
    pub jitter: Duration,
    /// Datagrams lost, per thousand.
    pub loss_permille: u64,
    /// Datagrams delivered twice, per thousand.
    pub dup_permille: u64,
    /// Bottleneck rate in bytes per second, if any.
    pub rate: Option<u64>,
    /// Queuing delay past which the bottleneck drops (drop-tail).
    pub buffer: Duration,
}

impl PathModel {
    /// A clean path with `latency` and no bottleneck.
    pub(super) fn clean(latency: Duration) -> PathModel {
        PathModel {
            latency,
            jitter: Duration::ZERO,
            loss_permille: 0,
            dup_permille: 0,
            rate: None,
            buffer: Duration::from_secs(1),
        }
    }
}

/// Who a datagram is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Dest {
    /// Host 0 or 1.
    Host(usize),
    /// The competing flow's sink (on host 1's side), with the instant the
    /// datagram entered the bottleneck queue.
    Sink(Instant),
}

/// Datagrams on their way, in arrival order.
pub(super) struct Network {
    rng: Rng,
    /// Per sending host: its direction's model and when its bottleneck
    /// is next free.
    directions: [(PathModel, Instant); 2],
    in_flight: BTreeMap<(Instant, u64), (Dest, Vec<u8>)>,
    counter: u64,
    /// Datagrams the bottleneck dropped because its buffer was full.
    pub tail_drops: u64,
    /// Datagrams lost at random.
    pub random_losses: u64,
    /// Whether the path is down: everything sent is lost.
    pub cut: bool,
}

impl Network {
    pub(super) fn new(seed: u64, forward: PathModel, backward: PathModel) -> Network {
        Network {
            rng: Rng::new(Seed::from_u64(seed)),
            directions: [(forward, Instant::ZERO), (backward, Instant::ZERO)],
            in_flight: BTreeMap::new(),
            counter: 0,
            tail_drops: 0,
            random_losses: 0,
            cut: false,
        }
    }

    /// How long a datagram sent now from `host` would queue at its
    /// bottleneck.
    pub(super) fn queue_delay(&self, now: Instant, host: usize) -> Duration {
        self.directions[host].1 - now
    }

    /// `host` sends `datagram` at `now` to `dest`.
    pub(super) fn send(&mut self, now: Instant, host: usize, dest: Dest, datagram: Vec<u8>) {
        let (model, _) = self.directions[host];
        if self.cut {
            return;
        }
        if self.rng.below(1000) < model.loss_permille {
            self.random_losses += 1;
            return;
        }
        let copies = if self.rng.below(1000) < model.dup_permille {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut depart = now;
            if let Some(rate) = model.rate {
                let free_at = &mut self.directions[host].1;
                let start = (*free_at).max(now);
                if start - now > model.buffer {
                    self.tail_drops += 1;
                    return;
                }
                let serialise = Duration::from_nanos(
                    (datagram.len() as u64).saturating_mul(1_000_000_000) / rate.max(1),
                );
                *free_at = start + serialise;
                depart = *free_at;
            }
            let jitter = model.jitter.as_nanos() as u64;
            let extra = Duration::from_nanos(self.rng.below(jitter));
            let arrival = depart + model.latency + extra;
            self.counter += 1;
            self.in_flight
                .insert((arrival, self.counter), (dest, datagram.clone()));
        }
    }

    /// When the next datagram arrives.
    pub(super) fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.keys().next().map(|&(t, _)| t)
    }

    /// The next datagram due by `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Dest, Vec<u8>)> {
        let (&key, _) = self.in_flight.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.in_flight.remove(&key)
    }
}
