//! Message stream encryption on peer connections ([`crate::mse`]), as a
//! layer between the sockets and the torrents: the torrents' peer
//! sessions see the same plaintext byte stream either way.
//!
//! - **Outgoing**: with encryption on, a connection starts with the MSE
//!   handshake for its torrent's info-hash; the torrent hears that it is
//!   connected only once the handshake is done, and everything after goes
//!   through the chosen cipher. In [`EncryptionMode::Enabled`] a peer that
//!   hangs up on (or garbles) our handshake is remembered, and the
//!   torrent's next attempt at that address is plaintext — "encrypted
//!   first", as libtorrent does with `out_enc_policy=enabled`, because
//!   peers that insist on encryption drop a plaintext handshake while
//!   nearly every client accepts an encrypted one.
//! - **Incoming**: the first byte tells the two apart: a BitTorrent
//!   handshake starts with 19 and "BitTorrent protocol"; anything else is
//!   taken as an MSE public key. The responder finds the torrent by
//!   `HASH('req2', SKEY)` among ours; the decrypted stream then goes
//!   through the usual routing by the BitTorrent handshake's info-hash,
//!   under the same deadlines and per-IP limits as a plaintext one.
//!
//! Every handshake in progress has a deadline, so a peer that accepts and
//! says nothing cannot hold a connection slot.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;

use super::Engine;
use crate::handles::ConnId;
use crate::mse::{keys, CryptoMethods, Initiator, PayloadCipher, Responder, Status};
use crate::time::Instant;

/// Whether peer connections are encrypted (MSE/PE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncryptionMode {
    /// Plaintext only: no MSE handshake out, MSE connections in refused.
    Disabled,
    /// Both in; out with the MSE handshake first, plaintext for a peer
    /// that refused it; the stream after the handshake is RC4 only when
    /// the other side allows nothing else.
    #[default]
    Enabled,
    /// MSE with RC4 only, both ways; plaintext peers are refused.
    Required,
}

impl EncryptionMode {
    /// The methods offered and accepted.
    fn methods(self) -> CryptoMethods {
        match self {
            EncryptionMode::Required => CryptoMethods::RC4,
            _ => CryptoMethods::BOTH,
        }
    }
}

impl fmt::Display for EncryptionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncryptionMode::Disabled => "disabled",
            EncryptionMode::Enabled => "enabled",
            EncryptionMode::Required => "required",
        })
    }
}

/// A name that is not an [`EncryptionMode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEncryptionMode;

impl fmt::Display for UnknownEncryptionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("encryption must be disabled, enabled or required")
    }
}

impl std::error::Error for UnknownEncryptionMode {}

impl FromStr for EncryptionMode {
    type Err = UnknownEncryptionMode;

    fn from_str(s: &str) -> Result<EncryptionMode, UnknownEncryptionMode> {
        match s {
            "disabled" => Ok(EncryptionMode::Disabled),
            "enabled" => Ok(EncryptionMode::Enabled),
            "required" => Ok(EncryptionMode::Required),
            _ => Err(UnknownEncryptionMode),
        }
    }
}

/// Time from the TCP connect to the end of an outgoing MSE handshake
/// (1.5 round trips and two 768-bit exponentiations).
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Addresses remembered as refusing MSE (oldest forgotten first).
const MAX_PLAINTEXT_PEERS: usize = 4096;

/// What stands between a connection's socket and its torrent.
#[derive(Debug)]
enum Layer {
    /// Outgoing: the handshake, from the connect request on.
    Connecting {
        addr: SocketAddr,
        machine: Box<Initiator>,
        /// When TCP connected (the handshake's deadline runs from it).
        since: Option<Instant>,
    },
    /// Incoming, after a first byte that is not 19.
    Accepting(Box<Responder>),
    /// Done: the payload cipher (plaintext connections have no layer).
    Established(PayloadCipher),
}

/// The encryption state of every connection that has any.
#[derive(Debug, Default)]
pub(super) struct Encryption {
    mode: EncryptionMode,
    layers: BTreeMap<ConnId, Layer>,
    plaintext_peers: BTreeSet<SocketAddr>,
    plaintext_order: VecDeque<SocketAddr>,
}

