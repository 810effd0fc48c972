//! BEP 52's merkle hash messages: `hash request` (21), `hashes` (22) and
//! `hash reject` (23), which v2 peers use to trade the hashes a `.torrent`
//! does not carry (the piece layers, for a torrent added by magnet link)
//! or that pin a failed piece's bad block (the leaf layer).
//!
//! All three start with the same 48 bytes: the file's `pieces root`, the
//! base layer (0: the 16 KiB leaves), the index of the first hash in that
//! layer, how many, and how many layers of proof above them. `hashes`
//! then carries the requested hashes followed by one uncle hash per proof
//! layer that the requested hashes do not already cover, lowest first.

use bytes::Bytes;

use crate::coding::Reader;
use crate::error::DecodeError;
use crate::metainfo::merkle::Hash;

/// Bytes of the fields every hash message starts with.
pub const HASH_REQUEST_LEN: usize = 32 + 4 * 4;
/// Most hashes (requested and uncles) a `hashes` message may carry: BEP 52
/// says requests SHOULD NOT ask for more than 512; libtorrent answers up
/// to 8192, and uncles add at most one per layer.
pub const MAX_HASHES: usize = 8192 + 64;

/// A `hash request` / `hash reject`, and the head of `hashes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashRequest {
    /// The file's merkle root (its `pieces root`).
    pub pieces_root: Hash,
    /// Layers above the leaves the requested hashes are in (0: leaves).
    pub base_layer: u32,
    /// The first requested hash's offset in its layer.
    pub index: u32,
    /// How many hashes of the base layer.
    pub length: u32,
    /// Ancestor layers whose uncles prove the hashes against the root.
    pub proof_layers: u32,
}

impl HashRequest {
    /// Appends the 48 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.pieces_root);
        for n in [self.base_layer, self.index, self.length, self.proof_layers] {
            out.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// Reads the 48 bytes.
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<HashRequest, DecodeError> {
        Ok(HashRequest {
            pieces_root: r.array("hash request pieces root")?,
            base_layer: r.be_u32("hash request base layer")?,
            index: r.be_u32("hash request index")?,
            length: r.be_u32("hash request length")?,
            proof_layers: r.be_u32("hash request proof layers")?,
        })
    }

    /// The layers (counted from the base layer) whose uncle the answer
    /// carries, lowest first: the requested hashes cover log2(length)
    /// layers themselves (BEP 52: "the first log2(length)-1 proof layers
    /// are omitted"), and each layer up to `proof_layers` adds the sibling
    /// of the node covering them there, so a single hash's first uncle is
    /// its own sibling. libtorrent counts them so
    /// (`hash_picker::add_hashes`).
    pub fn uncle_layers(&self) -> std::ops::Range<u32> {
        let covered = self.length.max(1).next_power_of_two().trailing_zeros();
        covered..self.proof_layers.saturating_add(1).max(covered)
    }

    /// How many uncle hashes answer it ([`uncle_layers`](Self::uncle_layers)).
    pub fn uncle_count(&self) -> u32 {
        self.uncle_layers().len() as u32
    }
}

/// The hashes of a `hashes` message (32 bytes each), as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashList(pub Bytes);

impl HashList {
    /// The `i`-th hash.
    pub fn get(&self, i: usize) -> Option<Hash> {
        let at = i.checked_mul(32)?;
        self.0.get(at..at + 32)?.try_into().ok()
    }

    /// How many hashes.
    pub fn len(&self) -> usize {
        self.0.len() / 32
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All of them.
    pub fn to_vec(&self) -> Vec<Hash> {
        (0..self.len()).filter_map(|i| self.get(i)).collect()
    }

    /// From hashes (for sending).
    pub fn from_hashes(hashes: &[Hash]) -> HashList {
        HashList(Bytes::from(hashes.concat()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(length: u32, proof_layers: u32) -> HashRequest {
        HashRequest {
            pieces_root: [7; 32],
            base_layer: 2,
            index: 0,
            length,
            proof_layers,
        }
    }

    #[test]
    fn uncles_skip_the_layers_the_hashes_cover() {
        // Two hashes give their parent: the first proof layer needs its
        // sibling, each one above another.
        assert_eq!(req(2, 1).uncle_count(), 1);
        assert_eq!(req(2, 4).uncle_count(), 4);
        // 64 hashes cover 6 layers; 5 proof layers are all covered
        // (libtorrent asks a 48-piece file's whole layer so).
        assert_eq!(req(64, 5).uncle_count(), 0);
        assert_eq!(req(64, 7).uncle_count(), 2);
        assert_eq!(req(512, 0).uncle_count(), 0);
        // A layer cut short by its end counts as the next power of two.
        assert_eq!(req(3, 3).uncle_count(), 2);
        // One hash (libtorrent's last chunk of a 513-piece layer): its
        // sibling first.
        assert_eq!(req(1, 0).uncle_count(), 1);
        assert_eq!(req(1, 9).uncle_count(), 10);
        assert_eq!(req(1, 9).uncle_layers(), 0..10);
    }

    #[test]
    fn a_request_round_trips() {
        let r = HashRequest {
            pieces_root: [0xab; 32],
            base_layer: 3,
            index: 512,
            length: 512,
            proof_layers: 9,
        };
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out.len(), HASH_REQUEST_LEN);
        assert_eq!(HashRequest::decode(&mut Reader::new(&out)), Ok(r));
    }
}
