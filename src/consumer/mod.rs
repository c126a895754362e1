//! The consumer: group membership, a bounded fetcher, offsets, a `Stream` of records.
//!
//! ```text
//! fetcher task ── Fetch per leader (budget) ── decode ──► channel ──► recv / stream (app)
//!      ▲ positions (state.rs)                                          │ consumed offsets
//!      │                                                               ▼
//! group task ── Join/Sync/Heartbeat, assignors, hooks ── assignment ◄── commits (auto / manual)
//! ```
//!
//! Ownership: the `Consumer` owns both tasks. `close()` commits (auto-commit), runs the
//! `revoked` hook, leaves the group and stops them; dropping the consumer aborts them. See
//! `state.rs` for who moves which position.

pub(crate) mod assignor;
mod builder;
mod config;
pub(crate) mod coordinator;
mod fetched;
mod fetcher;
mod group;
mod heartbeat848;
mod listener;
mod member848;
mod offset_tracker;
mod process;
mod process_hook;
mod process_metrics;
mod process_options;
mod process_task;
mod record;
mod state;
mod store;
mod topics;

#[cfg(test)]
#[path = "group_tests.rs"]
mod group_tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::client::Client;
use crate::codes::KafkaCode;
use crate::error::{Error, Result};
pub use builder::ConsumerBuilder;
use config::ConsumerConfig;
pub use config::{GroupProtocol, IsolationLevel, OffsetReset};
use coordinator::{CommitOffset as WireCommit, GroupCoordinator};
use group::{GroupCommand, GroupTask};
pub use listener::{RebalanceContext, RebalanceListener};
pub use process::{ProcessHandle, Processor};
pub use process_metrics::{LatencySummary, PartitionProcessMetrics, ProcessMetrics};
pub use process_options::{FailureAction, FailurePolicy, ProcessOptions, ProcessOrdering};
pub use record::{
    CommitOffset, ConsumerGroupMetadata, ConsumerRecord, SeekTo, TimestampType, TopicPartition,
};
use state::{position_for, Assignment, Budget, Delivery, PartitionState, Position};

/// Counters about the consumer, for metrics and health checks (metrics/consumer.rs).
pub(crate) use crate::metrics::consumer::ConsumerStats as Metrics;

