//! Two torrents wired back to back with instant delivery and in-memory
//! disks: the smallest end-to-end check of the torrent machine. The full
//! seeded network simulations live in `tests/` (bittide-tests).

use std::collections::BTreeMap;

use super::*;
use crate::metainfo::{PieceHasher, TorrentBuilder};
use crate::wire::PeerId;

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

fn info_for(data: &[u8], piece: u32) -> TorrentInfo {
    let mut b = TorrentBuilder::single_file("x", data.len() as u64);
    b.set_piece_length(piece);
    let mut h = PieceHasher::new(piece);
    h.update(data);
    let bytes = b.build(&h.finish()).unwrap();
    let m = crate::metainfo::Metainfo::from_bytes(&bytes).unwrap();
    TorrentInfo::from_metainfo(&m)
}

mod holepunch;
mod leech;
mod metadata;
mod rate_limit;
mod session;
mod uploads;
mod v2_blame;
mod v2_files;
mod v2_magnet;
mod verify_runs;
mod web_seeds;
mod write_through;

struct Node {
    t: Torrent,
    disk: Vec<u8>,
    addr: SocketAddr,
    /// Everything it reported.
    events: Vec<TorrentEvent>,
    /// Connections it opened.
    connects: usize,
}

impl Node {
    fn new(t: Torrent, disk: Vec<u8>, addr: SocketAddr) -> Node {
        Node {
            t,
            disk,
            addr,
            events: Vec::new(),
            connects: 0,
        }
    }
}

/// Where a file slice is in a node's disk: the torrent's files end to end.
fn at_on_disk(t: &Torrent, s: &FileSlice) -> usize {
    let file = t.info().layout.file_range(s.file).map_or(0, |r| r.start);
    (file + s.offset) as usize
}

/// A `Verify` output carried out against `disk`: the run written if
/// every piece's hash matches, then the verdicts.
fn verify_on(
    t: &mut Torrent,
    disk: &mut [u8],
    now: Instant,
    first: PieceIndex,
    pieces: &[VerifyPiece],
    blocks: &[Bytes],
    slices: &[FileSlice],
) {
    let verdicts = crate::engine::run_verdicts(pieces, blocks);
    let ok = verdicts.iter().all(|&v| v);
    if ok {
        let data: Vec<u8> = blocks.concat();
        let mut at = 0usize;
        for s in slices {
            let (start, len) = (at_on_disk(t, s), s.length as usize);
            disk[start..start + len].copy_from_slice(&data[at..at + len]);
            at += len;
        }
    }
    t.handle_verified_run(now, first, &verdicts, ok);
}

