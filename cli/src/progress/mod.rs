//! Progress of a download or seed, in one of three forms:
//!
//! - on a terminal, a status line redrawn in place (a bar, the phase's
//!   facts, never wider than 80 columns) with the lines worth keeping
//!   printed above it: resumed, metadata received, the summary at the end;
//! - piped (not a terminal), the same status as plain lines, one when
//!   10 s have passed *and* something changed, or progress moved by 5 %,
//!   and nothing at all while nothing changes (an idle seed is silent);
//! - with `--json`, events one a line (`json`; `docs/json-events.md`).
//!
//! Tracker failures are warnings: one line on stderr per tracker and
//! message (a retry failing the same way says nothing new), or a
//! `tracker_error` event with `--json`. A tracker is named by scheme, host
//! and port only: the rest of an announce URL can hold a passkey.
//!
//! The session calls [`Reporter::progress`] at least once a second and on
//! every event; everything here is throttled on the runtime's clock.

mod json;
mod status;
mod text;
mod trackers;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Mutex;

use bittide_core::torrent::{TorrentEvent, TorrentState};
use bittide_core::Instant;
use bittide_driver::client::{tracker_name, Progress};
use bittide_driver::runtime::Runtime;
use bittide_driver::units::human;
use bittide_tokio::runtime::TokioRuntime;
use serde_json::json;

use crate::exit::{Exit, Failure};
use crate::session::Mode;
use status::{progress_fields, ratio, state_name, Cadence, Meter, Phase, Snapshot, JSON_EVERY};
pub(crate) use trackers::scrub;
use trackers::TrackerErrors;

/// Where the reports go.
enum Out {
    /// A terminal: the status line (created at the first report, gone
    /// once the download is over), lines above it.
    Terminal(Option<indicatif::ProgressBar>),
    /// A pipe or a file: plain lines, throttled.
    Piped,
    /// `--json` events.
    Json,
}

/// What a second Ctrl-C needs to end `--json` output properly: the
/// process exits from the signal task, which cannot reach the
/// [`Reporter`].
struct Totals {
    started: std::time::Instant,
    done: u64,
    total: u64,
    downloaded: u64,
    uploaded: u64,
    complete: bool,
}

static TOTALS: Mutex<Option<Totals>> = Mutex::new(None);

/// Prints progress: a status line on a terminal, lines now and then on a
/// pipe, or JSON events.
pub(crate) struct Reporter {
    /// Its clock.
    rt: TokioRuntime,
    mode: Mode,
    out: Out,
    started: Instant,
    /// The time of the report being handled: every event it causes
    /// carries the same `elapsed`, so they never go back in time.
    now: Instant,
    /// The listen address, until the first report announces it.
    listen: Option<SocketAddr>,
    /// The last report seen.
    last: Option<Progress>,
    /// The last state announced (`state` events say each change once).
    state: Option<TorrentState>,
    /// A magnet's metadata was still on its way at the last report.
    fetching: bool,
    resumed_said: bool,
    finished_said: bool,
    /// Tracker failures already said.
    trackers: TrackerErrors,
    meter: Meter,
    /// When the status was last shown (drawn, printed or sent), and what
    /// it said.
    shown: Option<(Instant, Snapshot)>,
    /// When the last `checking` event went out.
    checking_sent: Option<(Instant, (u32, u32))>,
}

impl Reporter {
    pub(crate) fn new(rt: TokioRuntime, json: bool, mode: Mode) -> Reporter {
        let out = if json {
            Out::Json
        } else if std::io::stdout().is_terminal() {
            Out::Terminal(None)
        } else {
            Out::Piped
        };
        if let Ok(mut t) = TOTALS.lock() {
            *t = Some(Totals {
                started: std::time::Instant::now(),
                done: 0,
                total: 0,
                downloaded: 0,
                uploaded: 0,
                complete: false,
            });
        }
        let started = rt.now();
        Reporter {
            rt,
            mode,
            out,
            started,
            now: started,
            listen: None,
            last: None,
            state: None,
            fetching: false,
            resumed_said: false,
            finished_said: false,
            trackers: TrackerErrors::default(),
            meter: Meter::default(),
            shown: None,
            checking_sent: None,
        }
    }

    /// The session is listening on `listen`.
    pub(crate) fn started(&mut self, listen: SocketAddr) {
        self.listen = Some(listen);
    }

