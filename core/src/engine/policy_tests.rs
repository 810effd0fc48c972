//! The session policy driven by hand on a virtual clock: queueing under
//! the active limits, pauses the queue leaves alone, queue positions,
//! seeding goals, and the budgets the engine hands each torrent.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::metainfo::PieceIndex;
use crate::metainfo::{Metainfo, PieceHasher, TorrentBuilder};
use crate::torrent::{TorrentEvent, TorrentState};

const TRACKER: &str = "http://127.0.0.1:9/announce";

/// A torrent named `x{n}` (so each `n` has its own info-hash),
/// of `pieces` pieces of 16 KiB, announcing to [`TRACKER`].
fn info(n: u32, pieces: u32) -> TorrentInfo {
    let data = vec![n as u8; 16384 * pieces as usize];
    let mut b = TorrentBuilder::single_file(format!("x{n}"), data.len() as u64);
    b.set_piece_length(16384);
    b.add_tracker_tier(vec![TRACKER.to_owned()]);
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    let bytes = b.build(&h.finish()).expect("builds");
    TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).expect("parses"))
}

/// One engine and what it said, outputs carried out by hand.
struct Sim {
    engine: Engine,
    now: Instant,
    events: Vec<Event>,
    /// Start-up checks asked for and not answered.
    checks: Vec<(TorrentId, PieceIndex)>,
    /// Every tracker URL asked for (answered with a failure).
    announces: Vec<String>,
}

impl Sim {
    fn new(limits: SessionLimits) -> Sim {
        let config = EngineConfig {
            limits,
            ..EngineConfig::default()
        };
        Sim {
            engine: Engine::new(config, Seed::from_u64(3)),
            now: Instant::ZERO,
            events: Vec::new(),
            checks: Vec::new(),
            announces: Vec::new(),
        }
    }

    fn with_downloads(n: usize) -> Sim {
        Sim::new(SessionLimits {
            active_downloads: Some(n),
            ..SessionLimits::default()
        })
    }

    /// Carries out outputs until the engine waits; returns the wake-up.
    fn drain(&mut self) -> Instant {
        loop {
            match self.engine.poll_output(self.now) {
                Output::Timeout(t) => return t,
                Output::Event(e) => self.events.push(e),
                Output::Disk {
                    torrent,
                    op: DiskOp::Check { piece, .. },
                } => self.checks.push((torrent, piece)),
                Output::Http { request, url, .. } => {
                    self.announces.push(url);
                    let now = self.now;
                    let err = Err(TrackerError::Unreachable("test".into()));
                    self.engine.handle_http(now, request, err);
                }
                _ => {}
            }
        }
    }

    fn add(&mut self, n: u32, start: StartMode) -> TorrentId {
        let id = self
            .engine
            .add_torrent(self.now, info(n, 1), start)
            .expect("added");
        self.drain();
        id
    }

    /// Answers the start-up checks of `id`, all good.
    fn check_ok(&mut self, id: TorrentId) {
        let (mine, rest) = self.checks.drain(..).partition(|(t, _)| *t == id);
        self.checks = rest;
        let mine: Vec<(TorrentId, PieceIndex)> = mine;
        assert!(!mine.is_empty(), "{id:?} asked for no check");
        for (_, piece) in mine {
            let now = self.now;
            self.engine
                .handle_disk(now, id, DiskResult::Checked { piece, ok: true });
        }
        self.drain();
    }

    fn state(&self, id: TorrentId) -> TorrentState {
        self.engine.torrent(id).expect("listed").state()
    }

    fn states(&self, ids: &[TorrentId]) -> Vec<TorrentState> {
        ids.iter().map(|id| self.state(*id)).collect()
    }

    /// Moves the clock to `until`, firing every timer on the way.
    fn run_to(&mut self, until: Instant) {
        for _ in 0..100_000 {
            let wake = self.drain();
            if wake > until {
                break;
            }
            self.now = wake.max(self.now + Duration::from_millis(1));
            let now = self.now;
            self.engine.handle_timeout(now);
        }
        self.now = self.now.max(until);
        let now = self.now;
        self.engine.handle_timeout(now);
        self.drain();
    }

