//! A torrent's files on disk: what the engine's disk jobs do, as blocking
//! calls for the driver's blocking pool.
//!
//! - Paths come from the core's validated metainfo (no component can
//!   escape the download folder) and are joined under the folder here, once.
//! - Files are created when first written and sized sparse to their full
//!   length; padding files (BEP 47) are never created; zero-length files
//!   are created empty when the torrent completes ([`Storage::finish`]).
//! - Writes and reads are positioned (`write_at`/`read_at`): no shared file
//!   cursor, so jobs can run in parallel.
//! - Open handles are cached (least recently used goes first when the
//!   limit is reached), so a torrent of 100,000 files does not exhaust
//!   file descriptors.
//! - SHA-1 of a piece in memory is computed here too, on the same pool.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bittide_core::engine::{DiskOp, DiskResult};
use bittide_core::metainfo::{FileSlice, Metainfo};
use sha1::{Digest, Sha1};

use crate::content::read_exact_at;

/// Most files kept open at once per torrent.
pub const MAX_OPEN_FILES: usize = 128;

#[derive(Debug)]
struct FileInfo {
    path: PathBuf,
    length: u64,
    padding: bool,
}

#[derive(Debug, Default)]
struct Handles {
    open: BTreeMap<usize, (File, u64)>,
    tick: u64,
}

/// One torrent's files; see the module documentation.
#[derive(Debug)]
pub struct Storage {
    files: Vec<FileInfo>,
    handles: Mutex<Handles>,
}

