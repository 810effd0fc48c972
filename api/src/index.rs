//! `/api/v1/index/…`: the DHT index that `bittide dht crawl --index`
//! fills (`docs/index.md`), searched through the daemon: the same answers
//! as `bittide index search|show|stats --json`.
//!
//! The store is opened on the first request and kept; a store error
//! drops it so the next request opens it again (a PostgreSQL that
//! restarted). Queries run on the blocking pool, one at a time (the
//! others wait in async code, holding no thread): SQLite and the
//! synchronous PostgreSQL client block, and a search is a few
//! milliseconds; PostgreSQL's connect gives up after 10 s. Input is words only (`bittide_index::fts_terms`) passed
//! as parameters, and `limit` is capped, so a request can neither inject
//! nor ask for the whole index at once.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use bittide_driver::runtime::Runtime;
use bittide_index::{hit_json, listing_json, stats_json, Index, IndexError, Location};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::{parse_hash, query};
use crate::App;

/// Results of a search when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;
/// The most results one search returns.
const MAX_LIMIT: usize = 1000;

/// Where the index is, and the store once opened.
pub(crate) struct IndexAccess {
    location: Option<Location>,
    store: Mutex<Option<Box<dyn Index>>>,
    /// One query at a time: the others wait here, not on a blocking
    /// thread (the pool that torrents' disk jobs use), and a client that
    /// leaves stops waiting.
    turn: tokio::sync::Semaphore,
}

impl IndexAccess {
    pub(crate) fn new(location: Option<Location>) -> IndexAccess {
        IndexAccess {
            location,
            store: Mutex::new(None),
            turn: tokio::sync::Semaphore::new(1),
        }
    }

    /// Runs `f` on the store (opened if need be) on the blocking pool.
    async fn with<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn Index) -> Result<T, IndexError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _turn = self
            .turn
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("the index is closed"))?;
        let access = self.clone();
        tokio::task::spawn_blocking(move || access.run(f))
            .await
            .map_err(|_| ApiError::Internal("the index query failed"))?
            .map_err(ApiError::Index)
    }

    fn run<T>(
        &self,
        f: impl FnOnce(&mut dyn Index) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut slot = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let store = match slot.take() {
            Some(store) => store,
            None => self.open()?,
        };
        let store = slot.insert(store);
        let result = f(store.as_mut());
        if matches!(result, Err(IndexError::Store(_))) {
            *slot = None;
        }
        result
    }

    /// Opens the store; a SQLite index that does not exist is not made
    /// (a daemon that never crawled has no index, and says so).
    fn open(&self) -> Result<Box<dyn Index>, IndexError> {
        let location = self
            .location
            .as_ref()
            .ok_or_else(|| IndexError::Location("this daemon has no index (--index)".into()))?;
        if let Location::Sqlite(path) = location {
            if !path.exists() {
                return Err(IndexError::Location(format!(
                    "no index at {}: `bittide dht crawl --index` makes one",
                    path.display()
                )));
            }
        }
        location.open()
    }
}

#[derive(Debug, Default, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/index/search?q=WORDS&limit=N`: torrents whose name has
/// every word, best match first, then most seeders.
pub(crate) async fn search<R: Runtime>(
    State(app): State<App<R>>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let params: SearchQuery = query(&uri)?;
    let words = params.q.unwrap_or_default();
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let hits = app.index.with(move |ix| ix.search(&words, limit)).await?;
    Ok(Json(hits.iter().map(hit_json).collect()))
}

/// `GET /api/v1/index/torrents/{hash}`: one torrent and its files.
pub(crate) async fn show<R: Runtime>(
    State(app): State<App<R>>,
    axum::extract::Path(hash): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info_hash = parse_hash(&hash)?;
    match app.index.with(move |ix| ix.get(&info_hash)).await? {
        Some((hit, files)) => Ok(Json(listing_json(&hit, &files))),
        None => Err(ApiError::UnknownTorrent(format!(
            "{info_hash} is not in the index"
        ))),
    }
}

/// `GET /api/v1/index/stats`: totals.
pub(crate) async fn stats<R: Runtime>(State(app): State<App<R>>) -> Result<Json<Value>, ApiError> {
    let stats = app.index.with(|ix| ix.stats()).await?;
    Ok(Json(stats_json(&stats)))
}
