//! Multitracker tiers and the announce life cycle (BEP 12).
//!
//! BEP 12: tiers are tried in order; trackers within a tier are shuffled
//! once, tried in turn, and "if a connection with a tracker is successful,
//! it will be moved to the front of the tier". On top of that, the
//! life cycle every client follows: `started` first, `completed` once when
//! the download finishes, `stopped` when leaving, regular announces at the
//! tracker's `interval` (never sooner than its `min interval`), and an
//! exponential back-off while every tracker fails.
//!
//! The announcer only decides *when* and *to which URL*; the engine sends
//! the request (HTTP or UDP by scheme) and reports back.

use std::time::Duration;

use super::{AnnounceEvent, AnnounceResponse};
use crate::rng::Rng;
use crate::time::Instant;

/// Shortest interval honoured, whatever a tracker says.
const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// Interval used until a tracker tells us one.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);
/// First back-off after every tracker failed; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// An announce the engine should send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceDue {
    /// The tracker URL.
    pub url: String,
    /// The event to send.
    pub event: AnnounceEvent,
}

/// One torrent's announcer; see the module documentation.
#[derive(Clone, Debug)]
pub struct Announcer {
    tiers: Vec<Vec<String>>,
    tier: usize,
    index: usize,
    in_flight: bool,
    /// The event of the announce in flight.
    sent: AnnounceEvent,
    next: Instant,
    interval: Duration,
    min_interval: Duration,
    failures: u32,
    /// Trackers tried since the last success in this round.
    tried: usize,
    event: AnnounceEvent,
    completed_sent: bool,
    /// The download finished while `started` was still unsent.
    completed_pending: bool,
    stopping: bool,
    finished: bool,
    last_announce: Option<Instant>,
}

impl Announcer {
    /// An announcer over `tiers` (empty tiers and an empty list are fine:
    /// it then never announces), shuffled within each tier by `rng`.
    pub fn new(now: Instant, tiers: Vec<Vec<String>>, rng: &mut Rng) -> Announcer {
        let mut tiers: Vec<Vec<String>> = tiers.into_iter().filter(|t| !t.is_empty()).collect();
        for t in &mut tiers {
            rng.shuffle(t);
        }
        Announcer {
            tiers,
            tier: 0,
            index: 0,
            in_flight: false,
            sent: AnnounceEvent::None,
            next: now,
            interval: DEFAULT_INTERVAL,
            min_interval: MIN_INTERVAL,
            failures: 0,
            tried: 0,
            event: AnnounceEvent::Started,
            completed_sent: false,
            completed_pending: false,
            stopping: false,
            finished: false,
            last_announce: None,
        }
    }

