//! Connections: which torrent each one belongs to, and incoming ones
//! until their handshake names a torrent (BEP 3: the info-hash comes
//! within the first 48 bytes).

use std::net::SocketAddr;

use bytes::Bytes;

use super::handshakes::Admission;
use super::Engine;
use crate::handles::{ConnId, TorrentId};
use crate::metainfo::InfoHash;
use crate::time::Instant;
use crate::wire::PROTOCOL;

/// Bytes of the handshake up to and including the info-hash.
const HANDSHAKE_PREFIX: usize = 1 + PROTOCOL.len() + 8 + 20;

impl Engine {
    pub(super) fn torrent_of(&self, conn: ConnId) -> Option<TorrentId> {
        self.conns.get(&conn).copied()
    }

    /// An outgoing connection opened.
    pub fn handle_tcp_connected(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if self.tcp_event_is_stale(conn) {
            return;
        }
        if !self.conns.contains_key(&conn) {
            // Given up on while it was opening (a torrent closed it, an
            // MSE deadline passed): the socket must not stay open.
            self.stream_close(conn);
            return;
        }
        self.stream_connected(now, conn);
    }

    /// An outgoing connection (of either transport) opened.
    pub(super) fn stream_connected(&mut self, now: Instant, conn: ConnId) {
        if self.transport_opened(conn) && self.mse_connected(now, conn) {
            self.torrent_connected(now, conn);
        }
    }

    /// Tells the torrent its outgoing connection is open (after the MSE
    /// handshake, if there is one), and over which transport.
    pub(super) fn torrent_connected(&mut self, now: Instant, conn: ConnId) {
        let utp = self.transport_of(conn) == Some(super::Transport::Utp);
        if let Some(t) = self
            .torrent_of(conn)
            .and_then(|id| self.torrents.get_mut(&id))
        {
            t.handle_connected(now, conn);
            t.set_utp(conn, utp);
        }
    }

