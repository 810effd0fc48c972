//! bittide on tokio, and home of the `bittide` command-line client.
//!
//! This crate will hold only the tokio `Runtime` implementation for the
//! shared event loop in `bittide-driver`, a constructor and the CLI
//! (DESIGN.md, "Drivers are thin"). The runtime lands with the driver-loop
//! issue; today the CLI's `info` and `create` commands need no runtime.

pub use bittide_driver as driver;
