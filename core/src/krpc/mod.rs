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

pub mod transactions;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::bencode::{self, Dict, Value};
use crate::compact;
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

fn id_field(d: &Dict<'_>, key: &[u8]) -> Option<[u8; 20]> {
    d.get(key)
        .and_then(Value::as_bytes)
        .and_then(|b| b.try_into().ok())
}

fn want(d: &Dict<'_>) -> Want {
    let mut w = Want::default();
    for item in d.get(b"want").and_then(Value::as_list).unwrap_or(&[]) {
        match item.as_bytes() {
            Some(b"n4") => w.v4 = true,
            Some(b"n6") => w.v6 = true,
            _ => {}
        }
    }
    w
}

/// Decodes compact node infos of `len` bytes each (26 for IPv4, 38 for
/// IPv6); a trailing partial entry and port-0 nodes are dropped.
fn decode_nodes(bytes: &[u8], v6: bool) -> Vec<CompactNode> {
    let len = if v6 { 38 } else { 26 };
    bytes
        .chunks_exact(len)
        .filter_map(|c| {
            let mut id = [0u8; 20];
            id.copy_from_slice(&c[..20]);
            let addr = if v6 {
                compact::decode_v6(&c[20..]).next()?
            } else {
                compact::decode_v4(&c[20..]).next()?
            };
            Some(CompactNode {
                id: NodeId(id),
                addr,
            })
        })
        .collect()
}

fn encode_nodes(nodes: &[CompactNode]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * 38);
    for n in nodes {
        out.extend_from_slice(&n.id.0);
        compact::encode(&mut out, &n.addr);
    }
    out
}

fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
    match b.len() {
        6 => compact::decode_v4(b).next(),
        18 => compact::decode_v6(b).next(),
        4 => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            0,
        )),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), 0))
        }
        _ => None,
    }
}

