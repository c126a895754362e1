//! Topic ids on a real Apache Kafka 4.4 node (the shared one, `common::kafka()`): a topic
//! deleted and created again under the same name while a consumer reads it and a producer
//! writes to it.
//!
//! Kafka 4.4 speaks Fetch v13+ and Produce v13, which name topics by id: a request routed by
//! the old topic's id is refused (UNKNOWN_TOPIC_ID), never served from the new topic. The
//! consumer, seeing a new id for an assigned topic, resets its positions by
//! `auto.offset.reset`; the producer reads the id at every send. Here:
//!
//! - the consumer never yields a record of the old topic after one of the new topic, and
//!   yields every record of the new topic (whose partitions hold more records than the old
//!   ones, so fetching on at the old positions would skip the new topic's first records);
//! - a producer writing across the deletion and the re-creation ends up writing into the new
//!   topic: each send either succeeded into it or failed with a typed error, nothing is
//!   acknowledged and missing.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique_topic, within};
use ferrokafka::{
    Client, Consumer, Error, NewTopic, OffsetReset, Producer, Record, TopicPartition,
};

const PARTITIONS: i32 = 2;
/// Records per partition in the old topic, and (more) in the new one.
const OLD_PER_PARTITION: usize = 30;
const NEW_PER_PARTITION: usize = 60;

/// A client that never creates topics by asking for them: a consumer or producer asking for
/// the deleted topic must not bring it back with the broker's defaults.
async fn client() -> Client {
    within(
        "client",
        Client::builder()
            .bootstrap_servers(common::kafka().bootstrap())
            .allow_auto_create_topics(false)
            .build(),
    )
    .await
    .unwrap()
}

