//! The fetcher task: positions resolved, Fetches to each leader (one per lane, for disjoint
//! partitions), records to the application within the prefetch budget.
//!
//! ```text
//! plan ─┬─ Committed  → OffsetFetch (group)  → At | Lookup(reset) | Failed
//!       ├─ Lookup     → ListOffsets per leader → At
//!       └─ At         → Fetch per free lane of the leader (budget reserved first) → decode
//!                       → Delivery::Records
//! ```
//!
//! A partition is fetched again only while fewer than `max_queued` (2) of its deliveries
//! wait for the application: one fetch ahead of what it reads, not as many as the budget
//! holds (a fast fetcher otherwise filled the budget with responses of the same partitions,
//! 3 MiB of peak RSS at 100 partitions in the bench, for no throughput).
//!
//! One task owns the loop; every request is a future inside it (`FuturesUnordered`), so one
//! slow broker never holds up another. A leader has `fetch.connections.per.broker` lanes, each
//! a socket of its own: while one Fetch is being answered or decoded, another (for other
//! partitions) is already at the broker. Partition positions are moved only under their mutex
//! and every move bumps the partition's epoch (see `state.rs`): a response for an epoch that
//! is no longer current is dropped, never applied.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::classify::{classify, Action};
use crate::client::metadata::TopicsQuery;
use crate::client::ClientInner;
use crate::codes::KafkaCode;
use crate::consumer::config::{ConsumerConfig, IsolationLevel};
use crate::consumer::coordinator::GroupCoordinator;
use crate::consumer::fetched::FetchedRecords;
use crate::consumer::state::{
    Assignment, Budget, BudgetGuard, Delivery, Lookup, PartitionState, Position, QueuedGuard,
};
use crate::error::{Error, Result};
use crate::protocol::records::Batches;
use crate::protocol::{by_name_version, topic_name, wire_topic_id};

/// The id each assigned topic's fetch positions belong to, and the (metadata generation,
/// assigned partition count) last checked against (`Fetcher::check_topic_ids`).
#[derive(Default)]
struct TopicIds {
    by_topic: HashMap<Arc<str>, [u8; 16]>,
    checked: Option<(u64, usize)>,
}

/// A partition in a request, with the epoch it was planned under.
struct Planned {
    part: Arc<PartitionState>,
    epoch: u64,
    offset: i64,
}

enum Job {
    Fetch {
        broker: i32,
        lane: u32,
        planned: Vec<Planned>,
        budget: BudgetGuard,
        /// Topic names by the id the request named them with (Fetch v13+ answers by id).
        names: HashMap<[u8; 16], Arc<str>>,
        result: Result<FetchResponse>,
    },
    Committed {
        planned: Vec<Planned>,
        result:
            Result<HashMap<(String, i32), Option<crate::consumer::coordinator::CommittedOffset>>>,
    },
    Lookup {
        broker: i32,
        planned: Vec<(Planned, Lookup)>,
        result: Result<ListOffsetsResponse>,
    },
    Metadata,
}

/// Everything the fetcher task needs; moved into the task.
pub(crate) struct Fetcher {
    pub(crate) client: Arc<ClientInner>,
    pub(crate) cfg: Arc<ConsumerConfig>,
    pub(crate) assignment: Arc<Assignment>,
    pub(crate) budget: Arc<Budget>,
    pub(crate) group: Option<Arc<GroupCoordinator>>,
    pub(crate) tx: mpsc::UnboundedSender<Delivery>,
    /// The consumer's metrics: this task adds per Fetch and per partition answer.
    pub(crate) stats: Arc<crate::metrics::consumer::ConsumerStats>,
}

impl Fetcher {
    /// Runs until the application's receiver is gone (the consumer was dropped or closed).
    pub(crate) async fn run(self) {
        let mut jobs: FuturesUnordered<BoxFuture<'static, Job>> = FuturesUnordered::new();
        let mut lanes = Lanes::default();
        let mut refreshing = false;
        let mut want_refresh = false;
        // The topic id each assigned topic's positions belong to (owned by this task).
        let mut topic_ids = TopicIds::default();
        loop {
            if self.tx.is_closed() {
                return;
            }
            self.check_topic_ids(&mut topic_ids);
            let plan = self.plan(&mut jobs, &mut lanes, &mut refreshing, &mut want_refresh);
            let sleep = tokio::time::sleep_until(
                plan.wake_at
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                Some(job) = jobs.next(), if !jobs.is_empty() => {
                    self.complete(job, &mut lanes, &mut refreshing, &mut want_refresh);
                }
                _ = self.assignment.wake.notified() => {}
                _ = self.budget.returned.notified(), if plan.waiting_for_app => {}
                _ = sleep => {}
                _ = self.tx.closed() => return,
            }
        }
    }