/// Runs both torrents until quiet, delivering every output at once.
fn run(
    nodes: &mut [Node],
    links: &mut BTreeMap<(usize, ConnId), (usize, ConnId)>,
    now: Instant,
    next_conn: &mut u64,
) {
    for _round in 0..10_000 {
        let mut any = false;
        for i in 0..nodes.len() {
            while let Some(o) = nodes[i].t.poll_output() {
                any = true;
                match o {
                    TorrentOutput::Connect { conn, addr } => {
                        nodes[i].connects += 1;
                        let j = nodes.iter().position(|n| n.addr == addr).unwrap();
                        let remote = ConnId::new(1_000_000 + *next_conn);
                        *next_conn += 1;
                        let from = nodes[i].addr;
                        if nodes[j].t.handle_incoming(now, remote, from) {
                            links.insert((i, conn), (j, remote));
                            links.insert((j, remote), (i, conn));
                            nodes[i].t.handle_connected(now, conn);
                        } else {
                            nodes[i].t.handle_connect_failed(now, conn);
                        }
                    }
                    TorrentOutput::Send { conn, data } => {
                        if let Some(&(j, rc)) = links.get(&(i, conn)) {
                            nodes[j].t.handle_bytes(now, rc, &data);
                        }
                        nodes[i].t.handle_sent(now, conn, data.len());
                    }
                    TorrentOutput::Close { conn } => {
                        if let Some((j, rc)) = links.remove(&(i, conn)) {
                            links.remove(&(j, rc));
                            nodes[j].t.handle_closed(now, rc);
                        }
                    }
                    TorrentOutput::Verify {
                        first,
                        pieces,
                        blocks,
                        slices,
                    } => {
                        let n = &mut nodes[i];
                        verify_on(&mut n.t, &mut n.disk, now, first, &pieces, &blocks, &slices);
                    }
                    TorrentOutput::Write {
                        block,
                        blocks,
                        slices,
                        hasher,
                    } => {
                        let data = blocks.concat();
                        let mut at = 0usize;
                        for s in slices {
                            let (o, l) = (at_on_disk(&nodes[i].t, &s), s.length as usize);
                            nodes[i].disk[o..o + l].copy_from_slice(&data[at..at + l]);
                            at += l;
                        }
                        let hash = crate::engine::write_hash(hasher, &blocks);
                        nodes[i].t.handle_written(now, block, true, hash);
                    }
                    TorrentOutput::Read {
                        conn,
                        block,
                        slices,
                    } => {
                        let mut data = Vec::new();
                        for s in slices {
                            let o = at_on_disk(&nodes[i].t, &s);
                            data.extend_from_slice(&nodes[i].disk[o..o + s.length as usize]);
                        }
                        nodes[i].t.handle_read(now, conn, block, Some(&data));
                    }
                    TorrentOutput::Check {
                        piece,
                        slices,
                        hash,
                    } => {
                        let mut h = hash.checker();
                        for s in slices {
                            let o = at_on_disk(&nodes[i].t, &s);
                            h.update(&nodes[i].disk[o..o + s.length as usize]);
                        }
                        nodes[i].t.handle_checked(now, piece, h.finish());
                    }
                    TorrentOutput::Event(e) => nodes[i].events.push(e),
                    TorrentOutput::Announce { .. } | TorrentOutput::WebSeed { .. } => {}
                }
                nodes[i].t.check_invariants().unwrap();
            }
        }
        if !any {
            return;
        }
    }
    panic!("no quiescence");
}

/// Runs, then moves the clock to the next deadline, at most `steps`
/// times, until `done`; returns the time it was done at.
fn run_until(
    nodes: &mut [Node],
    links: &mut BTreeMap<(usize, ConnId), (usize, ConnId)>,
    mut now: Instant,
    next_conn: &mut u64,
    steps: usize,
    done: impl Fn(&[Node]) -> bool,
) -> Option<Instant> {
    for _ in 0..steps {
        run(nodes, links, now, next_conn);
        if done(nodes) {
            return Some(now);
        }
        now = nodes
            .iter()
            .filter_map(|n| n.t.poll_timeout())
            .min()?
            .max(now + Duration::from_millis(1));
        for n in nodes.iter_mut() {
            n.t.handle_timeout(now);
        }
    }
    None
}

#[test]
fn a_leecher_downloads_everything_from_a_checked_seeder() {
    leecher_downloads_everything(TorrentConfig::default().max_buffered_bytes);
}

/// Pieces of 32 KiB with a 64 KiB budget: each block is written as it
/// arrives and every piece is verified from disk.
#[test]
fn pieces_larger_than_a_quarter_of_the_budget_are_written_through() {
    leecher_downloads_everything(64 << 10);
}

