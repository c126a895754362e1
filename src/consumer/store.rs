//! Processed offsets: `store_offset(s)` with `enable.auto.offset.store=false`.
//!
//! librdkafka's model, which the Java client lacks: a record handed out by `recv` is not yet
//! *processed*. With auto store off, the application marks what it has processed (offset + 1
//! of the record, the next one to read) and every commit that takes no explicit offsets —
//! auto-commit, commit on revoke or close, `Consumer::commit` — sends only stored offsets
//! (`Shared::commit_point`). A record that was handed out and never stored is therefore read
//! again after a crash, a rebalance or a restart: at-least-once for every record, even with
//! many records in flight at once (`for_each_concurrent`).
//!
//! The stored offset lives next to the consumed one in `PartitionState` (one atomic store
//! per call, no lock) and is forgotten with the partition when it is revoked.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::state::PartitionState;
use super::{Consumer, ConsumerRecord, TopicPartition};
use crate::error::{Error, Result};

impl Consumer {
    /// Marks `record` as processed: the next commit (auto-commit, revoke, close, or
    /// [`Consumer::commit`]) sends `record.offset + 1` for its partition.
    ///
    /// Needs `enable.auto.offset.store=false` (else every record handed out is stored
    /// already): [`Error::InvalidState`] otherwise. A record of a partition no longer
    /// assigned (revoked since it was handed out) is [`Error::InvalidState`] too: another
    /// member owns the partition now, and its commits decide. While a
    /// [`RebalanceListener::revoked`](crate::RebalanceListener::revoked) hook runs, its
    /// partitions still count as assigned: the hook may wait for in-flight records, store
    /// them and `ctx.commit()`.
    ///
    /// Records of one partition may be stored out of order (concurrent processing); the
    /// last store wins, as in librdkafka, so store in order when that matters.
    pub fn store_offset(&self, record: &ConsumerRecord) -> Result<()> {
        let tp = TopicPartition {
            topic: record.topic.clone(),
            partition: record.partition,
        };
        self.store(&[(self.stored_partition(&tp)?, record.offset + 1)]);
        Ok(())
    }

    /// Stores explicit offsets: for each partition, the next offset to read (last
    /// processed + 1), as [`Consumer::commit_offsets`] takes them. Every partition must be
    /// assigned, or nothing is stored and [`Error::InvalidState`] names the first that is
    /// not; `enable.auto.offset.store` must be false.
    pub fn store_offsets(&self, offsets: &HashMap<TopicPartition, i64>) -> Result<()> {
        let mut parts = Vec::with_capacity(offsets.len());
        for (tp, offset) in offsets {
            if *offset < 0 {
                return Err(Error::InvalidInput(
                    format!("store_offsets: offset {offset} for {tp} is negative").into(),
                ));
            }
            parts.push((self.stored_partition(tp)?, *offset));
        }
        self.store(&parts);
        Ok(())
    }

    fn stored_partition(&self, tp: &TopicPartition) -> Result<Arc<PartitionState>> {
        if self.shared.cfg.auto_offset_store {
            return Err(Error::InvalidState(
                "store_offset needs enable.auto.offset.store=false (with the default, every \
                 record handed out is stored already)"
                    .into(),
            ));
        }
        // A partition being revoked is still in the assignment while the `revoked` hook runs:
        // the hook may wait for in-flight work, store its offsets and `ctx.commit()` them.
        self.shared.assignment.get(tp).ok_or_else(|| {
            Error::InvalidState(
                format!("store_offset: {tp} is not assigned to this consumer").into(),
            )
        })
    }

    fn store(&self, parts: &[(Arc<PartitionState>, i64)]) {
        for (p, offset) in parts {
            p.stored.store(*offset, Ordering::Release);
        }
    }
}