    /// A progress report, with the event that caused it if any.
    pub(crate) fn progress(&mut self, p: &Progress, e: Option<&TorrentEvent>) {
        let now = self.rt.now();
        self.now = now;
        self.meter.sample(now, p.downloaded, p.uploaded);
        if let Ok(mut t) = TOTALS.lock() {
            if let Some(t) = t.as_mut() {
                (t.done, t.total, t.downloaded, t.uploaded, t.complete) =
                    (p.done, p.total, p.downloaded, p.uploaded, p.complete);
            }
        }
        if let Some(listen) = self.listen.take() {
            self.announce(p, listen);
        }
        self.metadata(p);
        self.resumed(p);
        // Before the state: the summary comes before "seeding until
        // Ctrl-C". (A download complete at start sends no `Finished`.)
        if p.complete && p.checked.is_none() {
            self.finished(p);
        }
        self.state(p);
        match e {
            Some(TorrentEvent::Finished) => self.finished(p),
            Some(TorrentEvent::TrackerError { url, error }) => {
                self.tracker_error(url, &error.to_string())
            }
            Some(TorrentEvent::TrackerReply { url, .. }) => {
                self.trackers.answered(url);
            }
            Some(TorrentEvent::PeerBanned(addr)) => self.banned(*addr),
            Some(TorrentEvent::BadBlocks { piece, senders }) => self.bad_blocks(piece.0, senders),
            Some(TorrentEvent::WebSeedDropped { url, error }) => {
                self.web_seed_dropped(url, &error.to_string())
            }
            _ => {}
        }
        self.status(now, p);
        self.last = Some(p.clone());
    }

    /// The end: the status line cleared, then the summary if it was not
    /// said yet — or, with `--json`, the `error` event. `done` (with the
    /// exit code) is the last event, with or without an error.
    pub(crate) fn finish(&mut self, outcome: Result<(), &Failure>) {
        self.now = self.rt.now();
        self.clear();
        let p = self.last.clone();
        if let (Ok(()), Some(p)) = (outcome, &p) {
            match self.mode {
                Mode::Download { .. } if p.complete && !self.finished_said => self.finished(p),
                _ => {}
            }
            let seeded = matches!(
                self.mode,
                Mode::Seed | Mode::Download { keep_seeding: true }
            );
            if seeded && p.complete && !matches!(self.out, Out::Json) {
                let name = p.name.clone().unwrap_or_default();
                let secs = self.elapsed();
                self.say(&text::seeded(&name, p.uploaded, ratio(p), secs));
            }
        }
        if !matches!(self.out, Out::Json) {
            return;
        }
        let elapsed = self.elapsed();
        if let Err(f) = outcome {
            json::emit(
                "error",
                elapsed,
                json!({"message": scrub(&f.to_string()), "exit_code": f.exit.code()}),
            );
        }
        let code = outcome.err().map_or(0, |f| f.exit.code());
        let p = p.unwrap_or_else(empty_progress);
        json::emit(
            "done",
            elapsed,
            json!({"exit_code": code, "complete": p.complete, "done": p.done,
                   "total": p.total, "downloaded": p.downloaded, "uploaded": p.uploaded}),
        );
    }

    /// A second Ctrl-C: the process exits right after. `--json` readers
    /// still see why it ended and the `done` event.
    pub(crate) fn abandon(json: bool) {
        if !json {
            // The status line stays; the shell's prompt goes below it.
            if std::io::stdout().is_terminal() {
                let _ = writeln!(std::io::stdout().lock());
            }
            return;
        }
        let guard = TOTALS.lock().ok();
        let t = guard.as_ref().and_then(|g| g.as_ref());
        let elapsed = t.map_or(0.0, |t| t.started.elapsed().as_secs_f64());
        let code = Exit::Interrupted.code();
        json::emit(
            "error",
            elapsed,
            json!({"message": "interrupted twice: stopped at once", "exit_code": code}),
        );
        json::emit(
            "done",
            elapsed,
            json!({"exit_code": code, "complete": t.is_some_and(|t| t.complete),
                   "done": t.map_or(0, |t| t.done), "total": t.map_or(0, |t| t.total),
                   "downloaded": t.map_or(0, |t| t.downloaded),
                   "uploaded": t.map_or(0, |t| t.uploaded)}),
        );
    }

    fn elapsed(&self) -> f64 {
        (self.now - self.started).as_secs_f64()
    }

    /// A line to keep: above the status line on a terminal.
    fn say(&self, line: &str) {
        match &self.out {
            Out::Terminal(Some(bar)) => bar.println(line),
            Out::Terminal(None) | Out::Piped => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Out::Json => {}
        }
    }

    /// A warning on stderr (the status line steps aside for it).
    fn warn(&self, line: &str) {
        let write = || {
            let _ = writeln!(std::io::stderr().lock(), "bittide: warning: {line}");
        };
        match &self.out {
            Out::Terminal(Some(bar)) => bar.suspend(write),
            _ => write(),
        }
    }

