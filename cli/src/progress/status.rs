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

/// One report with what is derived from the ones before: the numbers the
/// status line and the `progress` event show.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Snapshot {
    pub(super) phase: Phase,
    pub(super) done: u64,
    pub(super) total: u64,
    pub(super) checked: Option<(u32, u32)>,
    pub(super) peers: usize,
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
    pub(super) fn key(&self) -> (Phase, u64, u64, u64, usize, Option<(u32, u32)>) {
        (
            self.phase,
            self.done,
            self.downloaded,
            self.uploaded,
            self.peers,
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
           "peers": s.peers, "downloaded": s.downloaded, "uploaded": s.uploaded,
           "ratio": s.ratio.map(|r| (r * 1000.0).round() / 1000.0)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::empty_progress;

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
