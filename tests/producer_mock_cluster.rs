//! The producer against librdkafka's mock cluster: Java-compatible partitioning, retries and
//! idempotence under injected faults, backpressure.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::peer::{partitions_by_murmur2, read_all};
use common::{mock_cluster, unique_topic, within};
use ferrokafka::{Client, Error, Producer, Record};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

async fn client(bootstrap: &str) -> Client {
    within(
        "client",
        Client::builder()
            .bootstrap_servers(bootstrap)
            .request_timeout(Duration::from_secs(2))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build(),
    )
    .await
    .unwrap()
}

/// Sends `n` records round-robin over `partitions` with values `p:i` (i counting per
/// partition), awaits every delivery, and returns them per partition in send order.
async fn send_numbered(
    producer: &Producer,
    topic: &str,
    partitions: i32,
    n: usize,
) -> BTreeMap<i32, Vec<String>> {
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut deliveries = Vec::new();
    for i in 0..n {
        let p = (i % partitions as usize) as i32;
        let list = sent.entry(p).or_default();
        let value = format!("{p}:{}", list.len());
        list.push(value.clone());
        deliveries.push(
            producer
                .send(Record::new(topic).partition(p).value(value))
                .await
                .unwrap(),
        );
    }
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }
    sent
}

/// Every acknowledged record is in the log exactly once, in send order per partition.
fn assert_exactly_once_in_order(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    sent: &BTreeMap<i32, Vec<String>>,
) {
    let total: usize = sent.values().map(Vec::len).sum();
    let read = read_all(bootstrap, topic, partitions, total, Duration::from_secs(30));
    let mut got: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for r in read {
        got.entry(r.partition)
            .or_default()
            .push((r.offset, String::from_utf8(r.value.unwrap()).unwrap()));
    }
    for (p, values) in sent {
        let mut log = got.remove(p).unwrap_or_default();
        log.sort();
        let log: Vec<String> = log.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            &log, values,
            "partition {p}: log differs from what was acknowledged"
        );
    }
}

