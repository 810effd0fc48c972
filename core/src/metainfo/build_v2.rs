//! Building BEP 52 torrents: v2-only and hybrid (v1 + v2).
//!
//! Both lay files out on piece boundaries: a padding file (BEP 47) after
//! each file that does not end on one — between files for a hybrid, whose
//! v1 `files` list carries them; after every file, the last included, for
//! v2-only, as bittide and libtorrent read one. The caller hashes each
//! piece of [`TorrentBuilder::layout`] as for v1, and also its v2 digest
//! ([`V2Piece`], from [`V2PieceHasher`]): the merkle root of the file
//! bytes in it, and for a file no longer than a piece the file's own root.
//! [`TorrentBuilder::build_v2`] then makes the `file tree`, the `piece
//! layers` and, for a hybrid, the v1 half.

use std::collections::BTreeMap;

use super::build::TorrentBuilder;
use super::merkle::{self, Hash, Leaves, LEAF};
use crate::bencode::Value;
use crate::error::UsageError;

/// Which kind of torrent a [`TorrentBuilder`] makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TorrentFormat {
    /// BEP 3: SHA-1 piece hashes, files end to end.
    #[default]
    V1,
    /// BEP 52 and BEP 3 in one: files on piece boundaries, both halves.
    Hybrid,
    /// BEP 52 only.
    V2,
}

/// The v2 digest of one piece (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V2Piece {
    /// The root over the piece's leaves, padded to the piece's width.
    pub piece_root: Hash,
    /// For a piece holding a whole file of at most one piece: the file's
    /// pieces root (its leaves padded to the next power of two).
    pub file_root: Option<Hash>,
}

/// Hashes one piece's file bytes (padding left out) into a [`V2Piece`].
#[derive(Clone, Debug)]
pub struct V2PieceHasher {
    leaves: Leaves,
    width: usize,
    whole_file: bool,
}

impl V2PieceHasher {
    /// A hasher for a piece of `piece_length` bytes; `whole_file` when the
    /// piece holds a whole file.
    pub fn new(piece_length: u32, whole_file: bool) -> V2PieceHasher {
        V2PieceHasher {
            leaves: Leaves::default(),
            width: (piece_length as usize / LEAF).max(1),
            whole_file,
        }
    }

    /// The next file bytes of the piece.
    pub fn update(&mut self, data: &[u8]) {
        self.leaves.update(data);
    }

    /// The piece's digest.
    pub fn finish(self) -> V2Piece {
        let mut leaves = self.leaves.finish();
        if leaves.is_empty() {
            leaves.push([0; 32]);
        }
        let file_root = self
            .whole_file
            .then(|| merkle::root(leaves.clone(), 0, [0; 32]));
        V2Piece {
            piece_root: merkle::root(leaves, self.width, [0; 32]),
            file_root,
        }
    }
}

/// A node of the file tree being built.
enum Node<'a> {
    File { length: u64, root: Option<Hash> },
    Folder(BTreeMap<&'a [u8], Node<'a>>),
}

impl<'a> Node<'a> {
    fn to_value(&'a self) -> Value<'a> {
        match self {
            Node::File { length, root } => {
                let mut leaf = vec![(&b"length"[..], int(*length))];
                if let Some(r) = root {
                    leaf.push((b"pieces root", Value::bytes(r)));
                }
                Value::dict(vec![(&b""[..], Value::dict(leaf))])
            }
            Node::Folder(children) => {
                Value::dict(children.iter().map(|(k, n)| (*k, n.to_value())).collect())
            }
        }
    }
}

fn int(n: u64) -> Value<'static> {
    Value::int(i64::try_from(n).unwrap_or(i64::MAX))
}

