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

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::batch::{BatchCompletion, BatchOwner, DeliveryFuture, ProducerBatch};
use super::config::ProducerConfig;
use super::partitioner::{DefaultPartitioner, Partitioner, StickyHandle};
use super::seal::Sealing;
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
    /// The producer's last handle was dropped without `close`: batches dropped undecided
    /// fail with `Error::ProducerDropped`, which names the cause, not `Error::Closed`.
    pub(crate) dropped: AtomicBool,
    /// The application's delivery handler, called for every record of a decided batch.
    pub(crate) on_delivery: Option<super::report::DeliveryHandler>,
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

impl OpenBatch {
    /// Fails the batch's records with `err`, keeping its records (encoded, uncompressed) so
    /// [`DeliveryFuture::with_record`] can give them back. Only failures pay for that.
    pub(crate) fn fail(self, err: Error) {
        let mut owner = self.owner;
        if let Ok(bytes) = self
            .builder
            .finish(crate::compression::Compression::None, None)
        {
            owner.encoded = Some(bytes.freeze());
        }
        owner.finish(Err(err));
    }
}

/// A batch waiting for the sender: closed but not sealed (`Open`), being compressed
/// (`Sealing`, see `seal.rs`), or sealed for a retry.
pub(crate) enum Queued {
    Open(OpenBatch),
    Sealing(Sealing),
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
    /// Sender-owned: the broker those requests went to. While any is in flight, the
    /// partition's next batch goes nowhere else: after a leader move it would otherwise
    /// overtake an earlier batch still on its way to (or failing at) the old leader.
    pub(crate) in_flight_to: Option<i32>,
    /// Sender-owned: the next base sequence (idempotence).
    pub(crate) next_sequence: i32,
    /// Sender-owned (idempotence): a batch stamped with the current producer identity was
    /// acknowledged here. Until then the partition has one batch in flight at a time: a broker
    /// that has no state for a producer id accepts *any* first sequence, so a batch pipelined
    /// behind a first one that fails retriably (NOT_LEADER_OR_FOLLOWER right after the topic
    /// was created) would be appended, and the first could only follow it, out of order.
    pub(crate) sequence_confirmed: bool,
}

/// A topic's partitions. Replaced by a larger one if the topic grows.
pub(crate) struct TopicQueue {
    pub(crate) name: Arc<str>,
    pub(crate) partitions: Vec<Mutex<PartitionState>>,
    /// The topic's state in the built-in [`DefaultPartitioner`] when the producer uses it:
    /// `send` partitions through it without the partitioner's topic lookups.
    sticky: Option<StickyHandle>,
    /// Set once a larger queue replaced this one: the per-thread lookup cache must not hand
    /// it out any more.
    retired: AtomicBool,
}

impl TopicQueue {
    /// [`Partitioner::partition`], through the topic's sticky handle when there is one.
    pub(crate) fn partition(
        &self,
        partitioner: &dyn Partitioner,
        key: Option<&[u8]>,
        partition_count: i32,
    ) -> i32 {
        match &self.sticky {
            Some(sticky) => sticky.partition(key, partition_count),
            None => partitioner.partition(&self.name, key, partition_count),
        }
    }

    /// [`Partitioner::on_append`], through the topic's sticky handle when there is one.
    pub(crate) fn on_append(
        &self,
        partitioner: &dyn Partitioner,
        partition: i32,
        key: Option<&[u8]>,
        appended_bytes: usize,
    ) {
        match &self.sticky {
            Some(sticky) => sticky.on_append(partition, key, appended_bytes),
            None => partitioner.on_append(&self.name, partition, key, appended_bytes),
        }
    }

    /// [`Partitioner::on_batch_closed`], through the topic's sticky handle when there is one.
    pub(crate) fn on_batch_closed(
        &self,
        partitioner: &dyn Partitioner,
        partition: i32,
        batch_bytes: usize,
    ) {
        match &self.sticky {
            Some(sticky) => sticky.on_batch_closed(partition),
            None => partitioner.on_batch_closed(&self.name, partition, batch_bytes),
        }
    }
}

/// One record on its way into a batch, as `send` hands it to [`Accumulator::append`].
pub(crate) struct NewRecord<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [Header],
    /// `records::fields_len` of key, value and headers, which `send` computed already.
    pub(crate) fields_len: usize,
}

/// Distinguishes accumulators in the per-thread topic cache.
static NEXT_ACCUMULATOR_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The topic queue this thread looked up last, and the id of its accumulator. An
    /// application sends to the same topic many times in a row, and this saves those sends
    /// the map's lock and hash. `Weak`, so that a dropped producer's queues are not kept.
    static LAST_TOPIC: RefCell<Option<(u64, Weak<TopicQueue>)>> = const { RefCell::new(None) };
}

