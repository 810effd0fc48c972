//! Writing with `O_DIRECT` (Linux): the bytes go from our memory to the
//! device, not through the page cache (see the module above for why).
//! `O_DIRECT` takes only aligned file offsets, lengths and memory
//! addresses. Blocks received into aligned slots (`crate::receive`) are
//! written as they are, one `pwritev` per [`WRITE_CHUNK`]; anything else is
//! first gathered into an aligned buffer from a small pool.

use std::fs::{File, OpenOptions};
use std::io;
use std::sync::Mutex;

use bytes::Bytes;

/// Alignment (address, offset, length) `O_DIRECT` asks of a write: the
/// page size, a multiple of every logical block size in use.
pub(super) const DIRECT_ALIGN: u64 = 4096;

/// The shortest aligned run written with `O_DIRECT`. Each such write is a
/// synchronous device request: a piece written through block by block
/// (pieces larger than a quarter of the memory budget) made one per
/// 16 KiB, and a 1 GiB download of 8 MiB pieces took 4.4 times as long
/// as one of 4 MiB pieces. Shorter runs go through the page cache.
pub(super) const DIRECT_AT_LEAST: u64 = 256 * 1024;

/// The most bytes assembled for one write call (a multiple of
/// [`DIRECT_ALIGN`]): what bounds the pooled buffers below.
pub(super) const WRITE_CHUNK: u64 = 1 << 20;

/// Buffers for assembling writes, shared by all blocking-pool threads
/// (some runtimes' pools grow to hundreds of threads: a buffer per thread
/// would grow memory with them).
static WRITE_BUFS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Buffers kept for reuse at most; more in use at once are freed after.
const WRITE_BUFS_KEPT: usize = 8;

/// Opens with `O_DIRECT` where the platform has it.
pub(super) fn direct(options: &mut OpenOptions) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_DIRECT);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = options;
}

/// Runs `f` on a write buffer from the pool, `len` bytes long and
/// starting at a [`DIRECT_ALIGN`]-aligned address.
pub(super) fn with_write_buf<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut v = WRITE_BUFS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_default();
    let need = len + DIRECT_ALIGN as usize;
    if v.len() < need {
        v.resize(need, 0);
    }
    let at = v.as_ptr().align_offset(DIRECT_ALIGN as usize);
    let r = f(&mut v[at..at + len]);
    let mut pool = WRITE_BUFS.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < WRITE_BUFS_KEPT {
        pool.push(v);
    }
    r
}

/// Copies piece bytes `pos..pos + out.len()` out of the piece's blocks.
pub(super) fn gather(blocks: &[Bytes], mut pos: u64, out: &mut [u8]) -> io::Result<()> {
    let mut filled = 0usize;
    for b in blocks {
        let len = b.len() as u64;
        if pos >= len {
            pos -= len;
            continue;
        }
        let from = pos as usize;
        let take = (b.len() - from).min(out.len() - filled);
        out[filled..filled + take].copy_from_slice(&b[from..from + take]);
        filled += take;
        pos = 0;
        if filled == out.len() {
            return Ok(());
        }
    }
    if filled == out.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "short data"))
    }
}

