//! ferrokafka: `send` every record and drop its delivery future; the producer's delivery
//! handler (`on_delivery`) counts the outcomes, then `flush` — the same shape as the
//! librdkafka and confluent-kafka workers' delivery callbacks. (Until stop 27 this worker kept
//! every future in a queue: 8 MiB of its peak RSS at 100 B records, which the callback-based
//! workers never paid.)

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka::{Acks, Compression, Producer, Record, Topic};

use super::{Job, Produced};
use crate::cases::{self, Codec};
use crate::connect::{self, runtime, Counting};

fn compression(c: Codec) -> Compression {
    match c {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

pub fn run(job: &Job) -> Result<Produced, String> {
    runtime()?.block_on(produce(job))
}

async fn produce(job: &Job) -> Result<Produced, String> {
    let case = job.case;
    let client = connect::ferrokafka_secure_client(&job.bootstrap, job.sasl_ssl.as_ref()).await?;
    let acks = match case.acks {
        cases::Acks::Leader => Acks::Leader,
        cases::Acks::All => Acks::All,
    };
    // Default partitioner: sticky for keyless records, murmur2 for keyed ones (Java's).
    // acks=1 turns idempotence off; acks=all leaves it on (the default).
    let counts = Arc::new(Counting::default());
    let counting = counts.clone();
    let mut builder = Producer::builder(&client)
        .on_delivery(move |d| counting.outcome(d.error().map(|e| e as _)))
        .acks(acks)
        .linger(Duration::from_millis(cases::LINGER_MS))
        .batch_size(job.batch_size)
        .buffer_memory(cases::BUDGET)
        .max_in_flight(cases::MAX_IN_FLIGHT)
        .compression(compression(case.codec), None);
    // Extra or overriding properties for experiments (`key=value,...`, as the latency bench),
    // e.g. a smaller `buffer.memory` to see what the budget costs in RSS and throughput.
    for (k, v) in connect::extra_properties(connect::FERRO_PRODUCER_ENV) {
        builder = builder.set(&k, &v);
    }
    let producer = builder
        .build()
        .await
        .map_err(|e| format!("producer: {e}"))?;

    // Warm-up: one record delivered before the clock starts (connections, metadata and,
    // with idempotence, the producer id are then in place, as for the other clients).
    producer
        .send(Record::new(job.topic.as_str()).value(job.payload.bytes(0)))
        .await
        .map_err(|e| format!("warm-up send: {e}"))?
        .await
        .map_err(|e| format!("warm-up delivery: {e}"))?;

    // The warm-up record was reported before its future resolved: not counted.
    counts.ok.store(0, Ordering::Relaxed);
    let mut key = [0u8; 9];
    // The topic name shared by every record (the library's idiom for a hot loop).
    let topic = Topic::from(job.topic.as_str());
    let start = Instant::now();
    for i in 0..job.records {
        let mut record = Record::new(&topic).value(job.payload.bytes(i));
        if case.keyed {
            record = record.key(Bytes::copy_from_slice(cases::key(i, &mut key)));
        }
        // The handler reports the outcome.
        drop(
            producer
                .send(record)
                .await
                .map_err(|e| format!("send: {e}"))?,
        );
    }
    producer.flush().await.map_err(|e| format!("flush: {e}"))?;
    let elapsed = start.elapsed();
    producer
        .close(Duration::from_secs(30))
        .await
        .map_err(|e| format!("close: {e}"))?;
    client.close().await;
    if let Some(e) = counts.first_error.lock().unwrap().take() {
        eprintln!("ferrokafka: first delivery error: {e}");
    }
    Ok(Produced {
        ok: counts.ok.load(Ordering::Relaxed),
        failed: counts.failed.load(Ordering::Relaxed),
        elapsed,
    })
}