impl TorrentBuilder {
    /// The .torrent bytes of a hybrid or v2-only torrent, given each
    /// piece's SHA-1 (`v1`; empty for v2-only) and v2 digest, in piece
    /// order of [`layout`](TorrentBuilder::layout).
    pub fn build_v2(&self, v1: &[[u8; 20]], v2: &[V2Piece]) -> Result<Vec<u8>, UsageError> {
        if self.format() == TorrentFormat::V1 {
            return Err(UsageError::FormatMismatch);
        }
        let layout = self.layout()?;
        let count = u64::from(layout.piece_count());
        let hybrid = self.format() == TorrentFormat::Hybrid;
        if v2.len() as u64 != count || (hybrid && v1.len() as u64 != count) {
            return Err(UsageError::PieceHashCount {
                expected: count,
                given: v2.len() as u64,
            });
        }
        // Each real file's pieces root, and its layer when longer than a
        // piece.
        let piece = u64::from(layout.piece_length());
        let mut roots: Vec<Option<Hash>> = Vec::new();
        let mut layers: Vec<(Hash, Vec<u8>)> = Vec::new();
        let mut index_of = vec![None; self.real_files().count()];
        for (i, (file, _, _)) in self.padded_entries().iter().enumerate() {
            if let Some(f) = file {
                index_of[*f] = Some(i);
            }
        }
        for (file, f) in self.real_files().enumerate() {
            let Some(index) = index_of[file] else {
                roots.push(None);
                continue;
            };
            let pieces = layout.file_pieces(index);
            if f.1 == 0 || pieces.is_empty() {
                roots.push(None);
                continue;
            }
            let digests = &v2[pieces.start.0 as usize..pieces.end.0 as usize];
            if f.1 <= piece {
                roots.push(digests[0].file_root);
                continue;
            }
            let layer: Vec<Hash> = digests.iter().map(|d| d.piece_root).collect();
            let root = merkle::root_from_piece_layer(&layer, layout.piece_length());
            layers.push((root, layer.concat()));
            roots.push(Some(root));
        }
        let mut tree: BTreeMap<&[u8], Node<'_>> = BTreeMap::new();
        for ((path, length), root) in self.real_files().zip(&roots) {
            let parts: Vec<&[u8]> = match path.is_empty() {
                true => vec![self.name().as_bytes()],
                false => path.iter().map(|c| c.as_bytes()).collect(),
            };
            insert(&mut tree, &parts, length, *root);
        }
        let tree = Node::Folder(tree);
        let pad_names: Vec<(String, u64)> = self
            .padded_entries()
            .iter()
            .filter(|(_, _, pad)| *pad)
            .map(|(_, len, _)| (len.to_string(), *len))
            .collect();
        let pieces: Vec<u8> = v1.concat();
        let mut info = vec![
            (&b"file tree"[..], tree.to_value()),
            (b"meta version", Value::int(2)),
            (b"name", Value::bytes(self.name().as_bytes())),
            (
                b"piece length",
                Value::int(i64::from(layout.piece_length())),
            ),
        ];
        if hybrid {
            info.push((b"pieces", Value::bytes(&pieces)));
            if self.is_single_file() {
                info.push((b"length", int(layout.total_length())));
            } else {
                let mut pads = pad_names.iter();
                let entries = self
                    .padded_entries()
                    .into_iter()
                    .filter_map(|(file, len, pad)| {
                        if pad {
                            let (name, _) = pads.next()?;
                            return Some(Value::dict(vec![
                                (&b"attr"[..], Value::bytes(b"p")),
                                (b"length", int(len)),
                                (
                                    b"path",
                                    Value::list(vec![
                                        Value::bytes(b".pad"),
                                        Value::bytes(name.as_bytes()),
                                    ]),
                                ),
                            ]));
                        }
                        let path = self.file_path(file?);
                        Some(Value::dict(vec![
                            (&b"length"[..], int(len)),
                            (
                                b"path",
                                Value::list(
                                    path.iter().map(|c| Value::bytes(c.as_bytes())).collect(),
                                ),
                            ),
                        ]))
                    })
                    .collect();
                info.push((b"files", Value::list(entries)));
            }
        }
        if self.is_private() {
            info.push((b"private", Value::int(1)));
        }
        let layer_values = Value::dict(
            layers
                .iter()
                .map(|(r, l)| (&r[..], Value::bytes(l)))
                .collect(),
        );
        let mut root = self.outer_fields();
        root.push((b"info", Value::dict(info)));
        root.push((b"piece layers", layer_values));
        Ok(Value::dict(root).to_vec())
    }
}

