//! What a piece must hash to: BEP 3's SHA-1 of its bytes, or BEP 52's
//! merkle root over its 16 KiB blocks. One checker for both, fed the
//! piece's bytes in order (from memory or streamed from disk).

use sha1::{Digest, Sha1};

use super::merkle::{self, Hash, Leaves};

/// The expected hash of one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceHash {
    /// BEP 3: the SHA-1 of every byte of the piece (padding included).
    V1([u8; 20]),
    /// BEP 52: the root of the SHA-256 tree over the piece's first
    /// `length` bytes (the file's; the padding that aligns the next file
    /// is not hashed) in 16 KiB leaves, padded with zero leaves to
    /// `leaves`: a piece's width, or for a file of at most one piece its
    /// leaf count rounded up to a power of two.
    V2 {
        /// The subtree root: the piece layer's hash, or the file's pieces
        /// root.
        root: Hash,
        /// Leaves under the root.
        leaves: u32,
        /// The file bytes in the piece.
        length: u32,
    },
}

impl PieceHash {
    /// A checker to feed the piece's bytes to.
    pub fn checker(&self) -> PieceCheck {
        match *self {
            PieceHash::V1(expected) => PieceCheck::V1 {
                hasher: Sha1::new(),
                expected,
            },
            PieceHash::V2 {
                root,
                leaves,
                length,
            } => PieceCheck::V2 {
                leaves_in: Leaves::default(),
                left: length as usize,
                root,
                leaves,
            },
        }
    }

    /// Whether `parts`, the piece's bytes in order, hash to it.
    pub fn matches<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> bool {
        let mut c = self.checker();
        for p in parts {
            c.update(p);
        }
        c.finish()
    }
}

/// A piece being hashed ([`PieceHash::checker`]).
#[derive(Clone, Debug)]
pub enum PieceCheck {
    /// SHA-1 of everything.
    #[doc(hidden)]
    V1 {
        /// The running hash.
        hasher: Sha1,
        /// What it must come to.
        expected: [u8; 20],
    },
    /// Leaf by leaf.
    #[doc(hidden)]
    V2 {
        /// The piece's leaves so far.
        leaves_in: Leaves,
        /// File bytes still to come (what follows is padding).
        left: usize,
        /// What the tree must come to.
        root: Hash,
        /// Leaves under it.
        leaves: u32,
    },
}

impl PieceCheck {
    /// The next bytes of the piece.
    pub fn update(&mut self, mut data: &[u8]) {
        match self {
            PieceCheck::V1 { hasher, .. } => hasher.update(data),
            PieceCheck::V2 {
                leaves_in, left, ..
            } => {
                data = &data[..data.len().min(*left)];
                *left -= data.len();
                leaves_in.update(data);
            }
        }
    }

    /// Whether the bytes fed hash to what was expected.
    pub fn finish(self) -> bool {
        match self {
            PieceCheck::V1 { hasher, expected } => <[u8; 20]>::from(hasher.finalize()) == expected,
            PieceCheck::V2 {
                leaves_in,
                left,
                root,
                leaves,
            } => {
                let hashes = leaves_in.finish();
                left == 0
                    && !hashes.is_empty()
                    && hashes.len() <= leaves as usize
                    && merkle::root(hashes, leaves as usize, [0; 32]) == root
            }
        }
    }
}

/// A piece's hash part-way through its bytes, carried through the disk
/// jobs that write it (pieces written in runs as they arrive: the torrent's
/// `write_through` module). Each job feeds it the bytes it writes and hands
/// it back; the job that feeds the last byte gives the verdict instead.
///
/// The running state has no equality of its own: two are equal when they
/// expect the same hash of a piece of the same length and have been fed
/// the same number of bytes (enough for tests comparing disk jobs).
#[derive(Clone, Debug)]
pub struct RunningHash {
    /// Boxed: jobs and their answers carry it by value, once per piece.
    check: Box<PieceCheck>,
    hash: PieceHash,
    length: u64,
    fed: u64,
}

impl PieceHash {
    /// A hasher for a piece of `length` bytes (padding included).
    pub fn hasher(&self, length: u64) -> RunningHash {
        RunningHash {
            check: Box::new(self.checker()),
            hash: *self,
            length,
            fed: 0,
        }
    }
}

impl RunningHash {
    /// The next bytes of the piece.
    pub fn update(&mut self, data: &[u8]) {
        self.check.update(data);
        self.fed += data.len() as u64;
    }

    /// Bytes fed so far: the offset in the piece the next bytes start at.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// Whether every byte of the piece has been fed.
    pub fn is_complete(&self) -> bool {
        self.fed >= self.length
    }

    /// Whether the piece's bytes hash to what was expected (false if not
    /// all of them were fed).
    pub fn finish(self) -> bool {
        self.fed == self.length && self.check.finish()
    }

    /// The verdict once every byte was fed, else the hasher itself.
    pub fn progress(self) -> HashProgress {
        if self.is_complete() {
            HashProgress::Verdict(self.finish())
        } else {
            HashProgress::Running(self)
        }
    }
}

/// Where a [`RunningHash`] handed back stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashProgress {
    /// Fed so far; more of the piece is to come.
    Running(RunningHash),
    /// Every byte was fed: whether the piece hashed to what it should.
    Verdict(bool),
}

impl PartialEq for RunningHash {
    fn eq(&self, other: &RunningHash) -> bool {
        (self.hash, self.length, self.fed) == (other.hash, other.length, other.fed)
    }
}

impl Eq for RunningHash {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::merkle::{root_of_data, LEAF};

    #[test]
    fn v1_is_the_sha1_of_everything() {
        let h = PieceHash::V1(Sha1::digest(b"hello world").into());
        assert!(h.matches([&b"hello "[..], b"world"]));
        assert!(!h.matches([&b"hello world!"[..]]));
    }

    #[test]
    fn v2_is_the_merkle_root_of_the_file_bytes_whatever_the_chunks() {
        let data: Vec<u8> = (0..(3 * LEAF + 100)).map(|i| (i * 3) as u8).collect();
        let h = PieceHash::V2 {
            root: root_of_data(&data, 8),
            leaves: 8,
            length: data.len() as u32,
        };
        assert!(h.matches([&data[..]]));
        assert!(h.matches(data.chunks(1000)));
        // Padding after the file's bytes is not hashed.
        let mut padded = data.clone();
        padded.resize(8 * LEAF, 0);
        assert!(h.matches(padded.chunks(LEAF)));
        let mut bad = data.clone();
        bad[5] ^= 1;
        assert!(!h.matches([&bad[..]]));
        assert!(!h.matches([&data[..data.len() - 1]]), "short");
    }

    #[test]
    fn a_hasher_carried_in_parts_agrees_with_one_pass() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let hash = PieceHash::V1(Sha1::digest(&data).into());
        let mut h = hash.hasher(data.len() as u64);
        for part in data.chunks(16_384) {
            assert!(!h.is_complete());
            h.update(part);
        }
        assert_eq!(h.fed(), data.len() as u64);
        assert!(h.is_complete() && h.clone().finish());
        let mut short = hash.hasher(data.len() as u64);
        short.update(&data[..data.len() - 1]);
        assert!(!short.finish(), "a byte short");
        let mut wrong = hash.hasher(data.len() as u64);
        wrong.update(&data[1..]);
        wrong.update(&[0]);
        assert!(!wrong.finish());
    }
}
