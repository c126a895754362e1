//! Shared by every target: the allocation bound every decoder must keep.
//!
//! The decoders turn wire bytes into Rust structs that are larger than their encoding (a
//! `Vec` of structs for an array, `Bytes` handles for strings), so an allocation may exceed the
//! input by a constant factor — but never by what a claimed length says. The global allocator
//! records the largest single allocation of each run, and the target fails when it is more
//! than `FACTOR` times the input plus `FLOOR` (plus, for compressed batches, what the batch may
//! legitimately decompress to).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const FACTOR: usize = 32;
pub const FLOOR: usize = 64 << 10;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Tracking;

// SAFETY: every call is forwarded unchanged to the system allocator; the only addition is a
// relaxed atomic maximum.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` on `input` and fails the run if any single allocation exceeded the bound.
pub fn bounded(target: &str, input: &[u8], extra: usize) {
    LARGEST.store(0, Ordering::Relaxed);
    ferrokafka::fuzzing::run(target, input);
    let largest = LARGEST.load(Ordering::Relaxed);
    let limit = FACTOR * input.len() + FLOOR + extra;
    assert!(
        largest <= limit,
        "{target}: an allocation of {largest} bytes for a {}-byte input (limit {limit})",
        input.len()
    );
}