    /// Takes the status line off the terminal for good.
    fn clear(&mut self) {
        if let Out::Terminal(bar) = &mut self.out {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
        }
    }

    /// The first report: what the session works on, and where it listens.
    fn announce(&mut self, p: &Progress, listen: SocketAddr) {
        let verb = match self.mode {
            Mode::Download { .. } => "download",
            Mode::Seed => "seed",
        };
        let name = p
            .name
            .clone()
            .or_else(|| p.info_hash.map(|h| h.to_string()))
            .unwrap_or_default();
        match self.out {
            Out::Json => {
                let keep_seeding = matches!(
                    self.mode,
                    Mode::Seed | Mode::Download { keep_seeding: true }
                );
                let known = !p.fetching_metadata;
                json::emit(
                    "started",
                    self.elapsed(),
                    json!({"mode": verb, "keep_seeding": keep_seeding, "name": p.name,
                           "info_hash": p.info_hash.map(|h| h.to_string()),
                           "listen": listen.to_string(),
                           "content": p.content.as_ref().map(|c| c.display().to_string()),
                           "size": known.then_some(p.size), "total": known.then_some(p.total),
                           "resumed": p.resumed}),
                );
            }
            _ => {
                // The path last: a long one wraps without hiding the rest.
                let line = match &p.content {
                    Some(path) if verb == "seed" => format!(
                        "seed: {name} ({}), listening on {listen}, from {}",
                        human(p.size),
                        path.display()
                    ),
                    Some(path) => format!(
                        "download: {name} ({}), listening on {listen} → {}",
                        human(p.total),
                        path.display()
                    ),
                    None => format!("download: {name} (magnet link), listening on {listen}"),
                };
                self.say(&line);
            }
        }
    }

    /// Says once when a magnet's metadata has arrived.
    fn metadata(&mut self, p: &Progress) {
        let was = std::mem::replace(&mut self.fetching, p.fetching_metadata);
        if !was || p.fetching_metadata {
            return;
        }
        let elapsed = self.elapsed();
        let name = p.name.clone().unwrap_or_default();
        match self.out {
            Out::Json => json::emit(
                "metadata",
                elapsed,
                json!({"name": p.name, "info_hash": p.info_hash.map(|h| h.to_string()),
                       "size": p.size, "total": p.total,
                       "content": p.content.as_ref().map(|c| c.display().to_string()),
                       "resumed": p.resumed}),
            ),
            _ => self.say(&text::metadata(&name, p.total, elapsed)),
        }
    }

    /// Says once that resume data vouched for part of the content (with
    /// `--json`, `started` or `metadata` carry it).
    fn resumed(&mut self, p: &Progress) {
        if self.resumed_said || p.fetching_metadata {
            return;
        }
        self.resumed_said = true;
        match p.resumed {
            Some(r) if r > 0 && !matches!(self.out, Out::Json) => {
                self.say(&text::resumed(r, p.size));
            }
            _ => {}
        }
    }

    /// A new torrent state: a `state` event, once per change.
    fn state(&mut self, p: &Progress) {
        let state = if p.fetching_metadata {
            TorrentState::FetchingMetadata
        } else {
            p.state
        };
        if self.state.replace(state) == Some(state) {
            return;
        }
        match self.out {
            Out::Json => json::emit("state", self.elapsed(), json!({"state": state_name(state)})),
            _ => {
                let seeds = matches!(
                    self.mode,
                    Mode::Seed | Mode::Download { keep_seeding: true }
                );
                if state == TorrentState::Seeding && seeds {
                    self.say("seeding until Ctrl-C");
                }
            }
        }
    }

    /// A download completed: the one-line summary (or `finished` event).
    fn finished(&mut self, p: &Progress) {
        if self.finished_said || !matches!(self.mode, Mode::Download { .. }) {
            return;
        }
        self.finished_said = true;
        let secs = self.elapsed();
        let name = p.name.clone().unwrap_or_default();
        let path = p
            .content
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_default();
        if let Out::Json = self.out {
            let rate = if secs > 0.0 {
                (p.downloaded as f64 / secs) as u64
            } else {
                0
            };
            json::emit(
                "finished",
                secs,
                json!({"name": p.name, "size": p.total, "downloaded": p.downloaded,
                       "seconds": (secs * 1000.0).round() / 1000.0, "rate": rate,
                       "content": path}),
            );
            return;
        }
        if self.mode
            == (Mode::Download {
                keep_seeding: false,
            })
        {
            // The session ends now: no status line after the summary.
            self.clear();
        }
        self.say(&text::finished(&name, p.total, p.downloaded, secs, &path));
    }

