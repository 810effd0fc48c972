//! The hash trees a v2 torrent's peers ask each other for (BEP 52 `hash
//! request`): each file's merkle tree from its piece layer up to its
//! `pieces root`, kept so requests are answered from memory.
//!
//! Layers below the piece layer (the 16 KiB leaves) are not kept: they
//! would cost 2 hashes per 16 KiB of content. Requests for them get a
//! `hash reject`, which BEP 52 allows ("clients are only required to
//! support setting the base layer to the leaf and piece layers"; a
//! requester falls back to other peers).

use std::collections::BTreeMap;

use super::merkle::{self, Hash, LEAF};
use crate::wire::HashRequest;

/// Most hashes answered for one request (BEP 52: "Length SHOULD NOT be
/// greater than 512"; libtorrent asks for no more): an answer then costs
/// about what a 16 KiB block does.
pub const MAX_ANSWER: usize = 512;

/// One file's tree above its piece layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTree {
    /// `layers[0]` is the piece layer padded to a power of two with the
    /// hash of an all-zero piece; each next layer is its parents; the
    /// last holds the root alone.
    layers: Vec<Vec<Hash>>,
    /// Layers between the leaves and the piece layer:
    /// log2(piece length / 16 KiB).
    piece_layer: u32,
    /// The file's pieces: the piece layer's real hashes.
    pieces: usize,
}

impl FileTree {
    /// From a file's piece layer (as the torrent's `piece layers` or a
    /// peer's `hashes` carried it).
    pub fn from_piece_layer(layer: &[Hash], piece_length: u32) -> FileTree {
        let width = layer.len().max(1).next_power_of_two();
        let mut bottom = layer.to_vec();
        bottom.resize(width, merkle::zero_subtree(piece_length as usize / LEAF));
        FileTree {
            layers: merkle::layers(bottom),
            piece_layer: (piece_length as usize / LEAF).trailing_zeros(),
            pieces: layer.len(),
        }
    }

    /// The piece layer, as a .torrent's `piece layers` holds it.
    pub fn piece_layer(&self) -> Vec<u8> {
        self.layers[0][..self.pieces].concat()
    }

    /// The file's `pieces root`.
    pub fn root(&self) -> Hash {
        self.layers
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or([0; 32])
    }

    /// The answer to `request` (the hashes, then their uncles lowest
    /// first, as libtorrent counts them: [`HashRequest::uncle_count`]), or
    /// `None` for a request this tree cannot serve: a layer below the
    /// piece layer, more than [`MAX_ANSWER`] hashes or past the layer's
    /// end, a length not a power of two of at least two or an index not a
    /// multiple of it, proof above the root.
    pub fn hashes(&self, request: &HashRequest) -> Option<Vec<Hash>> {
        let rel = request.base_layer.checked_sub(self.piece_layer)? as usize;
        let layer = self.layers.get(rel)?;
        let (index, length) = (request.index as usize, request.length as usize);
        if length == 0 || length > MAX_ANSWER || index.checked_add(length)? > layer.len() {
            return None;
        }
        // BEP 52: a power of two (the layers are padded, so none is cut
        // short by its end; libtorrent asks for a single hash at a layer's
        // last chunk) and "Index MUST be a multiple of length".
        if !length.is_power_of_two() || !index.is_multiple_of(length) {
            return None;
        }
        let mut out = layer[index..index + length].to_vec();
        for j in request.uncle_layers() {
            // Each uncle lies below the root (which has no sibling).
            let at = rel + j as usize;
            if at + 1 >= self.layers.len() {
                return None;
            }
            out.push(*self.layers[at].get((index >> j) ^ 1)?);
        }
        Some(out)
    }
}

/// The root an answer to `request` proves (the hashes, then their
/// uncles lowest first): what a requester compares with the file's
/// `pieces root` before trusting the hashes. `pad` fills a layer cut short
/// by its end (the hash of an all-zero subtree of the base layer's
/// width). `None` when the answer has the wrong number of hashes or the
/// request is not aligned (BEP 52: "Index MUST be a multiple of length").
pub fn implied_root(request: &HashRequest, answer: &[Hash], pad: Hash) -> Option<Hash> {
    let length = request.length as usize;
    let width = length.checked_next_power_of_two()?;
    let uncles = request.uncle_count() as usize;
    if length == 0 || answer.len() != length.checked_add(uncles)? {
        return None;
    }
    if !(request.index as usize).is_multiple_of(width) {
        return None;
    }
    let mut nodes = answer[..length].to_vec();
    nodes.resize(width, pad);
    while nodes.len() > 1 {
        nodes = nodes
            .chunks(2)
            .map(|p| merkle::parent(&p[0], &p[1]))
            .collect();
    }
    let mut node = nodes[0];
    let mut at = request.index as usize / width;
    for uncle in &answer[length..] {
        node = if at.is_multiple_of(2) {
            merkle::parent(&node, uncle)
        } else {
            merkle::parent(uncle, &node)
        };
        at /= 2;
    }
    Some(node)
}

/// Every file tree of a torrent, by `pieces root` (files of equal content
/// share one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTrees(BTreeMap<Hash, FileTree>);

