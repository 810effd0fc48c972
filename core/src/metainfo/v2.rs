//! The BEP 52 (v2) half of an info dictionary: the `file tree`, each
//! file's `pieces root`, the `piece layers` beside `info`, and the checks
//! that make a hybrid's two halves describe the same content.
//!
//! The file tree nests one dictionary per path component; a file is the
//! dictionary under the empty key: `{"dir": {"a.txt": {"": {"length": 5,
//! "pieces root": <32 bytes>}}}}`. Files come in tree order (keys sorted).
//! Each path component passes [`check_component`] as in v1, a node is
//! either a file or a folder (an empty key beside others is refused), and
//! depth is bounded by the bencode decoder's nesting limit.

use std::collections::BTreeMap;

use super::merkle::{self, Hash, LEAF};
use super::{
    check_component, FileAttr, FileEntry, FileLayout, Info, Metainfo, MetainfoError, PieceHash,
};
use crate::bencode::{Dict, Value};

/// Most pieces a v2-only torrent may have (libtorrent's default limit is
/// 2^21; 2^22 of the smallest pieces is 64 GiB).
const MAX_V2_PIECES: u32 = 1 << 22;

/// The path of the padding entries a v2-only torrent's file list gets
/// (never written, never shown).
const PAD_PATH: &[u8] = b".pad";

/// One file of a v2 file tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2File<'a> {
    /// Path components (a single-file torrent's one file: its name).
    pub path: Vec<&'a [u8]>,
    /// Length in bytes.
    pub length: u64,
    /// The root of its merkle tree; `None` for an empty file.
    pub pieces_root: Option<Hash>,
}

fn invalid(field: &'static str, value: &Value<'_>, expected: &'static str) -> MetainfoError {
    MetainfoError::InvalidField {
        field,
        offset: value.offset(),
        expected,
    }
}

/// The files of a `file tree` value (BEP 52), in tree order.
pub fn parse_file_tree<'a>(tree: &Value<'a>) -> Result<Vec<V2File<'a>>, MetainfoError> {
    let dict = tree
        .as_dict()
        .ok_or_else(|| invalid("file tree", tree, "a dictionary"))?;
    let mut files = Vec::new();
    walk(dict, tree, &mut Vec::new(), &mut files)?;
    if files.is_empty() {
        return Err(MetainfoError::Empty);
    }
    Ok(files)
}

fn walk<'a>(
    dict: &Dict<'a>,
    at: &Value<'a>,
    path: &mut Vec<&'a [u8]>,
    out: &mut Vec<V2File<'a>>,
) -> Result<(), MetainfoError> {
    if let Some(file) = dict.get(b"") {
        if dict.len() != 1 || path.is_empty() {
            return Err(invalid("file tree", at, "a file or a folder, not both"));
        }
        let f = file
            .as_dict()
            .ok_or_else(|| invalid("file tree", file, "a file dictionary"))?;
        let length_value = f
            .get(b"length")
            .ok_or(MetainfoError::MissingField { field: "length" })?;
        let length = length_value
            .as_int()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| invalid("length", length_value, "a non-negative integer"))?;
        let pieces_root = match f.get(b"pieces root") {
            Some(v) => Some(
                v.as_bytes()
                    .and_then(|b| <Hash>::try_from(b).ok())
                    .ok_or_else(|| invalid("pieces root", v, "32 bytes"))?,
            ),
            None if length == 0 => None,
            None => {
                return Err(MetainfoError::MissingField {
                    field: "pieces root",
                })
            }
        };
        out.push(V2File {
            path: path.clone(),
            length,
            pieces_root,
        });
        return Ok(());
    }
    // Tree order is key order (BEP 52): a file whose keys are out of order
    // is read as if sorted, and of a duplicated key the first counts, as
    // everywhere in a dictionary.
    let mut entries: Vec<(&'a [u8], &Value<'a>)> = dict.iter().collect();
    entries.sort_by_key(|(k, _)| *k);
    entries.dedup_by_key(|(k, _)| *k);
    for (key, child) in entries {
        check_component(key).map_err(|problem| MetainfoError::UnsafePath {
            file: Some(out.len()),
            offset: child.offset(),
            problem,
        })?;
        let sub = child
            .as_dict()
            .ok_or_else(|| invalid("file tree", child, "a dictionary"))?;
        path.push(key);
        walk(sub, child, path, out)?;
        path.pop();
    }
    Ok(())
}

