//! The engine's own lifecycle, one engine driven by hand: a shutdown waits
//! for the `stopped` announce (or its grace period) and ends with
//! `Event::Stopped`; zero-length files and `x.pe` names are outputs, not
//! the driver's business.

use super::*;
use crate::metainfo::PieceIndex;
use crate::metainfo::{Metainfo, PeerAddr, PieceHasher, TorrentBuilder};
use crate::torrent::{TorrentEvent, TorrentState};

const TRACKER: &str = "http://127.0.0.1:9/announce";

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), Seed::from_u64(7))
}

/// A two-file torrent (16 KiB of data, then an empty file) announcing to
/// [`TRACKER`].
fn info_with_empty_file() -> TorrentInfo {
    let data = vec![5u8; 16384];
    let mut b = TorrentBuilder::multi_file("top");
    b.add_file(vec!["data".into()], data.len() as u64)
        .add_file(vec!["empty".into()], 0)
        .set_piece_length(16384);
    b.add_tracker_tier(vec![TRACKER.to_owned()]);
    let mut h = PieceHasher::new(16384);
    h.update(&data);
    let bytes = b.build(&h.finish()).expect("builds");
    TorrentInfo::from_metainfo(&Metainfo::from_bytes(&bytes).expect("parses"))
}

/// Every output up to the timeout.
fn drain(engine: &mut Engine, now: Instant) -> (Vec<Output>, Instant) {
    let mut outs = Vec::new();
    loop {
        match engine.poll_output(now) {
            Output::Timeout(t) => return (outs, t),
            o => outs.push(o),
        }
    }
}

fn http_requests(outs: &[Output]) -> Vec<(RequestId, String)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Http { request, url, .. } => Some((*request, url.clone())),
            _ => None,
        })
        .collect()
}

fn stopped(outs: &[Output]) -> bool {
    outs.iter()
        .any(|o| matches!(o, Output::Event(Event::Stopped)))
}

/// An engine with one running torrent whose `started` announce failed.
fn running() -> (Engine, TorrentId, Instant) {
    let mut e = engine();
    let now = Instant::ZERO;
    let id = e
        .add_torrent(now, info_with_empty_file(), StartMode::Fresh)
        .expect("added");
    let (outs, _) = drain(&mut e, now);
    for (request, url) in http_requests(&outs) {
        assert!(url.contains("event=started"), "{url}");
        e.handle_http(now, request, Err(TrackerError::Unreachable("test".into())));
    }
    (e, id, now)
}

#[test]
fn shutdown_waits_for_the_stopped_announce() {
    let (mut e, _, now) = running();
    let (_, _) = drain(&mut e, now);
    e.shutdown(now);
    let (outs, _) = drain(&mut e, now);
    let asks = http_requests(&outs);
    assert_eq!(asks.len(), 1, "one stopped announce: {outs:?}");
    assert!(asks[0].1.contains("event=stopped"), "{}", asks[0].1);
    assert!(!stopped(&outs), "stopped before the tracker was told");
    let later = now + Duration::from_millis(300);
    e.handle_http(
        later,
        asks[0].0,
        Err(TrackerError::Unreachable("gone".into())),
    );
    let (outs, _) = drain(&mut e, later);
    assert!(
        stopped(&outs),
        "no Event::Stopped after the answer: {outs:?}"
    );
    // Reported once.
    e.handle_timeout(later + Duration::from_secs(10));
    let (outs, _) = drain(&mut e, later + Duration::from_secs(10));
    assert!(!stopped(&outs));
}

#[test]
fn shutdown_ends_after_its_grace_period_when_a_tracker_never_answers() {
    let (mut e, _, now) = running();
    e.shutdown(now);
    let (outs, wake) = drain(&mut e, now);
    assert!(!stopped(&outs));
    assert!(
        wake <= now + SHUTDOWN_GRACE,
        "no timer for the grace period"
    );
    let mut t = wake;
    let mut seen = false;
    for _ in 0..100 {
        e.handle_timeout(t);
        let (outs, next) = drain(&mut e, t);
        if stopped(&outs) {
            seen = true;
            break;
        }
        t = next.max(t + Duration::from_millis(1));
    }
    assert!(seen, "no Event::Stopped by the grace period");
    assert!(t >= now + SHUTDOWN_GRACE && t <= now + SHUTDOWN_GRACE + Duration::from_secs(1));
}

