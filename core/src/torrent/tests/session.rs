//! What the session's policy asks of one torrent: a share of the
//! session's budgets that holds alongside the user's own limits, queueing
//! and back, the peer list and rates the application shows, and
//! first-and-last-piece priority.

use super::*;
use crate::wire::PeerId;

fn pair(data: &[u8], seeder_start: StartMode) -> (Vec<Node>, SocketAddr) {
    let info = info_for(data, 32768);
    let seed_addr: SocketAddr = "127.0.0.1:1001".parse().unwrap();
    let leech_addr: SocketAddr = "127.0.0.1:1002".parse().unwrap();
    let cfg = |id: u8| TorrentConfig {
        peer_id: PeerId([id; 20]),
        ..TorrentConfig::default()
    };
    let seeder = Torrent::new(
        Instant::ZERO,
        info.clone(),
        cfg(1),
        seeder_start,
        Seed::from_u64(1),
    );
    let leecher = Torrent::new(
        Instant::ZERO,
        info,
        cfg(2),
        StartMode::Fresh,
        Seed::from_u64(2),
    );
    let nodes = vec![
        Node::new(seeder, data.to_vec(), seed_addr),
        Node::new(leecher, vec![0; data.len()], leech_addr),
    ];
    (nodes, seed_addr)
}

/// A session share of 100,000 B/s on the leecher holds like a limit of
/// its own (about three seconds for 300,000 bytes) while the user's
/// limits read back as none; mid-way, both ends list the other with
/// its rates, totals, flags and where it came from.
#[test]
fn a_session_share_limits_the_rate_and_peers_are_listed() {
    let data = content(300_000);
    let (mut nodes, seed_addr) = pair(&data, StartMode::Check);
    let mut links = BTreeMap::new();
    let mut next = 0;
    run(&mut nodes, &mut links, Instant::ZERO, &mut next);
    let share = SessionShare {
        download_rate: Some(100_000),
        ..SessionShare::default()
    };
    nodes[1].t.set_session_share(Instant::ZERO, share);
    assert_eq!(nodes[1].t.rate_limits(), (0, 0));
    assert_eq!(nodes[1].t.effective_rate_limits(), (0, 100_000));
    nodes[1]
        .t
        .add_peers(Instant::ZERO, [seed_addr], PeerSource::Tracker);
    let mid = run_until(
        &mut nodes,
        &mut links,
        Instant::ZERO,
        &mut next,
        10_000,
        |n| n[1].t.counters().1 >= 150_000,
    )
    .expect("half-way");
    let leecher = nodes[1].t.peers_info(mid);
    assert_eq!(leecher.len(), 1);
    let p = &leecher[0];
    assert_eq!(p.addr, seed_addr);
    assert_eq!(p.direction, Direction::Outgoing);
    assert_eq!(p.source, PeerSource::Tracker);
    assert_eq!(p.progress, 1.0);
    assert!(p.downloaded >= 150_000 && p.uploaded == 0, "{p:?}");
    assert!(p.flags.am_interested && !p.flags.peer_choking, "{p:?}");
    // The meters average over five seconds, from the first byte.
    let (down, up) = nodes[1].t.rates(mid);
    assert!((10_000..=150_000).contains(&down), "{down} B/s");
    assert_eq!(up, 0);
    assert_eq!(p.download_rate, down);
    let seeder = nodes[0].t.peers_info(mid);
    assert_eq!(seeder.len(), 1);
    let p = &seeder[0];
    assert_eq!(
        (p.direction, p.source),
        (Direction::Incoming, PeerSource::Incoming)
    );
    assert!(p.uploaded >= 150_000 && p.progress < 1.0, "{p:?}");
    assert!(!p.flags.am_choking && p.flags.peer_interested, "{p:?}");
    assert_eq!(nodes[0].t.rates(mid).1, p.upload_rate);
    let done = run_until(&mut nodes, &mut links, mid, &mut next, 10_000, |n| {
        n[1].t.is_finished()
    })
    .expect("finished");
    let secs = done.since_epoch().as_secs_f64();
    assert!((1.5..4.0).contains(&secs), "took {secs} s at 100,000 B/s");
    assert_eq!(nodes[1].disk, data);
}

/// Queued mid-download, the leecher closes its connection and waits;
/// back in the running it reconnects and finishes.
#[test]
fn a_queued_torrent_closes_its_connections_and_comes_back() {
    let data = content(300_000);
    let (mut nodes, seed_addr) = pair(&data, StartMode::Check);
    let mut links = BTreeMap::new();
    let mut next = 0;
    run(&mut nodes, &mut links, Instant::ZERO, &mut next);
    nodes[1]
        .t
        .add_peers(Instant::ZERO, [seed_addr], PeerSource::Tracker);
    let share = SessionShare {
        download_rate: Some(100_000),
        ..SessionShare::default()
    };
    nodes[1].t.set_session_share(Instant::ZERO, share);
    let mid = run_until(
        &mut nodes,
        &mut links,
        Instant::ZERO,
        &mut next,
        10_000,
        |n| n[1].t.counters().1 >= 100_000,
    )
    .expect("under way");
    nodes[1].t.queue(mid);
    assert_eq!(nodes[1].t.state(), TorrentState::Queued);
    assert_eq!(nodes[1].t.resumes_as(), TorrentState::Downloading);
    assert_eq!(nodes[1].t.peer_count(), 0);
    run(&mut nodes, &mut links, mid, &mut next);
    assert_eq!(nodes[0].t.peer_count(), 0, "the seeder saw it go");
    let got = nodes[1].t.counters().1;
    let later = mid + Duration::from_secs(120);
    nodes[1].t.handle_timeout(later);
    run(&mut nodes, &mut links, later, &mut next);
    assert_eq!(nodes[1].t.counters().1, got, "nothing while queued");
    nodes[1].t.dequeue(later);
    assert_eq!(nodes[1].t.state(), TorrentState::Downloading);
    let done = run_until(&mut nodes, &mut links, later, &mut next, 10_000, |n| {
        n[1].t.is_finished()
    });
    assert!(done.is_some());
    assert_eq!(nodes[1].disk, data);
}

