//! The producer against a real broker (Tansu, or `KAFKA_BOOTSTRAP`), read back by librdkafka.

mod common;

use std::time::Duration;

use common::peer::read_all;
use common::{broker_with_topic, connect, create_topic, unique_topic, within, Broker};
use ferrokafka::{
    Acks, Client, Compression, Error, OffsetSpec, Producer, ProducerBuilder, Record,
    StringSerializer,
};

#[tokio::test]
async fn every_acks_level_is_delivered_and_read_back_by_librdkafka() {
    for acks in [Acks::None, Acks::Leader, Acks::All] {
        let (broker, client, topic) = broker_with_topic("prod", 3).await;
        if acks == Acks::None {
            // Apache Kafka answers CreateTopics once the controller has the topic, and its
            // Metadata may name the leader before that broker has created the partition: a
            // Produce then fails with NOT_LEADER_OR_FOLLOWER, and at acks=0 the broker's only
            // way to say so is closing the connection, taking every request in flight with
            // it (the Java client loses them too). Tansu creates topics synchronously. The
            // test is about delivery at acks=0, so it waits until every leader serves its
            // partition (ListOffsets is answered by the leader's partition itself).
            for p in 0..3 {
                within(
                    "partition served",
                    client.admin().list_offsets(&topic, p, OffsetSpec::Earliest),
                )
                .await
                .unwrap();
            }
        }
        let producer = Producer::builder(&client).acks(acks).build().await.unwrap();
        let mut deliveries = Vec::new();
        for i in 0..300 {
            let r = Record::new(&topic)
                .key(format!("k{i}"))
                .value(format!("v{i}"));
            deliveries.push(producer.send(r).await.unwrap());
        }
        let mut offsets = std::collections::HashMap::new();
        for (i, d) in deliveries.into_iter().enumerate() {
            let m = within("delivery", d).await.unwrap();
            if acks == Acks::None {
                assert_eq!(m.offset, -1, "acks=0 has no offsets");
            } else {
                assert!(m.offset >= 0);
                offsets.insert(format!("k{i}"), (m.partition, m.offset));
            }
        }
        producer.close(Duration::from_secs(10)).await.unwrap();
        let read = read_all(&broker.bootstrap(), &topic, 3, 300, Duration::from_secs(30));
        assert_eq!(
            read.len(),
            300,
            "{acks:?}: librdkafka read {} records",
            read.len()
        );
        for r in &read {
            let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
            let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
            assert_eq!(value, key.replace('k', "v"));
            if acks != Acks::None {
                assert_eq!(
                    offsets[&key],
                    (r.partition, r.offset),
                    "{acks:?}: offset of {key}"
                );
            }
        }
        client.close().await;
    }
}

#[tokio::test]
async fn every_codec_round_trips_with_headers_and_timestamps() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let (broker, client, topic) = broker_with_topic("prod", 1).await;
        let producer = Producer::builder(&client)
            .compression(codec, None)
            .build()
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..200i64 {
            let mut r = Record::new(&topic)
                .key(format!("key-{i}"))
                .value(format!("value {i} ").repeat(5))
                .header("dup", "a")
                .header("dup", "b")
                .timestamp(1_700_000_000_000 + i);
            r.headers.push(ferrokafka::Header::null("null-header"));
            if i % 10 == 0 {
                r.value = None; // a tombstone among them
            }
            deliveries.push(producer.send(r).await.unwrap());
        }
        for d in deliveries {
            within("delivery", d).await.unwrap();
        }
        let read = read_all(&broker.bootstrap(), &topic, 1, 200, Duration::from_secs(30));
        assert_eq!(read.len(), 200, "{codec:?}");
        for (i, r) in read.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(
                r.key.as_deref(),
                Some(format!("key-{i}").as_bytes()),
                "{codec:?}"
            );
            if i % 10 == 0 {
                assert_eq!(r.value, None, "{codec:?}: tombstone");
            } else {
                assert_eq!(
                    r.value.as_deref(),
                    Some(format!("value {i} ").repeat(5).as_bytes())
                );
            }
            assert_eq!(r.timestamp, Some(1_700_000_000_000 + i as i64), "{codec:?}");
            assert_eq!(
                r.headers,
                vec![
                    ("dup".to_owned(), Some(b"a".to_vec())),
                    ("dup".to_owned(), Some(b"b".to_vec())),
                    ("null-header".to_owned(), None)
                ],
                "{codec:?}"
            );
        }
        producer.close(Duration::from_secs(10)).await.unwrap();
        client.close().await;
    }
}

