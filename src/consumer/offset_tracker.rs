//! Which offsets of one partition are done, for commits of the contiguous done prefix.
//!
//! Records of a partition finish out of order under concurrent processing. The offset
//! that may be committed is the first one not finished yet (everything before it is
//! done); finished records after it wait in a bitmap window starting at that offset: one
//! bit per offset, 8 KiB for 65 536 offsets however they complete, and the window shrinks
//! from the front as the prefix moves. No map entry per record.
//!
//! Offsets the consumer never hands out (transaction markers, records of aborted
//! transactions, compacted-away records, a seek forward) count as done the moment a later
//! offset arrives: `received` fills the gap. Otherwise one missing offset would hold the
//! commit point back forever.
//!
//! Owned by the processing driver (`process.rs`), one tracker per assigned partition; only
//! the driver's task touches it.
//!
//! # Metadata encoding
//!
//! The done offsets past the commit point can be stored with the commit
//! ([`OffsetTracker::encode_done`]): `fk1:` then comma-separated `GAP+LEN` pairs in
//! decimal, each a run of `LEN` done offsets starting `GAP` offsets after the end of the
//! previous run (the first run counts from the committed offset). A restart reads it back
//! with [`decode_done`] and skips those records. Only *done* runs are listed, never the
//! pending ones, so a list cut short to fit the broker's metadata limit
//! (`offset.metadata.max.bytes`, 4096 by default) only means some done records run again:
//! it can never skip a record that was not processed.

use std::collections::VecDeque;
use std::ops::Range;

/// The prefix of the metadata format (a version, so the format can change).
const PREFIX: &str = "fk1:";

/// Done offsets of one partition: the commit point and a bitmap of what finished after it.
#[derive(Debug, Clone)]
pub(crate) struct OffsetTracker {
    /// Offset of bit 0 of `words[0]`; always `<= next`.
    start: i64,
    /// The first offset not done: what a commit stores.
    next: i64,
    /// One past the highest offset known (received, or done from a restart's metadata).
    end: i64,
    /// One past the last offset received; offsets between it and the next received one
    /// never come and count as done.
    received_end: i64,
    /// Bit `i` of the window (word `i / 64`, bit `i % 64`): offset `start + i` is done.
    words: VecDeque<u64>,
    /// Done offsets in `[next, end)`, kept up to date for the metrics.
    done_ahead: u64,
}

/// What [`OffsetTracker::received`] says about an offset handed out by the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// Not done yet: process it.
    Pending,
    /// Already done (before the commit point, or listed in a restart's metadata): skip it.
    AlreadyDone,
}

impl OffsetTracker {
    /// A tracker whose commit point is `offset` (the committed offset, or the first offset
    /// the consumer hands out).
    pub(crate) fn new(offset: i64) -> OffsetTracker {
        OffsetTracker {
            start: offset,
            next: offset,
            end: offset,
            received_end: offset,
            words: VecDeque::new(),
            done_ahead: 0,
        }
    }

    /// A tracker at the committed `offset` that already knows `done` runs past it (from
    /// [`decode_done`]).
    pub(crate) fn with_done(offset: i64, done: &[Range<i64>]) -> OffsetTracker {
        let mut t = OffsetTracker::new(offset);
        for r in done {
            let from = r.start.max(offset);
            if from < r.end {
                t.end = t.end.max(r.end);
                t.set_range(from, r.end);
            }
        }
        t.advance();
        t
    }

    /// The commit point: every offset before it is done.
    pub(crate) fn committable(&self) -> i64 {
        self.next
    }

    /// Done offsets past the commit point (finished out of order, from metadata, or
    /// skipped offsets that never came).
    pub(crate) fn done_ahead(&self) -> u64 {
        self.done_ahead
    }

    /// One past the highest offset known.
    pub(crate) fn end(&self) -> i64 {
        self.end
    }

