//! An in-memory [`Disk`]: a torrent's files as byte vectors, with the
//! faults a scenario asks for.
//!
//! It carries out the engine's [`DiskOp`]s exactly as the file-backed
//! `Storage` does (hash with SHA-1 before writing a held piece; stream a
//! `Check` over the slices; padding reads as zeros and is never written),
//! so the engine cannot tell them apart. Slowness is the node's disk queue
//! in the runtime ([`DiskSpec::delay`] goes to
//! [`Executor::runtime`](super::runtime::Executor::runtime)); the disk
//! itself answers at once.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bittide_core::engine::{DiskOp, DiskResult};
use bittide_core::metainfo::{FileLayout, FileSlice};
use bittide_driver::disk::Disk;

/// Faults and speed of one node's disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskSpec {
    /// How long each job takes (jobs queue on the node's one disk).
    pub delay: Duration,
    /// Every write fails (a full disk).
    pub fail_writes: bool,
    /// Every block read for a peer comes back corrupted: the node uploads
    /// bad data (a lying peer).
    pub corrupt_reads: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct MemDisk {
    files: Mutex<Vec<Vec<u8>>>,
    spec: DiskSpec,
    /// Bytes read for peers: what the node uploaded.
    served: AtomicU64,
}

impl MemDisk {
    /// Zeroed files of a torrent with `layout`.
    pub fn empty(layout: &FileLayout, spec: DiskSpec) -> MemDisk {
        let files = (0..layout.file_count())
            .map(|f| {
                let len = layout.file_range(f).map_or(0, |r| r.end - r.start);
                vec![
                    0;
                    if layout.is_padding(f) {
                        0
                    } else {
                        len as usize
                    }
                ]
            })
            .collect();
        MemDisk {
            files: Mutex::new(files),
            spec,
            served: AtomicU64::new(0),
        }
    }

    /// Files holding `content` (the torrent's bytes in order, padding
    /// included).
    pub fn full(layout: &FileLayout, content: &[u8], spec: DiskSpec) -> MemDisk {
        let disk = MemDisk::empty(layout, spec);
        {
            let mut files = disk.lock();
            for (f, file) in files.iter_mut().enumerate() {
                if let Some(r) = layout.file_range(f) {
                    if !file.is_empty() {
                        file.copy_from_slice(&content[r.start as usize..r.end as usize]);
                    }
                }
            }
        }
        disk
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Block bytes read for peers so far (the node's payload upload).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// The content as one byte vector (padding left out).
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().concat()
    }

    fn read(&self, slices: &[FileSlice], out: &mut Vec<u8>) -> bool {
        let files = self.lock();
        for s in slices {
            if s.padding {
                out.resize(out.len() + s.length as usize, 0);
                continue;
            }
            let Some(file) = files.get(s.file) else {
                return false;
            };
            let (start, end) = (s.offset as usize, (s.offset + s.length) as usize);
            let Some(bytes) = file.get(start..end) else {
                return false;
            };
            out.extend_from_slice(bytes);
        }
        true
    }

    fn write(&self, slices: &[FileSlice], data: &[u8]) -> bool {
        if self.spec.fail_writes {
            return false;
        }
        let mut files = self.lock();
        let mut at = 0usize;
        for s in slices {
            let len = s.length as usize;
            if !s.padding {
                let Some(file) = files.get_mut(s.file) else {
                    return false;
                };
                let start = s.offset as usize;
                let (Some(dst), Some(src)) =
                    (file.get_mut(start..start + len), data.get(at..at + len))
                else {
                    return false;
                };
                dst.copy_from_slice(src);
            }
            at += len;
        }
        true
    }
}

impl Disk for MemDisk {
    fn run(&self, op: DiskOp) -> DiskResult {
        match op {
            DiskOp::Read {
                conn,
                block,
                slices,
            } => {
                let mut data = Vec::with_capacity(block.length as usize);
                let ok = self.read(&slices, &mut data);
                self.served.fetch_add(data.len() as u64, Ordering::Relaxed);
                if self.spec.corrupt_reads {
                    for b in data.iter_mut().step_by(97) {
                        *b ^= 0x5a;
                    }
                }
                DiskResult::Read {
                    conn,
                    block,
                    data: ok.then_some(data),
                }
            }
            DiskOp::Verify {
                first,
                pieces,
                blocks,
                slices,
            } => {
                let verdicts = bittide_core::engine::run_verdicts(&pieces, &blocks);
                let written =
                    verdicts.iter().all(|&ok| ok) && self.write(&slices, &blocks.concat());
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
                let mut data = Vec::new();
                let ok = self.read(&slices, &mut data) && hash.matches([&data[..]]);
                DiskResult::Checked { piece, ok }
            }
            DiskOp::Write {
                block,
                blocks,
                slices,
                hasher,
            } => {
                let ok = self.write(&slices, &blocks.concat());
                let hash = bittide_core::engine::write_hash(hasher, &blocks);
                DiskResult::Written { block, ok, hash }
            }
            // Files exist from the start in memory; a full disk still
            // cannot create them.
            DiskOp::CreateEmpty { .. } => DiskResult::Created {
                ok: !self.spec.fail_writes,
            },
        }
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}
