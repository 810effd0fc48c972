//! Bare [`Dht`] nodes on the [`Network`]'s UDP: thousands of nodes on a
//! virtual clock, plus hostile nodes that lie.
//!
//! Engines with only a DHT would run the same node behind the driver loop;
//! bare nodes skip the loop so that 10,000 of them fit in the test budget
//! (see `tests/sim_dht_scale.rs` for the figures). Nodes get public-looking
//! addresses (`30.x.y.z:6881`, never contacted: everything is in memory),
//! so the routing tables run with their public-network rules (bogon
//! filter, one node per IP).
//!
//! Each node's deadline is cached after every call into it and kept in a
//! time-ordered index, so a step costs O(log n), not a scan of every node.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::dht::{Dht, DhtConfig, DhtEvent};
use bittide_core::krpc::{Body, CompactNode, Message, NodeId, Query, Response};
use bittide_core::{InfoHash, Instant, Rng, Seed};
use sha1::{Digest, Sha1};

use super::network::{Delivery, Network, UdpModel};

/// Network conditions of a DHT simulation (the UDP part of the model).
pub type NetModel = UdpModel;

/// Address of node `i`.
pub fn address(i: usize) -> SocketAddr {
    SocketAddr::from(([30, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881))
}

/// Address of hostile node `k` (another range, so tests can tell them
/// apart).
pub fn hostile_address(k: usize) -> SocketAddr {
    SocketAddr::from(([50, (k >> 16) as u8, (k >> 8) as u8, k as u8], 6881))
}

/// Where hostile nodes claim peers are (nobody is there).
pub fn is_forged_peer(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), std::net::IpAddr::V4(v4) if v4.octets()[0] == 66)
}

/// A node that lies: it claims ids next to whatever is sought (id
/// spoofing, a Sybil cluster), answers `get_peers` with made-up peers and
/// a made-up token, sends `announce_peer` with tokens it never got, and
/// sprays responses with guessed transaction ids from other nodes'
/// addresses (forged replies).
#[derive(Debug)]
pub struct Hostile {
    addr: SocketAddr,
}

/// Info-hashes hostile nodes announce with wrong tokens: no honest node
/// may store them.
pub fn poisoned_hash(k: usize) -> InfoHash {
    let mut h = [0xeeu8; 20];
    h[..8].copy_from_slice(&(k as u64).to_be_bytes());
    InfoHash(h)
}

/// Hostile nodes' actions, every this often.
const ATTACK_EVERY: Duration = Duration::from_secs(5);

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
    /// The lying nodes.
    pub hostile: Vec<Hostile>,
    /// When they next attack (all at once, in index order).
    next_attack: Instant,
    by_addr: BTreeMap<SocketAddr, usize>,
    hostile_by_addr: BTreeMap<SocketAddr, usize>,
    /// The network every datagram crosses.
    pub net: Network,
    /// Each node's cached deadline, and the same as an ordered index.
    deadline: Vec<Option<Instant>>,
    timers: BTreeSet<(Instant, usize)>,
    rng: Rng,
    /// UDP payload bytes each node received (from anyone, forged sources
    /// included).
    pub bytes_in: Vec<u64>,
    /// UDP payload bytes each node sent (to anyone, lost ones included).
    pub bytes_out: Vec<u64>,
    config: DhtConfig,
    log: Sha1,
    /// Events logged.
    pub log_len: u64,
    /// Datagrams handled plus timeouts run.
    pub steps: u64,
}

impl DhtSim {
    /// `n` nodes that join through the first five (which know each
    /// other), a hundred every 3 s, then settle for two minutes.
    pub fn joined(seed: u64, n: usize) -> DhtSim {
        DhtSim::joined_with(seed, n, NetModel::default(), 100, Duration::from_secs(120))
    }

