//! ferrokafka: `Consumer` with `assign` (no group), `recv_batch` until the case's records are in.

use ferrokafka::{Consumer, OffsetReset, TopicPartition};

use super::worker::{Counter, Job};
use crate::common::Measured;
use crate::connect::{self, runtime};

/// Records asked for per `recv_batch` call: it returns what is already fetched, so this only
/// caps the Vec the application gets (1000 records: ≈ 136 KB of `ConsumerRecord`s).
const BATCH: usize = 1000;

/// Environment variable with extra ferrokafka consumer properties (`key=value,...`).
pub const EXTRA_ENV: &str = "FERROKAFKA_BENCH_CONSUMER";

pub fn run(job: &Job) -> Result<Measured, String> {
    runtime()?.block_on(consume(job))
}

async fn consume(job: &Job) -> Result<Measured, String> {
    let s = job.settings;
    let client = connect::ferrokafka_client(&job.bootstrap).await?;
    let mut builder = Consumer::builder(&client)
        .set("fetch.max.wait.ms", &s.fetch_max_wait_ms.to_string())
        .set("fetch.min.bytes", "1")
        .set(
            "max.partition.fetch.bytes",
            &s.max_partition_fetch_bytes.to_string(),
        )
        .set("fetch.max.bytes", &s.fetch_max_bytes.to_string())
        .set("fetch.buffer.bytes", &s.fetch_buffer_bytes.to_string())
        .set("check.crcs", "true")
        .set("enable.auto.commit", "false")
        .offset_reset(OffsetReset::Earliest);
    // Extra or overriding properties for experiments: `key=value,key=value`.
    for (k, v) in connect::extra_properties(EXTRA_ENV) {
        builder = builder.set(&k, &v);
    }
    let consumer = builder
        .build()
        .await
        .map_err(|e| format!("consumer: {e}"))?;
    let partitions: Vec<TopicPartition> = (0..job.case.partitions)
        .map(|p| TopicPartition::new(&job.topic, p))
        .collect();
    consumer
        .assign(&partitions)
        .await
        .map_err(|e| format!("assign: {e}"))?;
    if !job.stall.is_zero() {
        tokio::time::sleep(job.stall).await;
    }
    let mut counter = Counter::new(job.records);
    while !counter.done() {
        let max = counter.remaining().min(BATCH as u64) as usize;
        let batch = consumer
            .recv_batch(max)
            .await
            .map_err(|e| format!("recv_batch: {e}"))?;
        for r in &batch {
            counter.record(
                r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()),
            );
        }
    }
    let result = counter.finish();
    let _ = consumer.close().await;
    client.close().await;
    Ok(result)
}
