//! Wire calls to a consumer group's coordinator: FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch.
//!
//! This layer speaks the wire, not the group protocol: the group task (`group.rs`) owns the
//! membership and decides what an error means for it. JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup are therefore single attempts. Committing and fetching offsets retry on their
//! own, through the client's retry loop, until `default.api.timeout.ms`, because their callers
//! only want the outcome.
//!
//! Each `GroupCoordinator` (one group member, or one transactional producer) reaches the
//! coordinator through a socket of its own (`Pool::coordinator`), shared with nothing: Kafka
//! handles one request at a time per connection, so a Fetch long-polling for
//! `fetch.max.wait.ms`, or another member's JoinGroup held until the rebalance completes,
//! would keep this member's heartbeats queued until its session expired.
//!
//! The coordinator's broker id is cached. Errors that say it moved (NOT_COORDINATOR,
//! COORDINATOR_NOT_AVAILABLE) or that its connection is gone make this layer forget it before
//! the error is returned; the next call finds it again (single flight).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use tracing::debug;

use crate::classify::{classify, Action};
use crate::client::connection::Connection;
use crate::client::metadata::{BrokerMetadata, TopicsQuery};
use crate::client::ClientInner;
use crate::codes::KafkaCode;
use crate::error::{Error, Result};
use crate::protocol::{group_id, str_bytes, topic_name};

/// What a JoinGroup request carries.
#[derive(Debug, Clone)]
pub(crate) struct JoinParams {
    /// The member id: empty for a new member, then the one the coordinator assigned.
    pub(crate) member_id: String,
    /// `group.instance.id` (static membership, KIP-345), if configured.
    pub(crate) group_instance_id: Option<String>,
    /// `session.timeout.ms`.
    pub(crate) session_timeout_ms: i32,
    /// How long the coordinator waits for members to rejoin: `max.poll.interval.ms`.
    pub(crate) rebalance_timeout_ms: i32,
    /// `consumer` for consumer groups.
    pub(crate) protocol_type: String,
    /// The assignors this member supports, preferred first, each with its subscription bytes.
    pub(crate) protocols: Vec<(String, Bytes)>,
}

/// What a successful JoinGroup answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinOutcome {
    /// The group's new generation.
    pub(crate) generation_id: i32,
    /// The assignor the coordinator chose.
    pub(crate) protocol_name: Option<String>,
    /// The leader's member id: the leader computes the assignment.
    pub(crate) leader: String,
    /// This member's id.
    pub(crate) member_id: String,
    /// Every member with its group instance id and subscription bytes; empty unless this
    /// member is the leader.
    pub(crate) members: Vec<(String, Option<String>, Bytes)>,
    /// JoinGroup v9+: the leader must not assign (the broker does it); false before v9.
    pub(crate) skip_assignment: bool,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitOffset {
    /// The topic.
    pub(crate) topic: String,
    /// The partition.
    pub(crate) partition: i32,
    /// The next offset to read.
    pub(crate) offset: i64,
    /// The leader epoch of the last record read, if known (OffsetCommit v6+).
    pub(crate) leader_epoch: Option<i32>,
    /// Metadata stored with the offset.
    pub(crate) metadata: Option<String>,
}

/// A partition's committed offset, as OffsetFetch returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    /// The next offset to read.
    pub(crate) offset: i64,
    /// The leader epoch committed with it (OffsetFetch v5+), if any.
    pub(crate) leader_epoch: Option<i32>,
    /// The metadata committed with it; `None` when empty.
    pub(crate) metadata: Option<String>,
}

/// Per-partition outcome of a commit: `None` for success.
pub(crate) type CommitOutcome = Vec<(String, i32, Option<Error>)>;

/// The wire layer to one group's coordinator.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    client: Arc<ClientInner>,
    group_id: String,
    /// FindCoordinator key type: 0 for a group, 1 for a transactional id (whose coordinator
    /// this same layer finds for the transactional producer).
    key_type: i8,
    /// The coordinator's broker id, once found; `None` after [`GroupCoordinator::mark_dead`].
    node: Mutex<Option<i32>>,
    /// Held while looking the coordinator up, so callers that all lost it at once (heartbeat,
    /// commit, offset fetch) share one FindCoordinator.
    lookup: tokio::sync::Mutex<()>,
    /// This member's key for its own coordinator socket in the pool.
    owner: u64,
}