impl Encryption {
    pub(super) fn new(mode: EncryptionMode) -> Encryption {
        Encryption {
            mode,
            ..Encryption::default()
        }
    }

    pub(super) fn forget(&mut self, conn: ConnId) {
        self.layers.remove(&conn);
    }

    /// The earliest deadline of an outgoing handshake.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.layers
            .values()
            .filter_map(|l| match l {
                Layer::Connecting { since, .. } => since.map(|s| s + HANDSHAKE_TIMEOUT),
                _ => None,
            })
            .min()
    }

    fn remember_plaintext(&mut self, addr: SocketAddr) {
        if self.mode != EncryptionMode::Enabled || !self.plaintext_peers.insert(addr) {
            return;
        }
        self.plaintext_order.push_back(addr);
        if self.plaintext_order.len() > MAX_PLAINTEXT_PEERS {
            if let Some(old) = self.plaintext_order.pop_front() {
                self.plaintext_peers.remove(&old);
            }
        }
    }
}

impl Engine {
    /// A torrent asked to connect to `addr` for `info_hash`: start an MSE
    /// handshake unless the mode or the peer's history says plaintext.
    pub(super) fn encrypt_outgoing(&mut self, conn: ConnId, addr: SocketAddr, info_hash: [u8; 20]) {
        let e = &mut self.encryption;
        let plaintext = match e.mode {
            EncryptionMode::Disabled => true,
            EncryptionMode::Enabled => e.plaintext_peers.contains(&addr),
            EncryptionMode::Required => false,
        };
        if plaintext {
            return;
        }
        let machine = Box::new(Initiator::new(info_hash, e.mode.methods(), &mut self.rng));
        e.layers.insert(
            conn,
            Layer::Connecting {
                addr,
                machine,
                since: None,
            },
        );
    }

    /// Bytes a torrent sends: encrypted if the connection is.
    pub(super) fn encrypt_send(&mut self, conn: ConnId, mut data: Vec<u8>) -> Vec<u8> {
        if let Some(Layer::Established(cipher)) = self.encryption.layers.get_mut(&conn) {
            cipher.encrypt(&mut data);
        }
        data
    }

    /// TCP connected: whether the torrent may hear of it now (false while
    /// an MSE handshake runs; its first message goes out here).
    pub(super) fn mse_connected(&mut self, now: Instant, conn: ConnId) -> bool {
        let Some(Layer::Connecting { machine, since, .. }) = self.encryption.layers.get_mut(&conn)
        else {
            return true;
        };
        *since = Some(now);
        if let Some(bytes) = machine.poll_transmit() {
            self.send_raw(conn, bytes);
        }
        false
    }

    /// An outgoing handshake ended without a connection: the torrent
    /// hears that connecting failed, and in `Enabled` mode the peer is
    /// tried in plaintext next time.
    fn mse_connect_failed(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) {
        self.encryption.layers.remove(&conn);
        self.encryption.remember_plaintext(addr);
        self.close(conn);
        if let Some(id) = self.conns.remove(&conn) {
            if let Some(t) = self.torrents.get_mut(&id) {
                t.handle_connect_failed(now, conn);
            }
        }
    }

