//! The part file: where the bytes of files the user did not select go.
//!
//! A piece may straddle a selected file and an unselected one; the engine
//! downloads and verifies the whole piece, so the unselected file's share
//! of it has to be kept somewhere. libtorrent keeps it in one hidden file
//! per torrent, `.<info-hash>.parts` in the download folder, rather than
//! creating the unselected file at full (sparse) size; so do we.
//!
//! Layout (libtorrent's, so either reads the other's: `part_file.rs` in
//! `tests/` checks both ways): a header of `u32 piece count`, `u32 piece
//! length`, then one `i32` per piece, the slot holding it or -1, all
//! big-endian, padded to a multiple of 1 KiB; then slots of one piece
//! length each. A piece's bytes sit in its slot at their offset inside
//! the piece; only the unselected files' shares are ever written, the
//! rest of a slot stays a hole. Slots freed when a file is selected again
//! are reused. Each header entry is written when its slot is taken or
//! freed, so the file is always self-describing; resume data is written
//! only after [`PartFile::sync`], so it never claims a piece whose bytes are
//! not here.
//!
//! Slots (not a sparse file indexed by piece, which would also do on
//! Linux) keep the file's apparent size to what it holds: a 100 GiB
//! torrent's last boundary piece would otherwise make a 100 GiB file that
//! `ls` and copying tools take at its word.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::write_all_at;
use crate::content::read_exact_at;

/// Header sizes are rounded up to this.
const HEADER_ALIGN: u64 = 1024;
/// A header entry for a piece not held.
const NO_SLOT: u32 = u32::MAX;

/// One torrent's part file; see the module documentation. All of its
/// I/O happens under one lock: it holds only boundary pieces, so it is
/// never busy, and the lock also orders a write against a file being
/// moved out ([`super::Storage::set_wanted`]).
#[derive(Debug)]
pub(super) struct PartFile {
    path: PathBuf,
    slots: Mutex<Slots>,
}

/// The part file's state, behind [`PartFile`]'s lock.
#[derive(Debug)]
pub(super) struct Slots {
    path: PathBuf,
    piece_count: u32,
    piece_length: u64,
    /// The header was read (or found absent).
    loaded: bool,
    /// Piece → slot.
    map: BTreeMap<u32, u32>,
    /// Slots below `allocated` not in use.
    free: BTreeSet<u32>,
    allocated: u32,
    file: Option<File>,
    closed: bool,
}

impl PartFile {
    /// The part file at `path` for a torrent of `piece_count` pieces of
    /// `piece_length` bytes. Nothing is read or created until it is used.
    pub(super) fn new(path: PathBuf, piece_count: u32, piece_length: u64) -> PartFile {
        PartFile {
            path: path.clone(),
            slots: Mutex::new(Slots {
                path,
                piece_count,
                piece_length,
                loaded: false,
                map: BTreeMap::new(),
                free: BTreeSet::new(),
                allocated: 0,
                file: None,
                closed: false,
            }),
        }
    }

    /// Where it is.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Its state, the header read on first use. A header that does not
    /// describe this torrent (another piece count or length, cut short)
    /// counts as an empty part file, as libtorrent counts it.
    pub(super) fn lock(&self) -> io::Result<MutexGuard<'_, Slots>> {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if s.closed {
            return Err(io::Error::other("the torrent's storage is closed"));
        }
        if !s.loaded {
            s.load().map_err(|e| s.at_path(e))?;
            s.loaded = true;
        }
        Ok(s)
    }

    /// Closes the file; from now on every use fails.
    pub(super) fn close(&self) {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        s.closed = true;
        s.file = None;
    }

    /// Flushes it to the device, if it is open.
    pub(super) fn sync(&self) -> io::Result<()> {
        let s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match &s.file {
            Some(f) => f.sync_data().map_err(|e| s.at_path(e)),
            None => Ok(()),
        }
    }
}

impl Slots {
    fn header_len(&self) -> u64 {
        (8 + 4 * u64::from(self.piece_count)).next_multiple_of(HEADER_ALIGN)
    }

    fn slot_offset(&self, slot: u32) -> u64 {
        self.header_len() + u64::from(slot) * self.piece_length
    }

    fn at_path(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }

    fn load(&mut self) -> io::Result<()> {
        let file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut header = vec![0u8; self.header_len() as usize];
        if file.metadata()?.len() < header.len() as u64 {
            return Ok(());
        }
        read_exact_at(&file, &mut header, 0)?;
        let word =
            |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        if word(0) != self.piece_count || u64::from(word(4)) != self.piece_length {
            return Ok(());
        }
        let mut used = BTreeSet::new();
        for piece in 0..self.piece_count {
            let slot = word(8 + 4 * piece as usize);
            // An entry past the last possible slot, or a slot claimed
            // twice, is damage: that piece is not held.
            if slot < self.piece_count && used.insert(slot) {
                self.map.insert(piece, slot);
            }
        }
        self.allocated = used.last().map_or(0, |s| s + 1);
        self.free = (0..self.allocated).filter(|s| !used.contains(s)).collect();
        self.file = Some(file);
        Ok(())
    }

