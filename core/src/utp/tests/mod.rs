//! Two uTP sockets through a simulated path on a virtual clock, driven the
//! way quinn-proto's `tests/util.rs` drives a pair: after each input drain
//! every output, jump to the next event, fail loudly past a time or step
//! budget. Everything is seeded; a failing case names its seed.

mod congestion;
mod path;
mod socket;
mod transfer;

use std::net::SocketAddr;
use std::time::Duration;

use path::{Dest, Network, PathModel};

use super::{CloseReason, Config, SocketEvent, SocketLimits, Stats, UtpConnId, UtpSocket};
use crate::rng::{Rng, Seed};
use crate::time::Instant;

/// A bare SYN with connection id `conn_id`, as an initiator sends it.
pub(crate) fn syn(conn_id: u16) -> Vec<u8> {
    super::Packet {
        kind: super::PacketType::Syn,
        conn_id,
        timestamp_us: 0,
        timestamp_diff_us: 0,
        wnd_size: 1 << 20,
        seq_nr: super::SeqNr(1),
        ack_nr: super::SeqNr(0),
        selective_ack: None,
        payload: &[],
    }
    .to_vec()
}

/// One host: a socket, its one connection, what it sends and receives.
struct Host {
    socket: UtpSocket,
    addr: SocketAddr,
    /// Added to the simulation's clock to give this host's clock, so the
    /// two ends disagree (and a microsecond timestamp may wrap).
    clock_offset: Duration,
    conn: Option<UtpConnId>,
    outgoing: Vec<u8>,
    written: usize,
    incoming: Vec<u8>,
    close_called: bool,
    /// Whether the application closes once everything is written.
    close_after_writing: bool,
    /// Whether the application reads what arrives.
    reading: bool,
    /// Datagrams sent.
    sent: usize,
    closed: Option<CloseReason>,
    /// Its connection's counters when last seen open.
    stats: Option<Stats>,
    /// (time, bytes received so far), one entry per read.
    progress: Vec<(Instant, usize)>,
}

impl Host {
    fn new(port: u16, seed: u64, config: Config, outgoing: Vec<u8>) -> Host {
        Host {
            socket: UtpSocket::new(config, SocketLimits::default(), Seed::from_u64(seed)),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            clock_offset: Duration::ZERO,
            conn: None,
            outgoing,
            written: 0,
            incoming: Vec::new(),
            close_called: false,
            close_after_writing: true,
            reading: true,
            sent: 0,
            closed: None,
            stats: None,
            progress: Vec::new(),
        }
    }

    fn local(&self, now: Instant) -> Instant {
        now + self.clock_offset
    }

    /// The application's turn: write what fits, read what is there, close
    /// once everything is written.
    fn run_application(&mut self) {
        let Some(c) = self.conn.and_then(|id| self.socket.connection(id)) else {
            return;
        };
        if self.written < self.outgoing.len() {
            self.written += c.write(&self.outgoing[self.written..]);
        }
        let mut buf = [0u8; 16 * 1024];
        while self.reading {
            let n = c.read(&mut buf);
            if n == 0 {
                break;
            }
            self.incoming.extend_from_slice(&buf[..n]);
        }
        if self.close_after_writing && self.written == self.outgoing.len() && !self.close_called {
            self.close_called = true;
            c.close();
        }
    }
}

/// A competing flow: fixed-size datagrams at a fixed rate from host 0's
/// side through host 0's bottleneck, during `active`.
struct FixedRateFlow {
    rate: u64,
    datagram: usize,
    active: (Instant, Instant),
    next_send: Instant,
    /// Queuing delay each of its datagrams met, as the sink saw it.
    delays: Vec<Duration>,
}

/// The pair, the path between them, and the virtual clock.
struct Pair {
    now: Instant,
    net: Network,
    hosts: [Host; 2],
    competitor: Option<FixedRateFlow>,
    latency: Duration,
    /// The largest datagram the path carries unfragmented: a larger probe
    /// (sent with fragmentation forbidden) is lost; a larger ordinary
    /// datagram arrives in fragments.
    path_mtu: usize,
    probes_dropped: u64,
    seed: u64,
    steps: u64,
}

