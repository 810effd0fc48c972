//! [`Message::decode`] and [`Message::encode`].
//!
//! The DHT handles every datagram a busy node receives, so both sides skip
//! the bencode tree: decoding walks the datagram once with a
//! [`Reader`](crate::bencode::Reader), keeping the first occurrence of
//! each known key and skipping the rest; encoding writes the canonical form
//! (keys in sorted order) straight into the output.
//!
//! `a` (query arguments) can come before `q` (the method) and `y` (the
//! kind), so both argument and response dictionaries are read into one
//! [`Fields`] record and interpreted once the whole message is read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    Body, CompactNode, KrpcError, Message, NodeId, Query, Response, Want, MAX_ERROR_LEN,
    MAX_TOKEN_LEN, MAX_TX_LEN, MAX_VALUES,
};
use crate::bencode::{encode_bytes, encode_int, Reader, Token};
use crate::compact;
use crate::dht::scrape::ScrapeBloom;
use crate::error::DecodeError;
use crate::metainfo::InfoHash;

/// The keys of an `a` or `r` dictionary, as read.
#[derive(Default)]
struct Fields<'a> {
    id: Option<&'a [u8]>,
    target: Option<&'a [u8]>,
    info_hash: Option<&'a [u8]>,
    port: Option<i64>,
    token: Option<&'a [u8]>,
    implied_port: Option<i64>,
    ro: Option<i64>,
    want: Want,
    nodes: Option<&'a [u8]>,
    nodes6: Option<&'a [u8]>,
    values: Vec<SocketAddr>,
    samples: Option<&'a [u8]>,
    interval: Option<i64>,
    num: Option<i64>,
    scrape: Option<i64>,
    noseed: Option<i64>,
    seed: Option<i64>,
    bf_seeds: Option<&'a [u8]>,
    bf_peers: Option<&'a [u8]>,
}

/// What a value turned out to be, for a key that expects one kind.
enum Item<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    /// A list or dictionary (already skipped).
    Other,
}

fn item<'a>(r: &mut Reader<'a>) -> Result<Item<'a>, DecodeError> {
    let t = r.next_token()?;
    Ok(match t {
        Token::Int(n) => Item::Int(n),
        Token::Bytes(b) => Item::Bytes(b),
        _ => {
            r.skip(t)?;
            Item::Other
        }
    })
}

/// Stores the first value seen for a key (later duplicates are ignored, as
/// [`crate::bencode::Dict::get`] does).
fn first<T>(slot: &mut Option<Option<T>>, value: Option<T>) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

fn bytes(i: Item<'_>) -> Option<&[u8]> {
    match i {
        Item::Bytes(b) => Some(b),
        _ => None,
    }
}

fn int(i: Item<'_>) -> Option<i64> {
    match i {
        Item::Int(n) => Some(n),
        _ => None,
    }
}

/// Reads a dictionary's entries (its `Dict` token already read).
fn fields<'a>(r: &mut Reader<'a>) -> Result<Fields<'a>, DecodeError> {
    // `Some(None)`: the key was there with a value of the wrong kind, which
    // hides any later duplicate, as in the tree decoder.
    let mut id = None;
    let mut target = None;
    let mut info_hash = None;
    let mut port = None;
    let mut token = None;
    let mut implied_port = None;
    let mut ro = None;
    let mut nodes = None;
    let mut nodes6 = None;
    let mut samples = None;
    let mut interval = None;
    let mut num = None;
    let mut scrape = None;
    let mut noseed = None;
    let mut seed = None;
    let mut bf_seeds = None;
    let mut bf_peers = None;
    let mut want: Option<Want> = None;
    let mut values: Option<Vec<SocketAddr>> = None;
    loop {
        let key = match r.next_token()? {
            Token::End => break,
            Token::Bytes(k) => k,
            // The reader only yields strings or End for keys.
            _ => unreachable_key(r)?,
        };
        match key {
            b"id" => first(&mut id, bytes(item(r)?)),
            b"target" => first(&mut target, bytes(item(r)?)),
            b"info_hash" => first(&mut info_hash, bytes(item(r)?)),
            b"port" => first(&mut port, int(item(r)?)),
            b"token" => first(&mut token, bytes(item(r)?)),
            b"implied_port" => first(&mut implied_port, int(item(r)?)),
            b"ro" => first(&mut ro, int(item(r)?)),
            b"nodes" => first(&mut nodes, bytes(item(r)?)),
            b"nodes6" => first(&mut nodes6, bytes(item(r)?)),
            b"samples" => first(&mut samples, bytes(item(r)?)),
            b"interval" => first(&mut interval, int(item(r)?)),
            b"num" => first(&mut num, int(item(r)?)),
            b"scrape" => first(&mut scrape, int(item(r)?)),
            b"noseed" => first(&mut noseed, int(item(r)?)),
            b"seed" => first(&mut seed, int(item(r)?)),
            b"BFsd" => first(&mut bf_seeds, bytes(item(r)?)),
            b"BFpe" => first(&mut bf_peers, bytes(item(r)?)),
            b"want" if want.is_none() => want = Some(want_list(r)?),
            b"values" if values.is_none() => values = Some(values_list(r)?),
            _ => {
                let t = r.next_token()?;
                r.skip(t)?;
            }
        }
    }
    Ok(Fields {
        id: id.flatten(),
        target: target.flatten(),
        info_hash: info_hash.flatten(),
        port: port.flatten(),
        token: token.flatten(),
        implied_port: implied_port.flatten(),
        ro: ro.flatten(),
        want: want.unwrap_or_default(),
        nodes: nodes.flatten(),
        nodes6: nodes6.flatten(),
        values: values.unwrap_or_default(),
        samples: samples.flatten(),
        interval: interval.flatten(),
        num: num.flatten(),
        scrape: scrape.flatten(),
        noseed: noseed.flatten(),
        seed: seed.flatten(),
        bf_seeds: bf_seeds.flatten(),
        bf_peers: bf_peers.flatten(),
    })
}

