//! ferrokafka: `Consumer` with `assign` (no group), `recv_batch` until the case's records are in.

use ferrokafka::{Client, Consumer, OffsetReset, TopicPartition};

use super::worker::{runtime, Consumed, Counter, Job};

/// Records asked for per `recv_batch` call: it returns what is already fetched, so this only
/// caps the Vec the application gets (1000 records: ≈ 136 KB of `ConsumerRecord`s).
const BATCH: usize = 1000;

/// Environment variable with extra ferrokafka consumer properties (`key=value,...`).
pub const EXTRA_ENV: &str = "FERROKAFKA_BENCH_CONSUMER";

pub fn run(job: &Job) -> Result<Consumed, String> {
    runtime()?.block_on(consume(job))
}

async fn consume(job: &Job) -> Result<Consumed, String> {
    let s = job.settings;
    let client = Client::builder()
        .bootstrap_servers(&job.bootstrap)
        .client_id("ferrokafka-bench")
        .build()
        .await
        .map_err(|e| format!("client: {e}"))?;
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
    if let Ok(extra) = std::env::var(EXTRA_ENV) {
        for kv in extra.split(',').filter(|kv| !kv.trim().is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                builder = builder.set(k.trim(), v.trim());
            }
        }
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
