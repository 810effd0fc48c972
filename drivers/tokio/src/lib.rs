//! bittide on tokio, and home of the `bittide` command-line client.
//!
//! This crate will hold only the tokio `Runtime` implementation for the
//! shared event loop in `bittide-driver`, a constructor and the CLI
//! (DESIGN.md, "Drivers are thin"). The runtime lands with the driver-loop
//! issue; today it holds the tracker server's front ends
//! ([`tracker_server`]), and the CLI's `info`, `create` and `tracker`
//! commands.

pub use bittide_driver as driver;

pub mod runtime;
