//! The share consumer: share groups, KIP-932 ("queues for Kafka").
//!
//! ```text
//! heartbeat task ── ShareGroupHeartbeat ──► assignment (watch) ──┐
//!                                                               ▼
//! recv ─► buffered record? ─ no ─► fetch round (task): ShareFetch per leader, acks piggy-backed
//!   │                                   │ acquired records ─► buffer + held (acks.rs)
//!   └─ implicit mode: accepts what the previous recv returned
//! acknowledge (explicit) ─► held ─► next ShareFetch / commit (ShareAcknowledge) / close (-1)
//! ```
//!
//! Unlike a consumer group, a share group hands the same partition to many members and locks
//! records one by one: each record a member acquires is its own until it acknowledges it
//! (ACCEPT, RELEASE, REJECT) or the acquisition lock expires, after which the broker delivers
//! it again (with a higher delivery count) to whichever member fetches next. The client does
//! nothing special about lock expiry: a late acknowledgement simply fails with
//! INVALID_RECORD_STATE, which `commit` reports per partition.
//!
//! Ownership: the `ShareConsumer` owns the heartbeat task (membership.rs) and the fetch round
//! in flight (fetch.rs); `close()` acknowledges what it can, releases the rest, closes the
//! share sessions and leaves the group; dropping the consumer aborts both tasks (the broker
//! then releases the records when the connections close or the locks expire).

mod acks;
mod config;
mod fetch;
mod membership;
mod session;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::Stream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::client::metadata::TopicsQuery;
use crate::client::{Client, ClientBuilder};
use crate::config::{route_property, Route};
use crate::consumer::coordinator::GroupCoordinator;
use crate::consumer::{ConsumerRecord, TopicPartition};
use crate::error::{Error, Result};
pub use acks::AcknowledgeType;
use acks::{Ack, Held};
pub use config::AcknowledgementMode;
use config::{ShareConfig, SHARE_KEYS};
use membership::{Assignment, Heartbeat};
use session::{Observed, Sessions};

/// A record from a share group: the record and how many times the broker has delivered it
/// (1 the first time; higher after a release, a lock expiry or a member leaving).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareRecord {
    /// The record.
    pub record: ConsumerRecord,
    /// The delivery count from the broker's AcquiredRecords range holding this offset.
    pub delivery_count: i16,
}

impl std::ops::Deref for ShareRecord {
    type Target = ConsumerRecord;
    fn deref(&self) -> &ConsumerRecord {
        &self.record
    }
}

/// Builds a [`ShareConsumer`]. Setters never fail; the first invalid value is reported by
/// [`ShareConsumerBuilder::build`].
pub struct ShareConsumerBuilder {
    client: Option<Client>,
    client_builder: ClientBuilder,
    cfg: ShareConfig,
    error: Option<Error>,
}

impl std::fmt::Debug for ShareConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareConsumerBuilder")
            .field("config", &self.cfg)
            .finish()
    }
}

impl ShareConsumerBuilder {
    fn with(client: Option<Client>) -> ShareConsumerBuilder {
        ShareConsumerBuilder {
            client,
            client_builder: ClientBuilder::new(),
            cfg: ShareConfig::default(),
            error: None,
        }
    }

    /// A builder from Java property names: client keys (`bootstrap.servers`, …) configure
    /// the consumer's own [`Client`]; share-consumer keys (`group.id`,
    /// `share.acknowledgement.mode`, `max.poll.records`, `fetch.max.wait.ms`, …) the
    /// consumer. An unknown key fails `build()`, naming it.
    pub fn from_properties<K: AsRef<str>, V: AsRef<str>>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> ShareConsumerBuilder {
        props
            .into_iter()
            .fold(ShareConsumerBuilder::with(None), |b, (k, v)| {
                b.set(k.as_ref(), v.as_ref())
            })
    }