    /// One download slot, three fresh torrents: the first runs, the
    /// others wait.
    fn three_behind_one_slot() -> (Sim, [TorrentId; 3]) {
        let mut sim = Sim::with_downloads(1);
        let ids = [1, 2, 3].map(|n| sim.add(n, StartMode::Fresh));
        assert_eq!(sim.states(&ids), vec![Downloading, Queued, Queued]);
        (sim, ids)
    }

    /// Pauses (`false`) or resumes (`true`) a torrent and carries out
    /// what follows.
    fn run_or_pause(&mut self, id: TorrentId, run: bool) {
        let now = self.now;
        if run {
            self.engine.resume(now, id);
        } else {
            self.engine.pause(now, id);
        }
        self.drain();
    }

    fn said(&self, id: TorrentId, state: TorrentState) -> bool {
        self.events
            .contains(&Event::Torrent(id, TorrentEvent::StateChanged(state)))
    }
}

use TorrentState::{Checking, Downloading, Paused, Queued, Seeding};

#[test]
fn beyond_the_active_downloads_torrents_wait_and_start_as_slots_free() {
    let mut sim = Sim::with_downloads(2);
    let a = sim.add(1, StartMode::Check);
    let b = sim.add(2, StartMode::Check);
    let c = sim.add(3, StartMode::Check);
    assert_eq!(sim.states(&[a, b, c]), vec![Checking, Checking, Queued]);
    assert!(sim.said(c, Queued));
    assert!(
        !sim.checks.iter().any(|(t, _)| *t == c),
        "a queued torrent reads nothing"
    );
    assert_eq!(sim.engine.queue(), vec![a, b, c]);
    // A peer knocking for the queued torrent is turned away.
    let now = sim.now;
    let from = SocketAddr::from(([127, 0, 0, 7], 6881));
    let conn = sim.engine.handle_tcp_incoming(now, from).expect("admitted");
    let mut hs = Vec::new();
    crate::wire::Handshake {
        reserved: crate::wire::Reserved::FAST,
        info_hash: info(3, 1).info_hash,
        peer_id: crate::wire::PeerId([7; 20]),
    }
    .encode(&mut hs);
    sim.engine.handle_tcp_data(now, conn, &hs);
    let closed = std::iter::from_fn(|| Some(sim.engine.poll_output(now)))
        .take_while(|o| !matches!(o, Output::Timeout(_)))
        .any(|o| {
            o == Output::Tcp {
                conn,
                action: TcpAction::Close,
            }
        });
    assert!(closed, "a queued torrent took a peer");
    assert_eq!(sim.engine.torrent(c).map(Torrent::peer_count), Some(0));
    // `a` is all there: a seed now, its download slot goes to `c`.
    sim.check_ok(a);
    assert_eq!(sim.states(&[a, b, c]), vec![Seeding, Checking, Checking]);
    // A fourth waits; removing `b` lets it in.
    let d = sim.add(4, StartMode::Fresh);
    assert_eq!(sim.state(d), Queued);
    let now = sim.now;
    sim.engine.remove(now, b);
    sim.drain();
    assert_eq!(sim.states(&[c, d]), vec![Checking, Downloading]);
    assert_eq!(sim.engine.queue(), vec![a, c, d]);
}

#[test]
fn a_paused_torrent_is_not_started_by_the_queue() {
    let (mut sim, [a, b, c]) = Sim::three_behind_one_slot();
    let now = sim.now;
    sim.engine.pause(now, c);
    sim.engine.pause(now, a);
    sim.drain();
    // `a`'s slot goes to `b`, never to the paused `c`.
    assert_eq!(sim.states(&[a, b, c]), vec![Paused, Downloading, Paused]);
    sim.run_to(now + Duration::from_secs(5));
    assert_eq!(sim.states(&[a, b, c]), vec![Paused, Downloading, Paused]);
    // Resumed, `c` is eligible again but has no slot; `a` is first in the
    // queue and takes the slot back.
    let now = sim.now;
    sim.engine.resume(now, c);
    sim.drain();
    assert_eq!(sim.state(c), Queued);
    sim.engine.resume(now, a);
    sim.drain();
    assert_eq!(sim.states(&[a, b, c]), vec![Downloading, Queued, Queued]);
    // Raising the limit starts both in queue order.
    let limits = SessionLimits {
        active_downloads: Some(3),
        ..SessionLimits::default()
    };
    sim.engine.set_limits(now, limits);
    sim.drain();
    assert_eq!(sim.states(&[a, b, c]), vec![Downloading; 3]);
}

