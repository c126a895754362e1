//! The sender's pass over the partitions: what leaves now, in which request, and in which
//! order. A part of the sender task (`sender.rs`), which alone runs it: partition queues are
//! drained, batches sealed and stamped with their sequences here, and the requests handed
//! back to the sender to send.
//!
//! Order: every partition is visited each pass (expiry, compression, linger deadlines);
//! each leader's partitions are drained starting just past the one drained last for that
//! leader, as the Java client's per-node drain index, so a request that fills up
//! (`max.request.size`) never leaves the same partitions waiting pass after pass.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use super::Sender;
use crate::compression::Compression;
use crate::error::Error;
use crate::producer::accumulator::{PartitionState, Queued, TopicQueue};
use crate::producer::batch::ProducerBatch;
use crate::producer::config::ProducerConfig;
use crate::producer::idempotence::{self, Identity};
use crate::producer::seal::Sealer;
use crate::protocol::records::{stamp_producer, write_crc};

/// Whether a finished batch's CRC is already in its header (`Sender::sealed` writes it once).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Crc {
    Written,
    Missing,
}

/// The resolution of tokio's timer. It rounds a deadline up to its next 1 ms tick and then
/// parks for whole ticks counted from the current one, so a `sleep_until(due)` ends between
/// `due` and 2 ms after it: about 1 ms late on average, and every lingering batch paid that.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Whether a batch whose linger ends at `due` may leave at `now`: once less than a timer tick
/// of it is left, because no timer wakes the sender any closer to `due` than that. So a batch
/// leaves within a tick of `linger.ms` after its first record, early or late, as Java's
/// millisecond clock gives (`now - createdMs >= lingerMs`). A linger below one tick is thus
/// no linger: the batch leaves on the first pass that sees it.
fn lingered(due: Instant, now: Instant) -> bool {
    due.saturating_duration_since(now) < TIMER_TICK
}

/// When to wake for a linger ending at `due`: one tick less a nanosecond before it, which the
/// timer rounds up to the last tick at or before `due` (instead of the first one after it).
/// The pass at that tick finds less than a tick left, which [`lingered`] counts as done.
fn linger_wake(due: Instant) -> Instant {
    due.checked_sub(TIMER_TICK - Duration::from_nanos(1))
        .unwrap_or(due)
}

/// What one pass collects: the requests being filled, per leader, and when the next pass is
/// due.
struct Drain<'a> {
    now: Instant,
    flush: bool,
    cfg: &'a ProducerConfig,
    next: Instant,
    requests: HashMap<i32, Vec<ProducerBatch>>,
    request_bytes: HashMap<i32, usize>,
}

