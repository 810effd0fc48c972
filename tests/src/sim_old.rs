//! The simulator: whole torrents in a seeded virtual network.
//!
//! Like quinn-proto's test harness and str0m's netem, it is the driver loop
//! on virtual time. Everything random (latencies, which peers a tracker
//! returns, which blocks a hostile peer corrupts) comes from one master
//! seed, so a run is a pure function of it; the event log's hash names the
//! run.
//!
//! The model:
//! - **Clock**: starts at `Instant::ZERO`; jumps to the next event or timer.
//! - **Network**: each connection gets a one-way latency drawn from the
//!   node's range; each node has an upload bandwidth that all its
//!   connections share (a FIFO pipe), so bytes leave at that rate and arrive
//!   one latency later, in order per connection. Connections can be reset
//!   (a vanishing peer) or black-holed (a peer that goes silent).
//! - **Disk**: an in-memory byte vector per node; writes, reads, checks and
//!   hashing complete after a small delay.
//! - **Invariants** after every step: the torrent's own checks (no request
//!   for a piece we have, nothing unverified on disk, memory budget), and
//!   every byte written equals the original content.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bittide_core::metainfo::{PieceHasher, TorrentBuilder};
use bittide_core::torrent::peers::PeerSource;
use bittide_core::torrent::{
    StartMode, Torrent, TorrentConfig, TorrentEvent, TorrentInfo, TorrentOutput,
};
use bittide_core::tracker::server::{ServerConfig, TrackerServer};
use bittide_core::tracker::{AnnounceRequest, AnnounceResponse, TrackerError};
use bittide_core::wire::PeerId;
use bittide_core::{ConnId, ConnIds, Instant, Rng, Seed};
use sha1::{Digest, Sha1};

/// How a simulated node behaves beyond what its torrent does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Plays by the rules.
    Honest,
    /// Serves corrupted data for every block it uploads.
    Corrupt,
    /// At this time, resets all its connections and leaves.
    VanishAt(Duration),
    /// At this time, goes silent: its connections stay open but nothing it
    /// sends arrives any more.
    BlackholeAt(Duration),
}

/// A node's settings.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Starts with all the content (checked from its disk) or nothing.
    pub seeder: bool,
    /// Upload bandwidth, bytes per second.
    pub upload: u64,
    /// Range of one-way latency for its connections.
    pub latency: (Duration, Duration),
    /// Extra behaviour.
    pub behaviour: Behaviour,
    /// Torrent settings (peer id and conn range are filled in).
    pub config: TorrentConfig,
}

impl NodeSpec {
    /// An honest leecher with `upload` bytes/s.
    pub fn leecher(upload: u64) -> NodeSpec {
        NodeSpec {
            seeder: false,
            upload,
            latency: (Duration::from_millis(10), Duration::from_millis(60)),
            behaviour: Behaviour::Honest,
            config: TorrentConfig::default(),
        }
    }

    /// An honest seeder with `upload` bytes/s.
    pub fn seeder(upload: u64) -> NodeSpec {
        NodeSpec {
            seeder: true,
            ..NodeSpec::leecher(upload)
        }
    }
}

/// One simulated peer.
pub struct Node {
    /// Its torrent.
    pub torrent: Torrent,
    /// Its address.
    pub addr: SocketAddr,
    /// Its disk.
    pub disk: Vec<u8>,
    /// Its settings.
    pub spec: NodeSpec,
    /// When its upload pipe is next free.
    pipe_free: Instant,
    /// Whether it has left the network.
    pub gone: bool,
    /// Its torrent's next deadline, refreshed after every call into it.
    timeout: Option<Instant>,
    /// Whether it went silent.
    pub silent: bool,
    /// When it finished downloading.
    pub finished_at: Option<Instant>,
    /// Payload bytes it uploaded.
    pub uploaded: u64,
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver {
        node: usize,
        conn: ConnId,
        data: Vec<u8>,
    },
    Accept {
        node: usize,
        conn: ConnId,
        from: usize,
        from_conn: ConnId,
    },
    Connected {
        node: usize,
        conn: ConnId,
    },
    ConnectFailed {
        node: usize,
        conn: ConnId,
    },
    Closed {
        node: usize,
        conn: ConnId,
    },
    Verified {
        node: usize,
        piece: bittide_core::PieceIndex,
        ok: bool,
    },
    Read {
        node: usize,
        conn: ConnId,
        block: bittide_core::wire::BlockRef,
        data: Vec<u8>,
    },
    Checked {
        node: usize,
        piece: bittide_core::PieceIndex,
        ok: bool,
    },
    Written {
        node: usize,
        block: bittide_core::wire::BlockRef,
    },
    Behaviour {
        node: usize,
    },
    TrackerRequest {
        node: usize,
        url: String,
        request: AnnounceRequest,
    },
    TrackerReply {
        node: usize,
        url: String,
        result: Result<AnnounceResponse, TrackerError>,
    },
}

