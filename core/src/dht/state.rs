//! The DHT state file: what a node keeps across restarts so that it comes
//! back under the same id (BEP 5 asks for a stable id) and rejoins from the
//! nodes it knew instead of from the routers.
//!
//! BEP 32 runs one node per address family, each with its own id and
//! routing table, so the file holds up to two parts: `id` and `nodes`
//! (26-byte entries: id and compact IPv4 address) for the IPv4 node, `id6`
//! and `nodes6` (38-byte entries) for the IPv6 node. Files written before
//! the IPv6 node existed hold only the first part and load as before.

use std::net::SocketAddr;

use super::node::{Dht, MAX_STATE_NODES};
use crate::bencode::{self, Value};
use crate::compact::{V4_LEN, V6_LEN};
use crate::krpc::NodeId;
use crate::IpFamily;

/// One node's part of the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedNode {
    /// The node's id.
    pub id: NodeId,
    /// The nodes it knew, with their ids (at most [`MAX_STATE_NODES`], all
    /// of the node's family, none on port 0).
    pub nodes: Vec<(NodeId, SocketAddr)>,
}

impl SavedNode {
    /// The nodes' addresses: what a restart bootstraps from (the ids are
    /// not trusted; the nodes answer with their own).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|(_, a)| *a).collect()
    }
}

/// A whole state file: the IPv4 node's part and the IPv6 node's part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedDht {
    /// The IPv4 node's part.
    pub v4: Option<SavedNode>,
    /// The IPv6 node's part.
    pub v6: Option<SavedNode>,
}

/// The file's keys for one family: id, nodes, and an entry's length.
fn keys(family: IpFamily) -> (&'static [u8], &'static [u8], usize) {
    match family {
        IpFamily::V4 => (b"id", b"nodes", 20 + V4_LEN),
        IpFamily::V6 => (b"id6", b"nodes6", 20 + V6_LEN),
    }
}