    /// Sets one property by name (see `docs/CONFIGURATION.md`).
    pub fn set(mut self, key: &str, value: &str) -> ShareConsumerBuilder {
        let applied = self.cfg.apply(key, value);
        match route_property(applied, key, self.client.is_none(), SHARE_KEYS) {
            Ok(Route::Own) => {}
            Ok(Route::Client) => self.client_builder = self.client_builder.set(key, value),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// `group.id`: the share group. Required.
    pub fn group_id(mut self, group: impl Into<String>) -> ShareConsumerBuilder {
        self.cfg.group_id = Some(group.into());
        self
    }

    /// `share.acknowledgement.mode` (default [`AcknowledgementMode::Implicit`]).
    pub fn acknowledgement_mode(mut self, mode: AcknowledgementMode) -> ShareConsumerBuilder {
        self.cfg.mode = mode;
        self
    }

    /// `max.poll.records` (default 500): the most records one ShareFetch acquires.
    pub fn max_poll_records(mut self, n: usize) -> ShareConsumerBuilder {
        self.cfg.max_poll_records = n.clamp(1, i32::MAX as usize) as i32;
        self
    }

    /// `fetch.max.wait.ms` (default 500 ms): how long a broker may hold a ShareFetch that
    /// has nothing to give.
    pub fn fetch_max_wait(mut self, wait: std::time::Duration) -> ShareConsumerBuilder {
        self.cfg.fetch_max_wait = wait;
        self
    }

    /// Validates the configuration and creates the consumer (and its client, when built
    /// from properties). Nothing is sent before [`ShareConsumer::subscribe`].
    pub async fn build(self) -> Result<ShareConsumer> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.cfg.validate()?;
        let client = match self.client {
            Some(c) => c,
            None => self.client_builder.build().await?,
        };
        let group = self.cfg.group_id.clone().expect("validated");
        let cfg = Arc::new(self.cfg);
        let member_id = membership::new_member_id();
        let observed = Arc::new(Observed::default());
        let shared = Arc::new(Shared {
            observed: observed.clone(),
            coordinator: Arc::new(GroupCoordinator::new(client.inner.clone(), group.clone())),
            cfg: cfg.clone(),
            member_id: member_id.clone(),
            group: group.clone(),
            assignment: watch::channel(Arc::new(Assignment::default())).0,
            fatal: watch::channel(None).0,
            topics: watch::channel(Vec::new()).0,
            held: Mutex::new(Held::default()),
            buffer: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
            ack_failures: AtomicU64::new(0),
            client,
        });
        let sessions = Sessions::new(shared.client.inner.clone(), cfg, group, member_id, observed);
        Ok(ShareConsumer {
            shared,
            poll: tokio::sync::Mutex::new(Poll {
                sessions: Some(sessions),
                round: None,
            }),
            heartbeat: Mutex::new(None),
            stop: watch::channel(false).0,
        })
    }
}

/// State shared by the application's calls, the fetch round task and the heartbeat task.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) cfg: Arc<ShareConfig>,
    member_id: String,
    group: String,
    coordinator: Arc<GroupCoordinator>,
    /// Written by the heartbeat task only.
    pub(crate) assignment: watch::Sender<Arc<Assignment>>,
    /// Set by the heartbeat task when the membership cannot go on.
    fatal: watch::Sender<Option<Error>>,
    /// The subscription; written by `subscribe`, read by the heartbeat task.
    topics: watch::Sender<Vec<String>>,
    /// Acquired records not yet acknowledged to the broker.
    pub(crate) held: Mutex<Held>,
    /// Records acquired and not handed out yet, with the broker that served them.
    buffer: Mutex<VecDeque<(i32, ShareRecord)>>,
    closed: AtomicBool,
    /// Acknowledgements the broker refused or that could not be sent (piggy-backed ones;
    /// `commit` reports its own per partition).
    ack_failures: AtomicU64,
    /// What the brokers' answers said (renewal support, lock duration); written by the
    /// requests (`session.rs`).
    observed: Arc<Observed>,
}

impl Shared {
    pub(crate) fn topics(&self) -> Vec<String> {
        self.topics.borrow().clone()
    }

