//! Kafka record batches (message format v2, "magic 2"): the producer's encoder and the
//! consumer's decoder.
//!
//! Why not kafka-protocol's `records` module: the producer appends records to a batch one at a
//! time as `send` is called, and each record's bytes should be copied exactly once, into the
//! batch buffer that later goes on the wire. kafka-protocol's encoder wants every record up
//! front as owned structs and, with its compression features on, pulls in C codecs. The
//! consumer side wants records whose keys and values are `Bytes` slices of the fetched buffer,
//! not copies. So the format lives here (the analogue of librdkafka's
//! `rdkafka_msgset_writer.c` / `rdkafka_msgset_reader.c`), with codecs from `compression.rs`.
//!
//! Layout (all integers big-endian; "varint"/"varlong" are zigzag-encoded base-128):
//!
//! ```text
//! offset  field                   notes
//!  0      baseOffset        i64   0 from producers; the broker assigns offsets
//!  8      batchLength       i32   bytes after this field
//! 12      partitionLeaderEpoch i32
//! 16      magic             i8    2
//! 17      crc               u32   CRC-32C of everything from `attributes` to the end
//! 21      attributes        i16   bits 0-2 codec, 3 LogAppendTime, 4 transactional, 5 control
//! 23      lastOffsetDelta   i32
//! 27      baseTimestamp     i64
//! 35      maxTimestamp      i64
//! 43      producerId        i64
//! 51      producerEpoch     i16
//! 53      baseSequence      i32
//! 57      recordCount       i32
//! 61      records                 compressed as one blob when a codec is set
//! ```
//!
//! Each record: `length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//! keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
//! headerCount varint, headers` where a header is `keyLength varint, key,
//! valueLength varint (-1 = null), value`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::compression::{self, Compression, Compressor};
use crate::error::{Error, Result};
use crate::record::Header;
use reader::Reader;

/// Size of the batch header that precedes the records.
pub(crate) const RECORD_BATCH_OVERHEAD: usize = 61;

const MAGIC: i8 = 2;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const PRODUCER_ID_AT: usize = 43;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// `NO_TIMESTAMP` in the Java client: the base timestamp of a batch without records.
const NO_TIMESTAMP: i64 = -1;

// ---------------------------------------------------------------------------------------------
// Encoder

