//! Building torrents.
//!
//! The core describes and encodes; it never reads files. The caller (the
//! driver's `bittide create`) lists the files, reads their bytes in torrent
//! order, hashes each piece (in parallel if it likes: the [`FileLayout`]
//! says which file bytes make each piece) and hands the hashes to
//! [`TorrentBuilder::build`], which produces the .torrent bytes.

use sha1::{Digest, Sha1};

use super::build_v2::TorrentFormat;
use super::layout::FileLayout;
use super::path::check_component;
use super::{MAX_PIECE_LENGTH, MIN_PIECE_LENGTH};
use crate::bencode::Value;
use crate::error::UsageError;

/// The piece length mainstream tools would pick for `total_length` bytes.
///
/// Like libtorrent's and qBittorrent's automatic choice, it keeps the piece
/// count near 1,000–2,000 (so the .torrent stays small and a piece is a
/// sensible unit of verification), between 16 KiB and 16 MiB.
pub fn auto_piece_length(total_length: u64) -> u32 {
    const TARGET_PIECES: u64 = 2048;
    let mut length = u64::from(MIN_PIECE_LENGTH);
    while length < 16 << 20 && total_length.div_ceil(length) > TARGET_PIECES {
        length *= 2;
    }
    length as u32
}

#[derive(Clone, Debug)]
struct BuildFile {
    path: Vec<String>,
    length: u64,
}

/// Describes a torrent to be built; see the module docs.
#[derive(Clone, Debug)]
pub struct TorrentBuilder {
    name: String,
    single_file: bool,
    files: Vec<BuildFile>,
    piece_length: Option<u32>,
    trackers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    private: bool,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    format: TorrentFormat,
}

impl TorrentBuilder {
    /// A torrent of one file called `name`.
    pub fn single_file(name: impl Into<String>, length: u64) -> TorrentBuilder {
        let mut b = TorrentBuilder::empty(name.into());
        b.single_file = true;
        b.files.push(BuildFile {
            path: Vec::new(),
            length,
        });
        b
    }

    /// A torrent of a folder called `name`; add its files with
    /// [`add_file`](TorrentBuilder::add_file) in the order their bytes will
    /// be hashed.
    pub fn multi_file(name: impl Into<String>) -> TorrentBuilder {
        TorrentBuilder::empty(name.into())
    }

    fn empty(name: String) -> TorrentBuilder {
        TorrentBuilder {
            name,
            single_file: false,
            files: Vec::new(),
            piece_length: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
            format: TorrentFormat::V1,
        }
    }

    /// Makes a v1 (the default), hybrid or v2-only torrent (BEP 52): the
    /// latter two are built with [`build_v2`](TorrentBuilder::build_v2).
    pub fn set_format(&mut self, format: TorrentFormat) -> &mut TorrentBuilder {
        self.format = format;
        self
    }

    /// The format set.
    pub fn format(&self) -> TorrentFormat {
        self.format
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn is_single_file(&self) -> bool {
        self.single_file
    }

    pub(super) fn is_private(&self) -> bool {
        self.private
    }

    /// The files as added: path and length.
    pub(super) fn real_files(&self) -> impl Iterator<Item = (&Vec<String>, u64)> + '_ {
        self.files.iter().map(|f| (&f.path, f.length))
    }

    pub(super) fn file_path(&self, file: usize) -> &[String] {
        self.files.get(file).map_or(&[], |f| &f.path[..])
    }

    /// The layout's entries: (the file, or `None` for padding; length;
    /// padding). BEP 52 formats start every file on a piece boundary:
    /// padding between files (hybrid) or after every file (v2-only).
    pub(super) fn padded_entries(&self) -> Vec<(Option<usize>, u64, bool)> {
        let pl = u64::from(self.piece_length());
        let mut out = Vec::with_capacity(self.files.len() * 2);
        for (i, f) in self.files.iter().enumerate() {
            out.push((Some(i), f.length, false));
            let tail = f.length % pl;
            let last = i + 1 == self.files.len();
            let pad = match self.format {
                TorrentFormat::V1 => false,
                TorrentFormat::Hybrid => !last,
                TorrentFormat::V2 => true,
            };
            if pad && tail != 0 {
                out.push((None, pl - tail, true));
            }
        }
        out
    }

    /// Adds a file at `path` (components below the torrent's folder).
    pub fn add_file(&mut self, path: Vec<String>, length: u64) -> &mut TorrentBuilder {
        self.files.push(BuildFile { path, length });
        self
    }

    /// Fixes the piece length instead of choosing it automatically.
    pub fn set_piece_length(&mut self, length: u32) -> &mut TorrentBuilder {
        self.piece_length = Some(length);
        self
    }

