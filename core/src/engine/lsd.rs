//! The engine's local service discovery (BEP 14): every public torrent is
//! announced to the multicast groups while it runs, and hosts on our
//! network announcing the same torrents become its peers. Never a private torrent (BEP 27),
//! like the DHT; a magnet is announced until its metadata says it is
//! private.

use super::{Engine, Output};
use crate::handles::TorrentId;
use crate::lsd::LocalDiscovery;
use crate::metainfo::InfoHash;
use crate::time::Instant;
use crate::torrent::peers::PeerSource;
use crate::torrent::TorrentState;

impl Engine {
    /// Starts announcing torrent `id` (under each of its `names`: a
    /// hybrid has two, BEP 52) on the DHT and the local network.
    pub(super) fn schedule_discovery(&mut self, now: Instant, id: TorrentId, names: &[InfoHash]) {
        if let Some(d) = &mut self.dht {
            d.schedules.add(now, id);
        }
        if let Some(lsd) = &mut self.lsd {
            for name in names {
                lsd.add(now, *name);
            }
        }
    }

    /// Stops announcing torrent `id` anywhere (it left, or its metadata
    /// said private).
    pub(super) fn unschedule_discovery(&mut self, id: TorrentId) {
        if let Some(d) = &mut self.dht {
            d.schedules.remove(id);
        }
        let names = self.torrents.get(&id).map(|t| t.info().names());
        if let (Some(lsd), Some(names)) = (&mut self.lsd, names) {
            for name in &names {
                lsd.remove(name);
            }
        }
    }

    /// Sends what is due and hands the peers found to their torrents.
    pub(super) fn collect_lsd(&mut self, now: Instant) {
        let Some(lsd) = &mut self.lsd else {
            return;
        };
        if lsd.poll_timeout().is_some_and(|t| t <= now) && self.shutdown.is_none() {
            lsd.handle_timeout(now);
        }
        while let Some((to, payload)) = lsd.poll_transmit() {
            self.out.push_back(Output::Udp { to, payload });
        }
        let mut found = Vec::new();
        while let Some(p) = lsd.poll_peer() {
            found.push(p);
        }
        for p in found {
            let id = self.by_hash.get(&p.info_hash).copied();
            if let Some(t) = id
                .and_then(|id| self.torrents.get_mut(&id))
                .filter(|t| !t.is_private())
            {
                t.add_peers_named(now, vec![p.addr], PeerSource::Lsd, p.info_hash);
            }
        }
    }

    /// Torrent `id` changed state: announced while it fetches its
    /// metadata, downloads or seeds (the states the DHT looks up), not
    /// while checking, paused, queued or stopped.
    pub(super) fn lsd_state_changed(&mut self, now: Instant, id: TorrentId, state: TorrentState) {
        let running = matches!(
            state,
            TorrentState::FetchingMetadata | TorrentState::Downloading | TorrentState::Seeding
        );
        if let (Some(lsd), Some(t)) = (&mut self.lsd, self.torrents.get(&id)) {
            for name in t.info().names() {
                lsd.set_active(now, &name, running);
            }
        }
    }

    /// When the next announce is due (none during a shutdown).
    pub(super) fn lsd_deadline(&self) -> Option<Instant> {
        self.lsd
            .as_ref()
            .filter(|_| self.shutdown.is_none())
            .and_then(LocalDiscovery::poll_timeout)
    }
}
