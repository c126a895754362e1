//! Consume-transform-produce, exactly once: copies INPUT to OUTPUT with the value
//! uppercased, each output record committed in the same transaction as the input offset
//! that produced it.
//!
//! ```text
//! cargo run --example transactional_copy -- BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID \
//!     [--max-batches N] [--batch-size N] [--work-ms MS] [--stall-after STEP:N]
//!     [-X consumer.property=value]...
//! ```
//! Runs until Ctrl-C (the open transaction finishes first) or, with `--max-batches`, after N
//! committed transactions. `--batch-size` caps the records per transaction (default 500);
//! `--work-ms` pretends each record takes that long to process (demos, crash tests);
//! `--stall-after begin:3` stops for good right after that step of the third transaction
//! (`begin`, `sent`, `offsets` or `committed`), so a crash test can kill it exactly there;
//! `-X` sets consumer properties (e.g. `session.timeout.ms=6000`). Each output record keeps the
//! input key and gets a header `src` = `topic-partition-offset` of its input record, so it
//! can be traced back. Prints one line per step of each transaction (`RUST_LOG=ferrokafka=
//! debug` adds the client's own log on stderr); exits 1 on a fatal error (e.g. fenced by a
//! newer instance), 2 on bad usage.
//!
//! # What a crash at each point does
//!
//! The input offsets are committed *inside* the transaction (`send_offsets_to_transaction`),
//! so "output written" and "input consumed" become visible together or not at all:
//!
//! - before `begin_transaction` / after `commit_transaction` returned: nothing is open; the
//!   next instance resumes at the committed offsets.
//! - after some `send`s, or after `send_offsets_to_transaction`, before the commit: the
//!   transaction stays open on the coordinator until the next instance with the same
//!   TRANSACTIONAL_ID calls `init_transactions` (it bumps the producer epoch, which fences
//!   this one, and the coordinator aborts the open transaction), or until
//!   `transaction.timeout.ms` if no instance comes back. The output records already written
//!   get an ABORT marker and the offsets sent to the transaction are discarded, so the
//!   restarted instance reads the same input records again and writes them again in a new
//!   transaction. read_committed readers never see the aborted copies.
//! - during `commit_transaction`: once the coordinator has logged the commit decision it
//!   completes the commit by itself (markers and offsets), even if this process is gone;
//!   before that, it is the previous case. Either way the output and the offsets agree.
//!
//! A zombie (a stalled, not dead, old instance) cannot commit either: its epoch is stale
//! (PRODUCER_FENCED) and its consumer generation is old (KIP-447: the group coordinator
//! refuses its TxnOffsetCommit).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokafka::{
    Client, CommitOffset, Consumer, ConsumerRecord, Error, IsolationLevel, OffsetReset, Producer,
    RebalanceContext, RebalanceListener, Record, SeekTo, TopicPartition,
};
use futures::FutureExt;
use tokio::sync::Mutex;

const USAGE: &str = "usage: transactional_copy BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID \
                     [--max-batches N] [--batch-size N] [--work-ms MS] \
                     [--stall-after STEP:N] [-X consumer.property=value]...";

/// Keeps rebalances out of open transactions, as Java's single-threaded `poll` does.
///
/// ferrokafka's group task rebalances in the background. If partitions moved to another
/// member while a transaction holding their records was open, that member could start from
/// the old committed offset while this one commits the same records. So the `revoked` hook
/// (awaited before the partitions are given up, while the group task keeps heartbeating)
/// waits for the open transaction, and counts revocations: records received before a
/// revocation are stale, and the loop drops them instead of starting a transaction.
#[derive(Default)]
struct Guard {
    in_transaction: Mutex<()>,
    revocations: AtomicU64,
}

struct WaitForTransaction(Arc<Guard>);

#[ferrokafka::async_trait]
impl RebalanceListener for WaitForTransaction {
    async fn revoked(&self, _ctx: &RebalanceContext, _partitions: &[TopicPartition]) {
        let _open = self.0.in_transaction.lock().await;
        self.0.revocations.fetch_add(1, Ordering::AcqRel);
    }
    // `lost` calls `revoked`: same wait (the commit would be refused anyway).
}

