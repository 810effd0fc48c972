//! Message stream encryption: what RC4 costs per byte of payload (the
//! issue's target is at most 0.4 CPU-s per GiB), and what one handshake
//! costs (two 768-bit exponentiations a side).

#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

use bittide_core::mse::{CryptoMethods, Established, Initiator, Responder, Status};
use bittide_core::{Rng, Seed};

const SKEY: [u8; 20] = [7; 20];

/// Both sides of a finished handshake (RC4 selected).
fn handshake(seed: u64) -> (Established, Established) {
    let mut rng = Rng::new(Seed::from_u64(seed));
    let mut a = Initiator::new(SKEY, CryptoMethods::RC4, &mut rng);
    let mut b = Responder::new(CryptoMethods::BOTH, &mut rng);
    let find = |_: &[u8; 20]| Some(SKEY);
    let mut done = (false, false);
    while done != (true, true) {
        if let Some(bytes) = a.poll_transmit() {
            done.1 = b.handle_data(&bytes, find).expect("honest") == Status::Established;
        }
        if let Some(bytes) = b.poll_transmit() {
            done.0 = a.handle_data(&bytes).expect("honest") == Status::Established;
        }
    }
    let _ = a.poll_transmit();
    (
        a.finish().expect("established"),
        b.finish().expect("established"),
    )
}

fn payload(c: &mut Criterion) {
    let (mut a, _) = handshake(1);
    // A chunk as the driver reads it, and a 16 KiB block.
    for size in [16 << 10, 256 << 10] {
        let mut data = vec![0x5au8; size];
        let mut group = c.benchmark_group("mse_rc4");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("encrypt_{}k", size >> 10), |bench| {
            bench.iter(|| a.cipher.encrypt(black_box(&mut data)))
        });
        group.finish();
    }
}

fn handshakes(c: &mut Criterion) {
    let mut seed = 0;
    c.bench_function("mse_handshake_both_sides", |bench| {
        bench.iter_batched(
            || {
                seed += 1;
                seed
            },
            |s| black_box(handshake(s)),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, payload, handshakes);
criterion_main!(benches);
