//! Share groups (KIP-932, "queues for Kafka") on a real Apache Kafka 4.4 node, which
//! finalizes share.version 2 on a fresh format: ferrokafka's `ShareConsumer` against the
//! broker's record locks and share sessions, and next to Java's `KafkaShareConsumer`
//! (`tests/kafka/java/SharePeer.java`, through `common::java`).
//!
//! Every test uses its own topic and group, configured through the Java admin
//! (IncrementalAlterConfigs on the GROUP resource): `share.auto.offset.reset=earliest`, so
//! records produced before the consumers start are delivered. All tests share one node.
//! Without Kafka and the Java peer (`cargo xtask install-brokers`) every test fails, saying so.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::java::JavaPeer;
use common::{connect, create_topic, unique_topic, within};
use ferrokafka::{
    AcknowledgeType, AcknowledgementMode, Client, KafkaCode, Producer, Record, ShareConsumer,
    ShareRecord, TopicPartition,
};

/// The group's configuration, set before any member joins.
async fn configure_group(bootstrap: &str, topic: &str, group: &str, extra: &[(&str, &str)]) {
    let mut args: Vec<String> = [
        "share-config",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "-X",
        "share.auto.offset.reset=earliest",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (k, v) in extra {
        args.push("-X".into());
        args.push(format!("{k}={v}"));
    }
    let mut peer = JavaPeer::spawn(&args);
    let line = peer.line(Duration::from_secs(60)).await;
    assert_eq!(
        line.as_deref(),
        Some("configured"),
        "configuring share group {group} failed: {}",
        peer.describe()
    );
}

/// Produces `per_partition` records to each of `partitions` partitions; values `p-i`.
async fn produce(client: &Client, topic: &str, partitions: i32, per_partition: usize) {
    produce_paced(client, topic, partitions, per_partition, None).await
}

/// Like [`produce`]; with `pace`, one record per partition at a time, each round waited for
/// and followed by that pause, so the log holds many small batches that the broker can
/// hand to different members (it acquires whole batches).
async fn produce_paced(
    client: &Client,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    pace: Option<Duration>,
) {
    let producer = Producer::builder(client).build().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let r = Record::new(topic).partition(p).value(format!("{p}-{i}"));
            pending.push(producer.send(r).await.unwrap());
        }
        if let Some(pause) = pace {
            for d in pending.drain(..) {
                d.await.unwrap();
            }
            tokio::time::sleep(pause).await;
        }
    }
    for d in pending {
        d.await.unwrap();
    }
    producer.close(Duration::from_secs(30)).await.unwrap();
}

async fn share_consumer(client: &Client, group: &str, mode: AcknowledgementMode) -> ShareConsumer {
    ShareConsumer::builder(client)
        .group_id(group)
        .acknowledgement_mode(mode)
        .fetch_max_wait(Duration::from_millis(200))
        .build()
        .await
        .unwrap()
}

/// Receives until `n` records arrived (panics after 60 s).
async fn recv_n(c: &ShareConsumer, n: usize, what: &str) -> Vec<ShareRecord> {
    within(what, async {
        let mut out = Vec::new();
        while out.len() < n {
            out.push(c.recv().await.unwrap());
        }
        out
    })
    .await
}

/// Receives for `quiet`; returns whatever came (tests expect nothing).
async fn recv_for(c: &ShareConsumer, quiet: Duration) -> Vec<ShareRecord> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + quiet;
    while let Ok(r) = tokio::time::timeout_at(deadline, c.recv()).await {
        out.push(r.unwrap());
    }
    out
}

