//! `fk consume`: records to stdout, alone (every partition, or `-p`'s, from `-o`'s start)
//! or as a member of a consumer group (`-g`), until `-c` records, the end of every assigned
//! partition (`-e`), or Ctrl-C.

use std::collections::HashMap;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use ferrokafka::{Consumer, ConsumerBuilder, OffsetSpec, SeekTo, TopicPartition};

use crate::cli::{ConsumeArgs, Start};
use crate::table::offsets;
use crate::{started, with_client_id, EXIT_FAILED};

/// The most records taken from the consumer at once: one stdout flush per batch instead
/// of per record.
const BATCH: usize = 500;
/// Exit code after a second Ctrl-C during `close` (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;
/// With `-e`, how long one wait for records lasts before the positions are compared with
/// the ends again (a partition at its end gets no records to wake the wait).
const END_CHECK: Duration = Duration::from_millis(200);

pub async fn run(args: ConsumeArgs) -> ExitCode {
    let built = ConsumerBuilder::from_properties(with_client_id(&args.properties))
        .build()
        .await;
    let consumer = match started(built, "consumer") {
        Ok(c) => c,
        Err(code) => return code,
    };

    // Ctrl-C is the normal way to stop without -c or -e, so it ends the run successfully.
    // Only an await inside `print` can be cut short by it, and records are written out in
    // the same poll that takes them from the consumer, so nothing handed out goes unprinted.
    let printed = tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => Ok(()),
        printed = print(&consumer, &args) => printed,
    };
    // With -g, close() commits the offsets after the last printed record (auto-commit is
    // on unless -X turned it off) and leaves the group, so the next run with the same
    // group starts right after them, and another member takes over the partitions now
    // rather than after the session timeout.
    tokio::select! {
        closed = consumer.close() => {
            if let Err(e) = closed {
                eprintln!("fk: closing the consumer: {e}");
            }
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("fk: second Ctrl-C: exiting without closing the consumer");
            return ExitCode::from(EXIT_INTERRUPTED);
        }
    }
    consumer.client().close().await;
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fk: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Starts reading and prints records. Returns after -c records, at the end with -e, when
/// stdout's reader has gone away, or on an error; otherwise runs until Ctrl-C drops it.
async fn print(consumer: &Consumer, args: &ConsumeArgs) -> Result<(), String> {
    if args.group.is_some() {
        consumer
            .subscribe(&[&args.topic])
            .await
            .map_err(|e| format!("cannot subscribe to {}: {e}", args.topic))?;
    } else {
        let partitions = partitions(consumer, &args.topic, args.partition).await?;
        // Looked up before `assign`: once assigned, the fetcher starts reading, and a seek
        // that comes after an await would race with records already handed out.
        let starts = start_positions(consumer, &partitions, args.start).await?;
        consumer
            .assign(&partitions)
            .await
            .map_err(|e| format!("cannot assign {}: {e}", args.topic))?;
        // An explicit seek rather than auto.offset.reset: it also overrides a committed
        // offset should someone pass -X group.id without -g.
        for (tp, to) in starts {
            consumer.seek(&tp, to).map_err(|e| format!("{tp}: {e}"))?;
        }
    }

    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut left = args.count;
    // -e: the end of each assigned partition, read when it was first seen assigned.
    let mut ends: HashMap<TopicPartition, i64> = HashMap::new();
    // With -e, one receive is kept across the end checks instead of being dropped and
    // started again every END_CHECK: a receive is never cancelled half way.
    let mut pending = None;
    while left != Some(0) {
        if args.exit_at_end && pending.is_none() && all_at_end(consumer, &mut ends).await? {
            return Ok(());
        }
        // Never take more than -c still wants: with -g, whatever the consumer hands out
        // counts as consumed and is committed at close.
        let max = left.map_or(BATCH, |n| n.min(BATCH as u64) as usize);
        let batch = if args.exit_at_end {
            let recv = pending.get_or_insert_with(|| Box::pin(consumer.recv_batch(max)));
            match tokio::time::timeout(END_CHECK, recv.as_mut()).await {
                Ok(batch) => {
                    pending = None;
                    batch
                }
                Err(_) => {
                    if all_at_end(consumer, &mut ends).await? {
                        return Ok(());
                    }
                    continue;
                }
            }
        } else {
            consumer.recv_batch(max).await
        };
        let batch = batch.map_err(|e| format!("consuming {}: {e}", args.topic))?;
        let written = batch
            .iter()
            .try_for_each(|r| args.output.write(&mut out, r))
            .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            // The reader went away (`fk consume ... | head`): stop quietly, as `cat` does.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(format!("writing to stdout: {e}")),
        }
        if let Some(n) = &mut left {
            *n -= batch.len() as u64;
        }
    }
    Ok(())
}

