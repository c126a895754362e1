//! Zstandard for record batches: zrip (pure Rust, `forbid(unsafe_code)`) both ways.
//!
//! **Writing.** One frame per batch, with its content size and checksum, at zrip's level:
//!
//! | asked level (`compression.level`)   | zrip level | why                                       |
//! |-------------------------------------|------------|-------------------------------------------|
//! | none, 0                             | 1          | see below                                 |
//! | -131072..=-7                        | -7         | zrip's fastest; lower levels don't exist  |
//! | -6..=4                              | same       | zrip implements them                      |
//! | 5..=22                              | 4          | zrip stops at 4 (libzstd's higher levels use lazy and optimal parsers zrip lacks): the frame is level 4's, never an error |
//!
//! The default is level 1, not zstd's and the Java client's 3 (KIP-390). On a batch of the
//! benchmark's 100 B records (docs/PERFORMANCE.md, "zrip in the library"), zrip's level 3 costs
//! about twice the CPU of level 1 at every batch size, for 5–15 % smaller frames at 16–128 KiB
//! and *larger* ones at 1 MB (6.20× against 6.52×): level 1 compresses about as well as
//! libzstd's level 3, which librdkafka uses by default, at a fraction of the time. Ask for 3 or
//! 4 to trade CPU for ratio on small batches.
//!
//! **Reading.** Any conformant frames, concatenated, skippable frames skipped. Memory is bounded
//! before zrip starts: the frame's blocks are walked first (their headers give each block's
//! length and type), which yields where the frame ends and the most it can decode to; zrip then
//! decodes into an output reserved once for `min(that, what max_output still allows)` plus
//! zrip's copy slack, with that as its limit, so neither a declared size nor a block's
//! worth of output ever grows the buffer past the caller's `max_output` (+ 64 bytes). The
//! window needs no memory of its own: zrip decodes in place, the output is the history.

use crate::error::{Error, Result};

use super::{bad_level, corrupt, too_large, Compression, Cursor};

const CODEC: Compression = Compression::Zstd;

/// The level written when the producer asks for none (or 0, zstd's "default").
pub(super) const DEFAULT_LEVEL: i32 = 1;
/// zrip's lowest and highest levels.
const ZRIP_LEVELS: std::ops::RangeInclusive<i32> = -7..=4;
/// Kafka's `compression.zstd.level` range (libzstd's): what a producer may ask for.
const KAFKA_LEVELS: std::ops::RangeInclusive<i32> = -131072..=22;

/// Maps a requested zstd level onto zrip's range (table in the module docs).
pub(super) fn zrip_level(level: Option<i32>) -> Result<i32> {
    match level {
        None | Some(0) => Ok(DEFAULT_LEVEL),
        Some(l) if !KAFKA_LEVELS.contains(&l) => Err(bad_level("zstd", l, "-131072..=22")),
        Some(l) => Ok(l.clamp(*ZRIP_LEVELS.start(), *ZRIP_LEVELS.end())),
    }
}

/// Appends one zstd frame of `input` to `out`, from a fresh context (the producer keeps one
/// per compression thread: [`compress_with`]).
pub(super) fn compress(level: Option<i32>, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut frame = Vec::new();
    let n = compress_with(&mut None, level, input, &mut frame)?;
    out.extend_from_slice(&frame[..n]);
    Ok(())
}

