//! The record accumulator: one open batch per partition, closed batches queued for the sender.
//!
//! `send` appends a record straight into its partition's open batch, encoded as Record Batch v2
//! (`BatchBuilder`), so the record's bytes are copied once, under that partition's short mutex.
//! A batch closes when the next record would take it past `batch.size`; the sender also takes
//! an open batch once it has lingered `linger.ms` or a flush asks for it.
//!
//! Memory is bounded by `buffer.memory`: every record takes its encoded size from a byte
//! semaphore before it is appended (so `send` waits, and `try_send` fails, when the budget is
//! spent), and its batch gives the bytes back when it is decided (`BatchOwner`).
//!
//! Ownership: the producer's callers append (under the partition mutex); the **sender task** is
//! the only code that takes batches out, assigns sequences, and updates the per-partition
//! sending state (`in_flight`, `next_sequence`, `retrying`), also under the partition mutex.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::batch::{BatchCompletion, BatchOwner, DeliveryFuture, ProducerBatch};
use super::config::ProducerConfig;
use super::partitioner::Partitioner;
use crate::error::{Error, Result};
use crate::fasthash::FastMap;
use crate::protocol::records::BatchBuilder;
use crate::record::Header;

/// Initial buffer of a new batch; it doubles as records arrive, up to `batch.size`.
const INITIAL_BATCH_CAPACITY: usize = 64 * 1024;

/// State shared between the accumulator, batch owners and the producer handle.
pub(crate) struct Shared {
    /// Bytes of `buffer.memory` not held by any batch.
    pub(crate) budget: Semaphore,
    /// Undecided batches by id, for `flush`.
    incomplete: Mutex<BTreeMap<u64, Arc<BatchCompletion>>>,
    next_id: AtomicU64,
}

impl Shared {
    /// Called once per batch when it is decided.
    pub(crate) fn release(&self, id: u64, bytes: usize) {
        self.incomplete.lock().unwrap().remove(&id);
        if bytes > 0 {
            self.budget.add_permits(bytes);
        }
    }
}

/// A batch being filled.
pub(crate) struct OpenBatch {
    pub(crate) builder: BatchBuilder,
    pub(crate) owner: BatchOwner,
    pub(crate) created: Instant,
}

/// A batch waiting for the sender: still unencoded-header (`Open`) or sealed for a retry.
pub(crate) enum Queued {
    Open(OpenBatch),
    Sealed(ProducerBatch),
}

/// One partition's queue and sending state.
#[derive(Default)]
pub(crate) struct PartitionState {
    /// The batch records are appended to.
    pub(crate) open: Option<OpenBatch>,
    /// Closed batches in send order; sealed retries first, sorted by sequence.
    pub(crate) queue: VecDeque<Queued>,
    /// Sender-owned: requests in flight carrying a batch of this partition.
    pub(crate) in_flight: usize,
    /// Sender-owned: the next base sequence (idempotence).
    pub(crate) next_sequence: i32,
}

/// A topic's partitions. Replaced by a larger one if the topic grows.
pub(crate) struct TopicQueue {
    pub(crate) name: Arc<str>,
    pub(crate) partitions: Vec<Mutex<PartitionState>>,
}

/// The accumulator.
pub(crate) struct Accumulator {
    pub(crate) cfg: Arc<ProducerConfig>,
    /// Told when a batch closes (sticky partitioners switch partitions then).
    pub(crate) partitioner: Arc<dyn Partitioner>,
    pub(crate) shared: Arc<Shared>,
    topics: RwLock<FastMap<Arc<str>, Arc<TopicQueue>>>,
    /// Wakes the sender: a batch started (its linger clock runs), a batch filled up, a flush.
    pub(crate) wake: Notify,
    /// Number of `flush` calls in progress: while > 0 the sender ignores `linger.ms`.
    pub(crate) flushing: AtomicUsize,
}

