//! Where a torrent's files go on disk: one path per file, relative to the
//! download folder, and never the same path for two files.
//!
//! A torrent names its files with byte strings ([`check_component`] has
//! already refused anything that could escape the folder). Turning them
//! into file names can make two files one:
//!
//! - the torrent lists the same path twice, or a path that is both a file
//!   and a folder (`a` and `a/b`);
//! - names that are not UTF-8: each invalid byte becomes `%XX` (so
//!   `b"\xff"` and `b"\xfe"` stay apart, where a lossy conversion made
//!   both `�`);
//! - names that differ only in case (`A.txt`, `a.txt`), which are one file
//!   on the file systems of Windows and macOS. They count as a collision
//!   on every platform, so a torrent gets the same file names wherever it
//!   is downloaded.
//!
//! A file whose path is already taken is renamed as libtorrent does, by a
//! number before the extension (`a.txt` → `a.1.txt`, the next free
//! number); a folder that clashes with a file is renamed the same way, for
//! every file below it. Files are taken in torrent order, so the result is
//! a function of the torrent alone. Padding files (BEP 47) are never
//! written and take no name.
//!
//! Paths are kept in one string with an offset per file: a torrent of
//! 500,000 files costs one allocation, not 500,000.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use super::Info;

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskPaths {
    /// Every path back to back, components joined with `/`.
    text: String,
    /// End of each file's path in `text`.
    ends: Vec<usize>,
    /// Files that were renamed, in torrent order.
    renamed: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taken {
    File,
    Folder,
}

/// A path as the collision check sees it: case folded, then hashed (the
/// table holds 16 bytes per path, not the path; a hash collision could
/// only rename a file that did not need it).
fn key(path: &str) -> [u8; 16] {
    let digest = Sha1::digest(path.to_lowercase().as_bytes());
    let mut k = [0; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// A component as text: UTF-8 kept, each byte of an invalid sequence
/// written as `%XX`.
pub fn component_text(bytes: &[u8], out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `name` with the number `n` before its extension (`a.txt` → `a.1.txt`;
/// `a` and `.hidden` get it at the end).
fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}.{n}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}.{n}"),
    }
}

impl DiskPaths {
    /// The paths of `info`'s files; see the module documentation.
    pub fn new(info: &Info<'_>) -> DiskPaths {
        let files = info.files().iter().map(|f| (&f.path[..], f.attr.padding));
        DiskPaths::from_files(info.name(), info.is_single_file(), files)
    }

    /// The paths of files given as (path components, is padding) below a
    /// torrent named `name_bytes` (the one file, if `single_file`). Components
    /// must have passed [`check_component`](super::check_component).
    pub fn from_files<'c>(
        name_bytes: &[u8],
        single_file: bool,
        files: impl ExactSizeIterator<Item = (&'c [&'c [u8]], bool)>,
    ) -> DiskPaths {
        let mut taken: BTreeMap<[u8; 16], Taken> = BTreeMap::new();
        // Folders already placed, by their path in the torrent (hashed).
        let mut folders: BTreeMap<[u8; 20], String> = BTreeMap::new();
        let mut text = String::new();
        let mut ends = Vec::with_capacity(files.len());
        let mut renamed = Vec::new();
        let mut name = String::new();
        component_text(name_bytes, &mut name);
        for (index, (path, padding)) in files.enumerate() {
            let start = text.len();
            if single_file {
                text.push_str(&name);
            } else {
                let mut parent = name.clone();
                let mut original = Sha1::new();
                original.update(name_bytes);
                let mut clashed = false;
                let mut components = path.iter().peekable();
                while let Some(c) = components.next() {
                    let mut part = String::new();
                    component_text(c, &mut part);
                    if components.peek().is_none() {
                        text.push_str(&parent);
                        text.push('/');
                        let (free, n) = free_name(&taken, &parent, &part, |t| t.is_some());
                        clashed |= n > 0;
                        text.push_str(&free);
                        break;
                    }
                    original.update([0]);
                    original.update(c);
                    let id: [u8; 20] = original.clone().finalize().into();
                    if let Some(placed) = folders.get(&id) {
                        parent.clone_from(placed);
                        continue;
                    }
                    let (free, n) = free_name(&taken, &parent, &part, |t| t == Some(Taken::File));
                    clashed |= n > 0;
                    parent = format!("{parent}/{free}");
                    taken.insert(key(&parent), Taken::Folder);
                    folders.insert(id, parent.clone());
                }
                if clashed {
                    renamed.push(index);
                }
            }
            if !padding && !single_file {
                taken.insert(key(&text[start..]), Taken::File);
            }
            ends.push(text.len());
        }
        DiskPaths {
            text,
            ends,
            renamed,
        }
    }

    /// File `index`'s path relative to the download folder, components
    /// joined with `/`.
    pub fn path(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1],
        };
        self.text.get(start..end)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the torrent has no files (never, for a valid one).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Files given another name than the torrent's so that no two share
    /// a path.
    pub fn renamed(&self) -> &[usize] {
        &self.renamed
    }
}

