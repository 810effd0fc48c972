//! The simulator's own parts: the network model and the `VirtualRuntime`
//! (tests/src/sim/network.rs, runtime.rs, sockets.rs), driven by small
//! tasks whose outcome is known in advance.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bittide_core::{Instant, Seed};
use bittide_driver::runtime::Runtime;
use bittide_tests::sim::network::{HostSpec, Network, UdpModel};
use bittide_tests::sim::runtime::{Executor, VirtualRuntime};

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

fn world(udp: UdpModel, hosts: &[(u8, HostSpec)]) -> (Executor, Vec<VirtualRuntime>) {
    let mut net = Network::new(Seed::from_u64(9), udp);
    for (n, spec) in hosts {
        net.add_host(ip(*n), spec.clone());
    }
    let exec = Executor::new(net);
    let rts = hosts
        .iter()
        .enumerate()
        .map(|(i, (n, _))| exec.runtime(i, ip(*n), Duration::ZERO))
        .collect();
    (exec, rts)
}

fn fixed_latency(ms: u64) -> HostSpec {
    HostSpec {
        latency: (Duration::from_millis(ms), Duration::from_millis(ms)),
        ..HostSpec::default()
    }
}

fn secs(s: f64) -> Instant {
    Instant::ZERO + Duration::from_secs_f64(s)
}

/// Bytes cross in order, at the sender's upload rate plus one latency; end
/// of stream follows the last byte.
#[test]
fn a_stream_carries_bytes_in_order_at_the_upload_rate() {
    let mut slow = fixed_latency(50);
    slow.upload = 100_000;
    let (mut exec, rts) = world(UdpModel::default(), &[(1, slow), (2, fixed_latency(50))]);
    let server = SocketAddr::new(ip(2), 80);
    let mut listener = rts[1].listen_now(server).unwrap();
    let got = Arc::new(Mutex::new((Vec::new(), Instant::ZERO)));
    let sink = got.clone();
    let clock = rts[1].clone();
    rts[1].spawn(Box::pin(async move {
        let ((mut r, _w), _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            sink.lock().unwrap().0.extend_from_slice(&buf[..n]);
        }
        sink.lock().unwrap().1 = clock.now();
    }));
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let rt = rts[0].clone();
    rts[0].spawn(Box::pin(async move {
        let (_r, mut w) = rt.connect(server).await.unwrap();
        for chunk in sent.chunks(16_384) {
            w.write_all(chunk).await.unwrap();
        }
        w.shutdown().await.unwrap();
    }));
    exec.run_until(secs(10.0), || false);
    let (bytes, eof_at) = got.lock().unwrap().clone();
    assert!(bytes == data, "bytes changed or reordered");
    // Handshake: 1.5 round trips (150 ms); 200,000 bytes at 100,000 B/s:
    // 2 s; then one latency.
    let took = eof_at.since_epoch().as_secs_f64();
    assert!((2.1..2.4).contains(&took), "took {took:.3} s");
}

