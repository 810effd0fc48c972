//! The routing table (BEP 5): buckets of up to K nodes, by XOR distance to
//! our own id.
//!
//! Buckets are kept by common-prefix length with our id: bucket `i` holds
//! nodes whose id first differs from ours at bit `i`; the last bucket holds
//! everything closer. Only that last bucket — the one containing our own
//! id — splits when full (BEP 5), so the table knows many nodes near us and
//! a few far away.
//!
//! Node states (BEP 5): **good** if it answered within 15 minutes, or
//! answered once and queried us within 15 minutes; **bad** after 3 failed
//! queries in a row; otherwise **questionable**. A full bucket replaces a
//! bad node at once; with none, the caller pings the oldest questionable
//! node and the newcomer waits in a small replacement cache.
//!
//! Hardening: at most one node per IP address (per IP and port when local
//! addresses are allowed, since a test network shares 127.0.0.1); nodes in
//! ignored networks (the bogon list) are never inserted; an id already in
//! the table cannot be moved to another address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::krpc::{CompactNode, NodeId};
use crate::time::Instant;
use crate::IpFamily;

/// Nodes per bucket.
pub const K: usize = 8;
/// How long an answer keeps a node good.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// Failed queries in a row that make a node bad.
pub const MAX_FAILURES: u32 = 3;

/// An IPv4 or IPv6 network, for the ignore list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `addr/prefix`.
    pub const fn new(addr: IpAddr, prefix: u8) -> IpNet {
        IpNet { addr, prefix }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix.min(32)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix.min(128)))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            _ => false,
        }
    }
}

/// The networks no public DHT node lives in (bogons), ignored unless local
/// addresses are allowed.
pub fn bogons() -> Vec<IpNet> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let v4 = |a, b, c, d, p| IpNet::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), p);
    vec![
        v4(0, 0, 0, 0, 8),
        v4(10, 0, 0, 0, 8),
        v4(100, 64, 0, 0, 10),
        v4(127, 0, 0, 0, 8),
        v4(169, 254, 0, 0, 16),
        v4(172, 16, 0, 0, 12),
        v4(192, 0, 0, 0, 24),
        v4(192, 0, 2, 0, 24),
        v4(192, 168, 0, 0, 16),
        v4(198, 18, 0, 0, 15),
        v4(198, 51, 100, 0, 24),
        v4(203, 0, 113, 0, 24),
        v4(224, 0, 0, 0, 4),
        v4(240, 0, 0, 0, 4),
        v4(255, 255, 255, 255, 32),
        IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 128),
        IpNet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        // IPv4-mapped: an IPv4 address in IPv6 clothes would slip past the
        // IPv4 list above (and reaches IPv4 from a dual-stack socket).
        IpNet::new(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)), 96),
        IpNet::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)),
            32,
        ),
        IpNet::new(IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)), 8),
        IpNet::new(IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
        IpNet::new(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
    ]
}

/// Table settings.
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// Allow loopback and private addresses (tests, LANs); nodes are then
    /// told apart by address *and* port.
    pub allow_local: bool,
    /// Networks whose nodes are never inserted (ignored when
    /// `allow_local`).
    pub ignored: Vec<IpNet>,
    /// The family of the node's socket: BEP 32 keeps IPv4 and IPv6 nodes
    /// in separate tables, each node reaching only its own family.
    pub family: IpFamily,
}

impl Default for TableConfig {
    fn default() -> TableConfig {
        TableConfig {
            allow_local: false,
            ignored: bogons(),
            family: IpFamily::V4,
        }
    }
}

/// BEP 5 node states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Answered recently.
    Good,
    /// Not heard from in a while.
    Questionable,
    /// Failed repeatedly.
    Bad,
}

/// A node in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// Id and address.
    pub node: CompactNode,
    /// Last time it answered one of our queries.
    pub last_response: Option<Instant>,
    /// Last time it queried us.
    pub last_query: Option<Instant>,
    /// Failed queries in a row.
    pub failures: u32,
}

