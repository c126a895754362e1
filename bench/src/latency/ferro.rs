//! ferrokafka at a fixed rate: `Producer::send` from the generator thread, each delivery
//! future awaited by its own task (so its acknowledgement is timed the moment it resolves),
//! and a `Consumer` assigned every partition from the latest offset, started first.
//!
//! Settings: the library's defaults (linger 5 ms, batch.size 16 KiB, idempotence on) and
//! acks=all; the consumer's defaults (fetch.min.bytes 1, fetch.max.wait.ms 500).

use std::sync::Arc;
use std::time::Duration;

use ferrokafka::{Acks, Consumer, OffsetReset, Producer, Record, Topic, TopicPartition};

use super::worker::{generate, stamp, Job, Stats};
use crate::connect::{self, runtime};

pub fn run(job: &Job, stats: &Arc<Stats>) -> Result<(), String> {
    let rt = runtime()?;
    let client = rt.block_on(connect::ferrokafka_client(&job.bootstrap))?;
    let consumer = Arc::new(rt.block_on(async {
        let consumer = Consumer::builder(&client)
            .offset_reset(OffsetReset::Latest)
            .auto_commit(false)
            .build()
            .await
            .map_err(|e| format!("consumer: {e}"))?;
        let partitions: Vec<TopicPartition> = (0..job.partitions)
            .map(|p| TopicPartition::new(&job.topic, p))
            .collect();
        consumer
            .assign(&partitions)
            .await
            .map_err(|e| format!("assign: {e}"))?;
        Ok::<_, String>(consumer)
    })?);
    let producer = rt.block_on(async {
        let mut builder = Producer::builder(&client).acks(Acks::All);
        // Extra or overriding properties for experiments: `key=value,key=value`.
        for (k, v) in connect::extra_properties(connect::FERRO_PRODUCER_ENV) {
            builder = builder.set(&k, &v);
        }
        builder.build().await.map_err(|e| format!("producer: {e}"))
    })?;
    let reader = {
        let (consumer, stats) = (consumer.clone(), stats.clone());
        rt.spawn(async move {
            loop {
                match consumer.recv_batch(1000).await {
                    Ok(batch) => {
                        for r in &batch {
                            stats.received(r.value.as_deref());
                        }
                    }
                    Err(e) => {
                        eprintln!("ferrokafka: recv_batch: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    };
    // This thread is not one of the runtime's: it may block on the send, as an application
    // thread handing records to the producer would.
    let handle = rt.handle().clone();
    let mut sent = Ok(());
    let topic = Topic::from(job.topic.as_str());
    generate(&job.schedule, stats, |i, due| {
        if sent.is_err() {
            return;
        }
        let record = Record::new(&topic).value(stamp(&job.payload, i, due));
        match handle.block_on(producer.send(record)) {
            Ok(delivery) => {
                let stats = stats.clone();
                handle.spawn(async move { stats.acked(due, delivery.await.is_ok()) });
            }
            Err(e) => sent = Err(format!("send: {e}")),
        }
    });
    let settled = sent.and_then(|()| job.settle(stats, Duration::from_secs(60)));
    reader.abort();
    rt.block_on(async {
        let _ = producer.close(Duration::from_secs(10)).await;
        let _ = consumer.close().await;
        client.close().await;
    });
    settled
}
