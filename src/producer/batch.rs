//! Batches in the producer and the futures their records' senders wait on.
//!
//! A record's delivery is decided with its batch's, so the outcome lives once per batch in a
//! [`BatchCompletion`]; each record's [`DeliveryFuture`] holds an `Arc` to it, the record's
//! offset delta and its timestamp's delta from the batch's first one: 16 bytes. That keeps
//! the per-record cost of `send` at one reference-count increment — no channel, no
//! allocation — and a future nobody awaits costs nothing at completion. Applications keep
//! hundreds of thousands of these while a full buffer drains, so their size is memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::record::{Record, RecordMetadata, Topic};

/// What the broker said about a whole batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchOutcome {
    /// Offset of the batch's first record; -1 when unknown (acks=0).
    pub(crate) base_offset: i64,
    /// The broker's append time when the topic uses LogAppendTime.
    pub(crate) log_append_time: Option<i64>,
}

/// The shared outcome of one batch.
pub(crate) struct BatchCompletion {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The first record's timestamp; each [`DeliveryFuture`] holds its own as a delta.
    base_timestamp: i64,
    /// `(offset delta, timestamp)` of the records whose timestamp is too far from
    /// `base_timestamp` for an `i32` delta (an application's own timestamps can be): rare, so
    /// kept here rather than growing every future.
    far_timestamps: Mutex<Vec<(u32, i64)>>,
    result: OnceLock<Result<BatchOutcome>>,
    /// The encoded batch, kept only when it failed: a [`DeliveryFuture::with_record`]
    /// decodes its record back from it, so the success path keeps no copy of any record.
    failed_batch: OnceLock<Bytes>,
    wakers: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for BatchCompletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchCompletion")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("done", &self.result.get().is_some())
            .finish()
    }
}

