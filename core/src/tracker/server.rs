//! A tracker server's state, for both front ends (HTTP and UDP, which the
//! driver runs).
//!
//! Per torrent ("swarm"), the peers that announced recently. An announce
//! returns a random window of up to `numwant` other peers; `stopped`
//! removes the peer; peers that stop announcing expire after twice the
//! interval. Memory is bounded by a cap on torrents and on peers per torrent
//! (and an optional allow-list), so a flood of announces for random
//! info-hashes cannot exhaust it.
//!
//! UDP connection ids are not stored: each is a keyed hash of the client's
//! address and a two-minute time slot (as opentracker does), so a spoofed
//! source address cannot produce a valid one, and a connect costs the
//! server no memory.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use sha1::{Digest, Sha1};

use super::udp::{UdpRequest, UdpResponse};
use super::{AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeEntry};
use crate::metainfo::InfoHash;
use crate::rng::{Rng, Seed};
use crate::time::Instant;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The `interval` given to clients.
    pub interval: Duration,
    /// Peers returned when the client does not say.
    pub default_numwant: usize,
    /// Most peers returned.
    pub max_numwant: usize,
    /// Most torrents tracked.
    pub max_torrents: usize,
    /// Most peers per torrent.
    pub max_peers_per_torrent: usize,
    /// If set, only these torrents are tracked.
    pub allow_list: Option<BTreeSet<InfoHash>>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            interval: Duration::from_secs(1800),
            default_numwant: 50,
            max_numwant: 200,
            max_torrents: 100_000,
            max_peers_per_torrent: 200_000,
            allow_list: None,
        }
    }
}

/// Why an announce was refused; `Display` is the `failure reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not on the allow-list.
    NotAllowed,
    /// Too many torrents or peers already.
    Full,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::NotAllowed => "torrent not allowed on this tracker",
            Refusal::Full => "tracker is full",
        })
    }
}

#[derive(Clone, Debug)]
struct PeerEntry {
    addr: SocketAddr,
    seed: bool,
    expires: Instant,
}

#[derive(Clone, Debug, Default)]
struct Swarm {
    peers: Vec<PeerEntry>,
    index: BTreeMap<SocketAddr, usize>,
    seeders: u32,
    downloaded: u32,
    /// (expiry, peer) in announce order, which is expiry order.
    expiry: VecDeque<(Instant, SocketAddr)>,
}

impl Swarm {
    fn remove(&mut self, addr: &SocketAddr) {
        let Some(i) = self.index.remove(addr) else {
            return;
        };
        let gone = self.peers.swap_remove(i);
        if gone.seed {
            self.seeders -= 1;
        }
        if let Some(moved) = self.peers.get(i) {
            self.index.insert(moved.addr, i);
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, addr)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            let stale = self
                .index
                .get(&addr)
                .is_some_and(|&i| self.peers[i].expires <= now);
            if stale {
                self.remove(&addr);
            }
        }
    }
}

/// Length of a UDP connection-id time slot; ids from the current and the
/// previous slot are accepted (so an id lives 2 to 4 minutes, more than the
/// one minute BEP 15 promises).
const SLOT: Duration = Duration::from_secs(120);

/// See the module documentation.
#[derive(Debug)]
pub struct TrackerServer {
    config: ServerConfig,
    swarms: BTreeMap<InfoHash, Swarm>,
    secret: [u8; 32],
    rng: Rng,
    peers: usize,
}

impl TrackerServer {
    /// A server with `config`; `seed` keys the connection ids and the
    /// random peer windows.
    pub fn new(config: ServerConfig, seed: Seed) -> TrackerServer {
        let mut rng = Rng::new(seed);
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        TrackerServer {
            config,
            swarms: BTreeMap::new(),
            secret,
            rng,
            peers: 0,
        }
    }

    /// Torrents tracked.
    pub fn torrents(&self) -> usize {
        self.swarms.len()
    }

    /// Peers tracked, over all torrents.
    pub fn peer_count(&self) -> usize {
        self.peers
    }

