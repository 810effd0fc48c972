//! One torrent id, two machines: a [`MetadataFetch`] while a magnet link's
//! metadata is on its way, then the [`Torrent`]. The engine routes
//! connections, tracker results and DHT peers through [`Swarm`] so each
//! input is written once for both.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::handles::ConnId;
use crate::time::Instant;
use crate::torrent::fetch::MetadataFetch;
use crate::torrent::peers::PeerSource;
use crate::torrent::{Torrent, TorrentOutput};
use crate::tracker::{AnnounceResponse, TrackerError};

/// The machine behind a torrent id.
pub(super) enum Swarm<'a> {
    Torrent(&'a mut Torrent),
    Fetch(&'a mut MetadataFetch),
}

impl Swarm<'_> {
    pub(super) fn handle_connected(self, now: Instant, conn: ConnId) {
        match self {
            Swarm::Torrent(t) => t.handle_connected(now, conn),
            Swarm::Fetch(f) => f.handle_connected(now, conn),
        }
    }

    pub(super) fn handle_connect_failed(self, now: Instant, conn: ConnId) {
        match self {
            Swarm::Torrent(t) => t.handle_connect_failed(now, conn),
            Swarm::Fetch(f) => f.handle_connect_failed(now, conn),
        }
    }

    pub(super) fn handle_incoming(self, now: Instant, conn: ConnId, addr: SocketAddr) -> bool {
        match self {
            Swarm::Torrent(t) => t.handle_incoming(now, conn, addr),
            Swarm::Fetch(f) => f.handle_incoming(now, conn, addr),
        }
    }

    pub(super) fn handle_chunk(self, now: Instant, conn: ConnId, data: Bytes) {
        match self {
            Swarm::Torrent(t) => t.handle_chunk(now, conn, data),
            Swarm::Fetch(f) => f.handle_chunk(now, conn, data),
        }
    }

    pub(super) fn handle_closed(self, now: Instant, conn: ConnId) {
        match self {
            Swarm::Torrent(t) => t.handle_closed(now, conn),
            Swarm::Fetch(f) => f.handle_closed(now, conn),
        }
    }

    pub(super) fn handle_announce(
        self,
        now: Instant,
        url: &str,
        result: Result<AnnounceResponse, TrackerError>,
    ) {
        match self {
            Swarm::Torrent(t) => t.handle_announce(now, url, result),
            Swarm::Fetch(f) => f.handle_announce(now, url, result),
        }
    }

    /// Peers from the DHT: never for a private torrent (BEP 27). A magnet
    /// link cannot say whether it is private until its metadata is in.
    pub(super) fn add_dht_peers(self, now: Instant, peers: Vec<SocketAddr>) {
        match self {
            Swarm::Torrent(t) if !t.is_private() => t.add_peers(now, peers, PeerSource::Dht),
            Swarm::Torrent(_) => {}
            Swarm::Fetch(f) => f.add_peers(now, peers, PeerSource::Dht),
        }
    }

    pub(super) fn poll_output(self) -> Option<TorrentOutput> {
        match self {
            Swarm::Torrent(t) => t.poll_output(),
            Swarm::Fetch(f) => f.poll_output(),
        }
    }
}