    /// The consumer handed out `offset` (offsets of one partition come in increasing
    /// order). Offsets skipped since the last one count as done.
    pub(crate) fn received(&mut self, offset: i64) -> Received {
        if offset < self.next {
            return Received::AlreadyDone;
        }
        if offset > self.received_end {
            // The gap [received_end, offset) never comes: done.
            if self.next >= self.received_end && self.done_ahead == 0 {
                // Nothing pending or done past the point: jump (a seek forward, a long
                // compacted stretch) without touching the bitmap.
                self.start = offset;
                self.next = offset;
                self.words.clear();
            } else {
                let from = self.received_end.max(self.next);
                self.end = self.end.max(offset);
                self.set_range(from, offset);
            }
        }
        self.received_end = self.received_end.max(offset + 1);
        self.end = self.end.max(offset + 1);
        let was_done = self.is_done(offset);
        self.advance();
        if was_done {
            Received::AlreadyDone
        } else {
            Received::Pending
        }
    }

    /// `offset` finished. Returns whether the commit point moved.
    pub(crate) fn done(&mut self, offset: i64) -> bool {
        if offset < self.next {
            return false;
        }
        self.end = self.end.max(offset + 1);
        self.set(offset);
        self.advance()
    }

    /// Whether `offset` is done.
    pub(crate) fn is_done(&self, offset: i64) -> bool {
        if offset < self.next {
            return true;
        }
        let i = (offset - self.start) as u64;
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, offset: i64) {
        let i = (offset - self.start) as u64;
        let word = (i / 64) as usize;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (i % 64);
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.done_ahead += 1;
        }
    }

    /// Marks `[from, to)` done, a word at a time.
    fn set_range(&mut self, from: i64, to: i64) {
        let mut o = from;
        while o < to {
            let i = (o - self.start) as u64;
            let word = (i / 64) as usize;
            let bit = i % 64;
            let n = (64 - bit).min((to - o) as u64);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            if self.words.len() <= word {
                self.words.resize(word + 1, 0);
            }
            let new = mask & !self.words[word];
            self.words[word] |= mask;
            self.done_ahead += new.count_ones() as u64;
            o += n as i64;
        }
    }

    /// Moves the commit point over the done prefix and drops whole words behind it.
    fn advance(&mut self) -> bool {
        let before = self.next;
        loop {
            let i = (self.next - self.start) as u64;
            let Some(&w) = self.words.get((i / 64) as usize) else {
                break;
            };
            // Ones from bit i % 64 upwards: skip them in one step.
            let run = (!(w >> (i % 64))).trailing_zeros() as i64;
            let run = run.min(64 - (i % 64) as i64);
            if run == 0 {
                break;
            }
            self.next += run;
            self.done_ahead -= run as u64;
        }
        while self.next - self.start >= 64 {
            self.words.pop_front();
            self.start += 64;
        }
        self.next != before
    }

    /// The done runs past the commit point, in order.
    pub(crate) fn done_runs(&self) -> Vec<Range<i64>> {
        let mut runs = Vec::new();
        let mut o = self.next;
        while o < self.end {
            if self.is_done(o) {
                let s = o;
                while o < self.end && self.is_done(o) {
                    o += 1;
                }
                runs.push(s..o);
            } else {
                o += 1;
            }
        }
        runs
    }

    /// The done runs past the commit point as commit metadata of at most `max_len` bytes
    /// (runs that do not fit are left out: they would only be processed again). `None`
    /// when nothing past the commit point is done.
    pub(crate) fn encode_done(&self, max_len: usize) -> Option<String> {
        encode_runs(self.next, &self.done_runs(), max_len)
    }
}

