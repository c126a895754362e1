//! Batches in the producer and the futures their records' senders wait on.
//!
//! A record's delivery is decided with its batch's, so the outcome lives once per batch in a
//! [`BatchCompletion`]; each record's [`DeliveryFuture`] holds an `Arc` to it and the record's
//! offset delta. That keeps the per-record cost of `send` at one reference-count increment —
//! no channel, no allocation — and a future nobody awaits costs nothing at completion.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::record::RecordMetadata;

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
    result: OnceLock<Result<BatchOutcome>>,
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
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> Arc<BatchCompletion> {
        Arc::new(BatchCompletion {
            topic,
            partition,
            result: OnceLock::new(),
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
        offset_delta: i32,
        timestamp: i64,
    },
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            DeliveryInner::Pending {
                batch,
                offset_delta,
                ..
            } => f
                .debug_struct("DeliveryFuture")
                .field("batch", batch)
                .field("offset_delta", offset_delta)
                .finish(),
        }
    }
}

impl DeliveryFuture {
    pub(crate) fn new(batch: Arc<BatchCompletion>, offset_delta: i32, timestamp: i64) -> Self {
        DeliveryFuture {
            inner: DeliveryInner::Pending {
                batch,
                offset_delta,
                timestamp,
            },
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            DeliveryInner::Pending {
                batch,
                offset_delta,
                timestamp,
            } => {
                let ready = |r: &Result<BatchOutcome>| match r {
                    Ok(o) => Ok(RecordMetadata {
                        topic: batch.topic.clone(),
                        partition: batch.partition,
                        offset: if o.base_offset < 0 {
                            -1
                        } else {
                            o.base_offset + *offset_delta as i64
                        },
                        timestamp: o.log_append_time.unwrap_or(*timestamp),
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
    shared: Arc<super::accumulator::Shared>,
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
            shared,
        }
    }

    /// Adds `bytes` of already acquired budget to what this batch gives back.
    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.reserved += bytes;
    }

    pub(crate) fn finish(mut self, result: Result<BatchOutcome>) {
        self.settle(result);
    }

    fn settle(&mut self, result: Result<BatchOutcome>) {
        if self.completion.is_complete() {
            return;
        }
        self.completion.complete(result);
        self.shared
            .release(self.id, std::mem::take(&mut self.reserved));
    }
}

impl Drop for BatchOwner {
    fn drop(&mut self) {
        self.settle(Err(Error::Closed));
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
        let batch = BatchCompletion::new("t".into(), 3);
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
        let batch = BatchCompletion::new("t".into(), 0);
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
        let batch = BatchCompletion::new("t".into(), 0);
        batch.complete(Ok(BatchOutcome {
            base_offset: -1,
            log_append_time: Some(999),
        }));
        let m = DeliveryFuture::new(batch, 5, 1).await.unwrap();
        assert_eq!((m.offset, m.timestamp), (-1, 999));
    }
}