/// The simulated tracker's announce URL.
pub const TRACKER_URL: &str = "http://tracker.sim/announce";

#[derive(Clone, Copy, Debug)]
struct Link {
    node: usize,
    conn: ConnId,
    latency: Duration,
    /// Time the last bytes on this link arrive (keeps TCP order).
    last_arrival: Instant,
}

/// The simulation; see the module documentation.
pub struct Sim {
    /// Current virtual time.
    pub now: Instant,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The torrent's content.
    pub content: Vec<u8>,
    info: TorrentInfo,
    rng: Rng,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    links: BTreeMap<(usize, ConnId), Link>,
    /// One source of connection ids for every node, so ids are unique.
    conn_ids: ConnIds,
    log: Sha1,
    /// Number of events logged.
    pub log_len: u64,
    /// Steps taken.
    pub steps: u64,
    /// Every event, when `record` is on (for debugging a failing seed).
    pub record: Option<Vec<String>>,
    /// The swarm's tracker, when the torrent has one.
    pub tracker: Option<TrackerServer>,
}

const DISK_DELAY: Duration = Duration::from_micros(200);
/// Steps between full picker checks on every node.
const DEEP_CHECK_EVERY: u64 = 4096;

/// Deterministic content of `len` bytes for a seed.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(Seed::from_u64(seed ^ 0x5eed));
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// A torrent over `content` with pieces of `piece_length`, announcing to
/// [`TRACKER_URL`] if `tracker`.
pub fn torrent_info(content: &[u8], piece_length: u32, tracker: bool) -> TorrentInfo {
    torrent_info_with(content, piece_length, tracker, false)
}

/// As [`torrent_info`], optionally private (BEP 27).
pub fn torrent_info_with(
    content: &[u8],
    piece_length: u32,
    tracker: bool,
    private: bool,
) -> TorrentInfo {
    let mut b = TorrentBuilder::single_file("sim.bin", content.len() as u64);
    b.set_piece_length(piece_length);
    b.set_private(private);
    if tracker {
        b.add_tracker_tier(vec![TRACKER_URL.to_owned()]);
    }
    let mut h = PieceHasher::new(piece_length);
    h.update(content);
    let bytes = b.build(&h.finish()).expect("valid torrent");
    let m = bittide_core::metainfo::Metainfo::from_bytes(&bytes).expect("parses");
    TorrentInfo::from_metainfo(&m)
}

impl Sim {
    /// A network of `specs` sharing one torrent over `content`; peers
    /// learn of each other only through [`Sim::add_peers`].
    pub fn new(seed: u64, content: Vec<u8>, piece_length: u32, specs: Vec<NodeSpec>) -> Sim {
        Sim::build(seed, content, piece_length, specs, false, false)
    }

    /// As [`Sim::new`], for a private torrent (BEP 27).
    pub fn new_private(
        seed: u64,
        content: Vec<u8>,
        piece_length: u32,
        specs: Vec<NodeSpec>,
    ) -> Sim {
        Sim::build(seed, content, piece_length, specs, false, true)
    }

    /// As [`Sim::new`], with a tracker in the torrent that every node
    /// announces to (the sim runs a `TrackerServer` for it).
    pub fn with_tracker(
        seed: u64,
        content: Vec<u8>,
        piece_length: u32,
        specs: Vec<NodeSpec>,
    ) -> Sim {
        Sim::build(seed, content, piece_length, specs, true, false)
    }

