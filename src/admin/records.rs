//! Partition offsets and record deletion: ListOffsets (earliest, latest, by timestamp, max
//! timestamp) and DeleteRecords, each sent to the partitions' leaders, one request per leader.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, DeleteRecordsRequest, ListOffsetsRequest};

use super::{resource_error, Admin, ResourceResult, Target};
use crate::client::metadata::ClusterMetadata;
use crate::codes::KafkaCode;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::protocol::topic_name;

/// Which offset [`Admin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetSpec {
    /// The first offset still in the log.
    Earliest,
    /// The offset the next record will get (the high watermark).
    Latest,
    /// The first offset whose timestamp is at or after this many milliseconds since the epoch;
    /// -1 when no record is that recent (Kafka's answer, as Java's admin reports it).
    Timestamp(i64),
    /// The offset of the record with the highest timestamp, which need not be the last one
    /// (producers set CreateTime); -1 for an empty partition. Needs ListOffsets v7 (KIP-734,
    /// Kafka 3.0).
    MaxTimestamp,
}

impl OffsetSpec {
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
            OffsetSpec::MaxTimestamp => -3,
        }
    }
}

/// An offset [`Admin::list_offsets_many`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedOffset {
    /// The offset (-1 when no record matches a timestamp lookup).
    pub offset: i64,
    /// The timestamp of the record at `offset` for timestamp lookups; -1 otherwise.
    pub timestamp: i64,
    /// The leader epoch of that record, when the broker reports it.
    pub leader_epoch: Option<i32>,
}

impl Admin {
    /// Groups `partitions` by leader, from fresh metadata for their topics. A topic that
    /// does not exist, or a partition beyond its count, is UNKNOWN_TOPIC_OR_PARTITION; a
    /// partition without a leader is LEADER_NOT_AVAILABLE (retried by the caller's loop).
    pub(super) async fn by_leader(
        &self,
        partitions: &[TopicPartition],
        api: &str,
    ) -> Result<(
        BTreeMap<i32, Vec<TopicPartition>>,
        Vec<(TopicPartition, Error)>,
    )> {
        let mut topics: Vec<String> = partitions.iter().map(|p| p.topic.to_string()).collect();
        topics.sort();
        topics.dedup();
        let (_, resp) = self.topic_metadata(&topics, false).await?;
        let cluster = ClusterMetadata::from_response(&resp);
        let mut leaders: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut failed = Vec::new();
        for tp in partitions {
            let code = match cluster.topic(&tp.topic) {
                None => Some(KafkaCode::UnknownTopicOrPartition),
                Some(t) if t.error.is_some() => t.error,
                Some(t) => match t.partition(tp.partition) {
                    None => Some(KafkaCode::UnknownTopicOrPartition),
                    Some(p) => match p.leader {
                        Some(leader) => {
                            leaders.entry(leader).or_default().push(tp.clone());
                            None
                        }
                        None => Some(p.error.unwrap_or(KafkaCode::LeaderNotAvailable)),
                    },
                },
            };
            if let Some(code) = code {
                failed.push((
                    tp.clone(),
                    Error::broker(code, None, format!("{api} for {tp} (metadata)")),
                ));
            }
        }
        Ok((leaders, failed))
    }

    /// Looks up an offset of one partition on its leader (ListOffsets).
    pub async fn list_offsets(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        let tp = TopicPartition::new(topic, partition);
        let mut results = self.list_offsets_many(&[(tp, spec)]).await?;
        results.remove(0).result.map(|o| o.offset)
    }

    /// Looks up offsets of many partitions at once: one ListOffsets per leader. Each
    /// partition gets its own result (UNKNOWN_TOPIC_OR_PARTITION, or UNSUPPORTED_VERSION
    /// for [`OffsetSpec::MaxTimestamp`] on a broker older than Kafka 3.0). Offsets are read
    /// uncommitted: `Latest` is the high watermark.
    pub async fn list_offsets_many(
        &self,
        partitions: &[(TopicPartition, OffsetSpec)],
    ) -> Result<Vec<ResourceResult<TopicPartition, ListedOffset>>> {
        let spec_of: HashMap<&TopicPartition, OffsetSpec> =
            partitions.iter().map(|(tp, s)| (tp, *s)).collect();
        let spec_of = &spec_of;
        let keys: Vec<TopicPartition> = partitions.iter().map(|(tp, _)| tp.clone()).collect();
        Ok(self
            .per_resource(ApiKey::ListOffsets, keys, |pending| async move {
                let (leaders, failed) = self.by_leader(&pending, "ListOffsets").await?;
                let mut answers: Vec<(TopicPartition, Result<ListedOffset>)> =
                    failed.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
                // One request per leader, all in flight together.
                let calls = leaders.into_iter().map(|(leader, tps)| async move {
                    let result = self.list_offsets_on(leader, &tps, spec_of).await;
                    (tps, result)
                });
                for (tps, result) in futures::future::join_all(calls).await {
                    match result {
                        Ok(mut a) => answers.append(&mut a),
                        // A leader that cannot be reached fails only its own partitions
                        // (retried: the leader may have moved).
                        Err(e) => answers.extend(tps.into_iter().map(|tp| (tp, Err(e.clone())))),
                    }
                }
                Ok(answers)
            })
            .await)
    }