fn unreachable_key<T>(r: &Reader<'_>) -> Result<T, DecodeError> {
    Err(DecodeError::new(
        crate::error::DecodeErrorKind::KeyNotString,
        r.offset(),
        "dictionary key",
    ))
}

/// BEP 32 `want`: a list of `n4` / `n6`.
fn want_list(r: &mut Reader<'_>) -> Result<Want, DecodeError> {
    let mut w = Want::default();
    let t = r.next_token()?;
    if t != Token::List {
        r.skip(t)?;
        return Ok(w);
    }
    loop {
        match r.next_token()? {
            Token::End => return Ok(w),
            Token::Bytes(b"n4") => w.v4 = true,
            Token::Bytes(b"n6") => w.v6 = true,
            other => r.skip(other)?,
        }
    }
}

/// `values`: a list of compact peers; the first [`MAX_VALUES`] entries are
/// read, entries of another size or with port 0 dropped.
fn values_list(r: &mut Reader<'_>) -> Result<Vec<SocketAddr>, DecodeError> {
    let mut out = Vec::new();
    let t = r.next_token()?;
    if t != Token::List {
        r.skip(t)?;
        return Ok(out);
    }
    let mut seen = 0;
    loop {
        let t = r.next_token()?;
        match t {
            Token::End => return Ok(out),
            Token::Bytes(b) if seen < MAX_VALUES => {
                if let Some(a) = decode_addr(b).filter(|a| a.port() != 0) {
                    out.push(a);
                }
            }
            other => r.skip(other)?,
        }
        seen += 1;
    }
}

/// An error's `[code, message]`, as read.
struct ErrorList {
    code: Option<i64>,
    message: String,
}

/// Error list `[code, message]`; `None` if `e` is not a list.
fn error_list(r: &mut Reader<'_>) -> Result<Option<ErrorList>, DecodeError> {
    let t = r.next_token()?;
    if t != Token::List {
        r.skip(t)?;
        return Ok(None);
    }
    let mut code = None;
    let mut message = None;
    let mut index = 0;
    loop {
        let t = r.next_token()?;
        match (index, t) {
            (_, Token::End) => break,
            (0, Token::Int(n)) => code = Some(n),
            (1, Token::Bytes(m)) => message = Some(error_text(m)),
            (_, other) => r.skip(other)?,
        }
        index += 1;
    }
    Ok(Some(ErrorList {
        code,
        message: message.unwrap_or_default(),
    }))
}