    /// As [`DhtSim::joined`], with `model`, `per_batch` nodes joining
    /// every 3 s and `settle` after the last.
    pub fn joined_with(
        seed: u64,
        n: usize,
        model: NetModel,
        per_batch: usize,
        settle: Duration,
    ) -> DhtSim {
        let mut sim = DhtSim::new(seed, n, model);
        let boot = sim.boot_nodes();
        for i in 0..5.min(n) {
            let others: Vec<SocketAddr> =
                boot.iter().copied().filter(|a| *a != address(i)).collect();
            let now = sim.now;
            sim.node(i).expect("present").bootstrap(now, &others);
            sim.flush(i);
        }
        for i in 5..n {
            if i.is_multiple_of(per_batch) {
                let until = sim.now + Duration::from_secs(3);
                sim.run_until(until);
            }
            let now = sim.now;
            sim.node(i).expect("present").bootstrap(now, &boot);
            sim.flush(i);
        }
        let until = sim.now + settle;
        sim.run_until(until);
        sim
    }

    /// The five nodes everyone joins through.
    pub fn boot_nodes(&self) -> Vec<SocketAddr> {
        (0..5.min(self.nodes.len())).map(address).collect()
    }

    /// `n` nodes, none bootstrapped yet.
    pub fn new(seed: u64, n: usize, model: NetModel) -> DhtSim {
        DhtSim::with_config(seed, n, model, DhtConfig::default())
    }

