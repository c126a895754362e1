//! The sender task: drains ready batches into ProduceRequests, one request per broker at a
//! time up to `max.in.flight.requests.per.connection`, and decides every batch's fate.
//!
//! ```text
//!  wake (new/full batch, flush) ─┐
//!  linger / retry deadline ──────┼─► pass over partitions ─► per leader: ≤1 batch per partition
//!  a request completes ──────────┘       │                   into one ProduceRequest (spawned)
//!                                         └─ unknown leader → one background metadata refresh
//!  response ─► per batch: success → finish; error → classify(Produce):
//!              retry (same sequence, front of its queue, backoff) | epoch bump | fail
//! ```
//!
//! Ownership: this task alone takes batches out of partition queues, assigns sequences, holds
//! batches in flight, and owns the producer identity. Requests run as futures inside this task
//! (`FuturesUnordered`), so a slow broker only occupies its own in-flight slots: passes continue
//! and other brokers keep being served. Leaders come from the client's metadata snapshot,
//! read once per pass. The pass itself (which batch leaves, in which request) is in
//! `drain.rs`.
//!
//! Ordering: while a partition has a sealed batch waiting for a retry, it sends nothing else
//! until its in-flight requests are done, then resends in sequence order, so retries can never
//! overtake earlier batches (with idempotence the broker would reject the gap anyway).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::Future;
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn, Instrument};

use super::accumulator::{Accumulator, Queued};
use super::batch::{BatchOutcome, ProducerBatch};
use super::config::Acks;
use super::idempotence::{self, Identity};
use super::seal::Sealer;
use super::transaction::Transactions;
use crate::backoff::Backoff;
use crate::classify::{classify, Action};
use crate::client::metadata::TopicsQuery;
use crate::client::ClientInner;
use crate::codes::KafkaCode;
use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::protocol::{by_name_version, encode_produce, ProduceBody, ProduceTopic};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request that came back (or failed) with the batches it carried.
struct Completed {
    broker: i32,
    batches: Vec<ProducerBatch>,
    /// The topic id each topic was sent under (`None`: by name), to find its answer. A
    /// request has few topics: a list, searched linearly.
    sent_ids: Vec<(Arc<str>, Option<[u8; 16]>)>,
    result: Result<ProduceResponse>,
}

enum Event {
    Request(Completed),
    Identity(Result<Identity>),
    MetadataRefreshed,
}

pub(crate) struct Sender {
    client: Arc<ClientInner>,
    acc: Arc<Accumulator>,
    idempotent: bool,
    acks: Acks,
    identity: Option<Identity>,
    /// An InitProducerId (initial or epoch bump) is under way or must start once idle.
    identity_pending: bool,
    bump_requested: bool,
    in_flight: FuturesUnordered<Boxed<Event>>,
    in_flight_by_broker: HashMap<i32, usize>,
    /// Per leader, the position (in a pass's partition order) where draining starts: just
    /// past the partition drained last for that leader.
    drain_from: HashMap<i32, usize>,
    /// Partitions a pass drains after the others (before their leader's cursor); kept to
    /// reuse the allocation.
    deferred: Vec<(usize, usize, usize, i32)>,
    refreshing: bool,
    retry_backoff: Backoff,
    /// Compresses batches on its compression threads; `None` without compression (batches are then
    /// sealed inline: a header write).
    sealer: Option<Sealer>,
    /// The transactional side, for a producer with `transactional.id`: the identity comes
    /// from `init_transactions`, batches carry the transactional bit, and a batch that fails
    /// makes the open transaction abortable.
    txn: Option<Arc<Transactions>>,
    /// Producer metrics: written here once per request and per batch outcome, read by
    /// `Producer::metrics`.
    pub(crate) stats: Arc<crate::metrics::producer::ProducerStats>,
}

