//! rdkafka (librdkafka) at a fixed rate: a `ThreadedProducer` (its own thread serves the
//! delivery reports as they arrive, so an acknowledgement is timed when librdkafka hands it
//! over, not when the generator next polls) with each record's scheduled time as its
//! delivery opaque, and a `BaseConsumer` on its own thread, assigned every partition at the
//! end of the log.
//!
//! Settings: librdkafka's defaults (linger.ms 5, batch.size 1000000) with acks=all and
//! enable.idempotence=true (Kafka's default; librdkafka's is false); the consumer's defaults
//! (fetch.min.bytes 1, fetch.wait.max.ms 500). `FERROKAFKA_BENCH_RDKAFKA` adds properties,
//! as in the other benches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::worker::{generate, stamp, Job, Stats};
use crate::connect;

/// Times each delivery report against the scheduled time it carries.
struct Timing(Arc<Stats>);

impl ClientContext for Timing {}

impl ProducerContext for Timing {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, due: usize) {
        self.0.acked(due as u64, result.is_ok());
    }
}

/// The base settings, then `own`, then the environment's extra properties.
fn config(job: &Job, own: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &job.bootstrap)
        .set("client.id", "rdkafka-bench");
    for (k, v) in own {
        cfg.set(*k, *v);
    }
    for (k, v) in connect::extra_properties(connect::RDKAFKA_EXTRA_ENV) {
        cfg.set(k, v);
    }
    cfg
}

pub fn run(job: &Job, stats: &Arc<Stats>) -> Result<(), String> {
    // assign needs a group handle, so a group.id; without subscribe nothing joins.
    let own = [
        ("group.id", "ferrokafka-bench-latency"),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "false"),
        ("auto.offset.reset", "latest"),
    ];
    let consumer: BaseConsumer = config(job, &own)
        .create()
        .map_err(|e| format!("rdkafka consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..job.partitions {
        tpl.add_partition_offset(&job.topic, p, Offset::End)
            .map_err(|e| format!("rdkafka partition list: {e}"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("rdkafka assign: {e}"))?;
    let producer: ThreadedProducer<Timing> =
        config(job, &[("acks", "all"), ("enable.idempotence", "true")])
            .create_with_context(Timing(stats.clone()))
            .map_err(|e| format!("rdkafka producer: {e}"))?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => stats.received(m.payload()),
                    Some(Err(e)) => eprintln!("rdkafka: poll: {e}"),
                    None => {}
                }
            }
        });
        let mut sent = Ok(());
        generate(&job.schedule, stats, |i, due| {
            if sent.is_err() {
                return;
            }
            let value = stamp(&job.payload, i, due);
            let mut record =
                BaseRecord::<[u8], [u8], usize>::with_opaque_to(&job.topic, due as usize)
                    .payload(value.as_slice());
            // A full queue is librdkafka's backpressure: wait for room, as `send` does.
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => {
                        sent = Err(format!("rdkafka send: {e}"));
                        break;
                    }
                }
            }
        });
        let settled = sent.and_then(|()| job.settle(stats, Duration::from_secs(60)));
        stop.store(true, Ordering::Relaxed);
        let _ = reader.join();
        settled
    })?;
    let _ = producer.flush(Duration::from_secs(10));
    Ok(())
}
