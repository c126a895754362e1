//! The admin client against real Apache Kafka 4.4: every operation's success and a typed
//! error, on the shared single node (`common::kafka()`), except ACLs and SCRAM logins, which
//! need an authorizer and a SASL listener: one dedicated node has both
//! ([`secured`]).
//!
//! - topics: create (configs, explicit assignment, validate-only; a batch where one topic
//!   fails and the other is created), describe, list, add partitions, delete;
//! - configs: describe with sources and synonyms, incremental alter of a topic and a broker;
//! - records: list offsets (earliest, latest, timestamp, max timestamp), delete records;
//! - groups: list (state and type filters), describe, delete, committed offsets (list,
//!   alter, delete) for a classic group with a live ferrokafka member and a KIP-848 group
//!   with a librdkafka member (`group.protocol=consumer`); lag of 100 partitions, exact;
//! - cluster (features), leader elections, producers and transactions;
//! - ACLs (create, describe, delete, and what they allow) and SCRAM credentials (describe,
//!   upsert and a login with it, delete).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka::KafkaOptions;
use common::{connect, create_topic, unique_topic, within};
use ferrokafka::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclResourceType, Admin,
    AlterConfigOp, Client, CommitOffset, ConfigResource, ConfigSource, Consumer,
    CreateTopicsOptions, ElectionType, Error, GroupState, GroupType, KafkaCode, ListGroupsOptions,
    ListTransactionsOptions, NewPartitions, NewTopic, OffsetSpec, Producer, Record, ResourceResult,
    SaslMechanism, ScramChange, ScramMechanism, SecurityProtocol, TopicPartition,
};

async fn kafka_client() -> Client {
    connect(&common::kafka().bootstrap()).await
}

/// The broker's error code of a per-resource result that must have failed.
fn code_of<K: std::fmt::Debug, T: std::fmt::Debug>(r: &ResourceResult<K, T>) -> KafkaCode {
    match &r.result {
        Err(e) => e
            .kafka_code()
            .unwrap_or_else(|| panic!("{:?}: not a broker error: {e}", r.resource)),
        Ok(v) => panic!("{:?} succeeded ({v:?}) but should have failed", r.resource),
    }
}

fn ok<K: std::fmt::Debug, T: Clone>(r: &ResourceResult<K, T>) -> T {
    match &r.result {
        Ok(v) => v.clone(),
        Err(e) => panic!("{:?} failed: {e}", r.resource),
    }
}

/// Polls `check` until it returns `Ok`. Brokers answer reads (Metadata, DescribeAcls,
/// DescribeConfigs, DescribeUserScramCredentials) from their copy of the metadata log, which
/// trails the controller's answer to a change by a moment. Fails after 30 s with the last
/// state `check` reported.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match within(what, check()).await {
            Ok(v) => return v,
            Err(state) if Instant::now() < deadline => {
                let _ = state;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(state) => panic!("{what}: still {state} after 30 s"),
        }
    }
}

