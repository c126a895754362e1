//! Exponential backoff with jitter, shared by reconnects and request retries.
//!
//! Jitter keeps many clients (or many partitions of one client) that failed at the same moment
//! from retrying in lockstep against a broker that is just coming back.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff state: `base * 2^failures`, capped at `max`, with ±20% jitter.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// The wait before the next attempt, and counts one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let exp = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        jitter(raw)
    }

    /// Forgets the failures after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

/// `d` scaled by a random factor in [0.8, 1.2].
pub(crate) fn jitter(d: Duration) -> Duration {
    // A fresh RandomState is seeded from the OS once per thread and then incremented, so hashing
    // nothing with it gives a cheap, well-mixed random u64 without a `rand` dependency.
    let r = RandomState::new().build_hasher().finish();
    let factor = 0.8 + 0.4 * ((r >> 11) as f64 / (1u64 << 53) as f64);
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let expected = [100u64, 200, 400, 800, 1000, 1000];
        for want in expected {
            let got = b.next_delay().as_millis() as u64;
            assert!(
                got >= want * 8 / 10 && got <= want * 12 / 10,
                "want ~{want}, got {got}"
            );
        }
        assert_eq!(b.failures(), 6);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }

    #[test]
    fn jitter_varies() {
        let samples: std::collections::HashSet<u128> = (0..20)
            .map(|_| jitter(Duration::from_secs(1)).as_micros())
            .collect();
        assert!(samples.len() > 10, "jitter looks constant: {samples:?}");
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_millis(2400));
        }
    }
}