impl Sender {
    /// One pass over every partition: expire, seal and send what is ready. Returns when the
    /// next pass is due at the latest (the earliest linger or retry deadline).
    pub(super) fn pass(&mut self, closing: bool) -> Instant {
        let now = Instant::now();
        let cfg = self.acc.cfg.clone();
        let next = now + Duration::from_secs(1);
        let flush = closing || self.acc.flushing.load(Ordering::Acquire) > 0;
        // No new sends while the identity is unknown or being bumped (sequences would be wrong).
        let can_send = !self.idempotent
            || (self.identity.is_some() && !self.identity_pending && !self.bump_requested);
        if self.idempotent
            && self.bump_requested
            && !self.identity_pending
            && self.requests_in_flight() == 0
        {
            self.bump_requested = false;
            self.start_identity(self.identity);
        }
        if let Some(txn) = &self.txn {
            // Transactions v2: EndTxn gave the next transaction a new epoch. `end` returns
            // only after every batch of the transaction was delivered, so nothing is in
            // flight under the old epoch and the next transaction's batches, sealed below,
            // get the new one with sequences from 0.
            let latest = txn.latest_identity();
            if self.identity.is_some()
                && !self.identity_pending
                && latest.is_some()
                && latest != self.identity
            {
                debug!(?latest, "transactional producer epoch changed");
                self.identity = latest;
                self.resequence_after_bump();
            }
        }
        let snapshot = self.client.metadata.snapshot();
        let mut drain = Drain {
            now,
            flush,
            cfg: &cfg,
            next,
            requests: HashMap::new(),
            request_bytes: HashMap::new(),
        };
        let mut need_metadata = false;
        // Each leader's partitions are drained from just past the last one drained for it,
        // wrapping around (the Java client's per-node drain index): a request fills up
        // (`max.request.size`) before the pass reaches a leader's last partitions, and a fixed
        // order would leave those waiting for as long as the first ones have batches queued.
        // One cursor per leader, not one for all: another leader's partition drained last
        // would otherwise move this leader's start back to its first partition.
        // The first sweep visits every partition (expiry, compression, linger deadlines) and
        // drains those at or past their leader's cursor; the second drains the rest.
        let topics = self.acc.topics();
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.clear();
        // A drain moves its leader's cursor just past it at once: in the first sweep every
        // later partition of that leader is past it anyway, and the second compares nothing.
        let mut position = 0;
        for (t, topic) in topics.iter().enumerate() {
            for (index, slot) in topic.partitions.iter().enumerate() {
                let here = position;
                position += 1;
                let partition = index as i32;
                let mut st = slot.lock().unwrap();
                // Expire batches past delivery.timeout.ms, wherever they wait.
                let expired = expire_queued(&mut st, now, cfg.delivery_timeout);
                self.stats.expired(expired);
                if let Some(sealer) = &self.sealer {
                    // Closed batches start compressing at once, whatever the leader or its
                    // in-flight slots: by the time a slot frees, they are ready.
                    start_sealing(sealer, &mut st);
                }
                let linger_due = st.open.as_ref().map(|b| b.created + cfg.linger);
                if let Some(due) = linger_due {
                    if !flush && !lingered(due, now) {
                        drain.next = drain.next.min(linger_wake(due));
                    }
                }
                let Some(leader) = snapshot.leader(&topic.name, partition) else {
                    if st.open.is_some() || !st.queue.is_empty() {
                        need_metadata = true;
                    }
                    continue;
                };
                if !can_send {
                    continue;
                }
                if here < self.drain_from.get(&leader).copied().unwrap_or(0) {
                    deferred.push((here, t, index, leader));
                    continue;
                }
                if self.drain_one(&mut drain, &mut st, topic, partition, leader) {
                    self.drain_from.insert(leader, here + 1);
                }
            }
        }
        for &(here, t, index, leader) in &deferred {
            let topic = &topics[t];
            let mut st = topic.partitions[index].lock().unwrap();
            if self.drain_one(&mut drain, &mut st, topic, index as i32, leader) {
                self.drain_from.insert(leader, here + 1);
            }
        }
        self.deferred = deferred;
        let next = drain.next;
        if need_metadata {
            self.request_metadata();
        }
        for (broker, batches) in drain.requests {
            self.send(broker, batches, &snapshot);
        }
        next
    }

