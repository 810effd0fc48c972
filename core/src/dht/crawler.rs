//! `Crawler`: the bookkeeping of a keyspace walk that harvests info-hashes
//! (BEP 51 `sample_infohashes`).
//!
//! The walk asks each node it meets for a sample, with a random target so
//! the `nodes` of each answer come from a random region of the keyspace and
//! the frontier spreads over the whole network. A node is asked again only
//! after the `interval` it gave (BEP 51: it will not refresh its sample
//! sooner). Nodes that do not know the method (error 204) are asked
//! `find_node` instead, so they still lead to others. When nobody is left
//! to visit, known nodes are asked `find_node` for random targets (each at
//! most once per `default_interval`): in a small network the samples' node
//! lists alone reach only about three quarters of the nodes.
//!
//! Memory is bounded however long the walk runs: the nodes remembered are
//! capped, the oldest forgotten first (a forgotten node can be asked
//! again), and the info-hashes already reported are kept in a
//! [`SeenFilter`] of fixed size (a hash met again is reported again after
//! [`CrawlConfig::report_again_after`], so the index behind the crawl can
//! retry what it could not fetch).
//!
//! The `Dht` owns a `Crawler` while crawling and does the sending; this
//! module decides whom to ask and what is new.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::seen::SeenFilter;
use crate::krpc::CompactNode;
use crate::metainfo::InfoHash;
use crate::peer::TokenBucket;
use crate::time::Instant;

/// Settings of a crawl.
#[derive(Clone, Debug)]
pub struct CrawlConfig {
    /// Crawl queries sent per second at most (on top of the node's own
    /// traffic, and within its overall outgoing budget).
    pub rate: u64,
    /// Crawl queries waiting for an answer at most.
    pub max_in_flight: usize,
    /// Nodes remembered (visited or waiting) at most.
    pub max_nodes: usize,
    /// Info-hashes remembered as already reported: one generation of the
    /// [`SeenFilter`] (memory is about 4 bytes per hash, fixed).
    pub max_hashes: usize,
    /// A hash met again is reported again after one to two of these (an
    /// index refreshes when it was last seen, and fetches again what it
    /// could not fetch before); zero: only when `max_hashes` newer ones
    /// have pushed it out.
    pub report_again_after: Duration,
    /// Wait before asking a node again when it gave no `interval`.
    pub default_interval: Duration,
    /// Longest wait honoured (BEP 51 caps `interval` at 6 hours).
    pub max_interval: Duration,
    /// Wait before a node is asked `find_node` to find more nodes, counted
    /// from the last query to it.
    pub explore_interval: Duration,
    /// Wait before asking again a node that failed once (datagrams get
    /// lost).
    pub retry_after: Duration,
}

impl Default for CrawlConfig {
    fn default() -> CrawlConfig {
        CrawlConfig {
            rate: 200,
            max_in_flight: 256,
            max_nodes: 200_000,
            max_hashes: 1_000_000,
            report_again_after: Duration::from_secs(3600),
            default_interval: Duration::from_secs(600),
            max_interval: Duration::from_secs(6 * 3600),
            explore_interval: Duration::from_secs(120),
            retry_after: Duration::from_secs(30),
        }
    }
}

/// How an info-hash was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HarvestSource {
    /// In a `sample_infohashes` answer (BEP 51).
    Sample,
    /// Someone asked us `get_peers` for it.
    GetPeers,
    /// Someone announced it to us.
    AnnouncePeer,
}

/// Counters of a crawl.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrawlStats {
    /// `sample_infohashes` queries sent.
    pub samples_sent: u64,
    /// `find_node` queries sent to nodes without BEP 51.
    pub find_nodes_sent: u64,
    /// Answers received.
    pub answers: u64,
    /// Queries that failed or timed out.
    pub failures: u64,
    /// Nodes that answered 204 (no BEP 51).
    pub unsupported: u64,
    /// Info-hashes reported (each once per
    /// [`CrawlConfig::report_again_after`] at most).
    pub harvested: u64,
    /// Nodes remembered now.
    pub nodes_known: usize,
    /// Nodes waiting for their first visit.
    pub frontier: usize,
}