    /// The open file, created with an empty header if it is not there.
    fn file(&mut self) -> io::Result<&File> {
        let file = match self.file.take() {
            Some(f) => f,
            None => {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&self.path)?;
                let mut header = vec![0xffu8; self.header_len() as usize];
                header[..4].copy_from_slice(&self.piece_count.to_be_bytes());
                header[4..8].copy_from_slice(&(self.piece_length as u32).to_be_bytes());
                write_all_at(&file, &header, 0)?;
                file
            }
        };
        Ok(self.file.insert(file))
    }

    fn set_entry(&mut self, piece: u32, slot: u32) -> io::Result<()> {
        let at = 8 + 4 * u64::from(piece);
        write_all_at(self.file()?, &slot.to_be_bytes(), at)
    }

    /// Whether `piece` has a slot.
    pub(super) fn holds(&self, piece: u32) -> bool {
        self.map.contains_key(&piece)
    }

    /// Whether any of `pieces` has a slot.
    pub(super) fn holds_any(&self, pieces: Range<u32>) -> bool {
        self.map.range(pieces).next().is_some()
    }

    /// The pieces held.
    pub(super) fn pieces(&self) -> Vec<u32> {
        self.map.keys().copied().collect()
    }

    /// Writes `data` at `offset` inside `piece`, taking a slot for it if
    /// it has none.
    pub(super) fn write(&mut self, piece: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_inner(piece, offset, data)
            .map_err(|e| self.at_path(e))
    }

    fn write_inner(&mut self, piece: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        if piece >= self.piece_count || offset + data.len() as u64 > self.piece_length {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write outside its piece",
            ));
        }
        let slot = match self.map.get(&piece) {
            Some(&slot) => slot,
            None => {
                let slot = match self.free.pop_first() {
                    Some(s) => s,
                    None => {
                        self.allocated += 1;
                        self.allocated - 1
                    }
                };
                self.set_entry(piece, slot)?;
                self.map.insert(piece, slot);
                slot
            }
        };
        let at = self.slot_offset(slot) + offset;
        write_all_at(self.file()?, data, at)
    }

    /// Reads `buf.len()` bytes at `offset` inside `piece`; `NotFound` if
    /// the piece has no slot.
    pub(super) fn read(&mut self, piece: u32, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let Some(&slot) = self.map.get(&piece) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: piece {piece} is not there", self.path.display()),
            ));
        };
        let at = self.slot_offset(slot) + offset;
        let r = read_exact_at(self.file()?, buf, at);
        r.map_err(|e| self.at_path(e))
    }

    /// Gives up `piece`'s slot (for reuse).
    pub(super) fn free(&mut self, piece: u32) -> io::Result<()> {
        if let Some(slot) = self.map.remove(&piece) {
            self.free.insert(slot);
            self.set_entry(piece, NO_SLOT)
                .map_err(|e| self.at_path(e))?;
        }
        Ok(())
    }

    /// Deletes the file if it holds nothing.
    pub(super) fn remove_if_empty(&mut self) -> io::Result<()> {
        // Not open: there is no part file, or one of another torrent's
        // shape that the first write replaces (removing nothing keeps a
        // read-only download folder usable).
        if !self.map.is_empty() || self.file.take().is_none() {
            return Ok(());
        }
        self.free.clear();
        self.allocated = 0;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.at_path(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bittide-parts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn pieces_survive_reopening_and_slots_are_reused() {
        let dir = temp("reopen");
        let path = dir.join(".abc.parts");
        let part = PartFile::new(path.clone(), 300, 1000);
        {
            let mut s = part.lock().unwrap();
            s.write(7, 10, b"seven").unwrap();
            s.write(250, 0, &[9u8; 1000]).unwrap();
            s.write(7, 990, b"end of 7!!").unwrap();
            assert!(s.write(8, 995, b"too long").is_err());
        }
        part.sync().unwrap();
        // Header of 8 + 4 * 300 bytes rounded to 2048, then two slots.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2048 + 2000);
        drop(part);

        let part = PartFile::new(path.clone(), 300, 1000);
        let mut s = part.lock().unwrap();
        assert_eq!(s.pieces(), vec![7, 250]);
        let mut buf = [0u8; 5];
        s.read(7, 10, &mut buf).unwrap();
        assert_eq!(&buf, b"seven");
        let mut buf = [0u8; 10];
        s.read(7, 990, &mut buf).unwrap();
        assert_eq!(&buf, b"end of 7!!");
        let e = s.read(8, 0, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains(".abc.parts"), "{e}");

        // Piece 7's slot (0) goes to the next new piece; the file does
        // not grow.
        s.free(7).unwrap();
        s.write(3, 0, b"three").unwrap();
        assert_eq!(s.map.get(&3), Some(&0));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2048 + 2000);
        assert!(s.holds_any(0..4) && !s.holds_any(4..250));
        s.remove_if_empty().unwrap();
        assert!(path.exists(), "still holds pieces");
        s.free(3).unwrap();
        s.free(250).unwrap();
        s.remove_if_empty().unwrap();
        assert!(!path.exists());
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_header_for_another_torrent_counts_as_empty() {
        let dir = temp("other");
        let path = dir.join(".x.parts");
        {
            let part = PartFile::new(path.clone(), 10, 512);
            part.lock().unwrap().write(1, 0, b"x").unwrap();
        }
        let part = PartFile::new(path.clone(), 10, 1024);
        let mut s = part.lock().unwrap();
        assert!(s.pieces().is_empty());
        // Written over from scratch on the first write.
        s.write(2, 0, b"y").unwrap();
        assert_eq!(s.pieces(), vec![2]);
        drop(s);
        let again = PartFile::new(path, 10, 1024);
        assert_eq!(again.lock().unwrap().pieces(), vec![2]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_closed_part_file_refuses_work() {
        let part = PartFile::new(temp("closed").join(".y.parts"), 4, 16);
        part.close();
        assert!(part.lock().is_err());
    }
}
