//! uTP (BEP 29) in the one simulator. First two bare `UtpSocket`s on the
//! project's seeded network model (tests/src/sim/network.rs), the way
//! `DhtSim` runs bare DHT nodes on it. Transfers both ways under 0–10 %
//! loss, reordering, duplication and 10–300 ms one-way latency must
//! deliver identical bytes and close cleanly on every seed. Then whole
//! nodes (`Swarm`: the real engine and driver loop) with TCP off, so every
//! peer connection is the engine's uTP over the same model: a seeder and
//! three leechers finish with identical data at 0, 5 and 10 % loss, and a
//! run replays from its seed.
//!
//! Then LEDBAT at a bottleneck: with the network's UDP model queueing
//! datagrams in the sender's upload pipe, uTP fills an idle uplink and
//! yields it to a stream that shares it (also tested in the core against
//! its own path model, `core/src/utp/tests/congestion.rs`). And path MTU
//! discovery end to end, over a path whose MTU is 1,300 bytes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bittide_core::utp::{CloseReason, Config, SocketEvent, SocketLimits, UtpConnId, UtpSocket};
use bittide_core::{Instant, Rng, Seed};
use bittide_tests::sim::for_each_seed;
use bittide_tests::sim::network::{Delivery, HostSpec, NetStats, Network, UdpModel};

const MIB: usize = 1 << 20;
/// Virtual time a run may take.
const TIME_BUDGET: Duration = Duration::from_secs(3600);

/// One end: its socket, its connection and the application's streams.
struct End {
    addr: SocketAddr,
    socket: UtpSocket,
    conn: Option<UtpConnId>,
    send: Vec<u8>,
    written: usize,
    received: Vec<u8>,
    closing: bool,
    closed: Option<CloseReason>,
}

impl End {
    /// Writes what the send buffer takes, reads everything ready, and
    /// closes once all is written.
    fn application(&mut self) {
        let Some(c) = self.conn.and_then(|id| self.socket.connection(id)) else {
            return;
        };
        self.written += c.write(&self.send[self.written..]);
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = c.read(&mut buf);
            if n == 0 {
                break;
            }
            self.received.extend_from_slice(&buf[..n]);
        }
        if self.written == self.send.len() && !self.closing {
            self.closing = true;
            c.close();
        }
    }
}

/// Runs one transfer: `a_to_b` bytes one way, `b_to_a` the other; returns
/// when the last byte was read.
fn transfer(seed: u64, udp: UdpModel, a_to_b: usize, b_to_a: usize) -> Instant {
    let mut net = Network::new(Seed::from_u64(seed), udp.clone());
    let mut rng = Rng::new(Seed::from_u64(seed));
    let mut ends: Vec<End> = [(1u8, a_to_b), (2, b_to_a)]
        .into_iter()
        .map(|(n, bytes)| {
            let ip = IpAddr::from([10, 0, 0, n]);
            net.add_host(ip, HostSpec::default());
            let mut send = vec![0; bytes];
            rng.fill(&mut send);
            End {
                addr: SocketAddr::new(ip, 6881),
                socket: UtpSocket::new(
                    Config::default(),
                    SocketLimits::default(),
                    rng.child_seed(),
                ),
                conn: None,
                send,
                written: 0,
                received: Vec::new(),
                closing: false,
                closed: None,
            }
        })
        .collect();
    let mut now = Instant::ZERO;
    let mut delivered_at = Instant::ZERO;
    let to = ends[1].addr;
    ends[0].conn = Some(ends[0].socket.connect(now, to).unwrap());
    loop {
        for end in &mut ends {
            let before = end.received.len();
            end.application();
            if end.received.len() > before {
                delivered_at = now;
            }
            while let Some((to, t)) = end.socket.poll_transmit(now) {
                match t.probe {
                    true => net.send_unfragmented(now, end.addr, to, t.payload),
                    false => net.send_datagram(now, end.addr, to, t.payload),
                }
            }
            while let Some(event) = end.socket.poll_event() {
                match event {
                    SocketEvent::Incoming(id, _) => end.conn = Some(id),
                    SocketEvent::Connected(_) => {}
                    SocketEvent::Closed(_, reason) => end.closed = Some(reason),
                }
            }
        }
        if ends
            .iter()
            .all(|e| e.closed.is_some() && e.socket.is_empty())
        {
            break;
        }
        let next = ends
            .iter()
            .filter_map(|e| e.socket.poll_timeout())
            .chain(net.next_deadline())
            .min()
            .unwrap_or_else(|| panic!("nothing left to happen at {now}"));
        now = now.max(next);
        assert!(now - Instant::ZERO < TIME_BUDGET, "stuck at {now}");
        while let Some((_, delivery)) = net.pop_due(now) {
            if let Delivery::Datagram { from, to, payload } = delivery {
                if let Some(end) = ends.iter_mut().find(|e| e.addr == to) {
                    end.socket.handle_datagram(now, from, &payload);
                }
            }
        }
        for end in &mut ends {
            if end.socket.poll_timeout().is_some_and(|t| t <= now) {
                end.socket.handle_timeout(now);
            }
        }
    }
    for (i, end) in ends.iter().enumerate() {
        let other = &ends[1 - i];
        assert_eq!(end.received.len(), other.send.len(), "end {i}: length");
        assert!(end.received == other.send, "end {i}: different bytes");
        assert_eq!(end.closed, Some(CloseReason::Finished), "end {i}");
    }
    eprintln!(
        "seed {seed}: {udp:?}: delivered at {delivered_at}; {:?}",
        net.stats
    );
    delivered_at
}