/// The alignment `O_DIRECT` asks of `file`'s memory addresses and lengths
/// (the larger of the two figures),
/// as the kernel tells it (`statx` with `STATX_DIOALIGN`, Linux 6.1 on),
/// else [`DIRECT_ALIGN`].
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(super) fn direct_alignment(file: &File) -> u64 {
    use std::os::fd::AsRawFd;
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: an empty path with AT_EMPTY_PATH names the open descriptor;
    // `stx` is a writable statx buffer.
    let r = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            stx.as_mut_ptr(),
        )
    };
    // SAFETY: zero-initialised, and filled in by the kernel on success.
    let stx = unsafe { stx.assume_init() };
    let told = r == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_mem_align > 0;
    match told {
        true => u64::from(stx.stx_dio_mem_align.max(stx.stx_dio_offset_align)),
        false => DIRECT_ALIGN,
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn direct_alignment(_file: &File) -> u64 {
    DIRECT_ALIGN
}

/// Most pieces of memory in one `pwritev` (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// Piece bytes `pos..pos + len` as slices of `blocks`, if every slice
/// starts at an `align` address and is a multiple of `align` long (what
/// `O_DIRECT` takes as it is); `None` otherwise, or if the blocks end
/// first.
pub(super) fn aligned_slices(
    blocks: &[Bytes],
    mut pos: u64,
    len: u64,
    align: u64,
) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut left = len;
    for b in blocks {
        if left == 0 {
            break;
        }
        let blen = b.len() as u64;
        if pos >= blen {
            pos -= blen;
            continue;
        }
        let take = (blen - pos).min(left);
        let slice = &b[pos as usize..(pos + take) as usize];
        let addr = slice.as_ptr() as u64;
        if !addr.is_multiple_of(align) || !take.is_multiple_of(align) || out.len() == MAX_IOVECS {
            return None;
        }
        out.push(slice);
        left -= take;
        pos = 0;
    }
    (left == 0).then_some(out)
}

/// Writes all of `slices`, one after another, at file offset `offset`.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(super) fn write_vectored_at(file: &File, mut slices: &[&[u8]], offset: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut offset = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    // Bytes of `slices[0]` already written (after a short write).
    let mut done = 0usize;
    while !slices.is_empty() {
        let iov: Vec<libc::iovec> = slices
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let s = if i == 0 { &s[done..] } else { s };
                libc::iovec {
                    iov_base: s.as_ptr() as *mut libc::c_void,
                    iov_len: s.len(),
                }
            })
            .collect();
        // SAFETY: each iovec points into a live slice that is only read.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr(),
                iov.len() as libc::c_int,
                offset,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        offset += n as libc::off_t;
        let mut n = n as usize;
        while let Some(first) = slices.first() {
            let rest = first.len() - done;
            if n < rest {
                done += n;
                break;
            }
            n -= rest;
            done = 0;
            slices = &slices[1..];
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn write_vectored_at(file: &File, slices: &[&[u8]], mut offset: u64) -> io::Result<()> {
    for s in slices {
        super::write_all_at(file, s, offset)?;
        offset += s.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` blocks of 16 KiB, each at an address that is a multiple of
    /// `align` plus `off`.
    fn blocks(n: usize, align: usize, off: usize) -> Vec<Bytes> {
        (0..n)
            .map(|i| {
                let mut v = vec![0u8; 16384 + 2 * align];
                let at = v.as_ptr().align_offset(align) + off;
                v[at..at + 16384].fill(i as u8 + 1);
                Bytes::from(v).slice(at..at + 16384)
            })
            .collect()
    }

    #[test]
    fn aligned_blocks_are_written_as_they_are_and_others_are_not() {
        let aligned = blocks(4, 4096, 0);
        let slices = aligned_slices(&aligned, 16384 - 4096, 2 * 16384, 4096).unwrap();
        assert_eq!(
            slices.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [4096, 16384, 12288]
        );
        assert_eq!((slices[0][0], slices[1][0], slices[2][0]), (1, 2, 3));
        // An address, a length off the alignment, or too few blocks.
        assert!(aligned_slices(&blocks(4, 4096, 512), 0, 16384, 4096).is_none());
        assert!(aligned_slices(&aligned, 100, 4096, 4096).is_none());
        assert!(aligned_slices(&aligned, 0, 5 * 16384, 4096).is_none());
        assert!(aligned_slices(&blocks(4, 4096, 512), 0, 16384, 512).is_some());
    }

    #[test]
    fn a_vectored_write_puts_every_slice_in_place() {
        let dir = std::env::temp_dir().join(format!("bittide-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let b = blocks(3, 512, 0);
        let slices: Vec<&[u8]> = b.iter().map(|b| &b[..]).collect();
        write_vectored_at(&file, &slices, 1000).unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), 1000 + 3 * 16384);
        assert_eq!(&got[1000..], &b.concat()[..]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
