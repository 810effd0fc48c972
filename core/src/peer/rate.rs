//! Transfer rates over a short sliding window, on the caller's clock.

use std::time::Duration;

use crate::time::Instant;

const SLOTS: usize = 5;
const SLOT: Duration = Duration::from_secs(1);

/// Bytes per second over the last few seconds.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    slots: [u64; SLOTS],
    /// Start of the current slot.
    current_start: Instant,
    current: usize,
    total: u64,
}

impl RateMeter {
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.current_start);
        let steps = (elapsed.as_nanos() / SLOT.as_nanos()).min(SLOTS as u128 + 1) as usize;
        for _ in 0..steps {
            self.current = (self.current + 1) % SLOTS;
            self.slots[self.current] = 0;
        }
        if steps > 0 {
            let whole = elapsed.as_nanos() / SLOT.as_nanos();
            let whole = u64::try_from(whole).unwrap_or(u64::MAX);
            self.current_start = self
                .current_start
                .saturating_add(SLOT.saturating_mul(u32::try_from(whole).unwrap_or(u32::MAX)));
        }
    }

    /// Counts `bytes` transferred at `now`.
    pub fn add(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        self.slots[self.current] += bytes;
        self.total += bytes;
    }

    /// Bytes per second over the last `SLOTS - 1` whole seconds and the
    /// current partial one.
    pub fn rate(&mut self, now: Instant) -> u64 {
        self.advance(now);
        let sum: u64 = self.slots.iter().sum();
        sum / SLOTS as u64
    }

    /// [`rate`](RateMeter::rate) without moving the window (for readers
    /// that hold `&self`, like the application's peer lists).
    pub fn rate_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.current_start);
        let steps = (elapsed.as_nanos() / SLOT.as_nanos()).min(SLOTS as u128) as usize;
        // The `steps` slots after the current one would be emptied.
        let stale: u64 = (1..=steps)
            .map(|i| self.slots[(self.current + i) % SLOTS])
            .sum();
        let sum: u64 = self.slots.iter().sum();
        sum.saturating_sub(stale) / SLOTS as u64
    }

    /// All bytes ever counted.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_flow_and_decay() {
        let mut m = RateMeter::default();
        let mut t = Instant::ZERO;
        for _ in 0..50 {
            m.add(t, 10_000);
            t += Duration::from_millis(100);
        }
        assert_eq!(m.rate_at(t), m.clone().rate(t));
        let r = m.rate(t);
        assert!((80_000..=100_000).contains(&r), "about 100 kB/s, got {r}");
        assert_eq!(m.total(), 500_000);
        assert_eq!(
            m.rate_at(t + Duration::from_secs(2)),
            m.clone().rate(t + Duration::from_secs(2))
        );
        t += Duration::from_secs(10);
        assert_eq!(m.rate_at(t), 0);
        assert_eq!(m.rate(t), 0);
    }
}

/// A token bucket: at most `rate` bytes per second on average, bursts of
/// up to a quarter second's worth (and at least a few blocks).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket for `rate` bytes/s (0 means unlimited), full at `now`.
    pub fn new(rate: u64, now: Instant) -> TokenBucket {
        let burst = (rate / 4).max(4 * 16 * 1024);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// A bucket for `rate` units/s holding at most `burst` (for counting
    /// messages rather than bytes).
    pub fn with_burst(rate: u64, burst: u64, now: Instant) -> TokenBucket {
        let burst = burst.max(1);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Changes the rate (0: unlimited) keeping the tokens saved so far (up
    /// to the new burst): a limit adjusted every second must not hand out
    /// a fresh burst each time.
    pub fn set_rate(&mut self, rate: u64, now: Instant) {
        if rate == self.rate {
            return;
        }
        if self.rate > 0 {
            self.refill(now);
        } else {
            self.last = now;
        }
        let full = self.rate == 0;
        self.rate = rate;
        self.burst = (rate / 4).max(4 * 16 * 1024);
        self.tokens = if full {
            self.burst
        } else {
            self.tokens.min(self.burst)
        };
    }

    /// The rate in bytes/s (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether the bucket limits anything.
    pub fn is_limited(&self) -> bool {
        self.rate > 0
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let add = (u128::from(self.rate) * elapsed.as_nanos() / 1_000_000_000) as u64;
        if add > 0 {
            self.tokens = (self.tokens + add).min(self.burst);
            // Advance only by the time the added tokens account for, so
            // fractions are not lost.
            let used = Duration::from_nanos(
                (u128::from(add) * 1_000_000_000 / u128::from(self.rate)) as u64,
            );
            self.last = (self.last + used).min(now);
        }
    }

    /// Tokens available now (`u64::MAX` when unlimited).
    pub fn available(&mut self, now: Instant) -> u64 {
        if self.rate == 0 {
            return u64::MAX;
        }
        self.refill(now);
        self.tokens
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, now: Instant, n: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// When `n` tokens will be available (now if they are).
    pub fn ready_at(&self, now: Instant, n: u64) -> Instant {
        if self.rate == 0 {
            return now;
        }
        let elapsed = now.saturating_duration_since(self.last);
        let add = (u128::from(self.rate) * elapsed.as_nanos() / 1_000_000_000) as u64;
        let tokens = self.tokens.saturating_add(add).min(self.burst);
        let missing = n.min(self.burst).saturating_sub(tokens);
        let wait = Duration::from_nanos(
            (u128::from(missing) * 1_000_000_000).div_ceil(u128::from(self.rate)) as u64,
        );
        now + wait
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn average_rate_is_respected() {
        let mut b = TokenBucket::new(100_000, Instant::ZERO);
        let mut now = Instant::ZERO;
        let mut sent = 0u64;
        while now < Instant::ZERO + Duration::from_secs(10) {
            if b.try_take(now, 16384) {
                sent += 16384;
            } else {
                now = b.ready_at(now, 16384);
            }
        }
        // 10 s at 100 kB/s plus the initial burst.
        assert!(sent <= 1_000_000 + 65_536 + 16384, "{sent}");
        assert!(sent >= 1_000_000 - 16384, "{sent}");
        assert!(TokenBucket::new(0, Instant::ZERO).try_take(Instant::ZERO, u64::MAX));
    }
}
