//! A torrent's files on disk: what the engine's disk jobs do, as blocking
//! calls for the driver's blocking pool.
//!
//! - Paths come from the core's [`DiskPaths`]: validated (no component can
//!   escape the download folder) and distinct (no two files share a
//!   path); they are joined under the folder when a file is opened.
//! - An I/O error names the OS error and the file (`Not a directory`,
//!   `File name too long`, `No space left on device`); the last write
//!   error is kept for the session to report ([`Storage::write_error`]).
//! - Files are created when first written and sized sparse to their full
//!   length; padding files (BEP 47) are never created; zero-length files
//!   are created empty when the engine asks (`DiskOp::CreateEmpty`, once the
//!   torrent completes).
//! - Files the user did not select ([`Storage::set_wanted`]) are not
//!   created: their share of the pieces they have in common with selected
//!   files goes to the part file (`part_file.rs`), as libtorrent does, and
//!   is moved into the file if the user selects it later. A file that is
//!   already on disk when it is deselected keeps being used (libtorrent
//!   too), so a file's bytes are in the part file only while the file does
//!   not exist.
//! - Writes and reads are positioned (`write_at`/`read_at`): no shared file
//!   cursor, so jobs can run in parallel.
//! - Open handles are cached (least recently used goes first when the
//!   limit is reached), so a torrent of 100,000 files does not exhaust
//!   file descriptors.
//! - SHA-1 of a piece in memory is computed here too, on the same pool.
//! - On Linux, verified pieces are written with `O_DIRECT` where the file
//!   offsets allow it (4 KiB aligned runs): the data goes from our buffer
//!   to the device without being copied into the page cache, which on
//!   these machines cost more CPU than everything else in a download
//!   (filling fresh page-cache pages: 0.8–2.8 CPU-s per GiB with `dd`,
//!   against 0.2 s with `oflag=direct`). Unaligned heads and tails, and
//!   file systems that refuse `O_DIRECT` (tmpfs), use ordinary writes.
//!   Reads stay buffered; the kernel keeps the two coherent.
//! - The handle cache's lock is held only to find a handle, never during
//!   I/O, so jobs on the blocking pool run in parallel.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bittide_core::engine::{DiskOp, DiskResult};
use bittide_core::metainfo::{DiskPaths, FileLayout, FileSlice, Metainfo, PieceHash};

use direct::{
    aligned_slices, direct, direct_alignment, gather, with_write_buf, write_vectored_at,
    DIRECT_ALIGN, DIRECT_AT_LEAST, WRITE_CHUNK,
};
use part_file::PartFile;

mod direct;
mod part_file;
mod selection;

/// Most files kept open at once per torrent.
pub const MAX_OPEN_FILES: usize = 128;
/// Bytes read at a time when hashing a piece on disk.
const HASH_CHUNK: usize = 1 << 20;

#[derive(Debug)]
struct FileInfo {
    length: u64,
    padding: bool,
    /// Whether `O_DIRECT` writes are still worth trying for this file.
    direct: AtomicBool,
    /// The memory alignment its `O_DIRECT` writes ask (0 until it is first
    /// opened for them).
    direct_align: AtomicU64,
    /// The user selected it (all are, until [`Storage::set_wanted`]).
    wanted: AtomicBool,
    /// Its bytes go to and come from the part file: it is not wanted and
    /// was not on disk when that was decided. Changed only under the
    /// part file's lock.
    in_part: AtomicBool,
}

/// How a handle was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// Through the page cache.
    Buffered,
    /// `O_DIRECT` (aligned writes only).
    Direct,
    /// Opened for reading only (the file is not writable): serves reads,
    /// never a write, which opens the file itself and so reports why it
    /// cannot ("Permission denied", "Is a directory"), not a puzzling
    /// "Bad file descriptor".
    ReadOnly,
}

#[derive(Debug, Default)]
struct Handles {
    open: BTreeMap<(usize, Mode), (Arc<File>, u64)>,
    tick: u64,
}

/// Where a torrent's disk jobs run: files (`Storage`) or, in the simulator, memory.
///
/// The driver holds one per torrent and calls it from its blocking pool
/// (`Runtime::spawn_blocking`), never on the loop thread.
pub trait Disk: Send + Sync {
    /// Carries out one disk job of the engine.
    fn run(&self, op: DiskOp) -> DiskResult;
    /// Flushes written data to the device (before resume data is written).
    fn sync(&self) -> io::Result<()>;
}

