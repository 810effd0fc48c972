//! Which of a torrent's files the user selected, and where the bytes of
//! the others go: the part file while a file is not on disk, else the
//! file itself (see the module documentation of [`super`]).

use std::io;
use std::sync::atomic::Ordering;

use bittide_core::metainfo::FileSlice;
use bittide_core::picker::Priority;
use bittide_core::PieceIndex;

use super::part_file::Slots;
use super::{write_all_at, Mode, Storage, HASH_CHUNK};
use crate::content::read_exact_at;

impl Storage {
    /// Whether file `file`'s bytes go to the part file.
    pub(super) fn in_part(&self, file: usize) -> bool {
        self.files
            .get(file)
            .is_some_and(|f| f.in_part.load(Ordering::Acquire))
    }

    /// The piece holding slice `s`, and where in it the slice starts.
    pub(super) fn piece_of(&self, s: &FileSlice) -> io::Result<(u32, u64)> {
        let (piece, at) = self
            .layout
            .locate(s.file, s.offset)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "slice outside its file"))?;
        Ok((piece.0, u64::from(at)))
    }

    /// Writes `data`, the bytes of slice `s`, to the part file if its
    /// file's bytes go there; `false` if they do not. The part file keeps
    /// bytes by piece, and a slice of a run of pieces may cross from one
    /// into the next: it is written piece by piece.
    pub(super) fn write_part(&self, s: &FileSlice, data: &[u8]) -> io::Result<bool> {
        if !self.in_part(s.file) {
            return Ok(false);
        }
        let mut part = self.part.lock()?;
        // Again under the lock: the file may have been selected, and its
        // bytes moved out, meanwhile.
        if !self.in_part(s.file) {
            return Ok(false);
        }
        let piece_length = u64::from(self.layout.piece_length());
        let mut done = 0u64;
        while done < s.length {
            let rest = FileSlice {
                offset: s.offset + done,
                length: s.length - done,
                ..*s
            };
            let (piece, at) = self.piece_of(&rest)?;
            let n = rest.length.min(piece_length - at);
            let (from, to) = (done as usize, (done + n) as usize);
            let bytes = data.get(from..to).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "short data for a slice")
            })?;
            part.write(piece, at, bytes)?;
            done += n;
        }
        Ok(true)
    }

    /// Reads bytes `from..from + buf.len()` of slice `s`: from the part
    /// file if it holds them, else from the file.
    pub(super) fn read_slice(&self, s: &FileSlice, from: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.in_part(s.file) {
            let (piece, at) = self.piece_of(s)?;
            let mut part = self.part.lock()?;
            if self.in_part(s.file) && part.holds(piece) {
                return part.read(piece, at + from, buf);
            }
        }
        self.with_file(s.file, false, |f| {
            read_exact_at(f, buf, s.offset + from).map_err(|e| self.at_path(s.file, e))
        })
    }

    /// Which files the user selected: file `i` if `wanted[i]` (files past
    /// the end of `wanted` are). A file selected again gets its bytes
    /// back from the part file (and is created then); a deselected file
    /// that is not on disk is not created, its share of the pieces it has
    /// in common with selected files goes to the part file. Slots no file
    /// needs any more are freed, and an empty part file is deleted. A
    /// failure (which names the path) is also kept as the last write
    /// error; the selection of the files before the one that failed holds.
    pub fn set_wanted(&self, wanted: &[bool]) -> io::Result<()> {
        self.apply_wanted(wanted).map_err(|e| self.failed_write(e))
    }

    /// Which files are selected ([`set_wanted`](Storage::set_wanted)).
    pub fn wanted(&self) -> Vec<bool> {
        self.files
            .iter()
            .map(|f| f.wanted.load(Ordering::Relaxed))
            .collect()
    }

    /// [`set_wanted`](Storage::set_wanted) from file priorities: every
    /// file but those to skip (all of them for `None`).
    pub fn set_priorities(&self, priorities: Option<&[Priority]>) -> io::Result<()> {
        let wanted: Vec<bool> = priorities
            .unwrap_or_default()
            .iter()
            .map(|p| *p != Priority::Skip)
            .collect();
        self.set_wanted(&wanted)
    }

    fn apply_wanted(&self, wanted: &[bool]) -> io::Result<()> {
        let mut part = self.part.lock()?;
        for (i, f) in self.files.iter().enumerate() {
            let want = wanted.get(i).copied().unwrap_or(true);
            f.wanted.store(want, Ordering::Relaxed);
            if f.padding {
                continue;
            }
            let exists = || self.path(i).is_some_and(|p| p.symlink_metadata().is_ok());
            if want {
                let pieces = self.layout.file_pieces(i);
                // Bytes of a file that is not on disk can only have been
                // written to the part file (a write to the file creates it).
                if part.holds_any(pieces.start.0..pieces.end.0)
                    && (f.in_part.load(Ordering::Acquire) || !exists())
                {
                    self.export(&mut part, i)?;
                }
                f.in_part.store(false, Ordering::Release);
            } else {
                // Once its bytes are in the part file they stay there; a
                // file on disk is used (libtorrent does the same).
                let pieces = self.layout.file_pieces(i);
                let held = part.holds_any(pieces.start.0..pieces.end.0);
                let keep = f.in_part.load(Ordering::Acquire) && held;
                f.in_part.store(keep || !exists(), Ordering::Release);
            }
        }
        for piece in part.pieces() {
            let needed = self
                .layout
                .piece_slices(PieceIndex(piece))
                .any(|s| self.in_part(s.file));
            if !needed {
                part.free(piece)?;
            }
        }
        part.remove_if_empty()
    }

    /// Copies file `i`'s bytes held in the part file into the file
    /// (created and sized sparse first).
    fn export(&self, part: &mut Slots, i: usize) -> io::Result<()> {
        let pieces = self.layout.file_pieces(i);
        let mut buf = Vec::new();
        for piece in pieces.start.0..pieces.end.0 {
            if !part.holds(piece) {
                continue;
            }
            let slices = self.layout.piece_slices(PieceIndex(piece));
            for s in slices.filter(|s| s.file == i) {
                let (_, at) = self.piece_of(&s)?;
                let file = self.handle(i, true, Mode::Buffered)?;
                // In chunks: pieces may be 512 MiB.
                let mut done = 0u64;
                while done < s.length {
                    let n = (s.length - done).min(HASH_CHUNK as u64);
                    buf.resize(n as usize, 0);
                    part.read(piece, at + done, &mut buf)?;
                    write_all_at(&file, &buf, s.offset + done).map_err(|e| self.at_path(i, e))?;
                    done += n;
                }
            }
        }
        Ok(())
    }
}