    /// An outgoing connection failed (uTP may still be tried: the
    /// `transport` module).
    pub fn handle_tcp_failed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if self.tcp_event_is_stale(conn) {
            return;
        }
        self.dial_failed(now, conn);
    }

    /// An outgoing connection could not be opened over any transport.
    pub(super) fn stream_failed(&mut self, now: Instant, conn: ConnId) {
        self.encryption.forget(conn);
        if let Some(id) = self.conns.remove(&conn) {
            if let Some(t) = self.torrents.get_mut(&id) {
                t.handle_connect_failed(now, conn);
            }
        }
    }

    /// A peer connected to our listen port. Returns the id to use for it,
    /// or `None` to close it at once (TCP is off, or its IP already has as
    /// many handshakes waiting as it may). To make room, an older
    /// connection still waiting may be closed (the `handshakes` module
    /// explains the rules).
    pub fn handle_tcp_incoming(&mut self, now: Instant, addr: SocketAddr) -> Option<ConnId> {
        self.now = now;
        if !self.config.transports.tcp {
            return None;
        }
        self.admit_incoming(now, addr)
    }

    /// Admission for an incoming connection of either transport.
    pub(super) fn admit_incoming(&mut self, now: Instant, addr: SocketAddr) -> Option<ConnId> {
        if self.shutdown.is_some() || self.incoming_over_budget() {
            return None;
        }
        let conn = self.conn_ids.next_id();
        match self.handshakes.admit(now, conn, addr) {
            Admission::Refused => return None,
            Admission::Evicted(old) => self.close(old),
            Admission::Admitted => {}
        }
        Some(conn)
    }

    /// Whether one more incoming connection would break
    /// [`SessionLimits::max_connections`](super::SessionLimits): the
    /// torrents' shares leave room for the handshakes in the reserve
    /// ([`incoming_reserve`](Engine::incoming_reserve), the most that may
    /// wait), and one that replaces an older one adds nothing.
    fn incoming_over_budget(&self) -> bool {
        let max = self.config.limits.max_connections;
        max > 0 && self.connection_count() >= max && !self.handshakes.is_full()
    }

    pub(super) fn close(&mut self, conn: ConnId) {
        self.encryption.forget(conn);
        self.stream_close(conn);
    }

    /// Bytes arrived on a connection (copied; see
    /// [`handle_tcp_chunk`](Engine::handle_tcp_chunk)).
    pub fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.handle_tcp_chunk(now, conn, Bytes::copy_from_slice(data));
    }

    /// A chunk arrived on a connection; blocks are decoded in place.
    ///
    /// An encrypted connection's bytes go through its MSE layer first
    /// (`encryption`), so what follows sees plaintext.
    pub fn handle_tcp_chunk(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        self.handle_tcp_chunks(now, conn, vec![data]);
    }

    /// The chunks one read of a connection handed over, in stream order
    /// (whole frames, from a reader that follows them). Its torrent
    /// answers once, after the last: the requests that replace the blocks
    /// received go out in one send, not one per block.
    pub fn handle_tcp_chunks(&mut self, now: Instant, conn: ConnId, chunks: Vec<Bytes>) {
        self.now = now;
        let mut plain = Vec::with_capacity(chunks.len());
        for data in chunks {
            if self.tcp_event_is_stale(conn) {
                return;
            }
            plain.extend(self.unwrap_data(now, conn, data));
        }
        if !plain.is_empty() {
            self.deliver_to_torrent(now, conn, plain);
        }
    }

    /// Bytes that arrived on a connection of either transport.
    pub(super) fn stream_data(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        if let Some(data) = self.unwrap_data(now, conn, data) {
            self.deliver_to_torrent(now, conn, std::iter::once(data));
        }
    }

    /// Hands a connection's plaintext chunks to its torrent, answered
    /// once.
    fn deliver_to_torrent(
        &mut self,
        now: Instant,
        conn: ConnId,
        chunks: impl IntoIterator<Item = Bytes>,
    ) {
        if let Some(t) = self
            .conns
            .get(&conn)
            .and_then(|id| self.torrents.get_mut(id))
        {
            t.handle_chunks(now, conn, chunks);
        }
    }

    /// Takes a connection's bytes through its MSE layer and, while it has
    /// no torrent yet, its handshake; what is left is for its torrent.
    fn unwrap_data(&mut self, now: Instant, conn: ConnId, data: Bytes) -> Option<Bytes> {
        self.transport_proven(conn);
        let data = self.mse_receive(now, conn, data)?;
        if self.handshakes.contains(conn) {
            self.route_handshake(now, conn, &data);
            return None;
        }
        Some(data)
    }

    /// Bytes of an incoming connection not yet routed: once the
    /// handshake names an info-hash, the connection goes to that torrent
    /// with everything it sent so far.
    fn route_handshake(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let buf = self.handshakes.push(conn, data);
        if crate::wire::Handshake::check_prefix(buf).is_err() {
            self.handshakes.remove(conn);
            self.close(conn);
            return;
        }
        if buf.len() < HANDSHAKE_PREFIX {
            return;
        }
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&buf[HANDSHAKE_PREFIX - 20..HANDSHAKE_PREFIX]);
        let Some((addr, bytes)) = self.handshakes.remove(conn) else {
            return;
        };
        let routed = self.by_hash.get(&InfoHash(hash)).copied().and_then(|id| {
            let t = self.torrents.get_mut(&id)?;
            t.handle_incoming(now, conn, addr).then_some(id)
        });
        match routed {
            Some(id) => {
                self.conns.insert(conn, id);
                let utp = self.transport_of(conn) == Some(super::Transport::Utp);
                if let Some(t) = self.torrents.get_mut(&id) {
                    t.set_utp(conn, utp);
                    t.handle_chunk(now, conn, Bytes::from(bytes));
                }
            }
            None => self.close(conn),
        }
    }

    /// The driver wrote `bytes` of what the engine sent on a connection
    /// (its socket took them). Uploads read ahead only so far beyond what
    /// a connection has written, so a peer that stops reading does not
    /// make the engine read the data it asked for into memory.
    pub fn handle_tcp_sent(&mut self, now: Instant, conn: ConnId, bytes: usize) {
        self.now = now;
        if self.tcp_event_is_stale(conn) {
            return;
        }
        self.stream_sent(now, conn, bytes);
    }

    /// A transport took `bytes` of a connection's output.
    pub(super) fn stream_sent(&mut self, now: Instant, conn: ConnId, bytes: usize) {
        if let Some(&id) = self.conns.get(&conn) {
            if let Some(t) = self.torrents.get_mut(&id) {
                t.handle_sent(now, conn, bytes);
            }
        }
    }

    /// A connection closed.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        self.now = now;
        if self.tcp_event_is_stale(conn) {
            return;
        }
        self.stream_closed(now, conn);
    }

    /// A connection of either transport closed (an outgoing one may be
    /// opened again over the other: the `transport` module).
    pub(super) fn stream_closed(&mut self, now: Instant, conn: ConnId) {
        if !self.redial(now, conn) {
            self.closed_above(now, conn);
        }
    }

    /// A connection closed, for the layers above the transports.
    pub(super) fn closed_above(&mut self, now: Instant, conn: ConnId) {
        self.handshakes.remove(conn);
        if self.mse_closed(now, conn) {
            return;
        }
        if let Some(id) = self.conns.remove(&conn) {
            if let Some(t) = self.torrents.get_mut(&id) {
                t.handle_closed(now, conn);
            }
        }
    }
}
