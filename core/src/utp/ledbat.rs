//! LEDBAT congestion control (BEP 29, "congestion control"; RFC 6817).
//!
//! uTP aims to keep the queue it builds at the bottleneck below a target
//! delay and to back off before TCP would. BEP 29: "The overall goal of
//! the uTP congestion controller is to use one way buffer delay as its
//! main congestion measurement"; "CCONTROL_TARGET … is 100 ms", and per
//! ACK
//!
//! ```text
//! delay_factor = off_target / CCONTROL_TARGET;
//! window_factor = outstanding_packet / max_window;
//! scaled_gain = MAX_CWND_INCREASE_PACKETS_PER_RTT * delay_factor * window_factor;
//! max_window += scaled_gain
//! ```
//!
//! where `off_target = CCONTROL_TARGET - our_delay` and `our_delay` is a
//! delay sample minus the base delay, "the lowest sample from the last two
//! minutes" (we keep per-minute minima, as libutp and RFC 6817's
//! BASE_HISTORY do, and use the last [`BASE_HISTORY_MINUTES`] of them). The
//! delay itself is the minimum of the last few samples (RFC 6817's
//! CURRENT_FILTER), so one delayed ACK does not shrink the window.
//!
//! Delay samples are the peer's `timestamp_difference_microseconds`: its
//! clock minus ours plus the one-way delay. The clock offset cancels out
//! against the base delay; all arithmetic is modulo 2³² so a wrapping
//! microsecond clock does not matter.
//!
//! Additions from libtorrent's uTP that the BEP leaves open: slow start
//! (the window doubles per RTT until the delay reaches the target or a
//! packet is lost, so a fresh connection does not crawl at 3,000 bytes per
//! RTT), halving at most once per RTT on loss, and one packet after a
//! timeout.

use std::time::Duration;

use crate::time::Instant;

/// BEP 29: the largest growth per RTT, in bytes ("MAX_CWND_INCREASE_PACKETS_PER_RTT",
/// 3000 bytes in libutp).
const MAX_GAIN_PER_RTT: i64 = 3000;
/// How many per-minute minima the base delay covers.
pub(crate) const BASE_HISTORY_MINUTES: usize = 2;
/// Samples the current delay is the minimum of (RFC 6817 CURRENT_FILTER).
const CURRENT_FILTER: usize = 4;
/// The window never exceeds this many bytes (the peer's advertised window
/// and our send buffer usually limit it far earlier).
const MAX_WINDOW: u32 = 16 << 20;
/// Packets of window a new connection starts with.
const INITIAL_WINDOW_PACKETS: u32 = 2;
/// Packets of window loss and delay never push it below.
const MIN_WINDOW_PACKETS: u32 = 2;

/// The congestion window and what it is computed from.
#[derive(Clone, Debug)]
pub(crate) struct Ledbat {
    target_us: u32,
    mss: u32,
    max_window: u32,
    slow_start: bool,
    /// Per-minute minima of the delay samples, newest at `base_idx`.
    base_history: [u32; BASE_HISTORY_MINUTES],
    base_filled: usize,
    base_idx: usize,
    base_bucket_start: Instant,
    current: [u32; CURRENT_FILTER],
    current_filled: usize,
    current_idx: usize,
    last_cut: Option<Instant>,
}

/// `a < b` on a wrapping 32-bit microsecond clock.
fn wrapping_less(a: u32, b: u32) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < 0x8000_0000
}

fn wrapping_min(a: u32, b: u32) -> u32 {
    if wrapping_less(b, a) {
        b
    } else {
        a
    }
}

impl Ledbat {
    /// A controller for packets of `mss` payload bytes aiming at `target`
    /// queuing delay.
    pub(crate) fn new(target: Duration, mss: u32) -> Ledbat {
        let mss = mss.max(1);
        Ledbat {
            target_us: u32::try_from(target.as_micros()).unwrap_or(u32::MAX).max(1),
            mss,
            max_window: INITIAL_WINDOW_PACKETS * mss,
            slow_start: true,
            base_history: [0; BASE_HISTORY_MINUTES],
            base_filled: 0,
            base_idx: 0,
            base_bucket_start: Instant::ZERO,
            current: [0; CURRENT_FILTER],
            current_filled: 0,
            current_idx: 0,
            last_cut: None,
        }
    }

    /// Bytes that may be in flight.
    pub(crate) fn window(&self) -> u32 {
        self.max_window
    }

    /// Whether the window still grows exponentially.
    pub(crate) fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    fn min_window(&self) -> u32 {
        MIN_WINDOW_PACKETS * self.mss
    }

    /// A one-way delay sample from the peer's `timestamp_difference`.
    pub(crate) fn on_delay_sample(&mut self, now: Instant, sample_us: u32) {
        if self.base_filled == 0 {
            self.base_history[0] = sample_us;
            self.base_filled = 1;
            self.base_bucket_start = now;
        } else if now - self.base_bucket_start >= Duration::from_secs(60) {
            self.base_idx = (self.base_idx + 1) % BASE_HISTORY_MINUTES;
            self.base_history[self.base_idx] = sample_us;
            self.base_filled = (self.base_filled + 1).min(BASE_HISTORY_MINUTES);
            self.base_bucket_start = now;
        } else {
            let slot = &mut self.base_history[self.base_idx];
            *slot = wrapping_min(*slot, sample_us);
        }
        self.current[self.current_idx] = sample_us;
        self.current_idx = (self.current_idx + 1) % CURRENT_FILTER;
        self.current_filled = (self.current_filled + 1).min(CURRENT_FILTER);
    }

    fn base_delay(&self) -> Option<u32> {
        self.base_history[..self.base_filled]
            .iter()
            .copied()
            .reduce(wrapping_min)
    }