/// One batch being filled by the producer: the records section grows in place behind a
/// reserved header, which `finish` fills in.
///
/// Plain owned state, no interior locking: its owner (the accumulator's per-partition slot)
/// serialises access. `append` copies each record's bytes once, straight into the buffer, and
/// allocates only when the buffer grows.
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    /// The 61 header bytes (zero until `finish`) followed by the uncompressed records.
    buf: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// An empty batch whose buffer can hold `capacity` bytes (header included) before growing.
    pub(crate) fn new(capacity: usize) -> BatchBuilder {
        let mut buf = BytesMut::with_capacity(capacity.max(RECORD_BATCH_OVERHEAD));
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        BatchBuilder {
            buf,
            count: 0,
            base_timestamp: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
        }
    }

    /// Exact number of bytes [`append`](Self::append) would add for this record now: the
    /// offset delta is the current count, and the timestamp delta is taken against the first
    /// record's timestamp (for the first record, against itself).
    // Tests only: the producer measures a record once (`fields_len`, `record_len`).
    #[cfg(test)]
    pub(crate) fn encoded_len(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let fields = fields_len(key.map(<[u8]>::len), value.map(<[u8]>::len), headers);
        self.record_len(timestamp, fields).total()
    }

    /// An upper bound of one record's encoded size in any batch: the largest possible
    /// timestamp and offset deltas and length prefix. For "can this record ever fit" checks
    /// before a batch exists.
    // Tests only: the producer uses `fields_len` and `max_record_len_of`.
    #[cfg(test)]
    pub(crate) fn max_record_len(
        key_len: Option<usize>,
        value_len: Option<usize>,
        headers: &[Header],
    ) -> usize {
        max_record_len_of(fields_len(key_len, value_len, headers))
    }

    /// The size this record would take in this batch now, from its [`fields_len`]: computed
    /// once per record by the producer, used both for the "does it still fit" check and by
    /// [`append_sized`](Self::append_sized). Valid until the batch changes.
    pub(crate) fn record_len(&self, timestamp: i64, fields_len: usize) -> RecordLen {
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let body = 1 // attributes
            + varlong_len(timestamp.wrapping_sub(base))
            + varint_len(self.count)
            + fields_len;
        RecordLen {
            body,
            count: self.count,
        }
    }

    /// Appends one record. Callers check sizes first (`encoded_len`, `max_record_len`);
    /// lengths beyond `i32::MAX` cannot be represented in the format.
    // Tests only: the producer measures first and calls `append_sized`.
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        let fields = fields_len(key.map(<[u8]>::len), value.map(<[u8]>::len), headers);
        let len = self.record_len(timestamp, fields);
        self.append_sized(len, timestamp, key, value, headers);
    }

    /// [`append`](Self::append) with the size [`record_len`](Self::record_len) computed for
    /// this record and this batch state, so it is not computed twice.
    ///
    /// The fixed fields before the key and value are assembled on the stack and written in one
    /// piece: a record takes two or three writes into the buffer (the fields before the value,
    /// the value, and for keyed records the key separately) instead of one per field.
    pub(crate) fn append_sized(
        &mut self,
        len: RecordLen,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        debug_assert_eq!(len.count, self.count, "RecordLen of another batch state");
        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        let total = len.total();
        let before = self.buf.len();
        self.buf.reserve(total);
        let mut prefix = Scratch::new();
        prefix.varint(len.body as i32);
        prefix.byte(0); // record attributes: unused by Kafka
        prefix.varlong(timestamp.wrapping_sub(self.base_timestamp));
        prefix.varint(self.count);
        match key {
            None => prefix.varint(-1),
            Some(k) => {
                prefix.varint(k.len() as i32);
                self.buf.extend_from_slice(prefix.bytes());
                self.buf.extend_from_slice(k);
                prefix = Scratch::new();
            }
        }
        match value {
            None => prefix.varint(-1),
            Some(v) => {
                prefix.varint(v.len() as i32);
                self.buf.extend_from_slice(prefix.bytes());
                self.buf.extend_from_slice(v);
                prefix = Scratch::new();
            }
        }
        if headers.is_empty() {
            prefix.byte(0); // header count 0, a varint of one byte
            self.buf.extend_from_slice(prefix.bytes());
        } else {
            self.buf.extend_from_slice(prefix.bytes());
            put_varint(&mut self.buf, headers.len() as i32);
            for h in headers {
                put_field(&mut self.buf, Some(h.key.as_bytes()));
                put_field(&mut self.buf, h.value.as_deref());
            }
        }
        debug_assert_eq!(
            self.buf.len() - before,
            total,
            "record_len disagrees with append"
        );
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Bytes so far, including the header; the records are counted uncompressed.
    pub(crate) fn size(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn record_count(&self) -> i32 {
        self.count
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first record's timestamp (-1 while the batch is empty).
    #[cfg(test)]
    pub(crate) fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// Finishes the batch: compresses the records section (only that, as Kafka does), fills
    /// in the header for a non-idempotent, non-transactional producer (baseOffset 0,
    /// partitionLeaderEpoch, producerId, producerEpoch and baseSequence all -1) and the CRC.
    /// [`stamp_producer`] rewrites the producer fields later if needed.
    pub(crate) fn finish(self, compression: Compression, level: Option<i32>) -> Result<BytesMut> {
        if compression == Compression::None {
            let mut buf = self.finish_without_crc()?;
            write_crc(&mut buf);
            return Ok(buf);
        }
        self.finish_using(compression, level, &mut Compressor::default())
    }

    /// [`finish`](Self::finish) without compression and without the CRC, for a producer that
    /// writes the CRC once its producer fields are final ([`stamp_producer`], else
    /// [`write_crc`]): an idempotent producer's batch was otherwise checksummed twice, 15 %
    /// of the CPU per 1 KiB record at acks=all.
    pub(crate) fn finish_without_crc(self) -> Result<BytesMut> {
        let (count, first, max) = (self.count, self.base_timestamp, self.max_timestamp);
        let mut buf = self.buf;
        write_header(&mut buf, Compression::None, count, first, max)?;
        Ok(buf)
    }

    /// [`finish`](Self::finish) through a compressor kept by the calling thread: the batch
    /// gets a buffer of exactly its compressed size, the compressor's worst-case output
    /// buffer is reused (`producer/seal.rs` says why).
    pub(crate) fn finish_using(
        self,
        compression: Compression,
        level: Option<i32>,
        compressor: &mut Compressor,
    ) -> Result<BytesMut> {
        let records =
            compressor.compress(compression, level, &self.buf[RECORD_BATCH_OVERHEAD..])?;
        let mut buf = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + records.len());
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        buf.extend_from_slice(records);
        let (count, first, max) = (self.count, self.base_timestamp, self.max_timestamp);
        write_header(&mut buf, compression, count, first, max)?;
        write_crc(&mut buf);
        Ok(buf)
    }
}

/// Fills in the header of the encoded batch `buf` (records section written) for a
/// non-idempotent, non-transactional producer, all but the CRC ([`write_crc`]).
fn write_header(
    buf: &mut [u8],
    compression: Compression,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
) -> Result<()> {
    let batch_length = buf.len() - 12;
    if batch_length > i32::MAX as usize {
        return Err(Error::InvalidInput(
            format!("record batch of {} bytes is too large", buf.len()).into(),
        ));
    }
    let header = &mut buf[..RECORD_BATCH_OVERHEAD];
    header[0..8].copy_from_slice(&0i64.to_be_bytes());
    header[8..12].copy_from_slice(&(batch_length as i32).to_be_bytes());
    header[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    header[16] = MAGIC as u8;
    header[21..23].copy_from_slice(&compression.attribute_bits().to_be_bytes());
    header[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    header[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
    header[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    header[57..61].copy_from_slice(&count.to_be_bytes());
    set_producer(buf, -1, -1, -1, false);
    Ok(())
}

/// Computes an encoded batch's CRC (over everything from its attributes on) into its header.
pub(crate) fn write_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites producerId, producerEpoch, baseSequence and the transactional bit of an encoded
/// batch in place and recomputes its CRC: the producer learns its id and sequence numbers
/// only when the batch is first sent, and again after an idempotent epoch bump.
///
/// Panics if `batch` is shorter than a batch header (a bug in the caller: batches come from
/// [`BatchBuilder::finish`]).
pub(crate) fn stamp_producer(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
) {
    set_producer(
        batch,
        producer_id,
        producer_epoch,
        base_sequence,
        transactional,
    );
    write_crc(batch);
}

/// [`stamp_producer`] without the CRC.
fn set_producer(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
) {
    assert!(batch.len() >= RECORD_BATCH_OVERHEAD, "not a record batch");
    let mut attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
    if transactional {
        attributes |= TRANSACTIONAL_BIT;
    } else {
        attributes &= !TRANSACTIONAL_BIT;
    }
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
}

/// One record's encoded size in a given batch state, from [`BatchBuilder::record_len`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordLen {
    /// Everything after the record's length prefix.
    body: usize,
    /// The batch's record count it was computed for (the offset delta), checked in debug
    /// builds so a size is never used for another record slot.
    count: i32,
}

impl RecordLen {
    /// Bytes the record adds to the batch, its length prefix included.
    pub(crate) fn total(self) -> usize {
        varint_len(self.body as i32) + self.body
    }
}

/// The part of a record's encoded size that does not depend on its batch: key, value and
/// headers with their length prefixes.
#[inline]
pub(crate) fn fields_len(
    key_len: Option<usize>,
    value_len: Option<usize>,
    headers: &[Header],
) -> usize {
    field_len(key_len) + field_len(value_len) + headers_len(headers)
}

/// [`BatchBuilder::max_record_len`] from a record's [`fields_len`].
pub(crate) fn max_record_len_of(fields_len: usize) -> usize {
    // length varint (5) + attributes (1) + timestampDelta varlong (10) + offsetDelta (5)
    5 + 1 + 10 + 5 + fields_len
}

/// A record's fixed fields assembled on the stack before one copy into the batch. The most
/// it holds at once: length (5), attributes (1), timestamp delta (10), offset delta (5), a
/// null key (1) and the value's length (5), 27 bytes.
struct Scratch {
    buf: [u8; 32],
    len: usize,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            buf: [0; 32],
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn varint(&mut self, v: i32) {
        self.uvarint(u64::from(zigzag32(v)));
    }

    fn varlong(&mut self, v: i64) {
        self.uvarint(zigzag64(v));
    }

    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }
}

/// Encoded size of a nullable length-prefixed field.
fn field_len(len: Option<usize>) -> usize {
    match len {
        None => 1,
        Some(n) => varint_len(n as i32) + n,
    }
}

fn headers_len(headers: &[Header]) -> usize {
    if headers.is_empty() {
        return 1; // the count, 0
    }
    varint_len(headers.len() as i32)
        + headers
            .iter()
            .map(|h| field_len(Some(h.key.len())) + field_len(h.value.as_ref().map(Bytes::len)))
            .sum::<usize>()
}

fn put_field(buf: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.put_slice(b);
        }
    }
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn varint_len(v: i32) -> usize {
    uvarint_len(u64::from(zigzag32(v)))
}

fn varlong_len(v: i64) -> usize {
    uvarint_len(zigzag64(v))
}

fn uvarint_len(v: u64) -> usize {
    // 7 payload bits per byte; zero still takes one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(buf: &mut BytesMut, v: i32) {
    put_uvarint(buf, u64::from(zigzag32(v)));
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    // Assemble on the stack and copy once: one bounds check instead of one per byte.
    let mut tmp = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    buf.put_slice(&tmp[..=n]);
}

// ---------------------------------------------------------------------------------------------
// Decoder

/// A batch's header fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub compression: Compression,
    pub log_append_time: bool,
    pub transactional: bool,
    pub control: bool,
}

/// One decoded batch (its header fields through `Deref`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodedBatch {
    pub header: BatchHeader,
    pub records: Vec<DecodedRecord>,
}

