//! Piece picking on a large swarm.
//!
//! - `pick/50000x200`: a 50,000-piece torrent (256 KiB pieces, 16 blocks
//!   each) with 200 peers whose bitfields are random (each piece with
//!   probability 1/2); each iteration picks up to 16 blocks for the next
//!   peer, round robin. Untimed between picks, the oldest requests beyond
//!   32 per peer are delivered and complete pieces verified (a download in
//!   steady state, with as many partial pieces as a real one); the picker
//!   is rebuilt when half the torrent is done. The blocks-per-pick average
//!   printed first turns the time per pick into time per block.
//! - `have/N`: one `have` (availability +1, then −1 to stay in balance) on
//!   pickers of 5,000, 50,000 and 500,000 pieces: the cost must not grow
//!   with N (O(1) per have).
//!
//! Run: `cargo bench -p bittide-benches --bench picker`.
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bittide_core::metainfo::FileLayout;
use bittide_core::picker::{PeerPieces, PickOptions, PiecePicker};
use bittide_core::wire::BlockRef;
use bittide_core::{Bitfield, ConnId, ConnIds, PieceIndex, Rng, Seed};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const PIECE: u32 = 256 * 1024;
const BLOCKS_PER_PICK: usize = 16;

fn swarm(pieces: u32, peers: usize, seed: u64) -> (PiecePicker, Vec<Bitfield>) {
    let layout =
        FileLayout::new(PIECE, [(u64::from(pieces) * u64::from(PIECE), false)]).expect("layout");
    let mut picker = PiecePicker::new(&layout, Seed::from_u64(seed));
    let mut rng = Rng::new(Seed::from_u64(seed + 1));
    let bitfields: Vec<Bitfield> = (0..peers)
        .map(|_| {
            let mut b = Bitfield::new(pieces);
            for p in 0..pieces {
                if rng.below(2) == 0 {
                    b.set(PieceIndex(p));
                }
            }
            b
        })
        .collect();
    for b in &bitfields {
        picker.peer_bitfield(PeerPieces::Some(b));
    }
    (picker, bitfields)
}

/// A download in steady state: blocks arrive oldest first once
/// `IN_FLIGHT` are outstanding, and complete pieces are verified, so the
/// number of partial pieces stays what a real swarm has.
struct Steady {
    picker: PiecePicker,
    in_flight: VecDeque<(ConnId, BlockRef)>,
}

const IN_FLIGHT: usize = 200 * 32;

impl Steady {
    fn new(template: &PiecePicker) -> Steady {
        Steady {
            picker: template.clone(),
            in_flight: VecDeque::new(),
        }
    }

    /// Untimed: deliver the oldest blocks beyond the in-flight window.
    fn settle(&mut self) {
        while self.in_flight.len() > IN_FLIGHT {
            let (peer, block) = self.in_flight.pop_front().expect("non-empty");
            self.picker.on_block(block, peer);
            if self.picker.is_complete(block.piece) {
                self.picker.on_piece_verified(block.piece);
            }
        }
    }
}

fn pick(c: &mut Criterion) {
    let (template, bitfields) = swarm(50_000, 200, 7);
    let ids = ConnIds::new();
    let peers: Vec<ConnId> = bitfields.iter().map(|_| ids.next_id()).collect();
    // How many blocks a pick yields on average, for the per-block figure.
    let mut probe = Steady::new(&template);
    let mut out = Vec::new();
    let (mut picks, mut blocks) = (0u64, 0u64);
    for i in 0..20_000usize {
        let peer = i % bitfields.len();
        out.clear();
        let n = probe.picker.pick(
            peers[peer],
            PeerPieces::Some(&bitfields[peer]),
            BLOCKS_PER_PICK,
            PickOptions::default(),
            &mut out,
        );
        probe
            .in_flight
            .extend(out.iter().map(|b| (peers[peer], *b)));
        probe.settle();
        picks += 1;
        blocks += n as u64;
    }
    eprintln!(
        "pick/50000x200: {:.2} blocks per pick on average",
        blocks as f64 / picks as f64
    );

    let mut g = c.benchmark_group("pick");
    g.bench_function("50000x200", |b| {
        b.iter_custom(|iters| {
            let mut state = Steady::new(&template);
            let mut out = Vec::with_capacity(BLOCKS_PER_PICK);
            let mut elapsed = Duration::ZERO;
            for i in 0..iters {
                if state.picker.wanted_missing() < 25_000 {
                    state = Steady::new(&template);
                }
                let peer = (i as usize) % bitfields.len();
                out.clear();
                let start = Instant::now();
                let n = state.picker.pick(
                    peers[peer],
                    PeerPieces::Some(&bitfields[peer]),
                    BLOCKS_PER_PICK,
                    PickOptions::default(),
                    &mut out,
                );
                elapsed += start.elapsed();
                black_box(n);
                state
                    .in_flight
                    .extend(out.iter().map(|b| (peers[peer], *b)));
                state.settle();
            }
            elapsed
        })
    });
    g.finish();
}

fn have(c: &mut Criterion) {
    let mut g = c.benchmark_group("have");
    for pieces in [5_000u32, 50_000, 500_000] {
        let (mut picker, _) = swarm(pieces, 20, 9);
        let mut rng = Rng::new(Seed::from_u64(10));
        let order: Vec<PieceIndex> = (0..4096)
            .map(|_| PieceIndex(rng.below(u64::from(pieces)) as u32))
            .collect();
        let mut i = 0;
        g.bench_with_input(BenchmarkId::from_parameter(pieces), &pieces, |b, _| {
            b.iter(|| {
                let p = order[i % order.len()];
                i += 1;
                picker.peer_has(black_box(p));
                picker.peer_lost(black_box(p));
            })
        });
    }
    g.finish();
}

criterion_group!(picker_benches, pick, have);
criterion_main!(picker_benches);