impl Sender {
    pub(crate) fn new(
        client: Arc<ClientInner>,
        acc: Arc<Accumulator>,
        txn: Option<Arc<Transactions>>,
    ) -> Sender {
        let cfg = acc.cfg.clone();
        let retry_backoff = Backoff::new(client.cfg.retry_backoff, client.cfg.retry_backoff_max);
        Sender {
            stats: Arc::new(crate::metrics::producer::ProducerStats::new(
                &client.cfg.client_id,
                cfg.batch_size,
            )),
            client,
            idempotent: cfg.idempotent(),
            acks: cfg.effective_acks(),
            identity: None,
            identity_pending: false,
            bump_requested: false,
            in_flight: FuturesUnordered::new(),
            in_flight_by_broker: HashMap::new(),
            drain_from: HashMap::new(),
            deferred: Vec::new(),
            refreshing: false,
            retry_backoff,
            sealer: (cfg.compression != Compression::None)
                .then(|| Sealer::new(&cfg, acc.wake.clone())),
            acc,
            txn,
        }
    }

    /// Runs until `closing` is set and nothing is left to send, or until aborted.
    pub(crate) async fn run(mut self, mut closing: watch::Receiver<bool>) {
        if self.idempotent {
            self.start_identity(None);
        }
        loop {
            let closing_now = *closing.borrow();
            let next = self.pass(closing_now);
            if closing_now && self.in_flight.is_empty() && self.acc.incomplete().is_empty() {
                return;
            }
            tokio::select! {
                _ = self.acc.wake.notified() => {}
                Some(event) = self.in_flight.next(), if !self.in_flight.is_empty() => self.handle(event),
                _ = tokio::time::sleep_until(next) => {}
                _ = closing.changed(), if !closing_now => {}
            }
        }
    }

    fn start_identity(&mut self, current: Option<Identity>) {
        self.identity_pending = true;
        if let Some(txn) = &self.txn {
            // A transactional producer gets its identity from init_transactions only; it never
            // bumps the epoch by itself (sequence trouble aborts the transaction instead).
            let mut rx = txn.identity();
            self.in_flight.push(Box::pin(async move {
                let id = rx
                    .wait_for(|i| i.is_some() && *i != current)
                    .await
                    .map(|i| i.expect("checked"))
                    .map_err(|_| Error::Closed);
                Event::Identity(id)
            }));
            return;
        }
        let client = self.client.clone();
        self.in_flight.push(Box::pin(async move {
            Event::Identity(idempotence::init_producer_id(&client, current).await)
        }));
    }

