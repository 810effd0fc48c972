//! Session policy: which torrents run. The daemon holds hundreds of
//! torrents in one engine; this decides, deterministically and inside the
//! simulation, which of them may download or seed at once, in a user-set
//! queue order, and when a seed has given enough.
//!
//! - **Queue**: every torrent has a position (new ones go last). A torrent
//!   counts as an active download while checking or downloading, as an
//!   active seed while seeding; magnets fetching their metadata and paused
//!   torrents count for nothing. Walking the queue from position 0, each
//!   eligible torrent gets a slot while its kind has one free
//!   ([`SessionLimits::active_downloads`], [`active_seeds`]); the others
//!   are [`Queued`](TorrentState::Queued) (connections closed, trackers
//!   told `stopped`) and start by themselves, in queue order, when a slot
//!   frees. A torrent earlier in the queue takes the slot of a later one,
//!   as libtorrent's auto-managed torrents do. A user's pause is not
//!   queueing: a paused torrent is never started by the queue. A
//!   force-started torrent ([`Engine::set_force_start`]; qBittorrent's
//!   "force start", libtorrent's torrent that is not auto-managed) is
//!   outside the queue: it runs whatever the limits say and takes no
//!   slot from the others.
//! - **Seeding goals**: a seed whose share ratio (uploaded over its whole
//!   life, [`Torrent::history`], over the bytes of its wanted files),
//!   seeding time, or time seeding without uploading reaches its goal (its
//!   own, or the session's default) is paused, once, with
//!   [`Event::SeedingGoalReached`]. Inactivity is sampled at each check
//!   (every [`TICK`]): the time since the uploaded count last moved, or
//!   since the torrent was first seen seeding.
//! - **Budgets** (rates, connections, memory) are split by the `shares`
//!   module.
//!
//! The queue is evaluated whenever something changes it (add, remove,
//! pause, resume, a state change such as a download finishing, limits or
//! positions set) and every [`TICK`] with the goals and budgets.
//!
//! [`active_seeds`]: SessionLimits::active_seeds

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Engine, Event, Output, SeedingGoal, SessionLimits};
use crate::handles::TorrentId;
use crate::metainfo::PieceIndex;
use crate::time::Instant;
use crate::torrent::{start_state, StartMode, Torrent, TorrentInfo, TorrentState, TransferHistory};

/// How often goals are checked and budgets split again.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// What a torrent counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    Download,
    Seed,
}

impl Slot {
    /// The slot a torrent in `state` takes (`None`: it takes none).
    pub(super) fn of(state: TorrentState) -> Option<Slot> {
        match state {
            TorrentState::Checking | TorrentState::Downloading => Some(Slot::Download),
            TorrentState::Seeding => Some(Slot::Seed),
            _ => None,
        }
    }
}

/// The engine's policy state; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct Policy {
    /// Every torrent, position 0 first.
    pub(super) order: Vec<TorrentId>,
    goals: BTreeMap<TorrentId, SeedingGoal>,
    default_goal: Option<SeedingGoal>,
    /// Torrents paused for their goal: a user who resumes one wants it to
    /// seed on, until its goal is set again.
    reached: BTreeSet<TorrentId>,
    /// Seeds' upload activity for the inactivity goal: lifetime bytes
    /// uploaded as last seen, and since when that count has not moved.
    idle: BTreeMap<TorrentId, (u64, Instant)>,
    /// Force-started torrents: outside the queue's limits.
    forced: BTreeSet<TorrentId>,
    /// Bytes uploaded and downloaded by torrents already removed.
    removed: (u64, u64),
    /// A state changed: evaluate the queue and budgets at the next poll.
    pub(super) dirty: bool,
    /// When the next tick is due (`None`: at the first poll).
    pub(super) next_tick: Option<Instant>,
    /// Where the budgets' leftover units start (moves every split).
    pub(super) rotation: usize,
}

/// Which torrents get a slot: `entries` in queue order, each with the slot
/// it would take if it ran (`None`: not eligible).
pub(super) fn plan(
    entries: impl IntoIterator<Item = (TorrentId, Option<Slot>)>,
    limits: &SessionLimits,
) -> BTreeSet<TorrentId> {
    let (mut downloads, mut seeds) = (0usize, 0usize);
    let mut run = BTreeSet::new();
    for (id, slot) in entries {
        let (count, limit) = match slot {
            Some(Slot::Download) => (&mut downloads, limits.active_downloads),
            Some(Slot::Seed) => (&mut seeds, limits.active_seeds),
            None => continue,
        };
        if limit.is_none_or(|l| *count < l) {
            *count += 1;
            run.insert(id);
        }
    }
    run
}

