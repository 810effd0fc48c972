//! `Dht`: one DHT node — it answers queries, stores announced peers and
//! runs iterative lookups (BEP 5, with BEP 32 `want`/`nodes6`, BEP 42 `ip`
//! votes, BEP 43 read-only, BEP 51 `sample_infohashes`).
//!
//! Inputs: [`handle_datagram`](Dht::handle_datagram),
//! [`handle_timeout`](Dht::handle_timeout). Commands:
//! [`bootstrap`](Dht::bootstrap), [`ping`](Dht::ping),
//! [`find_node`](Dht::find_node), [`get_peers`](Dht::get_peers),
//! [`announce`](Dht::announce), [`sample_infohashes`](Dht::sample_infohashes),
//! [`crawl`](Dht::crawl), [`add_node`](Dht::add_node).
//! Outputs: [`poll_transmit`](Dht::poll_transmit) (datagrams),
//! [`poll_event`](Dht::poll_event), [`poll_timeout`](Dht::poll_timeout).
//! Inputs are handled in `node/inputs.rs`, lookups run in
//! `node/lookups.rs`; this file holds the state, commands and outputs.
//!
//! A lookup keeps candidates ordered by XOR distance to the target, asks
//! α of the closest at a time, learns closer nodes from each answer, and
//! ends when the K closest candidates that did not fail have all answered.
//! `get_peers` lookups report peers as they arrive; an announce lookup then
//! sends `announce_peer` with each of the K closest nodes' tokens.
//!
//! While crawling ([`crawler`](super::crawler)), the node also walks the
//! keyspace with `sample_infohashes` and reports every new info-hash it
//! meets (in samples, and in other nodes' `get_peers` and `announce_peer`
//! queries to us) as [`DhtEvent::Harvested`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::budget::{self, ReplyBudget, ReplyLimits, ReplyStats};
use super::crawler::{CrawlConfig, CrawlQuery, CrawlStats, Crawler, HarvestSource};
use super::routing::{Insert, NodeState, RoutingTable, TableConfig, K};
use super::scrape::ScrapeBloom;
use super::security;
use super::store::PeerStore;
use super::tokens::Tokens;
use crate::krpc::transactions::{Transactions, DEFAULT_MAX_OUTSTANDING, DEFAULT_TIMEOUT};
use crate::krpc::{code, Body, CompactNode, Message, NodeId, Query, Response, Want};
use crate::metainfo::InfoHash;
use crate::peer::TokenBucket;
use crate::rng::{Rng, Seed};
use crate::time::Instant;
use crate::IpFamily;

/// Settings of a node.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// Our id (random when `None`).
    pub id: Option<NodeId>,
    /// Routing table settings (`allow_local` for tests and LANs).
    pub table: TableConfig,
    /// How long a query waits for its answer.
    pub query_timeout: Duration,
    /// Queries in flight at most.
    pub max_outstanding: usize,
    /// Parallel queries per lookup.
    pub alpha: usize,
    /// BEP 43: answer nothing, say `ro=1`.
    pub read_only: bool,
    /// Peers kept per info-hash.
    pub max_peers_per_hash: usize,
    /// Peers kept overall.
    pub max_stored_peers: usize,
    /// What we answer at most, per source and overall, so that we are
    /// no amplifier for floods from forged addresses (see
    /// [`budget`](super::budget)).
    pub replies: ReplyLimits,
    /// Outgoing queries per second, overall.
    pub outgoing_rate: u64,
    /// BEP 42: once our external address is known, take an id derived
    /// from it if ours is not (nodes that enforce BEP 42 keep us in their
    /// tables then).
    pub secure_id: bool,
    /// BEP 42: keep nodes whose id does not match their IP out of the
    /// table (local addresses are exempt). Off by default: much of the
    /// network does not comply yet.
    pub enforce_node_ids: bool,
}

impl Default for DhtConfig {
    fn default() -> DhtConfig {
        DhtConfig {
            id: None,
            table: TableConfig::default(),
            query_timeout: DEFAULT_TIMEOUT,
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            alpha: 3,
            read_only: false,
            max_peers_per_hash: 200,
            max_stored_peers: 100_000,
            replies: ReplyLimits::default(),
            outgoing_rate: 2000,
            secure_id: true,
            enforce_node_ids: false,
        }
    }
}