impl Message {
    /// Decodes one datagram.
    pub fn decode(bytes: &[u8]) -> Result<Message, KrpcError> {
        let root = bencode::decode(bytes).map_err(KrpcError::Malformed)?;
        let d = root
            .as_dict()
            .ok_or(KrpcError::Protocol("not a dictionary"))?;
        let tx = d
            .get(b"t")
            .and_then(Value::as_bytes)
            .filter(|t| t.len() <= MAX_TX_LEN)
            .ok_or(KrpcError::Protocol("transaction id"))?
            .to_vec();
        let version = d
            .get(b"v")
            .and_then(Value::as_bytes)
            .filter(|v| v.len() <= 16)
            .map(<[u8]>::to_vec);
        let ip = d.get(b"ip").and_then(Value::as_bytes).and_then(decode_addr);
        let read_only = d.get(b"ro").and_then(Value::as_int) == Some(1);
        let kind = d
            .get(b"y")
            .and_then(Value::as_bytes)
            .ok_or(KrpcError::Protocol("y"))?;
        let (id, body) = match kind {
            b"q" => {
                let method = d
                    .get(b"q")
                    .and_then(Value::as_bytes)
                    .ok_or(KrpcError::Protocol("q"))?;
                let a = d
                    .get(b"a")
                    .and_then(Value::as_dict)
                    .ok_or(KrpcError::Protocol("a"))?;
                let id = id_field(a, b"id")
                    .map(NodeId)
                    .ok_or(KrpcError::Protocol("a.id"))?;
                let read_only = read_only || a.get(b"ro").and_then(Value::as_int) == Some(1);
                let q = match method {
                    b"ping" => Query::Ping,
                    b"find_node" => Query::FindNode {
                        target: id_field(a, b"target")
                            .map(NodeId)
                            .ok_or(KrpcError::Protocol("target"))?,
                        want: want(a),
                    },
                    b"get_peers" => Query::GetPeers {
                        info_hash: id_field(a, b"info_hash")
                            .map(InfoHash)
                            .ok_or(KrpcError::Protocol("info_hash"))?,
                        want: want(a),
                    },
                    b"announce_peer" => Query::AnnouncePeer {
                        info_hash: id_field(a, b"info_hash")
                            .map(InfoHash)
                            .ok_or(KrpcError::Protocol("info_hash"))?,
                        port: a
                            .get(b"port")
                            .and_then(Value::as_int)
                            .and_then(|p| u16::try_from(p).ok())
                            .unwrap_or(0),
                        token: a
                            .get(b"token")
                            .and_then(Value::as_bytes)
                            .filter(|t| t.len() <= MAX_TOKEN_LEN)
                            .ok_or(KrpcError::Protocol("token"))?
                            .to_vec(),
                        implied_port: a
                            .get(b"implied_port")
                            .and_then(Value::as_int)
                            .is_some_and(|v| v != 0),
                    },
                    b"sample_infohashes" => Query::SampleInfohashes {
                        target: id_field(a, b"target")
                            .map(NodeId)
                            .ok_or(KrpcError::Protocol("target"))?,
                        want: want(a),
                    },
                    other => Query::Unknown {
                        method: other[..other.len().min(32)].to_vec(),
                    },
                };
                return Ok(Message {
                    tx,
                    id: Some(id),
                    version,
                    ip,
                    read_only,
                    body: Body::Query(q),
                });
            }
            b"r" => {
                let r = d
                    .get(b"r")
                    .and_then(Value::as_dict)
                    .ok_or(KrpcError::Protocol("r"))?;
                let id = id_field(r, b"id")
                    .map(NodeId)
                    .ok_or(KrpcError::Protocol("r.id"))?;
                let bytes_of = |k: &[u8]| r.get(k).and_then(Value::as_bytes).unwrap_or(&[]);
                let values = r
                    .get(b"values")
                    .and_then(Value::as_list)
                    .unwrap_or(&[])
                    .iter()
                    .take(MAX_VALUES)
                    .filter_map(|v| v.as_bytes().and_then(decode_addr))
                    .filter(|a| a.port() != 0)
                    .collect();
                let samples = bytes_of(b"samples")
                    .chunks_exact(20)
                    .map(|c| {
                        let mut h = [0u8; 20];
                        h.copy_from_slice(c);
                        InfoHash(h)
                    })
                    .collect();
                let resp = Response {
                    nodes: decode_nodes(bytes_of(b"nodes"), false),
                    nodes6: decode_nodes(bytes_of(b"nodes6"), true),
                    values,
                    token: r
                        .get(b"token")
                        .and_then(Value::as_bytes)
                        .filter(|t| t.len() <= MAX_TOKEN_LEN)
                        .map(<[u8]>::to_vec),
                    samples,
                    interval: r
                        .get(b"interval")
                        .and_then(Value::as_int)
                        .and_then(|n| u32::try_from(n).ok()),
                    num: r
                        .get(b"num")
                        .and_then(Value::as_int)
                        .and_then(|n| u64::try_from(n).ok()),
                };
                (Some(id), Body::Response(resp))
            }
            b"e" => {
                let e = d
                    .get(b"e")
                    .and_then(Value::as_list)
                    .ok_or(KrpcError::Protocol("e"))?;
                let code = e
                    .first()
                    .and_then(Value::as_int)
                    .ok_or(KrpcError::Protocol("error code"))?;
                let message = e
                    .get(1)
                    .and_then(Value::as_bytes)
                    .map(|m| crate::tracker::clean_message(&m[..m.len().min(MAX_ERROR_LEN)]))
                    .unwrap_or_default();
                (None, Body::Error(code, message))
            }
            _ => return Err(KrpcError::Protocol("y")),
        };
        Ok(Message {
            tx,
            id,
            version,
            ip,
            read_only,
            body,
        })
    }

