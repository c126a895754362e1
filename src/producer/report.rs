//! Delivery reports: a handler the application gives the producer once, called with every
//! record's outcome — the Java client's `send(record, callback)` and librdkafka's delivery
//! report callback, without a callback object per record.
//!
//! Why a handler per producer: an application that only needs to count, log or dead-letter
//! outcomes otherwise keeps a [`DeliveryFuture`](super::DeliveryFuture) for every record in
//! flight — 16 bytes each, hundreds of thousands while a full buffer drains (8 MiB of the
//! benchmark's peak RSS at 100 B records, docs/PERFORMANCE.md stop 27) — and polls them. A
//! boxed closure per record, as Java has, would put an allocation on every `send`. The handler
//! is called once per record from the batch's outcome, which the producer keeps anyway; the
//! only per-record state is the record count of its batch.
//!
//! Where it runs: wherever the batch is decided — the producer's sender task for broker
//! answers and timeouts, or the code dropping the producer for batches failed with
//! `ProducerDropped`. It runs before the batch's bytes go back to `buffer.memory`, so a slow
//! handler slows `send` instead of queueing reports without bound; it must not block (as
//! Java's callbacks, it holds up the producer's I/O). A handler that panics loses that one
//! report (logged, as the Java client logs a callback's exception), never the producer: the
//! panic would otherwise end the sender task and leave every later record undecided.

use std::sync::Arc;

use crate::error::Error;
use crate::record::{Record, Topic};

use super::batch::{BatchCompletion, BatchOutcome};

/// One record's outcome, given to the handler set with
/// [`ProducerBuilder::on_delivery`](super::ProducerBuilder::on_delivery).
///
/// Delivered: the topic, partition and offset. Failed: the error, and the record itself,
/// decoded back from its batch (the producer keeps no copy of a delivered record), ready to be
/// re-sent or written to a dead-letter topic.
#[derive(Debug)]
pub struct Delivery<'a> {
    topic: &'a Arc<str>,
    partition: i32,
    offset: i64,
    error: Option<&'a Error>,
    record: Option<Record>,
}

impl<'a> Delivery<'a> {
    /// The record's topic.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// The partition the record was written to (or was bound for, when it failed).
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The record's offset; `None` when it failed, or with `acks=0` (the broker does not say).
    pub fn offset(&self) -> Option<i64> {
        (self.error.is_none() && self.offset >= 0).then_some(self.offset)
    }

    /// Why the record was not delivered; `None` when it was.
    pub fn error(&self) -> Option<&'a Error> {
        self.error
    }

    /// Whether the record was delivered.
    pub fn is_delivered(&self) -> bool {
        self.error.is_none()
    }

    /// The failed record as it was sent (key, value, headers, timestamp; `partition` unset),
    /// taken out of this report; `None` when it was delivered or was taken already.
    pub fn take_record(&mut self) -> Option<Record> {
        self.record.take()
    }
}

/// The handler set with `ProducerBuilder::on_delivery`, shared by the producer's batches.
#[derive(Clone)]
pub(crate) struct DeliveryHandler(Arc<dyn Fn(Delivery<'_>) + Send + Sync>);

impl std::fmt::Debug for DeliveryHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryHandler")
    }
}

