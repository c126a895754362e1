//! Compression codecs for record batches, in the exact wire formats Kafka clients exchange.
//!
//! Kafka compresses the *records section* of a batch as one blob; the codec id sits in the
//! batch attributes. Every codec here is pure Rust, and each one is written in the framing that
//! both the Java client and librdkafka read, which is not always the codec's "obvious" format:
//!
//! | codec  | written                                           | read                         |
//! |--------|---------------------------------------------------|------------------------------|
//! | gzip   | one gzip member (flate2)                          | any number of gzip members   |
//! | snappy | xerial snappy-java framing (what Java writes)     | xerial framing or raw snappy |
//! | lz4    | LZ4 frame, 64 KiB independent blocks, no checksums| LZ4 frames, any block setting|
//! | zstd   | one zstd frame (zrip, level 1 unless asked)       | one or more zstd frames      |
//!
//! Decompression is the consumer's exposure to hostile or corrupt data, so every decoder is
//! bounded by the caller's `max_output` *before* it allocates (a decompression bomb fails
//! with a protocol error instead of exhausting memory) and reports corruption as an error,
//! never a panic.
//!
//! zstd lives in `compression_zstd.rs`: the level mapping, why the default is level 1 rather
//! than zstd's 3 (measured there), and how its decoder bounds memory.

use std::io::{Read, Write};

use crate::error::{Error, Result};

/// Compression codec for produced record batches.
///
/// The names match Kafka's `compression.type` values:
///
/// ```
/// use ferrokafka::Compression;
/// assert_eq!(Compression::from_name("LZ4"), Some(Compression::Lz4));
/// assert_eq!(Compression::Zstd.name(), "zstd");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression (the default).
    #[default]
    None,
    /// gzip (deflate). Best ratio of the classic codecs, slowest.
    Gzip,
    /// Snappy, in the xerial snappy-java framing every Kafka client reads.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard (needs brokers of Kafka 2.1 or later).
    Zstd,
}

impl Compression {
    /// Parses Kafka's names: `none`, `gzip`, `snappy`, `lz4`, `zstd` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Compression> {
        const ALL: [Compression; 5] = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        ALL.into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// Kafka's name for the codec, as in `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec id Kafka stores in bits 0-2 of a batch's attributes.
    pub(crate) fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec named by a batch's attributes (bits 0-2). Ids 5-7 are unassigned in Kafka.
    pub(crate) fn from_attributes(attributes: i16) -> Result<Compression> {
        match attributes & 0x07 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            id => Err(Error::protocol(format!(
                "record batch uses unknown compression codec id {id}"
            ))),
        }
    }
}

/// Compresses `input` with `codec`, appending the result to `out`.
///
/// `level` is the codec's level, `None` for its default. Accepted ranges:
/// - gzip: 0..=9 (0 stores, 9 compresses most; default 6).
/// - lz4: Kafka's `compression.lz4.level` range 1..=17 is accepted and ignored: lz4_flex only
///   implements LZ4's fast compressor, whose output every LZ4 reader decodes the same way.
/// - zstd: Kafka's `compression.zstd.level` range -131072..=22 is accepted and mapped onto
///   zrip's levels -7..=4 (5..=22 compress at 4, below -7 at -7; none or 0: level 1). The
///   table and the reason for level 1 are in `compression_zstd.rs`.
/// - none, snappy: no levels; any `level` is ignored.
///
/// A level outside its range is `Error::InvalidInput`.
pub(crate) fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let level = match level {
                None => flate2::Compression::default(),
                Some(l @ 0..=9) => flate2::Compression::new(l as u32),
                Some(l) => return Err(bad_level("gzip", l, "0..=9")),
            };
            let mut enc = flate2::write::GzEncoder::new(&mut *out, level);
            enc.write_all(input).and_then(|_| enc.try_finish())?;
        }
        Compression::Snappy => snappy_compress_xerial(input, out)?,
        Compression::Lz4 => {
            if let Some(l) = level.filter(|l| !(1..=17).contains(l)) {
                return Err(bad_level("lz4", l, "1..=17"));
            }
            lz4_compress_frame(input, out)?;
        }
        Compression::Zstd => zstd::compress(level, input, out)?,
    }
    Ok(())
}