impl std::fmt::Debug for dyn Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Disk")
    }
}

impl Disk for Storage {
    fn run(&self, op: DiskOp) -> DiskResult {
        Storage::run(self, op)
    }
    fn sync(&self) -> io::Result<()> {
        Storage::sync(self)
    }
}

/// How a torrent's files are laid out under its download folder
/// (qBittorrent's "content layout").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentLayout {
    /// As the .torrent names them: a single file in the folder, a
    /// multi-file torrent in its top folder.
    #[default]
    Original,
    /// A single-file torrent goes into a folder named after its file
    /// (less the extension); a multi-file torrent is as in `Original`.
    Subfolder,
    /// A multi-file torrent's top folder is left out: its files go
    /// straight into the download folder; a single file is as in
    /// `Original`.
    NoSubfolder,
}

/// One torrent's files; see the module documentation.
#[derive(Debug)]
pub struct Storage {
    folder: PathBuf,
    paths: DiskPaths,
    /// The name that replaces the torrent's own as the first component of
    /// every path (a renamed top folder, or a renamed single file).
    root: Option<String>,
    content_layout: ContentLayout,
    files: Vec<FileInfo>,
    layout: FileLayout,
    part: PartFile,
    handles: Mutex<Handles>,
    /// The last write that failed, as one line.
    write_error: Mutex<Option<String>>,
    /// Bytes read from and written to the files (session statistics: a
    /// restart that trusts its resume data reads nothing).
    read: AtomicU64,
    written: AtomicU64,
    /// No file is opened any more ([`Storage::close`]).
    closed: AtomicBool,
}

/// The folder `Subfolder` puts a single file `name` in: its name less the
/// extension, or the whole name when that leaves nothing usable.
fn subfolder_name(name: &str) -> String {
    match Path::new(name).file_stem().and_then(|s| s.to_str()) {
        Some(stem) if !stem.is_empty() && stem != "." && stem != ".." => stem.to_owned(),
        _ => name.to_owned(),
    }
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

/// Creates `dir` and its parents. An error names the path; when a file
/// is in the way, it names that file and says what opening a path through
/// it would (`Not a directory`: `mkdir` itself says only "File exists").
fn create_folders(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        match dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
            Some(file) => io::Error::new(
                io::ErrorKind::NotADirectory,
                format!(
                    "{}: {} (a file is in the way of a folder)",
                    file.display(),
                    not_a_directory()
                ),
            ),
            None => io::Error::new(e.kind(), format!("{}: {e}", dir.display())),
        }
    })
}

/// The OS's own words for ENOTDIR.
fn not_a_directory() -> io::Error {
    #[cfg(unix)]
    return io::Error::from_raw_os_error(libc::ENOTDIR);
    #[cfg(not(unix))]
    return io::ErrorKind::NotADirectory.into();
}