    /// `n` nodes with `config` (this one and those added later).
    pub fn with_config(seed: u64, n: usize, model: NetModel, config: DhtConfig) -> DhtSim {
        let master = Seed::from_u64(seed);
        let mut rng = Rng::new(master.child(1));
        let mut sim = DhtSim {
            now: Instant::ZERO,
            nodes: Vec::new(),
            addrs: Vec::new(),
            events: Vec::new(),
            hostile: Vec::new(),
            next_attack: Instant::MAX,
            by_addr: BTreeMap::new(),
            hostile_by_addr: BTreeMap::new(),
            net: Network::new(master.child(2), model),
            deadline: Vec::new(),
            timers: BTreeSet::new(),
            rng: Rng::new(master.child(3)),
            bytes_in: Vec::new(),
            bytes_out: Vec::new(),
            config,
            log: Sha1::new(),
            log_len: 0,
            steps: 0,
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
        self.deadline.push(None);
        self.by_addr.insert(addr, i);
        self.refresh_timer(i);
        i
    }

    /// Adds `n` hostile nodes, each first pinging `contacts` random honest
    /// nodes so that it gets into tables.
    pub fn add_hostile(&mut self, n: usize, contacts: usize) {
        for _ in 0..n {
            let k = self.hostile.len();
            let addr = hostile_address(k);
            self.hostile.push(Hostile { addr });
            self.next_attack = self.next_attack.min(self.now + ATTACK_EVERY);
            self.hostile_by_addr.insert(addr, k);
            for _ in 0..contacts {
                let to = self.random_live();
                let msg = Message {
                    tx: vec![0xbe, 0xef],
                    id: Some(NodeId(self.random_bytes())),
                    version: None,
                    ip: None,
                    read_only: false,
                    body: Body::Query(Query::Ping),
                };
                self.hostile_send(addr, self.addrs[to], &msg);
            }
        }
    }

    /// Node `i` leaves silently (its datagrams are lost from now on).
    pub fn remove(&mut self, i: usize) {
        self.nodes[i] = None;
        self.set_deadline(i, None);
    }

    /// The node at `i`, if present.
    pub fn node(&mut self, i: usize) -> Option<&mut Dht> {
        self.nodes[i].as_mut()
    }

    /// A random number below `n` from the sim's generator.
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    /// Twenty random bytes from the sim's generator.
    pub fn random_bytes(&mut self) -> [u8; 20] {
        let mut b = [0u8; 20];
        self.rng.fill(&mut b);
        b
    }

    /// A random node still in the network.
    pub fn random_live(&mut self) -> usize {
        loop {
            let i = self.rng.below(self.nodes.len() as u64) as usize;
            if self.nodes[i].is_some() {
                return i;
            }
        }
    }

    /// Each of `count` random info-hashes announced (port 7000) from a
    /// random live node: the hashes with their announcers.
    pub fn announce_random(&mut self, count: usize) -> Vec<(InfoHash, usize)> {
        let mut jobs = Vec::new();
        for _ in 0..count {
            let hash = InfoHash(self.random_bytes());
            let announcer = self.random_live();
            let now = self.now;
            if let Some(node) = self.node(announcer) {
                node.announce(now, hash, 7000, false);
            }
            self.flush(announcer);
            jobs.push((hash, announcer));
        }
        jobs
    }

    /// The event-log hash (equal for equal runs).
    pub fn log_hash(&self) -> String {
        let d: [u8; 20] = self.log.clone().finalize().into();
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn set_deadline(&mut self, i: usize, d: Option<Instant>) {
        if let Some(old) = self.deadline[i] {
            self.timers.remove(&(old, i));
        }
        if let Some(new) = d {
            self.timers.insert((new, i));
        }
        self.deadline[i] = d;
    }

    fn refresh_timer(&mut self, i: usize) {
        let d = self.nodes[i].as_ref().and_then(Dht::poll_timeout);
        if d != self.deadline[i] {
            self.set_deadline(i, d);
        }
    }

    fn collect(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(d) = node.poll_transmit() {
            out.push(d);
        }
        let mut events = Vec::new();
        while let Some(e) = node.poll_event() {
            events.push(e);
        }
        for e in events {
            self.log
                .update(format!("{} {i} {e:?}\n", self.now.as_nanos()).as_bytes());
            self.log_len += 1;
            self.events[i].push(e);
        }
        for (to, bytes) in out {
            self.bytes_out[i] += bytes.len() as u64;
            self.net.send_datagram(self.now, self.addrs[i], to, bytes);
        }
        self.refresh_timer(i);
    }

    /// Lets node `i` send and report what a command queued.
    pub fn flush(&mut self, i: usize) {
        self.collect(i);
    }

    /// Datagrams sent.
    pub fn sent(&self) -> u64 {
        self.net.stats.datagrams
    }

    /// Datagrams the loss model dropped.
    pub fn lost(&self) -> u64 {
        self.net.stats.lost
    }

    /// Delivers `bytes` to node `to` at `at` as if sent from `from`, an
    /// address that need not be a node's (a forged source: what the node
    /// sends back to it goes nowhere). It bypasses the loss model.
    pub fn inject(&mut self, at: Instant, from: SocketAddr, to: usize, bytes: Vec<u8>) {
        let to = self.addrs[to];
        let payload = bytes;
        self.net
            .inject(at.max(self.now), Delivery::Datagram { from, to, payload });
    }

    /// Runs until `until` (virtual).
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_delivery = self.net.next_deadline();
            let next_timer = self.timers.iter().next().map(|(t, _)| *t);
            let next = [next_delivery, next_timer, Some(self.next_attack)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until);
            if next > until {
                self.now = self.now.max(until);
                return;
            }
            self.now = self.now.max(next);
            self.steps += 1;
            if let Some((_, d)) = self.net.pop_due(self.now) {
                if let Delivery::Datagram { from, to, payload } = d {
                    self.datagram(from, to, &payload);
                }
                continue;
            }
            if let Some(&(t, i)) = self.timers.iter().next() {
                if t <= self.now {
                    self.set_deadline(i, None);
                    if let Some(n) = self.nodes[i].as_mut() {
                        n.handle_timeout(self.now);
                    }
                    self.collect(i);
                    continue;
                }
            }
            if self.next_attack <= self.now {
                self.next_attack = self.now + ATTACK_EVERY;
                for k in 0..self.hostile.len() {
                    self.attack(k);
                }
            }
        }
    }

