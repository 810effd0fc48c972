use super::*;
use crate::metainfo::FileLayout;

const PIECE: u32 = 4 * BLOCK_SIZE;

fn picker(pieces: u32) -> PiecePicker {
    let layout = FileLayout::new(PIECE, [(u64::from(pieces) * u64::from(PIECE), false)]).unwrap();
    PiecePicker::new(&layout, Seed::from_u64(1))
}

fn bits(n: u32, have: &[u32]) -> Bitfield {
    let mut b = Bitfield::new(n);
    for &p in have {
        b.set(PieceIndex(p));
    }
    b
}

const A: ConnId = ConnId::new(1);
const B: ConnId = ConnId::new(2);
const C: ConnId = ConnId::new(3);

fn pick(p: &mut PiecePicker, peer: ConnId, pieces: PeerPieces<'_>, max: usize) -> Vec<BlockRef> {
    let mut out = Vec::new();
    p.pick(peer, pieces, max, PickOptions::default(), &mut out);
    p.check_invariants().unwrap();
    out
}

#[test]
fn rarest_piece_first() {
    let mut p = picker(4);
    // Pieces 0..3 held by 3, 2, 1, 3 peers.
    p.peer_bitfield(PeerPieces::Some(&bits(4, &[0, 1, 2, 3])));
    p.peer_bitfield(PeerPieces::Some(&bits(4, &[0, 1, 3])));
    p.peer_bitfield(PeerPieces::Some(&bits(4, &[0, 3])));
    assert_eq!(p.availability(PieceIndex(2)), 1);
    let got = pick(&mut p, A, PeerPieces::All, 4);
    assert!(got.iter().all(|b| b.piece == PieceIndex(2)), "{got:?}");
    assert_eq!(got.len(), 4);
    let got = pick(&mut p, A, PeerPieces::All, 4);
    assert!(got.iter().all(|b| b.piece == PieceIndex(1)), "{got:?}");
}

#[test]
fn a_have_reorders_in_constant_time_and_counts_seeds_once() {
    let mut p = picker(3);
    p.peer_bitfield(PeerPieces::All);
    p.peer_has(PieceIndex(0));
    p.peer_has(PieceIndex(1));
    assert_eq!(p.availability(PieceIndex(2)), 1);
    assert_eq!(p.availability(PieceIndex(0)), 2);
    let got = pick(&mut p, A, PeerPieces::All, 1);
    assert_eq!(got[0].piece, PieceIndex(2));
    p.peer_lost(PieceIndex(0));
    p.peer_gone(PeerPieces::All);
    assert_eq!(p.availability(PieceIndex(0)), 0);
}

#[test]
fn partial_pieces_are_finished_first() {
    let mut p = picker(10);
    let first = pick(&mut p, A, PeerPieces::All, 2);
    assert_eq!(first.len(), 2);
    // B gets the rest of A's piece before a new one.
    let got = pick(&mut p, B, PeerPieces::All, 2);
    assert!(got.iter().all(|b| b.piece == first[0].piece));
    assert_eq!(got[0].offset, 2 * BLOCK_SIZE);
}

#[test]
fn pieces_in_flight_are_partial_until_verified() {
    let mut p = picker(4);
    assert_eq!(p.partial_pieces().count(), 0);
    let a = pick(&mut p, A, PeerPieces::All, 6);
    let mut asked: Vec<PieceIndex> = a.iter().map(|b| b.piece).collect();
    asked.dedup();
    let mut partial: Vec<PieceIndex> = p.partial_pieces().collect();
    partial.sort();
    asked.sort();
    assert_eq!(partial, asked, "both pieces asked for are in flight");
    let first = a[0].piece;
    for blk in a.iter().filter(|b| b.piece == first) {
        p.on_block(*blk, A);
    }
    assert!(
        p.partial_pieces().any(|x| x == first),
        "complete, not verified"
    );
    p.on_piece_verified(first);
    assert!(
        p.partial_pieces().all(|x| x != first),
        "verified: no longer in flight"
    );
    assert_eq!(p.partial_pieces().count(), 1);
}