/// What to send next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlQuery {
    /// `sample_infohashes` to this node.
    Sample(SocketAddr),
    /// `find_node` to this node (it has no BEP 51).
    FindNode(SocketAddr),
}

#[derive(Clone, Copy, Debug)]
struct Known {
    /// When it may be asked again (`None`: waiting in the frontier or
    /// asked now).
    next_visit: Option<Instant>,
    /// Answered 204 once: use `find_node`.
    unsupported: bool,
    /// Last query sent to it (every answer names nodes).
    last_asked: Option<Instant>,
    /// Failures in a row.
    failures: u8,
    /// Its entry in `known_order` (older entries of a forgotten and
    /// rediscovered address carry an older number and are stale).
    seq: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Crawler {
    config: CrawlConfig,
    known: BTreeMap<SocketAddr, Known>,
    /// Insertion order of `known`, to forget the oldest.
    known_order: VecDeque<(SocketAddr, u64)>,
    next_seq: u64,
    /// Addresses that failed twice in a row lately: not rediscovered
    /// (every node that still lists them would otherwise cost two more
    /// queries each time), for half of `max_interval` to all of it, in
    /// fixed memory.
    failed: SeenFilter,
    frontier: VecDeque<SocketAddr>,
    /// Revisits by due time.
    due: BTreeSet<(Instant, SocketAddr)>,
    reported: SeenFilter,
    in_flight: usize,
    budget: TokenBucket,
    stats: CrawlStats,
}

impl Crawler {
    /// A crawl starting at `now`; `key` keys its [`SeenFilter`] (secret).
    pub fn new(now: Instant, config: CrawlConfig, key: [u8; 16]) -> Crawler {
        let rate = config.rate.max(1);
        Crawler {
            budget: TokenBucket::with_burst(rate, rate, now),
            known: BTreeMap::new(),
            known_order: VecDeque::new(),
            next_seq: 0,
            failed: SeenFilter::new(
                now,
                (config.max_nodes / 4).max(1),
                config.max_interval / 2,
                failed_key(key),
            ),
            frontier: VecDeque::new(),
            due: BTreeSet::new(),
            reported: SeenFilter::new(now, config.max_hashes, config.report_again_after, key),
            in_flight: 0,
            stats: CrawlStats::default(),
            config,
        }
    }

    /// The counters.
    pub fn stats(&self) -> CrawlStats {
        CrawlStats {
            nodes_known: self.known.len(),
            frontier: self.frontier.len(),
            ..self.stats
        }
    }