    /// Adds a tracker tier (BEP 12); one URL per tier is the common case.
    pub fn add_tracker_tier(&mut self, urls: Vec<String>) -> &mut TorrentBuilder {
        if !urls.is_empty() {
            self.trackers.push(urls);
        }
        self
    }

    /// Adds a BEP 19 web seed URL.
    pub fn add_web_seed(&mut self, url: String) -> &mut TorrentBuilder {
        self.web_seeds.push(url);
        self
    }

    /// Sets the BEP 27 private flag.
    pub fn set_private(&mut self, private: bool) -> &mut TorrentBuilder {
        self.private = private;
        self
    }

    /// Sets `comment`.
    pub fn set_comment(&mut self, comment: String) -> &mut TorrentBuilder {
        self.comment = Some(comment);
        self
    }

    /// Sets `created by`.
    pub fn set_created_by(&mut self, created_by: String) -> &mut TorrentBuilder {
        self.created_by = Some(created_by);
        self
    }

    /// Sets `creation date` (seconds since the Unix epoch; the caller reads
    /// the clock, the core does not).
    pub fn set_creation_date(&mut self, secs: i64) -> &mut TorrentBuilder {
        self.creation_date = Some(secs);
        self
    }

    /// Sum of the file lengths.
    pub fn total_length(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |a, f| a.saturating_add(f.length))
    }

    /// The piece length that will be used: the one set, or
    /// [`auto_piece_length`].
    pub fn piece_length(&self) -> u32 {
        self.piece_length
            .unwrap_or_else(|| auto_piece_length(self.total_length()))
    }

    /// Checks names, piece length and size, and returns the layout the
    /// caller hashes pieces by.
    pub fn layout(&self) -> Result<FileLayout, UsageError> {
        let pl = self.piece_length();
        if !pl.is_power_of_two() || !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&pl) {
            return Err(UsageError::InvalidPieceLength(u64::from(pl)));
        }
        let safe = |c: &str| check_component(c.as_bytes()).is_ok();
        if !safe(&self.name)
            || self.files.iter().any(|f| {
                (!self.single_file && f.path.is_empty()) || !f.path.iter().all(|c| safe(c))
            })
        {
            return Err(UsageError::UnsafeFileName);
        }
        let entries = self.padded_entries();
        let layout = FileLayout::new(pl, entries.iter().map(|(_, len, pad)| (*len, *pad)))
            .ok_or(UsageError::TooLarge)?;
        if layout.total_length() == 0 {
            return Err(UsageError::EmptyTorrent);
        }
        Ok(layout)
    }

    /// The .torrent bytes, given the SHA-1 of every piece in order.
    pub fn build(&self, piece_hashes: &[[u8; 20]]) -> Result<Vec<u8>, UsageError> {
        if self.format != TorrentFormat::V1 {
            return Err(UsageError::FormatMismatch);
        }
        let layout = self.layout()?;
        if piece_hashes.len() as u64 != u64::from(layout.piece_count()) {
            return Err(UsageError::PieceHashCount {
                expected: u64::from(layout.piece_count()),
                given: piece_hashes.len() as u64,
            });
        }
        let pieces: Vec<u8> = piece_hashes.concat();
        let length = |n: u64| Value::int(i64::try_from(n).unwrap_or(i64::MAX));

        let mut info = vec![
            (&b"name"[..], Value::bytes(self.name.as_bytes())),
            (
                b"piece length",
                Value::int(i64::from(layout.piece_length())),
            ),
            (b"pieces", Value::bytes(&pieces)),
        ];
        if self.single_file {
            info.push((b"length", length(layout.total_length())));
        } else {
            let files = self
                .files
                .iter()
                .map(|f| {
                    Value::dict(vec![
                        (b"length", length(f.length)),
                        (
                            b"path",
                            Value::list(
                                f.path.iter().map(|c| Value::bytes(c.as_bytes())).collect(),
                            ),
                        ),
                    ])
                })
                .collect();
            info.push((b"files", Value::list(files)));
        }
        if self.private {
            info.push((b"private", Value::int(1)));
        }

        let mut root = self.outer_fields();
        root.push((&b"info"[..], Value::dict(info)));
        Ok(Value::dict(root).to_vec())
    }

    /// Everything outside `info`: trackers, web seeds, comment, creator,
    /// date.
    pub(super) fn outer_fields(&self) -> Vec<(&'static [u8], Value<'_>)> {
        let mut root: Vec<(&'static [u8], Value<'_>)> = Vec::new();
        if let Some(first) = self.trackers.first().and_then(|t| t.first()) {
            root.push((b"announce", Value::bytes(first.as_bytes())));
        }
        if self.trackers.iter().map(Vec::len).sum::<usize>() > 1 {
            let tiers = self
                .trackers
                .iter()
                .map(|t| Value::list(t.iter().map(|u| Value::bytes(u.as_bytes())).collect()))
                .collect();
            root.push((b"announce-list", Value::list(tiers)));
        }
        if !self.web_seeds.is_empty() {
            let seeds = self
                .web_seeds
                .iter()
                .map(|u| Value::bytes(u.as_bytes()))
                .collect();
            root.push((b"url-list", Value::list(seeds)));
        }
        if let Some(c) = &self.comment {
            root.push((b"comment", Value::bytes(c.as_bytes())));
        }
        if let Some(c) = &self.created_by {
            root.push((b"created by", Value::bytes(c.as_bytes())));
        }
        if let Some(d) = self.creation_date {
            root.push((b"creation date", Value::int(d)));
        }
        root
    }
}