#[tokio::test]
async fn keyed_records_land_where_librdkafka_murmur2_puts_them() {
    let mock = mock_cluster(3);
    let topic = unique_topic("murmur");
    mock.create_topic(&topic, 12, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("key-{i}-{}", i * 7919))
        .collect();
    let theirs = partitions_by_murmur2(&bootstrap, &topic, &keys).await;
    let client = client(&bootstrap).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    let mut deliveries = Vec::new();
    for k in &keys {
        deliveries.push((
            k,
            producer
                .send(Record::new(&topic).key(k.clone()).value("x"))
                .await
                .unwrap(),
        ));
    }
    let mut mismatches = 0;
    for (k, d) in deliveries {
        let ours = within("delivery", d).await.unwrap().partition;
        if ours != theirs[k] {
            mismatches += 1;
        }
    }
    assert_eq!(
        mismatches, 0,
        "keys placed differently from librdkafka's murmur2"
    );
    let used: std::collections::BTreeSet<i32> = theirs.values().copied().collect();
    assert_eq!(used.len(), 12, "10 000 keys should cover all 12 partitions");
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn retriable_produce_errors_are_retried_without_loss_or_duplicates() {
    for err in [
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    ] {
        let mock = mock_cluster(3);
        let topic = unique_topic("retry");
        mock.create_topic(&topic, 3, 3).unwrap();
        let bootstrap = mock.bootstrap_servers();
        let client = client(&bootstrap).await;
        let producer = Producer::builder(&client)
            .linger(Duration::from_millis(2))
            .build()
            .await
            .unwrap();
        // Warm up (identity, metadata), then fail the next five Produce requests.
        send_numbered(&producer, &topic, 3, 3).await;
        mock.request_errors(RDKafkaApiKey::Produce, &[err; 5]);
        let sent = send_numbered(&producer, &topic, 3, 600).await;
        producer.close(Duration::from_secs(10)).await.unwrap();
        assert_exactly_once_in_order(&bootstrap, &topic, 3, &with_warm_up(&sent));
        client.close().await;
    }
}

/// `send_numbered` numbers from 0 on every call; the log holds the one-record warm-up per
/// partition (`p:0`) followed by the main run.
fn with_warm_up(sent: &BTreeMap<i32, Vec<String>>) -> BTreeMap<i32, Vec<String>> {
    sent.iter()
        .map(|(p, v)| {
            let mut out = vec![format!("{p}:0")];
            out.extend(v.iter().cloned());
            (*p, out)
        })
        .collect()
}

#[tokio::test]
async fn idempotent_producer_survives_a_leader_move_exactly_once() {
    let mock = mock_cluster(3);
    let topic = unique_topic("idem-move");
    mock.create_topic(&topic, 2, 3).unwrap();
    mock.partition_leader(&topic, 0, Some(1)).unwrap();
    mock.partition_leader(&topic, 1, Some(2)).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let client = client(&bootstrap).await;
    let producer = Producer::builder(&client)
        .linger(Duration::from_millis(1))
        .build()
        .await
        .unwrap();
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut deliveries = Vec::new();
    for i in 0..2000usize {
        if i == 700 {
            mock.partition_leader(&topic, 0, Some(3)).unwrap();
        }
        if i == 1400 {
            mock.request_errors(
                RDKafkaApiKey::Produce,
                &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 3],
            );
        }
        let p = (i % 2) as i32;
        let list = sent.entry(p).or_default();
        let value = format!("{p}:{}", list.len());
        list.push(value.clone());
        deliveries.push(
            producer
                .send(Record::new(&topic).partition(p).value(value))
                .await
                .unwrap(),
        );
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    assert_exactly_once_in_order(&bootstrap, &topic, 2, &sent);
    client.close().await;
}

#[tokio::test]
async fn a_full_buffer_makes_send_wait_and_try_send_fail() {
    let mock = mock_cluster(1);
    let topic = unique_topic("budget");
    mock.create_topic(&topic, 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let client = client(&bootstrap).await;
    let producer = Producer::builder(&client)
        .buffer_memory(64 * 1024)
        .max_request_size(16 * 1024)
        .batch_size(4 * 1024)
        .build()
        .await
        .unwrap();
    send_numbered(&producer, &topic, 1, 1).await;
    // A slow broker: batches stay in flight, holding their bytes.
    mock.broker_round_trip_time(1, Duration::from_millis(1500))
        .unwrap();
    let mut deliveries = Vec::new();
    let mut full = false;
    for _ in 0..1000 {
        match producer
            .try_send(Record::new(&topic).value(vec![1u8; 500]))
            .await
        {
            Ok(d) => deliveries.push(d),
            Err(Error::BufferFull) => {
                full = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(full, "64 KiB of 500-byte records must fill the buffer");
    assert!(
        deliveries.len() < 140,
        "the budget let {} records in",
        deliveries.len()
    );
    // send() waits rather than failing ...
    let waiting = producer.send(Record::new(&topic).value(vec![2u8; 500]));
    let waited = tokio::time::timeout(Duration::from_millis(200), waiting).await;
    assert!(waited.is_err(), "send must wait while the buffer is full");
    // ... and proceeds once deliveries give bytes back.
    mock.broker_round_trip_time(1, Duration::from_millis(0))
        .unwrap();
    let d = within(
        "send after room",
        producer.send(Record::new(&topic).value(vec![3u8; 500])),
    )
    .await
    .unwrap();
    within("delivery", d).await.unwrap();
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn every_acks_level_on_the_mock_cluster() {
    for acks in [
        ferrokafka::Acks::None,
        ferrokafka::Acks::Leader,
        ferrokafka::Acks::All,
    ] {
        let mock = mock_cluster(3);
        let topic = unique_topic("mock-acks");
        mock.create_topic(&topic, 3, 3).unwrap();
        let bootstrap = mock.bootstrap_servers();
        let client = client(&bootstrap).await;
        let producer = Producer::builder(&client).acks(acks).build().await.unwrap();
        let sent = send_numbered(&producer, &topic, 3, 300).await;
        producer.close(Duration::from_secs(10)).await.unwrap();
        assert_exactly_once_in_order(&bootstrap, &topic, 3, &sent);
        client.close().await;
    }
}

#[tokio::test]
async fn sequence_errors_bump_the_epoch_and_deliver_once() {
    // KIP-360: OUT_OF_ORDER_SEQUENCE_NUMBER / UNKNOWN_PRODUCER_ID on a batch that surely was not
    // appended → new epoch, sequences from 0, the batch re-sent; nothing lost or doubled.
    for err in [
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
    ] {
        let mock = mock_cluster(1);
        let topic = unique_topic("kip360");
        mock.create_topic(&topic, 2, 1).unwrap();
        let bootstrap = mock.bootstrap_servers();
        let client = client(&bootstrap).await;
        let producer = Producer::builder(&client).build().await.unwrap();
        send_numbered(&producer, &topic, 2, 2).await;
        mock.request_errors(RDKafkaApiKey::Produce, &[err]);
        let sent = send_numbered(&producer, &topic, 2, 200).await;
        producer.close(Duration::from_secs(10)).await.unwrap();
        assert_exactly_once_in_order(&bootstrap, &topic, 2, &with_warm_up(&sent));
        client.close().await;
    }
}
