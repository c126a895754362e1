//! Memory for large record sets: anonymous mappings, each set in one of its own, kept for the
//! next set of the same size when dropped (up to a small bound) instead of unmapped.
//!
//! Why mappings: a heap profile of the 1 KiB consume case (`docs/PERFORMANCE.md`, "Heap profile
//! and fix (stop 22)") showed a live heap of 14 MB under a peak RSS of 47 MiB, 35 MiB of it in
//! the malloc arenas of the two runtime worker threads. The reader task runs on whichever
//! worker polls it, so each worker's arena in turn serves ~1 MiB record sets; once the first of
//! them is freed glibc stops mmapping blocks of that size (its dynamic mmap threshold), and each
//! arena keeps the high-water mark of its own share resident. A mapping per set is what glibc
//! does for large blocks before that threshold moves, and what a library can do without
//! touching the application's allocator.
//!
//! Why recycled: a fresh mapping costs the kernel a zeroed page per 4 KiB, which doubled the
//! consumer's CPU per record at 1 KiB (0.7 → 1.4–1.6 µs). A consumer reads a steady stream of
//! sets of nearly one size (`max.partition.fetch.bytes`), so the set dropped a moment ago fits
//! the next one: sizes are rounded up to a [`CLASS`] and a dropped set's mapping waits in a
//! process-wide idle list for the next set of its class, as long as live and idle mappings
//! together stay within the most the live sets ever took at once (and idle ones within
//! [`IDLE_MAX`]); a fresh mapping gives up an idle one of another size. The mappings then
//! hold what the consumers needed at once, where the arenas held it once per runtime thread.
//!
//! Owners: the idle list is shared by every consumer of the process behind one mutex, taken
//! once per record set (≥ 128 KiB), never per record.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use memmap2::{MmapMut, MmapOptions};

/// Record sets this large or larger get a mapping: glibc's default mmap threshold, below
/// which a block is cheap to keep in an arena and a mapping's page-granular size and system
/// calls would cost more than they save.
pub(crate) const MAPPED_FROM: usize = 128 * 1024;

/// Mapping sizes are multiples of this, so sets of nearly one size share a class and reuse
/// each other's mapping; a set's mapping is less than one class over its size.
pub(crate) const CLASS: usize = 64 * 1024;

/// Bytes of idle mappings kept for reuse at most, process-wide, whatever the live sets once
/// took: half the default prefetch budget (`fetch.max.bytes`, 50 MiB) rounded down.
pub(crate) const IDLE_MAX: usize = 32 * 1024 * 1024;

/// Dropped sets' mappings waiting for the next set of their size, and the bytes of live sets.
pub(crate) struct Idle {
    state: Mutex<State>,
    max: usize,
}

#[derive(Default)]
struct State {
    maps: Vec<MmapMut>,
    /// Bytes in `maps`.
    idle: usize,
    /// Bytes of sets some record still holds.
    live: usize,
    /// The most `live` has been: what the consumers needed at once.
    peak: usize,
}

/// The process's idle list.
pub(crate) static IDLE: Idle = Idle::new(IDLE_MAX);

impl Idle {
    /// An empty list that keeps at most `max` bytes idle.
    pub(crate) const fn new(max: usize) -> Idle {
        Idle {
            state: Mutex::new(State {
                maps: Vec::new(),
                idle: 0,
                live: 0,
                peak: 0,
            }),
            max,
        }
    }

    /// Bytes of mappings in the list now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().idle
    }

    /// Whether a mapping starting at `addr` waits in the list.
    #[cfg(test)]
    pub(crate) fn holds(&self, addr: usize) -> bool {
        self.lock().maps.iter().any(|m| m.as_ptr() as usize == addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The counters are updated after the list, in one step: valid after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle mapping of exactly `size` bytes, if one waits; otherwise a fresh one, for which
    /// one idle mapping of another size is given up so that live and idle memory together stay
    /// near what was needed at once.
    fn take_or_map(&self, size: usize, len: usize) -> Option<MmapMut> {
        let (reused, evicted) = {
            let mut st = self.lock();
            st.live += size;
            st.peak = st.peak.max(st.live);
            match st.maps.iter().position(|m| m.len() == size) {
                Some(i) => {
                    let map = st.maps.swap_remove(i);
                    st.idle -= size;
                    (Some(map), None)
                }
                None => {
                    let evicted = st.maps.pop();
                    st.idle -= evicted.as_ref().map_or(0, |m| m.len());
                    (None, evicted)
                }
            }
        };
        // Unmapped outside the lock.
        drop(evicted);
        if reused.is_some() {
            return reused;
        }
        let fresh = MmapOptions::new().len(size).map_anon().ok();
        match &fresh {
            Some(map) => prefault(map, len),
            None => self.lock().live -= size,
        }
        fresh
    }

    /// Keeps a dropped set's `map` for reuse while live and idle memory together stay within
    /// the peak of live memory (and idle within the bound); otherwise it is unmapped (after the
    /// lock is released). So the mappings never hold more than the consumers once needed at
    /// once, where a malloc arena per runtime thread held each thread's own high-water mark.
    fn give_back(&self, map: MmapMut) {
        let refused = {
            let mut st = self.lock();
            let size = map.len();
            let kept = st.idle + st.live <= st.peak && st.idle + size <= self.max;
            st.live -= size;
            if kept {
                st.maps.push(map);
                st.idle += size;
                None
            } else {
                Some(map)
            }
        };
        drop(refused);
    }
}

/// Allocates the pages of a fresh mapping's first `len` bytes in one call: every one of them
/// is written right away, and a page fault each would cost more. Only those: the rest of the
/// size class (up to 64 KiB per set, ~1 MiB over a 12-partition response of 1 MiB sets) stays
/// unallocated unless a later, larger set of the class writes it. Where the system cannot
/// (not Linux, or before 5.14), the pages are allocated as they are written.
fn prefault(map: &MmapMut, len: usize) {
    #[cfg(target_os = "linux")]
    {
        let _ = map.advise_range(memmap2::Advice::PopulateWrite, 0, len.min(map.len()));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (map, len);
}

/// One record set's memory: the first `len` bytes of a mapping, handed back to its idle list
/// when the last record of the set is dropped (through [`Bytes::from_owner`]).
pub(crate) struct SetMemory {
    /// `None` only while being dropped.
    map: Option<MmapMut>,
    len: usize,
    idle: &'static Idle,
}

impl SetMemory {
    /// Memory for a set of `len` bytes from `idle` or a fresh mapping, or `None` for the heap:
    /// below [`MAPPED_FROM`], or when the system refuses a mapping (a memory limit: the heap
    /// buffer is then tried, and fails as any allocation would). A fresh mapping's first `len`
    /// bytes are populated up front (`prefault`).
    pub(crate) fn new(len: usize, idle: &'static Idle) -> Option<SetMemory> {
        if len < MAPPED_FROM {
            return None;
        }
        let size = len.checked_next_multiple_of(CLASS)?;
        let map = idle.take_or_map(size, len)?;
        Some(SetMemory {
            map: Some(map),
            len,
            idle,
        })
    }

    /// The set's bytes, to be filled from the socket.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.map {
            Some(map) => &mut map[..self.len],
            None => &mut [],
        }
    }

    /// The filled set, shared by its records.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for SetMemory {
    fn as_ref(&self) -> &[u8] {
        match &self.map {
            Some(map) => &map[..self.len],
            None => &[],
        }
    }
}

