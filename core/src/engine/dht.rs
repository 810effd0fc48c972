//! The engine's DHT nodes and their lookup schedule: every public torrent
//! (and every magnet still looking for its metadata) announces itself and
//! looks for peers on the DHT (BEP 5) on a schedule of its own; never a
//! private torrent (BEP 27). BEP 32: one node per address family, each on
//! its family's UDP socket with its own id and routing table; a torrent's
//! lookup runs on both and their peers are merged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{DhtSettings, Engine, Event, Output, Pending};
use crate::dht::crawler::{CrawlConfig, CrawlStats};
use crate::dht::{Dht, DhtEvent, LookupId, SavedDht};
use crate::handles::TorrentId;
use crate::metainfo::InfoHash;
use crate::rng::Rng;
use crate::time::Instant;
use crate::torrent::peers::PeerSource;
use crate::torrent::TorrentState;
use crate::IpFamily;

/// The engine's DHT nodes and their schedule.
#[derive(Debug)]
pub(super) struct DhtState {
    /// The IPv4 node and, with [`DhtSettings::ipv6`], the IPv6 node, by
    /// [`IpFamily::index`].
    nodes: [Option<Dht>; 2],
    pub settings: DhtSettings,
    pub started: bool,
    /// While a routing table is empty: when to join again, and how long
    /// the wait after that one will be.
    pub rejoin: Option<(Instant, Duration)>,
    pub schedules: DhtSchedules,
}

impl DhtState {
    /// The nodes `settings` ask for, with seeds from `rng`.
    pub(super) fn new(settings: DhtSettings, rng: &mut Rng) -> DhtState {
        let v4 = Dht::new(Instant::ZERO, settings.config.clone(), rng.child_seed());
        let v6 = settings.ipv6.then(|| {
            let mut config = settings.config.clone();
            config.id = settings.id6;
            config.table.family = IpFamily::V6;
            Dht::new(Instant::ZERO, config, rng.child_seed())
        });
        DhtState {
            nodes: [Some(v4), v6],
            settings,
            started: false,
            rejoin: None,
            schedules: DhtSchedules::default(),
        }
    }

    /// The node of `family`, if it runs.
    pub(super) fn node(&self, family: IpFamily) -> Option<&Dht> {
        self.nodes[family.index()].as_ref()
    }

    fn node_mut(&mut self, family: IpFamily) -> Option<&mut Dht> {
        self.nodes[family.index()].as_mut()
    }

    /// A datagram for the node of `from`'s family.
    pub(super) fn handle_datagram(&mut self, now: Instant, from: SocketAddr, payload: &[u8]) {
        if let Some(node) = self.node_mut(IpFamily::of(&from)) {
            node.handle_datagram(now, from, payload);
        }
    }

    /// Runs the nodes whose deadline has come.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        for node in self.nodes.iter_mut().flatten() {
            if node.poll_timeout().is_some_and(|t| t <= now) {
                node.handle_timeout(now);
            }
        }
    }

    /// The nodes' earliest deadline.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .flatten()
            .filter_map(Dht::poll_timeout)
            .min()
    }

    /// Starts a crawl on every node (each walks its family's DHT).
    pub(super) fn crawl(&mut self, now: Instant, config: CrawlConfig) {
        for node in self.nodes.iter_mut().flatten() {
            node.crawl(now, config.clone());
        }
    }

    /// The crawl's counters summed over the nodes, while crawling.
    pub(super) fn crawl_stats(&self) -> Option<CrawlStats> {
        let mut all = self.nodes.iter().flatten().filter_map(Dht::crawl_stats);
        let first = all.next()?;
        Some(all.fold(first, |a, b| CrawlStats {
            samples_sent: a.samples_sent + b.samples_sent,
            find_nodes_sent: a.find_nodes_sent + b.find_nodes_sent,
            answers: a.answers + b.answers,
            failures: a.failures + b.failures,
            unsupported: a.unsupported + b.unsupported,
            harvested: a.harvested + b.harvested,
            nodes_known: a.nodes_known + b.nodes_known,
            frontier: a.frontier + b.frontier,
        }))
    }

    /// Both nodes' ids and tables, to save.
    pub(super) fn saved(&self) -> SavedDht {
        SavedDht::of(self.nodes.iter().flatten())
    }

    /// Joins through `addrs` (a router's addresses, saved nodes): the
    /// nodes that `need` it ask those of their family.
    fn bootstrap(&mut self, now: Instant, addrs: &[SocketAddr], need: Need) {
        for node in self.nodes.iter_mut().flatten() {
            let family = node.family();
            let mine: Vec<SocketAddr> = addrs.iter().copied().filter(|a| family.holds(a)).collect();
            let len = node.table().len();
            let needs = match need {
                Need::Always => true,
                Need::Empty => len == 0,
                Need::Few => len < crate::dht::routing::K,
            };
            if !mine.is_empty() && needs {
                node.bootstrap(now, &mine);
            }
        }
    }

    /// When the nodes want to start or join again.
    pub(super) fn next_join(&self, now: Instant) -> Option<Instant> {
        if !self.started {
            return Some(now);
        }
        self.rejoin
            .filter(|_| self.nodes.iter().flatten().any(|n| n.table().is_empty()))
            .map(|(at, _)| at)
    }
}

