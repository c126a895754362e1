//! The metadata cache: brokers, topics, partitions, leaders.
//!
//! Readers take an `Arc<Snapshot>` (a short read lock and a reference-count bump) and work from
//! it without holding anything, so the producer and fetcher never wait on a refresh.
//!
//! Refreshes are single-flight and generation-checked: a caller that found the cache stale
//! (say, after NOT_LEADER_OR_FOLLOWER) passes the generation it saw; if another task already
//! installed a newer snapshot while this one waited for the refresh lock, the newer snapshot is
//! returned and no request is sent. A stale caller can therefore never throw away fresher data
//! or trigger a storm of identical Metadata requests.
//!
//! Ownership: the cache lives in the client's shared state; only `Client::refresh_metadata`
//! (under the refresh lock) installs snapshots.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::messages::MetadataResponse;
use tokio::time::Instant;

use crate::codes::KafkaCode;

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerMetadata {
    /// The broker's node id.
    pub id: i32,
    /// Host clients connect to (the advertised listener).
    pub host: String,
    /// Port clients connect to.
    pub port: u16,
    /// The broker's rack, if configured.
    pub rack: Option<String>,
}

impl BrokerMetadata {
    /// `host:port`, with IPv6 hosts bracketed.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionMetadata {
    /// The partition index.
    pub id: i32,
    /// The leader's broker id, or `None` while there is no leader.
    pub leader: Option<i32>,
    /// The leader epoch, when the broker reports it (Metadata v7+).
    pub leader_epoch: Option<i32>,
    /// Broker ids of all replicas.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
    /// Broker ids of replicas that are offline.
    pub offline_replicas: Vec<i32>,
    /// The error the broker reported for this partition, if any (e.g. LEADER_NOT_AVAILABLE).
    pub error: Option<KafkaCode>,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicMetadata {
    /// The topic's name.
    pub name: String,
    /// The topic id (Kafka 2.8+), if the broker reports one.
    pub id: Option<[u8; 16]>,
    /// Whether this is an internal topic such as `__consumer_offsets`.
    pub internal: bool,
    /// Partitions, sorted by id.
    pub partitions: Vec<PartitionMetadata>,
    /// The error the broker reported for the topic, if any (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub error: Option<KafkaCode>,
}

impl TopicMetadata {
    /// The partition with index `id`.
    pub fn partition(&self, id: i32) -> Option<&PartitionMetadata> {
        self.partitions
            .get(id as usize)
            .filter(|p| p.id == id)
            .or_else(|| self.partitions.iter().find(|p| p.id == id))
    }
}

/// What the cluster looked like at one metadata refresh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClusterMetadata {
    /// The cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// The controller's broker id, if known.
    pub controller_id: Option<i32>,
    /// Brokers, sorted by id.
    pub brokers: Vec<BrokerMetadata>,
    /// Topics, sorted by name.
    pub topics: Vec<TopicMetadata>,
}