/// Virtual time a case may take before it is declared stuck.
const TIME_BUDGET: Duration = Duration::from_secs(3600);
/// Loop turns a case may take before it is declared livelocked.
const STEP_BUDGET: u64 = 5_000_000;

impl Pair {
    /// Host 0 connects to host 1 and sends `forward` bytes; host 1 sends
    /// `backward` bytes back; both directions use `model`.
    fn new(seed: u64, model: PathModel, forward: usize, backward: usize) -> Pair {
        let mut rng = Rng::new(Seed::from_u64(seed));
        let mut data = |n: usize| {
            let mut v = vec![0u8; n];
            rng.fill(&mut v);
            v
        };
        let config = Config::default();
        let hosts = [
            Host::new(6881, seed * 2 + 1, config, data(forward)),
            Host::new(6882, seed * 2 + 2, config, data(backward)),
        ];
        let mut pair = Pair {
            now: Instant::ZERO,
            net: Network::new(seed, model, model),
            hosts,
            competitor: None,
            latency: model.latency,
            path_mtu: usize::MAX,
            probes_dropped: 0,
            seed,
            steps: 0,
        };
        let to = pair.hosts[1].addr;
        let local = pair.hosts[0].local(pair.now);
        let id = pair.hosts[0].socket.connect(local, to).unwrap();
        pair.hosts[0].conn = Some(id);
        pair
    }

    /// Every host's outputs, until none is left.
    fn drain(&mut self) {
        let addrs = [self.hosts[0].addr, self.hosts[1].addr];
        for h in 0..2 {
            let host = &mut self.hosts[h];
            host.run_application();
            let local = host.local(self.now);
            while let Some((to, datagram)) = host.socket.poll_transmit(local) {
                let dest = addrs
                    .iter()
                    .position(|&a| a == to)
                    .expect("sent to a host of the pair");
                host.sent += 1;
                if datagram.probe && datagram.payload.len() > self.path_mtu {
                    self.probes_dropped += 1;
                    continue;
                }
                self.net
                    .send(self.now, h, Dest::Host(dest), datagram.payload);
            }
            let host = &mut self.hosts[h];
            if let Some(c) = host.conn.and_then(|id| host.socket.connection(id)) {
                host.stats = Some(c.stats());
            }
            while let Some(event) = host.socket.poll_event() {
                match event {
                    SocketEvent::Incoming(id, _) => {
                        assert!(host.conn.is_none(), "seed {}: second connection", self.seed);
                        host.conn = Some(id);
                    }
                    SocketEvent::Connected(_) => {}
                    SocketEvent::Closed(_, reason) => {
                        eprintln!("{}: host {h} closed: {reason}", self.now);
                        host.closed = Some(reason);
                    }
                }
            }
            let before = host.progress.last().map_or(0, |p| p.1);
            if host.incoming.len() > before {
                host.progress.push((self.now, host.incoming.len()));
            }
        }
        if let Some(flow) = &mut self.competitor {
            while flow.next_send <= self.now {
                if flow.next_send >= flow.active.0 && flow.next_send < flow.active.1 {
                    let queued_at = Dest::Sink(self.now);
                    self.net
                        .send(self.now, 0, queued_at, vec![0; flow.datagram]);
                }
                let gap = flow.datagram as u64 * 1_000_000_000 / flow.rate;
                flow.next_send += Duration::from_nanos(gap);
            }
        }
    }

    /// The next moment anything happens.
    fn next_event(&self) -> Option<Instant> {
        let timers = self.hosts.iter().filter_map(|h| {
            h.socket.poll_timeout().map(|t| {
                Instant::from_nanos(
                    t.as_nanos()
                        .saturating_sub(h.clock_offset.as_nanos() as u64),
                )
            })
        });
        let flow = self
            .competitor
            .as_ref()
            .filter(|f| f.next_send < f.active.1)
            .map(|f| f.next_send);
        timers.chain(self.net.next_arrival()).chain(flow).min()
    }

