//! What one report says once the reports before it are taken into
//! account: the phase the display names, the rates over the last few
//! seconds, the ETA and the share ratio.

use std::collections::VecDeque;
use std::time::Duration;

use bittide_core::torrent::TorrentState;
use bittide_core::Instant;
use bittide_driver::client::Progress;
use serde_json::json;

/// How long rates are averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Least time between two redraws of the terminal's status line.
const REDRAW: Duration = Duration::from_millis(250);
/// Least time between two `progress` (or `checking`) JSON events.
pub(super) const JSON_EVERY: Duration = Duration::from_secs(1);
/// Piped: a line when this much time passed and something changed…
const LINE_EVERY: Duration = Duration::from_secs(10);
/// …or when progress moved by this fraction.
const LINE_STEP: f64 = 0.05;

/// How often a status is shown again, by where it goes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Cadence {
    /// A terminal's status line: redrawn four times a second.
    Redraw,
    /// A pipe: a line per phase, per 5 %, or after 10 s if something
    /// changed; never while nothing changes, never for "stopping" (the
    /// summary or the error follows at once).
    Line,
    /// `--json` `progress` events: per phase, else at most once a second
    /// and only when something changed.
    Event,
}

impl Cadence {
    /// Whether `s` is to be shown, `last` being the status shown last and
    /// how long ago.
    pub(super) fn due(self, last: Option<(Duration, &Snapshot)>, s: &Snapshot) -> bool {
        let Some((since, last)) = last else {
            return !matches!(self, Cadence::Line) || s.phase != Phase::Stopped;
        };
        let new_phase = last.phase != s.phase;
        let changed = last.key() != s.key();
        match self {
            Cadence::Redraw => new_phase || since >= REDRAW,
            Cadence::Line => {
                s.phase != Phase::Stopped
                    && (new_phase
                        // (Less a rounding error: 0.15 - 0.10 < 0.05.)
                        || (s.fraction() - last.fraction()).abs() >= LINE_STEP - 1e-9
                        || (changed && since >= LINE_EVERY))
            }
            Cadence::Event => new_phase || (changed && since >= JSON_EVERY),
        }
    }
}

/// What the torrent is doing, as the display names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// A magnet link's metadata is on its way (BEP 9).
    Metadata,
    /// Files known, the check not begun yet.
    Starting,
    /// The data on disk is being verified.
    Checking,
    Downloading,
    Seeding,
    /// Paused or queued.
    Waiting,
    Stopped,
}

impl Phase {
    pub(super) fn of(p: &Progress) -> Phase {
        if p.fetching_metadata {
            return Phase::Metadata;
        }
        if p.checked.is_some() {
            return Phase::Checking;
        }
        match p.state {
            TorrentState::FetchingMetadata => Phase::Metadata,
            TorrentState::AwaitingStart => Phase::Starting,
            TorrentState::Checking => Phase::Checking,
            TorrentState::Downloading if p.complete => Phase::Seeding,
            TorrentState::Downloading => Phase::Downloading,
            TorrentState::Seeding => Phase::Seeding,
            TorrentState::Paused | TorrentState::Queued => Phase::Waiting,
            TorrentState::Stopped => Phase::Stopped,
        }
    }

    /// Its name in JSON (`progress.phase`).
    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::Metadata => "metadata",
            Phase::Starting => "starting",
            Phase::Checking => "checking",
            Phase::Downloading => "downloading",
            Phase::Seeding => "seeding",
            Phase::Waiting => "waiting",
            Phase::Stopped => "stopped",
        }
    }
}

/// A torrent state's name in JSON (`state.state`).
pub(super) fn state_name(s: TorrentState) -> &'static str {
    match s {
        TorrentState::FetchingMetadata => "fetching_metadata",
        TorrentState::AwaitingStart => "awaiting_start",
        TorrentState::Checking => "checking",
        TorrentState::Downloading => "downloading",
        TorrentState::Seeding => "seeding",
        TorrentState::Paused => "paused",
        TorrentState::Queued => "queued",
        TorrentState::Stopped => "stopped",
    }
}

