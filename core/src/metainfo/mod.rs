//! .torrent files (BEP 3 metainfo), their file layout, torrent building and
//! magnet URIs.
//!
//! A .torrent is a bencoded dictionary. Its `info` dictionary describes the
//! content (name, piece length, the SHA-1 of every piece, and either one
//! `length` or a list of `files`); everything outside `info` (trackers,
//! comment, dates) can change without changing the torrent's identity, the
//! **info-hash**: the SHA-1 of the raw bytes of `info` exactly as they
//! appear in the file.
//!
//! [`Metainfo::from_bytes`] validates everything the rest of the engine
//! relies on, with an error that names the field (and byte offset):
//!
//! - piece length a power of two of at least 16 KiB; `pieces` a multiple of
//!   20 bytes whose count matches the total length;
//! - every path component safe ([`PathProblem`]): no path can escape the
//!   download folder;
//! - BEP 52: a hybrid v1+v2 torrent is downloaded as v1, but its v2 half
//!   is read and checked too (`file tree`, `pieces root`s, `piece layers`
//!   against them, both halves naming the same files on the same piece
//!   boundaries: [`MetainfoError::HybridMismatch`]) and its v2 info-hash
//!   kept. A v2-only torrent gets the same v1-shaped file list, with
//!   padding entries that start each file on a piece boundary (v2's piece
//!   space), so storage, picker and wire treat both alike; its identity on
//!   the wire is the v2 info-hash truncated to 20 bytes, and its pieces
//!   are checked against the piece layers ([`PieceHash::V2`]); a bare info
//!   dictionary (a magnet's) has none, and its torrent fetches them from
//!   peers ([`needed_layers`], [`piece_hashes`]).
//!
//! Also read: multitracker tiers (BEP 12), web seeds (BEP 19), the private
//! flag (BEP 27), file attributes and padding files (BEP 47), and the UTF-8
//! variants `name.utf-8` / `path.utf-8` that some clients add.

mod build;
mod build_v2;
mod disk_paths;
pub mod hash_tree;
mod layout;
mod listing;
pub mod magnet;
pub mod merkle;
mod path;
mod piece_hash;
mod v2;

use std::fmt;

use sha1::{Digest, Sha1};

pub use build::{auto_piece_length, PieceHasher, TorrentBuilder};
pub use build_v2::{TorrentFormat, V2Piece, V2PieceHasher};
pub use disk_paths::{component_text, DiskPaths};
pub use layout::{FileLayout, FileSlice, Slices};
pub use listing::{
    clean_text, magnet_link, ListedFile, Listing, ListingError, MAX_LISTED_FILES, MAX_LISTED_NAME,
    MAX_LISTED_PATH,
};
pub use magnet::{Magnet, MagnetError, PeerAddr};
pub use path::{check_component, PathProblem};
pub use piece_hash::{HashProgress, PieceCheck, PieceHash, RunningHash};
pub use v2::{needed_layers, parse_file_tree, piece_hashes, V2File};

use crate::bencode::{Decoder, Dict, KeyOrder, Value};
use crate::error::DecodeError;

/// Smallest piece length accepted (BEP 52 sets 16 KiB as the minimum; it is
/// also the block size every client requests).
pub const MIN_PIECE_LENGTH: u32 = 16 * 1024;
/// Largest piece length accepted. Real torrents stay far below; the bound
/// keeps a piece's buffer a sane allocation.
pub const MAX_PIECE_LENGTH: u32 = 1 << 29;