    fn build(
        seed: u64,
        content: Vec<u8>,
        piece_length: u32,
        specs: Vec<NodeSpec>,
        tracker: bool,
        private: bool,
    ) -> Sim {
        let info = torrent_info_with(&content, piece_length, tracker, private);
        let mut rng = Rng::new(Seed::from_u64(seed));
        let conn_ids = ConnIds::new();
        let mut nodes = Vec::new();
        for (i, mut spec) in specs.into_iter().enumerate() {
            let mut id = [0u8; 20];
            id[..8].copy_from_slice(b"-SIM001-");
            id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
            spec.config.peer_id = PeerId(id);
            spec.config.conn_ids = conn_ids.clone();
            spec.config.listen_port = 10_000 + i as u16;
            let start = if spec.seeder {
                StartMode::Check
            } else {
                StartMode::Fresh
            };
            let disk = if spec.seeder {
                content.clone()
            } else {
                vec![0; content.len()]
            };
            let torrent = Torrent::new(
                Instant::ZERO,
                info.clone(),
                spec.config.clone(),
                start,
                rng.child_seed(),
            );
            nodes.push(Node {
                torrent,
                addr: SocketAddr::from((
                    [127, 0, (i / 250) as u8, (i % 250) as u8 + 1],
                    10_000 + i as u16,
                )),
                disk,
                spec,
                pipe_free: Instant::ZERO,
                gone: false,
                timeout: None,
                silent: false,
                finished_at: None,
                uploaded: 0,
            });
        }
        let mut sim = Sim {
            now: Instant::ZERO,
            nodes,
            content,
            info,
            rng,
            queue: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            conn_ids,
            log: Sha1::new(),
            log_len: 0,
            steps: 0,
            record: None,
            tracker: None,
        };
        if tracker {
            sim.tracker = Some(TrackerServer::new(
                ServerConfig::default(),
                sim.rng.child_seed(),
            ));
        }
        for i in 0..sim.nodes.len() {
            match sim.nodes[i].spec.behaviour {
                Behaviour::VanishAt(t) | Behaviour::BlackholeAt(t) => {
                    sim.schedule(Instant::ZERO + t, Ev::Behaviour { node: i });
                }
                _ => {}
            }
            sim.drain(i);
        }
        sim
    }

    /// The torrent's description.
    pub fn info(&self) -> &TorrentInfo {
        &self.info
    }

    /// Tells node `i` about peers, as a tracker would.
    pub fn add_peers(&mut self, i: usize, peers: &[usize]) {
        let addrs: Vec<SocketAddr> = peers.iter().map(|&p| self.nodes[p].addr).collect();
        self.nodes[i]
            .torrent
            .add_peers(self.now, addrs, PeerSource::Tracker);
        self.drain(i);
    }

    /// Tells every node about a random subset of up to `n` others.
    pub fn announce_all(&mut self, n: usize) {
        for i in 0..self.nodes.len() {
            let mut others: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i).collect();
            self.rng.shuffle(&mut others);
            others.truncate(n);
            self.add_peers(i, &others);
        }
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn log(&mut self, node: usize, what: &str) {
        let line = format!("{} n{node} {what}", self.now.as_nanos());
        self.log.update(line.as_bytes());
        self.log.update(b"\n");
        self.log_len += 1;
        if let Some(r) = &mut self.record {
            r.push(line);
        }
    }

