//! Concurrent processing with safe commits: slow work per record (here a sleep standing in
//! for an HTTP call or a database write) runs for up to 128 records at once, records with
//! the same key stay in order, and only records that are done get committed.
//!
//! ```text
//! cargo run --example concurrent_processing -- 127.0.0.1:9092 [TOPIC] [GROUP]
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo run --example concurrent_processing
//! ```
//! Reads TOPIC (default `producer-example`) in GROUP (default `concurrent-example`) until
//! Ctrl-C, printing the processor's metrics every 5 s. A record whose handler fails three
//! times in a row goes to `TOPIC.dlq` and processing goes on.
//!
//! At least once: after a crash, the records in flight (and those done since the last
//! commit, 500 ms by default) run again; records done out of order past the committed
//! offset are stored in the commit's metadata and skipped.

use std::time::Duration;

use ferrokafka::{
    Client, Consumer, FailureAction, FailurePolicy, OffsetReset, ProcessOptions, ProcessOrdering,
    Producer,
};

#[tokio::main]
async fn main() -> ferrokafka::Result<()> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "producer-example".into());
    let group = args.next().unwrap_or_else(|| "concurrent-example".into());

    let client = Client::builder()
        .bootstrap_servers(&bootstrap)
        .client_id("concurrent-processing-example")
        .build()
        .await?;
    let consumer = Consumer::builder(&client)
        .group_id(group)
        .offset_reset(OffsetReset::Earliest)
        // The processor commits what is done; auto-commit of consumed positions would
        // commit records still in progress (it is switched off while a processor runs
        // anyway).
        .auto_commit(false)
        .build()
        .await?;
    consumer.subscribe(&[topic.as_str()]).await?;

    // Failed records go to a dead-letter topic through an ordinary producer.
    let dead_letters = Producer::builder(&client).build().await?;
    let options = ProcessOptions::new()
        .ordering(ProcessOrdering::PerKey)
        .max_in_flight(128)
        .max_held_bytes(32 << 20)
        .commit_interval(Duration::from_millis(500))
        .on_failure(
            FailurePolicy::retry_then(
                3,
                FailureAction::DeadLetter {
                    producer: dead_letters.clone(),
                    topic: format!("{topic}.dlq"),
                },
            )
            .backoff(Duration::from_millis(100), Duration::from_secs(2)),
        );

    let processor = consumer.processor(options, |record| async move {
        // The slow part: 5 ms of pretend I/O per record.
        tokio::time::sleep(Duration::from_millis(5)).await;
        match record.value.as_deref() {
            Some(b"poison") => Err(format!("cannot handle offset {}", record.offset)),
            _ => Ok(()),
        }
    });

    let handle = processor.handle();
    let reporter = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let m = reporter.metrics();
            println!(
                "processed {} in flight {} queued {} done-not-committed {} dead-lettered {} \
                 latency mean {:?} p99 {:?}",
                m.processed,
                m.in_flight,
                m.queued,
                m.done_not_committed,
                m.dead_lettered,
                m.handler_latency.mean,
                m.handler_latency.p99
            );
            for p in &m.partitions {
                println!("  {} committed {} lag {}", p.partition, p.committed, p.lag);
            }
        }
    });
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        println!("stopping: draining records in flight");
        handle.stop();
    });

    // Runs until Ctrl-C; on the way out it waits for records in flight and commits.
    processor.run().await?;
    consumer.close().await?;
    dead_letters.close(Duration::from_secs(10)).await?;
    client.close().await;
    Ok(())
}