/// State shared by the application handle, the fetcher task and the group task.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) cfg: Arc<ConsumerConfig>,
    pub(crate) assignment: Arc<Assignment>,
    pub(crate) budget: Arc<Budget>,
    pub(crate) coordinator: Option<Arc<GroupCoordinator>>,
    /// (generation, member id): written by the group task only.
    membership: Mutex<(i32, String)>,
    /// Cleared while the group task rejoins (see `close_commits`): commits are refused.
    commits_open: AtomicBool,
    /// Held for reading by every commit while it is sent, so that closing the commits can
    /// wait for those in flight.
    commits_in_flight: tokio::sync::RwLock<()>,
    /// Set once when the consumer can no longer be used (fenced static member).
    fatal: OnceLock<Error>,
    /// `recv` calls so far, for the poll-interval check (plain stores, no RMW per record).
    pub(crate) polls: AtomicU64,
    /// `recv` calls waiting for records right now: an application blocked in `recv` on an
    /// idle topic is polling, not stalled.
    pub(crate) waiting: AtomicUsize,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tx: mpsc::UnboundedSender<Delivery>,
    pub(crate) listener: Option<Arc<dyn RebalanceListener>>,
    /// A running processor's rebalance hook (process_hook.rs), called before `listener`.
    /// Installed and removed by `Processor::run`.
    pub(crate) hook: Mutex<Option<Arc<dyn RebalanceListener>>>,
    /// Set for good once a processor ran: records it took are not processed just because
    /// they were handed out, so auto-commit of consumed positions must never run again.
    pub(crate) processing: std::sync::atomic::AtomicBool,
    /// Set by `close`: wakes every waiting `recv` with `Error::Closed`.
    closed: tokio::sync::watch::Sender<bool>,
    /// The same, as a plain flag for the per-record check.
    is_closed: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// What the lag metrics need of each assigned partition.
    pub(crate) fn lag_views(&self) -> Vec<crate::metrics::consumer::PartitionView> {
        lag_views(&self.assignment)
    }

    /// Time since the application last polled (zero while a `recv` waits).
    pub(crate) fn since_last_poll(&self) -> std::time::Duration {
        let polls = self.polls.load(Ordering::Relaxed);
        let waiting = self.waiting.load(Ordering::Acquire) > 0;
        self.metrics.since_last_poll(polls, waiting)
    }

    pub(crate) fn membership(&self) -> (i32, String) {
        self.membership.lock().unwrap().clone()
    }

    /// Waits for the commits in flight, then refuses new ones until the returned guard is
    /// dropped: the group task holds it while it rejoins (JoinGroup, SyncGroup, applying the
    /// assignment), so every commit either reached the coordinator before this member's
    /// JoinGroup or is refused — none lands after the partition's next owner looked.
    pub(crate) async fn close_commits(&self) -> CommitsClosed<'_> {
        // Closed first: a commit that takes the lock after the wait below sees it closed;
        // one that saw it open holds the lock until it is answered.
        self.commits_open.store(false, Ordering::SeqCst);
        drop(self.commits_in_flight.write().await);
        CommitsClosed(self)
    }

    pub(crate) fn set_membership(&self, generation: i32, member: String) {
        *self.membership.lock().unwrap() = (generation, member);
    }

    /// The rebalance hooks to run: a processor's first, then the application's.
    pub(crate) fn listener(&self) -> Option<Arc<dyn RebalanceListener>> {
        let hook = self.hook.lock().unwrap().clone();
        match (hook, self.listener.clone()) {
            (Some(first), Some(then)) => Some(Arc::new(listener::Chained { first, then })),
            (hook, user) => hook.or(user),
        }
    }

    /// Whether consumed positions are committed automatically: `enable.auto.commit`, unless
    /// a processor commits what is done instead.
    pub(crate) fn auto_commits(&self) -> bool {
        self.cfg.auto_commit && !self.processing.load(Ordering::Acquire)
    }

    pub(crate) fn set_fatal(&self, e: Error) {
        let _ = self.fatal.set(e.clone());
        let _ = self.tx.send(Delivery::Error(e));
    }

    pub(crate) fn is_fatal(&self) -> bool {
        self.fatal.get().is_some()
    }

    fn coordinator(&self) -> Result<&Arc<GroupCoordinator>> {
        self.coordinator
            .as_ref()
            .ok_or_else(|| Error::InvalidState("committing offsets needs group.id".into()))
    }

    /// What a commit sends for `p`: the offset after the last record handed out, or with
    /// `enable.auto.offset.store=false` the offset the application stored (-1: nothing).
    pub(crate) fn commit_point(&self, p: &PartitionState) -> i64 {
        if self.cfg.auto_offset_store {
            p.consumed.load(Ordering::Acquire)
        } else {
            p.stored.load(Ordering::Acquire)
        }
    }

    /// Commits the consumed (or stored) positions of every assigned partition that moved.
    pub(crate) async fn commit_consumed(&self) -> Result<()> {
        if self.processing.load(Ordering::Acquire) {
            // Records handed to a processor are not done because they were handed out.
            return Err(Error::InvalidState(
                "a processor commits what is done; committing consumed positions would \
                 skip records still in progress"
                    .into(),
            ));
        }
        let parts = self.assignment.all();
        self.commit_parts(&parts).await
    }

    /// Commits the consumed positions of `parts` that moved since their last commit.
    pub(crate) async fn commit_parts(&self, parts: &[Arc<PartitionState>]) -> Result<()> {
        let mut offsets = Vec::new();
        let mut which = Vec::new();
        for p in parts {
            let consumed = self.commit_point(p);
            if consumed >= 0 && consumed != p.committed.load(Ordering::Acquire) {
                offsets.push(WireCommit {
                    topic: p.tp.topic.to_string(),
                    partition: p.tp.partition,
                    offset: consumed,
                    leader_epoch: None,
                    metadata: None,
                });
                which.push((p.clone(), consumed));
            }
        }
        if offsets.is_empty() {
            return Ok(());
        }
        self.send_commit(&offsets).await?;
        for (p, offset) in which {
            p.committed.store(offset, Ordering::Release);
        }
        Ok(())
    }

    /// Commits explicit offsets (any partition, assigned or not).
    pub(crate) async fn commit_explicit(
        &self,
        offsets: &HashMap<TopicPartition, CommitOffset>,
    ) -> Result<()> {
        let wire: Vec<WireCommit> = offsets
            .iter()
            .map(|(tp, c)| WireCommit {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                offset: c.offset,
                leader_epoch: None,
                metadata: c.metadata.clone(),
            })
            .collect();
        self.send_commit(&wire).await?;
        for (tp, c) in offsets {
            if let Some(p) = self.assignment.get(tp) {
                p.committed.store(c.offset, Ordering::Release);
            }
        }
        Ok(())
    }

    async fn send_commit(&self, offsets: &[WireCommit]) -> Result<()> {
        let coordinator = self.coordinator()?;
        let _in_flight = self.commits_in_flight.read().await;
        if !self.commits_open.load(Ordering::SeqCst) {
            // The classic protocol's rule (the Java client refuses the same way): a commit
            // sent while the member rejoins would carry the next generation for offsets of
            // records handed out under the last one, and could land after the partition's
            // next owner read the committed offset.
            return Err(Error::broker(
                KafkaCode::RebalanceInProgress,
                None,
                "commit refused: the member is rejoining its group; commit again once the \
                 rebalance is done (the partitions may have moved)",
            ));
        }
        let started = std::time::Instant::now();
        let mut stale = 0;
        let result = loop {
            let (generation, member) = self.membership();
            let result = coordinator
                .commit_offsets(
                    generation,
                    member,
                    self.cfg.group_instance_id.clone(),
                    offsets,
                )
                .await
                .and_then(
                    |outcome| match outcome.into_iter().find_map(|(_, _, e)| e) {
                        Some(e) => Err(e),
                        None => Ok(()),
                    },
                );
            // KIP-848: the member epoch moved on between reading it and the broker checking
            // it (a heartbeat answer is in flight). Java retries such a commit with the latest
            // epoch; the member task publishes it within a heartbeat.
            let is_stale =
                matches!(&result, Err(e) if e.kafka_code() == Some(KafkaCode::StaleMemberEpoch));
            if is_stale && stale < STALE_EPOCH_RETRIES {
                stale += 1;
                tokio::time::sleep(self.client.inner.cfg.retry_backoff).await;
                continue;
            }
            break result;
        };
        self.metrics.committed(started.elapsed(), result.is_ok());
        match &result {
            Ok(()) => self.metrics.commits.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                debug!(error = %e, "commit failed");
                self.metrics.commit_failures.fetch_add(1, Ordering::Relaxed)
            }
        };
        result
    }

    pub(crate) fn seek(&self, tp: &TopicPartition, to: SeekTo) -> Result<()> {
        let part = self
            .assignment
            .get(tp)
            .ok_or_else(|| Error::InvalidState(format!("{tp} is not assigned").into()))?;
        part.move_to(position_for(to));
        self.assignment.wake.notify_one();
        Ok(())
    }
}