#[test]
fn a_force_started_torrent_ignores_the_active_limits() {
    let (mut sim, [a, b, c]) = Sim::three_behind_one_slot();
    // Forcing the last one starts it beside `a`, and takes no slot:
    // `b` still waits for `a`'s.
    let now = sim.now;
    sim.engine.set_force_start(now, c, true);
    sim.drain();
    assert!(sim.engine.is_force_started(c));
    assert_eq!(
        sim.states(&[a, b, c]),
        vec![Downloading, Queued, Downloading]
    );
    sim.run_to(now + Duration::from_secs(5));
    assert_eq!(
        sim.states(&[a, b, c]),
        vec![Downloading, Queued, Downloading]
    );
    // Paused by the user it stays paused; resumed it runs at once, with
    // no slot free.
    sim.run_or_pause(c, false);
    assert_eq!(sim.state(c), Paused);
    sim.run_or_pause(c, true);
    assert_eq!(
        sim.states(&[a, b, c]),
        vec![Downloading, Queued, Downloading]
    );
    // When `a` pauses, its slot goes to `b`: the forced `c` never held it.
    sim.run_or_pause(a, false);
    let now = sim.now;
    assert_eq!(
        sim.states(&[a, b, c]),
        vec![Paused, Downloading, Downloading]
    );
    // Back under the limits, `c` is queued behind `b`.
    sim.engine.set_force_start(now, c, false);
    sim.drain();
    assert!(!sim.engine.is_force_started(c));
    assert_eq!(sim.states(&[a, b, c]), vec![Paused, Downloading, Queued]);
    // A forced seed ignores active seeds the same way (the rule is one).
    let mut sim = Sim::new(SessionLimits {
        active_seeds: Some(0),
        ..SessionLimits::default()
    });
    let s = sim.add(4, StartMode::Check);
    sim.check_ok(s);
    assert_eq!(sim.state(s), Queued);
    let now = sim.now;
    sim.engine.set_force_start(now, s, true);
    sim.drain();
    assert_eq!(sim.state(s), Seeding);
}

#[test]
fn a_magnet_paused_before_its_metadata_resumes_to_fetching_it() {
    let mut sim = Sim::with_downloads(1);
    let busy = sim.add(2, StartMode::Check);
    let link = format!("magnet:?xt=urn:btih:{}", "ab".repeat(20));
    let magnet = crate::metainfo::Magnet::parse(&link).expect("parses");
    let now = sim.now;
    let m = sim.engine.add_magnet(now, &magnet).expect("added");
    sim.engine.pause(now, m);
    sim.drain();
    assert_eq!(sim.state(m), Paused);
    sim.engine.resume(now, m);
    sim.drain();
    assert_eq!(
        sim.states(&[m, busy]),
        vec![TorrentState::FetchingMetadata, Checking]
    );
}

#[test]
fn a_torrent_added_paused_does_nothing_until_resumed() {
    let mut sim = Sim::with_downloads(1);
    let now = sim.now;
    let a = sim
        .engine
        .add_torrent_paused(now, info(1, 1), StartMode::Check)
        .expect("added");
    let b = sim.add(2, StartMode::Check);
    sim.run_to(now + Duration::from_secs(10));
    assert_eq!(sim.states(&[a, b]), vec![Paused, Checking]);
    assert!(sim.said(a, Paused) && !sim.said(a, Queued));
    assert!(
        !sim.checks.iter().any(|(t, _)| *t == a),
        "checked while paused"
    );
    assert!(sim.announces.is_empty(), "{:?}", sim.announces);
    // Resumed: first in the queue, it takes the slot and checks.
    let now = sim.now;
    sim.engine.resume(now, a);
    sim.drain();
    assert_eq!(sim.states(&[a, b]), vec![Checking, Queued]);
    assert!(sim.checks.iter().any(|(t, _)| *t == a));
}

