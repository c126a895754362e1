//! The consumer's shared state: assigned partitions, their positions, the prefetch budget.
//!
//! Ownership, per piece:
//! - the assignment map (which partitions exist) is changed only by `assign`/`revoke` here,
//!   called by the group task (subscribe) or the application (`Consumer::assign`);
//! - a partition's *fetch position* (`PartitionState::fetch`) is advanced by the fetcher task
//!   and moved by `seek` (application) or an offset reset (fetcher), always under its mutex;
//!   every move bumps the partition's `epoch`, so data fetched before the move is dropped
//!   wherever it is (in flight, in the channel, or in the application's current batch);
//! - the *consumed position* (`consumed`) is written only by the application's `recv`, one
//!   relaxed store per record, and read by commits.
//!
//! Per-record work touches no lock: `recv` checks the epoch (one atomic load) and stores the
//! consumed offset (one atomic store).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::consumer::config::OffsetReset;
use crate::consumer::record::{SeekTo, TopicPartition};
use crate::error::Error;

/// Where the fetcher stands on a partition.
#[derive(Debug, Clone)]
pub(crate) enum Position {
    /// Not known yet: ask the group for the committed offset, then fall back to the reset
    /// policy.
    Committed,
    /// Look the offset up with ListOffsets.
    Lookup(Lookup),
    /// Fetch from this offset.
    At {
        /// The next offset to fetch.
        offset: i64,
    },
    /// Nothing to fetch until the application seeks: the error was handed to it.
    Failed,
}

/// A ListOffsets lookup target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Earliest,
    Latest,
    Timestamp(i64),
}

impl Lookup {
    /// The ListOffsets timestamp that asks for this.
    pub(crate) fn wire(self) -> i64 {
        match self {
            Lookup::Earliest => -2,
            Lookup::Latest => -1,
            Lookup::Timestamp(ts) => ts,
        }
    }

    /// The lookup for a reset policy; `None` when the policy is to fail.
    pub(crate) fn for_reset(policy: OffsetReset) -> Option<Lookup> {
        match policy {
            OffsetReset::Earliest => Some(Lookup::Earliest),
            OffsetReset::Latest => Some(Lookup::Latest),
            OffsetReset::None => None,
        }
    }
}

/// The fetcher's view of one partition, under `PartitionState::fetch`.
#[derive(Debug)]
pub(crate) struct FetchState {
    pub(crate) position: Position,
    /// A Fetch, offset lookup or committed-offset lookup for it is in flight.
    pub(crate) busy: bool,
    /// After an error: not before this instant.
    pub(crate) not_before: Option<Instant>,
}

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub(crate) tp: TopicPartition,
    /// Bumped by every position move and by revocation; fetched data carries the epoch it was
    /// fetched under and is dropped when they differ.
    pub(crate) epoch: AtomicU64,
    /// The next offset the application will receive (last handed out + 1); -1 while unknown.
    pub(crate) consumed: AtomicI64,
    /// The last offset committed for it by this consumer (-1 if none), so auto-commit skips
    /// partitions that did not move.
    pub(crate) committed: AtomicI64,
    /// With `enable.auto.offset.store=false`: the offset the application stored
    /// (`Consumer::store_offset`, last processed + 1), what commits send; -1 while none.
    pub(crate) stored: AtomicI64,
    pub(crate) paused: AtomicBool,
    /// The log end (high watermark) the last Fetch answer gave; -1 before one.
    pub(crate) high_watermark: AtomicI64,
    /// Set when the partition leaves the assignment; its data is dropped everywhere.
    pub(crate) revoked: AtomicBool,
    /// Deliveries of its records the application has not used up yet ([`QueuedGuard`]): the
    /// fetcher fetches it again only while this is below `ConsumerConfig::max_queued`.
    pub(crate) queued: AtomicUsize,
    pub(crate) fetch: Mutex<FetchState>,
}

impl PartitionState {
    fn new(tp: TopicPartition, position: Position) -> PartitionState {
        PartitionState {
            tp,
            epoch: AtomicU64::new(0),
            consumed: AtomicI64::new(-1),
            committed: AtomicI64::new(-1),
            stored: AtomicI64::new(-1),
            paused: AtomicBool::new(false),
            high_watermark: AtomicI64::new(-1),
            revoked: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            fetch: Mutex::new(FetchState {
                position,
                busy: false,
                not_before: None,
            }),
        }
    }

    /// Whether data fetched under `epoch` may still be handed out.
    #[inline]
    pub(crate) fn current(&self, epoch: u64) -> bool {
        self.epoch.load(Ordering::Acquire) == epoch && !self.revoked.load(Ordering::Acquire)
    }