/// What one thread keeps to compress batch after batch: an output buffer grown once to the
/// codec's worst case and then reused, and zstd's match tables (zrip's one-shot function
/// allocates and zeroes them for every frame).
#[derive(Default)]
pub(crate) struct Compressor {
    out: Vec<u8>,
    zstd: Option<zrip::CompressContext>,
}

impl Compressor {
    /// `input` compressed with `codec` at `level` ([`compress`]'s formats and levels), valid
    /// until the next call.
    pub(crate) fn compress(
        &mut self,
        codec: Compression,
        level: Option<i32>,
        input: &[u8],
    ) -> Result<&[u8]> {
        if codec == Compression::Zstd {
            let n = zstd::compress_with(&mut self.zstd, level, input, &mut self.out)?;
            return Ok(&self.out[..n]);
        }
        self.out.clear();
        compress(codec, level, input, &mut self.out)?;
        Ok(&self.out)
    }
}

/// LZ4 frame flags: version 01, independent blocks, no block or content checksums, no
/// content size, no dictionary.
const LZ4_FLG: u8 = 0b0110_0000;
/// LZ4 block descriptor: blocks of at most 64 KiB.
const LZ4_BD: u8 = 4 << 4;

/// Writes `input` as one LZ4 frame of 64 KiB independent blocks, without checksums.
///
/// Java's Lz4BlockInputStream rejects dependent blocks and librdkafka writes 64 KiB independent
/// blocks: this matches that, and leaves the optional checksums off as both do. Each block is
/// compressed straight into `out` (lz4_flex's `FrameEncoder` would copy the input into a block
/// buffer and the output out of another, and allocate both for every batch).
fn lz4_compress_frame(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let bound = lz4_flex::block::get_maximum_output_size(LZ4_WINDOW);
    out.reserve(11 + input.len() + input.len() / 64);
    out.extend_from_slice(&LZ4_MAGIC.to_le_bytes());
    out.extend_from_slice(&[LZ4_FLG, LZ4_BD]);
    out.push((xxh32_short(&[LZ4_FLG, LZ4_BD]) >> 8) as u8);
    for block in input.chunks(LZ4_WINDOW) {
        let size_at = out.len();
        let data_at = size_at + 4;
        out.resize(
            data_at + bound.min(lz4_flex::block::get_maximum_output_size(block.len())),
            0,
        );
        let n = lz4_flex::block::compress_into(block, &mut out[data_at..])
            .map_err(|e| Error::protocol(format!("lz4 compression failed: {e}")))?;
        let word = if n < block.len() {
            out.truncate(data_at + n);
            n as u32
        } else {
            // Incompressible: stored as is, flagged by the size word's high bit.
            out.truncate(data_at);
            out.extend_from_slice(block);
            block.len() as u32 | 0x8000_0000
        };
        out[size_at..data_at].copy_from_slice(&word.to_le_bytes());
    }
    // End mark.
    out.extend_from_slice(&0u32.to_le_bytes());
    Ok(())
}

fn bad_level(codec: &str, level: i32, range: &str) -> Error {
    Error::InvalidInput(format!("{codec} compression level {level} is outside {range}").into())
}