impl Drop for GroupCoordinator {
    /// The member is gone: its coordinator socket closes with it.
    fn drop(&mut self) {
        self.client.pool.release_coordinator(self.owner);
    }
}

impl GroupCoordinator {
    /// The coordinator layer for `group_id`; nothing is sent until the first call.
    pub(crate) fn new(client: Arc<ClientInner>, group_id: String) -> GroupCoordinator {
        GroupCoordinator::with_key_type(client, group_id, 0)
    }

    /// The coordinator layer for a transactional id (FindCoordinator key type 1); only the
    /// generic [`exchange`](Self::exchange) is meant for it.
    pub(crate) fn for_transactional_id(client: Arc<ClientInner>, id: String) -> GroupCoordinator {
        GroupCoordinator::with_key_type(client, id, 1)
    }

    fn with_key_type(client: Arc<ClientInner>, key: String, key_type: i8) -> GroupCoordinator {
        let owner = client.pool.new_coordinator_owner();
        GroupCoordinator {
            client,
            group_id: key,
            key_type,
            node: Mutex::new(None),
            lookup: tokio::sync::Mutex::new(()),
            owner,
        }
    }

    /// The connection to the coordinator, finding it first if needed. Retries transient
    /// failures (COORDINATOR_NOT_AVAILABLE, unreachable brokers) with backoff until
    /// `default.api.timeout.ms`.
    // Every call finds the coordinator by itself; tests use this to look at the socket.
    #[cfg(test)]
    pub(crate) async fn coordinator(&self) -> Result<Arc<Connection>> {
        let (_, conn) = self
            .client
            .retrying(ApiKey::FindCoordinator, || self.connect_once())
            .await?;
        Ok(conn)
    }

    /// Forgets the coordinator: the next call looks it up again. Calls here already do this
    /// on coordinator and connection errors; this is for what a caller learns elsewhere.
    #[cfg(test)]
    pub(crate) fn mark_dead(&self) {
        if let Some(node) = self.node.lock().unwrap().take() {
            debug!(group = %self.group_id, coordinator = node, "group coordinator forgotten");
        }
    }

    /// JoinGroup. A new member (empty id) on v4+ is first refused with MEMBER_ID_REQUIRED
    /// and an assigned id (KIP-394); the join is then sent again at once with that id, so the
    /// caller sees one call. The request may legitimately wait up to the rebalance timeout for
    /// the other members, so its deadline is extended by that much.
    pub(crate) async fn join_group(&self, params: JoinParams) -> Result<JoinOutcome> {
        let mut member_id = params.member_id.clone();
        let wait = Duration::from_millis(params.rebalance_timeout_ms.max(0) as u64);
        let mut asked_for_id = false;
        loop {
            debug!(
                group = %self.group_id,
                generation = -1,
                member = %member_id,
                instance = ?params.group_instance_id,
                "JoinGroup"
            );
            let (node, version, resp) = self
                .exchange(ApiKey::JoinGroup, wait, |version, conn| {
                    Ok(JoinGroupRequest::default()
                        .with_group_id(group_id(&self.group_id))
                        .with_session_timeout_ms(params.session_timeout_ms)
                        .with_rebalance_timeout_ms(params.rebalance_timeout_ms)
                        .with_member_id(str_bytes(&member_id))
                        .with_group_instance_id(instance_field(
                            &params.group_instance_id,
                            version,
                            5,
                            "JoinGroup",
                            conn,
                        )?)
                        .with_protocol_type(str_bytes(&params.protocol_type))
                        .with_protocols(
                            params
                                .protocols
                                .iter()
                                .map(|(name, metadata)| {
                                    JoinGroupRequestProtocol::default()
                                        .with_name(str_bytes(name))
                                        .with_metadata(metadata.clone())
                                })
                                .collect(),
                        )
                        .with_reason(None))
                })
                .await?;
            let required =
                KafkaCode::from_code(resp.error_code) == Some(KafkaCode::MemberIdRequired);
            if required && !asked_for_id && !resp.member_id.is_empty() {
                asked_for_id = true;
                member_id = resp.member_id.to_string();
                let group = &self.group_id;
                debug!(%group, member = %member_id, "member id assigned: rejoining");
                continue;
            }
            self.check(node, ApiKey::JoinGroup, resp.error_code, None, || {
                format!(
                    "JoinGroup v{version} for group {} (member `{member_id}`)",
                    self.group_id
                )
            })?;
            let outcome = JoinOutcome {
                generation_id: resp.generation_id,
                protocol_name: resp.protocol_name.map(|n| n.to_string()),
                leader: resp.leader.to_string(),
                member_id: resp.member_id.to_string(),
                members: resp
                    .members
                    .into_iter()
                    .map(|m| {
                        let instance = m.group_instance_id.map(|i| i.to_string());
                        (m.member_id.to_string(), instance, m.metadata)
                    })
                    .collect(),
                skip_assignment: version >= 9 && resp.skip_assignment,
            };
            debug!(
                group = %self.group_id,
                generation = outcome.generation_id,
                member = %outcome.member_id,
                leader = %outcome.leader,
                members = outcome.members.len(),
                "JoinGroup answered"
            );
            return Ok(outcome);
        }
    }

