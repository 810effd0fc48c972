//! Content on disk: listing the files of a torrent-to-be and hashing its
//! pieces in parallel.
//!
//! The core's [`TorrentBuilder`] describes the torrent and its
//! [`FileLayout`] says which file bytes make up each piece; this module does
//! the reading, on as many threads as there are cores, and hands the hashes
//! back. Memory stays at one read buffer of [`READ_CHUNK`] bytes per
//! thread whatever the content's size or piece size (pieces of 512 MiB are
//! hashed as they are read, never held whole).

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread;

use bittide_core::metainfo::{FileLayout, TorrentBuilder, V2Piece, V2PieceHasher};
use bittide_core::PieceIndex;
use sha1::{Digest, Sha1};

/// Bytes read at a time by a hashing thread.
pub const READ_CHUNK: usize = 1 << 20;

/// Pieces one hashing thread did: (index, SHA-1, v2 digest if asked).
type HashedPieces = Vec<(u32, [u8; 20], Option<V2Piece>)>;

/// The files to put in a torrent, found on disk.
#[derive(Clone, Debug)]
pub struct Content {
    /// The torrent's name: the file's or the folder's own name.
    pub name: String,
    /// The file itself (single-file) or the folder.
    pub root: PathBuf,
    /// Whether `root` is a single file.
    pub single_file: bool,
    /// Files below `root` in torrent order (sorted by path), with lengths.
    pub files: Vec<(Vec<String>, u64)>,
}

/// Why content could not be read.
#[derive(Debug)]
pub enum ContentError {
    /// An I/O error on a path.
    Io(PathBuf, io::Error),
    /// A file or folder name that is not UTF-8 cannot go in a torrent
    /// portably.
    NotUtf8(PathBuf),
    /// The path has no usable final component (e.g. `/` or `..`).
    NoName(PathBuf),
    /// A file changed size while it was being hashed.
    Changed(PathBuf),
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ContentError::NotUtf8(p) => write!(f, "{}: name is not valid UTF-8", p.display()),
            ContentError::NoName(p) => {
                write!(f, "{}: cannot name a torrent after this path", p.display())
            }
            ContentError::Changed(p) => {
                write!(f, "{}: file changed while it was being read", p.display())
            }
        }
    }
}

impl std::error::Error for ContentError {}

fn utf8_name(path: &Path, name: &std::ffi::OsStr) -> Result<String, ContentError> {
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ContentError::NotUtf8(path.to_owned()))
}

impl Content {
    /// Lists `path`: one file, or every regular file below a folder.
    /// Symbolic links are skipped (following them could leave the folder or
    /// loop).
    pub fn scan(path: &Path) -> Result<Content, ContentError> {
        let io_err = |e| ContentError::Io(path.to_owned(), e);
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let canonical = std::fs::canonicalize(path).map_err(io_err)?;
        let name = canonical
            .file_name()
            .ok_or_else(|| ContentError::NoName(path.to_owned()))?;
        let name = utf8_name(path, name)?;
        if meta.is_file() {
            return Ok(Content {
                name,
                root: path.to_owned(),
                single_file: true,
                files: vec![(Vec::new(), meta.len())],
            });
        }
        let mut files = Vec::new();
        walk(path, &mut Vec::new(), &mut files)?;
        files.sort();
        Ok(Content {
            name,
            root: path.to_owned(),
            single_file: false,
            files,
        })
    }

    /// A builder describing this content, to which the caller adds
    /// trackers and options.
    pub fn builder(&self) -> TorrentBuilder {
        if self.single_file {
            TorrentBuilder::single_file(self.name.clone(), self.files[0].1)
        } else {
            let mut b = TorrentBuilder::multi_file(self.name.clone());
            for (path, length) in &self.files {
                b.add_file(path.clone(), *length);
            }
            b
        }
    }

