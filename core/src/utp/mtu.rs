//! Path MTU discovery at the packet layer (RFC 4821's scheme, as libutp
//! does it): a connection sends datagrams of a size known to get through
//! (the floor) and, one at a time, a larger *probe* between the floor and
//! the ceiling. The probe goes out with fragmentation forbidden, so a path
//! that cannot carry it loses it rather than splitting it: acknowledged,
//! it raises the floor; lost, it lowers the ceiling. A binary search ends
//! when the two are within [`SEARCH_DONE`] bytes, and starts again after
//! [`RESEARCH_AFTER`] (the route may have changed), or at once when
//! packets of the floor's size stop arriving.
//!
//! No ICMP is needed (many paths drop it), and a lost probe is not taken
//! as congestion.

use std::time::Duration;

use super::seq::SeqNr;
use crate::time::Instant;

/// The search is over when floor and ceiling are this close.
pub(crate) const SEARCH_DONE: usize = 16;

/// How long a finished search stands before probing again.
pub(crate) const RESEARCH_AFTER: Duration = Duration::from_secs(600);

/// One connection's knowledge of its path's MTU, in datagram bytes (the
/// UDP payload: uTP header, extensions and data).
#[derive(Clone, Debug)]
pub(crate) struct PathMtu {
    /// Where a new search starts: a size every path carries.
    min: usize,
    /// The largest size ever tried.
    max: usize,
    /// The largest size known to get through.
    floor: usize,
    /// The largest size not yet known to fail.
    ceiling: usize,
    /// The probe in flight: its sequence number and size.
    probe: Option<(SeqNr, usize)>,
    /// When a finished search starts over.
    research_at: Option<Instant>,
    /// Probes that got through, and that were lost.
    acked: u32,
    lost: u32,
}

impl PathMtu {
    /// A search between `min` and `max` datagram bytes.
    pub(crate) fn new(min: usize, max: usize) -> PathMtu {
        let min = min.min(max);
        PathMtu {
            min,
            max,
            floor: min,
            ceiling: max,
            probe: None,
            research_at: None,
            acked: 0,
            lost: 0,
        }
    }

    /// The size of an ordinary datagram.
    pub(crate) fn datagram(&self) -> usize {
        self.floor
    }

    /// Probes that got through, and that were lost.
    pub(crate) fn probes(&self) -> (u32, u32) {
        (self.acked, self.lost)
    }

    /// The size of a probe to send now, if one is due.
    pub(crate) fn probe_due(&mut self, now: Instant) -> Option<usize> {
        if self.probe.is_some() {
            return None;
        }
        if self.ceiling - self.floor <= SEARCH_DONE {
            match self.research_at {
                Some(at) if at <= now => {
                    self.ceiling = self.max;
                    self.research_at = None;
                }
                _ => return None,
            }
        }
        (self.ceiling - self.floor > SEARCH_DONE).then(|| (self.floor + self.ceiling).div_ceil(2))
    }

    /// The probe of `size` went out as the packet `seq`.
    pub(crate) fn probe_sent(&mut self, seq: SeqNr, size: usize) {
        self.probe = Some((seq, size));
    }

    /// The probe in flight, if any.
    pub(crate) fn probe_seq(&self) -> Option<SeqNr> {
        self.probe.map(|(seq, _)| seq)
    }

    /// The probe arrived: the path carries its size.
    pub(crate) fn handle_probe_acked(&mut self, now: Instant) {
        if let Some((_, size)) = self.probe.take() {
            self.acked += 1;
            self.floor = self.floor.max(size);
            self.ceiling = self.ceiling.max(self.floor);
            self.after_step(now);
        }
    }

    /// The probe was lost: take it that the path cannot carry its size.
    pub(crate) fn handle_probe_lost(&mut self, now: Instant) {
        if let Some((_, size)) = self.probe.take() {
            self.lost += 1;
            self.ceiling = (size - 1).max(self.floor);
            self.after_step(now);
        }
    }

    /// Ordinary datagrams stop arriving (retransmission timeouts in a
    /// row): the path may have shrunk below the floor, so search again
    /// from the smallest size.
    pub(crate) fn handle_black_hole(&mut self) {
        self.floor = self.min;
        self.ceiling = self.max;
        self.probe = None;
        self.research_at = None;
    }

    fn after_step(&mut self, now: Instant) {
        if self.ceiling - self.floor <= SEARCH_DONE {
            self.research_at = Some(now + RESEARCH_AFTER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a path that carries `mtu` bytes; the sizes
    /// probed.
    fn search(p: &mut PathMtu, mtu: usize, now: Instant) -> Vec<usize> {
        let mut probed = Vec::new();
        let mut seq = SeqNr(1);
        while let Some(size) = p.probe_due(now) {
            probed.push(size);
            p.probe_sent(seq, size);
            assert_eq!(p.probe_seq(), Some(seq));
            seq = seq.next();
            if size <= mtu {
                p.handle_probe_acked(now);
            } else {
                p.handle_probe_lost(now);
            }
            assert!(probed.len() < 20, "the search ends");
        }
        probed
    }

    #[test]
    fn the_search_converges_below_the_path_mtu() {
        for mtu in [1232, 1300, 1400, 1452, 1472, 9000] {
            let mut p = PathMtu::new(1232, 1472);
            let probed = search(&mut p, mtu, Instant::ZERO);
            let floor = p.datagram();
            assert!(floor <= mtu.max(1232), "{mtu}: floor {floor}");
            assert!(floor + SEARCH_DONE >= mtu.min(1472), "{mtu}: floor {floor}");
            assert!(probed.len() <= 5, "{mtu}: {probed:?}");
        }
    }

    #[test]
    fn one_probe_at_a_time_and_a_new_search_later() {
        let mut p = PathMtu::new(1232, 1472);
        let size = p.probe_due(Instant::ZERO).expect("a first probe");
        p.probe_sent(SeqNr(9), size);
        assert_eq!(p.probe_due(Instant::ZERO), None, "one in flight");
        p.handle_probe_lost(Instant::ZERO);
        let now = Instant::ZERO + Duration::from_secs(1);
        search(&mut p, 1300, now);
        assert_eq!(p.probe_due(now + RESEARCH_AFTER / 2), None);
        let later = now + RESEARCH_AFTER;
        assert!(p.probe_due(later).is_some(), "searching again");
        // The path grew meanwhile.
        search(&mut p, 1472, later);
        assert!(p.datagram() + SEARCH_DONE >= 1472);
        let (acked, lost) = p.probes();
        assert!(acked > 0 && lost > 0);
    }

    #[test]
    fn a_black_hole_restarts_from_the_smallest_size() {
        let mut p = PathMtu::new(1232, 1472);
        search(&mut p, 1472, Instant::ZERO);
        assert!(p.datagram() > 1400);
        p.handle_black_hole();
        assert_eq!(p.datagram(), 1232);
        assert!(p.probe_due(Instant::ZERO).is_some());
    }

    #[test]
    fn no_search_when_there_is_no_room() {
        let mut p = PathMtu::new(1400, 1400);
        assert_eq!(p.probe_due(Instant::ZERO), None);
        assert_eq!(PathMtu::new(1500, 1400).datagram(), 1400);
    }
}
