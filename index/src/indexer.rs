//! `Indexer`: from the engine's events to an [`Index`], the same for the
//! command line and the simulator.
//!
//! The engine crawls and reports each info-hash it has not met lately
//! ([`DhtEvent::Harvested`]). The indexer gathers them and, at each
//! [`flush`](Indexer::flush), asks the store which are worth fetching (not
//! indexed, not claimed by another crawler lately: several crawlers
//! sharing one PostgreSQL split the work this way) and returns those for
//! the engine's [`fetch_metadata`](bittide_core::engine::Engine::fetch_metadata).
//! Fetched metadata ([`Event::MetadataFetched`]) becomes a
//! [`Listing`]; listings are written at the next flush, in one
//! transaction. Memory is bounded: harvests waiting for a flush are capped
//! (the excess is counted and dropped), and no more is claimed than the
//! engine can fetch soon.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bittide_core::dht::DhtEvent;
use bittide_core::engine::{Event, FetchFailure};
use bittide_core::metainfo::InfoHash;

use crate::{Found, Index, IndexError, Listing, SwarmEstimate, UnixTime};

/// Harvests waiting for a flush, at most.
const MAX_WAITING: usize = 100_000;

/// Counters of an indexer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexerStats {
    /// Info-hashes the crawl reported.
    pub harvested: u64,
    /// Dropped because too many waited for a flush.
    pub dropped: u64,
    /// Sent to be fetched (not indexed, not claimed elsewhere).
    pub claimed: u64,
    /// Not fetched: indexed already (marked seen instead), or claimed by
    /// another crawler.
    pub known: u64,
    /// Metadata received.
    pub fetched: u64,
    /// Metadata that was no torrent (hash matched, content did not).
    pub rejected: u64,
    /// Fetches that ended without metadata (no peer, too large, invalid).
    pub failed: u64,
    /// Of those, refused as larger than the limit.
    pub too_large: u64,
    /// New torrents written.
    pub stored: u64,
    /// Swarms counted (BEP 33 scrapes of the fetches' lookups).
    pub scraped: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Indexer {
    crawler: String,
    window: i64,
    /// Fetches sent and not ended, at most.
    max_pending: usize,
    waiting: Vec<(InfoHash, Option<SocketAddr>)>,
    /// Fetches sent: the node that named each, and when it was claimed.
    claimed: BTreeMap<InfoHash, (Option<SocketAddr>, UnixTime)>,
    found: Vec<Found>,
    /// BEP 33 estimates of fetches still running (applied once stored).
    scraped: BTreeMap<InfoHash, SwarmEstimate>,
    /// Estimates to write after the next flush's inserts.
    estimates: Vec<SwarmEstimate>,
    stats: IndexerStats,
}

