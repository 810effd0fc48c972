//! Metadata fetches for an index: the crawler's info-hashes (BEP 51,
//! [`Engine::crawl`]) turned into names and file lists.
//!
//! [`Engine::fetch_metadata`] queues an info-hash. Up to
//! [`FetchConfig::max_in_flight`] run at once, each a magnet torrent of the
//! same machinery a download uses (peers from the DHT, BEP 9 over BEP 10,
//! the same checks against liars), with three differences: it only looks
//! for peers (`get_peers`, never `announce_peer`: we do not have the
//! torrent), it is not announced on the local network, and it refuses
//! metadata over [`FetchConfig::max_metadata_size`]. When the metadata is
//! in and hashes to the info-hash, the engine reports
//! [`Event::MetadataFetched`] with its bytes and forgets the torrent; when
//! the deadline passes first, or the metadata is no torrent,
//! [`Event::MetadataFetchFailed`] says why. A peer that serves bad metadata
//! only costs its own connection (the torrent machinery bans it), and bad
//! metadata is never reported.
//!
//! Everything is bounded: the queue (a full queue refuses), the fetches in
//! flight, each fetch's time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::{Engine, Event, Output};
use crate::handles::TorrentId;
use crate::metainfo::InfoHash;
use crate::time::Instant;
use crate::torrent::{Torrent, TorrentEvent};

/// Limits of the metadata fetches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// Fetches running at once.
    pub max_in_flight: usize,
    /// Info-hashes waiting for a slot; more are refused.
    pub max_queued: usize,
    /// How long one fetch may take, from its start.
    pub deadline: Duration,
    /// Larger metadata is refused (a real torrent's info dictionary is
    /// rarely over a few MiB: 20 bytes per piece).
    pub max_metadata_size: u64,
    /// Peers each fetch connects to at most.
    pub max_peers: usize,
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            max_in_flight: 64,
            max_queued: 100_000,
            deadline: Duration::from_secs(60),
            max_metadata_size: 10 << 20,
            max_peers: 8,
        }
    }
}

/// Why a fetch ended without metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchFailure {
    /// The deadline passed (no peer, or none that would give it).
    TimedOut,
    /// The only peers that had it offered more than
    /// [`FetchConfig::max_metadata_size`].
    TooLarge,
    /// It hashed to the info-hash but is no valid info dictionary.
    Invalid,
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FetchFailure::TimedOut => "no peer gave the metadata in time",
            FetchFailure::TooLarge => "the metadata is larger than the limit",
            FetchFailure::Invalid => "the metadata is not a valid info dictionary",
        })
    }
}

/// Counters of the fetches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Info-hashes accepted into the queue.
    pub queued: u64,
    /// Refused: the queue was full, or the hash was queued, running or a
    /// torrent of ours already.
    pub refused: u64,
    /// Fetches started.
    pub started: u64,
    /// Metadata delivered.
    pub fetched: u64,
    /// Ended by the deadline.
    pub timed_out: u64,
    /// Ended because it was over the size limit.
    pub too_large: u64,
    /// Ended because it did not parse.
    pub invalid: u64,
    /// Running now.
    pub running: usize,
    /// Waiting now.
    pub waiting: usize,
}

/// The queue and the fetches running.
#[derive(Debug, Default)]
pub(super) struct Fetches {
    pub config: FetchConfig,
    queue: VecDeque<InfoHash>,
    queued: BTreeSet<InfoHash>,
    running: BTreeMap<TorrentId, (InfoHash, Instant)>,
    deadlines: BTreeSet<(Instant, TorrentId)>,
    /// The fetch being removed: its last events are swallowed.
    ending: Option<TorrentId>,
    stats: FetchStats,
}

impl Fetches {
    pub(super) fn new(config: FetchConfig) -> Fetches {
        Fetches {
            config,
            ..Fetches::default()
        }
    }

    /// Whether torrent `id` is a fetch (looked up, never announced).
    pub(super) fn is_fetch(&self, id: TorrentId) -> bool {
        self.running.contains_key(&id) || self.ending == Some(id)
    }

    /// The earliest deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }
}

impl Engine {
    /// Sets the limits of [`fetch_metadata`](Engine::fetch_metadata).
    pub fn set_fetch_config(&mut self, config: FetchConfig) {
        self.fetches.config = config;
    }

    /// Queues a metadata fetch for an index (see the module
    /// documentation); `false` if refused: the queue is full, the hash is
    /// queued or running already, or the engine has it as a torrent.
    pub fn fetch_metadata(&mut self, now: Instant, info_hash: InfoHash) -> bool {
        self.now = now;
        let f = &mut self.fetches;
        if f.queue.len() >= f.config.max_queued
            || f.queued.contains(&info_hash)
            || self.by_hash.contains_key(&info_hash)
            || self.shutdown.is_some()
        {
            f.stats.refused += 1;
            return false;
        }
        f.queue.push_back(info_hash);
        f.queued.insert(info_hash);
        f.stats.queued += 1;
        self.start_fetches(now);
        true
    }

    /// The fetches' counters.
    pub fn fetch_stats(&self) -> FetchStats {
        FetchStats {
            running: self.fetches.running.len(),
            waiting: self.fetches.queue.len(),
            ..self.fetches.stats
        }
    }

