//! The KIP-848 member: the group task for `group.protocol=consumer`.
//!
//! ```text
//!                subscribe                 answer (epoch > 0)
//!   Unsubscribed ─────────► Joining ─────────────────────────► Stable ◄─────────────┐
//!    ▲  (epoch 0, full heartbeat)  │                             │ heartbeat every     │
//!    │                             │                             │ interval the broker │
//!    │ unsubscribe / close:        │                             │ returns             │
//!    │ revoked(all), commit,       │            new target assignment in an answer     │
//!    │ leave (epoch -1, static -2) │                             ▼                     │
//!    └─────────────────────────────┤                        Reconciling ───────────────┘
//!                                  │   1. revoke owned − target: stop delivery, commit
//!                                  │      (auto-commit), `revoked` hook, drop them
//!                                  │   2. acknowledge: heartbeat with the new owned set
//!                                  │   3. `assigned` hook for target − owned (fetching starts)
//!   Fenced ◄── FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID (any state): `lost`(all), no commit,
//!     └──────► Joining again at once with epoch 0 and the same member id
//!   Fatal  ◄── UNRELEASED_INSTANCE_ID, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION, …
//!              (classify.rs): the error goes to `recv`, the task stops
//!   Stale  ◄── max.poll.interval.ms without a poll: leave, `lost`(all), error to `recv`,
//!              join again (epoch 0) at the next poll
//! ```
//!
//! Ownership: this task (spawned by `Consumer::subscribe`, stopped by `close` or when the
//! consumer is dropped) owns the member id, the member epoch, the subscription, the target
//! assignment and the reconciled (owned) set. It publishes (epoch, member id) through
//! `Shared::set_membership`, which commits read: OffsetCommit carries the member epoch. The
//! partitions themselves live in `state::Assignment`, read by the fetcher.
//!
//! The broker computes assignments (`group.remote.assignor` picks its assignor) and names
//! topics by id; names come from metadata (Metadata v10+ reports topic ids). A partition is
//! only given to a new owner once the old owner acknowledged its revocation, so the commit
//! in step 1 always lands before the next owner reads the committed offset. Heartbeats go on
//! while hooks run, carrying the old owned set until the hook is done.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::classify::{classify, Action};
use crate::client::metadata::TopicsQuery;
use crate::codes::KafkaCode;
use crate::consumer::group::GroupCommand;
use crate::consumer::heartbeat848::{
    heartbeat, leave_epoch, new_member_id, Beat, IdAssignment, SentFields, Subscription, TopicId,
};
use crate::consumer::listener::RebalanceContext;
use crate::consumer::record::TopicPartition;
use crate::consumer::state::Delivery;
use crate::consumer::Shared;
use crate::error::{Error, Result};

/// The heartbeat interval before the broker named one (Kafka's default).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Why the member loop ended.
enum Next {
    /// Nothing subscribed any more: wait for the next subscription.
    Idle,
    /// Stop the task (close, fatal error, consumer gone).
    Stop,
}

pub(crate) struct Member848 {
    shared: Arc<Shared>,
    cmds: mpsc::UnboundedReceiver<GroupCommand>,
    group: String,
    /// Made once by this member and kept for the consumer's life (KIP-1082).
    member_id: String,
    /// 0 while joining; the broker's epoch once in the group.
    epoch: i32,
    subscription: Option<Subscription>,
    /// The reconciled assignment: what the application holds, by name and by topic id.
    owned: BTreeSet<TopicPartition>,
    owned_ids: IdAssignment,
    /// The broker's latest target assignment while it is not fully reconciled.
    target: Option<IdAssignment>,
    /// Topic names by id, from metadata.
    names: HashMap<TopicId, String>,
    sent: SentFields,
    interval: Duration,
    next_beat: Instant,
    backoff: Backoff,
    /// Set by a heartbeat that found this member fenced; acted on (lost hook, rejoin) once
    /// no hook is running.
    fenced: bool,
    /// Whether a join was sent since the last leave (a leave is owed on close).
    in_group: bool,
    polls_seen: u64,
    last_poll: Instant,
    close_reply: Option<oneshot::Sender<()>>,
}

