//! Opaque handles between machines (quinn-proto's `ConnectionHandle`
//! style): small copyable numbers that mean nothing outside the machine
//! that issued them. Nothing outside the core can make one up: torrent ids
//! come from [`Engine`](crate::engine::Engine), connection ids from a
//! [`ConnIds`] source, and neither says anything about the other.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One peer connection, as the engine and its torrents name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// A connection id from its number (tests and fuzz harnesses name
    /// connections themselves).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) const fn new(raw: u64) -> ConnId {
        ConnId(raw)
    }

    /// The number, for logs and as a map key outside the core.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Where connection ids come from: one counter per engine, shared by the
/// engine (incoming connections) and each of its torrents (outgoing ones),
/// so an id is never handed out twice and carries no meaning. Clones share
/// the counter.
#[derive(Clone, Debug, Default)]
pub struct ConnIds(Arc<AtomicU64>);

impl ConnIds {
    /// A fresh source, starting at 1.
    pub fn new() -> ConnIds {
        ConnIds::default()
    }

    /// The next unused id.
    pub fn next_id(&self) -> ConnId {
        ConnId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// One torrent inside an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TorrentId(u64);

impl TorrentId {
    /// A torrent id from its number (the engine's counter).
    pub(crate) const fn new(raw: u64) -> TorrentId {
        TorrentId(raw)
    }

    /// The number, for logs, APIs and file names; ids are never reused
    /// within one engine.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TorrentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "torrent#{}", self.0)
    }
}
