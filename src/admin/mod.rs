//! Administration: the [`Admin`] handle and how its requests reach the right broker.
//!
//! One file per concept: `topics.rs` (create, delete, list, describe, partitions), `configs.rs`
//! (describe and incrementally alter), `groups.rs` (list, describe, delete, committed offsets),
//! `lag.rs` (a group's lag in one call), `records.rs` (list offsets, delete records),
//! `acls.rs`, `scram.rs` (SCRAM credentials), `cluster.rs` (cluster, features, leader
//! elections) and `transactions.rs` (producers and transactions). This file holds what they
//! share: routing and the per-resource retry loop.
//!
//! # Routing
//! - topic, config, ACL, SCRAM and election requests go to the controller named in metadata
//!   when it is a broker, otherwise to any broker (KRaft brokers forward to the controller);
//! - group requests go to the group's coordinator, found with FindCoordinator each time an
//!   operation starts (and again after NOT_COORDINATOR, through the classifier's retry);
//! - partition requests (ListOffsets, DeleteRecords, DescribeProducers) go to each partition's
//!   leader, batched per leader;
//! - ListGroups and ListTransactions go to every broker;
//! - DescribeTransactions goes to each transactional id's coordinator.
//!
//! # Errors
//! Every operation runs in the client's one retry loop (`ClientInner::retrying`) under
//! `default.api.timeout.ms`. Operations on many resources report each resource's own result
//! ([`Admin::create_topics_with`] gives one [`TopicResult`] per topic, and so on): a failure of
//! one topic, partition or group never hides the others. A resource whose error the classifier
//! calls retriable (NOT_LEADER_OR_FOLLOWER, a coordinator that moved) is asked again, alone;
//! the others keep their answer.
//!
//! No task is spawned here: every operation runs on the caller's task, and the connections
//! belong to the client's pool.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::Request;

use crate::classify::{classify_admin, Action};
use crate::client::connection::Connection;
use crate::client::metadata::{ClusterMetadata, TopicsQuery};
use crate::client::Client;
use crate::codes::KafkaCode;
use crate::error::{Error, Result};
use crate::protocol::{str_bytes, topic_name};

pub(crate) mod acls;
mod cluster;
mod configs;
mod groups;
mod lag;
mod records;
mod scram;
mod topics;
mod transactions;

pub use acls::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
};
pub use cluster::{BrokerDescription, ClusterDescription, ElectionType, FeatureLevel};
pub use configs::{
    AlterConfigOp, ConfigEntry, ConfigResource, ConfigResourceType, ConfigSource, ConfigSynonym,
};
pub use groups::{
    GroupDescription, GroupListing, GroupMember, GroupState, GroupType, ListGroupsOptions,
};
pub use lag::GroupPartitionLag;
pub use records::{ListedOffset, OffsetSpec};
pub use scram::{ScramChange, ScramCredential, ScramMechanism, UserScramCredentials};
pub use topics::{CreateTopicsOptions, CreatedTopic, NewPartitions, NewTopic, TopicDescription};
pub use transactions::{
    ListTransactionsOptions, ProducerState, TransactionDescription, TransactionListing,
};

/// The outcome of an operation for one resource (a topic, a partition, a group, a
/// transactional id, …): what the resource is and either its answer or its own error.
///
/// Batch operations return one per resource in the order asked, so a partial failure is
/// visible resource by resource. [`ResourceResult::into_result`] turns a list of them into
/// the first error, for callers that want all or nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResourceResult<K, T> {
    /// The resource this is about.
    pub resource: K,
    /// Its answer, or the typed error the broker (or the client) gave for it alone.
    pub result: Result<T>,
}

impl<K, T> ResourceResult<K, T> {
    pub(crate) fn new(resource: K, result: Result<T>) -> ResourceResult<K, T> {
        ResourceResult { resource, result }
    }

    /// The answers in order, or the first resource's error.
    pub fn into_result(results: Vec<ResourceResult<K, T>>) -> Result<Vec<T>> {
        results.into_iter().map(|r| r.result).collect()
    }
}

/// One result per topic (creation, deletion, new partitions).
pub type TopicResult<T> = ResourceResult<String, T>;