impl Storage {
    /// The files of `metainfo` under `folder`: `folder/<name>` for a
    /// single-file torrent, `folder/<name>/<path…>` otherwise, as
    /// [`DiskPaths`] maps them.
    pub fn new(folder: &Path, metainfo: &Metainfo<'_>) -> Storage {
        let info = &metainfo.info;
        let files = info
            .files()
            .iter()
            .map(|f| FileInfo {
                length: f.length,
                padding: f.attr.padding,
                direct: AtomicBool::new(cfg!(target_os = "linux")),
                direct_align: AtomicU64::new(0),
                wanted: AtomicBool::new(true),
                in_part: AtomicBool::new(false),
            })
            .collect();
        let layout = info.layout().clone();
        let part = PartFile::new(
            folder.join(format!(".{}.parts", metainfo.info_hash)),
            layout.piece_count(),
            u64::from(layout.piece_length()),
        );
        Storage {
            folder: folder.to_owned(),
            paths: DiskPaths::new(info),
            root: None,
            content_layout: ContentLayout::Original,
            files,
            layout,
            part,
            handles: Mutex::new(Handles::default()),
            write_error: Mutex::new(None),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// The download folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The same files under another top folder name (or, for a
    /// single-file torrent, another file name). `root` must be one valid
    /// path component; the caller checks it.
    pub fn with_root(mut self, root: Option<String>) -> Storage {
        self.root = root;
        self
    }

    /// The same files laid out as `layout` says. The paths stay inside
    /// the folder and distinct: [`DiskPaths`] made each component safe and
    /// every path unique, and a layout only adds a folder named from a
    /// safe component or drops the top folder all paths share.
    pub fn with_layout(mut self, layout: ContentLayout) -> Storage {
        self.content_layout = layout;
        self
    }

    /// Path of file `index`. The renamed root (see
    /// [`with_root`](Storage::with_root)) replaces the first component:
    /// the top folder, the subfolder `Subfolder` adds, or a single file's
    /// name; without a top folder (`NoSubfolder`) there is none to rename.
    pub fn path(&self, index: usize) -> Option<PathBuf> {
        let relative = self.paths.path(index)?;
        let root = |own: &str| self.root.clone().unwrap_or_else(|| own.to_owned());
        Some(match (relative.split_once('/'), self.content_layout) {
            (Some((_, rest)), ContentLayout::NoSubfolder) => self.folder.join(rest),
            (Some((top, rest)), _) => self.folder.join(root(top)).join(rest),
            (None, ContentLayout::Subfolder) => self
                .folder
                .join(root(&subfolder_name(relative)))
                .join(relative),
            (None, _) => self.folder.join(root(relative)),
        })
    }

    /// What qBittorrent calls the content path: a single file's path, a
    /// multi-file torrent's top folder, or the download folder when it
    /// has none (`NoSubfolder`).
    pub fn content_path(&self) -> PathBuf {
        match self.paths.path(0).and_then(|p| p.split_once('/')) {
            None => self.path(0).unwrap_or_else(|| self.folder.clone()),
            Some(_) if self.content_layout == ContentLayout::NoSubfolder => self.folder.clone(),
            Some((top, _)) => self.folder.join(self.root.as_deref().unwrap_or(top)),
        }
    }

    /// Where the bytes of unselected files are kept, `.<info-hash>.parts`
    /// in the download folder (it may not exist).
    pub fn part_path(&self) -> PathBuf {
        self.part.path().to_owned()
    }

    /// Files renamed so that no two share a path (torrent order).
    pub fn renamed(&self) -> &[usize] {
        self.paths.renamed()
    }

    /// Bytes read from the files so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes written to the files so far.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Closes every file; from now on every job fails. A torrent being
    /// removed (or moved) is closed first, so a job still running cannot
    /// create a file again after it was deleted.
    pub fn close(&self) {
        let mut h = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Relaxed);
        h.open.clear();
        self.part.close();
    }

    /// The last write that failed: the OS error and the path.
    pub fn write_error(&self) -> Option<String> {
        self.write_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `e` with the path it happened on.
    fn at_path(&self, index: usize, e: io::Error) -> io::Error {
        match self.path(index) {
            Some(p) => io::Error::new(e.kind(), format!("{}: {e}", p.display())),
            None => e,
        }
    }

    fn with_file<R>(
        &self,
        index: usize,
        create: bool,
        f: impl FnOnce(&File) -> io::Result<R>,
    ) -> io::Result<R> {
        let file = self.handle(index, create, Mode::Buffered)?;
        f(&file)
    }

    /// The cached handle of file `index` in `mode`, opened (and, with
    /// `create`, created and sized sparse) if needed. The lock is released
    /// before the caller's I/O.
    fn handle(&self, index: usize, create: bool, mode: Mode) -> io::Result<Arc<File>> {
        let info = self
            .files
            .get(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such file"))?;
        let path = self
            .path(index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such file"))?;
        let mut h = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Relaxed) {
            return Err(io::Error::other("the torrent's storage is closed"));
        }
        h.tick += 1;
        let tick = h.tick;
        let mut key = (index, mode);
        for k in [key, (index, Mode::ReadOnly)] {
            if let Some(entry) = h.open.get_mut(&k).filter(|_| !create || k == key) {
                entry.1 = tick;
                return Ok(entry.0.clone());
            }
        }
        let file = if create {
            if let Some(dir) = path.parent() {
                create_folders(dir)?;
            }
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            if mode == Mode::Direct {
                direct(&mut options);
            }
            let sized = options.open(&path).and_then(|file| {
                if file.metadata()?.len() < info.length {
                    // Sparse: no blocks are allocated until written.
                    file.set_len(info.length)?;
                }
                if mode == Mode::Direct {
                    info.direct_align
                        .store(direct_alignment(&file), Ordering::Relaxed);
                }
                Ok(file)
            });
            sized.map_err(|e| self.at_path(index, e))?
        } else {
            match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(_) => {
                    key.1 = Mode::ReadOnly;
                    File::open(&path).map_err(|e| self.at_path(index, e))?
                }
            }
        };
        if h.open.len() >= MAX_OPEN_FILES {
            let oldest = h.open.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k);
            if let Some(k) = oldest {
                h.open.remove(&k);
            }
        }
        let file = Arc::new(file);
        h.open.insert(key, (file.clone(), tick));
        Ok(file)
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
            if self
                .write_part(s, chunk)
                .map_err(|e| self.failed_write(e))?
            {
                continue;
            }
            self.with_file(s.file, true, |f| {
                write_all_at(f, chunk, s.offset).map_err(|e| self.at_path(s.file, e))
            })
            .map_err(|e| self.failed_write(e))?;
        }
        Ok(())
    }