    fn datagram(&mut self, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
        if let Some(&i) = self.by_addr.get(&to) {
            if let Some(node) = self.nodes[i].as_mut() {
                self.bytes_in[i] += payload.len() as u64;
                node.handle_datagram(self.now, from, payload);
                self.collect(i);
            }
        } else if let Some(&k) = self.hostile_by_addr.get(&to) {
            self.hostile_answer(k, from, payload);
        }
    }

    fn hostile_send(&mut self, from: SocketAddr, to: SocketAddr, msg: &Message) {
        let mut bytes = Vec::new();
        msg.encode(&mut bytes);
        self.net.send_datagram(self.now, from, to, bytes);
    }

    /// Ids next to `target` (sharing all but the last bytes), as a Sybil
    /// cluster placed around a key would claim.
    fn near(&mut self, target: &[u8; 20]) -> NodeId {
        let mut id = *target;
        let r = self.random_bytes();
        id[17..].copy_from_slice(&r[17..]);
        NodeId(id)
    }

    fn hostile_answer(&mut self, k: usize, from: SocketAddr, payload: &[u8]) {
        let Ok(msg) = Message::decode(payload) else {
            return;
        };
        let Body::Query(q) = msg.body else {
            return;
        };
        let me = self.hostile[k].addr;
        let target = match &q {
            Query::FindNode { target, .. } | Query::SampleInfohashes { target, .. } => target.0,
            Query::GetPeers { info_hash, .. } => info_hash.0,
            _ => self.random_bytes(),
        };
        let mut response = Response::default();
        if matches!(q, Query::FindNode { .. } | Query::GetPeers { .. }) {
            // Fellow liars, each claiming an id next to the target.
            for _ in 0..8 {
                let j = self.rng.below(self.hostile.len() as u64) as usize;
                let addr = self.hostile[j].addr;
                let id = self.near(&target);
                response.nodes.push(CompactNode { id, addr });
            }
        }
        if let Query::GetPeers { .. } = q {
            for _ in 0..4 {
                let b = self.random_bytes();
                response
                    .values
                    .push(SocketAddr::from(([66, b[0], b[1], b[2]], 7000)));
            }
            response.token = Some(self.random_bytes()[..8].to_vec());
        }
        let reply = Message {
            tx: msg.tx,
            id: Some(self.near(&target)),
            version: None,
            ip: Some(from),
            read_only: false,
            body: Body::Response(response),
        };
        self.hostile_send(me, from, &reply);
    }

    /// A hostile node's periodic mischief: an `announce_peer` with a token
    /// it never received, and a forged reply with a guessed transaction id
    /// from another honest node's address.
    fn attack(&mut self, k: usize) {
        let me = self.hostile[k].addr;
        let victim = self.random_live();
        let announce = Message {
            tx: vec![0xa1, k as u8],
            id: Some(NodeId(self.random_bytes())),
            version: None,
            ip: None,
            read_only: false,
            body: Body::Query(Query::AnnouncePeer {
                info_hash: poisoned_hash(k % 16),
                port: 6666,
                token: self.random_bytes()[..8].to_vec(),
                implied_port: false,
                seed: false,
            }),
        };
        self.hostile_send(me, self.addrs[victim], &announce);
        let impersonated = self.random_live();
        let tx = self.random_bytes();
        let mut response = Response::default();
        for _ in 0..8 {
            let j = self.rng.below(self.hostile.len() as u64) as usize;
            let id = NodeId(self.random_bytes());
            response.nodes.push(CompactNode {
                id,
                addr: self.hostile[j].addr,
            });
        }
        let forged = Message {
            tx: tx[..2].to_vec(),
            id: Some(NodeId(self.random_bytes())),
            version: None,
            ip: None,
            read_only: false,
            body: Body::Response(response),
        };
        let mut bytes = Vec::new();
        forged.encode(&mut bytes);
        let from = self.addrs[impersonated];
        self.net
            .send_datagram(self.now, from, self.addrs[victim], bytes);
    }
}
