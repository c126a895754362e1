//! Reading a Fetch response off the socket with every partition's record set in a buffer of
//! its own (issue 16, consumer memory).
//!
//! A Fetch response is mostly record sets: up to `max.partition.fetch.bytes` per partition,
//! tens of MB per response. Read as one frame, every record handed to the application is a
//! slice of that one buffer, so
//!
//! - the whole response stays in memory until the *last* of its partitions is drained, long
//!   after the other partitions' records (and budget) are gone;
//! - each response is one allocation of many MB. glibc serves the first from `mmap`, and
//!   freeing it raises its mmap threshold (up to 32 MiB) and trim threshold (twice that) to the
//!   freed size: from then on every response comes from a per-thread malloc arena, and each
//!   arena keeps up to twice a response size of freed memory resident. Measured on the
//!   100-partition case, that was 10–18 MiB of peak RSS (`docs/PERFORMANCE.md`).
//!
//! So the reader walks the response body as it arrives, along the wire layout the bounds
//! check uses (`bounds.rs`, `layouts.rs`): everything except the record sets is copied into a
//! small *skeleton* frame in which each record set is null, and each record set is read
//! straight from the socket into a right-sized buffer of its own (one copy, as before). The
//! skeleton is decoded by kafka-protocol as any response is, and the record sets are put back
//! into the decoded partitions, in wire order ([`attach`]). The largest allocation is now one
//! partition's record set, which is also the unit the application drains and frees.
//!
//! The walk is bounded like the bounds check: nothing is read past the frame's declared size,
//! and an array claiming more elements than the frame's remaining bytes could hold is refused
//! before any element is read.
//!
//! Record sets of 128 KiB or more are read into memory of their own outside the heap
//! (`set_memory.rs`: a mapping, recycled for the next set of its size): the heap's per-thread
//! arenas kept the high-water mark of every runtime worker's share resident.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::FetchResponse;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::bounds::{min_size, Ty};
use super::layouts::{root, LAYOUTS};
use super::set_memory::{SetMemory, IDLE};
use crate::error::{Error, Result};

/// A Fetch response read by [`read_body`]: the skeleton frame (from the correlation id on,
/// record sets null) and the record sets in wire order (`None` where the wire had null).
pub(crate) struct SplitFetch {
    pub(crate) skeleton: Bytes,
    pub(crate) record_sets: Vec<Option<Bytes>>,
}

/// Reads the rest of a Fetch response frame whose size and correlation id have been read:
/// `left` bytes, the response header (at `header_version`) then the body at `version`.
pub(crate) async fn read_body<R: AsyncRead + Unpin + Send>(
    input: &mut R,
    correlation_id: [u8; 4],
    left: usize,
    header_version: i16,
    version: i16,
) -> Result<SplitFetch> {
    let layout = root(kafka_protocol::messages::ApiKey::Fetch)
        .ok_or_else(|| Error::protocol("no wire layout for Fetch responses"))?;
    // The skeleton is the frame without its record sets: a few dozen bytes per partition.
    let mut skeleton = BytesMut::with_capacity(left.min(4096) + 4);
    skeleton.put_slice(&correlation_id);
    let mut walk = Walk {
        input,
        left,
        skeleton,
        record_sets: Vec::new(),
    };
    if header_version >= 1 {
        walk.tagged_section(None, version).await?;
    }
    walk.layout(layout, version).await?;
    // Bytes past the body (none from a broker) are kept, as the decoder would see them.
    let rest = walk.left;
    walk.copy(rest).await?;
    Ok(SplitFetch {
        skeleton: walk.skeleton.freeze(),
        record_sets: walk.record_sets,
    })
}