#[test]
fn the_queue_position_decides_which_torrent_runs() {
    let mut sim = Sim::with_downloads(1);
    let a = sim.add(1, StartMode::Fresh);
    let b = sim.add(2, StartMode::Fresh);
    assert!(sim.announces.iter().any(|u| u.contains("event=started")));
    assert_eq!(sim.states(&[a, b]), vec![Downloading, Queued]);
    // Half a minute on, the queued one has still announced nothing, and
    // wakes the engine no more than the policy's tick.
    let now = sim.now;
    let mut wakes = 0;
    while sim.now < now + Duration::from_secs(30) && wakes < 1000 {
        let wake = sim.drain();
        sim.now = wake.max(sim.now + Duration::from_millis(1));
        let t = sim.now;
        sim.engine.handle_timeout(t);
        wakes += 1;
    }
    assert!(wakes <= 40, "{wakes} wake-ups in 30 s");
    assert_eq!(sim.announces.len(), 1, "the queued one announces nothing");
    assert_eq!(sim.engine.torrent(b).and_then(Torrent::poll_timeout), None);
    sim.announces.clear();
    let now = sim.now;
    sim.engine.set_queue_position(now, b, 0);
    sim.drain();
    assert_eq!(sim.engine.queue(), vec![b, a]);
    assert_eq!(sim.states(&[a, b]), vec![Queued, Downloading]);
    assert!(sim.said(a, Queued));
    // `a`'s trackers hear `stopped`, `b`'s `started`.
    let stopped = sim.announces.iter().filter(|u| u.contains("event=stopped"));
    let started = sim.announces.iter().filter(|u| u.contains("event=started"));
    assert_eq!(
        (stopped.count(), started.count()),
        (1, 1),
        "{:?}",
        sim.announces
    );
    // Past the end means last; back to the first order.
    sim.engine.set_queue_position(now, b, 99);
    sim.drain();
    assert_eq!(sim.engine.queue(), vec![a, b]);
    assert_eq!(sim.states(&[a, b]), vec![Downloading, Queued]);
    // Back in the running, `a` announces `started` again.
    let started = sim.announces.iter().filter(|u| u.contains("event=started"));
    assert_eq!(started.count(), 2, "{:?}", sim.announces);
}

#[test]
fn seeds_count_against_active_seeds_not_downloads() {
    let mut sim = Sim::new(SessionLimits {
        active_downloads: Some(1),
        active_seeds: Some(1),
        ..SessionLimits::default()
    });
    let full = || StartMode::Trusted(crate::Bitfield::full(1));
    let s1 = sim.add(1, full());
    let s2 = sim.add(2, full());
    let d1 = sim.add(3, StartMode::Fresh);
    assert_eq!(
        sim.states(&[s1, s2, d1]),
        vec![Seeding, Queued, Downloading]
    );
    // The queued seed knows it would seed.
    assert_eq!(
        sim.engine.torrent(s2).map(Torrent::resumes_as),
        Some(Seeding)
    );
    let now = sim.now;
    sim.engine.remove(now, s1);
    sim.drain();
    assert_eq!(sim.states(&[s2, d1]), vec![Seeding, Downloading]);
}

#[test]
fn an_inactivity_goal_pauses_a_seed_that_uploads_nothing() {
    let mut sim = Sim::new(SessionLimits::default());
    let full = StartMode::Trusted(crate::Bitfield::full(1));
    let id = sim.add(1, full);
    let goal = SeedingGoal {
        inactive_time: Some(Duration::from_secs(30)),
        ..SeedingGoal::default()
    };
    let now = sim.now;
    sim.engine.set_seeding_goal(now, id, Some(goal));
    sim.run_to(now + Duration::from_secs(29));
    assert_eq!(sim.state(id), Seeding);
    sim.run_to(now + Duration::from_secs(32));
    assert_eq!(sim.state(id), Paused);
    assert!(sim.events.contains(&Event::SeedingGoalReached(id)));
    // Resumed by the user, it seeds on (the goal was reached once).
    let now = sim.now;
    sim.engine.resume(now, id);
    sim.run_to(now + Duration::from_secs(60));
    assert_eq!(sim.state(id), Seeding);
}