/// Decompresses `input`, which `codec` produced.
///
/// Fails with a protocol error, without panicking, when the data is corrupt or would expand
/// past `max_output` bytes. The returned buffer never grows beyond `max_output` bytes (plus
/// one byte to detect overflow, or 64 for zstd's copy slack); gzip and zstd use a small fixed
/// amount of working memory on top (zstd decodes in place: its window is the output).
pub(crate) fn decompress(codec: Compression, input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    let mut out = decompress_grown(codec, input, max_output)?;
    // The consumer keeps a decompressed batch alive as long as any of its records, and the
    // decoders grow their output by doubling: without this up to half the buffer is slack
    // that nothing uses and the prefetch budget does not see. Shrinking a heap block in place
    // is a `realloc` that moves nothing (glibc splits the block; an mmapped one is remapped).
    if out.capacity() - out.len() > out.len() / 16 {
        out.shrink_to_fit();
    }
    Ok(out)
}

/// [`decompress`], with whatever capacity the decoder grew its output to.
fn decompress_grown(codec: Compression, input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(too_large(codec, max_output));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            // Java's GZIPInputStream reads concatenated members; so does MultiGzDecoder.
            let mut out = Vec::new();
            read_bounded(
                flate2::read::MultiGzDecoder::new(input),
                &mut out,
                input.len(),
                max_output,
                codec,
            )?;
            Ok(out)
        }
        Compression::Snappy => snappy_decompress(input, max_output),
        Compression::Lz4 => lz4_decompress(input, max_output),
        Compression::Zstd => zstd::decompress(input, max_output),
    }
}

fn too_large(codec: Compression, max_output: usize) -> Error {
    Error::protocol(format!(
        "{} data decompresses to more than {max_output} bytes",
        codec.name()
    ))
}

fn corrupt(codec: Compression, detail: impl std::fmt::Display) -> Error {
    Error::protocol(format!("corrupt {} data: {detail}", codec.name()))
}