/// An error message made printable (invalid UTF-8 replaced, control
/// characters blanked) and at most [`MAX_ERROR_LEN`] bytes, so decoding our
/// own encoding of it gives it back unchanged.
fn error_text(raw: &[u8]) -> String {
    let mut text = crate::tracker::clean_message(&raw[..raw.len().min(MAX_ERROR_LEN)]);
    // Replacement characters take 3 bytes: cleaning can make it longer.
    let mut end = text.len().min(MAX_ERROR_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.truncate(text.trim_end().len());
    text
}

fn id20(b: Option<&[u8]>) -> Option<[u8; 20]> {
    b.and_then(|b| b.try_into().ok())
}

/// Decodes compact node infos of `len` bytes each (26 for IPv4, 38 for
/// IPv6); a trailing partial entry and port-0 nodes are dropped.
fn decode_nodes(bytes: &[u8], v6: bool) -> Vec<CompactNode> {
    let len = if v6 { 38 } else { 26 };
    let mut out = Vec::with_capacity(bytes.len() / len);
    for c in bytes.chunks_exact(len) {
        let mut id = [0u8; 20];
        id.copy_from_slice(&c[..20]);
        let addr = if v6 {
            compact::decode_v6(&c[20..]).next()
        } else {
            compact::decode_v4(&c[20..]).next()
        };
        if let Some(addr) = addr {
            out.push(CompactNode {
                id: NodeId(id),
                addr,
            });
        }
    }
    out
}

/// A compact address: 6 or 18 bytes with a port, 4 or 16 without (port 0).
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
        let mut r = Reader::new(bytes);
        let first = r.next_token().map_err(KrpcError::Malformed)?;
        if first != Token::Dict {
            // Bencode, but not a dictionary? Or not even bencode?
            r.skip(first).map_err(KrpcError::Malformed)?;
            r.finish().map_err(KrpcError::Malformed)?;
            return Err(KrpcError::Protocol("not a dictionary"));
        }
        let top = read_top(&mut r).map_err(KrpcError::Malformed)?;
        r.finish().map_err(KrpcError::Malformed)?;
        top.into_message()
    }

    /// Appends the canonical encoding: keys sorted, as BEP 3 requires.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let id = self.id.unwrap_or_default();
        out.push(b'd');
        match &self.body {
            Body::Query(q) => {
                key(out, b"a");
                encode_args(out, &id, q);
                self.encode_ip(out);
                key(out, b"q");
                encode_bytes(out, q.method());
                self.encode_tail(out, b"q");
            }
            Body::Response(resp) => {
                self.encode_ip(out);
                key(out, b"r");
                encode_response(out, &id, resp);
                self.encode_tail(out, b"r");
            }
            Body::Error(code, message) => {
                key(out, b"e");
                out.push(b'l');
                encode_int(out, *code);
                encode_bytes(out, message.as_bytes());
                out.push(b'e');
                self.encode_ip(out);
                self.encode_tail(out, b"e");
            }
        }
        out.push(b'e');
    }

    fn encode_ip(&self, out: &mut Vec<u8>) {
        if let Some(ip) = &self.ip {
            key(out, b"ip");
            encode_addr(out, ip);
        }
    }

    /// `ro`, `t`, `v`, `y`: the keys after `r`, in order.
    fn encode_tail(&self, out: &mut Vec<u8>, kind: &[u8]) {
        if self.read_only {
            key(out, b"ro");
            encode_int(out, 1);
        }
        key(out, b"t");
        encode_bytes(out, &self.tx);
        if let Some(v) = &self.version {
            key(out, b"v");
            encode_bytes(out, v);
        }
        key(out, b"y");
        encode_bytes(out, kind);
    }
}

impl Query {
    /// The `q` value.
    fn method(&self) -> &[u8] {
        match self {
            Query::Ping => b"ping",
            Query::FindNode { .. } => b"find_node",
            Query::GetPeers { .. } => b"get_peers",
            Query::AnnouncePeer { .. } => b"announce_peer",
            Query::SampleInfohashes { .. } => b"sample_infohashes",
            Query::Unknown { method } => method,
        }
    }
}

fn key(out: &mut Vec<u8>, k: &[u8]) {
    encode_bytes(out, k);
}

/// A compact address as a byte string (`6:` or `18:`).
fn encode_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    out.extend_from_slice(if addr.is_ipv4() { b"6:" } else { b"18:" });
    compact::encode(out, addr);
}

/// `N:` then the nodes, each id and compact address.
fn encode_nodes(out: &mut Vec<u8>, nodes: &[CompactNode]) {
    let len: usize = nodes
        .iter()
        .map(|n| 20 + if n.addr.is_ipv4() { 6 } else { 18 })
        .sum();
    encode_int_prefix(out, len);
    for n in nodes {
        out.extend_from_slice(&n.id.0);
        compact::encode(out, &n.addr);
    }
}

/// The `N:` of a byte string.
fn encode_int_prefix(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b':');
}

fn encode_want(out: &mut Vec<u8>, want: Want) {
    if want.v4 || want.v6 {
        key(out, b"want");
        out.push(b'l');
        if want.v4 {
            encode_bytes(out, b"n4");
        }
        if want.v6 {
            encode_bytes(out, b"n6");
        }
        out.push(b'e');
    }
}