/// Produces `counts[p]` records to partition `p` of `topic` and waits for every delivery.
async fn produce_counts(client: &Client, topic: &str, counts: &[usize]) {
    let producer = Producer::builder(client)
        .set("linger.ms", "5")
        .build()
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for (p, n) in counts.iter().enumerate() {
        for i in 0..*n {
            let record = Record::new(topic)
                .partition(p as i32)
                .value(format!("v{p}-{i}"));
            deliveries.push(within("send", producer.send(record)).await.unwrap());
        }
    }
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn topics_create_describe_grow_and_delete_with_per_topic_results() {
    let client = kafka_client().await;
    let admin = client.admin();
    let node = common::kafka().node_ids()[0];
    let (a, b, c) = (
        unique_topic("adm-a"),
        unique_topic("adm-b"),
        unique_topic("adm-c"),
    );

    // Validate-only creates nothing.
    let checked = within(
        "validate",
        admin.create_topics_with(
            &[NewTopic::new(&a, 3, 1)],
            &CreateTopicsOptions::new().validate_only(true),
        ),
    )
    .await
    .unwrap();
    ok(&checked[0]);
    let described = within("describe a", admin.describe_topics(&[&a]))
        .await
        .unwrap();
    assert_eq!(code_of(&described[0]), KafkaCode::UnknownTopicOrPartition);

    // Created with a config override, and one with an explicit assignment on this node.
    let created = within(
        "create",
        admin.create_topics_with(
            &[
                NewTopic::new(&a, 3, 1).config("retention.ms", "3600000"),
                NewTopic::with_assignments(&b, vec![vec![node], vec![node]]),
            ],
            &CreateTopicsOptions::new(),
        ),
    )
    .await
    .unwrap();
    let a_created = ok(&created[0]);
    assert_eq!((a_created.partitions, a_created.replication_factor), (3, 1));
    let a_id = a_created
        .topic_id
        .clone()
        .expect("CreateTopics v7 reports the id");
    assert_eq!(ok(&created[1]).partitions, 2);

    // A partial failure: `a` exists, `c` is new; an assignment naming a broker that does
    // not exist is refused for its topic alone.
    let mixed = within(
        "create again",
        admin.create_topics_with(
            &[
                NewTopic::new(&a, 3, 1),
                NewTopic::new(&c, 1, 1),
                NewTopic::with_assignments(unique_topic("adm-bad"), vec![vec![9999]]),
            ],
            &CreateTopicsOptions::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(code_of(&mixed[0]), KafkaCode::TopicAlreadyExists);
    ok(&mixed[1]);
    assert_eq!(code_of(&mixed[2]), KafkaCode::InvalidReplicaAssignment);
    // The all-or-nothing form reports the failing topic by name.
    let e = within("create a", admin.create_topics(&[NewTopic::new(&a, 1, 1)]))
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::TopicAlreadyExists), "{e}");
    assert!(e.to_string().contains(&a), "{e}");

    // Describe: partitions with leaders, replicas, ISR, the id, authorized operations.
    let described = within("describe", admin.describe_topics(&[&a, &b, "adm-missing"]))
        .await
        .unwrap();
    let da = ok(&described[0]);
    assert_eq!(da.topic_id.as_deref(), Some(a_id.as_str()));
    assert!(!da.internal);
    assert_eq!(da.partitions.len(), 3);
    for p in &da.partitions {
        assert_eq!(p.leader, Some(node));
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![node], vec![node])
        );
    }
    let ops = da
        .authorized_operations
        .expect("Metadata v8+ reports authorized operations");
    assert!(
        ops.contains(&AclOperation::Read) && ops.contains(&AclOperation::Alter),
        "{ops:?}"
    );
    assert_eq!(ok(&described[1]).partitions.len(), 2);
    assert_eq!(code_of(&described[2]), KafkaCode::UnknownTopicOrPartition);

    // List: ours without internals; `__consumer_offsets` (once any group has committed)
    // only with them.
    let listed = within("list", admin.list_topics()).await.unwrap();
    assert!(listed.contains(&a) && listed.contains(&b) && listed.contains(&c));
    assert!(listed.iter().all(|t| !t.starts_with("__")), "{listed:?}");
    let all = within("list all", admin.list_topics_with(true))
        .await
        .unwrap();
    assert!(listed.iter().all(|t| all.contains(t)));

    // Partitions: grow 3 -> 5; shrinking and unknown topics fail per topic.
    let grown = within(
        "create partitions",
        admin.create_partitions(
            &[
                NewPartitions::increase_to(&a, 5),
                NewPartitions::increase_to(&b, 1),
                NewPartitions::increase_to("adm-missing", 4),
            ],
            false,
        ),
    )
    .await
    .unwrap();
    ok(&grown[0]);
    assert_eq!(code_of(&grown[1]), KafkaCode::InvalidPartitions);
    assert_eq!(code_of(&grown[2]), KafkaCode::UnknownTopicOrPartition);
    eventually("describe grown", || async {
        let d = admin.describe_topics(&[&a]).await.unwrap();
        match ok(&d[0]).partitions.len() {
            5 => Ok(()),
            n => Err(format!("{n} partitions")),
        }
    })
    .await;

    // Delete: one result per topic.
    let deleted = within(
        "delete",
        admin.delete_topics_each(&[&a, &b, &c, "adm-missing"]),
    )
    .await
    .unwrap();
    for r in &deleted[..3] {
        ok(r);
    }
    assert_eq!(code_of(&deleted[3]), KafkaCode::UnknownTopicOrPartition);
    client.close().await;
}

