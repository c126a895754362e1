//! A consumer that commits only what it has processed: auto-commit off, a commit after each
//! batch, and a commit of the processed offsets when the group takes partitions away.
//!
//! ```text
//! cargo run --example consumer_manual_commit -- 127.0.0.1:9092 [TOPIC] [GROUP]
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo run --example consumer_manual_commit
//! ```
//! Reads TOPIC (default `producer-example`) in GROUP (default `manual-commit-example`) until
//! Ctrl-C.
//!
//! At least once: a batch is committed after it is processed, so after a crash mid-batch
//! that batch (and nothing committed before it) is read again by whoever takes over.
//! Processing must therefore tolerate seeing a record twice (idempotent writes, or a
//! dedup key). Committing before processing would give at most once instead: a crash
//! would skip the batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferrokafka::{
    Client, CommitOffset, Consumer, ConsumerRecord, OffsetReset, RebalanceContext,
    RebalanceListener, TopicPartition,
};

/// The most records taken and processed between two commits. Larger batches mean fewer
/// commits, and more records read again after a crash.
const BATCH: usize = 500;

/// Per partition, the offset after the last *processed* record: what may be committed.
type Processed = Arc<Mutex<HashMap<TopicPartition, CommitOffset>>>;

/// Commits the processed offsets of the partitions leaving this member.
struct CommitOnRevoke(Processed);

#[ferrokafka::async_trait]
impl RebalanceListener for CommitOnRevoke {
    async fn assigned(&self, _ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        // A fresh ownership starts at the group's committed offset; forget anything the
        // loop noted for these partitions during an earlier one.
        let mut processed = self.0.lock().unwrap();
        for tp in partitions {
            processed.remove(tp);
        }
    }

    async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        // This hook runs on the consumer's group task, possibly while the loop in main is
        // still in the middle of a batch. `ctx.commit()` would commit every record handed
        // out, processed or not; committing what `Processed` says keeps at least once: the
        // next owner starts after the last finished record, and the rest of the batch at
        // hand comes again there.
        // Taken out of the map: should a partition come back later, an offset from this
        // ownership must not be committed over the newer one of the member in between.
        let offsets: HashMap<TopicPartition, CommitOffset> = {
            let mut processed = self.0.lock().unwrap();
            partitions
                .iter()
                .filter_map(|tp| processed.remove(tp).map(|o| (tp.clone(), o)))
                .collect()
        };
        if offsets.is_empty() {
            return;
        }
        if let Err(e) = ctx.commit_offsets(&offsets).await {
            eprintln!("commit on revoke of {partitions:?} failed: {e}");
        }
    }
    // `lost` (session expired, fenced) keeps its default, which calls `revoked`: that commit
    // is refused, as it should be, since another member may already own the partitions.
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut setting = |env: &str, default: &str| {
        args.next()
            .or_else(|| std::env::var(env).ok())
            .unwrap_or_else(|| default.to_owned())
    };
    let bootstrap = setting("KAFKA_BOOTSTRAP", "127.0.0.1:9092");
    let topic = setting("KAFKA_TOPIC", "producer-example");
    let group = setting("KAFKA_GROUP", "manual-commit-example");

    let client = Client::builder()
        .bootstrap_servers(&bootstrap)
        .client_id("ferrokafka-manual-commit-example")
        .build()
        .await?;
    let processed = Processed::default();
    let consumer = Consumer::builder(&client)
        .group_id(&group)
        .offset_reset(OffsetReset::Earliest)
        // Nothing is committed behind our back: not on a timer, not on a rebalance, not in
        // close().
        .auto_commit(false)
        .rebalance_listener(CommitOnRevoke(processed.clone()))
        .build()
        .await?;
    consumer.subscribe(&[&topic]).await?;
    println!("reading {topic} in group {group} (Ctrl-C to stop)");

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut count = 0u64;
    loop {
        // recv_batch waits for at least one record, then takes what is already fetched.
        // select! drops a pending recv_batch on Ctrl-C, and with it its hold on the
        // consumer's receiving side, which close() below needs.
        let batch = tokio::select! {
            _ = &mut ctrl_c => break,
            batch = consumer.recv_batch(BATCH) => batch?,
        };
        process(&batch);
        count += batch.len() as u64;
        {
            let mut processed = processed.lock().unwrap();
            for r in &batch {
                processed.insert(r.topic_partition(), CommitOffset::new(r.offset + 1));
            }
        }
        // The whole batch is done: commit the positions after it. A failure (say, a
        // rebalance moved a partition meanwhile) is not fatal: its records will be read
        // again by the new owner, which at least once allows.
        if let Err(e) = consumer.commit().await {
            eprintln!("commit failed, {} records may come again: {e}", batch.len());
        }
    }

    // Everything processed is committed already. close() runs `revoked` for the partitions
    // still held (committing the same offsets again is harmless) and leaves the group.
    consumer.close().await?;
    println!("processed {count} records");
    client.close().await;
    Ok(())
}

/// Stands in for the real work (a database write, a call to another service).
fn process(batch: &[ConsumerRecord]) {
    let (first, last) = (&batch[0], &batch[batch.len() - 1]);
    println!(
        "processed {} records, {}-{}@{} .. {}-{}@{}",
        batch.len(),
        first.topic,
        first.partition,
        first.offset,
        last.topic,
        last.partition,
        last.offset
    );
}