impl Drop for SetMemory {
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            self.idle.give_back(map);
        }
    }
}

/// Whether `addr` lies in one of this process's memory mappings (`/proc/self/maps`); for the
/// tests here and in `fetch_split_tests.rs`.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn mapped(addr: usize) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().any(|l| {
        let range = l.split(' ').next().unwrap();
        let (a, b) = range.split_once('-').unwrap();
        let a = usize::from_str_radix(a, 16).unwrap();
        let b = usize::from_str_radix(b, 16).unwrap();
        (a..b).contains(&addr)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of its own per test: tests run in parallel and the process-wide one is shared.
    fn idle(max: usize) -> &'static Idle {
        Box::leak(Box::new(Idle::new(max)))
    }

    #[test]
    fn sets_from_the_threshold_on_get_a_mapping_rounded_to_a_class() {
        let idle = idle(IDLE_MAX);
        assert!(SetMemory::new(MAPPED_FROM - 1, idle).is_none());
        let mut m = SetMemory::new(MAPPED_FROM + 1, idle).unwrap();
        assert_eq!(m.bytes_mut().len(), MAPPED_FROM + 1);
        assert_eq!(m.map.as_ref().unwrap().len(), MAPPED_FROM + CLASS);
        assert_eq!(
            m.bytes_mut().as_ptr() as usize % 4096,
            0,
            "a mapping of its own"
        );
    }

    #[test]
    fn a_dropped_sets_mapping_serves_the_next_set_of_its_class() {
        let idle = idle(IDLE_MAX);
        let mut first = SetMemory::new(1_000_000, idle).unwrap();
        first.bytes_mut().fill(7);
        let bytes = first.freeze();
        let record = bytes.slice(10..20);
        let addr = bytes.as_ptr() as usize;
        drop(bytes);
        assert_eq!(idle.bytes(), 0, "a record still holds the set");
        assert_eq!(&record[..], &[7; 10]);
        drop(record);
        assert_eq!(idle.bytes(), 1_000_000usize.next_multiple_of(CLASS));
        // Same class (1,000,000 and 1,030,000 both round to 16 classes): the same memory,
        // without asking the kernel for fresh pages.
        let mut next = SetMemory::new(1_030_000, idle).unwrap();
        assert_eq!(next.bytes_mut().as_ptr() as usize, addr);
        assert_eq!(idle.bytes(), 0);
        // Another class gets a fresh mapping, and the idle one of the old class is given up:
        // the mappings stay near what was needed at once.
        drop(next);
        assert_eq!(idle.bytes(), 1_000_000usize.next_multiple_of(CLASS));
        let other = SetMemory::new(2_000_000, idle).unwrap();
        assert_eq!(
            other.map.as_ref().unwrap().len(),
            2_000_000usize.next_multiple_of(CLASS)
        );
        assert_eq!(
            idle.bytes(),
            0,
            "the other class's idle mapping was unmapped"
        );
        drop(other);
        assert_eq!(idle.bytes(), 2_000_000usize.next_multiple_of(CLASS));
    }

    #[test]
    fn idle_mappings_beyond_the_bound_go_back_to_the_system() {
        let max = 3 * (MAPPED_FROM + CLASS);
        let idle = idle(max);
        let sets: Vec<SetMemory> = (0..5)
            .map(|_| SetMemory::new(MAPPED_FROM + 1, idle).unwrap())
            .collect();
        let addrs: Vec<usize> = sets.iter().map(|s| s.as_ref().as_ptr() as usize).collect();
        drop(sets);
        assert_eq!(idle.bytes(), max, "three kept, two refused");
        #[cfg(target_os = "linux")]
        {
            // (Only another thread mapping memory into a freed range in the meantime could
            // fill it again.)
            let unmapped = addrs.iter().filter(|&&a| !mapped(a)).count();
            assert_eq!(unmapped, 2, "the two refused mappings are unmapped");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = addrs;
    }
}
