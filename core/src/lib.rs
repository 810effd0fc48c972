//! # bittide-core
//!
//! The protocol half of bittide: codecs and deterministic state machines for
//! BitTorrent, with no I/O at all. Nothing in this crate touches a socket, a
//! file, a clock, a thread or the OS random generator; drivers (see
//! `drivers/` in the repository) feed it bytes and timestamps and carry out
//! what it asks for.
//!
//! The crate is layered in three tiers (DESIGN.md):
//!
//! 1. **Codecs**, stateless and time-free: [`bencode`], [`metainfo`]
//!    (`.torrent` files, the file layout, torrent building) and magnet URIs
//!    ([`metainfo::magnet`]).
//! 2. **Policy data structures** (routing table, piece picker, …).
//! 3. **Protocol machines** driven by `handle_*` inputs and polled for output.
//!
//! The shared primitives every machine uses are here at the top:
//! [`Instant`] (time is always passed in), [`Seed`]/[`Rng`] (randomness is
//! always seeded), [`Reader`] (the checked cursor all decoders use) and the
//! error types that say who is at fault ([`DecodeError`], [`PeerError`],
//! [`UsageError`], and the umbrella [`Error`]).
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bencode;
mod bitfield;
mod coding;
pub mod compact;
pub mod dht;
pub mod engine;
mod error;
mod family;
mod handles;
pub mod krpc;
pub mod lsd;
pub mod metainfo;
pub mod mse;
pub mod peer;
pub mod picker;
mod rng;
mod time;
pub mod torrent;
pub mod tracker;
pub mod utp;
pub mod webseed;
pub mod wire;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use bitfield::Bitfield;
pub use coding::Reader;
pub use error::{DecodeError, DecodeErrorKind, Error, PeerError, UsageError};
pub use family::IpFamily;
pub use handles::{ConnId, ConnIds, TorrentId};
pub use metainfo::{InfoHash, PieceIndex};
pub use rng::{Rng, Seed};
pub use time::Instant;