/// Checks that a hybrid's v1 files (`v1`, `layout`; single-file when
/// `name` is `Some`) are its v2 files: the same paths and lengths in the
/// same order, padding files aside, each non-empty file starting on a
/// piece boundary as v2's piece space has them (BEP 52, "Upgrade path").
pub(super) fn check_hybrid(
    v1: &[FileEntry<'_>],
    single_name: Option<&[u8]>,
    layout: &FileLayout,
    v2: &[V2File<'_>],
) -> Result<(), MetainfoError> {
    let real: Vec<usize> = (0..v1.len()).filter(|&i| !v1[i].attr.padding).collect();
    let mismatch = |file: usize| MetainfoError::HybridMismatch { file };
    if real.len() != v2.len() {
        return Err(mismatch(real.len().min(v2.len())));
    }
    let piece = u64::from(layout.piece_length());
    for (k, (&i, f2)) in real.iter().zip(v2).enumerate() {
        let f1 = &v1[i];
        let same_path = match single_name {
            Some(name) => f2.path.len() == 1 && f2.path[0] == name,
            None => f1.path == f2.path,
        };
        let starts = layout.file_range(i).map_or(0, |r| r.start);
        let aligned = f1.length == 0 || starts.is_multiple_of(piece);
        if !same_path || f1.length != f2.length || !aligned {
            return Err(mismatch(k));
        }
    }
    Ok(())
}

/// Checks the `piece layers` dictionary against the files: each file
/// longer than a piece has a layer of one hash per piece whose root is
/// its pieces root (each distinct root checked once). A v2-only torrent
/// needs every layer (`required`); a hybrid, downloaded through its v1
/// half, may lack them (its .torrent saved from a magnet's metadata has
/// none) but those it has must be right. Returns the layers by root.
pub(super) fn check_piece_layers<'a>(
    files: &[V2File<'_>],
    layers: Option<&Value<'a>>,
    piece_length: u32,
    required: bool,
) -> Result<BTreeMap<Hash, &'a [u8]>, MetainfoError> {
    let mut out: BTreeMap<Hash, &'a [u8]> = BTreeMap::new();
    let dict = match layers {
        Some(v) => Some(
            v.as_dict()
                .ok_or_else(|| invalid("piece layers", v, "a dictionary"))?,
        ),
        None => None,
    };
    for (i, f) in files.iter().enumerate() {
        if f.length <= u64::from(piece_length) {
            continue;
        }
        let Some(root) = f.pieces_root else {
            continue;
        };
        let pieces = f.length.div_ceil(u64::from(piece_length));
        if let Some(layer) = out.get(&root) {
            // Another file with the same content: same layer, same length.
            if layer.len() as u64 != pieces * 32 {
                return Err(MetainfoError::PieceLayer { file: i });
            }
            continue;
        }
        let Some(layer) = dict.and_then(|d| d.get(&root)).and_then(Value::as_bytes) else {
            if required {
                return Err(MetainfoError::PieceLayer { file: i });
            }
            continue;
        };
        if layer.len() as u64 != pieces * 32 {
            return Err(MetainfoError::PieceLayer { file: i });
        }
        let hashes: Vec<Hash> = layer
            .chunks_exact(32)
            .filter_map(|c| <Hash>::try_from(c).ok())
            .collect();
        if merkle::root_from_piece_layer(&hashes, piece_length) != root {
            return Err(MetainfoError::PieceLayer { file: i });
        }
        out.insert(root, layer);
    }
    Ok(out)
}

/// A v2-only info dictionary (`value`, already past name and piece
/// length): its files in tree order as a v1-shaped list, a padding entry
/// after each file that does not end on a piece boundary, so every file
/// starts a piece as BEP 52's piece space has it. The last file is padded
/// too, as libtorrent does: its last piece is then a whole piece on the
/// wire, and a peer asks for the full 16 KiB block holding the file's
/// end.
pub(super) fn parse_v2_only<'a>(
    value: &Value<'a>,
    dict: &Dict<'a>,
    name: &'a [u8],
    piece_length: u32,
) -> Result<Info<'a>, MetainfoError> {
    let tree = dict
        .get(b"file tree")
        .ok_or(MetainfoError::MissingField { field: "file tree" })?;
    let v2_files = parse_file_tree(tree)?;
    let single_file = v2_files.len() == 1 && v2_files[0].path == [name];
    let piece = u64::from(piece_length);
    let mut files = Vec::with_capacity(v2_files.len() * 2);
    for f in &v2_files {
        files.push(FileEntry {
            path: if single_file {
                Vec::new()
            } else {
                f.path.clone()
            },
            length: f.length,
            attr: FileAttr::default(),
        });
        let tail = f.length % piece;
        if tail != 0 {
            files.push(FileEntry {
                path: vec![PAD_PATH],
                length: piece - tail,
                attr: FileAttr {
                    padding: true,
                    ..FileAttr::default()
                },
            });
        }
    }
    let layout = super::layout_of(&files, piece_length)?;
    // v1's piece count is bounded by its `pieces` bytes; v2's is not
    // (files of the same content share a layer), so it is bounded here.
    if layout.piece_count() > MAX_V2_PIECES {
        return Err(MetainfoError::TooLarge);
    }
    Ok(Info {
        raw: value.raw(),
        name,
        piece_length,
        pieces: &[],
        private: dict.get(b"private").and_then(Value::as_int) == Some(1),
        single_file,
        hybrid: false,
        v2_only: true,
        files,
        v2_files,
        layout,
    })
}