impl NodeEntry {
    /// Its BEP 5 state at `now`.
    pub fn state(&self, now: Instant) -> NodeState {
        if self.failures >= MAX_FAILURES {
            return NodeState::Bad;
        }
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < GOOD_FOR);
        if recent(self.last_response) || (self.last_response.is_some() && recent(self.last_query)) {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    nodes: Vec<NodeEntry>,
    replacements: Vec<NodeEntry>,
    last_changed: Option<Instant>,
}

/// What happened to a node offered to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Newly in a bucket.
    Added,
    /// Already there; its times were updated.
    Updated,
    /// The bucket is full of live nodes: the node waits in the replacement
    /// cache, and the caller should ping this questionable node (and report
    /// a timeout with [`RoutingTable::failed`] if it does not answer).
    Full {
        /// The node to check, if any is questionable.
        ping: Option<CompactNode>,
    },
    /// Not accepted.
    Rejected(Rejection),
}

/// Why a node was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// It is us.
    OwnId,
    /// Its address is in an ignored network.
    IgnoredNetwork,
    /// Another node already uses this address.
    AddressTaken,
    /// Its id is in the table at another address.
    IdMoved,
    /// Port 0.
    BadPort,
    /// An address of the other family (BEP 32: one table per family).
    OtherFamily,
}

/// Length of the common prefix of two ids, in bits (160 if equal).
pub fn common_prefix(a: &NodeId, b: &NodeId) -> usize {
    for (i, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        let d = x ^ y;
        if d != 0 {
            return i * 8 + d.leading_zeros() as usize;
        }
    }
    160
}

/// Key for the one-node-per-address rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum AddrKey {
    Ip(IpAddr),
    Socket(SocketAddr),
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own: NodeId,
    config: TableConfig,
    buckets: Vec<Bucket>,
    by_addr: BTreeMap<AddrKey, NodeId>,
    len: usize,
}

impl RoutingTable {
    /// An empty table around `own`.
    pub fn new(own: NodeId, config: TableConfig) -> RoutingTable {
        RoutingTable {
            own,
            config,
            buckets: vec![Bucket::default()],
            by_addr: BTreeMap::new(),
            len: 0,
        }
    }

