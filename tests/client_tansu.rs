//! The client core against a real Kafka-protocol broker: Tansu, real Apache Kafka
//! (`FERROKAFKA_BROKER=kafka`: the shared node, and a node of its own for the restart test), or
//! the external cluster named by `KAFKA_BOOTSTRAP` for the tests that do not need to kill the
//! broker.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{create_topic, unique_topic, within, Broker, Tansu};
use ferrokafka::{Client, Error, KafkaCode, NewTopic, OffsetSpec};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

async fn client(bootstrap: &str) -> Client {
    within(
        "client build",
        Client::builder()
            .bootstrap_servers(bootstrap)
            .client_id("ferrokafka-it")
            .request_timeout(Duration::from_secs(10))
            .build(),
    )
    .await
    .unwrap()
}

/// A closed loopback port: bound, then released.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

#[tokio::test]
async fn bootstrap_with_a_dead_address_first() {
    let broker = Broker::start();
    let bootstrap = format!("{},{}", dead_address(), broker.bootstrap());
    let client = client(&bootstrap).await;
    let meta = client.cached_metadata();
    assert!(!meta.brokers.is_empty(), "no brokers in {meta:?}");
    if !broker.is_external() {
        assert_eq!(meta.brokers[0].id, common::TANSU_NODE_ID);
        assert_eq!(meta.brokers[0].address(), broker.bootstrap());
    }
    client.close().await;
}

