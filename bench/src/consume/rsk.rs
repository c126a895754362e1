//! rskafka: one `StreamConsumer` per partition (its consumer API: one Fetch per partition in
//! flight, at most `max.partition.fetch.bytes` each), merged with `select_all`.
//!
//! rskafka has no prefetch budget and always checks CRCs; it fetches with
//! isolation.level=read_committed (not configurable), which reads the same records here.

use futures::stream::{self, StreamExt};
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};

use super::worker::{Counter, Job};
use crate::common::Measured;
use crate::connect::{self, runtime};

pub fn run(job: &Job) -> Result<Measured, String> {
    runtime()?.block_on(consume(job))
}

async fn consume(job: &Job) -> Result<Measured, String> {
    let s = job.settings;
    let streams: Vec<_> =
        connect::rskafka_partitions(&job.bootstrap, &job.topic, job.case.partitions)
            .await?
            .into_iter()
            .map(|partition| {
                StreamConsumerBuilder::new(partition, StartOffset::Earliest)
                    .with_max_wait_ms(s.fetch_max_wait_ms as i32)
                    .with_min_batch_size(1)
                    // rskafka asks for `max_batch_size - 1` bytes (it treats it as an
                    // exclusive bound), per partition and per request.
                    .with_max_batch_size(s.max_partition_fetch_bytes as i32 + 1)
                    .build()
            })
            .collect();
    // rskafka's streams fetch only when polled, so a stall buffers nothing (no prefetch).
    tokio::time::sleep(job.stall).await;
    let mut all = stream::select_all(streams);
    let mut counter = Counter::new(job.records);
    while !counter.done() {
        match all.next().await {
            Some(Ok((r, _high_watermark))) => counter.record(
                r.record.key.as_ref().map_or(0, Vec::len)
                    + r.record.value.as_ref().map_or(0, Vec::len),
            ),
            Some(Err(e)) => return Err(format!("rskafka fetch: {e}")),
            None => return Err("rskafka: every partition stream ended".into()),
        }
    }
    Ok(counter.finish())
}
