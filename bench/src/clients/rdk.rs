//! rdkafka (librdkafka): `BaseProducer` + `poll`, delivery callbacks counting outcomes — the
//! way librdkafka users produce for throughput.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::Timeout;
use rdkafka::ClientContext;

use super::{Job, Produced};
use crate::cases::{self, Acks};

#[derive(Default)]
struct Counting {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// The librdkafka configuration of a job.
pub fn config(job: &Job) -> ClientConfig {
    let case = job.case;
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &job.bootstrap)
        .set("client.id", "rdkafka-bench")
        .set("linger.ms", cases::LINGER_MS.to_string())
        .set("batch.size", job.batch_size.to_string())
        .set(
            "queue.buffering.max.kbytes",
            (cases::BUDGET / 1024).to_string(),
        )
        .set("queue.buffering.max.messages", "10000000")
        .set(
            "max.in.flight.requests.per.connection",
            cases::MAX_IN_FLIGHT.to_string(),
        )
        .set("acks", case.acks.name())
        .set(
            "enable.idempotence",
            if case.acks == Acks::All {
                "true"
            } else {
                "false"
            },
        )
        .set("compression.codec", case.codec.name())
        // Java-compatible hashing of keys; keyless records are spread randomly (librdkafka
        // then makes them sticky per `sticky.partitioning.linger.ms`, 2 x linger.ms).
        .set(
            "partitioner",
            if case.keyed {
                "murmur2"
            } else {
                "murmur2_random"
            },
        );
    // Extra or overriding properties for experiments: `key=value,key=value`.
    if let Ok(extra) = std::env::var(EXTRA_ENV) {
        for kv in extra.split(',').filter(|kv| !kv.trim().is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                cfg.set(k.trim(), v.trim());
            }
        }
    }
    cfg
}

/// Environment variable with extra librdkafka properties (`key=value,...`).
pub const EXTRA_ENV: &str = "FERROKAFKA_BENCH_RDKAFKA";

pub fn run(job: &Job) -> Result<Produced, String> {
    let case = job.case;
    let producer: BaseProducer<Counting> = config(job)
        .create_with_context(Counting::default())
        .map_err(|e| format!("rdkafka producer: {e}"))?;
    // Warm-up: one record delivered before the clock starts.
    producer
        .send(BaseRecord::<[u8], [u8]>::to(&job.topic).payload(job.payload.slice(0)))
        .map_err(|(e, _)| format!("rdkafka warm-up send: {e}"))?;
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("rdkafka warm-up flush: {e}"))?;
    let ctx = producer.context();
    if ctx.ok.swap(0, Ordering::Relaxed) != 1 {
        return Err("rdkafka warm-up record not delivered".into());
    }
    let mut key = [0u8; 9];
    let start = Instant::now();
    for i in 0..job.records {
        let value = job.payload.slice(i);
        let mut record = BaseRecord::to(&job.topic).payload(value);
        if case.keyed {
            record = record.key(cases::key(i, &mut key));
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The queue is full: serve delivery reports, which frees room.
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("rdkafka send: {e}")),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Timeout::Never)
        .map_err(|e| format!("rdkafka flush: {e}"))?;
    let elapsed = start.elapsed();
    if let Some(e) = ctx.first_error.lock().unwrap().take() {
        eprintln!("rdkafka: first delivery error: {e}");
    }
    Ok(Produced {
        ok: ctx.ok.load(Ordering::Relaxed),
        failed: ctx.failed.load(Ordering::Relaxed),
        elapsed,
    })
}