#[test]
fn inactivity_counts_from_the_last_sample_that_saw_an_upload() {
    let mut idle = BTreeMap::new();
    let id = TorrentId::new(1);
    let at = |s: u64| Instant::ZERO + Duration::from_secs(s);
    assert_eq!(policy::idle_since(&mut idle, id, 0, at(10)), at(10));
    assert_eq!(policy::idle_since(&mut idle, id, 0, at(50)), at(10));
    assert_eq!(policy::idle_since(&mut idle, id, 700, at(51)), at(51));
    assert_eq!(policy::idle_since(&mut idle, id, 700, at(90)), at(51));
}

#[test]
fn a_seeding_time_goal_pauses_the_seed_once() {
    let mut sim = Sim::new(SessionLimits::default());
    let full = StartMode::Trusted(crate::Bitfield::full(1));
    let id = sim.add(1, full);
    let other = sim.add(2, StartMode::Fresh);
    let goal = SeedingGoal {
        ratio: None,
        seeding_time: Some(Duration::from_secs(60)),
        inactive_time: None,
    };
    let now = sim.now;
    sim.engine.set_default_seeding_goal(now, Some(goal));
    sim.run_to(now + Duration::from_secs(59));
    assert_eq!(sim.state(id), Seeding);
    sim.run_to(now + Duration::from_secs(61));
    assert_eq!(sim.state(id), Paused);
    assert_eq!(sim.state(other), Downloading, "not a seed: no goal");
    let reached: Vec<&Event> = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::SeedingGoalReached(_)))
        .collect();
    assert_eq!(reached, vec![&Event::SeedingGoalReached(id)]);
    let t = sim.engine.torrent(id).expect("listed");
    let seeded = t.seeding_time(sim.now);
    assert!(
        seeded >= Duration::from_secs(60) && seeded <= Duration::from_secs(62),
        "{seeded:?}"
    );
    // The user resumes it: it seeds on, not paused again at once.
    let now = sim.now;
    sim.engine.resume(now, id);
    sim.run_to(now + Duration::from_secs(5));
    assert_eq!(sim.state(id), Seeding);
    // A new goal of its own applies from now.
    let now = sim.now;
    let longer = SeedingGoal {
        ratio: None,
        seeding_time: Some(Duration::from_secs(120)),
        inactive_time: None,
    };
    sim.engine.set_seeding_goal(now, id, Some(longer));
    sim.drain();
    assert_eq!(sim.state(id), Seeding);
    sim.run_to(now + Duration::from_secs(60));
    assert_eq!(sim.state(id), Paused);
    assert_eq!(sim.engine.seeding_goal(id), Some(longer));
}

/// A seed restored with what it uploaded before a restart: a ratio goal
/// counts it (and the time it seeded then), the session's totals do not.
#[test]
fn a_ratio_goal_counts_earlier_sessions() {
    let mut sim = Sim::new(SessionLimits::default());
    let id = sim.add(1, StartMode::Trusted(crate::Bitfield::full(1)));
    let before = crate::torrent::TransferHistory {
        uploaded: 40_000,
        downloaded: 16_384,
        seeding_time: Duration::from_secs(3600),
    };
    let now = sim.now;
    sim.engine.restore_history(now, id, before);
    let goal = SeedingGoal {
        ratio: Some(3.0),
        seeding_time: None,
        inactive_time: None,
    };
    sim.engine.set_seeding_goal(now, id, Some(goal));
    sim.drain();
    assert_eq!(sim.state(id), Seeding, "40,000 / 16,384 is under 3");
    let later = now + Duration::from_secs(10);
    let t = sim.engine.torrent(id).expect("listed");
    assert_eq!(
        t.history(later),
        crate::torrent::TransferHistory {
            seeding_time: Duration::from_secs(3610),
            ..before
        }
    );
    assert_eq!(sim.engine.totals(), (0, 0));
    let goal = SeedingGoal {
        ratio: Some(2.0),
        seeding_time: None,
        inactive_time: None,
    };
    sim.engine.set_seeding_goal(now, id, Some(goal));
    sim.drain();
    assert_eq!(sim.state(id), Paused, "40,000 / 16,384 is over 2");
    assert!(sim.events.contains(&Event::SeedingGoalReached(id)));
}