impl std::ops::Deref for DecodedBatch {
    type Target = BatchHeader;

    fn deref(&self) -> &BatchHeader {
        &self.header
    }
}

/// One decoded record; key, value and header values share the fetched (or decompressed)
/// buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// One batch with its header read, its CRC checked and its records section at hand
/// (decompressed), the records themselves not decoded yet: the consumer checks them with
/// [`BatchView::check`] when they arrive and decodes each only as the application takes it
/// ([`BatchView::cursor`]), so buffered records cost their bytes and nothing more. A
/// compressed batch may instead wait as fetched ([`BatchView::compressed_cursor`]) and be
/// decompressed again when the application reaches it.
#[derive(Debug, Clone)]
pub(crate) struct BatchView {
    pub header: BatchHeader,
    /// The record count the header declares (checked against the section by `check`).
    pub count: i32,
    /// The records section, decompressed.
    pub records: Bytes,
    /// A compressed batch's records section as fetched; `None` for an uncompressed one.
    pub fetched: Option<Bytes>,
}

impl std::ops::Deref for BatchView {
    type Target = BatchHeader;

    fn deref(&self) -> &BatchHeader {
        &self.header
    }
}

impl BatchView {
    /// Walks every record, checking it as [`decode`](Self::decode) would but building
    /// nothing, and returns how many have an offset at or after `from`.
    pub(crate) fn check(&self, from: i64) -> Result<usize> {
        let mut r = Reader {
            buf: &self.records,
            pos: 0,
        };
        let mut at_or_after = 0;
        for _ in 0..self.count {
            let f = r.fields().map_err(|e| self.error(e))?;
            if self.base_offset.wrapping_add(i64::from(f.offset_delta)) >= from {
                at_or_after += 1;
            }
        }
        self.check_end(r.pos)?;
        Ok(at_or_after)
    }

