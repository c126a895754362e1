//! rskafka at a fixed rate: one `BatchProducer` per partition, records round-robin (rskafka
//! has no partitioner), each `produce` future driven by its own task — rskafka only queues a
//! record once its future is polled, and the future resolves when the record's batch is
//! acknowledged; one `StreamConsumer` per partition from the latest offset, merged, on a
//! client of its own.
//!
//! Settings: rskafka's defaults (linger 5 ms; acks=all is all it sends; no idempotence) with
//! a 16 KiB `RecordAggregator` (it has no default size; Kafka's batch.size); the consumer's
//! defaults (min batch 1 byte, max wait 500 ms).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::DateTime;
use futures::stream::{self, StreamExt};
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::BatchProducerBuilder;
use rskafka::record::Record;

use super::worker::{generate, stamp, Job, Stats};
use crate::connect::{self, runtime};

/// `RecordAggregator` size in bytes.
const BATCH_BYTES: usize = 16 * 1024;

pub fn run(job: &Job, stats: &Arc<Stats>) -> Result<(), String> {
    let rt = runtime()?;
    // Two clients, as the other libraries have two handles: rskafka keeps one connection per
    // broker and a broker answers a connection's requests in order, so with one client every
    // acknowledgement would queue behind the consumer's long-polling Fetch (up to 500 ms).
    let clients = || connect::rskafka_partitions(&job.bootstrap, &job.topic, job.partitions);
    let (for_consumer, for_producer) = rt.block_on(async { (clients().await, clients().await) });
    let streams: Vec<_> = for_consumer?
        .into_iter()
        .map(|p| StreamConsumerBuilder::new(p, StartOffset::Latest).build())
        .collect();
    let reader = {
        let stats = stats.clone();
        rt.spawn(async move {
            let mut all = stream::select_all(streams);
            while let Some(r) = all.next().await {
                match r {
                    Ok((r, _high_watermark)) => stats.received(r.record.value.as_deref()),
                    Err(e) => eprintln!("rskafka: fetch: {e}"),
                }
            }
        })
    };
    let producers: Vec<_> = for_producer?
        .into_iter()
        .map(|p| Arc::new(BatchProducerBuilder::new(p).build(RecordAggregator::new(BATCH_BYTES))))
        .collect();
    let handle = rt.handle().clone();
    generate(&job.schedule, stats, |i, due| {
        let producer = producers[(i % producers.len() as u64) as usize].clone();
        let record = Record {
            key: None,
            value: Some(stamp(&job.payload, i, due)),
            headers: BTreeMap::new(),
            timestamp: now(),
        };
        let stats = stats.clone();
        handle.spawn(async move { stats.acked(due, producer.produce(record).await.is_ok()) });
    });
    let settled = job.settle(stats, Duration::from_secs(60));
    reader.abort();
    settled
}

fn now() -> DateTime<chrono::Utc> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
