//! The session's budgets split among its torrents: upload and download
//! rates, connections, connection attempts and buffered block data
//! ([`SessionLimits`](super::SessionLimits)).
//!
//! Each budget goes max-min fair ([`water_fill`]) to the torrents that use
//! it (downloads for the download rate and memory, downloads and seeds
//! for the upload rate, every torrent with connections for those): a
//! torrent asking less than an equal share gets what it asks and leaves
//! the rest to the others; what nobody asks for is spread evenly, so no
//! budget lies idle. What a torrent asks is estimated from what it used:
//! one that used at least 80 % of its last share may want more and asks
//! for everything its own limit allows; one that used less asks for a
//! quarter more than it used. Its own limits ([`Torrent::set_rate_limits`],
//! [`TorrentConfig`](crate::torrent::TorrentConfig)) cap what it asks, and
//! the smaller of its limit and its share is in force
//! ([`SessionShare`]).
//!
//! Connections are a hard cap: the torrents' shares add up to
//! `max_connections` less a reserve for incoming connections still in
//! their handshake (incoming ones beyond it are refused), and a torrent
//! whose share shrinks below its peers closes the surplus at once.
//!
//! The split runs at every policy tick and after state changes, in queue
//! order; units left over by integer division go one by one from a
//! starting point that moves each round, so no torrent is always last.

use super::Engine;
use crate::handles::TorrentId;
use crate::time::Instant;
use crate::torrent::{SessionShare, Torrent, TorrentState};

/// Least rate share (bytes/s) of a torrent in the split, budget allowing.
const MIN_RATE: u64 = 16 * 1024;
/// Least memory share of a download: enough to keep a few peers' request
/// pipelines full (or one piece, if larger), whatever the budget says.
const MIN_BUFFER: u64 = 4 << 20;

/// Max-min fair split of `total` among `demands` (`u64::MAX`: all it can
/// get); what is left once every demand is met is split the same way up
/// to each one's hard `caps` (its own limit), and beyond that goes
/// unused. Ties go in index order from `start` (the lower shares of an
/// uneven division first).
pub(super) fn water_fill(total: u64, demands: &[u64], caps: &[u64], start: usize) -> Vec<u64> {
    let mut alloc = fill(total, demands, start);
    let given: u64 = alloc.iter().sum();
    let room: Vec<u64> = caps
        .iter()
        .zip(&alloc)
        .map(|(c, a)| c.saturating_sub(*a))
        .collect();
    for (a, more) in alloc.iter_mut().zip(fill(total - given, &room, start)) {
        *a += more;
    }
    alloc
}

/// The max-min fair part of [`water_fill`]: smallest demands first, each
/// the lesser of its demand and an equal part of what is left.
fn fill(total: u64, demands: &[u64], start: usize) -> Vec<u64> {
    let n = demands.len();
    let mut alloc = vec![0u64; n];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (demands[i], (i + n - start % n.max(1)) % n.max(1)));
    let mut remaining = total;
    for (k, &i) in order.iter().enumerate() {
        let fair = remaining / (n - k) as u64;
        alloc[i] = demands[i].min(fair);
        remaining -= alloc[i];
    }
    alloc
}

/// What a torrent asks of a budget given what it `used` of its `last`
/// share (module documentation); `own` is its own limit (`u64::MAX`: none).
fn demand(own: u64, used: u64, last: Option<u64>, headroom: u64) -> u64 {
    match last {
        Some(a) if used.saturating_mul(10) < a.saturating_mul(8) => {
            own.min((used + used / 4).max(headroom))
        }
        _ => own,
    }
}

/// A user rate limit (0: none) as a cap on demand.
fn own_rate(limit: u64) -> u64 {
    if limit == 0 {
        u64::MAX
    } else {
        limit
    }
}

/// One budget split among the torrents that use it, given as (index,
/// demand, cap); the others get `idle`.
fn split<T: Copy>(
    total: Option<u64>,
    users: &[(usize, u64, u64)],
    count: usize,
    start: usize,
    idle: Option<T>,
    to: impl Fn(u64) -> T,
) -> Vec<Option<T>> {
    let Some(total) = total else {
        return vec![None; count];
    };
    let demands: Vec<u64> = users.iter().map(|u| u.1).collect();
    let caps: Vec<u64> = users.iter().map(|u| u.2).collect();
    let shares = water_fill(total, &demands, &caps, start);
    let mut out = vec![idle; count];
    for ((i, _, _), s) in users.iter().zip(shares) {
        out[*i] = Some(to(s));
    }
    out
}