/// The accumulator.
pub(crate) struct Accumulator {
    pub(crate) cfg: Arc<ProducerConfig>,
    /// Told when a batch closes (sticky partitioners switch partitions then).
    pub(crate) partitioner: Arc<dyn Partitioner>,
    /// `partitioner` again when it is the built-in default: new topic queues then get a
    /// [`StickyHandle`] of it.
    default_partitioner: Option<Arc<DefaultPartitioner>>,
    /// This accumulator in [`LAST_TOPIC`].
    id: u64,
    pub(crate) shared: Arc<Shared>,
    topics: RwLock<FastMap<Arc<str>, Arc<TopicQueue>>>,
    /// Wakes the sender: a batch started (its linger clock runs), a batch filled up, a flush,
    /// a compression finished (shared with the compression jobs).
    pub(crate) wake: Arc<Notify>,
    /// Number of `flush` calls in progress: while > 0 the sender ignores `linger.ms`.
    pub(crate) flushing: AtomicUsize,
}

impl Accumulator {
    /// `default_partitioner` must be the same partitioner as `partitioner` when given.
    pub(crate) fn new(
        cfg: Arc<ProducerConfig>,
        partitioner: Arc<dyn Partitioner>,
        default_partitioner: Option<Arc<DefaultPartitioner>>,
    ) -> Accumulator {
        let budget = Semaphore::new(cfg.buffer_memory.min(Semaphore::MAX_PERMITS));
        let on_delivery = cfg.on_delivery.clone();
        Accumulator {
            cfg,
            partitioner,
            default_partitioner,
            id: NEXT_ACCUMULATOR_ID.fetch_add(1, Ordering::Relaxed),
            shared: Arc::new(Shared {
                budget,
                incomplete: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(0),
                dropped: AtomicBool::new(false),
                on_delivery,
            }),
            topics: RwLock::new(FastMap::default()),
            wake: Arc::new(Notify::new()),
            flushing: AtomicUsize::new(0),
        }
    }