impl Metainfo<'_> {
    /// What each piece must hash to, in piece order: v1's SHA-1s, or for
    /// a v2-only torrent the piece layers' roots (a file of at most one
    /// piece: its pieces root). `None` when a piece layer is missing.
    pub fn piece_hashes(&self) -> Option<Vec<PieceHash>> {
        piece_hashes(&self.info, &self.piece_layers)
    }
}

/// The piece layers a v2 torrent's pieces are checked against: each
/// distinct `pieces root` of a file longer than one piece, with its piece
/// count. A magnet's metadata has none of them; peers send them (BEP 52
/// `hash request`).
pub fn needed_layers(info: &Info<'_>) -> BTreeMap<Hash, u32> {
    let piece = u64::from(info.piece_length);
    info.v2_files
        .iter()
        .filter(|f| f.length > piece)
        .filter_map(|f| Some((f.pieces_root?, f.length.div_ceil(piece) as u32)))
        .collect()
}

/// [`Metainfo::piece_hashes`] of `info` with the piece `layers` (by
/// root, each already checked against it) from wherever they came.
pub fn piece_hashes(info: &Info<'_>, layers: &BTreeMap<Hash, &[u8]>) -> Option<Vec<PieceHash>> {
    if !info.v2_only {
        return (0..info.piece_count())
            .map(|p| info.piece_hash(super::PieceIndex(p)).map(PieceHash::V1))
            .collect();
    }
    let piece = u64::from(info.piece_length);
    let width = (info.piece_length as usize / LEAF) as u32;
    let mut out = Vec::with_capacity(info.piece_count() as usize);
    for f in info.v2_files.iter().filter(|f| f.length > 0) {
        let root = f.pieces_root?;
        if f.length <= piece {
            let leaves = f.length.div_ceil(LEAF as u64).next_power_of_two() as u32;
            out.push(PieceHash::V2 {
                root,
                leaves,
                length: f.length as u32,
            });
            continue;
        }
        let layer = *layers.get(&root)?;
        // Files sharing a root must share the piece count too (a hostile
        // tree can name one root for files of different lengths).
        if layer.len() as u64 != f.length.div_ceil(piece) * 32 {
            return None;
        }
        for (k, h) in layer.chunks_exact(32).enumerate() {
            let start = k as u64 * piece;
            out.push(PieceHash::V2 {
                root: <Hash>::try_from(h).ok()?,
                leaves: width,
                length: (f.length - start).min(piece) as u32,
            });
        }
    }
    (out.len() as u64 == u64::from(info.piece_count())).then_some(out)
}

