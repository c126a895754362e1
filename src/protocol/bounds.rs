//! A bounded pre-pass over every response body before kafka-protocol decodes it.
//!
//! kafka-protocol 0.18's array decoders call `Vec::with_capacity(n)` with whatever element
//! count the wire claims, before reading a single element. A 15-byte ApiVersions reply that
//! claims 2^32 entries makes the process ask for 137 GB and abort — no `Result`, no
//! `catch_unwind` can stop that. A broker cannot be trusted not to send such a frame (a bug, a
//! proxy speaking something else, a corrupted stream), so before the decode this module walks
//! the body along the response's wire layout (`layouts.rs`, extracted from kafka-protocol's
//! own decoders by `scripts/gen_wire_layouts.py`) and rejects the frame as soon as an array
//! claims more elements than the bytes left could hold, given the smallest size one element
//! can have on the wire.
//!
//! After the walk accepted a body, every allocation kafka-protocol makes for it is at most
//! `size_of::<element>() / min_wire_size(element)` times the bytes the array really occupies —
//! proportional to the frame, which `receive.message.max.bytes` already bounds.
//!
//! The walk reads exactly what the decoder reads, in the same order, so on any body the
//! decoder accepts it accepts too (checked by the tests below against kafka-protocol's own
//! decoder on bodies generated from the layouts); where the decoder would fail, the walk may
//! fail first, which changes only the error's text. It allocates nothing and is linear in the
//! body's length: strings and record sets are skipped, not read.

use kafka_protocol::messages::ApiKey;

use super::layouts::{root, LAYOUTS};

/// A wire type, as kafka-protocol reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    /// A fixed number of bytes (integers, booleans, UUIDs, floats).
    Fixed(u8),
    /// `i16` length, then that many bytes; -1 is null.
    Str,
    /// Unsigned varint length + 1, then the bytes; 0 is null.
    CStr,
    /// `i32` length, then that many bytes; -1 is null.
    Bytes,
    /// Unsigned varint length + 1, then the bytes; 0 is null.
    CBytes,
    /// `i32` count, then the elements; -1 is null.
    Arr(&'static Ty),
    /// Unsigned varint count + 1, then the elements; 0 is null.
    CArr(&'static Ty),
    /// The layout `LAYOUTS[i]`.
    Struct(usize),
    /// An `i8` presence flag, then `LAYOUTS[i]` when the flag is 1 (kafka-protocol's
    /// `OptionStruct`, e.g. KIP-848's assignment in a heartbeat response).
    OptStruct(usize),
}

/// A field read at the versions in `versions` (inclusive).
#[derive(Debug)]
pub(super) struct Field {
    pub(super) versions: (i16, i16),
    pub(super) ty: Ty,
}

/// A tagged field the decoder knows at `versions`: it reads `ty` (ignoring the size prefix)
/// instead of skipping `size` bytes.
#[derive(Debug)]
pub(super) struct Tagged {
    pub(super) tag: u32,
    pub(super) versions: (i16, i16),
    pub(super) ty: Ty,
}

/// One message or nested struct.
#[derive(Debug)]
pub(super) struct Layout {
    pub(super) name: &'static str,
    /// The versions the decoder accepts for this struct.
    pub(super) versions: (i16, i16),
    pub(super) fields: &'static [Field],
    /// From this version on a tagged-field section follows the fields.
    pub(super) tagged_from: i16,
    pub(super) tagged: &'static [Tagged],
}

fn within(v: i16, (lo, hi): (i16, i16)) -> bool {
    lo <= v && v <= hi
}

/// Why a body was rejected before decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// An array claims more elements than the rest of the body can hold.
    OverClaim {
        /// The struct holding the array.
        within: &'static str,
        count: u64,
        remaining: usize,
    },
    /// The body ends inside a field (the decoder would fail here too).
    Truncated,
    /// The version is outside what the layout (and the decoder) accepts.
    Version(&'static str),
    /// No layout for this API: `scripts/gen_wire_layouts.py` must list it.
    NoLayout,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::OverClaim {
                within,
                count,
                remaining,
            } => write!(
                f,
                "an array in {within} claims {count} elements with {remaining} bytes left"
            ),
            Reject::Truncated => f.write_str("the body ends inside a field"),
            Reject::Version(name) => write!(f, "{name} is not defined at this version"),
            Reject::NoLayout => f.write_str("no wire layout for this response"),
        }
    }
}

/// Walks `body` (the response after its header) as the decoder of `api` at `version` would.
/// `Ok` means the decoder will allocate in proportion to the body at most.
pub(crate) fn check(api: ApiKey, version: i16, body: &[u8]) -> Result<(), Reject> {
    walked_len(api, version, body).map(drop)
}

