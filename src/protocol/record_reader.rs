//! One record of a batch's records section, read with every length checked against the
//! record's own bounds: the decoder's inner loop, shared by the consumer's check pass and its
//! cursor (`records.rs`). Never panics on any input; errors are plain strings that the batch
//! completes with its offset.

use bytes::Bytes;

use super::{DecodedRecord, Header};

/// A cursor over a records section. Errors are plain strings; the caller adds the batch's
/// offset and turns them into protocol errors.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a Bytes,
    pub(super) pos: usize,
}

type ReadResult<T> = std::result::Result<T, String>;

/// Where one record's parts are in its section (every length checked), from
/// [`Reader::fields`].
pub(super) struct Fields {
    pub(super) timestamp_delta: i64,
    pub(super) offset_delta: i32,
    pub(super) key: Option<std::ops::Range<usize>>,
    pub(super) value: Option<std::ops::Range<usize>>,
    pub(super) header_count: usize,
    /// Where the first header starts.
    pub(super) headers_at: usize,
    pub(super) end: usize,
}

impl Reader<'_> {
    /// Checks the next record and moves past it, noting where its parts are.
    #[inline]
    pub(super) fn fields(&mut self) -> ReadResult<Fields> {
        let length = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(length)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("record length {length} exceeds the batch"))?;
        // Parse within the record's own bounds so a bad inner length cannot read into the
        // next record.
        let mut inner = Reader {
            buf: self.buf,
            pos: start,
        };
        let limit = end;
        inner.u8(limit)?; // attributes: unused
        let timestamp_delta = inner.varlong_within(limit)?;
        let offset_delta = inner.varint_within(limit)?;
        let key = inner.field_range(limit)?;
        let value = inner.field_range(limit)?;
        let header_count = inner.varint_within(limit)?;
        if header_count < 0 {
            return Err(format!("negative header count {header_count}"));
        }
        let headers_at = inner.pos;
        for _ in 0..header_count {
            inner
                .field_range(limit)?
                .ok_or_else(|| "header with a null key".to_string())?;
            inner.field_range(limit)?;
        }
        if inner.pos != end {
            return Err(format!(
                "record declared {length} bytes but its fields took {}",
                inner.pos - start
            ));
        }
        self.pos = end;
        Ok(Fields {
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count: header_count as usize,
            headers_at,
            end,
        })
    }

    pub(super) fn record(
        &mut self,
        base_offset: i64,
        base_timestamp: i64,
    ) -> ReadResult<DecodedRecord> {
        let f = self.fields()?;
        let mut headers = Vec::with_capacity(f.header_count.min((f.end - f.headers_at) / 2));
        let mut inner = Reader {
            buf: self.buf,
            pos: f.headers_at,
        };
        for _ in 0..f.header_count {
            let key = inner
                .field(f.end)?
                .ok_or_else(|| "header with a null key".to_string())?;
            let value = inner.field(f.end)?;
            // Java decodes header keys leniently (malformed UTF-8 becomes U+FFFD); a stricter
            // consumer would be stuck on a record every other client reads.
            let key = String::from_utf8_lossy(&key).into_owned();
            headers.push(Header { key, value });
        }
        Ok(DecodedRecord {
            offset: base_offset.wrapping_add(i64::from(f.offset_delta)),
            timestamp: base_timestamp.wrapping_add(f.timestamp_delta),
            key: f.key.map(|r| self.buf.slice(r)),
            value: f.value.map(|r| self.buf.slice(r)),
            headers,
        })
    }

    #[inline]
    pub(super) fn u8(&mut self, limit: usize) -> ReadResult<u8> {
        if self.pos >= limit {
            return Err("record truncated".into());
        }
        self.pos += 1;
        Ok(self.buf[self.pos - 1])
    }

    /// A nullable length-prefixed field, sliced (not copied) out of the buffer.
    pub(super) fn field(&mut self, limit: usize) -> ReadResult<Option<Bytes>> {
        Ok(self.field_range(limit)?.map(|r| self.buf.slice(r)))
    }

    /// Where a nullable length-prefixed field's bytes are.
    #[inline]
    pub(super) fn field_range(
        &mut self,
        limit: usize,
    ) -> ReadResult<Option<std::ops::Range<usize>>> {
        let len = self.varint_within(limit)?;
        if len < 0 {
            return Ok(None);
        }
        let start = self.pos;
        let end = start
            .checked_add(len as usize)
            .filter(|&e| e <= limit)
            .ok_or_else(|| format!("field length {len} exceeds its record"))?;
        self.pos = end;
        Ok(Some(start..end))
    }

    #[inline]
    pub(super) fn varint(&mut self) -> ReadResult<i32> {
        self.varint_within(self.buf.len())
    }

    #[inline(always)]
    pub(super) fn varint_within(&mut self, limit: usize) -> ReadResult<i32> {
        let v = self.uvarint(limit, 5)?;
        let v = u32::try_from(v).map_err(|_| "varint out of range".to_string())?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    #[inline]
    pub(super) fn varlong_within(&mut self, limit: usize) -> ReadResult<i64> {
        let v = self.uvarint(limit, 10)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// Base-128 with at most `max_bytes` bytes, as the Java client enforces.
    #[inline(always)]
    pub(super) fn uvarint(&mut self, limit: usize, max_bytes: u32) -> ReadResult<u64> {
        // Fast path, inlined: most of a record's varints (attributes-adjacent deltas, key and
        // value lengths below 64, header counts) fit one byte, nearly all the rest two.
        if self.pos < limit {
            let b = self.buf[self.pos];
            if b & 0x80 == 0 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
            // Two bytes, also inlined: a 100-byte record's length and value length, and the
            // offset and timestamp deltas past the first 64 records or milliseconds of a batch.
            if self.pos + 1 < limit {
                let b1 = self.buf[self.pos + 1];
                if b1 & 0x80 == 0 {
                    self.pos += 2;
                    return Ok(u64::from(b & 0x7F) | (u64::from(b1) << 7));
                }
            }
        }
        self.uvarint_long(limit, max_bytes)
    }

    #[inline(never)]
    fn uvarint_long(&mut self, limit: usize, max_bytes: u32) -> ReadResult<u64> {
        let mut v = 0u64;
        for i in 0..max_bytes {
            let b = self.u8(limit)?;
            v |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint longer than {max_bytes} bytes"))
    }
}
