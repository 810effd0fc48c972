//! Reply budgets: a DHT node must not be an amplifier.
//!
//! KRPC runs over UDP (BEP 5), whose source address anyone can forge, and
//! BEP 5 answers are larger than the queries that ask for them: a ~100-byte
//! `get_peers` earns a token and eight `nodes` (or up to fifty `values`),
//! three to four times its size. A node that answers everything therefore
//! turns a flood sent in a victim's name into a bigger flood at the victim
//! (issue 12 measured 1.9× more bytes out than in). Two budgets bound what
//! a node sends, whoever asks:
//!
//! - **Per source.** Each source address may send `per_source_rate`
//!   queries a second on average, `per_source_burst` at once; one that goes
//!   over is ignored for `block` (libtorrent's defaults:
//!   `dht_block_ratelimit` 5 packets/s counted over 10 s,
//!   `dht_block_timeout` 5 minutes). IPv6 sources count by /64, the
//!   smallest network one subscriber usually gets. The table of sources is
//!   bounded; when full, the source seen least recently is forgotten (one
//!   that keeps flooding is always recent, so a new address cannot buy a
//!   blocked one a fresh start, and forgetting an idle source loses nothing:
//!   its bucket would have refilled anyway). A source idle for longer than
//!   a block and a refill is forgotten as well, full or not: the table
//!   holds the sources of the last minutes, not every address ever met.
//! - **Global, in bytes.** Answers spend from an account that every query
//!   received pays into, `credit_percent` of its size, plus a fixed
//!   `allowance` per second for honest traffic (which is also small queries
//!   with bigger answers); the account holds at most `max_credit`. An
//!   answer the account cannot pay for is not sent. So over any stretch of
//!   `t` seconds in which `bytes_in` arrived,
//!   `bytes_out ≤ bytes_in × credit_percent / 100 + allowance × t + max_credit`:
//!   with the defaults (50 %), a flood bringing in more than twice the
//!   allowance is answered with fewer bytes than it brought. Answers also
//!   never exceed `max_rate` bytes a second, however much came in.
//!
//! Unanswered queries are dropped silently (an error answer would cost
//! bytes too) and counted in [`ReplyStats`]. Time comes only from the
//! `now` the caller passes in.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::peer::TokenBucket;
use crate::time::Instant;

/// What a node may answer; see the module documentation. Zero turns a
/// rate limit off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Queries a second one source may send on average (libtorrent's
    /// `dht_block_ratelimit`: 5).
    pub per_source_rate: u64,
    /// Queries one source may send at once (libtorrent counts 10 s at the
    /// rate: 50).
    pub per_source_burst: u64,
    /// How long a source that went over its rate is ignored (libtorrent's
    /// `dht_block_timeout`: 5 minutes).
    pub block: Duration,
    /// Sources remembered at most (0: no per-source limit).
    pub max_sources: usize,
    /// Percent of each query's bytes that answers may spend.
    pub credit_percent: u64,
    /// Bytes a second answers may spend beyond what queries paid in.
    pub allowance: u64,
    /// Most unspent credit, in bytes (what a quiet spell saves up).
    pub max_credit: u64,
    /// Most answer bytes a second, whatever came in.
    pub max_rate: u64,
}

impl Default for ReplyLimits {
    fn default() -> ReplyLimits {
        ReplyLimits {
            per_source_rate: 5,
            per_source_burst: 50,
            block: Duration::from_secs(5 * 60),
            max_sources: 4096,
            credit_percent: 50,
            allowance: 32 * 1024,
            max_credit: 64 * 1024,
            max_rate: 256 * 1024,
        }
    }
}

impl ReplyLimits {
    /// No limit at all: every query is answered (for comparisons; a node
    /// on a network must not run like this).
    pub fn unlimited() -> ReplyLimits {
        ReplyLimits {
            per_source_rate: 0,
            credit_percent: 100,
            allowance: u64::MAX,
            max_credit: u64::MAX,
            max_rate: 0,
            ..ReplyLimits::default()
        }
    }
}

