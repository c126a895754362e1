//! The group task: the classic consumer group protocol's state machine.
//!
//! ```text
//!            subscribe                  JoinGroup (+MEMBER_ID_REQUIRED retry)
//!  Idle ───────────────► Joining ───────────────────────────► Syncing
//!   ▲                      ▲  ▲   leader: assign with the chosen assignor │ SyncGroup
//!   │ close / fenced       │  │                                           ▼
//!   │                      │  └─ REBALANCE_IN_PROGRESS ◄────────────── Stable
//!   │                      │     (eager: commit + revoked(all) first;  │ heartbeat every
//!   │                      │      cooperative: keep partitions)        │ heartbeat.interval
//!   │                      └──── UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION: lost(all), rejoin
//!   │                            cooperative: revoked some → rejoin at once (KIP-429)
//!   └── max.poll.interval exceeded: leave, lost(all), error to recv, wait for the next poll
//! ```
//!
//! This task owns the membership (member id, generation) and the decision of what is
//! assigned; the assignment itself lives in `state::Assignment`. Coordinator errors
//! (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a lost connection) make the coordinator layer
//! forget it; the next call finds it again. Hooks are awaited while heartbeats go on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::classify::{classify, Action};
use crate::client::metadata::TopicsQuery;
use crate::codes::KafkaCode;
use crate::consumer::assignor::{
    assignor_by_name, decode_assignment, decode_subscription, encode_assignment,
    encode_subscription, Assignment as WireAssignment, Member, RebalanceProtocol, Subscription,
    ASSIGNMENT_VERSION, SUBSCRIPTION_VERSION,
};
use crate::consumer::coordinator::JoinParams;
use crate::consumer::listener::RebalanceContext;
use crate::consumer::record::TopicPartition;
use crate::consumer::state::Delivery;
use crate::consumer::Shared;
use crate::error::{Error, Result};

/// Requests from the application handle to the group task.
#[derive(Debug)]
pub(crate) enum GroupCommand {
    /// Replace the subscription (an empty list leaves the group).
    Subscribe(Vec<String>),
    /// Subscribe to the topics matching a regex, evaluated by the broker (KIP-848 members
    /// only: `Consumer::subscribe_pattern` refuses it for the classic protocol).
    SubscribePattern(String),
    /// Commit (if auto), revoke, leave, and stop.
    Close(oneshot::Sender<()>),
}

/// Why the stable phase ended.
enum Next {
    /// Join again; `revoke_first` for the eager protocol's revoke-before-join.
    Rejoin,
    /// Stop the task.
    Stop,
}

pub(crate) struct GroupTask {
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedReceiver<GroupCommand>,
    topics: Vec<String>,
    /// What the last SyncGroup gave this member.
    owned: BTreeSet<TopicPartition>,
    protocol: RebalanceProtocol,
    /// Poll counter seen at the last check, and when it last moved.
    polls_seen: u64,
    last_poll: Instant,
    close_reply: Option<oneshot::Sender<()>>,
    /// The subscribed topics' partition counts (0: missing) as this member saw them before
    /// its last join; a change means the assignment is out of date (see `topics.rs`).
    topic_counts: BTreeMap<String, usize>,
    /// Missing topics already warned about, so each is named once, not at every check.
    warned_missing: BTreeSet<String>,
    /// Eager revoke-before-join without a rebalance hook: the generation given up and where
    /// each partition's delivery stood (see `apply`).
    kept: Option<(i32, HashMap<TopicPartition, i64>)>,
}

impl GroupTask {
    pub(crate) fn new(shared: Arc<Shared>, cmds: mpsc::UnboundedReceiver<GroupCommand>) -> Self {
        let protocol = shared
            .cfg
            .assignors
            .first()
            .and_then(|n| assignor_by_name(n))
            .map(|a| a.protocol())
            .unwrap_or(RebalanceProtocol::Eager);
        GroupTask {
            shared,
            cmds,
            topics: Vec::new(),
            owned: BTreeSet::new(),
            protocol,
            polls_seen: 0,
            last_poll: Instant::now(),
            close_reply: None,
            topic_counts: BTreeMap::new(),
            warned_missing: BTreeSet::new(),
            kept: None,
        }
    }

