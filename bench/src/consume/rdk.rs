//! rdkafka (librdkafka): `BaseConsumer` + `assign` from the beginning + `poll` per message,
//! the way librdkafka users consume for throughput.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::worker::{Counter, Job};
use crate::common::Measured;
use crate::connect;

/// The librdkafka configuration of a consume job.
pub fn config(job: &Job) -> ClientConfig {
    let s = job.settings;
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &job.bootstrap)
        .set("client.id", "rdkafka-bench")
        // librdkafka's assign needs a consumer group handle, which only exists with a
        // group.id; without subscribe it never joins the group, and nothing is committed.
        .set("group.id", "ferrokafka-bench-rdkafka")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", s.fetch_max_wait_ms.to_string())
        .set("fetch.min.bytes", "1")
        .set(
            "max.partition.fetch.bytes",
            s.max_partition_fetch_bytes.to_string(),
        )
        .set("fetch.max.bytes", s.fetch_max_bytes.to_string())
        .set(
            "queued.max.messages.kbytes",
            (s.fetch_buffer_bytes / 1024).to_string(),
        )
        .set("check.crcs", "true");
    // Extra or overriding properties for experiments: `key=value,key=value` (the same
    // variable as the produce bench).
    for (k, v) in connect::extra_properties(connect::RDKAFKA_EXTRA_ENV) {
        cfg.set(k, v);
    }
    cfg
}

pub fn run(job: &Job) -> Result<Measured, String> {
    let consumer: BaseConsumer = config(job)
        .create()
        .map_err(|e| format!("rdkafka consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..job.case.partitions {
        tpl.add_partition_offset(&job.topic, p, Offset::Beginning)
            .map_err(|e| format!("rdkafka partition list: {e}"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("rdkafka assign: {e}"))?;
    // librdkafka prefetches on its broker threads whether or not the application polls.
    std::thread::sleep(job.stall);
    let mut counter = Counter::new(job.records);
    while !counter.done() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => counter.record(m.key_len() + m.payload_len()),
            Some(Err(e)) => return Err(format!("rdkafka poll: {e}")),
            None => {}
        }
    }
    Ok(counter.finish())
}
