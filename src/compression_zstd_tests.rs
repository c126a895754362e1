//! Tests of the zstd codec: levels, frames crossing to and from libzstd, and the decoder on
//! hostile input (never a panic, memory bounded by `max_output`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write as _;

use proptest::prelude::*;

use super::*;
use crate::error::Error;

/// Counts this thread's live heap bytes and their peak while [`peak_heap`] runs; every other
/// allocation (other tests, other threads) passes straight through.
struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    if TRACKING.with(Cell::get) {
        let live = LIVE.with(|l| {
            l.set(l.get() + delta);
            l.get()
        });
        PEAK.with(|p| p.set(p.get().max(live)));
    }
}

// Test builds only: the library itself stays free of `unsafe`.
// SAFETY: every call is forwarded unchanged to `System`; the counters are thread-local cells
// with const initialisers and no destructors, so touching them never allocates or recurses.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A moving realloc briefly holds both blocks: count the new one before the old goes.
        track(new_size as isize);
        track(-(layout.size() as isize));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns its result with the peak of heap bytes it held at once.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, PEAK.with(Cell::get).max(0) as usize)
}

/// What the decoder may hold besides the output: zrip's literal buffer, Huffman and FSE
/// tables and sequence state, all sized by zstd's format (a block is at most 128 KiB), not by
/// the input or the limit. 256 KiB is the allowance these tests hold it to.
const WORKSPACE: usize = 256 << 10;

fn ours(level: Option<i32>, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compress(level, input, &mut out).unwrap();
    out
}

/// Deterministic pseudo-random bytes (xorshift).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Text-like records: words from a small vocabulary, as the benchmark's values.
fn records(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "order", "id", "total", "EUR", "click", "view", "true", "null",
    ];
    let r = random_bytes(len / 3 + 1, seed);
    let mut out = Vec::with_capacity(len + 16);
    for b in r {
        out.extend_from_slice(WORDS[usize::from(b) % 8].as_bytes());
        out.push(if b & 0x80 != 0 { b',' } else { b' ' });
        if out.len() >= len {
            break;
        }
    }
    out.truncate(len);
    out
}

/// libzstd's streaming encoder: no content size in the frame header, as Java's
/// ZstdOutputStream writes, and optionally a content checksum.
fn libzstd_streamed(input: &[u8], level: i32, checksum: bool) -> Vec<u8> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), level).unwrap();
    enc.include_checksum(checksum).unwrap();
    enc.include_contentsize(false).unwrap();
    enc.write_all(input).unwrap();
    enc.finish().unwrap()
}

#[test]
fn levels_map_onto_zrips_range() {
    for (asked, used) in [
        (None, 1),
        (Some(0), 1),
        (Some(-131072), -7),
        (Some(-8), -7),
        (Some(-7), -7),
        (Some(-1), -1),
        (Some(3), 3),
        (Some(4), 4),
        (Some(5), 4),
        (Some(22), 4),
    ] {
        assert_eq!(zrip_level(asked).unwrap(), used, "{asked:?}");
    }
    for bad in [-131073, 23] {
        assert!(matches!(zrip_level(Some(bad)), Err(Error::InvalidInput(_))));
    }
    // The frame is zrip's at the mapped level: 22 writes what 4 writes.
    let input = records(200_000, 1);
    assert_eq!(ours(Some(22), &input), ours(Some(4), &input));
    assert_eq!(ours(None, &input), zrip::compress(&input, 1).unwrap());
}

#[test]
fn our_frames_decode_with_libzstd() {
    let mut mixed = records(300_000, 2);
    mixed.extend(random_bytes(200_000, 3));
    let inputs = [
        Vec::new(),
        b"hello, kafka".to_vec(),
        records(16_384, 4),
        records(1_000_000, 5),
        random_bytes(300_000, 6),
        mixed,
    ];
    for level in [None, Some(-7), Some(-1), Some(3), Some(4)] {
        for input in &inputs {
            let frame = ours(level, input);
            let back = zstd::bulk::decompress(&frame, input.len()).unwrap();
            assert!(back == *input, "{level:?}, {} bytes", input.len());
        }
    }
}