/// Puts the record sets read by [`read_body`] back into the decoded skeleton, partition by
/// partition in wire order (kafka-protocol decodes arrays in order).
pub(crate) fn attach(resp: &mut FetchResponse, record_sets: Vec<Option<Bytes>>) -> Result<()> {
    let partitions: usize = resp.responses.iter().map(|t| t.partitions.len()).sum();
    if partitions != record_sets.len() {
        return Err(Error::protocol(format!(
            "Fetch response: {partitions} partitions decoded, {} record sets read",
            record_sets.len()
        )));
    }
    let mut sets = record_sets.into_iter();
    for p in resp
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        p.records = sets.next().flatten();
    }
    Ok(())
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// The walk over one body: reads from `input`, never more than `left` bytes.
struct Walk<'r, R> {
    input: &'r mut R,
    /// Bytes of the frame not read yet.
    left: usize,
    skeleton: BytesMut,
    record_sets: Vec<Option<Bytes>>,
}

fn malformed(detail: impl std::fmt::Display) -> Error {
    Error::protocol(format!("malformed Fetch response: {detail}"))
}

fn eof(read: usize) -> Error {
    Error::Io(Arc::new(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("connection closed mid-frame (in a Fetch response, {read} bytes short)"),
    )))
}

fn within(v: i16, (lo, hi): (i16, i16)) -> bool {
    lo <= v && v <= hi
}