#[test]
fn peers_only_get_pieces_they_have() {
    let mut p = picker(10);
    let b = bits(10, &[7]);
    let got = pick(&mut p, A, PeerPieces::Some(&b), 100);
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|x| x.piece == PieceIndex(7)));
    assert!(pick(&mut p, A, PeerPieces::Some(&b), 100).is_empty());
}

#[test]
fn last_piece_blocks_are_short() {
    let layout = FileLayout::new(PIECE, [(u64::from(PIECE) + 20_000, false)]).unwrap();
    let mut p = PiecePicker::new(&layout, Seed::from_u64(2));
    let mut out = Vec::new();
    p.pick(A, PeerPieces::All, 100, PickOptions::default(), &mut out);
    let last: Vec<_> = out.iter().filter(|b| b.piece == PieceIndex(1)).collect();
    assert_eq!(last.len(), 2);
    assert_eq!(last[1].length, 20_000 - BLOCK_SIZE);
    assert_eq!(out.len(), 6);
}

#[test]
fn endgame_duplicates_and_cancels() {
    let mut p = picker(1);
    let a = pick(&mut p, A, PeerPieces::All, 100);
    assert_eq!(a.len(), 4);
    assert!(p.is_endgame());
    let b = pick(&mut p, B, PeerPieces::All, 100);
    assert_eq!(b, a, "endgame re-requests the same blocks from B");
    assert_eq!(
        p.on_block(a[0], B),
        BlockReceived::New {
            cancel: smallvec::smallvec![A]
        }
    );
    assert_eq!(p.on_block(a[0], A), BlockReceived::Duplicate);
    for blk in &a[1..] {
        assert!(matches!(p.on_block(*blk, A), BlockReceived::New { .. }));
    }
    assert!(p.is_complete(PieceIndex(0)));
    assert_eq!(p.contributors(PieceIndex(0)), &[B, A]);
    p.on_piece_verified(PieceIndex(0));
    assert!(p.is_finished());
    assert!(!p.is_endgame());
    p.check_invariants().unwrap();
    assert_eq!(p.on_block(a[0], C), BlockReceived::Unwanted);
}

#[test]
fn aborted_requests_go_back_to_the_pool() {
    let mut p = picker(1);
    let a = pick(&mut p, A, PeerPieces::All, 2);
    assert_eq!(p.requests_of(A), a);
    for blk in &a {
        p.abort_request(*blk, A);
    }
    p.check_invariants().unwrap();
    let b = pick(&mut p, B, PeerPieces::All, 4);
    assert_eq!(b.len(), 4);
    assert_eq!(b[0], a[0]);
}

#[test]
fn skipped_files_are_not_requested_except_shared_pieces() {
    // Three files: 0 ends inside piece 1, which file 1 also covers.
    let layout = FileLayout::new(
        PIECE,
        [
            (u64::from(PIECE) + 100, false),
            (u64::from(PIECE) * 2, false),
            (u64::from(PIECE), false),
        ],
    )
    .unwrap();
    let mut p = PiecePicker::new(&layout, Seed::from_u64(3));
    p.set_file_priorities(&layout, &[Priority::Skip, Priority::Normal, Priority::Skip]);
    p.check_invariants().unwrap();
    assert_eq!(p.priority(PieceIndex(0)), Priority::Skip);
    assert_eq!(
        p.priority(PieceIndex(1)),
        Priority::Normal,
        "shared with a wanted file"
    );
    assert_eq!(p.priority(PieceIndex(2)), Priority::Normal);
    assert_eq!(
        p.priority(PieceIndex(3)),
        Priority::Normal,
        "shared by files 1 and 2"
    );
    let mut pieces: Vec<_> = pick(&mut p, A, PeerPieces::All, 100)
        .iter()
        .map(|b| b.piece.0)
        .collect();
    pieces.dedup();
    pieces.sort_unstable();
    pieces.dedup();
    assert_eq!(pieces, vec![1, 2, 3]);
    assert_eq!(p.wanted_missing(), 3);
}

