//! Whose memory is it: a global allocator that charges every heap byte to
//! the simulated node whose task was running when it was allocated, so a
//! scenario can read one node's live heap (the crawler's, say) among
//! thousands of nodes in one process.
//!
//! The executor says which node it polls ([`enter`]); allocations made
//! then carry that node's mark in a small header, and the bytes stay
//! charged to it until they are freed, whoever frees them (a datagram the
//! crawler sent is the crawler's until the receiver drops it). Only one
//! node is watched at a time ([`watch`]), so the bookkeeping is two
//! counters, not a table.
//!
//! A test binary opts in with
//! `#[global_allocator] static HEAP: NodeHeap = NodeHeap;`; without it the
//! counters stay at zero. One watched node per process: keep such a
//! scenario in a test binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use super::runtime::NodeTag;

/// No node: set up code, the clock, the network between polls.
const NOBODY: usize = usize::MAX;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(NOBODY) };
}

static WATCHED: AtomicUsize = AtomicUsize::new(NOBODY);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
/// Every live heap byte of the process (all nodes and the harness).
static ALL: AtomicI64 = AtomicI64::new(0);

/// Charges allocations on this thread to `node` until the guard drops.
pub fn enter(node: NodeTag) -> Entered {
    Entered(CURRENT.with(|c| c.replace(node)))
}

/// Restores the node charged before [`enter`].
pub struct Entered(usize);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Starts counting `node`'s live heap (from zero: what it allocated
/// before is not seen).
pub fn watch(node: NodeTag) {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    WATCHED.store(node, Ordering::Relaxed);
}

/// The watched node's live heap bytes.
pub fn live() -> u64 {
    LIVE.load(Ordering::Relaxed).max(0) as u64
}

/// The watched node's most live heap bytes since [`watch`] or the last
/// `take_peak`, which starts a new period at the current figure.
pub fn take_peak() -> u64 {
    let now = LIVE.load(Ordering::Relaxed);
    PEAK.swap(now, Ordering::Relaxed).max(now).max(0) as u64
}

/// Live heap bytes of the whole process.
pub fn process_live() -> u64 {
    ALL.load(Ordering::Relaxed).max(0) as u64
}

/// The accounting allocator; see the module documentation.
pub struct NodeHeap;

/// Room for the mark before each block, keeping the block's alignment.
fn header(layout: Layout) -> usize {
    layout.align().max(16)
}

/// The block asked of the system: the header, then the caller's block;
/// aligned to at least 16 so the mark (a `usize`) at its start is.
fn outer(layout: Layout) -> Option<Layout> {
    outer_of(layout, layout.size())
}

fn outer_of(layout: Layout, size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(header(layout))?, header(layout)).ok()
}

fn charge(marked: bool, bytes: i64) {
    ALL.fetch_add(bytes, Ordering::Relaxed);
    if marked {
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every block handed out is `header` bytes into a block of
// `outer(layout)` from the system allocator, whose alignment is the
// header's (at least 16 and at least the caller's), so the caller's block
// is aligned as asked and the mark, a `usize` at the outer block's start,
// is aligned too.
// A global allocator is an unsafe trait; std has no counting one.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for NodeHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(outer) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size (the header).
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let watched = WATCHED.load(Ordering::Relaxed);
        let marked = watched != NOBODY && CURRENT.with(Cell::get) == watched;
        // SAFETY: the outer block starts with `header` ≥ 16 bytes of ours.
        unsafe { base.cast::<usize>().write(usize::from(marked)) };
        charge(marked, layout.size() as i64);
        // SAFETY: within the outer block.
        unsafe { base.add(header(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc`/`realloc` with this layout.
        let base = unsafe { ptr.sub(header(layout)) };
        // SAFETY: the mark written by `alloc`.
        let marked = unsafe { base.cast::<usize>().read() } == 1;
        charge(marked, -(layout.size() as i64));
        if let Some(outer) = outer(layout) {
            // SAFETY: allocated by `System` with `outer`.
            unsafe { System.dealloc(base, outer) };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let h = header(layout);
        let (Some(old), Some(new)) = (outer(layout), outer_of(layout, new_size)) else {
            return std::ptr::null_mut();
        };
        let total = new.size();
        // SAFETY: as in `dealloc`; the system allocator keeps the header's
        // bytes (a prefix of the block) when it moves the block.
        unsafe {
            let base = ptr.sub(h);
            let marked = base.cast::<usize>().read() == 1;
            let moved = System.realloc(base, old, total);
            if moved.is_null() {
                return moved;
            }
            charge(marked, new_size as i64 - layout.size() as i64);
            moved.add(h)
        }
    }
}