    /// A tracker failed: said once per tracker and message.
    fn tracker_error(&mut self, url: &str, error: &str) {
        let Some((name, message)) = self.trackers.failed(url, error) else {
            return;
        };
        match self.out {
            Out::Json => json::emit(
                "tracker_error",
                self.elapsed(),
                json!({"tracker": name, "message": message}),
            ),
            _ => self.warn(&format!("{name}: {message}")),
        }
    }

    /// A peer sent data that failed the hash check and was banned.
    fn banned(&mut self, addr: SocketAddr) {
        match self.out {
            Out::Json => json::emit("banned", self.elapsed(), json!({"peer": addr.to_string()})),
            _ => self.say(&format!(
                "banned {addr}: it sent data that failed the hash check"
            )),
        }
    }

    /// A failed v2 piece's leaves named its bad blocks' senders (BEP 52).
    /// Only `--json` says so: the text output's `banned` lines name them.
    fn bad_blocks(&mut self, piece: u32, senders: &[SocketAddr]) {
        if matches!(self.out, Out::Json) {
            let peers: Vec<String> = senders.iter().map(ToString::to_string).collect();
            json::emit(
                "bad_blocks",
                self.elapsed(),
                json!({"piece": piece, "peers": peers}),
            );
        }
    }

    /// A web seed was given up (BEP 19). Like trackers, it is named by
    /// scheme, host and port only: a URL's path and query can hold
    /// credentials.
    fn web_seed_dropped(&mut self, url: &str, why: &str) {
        let name = tracker_name(url);
        match self.out {
            Out::Json => json::emit(
                "web_seed_dropped",
                self.elapsed(),
                json!({"web_seed": name, "message": scrub(why)}),
            ),
            _ => self.say(&format!("web seed {name} dropped: {why}")),
        }
    }

    /// The status: redrawn on a terminal, a line on a pipe when it is
    /// worth one, a `progress` (or `checking`) event with `--json`.
    fn status(&mut self, now: Instant, p: &Progress) {
        let (down, up) = self.meter.rates(now, p.downloaded, p.uploaded);
        let phase = Phase::of(p);
        let left = p.total.saturating_sub(p.done);
        let s = Snapshot {
            phase,
            done: p.done,
            total: p.total,
            checked: p.checked,
            peers: p.peers,
            web_seeds: p.web_seeds,
            downloaded: p.downloaded,
            uploaded: p.uploaded,
            down_rate: down,
            up_rate: up,
            eta: (phase == Phase::Downloading && down > 0.0)
                .then(|| (left as f64 / down).ceil() as u64),
            ratio: ratio(p),
        };
        let over = self.finished_said
            && self.mode
                == (Mode::Download {
                    keep_seeding: false,
                });
        let last = self.shown.as_ref().map(|(t, o)| (now - *t, o));
        let show = match &mut self.out {
            Out::Terminal(_) if over => false,
            Out::Terminal(bar) => {
                let bar = bar.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::new(0);
                    // `wide_msg` cuts the line at a narrower terminal's
                    // edge instead of wrapping it.
                    if let Ok(style) = indicatif::ProgressStyle::with_template("{wide_msg}") {
                        bar.set_style(style);
                    }
                    bar
                });
                let due = Cadence::Redraw.due(last, &s);
                if due {
                    bar.set_message(text::status(&s, true));
                }
                due
            }
            Out::Piped => {
                let due = !over && Cadence::Line.due(last, &s);
                if due {
                    let line = text::status(&s, false);
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                due
            }
            Out::Json => {
                let due = Cadence::Event.due(last, &s);
                if due {
                    json::emit("progress", self.elapsed(), progress_fields(&s));
                }
                due
            }
        };
        if show {
            self.shown = Some((now, s));
        }
        self.checking(now, p);
    }

    /// With `--json`, the start-up check's progress: at most once a
    /// second, and once when it ends.
    fn checking(&mut self, now: Instant, p: &Progress) {
        if !matches!(self.out, Out::Json) {
            return;
        }
        let sent = self.checking_sent;
        let current = match (p.checked, sent) {
            (Some(c), Some((t, last))) if c != last && now - t >= JSON_EVERY => c,
            (Some(c), None) => c,
            // The check ended: the last word is "all checked".
            (None, Some((_, (c, n)))) if c < n => (n, n),
            _ => return,
        };
        self.checking_sent = Some((now, current));
        json::emit(
            "checking",
            self.elapsed(),
            json!({"checked": current.0, "pieces": current.1}),
        );
    }
}

/// A report for a session that ended before its first one.
pub(super) fn empty_progress() -> Progress {
    Progress::new(TorrentState::Stopped)
}