/// Names a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupId(pub u64);

/// What the application learns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtEvent {
    /// New peers for a `get_peers` or announce lookup.
    Peers {
        /// The lookup.
        lookup: LookupId,
        /// The torrent.
        info_hash: InfoHash,
        /// Peers not reported before by this lookup.
        peers: Vec<SocketAddr>,
    },
    /// A lookup ended.
    LookupDone {
        /// The lookup.
        lookup: LookupId,
        /// The K closest nodes that answered.
        closest: Vec<CompactNode>,
        /// Queries it sent.
        queries: usize,
        /// Rounds: the longest chain of answers that led to a node it
        /// asked (1 when it only asked nodes from its own table).
        rounds: usize,
    },
    /// An announce lookup sent `announce_peer` to this many nodes.
    Announced {
        /// The lookup.
        lookup: LookupId,
        /// Nodes announced to.
        nodes: usize,
    },
    /// A ping was answered.
    Pong {
        /// Who answered.
        node: CompactNode,
    },
    /// A `sample_infohashes` answer (BEP 51).
    Samples {
        /// Who answered.
        node: CompactNode,
        /// The sampled info-hashes.
        hashes: Vec<InfoHash>,
        /// How many it stores.
        num: Option<u64>,
        /// Seconds before asking it again.
        interval: Option<u32>,
        /// Nodes it suggested (to walk the keyspace).
        nodes: Vec<CompactNode>,
    },
    /// Our external address as most answering nodes see it (BEP 42 `ip`).
    ExternalAddress(IpAddr),
    /// We took a new id derived from our external address (BEP 42); the
    /// table was rebuilt around it. Save the state to keep it.
    IdChanged(NodeId),
    /// A [`scrape`](Dht::scrape) lookup ended with some nodes' BEP 33
    /// filters: the swarm's size, estimated.
    Scraped {
        /// The lookup.
        lookup: LookupId,
        /// The torrent.
        info_hash: InfoHash,
        /// Seeds, estimated from the merged `BFsd`.
        seeders: u32,
        /// Other peers, estimated from the merged `BFpe`.
        leechers: u32,
    },
    /// While crawling: an info-hash not reported before.
    Harvested {
        /// The torrent.
        info_hash: InfoHash,
        /// The node that had it (or asked for it).
        node: CompactNode,
        /// How we learned it.
        source: HarvestSource,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LookupKind {
    FindNode,
    /// The join lookup for our own id; when it ends, every bucket is
    /// refreshed once so far regions of the table fill too.
    Bootstrap,
    /// With `scrape`, the answers' BEP 33 filters are merged and counted.
    GetPeers {
        scrape: bool,
    },
    Announce {
        port: u16,
        implied_port: bool,
        /// BEP 33: we seed it.
        seed: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum CandidateState {
    Fresh,
    Asked,
    Answered { token: Option<Vec<u8>> },
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    node: CompactNode,
    state: CandidateState,
    /// 1 for nodes from our table, parent's + 1 for nodes learned.
    hop: usize,
    /// Queries sent to it (a lost datagram earns one retry).
    attempts: u8,
}

#[derive(Clone, Debug)]
struct Lookup {
    target: NodeId,
    kind: LookupKind,
    candidates: BTreeMap<[u8; 20], Candidate>,
    in_flight: usize,
    peers: BTreeSet<SocketAddr>,
    queries: usize,
    /// A scrape's filters so far (BEP 33): seeds, then the others.
    blooms: Option<(ScrapeBloom, ScrapeBloom)>,
}

#[derive(Clone, Debug)]
enum Context {
    Ping,
    Lookup {
        lookup: LookupId,
        node: Option<NodeId>,
    },
    Announce,
    Sample,
    CrawlSample,
    CrawlFindNode,
}

/// Most candidates a lookup keeps.
const MAX_CANDIDATES: usize = 128;
/// Most peers put in one `values` answer (a datagram stays under ~1.4 KB).
const MAX_VALUES_SENT: usize = 50;
/// Most info-hashes in one `samples` answer.
const MAX_SAMPLES_SENT: usize = 20;
/// How often buckets are checked for staleness.
const REFRESH_CHECK: Duration = Duration::from_secs(60);
/// A bucket unchanged this long is refreshed.
const BUCKET_STALE: Duration = Duration::from_secs(15 * 60);
/// Most queries waiting for the outgoing budget.
const MAX_QUEUED: usize = 4096;
/// Most nodes pinged at once because a newcomer waits for their bucket.
const MAX_TABLE_PINGS: usize = 64;
/// Most nodes a saved state holds per family: as many as a full routing
/// table.
pub const MAX_STATE_NODES: usize = 160 * crate::dht::routing::K;

/// See the module documentation.
#[derive(Debug)]
pub struct Dht {
    config: DhtConfig,
    id: NodeId,
    table: RoutingTable,
    tx: Transactions<Context>,
    tokens: Tokens,
    store: PeerStore,
    lookups: BTreeMap<LookupId, Lookup>,
    next_lookup: u64,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<DhtEvent>,
    queued: VecDeque<(SocketAddr, Query, Context)>,
    /// What we may still answer: per source (by IP, or by IP and port
    /// when local addresses are allowed: a test network shares one IP)
    /// and overall, in bytes.
    budget: ReplyBudget,
    outgoing: TokenBucket,
    /// Nodes pinged because a newcomer waits for their full bucket, until
    /// when: one ping each at a time, so that a stream of queries from new
    /// ids (a flood from forged sources) does not become a stream of pings
    /// at the same questionable node.
    table_pings: BTreeMap<SocketAddr, Instant>,
    votes: BTreeMap<IpAddr, u32>,
    external: Option<IpAddr>,
    next_refresh: Instant,
    crawler: Option<Crawler>,
    rng: Rng,
    now: Instant,
}

impl Dht {
    /// A node starting at `now`.
    pub fn new(now: Instant, config: DhtConfig, seed: Seed) -> Dht {
        let mut rng = Rng::new(seed);
        let id = config.id.unwrap_or_else(|| {
            let mut b = [0u8; 20];
            rng.fill(&mut b);
            NodeId(b)
        });
        let tx = Transactions::new(
            config.query_timeout,
            config.max_outstanding,
            rng.child_seed(),
        );
        let tokens = Tokens::new(now, &mut rng);
        Dht {
            table: RoutingTable::new(id, config.table.clone()),
            store: PeerStore::new(config.max_peers_per_hash, config.max_stored_peers),
            outgoing: TokenBucket::with_burst(config.outgoing_rate, config.outgoing_rate, now),
            budget: ReplyBudget::new(now, config.replies.clone()),
            config,
            id,
            tx,
            tokens,
            lookups: BTreeMap::new(),
            next_lookup: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            queued: VecDeque::new(),
            table_pings: BTreeMap::new(),
            votes: BTreeMap::new(),
            external: None,
            next_refresh: now + REFRESH_CHECK,
            crawler: None,
            rng,
            now,
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// Peers stored for others.
    pub fn store(&self) -> &PeerStore {
        &self.store
    }

    /// Replies that matched no query of ours (forged or late).
    pub fn unmatched_replies(&self) -> u64 {
        self.tx.unmatched()
    }

    /// Incoming queries left unanswered by the reply budgets (per source
    /// and global).
    pub fn dropped_queries(&self) -> u64 {
        let s = self.budget.stats();
        s.dropped_by_source + s.dropped_by_budget
    }

    /// The reply budgets' counters: queries and their bytes in, answers and
    /// their bytes out, what was dropped and why.
    pub fn reply_stats(&self) -> ReplyStats {
        self.budget.stats()
    }

    /// New reply limits from `now` on (a running node's settings changed):
    /// sources and the byte account start afresh, the counters go on.
    pub fn set_reply_limits(&mut self, now: Instant, limits: ReplyLimits) {
        self.now = now;
        self.config.replies = limits.clone();
        self.budget.set_limits(now, limits);
    }

    /// Lookups still running.
    pub fn active_lookups(&self) -> usize {
        self.lookups.len()
    }

    /// The address family of our socket (BEP 32: one node per family).
    pub fn family(&self) -> IpFamily {
        self.config.table.family
    }

    /// Our external address, once a majority of answers agree.
    pub fn external_address(&self) -> Option<IpAddr> {
        self.external
    }

    // --- outputs ------------------------------------------------------------

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Dht::handle_timeout) wants to run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_refresh.min(self.tokens.next_rotation());
        if let Some(d) = self.tx.next_deadline() {
            t = t.min(d);
        }
        // The queue moves when the budget pays and the transaction table
        // has room; a full table waits for an answer (an input) or an
        // expiry (`tx`'s deadline above), never spins on "now".
        if !self.queued.is_empty() && self.tx.has_room() {
            t = t.min(self.outgoing.ready_at(self.now, 1));
        }
        if let Some(w) = self
            .crawler
            .as_ref()
            .filter(|_| !self.backed_up())
            .and_then(|c| c.next_deadline(self.now))
        {
            t = t.min(w);
        }
        Some(t.max(self.now))
    }

    /// Whether queries wait for room (queued, or the transaction table
    /// full): the crawler, which can choose when to ask, waits too.
    fn backed_up(&self) -> bool {
        !self.queued.is_empty() || !self.tx.has_room()
    }

    // --- sending ------------------------------------------------------------

    fn message(&self, tx: Vec<u8>, body: Body) -> Message {
        Message {
            tx,
            id: Some(self.id),
            version: Some(b"BT01".to_vec()),
            ip: None,
            read_only: self.config.read_only,
            body,
        }
    }

    /// Sends a query now, or queues it when the outgoing budget or the
    /// transaction table is full.
    fn query(&mut self, now: Instant, to: SocketAddr, q: Query, ctx: Context) {
        if !self.tx.has_room() || !self.outgoing.try_take(now, 1) {
            if self.queued.len() < MAX_QUEUED {
                self.queued.push_back((to, q, ctx));
            } else {
                self.on_failed(now, to, ctx);
            }
            return;
        }
        let Some(tx) = self.tx.start(now, to, ctx) else {
            return;
        };
        let mut bytes = Vec::new();
        self.message(tx.to_vec(), Body::Query(q)).encode(&mut bytes);
        self.out.push_back((to, bytes));
    }

    fn send_queued(&mut self, now: Instant) {
        while let Some((to, q, ctx)) = self.queued.pop_front() {
            if !self.tx.has_room() || !self.outgoing.try_take(now, 1) {
                self.queued.push_front((to, q, ctx));
                return;
            }
            if let Some(tx) = self.tx.start(now, to, ctx) {
                let mut bytes = Vec::new();
                self.message(tx.to_vec(), Body::Query(q)).encode(&mut bytes);
                self.out.push_back((to, bytes));
            }
        }
    }

    /// Sends an answer if the global reply budget pays for its bytes;
    /// otherwise drops it silently (counted).
    fn reply(&mut self, now: Instant, to: SocketAddr, tx: Vec<u8>, body: Body) {
        let mut m = self.message(tx, body);
        // BEP 42: tell the sender its address as we see it.
        m.ip = Some(to);
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        if self.budget.try_send(now, bytes.len()) {
            self.out.push_back((to, bytes));
        }
    }

    // --- commands -------------------------------------------------------------

    /// Joins the network through `nodes` (addresses only): asks them for
    /// nodes near our own id.
    pub fn bootstrap(&mut self, now: Instant, nodes: &[SocketAddr]) -> LookupId {
        self.now = now;
        let lookup = self.start_lookup(now, self.id, LookupKind::Bootstrap);
        let family = self.config.table.family;
        for &addr in nodes.iter().filter(|a| family.holds(a)) {
            if let Some(l) = self.lookups.get_mut(&lookup) {
                l.in_flight += 1;
                l.queries += 1;
            }
            self.query(
                now,
                addr,
                Query::FindNode {
                    target: self.id,
                    want: Want::default(),
                },
                Context::Lookup { lookup, node: None },
            );
        }
        self.step(now, lookup);
        lookup
    }

    /// Pings `addr`; a [`DhtEvent::Pong`] follows if it answers.
    pub fn ping(&mut self, now: Instant, addr: SocketAddr) {
        self.now = now;
        self.query(now, addr, Query::Ping, Context::Ping);
    }

    /// Looks up the nodes closest to `target`.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> LookupId {
        self.now = now;
        let l = self.start_lookup(now, target, LookupKind::FindNode);
        self.step(now, l);
        l
    }

    /// Looks up peers for `info_hash`.
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHash) -> LookupId {
        self.lookup_peers(now, info_hash, false)
    }

    /// Looks up peers for `info_hash` and counts its swarm (BEP 33): the
    /// nodes' seed and peer filters are merged and reported as
    /// [`DhtEvent::Scraped`] when the lookup ends.
    pub fn scrape(&mut self, now: Instant, info_hash: InfoHash) -> LookupId {
        self.lookup_peers(now, info_hash, true)
    }

    fn lookup_peers(&mut self, now: Instant, info_hash: InfoHash, scrape: bool) -> LookupId {
        self.now = now;
        let l = self.start_lookup(now, NodeId(info_hash.0), LookupKind::GetPeers { scrape });
        self.step(now, l);
        l
    }

    /// Looks up `info_hash` and announces us on `port` (or the source port
    /// of our datagrams with `implied_port`) to the K closest nodes.
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        port: u16,
        implied_port: bool,
    ) -> LookupId {
        self.announce_as(now, info_hash, port, implied_port, false)
    }

    /// [`announce`](Dht::announce), saying whether we seed it (BEP 33's
    /// `seed`: the nodes count us in their seed filter).
    pub fn announce_as(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        port: u16,
        implied_port: bool,
        seed: bool,
    ) -> LookupId {
        self.now = now;
        let kind = LookupKind::Announce {
            port,
            implied_port,
            seed,
        };
        let l = self.start_lookup(now, NodeId(info_hash.0), kind);
        self.step(now, l);
        l
    }

    /// Asks `addr` for a sample of the info-hashes it stores (BEP 51).
    pub fn sample_infohashes(&mut self, now: Instant, addr: SocketAddr, target: NodeId) {
        self.now = now;
        self.query(
            now,
            addr,
            Query::SampleInfohashes {
                target,
                want: Want::default(),
            },
            Context::Sample,
        );
    }

    /// A node learned elsewhere (another of our nodes, a saved list, a
    /// peer's BEP 5 `port` message): pinged, and put in the table if it
    /// answers. Several nodes in one process share what they learn this way.
    pub fn add_node(&mut self, now: Instant, addr: SocketAddr) {
        self.now = now;
        if self.table.acceptable(&addr).is_err() {
            return;
        }
        if let Some(c) = &mut self.crawler {
            c.discover(addr);
        }
        if !self.table.nodes().any(|e| e.node.addr == addr) {
            self.query(now, addr, Query::Ping, Context::Ping);
        }
        self.crawl_step(now);
    }

    /// Starts crawling (see the module documentation); the walk starts
    /// from the table and grows from every answer. Calling it again
    /// restarts with a new configuration.
    pub fn crawl(&mut self, now: Instant, config: CrawlConfig) {
        self.now = now;
        let mut key = [0u8; 16];
        self.rng.fill(&mut key);
        let mut crawler = Crawler::new(now, config, key);
        for e in self.table.nodes() {
            crawler.discover(e.node.addr);
        }
        self.crawler = Some(crawler);
        self.crawl_step(now);
    }

    /// Stops crawling (answers still on their way are ignored).
    pub fn stop_crawl(&mut self) {
        self.crawler = None;
    }

    /// The crawl's counters, while crawling.
    pub fn crawl_stats(&self) -> Option<CrawlStats> {
        self.crawler.as_ref().map(Crawler::stats)
    }
}

mod inputs;
mod lookups;
#[cfg(test)]
mod tests;
