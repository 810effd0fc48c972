//! Torrents added by magnet link (BEP 9): fetched from peers found through
//! the link's trackers, `x.pe` addresses and the DHT, then started once
//! their metadata is in. A `btmh` link (BEP 52) names a v2 torrent: alone,
//! by its truncation; beside a `btih`, as the hybrid's second name.

use std::net::SocketAddr;

use super::{Engine, Output, Pending};
use crate::handles::TorrentId;
use crate::metainfo::{InfoHash, Magnet, MetainfoError, PeerAddr};
use crate::picker::Priority;
use crate::time::Instant;
use crate::torrent::{StartMode, Torrent, TorrentState};

impl Engine {
    /// A magnet's .torrent file once its metadata is in: the info
    /// dictionary as received (so the info-hash is the same) with the
    /// link's trackers.
    pub fn magnet_torrent_file(&self, id: TorrentId) -> Option<Vec<u8>> {
        self.torrents.get(&id)?.torrent_file()
    }

    /// Adds a magnet link: its metadata is fetched from peers (BEP 9) found
    /// through its `tr` trackers, its `x.pe` addresses (names are resolved
    /// with [`Output::Resolve`]) and the DHT. A magnet with only a v2
    /// hash (`btmh`, BEP 52) goes by its truncation and fetches the piece
    /// layers too; one with both is in both swarms. `None` without any
    /// info-hash, if the torrent is already in, or during a shutdown.
    pub fn add_magnet(&mut self, now: Instant, magnet: &Magnet) -> Option<TorrentId> {
        self.now = now;
        let v2_name = magnet.info_hash_v2.as_ref().map(InfoHash::truncated);
        let info_hash = magnet.wire_hash()?;
        let names: Vec<InfoHash> = std::iter::once(info_hash)
            .chain(v2_name.filter(|n| *n != info_hash))
            .collect();
        if names.iter().any(|h| self.by_hash.contains_key(h)) || self.shutdown.is_some() {
            return None;
        }
        let config = self.torrent_config();
        let id = self.insert_magnet(now, info_hash, magnet_tiers(magnet), config, &names);
        if let (Some(v2), Some(t)) = (magnet.info_hash_v2, self.torrents.get_mut(&id)) {
            t.set_v2_hash(v2);
        }
        self.rebalance(now);
        let peers: Vec<SocketAddr> = magnet
            .peers
            .iter()
            .filter_map(|p| match p {
                PeerAddr::Ip(a) => Some(*a),
                PeerAddr::Host(..) => None,
            })
            .collect();
        self.add_peers(now, id, peers);
        if let Some(t) = self.torrents.get_mut(&id) {
            t.add_web_seeds(now, magnet.web_seeds.iter().cloned());
        }
        for p in &magnet.peers {
            if let PeerAddr::Host(host, port) = p {
                let request = self.requests.next_id();
                self.pending.insert(request, Pending::Peer { torrent: id });
                self.out.push_back(Output::Resolve {
                    request,
                    host: format!("{host}:{port}"),
                });
            }
        }
        self.schedule_discovery(now, id, &names);
        self.magnets.insert(id, magnet.clone());
        Some(id)
    }

    /// A magnet's torrent under a new id, known by `names`: in the queue
    /// order (not queued while it fetches its metadata, but counted in the
    /// session's budgets before it connects), looked up nowhere yet. A
    /// download's magnet and an index's metadata fetch are both made here.
    pub(super) fn insert_magnet(
        &mut self,
        now: Instant,
        info_hash: InfoHash,
        trackers: Vec<Vec<String>>,
        config: crate::torrent::TorrentConfig,
        names: &[InfoHash],
    ) -> TorrentId {
        let id = TorrentId::new(self.next_torrent);
        self.next_torrent += 1;
        let torrent = Torrent::from_magnet(now, info_hash, trackers, config, self.rng.child_seed());
        self.policy.order.push(id);
        self.torrents.insert(id, torrent);
        for name in names {
            self.by_hash.insert(*name, id);
        }
        id
    }

    /// Starts a magnet whose metadata is in
    /// ([`TorrentEvent::MetadataReceived`](crate::torrent::TorrentEvent::MetadataReceived)) over the connections it already
    /// has, downloading only the files the link's `so=` names (BEP 53), if
    /// it names any. `start` says what is already on disk (the driver can
    /// tell only now that it knows the files). An error if the metadata is
    /// not in (or the magnet was started already).
    pub fn start_magnet(
        &mut self,
        now: Instant,
        id: TorrentId,
        start: StartMode,
    ) -> Result<(), MetainfoError> {
        self.now = now;
        let not_in = MetainfoError::MissingField { field: "info" };
        let Some(torrent) = self.torrents.get_mut(&id) else {
            return Err(not_in);
        };
        if torrent.state() != TorrentState::AwaitingStart {
            return Err(not_in);
        }
        torrent.start(now, start);
        let magnet = self.magnets.remove(&id);
        if let Some(magnet) = magnet.filter(|m| !m.select_only.is_empty()) {
            let files = torrent.info().layout.file_count() as u32;
            let priorities: Vec<Priority> = (0..files)
                .map(|i| {
                    if magnet.select_only.iter().any(|r| r.contains(&i)) {
                        Priority::Normal
                    } else {
                        Priority::Skip
                    }
                })
                .collect();
            torrent.set_file_priorities(now, &priorities);
        }
        // Now a download like any other: it may have to wait its turn.
        self.apply_queue(now);
        Ok(())
    }
}

/// A magnet's trackers as tiers: each its own, as libtorrent does.
fn magnet_tiers(magnet: &Magnet) -> Vec<Vec<String>> {
    magnet.trackers.iter().map(|t| vec![t.clone()]).collect()
}