    /// Takes `st`'s next batch into `drain`'s request for `leader`, if one is ready and
    /// allowed out (in-flight slots, request size, retry order, compression). Returns whether
    /// it did.
    fn drain_one(
        &mut self,
        drain: &mut Drain<'_>,
        st: &mut PartitionState,
        topic: &TopicQueue,
        partition: i32,
        leader: i32,
    ) -> bool {
        let broker_busy =
            self.in_flight_by_broker.get(&leader).copied().unwrap_or(0) >= drain.cfg.max_in_flight;
        let request_full = drain
            .request_bytes
            .get(&leader)
            .is_some_and(|b| *b >= drain.cfg.max_request_size);
        if broker_busy || request_full {
            return false;
        }
        let retrying = st.queue.iter().any(|q| matches!(q, Queued::Sealed(_)));
        if retrying && st.in_flight > 0 {
            return false;
        }
        if st.in_flight > 0 && st.in_flight_to.is_some_and(|b| b != leader) {
            // The leader moved while batches are in flight to the old one: wait for
            // their outcome so order is kept.
            return false;
        }
        if self.idempotent && !st.sequence_confirmed && st.in_flight > 0 {
            // No batch of this identity acknowledged here yet: the broker would take
            // a later batch as the producer's first if this one fails (see
            // `PartitionState::sequence_confirmed`).
            return false;
        }
        if let Some(Queued::Sealed(b)) = st.queue.front() {
            if let Some(at) = b.retry_at {
                if at > drain.now {
                    drain.next = drain.next.min(at);
                    return false;
                }
            }
        }
        let front_waits = match st.queue.front_mut() {
            // Still compressing: the partition's next batch is this one, so it waits.
            Some(Queued::Sealing(s)) => !s.ready(),
            // Not compressing yet: all compression slots are busy; a finishing job
            // wakes the sender.
            Some(Queued::Open(_)) => self.sealer.is_some(),
            _ => false,
        };
        if front_waits {
            return false;
        }
        // The next batch: queued first; else the open one if it lingered long enough.
        let queued = st.queue.pop_front();
        let taken = match queued {
            Some(q) => Some(q),
            None => match &st.open {
                Some(open)
                    if drain.flush || lingered(open.created + drain.cfg.linger, drain.now) =>
                {
                    if self.sealer.as_ref().is_some_and(|s| !s.has_room()) {
                        return false;
                    }
                    let taken = st.open.take().unwrap();
                    topic.on_batch_closed(&*self.acc.partitioner, partition, taken.builder.size());
                    if let Some(sealer) = &self.sealer {
                        // Sent from the queue once compressed.
                        st.queue.push_back(Queued::Sealing(sealer.start(taken)));
                        return false;
                    }
                    Some(Queued::Open(taken))
                }
                _ => None,
            },
        };
        let Some(taken) = taken else { return false };
        let mut batch = match taken {
            Queued::Sealed(b) => b,
            Queued::Sealing(s) => {
                let (record_count, created) = (s.record_count, s.created);
                // `None`: the compression failed, and failed only this batch.
                let Some((owner, bytes)) = s.take() else {
                    return false;
                };
                self.sealed(st, owner, bytes, Crc::Written, record_count, created)
            }
            Queued::Open(open) => {
                let record_count = open.builder.record_count();
                // Only without a sealer, so uncompressed (a producer that compresses seals
                // every batch first, above): the CRC is written once, in `sealed`.
                debug_assert_eq!(drain.cfg.compression, Compression::None);
                let bytes = match open.builder.finish_without_crc() {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        open.owner.finish(Err(e));
                        return false;
                    }
                };
                self.sealed(
                    st,
                    open.owner,
                    bytes,
                    Crc::Missing,
                    record_count,
                    open.created,
                )
            }
        };
        // A retried batch re-queued by an epoch bump lost its sequence: give it one.
        if !self.resequence(st, &mut batch) {
            // No identity yet (`can_send` rules this out): keep it first in line.
            st.queue.push_front(Queued::Sealed(batch));
            return false;
        }
        st.in_flight += 1;
        st.in_flight_to = Some(leader);
        *drain.request_bytes.entry(leader).or_default() += batch.bytes.len();
        drain.requests.entry(leader).or_default().push(batch);
        true
    }

    /// A batch just sealed (`bytes`: encoded, compressed), about to be sent for the first time:
    /// stamped with the producer identity and the partition's next sequence when idempotent.
    fn sealed(
        &self,
        st: &mut PartitionState,
        mut owner: crate::producer::batch::BatchOwner,
        mut bytes: bytes::BytesMut,
        crc: Crc,
        record_count: i32,
        created: Instant,
    ) -> ProducerBatch {
        // Stamped in place while the buffer is still ours alone: the batch's bytes are never
        // copied after encoding. (`can_send` guarantees an identity when idempotent.)
        // Stamping writes the CRC; an unstamped batch gets it here if it has none yet.
        let base_sequence = self
            .identity
            .filter(|_| self.idempotent)
            .map(|id| self.stamp_next(st, &mut bytes, id, record_count));
        if base_sequence.is_none() && crc == Crc::Missing {
            write_crc(&mut bytes);
        }
        let bytes = bytes.freeze();
        // A reference, not a copy: a failed batch gives its records back.
        owner.encoded = Some(bytes.clone());
        ProducerBatch {
            record_count,
            bytes,
            owner,
            created,
            attempts: 0,
            retry_at: None,
            base_sequence,
            possibly_persisted: false,
            last_error: None,
        }
    }

    /// Gives a sealed batch without a sequence (re-queued for an epoch bump) the next one.
    /// Sealed retries keep theirs. Copies the batch: this only happens after an epoch bump.
    /// False (batch untouched) when it needs a sequence but there is no producer identity.
    fn resequence(&mut self, st: &mut PartitionState, batch: &mut ProducerBatch) -> bool {
        if !self.idempotent || batch.base_sequence.is_some() {
            return true;
        }
        let Some(id) = self.identity else {
            return false;
        };
        self.restamp(st, batch, id);
        true
    }

    /// Copies `batch` with the partition's next sequence and `id` stamped in.
    pub(super) fn restamp(&self, st: &mut PartitionState, batch: &mut ProducerBatch, id: Identity) {
        let mut bytes = bytes::BytesMut::from(&batch.bytes[..]);
        let seq = self.stamp_next(st, &mut bytes, id, batch.record_count);
        batch.bytes = bytes.freeze();
        batch.base_sequence = Some(seq);
    }

    /// Gives a batch of `record_count` records the partition's next sequence, stamping it and
    /// `id` into the batch header; returns the sequence.
    fn stamp_next(
        &self,
        st: &mut PartitionState,
        bytes: &mut bytes::BytesMut,
        id: Identity,
        record_count: i32,
    ) -> i32 {
        let seq = st.next_sequence;
        st.next_sequence = idempotence::next_sequence(seq, record_count);
        stamp_producer(bytes, id.producer_id, id.epoch, seq, self.txn.is_some());
        seq
    }
}