#[test]
fn a_global_download_rate_is_shared_and_a_limited_torrent_leaves_the_rest() {
    let mut sim = Sim::new(SessionLimits::default());
    let a = sim.add(1, StartMode::Fresh);
    let b = sim.add(2, StartMode::Fresh);
    let limit = |sim: &Sim, id| {
        let t = sim.engine.torrent(id).expect("listed");
        t.effective_rate_limits().1
    };
    assert_eq!((limit(&sim, a), limit(&sim, b)), (0, 0), "no limit yet");
    let now = sim.now;
    let limits = SessionLimits {
        download_rate: 100_000,
        ..SessionLimits::default()
    };
    sim.engine.set_limits(now, limits.clone());
    sim.drain();
    assert_eq!((limit(&sim, a), limit(&sim, b)), (50_000, 50_000));
    // Still even after rounds without traffic (neither uses its share:
    // the spare is spread evenly).
    sim.run_to(now + Duration::from_secs(3));
    assert_eq!((limit(&sim, a), limit(&sim, b)), (50_000, 50_000));
    // `a` may take 10 kB/s: the other 90 go to `b`, round after round.
    let now = sim.now;
    sim.engine.set_rate_limits(now, a, 0, 10_000);
    sim.run_to(now + Duration::from_secs(1));
    assert_eq!((limit(&sim, a), limit(&sim, b)), (10_000, 90_000));
    sim.run_to(now + Duration::from_secs(4));
    assert_eq!((limit(&sim, a), limit(&sim, b)), (10_000, 90_000));
    // The user's own limit reads back as set.
    let t = sim.engine.torrent(a).expect("listed");
    assert_eq!(t.rate_limits(), (0, 10_000));
    // A seed takes no download share; a third download splits with `b`.
    let c = sim.add(3, StartMode::Fresh);
    sim.drain();
    assert_eq!(limit(&sim, a), 10_000);
    assert_eq!(limit(&sim, b) + limit(&sim, c), 90_000);
    assert_eq!(limit(&sim, b), 45_000);
}

#[test]
fn the_upload_rate_is_shared_by_downloads_and_seeds() {
    let mut sim = Sim::new(SessionLimits {
        upload_rate: 60_000,
        ..SessionLimits::default()
    });
    let a = sim.add(1, StartMode::Fresh);
    let b = sim.add(2, StartMode::Trusted(crate::Bitfield::full(1)));
    let c = sim.add(3, StartMode::Check);
    let up = |sim: &Sim, id| {
        sim.engine
            .torrent(id)
            .expect("listed")
            .effective_rate_limits()
            .0
    };
    assert_eq!((up(&sim, a), up(&sim, b)), (30_000, 30_000));
    // Checking, `c` uploads nothing: a floor until it runs.
    assert_eq!(up(&sim, c), 16_384);
    sim.check_ok(c);
    assert_eq!(sim.state(c), Seeding);
    assert_eq!(up(&sim, a) + up(&sim, b) + up(&sim, c), 60_000);
    assert_eq!(up(&sim, c), 20_000);
}

#[test]
fn the_buffer_budget_is_split_among_downloads_with_a_floor() {
    let mut sim = Sim::new(SessionLimits {
        max_buffered_bytes: 24 << 20,
        ..SessionLimits::default()
    });
    let ids: Vec<TorrentId> = (1..=3).map(|n| sim.add(n, StartMode::Fresh)).collect();
    let seed = sim.add(9, StartMode::Trusted(crate::Bitfield::full(1)));
    let budget = |sim: &Sim, id| sim.engine.torrent(id).expect("listed").max_buffered_bytes();
    for id in &ids {
        assert_eq!(budget(&sim, *id), 8 << 20);
    }
    let own = crate::torrent::TorrentConfig::default().max_buffered_bytes;
    assert_eq!(budget(&sim, seed), own, "a seed buffers nothing");
    // Ten downloads: 2.4 MiB each would starve them; each keeps 4 MiB.
    let more: Vec<TorrentId> = (10..17).map(|n| sim.add(n, StartMode::Fresh)).collect();
    for id in ids.iter().chain(&more) {
        assert_eq!(budget(&sim, *id), 4 << 20);
    }
}