    /// Runs until `Close` or until the application handle is gone.
    pub(crate) async fn run(mut self) {
        loop {
            // Idle: nothing subscribed.
            while self.topics.is_empty() {
                match self.cmds.recv().await {
                    Some(GroupCommand::Subscribe(t)) => self.set_topics(t),
                    Some(GroupCommand::SubscribePattern(_)) => {}
                    Some(GroupCommand::Close(reply)) => {
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                }
            }
            let mut backoff = Backoff::new(
                self.shared.client.inner.cfg.retry_backoff,
                self.shared.client.inner.cfg.retry_backoff_max,
            );
            let joined = loop {
                match self.join_and_sync().await {
                    Ok(assigned) => break Some(assigned),
                    Err(e) => {
                        if self.on_group_error(&e, "join").await.is_err() {
                            break None;
                        }
                        // Commands still count while joining fails: close must not wait.
                        let delay = backoff.next_delay();
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            cmd = self.cmds.recv() => match cmd {
                                Some(GroupCommand::Subscribe(t)) => self.set_topics(t),
                                Some(GroupCommand::SubscribePattern(_)) => {}
                                Some(GroupCommand::Close(reply)) => {
                                    self.close_reply = Some(reply);
                                    break None;
                                }
                                None => break None,
                            }
                        }
                        if self.topics.is_empty() {
                            break None;
                        }
                    }
                }
            };
            let next = match joined {
                Some(assigned) => match self.apply(assigned).await {
                    true => Next::Rejoin,
                    false => self.stable().await,
                },
                None if self.close_reply.is_some() || self.shared.is_fatal() => Next::Stop,
                None => Next::Rejoin,
            };
            match next {
                Next::Rejoin => continue,
                Next::Stop => {
                    self.shutdown().await;
                    return;
                }
            }
        }
    }

    /// The subscribed topics' partition counts; see `topics.rs`.
    async fn check_topics(&mut self) -> BTreeMap<String, usize> {
        super::topics::check_topics(&self.shared, &self.topics, &mut self.warned_missing).await
    }

    fn set_topics(&mut self, mut topics: Vec<String>) {
        topics.sort();
        topics.dedup();
        self.shared
            .client
            .inner
            .metadata
            .add_interest(topics.iter().map(String::as_str));
        self.topics = topics;
    }

