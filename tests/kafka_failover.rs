//! Broker failures on a real 3-node Apache Kafka cluster (KRaft, combined nodes, replication
//! factor 3, `min.insync.replicas=2`): SIGKILL and controlled shutdown of partition leaders
//! during an idempotent produce, two of three brokers down under `acks=all`, and the group and
//! transaction coordinators killed under a consumer group and a transactional producer.
//!
//! Every test ends with a full read by librdkafka (an independent client) and checks that each
//! acknowledged record is in the log exactly once, at the offset it was acknowledged with, and
//! in send order per partition; records whose delivery failed may be absent but never doubled.
//!
//! One cluster serves every test of this file (starting one costs seconds of both cores): the
//! tests take turns through `SERIAL`, and each turn begins by restarting whatever node an
//! earlier test left down and waiting until every partition is fully replicated again.
//!
//! Run: `cargo test --test kafka_failover -- --nocapture` (needs `cargo xtask install-brokers`).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{unique_topic, KafkaCluster};
use ferrokafka::{
    Acks, Client, CommitOffset, Consumer, DeliveryFuture, Error, KafkaCode, NewTopic, OffsetReset,
    Producer, Record, RecordMetadata, TopicPartition,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------------
// The shared cluster and the turn-taking between tests.
// ---------------------------------------------------------------------------------------------

static CLUSTER: OnceLock<Mutex<KafkaCluster>> = OnceLock::new();

/// Only one test drives the cluster at a time: kills and restarts of one test would otherwise
/// land in the middle of another's checks. A tokio mutex, because a test holds it across
/// awaits (and a panicking test releases it without poisoning anything).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster, started on first use (blocking: call from `spawn_blocking`).
fn cluster() -> &'static Mutex<KafkaCluster> {
    CLUSTER.get_or_init(|| {
        let cluster = common::kafka_cluster(3);
        eprintln!(
            "kafka_failover: 3-node cluster started in {:.1} s (started_in)",
            cluster.started_in().as_secs_f64()
        );
        Mutex::new(cluster)
    })
}

/// Runs `f` on the cluster on a blocking thread: kills, stops and restarts wait for the JVM,
/// and the clients under test must keep running meanwhile.
async fn on_cluster<R: Send + 'static>(
    f: impl FnOnce(&mut KafkaCluster) -> R + Send + 'static,
) -> R {
    tokio::task::spawn_blocking(move || {
        let mut cluster = cluster().lock().unwrap_or_else(|e| e.into_inner());
        f(&mut cluster)
    })
    .await
    .expect("cluster operation panicked")
}

/// Blocking work (librdkafka calls) off the runtime's threads.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

/// One test's turn on the cluster.
struct Turn {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    name: &'static str,
    bootstrap: String,
    started: Instant,
}

impl Turn {
    async fn begin(name: &'static str) -> Turn {
        let serial = SERIAL.lock().await;
        common::init_tracing();
        let healed = Instant::now();
        let bootstrap = on_cluster(|cluster| {
            for id in cluster.node_ids() {
                if !cluster.is_running(id) {
                    eprintln!("kafka_failover: node {id} was left down by an earlier test");
                    cluster.restart(id);
                }
            }
            common::wait_for_brokers(cluster, 3);
            cluster.bootstrap()
        })
        .await;
        let b = bootstrap.clone();
        blocking(move || wait_fully_replicated(&b, Duration::from_secs(90))).await;
        eprintln!(
            "{name}: cluster healthy after {:.1} s; test starts",
            healed.elapsed().as_secs_f64()
        );
        Turn {
            _serial: serial,
            name,
            bootstrap,
            started: Instant::now(),
        }
    }