    /// Total bytes of content.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.1).sum()
    }

    fn file_path(&self, index: usize) -> PathBuf {
        let mut p = self.root.clone();
        for c in &self.files[index].0 {
            p.push(c);
        }
        p
    }

    /// Hashes every piece of `layout` (which must come from this content's
    /// builder) on `threads` threads. `progress` counts hashed bytes as the
    /// work goes, for a progress bar.
    pub fn hash_pieces(
        &self,
        layout: &FileLayout,
        threads: usize,
        progress: &AtomicU64,
    ) -> Result<Vec<[u8; 20]>, ContentError> {
        self.hash_pieces_with(layout, threads, progress, false)
            .map(|(v1, _)| v1)
    }

    /// [`hash_pieces`](Content::hash_pieces), and with `v2` each piece's
    /// BEP 52 digest too (its file bytes only: padding is hashed as zeros
    /// into the SHA-1 and left out of the merkle tree).
    pub fn hash_pieces_with(
        &self,
        layout: &FileLayout,
        threads: usize,
        progress: &AtomicU64,
        v2: bool,
    ) -> Result<(Vec<[u8; 20]>, Vec<V2Piece>), ContentError> {
        let count = layout.piece_count() as usize;
        let next = AtomicU32::new(0);
        let failed = AtomicBool::new(false);
        let threads = threads.clamp(1, count.max(1));
        let results: Vec<Result<HashedPieces, ContentError>> = thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let r = self.hash_worker(layout, &next, progress, v2);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                            next.store(u32::MAX, Ordering::Relaxed);
                        }
                        r
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(ContentError::Io(
                            self.root.clone(),
                            io::Error::other("hashing thread panicked"),
                        ))
                    })
                })
                .collect()
        });
        let mut hashes = vec![[0u8; 20]; count];
        let empty = V2Piece {
            piece_root: [0; 32],
            file_root: None,
        };
        let mut digests = vec![empty; if v2 { count } else { 0 }];
        for r in results {
            for (piece, hash, digest) in r? {
                hashes[piece as usize] = hash;
                if let Some(d) = digest {
                    digests[piece as usize] = d;
                }
            }
        }
        Ok((hashes, digests))
    }

    /// Takes pieces from the shared counter until none are left.
    fn hash_worker(
        &self,
        layout: &FileLayout,
        next: &AtomicU32,
        progress: &AtomicU64,
        v2: bool,
    ) -> Result<HashedPieces, ContentError> {
        // Layout entries to content files: padding entries (BEP 47, in
        // hybrid and v2 layouts) have none.
        let mut real = Vec::with_capacity(layout.file_count());
        let mut n = 0;
        for i in 0..layout.file_count() {
            if layout.is_padding(i) {
                real.push(None);
            } else {
                real.push(Some(n));
                n += 1;
            }
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; READ_CHUNK.min(layout.piece_length() as usize)];
        let mut open: Option<(usize, File)> = None;
        loop {
            let piece = next.fetch_add(1, Ordering::Relaxed);
            if piece >= layout.piece_count() {
                return Ok(out);
            }
            let mut hash = Sha1::new();
            let mut tree = None;
            for slice in layout.piece_slices(PieceIndex(piece)) {
                let Some(file) = real.get(slice.file).copied().flatten() else {
                    // Padding: zeros in the SHA-1, nothing in the tree.
                    let zeros = [0u8; 4096];
                    let mut left = slice.length;
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        hash.update(&zeros[..n]);
                        left -= n as u64;
                    }
                    progress.fetch_add(slice.length, Ordering::Relaxed);
                    continue;
                };
                if v2 && tree.is_none() {
                    let whole = slice.offset == 0 && self.files[file].1 == slice.length;
                    tree = Some(V2PieceHasher::new(layout.piece_length(), whole));
                }
                if open.as_ref().map(|o| o.0) != Some(file) {
                    let path = self.file_path(file);
                    let handle = File::open(&path).map_err(|e| ContentError::Io(path, e))?;
                    open = Some((file, handle));
                }
                let Some((_, handle)) = &open else {
                    continue;
                };
                let mut done = 0u64;
                while done < slice.length {
                    let n = (slice.length - done).min(buf.len() as u64) as usize;
                    let dest = &mut buf[..n];
                    read_exact_at(handle, dest, slice.offset + done).map_err(|e| {
                        let path = self.file_path(file);
                        if e.kind() == io::ErrorKind::UnexpectedEof {
                            ContentError::Changed(path)
                        } else {
                            ContentError::Io(path, e)
                        }
                    })?;
                    hash.update(&*dest);
                    if let Some(t) = tree.as_mut() {
                        t.update(dest);
                    }
                    progress.fetch_add(n as u64, Ordering::Relaxed);
                    done += n as u64;
                }
            }
            out.push((
                piece,
                hash.finalize().into(),
                tree.map(V2PieceHasher::finish),
            ));
        }
    }
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, u64)>,
) -> Result<(), ContentError> {
    let io_err = |e| ContentError::Io(dir.to_owned(), e);
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| ContentError::Io(path.clone(), e))?;
        let name = utf8_name(&path, &entry.file_name())?;
        if kind.is_dir() {
            prefix.push(name);
            walk(&path, prefix, out)?;
            prefix.pop();
        } else if kind.is_file() {
            let len = entry
                .metadata()
                .map_err(|e| ContentError::Io(path.clone(), e))?
                .len();
            let mut p = prefix.clone();
            p.push(name);
            out.push((p, len));
        }
    }
    Ok(())
}

/// Positioned read of exactly `buf.len()` bytes (no shared file cursor, so
/// threads can share handles).
pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, buf, offset);
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset);
        match n {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittide_core::metainfo::{Metainfo, PieceHasher};

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bittide-content-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn parallel_hashes_match_sequential_hashing() {
        let dir = temp_dir("par");
        let top = dir.join("content");
        std::fs::create_dir_all(top.join("sub")).unwrap();
        let mut all = Vec::new();
        for (name, len) in [
            ("a", 70_000usize),
            ("sub/b", 0),
            ("sub/c", 1),
            ("z", 50_003),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            std::fs::write(top.join(name), &data).unwrap();
            all.extend_from_slice(&data);
        }
        let content = Content::scan(&top).unwrap();
        assert_eq!(content.name, "content");
        assert_eq!(content.files.len(), 4);
        let mut builder = content.builder();
        builder.set_piece_length(16384);
        let layout = builder.layout().unwrap();
        let progress = AtomicU64::new(0);
        let hashes = content.hash_pieces(&layout, 3, &progress).unwrap();
        assert_eq!(progress.load(Ordering::Relaxed), all.len() as u64);
        let mut seq = PieceHasher::new(16384);
        seq.update(&all);
        assert_eq!(hashes, seq.finish());
        let torrent = builder.build(&hashes).unwrap();
        let m = Metainfo::from_bytes(&torrent).unwrap();
        assert_eq!(m.info.files()[1].display_path(), "sub/b");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
