//! Rebalance hooks: an async listener the group task awaits before the rebalance goes on.
//!
//! Unlike librdkafka's rebalance callback (synchronous, on its own thread), these hooks are
//! `async` and awaited by the group task, which keeps heartbeating meanwhile: an application
//! can finish in-flight work and commit inside `revoked` without being dropped from the group
//! for a long hook (up to `max.poll.interval.ms`, the rebalance timeout).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::consumer::record::{CommitOffset, SeekTo, TopicPartition};
use crate::consumer::Shared;
use crate::error::Result;

/// Hooks called when the group moves partitions to or from this consumer.
///
/// Every method has a default that does nothing (`lost` calls `revoked`, as in Java).
///
/// ```no_run
/// use ferrokafka::{RebalanceContext, RebalanceListener, TopicPartition};
///
/// struct CommitOnRevoke;
///
/// #[ferrokafka::async_trait]
/// impl RebalanceListener for CommitOnRevoke {
///     async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
///         // Runs before the partitions move to another member: commit what was processed.
///         if let Err(e) = ctx.commit().await {
///             eprintln!("commit on revoke of {partitions:?} failed: {e}");
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait RebalanceListener: Send + Sync {
    /// Partitions were added to this consumer. Fetching starts after this returns; seek here
    /// to choose where.
    async fn assigned(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        let _ = (ctx, partitions);
    }

    /// Partitions are leaving this consumer in an orderly rebalance. Their records are no
    /// longer handed out, and they are still assigned while this runs: commit here (their
    /// positions cover every record `recv` returned — finish processing those first).
    async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        let _ = (ctx, partitions);
    }

    /// Partitions were taken away without an orderly handover (session expired, generation
    /// fenced): another member may already own them, so commits would fail.
    async fn lost(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        self.revoked(ctx, partitions).await
    }
}

/// What a rebalance hook may do with the consumer.
pub struct RebalanceContext {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for RebalanceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RebalanceContext").finish_non_exhaustive()
    }
}

impl RebalanceContext {
    /// Commits the positions of every assigned partition (the offsets after the records
    /// already handed to the application) and waits for the coordinator.
    pub async fn commit(&self) -> Result<()> {
        self.shared.commit_consumed().await
    }

    /// Commits explicit offsets.
    pub async fn commit_offsets(
        &self,
        offsets: &HashMap<TopicPartition, CommitOffset>,
    ) -> Result<()> {
        self.shared.commit_explicit(offsets).await
    }

    /// The position of an assigned partition: the offset of the next record `recv` returns.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.assignment.get(tp).and_then(|p| p.position())
    }

    /// Moves an assigned partition's position.
    pub fn seek(&self, tp: &TopicPartition, to: SeekTo) -> Result<()> {
        self.shared.seek(tp, to)
    }

    /// The partitions assigned now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.assignment.partitions()
    }
}

/// Two listeners in a row: a processor's hook (`first`, which drains and commits) and the
/// application's (`then`), so installing a processor keeps the application's hooks.
pub(crate) struct Chained {
    pub(crate) first: Arc<dyn RebalanceListener>,
    pub(crate) then: Arc<dyn RebalanceListener>,
}

#[async_trait]
impl RebalanceListener for Chained {
    async fn assigned(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        self.first.assigned(ctx, partitions).await;
        self.then.assigned(ctx, partitions).await;
    }

    async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        self.first.revoked(ctx, partitions).await;
        self.then.revoked(ctx, partitions).await;
    }

    async fn lost(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        self.first.lost(ctx, partitions).await;
        self.then.lost(ctx, partitions).await;
    }
}
