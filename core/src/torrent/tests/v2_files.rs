//! A v2 torrent's piece space is per file (BEP 52: each file starts on a
//! piece boundary): a skipped file costs no byte, and resuming from pieces
//! on disk fetches only the others.

use super::metadata::{among_seeders, config};
use super::v2_magnet::{v2_torrent, PIECE};
use super::*;

/// `a.bin` is pieces 0–2, `b.bin` (180,000 bytes and padding) 3–8.
const A: usize = 3 * PIECE as usize;
const B: usize = 180_000;

/// Node 0 (started as `start`, with `disk`) downloads from a seeder of
/// `info`; it has finished when this returns.
fn download(
    info: &TorrentInfo,
    data: &[u8],
    start: StartMode,
    disk: Vec<u8>,
    skip_a: bool,
) -> Node {
    let mut leecher = Torrent::new(
        Instant::ZERO,
        info.clone(),
        config(100),
        start,
        Seed::from_u64(7),
    );
    if skip_a {
        let normal = Priority::Normal;
        leecher.set_file_priorities(Instant::ZERO, &[Priority::Skip, normal, normal]);
    }
    let mut nodes = among_seeders(leecher, vec![(info.clone(), data.to_vec())]);
    nodes[0].disk = disk;
    let (mut links, mut next) = (BTreeMap::new(), 0);
    run_until(&mut nodes, &mut links, Instant::ZERO, &mut next, 400, |n| {
        n[0].t.is_finished()
    })
    .expect("finished");
    nodes.swap_remove(0)
}

#[test]
fn a_skipped_v2_file_costs_nothing_and_a_resume_fetches_only_what_is_missing() {
    let (info, data) = v2_torrent();
    assert_eq!(info.layout.file_pieces(0), PieceIndex(0)..PieceIndex(3));
    assert_eq!(info.layout.file_pieces(1), PieceIndex(3)..PieceIndex(9));
    // b.bin alone: not one byte of a.bin is fetched or written.
    let node = download(&info, &data, StartMode::Fresh, vec![0; data.len()], true);
    assert!(node.disk[..A].iter().all(|b| *b == 0), "a.bin was written");
    assert_eq!(node.disk[A..A + B], data[A..A + B]);
    let fetched = node.t.counters().1 as usize;
    assert!(
        (B..=6 * PIECE as usize).contains(&fetched),
        "{fetched} bytes"
    );
    // Resumed with a.bin on disk (resume data says so): only b.bin comes.
    let mut have = Bitfield::new(info.layout.piece_count());
    for p in 0..3 {
        have.set(PieceIndex(p));
    }
    let mut disk = vec![0; data.len()];
    disk[..A].copy_from_slice(&data[..A]);
    let node = download(&info, &data, StartMode::Trusted(have), disk, false);
    assert_eq!(node.disk, data);
    let fetched = node.t.counters().1 as usize;
    assert!(
        (B..=6 * PIECE as usize).contains(&fetched),
        "{fetched} bytes"
    );
}

/// With a budget this small every piece is written through: each run
/// carries the piece's merkle check (`RunningHash` over 16 KiB leaves),
/// and `b.bin`'s last piece ends in padding that is not hashed. A wrong
/// verdict would fail the piece again and again; the download finishes.
#[test]
fn a_v2_torrent_written_through_is_verified_by_its_runs() {
    let (info, data) = v2_torrent();
    let leecher = Torrent::new(
        Instant::ZERO,
        info.clone(),
        TorrentConfig {
            max_buffered_bytes: 2 * u64::from(PIECE),
            ..config(100)
        },
        StartMode::Fresh,
        Seed::from_u64(7),
    );
    assert!(leecher.writes_through());
    let mut nodes = among_seeders(leecher, vec![(info.clone(), data.clone())]);
    nodes[0].disk = vec![0; data.len()];
    let (mut links, mut next) = (BTreeMap::new(), 0);
    run_until(&mut nodes, &mut links, Instant::ZERO, &mut next, 400, |n| {
        n[0].t.is_finished()
    })
    .expect("finished");
    assert_eq!(nodes[0].disk[..A], data[..A]);
    assert_eq!(nodes[0].disk[A..A + B], data[A..A + B]);
    let failed = nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, TorrentEvent::HashFailed { .. }));
    assert!(!failed, "no piece failed its check");
}
