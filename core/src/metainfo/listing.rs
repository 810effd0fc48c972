//! `Listing`: what an index keeps of a torrent, read from its info
//! dictionary (BEP 3 `name`/`length`/`files`, BEP 52 `file tree`) as it
//! came from a peer (`bittide dht crawl --index`, the `bittide-index`
//! crate).
//!
//! The bytes are a stranger's: the record is checked against the
//! info-hash first, and everything in it is made safe to store and to
//! show. Names and paths lose control characters (NUL included) and are cut
//! to a length; only the first [`MAX_LISTED_FILES`] files are kept (the count and
//! the total size still cover all of them); pad files (BEP 47) are left
//! out. Nothing here touches a file system: a path is text to search and
//! show, never a place to write.

use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::{InfoHash, Magnet};
use crate::bencode::{decode, Dict, Value};

/// Files kept per torrent (the rest are counted).
pub const MAX_LISTED_FILES: usize = 10_000;
/// Longest name kept, in bytes of UTF-8.
pub const MAX_LISTED_NAME: usize = 512;
/// Longest file path kept, in bytes of UTF-8.
pub const MAX_LISTED_PATH: usize = 1024;

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedFile {
    /// Its path inside the torrent, components joined by `/`.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A torrent as the index keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The v1 info-hash, or a v2 torrent's truncated one: the name it has
    /// on the DHT.
    pub info_hash: InfoHash,
    /// The v2 info-hash (BEP 52), for v2 and hybrid torrents.
    pub info_hash_v2: Option<[u8; 32]>,
    /// Its name, cleaned.
    pub name: String,
    /// Bytes in all its files.
    pub size: u64,
    /// How many files it has (pad files not counted).
    pub file_count: u64,
    /// Its files, at most [`MAX_LISTED_FILES`].
    pub files: Vec<ListedFile>,
    /// BEP 27's `private` flag.
    pub private: bool,
}

/// Why metadata was not indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListingError {
    /// Its SHA-1 (or SHA-256) is not the info-hash.
    HashMismatch,
    /// Not bencode, or not a dictionary.
    NotDictionary,
    /// No `name`, or an empty one.
    NoName,
    /// Neither `length`, `files` nor `file tree`, or one of them malformed
    /// (a negative length, a path that is not a list of strings).
    BadFiles,
}

impl std::fmt::Display for ListingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListingError::HashMismatch => "the metadata does not hash to the info-hash",
            ListingError::NotDictionary => "the metadata is not a bencoded dictionary",
            ListingError::NoName => "the metadata has no name",
            ListingError::BadFiles => "the metadata's file list is malformed",
        })
    }
}

impl std::error::Error for ListingError {}

impl Listing {
    /// Reads `metadata` (an info dictionary) fetched for `info_hash`.
    pub fn from_metadata(info_hash: InfoHash, metadata: &[u8]) -> Result<Listing, ListingError> {
        let sha256 = || -> [u8; 32] { Sha256::digest(metadata).into() };
        let sha1: [u8; 20] = Sha1::digest(metadata).into();
        // SHA-256 only where it is needed: a name that is not the SHA-1,
        // or a v2 torrent's second hash (most of the DHT is v1).
        let by_v2 = (sha1 != info_hash.0).then(sha256);
        if by_v2.is_some_and(|h| h[..20] != info_hash.0) {
            return Err(ListingError::HashMismatch);
        }
        let root = decode(metadata).map_err(|_| ListingError::NotDictionary)?;
        let info = root.as_dict().ok_or(ListingError::NotDictionary)?;
        let raw_name = info
            .get(b"name.utf-8")
            .or_else(|| info.get(b"name"))
            .and_then(Value::as_bytes)
            .ok_or(ListingError::NoName)?;
        let name = clean_text(raw_name, MAX_LISTED_NAME);
        if name.trim().is_empty() {
            return Err(ListingError::NoName);
        }
        let v2 = info.get(b"meta version").and_then(Value::as_int) == Some(2);
        // Met by its truncated v2 name (BEP 52), a hybrid is kept under
        // its v1 hash: one row per torrent whichever name found it.
        let info_hash = match by_v2.is_some() && info.get(b"pieces").is_some() {
            true => InfoHash(sha1),
            false => info_hash,
        };
        let mut files = Files::default();
        if let Some(list) = info.get(b"files") {
            files.v1_list(list)?;
        } else if let Some(length) = info.get(b"length") {
            files.add(&[raw_name], length.as_int())?;
        } else if let Some(tree) = info.get(b"file tree").filter(|_| v2) {
            files.v2_tree(tree)?;
        } else {
            return Err(ListingError::BadFiles);
        }
        Ok(Listing {
            info_hash,
            info_hash_v2: v2.then(|| by_v2.unwrap_or_else(sha256)),
            name,
            size: files.size,
            file_count: files.count,
            files: files.kept,
            private: info.get(b"private").and_then(Value::as_int) == Some(1),
        })
    }