    /// JoinGroup then SyncGroup; returns the partitions assigned to this member. Commits are
    /// refused from JoinGroup until SyncGroup has answered (see `Shared::close_commits`); a
    /// cooperative revocation after that commits as usual.
    async fn join_and_sync(&mut self) -> Result<BTreeSet<TopicPartition>> {
        let started = Instant::now();
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        let coordinator = shared
            .coordinator
            .as_ref()
            .expect("group task needs a group");
        // Eager: everything is given up before joining (commit first, while the generation
        // is still valid).
        if self.protocol == RebalanceProtocol::Eager && !self.owned.is_empty() {
            let all: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            let (generation, _) = shared.membership();
            let positions = self.revoke(&all).await;
            // Nobody was told of this revocation (no hook), so nobody dropped work because
            // of it: see `apply` for why these positions may be kept.
            if shared.listener().is_none() {
                self.kept = Some((generation, positions));
            }
        }
        // What this member knows of its topics before joining: a later change (a missing
        // topic created, partitions added) makes it rejoin.
        self.topic_counts = self.check_topics().await;
        let (generation, _) = shared.membership();
        let subscription = Subscription {
            topics: self.topics.clone(),
            user_data: None,
            owned_partitions: group_by_topic(self.owned.iter()),
            generation_id: generation,
            rack_id: cfg.client_rack.clone(),
        };
        let metadata = encode_subscription(&subscription, SUBSCRIPTION_VERSION);
        let protocols: Vec<(String, Bytes)> = cfg
            .assignors
            .iter()
            .filter_map(|n| assignor_by_name(n))
            .map(|a| (a.name().to_owned(), metadata.clone()))
            .collect();
        let (_, member_id) = shared.membership();
        let params = JoinParams {
            member_id,
            group_instance_id: cfg.group_instance_id.clone(),
            session_timeout_ms: cfg.session_timeout.as_millis() as i32,
            rebalance_timeout_ms: cfg.max_poll_interval.as_millis().min(i32::MAX as u128) as i32,
            protocol_type: "consumer".to_owned(),
            protocols,
        };
        let _commits_closed = shared.close_commits().await;
        let joined = coordinator.join_group(params).await?;
        shared.set_membership(joined.generation_id, joined.member_id.clone());
        shared.metrics.rebalances.fetch_add(1, Ordering::Relaxed);
        let protocol_name = joined.protocol_name.clone().unwrap_or_default();
        info!(
            group = cfg.group_id.as_deref().unwrap_or(""),
            generation = joined.generation_id,
            member = %joined.member_id,
            leader = joined.leader == joined.member_id,
            protocol = %protocol_name,
            "joined group"
        );
        let assignments = if joined.leader == joined.member_id {
            self.assign_as_leader(&protocol_name, &joined.members)
                .await?
        } else {
            Vec::new()
        };
        let bytes = coordinator
            .sync_group(
                joined.generation_id,
                joined.member_id.clone(),
                cfg.group_instance_id.clone(),
                "consumer".to_owned(),
                protocol_name,
                assignments,
            )
            .await?;
        let assignment = decode_assignment(bytes)?;
        let mut out = BTreeSet::new();
        for (topic, parts) in assignment.partitions {
            for p in parts {
                out.insert(TopicPartition::new(&topic, p));
            }
        }
        shared.metrics.rebalanced(started.elapsed());
        Ok(out)
    }

    /// The leader's part: decode every member's subscription, look up partition counts,
    /// run the chosen assignor, encode each member's share.
    async fn assign_as_leader(
        &self,
        protocol_name: &str,
        members: &[(String, Option<String>, Bytes)],
    ) -> Result<Vec<(String, Bytes)>> {
        let assignor = assignor_by_name(protocol_name).ok_or_else(|| {
            Error::protocol(format!(
                "the coordinator chose assignor `{protocol_name}`, which this member did not offer"
            ))
        })?;
        let mut decoded = Vec::with_capacity(members.len());
        let mut topics = BTreeSet::new();
        for (member_id, instance, metadata) in members {
            // A member whose metadata does not decode (or that subscribes to nothing) gets
            // nothing, as librdkafka's leader does, instead of failing the whole group.
            let subscription = match decode_subscription(metadata.clone()) {
                Ok(s) if !s.topics.is_empty() => s,
                Ok(_) => continue,
                Err(e) => {
                    warn!(member = %member_id, error = %e, "undecodable subscription: member skipped");
                    continue;
                }
            };
            topics.extend(subscription.topics.iter().cloned());
            decoded.push(Member {
                member_id: member_id.clone(),
                group_instance_id: instance.clone(),
                subscription,
            });
        }
        let client = &self.shared.client.inner;
        let snapshot = client
            .refresh_metadata(TopicsQuery::Some(topics.iter().cloned().collect()), None)
            .await?;
        let mut counts = BTreeMap::new();
        for t in &topics {
            if let Some(meta) = snapshot.cluster.topic(t) {
                if meta.error.is_none() && !meta.partitions.is_empty() {
                    counts.insert(t.clone(), meta.partitions.len() as i32);
                }
            }
        }
        let plan = assignor.assign(&decoded, &counts);
        debug!(
            assignor = assignor.name(),
            members = decoded.len(),
            ?plan,
            "assigned"
        );
        Ok(plan
            .into_iter()
            .map(|(member, partitions)| {
                let a = WireAssignment {
                    partitions,
                    user_data: None,
                };
                (member, encode_assignment(&a, ASSIGNMENT_VERSION))
            })
            .collect())
    }

