//! A fixed-size, lock-free latency histogram in microseconds.
//!
//! Keeping every sample would cost a worker 8 MB per million records, and peak RSS is one of
//! the figures the bench reports per client; a log-linear histogram costs 18 KiB whatever the
//! rate. Values below 128 µs are counted exactly; above, each power of two is split into 64
//! buckets, so a percentile is off by at most 1/64 (1.6 %). Buckets are atomic because the
//! samples come from whatever thread a client acknowledges on (librdkafka's poll thread, a
//! tokio worker) while the consumer's thread records end-to-end samples.

use std::sync::atomic::{AtomicU64, Ordering};

/// Values below this are their own bucket.
const EXACT: u64 = 128;
/// Buckets per power of two above `EXACT` (half of `EXACT`: the leading bit is implied).
const PER_OCTAVE: u64 = EXACT / 2;
/// log2(EXACT).
const EXACT_BITS: u32 = 7;
/// Largest value kept apart: 2^40 µs (12 days); larger ones land in the last bucket.
const TOP_BIT: u32 = 40;
const BUCKETS: usize = (EXACT + (TOP_BIT - EXACT_BITS + 1) as u64 * PER_OCTAVE) as usize;

/// Counts of latencies, plus the exact maximum.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

/// The bucket of `v`.
fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = (63 - v.leading_zeros()).min(TOP_BIT);
    let v = v.min((1 << (TOP_BIT + 1)) - 1);
    let shift = msb - (EXACT_BITS - 1);
    let sub = (v >> shift) - PER_OCTAVE;
    (EXACT + (shift as u64 - 1) * PER_OCTAVE + sub) as usize
}

/// The largest value that lands in bucket `i` (a percentile reads as "at most this").
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = (i - EXACT) / PER_OCTAVE + 1;
    let sub = (i - EXACT) % PER_OCTAVE + PER_OCTAVE;
    ((sub + 1) << shift) - 1
}

impl Histogram {
    /// Counts one latency of `micros`.
    pub fn record(&self, micros: u64) {
        self.counts[index(micros)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The `q`-quantile (0 < q ≤ 1) in µs: the smallest bucket bound at or below which at
    /// least `q` of the samples lie (never above the maximum); 0 without samples.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return upper(i).min(self.max());
            }
        }
        self.max()
    }

    /// p50, p99, p99.9 and max, in µs.
    pub fn summary(&self) -> [u64; 4] {
        [
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(0.999),
            self.max(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bound_their_values() {
        for v in (0..5000).chain([1 << 20, (1 << 20) + 12_345, 1 << 40, u64::MAX / 2]) {
            let i = index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            if v < 1 << TOP_BIT {
                assert!(upper(i) >= v, "{v}: bucket {i} ends at {}", upper(i));
                assert!(
                    i == 0 || upper(i - 1) < v,
                    "{v} belongs to an earlier bucket"
                );
                // At most 1/64 above the value.
                assert!(upper(i) - v <= v / 64, "{v}: {}", upper(i));
            }
        }
        assert_eq!(index(EXACT - 1), 127);
        assert_eq!(index(EXACT), 128);
        assert_eq!(upper(128), 129);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.99), 0);
        // 1..=1000 µs, once each: p50 = 500, p99 = 990, p99.9 = 999, max 1000.
        for v in 1..=1000 {
            h.record(v);
        }
        let [p50, p99, p999, max] = h.summary();
        assert_eq!(max, 1000);
        for (got, want) in [(p50, 500), (p99, 990), (p999, 999)] {
            assert!(got >= want && got - want <= want / 64, "{got} vs {want}");
        }
        assert_eq!(h.count(), 1000);
        // One slow outlier moves the maximum and p100, not p99.
        h.record(250_000);
        assert_eq!(h.max(), 250_000);
        assert_eq!(h.quantile(1.0), 250_000);
        assert!(h.quantile(0.99) < 1000);
    }

    #[test]
    fn a_single_sample_is_every_quantile() {
        let h = Histogram::default();
        h.record(77);
        assert_eq!(h.summary(), [77, 77, 77, 77]);
        let h = Histogram::default();
        h.record(1_000_003);
        // The bucket bound is above it, the maximum caps it.
        assert_eq!(h.summary(), [1_000_003; 4]);
    }
}