    /// The connection closed: if an outgoing handshake was running, that
    /// is how a plaintext-only peer refuses it. Returns whether it was
    /// handled here.
    pub(super) fn mse_closed(&mut self, now: Instant, conn: ConnId) -> bool {
        match self.encryption.layers.remove(&conn) {
            Some(Layer::Connecting { addr, .. }) => {
                self.encryption.remember_plaintext(addr);
                if let Some(id) = self.conns.remove(&conn) {
                    if let Some(t) = self.torrents.get_mut(&id) {
                        t.handle_connect_failed(now, conn);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Outgoing handshakes past their deadline fail.
    pub(super) fn expire_mse(&mut self, now: Instant) {
        let late: Vec<(ConnId, SocketAddr)> = self
            .encryption
            .layers
            .iter()
            .filter_map(|(c, l)| match l {
                Layer::Connecting {
                    addr,
                    since: Some(s),
                    ..
                } if *s + HANDSHAKE_TIMEOUT <= now => Some((*c, *addr)),
                _ => None,
            })
            .collect();
        for (conn, addr) in late {
            self.mse_connect_failed(now, conn, addr);
        }
    }

    /// Bytes that arrived on `conn`, through its layer: the plaintext to
    /// pass on (`None`: nothing, the layer kept or refused them).
    pub(super) fn mse_receive(&mut self, now: Instant, conn: ConnId, data: Bytes) -> Option<Bytes> {
        let first_bytes = self.handshakes.contains(conn) && self.handshakes.is_silent(conn);
        match self.encryption.layers.get_mut(&conn) {
            Some(Layer::Established(cipher)) => {
                if !cipher.is_encrypted() {
                    return Some(data);
                }
                let mut plain = Vec::from(data);
                cipher.decrypt(&mut plain);
                Some(Bytes::from(plain))
            }
            Some(Layer::Connecting { .. }) => {
                self.initiator_receive(now, conn, &data);
                None
            }
            Some(Layer::Accepting(_)) => self.responder_receive(conn, &data),
            None if first_bytes => self.detect_incoming(conn, data),
            None => Some(data),
        }
    }

    /// The first bytes of an incoming connection: plaintext or MSE.
    fn detect_incoming(&mut self, conn: ConnId, data: Bytes) -> Option<Bytes> {
        let Some(&first) = data.first() else {
            return Some(data);
        };
        let mode = self.encryption.mode;
        let plaintext = first == crate::wire::PROTOCOL.len() as u8;
        match (plaintext, mode) {
            (true, EncryptionMode::Required) => {
                self.refuse_incoming(conn);
                None
            }
            (true, _) | (false, EncryptionMode::Disabled) => Some(data),
            (false, _) => {
                let machine = Responder::new(mode.methods(), &mut self.rng);
                self.encryption
                    .layers
                    .insert(conn, Layer::Accepting(Box::new(machine)));
                self.responder_receive(conn, &data)
            }
        }
    }

    fn refuse_incoming(&mut self, conn: ConnId) {
        self.encryption.layers.remove(&conn);
        self.handshakes.remove(conn);
        self.close(conn);
    }

    fn responder_receive(&mut self, conn: ConnId, data: &[u8]) -> Option<Bytes> {
        let Some(Layer::Accepting(machine)) = self.encryption.layers.get_mut(&conn) else {
            return None;
        };
        let by_hash = &self.by_hash;
        let result = machine.handle_data(data, |req2| {
            by_hash.keys().map(|h| h.0).find(|h| keys::req2(h) == *req2)
        });
        let transmit = machine.poll_transmit();
        self.handshakes.mark_spoken(conn);
        if let Some(bytes) = transmit {
            self.send_raw(conn, bytes);
        }
        match result {
            Ok(Status::Pending) => None,
            Ok(Status::Established) => {
                let Some(Layer::Accepting(machine)) = self.encryption.layers.remove(&conn) else {
                    return None;
                };
                let done = machine.finish()?;
                self.encryption
                    .layers
                    .insert(conn, Layer::Established(done.cipher));
                Some(Bytes::from(done.received))
            }
            Err(_) => {
                self.refuse_incoming(conn);
                None
            }
        }
    }

    fn initiator_receive(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let Some(Layer::Connecting { addr, machine, .. }) = self.encryption.layers.get_mut(&conn)
        else {
            return;
        };
        let addr = *addr;
        let result = machine.handle_data(data);
        if let Some(bytes) = machine.poll_transmit() {
            self.send_raw(conn, bytes);
        }
        match result {
            Ok(Status::Pending) => {}
            Ok(Status::Established) => {
                let Some(Layer::Connecting { machine, .. }) = self.encryption.layers.remove(&conn)
                else {
                    return;
                };
                let Some(done) = machine.finish() else {
                    return;
                };
                self.encryption
                    .layers
                    .insert(conn, Layer::Established(done.cipher));
                self.torrent_connected(now, conn);
                if done.received.is_empty() {
                    return;
                }
                if let Some(t) = self
                    .torrent_of(conn)
                    .and_then(|id| self.torrents.get_mut(&id))
                {
                    t.handle_chunk(now, conn, Bytes::from(done.received));
                }
            }
            Err(_) => self.mse_connect_failed(now, conn, addr),
        }
    }

    fn send_raw(&mut self, conn: ConnId, data: Vec<u8>) {
        self.stream_send(conn, data);
    }
}