impl FileTrees {
    /// The trees of a torrent's piece layers (`root` → the layer's
    /// hashes, already checked to hash to `root`).
    pub fn from_layers<'a>(
        layers: impl IntoIterator<Item = (&'a Hash, &'a [u8])>,
        piece_length: u32,
    ) -> FileTrees {
        let trees = layers.into_iter().map(|(root, bytes)| {
            let hashes: Vec<Hash> = bytes
                .chunks_exact(32)
                .filter_map(|h| h.try_into().ok())
                .collect();
            (*root, FileTree::from_piece_layer(&hashes, piece_length))
        });
        FileTrees(trees.collect())
    }

    /// The answer to a peer's hash request, `None` to reject it.
    pub fn hashes(&self, request: &HashRequest) -> Option<Vec<Hash>> {
        self.0.get(&request.pieces_root)?.hashes(request)
    }

    /// The sibling of node `index` of `layer` (0: the piece layer) in the
    /// tree under `root`, if that layer is below the root.
    pub fn uncle(&self, root: &Hash, layer: usize, index: usize) -> Option<Hash> {
        let t = self.0.get(root)?;
        if layer + 1 >= t.layers.len() {
            return None;
        }
        t.layers[layer].get(index ^ 1).copied()
    }

    /// Every tree's root and piece layer, in root order (a .torrent's
    /// `piece layers`).
    pub fn piece_layers(&self) -> impl Iterator<Item = (&Hash, Vec<u8>)> {
        self.0.iter().map(|(root, t)| (root, t.piece_layer()))
    }

    /// How many requests of [`MAX_ANSWER`] hashes fetch every layer.
    pub fn chunks(&self) -> u32 {
        let chunks = self.0.values().map(|t| t.pieces.div_ceil(MAX_ANSWER));
        u32::try_from(chunks.sum::<usize>()).unwrap_or(u32::MAX)
    }

    /// Whether there is none (a v1 torrent, or a v2 one whose files are
    /// all at most one piece).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u32 = 4 * LEAF as u32;

    fn layer(n: u8) -> Vec<Hash> {
        (0..n).map(|i| [i + 1; 32]).collect()
    }

    fn request(base_layer: u32, index: u32, length: u32, proof_layers: u32) -> HashRequest {
        HashRequest {
            pieces_root: [0; 32],
            base_layer,
            index,
            length,
            proof_layers,
        }
    }

    fn root_from(answer: &[Hash], r: &HashRequest) -> Hash {
        implied_root(r, answer, [0; 32]).unwrap()
    }

    #[test]
    fn the_root_is_the_piece_layers_root() {
        let l = layer(5);
        let t = FileTree::from_piece_layer(&l, PIECE);
        assert_eq!(t.root(), merkle::root_from_piece_layer(&l, PIECE));
        assert_eq!(t.piece_layer, 2);
    }

    #[test]
    fn answers_prove_the_hashes_against_the_root() {
        let l = layer(13);
        let t = FileTree::from_piece_layer(&l, PIECE);
        // The whole padded layer (16) needs no uncle; libtorrent asks so.
        let whole = request(2, 0, 16, 3);
        let a = t.hashes(&whole).unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(&a[..13], &l[..]);
        assert_eq!(root_from(&a, &whole), t.root());
        // Two hashes and every uncle up to the root.
        for index in [0, 2, 8, 12] {
            let r = request(2, index, 2, 3);
            let a = t.hashes(&r).unwrap();
            assert_eq!(a.len(), 2 + 3, "index {index}");
            assert_eq!(&a[..2], &t.layers[0][index as usize..index as usize + 2]);
            assert_eq!(root_from(&a, &r), t.root(), "index {index}");
        }
        // One hash: its sibling, then one uncle per layer up.
        for index in [0, 5, 12] {
            let r = request(2, index, 1, 3);
            let a = t.hashes(&r).unwrap();
            assert_eq!(a.len(), 1 + 4, "index {index}");
            assert_eq!(root_from(&a, &r), t.root(), "index {index}");
        }
        // Four hashes one layer up.
        let r = request(3, 4, 4, 2);
        let a = t.hashes(&r).unwrap();
        assert_eq!(a.len(), 4 + 1);
        assert_eq!(root_from(&a, &r), t.root());
    }

    #[test]
    fn requests_it_cannot_serve_are_refused() {
        let t = FileTree::from_piece_layer(&layer(13), PIECE);
        // The leaves are not kept.
        assert_eq!(t.hashes(&request(0, 0, 4, 0)), None);
        // Past the layer's end, nothing, too many.
        assert_eq!(t.hashes(&request(2, 14, 4, 0)), None);
        assert_eq!(t.hashes(&request(2, 0, 0, 0)), None);
        let wide = FileTree::from_piece_layer(&vec![[1; 32]; 2000], PIECE);
        assert!(wide.hashes(&request(2, 0, 512, 0)).is_some());
        assert_eq!(wide.hashes(&request(2, 0, 1024, 0)), None);
        assert_eq!(t.hashes(&request(2, u32::MAX, 2, 0)), None);
        // Not a power of two, not aligned.
        assert_eq!(t.hashes(&request(2, 0, 3, 0)), None);
        assert_eq!(t.hashes(&request(2, 2, 4, 0)), None);
        // Proof above the root.
        assert_eq!(t.hashes(&request(2, 0, 2, 4)), None);
        // Above the root's layer.
        assert_eq!(t.hashes(&request(7, 0, 1, 0)), None);
    }
}