    /// SyncGroup: the leader sends every member's assignment (others send none) and each
    /// member gets its own assignment bytes back (possibly empty).
    pub(crate) async fn sync_group(
        &self,
        generation: i32,
        member_id: String,
        group_instance_id: Option<String>,
        protocol_type: String,
        protocol_name: String,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Bytes> {
        debug!(
            group = %self.group_id,
            generation,
            member = %member_id,
            assignments = assignments.len(),
            "SyncGroup"
        );
        let (node, version, resp) = self
            .exchange(ApiKey::SyncGroup, Duration::ZERO, |version, conn| {
                let mut req = SyncGroupRequest::default()
                    .with_group_id(group_id(&self.group_id))
                    .with_generation_id(generation)
                    .with_member_id(str_bytes(&member_id))
                    .with_group_instance_id(instance_field(
                        &group_instance_id,
                        version,
                        3,
                        "SyncGroup",
                        conn,
                    )?)
                    .with_assignments(
                        assignments
                            .iter()
                            .map(|(member, bytes)| {
                                SyncGroupRequestAssignment::default()
                                    .with_member_id(str_bytes(member))
                                    .with_assignment(bytes.clone())
                            })
                            .collect(),
                    );
                if version >= 5 {
                    req.protocol_type = Some(str_bytes(&protocol_type));
                    req.protocol_name = Some(str_bytes(&protocol_name));
                }
                Ok(req)
            })
            .await?;
        let context = || {
            format!(
                "SyncGroup v{version} for group {} (generation {generation}, member `{member_id}`)",
                self.group_id
            )
        };
        self.check(node, ApiKey::SyncGroup, resp.error_code, None, context)?;
        // v5+ echoes the protocol: an answer for another one is not ours to apply.
        if let Some(name) = resp.protocol_name.as_ref().filter(|n| !n.is_empty()) {
            if name.as_str() != protocol_name {
                return Err(Error::broker(
                    KafkaCode::InconsistentGroupProtocol,
                    Some(format!("the coordinator answered for protocol `{name}`").as_str()),
                    context(),
                ));
            }
        }
        Ok(resp.assignment)
    }

    /// Heartbeat: tells the coordinator the member is alive; the error says whether the
    /// group is rebalancing or the member was dropped.
    pub(crate) async fn heartbeat(
        &self,
        generation: i32,
        member_id: String,
        group_instance_id: Option<String>,
    ) -> Result<()> {
        debug!(group = %self.group_id, generation, member = %member_id, "Heartbeat");
        let (node, version, resp) = self
            .exchange(ApiKey::Heartbeat, Duration::ZERO, |version, conn| {
                Ok(HeartbeatRequest::default()
                    .with_group_id(group_id(&self.group_id))
                    .with_generation_id(generation)
                    .with_member_id(str_bytes(&member_id))
                    .with_group_instance_id(instance_field(
                        &group_instance_id,
                        version,
                        3,
                        "Heartbeat",
                        conn,
                    )?))
            })
            .await?;
        self.check(node, ApiKey::Heartbeat, resp.error_code, None, || {
            format!(
                "Heartbeat v{version} for group {} (generation {generation}, member `{member_id}`)",
                self.group_id
            )
        })
    }

    /// LeaveGroup for this member, so the group rebalances now rather than after the
    /// session timeout.
    pub(crate) async fn leave_group(
        &self,
        member_id: String,
        group_instance_id: Option<String>,
    ) -> Result<()> {
        let (group, instance) = (&self.group_id, &group_instance_id);
        debug!(%group, generation = -1, member = %member_id, ?instance, "LeaveGroup");
        let (node, version, resp) = self
            .exchange(ApiKey::LeaveGroup, Duration::ZERO, |version, conn| {
                let mut req = LeaveGroupRequest::default().with_group_id(group_id(&self.group_id));
                // v3 (KIP-345) names members in a batch; older versions take one member id.
                if version >= 3 {
                    req.members = vec![MemberIdentity::default()
                        .with_member_id(str_bytes(&member_id))
                        .with_group_instance_id(group_instance_id.as_deref().map(str_bytes))
                        .with_reason(None)];
                } else {
                    instance_field(&group_instance_id, version, 3, "LeaveGroup", conn)?;
                    req.member_id = str_bytes(&member_id);
                }
                Ok(req)
            })
            .await?;
        let context = || {
            format!(
                "LeaveGroup v{version} for group {} (member `{member_id}`)",
                self.group_id
            )
        };
        self.check(node, ApiKey::LeaveGroup, resp.error_code, None, context)?;
        for m in &resp.members {
            self.check(node, ApiKey::LeaveGroup, m.error_code, None, context)?;
        }
        Ok(())
    }

    /// OffsetCommit, with the per-partition outcome (`None`: committed) in `offsets` order.
    ///
    /// Partitions failing with a retriable error are sent again (alone) with backoff until
    /// `default.api.timeout.ms`, finding the coordinator again when it moved or its
    /// connection broke. Other partition errors (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
    /// REBALANCE_IN_PROGRESS, OFFSET_METADATA_TOO_LARGE, …) are returned at once. `Err` only
    /// when the last attempt failed as a whole (no coordinator, lost connection) and no
    /// earlier answer settled any partition.
    ///
    /// A consumer outside a group (manual assignment) commits with generation -1 and an empty
    /// member id.
    pub(crate) async fn commit_offsets(
        &self,
        generation: i32,
        member_id: String,
        group_instance_id: Option<String>,
        offsets: &[CommitOffset],
    ) -> Result<CommitOutcome> {
        debug!(
            group = %self.group_id,
            generation,
            member = %member_id,
            partitions = offsets.len(),
            "OffsetCommit"
        );
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        let progress = Mutex::new(Progress::new(offsets.len()));
        let member = Member {
            generation,
            member_id: &member_id,
            group_instance_id: &group_instance_id,
        };
        let result = self
            .client
            .retrying(ApiKey::OffsetCommit, || {
                self.commit_once(&member, offsets, &progress)
            })
            .await;
        let progress = progress.into_inner().unwrap();
        let final_error = match result {
            Ok(()) => None,
            Err(e) if !progress.answered && progress.settled.iter().all(Option::is_none) => {
                return Err(e)
            }
            Err(e) => Some(e),
        };
        Ok(offsets
            .iter()
            .zip(progress.settled.into_iter().zip(progress.last))
            .map(|(o, (settled, last))| {
                let outcome = match settled {
                    Some(outcome) => outcome,
                    None if progress.answered => last.or_else(|| final_error.clone()),
                    None => final_error.clone(),
                };
                (o.topic.clone(), o.partition, outcome)
            })
            .collect())
    }

    /// One OffsetCommit for the partitions not settled yet. `Err` while any must be retried.
    async fn commit_once(
        &self,
        member: &Member<'_>,
        offsets: &[CommitOffset],
        progress: &Mutex<Progress>,
    ) -> Result<()> {
        let todo: Vec<usize> = progress.lock().unwrap().unsettled();
        let sent = self
            .exchange(ApiKey::OffsetCommit, Duration::ZERO, |version, conn| {
                let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
                for &i in &todo {
                    let o = &offsets[i];
                    let mut p = OffsetCommitRequestPartition::default()
                        .with_partition_index(o.partition)
                        .with_committed_offset(o.offset)
                        .with_committed_metadata(o.metadata.as_deref().map(str_bytes));
                    if version >= 6 {
                        p.committed_leader_epoch = o.leader_epoch.unwrap_or(-1);
                    }
                    topics.entry(&o.topic).or_default().push(p);
                }
                Ok(OffsetCommitRequest::default()
                    .with_group_id(group_id(&self.group_id))
                    .with_generation_id_or_member_epoch(member.generation)
                    .with_member_id(str_bytes(member.member_id))
                    .with_group_instance_id(instance_field(
                        member.group_instance_id,
                        version,
                        7,
                        "OffsetCommit",
                        conn,
                    )?)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(name, partitions)| {
                                OffsetCommitRequestTopic::default()
                                    .with_name(topic_name(name))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    ))
            })
            .await;
        let (node, version, resp) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                progress.lock().unwrap().answered = false;
                return Err(e);
            }
        };
        let codes: HashMap<(&str, i32), i16> = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| ((t.name.0.as_str(), p.partition_index), p.error_code))
            })
            .collect();
        let mut progress = progress.lock().unwrap();
        progress.answered = true;
        let mut retry = None;
        for i in todo {
            let o = &offsets[i];
            let context = || {
                format!(
                    "OffsetCommit v{version} for group {} (generation {}, member `{}`), {}-{}",
                    self.group_id, member.generation, member.member_id, o.topic, o.partition
                )
            };
            let result = match codes.get(&(o.topic.as_str(), o.partition)) {
                Some(&code) => Error::check_code(code, None, context),
                None => Err(Error::protocol(format!("no answer in {}", context()))),
            };
            match result.map_err(|e| self.failed(node, ApiKey::OffsetCommit, e)) {
                Ok(()) => progress.settled[i] = Some(None),
                Err(e) if classify(&e, Some(ApiKey::OffsetCommit)).contains(Action::RETRY) => {
                    retry.get_or_insert_with(|| e.clone());
                    progress.last[i] = Some(e);
                }
                Err(e) => progress.settled[i] = Some(Some(e)),
            }
        }
        retry.map_or(Ok(()), Err)
    }

    /// OffsetFetch: the committed offset of each partition, `None` where nothing is
    /// committed. Retriable errors (UNSTABLE_OFFSET_COMMIT while a transaction's commit is
    /// pending, COORDINATOR_LOAD_IN_PROGRESS, a moved coordinator) are retried for the
    /// partitions still missing until `default.api.timeout.ms`; any other error fails the call.
    pub(crate) async fn fetch_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), Option<CommittedOffset>>> {
        debug!(
            group = %self.group_id,
            generation = -1,
            member = "",
            partitions = partitions.len(),
            "OffsetFetch"
        );
        let found = Mutex::new(HashMap::with_capacity(partitions.len()));
        if !partitions.is_empty() {
            self.client
                .retrying(ApiKey::OffsetFetch, || self.fetch_once(partitions, &found))
                .await?;
        }
        Ok(found.into_inner().unwrap())
    }

    /// One OffsetFetch for the partitions not answered yet.
    async fn fetch_once(
        &self,
        partitions: &[(String, i32)],
        found: &Mutex<HashMap<(String, i32), Option<CommittedOffset>>>,
    ) -> Result<()> {
        let todo: Vec<&(String, i32)> = {
            let found = found.lock().unwrap();
            partitions
                .iter()
                .filter(|k| !found.contains_key(*k))
                .collect()
        };
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &todo {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let (node, version, resp) = self
            .exchange(ApiKey::OffsetFetch, Duration::ZERO, |version, _| {
                let mut req = OffsetFetchRequest::default();
                // v8 (KIP-709) batches groups; older versions name one group at the top level.
                if version >= 8 {
                    let topics = by_topic
                        .iter()
                        .map(|(name, parts)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(topic_name(name))
                                .with_partition_indexes(parts.clone())
                        })
                        .collect();
                    req.groups = vec![OffsetFetchRequestGroup::default()
                        .with_group_id(group_id(&self.group_id))
                        .with_member_id(None)
                        .with_member_epoch(-1)
                        .with_topics(Some(topics))];
                } else {
                    req.group_id = group_id(&self.group_id);
                    req.topics = Some(
                        by_topic
                            .iter()
                            .map(|(name, parts)| {
                                OffsetFetchRequestTopic::default()
                                    .with_name(topic_name(name))
                                    .with_partition_indexes(parts.clone())
                            })
                            .collect(),
                    );
                }
                // Offsets of transactions still open are reported as UNSTABLE_OFFSET_COMMIT
                // (and retried) instead of as the last stable commit, which may be stale.
                req.require_stable = version >= 7;
                Ok(req)
            })
            .await?;
        let context =
            |what: &str| format!("OffsetFetch v{version} for group {}{what}", self.group_id);
        let check = |code: i16, what: &str| {
            Error::check_code(code, None, || context(what))
                .map_err(|e| self.failed(node, ApiKey::OffsetFetch, e))
        };
        // v8+ nests the topics in a group; both layouts have the same fields, in other types.
        macro_rules! fetched {
            ($topics:expr) => {
                $topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(move |p| Fetched {
                            topic: t.name.0.as_str(),
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            epoch: p.committed_leader_epoch,
                            metadata: p.metadata.as_ref(),
                            code: p.error_code,
                        })
                    })
                    .collect::<Vec<_>>()
            };
        }
        let answers = if version >= 8 {
            let group = resp
                .groups
                .iter()
                .find(|g| g.group_id.0.as_str() == self.group_id)
                .ok_or_else(|| {
                    Error::protocol(format!("no group in the answer to {}", context("")))
                })?;
            check(group.error_code, "")?;
            fetched!(group.topics)
        } else {
            check(resp.error_code, "")?;
            fetched!(resp.topics)
        };
        let mut retry = None;
        let mut found = found.lock().unwrap();
        for a in answers {
            let asked = by_topic.get(a.topic);
            if !asked.is_some_and(|parts| parts.contains(&a.partition)) {
                continue;
            }
            if let Err(e) = check(a.code, &format!(", {}-{}", a.topic, a.partition)) {
                if !classify(&e, Some(ApiKey::OffsetFetch)).contains(Action::RETRY) {
                    return Err(e);
                }
                retry.get_or_insert(e);
                continue;
            }
            // -1: nothing committed for this partition.
            let committed = (a.offset >= 0).then(|| CommittedOffset {
                offset: a.offset,
                leader_epoch: (a.epoch >= 0).then_some(a.epoch),
                metadata: a.metadata.filter(|m| !m.is_empty()).map(|m| m.to_string()),
            });
            found.insert((a.topic.to_owned(), a.partition), committed);
        }
        if let Some(e) = retry {
            return Err(e);
        }
        // A partition the coordinator did not mention has no committed offset either.
        for (topic, partition) in todo {
            found.entry((topic.clone(), *partition)).or_insert(None);
        }
        Ok(())
    }

    /// The cached coordinator id, if any.
    fn cached(&self) -> Option<i32> {
        *self.node.lock().unwrap()
    }

    /// Forgets the coordinator if it is still `node` (a concurrent caller may already have
    /// found a new one, which must not be dropped).
    fn forget(&self, node: i32) {
        let mut cached = self.node.lock().unwrap();
        if *cached == Some(node) {
            *cached = None;
            debug!(group = %self.group_id, coordinator = node, "group coordinator forgotten");
        }
    }

    /// Forgets coordinator `node` when `e` says it moved or its connection is gone; returns `e`.
    /// A timeout counts too: the broker may be hung or cut off, and a lookup is cheap next to
    /// reconnecting to it until a connect attempt fails.
    fn failed(&self, node: i32, api: ApiKey, e: Error) -> Error {
        let action = classify(&e, Some(api));
        let moved = action.contains(Action::REDISCOVER_COORDINATOR);
        if moved || action.contains(Action::RECONNECT) || e.is_timeout() {
            self.forget(node);
        }
        e
    }

    /// Turns a response error code into a broker error naming the group, forgetting the
    /// coordinator if the code says so.
    pub(crate) fn check(
        &self,
        node: i32,
        api: ApiKey,
        code: i16,
        message: Option<&str>,
        context: impl FnOnce() -> String,
    ) -> Result<()> {
        Error::check_code(code, message, context).map_err(|e| self.failed(node, api, e))
    }

    /// One attempt at reaching the coordinator: the cached one, or a single lookup.
    async fn connect_once(&self) -> Result<(i32, Arc<Connection>)> {
        let node = match self.cached() {
            Some(node) => node,
            None => self.discover().await?,
        };
        match self.client.coordinator_socket(self.owner).await {
            Ok(conn) => Ok((node, conn)),
            Err(e) => Err(self.failed(node, ApiKey::FindCoordinator, e)),
        }
    }

    /// Sends one request to the coordinator at the highest version both sides can encode,
    /// with `extra` added to `request.timeout.ms`. Returns the coordinator's id and the version
    /// used with the response; a failed exchange forgets the coordinator when it should.
    pub(crate) async fn exchange<R: Request>(
        &self,
        api: ApiKey,
        extra: Duration,
        build: impl FnOnce(i16, &Connection) -> Result<R>,
    ) -> Result<(i32, i16, R::Response)> {
        self.exchange_at_most(api, i16::MAX, extra, build).await
    }

    /// [`exchange`](Self::exchange) at version `max` at most: transactions v1 must not use
    /// the versions that mean transactions v2 to the coordinator (EndTxn v5, TxnOffsetCommit
    /// v5), as the Java client caps them.
    pub(crate) async fn exchange_at_most<R: Request>(
        &self,
        api: ApiKey,
        max: i16,
        extra: Duration,
        build: impl FnOnce(i16, &Connection) -> Result<R>,
    ) -> Result<(i32, i16, R::Response)> {
        let (node, conn) = self.connect_once().await?;
        // kafka-protocol 0.18 lists OffsetCommit and OffsetFetch up to v10 (their responses),
        // but encodes the requests only up to v9.
        let version = conn.version(api)?.min(R::VERSIONS.max).min(max);
        let req = build(version, &conn)?;
        let timeout = self.client.cfg.request_timeout.saturating_add(extra);
        match conn.call(&req, version, timeout).await {
            Ok(resp) => Ok((node, version, resp)),
            Err(e) => Err(self.failed(node, api, e)),
        }
    }

    /// Looks the coordinator up (single flight) and registers its own pool slot.
    async fn discover(&self) -> Result<i32> {
        let _flight = self.lookup.lock().await;
        if let Some(node) = self.cached() {
            return Ok(node);
        }
        let broker = self.find_coordinator().await?;
        let addr = broker.address();
        self.client
            .pool
            .set_coordinator(self.owner, broker.id, addr.clone());
        *self.node.lock().unwrap() = Some(broker.id);
        debug!(group = %self.group_id, coordinator = broker.id, %addr, "group coordinator found");
        Ok(broker.id)
    }

    /// One FindCoordinator on any broker.
    async fn find_coordinator(&self) -> Result<BrokerMetadata> {
        // The key's layout depends on the version the chosen connection negotiated, so the
        // connection is picked here rather than in `send_to_any`. With none open, a metadata
        // refresh goes through `send_to_any` (known brokers, then bootstrap) and leaves one.
        let conn = match self.client.pool.any_open() {
            Some(conn) => conn,
            None => {
                self.client
                    .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
                    .await?;
                self.client
                    .pool
                    .any_open()
                    .ok_or_else(|| Error::NoBrokerAvailable {
                        tried: "every broker (no connection stayed open)".into(),
                        last: None,
                    })?
            }
        };
        let version = conn.version(ApiKey::FindCoordinator)?;
        let mut req = FindCoordinatorRequest::default().with_key_type(self.key_type);
        // v4 (KIP-699) batches keys; older versions take one.
        if version >= 4 {
            req.coordinator_keys = vec![str_bytes(&self.group_id)];
        } else {
            req.key = str_bytes(&self.group_id);
        }
        let resp = conn
            .call(&req, version, self.client.cfg.request_timeout)
            .await?;
        // Key type 1 is a transactional id (the transactional producer shares this code).
        let kind = if self.key_type == 1 {
            "transactional id"
        } else {
            "group"
        };
        let context = || {
            format!(
                "FindCoordinator v{version} for {kind} {} on {}",
                self.group_id,
                conn.label()
            )
        };
        let (code, message, node, host, port) = if version >= 4 {
            let c = resp
                .coordinators
                .iter()
                .find(|c| c.key.as_str() == self.group_id)
                .ok_or_else(|| Error::protocol(format!("no coordinator in {}", context())))?;
            (c.error_code, &c.error_message, c.node_id.0, &c.host, c.port)
        } else {
            let r = &resp;
            (r.error_code, &r.error_message, r.node_id.0, &r.host, r.port)
        };
        Error::check_code(code, message.as_deref(), context)?;
        let port = u16::try_from(port).ok().filter(|p| *p > 0);
        match port {
            Some(port) if node >= 0 && !host.is_empty() => Ok(BrokerMetadata {
                id: node,
                host: host.to_string(),
                port,
                rack: None,
            }),
            _ => Err(Error::broker(
                KafkaCode::CoordinatorNotAvailable,
                Some(format!("answered node {node} at `{host}`, port {port:?}").as_str()),
                context(),
            )),
        }
    }
}

