//! Interoperability with the Java client (kafka-clients 4.4.0, the reference implementation)
//! on a real Apache Kafka node: the same partition for every key, every codec readable both
//! ways, one consumer group shared by ferrokafka and Java members, and Java's read_committed
//! view of ferrokafka's transactions.
//!
//! The Java side is `tests/kafka/java/JavaPeer.java`, driven through `common::java`; both it
//! and Kafka come from `cargo xtask install-brokers`. Without them every test fails, saying
//! so.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::java::{self, escape, escape_headers, Event, JavaPeer, JavaRecord};
use common::{connect, create_topic, unique_topic, within};
use ferrokafka::{
    Client, Compression, Consumer, ConsumerRecord, Header, OffsetReset, Producer, RebalanceContext,
    RebalanceListener, Record, TopicPartition,
};

/// A record in a form both sides print: key, value, headers.
type Content = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn content_of(r: &ConsumerRecord) -> Content {
    (
        r.key.as_ref().map(|k| k.to_vec()),
        r.value.as_ref().map(|v| v.to_vec()),
        r.headers
            .iter()
            .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
            .collect(),
    )
}

fn java_content(r: &JavaRecord) -> Content {
    (r.key.clone(), r.value.clone(), r.headers.clone())
}

fn all_partitions(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

/// Reads exactly `n` records of every partition of `topic` from the beginning with a
/// ferrokafka consumer (no group), then checks for a moment that no extra record follows.
async fn ferrokafka_read(
    client: &Client,
    topic: &str,
    partitions: i32,
    n: usize,
) -> Vec<ConsumerRecord> {
    let consumer = Consumer::builder(client)
        .offset_reset(OffsetReset::Earliest)
        .set("fetch.max.wait.ms", "100")
        .build()
        .await
        .unwrap();
    consumer
        .assign(&all_partitions(topic, partitions))
        .await
        .unwrap();
    let mut out = Vec::with_capacity(n);
    within("ferrokafka reads every record", async {
        while out.len() < n {
            out.extend(consumer.recv_batch(n - out.len()).await.unwrap());
        }
    })
    .await;
    let extra = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await;
    assert!(extra.is_err(), "more records than written: {extra:?}");
    consumer.close().await.unwrap();
    out
}

#[test]
fn line_protocol_fields_round_trip_every_byte_and_null() {
    let all: Vec<u8> = (0..=255).collect();
    let field = escape(Some(&all));
    assert!(!field.contains(['\t', '\n', ',', '=', '~']), "{field}");
    assert_eq!(java::unescape(&field), Some(all));
    assert_eq!(java::unescape(&escape(None)), None);
    assert_eq!(java::unescape(&escape(Some(b""))), Some(Vec::new()));
    assert_eq!(escape(Some(b"a b~")), "a%20b%7E");
}

/// Keys varied in length and bytes, all distinct.
fn parity_key(i: usize) -> Vec<u8> {
    let mut key = format!("key-{i}-").into_bytes();
    key.extend((0..i % 17).map(|j| (i * 31 + j * 7) as u8));
    key
}

#[tokio::test]
async fn default_partitioners_of_java_and_ferrokafka_agree_on_every_key() {
    const KEYS: usize = 10_000;
    const PARTITIONS: i32 = 24;
    let bootstrap = common::kafka().bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("interop-parity");
    create_topic(&client, &topic, PARTITIONS).await;
    let keys: Vec<Vec<u8>> = (0..KEYS).map(parity_key).collect();
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), KEYS);

    // Java: its default partitioner (murmur2 of the key) decides.
    let lines: Vec<String> = keys
        .iter()
        .map(|k| format!("{}\tjava", escape(Some(k))))
        .collect();
    let acks = within(
        "Java produces",
        java::produce(&bootstrap, &topic, &[], &lines),
    )
    .await;
    let java_partition: HashMap<Vec<u8>, i32> = acks
        .into_iter()
        .map(|a| (a.key.expect("keyed"), a.partition))
        .collect();
    assert_eq!(java_partition.len(), KEYS);

    // ferrokafka: a producer with every setting left at its default.
    let producer = Producer::builder(&client).build().await.unwrap();
    let mut pending = Vec::with_capacity(KEYS);
    for k in &keys {
        let record = Record::new(&topic).key(k.clone()).value("ferrokafka");
        pending.push((k.clone(), producer.send(record).await.unwrap()));
    }
    let mut ours: HashMap<Vec<u8>, i32> = HashMap::new();
    for (k, delivery) in pending {
        ours.insert(k, within("delivery", delivery).await.unwrap().partition);
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    let differ: Vec<_> = keys
        .iter()
        .filter(|k| java_partition[*k] != ours[*k])
        .take(10)
        .map(|k| {
            (
                String::from_utf8_lossy(k).into_owned(),
                java_partition[k],
                ours[k],
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "keys placed differently (key, Java, ferrokafka): {differ:?}"
    );
    let used: BTreeSet<i32> = ours.values().copied().collect();
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "keys spread over every partition"
    );

    // Read back: every key is in the log twice, both times in the partition reported.
    let read = ferrokafka_read(&client, &topic, PARTITIONS, 2 * KEYS).await;
    let mut seen: HashMap<Vec<u8>, Vec<(i32, String)>> = HashMap::new();
    for r in &read {
        let value = String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap();
        seen.entry(r.key.as_ref().unwrap().to_vec())
            .or_default()
            .push((r.partition, value));
    }
    assert_eq!(seen.len(), KEYS);
    for (k, copies) in &seen {
        let mut copies = copies.clone();
        copies.sort();
        let p = ours[k];
        assert_eq!(
            copies,
            vec![(p, "ferrokafka".to_string()), (p, "java".to_string())],
            "key {}",
            String::from_utf8_lossy(k)
        );
    }
    client.close().await;
}

/// The records of the codec test: compressible values (so the codec's effect shows in the
/// log size), binary bytes, null and empty keys and values, and headers with repeated keys,
/// empty and null values.
fn codec_records() -> Vec<Content> {
    (0..300usize)
        .map(|i| {
            let key = match i {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(format!("key-{i}").into_bytes()),
            };
            let value = match i {
                2 => None,
                3 => Some(Vec::new()),
                4 => Some((0..=255).collect()),
                _ => Some(
                    format!("value {i}: {}", "the same words again and again ".repeat(8))
                        .into_bytes(),
                ),
            };
            let headers = match i % 4 {
                0 => Vec::new(),
                1 => vec![("trace".to_string(), Some(format!("t{i}").into_bytes()))],
                2 => vec![
                    ("dup".to_string(), Some(b"first".to_vec())),
                    ("dup".to_string(), Some(b"second".to_vec())),
                    ("empty".to_string(), Some(Vec::new())),
                ],
                _ => vec![
                    ("null".to_string(), None),
                    ("bytes\t=,".to_string(), Some(vec![0, 9, 10, 255])),
                ],
            };
            (key, value, headers)
        })
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[tokio::test]
async fn every_codec_written_by_one_client_is_read_intact_by_the_other() {
    const PARTITIONS: i32 = 3;
    let bootstrap = common::kafka().bootstrap();
    let client = connect(&bootstrap).await;
    let records = codec_records();
    let expected = sorted(records.clone());
    const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
    // Per codec: the topic ferrokafka wrote and the one Java wrote.
    let mut topics = Vec::new();
    for codec in CODECS {
        // ferrokafka writes, Java reads.
        let ours = unique_topic(&format!("interop-{codec}-ferrokafka"));
        create_topic(&client, &ours, PARTITIONS).await;
        let producer = Producer::builder(&client)
            .compression(Compression::from_name(codec).unwrap(), None)
            .build()
            .await
            .unwrap();
        let mut pending = Vec::new();
        for (key, value, headers) in &records {
            let mut r = Record::new(&ours);
            r.key = key.clone().map(Into::into);
            r.value = value.clone().map(Into::into);
            r.headers = headers
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => Header::new(k.clone(), v.clone()),
                    None => Header::null(k.clone()),
                })
                .collect();
            pending.push(producer.send(r).await.unwrap());
        }
        for d in pending {
            within("delivery", d).await.unwrap();
        }
        producer.close(Duration::from_secs(10)).await.unwrap();
        let count = records.len().to_string();
        let read = within(
            "Java reads",
            java::consume(&bootstrap, &ours, &["--from-beginning", "--count", &count]),
        )
        .await;
        assert_eq!(
            sorted(read.iter().map(java_content).collect()),
            expected,
            "{codec}: what Java read of ferrokafka's records"
        );

        // Java writes, ferrokafka reads.
        let theirs = unique_topic(&format!("interop-{codec}-java"));
        create_topic(&client, &theirs, PARTITIONS).await;
        let lines: Vec<String> = records
            .iter()
            .map(|(k, v, h)| {
                format!(
                    "{}\t{}\t{}",
                    escape(k.as_deref()),
                    escape(v.as_deref()),
                    escape_headers(h)
                )
            })
            .collect();
        within(
            "Java produces",
            java::produce(&bootstrap, &theirs, &["--compression", codec], &lines),
        )
        .await;
        let read = ferrokafka_read(&client, &theirs, PARTITIONS, records.len()).await;
        assert_eq!(
            sorted(read.iter().map(content_of).collect()),
            expected,
            "{codec}: what ferrokafka read of Java's records"
        );

        topics.push((codec, ours, theirs));
    }

    // The codec really was used: compressed logs are far smaller than the plain ones.
    let names: Vec<String> = topics
        .iter()
        .flat_map(|(_, ours, theirs)| [ours.clone(), theirs.clone()])
        .collect();
    let sizes = within("log sizes", java::log_sizes(&bootstrap, &names)).await;
    let (_, plain_ours, plain_theirs) = &topics[0];
    let plain = (sizes[plain_ours], sizes[plain_theirs]);
    for (codec, ours, theirs) in &topics {
        let (by_us, by_java) = (sizes[ours], sizes[theirs]);
        eprintln!("{codec}: log bytes written by ferrokafka {by_us}, by Java {by_java}");
        if *codec == "none" {
            continue;
        }
        assert!(
            by_us * 2 < plain.0,
            "{codec}: ferrokafka's log ({by_us} B) is not compressed (plain: {} B)",
            plain.0
        );
        assert!(
            by_java * 2 < plain.1,
            "{codec}: Java's log ({by_java} B) is not compressed (plain: {} B)",
            plain.1
        );
    }
    client.close().await;
}

