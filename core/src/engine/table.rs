//! The engine's torrents, and which of them changed since the engine last
//! looked: with hundreds of torrents in one session, a turn of the loop
//! must cost what it touches, not what the session holds.
//!
//! Every mutable access marks the torrent *touched*. Only touched
//! torrents are drained of outputs and have their deadline read again;
//! the others' deadlines wait, sorted, in the timer table
//! ([`Timers`](super::timers::Timers)). A torrent changes only through a
//! mutable access, so nothing is missed.

use std::collections::{btree_map, BTreeMap, BTreeSet};

use crate::handles::TorrentId;
use crate::torrent::Torrent;

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct TorrentTable {
    map: BTreeMap<TorrentId, Torrent>,
    touched: BTreeSet<TorrentId>,
}

impl TorrentTable {
    pub(super) fn get(&self, id: &TorrentId) -> Option<&Torrent> {
        self.map.get(id)
    }

    /// The torrent, marked touched.
    pub(super) fn get_mut(&mut self, id: &TorrentId) -> Option<&mut Torrent> {
        let t = self.map.get_mut(id)?;
        self.touched.insert(*id);
        Some(t)
    }

    pub(super) fn contains_key(&self, id: &TorrentId) -> bool {
        self.map.contains_key(id)
    }

    pub(super) fn insert(&mut self, id: TorrentId, t: Torrent) {
        self.touched.insert(id);
        self.map.insert(id, t);
    }

    /// Removes a torrent; it stays touched, so its deadline leaves the
    /// timer table at the next update (else a past deadline of a torrent
    /// that is gone would wake the loop forever).
    pub(super) fn remove(&mut self, id: &TorrentId) -> Option<Torrent> {
        self.touched.insert(*id);
        self.map.remove(id)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(super) fn keys(&self) -> btree_map::Keys<'_, TorrentId, Torrent> {
        self.map.keys()
    }

    pub(super) fn values(&self) -> btree_map::Values<'_, TorrentId, Torrent> {
        self.map.values()
    }

    pub(super) fn iter(&self) -> btree_map::Iter<'_, TorrentId, Torrent> {
        self.map.iter()
    }

    /// The torrents touched since [`take_touched`](Self::take_touched).
    pub(super) fn touched(&self) -> Vec<TorrentId> {
        self.touched.iter().copied().collect()
    }

    /// The torrents touched, forgetting them (their deadlines are read
    /// again now).
    pub(super) fn take_touched(&mut self) -> BTreeSet<TorrentId> {
        std::mem::take(&mut self.touched)
    }
}
