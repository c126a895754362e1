//! Administration: topics, cluster description, partition offsets.
//!
//! Every operation runs inside the client's one retry loop (`ClientInner::retrying`) under
//! `default.api.timeout.ms`, so transient broker errors, moved leaders and lost connections are
//! handled the same way here as everywhere else.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateAclsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    ListOffsetsRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::acl::AclBinding;
use crate::client::metadata::{ClusterMetadata, TopicsQuery};
use crate::client::Client;
use crate::codes::KafkaCode;
use crate::error::{Error, Result};
use crate::protocol::topic_name;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTopic {
    /// The topic's name: 1–249 characters of `[a-zA-Z0-9._-]`.
    pub name: String,
    /// Number of partitions; -1 for the broker's default.
    pub partitions: i32,
    /// Replication factor; -1 for the broker's default.
    pub replication_factor: i16,
    /// Topic configuration overrides, e.g. `("retention.ms", "60000")`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a topic configuration override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((key.into(), value.into()));
        self
    }
}

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

/// Administrative operations through a [`Client`]. Obtained from [`Client::admin`].
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    pub(crate) fn new(client: Client) -> Admin {
        Admin { client }
    }

    /// Creates topics and waits until every partition of each has a leader, so the topics can
    /// be used as soon as this returns. The first topic that fails decides the error, which
    /// names it (TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR, …).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        for t in topics {
            validate_topic_name(&t.name)?;
            if t.partitions == 0 || t.partitions < -1 {
                return Err(Error::InvalidInput(
                    format!("topic {}: partitions must be positive or -1", t.name).into(),
                ));
            }
            if t.replication_factor == 0 || t.replication_factor < -1 {
                return Err(Error::InvalidInput(
                    format!(
                        "topic {}: replication factor must be positive or -1",
                        t.name
                    )
                    .into(),
                ));
            }
        }
        let inner = &self.client.inner;
        let timeout_ms = inner.cfg.request_timeout.as_millis().min(i32::MAX as u128) as i32;
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        inner
            .retrying(ApiKey::CreateTopics, || async {
                let resp = self.to_controller(&req).await?;
                for t in &resp.topics {
                    Error::check_code(t.error_code, t.error_message.as_deref(), || {
                        format!("CreateTopics for topic {}", t.name.0)
                    })?;
                }
                Ok(())
            })
            .await?;
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        // Brokers learn about a new topic asynchronously; wait until it is usable.
        inner
            .retrying(ApiKey::Metadata, || async {
                let snap = inner
                    .refresh_metadata(TopicsQuery::Some(names.clone()), None)
                    .await?;
                for t in topics {
                    let ready = snap.cluster.topic(&t.name).is_some_and(|m| {
                        m.error.is_none()
                            && !m.partitions.is_empty()
                            && (t.partitions < 0 || m.partitions.len() == t.partitions as usize)
                            && m.partitions.iter().all(|p| p.leader.is_some())
                    });
                    if !ready {
                        return Err(Error::broker(
                            KafkaCode::LeaderNotAvailable,
                            Some("created, waiting for leaders"),
                            format!("CreateTopics for topic {}", t.name),
                        ));
                    }
                }
                Ok(())
            })
            .await
    }

    /// Deletes topics. Deleting a topic that does not exist fails with
    /// UNKNOWN_TOPIC_OR_PARTITION, naming it.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<()> {
        let inner = &self.client.inner;
        let timeout_ms = inner.cfg.request_timeout.as_millis().min(i32::MAX as u128) as i32;
        inner
            .retrying(ApiKey::DeleteTopics, || async {
                let conn = match self.controller_id() {
                    Some(id) => inner.broker(id).await?,
                    None => inner.broker(self.any_broker_id()?).await?,
                };
                let version = conn.version(ApiKey::DeleteTopics)?;
                let mut req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
                // v6 names topics in `topics` (which may carry ids); older versions in `topic_names`.
                if version >= 6 {
                    req.topics = names
                        .iter()
                        .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                        .collect();
                } else {
                    req.topic_names = names.iter().map(|n| topic_name(n)).collect();
                }
                let timeout = inner.cfg.request_timeout;
                let resp = conn.call(&req, version, timeout).await?;
                for r in &resp.responses {
                    let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                    Error::check_code(r.error_code, r.error_message.as_deref(), || {
                        format!("DeleteTopics for topic {name}")
                    })?;
                }
                Ok(())
            })
            .await?;
        // Stop tracking them first: a refresh that names a deleted topic would re-create it
        // on a broker that auto-creates topics. Then forget them locally at once.
        inner.metadata.remove_interest(names.iter().copied());
        let _ = inner
            .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
            .await;
        Ok(())
    }

    /// Creates ACLs (CreateAcls; needs ALTER on the cluster, which a super user has). The
    /// first binding the broker refuses decides the error, which names it; without the
    /// right the error is CLUSTER_AUTHORIZATION_FAILED. Brokers apply new ACLs
    /// asynchronously (through the metadata log in KRaft), so they may take a moment to
    /// bite.
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<()> {
        let inner = &self.client.inner;
        let req = CreateAclsRequest::default()
            .with_creations(acls.iter().map(|a| a.to_creation()).collect());
        inner
            .retrying(ApiKey::CreateAcls, || async {
                let resp = inner.send_to_any(&req).await?;
                for (result, acl) in resp.results.iter().zip(acls) {
                    Error::check_code(result.error_code, result.error_message.as_deref(), || {
                        format!("CreateAcls for {acl}")
                    })?;
                }
                Ok(())
            })
            .await
    }

    /// Names of all topics in the cluster except internal ones (`__consumer_offsets`, …),
    /// sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let inner = &self.client.inner;
        let snap = inner
            .retrying(ApiKey::Metadata, || {
                inner.refresh_metadata(TopicsQuery::All, None)
            })
            .await?;
        Ok(snap
            .cluster
            .topics
            .iter()
            .filter(|t| !t.internal && t.error.is_none())
            .map(|t| t.name.clone())
            .collect())
    }

    /// The cluster id, controller and brokers (no topics).
    pub async fn describe_cluster(&self) -> Result<ClusterMetadata> {
        let inner = &self.client.inner;
        let snap = inner
            .retrying(ApiKey::Metadata, || {
                inner.refresh_metadata(TopicsQuery::Some(Vec::new()), None)
            })
            .await?;
        let mut cluster = snap.cluster.clone();
        cluster.topics.clear();
        Ok(cluster)
    }

    /// Looks up an offset of one partition on its leader (ListOffsets).
    pub async fn list_offsets(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        let inner = &self.client.inner;
        let timestamp = match spec {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
            OffsetSpec::MaxTimestamp => -3,
        };
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp)])]);
        inner
            .retrying(ApiKey::ListOffsets, || async {
                let leader = inner.leader(topic, partition).await?;
                let conn = inner.broker(leader).await?;
                // -3 means nothing to a broker before KIP-734: refuse rather than trust its
                // answer.
                let version = conn.version(ApiKey::ListOffsets)?;
                if spec == OffsetSpec::MaxTimestamp && version < 7 {
                    return Err(Error::InvalidInput(
                        format!(
                            "OffsetSpec::MaxTimestamp needs ListOffsets v7; broker {leader} \
                             speaks v{version}"
                        )
                        .into(),
                    ));
                }
                let resp = conn.send(&req).await?;
                let p = resp
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == partition)
                    .ok_or_else(|| {
                        Error::protocol(format!("ListOffsets response lacks {topic}-{partition}"))
                    })?;
                Error::check_code(p.error_code, None, || {
                    format!("ListOffsets for {topic}-{partition} on broker {leader}")
                })?;
                Ok(p.offset)
            })
            .await
    }

    fn controller_id(&self) -> Option<i32> {
        let snap = self.client.inner.metadata.snapshot();
        snap.cluster
            .controller_id
            .filter(|id| snap.cluster.broker(*id).is_some())
    }

    fn any_broker_id(&self) -> Result<i32> {
        let snap = self.client.inner.metadata.snapshot();
        snap.cluster
            .brokers
            .first()
            .map(|b| b.id)
            .ok_or_else(|| Error::NoBrokerAvailable {
                tried: "the cached metadata lists no broker".into(),
                last: None,
            })
    }

    /// Sends to the controller when metadata names one that is a broker (Kafka routes topic
    /// changes there); otherwise to any broker, which forwards in KRaft clusters.
    async fn to_controller<R: Request>(&self, req: &R) -> Result<R::Response> {
        let inner = &self.client.inner;
        match self.controller_id() {
            Some(id) => inner.broker(id).await?.send(req).await,
            None => inner.send_to_any(req).await,
        }
    }
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
    fn new_topic_builder() {
        let t = NewTopic::new("t", 3, 1).config("retention.ms", "1000");
        assert_eq!(
            t.configs,
            vec![("retention.ms".to_string(), "1000".to_string())]
        );
    }
}