    /// A node met anywhere (an answer, a query, another node of ours):
    /// queued for a visit unless already known.
    pub fn discover(&mut self, addr: SocketAddr) {
        if self.known.contains_key(&addr) || self.failed.contains(&addr_key(addr)) {
            return;
        }
        let max = self.config.max_nodes.max(1);
        while self.known.len() >= max || self.known_order.len() >= 2 * max {
            let Some(old) = self.known_order.pop_front() else {
                break;
            };
            if self.is_current(&old) {
                self.forget(old.0);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.known.insert(
            addr,
            Known {
                next_visit: None,
                unsupported: false,
                last_asked: None,
                failures: 0,
                seq,
            },
        );
        self.known_order.push_back((addr, seq));
        self.frontier.push_back(addr);
        // More waiting than we can remember: the oldest waiting are dropped
        // (met again, they come back).
        while self.frontier.len() > max {
            if let Some(old) = self.frontier.pop_front() {
                if self.known.get(&old).is_some_and(|k| k.next_visit.is_none()) {
                    self.forget(old);
                }
            }
        }
    }

    fn forget(&mut self, addr: SocketAddr) {
        if let Some(k) = self.known.remove(&addr) {
            if let Some(t) = k.next_visit {
                self.due.remove(&(t, addr));
            }
        }
        // The order keeps forgotten addresses until they reach its front;
        // when they outnumber the remembered, it is compacted (amortised:
        // at most once per as many forgets as there are nodes).
        if self.known_order.len() > 2 * self.known.len() + 64 {
            let known = &self.known;
            self.known_order
                .retain(|(a, seq)| known.get(a).is_some_and(|k| k.seq == *seq));
        }
    }

    /// Whether an entry of `known_order` is its address's current one.
    fn is_current(&self, (addr, seq): &(SocketAddr, u64)) -> bool {
        self.known.get(addr).is_some_and(|k| k.seq == *seq)
    }

    /// The queries to send now (within the rate and in-flight caps); each
    /// must be answered with [`on_answer`](Crawler::on_answer) or
    /// [`on_failure`](Crawler::on_failure).
    pub fn next_queries(&mut self, now: Instant) -> Vec<CrawlQuery> {
        let mut out = Vec::new();
        while self.in_flight < self.config.max_in_flight {
            if self.budget.available(now) == 0 {
                break;
            }
            let (addr, explore) = match self.next_node(now) {
                Some(addr) => (addr, false),
                None => match self.next_to_explore(now) {
                    Some(addr) => (addr, true),
                    None => break,
                },
            };
            self.budget.try_take(now, 1);
            self.in_flight += 1;
            let mut unsupported = false;
            if let Some(k) = self.known.get_mut(&addr) {
                k.last_asked = Some(now);
                unsupported = k.unsupported;
            }
            if unsupported || explore {
                self.stats.find_nodes_sent += 1;
                out.push(CrawlQuery::FindNode(addr));
            } else {
                self.stats.samples_sent += 1;
                out.push(CrawlQuery::Sample(addr));
            }
        }
        out
    }

    /// When there will be something to send (for `poll_timeout`).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.in_flight >= self.config.max_in_flight {
            return None;
        }
        // A stale entry in front is work too: clearing it.
        let explore = self.known_order.front().map(|(a, seq)| {
            self.known
                .get(a)
                .filter(|k| k.seq == *seq)
                .map_or(now, |k| {
                    k.last_asked
                        .map_or(now, |t| t + self.config.explore_interval)
                })
        });
        let revisit = self.due.iter().next().map(|(t, _)| *t);
        let work = if !self.frontier.is_empty() {
            Some(now)
        } else {
            match (revisit, explore) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }?;
        Some(work.max(self.budget.ready_at(now, 1)))
    }

    fn next_node(&mut self, now: Instant) -> Option<SocketAddr> {
        while let Some(addr) = self.frontier.pop_front() {
            if self.known.contains_key(&addr) {
                return Some(addr);
            }
        }
        let &(t, addr) = self.due.iter().next()?;
        if t > now {
            return None;
        }
        self.due.remove(&(t, addr));
        if let Some(k) = self.known.get_mut(&addr) {
            k.next_visit = None;
        }
        Some(addr)
    }

    /// The node at the front of the line (roughly the one asked longest
    /// ago), if its turn has come; it moves to the back (so forgetting
    /// takes the least recently used).
    fn next_to_explore(&mut self, now: Instant) -> Option<SocketAddr> {
        while self
            .known_order
            .front()
            .is_some_and(|e| !self.is_current(e))
        {
            self.known_order.pop_front();
        }
        let &(addr, _) = self.known_order.front()?;
        let k = self.known.get_mut(&addr)?;
        if k.last_asked
            .is_some_and(|t| t + self.config.explore_interval > now)
        {
            return None;
        }
        self.known_order.rotate_left(1);
        Some(addr)
    }

    fn schedule(&mut self, now: Instant, addr: SocketAddr, wait: Duration) {
        if let Some(k) = self.known.get_mut(&addr) {
            if let Some(old) = k.next_visit {
                self.due.remove(&(old, addr));
            }
            let t = now + wait;
            k.next_visit = Some(t);
            self.due.insert((t, addr));
        }
    }

