//! The consumer against a real broker (Tansu, or `KAFKA_BOOTSTRAP`): assign and group reads,
//! commits, rebalances, seek/pause/resume, hooks, a stalled application, librdkafka peers.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{broker_with_topic, create_topic, unique_topic, within};
use ferrokafka::{
    Client, CommitOffset, Consumer, ConsumerBuilder, ConsumerRecord, Error, OffsetReset, Producer,
    RebalanceContext, RebalanceListener, Record, SeekTo, TopicPartition,
};
use futures::StreamExt;

/// Produces `n` records `k{i}`/`v{i}` with a header and a fixed timestamp; returns where each
/// landed: key → (partition, offset).
async fn produce(client: &Client, topic: &str, n: usize) -> HashMap<String, (i32, i64)> {
    let producer = Producer::builder(client).build().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let r = Record::new(topic)
            .key(format!("k{i}"))
            .value(format!("v{i}"))
            .header("i", i.to_string())
            .timestamp(1_700_000_000_000 + i as i64);
        pending.push((format!("k{i}"), producer.send(r).await.unwrap()));
    }
    let mut out = HashMap::new();
    for (k, d) in pending {
        let m = within("delivery", d).await.unwrap();
        out.insert(k, (m.partition, m.offset));
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    out
}

/// A consumer builder tuned for Tansu's slow join rounds (session.timeout.ms / 2 each).
fn builder(client: &Client, group: Option<&str>) -> ConsumerBuilder {
    let mut b = Consumer::builder(client)
        .offset_reset(OffsetReset::Earliest)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.max.wait.ms", "100");
    if let Some(g) = group {
        b = b.group_id(g);
    }
    b
}

fn all_partitions(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

async fn recv_n(c: &Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(within("recv", c.recv()).await.unwrap());
    }
    out
}