    /// Moves the fetch position (seek, reset), invalidating everything fetched before.
    pub(crate) fn move_to(&self, position: Position) {
        let mut f = self.fetch.lock().unwrap();
        let consumed = match position {
            Position::At { offset, .. } => offset,
            _ => -1,
        };
        f.position = position;
        f.not_before = None;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.consumed.store(consumed, Ordering::Release);
    }

    /// The position to report to the application: what it will receive next.
    pub(crate) fn position(&self) -> Option<i64> {
        let c = self.consumed.load(Ordering::Acquire);
        if c >= 0 {
            return Some(c);
        }
        match self.fetch.lock().unwrap().position {
            Position::At { offset, .. } => Some(offset),
            _ => None,
        }
    }
}

/// What a seek asks of the fetcher.
pub(crate) fn position_for(seek: SeekTo) -> Position {
    match seek {
        SeekTo::Offset(offset) => Position::At { offset },
        SeekTo::Beginning => Position::Lookup(Lookup::Earliest),
        SeekTo::End => Position::Lookup(Lookup::Latest),
        SeekTo::Timestamp(ts) => Position::Lookup(Lookup::Timestamp(ts)),
    }
}

/// The assignment: which partitions the consumer reads, shared by the application handle, the
/// fetcher task and the group task.
#[derive(Debug, Default)]
pub(crate) struct Assignment {
    parts: Mutex<HashMap<TopicPartition, Arc<PartitionState>>>,
    /// Wakes the fetcher: new partitions, a seek, resume, budget returned.
    pub(crate) wake: Notify,
}

impl Assignment {
    /// Adds partitions (already assigned ones keep their state) starting at the committed
    /// offset.
    pub(crate) fn add(&self, tps: impl IntoIterator<Item = TopicPartition>) {
        self.add_resuming(tps, &HashMap::new());
    }

    /// Adds partitions like [`add`](Self::add), starting those in `resume` at the offset
    /// given there instead of the committed one.
    pub(crate) fn add_resuming(
        &self,
        tps: impl IntoIterator<Item = TopicPartition>,
        resume: &HashMap<TopicPartition, i64>,
    ) {
        let mut parts = self.parts.lock().unwrap();
        for tp in tps {
            let position = match resume.get(&tp) {
                Some(&offset) => Position::At { offset },
                None => Position::Committed,
            };
            parts.entry(tp.clone()).or_insert_with(|| {
                let p = PartitionState::new(tp, position);
                if let Some(&offset) = resume.get(&p.tp) {
                    // As a seek does: what the application receives next.
                    p.consumed.store(offset, Ordering::Release);
                }
                Arc::new(p)
            });
        }
        drop(parts);
        self.wake.notify_one();
    }

    /// Removes partitions; data already fetched for them is dropped. Returns the removed.
    pub(crate) fn remove<'a>(
        &self,
        tps: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Vec<Arc<PartitionState>> {
        let mut parts = self.parts.lock().unwrap();
        let removed: Vec<_> = tps.into_iter().filter_map(|tp| parts.remove(tp)).collect();
        for p in &removed {
            p.revoked.store(true, Ordering::Release);
        }
        removed
    }

    /// Stops handing out the records of these partitions (fetched data is dropped, fetching
    /// stops) while keeping them assigned, so a revocation hook can still commit them.
    pub(crate) fn stop_delivery<'a>(
        &self,
        tps: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Vec<Arc<PartitionState>> {
        let parts = self.parts.lock().unwrap();
        let stopped: Vec<_> = tps
            .into_iter()
            .filter_map(|tp| parts.get(tp).cloned())
            .collect();
        for p in &stopped {
            p.revoked.store(true, Ordering::Release);
        }
        stopped
    }

    /// Removes every partition.
    pub(crate) fn clear(&self) -> Vec<Arc<PartitionState>> {
        let mut parts = self.parts.lock().unwrap();
        let removed: Vec<_> = parts.drain().map(|(_, p)| p).collect();
        for p in &removed {
            p.revoked.store(true, Ordering::Release);
        }
        removed
    }

    pub(crate) fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionState>> {
        self.parts.lock().unwrap().get(tp).cloned()
    }

    /// Every assigned partition.
    pub(crate) fn all(&self) -> Vec<Arc<PartitionState>> {
        self.parts.lock().unwrap().values().cloned().collect()
    }

    /// The assigned partitions, sorted.
    pub(crate) fn partitions(&self) -> Vec<TopicPartition> {
        let mut v: Vec<TopicPartition> = self.parts.lock().unwrap().keys().cloned().collect();
        v.sort();
        v
    }
}

/// Bytes of the prefetch budget held by fetched data; given back (and the fetcher woken) when
/// the data is dropped, which is what bounds memory whatever the partition count.
#[derive(Debug)]
pub(crate) struct BudgetGuard {
    budget: Arc<Budget>,
    bytes: usize,
}

