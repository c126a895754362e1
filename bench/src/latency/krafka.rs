//! krafka at a fixed rate: `Producer::enqueue` from the generator thread, each
//! `DeliveryHandle` awaited by its own task (so its acknowledgement is timed the moment it
//! resolves), and a consumer without a group assigned every partition from the latest
//! offset, started first, polling on a task of its own.
//!
//! Settings: krafka's defaults (linger 5 ms, batch.size 16 KiB, idempotence on, acks=all);
//! the consumer's defaults (fetch.min.bytes 1, fetch max wait 500 ms); KIP-714 metrics push
//! off, as in the produce and consume benches. krafka does not talk to librdkafka's mock
//! cluster (issue 16): the parent does not run it there.

use std::sync::Arc;
use std::time::Duration;

use krafka::consumer::AutoOffsetReset;
use krafka::producer::Acks;
use krafka::{Kafka, Record};

use super::worker::{generate, stamp, Job, Stats};
use crate::connect::runtime;

pub fn run(job: &Job, stats: &Arc<Stats>) -> Result<(), String> {
    let rt = runtime()?;
    let kafka = rt
        .block_on(
            Kafka::builder(job.bootstrap.as_str())
                .client_id("krafka-bench")
                .connect(),
        )
        .map_err(|e| format!("krafka connect: {e}"))?;
    let consumer = rt.block_on(async {
        let consumer = kafka
            .consumer_without_group()
            .auto_offset_reset(AutoOffsetReset::Latest)
            .enable_auto_commit(false)
            .metrics_push(false)
            .build()
            .await
            .map_err(|e| format!("krafka consumer: {e}"))?;
        consumer
            .assign(&job.topic, (0..job.partitions).collect())
            .await
            .map_err(|e| format!("krafka assign: {e}"))?;
        Ok::<_, String>(consumer)
    })?;
    let producer = rt
        .block_on(
            kafka
                .producer()
                .acks(Acks::All)
                .idempotent(true)
                .metrics_push(false)
                .build(),
        )
        .map_err(|e| format!("krafka producer: {e}"))?;
    let reader = {
        let stats = stats.clone();
        rt.spawn(async move {
            loop {
                match consumer.poll(Duration::from_millis(100)).await {
                    Ok(records) => {
                        for r in &records {
                            stats.received(r.value.as_deref());
                        }
                    }
                    Err(e) => {
                        eprintln!("krafka: poll: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    };
    // The generator is not one of the runtime's threads: it may block on `enqueue` (buffer
    // memory), as an application thread would.
    let handle = rt.handle().clone();
    let mut sent = Ok(());
    generate(&job.schedule, stats, |i, due| {
        if sent.is_err() {
            return;
        }
        let record = Record::new(job.topic.as_str(), stamp(&job.payload, i, due));
        match handle.block_on(producer.enqueue(record)) {
            Ok(delivery) => {
                let stats = stats.clone();
                handle.spawn(async move { stats.acked(due, delivery.await.is_ok()) });
            }
            Err(e) => sent = Err(format!("krafka enqueue: {e}")),
        }
    });
    let settled = sent.and_then(|()| job.settle(stats, Duration::from_secs(60)));
    reader.abort();
    rt.block_on(async {
        let _ = producer.close().await;
    });
    settled
}
