//! A connection's timers: a table indexed by [`Timer`] (quinn-proto's
//! `connection/timer.rs`), so the next deadline is one scan and the
//! expired ones are handled in a fixed order.

use crate::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The oldest unacknowledged packet is overdue (BEP 29 timeout).
    Retransmit,
    /// Nothing sent for a while: send a STATE so NATs keep the mapping.
    KeepAlive,
    /// Nothing received for too long (or a half-open connection never
    /// completed): give up.
    Idle,
    /// The peer advertised a zero window and nothing is in flight: probe.
    ZeroWindow,
    /// Closing: the end of waiting for the peer's FIN (linger), or of
    /// answering its retransmitted FIN once closed (time-wait).
    Close,
}

impl Timer {
    /// Every timer, in the order expired ones are handled.
    pub(crate) const ALL: [Timer; 5] = [
        Timer::Close,
        Timer::Idle,
        Timer::Retransmit,
        Timer::ZeroWindow,
        Timer::KeepAlive,
    ];

    const fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines, one slot per [`Timer`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; 5],
}

impl Timers {
    /// Arms `timer` for `at`, replacing any earlier setting.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Whether `timer` is armed and due at `now`; it is disarmed if so.
    pub(crate) fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        match self.deadlines[timer.index()] {
            Some(at) if at <= now => {
                self.deadlines[timer.index()] = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest deadline.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms everything.
    pub(crate) fn clear(&mut self) {
        self.deadlines = [None; 5];
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn earliest_wins_and_expiry_disarms() {
        let t0 = Instant::ZERO;
        let mut t = Timers::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Idle, t0 + Duration::from_secs(60));
        t.set(Timer::Retransmit, t0 + Duration::from_secs(1));
        assert_eq!(t.next_timeout(), t.get(Timer::Retransmit));
        assert!(!t.take_expired(Timer::Retransmit, t0));
        assert!(t.take_expired(Timer::Retransmit, t0 + Duration::from_secs(1)));
        assert_eq!(t.get(Timer::Retransmit), None);
        assert_eq!(t.next_timeout(), t.get(Timer::Idle));
        t.clear();
        assert_eq!(t.next_timeout(), None);
    }
}
