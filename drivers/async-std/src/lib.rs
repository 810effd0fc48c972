//! bittide on async-std — **deprecated**.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052 recommends smol);
//! this crate is kept for users who still run on it. It is a thin wrapper:
//! the [`Runtime`](bittide_driver::runtime::Runtime) is the same async-io
//! implementation the smol driver uses (async-std itself runs on async-io),
//! with async-std's executor for tasks. Nothing else depends on this
//! folder; deleting it breaks nothing. New code should use `bittide-smol`.

pub use bittide_driver as driver;
use bittide_driver::async_io::AsyncIoRuntime;

/// The runtime: async-io sockets and timers, tasks on async-std's
/// executor.
#[deprecated(note = "async-std is discontinued (RUSTSEC-2025-0052); use bittide-smol")]
pub fn runtime() -> AsyncIoRuntime {
    AsyncIoRuntime::new(|future| {
        async_std::task::spawn(future);
    })
}

/// Runs a future to completion (async-std's `block_on`).
#[deprecated(note = "async-std is discontinued (RUSTSEC-2025-0052); use bittide-smol")]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    async_std::task::block_on(future)
}
