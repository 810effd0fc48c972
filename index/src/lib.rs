//! bittide-index: what the DHT crawler finds, kept and searchable.
//!
//! The crawler (`bittide dht crawl --index`) harvests info-hashes (BEP 51),
//! fetches their metadata from peers (BEP 9, through the engine's
//! [`fetch_metadata`](bittide_core::engine::Engine::fetch_metadata)) and
//! stores a [`Listing`] of each: names, sizes, files. [`Index`] is
//! the one small trait every store implements; [`SqliteIndex`] is the
//! embedded default (one file in the state folder, nothing to set up),
//! [`PostgresIndex`] the shared one that several crawlers fill together.
//! [`Indexer`] is the glue between the engine's events and a store:
//! dedupe through the store, batched writes, counters.
//!
//! The schema and its versions are in `docs/index.md`.

#[doc(hidden)]
pub mod contract;
mod indexer;
mod json;
mod postgres;
mod query;
mod sqlite;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bittide_core::metainfo::InfoHash;

pub use bittide_core::metainfo::{ListedFile, Listing, ListingError, MAX_LISTED_FILES};
pub use indexer::{Indexer, IndexerStats};
pub use json::{hit_json, listing_json, stats_json};
pub use postgres::PostgresIndex;
pub use query::{fts_terms, QueryError};
pub use sqlite::SqliteIndex;

/// Seconds since the Unix epoch: the index's clock (its callers read it;
/// the index never does).
pub type UnixTime = i64;

/// A torrent the crawler fetched, with where and when it found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The torrent.
    pub listing: Listing,
    /// When its metadata came in.
    pub at: UnixTime,
    /// The DHT node that named it, if known.
    pub node: Option<SocketAddr>,
}

/// A search result, or one torrent's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Its info-hash (v1, or a v2 torrent's truncated one).
    pub info_hash: InfoHash,
    /// The v2 info-hash, if it has one.
    pub info_hash_v2: Option<[u8; 32]>,
    /// Its name.
    pub name: String,
    /// Bytes in all its files.
    pub size: u64,
    /// How many files it has.
    pub files: u64,
    /// BEP 27's flag.
    pub private: bool,
    /// Seeders, as last estimated (BEP 33).
    pub seeders: Option<u32>,
    /// Leechers, as last estimated (BEP 33).
    pub leechers: Option<u32>,
    /// When it was first indexed.
    pub discovered: UnixTime,
    /// When a crawler last met it.
    pub last_seen: UnixTime,
}

impl Hit {
    /// A magnet link for it.
    pub fn magnet(&self) -> String {
        bittide_core::metainfo::magnet_link(&self.info_hash, self.info_hash_v2, &self.name)
    }
}

/// Totals of an index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Torrents indexed.
    pub torrents: u64,
    /// Files kept.
    pub files: u64,
    /// Bytes in all the torrents.
    pub bytes: u64,
    /// Crawlers that have written into it.
    pub crawlers: u64,
    /// Torrents with a BEP 33 estimate.
    pub with_swarm: u64,
    /// When the newest torrent was indexed.
    pub newest: Option<UnixTime>,
}

/// A BEP 33 estimate of a torrent's swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwarmEstimate {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Seeders estimated from the `BFsd` Bloom filters.
    pub seeders: u32,
    /// Other peers, estimated from the `BFpe` filters.
    pub leechers: u32,
    /// When.
    pub at: UnixTime,
}

/// Most matches one search ranks: a search matching more ranks the newest
/// this many (a word in a tenth of a million names would otherwise have
/// every one of them read and scored). Both stores find where the newest
/// start from their word index alone; `docs/index.md` has the figures.
pub(crate) const RANKED_AT_MOST: i64 = 10_000;

