//! KRPC, the DHT's message format (BEP 5): one bencoded dictionary per UDP
//! datagram, a query (`y=q`), a response (`y=r`) or an error (`y=e`), tied
//! together by a transaction id (`t`). With the extensions the Mainline DHT
//! uses: `nodes6` (BEP 32), `want` (BEP 32), `ip` (BEP 42), `ro` (BEP 43),
//! `sample_infohashes` (BEP 51).
//!
//! Responses do not say which query they answer; the decoder reads every
//! field a response may have, and the caller interprets it by its
//! outstanding transaction.
//!
//! Decoding is total (any input gives a message or a [`KrpcError`]), every
//! repeated field is bounded, and [`Message::encode`] output decodes back to
//! the same message.

mod codec;
pub mod transactions;

use std::fmt;
use std::net::SocketAddr;

use crate::dht::scrape::ScrapeBloom;
use crate::error::DecodeError;
use crate::metainfo::InfoHash;

/// BEP 5 error codes.
pub mod code {
    /// "Generic Error".
    pub const GENERIC: i64 = 201;
    /// "Server Error".
    pub const SERVER: i64 = 202;
    /// "Protocol Error, such as a malformed packet, invalid arguments, or
    /// bad token".
    pub const PROTOCOL: i64 = 203;
    /// "Method Unknown".
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// Longest transaction id accepted (real ones are 2–4 bytes).
pub const MAX_TX_LEN: usize = 32;
/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 64;
/// Most `values` entries read from one response.
pub const MAX_VALUES: usize = 256;
/// Longest error message kept.
pub const MAX_ERROR_LEN: usize = 256;

/// A 160-bit DHT node id (the same space as info-hashes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// XOR distance to `other`, as a big-endian number.
    pub fn distance(&self, other: &NodeId) -> [u8; 20] {
        let mut d = [0u8; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        d
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A node's id and address: BEP 5 "compact node info".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CompactNode {
    /// Its id.
    pub id: NodeId,
    /// Its UDP address.
    pub addr: SocketAddr,
}

/// Which address families a query wants nodes for (BEP 32 `want`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`
    pub v4: bool,
    /// `n6`
    pub v6: bool,
}

/// A query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `ping`
    Ping,
    /// `find_node`
    FindNode {
        /// The id sought.
        target: NodeId,
        /// Families wanted.
        want: Want,
    },
    /// `get_peers`
    GetPeers {
        /// The torrent.
        info_hash: InfoHash,
        /// Families wanted.
        want: Want,
        /// BEP 33 `scrape`: answer with the Bloom filters of the stored
        /// seeds and peers too.
        scrape: bool,
        /// BEP 33 `noseed`: leave seeds out of `values` (the asker seeds).
        noseed: bool,
    },
    /// `announce_peer`
    AnnouncePeer {
        /// The torrent.
        info_hash: InfoHash,
        /// The peer's port (ignored when `implied_port`).
        port: u16,
        /// The token from our `get_peers` answer.
        token: Vec<u8>,
        /// Use the datagram's source port instead.
        implied_port: bool,
        /// BEP 33 `seed`: the announcer has the whole torrent.
        seed: bool,
    },
    /// `sample_infohashes` (BEP 51)
    SampleInfohashes {
        /// Where in the keyspace.
        target: NodeId,
        /// Families wanted.
        want: Want,
    },
    /// A method we do not know (answered with error 204).
    Unknown {
        /// Its name.
        method: Vec<u8>,
    },
}

/// Every field a response may carry.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Response {
    /// `nodes`: IPv4 nodes.
    pub nodes: Vec<CompactNode>,
    /// `nodes6` (BEP 32): IPv6 nodes.
    pub nodes6: Vec<CompactNode>,
    /// `values`: peers for a `get_peers`.
    pub values: Vec<SocketAddr>,
    /// `token`: for a later `announce_peer`.
    pub token: Option<Vec<u8>>,
    /// `samples` (BEP 51).
    pub samples: Vec<InfoHash>,
    /// `interval` (BEP 51): seconds before asking this node again.
    pub interval: Option<u32>,
    /// `num` (BEP 51): info-hashes the node stores.
    pub num: Option<u64>,
    /// `BFsd` (BEP 33): the seeds the node stores for the torrent (boxed:
    /// 256 bytes most answers do not carry).
    pub bf_seeds: Option<Box<ScrapeBloom>>,
    /// `BFpe` (BEP 33): the other peers it stores.
    pub bf_peers: Option<Box<ScrapeBloom>>,
}

/// What a message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `y=q`
    Query(Query),
    /// `y=r`
    Response(Response),
    /// `y=e`: code and message.
    Error(i64, String),
}

/// One KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `t`: the transaction id.
    pub tx: Vec<u8>,
    /// The sender's id (`a.id` or `r.id`); errors carry none.
    pub id: Option<NodeId>,
    /// `v`: client version.
    pub version: Option<Vec<u8>>,
    /// `ip` (BEP 42): the receiver's address as the sender sees it.
    pub ip: Option<SocketAddr>,
    /// `ro` (BEP 43): the sender is read-only.
    pub read_only: bool,
    /// The query, response or error.
    pub body: Body,
}

/// Why a datagram is not a usable KRPC message; the variants map to the
/// error codes a node answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KrpcError {
    /// Not bencode, or not a dictionary.
    Malformed(DecodeError),
    /// A required field is missing or malformed (`code::PROTOCOL`).
    Protocol(&'static str),
}

impl fmt::Display for KrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KrpcError::Malformed(e) => write!(f, "malformed KRPC message: {e}"),
            KrpcError::Protocol(what) => write!(f, "invalid KRPC message: {what}"),
        }
    }
}

impl std::error::Error for KrpcError {}

#[cfg(test)]
mod tests;