/// How often a commit refused with STALE_MEMBER_EPOCH is sent again with the member's newer
/// epoch before the error is returned.
const STALE_EPOCH_RETRIES: u32 = 20;

/// Commits refused while this lives (see [`Shared::close_commits`]).
pub(crate) struct CommitsClosed<'a>(&'a Shared);

impl Drop for CommitsClosed<'_> {
    fn drop(&mut self) {
        self.0.commits_open.store(true, Ordering::SeqCst);
    }
}

/// Counts a `recv` waiting for records, also when its future is dropped mid-wait.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(counter: &'a AtomicUsize) -> Waiting<'a> {
        counter.fetch_add(1, Ordering::AcqRel);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How the consumer was told what to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Subscribed,
    Assigned,
}

/// The records of one delivery being handed out, owned by whoever holds `Consumer::local`.
#[derive(Default)]
struct Local {
    current: Option<Delivery>,
    polls: u64,
    /// Records handed out; published with plain stores (only `recv` writes the counter).
    records: u64,
}

/// An asynchronous Kafka consumer.
///
/// ```no_run
/// # async fn f(client: ferrokafka::Client) -> ferrokafka::Result<()> {
/// use ferrokafka::Consumer;
/// let consumer = Consumer::builder(&client).group_id("billing").build().await?;
/// consumer.subscribe(&["orders"]).await?;
/// loop {
///     let record = consumer.recv().await?;
///     println!("{}-{}@{}", record.topic, record.partition, record.offset);
/// }
/// # }
/// ```
pub struct Consumer {
    shared: Arc<Shared>,
    local: Mutex<Local>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Delivery>>,
    group: Mutex<Option<(mpsc::UnboundedSender<GroupCommand>, JoinHandle<()>)>>,
    fetch_task: Mutex<Option<JoinHandle<()>>>,
    mode: Mutex<Mode>,
    /// `commit_async` tasks not yet finished.
    background: Mutex<Vec<JoinHandle<()>>>,
    /// The auto-commit task of an assigned (not subscribed) consumer with a group.id.
    assign_committer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.shared.cfg.group_id)
            .field("assignment", &self.shared.assignment.partitions())
            .finish()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some((_, t)) = self.group.get_mut().unwrap().take() {
            t.abort();
        }
        if let Some(t) = self.fetch_task.get_mut().unwrap().take() {
            t.abort();
        }
        for t in self.background.get_mut().unwrap().drain(..) {
            t.abort();
        }
        if let Some(t) = self.assign_committer.get_mut().unwrap().take() {
            t.abort();
        }
    }
}