    fn request_metadata(&mut self) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let client = self.client.clone();
        self.in_flight.push(Box::pin(async move {
            if let Err(e) = client
                .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
                .await
            {
                debug!(error = %e, "producer metadata refresh failed");
                // Do not spin: the next pass may ask again.
                tokio::time::sleep(client.cfg.retry_backoff).await;
            }
            Event::MetadataRefreshed
        }));
    }

    fn requests_in_flight(&self) -> usize {
        self.in_flight_by_broker.values().sum()
    }

    fn send(
        &mut self,
        broker: i32,
        batches: Vec<ProducerBatch>,
        snapshot: &crate::client::metadata::Snapshot,
    ) {
        let client = self.client.clone();
        let acks = self.acks;
        let timeout = client.cfg.request_timeout;
        let mut topics: Vec<ProduceTopic> = Vec::new();
        for b in &batches {
            let data = (b.partition(), Bytes::clone(&b.bytes));
            match topics.iter_mut().find(|t| t.name == *b.topic()) {
                Some(t) => t.partitions.push(data),
                None => topics.push(ProduceTopic {
                    name: b.topic().clone(),
                    // Read from the metadata at every send: after a topic is recreated, the
                    // refresh that UNKNOWN_TOPIC_ID asks for gives the new id, and batches
                    // stop going to the old one.
                    id: snapshot.topic_id(b.topic()),
                    partitions: vec![data],
                }),
            }
        }
        let sent_ids: Vec<(Arc<str>, Option<[u8; 16]>)> =
            topics.iter().map(|t| (t.name.clone(), t.id)).collect();
        // Produce v13 names topics by id only: without an id for every topic, v12 by name.
        let by_id = topics.iter().all(|t| t.id.is_some());
        // Produce v12+ tells a partition leader that the transaction uses transactions v2
        // (it adds the partition itself): transactions v1 write with v11 at most, as Java.
        let cap = match &self.txn {
            Some(t) if !t.uses_v2() => 11,
            _ => i16::MAX,
        };
        // The batches go into the frame by reference (`encode_produce`): a record's bytes are
        // copied once, by `send`, and then only by the kernel.
        let req = ProduceBody {
            // Kafka authorizes transactional batches by this id; without it a real broker
            // answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
            transactional_id: self.txn.as_ref().map(|t| Arc::from(t.id())),
            acks: acks.wire(),
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            topics,
        };
        let mut batches = batches;
        let span = self.observe_request(&batches);
        for b in &mut batches {
            b.attempts += 1;
        }
        if acks == Acks::None {
            // The broker never answers acks=0: the batches are done once written.
            let fut = async move {
                let result = match client.broker(broker).await {
                    Ok(conn) => conn.version(ApiKey::Produce).and_then(|v| {
                        let v = by_name_version(v, by_id).min(cap);
                        conn.send_unanswered(|correlation_id, client_id| {
                            encode_produce(&req, v, correlation_id, client_id)
                        })
                    }),
                    Err(e) => Err(e),
                };
                Event::Request(Completed {
                    broker,
                    batches,
                    sent_ids,
                    result: result.map(|_| ProduceResponse::default()),
                })
            };
            *self.in_flight_by_broker.entry(broker).or_default() += 1;
            self.in_flight.push(Box::pin(fut.instrument(span)));
            return;
        }
        *self.in_flight_by_broker.entry(broker).or_default() += 1;
        self.in_flight.push(Box::pin(async move {
            let result = async {
                let conn = client.broker(broker).await?;
                let version = by_name_version(conn.version(ApiKey::Produce)?, by_id).min(cap);
                conn.call_encoded::<ProduceRequest>(
                    version,
                    timeout,
                    |correlation_id, client_id| {
                        encode_produce(&req, version, correlation_id, client_id)
                    },
                )
                .await
            }
            .instrument(span)
            .await;
            Event::Request(Completed {
                broker,
                batches,
                sent_ids,
                result,
            })
        }));
    }

    /// Metrics and the `send` span of a Produce request about to go out.
    fn observe_request(&self, batches: &[ProducerBatch]) -> tracing::Span {
        use crate::metrics::producer::SentBatch;
        self.stats.request(batches.iter().map(|b| SentBatch {
            bytes: b.bytes.len(),
            records: b.record_count,
            attempts: b.attempts,
            age: b.created.elapsed(),
        }));
        let used = self
            .acc
            .cfg
            .buffer_memory
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        self.stats
            .buffer_used(used.saturating_sub(self.acc.shared.budget.available_permits()));
        let first = batches.first();
        let one_topic = first
            .filter(|f| batches.iter().all(|b| b.topic() == f.topic()))
            .map(|f| &**f.topic());
        let one_partition = first.filter(|_| batches.len() == 1).map(|f| f.partition());
        let records = batches.iter().map(|b| b.record_count.max(0) as u64).sum();
        crate::metrics::spans::send(
            &self.client.cfg.client_id,
            one_topic,
            one_partition,
            records,
        )
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::MetadataRefreshed => self.refreshing = false,
            Event::Identity(Ok(id)) => {
                // A transactional identity may have moved on since the event was made.
                let id = self
                    .txn
                    .as_ref()
                    .and_then(|t| t.latest_identity())
                    .unwrap_or(id);
                let bumped = self.identity.is_some();
                debug!(
                    producer_id = id.producer_id,
                    epoch = id.epoch,
                    bumped,
                    "producer identity"
                );
                self.identity = Some(id);
                self.identity_pending = false;
                self.retry_backoff.reset();
                if bumped {
                    self.resequence_after_bump();
                }
            }
            Event::Identity(Err(e)) => {
                // Kafka rejects a bump it cannot do (an older broker, or one that keeps no
                // state for this id) with a permanent error: a fresh producer id is then just
                // as safe, since sequences restart at 0 either way and batches that may be in
                // the log were already failed.
                let retry_with = match self.identity {
                    Some(_) if !e.is_retriable() => {
                        warn!(error = %e, "epoch bump refused; requesting a new producer id");
                        None
                    }
                    current => {
                        if !e.is_retriable() {
                            // No id at all and the broker says no (authorization, …): records
                            // waiting for one get the error instead of waiting for their
                            // delivery timeout; later sends try again.
                            warn!(error = %e, "InitProducerId failed");
                            self.acc.abort_all(&e);
                        }
                        current
                    }
                };
                let client = self.client.clone();
                let delay = self.retry_backoff.next_delay();
                self.identity_pending = true;
                self.in_flight.push(Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    Event::Identity(idempotence::init_producer_id(&client, retry_with).await)
                }));
            }
            Event::Request(done) => self.handle_response(done),
        }
    }

    fn handle_response(&mut self, done: Completed) {
        if let Some(n) = self.in_flight_by_broker.get_mut(&done.broker) {
            *n = n.saturating_sub(1);
        }
        let acks_none = self.acks == Acks::None;
        for batch in done.batches {
            let outcome = match &done.result {
                Err(e) => Err(e.clone()),
                Ok(_) if acks_none => Ok(BatchOutcome {
                    base_offset: -1,
                    log_append_time: None,
                }),
                Ok(resp) => {
                    let sent_id = done
                        .sent_ids
                        .iter()
                        .find(|(name, _)| name == batch.topic())
                        .and_then(|(_, id)| *id);
                    partition_outcome(resp, &batch, sent_id)
                }
            };
            self.partition_done(&batch, outcome.is_ok());
            match outcome {
                Ok(o) => {
                    self.stats
                        .acknowledged(batch.bytes.len(), batch.record_count);
                    batch.finish(Ok(o))
                }
                Err(e) => self.failed(batch, e),
            }
        }
    }

    /// One of the partition's requests is back; `appended` when its batch is in the log
    /// (which confirms the partition's sequence to the broker).
    fn partition_done(&self, batch: &ProducerBatch, appended: bool) {
        if let Some(t) = self.acc.topic(batch.topic()) {
            if let Some(slot) = t.partitions.get(batch.partition() as usize) {
                let mut st = slot.lock().unwrap();
                st.in_flight = st.in_flight.saturating_sub(1);
                st.sequence_confirmed |= appended;
            }
        }
    }

    /// Decides what a failed batch does next: retry, epoch bump, or fail.
    fn failed(&mut self, mut batch: ProducerBatch, err: Error) {
        let action = classify(&err, Some(ApiKey::Produce));
        let code = err.kafka_code();
        let deadline = batch.created + self.acc.cfg.delivery_timeout;
        let now = Instant::now();
        if action.contains(Action::POSSIBLY_PERSISTED) {
            batch.possibly_persisted = true;
        }
        let sequence_trouble = self.idempotent
            && matches!(
                code,
                Some(
                    KafkaCode::OutOfOrderSequenceNumber
                        | KafkaCode::UnknownProducerId
                        | KafkaCode::InvalidProducerEpoch
                )
            );
        if sequence_trouble {
            if self.earlier_batch_retrying(&batch) {
                // The gap is an earlier batch of ours being retried: resend in order.
                return self.requeue(batch, err, now);
            }
            if batch.possibly_persisted || self.txn.is_some() {
                return self.fail(batch, err);
            }
            // KIP-360: new epoch, sequences restart at 0; this batch was not appended.
            self.bump_requested = true;
            batch.base_sequence = None;
            return self.requeue(batch, err, now);
        }
        if action.contains(Action::RETRY) && batch.attempts > self.acc.cfg.retries {
            // `retries` spent: the retriable error is the batch's final one (Java's
            // semantics; `delivery.timeout.ms` may end the retries sooner).
            return self.fail(batch, err);
        }
        if action.contains(Action::RETRY) && now + self.client.cfg.retry_backoff < deadline {
            if action.contains(Action::REFRESH_METADATA) {
                self.request_metadata();
            }
            return self.requeue(batch, err, now);
        }
        if action.contains(Action::RETRY) {
            let operation = format!("delivery to {}-{}", batch.topic(), batch.partition());
            return self.fail(
                batch,
                Error::Timeout {
                    operation: operation.into(),
                    after: self.acc.cfg.delivery_timeout,
                    last: Some(Arc::new(err)),
                },
            );
        }
        self.fail(batch, err)
    }

    /// A batch's final failure; inside a transaction it also makes the transaction abortable.
    fn fail(&self, batch: ProducerBatch, err: Error) {
        if let Some(txn) = &self.txn {
            txn.record_failure(&err);
        }
        self.stats.failed(batch.record_count, &err);
        batch.finish(Err(err))
    }

    fn earlier_batch_retrying(&self, batch: &ProducerBatch) -> bool {
        let (Some(t), Some(seq)) = (self.acc.topic(batch.topic()), batch.base_sequence) else {
            return false;
        };
        let Some(slot) = t.partitions.get(batch.partition() as usize) else {
            return false;
        };
        let st = slot.lock().unwrap();
        st.queue
            .iter()
            .any(|q| matches!(q, Queued::Sealed(b) if b.base_sequence.is_some_and(|s| s < seq)))
    }

    /// Puts a batch back at the front of its queue, in sequence order, after a backoff.
    fn requeue(&mut self, mut batch: ProducerBatch, err: Error, now: Instant) {
        self.stats.retried();
        let delay = self
            .client
            .cfg
            .retry_backoff
            .saturating_mul(1 << batch.attempts.min(10))
            .min(self.client.cfg.retry_backoff_max);
        batch.retry_at = Some(now + crate::backoff::jitter(delay));
        batch.last_error = Some(err);
        let Some(t) = self.acc.topic(batch.topic()) else {
            return batch.finish(Err(Error::Closed));
        };
        let Some(slot) = t.partitions.get(batch.partition() as usize) else {
            return batch.finish(Err(Error::Closed));
        };
        let mut st = slot.lock().unwrap();
        let pos = st
            .queue
            .iter()
            .position(|q| match q {
                Queued::Sealed(b) => match (b.base_sequence, batch.base_sequence) {
                    (Some(a), Some(mine)) => a > mine,
                    _ => false,
                },
                Queued::Open(_) | Queued::Sealing(_) => true,
            })
            .unwrap_or(st.queue.len());
        st.queue.insert(pos, Queued::Sealed(batch));
        drop(st);
        self.acc.wake.notify_one();
    }

    /// After an epoch bump every partition's sequence restarts at 0; sealed batches waiting for
    /// a retry get new sequences in order, except those that may already be in the log.
    fn resequence_after_bump(&mut self) {
        let Some(id) = self.identity else { return };
        for topic in self.acc.topics() {
            for slot in &topic.partitions {
                let mut st = slot.lock().unwrap();
                st.next_sequence = 0;
                st.sequence_confirmed = false;
                let queue = std::mem::take(&mut st.queue);
                for q in queue {
                    match q {
                        Queued::Sealed(b) if b.possibly_persisted => {
                            let err = b.last_error.clone().unwrap_or(Error::Closed);
                            b.finish(Err(err));
                        }
                        Queued::Sealed(mut b) => {
                            self.restamp(&mut st, &mut b, id);
                            st.queue.push_back(Queued::Sealed(b));
                        }
                        open => st.queue.push_back(open),
                    }
                }
            }
        }
        self.acc.wake.notify_one();
    }
}

