//! Confluent's `confluent-kafka` (the Rust translation of the Java client): `send` with a
//! completion callback for every record, then `flush`.
//!
//! Why this API: it is the Java client's throughput idiom (`send(record, callback)` never
//! waits for the broker; the callback counts the outcome), and the byte-slice
//! `KafkaProducer<Vec<u8>, Vec<u8>>::send` is the crate's zero-copy path: key and value are
//! written straight into the batch buffer, no serializer runs. `send` returns once the
//! record is appended (it waits only for `buffer.memory`); the returned `KafkaFuture` is
//! dropped, the callback reports instead, as the librdkafka worker's delivery callback does.
//!
//! Settings (Java names): `linger.ms`, `batch.size`, `buffer.memory`,
//! `max.in.flight.requests.per.connection`, acks and `compression.type` of the case,
//! `enable.idempotence` true for acks=all and false for acks=1; the default partitioner
//! (murmur2 for keys, sticky batches for keyless records). `metadata.cluster.check.enable`
//! is off: Tansu's Metadata response does not pass the client's cluster-id check.
//! `FERROKAFKA_BENCH_CONFLUENT` adds or overrides properties (`key=value,...`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confluent_kafka::common::serialization::ByteArraySerializer;
use confluent_kafka::common::Error;
use confluent_kafka::producer::{
    Callback, KafkaProducer, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

use super::{Job, Produced};
use crate::cases::{self, Acks};
use crate::connect::{self, runtime, Counting};

/// Environment variable with extra confluent-kafka properties (`key=value,...`), producer
/// and consumer alike.
pub const EXTRA_ENV: &str = "FERROKAFKA_BENCH_CONFLUENT";

/// The properties every confluent-kafka client of the bench gets.
pub fn common_properties(bootstrap: &str) -> HashMap<String, String> {
    let mut props = HashMap::new();
    props.insert("bootstrap.servers".into(), bootstrap.to_string());
    props.insert("client.id".into(), "confluent-bench".into());
    props.insert("metadata.cluster.check.enable".into(), "false".into());
    props
}

/// The producer configuration of a job.
fn config(job: &Job) -> Result<ProducerConfig, String> {
    let case = job.case;
    let mut props = common_properties(&job.bootstrap);
    let idempotent = case.acks == Acks::All;
    for (k, v) in [
        ("acks", case.acks.name().to_string()),
        ("enable.idempotence", idempotent.to_string()),
        ("linger.ms", cases::LINGER_MS.to_string()),
        ("batch.size", job.batch_size.to_string()),
        ("buffer.memory", cases::BUDGET.to_string()),
        (
            "max.in.flight.requests.per.connection",
            cases::MAX_IN_FLIGHT.to_string(),
        ),
        ("compression.type", case.codec.name().to_string()),
    ] {
        props.insert(k.to_string(), v);
    }
    props.extend(connect::extra_properties(EXTRA_ENV));
    ProducerConfig::new(&props).map_err(|e| format!("confluent-kafka producer config: {e}"))
}

pub fn run(job: &Job) -> Result<Produced, String> {
    runtime()?.block_on(produce(job))
}

/// The completion callback of one record: counts its outcome.
fn callback(counts: &Arc<Counting>) -> Option<Box<dyn Callback>> {
    let counts = Arc::clone(counts);
    Some(Box::new(
        move |_: Option<&RecordMetadata>, error: Option<&Error>| {
            counts.outcome(error.map(|e| e as _));
        },
    ))
}

async fn produce(job: &Job) -> Result<Produced, String> {
    let case = job.case;
    let producer = KafkaProducer::<Vec<u8>, Vec<u8>>::new(
        config(job)?,
        ByteArraySerializer::new(),
        ByteArraySerializer::new(),
    )
    .map_err(|e| format!("confluent-kafka producer: {e}"))?;
    let topic = job.topic.as_str();

    // Warm-up: one record delivered before the clock starts (metadata, connections and,
    // with idempotence, the producer id are then in place, as for the other clients).
    let warm_up =
        ProducerRecord::<&[u8], &[u8]>::new(topic.to_string(), Some(job.payload.slice(0)));
    producer
        .send(warm_up, None)
        .await
        .map_err(|e| format!("confluent-kafka warm-up send: {e}"))?
        .get()
        .await
        .map_err(|e| format!("confluent-kafka warm-up delivery: {e}"))?;

    let counts = Arc::new(Counting::default());
    let mut key = [0u8; 9];
    let start = Instant::now();
    for i in 0..job.records {
        let value = Some(job.payload.slice(i));
        let record = if case.keyed {
            ProducerRecord::with_key(topic.to_string(), Some(cases::key(i, &mut key)), value)
        } else {
            ProducerRecord::new(topic.to_string(), value)
        };
        // The returned future is dropped: the callback reports the outcome.
        producer
            .send(record, callback(&counts))
            .await
            .map_err(|e| format!("confluent-kafka send: {e}"))?;
    }
    producer
        .flush()
        .await
        .map_err(|e| format!("confluent-kafka flush: {e}"))?;
    let elapsed = start.elapsed();
    producer
        .close_with_timeout(Duration::from_secs(30))
        .await
        .map_err(|e| format!("confluent-kafka close: {e}"))?;
    if let Some(e) = counts.first_error.lock().unwrap().take() {
        eprintln!("confluent-kafka: first delivery error: {e}");
    }
    Ok(Produced {
        ok: counts.ok.load(Ordering::Relaxed),
        failed: counts.failed.load(Ordering::Relaxed),
        elapsed,
    })
}
