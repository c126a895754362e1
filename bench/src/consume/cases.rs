//! The consume cases, and the fetch settings every client gets for them.
//!
//! Common to every case and client, where the client has the setting (the Java and
//! librdkafka defaults, written out so that no client runs on a different default):
//! `fetch.max.wait.ms` 500, `fetch.min.bytes` 1, `max.partition.fetch.bytes` 1 MiB,
//! `fetch.max.bytes` 50 MiB (at most the prefetch budget), a prefetch budget of 64 MiB
//! (ferrokafka `fetch.buffer.bytes`, librdkafka `queued.max.messages.kbytes`) and CRC checks on.

use crate::cases::Codec;
use crate::common::BenchCase;

/// `fetch.max.wait.ms` (librdkafka `fetch.wait.max.ms`).
pub const FETCH_MAX_WAIT_MS: u64 = 500;
/// `max.partition.fetch.bytes`.
pub const MAX_PARTITION_FETCH_BYTES: usize = 1024 * 1024;
/// `fetch.max.bytes` unless the budget is smaller (ferrokafka refuses a budget that one
/// response could not fit in, so both are lowered together).
pub const FETCH_MAX_BYTES: usize = 50 * 1024 * 1024;
/// Default prefetch budget: ferrokafka's default `fetch.buffer.bytes`, and librdkafka's
/// default `queued.max.messages.kbytes` (65536).
pub const FETCH_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// What the issue allows on top of the prefetch budget for the whole process.
pub const RSS_ALLOWANCE: usize = 32 * 1024 * 1024;

/// The fetch settings of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub fetch_max_wait_ms: u64,
    pub max_partition_fetch_bytes: usize,
    pub fetch_max_bytes: usize,
    /// The prefetch budget, all partitions together.
    pub fetch_buffer_bytes: usize,
}

impl Settings {
    /// The common settings with this prefetch budget.
    pub fn with_budget(fetch_buffer_bytes: usize) -> Settings {
        Settings {
            fetch_max_wait_ms: FETCH_MAX_WAIT_MS,
            max_partition_fetch_bytes: MAX_PARTITION_FETCH_BYTES,
            fetch_max_bytes: FETCH_MAX_BYTES.min(fetch_buffer_bytes),
            fetch_buffer_bytes,
        }
    }
}

/// One consume case: a topic filled once, then read completely by every client.
#[derive(Debug, Clone, Copy)]
pub struct ConsumeCase {
    pub name: &'static str,
    /// Records in the topic (divided by 10 with `--quick`).
    pub records: u64,
    /// Value bytes per record (no keys).
    pub size: usize,
    pub partitions: i32,
    /// How the filling producer (librdkafka) compressed the batches.
    pub codec: Codec,
    /// One line for the table's heading.
    pub what: &'static str,
}

/// Every case, in the order they run.
pub const CASES: &[ConsumeCase] = &[
    ConsumeCase {
        name: "100b",
        records: 1_000_000,
        size: 100,
        partitions: 12,
        codec: Codec::None,
        what: "1 M x 100 B from 12 partitions, no compression",
    },
    ConsumeCase {
        name: "1kb",
        records: 200_000,
        size: 1024,
        partitions: 12,
        codec: Codec::None,
        what: "200 k x 1 KiB from 12 partitions, no compression",
    },
    ConsumeCase {
        name: "100b-lz4",
        records: 1_000_000,
        size: 100,
        partitions: 12,
        codec: Codec::Lz4,
        what: "1 M x 100 B from 12 partitions, lz4 batches written by librdkafka",
    },
    ConsumeCase {
        name: "100b-zstd",
        records: 1_000_000,
        size: 100,
        partitions: 12,
        codec: Codec::Zstd,
        what: "1 M x 100 B from 12 partitions, zstd batches written by librdkafka",
    },
    ConsumeCase {
        // 10,240 records of 1 KiB per partition: 10 MiB each, 1 GiB in all (the RSS target:
        // far more data than the prefetch budget, spread over many partitions).
        name: "100p-10mb",
        records: 1_024_000,
        size: 1024,
        partitions: 100,
        codec: Codec::None,
        what: "100 partitions x 10 MiB (1,024,000 x 1 KiB), the RSS target",
    },
];

impl BenchCase for ConsumeCase {
    fn name(&self) -> &'static str {
        self.name
    }
    fn what(&self) -> &'static str {
        self.what
    }
    fn records(&self) -> u64 {
        self.records
    }
}

/// The partition the filling producer writes record `i` of `records` to: contiguous,
/// equal ranges, so every partition holds the same number of records (±1) and each is
/// written in full batches, as a sticky partitioner would write them.
pub fn fill_partition(i: u64, records: u64, partitions: i32) -> i32 {
    (i * partitions as u64 / records.max(1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_spreads_records_evenly() {
        let c = crate::common::find(CASES, "100p-10mb").unwrap();
        let mut per = vec![0u64; c.partitions as usize];
        for i in 0..c.records {
            per[fill_partition(i, c.records, c.partitions) as usize] += 1;
        }
        assert!(per.iter().all(|&n| n == 10_240));
        let mut per = [0u64; 12];
        for i in 0..1_000_000 {
            per[fill_partition(i, 1_000_000, 12) as usize] += 1;
        }
        assert!(per.iter().all(|&n| (83_333..=83_334).contains(&n)));
    }

    #[test]
    fn fetch_max_bytes_never_exceeds_the_budget() {
        assert_eq!(
            Settings::with_budget(FETCH_BUFFER_BYTES).fetch_max_bytes,
            FETCH_MAX_BYTES
        );
        assert_eq!(Settings::with_budget(16 << 20).fetch_max_bytes, 16 << 20);
    }
}