    /// The hash of the event log so far: equal runs have equal hashes.
    pub fn log_hash(&self) -> String {
        let digest: [u8; 20] = self.log.clone().finalize().into();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn node_of(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    fn latency(&mut self, node: usize) -> Duration {
        let (lo, hi) = self.nodes[node].spec.latency;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(self.rng.below(span + 1))
    }

    /// Carries out everything node `i`'s torrent asked for.
    fn drain(&mut self, i: usize) {
        while let Some(o) = self.nodes[i].torrent.poll_output() {
            self.output(i, o);
        }
        if let Err(e) = self.nodes[i].torrent.check_invariants() {
            panic!("invariant broken at node {i}, t={}: {e}", self.now);
        }
        self.nodes[i].timeout = self.nodes[i].torrent.poll_timeout();
    }

    /// The picker's full bookkeeping check on every node (O(pieces) each),
    /// run every `DEEP_CHECK_EVERY` steps and at the end of a drive.
    pub fn deep_check(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            if let Err(e) = n.torrent.check_picker() {
                panic!("picker invariant broken at node {i}, t={}: {e}", self.now);
            }
        }
    }

    fn output(&mut self, i: usize, o: TorrentOutput) {
        let now = self.now;
        match o {
            TorrentOutput::Connect { conn, addr } => {
                let target = self.node_of(addr).filter(|&j| !self.nodes[j].gone);
                let lat = self.latency(i);
                match target {
                    Some(j) => {
                        let remote = self.conn_ids.next_id();
                        self.schedule(
                            now + lat,
                            Ev::Accept {
                                node: j,
                                conn: remote,
                                from: i,
                                from_conn: conn,
                            },
                        );
                    }
                    None => self.schedule(now + lat * 2, Ev::ConnectFailed { node: i, conn }),
                }
            }
            TorrentOutput::Send { conn, data } => {
                let Some(link) = self.links.get(&(i, conn)).copied() else {
                    return;
                };
                if self.nodes[i].silent {
                    return;
                }
                let bw = self.nodes[i].spec.upload.max(1);
                let start = self.nodes[i].pipe_free.max(now);
                let tx =
                    Duration::from_nanos((data.len() as u64).saturating_mul(1_000_000_000) / bw);
                self.nodes[i].pipe_free = start + tx;
                let arrive = (start + tx + link.latency).max(link.last_arrival);
                if let Some(l) = self.links.get_mut(&(i, conn)) {
                    l.last_arrival = arrive;
                }
                self.schedule(
                    arrive,
                    Ev::Deliver {
                        node: link.node,
                        conn: link.conn,
                        data,
                    },
                );
            }
            TorrentOutput::Close { conn } => {
                if let Some(link) = self.links.remove(&(i, conn)) {
                    self.links.remove(&(link.node, link.conn));
                    let at = (now + link.latency).max(link.last_arrival);
                    self.schedule(
                        at,
                        Ev::Closed {
                            node: link.node,
                            conn: link.conn,
                        },
                    );
                }
            }
            TorrentOutput::Verify {
                piece,
                blocks,
                hash,
                slices,
            } => {
                let mut h = Sha1::new();
                for b in &blocks {
                    h.update(b);
                }
                let ok = <[u8; 20]>::from(h.finalize()) == hash;
                // Hashing and writing are one job: only verified data is
                // written, and it must be the content.
                if ok {
                    let data: Vec<u8> = blocks.concat();
                    let mut at = 0usize;
                    for s in slices {
                        let (off, len) = (s.offset as usize, s.length as usize);
                        assert_eq!(
                            &data[at..at + len],
                            &self.content[off..off + len],
                            "node {i} wrote wrong data for {piece}"
                        );
                        self.nodes[i].disk[off..off + len].copy_from_slice(&data[at..at + len]);
                        at += len;
                    }
                }
                self.schedule(now + DISK_DELAY, Ev::Verified { node: i, piece, ok });
            }
            TorrentOutput::Read {
                conn,
                block,
                slices,
            } => {
                let mut data = Vec::new();
                for s in slices {
                    data.extend_from_slice(
                        &self.nodes[i].disk[s.offset as usize..(s.offset + s.length) as usize],
                    );
                }
                if self.nodes[i].spec.behaviour == Behaviour::Corrupt {
                    for b in data.iter_mut().step_by(97) {
                        *b ^= 0x5a;
                    }
                }
                self.schedule(
                    now + DISK_DELAY,
                    Ev::Read {
                        node: i,
                        conn,
                        block,
                        data,
                    },
                );
            }
            TorrentOutput::Write {
                block,
                data,
                slices,
            } => {
                // A write-through block: not verified yet, so it may be
                // wrong; what is checked is that a piece that passes
                // verification holds the content (below).
                let mut at = 0usize;
                for s in slices {
                    let (off, len) = (s.offset as usize, s.length as usize);
                    self.nodes[i].disk[off..off + len].copy_from_slice(&data[at..at + len]);
                    at += len;
                }
                self.schedule(now + DISK_DELAY, Ev::Written { node: i, block });
            }
            TorrentOutput::Check {
                piece,
                slices,
                hash,
            } => {
                let mut h = Sha1::new();
                for s in &slices {
                    h.update(
                        &self.nodes[i].disk[s.offset as usize..(s.offset + s.length) as usize],
                    );
                }
                let got: [u8; 20] = h.finalize().into();
                if got == hash {
                    for s in &slices {
                        let (off, len) = (s.offset as usize, s.length as usize);
                        assert_eq!(
                            &self.nodes[i].disk[off..off + len],
                            &self.content[off..off + len],
                            "node {i} verified wrong data for {piece}"
                        );
                    }
                }
                self.schedule(
                    now + DISK_DELAY,
                    Ev::Checked {
                        node: i,
                        piece,
                        ok: got == hash,
                    },
                );
            }
            TorrentOutput::Announce { url, request } => {
                let lat = self.latency(i);
                self.schedule(
                    now + lat,
                    Ev::TrackerRequest {
                        node: i,
                        url,
                        request,
                    },
                );
            }
            TorrentOutput::Event(e) => {
                self.log(i, &format!("{e:?}"));
                if e == TorrentEvent::Finished && self.nodes[i].finished_at.is_none() {
                    self.nodes[i].finished_at = Some(now);
                }
            }
        }
    }

    /// The next instant anything happens.
    fn next_time(&self) -> Option<Instant> {
        let ev = self.queue.keys().next().map(|(t, _)| *t);
        let timer = self
            .nodes
            .iter()
            .filter(|n| !n.gone)
            .filter_map(|n| n.timeout)
            .min();
        match (ev, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances to the next event or timer and handles it. Returns false
    /// when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_time() else {
            return false;
        };
        self.now = self.now.max(t);
        self.steps += 1;
        if self.steps % DEEP_CHECK_EVERY == 0 {
            self.deep_check();
        }
        if let Some((&key, _)) = self.queue.iter().next() {
            if key.0 <= self.now {
                let ev = self.queue.remove(&key).expect("key just seen");
                self.handle(ev);
                return true;
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].gone {
                continue;
            }
            if self.nodes[i].timeout.is_some_and(|d| d <= self.now) {
                let now = self.now;
                self.nodes[i].torrent.handle_timeout(now);
                self.drain(i);
            }
        }
        true
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Accept {
                node,
                conn,
                from,
                from_conn,
            } => {
                if self.nodes[node].gone {
                    self.schedule(
                        now,
                        Ev::ConnectFailed {
                            node: from,
                            conn: from_conn,
                        },
                    );
                    return;
                }
                let from_addr = self.nodes[from].addr;
                if self.nodes[node]
                    .torrent
                    .handle_incoming(now, conn, from_addr)
                {
                    let lat = self.latency(from);
                    self.links.insert(
                        (node, conn),
                        Link {
                            node: from,
                            conn: from_conn,
                            latency: lat,
                            last_arrival: now,
                        },
                    );
                    self.links.insert(
                        (from, from_conn),
                        Link {
                            node,
                            conn,
                            latency: lat,
                            last_arrival: now,
                        },
                    );
                    self.schedule(
                        now + lat,
                        Ev::Connected {
                            node: from,
                            conn: from_conn,
                        },
                    );
                } else {
                    let lat = self.latency(from);
                    self.schedule(
                        now + lat,
                        Ev::ConnectFailed {
                            node: from,
                            conn: from_conn,
                        },
                    );
                }
                self.drain(node);
            }
            Ev::Connected { node, conn } => {
                if self.links.contains_key(&(node, conn)) {
                    self.nodes[node].torrent.handle_connected(now, conn);
                } else {
                    self.nodes[node].torrent.handle_connect_failed(now, conn);
                }
                self.drain(node);
            }
            Ev::ConnectFailed { node, conn } => {
                self.nodes[node].torrent.handle_connect_failed(now, conn);
                self.drain(node);
            }
            Ev::Deliver { node, conn, data } => {
                if self.links.contains_key(&(node, conn)) && !self.nodes[node].gone {
                    self.nodes[node].torrent.handle_bytes(now, conn, &data);
                    self.drain(node);
                }
            }
            Ev::Closed { node, conn } => {
                if !self.nodes[node].gone {
                    self.nodes[node].torrent.handle_closed(now, conn);
                    self.drain(node);
                }
            }
            Ev::Verified { node, piece, ok } => {
                self.nodes[node].torrent.handle_verified(now, piece, ok, ok);
                self.drain(node);
            }
            Ev::Read {
                node,
                conn,
                block,
                data,
            } => {
                self.nodes[node].uploaded += data.len() as u64;
                self.nodes[node]
                    .torrent
                    .handle_read(now, conn, block, Some(&data));
                self.drain(node);
            }
            Ev::Checked { node, piece, ok } => {
                self.nodes[node].torrent.handle_checked(now, piece, ok);
                self.drain(node);
            }
            Ev::Written { node, block } => {
                self.nodes[node].torrent.handle_written(now, block, true);
                self.drain(node);
            }
            Ev::TrackerRequest { node, url, request } => {
                let peer = SocketAddr::new(self.nodes[node].addr.ip(), request.port);
                let result = match (&mut self.tracker, url == TRACKER_URL) {
                    (Some(t), true) => t
                        .announce(now, peer, &request)
                        .map_err(|r| TrackerError::Refused(r.to_string())),
                    _ => Err(TrackerError::TimedOut),
                };
                self.log(
                    node,
                    &format!("announce {:?} -> {}", request.event, result.is_ok()),
                );
                let lat = self.latency(node);
                self.schedule(now + lat, Ev::TrackerReply { node, url, result });
            }
            Ev::TrackerReply { node, url, result } => {
                if !self.nodes[node].gone {
                    self.nodes[node].torrent.handle_announce(now, &url, result);
                    self.drain(node);
                }
            }
            Ev::Behaviour { node } => match self.nodes[node].spec.behaviour {
                Behaviour::VanishAt(_) => {
                    self.log(node, "vanishes");
                    self.nodes[node].gone = true;
                    let conns: Vec<(usize, ConnId)> = self
                        .links
                        .keys()
                        .filter(|(n, _)| *n == node)
                        .copied()
                        .collect();
                    for key in conns {
                        if let Some(link) = self.links.remove(&key) {
                            self.links.remove(&(link.node, link.conn));
                            self.schedule(
                                now + link.latency,
                                Ev::Closed {
                                    node: link.node,
                                    conn: link.conn,
                                },
                            );
                        }
                    }
                }
                Behaviour::BlackholeAt(_) => {
                    self.log(node, "goes silent");
                    self.nodes[node].silent = true;
                }
                _ => {}
            },
        }
    }