/// Since when a seed has uploaded nothing, given its lifetime `uploaded`
/// count sampled `now`: the last sample at which the count moved (or the
/// first sample).
pub(super) fn idle_since(
    idle: &mut BTreeMap<TorrentId, (u64, Instant)>,
    id: TorrentId,
    uploaded: u64,
    now: Instant,
) -> Instant {
    match idle.get(&id) {
        Some(&(seen, since)) if seen == uploaded => since,
        _ => {
            idle.insert(id, (uploaded, now));
            now
        }
    }
}

/// The slot a torrent would take if it ran: its own while it runs, the
/// state it resumes to while queued (or paused, for the one torrent being
/// resumed).
fn wanted_slot(t: &Torrent, resuming: bool) -> Option<Slot> {
    match t.state() {
        TorrentState::Queued => Slot::of(t.resumes_as()),
        TorrentState::Paused if resuming => Slot::of(t.resumes_as()),
        s => Slot::of(s),
    }
}

impl Engine {
    // --- commands -----------------------------------------------------------

    /// Sets the session's limits; the queue and the budgets follow at once.
    pub fn set_limits(&mut self, now: Instant, limits: SessionLimits) {
        self.now = now;
        self.config.limits = limits;
        let reserve = self.incoming_reserve();
        self.handshakes.set_max_total(reserve);
        self.apply_queue(now);
        self.rebalance(now);
    }

    /// The session's limits.
    pub fn limits(&self) -> &SessionLimits {
        &self.config.limits
    }

    /// Queue order of every torrent (position 0 runs first); new torrents
    /// go last.
    pub fn queue(&self) -> Vec<TorrentId> {
        self.policy.order.clone()
    }

    /// Moves a torrent to `position` (past the end: last); the queue is
    /// evaluated again at once.
    pub fn set_queue_position(&mut self, now: Instant, id: TorrentId, position: usize) {
        self.now = now;
        let order = &mut self.policy.order;
        let Some(at) = order.iter().position(|t| *t == id) else {
            return;
        };
        order.remove(at);
        order.insert(position.min(order.len()), id);
        self.apply_queue(now);
    }

    /// Force-starts a torrent (`on`), or puts it back under the queue's
    /// limits; the queue is evaluated again at once. A forced torrent
    /// that is queued starts; one paused by the user stays paused until
    /// [`resume`](Engine::resume)d, which then ignores the limits.
    pub fn set_force_start(&mut self, now: Instant, id: TorrentId, on: bool) {
        self.now = now;
        if !self.torrents.contains_key(&id) {
            return;
        }
        let changed = if on {
            self.policy.forced.insert(id)
        } else {
            self.policy.forced.remove(&id)
        };
        if changed {
            self.apply_queue(now);
        }
    }

    /// Whether a torrent is force-started ([`set_force_start`](Engine::set_force_start)).
    pub fn is_force_started(&self, id: TorrentId) -> bool {
        self.policy.forced.contains(&id)
    }

    /// Sets one torrent's seeding goal (`None`: the session's default,
    /// [`set_default_seeding_goal`](Engine::set_default_seeding_goal)).
    pub fn set_seeding_goal(&mut self, now: Instant, id: TorrentId, goal: Option<SeedingGoal>) {
        self.now = now;
        if !self.torrents.contains_key(&id) {
            return;
        }
        match goal {
            Some(g) => self.policy.goals.insert(id, g),
            None => self.policy.goals.remove(&id),
        };
        self.policy.reached.remove(&id);
        self.check_goals(now);
    }

    /// Sets the goal of every torrent without one of its own.
    pub fn set_default_seeding_goal(&mut self, now: Instant, goal: Option<SeedingGoal>) {
        self.now = now;
        self.policy.default_goal = goal;
        let own = &self.policy.goals;
        self.policy.reached.retain(|id| own.contains_key(id));
        self.check_goals(now);
    }