#[tokio::test]
async fn metadata_describes_created_topics() {
    let broker = Broker::start();
    let client = client(&broker.bootstrap()).await;
    let topic = unique_topic("meta");
    create_topic(&client, &topic, 3).await;
    let meta = within("metadata", client.metadata(&[&topic]))
        .await
        .unwrap();
    let t = meta.topic(&topic).expect("topic in metadata");
    assert_eq!(t.error, None);
    assert_eq!(
        t.partitions.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for p in &t.partitions {
        let leader = p.leader.expect("every partition has a leader");
        assert!(
            meta.broker(leader).is_some(),
            "leader {leader} is not a listed broker"
        );
        assert!(p.replicas.contains(&leader));
    }
    let cluster = within("describe", client.admin().describe_cluster())
        .await
        .unwrap();
    assert_eq!(cluster.brokers, meta.brokers);
    assert!(cluster.topics.is_empty());
    client.close().await;
}

#[tokio::test]
async fn create_list_and_delete_topics() {
    let broker = Broker::start();
    let client = client(&broker.bootstrap()).await;
    let admin = client.admin();
    let a = unique_topic("admin-a");
    let b = unique_topic("admin-b");
    within(
        "create",
        admin.create_topics(&[NewTopic::new(&a, 1, 1), NewTopic::new(&b, 2, 1)]),
    )
    .await
    .unwrap();
    let listed = within("list", admin.list_topics()).await.unwrap();
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");

    let again = within(
        "create twice",
        admin.create_topics(&[NewTopic::new(&a, 1, 1)]),
    )
    .await;
    let e = again.unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::TopicAlreadyExists), "{e}");
    assert!(e.to_string().contains(&a), "the error names the topic: {e}");

    within("delete", admin.delete_topics(&[&a])).await.unwrap();
    // Apache Kafka answers DeleteTopics once the controller has removed the topic; each
    // broker's metadata (what Metadata, hence list_topics, reads) follows a moment later, as
    // the Java admin documents. Tansu deletes synchronously. So the listing is asked again
    // until the topic is gone, within a few seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = within("list", admin.list_topics()).await.unwrap();
        if !listed.contains(&a) || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !listed.contains(&a),
        "{a} still listed 10 s later: {listed:?}"
    );
    assert!(listed.contains(&b));
    // Refreshes after the delete must not bring it back (auto-creation is on by default).
    within("metadata", client.metadata(&[&b])).await.unwrap();
    assert!(
        client.cached_metadata().topic(&a).is_none(),
        "{a} is still cached"
    );
    let listed = within("list", admin.list_topics()).await.unwrap();
    assert!(!listed.contains(&a), "{a} was re-created: {listed:?}");

    let e = within(
        "invalid name",
        admin.create_topics(&[NewTopic::new("bad name", 1, 1)]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    client.close().await;
}

#[tokio::test]
async fn earliest_offset_of_an_empty_partition_is_zero() {
    let broker = Broker::start();
    let client = client(&broker.bootstrap()).await;
    let topic = unique_topic("offsets");
    create_topic(&client, &topic, 2).await;
    let earliest = within(
        "list offsets",
        client.admin().list_offsets(&topic, 1, OffsetSpec::Earliest),
    )
    .await
    .unwrap();
    assert_eq!(earliest, 0);
    client.close().await;
}

#[tokio::test]
async fn reconnects_after_the_broker_restarts() {
    if matches!(std::env::var(common::BROKER_ENV).as_deref(), Ok("kafka")) {
        // The Kafka run restarts a real broker: a node of its own (the shared one must stay
        // up for the other tests), whose log survives the restart.
        return reconnects_after_a_kafka_node_restarts().await;
    }
    let mut tansu = Tansu::start();
    let client = within(
        "client build",
        Client::builder()
            .bootstrap_servers(tansu.bootstrap())
            .request_timeout(Duration::from_secs(5))
            .api_timeout(Duration::from_secs(2))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build(),
    )
    .await
    .unwrap();
    let topic = unique_topic("restart");
    create_topic(&client, &topic, 1).await;

    tansu.kill();
    let e = within("metadata while down", client.metadata(&[&topic]))
        .await
        .unwrap_err();
    assert!(
        e.is_retriable(),
        "a dead broker must give a retriable error: {e}"
    );

    tansu.restart();
    // Memory storage: the topic is gone after the restart; creating it again proves the same
    // client (no rebuild) talks to the new process.
    within(
        "create after restart",
        client.admin().create_topics(&[NewTopic::new(&topic, 1, 1)]),
    )
    .await
    .unwrap();
    let meta = within("metadata after restart", client.metadata(&[&topic]))
        .await
        .unwrap();
    assert_eq!(meta.topic(&topic).unwrap().partitions.len(), 1);
    client.close().await;
}

/// The Kafka run's [`reconnects_after_the_broker_restarts`]: killed (SIGKILL, no controlled
/// shutdown), the node is unreachable and the client says so with a retriable error; restarted
/// on the same port, the same client finds it again, and the topic it created is still there
/// (Kafka keeps its log on disk, where Tansu's memory storage starts empty) and takes writes.
async fn reconnects_after_a_kafka_node_restarts() {
    // A killed node's registration lives until its session times out (9 s by default), and
    // the restarted node waits for that before it serves: a short session keeps it quick.
    let mut kafka = common::kafka_cluster_with(
        common::KafkaOptions::new(1, common::logs_dir())
            .property("broker.session.timeout.ms", "2000")
            .property("broker.heartbeat.interval.ms", "500"),
    );
    let client = within(
        "client build",
        Client::builder()
            .bootstrap_servers(kafka.bootstrap())
            .request_timeout(Duration::from_secs(5))
            .api_timeout(Duration::from_secs(2))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build(),
    )
    .await
    .unwrap();
    let topic = unique_topic("restart");
    create_topic(&client, &topic, 1).await;

    kafka.kill(1);
    let e = within("metadata while down", client.metadata(&[&topic]))
        .await
        .unwrap_err();
    assert!(
        e.is_retriable(),
        "a dead broker must give a retriable error: {e}"
    );

    kafka.restart(1);
    let e = within(
        "create after restart",
        client.admin().create_topics(&[NewTopic::new(&topic, 1, 1)]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.kafka_code(),
        Some(KafkaCode::TopicAlreadyExists),
        "the topic survives a restart: {e}"
    );
    let meta = within("metadata after restart", client.metadata(&[&topic]))
        .await
        .unwrap();
    assert_eq!(meta.topic(&topic).unwrap().partitions.len(), 1);
    let producer = ferrokafka::Producer::builder(&client)
        .build()
        .await
        .unwrap();
    let d = producer
        .send(ferrokafka::Record::new(&topic).value("after restart"))
        .await
        .unwrap();
    assert_eq!(within("delivery", d).await.unwrap().offset, 0);
    producer.close(Duration::from_secs(10)).await.unwrap();
    client.close().await;
}

/// Log output collected in memory, to read what the client logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Every API the client sends, with the lowest version Apache Kafka 4.x still accepts
/// (KIP-896 removed older ones): a chosen version below it would be refused.
const CLIENT_APIS: [(&str, i16); 23] = [
    ("ApiVersions", 0),
    ("Produce", 3),
    ("Fetch", 4),
    ("ListOffsets", 1),
    ("Metadata", 0),
    ("OffsetCommit", 2),
    ("OffsetFetch", 1),
    ("FindCoordinator", 0),
    ("JoinGroup", 0),
    ("Heartbeat", 0),
    ("LeaveGroup", 0),
    ("SyncGroup", 0),
    ("CreateTopics", 2),
    ("DeleteTopics", 1),
    ("InitProducerId", 0),
    ("AddPartitionsToTxn", 0),
    ("AddOffsetsToTxn", 0),
    ("EndTxn", 0),
    ("TxnOffsetCommit", 0),
    ("DescribeCluster", 0),
    ("SaslHandshake", 0),
    ("SaslAuthenticate", 0),
    ("CreateAcls", 2),
];

/// What ferrokafka negotiates with the brokers `cargo xtask install-brokers` installs: the
/// tables in docs/DESIGN.md ("API versions"), measured from this log line.
/// APIs of the admin client, the KIP-848 consumer and share groups: listed in every line
/// (with a version, or `unsupported` on a broker without them, as Tansu for most).
const OPTIONAL_APIS: [&str; 27] = [
    "DescribeAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "IncrementalAlterConfigs",
    "CreatePartitions",
    "DeleteRecords",
    "ListGroups",
    "DescribeGroups",
    "DeleteGroups",
    "OffsetDelete",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
    "DescribeProducers",
    "ListTransactions",
    "DescribeTransactions",
    "ElectLeaders",
    "DescribeTopicPartitions",
    "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe",
    "ShareGroupHeartbeat",
    "ShareGroupDescribe",
    "ShareFetch",
    "ShareAcknowledge",
    "DescribeShareGroupOffsets",
    "AlterShareGroupOffsets",
    "DeleteShareGroupOffsets",
];

const KAFKA_4_4_VERSIONS: &str =
    "ApiVersions v4 Produce v13 Fetch v18 ListOffsets v10 Metadata v13 OffsetCommit v9 \
    OffsetFetch v9 FindCoordinator v6 JoinGroup v9 Heartbeat v4 LeaveGroup v5 SyncGroup v5 \
    DescribeGroups v6 ListGroups v5 SaslHandshake v1 CreateTopics v7 DeleteTopics v6 \
    DeleteRecords v2 InitProducerId v5 AddPartitionsToTxn v3 AddOffsetsToTxn v4 EndTxn v5 \
    TxnOffsetCommit v5 DescribeAcls v3 CreateAcls v3 DeleteAcls v3 DescribeConfigs v4 \
    AlterConfigs v2 SaslAuthenticate v2 CreatePartitions v3 DeleteGroups v2 ElectLeaders v2 \
    IncrementalAlterConfigs v1 OffsetDelete v0 DescribeUserScramCredentials v0 \
    AlterUserScramCredentials v0 DescribeCluster v2 DescribeProducers v0 DescribeTransactions \
    v0 ListTransactions v2 ConsumerGroupHeartbeat v1 ConsumerGroupDescribe v1 \
    DescribeTopicPartitions v0 ShareGroupHeartbeat v1 ShareGroupDescribe v1 ShareFetch v1 \
    ShareAcknowledge v1 DescribeShareGroupOffsets v0 AlterShareGroupOffsets v0 \
    DeleteShareGroupOffsets v0";
const TANSU_0_6_VERSIONS: &str =
    "ApiVersions v4 Produce v11 Fetch v17 ListOffsets v9 Metadata v12 OffsetCommit v9 \
    OffsetFetch v9 FindCoordinator v6 JoinGroup v9 Heartbeat v4 LeaveGroup v5 SyncGroup v5 \
    DescribeGroups v5 ListGroups v5 SaslHandshake v1 CreateTopics v7 DeleteTopics v6 \
    DeleteRecords v2 InitProducerId v5 AddPartitionsToTxn v3 AddOffsetsToTxn v4 EndTxn v4 \
    TxnOffsetCommit v4 DescribeAcls v3 CreateAcls v3 DeleteAcls unsupported DescribeConfigs v4 \
    AlterConfigs unsupported SaslAuthenticate v2 CreatePartitions unsupported DeleteGroups v2 \
    ElectLeaders unsupported IncrementalAlterConfigs v1 OffsetDelete unsupported \
    DescribeUserScramCredentials v0 AlterUserScramCredentials v0 DescribeCluster v1 \
    DescribeProducers unsupported DescribeTransactions unsupported ListTransactions \
    unsupported ConsumerGroupHeartbeat unsupported ConsumerGroupDescribe v0 \
    DescribeTopicPartitions v0 ShareGroupHeartbeat unsupported ShareGroupDescribe unsupported \
    ShareFetch unsupported ShareAcknowledge unsupported DescribeShareGroupOffsets unsupported \
    AlterShareGroupOffsets unsupported DeleteShareGroupOffsets unsupported";

#[tokio::test]
async fn every_connection_logs_a_version_for_every_api_the_client_uses() {
    let log = Captured::default();
    // While a single subscriber is registered, tracing-core decides whether a log statement
    // is wanted by asking the subscriber of whichever thread reaches it first, and caches the
    // answer: another test's thread (no subscriber) would switch the event off for this one
    // too. A second, idle subscriber makes it ask every registered subscriber instead.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // This thread's subscriber only (the runtime of a #[tokio::test] runs here): the
    // connection's debug event is what an operator reads when a broker refuses a request.
    let _guard = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_env_filter("ferrokafka::client::connection=debug")
        .finish()
        .set_default();
    let broker = Broker::start();
    let client = client(&broker.bootstrap()).await;
    // The bootstrap connection, then the broker's own (a partition leader's): both negotiate.
    let topic = unique_topic("versions");
    create_topic(&client, &topic, 1).await;
    within(
        "list offsets",
        client.admin().list_offsets(&topic, 0, OffsetSpec::Earliest),
    )
    .await
    .unwrap();
    client.close().await;
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("API versions negotiated"))
        .collect();
    assert!(lines.len() >= 2, "one event per connection:\n{text}");
    for line in &lines {
        assert!(
            line.contains(&format!("broker=bootstrap {}", broker.bootstrap()))
                || line.contains("broker=broker "),
            "the event names the broker: {line}"
        );
        let apis = line
            .split_once("apis=")
            .unwrap_or_else(|| panic!("no apis field: {line}"))
            .1
            .trim();
        let words: Vec<&str> = apis.split(' ').collect();
        let chosen: HashMap<&str, &str> = words.chunks(2).map(|w| (w[0], w[1])).collect();
        assert_eq!(
            chosen.len(),
            CLIENT_APIS.len() + OPTIONAL_APIS.len(),
            "{apis}"
        );
        for api in OPTIONAL_APIS {
            assert!(chosen.contains_key(api), "{api} missing: {apis}");
        }
        for (api, floor) in CLIENT_APIS {
            let v = chosen
                .get(api)
                .unwrap_or_else(|| panic!("{api} missing: {apis}"));
            let v: i16 = v
                .strip_prefix('v')
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no version of {api} on this broker: {apis}"));
            assert!(v >= floor, "{api} v{v} is below Kafka 4's v{floor}: {apis}");
        }
        let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        match &broker {
            Broker::Kafka(_) => assert_eq!(apis, squeeze(KAFKA_4_4_VERSIONS)),
            Broker::Tansu(_) => assert_eq!(apis, squeeze(TANSU_0_6_VERSIONS)),
            // Any version of any broker: every API has a version, checked above.
            Broker::External(_) => {}
        }
    }
}
