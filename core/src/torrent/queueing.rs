//! The session's hold on a torrent: queueing (a torrent beyond the
//! engine's active limits waits with no connections, its trackers told
//! `stopped`), the share of the session's budgets it may use on top of its
//! own limits, and the time it has spent seeding (for seeding goals).

use super::*;

/// What the session lets one torrent use, set by the engine as it splits
/// its global budgets (`None`: no session limit on that budget). The
/// torrent's own limits ([`TorrentConfig`], [`Torrent::set_rate_limits`])
/// still hold: the smaller of the two is in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionShare {
    /// Connections (and attempts).
    pub max_peers: Option<usize>,
    /// Connection attempts in progress.
    pub max_half_open: Option<usize>,
    /// Block data held in memory.
    pub max_buffered_bytes: Option<u64>,
    /// Upload rate in bytes/s.
    pub upload_rate: Option<u64>,
    /// Download rate in bytes/s.
    pub download_rate: Option<u64>,
}

/// The state a torrent of `pieces` pieces begins in from `start` (before
/// any check finds what is there).
pub fn start_state(pieces: u32, start: &StartMode) -> TorrentState {
    match start {
        StartMode::Check => TorrentState::Checking,
        StartMode::Trusted(have)
            if have.iter().filter(|p| p.0 < pieces).count() == pieces as usize =>
        {
            TorrentState::Seeding
        }
        _ => TorrentState::Downloading,
    }
}

/// The smaller of a user's rate limit (0: none) and a session share.
fn rate_in_force(own: u64, share: Option<u64>) -> u64 {
    match (own, share) {
        (0, None) => 0,
        (0, Some(s)) => s.max(1),
        (own, None) => own,
        (own, Some(s)) => own.min(s.max(1)),
    }
}

impl Torrent {
    /// A torrent that waits in the queue before it begins: no start-up
    /// check, no announce, no connection until [`dequeue`](Torrent::dequeue)
    /// (or [`resume`](Torrent::resume) once paused).
    pub fn new_queued(
        now: Instant,
        info: TorrentInfo,
        config: TorrentConfig,
        start: StartMode,
        seed: Seed,
    ) -> Torrent {
        Torrent::waiting(now, info, config, start, seed, TorrentState::Queued)
    }

    /// A torrent added paused: like [`new_queued`](Torrent::new_queued)
    /// until [`resume`](Torrent::resume).
    pub fn new_paused(
        now: Instant,
        info: TorrentInfo,
        config: TorrentConfig,
        start: StartMode,
        seed: Seed,
    ) -> Torrent {
        Torrent::waiting(now, info, config, start, seed, TorrentState::Paused)
    }

    fn waiting(
        now: Instant,
        info: TorrentInfo,
        config: TorrentConfig,
        start: StartMode,
        seed: Seed,
        state: TorrentState,
    ) -> Torrent {
        let mut t = Torrent::with_info(now, info, config, seed);
        t.paused_from = start_state(t.info.layout.piece_count(), &start);
        // Pieces resume data vouches for count at once (a paused complete
        // torrent shows as complete); nothing is read for them.
        let start = match start {
            StartMode::Trusted(have) => {
                let count = t.info.layout.piece_count();
                for p in have.iter().filter(|p| p.0 < count) {
                    t.picker.on_piece_verified(p);
                    t.on_disk.set(p);
                }
                StartMode::Fresh
            }
            other => other,
        };
        t.pending_start = Some(start);
        t.state = state;
        // Nothing announced yet, so nothing to take back: the announcer
        // just ends until the torrent runs.
        t.trackers_stopped = true;
        t.announcer.stop(now);
        t.recount_left();
        t.emit(TorrentEvent::StateChanged(state));
        t
    }

    /// The state a queued or paused torrent goes back to when it runs
    /// again (what it counts against: active downloads or seeds).
    pub fn resumes_as(&self) -> TorrentState {
        match self.state {
            TorrentState::Queued | TorrentState::Paused => self.paused_from,
            s => s,
        }
    }

