//! What the application chooses for concurrent processing ([`crate::Consumer::processor`]):
//! ordering, limits, commits, and what happens to a record whose handler fails.

use std::fmt;
use std::time::Duration;

use crate::producer::Producer;

/// Which records may be processed at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ProcessOrdering {
    /// Records of one partition one at a time, in offset order; partitions in parallel.
    /// Concurrency is at most the number of assigned partitions.
    PerPartition,
    /// Records with the same key (within a partition) one at a time, in offset order;
    /// different keys in parallel. Records with a null key count as one key per partition.
    /// The default: Kafka's own guarantee (order per key) with concurrency far beyond the
    /// partition count.
    #[default]
    PerKey,
    /// Any record at any time, up to the concurrency limit.
    Unordered,
}

/// What to do with a record once its handler has failed (returned an error or panicked)
/// and every retry failed too.
#[derive(Clone)]
#[non_exhaustive]
pub enum FailureAction {
    /// Count it (`ProcessMetrics::skipped`) and go on: the record counts as done.
    Skip,
    /// Send it to a dead-letter topic and go on once the broker has acknowledged it. The
    /// copy keeps key, value, timestamp and headers and adds `fk.dlq.topic`,
    /// `fk.dlq.partition`, `fk.dlq.offset` and `fk.dlq.error` headers. If the copy cannot
    /// be written, processing stops as with [`FailureAction::Stop`].
    DeadLetter {
        /// The producer that writes the copies.
        producer: Producer,
        /// The dead-letter topic.
        topic: String,
    },
    /// Stop processing: `Processor::run` drains what is in flight, commits the done prefix
    /// (which ends before the failed record) and returns [`crate::Error::HandlerFailed`].
    Stop,
}

impl fmt::Debug for FailureAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureAction::Skip => f.write_str("Skip"),
            FailureAction::DeadLetter { topic, .. } => {
                f.debug_struct("DeadLetter").field("topic", topic).finish()
            }
            FailureAction::Stop => f.write_str("Stop"),
        }
    }
}

/// How a failing handler is retried, and what happens after the last retry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FailurePolicy {
    /// Retries after the first failure (default 3).
    pub retries: u32,
    /// The wait before the first retry, doubled for each next one (default 100 ms).
    pub backoff: Duration,
    /// The longest wait between retries (default 10 s).
    pub backoff_max: Duration,
    /// What happens after the last retry failed (default [`FailureAction::Stop`]: nothing
    /// is lost unless the application says so).
    pub then: FailureAction,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            retries: 3,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            then: FailureAction::Stop,
        }
    }
}

impl FailurePolicy {
    /// `retries` retries with the default backoff, then `then`.
    pub fn retry_then(retries: u32, then: FailureAction) -> FailurePolicy {
        FailurePolicy {
            retries,
            then,
            ..FailurePolicy::default()
        }
    }

    /// Sets the backoff: `first` before the first retry, doubling up to `max`.
    pub fn backoff(mut self, first: Duration, max: Duration) -> FailurePolicy {
        self.backoff = first;
        self.backoff_max = max.max(first);
        self
    }
}

/// Options of a [`crate::Processor`]. Setters consume and return the options.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    pub(crate) ordering: ProcessOrdering,
    pub(crate) max_in_flight: usize,
    pub(crate) max_held_bytes: usize,
    pub(crate) max_uncommitted: Option<usize>,
    pub(crate) commit_interval: Duration,
    pub(crate) store_done_offsets: bool,
    pub(crate) metadata_max_bytes: usize,
    pub(crate) on_failure: FailurePolicy,
    pub(crate) revoke_timeout: Option<Duration>,
    pub(crate) stop_timeout: Duration,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            ordering: ProcessOrdering::PerKey,
            max_in_flight: 64,
            max_held_bytes: 16 << 20,
            max_uncommitted: None,
            commit_interval: Duration::from_millis(500),
            store_done_offsets: true,
            // Kafka's default offset.metadata.max.bytes is 4096: stay under it.
            metadata_max_bytes: 4000,
            on_failure: FailurePolicy::default(),
            revoke_timeout: None,
            stop_timeout: Duration::from_secs(30),
        }
    }
}

impl ProcessOptions {
    /// The defaults: per-key ordering, 64 records in flight, 16 MiB held, commits every
    /// 500 ms, done offsets stored in the commit metadata, stop after 3 failed retries.
    pub fn new() -> ProcessOptions {
        ProcessOptions::default()
    }

    /// Which records may run at the same time (default [`ProcessOrdering::PerKey`]).
    pub fn ordering(mut self, ordering: ProcessOrdering) -> ProcessOptions {
        self.ordering = ordering;
        self
    }

    /// The most handler calls in progress at once (default 64, at least 1).
    pub fn max_in_flight(mut self, n: usize) -> ProcessOptions {
        self.max_in_flight = n.max(1);
        self
    }

    /// The most bytes (keys, values, headers) of records taken from the consumer and not
    /// done yet, in flight or waiting for their key (default 16 MiB). Past it no more
    /// records are taken, so the consumer's own fetch buffer fills and fetching stops: a
    /// slow handler slows fetching instead of growing memory.
    pub fn max_held_bytes(mut self, bytes: usize) -> ProcessOptions {
        self.max_held_bytes = bytes.max(1);
        self
    }

    /// Bounds what a crash can make run again: no record starts while the records finished
    /// since the last successful commit plus those in flight would exceed `n` (default: no
    /// bound). With done offsets stored in the commit metadata (the default) and the
    /// metadata within `metadata_max_bytes`, at most `n` finished records run again after
    /// a crash. Pair it with a short `commit_interval`, or processing waits for commits.
    pub fn max_uncommitted(mut self, n: usize) -> ProcessOptions {
        self.max_uncommitted = Some(n.max(1));
        self
    }

    /// How often the done prefix is committed (default 500 ms; zero commits again as soon
    /// as the previous commit finished and something moved). Commits also happen on a
    /// revoke, on stop and on close.
    pub fn commit_interval(mut self, interval: Duration) -> ProcessOptions {
        self.commit_interval = interval;
        self
    }

    /// Whether to store the offsets already done past the committed one in the commit's
    /// metadata, so that a restart (or the next owner of the partition) skips them
    /// (default true). Without it they are processed again.
    pub fn store_done_offsets(mut self, on: bool) -> ProcessOptions {
        self.store_done_offsets = on;
        self
    }

    /// The longest commit metadata written (default 4000 bytes, under Kafka's default
    /// `offset.metadata.max.bytes` of 4096); done offsets that do not fit run again after a
    /// restart.
    pub fn metadata_max_bytes(mut self, bytes: usize) -> ProcessOptions {
        self.metadata_max_bytes = bytes;
        self
    }

    /// What happens to a record whose handler fails (default: 3 retries, then stop).
    pub fn on_failure(mut self, policy: FailurePolicy) -> ProcessOptions {
        self.on_failure = policy;
        self
    }

    /// How long a revoke waits for the revoked partitions' records in flight before it
    /// cancels them (default: the consumer's `max.poll.interval.ms`, the rebalance timeout
    /// the group gives this member).
    pub fn revoke_timeout(mut self, timeout: Duration) -> ProcessOptions {
        self.revoke_timeout = Some(timeout);
        self
    }

    /// How long a stop waits for records in flight before it cancels them (default 30 s).
    pub fn stop_timeout(mut self, timeout: Duration) -> ProcessOptions {
        self.stop_timeout = timeout;
        self
    }
}
