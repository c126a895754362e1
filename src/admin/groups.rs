//! Consumer groups: list (every broker), describe, delete, and their committed offsets
//! (list, alter, delete), each sent to the group's coordinator.
//!
//! Both group protocols are covered: classic groups (JoinGroup/SyncGroup, described by
//! DescribeGroups) and KIP-848 `consumer` groups (described by ConsumerGroupDescribe).
//! Describe asks ConsumerGroupDescribe first and falls back to DescribeGroups when the group
//! is not a `consumer` group (GROUP_ID_NOT_FOUND) or the broker predates KIP-848, as the Java
//! admin does.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
};

use super::{authorized_operations, resource_error, AclOperation, Admin, ResourceResult, Target};
use crate::codes::KafkaCode;
use crate::consumer::assignor::{decode_assignment, decode_subscription};
use crate::consumer::{CommitOffset, TopicPartition};
use crate::error::{Error, Result};
use crate::protocol::{group_id, str_bytes, topic_name};

/// A group's state, as the coordinator names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Members are consuming with a settled assignment.
    Stable,
    /// Classic: waiting for members to (re)join.
    PreparingRebalance,
    /// Classic: waiting for the leader's assignment.
    CompletingRebalance,
    /// Consumer protocol: the coordinator is computing a new assignment.
    Assigning,
    /// Consumer protocol: members are moving to the new assignment.
    Reconciling,
    /// The group is gone (or never existed).
    Dead,
    /// A state this client does not know, by name.
    Other(String),
}

impl GroupState {
    pub(crate) fn parse(s: &str) -> GroupState {
        match s {
            "Empty" => GroupState::Empty,
            "Stable" => GroupState::Stable,
            "PreparingRebalance" => GroupState::PreparingRebalance,
            "CompletingRebalance" => GroupState::CompletingRebalance,
            "Assigning" => GroupState::Assigning,
            "Reconciling" => GroupState::Reconciling,
            "Dead" => GroupState::Dead,
            other => GroupState::Other(other.to_string()),
        }
    }

    fn name(&self) -> &str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::Stable => "Stable",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
            GroupState::Dead => "Dead",
            GroupState::Other(s) => s,
        }
    }
}

/// The protocol (group type, KIP-848) a group runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupType {
    /// JoinGroup/SyncGroup with client-side assignors.
    Classic,
    /// KIP-848 consumer groups, assigned by the coordinator (`group.protocol=consumer`).
    Consumer,
    /// KIP-932 share groups.
    Share,
    /// KIP-1071 streams groups.
    Streams,
    /// A type this client does not know, by name.
    Other(String),
}

impl GroupType {
    fn parse(s: &str) -> GroupType {
        match s {
            "classic" => GroupType::Classic,
            "consumer" => GroupType::Consumer,
            "share" => GroupType::Share,
            "streams" => GroupType::Streams,
            other => GroupType::Other(other.to_string()),
        }
    }

    fn name(&self) -> &str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
            GroupType::Share => "share",
            GroupType::Streams => "streams",
            GroupType::Other(s) => s,
        }
    }
}

/// Filters of [`Admin::list_groups`]; empty lists match everything.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListGroupsOptions {
    /// Only groups in one of these states (ListGroups v4+, Kafka 2.6).
    pub states: Vec<GroupState>,
    /// Only groups of one of these types (ListGroups v5+, Kafka 3.8).
    pub types: Vec<GroupType>,
}

impl ListGroupsOptions {
    /// Every group.
    pub fn new() -> ListGroupsOptions {
        ListGroupsOptions::default()
    }

    /// Only groups in `state` (may be given several times).
    pub fn state(mut self, state: GroupState) -> ListGroupsOptions {
        self.states.push(state);
        self
    }

    /// Only groups of type `protocol` (may be given several times).
    pub fn group_type(mut self, protocol: GroupType) -> ListGroupsOptions {
        self.types.push(protocol);
        self
    }
}

/// A group as [`Admin::list_groups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type its members declared (`consumer` for consumers; empty for a group
    /// that only stores offsets).
    pub protocol_type: String,
    /// Its state, when the broker reports it (ListGroups v4+).
    pub state: Option<GroupState>,
    /// Its type, when the broker reports it (ListGroups v5+).
    pub group_type: Option<GroupType>,
    /// The broker that coordinates it.
    pub coordinator: i32,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its static membership id (`group.instance.id`), if any.
    pub instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connected from.
    pub host: String,
    /// The partitions assigned to it now.
    pub assignment: Vec<TopicPartition>,
    /// Consumer protocol: the partitions it is moving to (equal to `assignment` once
    /// reconciled); `None` for classic groups.
    pub target_assignment: Option<Vec<TopicPartition>>,
    /// The topics it subscribed to, when known.
    pub subscribed_topics: Vec<String>,
}

