//! krafka: a consumer without a group, `assign` from the beginning, `poll` until the case's
//! records are in.
//!
//! Why `poll`: it returns up to `max_poll_records` records per call and, while the buffer
//! has room, decodes one fetch round ahead, so the next call is often served without a round
//! trip; `recv` and `stream` hand out one record per call from the same buffer. krafka
//! fetches only inside `poll` (no background prefetch, like the Java client's classic
//! consumer), so `--stall-ms` buffers nothing here.
//!
//! Settings: the common fetch settings; `max_poll_records` 1000 (the ferrokafka worker's
//! batch); krafka bounds its buffer in records, not bytes, so `max_buffered_records` is the
//! prefetch budget divided by the case's record size. CRCs are always checked.

use std::time::Duration;

use krafka::consumer::AutoOffsetReset;
use krafka::Kafka;

use super::worker::{Counter, Job};
use crate::common::Measured;
use crate::connect::runtime;

/// Records per `poll` at most.
const MAX_POLL_RECORDS: i32 = 1000;

pub fn run(job: &Job) -> Result<Measured, String> {
    runtime()?.block_on(consume(job))
}

async fn consume(job: &Job) -> Result<Measured, String> {
    let s = job.settings;
    let kafka = Kafka::builder(job.bootstrap.as_str())
        .client_id("krafka-bench")
        .connect()
        .await
        .map_err(|e| format!("krafka connect: {e}"))?;
    let buffered = (s.fetch_buffer_bytes / job.case.size.max(1)).min(i32::MAX as usize) as i32;
    let consumer = kafka
        .consumer_without_group()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .fetch_min_bytes(1)
        .fetch_max_wait(Duration::from_millis(s.fetch_max_wait_ms))
        .max_partition_fetch_bytes(s.max_partition_fetch_bytes as i32)
        .fetch_max_bytes(s.fetch_max_bytes as i32)
        .max_poll_records(MAX_POLL_RECORDS)
        .max_buffered_records(buffered)
        .metrics_push(false)
        .build()
        .await
        .map_err(|e| format!("krafka consumer: {e}"))?;
    consumer
        .assign(&job.topic, (0..job.case.partitions).collect())
        .await
        .map_err(|e| format!("krafka assign: {e}"))?;
    tokio::time::sleep(job.stall).await;
    let mut counter = Counter::new(job.records);
    while !counter.done() {
        let records = consumer
            .poll(Duration::from_millis(100))
            .await
            .map_err(|e| format!("krafka poll: {e}"))?;
        for r in &records {
            counter.record(
                r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()),
            );
        }
    }
    let result = counter.finish();
    let _ = consumer.close().await;
    Ok(result)
}