/// The outcome of one batch from a ProduceResponse. A v13 answer names topics by the id they
/// were sent under (`sent_id`), older ones by name.
fn partition_outcome(
    resp: &ProduceResponse,
    batch: &ProducerBatch,
    sent_id: Option<[u8; 16]>,
) -> Result<BatchOutcome> {
    let p = resp
        .responses
        .iter()
        .filter(|t| match (t.topic_id.is_nil(), sent_id) {
            (false, Some(id)) => *t.topic_id.as_bytes() == id,
            _ => t.name.0.as_str() == &**batch.topic(),
        })
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == batch.partition())
        .ok_or_else(|| {
            Error::protocol(format!(
                "ProduceResponse lacks {}-{}",
                batch.topic(),
                batch.partition()
            ))
        })?;
    match KafkaCode::from_code(p.error_code) {
        None => {}
        // A retry of a batch the broker already has: it was appended once, which is success.
        Some(KafkaCode::DuplicateSequenceNumber) => {}
        Some(code) => {
            return Err(Error::broker(
                code,
                p.error_message.as_deref(),
                format!("Produce to {}-{}", batch.topic(), batch.partition()),
            ))
        }
    }
    Ok(BatchOutcome {
        base_offset: p.base_offset,
        log_append_time: (p.log_append_time_ms >= 0).then_some(p.log_append_time_ms),
    })
}

#[path = "drain.rs"]
mod drain;

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