    /// The queuing delay: the current delay above the base delay.
    pub(crate) fn queuing_delay(&self) -> Duration {
        let (Some(base), Some(current)) = (
            self.base_delay(),
            self.current[..self.current_filled]
                .iter()
                .copied()
                .reduce(wrapping_min),
        ) else {
            return Duration::ZERO;
        };
        let d = current.wrapping_sub(base);
        Duration::from_micros(if d >= 0x8000_0000 { 0 } else { u64::from(d) })
    }

    /// `bytes_acked` were acknowledged while `flight` bytes were in flight
    /// (before the ACK).
    pub(crate) fn on_ack(&mut self, bytes_acked: u32, flight: u32) {
        if bytes_acked == 0 {
            return;
        }
        let target = i64::from(self.target_us);
        let queuing = i64::try_from(self.queuing_delay().as_micros()).unwrap_or(i64::MAX);
        let off_target = (target - queuing).max(-target);
        let window = i64::from(self.max_window.max(1));
        let acked = i64::from(bytes_acked).min(window);
        let mut gain = MAX_GAIN_PER_RTT * off_target * acked / (target * window);
        if self.slow_start {
            if off_target < target / 10 {
                // The queue nears the target: leave slow start (libtorrent).
                self.slow_start = false;
            } else {
                gain = gain.max(acked);
            }
        }
        // Only a window that is used may grow ("cwnd-limited"), or an idle
        // connection would claim a window it never tested.
        let using_window = flight.saturating_add(self.mss) >= self.max_window;
        if gain > 0 && !using_window {
            return;
        }
        let next = (i64::from(self.max_window) + gain)
            .clamp(i64::from(self.min_window()), i64::from(MAX_WINDOW));
        self.max_window = u32::try_from(next).unwrap_or(MAX_WINDOW);
    }

    /// A packet was lost (duplicate ACKs or selective ACKs past it): halve
    /// the window, at most once per `rtt` (BEP 29: "max_window is
    /// multiplied by 0.5").
    pub(crate) fn on_loss(&mut self, now: Instant, rtt: Duration) {
        if self.last_cut.is_some_and(|t| now - t < rtt) {
            return;
        }
        self.last_cut = Some(now);
        self.slow_start = false;
        self.max_window = (self.max_window / 2).max(self.min_window());
    }

    /// The retransmission timer fired: BEP 29, "the max_window is set to
    /// the packet size"; we keep a floor of one packet and restart slow start.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        self.last_cut = Some(now);
        self.max_window = self.mss;
        self.slow_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// A controller out of slow start with a window of `w` and a base
    /// delay measured at a (wrapping) clock offset.
    fn steady(w: u32) -> Ledbat {
        let mut l = Ledbat::new(Duration::from_millis(100), MSS);
        l.slow_start = false;
        l.max_window = w;
        l.on_delay_sample(at(0), u32::MAX - 5_000);
        l
    }

    #[test]
    fn grows_below_target_and_shrinks_above() {
        let mut l = steady(50_000);
        for i in 0..CURRENT_FILTER as u64 {
            l.on_delay_sample(at(i), (u32::MAX - 5_000).wrapping_add(20_000));
        }
        assert_eq!(
            l.queuing_delay(),
            Duration::from_millis(20),
            "across the wrap"
        );
        l.on_ack(50_000, 50_000);
        // A full window acked at 20 ms: gain = 3000 × 80/100.
        assert_eq!(l.window(), 52_400);

        for i in 0..CURRENT_FILTER as u64 {
            l.on_delay_sample(at(10 + i), (u32::MAX - 5_000).wrapping_add(250_000));
        }
        l.on_ack(52_400, 52_400);
        assert_eq!(
            l.window(),
            52_400 - 3000,
            "off target by more than 100 %, clamped"
        );
        for _ in 0..100 {
            l.on_ack(l.window(), 0);
        }
        assert_eq!(l.window(), l.min_window(), "never below the floor");
    }

    #[test]
    fn idle_windows_do_not_grow() {
        let mut l = steady(50_000);
        l.on_ack(10_000, 10_000);
        assert_eq!(l.window(), 50_000);
    }

    #[test]
    fn slow_start_doubles_until_the_queue_builds() {
        let mut l = Ledbat::new(Duration::from_millis(100), MSS);
        l.on_delay_sample(at(0), 1_000);
        let w = l.window();
        l.on_ack(w, w);
        assert_eq!(l.window(), 2 * w + 1000, "doubled, or 3000 bytes if more");
        let w = l.window();
        l.on_ack(w, w);
        assert_eq!(l.window(), 2 * w);
        for i in 0..CURRENT_FILTER as u64 {
            l.on_delay_sample(at(1 + i), 1_000 + 95_000);
        }
        l.on_ack(MSS, l.window());
        assert!(!l.in_slow_start());
    }

    #[test]
    fn losses_halve_once_per_rtt_and_timeouts_reset() {
        let mut l = steady(64_000);
        let rtt = Duration::from_millis(100);
        l.on_loss(at(0), rtt);
        l.on_loss(at(50), rtt);
        assert_eq!(l.window(), 32_000);
        l.on_loss(at(150), rtt);
        assert_eq!(l.window(), 16_000);
        l.on_timeout(at(200));
        assert_eq!(l.window(), MSS);
        assert!(l.in_slow_start());
    }

    #[test]
    fn base_delay_forgets_old_minutes() {
        let mut l = Ledbat::new(Duration::from_millis(100), MSS);
        l.on_delay_sample(at(0), 1_000);
        for minute in 1..=BASE_HISTORY_MINUTES as u64 {
            l.on_delay_sample(at(minute * 61_000), 50_000);
        }
        assert_eq!(l.base_delay(), Some(50_000), "the 1 ms minute has expired");
    }
}