#[cfg(test)]
mod tests {
    use sha1::{Digest, Sha1};

    use super::super::merkle::{root_of_data, LEAF};
    use super::super::{Metainfo, MetainfoError};
    use crate::bencode::Value;

    const PIECE: usize = 2 * LEAF;

    /// A hybrid torrent of `files` (path, bytes), padded to piece
    /// boundaries as BEP 52 asks; `tamper` may change the v2 half before
    /// it is encoded.
    fn hybrid(files: &[(&str, Vec<u8>)], tamper: impl FnOnce(&mut Tamper)) -> Vec<u8> {
        let mut t = Tamper::default();
        tamper(&mut t);
        let single = files.len() == 1;
        let mut v1_bytes = Vec::new();
        let mut v1_files = Vec::new();
        let mut tree: Vec<(Vec<u8>, B)> = Vec::new();
        let mut layers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (i, (path, data)) in files.iter().enumerate() {
            v1_bytes.extend_from_slice(data);
            let list = |p: &str| B::L(p.split('/').map(|c| B::S(c.as_bytes().to_vec())).collect());
            v1_files.push(B::D(vec![
                (b"length".to_vec(), B::I(data.len() as i64)),
                (b"path".to_vec(), list(path)),
            ]));
            if i + 1 < files.len() && data.len() % PIECE != 0 {
                let pad = PIECE - data.len() % PIECE;
                v1_bytes.resize(v1_bytes.len() + pad, 0);
                v1_files.push(B::D(vec![
                    (b"attr".to_vec(), B::S(b"p".to_vec())),
                    (b"length".to_vec(), B::I(pad as i64)),
                    (b"path".to_vec(), list(&format!(".pad/{pad}"))),
                ]));
            }
            let root = if data.len() > PIECE {
                let layer: Vec<u8> = data
                    .chunks(PIECE)
                    .flat_map(|p| root_of_data(p, 2))
                    .collect();
                let mut layer = layer;
                if t.bad_layer {
                    layer[0] ^= 1;
                }
                let hashes: Vec<[u8; 32]> =
                    data.chunks(PIECE).map(|p| root_of_data(p, 2)).collect();
                let root = super::super::merkle::root_from_piece_layer(&hashes, PIECE as u32);
                if !t.no_layer {
                    layers.push((root.to_vec(), layer));
                }
                root
            } else {
                root_of_data(data, 0)
            };
            let length = data.len() as i64 + t.v2_extra;
            let leaf = B::D(vec![(
                Vec::new(),
                B::D(vec![
                    (b"length".to_vec(), B::I(length)),
                    (b"pieces root".to_vec(), B::S(root.to_vec())),
                ]),
            )]);
            // Nest by path components (the tests' files have distinct
            // first components, so nothing needs merging).
            let mut node = leaf;
            let parts: Vec<&str> = path.split('/').collect();
            for part in parts[1..].iter().rev() {
                node = B::D(vec![(part.as_bytes().to_vec(), node)]);
            }
            tree.push((parts[0].as_bytes().to_vec(), node));
        }
        if let Some(name) = t.tree_key.take() {
            tree[0].0 = name;
        }
        let pieces: Vec<u8> = v1_bytes
            .chunks(PIECE)
            .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
            .collect();
        let mut info = vec![
            (b"file tree".to_vec(), B::D(tree)),
            (b"meta version".to_vec(), B::I(2)),
            (
                b"name".to_vec(),
                B::S(if single {
                    files[0].0.as_bytes().to_vec()
                } else {
                    b"top".to_vec()
                }),
            ),
            (b"piece length".to_vec(), B::I(PIECE as i64)),
            (b"pieces".to_vec(), B::S(pieces)),
        ];
        if single {
            info.push((b"length".to_vec(), B::I(files[0].1.len() as i64)));
        } else {
            info.push((b"files".to_vec(), B::L(v1_files)));
        }
        info.sort_by(|a, b| a.0.cmp(&b.0));
        let layers = B::D(layers.into_iter().map(|(k, v)| (k, B::S(v))).collect());
        B::D(vec![
            (b"info".to_vec(), B::D(info)),
            (b"piece layers".to_vec(), layers),
        ])
        .encode()
    }

