//! rdkafka (librdkafka): `BaseProducer` + `poll`, delivery callbacks counting outcomes — the
//! way librdkafka users produce for throughput.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;

use super::{Job, Produced};
use crate::cases::{self, Acks};
use crate::connect::{self, Counting};

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
    if let Some(s) = &job.sasl_ssl {
        connect::rdkafka_sasl_ssl(&mut cfg, s);
    }
    // Extra or overriding properties for experiments: `key=value,key=value`.
    for (k, v) in connect::extra_properties(connect::RDKAFKA_EXTRA_ENV) {
        cfg.set(k, v);
    }
    cfg
}

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
        connect::send(&producer, record).map_err(|e| format!("rdkafka send: {e}"))?;
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