impl BatchCompletion {
    /// The completion of a batch whose first record has timestamp `base_timestamp`.
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        base_timestamp: i64,
    ) -> Arc<BatchCompletion> {
        Arc::new(BatchCompletion {
            topic,
            partition,
            base_timestamp,
            far_timestamps: Mutex::new(Vec::new()),
            result: OnceLock::new(),
            failed_batch: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// Records the outcome (the first one wins) and wakes every waiting record.
    pub(crate) fn complete(&self, result: Result<BatchOutcome>) {
        if self.result.set(result).is_ok() {
            let wakers = std::mem::take(&mut *self.wakers.lock().unwrap());
            for w in wakers {
                w.wake();
            }
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.result.get().is_some()
    }

    /// Keeps the encoded batch of a batch about to fail, for the records it gives back.
    pub(crate) fn keep_failed_batch(&self, bytes: Bytes) {
        let _ = self.failed_batch.set(bytes);
    }

    /// Every record of the failed batch, decoded back in offset order (empty when the batch
    /// was not kept).
    pub(crate) fn failed_records(&self, topic: Topic) -> Vec<Record> {
        self.failed_batch
            .get()
            .map_or_else(Vec::new, |bytes| decode_records(bytes, topic))
    }
}

/// Resolves to where a sent record landed, or to the error that failed it.
///
/// Returned by [`Producer::send`](crate::Producer::send). Dropping it does not cancel the
/// record: it is delivered (or fails) all the same.
#[must_use = "a DeliveryFuture tells whether the record was delivered; drop it explicitly to ignore that"]
pub struct DeliveryFuture {
    inner: DeliveryInner,
}

enum DeliveryInner {
    Pending {
        batch: Arc<BatchCompletion>,
        /// The record's offset delta in its batch; [`EXPLICIT_PARTITION`] marks a partition
        /// the application chose (so a record given back on failure names it).
        slot: u32,
        /// The record's timestamp minus the batch's first one; [`FAR_TIMESTAMP`]: kept in the
        /// batch's `far_timestamps`.
        timestamp_delta: i32,
    },
}

/// The bit of `slot` that marks an explicit partition (offset deltas are non-negative `i32`s).
const EXPLICIT_PARTITION: u32 = 1 << 31;
/// A `timestamp_delta` that says "look it up in the batch".
const FAR_TIMESTAMP: i32 = i32::MIN;

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let DeliveryInner::Pending { batch, .. } = &self.inner;
        f.debug_struct("DeliveryFuture")
            .field("batch", batch)
            .field("offset_delta", &self.offset_delta())
            .finish()
    }
}

impl DeliveryFuture {
    /// The future of the record at `offset_delta` of `batch`, written with `timestamp`.
    pub(crate) fn new(batch: Arc<BatchCompletion>, offset_delta: i32, timestamp: i64) -> Self {
        let slot = offset_delta.max(0) as u32;
        let timestamp_delta = match i32::try_from(timestamp.wrapping_sub(batch.base_timestamp)) {
            Ok(d) if d != FAR_TIMESTAMP => d,
            _ => {
                batch.far_timestamps.lock().unwrap().push((slot, timestamp));
                FAR_TIMESTAMP
            }
        };
        DeliveryFuture {
            inner: DeliveryInner::Pending {
                batch,
                slot,
                timestamp_delta,
            },
        }
    }

    /// A future of `batch`'s outcome as a whole (what its first record resolves to); for
    /// `flush`, which waits on batches, not records.
    pub(crate) fn of_batch(batch: Arc<BatchCompletion>) -> Self {
        DeliveryFuture {
            inner: DeliveryInner::Pending {
                batch,
                slot: 0,
                timestamp_delta: 0,
            },
        }
    }

    /// Marks the record as sent to a partition the application chose.
    pub(crate) fn explicit_partition(mut self) -> Self {
        let DeliveryInner::Pending { slot, .. } = &mut self.inner;
        *slot |= EXPLICIT_PARTITION;
        self
    }

    fn offset_delta(&self) -> i32 {
        let DeliveryInner::Pending { slot, .. } = &self.inner;
        (slot & !EXPLICIT_PARTITION) as i32
    }

    fn timestamp(&self) -> i64 {
        let DeliveryInner::Pending {
            batch,
            timestamp_delta,
            ..
        } = &self.inner;
        if *timestamp_delta != FAR_TIMESTAMP {
            return batch
                .base_timestamp
                .wrapping_add(i64::from(*timestamp_delta));
        }
        let delta = self.offset_delta() as u32;
        let far = batch.far_timestamps.lock().unwrap();
        far.iter()
            .find(|(s, _)| *s == delta)
            .map_or(batch.base_timestamp, |(_, t)| *t)
    }

    /// This delivery, but a failure gives the record back: resolves to
    /// `Err(`[`DeliveryError`]`)` holding the error and the record (topic, key, value,
    /// headers, timestamp, and the partition if the application chose one), ready to be
    /// re-sent or written to a dead-letter topic without having kept a clone.
    ///
    /// Costs nothing when the record is delivered: the producer never keeps a copy of a
    /// record; on failure the record is decoded back from its batch's encoded bytes.
    ///
    /// ```no_run
    /// # async fn f(producer: ferrokafka::Producer) -> ferrokafka::Result<()> {
    /// use ferrokafka::Record;
    /// let delivery = producer.send(Record::new("orders").value("v")).await?;
    /// if let Err(failed) = delivery.with_record().await {
    ///     eprintln!("not delivered: {}", failed.error);
    ///     let mut record = failed.record;
    ///     record.topic = "orders.dlq".into();
    ///     record.partition = None;
    ///     let _ = producer.send(record).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_record(self) -> WithRecord {
        WithRecord { inner: self }
    }
}

/// A delivery that failed, with the record it was for. From
/// [`DeliveryFuture::with_record`]; converts into [`Error`] with `?`.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeliveryError {
    /// Why the record was not delivered.
    pub error: Error,
    /// The record, as it was sent. `partition` is set only if the application chose it.
    /// The timestamp is the one the record was written with (`send` fills in "now").
    pub record: Record,
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record for topic {} not delivered: {}",
            self.record.topic, self.error
        )
    }
}