    /// Decodes every record.
    pub(crate) fn decode(self) -> Result<DecodedBatch> {
        let mut out =
            Vec::with_capacity((self.count as usize).min(self.records.len() / MIN_RECORD_LEN));
        let mut r = Reader {
            buf: &self.records,
            pos: 0,
        };
        for _ in 0..self.count {
            let mut record = r
                .record(self.base_offset, self.base_timestamp)
                .map_err(|e| self.error(e))?;
            if self.log_append_time {
                // The broker stamped the whole batch; per-record deltas are the producer's.
                record.timestamp = self.max_timestamp;
            }
            out.push(record);
        }
        self.check_end(r.pos)?;
        Ok(DecodedBatch {
            header: self.header,
            records: out,
        })
    }

    /// Whether this control batch holds an ABORT marker: its record's key is `version: i16,
    /// type: i16` with type 0 for abort and 1 for commit.
    pub(crate) fn is_abort_marker(&self) -> bool {
        self.cursor()
            .next()
            .and_then(|r| r.key)
            .is_some_and(|k| k.len() >= 4 && i16::from_be_bytes([k[2], k[3]]) == 0)
    }

    /// The records one at a time. Only for a view whose [`check`](Self::check) passed: a
    /// record that does not decode ends the cursor.
    pub(crate) fn cursor(&self) -> RecordCursor {
        self.cursor_holding(self.records.clone(), None)
    }

