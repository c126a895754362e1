//! The producer: `send` records, get delivery futures, never a QueueFull surprise.
//!
//! ```text
//! send(record) ── partition (explicit / Partitioner) ── budget (await bytes of buffer.memory)
//!      │
//!      ▼
//! accumulator: partition's open batch ◄─ record encoded once (Record Batch v2)
//!      │  full / linger.ms / flush
//!      ▼
//! sender task: seal (compress, on compression threads: seal.rs) → sequence (idempotence)
//!              → one ProduceRequest per leader, ≤ max.in.flight per broker
//!              → classify errors → retry | bump epoch | fail
//!      │
//!      ▼
//! DeliveryFuture resolves (offset, timestamp) or to the record's error
//! ```
//!
//! Ownership: the `Producer` handle owns the sender task (aborted when the last handle is
//! dropped; `close()` drains it first). Dropping batches anywhere fails their records with
//! `Error::Closed` — `Error::ProducerDropped` when the last handle went without `close` —
//! and returns their budget (see `batch.rs`), so no future ever hangs.

mod accumulator;
mod batch;
mod config;
mod idempotence;
pub(crate) mod partitioner;
mod report;
mod seal;
mod sender;
mod transaction;

#[cfg(test)]
#[path = "service_tests.rs"]
mod service_tests;

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::metadata::TopicsQuery;
use crate::client::{Client, ClientBuilder};
use crate::compression::Compression;
use crate::config::{route_property, Route};
use crate::consumer::{CommitOffset, ConsumerGroupMetadata, TopicPartition};
use crate::error::{Error, Result};
use crate::protocol::records::{fields_len, max_record_len_of, RECORD_BATCH_OVERHEAD};
use crate::record::{now_millis, Record};
use accumulator::{Accumulator, NewRecord, TopicQueue};
pub use batch::{DeliveryError, DeliveryFuture, WithRecord};
pub use config::Acks;
use config::{ProducerConfig, PRODUCER_KEYS};
use partitioner::{DefaultPartitioner, Murmur2Partitioner, Partitioner, RoundRobinPartitioner};
pub use report::Delivery;
use transaction::Transactions;

/// Builds a [`Producer`].
///
/// Setters never fail; the first invalid value is reported by [`ProducerBuilder::build`].
pub struct ProducerBuilder {
    client: Option<Client>,
    client_builder: ClientBuilder,
    cfg: ProducerConfig,
    partitioner: Option<ChosenPartitioner>,
    error: Option<Error>,
}

/// A partitioner given to the builder. The built-in default is kept apart: `send` uses its
/// per-topic state directly instead of calling it through the trait (see `TopicQueue`).
enum ChosenPartitioner {
    Default(Arc<DefaultPartitioner>),
    Custom(Arc<dyn Partitioner>),
}

impl std::fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.cfg)
            .finish()
    }
}

impl ProducerBuilder {
    fn with(client: Option<Client>) -> ProducerBuilder {
        ProducerBuilder {
            client,
            client_builder: ClientBuilder::new(),
            cfg: ProducerConfig::default(),
            partitioner: None,
            error: None,
        }
    }

    /// A builder from Java/librdkafka property names. Client keys (`bootstrap.servers`, …)
    /// configure the producer's own [`Client`]; producer keys (`acks`, `linger.ms`,
    /// `batch.size`, `buffer.memory`, `compression.type`, …) the producer. An unknown key fails
    /// `build()`, naming it.
    pub fn from_properties<K: AsRef<str>, V: AsRef<str>>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> ProducerBuilder {
        props
            .into_iter()
            .fold(ProducerBuilder::with(None), |b, (k, v)| {
                b.set(k.as_ref(), v.as_ref())
            })
    }

