//! A DHT network on a virtual clock: thousands of [`Dht`] nodes exchanging
//! datagrams with per-datagram latency and loss drawn from one seed.
//!
//! Nodes get public-looking addresses (`30.x.y.z:6881`, never contacted:
//! everything is in memory), so the routing tables run with their default,
//! public-network rules (bogon filter, one node per IP).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::dht::{Dht, DhtConfig, DhtEvent};
use bittide_core::{Instant, Rng, Seed};
use sha1::{Digest, Sha1};

/// Network conditions.
#[derive(Clone, Debug)]
pub struct NetModel {
    /// One-way latency range.
    pub latency: (Duration, Duration),
    /// Probability of losing a datagram, in percent.
    pub loss_percent: u64,
}

impl Default for NetModel {
    fn default() -> NetModel {
        NetModel {
            latency: (Duration::from_millis(20), Duration::from_millis(200)),
            loss_percent: 5,
        }
    }
}

/// The simulation.
pub struct DhtSim {
    /// Virtual time.
    pub now: Instant,
    /// The nodes (`None`: left the network).
    pub nodes: Vec<Option<Dht>>,
    /// Their addresses.
    pub addrs: Vec<SocketAddr>,
    /// Events each node produced.
    pub events: Vec<Vec<DhtEvent>>,
    by_addr: BTreeMap<SocketAddr, usize>,
    queue: BTreeMap<(Instant, u64), (usize, SocketAddr, Vec<u8>)>,
    seq: u64,
    model: NetModel,
    rng: Rng,
    /// Datagrams sent, lost.
    pub sent: u64,
    /// Datagrams dropped by the loss model.
    pub lost: u64,
    /// UDP payload bytes each node received (from anyone, forged sources
    /// included).
    pub bytes_in: Vec<u64>,
    /// UDP payload bytes each node sent (to anyone, lost ones included).
    pub bytes_out: Vec<u64>,
    config: DhtConfig,
    log: Sha1,
}

/// Address of node `i`.
pub fn address(i: usize) -> SocketAddr {
    SocketAddr::from(([30, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881))
}

impl DhtSim {
    /// `n` nodes that join through the first five (which know each
    /// other), a hundred every 3 s, then settle for two minutes.
    pub fn joined(seed: u64, n: usize) -> DhtSim {
        let mut sim = DhtSim::new(seed, n, NetModel::default());
        let boot: Vec<SocketAddr> = (0..5).map(address).collect();
        for i in 0..5 {
            let others: Vec<SocketAddr> =
                boot.iter().copied().filter(|a| *a != address(i)).collect();
            let now = sim.now;
            sim.node(i).expect("present").bootstrap(now, &others);
            sim.flush(i);
        }
        for i in 5..n {
            if i % 100 == 0 {
                let until = sim.now + Duration::from_secs(3);
                sim.run_until(until);
            }
            let now = sim.now;
            sim.node(i).expect("present").bootstrap(now, &boot);
            sim.flush(i);
        }
        let until = sim.now + Duration::from_secs(120);
        sim.run_until(until);
        sim
    }

    /// `n` nodes, none bootstrapped yet.
    pub fn new(seed: u64, n: usize, model: NetModel) -> DhtSim {
        DhtSim::with_config(seed, n, model, DhtConfig::default())
    }

    /// `n` nodes with `config` (this one and those added later).
    pub fn with_config(seed: u64, n: usize, model: NetModel, config: DhtConfig) -> DhtSim {
        let mut rng = Rng::new(Seed::from_u64(seed));
        let mut sim = DhtSim {
            now: Instant::ZERO,
            nodes: Vec::new(),
            addrs: Vec::new(),
            events: Vec::new(),
            by_addr: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            model,
            rng: Rng::new(Seed::from_u64(seed ^ 0xd47)),
            sent: 0,
            lost: 0,
            bytes_in: Vec::new(),
            bytes_out: Vec::new(),
            config,
            log: Sha1::new(),
        };
        for _ in 0..n {
            let s = rng.child_seed();
            sim.add_node(s);
        }
        sim
    }

    /// Adds a node (not yet bootstrapped); returns its index.
    pub fn add_node(&mut self, seed: Seed) -> usize {
        let i = self.nodes.len();
        let addr = address(i);
        self.nodes
            .push(Some(Dht::new(self.now, self.config.clone(), seed)));
        self.addrs.push(addr);
        self.events.push(Vec::new());
        self.bytes_in.push(0);
        self.bytes_out.push(0);
        self.by_addr.insert(addr, i);
        i
    }

    /// Node `i` leaves silently (its datagrams are lost from now on).
    pub fn remove(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// The node at `i`, if present.
    pub fn node(&mut self, i: usize) -> Option<&mut Dht> {
        self.nodes[i].as_mut()
    }

    /// A random number below `n` from the sim's generator.
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    /// The event-log hash (equal for equal runs).
    pub fn log_hash(&self) -> String {
        let d: [u8; 20] = self.log.clone().finalize().into();
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn collect(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(d) = node.poll_transmit() {
            out.push(d);
        }
        while let Some(e) = node.poll_event() {
            self.log
                .update(format!("{} {i} {e:?}\n", self.now.as_nanos()).as_bytes());
            self.events[i].push(e);
        }
        for (to, bytes) in out {
            self.sent += 1;
            self.bytes_out[i] += bytes.len() as u64;
            if self.rng.below(100) < self.model.loss_percent {
                self.lost += 1;
                continue;
            }
            let (lo, hi) = self.model.latency;
            let span = hi.saturating_sub(lo).as_micros() as u64;
            let at = self.now + lo + Duration::from_micros(self.rng.below(span + 1));
            if let Some(&j) = self.by_addr.get(&to) {
                self.seq += 1;
                self.queue.insert((at, self.seq), (j, self.addrs[i], bytes));
            }
        }
    }

    /// Lets node `i` send and report what a command queued.
    pub fn flush(&mut self, i: usize) {
        self.collect(i);
    }

    /// Delivers `bytes` to node `to` at `at` as if sent from `from`, an
    /// address that need not be a node's (a forged source: what the node
    /// sends back to it goes nowhere).
    pub fn inject(&mut self, at: Instant, from: SocketAddr, to: usize, bytes: Vec<u8>) {
        self.seq += 1;
        self.queue
            .insert((at.max(self.now), self.seq), (to, from, bytes));
    }

    /// Runs until `until` (virtual).
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_event = self.queue.keys().next().map(|(t, _)| *t);
            let next_timer = self
                .nodes
                .iter()
                .flatten()
                .filter_map(Dht::poll_timeout)
                .min();
            let next = match (next_event, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(until),
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            if let Some((&key, _)) = self.queue.iter().next() {
                if key.0 <= self.now {
                    let (to, from, bytes) = self.queue.remove(&key).expect("present");
                    if let Some(node) = self.nodes[to].as_mut() {
                        self.bytes_in[to] += bytes.len() as u64;
                        node.handle_datagram(self.now, from, &bytes);
                        self.collect(to);
                    }
                    continue;
                }
            }
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .as_ref()
                    .and_then(Dht::poll_timeout)
                    .is_some_and(|t| t <= self.now);
                if due {
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_timeout(self.now);
                    }
                    self.collect(i);
                }
            }
        }
    }
}