    /// The queue of `topic` if the producer has seen it with at least `partitions` partitions.
    pub(crate) fn topic(&self, topic: &str) -> Option<Arc<TopicQueue>> {
        // `try_with`: during thread teardown the cache is gone and the map answers alone.
        let cached = LAST_TOPIC
            .try_with(|last| match &*last.borrow() {
                Some((id, queue)) if *id == self.id => queue
                    .upgrade()
                    .filter(|q| &*q.name == topic && !q.retired.load(Ordering::Acquire)),
                _ => None,
            })
            .ok()
            .flatten();
        if cached.is_some() {
            return cached;
        }
        let queue = self.topics.read().unwrap().get(topic).cloned()?;
        let _ = LAST_TOPIC
            .try_with(|last| *last.borrow_mut() = Some((self.id, Arc::downgrade(&queue))));
        Some(queue)
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
        if let Some(old) = &old {
            // Growing: the old queue may still be referenced by a sender pass; move the states.
            old.retired.store(true, Ordering::Release);
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
            sticky: self.default_partitioner.as_ref().map(|p| p.handle(topic)),
            retired: AtomicBool::new(false),
        });
        topics.insert(name, q.clone());
        q
    }

    /// Every topic queue, for the sender's pass.
    pub(crate) fn topics(&self) -> Vec<Arc<TopicQueue>> {
        self.topics.read().unwrap().values().cloned().collect()
    }

    /// Appends one record, whose `reserved` bytes of budget the caller already holds.
    pub(crate) fn append(
        &self,
        topic: &TopicQueue,
        partition: i32,
        record: &NewRecord<'_>,
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
        let timestamp = record.timestamp;
        let mut st = slot.lock().unwrap();
        // The record's size in the open batch, computed once: it decides whether the record
        // still fits and is then what `append_sized` writes.
        let mut len = None;
        if let Some(open) = &st.open {
            let in_open = open.builder.record_len(timestamp, record.fields_len);
            if !open.builder.is_empty() && open.builder.size() + in_open.total() > batch_size {
                let full = st.open.take().unwrap();
                closed_sizes[0] = Some(full.builder.size());
                st.queue.push_back(Queued::Open(full));
                wake = true;
            } else {
                len = Some(in_open);
            }
        }
        let open = match &mut st.open {
            Some(open) => open,
            None => {
                wake = true;
                let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                let completion = BatchCompletion::new(topic.name.clone(), partition, timestamp);
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
        let len = len.unwrap_or_else(|| open.builder.record_len(timestamp, record.fields_len));
        open.builder
            .append_sized(len, timestamp, record.key, record.value, record.headers);
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
            topic.on_batch_closed(&*self.partitioner, partition, size);
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
                    open.fail(err.clone());
                }
                for q in st.queue.drain(..) {
                    match q {
                        Queued::Open(b) => b.fail(err.clone()),
                        Queued::Sealing(b) => b.fail(err.clone()),
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
    use crate::protocol::records::fields_len;

    fn acc(batch_size: usize, budget: usize) -> Accumulator {
        let cfg = ProducerConfig {
            batch_size,
            buffer_memory: budget,
            ..Default::default()
        };
        let partitioner = Arc::new(DefaultPartitioner::default());
        Accumulator::new(Arc::new(cfg), partitioner.clone(), Some(partitioner))
    }

    fn append(
        a: &Accumulator,
        t: &TopicQueue,
        partition: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        reserved: usize,
    ) -> Result<DeliveryFuture> {
        let record = NewRecord {
            timestamp: 1,
            key,
            value,
            headers: &[],
            fields_len: fields_len(key.map(<[u8]>::len), value.map(<[u8]>::len), &[]),
        };
        a.append(t, partition, &record, reserved)
    }

    #[tokio::test]
    async fn records_fill_batches_up_to_batch_size() {
        let a = acc(200, 1 << 20);
        let t = a.add_topic("t", 2);
        for _ in 0..10 {
            drop(append(&a, &t, 1, None, Some(&[7u8; 50]), 0).unwrap());
        }
        let st = t.partitions[1].lock().unwrap();
        // 61-byte header + ~57 bytes per record: two records per 200-byte batch.
        let closed: Vec<i32> = st
            .queue
            .iter()
            .map(|q| match q {
                Queued::Open(b) => b.builder.record_count(),
                Queued::Sealing(_) | Queued::Sealed(_) => {
                    panic!("nothing is sealed before the sender runs")
                }
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
        let f = append(&a, &t, 0, Some(b"k"), Some(b"v"), 600).unwrap();
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
        let _f = append(&a, &t, 0, None, Some(b"v"), 0).unwrap();
        let t2 = a.add_topic("t", 3);
        assert_eq!(t2.partitions.len(), 3);
        assert!(t2.partitions[0].lock().unwrap().open.is_some());
        assert!(Arc::ptr_eq(&a.add_topic("t", 2), &t2));
    }

    #[test]
    fn cached_lookups_follow_growth_and_never_cross_accumulators() {
        let (a, b) = (acc(1000, 10_000), acc(1000, 10_000));
        assert!(a.topic("t").is_none());
        let small = a.add_topic("t", 1);
        // The second lookup is served by this thread's cache.
        assert!(Arc::ptr_eq(&a.topic("t").unwrap(), &small));
        assert!(Arc::ptr_eq(&a.topic("t").unwrap(), &small));
        // Another producer's queue of the same name is not the cached one.
        assert!(b.topic("t").is_none());
        let other = b.add_topic("t", 1);
        assert!(Arc::ptr_eq(&b.topic("t").unwrap(), &other));
        assert!(Arc::ptr_eq(&a.topic("t").unwrap(), &small));
        // The cache now holds `small`; once growth replaces it, lookups give the new queue.
        let grown = a.add_topic("t", 4);
        assert!(Arc::ptr_eq(&a.topic("t").unwrap(), &grown));
        assert!(a.topic("u").is_none());
        // A dropped accumulator's queue is not kept alive by the cache.
        let weak = Arc::downgrade(&other);
        drop((b, other));
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn topic_queues_share_the_default_partitioners_sticky_state() {
        let partitioner = Arc::new(DefaultPartitioner::new(100));
        let cfg = Arc::new(ProducerConfig::default());
        let a = Accumulator::new(cfg, partitioner.clone(), Some(partitioner.clone()));
        let t = a.add_topic("t", 8);
        assert!(t.sticky.is_some());
        let sticky = t.partition(&*partitioner, None, 8);
        // The trait method sees the choice the queue's handle made, and the reverse.
        assert_eq!(partitioner.partition("t", None, 8), sticky);
        t.on_append(&*partitioner, sticky, None, 100);
        partitioner.on_batch_closed("t", sticky, 100);
        let next = partitioner.partition("t", None, 8);
        assert_eq!(t.partition(&*partitioner, None, 8), next);
        // Keyed records hash the same either way.
        assert_eq!(
            t.partition(&*partitioner, Some(b"k"), 8),
            partitioner.partition("t", Some(b"k"), 8)
        );
    }
}