impl std::error::Error for DeliveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<DeliveryError> for Error {
    fn from(e: DeliveryError) -> Error {
        e.error
    }
}

/// The future of [`DeliveryFuture::with_record`].
#[must_use = "a delivery tells whether the record was delivered"]
#[derive(Debug)]
pub struct WithRecord {
    inner: DeliveryFuture,
}

impl Future for WithRecord {
    type Output = std::result::Result<RecordMetadata, DeliveryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let error = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(m)) => return Poll::Ready(Ok(m)),
            Poll::Ready(Err(e)) => e,
        };
        let offset_delta = self.inner.offset_delta();
        let timestamp = self.inner.timestamp();
        let DeliveryInner::Pending { batch, slot, .. } = &self.inner.inner;
        let topic = Topic::from(&batch.topic);
        let mut record = batch
            .failed_batch
            .get()
            .and_then(|bytes| record_at(bytes, offset_delta, topic.clone()))
            .unwrap_or_else(|| {
                // Not reachable by the producer's own paths (every failure keeps its batch);
                // the record's identity is still given back rather than panicking.
                Record::new(topic)
            });
        record.partition = (slot & EXPLICIT_PARTITION != 0).then_some(batch.partition);
        record.timestamp.get_or_insert(timestamp);
        Poll::Ready(Err(DeliveryError { error, record }))
    }
}

/// Decodes the record at `offset_delta` of an encoded (possibly compressed) batch of `topic`.
fn record_at(bytes: &Bytes, offset_delta: i32, topic: Topic) -> Option<Record> {
    // A producer batch has base offset 0: a record's offset delta is its index.
    let index = usize::try_from(offset_delta).ok()?;
    decode_records(bytes, topic).into_iter().nth(index)
}

/// Every record of an encoded (possibly compressed) batch of `topic`, in offset order, as the
/// application sent them (`partition` unset, the timestamp written); empty if it does not
/// decode.
fn decode_records(bytes: &Bytes, topic: Topic) -> Vec<Record> {
    // Our own batch, so no bound is needed against a hostile expansion; i32::MAX is the
    // most a batch can hold (and leaves the decoders' +1 overflow check room).
    let batch = crate::protocol::records::Batches::new(bytes.clone(), false, i32::MAX as usize)
        .next()
        .and_then(|b| b.ok());
    batch.map_or_else(Vec::new, |b| {
        b.records
            .into_iter()
            .map(|r| Record {
                topic: topic.clone(),
                partition: None,
                key: r.key,
                value: r.value,
                headers: r.headers,
                timestamp: Some(r.timestamp),
            })
            .collect()
    })
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let offset_delta = this.offset_delta();
        match &this.inner {
            DeliveryInner::Pending { batch, .. } => {
                let ready = |r: &Result<BatchOutcome>| match r {
                    Ok(o) => Ok(RecordMetadata {
                        topic: batch.topic.clone(),
                        partition: batch.partition,
                        offset: if o.base_offset < 0 {
                            -1
                        } else {
                            o.base_offset + i64::from(offset_delta)
                        },
                        timestamp: o.log_append_time.unwrap_or_else(|| this.timestamp()),
                    }),
                    Err(e) => Err(e.clone()),
                };
                if let Some(r) = batch.result.get() {
                    return Poll::Ready(ready(r));
                }
                let mut wakers = batch.wakers.lock().unwrap();
                // Checked again under the lock: `complete` sets the result before taking the
                // wakers, so either we see the result here or our waker is taken and woken.
                if let Some(r) = batch.result.get() {
                    return Poll::Ready(ready(r));
                }
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// Everything a batch holds that must be given back exactly once: its records' outcome, its
/// bytes of the buffer budget, and its entry in the flush registry.
///
/// Whoever holds the batch when it is decided calls [`BatchOwner::finish`]; if the batch is
/// dropped undecided instead (producer dropped, task aborted), `Drop` fails its records with
/// `Error::Closed`. So no `DeliveryFuture` can hang and no budget can leak, whatever path a
/// batch takes.
pub(crate) struct BatchOwner {
    pub(crate) completion: Arc<BatchCompletion>,
    pub(crate) id: u64,
    reserved: usize,
    /// Records appended: how many reports a delivery handler gets.
    records: i32,
    shared: Arc<super::accumulator::Shared>,
    /// The sealed batch's bytes (a reference, not a copy), handed to the completion if the
    /// batch fails, so its records can be given back.
    pub(crate) encoded: Option<Bytes>,
}

impl std::fmt::Debug for BatchOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOwner")
            .field("id", &self.id)
            .field("reserved", &self.reserved)
            .finish()
    }
}

impl BatchOwner {
    pub(crate) fn new(
        completion: Arc<BatchCompletion>,
        id: u64,
        shared: Arc<super::accumulator::Shared>,
    ) -> Self {
        BatchOwner {
            completion,
            id,
            reserved: 0,
            records: 0,
            shared,
            encoded: None,
        }
    }

    /// Counts one appended record, whose `bytes` of already acquired budget this batch gives
    /// back.
    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.reserved += bytes;
        self.records += 1;
    }

    pub(crate) fn finish(mut self, result: Result<BatchOutcome>) {
        self.settle(result);
    }

    fn settle(&mut self, result: Result<BatchOutcome>) {
        if self.completion.is_complete() {
            return;
        }
        if result.is_err() {
            if let Some(bytes) = self.encoded.take() {
                self.completion.keep_failed_batch(bytes);
            }
        }
        // Before the futures wake (a record's future resolves after its report) and before
        // the budget goes back (a slow handler slows `send`, report.rs).
        if let Some(handler) = &self.shared.on_delivery {
            handler.report(&self.completion, self.records, &result);
        }
        self.completion.complete(result);
        self.shared
            .release(self.id, std::mem::take(&mut self.reserved));
    }
}

