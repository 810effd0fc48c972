//! Tracker announces (BEP 3, BEP 12 tiers via [`Announcer`]): when they go
//! out, what they carry, and what the answers feed into the peer list.

use super::*;

/// One tracker as the torrent knows it, for the application's lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerStatus {
    /// Its announce URL.
    pub url: String,
    /// Its tier (BEP 12), from 0.
    pub tier: usize,
    /// When it last answered or failed (`None`: not yet).
    pub last: Option<Instant>,
    /// Peers in its last answer.
    pub peers: usize,
    /// Seeders and leechers it last counted, if it said.
    pub seeders: Option<u32>,
    /// See `seeders`.
    pub leechers: Option<u32>,
    /// Why its last announce failed (`None` after a success).
    pub error: Option<TrackerError>,
    /// When it is announced to next, if it is the one next in line.
    pub next: Option<Instant>,
}

/// What one tracker last said.
#[derive(Clone, Debug)]
pub(super) struct Heard {
    at: Instant,
    peers: usize,
    seeders: Option<u32>,
    leechers: Option<u32>,
    error: Option<TrackerError>,
}

impl Torrent {
    /// Every tracker of the torrent in tier order, with what it last said.
    pub fn trackers(&self) -> Vec<TrackerStatus> {
        let mut out = Vec::new();
        let next = self.announcer.next_announce();
        for (tier, urls) in self.announcer.tiers().iter().enumerate() {
            for url in urls {
                let heard = self.heard.get(url);
                out.push(TrackerStatus {
                    url: url.clone(),
                    tier,
                    last: heard.map(|h| h.at),
                    peers: heard.map_or(0, |h| h.peers),
                    seeders: heard.and_then(|h| h.seeders),
                    leechers: heard.and_then(|h| h.leechers),
                    error: heard.and_then(|h| h.error.clone()),
                    next: next.filter(|(u, _)| u == url).map(|(_, at)| at),
                });
            }
        }
        out
    }

    /// Announces to the trackers now, whatever their interval (the user
    /// wants peers sooner); nothing while paused, queued, checking or
    /// stopped (they announce when they resume).
    pub fn reannounce(&mut self, now: Instant) {
        self.now = now;
        if matches!(
            self.state,
            TorrentState::Paused | TorrentState::Stopped | TorrentState::Queued
        ) {
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

    /// More peers from an announce already answered: the tracker's answer
    /// over another address family (BEP 7: one announce per family we
    /// listen on). What the tracker said stays its first answer.
    pub fn handle_announce_peers(&mut self, now: Instant, url: &str, peers: Vec<SocketAddr>) {
        self.now = now;
        if let Some(heard) = self.heard.get_mut(url) {
            heard.peers += peers.len();
        }
        if !matches!(self.state, TorrentState::Stopped) {
            for a in peers {
                self.list.add(now, a, PeerSource::Tracker);
            }
            self.connect_more(now);
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
        // Only the torrent's own trackers are remembered (the map stays as
        // small as its tiers).
        let known = self.announcer.tiers().iter().flatten().any(|u| u == url);
        match result {
            Ok(resp) => {
                let heard = Heard {
                    at: now,
                    peers: resp.peers.len(),
                    seeders: resp.complete,
                    leechers: resp.incomplete,
                    error: None,
                };
                if known {
                    self.heard.insert(url.to_owned(), heard);
                }
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
                let last = self.heard.remove(url);
                let heard = Heard {
                    at: now,
                    peers: last.as_ref().map_or(0, |h| h.peers),
                    seeders: last.as_ref().and_then(|h| h.seeders),
                    leechers: last.as_ref().and_then(|h| h.leechers),
                    error: Some(error.clone()),
                };
                if known {
                    self.heard.insert(url.to_owned(), heard);
                }
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