/// Where a request is sent.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// Any broker that answers.
    Any,
    /// The controller when metadata names one that is a broker, else any broker (which
    /// forwards in KRaft clusters).
    Controller,
    /// This broker.
    Broker(i32),
}

/// Administrative operations through a [`Client`]. Obtained from [`Client::admin`].
///
/// Cheap to clone; it shares the client's connections and metadata.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    pub(crate) fn new(client: Client) -> Admin {
        Admin { client }
    }

    fn inner(&self) -> &crate::client::ClientInner {
        &self.client.inner
    }

    /// The `timeout_ms` field of requests that carry one: the broker gives up (answering
    /// REQUEST_TIMED_OUT for the resource) before the client's own request timeout.
    fn broker_timeout_ms(&self) -> i32 {
        self.inner()
            .cfg
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32
    }

    /// How long to wait for a response to a request carrying `broker_timeout_ms`: that long
    /// plus the usual request timeout, so the broker's own timeout answer arrives first.
    fn call_timeout(&self) -> Duration {
        self.inner().cfg.request_timeout.saturating_mul(2)
    }

    /// The connection for `target`.
    async fn connection(&self, target: Target) -> Result<Arc<Connection>> {
        let inner = self.inner();
        match target {
            Target::Broker(id) => inner.broker(id).await,
            Target::Controller => match self.controller_id() {
                Some(id) => inner.broker(id).await,
                None => self.any_connection().await,
            },
            Target::Any => self.any_connection().await,
        }
    }

    /// An open connection, or one opened by a metadata refresh (which tries the known
    /// brokers, then the bootstrap addresses).
    async fn any_connection(&self) -> Result<Arc<Connection>> {
        let inner = self.inner();
        if let Some(conn) = inner.pool.any_open() {
            return Ok(conn);
        }
        inner
            .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
            .await?;
        inner
            .pool
            .any_open()
            .ok_or_else(|| Error::NoBrokerAvailable {
                tried: "every broker (no connection stayed open)".into(),
                last: None,
            })
    }

    /// Sends the request `build` makes for the version negotiated with `target` (several
    /// requests lay their fields out differently per version). Returns the version with the
    /// response. One attempt: callers run it inside `retrying`.
    async fn call<R: Request>(
        &self,
        target: Target,
        api: ApiKey,
        build: impl FnOnce(i16) -> Result<R>,
    ) -> Result<(i16, R::Response)> {
        let conn = self.connection(target).await?;
        self.call_on(&conn, api, build).await
    }

    async fn call_on<R: Request>(
        &self,
        conn: &Connection,
        api: ApiKey,
        build: impl FnOnce(i16) -> Result<R>,
    ) -> Result<(i16, R::Response)> {
        // kafka-protocol may list a response version above the highest request it encodes
        // (OffsetFetch, OffsetCommit): never ask for more than the request type knows.
        let version = conn.version(api)?.min(R::VERSIONS.max);
        let req = build(version)?;
        let resp = conn.call(&req, version, self.call_timeout()).await?;
        Ok((version, resp))
    }

    fn controller_id(&self) -> Option<i32> {
        let snap = self.inner().metadata.snapshot();
        snap.cluster
            .controller_id
            .filter(|id| snap.cluster.broker(*id).is_some())
    }

    /// Fresh metadata for the brokers only (installed in the client's cache, so the pool
    /// knows every broker's address).
    async fn fresh_metadata(&self) -> Result<Arc<ClusterMetadata>> {
        let snap = self
            .inner()
            .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
            .await?;
        Ok(Arc::new(snap.cluster.clone()))
    }

    /// Metadata of `topics` for this attempt alone: never auto-creating a topic (an admin
    /// looking a topic up must not create it, whatever `allow.auto.create.topics` says for
    /// producers and consumers) and not added to the topics the client keeps fresh. With
    /// `authorized_operations`, asks for them (Metadata v8+). Returns the version used.
    async fn topic_metadata(
        &self,
        topics: &[String],
        authorized_operations: bool,
    ) -> Result<(i16, MetadataResponse)> {
        self.call(Target::Any, ApiKey::Metadata, |version| {
            Ok(MetadataRequest::default()
                .with_topics(Some(
                    topics
                        .iter()
                        .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                        .collect(),
                ))
                .with_allow_auto_topic_creation(false)
                .with_include_topic_authorized_operations(authorized_operations && version >= 8))
        })
        .await
    }

    /// The ids of every broker, from fresh metadata.
    async fn broker_ids(&self) -> Result<Vec<i32>> {
        let cluster = self.fresh_metadata().await?;
        Ok(cluster.brokers.iter().map(|b| b.id).collect())
    }

    /// The coordinator of a group (`key_type` 0) or transactional id (1): one FindCoordinator
    /// on any broker, then the pooled connection to that broker. Not cached: an admin call
    /// is rare, and a coordinator that moved is found again on the next attempt.
    async fn coordinator(&self, key: &str, key_type: i8) -> Result<(i32, Arc<Connection>)> {
        let conn = self.any_connection().await?;
        let (version, resp) = self
            .call_on(&conn, ApiKey::FindCoordinator, |version| {
                let mut req = FindCoordinatorRequest::default().with_key_type(key_type);
                // v4 (KIP-699) batches keys; older versions take one.
                if version >= 4 {
                    req.coordinator_keys = vec![str_bytes(key)];
                } else {
                    req.key = str_bytes(key);
                }
                Ok(req)
            })
            .await?;
        let kind = if key_type == 1 {
            "transactional id"
        } else {
            "group"
        };
        let context = || format!("FindCoordinator for {kind} {key}");
        let (code, message, node) = if version >= 4 {
            let c = resp
                .coordinators
                .iter()
                .find(|c| c.key.as_str() == key)
                .ok_or_else(|| Error::protocol(format!("no coordinator in {}", context())))?;
            (c.error_code, c.error_message.clone(), c.node_id.0)
        } else {
            (resp.error_code, resp.error_message.clone(), resp.node_id.0)
        };
        Error::check_code(code, message.as_deref(), context)?;
        if node < 0 {
            return Err(Error::broker(
                KafkaCode::CoordinatorNotAvailable,
                None,
                context(),
            ));
        }
        // The coordinator is a broker: make sure the pool knows its address.
        if self
            .inner()
            .metadata
            .snapshot()
            .cluster
            .broker(node)
            .is_none()
        {
            self.fresh_metadata().await?;
        }
        Ok((node, self.inner().broker(node).await?))
    }

    /// The per-resource retry loop. `attempt` is given the resources still pending and
    /// answers each (or fails as a whole). Resources whose error the classifier calls
    /// retriable stay pending for the next attempt (after backoff, with a metadata refresh if
    /// the error asks for one); the others are final. At `default.api.timeout.ms` the pending
    /// ones get their last error. Results come back in the order of `keys`.
    async fn per_resource<K, T, F, Fut>(
        &self,
        api: ApiKey,
        keys: Vec<K>,
        mut attempt: F,
    ) -> Vec<ResourceResult<K, T>>
    where
        K: Clone + Eq + Hash,
        T: Clone,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<(K, Result<T>)>>>,
    {
        // Owned by this call alone; the mutex only satisfies `retrying`'s `FnMut` closure
        // (never held across an await).
        let state: Mutex<Progress<K, T>> = Mutex::new((dedup(keys.clone()), HashMap::new()));
        let outcome = self
            .inner()
            .retrying(api, || {
                let pending = state.lock().unwrap().0.clone();
                let fut = attempt(pending.clone());
                let state = &state;
                async move {
                    let answers = fut.await?;
                    let mut guard = state.lock().unwrap();
                    let (ref mut still, ref mut done) = *guard;
                    still.clear();
                    let mut last = None;
                    for (k, r) in answers {
                        match r {
                            Err(e) if classify_admin(&e, api).contains(Action::RETRY) => {
                                still.push(k);
                                last = Some(e);
                            }
                            r => {
                                done.insert(k, r);
                            }
                        }
                    }
                    // A resource the broker did not mention is asked again.
                    for k in pending {
                        if !done.contains_key(&k) && !still.contains(&k) {
                            still.push(k);
                        }
                    }
                    match (still.is_empty(), last) {
                        (true, _) => Ok(()),
                        (false, Some(e)) => Err(e),
                        (false, None) => Err(Error::protocol(format!(
                            "{} response left out {} resource(s)",
                            crate::protocol::api_name(api),
                            still.len()
                        ))),
                    }
                }
            })
            .await;
        let (_, done) = state.into_inner().unwrap();
        keys.into_iter()
            .map(|k| {
                // A key asked twice gets the same answer twice.
                let result = match done.get(&k) {
                    Some(r) => r.clone(),
                    None => Err(match &outcome {
                        Err(e) => e.clone(),
                        Ok(()) => Error::protocol("resource left unanswered"),
                    }),
                };
                ResourceResult::new(k, result)
            })
            .collect::<Vec<_>>()
    }
}