fn model(
    loss_percent: u32,
    latency_ms: (u64, u64),
    reorder_ppm: u32,
    duplicate_ppm: u32,
) -> UdpModel {
    UdpModel {
        latency: (
            Duration::from_millis(latency_ms.0),
            Duration::from_millis(latency_ms.1),
        ),
        loss_ppm: loss_percent * 10_000,
        duplicate_ppm,
        reorder_ppm,
        mtu: usize::MAX,
        queue: None,
    }
}

#[test]
fn no_loss_10_ms() {
    for_each_seed(&[1, 2], |seed| {
        let done = transfer(seed, model(0, (10, 12), 0, 0), 4 * MIB, MIB);
        // Jitter reorders datagrams here, which must not pass for loss:
        // a quarter of the run is dozens of round trips.
        assert!(
            done < Instant::ZERO + Duration::from_secs(1),
            "5 MiB over a clean 22 ms path took until {done}"
        );
    });
}

#[test]
fn one_percent_loss_50_ms_reordered_and_duplicated() {
    for_each_seed(&[3, 4], |seed| {
        transfer(seed, model(1, (45, 55), 10_000, 10_000), 4 * MIB, MIB);
    });
}

#[test]
fn five_percent_loss_150_ms() {
    for_each_seed(&[5, 6], |seed| {
        transfer(seed, model(5, (140, 160), 20_000, 20_000), 3 * MIB, MIB);
    });
}

#[test]
fn ten_percent_loss_300_ms() {
    for_each_seed(&[7, 8], |seed| {
        transfer(
            seed,
            model(10, (280, 300), 50_000, 50_000),
            2 * MIB,
            MIB / 2,
        );
    });
}

// --- whole nodes: engines and driver loops over uTP ----------------------

