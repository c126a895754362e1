//! Confluent's `confluent-kafka`: `KafkaConsumer<Bytes, Bytes>` without a group, `assign`
//! from the beginning, `poll` until the case's records are in.
//!
//! Why this API: `poll` is the Java client's (and this translation's) only consuming call;
//! it returns up to `max.poll.records` records while the consumer's background network task
//! keeps fetching for the partitions with nothing buffered. `BytesDeserializer` hands out
//! keys and values as slices of the fetched buffer (the crate's zero-copy path), where
//! `ByteArrayDeserializer` would copy every record into a `Vec`.
//!
//! Settings (Java names): the common fetch settings, `check.crcs` true,
//! `enable.auto.commit` false, `max.poll.records` 1000 (the ferrokafka worker's batch).
//! The Java consumer has no byte budget for prefetched data (at most one fetch per
//! partition is buffered), so the prefetch budget is not set here.

use std::time::Duration;

use bytes::Bytes;
use confluent_kafka::common::serialization::BytesDeserializer;
use confluent_kafka::common::TopicPartition;
use confluent_kafka::consumer::{Consumer, ConsumerConfig, KafkaConsumer};

use super::worker::{Counter, Job};
use crate::clients::confluent::{common_properties, EXTRA_ENV};
use crate::common::Measured;
use crate::connect::{self, runtime};

/// Records per `poll` at most.
const MAX_POLL_RECORDS: usize = 1000;

pub fn run(job: &Job) -> Result<Measured, String> {
    runtime()?.block_on(consume(job))
}

fn config(job: &Job) -> Result<ConsumerConfig, String> {
    let s = job.settings;
    let mut props = common_properties(&job.bootstrap);
    for (k, v) in [
        ("auto.offset.reset", "earliest".to_string()),
        ("enable.auto.commit", "false".to_string()),
        ("fetch.max.wait.ms", s.fetch_max_wait_ms.to_string()),
        ("fetch.min.bytes", "1".to_string()),
        (
            "max.partition.fetch.bytes",
            s.max_partition_fetch_bytes.to_string(),
        ),
        ("fetch.max.bytes", s.fetch_max_bytes.to_string()),
        ("check.crcs", "true".to_string()),
        ("max.poll.records", MAX_POLL_RECORDS.to_string()),
        // The crate refuses its default `classic` (only KIP-848 is translated); without a
        // `group.id` no group is joined either way.
        ("group.protocol", "consumer".to_string()),
    ] {
        props.insert(k.to_string(), v);
    }
    props.extend(connect::extra_properties(EXTRA_ENV));
    ConsumerConfig::new(&props).map_err(|e| format!("confluent-kafka consumer config: {e}"))
}

async fn consume(job: &Job) -> Result<Measured, String> {
    let mut consumer = KafkaConsumer::<Bytes, Bytes>::new(
        config(job)?,
        BytesDeserializer::new(),
        BytesDeserializer::new(),
    )
    .map_err(|e| format!("confluent-kafka consumer: {e}"))?;
    let partitions = (0..job.case.partitions)
        .map(|p| TopicPartition::new(job.topic.as_str(), p))
        .collect();
    consumer
        .assign(partitions)
        .await
        .map_err(|e| format!("confluent-kafka assign: {e}"))?;
    tokio::time::sleep(job.stall).await;
    let mut counter = Counter::new(job.records);
    while !counter.done() {
        let records = consumer
            .poll(Duration::from_millis(100))
            .await
            .map_err(|e| format!("confluent-kafka poll: {e}"))?;
        for r in &records {
            counter.record(r.key().map_or(0, Bytes::len) + r.value().map_or(0, Bytes::len));
        }
    }
    let result = counter.finish();
    let _ = consumer.close().await;
    Ok(result)
}
