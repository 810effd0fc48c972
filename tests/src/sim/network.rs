//! The network model: when (and whether) bytes and datagrams arrive.
//!
//! A [`Network`] owns no sockets; it decides fates and queues
//! [`Delivery`]s in time order for whoever owns the endpoints (the
//! [`World`](super::runtime) behind the `VirtualRuntime`, or the bare-`Dht`
//! simulation in [`super::dht`]). Every decision draws from one generator
//! seeded by the run's seed, so the same seed gives the same deliveries in
//! the same order (ties broken by a sequence number, never by a hash).
//!
//! The model, in the way str0m's `netem` shapes a link:
//! - **Hosts** are IP addresses with a [`HostSpec`]: upload and download
//!   bandwidth (each a FIFO pipe shared by all the host's streams), a range
//!   of one-way latency, and whether it is a black hole (accepts nothing,
//!   answers nothing, what it sends is lost).
//! - **TCP streams** get one latency per connection (the mean of a draw from
//!   each end's range); bytes leave the sender's upload pipe at its rate,
//!   cross the link, and wait for the receiver's download pipe; arrival
//!   order per direction is kept. A connect to a black hole never answers;
//!   a connect to a port nobody listens on is refused one round trip later;
//!   a reset reaches the other end after the bytes already in flight.
//! - **UDP datagrams** get their own latency from [`UdpModel::latency`], are
//!   lost, duplicated or held back (reordered) with the model's
//!   probabilities, and are delivered to whatever is bound at the
//!   destination; with [`UdpModel::queue`] they first wait their turn in
//!   the sender's upload pipe, behind its streams' bytes, and are dropped
//!   when that queue is too long.
//! - **NATs** ([`HostSpec::behind_nat`]): a host behind one refuses every
//!   inbound TCP connect, and a datagram reaches it only from an address
//!   it sent a datagram to itself within [`NAT_HOLE_LIFETIME`] (checked
//!   when the datagram arrives): the endpoint-dependent filtering of a
//!   common home router, which is what BEP 55's holepunching gets
//!   through. Addresses are not translated: a host keeps its own address
//!   and port, as a router that preserves ports would show it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bittide_core::{Instant, Rng, Seed};

/// How datagrams travel.
#[derive(Clone, Debug)]
pub struct UdpModel {
    /// One-way latency range (uniform).
    pub latency: (Duration, Duration),
    /// Chance a datagram is lost, in parts per million.
    pub loss_ppm: u32,
    /// Chance a datagram arrives twice, in parts per million.
    pub duplicate_ppm: u32,
    /// Chance a datagram is held back by up to another `latency.1` (so it
    /// overtakes nothing but is overtaken), in parts per million.
    pub reorder_ppm: u32,
    /// The largest datagram the paths carry whole: a larger one sent with
    /// fragmentation forbidden (a uTP path MTU probe) is lost; a larger
    /// ordinary one arrives in fragments, as one.
    pub mtu: usize,
    /// `Some(limit)`: datagrams leave through the sending host's upload
    /// pipe, in one queue with its streams' bytes, and one that would
    /// wait there longer than `limit` is dropped (a drop-tail bottleneck,
    /// where LEDBAT's delay measurements mean something); `None`: they
    /// bypass the pipes.
    pub queue: Option<Duration>,
}

impl Default for UdpModel {
    fn default() -> UdpModel {
        UdpModel {
            latency: (Duration::from_millis(20), Duration::from_millis(200)),
            loss_ppm: 50_000,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            mtu: usize::MAX,
            queue: None,
        }
    }
}

/// One host's links.
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// Upload bandwidth, bytes per second.
    pub upload: u64,
    /// Download bandwidth, bytes per second.
    pub download: u64,
    /// One-way latency range of its TCP streams.
    pub latency: (Duration, Duration),
    /// Answers nothing: connects to it hang, what it sends is lost.
    pub black_hole: bool,
    /// Sits behind a filtering NAT (see the module documentation).
    pub behind_nat: bool,
}