    /// Sets one property by name (producer keys, or client keys when the producer builds its
    /// own client).
    pub fn set(mut self, key: &str, value: &str) -> ProducerBuilder {
        let applied = self.cfg.apply(key, value);
        match route_property(applied, key, self.client.is_none(), PRODUCER_KEYS) {
            Ok(Route::Own) => {}
            Ok(Route::Client) => self.client_builder = self.client_builder.set(key, value),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// `acks` (default `All`). Setting `None` or `Leader` turns idempotence off unless it was
    /// explicitly enabled, which `build()` then rejects.
    pub fn acks(mut self, acks: Acks) -> ProducerBuilder {
        self.cfg.acks = Some(acks);
        self
    }

    /// `enable.idempotence` (default on with `acks=all`).
    pub fn idempotence(mut self, on: bool) -> ProducerBuilder {
        self.cfg.idempotence = Some(on);
        self
    }

    /// `linger.ms` (default 5 ms).
    pub fn linger(mut self, linger: Duration) -> ProducerBuilder {
        self.cfg.linger = linger;
        self
    }

    /// `batch.size` in bytes (default 16384).
    pub fn batch_size(mut self, bytes: usize) -> ProducerBuilder {
        self.cfg.batch_size = bytes;
        self
    }

    /// `max.request.size` in bytes (default 1 MiB); also the largest record accepted.
    pub fn max_request_size(mut self, bytes: usize) -> ProducerBuilder {
        self.cfg.max_request_size = bytes;
        self
    }

    /// `buffer.memory` in bytes (default 32 MiB): records waiting for delivery may hold this
    /// much; [`Producer::send`] waits for room beyond it.
    pub fn buffer_memory(mut self, bytes: usize) -> ProducerBuilder {
        self.cfg.buffer_memory = bytes;
        self
    }

    /// `delivery.timeout.ms` (default 120 s): the bound on a record's fate, retries included.
    pub fn delivery_timeout(mut self, timeout: Duration) -> ProducerBuilder {
        self.cfg.delivery_timeout = timeout;
        self
    }

    /// `max.block.ms` (default 60 s): how long `send` waits for an unknown topic's metadata.
    pub fn max_block(mut self, timeout: Duration) -> ProducerBuilder {
        self.cfg.max_block = timeout;
        self
    }

    /// `max.in.flight.requests.per.connection` (default 5; at most 5 with idempotence).
    pub fn max_in_flight(mut self, n: usize) -> ProducerBuilder {
        self.cfg.max_in_flight = n;
        self
    }

    /// `compression.type` (default none) and optionally `compression.level`.
    pub fn compression(mut self, codec: Compression, level: Option<i32>) -> ProducerBuilder {
        self.cfg.compression = codec;
        self.cfg.compression_level = level;
        self
    }

    /// Calls `handler` with the outcome of every record this producer sends, once each, in
    /// offset order within a batch: the Java client's `send(record, callback)` and librdkafka's
    /// delivery report, set once for the producer. With it, an application that only counts,
    /// logs or dead-letters outcomes can drop the [`DeliveryFuture`] that `send` returns
    /// (keeping one per record in flight costs 16 bytes each).
    ///
    /// The handler runs on the producer's sender task (or where the producer is dropped, for
    /// the records that drop fails), before the batch's bytes go back to `buffer.memory`: keep
    /// it short and never block in it. A failed record is given back through
    /// [`Delivery::take_record`].
    ///
    /// ```no_run
    /// # async fn f(client: ferrokafka::Client) -> ferrokafka::Result<()> {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use ferrokafka::{Producer, Record};
    ///
    /// let failed = Arc::new(AtomicU64::new(0));
    /// let counter = failed.clone();
    /// let producer = Producer::builder(&client)
    ///     .on_delivery(move |mut delivery| {
    ///         if let Some(e) = delivery.error() {
    ///             counter.fetch_add(1, Ordering::Relaxed);
    ///             eprintln!("not delivered: {e}: {:?}", delivery.take_record());
    ///         }
    ///     })
    ///     .build()
    ///     .await?;
    /// for i in 0..1000 {
    ///     drop(producer.send(Record::new("events").value(format!("event {i}"))).await?);
    /// }
    /// producer.flush().await?;
    /// # Ok(()) }
    /// ```
    pub fn on_delivery(
        mut self,
        handler: impl Fn(Delivery<'_>) + Send + Sync + 'static,
    ) -> ProducerBuilder {
        self.cfg.on_delivery = Some(report::DeliveryHandler::new(handler));
        self
    }

    /// A custom partitioner for records without an explicit partition.
    pub fn partitioner(mut self, p: impl Partitioner + 'static) -> ProducerBuilder {
        let mut slot = Some(p);
        let chosen = match (&mut slot as &mut dyn Any).downcast_mut::<Option<DefaultPartitioner>>()
        {
            Some(default) => {
                ChosenPartitioner::Default(Arc::new(default.take().expect("set just above")))
            }
            None => ChosenPartitioner::Custom(Arc::new(slot.take().expect("set just above"))),
        };
        self.partitioner = Some(chosen);
        self
    }

    /// Validates the configuration and starts the producer (and its client, when built from
    /// properties).
    pub async fn build(self) -> Result<Producer> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.cfg.validate()?;
        let client = match self.client {
            Some(c) => c,
            None => self.client_builder.build().await?,
        };
        let custom = |p: Arc<dyn Partitioner>| (p, None);
        let (partitioner, default_partitioner) =
            match (self.partitioner, self.cfg.partitioner.as_deref()) {
                (Some(ChosenPartitioner::Custom(p)), _) => custom(p),
                (Some(ChosenPartitioner::Default(p)), _) => (p.clone() as _, Some(p)),
                // librdkafka's names: `murmur2` hashes keyless records as an empty key, `murmur2_random`
                // spreads them randomly.
                (None, Some("murmur2")) => custom(Arc::new(Murmur2Partitioner::consistent())),
                (None, Some("murmur2_random")) => custom(Arc::new(Murmur2Partitioner::default())),
                (None, Some("round_robin") | Some("roundrobin")) => {
                    custom(Arc::new(RoundRobinPartitioner::default()))
                }
                (None, _) => {
                    let p = Arc::new(DefaultPartitioner::new(self.cfg.batch_size));
                    (p.clone() as _, Some(p))
                }
            };
        let cfg = Arc::new(self.cfg);
        let acc = Arc::new(Accumulator::new(
            cfg.clone(),
            Arc::clone(&partitioner),
            default_partitioner,
        ));
        let (closing_tx, closing_rx) = watch::channel(false);
        let txn = cfg.transactional_id.as_ref().map(|id| {
            Arc::new(Transactions::new(
                client.inner.clone(),
                id.clone(),
                cfg.transaction_timeout,
            ))
        });
        let sender = sender::Sender::new(client.inner.clone(), acc.clone(), txn.clone());
        let stats = sender.stats.clone();
        let task = tokio::spawn(sender.run(closing_rx));
        Ok(Producer {
            inner: Arc::new(ProducerInner {
                client,
                cfg,
                acc,
                partitioner,
                closed: AtomicBool::new(false),
                closing: closing_tx,
                task: Mutex::new(Some(task)),
                txn,
                stats,
            }),
        })
    }
}

/// An asynchronous Kafka producer. Cheap to clone; all clones share batches and connections.
///
/// Call [`Producer::close`] (or at least [`Producer::flush`]) before the last handle goes:
/// dropping it stops the producer at once, and records still queued or in flight fail with
/// [`Error::ProducerDropped`].
///
/// ```no_run
/// # async fn f(client: ferrokafka::Client) -> ferrokafka::Result<()> {
/// use ferrokafka::{Producer, Record};
/// let producer = Producer::builder(&client).build().await?;
/// let delivery = producer.send(Record::new("events").key("k").value("v")).await?;
/// let metadata = delivery.await?;
/// println!("written at {}-{}@{}", metadata.topic, metadata.partition, metadata.offset);
/// producer.close(std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

struct ProducerInner {
    client: Client,
    cfg: Arc<ProducerConfig>,
    acc: Arc<Accumulator>,
    partitioner: Arc<dyn Partitioner>,
    /// `close` was called. The same as `closing`, read by `send` without the watch's lock.
    closed: AtomicBool,
    closing: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    txn: Option<Arc<Transactions>>,
    /// Written by the sender task (metrics/producer.rs); `send` adds its buffer waits.
    stats: Arc<crate::metrics::producer::ProducerStats>,
}

impl std::fmt::Debug for ProducerInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerInner")
            .field("config", &self.cfg)
            .finish()
    }
}

