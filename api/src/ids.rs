//! The small numbers some protocols address torrents by (Transmission's
//! `id`, rqbit's `id`), one space for the whole daemon: a torrent gets
//! the next number the first time any protocol lists it, keeps it for the
//! daemon's life, and a number is never reused.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bittide_core::InfoHash;
use bittide_driver::session::views::TorrentView;

/// Removed ids remembered at once (for Transmission's `recently-active`).
const MAX_REMOVED: usize = 1024;

/// Torrent ids, shared by every request.
#[derive(Default)]
pub(crate) struct TorrentIds {
    inner: Mutex<Ids>,
}

#[derive(Default)]
struct Ids {
    by_hash: BTreeMap<InfoHash, i64>,
    by_id: BTreeMap<i64, InfoHash>,
    last: i64,
    removed: VecDeque<(i64, Instant)>,
}

impl TorrentIds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ids> {
        // Every change is one short call; a poisoned lock holds usable ids.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of `hash`, given one if it has none yet.
    pub(crate) fn id_of(&self, hash: InfoHash) -> i64 {
        let mut ids = self.lock();
        if let Some(id) = ids.by_hash.get(&hash) {
            return *id;
        }
        ids.last += 1;
        let id = ids.last;
        ids.by_hash.insert(hash, id);
        ids.by_id.insert(id, hash);
        id
    }

    /// Gives every listed torrent an id, in list (queue) order, as
    /// Transmission numbers torrents in the order it loads them.
    pub(crate) fn learn(&self, list: &[TorrentView]) {
        for t in list {
            self.id_of(t.info_hash);
        }
    }

    /// The torrent with id `id`, if it is still there.
    pub(crate) fn hash_of(&self, id: i64) -> Option<InfoHash> {
        self.lock().by_id.get(&id).copied()
    }

    /// Forgets a removed torrent's id (kept a while for
    /// [`TorrentIds::removed_within`]).
    pub(crate) fn removed(&self, hash: InfoHash) {
        let mut ids = self.lock();
        if let Some(id) = ids.by_hash.remove(&hash) {
            ids.by_id.remove(&id);
            if ids.removed.len() >= MAX_REMOVED {
                ids.removed.pop_front();
            }
            ids.removed.push_back((id, Instant::now()));
        }
    }

    /// Ids removed within `recent`.
    pub(crate) fn removed_within(&self, recent: Duration) -> Vec<i64> {
        let mut ids = self.lock();
        let now = Instant::now();
        while ids
            .removed
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > recent)
        {
            ids.removed.pop_front();
        }
        ids.removed.iter().map(|(id, _)| *id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_never_reused() {
        let ids = TorrentIds::default();
        let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
        assert_eq!(ids.id_of(a), 1);
        assert_eq!(ids.id_of(b), 2);
        assert_eq!(ids.id_of(a), 1);
        ids.removed(a);
        assert_eq!(ids.hash_of(1), None);
        assert_eq!(ids.removed_within(Duration::from_secs(60)), vec![1]);
        assert_eq!(ids.id_of(a), 3, "a torrent added again gets a new number");
        assert_eq!(ids.hash_of(2), Some(b));
    }
}