#[tokio::test]
async fn configs_describe_with_sources_and_alter_incrementally() {
    let client = kafka_client().await;
    let admin = client.admin();
    let node = common::kafka().node_ids()[0];
    let topic = unique_topic("adm-cfg");
    within(
        "create",
        admin.create_topics(&[NewTopic::new(&topic, 1, 1)
            .config("retention.ms", "3600000")
            .config("min.insync.replicas", "1")]),
    )
    .await
    .unwrap();
    let entry = |entries: &[ferrokafka::ConfigEntry], name: &str| {
        entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    let res = ConfigResource::topic(&topic);
    let described = within(
        "describe",
        admin.describe_configs(&[res.clone(), ConfigResource::topic("adm-missing")]),
    )
    .await
    .unwrap();
    let entries = ok(&described[0]);
    let retention = entry(&entries, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert_eq!(retention.synonyms[0].source, ConfigSource::DynamicTopic);
    // Synonyms, in precedence order: the override first, then the broker settings it
    // overrides (Kafka 4.4's format writes a cluster-wide dynamic default; the harness sets
    // a static one in server.properties), Kafka's default last.
    let isr = entry(&entries, "min.insync.replicas");
    let synonyms: Vec<(&str, ConfigSource)> = isr
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.source))
        .collect();
    assert_eq!(
        synonyms,
        vec![
            ("min.insync.replicas", ConfigSource::DynamicTopic),
            ("min.insync.replicas", ConfigSource::DynamicDefaultBroker),
            ("min.insync.replicas", ConfigSource::StaticBroker),
            ("min.insync.replicas", ConfigSource::Default)
        ]
    );
    assert_eq!(
        entry(&entries, "cleanup.policy").source,
        ConfigSource::Default
    );
    assert_eq!(code_of(&described[1]), KafkaCode::UnknownTopicOrPartition);

    // Validate-only changes nothing; a real change sets one value and removes another.
    let changes = [(
        res.clone(),
        vec![
            AlterConfigOp::set("max.message.bytes", "200000"),
            AlterConfigOp::delete("retention.ms"),
        ],
    )];
    let alter = |validate_only| admin.incremental_alter_configs(&changes, validate_only);
    ok(&within("validate", alter(true)).await.unwrap()[0]);
    let entries = ok(&within(
        "describe",
        admin.describe_configs(std::slice::from_ref(&res)),
    )
    .await
    .unwrap()[0]);
    assert_eq!(
        entry(&entries, "retention.ms").value.as_deref(),
        Some("3600000")
    );
    ok(&within("alter", alter(false)).await.unwrap()[0]);
    eventually("describe altered", || async {
        let d = admin
            .describe_configs(std::slice::from_ref(&res))
            .await
            .unwrap();
        let entries = ok(&d[0]);
        let max = entry(&entries, "max.message.bytes");
        let retention = entry(&entries, "retention.ms");
        match (max.value.as_deref(), max.source, retention.source) {
            (Some("200000"), ConfigSource::DynamicTopic, s) if s != ConfigSource::DynamicTopic => {
                Ok(())
            }
            state => Err(format!("{state:?}")),
        }
    })
    .await;

    // Typed errors per resource: a bad value, an unknown topic.
    let bad = within(
        "alter bad",
        admin.incremental_alter_configs(
            &[
                (
                    res.clone(),
                    vec![AlterConfigOp::set("retention.ms", "soon")],
                ),
                (
                    ConfigResource::topic("adm-missing"),
                    vec![AlterConfigOp::set("retention.ms", "1000")],
                ),
            ],
            false,
        ),
    )
    .await
    .unwrap();
    assert_eq!(code_of(&bad[0]), KafkaCode::InvalidConfig);
    assert_eq!(code_of(&bad[1]), KafkaCode::UnknownTopicOrPartition);

    // A broker: its static settings, and a per-broker dynamic value set and removed.
    let broker = ConfigResource::broker(node);
    let entries = ok(&within(
        "describe broker",
        admin.describe_configs(std::slice::from_ref(&broker)),
    )
    .await
    .unwrap()[0]);
    assert_eq!(
        entry(&entries, "num.io.threads").source,
        ConfigSource::StaticBroker
    );
    ok(&within(
        "alter broker",
        admin.incremental_alter_configs(
            &[(
                broker.clone(),
                vec![AlterConfigOp::set("log.cleaner.backoff.ms", "16000")],
            )],
            false,
        ),
    )
    .await
    .unwrap()[0]);
    // Brokers apply dynamic settings from the metadata log: a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let entries = ok(&within(
            "describe broker",
            admin.describe_configs(std::slice::from_ref(&broker)),
        )
        .await
        .unwrap()[0]);
        let backoff = entry(&entries, "log.cleaner.backoff.ms");
        if (backoff.value.as_deref(), backoff.source)
            == (Some("16000"), ConfigSource::DynamicBroker)
        {
            break;
        }
        assert!(Instant::now() < deadline, "never applied: {backoff:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ok(&within(
        "reset broker",
        admin.incremental_alter_configs(
            &[(
                broker.clone(),
                vec![AlterConfigOp::delete("log.cleaner.backoff.ms")],
            )],
            false,
        ),
    )
    .await
    .unwrap()[0]);
    // Not a number: Kafka 4.4 refuses a bad broker value with INVALID_REQUEST (a bad topic
    // value, above, is INVALID_CONFIG).
    let bad = within(
        "alter broker bad",
        admin.incremental_alter_configs(
            &[(
                broker,
                vec![AlterConfigOp::set("log.cleaner.backoff.ms", "soon")],
            )],
            false,
        ),
    )
    .await
    .unwrap();
    assert_eq!(code_of(&bad[0]), KafkaCode::InvalidRequest);
    admin.delete_topics(&[&topic]).await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn list_offsets_and_delete_records() {
    let client = kafka_client().await;
    let admin = client.admin();
    let topic = unique_topic("adm-rec");
    create_topic(&client, &topic, 2).await;
    // Partition 0: ten records with CreateTimes 1000, 2000, …, except that the seventh has
    // the highest (99000): what MaxTimestamp finds.
    let producer = Producer::builder(&client).build().await.unwrap();
    for i in 0..10i64 {
        let ts = if i == 6 { 99_000 } else { (i + 1) * 1000 };
        let record = Record::new(&topic).partition(0).value("x").timestamp(ts);
        within("send", async { producer.send(record).await?.await })
            .await
            .unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    let tp0 = TopicPartition::new(&topic, 0);
    let tp1 = TopicPartition::new(&topic, 1);
    let asks = [
        (tp0.clone(), OffsetSpec::Earliest),
        (tp1.clone(), OffsetSpec::Latest),
        (TopicPartition::new(&topic, 7), OffsetSpec::Latest),
        (TopicPartition::new("adm-missing", 0), OffsetSpec::Latest),
    ];
    let found = within("list offsets", admin.list_offsets_many(&asks))
        .await
        .unwrap();
    assert_eq!(ok(&found[0]).offset, 0);
    assert_eq!(ok(&found[1]).offset, 0, "partition 1 is empty");
    assert_eq!(code_of(&found[2]), KafkaCode::UnknownTopicOrPartition);
    assert_eq!(code_of(&found[3]), KafkaCode::UnknownTopicOrPartition);
    // Looking a topic up never creates it, though this broker auto-creates topics.
    let again = within("list offsets again", admin.list_offsets_many(&asks[3..]))
        .await
        .unwrap();
    assert_eq!(code_of(&again[0]), KafkaCode::UnknownTopicOrPartition);
    let topics = within("list topics", admin.list_topics()).await.unwrap();
    assert!(!topics.iter().any(|t| t == "adm-missing"), "{topics:?}");
    let one = |spec| admin.list_offsets(&topic, 0, spec);
    assert_eq!(within("latest", one(OffsetSpec::Latest)).await.unwrap(), 10);
    assert_eq!(
        within("by time", one(OffsetSpec::Timestamp(3500)))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        within("after the last", one(OffsetSpec::Timestamp(200_000)))
            .await
            .unwrap(),
        -1
    );
    let max = within(
        "max timestamp",
        admin.list_offsets_many(&[(tp0.clone(), OffsetSpec::MaxTimestamp)]),
    )
    .await
    .unwrap();
    let max = ok(&max[0]);
    assert_eq!((max.offset, max.timestamp), (6, 99_000));

    // Delete before 4: the low watermark moves; past the high watermark is refused.
    let deleted = within(
        "delete records",
        admin.delete_records(&[
            (tp0.clone(), 4),
            (tp1.clone(), 5),
            (TopicPartition::new("adm-missing", 0), 1),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(ok(&deleted[0]), 4);
    assert_eq!(code_of(&deleted[1]), KafkaCode::OffsetOutOfRange);
    assert_eq!(code_of(&deleted[2]), KafkaCode::UnknownTopicOrPartition);
    assert_eq!(
        within("earliest", one(OffsetSpec::Earliest)).await.unwrap(),
        4
    );
    // -1: everything up to the high watermark.
    let all = within("delete all", admin.delete_records(&[(tp0, -1)]))
        .await
        .unwrap();
    assert_eq!(ok(&all[0]), 10);
    admin.delete_topics(&[&topic]).await.unwrap();
    client.close().await;
}

/// A ferrokafka member of a classic group, consuming (never committing) until dropped.
struct ClassicMember {
    consumer: Arc<Consumer>,
    task: tokio::task::JoinHandle<()>,
}

impl ClassicMember {
    async fn join(group: &str, topic: &str, partitions: usize) -> ClassicMember {
        let client = Client::builder()
            .bootstrap_servers(common::kafka().bootstrap())
            .client_id("lag-member")
            .build()
            .await
            .unwrap();
        let consumer = Consumer::builder(&client)
            .group_id(group)
            .set("enable.auto.commit", "false")
            .build()
            .await
            .unwrap();
        consumer.subscribe(&[topic]).await.unwrap();
        let consumer = Arc::new(consumer);
        let reader = consumer.clone();
        let task = tokio::spawn(async move { while reader.recv().await.is_ok() {} });
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer.assignment().len() < partitions {
            assert!(
                Instant::now() < deadline,
                "the member never got its partitions"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ClassicMember { consumer, task }
    }

    async fn leave(self) {
        self.task.abort();
        let _ = self.task.await;
        within("close member", self.consumer.close()).await.unwrap();
    }
}

#[tokio::test]
async fn group_lag_of_a_hundred_partitions_is_exact_and_names_the_live_member() {
    let client = kafka_client().await;
    let admin = client.admin();
    let topic = unique_topic("adm-lag");
    let group = unique_topic("adm-lag-group");
    const N: usize = 100;
    create_topic(&client, &topic, N as i32).await;
    // Partition p gets 1 + p % 4 records, and the group commits p % 2 of them (alter
    // offsets: an empty group may be given offsets by an admin).
    let before: Vec<usize> = (0..N).map(|p| 1 + p % 4).collect();
    produce_counts(&client, &topic, &before).await;
    let commits: Vec<(TopicPartition, CommitOffset)> = (0..N)
        .map(|p| {
            (
                TopicPartition::new(&topic, p as i32),
                CommitOffset::new((p % 2) as i64),
            )
        })
        .collect();
    let altered = within("alter offsets", admin.alter_group_offsets(&group, &commits))
        .await
        .unwrap();
    ResourceResult::into_result(altered).unwrap();
    // More records after the commit: partition p gets p % 3 more.
    let after: Vec<usize> = (0..N).map(|p| p % 3).collect();
    produce_counts(&client, &topic, &after).await;

    let started = Instant::now();
    let lag = within("lag", admin.group_lag(&group)).await.unwrap();
    let took = started.elapsed();
    assert_eq!(lag.len(), N);
    for row in &lag {
        let p = row.partition.partition as usize;
        let end = (before[p] + after[p]) as i64;
        let committed = (p % 2) as i64;
        assert_eq!(row.committed, Some(committed), "{row:?}");
        assert_eq!(row.log_end_offset, Some(end), "{row:?}");
        assert_eq!(row.lag, Some(end - committed), "{row:?}");
        assert!(row.member.is_none() && row.error.is_none(), "{row:?}");
    }
    eprintln!("lag of {N} partitions in {} ms", took.as_millis());

    // The committed offsets, listed; an empty group's description.
    let listed = within("list offsets", admin.list_group_offsets(&group, None))
        .await
        .unwrap();
    assert_eq!(listed.len(), N);
    let described = within("describe empty", admin.describe_groups(&[&group]))
        .await
        .unwrap();
    assert_eq!(ok(&described[0]).state, GroupState::Empty);

    // A live member: it shows in every row, and the group refuses deletion.
    let member = ClassicMember::join(&group, &topic, N).await;
    let lag = within("lag with member", admin.group_lag(&group))
        .await
        .unwrap();
    assert_eq!(lag.len(), N);
    for row in &lag {
        let m = row
            .member
            .as_ref()
            .unwrap_or_else(|| panic!("no member: {row:?}"));
        assert_eq!(m.client_id, "lag-member");
    }
    let d = ok(
        &within("describe", admin.describe_groups(&[&group, "adm-no-group"]))
            .await
            .unwrap()[0],
    );
    assert_eq!(d.protocol, GroupType::Classic);
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].assignment.len(), N);
    assert_eq!(d.members[0].subscribed_topics, vec![topic.clone()]);
    assert!(!d.assignor.is_empty());
    let missing = within("describe missing", admin.describe_groups(&["adm-no-group"]))
        .await
        .unwrap();
    assert_eq!(code_of(&missing[0]), KafkaCode::GroupIdNotFound);

    let stable = within(
        "list stable classic",
        admin.list_groups(
            &ListGroupsOptions::new()
                .state(GroupState::Stable)
                .group_type(GroupType::Classic),
        ),
    )
    .await
    .unwrap();
    let ours = stable.iter().find(|g| g.group_id == group).expect("listed");
    assert_eq!(ours.state, Some(GroupState::Stable));
    assert_eq!(ours.group_type, Some(GroupType::Classic));
    let empty = within(
        "list empty",
        admin.list_groups(&ListGroupsOptions::new().state(GroupState::Empty)),
    )
    .await
    .unwrap();
    assert!(empty.iter().all(|g| g.group_id != group));

    let refused = within("delete live", admin.delete_groups(&[&group]))
        .await
        .unwrap();
    assert_eq!(code_of(&refused[0]), KafkaCode::NonEmptyGroup);
    let tp0 = TopicPartition::new(&topic, 0);
    let refused = within(
        "delete offsets live",
        admin.delete_group_offsets(&group, std::slice::from_ref(&tp0)),
    )
    .await
    .unwrap();
    assert_eq!(code_of(&refused[0]), KafkaCode::GroupSubscribedToTopic);
    let refused = within(
        "alter offsets live",
        admin.alter_group_offsets(&group, &[(tp0.clone(), CommitOffset::new(0))]),
    )
    .await
    .unwrap();
    assert!(
        refused[0].result.is_err(),
        "an admin commit into a live group"
    );

    // Once the member left: offsets can be deleted, then the group.
    member.leave().await;
    ok(&within(
        "delete offsets",
        admin.delete_group_offsets(&group, std::slice::from_ref(&tp0)),
    )
    .await
    .unwrap()[0]);
    let listed = within("list after delete", admin.list_group_offsets(&group, None))
        .await
        .unwrap();
    assert_eq!(listed.len(), N - 1);
    assert!(listed.iter().all(|r| r.resource != tp0));
    // Only some partitions, asked by name.
    let some = [
        TopicPartition::new(&topic, 1),
        TopicPartition::new(&topic, 2),
    ];
    let listed = within("list some", admin.list_group_offsets(&group, Some(&some)))
        .await
        .unwrap();
    let offsets: Vec<i64> = listed.iter().map(|r| ok(r).offset).collect();
    assert_eq!(offsets, vec![1, 0]);

    let all = within("list all topics", admin.list_topics_with(true))
        .await
        .unwrap();
    assert!(all.iter().any(|t| t == "__consumer_offsets"), "{all:?}");
    assert!(!within("list topics", admin.list_topics())
        .await
        .unwrap()
        .iter()
        .any(|t| t == "__consumer_offsets"));

    ok(&within("delete group", admin.delete_groups(&[&group]))
        .await
        .unwrap()[0]);
    let gone = within("delete again", admin.delete_groups(&[&group]))
        .await
        .unwrap();
    assert_eq!(code_of(&gone[0]), KafkaCode::GroupIdNotFound);
    let e = within("lag of nothing", admin.group_lag(&group))
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::GroupIdNotFound), "{e}");
    admin.delete_topics(&[&topic]).await.unwrap();
    client.close().await;
}

/// A librdkafka member of a KIP-848 group (`group.protocol=consumer`), polling on a thread
/// of its own until stopped.
struct ConsumerProtocolMember {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConsumerProtocolMember {
    fn join(group: &str, topic: &str) -> ConsumerProtocolMember {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", common::kafka().bootstrap())
            .set("group.id", group)
            .set("group.protocol", "consumer")
            .set("client.id", "kip848-member")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            consumer.unsubscribe();
            let _ = consumer.poll(Duration::from_millis(200));
        });
        ConsumerProtocolMember {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ConsumerProtocolMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test]
async fn a_kip_848_group_is_listed_described_and_lagged() {
    let client = kafka_client().await;
    let admin = client.admin();
    let topic = unique_topic("adm-848");
    let group = unique_topic("adm-848-group");
    create_topic(&client, &topic, 3).await;
    produce_counts(&client, &topic, &[2, 3, 4]).await;
    let member = ConsumerProtocolMember::join(&group, &topic);

    // The coordinator assigns all three partitions to the one member (reconciled).
    let deadline = Instant::now() + Duration::from_secs(60);
    let d = loop {
        let r = within("describe", admin.describe_groups(&[&group]))
            .await
            .unwrap()
            .remove(0);
        if let Ok(d) = &r.result {
            if d.state == GroupState::Stable
                && d.members.len() == 1
                && d.members[0].assignment.len() == 3
            {
                break d.clone();
            }
        }
        assert!(Instant::now() < deadline, "never stable: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(d.protocol, GroupType::Consumer);
    assert_eq!(d.protocol_type, "consumer");
    assert!(d.group_epoch.is_some_and(|e| e > 0));
    assert!(!d.assignor.is_empty());
    let m = &d.members[0];
    assert_eq!(m.client_id, "kip848-member");
    assert_eq!(m.target_assignment.as_ref(), Some(&m.assignment));
    assert_eq!(m.subscribed_topics, vec![topic.clone()]);

    let consumers = within(
        "list consumer groups",
        admin.list_groups(&ListGroupsOptions::new().group_type(GroupType::Consumer)),
    )
    .await
    .unwrap();
    let ours = consumers
        .iter()
        .find(|g| g.group_id == group)
        .expect("listed");
    assert_eq!(ours.group_type, Some(GroupType::Consumer));
    let classic = within(
        "list classic groups",
        admin.list_groups(&ListGroupsOptions::new().group_type(GroupType::Classic)),
    )
    .await
    .unwrap();
    assert!(classic.iter().all(|g| g.group_id != group));

    // Nothing committed: rows for the assigned partitions, with the member, no lag yet.
    let lag = within("lag", admin.group_lag(&group)).await.unwrap();
    assert_eq!(lag.len(), 3);
    for (row, end) in lag.iter().zip([2, 3, 4]) {
        assert_eq!(row.committed, None, "{row:?}");
        assert_eq!(row.log_end_offset, Some(end), "{row:?}");
        assert_eq!(row.lag, None, "{row:?}");
        assert_eq!(
            row.member.as_ref().map(|m| m.client_id.as_str()),
            Some("kip848-member")
        );
    }
    let refused = within("delete live", admin.delete_groups(&[&group]))
        .await
        .unwrap();
    assert_eq!(code_of(&refused[0]), KafkaCode::NonEmptyGroup);
    drop(member);
    admin.delete_topics(&[&topic]).await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn cluster_features_elections_producers_and_transactions() {
    let client = kafka_client().await;
    let admin = client.admin();
    let node = common::kafka().node_ids()[0];
    let cluster = within("describe cluster", admin.describe_cluster_details())
        .await
        .unwrap();
    assert!(!cluster.cluster_id.is_empty());
    assert_eq!(cluster.controller_id, Some(node));
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(
        (cluster.brokers[0].id, cluster.brokers[0].fenced),
        (node, false)
    );
    let level = |name: &str| {
        cluster
            .finalized_features
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.max)
    };
    // What a fresh format of Kafka 4.4 finalizes (the harness's default).
    assert_eq!(level("transaction.version"), Some(2));
    assert_eq!(level("group.version"), Some(1));
    assert!(level("metadata.version").is_some());
    assert!(cluster.finalized_features_epoch.is_some());
    assert!(cluster
        .supported_features
        .iter()
        .any(|f| f.name == "metadata.version"));
    assert!(cluster.authorized_operations.is_some());
    let basic = within("describe cluster", admin.describe_cluster())
        .await
        .unwrap();
    assert_eq!(
        basic.cluster_id.as_deref(),
        Some(cluster.cluster_id.as_str())
    );

    let topic = unique_topic("adm-txn");
    create_topic(&client, &topic, 2).await;
    // The only replica already leads: nothing to elect; unknown partitions fail alone.
    let elected = within(
        "elect",
        admin.elect_leaders(
            ElectionType::Preferred,
            Some(&[
                TopicPartition::new(&topic, 0),
                TopicPartition::new("adm-missing", 0),
            ]),
        ),
    )
    .await
    .unwrap();
    let by_tp: BTreeMap<_, _> = elected.iter().map(|r| (r.resource.clone(), r)).collect();
    assert_eq!(
        code_of(by_tp[&TopicPartition::new(&topic, 0)]),
        KafkaCode::ElectionNotNeeded
    );
    assert_eq!(
        code_of(by_tp[&TopicPartition::new("adm-missing", 0)]),
        KafkaCode::UnknownTopicOrPartition
    );

    // An open transaction: its producer, its listing and its description.
    let tid = unique_topic("adm-tid");
    let producer = Producer::builder(&client)
        .set("transactional.id", &tid)
        .build()
        .await
        .unwrap();
    within("init", producer.init_transactions()).await.unwrap();
    producer.begin_transaction().unwrap();
    within("send", async {
        producer
            .send(Record::new(&topic).partition(1).value("in a transaction"))
            .await?
            .await
    })
    .await
    .unwrap();
    let tp1 = TopicPartition::new(&topic, 1);
    let producers = within(
        "describe producers",
        admin.describe_producers(&[tp1.clone(), TopicPartition::new(&topic, 9)]),
    )
    .await
    .unwrap();
    let active = ok(&producers[0]);
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].current_txn_start_offset, Some(0));
    assert_eq!(code_of(&producers[1]), KafkaCode::UnknownTopicOrPartition);

    let ongoing = within(
        "list transactions",
        admin.list_transactions(&ListTransactionsOptions::new().state("Ongoing")),
    )
    .await
    .unwrap();
    let listed = ongoing
        .iter()
        .find(|t| t.transactional_id == tid)
        .expect("the open transaction is listed");
    assert_eq!(listed.producer_id, active[0].producer_id);
    assert_eq!(listed.coordinator, node);
    let described = within(
        "describe transactions",
        admin.describe_transactions(&[&tid, "adm-no-such-tid"]),
    )
    .await
    .unwrap();
    let t = ok(&described[0]);
    assert_eq!(t.state, "Ongoing");
    assert_eq!(t.partitions, vec![tp1.clone()]);
    assert_eq!(t.producer_id, active[0].producer_id);
    assert_eq!(code_of(&described[1]), KafkaCode::TransactionalIdNotFound);

    within("commit", producer.commit_transaction())
        .await
        .unwrap();
    // The coordinator writes the commit marker after answering EndTxn: the transaction is
    // closed on the partition a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let producers = within(
            "describe producers",
            admin.describe_producers(std::slice::from_ref(&tp1)),
        )
        .await
        .unwrap();
        let open = ok(&producers[0])[0].current_txn_start_offset;
        if open.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the transaction stays open at {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    // ACLs need an authorizer, which this node has not: a typed refusal.
    let e = within(
        "acls without authorizer",
        admin.describe_acls(&AclBindingFilter::any()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::SecurityDisabled), "{e}");
    admin.delete_topics(&[&topic]).await.unwrap();
    client.close().await;
}

/// A dedicated node with the standard authorizer (the PLAINTEXT listener's ANONYMOUS is a
/// super user, as the admin) and a SASL_PLAINTEXT listener taking SCRAM logins.
fn secured() -> common::kafka::KafkaCluster {
    let jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
    common::kafka_cluster_with(
        KafkaOptions::new(1, common::logs_dir())
            .listener("SASL_PLAINTEXT", "SASL_PLAINTEXT")
            .property(
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )
            .property("super.users", "User:ANONYMOUS")
            .property("sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512")
            .property(
                "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config",
                jaas,
            )
            .property(
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
                jaas,
            ),
    )
}

/// A client logging in as `user` over SCRAM-SHA-256 on the SASL listener.
async fn scram_login(
    cluster: &common::kafka::KafkaCluster,
    user: &str,
    password: &str,
) -> Result<Client, Error> {
    let node = cluster.node_ids()[0];
    Client::builder()
        .bootstrap_servers(cluster.listener_address(node, "SASL_PLAINTEXT"))
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl(SaslMechanism::ScramSha256, user, password)
        .api_timeout(Duration::from_secs(10))
        .build()
        .await
}

#[tokio::test]
async fn acls_and_scram_credentials_on_a_secured_node() {
    common::init_tracing();
    let cluster = secured();
    common::wait_for_brokers(&cluster, 1);
    let client = connect(&cluster.bootstrap()).await;
    let admin: Admin = client.admin();
    let user = "carol";
    let password = "carol-secret";

    // SCRAM: nobody yet; upsert SHA-256 and SHA-512, then log in with the first.
    let none = within(
        "describe scram",
        admin.describe_scram_credentials(Some(&[user])),
    )
    .await
    .unwrap();
    assert_eq!(code_of(&none[0]), KafkaCode::ResourceNotFound);
    // Kafka alters one credential per user and request: naming a user twice fails both.
    let twice = within(
        "upsert twice",
        admin.alter_scram_credentials(&[
            ScramChange::upsert(user, ScramMechanism::Sha256, password),
            ScramChange::upsert(user, ScramMechanism::Sha512, password),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(code_of(&twice[0]), KafkaCode::DuplicateResource);
    for change in [
        ScramChange::upsert(user, ScramMechanism::Sha256, password),
        ScramChange::upsert(user, ScramMechanism::Sha512, password).iterations(4096),
    ] {
        let upserted = within("upsert scram", admin.alter_scram_credentials(&[change]))
            .await
            .unwrap();
        ResourceResult::into_result(upserted).unwrap();
    }
    let creds = eventually("describe scram", || async {
        let d = admin
            .describe_scram_credentials(Some(&[user]))
            .await
            .unwrap();
        match &d[0].result {
            Ok(c) if c.credentials.len() == 2 => Ok(c.credentials.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let iterations = |m| {
        creds
            .iter()
            .find(|c| c.mechanism == m)
            .map(|c| c.iterations)
    };
    assert_eq!(iterations(ScramMechanism::Sha256), Some(8192));
    assert_eq!(iterations(ScramMechanism::Sha512), Some(4096));
    // The broker learns credentials through the metadata log: a moment later the password
    // (salted here, never sent) logs in, and a wrong one does not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let carol = loop {
        match scram_login(&cluster, user, password).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("login not yet: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("carol cannot log in with her upserted password: {e}"),
        }
    };
    let e = scram_login(&cluster, user, "wrong").await.unwrap_err();
    assert!(matches!(e, Error::SaslAuthenticationFailed { .. }), "{e}");
    let e = within(
        "bad iterations",
        admin.alter_scram_credentials(&[ScramChange::upsert(
            user,
            ScramMechanism::Sha256,
            password,
        )
        .iterations(10)]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");

    // ACLs: carol may not describe the topic until an ACL allows it.
    let topic = unique_topic("adm-acl");
    create_topic(&client, &topic, 1).await;
    let denied = within("carol describes", carol.admin().describe_topics(&[&topic]))
        .await
        .unwrap();
    assert_eq!(code_of(&denied[0]), KafkaCode::TopicAuthorizationFailed);
    let binding = AclBinding::new(
        AclResourceType::Topic,
        &topic,
        "User:carol",
        AclOperation::Describe,
        AclPermission::Allow,
    );
    let bad = AclBinding::new(
        AclResourceType::Topic,
        &topic,
        "carol-without-type",
        AclOperation::Read,
        AclPermission::Allow,
    );
    let created = within(
        "create acls",
        admin.create_acls_each(&[binding.clone(), bad]),
    )
    .await
    .unwrap();
    ok(&created[0]);
    assert_eq!(code_of(&created[1]), KafkaCode::InvalidRequest);
    // Brokers answer DescribeAcls from their copy of the metadata log, a moment behind.
    let filter = AclBindingFilter::any().resource(AclResourceType::Topic, &topic);
    let acls_eventually = |want: Vec<AclBinding>| {
        let admin = admin.clone();
        let filter = filter.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let listed = within("describe acls", admin.describe_acls(&filter))
                    .await
                    .unwrap();
                if listed == want {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "ACLs stay {listed:?}, not {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    acls_eventually(vec![binding.clone()]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = within("carol describes", carol.admin().describe_topics(&[&topic]))
            .await
            .unwrap();
        match &r[0].result {
            Ok(d) => {
                assert_eq!(d.authorized_operations, Some(vec![AclOperation::Describe]));
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("ACL not applied yet: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("the ACL never allowed carol: {e}"),
        }
    }
    let deleted = within(
        "delete acls",
        admin.delete_acls(&[AclBindingFilter::exact(&binding)]),
    )
    .await
    .unwrap();
    assert_eq!(ok(&deleted[0]), vec![binding]);
    acls_eventually(Vec::new()).await;
    // carol may not change ACLs herself.
    let e = within(
        "carol creates acls",
        carol.admin().create_acls(&[AclBinding::new(
            AclResourceType::Topic,
            &topic,
            "User:carol",
            AclOperation::All,
            AclPermission::Allow,
        )]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.kafka_code(),
        Some(KafkaCode::ClusterAuthorizationFailed),
        "{e}"
    );
    carol.close().await;

    // SCRAM deletion: the credential goes; deleting it again is a typed error.
    let removed = within(
        "delete scram",
        admin.alter_scram_credentials(&[ScramChange::delete(user, ScramMechanism::Sha512)]),
    )
    .await
    .unwrap();
    ok(&removed[0]);
    let again = within(
        "delete scram again",
        admin.alter_scram_credentials(&[ScramChange::delete(user, ScramMechanism::Sha512)]),
    )
    .await
    .unwrap();
    assert_eq!(code_of(&again[0]), KafkaCode::ResourceNotFound);
    eventually("describe scram after delete", || async {
        let d = admin
            .describe_scram_credentials(Some(&[user]))
            .await
            .unwrap();
        match &d[0].result {
            Ok(c) if c.credentials.len() == 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    client.close().await;
}