impl Accumulator {
    pub(crate) fn new(cfg: Arc<ProducerConfig>, partitioner: Arc<dyn Partitioner>) -> Accumulator {
        let budget = Semaphore::new(cfg.buffer_memory.min(Semaphore::MAX_PERMITS));
        Accumulator {
            cfg,
            partitioner,
            shared: Arc::new(Shared {
                budget,
                incomplete: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(0),
            }),
            topics: RwLock::new(FastMap::default()),
            wake: Notify::new(),
            flushing: AtomicUsize::new(0),
        }
    }

    /// The queue of `topic` if the producer has seen it with at least `partitions` partitions.
    pub(crate) fn topic(&self, topic: &str) -> Option<Arc<TopicQueue>> {
        self.topics.read().unwrap().get(topic).cloned()
    }

    /// Registers `topic` with `count` partitions (or grows it). Existing partitions keep their
    /// queues and sequences.
    pub(crate) fn add_topic(&self, topic: &str, count: usize) -> Arc<TopicQueue> {
        let mut topics = self.topics.write().unwrap();
        if let Some(q) = topics.get(topic) {
            if q.partitions.len() >= count {
                return q.clone();
            }
        }
        let name: Arc<str> = Arc::from(topic);
        let old = topics.remove(topic);
        let mut partitions = Vec::with_capacity(count);
        if let Some(old) = old {
            // Growing: the old queue may still be referenced by a sender pass; move the states.
            for p in &old.partitions {
                partitions.push(Mutex::new(std::mem::take(&mut *p.lock().unwrap())));
            }
        }
        while partitions.len() < count {
            partitions.push(Mutex::new(PartitionState::default()));
        }
        let q = Arc::new(TopicQueue {
            name: name.clone(),
            partitions,
        });
        topics.insert(name, q.clone());
        q
    }

    /// Every topic queue, for the sender's pass.
    pub(crate) fn topics(&self) -> Vec<Arc<TopicQueue>> {
        self.topics.read().unwrap().values().cloned().collect()
    }