    pub(crate) fn count_ack_failure(&self) {
        self.ack_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A broker's session is gone: so is every record acquired in it (held or buffered).
    pub(crate) fn forget_broker(&self, broker: i32) {
        self.held.lock().unwrap().forget_broker(broker);
        self.buffer.lock().unwrap().retain(|(b, _)| *b != broker);
    }

    /// Settles the renewals `p` carried after its `answer`: the records whose partition the
    /// broker answered without an acknowledgement error are held again, the others are gone.
    pub(crate) fn settle_renewals(
        &self,
        p: &session::Prepared,
        answer: &Result<Vec<session::PartitionAnswer>>,
    ) {
        if p.renewing.is_empty() {
            return;
        }
        let mut held = self.held.lock().unwrap();
        for tp in &p.renewing {
            let extended = match answer {
                Ok(parts) => !parts.iter().any(|a| a.tp == *tp && a.ack_error.is_some()),
                Err(_) => false,
            };
            held.finish_renewal(tp, extended);
        }
    }

    /// Queues what a fetch acquired, and marks the gaps for acknowledgement.
    pub(crate) fn buffer_records(
        &self,
        broker: i32,
        tp: &TopicPartition,
        topic_id: Uuid,
        records: Vec<ShareRecord>,
        gaps: &[i64],
    ) {
        let mut held = self.held.lock().unwrap();
        let mut buffer = self.buffer.lock().unwrap();
        for &offset in gaps {
            held.gap(tp, broker, topic_id, offset);
        }
        for r in records {
            held.buffered(tp, broker, topic_id, r.record.offset);
            buffer.push_back((broker, r));
        }
    }
}

/// The record's partition, sharing its topic name (no allocation per record).
fn tp_of(r: &ShareRecord) -> TopicPartition {
    TopicPartition {
        topic: r.record.topic.clone(),
        partition: r.record.partition,
    }
}

/// The polling side: the share sessions, or the round task that has them right now.
struct Poll {
    sessions: Option<Sessions>,
    round: Option<JoinHandle<(Sessions, Result<()>)>>,
}

/// A member of a share group (KIP-932): records are handed out one at a time with their
/// delivery count, and acknowledged one by one.
///
/// ```no_run
/// # async fn f(client: ferrokafka::Client) -> ferrokafka::Result<()> {
/// use ferrokafka::ShareConsumer;
/// let consumer = ShareConsumer::builder(&client).group_id("workers").build().await?;
/// consumer.subscribe(&["jobs"]).await?;
/// loop {
///     // Implicit mode: this call accepts the record the previous call returned.
///     let job = consumer.recv().await?;
///     let (p, o, n) = (job.partition, job.offset, job.delivery_count);
///     println!("{}-{p}@{o} (delivery {n})", job.topic);
/// }
/// # }
/// ```
pub struct ShareConsumer {
    shared: Arc<Shared>,
    poll: tokio::sync::Mutex<Poll>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    /// `true` tells the heartbeat task to leave the group and stop.
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for ShareConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareConsumer")
            .field("group_id", &self.shared.group)
            .field("member_id", &self.shared.member_id)
            .finish()
    }
}

impl Drop for ShareConsumer {
    fn drop(&mut self) {
        if let Some(t) = self.heartbeat.get_mut().unwrap().take() {
            t.abort();
        }
        if let Some(t) = self.poll.get_mut().round.take() {
            t.abort();
        }
    }
}

impl ShareConsumer {
    /// A builder for a share consumer that uses `client`'s connections and metadata.
    pub fn builder(client: &Client) -> ShareConsumerBuilder {
        ShareConsumerBuilder::with(Some(client.clone()))
    }