impl Drop for BatchOwner {
    fn drop(&mut self) {
        // Dropped undecided: the producer's last handle went without close (its batches are
        // failed with a cause that says so), or the client was closed under it.
        let err = if self
            .shared
            .dropped
            .load(std::sync::atomic::Ordering::Acquire)
        {
            Error::ProducerDropped
        } else {
            Error::Closed
        };
        self.settle(Err(err));
    }
}

/// A sealed batch on its way to a broker: owned by its partition's queue while it waits and by
/// the sender while in flight.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub(crate) owner: BatchOwner,
    /// The encoded (and compressed) record batch, producer fields stamped once sequenced.
    pub(crate) bytes: Bytes,
    pub(crate) record_count: i32,
    /// When the first record was appended: `delivery.timeout.ms` counts from here.
    pub(crate) created: Instant,
    /// Times this batch was sent.
    pub(crate) attempts: u32,
    /// Not to be sent again before this instant (retry backoff).
    pub(crate) retry_at: Option<Instant>,
    /// Idempotence: the base sequence, assigned when first sent and kept across retries.
    pub(crate) base_sequence: Option<i32>,
    /// A send of this batch ended without a clear answer (timeout, lost connection): the
    /// broker may have appended it. Such a batch is never re-sent under a new epoch.
    pub(crate) possibly_persisted: bool,
    /// The last retriable error, reported if the delivery timeout expires.
    pub(crate) last_error: Option<Error>,
}

impl ProducerBatch {
    pub(crate) fn topic(&self) -> &Arc<str> {
        &self.owner.completion.topic
    }

    pub(crate) fn partition(&self) -> i32 {
        self.owner.completion.partition
    }

