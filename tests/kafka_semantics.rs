//! What only a real Apache Kafka can show, on the shared single node (`common::kafka()`):
//! Tansu returns aborted records to read_committed fetches, answers ListOffsets LATEST with
//! the last batch's base offset + 1 and every timestamp lookup with 0, and librdkafka's mock
//! writes no transaction markers (docs: /work/shared/brokers.md). Here:
//!
//! - read_committed never delivers a record of an aborted transaction (transactions of two
//!   producers interleaved in the same partitions with plain records), while
//!   read_uncommitted delivers them all (so the check can fail);
//! - read_committed stops at the last stable offset while a transaction is open, even for
//!   committed plain records behind it, and goes on once it ends; its `SeekTo::End` is the
//!   last stable offset;
//! - ListOffsets by timestamp (Admin and `SeekTo::Timestamp`): the first offset whose
//!   CreateTime is at or after the timestamp, -1 (the end, for a seek) after the last, and
//!   the offset of the highest timestamp (`OffsetSpec::MaxTimestamp`);
//! - `SeekTo::End` delivers only what is produced after the seek, `SeekTo::Beginning`
//!   everything, and ListOffsets LATEST is the high watermark;
//! - a producer's delivery handler (`on_delivery`) hears of every record, with the offsets
//!   Kafka gave them, when the application drops the delivery futures.

mod common;

use std::time::{Duration, Instant};

use common::{connect, create_topic, unique_topic, within};
use ferrokafka::{
    Client, Consumer, ConsumerRecord, IsolationLevel, OffsetReset, OffsetSpec, Producer, Record,
    RecordMetadata, SeekTo, TimestampType, TopicPartition,
};

async fn kafka_client() -> Client {
    connect(&common::kafka().bootstrap()).await
}

/// A transactional producer, initialized, with a fresh transactional id.
async fn txn_producer(client: &Client) -> Producer {
    let p = Producer::builder(client)
        .set("transactional.id", &unique_topic("tid"))
        .build()
        .await
        .unwrap();
    within("init_transactions", p.init_transactions())
        .await
        .unwrap();
    p
}

/// Sends one record and waits for its delivery, so the order in the log is the order of the
/// calls.
async fn send(p: &Producer, record: Record) -> RecordMetadata {
    within("send", async { p.send(record).await?.await })
        .await
        .unwrap()
}

/// A consumer without a group at `isolation`, assigned `tps`, from the beginning.
async fn reader(client: &Client, isolation: IsolationLevel, tps: &[TopicPartition]) -> Consumer {
    let c = Consumer::builder(client)
        .isolation_level(isolation)
        .offset_reset(OffsetReset::Earliest)
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    within("assign", c.assign(tps)).await.unwrap();
    c
}

fn partitions(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

/// `(partition, offset, value)`: what a test compares.
type Seen = (i32, i64, String);

fn seen(r: &ConsumerRecord) -> Seen {
    let value = r.value.as_deref().map(String::from_utf8_lossy);
    (
        r.partition,
        r.offset,
        value.unwrap_or_default().into_owned(),
    )
}

/// Receives until the position of every partition of `tps` reaches its `ends` entry, then
/// for `quiet` more (nothing more may come). Sorted by partition, each in the order received.
async fn read_to(c: &Consumer, tps: &[TopicPartition], ends: &[i64], quiet: Duration) -> Vec<Seen> {
    let mut got = Vec::new();
    let deadline = Instant::now() + common::TEST_TIMEOUT;
    let reached = |c: &Consumer| {
        tps.iter()
            .zip(ends)
            .all(|(tp, &end)| c.position(tp).unwrap().is_some_and(|p| p >= end))
    };
    // Batches with no record for the application (markers, aborted data) deliver nothing
    // but still move the position: wait in short slices and look again.
    while !reached(c) {
        let positions: Vec<_> = tps.iter().map(|tp| c.position(tp).unwrap()).collect();
        assert!(
            Instant::now() < deadline,
            "positions {positions:?} did not reach {ends:?}; got {got:?}"
        );
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), c.recv()).await {
            got.push(seen(&r.unwrap()));
        }
    }
    got.extend(drain(c, quiet).await);
    got.sort_by_key(|s| s.0);
    got
}

