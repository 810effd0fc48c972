//! `bittide download` and `bittide seed` on tokio: the shared session in
//! `bittide_driver::client`, plus progress output and Ctrl-C.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bittide_core::Instant;

use bittide_core::metainfo::Magnet;
use bittide_core::torrent::{TorrentEvent, TorrentState};
use bittide_driver::client::{self, Progress, SessionDht, SessionOptions, TorrentSource};
use bittide_driver::driver::Command;
use bittide_driver::runtime::Runtime;
use bittide_tokio::runtime::TokioRuntime;
use serde_json::json;

pub(crate) use bittide_driver::client::SessionError;

/// `bittide download` options.
pub(crate) struct DownloadArgs {
    pub(crate) torrent: PathBuf,
    pub(crate) save_torrent: Option<PathBuf>,
    pub(crate) output: PathBuf,
    pub(crate) seed: bool,
    pub(crate) listen: SocketAddr,
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) json: bool,
    pub(crate) recheck: bool,
    pub(crate) max_peers: Option<usize>,
    pub(crate) max_peers_per_ip: Option<usize>,
    pub(crate) sequential: bool,
    pub(crate) only: Option<Vec<usize>>,
    pub(crate) upload_rate: u64,
    pub(crate) download_rate: u64,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) dht: Option<SessionDht>,
}

/// `bittide seed` options.
pub(crate) struct SeedArgs {
    pub(crate) torrent: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) json: bool,
    pub(crate) recheck: bool,
    pub(crate) upload_rate: u64,
    pub(crate) max_peers_per_ip: Option<usize>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) dht: Option<SessionDht>,
}

/// A magnet link (`magnet:…`) or a .torrent file's bytes.
fn torrent_source(arg: &std::path::Path) -> Result<TorrentSource, SessionError> {
    match arg.to_str().filter(|s| s.starts_with("magnet:")) {
        Some(uri) => Magnet::parse(uri)
            .map(TorrentSource::Magnet)
            .map_err(|e| SessionError {
                code: client::exit::BAD_TORRENT,
                message: format!("bad magnet link: {e}"),
            }),
        None => read_torrent(arg).map(TorrentSource::File),
    }
}

fn read_torrent(path: &std::path::Path) -> Result<Vec<u8>, SessionError> {
    std::fs::read(path).map_err(|e| SessionError {
        code: client::exit::IO,
        message: format!("{}: {e}", path.display()),
    })
}

fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Prints progress: a bar on a terminal, a line a second otherwise, or JSON.
struct Reporter {
    /// Its clock.
    rt: TokioRuntime,
    json: bool,
    bar: Option<indicatif::ProgressBar>,
    last_print: Instant,
    last_bytes: (u64, u64),
    started: Instant,
    /// A magnet's metadata was still on its way at the last report.
    fetching: bool,
}