/// A seeder and three leechers with TCP off, each a real `Engine` run by
/// the real driver loop on the simulator, so every peer connection is uTP
/// on the model's datagrams. All leechers end with the seeder's bytes;
/// returns the run's log hash and the network's counters.
fn swarm_over_utp(seed: u64, udp: UdpModel, size: usize) -> (String, NetStats) {
    use bittide_core::engine::Transports;
    use bittide_tests::sim::swarm::{content, PeerSpec, Swarm};
    let utp_only = Transports {
        tcp: false,
        utp: true,
    };
    let mut sim = Swarm::new(seed, content(size, seed), 64 * 1024, udp);
    let spec = |seeder: bool| PeerSpec {
        transports: utp_only,
        ..if seeder {
            PeerSpec::seeder(4 * MIB as u64)
        } else {
            PeerSpec::leecher(4 * MIB as u64)
        }
    };
    sim.add_peer(spec(true), &[]);
    for _ in 0..3 {
        sim.add_peer(spec(false), &[0]);
    }
    let until = Instant::ZERO + Duration::from_secs(600);
    let done = sim.run_until(until, |p| p[1..].iter().all(|p| p.finished()));
    assert!(done, "seed {seed}: not finished by t={}", sim.now());
    sim.deep_check();
    for p in &sim.peers[1..] {
        assert!(p.disk.bytes() == sim.content, "seed {seed}: different data");
    }
    eprintln!("seed {seed}: done by t={}; {}", sim.now(), sim.speed());
    let stats = sim.exec.with_net(|n| n.stats);
    (sim.log_hash(), stats)
}

#[test]
fn engines_swarm_over_utp_on_a_clean_path() {
    for_each_seed(&[11], |seed| {
        let (_, net) = swarm_over_utp(seed, model(0, (10, 12), 0, 0), 2 * MIB);
        assert_eq!(net.too_big, 0, "a path without an MTU loses no probe");
    });
}

/// Path MTU discovery end to end: the engine's probes leave the driver
/// loop with fragmentation forbidden, a path narrower than the largest
/// datagram loses those past it, and the swarm still completes.
#[test]
fn engines_swarm_over_utp_on_a_narrow_path() {
    for_each_seed(&[15], |seed| {
        let udp = UdpModel {
            mtu: 1300,
            ..model(0, (10, 12), 0, 0)
        };
        let (_, net) = swarm_over_utp(seed, udp, 2 * MIB);
        eprintln!("seed {seed}: {net:?}");
        assert!(net.too_big > 0, "probes past 1300 bytes were lost");
    });
}

#[test]
fn engines_swarm_over_utp_despite_loss_reordering_and_duplication() {
    for_each_seed(&[12, 13], |seed| {
        swarm_over_utp(seed, model(5, (50, 150), 20_000, 20_000), 2 * MIB);
    });
}

#[test]
fn engines_swarm_over_utp_at_ten_percent_loss_and_300_ms() {
    for_each_seed(&[14], |seed| {
        swarm_over_utp(seed, model(10, (280, 300), 50_000, 50_000), MIB);
    });
}

#[test]
fn engines_over_utp_replay_from_their_seed() {
    let udp = || model(5, (20, 80), 20_000, 20_000);
    assert_eq!(
        swarm_over_utp(21, udp(), MIB),
        swarm_over_utp(21, udp(), MIB)
    );
}

// --- LEDBAT on the simulator's bottleneck -----------------------------------