    /// An owned bencode value, to build test torrents from parts made on
    /// the fly (dictionary keys sorted when encoded).
    enum B {
        I(i64),
        S(Vec<u8>),
        L(Vec<B>),
        D(Vec<(Vec<u8>, B)>),
    }

    impl B {
        fn encode(self) -> Vec<u8> {
            let mut out = Vec::new();
            self.write(&mut out);
            out
        }

        fn write(self, out: &mut Vec<u8>) {
            match self {
                B::I(n) => out.extend_from_slice(format!("i{n}e").as_bytes()),
                B::S(s) => {
                    out.extend_from_slice(format!("{}:", s.len()).as_bytes());
                    out.extend_from_slice(&s);
                }
                B::L(items) => {
                    out.push(b'l');
                    items.into_iter().for_each(|i| i.write(out));
                    out.push(b'e');
                }
                B::D(mut entries) => {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    out.push(b'd');
                    for (k, v) in entries {
                        B::S(k).write(out);
                        v.write(out);
                    }
                    out.push(b'e');
                }
            }
        }
    }

    #[derive(Default)]
    struct Tamper {
        bad_layer: bool,
        no_layer: bool,
        v2_extra: i64,
        tree_key: Option<Vec<u8>>,
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn a_hybrid_is_read_with_its_v2_half_and_v2_hash() {
        let bytes = hybrid(&[("big.bin", data(3 * PIECE + 100, 1))], |_| {});
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert!(m.info.is_hybrid());
        let f = &m.info.v2_files()[0];
        assert_eq!(f.path, [b"big.bin"]);
        assert_eq!(f.length, 3 * PIECE as u64 + 100);
        let raw = m.info.raw();
        assert_eq!(m.info_hash_v2, Some(sha2::Sha256::digest(raw).into()));
        let magnet = m.magnet().to_string();
        assert!(magnet.contains("xt=urn:btmh:1220"), "{magnet}");

        let bytes = hybrid(
            &[
                ("a", data(PIECE + 5, 2)),
                ("b/c", data(10, 3)),
                ("e", data(3 * PIECE, 4)),
            ],
            |_| {},
        );
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let paths: Vec<_> = m.info.v2_files().iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, [vec![&b"a"[..]], vec![b"b", b"c"], vec![b"e"]]);
    }

    #[test]
    fn a_piece_layer_must_hash_to_its_root() {
        let big = || vec![("big.bin", data(3 * PIECE, 1))];
        let bad = hybrid(&big(), |t| t.bad_layer = true);
        assert_eq!(
            Metainfo::from_bytes(&bad),
            Err(MetainfoError::PieceLayer { file: 0 })
        );
        // A hybrid is downloaded as v1: its .torrent saved from a
        // magnet's metadata has no layers, and loads.
        let none = hybrid(&big(), |t| t.no_layer = true);
        assert!(Metainfo::from_bytes(&none).unwrap().piece_layers.is_empty());
    }

