//! Write-through pieces seen from the disk's side: blocks go out in runs
//! that carry the piece's hash, blocks out of order wait for the gap, and
//! memory pressure or a disk that does not hash falls back to reading
//! the piece back.

use super::*;
use crate::torrent::write_through::RUN;
use crate::wire::{Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved};

/// 1 MiB pieces (64 blocks) with a 2 MiB budget: written through.
const PIECE: u32 = 1 << 20;
const BUDGET: u64 = 2 << 20;

/// A write the torrent asked for: where, and how far its hash was fed
/// (`None`: unhashed).
type Run = (PieceIndex, u32, u32, Option<u64>);

/// A leecher of two pieces and one peer that has them all and unchoked it;
/// its disk does every job at once.
struct Leech {
    t: Torrent,
    data: Vec<u8>,
    conn: ConnId,
    wire: FrameDecoder,
    now: Instant,
    /// The disk feeds the hash a write carries (every real disk does).
    hashing: bool,
    runs: Vec<Run>,
    read_back: Vec<PieceIndex>,
    events: Vec<TorrentEvent>,
    /// A block the peer sends with a byte flipped.
    corrupt: Option<BlockRef>,
    /// Writes are kept here, not done, while this is set.
    stalled: Option<Vec<TorrentOutput>>,
}

impl Leech {
    fn new() -> Leech {
        let data = content(2 * PIECE as usize);
        let config = TorrentConfig {
            peer_id: PeerId([1; 20]),
            max_buffered_bytes: BUDGET,
            ..TorrentConfig::default()
        };
        let info = info_for(&data, PIECE);
        let mut t = Torrent::new(
            Instant::ZERO,
            info,
            config,
            StartMode::Fresh,
            Seed::from_u64(3),
        );
        assert!(t.writes_through());
        let conn = ConnId::new(1000);
        assert!(t.handle_incoming(Instant::ZERO, conn, "127.0.0.2:2002".parse().unwrap()));
        let mut hello = Vec::new();
        Handshake {
            reserved: Reserved::FAST,
            info_hash: t.info_hash(),
            peer_id: PeerId([9; 20]),
        }
        .encode(&mut hello);
        Frame::HaveAll.encode(&mut hello);
        Frame::Unchoke.encode(&mut hello);
        t.handle_bytes(Instant::ZERO, conn, &hello);
        let mut leech = Leech {
            t,
            data,
            conn,
            wire: FrameDecoder::new(FrameLimits::default()),
            now: Instant::ZERO,
            hashing: true,
            runs: Vec::new(),
            read_back: Vec::new(),
            events: Vec::new(),
            corrupt: None,
            stalled: None,
        };
        leech.disk();
        assert!(leech.wire.next_handshake().unwrap().is_some());
        leech
    }

    /// Does every disk job the torrent asks for (reads back are only
    /// noted), until it asks for none.
    fn disk(&mut self) {
        while let Some(o) = self.t.poll_output() {
            match o {
                TorrentOutput::Send { conn, data } if conn == self.conn => self.wire.push(&data),
                o @ TorrentOutput::Write { .. } if self.stalled.is_some() => {
                    self.stalled.get_or_insert_with(Vec::new).push(o);
                }
                TorrentOutput::Write {
                    block,
                    blocks,
                    hasher,
                    ..
                } => {
                    let data = blocks.concat();
                    let at = (block.piece.0 * PIECE + block.offset) as usize;
                    assert_eq!(block.length as usize, data.len());
                    let as_sent = self.corrupt.is_some() || data == self.data[at..at + data.len()];
                    assert!(as_sent, "{block:?} as sent");
                    self.runs.push((
                        block.piece,
                        block.offset,
                        block.length,
                        hasher.as_ref().map(RunningHash::fed),
                    ));
                    let hash = if self.hashing {
                        crate::engine::write_hash(hasher, &blocks)
                    } else {
                        None
                    };
                    self.t.handle_written(self.now, block, true, hash);
                }
                TorrentOutput::Check { piece, .. } => self.read_back.push(piece),
                TorrentOutput::Event(e) => self.events.push(e),
                _ => {}
            }
        }
    }

    /// The disk does the writes it kept.
    fn unstall(&mut self) {
        self.t.out.extend(self.stalled.take().unwrap_or_default());
        self.disk();
    }

    /// The blocks asked of the peer since last time.
    fn asked(&mut self) -> Vec<BlockRef> {
        let mut asked = Vec::new();
        while let Some(f) = self.wire.next_frame().unwrap() {
            if let Frame::Request(b) = f {
                asked.push(b);
            }
        }
        asked
    }

    /// The peer sends `b`, a millisecond after the last.
    fn send(&mut self, b: BlockRef) {
        let at = (b.piece.0 * PIECE + b.offset) as usize;
        let mut bytes = self.data[at..at + b.length as usize].to_vec();
        if self.corrupt == Some(b) {
            bytes[0] ^= 1;
        }
        let mut frame = Vec::new();
        Frame::Piece {
            piece: b.piece,
            offset: b.offset,
            data: bytes.into(),
        }
        .encode(&mut frame);
        self.now += Duration::from_millis(1);
        self.t.handle_bytes(self.now, self.conn, &frame);
        self.disk();
    }

    /// The peer sends what it is asked for, in order, keeping back those
    /// `hold` picks until `release` says so (given how many blocks were
    /// sent since the first was held) or nothing else is asked for.
    fn serve(&mut self, hold: impl Fn(BlockRef) -> bool, release: impl Fn(usize) -> bool) {
        let (mut held, mut since) = (Vec::new(), 0);
        loop {
            let asked = self.asked();
            let stuck = asked.is_empty();
            if stuck && held.is_empty() {
                return;
            }
            for b in asked {
                if hold(b) {
                    held.push(b);
                } else {
                    self.send(b);
                    since += usize::from(!held.is_empty());
                }
            }
            if stuck || (!held.is_empty() && release(since)) {
                for b in std::mem::take(&mut held) {
                    self.send(b);
                }
            }
        }
    }

    fn runs_of(&self, piece: u32) -> Vec<(u32, u32, Option<u64>)> {
        let runs = self.runs.iter().filter(|r| r.0 .0 == piece);
        runs.map(|r| (r.1, r.2, r.3)).collect()
    }
}

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
    let mut l = Leech::new();
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
    let mut l = Leech::new();
    // The first block of piece 1 comes ten blocks late.
    l.serve(|b| b == first_block(1), |since| since >= 10);
    assert_eq!(l.runs_of(1), hashed_runs(), "nothing written out of order");
    assert!(l.read_back.is_empty());
    assert!(l.t.is_finished());
}

#[test]
fn a_bad_piece_gets_its_verdict_from_its_last_run() {
    let mut l = Leech::new();
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
    let mut l = Leech::new();
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
    let mut l = Leech::new();
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
    let mut l = Leech::new();
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