fn insert<'a>(
    tree: &mut BTreeMap<&'a [u8], Node<'a>>,
    parts: &[&'a [u8]],
    length: u64,
    root: Option<Hash>,
) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        tree.insert(first, Node::File { length, root });
        return;
    }
    let node = tree
        .entry(first)
        .or_insert_with(|| Node::Folder(BTreeMap::new()));
    if let Node::Folder(children) = node {
        insert(children, rest, length, root);
    }
}

#[cfg(test)]
mod tests {
    use sha1::{Digest, Sha1};

    use super::*;
    use crate::metainfo::{Metainfo, PieceIndex};

    /// Builds `files` in `format` hashing the pieces in memory, as
    /// `bittide create` does from disk; returns the .torrent and the
    /// content laid out (padding as zeros).
    fn build(format: TorrentFormat, files: &[(&str, Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
        let mut b = TorrentBuilder::multi_file("top");
        for (name, data) in files {
            b.add_file(
                name.split('/').map(str::to_owned).collect(),
                data.len() as u64,
            );
        }
        b.set_piece_length(2 * LEAF as u32).set_format(format);
        let layout = b.layout().unwrap();
        let mut laid = Vec::new();
        let mut real = files.iter();
        for i in 0..layout.file_count() {
            let len = layout.file_range(i).map_or(0, |r| r.end - r.start) as usize;
            match layout.is_padding(i) {
                true => laid.resize(laid.len() + len, 0),
                false => laid.extend_from_slice(&real.next().unwrap().1),
            }
        }
        let (mut v1, mut v2) = (Vec::new(), Vec::new());
        for p in 0..layout.piece_count() {
            let mut sha = Sha1::new();
            let mut tree = None;
            for s in layout.piece_slices(PieceIndex(p)) {
                let start = layout.file_range(s.file).unwrap().start + s.offset;
                let bytes = &laid[start as usize..(start + s.length) as usize];
                sha.update(bytes);
                if !s.padding {
                    let len = layout.file_range(s.file).map_or(0, |r| r.end - r.start);
                    let whole = s.offset == 0 && s.length == len;
                    tree.get_or_insert_with(|| V2PieceHasher::new(layout.piece_length(), whole))
                        .update(bytes);
                }
            }
            v1.push(sha.finalize().into());
            v2.push(tree.unwrap().finish());
        }
        let v1 = if format == TorrentFormat::Hybrid {
            v1
        } else {
            Vec::new()
        };
        (b.build_v2(&v1, &v2).unwrap(), laid)
    }

    fn data(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(13) ^ salt)
            .collect()
    }

    #[test]
    fn built_torrents_parse_and_their_pieces_check() {
        let files = [
            ("a/big", data(5 * LEAF + 7, 1)),
            ("a/empty", Vec::new()),
            ("small", data(100, 2)),
            ("z", data(2 * LEAF, 3)),
        ];
        for format in [TorrentFormat::Hybrid, TorrentFormat::V2] {
            let (bytes, laid) = build(format, &files);
            let m = Metainfo::from_bytes_strict(&bytes).unwrap();
            assert_eq!(m.info.is_hybrid(), format == TorrentFormat::Hybrid);
            assert_eq!(m.info.is_v2_only(), format == TorrentFormat::V2);
            let hashes = m.piece_hashes().unwrap();
            let layout = m.info.layout();
            assert_eq!(hashes.len() as u32, layout.piece_count());
            for (p, h) in hashes.iter().enumerate() {
                let start = layout.piece_offset(PieceIndex(p as u32)) as usize;
                let size = layout.piece_size(PieceIndex(p as u32)) as usize;
                let piece = &laid[start..start + size];
                assert!(h.matches([piece]), "{format:?} piece {p}");
                let mut bad = piece.to_vec();
                bad[0] ^= 1;
                assert!(!h.matches([&bad[..]]));
            }
            let paths: Vec<_> = m.info.v2_files().iter().map(|f| f.path.len()).collect();
            assert_eq!(paths, [2, 2, 1, 1]);
        }
        // A v1 build of a v2 torrent is a usage error, and the reverse.
        let mut b = TorrentBuilder::single_file("x", 10);
        b.set_format(TorrentFormat::V2);
        assert_eq!(b.build(&[[0; 20]]), Err(UsageError::FormatMismatch));
        b.set_format(TorrentFormat::V1);
        assert_eq!(b.build_v2(&[], &[]), Err(UsageError::FormatMismatch));
    }
}
