//! Consumer metrics: records handed out and fetched, bytes, fetch latency, lag per partition
//! and max lag (from the Fetch high watermark), rebalances and their duration, commits and
//! their latency, time since the last poll.
//!
//! Ownership: `recv` publishes its record count with a plain store per call (the existing
//! counter, never a read-modify-write per record); the fetcher task adds per Fetch response
//! and partition; the group task per rebalance; commits per OffsetCommit. Lag is not stored:
//! a snapshot computes it from each partition's high watermark (written by the fetcher) and
//! consumed position (written by `recv`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::export::{self, Counter, Gauge, Histo};
use super::histogram::{Histogram, HistogramSnapshot};
use super::names;
use crate::consumer::TopicPartition;

/// What a lag computation needs of one assigned partition.
#[derive(Debug, Clone)]
pub(crate) struct PartitionView {
    pub(crate) tp: TopicPartition,
    /// Log end offset from the last Fetch answer; -1 before one.
    pub(crate) high_watermark: i64,
    /// The next offset the application gets; -1 before its first record.
    pub(crate) consumed: i64,
}

#[derive(Debug)]
pub(crate) struct ConsumerStats {
    client_id: Arc<str>,
    /// Records handed to the application: stored (not added) by `recv`, the only writer.
    pub(crate) records: AtomicU64,
    pub(crate) rebalances: AtomicU64,
    pub(crate) poll_interval_exceeded: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) commit_failures: AtomicU64,
    records_fetched: AtomicU64,
    bytes_fetched: AtomicU64,
    fetches: AtomicU64,
    fetch_latency: Histogram,
    rebalance_latency: Histogram,
    commit_latency: Histogram,
    /// (poll count last seen, when it was seen to change): "time since last poll" is measured
    /// by whoever looks (a snapshot, the group task), so `recv` never reads a clock for it.
    last_poll: Mutex<(u64, Instant)>,
    export: ConsumerExport,
}

#[derive(Debug)]
struct ConsumerExport {
    records: Counter,
    records_fetched: Counter,
    bytes_fetched: Counter,
    fetches: Counter,
    fetch_latency: Histo,
    rebalances: Counter,
    rebalance_latency: Histo,
    commits: Counter,
    commit_failures: Counter,
    commit_latency: Histo,
    lag_max: Gauge,
    last_poll: Gauge,
}

impl ConsumerStats {
    pub(crate) fn new(client_id: &str) -> ConsumerStats {
        export::describe_all();
        let client_id: Arc<str> = client_id.into();
        let l = export::labels(&client_id, &[]);
        ConsumerStats {
            records: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
            poll_interval_exceeded: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            records_fetched: AtomicU64::new(0),
            bytes_fetched: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            fetch_latency: Histogram::latency(),
            rebalance_latency: Histogram::latency(),
            commit_latency: Histogram::latency(),
            last_poll: Mutex::new((0, Instant::now())),
            export: ConsumerExport {
                records: Counter::new(names::RECORDS_CONSUMED, &l),
                records_fetched: Counter::new(names::RECORDS_FETCHED, &l),
                bytes_fetched: Counter::new(names::BYTES_FETCHED, &l),
                fetches: Counter::new(names::FETCHES, &l),
                fetch_latency: Histo::new(names::FETCH_LATENCY, &l),
                rebalances: Counter::new(names::REBALANCES, &l),
                rebalance_latency: Histo::new(names::REBALANCE_LATENCY, &l),
                commits: Counter::new(names::COMMITS, &l),
                commit_failures: Counter::new(names::COMMIT_FAILURES, &l),
                commit_latency: Histo::new(names::COMMIT_LATENCY, &l),
                lag_max: Gauge::new(names::LAG_MAX, &l),
                last_poll: Gauge::new(names::LAST_POLL, &l),
            },
            client_id,
        }
    }

