//! bittide on smol.
//!
//! This crate will hold only a `Runtime` implementation on async-io /
//! async-net / blocking, a constructor and re-exports (DESIGN.md, "Drivers
//! are thin"). The event loop itself lives once in `bittide-driver`. The
//! runtime implementation lands with the runtime-drivers issue; until then
//! this crate re-exports the shared driver so the workspace layout is final.

pub use bittide_driver as driver;