    /// Records an announce from `peer` (the source IP with the announced
    /// port) and answers it.
    pub fn announce(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, Refusal> {
        if let Some(allow) = &self.config.allow_list {
            if !allow.contains(&req.info_hash) {
                return Err(Refusal::NotAllowed);
            }
        }
        if !self.swarms.contains_key(&req.info_hash) {
            if req.event == AnnounceEvent::Stopped {
                return Ok(self.empty_response());
            }
            if self.swarms.len() >= self.config.max_torrents {
                return Err(Refusal::Full);
            }
        }
        let interval = self.config.interval;
        let max_peers = self.config.max_peers_per_torrent;
        let swarm = self.swarms.entry(req.info_hash).or_default();
        let before = swarm.peers.len();
        swarm.expire(now);
        if req.event == AnnounceEvent::Stopped {
            swarm.remove(&peer);
        } else {
            let seed = req.left == 0;
            let expires = now + interval * 2;
            match swarm.index.get(&peer) {
                Some(&i) => {
                    let e = &mut swarm.peers[i];
                    if e.seed != seed {
                        if seed {
                            swarm.seeders += 1;
                        } else {
                            swarm.seeders -= 1;
                        }
                    }
                    e.seed = seed;
                    e.expires = expires;
                }
                None if swarm.peers.len() >= max_peers => {
                    let after = swarm.peers.len();
                    self.peers = self.peers + after - before;
                    return Err(Refusal::Full);
                }
                None => {
                    swarm.index.insert(peer, swarm.peers.len());
                    swarm.peers.push(PeerEntry {
                        addr: peer,
                        seed,
                        expires,
                    });
                    if seed {
                        swarm.seeders += 1;
                    }
                }
            }
            swarm.expiry.push_back((expires, peer));
            if req.event == AnnounceEvent::Completed {
                swarm.downloaded = swarm.downloaded.saturating_add(1);
            }
        }
        let after = swarm.peers.len();
        self.peers = self.peers + after - before;

        let want = req
            .numwant
            .map_or(self.config.default_numwant, |n| n as usize)
            .min(self.config.max_numwant);
        let n = swarm.peers.len();
        let mut peers = Vec::with_capacity(want.min(n));
        if n > 0 && want > 0 && req.event != AnnounceEvent::Stopped {
            // A window starting at a random place: cheap, and over many
            // announces every peer is handed out evenly.
            // Seeds only need leechers (as opentracker does).
            let seed_asking = req.left == 0;
            let start = self.rng.below(n as u64) as usize;
            for k in 0..n {
                if peers.len() == want {
                    break;
                }
                let e = &swarm.peers[(start + k) % n];
                if e.addr != peer && !(seed_asking && e.seed) {
                    peers.push(e.addr);
                }
            }
        }
        let seeders = swarm.seeders;
        let leechers = (n as u32).saturating_sub(seeders);
        if n == 0 {
            self.swarms.remove(&req.info_hash);
        }
        Ok(AnnounceResponse {
            interval: interval.as_secs() as u32,
            min_interval: Some((interval.as_secs() / 2) as u32),
            complete: Some(seeders),
            incomplete: Some(leechers),
            peers,
            ..AnnounceResponse::default()
        })
    }

    fn empty_response(&self) -> AnnounceResponse {
        AnnounceResponse {
            interval: self.config.interval.as_secs() as u32,
            complete: Some(0),
            incomplete: Some(0),
            ..AnnounceResponse::default()
        }
    }

    /// Counts for each torrent (zeros for unknown ones).
    pub fn scrape(&self, hashes: &[InfoHash]) -> Vec<ScrapeEntry> {
        hashes
            .iter()
            .map(|h| {
                let (complete, downloaded, incomplete) =
                    self.swarms.get(h).map_or((0, 0, 0), |s| {
                        (
                            s.seeders,
                            s.downloaded,
                            (s.peers.len() as u32).saturating_sub(s.seeders),
                        )
                    });
                ScrapeEntry {
                    info_hash: *h,
                    complete,
                    downloaded,
                    incomplete,
                }
            })
            .collect()
    }

    /// Drops expired peers of every torrent (call now and then; announces
    /// also expire their own torrent's peers).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut empty = Vec::new();
        for (h, s) in self.swarms.iter_mut() {
            let before = s.peers.len();
            s.expire(now);
            self.peers -= before - s.peers.len();
            if s.peers.is_empty() {
                empty.push(*h);
            }
        }
        for h in empty {
            self.swarms.remove(&h);
        }
    }