impl DeliveryHandler {
    pub(crate) fn new(f: impl Fn(Delivery<'_>) + Send + Sync + 'static) -> DeliveryHandler {
        DeliveryHandler(Arc::new(f))
    }

    fn call(&self, delivery: Delivery<'_>) {
        let (topic, partition) = (delivery.topic, delivery.partition);
        let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)(delivery)));
        if called.is_err() {
            tracing::error!(%topic, partition, "the delivery handler panicked; report lost");
        }
    }

    /// Reports the `records` records of `batch`, decided with `result`, in offset order.
    pub(crate) fn report(
        &self,
        batch: &BatchCompletion,
        records: i32,
        result: &Result<BatchOutcome, Error>,
    ) {
        match result {
            Ok(BatchOutcome { base_offset, .. }) => {
                for i in 0..records {
                    self.call(Delivery {
                        topic: &batch.topic,
                        partition: batch.partition,
                        offset: if *base_offset < 0 {
                            -1
                        } else {
                            base_offset + i64::from(i)
                        },
                        error: None,
                        record: None,
                    });
                }
            }
            Err(error) => {
                // Decoded once for the whole batch: a failure is rare, a batch holds
                // thousands of records.
                let mut decoded = batch.failed_records(Topic::from(&batch.topic)).into_iter();
                for _ in 0..records {
                    self.call(Delivery {
                        topic: &batch.topic,
                        partition: batch.partition,
                        offset: -1,
                        error: Some(error),
                        record: decoded.next(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::protocol::records::BatchBuilder;

    type Seen = Arc<Mutex<Vec<(String, i32, Option<i64>, bool, Option<Record>)>>>;

    fn recording() -> (DeliveryHandler, Seen) {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        let handler = DeliveryHandler::new(move |mut d: Delivery<'_>| {
            let record = d.take_record();
            s.lock().unwrap().push((
                d.topic().to_string(),
                d.partition(),
                d.offset(),
                d.is_delivered(),
                record,
            ));
        });
        (handler, seen)
    }

    #[test]
    fn every_record_of_a_delivered_batch_gets_its_offset() {
        let (handler, seen) = recording();
        let batch = BatchCompletion::new("t".into(), 3, 0);
        let outcome = Ok(BatchOutcome {
            base_offset: 100,
            log_append_time: None,
        });
        handler.report(&batch, 3, &outcome);
        let seen = seen.lock().unwrap();
        let offsets: Vec<_> = seen.iter().map(|s| s.2).collect();
        assert_eq!(offsets, [Some(100), Some(101), Some(102)]);
        assert!(seen
            .iter()
            .all(|s| s.0 == "t" && s.1 == 3 && s.3 && s.4.is_none()));
    }

    #[test]
    fn a_panicking_handler_loses_its_report_not_the_others() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let handler = DeliveryHandler::new(move |d: Delivery<'_>| {
            let offset = d.offset().unwrap();
            assert_ne!(offset, 1, "an application bug");
            s.lock().unwrap().push(offset);
        });
        let outcome = Ok(BatchOutcome {
            base_offset: 0,
            log_append_time: None,
        });
        handler.report(&BatchCompletion::new("t".into(), 0, 0), 3, &outcome);
        assert_eq!(*seen.lock().unwrap(), [0, 2]);
    }

    #[test]
    fn acks_zero_reports_delivery_without_an_offset() {
        let (handler, seen) = recording();
        let batch = BatchCompletion::new("t".into(), 0, 0);
        let outcome = Ok(BatchOutcome {
            base_offset: -1,
            log_append_time: None,
        });
        handler.report(&batch, 2, &outcome);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| s.2.is_none() && s.3));
    }

    #[test]
    fn a_failed_batch_reports_each_record_back_with_the_error() {
        let (handler, seen) = recording();
        let mut builder = BatchBuilder::new(256);
        builder.append(10, Some(b"k0"), Some(b"v0"), &[]);
        builder.append(11, None, Some(b"v1"), &[]);
        let bytes = builder
            .finish(crate::compression::Compression::Lz4, None)
            .unwrap()
            .freeze();
        let batch = BatchCompletion::new("orders".into(), 1, 10);
        batch.keep_failed_batch(bytes);
        handler.report(&batch, 2, &Err(Error::Closed));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| !s.3 && s.2.is_none()));
        let r0 = seen[0].4.as_ref().expect("first record given back");
        assert_eq!(r0.topic, "orders");
        assert_eq!(r0.key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(r0.value.as_deref(), Some(&b"v0"[..]));
        assert_eq!(r0.timestamp, Some(10));
        let r1 = seen[1].4.as_ref().expect("second record given back");
        assert_eq!(r1.key, None);
        assert_eq!(r1.value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(r1.timestamp, Some(11));
    }
}
