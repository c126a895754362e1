//! A consumer group's lag in one call: per partition the committed offset, the log end
//! offset, their difference and the member that owns the partition.
//!
//! Built to stay cheap for hundreds of partitions: one describe of the group (members and
//! assignments), one OffsetFetch for all its committed offsets, and one ListOffsets per
//! partition leader for the log end offsets — never a request per partition.

use std::collections::{BTreeMap, BTreeSet};

use super::{Admin, GroupMember, OffsetSpec};
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

/// One partition of [`Admin::group_lag`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupPartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset (the next record it will read); `None` when it has not
    /// committed this (assigned) partition yet.
    pub committed: Option<i64>,
    /// The log end offset (high watermark), when it could be read.
    pub log_end_offset: Option<i64>,
    /// `log_end_offset - committed` (never negative); `None` when either is unknown.
    pub lag: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub member: Option<GroupMember>,
    /// Why `committed` or `log_end_offset` is missing, when it is an error (the
    /// partition's OffsetFetch or ListOffsets error, e.g. UNKNOWN_TOPIC_OR_PARTITION for a
    /// deleted topic).
    pub error: Option<Error>,
}

/// Lag from the two offsets: what is left to read, never negative (the log end offset is
/// read after the commit, and a commit can run ahead of a truncated log).
pub(crate) fn lag_of(committed: Option<i64>, log_end: Option<i64>) -> Option<i64> {
    Some((log_end? - committed?).max(0))
}

impl Admin {
    /// The lag of `group`, one row per partition that the group has committed or that is
    /// assigned to one of its members, sorted by topic and partition. A group that does not
    /// exist fails with GROUP_ID_NOT_FOUND; a partition whose offsets cannot be read carries
    /// its own error.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<GroupPartitionLag>> {
        let description = self.describe_groups(&[group]).await?.remove(0).result?;
        let committed = self.list_group_offsets(group, None).await?;

        let mut owner: BTreeMap<TopicPartition, &GroupMember> = BTreeMap::new();
        for m in &description.members {
            for tp in &m.assignment {
                owner.insert(tp.clone(), m);
            }
        }
        let mut committed_at: BTreeMap<TopicPartition, Result<i64>> = BTreeMap::new();
        for c in committed {
            committed_at.insert(c.resource, c.result.map(|o| o.offset));
        }
        let partitions: BTreeSet<TopicPartition> =
            owner.keys().chain(committed_at.keys()).cloned().collect();
        let asks: Vec<(TopicPartition, OffsetSpec)> = partitions
            .iter()
            .map(|tp| (tp.clone(), OffsetSpec::Latest))
            .collect();
        let mut log_end: BTreeMap<TopicPartition, Result<i64>> = self
            .list_offsets_many(&asks)
            .await?
            .into_iter()
            .map(|r| (r.resource, r.result.map(|o| o.offset)))
            .collect();

        Ok(partitions
            .into_iter()
            .map(|tp| {
                let mut error = None;
                let committed = match committed_at.remove(&tp) {
                    Some(Ok(o)) => Some(o),
                    Some(Err(e)) => {
                        error = Some(e);
                        None
                    }
                    None => None,
                };
                let log_end_offset = match log_end.remove(&tp) {
                    Some(Ok(o)) => Some(o),
                    Some(Err(e)) => {
                        error.get_or_insert(e);
                        None
                    }
                    None => None,
                };
                GroupPartitionLag {
                    member: owner.get(&tp).map(|m| (*m).clone()),
                    lag: lag_of(committed, log_end_offset),
                    partition: tp,
                    committed,
                    log_end_offset,
                    error,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_difference_and_never_negative() {
        assert_eq!(lag_of(Some(10), Some(25)), Some(15));
        assert_eq!(lag_of(Some(30), Some(25)), Some(0));
        assert_eq!(lag_of(None, Some(25)), None);
        assert_eq!(lag_of(Some(3), None), None);
    }
}