/// A connect to a port nobody listens on is refused after a round trip;
/// a connect to a black hole never answers (the caller's timeout decides).
#[test]
fn refused_and_black_holed_connects() {
    let mut hole = fixed_latency(20);
    hole.black_hole = true;
    let (mut exec, rts) = world(
        UdpModel::default(),
        &[(1, fixed_latency(20)), (2, fixed_latency(20)), (3, hole)],
    );
    let results = Arc::new(Mutex::new(Vec::new()));
    for target in [SocketAddr::new(ip(2), 81), SocketAddr::new(ip(3), 80)] {
        let (rt, out) = (rts[0].clone(), results.clone());
        rts[0].spawn(Box::pin(async move {
            let r = rt.connect(target).await.map(|_| ()).map_err(|e| e.kind());
            out.lock().unwrap().push((target, r, rt.now()));
        }));
    }
    exec.run_until(secs(60.0), || false);
    let r = results.lock().unwrap().clone();
    assert_eq!(r.len(), 1, "the black hole answered: {r:?}");
    assert_eq!(r[0].1, Err(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(r[0].2, secs(0.04));
}

/// UDP: the loss, duplication and reordering rates come out near the
/// model's, and the same seed gives the same arrivals.
#[test]
fn datagrams_are_lost_duplicated_and_reordered_as_the_model_says() {
    let run = || {
        let model = UdpModel {
            latency: (Duration::from_millis(20), Duration::from_millis(300)),
            loss_ppm: 50_000,
            duplicate_ppm: 20_000,
            reorder_ppm: 100_000,
            mtu: usize::MAX,
            queue: None,
        };
        let (mut exec, rts) = world(model, &[(1, HostSpec::default()), (2, HostSpec::default())]);
        let a = rts[0].bind_udp_now(SocketAddr::new(ip(1), 6881)).unwrap();
        let b = rts[1].bind_udp_now(SocketAddr::new(ip(2), 6881)).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        rts[1].spawn(Box::pin(async move {
            let mut buf = [0u8; 16];
            while let Ok((n, _)) = b.recv_from(&mut buf).await {
                sink.lock()
                    .unwrap()
                    .push(u32::from_be_bytes(buf[..n].try_into().unwrap()));
            }
        }));
        rts[0].spawn(Box::pin(async move {
            for i in 0..10_000u32 {
                a.send_to(&i.to_be_bytes(), SocketAddr::new(ip(2), 6881))
                    .await
                    .unwrap();
            }
        }));
        exec.run_until(secs(5.0), || false);
        let stats = exec.with_net(|n| n.stats);
        let got = got.lock().unwrap().clone();
        (got, stats)
    };
    let (got, stats) = run();
    assert!((400..600).contains(&stats.lost), "{stats:?}");
    assert!((100..300).contains(&stats.duplicated), "{stats:?}");
    assert_eq!(got.len() as u64, 10_000 - stats.lost + stats.duplicated);
    let out_of_order = got.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(out_of_order > 1000, "only {out_of_order} reordered");
    assert_eq!(run().0, got, "same seed, different arrivals");
}

/// A node that vanishes resets its streams: the other end's read fails.
#[test]
fn a_vanishing_node_resets_its_streams() {
    let (mut exec, rts) = world(
        UdpModel::default(),
        &[(1, fixed_latency(10)), (2, fixed_latency(10))],
    );
    let server = SocketAddr::new(ip(2), 80);
    let mut listener = rts[1].listen_now(server).unwrap();
    rts[1].spawn(Box::pin(async move {
        let (conn, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(conn);
    }));
    let seen = Arc::new(Mutex::new(None));
    let (rt, out) = (rts[0].clone(), seen.clone());
    rts[0].spawn(Box::pin(async move {
        let (mut r, _w) = rt.connect(server).await.unwrap();
        let mut buf = [0u8; 8];
        *out.lock().unwrap() = Some(r.read(&mut buf).await.map_err(|e| e.kind()));
    }));
    exec.run_until(secs(1.0), || false);
    assert!(seen.lock().unwrap().is_none(), "read returned early");
    exec.kill(1, ip(2));
    exec.run_until(secs(2.0), || false);
    assert_eq!(
        *seen.lock().unwrap(),
        Some(Err(std::io::ErrorKind::ConnectionReset))
    );
}

/// A host behind a NAT refuses inbound TCP connects and takes datagrams
/// only from addresses it sent one to within `NAT_HOLE_LIFETIME`; a
/// public host takes everything.
#[test]
fn a_nat_filters_what_it_did_not_ask_for() {
    use bittide_tests::sim::network::{Delivery, NAT_HOLE_LIFETIME};
    let clean = UdpModel {
        latency: (Duration::from_millis(10), Duration::from_millis(10)),
        loss_ppm: 0,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        mtu: usize::MAX,
        queue: None,
    };
    let mut net = Network::new(Seed::from_u64(3), clean);
    let nat = HostSpec {
        behind_nat: true,
        ..HostSpec::default()
    };
    net.add_host(ip(1), nat);
    net.add_host(ip(2), HostSpec::default());
    let (a, b) = (SocketAddr::new(ip(1), 6881), SocketAddr::new(ip(2), 6881));
    let delivered = |net: &mut Network, until: Instant| {
        let mut out = Vec::new();
        while let Some((_, d)) = net.pop_due(until) {
            out.push(d);
        }
        out
    };
    // Unsolicited: filtered. TCP in: refused. TCP out: fine.
    net.send_datagram(secs(0.0), b, a, b"knock".to_vec());
    let s = net.connect(secs(0.0), b, a);
    let out = net.connect(secs(0.0), a, b);
    let d = delivered(&mut net, secs(1.0));
    assert!(d.contains(&Delivery::Refused(s)), "{d:?}");
    assert!(d
        .iter()
        .any(|d| matches!(d, Delivery::Syn { stream, .. } if *stream == out)));
    assert!(!d.iter().any(|d| matches!(d, Delivery::Datagram { .. })));
    // A sends to B: B's answers come in, until the hole closes.
    net.send_datagram(secs(1.0), a, b, b"hello".to_vec());
    net.send_datagram(secs(1.5), b, a, b"welcome".to_vec());
    let d = delivered(&mut net, secs(2.0));
    assert_eq!(
        d.iter()
            .filter(|d| matches!(d, Delivery::Datagram { to, .. } if *to == a))
            .count(),
        1
    );
    let late = secs(1.0) + NAT_HOLE_LIFETIME + Duration::from_secs(1);
    net.send_datagram(late, b, a, b"too late".to_vec());
    // Another port of B never had a hole.
    net.send_datagram(
        secs(2.0),
        SocketAddr::new(ip(2), 7000),
        a,
        b"other".to_vec(),
    );
    let d = delivered(&mut net, late + Duration::from_secs(1));
    assert!(
        !d.iter().any(|d| matches!(d, Delivery::Datagram { .. })),
        "{d:?}"
    );
    assert_eq!(net.stats.nat_filtered, 3);
    assert_eq!(net.stats.nat_refused, 1);
}