impl ClusterMetadata {
    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.topics[i])
    }

    /// The broker with id `id`.
    pub fn broker(&self, id: i32) -> Option<&BrokerMetadata> {
        self.brokers
            .binary_search_by_key(&id, |b| b.id)
            .ok()
            .map(|i| &self.brokers[i])
    }

    /// Converts a Metadata response. Topics with no name (possible at v10+) are skipped.
    pub(crate) fn from_response(resp: &MetadataResponse) -> ClusterMetadata {
        let mut brokers: Vec<BrokerMetadata> = resp
            .brokers
            .iter()
            .map(|b| BrokerMetadata {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: u16::try_from(b.port).unwrap_or(0),
                rack: b.rack.as_ref().map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        let mut topics: Vec<TopicMetadata> = resp
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                let mut partitions: Vec<PartitionMetadata> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionMetadata {
                        id: p.partition_index,
                        leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                        leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                        error: KafkaCode::from_code(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.id);
                Some(TopicMetadata {
                    name,
                    id: (!t.topic_id.is_nil()).then(|| *t.topic_id.as_bytes()),
                    internal: t.is_internal,
                    partitions,
                    error: KafkaCode::from_code(t.error_code),
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        ClusterMetadata {
            cluster_id: resp.cluster_id.as_ref().map(|c| c.to_string()),
            controller_id: (resp.controller_id.0 >= 0).then_some(resp.controller_id.0),
            brokers,
            topics,
        }
    }
}

/// One installed view of the cluster, immutable once published.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Increases by one with every installed snapshot.
    pub(crate) generation: u64,
    /// When the Metadata response arrived; `None` for the empty initial snapshot.
    pub(crate) fetched_at: Option<Instant>,
    pub(crate) cluster: ClusterMetadata,
}

impl Snapshot {
    /// The leader of `topic`/`partition`, if known.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.cluster.topic(topic)?.partition(partition)?.leader
    }

    /// The id of the topic called `topic` as this snapshot knows it (Metadata v10+). A topic
    /// deleted and created again under its name has a new id: Produce v13 and Fetch v13+
    /// address it by this, so a request routed by an old snapshot is refused
    /// (UNKNOWN_TOPIC_ID) instead of landing in the new topic.
    pub(crate) fn topic_id(&self, topic: &str) -> Option<[u8; 16]> {
        self.cluster.topic(topic)?.id
    }
}

/// Which topics a refresh asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicsQuery {
    /// Every topic in the cluster.
    All,
    /// These topics (plus those already of interest).
    Some(Vec<String>),
}

/// The cache itself.
#[derive(Debug)]
pub(crate) struct MetadataCache {
    current: RwLock<Arc<Snapshot>>,
    /// Held while a refresh is in flight: makes refreshes single-flight.
    pub(crate) refresh_lock: tokio::sync::Mutex<()>,
    /// Topics someone asked about; every refresh includes them so they stay current.
    interest: Mutex<BTreeSet<String>>,
}

impl MetadataCache {
    pub(crate) fn new() -> MetadataCache {
        MetadataCache {
            current: RwLock::new(Arc::new(Snapshot {
                generation: 0,
                fetched_at: None,
                cluster: ClusterMetadata::default(),
            })),
            refresh_lock: tokio::sync::Mutex::new(()),
            interest: Mutex::new(BTreeSet::new()),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap().clone()
    }

    pub(crate) fn add_interest<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let mut interest = self.interest.lock().unwrap();
        for t in topics {
            if !interest.contains(t) {
                interest.insert(t.to_owned());
            }
        }
    }

    /// Stops refreshing these topics (they were deleted): asking for them again could
    /// re-create them on brokers with auto-creation on.
    pub(crate) fn remove_interest<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let mut interest = self.interest.lock().unwrap();
        for t in topics {
            interest.remove(t);
        }
    }

    pub(crate) fn interest(&self) -> Vec<String> {
        self.interest.lock().unwrap().iter().cloned().collect()
    }

    /// Installs a response as the next generation. After a partial refresh, topics of
    /// interest the response did not cover are carried over from the previous snapshot;
    /// topics no longer of interest (deleted ones) are dropped. Topics the response reports
    /// as unknown replace the old entry, so deletions by others are seen.
    pub(crate) fn install(&self, fresh: ClusterMetadata, covered_all: bool) -> Arc<Snapshot> {
        let interest = self.interest.lock().unwrap().clone();
        let mut current = self.current.write().unwrap();
        let mut cluster = fresh;
        if !covered_all {
            let fresh_names: std::collections::HashSet<&str> =
                cluster.topics.iter().map(|t| t.name.as_str()).collect();
            let carried: Vec<TopicMetadata> = current
                .cluster
                .topics
                .iter()
                .filter(|t| !fresh_names.contains(t.name.as_str()) && interest.contains(&t.name))
                .cloned()
                .collect();
            cluster.topics.extend(carried);
            cluster.topics.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let next = Arc::new(Snapshot {
            generation: current.generation + 1,
            fetched_at: Some(Instant::now()),
            cluster,
        });
        *current = next.clone();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, leader: i32) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            id: None,
            internal: false,
            partitions: vec![PartitionMetadata {
                id: 0,
                leader: Some(leader),
                leader_epoch: Some(1),
                replicas: vec![leader],
                isr: vec![leader],
                offline_replicas: vec![],
                error: None,
            }],
            error: None,
        }
    }

    #[test]
    fn partial_refresh_keeps_other_topics_and_bumps_generation() {
        let cache = MetadataCache::new();
        cache.add_interest(["a", "b"]);
        let g1 = cache.install(
            ClusterMetadata {
                topics: vec![topic("a", 1), topic("b", 1)],
                ..Default::default()
            },
            true,
        );
        assert_eq!(g1.generation, 1);
        let g2 = cache.install(
            ClusterMetadata {
                topics: vec![topic("a", 2)],
                ..Default::default()
            },
            false,
        );
        assert_eq!(g2.generation, 2);
        assert_eq!(g2.leader("a", 0), Some(2));
        assert_eq!(
            g2.leader("b", 0),
            Some(1),
            "b was not refreshed and must be kept"
        );
        let g3 = cache.install(
            ClusterMetadata {
                topics: vec![topic("c", 3)],
                ..Default::default()
            },
            true,
        );
        assert!(
            g3.cluster.topic("b").is_none(),
            "a full refresh drops topics that are gone"
        );
        cache.install(
            ClusterMetadata {
                topics: vec![topic("a", 1), topic("b", 1)],
                ..Default::default()
            },
            true,
        );
        cache.remove_interest(["b"]);
        let g5 = cache.install(ClusterMetadata::default(), false);
        assert!(g5.cluster.topic("a").is_some());
        assert!(
            g5.cluster.topic("b").is_none(),
            "a topic no longer of interest is dropped"
        );
    }

    #[test]
    fn lookups_by_name_and_id() {
        let mut c = ClusterMetadata {
            topics: vec![topic("z", 1), topic("m", 2)],
            brokers: vec![BrokerMetadata {
                id: 5,
                host: "::1".into(),
                port: 9,
                rack: None,
            }],
            ..Default::default()
        };
        c.topics.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(c.topic("m").unwrap().partition(0).unwrap().leader, Some(2));
        assert!(c.topic("q").is_none());
        assert_eq!(c.broker(5).unwrap().address(), "[::1]:9");
        assert!(c.broker(6).is_none());
    }
}