/// Why the index failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum IndexError {
    /// The store failed (with what it said).
    Store(String),
    /// The file is an index of a newer schema than this build knows.
    NewerSchema {
        /// The file's schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The search has no words to look for.
    Query(QueryError),
    /// `--index` names no store this build can open.
    Location(String),
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::Store(e) => write!(f, "index store: {e}"),
            IndexError::NewerSchema { found, known } => write!(
                f,
                "the index is of schema version {found}; this bittide knows up to {known} (upgrade bittide)"
            ),
            IndexError::Query(e) => write!(f, "{e}"),
            IndexError::Location(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for IndexError {}

impl From<rusqlite::Error> for IndexError {
    fn from(e: rusqlite::Error) -> IndexError {
        IndexError::Store(e.to_string())
    }
}

/// What every store does. Writes are batched by the caller ([`Indexer`]);
/// every write is an upsert, so several crawlers writing the same torrent
/// never duplicate it nor fail.
pub trait Index: Send {
    /// Of `harvested` (info-hashes `crawler` just met, each with the DHT
    /// node that named it), those to fetch: not indexed yet, and not
    /// claimed by another crawler within the last `window` seconds. Those
    /// returned are claimed for `crawler` as of `now`; those indexed are
    /// marked seen at `now`. Every one is recorded as found by `crawler`
    /// (`sources`; a find of a hash that never gets indexed is forgotten
    /// after two windows).
    fn claim(
        &mut self,
        crawler: &str,
        harvested: &[(InfoHash, Option<SocketAddr>)],
        now: UnixTime,
        window: i64,
    ) -> Result<Vec<InfoHash>, IndexError>;

    /// Stores `batch` (found by `crawler`); returns how many were new.
    fn insert(&mut self, crawler: &str, batch: &[Found]) -> Result<usize, IndexError>;

    /// Records BEP 33 estimates (of torrents already indexed).
    fn set_swarms(&mut self, estimates: &[SwarmEstimate]) -> Result<(), IndexError>;

    /// Torrents whose name has every word of `query`, best text match
    /// first, then most seeders; at most `limit`.
    fn search(&mut self, query: &str, limit: usize) -> Result<Vec<Hit>, IndexError>;

    /// One torrent and its files (at most [`MAX_LISTED_FILES`]).
    fn get(&mut self, info_hash: &InfoHash) -> Result<Option<(Hit, Vec<ListedFile>)>, IndexError>;

    /// Totals.
    fn stats(&mut self) -> Result<IndexStats, IndexError>;

    /// Every torrent with its files, oldest first, to `each`; returns how
    /// many.
    fn export(
        &mut self,
        each: &mut dyn FnMut(&Hit, &[ListedFile]) -> std::io::Result<()>,
    ) -> Result<u64, IndexError>;
}

/// `chosen`, each once, in the order `harvested` met them (what
/// [`Index::claim`] returns).
pub(crate) fn in_harvest_order(
    harvested: &[(InfoHash, Option<SocketAddr>)],
    mut chosen: std::collections::BTreeSet<InfoHash>,
) -> Vec<InfoHash> {
    harvested
        .iter()
        .map(|(h, _)| *h)
        .filter(|h| chosen.remove(h))
        .collect()
}

/// Where an index lives, as `--index` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (`PATH` or `sqlite:PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

impl Location {
    /// Reads `--index`'s value.
    pub fn parse(s: &str) -> Location {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Location::Postgres(s.to_owned());
        }
        Location::Sqlite(PathBuf::from(s.strip_prefix("sqlite:").unwrap_or(s)))
    }

    /// The default: `index.db` in the state folder.
    pub fn default_in(state_dir: &Path) -> Location {
        Location::Sqlite(state_dir.join("index.db"))
    }

    /// Opens (creating a SQLite file and its folder if needed) and brings
    /// the schema up to date.
    pub fn open(&self) -> Result<Box<dyn Index>, IndexError> {
        match self {
            Location::Sqlite(path) => Ok(Box::new(SqliteIndex::open(path)?)),
            Location::Postgres(url) => Ok(Box::new(PostgresIndex::connect(url)?)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => {
                // Never print a password: not the user part (a password may
                // hold '@'), not the query (`?password=…`).
                let url = url.split('?').next().unwrap_or(url);
                match url.rsplit_once('@') {
                    Some((_, host)) => write!(f, "postgres://…@{host}"),
                    None => f.write_str(url),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Location;

    #[test]
    fn a_location_never_prints_a_password() {
        let shown = |s: &str| Location::parse(s).to_string();
        assert_eq!(shown("postgres://u:pw@db.lan/x"), "postgres://…@db.lan/x");
        assert_eq!(shown("postgres://u:p@w@db.lan/x"), "postgres://…@db.lan/x");
        assert_eq!(
            shown("postgresql://db.lan/x?user=u&password=pw"),
            "postgresql://db.lan/x"
        );
        assert_eq!(shown("sqlite:/srv/index.db"), "/srv/index.db");
    }
}
