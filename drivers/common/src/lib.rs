//! # bittide-driver
//!
//! Everything the drivers share, written once: the core does no I/O, the
//! runtime crates (`bittide-tokio`, `bittide-smol`, `bittide-async-std`)
//! hold only their runtime glue, and what lies between lives here:
//!
//! - the event loop ([`driver`]) over a small [`runtime::Runtime`] trait
//!   (clock, timers, UDP, TCP, spawn, a blocking pool), and what an
//!   application sends it and asks it ([`control`]);
//! - a long-lived session of many torrents kept in a state folder and
//!   controlled through a handle ([`session`]), what `bittide daemon` runs;
//! - a whole download or seed session over any runtime ([`client`]), with
//!   its storage ([`disk`]) and resume data ([`resume`]);
//! - the file-system side of `bittide create` ([`content`]), tracker
//!   requests ([`tracker`]), a tracker server's front ends
//!   ([`tracker_server`]) and a blocking DHT node for one-shot commands
//!   ([`dht_client`]);
//! - the suite every runtime runs ([`conformance`]).

#[cfg(feature = "async-io")]
pub mod async_io;
pub mod client;
pub mod clock;
pub mod conformance;
pub mod content;
pub mod control;
pub mod dht_client;
pub mod disk;
pub mod driver;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod harvest;
pub mod listen;
mod lsd;
pub mod receive;
pub mod resume;
pub mod runtime;
pub mod session;
pub mod sockets;
pub mod tracker;
pub mod tracker_server;
pub mod units;
pub mod web_seed;