    /// [`cursor`](Self::cursor), holding a compressed batch's section as fetched, not the
    /// decompressed one, until its first record is taken (then decompressed again).
    pub(crate) fn compressed_cursor(&self) -> RecordCursor {
        match &self.fetched {
            Some(fetched) => self.cursor_holding(fetched.clone(), Some(self.compression)),
            None => self.cursor(),
        }
    }

    fn cursor_holding(&self, records: Bytes, compressed: Option<Compression>) -> RecordCursor {
        RecordCursor {
            records,
            compressed,
            decompressed_len: self.records.len(),
            pos: 0,
            left: self.count.max(0) as u32,
            base_offset: self.base_offset,
            base_timestamp: self.base_timestamp,
            timestamp: self.log_append_time.then_some(self.max_timestamp),
        }
    }

    fn error(&self, e: String) -> Error {
        Error::protocol(format!("record batch at offset {}: {e}", self.base_offset))
    }

    fn check_end(&self, pos: usize) -> Result<()> {
        if pos != self.records.len() {
            return Err(self.error(format!(
                "{} bytes after its {} records",
                self.records.len() - pos,
                self.count
            )));
        }
        Ok(())
    }
}

/// Decodes a checked batch's records in order (see [`BatchView::cursor`]).
#[derive(Debug)]
pub(crate) struct RecordCursor {
    /// The records section; while `compressed` is set, as fetched (compressed with it).
    records: Bytes,
    compressed: Option<Compression>,
    /// What the check found the section decompresses to: the exact output bound.
    decompressed_len: usize,
    pos: usize,
    left: u32,
    base_offset: i64,
    base_timestamp: i64,
    /// LogAppendTime: the broker's timestamp for every record.
    timestamp: Option<i64>,
}

impl RecordCursor {
    /// Bytes of batch data the cursor holds (fetched while compressed, then decompressed).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.records.len()
    }
}

impl Iterator for RecordCursor {
    type Item = DecodedRecord;

    fn next(&mut self) -> Option<DecodedRecord> {
        if self.left == 0 {
            return None;
        }
        if let Some(codec) = self.compressed.take() {
            // The same bytes and bound that passed the check: failing now is impossible
            // short of memory corruption, and is treated as an undecodable record.
            match compression::decompress(codec, &self.records, self.decompressed_len) {
                Ok(v) if v.len() == self.decompressed_len => self.records = Bytes::from(v),
                _ => {
                    self.left = 0;
                    self.records = Bytes::new();
                    return None;
                }
            }
        }
        let mut r = Reader {
            buf: &self.records,
            pos: self.pos,
        };
        match r.record(self.base_offset, self.base_timestamp) {
            Ok(mut record) => {
                self.left -= 1;
                self.pos = r.pos;
                if let Some(t) = self.timestamp {
                    record.timestamp = t;
                }
                if self.left == 0 {
                    // Its records hold their own slices: the cursor's is not needed now.
                    self.records = Bytes::new();
                }
                Some(record)
            }
            Err(_) => {
                self.left = 0;
                self.records = Bytes::new();
                None
            }
        }
    }
}

/// The smallest encoded record: length, attributes, timestamp delta, offset delta, null key,
/// null value, header count, one byte each. Bounds how many records a byte count can hold, so
/// a lying record count cannot make the decoder reserve memory the input does not back.
const MIN_RECORD_LEN: usize = 7;

/// Decodes every complete batch in `data`, a Fetch response's records field: [`Batches`],
/// collected (tests and the fuzz targets; the consumer iterates).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_batches(
    data: Bytes,
    check_crc: bool,
    max_decompressed: usize,
) -> Result<Vec<DecodedBatch>> {
    Batches::new(data, check_crc, max_decompressed).collect()
}

/// The complete batches in `data`, a Fetch response's records field, decoded one at a time:
/// a caller that stops early never decompresses the rest (the consumer stops once its budget
/// is spent, so a highly compressed response cannot expand past it).
///
/// A truncated batch at the end is ignored: brokers cut the last batch at the fetch size
/// limit, and the consumer refetches from its offset. With `check_crc`, each batch's CRC-32C
/// is verified (it must be switchable off: librdkafka's mock cluster writes control batches
/// with CRC 0). A compressed batch may expand to at most `max_decompressed` bytes. After an
/// error the iterator ends. [`next_view`](Self::next_view) gives the next batch undecoded.
///
/// Never panics on any input. Uncompressed keys, values and header values are slices of
/// `data`; compressed batches are decompressed once and sliced likewise.
pub(crate) struct Batches {
    data: Bytes,
    pos: usize,
    check_crc: bool,
    max_decompressed: usize,
    failed: bool,
}

