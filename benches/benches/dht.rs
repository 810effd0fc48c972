//! DHT hot paths.
//!
//! - `closest/full_table`: `RoutingTable::closest(target, 8)` on a table
//!   filled from 100,000 random nodes (every bucket full down to our id),
//!   random targets. Target ≤ 1 µs.
//! - `krpc/get_peers_response`: decode + encode of a typical get_peers
//!   response (8 nodes, a token). Target ≥ 2 million per second.
//!
//! Run: `cargo bench -p bittide-benches --bench dht`.
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use std::hint::black_box;
use std::net::SocketAddr;

use bittide_core::dht::routing::{RoutingTable, TableConfig};
use bittide_core::krpc::{Body, CompactNode, Message, NodeId, Response};
use bittide_core::{Instant, Rng, Seed};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn random_id(rng: &mut Rng) -> NodeId {
    let mut id = [0u8; 20];
    rng.fill(&mut id);
    NodeId(id)
}

fn closest(c: &mut Criterion) {
    let mut rng = Rng::new(Seed::from_u64(1));
    let mut table = RoutingTable::new(random_id(&mut rng), TableConfig::default());
    for i in 0..100_000u32 {
        let addr = SocketAddr::from(([20, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881));
        let _ = table.insert(
            Instant::ZERO,
            CompactNode {
                id: random_id(&mut rng),
                addr,
            },
            true,
        );
    }
    eprintln!(
        "table: {} nodes in {} buckets",
        table.len(),
        table.bucket_count()
    );
    let targets: Vec<NodeId> = (0..1024).map(|_| random_id(&mut rng)).collect();
    let mut i = 0;
    c.bench_function("closest/full_table", |b| {
        b.iter(|| {
            i = (i + 1) % targets.len();
            table.closest(Instant::ZERO, black_box(&targets[i]), 8)
        })
    });
}

fn krpc(c: &mut Criterion) {
    let mut rng = Rng::new(Seed::from_u64(2));
    let nodes = (0..8u8)
        .map(|i| CompactNode {
            id: random_id(&mut rng),
            addr: SocketAddr::from(([30, 1, 2, i], 6881)),
        })
        .collect();
    let msg = Message {
        tx: vec![0x12, 0x34],
        id: Some(random_id(&mut rng)),
        version: Some(b"BT01".to_vec()),
        ip: Some("1.2.3.4:5678".parse().expect("literal")),
        read_only: false,
        body: Body::Response(Response {
            nodes,
            token: Some(vec![7; 8]),
            ..Response::default()
        }),
    };
    let mut bytes = Vec::new();
    msg.encode(&mut bytes);
    let mut g = c.benchmark_group("krpc");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(512);
    g.bench_function("get_peers_response", |b| {
        b.iter(|| {
            let m = Message::decode(black_box(&bytes)).expect("valid");
            out.clear();
            m.encode(&mut out);
            out.len()
        })
    });
    g.bench_function("get_peers_response_decode", |b| {
        b.iter(|| Message::decode(black_box(&bytes)).expect("valid"))
    });
    let decoded = Message::decode(&bytes).expect("valid");
    g.bench_function("get_peers_response_encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&decoded).encode(&mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(dht_benches, closest, krpc);
criterion_main!(dht_benches);
