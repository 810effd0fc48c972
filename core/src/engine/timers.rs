//! The engine's timer table: one slot per part of the engine (an array
//! indexed by [`Timer`]) plus the earliest torrent deadline, so the wake-up
//! the driver gets in [`Output::Timeout`](super::Output::Timeout) can say
//! which part asked for it ([`TimerReason`], for traces).

use std::collections::{BTreeMap, BTreeSet};

use crate::handles::TorrentId;
use crate::time::Instant;

/// Which part of the engine set the earliest deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TimerReason {
    /// An incoming connection must finish its handshake.
    Handshakes,
    /// A uTP connection's timer (retransmission, keep-alive, close).
    Utp,
    /// A UDP tracker request is due for retransmission.
    Trackers,
    /// The DHT node (query timeouts, table upkeep).
    DhtNode,
    /// The DHT node's start, or a torrent's next DHT lookup.
    DhtLookups,
    /// Local service discovery's next announce (BEP 14).
    Lsd,
    /// A shutdown's grace period ends.
    Shutdown,
    /// The session policy's tick: seeding goals, the queue, budgets split
    /// among torrents.
    Policy,
    /// A metadata fetch's deadline (for an index).
    Fetches,
    /// A torrent's own timers (choking, connecting, peer sessions,
    /// announces, rate limits).
    Torrent(TorrentId),
}

/// The engine's parts with one deadline each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    Handshakes,
    Utp,
    Trackers,
    DhtNode,
    DhtLookups,
    Lsd,
    Shutdown,
    Policy,
    Fetches,
}

impl Timer {
    const ALL: [Timer; 9] = [
        Timer::Handshakes,
        Timer::Utp,
        Timer::Trackers,
        Timer::DhtNode,
        Timer::DhtLookups,
        Timer::Lsd,
        Timer::Shutdown,
        Timer::Policy,
        Timer::Fetches,
    ];

    fn reason(self) -> TimerReason {
        match self {
            Timer::Handshakes => TimerReason::Handshakes,
            Timer::Utp => TimerReason::Utp,
            Timer::Trackers => TimerReason::Trackers,
            Timer::DhtNode => TimerReason::DhtNode,
            Timer::DhtLookups => TimerReason::DhtLookups,
            Timer::Lsd => TimerReason::Lsd,
            Timer::Shutdown => TimerReason::Shutdown,
            Timer::Policy => TimerReason::Policy,
            Timer::Fetches => TimerReason::Fetches,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Timers {
    fixed: [Option<Instant>; Timer::ALL.len()],
    /// Each torrent's deadline, and the same sorted (earliest first, the
    /// lowest id on a tie).
    torrents: BTreeMap<TorrentId, Instant>,
    sorted: BTreeSet<(Instant, TorrentId)>,
}

impl Timers {
    pub(super) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.fixed[timer as usize] = at;
    }

    /// A torrent's deadline (`None`: it has none, or is gone).
    pub(super) fn set_torrent(&mut self, id: TorrentId, at: Option<Instant>) {
        if let Some(old) = self.torrents.remove(&id) {
            self.sorted.remove(&(old, id));
        }
        if let Some(at) = at {
            self.torrents.insert(id, at);
            self.sorted.insert((at, id));
        }
    }

    /// The torrents whose deadline is `now` or earlier.
    pub(super) fn due_torrents(&self, now: Instant) -> Vec<TorrentId> {
        self.sorted
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    /// The earliest deadline and whose it is (the first part in table
    /// order on a tie, then the lowest torrent id).
    pub(super) fn earliest(&self) -> Option<(Instant, TimerReason)> {
        let fixed = Timer::ALL
            .iter()
            .filter_map(|t| self.fixed[*t as usize].map(|at| (at, t.reason())));
        let torrent = self
            .sorted
            .first()
            .map(|&(at, id)| (at, TimerReason::Torrent(id)));
        fixed.chain(torrent).min_by_key(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_deadline_names_its_part() {
        let t0 = Instant::ZERO;
        let mut timers = Timers::default();
        assert_eq!(timers.earliest(), None);
        timers.set(Timer::DhtNode, Some(t0 + Duration::from_secs(3)));
        timers.set(Timer::Trackers, Some(t0 + Duration::from_secs(3)));
        assert_eq!(
            timers.earliest(),
            Some((t0 + Duration::from_secs(3), TimerReason::Trackers))
        );
        let id = TorrentId::new(4);
        timers.set_torrent(id, Some(t0 + Duration::from_secs(1)));
        assert_eq!(
            timers.earliest(),
            Some((t0 + Duration::from_secs(1), TimerReason::Torrent(id)))
        );
        assert_eq!(timers.due_torrents(t0 + Duration::from_secs(1)), vec![id]);
        assert!(timers.due_torrents(t0).is_empty());
        timers.set_torrent(id, None);
        timers.set(Timer::Trackers, None);
        assert_eq!(
            timers.earliest(),
            Some((t0 + Duration::from_secs(3), TimerReason::DhtNode))
        );
    }
}
