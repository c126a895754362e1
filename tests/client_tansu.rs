//! The client core against a real Kafka-protocol broker: Tansu, or the external cluster named
//! by `KAFKA_BOOTSTRAP` for the tests that do not need to kill the broker.

mod common;

use std::time::Duration;

use common::{create_topic, unique_topic, within, Broker, Tansu};
use ferrokafka::{Client, Error, KafkaCode, NewTopic, OffsetSpec};

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
    let listed = within("list", admin.list_topics()).await.unwrap();
    assert!(!listed.contains(&a), "{a} still listed: {listed:?}");
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