impl Reporter {
    fn new(rt: TokioRuntime, json: bool) -> Reporter {
        let bar = (!json && std::io::stdout().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {percent:>3}% {bytes}/{total_bytes} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let now = rt.now();
        Reporter {
            rt,
            json,
            bar,
            last_print: now,
            last_bytes: (0, 0),
            started: now,
            fetching: false,
        }
    }

    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    fn event(&mut self, p: &Progress, e: &TorrentEvent) {
        self.metadata(p);
        let text = match e {
            TorrentEvent::Finished => Some((
                "finished",
                format!(
                    "finished in {:.1} s",
                    (self.rt.now() - self.started).as_secs_f64()
                ),
            )),
            TorrentEvent::StateChanged(s) => Some(("state", format!("{s:?}").to_lowercase())),
            TorrentEvent::TrackerError { url, error } => Some(("error", format!("{url}: {error}"))),
            TorrentEvent::PeerBanned(a) => Some(("banned", a.to_string())),
            _ => None,
        };
        if let Some((kind, msg)) = text {
            if self.json {
                self.line(
                    &json!({"event": kind, "message": msg, "done": p.done, "total": p.total})
                        .to_string(),
                );
            } else if let Some(bar) = &self.bar {
                bar.println(msg);
            } else {
                self.line(&msg);
            }
        }
    }

    /// Says once when a magnet's metadata has arrived.
    fn metadata(&mut self, p: &Progress) {
        if p.fetching_metadata {
            self.fetching = true;
            return;
        }
        if !std::mem::take(&mut self.fetching) {
            return;
        }
        let msg = format!(
            "metadata received after {:.1} s: {} to download",
            (self.rt.now() - self.started).as_secs_f64(),
            human(p.total as f64)
        );
        if self.json {
            self.line(&json!({"event": "metadata", "message": msg, "total": p.total}).to_string());
        } else if let Some(bar) = &self.bar {
            bar.println(msg);
        } else {
            self.line(&msg);
        }
    }

    fn tick(&mut self, p: &Progress) {
        self.metadata(p);
        let now = self.rt.now();
        let elapsed = now - self.last_print;
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let down = (p.downloaded - self.last_bytes.0.min(p.downloaded)) as f64 / secs;
        let up = (p.uploaded - self.last_bytes.1.min(p.uploaded)) as f64 / secs;
        self.last_bytes = (p.downloaded, p.uploaded);
        self.last_print = now;
        let left = p.total.saturating_sub(p.done) as f64;
        let eta = if down > 0.0 {
            format!("{:.0} s", left / down)
        } else {
            "?".into()
        };
        if p.fetching_metadata {
            let msg = format!("fetching metadata from {} peers", p.peers);
            if self.json {
                self.line(
                    &json!({"event": "progress", "metadata": false, "peers": p.peers}).to_string(),
                );
            } else if let Some(bar) = &self.bar {
                bar.set_message(msg);
            } else {
                self.line(&msg);
            }
            return;
        }
        if self.json {
            self.line(
                &json!({"event": "progress", "done": p.done, "total": p.total, "down_rate": down as u64,
                        "up_rate": up as u64, "peers": p.peers, "downloaded": p.downloaded,
                        "uploaded": p.uploaded})
                .to_string(),
            );
        } else if let Some(bar) = &self.bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
            bar.set_message(format!(
                "↓ {}/s ↑ {}/s {} peers eta {eta}",
                human(down),
                human(up),
                p.peers
            ));
        } else {
            let pct = if p.total > 0 {
                p.done as f64 * 100.0 / p.total as f64
            } else {
                0.0
            };
            self.line(&format!(
                "{pct:5.1}%  down {}/s  up {}/s  {} peers  eta {eta}",
                human(down),
                human(up),
                p.peers
            ));
        }
    }
}

fn run(options: SessionOptions, json: bool) -> Result<(), SessionError> {
    // One thread runs the loop and the socket tasks (they only move bytes);
    // hashing and disk work go to the blocking pool. On few cores this
    // avoids workers stealing each other's tasks and the wake-ups that
    // come with it. A small pool keeps threads (and allocator arenas) few.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .map_err(|e| SessionError {
            code: client::exit::IO,
            message: format!("runtime: {e}"),
        })?;
    // What `--json`'s first event says: the torrent as far as known.
    let (name, info_hash) = match &options.torrent {
        TorrentSource::File(bytes) => bittide_core::metainfo::Metainfo::from_bytes(bytes)
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
                            std::process::exit(130);
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
        if let Some(bar) = &reporter.bar {
            bar.finish_and_clear();
        }
        let progress = result?;
        if json {
            reporter.line(
                &json!({"event": "done", "done": progress.done, "total": progress.total,
                        "downloaded": progress.downloaded, "uploaded": progress.uploaded})
                .to_string(),
            );
        }
        if progress.state == TorrentState::Checking {
            return Err(SessionError {
                code: client::exit::IO,
                message: "stopped while checking".into(),
            });
        }
        Ok(())
    })
}

/// `bittide download`.
pub(crate) fn download(args: DownloadArgs) -> Result<(), SessionError> {
    let options = SessionOptions {
        torrent: torrent_source(&args.torrent)?,
        save_torrent: args.save_torrent,
        folder: args.output,
        keep_seeding: args.seed,
        listen: args.listen,
        peers: args.peers,
        peer_timeout: args.timeout,
        recheck: args.recheck,
        state_dir: args.state_dir,
        max_peers: args.max_peers,
        max_peers_per_ip: args.max_peers_per_ip,
        sequential: args.sequential,
        only: args.only,
        upload_rate: args.upload_rate,
        download_rate: args.download_rate,
        dht: args.dht,
    };
    run(options, args.json)
}

/// `bittide seed`.
pub(crate) fn seed(args: SeedArgs) -> Result<(), SessionError> {
    let options = SessionOptions {
        torrent: TorrentSource::File(read_torrent(&args.torrent)?),
        save_torrent: None,
        folder: args.dir,
        keep_seeding: true,
        listen: args.listen,
        peers: args.peers,
        peer_timeout: None,
        recheck: args.recheck,
        state_dir: args.state_dir,
        max_peers: None,
        max_peers_per_ip: args.max_peers_per_ip,
        sequential: false,
        only: None,
        upload_rate: args.upload_rate,
        download_rate: 0,
        dht: args.dht,
    };
    run(options, args.json)
}