    /// Advances to the next event and feeds it in.
    fn step(&mut self) {
        self.drain();
        if self.finished() {
            return;
        }
        let Some(next) = self.next_event() else {
            let (seed, now) = (self.seed, self.now);
            panic!(
                "seed {seed}: nothing left to happen at {now}: {}",
                self.describe()
            );
        };
        self.now = next.max(self.now);
        self.steps += 1;
        assert!(
            self.now - Instant::ZERO < TIME_BUDGET && self.steps < STEP_BUDGET,
            "seed {}: stuck at {} after {} steps",
            self.seed,
            self.now,
            self.steps
        );
        while let Some((dest, datagram)) = self.net.pop_due(self.now) {
            match dest {
                Dest::Host(h) => {
                    let from = self.hosts[1 - h].addr;
                    let host = &mut self.hosts[h];
                    let local = host.local(self.now);
                    host.socket.handle_datagram(local, from, &datagram);
                }
                Dest::Sink(queued_at) => {
                    if let Some(flow) = &mut self.competitor {
                        let delay = (self.now - queued_at).saturating_sub(self.latency);
                        flow.delays.push(delay);
                    }
                }
            }
        }
        for host in &mut self.hosts {
            let local = host.local(self.now);
            if host.socket.poll_timeout().is_some_and(|t| t <= local) {
                host.socket.handle_timeout(local);
            }
        }
    }

    /// Where each host stands, for failure messages.
    fn describe(&mut self) -> String {
        let mut out = String::new();
        for (h, host) in self.hosts.iter_mut().enumerate() {
            let state = host
                .conn
                .and_then(|id| host.socket.connection(id))
                .map(|c| format!("{:?} {:?}", c.state(), c.stats()));
            out += &format!(
                "[host {h}: wrote {}/{}, read {}, closed {:?}, conns {}, {state:?}] ",
                host.written,
                host.outgoing.len(),
                host.incoming.len(),
                host.closed,
                host.socket.len()
            );
        }
        out
    }

    /// Whether both hosts closed and their tables emptied.
    fn finished(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| h.closed.is_some() && h.socket.is_empty())
    }

    /// Runs until both hosts closed and their tables emptied.
    fn run_to_completion(&mut self) {
        while !self.finished() {
            self.step();
        }
    }

    /// Asserts each host received exactly what the other sent and both
    /// connections finished cleanly.
    fn assert_delivered(&self) {
        for (h, host) in self.hosts.iter().enumerate() {
            let other = &self.hosts[1 - h];
            assert_eq!(
                host.incoming.len(),
                other.outgoing.len(),
                "seed {}: host {h} received a different length",
                self.seed
            );
            assert!(
                host.incoming == other.outgoing,
                "seed {}: host {h} received different bytes",
                self.seed
            );
            assert_eq!(
                host.closed,
                Some(CloseReason::Finished),
                "seed {}: host {h} did not finish cleanly",
                self.seed,
            );
        }
    }

    /// Host 0's connection's counters, as last seen open.
    fn sender_stats(&self) -> Stats {
        self.hosts[0].stats.expect("host 0 had a connection")
    }

    /// When the last byte in either direction was read.
    fn delivered_at(&self) -> Instant {
        self.hosts
            .iter()
            .filter_map(|h| h.progress.last().map(|p| p.0))
            .max()
            .unwrap_or(Instant::ZERO)
    }

    /// Bytes host 1 received between `from` and `to`.
    fn received_between(&self, from: Instant, to: Instant) -> usize {
        let at = |t: Instant| {
            self.hosts[1]
                .progress
                .iter()
                .take_while(|p| p.0 <= t)
                .last()
                .map_or(0, |p| p.1)
        };
        at(to) - at(from)
    }
}
