//! A leecher of one peer, seen from its disk's side: the harness of the
//! write-through and verification-run tests.

use super::*;
use crate::wire::{Frame, FrameDecoder, FrameLimits, Handshake, PeerId, Reserved};

/// A write the torrent asked for: where, and how far its hash was fed
/// (`None`: unhashed).
pub(super) type Run = (PieceIndex, u32, u32, Option<u64>);

/// A run of pieces the torrent asked to verify and write: its first
/// piece, how many pieces, and in how many file slices.
pub(super) type Verify = (u32, usize, usize);

/// A leecher and one peer that has every piece and unchoked it; its disk
/// does every job at once (unless stalled).
pub(super) struct Leech {
    pub(super) t: Torrent,
    piece: u32,
    data: Vec<u8>,
    pub(super) conn: ConnId,
    wire: FrameDecoder,
    pub(super) now: Instant,
    /// The disk feeds the hash a write carries (every real disk does).
    pub(super) hashing: bool,
    pub(super) runs: Vec<Run>,
    pub(super) verifies: Vec<Verify>,
    pub(super) read_back: Vec<PieceIndex>,
    pub(super) events: Vec<TorrentEvent>,
    /// A block the peer sends with a byte flipped.
    pub(super) corrupt: Option<BlockRef>,
    /// Writes and verifications are kept here, not done, while this is
    /// set.
    pub(super) stalled: Option<Vec<TorrentOutput>>,
}

impl Leech {
    /// `pieces` pieces of `piece` bytes, with a memory budget of `budget`.
    pub(super) fn new(piece: u32, pieces: usize, budget: u64) -> Leech {
        Leech::limited(piece, pieces, budget, 0)
    }

    /// As [`Leech::new`], downloading at most `rate` bytes/s (0: no limit).
    pub(super) fn limited(piece: u32, pieces: usize, budget: u64, rate: u64) -> Leech {
        let data = content(pieces * piece as usize);
        let config = TorrentConfig {
            peer_id: PeerId([1; 20]),
            max_buffered_bytes: budget,
            download_rate: rate,
            ..TorrentConfig::default()
        };
        let info = info_for(&data, piece);
        let mut t = Torrent::new(
            Instant::ZERO,
            info,
            config,
            StartMode::Fresh,
            Seed::from_u64(3),
        );
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
            piece,
            data,
            conn,
            wire: FrameDecoder::new(FrameLimits::default()),
            now: Instant::ZERO,
            hashing: true,
            runs: Vec::new(),
            verifies: Vec::new(),
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
    pub(super) fn disk(&mut self) {
        while let Some(o) = self.t.poll_output() {
            match o {
                TorrentOutput::Send { conn, data } if conn == self.conn => self.wire.push(&data),
                o @ (TorrentOutput::Write { .. } | TorrentOutput::Verify { .. })
                    if self.stalled.is_some() =>
                {
                    self.stalled.get_or_insert_with(Vec::new).push(o);
                }
                TorrentOutput::Verify {
                    first,
                    pieces,
                    blocks,
                    slices,
                } => {
                    let verdicts = crate::engine::run_verdicts(&pieces, &blocks);
                    let ok = verdicts.iter().all(|&v| v);
                    if ok {
                        let at = (first.0 * self.piece) as usize;
                        let data = blocks.concat();
                        assert_eq!(data, self.data[at..at + data.len()], "run {first:?}");
                    }
                    self.verifies.push((first.0, pieces.len(), slices.len()));
                    self.t.handle_verified_run(self.now, first, &verdicts, ok);
                }
                TorrentOutput::Write {
                    block,
                    blocks,
                    hasher,
                    ..
                } => {
                    let data = blocks.concat();
                    let at = (block.piece.0 * self.piece + block.offset) as usize;
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
    pub(super) fn unstall(&mut self) {
        self.t.out.extend(self.stalled.take().unwrap_or_default());
        self.disk();
    }

    /// The blocks asked of the peer since last time.
    pub(super) fn asked(&mut self) -> Vec<BlockRef> {
        let mut asked = Vec::new();
        while let Some(f) = self.wire.next_frame().unwrap() {
            if let Frame::Request(b) = f {
                asked.push(b);
            }
        }
        asked
    }

    /// The peer sends `b`, a millisecond after the last.
    pub(super) fn send(&mut self, b: BlockRef) {
        let at = (b.piece.0 * self.piece + b.offset) as usize;
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
    pub(super) fn serve(
        &mut self,
        hold: impl Fn(BlockRef) -> bool,
        release: impl Fn(usize) -> bool,
    ) {
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

    pub(super) fn runs_of(&self, piece: u32) -> Vec<(u32, u32, Option<u64>)> {
        let runs = self.runs.iter().filter(|r| r.0 .0 == piece);
        runs.map(|r| (r.1, r.2, r.3)).collect()
    }
}
