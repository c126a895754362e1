//! Topics: create (configs, replica assignment, validate-only), delete, list, describe, and
//! add partitions. All go to the controller (or any broker, which forwards in KRaft), except
//! describe and list, which read metadata from any broker.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
};

use super::{
    authorized_operations, first_error, resource_error, validate_topic_name, AclOperation, Admin,
    Target, TopicResult,
};
use crate::client::metadata::{ClusterMetadata, PartitionMetadata, TopicsQuery};
use crate::codes::KafkaCode;
use crate::error::{Error, Result};
use crate::protocol::{str_bytes, topic_name};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTopic {
    /// The topic's name: 1–249 characters of `[a-zA-Z0-9._-]`.
    pub name: String,
    /// Number of partitions; -1 for the broker's default (and with an explicit assignment).
    pub partitions: i32,
    /// Replication factor; -1 for the broker's default (and with an explicit assignment).
    pub replication_factor: i16,
    /// Topic configuration overrides, e.g. `("retention.ms", "60000")`.
    pub configs: Vec<(String, String)>,
    /// An explicit replica assignment: partition `i` gets the broker ids of entry `i`, the
    /// first being its preferred leader. Empty: the controller places the replicas.
    pub assignments: Vec<Vec<i32>>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
            assignments: Vec::new(),
        }
    }

    /// A topic whose partition `i` lives on the brokers of `assignments[i]` (the first one
    /// the preferred leader); partition count and replication factor follow from it.
    pub fn with_assignments(name: impl Into<String>, assignments: Vec<Vec<i32>>) -> NewTopic {
        NewTopic {
            assignments,
            ..NewTopic::new(name, -1, -1)
        }
    }

    /// Adds a topic configuration override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((key.into(), value.into()));
        self
    }

    fn validate(&self) -> Result<()> {
        validate_topic_name(&self.name)?;
        let bad = |what: &str| {
            Err(Error::InvalidInput(
                format!("topic {}: {what}", self.name).into(),
            ))
        };
        if !self.assignments.is_empty() {
            if self.partitions != -1 || self.replication_factor != -1 {
                return bad(
                    "with a replica assignment, partitions and replication factor must be -1",
                );
            }
            if self.assignments.iter().any(|r| r.is_empty()) {
                return bad("every assigned partition needs at least one replica");
            }
            return Ok(());
        }
        if self.partitions == 0 || self.partitions < -1 {
            return bad("partitions must be positive or -1");
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return bad("replication factor must be positive or -1");
        }
        Ok(())
    }

    fn to_wire(&self) -> CreatableTopic {
        CreatableTopic::default()
            .with_name(topic_name(&self.name))
            .with_num_partitions(self.partitions)
            .with_replication_factor(self.replication_factor)
            .with_assignments(
                self.assignments
                    .iter()
                    .enumerate()
                    .map(|(i, brokers)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(i as i32)
                            .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())
                    })
                    .collect(),
            )
            .with_configs(
                self.configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(str_bytes(k))
                            .with_value(Some(str_bytes(v)))
                    })
                    .collect(),
            )
    }
}

/// Options of [`Admin::create_topics_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CreateTopicsOptions {
    /// Only check that the topics could be created (names, configs, assignment, rights);
    /// create nothing.
    pub validate_only: bool,
}

impl CreateTopicsOptions {
    /// Creates the topics.
    pub fn new() -> CreateTopicsOptions {
        CreateTopicsOptions::default()
    }

    /// Only validates the request (`validate_only` in CreateTopics).
    pub fn validate_only(mut self, validate_only: bool) -> CreateTopicsOptions {
        self.validate_only = validate_only;
        self
    }
}

/// What the controller reports for a topic it created (or would create).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreatedTopic {
    /// The topic id in Kafka's text form (URL-safe base64), when the broker reports one
    /// (CreateTopics v7+; none when only validating).
    pub topic_id: Option<String>,
    /// Its partition count (-1 when the broker does not say).
    pub partitions: i32,
    /// Its replication factor (-1 when the broker does not say).
    pub replication_factor: i16,
}

/// Partitions to add to a topic ([`Admin::create_partitions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewPartitions {
    /// The topic.
    pub topic: String,
    /// The partition count it should have afterwards (more than it has now).
    pub total_count: i32,
    /// Replicas of each new partition (first one the preferred leader); empty lets the
    /// controller place them.
    pub assignments: Vec<Vec<i32>>,
}