    /// The goal in force for a torrent (its own, else the session's).
    pub fn seeding_goal(&self, id: TorrentId) -> Option<SeedingGoal> {
        self.policy
            .goals
            .get(&id)
            .copied()
            .or(self.policy.default_goal)
    }

    /// Pieces of a torrent to download before all others, in order: the
    /// union of its open streams' windows ([`Torrent::set_critical`]).
    pub fn set_critical(&mut self, now: Instant, id: TorrentId, pieces: Vec<PieceIndex>) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.set_critical(now, pieces);
        }
    }

    /// Downloads the first and last piece of every wanted file first
    /// ([`Torrent::set_first_last_priority`]).
    pub fn set_first_last_priority(&mut self, now: Instant, id: TorrentId, on: bool) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.set_first_last_priority(now, on);
        }
    }

    /// Gives a torrent back what earlier sessions uploaded, downloaded and
    /// seeded ([`Torrent::restore_history`]), so its share ratio and
    /// seeding time carry on across restarts; its goal is checked at once.
    pub fn restore_history(&mut self, now: Instant, id: TorrentId, history: TransferHistory) {
        self.now = now;
        if let Some(t) = self.torrents.get_mut(&id) {
            t.restore_history(history);
            self.check_goals(now);
        }
    }

    /// Payload bytes (uploaded, downloaded) over the session: torrents
    /// already removed plus the live ones.
    pub fn totals(&self) -> (u64, u64) {
        self.torrents
            .values()
            .map(Torrent::counters)
            .fold(self.policy.removed, |(u, d), (tu, td, _)| (u + tu, d + td))
    }

    /// Open connections and attempts, incoming ones still in their
    /// handshake included: what [`SessionLimits::max_connections`] bounds.
    pub fn connection_count(&self) -> usize {
        self.conns.len() + self.handshakes.len()
    }

    /// Adds a torrent paused: nothing is checked, announced or connected
    /// until [`resume`](Engine::resume) (which may queue it). `None` as
    /// for [`add_torrent`](Engine::add_torrent).
    pub fn add_torrent_paused(
        &mut self,
        now: Instant,
        info: TorrentInfo,
        start: StartMode,
    ) -> Option<TorrentId> {
        self.insert_torrent(now, info, start, true)
    }

    // --- the engine's hooks -------------------------------------------------

    /// A torrent is about to be added with `id`: it goes last in the queue;
    /// whether it may run now.
    pub(super) fn admit_to_queue(
        &mut self,
        id: TorrentId,
        info: &TorrentInfo,
        start: &StartMode,
    ) -> bool {
        self.policy.order.push(id);
        self.policy.dirty = true;
        let slot = Slot::of(start_state(info.layout.piece_count(), start));
        let entries = self
            .policy
            .order
            .iter()
            .map(|t| match self.torrents.get(t) {
                Some(torrent) => (*t, wanted_slot(torrent, false)),
                None => (*t, slot),
            });
        plan(entries, &self.config.limits).contains(&id)
    }

    /// A torrent is gone: its counters go to the session's totals, its
    /// slot to the next in the queue.
    pub(super) fn forget_in_queue(&mut self, now: Instant, t: &Torrent, id: TorrentId) {
        let (up, down, _) = t.counters();
        self.policy.removed.0 += up;
        self.policy.removed.1 += down;
        self.policy.order.retain(|o| *o != id);
        self.policy.forced.remove(&id);
        self.policy.idle.remove(&id);
        self.policy.goals.remove(&id);
        self.policy.reached.remove(&id);
        self.policy.dirty = true;
        self.apply_queue(now);
    }

    /// Resumes a paused torrent, or queues it if its kind has no free slot.
    pub(super) fn resume_or_queue(&mut self, now: Instant, id: TorrentId) {
        let Some(t) = self.torrents.get(&id) else {
            return;
        };
        if t.state() != TorrentState::Paused {
            return;
        }
        // A magnet still fetching its metadata takes no slot: it resumes
        // at once (queued, nothing would ever start it).
        let run = wanted_slot(t, true).is_none() || self.plan_now(Some(id)).contains(&id);
        if let Some(t) = self.torrents.get_mut(&id) {
            if run {
                t.resume(now);
            } else {
                t.queue(now);
            }
        }
        self.apply_queue(now);
    }

    /// Which torrents may run now: the queue's plan for the managed ones,
    /// and every forced one that would take a slot.
    fn plan_now(&self, resuming: Option<TorrentId>) -> BTreeSet<TorrentId> {
        let forced = &self.policy.forced;
        let slots = self.policy.order.iter().filter_map(|id| {
            let t = self.torrents.get(id)?;
            Some((*id, wanted_slot(t, resuming == Some(*id))))
        });
        let (outside, managed): (Vec<_>, Vec<_>) = slots.partition(|(id, _)| forced.contains(id));
        let mut run = plan(managed, &self.config.limits);
        run.extend(
            outside
                .into_iter()
                .filter(|(_, s)| s.is_some())
                .map(|(id, _)| id),
        );
        run
    }

    /// Queues the running torrents that lost their slot and starts the
    /// queued ones that have one (in that order: slots free before they
    /// are taken).
    pub(super) fn apply_queue(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        let run = self.plan_now(None);
        // Read first, touch only the torrents that change (a touched
        // torrent is drained and its deadline read again).
        let state = |e: &Engine, id: &TorrentId| e.torrents.get(id).map(Torrent::state);
        let stop: Vec<TorrentId> = (self.policy.order.iter())
            .filter(|id| state(self, id).and_then(Slot::of).is_some() && !run.contains(id))
            .copied()
            .collect();
        let start: Vec<TorrentId> = (self.policy.order.iter())
            .filter(|id| state(self, id) == Some(TorrentState::Queued) && run.contains(id))
            .copied()
            .collect();
        for id in &stop {
            if let Some(t) = self.torrents.get_mut(id) {
                t.queue(now);
            }
        }
        for id in &start {
            if let Some(t) = self.torrents.get_mut(id) {
                t.dequeue(now);
            }
        }
    }

    /// Pauses every seed that reached its goal, once.
    pub(super) fn check_goals(&mut self, now: Instant) {
        // Without any goal there is nothing to walk the torrents for.
        if self.shutdown.is_some()
            || (self.policy.default_goal.is_none() && self.policy.goals.is_empty())
        {
            return;
        }
        let mut reached = Vec::new();
        let torrents = &self.torrents;
        let idle = &mut self.policy.idle;
        idle.retain(|id, _| torrents.get(id).map(Torrent::state) == Some(TorrentState::Seeding));
        for (id, t) in torrents.iter() {
            if t.state() != TorrentState::Seeding || self.policy.reached.contains(id) {
                continue;
            }
            let goal = self
                .policy
                .goals
                .get(id)
                .copied()
                .or(self.policy.default_goal);
            let Some(goal) = goal else {
                continue;
            };
            let wanted = t.wanted_bytes();
            let uploaded = t.history(now).uploaded;
            let by_ratio = goal
                .ratio
                .is_some_and(|r| wanted > 0 && uploaded as f64 >= r * wanted as f64);
            let by_time = goal.seeding_time.is_some_and(|d| t.seeding_time(now) >= d);
            let since = idle_since(idle, *id, uploaded, now);
            let by_inactivity = goal
                .inactive_time
                .is_some_and(|d| now.saturating_duration_since(since) >= d);
            if by_ratio || by_time || by_inactivity {
                reached.push(*id);
            }
        }
        for id in reached {
            self.policy.reached.insert(id);
            if let Some(t) = self.torrents.get_mut(&id) {
                t.pause(now);
            }
            // Its `Paused` comes first.
            self.drain_torrent(id);
            self.out
                .push_back(Output::Event(Event::SeedingGoalReached(id)));
            self.policy.dirty = true;
        }
    }

    /// What the policy does on its own: at each tick, and after state
    /// changes.
    pub(super) fn run_policy(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.policy.dirty = false;
        self.check_goals(now);
        self.apply_queue(now);
        self.rebalance(now);
    }

    /// The policy's timer fired.
    pub(super) fn policy_timeout(&mut self, now: Instant) {
        if self.policy.next_tick.is_some_and(|t| t <= now) {
            self.policy.next_tick = Some(now + TICK);
            self.run_policy(now);
        }
    }

    /// When the policy next wants to run (`None` during a shutdown or
    /// with no torrents).
    pub(super) fn policy_deadline(&mut self) -> Option<Instant> {
        if self.shutdown.is_some() || self.torrents.is_empty() {
            return None;
        }
        Some(*self.policy.next_tick.get_or_insert(self.now + TICK))
    }
}
