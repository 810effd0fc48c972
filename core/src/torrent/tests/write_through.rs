//! Write-through pieces seen from the disk's side: blocks go out in runs
//! that carry the piece's hash, blocks out of order wait for the gap, and
//! memory pressure or a disk that does not hash falls back to reading
//! the piece back.

use super::leech::Leech;
use super::*;
use crate::torrent::write_through::RUN;

/// 1 MiB pieces (64 blocks) with a 2 MiB budget: written through.
const PIECE: u32 = 1 << 20;
const BUDGET: u64 = 2 << 20;

fn first_block(piece: u32) -> BlockRef {
    BlockRef {
        piece: PieceIndex(piece),
        offset: 0,
        length: BLOCK_SIZE,
    }
}

/// Runs of 256 KiB, each carrying the hash fed up to where it starts.
fn hashed_runs() -> Vec<(u32, u32, Option<u64>)> {
    (0..4)
        .map(|i| (i * RUN, RUN, Some(u64::from(i * RUN))))
        .collect()
}

#[test]
fn blocks_in_order_go_to_disk_in_runs_that_carry_the_hash_and_nothing_is_read_back() {
    let mut l = Leech::new(PIECE, 2, BUDGET);
    assert!(l.t.writes_through());
    l.serve(|_| false, |_| true);
    for p in 0..2 {
        assert_eq!(l.runs_of(p), hashed_runs(), "piece {p}");
        assert!(l.t.have().get(PieceIndex(p)), "verified by its last run");
    }
    assert!(l.read_back.is_empty());
    assert!(l.t.is_finished());
    assert_eq!(l.t.buffered_bytes(), 0);
}

#[test]
fn blocks_ahead_of_the_run_wait_for_the_gap() {
    let mut l = Leech::new(PIECE, 2, BUDGET);
    // The first block of piece 1 comes ten blocks late.
    l.serve(|b| b == first_block(1), |since| since >= 10);
    assert_eq!(l.runs_of(1), hashed_runs(), "nothing written out of order");
    assert!(l.read_back.is_empty());
    assert!(l.t.is_finished());
}

#[test]
fn a_bad_piece_gets_its_verdict_from_its_last_run() {
    let mut l = Leech::new(PIECE, 2, BUDGET);
    l.corrupt = Some(BlockRef {
        piece: PieceIndex(0),
        offset: 40 * BLOCK_SIZE,
        length: BLOCK_SIZE,
    });
    l.serve(|_| false, |_| true);
    assert!(l
        .events
        .iter()
        .any(|e| matches!(e, TorrentEvent::HashFailed { piece, .. } if *piece == PieceIndex(0))));
    assert!(l.read_back.is_empty());
}

#[test]
fn a_disk_that_does_not_feed_the_hash_has_the_piece_read_back() {
    let mut l = Leech::new(PIECE, 2, BUDGET);
    l.hashing = false;
    l.serve(|_| false, |_| true);
    l.read_back.sort();
    assert_eq!(l.read_back, [PieceIndex(0), PieceIndex(1)]);
    for p in 0..2 {
        l.t.handle_checked(l.now, PieceIndex(p), true);
    }
    assert!(l.t.is_finished());
}

#[test]
fn blocks_held_past_their_share_of_the_budget_go_to_disk_unhashed() {
    let mut l = Leech::new(PIECE, 2, BUDGET);
    // The first block of piece 0 is kept back until everything else was
    // sent: what follows it cannot start a run and passes a quarter of
    // the budget (512 KiB).
    l.serve(|b| b == first_block(0), |_| false);
    let runs = l.runs_of(0);
    assert!(runs.iter().all(|r| r.2.is_none()), "unhashed: {runs:?}");
    let written: u32 = runs.iter().map(|r| r.1).sum();
    assert_eq!(written, PIECE, "every block once");
    assert!(
        runs.len() < 20,
        "adjacent blocks are written together: {runs:?}"
    );
    assert_eq!(l.read_back, [PieceIndex(0)], "read back once complete");
    assert_eq!(
        l.runs_of(1),
        hashed_runs(),
        "the other piece is not held up"
    );
    l.t.handle_checked(l.now, PieceIndex(0), true);
    assert!(l.t.is_finished());
    assert_eq!(l.t.buffered_bytes(), 0);
}

#[test]
fn blocks_that_continue_the_chain_wait_for_the_run_at_a_slow_disk_however_many() {
    let mut l = Leech::new(PIECE, 2, BUDGET);
    l.stalled = Some(Vec::new());
    // Both pieces in order but for block 60 of piece 1, late: the first
    // run of each goes to the disk, which keeps it; the other 1.5 MiB
    // (three times the quarter of the budget that blocks beyond a gap may
    // take) wait, and the three blocks past the gap do not make them go.
    let late = BlockRef {
        piece: PieceIndex(1),
        offset: 60 * BLOCK_SIZE,
        length: BLOCK_SIZE,
    };
    l.serve(|b| b == late, |_| false);
    let stalled = l.stalled.as_deref().unwrap_or_default();
    let first_runs = stalled.iter().filter(
        |o| matches!(o, TorrentOutput::Write { block, hasher: Some(_), .. } if block.offset == 0),
    );
    assert_eq!(first_runs.count(), 2, "{stalled:?}");
    assert_eq!(stalled.len(), 2, "and nothing else");
    l.unstall();
    for p in 0..2 {
        assert_eq!(
            l.runs_of(p),
            [(0, RUN, Some(0)), (RUN, PIECE - RUN, Some(u64::from(RUN)))],
            "the rest went as one hashed run once the first came back"
        );
    }
    assert!(l.read_back.is_empty());
    assert!(l.t.is_finished());
}