// ---------------------------------------------------------------------------------------
// One consumer group, two ferrokafka members and one Java member.

/// Partitions a member owns, kept by its rebalance hooks; `revoked` commits first, so the
/// next owner starts exactly after what this member handed out.
#[derive(Clone, Default)]
struct Owned {
    partitions: Arc<Mutex<BTreeSet<i32>>>,
    commit_errors: Arc<Mutex<Vec<String>>>,
    /// Partitions taken away without an orderly handover (the member was expelled): never
    /// expected in a healthy group whose members leave cleanly.
    lost: Arc<Mutex<Vec<Vec<i32>>>>,
}

#[ferrokafka::async_trait]
impl RebalanceListener for Owned {
    async fn assigned(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        self.partitions
            .lock()
            .unwrap()
            .extend(partitions.iter().map(|tp| tp.partition));
    }

    async fn revoked(&self, ctx: &RebalanceContext, partitions: &[TopicPartition]) {
        if let Err(e) = ctx.commit().await {
            self.commit_errors.lock().unwrap().push(e.to_string());
        }
        let mut owned = self.partitions.lock().unwrap();
        for tp in partitions {
            owned.remove(&tp.partition);
        }
    }

    async fn lost(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        self.lost
            .lock()
            .unwrap()
            .push(partitions.iter().map(|tp| tp.partition).collect());
        let mut owned = self.partitions.lock().unwrap();
        for tp in partitions {
            owned.remove(&tp.partition);
        }
    }
}

