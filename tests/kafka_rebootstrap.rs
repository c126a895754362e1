//! Rebootstrap (KIP-899) on a real 3-node Apache Kafka 4.4 cluster: every broker of the
//! cluster goes away at once and comes back on new ports, behind the same bootstrap address
//! (a test-side TCP forwarder, `common/forwarder.rs`, re-pointed at the moved cluster as an
//! operator would re-point a DNS name). The brokers advertise their real new ports; the
//! forwarder only serves bootstrap.
//!
//! - A producer and a consumer built before the move keep working after it, on the client
//!   they were built from: every record sent after the move is acknowledged and consumed,
//!   and the client's metadata names the new ports. (No known broker answers any more, so
//!   only the bootstrap address can lead the client back.)
//! - A client with `metadata.recovery.strategy=none`, built before the move, stays lost: it
//!   keeps to the brokers it knew, so its metadata request fails. This is what shows that
//!   the rebootstrap is what brings the first client back.

mod common;
#[path = "common/forwarder.rs"]
mod forwarder;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{unique_topic, within};
use ferrokafka::{Client, Consumer, NewTopic, OffsetReset, Producer, Record, TopicPartition};
use forwarder::Forwarder;

const PARTITIONS: i32 = 3;
const RECORDS: usize = 30;

/// A client of `bootstrap` with the given extra properties and a short reconnect backoff.
async fn new_client(bootstrap: &str, extra: &[(&str, &str)]) -> Client {
    let mut props = vec![
        ("bootstrap.servers", bootstrap),
        ("reconnect.backoff.max.ms", "500"),
    ];
    props.extend_from_slice(extra);
    within(
        "client",
        ferrokafka::ClientBuilder::from_properties(props).build(),
    )
    .await
    .unwrap()
}

/// Sends `RECORDS` records named `prefix-i` and waits for every acknowledgement.
async fn send_all(producer: &Producer, topic: &str, prefix: &str) -> Vec<String> {
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let value = format!("{prefix}-{i}");
        let r = Record::new(topic)
            .value(value.clone())
            .partition(i as i32 % PARTITIONS);
        deliveries.push((value, producer.send(r).await.unwrap()));
    }
    let mut sent = Vec::new();
    for (value, d) in deliveries {
        // Up to the delivery timeout: the producer rides out the move on its own.
        tokio::time::timeout(Duration::from_secs(150), d)
            .await
            .unwrap_or_else(|_| panic!("{value} not acknowledged in 150 s"))
            .unwrap_or_else(|e| panic!("{value} failed: {e}"));
        sent.push(value);
    }
    sent
}

/// Receives until every value of `want` arrived (others may arrive too), within `limit`.
async fn receive_all(consumer: &Consumer, want: &[String], limit: Duration) {
    let mut missing: HashSet<&str> = want.iter().map(String::as_str).collect();
    let deadline = Instant::now() + limit;
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the consumer still misses {} records: {missing:?}",
                    missing.len()
                )
            })
            .unwrap_or_else(|e| panic!("consumer error: {e}"));
        let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        missing.remove(value.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_follow_a_cluster_that_moved_to_new_ports_through_the_bootstrap_address() {
    common::init_tracing();
    let started = Instant::now();
    let mut cluster = common::kafka_cluster(3);
    let forwarder = Forwarder::start(&cluster.address(1)).await;
    let bootstrap = forwarder.address();

    let client = new_client(&bootstrap, &[]).await;
    let lost = new_client(
        &bootstrap,
        &[
            ("metadata.recovery.strategy", "none"),
            ("default.api.timeout.ms", "5000"),
        ],
    )
    .await;
    let topic = unique_topic("moving");
    within(
        "create topic",
        client
            .admin()
            .create_topics(&[NewTopic::new(&topic, PARTITIONS, 3)]),
    )
    .await
    .unwrap();
    within("metadata", lost.metadata(&[&topic])).await.unwrap();

    let producer = Producer::builder(&client)
        .set("delivery.timeout.ms", "120000")
        .set("linger.ms", "5")
        .build()
        .await
        .unwrap();
    let consumer = Consumer::builder(&client)
        .offset_reset(OffsetReset::Earliest)
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    within("assign", consumer.assign(&tps)).await.unwrap();
    let before = send_all(&producer, &topic, "before").await;
    receive_all(&consumer, &before, Duration::from_secs(60)).await;
    let old_addresses: Vec<String> = cluster
        .node_ids()
        .into_iter()
        .map(|id| cluster.address(id))
        .collect();

    // Every broker gone at once, then back on new ports; the bootstrap name follows.
    for id in cluster.node_ids() {
        cluster.kill(id);
    }
    let moved_at = Instant::now();
    let new_bootstrap = cluster.restart_all_on_new_ports();
    forwarder.switch(&cluster.address(1));
    for old in &old_addresses {
        assert!(
            !new_bootstrap.contains(old.as_str()),
            "{old} reused: the move proves nothing"
        );
    }

    let after = send_all(&producer, &topic, "after").await;
    receive_all(&consumer, &after, Duration::from_secs(120)).await;
    let brokers: Vec<String> = client
        .cached_metadata()
        .brokers
        .iter()
        .map(|b| b.address())
        .collect();
    for b in &brokers {
        assert!(
            new_bootstrap.contains(b.as_str()),
            "the client still names {b} (new brokers: {new_bootstrap})"
        );
    }
    let recovered_in = moved_at.elapsed();

    // Without rebootstrap the other client knows only the dead addresses.
    let e = within("metadata without rebootstrap", lost.metadata(&[&topic]))
        .await
        .expect_err("a client with metadata.recovery.strategy=none found the moved cluster");
    eprintln!("metadata.recovery.strategy=none: {e}");

    eprintln!(
        "rebootstrap: {} records before and {} after the move; recovered {:.1} s after the \
         restart began; {:.1} s in all",
        before.len(),
        after.len(),
        recovered_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    producer.close(Duration::from_secs(10)).await.unwrap();
    consumer.close().await.unwrap();
    client.close().await;
    lost.close().await;
}