    #[test]
    fn halves_that_disagree_are_refused() {
        let longer = hybrid(&[("x", data(100, 1))], |t| t.v2_extra = 1);
        assert_eq!(
            Metainfo::from_bytes(&longer),
            Err(MetainfoError::HybridMismatch { file: 0 })
        );
        let renamed = hybrid(&[("x", data(100, 1))], |t| t.tree_key = Some(b"y".to_vec()));
        assert_eq!(
            Metainfo::from_bytes(&renamed),
            Err(MetainfoError::HybridMismatch { file: 0 })
        );
    }

    #[test]
    fn a_file_tree_with_unsafe_names_or_shapes_is_refused() {
        let escape = hybrid(&[("x", data(100, 1))], |t| {
            t.tree_key = Some(b"..".to_vec())
        });
        assert!(matches!(
            Metainfo::from_bytes(&escape),
            Err(MetainfoError::UnsafePath { file: Some(0), .. })
        ));
        // A node that is a file and a folder at once.
        let tree = Value::dict(vec![(
            b"x",
            Value::dict(vec![
                (b"", Value::dict(vec![(b"length", Value::int(0))])),
                (b"y", Value::dict(vec![])),
            ]),
        )]);
        let encoded = tree.to_vec();
        let doc = crate::bencode::decode(&encoded).unwrap();
        assert!(matches!(
            super::parse_file_tree(&doc),
            Err(MetainfoError::InvalidField {
                field: "file tree",
                ..
            })
        ));
        // The same in a whole v2-only torrent.
        let only = Value::dict(vec![(
            b"info",
            Value::dict(vec![
                (b"file tree", tree),
                (b"meta version", Value::int(2)),
                (b"name", Value::bytes(b"x")),
                (b"piece length", Value::int(PIECE as i64)),
            ]),
        )]);
        assert!(matches!(
            Metainfo::from_bytes(&only.to_vec()),
            Err(MetainfoError::InvalidField {
                field: "file tree",
                ..
            })
        ));
    }
}

#[cfg(test)]
mod bound_tests {
    use super::super::merkle::root_from_piece_layer;
    use super::super::{Metainfo, MetainfoError};
    use crate::bencode::Value;

    /// Files of the same content share a piece layer: a few MB of .torrent
    /// could claim billions of pieces. The piece count is bounded.
    #[test]
    fn shared_layers_cannot_claim_unbounded_pieces() {
        let pieces = 1usize << 16; // 1 GiB of 16 KiB pieces
        let layer = vec![7u8; 32 * pieces];
        let hashes: Vec<[u8; 32]> = vec![[7u8; 32]; pieces];
        let root = root_from_piece_layer(&hashes, 16384);
        let names: Vec<String> = (0..100).map(|i| format!("f{i:03}")).collect();
        let leaf = || {
            Value::dict(vec![(
                b"",
                Value::dict(vec![
                    (b"length", Value::int(1 << 30)),
                    (b"pieces root", Value::bytes(&root)),
                ]),
            )])
        };
        let tree = Value::dict(names.iter().map(|n| (n.as_bytes(), leaf())).collect());
        let bytes = Value::dict(vec![
            (
                b"info",
                Value::dict(vec![
                    (b"file tree", tree),
                    (b"meta version", Value::int(2)),
                    (b"name", Value::bytes(b"big")),
                    (b"piece length", Value::int(16384)),
                ]),
            ),
            (
                b"piece layers",
                Value::dict(vec![(&root[..], Value::bytes(&layer))]),
            ),
        ])
        .to_vec();
        assert_eq!(Metainfo::from_bytes(&bytes), Err(MetainfoError::TooLarge));
    }
}
