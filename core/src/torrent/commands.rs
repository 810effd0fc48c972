//! Commands from the application: peers to add, pause, resume, stop, file
//! priorities and the piece order.

use super::*;

impl Torrent {
    /// Adds peer addresses (from a tracker, the DHT, PEX or the user).
    pub fn add_peers(
        &mut self,
        now: Instant,
        addrs: impl IntoIterator<Item = SocketAddr>,
        source: PeerSource,
    ) {
        let name = self.info.info_hash;
        self.add_peers_named(now, addrs, source, name);
    }

    /// Adds addresses found under `name`: those a hybrid torrent's v2
    /// swarm gave (BEP 52) are dialled with its v2 name.
    pub fn add_peers_named(
        &mut self,
        now: Instant,
        addrs: impl IntoIterator<Item = SocketAddr>,
        source: PeerSource,
        name: InfoHash,
    ) {
        self.now = now;
        let v2 = self.info.other_hash() == Some(name);
        for a in addrs {
            self.list.add(now, a, source);
            if v2 {
                self.list.set_v2_swarm(&a);
            }
        }
        self.connect_more(now);
    }

    /// Closes every connection and stops until [`resume`](Torrent::resume)
    /// (a queued torrent stays out of the queue until then too).
    pub fn pause(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            TorrentState::Paused | TorrentState::Stopped => return,
            // Already out of the running; it keeps the state it resumes to.
            TorrentState::Queued => {}
            s => self.paused_from = s,
        }
        // The state first: nothing reconnects while peers go.
        self.set_state(TorrentState::Paused);
        self.pump_ready(now, true);
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.disconnect(now, c, CloseReason::Local, true);
        }
    }

    /// Closes every connection for good: a stopped torrent does nothing
    /// more (its owner saves resume data and drops it).
    pub fn stop(&mut self, now: Instant) {
        self.now = now;
        if self.state == TorrentState::Stopped {
            return;
        }
        self.pump_ready(now, true);
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.drop_peer(now, c, CloseReason::Local, true);
        }
        self.checks_pending.clear();
        self.set_state(TorrentState::Stopped);
        self.announcer.stop(now);
        self.pump_announces(now);
    }

    /// Resumes after [`pause`](Torrent::pause) (an engine with active
    /// limits may [`queue`](Torrent::queue) it instead).
    pub fn resume(&mut self, now: Instant) {
        self.now = now;
        if self.state == TorrentState::Paused {
            self.run_again(now);
        }
    }

    /// Sets file priorities (one per file, padding files ignored).
    pub fn set_file_priorities(&mut self, now: Instant, files: &[Priority]) {
        self.now = now;
        self.file_priorities = Some(files.to_vec());
        self.apply_priorities(now);
    }

    /// Sets the upload and download limits in bytes/s (0: none), from
    /// now on; buckets start full, as at the torrent's start. The session's
    /// share still applies when smaller
    /// ([`effective_rate_limits`](Torrent::effective_rate_limits)).
    pub fn set_rate_limits(&mut self, now: Instant, upload: u64, download: u64) {
        self.now = now;
        self.config.upload_rate = upload;
        self.config.download_rate = download;
        let (up, down) = self.effective_rate_limits();
        self.up_bucket = TokenBucket::new(up, now);
        self.down_bucket = TokenBucket::new(down, now);
        self.fill_requests(now);
    }

    /// The upload and download limits the user set, in bytes/s (0: none).
    pub fn rate_limits(&self) -> (u64, u64) {
        (self.config.upload_rate, self.config.download_rate)
    }

    /// Downloads pieces in order (for streaming) instead of rarest first.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.picker.set_sequential(sequential);
    }

    /// Pieces to download before everything else (a streaming window, see
    /// [`streaming_window`](crate::picker::streaming_window)). They are
    /// wanted while they are critical, even in a file set to skip (a
    /// stream reads them; the file's own priority is left as it is), and
    /// peers with room in their pipelines get requests for them at once,
    /// so a seek does not wait for the next block to arrive.
    pub fn set_critical(&mut self, now: Instant, pieces: Vec<PieceIndex>) {
        self.now = now;
        self.picker.set_critical(pieces);
        self.apply_priorities(now);
        // A complete piece now wanted by a stream goes at once.
        self.pump_ready(now, false);
    }
}