#[tokio::test]
async fn an_oversized_record_fails_alone() {
    let (broker, client, topic) = broker_with_topic("prod", 1).await;
    let producer = Producer::builder(&client)
        .max_request_size(10_000)
        .build()
        .await
        .unwrap();
    let before = producer
        .send(Record::new(&topic).value("before"))
        .await
        .unwrap();
    let e = producer
        .send(Record::new(&topic).value(vec![0u8; 20_000]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    assert!(e.to_string().contains("max.request.size"), "{e}");
    let after = producer
        .send(Record::new(&topic).value("after"))
        .await
        .unwrap();
    assert_eq!(within("before", before).await.unwrap().offset, 0);
    assert_eq!(within("after", after).await.unwrap().offset, 1);
    let read = read_all(&broker.bootstrap(), &topic, 1, 2, Duration::from_secs(20));
    let values: Vec<_> = read.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, vec![b"before".to_vec(), b"after".to_vec()]);
    client.close().await;
}

#[tokio::test]
async fn close_delivers_everything_first() {
    let (broker, client, topic) = broker_with_topic("prod", 2).await;
    // A long linger: nothing would go out for a minute without close() flushing.
    let producer = Producer::builder(&client)
        .linger(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..100 {
        deliveries.push(
            producer
                .send(Record::new(&topic).key(format!("{i}")).value("x"))
                .await
                .unwrap(),
        );
    }
    within("close", producer.close(Duration::from_secs(20)))
        .await
        .unwrap();
    for d in deliveries {
        // Already decided: close returned only after every batch was.
        assert!(within("delivery", d).await.unwrap().offset >= 0);
    }
    let e = producer
        .send(Record::new(&topic).value("late"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Closed), "{e}");
    assert_eq!(
        read_all(&broker.bootstrap(), &topic, 2, 100, Duration::from_secs(20)).len(),
        100
    );
    client.close().await;
}

#[tokio::test]
async fn flush_sends_without_waiting_for_linger() {
    let (_broker, client, topic) = broker_with_topic("prod", 1).await;
    let producer = Producer::builder(&client)
        .linger(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let d = producer.send(Record::new(&topic).value("x")).await.unwrap();
    within("flush", producer.flush()).await.unwrap();
    assert_eq!(within("delivery", d).await.unwrap().offset, 0);
    client.close().await;
}

#[tokio::test]
async fn producer_from_properties_with_typed_serializers() {
    let (broker, client, topic) = broker_with_topic("prod", 1).await;
    let producer = within(
        "build",
        ProducerBuilder::from_properties([
            ("bootstrap.servers", broker.bootstrap().as_str()),
            ("acks", "all"),
            ("linger.ms", "1"),
            ("compression.type", "lz4"),
        ])
        .build(),
    )
    .await
    .unwrap();
    let r = Record::new(&topic)
        .serialize_key(&StringSerializer, "typed")
        .unwrap()
        .value("v");
    within("delivery", producer.send(r).await.unwrap())
        .await
        .unwrap();
    let read = read_all(&broker.bootstrap(), &topic, 1, 1, Duration::from_secs(20));
    assert_eq!(read[0].key.as_deref(), Some(&b"typed"[..]));
    producer.close(Duration::from_secs(5)).await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn bad_configuration_fails_at_build_with_a_clear_message() {
    let broker = Broker::start();
    let client = connect(&broker.bootstrap()).await;
    let cases: Vec<(ProducerBuilder, &str)> = vec![
        (
            Producer::builder(&client)
                .acks(Acks::Leader)
                .idempotence(true),
            "requires acks=all",
        ),
        (
            Producer::builder(&client).set("linger.ms", "-5"),
            "linger.ms",
        ),
        (
            Producer::builder(&client).set("lingr.ms", "5"),
            "unknown configuration property `lingr.ms`",
        ),
        (
            Producer::builder(&client).set("compression.type", "brotli"),
            "compression.type",
        ),
        (
            Producer::builder(&client)
                .buffer_memory(1024)
                .max_request_size(1_000_000),
            "buffer.memory",
        ),
    ];
    for (b, needle) in cases {
        let e = b.build().await.unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{needle}: {e}");
        assert!(
            e.to_string().contains(needle),
            "expected `{needle}` in `{e}`"
        );
    }
    client.close().await;
}

#[tokio::test]
async fn answers_slower_than_the_request_timeout_give_no_duplicates() {
    use common::proxy::DelayProxy;
    // Tansu advertises the proxy's port, so every connection goes through it.
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    let proxy = DelayProxy::start(port_rx).await;
    let tansu = common::Tansu::start_advertising(proxy.port());
    port_tx.send(tansu.port()).unwrap();
    let bootstrap = format!("127.0.0.1:{}", proxy.port());
    let client = within(
        "client",
        Client::builder()
            .bootstrap_servers(&bootstrap)
            .request_timeout(Duration::from_millis(1500))
            .retry_backoff(Duration::from_millis(50), Duration::from_millis(300))
            .build(),
    )
    .await
    .unwrap();
    let topic = unique_topic("slow");
    create_topic(&client, &topic, 1).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    within(
        "warm-up",
        producer
            .send(Record::new(&topic).value("warm-up"))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    // Answers now arrive after the request timeout: the producer gives up on each request
    // (possibly persisted) and retries with the same sequence.
    proxy.set_delay(Duration::from_millis(2500));
    let mut deliveries = Vec::new();
    for i in 0..50 {
        deliveries.push(
            producer
                .send(Record::new(&topic).value(format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.set_delay(Duration::ZERO);
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    // librdkafka's reader blocks; the proxy's tasks need this runtime meanwhile.
    let (b, t) = (bootstrap.clone(), topic.clone());
    let read =
        tokio::task::spawn_blocking(move || read_all(&b, &t, 1, 51, Duration::from_secs(20)))
            .await
            .unwrap();
    let values: Vec<String> = read
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let mut expected = vec!["warm-up".to_owned()];
    expected.extend((0..50).map(|i| format!("v{i}")));
    assert_eq!(
        values, expected,
        "each acknowledged record exactly once, in order"
    );
    client.close().await;
}