/// Every partition of `topic` (or only `only`), from fresh metadata.
async fn partitions(
    consumer: &Consumer,
    topic: &str,
    only: Option<i32>,
) -> Result<Vec<TopicPartition>, String> {
    let metadata = consumer
        .client()
        .metadata(&[topic])
        .await
        .map_err(|e| format!("cannot read the metadata of {topic}: {e}"))?;
    let t = metadata
        .topic(topic)
        .ok_or_else(|| format!("topic {topic} does not exist"))?;
    if let Some(code) = t.error {
        return Err(format!("topic {topic}: {code}"));
    }
    if t.partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    if let Some(p) = only {
        if t.partition(p).is_none() {
            return Err(format!(
                "topic {topic} has no partition {p} (it has {})",
                t.partitions.len()
            ));
        }
        return Ok(vec![TopicPartition::new(topic, p)]);
    }
    Ok(t.partitions
        .iter()
        .map(|p| TopicPartition::new(topic, p.id))
        .collect())
}

/// Where each partition starts. `-o -N` needs each partition's first and end offsets:
/// N before the end, but not before the first record still in the log.
async fn start_positions(
    consumer: &Consumer,
    partitions: &[TopicPartition],
    start: Start,
) -> Result<Vec<(TopicPartition, SeekTo)>, String> {
    let same = |to: SeekTo| Ok(partitions.iter().map(|tp| (tp.clone(), to)).collect());
    match start {
        Start::Beginning => same(SeekTo::Beginning),
        Start::End => same(SeekTo::End),
        Start::Offset(n) => same(SeekTo::Offset(n)),
        Start::Timestamp(ms) => same(SeekTo::Timestamp(ms)),
        Start::FromEnd(n) => {
            let earliest =
                offsets(&consumer.client().admin(), partitions, OffsetSpec::Earliest).await?;
            let latest =
                offsets(&consumer.client().admin(), partitions, OffsetSpec::Latest).await?;
            Ok(partitions
                .iter()
                .map(|tp| {
                    let from = (latest[tp] - n).max(earliest[tp]);
                    (tp.clone(), SeekTo::Offset(from))
                })
                .collect())
        }
    }
}

/// `-e`: whether every assigned partition's position has reached its end. The end is the
/// high watermark read when the partition is first seen assigned (at start without -g,
/// after the group's assignment with it): records written after that are printed if they
/// arrive before the last partition reaches its end, but not waited for. With nothing
/// assigned yet (the group is still forming) the answer is no.
async fn all_at_end(
    consumer: &Consumer,
    ends: &mut HashMap<TopicPartition, i64>,
) -> Result<bool, String> {
    let assigned = consumer.assignment();
    if assigned.is_empty() {
        return Ok(false);
    }
    let new: Vec<TopicPartition> = assigned
        .iter()
        .filter(|tp| !ends.contains_key(*tp))
        .cloned()
        .collect();
    if !new.is_empty() {
        ends.extend(offsets(&consumer.client().admin(), &new, OffsetSpec::Latest).await?);
    }
    for tp in &assigned {
        // `None` while the start position is still being looked up: not there yet.
        match consumer.position(tp) {
            Ok(Some(p)) if p >= ends[tp] => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}