#[test]
fn libzstd_frames_decode_with_ours() {
    let input = records(700_000, 7);
    for level in [-5, 1, 3, 9, 19] {
        let one_shot = zstd::bulk::compress(&input, level).unwrap();
        for frame in [
            one_shot,
            libzstd_streamed(&input, level, true),
            libzstd_streamed(&input, level, false),
        ] {
            let back = decompress(&frame, input.len()).unwrap();
            assert!(back == input, "libzstd level {level}");
            let e = decompress(&frame, input.len() - 1).unwrap_err();
            assert!(e.to_string().contains("more than"), "level {level}: {e}");
        }
    }
    // Concatenated frames, with a skippable frame between them.
    let mut two = zstd::bulk::compress(b"abc", 3).unwrap();
    two.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 0xAA, 0xBB]);
    two.extend(libzstd_streamed(b"def", 3, true));
    assert_eq!(decompress(&two, 6).unwrap(), b"abcdef");
}

#[test]
fn frames_are_walked_to_their_end_and_bound() {
    let input = records(300_000, 8);
    for frame in [ours(None, &input), libzstd_streamed(&input, 3, true)] {
        let e = frame_extent(&frame).unwrap();
        assert_eq!(e.len, frame.len());
        assert!(e.most >= input.len() as u64, "{e:?}");
        // Three blocks of 128 KiB at most: the bound is tight to a block.
        assert!(e.most <= input.len() as u64 + MAX_BLOCK, "{e:?}");
        for cut in [1, 5, frame.len() / 2, frame.len() - 1] {
            assert!(frame_extent(&frame[..cut]).is_err(), "cut at {cut}");
        }
    }
}

#[test]
fn huge_windows_and_sizes_are_rejected() {
    // Magic, FHD 0 (no single segment, no checksum, no size), window descriptor with
    // exponent 20 (a 1 GiB window), one empty last raw block. zrip allows 128 MiB, as
    // libzstd does by default.
    let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 20 << 3, 0x01, 0, 0];
    let e = decompress(&frame, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("window"), "{e}");
    // A declared content size over the limit fails before decoding.
    let sized = ours(None, &records(5000, 9));
    assert!(frame_extent(&sized).unwrap().content_size == Some(5000));
    let e = decompress(&sized, 4999).unwrap_err();
    assert!(e.to_string().contains("more than 4999"), "{e}");
    assert!(decompress(&sized[..8], 1 << 20).is_err());
}

#[test]
fn a_frame_larger_than_its_blocks_allow_is_corrupt() {
    // One RLE block of 10 bytes, but a declared content size of 100: the blocks cannot
    // produce it, whatever the limit.
    let frame = [0x28, 0xB5, 0x2F, 0xFD, 0x20, 100, 0x53, 0, 0, b'x'];
    let e = decompress(&frame, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("corrupt zstd"), "{e}");
}