impl SavedDht {
    /// The state of running `nodes` (each goes in its family's part; a
    /// second node of one family replaces the first).
    pub fn of<'a>(nodes: impl IntoIterator<Item = &'a Dht>) -> SavedDht {
        let mut saved = SavedDht::default();
        for dht in nodes {
            let family = dht.family();
            let part = SavedNode {
                id: dht.id(),
                nodes: dht
                    .table()
                    .nodes()
                    .map(|e| (e.node.id, e.node.addr))
                    .filter(|(_, a)| family.holds(a) && a.port() != 0)
                    .take(MAX_STATE_NODES)
                    .collect(),
            };
            *saved.part_mut(family) = Some(part);
        }
        saved
    }

    /// The part of `family`'s node.
    pub fn part(&self, family: IpFamily) -> Option<&SavedNode> {
        match family {
            IpFamily::V4 => self.v4.as_ref(),
            IpFamily::V6 => self.v6.as_ref(),
        }
    }

    fn part_mut(&mut self, family: IpFamily) -> &mut Option<SavedNode> {
        match family {
            IpFamily::V4 => &mut self.v4,
            IpFamily::V6 => &mut self.v6,
        }
    }

    /// This state over `old` (the file as it was read at start): a family
    /// whose node did not run keeps its old part, and a node that met
    /// nobody this time (no connectivity on that family) keeps the nodes
    /// it was saved with, so a run without IPv6 does not cost the next
    /// one its IPv6 id and nodes.
    pub fn merged_over(&self, old: &SavedDht) -> SavedDht {
        let mut out = self.clone();
        for family in IpFamily::ALL {
            let Some(before) = old.part(family) else {
                continue;
            };
            let part = out.part_mut(family);
            match part {
                None => *part = Some(before.clone()),
                Some(now) if now.nodes.is_empty() && now.id == before.id => {
                    now.nodes = before.nodes.clone();
                }
                Some(_) => {}
            }
        }
        out
    }

    /// The file's bytes. Nodes of the wrong family or on port 0 are left
    /// out, and at most [`MAX_STATE_NODES`] per part are written.
    pub fn encode(&self) -> Vec<u8> {
        let mut lists: Vec<(IpFamily, NodeId, Vec<u8>)> = Vec::new();
        for family in IpFamily::ALL {
            let Some(part) = self.part(family) else {
                continue;
            };
            let nodes: Vec<u8> = part
                .nodes
                .iter()
                .filter(|(_, a)| family.holds(a) && a.port() != 0)
                .take(MAX_STATE_NODES)
                .flat_map(|(id, addr)| {
                    let mut v = id.0.to_vec();
                    crate::compact::encode(&mut v, addr);
                    v
                })
                .collect();
            lists.push((family, part.id, nodes));
        }
        let mut entries = Vec::new();
        for (family, id, nodes) in &lists {
            let (id_key, nodes_key, _) = keys(*family);
            entries.push((id_key, Value::bytes(&id.0)));
            entries.push((nodes_key, Value::bytes(nodes)));
        }
        Value::dict(entries).to_vec()
    }

    /// Reads a state file (outside data: a part holds at most
    /// [`MAX_STATE_NODES`] nodes, since each costs a query at start).
    /// `None` if it does not parse or holds no id at all.
    pub fn decode(bytes: &[u8]) -> Option<SavedDht> {
        let root = bencode::decode(bytes).ok()?;
        let d = root.as_dict()?;
        let mut saved = SavedDht::default();
        for family in IpFamily::ALL {
            let (id_key, nodes_key, entry) = keys(family);
            let Some(id) = d
                .get(id_key)
                .and_then(Value::as_bytes)
                .and_then(|b| <[u8; 20]>::try_from(b).ok())
            else {
                continue;
            };
            let nodes = d
                .get(nodes_key)
                .and_then(Value::as_bytes)
                .unwrap_or(&[])
                .chunks_exact(entry)
                .filter_map(|c| {
                    let id: [u8; 20] = c[..20].try_into().ok()?;
                    let addr = crate::compact::decode_entry(&c[20..])?;
                    Some((NodeId(id), addr))
                })
                .take(MAX_STATE_NODES)
                .collect();
            *saved.part_mut(family) = Some(SavedNode {
                id: NodeId(id),
                nodes,
            });
        }
        (saved.v4.is_some() || saved.v6.is_some()).then_some(saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u8, addrs: &[&str]) -> SavedNode {
        SavedNode {
            id: NodeId([id; 20]),
            nodes: addrs
                .iter()
                .enumerate()
                .map(|(i, a)| (NodeId([i as u8; 20]), a.parse().unwrap()))
                .collect(),
        }
    }

    #[test]
    fn both_families_round_trip() {
        let saved = SavedDht {
            v4: Some(part(1, &["10.0.0.1:6881", "10.0.0.2:6882"])),
            v6: Some(part(2, &["[2001:db8::1]:6881"])),
        };
        assert_eq!(SavedDht::decode(&saved.encode()), Some(saved));
    }

    #[test]
    fn an_ipv4_only_file_from_before_bep_32_loads() {
        let mut bytes = b"d2:id20:".to_vec();
        bytes.extend_from_slice(&[7; 20]);
        bytes.extend_from_slice(b"5:nodes26:");
        bytes.extend_from_slice(&[9; 20]);
        bytes.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1]);
        bytes.push(b'e');
        let saved = SavedDht::decode(&bytes).unwrap();
        assert_eq!(saved.v6, None);
        let v4 = saved.v4.unwrap();
        assert_eq!(v4.id, NodeId([7; 20]));
        assert_eq!(v4.addrs(), vec!["10.0.0.1:6881".parse().unwrap()]);
    }

    #[test]
    fn wrong_families_and_port_0_are_not_written() {
        let saved = SavedDht {
            v4: Some(part(
                1,
                &["10.0.0.1:6881", "[2001:db8::1]:6881", "10.0.0.3:0"],
            )),
            v6: None,
        };
        let back = SavedDht::decode(&saved.encode()).unwrap();
        assert_eq!(
            back.v4.unwrap().addrs(),
            vec!["10.0.0.1:6881".parse().unwrap()]
        );
    }

    #[test]
    fn a_run_without_a_family_keeps_its_saved_part() {
        let old = SavedDht {
            v4: Some(part(1, &["10.0.0.1:6881"])),
            v6: Some(part(2, &["[2001:db8::1]:6881"])),
        };
        // No IPv6 node this time: its part stays.
        let only_v4 = SavedDht {
            v4: Some(part(1, &["10.0.0.9:6881"])),
            v6: None,
        };
        let merged = only_v4.merged_over(&old);
        assert_eq!(merged.v4, only_v4.v4);
        assert_eq!(merged.v6, old.v6);
        // An IPv6 node that met nobody keeps the nodes it started from.
        let lonely = SavedDht {
            v4: only_v4.v4.clone(),
            v6: Some(part(2, &[])),
        };
        assert_eq!(lonely.merged_over(&old).v6, old.v6);
    }

    #[test]
    fn junk_and_id_less_files_do_not_load() {
        assert_eq!(SavedDht::decode(b"junk"), None);
        assert_eq!(SavedDht::decode(b"d5:nodes0:e"), None);
        assert_eq!(SavedDht::decode(b"d2:id3:abce"), None);
    }
}