    fn log(&self, what: impl std::fmt::Display) {
        eprintln!(
            "{} [{:6.1} s] {what}",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    fn end(self) {
        eprintln!(
            "{}: PASSED in {:.1} s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Awaits `fut`, panicking with `what` after `limit`: nothing in these tests may hang.
async fn bounded<F: Future>(what: &str, limit: Duration, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `cond` every 50 ms until it holds; false if `limit` passed first.
async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster inspection through librdkafka (independent of the client under test).
// ---------------------------------------------------------------------------------------------

fn rdkafka_consumer(bootstrap: &str, extra: &[(&str, &str)]) -> rdkafka::consumer::BaseConsumer {
    let mut cfg = rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("kafka-failover-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("librdkafka consumer")
}

/// Partition → (leader, ISR) of `topic`, as a broker reports it now.
fn partition_state(bootstrap: &str, topic: &str) -> BTreeMap<i32, (i32, Vec<i32>)> {
    use rdkafka::consumer::Consumer as _;
    let consumer = rdkafka_consumer(bootstrap, &[]);
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    md.topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| (p.id(), (p.leader(), p.isr().to_vec())))
        .collect()
}

/// The leader of one partition; waits (up to 60 s) while it has none.
fn leader_of(bootstrap: &str, topic: &str, partition: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((leader, _)) = partition_state(bootstrap, topic).get(&partition) {
            if *leader >= 0 {
                return *leader;
            }
        }
        if Instant::now() >= deadline {
            panic!("{topic}-{partition} has no leader after 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until every partition of every topic has all its replicas in sync, so a test never
/// starts with a replica that an earlier test's restart has not caught up yet (stopping a
/// second broker then would leave partitions below `min.insync.replicas`).
fn wait_fully_replicated(bootstrap: &str, limit: Duration) {
    use rdkafka::consumer::Consumer as _;
    let consumer = rdkafka_consumer(bootstrap, &[]);
    let deadline = Instant::now() + limit;
    loop {
        let lagging: Vec<String> = match consumer.fetch_metadata(None, Duration::from_secs(10)) {
            Ok(md) => md
                .topics()
                .iter()
                .flat_map(|t| {
                    t.partitions()
                        .iter()
                        .filter(|p| p.leader() < 0 || p.isr().len() < p.replicas().len())
                        .map(move |p| format!("{}-{} isr {:?}", t.name(), p.id(), p.isr()))
                })
                .collect(),
            Err(e) => vec![e.to_string()],
        };
        if lagging.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("partitions still under-replicated after {limit:?}: {lagging:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The broker coordinating `__consumer_offsets` or `__transaction_state`: the harness gives
/// both internal topics one partition, so whoever leads partition 0 coordinates every group
/// (or transactional id).
fn coordinator_of(bootstrap: &str, internal_topic: &str) -> i32 {
    leader_of(bootstrap, internal_topic, 0)
}

// ---------------------------------------------------------------------------------------------
// The full read and the exactly-once check.
// ---------------------------------------------------------------------------------------------

/// Partition → (offset, value) in offset order.
type Log = BTreeMap<i32, Vec<(i64, String)>>;

/// Reads every partition of `topic` from the beginning with librdkafka. `read_committed`
/// readers stop after 3 s without a record once `at_least` arrived (a read_committed reader
/// cannot reach the high watermark when the log ends in a control record); the others stop at
/// each partition's high watermark, read before they start.
fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    read_committed: bool,
    at_least: usize,
) -> Log {
    use rdkafka::consumer::Consumer as _;
    use rdkafka::Message as _;
    let isolation = if read_committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let consumer = rdkafka_consumer(bootstrap, &[("isolation.level", isolation)]);
    let mut high = BTreeMap::new();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        let (_, hw) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("watermarks of {topic}-{p}: {e}"));
        high.insert(p, hw);
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut log: Log = (0..partitions).map(|p| (p, Vec::new())).collect();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut quiet_since = Instant::now();
    loop {
        let done = if read_committed {
            count >= at_least && quiet_since.elapsed() >= Duration::from_secs(3)
        } else {
            log.iter()
                .all(|(p, r)| r.last().map_or(0, |(o, _)| o + 1) >= high[p])
        };
        if done {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "full read of {topic} incomplete after 90 s: {count} records, high watermarks \
                 {high:?}"
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                log.get_mut(&m.partition())
                    .expect("assigned partition")
                    .push((m.offset(), value));
                count += 1;
                quiet_since = Instant::now();
            }
            // A broker that was just restarted may refuse a connection for a moment.
            Some(Err(e)) => eprintln!("reader: {e}"),
            None => {}
        }
    }
    for records in log.values_mut() {
        records.sort();
    }
    log
}

/// A record's identity in these tests: who sent it, to which partition, its number there.
/// Values are `"<tag>:<partition>:<seq>"`.
fn value_of(tag: &str, partition: i32, seq: u64) -> String {
    format!("{tag}:{partition}:{seq}")
}

fn parse_value(value: &str) -> Option<(&str, i32, u64)> {
    let mut it = value.split(':');
    let tag = it.next()?;
    let p = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    it.next().is_none().then_some((tag, p, seq))
}

/// What one producer learned about its records: acknowledged ones with their offsets, failed
/// ones with their errors. Keyed by partition, then sequence.
#[derive(Default)]
struct Outcomes {
    acked: BTreeMap<i32, BTreeMap<u64, i64>>,
    failed: BTreeMap<i32, BTreeMap<u64, Error>>,
}

impl Outcomes {
    fn acked_count(&self) -> usize {
        self.acked.values().map(BTreeMap::len).sum()
    }
    fn failed_count(&self) -> usize {
        self.failed.values().map(BTreeMap::len).sum()
    }
    fn merge(&mut self, other: Outcomes) {
        for (p, m) in other.acked {
            self.acked.entry(p).or_default().extend(m);
        }
        for (p, m) in other.failed {
            self.failed.entry(p).or_default().extend(m);
        }
    }
}

/// Counts from a check of the log.
#[derive(Debug, Default)]
struct LogCheck {
    records: usize,
    duplicates: usize,
    lost: usize,
    out_of_order: usize,
    failed_present: usize,
}

/// Exactly once, in order: per partition and tag, sequences strictly increase in offset order
/// (no record twice, none overtaking an earlier one), every acknowledged record sits at the
/// offset its acknowledgement gave, and nothing unknown is in the log. Panics listing the
/// problems; returns the counts for the report.
fn check_exactly_once(name: &str, log: &Log, producers: &[(&str, &Outcomes)]) -> LogCheck {
    let mut check = LogCheck::default();
    let mut problems = Vec::new();
    // (tag, partition) → seq → offset where it was found.
    let mut found: HashMap<(&str, i32), BTreeMap<u64, i64>> = HashMap::new();
    for (p, records) in log {
        let mut last: HashMap<&str, (u64, i64)> = HashMap::new();
        for (offset, value) in records {
            check.records += 1;
            let Some((tag, vp, seq)) = parse_value(value) else {
                problems.push(format!("{p}@{offset} holds unknown value `{value}`"));
                continue;
            };
            if vp != *p || !producers.iter().any(|(t, _)| *t == tag) {
                problems.push(format!(
                    "{p}@{offset} holds `{value}` of another partition/tag"
                ));
                continue;
            }
            if let Some(&(ls, lo)) = last.get(tag) {
                if seq == ls || found.get(&(tag, *p)).is_some_and(|f| f.contains_key(&seq)) {
                    check.duplicates += 1;
                    problems.push(format!(
                        "duplicate `{value}` at {p}@{offset} (after {p}@{lo})"
                    ));
                } else if seq < ls {
                    check.out_of_order += 1;
                    problems.push(format!(
                        "out of order in partition {p}: `{tag}:{p}:{ls}` at {lo} before `{value}` at {offset}"
                    ));
                }
            }
            last.insert(tag, (seq, *offset));
            found
                .entry((tag, *p))
                .or_default()
                .entry(seq)
                .or_insert(*offset);
        }
    }
    for (tag, outcomes) in producers {
        for (p, acked) in &outcomes.acked {
            let here = found.get(&(*tag, *p));
            for (seq, offset) in acked {
                match here.and_then(|f| f.get(seq)) {
                    Some(at) if at == offset => {}
                    Some(at) => problems.push(format!(
                        "`{}` acknowledged at offset {offset} but found at {at}",
                        value_of(tag, *p, *seq)
                    )),
                    None => {
                        check.lost += 1;
                        if check.lost <= 10 {
                            problems.push(format!(
                                "`{}` acknowledged at {p}@{offset} but missing",
                                value_of(tag, *p, *seq)
                            ));
                        }
                    }
                }
            }
        }
        for (p, failed) in &outcomes.failed {
            let here = found.get(&(*tag, *p));
            check.failed_present += failed
                .keys()
                .filter(|s| here.is_some_and(|f| f.contains_key(s)))
                .count();
        }
    }
    if !problems.is_empty() {
        problems.truncate(30);
        // Each troubled partition's sequences in log order, compactly (`0-99 300-399 100-299`).
        for (p, records) in log {
            let seqs: Vec<(String, u64)> = records
                .iter()
                .filter_map(|(_, v)| parse_value(v))
                .map(|(t, _, s)| (t.to_owned(), s))
                .collect();
            let mut runs: Vec<String> = Vec::new();
            let mut i = 0;
            while i < seqs.len() {
                let mut j = i;
                while j + 1 < seqs.len()
                    && seqs[j + 1].0 == seqs[i].0
                    && seqs[j + 1].1 == seqs[j].1 + 1
                {
                    j += 1;
                }
                runs.push(format!("{}:{}-{}", seqs[i].0, seqs[i].1, seqs[j].1));
                i = j + 1;
            }
            if runs.len() > producers.len() {
                problems.push(format!("partition {p}: {}", runs.join(" ")));
            }
        }
        panic!(
            "{name}: the log breaks exactly-once ({check:?}):\n{}",
            problems.join("\n")
        );
    }
    check
}

// ---------------------------------------------------------------------------------------------
// Producing numbered records while the cluster is hurt.
// ---------------------------------------------------------------------------------------------

async fn client(bootstrap: &str, id: &str) -> Client {
    common::within(
        "client",
        Client::builder()
            .bootstrap_servers(bootstrap)
            .client_id(id)
            .build(),
    )
    .await
    .unwrap_or_else(|e| panic!("client {id}: {e}"))
}

async fn create_topic(client: &Client, topic: &str, partitions: i32) {
    common::within(
        "create topic",
        client
            .admin()
            .create_topics(&[NewTopic::new(topic, partitions, 3)]),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot create {topic} (RF 3): {e}"));
}

/// A producer at work in the background: sends `total` records round-robin over the
/// partitions at about `per_sec`, and awaits their deliveries in send order.
struct Producing {
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    task: JoinHandle<Outcomes>,
}

impl Producing {
    fn start(
        producer: Producer,
        topic: &str,
        tag: &'static str,
        partitions: i32,
        seqs: std::ops::Range<u64>,
        per_sec: u64,
    ) -> Producing {
        let acked = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = mpsc::unbounded_channel::<(i32, u64, DeliveryFuture)>();
        let topic = topic.to_owned();
        tokio::spawn(async move {
            let started = Instant::now();
            let per_partition_start = seqs.start;
            let n = (seqs.end - seqs.start) * partitions as u64;
            for i in 0..n {
                let p = (i % partitions as u64) as i32;
                let seq = per_partition_start + i / partitions as u64;
                let record = Record::new(topic.as_str())
                    .partition(p)
                    .value(value_of(tag, p, seq));
                let delivery = producer
                    .send(record)
                    .await
                    .unwrap_or_else(|e| panic!("send of {}: {e}", value_of(tag, p, seq)));
                if tx.send((p, seq, delivery)).is_err() {
                    return;
                }
                if i % 500 == 499 {
                    let due = started + Duration::from_secs_f64((i + 1) as f64 / per_sec as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
            }
        });
        let (a, f) = (acked.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let mut out = Outcomes::default();
            while let Some((p, seq, delivery)) = rx.recv().await {
                match delivery.await {
                    Ok(RecordMetadata { offset, .. }) => {
                        out.acked.entry(p).or_default().insert(seq, offset);
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        out.failed.entry(p).or_default().insert(seq, e);
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            out
        });
        Producing {
            acked,
            failed,
            task,
        }
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    fn settled(&self) -> usize {
        self.acked() + self.failed.load(Ordering::Relaxed)
    }

    async fn finish(self, what: &str, limit: Duration) -> Outcomes {
        bounded(what, limit, self.task).await.expect("acker task")
    }
}

/// Distinct error messages with counts, for the report.
fn error_summary<'a>(errors: impl Iterator<Item = &'a Error>) -> Vec<String> {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for e in errors {
        *by.entry(e.to_string()).or_default() += 1;
    }
    by.into_iter().map(|(e, n)| format!("{n}× {e}")).collect()
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: a partition leader lost during an idempotent acks=all produce.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Loss {
    /// SIGKILL: no controlled shutdown; the controller notices after the broker's session
    /// times out (`broker.session.timeout.ms`, 9 s by default).
    Kill,
    /// SIGTERM: controlled shutdown, leadership handed over before the broker exits.
    Stop,
}

async fn leader_lost_during_produce(
    name: &'static str,
    loss: Loss,
    per_partition: u64,
    partitions: i32,
    per_sec: u64,
) {
    let turn = Turn::begin(name).await;
    let total = per_partition as usize * partitions as usize;
    let client = client(&turn.bootstrap, name).await;
    let topic = unique_topic(name);
    create_topic(&client, &topic, partitions).await;
    // Default idempotence, acks=all; a delivery timeout that outlasts any failover here.
    let producer = Producer::builder(&client)
        .acks(Acks::All)
        .delivery_timeout(Duration::from_secs(180))
        .build()
        .await
        .unwrap();
    let run = Producing::start(
        producer.clone(),
        &topic,
        "a",
        partitions,
        0..per_partition,
        per_sec,
    );
    let at = total * 3 / 10;
    assert!(
        wait_until(Duration::from_secs(90), || run.acked() >= at).await,
        "{name}: only {} of {at} records acknowledged before the fault",
        run.acked()
    );
    let (b, t) = (turn.bootstrap.clone(), topic.clone());
    let victim = blocking(move || leader_of(&b, &t, 0)).await;
    let acked_at_fault = run.acked();
    turn.log(format!(
        "{acked_at_fault} of {total} acknowledged; {} node {victim} (leader of partition 0)",
        match loss {
            Loss::Kill => "SIGKILL to",
            Loss::Stop => "controlled shutdown of",
        }
    ));
    let fault_at = Instant::now();
    on_cluster(move |c| match loss {
        Loss::Kill => c.kill(victim),
        Loss::Stop => c.stop(victim),
    })
    .await;
    turn.log(format!(
        "node {victim} down after {:.1} s; {} acknowledged",
        fault_at.elapsed().as_secs_f64(),
        run.acked()
    ));
    // Recovered: acknowledgements flow again for partitions the victim led (the first
    // records past the fault point were queued for every partition alike).
    let resumed = wait_until(Duration::from_secs(60), || {
        run.acked() >= (acked_at_fault + total / 10).min(total)
    })
    .await;
    let stall = fault_at.elapsed();
    turn.log(format!(
        "acknowledgements {} {:.1} s after the fault ({} acknowledged)",
        if resumed { "resumed" } else { "NOT resumed" },
        stall.as_secs_f64(),
        run.acked()
    ));
    let restart_during_produce = loss == Loss::Kill;
    if restart_during_produce {
        on_cluster(move |c| c.restart(victim)).await;
        turn.log(format!(
            "node {victim} restarted while producing ({} acknowledged)",
            run.acked()
        ));
    }
    let outcomes = run
        .finish(&format!("{name}: deliveries"), Duration::from_secs(240))
        .await;
    let produced_in = fault_at.elapsed();
    bounded(
        "producer close",
        Duration::from_secs(30),
        producer.close(Duration::from_secs(20)),
    )
    .await
    .unwrap();
    if !restart_during_produce {
        on_cluster(move |c| c.restart(victim)).await;
        turn.log(format!("node {victim} restarted after the produce"));
    }
    assert!(
        outcomes.failed.is_empty(),
        "{name}: {} deliveries failed (the delivery timeout outlasts the failover): {:?}",
        outcomes.failed_count(),
        error_summary(outcomes.failed.values().flat_map(BTreeMap::values))
    );
    assert_eq!(
        outcomes.acked_count(),
        total,
        "{name}: every send acknowledged"
    );
    let (b, t) = (turn.bootstrap.clone(), topic.clone());
    let log = blocking(move || read_all(&b, &t, partitions, false, total)).await;
    let check = check_exactly_once(name, &log, &[("a", &outcomes)]);
    assert_eq!(
        check.records, total,
        "{name}: log holds exactly the records sent"
    );
    turn.log(format!(
        "RESULT records={total} acknowledged={} failed=0 in_log={} duplicates={} lost={} \
         out_of_order={} fault={loss:?} node={victim} acks_resumed_after={:.1}s \
         rest_delivered_in={:.1}s",
        outcomes.acked_count(),
        check.records,
        check.duplicates,
        check.lost,
        check.out_of_order,
        stall.as_secs_f64(),
        produced_in.as_secs_f64()
    ));
    client.close().await;
    turn.end();
}

/// Scenario 1: SIGKILL of a leader during an idempotent acks=all produce of 200 000 records
/// over six partitions, restarted while the produce goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_leader_during_idempotent_produce_loses_and_doubles_nothing() {
    // 40 000 records/s: the kill lands about 1.5 s in, the rest waits out the failover.
    leader_lost_during_produce("sigkill_leader", Loss::Kill, 200_000 / 6 + 1, 6, 40_000).await;
}

/// Scenario 2: controlled shutdown of a leader mid-produce; restarted afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_of_a_leader_during_produce_loses_and_doubles_nothing() {
    // 10 000 records/s: the shutdown (about 3 s) happens well inside the 10 s produce.
    leader_lost_during_produce(
        "controlled_shutdown_leader",
        Loss::Stop,
        100_000 / 6 + 1,
        6,
        10_000,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3: two of three brokers down under acks=all.
// ---------------------------------------------------------------------------------------------

/// How a caller must see a send that could not be delivered for lack of in-sync replicas:
/// a typed error the classifier calls retriable — the broker's NOT_ENOUGH_REPLICAS (or a
/// cousin), or the delivery timeout that ended its retries.
fn is_typed_replication_failure(e: &Error) -> bool {
    let typed = matches!(
        e.kafka_code(),
        Some(
            KafkaCode::NotEnoughReplicas
                | KafkaCode::NotEnoughReplicasAfterAppend
                | KafkaCode::RequestTimedOut
        )
    ) || matches!(e, Error::Timeout { .. });
    typed && e.is_retriable()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_brokers_down_acks_all_waits_then_delivers_once() {
    let turn = Turn::begin("two_brokers_down").await;
    const PARTITIONS: i32 = 3;
    let client_a = client(&turn.bootstrap, "two-down-a").await;
    let topic = unique_topic("two_brokers_down");
    create_topic(&client_a, &topic, PARTITIONS).await;
    // A: waits out the outage (delivery timeout 180 s).
    let a = Producer::builder(&client_a)
        .acks(Acks::All)
        .delivery_timeout(Duration::from_secs(180))
        .build()
        .await
        .unwrap();
    // B: gives up after 5 s, so the outage shows how a failed acks=all send reaches the
    // caller. Its request timeout stays under its delivery timeout.
    let client_b = common::within(
        "client b",
        Client::builder()
            .bootstrap_servers(&turn.bootstrap)
            .client_id("two-down-b")
            .request_timeout(Duration::from_secs(3))
            .build(),
    )
    .await
    .unwrap();
    let b = Producer::builder(&client_b)
        .acks(Acks::All)
        .delivery_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();

    // Before: everything healthy.
    let mut a_all = Producing::start(a.clone(), &topic, "a", PARTITIONS, 0..1000, 20_000)
        .finish("A before the outage", Duration::from_secs(60))
        .await;
    assert_eq!(a_all.acked_count(), 3000, "A before the outage");
    let mut b_all = Producing::start(b.clone(), &topic, "b", PARTITIONS, 0..100, 20_000)
        .finish("B before the outage", Duration::from_secs(60))
        .await;
    assert_eq!(b_all.acked_count(), 300, "B before the outage");

    // Two brokers stop (controlled shutdowns, one after the other): the survivor leads every
    // partition with itself alone in sync, below min.insync.replicas=2.
    let (bs, t) = (turn.bootstrap.clone(), topic.clone());
    let first = blocking(move || leader_of(&bs, &t, 0)).await;
    let ids = on_cluster(|c| c.node_ids()).await;
    let second = *ids.iter().find(|&&id| id != first).unwrap();
    let survivor = *ids.iter().find(|&&id| id != first && id != second).unwrap();
    let outage_at = Instant::now();
    on_cluster(move |c| c.stop(first)).await;
    turn.log(format!("node {first} stopped"));
    on_cluster(move |c| c.stop(second)).await;
    turn.log(format!(
        "node {second} stopped; node {survivor} alone ({:.1} s for both shutdowns)",
        outage_at.elapsed().as_secs_f64()
    ));
    let survivor_addr = on_cluster(move |c| c.address(survivor)).await;
    let t = topic.clone();
    let state = blocking(move || partition_state(&survivor_addr, &t)).await;
    turn.log(format!(
        "partition (leader, isr) as node {survivor} reports it: {state:?}"
    ));

    // During: A's sends must wait, B's must fail typed and retriable.
    let a_outage = Producing::start(a.clone(), &topic, "a", PARTITIONS, 1000..2000, 20_000);
    let b_outage = Producing::start(b.clone(), &topic, "b", PARTITIONS, 100..200, 20_000);
    let b_failed_in = Instant::now();
    let b_outage = b_outage
        .finish("B during the outage", Duration::from_secs(30))
        .await;
    let b_settled_after = b_failed_in.elapsed();
    turn.log(format!(
        "B during the outage: {} acknowledged, {} failed within {:.1} s: {:?}",
        b_outage.acked_count(),
        b_outage.failed_count(),
        b_settled_after.as_secs_f64(),
        error_summary(b_outage.failed.values().flat_map(BTreeMap::values))
    ));
    assert_eq!(
        b_outage.acked_count(),
        0,
        "an acks=all send was acknowledged with one replica in sync"
    );
    let untyped: Vec<String> = b_outage
        .failed
        .values()
        .flat_map(BTreeMap::values)
        .filter(|e| !is_typed_replication_failure(e))
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(
        untyped.is_empty(),
        "failed sends must carry a typed, retriable error: {untyped:?}"
    );
    // The batches that reached the broker were refused for lack of in-sync replicas: their
    // failure (the broker's answer, or the delivery timeout that ended its retries) reports
    // that code. Batches still queued behind them never reached a broker and carry none.
    let codes: BTreeSet<String> = b_outage
        .failed
        .values()
        .flat_map(BTreeMap::values)
        .map(|e| format!("{:?}", e.kafka_code()))
        .collect();
    turn.log(format!("B's failures carry the codes {codes:?}"));
    assert!(
        b_outage
            .failed
            .values()
            .flat_map(BTreeMap::values)
            .any(|e| matches!(
                e.kafka_code(),
                Some(KafkaCode::NotEnoughReplicas | KafkaCode::NotEnoughReplicasAfterAppend)
            )),
        "no failed send reports NOT_ENOUGH_REPLICAS: {codes:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        a_outage.acked(),
        0,
        "A: an acks=all send was acknowledged with one replica in sync"
    );
    turn.log(format!(
        "A during the outage: {} of 3000 settled after {:.1} s (waiting)",
        a_outage.settled(),
        outage_at.elapsed().as_secs_f64()
    ));

    // One broker returns: two in sync again, A's waiting sends go through.
    let back_at = Instant::now();
    on_cluster(move |c| c.restart(second)).await;
    turn.log(format!(
        "node {second} restarted in {:.1} s",
        back_at.elapsed().as_secs_f64()
    ));
    let a_outage = a_outage
        .finish(
            "A's waiting sends after a broker returned",
            Duration::from_secs(150),
        )
        .await;
    let a_done_after = back_at.elapsed();
    turn.log(format!(
        "A's {} waiting sends settled {:.1} s after the restart began ({} acknowledged)",
        a_outage.acked_count() + a_outage.failed_count(),
        a_done_after.as_secs_f64(),
        a_outage.acked_count()
    ));
    assert!(
        a_outage.failed.is_empty(),
        "A's sends failed although the delivery timeout outlasts the outage: {:?}",
        error_summary(a_outage.failed.values().flat_map(BTreeMap::values))
    );
    a_all.merge(a_outage);
    b_all.merge(b_outage);

    // After: the other broker returns; both producers go on, B after its failed batches.
    on_cluster(move |c| c.restart(first)).await;
    turn.log(format!("node {first} restarted"));
    let a_after = Producing::start(a.clone(), &topic, "a", PARTITIONS, 2000..3000, 20_000)
        .finish("A after the outage", Duration::from_secs(60))
        .await;
    let b_after = Producing::start(b.clone(), &topic, "b", PARTITIONS, 200..300, 20_000)
        .finish("B after the outage", Duration::from_secs(60))
        .await;
    assert!(
        a_after.failed.is_empty() && b_after.failed.is_empty(),
        "sends after the outage failed: {:?}",
        error_summary(
            a_after
                .failed
                .values()
                .chain(b_after.failed.values())
                .flat_map(BTreeMap::values)
        )
    );
    a_all.merge(a_after);
    b_all.merge(b_after);
    for p in [&a, &b] {
        bounded(
            "producer close",
            Duration::from_secs(30),
            p.close(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    }
    let (bs, t) = (turn.bootstrap.clone(), topic.clone());
    let log = blocking(move || read_all(&bs, &t, PARTITIONS, false, 0)).await;
    let check = check_exactly_once(turn.name, &log, &[("a", &a_all), ("b", &b_all)]);
    assert_eq!(a_all.acked_count(), 9000);
    turn.log(format!(
        "RESULT A: {} sent, {} acknowledged, 0 failed; B: {} sent, {} acknowledged, {} failed \
         (all typed/retriable, {} of them in the log anyway); log {} records, duplicates={} \
         lost={} out_of_order={}; B's failures settled in {:.1} s; A's waiting sends \
         delivered {:.1} s after a broker restart began",
        9000,
        a_all.acked_count(),
        900,
        b_all.acked_count(),
        b_all.failed_count(),
        check.failed_present,
        check.records,
        check.duplicates,
        check.lost,
        check.out_of_order,
        b_settled_after.as_secs_f64(),
        a_done_after.as_secs_f64()
    ));
    client_a.close().await;
    client_b.close().await;
    turn.end();
}

// ---------------------------------------------------------------------------------------------
// 4: the group coordinator killed under a 3-member group with manual commits.
// ---------------------------------------------------------------------------------------------

/// What the group has consumed, shared by its members.
#[derive(Default)]
struct GroupView {
    /// (partition, offset) → times delivered.
    delivered: HashMap<(i32, i64), u32>,
    /// The last offset handed out per partition (any member).
    last: HashMap<i32, i64>,
    /// The highest offset a commit acknowledged per partition (next offset to read).
    committed: HashMap<i32, i64>,
    redeliveries: u64,
    /// Re-deliveries that started below an acknowledged commit: the group went back further
    /// than its committed offsets.
    below_committed: Vec<String>,
    /// Set when the second generation of members starts: the first offset each partition
    /// hands them.
    second_group: bool,
    first_in_second_group: HashMap<i32, i64>,
}

struct Member {
    consumer: Consumer,
    client: Client,
    commits_ok: AtomicU64,
    commits_failed: AtomicU64,
    recv_errors: Mutex<Vec<String>>,
}

/// One member's application loop: take up to 100 records, "process" them (100 ms), commit
/// their offsets synchronously (manual commits, as an at-least-once application does).
/// Stopped, it exits between processing and committing a batch.
async fn member_loop(
    member: Arc<Member>,
    topic: String,
    view: Arc<Mutex<GroupView>>,
    stop: Arc<AtomicBool>,
) {
    let consumer = &member.consumer;
    let mut pending: HashMap<TopicPartition, CommitOffset> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(500), consumer.recv_batch(100)).await {
            Ok(Ok(records)) => {
                {
                    let mut v = view.lock().unwrap();
                    for r in &records {
                        assert_eq!(&*r.topic, topic.as_str());
                        let (p, o) = (r.partition, r.offset);
                        let times = v.delivered.entry((p, o)).or_default();
                        *times += 1;
                        if *times > 1 {
                            v.redeliveries += 1;
                        }
                        if let Some(&last) = v.last.get(&p) {
                            let committed = v.committed.get(&p).copied().unwrap_or(0);
                            if o <= last && o < committed {
                                v.below_committed.push(format!(
                                    "partition {p} went back to {o} (last handed out {last}, \
                                     committed {committed})"
                                ));
                            }
                        }
                        if v.second_group {
                            v.first_in_second_group.entry(p).or_insert(o);
                        }
                        v.last.insert(p, o);
                        pending.insert(r.topic_partition(), CommitOffset::new(o + 1));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                if stop.load(Ordering::Relaxed) {
                    // Told to stop between processing and committing: like a crash there,
                    // this batch stays uncommitted and must be delivered again.
                    break;
                }
            }
            Ok(Err(e)) => {
                member.recv_errors.lock().unwrap().push(e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => {}
        }
        // Commit what was processed, for partitions still ours: a partition that moved is
        // committed by its new owner.
        let assigned: BTreeSet<TopicPartition> = consumer.assignment().into_iter().collect();
        pending.retain(|tp, _| assigned.contains(tp));
        if pending.is_empty() {
            continue;
        }
        match consumer.commit_offsets(&pending).await {
            Ok(()) => {
                member.commits_ok.fetch_add(1, Ordering::Relaxed);
                let mut v = view.lock().unwrap();
                for (tp, c) in pending.drain() {
                    let e = v.committed.entry(tp.partition).or_insert(0);
                    *e = (*e).max(c.offset);
                }
            }
            Err(e) => {
                member.commits_failed.fetch_add(1, Ordering::Relaxed);
                // Kept: retried with the next batch, or dropped once the partition moves.
                tracing::debug!(error = %e, "test member commit failed");
            }
        }
    }
}

/// Three members of `group`, each with its own client, consuming `topic` in their own tasks.
struct Group {
    members: Vec<Arc<Member>>,
    tasks: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Group {
    async fn start(
        bootstrap: &str,
        group: &str,
        topic: &str,
        generation: &str,
        view: &Arc<Mutex<GroupView>>,
    ) -> Group {
        let stop = Arc::new(AtomicBool::new(false));
        let mut members = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let client = client(bootstrap, &format!("group-{generation}-member-{i}")).await;
            let consumer = Consumer::builder(&client)
                .group_id(group)
                .auto_commit(false)
                .offset_reset(OffsetReset::Earliest)
                .build()
                .await
                .unwrap();
            consumer.subscribe(&[topic]).await.unwrap();
            let member = Arc::new(Member {
                consumer,
                client,
                commits_ok: AtomicU64::new(0),
                commits_failed: AtomicU64::new(0),
                recv_errors: Mutex::new(Vec::new()),
            });
            members.push(member.clone());
            tasks.push(tokio::spawn(member_loop(
                member,
                topic.to_owned(),
                view.clone(),
                stop.clone(),
            )));
        }
        Group {
            members,
            tasks,
            stop,
        }
    }

    /// Stops the loops (each leaves its last batch uncommitted), then closes the members:
    /// they leave the group without committing anything more (auto-commit is off).
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            bounded("member loop", Duration::from_secs(90), t)
                .await
                .expect("member loop panicked");
        }
        let mut report = Vec::new();
        for m in &self.members {
            let metrics = m.consumer.metrics();
            report.push(format!(
                "rebalances={} commits ok={} failed={} recv_errors={:?}",
                metrics.rebalances,
                m.commits_ok.load(Ordering::Relaxed),
                m.commits_failed.load(Ordering::Relaxed),
                m.recv_errors.lock().unwrap()
            ));
            bounded(
                "consumer close",
                Duration::from_secs(60),
                m.consumer.close(),
            )
            .await
            .unwrap();
            m.client.close().await;
        }
        report
    }
}

/// The group's committed offsets, as librdkafka reads them.
fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    use rdkafka::consumer::Consumer as _;
    let reader = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create::<rdkafka::consumer::BaseConsumer>()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let c = reader
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    c.elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

/// Scenario 4: SIGKILL of the group coordinator's broker while three members consume with
/// manual commits. The live group must get its commits through again (new coordinator) and
/// lose nothing; then a second set of members replaces the first and must start exactly where
/// the acknowledged commits say — offsets committed through both coordinators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_coordinator_killed_group_resumes_from_committed_offsets() {
    let turn = Turn::begin("group_coordinator_killed").await;
    const PARTITIONS: i32 = 6;
    const PER_PARTITION: u64 = 6_000;
    let total = (PARTITIONS as u64 * PER_PARTITION) as usize;
    let setup = client(&turn.bootstrap, "group-setup").await;
    let topic = unique_topic("group_coordinator_killed");
    create_topic(&setup, &topic, PARTITIONS).await;
    let producer = Producer::builder(&setup).build().await.unwrap();
    let written = Producing::start(
        producer.clone(),
        &topic,
        "c",
        PARTITIONS,
        0..PER_PARTITION,
        200_000,
    )
    .finish("writing the group's input", Duration::from_secs(60))
    .await;
    assert_eq!(written.acked_count(), total);
    producer.close(Duration::from_secs(10)).await.unwrap();
    setup.close().await;

    let group = unique_topic("failover-group");
    let view = Arc::new(Mutex::new(GroupView::default()));
    let first = Group::start(&turn.bootstrap, &group, &topic, "first", &view).await;
    let distinct = |view: &Mutex<GroupView>| view.lock().unwrap().delivered.len();
    let committed_sum =
        |view: &Mutex<GroupView>| -> i64 { view.lock().unwrap().committed.values().sum() };
    assert!(
        wait_until(Duration::from_secs(90), || distinct(&view) >= total / 4).await,
        "the group consumed only {} records before the fault",
        distinct(&view)
    );
    let b = turn.bootstrap.clone();
    let coordinator = blocking(move || coordinator_of(&b, "__consumer_offsets")).await;
    let committed_before = committed_sum(&view);
    turn.log(format!(
        "{} of {total} consumed, {committed_before} committed; SIGKILL to node {coordinator} \
         (group coordinator)",
        distinct(&view)
    ));
    let kill_at = Instant::now();
    on_cluster(move |c| c.kill(coordinator)).await;
    // Recovered: commits go through again, which needs the new coordinator.
    let recovered = wait_until(Duration::from_secs(90), || {
        committed_sum(&view) > committed_before + 1000
    })
    .await;
    let recovered_after = kill_at.elapsed();
    turn.log(format!(
        "commits {} {:.1} s after the kill ({} consumed)",
        if recovered {
            "resumed"
        } else {
            "did NOT resume"
        },
        recovered_after.as_secs_f64(),
        distinct(&view)
    ));
    assert!(
        recovered,
        "the group's commits never resumed after the coordinator died"
    );

    // Hand over, with the killed node still down: the first members stop mid-stream, each
    // with a processed batch it never committed; new members must start at the commits,
    // which the new coordinator serves (some were written through the old one).
    let first_report = first.stop().await;
    let (handover_committed, handover_last, consumed_first) = {
        let mut v = view.lock().unwrap();
        v.second_group = true;
        (v.committed.clone(), v.last.clone(), v.delivered.len())
    };
    turn.log(format!(
        "first members stopped with {consumed_first} of {total} consumed; committed \
         {handover_committed:?}; members: {first_report:?}"
    ));
    assert!(
        consumed_first < total,
        "the first members consumed everything: nothing left to resume"
    );
    let second = Group::start(&turn.bootstrap, &group, &topic, "second", &view).await;
    // The killed node returns while the new members consume.
    on_cluster(move |c| c.restart(coordinator)).await;
    turn.log(format!(
        "node {coordinator} restarted ({} consumed)",
        distinct(&view)
    ));
    let all_seen = wait_until(Duration::from_secs(120), || distinct(&view) >= total).await;
    let all_committed = wait_until(Duration::from_secs(60), || {
        let v = view.lock().unwrap();
        (0..PARTITIONS).all(|p| v.committed.get(&p) == Some(&(PER_PARTITION as i64)))
    })
    .await;
    let consumed_in = kill_at.elapsed();
    let second_report = second.stop().await;
    let (b, t, g) = (turn.bootstrap.clone(), topic.clone(), group.clone());
    let committed_in_kafka = blocking(move || committed_offsets(&b, &g, &t, PARTITIONS)).await;
    let v = view.lock().unwrap();
    let missing: Vec<(i32, i64)> = (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION as i64).map(move |o| (p, o)))
        .filter(|k| !v.delivered.contains_key(k))
        .take(20)
        .collect();
    let deliveries: u64 = v.delivered.values().map(|&n| n as u64).sum();
    turn.log(format!("second members: {second_report:?}"));
    assert!(
        all_seen && missing.is_empty(),
        "records never delivered to the group (at-least-once broken): {} distinct of {total}, \
         first missing {missing:?}",
        v.delivered.len()
    );
    assert!(
        v.below_committed.is_empty(),
        "the group went back below its committed offsets: {:?}",
        &v.below_committed[..v.below_committed.len().min(10)]
    );
    // Where the second members started: at the acknowledged commit (a commit whose answer
    // was lost may have landed too: up to the last record handed out, plus one).
    let mut resume_problems = Vec::new();
    for p in 0..PARTITIONS {
        let c = handover_committed.get(&p).copied().unwrap_or(0);
        let l = handover_last.get(&p).copied().unwrap_or(-1);
        match v.first_in_second_group.get(&p) {
            Some(&f) if f >= c && f <= l + 1 => {}
            Some(&f) => resume_problems.push(format!(
                "partition {p}: resumed at {f}, committed {c}, last handed out {l}"
            )),
            None if c == PER_PARTITION as i64 => {}
            None => resume_problems.push(format!(
                "partition {p}: nothing delivered after the handover (committed {c})"
            )),
        }
    }
    assert!(
        resume_problems.is_empty(),
        "the new members did not resume from the committed offsets: {resume_problems:?}"
    );
    assert!(
        all_committed,
        "the group's commits did not reach the end of the log: {:?}",
        v.committed
    );
    for p in 0..PARTITIONS {
        assert_eq!(
            committed_in_kafka.get(&p),
            Some(&(PER_PARTITION as i64)),
            "committed offset of partition {p} as librdkafka reads it: {committed_in_kafka:?}"
        );
    }
    turn.log(format!(
        "RESULT records={total} distinct_delivered={} deliveries={deliveries} \
         redeliveries={} lost=0 resumed_below_commit=0 coordinator=node {coordinator} \
         commits_resumed_after={:.1}s handover_at={consumed_first} resumed_at={:?} \
         committed_at_handover={handover_committed:?} all_consumed_and_committed_after={:.1}s",
        v.delivered.len(),
        v.redeliveries,
        recovered_after.as_secs_f64(),
        v.first_in_second_group,
        consumed_in.as_secs_f64()
    ));
    drop(v);
    turn.end();
}

// ---------------------------------------------------------------------------------------------
// 5: the transaction coordinator killed mid-transaction.
// ---------------------------------------------------------------------------------------------

/// How one transaction ended, as its producer learned it.
#[derive(Debug, Clone, PartialEq)]
enum TxnEnd {
    Committed,
    Aborted,
    /// The commit failed and so did the abort: the producer was replaced, and the new one's
    /// init_transactions settled the transaction (aborted unless the commit had gone through).
    Unknown,
}

async fn txn_producer(client: &Client, id: &str) -> Producer {
    Producer::builder(client)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "30000")
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_coordinator_killed_mid_transaction_is_all_or_nothing() {
    let turn = Turn::begin("txn_coordinator_killed").await;
    const PARTITIONS: i32 = 3;
    const TXNS: u64 = 30;
    const PER_TXN: u64 = 30;
    const KILL_IN: u64 = 8;
    const RESTART_AFTER: u64 = 16;
    let client = client(&turn.bootstrap, "txn").await;
    let topic = unique_topic("txn_coordinator_killed");
    create_topic(&client, &topic, PARTITIONS).await;
    let txn_id = unique_topic("failover-txn");
    let mut producer = txn_producer(&client, &txn_id).await;
    bounded(
        "init_transactions",
        Duration::from_secs(90),
        producer.init_transactions(),
    )
    .await
    .unwrap();
    let mut ends: BTreeMap<u64, TxnEnd> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut replaced = 0;
    let mut coordinator = None;
    let mut txn_ms: Vec<(u64, u128)> = Vec::new();
    for txn in 0..TXNS {
        let began = Instant::now();
        producer.begin_transaction().unwrap();
        let mut deliveries = Vec::new();
        let mut send_error = None;
        for i in 0..PER_TXN {
            if txn == KILL_IN && i == PER_TXN / 2 {
                let b = turn.bootstrap.clone();
                let id = blocking(move || coordinator_of(&b, "__transaction_state")).await;
                turn.log(format!(
                    "transaction {txn}: {i} of {PER_TXN} records sent; SIGKILL to node {id} \
                     (transaction coordinator)"
                ));
                on_cluster(move |c| c.kill(id)).await;
                coordinator = Some(id);
            }
            // Every record carries its transaction: "t<txn>" is the tag, so each
            // transaction's records can be counted in the log.
            let p = (i % PARTITIONS as u64) as i32;
            let seq = txn * PER_TXN + i;
            let record = Record::new(topic.as_str())
                .partition(p)
                .value(format!("t{txn}:{p}:{seq}"));
            match bounded(
                "transactional send",
                Duration::from_secs(90),
                producer.send(record),
            )
            .await
            {
                Ok(d) => deliveries.push(d),
                Err(e) => {
                    send_error = Some(e);
                    break;
                }
            }
        }
        let commit = match send_error {
            Some(e) => Err(e),
            None => {
                bounded(
                    "commit_transaction",
                    Duration::from_secs(150),
                    producer.commit_transaction(),
                )
                .await
            }
        };
        let end = match commit {
            Ok(()) => {
                for d in deliveries {
                    d.await.expect("a committed transaction's record failed");
                }
                TxnEnd::Committed
            }
            Err(e) => {
                // The documented outcomes: a broker's code (abortable, or fatal when fenced)
                // or a timeout, never an untyped protocol failure.
                assert!(
                    e.kafka_code().is_some() || e.is_timeout(),
                    "transaction {txn}: commit failed with an untyped error: {e:?}"
                );
                errors.push(format!("transaction {txn}: commit: {e:?}"));
                turn.log(format!(
                    "transaction {txn}: commit failed (retriable={}): {e}",
                    e.is_retriable()
                ));
                match bounded(
                    "abort_transaction",
                    Duration::from_secs(150),
                    producer.abort_transaction(),
                )
                .await
                {
                    Ok(()) => TxnEnd::Aborted,
                    Err(e) => {
                        errors.push(format!("transaction {txn}: abort: {e:?}"));
                        turn.log(format!(
                            "transaction {txn}: abort failed too ({e}); a new producer with \
                             the same transactional id takes over"
                        ));
                        let _ = producer.close(Duration::from_secs(5)).await;
                        producer = txn_producer(&client, &txn_id).await;
                        bounded(
                            "init_transactions of the replacement",
                            Duration::from_secs(150),
                            producer.init_transactions(),
                        )
                        .await
                        .unwrap();
                        replaced += 1;
                        TxnEnd::Unknown
                    }
                }
            }
        };
        txn_ms.push((txn, began.elapsed().as_millis()));
        if txn == KILL_IN {
            turn.log(format!(
                "transaction {txn} (the one the kill hit) ended {end:?} after {:.1} s",
                began.elapsed().as_secs_f64()
            ));
        }
        ends.insert(txn, end);
        if txn == RESTART_AFTER {
            if let Some(id) = coordinator {
                on_cluster(move |c| c.restart(id)).await;
                turn.log(format!("node {id} restarted after transaction {txn}"));
            }
        }
    }
    bounded(
        "producer close",
        Duration::from_secs(30),
        producer.close(Duration::from_secs(20)),
    )
    .await
    .unwrap();
    let committed = ends.values().filter(|e| **e == TxnEnd::Committed).count();
    let (b, t) = (turn.bootstrap.clone(), topic.clone());
    let log =
        blocking(move || read_all(&b, &t, PARTITIONS, true, committed * PER_TXN as usize)).await;
    // Per transaction: how many of its records a read_committed reader sees, and no record
    // twice or out of order (sequences increase across transactions within a partition).
    let mut per_txn: BTreeMap<u64, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (p, records) in &log {
        let mut last: Option<u64> = None;
        for (offset, value) in records {
            let Some((tag, vp, seq)) = parse_value(value) else {
                problems.push(format!("{p}@{offset}: unknown value `{value}`"));
                continue;
            };
            let txn: u64 = tag.trim_start_matches('t').parse().unwrap_or(u64::MAX);
            if vp != *p || seq / PER_TXN != txn {
                problems.push(format!("{p}@{offset}: `{value}` does not belong here"));
            }
            if last.is_some_and(|l| seq <= l) {
                problems.push(format!(
                    "{p}@{offset}: `{value}` after sequence {} (duplicate or out of order)",
                    last.unwrap()
                ));
            }
            last = Some(seq);
            *per_txn.entry(txn).or_default() += 1;
        }
    }
    for (txn, end) in &ends {
        let seen = per_txn.get(txn).copied().unwrap_or(0);
        let ok = match end {
            TxnEnd::Committed => seen == PER_TXN as usize,
            TxnEnd::Aborted => seen == 0,
            TxnEnd::Unknown => seen == 0 || seen == PER_TXN as usize,
        };
        if !ok {
            problems.push(format!(
                "transaction {txn} ended {end:?} but {seen} of its {PER_TXN} records are visible \
                 to read_committed"
            ));
        }
    }
    let slowest = txn_ms.iter().max_by_key(|(_, ms)| *ms).copied();
    turn.log(format!(
        "transactions: {committed} committed, {} aborted, {} unknown; producers replaced: \
         {replaced}; errors: {errors:?}; slowest transaction: {slowest:?} ms",
        ends.values().filter(|e| **e == TxnEnd::Aborted).count(),
        ends.values().filter(|e| **e == TxnEnd::Unknown).count(),
    ));
    assert!(
        problems.is_empty(),
        "read_committed shows partial or doubled transactions:\n{}",
        problems.join("\n")
    );
    // The producer (or its replacement) must have recovered: everything after the kill's
    // transaction committed.
    let after: Vec<(&u64, &TxnEnd)> = ends
        .iter()
        .filter(|(t, e)| **t > KILL_IN && **e != TxnEnd::Committed)
        .collect();
    assert!(
        after.is_empty(),
        "transactions after the coordinator failover did not commit: {after:?}"
    );
    let visible: usize = per_txn.values().sum();
    turn.log(format!(
        "RESULT transactions={TXNS} x {PER_TXN} records; committed={committed} visible_records=\
         {visible} partial=0 duplicates=0 coordinator=node {} kill_in_txn={KILL_IN} \
         kill_txn_took={:?}ms",
        coordinator.unwrap_or(-1),
        txn_ms.get(KILL_IN as usize).map(|t| t.1)
    ));
    client.close().await;
    turn.end();
}
