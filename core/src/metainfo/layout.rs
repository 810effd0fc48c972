//! The file layout: where each piece's bytes live on disk.
//!
//! BitTorrent hashes the concatenation of all files in torrent order, cut
//! into pieces of `piece length` bytes (the last one shorter). A piece may
//! span many small files, and a file many pieces. Padding files (BEP 47) take
//! their place in that concatenation, which is how they align the next file
//! to a piece boundary, but are never written: their bytes are zeros by
//! definition.
//!
//! `FileLayout` maps both ways: (piece, offset, length) to the file slices
//! that hold those bytes, and a file to the pieces that cover it.

use std::ops::Range;

use super::PieceIndex;

/// One file's place in the torrent's byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    start: u64,
    length: u64,
    padding: bool,
}

/// A contiguous run of bytes inside one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSlice {
    /// Index of the file in the torrent's file list.
    pub file: usize,
    /// Offset of the run inside that file.
    pub offset: u64,
    /// Length of the run in bytes.
    pub length: u64,
    /// The file is a BEP 47 padding file: read zeros, write nothing.
    pub padding: bool,
}

/// Piece and file geometry of one torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLayout {
    piece_length: u64,
    total_length: u64,
    piece_count: u32,
    files: Vec<Extent>,
}

impl FileLayout {
    /// The layout of files with these `(length, is_padding)` in torrent
    /// order. Returns `None` if the total overflows or the piece count would
    /// not fit in a `u32`; `piece_length` must be non-zero.
    pub fn new(
        piece_length: u32,
        files: impl IntoIterator<Item = (u64, bool)>,
    ) -> Option<FileLayout> {
        if piece_length == 0 {
            return None;
        }
        let mut start = 0u64;
        let mut extents = Vec::new();
        for (length, padding) in files {
            extents.push(Extent {
                start,
                length,
                padding,
            });
            start = start.checked_add(length)?;
        }
        let piece_length = u64::from(piece_length);
        let piece_count = u32::try_from(start.div_ceil(piece_length)).ok()?;
        Some(FileLayout {
            piece_length,
            total_length: start,
            piece_count,
            files: extents,
        })
    }

    /// Nominal piece length.
    pub fn piece_length(&self) -> u32 {
        // Fits: it was given as a u32.
        self.piece_length as u32
    }

    /// Sum of all file lengths, padding included.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Number of files, padding included.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Size of `piece`: the piece length, except for a shorter last piece;
    /// 0 for a piece past the end.
    pub fn piece_size(&self, piece: PieceIndex) -> u32 {
        let start = self.piece_offset(piece);
        let end = (start + self.piece_length).min(self.total_length);
        // At most piece_length, which is a u32.
        end.saturating_sub(start) as u32
    }

    /// Offset of `piece` in the torrent's byte stream.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        u64::from(piece.0) * self.piece_length
    }

    /// Byte range of `file` in the torrent's byte stream.
    pub fn file_range(&self, file: usize) -> Option<Range<u64>> {
        self.files.get(file).map(|e| e.start..e.start + e.length)
    }

    /// Whether `file` is a padding file.
    pub fn is_padding(&self, file: usize) -> bool {
        self.files.get(file).is_some_and(|e| e.padding)
    }

    /// The pieces that hold some byte of `file` (empty for a zero-length
    /// file).
    pub fn file_pieces(&self, file: usize) -> Range<PieceIndex> {
        match self.files.get(file) {
            Some(e) if e.length > 0 => {
                let first = e.start / self.piece_length;
                let last = (e.start + e.length - 1) / self.piece_length;
                // Both below piece_count, which is a u32.
                PieceIndex(first as u32)..PieceIndex(last as u32 + 1)
            }
            _ => PieceIndex(0)..PieceIndex(0),
        }
    }

    /// The piece and offset inside it that hold byte `offset` of `file`.
    pub fn locate(&self, file: usize, offset: u64) -> Option<(PieceIndex, u32)> {
        let e = self.files.get(file)?;
        if offset >= e.length {
            return None;
        }
        let abs = e.start + offset;
        Some((
            PieceIndex((abs / self.piece_length) as u32),
            (abs % self.piece_length) as u32,
        ))
    }

    /// The file slices holding `length` bytes at `offset` inside `piece`,
    /// in order. Zero-length files are skipped. Bytes past the end of the
    /// torrent are not covered (the iterator stops there).
    pub fn slices(&self, piece: PieceIndex, offset: u32, length: u32) -> Slices<'_> {
        let start = self.piece_offset(piece) + u64::from(offset);
        let end = (start + u64::from(length)).min(self.total_length);
        // First file that ends after `start`.
        let file = self.files.partition_point(|e| e.start + e.length <= start);
        Slices {
            layout: self,
            file,
            pos: start,
            end,
        }
    }

    /// The file slices of a whole piece.
    pub fn piece_slices(&self, piece: PieceIndex) -> Slices<'_> {
        self.slices(piece, 0, self.piece_size(piece))
    }
}