    /// Steps until `done(self)` holds, failing loudly after `max_steps`
    /// steps or `max_time` of virtual time (a livelock or a stuck swarm).
    pub fn drive_bounded(
        &mut self,
        max_steps: u64,
        max_time: Duration,
        done: impl Fn(&Sim) -> bool,
    ) {
        let deadline = Instant::ZERO + max_time;
        while !done(self) {
            assert!(
                self.steps < max_steps,
                "no progress after {} steps (t={})",
                self.steps,
                self.now
            );
            assert!(
                self.now <= deadline,
                "not done by t={} ({} steps)",
                self.now,
                self.steps
            );
            if !self.step() {
                panic!("nothing left to happen at t={} and not done", self.now);
            }
        }
        self.deep_check();
    }

    /// Stops node `i`'s torrent (it sends `stopped` to its trackers).
    pub fn stop(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].torrent.stop(now);
        self.drain(i);
    }

    /// Steps until nothing is left to happen or `max_steps` more steps.
    pub fn settle(&mut self, max_steps: u64) {
        for _ in 0..max_steps {
            if !self.step() {
                return;
            }
        }
    }

    /// Whether every honest node has all the data.
    pub fn all_leechers_done(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.spec.behaviour == Behaviour::Honest)
            .all(|n| n.torrent.is_finished())
    }
}

/// The seeds a scenario runs: `SIM_SEED=n` for one, else a fixed list.
pub fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(s) => vec![s],
        None => default.to_vec(),
    }
}

/// Runs `scenario` for every seed, printing the seed of a failure.
pub fn for_each_seed(default: &[u64], scenario: impl Fn(u64)) {
    for seed in seeds(default) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(seed)));
        if let Err(e) = result {
            eprintln!("scenario failed with SIM_SEED={seed}");
            std::panic::resume_unwind(e);
        }
    }
}
