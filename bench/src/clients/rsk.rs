//! rskafka: one `BatchProducer` (linger 5 ms, 1 MB `RecordAggregator`) per partition client.
//! rskafka has no partitioner: keyless records go round-robin, keyed ones by murmur2 (Java's
//! hash, as the others use). `produce` resolves when the record's batch is written, so the
//! records in flight are that many futures, bounded by the same 32 MiB budget.
//!
//! rskafka always sends acks=all and has no idempotence: the acks=1 cases run with acks=all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::DateTime;
use ferrokafka::{Murmur2Partitioner, Partitioner};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use rskafka::client::partition::Compression;
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::{BatchProducer, BatchProducerBuilder};
use rskafka::record::Record;

use super::{Job, Produced};
use crate::cases::{self, Codec};
use crate::connect::{self, runtime};

fn compression(c: Codec) -> Compression {
    match c {
        Codec::None => Compression::NoCompression,
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
    let producers: Vec<Arc<BatchProducer<RecordAggregator>>> =
        connect::rskafka_partitions(&job.bootstrap, &job.topic, cases::PARTITIONS)
            .await?
            .into_iter()
            .map(|partition| {
                Arc::new(
                    BatchProducerBuilder::new(partition)
                        .with_linger(Duration::from_millis(cases::LINGER_MS))
                        .with_compression(compression(case.codec))
                        .build(RecordAggregator::new(job.batch_size)),
                )
            })
            .collect();
    // Warm-up: one record delivered before the clock starts.
    producers[0]
        .produce(Record {
            key: None,
            value: Some(job.payload.slice(0).to_vec()),
            headers: BTreeMap::new(),
            timestamp: now(),
        })
        .await
        .map_err(|e| format!("rskafka warm-up: {e}"))?;
    let murmur2 = Murmur2Partitioner::consistent();
    let partitions = producers.len();
    let mut key = [0u8; 9];
    let mut result = Produced::default();
    let mut first_error = None;
    let mut in_flight = FuturesUnordered::new();
    let mut in_flight_bytes = 0usize;
    let start = Instant::now();
    for i in 0..job.records {
        let (partition, record_key) = if case.keyed {
            let k = cases::key(i, &mut key);
            let p = murmur2.partition(&job.topic, Some(k), partitions as i32) as usize;
            (p, Some(k.to_vec()))
        } else {
            ((i % partitions as u64) as usize, None)
        };
        let size = case.size + record_key.as_ref().map_or(0, Vec::len);
        let record = Record {
            key: record_key,
            value: Some(job.payload.slice(i).to_vec()),
            headers: BTreeMap::new(),
            timestamp: now(),
        };
        while in_flight_bytes + size > cases::BUDGET {
            match in_flight.next().await {
                Some((bytes, r)) => {
                    in_flight_bytes -= bytes;
                    settle(&mut result, &mut first_error, r);
                }
                None => break,
            }
        }
        let producer = producers[partition].clone();
        in_flight_bytes += size;
        in_flight.push(async move { (size, producer.produce(record).await.map(|_| ())) });
        // Poll the new future now so its record reaches the aggregator (FuturesUnordered only
        // polls on `next`), and settle whatever has completed.
        while let Some(Some((bytes, r))) = in_flight.next().now_or_never() {
            in_flight_bytes -= bytes;
            settle(&mut result, &mut first_error, r);
        }
    }
    while let Some((_, r)) = in_flight.next().await {
        settle(&mut result, &mut first_error, r);
    }
    result.elapsed = start.elapsed();
    if let Some(e) = first_error {
        eprintln!("rskafka: first delivery error: {e}");
    }
    Ok(result)
}

fn now() -> DateTime<chrono::Utc> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn settle(
    result: &mut Produced,
    first_error: &mut Option<String>,
    r: Result<(), rskafka::client::producer::Error>,
) {
    match r {
        Ok(()) => result.ok += 1,
        Err(e) => {
            result.failed += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
    }
}