    /// A magnet link for it: its hashes and name.
    pub fn magnet(&self) -> String {
        magnet_link(&self.info_hash, self.info_hash_v2, &self.name)
    }
}

/// A magnet link with `xt` and `dn` (BEP 9, BEP 52).
pub fn magnet_link(info_hash: &InfoHash, v2: Option<[u8; 32]>, name: &str) -> String {
    let v1 = v2.is_none_or(|h| h[..20] != info_hash.0);
    Magnet {
        info_hash: v1.then_some(*info_hash),
        info_hash_v2: v2,
        display_name: Some(name.to_owned()),
        ..Magnet::default()
    }
    .to_string()
}

/// The files read so far.
#[derive(Default)]
struct Files {
    kept: Vec<ListedFile>,
    count: u64,
    size: u64,
}

impl Files {
    /// One more file; its path is made only if it is kept.
    fn add(&mut self, parts: &[&[u8]], length: Option<i64>) -> Result<(), ListingError> {
        let size = length
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(ListingError::BadFiles)?;
        self.count += 1;
        self.size = self.size.saturating_add(size);
        if self.kept.len() < MAX_LISTED_FILES {
            self.kept.push(ListedFile {
                path: join(parts),
                size,
            });
        }
        Ok(())
    }

    /// BEP 3's `files`: dictionaries of `length` and `path` (BEP 47 pad
    /// files, `attr` with `p`, left out).
    fn v1_list(&mut self, list: &Value<'_>) -> Result<(), ListingError> {
        for f in list.as_list().ok_or(ListingError::BadFiles)? {
            let f = f.as_dict().ok_or(ListingError::BadFiles)?;
            let pad = f
                .get(b"attr")
                .and_then(Value::as_bytes)
                .is_some_and(|a| a.contains(&b'p'));
            if pad {
                continue;
            }
            let path = f
                .get(b"path.utf-8")
                .or_else(|| f.get(b"path"))
                .and_then(Value::as_list)
                .ok_or(ListingError::BadFiles)?;
            let parts: Option<Vec<&[u8]>> = path.iter().map(Value::as_bytes).collect();
            let parts = parts.ok_or(ListingError::BadFiles)?;
            self.add(&parts, f.get(b"length").and_then(Value::as_int))?;
        }
        Ok(())
    }

    /// BEP 52's `file tree`: nested dictionaries, a file where the key is
    /// empty. Walked without recursion (the decoder bounds the depth) and
    /// with one path for the whole walk: the stack holds each folder's
    /// depth, not a copy of its path, so a million nested folders cost no
    /// more than their bytes.
    fn v2_tree(&mut self, tree: &Value<'_>) -> Result<(), ListingError> {
        let root = tree.as_dict().ok_or(ListingError::BadFiles)?;
        let mut stack: Vec<(usize, &[u8], &Dict<'_>)> = vec![(0, &[], root)];
        let mut path: Vec<&[u8]> = Vec::new();
        while let Some((depth, name, dir)) = stack.pop() {
            // `depth` counts this folder's name: its parent's path first.
            path.truncate(depth.saturating_sub(1));
            if depth > 0 {
                path.push(name);
            }
            for (key, value) in dir.iter() {
                let node = value.as_dict().ok_or(ListingError::BadFiles)?;
                if key.is_empty() {
                    let pad = node
                        .get(b"attr")
                        .and_then(Value::as_bytes)
                        .is_some_and(|a| a.contains(&b'p'));
                    if !pad {
                        self.add(&path, node.get(b"length").and_then(Value::as_int))?;
                    }
                    continue;
                }
                stack.push((path.len() + 1, key, node));
            }
        }
        // Depth first from a stack visits the last entries first.
        self.kept.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(())
    }
}

/// Path components joined by `/`, each cleaned, the whole cut to
/// [`MAX_LISTED_PATH`].
fn join(parts: &[&[u8]]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&clean_text(p, MAX_LISTED_PATH).replace('/', "\u{2215}"));
        if out.len() >= MAX_LISTED_PATH {
            break;
        }
    }
    truncate(out, MAX_LISTED_PATH)
}