fn leecher_downloads_everything(budget: u64) {
    let data = content(300_000);
    let info = info_for(&data, 32768);
    let seed_addr: SocketAddr = "127.0.0.1:1001".parse().unwrap();
    let leech_addr: SocketAddr = "127.0.0.1:1002".parse().unwrap();
    let cfg = |id: u8, _base: u64| TorrentConfig {
        peer_id: PeerId([id; 20]),
        max_buffered_bytes: budget,
        ..TorrentConfig::default()
    };
    let mut nodes = vec![
        Node::new(
            Torrent::new(
                Instant::ZERO,
                info.clone(),
                cfg(1, 0),
                StartMode::Check,
                Seed::from_u64(1),
            ),
            data.clone(),
            seed_addr,
        ),
        Node::new(
            Torrent::new(
                Instant::ZERO,
                info,
                cfg(2, 100),
                StartMode::Fresh,
                Seed::from_u64(2),
            ),
            vec![0; data.len()],
            leech_addr,
        ),
    ];
    let mut links = BTreeMap::new();
    let mut next = 0;
    run(&mut nodes, &mut links, Instant::ZERO, &mut next);
    assert_eq!(nodes[0].t.state(), TorrentState::Seeding);
    nodes[1]
        .t
        .add_peers(Instant::ZERO, [seed_addr], PeerSource::Tracker);
    let now = run_until(&mut nodes, &mut links, Instant::ZERO, &mut next, 100, |n| {
        n[1].t.is_finished()
    });
    assert!(now.is_some());
    assert_eq!(nodes[1].disk, data);
    assert_eq!(nodes[1].t.state(), TorrentState::Seeding);
    let (up, _, _) = nodes[0].t.counters();
    let (_, down, left) = nodes[1].t.counters();
    assert_eq!(left, 0);
    assert_eq!(up, data.len() as u64);
    assert_eq!(down, data.len() as u64);
}

#[test]
fn pause_resume_and_stop() {
    let data = content(100_000);
    let info = info_for(&data, 16384);
    let mut t = Torrent::new(
        Instant::ZERO,
        info,
        TorrentConfig::default(),
        StartMode::Fresh,
        Seed::from_u64(5),
    );
    t.add_peers(
        Instant::ZERO,
        ["127.0.0.1:7000".parse().unwrap()],
        PeerSource::User,
    );
    let outputs: Vec<_> = std::iter::from_fn(|| t.poll_output()).collect();
    assert!(outputs
        .iter()
        .any(|o| matches!(o, TorrentOutput::Connect { .. })));
    assert_eq!(t.peer_count(), 1);
    t.pause(Instant::ZERO);
    assert_eq!(t.state(), TorrentState::Paused);
    assert_eq!(t.peer_count(), 0);
    assert_eq!(t.poll_timeout(), None);
    t.resume(Instant::ZERO);
    assert_eq!(t.state(), TorrentState::Downloading);
    t.stop(Instant::ZERO);
    assert_eq!(t.state(), TorrentState::Stopped);
    t.resume(Instant::ZERO);
    assert_eq!(t.state(), TorrentState::Stopped, "stopped is final");
    assert!(!t.handle_incoming(
        Instant::ZERO,
        ConnId::new(99),
        "127.0.0.1:7001".parse().unwrap()
    ));
}

/// A finished leecher whose piece 2 is damaged on disk: a forced recheck
/// finds it, recomputes what is on disk and left, downloads that piece
/// alone again, and finishes with identical data.
#[test]
fn a_recheck_finds_a_damaged_piece_and_downloads_it_again() {
    let data = content(300_000);
    let info = info_for(&data, 32768);
    let (seed_addr, leech_addr): (SocketAddr, SocketAddr) = (
        "127.0.0.1:1001".parse().unwrap(),
        "127.0.0.1:1002".parse().unwrap(),
    );
    let n = info.layout.piece_count();
    let config = |id: u8| TorrentConfig {
        peer_id: PeerId([id; 20]),
        ..TorrentConfig::default()
    };
    let seed = Torrent::new(
        Instant::ZERO,
        info.clone(),
        config(1),
        StartMode::Trusted(Bitfield::full(n)),
        Seed::from_u64(1),
    );
    let leech = Torrent::new(
        Instant::ZERO,
        info,
        config(2),
        StartMode::Fresh,
        Seed::from_u64(2),
    );
    let mut nodes = vec![
        Node::new(seed, data.clone(), seed_addr),
        Node::new(leech, vec![0; data.len()], leech_addr),
    ];
    nodes[1]
        .t
        .add_peers(Instant::ZERO, [seed_addr], PeerSource::Tracker);
    let (mut links, mut next) = (BTreeMap::new(), 0);
    let done = |n: &[Node]| n[1].t.is_finished();
    let at = run_until(&mut nodes, &mut links, Instant::ZERO, &mut next, 100, done).unwrap();

    nodes[1].disk[2 * 32768 + 100] ^= 0xff;
    nodes[1].events.clear();
    nodes[1].t.recheck(at);
    assert_eq!(nodes[1].t.state(), TorrentState::Checking);
    assert_eq!(nodes[1].t.have().count(), 0, "nothing counts until checked");
    assert_eq!(nodes[1].t.counters().2, data.len() as u64);
    // The checks are answered at once: piece 2 is missing again.
    run(&mut nodes, &mut links, at, &mut next);
    let after_check = nodes[1]
        .events
        .iter()
        .position(|e| *e == TorrentEvent::StateChanged(TorrentState::Downloading))
        .expect("the check ended");
    assert!(nodes[1].events[..after_check]
        .iter()
        .all(|e| !matches!(e, TorrentEvent::PieceDone(_))));
    let at = run_until(&mut nodes, &mut links, at, &mut next, 100, done).unwrap();
    let redone: Vec<&TorrentEvent> = nodes[1]
        .events
        .iter()
        .filter(|e| matches!(e, TorrentEvent::PieceDone(_)))
        .collect();
    assert_eq!(redone, vec![&TorrentEvent::PieceDone(PieceIndex(2))]);
    assert!(nodes[1].disk == data, "identical data");
    assert_eq!(nodes[1].t.counters().2, 0);
    assert!(at > Instant::ZERO);
}