impl Drop for ProducerInner {
    fn drop(&mut self) {
        // The sender task belongs to the handles. Aborting it drops the batches it holds,
        // which fails their records (BatchOwner) instead of leaving their futures pending.
        // Records still queued fail with `Error::ProducerDropped`, which says why: a service
        // that forgot `close()` learns it from the error, not from a bare "closed".
        self.acc.shared.dropped.store(true, Ordering::Release);
        if let Some(t) = self.task.get_mut().unwrap().take() {
            t.abort();
        }
        self.acc.abort_all(&Error::ProducerDropped);
    }
}

impl Producer {
    /// A builder for a producer that uses `client`'s connections and metadata.
    pub fn builder(client: &Client) -> ProducerBuilder {
        ProducerBuilder::with(Some(client.clone()))
    }

    /// Queues `record` and returns a future of its delivery. Waits while `buffer.memory` is
    /// full (backpressure) and, for a topic it has not seen, for the topic's metadata (up to
    /// `max.block.ms`).
    ///
    /// Fails at once, for this record only, if it can never be sent: larger than
    /// `max.request.size` ([`Error::InvalidInput`]), a partition that does not exist, an
    /// unknown topic after `max.block.ms`, or a closed producer.
    pub async fn send(&self, record: Record) -> Result<DeliveryFuture> {
        self.send_inner(&record, true).await
    }