/// Reads `reader` to its end, appending to `out`, and fails once `out` would hold more than
/// `max_output` bytes in total.
///
/// `Read::read_to_end` doubles its buffer freely; this grows it by doubling too, but never past
/// `max_output + 1`, so a bomb is caught with at most that much allocated.
fn read_bounded(
    mut reader: impl Read,
    out: &mut Vec<u8>,
    size_hint: usize,
    max_output: usize,
    codec: Compression,
) -> Result<()> {
    // The cap is one byte past the limit so that "exactly max_output" and "more" differ.
    let cap = max_output.saturating_add(1);
    let hint = size_hint.saturating_mul(2).clamp(1024, 1 << 20);
    out.reserve_exact(hint.min(cap.saturating_sub(out.len())));
    loop {
        if out.len() > max_output {
            return Err(too_large(codec, max_output));
        }
        if out.len() == out.capacity() {
            out.reserve_exact(out.len().max(4096).min(cap - out.len()));
        }
        // Zero-fill at most 64 KiB per read, so a reader that returns little per call does
        // not make each call re-initialise the whole spare capacity.
        let filled = out.len();
        let window = (out.capacity() - filled).min(64 * 1024);
        out.resize(filled + window, 0);
        let result = reader.read(&mut out[filled..]);
        out.truncate(filled + *result.as_ref().unwrap_or(&0));
        match result {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(corrupt(codec, e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Snappy: xerial snappy-java framing.
//
// snappy-java's SnappyOutputStream (what the Java client writes) prefixes a 16-byte header,
// `\x82SNAPPY\0` + version 1 + minimum compatible version 1 (big-endian i32s), then repeats
// [big-endian i32 length][raw snappy block]. This is *not* the snappy "framing format" that
// `snap::write::FrameEncoder` produces, which no Kafka client reads.

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size; readers accept any, this just matches the Java client.
const XERIAL_BLOCK: usize = 32 * 1024;

fn snappy_compress_xerial(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.reserve(XERIAL_HEADER_LEN + snap::raw::max_compress_len(input.len()) + 4);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut enc = snap::raw::Encoder::new();
    // At least one chunk, even for empty input: librdkafka only recognises the xerial header
    // when a chunk follows it (`inlen > 16 + 4`) and would otherwise parse the header as raw
    // snappy and fail.
    let mut chunks = input.chunks(XERIAL_BLOCK);
    let first: &[u8] = chunks.next().unwrap_or(&[]);
    for chunk in std::iter::once(first).chain(chunks) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let body_at = out.len();
        out.resize(body_at + snap::raw::max_compress_len(chunk.len()), 0);
        let n = enc
            .compress(chunk, &mut out[body_at..])
            .map_err(|e| corrupt(Compression::Snappy, e))?;
        out.truncate(body_at + n);
        out[len_at..body_at].copy_from_slice(&(n as u32).to_be_bytes());
    }
    Ok(())
}

fn snappy_decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    let raw_len = |block: &[u8]| snap::raw::decompress_len(block).map_err(|e| corrupt(codec, e));
    let mut dec = snap::raw::Decoder::new();
    if input.len() < XERIAL_HEADER_LEN || &input[..8] != XERIAL_MAGIC {
        // No xerial header: one raw snappy block, as librdkafka also accepts.
        let len = raw_len(input)?;
        if len > max_output {
            return Err(too_large(codec, max_output));
        }
        let mut out = vec![0; len];
        dec.decompress(input, &mut out)
            .map_err(|e| corrupt(codec, e))?;
        return Ok(out);
    }
    // Two passes, like librdkafka: sum the declared lengths (cheap, and checked against the
    // limit before anything is allocated), then decompress each chunk into its place.
    let chunks = || XerialChunks {
        rest: &input[XERIAL_HEADER_LEN..],
    };
    let mut total = 0usize;
    for chunk in chunks() {
        total = total.saturating_add(raw_len(chunk?)?);
        if total > max_output {
            return Err(too_large(codec, max_output));
        }
    }
    let mut out = vec![0; total];
    let mut at = 0;
    for chunk in chunks() {
        let chunk = chunk?;
        let len = raw_len(chunk)?;
        dec.decompress(chunk, &mut out[at..at + len])
            .map_err(|e| corrupt(codec, e))?;
        at += len;
    }
    Ok(out)
}

/// The raw snappy blocks of a xerial stream (after its header).
struct XerialChunks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for XerialChunks<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((len, rest)) = self.rest.split_first_chunk::<4>() else {
            self.rest = &[];
            return Some(Err(corrupt(
                Compression::Snappy,
                "truncated xerial chunk length",
            )));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > rest.len() {
            self.rest = &[];
            return Some(Err(corrupt(
                Compression::Snappy,
                format!("xerial chunk of {len} bytes, {} left", rest.len()),
            )));
        }
        let (chunk, rest) = rest.split_at(len);
        self.rest = rest;
        Some(Ok(chunk))
    }
}

// ---------------------------------------------------------------------------------------------
// LZ4 frames, decoded here rather than with lz4_flex's FrameDecoder: that decoder sizes its
// buffers from the frame's declared block size (up to 3 × 4 MiB for linked blocks) whatever
// the data, while this one writes each block straight into the bounded output.

const LZ4_MAGIC: u32 = 0x184D_2204;
const LZ4_SKIPPABLE: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// How far back a linked block may reference earlier output.
const LZ4_WINDOW: usize = 64 * 1024;

fn lz4_decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = input;
    // Kafka writes one frame; the LZ4 format allows several back to back, and librdkafka's
    // LZ4F-based reader decodes them all, so this does too.
    while !rest.is_empty() {
        rest = lz4_frame(rest, &mut out, max_output)?;
    }
    Ok(out)
}

/// Decodes one LZ4 frame from the front of `input`, appending to `out`; returns what follows.
fn lz4_frame<'a>(input: &'a [u8], out: &mut Vec<u8>, max_output: usize) -> Result<&'a [u8]> {
    let codec = Compression::Lz4;
    let eof = || corrupt(codec, "truncated frame");
    let mut r = Cursor { buf: input, pos: 0 };
    let magic = r.u32_le().ok_or_else(eof)?;
    if LZ4_SKIPPABLE.contains(&magic) {
        let len = r.u32_le().ok_or_else(eof)? as usize;
        r.take(len).ok_or_else(eof)?;
        return Ok(&input[r.pos..]);
    }
    if magic != LZ4_MAGIC {
        return Err(corrupt(codec, format!("bad frame magic {magic:#010x}")));
    }
    let descriptor_at = r.pos;
    let [flg, bd] = r.array::<2>().ok_or_else(eof)?;
    if flg >> 6 != 1 || flg & 0x02 != 0 || bd & 0x8F != 0 {
        return Err(corrupt(
            codec,
            format!("unsupported frame flags {flg:#04x} {bd:#04x}"),
        ));
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let content_checksum = flg & 0x04 != 0;
    let block_max = match (bd >> 4) & 0x07 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        id => return Err(corrupt(codec, format!("invalid block size id {id}"))),
    };
    let content_size = if flg & 0x08 != 0 {
        Some(u64::from_le_bytes(r.array::<8>().ok_or_else(eof)?))
    } else {
        None
    };
    if flg & 0x01 != 0 {
        return Err(corrupt(
            codec,
            "frames with a preset dictionary are not supported",
        ));
    }
    let hc = r.array::<1>().ok_or_else(eof)?[0];
    let expected = (xxh32_short(&input[descriptor_at..r.pos - 1]) >> 8) as u8;
    if hc != expected {
        return Err(corrupt(codec, "frame descriptor checksum mismatch"));
    }
    let room = |out: &Vec<u8>| max_output.saturating_sub(out.len());
    if content_size.is_some_and(|n| n > room(out) as u64) {
        return Err(too_large(codec, max_output));
    }
    let frame_start = out.len();
    loop {
        let word = r.u32_le().ok_or_else(eof)?;
        if word == 0 {
            // The batch CRC-32C already covers these bytes; the optional xxHash checksums
            // are skipped rather than recomputed.
            if content_checksum {
                r.take(4).ok_or_else(eof)?;
            }
            break;
        }
        let len = (word & 0x7FFF_FFFF) as usize;
        if len > block_max {
            return Err(corrupt(
                codec,
                format!("block of {len} bytes exceeds {block_max}"),
            ));
        }
        let block = r.take(len).ok_or_else(eof)?;
        if block_checksums {
            r.take(4).ok_or_else(eof)?;
        }
        if word & 0x8000_0000 != 0 {
            if len > room(out) {
                return Err(too_large(codec, max_output));
            }
            out.extend_from_slice(block);
            continue;
        }
        // An LZ4 sequence turns each input byte into at most 255 output bytes, so this bound
        // keeps a tiny block in a 4 MiB-block frame from zero-filling 4 MiB.
        let limit_by_data = len.saturating_mul(256).saturating_add(64).min(block_max);
        let space = limit_by_data.min(room(out));
        let filled = out.len();
        out.resize(filled + space, 0);
        let (head, tail) = out.split_at_mut(filled);
        let result = if independent {
            lz4_flex::block::decompress_into(block, tail)
        } else {
            let dict_from = frame_start.max(filled.saturating_sub(LZ4_WINDOW));
            lz4_flex::block::decompress_into_with_dict(block, tail, &head[dict_from..])
        };
        match result {
            Ok(n) => out.truncate(filled + n),
            Err(_) if space < limit_by_data => return Err(too_large(codec, max_output)),
            Err(e) => return Err(corrupt(codec, e)),
        }
    }
    if content_size.is_some_and(|n| n != (out.len() - frame_start) as u64) {
        return Err(corrupt(
            codec,
            "content size does not match the frame's data",
        ));
    }
    Ok(&input[r.pos..])
}