/// The `a` dictionary; keys sorted: id, implied_port, info_hash, noseed,
/// port, scrape, seed, target, token, want.
fn encode_args(out: &mut Vec<u8>, id: &NodeId, q: &Query) {
    out.push(b'd');
    key(out, b"id");
    encode_bytes(out, &id.0);
    match q {
        Query::Ping | Query::Unknown { .. } => {}
        Query::FindNode { target, want } | Query::SampleInfohashes { target, want } => {
            key(out, b"target");
            encode_bytes(out, &target.0);
            encode_want(out, *want);
        }
        Query::GetPeers {
            info_hash,
            want,
            scrape,
            noseed,
        } => {
            key(out, b"info_hash");
            encode_bytes(out, &info_hash.0);
            if *noseed {
                key(out, b"noseed");
                encode_int(out, 1);
            }
            if *scrape {
                key(out, b"scrape");
                encode_int(out, 1);
            }
            encode_want(out, *want);
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            token,
            implied_port,
            seed,
        } => {
            if *implied_port {
                key(out, b"implied_port");
                encode_int(out, 1);
            }
            key(out, b"info_hash");
            encode_bytes(out, &info_hash.0);
            key(out, b"port");
            encode_int(out, i64::from(*port));
            if *seed {
                key(out, b"seed");
                encode_int(out, 1);
            }
            key(out, b"token");
            encode_bytes(out, token);
        }
    }
    out.push(b'e');
}

/// The `r` dictionary; keys sorted (capitals first): BFpe, BFsd, id,
/// interval, nodes, nodes6, num, samples, token, values.
fn encode_response(out: &mut Vec<u8>, id: &NodeId, r: &Response) {
    out.push(b'd');
    for (name, bloom) in [(b"BFpe", &r.bf_peers), (b"BFsd", &r.bf_seeds)] {
        if let Some(b) = bloom {
            key(out, name);
            encode_bytes(out, &b.0);
        }
    }
    key(out, b"id");
    encode_bytes(out, &id.0);
    if let Some(i) = r.interval {
        key(out, b"interval");
        encode_int(out, i64::from(i));
    }
    if !r.nodes.is_empty() {
        key(out, b"nodes");
        encode_nodes(out, &r.nodes);
    }
    if !r.nodes6.is_empty() {
        key(out, b"nodes6");
        encode_nodes(out, &r.nodes6);
    }
    if let Some(n) = r.num {
        key(out, b"num");
        encode_int(out, i64::try_from(n).unwrap_or(i64::MAX));
    }
    if !r.samples.is_empty() {
        key(out, b"samples");
        encode_int_prefix(out, r.samples.len() * 20);
        for h in &r.samples {
            out.extend_from_slice(&h.0);
        }
    }
    if let Some(t) = &r.token {
        key(out, b"token");
        encode_bytes(out, t);
    }
    if !r.values.is_empty() {
        key(out, b"values");
        out.push(b'l');
        for a in &r.values {
            encode_addr(out, a);
        }
        out.push(b'e');
    }
    out.push(b'e');
}

/// The top-level keys, as read.
#[derive(Default)]
struct Top<'a> {
    tx: Option<Option<&'a [u8]>>,
    version: Option<Option<&'a [u8]>>,
    ip: Option<Option<&'a [u8]>>,
    ro: Option<Option<i64>>,
    kind: Option<Option<&'a [u8]>>,
    method: Option<Option<&'a [u8]>>,
    args: Option<Option<Fields<'a>>>,
    response: Option<Option<Fields<'a>>>,
    error: Option<Option<ErrorList>>,
}

fn read_top<'a>(r: &mut Reader<'a>) -> Result<Top<'a>, DecodeError> {
    let mut top = Top::default();
    loop {
        let key = match r.next_token()? {
            Token::End => return Ok(top),
            Token::Bytes(k) => k,
            _ => unreachable_key(r)?,
        };
        match key {
            b"t" => first(&mut top.tx, bytes(item(r)?)),
            b"v" => first(&mut top.version, bytes(item(r)?)),
            b"ip" => first(&mut top.ip, bytes(item(r)?)),
            b"ro" => first(&mut top.ro, int(item(r)?)),
            b"y" => first(&mut top.kind, bytes(item(r)?)),
            b"q" => first(&mut top.method, bytes(item(r)?)),
            b"a" | b"r" => {
                let slot = if key == b"a" {
                    &mut top.args
                } else {
                    &mut top.response
                };
                let t = r.next_token()?;
                if slot.is_none() && t == Token::Dict {
                    *slot = Some(Some(fields(r)?));
                } else {
                    r.skip(t)?;
                    if slot.is_none() {
                        *slot = Some(None);
                    }
                }
            }
            b"e" if top.error.is_none() => top.error = Some(error_list(r)?),
            _ => {
                let t = r.next_token()?;
                r.skip(t)?;
            }
        }
    }
}