/// The member fields every OffsetCommit attempt repeats.
struct Member<'a> {
    generation: i32,
    member_id: &'a str,
    group_instance_id: &'a Option<String>,
}

/// One partition of an OffsetFetch answer, from whichever layout the version has.
struct Fetched<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    epoch: i32,
    metadata: Option<&'a StrBytes>,
    code: i16,
}

/// Where a retried commit stands, per partition (indexes into the caller's offsets).
struct Progress {
    /// Final outcomes: `Some(None)` committed, `Some(Some(e))` failed for good.
    settled: Vec<Option<Option<Error>>>,
    /// The retriable error each unsettled partition last got.
    last: Vec<Option<Error>>,
    /// Whether the last attempt got an answer (rather than failing as a whole).
    answered: bool,
}

impl Progress {
    fn new(n: usize) -> Progress {
        Progress {
            settled: vec![None; n],
            last: vec![None; n],
            answered: false,
        }
    }

    fn unsettled(&self) -> Vec<usize> {
        (0..self.settled.len())
            .filter(|&i| self.settled[i].is_none())
            .collect()
    }
}

/// The group instance id for a request of version `version`, where the field exists from
/// `since` on. Static membership cannot be silently dropped (the member would join as a
/// dynamic one and lose its identity), so an older broker is a configuration error.
fn instance_field(
    id: &Option<String>,
    version: i16,
    since: i16,
    api: &str,
    conn: &Connection,
) -> Result<Option<StrBytes>> {
    match id {
        None => Ok(None),
        Some(_) if version < since => Err(Error::config(format!(
            "group.instance.id (static membership) needs {api} v{since}+, but {} speaks v{version}",
            conn.label()
        ))),
        Some(id) => Ok(Some(str_bytes(id))),
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