    /// Appends the canonical encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let ip_bytes = self.ip.map(|a| {
            let mut v = Vec::new();
            compact::encode(&mut v, &a);
            v
        });
        let mut top: Vec<(&[u8], Value<'_>)> = vec![(b"t", Value::bytes(&self.tx))];
        if let Some(v) = &self.version {
            top.push((b"v", Value::bytes(v)));
        }
        if let Some(ip) = &ip_bytes {
            top.push((b"ip", Value::bytes(ip)));
        }
        if self.read_only {
            top.push((b"ro", Value::int(1)));
        }
        let id = self.id.unwrap_or_default();
        // Owned buffers the values borrow from.
        let (nodes, nodes6, samples, values): (Vec<u8>, Vec<u8>, Vec<u8>, Vec<Vec<u8>>);
        let want_list;
        match &self.body {
            Body::Query(q) => {
                let (method, mut args): (&[u8], Vec<(&[u8], Value<'_>)>) = match q {
                    Query::Ping => (b"ping", Vec::new()),
                    Query::FindNode { target, want } => {
                        want_list = want_values(*want);
                        let mut a = vec![(&b"target"[..], Value::bytes(&target.0))];
                        if !want_list.is_empty() {
                            a.push((b"want", Value::list(want_list.clone())));
                        }
                        (b"find_node", a)
                    }
                    Query::GetPeers { info_hash, want } => {
                        want_list = want_values(*want);
                        let mut a = vec![(&b"info_hash"[..], Value::bytes(&info_hash.0))];
                        if !want_list.is_empty() {
                            a.push((b"want", Value::list(want_list.clone())));
                        }
                        (b"get_peers", a)
                    }
                    Query::AnnouncePeer {
                        info_hash,
                        port,
                        token,
                        implied_port,
                    } => {
                        let mut a = vec![
                            (&b"info_hash"[..], Value::bytes(&info_hash.0)),
                            (b"port", Value::int(i64::from(*port))),
                            (b"token", Value::bytes(token)),
                        ];
                        if *implied_port {
                            a.push((b"implied_port", Value::int(1)));
                        }
                        (b"announce_peer", a)
                    }
                    Query::SampleInfohashes { target, want } => {
                        want_list = want_values(*want);
                        let mut a = vec![(&b"target"[..], Value::bytes(&target.0))];
                        if !want_list.is_empty() {
                            a.push((b"want", Value::list(want_list.clone())));
                        }
                        (b"sample_infohashes", a)
                    }
                    Query::Unknown { method } => (method.as_slice(), Vec::new()),
                };
                args.push((b"id", Value::bytes(&id.0)));
                top.push((b"y", Value::bytes(b"q")));
                top.push((b"q", Value::bytes(method)));
                top.push((b"a", Value::dict(args)));
                Value::dict(top).encode(out);
            }
            Body::Response(r) => {
                nodes = encode_nodes(&r.nodes);
                nodes6 = encode_nodes(&r.nodes6);
                samples = r.samples.iter().flat_map(|h| h.0).collect();
                values = r
                    .values
                    .iter()
                    .map(|a| {
                        let mut v = Vec::new();
                        compact::encode(&mut v, a);
                        v
                    })
                    .collect();
                let mut a: Vec<(&[u8], Value<'_>)> = vec![(b"id", Value::bytes(&id.0))];
                if !r.nodes.is_empty() {
                    a.push((b"nodes", Value::bytes(&nodes)));
                }
                if !r.nodes6.is_empty() {
                    a.push((b"nodes6", Value::bytes(&nodes6)));
                }
                if !r.values.is_empty() {
                    a.push((
                        b"values",
                        Value::list(values.iter().map(|v| Value::bytes(v)).collect()),
                    ));
                }
                if let Some(t) = &r.token {
                    a.push((b"token", Value::bytes(t)));
                }
                if !r.samples.is_empty() {
                    a.push((b"samples", Value::bytes(&samples)));
                }
                if let Some(i) = r.interval {
                    a.push((b"interval", Value::int(i64::from(i))));
                }
                if let Some(n) = r.num {
                    a.push((b"num", Value::int(i64::try_from(n).unwrap_or(i64::MAX))));
                }
                top.push((b"y", Value::bytes(b"r")));
                top.push((b"r", Value::dict(a)));
                Value::dict(top).encode(out);
            }
            Body::Error(code, message) => {
                top.push((b"y", Value::bytes(b"e")));
                top.push((
                    b"e",
                    Value::list(vec![Value::int(*code), Value::bytes(message.as_bytes())]),
                ));
                Value::dict(top).encode(out);
            }
        }
    }
}

fn want_values(w: Want) -> Vec<Value<'static>> {
    let mut v = Vec::new();
    if w.v4 {
        v.push(Value::bytes(b"n4"));
    }
    if w.v6 {
        v.push(Value::bytes(b"n6"));
    }
    v
}

#[cfg(test)]
mod tests;
