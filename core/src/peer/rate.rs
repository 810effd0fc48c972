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
        let r = m.rate(t);
        assert!((80_000..=100_000).contains(&r), "about 100 kB/s, got {r}");
        assert_eq!(m.total(), 500_000);
        t += Duration::from_secs(10);
        assert_eq!(m.rate(t), 0);
    }
}