/// How many bytes of `body` the decoder of `api` reads (the tests compare it with what
/// kafka-protocol's decoder consumed).
pub(super) fn walked_len(api: ApiKey, version: i16, body: &[u8]) -> Result<usize, Reject> {
    let mut walk = Walk { buf: body, pos: 0 };
    walk.layout(root(api).ok_or(Reject::NoLayout)?, version)?;
    Ok(walk.pos)
}

/// The fewest bytes a value of `ty` occupies on the wire at `version`.
pub(super) fn min_size(ty: Ty, version: i16) -> usize {
    match ty {
        Ty::Fixed(n) => n as usize,
        Ty::Str => 2,
        Ty::Bytes | Ty::Arr(_) => 4,
        Ty::CStr | Ty::CBytes | Ty::CArr(_) | Ty::OptStruct(_) => 1,
        Ty::Struct(i) => {
            let l = &LAYOUTS[i];
            let fields: usize = l
                .fields
                .iter()
                .filter(|f| within(version, f.versions))
                .map(|f| min_size(f.ty, version))
                .sum();
            fields + usize::from(version >= l.tagged_from)
        }
    }
}

struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Walk<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: u64) -> Result<(), Reject> {
        if n > self.remaining() as u64 {
            return Err(Reject::Truncated);
        }
        self.pos += n as usize;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Reject> {
        let end = self.pos.checked_add(N).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(Reject::Truncated)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.buf[self.pos..end]);
        self.pos = end;
        Ok(out)
    }

    /// kafka-protocol's unsigned varint: at most 5 bytes, bits past 32 dropped.
    fn uvarint(&mut self) -> Result<u32, Reject> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.array::<1>()?;
            value |= u32::from(b & 0x7f).wrapping_shl(i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn layout(&mut self, i: usize, version: i16) -> Result<(), Reject> {
        let l = &LAYOUTS[i];
        if !within(version, l.versions) {
            return Err(Reject::Version(l.name));
        }
        for f in l.fields.iter().filter(|f| within(version, f.versions)) {
            self.value(f.ty, version, l.name)?;
        }
        if version >= l.tagged_from {
            let n = self.uvarint()?;
            // Each tagged field takes at least two bytes (tag and size), so this loop ends
            // with the body even when `n` is absurd.
            for _ in 0..n {
                let tag = self.uvarint()?;
                let size = self.uvarint()?;
                match l
                    .tagged
                    .iter()
                    .find(|t| t.tag == tag && within(version, t.versions))
                {
                    Some(t) => self.value(t.ty, version, l.name)?,
                    None => self.skip(u64::from(size))?,
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, ty: Ty, version: i16, owner: &'static str) -> Result<(), Reject> {
        match ty {
            Ty::Fixed(n) => self.skip(u64::from(n)),
            Ty::Str => {
                let n = i16::from_be_bytes(self.array()?);
                // Negative: null, or a length the decoder refuses.
                self.skip(n.max(0) as u64)
            }
            Ty::Bytes => {
                let n = i32::from_be_bytes(self.array()?);
                self.skip(n.max(0) as u64)
            }
            Ty::CStr | Ty::CBytes => {
                let n = self.uvarint()?;
                self.skip(u64::from(n.saturating_sub(1)))
            }
            Ty::Arr(elem) => {
                let n = i32::from_be_bytes(self.array()?);
                // Negative: null, or a count the decoder refuses before allocating.
                self.elements(n.max(0) as u64, *elem, version, owner)
            }
            Ty::CArr(elem) => {
                let n = self.uvarint()?;
                self.elements(u64::from(n.saturating_sub(1)), *elem, version, owner)
            }
            Ty::Struct(i) => self.layout(i, version),
            Ty::OptStruct(i) => {
                // The decoder reads the struct only when the flag is exactly 1.
                let [present] = self.array()?;
                if present == 1 {
                    self.layout(i, version)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn elements(
        &mut self,
        count: u64,
        elem: Ty,
        version: i16,
        owner: &'static str,
    ) -> Result<(), Reject> {
        // Every element the layouts hold takes at least one byte (a unit test checks it), so
        // `max(1)` only guards against a future layout breaking that.
        let need = count.saturating_mul(min_size(elem, version).max(1) as u64);
        if need > self.remaining() as u64 {
            return Err(Reject::OverClaim {
                within: owner,
                count,
                remaining: self.remaining(),
            });
        }
        for _ in 0..count {
            self.value(elem, version, owner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "bounds_tests.rs"]
mod tests;