/// The per-resource loop's state: the resources still pending and the final answers.
type Progress<K, T> = (Vec<K>, HashMap<K, Result<T>>);

/// `keys` without repeats, in first-seen order.
fn dedup<K: Clone + Eq + Hash>(keys: Vec<K>) -> Vec<K> {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

/// A response code for one resource as a typed error (`None` for success).
pub(crate) fn resource_error(
    code: i16,
    message: Option<&str>,
    context: impl FnOnce() -> String,
) -> Option<Error> {
    Error::check_code(code, message, context).err()
}

/// Turns a per-resource result of `T` into a plain `Result` of all of them (first error).
fn first_error<K, T>(results: Vec<ResourceResult<K, T>>) -> Result<()> {
    results.into_iter().try_for_each(|r| r.result.map(drop))
}

/// Kafka's topic-name rules, checked before anything is sent.
pub(crate) fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::InvalidInput(
            format!("invalid topic name `{name}`: {why}").into(),
        ))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!("character `{c}` is not one of [a-zA-Z0-9._-]"));
    }
    Ok(())
}

/// Kafka's 32-bit "authorized operations" field as operations; `None` when the broker did
/// not include it (`i32::MIN`, Kafka's "not asked").
pub(crate) fn authorized_operations(bits: i32) -> Option<Vec<AclOperation>> {
    if bits == i32::MIN {
        return None;
    }
    Some(
        (0..32)
            .filter(|b| bits & (1 << b) != 0)
            .filter_map(|b| AclOperation::from_code(b as i8))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_rules() {
        for ok in ["a", "orders.v1", "A_b-c", &"x".repeat(249)] {
            validate_topic_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "has space", "slash/", "ü", &"x".repeat(250)] {
            let e = validate_topic_name(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidInput(_)), "{bad}: {e}");
            assert!(!e.is_retriable());
        }
    }

    #[test]
    fn authorized_operations_decode_kafkas_bit_set() {
        assert_eq!(authorized_operations(i32::MIN), None);
        // READ (3), WRITE (4) and DESCRIBE (8).
        let ops = authorized_operations((1 << 3) | (1 << 4) | (1 << 8)).unwrap();
        assert_eq!(
            ops,
            vec![
                AclOperation::Read,
                AclOperation::Write,
                AclOperation::Describe
            ]
        );
    }

    #[test]
    fn into_result_reports_the_first_failure() {
        let ok: Vec<TopicResult<i32>> = vec![
            ResourceResult::new("a".into(), Ok(1)),
            ResourceResult::new("b".into(), Ok(2)),
        ];
        assert_eq!(ResourceResult::into_result(ok).unwrap(), vec![1, 2]);
        let bad: Vec<TopicResult<i32>> = vec![
            ResourceResult::new("a".into(), Ok(1)),
            ResourceResult::new(
                "b".into(),
                Err(Error::broker(KafkaCode::TopicAlreadyExists, None, "b")),
            ),
        ];
        let e = ResourceResult::into_result(bad).unwrap_err();
        assert_eq!(e.kafka_code(), Some(KafkaCode::TopicAlreadyExists));
    }

    #[test]
    fn dedup_keeps_first_order() {
        assert_eq!(dedup(vec![3, 1, 3, 2, 1]), vec![3, 1, 2]);
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod admin_tests;
