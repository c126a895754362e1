//! The cluster: its brokers and controller (Metadata, or DescribeCluster with fenced brokers
//! and authorized operations), its feature levels (ApiVersions' finalized features, KIP-584),
//! and leader elections (ElectLeaders, KIP-460).

use std::collections::BTreeMap;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, DescribeClusterRequest, ElectLeadersRequest,
};

use super::{authorized_operations, resource_error, AclOperation, Admin, ResourceResult, Target};
use crate::client::metadata::{ClusterMetadata, TopicsQuery};
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::protocol::{str_bytes, topic_name, SOFTWARE_NAME, SOFTWARE_VERSION};

/// A broker as DescribeCluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerDescription {
    /// Its node id.
    pub id: i32,
    /// The host clients connect to.
    pub host: String,
    /// The port clients connect to.
    pub port: i32,
    /// Its rack, if configured.
    pub rack: Option<String>,
    /// Whether the controller has fenced it (KRaft; only listed with DescribeCluster v2+).
    pub fenced: bool,
}

/// A feature's version range (KIP-584): finalized levels are what the cluster runs at
/// (`metadata.version`, `transaction.version`, `group.version`, …); supported ranges are
/// what the answering broker could run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeatureLevel {
    /// The feature's name.
    pub name: String,
    /// The lowest level.
    pub min: i16,
    /// The highest level (for a finalized feature: the level in force).
    pub max: i16,
}

/// What [`Admin::describe_cluster_details`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: String,
    /// The controller's id as brokers report it (in KRaft, a broker clients may send
    /// controller requests to); `None` when unknown.
    pub controller_id: Option<i32>,
    /// The brokers, sorted by id (fenced ones too).
    pub brokers: Vec<BrokerDescription>,
    /// The cluster's finalized feature levels, sorted by name.
    pub finalized_features: Vec<FeatureLevel>,
    /// The epoch of the finalized features, when the broker reports it.
    pub finalized_features_epoch: Option<i64>,
    /// The features the answering broker supports, sorted by name.
    pub supported_features: Vec<FeatureLevel>,
    /// What the caller may do with the cluster, when the broker reports it.
    pub authorized_operations: Option<Vec<AclOperation>>,
}

/// The kind of leader election of [`Admin::elect_leaders`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ElectionType {
    /// Move leadership back to the preferred (first) replica.
    Preferred,
    /// Elect an out-of-sync replica when no in-sync one is alive (may lose records).
    Unclean,
}

impl Admin {
    /// The cluster id, controller and brokers (no topics), from Metadata.
    pub async fn describe_cluster(&self) -> Result<ClusterMetadata> {
        let inner = self.inner();
        let snap = inner
            .retrying(ApiKey::Metadata, || {
                inner.refresh_metadata(TopicsQuery::Some(Vec::new()), None)
            })
            .await?;
        let mut cluster = snap.cluster.clone();
        cluster.topics.clear();
        Ok(cluster)
    }