    pub(crate) fn finish(self, result: Result<BatchOutcome>) {
        self.owner.finish(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_record_of_a_batch_resolves_with_its_offset() {
        let batch = BatchCompletion::new("t".into(), 3, 0);
        let futures: Vec<_> = (0..3)
            .map(|i| tokio::spawn(DeliveryFuture::new(batch.clone(), i, 100 + i as i64)))
            .collect();
        tokio::task::yield_now().await;
        batch.complete(Ok(BatchOutcome {
            base_offset: 40,
            log_append_time: None,
        }));
        for (i, f) in futures.into_iter().enumerate() {
            let m = f.await.unwrap().unwrap();
            assert_eq!(
                (m.partition, m.offset, m.timestamp),
                (3, 40 + i as i64, 100 + i as i64)
            );
        }
    }

    #[tokio::test]
    async fn failure_reaches_every_record_and_first_outcome_wins() {
        let batch = BatchCompletion::new("t".into(), 0, 0);
        let f = DeliveryFuture::new(batch.clone(), 0, 1);
        batch.complete(Err(Error::Closed));
        batch.complete(Ok(BatchOutcome {
            base_offset: 1,
            log_append_time: None,
        }));
        assert!(matches!(f.await, Err(Error::Closed)));
        assert!(batch.is_complete());
    }

    #[tokio::test]
    async fn log_append_time_and_acks0_offsets() {
        let batch = BatchCompletion::new("t".into(), 0, 0);
        batch.complete(Ok(BatchOutcome {
            base_offset: -1,
            log_append_time: Some(999),
        }));
        let m = DeliveryFuture::new(batch, 5, 1).await.unwrap();
        assert_eq!((m.offset, m.timestamp), (-1, 999));
    }

    /// An application holds one future per record in flight (hundreds of thousands while a
    /// full buffer drains): their size is its memory.
    #[test]
    fn a_delivery_future_is_16_bytes() {
        assert_eq!(std::mem::size_of::<DeliveryFuture>(), 16);
        assert_eq!(std::mem::size_of::<Option<DeliveryFuture>>(), 16);
    }

    /// Timestamps are the application's: any distance from the batch's first one, in either
    /// direction, comes back exactly, with or without an explicit partition.
    #[tokio::test]
    async fn timestamps_far_from_the_batch_start_come_back_exactly() {
        let base = 1_700_000_000_000;
        let batch = BatchCompletion::new("t".into(), 2, base);
        let stamps = [
            base,
            base + 5,
            base - 5,
            base + i64::from(i32::MAX),
            base + i64::from(i32::MIN), // the sentinel's own value, stored far
            0,
            -1,
            i64::MAX,
            i64::MIN,
        ];
        let futures: Vec<_> = stamps
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let f = DeliveryFuture::new(batch.clone(), i as i32, t);
                if i % 2 == 0 {
                    f.explicit_partition()
                } else {
                    f
                }
            })
            .collect();
        batch.complete(Ok(BatchOutcome {
            base_offset: 10,
            log_append_time: None,
        }));
        for (i, f) in futures.into_iter().enumerate() {
            let m = f.await.unwrap();
            assert_eq!(
                (m.offset, m.timestamp),
                (10 + i as i64, stamps[i]),
                "record {i}"
            );
        }
        assert_eq!(batch.far_timestamps.lock().unwrap().len(), 5);
    }

    /// A failed record given back keeps its partition choice and its far timestamp.
    #[tokio::test]
    async fn a_failed_record_keeps_its_explicit_partition_and_timestamp() {
        let batch = BatchCompletion::new("t".into(), 4, 1_000);
        let chosen = DeliveryFuture::new(batch.clone(), 0, 1_000 + (1 << 40))
            .explicit_partition()
            .with_record();
        let picked = DeliveryFuture::new(batch.clone(), 1, 1_001).with_record();
        batch.complete(Err(Error::Closed));
        let chosen = chosen.await.unwrap_err().record;
        assert_eq!(
            (chosen.partition, chosen.timestamp),
            (Some(4), Some(1_000 + (1 << 40)))
        );
        let picked = picked.await.unwrap_err().record;
        assert_eq!((picked.partition, picked.timestamp), (None, Some(1_001)));
    }
}