/// The SHA-1 of a torrent's `info` dictionary: its v1 identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// The info-hash of the raw bencoded bytes of an `info` dictionary.
    pub fn of_info(raw_info: &[u8]) -> InfoHash {
        InfoHash(Sha1::digest(raw_info).into())
    }

    /// A v2 info-hash truncated to 20 bytes: how a v2-only torrent is
    /// named on the wire, to trackers and in the DHT (BEP 52).
    pub fn truncated(v2: &[u8; 32]) -> InfoHash {
        let mut out = [0u8; 20];
        out.copy_from_slice(&v2[..20]);
        InfoHash(out)
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Parses 40 hexadecimal digits (either case).
    pub fn from_hex(hex: &[u8]) -> Option<InfoHash> {
        if hex.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(InfoHash(out))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex, as every client prints info-hashes.
impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One write of 40 digits (a daemon's list prints a thousand).
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 40];
        for (i, b) in self.0.iter().enumerate() {
            hex[2 * i] = DIGITS[usize::from(b >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

/// Index of a piece in a torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PieceIndex(pub u32);

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "piece {}", self.0)
    }
}

/// BEP 47 file attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileAttr {
    /// `p`: a padding file, part of the layout, never written.
    pub padding: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: a symbolic link (its target is in `symlink path`); never
    /// created by bittide, whose targets could point anywhere.
    pub symlink: bool,
}

impl FileAttr {
    fn parse(attr: &[u8]) -> FileAttr {
        FileAttr {
            padding: attr.contains(&b'p'),
            executable: attr.contains(&b'x'),
            hidden: attr.contains(&b'h'),
            symlink: attr.contains(&b'l'),
        }
    }
}

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry<'a> {
    /// Path components below the torrent's folder; empty for a single-file
    /// torrent (whose one file is named by [`Info::name`]). Every component
    /// has passed [`check_component`].
    pub path: Vec<&'a [u8]>,
    /// Length in bytes.
    pub length: u64,
    /// BEP 47 attributes.
    pub attr: FileAttr,
}

impl FileEntry<'_> {
    /// The path as text, components joined with `/`, invalid UTF-8 replaced.
    pub fn display_path(&self) -> String {
        let parts: Vec<_> = self
            .path
            .iter()
            .map(|c| String::from_utf8_lossy(c))
            .collect();
        parts.join("/")
    }
}

/// The `info` dictionary: what the torrent's content is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info<'a> {
    raw: &'a [u8],
    name: &'a [u8],
    piece_length: u32,
    pieces: &'a [u8],
    private: bool,
    single_file: bool,
    hybrid: bool,
    /// BEP 52 only: no v1 half (`pieces` is empty).
    v2_only: bool,
    files: Vec<FileEntry<'a>>,
    /// A hybrid's v2 files (BEP 52), checked against `files`.
    v2_files: Vec<V2File<'a>>,
    layout: FileLayout,
}

impl<'a> Info<'a> {
    /// Parses a bare info dictionary, as BEP 9 delivers it for a magnet
    /// link (the same rules as inside a .torrent).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Info<'a>, MetainfoError> {
        let doc = Decoder::new().leave_unparsed(&[b"files"]).decode(bytes)?;
        parse_info(&doc.root)
    }

    /// The exact bytes of the `info` dictionary in the file.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Suggested name: the file (single-file) or the top folder
    /// (multi-file). Passed [`check_component`].
    pub fn name(&self) -> &'a [u8] {
        self.name
    }

    /// The name as text, invalid UTF-8 replaced.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(self.name).into_owned()
    }

    /// Nominal piece length in bytes.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.layout.piece_count()
    }

    /// The expected SHA-1 of `piece`.
    pub fn piece_hash(&self, piece: PieceIndex) -> Option<[u8; 20]> {
        let start = usize::try_from(piece.0).ok()?.checked_mul(20)?;
        let bytes = self.pieces.get(start..start + 20)?;
        let mut out = [0; 20];
        out.copy_from_slice(bytes);
        Some(out)
    }

    /// BEP 27: peers only from the torrent's own trackers.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Whether this is a single-file torrent (no folder).
    pub fn is_single_file(&self) -> bool {
        self.single_file
    }

    /// BEP 52 hybrid: also carries v2 metadata, downloaded as v1.
    pub fn is_hybrid(&self) -> bool {
        self.hybrid
    }

    /// BEP 52 only: no v1 half; pieces are checked against the piece
    /// layers.
    pub fn is_v2_only(&self) -> bool {
        self.v2_only
    }

    /// Files in torrent order, padding files included.
    pub fn files(&self) -> &[FileEntry<'a>] {
        &self.files
    }

    /// A hybrid's v2 files (BEP 52 `file tree`), in tree order; empty for
    /// a v1 torrent.
    pub fn v2_files(&self) -> &[V2File<'a>] {
        &self.v2_files
    }

    /// Total length of the content, padding included.
    pub fn total_length(&self) -> u64 {
        self.layout.total_length()
    }

    /// Where each piece's bytes live.
    pub fn layout(&self) -> &FileLayout {
        &self.layout
    }
}