    /// Appends one record whose encoded size is `len` and whose `len` bytes of budget the
    /// caller already holds.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &self,
        topic: &TopicQueue,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        reserved: usize,
    ) -> Result<DeliveryFuture> {
        let slot = topic.partitions.get(partition as usize).ok_or_else(|| {
            Error::InvalidInput(
                format!("partition {partition} of {} does not exist", topic.name).into(),
            )
        })?;
        let batch_size = self.cfg.batch_size;
        let mut wake = false;
        let mut closed_sizes: [Option<usize>; 2] = [None, None];
        let mut st = slot.lock().unwrap();
        if let Some(open) = &st.open {
            if !open.builder.is_empty()
                && open.builder.size() + open.builder.encoded_len(timestamp, key, value, headers)
                    > batch_size
            {
                let full = st.open.take().unwrap();
                closed_sizes[0] = Some(full.builder.size());
                st.queue.push_back(Queued::Open(full));
                wake = true;
            }
        }
        let open = match &mut st.open {
            Some(open) => open,
            None => {
                wake = true;
                let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                let completion = BatchCompletion::new(topic.name.clone(), partition);
                self.shared
                    .incomplete
                    .lock()
                    .unwrap()
                    .insert(id, completion.clone());
                st.open.insert(OpenBatch {
                    // Start small and let the buffer grow: a large batch.size on many
                    // partitions would otherwise reserve memory the byte budget never sees.
                    builder: BatchBuilder::new(
                        batch_size
                            .min(self.cfg.max_request_size)
                            .min(INITIAL_BATCH_CAPACITY),
                    ),
                    owner: BatchOwner::new(completion, id, self.shared.clone()),
                    created: Instant::now(),
                })
            }
        };
        let offset_delta = open.builder.record_count();
        open.builder.append(timestamp, key, value, headers);
        open.owner.reserve(reserved);
        let future = DeliveryFuture::new(open.owner.completion.clone(), offset_delta, timestamp);
        if open.builder.size() >= batch_size {
            let full = st.open.take().unwrap();
            closed_sizes[1] = Some(full.builder.size());
            st.queue.push_back(Queued::Open(full));
            wake = true;
        }
        drop(st);
        for size in closed_sizes.into_iter().flatten() {
            self.partitioner
                .on_batch_closed(&topic.name, partition, size);
        }
        if wake {
            self.wake.notify_one();
        }
        Ok(future)
    }

    /// Completions of every batch not yet decided, for `flush`.
    pub(crate) fn incomplete(&self) -> Vec<Arc<BatchCompletion>> {
        self.shared
            .incomplete
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    /// Fails every batch still queued (open or closed) with `err`. Used by a forced close.
    pub(crate) fn abort_all(&self, err: &Error) {
        for topic in self.topics() {
            for p in &topic.partitions {
                let mut st = p.lock().unwrap();
                if let Some(open) = st.open.take() {
                    open.owner.finish(Err(err.clone()));
                }
                for q in st.queue.drain(..) {
                    match q {
                        Queued::Open(b) => b.owner.finish(Err(err.clone())),
                        Queued::Sealed(b) => b.finish(Err(err.clone())),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(batch_size: usize, budget: usize) -> Accumulator {
        let cfg = ProducerConfig {
            batch_size,
            buffer_memory: budget,
            ..Default::default()
        };
        Accumulator::new(
            Arc::new(cfg),
            Arc::new(super::super::partitioner::DefaultPartitioner::default()),
        )
    }

    #[tokio::test]
    async fn records_fill_batches_up_to_batch_size() {
        let a = acc(200, 1 << 20);
        let t = a.add_topic("t", 2);
        for _ in 0..10 {
            drop(a.append(&t, 1, 1, None, Some(&[7u8; 50]), &[], 0).unwrap());
        }
        let st = t.partitions[1].lock().unwrap();
        // 61-byte header + ~57 bytes per record: two records per 200-byte batch.
        let closed: Vec<i32> = st
            .queue
            .iter()
            .map(|q| match q {
                Queued::Open(b) => b.builder.record_count(),
                Queued::Sealed(_) => panic!("nothing is sealed before the sender runs"),
            })
            .collect();
        assert!(closed.iter().all(|&n| n == 2), "{closed:?}");
        let open = st.open.as_ref().map_or(0, |b| b.builder.record_count());
        assert_eq!(closed.iter().sum::<i32>() + open, 10);
        assert!(t.partitions[0].lock().unwrap().open.is_none());
    }

    #[tokio::test]
    async fn dropping_queued_batches_fails_their_records_and_returns_budget() {
        let a = acc(1000, 10_000);
        let t = a.add_topic("t", 1);
        let permit = a.shared.budget.try_acquire_many(600).unwrap();
        permit.forget();
        let f = a
            .append(&t, 0, 1, Some(b"k"), Some(b"v"), &[], 600)
            .unwrap();
        assert_eq!(a.shared.budget.available_permits(), 9_400);
        assert_eq!(a.incomplete().len(), 1);
        a.abort_all(&Error::Closed);
        assert!(matches!(f.await, Err(Error::Closed)));
        assert_eq!(a.shared.budget.available_permits(), 10_000);
        assert!(a.incomplete().is_empty());
    }

    #[tokio::test]
    async fn growing_a_topic_keeps_existing_partitions() {
        let a = acc(1000, 10_000);
        let t = a.add_topic("t", 1);
        let _f = a.append(&t, 0, 1, None, Some(b"v"), &[], 0).unwrap();
        let t2 = a.add_topic("t", 3);
        assert_eq!(t2.partitions.len(), 3);
        assert!(t2.partitions[0].lock().unwrap().open.is_some());
        assert!(Arc::ptr_eq(&a.add_topic("t", 2), &t2));
    }
}