/// Iterator over [`FileSlice`]s; see [`FileLayout::slices`].
#[derive(Clone, Debug)]
pub struct Slices<'l> {
    layout: &'l FileLayout,
    file: usize,
    pos: u64,
    end: u64,
}

impl Iterator for Slices<'_> {
    type Item = FileSlice;

    fn next(&mut self) -> Option<FileSlice> {
        while self.pos < self.end {
            let e = self.layout.files.get(self.file)?;
            let file_end = e.start + e.length;
            if file_end <= self.pos {
                self.file += 1;
                continue;
            }
            let take = file_end.min(self.end) - self.pos;
            let slice = FileSlice {
                file: self.file,
                offset: self.pos - e.start,
                length: take,
                padding: e.padding,
            };
            self.pos += take;
            self.file += 1;
            return Some(slice);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(piece: u32, files: &[u64]) -> FileLayout {
        FileLayout::new(piece, files.iter().map(|&l| (l, false))).unwrap()
    }

    #[test]
    fn last_piece_is_shorter() {
        let l = layout(16384, &[40000]);
        assert_eq!(l.piece_count(), 3);
        assert_eq!(l.piece_size(PieceIndex(0)), 16384);
        assert_eq!(l.piece_size(PieceIndex(2)), 40000 - 2 * 16384);
        assert_eq!(l.piece_size(PieceIndex(3)), 0);
    }

    #[test]
    fn a_piece_spanning_many_small_files() {
        let l = layout(16384, &[100, 0, 200, 16000, 5000]);
        let s: Vec<_> = l.piece_slices(PieceIndex(0)).collect();
        assert_eq!(
            s.iter()
                .map(|s| (s.file, s.offset, s.length))
                .collect::<Vec<_>>(),
            vec![(0, 0, 100), (2, 0, 200), (3, 0, 16000), (4, 0, 84)]
        );
        let s: Vec<_> = l.piece_slices(PieceIndex(1)).collect();
        assert_eq!(
            s.iter()
                .map(|s| (s.file, s.offset, s.length))
                .collect::<Vec<_>>(),
            vec![(4, 84, 5000 - 84)]
        );
        assert_eq!(l.piece_count(), 2);
    }

    #[test]
    fn zero_length_files_have_no_pieces() {
        let l = layout(16384, &[0, 10, 0]);
        assert!(l.file_pieces(0).is_empty());
        assert!(l.file_pieces(2).is_empty());
        assert_eq!(l.file_pieces(1), PieceIndex(0)..PieceIndex(1));
        assert_eq!(l.locate(0, 0), None);
        assert_eq!(l.locate(1, 9), Some((PieceIndex(0), 9)));
    }

    #[test]
    fn blocks_map_to_files_and_back() {
        let l = layout(32768, &[20000, 30000, 70000]);
        for file in 0..3 {
            let range = l.file_range(file).unwrap();
            for off in [0, 1, 16383, 16384, range.end - range.start - 1] {
                let (piece, in_piece) = l.locate(file, off).unwrap();
                let first = l.slices(piece, in_piece, 1).next().unwrap();
                assert_eq!((first.file, first.offset, first.length), (file, off, 1));
            }
        }
        assert_eq!(l.file_pieces(1), PieceIndex(0)..PieceIndex(2));
        assert_eq!(l.file_pieces(2), PieceIndex(1)..PieceIndex(4));
        // A block over the end of the torrent is cut at the end.
        let tail: u64 = l.slices(PieceIndex(3), 0, 32768).map(|s| s.length).sum();
        assert_eq!(tail, 120000 - 3 * 32768);
    }

    #[test]
    fn padding_files_are_in_the_layout() {
        let l = FileLayout::new(16384, [(100, false), (16284, true), (50, false)]).unwrap();
        assert!(l.is_padding(1));
        let s: Vec<_> = l.piece_slices(PieceIndex(0)).collect();
        assert_eq!(s.len(), 2);
        assert!(s[1].padding);
        assert_eq!(l.file_pieces(2), PieceIndex(1)..PieceIndex(2));
    }

    #[test]
    fn every_piece_is_covered_exactly() {
        let l = layout(16384, &[1, 16383, 16384, 0, 7, 50000, 3]);
        let mut covered = 0;
        for p in 0..l.piece_count() {
            let sum: u64 = l.piece_slices(PieceIndex(p)).map(|s| s.length).sum();
            assert_eq!(sum, u64::from(l.piece_size(PieceIndex(p))));
            covered += sum;
        }
        assert_eq!(covered, l.total_length());
    }

    #[test]
    fn overflow_is_refused() {
        assert!(FileLayout::new(16384, [(u64::MAX, false), (1, false)]).is_none());
        assert!(FileLayout::new(0, [(1, false)]).is_none());
        assert!(
            FileLayout::new(16384, [(u64::MAX / 2, false)]).is_none(),
            "too many pieces"
        );
    }
}