/// A parsed, validated .torrent file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo<'a> {
    /// The v1 info-hash.
    pub info_hash: InfoHash,
    /// The v2 info-hash of a hybrid or v2-only torrent (BEP 52: the
    /// SHA-256 of `info`; a v2-only torrent's `info_hash` is its first 20
    /// bytes, as the wire, trackers and the DHT use it).
    pub info_hash_v2: Option<[u8; 32]>,
    /// BEP 52 `piece layers` by pieces root, each checked against it.
    pub piece_layers: std::collections::BTreeMap<merkle::Hash, &'a [u8]>,
    /// The content description.
    pub info: Info<'a>,
    /// The `announce` URL.
    pub announce: Option<&'a str>,
    /// BEP 12 tiers from `announce-list` (empty tiers dropped).
    pub announce_list: Vec<Vec<&'a str>>,
    /// BEP 19 web seeds from `url-list`.
    pub url_list: Vec<&'a str>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// `comment`.
    pub comment: Option<&'a str>,
    /// `created by`.
    pub created_by: Option<&'a str>,
    /// Irregular dictionary key order found in the file (allowed when read
    /// leniently; it never changes the info-hash).
    pub key_order: KeyOrder,
}

/// Why a .torrent file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetainfoError {
    /// The file is not valid bencode.
    Bencode(DecodeError),
    /// The top level (or `info`) is not a dictionary.
    NotADictionary {
        /// Which dictionary.
        field: &'static str,
    },
    /// A required field is absent.
    MissingField {
        /// The field's key.
        field: &'static str,
    },
    /// A field has the wrong bencode type or an impossible value.
    InvalidField {
        /// The field's key.
        field: &'static str,
        /// Byte offset of the value.
        offset: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// `piece length` is not a power of two between 16 KiB and 512 MiB.
    PieceLength {
        /// The value in the file.
        value: i64,
    },
    /// `pieces` is not a whole number of 20-byte hashes.
    PiecesLength {
        /// Its length in bytes.
        length: usize,
    },
    /// The number of hashes does not match the content's length.
    PieceCount {
        /// Hashes the content needs.
        expected: u64,
        /// Hashes in `pieces`.
        found: u64,
    },
    /// Both `length` and `files` are present, or neither is.
    AmbiguousLayout,
    /// The content has no bytes at all.
    Empty,
    /// The content is larger than can be addressed.
    TooLarge,
    /// A file path could escape the download folder or is malformed.
    UnsafePath {
        /// Index of the file, or `None` for the torrent's `name`.
        file: Option<usize>,
        /// Byte offset of the offending component in the .torrent.
        offset: usize,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A hybrid torrent whose v1 and v2 halves describe different files
    /// (paths, lengths, order, or files not starting on piece
    /// boundaries).
    HybridMismatch {
        /// The first file (not counting padding) that differs.
        file: usize,
    },
    /// A magnet's metadata whose v2 half does not match the link: its
    /// SHA-256 is not the `btmh` given, the link named a v2-only torrent by
    /// a v1 hash, or gave a `btmh` for a v1-only torrent (BEP 52).
    V2HashMismatch,
    /// A v2 file's piece layer is missing, of the wrong length, or does
    /// not hash to its `pieces root`.
    PieceLayer {
        /// The file, in file tree order.
        file: usize,
    },
    /// A `meta version` other than 2.
    UnsupportedMetaVersion {
        /// The value in the file.
        version: i64,
    },
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::Bencode(e) => write!(f, "not a valid torrent file: {e}"),
            MetainfoError::NotADictionary { field } => write!(f, "`{field}` is not a dictionary"),
            MetainfoError::MissingField { field } => {
                write!(f, "required field `{field}` is missing")
            }
            MetainfoError::InvalidField {
                field,
                offset,
                expected,
            } => write!(f, "field `{field}` at byte {offset} should be {expected}"),
            MetainfoError::PieceLength { value } => write!(
                f,
                "piece length {value} is not a power of two between 16 KiB and 512 MiB"
            ),
            MetainfoError::PiecesLength { length } => write!(
                f,
                "`pieces` is {length} bytes long, not a whole number of 20-byte hashes"
            ),
            MetainfoError::PieceCount { expected, found } => write!(
                f,
                "`pieces` holds {found} hashes but the content needs {expected}"
            ),
            MetainfoError::AmbiguousLayout => {
                f.write_str("info must have exactly one of `length` (one file) or `files`")
            }
            MetainfoError::Empty => f.write_str("the torrent's content is empty"),
            MetainfoError::TooLarge => f.write_str("the torrent's content is too large"),
            MetainfoError::UnsafePath {
                file,
                offset,
                problem,
            } => {
                match file {
                    Some(i) => write!(f, "unsafe path in file {i} (byte {offset}): ")?,
                    None => write!(f, "unsafe torrent name (byte {offset}): ")?,
                }
                problem.fmt(f)
            }
            MetainfoError::HybridMismatch { file } => write!(
                f,
                "the hybrid torrent's v1 and v2 parts disagree about file {file} (BEP 52)"
            ),
            MetainfoError::V2HashMismatch => f.write_str(
                "the metadata's v2 info-hash does not match the magnet link (BEP 52)",
            ),
            MetainfoError::PieceLayer { file } => write!(
                f,
                "the piece layer of file {file} is missing or does not match its pieces root (BEP 52)"
            ),
            MetainfoError::UnsupportedMetaVersion { version } => {
                write!(f, "unsupported meta version {version}")
            }
        }
    }
}