    /// Fetcher task: a Fetch was answered (or failed) after `took`.
    pub(crate) fn fetch_done(&self, took: Duration) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.fetch_latency.record_duration(took);
        self.export.fetches.add(1);
        self.export.fetch_latency.record(took.as_secs_f64());
    }

    /// Fetcher task: one partition's answer decoded into `records` records from `bytes`
    /// bytes of complete record batches.
    pub(crate) fn decoded(&self, records: usize, bytes: usize) {
        self.records_fetched
            .fetch_add(records as u64, Ordering::Relaxed);
        self.bytes_fetched
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.export.records_fetched.add(records as u64);
        self.export.bytes_fetched.add(bytes as u64);
    }

    /// Group task: a rebalance completed (JoinGroup through SyncGroup) after `took`.
    pub(crate) fn rebalanced(&self, took: Duration) {
        self.rebalance_latency.record_duration(took);
        self.export.rebalances.add(1);
        self.export.rebalance_latency.record(took.as_secs_f64());
    }

    /// An OffsetCommit round trip ended after `took`. (The success and failure counts are
    /// the consumer's own `commits` / `commit_failures`.)
    pub(crate) fn committed(&self, took: Duration, ok: bool) {
        self.commit_latency.record_duration(took);
        self.export.commit_latency.record(took.as_secs_f64());
        if ok {
            self.export.commits.add(1);
        } else {
            self.export.commit_failures.add(1);
        }
    }

    /// Time since the application last polled, given the poll counter and whether a `recv`
    /// is waiting right now (waiting counts as polling).
    pub(crate) fn since_last_poll(&self, polls: u64, waiting: bool) -> Duration {
        let mut last = self.last_poll.lock().unwrap();
        if polls != last.0 || waiting {
            *last = (polls, Instant::now());
        }
        last.1.elapsed()
    }

    /// Publishes what is not recorded at an event (records handed out, lag, last poll) to the
    /// exporter. Called by the fetcher after each Fetch response and by the group task on its
    /// poll check; does nothing without the `metrics` feature.
    /// `parts` is only called with the feature on.
    pub(crate) fn publish(&self, parts: impl FnOnce() -> Vec<PartitionView>) {
        if !export::ENABLED {
            return;
        }
        self.export
            .records
            .absolute(self.records.load(Ordering::Relaxed));
        let mut max = 0;
        for p in parts() {
            let Some(lag) = lag_of(&p) else { continue };
            max = max.max(lag);
            let l = export::labels(
                &self.client_id,
                &[
                    ("topic", p.tp.topic.to_string()),
                    ("partition", p.tp.partition.to_string()),
                ],
            );
            Gauge::new(names::LAG, &l).set(lag as f64);
        }
        self.export.lag_max.set(max as f64);
    }

    /// Publishes the time since the last poll (group task, on its poll check).
    pub(crate) fn publish_last_poll(&self, since: Duration) {
        self.export.last_poll.set(since.as_secs_f64());
    }

    pub(crate) fn snapshot(
        &self,
        parts: impl IntoIterator<Item = PartitionView>,
        since_last_poll: Duration,
    ) -> ConsumerMetrics {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut partitions: Vec<PartitionLag> = parts
            .into_iter()
            .map(|p| PartitionLag {
                lag: lag_of(&p),
                high_watermark: (p.high_watermark >= 0).then_some(p.high_watermark),
                position: (p.consumed >= 0).then_some(p.consumed),
                partition: p.tp,
            })
            .collect();
        partitions.sort_by(|a, b| a.partition.cmp(&b.partition));
        ConsumerMetrics {
            records: load(&self.records),
            rebalances: load(&self.rebalances),
            poll_interval_exceeded: load(&self.poll_interval_exceeded),
            commits: load(&self.commits),
            commit_failures: load(&self.commit_failures),
            records_fetched: load(&self.records_fetched),
            bytes_fetched: load(&self.bytes_fetched),
            fetches: load(&self.fetches),
            fetch_latency: self.fetch_latency.snapshot(),
            rebalance_latency: self.rebalance_latency.snapshot(),
            commit_latency: self.commit_latency.snapshot(),
            max_lag: partitions.iter().filter_map(|p| p.lag).max(),
            partitions,
            since_last_poll,
        }
    }
}