    /// Our id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// Nodes in buckets (not counting replacement caches).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        common_prefix(&self.own, id).min(self.buckets.len() - 1)
    }

    fn addr_key(&self, addr: &SocketAddr) -> AddrKey {
        if self.config.allow_local {
            AddrKey::Socket(*addr)
        } else {
            AddrKey::Ip(addr.ip())
        }
    }

    /// Whether `addr` may be in the table at all.
    pub fn acceptable(&self, addr: &SocketAddr) -> Result<(), Rejection> {
        if addr.port() == 0 {
            return Err(Rejection::BadPort);
        }
        if !self.config.family.holds(addr) {
            return Err(Rejection::OtherFamily);
        }
        if !self.config.allow_local && self.config.ignored.iter().any(|n| n.contains(&addr.ip())) {
            return Err(Rejection::IgnoredNetwork);
        }
        Ok(())
    }

    fn find(&self, id: &NodeId) -> Option<(usize, usize)> {
        let b = self.bucket_index(id);
        self.buckets[b]
            .nodes
            .iter()
            .position(|n| n.node.id == *id)
            .map(|i| (b, i))
    }

    /// The entry for `id`, if in a bucket.
    pub fn get(&self, id: &NodeId) -> Option<&NodeEntry> {
        self.find(id).map(|(b, i)| &self.buckets[b].nodes[i])
    }

    /// Offers a node we heard from: `responded` if it answered our query,
    /// otherwise it queried us.
    pub fn insert(&mut self, now: Instant, node: CompactNode, responded: bool) -> Insert {
        if node.id == self.own {
            return Insert::Rejected(Rejection::OwnId);
        }
        if let Err(r) = self.acceptable(&node.addr) {
            return Insert::Rejected(r);
        }
        let key = self.addr_key(&node.addr);
        if let Some((b, i)) = self.find(&node.id) {
            let e = &mut self.buckets[b].nodes[i];
            if self.by_addr.get(&key) != Some(&node.id) {
                return Insert::Rejected(Rejection::IdMoved);
            }
            if responded {
                e.last_response = Some(now);
                e.failures = 0;
            } else {
                e.last_query = Some(now);
            }
            return Insert::Updated;
        }
        if let Some(&other) = self.by_addr.get(&key) {
            let same_socket = self.get(&other).is_some_and(|e| e.node.addr == node.addr);
            if !(responded && same_socket) {
                return Insert::Rejected(Rejection::AddressTaken);
            }
            // The node at this very address answered our query under a new
            // id (it restarted, or took a BEP 42 id): the old entry is dead.
            self.remove(&other);
        }
        let entry = NodeEntry {
            node,
            last_response: responded.then_some(now),
            last_query: (!responded).then_some(now),
            failures: 0,
        };
        loop {
            let b = self.bucket_index(&node.id);
            let last = self.buckets.len() - 1;
            let can_split = b == last && self.buckets.len() < 160;
            let bucket = &mut self.buckets[b];
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.last_changed = Some(now);
                self.by_addr.insert(key, node.id);
                self.len += 1;
                return Insert::Added;
            }
            if can_split {
                self.split();
                continue;
            }
            if let Some(i) = bucket
                .nodes
                .iter()
                .position(|n| n.state(now) == NodeState::Bad)
            {
                let gone = std::mem::replace(&mut bucket.nodes[i], entry);
                bucket.last_changed = Some(now);
                let gone_key = self.addr_key(&gone.node.addr);
                self.by_addr.remove(&gone_key);
                self.by_addr.insert(key, node.id);
                return Insert::Added;
            }
            let bucket = &mut self.buckets[b];
            let ping = bucket
                .nodes
                .iter()
                .filter(|n| n.state(now) == NodeState::Questionable)
                .min_by_key(|n| n.last_response.max(n.last_query))
                .map(|n| n.node);
            if !bucket.replacements.iter().any(|r| r.node.id == node.id) {
                if bucket.replacements.len() >= K {
                    bucket.replacements.remove(0);
                }
                bucket.replacements.push(entry);
            }
            return Insert::Full { ping };
        }
    }

    /// Splits the last bucket in two.
    fn split(&mut self) {
        let last = self.buckets.len() - 1;
        let old = std::mem::take(&mut self.buckets[last]);
        self.buckets.push(Bucket::default());
        for e in old.nodes {
            let b = self.bucket_index(&e.node.id);
            self.buckets[b].nodes.push(e);
        }
        for e in old.replacements {
            let b = self.bucket_index(&e.node.id);
            if self.buckets[b].replacements.len() < K {
                self.buckets[b].replacements.push(e);
            }
        }
        for b in [last, last + 1] {
            self.buckets[b].last_changed = old.last_changed;
        }
    }

    /// Drops `id` from its bucket.
    fn remove(&mut self, id: &NodeId) {
        let Some((b, i)) = self.find(id) else {
            return;
        };
        let gone = self.buckets[b].nodes.remove(i);
        let key = self.addr_key(&gone.node.addr);
        self.by_addr.remove(&key);
        self.len -= 1;
    }

    /// A query to `id` timed out. After [`MAX_FAILURES`] it is bad, and a
    /// cached replacement takes its place.
    pub fn failed(&mut self, now: Instant, id: &NodeId) {
        let Some((b, i)) = self.find(id) else {
            return;
        };
        let bucket = &mut self.buckets[b];
        bucket.nodes[i].failures += 1;
        if bucket.nodes[i].state(now) != NodeState::Bad {
            return;
        }
        // Newest replacement first: most likely still alive.
        while let Some(r) = bucket.replacements.pop() {
            let key = if self.config.allow_local {
                AddrKey::Socket(r.node.addr)
            } else {
                AddrKey::Ip(r.node.addr.ip())
            };
            if self.by_addr.contains_key(&key) {
                continue;
            }
            let gone = std::mem::replace(&mut bucket.nodes[i], r.clone());
            bucket.last_changed = Some(now);
            let gone_key = if self.config.allow_local {
                AddrKey::Socket(gone.node.addr)
            } else {
                AddrKey::Ip(gone.node.addr.ip())
            };
            self.by_addr.remove(&gone_key);
            self.by_addr.insert(key, r.node.id);
            return;
        }
    }

    /// Up to `n` live (not bad) nodes closest to `target`, closest first.
    ///
    /// Buckets are visited in distance order (see the module docs): the
    /// target's own bucket, then every deeper bucket, then shallower ones
    /// one by one, so a full table is answered from a handful of buckets.
    pub fn closest(&self, now: Instant, target: &NodeId, n: usize) -> Vec<CompactNode> {
        self.closest_where(target, n, |e| e.state(now) != NodeState::Bad)
    }

    /// Like [`closest`](RoutingTable::closest), but only nodes that
    /// answered us and have not failed since: what we give out in our
    /// answers. A node that only queried us may have a forged source
    /// address; handing it out would send every asker's queries to a
    /// victim that never asked (libtorrent's `find_node` likewise skips
    /// unconfirmed nodes).
    pub fn closest_answered(&self, target: &NodeId, n: usize) -> Vec<CompactNode> {
        self.closest_where(target, n, |e| e.last_response.is_some() && e.failures == 0)
    }

    fn closest_where(
        &self,
        target: &NodeId,
        n: usize,
        keep: impl Fn(&NodeEntry) -> bool,
    ) -> Vec<CompactNode> {
        let t = self.bucket_index(target);
        let mut out: Vec<(CompactNode, [u8; 20])> = Vec::with_capacity(n + K);
        let take = |bucket_range: std::ops::Range<usize>,
                    out: &mut Vec<(CompactNode, [u8; 20])>| {
            let start = out.len();
            for b in bucket_range {
                for e in &self.buckets[b].nodes {
                    if keep(e) {
                        out.push((e.node, e.node.id.distance(target)));
                    }
                }
            }
            out[start..].sort_unstable_by_key(|a| a.1);
        };
        take(t..t + 1, &mut out);
        if out.len() < n {
            take(t + 1..self.buckets.len(), &mut out);
        }
        let mut b = t;
        while out.len() < n && b > 0 {
            b -= 1;
            take(b..b + 1, &mut out);
        }
        out.truncate(n);
        out.into_iter().map(|(node, _)| node).collect()
    }

    /// Every node, bucket by bucket (for persistence and tests).
    pub fn nodes(&self) -> impl Iterator<Item = &NodeEntry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// Buckets not changed since `stale_before`, as (index, a random-able
    /// prefix length) for refresh lookups: the caller looks up a random id
    /// sharing `index` bits with ours.
    pub fn stale_buckets(&self, stale_before: Instant) -> Vec<usize> {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.last_changed.is_none_or(|t| t < stale_before))
            .map(|(i, _)| i)
            .collect()
    }

    /// A random id in bucket `index`'s range: our id's first `index` bits,
    /// the next one flipped (unless it is the last bucket), then random.
    pub fn random_id_in_bucket(&self, index: usize, random: [u8; 20]) -> NodeId {
        let mut id = random;
        let last = index + 1 >= self.buckets.len();
        for bit in 0..index.min(160) {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            id[byte] = (id[byte] & !mask) | (self.own.0[byte] & mask);
        }
        if !last && index < 160 {
            let (byte, mask) = (index / 8, 0x80u8 >> (index % 8));
            id[byte] = (id[byte] & !mask) | (!self.own.0[byte] & mask);
        }
        NodeId(id)
    }
}

#[cfg(test)]
mod tests;