/// A record as one member read it: (partition, offset, value).
type Read = (i32, i64, String);

/// A ferrokafka member: a task receives records, notes them, and commits after each batch.
struct RustMember {
    name: &'static str,
    consumer: Arc<Consumer>,
    owned: Owned,
    reads: Arc<Mutex<Vec<Read>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RustMember {
    async fn start(
        name: &'static str,
        client: &Client,
        group: &str,
        strategy: &str,
        topic: &str,
    ) -> RustMember {
        let owned = Owned::default();
        let consumer = Arc::new(
            Consumer::builder(client)
                .group_id(group)
                .offset_reset(OffsetReset::Earliest)
                .auto_commit(false)
                .set("partition.assignment.strategy", strategy)
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "500")
                .set("fetch.max.wait.ms", "100")
                .rebalance_listener(owned.clone())
                .build()
                .await
                .unwrap(),
        );
        consumer.subscribe(&[topic]).await.unwrap();
        let reads: Arc<Mutex<Vec<Read>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (consumer, reads, stop) = (consumer.clone(), reads.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let batch = match tokio::time::timeout(
                        Duration::from_millis(100),
                        consumer.recv_batch(500),
                    )
                    .await
                    {
                        Err(_) => continue,
                        Ok(batch) => batch.unwrap_or_else(|e| panic!("{name}: recv failed: {e}")),
                    };
                    reads.lock().unwrap().extend(batch.iter().map(|r| {
                        let value = String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap();
                        (r.partition, r.offset, value)
                    }));
                    // A commit refused during a rebalance is made up for by the `revoked` hook.
                    if let Err(e) = consumer.commit().await {
                        eprintln!("{name}: commit after a batch failed (a rebalance?): {e}");
                    }
                }
            }
        });
        RustMember {
            name,
            consumer,
            owned,
            reads,
            stop,
            task,
        }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.owned.partitions.lock().unwrap().clone()
    }

    /// Stops receiving (the consumer stays in the group, holding its partitions).
    async fn stop_polling(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        within("member task ends", &mut self.task).await.unwrap();
    }
}