/// What tells two snapshots apart: phase, bytes done, downloaded and
/// uploaded, peers and web seeds, pieces checked.
type SnapshotKey = (Phase, u64, u64, u64, (usize, usize), Option<(u32, u32)>);

/// One report with what is derived from the ones before: the numbers the
/// status line and the `progress` event show.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Snapshot {
    pub(super) phase: Phase,
    pub(super) done: u64,
    pub(super) total: u64,
    pub(super) checked: Option<(u32, u32)>,
    pub(super) peers: usize,
    /// Web seeds in use (BEP 19).
    pub(super) web_seeds: usize,
    pub(super) downloaded: u64,
    pub(super) uploaded: u64,
    /// Bytes per second over the last few seconds.
    pub(super) down_rate: f64,
    pub(super) up_rate: f64,
    /// Seconds to completion at the current rate (`None`: no rate).
    pub(super) eta: Option<u64>,
    pub(super) ratio: Option<f64>,
}

impl Snapshot {
    /// What a pipe or a JSON reader compares to tell "something changed":
    /// everything but the rates, which decay while nothing happens.
    pub(super) fn key(&self) -> SnapshotKey {
        (
            self.phase,
            self.done,
            self.downloaded,
            self.uploaded,
            (self.peers, self.web_seeds),
            self.checked,
        )
    }

    /// How far along the phase is, 0 to 1 (checking: pieces checked).
    pub(super) fn fraction(&self) -> f64 {
        match (self.phase, self.checked) {
            (Phase::Checking, Some((c, n))) if n > 0 => f64::from(c) / f64::from(n),
            _ if self.total > 0 => self.done as f64 / self.total as f64,
            _ => 0.0,
        }
    }
}

/// Uploaded over downloaded; for what was not downloaded in this run (a
/// seed, a resumed download) uploaded over the wanted bytes, as
/// Transmission does. `None` while both are zero.
pub(super) fn ratio(p: &Progress) -> Option<f64> {
    if p.downloaded > 0 {
        Some(p.uploaded as f64 / p.downloaded as f64)
    } else if p.total > 0 {
        Some(p.uploaded as f64 / p.total as f64)
    } else {
        None
    }
}