/// Text safe to store and print: invalid UTF-8 replaced, control
/// characters (C0, DEL, C1: NUL, escapes, newlines) turned into spaces,
/// at most `max` bytes (cut at a character boundary).
pub fn clean_text(raw: &[u8], max: usize) -> String {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(text, max)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(info: &[u8]) -> Result<Listing, ListingError> {
        Listing::from_metadata(InfoHash::of_info(info), info)
    }

    #[test]
    fn a_multi_file_torrent() {
        let info = b"d5:filesld6:lengthi3e4:pathl1:a5:b.txteed4:attr1:p6:lengthi9e4:pathl4:.padeed6:lengthi4e4:pathl1:ceee4:name3:dir12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let r = record(info).expect("ok");
        assert_eq!(r.name, "dir");
        assert_eq!(r.file_count, 2);
        assert_eq!(r.size, 7);
        assert_eq!(r.files[0].path, "a/b.txt");
        assert!(!r.private);
        assert!(r.magnet().starts_with("magnet:?xt=urn:btih:"));
    }

    #[test]
    fn the_hash_must_match() {
        let info = b"d6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        assert_eq!(
            Listing::from_metadata(InfoHash([0; 20]), info),
            Err(ListingError::HashMismatch)
        );
        assert_eq!(record(info).expect("ok").file_count, 1);
    }

    #[test]
    fn hostile_names_and_paths_are_made_safe() {
        let long = "x".repeat(5000);
        let info = format!(
            "d5:filesld6:lengthi1e4:pathl3:a\0b{}:{long}eee4:name8:n\x1b[2J\nme12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei1ee",
            long.len()
        );
        let r = record(info.as_bytes()).expect("ok");
        assert_eq!(r.name, "n [2J me");
        assert!(r.files[0].path.starts_with("a b/x"));
        assert!(r.files[0].path.len() <= MAX_LISTED_PATH);
        assert!(r.private);
        // A name of control characters only, a negative length: refused.
        assert_eq!(
            record(
                b"d6:lengthi1e4:name2:\0\n12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae"
            ),
            Err(ListingError::NoName)
        );
        assert_eq!(
            record(b"d6:lengthi-1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae"),
            Err(ListingError::BadFiles)
        );
        assert_eq!(record(b"l1:xe"), Err(ListingError::NotDictionary));
    }

    #[test]
    fn a_huge_file_list_is_counted_but_cut() {
        let mut info = b"d5:filesl".to_vec();
        for i in 0..(MAX_LISTED_FILES + 500) {
            let name = i.to_string();
            info.extend_from_slice(
                format!("d6:lengthi2e4:pathl{}:{name}ee", name.len()).as_bytes(),
            );
        }
        info.extend_from_slice(b"e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae");
        let r = record(&info).expect("ok");
        assert_eq!(r.file_count, (MAX_LISTED_FILES + 500) as u64);
        assert_eq!(r.files.len(), MAX_LISTED_FILES);
        assert_eq!(r.size, 2 * (MAX_LISTED_FILES + 500) as u64);
    }

    /// Folders nested deep and wide (a liar's tree) cost their bytes, not a
    /// path per folder, and every file is found.
    #[test]
    fn a_deep_wide_v2_tree_is_walked_in_flat_memory() {
        let mut tree = b"d".to_vec();
        for i in 0..2000 {
            // 2,000 folders each 40 deep, each ending in one file.
            let name = format!("f{i:04}");
            tree.extend_from_slice(format!("{}:{name}d", name.len()).as_bytes());
            tree.extend_from_slice(&b"1:xd".repeat(39));
            tree.extend_from_slice(b"0:d6:lengthi1ee");
            tree.extend_from_slice(&b"e".repeat(39));
            tree.extend_from_slice(b"e");
        }
        tree.extend_from_slice(b"e");
        let mut info = b"d9:file tree".to_vec();
        info.extend_from_slice(&tree);
        info.extend_from_slice(b"12:meta versioni2e4:name1:t12:piece lengthi16384ee");
        let sha256: [u8; 32] = Sha256::digest(&info).into();
        let mut h = [0u8; 20];
        h.copy_from_slice(&sha256[..20]);
        let l = Listing::from_metadata(InfoHash(h), &info).expect("ok");
        assert_eq!(l.file_count, 2000);
        assert!(l.files[0].path.starts_with("f0000/x/x/"));
        assert_eq!(l.files[0].path.matches('/').count(), 39);
    }

    #[test]
    fn a_v2_file_tree() {
        let info = b"d9:file treed3:dird1:ad0:d6:lengthi5e11:pieces root32:rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrreee1:bd0:d6:lengthi1eeee12:meta versioni2e4:name3:top12:piece lengthi16384ee";
        let sha256: [u8; 32] = Sha256::digest(info).into();
        let mut h = [0u8; 20];
        h.copy_from_slice(&sha256[..20]);
        let r = Listing::from_metadata(InfoHash(h), info).expect("ok");
        assert_eq!(r.info_hash_v2, Some(sha256));
        assert_eq!(r.file_count, 2);
        assert_eq!(r.files[0].path, "b");
        assert_eq!(r.files[1].path, "dir/a");
        assert!(r.magnet().contains("btmh"));
        assert!(!r.magnet().contains("btih"));
    }
}
