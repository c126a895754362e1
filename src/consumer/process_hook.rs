//! How concurrent processing takes part in rebalances and commits.
//!
//! A running processor installs a [`ProcessingHook`] on the consumer (`Shared::hook`); the
//! group task calls it *before* the application's own [`RebalanceListener`] (see
//! `listener::Chained`), so the application's hooks keep working:
//!
//! - `assigned`: reads the committed offsets and their metadata (the done offsets a previous
//!   owner stored) and hands them to the driver, before fetching starts.
//! - `revoked`: the group task has already stopped delivery of the partitions; the driver
//!   drops their records not started yet, waits for those in flight (up to the revoke
//!   timeout, then cancels them) and answers with the done prefix, which the hook commits
//!   before the rebalance goes on. The group task heartbeats all along.
//! - `lost`: the driver cancels the partitions' records in flight and forgets them; nothing
//!   is committed (another member may own them already).
//!
//! Commits from the driver's timer and from the hook go through one [`CommitGate`], so an
//! older commit never overwrites a newer one of the same partition.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::consumer::listener::{RebalanceContext, RebalanceListener};
use crate::consumer::offset_tracker::decode_done;
use crate::consumer::record::{CommitOffset, TopicPartition};
use crate::consumer::Shared;
use crate::error::Result;

/// Where a partition starts: its committed offset and the done runs stored with it.
#[derive(Debug, Clone)]
pub(crate) struct Seed {
    pub(crate) tp: TopicPartition,
    pub(crate) committed: i64,
    pub(crate) done: Vec<Range<i64>>,
}

/// An offset (and metadata) to commit for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToCommit {
    pub(crate) tp: TopicPartition,
    pub(crate) offset: i64,
    pub(crate) metadata: Option<String>,
}

/// Requests from the hook (group task) to the driver.
#[derive(Debug)]
pub(crate) enum HookCmd {
    /// New partitions and where they start; answered once the driver knows them.
    Assigned {
        seeds: Vec<Seed>,
        reply: oneshot::Sender<()>,
    },
    /// Drain these partitions by `deadline`; answered with what to commit.
    Revoke {
        parts: Vec<TopicPartition>,
        deadline: Instant,
        reply: oneshot::Sender<Vec<ToCommit>>,
    },
    /// Drop these partitions now; answered when their work is cancelled.
    Lost {
        parts: Vec<TopicPartition>,
        reply: oneshot::Sender<()>,
    },
}

/// Serialises the processor's commits and keeps them monotonic per partition.
#[derive(Debug, Default)]
pub(crate) struct CommitGate {
    /// Last offset and metadata committed per partition by this processor, kept for every
    /// partition it ever committed (bounded by the partition count).
    sent: tokio::sync::Mutex<HashMap<TopicPartition, (i64, Option<String>)>>,
    pub(crate) commits: AtomicU64,
    pub(crate) failures: AtomicU64,
}

impl CommitGate {
    /// Commits what moved since the last commit; returns what was committed.
    pub(crate) async fn commit(
        &self,
        shared: &Shared,
        items: Vec<ToCommit>,
    ) -> Result<Vec<ToCommit>> {
        let mut sent = self.sent.lock().await;
        let items: Vec<ToCommit> = items
            .into_iter()
            .filter(|c| match sent.get(&c.tp) {
                None => true,
                Some((o, m)) => c.offset > *o || (c.offset == *o && c.metadata != *m),
            })
            .collect();
        if items.is_empty() {
            return Ok(items);
        }
        let offsets: HashMap<TopicPartition, CommitOffset> = items
            .iter()
            .map(|c| {
                let mut o = CommitOffset::new(c.offset);
                o.metadata = c.metadata.clone();
                (c.tp.clone(), o)
            })
            .collect();
        match shared.commit_explicit(&offsets).await {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                for c in &items {
                    sent.insert(c.tp.clone(), (c.offset, c.metadata.clone()));
                }
                Ok(items)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// Reads the committed offsets of `parts` and the done runs stored with them.
pub(crate) async fn read_seeds(shared: &Shared, parts: &[TopicPartition]) -> Result<Vec<Seed>> {
    let Some(coordinator) = shared.coordinator.as_ref() else {
        return Ok(Vec::new());
    };
    let keys: Vec<(String, i32)> = parts
        .iter()
        .map(|tp| (tp.topic.to_string(), tp.partition))
        .collect();
    let found = coordinator.fetch_offsets(&keys).await?;
    Ok(parts
        .iter()
        .filter_map(|tp| {
            let c = found
                .get(&(tp.topic.to_string(), tp.partition))
                .cloned()
                .flatten()?;
            let done = c
                .metadata
                .as_deref()
                .map(|m| decode_done(c.offset, m))
                .unwrap_or_default();
            Some(Seed {
                tp: tp.clone(),
                committed: c.offset,
                done,
            })
        })
        .collect())
}

/// The processor's rebalance hooks; holds only a sender to the driver, so a hook called
/// after the driver stopped returns at once.
pub(crate) struct ProcessingHook {
    pub(crate) cmds: mpsc::UnboundedSender<HookCmd>,
    pub(crate) gate: Arc<CommitGate>,
    pub(crate) revoke_timeout: Duration,
}

#[async_trait]
impl RebalanceListener for ProcessingHook {
    async fn assigned(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        // Where each partition starts and what a previous owner already did. Without it
        // the trackers start at the first record handed out, and done records run again.
        let seeds = match read_seeds(&ctx.shared, partitions).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "reading committed offsets for processing failed");
                Vec::new()
            }
        };
        let (reply, done) = oneshot::channel();
        if self.cmds.send(HookCmd::Assigned { seeds, reply }).is_ok() {
            let _ = done.await;
        }
    }

    async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + self.revoke_timeout;
        let cmd = HookCmd::Revoke {
            parts: partitions.to_vec(),
            deadline,
            reply,
        };
        if self.cmds.send(cmd).is_err() {
            return;
        }
        // The driver answers by the deadline itself; the slack covers a driver that is
        // gone or stuck, so the rebalance never hangs on it.
        let offsets = match tokio::time::timeout(
            self.revoke_timeout + Duration::from_secs(5),
            answer,
        )
        .await
        {
            Ok(Ok(o)) => o,
            _ => return,
        };
        // The gate keeps what it sent for these partitions even after they leave: a
        // periodic commit snapshotted before the revoke and still waiting for the gate
        // must not go out after this one and move the offset back.
        match self.gate.commit(&ctx.shared, offsets).await {
            Ok(c) => debug!(partitions = c.len(), "committed the done prefix on revoke"),
            Err(e) => warn!(error = %e, "commit on revoke failed"),
        }
    }

    async fn lost(&self, _ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        let (reply, done) = oneshot::channel();
        let cmd = HookCmd::Lost {
            parts: partitions.to_vec(),
            reply,
        };
        if self.cmds.send(cmd).is_ok() {
            let _ = done.await;
        }
    }
}