impl<R: AsyncRead + Unpin + Send> Walk<'_, R> {
    fn take_left(&mut self, n: usize) -> Result<()> {
        if n > self.left {
            return Err(malformed("the body ends inside a field"));
        }
        self.left -= n;
        Ok(())
    }

    /// Reads `n` bytes of the frame into the skeleton.
    async fn copy(&mut self, n: usize) -> Result<()> {
        self.take_left(n)?;
        let start = self.skeleton.len();
        self.skeleton.resize(start + n, 0);
        if let Err(e) = self.input.read_exact(&mut self.skeleton[start..]).await {
            return Err(match e.kind() {
                std::io::ErrorKind::UnexpectedEof => eof(n),
                _ => e.into(),
            });
        }
        Ok(())
    }

    /// Reads `N` bytes into the skeleton and returns them.
    async fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.copy(N).await?;
        let mut out = [0; N];
        out.copy_from_slice(&self.skeleton[self.skeleton.len() - N..]);
        Ok(out)
    }

    /// Reads `N` bytes without copying them into the skeleton (a record set's length).
    async fn array_aside<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take_left(N)?;
        let mut out = [0; N];
        if let Err(e) = self.input.read_exact(&mut out).await {
            return Err(match e.kind() {
                std::io::ErrorKind::UnexpectedEof => eof(N),
                _ => e.into(),
            });
        }
        Ok(out)
    }

    /// kafka-protocol's unsigned varint (at most 5 bytes, bits past 32 dropped), copied into
    /// the skeleton unless `aside`.
    async fn uvarint(&mut self, aside: bool) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = if aside {
                self.array_aside::<1>().await?
            } else {
                self.array::<1>().await?
            };
            value |= u32::from(b & 0x7f).wrapping_shl(i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A record set of `len` bytes (`None`: null on the wire): read into its own buffer, and a
    /// null written into the skeleton in its place.
    async fn record_set(&mut self, len: Option<usize>, compact: bool) -> Result<()> {
        if compact {
            self.skeleton.put_u8(0);
        } else {
            self.skeleton.put_i32(-1);
        }
        let Some(len) = len else {
            self.record_sets.push(None);
            return Ok(());
        };
        self.take_left(len)?;
        let set = match SetMemory::new(len, &IDLE) {
            Some(mut memory) => {
                self.fill(memory.bytes_mut()).await?;
                memory.freeze()
            }
            None => {
                let mut buf = BytesMut::with_capacity(len);
                let mut body = (&mut *self.input).take(len as u64);
                while buf.len() < len {
                    if body.read_buf(&mut buf).await? == 0 {
                        return Err(eof(len - buf.len()));
                    }
                }
                buf.freeze()
            }
        };
        self.record_sets.push(Some(set));
        Ok(())
    }

    /// Fills `buf` from the input: one copy, as for the heap buffer (tokio's `BufReader`
    /// passes reads at least its own size straight to the socket once it is empty).
    async fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.input.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(eof(buf.len() - filled));
            }
            filled += n;
        }
        Ok(())
    }

    /// The struct `LAYOUTS[i]`. Boxed: structs nest (a response holds topics, which hold
    /// partitions), and a recursive future needs a fixed size.
    fn layout(&mut self, i: usize, version: i16) -> Step<'_> {
        Box::pin(async move {
            let l = &LAYOUTS[i];
            if !within(version, l.versions) {
                return Err(malformed(format!(
                    "{} is not defined at v{version}",
                    l.name
                )));
            }
            for f in l.fields.iter().filter(|f| within(version, f.versions)) {
                self.value(f.ty, version, l.name).await?;
            }
            if version >= l.tagged_from {
                self.tagged_section(Some(i), version).await?;
            }
            Ok(())
        })
    }

    /// A tagged-field section: of the struct `LAYOUTS[i]`, or of the response header (`None`,
    /// no known tags). Known tags are walked (they may hold structs), unknown ones copied.
    async fn tagged_section(&mut self, owner: Option<usize>, version: i16) -> Result<()> {
        let n = self.uvarint(false).await?;
        // Each tagged field takes at least two bytes, so an absurd `n` ends with the frame.
        for _ in 0..n {
            let tag = self.uvarint(false).await?;
            let size = self.uvarint(false).await?;
            let known = owner.and_then(|i| {
                LAYOUTS[i]
                    .tagged
                    .iter()
                    .find(|t| t.tag == tag && within(version, t.versions))
            });
            match known {
                Some(t) => {
                    self.value(t.ty, version, LAYOUTS[owner.unwrap_or(0)].name)
                        .await?
                }
                None => self.copy(size as usize).await?,
            }
        }
        Ok(())
    }

    async fn value(&mut self, ty: Ty, version: i16, owner: &'static str) -> Result<()> {
        match ty {
            Ty::Fixed(n) => self.copy(usize::from(n)).await,
            Ty::Str => {
                let n = i16::from_be_bytes(self.array().await?);
                self.copy(n.max(0) as usize).await
            }
            Ty::CStr => {
                let n = self.uvarint(false).await?;
                self.copy(n.saturating_sub(1) as usize).await
            }
            // The only byte fields of a Fetch response are its record sets.
            Ty::Bytes => {
                let n = i32::from_be_bytes(self.array_aside().await?);
                self.record_set((n >= 0).then_some(n as usize), false).await
            }
            Ty::CBytes => {
                let n = self.uvarint(true).await?;
                let len = n.checked_sub(1).map(|n| n as usize);
                self.record_set(len, true).await
            }
            Ty::Arr(elem) => {
                let n = i32::from_be_bytes(self.array().await?);
                self.elements(n.max(0) as u64, *elem, version, owner).await
            }
            Ty::CArr(elem) => {
                let n = self.uvarint(false).await?;
                self.elements(u64::from(n.saturating_sub(1)), *elem, version, owner)
                    .await
            }
            Ty::Struct(i) => self.layout(i, version).await,
            Ty::OptStruct(i) => {
                let [present] = self.array().await?;
                if present == 1 {
                    self.layout(i, version).await
                } else {
                    Ok(())
                }
            }
        }
    }

    /// `count` elements of `elem`. Boxed: arrays nest (partitions within topics), and a
    /// recursive future needs a fixed size.
    fn elements(&mut self, count: u64, elem: Ty, version: i16, owner: &'static str) -> Step<'_> {
        Box::pin(async move {
            // As in the bounds check: refuse a count the rest of the frame cannot hold before
            // reading (or reserving for) any element.
            let need = count.saturating_mul(min_size(elem, version).max(1) as u64);
            if need > self.left as u64 {
                return Err(malformed(format!(
                    "an array in {owner} claims {count} elements with {} bytes left",
                    self.left
                )));
            }
            for _ in 0..count {
                self.value(elem, version, owner).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
#[path = "fetch_split_tests.rs"]
mod tests;