/// The Java member: its stdout lines, folded into the partitions it owns and what it read.
struct JavaMember {
    peer: JavaPeer,
    owned: BTreeSet<i32>,
    reads: Vec<Read>,
    /// `lost` callbacks (see [`Owned::lost`]).
    lost: Vec<Vec<i32>>,
}

impl JavaMember {
    /// Takes in every line printed so far.
    fn pump(&mut self) {
        while let Some(event) = self.peer.try_event() {
            match event {
                Event::Owned(ps) => self.owned = ps.into_iter().collect(),
                Event::Lost(ps) => self.lost.push(ps),
                Event::Record(r) => {
                    let value = String::from_utf8(r.value.unwrap()).unwrap();
                    self.reads.push((r.partition, r.offset, value));
                }
                _ => {}
            }
        }
    }
}

/// Polls `cond` (after pumping the Java member's output) until it holds; on timeout, panics
/// with `state` (what each member owns and read) and the Java member's stderr.
async fn wait_for(
    what: &str,
    java: &mut JavaMember,
    mut cond: impl FnMut(&JavaMember) -> bool,
    state: impl Fn(&JavaMember) -> String,
) {
    let waited = tokio::time::timeout(common::TEST_TIMEOUT, async {
        loop {
            java.pump();
            if cond(java) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if waited.is_err() {
        java.pump();
        panic!(
            "timed out after {:?}: {what}; {}\n{}",
            common::TEST_TIMEOUT,
            state(java),
            java.peer.describe()
        );
    }
}

/// Writes `per_partition` records to each of `partitions` partitions, values `tag-P-I`.
async fn produce_tagged(
    client: &Client,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    tag: &str,
) -> Vec<String> {
    let producer = Producer::builder(client).build().await.unwrap();
    let mut values = Vec::new();
    let mut pending = Vec::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let value = format!("{tag}-{p}-{i}");
            let r = Record::new(topic).partition(p).value(value.clone());
            pending.push(producer.send(r).await.unwrap());
            values.push(value);
        }
    }
    for d in pending {
        within("delivery", d).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    values
}

/// Every value in `expected` was read exactly once across all members' reads.
fn assert_each_read_once(what: &str, reads: &[(&str, &[Read])], expected: &[String]) {
    let mut by_value: HashMap<&str, Vec<(&str, i32, i64)>> = HashMap::new();
    for (member, rs) in reads {
        for (p, o, v) in *rs {
            by_value
                .entry(v.as_str())
                .or_default()
                .push((member, *p, *o));
        }
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|v| !by_value.contains_key(v.as_str()))
        .take(10)
        .collect();
    let twice: Vec<_> = by_value
        .iter()
        .filter(|(_, who)| who.len() > 1)
        .take(10)
        .collect();
    let unexpected = by_value.len()
        - expected
            .iter()
            .filter(|v| by_value.contains_key(v.as_str()))
            .count();
    assert!(
        missing.is_empty() && twice.is_empty() && unexpected == 0,
        "{what}: missing {missing:?}; read more than once {twice:?}; {unexpected} unexpected values"
    );
}

async fn group_of_ferrokafka_and_java_members(strategy: &str) {
    const PARTITIONS: i32 = 6;
    const PER_PARTITION: usize = 100;
    let bootstrap = common::kafka().bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic(&format!("interop-group-{strategy}"));
    create_topic(&client, &topic, PARTITIONS).await;
    let group = unique_topic(&format!("interop-{strategy}"));

    // Both ferrokafka members share one Client (connection pool), as an application running
    // several consumers would: each member's heartbeats must not queue behind the other's
    // JoinGroup, which the coordinator holds until the rebalance completes.
    let mut a = RustMember::start("a", &client, &group, strategy, &topic).await;
    let mut b = RustMember::start("b", &client, &group, strategy, &topic).await;
    let mut java = JavaMember {
        peer: JavaPeer::spawn(&[
            "consume",
            "--bootstrap",
            &bootstrap,
            "--topic",
            &topic,
            "--group",
            &group,
            "--assignor",
            strategy,
            "--from-beginning",
            "--commit",
            "manual",
            "-X",
            "session.timeout.ms=10000",
            "-X",
            "heartbeat.interval.ms=500",
            "-X",
            "fetch.max.wait.ms=100",
        ]),
        owned: BTreeSet::new(),
        reads: Vec::new(),
        lost: Vec::new(),
    };

    let state = |a: &RustMember, b: &RustMember, j: &JavaMember| {
        format!(
            "a owns {:?}, read {}, lost {:?}; b owns {:?}, read {}, lost {:?}; \
             Java owns {:?}, read {}, lost {:?}",
            a.owned(),
            a.reads.lock().unwrap().len(),
            a.owned.lost.lock().unwrap(),
            b.owned(),
            b.reads.lock().unwrap().len(),
            b.owned.lost.lock().unwrap(),
            j.owned,
            j.reads.len(),
            j.lost
        )
    };

    // Settled: the three members own disjoint sets, two partitions each, covering all six.
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    wait_for(
        &format!("{strategy}: the three members split the topic"),
        &mut java,
        |j| {
            let (x, y, z) = (a.owned(), b.owned(), &j.owned);
            [x.len(), y.len(), z.len()] == [2, 2, 2]
                && x.union(&y)
                    .chain(z.iter())
                    .copied()
                    .collect::<BTreeSet<i32>>()
                    == all
        },
        |j| state(&a, &b, j),
    )
    .await;
    eprintln!(
        "{strategy}: a owns {:?}, b owns {:?}, Java owns {:?}",
        a.owned(),
        b.owned(),
        java.owned
    );

    // Phase 1: records written once the group settled are each read by exactly one member,
    // the one owning the partition.
    let phase1 = produce_tagged(&client, &topic, PARTITIONS, PER_PARTITION, "one").await;
    let total = |a: &RustMember, b: &RustMember, j: &JavaMember| {
        a.reads.lock().unwrap().len() + b.reads.lock().unwrap().len() + j.reads.len()
    };
    wait_for(
        &format!("{strategy}: phase 1 read"),
        &mut java,
        |j| total(&a, &b, j) >= phase1.len(),
        |j| state(&a, &b, j),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    java.pump();
    {
        let (ra, rb) = (
            a.reads.lock().unwrap().clone(),
            b.reads.lock().unwrap().clone(),
        );
        assert_each_read_once(
            &format!("{strategy}, phase 1"),
            &[("a", &ra), ("b", &rb), ("java", &java.reads)],
            &phase1,
        );
        for (member, reads, owned) in [
            ("a", &ra, a.owned()),
            ("b", &rb, b.owned()),
            ("java", &java.reads, java.owned.clone()),
        ] {
            assert!(
                reads.iter().all(|(p, _, _)| owned.contains(p)),
                "{strategy}: {member} read partitions it does not own ({owned:?})"
            );
        }
    }

    // Phase 2: b stops receiving (records of its partitions wait, some perhaps prefetched)
    // and then leaves. The others take its partitions over from its last commit: nothing it
    // handed out is read again, nothing after it is skipped.
    b.stop_polling().await;
    let b_partitions = b.owned();
    let phase2 = produce_tagged(&client, &topic, PARTITIONS, PER_PARTITION, "two").await;
    within("b closes", b.consumer.close()).await.unwrap();
    wait_for(
        &format!("{strategy}: a and Java take over b's partitions"),
        &mut java,
        |j| {
            let (x, z) = (a.owned(), &j.owned);
            x.union(z).copied().collect::<BTreeSet<i32>>() == all && x.is_disjoint(z)
        },
        |j| state(&a, &b, j),
    )
    .await;
    eprintln!(
        "{strategy}: after b ({b_partitions:?}) left, a owns {:?}, Java owns {:?}",
        a.owned(),
        java.owned
    );
    let both: Vec<String> = phase1.iter().chain(&phase2).cloned().collect();
    wait_for(
        &format!("{strategy}: phase 2 read"),
        &mut java,
        |j| total(&a, &b, j) >= both.len(),
        |j| state(&a, &b, j),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    java.pump();
    let (ra, rb) = (
        a.reads.lock().unwrap().clone(),
        b.reads.lock().unwrap().clone(),
    );
    assert_each_read_once(
        &format!("{strategy}, after b left"),
        &[("a", &ra), ("b", &rb), ("java", &java.reads)],
        &both,
    );
    for member in [&a, &b] {
        let errors = member.owned.commit_errors.lock().unwrap();
        assert!(
            errors.is_empty(),
            "{strategy}: {}'s commits on revoke failed: {errors:?}",
            member.name
        );
        let lost = member.owned.lost.lock().unwrap();
        assert!(
            lost.is_empty(),
            "{strategy}: {} was expelled from the group and lost {lost:?}",
            member.name
        );
    }
    assert!(
        java.lost.is_empty(),
        "{strategy}: the Java member was expelled and lost {:?}",
        java.lost
    );

    // The Java member leaves cleanly on `stop`.
    java.peer.send_line("stop").await;
    let JavaMember { peer, .. } = java;
    let rest = peer.finish(Duration::from_secs(60)).await;
    assert!(
        matches!(rest.last(), Some(Event::Other(l)) if l.starts_with("closed")),
        "{strategy}: Java did not close: {rest:?}"
    );
    a.stop_polling().await;
    within("a closes", a.consumer.close()).await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn range_group_of_ferrokafka_and_java_members_reads_each_record_once() {
    group_of_ferrokafka_and_java_members("range").await;
}

#[tokio::test]
async fn cooperative_sticky_group_of_ferrokafka_and_java_members_reads_each_record_once() {
    group_of_ferrokafka_and_java_members("cooperative-sticky").await;
}

// ---------------------------------------------------------------------------------------
// Transactions.

#[tokio::test]
async fn java_read_committed_sees_only_ferrokafkas_committed_transactions_in_order() {
    const PARTITIONS: i32 = 3;
    const ROUNDS: usize = 6;
    const PER_ROUND: usize = 12;
    let bootstrap = common::kafka().bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("interop-txn");
    create_topic(&client, &topic, PARTITIONS).await;

    // Two transactional producers write to the same partitions at the same time, one
    // committing where the other aborts: committed and aborted batches interleave in every
    // partition, so the reader must skip aborted data between committed data, not just stop
    // at an open transaction.
    let mut producers = Vec::new();
    for name in ["p1", "p2"] {
        let p = Producer::builder(&client)
            .set(
                "transactional.id",
                &unique_topic(&format!("interop-txn-{name}")),
            )
            .build()
            .await
            .unwrap();
        within("init_transactions", p.init_transactions())
            .await
            .unwrap();
        producers.push((name, p));
    }
    // Per partition, per producer: committed values in the order they were sent.
    let mut committed: BTreeMap<(i32, &str), Vec<String>> = BTreeMap::new();
    let mut aborted = BTreeSet::new();
    let mut all = 0;
    for round in 0..ROUNDS {
        for (_, p) in &producers {
            p.begin_transaction().unwrap();
        }
        let mut pending = Vec::new();
        let mut sent: Vec<(&str, i32, String)> = Vec::new();
        for i in 0..PER_ROUND {
            for (name, p) in &producers {
                let partition = (i % PARTITIONS as usize) as i32;
                let value = format!("{name}-r{round}-{i}");
                let r = Record::new(&topic)
                    .partition(partition)
                    .value(value.clone());
                pending.push(p.send(r).await.unwrap());
                sent.push((name, partition, value));
                all += 1;
            }
        }
        for d in pending {
            within("delivery", d).await.unwrap();
        }
        for (index, (name, p)) in producers.iter().enumerate() {
            // p1 commits even rounds, p2 odd ones.
            let commit = (round + index) % 2 == 0;
            if commit {
                within("commit", p.commit_transaction()).await.unwrap();
            } else {
                within("abort", p.abort_transaction()).await.unwrap();
            }
            for (who, partition, value) in sent.iter().filter(|(who, _, _)| who == name) {
                if commit {
                    committed
                        .entry((*partition, *who))
                        .or_default()
                        .push(value.clone());
                } else {
                    aborted.insert(value.clone());
                }
            }
        }
    }
    for (_, p) in &producers {
        p.close(Duration::from_secs(10)).await.unwrap();
    }
    let committed_count: usize = committed.values().map(Vec::len).sum();
    assert_eq!(committed_count + aborted.len(), all);

    let text = |r: &JavaRecord| String::from_utf8(r.value.clone().unwrap()).unwrap();
    // Control: read_uncommitted sees the aborted records too, so they are in the log.
    let everything = within(
        "Java reads uncommitted",
        java::consume(
            &bootstrap,
            &topic,
            &[
                "--from-beginning",
                "--count",
                &all.to_string(),
                "--isolation",
                "read_uncommitted",
            ],
        ),
    )
    .await;
    assert_eq!(
        everything
            .iter()
            .filter(|r| aborted.contains(&text(r)))
            .count(),
        aborted.len(),
        "read_uncommitted returns every aborted record"
    );

    // read_committed: stops 3 s after the last record it got, so extra records would show.
    let read = within(
        "Java reads committed",
        java::consume(
            &bootstrap,
            &topic,
            &[
                "--from-beginning",
                "--idle-ms",
                "3000",
                "--isolation",
                "read_committed",
            ],
        ),
    )
    .await;
    let leaked: Vec<String> = read
        .iter()
        .map(text)
        .filter(|v| aborted.contains(v))
        .take(10)
        .collect();
    assert!(leaked.is_empty(), "aborted records read: {leaked:?}");
    let mut got: BTreeMap<(i32, &str), Vec<String>> = BTreeMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for r in &read {
        let value = text(r);
        let who = if value.starts_with("p1-") { "p1" } else { "p2" };
        got.entry((r.partition, who)).or_default().push(value);
        let last = last_offset.insert(r.partition, r.offset);
        assert!(
            last.is_none_or(|l| l < r.offset),
            "partition {} out of order: {last:?} then {}",
            r.partition,
            r.offset
        );
    }
    assert_eq!(
        got, committed,
        "committed records, in order per partition and producer"
    );
    client.close().await;
}
