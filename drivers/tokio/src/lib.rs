//! bittide on tokio: the [`Runtime`](bittide_driver::runtime::Runtime)
//! that runs `bittide-driver`'s one event loop on tokio
//! ([`runtime::TokioRuntime`]), and re-exports.
//!
//! Nothing else lives here (DESIGN.md, "Drivers are thin"): the loop, the
//! sessions and the tracker server's front ends are in `bittide-driver`,
//! generic over the runtime; the `bittide` binary is `bittide-cli`. An
//! embedder of this crate pays for no command-line parsing, progress bars
//! or JSON.

pub use bittide_driver as driver;

pub mod runtime;
