//! A fixed-bucket histogram of atomics, recorded once per request or batch (never per record),
//! and its public snapshot.
//!
//! Fixed bucket bounds keep recording to two relaxed additions and a short scan, with no lock
//! and no allocation; the snapshot keeps the cumulative counts Prometheus wants and answers
//! quantiles by interpolation inside a bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: 100 µs to 30 s, about three per decade.
pub(crate) const LATENCY_BOUNDS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Upper bounds of the size buckets, in bytes: 64 B to 16 MiB, powers of four.
pub(crate) const SIZE_BOUNDS: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];

/// Upper bounds of count buckets (records per request): 1 to 64 Ki, powers of four.
pub(crate) const COUNT_BOUNDS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16_384.0, 65_536.0,
];

/// Upper bounds of ratio buckets (batch fill), tenths of 0 to 1.
pub(crate) const RATIO_BOUNDS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// A histogram of non-negative values. Written by one or a few tasks (once per request or
/// batch), read by snapshots at any time; every field is a relaxed atomic, so a snapshot taken
/// during a recording may be one observation behind in some field, never torn in one.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus the overflow bucket (`+Inf`).
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The sum of the values, as `f64` bits (updated by compare-and-swap: few writers).
    sum: AtomicU64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub(crate) fn latency() -> Histogram {
        Histogram::new(LATENCY_BOUNDS)
    }

    /// Records one value (negative values count as 0).
    pub(crate) fn record(&self, value: f64) {
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        let i = self.bounds.partition_point(|&b| b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub(crate) fn record_duration(&self, d: Duration) {
        self.record(d.as_secs_f64());
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((le, cumulative));
        }
        HistogramSnapshot {
            // The buckets' total, not `count`: both are relaxed, and the buckets are what the
            // quantiles read, so the two always agree.
            count: cumulative,
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
            buckets,
        }
    }
}

/// A snapshot of a histogram: how many values were recorded, their sum, and cumulative bucket
/// counts (Prometheus style). Latencies are in seconds, sizes in bytes.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// Values recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// `(upper bound, values ≤ bound)`, bounds ascending, the last one `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
}

impl HistogramSnapshot {
    /// The mean value, `None` before any value.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// An estimate of quantile `q` (0 to 1): linear inside the bucket that holds it, the
    /// bucket's lower bound for values past the last finite bound. `None` before any value.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).max(1.0);
        let mut lower = (0.0, 0u64);
        for &(le, cumulative) in &self.buckets {
            if cumulative as f64 >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let inside = (cumulative - lower.1) as f64;
                let into = rank - lower.1 as f64;
                return Some(lower.0 + (le - lower.0) * (into / inside));
            }
            lower = (le, cumulative);
        }
        Some(lower.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 1.5, 10.0, 11.0, -3.0, f64::NAN] {
            h.record(v);
        }
        let s = h.snapshot();
        // 0.5, 1.0, -3 (as 0) and NaN (as 0) ≤ 1; 1.5 and 10 ≤ 10; 11 above.
        assert_eq!(s.buckets, vec![(1.0, 4), (10.0, 6), (f64::INFINITY, 7)]);
        assert_eq!(s.count, 7);
        assert!((s.sum - 24.0).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let h = Histogram::new(&[10.0, 20.0]);
        for _ in 0..10 {
            h.record(5.0);
        }
        for _ in 0..10 {
            h.record(15.0);
        }
        let s = h.snapshot();
        assert_eq!(s.quantile(0.5), Some(10.0));
        assert_eq!(s.quantile(0.75), Some(15.0));
        assert_eq!(s.quantile(1.0), Some(20.0));
        assert_eq!(s.mean(), Some(10.0));
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }

    #[test]
    fn overflow_reports_the_last_finite_bound() {
        let h = Histogram::new(&[1.0]);
        h.record(100.0);
        assert_eq!(h.snapshot().quantile(0.99), Some(1.0));
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let h = std::sync::Arc::new(Histogram::latency());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        h.record_duration(Duration::from_micros(i % 2000));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count, 40_000);
        // Sum of i % 2000 µs for i < 10 000, four times.
        let expect = 4.0 * 5.0 * (0..2000).map(|i| i as f64 * 1e-6).sum::<f64>();
        assert!((s.sum - expect).abs() < 1e-6, "{} vs {expect}", s.sum);
    }
}