#[tokio::test]
async fn assign_reads_every_record_with_headers_and_timestamps() {
    let (_broker, client, topic) = broker_with_topic("cons", 3).await;
    let written = produce(&client, &topic, 900).await;
    let consumer = builder(&client, None).build().await.unwrap();
    consumer.assign(&all_partitions(&topic, 3)).await.unwrap();
    let got = recv_n(&consumer, 900).await;
    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut keys = HashSet::new();
    for r in &got {
        let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
        let i: i64 = key[1..].parse().unwrap();
        assert_eq!(written[&key], (r.partition, r.offset), "{key}");
        assert_eq!(r.value.as_deref(), Some(format!("v{i}").as_bytes()));
        assert_eq!(r.timestamp, 1_700_000_000_000 + i);
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].key, "i");
        assert_eq!(
            r.headers[0].value.as_deref(),
            Some(i.to_string().as_bytes())
        );
        let prev = last.insert(r.partition, r.offset);
        assert!(
            prev.is_none_or(|p| p < r.offset),
            "offsets go up per partition"
        );
        assert!(keys.insert(key), "no duplicates");
    }
    let pos = consumer.position(&TopicPartition::new(&topic, 0)).unwrap();
    assert_eq!(pos, Some(last[&0] + 1));
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn stream_and_batch_forms_hand_out_the_same_records() {
    let (_broker, client, topic) = broker_with_topic("cons", 1).await;
    produce(&client, &topic, 200).await;
    let consumer = builder(&client, None).build().await.unwrap();
    consumer.assign(&all_partitions(&topic, 1)).await.unwrap();
    let first: Vec<ConsumerRecord> = consumer
        .stream()
        .take(50)
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(
        first.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    let mut rest = Vec::new();
    while rest.len() < 150 {
        let batch = within("batch", consumer.recv_batch(64)).await.unwrap();
        assert!(!batch.is_empty() && batch.len() <= 64);
        rest.extend(batch);
    }
    assert_eq!(
        rest.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (50..200).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn seek_pause_and_resume() {
    let (broker, client, topic) = broker_with_topic("cons", 2).await;
    let produced = produce(&client, &topic, 400).await;
    let consumer = builder(&client, None).build().await.unwrap();
    let tps = all_partitions(&topic, 2);
    consumer.assign(&tps).await.unwrap();
    recv_n(&consumer, 20).await;
    // Seek partition 0 to offset 5: the next record of p0 is offset 5, whatever was buffered.
    consumer.seek(&tps[0], SeekTo::Offset(5)).unwrap();
    consumer.pause(&tps[1..]).unwrap();
    let r = within("after seek", consumer.recv()).await.unwrap();
    assert_eq!((r.partition, r.offset), (0, 5));
    // Paused p1 hands out nothing until resumed.
    let mut p0 = 1;
    loop {
        let r = within("paused", consumer.recv()).await.unwrap();
        assert_eq!(r.partition, 0, "p1 is paused");
        p0 += 1;
        if r.offset == consumer.position(&tps[0]).unwrap().unwrap() - 1 && p0 > 50 {
            break;
        }
    }
    let paused_at = consumer.position(&tps[1]).unwrap().unwrap();
    // (Not SeekTo::End to quiet p0: Tansu answers ListOffsets LATEST wrongly.)
    consumer.pause(&tps[..1]).unwrap();
    consumer.resume(&tps[1..]).unwrap();
    let r = within("resumed", consumer.recv()).await.unwrap();
    assert_eq!(
        (r.partition, r.offset),
        (1, paused_at),
        "resumes where it paused"
    );
    consumer.seek(&tps[1], SeekTo::Beginning).unwrap();
    let r = within("beginning", consumer.recv()).await.unwrap();
    assert_eq!((r.partition, r.offset), (1, 0));
    if broker.is_external() {
        // SeekTo::End on a broker whose ListOffsets LATEST is the high watermark (Tansu's is
        // not, see above): p0's next record is the first one written after the seek.
        let end = produced.values().filter(|(p, _)| *p == 0).count() as i64;
        consumer.pause(&tps[1..]).unwrap();
        consumer.seek(&tps[0], SeekTo::End).unwrap();
        consumer.resume(&tps[..1]).unwrap();
        within("end looked up", async {
            while consumer.position(&tps[0]).unwrap().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(consumer.position(&tps[0]).unwrap(), Some(end));
        let producer = Producer::builder(&client).build().await.unwrap();
        let d = producer
            .send(Record::new(&topic).partition(0).value("after the end"))
            .await
            .unwrap();
        assert_eq!(within("delivery", d).await.unwrap().offset, end);
        producer.close(Duration::from_secs(10)).await.unwrap();
        let r = within("after end", consumer.recv()).await.unwrap();
        assert_eq!((r.partition, r.offset), (0, end));
        assert_eq!(r.value.as_deref(), Some(&b"after the end"[..]));
    }
    assert!(matches!(
        consumer.seek(&TopicPartition::new(&topic, 9), SeekTo::Offset(0)),
        Err(Error::InvalidState(_))
    ));
}

#[tokio::test]
async fn no_committed_offset_with_reset_none_is_a_typed_error() {
    let (_broker, client, topic) = broker_with_topic("cons", 1).await;
    produce(&client, &topic, 10).await;
    let consumer = builder(&client, Some(&unique_topic("g")))
        .offset_reset(OffsetReset::None)
        .build()
        .await
        .unwrap();
    let tps = all_partitions(&topic, 1);
    consumer.assign(&tps).await.unwrap();
    match within("recv", consumer.recv()).await {
        Err(Error::NoOffset {
            topic: t,
            partition,
        }) => {
            assert_eq!((&*t, partition), (topic.as_str(), 0))
        }
        other => panic!("expected NoOffset, got {other:?}"),
    }
    // Seeking makes the partition readable again.
    consumer.seek(&tps[0], SeekTo::Offset(3)).unwrap();
    assert_eq!(within("recv", consumer.recv()).await.unwrap().offset, 3);
}

#[tokio::test]
async fn manual_commit_is_at_least_once_across_a_crash() {
    let (_broker, client, topic) = broker_with_topic("cons", 2).await;
    produce(&client, &topic, 300).await;
    let group = unique_topic("g");
    let a = builder(&client, Some(&group))
        .auto_commit(false)
        .build()
        .await
        .unwrap();
    a.subscribe(&[&topic]).await.unwrap();
    let first = recv_n(&a, 100).await;
    let meta = a.group_metadata().expect("a group member");
    assert_eq!(meta.group_id, group);
    assert!(
        meta.generation_id >= 0 && !meta.member_id.is_empty(),
        "{meta:?}"
    );
    within("commit", a.commit()).await.unwrap();
    let committed_positions: HashMap<i32, i64> = first.iter().fold(HashMap::new(), |mut m, r| {
        m.insert(r.partition, r.offset + 1);
        m
    });
    // Processed 50 more, then "crashed" before committing them: dropped without close.
    let uncommitted = recv_n(&a, 50).await;
    drop(a);
    let b = builder(&client, Some(&group))
        .auto_commit(false)
        .build()
        .await
        .unwrap();
    b.subscribe(&[&topic]).await.unwrap();
    let again = recv_n(&b, 200).await;
    // Everything after the commit comes again (at least once), nothing before it.
    for r in &again {
        assert!(r.offset >= committed_positions.get(&r.partition).copied().unwrap_or(0));
    }
    let seen: HashSet<(i32, i64)> = again.iter().map(|r| (r.partition, r.offset)).collect();
    for r in &uncommitted {
        assert!(
            seen.contains(&(r.partition, r.offset)),
            "redelivered after the crash"
        );
    }
    let committed = b.committed(&all_partitions(&topic, 2)).await.unwrap();
    for (tp, off) in committed {
        // A partition nothing was read from is committed at its start (0), like Java does.
        assert_eq!(
            off.unwrap_or(0),
            committed_positions.get(&tp.partition).copied().unwrap_or(0)
        );
    }
    b.close().await.unwrap();
}

#[tokio::test]
async fn auto_commit_on_close_lets_the_next_member_continue() {
    let (_broker, client, topic) = broker_with_topic("cons", 1).await;
    produce(&client, &topic, 200).await;
    let group = unique_topic("g");
    let a = builder(&client, Some(&group)).build().await.unwrap();
    a.subscribe(&[&topic]).await.unwrap();
    let first = recv_n(&a, 120).await;
    a.close().await.unwrap();
    assert!(a.metrics().commits >= 1);
    let b = builder(&client, Some(&group)).build().await.unwrap();
    b.subscribe(&[&topic]).await.unwrap();
    let next = within("recv", b.recv()).await.unwrap();
    assert_eq!(next.offset, first.last().unwrap().offset + 1);
    b.close().await.unwrap();
}

#[tokio::test]
async fn explicit_offsets_with_metadata_are_committed() {
    let (_broker, client, topic) = broker_with_topic("cons", 2).await;
    let group = unique_topic("g");
    let c = builder(&client, Some(&group)).build().await.unwrap();
    let tps = all_partitions(&topic, 2);
    let offsets: HashMap<TopicPartition, CommitOffset> = [
        (tps[0].clone(), CommitOffset::new(7).with_metadata("m0")),
        (tps[1].clone(), CommitOffset::new(9)),
    ]
    .into_iter()
    .collect();
    within("commit", c.commit_offsets(&offsets)).await.unwrap();
    let got = c.committed(&tps).await.unwrap();
    assert_eq!(got[&tps[0]], Some(7));
    assert_eq!(got[&tps[1]], Some(9));
}

/// Records which partitions a member holds, and commits in `revoked`.
#[derive(Default, Clone)]
struct Tracker {
    owned: Arc<Mutex<BTreeSet<TopicPartition>>>,
    revoked_commits: Arc<Mutex<Vec<Result<(), String>>>>,
    /// Sizes of every `revoked` call.
    revoked_sizes: Arc<Mutex<Vec<usize>>>,
}

#[ferrokafka::async_trait]
impl RebalanceListener for Tracker {
    async fn assigned(&self, _ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        self.owned
            .lock()
            .unwrap()
            .extend(partitions.iter().cloned());
    }
    async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        let r = ctx.commit().await.map_err(|e| e.to_string());
        self.revoked_commits.lock().unwrap().push(r);
        self.revoked_sizes.lock().unwrap().push(partitions.len());
        let mut owned = self.owned.lock().unwrap();
        for p in partitions {
            owned.remove(p);
        }
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Keeps `c` receiving (and dropping what it gets), as a polling application does, until
/// `cond` holds.
async fn polling_until(c: &Consumer, what: &str, cond: impl FnMut() -> bool) {
    let polls = async {
        loop {
            let _ = c.recv().await;
        }
    };
    tokio::select! {
        _ = polls => unreachable!(),
        _ = wait_until(what, cond) => {}
    }
}

#[tokio::test]
async fn members_split_partitions_and_take_over_when_one_leaves() {
    for strategy in ["range", "cooperative-sticky"] {
        let (_broker, client, topic) = broker_with_topic("cons", 4).await;
        produce(&client, &topic, 400).await;
        let group = unique_topic("g");
        let (ta, tb) = (Tracker::default(), Tracker::default());
        let a = builder(&client, Some(&group))
            .set("partition.assignment.strategy", strategy)
            .auto_commit(false)
            .rebalance_listener(ta.clone())
            .build()
            .await
            .unwrap();
        a.subscribe(&[&topic]).await.unwrap();
        recv_n(&a, 10).await;
        assert_eq!(
            ta.owned.lock().unwrap().len(),
            4,
            "{strategy}: alone, a owns all"
        );
        let b = builder(&client, Some(&group))
            .set("partition.assignment.strategy", strategy)
            .auto_commit(false)
            .rebalance_listener(tb.clone())
            .build()
            .await
            .unwrap();
        b.subscribe(&[&topic]).await.unwrap();
        // a keeps polling (as an application does) while the group rebalances.
        polling_until(&a, "split", || {
            let (x, y) = (
                ta.owned.lock().unwrap().clone(),
                tb.owned.lock().unwrap().clone(),
            );
            x.len() == 2 && y.len() == 2 && x.is_disjoint(&y)
        })
        .await;
        // Eager (range) revokes everything a owned; cooperative only the two that move.
        let expected = if strategy == "range" { 4 } else { 2 };
        assert_eq!(
            ta.revoked_sizes.lock().unwrap().first(),
            Some(&expected),
            "{strategy}: first revocation"
        );
        // Commits inside `revoked` reached the coordinator before the partitions moved.
        assert!(
            ta.revoked_commits.lock().unwrap().iter().all(|r| r.is_ok()),
            "{strategy}"
        );
        b.close().await.unwrap();
        polling_until(&a, "take over", || ta.owned.lock().unwrap().len() == 4).await;
        a.close().await.unwrap();
    }
}

#[tokio::test]
async fn stalled_application_gets_a_typed_error_and_the_group_moves_on() {
    let (_broker, client, topic) = broker_with_topic("cons", 2).await;
    produce(&client, &topic, 100).await;
    let group = unique_topic("g");
    let c = builder(&client, Some(&group))
        .set("max.poll.interval.ms", "1500")
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    recv_n(&c, 5).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut got_error = false;
    for _ in 0..200 {
        match within("recv", c.recv()).await {
            Err(Error::PollIntervalExceeded { .. }) => {
                got_error = true;
                break;
            }
            Ok(_) => continue, // records buffered before the stall may not all be dropped
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(got_error, "the stalled application hears about it");
    assert_eq!(c.metrics().poll_interval_exceeded, 1);
    // The next calls rejoin and records flow again.
    within("after rejoin", c.recv()).await.unwrap();
    assert!(
        c.metrics().rebalances >= 2,
        "joined again after leaving: {:?}",
        c.metrics()
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn waiting_in_recv_on_an_idle_topic_is_not_a_stall() {
    let (_broker, client, topic) = broker_with_topic("cons", 1).await;
    let c = builder(&client, Some(&unique_topic("g")))
        .set("max.poll.interval.ms", "1500")
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    // Nothing to read for twice the poll interval, while the application waits in recv.
    let waited = tokio::time::timeout(Duration::from_secs(3), c.recv()).await;
    assert!(waited.is_err(), "nothing was produced: {waited:?}");
    assert_eq!(c.metrics().poll_interval_exceeded, 0);
    produce(&client, &topic, 1).await;
    let r = within("record", c.recv()).await.unwrap();
    assert_eq!(r.offset, 0);
    c.close().await.unwrap();
}

#[tokio::test]
async fn assigned_consumer_with_a_group_auto_commits() {
    let (_broker, client, topic) = broker_with_topic("cons", 1).await;
    produce(&client, &topic, 50).await;
    let group = unique_topic("g");
    let c = builder(&client, Some(&group))
        .set("auto.commit.interval.ms", "100")
        .build()
        .await
        .unwrap();
    let tps = all_partitions(&topic, 1);
    c.assign(&tps).await.unwrap();
    recv_n(&c, 20).await;
    // No explicit commit: the background auto-commit stores the position of the 20 records
    // handed out (it may take a tick or two).
    within("auto-commit", async {
        while c.committed(&tps).await.unwrap()[&tps[0]] != Some(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(c.metrics().commits >= 1);
    c.close().await.unwrap();
}

#[tokio::test]
async fn decodes_what_librdkafka_writes_with_every_codec() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let (broker, client, topic) = broker_with_topic("cons", 1).await;
    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("compression.codec", codec)
            .set("linger.ms", "20")
            .create()
            .unwrap();
        let mut fs = Vec::new();
        for i in 0..50 {
            let v = format!("{codec}-{i}-{}", "x".repeat(i * 7));
            expected.push(v.clone());
            fs.push(
                producer
                    .send_result(FutureRecord::<str, str>::to(&topic).payload(&v))
                    .unwrap(),
            );
        }
        for f in fs {
            f.await.unwrap().unwrap();
        }
    }
    let c = builder(&client, None).build().await.unwrap();
    c.assign(&all_partitions(&topic, 1)).await.unwrap();
    let got = recv_n(&c, expected.len()).await;
    let values: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(values, expected);
}

#[tokio::test]
async fn bad_consumer_config_fails_at_build() {
    let (_broker, client, _topic) = broker_with_topic("cons", 1).await;
    for (k, v) in [
        ("auto.offset.reset", "sometimes"),
        ("partition.assignment.strategy", "sticky-ish"),
        ("fetch.max.byets", "1"),
    ] {
        let e = Consumer::builder(&client)
            .set(k, v)
            .build()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{k}: {e}");
        assert!(
            e.to_string().contains(k.split('.').next().unwrap()),
            "{k}: {e}"
        );
    }
    let c = Consumer::builder(&client).build().await.unwrap();
    assert!(matches!(
        c.subscribe(&["t"]).await,
        Err(Error::InvalidState(_))
    ));
}

#[tokio::test]
async fn a_member_dropped_without_leaving_is_replaced_from_its_last_commit() {
    let (_broker, client, topic) = broker_with_topic("cons", 2).await;
    produce(&client, &topic, 400).await;
    let group = unique_topic("g");
    let tb = Tracker::default();
    let a = builder(&client, Some(&group))
        .auto_commit(false)
        .build()
        .await
        .unwrap();
    a.subscribe(&[&topic]).await.unwrap();
    recv_n(&a, 10).await;
    let b = builder(&client, Some(&group))
        .auto_commit(false)
        .rebalance_listener(tb.clone())
        .build()
        .await
        .unwrap();
    b.subscribe(&[&topic]).await.unwrap();
    // Both poll until the group is split one partition each.
    let poll_both = async {
        loop {
            tokio::select! {
                _ = a.recv() => {}
                _ = b.recv() => {}
            }
        }
    };
    // Split, and a knows where it reads its partition from: right after a rebalance the
    // position is looked up (committed offset, else the reset policy) and `position` is
    // `None` meanwhile. Kafka rebalances fast enough for the check to land in that window.
    let a_positioned = || {
        let assigned = a.assignment();
        assigned.len() == 1 && matches!(a.position(&assigned[0]), Ok(Some(_)))
    };
    tokio::select! {
        _ = poll_both => unreachable!(),
        _ = wait_until("split", || tb.owned.lock().unwrap().len() == 1 && a_positioned()) => {}
    }
    let a_part = a.assignment()[0].clone();
    // a has processed what it received; it commits, then dies without leaving.
    within("commit", a.commit()).await.unwrap();
    let committed = a.position(&a_part).unwrap().expect("a has a position");
    assert_eq!(
        a.committed(std::slice::from_ref(&a_part)).await.unwrap()[&a_part],
        Some(committed)
    );
    drop(a);
    // New records, so a's partition has something after the commit whatever a had read.
    produce(&client, &topic, 100).await;
    // After the session timeout the coordinator gives a's partition to b, which starts at
    // a's commit: nothing committed is lost, nothing before it comes again.
    let first_from_a_part = within("take over", async {
        loop {
            let r = b.recv().await.unwrap();
            if r.topic_partition() == a_part {
                break r.offset;
            }
        }
    })
    .await;
    assert_eq!(first_from_a_part, committed);
    b.close().await.unwrap();
}

/// Commits in `revoked` by itself (auto-commit off).
struct CommitInRevoked;

#[ferrokafka::async_trait]
impl RebalanceListener for CommitInRevoked {
    async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        for tp in partitions {
            assert!(ctx.position(tp).is_some(), "{tp} still visible to the hook");
        }
        ctx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn a_commit_inside_revoked_lands_and_close_never_hangs_on_a_parked_recv() {
    let (_broker, client, topic) = broker_with_topic("cons", 1).await;
    produce(&client, &topic, 10).await;
    let group = unique_topic("g");
    let c = builder(&client, Some(&group))
        .auto_commit(false)
        .rebalance_listener(CommitInRevoked)
        .build()
        .await
        .unwrap();
    c.subscribe(&[&topic]).await.unwrap();
    recv_n(&c, 10).await;
    // A recv future that is alive but no longer polled (as after a select! loop breaks):
    // it waits for records that never come.
    let mut parked = Box::pin(c.recv());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut parked)
            .await
            .is_err()
    );
    within("close", c.close()).await.unwrap();
    assert!(matches!(within("parked", parked).await, Err(Error::Closed)));
    let tps = all_partitions(&topic, 1);
    let committed = c.committed(&tps).await.unwrap()[&tps[0]];
    assert_eq!(committed, Some(10), "the hook's commit landed");
    assert!(matches!(c.recv().await, Err(Error::Closed)));
}

#[tokio::test]
async fn a_consumer_long_polling_does_not_hold_up_a_producer_on_the_same_client() {
    let (_broker, client, topic) = broker_with_topic("cons", 1).await;
    let idle = unique_topic("idle");
    create_topic(&client, &idle, 1).await;
    // The consumer's Fetch waits up to 5 s for data that never comes.
    let c = builder(&client, None)
        .set("fetch.max.wait.ms", "5000")
        .build()
        .await
        .unwrap();
    c.assign(&all_partitions(&idle, 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    for i in 0..5 {
        let d = producer
            .send(Record::new(&topic).value(format!("v{i}")))
            .await
            .unwrap();
        // Kafka answers in order per connection: sharing the fetch socket would make every
        // delivery wait for the long poll (5 s). Fetches have a socket of their own.
        let m = tokio::time::timeout(Duration::from_secs(2), d)
            .await
            .expect("delivery not held behind the consumer's long poll")
            .unwrap();
        assert_eq!(m.offset, i);
    }
    producer.close(Duration::from_secs(5)).await.unwrap();
    c.close().await.unwrap();
}