    /// Joins the share group with this subscription (replacing an earlier one). The broker
    /// assigns partitions; records start coming with the next `recv`.
    pub async fn subscribe(&self, topics: &[&str]) -> Result<()> {
        self.check_open()?;
        for t in topics {
            crate::admin::validate_topic_name(t)?;
        }
        let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let inner = &self.shared.client.inner;
        // Topic ids in the assignment are resolved through metadata: know them up front.
        inner.metadata.add_interest(topics.iter().copied());
        if let Err(e) = inner
            .refresh_metadata(TopicsQuery::Some(names.clone()), None)
            .await
        {
            debug!(error = %e, "metadata refresh on subscribe failed; the heartbeat retries");
        }
        self.shared.topics.send_replace(names);
        let mut heartbeat = self.heartbeat.lock().unwrap();
        if heartbeat.is_none() {
            let task = Heartbeat {
                client: inner.clone(),
                coordinator: self.shared.coordinator.clone(),
                group: self.shared.group.clone(),
                member_id: self.shared.member_id.clone(),
                topics: self.shared.topics.subscribe(),
                rack: self.shared.cfg.client_rack.clone(),
                assignment: self.shared.assignment.clone(),
                fatal: self.shared.fatal.clone(),
                stop: self.stop.subscribe(),
            };
            *heartbeat = Some(tokio::spawn(task.run()));
        }
        Ok(())
    }