    /// A topic deleted and created again under the same name has a new id, and offsets of
    /// the old topic mean nothing in the new one: when the metadata names a new id for an
    /// assigned topic, its partitions are reset by `auto.offset.reset` (as the Java consumer
    /// does), and everything fetched under the old id is dropped (the move bumps each
    /// partition's epoch), so the application never gets an old record after a new one.
    fn check_topic_ids(&self, ids: &mut TopicIds) {
        let snapshot = self.client.metadata.snapshot();
        let parts = self.assignment.all();
        // Only when something changed: this runs once per loop of the task.
        let seen = (snapshot.generation, parts.len());
        if ids.checked == Some(seen) {
            return;
        }
        ids.checked = Some(seen);
        let known = &mut ids.by_topic;
        known.retain(|topic, _| parts.iter().any(|p| p.tp.topic == *topic));
        for part in parts {
            if part.revoked.load(Ordering::Acquire) {
                continue;
            }
            let Some(id) = snapshot.topic_id(&part.tp.topic) else {
                continue;
            };
            let changed = match known.get(&part.tp.topic) {
                Some(old) if *old == id => continue,
                Some(_) => true,
                None => false,
            };
            if !changed {
                known.insert(part.tp.topic.clone(), id);
                continue;
            }
            warn!(
                topic = %part.tp.topic,
                "topic was recreated (its id changed): resetting its partitions by auto.offset.reset"
            );
            for p in self.assignment.all() {
                if p.tp.topic != part.tp.topic {
                    continue;
                }
                match Lookup::for_reset(self.cfg.offset_reset) {
                    Some(l) => p.move_to(Position::Lookup(l)),
                    None => {
                        p.move_to(Position::Failed);
                        let _ = self.tx.send(Delivery::PartitionError {
                            part: p.clone(),
                            epoch: p.epoch.load(Ordering::Acquire),
                            error: Error::NoOffset {
                                topic: p.tp.topic.clone(),
                                partition: p.tp.partition,
                            },
                        });
                    }
                }
            }
            known.insert(part.tp.topic.clone(), id);
        }
    }

