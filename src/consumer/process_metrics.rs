//! Metrics of concurrent processing: a plain snapshot the driver publishes and a
//! [`crate::ProcessHandle`] reads.
//!
//! The driver (process.rs) owns the live counters and the latency histogram; it copies them
//! into the shared snapshot every 100 ms and when it stops, so reading metrics never
//! contends with the per-record path.

use std::time::Duration;

use crate::consumer::record::TopicPartition;

/// A snapshot of a processor's counters (at most about 100 ms old).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ProcessMetrics {
    /// Handler calls in progress (retries and dead-letter sends included).
    pub in_flight: usize,
    /// Records taken from the consumer, waiting for their key or partition or a free slot.
    pub queued: usize,
    /// Bytes of records taken and not done yet (the `max_held_bytes` budget).
    pub held_bytes: usize,
    /// Records done and not covered by a successful commit yet, all partitions.
    pub done_not_committed: u64,
    /// Records whose handler succeeded.
    pub processed: u64,
    /// Records skipped after failing (`FailureAction::Skip`).
    pub skipped: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Handler retries after a failure (errors and panics).
    pub retries: u64,
    /// Handler calls that panicked (each counted once per attempt).
    pub panics: u64,
    /// Records not processed because a restart's commit metadata listed them as done.
    pub already_done: u64,
    /// Successful commits made by the processor.
    pub commits: u64,
    /// Failed commits.
    pub commit_failures: u64,
    /// Handler latency of successful calls.
    pub handler_latency: LatencySummary,
    /// Per assigned partition, sorted.
    pub partitions: Vec<PartitionProcessMetrics>,
}

/// Processing state of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionProcessMetrics {
    /// The partition.
    pub partition: TopicPartition,
    /// The first offset not done yet: what the next commit stores.
    pub committable: i64,
    /// The last offset committed by the processor (-1 before the first commit).
    pub committed: i64,
    /// Records of this partition in flight.
    pub in_flight: usize,
    /// Records done (before or after the commit point) and not covered by a commit.
    pub done_not_committed: u64,
    /// Processing lag: offsets between the commit point and the log end (the high
    /// watermark of the last fetch; the highest offset taken when no fetch said).
    pub lag: i64,
}

/// Handler latency: count, mean, max and percentiles from a power-of-two histogram (each
/// percentile is the upper bound of its bucket, so within a factor of two above).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Calls measured.
    pub count: u64,
    /// Mean.
    pub mean: Duration,
    /// Median (bucket upper bound).
    pub p50: Duration,
    /// 99th percentile (bucket upper bound).
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

/// Latency histogram in microseconds, one bucket per power of two. Owned by the driver.
#[derive(Debug, Clone)]
pub(crate) struct LatencyHistogram {
    buckets: [u64; 40],
    count: u64,
    sum_us: u128,
    max_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: [0; 40],
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        // Bucket b holds [2^(b-1), 2^b) µs; bucket 0 holds 0.
        let b = (64 - us.leading_zeros() as usize).min(self.buckets.len() - 1);
        self.buckets[b] += 1;
        self.count += 1;
        self.sum_us += us as u128;
        self.max_us = self.max_us.max(us);
    }

    fn percentile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = if b == 0 { 0 } else { 1u64 << b };
                return Duration::from_micros(upper.min(self.max_us));
            }
        }
        Duration::from_micros(self.max_us)
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count,
            mean: if self.count == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros((self.sum_us / self.count as u128) as u64)
            },
            p50: self.percentile(0.5),
            p99: self.percentile(0.99),
            max: Duration::from_micros(self.max_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_latencies() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.mean, Duration::from_micros(50_500));
        assert_eq!(s.max, Duration::from_millis(100));
        // 50 ms lies in [32.768, 65.536) ms; 99 ms in [65.536, 131.072) ms, capped at max.
        assert_eq!(s.p50, Duration::from_micros(65_536));
        assert_eq!(s.p99, Duration::from_millis(100));
        assert!(s.p50 >= Duration::from_millis(50) && s.p50 <= Duration::from_millis(100));
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(
            LatencyHistogram::default().summary(),
            LatencySummary::default()
        );
    }
}
