//! bittide on async-std — deprecated.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052 advises smol).
//! This crate will stay a thin wrapper over the same async-io runtime code
//! the smol driver uses, isolated so that deleting this folder breaks
//! nothing else. The runtime implementation lands with the runtime-drivers
//! issue; until then it re-exports the shared driver.

pub use bittide_driver as driver;
