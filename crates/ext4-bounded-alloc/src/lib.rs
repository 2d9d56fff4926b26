//! The global allocator of the hostile-image tests: the system allocator,
//! refusing (so the process aborts with a message naming the case) any
//! allocation above [`ALLOC_LIMIT`] or beyond [`LIVE_LIMIT`] in total.
//!
//! A crate of its own because implementing `GlobalAlloc` needs `unsafe`,
//! which `ext4-testkit` forbids; this is the workspace's only such code
//! outside `ext4-fuse`, and it parses no disk data.

#![deny(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// No single allocation may exceed this, and live allocations may not sum
/// beyond [`LIVE_LIMIT`]: the images are a few MiB, so anything near this is
/// an allocation sized by an unchecked on-disk count.
pub const ALLOC_LIMIT: usize = 256 << 20;
/// Bound on the bytes allocated at once by the whole test process.
pub const LIVE_LIMIT: usize = 4 << 30;

/// The bounded allocator; install it with `#[global_allocator]`.
pub struct BoundedAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CASE: std::cell::Cell<[u8; 96]> = const { std::cell::Cell::new([0; 96]) };
}

/// Names the case running on this thread, for the refusal message.
pub fn set_case_name(name: &str) {
    let mut b = [0u8; 96];
    let n = name.len().min(b.len());
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    CASE.with(|c| c.set(b));
}

/// Whether this thread runs a named case ([`set_case_name`]).
pub fn in_case() -> bool {
    CASE.try_with(|c| c.get()[0] != 0).unwrap_or(false)
}

/// Writes a line to stderr without allocating (we are inside the allocator).
fn refuse(size: usize) {
    use std::io::Write;
    let mut line = [0u8; 200];
    let mut cur = std::io::Cursor::new(&mut line[..]);
    let case = CASE.try_with(|c| c.get()).unwrap_or([0; 96]);
    let end = case.iter().position(|&b| b == 0).unwrap_or(case.len());
    let _ = write!(cur, "UNBOUNDED ALLOCATION: {size} bytes requested (live {}) in case ", LIVE.load(Ordering::Relaxed));
    let _ = cur.write_all(&case[..end]);
    let _ = cur.write_all(b"\n");
    let n = cur.position() as usize;
    let _ = std::io::stderr().write_all(&line[..n]);
}

/// Counts `grow` more live bytes for an allocation of `size`, or refuses it.
fn reserve(size: usize, grow: usize) -> bool {
    if size > ALLOC_LIMIT {
        refuse(size);
        return false;
    }
    if LIVE.fetch_add(grow, Ordering::Relaxed) + grow > LIVE_LIMIT {
        LIVE.fetch_sub(grow, Ordering::Relaxed);
        refuse(size);
        return false;
    }
    true
}

// SAFETY: every call forwards to `System` with the same layout; the
// counters only decide whether to forward.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        if !reserve(size, size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(size, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        if !reserve(size, size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            LIVE.fetch_sub(size, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !reserve(new_size, new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            }
        } else if new_size < old {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        p
    }
}