/// The first of `part`, `part` numbered 1, 2, … that is free under
/// `parent` (`clashes` says whether what holds a path is in the way), and
/// the number used (0: none).
fn free_name(
    taken: &BTreeMap<[u8; 16], Taken>,
    parent: &str,
    part: &str,
    clashes: impl Fn(Option<Taken>) -> bool,
) -> (String, u32) {
    let mut n = 0;
    let mut candidate = part.to_owned();
    while clashes(taken.get(&key(&format!("{parent}/{candidate}"))).copied()) {
        n += 1;
        candidate = numbered(part, n);
    }
    (candidate, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Value;
    use crate::metainfo::Metainfo;

    /// A multi-file torrent named `top` with these paths, 1 byte each.
    fn torrent(paths: &[&[&[u8]]]) -> Vec<u8> {
        let files = paths
            .iter()
            .map(|p| {
                Value::dict(vec![
                    (b"length", Value::int(1)),
                    (
                        b"path",
                        Value::list(p.iter().map(|c| Value::bytes(c)).collect()),
                    ),
                ])
            })
            .collect();
        let info = Value::dict(vec![
            (b"files", Value::list(files)),
            (b"name", Value::bytes(b"top")),
            (b"piece length", Value::int(16384)),
            (b"pieces", Value::bytes(&[0; 20][..])),
        ]);
        let mut out = Vec::new();
        Value::dict(vec![(b"info", info)]).encode(&mut out);
        out
    }

    fn paths(paths: &[&[&[u8]]]) -> (Vec<String>, Vec<usize>) {
        let bytes = torrent(paths);
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let d = DiskPaths::new(&m.info);
        let all = (0..d.len())
            .map(|i| d.path(i).unwrap().to_owned())
            .collect();
        (all, d.renamed().to_vec())
    }

    #[test]
    fn plain_paths_are_kept() {
        let (p, renamed) = paths(&[&[b"a", b"b.txt"], &[b"c"]]);
        assert_eq!(p, ["top/a/b.txt", "top/c"]);
        assert!(renamed.is_empty());
    }

    #[test]
    fn duplicates_and_case_variants_are_numbered() {
        let (p, renamed) = paths(&[
            &[b"x.txt"],
            &[b"x.txt"],
            &[b"X.TXT"],
            &[b"x.1.txt"],
            &[b"noext"],
            &[b"noext"],
        ]);
        assert_eq!(
            p,
            [
                "top/x.txt",
                "top/x.1.txt",
                "top/X.2.TXT",
                "top/x.1.1.txt",
                "top/noext",
                "top/noext.1"
            ]
        );
        assert_eq!(renamed, [1, 2, 3, 5]);
    }

    #[test]
    fn invalid_utf8_is_escaped_not_merged() {
        let (p, renamed) = paths(&[&[b"\xff"], &[b"\xfe"], &[b"caf\xc3\xa9"]]);
        assert_eq!(p, ["top/%FF", "top/%FE", "top/café"]);
        assert!(renamed.is_empty());
    }

    #[test]
    fn a_file_and_a_folder_of_the_same_name_are_kept_apart() {
        let (p, _) = paths(&[
            &[b"a"],
            &[b"a", b"b"],
            &[b"a", b"c"],
            &[b"d", b"e"],
            &[b"d"],
        ]);
        assert_eq!(p, ["top/a", "top/a.1/b", "top/a.1/c", "top/d/e", "top/d.1"]);
    }
}