#[test]
fn zstd_memory_is_bounded_by_max_output() {
    // Frames that do not declare their size and decode far past the limit: zeros and text,
    // from libzstd (with and without checksum) and a hand-built run of RLE blocks.
    let zeros = vec![0u8; 24 << 20];
    let mut rle = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 10 << 3]; // 1 MiB window, no size
    for i in 0..100 {
        let last = u32::from(i == 99);
        let header = (128 << 10) << 3 | 1 << 1 | last; // RLE, 128 KiB
        rle.extend_from_slice(&header.to_le_bytes()[..3]);
        rle.push(b'z');
    }
    let bombs = [
        libzstd_streamed(&zeros, 3, true),
        libzstd_streamed(&zeros, 1, false),
        libzstd_streamed(&records(24 << 20, 10), 1, false),
        rle,
    ];
    for max_output in [1000, 100_000, 3 << 20, 5 << 20] {
        for bomb in &bombs {
            let (r, peak) = peak_heap(|| decompress(bomb, max_output));
            let e = r.unwrap_err();
            assert!(e.to_string().contains("more than"), "{e}");
            assert!(
                peak <= max_output + ZRIP_SLACK + WORKSPACE,
                "limit {max_output}: {peak} bytes at peak"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Mutated frames from both encoders, at levels that use every table kind: an error or
    /// (rarely, for a mutation the checksum does not cover) the input back, never a panic,
    /// and memory within the limit.
    #[test]
    fn mutated_frames_fail_cleanly(seed in any::<u64>(), encoder in 0..4usize,
                                   edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..6)) {
        let mut input = records(20_000, seed);
        input.extend(random_bytes(2000, seed | 1));
        let mut frame = match encoder {
            0 => ours(None, &input),
            1 => ours(Some(4), &input),
            2 => zstd::bulk::compress(&input, 19).unwrap(),
            _ => libzstd_streamed(&input, 3, true),
        };
        for (at, byte, kind) in edits {
            let i = at % frame.len();
            match kind {
                0 => frame[i] ^= byte.max(1),
                1 => frame.truncate(i.max(1)),
                _ => frame.insert(i, byte),
            }
        }
        let max_output = 16 << 10;
        let (r, peak) = peak_heap(|| decompress(&frame, max_output));
        prop_assert!(peak <= max_output + ZRIP_SLACK + WORKSPACE, "{} bytes at peak", peak);
        if let Ok(out) = r {
            prop_assert!(out.len() <= max_output);
        }
    }

    #[test]
    fn random_bytes_after_a_frame_header_fail_cleanly(body in proptest::collection::vec(any::<u8>(), 0..4000),
                                                     fhd in any::<u8>(), wd in 0..(18u8 << 3)) {
        // A plausible header (magic, any descriptor, a window up to 256 MiB) so the bytes
        // reach the block decoder instead of stopping at the magic number.
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, fhd & !0x08, wd];
        frame.extend(body);
        let max_output = 64 << 10;
        let (r, peak) = peak_heap(|| decompress(&frame, max_output));
        prop_assert!(peak <= max_output + ZRIP_SLACK + WORKSPACE, "{} bytes at peak", peak);
        if let Ok(out) = r {
            prop_assert!(out.len() <= max_output);
        }
    }
}

#[test]
fn a_reused_context_writes_the_same_frames_and_allocates_nothing_once_warm() {
    let mut ctx = None;
    let mut out = Vec::new();
    let inputs = [
        random_bytes(300_000, 7),
        b"abc".repeat(100_000),
        random_bytes(10, 3),
        b"record ".repeat(50_000),
    ];
    for level in [None, Some(3), Some(-5)] {
        for input in &inputs {
            let n = compress_with(&mut ctx, level, input, &mut out).unwrap();
            // A reused context writes the frames a fresh one does.
            assert_eq!(
                out[..n],
                ours(level, input)[..],
                "{level:?}, {} bytes",
                input.len()
            );
            assert_eq!(&decompress(&out[..n], input.len()).unwrap(), input);
        }
    }
    // Warm for this level and size: another frame allocates next to nothing (zrip keeps a
    // few hundred bytes of per-frame state), where a fresh context allocates its match
    // tables and output bound every time.
    let input = b"record ".repeat(50_000);
    compress_with(&mut ctx, Some(1), &input, &mut out).unwrap();
    let (n, peak) = peak_heap(|| compress_with(&mut ctx, Some(1), &input, &mut out).unwrap());
    assert!(peak <= 1024, "warm: {peak} bytes allocated for one frame");
    let (_, one_shot) = peak_heap(|| ours(Some(1), &input));
    assert!(one_shot > 64 << 10, "one-shot: {one_shot} bytes");
    assert_eq!(&decompress(&out[..n], input.len()).unwrap(), &input);
}