/// Fails queued batches whose delivery timeout has passed.
/// Returns how many records expired (for the metrics).
pub(super) fn expire_queued(st: &mut PartitionState, now: Instant, timeout: Duration) -> i32 {
    let expired = |created: Instant| created + timeout <= now;
    let mut records = 0;
    if st.open.as_ref().is_some_and(|b| expired(b.created)) {
        let b = st.open.take().unwrap();
        records += b.builder.record_count();
        b.fail(Error::Timeout {
            operation: "delivery (no leader or broker available)".into(),
            after: timeout,
            last: None,
        });
    }
    // A batch being compressed expires once its compression is done, so that its records can
    // be given back from the compressed batch (a compression takes milliseconds).
    if st.queue.iter_mut().any(|q| match q {
        Queued::Open(b) => expired(b.created),
        Queued::Sealing(b) => expired(b.created) && b.ready(),
        Queued::Sealed(b) => expired(b.created),
    }) {
        let queue = std::mem::take(&mut st.queue);
        for q in queue {
            match q {
                Queued::Open(b) if expired(b.created) => {
                    records += b.builder.record_count();
                    b.fail(Error::Timeout {
                        operation: "delivery (no leader or broker available)".into(),
                        after: timeout,
                        last: None,
                    })
                }
                Queued::Sealing(b) if expired(b.created) && b.is_done() => {
                    records += b.record_count;
                    b.fail(Error::Timeout {
                        operation: "delivery (no leader or broker available)".into(),
                        after: timeout,
                        last: None,
                    })
                }
                Queued::Sealed(b) if expired(b.created) => {
                    records += b.record_count;
                    let last = b.last_error.clone().map(Arc::new);
                    b.finish(Err(Error::Timeout {
                        operation: "delivery".into(),
                        after: timeout,
                        last,
                    }))
                }
                keep => st.queue.push_back(keep),
            }
        }
    }
    records
}

/// Hands the partition's closed batches to the compression pool, in queue order, while it has
/// room. Each keeps its place in the queue (see `seal.rs`).
fn start_sealing(sealer: &Sealer, st: &mut PartitionState) {
    for i in 0..st.queue.len() {
        if !sealer.has_room() {
            return;
        }
        if !matches!(st.queue[i], Queued::Open(_)) {
            continue;
        }
        // A queue holds a few batches: moving the ones behind twice costs nothing.
        let Some(Queued::Open(open)) = st.queue.remove(i) else {
            unreachable!("matched above")
        };
        st.queue.insert(i, Queued::Sealing(sealer.start(open)));
    }
}
