//! A service-style consumer that lets the consumer commit for it (`enable.auto.commit`, the
//! default).
//!
//! ```text
//! cargo run --example consumer_auto_commit -- 127.0.0.1:9092 [TOPIC] [GROUP]
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 KAFKA_TOPIC=orders KAFKA_GROUP=billing \
//!     cargo run --example consumer_auto_commit
//! ```
//! Joins GROUP (default `consumer-example`), reads TOPIC (default `producer-example`, which
//! `cargo run --example producer` fills) and prints each record until Ctrl-C, then closes
//! the consumer, which commits and leaves the group.
//!
//! What auto-commit guarantees: every `auto.commit.interval.ms` (5 s), on a rebalance and
//! in `close()`, the consumer commits the offset after the last record it has *handed out*
//! to the application, never one it has only prefetched. So delivery is at least once, as
//! long as a record is fully processed before the next `recv`: after a crash, the records
//! handed out since the last commit come again to whoever takes over the partition. (A
//! record handed out, then dropped unprocessed, e.g. queued to another task that dies, is
//! committed anyway: use manual commits, see `consumer_manual_commit.rs`, for that case.)

use ferrokafka::{Client, Consumer, OffsetReset};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Arguments first, then the environment, then defaults for a local broker.
    let mut args = std::env::args().skip(1);
    let mut setting = |env: &str, default: &str| {
        args.next()
            .or_else(|| std::env::var(env).ok())
            .unwrap_or_else(|| default.to_owned())
    };
    let bootstrap = setting("KAFKA_BOOTSTRAP", "127.0.0.1:9092");
    let topic = setting("KAFKA_TOPIC", "producer-example");
    let group = setting("KAFKA_GROUP", "consumer-example");

    // One Client per process, shared by every producer and consumer built from it.
    let client = Client::builder()
        .bootstrap_servers(&bootstrap)
        .client_id("ferrokafka-consumer-example")
        .build()
        .await?;
    let consumer = Consumer::builder(&client)
        .group_id(&group)
        // Where a partition starts the first time this group sees it (no committed offset
        // yet); afterwards the group's commits decide.
        .offset_reset(OffsetReset::Earliest)
        .build()
        .await?;
    // The group's coordinator decides which partitions this member reads; running a second
    // copy of the example splits them between the two.
    consumer.subscribe(&[&topic]).await?;
    println!("reading {topic} in group {group} (Ctrl-C to stop)");

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // The stream lives in this block only: a `recv` it has pending must be gone before
    // `close()`, which waits for the consumer's receiving side.
    let outcome = {
        let records = consumer.stream();
        tokio::pin!(records);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break Ok(()),
                next = records.next() => match next {
                    Some(Ok(r)) => println!(
                        "{}-{}@{}: {}",
                        r.topic,
                        r.partition,
                        r.offset,
                        String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                    ),
                    // An error the consumer cannot work around for us (a partition without an
                    // offset under offset reset `None`, a stall past max.poll.interval.ms, a
                    // fenced member): a service would log it and decide; here we stop.
                    Some(Err(e)) => break Err(e),
                    None => break Ok(()),
                },
            }
        }
    };

    // close() commits the offsets of everything printed, runs the rebalance listener's
    // `revoked`, and leaves the group so the partitions move to the other members at once
    // instead of after the session timeout.
    consumer.close().await?;
    println!(
        "closed after {} records ({} commits)",
        consumer.metrics().records,
        consumer.metrics().commits
    );
    client.close().await;
    Ok(outcome?)
}