impl Consumer {
    /// A builder for a consumer that uses `client`'s connections and metadata.
    pub fn builder(client: &Client) -> ConsumerBuilder {
        ConsumerBuilder::with(Some(client.clone()))
    }

    /// Joins the group (`group.id`) and reads the partitions it assigns. Replaces an earlier
    /// subscription.
    pub async fn subscribe(&self, topics: &[&str]) -> Result<()> {
        if self.shared.cfg.group_id.is_none() {
            return Err(Error::InvalidState("subscribe needs group.id".into()));
        }
        for t in topics {
            crate::admin::validate_topic_name(t)?;
        }
        {
            let mut mode = self.mode.lock().unwrap();
            if *mode == Mode::Assigned {
                return Err(Error::InvalidState(
                    "subscribe after assign: a consumer either subscribes or assigns".into(),
                ));
            }
            *mode = Mode::Subscribed;
        }
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        self.group_command(GroupCommand::Subscribe(topics))
    }

    /// Joins the group (`group.id`) for every topic whose name matches `regex` (RE2/J
    /// syntax, e.g. `orders-.*`), now and as topics are created or deleted. The broker
    /// evaluates the regex, so this needs `group.protocol=consumer` (KIP-848) and Kafka 4.0+;
    /// a regex the broker rejects comes back from `recv` as INVALID_REGULAR_EXPRESSION.
    /// Replaces an earlier subscription.
    pub async fn subscribe_pattern(&self, regex: &str) -> Result<()> {
        if self.shared.cfg.group_id.is_none() {
            return Err(Error::InvalidState(
                "subscribe_pattern needs group.id".into(),
            ));
        }
        if self.shared.cfg.group_protocol != GroupProtocol::Consumer {
            return Err(Error::InvalidState(
                "subscribe_pattern needs group.protocol=consumer (the broker evaluates the regex)"
                    .into(),
            ));
        }
        member848::check_pattern(regex)?;
        {
            let mut mode = self.mode.lock().unwrap();
            if *mode == Mode::Assigned {
                return Err(Error::InvalidState(
                    "subscribe after assign: a consumer either subscribes or assigns".into(),
                ));
            }
            *mode = Mode::Subscribed;
        }
        self.group_command(GroupCommand::SubscribePattern(regex.to_owned()))
    }