/// Transfer rates over a sliding window of byte counters.
#[derive(Debug, Default)]
pub(super) struct Meter {
    /// (when, downloaded, uploaded), oldest first.
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Meter {
    pub(super) fn sample(&mut self, now: Instant, downloaded: u64, uploaded: u64) {
        if let Some(&(last, ..)) = self.samples.back() {
            if now - last < Duration::from_millis(200) {
                return;
            }
        }
        self.samples.push_back((now, downloaded, uploaded));
        // Keep one sample older than the window so the window is whole.
        while self.samples.len() > 2 && now - self.samples[1].0 >= RATE_WINDOW {
            self.samples.pop_front();
        }
    }

    /// (down, up) in bytes per second; zero until there is half a second
    /// of history.
    pub(super) fn rates(&self, now: Instant, downloaded: u64, uploaded: u64) -> (f64, f64) {
        let Some(&(then, d, u)) = self.samples.front() else {
            return (0.0, 0.0);
        };
        let secs = (now - then).as_secs_f64();
        if secs < 0.5 {
            return (0.0, 0.0);
        }
        (
            downloaded.saturating_sub(d) as f64 / secs,
            uploaded.saturating_sub(u) as f64 / secs,
        )
    }
}

/// The fields of a `progress` event.
pub(super) fn progress_fields(s: &Snapshot) -> serde_json::Value {
    let percent = (s.fraction() * 1000.0).round() / 10.0;
    json!({"phase": s.phase.name(), "done": s.done, "total": s.total, "percent": percent,
           "down_rate": s.down_rate as u64, "up_rate": s.up_rate as u64, "eta": s.eta,
           "peers": s.peers, "web_seeds": s.web_seeds, "downloaded": s.downloaded, "uploaded": s.uploaded,
           "ratio": s.ratio.map(|r| (r * 1000.0).round() / 1000.0)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::empty_progress;

    fn seeding(uploaded: u64, peers: usize) -> Snapshot {
        Snapshot {
            phase: Phase::Seeding,
            done: 100,
            total: 100,
            checked: None,
            peers,
            web_seeds: 0,
            downloaded: 0,
            uploaded,
            down_rate: 0.0,
            up_rate: 0.0,
            eta: None,
            ratio: None,
        }
    }

    #[test]
    fn a_pipe_hears_nothing_while_nothing_changes() {
        let s = seeding(0, 0);
        let secs = Duration::from_secs;
        assert!(Cadence::Line.due(None, &s));
        for after in [1, 10, 60, 3600] {
            assert!(!Cadence::Line.due(Some((secs(after), &s)), &s), "{after}");
            assert!(!Cadence::Event.due(Some((secs(after), &s)), &s), "{after}");
        }
        // Something changed: a line after 10 s, an event after 1 s.
        let busier = seeding(5, 1);
        assert!(!Cadence::Line.due(Some((secs(9), &s)), &busier));
        assert!(Cadence::Line.due(Some((secs(10), &s)), &busier));
        assert!(!Cadence::Event.due(Some((Duration::from_millis(900), &s)), &busier));
        assert!(Cadence::Event.due(Some((secs(1), &s)), &busier));
        // The rates decaying is not a change.
        let slower = Snapshot {
            up_rate: 0.0,
            ..seeding(0, 0)
        };
        let faster = Snapshot {
            up_rate: 1000.0,
            ..seeding(0, 0)
        };
        assert!(!Cadence::Line.due(Some((secs(60), &faster)), &slower));
    }

    #[test]
    fn a_pipe_hears_every_5_percent_and_every_phase() {
        let at = |done| Snapshot {
            phase: Phase::Downloading,
            done,
            ..seeding(0, 1)
        };
        let short = Duration::from_millis(100);
        assert!(!Cadence::Line.due(Some((short, &at(10))), &at(14)));
        assert!(Cadence::Line.due(Some((short, &at(10))), &at(15)));
        assert!(Cadence::Line.due(Some((short, &at(100))), &seeding(0, 1)));
        let stopped = Snapshot {
            phase: Phase::Stopped,
            ..seeding(0, 1)
        };
        assert!(!Cadence::Line.due(Some((short, &seeding(0, 1))), &stopped));
        assert!(Cadence::Event.due(Some((short, &seeding(0, 1))), &stopped));
    }

    #[test]
    fn rates_need_history_and_average_the_window() {
        let mut m = Meter::default();
        let t0 = Instant::ZERO;
        m.sample(t0, 0, 0);
        assert_eq!(
            m.rates(t0 + Duration::from_millis(100), 1000, 0),
            (0.0, 0.0)
        );
        for s in 1..=20u64 {
            m.sample(t0 + Duration::from_secs(s), s * 1000, s * 10);
        }
        let (down, up) = m.rates(t0 + Duration::from_secs(20), 20_000, 200);
        assert!((down - 1000.0).abs() < 1.0, "{down}");
        assert!((up - 10.0).abs() < 0.1, "{up}");
        assert!(m.samples.len() <= 7, "{}", m.samples.len());
    }

    #[test]
    fn ratio_is_up_over_down_else_over_the_content() {
        let mut p = empty_progress();
        assert_eq!(ratio(&p), None);
        p.total = 100;
        p.uploaded = 50;
        assert_eq!(ratio(&p), Some(0.5));
        p.downloaded = 25;
        assert_eq!(ratio(&p), Some(2.0));
    }
}
