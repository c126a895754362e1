//! Producer metrics: records and bytes acknowledged, batch size and fill, records per request,
//! queue time, retries, errors by name, buffer use and the time `send` waited for it.
//!
//! Ownership: the producer's sender task writes everything except the buffer wait, once per
//! Produce request and once per batch outcome; `send` adds to the buffer wait only when it had
//! to wait (the slow path). Nothing is touched per record: record counts arrive with their
//! batch, so an atomic add per batch is the whole cost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::export::{self, Counter, Gauge, Histo};
use super::histogram::{
    Histogram, HistogramSnapshot, COUNT_BOUNDS, LATENCY_BOUNDS, RATIO_BOUNDS, SIZE_BOUNDS,
};
use super::names;
use crate::error::Error;

/// One sent batch, as the sender sees it when building a Produce request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentBatch {
    pub(crate) bytes: usize,
    pub(crate) records: i32,
    /// Times it was sent before this request (0: first send).
    pub(crate) attempts: u32,
    /// Since its first record was appended.
    pub(crate) age: Duration,
}

#[derive(Debug)]
pub(crate) struct ProducerStats {
    client_id: Arc<str>,
    batch_size_cfg: usize,
    records_sent: AtomicU64,
    bytes_sent: AtomicU64,
    batches_sent: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    record_errors: AtomicU64,
    buffer_wait_nanos: AtomicU64,
    /// Failed records by error name; touched only when a batch fails for good.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    batch_size: Histogram,
    batch_fill: Histogram,
    records_per_request: Histogram,
    queue_time: Histogram,
    buffer_wait: Histogram,
    export: ProducerExport,
}

#[derive(Debug)]
struct ProducerExport {
    records_sent: Counter,
    bytes_sent: Counter,
    batches_sent: Counter,
    requests: Counter,
    retries: Counter,
    batch_size: Histo,
    batch_fill: Histo,
    records_per_request: Histo,
    queue_time: Histo,
    buffer_used: Gauge,
    buffer_wait: Histo,
}

impl ProducerStats {
    pub(crate) fn new(client_id: &str, batch_size_cfg: usize) -> ProducerStats {
        export::describe_all();
        let client_id: Arc<str> = client_id.into();
        let l = export::labels(&client_id, &[]);
        ProducerStats {
            batch_size_cfg: batch_size_cfg.max(1),
            records_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            batches_sent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            record_errors: AtomicU64::new(0),
            buffer_wait_nanos: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            batch_size: Histogram::new(SIZE_BOUNDS),
            batch_fill: Histogram::new(RATIO_BOUNDS),
            records_per_request: Histogram::new(COUNT_BOUNDS),
            queue_time: Histogram::new(LATENCY_BOUNDS),
            buffer_wait: Histogram::new(LATENCY_BOUNDS),
            export: ProducerExport {
                records_sent: Counter::new(names::RECORDS_SENT, &l),
                bytes_sent: Counter::new(names::BYTES_SENT, &l),
                batches_sent: Counter::new(names::BATCHES_SENT, &l),
                requests: Counter::new(names::PRODUCE_REQUESTS, &l),
                retries: Counter::new(names::RETRIES, &l),
                batch_size: Histo::new(names::BATCH_SIZE, &l),
                batch_fill: Histo::new(names::BATCH_FILL, &l),
                records_per_request: Histo::new(names::RECORDS_PER_REQUEST, &l),
                queue_time: Histo::new(names::QUEUE_TIME, &l),
                buffer_used: Gauge::new(names::BUFFER_USED, &l),
                buffer_wait: Histo::new(names::BUFFER_WAIT, &l),
            },
            client_id,
        }
    }