impl Indexer {
    /// An indexer writing as `crawler` (a name for the `sources` table:
    /// host and node id, say); a hash claimed by another crawler less than
    /// `window` seconds ago is left to it. It claims no more than it can
    /// fetch: at most `max_pending` fetches sent and not ended (the rest of
    /// the harvest waits, so a claim never outlives its window in the
    /// engine's queue while other crawlers could have fetched the hash).
    pub fn new(crawler: impl Into<String>, window: i64, max_pending: usize) -> Indexer {
        Indexer {
            crawler: crawler.into(),
            window,
            max_pending: max_pending.max(1),
            waiting: Vec::new(),
            claimed: BTreeMap::new(),
            found: Vec::new(),
            scraped: BTreeMap::new(),
            estimates: Vec::new(),
            stats: IndexerStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> IndexerStats {
        self.stats
    }

    /// Records not yet written.
    pub fn unwritten(&self) -> usize {
        self.found.len()
    }

    /// An engine event (others are ignored); `at` is the wall clock.
    /// Returns the torrent it brought, if it brought one.
    pub fn handle_event(&mut self, at: UnixTime, event: &Event) -> Option<&Listing> {
        match event {
            Event::Dht(DhtEvent::Harvested {
                info_hash, node, ..
            }) => {
                self.stats.harvested += 1;
                if self.waiting.len() >= MAX_WAITING {
                    self.stats.dropped += 1;
                } else {
                    self.waiting.push((*info_hash, Some(node.addr)));
                }
            }
            Event::Dht(DhtEvent::Scraped {
                info_hash,
                seeders,
                leechers,
                ..
            }) => {
                self.stats.scraped += 1;
                let e = SwarmEstimate {
                    info_hash: *info_hash,
                    seeders: *seeders,
                    leechers: *leechers,
                    at,
                };
                // Running: kept until its metadata is stored; else (stored
                // already, or a torrent of another crawler's) written now.
                if self.claimed.contains_key(info_hash) {
                    self.scraped.insert(*info_hash, e);
                } else if self.estimates.len() < MAX_WAITING {
                    self.estimates.push(e);
                }
            }
            Event::MetadataFetched {
                info_hash,
                metadata,
            } => {
                self.stats.fetched += 1;
                let node = self.claimed.remove(info_hash).and_then(|(n, _)| n);
                if let Some(e) = self.scraped.remove(info_hash) {
                    self.estimates.push(e);
                }
                match Listing::from_metadata(*info_hash, metadata) {
                    Ok(listing) => {
                        self.found.push(Found { listing, at, node });
                        return self.found.last().map(|f| &f.listing);
                    }
                    Err(_) => self.stats.rejected += 1,
                }
            }
            Event::MetadataFetchFailed { info_hash, reason } => {
                self.claimed.remove(info_hash);
                self.scraped.remove(info_hash);
                self.stats.failed += 1;
                if *reason == FetchFailure::TooLarge {
                    self.stats.too_large += 1;
                }
            }
            _ => {}
        }
        None
    }

    /// Writes what was fetched and claims what was harvested; returns the
    /// info-hashes to fetch. On an error nothing is lost: what was not
    /// written waits for the next flush.
    pub fn flush(
        &mut self,
        index: &mut dyn Index,
        now: UnixTime,
    ) -> Result<Vec<InfoHash>, IndexError> {
        if !self.found.is_empty() {
            let new = index.insert(&self.crawler, &self.found)?;
            self.stats.stored += new as u64;
            self.found.clear();
        }
        if !self.estimates.is_empty() {
            index.set_swarms(&self.estimates)?;
            self.estimates.clear();
        }
        // A fetch the engine never reported (refused as a duplicate) frees
        // its place after two windows.
        let stale = now - 2 * self.window;
        let scraped = &mut self.scraped;
        self.claimed.retain(|h, (_, at)| {
            let keep = *at > stale;
            if !keep {
                scraped.remove(h);
            }
            keep
        });
        let room = self.max_pending.saturating_sub(self.claimed.len());
        if self.waiting.is_empty() || room == 0 {
            return Ok(Vec::new());
        }
        let take = room.min(self.waiting.len());
        let fetch = index.claim(&self.crawler, &self.waiting[..take], now, self.window)?;
        let nodes: BTreeMap<InfoHash, Option<SocketAddr>> = self.waiting.drain(..take).collect();
        self.stats.claimed += fetch.len() as u64;
        self.stats.known += (take - fetch.len()) as u64;
        for h in &fetch {
            self.claimed
                .insert(*h, (nodes.get(h).copied().flatten(), now));
        }
        Ok(fetch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteIndex;
    use bittide_core::dht::crawler::HarvestSource;
    use bittide_core::krpc::{CompactNode, NodeId};
    use bittide_core::metainfo::InfoHash;

    fn harvested(hash: InfoHash) -> Event {
        Event::Dht(DhtEvent::Harvested {
            info_hash: hash,
            node: CompactNode {
                id: NodeId([1; 20]),
                addr: "127.0.0.1:6881".parse().expect("addr"),
            },
            source: HarvestSource::Sample,
        })
    }

    #[test]
    fn from_harvest_to_a_stored_torrent_with_its_swarm() {
        let info =
            b"d6:lengthi5e4:name8:test.iso12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let hash = InfoHash::of_info(info);
        let other = InfoHash([9; 20]);
        let mut ix = SqliteIndex::in_memory().expect("open");
        let mut indexer = Indexer::new("me", 180, 64);
        indexer.handle_event(100, &harvested(hash));
        indexer.handle_event(100, &harvested(other));
        assert_eq!(
            indexer.flush(&mut ix, 100).expect("flush"),
            vec![hash, other]
        );
        // The swarm is counted while the metadata is on its way.
        let scraped = Event::Dht(DhtEvent::Scraped {
            lookup: bittide_core::dht::LookupId(1),
            info_hash: hash,
            seeders: 3,
            leechers: 7,
        });
        indexer.handle_event(101, &scraped);
        let fetched = Event::MetadataFetched {
            info_hash: hash,
            metadata: bytes::Bytes::from_static(info),
        };
        let listing = indexer.handle_event(102, &fetched).expect("a listing");
        assert_eq!(listing.name, "test.iso");
        indexer.handle_event(
            103,
            &Event::MetadataFetchFailed {
                info_hash: other,
                reason: FetchFailure::TooLarge,
            },
        );
        assert!(indexer.flush(&mut ix, 104).expect("flush").is_empty());
        let (hit, files) = ix.get(&hash).expect("get").expect("stored");
        assert_eq!(
            (hit.seeders, hit.leechers, files.len()),
            (Some(3), Some(7), 1)
        );
        let s = indexer.stats();
        assert_eq!(
            (
                s.harvested,
                s.claimed,
                s.fetched,
                s.failed,
                s.too_large,
                s.stored,
                s.scraped
            ),
            (2, 2, 1, 1, 1, 1, 1)
        );
        // Met again: known, not fetched again.
        indexer.handle_event(200, &harvested(hash));
        assert!(indexer.flush(&mut ix, 200).expect("flush").is_empty());
        assert_eq!(indexer.stats().known, 1);
    }

    #[test]
    fn metadata_that_is_no_torrent_is_counted_not_stored() {
        let bad = b"d4:name0:e";
        let hash = InfoHash::of_info(bad);
        let mut indexer = Indexer::new("me", 180, 64);
        let fetched = Event::MetadataFetched {
            info_hash: hash,
            metadata: bytes::Bytes::from_static(bad),
        };
        assert!(indexer.handle_event(1, &fetched).is_none());
        assert_eq!((indexer.stats().rejected, indexer.unwritten()), (1, 0));
    }
}
