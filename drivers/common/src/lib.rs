//! # bittide-driver
//!
//! Everything the drivers share, written once: the core does no I/O, the
//! runtime crates (`bittide-tokio`, `bittide-smol`, `bittide-async-std`)
//! hold only their runtime glue, and what lies between lives here.
//!
//! Today that is the clock ([`clock`]), the file-system side of `bittide
//! create` ([`content`]: walking the content, reading it in torrent order
//! and hashing pieces on every core), and tracker requests ([`tracker`]:
//! HTTP(S) with rustls, and the UDP client loop). The event loop over a small `Runtime` trait (timers, UDP,
//! TCP, spawn, spawn_blocking), as DESIGN.md describes it, joins this crate
//! with the driver-loop issue.

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
pub mod resume;
pub mod runtime;
pub mod tracker;
pub mod tracker_server;
pub mod units;