/// xxHash32 with seed 0 for inputs shorter than 16 bytes: all the LZ4 frame descriptor
/// checksum needs (at most 14 bytes), so the long-input stripes are left out.
fn xxh32_short(data: &[u8]) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    debug_assert!(data.len() < 16);
    let mut h = P5.wrapping_add(data.len() as u32);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        h = h
            .wrapping_add(w.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in words.remainder() {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

/// A bounds-checked reader over a byte slice: every read is `None` past the end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|s| s.try_into().unwrap_or([0; N]))
    }

    fn u32_le(&mut self) -> Option<u32> {
        self.array::<4>().map(u32::from_le_bytes)
    }
}

#[path = "compression_zstd.rs"]
mod zstd;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn compressed(codec: Compression, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(codec, None, input, &mut out).unwrap();
        out
    }

    /// Deterministic pseudo-random bytes (xorshift), incompressible in practice.
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

    fn compressible(len: usize) -> Vec<u8> {
        let text = b"{\"user\":42,\"event\":\"click\",\"page\":\"/checkout\"} ";
        text.iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn names_and_attribute_ids_round_trip() {
        for c in CODECS {
            assert_eq!(Compression::from_name(c.name()), Some(c));
            assert_eq!(Compression::from_name(&c.name().to_uppercase()), Some(c));
            assert_eq!(Compression::from_attributes(c.attribute_bits()).unwrap(), c);
            // Only the low three bits name the codec.
            assert_eq!(
                Compression::from_attributes(c.attribute_bits() | 0x38).unwrap(),
                c
            );
        }
        assert_eq!(Compression::from_name("brotli"), None);
        assert_eq!(Compression::default(), Compression::None);
        for id in 5..=7 {
            let e = Compression::from_attributes(id).unwrap_err();
            assert!(matches!(e, Error::Protocol(_)) && e.to_string().contains(&id.to_string()));
        }
    }

    #[test]
    fn every_codec_round_trips_empty_small_random_and_compressible_input() {
        let inputs = [
            Vec::new(),
            b"hello, kafka".to_vec(),
            random_bytes(1 << 20, 7),
            compressible(1 << 20),
        ];
        for codec in CODECS {
            for input in &inputs {
                let c = compressed(codec, input);
                let d = decompress(codec, &c, input.len()).unwrap();
                assert!(d == *input, "{codec:?} of {} bytes", input.len());
            }
            let c = compressed(codec, &compressible(1 << 20));
            if codec != Compression::None {
                assert!(
                    c.len() < (1 << 20) / 4,
                    "{codec:?} barely compressed: {}",
                    c.len()
                );
            }
        }
    }

    #[test]
    fn decompressed_buffers_carry_little_slack() {
        // The consumer keeps a decompressed batch alive with its records: spare capacity is
        // memory that nothing uses and the prefetch budget does not count.
        for codec in CODECS {
            for len in [3_000, 100_000, (1 << 20) + 7] {
                let input = compressible(len);
                let d = decompress(codec, &compressed(codec, &input), 2 << 20).unwrap();
                assert!(d == input, "{codec:?} of {len} bytes");
                assert!(
                    d.capacity() - d.len() <= d.len() / 16,
                    "{codec:?} of {len} bytes: capacity {}",
                    d.capacity()
                );
            }
        }
    }

    #[test]
    fn compress_appends_to_existing_output() {
        for codec in CODECS {
            let mut out = b"prefix".to_vec();
            compress(codec, None, b"payload", &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(decompress(codec, &out[6..], 100).unwrap(), b"payload");
        }
    }

    #[test]
    fn levels_are_validated_per_codec() {
        let input = compressible(10_000);
        for (codec, ok, bad) in [
            (Compression::Gzip, [0, 1, 9], [-1, 10]),
            (Compression::Lz4, [1, 9, 17], [0, 18]),
            (Compression::Zstd, [-131072, 3, 22], [-131073, 23]),
        ] {
            for level in ok {
                let mut out = Vec::new();
                compress(codec, Some(level), &input, &mut out).unwrap();
                assert_eq!(decompress(codec, &out, input.len()).unwrap(), input);
            }
            for level in bad {
                let e = compress(codec, Some(level), &input, &mut Vec::new()).unwrap_err();
                assert!(
                    matches!(e, Error::InvalidInput(_)),
                    "{codec:?} {level}: {e}"
                );
            }
        }
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error() {
        let input = compressible(100_000);
        for codec in CODECS.into_iter().skip(1) {
            let c = compressed(codec, &input);
            for cut in [1, c.len() / 2, c.len() - 1] {
                let r = decompress(codec, &c[..cut], 1 << 20);
                assert!(r.is_err(), "{codec:?} accepted {cut} of {} bytes", c.len());
            }
            assert!(decompress(codec, b"definitely not compressed data", 1 << 20).is_err());
        }
    }

    #[test]
    fn max_output_guards_against_bombs() {
        let zeros = vec![0u8; 4 << 20];
        for codec in CODECS {
            let c = compressed(codec, &zeros);
            let e = decompress(codec, &c, 1000).unwrap_err();
            assert!(
                e.to_string().contains("more than 1000 bytes"),
                "{codec:?}: {e}"
            );
            let e = decompress(codec, &c, zeros.len() - 1).unwrap_err();
            assert!(matches!(e, Error::Protocol(_)), "{codec:?}: {e}");
            assert_eq!(
                decompress(codec, &c, zeros.len()).unwrap().len(),
                zeros.len()
            );
        }
    }

    /// "hello" and "world" as raw snappy blocks: uncompressed length, then one literal tag
    /// ((len - 1) << 2) and the bytes.
    const HELLO_RAW: [u8; 7] = [0x05, 0x10, b'h', b'e', b'l', b'l', b'o'];
    const WORLD_RAW: [u8; 7] = [0x05, 0x10, b'w', b'o', b'r', b'l', b'd'];

    #[test]
    fn reads_hand_built_xerial_and_raw_snappy() {
        let mut xerial = b"\x82SNAPPY\x00".to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]); // version 1, compatible 1
        xerial.extend_from_slice(&[0, 0, 0, 7]);
        xerial.extend_from_slice(&HELLO_RAW);
        xerial.extend_from_slice(&[0, 0, 0, 7]);
        xerial.extend_from_slice(&WORLD_RAW);
        assert_eq!(
            decompress(Compression::Snappy, &xerial, 10).unwrap(),
            b"helloworld"
        );
        assert!(decompress(Compression::Snappy, &xerial, 9).is_err());
        assert_eq!(
            decompress(Compression::Snappy, &HELLO_RAW, 5).unwrap(),
            b"hello"
        );
        // A chunk length running past the end is corruption, not a short read.
        let mut bad = xerial[..xerial.len() - 1].to_vec();
        bad[27] = 0xFF;
        assert!(decompress(Compression::Snappy, &bad, 100).is_err());
    }

    #[test]
    fn writes_xerial_framing_that_readers_recognise() {
        let c = compressed(Compression::Snappy, b"hello");
        assert_eq!(&c[..16], b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01");
        let len = u32::from_be_bytes(c[16..20].try_into().unwrap()) as usize;
        assert_eq!(c.len(), 20 + len);
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&c[20..]).unwrap(),
            b"hello"
        );
        // Empty input still gets one (empty) chunk: librdkafka needs more than 20 bytes to
        // recognise the framing.
        let empty = compressed(Compression::Snappy, b"");
        assert!(empty.len() > 20, "{empty:?}");
        // Large input is split in 32 KiB chunks, as snappy-java does.
        let big = compressed(Compression::Snappy, &random_bytes(100_000, 1));
        let chunks: Vec<_> = XerialChunks { rest: &big[16..] }
            .map(Result::unwrap)
            .collect();
        assert_eq!(chunks.len(), 4);
    }

    #[test]
    fn lz4_frames_carry_kafka_compatible_settings() {
        // Magic, FLG 0x60 (version 1, independent blocks, no checksums, no content size),
        // BD 0x40 (64 KiB blocks) and the header checksum of those two bytes.
        let c = compressed(Compression::Lz4, b"hello");
        assert_eq!(&c[..7], &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82]);
        assert_eq!(&c[c.len() - 4..], &[0, 0, 0, 0]); // end mark, no content checksum
    }

    #[test]
    fn lz4_frames_we_write_decode_with_another_reader() {
        use std::io::Read as _;
        // Compressible and random input across block boundaries: compressed blocks, stored
        // (incompressible) blocks, a short last block, and an empty frame.
        let mut mixed = compressible(150_000);
        mixed.extend(random_bytes(70_000, 9));
        for input in [mixed, random_bytes(LZ4_WINDOW, 3), Vec::new()] {
            let c = compressed(Compression::Lz4, &input);
            let mut back = Vec::new();
            lz4_flex::frame::FrameDecoder::new(&c[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == input, "lz4_flex reads back {} bytes", input.len());
            assert!(c.len() <= 11 + input.len() + input.len().div_ceil(LZ4_WINDOW) * 4);
        }
    }

    #[test]
    fn xxh32_matches_reference_values() {
        assert_eq!(xxh32_short(b""), 0x02CC_5D05);
        assert_eq!(xxh32_short(b"a"), 0x550D_7456);
        assert_eq!(xxh32_short(b"abc"), 0x32D1_53FF);
    }

    #[test]
    fn lz4_reads_frames_other_writers_produce() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let input = compressible(700_000);
        let variants = [
            FrameInfo::new().block_mode(BlockMode::Linked),
            FrameInfo::new().block_size(BlockSize::Max4MB),
            FrameInfo::new()
                .block_size(BlockSize::Max256KB)
                .block_checksums(true)
                .content_checksum(true)
                .content_size(Some(input.len() as u64)),
        ];
        for info in variants {
            let mut enc = FrameEncoder::with_frame_info(info.clone(), Vec::new());
            enc.write_all(&input).unwrap();
            let frame = enc.finish().unwrap();
            let out = decompress(Compression::Lz4, &frame, input.len()).unwrap();
            assert!(out == input, "{info:?}");
            assert!(decompress(Compression::Lz4, &frame, input.len() - 1).is_err());
        }
        // Two frames back to back decode as their concatenation.
        let mut two = compressed(Compression::Lz4, b"abc");
        two.extend(compressed(Compression::Lz4, b"def"));
        assert_eq!(decompress(Compression::Lz4, &two, 6).unwrap(), b"abcdef");
        // A wrong header checksum is rejected.
        let mut bad = compressed(Compression::Lz4, b"abc");
        bad[6] ^= 1;
        assert!(decompress(Compression::Lz4, &bad, 100).is_err());
    }

    #[test]
    fn gzip_and_zstd_read_concatenated_streams() {
        for codec in [Compression::Gzip, Compression::Zstd] {
            let mut two = compressed(codec, b"abc");
            two.extend(compressed(codec, b"def"));
            assert_eq!(decompress(codec, &two, 6).unwrap(), b"abcdef", "{codec:?}");
            assert!(decompress(codec, &two, 5).is_err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_input_round_trips(input in proptest::collection::vec(any::<u8>(), 0..5000),
                                 codec in 0..5usize) {
            let codec = CODECS[codec];
            let c = compressed(codec, &input);
            prop_assert_eq!(decompress(codec, &c, input.len()).unwrap(), input);
        }

        #[test]
        fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..2000),
                                codec in 0..5usize) {
            let _ = decompress(CODECS[codec], &input, 1 << 16);
        }

        #[test]
        fn corrupted_streams_never_panic(seed in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                                         codec in 1..5usize) {
            let codec = CODECS[codec];
            let mut input = compressible(3000);
            input.extend(random_bytes(500, seed | 1));
            let mut c = compressed(codec, &input);
            for (at, byte) in flips {
                let i = at % c.len();
                c[i] ^= byte;
            }
            let _ = decompress(codec, &c, 1 << 16);
        }
    }
}