    /// Keeps a failed write's error (which names its path) for
    /// [`write_error`](Storage::write_error).
    fn failed_write(&self, e: io::Error) -> io::Error {
        *self.write_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        e
    }

    /// Writes a piece given as its blocks across `slices`: each slice's
    /// bytes are gathered into this thread's buffer and written with as few
    /// calls as the alignment allows (`O_DIRECT` for the aligned middle).
    pub fn write_blocks(&self, slices: &[FileSlice], blocks: &[bytes::Bytes]) -> io::Result<()> {
        let mut pos = 0u64;
        for s in slices {
            let skip = s.padding || self.files.get(s.file).is_some_and(|f| f.padding);
            if !skip {
                let parted = self.in_part(s.file)
                    && with_write_buf(s.length as usize, |buf| {
                        gather(blocks, pos, buf)?;
                        self.write_part(s, buf)
                    })
                    .map_err(|e| self.failed_write(e))?;
                if !parted {
                    self.write_slice(s, blocks, pos)
                        .map_err(|e| self.failed_write(e))?;
                }
            }
            pos += s.length;
        }
        Ok(())
    }

    /// One slice: piece bytes `pos..pos + s.length` to `s.file` at
    /// `s.offset`.
    fn write_slice(&self, s: &FileSlice, blocks: &[bytes::Bytes], pos: u64) -> io::Result<()> {
        let start = s.offset;
        let end = s.offset + s.length;
        let mid_start = start.next_multiple_of(DIRECT_ALIGN);
        let mid_end = end / DIRECT_ALIGN * DIRECT_ALIGN;
        let use_direct = mid_end.saturating_sub(mid_start) >= DIRECT_AT_LEAST
            && self
                .files
                .get(s.file)
                .is_some_and(|f| f.direct.load(Ordering::Relaxed));
        // File bytes `from..to`, at most WRITE_CHUNK at a time (a
        // write-through run may be megabytes): with O_DIRECT straight from
        // the blocks when they are aligned for it, else through a pooled
        // buffer.
        let write = |from: u64, to: u64, mode: Mode| -> io::Result<()> {
            let mut at = from;
            while at < to {
                let n = (to - at).min(WRITE_CHUNK);
                let file = self.handle(s.file, true, mode)?;
                let align = self
                    .files
                    .get(s.file)
                    .map_or(0, |f| f.direct_align.load(Ordering::Relaxed));
                let from_blocks = match mode {
                    Mode::Direct if align > 0 => {
                        aligned_slices(blocks, pos + (at - start), n, align)
                    }
                    _ => None,
                };
                match from_blocks {
                    Some(slices) => write_vectored_at(&file, &slices, at),
                    None => with_write_buf(n as usize, |buf| {
                        gather(blocks, pos + (at - start), buf)?;
                        write_all_at(&file, buf, at)
                    }),
                }
                .map_err(|e| self.at_path(s.file, e))?;
                at += n;
            }
            Ok(())
        };
        let buffered = |from: u64, to: u64| write(from, to, Mode::Buffered);
        if !use_direct {
            return buffered(start, end);
        }
        buffered(start, mid_start)?;
        let written = write(mid_start, mid_end, Mode::Direct);
        match written {
            Ok(()) => {}
            // The file system does not do O_DIRECT (tmpfs, some network
            // file systems): from now on this file is written buffered.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                if let Some(f) = self.files.get(s.file) {
                    f.direct.store(false, Ordering::Relaxed);
                }
                buffered(mid_start, mid_end)?;
            }
            Err(e) => return Err(e),
        }
        buffered(mid_end, end)
    }

    /// Reads the bytes of `slices` (padding reads as zeros).
    pub fn read(&self, slices: &[FileSlice]) -> io::Result<Vec<u8>> {
        let total: u64 = slices.iter().map(|s| s.length).sum();
        let mut out = vec![0u8; total as usize];
        let mut at = 0usize;
        for s in slices {
            let len = s.length as usize;
            if !(s.padding || self.files.get(s.file).is_some_and(|f| f.padding)) {
                self.read_slice(s, 0, &mut out[at..at + len])?;
            }
            at += len;
        }
        Ok(out)
    }

    /// Creates the zero-length files among `files` that do not exist yet
    /// (no piece covers them, so no write creates them).
    pub fn create_empty(&self, files: &[u32]) -> io::Result<()> {
        for &i in files {
            let i = i as usize;
            let (Some(f), Some(path)) = (self.files.get(i), self.path(i)) else {
                continue;
            };
            let wanted = f.wanted.load(Ordering::Relaxed);
            if f.length == 0 && !f.padding && wanted && !path.exists() {
                if let Some(dir) = path.parent() {
                    create_folders(dir).map_err(|e| self.failed_write(e))?;
                }
                File::create(&path).map_err(|e| self.failed_write(self.at_path(i, e)))?;
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
        self.part.sync()
    }

    /// Carries out one disk job of the engine.
    pub fn run(&self, op: DiskOp) -> DiskResult {
        let count = |counter: &AtomicU64, slices: &[FileSlice]| {
            counter.fetch_add(slices.iter().map(|s| s.length).sum(), Ordering::Relaxed);
        };
        match op {
            DiskOp::Read {
                conn,
                block,
                slices,
            } => {
                let data = self.read(&slices).ok();
                if data.is_some() {
                    count(&self.read, &slices);
                }
                DiskResult::Read { conn, block, data }
            }
            DiskOp::Verify {
                first,
                pieces,
                blocks,
                slices,
            } => {
                let verdicts = bittide_core::engine::run_verdicts(&pieces, &blocks);
                // Written in the same job, and only once verified.
                let written =
                    verdicts.iter().all(|&ok| ok) && self.write_blocks(&slices, &blocks).is_ok();
                if written {
                    count(&self.written, &slices);
                }
                DiskResult::Verified {
                    first,
                    verdicts,
                    written,
                }
            }
            DiskOp::Check {
                piece,
                slices,
                hash,
            } => {
                let ok = self.matches(&slices, &hash).unwrap_or(false);
                count(&self.read, &slices);
                DiskResult::Checked { piece, ok }
            }
            DiskOp::Write {
                block,
                blocks,
                slices,
                hasher,
            } => {
                // Hashed before the write: the bytes are in the CPU's
                // caches now, and an O_DIRECT write does not bring them back.
                let hash = bittide_core::engine::write_hash(hasher, &blocks);
                let ok = self.write_blocks(&slices, &blocks).is_ok();
                if ok {
                    count(&self.written, &slices);
                }
                DiskResult::Written { block, ok, hash }
            }
            DiskOp::CreateEmpty { files } => DiskResult::Created {
                ok: self.create_empty(&files).is_ok(),
            },
        }
    }

    /// Whether the bytes of `slices` on disk (padding as zeros) hash to
    /// `hash`, read through one buffer of [`HASH_CHUNK`] bytes: pieces may
    /// be 512 MiB.
    pub fn matches(&self, slices: &[FileSlice], hash: &PieceHash) -> io::Result<bool> {
        let mut h = hash.checker();
        let mut buf =
            vec![0u8; HASH_CHUNK.min(slices.iter().map(|s| s.length).sum::<u64>() as usize)];
        for s in slices {
            let padding = s.padding || self.files.get(s.file).is_some_and(|f| f.padding);
            let mut done = 0u64;
            while done < s.length {
                let n = (s.length - done).min(buf.len() as u64) as usize;
                let chunk = &mut buf[..n];
                if padding {
                    chunk.fill(0);
                } else {
                    self.read_slice(s, done, chunk)?;
                }
                h.update(chunk);
                done += n as u64;
            }
        }
        Ok(h.finish())
    }
}

#[cfg(test)]
mod tests;