/// Positioned write of all of `buf` at `offset`.
pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::write_at(file, buf, offset);
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_write(file, buf, offset);
        match n {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Storage {
    /// The files of `metainfo` under `folder`: `folder/<name>` for a
    /// single-file torrent, `folder/<name>/<path…>` otherwise.
    pub fn new(folder: &Path, metainfo: &Metainfo<'_>) -> Storage {
        let info = &metainfo.info;
        let name = String::from_utf8_lossy(info.name()).into_owned();
        let files = info
            .files()
            .iter()
            .map(|f| {
                let mut path = folder.join(&name);
                for c in &f.path {
                    path.push(String::from_utf8_lossy(c).as_ref());
                }
                FileInfo {
                    path,
                    length: f.length,
                    padding: f.attr.padding,
                }
            })
            .collect();
        Storage {
            files,
            handles: Mutex::new(Handles::default()),
        }
    }

    /// Path of file `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.files.get(index).map(|f| f.path.as_path())
    }

    fn with_file<R>(
        &self,
        index: usize,
        create: bool,
        f: impl FnOnce(&File) -> io::Result<R>,
    ) -> io::Result<R> {
        let info = self
            .files
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such file"))?;
        let mut h = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        h.tick += 1;
        let tick = h.tick;
        if !h.open.contains_key(&index) {
            let file = if create {
                if let Some(dir) = info.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&info.path)?;
                if file.metadata()?.len() < info.length {
                    // Sparse: no blocks are allocated until written.
                    file.set_len(info.length)?;
                }
                file
            } else {
                match OpenOptions::new().read(true).write(true).open(&info.path) {
                    Ok(f) => f,
                    Err(_) => File::open(&info.path)?,
                }
            };
            if h.open.len() >= MAX_OPEN_FILES {
                let oldest = h.open.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    h.open.remove(&k);
                }
            }
            h.open.insert(index, (file, tick));
        }
        let entry = h
            .open
            .get_mut(&index)
            .ok_or_else(|| io::Error::other("file handle vanished"))?;
        entry.1 = tick;
        f(&entry.0)
    }

    /// Writes `data` across `slices` (padding skipped).
    pub fn write(&self, slices: &[FileSlice], data: &[u8]) -> io::Result<()> {
        let mut at = 0usize;
        for s in slices {
            let len = s.length as usize;
            let chunk = data
                .get(at..at + len)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "short data"))?;
            at += len;
            if s.padding || self.files.get(s.file).is_some_and(|f| f.padding) {
                continue;
            }
            self.with_file(s.file, true, |f| write_all_at(f, chunk, s.offset))?;
        }
        Ok(())
    }

    /// Writes a piece given as its blocks across `slices`, without first
    /// joining the blocks into one buffer.
    pub fn write_blocks(&self, slices: &[FileSlice], blocks: &[bytes::Bytes]) -> io::Result<()> {
        let mut block = 0usize;
        let mut in_block = 0usize;
        for s in slices {
            let mut need = s.length as usize;
            let mut file_offset = s.offset;
            let skip = s.padding || self.files.get(s.file).is_some_and(|f| f.padding);
            while need > 0 {
                let b = blocks
                    .get(block)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "short data"))?;
                let take = (b.len() - in_block).min(need);
                if !skip {
                    let chunk = &b[in_block..in_block + take];
                    self.with_file(s.file, true, |f| write_all_at(f, chunk, file_offset))?;
                }
                need -= take;
                file_offset += take as u64;
                in_block += take;
                if in_block == b.len() {
                    block += 1;
                    in_block = 0;
                }
            }
        }
        Ok(())
    }

    /// Reads the bytes of `slices` (padding reads as zeros).
    pub fn read(&self, slices: &[FileSlice]) -> io::Result<Vec<u8>> {
        let total: u64 = slices.iter().map(|s| s.length).sum();
        let mut out = vec![0u8; total as usize];
        let mut at = 0usize;
        for s in slices {
            let len = s.length as usize;
            if !(s.padding || self.files.get(s.file).is_some_and(|f| f.padding)) {
                let dest = &mut out[at..at + len];
                self.with_file(s.file, false, |f| read_exact_at(f, dest, s.offset))?;
            }
            at += len;
        }
        Ok(out)
    }

    /// Creates zero-length files (they have no piece to trigger it).
    pub fn finish(&self) -> io::Result<()> {
        for f in &self.files {
            if f.length == 0 && !f.padding && !f.path.exists() {
                if let Some(dir) = f.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                File::create(&f.path)?;
            }
        }
        Ok(())
    }

    /// Flushes written data to the device (before writing resume data).
    pub fn sync(&self) -> io::Result<()> {
        let h = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        for (file, _) in h.open.values() {
            file.sync_data()?;
        }
        Ok(())
    }

    /// Carries out one disk job of the engine.
    pub fn run(&self, op: DiskOp) -> DiskResult {
        match op {
            DiskOp::Write {
                piece,
                blocks,
                slices,
            } => DiskResult::Written {
                piece,
                ok: self.write_blocks(&slices, &blocks).is_ok(),
            },
            DiskOp::Read {
                conn,
                block,
                slices,
            } => DiskResult::Read {
                conn,
                block,
                data: self.read(&slices).ok(),
            },
            DiskOp::Verify {
                piece,
                blocks,
                hash,
            } => {
                let mut h = Sha1::new();
                for b in &blocks {
                    h.update(b);
                }
                DiskResult::Verified {
                    piece,
                    ok: <[u8; 20]>::from(h.finalize()) == hash,
                }
            }
            DiskOp::Check {
                piece,
                slices,
                hash,
            } => {
                let ok = self
                    .read(&slices)
                    .map(|d| <[u8; 20]>::from(Sha1::digest(&d)) == hash)
                    .unwrap_or(false);
                DiskResult::Checked { piece, ok }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bittide_core::metainfo::{PieceHasher, TorrentBuilder};
    use bittide_core::PieceIndex;

    #[test]
    fn writes_land_in_the_right_files_and_read_back() {
        let dir = std::env::temp_dir().join(format!("bittide-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut b = TorrentBuilder::multi_file("top");
        b.add_file(vec!["a".into()], 20_000)
            .add_file(vec!["empty".into()], 0)
            .add_file(vec!["sub".into(), "b".into()], 30_000)
            .set_piece_length(16384);
        let mut h = PieceHasher::new(16384);
        h.update(&data);
        let bytes = b.build(&h.finish()).unwrap();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let storage = Storage::new(&dir, &m);
        let layout = m.info.layout();
        for p in (0..layout.piece_count()).rev() {
            let piece = PieceIndex(p);
            let slices: Vec<FileSlice> = layout.piece_slices(piece).collect();
            let start = layout.piece_offset(piece) as usize;
            let len = layout.piece_size(piece) as usize;
            storage.write(&slices, &data[start..start + len]).unwrap();
            let hash = m.info.piece_hash(piece).unwrap();
            assert_eq!(
                storage.run(DiskOp::Check {
                    piece,
                    slices,
                    hash
                }),
                DiskResult::Checked { piece, ok: true }
            );
        }
        // The block-wise writer lays out the same bytes.
        let blocks: Vec<bytes::Bytes> = data
            .chunks(16384)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let all: Vec<FileSlice> = (0..layout.piece_count())
            .flat_map(|p| layout.piece_slices(PieceIndex(p)).collect::<Vec<_>>())
            .collect();
        storage.write_blocks(&all, &blocks).unwrap();
        storage.finish().unwrap();
        storage.sync().unwrap();
        assert_eq!(std::fs::read(dir.join("top/a")).unwrap(), &data[..20_000]);
        assert_eq!(
            std::fs::read(dir.join("top/sub/b")).unwrap(),
            &data[20_000..]
        );
        assert_eq!(std::fs::metadata(dir.join("top/empty")).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
