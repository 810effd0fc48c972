//! Progress of a download or seed on stdout: a bar on a terminal, a line
//! a second otherwise, or JSON events (one object a line) for scripts.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use bittide_core::torrent::TorrentEvent;
use bittide_core::Instant;
use bittide_driver::client::Progress;
use bittide_driver::runtime::Runtime;
use bittide_tokio::runtime::TokioRuntime;
use serde_json::json;

use crate::exit::Failure;
use crate::session::Mode;

/// A byte count or rate in binary units, always with one decimal
/// (`0.0 B`, `1.5 MiB`): steadier on a line redrawn every second than
/// `units::human`'s exact byte counts.
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
pub(crate) struct Reporter {
    /// Its clock.
    rt: TokioRuntime,
    json: bool,
    bar: Option<indicatif::ProgressBar>,
    last_print: Instant,
    last_bytes: (u64, u64),
    started: Instant,
    /// A magnet's metadata was still on its way at the last report.
    fetching: bool,
    mode: Mode,
    /// The last progress seen.
    last: Option<Progress>,
    /// The listen address, until the first report announces it.
    listen: Option<std::net::SocketAddr>,
}

impl Reporter {
    pub(crate) fn new(rt: TokioRuntime, json: bool, mode: Mode) -> Reporter {
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
            mode,
            last: None,
            listen: None,
        }
    }

    /// The session is listening on `listen`.
    pub(crate) fn started(&mut self, listen: std::net::SocketAddr) {
        self.listen = Some(listen);
    }

    /// The first report: what the session works on, and where it listens.
    fn announce(&mut self, listen: std::net::SocketAddr) {
        if self.json {
            let p = self.last.as_ref();
            let added = json!({"event": "added", "name": p.and_then(|p| p.name.clone()),
                "info_hash": p.and_then(|p| p.info_hash).map(|h| h.to_string()),
                "listen": listen.to_string()});
            self.line(&added.to_string());
        }
    }

    /// A progress report, with the event that caused it if any.
    pub(crate) fn progress(&mut self, p: &Progress, e: Option<&TorrentEvent>) {
        self.last = Some(p.clone());
        if let Some(listen) = self.listen.take() {
            self.announce(listen);
        }
        match e {
            Some(e) => self.event(p, e),
            None => self.tick(p),
        }
    }

    /// The end: the bar cleared, then (with `--json`) the error if any and
    /// a `done` event.
    pub(crate) fn finish(&mut self, outcome: Result<(), &Failure>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let _ = self.mode;
        if self.json {
            if let Err(f) = outcome {
                self.line(&json!({"event": "error", "message": f.to_string()}).to_string());
            }
            let code = outcome.err().map_or(0, |f| f.exit.code());
            let p = self.last.clone();
            self.line(
                &json!({"event": "done", "exit_code": code,
                        "done": p.as_ref().map(|p| p.done), "total": p.as_ref().map(|p| p.total),
                        "downloaded": p.as_ref().map(|p| p.downloaded),
                        "uploaded": p.as_ref().map(|p| p.uploaded)})
                .to_string(),
            );
        }
    }

    /// A second Ctrl-C: the process exits now; `--json` readers still see
    /// how it ended.
    pub(crate) fn abandon(json: bool) {
        if json {
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}",
                json!({"event": "done", "exit_code": crate::exit::Exit::Interrupted.code()})
            );
        }
    }

    /// One line on stdout.
    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// An event worth a line: finished, a state change, a tracker error, a
    /// ban.
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

    /// Progress, at most once a second.
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
