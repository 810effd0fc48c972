//! What `download` and `seed` share: their DHT and state-folder options,
//! and running the one-torrent session of `bittide_driver::client` on
//! tokio with progress output and Ctrl-C.

use std::io::Write;
use std::path::{Path, PathBuf};

use bittide_core::metainfo::{Magnet, Metainfo};
use bittide_core::torrent::TorrentState;
use bittide_driver::client::{self, SessionOptions, TorrentSource};
use bittide_driver::driver::Command;
use bittide_tokio::runtime::TokioRuntime;
use serde_json::json;

use crate::exit::{Exit, Failure};
use crate::progress::Reporter;

/// The DHT options of `download` and `seed`.
#[derive(clap::Args, Debug)]
pub(crate) struct SessionDhtArgs {
    /// Find peers through trackers and --peer only, not the DHT.
    #[arg(long)]
    no_dht: bool,
    /// A DHT node to join through, host:port (repeatable); without any,
    /// the nodes of the DHT state file, else the public routers.
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
fn default_state_dir() -> Option<PathBuf> {
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

/// Runs one torrent until it completes (or, seeding, until Ctrl-C), with
/// progress on stdout: a bar on a terminal, a line a second otherwise, or
/// JSON events with `json`.
pub(crate) fn run(options: SessionOptions, json: bool) -> Result<(), Failure> {
    // One thread runs the loop and the socket tasks (they only move bytes);
    // hashing and disk work go to the blocking pool. On few cores this
    // avoids workers stealing each other's tasks and the wake-ups that
    // come with it. A small pool keeps threads (and allocator arenas) few.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .map_err(|e| Failure::new(Exit::Io, format!("runtime: {e}")))?;
    // What `--json`'s first event says: the torrent as far as known.
    let (name, info_hash) = match &options.torrent {
        TorrentSource::File(bytes) => Metainfo::from_bytes(bytes)
            .map(|m| {
                (
                    Some(String::from_utf8_lossy(m.info.name()).into_owned()),
                    Some(m.info_hash),
                )
            })
            .unwrap_or((None, None)),
        TorrentSource::Magnet(m) => (m.display_name.clone(), m.info_hash),
    };
    rt.block_on(async move {
        let runtime = TokioRuntime::current();
        let mut reporter = Reporter::new(runtime.clone(), json);
        let result = client::run(
            runtime,
            options,
            |handle, local| {
                // First Ctrl-C: stop gracefully (trackers hear `stopped`,
                // writes are flushed); second: exit at once.
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        handle.send(Command::Shutdown);
                        if tokio::signal::ctrl_c().await.is_ok() {
                            std::process::exit(Exit::Interrupted.code().into());
                        }
                    }
                });
                if json {
                    let added = json!({"event": "added", "name": name,
                        "info_hash": info_hash.map(|h| h.to_string()), "listen": local.to_string()});
                    let _ = writeln!(std::io::stdout().lock(), "{added}");
                }
            },
            |p, e| match e {
                Some(e) => reporter.event(p, e),
                None => reporter.tick(p),
            },
        )
        .await;
        reporter.finish();
        let progress = result?;
        if json {
            reporter.line(
                &json!({"event": "done", "done": progress.done, "total": progress.total,
                        "downloaded": progress.downloaded, "uploaded": progress.uploaded})
                .to_string(),
            );
        }
        if progress.state == TorrentState::Checking {
            return Err(Failure::new(Exit::Io, "stopped while checking"));
        }
        Ok(())
    })
}