    fn plan(
        &self,
        jobs: &mut FuturesUnordered<BoxFuture<'static, Job>>,
        lanes: &mut Lanes,
        refreshing: &mut bool,
        want_refresh: &mut bool,
    ) -> PlanOutcome {
        let now = Instant::now();
        let snapshot = self.client.metadata.snapshot();
        let mut outcome = PlanOutcome::default();
        let mut committed = Vec::new();
        let mut lookups: HashMap<i32, Vec<(Planned, Lookup)>> = HashMap::new();
        let mut fetches: HashMap<i32, Vec<Planned>> = HashMap::new();
        let mut need_metadata = false;
        for part in self.assignment.all() {
            if part.revoked.load(Ordering::Acquire) {
                continue;
            }
            let mut f = part.fetch.lock().unwrap();
            if f.busy {
                continue;
            }
            if let Some(t) = f.not_before {
                if t > now {
                    outcome.wake_at = Some(outcome.wake_at.map_or(t, |w| w.min(t)));
                    continue;
                }
                f.not_before = None;
            }
            let epoch = part.epoch.load(Ordering::Acquire);
            let tp = &part.tp;
            // A permanent error in the topic's metadata (TOPIC_AUTHORIZATION_FAILED): no leader
            // will ever be named, so the application is told instead of the fetcher asking for
            // metadata forever. Asked again after `retry.backoff.max.ms` (an ACL may be
            // granted meanwhile).
            let topic_error = snapshot
                .cluster
                .topic(&tp.topic)
                .and_then(|m| m.error)
                .filter(|code| !code.is_retriable());
            if let Some(code) = topic_error {
                let retry_at = now + self.client.cfg.retry_backoff_max;
                f.not_before = Some(retry_at);
                drop(f);
                outcome.wake_at = Some(outcome.wake_at.map_or(retry_at, |w| w.min(retry_at)));
                need_metadata = true;
                let _ = self.tx.send(Delivery::PartitionError {
                    part: part.clone(),
                    epoch,
                    error: Error::broker(code, None, format!("metadata for topic {}", tp.topic)),
                });
                continue;
            }
            match f.position.clone() {
                Position::Failed => {}
                Position::Committed => match &self.group {
                    Some(_) => {
                        f.busy = true;
                        drop(f);
                        committed.push(Planned {
                            part: part.clone(),
                            epoch,
                            offset: -1,
                        });
                    }
                    None => {
                        drop(f);
                        self.reset(&part, epoch);
                        outcome.wake_at = Some(now);
                    }
                },
                Position::Lookup(l) => match snapshot.leader(&tp.topic, tp.partition) {
                    Some(leader) => {
                        f.busy = true;
                        drop(f);
                        lookups.entry(leader).or_default().push((
                            Planned {
                                part: part.clone(),
                                epoch,
                                offset: -1,
                            },
                            l,
                        ));
                    }
                    None => need_metadata = true,
                },
                Position::At { offset, .. } => {
                    if part.paused.load(Ordering::Acquire) {
                        continue;
                    }
                    if part.queued.load(Ordering::Acquire) >= self.cfg.max_queued {
                        // Fetched again when the application uses one up (`QueuedGuard`).
                        outcome.waiting_for_app = true;
                        continue;
                    }
                    match snapshot.leader(&tp.topic, tp.partition) {
                        Some(leader) if lanes.free(leader, self.lane_count()).is_some() => {
                            f.busy = true;
                            drop(f);
                            fetches.entry(leader).or_default().push(Planned {
                                part: part.clone(),
                                epoch,
                                offset,
                            });
                        }
                        Some(_) => {}
                        None => need_metadata = true,
                    }
                }
            }
        }
        if (need_metadata || *want_refresh) && !*refreshing {
            *refreshing = true;
            *want_refresh = false;
            let client = self.client.clone();
            let topics: Vec<String> = self
                .assignment
                .partitions()
                .into_iter()
                .map(|tp| tp.topic.to_string())
                .collect();
            let generation = snapshot.generation;
            let backoff = self.client.cfg.retry_backoff;
            jobs.push(Box::pin(async move {
                if let Err(e) = client
                    .refresh_metadata(TopicsQuery::Some(topics), Some(generation))
                    .await
                {
                    debug!(error = %e, "consumer metadata refresh failed");
                }
                // Without a leader after the refresh, ask again no sooner than the backoff.
                tokio::time::sleep(backoff).await;
                Job::Metadata
            }));
        }
        if !committed.is_empty() {
            let group = self.group.clone().expect("checked above");
            let keys: Vec<(String, i32)> = committed
                .iter()
                .map(|p| (p.part.tp.topic.to_string(), p.part.tp.partition))
                .collect();
            jobs.push(Box::pin(async move {
                let result = group.fetch_offsets(&keys).await;
                Job::Committed {
                    planned: committed,
                    result,
                }
            }));
        }
        for (broker, planned) in lookups {
            let client = self.client.clone();
            let isolation = self.cfg.isolation.wire();
            jobs.push(Box::pin(async move {
                let result = list_offsets(&client, broker, &planned, isolation).await;
                Job::Lookup {
                    broker,
                    planned,
                    result,
                }
            }));
        }
        let per_partition = self.cfg.max_partition_fetch_bytes as usize;
        for (broker, mut planned) in fetches {
            // A stable order, rotated by one partition per round (as librdkafka does), so a
            // broker that fills its response in request order until `max_bytes` serves every
            // partition in turn instead of always the first ones.
            planned.sort_by(|a, b| a.part.tp.cmp(&b.part.tp));
            let turn = lanes.rotation.entry(broker).or_default();
            let len = planned.len();
            planned.rotate_left(*turn % len);
            *turn = turn.wrapping_add(1);
            // Every free lane (fetch socket) gets its own request for a disjoint share of the
            // ready partitions: no partition is ever in two Fetches at once.
            let free = lanes.free_lanes(broker, self.lane_count());
            let groups = free.len().min(len).max(1);
            let mut rest = planned;
            for (i, lane) in free.into_iter().take(groups).enumerate() {
                let size = rest.len().div_ceil(groups - i);
                let tail = rest.split_off(size);
                let planned = std::mem::replace(&mut rest, tail);
                // The free budget is shared evenly by the requests of this round, so the
                // first one cannot starve the others (each still gets a partition's worth).
                let share = (self.budget.available() / (groups - i)).max(per_partition);
                let want = (self.cfg.fetch_max_bytes as usize)
                    .min(per_partition * planned.len())
                    .min(share);
                // A fetch needs room for at least one partition's worth; otherwise wait for
                // the application to drain what is buffered. What is in flight is taken from
                // the budget first, so every request together stays within it.
                let Some(budget) = self.budget.try_take(want.min(per_partition), want) else {
                    for p in planned.iter().chain(rest.iter()) {
                        p.part.fetch.lock().unwrap().busy = false;
                    }
                    outcome.waiting_for_app = true;
                    break;
                };
                lanes.set_busy(broker, lane, true);
                debug!(
                    broker,
                    lane,
                    partitions = planned.len(),
                    max_bytes = budget.bytes(),
                    "fetch"
                );
                let (req, names) =
                    self.fetch_request(&planned, budget.bytes().min(want), &snapshot);
                let timeout = self.client.cfg.request_timeout;
                let client = self.client.clone();
                let stats = self.stats.clone();
                // Fetches go on sockets of their own to each broker: they long-poll, and a
                // producer or admin call sharing this client would otherwise wait behind
                // them; each lane has its own, so a broker serving one connection's requests
                // one at a time still works on two Fetches at once.
                let addr = snapshot.cluster.broker(broker).map(|b| b.address());
                jobs.push(Box::pin(async move {
                    let result = async {
                        let slot = match addr {
                            Some(addr) => client.pool.set_fetch_slot(broker, lane, addr),
                            None => broker,
                        };
                        let conn = client.broker(slot).await?;
                        // Fetch v13+ names topics by id only: by name (v12) unless the
                        // metadata gave every topic of the request an id.
                        let every_id = req.topics.iter().all(|t| !t.topic_id.is_nil());
                        let version = by_name_version(conn.version(ApiKey::Fetch)?, every_id);
                        let sent = std::time::Instant::now();
                        let answer = conn.fetch(&req, version, timeout).await;
                        stats.fetch_done(sent.elapsed());
                        answer
                    }
                    .await;
                    Job::Fetch {
                        broker,
                        lane,
                        planned,
                        budget,
                        names,
                        result,
                    }
                }));
            }
        }
        outcome
    }