impl std::error::Error for MetainfoError {}

impl From<DecodeError> for MetainfoError {
    fn from(e: DecodeError) -> MetainfoError {
        MetainfoError::Bencode(e)
    }
}

impl<'a> Metainfo<'a> {
    /// Parses and validates a .torrent file. Unsorted or duplicate keys are
    /// accepted (and reported in [`Metainfo::key_order`]).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Metainfo<'a>, MetainfoError> {
        Metainfo::parse(bytes, Decoder::new())
    }

    /// As [`from_bytes`](Metainfo::from_bytes), but unsorted or duplicate
    /// keys are errors.
    pub fn from_bytes_strict(bytes: &'a [u8]) -> Result<Metainfo<'a>, MetainfoError> {
        Metainfo::parse(bytes, Decoder::new().strict(true))
    }

    fn parse(bytes: &'a [u8], decoder: Decoder) -> Result<Metainfo<'a>, MetainfoError> {
        // The file list is read straight from the bytes (`files`): a tree
        // of it would cost hundreds of bytes per file.
        let doc = decoder.leave_unparsed(&[b"info", b"files"]).decode(bytes)?;
        let root = doc
            .root
            .as_dict()
            .ok_or(MetainfoError::NotADictionary { field: "torrent" })?;
        let info_value = root
            .get(b"info")
            .ok_or(MetainfoError::MissingField { field: "info" })?;
        let info = parse_info(info_value)?;
        let (info_hash_v2, piece_layers) = if info.hybrid || info.v2_only {
            let layers = v2::check_piece_layers(
                &info.v2_files,
                root.get(b"piece layers"),
                info.piece_length,
                info.v2_only,
            )?;
            (Some(sha2::Sha256::digest(info_value.raw()).into()), layers)
        } else {
            (None, std::collections::BTreeMap::new())
        };
        let info_hash = match (info.v2_only, info_hash_v2) {
            (true, Some(v2)) => InfoHash::truncated(&v2),
            _ => InfoHash::of_info(info_value.raw()),
        };

        let announce = root.get(b"announce").and_then(Value::as_str);
        let announce_list = root
            .get(b"announce-list")
            .and_then(Value::as_list)
            .map(|tiers| {
                tiers
                    .iter()
                    .filter_map(Value::as_list)
                    .map(|tier| tier.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                    .filter(|tier| !tier.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let url_list = match root.get(b"url-list") {
            Some(v) => match v.as_list() {
                Some(items) => items.iter().filter_map(Value::as_str).collect(),
                None => v.as_str().filter(|s| !s.is_empty()).into_iter().collect(),
            },
            None => Vec::new(),
        };
        Ok(Metainfo {
            info_hash,
            info_hash_v2,
            piece_layers,
            info,
            announce,
            announce_list,
            url_list,
            creation_date: root.get(b"creation date").and_then(Value::as_int),
            comment: text_field(root, b"comment.utf-8", b"comment"),
            created_by: root.get(b"created by").and_then(Value::as_str),
            key_order: doc.key_order,
        })
    }

    /// Tracker tiers to announce to: `announce-list` when it has any
    /// tracker (BEP 12 says to ignore `announce` then), else `announce`.
    pub fn trackers(&self) -> Vec<Vec<&'a str>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else {
            self.announce.map(|a| vec![vec![a]]).unwrap_or_default()
        }
    }

    /// A magnet link for this torrent (info-hash, name, trackers, web seeds).
    pub fn magnet(&self) -> Magnet {
        Magnet {
            // A v2-only torrent has no v1 hash: its magnet names it by
            // `btmh` alone.
            info_hash: (!self.info.v2_only).then_some(self.info_hash),
            info_hash_v2: self.info_hash_v2,
            display_name: Some(self.info.display_name()),
            trackers: self
                .trackers()
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
            web_seeds: self.url_list.iter().map(|s| (*s).to_owned()).collect(),
            ..Magnet::default()
        }
    }
}

fn text_field<'a>(dict: &Dict<'a>, utf8_key: &[u8], key: &[u8]) -> Option<&'a str> {
    dict.get(utf8_key)
        .and_then(Value::as_str)
        .or_else(|| dict.get(key).and_then(Value::as_str))
}

fn invalid(field: &'static str, value: &Value<'_>, expected: &'static str) -> MetainfoError {
    MetainfoError::InvalidField {
        field,
        offset: value.offset(),
        expected,
    }
}

/// A name (byte string) or path (list of byte strings) field, preferring
/// its `.utf-8` variant when that is well-formed UTF-8 (some clients put the
/// UTF-8 name there and a legacy-encoded one in the plain key). Whichever is
/// chosen is then checked for safety.
fn name_field<'v, 'a>(
    dict: &'v Dict<'a>,
    utf8_key: &'static [u8],
    key: &'static [u8],
) -> Option<&'v Value<'a>> {
    let utf8 = |v: &Value<'_>| v.as_bytes().is_some_and(|b| std::str::from_utf8(b).is_ok());
    dict.get(utf8_key)
        .filter(|v| utf8(v) || v.as_list().is_some_and(|items| items.iter().all(utf8)))
        .or_else(|| dict.get(key))
}

fn parse_info<'a>(value: &Value<'a>) -> Result<Info<'a>, MetainfoError> {
    let dict = value
        .as_dict()
        .ok_or(MetainfoError::NotADictionary { field: "info" })?;

    let hybrid = match dict.get(b"meta version") {
        None => false,
        Some(v) => match v.as_int() {
            Some(2) => true,
            Some(version) => return Err(MetainfoError::UnsupportedMetaVersion { version }),
            None => return Err(invalid("meta version", v, "an integer")),
        },
    };
    let has_v1_layout = dict.get(b"length").is_some() || dict.get(b"files").is_some();
    let v2_only = hybrid && !has_v1_layout;
    let hybrid = hybrid && has_v1_layout;

    let name_value = name_field(dict, b"name.utf-8", b"name")
        .ok_or(MetainfoError::MissingField { field: "name" })?;
    let name = name_value
        .as_bytes()
        .ok_or_else(|| invalid("name", name_value, "a byte string"))?;
    check_component(name).map_err(|problem| MetainfoError::UnsafePath {
        file: None,
        offset: name_value.offset(),
        problem,
    })?;

    let pl_value = dict
        .get(b"piece length")
        .ok_or(MetainfoError::MissingField {
            field: "piece length",
        })?;
    let pl = pl_value
        .as_int()
        .ok_or_else(|| invalid("piece length", pl_value, "an integer"))?;
    let piece_length = u32::try_from(pl)
        .ok()
        .filter(|n| n.is_power_of_two() && (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(n))
        .ok_or(MetainfoError::PieceLength { value: pl })?;

    if v2_only {
        return v2::parse_v2_only(value, dict, name, piece_length);
    }
    let pieces_value = dict
        .get(b"pieces")
        .ok_or(MetainfoError::MissingField { field: "pieces" })?;
    let pieces = pieces_value
        .as_bytes()
        .ok_or_else(|| invalid("pieces", pieces_value, "a byte string"))?;
    if !pieces.len().is_multiple_of(20) {
        return Err(MetainfoError::PiecesLength {
            length: pieces.len(),
        });
    }

    let (files, single_file) = match (dict.get(b"length"), dict.get(b"files")) {
        (Some(length), None) => {
            let length = file_length(length)?;
            let attr = dict
                .get(b"attr")
                .and_then(Value::as_bytes)
                .map(FileAttr::parse)
                .unwrap_or_default();
            (
                vec![FileEntry {
                    path: Vec::new(),
                    length,
                    attr,
                }],
                true,
            )
        }
        (None, Some(files)) => (parse_files(files)?, false),
        _ => return Err(MetainfoError::AmbiguousLayout),
    };

    let layout = layout_of(&files, piece_length)?;
    let found = (pieces.len() / 20) as u64;
    if u64::from(layout.piece_count()) != found {
        return Err(MetainfoError::PieceCount {
            expected: u64::from(layout.piece_count()),
            found,
        });
    }
    let v2_files = if hybrid {
        let tree = dict
            .get(b"file tree")
            .ok_or(MetainfoError::MissingField { field: "file tree" })?;
        let v2 = v2::parse_file_tree(tree)?;
        v2::check_hybrid(&files, single_file.then_some(name), &layout, &v2)?;
        v2
    } else {
        Vec::new()
    };

    Ok(Info {
        raw: value.raw(),
        name,
        piece_length,
        pieces,
        private: dict.get(b"private").and_then(Value::as_int) == Some(1),
        single_file,
        hybrid,
        v2_only: false,
        files,
        v2_files,
        layout,
    })
}

/// The layout of `files` (padding files included), which must hold at
/// least one byte.
fn layout_of(files: &[FileEntry<'_>], piece_length: u32) -> Result<FileLayout, MetainfoError> {
    let layout = FileLayout::new(
        piece_length,
        files.iter().map(|f| (f.length, f.attr.padding)),
    )
    .ok_or(MetainfoError::TooLarge)?;
    if layout.total_length() == 0 {
        return Err(MetainfoError::Empty);
    }
    Ok(layout)
}

fn file_length(value: &Value<'_>) -> Result<u64, MetainfoError> {
    value
        .as_int()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| invalid("length", value, "a non-negative integer"))
}

mod files;
use files::parse_files;

#[cfg(test)]
mod tests;