impl Top<'_> {
    fn into_message(self) -> Result<Message, KrpcError> {
        let tx = self
            .tx
            .flatten()
            .filter(|t| t.len() <= MAX_TX_LEN)
            .ok_or(KrpcError::Protocol("transaction id"))?
            .to_vec();
        let version = self
            .version
            .flatten()
            .filter(|v| v.len() <= 16)
            .map(<[u8]>::to_vec);
        let ip = self.ip.flatten().and_then(decode_addr);
        let mut read_only = self.ro.flatten() == Some(1);
        let kind = self.kind.flatten().ok_or(KrpcError::Protocol("y"))?;
        let (id, body) = match kind {
            b"q" => {
                let method = self.method.flatten().ok_or(KrpcError::Protocol("q"))?;
                let a = self.args.flatten().ok_or(KrpcError::Protocol("a"))?;
                let id = id20(a.id).map(NodeId).ok_or(KrpcError::Protocol("a.id"))?;
                read_only = read_only || a.ro == Some(1);
                (Some(id), Body::Query(query(method, &a)?))
            }
            b"r" => {
                let r = self.response.flatten().ok_or(KrpcError::Protocol("r"))?;
                let id = id20(r.id).map(NodeId).ok_or(KrpcError::Protocol("r.id"))?;
                (Some(id), Body::Response(response(r)))
            }
            b"e" => {
                let e = self.error.flatten().ok_or(KrpcError::Protocol("e"))?;
                let code = e.code.ok_or(KrpcError::Protocol("error code"))?;
                (None, Body::Error(code, e.message))
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
}

fn query(method: &[u8], a: &Fields<'_>) -> Result<Query, KrpcError> {
    Ok(match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: id20(a.target)
                .map(NodeId)
                .ok_or(KrpcError::Protocol("target"))?,
            want: a.want,
        },
        b"get_peers" => Query::GetPeers {
            info_hash: id20(a.info_hash)
                .map(InfoHash)
                .ok_or(KrpcError::Protocol("info_hash"))?,
            want: a.want,
            scrape: a.scrape.is_some_and(|v| v != 0),
            noseed: a.noseed.is_some_and(|v| v != 0),
        },
        b"announce_peer" => Query::AnnouncePeer {
            info_hash: id20(a.info_hash)
                .map(InfoHash)
                .ok_or(KrpcError::Protocol("info_hash"))?,
            port: a.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            token: a
                .token
                .filter(|t| t.len() <= MAX_TOKEN_LEN)
                .ok_or(KrpcError::Protocol("token"))?
                .to_vec(),
            implied_port: a.implied_port.is_some_and(|v| v != 0),
            seed: a.seed.is_some_and(|v| v != 0),
        },
        b"sample_infohashes" => Query::SampleInfohashes {
            target: id20(a.target)
                .map(NodeId)
                .ok_or(KrpcError::Protocol("target"))?,
            want: a.want,
        },
        other => Query::Unknown {
            method: other[..other.len().min(32)].to_vec(),
        },
    })
}

fn response(r: Fields<'_>) -> Response {
    Response {
        bf_seeds: r.bf_seeds.and_then(ScrapeBloom::from_bytes).map(Box::new),
        bf_peers: r.bf_peers.and_then(ScrapeBloom::from_bytes).map(Box::new),
        nodes: r.nodes.map(|b| decode_nodes(b, false)).unwrap_or_default(),
        nodes6: r.nodes6.map(|b| decode_nodes(b, true)).unwrap_or_default(),
        values: r.values,
        token: r
            .token
            .filter(|t| t.len() <= MAX_TOKEN_LEN)
            .map(<[u8]>::to_vec),
        samples: r
            .samples
            .unwrap_or(&[])
            .chunks_exact(20)
            .map(|c| {
                let mut h = [0u8; 20];
                h.copy_from_slice(c);
                InfoHash(h)
            })
            .collect(),
        interval: r.interval.and_then(|n| u32::try_from(n).ok()),
        num: r.num.and_then(|n| u64::try_from(n).ok()),
    }
}