    /// Takes the torrent out of the running because the session has no
    /// slot for it: connections close, trackers hear `stopped`, start-up
    /// checks not yet handed out wait. A paused torrent may be queued too
    /// (resumed with no free slot). Magnets still fetching their metadata
    /// are never queued.
    pub fn queue(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            TorrentState::Queued
            | TorrentState::Stopped
            | TorrentState::FetchingMetadata
            | TorrentState::AwaitingStart => return,
            TorrentState::Paused => {}
            TorrentState::Checking | TorrentState::Downloading | TorrentState::Seeding => {
                self.paused_from = self.state;
            }
        }
        // The state first: nothing reconnects while peers go.
        self.set_state(TorrentState::Queued);
        // Complete pieces are written, not left waiting for the slot.
        self.pump_ready(now, true);
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.disconnect(now, c, CloseReason::Local, true);
        }
        self.pending_reads.clear();
        if !self.trackers_stopped {
            self.trackers_stopped = true;
            self.announcer.stop(now);
            self.pump_announces(now);
        }
    }

    /// Runs a queued torrent again (the engine has a slot for it).
    pub fn dequeue(&mut self, now: Instant) {
        self.now = now;
        if self.state == TorrentState::Queued {
            self.run_again(now);
        }
    }

    /// Back into the running after [`queue`](Torrent::queue) or
    /// [`pause`](Torrent::pause): it begins if it never did; otherwise it
    /// takes up the state it left, announcing `started` anew if queueing
    /// told the trackers `stopped`.
    pub(super) fn run_again(&mut self, now: Instant) {
        if std::mem::take(&mut self.trackers_stopped) {
            // A stopped announcer is done for good: a fresh one over the
            // same tiers starts with `started`.
            let tiers = self.announcer.tiers().to_vec();
            self.announcer = Announcer::new(now, tiers, &mut self.rng);
        }
        if let Some(start) = self.pending_start.take() {
            self.begin(now, start);
            return;
        }
        self.set_state(self.paused_from);
        if self.state == TorrentState::Checking {
            self.pump_checks();
        }
        self.after_progress();
        self.connect_more(now);
        self.pump_announces(now);
        self.fill_requests(now);
    }

    /// Sets what the session lets this torrent use. Peers beyond a smaller
    /// connection cap are closed at once (attempts first, then the idlest),
    /// so the session's total holds; rate buckets keep their tokens.
    pub fn set_session_share(&mut self, now: Instant, share: SessionShare) {
        self.now = now;
        if share == self.share {
            return;
        }
        self.share = share;
        let (up, down) = self.effective_rate_limits();
        self.up_bucket.set_rate(up, now);
        self.down_bucket.set_rate(down, now);
        let max = self.max_peers();
        while self.peers.len() > max {
            let victim = self
                .peers
                .iter()
                .min_by_key(|(c, p)| {
                    let active = p.session.as_ref().filter(|s| s.is_active());
                    (active.is_some(), active.map(PeerSession::last_payload), **c)
                })
                .map(|(c, _)| *c);
            let Some(victim) = victim else { break };
            let addr = self.peers.get(&victim).map(|p| p.addr);
            self.disconnect(now, victim, CloseReason::Local, true);
            if let Some(addr) = addr {
                self.list.closed_for_room(now, addr);
            }
        }
        self.connect_more(now);
        self.pump_uploads(now);
        self.fill_requests(now);
    }

    /// What the session lets this torrent use.
    pub fn session_share(&self) -> SessionShare {
        self.share
    }

    /// The upload and download limits in force in bytes/s (0: none): the
    /// user's, or the session's share when smaller.
    pub fn effective_rate_limits(&self) -> (u64, u64) {
        (
            rate_in_force(self.config.upload_rate, self.share.upload_rate),
            rate_in_force(self.config.download_rate, self.share.download_rate),
        )
    }

    /// Most connections in force.
    pub fn max_peers(&self) -> usize {
        let own = self.config.max_peers;
        self.share.max_peers.map_or(own, |s| s.min(own))
    }

    /// Most connection attempts in progress in force.
    pub fn max_half_open(&self) -> usize {
        let own = self.config.max_half_open;
        self.share.max_half_open.map_or(own, |s| s.min(own))
    }

    /// The torrent's own limits, before the session's share: connections,
    /// attempts, buffered bytes (what it would use if alone).
    pub fn own_limits(&self) -> (usize, usize, u64) {
        (
            self.config.max_peers,
            self.config.max_half_open,
            self.config.max_buffered_bytes,
        )
    }

    /// Whether it would open connections if it could: room under its own
    /// cap and addresses due (or due before the next look).
    pub fn wants_connections(&self, now: Instant) -> bool {
        self.is_connecting()
            && self.peers.len() < self.config.max_peers
            && self
                .list
                .next_deadline()
                .is_some_and(|d| d <= now + CONNECT_INTERVAL)
    }

    /// Connection attempts in progress.
    pub fn half_open_count(&self) -> usize {
        self.half_open()
    }

    /// Time spent seeding so far (across pauses and queueing).
    pub fn seeding_time(&self, now: Instant) -> Duration {
        let current = self
            .seeding_since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        self.seeded + current
    }

    /// Bytes of the pieces wanted (every file not skipped): the base of
    /// the share ratio.
    pub fn wanted_bytes(&self) -> u64 {
        self.wanted
    }

    /// The first and last piece of every wanted file go before the
    /// others (players read a file's ends first: headers, indexes), on top
    /// of the file priorities.
    pub fn set_first_last_priority(&mut self, now: Instant, on: bool) {
        self.now = now;
        if self.first_last != on {
            self.first_last = on;
            self.apply_priorities(now);
        }
    }

    /// Whether first-and-last-piece priority is on.
    pub fn first_last_priority(&self) -> bool {
        self.first_last
    }

    /// Sets the picker's priorities from the file priorities, the
    /// first-and-last-piece flag and the time-critical pieces.
    pub(super) fn apply_priorities(&mut self, now: Instant) {
        let layout = &self.info.layout;
        let files = self
            .file_priorities
            .clone()
            .unwrap_or_else(|| vec![Priority::Normal; layout.file_count()]);
        self.picker.set_file_priorities(layout, &files);
        if self.first_last {
            for (f, prio) in files.iter().enumerate() {
                let range = layout.file_pieces(f);
                if layout.is_padding(f) || *prio == Priority::Skip || range.is_empty() {
                    continue;
                }
                for p in [range.start, PieceIndex(range.end.0 - 1)] {
                    if self.picker.priority(p) < Priority::High {
                        self.picker.set_priority(p, Priority::High);
                    }
                }
            }
        }
        // A stream's pieces are wanted even in a skipped file
        // ([`Torrent::set_critical`]).
        for p in self.picker.critical().to_vec() {
            if self.picker.priority(p) == Priority::Skip {
                self.picker.set_priority(p, Priority::Low);
            }
        }
        self.recount_left();
        self.after_progress();
        self.refresh_interest(now);
        self.fill_requests(now);
    }
}