    /// `addr` answered a crawl query: its info-hashes (empty for
    /// `find_node`), its `interval`, the nodes it named. Returns the
    /// info-hashes not reported before.
    pub fn on_answer(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        hashes: &[InfoHash],
        interval: Option<u32>,
        nodes: &[CompactNode],
    ) -> Vec<InfoHash> {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.stats.answers += 1;
        if let Some(k) = self.known.get_mut(&addr) {
            k.failures = 0;
        }
        for n in nodes {
            self.discover(n.addr);
        }
        let visited = self
            .known
            .get(&addr)
            .is_some_and(|k| k.next_visit.is_none() || k.unsupported);
        if visited {
            // A sample (or a find_node to a node without BEP 51); answers
            // to exploring find_nodes leave the next visit alone.
            let wait = interval.map_or(self.config.default_interval, |s| {
                Duration::from_secs(u64::from(s)).min(self.config.max_interval)
            });
            self.schedule(now, addr, wait);
        }
        hashes
            .iter()
            .filter(|h| self.remember(now, **h))
            .copied()
            .collect()
    }

    /// `addr` answered 204 (method unknown): it gets `find_node` from now on.
    pub fn on_unsupported(&mut self, addr: SocketAddr) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.stats.unsupported += 1;
        if let Some(k) = self.known.get_mut(&addr) {
            k.unsupported = true;
        }
        self.frontier.push_back(addr);
    }

    /// A crawl query to `addr` failed or timed out: asked again soon after
    /// a first failure, forgotten after a second in a row (it left, most
    /// likely), so what the walk remembers is the network as it is, not
    /// every node it ever met; named again by others, it is not taken
    /// back for a few hours.
    pub fn on_failure(&mut self, now: Instant, addr: SocketAddr) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.stats.failures += 1;
        let Some(k) = self.known.get_mut(&addr) else {
            return;
        };
        k.failures = k.failures.saturating_add(1);
        if k.failures == 1 {
            self.schedule(now, addr, self.config.retry_after);
        } else {
            self.failed.insert(now, &addr_key(addr));
            self.forget(addr);
        }
    }

    /// An info-hash met at `now` (in a sample or a query to us); `true`
    /// if it is new.
    pub fn remember(&mut self, now: Instant, hash: InfoHash) -> bool {
        if !self.reported.insert(now, &hash) {
            return false;
        }
        self.stats.harvested += 1;
        true
    }
}

/// An address as a key of the `failed` filter.
fn addr_key(addr: SocketAddr) -> InfoHash {
    let mut k = [0u8; 20];
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        std::net::IpAddr::V6(v6) => v6,
    };
    k[..16].copy_from_slice(&ip.octets());
    k[16..18].copy_from_slice(&addr.port().to_be_bytes());
    InfoHash(k)
}

