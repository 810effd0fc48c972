//! The engine's DHT node and its lookup schedule: every public torrent
//! (and every magnet still looking for its metadata) announces itself and
//! looks for peers on the DHT (BEP 5) on a schedule of its own; never a
//! private torrent (BEP 27). The node shares the engine's UDP socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{DhtSettings, Engine, Event, Output, Pending};
use crate::dht::{Dht, DhtEvent, LookupId};
use crate::handles::TorrentId;
use crate::time::Instant;
use crate::torrent::peers::PeerSource;
use crate::torrent::TorrentState;

/// The engine's DHT node and its schedule.
#[derive(Debug)]
pub(super) struct DhtState {
    pub node: Dht,
    pub settings: DhtSettings,
    pub started: bool,
    pub schedules: DhtSchedules,
}

/// When a torrent next looks itself up on the DHT, and how the last lookup
/// went.
#[derive(Debug)]
struct DhtSchedule {
    next: Instant,
    /// The lookup in flight.
    lookup: Option<LookupId>,
    /// Peers it found so far.
    found: usize,
    /// Lookups in a row that found nobody.
    dry: u32,
}

/// Each torrent's schedule, and the torrent of each lookup in flight (so a
/// lookup's peers and end find their torrent without a scan).
#[derive(Debug, Default)]
pub(super) struct DhtSchedules {
    torrents: BTreeMap<TorrentId, DhtSchedule>,
    lookups: BTreeMap<LookupId, TorrentId>,
}

impl DhtSchedules {
    /// Looks `id` up now, and on its schedule from then on.
    pub(super) fn add(&mut self, now: Instant, id: TorrentId) {
        self.remove(id);
        let s = DhtSchedule {
            next: now,
            lookup: None,
            found: 0,
            dry: 0,
        };
        self.torrents.insert(id, s);
    }

    /// Never looks `id` up again.
    pub(super) fn remove(&mut self, id: TorrentId) {
        if let Some(s) = self.torrents.remove(&id) {
            if let Some(l) = s.lookup {
                self.lookups.remove(&l);
            }
        }
    }

    /// The earliest turn.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.torrents.values().map(|s| s.next).min()
    }
}

/// Wait before a torrent's first DHT lookup is retried while the table is
/// still empty.
const DHT_NOT_READY_RETRY: Duration = Duration::from_secs(5);
/// Wait after a downloading torrent's lookup found nobody; doubles with
/// each dry lookup up to the search interval (someone may announce soon:
/// a seeder that has just started, a swarm that is forming).
const DHT_DRY_RETRY: Duration = Duration::from_secs(30);

impl Engine {
    /// Starts the node (once), then looks up every public, running torrent
    /// whose turn has come.
    pub(super) fn dht_lookups(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        let Some(d) = &mut self.dht else {
            return;
        };
        if !d.started {
            d.started = true;
            if !d.settings.nodes.is_empty() {
                let nodes = d.settings.nodes.clone();
                d.node.bootstrap(now, &nodes);
            }
            for host in d.settings.routers.clone() {
                let id = self.requests.next_id();
                self.pending.insert(id, Pending::DhtRouter);
                self.out.push_back(Output::Resolve { request: id, host });
            }
        }
        let Some(d) = &mut self.dht else {
            return;
        };
        let sched = &mut d.schedules;
        for (id, s) in sched.torrents.iter_mut() {
            if s.next > now {
                continue;
            }
            let Some(t) = self.torrents.get(id) else {
                continue;
            };
            let (info_hash, state) = (t.info_hash(), t.state());
            // A magnet looks for peers while its metadata is on its way.
            let running = matches!(
                state,
                TorrentState::FetchingMetadata | TorrentState::Downloading | TorrentState::Seeding
            );
            if !running || d.node.table().is_empty() {
                // Checking, paused or stopped, or no node known yet: look
                // again in a moment.
                s.next = now + DHT_NOT_READY_RETRY;
                continue;
            }
            // An announce lookup also returns the peers it meets (BEP 5:
            // get_peers, then announce_peer to the closest with tokens).
            let lookup = d
                .node
                .announce(now, info_hash, self.config.listen_port, false);
            if let Some(old) = s.lookup.replace(lookup) {
                sched.lookups.remove(&old);
            }
            sched.lookups.insert(lookup, *id);
            s.found = 0;
            // Until the lookup ends (and as a fallback should it never
            // report).
            s.next = now + d.settings.search_interval;
        }
    }

    /// After a torrent's lookup: when to look again.
    fn dht_lookup_done(&mut self, now: Instant, lookup: LookupId) {
        let Some(d) = &mut self.dht else {
            return;
        };
        let Some(id) = d.schedules.lookups.remove(&lookup) else {
            return;
        };
        let Some(s) = d.schedules.torrents.get_mut(&id) else {
            return;
        };
        s.lookup = None;
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

    /// Moves the DHT node's datagrams out and its peers to their torrents.
    pub(super) fn collect_dht(&mut self, now: Instant) {
        let Some(d) = &mut self.dht else {
            return;
        };
        while let Some((to, payload)) = d.node.poll_transmit() {
            self.out.push_back(Output::Udp { to, payload });
        }
        let mut done = Vec::new();
        let mut found: Vec<(TorrentId, Vec<SocketAddr>)> = Vec::new();
        while let Some(e) = d.node.poll_event() {
            match e {
                DhtEvent::Peers {
                    lookup,
                    info_hash,
                    peers,
                } => {
                    let torrent = d.schedules.lookups.get(&lookup).copied();
                    if let Some(s) = torrent.and_then(|t| d.schedules.torrents.get_mut(&t)) {
                        s.found += peers.len();
                    }
                    if let Some(&id) = self.by_hash.get(&info_hash) {
                        found.push((id, peers));
                    }
                }
                DhtEvent::LookupDone { lookup, .. } => done.push(lookup),
                DhtEvent::ExternalAddress(_) | DhtEvent::IdChanged(_) => {
                    self.out.push_back(Output::Event(Event::Dht(e)));
                }
                _ => {}
            }
        }
        for (id, peers) in found {
            // Never for a private torrent (BEP 27); a magnet cannot say
            // whether it is private until its metadata is in.
            if let Some(t) = self.torrents.get_mut(&id).filter(|t| !t.is_private()) {
                t.add_peers(now, peers, PeerSource::Dht);
            }
        }
        for lookup in done {
            self.dht_lookup_done(now, lookup);
        }
    }
}