impl Default for HostSpec {
    fn default() -> HostSpec {
        HostSpec {
            upload: 8 << 20,
            download: 64 << 20,
            latency: (Duration::from_millis(10), Duration::from_millis(60)),
            black_hole: false,
            behind_nat: false,
        }
    }
}

/// A TCP stream, named by the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64);

/// One end of a stream: the side that connected, or the side that
/// accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The connecting side.
    Client,
    /// The accepting side.
    Server,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Something that reaches an endpoint at a given instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A datagram for whatever is bound at `to`.
    Datagram {
        /// Source address (as the receiver sees it).
        from: SocketAddr,
        /// Destination.
        to: SocketAddr,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A connection attempt reaches `to`: the owner answers with
    /// [`Network::accept`] or [`Network::refuse`].
    Syn {
        /// The stream.
        stream: StreamId,
        /// The client's address.
        from: SocketAddr,
        /// Where it connects.
        to: SocketAddr,
    },
    /// The server accepted: the client's connect succeeds.
    Established(StreamId),
    /// Nobody listens there: the client's connect fails.
    Refused(StreamId),
    /// Bytes for one end.
    Data(StreamId, Side, Vec<u8>),
    /// The other end closed its write direction: end of stream for this
    /// end.
    Fin(StreamId, Side),
    /// The other end reset the stream.
    Reset(StreamId, Side),
}

#[derive(Debug)]
struct Host {
    spec: HostSpec,
    /// When each pipe is next free.
    up_free: Instant,
    down_free: Instant,
    /// Behind a NAT: when it last sent a datagram from each of its
    /// addresses to each remote one (the holes in its filter).
    holes: BTreeMap<(SocketAddr, SocketAddr), Instant>,
}

/// How long a NAT lets datagrams in from an address after the host behind
/// it sent one there (UDP mappings of home routers last 30 s to a few
/// minutes).
pub const NAT_HOLE_LIFETIME: Duration = Duration::from_secs(30);
/// Holes a host's NAT tracks before forgetting expired ones.
const NAT_HOLES_PRUNE: usize = 1024;

#[derive(Debug)]
struct Stream {
    ends: [SocketAddr; 2],
    latency: Duration,
    /// When the last bytes towards each end arrive (keeps TCP order).
    last_arrival: [Instant; 2],
    /// Reset or fully closed: nothing more is carried.
    dead: bool,
}

fn index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Counters over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams sent.
    pub datagrams: u64,
    /// Datagrams the loss model dropped.
    pub lost: u64,
    /// Extra copies the duplication model made.
    pub duplicated: u64,
    /// Datagrams held back by the reordering model.
    pub reordered: u64,
    /// Stream payload bytes carried.
    pub stream_bytes: u64,
    /// Deliveries handed out.
    pub delivered: u64,
    /// Datagrams a NAT filtered out.
    pub nat_filtered: u64,
    /// TCP connects a NAT refused.
    pub nat_refused: u64,
    /// Datagrams sent with fragmentation forbidden that were larger than
    /// the MTU, and lost for it.
    pub too_big: u64,
    /// Datagrams dropped at a full upload queue ([`UdpModel::queue`]).
    pub tail_drops: u64,
}

/// The network; see the module documentation.
#[derive(Debug)]
pub struct Network {
    rng: Rng,
    udp: UdpModel,
    hosts: BTreeMap<IpAddr, Host>,
    streams: BTreeMap<StreamId, Stream>,
    next_stream: u64,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    /// Counters.
    pub stats: NetStats,
}

/// Bytes a host may have queued in its upload pipe before a writer waits
/// (the socket send buffer).
pub const SEND_BUFFER: usize = 64 * 1024;

fn uniform(rng: &mut Rng, (lo, hi): (Duration, Duration)) -> Duration {
    let span = hi.saturating_sub(lo).as_micros() as u64;
    lo + Duration::from_micros(rng.below(span + 1))
}