#[test]
fn a_reannounce_goes_out_at_once_and_not_while_stopped() {
    let data = content(50_000);
    let mut info = info_for(&data, 16384);
    info.trackers = vec![vec!["http://tracker.example/announce".to_owned()]];
    let mut t = Torrent::new(
        Instant::ZERO,
        info,
        TorrentConfig::default(),
        StartMode::Fresh,
        Seed::from_u64(3),
    );
    let announces = |t: &mut Torrent| -> Vec<AnnounceRequest> {
        std::iter::from_fn(|| t.poll_output())
            .filter_map(|o| match o {
                TorrentOutput::Announce { request, .. } => Some(request),
                _ => None,
            })
            .collect()
    };
    assert_eq!(announces(&mut t).len(), 1, "started");
    let url = "http://tracker.example/announce";
    let reply = AnnounceResponse {
        interval: 1800,
        ..AnnounceResponse::default()
    };
    t.handle_announce(Instant::ZERO, url, Ok(reply));
    let later = Instant::ZERO + Duration::from_secs(60);
    t.handle_timeout(later);
    assert!(announces(&mut t).is_empty(), "not due for half an hour");
    t.reannounce(later);
    let sent = announces(&mut t);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].event, crate::tracker::AnnounceEvent::None);
    t.stop(later);
    let _ = announces(&mut t);
    t.reannounce(later);
    assert!(announces(&mut t).is_empty());
}

/// A limit set while running holds from then on: 300,000 bytes at
/// 100,000 B/s take about three seconds (less the first burst), and
/// lifting it lets the rest through at once.
#[test]
fn rate_limits_set_while_running_apply() {
    let data = content(300_000);
    let info = info_for(&data, 32768);
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
        StartMode::Check,
        Seed::from_u64(1),
    );
    let leecher = Torrent::new(
        Instant::ZERO,
        info,
        cfg(2),
        StartMode::Fresh,
        Seed::from_u64(2),
    );
    let mut nodes = vec![
        Node::new(seeder, data.clone(), seed_addr),
        Node::new(leecher, vec![0; data.len()], leech_addr),
    ];
    let mut links = BTreeMap::new();
    let mut next = 0;
    run(&mut nodes, &mut links, Instant::ZERO, &mut next);
    nodes[0].t.set_rate_limits(Instant::ZERO, 100_000, 0);
    assert_eq!(nodes[0].t.rate_limits(), (100_000, 0));
    nodes[1]
        .t
        .add_peers(Instant::ZERO, [seed_addr], PeerSource::Tracker);
    let done = run_until(
        &mut nodes,
        &mut links,
        Instant::ZERO,
        &mut next,
        10_000,
        |n| n[1].t.is_finished(),
    )
    .expect("finished");
    let secs = done.since_epoch().as_secs_f64();
    assert!((1.5..4.0).contains(&secs), "took {secs} s at 100,000 B/s");
    assert_eq!(nodes[1].disk, data);
}