    /// Applies a new assignment. Returns true when the member must rejoin at once (it gave
    /// up partitions in a cooperative rebalance, so they can go to their new owner).
    async fn apply(&mut self, assigned: BTreeSet<TopicPartition>) -> bool {
        let revoked: Vec<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        if !revoked.is_empty() {
            self.revoke(&revoked).await;
        }
        self.owned = assigned;
        if !added.is_empty() {
            // A partition given back by the eager revoke-before-join and assigned again in the
            // very next generation had no other owner in between, and its records handed
            // out before the revoke are still with the application, which commits them when
            // it is done. Starting again at the committed offset would hand them out a
            // second time, racing that commit (the Java client and librdkafka never show
            // this: they revoke only inside the application's poll). With a rebalance hook
            // the application knows of the revocation and may have dropped that work, so
            // the committed offset is where it expects to resume, as in Java.
            let (generation, _) = self.shared.membership();
            let positions = match self.kept.take() {
                Some((given_up, positions)) if generation == given_up.wrapping_add(1) => positions,
                _ => HashMap::new(),
            };
            if !positions.is_empty() {
                debug!(
                    ?positions,
                    "reassigned at once: delivery resumes where it stood"
                );
            }
            self.shared
                .assignment
                .add_resuming(added.iter().cloned(), &positions);
            if let Some(l) = self.shared.listener() {
                let ctx = RebalanceContext {
                    shared: self.shared.clone(),
                };
                self.with_heartbeats(l.assigned(&ctx, &added)).await;
            }
        }
        info!(
            assigned = ?self.owned,
            added = added.len(),
            revoked = revoked.len(),
            "assignment applied"
        );
        self.last_poll = Instant::now();
        self.protocol == RebalanceProtocol::Cooperative && !revoked.is_empty()
    }

    /// Orderly revocation: commit what was consumed (auto-commit), run the hook, stop
    /// handing out the partitions' records. Returns where delivery stood for each partition
    /// that had a position (the next offset the application would have received).
    async fn revoke(&mut self, partitions: &[TopicPartition]) -> HashMap<TopicPartition, i64> {
        // Stop handing out their records first, so what gets committed is what the
        // application has; the partitions stay in the assignment until the hook has run, so
        // its `ctx.commit()` and `ctx.position()` still see them.
        let revoking = self.shared.assignment.stop_delivery(partitions.iter());
        if self.shared.auto_commits() {
            if let Err(e) = self.shared.commit_parts(&revoking).await {
                warn!(error = %e, "auto-commit on revoke failed");
            }
        }
        if let Some(l) = self.shared.listener() {
            let ctx = RebalanceContext {
                shared: self.shared.clone(),
            };
            self.with_heartbeats(l.revoked(&ctx, partitions)).await;
        }
        let positions = revoking
            .iter()
            .filter_map(|p| Some((p.tp.clone(), p.position()?)))
            .collect();
        self.shared.assignment.remove(partitions.iter());
        for tp in partitions {
            self.owned.remove(tp);
        }
        positions
    }

    /// The partitions are gone without handover: no commit, `lost` hook.
    async fn lose_all(&mut self) {
        let lost: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        self.shared.assignment.clear();
        self.owned.clear();
        if lost.is_empty() {
            return;
        }
        if let Some(l) = self.shared.listener() {
            let ctx = RebalanceContext {
                shared: self.shared.clone(),
            };
            l.lost(&ctx, &lost).await;
        }
    }