    /// Like [`Producer::send`], but never waits for buffer space: fails with
    /// [`Error::BufferFull`] when `buffer.memory` is spent. Still waits for the metadata of
    /// a topic never seen before.
    pub async fn try_send(&self, record: Record) -> Result<DeliveryFuture> {
        self.send_inner(&record, false).await
    }

    /// The record is borrowed, not moved: `send`'s future already holds it, and every move
    /// of a `Record` is a copy of its ~140 bytes.
    async fn send_inner(&self, record: &Record, wait: bool) -> Result<DeliveryFuture> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let Record {
            topic,
            partition,
            key,
            value,
            headers,
            timestamp,
        } = record;
        if let Some(txn) = &inner.txn {
            txn.check_send()?;
        }
        let (partition, timestamp) = (*partition, *timestamp);
        let queue = match inner.acc.topic(topic) {
            Some(q) => q,
            // Boxed: the metadata wait is large and rare, and `send`'s own future, built for
            // every record, should not carry its space.
            None => Box::pin(self.topic_queue(topic)).await?,
        };
        let count = queue.partitions.len() as i32;
        let placed = partition.is_none();
        let key = key.as_deref();
        let value = value.as_deref();
        let partition = match partition {
            Some(p) if p < 0 || p >= count => {
                return Err(Error::InvalidInput(
                    format!("partition {p} of topic {topic} does not exist ({count} partitions)")
                        .into(),
                ))
            }
            Some(p) => p,
            None => queue.partition(&*inner.partitioner, key, count),
        };
        if let Some(txn) = &inner.txn {
            txn.ensure_partition(&TopicPartition::new(topic, partition))
                .await?;
        }
        // Key, value and headers are measured once; the batch adds the per-batch fields.
        let fields_len = fields_len(key.map(<[u8]>::len), value.map(<[u8]>::len), headers);
        let len = max_record_len_of(fields_len);
        if len + RECORD_BATCH_OVERHEAD > inner.cfg.max_request_size {
            return Err(Error::InvalidInput(
                format!(
                    "record of {} bytes is larger than max.request.size ({})",
                    len + RECORD_BATCH_OVERHEAD,
                    inner.cfg.max_request_size
                )
                .into(),
            ));
        }
        let budget = &inner.acc.shared.budget;
        let permit = match budget.try_acquire_many(len as u32) {
            Ok(p) => p,
            Err(_) if !wait => return Err(Error::BufferFull),
            Err(_) => {
                let waiting = std::time::Instant::now();
                let permit = budget.acquire_many(len as u32).await;
                inner.stats.waited_for_buffer(waiting.elapsed());
                permit.map_err(|_| Error::Closed)?
            }
        };
        permit.forget();
        let record = NewRecord {
            timestamp: timestamp.unwrap_or_else(now_millis),
            key,
            value,
            headers,
            fields_len,
        };
        let future = inner.acc.append(&queue, partition, &record, len);
        if future.is_err() {
            budget.add_permits(len);
        }
        let future = future?;
        if placed {
            queue.on_append(&*inner.partitioner, partition, key, len);
            Ok(future)
        } else {
            Ok(future.explicit_partition())
        }
    }

    /// The queue of `topic`, learning its partition count from metadata the first time.
    async fn topic_queue(&self, topic: &str) -> Result<Arc<TopicQueue>> {
        let inner = &*self.inner;
        if let Some(q) = inner.acc.topic(topic) {
            return Ok(q);
        }
        // Checked once per topic, before any metadata request: a malformed name would
        // otherwise be auto-created by brokers that allow it, and stay in the refresh set.
        crate::admin::validate_topic_name(topic)?;
        let deadline = Instant::now() + inner.cfg.max_block;
        let client = &inner.client.inner;
        let mut last = None;
        let mut asked = false;
        loop {
            let snapshot = client.metadata.snapshot();
            if let Some(t) = snapshot.cluster.topic(topic) {
                if t.error.is_none() && !t.partitions.is_empty() {
                    return Ok(inner.acc.add_topic(topic, t.partitions.len()));
                }
                last = t
                    .error
                    .map(|code| Error::broker(code, None, format!("metadata for topic {topic}")));
            }
            if Instant::now() >= deadline {
                return Err(last.unwrap_or_else(|| Error::Timeout {
                    operation: format!("metadata for topic {topic} (max.block.ms)").into(),
                    after: inner.cfg.max_block,
                    last: None,
                }));
            }
            if let Some(e) = &last {
                // A permanent error in the cache may be stale (an ACL granted or a topic
                // created since it was fetched): only an answer newer than that snapshot is
                // final, as Java asks again on every send to a topic it has no partitions for.
                if !e.is_retriable() && asked {
                    return Err(e.clone());
                }
            }
            if let Err(e) = client
                .refresh_metadata(
                    TopicsQuery::Some(vec![topic.to_owned()]),
                    Some(snapshot.generation),
                )
                .await
            {
                last = Some(e);
            }
            asked = true;
            if client.metadata.snapshot().generation == snapshot.generation || last.is_some() {
                tokio::time::sleep(
                    client
                        .cfg
                        .retry_backoff
                        .min(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
            }
        }
    }

    /// Records and bytes acknowledged, batch sizes, queue time, retries, errors by name,
    /// buffer use: see [`ProducerMetrics`](crate::ProducerMetrics). Cheap: atomic loads and
    /// a copy of a few histograms; counted per batch in the sender task, never per record.
    pub fn metrics(&self) -> crate::metrics::ProducerMetrics {
        let inner = &self.inner;
        let total = inner
            .cfg
            .buffer_memory
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        let used = total.saturating_sub(inner.acc.shared.budget.available_permits());
        inner.stats.snapshot(used, inner.cfg.buffer_memory)
    }

    /// Waits until every record sent before this call is delivered or failed. Batches are sent
    /// at once, without waiting for `linger.ms`.
    pub async fn flush(&self) -> Result<()> {
        let acc = &self.inner.acc;
        acc.flushing.fetch_add(1, Ordering::AcqRel);
        acc.wake.notify_one();
        let pending = acc.incomplete();
        for c in pending {
            let _ = DeliveryFuture::of_batch(c).await;
        }
        acc.flushing.fetch_sub(1, Ordering::AcqRel);
        Ok(())
    }

    /// Flushes, then stops the producer. Records still undelivered after `timeout` fail with
    /// [`Error::Closed`]. Later sends fail with [`Error::Closed`].
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        let inner = &*self.inner;
        inner.closed.store(true, Ordering::Release);
        inner.closing.send_replace(true);
        inner.acc.wake.notify_one();
        let task = inner.task.lock().unwrap().take();
        let Some(mut task) = task else { return Ok(()) };
        let drained = tokio::time::timeout(timeout, &mut task).await;
        if drained.is_err() {
            task.abort();
            let _ = task.await;
            inner.acc.abort_all(&Error::Closed);
            return Err(Error::Timeout {
                operation: "producer close (records left undelivered)".into(),
                after: timeout,
                last: None,
            });
        }
        Ok(())
    }

    fn transactions(&self) -> Result<&Transactions> {
        self.inner.txn.as_deref().ok_or_else(|| {
            Error::InvalidState("transactions need a transactional.id on the producer".into())
        })
    }

    /// Registers the `transactional.id` with its coordinator (InitProducerId): fences every
    /// older producer with the same id and has the coordinator abort a transaction one of
    /// them left open. Call once, before the first transaction.
    ///
    /// Errors: retriable ones (coordinator loading or moving, CONCURRENT_TRANSACTIONS) are
    /// retried within `default.api.timeout.ms`; TRANSACTIONAL_ID_AUTHORIZATION_FAILED and
    /// fencing errors are fatal; a second call is [`Error::InvalidState`].
    pub async fn init_transactions(&self) -> Result<()> {
        self.transactions()?.init().await
    }

    /// Starts a transaction: records sent from now on are committed or aborted together.
    /// [`Error::InvalidState`] outside the ready state (before `init_transactions`, or with a
    /// transaction already open).
    pub fn begin_transaction(&self) -> Result<()> {
        self.transactions()?.begin()
    }

    /// Adds a consumer group's offsets to the open transaction (consume-transform-produce):
    /// they are committed with the transaction's records, or not at all. `group` is the
    /// consuming member's [`Consumer::group_metadata`](crate::Consumer::group_metadata), so a
    /// zombie member of an older generation is fenced (KIP-447).
    ///
    /// A failure makes the transaction abortable (abort, then retry the transaction); fencing
    /// errors are fatal.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &std::collections::HashMap<TopicPartition, CommitOffset>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.transactions()?.send_offsets(offsets, group).await
    }

    /// Delivers every record of the transaction, then commits it (EndTxn). If any record or
    /// offset of the transaction failed, nothing is committed: the error is returned and the
    /// transaction must be aborted. PRODUCER_FENCED (and INVALID_PRODUCER_EPOCH from the
    /// transaction coordinator) end the producer.
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.transactions()?;
        txn.check_send()?;
        self.flush().await?;
        txn.end(true).await
    }

    /// Aborts the open transaction: records already sent are delivered first and then
    /// marked aborted (read_committed consumers never see them). Fencing errors are fatal.
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.transactions()?;
        txn.check_send()?;
        self.flush().await?;
        txn.end(false).await
    }

    /// The client this producer uses.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }
}
