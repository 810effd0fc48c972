//! bittide on smol.
//!
//! Only a constructor: the [`Runtime`](bittide_driver::runtime::Runtime)
//! is the async-io implementation in `bittide-driver` (the reactor, timers
//! and blocking pool smol is made of) with smol's executor for tasks. The
//! event loop, sessions and disk code are all in `bittide-driver`.
//!
//! ```no_run
//! let outcome = bittide_smol::block_on(bittide_driver::client::run(
//!     bittide_smol::runtime(),
//!     # unimplemented!(),
//!     |_handle, _addr| {},
//!     |_progress, _event| {},
//! ));
//! ```

pub use bittide_driver as driver;
use bittide_driver::async_io::AsyncIoRuntime;

/// The runtime: async-io sockets and timers, tasks on smol's global
/// executor.
pub fn runtime() -> AsyncIoRuntime {
    AsyncIoRuntime::new(|future| smol::spawn(future).detach())
}

/// Runs a future to completion on the current thread (smol's `block_on`).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    smol::block_on(future)
}