/// Everything `c` receives until `quiet` passes without a record.
async fn drain(c: &Consumer, quiet: Duration) -> Vec<Seen> {
    let mut got = Vec::new();
    while let Ok(r) = tokio::time::timeout(quiet, c.recv()).await {
        got.push(seen(&r.unwrap()));
    }
    got
}

/// The position once the lookup a seek started has been answered.
async fn resolved_position(c: &Consumer, tp: &TopicPartition) -> i64 {
    let deadline = Instant::now() + common::TEST_TIMEOUT;
    loop {
        if let Some(p) = c.position(tp).unwrap() {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "{tp}: the seek was never resolved"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn latest(client: &Client, tp: &TopicPartition) -> i64 {
    within(
        "ListOffsets latest",
        client
            .admin()
            .list_offsets(&tp.topic, tp.partition, OffsetSpec::Latest),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn read_committed_never_delivers_records_of_aborted_transactions() {
    let client = kafka_client().await;
    let topic = unique_topic("rc-aborted");
    create_topic(&client, &topic, 3).await;
    let tps = partitions(&topic, 3);
    let (a, b) = (txn_producer(&client).await, txn_producer(&client).await);
    let plain = Producer::builder(&client).build().await.unwrap();
    // Every record, and the ones a read_committed reader may see.
    let mut all: Vec<Seen> = Vec::new();
    let mut committed: Vec<Seen> = Vec::new();
    let mut write = |m: RecordMetadata, value: String, kept: bool| {
        let s = (m.partition, m.offset, value);
        if kept {
            committed.push(s.clone());
        }
        all.push(s);
    };
    // Two rounds with both producers' transactions open at once, interleaved record by
    // record in the same partitions, with plain records between: one commits, the other
    // aborts (A then B in round 0, the other way round in round 1).
    for round in 0..2 {
        a.begin_transaction().unwrap();
        b.begin_transaction().unwrap();
        let a_commits = round == 0;
        for i in 0..6i32 {
            for (name, p, commits) in [("a", &a, a_commits), ("b", &b, !a_commits)] {
                let v = format!("{round}-{name}-{i}-{}", if commits { "c" } else { "x" });
                let partition = (i + (name == "b") as i32) % 3;
                let m = send(p, Record::new(&topic).partition(partition).value(v.clone())).await;
                write(m, v, commits);
            }
            let v = format!("{round}-plain-{i}");
            let m = send(
                &plain,
                Record::new(&topic).partition(i % 3).value(v.clone()),
            )
            .await;
            write(m, v, true);
        }
        let (commit, abort) = if a_commits { (&a, &b) } else { (&b, &a) };
        within("abort", abort.abort_transaction()).await.unwrap();
        within("commit", commit.commit_transaction()).await.unwrap();
    }
    // One producer alone, back to back in one partition: abort, commit, abort, commit.
    for (i, commits) in [false, true, false, true].into_iter().enumerate() {
        a.begin_transaction().unwrap();
        let v = format!("2-a-{i}-{}", if commits { "c" } else { "x" });
        let m = send(&a, Record::new(&topic).partition(0).value(v.clone())).await;
        write(m, v, commits);
        if commits {
            within("commit", a.commit_transaction()).await.unwrap();
        } else {
            within("abort", a.abort_transaction()).await.unwrap();
        }
    }
    all.sort();
    committed.sort();
    assert!(committed.len() < all.len());

    let mut ends = Vec::new();
    for tp in &tps {
        ends.push(latest(&client, tp).await);
    }
    let quiet = Duration::from_millis(500);
    let rc = reader(&client, IsolationLevel::ReadCommitted, &tps).await;
    let got = read_to(&rc, &tps, &ends, quiet).await;
    assert_eq!(got, committed, "read_committed");
    // One batch per Fetch (Kafka returns at least one whatever the limit): transactions span
    // many answers, each listing the aborted transactions that overlap it.
    let small = Consumer::builder(&client)
        .isolation_level(IsolationLevel::ReadCommitted)
        .offset_reset(OffsetReset::Earliest)
        .set("max.partition.fetch.bytes", "1")
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    within("assign", small.assign(&tps)).await.unwrap();
    let got = read_to(&small, &tps, &ends, quiet).await;
    assert_eq!(got, committed, "read_committed, one batch per fetch");
    let ru = reader(&client, IsolationLevel::ReadUncommitted, &tps).await;
    let got = read_to(&ru, &tps, &ends, quiet).await;
    assert_eq!(got, all, "read_uncommitted gets the aborted records too");
    for c in [rc, small, ru] {
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn read_committed_stops_at_the_last_stable_offset_while_a_transaction_is_open() {
    let client = kafka_client().await;
    let topic = unique_topic("rc-lso");
    create_topic(&client, &topic, 1).await;
    let tp = TopicPartition::new(&topic, 0);
    let tps = [tp.clone()];
    let txn = txn_producer(&client).await;
    let plain = Producer::builder(&client).build().await.unwrap();
    let value = |v: &str| Record::new(&topic).partition(0).value(v.to_owned());
    let quiet = Duration::from_millis(1500);

    assert_eq!(send(&plain, value("before")).await.offset, 0);
    txn.begin_transaction().unwrap();
    assert_eq!(send(&txn, value("open")).await.offset, 1);
    // Committed at once, but behind the open transaction.
    assert_eq!(send(&plain, value("after")).await.offset, 2);
    // ListOffsets LATEST (read_uncommitted) is the high watermark, open records included.
    assert_eq!(latest(&client, &tp).await, 3);

    let rc = reader(&client, IsolationLevel::ReadCommitted, &tps).await;
    let ru = reader(&client, IsolationLevel::ReadUncommitted, &tps).await;
    assert_eq!(
        drain(&rc, quiet).await,
        [(0, 0, "before".to_owned())],
        "read_committed reads up to the last stable offset only"
    );
    assert_eq!(rc.position(&tp).unwrap(), Some(1));
    let ru_got = read_to(&ru, &tps, &[3], Duration::ZERO).await;
    assert_eq!(
        ru_got,
        [
            (0, 0, "before".to_owned()),
            (0, 1, "open".to_owned()),
            (0, 2, "after".to_owned()),
        ]
    );
    // For a read_committed consumer the end of the log is the last stable offset.
    let end = reader(&client, IsolationLevel::ReadCommitted, &tps).await;
    end.seek(&tp, SeekTo::End).unwrap();
    assert_eq!(resolved_position(&end, &tp).await, 1, "LSO, not HW 3");

    within("commit", txn.commit_transaction()).await.unwrap();
    // The COMMIT marker is offset 3.
    let committed = [(0, 1, "open".to_owned()), (0, 2, "after".to_owned())];
    assert_eq!(read_to(&rc, &tps, &[4], quiet).await, committed);
    assert_eq!(read_to(&end, &tps, &[4], quiet).await, committed);

    // The same with an abort: the open records never come, the plain one behind them does.
    txn.begin_transaction().unwrap();
    assert_eq!(send(&txn, value("open-aborted")).await.offset, 4);
    assert_eq!(send(&plain, value("after-2")).await.offset, 5);
    assert_eq!(drain(&rc, quiet).await, [], "held back at the LSO");
    assert_eq!(rc.position(&tp).unwrap(), Some(4));
    within("abort", txn.abort_transaction()).await.unwrap();
    assert_eq!(
        read_to(&rc, &tps, &[7], quiet).await,
        [(0, 5, "after-2".to_owned())]
    );
    for c in [rc, ru, end] {
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn list_offsets_by_timestamp_finds_the_first_record_at_or_after_it() {
    let client = kafka_client().await;
    let topic = unique_topic("by-time");
    create_topic(&client, &topic, 1).await;
    let tp = TopicPartition::new(&topic, 0);
    let plain = Producer::builder(&client).build().await.unwrap();
    // Ten minutes ago: Kafka 4 refuses CreateTimes more than an hour in the future
    // (log.message.timestamp.after.max.ms), not ones in the past.
    let base = (now_ms() / 1000 - 600) * 1000;
    // Offsets 0..=4 one batch each; 5..=7 sent together (one batch, most likely): a lookup
    // must also find a record inside a batch.
    let times = [0, 10, 10, 20, 40, 50, 55, 60].map(|d| base + d);
    let mut deliveries = Vec::new();
    for (i, &ts) in times.iter().enumerate() {
        let r = Record::new(&topic)
            .partition(0)
            .value(format!("t{i}"))
            .timestamp(ts);
        let d = within("send", plain.send(r)).await.unwrap();
        if i < 5 {
            let m = within("delivery", d).await.unwrap();
            assert_eq!((m.offset, m.timestamp), (i as i64, ts), "CreateTime kept");
        } else {
            deliveries.push(d);
        }
    }
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = within("delivery", d).await.unwrap();
        assert_eq!((m.offset, m.timestamp), (5 + i as i64, times[5 + i]));
    }

    let lookup = |ts: i64| {
        let admin = client.admin();
        let topic = topic.clone();
        async move {
            within(
                "ListOffsets by timestamp",
                admin.list_offsets(&topic, 0, OffsetSpec::Timestamp(ts)),
            )
            .await
            .unwrap()
        }
    };
    // (timestamp, Kafka's answer: the earliest offset with a timestamp >= it, -1 if none).
    let cases = [
        (base - 3_600_000, 0),
        (base - 1, 0),
        (base, 0),
        (base + 1, 1),
        (base + 10, 1),
        (base + 11, 3),
        (base + 20, 3),
        (base + 21, 4),
        (base + 40, 4),
        (base + 41, 5),
        (base + 52, 6),
        (base + 55, 6),
        (base + 56, 7),
        (base + 60, 7),
        (base + 61, -1),
        (now_ms() + 60_000, -1),
    ];
    for (ts, want) in cases {
        assert_eq!(lookup(ts).await, want, "timestamp base{:+}", ts - base);
    }
    let admin = client.admin();
    let earliest = within(
        "earliest",
        admin.list_offsets(&topic, 0, OffsetSpec::Earliest),
    );
    assert_eq!(earliest.await.unwrap(), 0);
    assert_eq!(latest(&client, &tp).await, 8);
    let max = || {
        within(
            "max timestamp",
            admin.list_offsets(&topic, 0, OffsetSpec::MaxTimestamp),
        )
    };
    assert_eq!(max().await.unwrap(), 7, "base+60 at offset 7");
    // A record stamped later than every other, though not last in the log, is the new max.
    let m = send(
        &plain,
        Record::new(&topic)
            .partition(0)
            .value("latest stamp")
            .timestamp(base + 100),
    )
    .await;
    send(
        &plain,
        Record::new(&topic)
            .partition(0)
            .value("older stamp")
            .timestamp(base + 30),
    )
    .await;
    assert_eq!(max().await.unwrap(), m.offset);
    assert_eq!(m.offset, 8);
    assert_eq!(
        lookup(base + 61).await,
        8,
        "the first at or after, not the last"
    );
    assert_eq!(latest(&client, &tp).await, 10);

    // The consumer's seek by timestamp: the same lookup, then reading from there.
    let c = reader(
        &client,
        IsolationLevel::ReadUncommitted,
        std::slice::from_ref(&tp),
    )
    .await;
    c.seek(&tp, SeekTo::Timestamp(base + 11)).unwrap();
    let r = within("recv", c.recv()).await.unwrap();
    assert_eq!((r.offset, r.timestamp), (3, base + 20));
    assert_eq!(r.timestamp_type, TimestampType::CreateTime);
    c.seek(&tp, SeekTo::Timestamp(base + 52)).unwrap();
    let r = within("recv", c.recv()).await.unwrap();
    assert_eq!((r.offset, r.timestamp), (6, base + 55));
    // After every record: the end of the log, so the next record produced comes next.
    c.seek(&tp, SeekTo::Timestamp(base + 101)).unwrap();
    assert_eq!(resolved_position(&c, &tp).await, 10);
    let m = send(&plain, Record::new(&topic).partition(0).value("later")).await;
    let r = within("recv", c.recv()).await.unwrap();
    assert_eq!(seen(&r), (0, m.offset, "later".to_owned()));
    c.close().await.unwrap();
}

#[tokio::test]
async fn seek_to_end_gets_only_new_records_and_beginning_gets_all() {
    let client = kafka_client().await;
    let topic = unique_topic("seek-ends");
    create_topic(&client, &topic, 2).await;
    let tps = partitions(&topic, 2);
    let plain = Producer::builder(&client).build().await.unwrap();
    let mut all: Vec<Seen> = Vec::new();
    let produce = |round: usize| {
        let (plain, topic) = (plain.clone(), topic.clone());
        async move {
            let mut out = Vec::new();
            for i in 0..6 {
                let v = format!("{round}-{i}");
                let m = send(
                    &plain,
                    Record::new(&topic).partition(i % 2).value(v.clone()),
                )
                .await;
                out.push((m.partition, m.offset, v));
            }
            out
        }
    };
    let old = produce(0).await;
    all.extend(old.iter().cloned());
    // LATEST is the high watermark: one past the last acknowledged record.
    for tp in &tps {
        let last = old
            .iter()
            .filter(|s| s.0 == tp.partition)
            .map(|s| s.1)
            .max();
        assert_eq!(latest(&client, tp).await, last.unwrap() + 1);
        assert_eq!(latest(&client, tp).await, 3);
    }

    let end = reader(&client, IsolationLevel::ReadUncommitted, &tps).await;
    for tp in &tps {
        end.seek(tp, SeekTo::End).unwrap();
    }
    for tp in &tps {
        assert_eq!(resolved_position(&end, tp).await, 3);
    }
    let new = produce(1).await;
    all.extend(new.iter().cloned());
    let mut new_sorted = new.clone();
    new_sorted.sort();
    let got = read_to(&end, &tps, &[6, 6], Duration::from_millis(500)).await;
    assert_eq!(got, new_sorted, "after SeekTo::End: only what came later");

    let beginning = reader(&client, IsolationLevel::ReadUncommitted, &tps).await;
    // Away from the start first, so the seek back is what matters.
    for tp in &tps {
        beginning.seek(tp, SeekTo::Offset(5)).unwrap();
        beginning.seek(tp, SeekTo::Beginning).unwrap();
    }
    all.sort();
    assert_eq!(
        read_to(&beginning, &tps, &[6, 6], Duration::from_millis(500)).await,
        all,
        "SeekTo::Beginning: everything, in order"
    );
    end.close().await.unwrap();
    beginning.close().await.unwrap();
}

#[tokio::test]
async fn the_delivery_handler_reports_every_record_with_its_offset() {
    let client = kafka_client().await;
    let topic = unique_topic("on-delivery");
    create_topic(&client, &topic, 2).await;
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let p = Producer::builder(&client)
        .on_delivery(move |d| {
            let outcome = d.offset().ok_or_else(|| format!("{:?}", d.error()));
            seen.lock().unwrap().push((d.partition(), outcome));
        })
        .build()
        .await
        .unwrap();
    for i in 0..200 {
        let r = Record::new(&topic).partition(i % 2).value(format!("v{i}"));
        drop(p.send(r).await.unwrap());
    }
    within("flush", p.flush()).await.unwrap();
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 200);
    for partition in 0..2 {
        let offsets: Vec<i64> = reports
            .iter()
            .filter(|r| r.0 == partition)
            .map(|r| r.1.clone().unwrap())
            .collect();
        assert_eq!(
            offsets,
            (0..100).collect::<Vec<i64>>(),
            "partition {partition}"
        );
        let tp = TopicPartition::new(&topic, partition);
        assert_eq!(latest(&client, &tp).await, 100);
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