    /// Starts queued fetches while there is room (none once shutting
    /// down).
    fn start_fetches(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        while self.fetches.running.len() < self.fetches.config.max_in_flight.max(1) {
            let Some(hash) = self.fetches.queue.pop_front() else {
                break;
            };
            self.fetches.queued.remove(&hash);
            if self.by_hash.contains_key(&hash) {
                continue;
            }
            let mut config = self.torrent_config();
            config.max_metadata_size = self.fetches.config.max_metadata_size;
            config.max_peers = self.fetches.config.max_peers.max(1);
            config.web_seeds = false;
            let id = self.insert_magnet(now, hash, Vec::new(), config, &[hash]);
            let deadline = now + self.fetches.config.deadline;
            self.fetches.running.insert(id, (hash, deadline));
            self.fetches.deadlines.insert((deadline, id));
            self.fetches.stats.started += 1;
            // Looked up on the DHT only (never on the local network).
            if let Some(d) = &mut self.dht {
                d.schedules.add(now, id);
            }
        }
        self.rebalance(now);
    }

    /// A fetch's torrent said something: the metadata is in (reported,
    /// the torrent forgotten) or was refused. `true` if the event was a
    /// fetch's and must not reach the application as a torrent event.
    pub(super) fn fetch_event(&mut self, now: Instant, id: TorrentId, e: &TorrentEvent) -> bool {
        if !self.fetches.is_fetch(id) {
            return false;
        }
        if !self.fetches.running.contains_key(&id) {
            // Ending already (its deadline passed as its metadata came).
            return true;
        }
        let outcome = match e {
            TorrentEvent::MetadataReceived => {
                let metadata = self.torrents.get(&id).and_then(|t| t.metadata().cloned());
                metadata.ok_or(FetchFailure::Invalid)
            }
            TorrentEvent::MetadataInvalid(_) => Err(FetchFailure::Invalid),
            _ => return true,
        };
        self.end_fetch(now, id, outcome);
        true
    }

    fn end_fetch(&mut self, now: Instant, id: TorrentId, outcome: Result<Bytes, FetchFailure>) {
        let Some((info_hash, deadline)) = self.fetches.running.remove(&id) else {
            return;
        };
        self.fetches.deadlines.remove(&(deadline, id));
        let s = &mut self.fetches.stats;
        let event = match outcome {
            Ok(metadata) => {
                s.fetched += 1;
                Event::MetadataFetched {
                    info_hash,
                    metadata,
                }
            }
            Err(reason) => {
                match reason {
                    FetchFailure::TimedOut => s.timed_out += 1,
                    FetchFailure::TooLarge => s.too_large += 1,
                    FetchFailure::Invalid => s.invalid += 1,
                }
                Event::MetadataFetchFailed { info_hash, reason }
            }
        };
        self.out.push_back(Output::Event(event));
        // Still a fetch while it goes: its last events are dropped.
        self.fetches.ending = Some(id);
        self.remove(now, id);
        self.fetches.ending = None;
        self.start_fetches(now);
    }

    /// Ends the fetches whose deadline has passed.
    pub(super) fn expire_fetches(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.fetches.deadlines.first() {
            if at > now {
                break;
            }
            let too_large = self
                .torrents
                .get(&id)
                .is_some_and(Torrent::metadata_too_large);
            let reason = match too_large {
                true => FetchFailure::TooLarge,
                false => FetchFailure::TimedOut,
            };
            self.end_fetch(now, id, Err(reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::rng::Seed;

    fn hash(i: u8) -> InfoHash {
        InfoHash([i; 20])
    }

    /// Events out until the engine waits.
    fn drain(e: &mut Engine, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match e.poll_output(now) {
                Output::Timeout(_) => return events,
                Output::Event(ev) => events.push(ev),
                _ => {}
            }
        }
    }

    #[test]
    fn fetches_are_bounded_and_end_at_their_deadline() {
        let t0 = Instant::ZERO;
        let mut e = Engine::new(EngineConfig::default(), Seed::from_u64(1));
        e.set_fetch_config(FetchConfig {
            max_in_flight: 2,
            max_queued: 2,
            deadline: Duration::from_secs(60),
            ..FetchConfig::default()
        });
        assert!((1..=4).all(|i| e.fetch_metadata(t0, hash(i))));
        // The queue is full; a hash running or queued is refused too.
        assert!(!e.fetch_metadata(t0, hash(5)));
        assert!(!e.fetch_metadata(t0, hash(1)));
        assert!(!e.fetch_metadata(t0, hash(3)));
        let s = e.fetch_stats();
        assert_eq!((s.running, s.waiting, s.refused), (2, 2, 3));
        // The running ones look like no torrent of the application's.
        assert!(drain(&mut e, t0).is_empty());
        let t1 = t0 + Duration::from_secs(61);
        e.handle_timeout(t1);
        let events = drain(&mut e, t1);
        assert_eq!(
            events,
            vec![
                Event::MetadataFetchFailed {
                    info_hash: hash(1),
                    reason: FetchFailure::TimedOut
                },
                Event::MetadataFetchFailed {
                    info_hash: hash(2),
                    reason: FetchFailure::TimedOut
                },
            ]
        );
        let s = e.fetch_stats();
        assert_eq!((s.running, s.waiting, s.timed_out, s.started), (2, 0, 2, 4));
        assert_eq!(e.torrent_ids().len(), 2, "the ended fetches are gone");
        // The engine wakes for the next deadline at the latest.
        assert!(e
            .next_timer()
            .is_some_and(|(at, _)| at <= t1 + Duration::from_secs(60)));
    }
}