impl Batches {
    /// Bytes of the complete batches taken so far (the consumer's byte metrics).
    pub(crate) fn consumed(&self) -> usize {
        self.pos
    }

    pub(crate) fn new(data: Bytes, check_crc: bool, max_decompressed: usize) -> Batches {
        Batches {
            data,
            pos: 0,
            check_crc,
            max_decompressed,
            failed: false,
        }
    }

    /// The next complete batch, its records not decoded (see [`BatchView`]).
    pub(crate) fn next_view(&mut self) -> Option<Result<BatchView>> {
        let (data, pos) = (&self.data, self.pos);
        // baseOffset (8) + batchLength (4) tell whether the next batch is complete.
        if self.failed || data.len() - pos < 12 {
            return None;
        }
        let batch_length = i32::from_be_bytes(be(&data[pos + 8..pos + 12]));
        let total = 12 + batch_length.max(0) as usize;
        if data.len() - pos < total {
            return None;
        }
        let batch = data.slice(pos..pos + total);
        self.pos += total;
        let result = if batch.len() > 16 && batch[16] as i8 != MAGIC {
            Err(Error::protocol(format!(
                "record batch at offset {} has magic {}; only magic 2 is supported",
                i64::from_be_bytes(be(&batch[..8])),
                batch[16] as i8
            )))
        } else if batch.len() < RECORD_BATCH_OVERHEAD {
            Err(Error::protocol(format!(
                "record batch length {batch_length} is shorter than its header"
            )))
        } else {
            open_batch(batch, self.check_crc, self.max_decompressed)
        };
        self.failed = result.is_err();
        Some(result)
    }
}

impl Iterator for Batches {
    type Item = Result<DecodedBatch>;

    fn next(&mut self) -> Option<Result<DecodedBatch>> {
        let result = self.next_view()?.and_then(BatchView::decode);
        self.failed = result.is_err();
        Some(result)
    }
}

/// Reads one complete batch's header (`batch` holds exactly its bytes, header included),
/// checks its CRC and decompresses its records section.
fn open_batch(batch: Bytes, check_crc: bool, max_decompressed: usize) -> Result<BatchView> {
    let h = &batch[..RECORD_BATCH_OVERHEAD];
    let base_offset = i64::from_be_bytes(be(&h[0..8]));
    let crc = u32::from_be_bytes(be(&h[17..21]));
    if check_crc {
        let actual = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        if actual != crc {
            return Err(Error::protocol(format!(
                "record batch at offset {base_offset} is corrupt: CRC-32C {actual:#010x}, \
                 header says {crc:#010x}"
            )));
        }
    }
    let attributes = i16::from_be_bytes(be(&h[21..23]));
    let compression = Compression::from_attributes(attributes)?;
    let count = i32::from_be_bytes(be(&h[57..61]));
    if count < 0 {
        return Err(Error::protocol(format!(
            "record batch at offset {base_offset} has negative record count {count}"
        )));
    }
    let section = batch.slice(RECORD_BATCH_OVERHEAD..);
    let (records, fetched) = match compression {
        Compression::None => (section, None),
        codec => (
            Bytes::from(compression::decompress(codec, &section, max_decompressed)?),
            Some(section),
        ),
    };
    Ok(BatchView {
        header: BatchHeader {
            base_offset,
            partition_leader_epoch: i32::from_be_bytes(be(&h[12..16])),
            last_offset_delta: i32::from_be_bytes(be(&h[23..27])),
            base_timestamp: i64::from_be_bytes(be(&h[27..35])),
            max_timestamp: i64::from_be_bytes(be(&h[35..43])),
            producer_id: i64::from_be_bytes(be(&h[43..51])),
            producer_epoch: i16::from_be_bytes(be(&h[51..53])),
            base_sequence: i32::from_be_bytes(be(&h[53..57])),
            compression,
            log_append_time: attributes & TIMESTAMP_TYPE_BIT != 0,
            transactional: attributes & TRANSACTIONAL_BIT != 0,
            control: attributes & CONTROL_BIT != 0,
        },
        count,
        records,
        fetched,
    })
}

/// A fixed-size array from a slice whose length the caller has already checked.
fn be<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

#[path = "record_reader.rs"]
mod reader;

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