    /// The cluster in detail: DescribeCluster (brokers with their fencing, controller,
    /// authorized operations) and the feature levels from ApiVersions, both asked of the
    /// same broker.
    pub async fn describe_cluster_details(&self) -> Result<ClusterDescription> {
        let inner = self.inner();
        inner
            .retrying(ApiKey::DescribeCluster, || async {
                let conn = self.connection(Target::Any).await?;
                let (version, resp) = self
                    .call_on(&conn, ApiKey::DescribeCluster, |version| {
                        Ok(DescribeClusterRequest::default()
                            .with_include_cluster_authorized_operations(true)
                            .with_include_fenced_brokers(version >= 2))
                    })
                    .await?;
                Error::check_code(resp.error_code, resp.error_message.as_deref(), || {
                    format!("DescribeCluster v{version} on {}", conn.label())
                })?;
                let (_, features) = self
                    .call_on(&conn, ApiKey::ApiVersions, |_| {
                        Ok(ApiVersionsRequest::default()
                            .with_client_software_name(str_bytes(SOFTWARE_NAME))
                            .with_client_software_version(str_bytes(SOFTWARE_VERSION)))
                    })
                    .await?;
                Error::check_code(features.error_code, None, || {
                    format!("ApiVersions on {}", conn.label())
                })?;
                let mut brokers: Vec<BrokerDescription> = resp
                    .brokers
                    .iter()
                    .map(|b| BrokerDescription {
                        id: b.broker_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                        fenced: b.is_fenced,
                    })
                    .collect();
                brokers.sort_by_key(|b| b.id);
                let mut finalized: Vec<FeatureLevel> = features
                    .finalized_features
                    .iter()
                    .map(|f| FeatureLevel {
                        name: f.name.to_string(),
                        min: f.min_version_level,
                        max: f.max_version_level,
                    })
                    .collect();
                finalized.sort_by(|a, b| a.name.cmp(&b.name));
                let mut supported: Vec<FeatureLevel> = features
                    .supported_features
                    .iter()
                    .map(|f| FeatureLevel {
                        name: f.name.to_string(),
                        min: f.min_version,
                        max: f.max_version,
                    })
                    .collect();
                supported.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(ClusterDescription {
                    cluster_id: resp.cluster_id.to_string(),
                    controller_id: (resp.controller_id.0 >= 0).then_some(resp.controller_id.0),
                    brokers,
                    finalized_features: finalized,
                    finalized_features_epoch: (features.finalized_features_epoch >= 0)
                        .then_some(features.finalized_features_epoch),
                    supported_features: supported,
                    authorized_operations: authorized_operations(
                        resp.cluster_authorized_operations,
                    ),
                })
            })
            .await
    }

    /// Elects leaders for `partitions` (every partition when `None`), through the
    /// controller. Each partition gets its own result: ELECTION_NOT_NEEDED when the preferred
    /// replica already leads, PREFERRED_LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, ….
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<ResourceResult<TopicPartition, ()>>> {
        let timeout_ms = self.broker_timeout_ms();
        let inner = self.inner();
        inner
            .retrying(ApiKey::ElectLeaders, || async {
                let (version, resp) = self
                    .call(Target::Controller, ApiKey::ElectLeaders, |version| {
                        if election == ElectionType::Unclean && version < 1 {
                            return Err(Error::InvalidInput(
                                "unclean elections need ElectLeaders v1 (Kafka 2.4)".into(),
                            ));
                        }
                        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                        for tp in partitions.unwrap_or_default() {
                            by_topic.entry(&tp.topic).or_default().push(tp.partition);
                        }
                        Ok(ElectLeadersRequest::default()
                            .with_election_type(match election {
                                ElectionType::Preferred => 0,
                                ElectionType::Unclean => 1,
                            })
                            .with_timeout_ms(timeout_ms)
                            .with_topic_partitions(partitions.map(|_| {
                                by_topic
                                    .into_iter()
                                    .map(|(t, ps)| {
                                        TopicPartitions::default()
                                            .with_topic(topic_name(t))
                                            .with_partitions(ps)
                                    })
                                    .collect()
                            })))
                    })
                    .await?;
                if version >= 1 {
                    Error::check_code(resp.error_code, None, || "ElectLeaders".to_string())?;
                }
                let mut out: Vec<ResourceResult<TopicPartition, ()>> = resp
                    .replica_election_results
                    .iter()
                    .flat_map(|t| {
                        t.partition_result.iter().map(move |p| {
                            let tp = TopicPartition::new(t.topic.0.as_str(), p.partition_id);
                            let err =
                                resource_error(p.error_code, p.error_message.as_deref(), || {
                                    format!("ElectLeaders for {tp}")
                                });
                            ResourceResult::new(tp, err.map_or(Ok(()), Err))
                        })
                    })
                    .collect();
                out.sort_by(|a, b| a.resource.cmp(&b.resource));
                Ok(out)
            })
            .await
    }
}
