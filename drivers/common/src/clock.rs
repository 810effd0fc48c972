//! The driver's clock: the one place the OS clock is read, turned into the
//! core's [`Instant`] (nanoseconds since the driver started).

use bittide_core::Instant;

/// Maps the OS monotonic clock to core instants.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Clock {
        Clock {
            start: std::time::Instant::now(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        Instant::from_duration(self.start.elapsed())
    }

    /// The OS instant of a core instant (for sleeping until it).
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.start + at.since_epoch()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// A seed from the OS's randomness, for the core machines a driver builds.
///
/// std's hash-map keys are drawn from the OS generator; four of them make
/// 32 bytes without another dependency.
pub fn os_seed() -> bittide_core::Seed {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6269_7474_6964_6500);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bittide_core::Seed::from_bytes(bytes)
}