fn transfer_time(bytes: usize, rate: u64) -> Duration {
    Duration::from_nanos((bytes as u64).saturating_mul(1_000_000_000) / rate.max(1))
}

impl Network {
    /// An empty network whose every decision comes from `seed`.
    pub fn new(seed: Seed, udp: UdpModel) -> Network {
        Network {
            rng: Rng::new(seed),
            udp,
            hosts: BTreeMap::new(),
            streams: BTreeMap::new(),
            next_stream: 0,
            queue: BTreeMap::new(),
            seq: 0,
            stats: NetStats::default(),
        }
    }

    /// Adds (or replaces) a host.
    pub fn add_host(&mut self, ip: IpAddr, spec: HostSpec) {
        let host = Host {
            spec,
            up_free: Instant::ZERO,
            down_free: Instant::ZERO,
            holes: BTreeMap::new(),
        };
        self.hosts.insert(ip, host);
    }

    /// Makes `ip` a black hole (or a host again).
    pub fn set_black_hole(&mut self, ip: IpAddr, on: bool) {
        if let Some(h) = self.hosts.get_mut(&ip) {
            h.spec.black_hole = on;
        }
    }

    fn is_black_hole(&self, ip: IpAddr) -> bool {
        self.hosts.get(&ip).is_some_and(|h| h.spec.black_hole)
    }