    /// The connection id for `from` in time slot `slot`.
    fn connection_id(&self, from: &SocketAddr, slot: u64) -> u64 {
        let mut h = Sha1::new();
        h.update(self.secret);
        h.update(slot.to_be_bytes());
        match from {
            SocketAddr::V4(a) => h.update(a.ip().octets()),
            SocketAddr::V6(a) => h.update(a.ip().octets()),
        }
        h.update(from.port().to_be_bytes());
        let d = h.finalize();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    fn slot(now: Instant) -> u64 {
        now.as_nanos() / SLOT.as_nanos() as u64
    }

    fn valid_connection(&self, now: Instant, from: &SocketAddr, id: u64) -> bool {
        let slot = TrackerServer::slot(now);
        id == self.connection_id(from, slot)
            || (slot > 0 && id == self.connection_id(from, slot - 1))
    }

    /// Handles one UDP datagram from `from`; returns the answer to send
    /// back, or `None` for a packet to drop (malformed, or without a valid
    /// connection id: possibly spoofed).
    pub fn handle_udp(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
        let request = UdpRequest::decode(packet).ok()?;
        let response = match request {
            UdpRequest::Connect { tx } => UdpResponse::Connect {
                tx,
                conn_id: self.connection_id(&from, TrackerServer::slot(now)),
            },
            UdpRequest::Announce {
                conn_id,
                tx,
                request,
                ..
            } => {
                if !self.valid_connection(now, &from, conn_id) {
                    return None;
                }
                let peer = SocketAddr::new(from.ip(), request.port);
                match self.announce(now, peer, &request) {
                    Ok(r) => UdpResponse::Announce {
                        tx,
                        interval: r.interval,
                        leechers: r.incomplete.unwrap_or(0),
                        seeders: r.complete.unwrap_or(0),
                        // BEP 15: answer with peers of the request's family.
                        peers: r
                            .peers
                            .into_iter()
                            .filter(|p| p.is_ipv6() == from.is_ipv6())
                            .collect(),
                    },
                    Err(refusal) => UdpResponse::Error {
                        tx,
                        message: refusal.to_string().into_bytes(),
                    },
                }
            }
            UdpRequest::Scrape {
                conn_id,
                tx,
                hashes,
            } => {
                if !self.valid_connection(now, &from, conn_id) {
                    return None;
                }
                UdpResponse::Scrape {
                    tx,
                    counts: self
                        .scrape(&hashes)
                        .into_iter()
                        .map(|e| (e.complete, e.downloaded, e.incomplete))
                        .collect(),
                }
            }
        };
        let mut out = Vec::new();
        response.encode(&mut out);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PeerId;

    fn req(hash: u8, event: AnnounceEvent, left: u64) -> AnnounceRequest {
        let mut r = AnnounceRequest::new(InfoHash([hash; 20]), PeerId([1; 20]), 6881);
        r.event = event;
        r.left = left;
        r
    }

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    #[test]
    fn peers_see_each_other_but_not_themselves() {
        let mut s = TrackerServer::new(ServerConfig::default(), Seed::from_u64(1));
        let t = Instant::ZERO;
        let r = s
            .announce(t, addr(1), &req(1, AnnounceEvent::Started, 10))
            .unwrap();
        assert!(r.peers.is_empty());
        let r = s
            .announce(t, addr(2), &req(1, AnnounceEvent::Started, 0))
            .unwrap();
        assert_eq!(r.peers, vec![addr(1)]);
        assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
        let r = s
            .announce(t, addr(1), &req(1, AnnounceEvent::None, 10))
            .unwrap();
        assert_eq!(r.peers, vec![addr(2)]);
        s.announce(t, addr(1), &req(1, AnnounceEvent::Completed, 0))
            .unwrap();
        assert_eq!(
            s.scrape(&[InfoHash([1; 20])])[0],
            ScrapeEntry {
                info_hash: InfoHash([1; 20]),
                complete: 2,
                downloaded: 1,
                incomplete: 0
            }
        );
        s.announce(t, addr(2), &req(1, AnnounceEvent::Stopped, 0))
            .unwrap();
        assert_eq!(s.peer_count(), 1);
    }

    #[test]
    fn numwant_windows_and_expiry() {
        let mut s = TrackerServer::new(ServerConfig::default(), Seed::from_u64(2));
        let t = Instant::ZERO;
        for p in 1..=100 {
            s.announce(t, addr(p), &req(2, AnnounceEvent::None, 1))
                .unwrap();
        }
        let mut r = req(2, AnnounceEvent::None, 1);
        r.numwant = Some(10);
        let got = s.announce(t, addr(50), &r).unwrap();
        assert_eq!(got.peers.len(), 10);
        assert!(!got.peers.contains(&addr(50)));
        // Everyone but peer 7 goes quiet; after 2× the interval they expire.
        let later = t + Duration::from_secs(1800 * 2 - 1);
        s.announce(later, addr(7), &req(2, AnnounceEvent::None, 1))
            .unwrap();
        s.handle_timeout(t + Duration::from_secs(1800 * 2));
        assert_eq!(s.peer_count(), 1);
        s.handle_timeout(later + Duration::from_secs(3600));
        assert_eq!(s.peer_count(), 0);
        assert_eq!(s.torrents(), 0);
    }

    #[test]
    fn memory_is_bounded_and_allow_list_enforced() {
        let config = ServerConfig {
            max_torrents: 10,
            max_peers_per_torrent: 5,
            ..ServerConfig::default()
        };
        let mut s = TrackerServer::new(config, Seed::from_u64(3));
        let t = Instant::ZERO;
        for h in 0..50u8 {
            let _ = s.announce(t, addr(1), &req(h, AnnounceEvent::Started, 1));
        }
        assert_eq!(s.torrents(), 10);
        for p in 0..50 {
            let _ = s.announce(t, addr(p), &req(0, AnnounceEvent::Started, 1));
        }
        assert_eq!(s.scrape(&[InfoHash([0; 20])])[0].incomplete, 5);
        let mut allow = BTreeSet::new();
        allow.insert(InfoHash([9; 20]));
        let mut s = TrackerServer::new(
            ServerConfig {
                allow_list: Some(allow),
                ..ServerConfig::default()
            },
            Seed::from_u64(4),
        );
        assert_eq!(
            s.announce(t, addr(1), &req(8, AnnounceEvent::Started, 1)),
            Err(Refusal::NotAllowed)
        );
        assert!(s
            .announce(t, addr(1), &req(9, AnnounceEvent::Started, 1))
            .is_ok());
    }

    #[test]
    fn udp_needs_a_valid_connection_id() {
        use crate::tracker::udp::{UdpJob, UdpTrackerClient, UdpTrackerEvent};
        let mut s = TrackerServer::new(ServerConfig::default(), Seed::from_u64(5));
        let me = addr(4000);
        let mut c = UdpTrackerClient::new(addr(6969), Seed::from_u64(6));
        let t = Instant::ZERO;
        c.announce(t, UdpJob(1), req(3, AnnounceEvent::Started, 5), b"");
        while let Some((_, p)) = c.poll_transmit() {
            if let Some(answer) = s.handle_udp(t, me, &p) {
                c.handle_datagram(t, &answer);
            }
        }
        assert!(matches!(
            c.poll_event(),
            Some(UdpTrackerEvent::Announced(UdpJob(1), _))
        ));
        assert_eq!(s.peer_count(), 1);
        // A spoofed announce with a made-up connection id is dropped.
        let mut forged = Vec::new();
        UdpRequest::Announce {
            conn_id: 12345,
            tx: 1,
            request: req(3, AnnounceEvent::Started, 5),
            url_data: Vec::new(),
        }
        .encode(&mut forged);
        assert_eq!(s.handle_udp(t, addr(4001), &forged), None);
        assert_eq!(s.peer_count(), 1);
        // An id from another address is no good either.
        let mut connect = Vec::new();
        UdpRequest::Connect { tx: 2 }.encode(&mut connect);
        let answer = s.handle_udp(t, addr(4002), &connect).unwrap();
        let UdpResponse::Connect { conn_id, .. } = UdpResponse::decode(&answer, false).unwrap()
        else {
            panic!()
        };
        let mut stolen = Vec::new();
        UdpRequest::Announce {
            conn_id,
            tx: 3,
            request: req(3, AnnounceEvent::Started, 5),
            url_data: Vec::new(),
        }
        .encode(&mut stolen);
        assert_eq!(s.handle_udp(t, addr(4003), &stolen), None);
        assert!(
            s.handle_udp(t + SLOT + SLOT / 2, addr(4002), &stolen)
                .is_some(),
            "previous slot ok"
        );
        assert_eq!(
            s.handle_udp(t + SLOT * 3, addr(4002), &stolen),
            None,
            "expired"
        );
    }
}