/// One zstd frame of `input` at the start of `out`, through `ctx` (made for the level on first
/// use, and again if the level changes): returns the frame's length. `out` only ever grows
/// (to zrip's bound for the largest input yet), so after the first batch nothing is
/// allocated or zero-filled per frame.
pub(super) fn compress_with(
    ctx: &mut Option<zrip::CompressContext>,
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize> {
    let level = zrip_level(level)?;
    let ctx = match ctx {
        Some(c) if c.level() == level => c,
        _ => ctx.insert(
            zrip::CompressContext::new(level)
                .map_err(|e| Error::protocol(format!("zstd level {level}: {e}")))?,
        ),
    };
    let bound = zrip::compress_bound(input.len());
    if out.len() < bound {
        out.resize(bound, 0);
    }
    // zrip fails only if the bound it computes is too small: a bug, reported, not a panic.
    ctx.compress_into(input, out)
        .map_err(|e| Error::protocol(format!("zstd compression failed: {e}")))
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const ZSTD_SKIPPABLE: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// The largest output of one block (RFC 8878 3.1.1.2.4).
const MAX_BLOCK: u64 = 128 << 10;
/// What zrip reserves past a block's output for its 16-byte-wide copies (zrip-decode's
/// `WILDCOPY_OVERLENGTH`, not exported). The output is reserved with this much room so that
/// zrip's own per-block `reserve` never has to grow it; if a zrip update reserves more, the
/// buffer grows past the bound and `zstd_memory_is_bounded_by_max_output` fails.
const ZRIP_SLACK: usize = 64;

/// Decompresses the concatenated zstd frames of `input` into at most `max_output` bytes.
pub(super) fn decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = input;
    let mut ctx = zrip::DecompressContext::new();
    // Java's ZstdInputStream and libzstd both decode concatenated frames; Kafka writes one.
    while !rest.is_empty() {
        let frame = frame_extent(rest)?;
        let (this, next) = rest.split_at(frame.len);
        rest = next;
        if frame.skippable {
            continue;
        }
        let room = max_output.saturating_sub(out.len());
        if frame.content_size.is_some_and(|n| n > room as u64) {
            return Err(too_large(CODEC, max_output));
        }
        // `most` bounds a conformant frame's output; past it the frame is corrupt, not big.
        let limit = usize::try_from(frame.most).map_or(room, |most| most.min(room));
        out.reserve_exact(limit + ZRIP_SLACK);
        if let Err(e) = ctx.decompress_into_with_limit(this, &mut out, limit) {
            // zrip reports a block's sequences that would run past the limit as corrupt
            // sequences: when the caller's limit, not the frame's own bound, was the one
            // binding, that is the frame decoding to too much (or corrupt; both are errors).
            use zrip::DecompressError::{CorruptSequences, OutputTooSmall};
            let limited = (limit as u64) < frame.most;
            return Err(match e {
                OutputTooSmall | CorruptSequences if limited => too_large(CODEC, max_output),
                e => corrupt(CODEC, e),
            });
        }
    }
    Ok(out)
}

/// A frame's extent, from its frame and block headers alone.
#[derive(Debug)]
struct FrameExtent {
    /// Bytes of input the frame takes, checksum included.
    len: usize,
    skippable: bool,
    /// The content size the frame header declares.
    content_size: Option<u64>,
    /// The most the blocks can decode to: raw and RLE blocks state their size, a compressed
    /// block decodes to at most the block maximum, `min(window, 128 KiB)`.
    most: u64,
}

/// Walks the frame at the front of `input` (RFC 8878 3.1.1) without decoding it.
fn frame_extent(input: &[u8]) -> Result<FrameExtent> {
    let eof = || corrupt(CODEC, "truncated frame");
    let mut r = Cursor { buf: input, pos: 0 };
    let magic = r.u32_le().ok_or_else(eof)?;
    if ZSTD_SKIPPABLE.contains(&magic) {
        let len = r.u32_le().ok_or_else(eof)? as usize;
        r.take(len).ok_or_else(eof)?;
        return Ok(FrameExtent {
            len: r.pos,
            skippable: true,
            content_size: None,
            most: 0,
        });
    }
    if magic != ZSTD_MAGIC {
        return Err(corrupt(CODEC, format!("bad frame magic {magic:#010x}")));
    }
    let [fhd] = r.array::<1>().ok_or_else(eof)?;
    let single_segment = fhd & 0x20 != 0;
    let checksum = fhd & 0x04 != 0;
    let window = if single_segment {
        None
    } else {
        let [wd] = r.array::<1>().ok_or_else(eof)?;
        let log = 10 + u64::from(wd >> 3);
        let base = 1u64 << log;
        Some(base + (base / 8) * u64::from(wd & 0x07))
    };
    let dict_len = [0, 1, 2, 4][usize::from(fhd & 0x03)];
    r.take(dict_len).ok_or_else(eof)?;
    let fcs_len = match fhd >> 6 {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let fcs = r.take(fcs_len).ok_or_else(eof)?;
    let mut le = [0u8; 8];
    le[..fcs_len].copy_from_slice(fcs);
    let content_size = match fcs_len {
        0 => None,
        2 => Some(u64::from_le_bytes(le) + 256),
        _ => Some(u64::from_le_bytes(le)),
    };
    // A single-segment frame's window is its content size.
    let block_max = window.or(content_size).unwrap_or(0).min(MAX_BLOCK);
    let mut most = 0u64;
    loop {
        let [b0, b1, b2] = r.array::<3>().ok_or_else(eof)?;
        let header = u32::from_le_bytes([b0, b1, b2, 0]);
        let size = header >> 3;
        let body = match (header >> 1) & 0x03 {
            // Raw: `size` bytes stored. RLE: one byte repeated `size` times.
            0 => {
                most += u64::from(size);
                size as usize
            }
            1 => {
                most += u64::from(size);
                1
            }
            2 => {
                most += block_max;
                size as usize
            }
            _ => return Err(corrupt(CODEC, "reserved block type")),
        };
        r.take(body).ok_or_else(eof)?;
        if header & 1 != 0 {
            break;
        }
    }
    if checksum {
        r.take(4).ok_or_else(eof)?;
    }
    Ok(FrameExtent {
        len: r.pos,
        skippable: false,
        content_size,
        most,
    })
}

#[cfg(test)]
#[path = "compression_zstd_tests.rs"]
mod tests;