/// Which nodes a join is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Every node (the first join).
    Always,
    /// Nodes that know nobody (joining again: a node with a table, maybe
    /// beside one whose family has no connectivity, is left alone).
    Empty,
    /// Nodes that know fewer than K (a router's answer).
    Few,
}

/// When a torrent next looks itself up on the DHT, and how the last lookup
/// went.
#[derive(Debug)]
struct DhtSchedule {
    next: Instant,
    /// The lookups in flight (one per node).
    lookups: Vec<(IpFamily, LookupId)>,
    /// Peers they found so far.
    found: usize,
    /// Lookups in a row that found nobody.
    dry: u32,
}

/// Each torrent's schedule, and the torrent of each lookup in flight (so a
/// lookup's peers and end find their torrent without a scan). Lookup ids
/// are each node's own, so they are kept with the node's family.
#[derive(Debug, Default)]
pub(super) struct DhtSchedules {
    torrents: BTreeMap<TorrentId, DhtSchedule>,
    lookups: BTreeMap<(IpFamily, LookupId), TorrentId>,
}

impl DhtSchedules {
    /// Looks `id` up now, and on its schedule from then on.
    pub(super) fn add(&mut self, now: Instant, id: TorrentId) {
        self.remove(id);
        let s = DhtSchedule {
            next: now,
            lookups: Vec::new(),
            found: 0,
            dry: 0,
        };
        self.torrents.insert(id, s);
    }

    /// Never looks `id` up again.
    pub(super) fn remove(&mut self, id: TorrentId) {
        if let Some(s) = self.torrents.remove(&id) {
            for l in s.lookups {
                self.lookups.remove(&l);
            }
        }
    }

    /// The earliest turn.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.torrents.values().map(|s| s.next).min()
    }
}

/// First wait before joining the DHT again while the routing table is
/// still empty (every bootstrap datagram may have been lost); doubles up
/// to [`REJOIN_MAX`].
const REJOIN_FIRST: Duration = Duration::from_secs(10);
/// Longest wait between joins.
const REJOIN_MAX: Duration = Duration::from_secs(5 * 60);

/// Wait before a torrent's first DHT lookup is retried while the table is
/// still empty.
const DHT_NOT_READY_RETRY: Duration = Duration::from_secs(5);
/// Wait after a downloading torrent's lookup found nobody; doubles with
/// each dry lookup up to the search interval (someone may announce soon:
/// a seeder that has just started, a swarm that is forming).
const DHT_DRY_RETRY: Duration = Duration::from_secs(30);

impl Engine {
    /// Starts walking the DHT for info-hashes (BEP 51) on every node the
    /// engine runs; each new one is reported as
    /// [`DhtEvent::Harvested`](crate::dht::DhtEvent::Harvested) in
    /// [`Event::Dht`]. Without a DHT, nothing happens.
    pub fn crawl(&mut self, now: Instant, config: CrawlConfig) {
        self.now = now;
        if let Some(d) = &mut self.dht {
            d.crawl(now, config);
        }
        self.collect_dht(now);
    }

    /// The crawl's counters, summed over the nodes, while crawling.
    pub fn crawl_stats(&self) -> Option<CrawlStats> {
        self.dht.as_ref()?.crawl_stats()
    }