impl BudgetGuard {
    /// The bytes this guard holds.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes over `other`'s bytes: one guard gives both back.
    pub(crate) fn absorb(&mut self, mut other: BudgetGuard) {
        self.bytes += std::mem::take(&mut other.bytes);
    }

    /// Splits `bytes` off into a guard of their own.
    pub(crate) fn split(&mut self, bytes: usize) -> BudgetGuard {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        BudgetGuard {
            budget: self.budget.clone(),
            bytes,
        }
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.permits.add_permits(self.bytes);
            self.budget.returned.notify_one();
        }
    }
}

/// Counts one delivery of a partition's records in [`PartitionState::queued`] while it lives
/// (in the channel, or the application's current one), and wakes the fetcher when it goes:
/// the partition may then be fetched again.
#[derive(Debug)]
pub(crate) struct QueuedGuard {
    part: Arc<PartitionState>,
    budget: Arc<Budget>,
}

impl QueuedGuard {
    pub(crate) fn new(part: Arc<PartitionState>, budget: Arc<Budget>) -> QueuedGuard {
        part.queued.fetch_add(1, Ordering::AcqRel);
        QueuedGuard { part, budget }
    }
}

impl Drop for QueuedGuard {
    fn drop(&mut self) {
        self.part.queued.fetch_sub(1, Ordering::AcqRel);
        self.budget.returned.notify_one();
    }
}

/// The prefetch budget (`fetch.buffer.bytes`).
#[derive(Debug)]
pub(crate) struct Budget {
    permits: Semaphore,
    /// Notified when bytes come back.
    pub(crate) returned: Notify,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Arc<Budget> {
        Arc::new(Budget {
            permits: Semaphore::new(bytes.min(Semaphore::MAX_PERMITS)),
            returned: Notify::new(),
        })
    }

    /// Takes up to `want` bytes if at least `min` are free.
    pub(crate) fn try_take(self: &Arc<Self>, min: usize, want: usize) -> Option<BudgetGuard> {
        let free = self.permits.available_permits();
        if free < min.max(1) {
            return None;
        }
        let take = want.min(free).min(u32::MAX as usize);
        let permit = self.permits.try_acquire_many(take as u32).ok()?;
        permit.forget();
        Some(BudgetGuard {
            budget: self.clone(),
            bytes: take,
        })
    }

    /// Charges up to `bytes` more, as much as is free, without waiting: for memory that a
    /// delivery turns out to hold beyond its wire bytes (decoded records, decompressed data).
    /// What cannot be charged is an overdraft bounded by one response; the next fetch then
    /// waits until the application has drained enough.
    pub(crate) fn take_up_to(self: &Arc<Self>, bytes: usize) -> BudgetGuard {
        let take = bytes
            .min(self.permits.available_permits())
            .min(u32::MAX as usize);
        let taken = match self.permits.try_acquire_many(take as u32) {
            Ok(p) => {
                p.forget();
                take
            }
            Err(_) => 0,
        };
        BudgetGuard {
            budget: self.clone(),
            bytes: taken,
        }
    }

    /// The bytes free now.
    pub(crate) fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// What the fetcher and the group task send to the application.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Records of one partition, fetched under `epoch`.
    Records {
        part: Arc<PartitionState>,
        epoch: u64,
        records: crate::consumer::fetched::FetchedRecords,
        /// The offset after everything this delivery covered (skipped control and aborted
        /// batches included): the position once its last record is handed out.
        next: i64,
        _budget: BudgetGuard,
        _queued: QueuedGuard,
    },
    /// An error about one partition (dropped if the partition moved since).
    PartitionError {
        part: Arc<PartitionState>,
        epoch: u64,
        error: Error,
    },
    /// An error about the consumer as a whole (poll interval exceeded, fenced).
    Error(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_is_returned_by_guards() {
        let b = Budget::new(1000);
        let mut g = b.try_take(100, 800).unwrap();
        assert_eq!(b.available(), 200);
        assert!(b.try_take(300, 300).is_none(), "below the minimum");
        let part = g.split(300);
        drop(g);
        assert_eq!(b.available(), 700);
        drop(part);
        assert_eq!(b.available(), 1000);
    }

    #[test]
    fn moving_invalidates_fetched_data() {
        let a = Assignment::default();
        let tp = TopicPartition::new("t", 0);
        a.add([tp.clone()]);
        let p = a.get(&tp).unwrap();
        let e = p.epoch.load(Ordering::Acquire);
        assert!(p.current(e));
        p.move_to(Position::At { offset: 5 });
        assert!(!p.current(e));
        assert_eq!(p.position(), Some(5));
        let e = p.epoch.load(Ordering::Acquire);
        a.remove([&tp]);
        assert!(!p.current(e), "revoked partitions drop their data");
        assert!(a.partitions().is_empty());
    }
}