/// A group as [`Admin::describe_groups`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Which protocol the group runs.
    pub protocol: GroupType,
    /// The members' protocol type (`consumer` for consumer groups).
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
    /// The assignor: the chosen protocol of a classic group (`range`, `cooperative-sticky`,
    /// …), or the server-side assignor of a consumer group (`uniform`, `range`).
    pub assignor: String,
    /// Its members with their assignments.
    pub members: Vec<GroupMember>,
    /// The broker that coordinates it.
    pub coordinator: i32,
    /// Consumer protocol: the group epoch.
    pub group_epoch: Option<i32>,
    /// What the caller may do with the group, when the broker reports it.
    pub authorized_operations: Option<Vec<AclOperation>>,
}

fn topic_partitions(parts: impl IntoIterator<Item = (String, Vec<i32>)>) -> Vec<TopicPartition> {
    let mut out: Vec<TopicPartition> = parts
        .into_iter()
        .flat_map(|(t, ps)| {
            ps.into_iter()
                .map(move |p| TopicPartition::new(t.as_str(), p))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

impl Admin {
    /// Lists the groups of every broker (ListGroups goes to each: a broker lists the groups
    /// it coordinates), filtered by state and type. Fails if a broker cannot answer within
    /// `default.api.timeout.ms`, naming it.
    pub async fn list_groups(&self, options: &ListGroupsOptions) -> Result<Vec<GroupListing>> {
        let inner = self.inner();
        let ids = inner
            .retrying(ApiKey::Metadata, || self.broker_ids())
            .await?;
        let states: Vec<String> = options
            .states
            .iter()
            .map(|s| s.name().to_string())
            .collect();
        let types: Vec<String> = options.types.iter().map(|t| t.name().to_string()).collect();
        let (states, types) = (&states, &types);
        let calls = ids.into_iter().map(|id| async move {
            inner
                .retrying(ApiKey::ListGroups, || async move {
                    let (version, resp) = self
                        .call(Target::Broker(id), ApiKey::ListGroups, |version| {
                            let unsupported = |what: &str, since: i16| {
                                Error::broker(
                                    KafkaCode::UnsupportedVersion,
                                    Some(&format!("filtering by {what} needs ListGroups v{since}")),
                                    format!("ListGroups v{version} on broker {id}"),
                                )
                            };
                            if !states.is_empty() && version < 4 {
                                return Err(unsupported("state", 4));
                            }
                            if !types.is_empty() && version < 5 {
                                return Err(unsupported("type", 5));
                            }
                            Ok(ListGroupsRequest::default()
                                .with_states_filter(states.iter().map(|s| str_bytes(s)).collect())
                                .with_types_filter(types.iter().map(|s| str_bytes(s)).collect()))
                        })
                        .await?;
                    Error::check_code(resp.error_code, None, || {
                        format!("ListGroups on broker {id}")
                    })?;
                    Ok(resp
                        .groups
                        .iter()
                        .map(|g| GroupListing {
                            group_id: g.group_id.0.to_string(),
                            protocol_type: g.protocol_type.to_string(),
                            state: (version >= 4).then(|| GroupState::parse(&g.group_state)),
                            group_type: (version >= 5).then(|| GroupType::parse(&g.group_type)),
                            coordinator: id,
                        })
                        .collect::<Vec<_>>())
                })
                .await
        });
        let mut groups = Vec::new();
        for listed in futures::future::join_all(calls).await {
            groups.extend(listed?);
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// Describes groups: protocol, state, assignor and members with their assignments. A
    /// group that does not exist gets GROUP_ID_NOT_FOUND as its own result.
    pub async fn describe_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<ResourceResult<String, GroupDescription>>> {
        let keys: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        Ok(self
            .per_resource(ApiKey::DescribeGroups, keys, |pending| async move {
                let calls = pending.into_iter().map(|g| async move {
                    let result = self.describe_group(&g).await;
                    (g, result)
                });
                Ok(futures::future::join_all(calls).await)
            })
            .await)
    }

    /// Describes one group on its coordinator (one attempt).
    pub(super) async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let (node, conn) = self.coordinator(group, 0).await?;
        // KIP-848 groups first; a classic group (or an old broker) falls back below.
        if conn.version(ApiKey::ConsumerGroupDescribe).is_ok() {
            let (_, resp) = self
                .call_on(&conn, ApiKey::ConsumerGroupDescribe, |_| {
                    Ok(ConsumerGroupDescribeRequest::default()
                        .with_group_ids(vec![group_id(group)])
                        .with_include_authorized_operations(true))
                })
                .await?;
            let g = resp
                .groups
                .iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| Error::protocol(format!("ConsumerGroupDescribe lacks {group}")))?;
            match KafkaCode::from_code(g.error_code) {
                None => {
                    return Ok(GroupDescription {
                        group_id: group.to_string(),
                        protocol: GroupType::Consumer,
                        protocol_type: "consumer".into(),
                        state: GroupState::parse(&g.group_state),
                        assignor: g.assignor_name.to_string(),
                        members: g
                            .members
                            .iter()
                            .map(|m| GroupMember {
                                member_id: m.member_id.to_string(),
                                instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                                client_id: m.client_id.to_string(),
                                host: m.client_host.to_string(),
                                assignment: topic_partitions(
                                    m.assignment.topic_partitions.iter().map(|t| {
                                        (t.topic_name.0.to_string(), t.partitions.clone())
                                    }),
                                ),
                                target_assignment: Some(topic_partitions(
                                    m.target_assignment.topic_partitions.iter().map(|t| {
                                        (t.topic_name.0.to_string(), t.partitions.clone())
                                    }),
                                )),
                                subscribed_topics: m
                                    .subscribed_topic_names
                                    .iter()
                                    .map(|t| t.0.to_string())
                                    .collect(),
                            })
                            .collect(),
                        coordinator: node,
                        group_epoch: Some(g.group_epoch),
                        authorized_operations: authorized_operations(g.authorized_operations),
                    })
                }
                // Not a consumer group (or none at all): DescribeGroups knows classic ones.
                Some(KafkaCode::GroupIdNotFound) => {}
                Some(_) => {
                    Error::check_code(g.error_code, g.error_message.as_deref(), || {
                        format!("ConsumerGroupDescribe for group {group} on broker {node}")
                    })?;
                }
            }
        }
        let (_, resp) = self
            .call_on(&conn, ApiKey::DescribeGroups, |version| {
                Ok(DescribeGroupsRequest::default()
                    .with_groups(vec![group_id(group)])
                    .with_include_authorized_operations(version >= 3))
            })
            .await?;
        let g = resp
            .groups
            .iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| Error::protocol(format!("DescribeGroups lacks {group}")))?;
        let context = || format!("DescribeGroups for group {group} on broker {node}");
        Error::check_code(g.error_code, g.error_message.as_deref(), context)?;
        // Before v6 (KIP-1043) a group that does not exist is described as Dead.
        if g.group_state.as_str() == "Dead" {
            return Err(Error::broker(
                KafkaCode::GroupIdNotFound,
                Some("the group does not exist"),
                context(),
            ));
        }
        let consumer = g.protocol_type.as_str() == "consumer";
        Ok(GroupDescription {
            group_id: group.to_string(),
            protocol: GroupType::Classic,
            protocol_type: g.protocol_type.to_string(),
            state: GroupState::parse(&g.group_state),
            assignor: g.protocol_data.to_string(),
            members: g
                .members
                .iter()
                .map(|m| {
                    // Only consumer members carry the consumer protocol's layout; an empty
                    // assignment (mid-rebalance) or one that does not decode is none.
                    let assignment = (consumer && !m.member_assignment.is_empty())
                        .then(|| decode_assignment(m.member_assignment.clone()).ok())
                        .flatten()
                        .map(|a| topic_partitions(a.partitions))
                        .unwrap_or_default();
                    let subscribed_topics = (consumer && !m.member_metadata.is_empty())
                        .then(|| decode_subscription(m.member_metadata.clone()).ok())
                        .flatten()
                        .map(|s| s.topics)
                        .unwrap_or_default();
                    GroupMember {
                        member_id: m.member_id.to_string(),
                        instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment,
                        target_assignment: None,
                        subscribed_topics,
                    }
                })
                .collect(),
            coordinator: node,
            group_epoch: None,
            authorized_operations: authorized_operations(g.authorized_operations),
        })
    }

    /// Deletes groups (which must be empty: NON_EMPTY_GROUP otherwise), each on its
    /// coordinator, with their committed offsets. Each group gets its own result.
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<ResourceResult<String, ()>>> {
        let keys: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        Ok(self
            .per_resource(ApiKey::DeleteGroups, keys, |pending| async move {
                let calls = pending.into_iter().map(|g| async move {
                    let result = async {
                        let (node, conn) = self.coordinator(&g, 0).await?;
                        let (_, resp) = self
                            .call_on(&conn, ApiKey::DeleteGroups, |_| {
                                Ok(DeleteGroupsRequest::default()
                                    .with_groups_names(vec![group_id(&g)]))
                            })
                            .await?;
                        let r = resp
                            .results
                            .iter()
                            .find(|r| r.group_id.0.as_str() == g)
                            .ok_or_else(|| Error::protocol(format!("DeleteGroups lacks {g}")))?;
                        Error::check_code(r.error_code, None, || {
                            format!("DeleteGroups for group {g} on broker {node}")
                        })
                    }
                    .await;
                    (g, result)
                });
                Ok(futures::future::join_all(calls).await)
            })
            .await)
    }

    /// The committed offsets of a group: of `partitions`, or of every partition it has
    /// committed when `None`. Partitions asked for but never committed are left out. A group
    /// that does not exist has no offsets (an empty answer, as Kafka gives).
    pub async fn list_group_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<ResourceResult<TopicPartition, CommitOffset>>> {
        let inner = self.inner();
        inner
            .retrying(ApiKey::OffsetFetch, || {
                self.fetch_offsets_once(group, partitions)
            })
            .await
    }

    async fn fetch_offsets_once(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<ResourceResult<TopicPartition, CommitOffset>>> {
        let (node, conn) = self.coordinator(group, 0).await?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions.unwrap_or_default() {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let (version, resp) = self
            .call_on(&conn, ApiKey::OffsetFetch, |version| {
                let mut req = OffsetFetchRequest::default();
                // v8 (KIP-709) batches groups; older versions name one group.
                if version >= 8 {
                    req.groups = vec![OffsetFetchRequestGroup::default()
                        .with_group_id(group_id(group))
                        .with_topics(partitions.map(|_| {
                            by_topic
                                .iter()
                                .map(|(t, ps)| {
                                    OffsetFetchRequestTopics::default()
                                        .with_name(topic_name(t))
                                        .with_partition_indexes(ps.clone())
                                })
                                .collect()
                        }))];
                } else {
                    req.group_id = group_id(group);
                    req.topics = partitions.map(|_| {
                        by_topic
                            .iter()
                            .map(|(t, ps)| {
                                OffsetFetchRequestTopic::default()
                                    .with_name(topic_name(t))
                                    .with_partition_indexes(ps.clone())
                            })
                            .collect()
                    });
                }
                Ok(req)
            })
            .await?;
        let context = || format!("OffsetFetch for group {group} on broker {node}");
        let mut rows: Vec<(String, i32, i64, Option<String>, i16)> = Vec::new();
        if version >= 8 {
            let g = resp
                .groups
                .iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| Error::protocol(format!("no group in {}", context())))?;
            Error::check_code(g.error_code, None, context)?;
            for t in &g.topics {
                for p in &t.partitions {
                    rows.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.metadata.as_ref().map(|m| m.to_string()),
                        p.error_code,
                    ));
                }
            }
        } else {
            Error::check_code(resp.error_code, None, context)?;
            for t in &resp.topics {
                for p in &t.partitions {
                    rows.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.metadata.as_ref().map(|m| m.to_string()),
                        p.error_code,
                    ));
                }
            }
        }
        let mut out = Vec::new();
        for (topic, partition, offset, metadata, code) in rows {
            let tp = TopicPartition::new(&topic, partition);
            let result = match resource_error(code, None, || {
                format!("OffsetFetch for {tp} of group {group}")
            }) {
                Some(e) => Err(e),
                // -1: nothing committed for a partition that was asked for.
                None if offset < 0 => continue,
                None => Ok(CommitOffset {
                    offset,
                    metadata: metadata.filter(|m| !m.is_empty()),
                }),
            };
            out.push(ResourceResult::new(tp, result));
        }
        out.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok(out)
    }

    /// Sets a group's committed offsets (OffsetCommit as an admin, outside any generation).
    /// The group must have no active members (UNKNOWN_MEMBER_ID otherwise); a group that
    /// does not exist is created with these offsets. Each partition gets its own result.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, CommitOffset)],
    ) -> Result<Vec<ResourceResult<TopicPartition, ()>>> {
        let keys: Vec<TopicPartition> = offsets.iter().map(|(tp, _)| tp.clone()).collect();
        Ok(self
            .per_resource(ApiKey::OffsetCommit, keys, |pending| async move {
                let (node, conn) = self.coordinator(group, 0).await?;
                let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> =
                    BTreeMap::new();
                for (tp, o) in offsets.iter().filter(|(tp, _)| pending.contains(tp)) {
                    by_topic.entry(&tp.topic).or_default().push(
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(tp.partition)
                            .with_committed_offset(o.offset)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(str_bytes(
                                o.metadata.as_deref().unwrap_or(""),
                            ))),
                    );
                }
                let (_, resp) = self
                    .call_on(&conn, ApiKey::OffsetCommit, |_| {
                        Ok(OffsetCommitRequest::default()
                            .with_group_id(group_id(group))
                            .with_generation_id_or_member_epoch(-1)
                            .with_topics(
                                by_topic
                                    .into_iter()
                                    .map(|(t, ps)| {
                                        OffsetCommitRequestTopic::default()
                                            .with_name(topic_name(t))
                                            .with_partitions(ps)
                                    })
                                    .collect(),
                            ))
                    })
                    .await?;
                Ok(resp
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(move |p| {
                            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                            let err = resource_error(p.error_code, None, || {
                                format!("OffsetCommit for {tp} of group {group} on broker {node}")
                            });
                            (tp, err.map_or(Ok(()), Err))
                        })
                    })
                    .collect())
            })
            .await)
    }

    /// Deletes a group's committed offsets of these partitions (OffsetDelete, KIP-496).
    /// Refused per partition with GROUP_SUBSCRIBED_TO_TOPIC while a member consumes the
    /// topic; a group that does not exist fails every partition with GROUP_ID_NOT_FOUND.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<ResourceResult<TopicPartition, ()>>> {
        Ok(self
            .per_resource(
                ApiKey::OffsetDelete,
                partitions.to_vec(),
                |pending| async move {
                    let (node, conn) = self.coordinator(group, 0).await?;
                    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                    for tp in &pending {
                        by_topic.entry(&tp.topic).or_default().push(tp.partition);
                    }
                    let (_, resp) = self
                        .call_on(&conn, ApiKey::OffsetDelete, |_| {
                            Ok(OffsetDeleteRequest::default()
                                .with_group_id(group_id(group))
                                .with_topics(
                                    by_topic
                                        .iter()
                                        .map(|(t, ps)| {
                                            OffsetDeleteRequestTopic::default()
                                                .with_name(topic_name(t))
                                                .with_partitions(
                                                    ps.iter()
                                                        .map(|p| {
                                                            OffsetDeleteRequestPartition::default()
                                                                .with_partition_index(*p)
                                                        })
                                                        .collect(),
                                                )
                                        })
                                        .collect(),
                                ))
                        })
                        .await?;
                    let context = || format!("OffsetDelete for group {group} on broker {node}");
                    // A group-level error (GROUP_ID_NOT_FOUND, NOT_COORDINATOR) is every
                    // partition's answer; the retry loop takes the retriable ones.
                    if let Some(e) = resource_error(resp.error_code, None, context) {
                        return Ok(pending.into_iter().map(|tp| (tp, Err(e.clone()))).collect());
                    }
                    Ok(resp
                        .topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions.iter().map(move |p| {
                                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                                let err = resource_error(p.error_code, None, || {
                                    format!("OffsetDelete for {tp} of group {group}")
                                });
                                (tp, err.map_or(Ok(()), Err))
                            })
                        })
                        .collect())
                },
            )
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_types_round_trip_their_wire_names() {
        for s in [
            "Empty",
            "Stable",
            "PreparingRebalance",
            "CompletingRebalance",
            "Assigning",
            "Reconciling",
            "Dead",
            "Shiny",
        ] {
            assert_eq!(GroupState::parse(s).name(), s);
        }
        assert_eq!(
            GroupState::parse("Shiny"),
            GroupState::Other("Shiny".into())
        );
        for t in ["classic", "consumer", "share", "streams", "new"] {
            assert_eq!(GroupType::parse(t).name(), t);
        }
    }

    #[test]
    fn assignments_flatten_sorted() {
        let tps = topic_partitions(vec![("b".into(), vec![1, 0]), ("a".into(), vec![2])]);
        assert_eq!(
            tps,
            vec![
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 0),
                TopicPartition::new("b", 1)
            ]
        );
    }
}