impl Member848 {
    pub(crate) fn new(shared: Arc<Shared>, cmds: mpsc::UnboundedReceiver<GroupCommand>) -> Self {
        let group = shared.cfg.group_id.clone().unwrap_or_default();
        let client = &shared.client.inner.cfg;
        let backoff = Backoff::new(client.retry_backoff, client.retry_backoff_max);
        Member848 {
            shared,
            cmds,
            group,
            member_id: new_member_id(),
            epoch: 0,
            subscription: None,
            owned: BTreeSet::new(),
            owned_ids: IdAssignment::new(),
            target: None,
            names: HashMap::new(),
            sent: SentFields::default(),
            interval: DEFAULT_INTERVAL,
            next_beat: Instant::now(),
            backoff,
            fenced: false,
            in_group: false,
            polls_seen: 0,
            last_poll: Instant::now(),
            close_reply: None,
        }
    }

    /// Runs until `Close`, a fatal error, or until the application handle is gone.
    pub(crate) async fn run(mut self) {
        loop {
            while self.subscription.is_none() {
                match self.cmds.recv().await {
                    Some(GroupCommand::Subscribe(t)) => self.set_topics(t),
                    Some(GroupCommand::SubscribePattern(p)) => {
                        self.subscription = Some(Subscription::Pattern(p))
                    }
                    Some(GroupCommand::Close(reply)) => {
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                }
            }
            match self.member().await {
                Next::Idle => continue,
                Next::Stop => {
                    self.shutdown().await;
                    return;
                }
            }
        }
    }

    fn set_topics(&mut self, mut topics: Vec<String>) {
        topics.sort();
        topics.dedup();
        self.shared
            .client
            .inner
            .metadata
            .add_interest(topics.iter().map(String::as_str));
        self.subscription = (!topics.is_empty()).then_some(Subscription::Topics(topics));
    }

    /// In the group: heartbeats, reconciliation, auto-commits and commands.
    async fn member(&mut self) -> Next {
        let cfg = self.shared.cfg.clone();
        let mut auto_commit = tokio::time::interval(cfg.auto_commit_interval);
        auto_commit.set_missed_tick_behavior(MissedTickBehavior::Delay);
        auto_commit.tick().await;
        self.next_beat = Instant::now();
        self.last_poll = Instant::now();
        loop {
            if self.shared.is_fatal() {
                return Next::Stop;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(self.next_beat) => {
                    if self.epoch > 0 && self.poll_expired() {
                        if let Some(next) = self.poll_timeout().await {
                            return next;
                        }
                        continue;
                    }
                    self.beat_and_reconcile().await;
                }
                _ = auto_commit.tick(), if self.shared.auto_commits() && !self.owned.is_empty() => {
                    if let Err(e) = self.shared.commit_consumed().await {
                        warn!(error = %e, "auto-commit failed");
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(GroupCommand::Subscribe(t)) => {
                        self.set_topics(t);
                        if self.subscription.is_none() {
                            self.unsubscribe().await;
                            return Next::Idle;
                        }
                        // The new subscription goes out with the next heartbeat, now.
                        self.next_beat = Instant::now();
                    }
                    Some(GroupCommand::SubscribePattern(p)) => {
                        self.subscription = Some(Subscription::Pattern(p));
                        self.next_beat = Instant::now();
                    }
                    Some(GroupCommand::Close(reply)) => {
                        self.close_reply = Some(reply);
                        return Next::Stop;
                    }
                    None => return Next::Stop,
                },
            }
        }
    }

    /// One heartbeat, then whatever reconciliation its answer asks for.
    async fn beat_and_reconcile(&mut self) {
        self.beat().await;
        loop {
            if self.fenced {
                self.on_fenced().await;
                return;
            }
            if self.target.is_none() || self.shared.is_fatal() {
                return;
            }
            if !self.reconcile().await {
                return;
            }
        }
    }

    /// Sends one heartbeat (the current owned set) and takes in its answer.
    async fn beat(&mut self) {
        let Some(subscription) = self.subscription.clone() else {
            return;
        };
        let coordinator = self
            .shared
            .coordinator
            .clone()
            .expect("a KIP-848 member needs a group");
        let cfg = self.shared.cfg.clone();
        let beat = Beat {
            group: &self.group,
            member_id: &self.member_id,
            epoch: self.epoch,
            instance_id: cfg.group_instance_id.as_deref(),
            rack_id: cfg.client_rack.as_deref(),
            rebalance_timeout_ms: cfg.max_poll_interval.as_millis().min(i32::MAX as u128) as i32,
            subscription: &subscription,
            assignor: cfg.remote_assignor.as_deref(),
            owned: &self.owned_ids,
        };
        self.in_group = true;
        match heartbeat(&coordinator, &beat, &mut self.sent).await {
            Ok(answer) => {
                self.backoff.reset();
                if let Some(id) = answer.member_id.filter(|id| !id.is_empty()) {
                    self.member_id = id;
                }
                if self.epoch == 0 && answer.epoch > 0 {
                    info!(
                        group = %self.group,
                        member = %self.member_id,
                        epoch = answer.epoch,
                        "joined group (consumer protocol)"
                    );
                }
                self.epoch = answer.epoch;
                // Commits from now on carry the new epoch (OffsetCommit v9+ checks it).
                self.shared
                    .set_membership(self.epoch, self.member_id.clone());
                if !answer.interval.is_zero() {
                    self.interval = answer.interval;
                }
                self.next_beat = Instant::now() + self.interval;
                if let Some(target) = answer.assignment {
                    debug!(?target, epoch = self.epoch, "new target assignment");
                    self.target = Some(target);
                }
            }
            Err(e) => self.on_error(e),
        }
    }

    /// Acts on a failed heartbeat. Fencing is noted for `on_fenced`; fatal errors go to the
    /// application; everything else is retried after backoff with a full heartbeat.
    fn on_error(&mut self, e: Error) {
        match e.kafka_code() {
            Some(KafkaCode::FencedMemberEpoch) | Some(KafkaCode::UnknownMemberId) => {
                warn!(error = %e, member = %self.member_id, "fenced: rejoining");
                self.fenced = true;
                self.epoch = 0;
                self.target = None;
                self.shared.set_membership(0, self.member_id.clone());
                self.next_beat = Instant::now();
            }
            _ => {
                let action = classify(&e, Some(ApiKey::ConsumerGroupHeartbeat));
                if action.contains(Action::FATAL) {
                    warn!(error = %e, "group membership failed for good");
                    self.shared.set_fatal(e);
                    return;
                }
                let delay = self.backoff.next_delay();
                debug!(error = %e, ?delay, "heartbeat failed: retrying");
                if !action.contains(Action::RETRY) {
                    // E.g. TOPIC_AUTHORIZATION_FAILED: the application must know; the member
                    // keeps trying at the backoff pace, as Java's does.
                    let _ = self.shared.tx.send(Delivery::Error(e));
                }
                self.next_beat = Instant::now() + delay;
            }
        }
    }

    /// The partitions are gone without a handover (another member may own them already):
    /// no commit, the `lost` hook, then join again with epoch 0 and the same member id.
    async fn on_fenced(&mut self) {
        self.fenced = false;
        self.lose_all().await;
        self.epoch = 0;
        self.sent.reset();
        self.next_beat = Instant::now();
    }

    /// Topic names for `ids`: from the metadata cache, or from a refresh of every topic (a
    /// regex subscription may bring topics this client never named).
    async fn resolve_names(&mut self, ids: &[TopicId]) {
        let fill = |names: &mut HashMap<TopicId, String>,
                    snapshot: &crate::client::metadata::Snapshot| {
            for t in &snapshot.cluster.topics {
                if let Some(id) = t.id {
                    names.insert(id, t.name.clone());
                }
            }
        };
        let client = &self.shared.client.inner;
        fill(&mut self.names, &client.metadata.snapshot());
        if ids.iter().all(|id| self.names.contains_key(id)) {
            return;
        }
        match client.refresh_metadata(TopicsQuery::All, None).await {
            Ok(snapshot) => fill(&mut self.names, &snapshot),
            Err(e) => debug!(error = %e, "metadata for assigned topic ids failed"),
        }
    }

    /// One reconciliation step towards `target`: revoke, acknowledge, assign. Returns false
    /// when nothing could be done now (topics not in metadata yet, already reconciled).
    async fn reconcile(&mut self) -> bool {
        let Some(target) = self.target.clone() else {
            return false;
        };
        let missing: Vec<TopicId> = target
            .keys()
            .filter(|id| !self.names.contains_key(*id))
            .copied()
            .collect();
        if !missing.is_empty() {
            self.resolve_names(&missing).await;
        }
        let mut want = BTreeSet::new();
        let mut want_ids = IdAssignment::new();
        let mut unresolved = false;
        for (id, parts) in &target {
            match self.names.get(id) {
                Some(name) => {
                    want.extend(parts.iter().map(|p| TopicPartition::new(name, *p)));
                    want_ids.insert(*id, parts.clone());
                }
                // Reconciled later, once metadata knows the topic (Java keeps these pending
                // the same way).
                None => unresolved = true,
            }
        }
        if want_ids == self.owned_ids {
            if !unresolved {
                self.target = None;
            }
            return false;
        }
        let revoked: Vec<TopicPartition> = self.owned.difference(&want).cloned().collect();
        let added: Vec<TopicPartition> = want.difference(&self.owned).cloned().collect();
        if !revoked.is_empty() {
            self.revoke(&revoked).await;
            if self.fenced {
                return false;
            }
        }
        self.owned = want;
        self.owned_ids = want_ids;
        // A heartbeat during the hook may have brought a newer target: keep that one.
        if !unresolved && self.target.as_ref() == Some(&target) {
            self.target = None;
        }
        self.shared
            .client
            .inner
            .metadata
            .add_interest(added.iter().map(|tp| &*tp.topic));
        self.shared.assignment.add(added.iter().cloned());
        self.shared
            .metrics
            .rebalances
            .fetch_add(1, Ordering::Relaxed);
        info!(
            group = %self.group,
            epoch = self.epoch,
            assigned = ?self.owned,
            added = added.len(),
            revoked = revoked.len(),
            "assignment reconciled"
        );
        // Acknowledge at once: the broker hands the revoked partitions to their next owners
        // only when this member says it no longer owns them.
        self.next_beat = Instant::now();
        self.beat().await;
        if !added.is_empty() && !self.fenced {
            if let Some(l) = self.shared.listener() {
                let ctx = RebalanceContext {
                    shared: self.shared.clone(),
                };
                self.with_heartbeats(l.assigned(&ctx, &added)).await;
            }
        }
        self.last_poll = Instant::now();
        true
    }

    /// Orderly revocation: stop handing out the partitions' records, commit what was
    /// consumed (auto-commit), run the hook, then drop them.
    async fn revoke(&mut self, partitions: &[TopicPartition]) {
        // The partitions stay assigned while the hook runs, so its `ctx.commit()` and
        // `ctx.position()` still see them; their records are no longer handed out.
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
        self.shared.assignment.remove(partitions.iter());
        for tp in partitions {
            self.owned.remove(tp);
        }
    }

    /// Every partition gone at once, without a commit: the `lost` hook.
    async fn lose_all(&mut self) {
        let lost: Vec<TopicPartition> = self.owned.iter().cloned().collect();
        self.shared.assignment.clear();
        self.owned.clear();
        self.owned_ids.clear();
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

    /// Awaits `fut` (a hook) while heartbeating, so a long hook does not cost the
    /// membership. The owned set sent meanwhile is the one before the hook.
    async fn with_heartbeats<F: Future<Output = ()>>(&mut self, fut: F) {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                _ = &mut fut => return,
                _ = tokio::time::sleep_until(self.next_beat) => self.beat().await,
            }
        }
    }

    /// Leaves the group: epoch -1, or -2 for a static member.
    async fn leave(&mut self) {
        if !self.in_group {
            return;
        }
        self.in_group = false;
        let Some(coordinator) = self.shared.coordinator.clone() else {
            return;
        };
        let subscription = self
            .subscription
            .clone()
            .unwrap_or(Subscription::Topics(Vec::new()));
        let cfg = self.shared.cfg.clone();
        let epoch = leave_epoch(cfg.group_instance_id.is_some());
        let beat = Beat {
            group: &self.group,
            member_id: &self.member_id,
            epoch,
            instance_id: cfg.group_instance_id.as_deref(),
            rack_id: None,
            rebalance_timeout_ms: -1,
            subscription: &subscription,
            assignor: None,
            owned: &IdAssignment::new(),
        };
        let mut sent = SentFields::default();
        match heartbeat(&coordinator, &beat, &mut sent).await {
            Ok(_) => info!(group = %self.group, member = %self.member_id, epoch, "left group"),
            Err(e) => debug!(error = %e, "leaving the group failed"),
        }
        self.epoch = 0;
        self.target = None;
        self.sent.reset();
        self.shared.set_membership(-1, String::new());
    }

    /// Unsubscribed while in the group: revoke everything (hooks, commit), then leave.
    async fn unsubscribe(&mut self) {
        self.revoke_all().await;
        self.leave().await;
    }

    async fn revoke_all(&mut self) {
        if !self.owned.is_empty() && !self.shared.is_fatal() && !self.fenced {
            let all: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            self.revoke(&all).await;
        }
        self.shared.assignment.clear();
        self.owned.clear();
        self.owned_ids.clear();
    }

    async fn shutdown(&mut self) {
        self.revoke_all().await;
        self.leave().await;
        if let Some(reply) = self.close_reply.take() {
            let _ = reply.send(());
        }
    }

    /// Whether the application has not polled within `max.poll.interval.ms`.
    fn poll_expired(&mut self) -> bool {
        let polls = self.shared.polls.load(Ordering::Relaxed);
        if polls != self.polls_seen || self.shared.waiting.load(Ordering::Acquire) > 0 {
            self.polls_seen = polls;
            self.last_poll = Instant::now();
            return false;
        }
        self.last_poll.elapsed() > self.shared.cfg.max_poll_interval
    }

    /// The application stalled: leave so the group moves on (the broker would drop the
    /// member after the rebalance timeout anyway), tell the application on its next call,
    /// and join again once it polls. `Some` when the task must stop or go idle instead.
    async fn poll_timeout(&mut self) -> Option<Next> {
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
                        self.next_beat = Instant::now();
                        return None;
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(GroupCommand::Subscribe(t)) => {
                        self.set_topics(t);
                        if self.subscription.is_none() {
                            return Some(Next::Idle);
                        }
                    }
                    Some(GroupCommand::SubscribePattern(p)) => {
                        self.subscription = Some(Subscription::Pattern(p));
                    }
                    Some(GroupCommand::Close(reply)) => {
                        self.close_reply = Some(reply);
                        return Some(Next::Stop);
                    }
                    None => return Some(Next::Stop),
                },
            }
        }
    }
}

/// Checks a regex subscription before it is sent, so an obvious typo fails `subscribe_pattern`
/// instead of a heartbeat (the broker evaluates it, with RE2/J).
pub(crate) fn check_pattern(pattern: &str) -> Result<()> {
    if pattern.trim().is_empty() {
        return Err(Error::InvalidInput("an empty topic pattern".into()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "member848_tests.rs"]
mod tests;