    /// Fetches in flight per broker at most (`fetch.connections.per.broker`).
    fn lane_count(&self) -> u32 {
        self.cfg.fetch_connections
    }

    /// The Fetch for `planned`, naming each topic and, where the metadata has one, its id
    /// (which Fetch v13+ sends instead of the name), and the names by id for the answer.
    fn fetch_request(
        &self,
        planned: &[Planned],
        max_bytes: usize,
        snapshot: &crate::client::metadata::Snapshot,
    ) -> (FetchRequest, HashMap<[u8; 16], Arc<str>>) {
        let mut names = HashMap::new();
        let topics = per_topic(planned.iter().map(|p| {
            let fp = FetchPartition::default()
                .with_partition(p.part.tp.partition)
                .with_fetch_offset(p.offset)
                .with_partition_max_bytes(self.cfg.max_partition_fetch_bytes);
            (&*p.part.tp.topic, fp)
        }))
        .map(|(topic, partitions)| {
            let mut t = FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions);
            if let Some(id) = snapshot.topic_id(topic) {
                t.topic_id = wire_topic_id(id);
                names.insert(id, Arc::from(topic));
            }
            t
        })
        .collect();
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.cfg.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32)
            .with_min_bytes(self.cfg.fetch_min_bytes)
            .with_max_bytes(max_bytes.min(i32::MAX as usize) as i32)
            .with_isolation_level(self.cfg.isolation.wire())
            // No incremental fetch session (KIP-227): every request is a full fetch.
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics)
            // KIP-392 (Fetch v11+; ignored by older versions): lets the broker point this
            // consumer at a replica in its rack.
            .with_rack_id(
                self.cfg
                    .client_rack
                    .as_deref()
                    .map_or_else(StrBytes::default, |r| StrBytes::from_string(r.to_owned())),
            );
        (req, names)
    }

    /// Applies the reset policy to a partition without a usable offset.
    fn reset(&self, part: &Arc<PartitionState>, epoch: u64) {
        let mut f = part.fetch.lock().unwrap();
        if part.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        match Lookup::for_reset(self.cfg.offset_reset) {
            Some(l) => f.position = Position::Lookup(l),
            None => {
                f.position = Position::Failed;
                drop(f);
                let _ = self.tx.send(Delivery::PartitionError {
                    part: part.clone(),
                    epoch,
                    error: Error::NoOffset {
                        topic: part.tp.topic.clone(),
                        partition: part.tp.partition,
                    },
                });
            }
        }
    }

    /// Settles a partition's position after a lookup, if nothing moved it meanwhile.
    fn settle(&self, p: &Planned, position: Option<Position>, backoff: Option<Duration>) {
        let mut f = p.part.fetch.lock().unwrap();
        f.busy = false;
        if p.part.epoch.load(Ordering::Acquire) != p.epoch {
            return;
        }
        if let Some(d) = backoff {
            f.not_before = Some(Instant::now() + d);
        }
        if let Some(pos) = position {
            if let Position::At { offset, .. } = pos {
                // The starting point is also what the application will see first, so
                // `position()`, pause and commits have it before any record arrives.
                p.part.consumed.store(offset, Ordering::Release);
            }
            f.position = pos;
        }
    }

    fn complete(
        &self,
        job: Job,
        lanes: &mut Lanes,
        refreshing: &mut bool,
        want_refresh: &mut bool,
    ) {
        let backoff = self.client.cfg.retry_backoff;
        match &job {
            Job::Fetch {
                broker,
                lane,
                planned,
                result,
                ..
            } => {
                debug!(
                    broker,
                    lane,
                    partitions = planned.len(),
                    ok = result.is_ok(),
                    "fetch done"
                )
            }
            Job::Committed { planned, result } => {
                debug!(
                    partitions = planned.len(),
                    ok = result.is_ok(),
                    "committed offsets fetched"
                )
            }
            Job::Lookup {
                broker,
                planned,
                result,
            } => {
                debug!(
                    broker,
                    partitions = planned.len(),
                    ok = result.is_ok(),
                    "offsets looked up"
                )
            }
            Job::Metadata => debug!("consumer metadata refreshed"),
        }
        match job {
            Job::Metadata => *refreshing = false,
            Job::Committed { planned, result } => match result {
                Ok(map) => {
                    for p in planned {
                        let key = (p.part.tp.topic.to_string(), p.part.tp.partition);
                        match map.get(&key).cloned().flatten() {
                            Some(c) if c.offset >= 0 => {
                                p.part.committed.store(c.offset, Ordering::Release);
                                let pos = Position::At { offset: c.offset };
                                self.settle(&p, Some(pos), None);
                            }
                            _ => {
                                self.settle(&p, None, None);
                                self.reset(&p.part, p.epoch);
                            }
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "fetching committed offsets failed");
                    let retriable = classify(&e, Some(ApiKey::OffsetFetch)).contains(Action::RETRY);
                    for p in planned {
                        if !retriable {
                            let _ = self.tx.send(Delivery::PartitionError {
                                part: p.part.clone(),
                                epoch: p.epoch,
                                error: e.clone(),
                            });
                        }
                        self.settle(&p, None, Some(self.client.cfg.retry_backoff_max));
                    }
                }
            },
            Job::Lookup {
                broker,
                planned,
                result,
            } => {
                let resp = match result {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(broker, error = %e, "ListOffsets failed");
                        self.after_error(&e, ApiKey::ListOffsets, want_refresh);
                        for (p, _) in planned {
                            self.settle(&p, None, Some(backoff));
                        }
                        return;
                    }
                };
                for (p, _) in planned {
                    let tp = &p.part.tp;
                    let found = resp
                        .topics
                        .iter()
                        .filter(|t| t.name.0.as_str() == &*tp.topic)
                        .flat_map(|t| t.partitions.iter())
                        .find(|r| r.partition_index == tp.partition);
                    match found {
                        Some(r) if r.error_code == 0 && r.offset >= 0 => {
                            let pos = Position::At { offset: r.offset };
                            self.settle(&p, Some(pos), None);
                        }
                        Some(r) if r.error_code == 0 => {
                            // No record at or after the timestamp: Kafka answers -1, which
                            // means "the end of the log".
                            self.settle(&p, Some(Position::Lookup(Lookup::Latest)), None);
                        }
                        Some(r) => {
                            let e = code_error(
                                r.error_code,
                                format!("ListOffsets for {tp} on broker {broker}"),
                            );
                            self.after_error(&e, ApiKey::ListOffsets, want_refresh);
                            self.settle(&p, None, Some(backoff));
                        }
                        None => self.settle(&p, None, Some(backoff)),
                    }
                }
            }
            Job::Fetch {
                broker,
                lane,
                planned,
                budget,
                names,
                result,
            } => {
                lanes.set_busy(broker, lane, false);
                match result {
                    Ok(resp) => self.deliver(broker, planned, budget, resp, &names, want_refresh),
                    Err(e) => {
                        debug!(broker, error = %e, "Fetch failed");
                        self.after_error(&e, ApiKey::Fetch, want_refresh);
                        for p in planned {
                            self.settle(&p, None, Some(backoff));
                        }
                    }
                }
            }
        }
    }

    /// Notes what the classifier asks for after an error: a metadata refresh, started by the
    /// next plan (inside the job set, so it is owned by this task like every request).
    fn after_error(&self, e: &Error, api: ApiKey, want_refresh: &mut bool) {
        if classify(e, Some(api)).contains(Action::REFRESH_METADATA) {
            *want_refresh = true;
        }
    }

    fn deliver(
        &self,
        broker: i32,
        planned: Vec<Planned>,
        mut budget: BudgetGuard,
        resp: FetchResponse,
        names: &HashMap<[u8; 16], Arc<str>>,
        want_refresh: &mut bool,
    ) {
        let backoff = self.client.cfg.retry_backoff;
        if resp.error_code != 0 {
            let e = code_error(resp.error_code, format!("Fetch from broker {broker}"));
            self.after_error(&e, ApiKey::Fetch, want_refresh);
            for p in planned {
                self.settle(&p, None, Some(backoff));
            }
            return;
        }
        let mut by_tp: HashMap<
            (&str, i32),
            &kafka_protocol::messages::fetch_response::PartitionData,
        > = HashMap::new();
        for t in &resp.responses {
            // v13+ answers name the topic by the id it was asked for, older ones by name. An
            // id the request did not carry matches nothing.
            let name = if t.topic_id.is_nil() {
                t.topic.0.as_str()
            } else {
                match names.get(t.topic_id.as_bytes()) {
                    Some(n) => n,
                    None => continue,
                }
            };
            for p in &t.partitions {
                by_tp.insert((name, p.partition_index), p);
            }
        }
        // Each partition's record set keeps its wire bytes charged until the application has
        // its records; the rest of the request's reservation goes back now, so that decoding
        // below sees every free byte (`Fetcher::decode` stops at the budget).
        let answered: Vec<_> = planned
            .iter()
            .map(|p| {
                let data = *by_tp.get(&(&*p.part.tp.topic, p.part.tp.partition))?;
                let len = data.records.as_ref().map_or(0, |r| r.len());
                Some((data, budget.split(len)))
            })
            .collect();
        drop(budget);
        for (p, answer) in planned.iter().zip(answered) {
            let tp = &p.part.tp;
            let Some((data, mut guard)) = answer else {
                self.settle(p, None, None);
                continue;
            };
            if data.error_code != 0 {
                if data.error_code == KafkaCode::OffsetOutOfRange.code() {
                    debug!(%tp, offset = p.offset, "offset out of range: applying auto.offset.reset");
                    self.settle(p, None, None);
                    self.reset(&p.part, p.epoch);
                    continue;
                }
                let e = code_error(data.error_code, format!("Fetch {tp} from broker {broker}"));
                let action = classify(&e, Some(ApiKey::Fetch));
                self.after_error(&e, ApiKey::Fetch, want_refresh);
                if !action.contains(Action::RETRY) {
                    let _ = self.tx.send(Delivery::PartitionError {
                        part: p.part.clone(),
                        epoch: p.epoch,
                        error: e,
                    });
                    self.settle(p, None, Some(self.client.cfg.retry_backoff_max));
                } else {
                    self.settle(p, None, Some(backoff));
                }
                continue;
            }
            // For the processing lag metric (process.rs): how far the log goes.
            p.part
                .high_watermark
                .store(data.high_watermark, std::sync::atomic::Ordering::Relaxed);
            let records = match &data.records {
                Some(r) if !r.is_empty() => r.clone(),
                _ => {
                    self.settle(p, None, None);
                    continue;
                }
            };
            let aborted = match self.cfg.isolation {
                IsolationLevel::ReadCommitted => data
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect(),
                IsolationLevel::ReadUncommitted => Vec::new(),
            };
            let span = crate::metrics::spans::receive(
                &self.client.cfg.client_id,
                self.cfg.group_id.as_deref(),
                &tp.topic,
                tp.partition,
                p.offset,
            );
            let decoded = span.in_scope(|| self.decode(p, records, aborted));
            if let Ok((out, ..)) = &decoded {
                span.record("messaging.batch.message_count", out.len());
            }
            match decoded {
                Ok((out, next, decompressed)) => {
                    // The budget bounds memory, not wire bytes: charge the records' own size
                    // and the batches kept decompressed too (see `decode`).
                    guard.absorb(self.budget.take_up_to(out.overhead() + decompressed));
                    let mut f = p.part.fetch.lock().unwrap();
                    f.busy = false;
                    if p.part.epoch.load(Ordering::Acquire) != p.epoch {
                        continue;
                    }
                    if let Some(offset) = next {
                        f.position = Position::At { offset };
                    }
                    drop(f);
                    // Also when every batch was skipped (control, aborted): the position
                    // must still move past them once the application gets there.
                    if let Some(next) = next {
                        let _ = self.tx.send(Delivery::Records {
                            part: p.part.clone(),
                            epoch: p.epoch,
                            records: out,
                            next,
                            _budget: guard,
                            _queued: QueuedGuard::new(p.part.clone(), self.budget.clone()),
                        });
                    }
                }
                Err(e) => {
                    warn!(%tp, offset = p.offset, error = %e, "undecodable record batch");
                    let _ = self.tx.send(Delivery::PartitionError {
                        part: p.part.clone(),
                        epoch: p.epoch,
                        error: e,
                    });
                    // The same bytes would fail again: wait for the application to seek.
                    let mut f = p.part.fetch.lock().unwrap();
                    f.busy = false;
                    if p.part.epoch.load(Ordering::Acquire) == p.epoch {
                        f.position = Position::Failed;
                    }
                }
            }
        }
        self.stats
            .publish(|| crate::consumer::lag_views(&self.assignment));
    }

    /// Decodes one partition's records: the records at or after the fetch offset, and the
    /// next offset to fetch (past the last complete batch, control batches included).
    ///
    /// `aborted` (read_committed only) is the Fetch response's aborted-transaction list,
    /// `(producer id, first offset)`. Kafka's rule: a transactional batch is dropped when its
    /// producer has an aborted transaction that started at or before the batch's last offset
    /// and whose abort marker has not been passed yet; the marker (a control batch) ends it.
    fn decode(
        &self,
        p: &Planned,
        data: Bytes,
        mut aborted: Vec<(i64, i64)>,
    ) -> Result<(FetchedRecords, Option<i64>, usize)> {
        let mut batches = Batches::new(data, self.cfg.check_crcs, self.cfg.fetch_buffer_bytes);
        // A compressed batch is decompressed here to be checked, and kept decompressed while
        // the free budget has room for it (charged by the caller); past that it waits as
        // fetched (its bytes already charged) and is decompressed again when the application
        // reaches it (`fetched.rs`). Every batch is kept: none is dropped to be fetched again,
        // whatever the budget, and a batch's expansion is bounded by the budget.
        let mut room = self.budget.available();
        let mut decompressed = 0;
        // Pending aborted transactions, earliest first; popped into `aborting` as the batches
        // reach their first offsets.
        aborted.sort_by_key(|&(_, first)| std::cmp::Reverse(first));
        let mut aborting: HashSet<i64> = HashSet::new();
        let mut out = FetchedRecords::new(p.part.tp.topic.clone(), p.part.tp.partition);
        let mut next = None;
        while let Some(b) = batches.next_view() {
            let b = b?;
            // Every record is checked now, handed out or not, so a malformed one fails this
            // fetch (and stops the partition) rather than a later `recv`.
            let count = b.check(p.offset)?;
            let end = b.base_offset + b.last_offset_delta as i64 + 1;
            while aborted.last().is_some_and(|&(_, first)| first < end) {
                let (pid, _) = aborted.pop().expect("checked");
                aborting.insert(pid);
            }
            if b.control {
                if b.is_abort_marker() {
                    aborting.remove(&b.producer_id);
                }
                if end > p.offset {
                    next = Some(end);
                }
                continue;
            }
            if end <= p.offset {
                continue;
            }
            next = Some(end);
            if b.transactional && aborting.contains(&b.producer_id) {
                continue;
            }
            let wait_compressed = match &b.fetched {
                Some(_) if b.records.len() <= room => {
                    room -= b.records.len();
                    decompressed += b.records.len();
                    false
                }
                Some(_) => true,
                None => false,
            };
            out.push(&b, p.offset, count, wait_compressed);
        }
        self.stats.decoded(out.len(), batches.consumed());
        Ok((out, next, decompressed))
    }
}