struct Args {
    bootstrap: String,
    input: String,
    output: String,
    group: String,
    transactional_id: String,
    max_batches: Option<u64>,
    batch_size: usize,
    work: Duration,
    stall_after: Option<(String, u64)>,
    consumer_props: Vec<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut max_batches = None;
    let mut batch_size = 500;
    let mut work = Duration::ZERO;
    let mut stall_after = None;
    let mut consumer_props = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--max-batches" => {
                let v = value("--max-batches")?;
                max_batches = Some(v.parse().map_err(|_| format!("--max-batches: `{v}`"))?);
            }
            "--batch-size" => {
                let v = value("--batch-size")?;
                batch_size = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--batch-size: `{v}`"))?;
            }
            "--work-ms" => {
                let v = value("--work-ms")?;
                work = Duration::from_millis(v.parse().map_err(|_| format!("--work-ms: `{v}`"))?);
            }
            "--stall-after" => {
                let v = value("--stall-after")?;
                let parsed = v.split_once(':').and_then(|(step, n)| {
                    let known = ["begin", "sent", "offsets", "committed"].contains(&step);
                    Some((step.to_owned(), n.parse().ok()?)).filter(|_| known)
                });
                stall_after = Some(parsed.ok_or(format!("--stall-after: `{v}`"))?);
            }
            "-X" => {
                let v = value("-X")?;
                let (k, v) = v
                    .split_once('=')
                    .ok_or(format!("-X: `{v}` is not key=value"))?;
                consumer_props.push((k.to_owned(), v.to_owned()));
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => positional.push(a),
        }
    }
    let [bootstrap, input, output, group, transactional_id] =
        <[String; 5]>::try_from(positional)
            .map_err(|p| format!("expected 5 arguments, got {}", p.len()))?;
    Ok(Args {
        bootstrap,
        input,
        output,
        group,
        transactional_id,
        max_batches,
        batch_size,
        work,
        stall_after,
        consumer_props,
    })
}

