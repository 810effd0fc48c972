//! What `download` and `seed` share: their DHT and state-folder options,
//! and running the one-torrent session of `bittide_driver::client` on
//! tokio with progress output and Ctrl-C.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bittide_core::metainfo::{Magnet, Metainfo};
use bittide_driver::client::{self, SessionOptions, TorrentSource};
use bittide_driver::driver::Command;
use bittide_tokio::runtime::TokioRuntime;

use crate::exit::{Exit, Failure};
use crate::progress::Reporter;

/// The DHT options of `download` and `seed`.
#[derive(clap::Args, Debug)]
pub(crate) struct SessionDhtArgs {
    /// Find peers through trackers and --peer only, not the DHT.
    #[arg(long)]
    no_dht: bool,
    /// A DHT node to join through, HOST:PORT (repeatable) [default: the
    /// nodes of the DHT state file, else the public routers].
    #[arg(long = "dht-bootstrap", value_name = "ADDR")]
    dht_bootstrap: Vec<String>,
    /// Keep our DHT node id and known nodes here between runs [default:
    /// STATE_DIR/dht.dat].
    #[arg(long, value_name = "PATH")]
    dht_state: Option<PathBuf>,
    /// The state folder: resume data (`torrents/<info-hash>/resume`) and
    /// the DHT state [default: $XDG_STATE_HOME/bittide, else
    /// ~/.local/state/bittide].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Accept loopback and private-network DHT nodes (tests, LANs).
    #[arg(long)]
    dht_allow_local: bool,
}

impl SessionDhtArgs {
    /// The state folder, and the DHT's options.
    pub(crate) fn into_options(self) -> (Option<PathBuf>, Option<client::SessionDht>) {
        let state = self.state_dir.or_else(default_state_dir);
        if self.no_dht {
            return (state, None);
        }
        let dht = client::SessionDht {
            bootstrap: self.dht_bootstrap,
            state_file: self
                .dht_state
                .or_else(|| state.as_ref().map(|s| s.join("dht.dat"))),
            allow_local: self.dht_allow_local,
        };
        (state, Some(dht))
    }
}

/// The state folder when none is given (XDG base directories).
pub(crate) fn default_state_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => {
            PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".local/state")
        }
    };
    Some(base.join("bittide"))
}

/// A magnet link (`magnet:…`) or a .torrent file's bytes.
pub(crate) fn torrent_source(arg: &Path) -> Result<TorrentSource, Failure> {
    match arg.to_str().filter(|s| s.starts_with("magnet:")) {
        Some(uri) => Magnet::parse(uri)
            .map(TorrentSource::Magnet)
            .map_err(|e| Failure::new(Exit::BadTorrent, format!("bad magnet link: {e}"))),
        None => read_torrent(arg).map(TorrentSource::File),
    }
}

/// A .torrent file's bytes (the session checks them).
pub(crate) fn read_torrent(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::new(Exit::Io, format!("{}: {e}", path.display())))
}

/// What the session is for: the words progress uses, and whether
/// completion ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `bittide download` (`keep_seeding` with `--seed`).
    Download { keep_seeding: bool },
    /// `bittide seed`: serve what is on disk.
    Seed,
}

/// Runs one torrent until it completes (or, seeding, until Ctrl-C), with
/// progress on stdout: a bar on a terminal, a line now and then
/// otherwise, or JSON events with `json`.
///
/// Ctrl-C: the first stops gracefully (trackers hear `stopped`, writes are
/// flushed, resume data saved; the engine bounds it to a few seconds),
/// the second exits at once. Either way a download that was not complete
/// exits [`Exit::Interrupted`], so a script can tell it from success.
pub(crate) fn run(options: SessionOptions, json: bool, mode: Mode) -> Result<(), Failure> {
    // One thread runs the loop and the socket tasks (they only move bytes);
    // hashing and disk work go to the blocking pool. On few cores this
    // avoids workers stealing each other's tasks and the wake-ups that
    // come with it. A small pool keeps threads (and allocator arenas) few.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .map_err(|e| Failure::new(Exit::Io, format!("runtime: {e}")))?;
    // A note for a person at a terminal; `--json` readers get events only.
    let hint = (!json && matches!(mode, Mode::Download { .. }))
        .then(|| no_source_hint(&options))
        .flatten();
    let interrupted = Arc::new(AtomicBool::new(false));
    let outcome = rt.block_on({
        let interrupted = interrupted.clone();
        async move {
            let runtime = TokioRuntime::current();
            let reporter = std::cell::RefCell::new(Reporter::new(runtime.clone(), json, mode));
            let result = client::run(
                runtime,
                options,
                |handle, local| {
                    tokio::spawn(async move {
                        if tokio::signal::ctrl_c().await.is_ok() {
                            interrupted.store(true, Ordering::SeqCst);
                            handle.send(Command::Shutdown);
                            if tokio::signal::ctrl_c().await.is_ok() {
                                Reporter::abandon(json);
                                std::process::exit(Exit::Interrupted.code().into());
                            }
                        }
                    });
                    if let Some(hint) = &hint {
                        eprintln!("bittide: note: {hint}");
                    }
                    reporter.borrow_mut().started(local);
                },
                |p, e| reporter.borrow_mut().progress(p, e),
            )
            .await;
            (reporter.into_inner(), result)
        }
    });
    let (mut reporter, result) = outcome;
    // A blocking job still running (a tracker that accepts and never
    // answers) must not hold the exit: the session has ended.
    rt.shutdown_timeout(Duration::from_millis(500));
    let result = result.map_err(Failure::from).and_then(|p| {
        if interrupted.load(Ordering::SeqCst) && !p.complete {
            let pct = if p.total > 0 {
                p.done as f64 * 100.0 / p.total as f64
            } else {
                0.0
            };
            Err(Failure::new(
                Exit::Interrupted,
                format!(
                    "interrupted at {pct:.1}%; resume data is saved: the same command continues"
                ),
            ))
        } else {
            Ok(p)
        }
    });
    // The session's errors can quote a tracker's request URL (passkey,
    // peer id): cut to scheme, host and port, for stderr too.
    let result = result.map_err(|mut f| {
        f.message = crate::progress::scrub(&f.message);
        f
    });
    reporter.finish(result.as_ref().map(|_| ()));
    result.map(|_| ())
}

/// Why a download may never find a peer, said once at the start: a
/// torrent without trackers or web seeds (as `bittide create` makes
/// without `-t`) finds peers only through the DHT, or not at all without
/// it.
fn no_source_hint(options: &SessionOptions) -> Option<String> {
    let (trackers, web_seeds) = match &options.torrent {
        TorrentSource::File(bytes) => {
            let m = Metainfo::from_bytes(bytes).ok()?;
            (m.trackers().len(), m.url_list.len())
        }
        TorrentSource::Magnet(m) => (m.trackers.len(), m.web_seeds.len()),
    };
    let web_seeds = if options.web_seeds { web_seeds } else { 0 };
    if trackers > 0 || web_seeds > 0 || !options.peers.is_empty() {
        return None;
    }
    Some(match options.dht {
        Some(_) => "the torrent names no tracker: peers can come only from the DHT, which may take a minute (--peer HOST:PORT names one)".to_owned(),
        None => "the torrent names no tracker and the DHT is off: only a peer that connects to us, or one named with --peer HOST:PORT, can send anything".to_owned(),
    })
}
