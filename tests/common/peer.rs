//! librdkafka (through the `rdkafka` crate) as an independent peer: it reads back what
//! ferrokafka wrote, and produces what ferrokafka must match.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// A record as librdkafka read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

/// Reads `partitions` of `topic` from the beginning with librdkafka until `expected` records
/// arrived (then a short extra wait to catch duplicates) or `timeout` passed. CRCs are checked
/// unless `check_crcs` is false (the mock cluster writes control batches with CRC 0).
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("peer-{}", super::unique_topic("g")))
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut settle: Option<Instant> = None;
    while Instant::now() < deadline {
        if out.len() >= expected {
            let s = *settle.get_or_insert_with(|| Instant::now() + Duration::from_millis(500));
            if Instant::now() >= s {
                break;
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: m.timestamp().to_millis(),
            }),
            Some(Err(e)) => panic!("librdkafka consumer error: {e}"),
            None => {}
        }
    }
    out
}

/// Produces each key (value = key) with librdkafka's Java-compatible `murmur2` partitioner and
/// returns key → partition as librdkafka chose it.
pub async fn partitions_by_murmur2(
    bootstrap: &str,
    topic: &str,
    keys: &[String],
) -> HashMap<String, i32> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2")
        .set("linger.ms", "5")
        .create()
        .expect("rdkafka producer");
    let mut pending = Vec::new();
    for k in keys {
        let rec = FutureRecord::to(topic).key(k.as_str()).payload(k.as_str());
        let f = producer
            .send_result(rec)
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push((k.clone(), f));
    }
    let mut out = HashMap::new();
    for (k, f) in pending {
        let delivery = f
            .await
            .expect("delivery canceled")
            .map_err(|(e, _)| e)
            .expect("librdkafka delivery");
        out.insert(k, delivery.partition);
    }
    out
}
