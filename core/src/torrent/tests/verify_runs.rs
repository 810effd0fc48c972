//! Complete pieces go to the disk in runs of adjacent pieces: an extent's
//! pieces are fetched one after another and verified and written as one
//! job; a bad piece fails alone; a piece waits for the next only so long;
//! only so many runs are at the disk at once.

use super::leech::Leech;
use super::*;

/// 256 KiB pieces: four to an extent.
const PIECE: u32 = 256 << 10;
/// Held in memory, not written through.
const BUDGET: u64 = 8 << 20;

fn last_block(piece: u32) -> BlockRef {
    BlockRef {
        piece: PieceIndex(piece),
        offset: PIECE - BLOCK_SIZE,
        length: BLOCK_SIZE,
    }
}

/// The peer sends every block asked for but those `kept`, until it is
/// asked for nothing more.
fn serve_all_but(l: &mut Leech, kept: &[BlockRef]) {
    loop {
        let asked = l.asked();
        if asked.is_empty() {
            return;
        }
        for b in asked.into_iter().filter(|b| !kept.contains(b)) {
            l.send(b);
        }
    }
}

#[test]
fn an_extent_of_pieces_is_verified_and_written_as_one_run() {
    let mut l = Leech::new(PIECE, 8, BUDGET);
    assert!(!l.t.writes_through());
    l.serve(|_| false, |_| true);
    l.verifies.sort_unstable();
    // Each run: four pieces, one file slice (one write).
    assert_eq!(l.verifies, [(0, 4, 1), (4, 4, 1)]);
    assert!(l.t.is_finished());
    assert_eq!(l.t.buffered_bytes(), 0);
}

#[test]
fn a_bad_piece_fails_alone_and_the_rest_of_its_run_is_written() {
    let mut l = Leech::new(PIECE, 8, BUDGET);
    l.corrupt = Some(last_block(1));
    l.serve(|_| false, |_| true);
    let failed: Vec<PieceIndex> = l
        .events
        .iter()
        .filter_map(|e| match e {
            TorrentEvent::HashFailed { piece, .. } => Some(*piece),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [PieceIndex(1)]);
    assert!(l.verifies.contains(&(0, 4, 1)), "{:?}", l.verifies);
    // Not written with the bad one: each goes again alone.
    for p in [0, 2, 3] {
        assert!(
            l.verifies.contains(&(p, 1, 1)),
            "piece {p}: {:?}",
            l.verifies
        );
        assert!(l.t.have().get(PieceIndex(p)), "piece {p} on disk");
    }
    assert!(!l.t.have().get(PieceIndex(1)));
}

#[test]
fn a_piece_waits_for_the_next_of_its_extent_only_so_long() {
    let mut l = Leech::new(PIECE, 8, BUDGET);
    // The last block of piece 1 does not come: piece 0 waits for it.
    serve_all_but(&mut l, &[last_block(1)]);
    l.verifies.sort_unstable();
    assert_eq!(l.verifies, [(2, 2, 1), (4, 4, 1)]);
    let due = l.t.poll_timeout().expect("a deadline");
    assert!(due <= l.now + Duration::from_millis(200), "{due:?}");
    // Its wait runs out: it goes alone.
    l.now = due;
    l.t.handle_timeout(l.now);
    l.disk();
    assert!(l.verifies.contains(&(0, 1, 1)), "{:?}", l.verifies);
    assert!(l.t.have().get(PieceIndex(0)));
    l.send(last_block(1));
    assert!(l.verifies.contains(&(1, 1, 1)), "{:?}", l.verifies);
    assert!(l.t.is_finished());
}

#[test]
fn only_so_many_runs_are_at_the_disk_at_once() {
    // Five extents, 5 MiB: within the budget.
    let mut l = Leech::new(PIECE, 20, BUDGET);
    l.stalled = Some(Vec::new());
    l.serve(|_| false, |_| true);
    let out = l.stalled.as_ref().map_or(0, Vec::len);
    assert_eq!(out, 4, "four runs at the disk");
    assert!(!l.t.is_finished());
    // Each verdict lets the next run go.
    l.unstall();
    l.verifies.sort_unstable();
    assert_eq!(
        l.verifies,
        [(0, 4, 1), (4, 4, 1), (8, 4, 1), (12, 4, 1), (16, 4, 1)]
    );
    assert!(l.t.is_finished());
}

#[test]
fn a_piece_a_stream_waits_for_goes_at_once() {
    let mut l = Leech::new(PIECE, 8, BUDGET);
    l.t.set_critical(l.now, vec![PieceIndex(0), PieceIndex(1)]);
    serve_all_but(&mut l, &[last_block(1)]);
    assert!(l.verifies.contains(&(0, 1, 1)), "{:?}", l.verifies);
    assert!(l.t.have().get(PieceIndex(0)));
}

#[test]
fn a_run_with_a_piece_a_stream_waits_for_goes_at_once() {
    let mut l = Leech::new(PIECE, 8, BUDGET);
    // Piece 1 is complete and waits for piece 2; piece 0 comes last.
    serve_all_but(&mut l, &[last_block(0), last_block(2)]);
    l.t.set_critical(l.now, vec![PieceIndex(0)]);
    l.send(last_block(0));
    assert!(l.verifies.contains(&(0, 2, 1)), "{:?}", l.verifies);
}

#[test]
fn a_queued_torrent_writes_the_pieces_that_wait() {
    let mut l = Leech::new(PIECE, 8, BUDGET);
    serve_all_but(&mut l, &[last_block(1)]);
    assert!(!l.t.have().get(PieceIndex(0)), "piece 0 waits for piece 1");
    l.t.queue(l.now);
    l.disk();
    assert!(l.verifies.contains(&(0, 1, 1)), "{:?}", l.verifies);
    assert!(l.t.have().get(PieceIndex(0)));
}
