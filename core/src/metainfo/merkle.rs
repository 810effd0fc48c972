//! BEP 52 merkle trees: SHA-256 over 16 KiB leaves, two children to a
//! node.
//!
//! A file's `pieces root` is the root of the tree over its 16 KiB blocks
//! (the last may be shorter), leaves past the end of the file being 32
//! zero bytes up to the next power of two. A file larger than one piece
//! also has a *piece layer* in the torrent: the hashes of the subtrees
//! one piece wide, in order; the root over them, padded with the hash of
//! an all-zero-leaf subtree of one piece, is the pieces root again.

use sha2::{Digest, Sha256};

/// Bytes under one leaf.
pub const LEAF: usize = 16 * 1024;

/// A node of the tree.
pub type Hash = [u8; 32];

/// The leaf hash of a block of at most [`LEAF`] bytes.
pub fn leaf(block: &[u8]) -> Hash {
    Sha256::digest(block).into()
}

pub(crate) fn parent(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root over `layer` padded with `pad` to `width` nodes (a power of
/// two no smaller than the layer).
pub fn root(mut layer: Vec<Hash>, width: usize, pad: Hash) -> Hash {
    let width = width.max(layer.len()).next_power_of_two();
    layer.resize(width, pad);
    while layer.len() > 1 {
        layer = layer.chunks(2).map(|p| parent(&p[0], &p[1])).collect();
    }
    layer[0]
}

/// Every layer of the tree over `bottom` (a power of two wide), bottom
/// first, the root alone last.
pub fn layers(bottom: Vec<Hash>) -> Vec<Vec<Hash>> {
    let mut layers = vec![bottom];
    while let Some(top) = layers.last().filter(|l| l.len() > 1) {
        let up = top.chunks(2).map(|p| parent(&p[0], &p[1])).collect();
        layers.push(up);
    }
    layers
}

/// Bytes in, leaf hashes out: cut into 16 KiB leaves as they come, in
/// any chunks (the last leaf may be shorter).
#[derive(Clone, Debug, Default)]
pub struct Leaves {
    leaf: Sha256,
    in_leaf: usize,
    done: Vec<Hash>,
}

impl Leaves {
    /// The next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (LEAF - self.in_leaf).min(data.len());
            self.leaf.update(&data[..n]);
            self.in_leaf += n;
            data = &data[n..];
            if self.in_leaf == LEAF {
                self.done
                    .push(std::mem::take(&mut self.leaf).finalize().into());
                self.in_leaf = 0;
            }
        }
    }

    /// Every leaf hash, the short last one included.
    pub fn finish(mut self) -> Vec<Hash> {
        if self.in_leaf > 0 {
            self.done.push(self.leaf.finalize().into());
        }
        self.done
    }
}

/// The root of a subtree of `leaves` zero leaves (`leaves` a power of two).
pub fn zero_subtree(leaves: usize) -> Hash {
    let mut h = [0u8; 32];
    let mut n = 1;
    while n < leaves {
        h = parent(&h, &h);
        n *= 2;
    }
    h
}

/// A file's pieces root from its piece layer (`piece_length` a power of
/// two of at least [`LEAF`]).
pub fn root_from_piece_layer(layer: &[Hash], piece_length: u32) -> Hash {
    let pad = zero_subtree(piece_length as usize / LEAF);
    root(layer.to_vec(), layer.len(), pad)
}

/// The root over `data`'s leaves padded with zero leaves to `width`
/// leaves (rounded up to a power of two): a piece's hash with `width` its
/// leaf count, a file of at most one piece's root with `width` 0.
pub fn root_of_data(data: &[u8], width: usize) -> Hash {
    let leaves: Vec<Hash> = data.chunks(LEAF).map(leaf).collect();
    let leaves = if leaves.is_empty() {
        vec![[0; 32]]
    } else {
        leaves
    };
    let width = width.max(leaves.len());
    root(leaves, width, [0; 32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_one_block_file_is_its_leaf() {
        assert_eq!(root_of_data(b"abc", 0), leaf(b"abc"));
        // SHA-256("abc"), FIPS 180-2's example.
        assert_eq!(
            hex(&leaf(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_root_from_the_piece_layer_is_the_root_from_the_data() {
        // Three pieces of 32 KiB (two leaves each), the last one short.
        let piece = 2 * LEAF;
        let data: Vec<u8> = (0..(2 * piece + 5_000)).map(|i| (i * 7) as u8).collect();
        let layer: Vec<Hash> = data.chunks(piece).map(|p| root_of_data(p, 2)).collect();
        let from_layer = root_from_piece_layer(&layer, piece as u32);
        // Five leaves, padded with zero leaves to eight.
        assert_eq!(from_layer, root_of_data(&data, 0));
        assert_ne!(from_layer, root_of_data(&data[1..], 0));
    }

    #[test]
    fn zero_subtrees_double() {
        assert_eq!(zero_subtree(1), [0; 32]);
        assert_eq!(zero_subtree(2), parent(&[0; 32], &[0; 32]));
        let z2 = zero_subtree(2);
        assert_eq!(zero_subtree(4), parent(&z2, &z2));
    }
}