    /// Starts the node (once), then looks up every public, running torrent
    /// whose turn has come.
    pub(super) fn dht_lookups(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        let Some(d) = &mut self.dht else {
            return;
        };
        if d.next_join(now).is_some_and(|at| at <= now) {
            // Joining again after the first time: the routers are asked
            // again (their addresses may have changed) and the saved nodes
            // tried again.
            let (wait, need) = match d.rejoin {
                Some((_, wait)) if d.started => ((wait * 2).min(REJOIN_MAX), Need::Empty),
                _ => (REJOIN_FIRST, Need::Always),
            };
            d.started = true;
            d.rejoin = Some((now + wait, wait));
            let nodes = d.settings.nodes.clone();
            d.bootstrap(now, &nodes, need);
            for host in d.settings.routers.clone() {
                let id = self.requests.next_id();
                self.pending.insert(id, Pending::DhtRouter);
                self.out.push_back(Output::Resolve { request: id, host });
            }
        }
        let Some(d) = &mut self.dht else {
            return;
        };
        let port = self.config.listen_port;
        for (id, s) in d.schedules.torrents.iter_mut() {
            if s.next > now {
                continue;
            }
            let Some(t) = self.torrents.get(id) else {
                continue;
            };
            let state = t.state();
            // A hybrid is looked up under both names (BEP 52).
            let names = t.info().names();
            // A magnet looks for peers while its metadata is on its way.
            let running = matches!(
                state,
                TorrentState::FetchingMetadata | TorrentState::Downloading | TorrentState::Seeding
            );
            let ready: Vec<&mut Dht> = d
                .nodes
                .iter_mut()
                .flatten()
                .filter(|n| !n.table().is_empty())
                .collect();
            if !running || ready.is_empty() {
                // Checking, paused or stopped, or no node known yet: look
                // again in a moment.
                s.next = now + DHT_NOT_READY_RETRY;
                continue;
            }
            for old in s.lookups.drain(..) {
                d.schedules.lookups.remove(&old);
            }
            // An announce lookup also returns the peers it meets (BEP 5:
            // get_peers, then announce_peer to the closest with tokens),
            // on each family's node (BEP 32).
            // A metadata fetch for an index only looks: we do not have
            // the torrent.
            let fetch = self.fetches.is_fetch(*id);
            for node in ready {
                for name in &names {
                    // A fetch also counts the swarm for the index (BEP
                    // 33), in a lookup of its own: libtorrent answers a
                    // scrape with the filters instead of peers. A seed says
                    // so in its announces.
                    let seed = state == TorrentState::Seeding;
                    let family = node.family();
                    let lookups = match fetch {
                        true => vec![node.get_peers(now, *name), node.scrape(now, *name)],
                        false => vec![node.announce_as(now, *name, port, false, seed)],
                    };
                    for l in lookups {
                        s.lookups.push((family, l));
                        d.schedules.lookups.insert((family, l), *id);
                    }
                }
            }
            s.found = 0;
            // Until the lookups end (and as a fallback should one never
            // report).
            s.next = now + d.settings.search_interval;
        }
    }

    /// After a torrent's lookup: when to look again.
    fn dht_lookup_done(&mut self, now: Instant, lookup: (IpFamily, LookupId)) {
        let Some(d) = &mut self.dht else {
            return;
        };
        let Some(id) = d.schedules.lookups.remove(&lookup) else {
            return;
        };
        let Some(s) = d.schedules.torrents.get_mut(&id) else {
            return;
        };
        s.lookups.retain(|l| *l != lookup);
        if !s.lookups.is_empty() {
            // The other family's lookup still runs.
            return;
        }
        let seeding = self
            .torrents
            .get(&id)
            .is_some_and(|t| t.state() == TorrentState::Seeding);
        let wait = if seeding {
            d.settings.announce_interval
        } else if s.found == 0 {
            let wait = DHT_DRY_RETRY.saturating_mul(1 << s.dry.min(16));
            s.dry += 1;
            wait.min(d.settings.search_interval)
        } else {
            s.dry = 0;
            d.settings.search_interval
        };
        s.next = now + wait;
    }

    /// Moves the DHT nodes' datagrams out and their peers to the torrents.
    pub(super) fn collect_dht(&mut self, now: Instant) {
        let Some(d) = &mut self.dht else {
            return;
        };
        let mut done = Vec::new();
        let mut found: Vec<(TorrentId, InfoHash, Vec<SocketAddr>)> = Vec::new();
        for node in d.nodes.iter_mut().flatten() {
            let family = node.family();
            while let Some((to, payload)) = node.poll_transmit() {
                self.out.push_back(Output::Udp { to, payload });
            }
            while let Some(e) = node.poll_event() {
                match e {
                    DhtEvent::Peers {
                        lookup,
                        info_hash,
                        peers,
                    } => {
                        let torrent = d.schedules.lookups.get(&(family, lookup)).copied();
                        if let Some(s) = torrent.and_then(|t| d.schedules.torrents.get_mut(&t)) {
                            s.found += peers.len();
                        }
                        if let Some(&id) = self.by_hash.get(&info_hash) {
                            found.push((id, info_hash, peers));
                        }
                    }
                    DhtEvent::LookupDone { lookup, .. } => done.push((family, lookup)),
                    DhtEvent::ExternalAddress(_)
                    | DhtEvent::IdChanged(_)
                    | DhtEvent::Harvested { .. }
                    | DhtEvent::Scraped { .. } => {
                        self.out.push_back(Output::Event(Event::Dht(e)));
                    }
                    _ => {}
                }
            }
        }
        for (id, name, peers) in found {
            // Never for a private torrent (BEP 27); a magnet cannot say
            // whether it is private until its metadata is in.
            if let Some(t) = self.torrents.get_mut(&id).filter(|t| !t.is_private()) {
                t.add_peers_named(now, peers, PeerSource::Dht, name);
            }
        }
        for lookup in done {
            self.dht_lookup_done(now, lookup);
        }
    }

    /// A DHT router's addresses: each node still nearly alone joins
    /// through those of its family. One join is enough; later routers
    /// only help while a table is nearly empty.
    pub(super) fn dht_router_resolved(&mut self, now: Instant, addrs: &[SocketAddr]) {
        if let Some(d) = &mut self.dht {
            d.bootstrap(now, addrs, Need::Few);
        }
        self.collect_dht(now);
    }
}