/// Hashes a stream of content bytes into piece hashes, sequentially.
///
/// For callers that read content in order on one thread (tests, small
/// torrents); `bittide create` hashes pieces in parallel instead.
#[derive(Clone, Debug)]
pub struct PieceHasher {
    piece_length: usize,
    current: Sha1,
    filled: usize,
    hashes: Vec<[u8; 20]>,
}

impl PieceHasher {
    /// A hasher cutting pieces of `piece_length` bytes.
    pub fn new(piece_length: u32) -> PieceHasher {
        PieceHasher {
            piece_length: piece_length.max(1) as usize,
            current: Sha1::new(),
            filled: 0,
            hashes: Vec::new(),
        }
    }

    /// Feeds the next content bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (self.piece_length - self.filled).min(data.len());
            self.current.update(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == self.piece_length {
                self.hashes.push(self.current.finalize_reset().into());
                self.filled = 0;
            }
        }
    }

    /// The hashes of all pieces, the last (short) one included.
    pub fn finish(mut self) -> Vec<[u8; 20]> {
        if self.filled > 0 {
            self.hashes.push(self.current.finalize().into());
        }
        self.hashes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::{Metainfo, PieceIndex};

    #[test]
    fn auto_piece_length_scales_like_mainstream_tools() {
        assert_eq!(auto_piece_length(1), 16 * 1024);
        assert_eq!(auto_piece_length(32 << 20), 16 * 1024);
        assert_eq!(auto_piece_length(1 << 30), 512 * 1024);
        assert_eq!(auto_piece_length(1 << 40), 16 << 20);
    }

    #[test]
    fn built_torrents_parse_back_with_the_same_content() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut b = TorrentBuilder::multi_file("folder");
        b.add_file(vec!["a.txt".into()], 60_000)
            .add_file(vec!["sub".into(), "b.bin".into()], 0)
            .add_file(vec!["sub".into(), "c.bin".into()], 40_000)
            .set_piece_length(32 * 1024)
            .add_tracker_tier(vec!["http://127.0.0.1:6969/announce".into()])
            .add_tracker_tier(vec!["udp://127.0.0.1:6969".into()])
            .add_web_seed("http://127.0.0.1:8080/".into())
            .set_private(true)
            .set_comment("hello".into())
            .set_creation_date(1_700_000_000);
        let mut h = PieceHasher::new(b.piece_length());
        h.update(&data[..12345]);
        h.update(&data[12345..]);
        let hashes = h.finish();
        let bytes = b.build(&hashes).unwrap();
        let m = Metainfo::from_bytes_strict(&bytes).unwrap();
        assert_eq!(m.info.piece_count(), 4);
        assert_eq!(m.info.piece_hash(PieceIndex(3)), Some(hashes[3]));
        assert_eq!(m.info.files().len(), 3);
        assert_eq!(m.info.files()[1].display_path(), "sub/b.bin");
        assert!(m.info.is_private());
        assert_eq!(m.trackers().len(), 2);
        assert_eq!(m.url_list, vec!["http://127.0.0.1:8080/"]);
        assert_eq!(m.comment, Some("hello"));
        assert_eq!(m.creation_date, Some(1_700_000_000));
    }

    #[test]
    fn bad_requests_are_usage_errors() {
        let b = TorrentBuilder::single_file("..", 10);
        assert_eq!(b.build(&[[0; 20]]), Err(UsageError::UnsafeFileName));
        let mut b = TorrentBuilder::single_file("x", 10);
        b.set_piece_length(1000);
        assert_eq!(
            b.build(&[[0; 20]]),
            Err(UsageError::InvalidPieceLength(1000))
        );
        let b = TorrentBuilder::single_file("x", 0);
        assert_eq!(b.build(&[]), Err(UsageError::EmptyTorrent));
        let b = TorrentBuilder::single_file("x", 10);
        assert_eq!(
            b.build(&[]),
            Err(UsageError::PieceHashCount {
                expected: 1,
                given: 0
            })
        );
        let mut b = TorrentBuilder::multi_file("x");
        b.add_file(vec!["a/b".into()], 1);
        assert_eq!(b.build(&[[0; 20]]), Err(UsageError::UnsafeFileName));
    }
}
