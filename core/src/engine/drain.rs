//! From each torrent's outputs to the engine's: connections recorded in
//! the routing map as they open and forgotten as they close, disk jobs
//! tagged with their torrent, announces handed to the trackers, and what a
//! torrent's events mean for the engine (a complete torrent's empty files,
//! a magnet's metadata).

use super::{DiskOp, Engine, Event, Output, Pending};
use crate::handles::TorrentId;
use crate::torrent::{Torrent, TorrentEvent, TorrentOutput, TorrentState};
use crate::tracker::AnnounceRequest;

impl Engine {
    /// Moves every torrent's outputs into the engine's queue.
    pub(super) fn drain_torrents(&mut self) {
        // The touched ones only; draining one can touch another (a
        // magnet's metadata), which is drained in the next round.
        let mut drained = 0;
        loop {
            let ids = self.torrents.touched();
            if ids.len() == drained {
                break;
            }
            drained = ids.len();
            for id in ids {
                self.drain_torrent(id);
            }
        }
    }

    /// Moves one torrent's outputs into the engine's queue.
    pub(super) fn drain_torrent(&mut self, id: TorrentId) {
        loop {
            let Some(o) = self.torrents.get_mut(&id).and_then(Torrent::poll_output) else {
                break;
            };
            let now = self.now;
            match o {
                TorrentOutput::Connect { conn, addr } => {
                    self.conns.insert(conn, id);
                    if let Some(t) = self.torrents.get(&id) {
                        let info_hash = t.name_of(conn).0;
                        self.encrypt_outgoing(conn, addr, info_hash);
                    }
                    self.stream_connect(now, conn, addr);
                }
                TorrentOutput::Send { conn, data } => {
                    let data = self.encrypt_send(conn, data);
                    self.stream_send(conn, data);
                }
                TorrentOutput::Close { conn } => {
                    self.conns.remove(&conn);
                    self.encryption.forget(conn);
                    self.stream_close(conn);
                }
                TorrentOutput::Verify {
                    first,
                    pieces,
                    blocks,
                    slices,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Verify {
                        first,
                        pieces,
                        blocks,
                        slices,
                    },
                }),
                TorrentOutput::Write {
                    block,
                    blocks,
                    slices,
                    hasher,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Write {
                        block,
                        blocks,
                        slices,
                        hasher,
                    },
                }),
                TorrentOutput::Read {
                    conn,
                    block,
                    slices,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Read {
                        conn,
                        block,
                        slices,
                    },
                }),
                TorrentOutput::Check {
                    piece,
                    slices,
                    hash,
                } => self.out.push_back(Output::Disk {
                    torrent: id,
                    op: DiskOp::Check {
                        piece,
                        slices,
                        hash,
                    },
                }),
                TorrentOutput::Announce { url, request } => {
                    // A hybrid announces under its other name too (BEP
                    // 52), as libtorrent does: v2-only clients look for it
                    // by its v2 name, v1-only ones by its v1 hash.
                    let other = self.torrents.get(&id).and_then(|t| t.info().other_hash());
                    let v2 = other.map(|info_hash| AnnounceRequest {
                        info_hash,
                        ..request.clone()
                    });
                    self.trackers
                        .announce(now, id, url.clone(), request, &mut self.requests);
                    if let Some(request) = v2 {
                        self.trackers
                            .announce(now, id, url, request, &mut self.requests);
                    }
                    self.collect_trackers(now);
                }
                TorrentOutput::WebSeed { job, requests } => {
                    let request = self.requests.next_id();
                    let pending = Pending::WebSeed { torrent: id, job };
                    self.pending.insert(request, pending);
                    self.out.push_back(Output::WebSeed { request, requests });
                }
                TorrentOutput::Event(e) => {
                    if self.fetch_event(now, id, &e) {
                        continue;
                    }
                    // Every wanted piece is on disk (downloaded, or found
                    // so by the start-up check): the empty files too.
                    let complete = matches!(
                        e,
                        TorrentEvent::Finished | TorrentEvent::StateChanged(TorrentState::Seeding)
                    );
                    if let TorrentEvent::StateChanged(state) = e {
                        self.policy.dirty = true;
                        self.lsd_state_changed(now, id, state);
                    }
                    if e == TorrentEvent::MetadataReceived {
                        self.metadata_received(id);
                    }
                    if let Some(files) = complete.then(|| self.empty_files.remove(&id)).flatten() {
                        let op = DiskOp::CreateEmpty { files };
                        self.out.push_back(Output::Disk { torrent: id, op });
                    }
                    self.out.push_back(Output::Event(Event::Torrent(id, e)))
                }
            }
        }
    }

    /// A magnet's metadata is in: its empty files are known now, and a
    /// private torrent leaves the DHT (BEP 27).
    fn metadata_received(&mut self, id: TorrentId) {
        let Some(t) = self.torrents.get(&id) else {
            return;
        };
        let private = t.is_private();
        let info = t.info().clone();
        // A hybrid found by one of its names learns the other from the
        // metadata (BEP 52): peers of that swarm reach it from now on.
        if let Some(v2) = info.other_hash() {
            self.by_hash.entry(v2).or_insert(id);
        }
        self.note_empty_files(id, &info);
        if private {
            self.unschedule_discovery(id);
        }
    }
}
