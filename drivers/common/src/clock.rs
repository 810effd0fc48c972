//! The OS's randomness ([`os_seed`]) for the core machines a driver builds,
//! and the OS clock for the blocking one-shot tools that run off any
//! runtime ([`crate::dht_client`], the UDP tracker exchange in
//! [`crate::tracker`]). The event loop never reads either clock: its time
//! is `Runtime::now`.

use bittide_core::Instant;

/// The OS monotonic clock as core instants, for blocking tools (nanoseconds
/// since the clock was made).
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