#[tokio::main]
async fn main() {
    // RUST_LOG=ferrokafka=debug shows the client's requests and decisions on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("fatal: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Error> {
    // Two clients only so that each role has its own client.id in broker logs. One shared
    // Client works as well: the consumer's long-polling Fetches have sockets of their own,
    // so the transaction's Produce and coordinator requests never queue behind them.
    let client = |role: &str| {
        Client::builder()
            .bootstrap_servers(&args.bootstrap)
            .client_id(format!("ferrokafka-transactional-copy-{role}"))
            .build()
    };
    let (consumer_client, producer_client) = (client("consumer").await?, client("producer").await?);
    let guard = Arc::new(Guard::default());
    // read_committed: never read another transactional writer's aborted or open records.
    // Auto-commit off: offsets are committed only through the producer's transactions.
    let mut consumer = Consumer::builder(&consumer_client)
        .group_id(&args.group)
        .auto_commit(false)
        .isolation_level(IsolationLevel::ReadCommitted)
        .offset_reset(OffsetReset::Earliest)
        .rebalance_listener(WaitForTransaction(guard.clone()));
    for (k, v) in &args.consumer_props {
        consumer = consumer.set(k, v);
    }
    let consumer = consumer.build().await?;
    let producer = Producer::builder(&producer_client)
        .set("transactional.id", &args.transactional_id)
        .build()
        .await?;
    // Fences older instances with this id and has the coordinator abort what they left open.
    producer.init_transactions().await?;
    consumer.subscribe(&[&args.input]).await?;
    // Ctrl-C ends the loop between transactions. The future installs its handler when first
    // polled: poll it once before saying we are ready.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let _ = (&mut ctrl_c).now_or_never();
    println!("ready");
    let mut committed = 0u64;
    while args.max_batches.is_none_or(|max| committed < max) {
        let revocations = guard.revocations.load(Ordering::Acquire);
        let batch = tokio::select! {
            biased;
            _ = &mut ctrl_c => break,
            batch = consumer.recv_batch(args.batch_size) => batch,
        };
        let batch = match batch {
            Ok(b) => b,
            // The next call rejoins the group (poll interval) or retries (transient).
            Err(e @ Error::PollIntervalExceeded { .. }) => {
                eprintln!("recv: {e}");
                continue;
            }
            Err(e) if e.is_retriable() => {
                eprintln!("recv: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        // No rebalance can start until this transaction ends (see `Guard`).
        let _open = guard.in_transaction.lock().await;
        if guard.revocations.load(Ordering::Acquire) != revocations {
            println!("stale batch dropped (rebalance)");
            rewind(&consumer).await?;
            continue;
        }
        let n = committed + 1;
        match transaction(&consumer, &producer, &args, &batch, n).await {
            Ok(()) => {
                committed += 1;
                step(&args, "committed", n, "").await;
            }
            Err(e) => {
                // Abortable (a record or the offsets failed, the generation moved on): abort,
                // and read again from the committed offsets. If the abort fails too, the
                // producer is fenced or broken: only a restart helps.
                println!("aborting {n}: {e}");
                producer.abort_transaction().await?;
                rewind(&consumer).await?;
                println!("aborted {n}");
            }
        }
    }
    // Clean stop: nothing is open, everything processed is committed.
    consumer.close().await?;
    producer.close(Duration::from_secs(10)).await?;
    consumer_client.close().await;
    producer_client.close().await;
    println!("stopped after {committed} transactions");
    Ok(())
}

/// One transaction: the batch's output records and the offsets after the batch.
async fn transaction(
    consumer: &Consumer,
    producer: &Producer,
    args: &Args,
    batch: &[ConsumerRecord],
    n: u64,
) -> Result<(), Error> {
    // Before any record is touched: these records came from partitions owned in this
    // generation, and the coordinator refuses the offsets if the generation has moved on.
    let group = consumer
        .group_metadata()
        .expect("the consumer has a group.id");
    producer.begin_transaction()?;
    step(args, "begin", n, &format!(": {} records", batch.len())).await;
    let mut next: HashMap<TopicPartition, CommitOffset> = HashMap::new();
    for r in batch {
        let value = r.value.as_ref().map(|v| v.to_ascii_uppercase());
        let mut out = Record::new(&args.output)
            .header("src", format!("{}-{}-{}", r.topic, r.partition, r.offset));
        if let Some(k) = &r.key {
            out = out.key(k.clone());
        }
        if let Some(v) = value {
            out = out.value(v);
        }
        // The delivery futures are not awaited: commit_transaction delivers everything and
        // fails if any record failed.
        drop(producer.send(out).await?);
        tokio::time::sleep(args.work).await;
        next.insert(r.topic_partition(), CommitOffset::new(r.offset + 1));
    }
    step(args, "sent", n, "").await;
    // The position may be past the last record (a skipped commit marker): commit that.
    for (tp, offset) in next.iter_mut() {
        if let Some(p) = consumer.position(tp)? {
            offset.offset = offset.offset.max(p);
        }
    }
    producer.send_offsets_to_transaction(&next, &group).await?;
    step(args, "offsets", n, "").await;
    producer.commit_transaction().await
}

/// Prints a step of transaction `n`, and stops there for good if `--stall-after` says so.
async fn step(args: &Args, what: &str, n: u64, detail: &str) {
    println!("{what} {n}{detail}");
    if args
        .stall_after
        .as_ref()
        .is_some_and(|(s, at)| s == what && *at == n)
    {
        println!("stalled");
        std::future::pending::<()>().await;
    }
}

/// Moves every assigned partition back to its committed offset (after an abort, or when the
/// records at hand are stale), so nothing read since is lost.
async fn rewind(consumer: &Consumer) -> Result<(), Error> {
    let assigned = consumer.assignment();
    if assigned.is_empty() {
        return Ok(());
    }
    for (tp, offset) in consumer.committed(&assigned).await? {
        let to = offset.map_or(SeekTo::Beginning, SeekTo::Offset);
        // Revoked since `assignment()`: the next owner starts at the committed offset anyway.
        let _ = consumer.seek(&tp, to);
    }
    Ok(())
}
