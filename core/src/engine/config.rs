//! What an engine is built from: its settings and its DHT node's.

use std::net::SocketAddr;
use std::time::Duration;

use super::HandshakeLimits;
use crate::dht::DhtConfig;
use crate::torrent::TorrentConfig;
use crate::wire::PeerId;

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
}

/// How the engine's DHT node starts and announces.
#[derive(Clone, Debug)]
pub struct DhtSettings {
    /// The node's settings (a saved id goes in `config.id`).
    pub config: DhtConfig,
    /// Nodes to join through, by address (a saved state's nodes).
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
        }
    }
}