    /// The next record. In implicit mode this call first accepts the record the previous
    /// call returned. Waits for records; fails with a fetch error the broker called
    /// permanent (e.g. TOPIC_AUTHORIZATION_FAILED) or a membership error
    /// (GROUP_AUTHORIZATION_FAILED). Cancel-safe: a dropped call loses no record.
    pub async fn recv(&self) -> Result<ShareRecord> {
        if self.heartbeat.lock().unwrap().is_none() && !self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::InvalidState(
                "recv before subscribe: a share consumer reads what its group assigns".into(),
            ));
        }
        loop {
            self.check_open()?;
            if self.shared.cfg.mode == AcknowledgementMode::Implicit {
                self.shared.held.lock().unwrap().accept_delivered();
            }
            if let Some(r) = self.pop() {
                return Ok(r);
            }
            let mut poll = self.poll.lock().await;
            if !self.shared.buffer.lock().unwrap().is_empty() {
                continue;
            }
            self.run_round(&mut poll).await?;
        }
    }

    /// The records as a `futures::Stream` (never ends by itself; errors are items). Each item
    /// is taken with [`ShareConsumer::recv`], so implicit acknowledgement works the same way.
    pub fn stream(&self) -> impl Stream<Item = Result<ShareRecord>> + '_ {
        futures::stream::unfold(self, |c| async move { Some((c.recv().await, c)) })
    }

    fn pop(&self) -> Option<ShareRecord> {
        let mut buffer = self.shared.buffer.lock().unwrap();
        let (_, r) = buffer.pop_front()?;
        self.shared
            .held
            .lock()
            .unwrap()
            .delivered(&tp_of(&r), r.offset);
        Some(r)
    }

    /// Runs one fetch round in a task of its own, or waits for the one a cancelled `recv`
    /// left running, and takes the sessions back.
    async fn run_round(&self, poll: &mut Poll) -> Result<()> {
        if poll.round.is_none() {
            let Some(mut sessions) = poll.sessions.take() else {
                return Err(Error::Closed);
            };
            let shared = self.shared.clone();
            poll.round = Some(tokio::spawn(async move {
                let result = fetch::round(&shared, &mut sessions).await;
                (sessions, result)
            }));
        }
        let handle = poll.round.as_mut().expect("just set");
        let joined = handle.await;
        poll.round = None;
        match joined {
            Ok((sessions, result)) => {
                poll.sessions = Some(sessions);
                result
            }
            Err(e) => Err(Error::InvalidState(
                format!("share fetch task failed: {e}").into(),
            )),
        }
    }

    /// Explicit mode: acknowledges a record [`recv`](Self::recv) returned. The
    /// acknowledgement goes with the next ShareFetch, or with [`commit`](Self::commit) or
    /// [`close`](Self::close). Acknowledging a record twice, or one this consumer did not
    /// hand out, fails with [`Error::InvalidState`]; so does any call in implicit mode.
    ///
    /// [`AcknowledgeType::Renew`] (KIP-1222) is not final: it asks the broker to extend the
    /// record's acquisition lock (by the group's `share.record.lock.duration.ms`, from when
    /// the broker reads the renewal) and the record stays this consumer's, to be acknowledged
    /// again later — with another renewal or a final type. Renewals go in a ShareAcknowledge
    /// v2 of their own (with the next fetch round, or `commit`, which reports whether the
    /// lock was extended); until it is sent or answered, a final type replaces the renewal.
    /// A renewal the broker refuses (the lock had already expired: INVALID_RECORD_STATE)
    /// loses the record, which the broker delivers again. Renewing needs a broker that lists
    /// ShareAcknowledge v2 (Kafka 4.2+); elsewhere it fails with [`Error::UnsupportedApi`]
    /// and nothing changes.
    pub fn acknowledge(&self, record: &ShareRecord, how: AcknowledgeType) -> Result<()> {
        self.check_open()?;
        if self.shared.cfg.mode != AcknowledgementMode::Explicit {
            return Err(Error::InvalidState(
                "acknowledge needs share.acknowledgement.mode=explicit".into(),
            ));
        }
        let ack = match how {
            AcknowledgeType::Accept => Ack::Accept,
            AcknowledgeType::Release => Ack::Release,
            AcknowledgeType::Reject => Ack::Reject,
            AcknowledgeType::Renew => Ack::Renew,
        };
        let tp = tp_of(record);
        let mut held = self.shared.held.lock().unwrap();
        if ack == Ack::Renew {
            // Every record handed out came from a ShareFetch on this consumer's socket to
            // its broker, which recorded the broker's versions: refuse at once where the
            // renewal could never be sent (`session::send` checks again).
            if let Some(broker) = held.broker_of(&tp) {
                if self.shared.observed.renews(broker) == Some(false) {
                    return Err(session::renew_unsupported(format!("broker {broker}")));
                }
            }
        }
        held.acknowledge(&tp, record.offset, ack)
    }

    /// Sends every acknowledgement not sent yet (in implicit mode, first accepting what
    /// `recv` returned) with ShareAcknowledge, and waits for the brokers: Java's
    /// `commitSync`. Returns each partition's outcome: `Ok(())`, or the broker's error, e.g.
    /// INVALID_RECORD_STATE for records whose acquisition lock expired before the
    /// acknowledgement arrived (they were already given to another member). Partitions
    /// with nothing to acknowledge are not in the map.
    pub async fn commit(&self) -> Result<HashMap<TopicPartition, Result<()>>> {
        self.check_open()?;
        let mut poll = self.poll.lock().await;
        self.settle_round(&mut poll).await;
        if self.shared.cfg.mode == AcknowledgementMode::Implicit {
            self.shared.held.lock().unwrap().accept_delivered();
        }
        let sessions = poll.sessions.as_mut().ok_or(Error::Closed)?;
        Ok(self.acknowledge_now(sessions, false).await)
    }

    /// Waits for a round a cancelled `recv` left running, so the sessions are back.
    async fn settle_round(&self, poll: &mut Poll) {
        if poll.round.is_some() {
            if let Err(e) = self.run_round(poll).await {
                debug!(error = %e, "share fetch round before commit/close failed");
            }
        }
    }

    /// Sends the ready acknowledgements, one ShareAcknowledge per broker (with `close`, at
    /// epoch -1 to every broker with a session, ending them).
    async fn acknowledge_now(
        &self,
        sessions: &mut Sessions,
        close: bool,
    ) -> HashMap<TopicPartition, Result<()>> {
        let pending = self.shared.held.lock().unwrap().take_ready(None);
        let mut by_broker: HashMap<i32, Vec<acks::PendingAcks>> = HashMap::new();
        for a in pending {
            by_broker.entry(a.broker).or_default().push(a);
        }
        if close {
            for b in sessions.open_brokers() {
                by_broker.entry(b).or_default();
            }
        }
        let mut results = HashMap::new();
        let mut prepared = Vec::new();
        for (broker, acks) in by_broker {
            match sessions.prepare_ack(broker, &acks, close) {
                Some(p) => prepared.push(p),
                None => {
                    for a in acks {
                        if a.renews() {
                            self.shared
                                .held
                                .lock()
                                .unwrap()
                                .finish_renewal(&a.tp, false);
                        }
                        results.insert(
                            a.tp.clone(),
                            Err(Error::InvalidState(
                                format!(
                                    "{}: the share session these records were acquired in is \
                                     gone; the broker redelivers them when their locks expire",
                                    a.tp
                                )
                                .into(),
                            )),
                        );
                    }
                }
            }
        }
        let client = &self.shared.client.inner;
        let outcomes =
            futures::future::join_all(prepared.iter().map(|p| session::send(client, p))).await;
        for (p, o) in prepared.iter().zip(&outcomes) {
            self.shared.settle_renewals(p, o);
            sessions.settle(p, &o.as_ref().map(|_| Vec::new()).map_err(Clone::clone));
        }
        results.extend(fetch::commit_results(&prepared, outcomes));
        for (tp, r) in &results {
            if let Err(e) = r {
                debug!(partition = %tp, error = %e, "acknowledgement failed");
                self.shared.count_ack_failure();
            }
        }
        results
    }

    /// Acknowledges what the application acknowledged (in implicit mode: accepts what `recv`
    /// returned), releases every other record it holds — so other members get them at once,
    /// without waiting for their locks to expire — closes the share sessions (epoch -1) and
    /// leaves the group. Later calls fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut poll = self.poll.lock().await;
        self.settle_round(&mut poll).await;
        {
            let mut held = self.shared.held.lock().unwrap();
            if self.shared.cfg.mode == AcknowledgementMode::Implicit {
                held.accept_delivered();
            }
            held.release_unacknowledged();
        }
        self.shared.buffer.lock().unwrap().clear();
        if let Some(sessions) = poll.sessions.as_mut() {
            let results = self.acknowledge_now(sessions, true).await;
            if let Some((tp, Err(e))) = results.iter().find(|(_, r)| r.is_err()) {
                warn!(partition = %tp, error = %e, "acknowledgements on close failed");
            }
        }
        poll.sessions = None;
        self.shared.closed.store(true, Ordering::Release);
        self.stop.send_replace(true);
        let task = self.heartbeat.lock().unwrap().take();
        if let Some(task) = task {
            let limit = self.shared.client.inner.cfg.request_timeout;
            if tokio::time::timeout(limit, task).await.is_err() {
                warn!(group = %self.shared.group, "leaving the share group timed out");
            }
        }
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(e) = self.shared.fatal.borrow().clone() {
            return Err(e);
        }
        Ok(())
    }

    /// The partitions the broker assigned to this member now, sorted (other members may be
    /// assigned the same ones: a share group spreads records, not partitions).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let a = self.shared.assignment.borrow().clone();
        let set: HashSet<&TopicPartition> = a.partitions.iter().map(|(tp, _)| tp).collect();
        let mut out: Vec<TopicPartition> = set.into_iter().cloned().collect();
        out.sort();
        out
    }

    /// How long the broker locks the records it hands this consumer (the share group's
    /// `share.record.lock.duration.ms`), as the last ShareFetch or renewal answer said;
    /// `None` before the first answer. A record not acknowledged (or renewed) within it goes
    /// to another member.
    pub fn acquisition_lock_timeout(&self) -> Option<std::time::Duration> {
        self.shared.observed.lock_timeout()
    }

    /// This member's id (generated by the client, KIP-1082).
    pub fn member_id(&self) -> &str {
        &self.shared.member_id
    }

    /// Acknowledgements that failed or could not be sent so far (piggy-backed ones and
    /// `commit`'s), for metrics.
    pub fn acknowledgement_failures(&self) -> u64 {
        self.shared.ack_failures.load(Ordering::Relaxed)
    }

    /// The client this consumer uses.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }
}

#[cfg(test)]
#[path = "share_tests.rs"]
mod tests;