/// BEP 29's point, on the one simulator's network: uTP fills an uplink it
/// has to itself, and yields it to a stream that shares it. Host A's
/// 256 KiB/s upload pipe carries its datagrams and its streams' bytes in
/// one queue (`UdpModel::queue`); a uTP transfer runs from A to B, and
/// from 10 s on a stream from A to B keeps its send buffer (64 KiB, a
/// quarter of a second at that rate) queued, as a bulk TCP upload fills
/// a modem's buffer. LEDBAT sees the queueing delay pass its 100 ms target
/// and backs off: the stream gets nearly all of the link.
#[test]
fn ledbat_fills_an_idle_uplink_and_yields_it_to_a_stream() {
    use bittide_tests::sim::network::Side;
    const RATE: u64 = 256 * 1024;
    let secs = Duration::from_secs;
    let at = |s: u64| Instant::ZERO + secs(s);
    let udp = UdpModel {
        queue: Some(secs(2)),
        ..model(0, (20, 20), 0, 0)
    };
    let mut net = Network::new(Seed::from_u64(31), udp);
    let mut rng = Rng::new(Seed::from_u64(31));
    let host = |upload| HostSpec {
        upload,
        latency: (Duration::from_millis(20), Duration::from_millis(20)),
        ..HostSpec::default()
    };
    let end = |n: u8, bytes: usize, rng: &mut Rng| {
        let mut send = vec![0; bytes];
        rng.fill(&mut send);
        End {
            addr: SocketAddr::new(IpAddr::from([10, 0, 0, n]), 6881),
            socket: UtpSocket::new(Config::default(), SocketLimits::default(), rng.child_seed()),
            conn: None,
            send,
            written: 0,
            received: Vec::new(),
            closing: true,
            closed: None,
        }
    };
    let mut ends = [end(1, 64 * MIB, &mut rng), end(2, 0, &mut rng)];
    net.add_host(ends[0].addr.ip(), host(RATE));
    net.add_host(ends[1].addr.ip(), host(64 * MIB as u64));
    let mut now = Instant::ZERO;
    ends[0].conn = Some(ends[0].socket.connect(now, ends[1].addr).unwrap());

    let stream_to = SocketAddr::new(ends[1].addr.ip(), 80);
    let mut stream = None;
    let mut stream_writable = at(10);
    let mut stream_bytes = Vec::new();
    // Bytes B had from uTP and from the stream at each checkpoint.
    let checkpoints = [at(5), at(10), at(20), at(40)];
    let mut seen = Vec::new();
    while seen.len() < checkpoints.len() {
        if now >= at(10) {
            let s = *stream.get_or_insert_with(|| net.connect(now, ends[0].addr, stream_to));
            while stream_writable <= now {
                match net.send(now, s, Side::Client, vec![0; 16 * 1024]) {
                    Some(next) => stream_writable = next.max(now + Duration::from_micros(1)),
                    None => break,
                }
            }
        }
        for end in &mut ends {
            end.application();
            while let Some((to, t)) = end.socket.poll_transmit(now) {
                match t.probe {
                    true => net.send_unfragmented(now, end.addr, to, t.payload),
                    false => net.send_datagram(now, end.addr, to, t.payload),
                }
            }
            while let Some(event) = end.socket.poll_event() {
                if let SocketEvent::Incoming(id, _) = event {
                    end.conn = Some(id);
                }
            }
        }
        let next_checkpoint = checkpoints[seen.len()];
        let next = ends
            .iter()
            .filter_map(|e| e.socket.poll_timeout())
            .chain(net.next_deadline())
            .chain([next_checkpoint])
            .chain(stream.map(|_| stream_writable))
            .chain((stream.is_none()).then(|| at(10)))
            .min()
            .expect("a checkpoint is always ahead");
        now = now.max(next);
        while let Some((_, delivery)) = net.pop_due(now) {
            match delivery {
                Delivery::Datagram { from, to, payload } => {
                    if let Some(end) = ends.iter_mut().find(|e| e.addr == to) {
                        end.socket.handle_datagram(now, from, &payload);
                    }
                }
                Delivery::Data(_, _, bytes) => stream_bytes.push((now, bytes.len())),
                _ => {}
            }
        }
        for end in &mut ends {
            if end.socket.poll_timeout().is_some_and(|t| t <= now) {
                end.socket.handle_timeout(now);
            }
        }
        ends[1].application();
        if now >= next_checkpoint {
            let streamed: usize = stream_bytes.iter().map(|(_, n)| n).sum();
            seen.push((ends[1].received.len(), streamed));
        }
    }
    let rate = |bytes: usize, seconds: u64| bytes as f64 / seconds as f64 / RATE as f64;
    let alone = rate(seen[1].0 - seen[0].0, 5);
    let utp_shared = rate(seen[3].0 - seen[2].0, 20);
    let stream_shared = rate(seen[3].1 - seen[2].1, 20);
    eprintln!(
        "uTP alone {:.0} % of the link; with the stream: uTP {:.0} %, stream {:.0} %; {:?}",
        alone * 100.0,
        utp_shared * 100.0,
        stream_shared * 100.0,
        net.stats
    );
    assert!(
        alone > 0.8,
        "uTP alone used {:.0} % of the link",
        alone * 100.0
    );
    assert!(
        stream_shared > 0.85 && utp_shared < 0.1,
        "LEDBAT did not yield: uTP {:.0} %, stream {:.0} %",
        utp_shared * 100.0,
        stream_shared * 100.0
    );
}