impl NewPartitions {
    /// Grows `topic` to `total_count` partitions.
    pub fn increase_to(topic: impl Into<String>, total_count: i32) -> NewPartitions {
        NewPartitions {
            topic: topic.into(),
            total_count,
            assignments: Vec::new(),
        }
    }

    /// Places the new partitions on these brokers, one entry per new partition.
    pub fn assignments(mut self, assignments: Vec<Vec<i32>>) -> NewPartitions {
        self.assignments = assignments;
        self
    }
}

/// A topic as [`Admin::describe_topics`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// The topic id in Kafka's text form (URL-safe base64), if the broker reports one.
    pub topic_id: Option<String>,
    /// Whether it is internal (`__consumer_offsets`, `__transaction_state`, …).
    pub internal: bool,
    /// Partitions with leader, leader epoch, replicas, in-sync and offline replicas.
    pub partitions: Vec<PartitionMetadata>,
    /// What the caller may do with the topic, when the broker reports it.
    pub authorized_operations: Option<Vec<AclOperation>>,
}

/// Kafka's text form of a topic id.
pub(crate) fn topic_id_text(id: &[u8; 16]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

impl Admin {
    /// Creates topics and waits until every partition of each has a leader, so the topics can
    /// be used as soon as this returns. The first topic that fails decides the error, which
    /// names it (TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR, …);
    /// [`create_topics_with`](Self::create_topics_with) reports each topic separately.
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        first_error(
            self.create_topics_with(topics, &CreateTopicsOptions::new())
                .await?,
        )
    }

    /// Creates topics (or, with `validate_only`, checks that they could be created) and
    /// reports each topic's own outcome in the order given. Created topics are waited for
    /// until every partition has a leader. Fails as a whole only on invalid input (a bad
    /// name or count, caught before anything is sent).
    pub async fn create_topics_with(
        &self,
        topics: &[NewTopic],
        options: &CreateTopicsOptions,
    ) -> Result<Vec<TopicResult<CreatedTopic>>> {
        for t in topics {
            t.validate()?;
        }
        let by_name: HashMap<&str, &NewTopic> =
            topics.iter().map(|t| (t.name.as_str(), t)).collect();
        let by_name = &by_name;
        let timeout_ms = self.broker_timeout_ms();
        let validate_only = options.validate_only;
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        let mut results = self
            .per_resource(ApiKey::CreateTopics, names, |pending| async move {
                let (_, resp) = self
                    .call(Target::Controller, ApiKey::CreateTopics, |_| {
                        Ok(CreateTopicsRequest::default()
                            .with_timeout_ms(timeout_ms)
                            .with_validate_only(validate_only)
                            .with_topics(
                                pending
                                    .iter()
                                    .map(|n| by_name[n.as_str()].to_wire())
                                    .collect(),
                            ))
                    })
                    .await?;
                Ok(resp
                    .topics
                    .iter()
                    .map(|t| {
                        let name = t.name.0.to_string();
                        let result =
                            match resource_error(t.error_code, t.error_message.as_deref(), || {
                                format!("CreateTopics for topic {name}")
                            }) {
                                Some(e) => Err(e),
                                None => Ok(CreatedTopic {
                                    topic_id: (!t.topic_id.is_nil())
                                        .then(|| topic_id_text(t.topic_id.as_bytes())),
                                    partitions: t.num_partitions,
                                    replication_factor: t.replication_factor,
                                }),
                            };
                        (name, result)
                    })
                    .collect())
            })
            .await;
        if !validate_only {
            self.wait_for_leaders(topics, &mut results).await;
        }
        Ok(results)
    }

    /// Brokers learn about a new topic asynchronously: waits until each created topic has
    /// a leader for every partition, turning a topic that never gets there into its error.
    async fn wait_for_leaders(
        &self,
        topics: &[NewTopic],
        results: &mut [TopicResult<CreatedTopic>],
    ) {
        let created: Vec<String> = results
            .iter()
            .filter(|r| r.result.is_ok())
            .map(|r| r.resource.clone())
            .collect();
        if created.is_empty() {
            return;
        }
        let expected = |name: &str| {
            topics.iter().find(|t| t.name == name).map(|t| {
                if t.assignments.is_empty() {
                    t.partitions
                } else {
                    t.assignments.len() as i32
                }
            })
        };
        let inner = self.inner();
        let waited = inner
            .retrying(ApiKey::Metadata, || async {
                let snap = inner
                    .refresh_metadata(TopicsQuery::Some(created.clone()), None)
                    .await?;
                for name in &created {
                    let want = expected(name).unwrap_or(-1);
                    let ready = snap.cluster.topic(name).is_some_and(|m| {
                        m.error.is_none()
                            && !m.partitions.is_empty()
                            && (want < 0 || m.partitions.len() == want as usize)
                            && m.partitions.iter().all(|p| p.leader.is_some())
                    });
                    if !ready {
                        return Err(Error::broker(
                            KafkaCode::LeaderNotAvailable,
                            Some("created, waiting for leaders"),
                            format!("CreateTopics for topic {name}"),
                        ));
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = waited {
            for r in results.iter_mut().filter(|r| r.result.is_ok()) {
                r.result = Err(e.clone());
            }
        }
    }

    /// Deletes topics. Deleting a topic that does not exist fails with
    /// UNKNOWN_TOPIC_OR_PARTITION, naming it; the first failing topic decides the error
    /// ([`delete_topics_each`](Self::delete_topics_each) reports each topic).
    pub async fn delete_topics(&self, names: &[&str]) -> Result<()> {
        first_error(self.delete_topics_each(names).await?)
    }

    /// Deletes topics and reports each topic's own outcome, in the order given.
    pub async fn delete_topics_each(&self, names: &[&str]) -> Result<Vec<TopicResult<()>>> {
        let timeout_ms = self.broker_timeout_ms();
        let keys: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let results = self
            .per_resource(ApiKey::DeleteTopics, keys, |pending| async move {
                let (_, resp) = self
                    .call(Target::Controller, ApiKey::DeleteTopics, |version| {
                        let mut req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
                        // v6 names topics in `topics` (which may carry ids); older versions
                        // in `topic_names`.
                        if version >= 6 {
                            req.topics = pending
                                .iter()
                                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                                .collect();
                        } else {
                            req.topic_names = pending.iter().map(|n| topic_name(n)).collect();
                        }
                        Ok(req)
                    })
                    .await?;
                Ok(resp
                    .responses
                    .iter()
                    .map(|r| {
                        let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                        let err = resource_error(r.error_code, r.error_message.as_deref(), || {
                            format!("DeleteTopics for topic {name}")
                        });
                        (name, err.map_or(Ok(()), Err))
                    })
                    .collect())
            })
            .await;
        // Stop tracking them first: a refresh that names a deleted topic would re-create it
        // on a broker that auto-creates topics. Then forget them locally at once.
        let inner = self.inner();
        inner.metadata.remove_interest(names.iter().copied());
        let _ = inner
            .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
            .await;
        Ok(results)
    }

    /// Names of all topics in the cluster except internal ones (`__consumer_offsets`, …),
    /// sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        self.list_topics_with(false).await
    }

    /// Names of all topics, sorted; internal ones too when `include_internal`.
    pub async fn list_topics_with(&self, include_internal: bool) -> Result<Vec<String>> {
        let inner = self.inner();
        let snap = inner
            .retrying(ApiKey::Metadata, || {
                inner.refresh_metadata(TopicsQuery::All, None)
            })
            .await?;
        Ok(snap
            .cluster
            .topics
            .iter()
            .filter(|t| (include_internal || !t.internal) && t.error.is_none())
            .map(|t| t.name.clone())
            .collect())
    }

    /// Describes topics: partitions with leaders, replicas and in-sync replicas, the topic
    /// id, and what the caller is authorized to do. A topic that does not exist gets
    /// UNKNOWN_TOPIC_OR_PARTITION as its own result.
    pub async fn describe_topics(
        &self,
        names: &[&str],
    ) -> Result<Vec<TopicResult<TopicDescription>>> {
        for n in names {
            validate_topic_name(n)?;
        }
        let keys: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Ok(self
            .per_resource(ApiKey::Metadata, keys, |pending| async move {
                let (version, resp) = self.topic_metadata(&pending, true).await?;
                let parsed = ClusterMetadata::from_response(&resp);
                Ok(resp
                    .topics
                    .iter()
                    .filter_map(|t| {
                        let name = t.name.as_ref()?.0.to_string();
                        if let Some(e) = resource_error(t.error_code, None, || {
                            format!("Metadata for topic {name}")
                        }) {
                            return Some((name, Err(e)));
                        }
                        let meta = parsed.topic(&name)?;
                        let ops = if version >= 8 {
                            authorized_operations(t.topic_authorized_operations)
                        } else {
                            None
                        };
                        Some((
                            name.clone(),
                            Ok(TopicDescription {
                                name,
                                topic_id: meta.id.as_ref().map(topic_id_text),
                                internal: meta.internal,
                                partitions: meta.partitions.clone(),
                                authorized_operations: ops,
                            }),
                        ))
                    })
                    .collect())
            })
            .await)
    }

    /// Adds partitions to topics (CreatePartitions), or with `validate_only` checks that it
    /// could. Each topic gets its own result (INVALID_PARTITIONS when the count does not
    /// grow, INVALID_REPLICA_ASSIGNMENT, UNKNOWN_TOPIC_OR_PARTITION, …).
    pub async fn create_partitions(
        &self,
        partitions: &[NewPartitions],
        validate_only: bool,
    ) -> Result<Vec<TopicResult<()>>> {
        for p in partitions {
            validate_topic_name(&p.topic)?;
        }
        let by_topic: HashMap<&str, &NewPartitions> =
            partitions.iter().map(|p| (p.topic.as_str(), p)).collect();
        let by_topic = &by_topic;
        let timeout_ms = self.broker_timeout_ms();
        let keys: Vec<String> = partitions.iter().map(|p| p.topic.clone()).collect();
        let results = self
            .per_resource(ApiKey::CreatePartitions, keys, |pending| async move {
                let (_, resp) = self
                    .call(Target::Controller, ApiKey::CreatePartitions, |_| {
                        Ok(CreatePartitionsRequest::default()
                            .with_timeout_ms(timeout_ms)
                            .with_validate_only(validate_only)
                            .with_topics(
                                pending
                                    .iter()
                                    .map(|t| {
                                        let p = by_topic[t.as_str()];
                                        CreatePartitionsTopic::default()
                                            .with_name(topic_name(&p.topic))
                                            .with_count(p.total_count)
                                            .with_assignments((!p.assignments.is_empty()).then(
                                                || {
                                                    p.assignments
                                                        .iter()
                                                        .map(|b| {
                                                            CreatePartitionsAssignment::default()
                                                                .with_broker_ids(
                                                                    b.iter()
                                                                        .map(|id| BrokerId(*id))
                                                                        .collect(),
                                                                )
                                                        })
                                                        .collect()
                                                },
                                            ))
                                    })
                                    .collect(),
                            ))
                    })
                    .await?;
                Ok(resp
                    .results
                    .iter()
                    .map(|r| {
                        let name = r.name.0.to_string();
                        let err = resource_error(r.error_code, r.error_message.as_deref(), || {
                            format!("CreatePartitions for topic {name}")
                        });
                        (name, err.map_or(Ok(()), Err))
                    })
                    .collect())
            })
            .await;
        if !validate_only {
            // Forget the old partition count, so producers see the new partitions soon.
            let _ = self
                .inner()
                .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
                .await;
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_topic_builder_and_rules() {
        let t = NewTopic::new("t", 3, 1).config("retention.ms", "1000");
        assert_eq!(
            t.configs,
            vec![("retention.ms".to_string(), "1000".to_string())]
        );
        t.validate().unwrap();
        let a = NewTopic::with_assignments("t", vec![vec![1, 2], vec![2, 1]]);
        a.validate().unwrap();
        let wire = a.to_wire();
        assert_eq!((wire.num_partitions, wire.replication_factor), (-1, -1));
        assert_eq!(
            wire.assignments[1].broker_ids,
            vec![BrokerId(2), BrokerId(1)]
        );
        let mut mixed = a.clone();
        mixed.partitions = 2;
        assert!(matches!(mixed.validate(), Err(Error::InvalidInput(_))));
        assert!(NewTopic::with_assignments("t", vec![vec![]])
            .validate()
            .is_err());
        assert!(NewTopic::new("t", 0, 1).validate().is_err());
    }

    #[test]
    fn topic_ids_print_as_kafka_does() {
        // Kafka prints a Uuid as URL-safe base64 without padding (22 characters).
        let id = [0xfbu8; 16];
        let text = topic_id_text(&id);
        assert_eq!(text.len(), 22);
        assert_eq!(text, "-_v7-_v7-_v7-_v7-_v7-w");
    }
}