#[test]
fn a_shutdown_waits_for_disk_jobs_in_flight() {
    let mut e = engine();
    let now = Instant::ZERO;
    let id = e
        .add_torrent(now, info_with_empty_file(), StartMode::Check)
        .expect("added");
    let (outs, _) = drain(&mut e, now);
    let checks: Vec<PieceIndex> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Disk {
                op: DiskOp::Check { piece, .. },
                ..
            } => Some(*piece),
            _ => None,
        })
        .collect();
    assert_eq!(checks.len(), 1);
    e.shutdown(now);
    let (outs, _) = drain(&mut e, now);
    for (request, _) in http_requests(&outs) {
        e.handle_http(now, request, Err(TrackerError::Unreachable("x".into())));
    }
    let (outs, _) = drain(&mut e, now);
    assert!(!stopped(&outs), "stopped with a check in flight");
    e.handle_disk(
        now,
        id,
        DiskResult::Checked {
            piece: checks[0],
            ok: true,
        },
    );
    let (outs, _) = drain(&mut e, now);
    assert!(stopped(&outs), "{outs:?}");
}

#[test]
fn a_shutdown_refuses_new_peers_and_torrents() {
    let (mut e, _, now) = running();
    e.shutdown(now);
    let peer: SocketAddr = "127.0.0.9:5000".parse().expect("addr");
    assert_eq!(e.handle_tcp_incoming(now, peer), None);
    let mut other = info_with_empty_file();
    other.info_hash = InfoHash([9; 20]);
    assert_eq!(e.add_torrent(now, other, StartMode::Fresh), None);
}

#[test]
fn a_complete_torrent_asks_for_its_empty_files_once() {
    let mut e = engine();
    let now = Instant::ZERO;
    let id = e
        .add_torrent(now, info_with_empty_file(), StartMode::Check)
        .expect("added");
    let (outs, _) = drain(&mut e, now);
    for o in outs {
        if let Output::Disk {
            op: DiskOp::Check { piece, .. },
            ..
        } = o
        {
            e.handle_disk(now, id, DiskResult::Checked { piece, ok: true });
        }
    }
    let (outs, _) = drain(&mut e, now);
    let create = outs.iter().position(
        |o| matches!(o, Output::Disk { op: DiskOp::CreateEmpty { files }, .. } if files == &[1]),
    );
    let seeding = outs.iter().position(|o| {
        matches!(
            o,
            Output::Event(Event::Torrent(
                _,
                TorrentEvent::StateChanged(TorrentState::Seeding)
            ))
        )
    });
    assert!(create.is_some() && seeding.is_some(), "{outs:?}");
    assert!(
        create < seeding,
        "files are asked for before Seeding is told"
    );
    e.handle_disk(now, id, DiskResult::Created { ok: false });
    let (outs, _) = drain(&mut e, now);
    assert!(outs.contains(&Output::Event(Event::DiskFailed(id))));
    e.pause(now, id);
    e.resume(now, id);
    let (outs, _) = drain(&mut e, now);
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Disk { .. })),
        "asked twice: {outs:?}"
    );
}

#[test]
fn a_magnets_peer_names_are_resolved_through_the_driver() {
    let mut e = engine();
    let now = Instant::ZERO;
    let magnet = Magnet::parse(
        "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe=peer.invalid:6881",
    )
    .expect("parses");
    assert_eq!(
        magnet.peers,
        vec![PeerAddr::Host("peer.invalid".into(), 6881)]
    );
    e.add_magnet(now, &magnet).expect("added");
    let (outs, _) = drain(&mut e, now);
    let resolve = outs.iter().find_map(|o| match o {
        Output::Resolve { request, host } => Some((*request, host.clone())),
        _ => None,
    });
    let (request, host) = resolve.expect("a Resolve output");
    assert_eq!(host, "peer.invalid:6881");
    let peer: SocketAddr = "127.0.0.5:6881".parse().expect("addr");
    e.handle_resolved(now, request, vec![peer]);
    let (outs, _) = drain(&mut e, now);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Tcp { action: TcpAction::Connect(a), .. } if *a == peer
        )),
        "{outs:?}"
    );
}

/// A removed torrent's deadline leaves the timer table: a past one would
/// wake the driver for ever (each metadata fetch of an index ends so).
#[test]
fn a_removed_torrent_leaves_no_deadline_behind() {
    let (mut e, id, now) = running();
    // A peer to connect to gives the torrent deadlines of its own.
    e.add_peers(now, id, vec!["127.0.0.1:7".parse().expect("addr")]);
    let _ = drain(&mut e, now);
    e.remove(now, id);
    let (_, mut wake) = drain(&mut e, now);
    let end = now + Duration::from_secs(4 * 3600);
    let mut wakes = 0;
    while wake < end {
        e.handle_timeout(wake);
        let (_, next) = drain(&mut e, wake);
        assert!(next > wake, "woken at {wake:?} for {:?}", e.next_timer());
        wake = next;
        wakes += 1;
        assert!(wakes < 100_000);
    }
}