/// Counters of the budgets (all since the node started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplyStats {
    /// Queries received (answered or not).
    pub queries: u64,
    /// Their bytes (UDP payload).
    pub query_bytes: u64,
    /// Answers sent.
    pub replies: u64,
    /// Their bytes (UDP payload).
    pub reply_bytes: u64,
    /// Queries dropped because their source was over its rate or blocked.
    pub dropped_by_source: u64,
    /// Queries dropped because the global byte budget could not pay.
    pub dropped_by_budget: u64,
    /// Times a source was blocked.
    pub blocks: u64,
}

#[derive(Clone, Debug)]
struct Source {
    bucket: TokenBucket,
    blocked_until: Option<Instant>,
    seen: Instant,
}

/// Both budgets and their counters.
#[derive(Clone, Debug)]
pub struct ReplyBudget {
    limits: ReplyLimits,
    sources: BTreeMap<SocketAddr, Source>,
    /// The same sources by when they were last seen: the first is forgotten
    /// when the table is full.
    by_seen: BTreeSet<(Instant, SocketAddr)>,
    /// Bytes answers may still spend.
    credit: u64,
    /// Up to when the allowance has been paid into `credit`.
    accrued: Instant,
    /// The `max_rate` cap.
    rate: TokenBucket,
    stats: ReplyStats,
}