/// Queued before it begins, a torrent asks for no check and no
/// announce; dequeued, it begins as it would have.
#[test]
fn a_torrent_queued_before_it_begins_does_nothing_until_dequeued() {
    let data = content(100_000);
    let info = info_for(&data, 32768);
    let mut t = Torrent::new_queued(
        Instant::ZERO,
        info,
        TorrentConfig::default(),
        StartMode::Check,
        Seed::from_u64(5),
    );
    let outs: Vec<TorrentOutput> = std::iter::from_fn(|| t.poll_output()).collect();
    assert_eq!(
        outs,
        vec![TorrentOutput::Event(TorrentEvent::StateChanged(
            TorrentState::Queued
        ))]
    );
    assert_eq!(t.resumes_as(), TorrentState::Checking);
    // Paused and resumed, it stays out of the running until dequeued:
    // the engine decides (it resumes a paused torrent itself).
    t.pause(Instant::ZERO);
    assert_eq!(t.state(), TorrentState::Paused);
    assert_eq!(t.resumes_as(), TorrentState::Checking);
    t.queue(Instant::ZERO);
    t.dequeue(Instant::ZERO);
    assert_eq!(t.state(), TorrentState::Checking);
    let checks = std::iter::from_fn(|| t.poll_output())
        .filter(|o| matches!(o, TorrentOutput::Check { .. }))
        .count();
    assert!(checks > 0);
}

/// A fresh torrent of two files, `a` and `b`, of that many 16 KiB pieces.
fn two_files(a: u64, b: u64) -> Torrent {
    let mut builder = TorrentBuilder::multi_file("m");
    builder
        .add_file(vec!["a".into()], a * 16384)
        .add_file(vec!["b".into()], b * 16384)
        .set_piece_length(16384);
    let mut h = PieceHasher::new(16384);
    h.update(&content(((a + b) * 16384) as usize));
    let bytes = builder.build(&h.finish()).unwrap();
    let info = TorrentInfo::from_metainfo(&crate::metainfo::Metainfo::from_bytes(&bytes).unwrap());
    Torrent::new(
        Instant::ZERO,
        info,
        TorrentConfig::default(),
        StartMode::Fresh,
        Seed::from_u64(1),
    )
}

/// The priority of every piece of `t`.
fn prios(t: &Torrent) -> Vec<Priority> {
    (0..t.picker.piece_count())
        .map(|p| t.picker.priority(PieceIndex(p)))
        .collect()
}

/// First-and-last-piece priority raises the ends of every wanted file
/// above the file priorities, and goes away when turned off.
#[test]
fn first_and_last_pieces_of_wanted_files_go_first() {
    let now = Instant::ZERO;
    let mut t = two_files(5, 3);
    use Priority::{High, Low, Normal, Skip};
    t.set_first_last_priority(now, true);
    assert!(t.first_last_priority());
    assert_eq!(
        prios(&t),
        vec![High, Normal, Normal, Normal, High, High, Normal, High]
    );
    t.set_file_priorities(now, &[Low, Skip]);
    assert_eq!(prios(&t), vec![High, Low, Low, Low, High, Skip, Skip, Skip]);
    assert_eq!(t.wanted_bytes(), 5 * 16384);
    t.set_first_last_priority(now, false);
    assert_eq!(prios(&t), vec![Low, Low, Low, Low, Low, Skip, Skip, Skip]);
}

/// A stream's time-critical pieces are wanted even in a skipped file,
/// only while they are critical; the file priorities stay as they were.
#[test]
fn critical_pieces_of_a_skipped_file_are_wanted_while_critical() {
    let now = Instant::ZERO;
    let mut t = two_files(2, 4);
    use Priority::{High, Low, Skip};
    t.set_file_priorities(now, &[High, Skip]);
    assert_eq!(t.wanted_bytes(), 2 * 16384);
    t.set_critical(now, vec![PieceIndex(3), PieceIndex(2), PieceIndex(5)]);
    assert_eq!(prios(&t), vec![High, High, Low, Low, Skip, Low]);
    assert_eq!(t.wanted_bytes(), 5 * 16384);
    // A change of file priorities keeps the stream's pieces wanted.
    t.set_file_priorities(now, &[Low, Skip]);
    assert_eq!(prios(&t), vec![Low, Low, Low, Low, Skip, Low]);
    // The stream closed: back to what the user chose.
    t.set_critical(now, Vec::new());
    assert_eq!(prios(&t), vec![Low, Low, Skip, Skip, Skip, Skip]);
    assert_eq!(t.wanted_bytes(), 2 * 16384);
}