    /// Sender task: a Produce request with these batches is about to go out.
    pub(crate) fn request(&self, batches: impl IntoIterator<Item = SentBatch>) {
        let mut records = 0u64;
        for b in batches {
            records += b.records.max(0) as u64;
            if b.attempts > 0 {
                continue;
            }
            // First send: the batch's size, fill and queue time (a retry would count twice).
            let fill = b.bytes as f64 / self.batch_size_cfg as f64;
            let age = b.age.as_secs_f64();
            self.batch_size.record(b.bytes as f64);
            self.batch_fill.record(fill);
            self.queue_time.record(age);
            self.export.batch_size.record(b.bytes as f64);
            self.export.batch_fill.record(fill);
            self.export.queue_time.record(age);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.records_per_request.record(records as f64);
        self.export.requests.add(1);
        self.export.records_per_request.record(records as f64);
    }

    /// Sender task: the broker acknowledged a batch (acks=0: it was written).
    pub(crate) fn acknowledged(&self, bytes: usize, records: i32) {
        let records = records.max(0) as u64;
        self.records_sent.fetch_add(records, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.batches_sent.fetch_add(1, Ordering::Relaxed);
        self.export.records_sent.add(records);
        self.export.bytes_sent.add(bytes as u64);
        self.export.batches_sent.add(1);
    }

    /// Sender task: a batch goes back to its queue for another attempt.
    pub(crate) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.export.retries.add(1);
    }

    /// Sender task: a batch failed for good.
    pub(crate) fn failed(&self, records: i32, error: &Error) {
        let records = records.max(0) as u64;
        let name = error_name(error);
        self.record_errors.fetch_add(records, Ordering::Relaxed);
        *self.errors.lock().unwrap().entry(name).or_default() += records;
        if export::ENABLED {
            let l = export::labels(&self.client_id, &[("error", name.to_owned())]);
            Counter::new(names::RECORD_ERRORS, &l).add(records);
        }
    }

    /// Sender task: `records` expired in the queue (`delivery.timeout.ms`) before being
    /// sent; they fail with a timeout.
    pub(crate) fn expired(&self, records: i32) {
        if records > 0 {
            let timeout = Error::Timeout {
                operation: "delivery".into(),
                after: Duration::ZERO,
                last: None,
            };
            self.failed(records, &timeout);
        }
    }

    /// `send` waited this long for buffer space.
    pub(crate) fn waited_for_buffer(&self, waited: Duration) {
        let nanos = waited.as_nanos().min(u64::MAX as u128) as u64;
        self.buffer_wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.buffer_wait.record_duration(waited);
        self.export.buffer_wait.record(waited.as_secs_f64());
    }

    /// Sender task: the buffer now holds this many bytes (published per request/response).
    pub(crate) fn buffer_used(&self, bytes: usize) {
        self.export.buffer_used.set(bytes as f64);
    }

    pub(crate) fn snapshot(&self, buffer_used: usize, buffer_total: usize) -> ProducerMetrics {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProducerMetrics {
            records_sent: load(&self.records_sent),
            bytes_sent: load(&self.bytes_sent),
            batches_sent: load(&self.batches_sent),
            requests: load(&self.requests),
            retries: load(&self.retries),
            record_errors: load(&self.record_errors),
            errors: self
                .errors
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            batch_size: self.batch_size.snapshot(),
            batch_fill: self.batch_fill.snapshot(),
            records_per_request: self.records_per_request.snapshot(),
            queue_time: self.queue_time.snapshot(),
            buffer_used,
            buffer_total,
            buffer_wait: self.buffer_wait.snapshot(),
            buffer_wait_total: Duration::from_nanos(load(&self.buffer_wait_nanos)),
        }
    }
}

/// A short, stable name for an error: the Kafka error name (`NOT_LEADER_OR_FOLLOWER`), else
/// the variant (`Timeout`, `Disconnected`, …).
pub(crate) fn error_name(e: &Error) -> &'static str {
    if let Some(code) = e.kafka_code() {
        return code.name();
    }
    match e {
        Error::Timeout { .. } => "Timeout",
        Error::Disconnected { .. } => "Disconnected",
        Error::Connect { .. } => "Connect",
        Error::Closed => "Closed",
        Error::BufferFull => "BufferFull",
        Error::InvalidInput(_) => "InvalidInput",
        _ => "Other",
    }
}

/// A snapshot of a producer's metrics. Totals since the producer was built.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records the broker acknowledged (`record-send-total`; with acks=0: written).
    pub records_sent: u64,
    /// Bytes of the record batches acknowledged, as sent (after compression).
    pub bytes_sent: u64,
    /// Record batches acknowledged.
    pub batches_sent: u64,
    /// Produce requests sent, retries included.
    pub requests: u64,
    /// Batches sent again after a retriable error (`record-retry-total`, per batch).
    pub retries: u64,
    /// Records whose delivery failed for good (`record-error-total`).
    pub record_errors: u64,
    /// Those failed records by error name (`NOT_ENOUGH_REPLICAS`, `Timeout`, …).
    pub errors: BTreeMap<String, u64>,
    /// Size of each batch when first sent, in bytes (after compression).
    pub batch_size: HistogramSnapshot,
    /// Each batch's size when first sent as a fraction of `batch.size`.
    pub batch_fill: HistogramSnapshot,
    /// Records per Produce request.
    pub records_per_request: HistogramSnapshot,
    /// Seconds from a batch's first record to its first send (`record-queue-time`).
    pub queue_time: HistogramSnapshot,
    /// Bytes of `buffer.memory` held by records not yet delivered.
    pub buffer_used: usize,
    /// `buffer.memory`.
    pub buffer_total: usize,
    /// Each wait of `send` for buffer space, in seconds.
    pub buffer_wait: HistogramSnapshot,
    /// All that waiting together (`bufferpool-wait-time-total`).
    pub buffer_wait_total: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::KafkaCode;

    fn batch(bytes: usize, records: i32, attempts: u32) -> SentBatch {
        SentBatch {
            bytes,
            records,
            attempts,
            age: Duration::from_millis(5),
        }
    }

    #[test]
    fn batches_are_measured_on_their_first_send_and_counted_when_acknowledged() {
        let s = ProducerStats::new("p", 1000);
        s.request([batch(500, 10, 0), batch(1000, 20, 0)]);
        // A retry of the first: counts in records per request, not again in sizes.
        s.retried();
        s.request([batch(500, 10, 1)]);
        s.acknowledged(500, 10);
        s.acknowledged(1000, 20);
        s.failed(
            7,
            &Error::Broker {
                code: KafkaCode::NotEnoughReplicas,
                message: None,
                context: "t".into(),
            },
        );
        s.failed(3, &Error::BufferFull);
        s.waited_for_buffer(Duration::from_millis(20));
        let m = s.snapshot(100, 1000);
        assert_eq!(
            (m.records_sent, m.bytes_sent, m.batches_sent),
            (30, 1500, 2)
        );
        assert_eq!((m.requests, m.retries, m.record_errors), (2, 1, 10));
        assert_eq!(m.errors["NOT_ENOUGH_REPLICAS"], 7);
        assert_eq!(m.errors["BufferFull"], 3);
        assert_eq!(m.batch_size.count, 2);
        assert_eq!(m.batch_size.sum, 1500.0);
        assert_eq!(m.batch_fill.sum, 1.5);
        assert_eq!(m.records_per_request.sum, 40.0);
        assert_eq!(m.queue_time.count, 2);
        assert_eq!((m.buffer_used, m.buffer_total), (100, 1000));
        assert_eq!(m.buffer_wait_total, Duration::from_millis(20));
    }
}