    /// A number below `n` from the network's generator (for scenarios that
    /// need one more random choice without a generator of their own).
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    fn push(&mut self, at: Instant, delivery: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), delivery);
    }

    /// Queues `delivery` for exactly `at`, past every model (a forged
    /// datagram a test injects).
    pub fn inject(&mut self, at: Instant, delivery: Delivery) {
        self.push(at, delivery);
    }

    /// When the next delivery is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    /// The next delivery due at or before `now` (datagrams a NAT filters
    /// out are dropped on the way).
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Delivery)> {
        loop {
            let (&(at, seq), _) = self.queue.iter().next()?;
            if at > now {
                return None;
            }
            let d = self.queue.remove(&(at, seq))?;
            if let Delivery::Datagram { from, to, .. } = &d {
                if !self.nat_lets_in(at, *from, *to) {
                    self.stats.nat_filtered += 1;
                    continue;
                }
            }
            self.stats.delivered += 1;
            return Some((at, d));
        }
    }

    fn behind_nat(&self, ip: IpAddr) -> bool {
        self.hosts.get(&ip).is_some_and(|h| h.spec.behind_nat)
    }

    /// Whether a datagram from `from` arriving at `at` passes `to`'s NAT.
    fn nat_lets_in(&self, at: Instant, from: SocketAddr, to: SocketAddr) -> bool {
        let Some(h) = self.hosts.get(&to.ip()).filter(|h| h.spec.behind_nat) else {
            return true;
        };
        h.holes
            .get(&(to, from))
            .is_some_and(|&sent| at.saturating_duration_since(sent) <= NAT_HOLE_LIFETIME)
    }

    /// `from`'s host sent a datagram to `to`: its NAT lets answers in.
    fn punch(&mut self, now: Instant, from: SocketAddr, to: SocketAddr) {
        let Some(h) = self.hosts.get_mut(&from.ip()).filter(|h| h.spec.behind_nat) else {
            return;
        };
        if h.holes.len() >= NAT_HOLES_PRUNE {
            h.holes
                .retain(|_, sent| now.saturating_duration_since(*sent) <= NAT_HOLE_LIFETIME);
        }
        h.holes.insert((from, to), now);
    }

    /// Deliveries still queued.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    // --- UDP ----------------------------------------------------------------

    /// Sends a datagram with fragmentation forbidden: lost if larger than
    /// the model's MTU, else as [`send_datagram`](Network::send_datagram).
    pub fn send_unfragmented(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        payload: Vec<u8>,
    ) {
        if payload.len() > self.udp.mtu {
            self.stats.datagrams += 1;
            self.stats.too_big += 1;
            return;
        }
        self.send_datagram(now, from, to, payload);
    }

    /// Sends a datagram: lost, delayed, duplicated or held back as the
    /// model says. From a black hole, nothing leaves.
    pub fn send_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        payload: Vec<u8>,
    ) {
        self.stats.datagrams += 1;
        self.punch(now, from, to);
        if self.is_black_hole(from.ip()) || self.is_black_hole(to.ip()) {
            self.stats.lost += 1;
            return;
        }
        let ppm = |rng: &mut Rng, p: u32| p > 0 && rng.below(1_000_000) < u64::from(p);
        if ppm(&mut self.rng, self.udp.loss_ppm) {
            self.stats.lost += 1;
            return;
        }
        let mut departs = now;
        if let Some(limit) = self.udp.queue {
            if let Some(h) = self.hosts.get_mut(&from.ip()) {
                let start = h.up_free.max(now);
                if start.saturating_duration_since(now) > limit {
                    self.stats.tail_drops += 1;
                    return;
                }
                h.up_free = start + transfer_time(payload.len(), h.spec.upload);
                departs = h.up_free;
            }
        }
        let now = departs;
        let mut at = now + uniform(&mut self.rng, self.udp.latency);
        if ppm(&mut self.rng, self.udp.reorder_ppm) {
            self.stats.reordered += 1;
            at += uniform(&mut self.rng, (Duration::ZERO, self.udp.latency.1));
        }
        if ppm(&mut self.rng, self.udp.duplicate_ppm) {
            self.stats.duplicated += 1;
            let again = now + uniform(&mut self.rng, self.udp.latency);
            let copy = Delivery::Datagram {
                from,
                to,
                payload: payload.clone(),
            };
            self.push(again, copy);
        }
        self.push(at, Delivery::Datagram { from, to, payload });
    }

    // --- TCP ----------------------------------------------------------------

    fn link_latency(&mut self, a: IpAddr, b: IpAddr) -> Duration {
        let range = |ip| {
            self.hosts
                .get(&ip)
                .map_or(HostSpec::default().latency, |h| h.spec.latency)
        };
        let (ra, rb) = (range(a), range(b));
        (uniform(&mut self.rng, ra) + uniform(&mut self.rng, rb)) / 2
    }

    /// Opens a stream from `from` to `to`: a [`Delivery::Syn`] reaches `to`
    /// one latency later, unless `to` is a black hole (then nothing ever
    /// answers), unknown or behind a NAT (refused).
    pub fn connect(&mut self, now: Instant, from: SocketAddr, to: SocketAddr) -> StreamId {
        let id = StreamId(self.next_stream);
        self.next_stream += 1;
        let latency = self.link_latency(from.ip(), to.ip());
        self.streams.insert(
            id,
            Stream {
                ends: [from, to],
                latency,
                last_arrival: [now; 2],
                dead: false,
            },
        );
        if self.is_black_hole(to.ip()) || self.is_black_hole(from.ip()) {
            return id;
        }
        if self.behind_nat(to.ip()) {
            self.stats.nat_refused += 1;
        }
        if !self.hosts.contains_key(&to.ip()) || self.behind_nat(to.ip()) {
            self.push(now + latency * 2, Delivery::Refused(id));
            return id;
        }
        self.push(
            now + latency,
            Delivery::Syn {
                stream: id,
                from,
                to,
            },
        );
        id
    }

    /// The server side takes the stream: the client learns one latency
    /// later.
    pub fn accept(&mut self, now: Instant, stream: StreamId) {
        if let Some(s) = self.streams.get(&stream) {
            let at = now + s.latency;
            self.push(at, Delivery::Established(stream));
        }
    }

    /// Nobody listens: the client learns one latency later.
    pub fn refuse(&mut self, now: Instant, stream: StreamId) {
        if let Some(s) = self.streams.remove(&stream) {
            self.push(now + s.latency, Delivery::Refused(stream));
        }
    }

    /// Sends bytes from `side` towards the other end. Returns when the
    /// writer may go on: once no more than [`SEND_BUFFER`] bytes wait in the
    /// sender's upload pipe; `None` if the stream is gone.
    pub fn send(
        &mut self,
        now: Instant,
        stream: StreamId,
        side: Side,
        data: Vec<u8>,
    ) -> Option<Instant> {
        let s = self.streams.get(&stream).filter(|s| !s.dead)?;
        let (from, to, latency) = (
            s.ends[index(side)].ip(),
            s.ends[index(side.peer())].ip(),
            s.latency,
        );
        let len = data.len();
        let (up, writable, silent) = match self.hosts.get_mut(&from) {
            Some(h) => {
                let start = h.up_free.max(now);
                h.up_free = start + transfer_time(len, h.spec.upload);
                let buffered = transfer_time(SEND_BUFFER, h.spec.upload).as_nanos() as u64;
                let writable = Instant::from_nanos(h.up_free.as_nanos().saturating_sub(buffered));
                (h.up_free, writable.max(now), h.spec.black_hole)
            }
            None => (now, now, false),
        };
        if silent {
            return Some(writable);
        }
        let mut at = up + latency;
        if let Some(h) = self.hosts.get_mut(&to) {
            let start = h.down_free.max(at);
            h.down_free = start + transfer_time(len, h.spec.download);
            at = h.down_free;
        }
        let s = self.streams.get_mut(&stream)?;
        let to_end = index(side.peer());
        at = at.max(s.last_arrival[to_end]);
        s.last_arrival[to_end] = at;
        self.stats.stream_bytes += len as u64;
        self.push(at, Delivery::Data(stream, side.peer(), data));
        Some(writable)
    }

    /// `side` closes its write direction: the other end reads end of stream
    /// after the bytes in flight.
    pub fn close(&mut self, now: Instant, stream: StreamId, side: Side) {
        let Some(s) = self.streams.get_mut(&stream).filter(|s| !s.dead) else {
            return;
        };
        if self
            .hosts
            .get(&s.ends[index(side)].ip())
            .is_some_and(|h| h.spec.black_hole)
        {
            return;
        }
        let to_end = index(side.peer());
        let at = (now + s.latency).max(s.last_arrival[to_end]);
        s.last_arrival[to_end] = at;
        self.push(at, Delivery::Fin(stream, side.peer()));
    }

    /// `side` resets the stream (a host that vanishes): the other end sees
    /// the reset after the bytes in flight; nothing more is carried.
    pub fn reset(&mut self, now: Instant, stream: StreamId, side: Side) {
        let Some(s) = self.streams.get_mut(&stream).filter(|s| !s.dead) else {
            return;
        };
        s.dead = true;
        let to_end = index(side.peer());
        let at = (now + s.latency).max(s.last_arrival[to_end]);
        self.push(at, Delivery::Reset(stream, side.peer()));
    }

    /// Forgets a stream both ends are done with.
    pub fn forget(&mut self, stream: StreamId) {
        self.streams.remove(&stream);
    }

    /// The two ends' addresses (client, server).
    pub fn ends(&self, stream: StreamId) -> Option<(SocketAddr, SocketAddr)> {
        self.streams.get(&stream).map(|s| (s.ends[0], s.ends[1]))
    }

    /// Open streams with an end at `ip`.
    pub fn streams_of(&self, ip: IpAddr) -> Vec<(StreamId, Side)> {
        self.streams
            .iter()
            .filter(|(_, s)| !s.dead)
            .filter_map(|(id, s)| {
                if s.ends[0].ip() == ip {
                    Some((*id, Side::Client))
                } else if s.ends[1].ip() == ip {
                    Some((*id, Side::Server))
                } else {
                    None
                }
            })
            .collect()
    }
}