/// Encodes `runs` (sorted, disjoint, all at or after `committed`) as commit metadata.
pub(crate) fn encode_runs(committed: i64, runs: &[Range<i64>], max_len: usize) -> Option<String> {
    if runs.is_empty() || max_len <= PREFIX.len() {
        return None;
    }
    let mut out = String::from(PREFIX);
    let mut prev = committed;
    let mut any = false;
    for r in runs {
        let item = format!(
            "{}{}+{}",
            if any { "," } else { "" },
            r.start - prev,
            r.end - r.start
        );
        if out.len() + item.len() > max_len {
            break;
        }
        out.push_str(&item);
        any = true;
        prev = r.end;
    }
    any.then_some(out)
}

/// Decodes commit metadata written by [`OffsetTracker::encode_done`] for a commit at
/// `committed`. Anything else (another application's metadata, a malformed string) gives
/// no runs: every record from `committed` on is processed.
pub(crate) fn decode_done(committed: i64, metadata: &str) -> Vec<Range<i64>> {
    let Some(body) = metadata.strip_prefix(PREFIX) else {
        return Vec::new();
    };
    let mut runs = Vec::new();
    let mut prev = committed;
    for item in body.split(',') {
        let Some((gap, len)) = item.split_once('+') else {
            return Vec::new();
        };
        let (Ok(gap), Ok(len)) = (gap.parse::<i64>(), len.parse::<i64>()) else {
            return Vec::new();
        };
        if gap < 0 || len <= 0 {
            return Vec::new();
        }
        let Some(start) = prev.checked_add(gap) else {
            return Vec::new();
        };
        let Some(end) = start.checked_add(len) else {
            return Vec::new();
        };
        runs.push(start..end);
        prev = end;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_completion_moves_the_point_each_time() {
        let mut t = OffsetTracker::new(10);
        for o in 10..20 {
            assert_eq!(t.received(o), Received::Pending);
        }
        for o in 10..20 {
            assert!(t.done(o));
            assert_eq!(t.committable(), o + 1);
        }
        assert_eq!(t.done_ahead(), 0);
    }

    #[test]
    fn out_of_order_completion_waits_for_the_gap() {
        let mut t = OffsetTracker::new(0);
        for o in 0..5 {
            t.received(o);
        }
        assert!(!t.done(3));
        assert!(!t.done(1));
        assert_eq!(t.committable(), 0);
        assert_eq!(t.done_ahead(), 2);
        assert!(t.done(0));
        assert_eq!(t.committable(), 2);
        assert!(t.done(2));
        assert_eq!(t.committable(), 4);
        assert_eq!(t.done_ahead(), 0);
    }

    #[test]
    fn offsets_never_received_count_as_done() {
        let mut t = OffsetTracker::new(100);
        t.received(100);
        // 101..=104 were transaction markers or compacted away.
        t.received(105);
        t.done(100);
        assert_eq!(t.committable(), 105);
        t.done(105);
        assert_eq!(t.committable(), 106);
    }

    #[test]
    fn a_long_stall_keeps_the_window_in_bits() {
        let mut t = OffsetTracker::new(0);
        for o in 0..100_000 {
            t.received(o);
        }
        for o in 1..100_000 {
            t.done(o);
        }
        assert_eq!(t.committable(), 0);
        assert!(t.words.len() <= 100_000 / 64 + 1);
        t.done(0);
        assert_eq!(t.committable(), 100_000);
        assert!(t.words.len() <= 1);
    }

    #[test]
    fn metadata_runs_let_a_restart_skip_done_records() {
        let mut t = OffsetTracker::new(50);
        for o in 50..60 {
            t.received(o);
        }
        for o in [52, 53, 57] {
            t.done(o);
        }
        let m = t.encode_done(4096).unwrap();
        assert_eq!(m, "fk1:2+2,3+1");
        let runs = decode_done(t.committable(), &m);
        assert_eq!(runs, vec![52..54, 57..58]);
        let mut restarted = OffsetTracker::with_done(50, &runs);
        let replay: Vec<i64> = (50..60)
            .filter(|&o| restarted.received(o) == Received::Pending)
            .collect();
        assert_eq!(replay, vec![50, 51, 54, 55, 56, 58, 59]);
    }

    #[test]
    fn metadata_cut_short_only_drops_done_runs() {
        let runs: Vec<Range<i64>> = (0..1000).map(|i| i * 10 + 1..i * 10 + 2).collect();
        let m = encode_runs(0, &runs, 100).unwrap();
        assert!(m.len() <= 100);
        let back = decode_done(0, &m);
        assert!(!back.is_empty() && back.len() < runs.len());
        assert_eq!(back[..], runs[..back.len()]);
    }

    #[test]
    fn foreign_or_broken_metadata_means_nothing_is_done() {
        assert!(decode_done(0, "").is_empty());
        assert!(decode_done(0, "hello").is_empty());
        assert!(decode_done(0, "fk1:3").is_empty());
        assert!(decode_done(0, "fk1:-1+2").is_empty());
        assert!(decode_done(0, "fk1:1+0").is_empty());
        assert!(decode_done(0, "fk1:9223372036854775807+9").is_empty());
    }

    proptest! {
        /// Any completion order: after each completion the commit point is exactly the
        /// first offset not completed, and nothing past it is reported done that is not.
        #[test]
        fn any_completion_order_commits_exactly_the_prefix(
            first in 0i64..1_000_000,
            len in 1usize..600,
            seed in any::<u64>(),
            skip_every in 0usize..7,
        ) {
            // Some offsets are never handed out (markers): every `skip_every`-th.
            let offsets: Vec<i64> = (0..len as i64)
                .map(|i| first + i)
                .filter(|o| skip_every == 0 || (o - first) as usize % (skip_every + 2) != 1)
                .collect();
            let mut t = OffsetTracker::new(first);
            for &o in &offsets {
                prop_assert_eq!(t.received(o), Received::Pending);
            }
            let mut order = offsets.clone();
            let mut s = seed | 1;
            for i in (1..order.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                order.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let mut done = std::collections::BTreeSet::new();
            for &o in &order {
                t.done(o);
                done.insert(o);
                // Expected: the first handed-out offset not done yet (or one past the last
                // handed out when all are done); skipped offsets never hold it back.
                let expect = offsets
                    .iter()
                    .find(|o| !done.contains(o))
                    .copied()
                    .unwrap_or(offsets.last().unwrap() + 1);
                prop_assert_eq!(t.committable(), expect);
                // Past the point: done ones, and the skipped ones (they count as done).
                let last = *offsets.last().unwrap();
                let ahead = (expect..=last)
                    .filter(|o| done.contains(o) || offsets.binary_search(o).is_err())
                    .count() as u64;
                prop_assert_eq!(t.done_ahead(), ahead);
            }
        }

        /// The metadata round-trips: decoding what was encoded gives the done runs back,
        /// and a tracker rebuilt from them skips exactly the done offsets.
        #[test]
        fn metadata_round_trips(
            first in 0i64..1_000_000_000_000,
            done_mask in proptest::collection::vec(any::<bool>(), 1..400),
        ) {
            let mut t = OffsetTracker::new(first);
            for i in 0..done_mask.len() as i64 {
                t.received(first + i);
            }
            for (i, &d) in done_mask.iter().enumerate() {
                if d {
                    t.done(first + i as i64);
                }
            }
            let runs = t.done_runs();
            let encoded = t.encode_done(usize::MAX);
            prop_assert_eq!(encoded.is_none(), runs.is_empty());
            let decoded = encoded
                .map(|m| decode_done(t.committable(), &m))
                .unwrap_or_default();
            prop_assert_eq!(&decoded, &runs);
            let mut again = OffsetTracker::with_done(t.committable(), &decoded);
            for i in 0..done_mask.len() as i64 {
                let o = first + i;
                let expect = if t.is_done(o) { Received::AlreadyDone } else { Received::Pending };
                prop_assert_eq!(again.received(o), expect);
            }
        }
    }
}
