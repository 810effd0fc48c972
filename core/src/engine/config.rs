//! What an engine is built from: its settings and its DHT node's.

use std::net::SocketAddr;
use std::time::Duration;

use super::{EncryptionMode, HandshakeLimits};
use crate::dht::DhtConfig;
use crate::krpc::NodeId;
use crate::torrent::TorrentConfig;
use crate::wire::PeerId;
use crate::IpFamily;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peers on.
    pub listen_port: u16,
    /// Settings every torrent starts from.
    pub torrent: TorrentConfig,
    /// Limits on incoming connections still waiting for their handshake.
    pub handshakes: HandshakeLimits,
    /// The DHT node (`None`: no DHT).
    pub dht: Option<DhtSettings>,
    /// Budgets over all torrents and the active limits (queueing).
    pub limits: SessionLimits,
    /// Message stream encryption on peer connections.
    pub encryption: EncryptionMode,
    /// Which transports carry peer connections.
    pub transports: Transports,
    /// Local service discovery (BEP 14) on the multicast groups of these
    /// families (empty: off). The driver receives on the groups and hands
    /// those datagrams to [`Engine::handle_udp`](super::Engine::handle_udp)
    /// like any other.
    pub lsd: Vec<IpFamily>,
    /// The address families we accept peers on. Each announce goes to
    /// each tracker over each of them (BEP 7: one announce per address we
    /// listen on, so a dual-stack tracker hands out both our addresses and
    /// never one we do not listen on). Empty: one announce, over the
    /// family of the tracker's first address. A driver that learns them
    /// only once its sockets are bound sets them with
    /// [`Engine::set_listen_families`](super::Engine::set_listen_families).
    pub listen_families: Vec<IpFamily>,
}

/// Which transports carry peer connections: TCP, and uTP (BEP 29) on the
/// UDP socket the DHT and UDP trackers use. With both on (the default)
/// each is accepted incoming; an outgoing connection goes over uTP when
/// peer exchange said the peer speaks it (BEP 11 flag 0x04) and over TCP
/// otherwise, and one that cannot be opened is tried once over the other
/// (the `utp` engine module says why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transports {
    /// TCP connections, both ways.
    pub tcp: bool,
    /// uTP connections, both ways.
    pub utp: bool,
}

impl Default for Transports {
    fn default() -> Transports {
        Transports {
            tcp: true,
            utp: true,
        }
    }
}

/// Limits over all the engine's torrents. Budgets are split among the
/// torrents that want them, max-min fair (one that uses less than its
/// share leaves the rest to the others), each torrent's own limits on top;
/// the `policy` module explains how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Peer connections, incoming and outgoing (0: no limit).
    pub max_connections: usize,
    /// Connection attempts in progress (0: no limit).
    pub max_half_open: usize,
    /// Upload bytes/s (0: none).
    pub upload_rate: u64,
    /// Download bytes/s (0: none).
    pub download_rate: u64,
    /// Torrents downloading (or checking) at once; the others wait,
    /// [`Queued`](crate::torrent::TorrentState::Queued) (`None`: no limit).
    pub active_downloads: Option<usize>,
    /// Torrents seeding at once (`None`: no limit).
    pub active_seeds: Option<usize>,
    /// Block data held in memory by all downloads (each gets at least a
    /// floor: 4 MiB or one piece, whichever is larger).
    pub max_buffered_bytes: u64,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            max_connections: 500,
            max_half_open: 64,
            upload_rate: 0,
            download_rate: 0,
            active_downloads: None,
            active_seeds: None,
            max_buffered_bytes: 256 << 20,
        }
    }
}

/// When a seed has given enough: the engine pauses it once any goal is
/// reached ([`Event::SeedingGoalReached`](super::Event::SeedingGoalReached)).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SeedingGoal {
    /// Bytes uploaded over the bytes of the wanted files.
    pub ratio: Option<f64>,
    /// Time spent seeding.
    pub seeding_time: Option<Duration>,
    /// Time seeding without uploading a byte (qBittorrent's "inactive
    /// seeding time", Transmission's idle limit), counted from the last
    /// upload, or from when it started seeding in this run.
    pub inactive_time: Option<Duration>,
}

/// How the engine's DHT node starts and announces.
#[derive(Clone, Debug)]
pub struct DhtSettings {
    /// The nodes' settings (the IPv4 node's saved id goes in `config.id`).
    pub config: DhtConfig,
    /// Run an IPv6 node too (BEP 32), on the IPv6 UDP socket: the driver
    /// sets it when it has one.
    pub ipv6: bool,
    /// The IPv6 node's saved id (random when `None`).
    pub id6: Option<NodeId>,
    /// Nodes to join through, by address, of either family (a saved
    /// state's nodes); each node takes those of its own.
    pub nodes: Vec<SocketAddr>,
    /// Routers to join through, `host:port`, resolved by the driver.
    pub routers: Vec<String>,
    /// How often a downloading torrent looks for peers (and announces).
    pub search_interval: Duration,
    /// How often a seeding torrent announces.
    pub announce_interval: Duration,
}

impl Default for DhtSettings {
    fn default() -> DhtSettings {
        DhtSettings {
            config: DhtConfig::default(),
            ipv6: false,
            id6: None,
            nodes: Vec::new(),
            routers: Vec::new(),
            search_interval: Duration::from_secs(5 * 60),
            announce_interval: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            peer_id: PeerId(*b"-BT0001-000000000000"),
            listen_port: 6881,
            torrent: TorrentConfig::default(),
            handshakes: HandshakeLimits::default(),
            dht: None,
            limits: SessionLimits::default(),
            encryption: EncryptionMode::default(),
            transports: Transports::default(),
            lsd: Vec::new(),
            listen_families: Vec::new(),
        }
    }
}