/// Fetches in flight per broker: which lanes (fetch sockets) hold one, and where the next
/// round's partition order starts.
#[derive(Default)]
struct Lanes {
    /// Bit *k* set: lane *k* of the broker has a Fetch in flight.
    busy: HashMap<i32, u32>,
    rotation: HashMap<i32, usize>,
}

impl Lanes {
    /// The first lane of `broker` without a Fetch in flight, of `count`.
    fn free(&self, broker: i32, count: u32) -> Option<u32> {
        let busy = self.busy.get(&broker).copied().unwrap_or(0);
        (0..count).find(|l| busy & (1 << l) == 0)
    }

    fn free_lanes(&self, broker: i32, count: u32) -> Vec<u32> {
        let busy = self.busy.get(&broker).copied().unwrap_or(0);
        (0..count).filter(|l| busy & (1 << l) == 0).collect()
    }

    fn set_busy(&mut self, broker: i32, lane: u32, busy: bool) {
        let mask = self.busy.entry(broker).or_default();
        if busy {
            *mask |= 1 << lane;
        } else {
            *mask &= !(1 << lane);
        }
    }
}

#[derive(Default)]
struct PlanOutcome {
    wake_at: Option<Instant>,
    /// Something waits for the application: budget to come back, or a partition's queued
    /// deliveries to be used up.
    waiting_for_app: bool,
}

