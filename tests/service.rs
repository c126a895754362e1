//! What a service needs from the client (issue 13): processed offsets
//! (`enable.auto.offset.store=false` + `store_offset`), `max.poll.records`, subscribing before
//! a topic exists, deleting a missing topic, and a client built before its broker is up.
//!
//! The generic tests run on a fresh Tansu, or on real Kafka with `FERROKAFKA_BROKER=kafka`;
//! the ones about topic creation and deletion always use the shared real Kafka node (Tansu
//! cannot be asked to leave a topic uncreated), the start-up ones a Tansu started after the
//! client was built.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{broker_with_topic, create_topic, unique_topic, within, Broker, Tansu};
use ferrokafka::{
    Client, Consumer, ConsumerBuilder, ConsumerRecord, Error, KafkaCode, NewTopic, OffsetReset,
    Producer, Record, TopicPartition,
};
use futures::StreamExt;

/// Produces `n` records `v0..` to partition 0 of `topic`.
async fn produce(client: &Client, topic: &str, n: usize) {
    let producer = Producer::builder(client).build().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let r = Record::new(topic).partition(0).value(format!("v{i}"));
        pending.push(producer.send(r).await.unwrap());
    }
    for d in pending {
        within("delivery", d).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// A group consumer tuned for Tansu's slow join rounds (session.timeout.ms / 2 each).
fn group_consumer(client: &Client, group: &str) -> ConsumerBuilder {
    Consumer::builder(client)
        .group_id(group)
        .offset_reset(OffsetReset::Earliest)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.max.wait.ms", "100")
        .set("auto.commit.interval.ms", "100")
}

async fn committed(c: &Consumer, topic: &str) -> Option<i64> {
    let tp = TopicPartition::new(topic, 0);
    within("committed", c.committed(std::slice::from_ref(&tp)))
        .await
        .unwrap()[&tp]
}

/// The scenario: records handed out by the stream but not processed must not be
/// committed. With `enable.auto.offset.store=false` only stored offsets are: the group's
/// committed offset stays where processing stopped, whether the consumer is dropped (as by a
/// crash) or closed, and a new member starts there.
#[tokio::test]
async fn with_auto_store_off_only_processed_records_are_committed() {
    let (_broker, client, topic) = broker_with_topic("svc-store", 1).await;
    produce(&client, &topic, 100).await;
    let group = unique_topic("svc-store-g");

    // 64 records handed out (as `for_each_concurrent(64)` takes them), none processed; the
    // consumer is dropped without close after several auto-commit intervals.
    let c = group_consumer(&client, &group)
        .auto_offset_store(false)
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let taken: Vec<ConsumerRecord> = within("stream", c.stream().take(64).collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(taken.last().unwrap().offset, 63);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(committed(&c, &topic).await, None, "nothing was processed");
    // Ten processed: they, and only they, are committed by the next auto-commit.
    for r in &taken[..10] {
        c.store_offset(r).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while committed(&c, &topic).await != Some(10) {
        assert!(
            Instant::now() < deadline,
            "stored offset 10 not auto-committed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(committed(&c, &topic).await, Some(10));
    drop(c);

    // A new member starts after the last processed record, and a close commits the stored
    // offset (20), not what was handed out (30).
    let c = group_consumer(&client, &group)
        .auto_offset_store(false)
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let first = within("recv", c.recv()).await.unwrap();
    assert_eq!(first.offset, 10, "restarts where processing stopped");
    let mut last = first;
    for _ in 0..19 {
        last = within("recv", c.recv()).await.unwrap();
    }
    assert_eq!(last.offset, 29);
    let mut upto = HashMap::new();
    upto.insert(TopicPartition::new(&topic, 0), 20);
    c.store_offsets(&upto).unwrap();
    // Stores are checked: a partition not assigned, and a negative offset.
    let e = c
        .store_offsets(&HashMap::from([(TopicPartition::new(&topic, 7), 1)]))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidState(_)), "{e}");
    assert!(e.to_string().contains("not assigned"), "{e}");
    within("close", c.close()).await.unwrap();
    let probe = group_consumer(&client, &group).build().await.unwrap();
    assert_eq!(committed(&probe, &topic).await, Some(20));
    // With the default (auto store on), store_offset is refused, as librdkafka does.
    let e = probe.store_offset(&last).unwrap_err();
    assert!(
        e.to_string().contains("enable.auto.offset.store=false"),
        "{e}"
    );
    client.close().await;
}

/// The property form, as a port from librdkafka writes it, and a manual `commit()` with auto
/// store off: it commits what was stored.
#[tokio::test]
async fn commit_sends_the_stored_offsets() {
    let (_broker, client, topic) = broker_with_topic("svc-commit", 1).await;
    produce(&client, &topic, 20).await;
    let group = unique_topic("svc-commit-g");
    let c = group_consumer(&client, &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let mut records = Vec::new();
    for _ in 0..15 {
        records.push(within("recv", c.recv()).await.unwrap());
    }
    within("commit", c.commit()).await.unwrap();
    assert_eq!(committed(&c, &topic).await, None, "nothing stored yet");
    c.store_offset(&records[4]).unwrap();
    within("commit", c.commit()).await.unwrap();
    assert_eq!(committed(&c, &topic).await, Some(5));
    within("close", c.close()).await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn max_poll_records_caps_what_one_batch_hands_out() {
    let (_broker, client, topic) = broker_with_topic("svc-maxpoll", 1).await;
    produce(&client, &topic, 60).await;
    let c = Consumer::builder(&client)
        .offset_reset(OffsetReset::Earliest)
        .set("max.poll.records", "7")
        .build()
        .await
        .unwrap();
    c.assign(&[TopicPartition::new(&topic, 0)]).await.unwrap();
    let mut got = 0;
    while got < 60 {
        let batch = within("recv_batch", c.recv_batch(1000)).await.unwrap();
        assert!(
            (1..=7).contains(&batch.len()),
            "batch of {} records",
            batch.len()
        );
        assert_eq!(batch[0].offset, got as i64, "in order, none skipped");
        got += batch.len();
    }
    assert_eq!(got, 60);
    c.close().await.unwrap();
    client.close().await;
}

/// Warnings ferrokafka logs, captured for the assertions (the subscriber also prints them).
fn warnings() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            std::io::stderr().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter("ferrokafka=warn")
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .init();
        log
    })
}

fn logged(needle: &str) -> bool {
    String::from_utf8_lossy(&warnings().lock().unwrap()).contains(needle)
}

/// Subscribing to a topic that does not exist is not an error; a warning names it, and
/// once it is created the consumer reads it within seconds (not `metadata.max.age.ms`).
/// Real Kafka, with auto-creation off for this client, so the topic exists only once the
/// test creates it.
#[tokio::test]
async fn a_topic_created_after_subscribe_is_consumed_within_seconds() {
    warnings();
    let kafka = common::kafka();
    let client = within(
        "client",
        Client::builder()
            .bootstrap_servers(kafka.bootstrap())
            .allow_auto_create_topics(false)
            .build(),
    )
    .await
    .unwrap();
    let topic = unique_topic("svc-late");
    let c = Consumer::builder(&client)
        .group_id(unique_topic("svc-late-g"))
        .offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logged(&format!("subscribed topic {topic} does not exist")) {
        assert!(
            Instant::now() < deadline,
            "no warning naming {topic}:\n{}",
            String::from_utf8_lossy(&warnings().lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    create_topic(&client, &topic, 2).await;
    let created = Instant::now();
    let producer = Producer::builder(&client).build().await.unwrap();
    let d = within("send", producer.send(Record::new(&topic).value("late"))).await;
    within("delivery", d.unwrap()).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(15), c.recv())
        .await
        .unwrap_or_else(|_| panic!("nothing received within 15 s of creating {topic}"))
        .unwrap();
    assert_eq!(r.value.as_deref(), Some(&b"late"[..]));
    eprintln!("received {:?} after creation", created.elapsed());
    producer.close(Duration::from_secs(5)).await.unwrap();
    c.close().await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn deleting_a_missing_topic_fails_at_once() {
    let client = common::connect(&common::kafka().bootstrap()).await;
    let topic = unique_topic("svc-never");
    let started = Instant::now();
    let e = within("delete", client.admin().delete_topics(&[&topic]))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        e.kafka_code(),
        Some(KafkaCode::UnknownTopicOrPartition),
        "{e:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}: {e}");
    // The topic was not created along the way.
    let e2 = client.admin().delete_topics(&[&topic]).await.unwrap_err();
    assert_eq!(e2.kafka_code(), Some(KafkaCode::UnknownTopicOrPartition));
    client.close().await;
}

/// A pod that starts before Kafka: with `lazy_connect` the client, a producer and a consumer
/// are built while nothing listens, and work once the broker is up. The eager default
/// still fails at once.
#[tokio::test]
async fn a_lazy_client_built_before_the_broker_works_once_it_is_up() {
    let mut tansu = Tansu::start();
    tansu.kill();
    let bootstrap = tansu.bootstrap();

    let started = Instant::now();
    let e = Client::builder()
        .bootstrap_servers(&bootstrap)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoBrokerAvailable { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "eager build is prompt"
    );

    let started = Instant::now();
    let client = within(
        "lazy build",
        Client::builder()
            .bootstrap_servers(&bootstrap)
            .lazy_connect(true)
            .build(),
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let e = client
        .wait_ready(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(e.is_retriable(), "{e}");
    let producer = Producer::builder(&client).build().await.unwrap();
    let consumer = Consumer::builder(&client)
        .group_id(unique_topic("svc-lazy-g"))
        .offset_reset(OffsetReset::Earliest)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .build()
        .await
        .unwrap();
    let topic = unique_topic("svc-lazy");
    consumer.subscribe(&[&topic]).await.unwrap();
    // A send issued while the broker is down waits (within max.block.ms) instead of failing.
    let p = producer.clone();
    let t = topic.clone();
    let send = tokio::spawn(async move { p.send(Record::new(t).value("hello")).await });

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!send.is_finished(), "send waits for the broker");
    tansu.restart();
    within("ready", client.wait_ready(Duration::from_secs(30)))
        .await
        .unwrap();
    let delivery = within("send", send).await.unwrap().unwrap();
    within("delivery", delivery).await.unwrap();
    let r = within("recv", consumer.recv()).await.unwrap();
    assert_eq!(r.value.as_deref(), Some(&b"hello"[..]));

    // Property form, for builders that make their own client.
    let own = ferrokafka::ProducerBuilder::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("connect.lazily", "true"),
    ])
    .build()
    .await
    .unwrap();
    own.close(Duration::from_secs(5)).await.unwrap();
    producer.close(Duration::from_secs(5)).await.unwrap();
    consumer.close().await.unwrap();
    client.close().await;
}

/// Same broker, created topic, the lazy client used against a broker that is already up:
/// nothing changes for it (generic: Tansu or real Kafka).
#[tokio::test]
async fn a_lazy_client_against_a_running_broker() {
    let broker = Broker::start();
    let client = Client::builder()
        .bootstrap_servers(broker.bootstrap())
        .lazy_connect(true)
        .build()
        .await
        .unwrap();
    within("ready", client.wait_ready(Duration::from_secs(30)))
        .await
        .unwrap();
    let topic = unique_topic("svc-lazy-up");
    client
        .admin()
        .create_topics(&[NewTopic::new(&topic, 1, 1)])
        .await
        .unwrap();
    produce(&client, &topic, 3).await;
    client.close().await;
}