    /// Heartbeats, auto-commits, poll-interval checks and commands until a rebalance.
    async fn stable(&mut self) -> Next {
        let cfg = self.shared.cfg.clone();
        let mut heartbeat = tokio::time::interval(cfg.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut auto_commit = tokio::time::interval(cfg.auto_commit_interval);
        auto_commit.set_missed_tick_behavior(MissedTickBehavior::Delay);
        auto_commit.tick().await;
        let mut topic_check = tokio::time::interval(super::topics::TOPIC_CHECK_INTERVAL);
        topic_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        topic_check.tick().await;
        loop {
            tokio::select! {
                _ = topic_check.tick() => {
                    let counts = self.check_topics().await;
                    if counts != self.topic_counts {
                        info!(before = ?self.topic_counts, now = ?counts, "subscribed topics changed: rejoining");
                        return Next::Rejoin;
                    }
                }
                _ = heartbeat.tick() => {
                    if self.poll_expired() {
                        return self.poll_timeout().await;
                    }
                    let (generation, member) = self.shared.membership();
                    let coordinator = self.shared.coordinator.as_ref().expect("group");
                    match coordinator
                        .heartbeat(generation, member, cfg.group_instance_id.clone())
                        .await
                    {
                        Ok(()) => {}
                        Err(e) => {
                            if e.kafka_code() == Some(KafkaCode::RebalanceInProgress) {
                                debug!("rebalance in progress: rejoining");
                                return Next::Rejoin;
                            }
                            match self.on_group_error(&e, "heartbeat").await {
                                Ok(true) => return Next::Rejoin,
                                Ok(false) => {}
                                Err(()) => return Next::Stop,
                            }
                        }
                    }
                }
                _ = auto_commit.tick(), if self.shared.auto_commits() => {
                    if let Err(e) = self.shared.commit_consumed().await {
                        warn!(error = %e, "auto-commit failed");
                        if e.kafka_code() == Some(KafkaCode::RebalanceInProgress) {
                            return Next::Rejoin;
                        }
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(GroupCommand::Subscribe(t)) => {
                        self.set_topics(t);
                        if self.topics.is_empty() {
                            self.leave().await;
                        }
                        return Next::Rejoin;
                    }
                    Some(GroupCommand::SubscribePattern(_)) => {}
                    Some(GroupCommand::Close(reply)) => {
                        self.close_reply = Some(reply);
                        return Next::Stop;
                    }
                    None => return Next::Stop,
                },
            }
        }
    }

    /// Whether the application has not polled within `max.poll.interval.ms`.
    fn poll_expired(&mut self) -> bool {
        let since = self.shared.since_last_poll();
        self.shared.metrics.publish_last_poll(since);
        let polls = self.shared.polls.load(Ordering::Relaxed);
        if polls != self.polls_seen || self.shared.waiting.load(Ordering::Acquire) > 0 {
            self.polls_seen = polls;
            self.last_poll = Instant::now();
            return false;
        }
        self.last_poll.elapsed() > self.shared.cfg.max_poll_interval
    }

    /// The application stalled: leave so the group moves on, tell the application on its
    /// next call, and wait for that call before joining again.
    async fn poll_timeout(&mut self) -> Next {
        let interval = self.shared.cfg.max_poll_interval;
        warn!(
            max_poll_interval_ms = interval.as_millis() as u64,
            "recv not called within max.poll.interval.ms: leaving the group"
        );
        self.shared
            .metrics
            .poll_interval_exceeded
            .fetch_add(1, Ordering::Relaxed);
        self.leave().await;
        self.lose_all().await;
        let _ = self
            .shared
            .tx
            .send(Delivery::Error(Error::PollIntervalExceeded { interval }));
        let seen = self.shared.polls.load(Ordering::Relaxed);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if self.shared.polls.load(Ordering::Relaxed) != seen {
                        self.polls_seen = self.shared.polls.load(Ordering::Relaxed);
                        self.last_poll = Instant::now();
                        return Next::Rejoin;
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(GroupCommand::Subscribe(t)) => self.set_topics(t),
                    Some(GroupCommand::SubscribePattern(_)) => {}
                    Some(GroupCommand::Close(reply)) => {
                        self.close_reply = Some(reply);
                        return Next::Stop;
                    }
                    None => return Next::Stop,
                },
            }
        }
    }