impl Engine {
    /// Splits every budget among the torrents anew and hands each its
    /// share.
    pub(super) fn rebalance(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        let limits = self.config.limits.clone();
        let ids: Vec<TorrentId> = self
            .policy
            .order
            .iter()
            .copied()
            .filter(|id| self.torrents.contains_key(id))
            .collect();
        let torrents: Vec<&Torrent> = ids.iter().filter_map(|id| self.torrents.get(id)).collect();
        let n = torrents.len();
        let start = self.policy.rotation;
        self.policy.rotation = self.policy.rotation.wrapping_add(1);
        let limit = |v: u64| (v > 0).then_some(v);

        let mut down = Vec::new();
        let mut up = Vec::new();
        let mut conns = Vec::new();
        let mut half_open = Vec::new();
        let mut memory = Vec::new();
        for (i, t) in torrents.iter().enumerate() {
            let state = t.state();
            let last = t.session_share();
            let (own_up, own_down) = t.rate_limits();
            let (rate_down, rate_up) = t.rates(now);
            let (own_peers, own_half, own_memory) = t.own_limits();
            if state == TorrentState::Downloading {
                let own = own_rate(own_down);
                down.push((i, demand(own, rate_down, last.download_rate, MIN_RATE), own));
                memory.push((i, own_memory, own_memory));
            }
            if matches!(state, TorrentState::Downloading | TorrentState::Seeding) {
                let own = own_rate(own_up);
                up.push((i, demand(own, rate_up, last.upload_rate, MIN_RATE), own));
            }
            let running = !matches!(
                state,
                TorrentState::Paused | TorrentState::Queued | TorrentState::Stopped
            );
            if running {
                let peers = t.peer_count() as u64;
                let last_peers = last.max_peers.map(|m| m as u64);
                // Near its cap counts as full (attempts come and go).
                let own = own_peers as u64;
                conns.push((i, demand(own, peers + 2, last_peers, peers + 4), own));
                let own = own_half as u64;
                let wants = if t.wants_connections(now) {
                    own
                } else {
                    t.half_open_count() as u64
                };
                half_open.push((i, wants, own));
            }
        }
        let min_rate = |total: u64| MIN_RATE.min(total / (n as u64).max(1)).max(1);
        let down = split(
            limit(limits.download_rate),
            &down,
            n,
            start,
            limit(limits.download_rate).map(min_rate),
            |s| s.max(1),
        );
        let up = split(
            limit(limits.upload_rate),
            &up,
            n,
            start,
            limit(limits.upload_rate).map(min_rate),
            |s| s.max(1),
        );
        let reserve = self.incoming_reserve() as u64;
        let conns = split(
            limit(limits.max_connections as u64).map(|m| m.saturating_sub(reserve)),
            &conns,
            n,
            start,
            Some(0),
            |s| usize::try_from(s).unwrap_or(usize::MAX),
        );
        let half_open = split(
            limit(limits.max_half_open as u64),
            &half_open,
            n,
            start,
            Some(0),
            |s| usize::try_from(s).unwrap_or(usize::MAX),
        );
        let memory = split(
            limit(limits.max_buffered_bytes),
            &memory,
            n,
            start,
            None,
            |s| s,
        );
        for (i, id) in ids.iter().enumerate() {
            let Some(t) = self.torrents.get(id) else {
                continue;
            };
            let floor = MIN_BUFFER.max(u64::from(t.info().layout.piece_length()));
            let share = SessionShare {
                max_peers: conns[i],
                max_half_open: half_open[i],
                max_buffered_bytes: memory[i].map(|m| m.max(floor)),
                upload_rate: up[i],
                download_rate: down[i],
            };
            // Touched only when its share changes.
            if t.session_share() != share {
                if let Some(t) = self.torrents.get_mut(id) {
                    t.set_session_share(now, share);
                }
            }
        }
    }

    /// Connections kept for incoming peers still in their handshake: as
    /// many as may wait ([`HandshakeLimits::max_total`](super::HandshakeLimits)),
    /// at most an eighth of the budget.
    pub(super) fn incoming_reserve(&self) -> usize {
        let max = self.config.limits.max_connections;
        let most = self.config.handshakes.max_total;
        if max == 0 {
            most
        } else {
            most.min((max / 8).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_fill_is_max_min_fair() {
        const ANY: u64 = u64::MAX;
        assert_eq!(water_fill(100, &[ANY, ANY], &[ANY, ANY], 0), vec![50, 50]);
        assert_eq!(water_fill(100, &[10, ANY], &[10, ANY], 0), vec![10, 90]);
        // What nobody asked for is spread, up to each one's own cap.
        assert_eq!(water_fill(100, &[10, 20], &[ANY, ANY], 0), vec![45, 55]);
        assert_eq!(water_fill(100, &[10, 16], &[10, ANY], 0), vec![10, 90]);
        assert_eq!(water_fill(100, &[10, 16], &[10, 30], 0), vec![10, 30]);
        assert_eq!(
            water_fill(500, &[ANY; 3], &[ANY; 3], 0),
            vec![166, 167, 167]
        );
        // Uneven divisions take turns.
        assert_eq!(
            water_fill(500, &[ANY; 3], &[ANY; 3], 1),
            vec![167, 166, 167]
        );
        assert!(water_fill(7, &[], &[], 0).is_empty());
        for total in [0, 1, 99, 1000] {
            let demands = [3, ANY, 40, 0, ANY];
            let a = water_fill(total, &demands, &[ANY; 5], 2);
            assert_eq!(a.iter().sum::<u64>(), total);
        }
    }

    #[test]
    fn demand_follows_use() {
        assert_eq!(demand(u64::MAX, 0, None, 16), u64::MAX, "no share yet");
        assert_eq!(demand(u64::MAX, 90, Some(100), 16), u64::MAX, "saturated");
        assert_eq!(demand(u64::MAX, 40, Some(100), 16), 50);
        assert_eq!(demand(u64::MAX, 0, Some(100), 16), 16);
        assert_eq!(demand(30, 90, Some(100), 16), 30, "own limit");
    }
}