/// The `failed` filter's key: apart from the reported hashes' one.
fn failed_key(mut key: [u8; 16]) -> [u8; 16] {
    for b in &mut key {
        *b ^= 0x5a;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krpc::NodeId;

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([30, 0, (i >> 8) as u8, i as u8], 6881))
    }

    fn t(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn visits_each_node_once_then_after_its_interval() {
        let mut c = Crawler::new(t(0), CrawlConfig::default(), [0; 16]);
        c.discover(addr(1));
        c.discover(addr(1));
        assert_eq!(c.next_queries(t(0)), vec![CrawlQuery::Sample(addr(1))]);
        assert!(c.next_queries(t(0)).is_empty());
        let node = CompactNode {
            id: NodeId([7; 20]),
            addr: addr(2),
        };
        let new = c.on_answer(t(0), addr(1), &[InfoHash([1; 20])], Some(60), &[node]);
        assert_eq!(new, vec![InfoHash([1; 20])]);
        assert_eq!(c.next_queries(t(1)), vec![CrawlQuery::Sample(addr(2))]);
        assert!(c.next_queries(t(30)).is_empty());
        assert_eq!(c.next_deadline(t(30)), Some(t(60)));
        assert_eq!(c.next_queries(t(61)), vec![CrawlQuery::Sample(addr(1))]);
        // The same hash again is not new.
        assert!(c
            .on_answer(t(61), addr(1), &[InfoHash([1; 20])], None, &[])
            .is_empty());
        assert_eq!(c.stats().harvested, 1);
    }

    #[test]
    fn a_node_that_fails_twice_is_forgotten_until_met_again() {
        let config = CrawlConfig {
            rate: 1_000_000,
            ..CrawlConfig::default()
        };
        let mut c = Crawler::new(t(0), config, [0; 16]);
        for i in 0..200 {
            c.discover(addr(i));
        }
        assert_eq!(c.next_queries(t(0)).len(), 200);
        for i in 0..200 {
            c.on_failure(t(0), addr(i));
        }
        // Asked again after `retry_after`; a second failure forgets it.
        let again = c.next_queries(t(31));
        assert!(again.contains(&CrawlQuery::Sample(addr(0))));
        for q in again {
            let (CrawlQuery::Sample(a) | CrawlQuery::FindNode(a)) = q;
            c.on_failure(t(31), a);
        }
        assert!(!c.known.contains_key(&addr(0)));
        assert!(c.known_order.len() <= 2 * c.known.len() + 64);
        // Named again by another node: not taken back for now.
        c.discover(addr(0));
        assert!(!c.known.contains_key(&addr(0)));
        // Three hours on, the filter ages (on a failure) and forgets it.
        c.discover(addr(500));
        let _ = c.next_queries(t(4 * 3600));
        c.on_failure(t(4 * 3600), addr(500));
        c.on_failure(t(7 * 3600), addr(500));
        c.discover(addr(0));
        assert!(c.known.contains_key(&addr(0)));
    }

    #[test]
    fn memory_stays_bounded() {
        let config = CrawlConfig {
            max_nodes: 100,
            max_hashes: 50,
            rate: 1_000_000,
            ..CrawlConfig::default()
        };
        let mut c = Crawler::new(t(0), config, [0; 16]);
        for i in 0..1000 {
            c.discover(addr(i));
        }
        assert_eq!(c.stats().nodes_known, 100);
        assert!(c.known_order.len() <= 200 && c.frontier.len() <= 100);
        let memory = c.reported.memory();
        for i in 0..1000u32 {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            c.remember(t(0), InfoHash(h));
        }
        assert_eq!(c.reported.memory(), memory);
        assert!(c.stats().harvested > 990);
        // Only remembered nodes are visited.
        let qs = c.next_queries(t(0));
        assert_eq!(qs.len(), 100);
        assert!(qs.contains(&CrawlQuery::Sample(addr(999))));
        assert!(!qs.contains(&CrawlQuery::Sample(addr(0))));
    }

    #[test]
    fn rate_and_in_flight_are_capped() {
        let config = CrawlConfig {
            rate: 10,
            max_in_flight: 4,
            ..CrawlConfig::default()
        };
        let mut c = Crawler::new(t(0), config, [0; 16]);
        for i in 0..100 {
            c.discover(addr(i));
        }
        assert_eq!(c.next_queries(t(0)).len(), 4);
        assert_eq!(c.next_deadline(t(0)), None, "nothing until an answer");
        for i in 0..4 {
            c.on_failure(t(0), addr(i));
        }
        let config = CrawlConfig {
            rate: 10,
            max_in_flight: 1000,
            ..CrawlConfig::default()
        };
        let mut c = Crawler::new(t(0), config, [0; 16]);
        for i in 0..100 {
            c.discover(addr(i));
        }
        // A second's worth at once, then 10 a second.
        assert_eq!(c.next_queries(t(0)).len(), 10);
        assert!(c.next_deadline(t(0)).is_some_and(|w| w > t(0)));
        assert_eq!(c.next_queries(t(1)).len(), 10);
        assert_eq!(c.next_queries(t(1)).len(), 0);
    }

    #[test]
    fn nodes_without_bep51_get_find_node() {
        let mut c = Crawler::new(t(0), CrawlConfig::default(), [0; 16]);
        c.discover(addr(1));
        assert_eq!(c.next_queries(t(0)), vec![CrawlQuery::Sample(addr(1))]);
        c.on_unsupported(addr(1));
        assert_eq!(c.next_queries(t(0)), vec![CrawlQuery::FindNode(addr(1))]);
    }
}
