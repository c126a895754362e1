//! Confluent's confluent-kafka at a fixed rate: `KafkaProducer::send` with a completion
//! callback from the generator thread (the callback times the acknowledgement, as the
//! rdkafka worker's delivery callback does; `send` returns once the record is appended), and
//! a `KafkaConsumer` without a group assigned every partition from the latest offset,
//! started first, polling on a task of its own.
//!
//! Settings (Java names): the client's defaults (`linger.ms` 5, `batch.size` 16384) with
//! acks=all and `enable.idempotence` true (Java's default); the consumer's defaults
//! (`fetch.min.bytes` 1, `fetch.max.wait.ms` 500), `enable.auto.commit` false and
//! `group.protocol` consumer (the crate translates only KIP-848; no group is joined). The
//! common properties and `FERROKAFKA_BENCH_CONFLUENT` are the produce bench's.
//! confluent-kafka does not talk to librdkafka's mock cluster (issue 16): the parent does
//! not run it there.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use confluent_kafka::common::serialization::{ByteArraySerializer, BytesDeserializer};
use confluent_kafka::common::{Error, TopicPartition};
use confluent_kafka::consumer::{Consumer, ConsumerConfig, KafkaConsumer};
use confluent_kafka::producer::{
    Callback, KafkaProducer, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

use super::worker::{generate, stamp, Job, Stats};
use crate::clients::confluent::{common_properties, EXTRA_ENV};
use crate::connect::{self, runtime};

/// The bench's common properties, then `own`, then the environment's extra properties.
fn properties(job: &Job, own: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let mut props = common_properties(&job.bootstrap);
    for (k, v) in own {
        props.insert(k.to_string(), v.to_string());
    }
    props.extend(connect::extra_properties(EXTRA_ENV));
    props
}

/// The completion callback of the record scheduled at `due`.
fn timing(stats: &Arc<Stats>, due: u64) -> Option<Box<dyn Callback>> {
    let stats = Arc::clone(stats);
    Some(Box::new(
        move |_: Option<&RecordMetadata>, error: Option<&Error>| stats.acked(due, error.is_none()),
    ))
}

pub fn run(job: &Job, stats: &Arc<Stats>) -> Result<(), String> {
    let rt = runtime()?;
    // The consumer and producer start their background tasks where they are created.
    let in_runtime = rt.enter();
    let consumer_config = ConsumerConfig::new(&properties(
        job,
        &[
            ("auto.offset.reset", "latest"),
            ("enable.auto.commit", "false"),
            ("group.protocol", "consumer"),
        ],
    ))
    .map_err(|e| format!("confluent-kafka consumer config: {e}"))?;
    let mut consumer = KafkaConsumer::<Bytes, Bytes>::new(
        consumer_config,
        BytesDeserializer::new(),
        BytesDeserializer::new(),
    )
    .map_err(|e| format!("confluent-kafka consumer: {e}"))?;
    let partitions = (0..job.partitions)
        .map(|p| TopicPartition::new(job.topic.as_str(), p))
        .collect();
    rt.block_on(consumer.assign(partitions))
        .map_err(|e| format!("confluent-kafka assign: {e}"))?;
    let producer_config = ProducerConfig::new(&properties(
        job,
        &[("acks", "all"), ("enable.idempotence", "true")],
    ))
    .map_err(|e| format!("confluent-kafka producer config: {e}"))?;
    let producer = KafkaProducer::<Vec<u8>, Vec<u8>>::new(
        producer_config,
        ByteArraySerializer::new(),
        ByteArraySerializer::new(),
    )
    .map_err(|e| format!("confluent-kafka producer: {e}"))?;
    drop(in_runtime);
    let reader = {
        let stats = stats.clone();
        rt.spawn(async move {
            loop {
                match consumer.poll(Duration::from_millis(100)).await {
                    Ok(records) => {
                        for r in &records {
                            stats.received(r.value().map(|v| &v[..]));
                        }
                    }
                    Err(e) => {
                        eprintln!("confluent-kafka: poll: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    };
    // The generator is not one of the runtime's threads: it may block in `send` (metadata,
    // buffer memory), as an application thread would.
    let handle = rt.handle().clone();
    let topic = job.topic.as_str();
    let mut sent = Ok(());
    generate(&job.schedule, stats, |i, due| {
        if sent.is_err() {
            return;
        }
        let value = stamp(&job.payload, i, due);
        let record = ProducerRecord::<&[u8], &[u8]>::new(topic.to_string(), Some(&value[..]));
        // The returned future is dropped: the callback reports the outcome.
        if let Err(e) = handle.block_on(producer.send(record, timing(stats, due))) {
            sent = Err(format!("confluent-kafka send: {e}"));
        }
    });
    let settled = sent.and_then(|()| job.settle(stats, Duration::from_secs(60)));
    reader.abort();
    rt.block_on(async {
        let _ = producer.close_with_timeout(Duration::from_secs(10)).await;
    });
    settled
}