#[test]
fn session_totals_keep_removed_torrents() {
    let mut sim = Sim::new(SessionLimits::default());
    let a = sim.add(1, StartMode::Fresh);
    assert_eq!(sim.engine.totals(), (0, 0));
    let now = sim.now;
    sim.engine.remove(now, a);
    sim.drain();
    assert_eq!(sim.engine.totals(), (0, 0));
    assert!(sim.engine.queue().is_empty());
}

/// Three torrents with peers to spare, peers connecting to us all along,
/// and timers firing: the open connections never exceed the session's
/// budget, and every torrent keeps some.
#[test]
fn the_connection_budget_holds_over_all_torrents() {
    const MAX: usize = 20;
    let mut sim = Sim::new(SessionLimits {
        max_connections: MAX,
        ..SessionLimits::default()
    });
    let infos: Vec<TorrentInfo> = (1..=3).map(|n| info(n, 4)).collect();
    let ids: Vec<TorrentId> = infos
        .iter()
        .map(|i| {
            let now = sim.now;
            sim.engine
                .add_torrent(now, i.clone(), StartMode::Fresh)
                .expect("added")
        })
        .collect();
    let addr =
        |t: usize, n: u32| SocketAddr::from(([127, 1 + t as u8, (n >> 8) as u8, n as u8], 6881));
    for (k, id) in ids.iter().enumerate() {
        let peers: Vec<SocketAddr> = (0..40).map(|n| addr(k, n)).collect();
        let now = sim.now;
        sim.engine.add_peers(now, *id, peers);
    }
    // The driver's view: every connection open or being opened.
    let mut open: BTreeSet<ConnId> = BTreeSet::new();
    let mut most = 0;
    let mut incoming = 0u32;
    for round in 0..200u32 {
        loop {
            let now = sim.now;
            match sim.engine.poll_output(now) {
                Output::Timeout(_) => break,
                Output::Tcp { conn, action } => match action {
                    TcpAction::Connect(_) => {
                        assert!(open.insert(conn));
                        sim.engine.handle_tcp_connected(now, conn);
                    }
                    TcpAction::Close => {
                        open.remove(&conn);
                    }
                    TcpAction::Send(_) => {}
                },
                Output::Http { request, .. } => {
                    let err = Err(TrackerError::Unreachable("test".into()));
                    sim.engine.handle_http(now, request, err);
                }
                _ => {}
            }
            most = most.max(open.len());
            assert!(open.len() <= MAX, "{} open, round {round}", open.len());
            assert!(sim.engine.connection_count() <= MAX);
        }
        // Two peers knock each round, one for each of two torrents.
        for k in [round as usize % 3, (round as usize + 1) % 3] {
            incoming += 1;
            let from = SocketAddr::from(([127, 9, (incoming >> 8) as u8, incoming as u8], 5000));
            let now = sim.now;
            if let Some(conn) = sim.engine.handle_tcp_incoming(now, from) {
                assert!(open.insert(conn));
                let mut hs = Vec::new();
                crate::wire::Handshake {
                    reserved: crate::wire::Reserved::FAST,
                    info_hash: infos[k].info_hash,
                    peer_id: crate::wire::PeerId([incoming as u8; 20]),
                }
                .encode(&mut hs);
                sim.engine.handle_tcp_data(now, conn, &hs);
            }
            assert!(open.len() <= MAX, "{} open after an accept", open.len());
        }
        sim.now += Duration::from_millis(250);
        let now = sim.now;
        sim.engine.handle_timeout(now);
    }
    assert!(most >= MAX - 4, "the budget is used: at most {most} open");
    for id in &ids {
        let t = sim.engine.torrent(*id).expect("listed");
        assert!(t.peer_count() >= 3, "{id:?} has {} peers", t.peer_count());
    }
}