    async fn list_offsets_on(
        &self,
        leader: i32,
        tps: &[TopicPartition],
        spec_of: &HashMap<&TopicPartition, OffsetSpec>,
    ) -> Result<Vec<(TopicPartition, Result<ListedOffset>)>> {
        let mut by_topic: BTreeMap<&str, Vec<&TopicPartition>> = BTreeMap::new();
        for tp in tps {
            by_topic.entry(&tp.topic).or_default().push(tp);
        }
        let wants_max = tps.iter().any(|tp| spec_of[tp] == OffsetSpec::MaxTimestamp);
        let (version, resp) = self
            .call(Target::Broker(leader), ApiKey::ListOffsets, |version| {
                // -3 means nothing to a broker before KIP-734: refuse rather than trust its
                // answer.
                if wants_max && version < 7 {
                    return Err(Error::broker(
                        KafkaCode::UnsupportedVersion,
                        Some("OffsetSpec::MaxTimestamp needs ListOffsets v7 (Kafka 3.0)"),
                        format!("ListOffsets v{version} on broker {leader}"),
                    ));
                }
                Ok(ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(
                        by_topic
                            .iter()
                            .map(|(topic, parts)| {
                                ListOffsetsTopic::default()
                                    .with_name(topic_name(topic))
                                    .with_partitions(
                                        parts
                                            .iter()
                                            .map(|tp| {
                                                ListOffsetsPartition::default()
                                                    .with_partition_index(tp.partition)
                                                    .with_current_leader_epoch(-1)
                                                    .with_timestamp(spec_of[*tp].wire_timestamp())
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ))
            })
            .await?;
        let mut answers = Vec::new();
        for t in &resp.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                let result = match resource_error(p.error_code, None, || {
                    format!("ListOffsets for {tp} on broker {leader}")
                }) {
                    Some(e) => Err(e),
                    None => Ok(ListedOffset {
                        // v0 answered a list of offsets; the client speaks v1+.
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: (version >= 4 && p.leader_epoch >= 0)
                            .then_some(p.leader_epoch),
                    }),
                };
                answers.push((tp, result));
            }
        }
        Ok(answers)
    }

    /// Deletes the records before `offset` in each partition (DeleteRecords, on each
    /// leader); `-1` deletes up to the high watermark. Each partition's result is its new
    /// low watermark, or its own error (OFFSET_OUT_OF_RANGE for an offset past the high
    /// watermark, POLICY_VIOLATION on a compacted topic, …).
    pub async fn delete_records(
        &self,
        before: &[(TopicPartition, i64)],
    ) -> Result<Vec<ResourceResult<TopicPartition, i64>>> {
        let offset_of: HashMap<&TopicPartition, i64> =
            before.iter().map(|(tp, o)| (tp, *o)).collect();
        let offset_of = &offset_of;
        let keys: Vec<TopicPartition> = before.iter().map(|(tp, _)| tp.clone()).collect();
        let timeout_ms = self.broker_timeout_ms();
        Ok(self
            .per_resource(ApiKey::DeleteRecords, keys, |pending| async move {
                let (leaders, failed) = self.by_leader(&pending, "DeleteRecords").await?;
                let mut answers: Vec<(TopicPartition, Result<i64>)> =
                    failed.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
                let calls = leaders.into_iter().map(|(leader, tps)| async move {
                    let mut by_topic: BTreeMap<&str, Vec<&TopicPartition>> = BTreeMap::new();
                    for tp in &tps {
                        by_topic.entry(&tp.topic).or_default().push(tp);
                    }
                    let result = self
                        .call(Target::Broker(leader), ApiKey::DeleteRecords, |_| {
                            Ok(DeleteRecordsRequest::default()
                                .with_timeout_ms(timeout_ms)
                                .with_topics(
                                    by_topic
                                        .iter()
                                        .map(|(topic, parts)| {
                                            DeleteRecordsTopic::default()
                                                .with_name(topic_name(topic))
                                                .with_partitions(
                                                    parts
                                                        .iter()
                                                        .map(|tp| {
                                                            DeleteRecordsPartition::default()
                                                                .with_partition_index(tp.partition)
                                                                .with_offset(offset_of[*tp])
                                                        })
                                                        .collect(),
                                                )
                                        })
                                        .collect(),
                                ))
                        })
                        .await;
                    (tps.clone(), leader, result)
                });
                for (tps, leader, result) in futures::future::join_all(calls).await {
                    match result {
                        Ok((_, resp)) => {
                            for t in &resp.topics {
                                for p in &t.partitions {
                                    let tp =
                                        TopicPartition::new(t.name.0.as_str(), p.partition_index);
                                    let err = resource_error(p.error_code, None, || {
                                        format!("DeleteRecords for {tp} on broker {leader}")
                                    });
                                    answers.push((tp, err.map_or(Ok(p.low_watermark), Err)));
                                }
                            }
                        }
                        Err(e) => answers.extend(tps.into_iter().map(|tp| (tp, Err(e.clone())))),
                    }
                }
                Ok(answers)
            })
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_map_to_kafkas_sentinel_timestamps() {
        assert_eq!(OffsetSpec::Earliest.wire_timestamp(), -2);
        assert_eq!(OffsetSpec::Latest.wire_timestamp(), -1);
        assert_eq!(OffsetSpec::MaxTimestamp.wire_timestamp(), -3);
        assert_eq!(OffsetSpec::Timestamp(1234).wire_timestamp(), 1234);
    }
}
