//! `bittide dht crawl --index`: the crawl becomes an index. One engine
//! walks the DHT (BEP 51) and fetches the metadata of what it harvests
//! (BEP 9); a store thread keeps the [`Indexer`] and its [`Index`] (SQLite
//! or PostgreSQL) off the event loop, writing once a second in one
//! transaction and sending back the hashes worth fetching.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bittide_core::dht::crawler::CrawlConfig;
use bittide_core::dht::DhtEvent;
use bittide_core::engine::{Event, FetchConfig};
use bittide_driver::client::SessionDht;
use bittide_driver::driver::{Command, Control, Handle};
use bittide_driver::harvest::{harvest, HarvestOptions};
use bittide_index::{Index, Indexer, IndexerStats, Location, UnixTime};
use bittide_tokio::runtime::TokioRuntime;
use serde_json::json;

use super::Options;
use crate::exit::{Exit, Failure};
use crate::output::print;

/// A claim by another crawler keeps a hash from us this long (seconds):
/// about two fetch deadlines.
const CLAIM_WINDOW: i64 = 180;
/// How often the store thread writes and claims.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Events waiting for the store thread, at most.
const STORE_QUEUE: usize = 65_536;
/// How often a stats line goes to stderr.
const STATS_EVERY: Duration = Duration::from_secs(60);

/// What the loop hands the store thread.
enum ToStore {
    Event(UnixTime, Event),
    Stop,
}

fn unix_now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The crawl's settings from the command line.
pub(super) struct IndexCrawl {
    pub bind: SocketAddr,
    pub duration: Duration,
    pub rate: u64,
    pub location: Location,
    pub max_fetches: usize,
}

/// Runs the crawl into the index until `duration` has passed (0: until
/// Ctrl-C).
pub(super) fn run(options: &Options, crawl: IndexCrawl) -> Result<(), Failure> {
    // A bad location fails before any socket opens.
    let store = crawl
        .location
        .open()
        .map_err(|e| Failure::new(Exit::Io, format!("--index {}: {e}", crawl.location)))?;
    let harvest_options = HarvestOptions {
        listen: crawl.bind,
        dht: SessionDht {
            bootstrap: options.bootstrap.clone(),
            state_file: options.state_file(),
            allow_local: options.dht_allow_local,
        },
        enforce_node_ids: options.enforce_node_ids,
        duration: (!crawl.duration.is_zero()).then_some(crawl.duration),
        crawl: CrawlConfig {
            rate: crawl.rate.max(1),
            ..CrawlConfig::default()
        },
        fetch: FetchConfig {
            max_in_flight: crawl.max_fetches.max(1),
            ..FetchConfig::default()
        },
        seed: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Io, format!("runtime: {e}")))?;
    // Bounded: while the store is slow, the loop drops events rather than
    // hold them (harvests come again; a dropped fetch result is fetched
    // again after its claim expires).
    let (to_store, from_loop) = mpsc::sync_channel::<ToStore>(STORE_QUEUE);
    let (handle_tx, handle_rx) = mpsc::channel::<(Handle, SocketAddr)>();
    let json = options.json;
    let max_fetches = crawl.max_fetches.max(1);
    let store_thread =
        std::thread::spawn(move || store_loop(store, from_loop, handle_rx, json, max_fetches));
    let result = rt.block_on(async {
        let runtime = TokioRuntime::current();
        harvest(
            runtime,
            harvest_options,
            |handle, local| {
                let h = handle.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        h.send(Command::Shutdown);
                    }
                });
                let _ = handle_tx.send((handle, local));
            },
            |event, _| {
                if let Some(
                    e @ (Event::Dht(DhtEvent::Harvested { .. } | DhtEvent::Scraped { .. })
                    | Event::MetadataFetched { .. }
                    | Event::MetadataFetchFailed { .. }),
                ) = event
                {
                    let _ = to_store.try_send(ToStore::Event(unix_now(), e.clone()));
                }
                Control::Continue
            },
        )
        .await
    });
    rt.shutdown_timeout(Duration::from_millis(500));
    let _ = to_store.send(ToStore::Stop);
    let stored = store_thread
        .join()
        .unwrap_or_else(|_| Err(Failure::new(Exit::Io, "the index thread panicked")));
    result.map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
    let stats = stored?;
    eprintln!("{}", summary(&stats));
    Ok(())
}

/// The store thread: feeds the indexer, flushes once a second, sends the
/// fetches, prints each torrent indexed; ends (after a last flush) on
/// [`ToStore::Stop`].
fn store_loop(
    mut store: Box<dyn Index>,
    from_loop: mpsc::Receiver<ToStore>,
    handle_rx: mpsc::Receiver<(Handle, SocketAddr)>,
    json: bool,
    max_fetches: usize,
) -> Result<IndexerStats, Failure> {
    let Ok((handle, local)) = handle_rx.recv() else {
        // The loop never started (a socket failed): nothing to index.
        return Ok(IndexerStats::default());
    };
    // Two fetch deadlines' worth: a claim is fetched well within its window.
    let mut indexer = Indexer::new(crawler_name(local), CLAIM_WINDOW, 2 * max_fetches);
    let mut last_flush = std::time::Instant::now();
    let mut last_stats = last_flush;
    let mut stopping = false;
    while !stopping {
        match from_loop.recv_timeout(FLUSH_EVERY) {
            Ok(ToStore::Event(at, e)) => {
                if let Some(r) = indexer.handle_event(at, &e) {
                    let line = match json {
                        true => format!(
                            "{}\n",
                            json!({"info_hash": r.info_hash.to_string(), "name": r.name, "size": r.size, "files": r.file_count})
                        ),
                        false => format!("{} {}\n", r.info_hash, r.name),
                    };
                    print(&line)?;
                }
            }
            Ok(ToStore::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => stopping = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stopping || last_flush.elapsed() >= FLUSH_EVERY {
            last_flush = std::time::Instant::now();
            match indexer.flush(store.as_mut(), unix_now()) {
                Ok(fetch) => {
                    for h in fetch {
                        handle.send(Command::FetchMetadata(h));
                    }
                }
                // Kept for the next flush; a store that stays down is
                // reported once a minute below.
                Err(e) => eprintln!("bittide: index: {e}"),
            }
        }
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = std::time::Instant::now();
            eprintln!("{}", summary(&indexer.stats()));
        }
    }
    if indexer.unwritten() > 0 {
        return Err(Failure::new(
            Exit::Io,
            format!(
                "{} torrents could not be written to the index",
                indexer.unwritten()
            ),
        ));
    }
    Ok(indexer.stats())
}

/// This crawler's name in the index's `sources`: host and port.
fn crawler_name(local: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", local.port())
}

fn summary(s: &IndexerStats) -> String {
    format!(
        "{} info-hashes harvested, {} already indexed, {} fetched ({} not torrents), {} fetches failed ({} too large), {} swarms counted, {} new torrents indexed",
        s.harvested, s.known, s.fetched, s.rejected, s.failed, s.too_large, s.scraped, s.stored
    )
}
