//! The tracker server's announce handling in the core.
//!
//! A server holding 100,000 peers in one torrent (the worst case for
//! choosing the peer window) answers announces from those peers:
//! - `announce/core`: `TrackerServer::announce` (update + 50 random peers);
//! - `announce/udp`: `TrackerServer::handle_udp`, decode to encoded answer.
//!
//! Announces per second on one core = 1 / time per iteration.
//!
//! Run: `cargo bench -p bittide-benches --bench tracker`.
#![allow(missing_docs)] // criterion_group! generates undocumented functions.

use std::hint::black_box;
use std::net::SocketAddr;

use bittide_core::tracker::server::{ServerConfig, TrackerServer};
use bittide_core::tracker::udp::{UdpRequest, UdpResponse};
use bittide_core::tracker::{AnnounceEvent, AnnounceRequest};
use bittide_core::wire::PeerId;
use bittide_core::{InfoHash, Instant, Seed};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PEERS: u32 = 100_000;

fn peer(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881))
}

fn request(i: u32) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(InfoHash([0x42; 20]), PeerId([i as u8; 20]), 6881);
    r.left = u64::from(i % 3);
    r.event = AnnounceEvent::None;
    r.numwant = Some(50);
    r
}

fn server() -> TrackerServer {
    let mut s = TrackerServer::new(ServerConfig::default(), Seed::from_u64(1));
    for i in 0..PEERS {
        s.announce(Instant::ZERO, peer(i), &request(i))
            .expect("room");
    }
    assert_eq!(s.peer_count(), PEERS as usize);
    s
}

fn announce(c: &mut Criterion) {
    let mut g = c.benchmark_group("announce");
    g.throughput(Throughput::Elements(1));
    let mut s = server();
    let mut i = 0u32;
    g.bench_function("core", |b| {
        b.iter(|| {
            i = (i + 7919) % PEERS;
            let r = s
                .announce(Instant::ZERO, peer(i), black_box(&request(i)))
                .expect("room");
            assert_eq!(r.peers.len(), 50);
            r
        })
    });

    let mut s = server();
    let mut packets = Vec::new();
    for i in (0..PEERS).step_by(97).take(1000) {
        let from = peer(i);
        let mut connect = Vec::new();
        UdpRequest::Connect { tx: 1 }.encode(&mut connect);
        let answer = s.handle_udp(Instant::ZERO, from, &connect).expect("answer");
        let Ok(UdpResponse::Connect { conn_id, .. }) = UdpResponse::decode(&answer, false) else {
            panic!("connect answer");
        };
        let mut p = Vec::new();
        UdpRequest::Announce {
            conn_id,
            tx: 2,
            request: request(i),
            url_data: Vec::new(),
        }
        .encode(&mut p);
        packets.push((from, p));
    }
    let mut k = 0;
    g.bench_function("udp", |b| {
        b.iter(|| {
            k = (k + 1) % packets.len();
            let (from, p) = &packets[k];
            s.handle_udp(Instant::ZERO, *from, black_box(p))
                .expect("answer")
        })
    });
    g.finish();
}

criterion_group!(tracker_benches, announce);
criterion_main!(tracker_benches);