/// The error for a non-zero error code.
fn code_error(code: i16, context: String) -> Error {
    Error::check_code(code, None, || context)
        .err()
        .unwrap_or_else(|| Error::protocol("error code 0 reported as an error"))
}

/// `items` grouped per topic, topics in the order they first appear.
fn per_topic<'a, T>(
    items: impl IntoIterator<Item = (&'a str, T)>,
) -> impl Iterator<Item = (&'a str, Vec<T>)> {
    let mut topics: Vec<(&str, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, items)) => items.push(item),
            None => topics.push((topic, vec![item])),
        }
    }
    topics.into_iter()
}

/// ListOffsets for the planned partitions on their leader.
async fn list_offsets(
    client: &ClientInner,
    broker: i32,
    planned: &[(Planned, Lookup)],
    isolation: i8,
) -> Result<ListOffsetsResponse> {
    let topics = per_topic(planned.iter().map(|(p, l)| {
        let lp = ListOffsetsPartition::default()
            .with_partition_index(p.part.tp.partition)
            .with_current_leader_epoch(-1)
            .with_timestamp(l.wire());
        (&*p.part.tp.topic, lp)
    }))
    .map(|(topic, partitions)| {
        ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)
    })
    .collect();
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(topics);
    let conn = client.broker(broker).await?;
    conn.send(&req).await
}

#[cfg(test)]
#[path = "fetcher_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "read_committed_tests.rs"]
mod read_committed_tests;