    /// Sends `cmd` to the group task, starting it first: the classic one, or the KIP-848
    /// member for `group.protocol=consumer`. Owned by the consumer (aborted on drop).
    fn group_command(&self, cmd: GroupCommand) -> Result<()> {
        let mut group = self.group.lock().unwrap();
        let (cmds, _) = group.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let shared = self.shared.clone();
            let task = match shared.cfg.group_protocol {
                GroupProtocol::Classic => tokio::spawn(GroupTask::new(shared, rx).run()),
                GroupProtocol::Consumer => {
                    tokio::spawn(member848::Member848::new(shared, rx).run())
                }
            };
            (tx, task)
        });
        cmds.send(cmd).map_err(|_| Error::Closed)
    }

    /// Reads exactly these partitions, without a group (offsets may still be committed to
    /// `group.id`, and the committed offset is where reading starts). Replaces an earlier
    /// assignment.
    pub async fn assign(&self, partitions: &[TopicPartition]) -> Result<()> {
        {
            let mut mode = self.mode.lock().unwrap();
            if *mode == Mode::Subscribed {
                return Err(Error::InvalidState(
                    "assign after subscribe: a consumer either subscribes or assigns".into(),
                ));
            }
            *mode = Mode::Assigned;
        }
        let client = &self.shared.client.inner;
        client
            .metadata
            .add_interest(partitions.iter().map(|tp| &*tp.topic));
        let keep: std::collections::HashSet<&TopicPartition> = partitions.iter().collect();
        let gone: Vec<TopicPartition> = self
            .shared
            .assignment
            .partitions()
            .into_iter()
            .filter(|tp| !keep.contains(tp))
            .collect();
        self.shared.assignment.remove(gone.iter());
        self.shared.assignment.add(partitions.iter().cloned());
        if self.shared.cfg.auto_commit && self.shared.coordinator.is_some() {
            // Java auto-commits assigned partitions too when a group.id is set. Owned like
            // commit_async tasks: aborted with the consumer, stopped by close.
            let mut committer = self.assign_committer.lock().unwrap();
            if committer.is_none() {
                let shared = self.shared.clone();
                *committer = Some(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(shared.cfg.auto_commit_interval);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        if !shared.auto_commits() {
                            continue;
                        }
                        if let Err(e) = shared.commit_consumed().await {
                            tracing::warn!(error = %e, "auto-commit failed");
                        }
                    }
                }));
            }
        }
        Ok(())
    }

    /// The next record. Waits for one; fails with a partition's error (e.g.
    /// [`Error::NoOffset`]) or the consumer's ([`Error::PollIntervalExceeded`], fenced).
    ///
    /// # What is committed when
    /// With the defaults (`enable.auto.commit=true`, `enable.auto.offset.store=true`), a
    /// record counts as consumed the moment `recv` returns it: the next auto-commit (every
    /// `auto.commit.interval.ms`), a rebalance that takes the partition away, and
    /// [`Consumer::close`] commit its offset + 1 — whether or not the application has
    /// finished processing it. A crash then loses at most the records handed out but not
    /// processed (at-most-once for those), and redelivers what was processed after the last
    /// commit (at-least-once for the rest).
    ///
    /// For at-least-once processing of every record, set `enable.auto.offset.store=false`
    /// and call [`Consumer::store_offset`] after each record is processed: commits (auto,
    /// on revoke, on close, and [`Consumer::commit`]) then send only stored offsets, so a
    /// record handed out but not processed is read again after a crash or rebalance. Or turn
    /// `enable.auto.commit` off and call [`Consumer::commit_offsets`] yourself.
    pub async fn recv(&self) -> Result<ConsumerRecord> {
        loop {
            if let Some(r) = self.pop()? {
                return Ok(r);
            }
            let mut rx = self.rx.lock().await;
            // Another caller may have installed a delivery while this one waited.
            if self.local.lock().unwrap().current.is_some() {
                continue;
            }
            let d = {
                let _waiting = Waiting::new(&self.shared.waiting);
                let mut closed = self.shared.closed.subscribe();
                tokio::select! {
                    d = rx.recv() => d.ok_or(Error::Closed)?,
                    _ = closed.wait_for(|c| *c) => return Err(Error::Closed),
                }
            };
            match d {
                Delivery::Records { .. } => self.local.lock().unwrap().current = Some(d),
                Delivery::PartitionError { part, epoch, error } => {
                    if part.current(epoch) {
                        return Err(error);
                    }
                }
                Delivery::Error(e) => return Err(e),
            }
        }
    }

    /// Up to `max` records (and at most `max.poll.records` when set): waits for at least
    /// one, then takes what is already fetched. What is committed when is as for
    /// [`Consumer::recv`].
    pub async fn recv_batch(&self, max: usize) -> Result<Vec<ConsumerRecord>> {
        let max = self
            .shared
            .cfg
            .max_poll_records
            .map_or(max, |cap| max.min(cap));
        let mut out = Vec::with_capacity(max.min(1024));
        out.push(self.recv().await?);
        while out.len() < max {
            // The current delivery's records, under one lock; if it has more than fit, the
            // rest stays for the next call.
            self.take(max - out.len(), |r| out.push(r))?;
            if out.len() == max {
                break;
            }
            let Ok(mut rx) = self.rx.try_lock() else {
                break;
            };
            match rx.try_recv() {
                Ok(d @ Delivery::Records { .. }) => self.local.lock().unwrap().current = Some(d),
                Ok(Delivery::PartitionError { part, epoch, error }) => {
                    if part.current(epoch) {
                        // Deliver what we have; the error comes with the next call.
                        drop(rx);
                        let _ =
                            self.shared
                                .tx
                                .send(Delivery::PartitionError { part, epoch, error });
                        break;
                    }
                }
                Ok(Delivery::Error(e)) => {
                    drop(rx);
                    let _ = self.shared.tx.send(Delivery::Error(e));
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Takes the next record of the current delivery, if it is still valid.
    fn pop(&self) -> Result<Option<ConsumerRecord>> {
        let mut record = None;
        self.take(1, |r| record = Some(r))?;
        Ok(record)
    }

    /// Hands up to `max` records of the current delivery to `put`, in order, under one lock.
    /// A delivery used up or no longer valid is dropped (none handed out then).
    fn take(&self, max: usize, mut put: impl FnMut(ConsumerRecord)) -> Result<()> {
        if self.shared.is_closed.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let mut local = self.local.lock().unwrap();
        local.polls += 1;
        self.shared.polls.store(local.polls, Ordering::Relaxed);
        if let Some(e) = self.shared.fatal.get() {
            return Err(e.clone());
        }
        let Local {
            current,
            records: handed,
            ..
        } = &mut *local;
        let Some(Delivery::Records {
            part,
            epoch,
            records,
            next,
            ..
        }) = current
        else {
            *current = None;
            return Ok(());
        };
        let before = *handed;
        for _ in 0..max {
            if !part.current(*epoch) {
                *current = None;
                break;
            }
            let Some(r) = records.next() else {
                // Past the last record: the position covers what the fetch skipped.
                part.consumed.store(*next, Ordering::Release);
                *current = None;
                break;
            };
            part.consumed.store(r.offset + 1, Ordering::Release);
            *handed += 1;
            put(r);
        }
        if *handed != before {
            self.shared
                .metrics
                .records
                .store(*handed, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The records as a `futures::Stream` (never ends by itself; errors are items).
    ///
    /// Each record is taken with [`Consumer::recv`], so the same rule decides what is
    /// committed: by default a record handed out by the stream is committed by the next
    /// auto-commit even if it is still being processed (e.g. inside `for_each_concurrent`).
    /// With `enable.auto.offset.store=false`, only offsets passed to
    /// [`Consumer::store_offset`] after processing are committed.
    pub fn stream(&self) -> impl Stream<Item = Result<ConsumerRecord>> + '_ {
        futures::stream::unfold(self, |c| async move { Some((c.recv().await, c)) })
    }

    /// Moves an assigned partition's position; records fetched before are dropped.
    pub fn seek(&self, tp: &TopicPartition, to: SeekTo) -> Result<()> {
        self.shared.seek(tp, to)
    }

    /// Stops fetching these partitions until [`Consumer::resume`]; records already fetched
    /// for them are dropped and fetched again after resume.
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            let part = self.assigned(tp)?;
            part.paused.store(true, Ordering::Release);
            if let Some(offset) = part.position() {
                part.move_to(Position::At { offset });
            }
        }
        Ok(())
    }

    /// Resumes fetching paused partitions.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.assigned(tp)?.paused.store(false, Ordering::Release);
        }
        self.shared.assignment.wake.notify_one();
        Ok(())
    }

    fn assigned(&self, tp: &TopicPartition) -> Result<Arc<PartitionState>> {
        self.shared
            .assignment
            .get(tp)
            .ok_or_else(|| Error::InvalidState(format!("{tp} is not assigned").into()))
    }

    /// The offset of the next record `recv` returns for `tp`; `None` while it is being
    /// looked up.
    pub fn position(&self, tp: &TopicPartition) -> Result<Option<i64>> {
        Ok(self.assigned(tp)?.position())
    }

    /// The partitions assigned now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.assignment.partitions()
    }

    /// The group's committed offsets for `partitions` (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let coordinator = self.shared.coordinator()?;
        let keys: Vec<(String, i32)> = partitions
            .iter()
            .map(|tp| (tp.topic.to_string(), tp.partition))
            .collect();
        let found = coordinator.fetch_offsets(&keys).await?;
        Ok(partitions
            .iter()
            .map(|tp| {
                let c = found
                    .get(&(tp.topic.to_string(), tp.partition))
                    .cloned()
                    .flatten();
                (tp.clone(), c.map(|c| c.offset))
            })
            .collect())
    }

    /// Commits the position of every assigned partition (the offset after the last record
    /// `recv` returned; with `enable.auto.offset.store=false`, the offset stored with
    /// [`Consumer::store_offset`]) and waits for the coordinator.
    pub async fn commit(&self) -> Result<()> {
        self.shared.commit_consumed().await
    }

    /// Starts a commit of the current positions and returns at once; the returned receiver
    /// yields its outcome (drop it if you do not care). The commit stops with the consumer.
    pub fn commit_async(&self) -> oneshot::Receiver<Result<()>> {
        let (tx, rx) = oneshot::channel();
        let shared = self.shared.clone();
        // Positions are read now, so later records do not sneak into this commit.
        let parts = shared.assignment.all();
        let snapshot: Vec<(Arc<PartitionState>, i64)> = parts
            .iter()
            .map(|p| (p.clone(), shared.commit_point(p)))
            .filter(|(p, c)| *c >= 0 && *c != p.committed.load(Ordering::Acquire))
            .collect();
        let offsets: HashMap<TopicPartition, CommitOffset> = snapshot
            .iter()
            .map(|(p, c)| (p.tp.clone(), CommitOffset::new(*c)))
            .collect();
        let task = tokio::spawn(async move {
            let r = if offsets.is_empty() {
                Ok(())
            } else {
                shared.commit_explicit(&offsets).await
            };
            let _ = tx.send(r);
        });
        // Owned by the consumer: aborted if the consumer is dropped first.
        let mut background = self.background.lock().unwrap();
        background.retain(|t| !t.is_finished());
        background.push(task);
        rx
    }

    /// Commits explicit offsets (the next offset to read, per partition) and waits.
    pub async fn commit_offsets(
        &self,
        offsets: &HashMap<TopicPartition, CommitOffset>,
    ) -> Result<()> {
        self.shared.commit_explicit(offsets).await
    }

    /// The group membership (group id, generation, member id, instance id), for
    /// `send_offsets_to_transaction`; `None` without a `group.id`.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group_id = self.shared.cfg.group_id.clone()?;
        let (generation_id, member_id) = self.shared.membership();
        Some(ConsumerGroupMetadata {
            group_id,
            generation_id,
            member_id,
            group_instance_id: self.shared.cfg.group_instance_id.clone(),
        })
    }

    /// Records consumed and fetched, fetch latency, lag per partition and max lag,
    /// rebalances, commits, time since the last poll: see
    /// [`ConsumerMetrics`](crate::ConsumerMetrics). Cheap: atomic loads per partition.
    pub fn metrics(&self) -> crate::metrics::ConsumerMetrics {
        let since = self.shared.since_last_poll();
        self.shared.metrics.snapshot(self.shared.lag_views(), since)
    }

    /// A `process` span (OpenTelemetry messaging conventions: topic, partition, offset,
    /// consumer group, client id) for the application's handling of `record`:
    /// `async { … }.instrument(consumer.process_span(&record))`. Pair it with
    /// [`TraceContext::extract`](crate::TraceContext::extract) to link it to the producer's
    /// trace.
    pub fn process_span(&self, record: &ConsumerRecord) -> tracing::Span {
        crate::metrics::spans::process(
            &self.shared.client.inner.cfg.client_id,
            self.shared.cfg.group_id.as_deref(),
            &record.topic,
            record.partition,
            record.offset,
        )
    }

    /// Commits (with auto-commit), runs the `revoked` hook, leaves the group and stops the
    /// background tasks. Later calls fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        let group = self.group.lock().unwrap().take();
        if let Some((cmds, task)) = group {
            let (tx, rx) = oneshot::channel();
            if cmds.send(GroupCommand::Close(tx)).is_ok() {
                let _ = rx.await;
            }
            let _ = task.await;
        } else if self.shared.auto_commits() && self.shared.coordinator.is_some() {
            if let Err(e) = self.shared.commit_consumed().await {
                debug!(error = %e, "commit on close failed");
            }
        }
        let mut background: Vec<JoinHandle<()>> =
            self.background.lock().unwrap().drain(..).collect();
        background.extend(self.assign_committer.lock().unwrap().take());
        for t in background {
            t.abort();
        }
        let fetch = self.fetch_task.lock().unwrap().take();
        if let Some(t) = fetch {
            t.abort();
            let _ = t.await;
        }
        self.shared.assignment.clear();
        // Not through `rx`: a `recv` future that is alive but no longer polled may hold it.
        self.shared.is_closed.store(true, Ordering::Relaxed);
        self.shared.closed.send_replace(true);
        Ok(())
    }

    /// The client this consumer uses.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }
}

/// What the lag metrics need of each assigned partition (metrics/consumer.rs).
pub(crate) fn lag_views(assignment: &Assignment) -> Vec<crate::metrics::consumer::PartitionView> {
    assignment
        .all()
        .iter()
        .map(|p| crate::metrics::consumer::PartitionView {
            tp: p.tp.clone(),
            high_watermark: p.high_watermark.load(Ordering::Relaxed),
            consumed: p.consumed.load(Ordering::Acquire),
        })
        .collect()
}