/// Takes the Java member's `shared` lines seen so far into `collected`.
fn drain_java(java: &mut JavaPeer, collected: &Mutex<Vec<Delivery>>, seen: &AtomicUsize) {
    while let Some(e) = java.try_event() {
        let common::java::Event::Other(line) = e else {
            continue;
        };
        let f: Vec<&str> = line.split('\t').collect();
        if f[0] == "shared" {
            let (p, o, d) = (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            collected.lock().unwrap().push(("java".into(), p, o, d));
            seen.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Who got which record: (member, partition, offset, delivery count).
type Delivery = (String, i32, i64, i16);

fn key(r: &ShareRecord) -> (i32, i64) {
    (r.partition, r.offset)
}

/// Four members of one share group — three ferrokafka, one Java — read a 2-partition topic
/// that is produced to while they run: every record is delivered exactly once overall, on its
/// first delivery, and accepted (implicit mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_members_three_ferrokafka_one_java_get_every_record_exactly_once() {
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("share-four");
    let group = unique_topic("share-four-g");
    create_topic(&client, &topic, 2).await;
    configure_group(&bootstrap, &topic, &group, &[]).await;
    const PER_PARTITION: usize = 300;
    const TOTAL: usize = 2 * PER_PARTITION;

    let mut java = JavaPeer::spawn(&[
        "share-consume",
        "--bootstrap",
        &bootstrap,
        "--topic",
        &topic,
        "--group",
        &group,
        "-X",
        "max.poll.records=20",
    ]);
    let seen = Arc::new(AtomicUsize::new(0));
    let collected: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    // Java alone first: it joins, gets the first records and so is sure to take part (a
    // JVM starts slower than the others and would otherwise find everything taken).
    let first = java.line(Duration::from_secs(60)).await;
    assert_eq!(first.as_deref(), Some("polling"), "{}", java.describe());
    const HEAD_START: usize = 20;
    produce_paced(&client, &topic, 2, HEAD_START, None).await;
    within("the Java member's first record", async {
        while collected.lock().unwrap().is_empty() {
            drain_java(&mut java, &collected, &seen);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // Members with an assignment (the broker hands partitions to new members with their
    // heartbeats, every few seconds).
    let ready = Arc::new(AtomicUsize::new(0));
    let mut members = Vec::new();
    for m in 0..3 {
        let client = client.clone();
        let group = group.clone();
        let topic = topic.clone();
        let seen = seen.clone();
        let ready = ready.clone();
        let collected = collected.clone();
        members.push(tokio::spawn(async move {
            let c = ShareConsumer::builder(&client)
                .group_id(&group)
                .max_poll_records(20)
                .fetch_max_wait(Duration::from_millis(200))
                .build()
                .await
                .unwrap();
            c.subscribe(&[&topic]).await.unwrap();
            let mut assigned = false;
            while seen.load(Ordering::SeqCst) < TOTAL {
                if !assigned && !c.assignment().is_empty() {
                    assigned = true;
                    ready.fetch_add(1, Ordering::SeqCst);
                }
                match tokio::time::timeout(Duration::from_millis(300), c.recv()).await {
                    Ok(r) => {
                        let r = r.unwrap();
                        collected.lock().unwrap().push((
                            format!("ferrokafka-{m}"),
                            r.partition,
                            r.offset,
                            r.delivery_count,
                        ));
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => continue,
                }
            }
            // A record redelivered by mistake would show up now.
            for r in recv_for(&c, Duration::from_secs(2)).await {
                collected.lock().unwrap().push((
                    format!("ferrokafka-{m} (late)"),
                    r.partition,
                    r.offset,
                    r.delivery_count,
                ));
            }
            c.close().await.unwrap();
        }));
    }
    // The rest once all four have partitions, in small batches so the broker can spread them.
    within("three ferrokafka members assigned", async {
        while ready.load(Ordering::SeqCst) < 3 {
            drain_java(&mut java, &collected, &seen);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    produce_paced(
        &client,
        &topic,
        2,
        PER_PARTITION - HEAD_START,
        Some(Duration::from_millis(5)),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.load(Ordering::SeqCst) < TOTAL {
        assert!(
            Instant::now() < deadline,
            "only {} of {TOTAL} records delivered in 90 s",
            seen.load(Ordering::SeqCst)
        );
        drain_java(&mut java, &collected, &seen);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for m in members {
        within("ferrokafka members finishing", m).await.unwrap();
    }
    java.send_line("stop").await;
    for e in java.finish(Duration::from_secs(30)).await {
        if let common::java::Event::Other(line) = e {
            let f: Vec<&str> = line.split('\t').collect();
            if f[0] == "shared" {
                collected.lock().unwrap().push((
                    "java (late)".into(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                ));
            }
        }
    }
    let collected = collected.lock().unwrap().clone();
    let mut by_record: BTreeMap<(i32, i64), Vec<(String, i16)>> = BTreeMap::new();
    let mut per_member: BTreeMap<String, usize> = BTreeMap::new();
    for (who, p, o, d) in &collected {
        by_record
            .entry((*p, *o))
            .or_default()
            .push((who.clone(), *d));
        *per_member.entry(who.clone()).or_default() += 1;
    }
    let twice: Vec<_> = by_record.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let redelivered: Vec<_> = by_record
        .iter()
        .filter(|(_, v)| v.iter().any(|(_, d)| *d != 1))
        .collect();
    assert!(
        redelivered.is_empty(),
        "not first deliveries: {redelivered:?}"
    );
    let expected: Vec<(i32, i64)> = (0..2)
        .flat_map(|p| (0..PER_PARTITION as i64).map(move |o| (p, o)))
        .collect();
    let got: Vec<(i32, i64)> = by_record.keys().copied().collect();
    assert_eq!(got, expected, "members: {per_member:?}");
    eprintln!("records per member: {per_member:?}");
    assert!(
        per_member.get("java").is_some_and(|n| *n > 0)
            && per_member.keys().any(|m| m.starts_with("ferrokafka")),
        "the group did not share the records: {per_member:?}"
    );
    client.close().await;
}

/// Explicit mode: RELEASE gives a record back (delivered again, delivery count 2); REJECT
/// archives it (never delivered again); ACCEPT is final. RENEW fails clearly (this client
/// speaks ShareAcknowledge v1; RENEW needs v2, KIP-1222).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_redelivers_with_a_higher_count_and_reject_never_redelivers() {
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("share-ack");
    let group = unique_topic("share-ack-g");
    create_topic(&client, &topic, 1).await;
    configure_group(&bootstrap, &topic, &group, &[]).await;
    produce(&client, &topic, 1, 10).await;

    let c = share_consumer(&client, &group, AcknowledgementMode::Explicit).await;
    c.subscribe(&[&topic]).await.unwrap();
    let first = recv_n(&c, 10, "the first delivery of 10 records").await;
    let offsets: Vec<(i64, i16)> = first.iter().map(|r| (r.offset, r.delivery_count)).collect();
    assert_eq!(offsets, (0..10).map(|o| (o, 1)).collect::<Vec<_>>());
    // A renewal not yet sent is replaced by the final acknowledgement below (Kafka 4.4
    // speaks ShareAcknowledge v2, so RENEW is accepted locally).
    c.acknowledge(&first[0], AcknowledgeType::Renew).unwrap();
    for r in &first {
        let how = match r.offset {
            1 | 3 => AcknowledgeType::Release,
            5 | 7 | 9 => AcknowledgeType::Reject,
            _ => AcknowledgeType::Accept,
        };
        c.acknowledge(r, how).unwrap();
    }
    // A record acknowledged twice is the application's mistake, caught locally.
    assert!(c.acknowledge(&first[0], AcknowledgeType::Accept).is_err());
    let results = c.commit().await.unwrap();
    let tp = TopicPartition::new(&topic, 0);
    assert!(
        matches!(results.get(&tp), Some(Ok(()))),
        "commit results: {results:?}"
    );

    let again = recv_n(&c, 2, "the released records again").await;
    let again_keys: Vec<(i64, i16)> = again.iter().map(|r| (r.offset, r.delivery_count)).collect();
    assert_eq!(again_keys, vec![(1, 2), (3, 2)]);
    for r in &again {
        c.acknowledge(r, AcknowledgeType::Accept).unwrap();
    }
    assert!(matches!(c.commit().await.unwrap().get(&tp), Some(Ok(()))));
    // Rejected records are archived; accepted ones are done: nothing more comes.
    let late = recv_for(&c, Duration::from_secs(3)).await;
    assert!(
        late.is_empty(),
        "delivered again: {:?}",
        late.iter().map(key).collect::<Vec<_>>()
    );
    c.close().await.unwrap();
    // A fresh member of the group sees nothing either.
    let other = share_consumer(&client, &group, AcknowledgementMode::Implicit).await;
    other.subscribe(&[&topic]).await.unwrap();
    let late = recv_for(&other, Duration::from_secs(3)).await;
    assert!(
        late.is_empty(),
        "{:?}",
        late.iter().map(key).collect::<Vec<_>>()
    );
    other.close().await.unwrap();
    client.close().await;
}

/// Implicit mode: each `recv` accepts what the previous one returned, and the acceptance
/// rides on the next ShareFetch. A member that read everything and polled once more is then
/// dropped without `close` (so nothing is acknowledged on its way out): no record comes back,
/// to it or to anyone, because they were all accepted by the polls themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_mode_accepts_on_the_next_poll() {
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("share-implicit");
    let group = unique_topic("share-implicit-g");
    create_topic(&client, &topic, 2).await;
    configure_group(&bootstrap, &topic, &group, &[]).await;
    produce(&client, &topic, 2, 20).await;

    let a = share_consumer(&client, &group, AcknowledgementMode::Implicit).await;
    a.subscribe(&[&topic]).await.unwrap();
    let got = recv_n(&a, 40, "40 records").await;
    let mut keys: Vec<(i32, i64)> = got.iter().map(key).collect();
    keys.sort();
    let expected: Vec<(i32, i64)> = (0..2).flat_map(|p| (0..20).map(move |o| (p, o))).collect();
    assert_eq!(keys, expected);
    assert!(got.iter().all(|r| r.delivery_count == 1));
    // Acknowledging is for explicit mode.
    assert!(a.acknowledge(&got[0], AcknowledgeType::Accept).is_err());
    // The next poll accepts the 40th record and sends the acceptances.
    let more = recv_for(&a, Duration::from_secs(2)).await;
    assert!(
        more.is_empty(),
        "{:?}",
        more.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(a.acknowledgement_failures(), 0);
    drop(a);

    let b = share_consumer(&client, &group, AcknowledgementMode::Implicit).await;
    b.subscribe(&[&topic]).await.unwrap();
    let again = recv_for(&b, Duration::from_secs(4)).await;
    assert!(
        again.is_empty(),
        "accepted records delivered again: {:?}",
        again.iter().map(key).collect::<Vec<_>>()
    );
    // commit with nothing to acknowledge reports nothing.
    assert!(b.commit().await.unwrap().is_empty());
    b.close().await.unwrap();
    client.close().await;
}

/// The acquisition lock: a member that holds records without acknowledging them keeps them
/// from everyone until the lock expires; then another member gets them with delivery count 2,
/// and the first member's late acknowledgement fails per partition (INVALID_RECORD_STATE).
/// A member dropped while holding records loses them to the others too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_records_go_to_others_when_the_lock_expires_or_the_holder_is_dropped() {
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("share-lock");
    let group = unique_topic("share-lock-g");
    create_topic(&client, &topic, 1).await;
    // The shortest lock the broker allows for a group (group.share.min.record.lock.duration.ms
    // is 15 s by default).
    let lock = Duration::from_secs(15);
    configure_group(
        &bootstrap,
        &topic,
        &group,
        &[("share.record.lock.duration.ms", "15000")],
    )
    .await;
    produce(&client, &topic, 1, 5).await;

    let holder = share_consumer(&client, &group, AcknowledgementMode::Explicit).await;
    holder.subscribe(&[&topic]).await.unwrap();
    let held = recv_n(&holder, 5, "the holder's 5 records").await;
    let acquired_at = Instant::now();
    // The holder stops polling. Another member polls and gets nothing until the locks expire.
    let other = share_consumer(&client, &group, AcknowledgementMode::Explicit).await;
    other.subscribe(&[&topic]).await.unwrap();
    let redelivered = recv_n(&other, 5, "the records after the lock expired").await;
    let waited = acquired_at.elapsed();
    assert!(
        waited >= lock - Duration::from_secs(3),
        "redelivered after {waited:?}, before the {lock:?} lock could expire"
    );
    let keys: Vec<(i64, i16)> = redelivered
        .iter()
        .map(|r| (r.offset, r.delivery_count))
        .collect();
    assert_eq!(keys, (0..5).map(|o| (o, 2)).collect::<Vec<_>>());
    // Too late for the holder.
    holder
        .acknowledge(&held[0], AcknowledgeType::Accept)
        .unwrap();
    let results = holder.commit().await.unwrap();
    let tp = TopicPartition::new(&topic, 0);
    match results.get(&tp) {
        Some(Err(e)) => assert_eq!(e.kafka_code(), Some(KafkaCode::InvalidRecordState), "{e}"),
        other => panic!("late acknowledgement: {other:?} (all: {results:?})"),
    }
    for r in &redelivered {
        other.acknowledge(r, AcknowledgeType::Accept).unwrap();
    }
    assert!(matches!(
        other.commit().await.unwrap().get(&tp),
        Some(Ok(()))
    ));
    holder.close().await.unwrap();

    // Dropped while holding: the records are not lost.
    produce(&client, &topic, 1, 3).await;
    let dropped = share_consumer(&client, &group, AcknowledgementMode::Explicit).await;
    dropped.subscribe(&[&topic]).await.unwrap();
    let taken = recv_n(&dropped, 3, "records for the member about to be dropped").await;
    assert_eq!(
        taken.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    drop(dropped);
    let rescued = recv_n(&other, 3, "the dropped member's records").await;
    let keys: Vec<(i64, i16)> = rescued
        .iter()
        .map(|r| (r.offset, r.delivery_count))
        .collect();
    assert_eq!(keys, vec![(5, 2), (6, 2), (7, 2)]);
    other.close().await.unwrap();
    client.close().await;
}

/// RENEW (KIP-1222, ShareAcknowledge v2): a record renewed every 5 s stays with its holder
/// past three 15 s locks (another member polling all along gets nothing), and is accepted
/// afterwards. Without renewal the same lock expires and the record is redelivered
/// (`held_records_go_to_others_when_the_lock_expires_or_the_holder_is_dropped`, the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_record_stays_with_its_holder_past_several_locks() {
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("share-renew");
    let group = unique_topic("share-renew-g");
    create_topic(&client, &topic, 1).await;
    configure_group(
        &bootstrap,
        &topic,
        &group,
        &[("share.record.lock.duration.ms", "15000")],
    )
    .await;
    produce(&client, &topic, 1, 1).await;

    let holder = share_consumer(&client, &group, AcknowledgementMode::Explicit).await;
    holder.subscribe(&[&topic]).await.unwrap();
    let held = recv_n(&holder, 1, "the record to renew").await;
    assert_eq!((held[0].offset, held[0].delivery_count), (0, 1));
    let other = share_consumer(&client, &group, AcknowledgementMode::Explicit).await;
    other.subscribe(&[&topic]).await.unwrap();
    let tp = TopicPartition::new(&topic, 0);

    let renewing = async {
        for _ in 0..9 {
            holder
                .acknowledge(&held[0], AcknowledgeType::Renew)
                .unwrap();
            let results = holder.commit().await.unwrap();
            assert!(
                matches!(results.get(&tp), Some(Ok(()))),
                "renewal refused: {results:?}"
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    };
    let (_, stolen) = tokio::join!(renewing, recv_for(&other, Duration::from_secs(45)));
    assert!(
        stolen.is_empty(),
        "a renewed record went to another member: {:?}",
        stolen
            .iter()
            .map(|r| (r.offset, r.delivery_count))
            .collect::<Vec<_>>()
    );
    assert!(
        holder.acquisition_lock_timeout().is_some(),
        "the v2 answers carry the lock timeout"
    );
    holder
        .acknowledge(&held[0], AcknowledgeType::Accept)
        .unwrap();
    assert!(matches!(
        holder.commit().await.unwrap().get(&tp),
        Some(Ok(()))
    ));
    assert!(recv_for(&other, Duration::from_secs(3)).await.is_empty());
    holder.close().await.unwrap();
    other.close().await.unwrap();
    client.close().await;
}

/// `commit` reports per partition (and only the partitions it acknowledged); `close`
/// releases what the consumer still holds, so another member gets it at once rather than
/// after the (default, 30 s) lock. (Kafka 4.4 also releases a share session's records when the
/// session closes, which `close` does too; the RELEASE acknowledgements `close` sends are
/// pinned on the wire by the unit tests in `src/share/share_tests.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_reports_per_partition_and_close_releases_held_records() {
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("share-close");
    let group = unique_topic("share-close-g");
    create_topic(&client, &topic, 2).await;
    configure_group(&bootstrap, &topic, &group, &[]).await;
    produce(&client, &topic, 2, 10).await;

    let a = share_consumer(&client, &group, AcknowledgementMode::Explicit).await;
    a.subscribe(&[&topic]).await.unwrap();
    let got = recv_n(&a, 20, "20 records").await;
    let mut by_partition: HashMap<i32, usize> = HashMap::new();
    for r in &got {
        *by_partition.entry(r.partition).or_default() += 1;
        if r.partition == 0 {
            a.acknowledge(r, AcknowledgeType::Accept).unwrap();
        }
    }
    assert_eq!(by_partition, HashMap::from([(0, 10), (1, 10)]));
    let results = a.commit().await.unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(matches!(
        results.get(&TopicPartition::new(&topic, 0)),
        Some(Ok(()))
    ));
    let closed_at = Instant::now();
    a.close().await.unwrap();
    assert!(matches!(a.recv().await, Err(ferrokafka::Error::Closed)));

    let b = share_consumer(&client, &group, AcknowledgementMode::Implicit).await;
    b.subscribe(&[&topic]).await.unwrap();
    let released = recv_n(&b, 10, "the records a released on close").await;
    let waited = closed_at.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "took {waited:?}: released records should not wait for the 30 s lock"
    );
    let mut keys: Vec<(i32, i64, i16)> = released
        .iter()
        .map(|r| (r.partition, r.offset, r.delivery_count))
        .collect();
    keys.sort();
    assert_eq!(keys, (0..10).map(|o| (1, o, 2)).collect::<Vec<_>>());
    // Partition 0 was accepted: nothing of it comes back.
    let late = recv_for(&b, Duration::from_secs(2)).await;
    assert!(
        late.is_empty(),
        "{:?}",
        late.iter().map(key).collect::<Vec<_>>()
    );
    b.close().await.unwrap();
    client.close().await;
}