/// High watermark minus the next offset the application gets; `None` while either is unknown.
fn lag_of(p: &PartitionView) -> Option<u64> {
    (p.high_watermark >= 0 && p.consumed >= 0)
        .then(|| (p.high_watermark - p.consumed).max(0) as u64)
}

/// A snapshot of a consumer's metrics. Counters are totals since the consumer was built.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ConsumerMetrics {
    /// Records handed to the application (`records-consumed-total`).
    pub records: u64,
    /// Group joins completed (each rebalance this member took part in).
    pub rebalances: u64,
    /// Times the application went longer than `max.poll.interval.ms` between calls and the
    /// consumer left its group.
    pub poll_interval_exceeded: u64,
    /// Successful commits.
    pub commits: u64,
    /// Failed commits.
    pub commit_failures: u64,
    /// Records fetched and decoded (before the application takes them; read_committed:
    /// aborted records are not counted).
    pub records_fetched: u64,
    /// Bytes of the complete record batches fetched and decoded (`bytes-consumed-total`), as
    /// on the wire: for records produced by one producer, its `bytes_sent`.
    pub bytes_fetched: u64,
    /// Fetch requests answered or failed.
    pub fetches: u64,
    /// Seconds from sending each Fetch to its answer (long polls included).
    pub fetch_latency: HistogramSnapshot,
    /// Seconds each completed rebalance took, from starting to join to the assignment.
    pub rebalance_latency: HistogramSnapshot,
    /// Seconds of each OffsetCommit round trip.
    pub commit_latency: HistogramSnapshot,
    /// Lag per assigned partition, sorted.
    pub partitions: Vec<PartitionLag>,
    /// The largest lag of [`ConsumerMetrics::partitions`] (`records-lag-max`); `None` while
    /// no partition's lag is known.
    pub max_lag: Option<u64>,
    /// Time since the application last called `recv`/`recv_batch` (zero while it waits in
    /// one); measured when a snapshot is taken, so it is exact to the snapshot's moment.
    pub since_last_poll: Duration,
}

/// One assigned partition's lag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The log end offset (high watermark; with read_committed still the high watermark) of
    /// the last Fetch answer; `None` before one.
    pub high_watermark: Option<i64>,
    /// The next offset the application gets; `None` before its first record.
    pub position: Option<i64>,
    /// `high_watermark - position` (`records-lag`), `None` while either is unknown.
    pub lag: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(p: i32, hw: i64, consumed: i64) -> PartitionView {
        PartitionView {
            tp: TopicPartition::new("t", p),
            high_watermark: hw,
            consumed,
        }
    }

    #[test]
    fn lag_is_high_watermark_minus_position_and_max_is_the_largest() {
        let s = ConsumerStats::new("c");
        s.records.store(12, Ordering::Relaxed);
        s.decoded(12, 1200);
        s.fetch_done(Duration::from_millis(3));
        let m = s.snapshot(
            [
                view(2, 10, -1),
                view(0, 10, 4),
                view(1, 7, 7),
                view(3, -1, 3),
            ],
            Duration::ZERO,
        );
        let lags: Vec<Option<u64>> = m.partitions.iter().map(|p| p.lag).collect();
        assert_eq!(lags, vec![Some(6), Some(0), None, None]);
        assert_eq!(m.max_lag, Some(6));
        assert_eq!(m.partitions[0].position, Some(4));
        assert_eq!(
            (m.records, m.records_fetched, m.bytes_fetched),
            (12, 12, 1200)
        );
        assert_eq!((m.fetches, m.fetch_latency.count), (1, 1));
        let none = s.snapshot([view(0, -1, -1)], Duration::ZERO);
        assert_eq!(none.max_lag, None);
    }

    #[test]
    fn time_since_last_poll_restarts_when_the_counter_moves_or_recv_waits() {
        let s = ConsumerStats::new("c");
        s.since_last_poll(1, false);
        std::thread::sleep(Duration::from_millis(30));
        assert!(s.since_last_poll(1, false) >= Duration::from_millis(30));
        assert!(s.since_last_poll(2, false) < Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(30));
        assert!(s.since_last_poll(2, true) < Duration::from_millis(30));
    }
}