    /// Acts on a group error. `Ok(true)`: rejoin now; `Ok(false)`: carry on; `Err(())`: fatal,
    /// stop (the application got the error).
    async fn on_group_error(&mut self, e: &Error, during: &str) -> std::result::Result<bool, ()> {
        let code = e.kafka_code();
        warn!(error = %e, during, "group error");
        match code {
            Some(KafkaCode::UnknownMemberId) => {
                // The coordinator forgot us (session expired): start over as a new member.
                self.shared.set_membership(-1, String::new());
                self.lose_all().await;
                Ok(true)
            }
            Some(KafkaCode::IllegalGeneration) => {
                self.shared.set_membership(-1, self.shared.membership().1);
                self.lose_all().await;
                Ok(true)
            }
            Some(KafkaCode::RebalanceInProgress) => Ok(true),
            Some(KafkaCode::FencedInstanceId) => {
                self.shared.set_fatal(e.clone());
                Err(())
            }
            _ => {
                let action = classify(e, Some(ApiKey::Heartbeat));
                if action.contains(Action::FATAL) {
                    self.shared.set_fatal(e.clone());
                    return Err(());
                }
                if !action.contains(Action::RETRY) && during == "join" {
                    // Group-level refusal (authorization, invalid session timeout): the
                    // application must know; keep trying at the backoff pace.
                    let _ = self.shared.tx.send(Delivery::Error(e.clone()));
                }
                Ok(false)
            }
        }
    }

    /// LeaveGroup, unless this is a static member (KIP-345: a static member's restart must
    /// not trigger a rebalance; the session timeout decides).
    async fn leave(&mut self) {
        let (_, member) = self.shared.membership();
        if member.is_empty() || self.shared.cfg.group_instance_id.is_some() {
            return;
        }
        let coordinator = self.shared.coordinator.as_ref().expect("group");
        if let Err(e) = coordinator.leave_group(member, None).await {
            debug!(error = %e, "LeaveGroup failed");
        }
        self.shared.set_membership(-1, String::new());
    }

    async fn shutdown(&mut self) {
        if !self.owned.is_empty() && !self.shared.is_fatal() {
            let all: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            self.revoke(&all).await;
        }
        self.leave().await;
        self.shared.assignment.clear();
        if let Some(reply) = self.close_reply.take() {
            let _ = reply.send(());
        }
    }

    /// Awaits `fut` while heartbeating, so a long hook does not cost the membership.
    async fn with_heartbeats<F: Future<Output = ()>>(&self, fut: F) {
        let cfg = &self.shared.cfg;
        let coordinator = self.shared.coordinator.as_ref().expect("group");
        let mut heartbeat = tokio::time::interval(cfg.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat.tick().await;
        tokio::pin!(fut);
        loop {
            tokio::select! {
                _ = &mut fut => return,
                _ = heartbeat.tick() => {
                    let (generation, member) = self.shared.membership();
                    if let Err(e) = coordinator
                        .heartbeat(generation, member, cfg.group_instance_id.clone())
                        .await
                    {
                        debug!(error = %e, "heartbeat during a rebalance hook");
                    }
                }
            }
        }
    }
}

/// Partitions grouped per topic, sorted, as the consumer protocol lists them.
fn group_by_topic<'a>(tps: impl Iterator<Item = &'a TopicPartition>) -> Vec<(String, Vec<i32>)> {
    let mut map: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        map.entry(tp.topic.to_string())
            .or_default()
            .push(tp.partition);
    }
    map.into_iter().collect()
}