    /// The tiers in their current order.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    fn total(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    fn current_url(&self) -> Option<&String> {
        self.tiers.get(self.tier).and_then(|t| t.get(self.index))
    }

    /// The announce to send now, if one is due (then `in flight` until its
    /// result is reported).
    #[must_use]
    pub fn poll_announce(&mut self, now: Instant) -> Option<AnnounceDue> {
        if self.in_flight || self.finished || now < self.next {
            return None;
        }
        let url = self.current_url()?.clone();
        self.in_flight = true;
        self.sent = self.event;
        self.last_announce = Some(now);
        Some(AnnounceDue {
            url,
            event: self.event,
        })
    }

    /// When [`poll_announce`](Announcer::poll_announce) next has something.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.in_flight && !self.finished && self.total() > 0).then_some(self.next)
    }

    /// The announce to `url` succeeded.
    pub fn handle_success(&mut self, now: Instant, url: &str, response: &AnnounceResponse) {
        if !self.in_flight || self.current_url().map(String::as_str) != Some(url) {
            return;
        }
        self.in_flight = false;
        // BEP 12: the tracker that answered moves to the front of its tier.
        let t = &mut self.tiers[self.tier];
        let u = t.remove(self.index);
        t.insert(0, u);
        self.tier = 0;
        self.index = 0;
        self.failures = 0;
        self.tried = 0;
        self.min_interval = response.min_interval.map_or(MIN_INTERVAL, |m| {
            Duration::from_secs(u64::from(m)).max(MIN_INTERVAL)
        });
        self.interval = Duration::from_secs(u64::from(response.interval)).max(self.min_interval);
        match self.sent {
            AnnounceEvent::Stopped => {
                self.finished = true;
                return;
            }
            AnnounceEvent::Completed => self.completed_sent = true,
            _ => {}
        }
        if std::mem::take(&mut self.completed_pending) {
            // The download finished while `started` was in flight: the
            // tracker counts the completion first, then hears `stopped` if
            // we are leaving too.
            self.event = AnnounceEvent::Completed;
            self.next = now;
        } else if self.event == AnnounceEvent::Completed && !self.completed_sent {
            // It finished while another announce was in flight.
            self.next = now;
        } else if self.stopping {
            self.event = AnnounceEvent::Stopped;
            self.next = now;
        } else if self.event == self.sent {
            self.event = AnnounceEvent::None;
            self.next = now + self.interval;
        } else {
            // The download finished while this announce was in flight: say
            // it now.
            self.next = now;
        }
    }

    /// The announce to `url` failed: try the next tracker at once, or,
    /// when all have failed this round, back off exponentially.
    pub fn handle_failure(&mut self, now: Instant, url: &str) {
        if !self.in_flight || self.current_url().map(String::as_str) != Some(url) {
            return;
        }
        self.in_flight = false;
        self.tried += 1;
        self.index += 1;
        if self.index >= self.tiers[self.tier].len() {
            self.index = 0;
            self.tier = (self.tier + 1) % self.tiers.len();
        }
        if self.tried >= self.total() {
            self.tried = 0;
            if self.stopping {
                // Nobody heard the `stopped`; do not keep trying.
                self.finished = true;
                return;
            }
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << self.failures.min(6))
                .min(MAX_BACKOFF);
            self.failures += 1;
            self.next = now + backoff;
        } else {
            self.next = now;
        }
    }

    /// The download finished: send `completed` (once) right away.
    pub fn completed(&mut self, now: Instant) {
        if self.completed_sent || self.stopping {
            return;
        }
        if self.event == AnnounceEvent::Started {
            // `started` goes first; `completed` follows its success.
            self.completed_pending = true;
        } else {
            self.event = AnnounceEvent::Completed;
            self.next = now;
        }
    }

    /// We are leaving: send `stopped` right away (if `started` ever went
    /// out), then nothing more.
    pub fn stop(&mut self, now: Instant) {
        if self.last_announce.is_none() {
            self.finished = true;
            return;
        }
        self.stopping = true;
        self.tried = 0;
        if self.event == AnnounceEvent::Completed {
            // `completed` is due or on its way: it goes first (the tracker
            // counts the download), then `stopped` after its answer.
            self.next = now;
            return;
        }
        self.event = AnnounceEvent::Stopped;
        self.next = now;
    }

    /// The user asks for an announce now (to get peers sooner): the next
    /// one is due at once, unless one is in flight or we are leaving.
    pub fn reannounce(&mut self, now: Instant) {
        if !self.stopping && !self.finished {
            self.next = self.next.min(now);
        }
    }

    /// The tracker the next announce goes to and when (BEP 12: one
    /// tracker at a time); `None` while one is in flight or after the
    /// last.
    pub fn next_announce(&self) -> Option<(&str, Instant)> {
        let at = self.poll_timeout()?;
        self.current_url().map(|url| (url.as_str(), at))
    }

    /// Whether the announcer is done (after `stopped`).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Consecutive rounds in which every tracker failed.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;

    fn ok(interval: u32, min: Option<u32>) -> AnnounceResponse {
        AnnounceResponse {
            interval,
            min_interval: min,
            ..AnnounceResponse::default()
        }
    }

    fn tiers() -> Vec<Vec<String>> {
        vec![
            vec!["http://a/announce".into(), "http://b/announce".into()],
            vec!["udp://c:80".into()],
        ]
    }

    #[test]
    fn started_then_regular_then_completed_then_stopped() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(1)));
        let first = a.poll_announce(t0).unwrap();
        assert_eq!(first.event, AnnounceEvent::Started);
        assert!(a.poll_announce(t0).is_none(), "one at a time");
        a.handle_success(t0, &first.url, &ok(100, Some(60)));
        assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(100)));
        let t1 = t0 + Duration::from_secs(100);
        let regular = a.poll_announce(t1).unwrap();
        assert_eq!(regular.event, AnnounceEvent::None);
        assert_eq!(regular.url, first.url);
        a.handle_success(t1, &regular.url, &ok(10, Some(45)));
        assert_eq!(
            a.poll_timeout(),
            Some(t1 + Duration::from_secs(45)),
            "never below min interval"
        );
        a.completed(t1);
        let c = a.poll_announce(t1).unwrap();
        assert_eq!(c.event, AnnounceEvent::Completed);
        a.handle_success(t1, &c.url, &ok(100, None));
        a.completed(t1);
        assert!(a.poll_announce(t1).is_none(), "completed is sent once");
        a.stop(t1);
        let s = a.poll_announce(t1).unwrap();
        assert_eq!(s.event, AnnounceEvent::Stopped);
        a.handle_success(t1, &s.url, &ok(100, None));
        assert!(a.is_finished());
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn the_next_announce_names_its_tracker_and_time() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(4)));
        let first = a.poll_announce(t0).unwrap();
        assert_eq!(
            a.next_announce(),
            None,
            "nothing is next while one is in flight"
        );
        a.handle_success(t0, &first.url, &ok(1800, None));
        assert_eq!(
            a.next_announce(),
            Some((first.url.as_str(), t0 + Duration::from_secs(1800)))
        );
        a.stop(t0);
        let stopped = a.poll_announce(t0).unwrap();
        a.handle_success(t0, &stopped.url, &ok(1800, None));
        assert_eq!(a.next_announce(), None, "nothing after the last");
    }

    #[test]
    fn failover_within_and_across_tiers_and_promotion() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(2)));
        let tier0 = a.tiers()[0].clone();
        let first = a.poll_announce(t0).unwrap();
        assert_eq!(first.url, tier0[0]);
        a.handle_failure(t0, &first.url);
        let second = a.poll_announce(t0).unwrap();
        assert_eq!(second.url, tier0[1]);
        a.handle_success(t0, &second.url, &ok(1800, None));
        assert_eq!(
            a.tiers()[0][0],
            tier0[1],
            "answering tracker moves to the front"
        );
        let t1 = t0 + Duration::from_secs(1800);
        let next = a.poll_announce(t1).unwrap();
        assert_eq!(next.url, tier0[1]);
        assert_eq!(next.event, AnnounceEvent::None);
    }

    #[test]
    fn exponential_backoff_when_every_tracker_fails() {
        let mut now = Instant::ZERO;
        let mut a = Announcer::new(now, tiers(), &mut Rng::new(Seed::from_u64(3)));
        let mut gaps = Vec::new();
        for _ in 0..5 {
            for _ in 0..3 {
                let due = a.poll_announce(now).unwrap();
                a.handle_failure(now, &due.url);
            }
            let next = a.poll_timeout().unwrap();
            gaps.push((next - now).as_secs());
            now = next;
        }
        assert_eq!(gaps, vec![60, 120, 240, 480, 960]);
        assert_eq!(a.failures(), 5);
        let due = a.poll_announce(now).unwrap();
        assert_eq!(
            due.event,
            AnnounceEvent::Started,
            "started until one succeeds"
        );
    }

    #[test]
    fn completed_before_started_went_out_follows_it() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(5)));
        a.completed(t0);
        let s = a.poll_announce(t0).unwrap();
        assert_eq!(s.event, AnnounceEvent::Started);
        a.handle_success(t0, &s.url, &ok(1800, None));
        let c = a.poll_announce(t0).unwrap();
        assert_eq!(c.event, AnnounceEvent::Completed);
    }

    #[test]
    fn stop_during_an_announce_still_sends_stopped() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(6)));
        let s = a.poll_announce(t0).unwrap();
        a.stop(t0);
        a.handle_success(t0, &s.url, &ok(1800, None));
        assert!(!a.is_finished());
        let stop = a.poll_announce(t0).unwrap();
        assert_eq!(stop.event, AnnounceEvent::Stopped);
        a.handle_success(t0, &stop.url, &ok(1800, None));
        assert!(a.is_finished());
    }

    #[test]
    fn finished_and_stopped_while_started_is_in_flight_sends_completed_then_stopped() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(7)));
        let started = a.poll_announce(t0).unwrap();
        a.completed(t0);
        a.stop(t0);
        a.handle_success(t0, &started.url, &ok(1800, None));
        let c = a.poll_announce(t0).unwrap();
        assert_eq!(c.event, AnnounceEvent::Completed);
        a.handle_success(t0, &c.url, &ok(1800, None));
        let stop = a.poll_announce(t0).expect("stopped still goes out");
        assert_eq!(stop.event, AnnounceEvent::Stopped);
        a.handle_success(t0, &stop.url, &ok(1800, None));
        assert!(a.is_finished());
    }

    #[test]
    fn a_stop_right_after_finishing_still_sends_completed_first() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(8)));
        let started = a.poll_announce(t0).unwrap();
        a.handle_success(t0, &started.url, &ok(1800, None));
        // Finished and stopping before the `completed` went out.
        a.completed(t0);
        a.stop(t0);
        let c = a.poll_announce(t0).unwrap();
        assert_eq!(c.event, AnnounceEvent::Completed);
        a.handle_success(t0, &c.url, &ok(1800, None));
        let stop = a.poll_announce(t0).unwrap();
        assert_eq!(stop.event, AnnounceEvent::Stopped);
        a.handle_success(t0, &stop.url, &ok(1800, None));
        assert!(a.is_finished());
    }

    #[test]
    fn finishing_and_stopping_during_a_regular_announce_sends_completed_then_stopped() {
        let t0 = Instant::ZERO;
        let mut a = Announcer::new(t0, tiers(), &mut Rng::new(Seed::from_u64(9)));
        let started = a.poll_announce(t0).unwrap();
        a.handle_success(t0, &started.url, &ok(10, None));
        let t1 = t0 + Duration::from_secs(60);
        let regular = a.poll_announce(t1).unwrap();
        assert_eq!(regular.event, AnnounceEvent::None);
        a.completed(t1);
        a.stop(t1);
        a.handle_success(t1, &regular.url, &ok(10, None));
        let c = a.poll_announce(t1).unwrap();
        assert_eq!(c.event, AnnounceEvent::Completed);
        a.handle_success(t1, &c.url, &ok(10, None));
        let stop = a.poll_announce(t1).unwrap();
        assert_eq!(stop.event, AnnounceEvent::Stopped);
    }

    #[test]
    fn no_trackers_no_announces() {
        let mut a = Announcer::new(
            Instant::ZERO,
            vec![vec![]],
            &mut Rng::new(Seed::from_u64(4)),
        );
        assert!(a.poll_announce(Instant::ZERO).is_none());
        assert_eq!(a.poll_timeout(), None);
        a.stop(Instant::ZERO);
        assert!(a.is_finished());
    }
}