#[test]
fn high_priority_before_rarer_normal_pieces() {
    let mut p = picker(3);
    p.peer_has(PieceIndex(0));
    p.peer_has(PieceIndex(0));
    p.set_priority(PieceIndex(0), Priority::High);
    p.set_priority(PieceIndex(2), Priority::Low);
    let got = pick(&mut p, A, PeerPieces::All, 12);
    let order: Vec<u32> = got.iter().map(|b| b.piece.0).collect();
    assert_eq!(order, vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
}

#[test]
fn sequential_and_critical_pieces() {
    let mut p = picker(8);
    p.set_sequential(true);
    p.peer_has(PieceIndex(0)); // make piece 0 *less* rare: order must still be by index
    let got: Vec<u32> = pick(&mut p, A, PeerPieces::All, 8)
        .iter()
        .map(|b| b.piece.0)
        .collect();
    assert_eq!(got, vec![0, 0, 0, 0, 1, 1, 1, 1]);
    p.set_critical(vec![PieceIndex(6)]);
    let got = pick(&mut p, B, PeerPieces::All, 1);
    assert_eq!(got[0].piece, PieceIndex(6));
}

#[test]
fn streaming_window_starts_under_the_reader_then_the_ends_of_the_file() {
    let layout = FileLayout::new(PIECE, [(100, false), (u64::from(PIECE) * 10, false)]).unwrap();
    let w = streaming_window(&layout, 1, u64::from(PIECE) * 4, 3);
    assert_eq!(
        w,
        vec![
            PieceIndex(4),
            PieceIndex(0),
            PieceIndex(10),
            PieceIndex(5),
            PieceIndex(6)
        ]
    );
    // At the file's start the window does not list a piece twice.
    let w = streaming_window(&layout, 1, 0, 2);
    assert_eq!(w, vec![PieceIndex(0), PieceIndex(10), PieceIndex(1)]);
}

#[test]
fn hash_failure_re_requests_and_names_contributors() {
    let mut p = picker(2);
    let a = pick(&mut p, A, PeerPieces::All, 2);
    let b = pick(&mut p, B, PeerPieces::All, 2);
    let piece = a[0].piece;
    for blk in a.iter().chain(&b) {
        assert_eq!(blk.piece, piece);
    }
    for blk in &a {
        p.on_block(*blk, A);
    }
    for blk in &b {
        p.on_block(*blk, B);
    }
    assert!(p.is_complete(piece));
    let culprits = p.on_hash_failed(piece);
    assert_eq!(culprits.as_slice(), &[A, B]);
    p.check_invariants().unwrap();
    assert!(!p.has(piece));
    // Requested again, and on parole a peer gets a piece to itself.
    let mut out = Vec::new();
    p.pick(
        A,
        PeerPieces::All,
        8,
        PickOptions { exclusive: true },
        &mut out,
    );
    let first = out[0].piece;
    assert!(out.iter().take(4).all(|b| b.piece == first));
    let c = pick(&mut p, C, PeerPieces::All, 8);
    assert!(
        c.iter().all(|b| b.piece != first),
        "parole pieces are exclusive"
    );
}

#[test]
fn a_parole_peer_that_leaves_mid_piece_frees_the_rest_of_it() {
    let mut p = picker(2);
    let mut out = Vec::new();
    p.pick(
        A,
        PeerPieces::All,
        2,
        PickOptions { exclusive: true },
        &mut out,
    );
    let piece = out[0].piece;
    // A delivers one block, the other request goes unanswered, and A goes.
    p.on_block(out[0], A);
    p.abort_request(out[1], A);
    let blocked = pick(&mut p, C, PeerPieces::Some(&bits(2, &[piece.0])), 8);
    assert!(blocked.is_empty(), "the piece is still A's");
    p.peer_left(A);
    let got = pick(&mut p, C, PeerPieces::Some(&bits(2, &[piece.0])), 8);
    assert!(
        !got.is_empty() && got.iter().all(|b| b.piece == piece),
        "the rest of the piece goes to others: {got:?}"
    );
    p.check_invariants().unwrap();
}

#[test]
fn random_operations_keep_the_bookkeeping_straight() {
    let n = 40;
    let layout = FileLayout::new(PIECE, [(u64::from(n) * u64::from(PIECE) - 5000, false)]).unwrap();
    let mut p = PiecePicker::new(&layout, Seed::from_u64(9));
    let mut rng = Rng::new(Seed::from_u64(10));
    let peers: Vec<(ConnId, Bitfield)> = (0..5)
        .map(|i| {
            let mut b = Bitfield::new(n);
            for piece in 0..n {
                if rng.below(2) == 0 {
                    b.set(PieceIndex(piece));
                }
            }
            (ConnId::new(i), b)
        })
        .collect();
    for (_, b) in &peers {
        p.peer_bitfield(PeerPieces::Some(b));
    }
    let mut outstanding: Vec<(ConnId, BlockRef)> = Vec::new();
    for step in 0..5000 {
        let (peer, pieces) = &peers[rng.below(peers.len() as u64) as usize];
        match rng.below(10) {
            0..=3 => {
                let mut out = Vec::new();
                let exclusive = rng.below(5) == 0;
                p.pick(
                    *peer,
                    PeerPieces::Some(pieces),
                    6,
                    PickOptions { exclusive },
                    &mut out,
                );
                for b in out {
                    assert!(pieces.get(b.piece), "picked a piece the peer lacks");
                    assert!(!p.has(b.piece), "picked a piece we have");
                    outstanding.push((*peer, b));
                }
            }
            4..=6 if !outstanding.is_empty() => {
                let (who, b) =
                    outstanding.swap_remove(rng.below(outstanding.len() as u64) as usize);
                if let BlockReceived::New { .. } = p.on_block(b, who) {
                    if p.is_complete(b.piece) {
                        if rng.below(4) == 0 {
                            p.on_hash_failed(b.piece);
                        } else {
                            p.on_piece_verified(b.piece);
                        }
                    }
                }
            }
            7 if !outstanding.is_empty() => {
                let (who, b) =
                    outstanding.swap_remove(rng.below(outstanding.len() as u64) as usize);
                p.abort_request(b, who);
            }
            8 => {
                let piece = PieceIndex(rng.below(u64::from(n)) as u32);
                let prio = [
                    Priority::Skip,
                    Priority::Low,
                    Priority::Normal,
                    Priority::High,
                ][rng.below(4) as usize];
                p.set_priority(piece, prio);
            }
            _ => {
                let piece = PieceIndex(rng.below(u64::from(n)) as u32);
                if rng.below(2) == 0 {
                    p.peer_has(piece);
                } else {
                    p.peer_lost(piece);
                }
            }
        }
        if let Err(e) = p.check_invariants() {
            panic!("step {step}: {e}");
        }
    }
}

// --- web seed runs (BEP 19) ---------------------------------------------

const SEED: ConnId = ConnId::new(9);

fn run(p: &mut PiecePicker, max: usize) -> Vec<BlockRef> {
    let mut out = Vec::new();
    p.pick_run(SEED, max, &mut out);
    p.check_invariants().unwrap();
    out
}

/// Byte offsets in the torrent: a run is contiguous when each block
/// starts where the one before ended.
fn contiguous(blocks: &[BlockRef]) -> bool {
    let at = |b: &BlockRef| u64::from(b.piece.0) * u64::from(PIECE) + u64::from(b.offset);
    blocks
        .windows(2)
        .all(|w| at(&w[0]) + u64::from(w[0].length) == at(&w[1]))
}

#[test]
fn a_web_seed_alone_gets_the_torrent_in_order_in_contiguous_runs() {
    let mut p = picker(10);
    let mut all = Vec::new();
    loop {
        // 6 blocks: runs cross piece boundaries (4 blocks a piece).
        let got = run(&mut p, 6);
        if got.is_empty() {
            break;
        }
        assert!(contiguous(&got), "{got:?}");
        all.extend(got);
    }
    assert_eq!(all.len(), 40);
    assert!(contiguous(&all), "runs follow one another");
    assert_eq!(all[0].piece, PieceIndex(0));
}

#[test]
fn a_run_stops_at_a_piece_a_peer_started_and_takes_leftovers_first() {
    let mut p = picker(6);
    p.peer_bitfield(PeerPieces::All);
    // A peer takes two blocks of some piece (rarest first: random among equals).
    let peer = pick(&mut p, A, PeerPieces::All, 2);
    let started = peer[0].piece;
    // The seed first finishes that piece (its two free blocks), then goes
    // on into the next piece if nobody has started it.
    let got = run(&mut p, 3);
    assert_eq!(
        got[0],
        BlockRef {
            piece: started,
            offset: 2 * BLOCK_SIZE,
            length: BLOCK_SIZE
        }
    );
    assert!(contiguous(&got));
    // Fresh runs never enter a piece someone else started.
    let mut p = picker(6);
    let peer = pick(&mut p, A, PeerPieces::All, 4);
    let taken = peer[0].piece.0;
    let mut seen = Vec::new();
    while !p.is_endgame() {
        let got = run(&mut p, 100);
        assert!(got.iter().all(|b| b.piece.0 != taken), "{got:?}");
        seen.extend(got);
    }
    assert_eq!(
        seen.len(),
        20,
        "every other piece, in runs that stop before piece {taken}"
    );
}

#[test]
fn runs_follow_priorities_and_skip_what_is_not_wanted() {
    let mut p = picker(6);
    p.set_priority(PieceIndex(1), Priority::Skip);
    p.set_priority(PieceIndex(4), Priority::High);
    assert_eq!(
        p.next_run_piece(),
        Some(PieceIndex(4)),
        "high priority first"
    );
    let got = run(&mut p, 100);
    assert_eq!(got.len(), 8, "pieces 4 and 5: {got:?}");
    let got = run(&mut p, 100);
    assert_eq!(
        got.len(),
        4,
        "piece 0, then the skipped piece 1 ends the run"
    );
    assert_eq!(got[0].piece, PieceIndex(0));
    let got = run(&mut p, 100);
    assert_eq!(got.len(), 8, "pieces 2 and 3");
    assert!(run(&mut p, 100).is_empty());
}

#[test]
fn in_endgame_a_web_seed_duplicates_a_slow_peers_blocks() {
    let mut p = picker(2);
    p.peer_bitfield(PeerPieces::All);
    let peer = pick(&mut p, A, PeerPieces::All, 8);
    assert_eq!(peer.len(), 8);
    assert!(p.is_endgame());
    let got = run(&mut p, 100);
    assert_eq!(got.len(), 4, "one piece's blocks at a time: {got:?}");
    assert!(contiguous(&got));
    // The seed's copy arrives first: the peer's requests are cancelled.
    match p.on_block(got[0], SEED) {
        BlockReceived::New { cancel } => assert_eq!(cancel.as_slice(), &[A]),
        other => panic!("{other:?}"),
    }
    let first = got[0].piece;
    let got = run(&mut p, 100);
    assert_eq!(got.len(), 4, "then the other piece: {got:?}");
    assert_ne!(got[0].piece, first);
    assert!(run(&mut p, 100).is_empty(), "every block is asked of both");
}

#[test]
fn fresh_pieces_come_an_extent_at_a_time_when_equally_rare() {
    // 64 KiB pieces: four to an extent.
    let per_extent = EXTENT_PIECES as u32;
    let mut p = picker(4 * per_extent);
    assert_eq!(p.extent_of(PieceIndex(5)), 4..8);
    p.peer_bitfield(PeerPieces::All);
    let mut order = Vec::new();
    for _ in 0..4 * per_extent {
        let got = pick(&mut p, A, PeerPieces::All, 4);
        order.push(got[0].piece.0);
    }
    for run in order.chunks(per_extent as usize) {
        let start = run[0];
        assert_eq!(start % per_extent, 0, "{order:?}");
        assert!(
            run.iter().copied().eq(start..start + per_extent),
            "{order:?}"
        );
    }
    // Rarer pieces still come first: the extent is left for them.
    let mut p = picker(4 * per_extent);
    p.peer_bitfield(PeerPieces::All);
    p.peer_bitfield(PeerPieces::Some(&bits(4 * per_extent, &[1, 2])));
    let first = pick(&mut p, A, PeerPieces::All, 4)[0].piece.0;
    assert_ne!(first, 1, "piece 1 is less rare than the rest");
    let second = pick(&mut p, A, PeerPieces::All, 4)[0].piece.0;
    let next = if first == 0 { 3 } else { first + 1 };
    assert_eq!(second, next, "{first} then {second}");
}