/// The key a source is counted under: its IP (IPv6: its /64), or with
/// `per_port` its whole address (a test network on one IP).
pub fn source_key(from: SocketAddr, per_port: bool) -> SocketAddr {
    if per_port {
        return from;
    }
    let ip = match from.ip() {
        IpAddr::V4(a) => IpAddr::V4(a),
        IpAddr::V6(a) => {
            let s = a.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    };
    SocketAddr::new(ip, 0)
}

impl ReplyBudget {
    /// Budgets starting at `now` with a full account.
    pub fn new(now: Instant, limits: ReplyLimits) -> ReplyBudget {
        ReplyBudget {
            sources: BTreeMap::new(),
            by_seen: BTreeSet::new(),
            credit: limits.max_credit,
            accrued: now,
            rate: TokenBucket::with_burst(limits.max_rate, limits.max_rate, now),
            stats: ReplyStats::default(),
            limits,
        }
    }

    /// New limits from `now` on: sources and the account start afresh, the
    /// counters go on.
    pub fn set_limits(&mut self, now: Instant, limits: ReplyLimits) {
        let stats = self.stats;
        *self = ReplyBudget::new(now, limits);
        self.stats = stats;
    }

    /// The counters.
    pub fn stats(&self) -> ReplyStats {
        self.stats
    }

    /// Sources remembered now.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Whether `key` is blocked at `now`.
    pub fn is_blocked(&self, now: Instant, key: &SocketAddr) -> bool {
        self.sources
            .get(key)
            .and_then(|s| s.blocked_until)
            .is_some_and(|t| now < t)
    }

    /// A query of `len` bytes arrived from `key` (see [`source_key`]): pays
    /// its share into the account, and says whether its source may be
    /// answered. `false` means drop it (counted).
    pub fn admit(&mut self, now: Instant, key: SocketAddr, len: usize) -> bool {
        let len = len as u64;
        self.stats.queries += 1;
        self.stats.query_bytes += len;
        self.accrue(now);
        let paid = len.saturating_mul(self.limits.credit_percent) / 100;
        self.credit = self.credit.saturating_add(paid).min(self.limits.max_credit);
        if self.limits.per_source_rate == 0 || self.limits.max_sources == 0 {
            return true;
        }
        let block = self.limits.block;
        let source = self.touch(now, key);
        if let Some(until) = source.blocked_until {
            if now < until {
                self.stats.dropped_by_source += 1;
                return false;
            }
            source.blocked_until = None;
        }
        if source.bucket.try_take(now, 1) {
            return true;
        }
        source.blocked_until = Some(now + block);
        self.stats.blocks += 1;
        self.stats.dropped_by_source += 1;
        false
    }

    /// An answer of `len` bytes is ready: whether the global budget pays for
    /// it (then it is counted as sent) or not (counted as dropped).
    pub fn try_send(&mut self, now: Instant, len: usize) -> bool {
        let len = len as u64;
        self.accrue(now);
        let capped = self.limits.max_rate > 0;
        if self.credit < len || (capped && self.rate.available(now) < len) {
            self.stats.dropped_by_budget += 1;
            return false;
        }
        self.credit -= len;
        if capped {
            // Cannot fail: checked just above at the same `now`.
            let _ = self.rate.try_take(now, len);
        }
        self.stats.replies += 1;
        self.stats.reply_bytes += len;
        true
    }

    /// Pays the allowance for the time since the last call into the account.
    fn accrue(&mut self, now: Instant) {
        let allowance = self.limits.allowance;
        let elapsed = now.saturating_duration_since(self.accrued);
        if allowance == 0 || self.credit >= self.limits.max_credit {
            // Nothing to add, or no room: the time is used up either way.
            self.accrued = self.accrued.max(now);
            return;
        }
        let add = u128::from(allowance) * elapsed.as_nanos() / 1_000_000_000;
        let add = u64::try_from(add).unwrap_or(u64::MAX);
        if add == 0 {
            return;
        }
        self.credit = self.credit.saturating_add(add).min(self.limits.max_credit);
        // Advance only by the time the bytes added account for, so
        // fractions of a byte are not lost between frequent calls.
        let used = u128::from(add) * 1_000_000_000 / u128::from(allowance);
        let used = Duration::from_nanos(u64::try_from(used).unwrap_or(u64::MAX));
        self.accrued = (self.accrued + used).min(now);
    }

    /// The source's entry, created (forgetting the least recently seen one
    /// if the table is full) or marked as seen now.
    fn touch(&mut self, now: Instant, key: SocketAddr) -> &mut Source {
        // Idle this long, a source is as good as new: unblocked, its
        // bucket full again.
        let refill = match self.limits.per_source_rate {
            0 => 0,
            rate => self.limits.per_source_burst.div_ceil(rate),
        };
        let idle = self.limits.block + Duration::from_secs(refill);
        while let Some(&(seen, oldest)) = self.by_seen.first() {
            if now.saturating_duration_since(seen) <= idle {
                break;
            }
            self.by_seen.pop_first();
            self.sources.remove(&oldest);
        }
        if let Some(s) = self.sources.get(&key) {
            self.by_seen.remove(&(s.seen, key));
        } else {
            while self.sources.len() >= self.limits.max_sources {
                let Some((_, oldest)) = self.by_seen.pop_first() else {
                    break;
                };
                self.sources.remove(&oldest);
            }
        }
        let (rate, burst) = (self.limits.per_source_rate, self.limits.per_source_burst);
        let source = self.sources.entry(key).or_insert_with(|| Source {
            bucket: TokenBucket::with_burst(rate, burst, now),
            blocked_until: None,
            seen: now,
        });
        source.seen = source.seen.max(now);
        self.by_seen.insert((source.seen, key));
        source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> SocketAddr {
        SocketAddr::from((i.to_be_bytes(), 6881))
    }

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    /// Limits with only the per-source part in play.
    fn per_source_only() -> ReplyLimits {
        ReplyLimits {
            credit_percent: 0,
            allowance: 0,
            max_credit: u64::MAX,
            max_rate: 0,
            ..ReplyLimits::default()
        }
    }

    #[test]
    fn a_source_over_its_rate_is_blocked_for_the_block_time() {
        let mut b = ReplyBudget::new(Instant::ZERO, per_source_only());
        let a = addr(0x1e00_0001);
        let admitted = (0..200).filter(|_| b.admit(at(0), a, 100)).count();
        assert_eq!(admitted, 50, "the burst, then nothing");
        assert_eq!(b.stats().blocks, 1);
        assert_eq!(b.stats().dropped_by_source, 150);
        // Blocked: even a polite rate is ignored until the block ends.
        for s in 1..300 {
            assert!(!b.admit(at(s * 1000), a, 100), "blocked at {s} s");
        }
        assert!(b.is_blocked(at(299_000), &a));
        assert!(b.admit(at(300_000), a, 100), "the block ends after 5 min");
        assert!(!b.is_blocked(at(300_000), &a));
        // Another source was never affected.
        assert!(b.admit(at(0), addr(0x1e00_0002), 100));
    }

    #[test]
    fn a_source_at_its_rate_is_always_admitted() {
        let mut b = ReplyBudget::new(Instant::ZERO, per_source_only());
        let a = addr(0x1e00_0001);
        // 5 a second for ten minutes, after an initial burst of 40.
        for _ in 0..40 {
            assert!(b.admit(at(0), a, 100));
        }
        for i in 0..3000 {
            assert!(b.admit(at(200 * i), a, 100), "query {i}");
        }
        assert_eq!(b.stats().dropped_by_source, 0);
    }

    #[test]
    fn many_new_sources_do_not_reset_a_blocked_one() {
        let limits = ReplyLimits {
            max_sources: 64,
            ..per_source_only()
        };
        let mut b = ReplyBudget::new(Instant::ZERO, limits);
        let flooder = addr(0x1e00_0001);
        while b.admit(at(0), flooder, 100) {}
        assert!(b.is_blocked(at(0), &flooder));
        // 10,000 spoofed sources, one query each, while the flooder keeps
        // sending: the table stays bounded and the flooder stays blocked.
        for i in 0..10_000u32 {
            let t = at(u64::from(i));
            assert!(b.admit(t, addr(0x2800_0000 + i), 100));
            assert!(!b.admit(t, flooder, 100), "flooder answered at {i}");
            assert!(b.tracked_sources() <= 64);
        }
        assert!(b.is_blocked(at(10_000), &flooder));
    }

    #[test]
    fn an_idle_source_is_forgotten_first() {
        let limits = ReplyLimits {
            max_sources: 2,
            ..per_source_only()
        };
        let mut b = ReplyBudget::new(Instant::ZERO, limits);
        let (x, y, z) = (addr(1), addr(2), addr(3));
        while b.admit(at(0), x, 100) {}
        assert!(b.admit(at(1), y, 100));
        assert!(!b.admit(at(2), x, 100), "x blocked, and seen again");
        assert!(b.admit(at(3), z, 100), "the table is full: y goes");
        assert!(b.is_blocked(at(3), &x), "x was kept");
        assert_eq!(b.tracked_sources(), 2);
    }

    #[test]
    fn idle_sources_are_forgotten_after_a_block_and_a_refill() {
        let mut b = ReplyBudget::new(at(0), per_source_only());
        for i in 0..100 {
            assert!(b.admit(at(0), addr(i), 100));
        }
        assert_eq!(b.tracked_sources(), 100);
        // Five minutes and ten seconds later, one new source: the others
        // are gone.
        assert!(b.admit(at(311_000), addr(1000), 100));
        assert_eq!(b.tracked_sources(), 1);
    }

    #[test]
    fn ipv6_sources_count_by_64() {
        let a: SocketAddr = "[2001:db8:1:2:aaaa::1]:6881".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:2:bbbb::9]:1234".parse().unwrap();
        let c: SocketAddr = "[2001:db8:1:3::1]:6881".parse().unwrap();
        assert_eq!(source_key(a, false), source_key(b, false));
        assert_ne!(source_key(a, false), source_key(c, false));
        assert_ne!(source_key(a, true), source_key(b, true));
        let v4 = addr(0x1e00_0001);
        assert_eq!(source_key(v4, false), SocketAddr::from(([30, 0, 0, 1], 0)));
    }

    #[test]
    fn answers_spend_what_queries_paid_plus_the_allowance() {
        let limits = ReplyLimits {
            per_source_rate: 0,
            credit_percent: 50,
            allowance: 1000,
            max_credit: 4000,
            max_rate: 0,
            ..ReplyLimits::default()
        };
        let mut b = ReplyBudget::new(Instant::ZERO, limits);
        // The account starts full: 4000 bytes.
        assert!(b.try_send(at(0), 4000));
        assert!(!b.try_send(at(0), 1), "empty");
        // A 100-byte query pays 50.
        assert!(b.admit(at(0), addr(1), 100));
        assert!(b.try_send(at(0), 50));
        assert!(!b.try_send(at(0), 1));
        // Half a second of allowance pays 500, fractions included.
        for ms in 1..=500 {
            b.accrue(at(ms));
        }
        assert!(b.try_send(at(500), 500));
        assert!(!b.try_send(at(500), 1));
        // A long quiet spell saves up no more than max_credit.
        assert!(!b.try_send(at(600_000), 4001));
        assert!(b.try_send(at(600_000), 4000));
        let s = b.stats();
        assert_eq!((s.replies, s.reply_bytes), (4, 8550));
        assert_eq!(s.dropped_by_budget, 4);
        assert_eq!((s.queries, s.query_bytes), (1, 100));
    }

    #[test]
    fn a_flood_from_many_sources_gets_fewer_bytes_than_it_sends() {
        // Every query comes from a new source, so only the byte budget
        // holds; each answer is 3.5 times its query.
        let limits = ReplyLimits::default();
        let mut b = ReplyBudget::new(Instant::ZERO, limits.clone());
        let (query, answer) = (95, 330);
        let mut t = Instant::ZERO;
        // 20,000 queries a second for 30 s.
        for i in 0..600_000u32 {
            t = Instant::ZERO + Duration::from_micros(50 * u64::from(i));
            if b.admit(t, addr(0x2800_0000 + i), query) {
                let _ = b.try_send(t, answer);
            }
        }
        let s = b.stats();
        let secs = t.since_epoch().as_secs() + 1;
        let bound = s.query_bytes * limits.credit_percent / 100
            + limits.allowance * secs
            + limits.max_credit;
        assert!(s.reply_bytes <= bound, "{s:?} over {bound}");
        assert!(s.reply_bytes <= s.query_bytes, "{s:?}");
        assert!(s.dropped_by_budget > 0 && s.replies > 0, "{s:?}");
        assert!(b.tracked_sources() <= limits.max_sources);
    }

    #[test]
    fn honest_traffic_is_answered_in_full() {
        // 60 queries a second from 300 sources for ten minutes, each
        // answered with 3.5 times its size (about 20 kB/s out): nothing
        // is dropped.
        let mut b = ReplyBudget::new(Instant::ZERO, ReplyLimits::default());
        let mut n = 0u64;
        for ms in (0..600_000).step_by(50) {
            for k in 0..3u32 {
                n += 1;
                let from = addr(0x1e00_0000 + ((n as u32 * 7 + k) % 300));
                assert!(b.admit(at(ms), from, 95));
                assert!(b.try_send(at(ms), 330), "query {n} at {ms} ms");
            }
        }
        assert_eq!(b.stats().dropped_by_budget + b.stats().dropped_by_source, 0);
    }

    #[test]
    fn unlimited_answers_everything_and_new_limits_keep_the_counters() {
        let mut b = ReplyBudget::new(Instant::ZERO, ReplyLimits::unlimited());
        for i in 0..100_000u64 {
            assert!(b.admit(at(i / 100), addr(1), 90));
            assert!(b.try_send(at(i / 100), 1400));
        }
        b.set_limits(at(1000), per_source_only());
        assert_eq!(b.stats().replies, 100_000);
        let admitted = (0..100).filter(|_| b.admit(at(1000), addr(1), 90)).count();
        assert_eq!(admitted, 50);
        assert_eq!(b.stats().queries, 100_100);
    }

    #[test]
    fn the_rate_cap_holds_whatever_came_in() {
        let limits = ReplyLimits {
            per_source_rate: 0,
            credit_percent: 100,
            max_credit: u64::MAX,
            max_rate: 10_000,
            ..ReplyLimits::default()
        };
        let mut b = ReplyBudget::new(Instant::ZERO, limits);
        let mut sent = 0u64;
        for ms in 0..10_000 {
            for _ in 0..10 {
                let _ = b.admit(at(ms), addr(1), 1000);
                if b.try_send(at(ms), 500) {
                    sent += 500;
                }
            }
        }
        // 10 s at 10 kB/s plus the one-second burst.
        assert!(sent <= 110_000, "{sent}");
        assert!(sent >= 99_000, "{sent}");
    }
}