/// Writes `values` round-robin over the partitions with a producer of its own (on its own
/// client, so nothing of the client under test is involved) and waits for every delivery.
async fn write(topic: &str, values: impl IntoIterator<Item = String>) {
    let c = client().await;
    let p = Producer::builder(&c).build().await.unwrap();
    let mut deliveries = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let r = Record::new(topic).value(v).partition(i as i32 % PARTITIONS);
        deliveries.push(within("send", p.send(r)).await.unwrap());
    }
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// Every value in `topic` now, read by librdkafka (a client independent of the one under
/// test) from the beginning to the high watermark of each partition.
fn read_independently(topic: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::message::Message as _;
    use rdkafka::{Offset, TopicPartitionList};
    let bootstrap = common::kafka().bootstrap();
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", unique_topic("topic-ids-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("librdkafka consumer");
    let mut ends = Vec::new();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("watermarks of {topic}-{p}: {e}"));
        ends.push(high);
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut values = Vec::new();
    let mut next = vec![0i64; PARTITIONS as usize];
    let deadline = Instant::now() + Duration::from_secs(30);
    while (0..PARTITIONS as usize).any(|p| next[p] < ends[p]) {
        assert!(
            Instant::now() < deadline,
            "librdkafka did not read {topic} to its end"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap_or_else(|e| panic!("librdkafka read of {topic}: {e}"));
            next[m.partition() as usize] = m.offset() + 1;
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    values
}

/// Deletes `topic` and waits until the broker no longer knows it.
async fn delete(c: &Client, topic: &str) {
    within("delete topic", c.admin().delete_topics(&[topic]))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let md = within("metadata", c.metadata(&[topic])).await.unwrap();
        let gone = md.topic(topic).is_none_or(|t| t.error.is_some());
        if gone {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} still listed 30 s after its deletion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `topic`, retrying while the broker still finishes deleting its namesake.
async fn create(c: &Client, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c
            .admin()
            .create_topics(&[NewTopic::new(topic, PARTITIONS, 1)])
            .await
        {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("create {topic}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot create {topic} again: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recreated_topic_never_feeds_old_records_and_receives_the_producers_writes() {
    common::init_tracing();
    let started = Instant::now();
    let admin_client = client().await;
    let topic = unique_topic("recreated");
    create(&admin_client, &topic).await;
    let old: Vec<String> = (0..OLD_PER_PARTITION * PARTITIONS as usize)
        .map(|i| format!("old-{i}"))
        .collect();
    write(&topic, old.clone()).await;
    let old_id = admin_client.metadata(&[&topic]).await.unwrap().topics[0].id;
    assert!(old_id.is_some(), "Kafka 4.4 reports topic ids");

    // The consumer under test: no group, from the beginning, reading in its own task and
    // slowly (so it is in the middle of the old records when the topic goes away).
    let consumer_client = client().await;
    let consumer = Consumer::builder(&consumer_client)
        .offset_reset(OffsetReset::Earliest)
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    within("assign", consumer.assign(&tps)).await.unwrap();
    let consumed: Arc<Mutex<Vec<String>>> = Arc::default();
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let consumed = consumed.clone();
        let slow = slow.clone();
        tokio::spawn(async move {
            loop {
                match consumer.recv().await {
                    Ok(r) => {
                        let v = r.value.as_deref().map(String::from_utf8_lossy);
                        consumed
                            .lock()
                            .unwrap()
                            .push(v.unwrap_or_default().into_owned());
                    }
                    Err(e) => panic!("consumer error across the re-creation: {e}"),
                }
                if slow.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
    };
    // Wait until it is partway through the old topic.
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumed.lock().unwrap().len() < 10 {
        assert!(
            Instant::now() < deadline,
            "the consumer read nothing in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The producer under test: everything before the deletion is acknowledged.
    let producer_client = client().await;
    let producer = Producer::builder(&producer_client)
        .set("delivery.timeout.ms", "20000")
        .set("linger.ms", "5")
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        let r = Record::new(&topic)
            .value(format!("p-old-{i}"))
            .partition(i % PARTITIONS);
        within("send", async { producer.send(r).await?.await })
            .await
            .unwrap();
    }

    delete(&admin_client, &topic).await;
    // Sends while the topic does not exist: each waits for a leader, then either lands in
    // the new topic or fails (delivery timeout) with a typed error.
    let mut mid = Vec::new();
    for i in 0..20 {
        let r = Record::new(&topic)
            .value(format!("p-mid-{i}"))
            .partition(i % PARTITIONS);
        mid.push((
            format!("p-mid-{i}"),
            within("send", producer.send(r)).await.unwrap(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    create(&admin_client, &topic).await;
    let new_id = admin_client.metadata(&[&topic]).await.unwrap().topics[0].id;
    assert!(
        new_id.is_some() && new_id != old_id,
        "the re-created topic has a new id"
    );
    let new: Vec<String> = (0..NEW_PER_PARTITION * PARTITIONS as usize)
        .map(|i| format!("new-{i}"))
        .collect();
    write(&topic, new.clone()).await;
    // After the re-creation every send must succeed, into the new topic.
    let mut after = Vec::new();
    for i in 0..20 {
        let r = Record::new(&topic)
            .value(format!("p-new-{i}"))
            .partition(i % PARTITIONS);
        let d = within("send", producer.send(r)).await.unwrap();
        after.push((format!("p-new-{i}"), d));
    }
    let mut acknowledged = Vec::new();
    for (v, d) in mid {
        match within("delivery", d).await {
            Ok(_) => acknowledged.push(v),
            // A typed error: the delivery timeout or a broker's refusal, never a silent loss.
            Err(e @ (Error::Timeout { .. } | Error::Broker { .. })) => {
                eprintln!("{v} failed: {e}")
            }
            Err(e) => panic!("{v} failed with an unexpected error: {e:?}"),
        }
    }
    for (v, d) in after {
        within("delivery", d)
            .await
            .unwrap_or_else(|e| panic!("{v}, sent after the re-creation, failed: {e}"));
        acknowledged.push(v);
    }

    let in_new: HashSet<String> = read_independently(&topic).into_iter().collect();
    for v in &acknowledged {
        assert!(
            in_new.contains(v),
            "{v} was acknowledged after the deletion but is not in the new topic"
        );
    }
    for v in in_new.iter() {
        assert!(
            !v.starts_with("old-") && !v.starts_with("p-old-"),
            "{v} of the old topic is in the new one"
        );
    }
    for v in &new {
        assert!(in_new.contains(v), "{v} missing from the new topic");
    }

    // The reader stays slow until it has seen the first record of the new topic: records
    // of the old topic still buffered when the topic went away must not be drained at full
    // speed before the consumer has noticed the re-creation (a race the test would then
    // lose without the client doing anything wrong).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !consumed.lock().unwrap().iter().any(|v| in_new.contains(v)) {
        assert!(
            Instant::now() < deadline,
            "the consumer read no record of the new topic in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The consumer gets every record of the new topic, and nothing old after anything new.
    slow.store(false, std::sync::atomic::Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = consumed.lock().unwrap().iter().cloned().collect();
        let missing = in_new.iter().filter(|v| !seen.contains(*v)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer still misses {missing} of the new topic's {} records",
            in_new.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.abort();
    let consumed = consumed.lock().unwrap().clone();
    let first_new = consumed
        .iter()
        .position(|v| in_new.contains(v))
        .expect("checked above");
    let old_after_new: Vec<&String> = consumed[first_new..]
        .iter()
        .filter(|v| !in_new.contains(*v))
        .collect();
    assert!(
        old_after_new.is_empty(),
        "records of the old topic after the new topic's {}: {old_after_new:?}",
        consumed[first_new]
    );
    let old_seen = consumed[..first_new].len();
    assert!(
        old_seen >= 10 && old_seen < old.len() + 20,
        "the consumer was partway through the old topic ({old_seen} records)"
    );
    eprintln!(
        "topic ids: {old_seen} old then {} new records consumed; {} of 40 producer sends \
         acknowledged after the deletion; {:.1} s",
        consumed.len() - first_new,
        acknowledged.len(),
        started.elapsed().as_secs_f64()
    );
    producer.close(Duration::from_secs(10)).await.unwrap();
}
