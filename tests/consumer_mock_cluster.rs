//! The consumer against librdkafka's mock cluster: injected group errors, a moved coordinator,
//! and a mixed group of ferrokafka and librdkafka members.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{mock_cluster_for_groups as mock_cluster, unique_topic, within};
use ferrokafka::{
    Client, Consumer, ConsumerBuilder, OffsetReset, Producer, Record, TopicPartition,
};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::mocking::MockCoordinator;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

async fn client(bootstrap: &str) -> Client {
    within(
        "client",
        Client::builder()
            .bootstrap_servers(bootstrap)
            .request_timeout(Duration::from_secs(5))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build(),
    )
    .await
    .unwrap()
}

async fn produce(client: &Client, topic: &str, partitions: i32, n: usize) {
    let producer = Producer::builder(client).build().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let r = Record::new(topic)
            .partition((i % partitions as usize) as i32)
            .value(format!("v{i}"));
        pending.push(producer.send(r).await.unwrap());
    }
    for d in pending {
        within("delivery", d).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

fn builder(client: &Client, group: &str) -> ConsumerBuilder {
    Consumer::builder(client)
        .group_id(group)
        .offset_reset(OffsetReset::Earliest)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("fetch.max.wait.ms", "50")
        .set("auto.commit.interval.ms", "300")
        // The mock writes control batches with CRC 0.
        .set("check.crcs", "false")
}

/// Receives until `seen` holds `n` distinct (partition, offset) pairs.
async fn distinct(c: &Consumer, seen: &mut HashSet<(i32, i64)>, n: usize) {
    within("records", async {
        while seen.len() < n {
            let r = c.recv().await.unwrap();
            seen.insert((r.partition, r.offset));
        }
    })
    .await;
}

#[tokio::test]
async fn group_recovers_from_injected_errors_on_every_group_api() {
    use RDKafkaRespErr::*;
    let cluster = mock_cluster(3);
    let topic = unique_topic("cm");
    cluster.create_topic(&topic, 3, 1).unwrap();
    let client = client(&cluster.bootstrap_servers()).await;
    produce(&client, &topic, 3, 600).await;
    let group = unique_topic("g");
    cluster.request_errors(
        RDKafkaApiKey::JoinGroup,
        &[
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        ],
    );
    cluster.request_errors(
        RDKafkaApiKey::SyncGroup,
        &[RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE],
    );
    let c = builder(&client, &group).build().await.unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let mut seen = HashSet::new();
    distinct(&c, &mut seen, 200).await;
    cluster.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
            RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID,
        ],
    );
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        ],
    );
    // Every record arrives despite the rejoins (600 distinct offsets of 600 records).
    distinct(&c, &mut seen, 600).await;
    // A commit after the faults lands.
    within("commit", c.commit()).await.unwrap();
    let committed = c
        .committed(
            &(0..3)
                .map(|p| TopicPartition::new(&topic, p))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(committed.values().flatten().sum::<i64>(), 600);
    assert!(
        c.metrics().rebalances >= 2,
        "the injected errors forced rejoins"
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn coordinator_moved_mid_stream_commits_continue() {
    let cluster = mock_cluster(3);
    let topic = unique_topic("cm");
    cluster.create_topic(&topic, 2, 1).unwrap();
    let client = client(&cluster.bootstrap_servers()).await;
    produce(&client, &topic, 2, 400).await;
    let group = unique_topic("g");
    cluster
        .coordinator(MockCoordinator::Group(group.clone()), 1)
        .unwrap();
    let c = builder(&client, &group)
        .auto_commit(false)
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let mut seen = HashSet::new();
    distinct(&c, &mut seen, 100).await;
    within("commit 1", c.commit()).await.unwrap();
    cluster
        .coordinator(MockCoordinator::Group(group.clone()), 2)
        .unwrap();
    distinct(&c, &mut seen, 200).await;
    within("commit after the move", c.commit()).await.unwrap();
    // The new coordinator holds the positions just committed.
    let read: Vec<TopicPartition> = (0..2)
        .filter(|p| seen.iter().any(|(q, _)| q == p))
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    let committed = within("committed", c.committed(&read)).await.unwrap();
    for tp in &read {
        assert_eq!(committed[tp], c.position(tp).unwrap(), "{tp}");
    }
    c.close().await.unwrap();
}

/// A librdkafka group member polling on its own thread; reports its assignment.
struct RdMember {
    assignment: Arc<Mutex<BTreeSet<(String, i32)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RdMember {
    fn start(bootstrap: &str, group: &str, topic: &str, strategy: &str) -> RdMember {
        let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("partition.assignment.strategy", strategy)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "300")
            .set("auto.offset.reset", "earliest")
            .set("check.crcs", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (assignment.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(50));
                if let Ok(tpl) = consumer.assignment() {
                    let set = tpl
                        .elements()
                        .iter()
                        .map(|e| (e.topic().to_owned(), e.partition()))
                        .collect();
                    *a.lock().unwrap() = set;
                }
            }
            consumer.unsubscribe();
            drop(consumer);
        });
        RdMember {
            assignment,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RdMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test]
async fn mixed_group_with_librdkafka_splits_the_partitions() {
    for strategy in ["range", "cooperative-sticky"] {
        let cluster = mock_cluster(3);
        let topic = unique_topic("mixed");
        cluster.create_topic(&topic, 4, 1).unwrap();
        let client = client(&cluster.bootstrap_servers()).await;
        produce(&client, &topic, 4, 400).await;
        let group = unique_topic("g");
        let c = builder(&client, &group)
            .set("partition.assignment.strategy", strategy)
            .build()
            .await
            .unwrap();
        c.subscribe(&[&topic]).await.unwrap();
        let rd = RdMember::start(&cluster.bootstrap_servers(), &group, &topic, strategy);
        let split = within("mixed split", async {
            loop {
                // Keep polling, as an application does, while the group settles.
                let _ = tokio::time::timeout(Duration::from_millis(50), c.recv()).await;
                let ours: BTreeSet<(String, i32)> = c
                    .assignment()
                    .into_iter()
                    .map(|tp| (tp.topic.to_string(), tp.partition))
                    .collect();
                let theirs = rd.assignment.lock().unwrap().clone();
                if ours.len() == 2 && theirs.len() == 2 && ours.is_disjoint(&theirs) {
                    break (ours, theirs);
                }
            }
        })
        .await;
        let all: BTreeSet<(String, i32)> = split.0.union(&split.1).cloned().collect();
        assert_eq!(all.len(), 4, "{strategy}: every partition owned once");
        drop(rd);
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_fenced_static_member_gets_a_fatal_typed_error() {
    let cluster = mock_cluster(1);
    let topic = unique_topic("fence");
    cluster.create_topic(&topic, 1, 1).unwrap();
    let client = client(&cluster.bootstrap_servers()).await;
    produce(&client, &topic, 1, 50).await;
    let c = builder(&client, &unique_topic("g"))
        .group_instance_id("instance-1")
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let mut seen = HashSet::new();
    distinct(&c, &mut seen, 50).await;
    // Another instance with the same group.instance.id took over: the coordinator fences us.
    cluster.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID],
    );
    let e = within("fenced", c.recv()).await.unwrap_err();
    assert_eq!(
        e.kafka_code(),
        Some(ferrokafka::KafkaCode::FencedInstanceId),
        "{e}"
    );
    // Fatal: every later call says so too.
    let again = within("again", c.recv()).await.unwrap_err();
    assert_eq!(
        again.kafka_code(),
        Some(ferrokafka::KafkaCode::FencedInstanceId)
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_leader_moved_mid_stream_is_followed() {
    let cluster = mock_cluster(3);
    let topic = unique_topic("lead");
    cluster.create_topic(&topic, 1, 3).unwrap();
    cluster.partition_leader(&topic, 0, Some(1)).unwrap();
    let client = client(&cluster.bootstrap_servers()).await;
    produce(&client, &topic, 1, 200).await;
    let c = Consumer::builder(&client)
        .offset_reset(OffsetReset::Earliest)
        .set("fetch.max.wait.ms", "50")
        .set("check.crcs", "false")
        .build()
        .await
        .unwrap();
    c.assign(&[TopicPartition::new(&topic, 0)]).await.unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < 100 {
        offsets.push(within("before", c.recv()).await.unwrap().offset);
    }
    // The old leader answers NOT_LEADER_OR_FOLLOWER from now on; the fetcher refreshes
    // metadata and goes on from the same offset on the new leader.
    cluster.partition_leader(&topic, 0, Some(2)).unwrap();
    produce(&client, &topic, 1, 100).await;
    while offsets.len() < 300 {
        offsets.push(within("after", c.recv()).await.unwrap().offset);
    }
    assert_eq!(
        offsets,
        (0..300).collect::<Vec<i64>>(),
        "in order, no gap, no repeat"
    );
    c.close().await.unwrap();
}

/// Records the revocations the group task announces.
struct CountRevokes(Arc<Mutex<usize>>);

#[ferrokafka::async_trait]
impl ferrokafka::RebalanceListener for CountRevokes {
    async fn revoked(&self, _: &ferrokafka::RebalanceContext, _: &[TopicPartition]) {
        *self.0.lock().unwrap() += 1;
    }
}

/// Offsets a member of an eager (range) group receives while a second member joins and the
/// group rebalances with the first keeping its partition; nothing is committed.
async fn offsets_across_an_eager_rebalance(with_listener: bool) -> Vec<i64> {
    let cluster = mock_cluster(1);
    let topic = unique_topic("kept");
    let other = unique_topic("other");
    cluster.create_topic(&topic, 1, 1).unwrap();
    cluster.create_topic(&other, 1, 1).unwrap();
    let client = client(&cluster.bootstrap_servers()).await;
    produce(&client, &topic, 1, 300).await;
    let group = unique_topic("g");
    let revokes = Arc::new(Mutex::new(0));
    let mut b = builder(&client, &group).auto_commit(false);
    if with_listener {
        b = b.rebalance_listener(CountRevokes(revokes.clone()));
    }
    let a = b.build().await.unwrap();
    a.subscribe(&[&topic]).await.unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < 100 {
        offsets.push(
            within("before the rebalance", a.recv())
                .await
                .unwrap()
                .offset,
        );
    }
    // A member subscribed to another topic: the group rebalances (revoke-before-join) and
    // the range assignor gives `topic` back to `a` in the next generation.
    let b = builder(&client, &group)
        .auto_commit(false)
        .build()
        .await
        .unwrap();
    b.subscribe(&[&other]).await.unwrap();
    // `a` does not poll meanwhile: the group task rebalances on its own.
    within("the rebalance", async {
        while a.metrics().rebalances < 2 || b.assignment().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        a.assignment(),
        vec![TopicPartition::new(&topic, 0)],
        "range gives the partition back"
    );
    assert_eq!(*revokes.lock().unwrap() > 0, with_listener);
    while offsets.last() != Some(&299) {
        offsets.push(
            within("after the rebalance", a.recv())
                .await
                .unwrap()
                .offset,
        );
    }
    b.close().await.unwrap();
    a.close().await.unwrap();
    offsets
}

#[tokio::test]
async fn a_partition_kept_across_an_eager_rebalance_is_not_delivered_twice() {
    // No hook: the application never learnt of the revocation and is still working on what
    // it received (its commit would race a restart from the committed offset), so delivery
    // goes on where it stood.
    let offsets = offsets_across_an_eager_rebalance(false).await;
    let n = offsets.len() as i64;
    assert_eq!(
        offsets,
        (0..n).collect::<Vec<i64>>(),
        "in order, no gap, no repeat"
    );
    // With a `revoked` hook the application was told and may have dropped its work: as in
    // the Java client, the partition starts again at the committed offset (none here, so
    // `auto.offset.reset=earliest`).
    let offsets = offsets_across_an_eager_rebalance(true).await;
    let back = offsets.windows(2).position(|w| w[1] <= w[0]);
    let back = back.map(|i| offsets[i + 1]);
    assert_eq!(back, Some(0), "restarts at the beginning: {offsets:?}");
}
