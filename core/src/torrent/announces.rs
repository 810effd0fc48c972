//! Tracker announces (BEP 3, BEP 12 tiers via [`Announcer`]): when they go
//! out, what they carry, and what the answers feed into the peer list.

use super::*;

impl Torrent {
    /// Announces to the trackers now, whatever their interval (the user
    /// wants peers sooner); nothing while paused, checking or stopped
    /// (they announce when they resume).
    pub fn reannounce(&mut self, now: Instant) {
        self.now = now;
        if matches!(self.state, TorrentState::Paused | TorrentState::Stopped) {
            return;
        }
        self.announcer.reannounce(now);
        self.pump_announces(now);
    }

    /// Emits every announce that is due.
    pub(super) fn pump_announces(&mut self, now: Instant) {
        if matches!(self.state, TorrentState::Checking | TorrentState::Paused) {
            return;
        }
        while let Some(due) = self.announcer.poll_announce(now) {
            let (uploaded, downloaded, mut left) = self.counters();
            if self.fetch.is_some() {
                // Unknown until the metadata arrives; any non-zero value
                // makes us a leecher to the tracker.
                left = 1;
            }
            let request = AnnounceRequest {
                info_hash: self.info.info_hash,
                peer_id: self.config.peer_id,
                port: self.config.listen_port,
                uploaded,
                downloaded,
                left,
                event: due.event,
                numwant: self.config.numwant,
                key: Some(self.key),
                tracker_id: self.tracker_ids.get(&due.url).cloned(),
                ip: None,
            };
            self.out.push_back(TorrentOutput::Announce {
                url: due.url,
                request,
            });
        }
    }

    /// The result of a [`TorrentOutput::Announce`]: the peers go to the
    /// peer list.
    pub fn handle_announce(
        &mut self,
        now: Instant,
        url: &str,
        result: Result<AnnounceResponse, TrackerError>,
    ) {
        self.now = now;
        match result {
            Ok(resp) => {
                self.announcer.handle_success(now, url, &resp);
                if let Some(id) = &resp.tracker_id {
                    self.tracker_ids.insert(url.to_owned(), id.clone());
                }
                self.emit(TorrentEvent::TrackerReply {
                    url: url.to_owned(),
                    peers: resp.peers.len(),
                });
                if !matches!(self.state, TorrentState::Stopped) {
                    for a in resp.peers {
                        self.list.add(now, a, PeerSource::Tracker);
                    }
                    self.connect_more(now);
                }
            }
            Err(error) => {
                self.announcer.handle_failure(now, url);
                self.emit(TorrentEvent::TrackerError {
                    url: url.to_owned(),
                    error,
                });
            }
        }
        self.pump_announces(now);
    }
}
