//! The KIP-848 consumer group protocol (`group.protocol=consumer`) on real Apache Kafka 4.4:
//! ferrokafka members next to a Java member (kafka-clients 4.4.0) in one group, a member
//! killed without leaving, an online upgrade of a classic group, and a regex subscription.
//!
//! The shared node (`common::kafka()`) serves every test but the killed-member one, which
//! needs a short broker-side session timeout (`group.consumer.session.timeout.ms`, whose
//! minimum is a server property) on a node of its own. Without Kafka or the Java peer
//! (`cargo xtask install-brokers`) every test fails, saying so.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::java::{Event, JavaPeer};
use common::{connect, create_topic, unique_topic, within, KafkaOptions};
use ferrokafka::{
    Client, Consumer, ConsumerBuilder, GroupProtocol, OffsetReset, Producer, RebalanceContext,
    RebalanceListener, Record, TopicPartition,
};

/// A record as a member processed it: (member, topic, partition, offset, value).
type Read = (String, String, i32, i64, String);

/// Which ferrokafka member holds which partition right now, kept by the hooks of every
/// member of one test: an `assigned` while another member still holds the partition is a
/// violation of "one owner at a time".
#[derive(Clone, Default)]
struct Owners {
    holder: Arc<Mutex<HashMap<TopicPartition, String>>>,
    violations: Arc<Mutex<Vec<String>>>,
}

/// One member's hooks: its partitions, and what went wrong.
#[derive(Clone)]
struct Hooks {
    name: String,
    owners: Owners,
    owned: Arc<Mutex<BTreeSet<TopicPartition>>>,
    lost: Arc<Mutex<Vec<Vec<TopicPartition>>>>,
    /// `revoked` calls so far.
    revocations: Arc<Mutex<usize>>,
}

#[ferrokafka::async_trait]
impl RebalanceListener for Hooks {
    async fn assigned(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        let mut holder = self.owners.holder.lock().unwrap();
        for tp in partitions {
            if let Some(other) = holder.insert(tp.clone(), self.name.clone()) {
                self.owners.violations.lock().unwrap().push(format!(
                    "{tp} assigned to {} while {other} still held it",
                    self.name
                ));
            }
        }
        self.owned
            .lock()
            .unwrap()
            .extend(partitions.iter().cloned());
    }

    async fn revoked(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        *self.revocations.lock().unwrap() += 1;
        self.release(partitions);
    }

    async fn lost(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        self.lost.lock().unwrap().push(partitions.to_vec());
        self.release(partitions);
    }
}

impl Hooks {
    fn release(&self, partitions: &[TopicPartition]) {
        let mut holder = self.owners.holder.lock().unwrap();
        let mut owned = self.owned.lock().unwrap();
        for tp in partitions {
            if holder.get(tp) == Some(&self.name) {
                holder.remove(tp);
            }
            owned.remove(tp);
        }
    }
}

/// What a member subscribes to.
enum Sub<'a> {
    Topics(&'a [&'a str]),
    Pattern(&'a str),
}

/// A ferrokafka member: a task receives batches and notes every record. Auto-commit is on
/// (the default), so the offsets handed out are committed by the consumer itself when
/// partitions are revoked — the commit that must land before the next owner reads.
struct Member {
    name: String,
    consumer: Option<Arc<Consumer>>,
    hooks: Hooks,
    reads: Arc<Mutex<Vec<Read>>>,
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Member {
    async fn start(name: &str, builder: ConsumerBuilder, owners: &Owners, sub: Sub<'_>) -> Member {
        let hooks = Hooks {
            name: name.to_owned(),
            owners: owners.clone(),
            owned: Arc::default(),
            lost: Arc::default(),
            revocations: Arc::default(),
        };
        let consumer = Arc::new(
            builder
                .offset_reset(OffsetReset::Earliest)
                .set("fetch.max.wait.ms", "100")
                .set("auto.commit.interval.ms", "1000")
                .rebalance_listener(hooks.clone())
                .build()
                .await
                .unwrap_or_else(|e| panic!("{name}: build failed: {e}")),
        );
        match sub {
            Sub::Topics(t) => consumer.subscribe(t).await.unwrap(),
            Sub::Pattern(p) => consumer.subscribe_pattern(p).await.unwrap(),
        }
        let reads: Arc<Mutex<Vec<Read>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (consumer, reads, errors, stop) = (
                consumer.clone(),
                reads.clone(),
                errors.clone(),
                stop.clone(),
            );
            let name = name.to_owned();
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let batch =
                        tokio::time::timeout(Duration::from_millis(100), consumer.recv_batch(200))
                            .await;
                    match batch {
                        Err(_) => {}
                        Ok(Ok(batch)) => reads.lock().unwrap().extend(batch.iter().map(|r| {
                            let value =
                                String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap();
                            (
                                name.clone(),
                                r.topic.to_string(),
                                r.partition,
                                r.offset,
                                value,
                            )
                        })),
                        Ok(Err(e)) => {
                            errors.lock().unwrap().push(e.to_string());
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        });
        Member {
            name: name.to_owned(),
            consumer: Some(consumer),
            hooks,
            reads,
            errors,
            stop,
            task: Some(task),
        }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.hooks
            .owned
            .lock()
            .unwrap()
            .iter()
            .map(|tp| tp.partition)
            .collect()
    }

    async fn stop_polling(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            within("member task ends", task).await.unwrap();
        }
    }

    /// Stops polling and closes: revoke (commit), leave.
    async fn close(&mut self) {
        self.stop_polling().await;
        if let Some(c) = self.consumer.take() {
            within(&format!("{} closes", self.name), c.close())
                .await
                .unwrap();
        }
    }

    /// Stops polling and drops the consumer without closing: no commit, no leave — the
    /// broker only notices when the session times out.
    async fn kill(&mut self) {
        self.stop_polling().await;
        let c = self.consumer.take().expect("running");
        assert_eq!(Arc::strong_count(&c), 1, "the consumer is still shared");
        drop(c);
    }

    fn check_healthy(&self) {
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "{}: recv failed: {errors:?}", self.name);
        let lost = self.hooks.lost.lock().unwrap();
        assert!(lost.is_empty(), "{}: lost {lost:?}", self.name);
    }
}

/// The Java member (`group.protocol=consumer`): its stdout folded into what it owns and read.
struct JavaMember {
    peer: JavaPeer,
    topic: String,
    owned: BTreeSet<i32>,
    reads: Vec<Read>,
    lost: Vec<Vec<i32>>,
    /// The peer printed `closed`.
    closed: bool,
}

impl JavaMember {
    fn start(bootstrap: &str, topic: &str, group: &str) -> JavaMember {
        let peer = JavaPeer::spawn(&[
            "consume",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--commit",
            "manual",
            "-X",
            "group.protocol=consumer",
            "-X",
            "fetch.max.wait.ms=100",
        ]);
        JavaMember {
            peer,
            topic: topic.to_owned(),
            owned: BTreeSet::new(),
            reads: Vec::new(),
            lost: Vec::new(),
            closed: false,
        }
    }

    fn pump(&mut self) {
        while let Some(event) = self.peer.try_event() {
            match event {
                Event::Owned(ps) => self.owned = ps.into_iter().collect(),
                Event::Lost(ps) => self.lost.push(ps),
                Event::Record(r) => {
                    let value = String::from_utf8(r.value.unwrap()).unwrap();
                    self.reads.push((
                        "java".into(),
                        self.topic.clone(),
                        r.partition,
                        r.offset,
                        value,
                    ));
                }
                Event::Other(l) if l.starts_with("closed") => self.closed = true,
                _ => {}
            }
        }
    }

    /// Closes the Java consumer (it commits what it printed, then leaves) and takes in the
    /// rest of its output.
    async fn stop(&mut self) {
        self.peer.send_line("stop").await;
        let deadline = tokio::time::Instant::now() + common::TEST_TIMEOUT;
        while !self.closed {
            self.pump();
            if tokio::time::Instant::now() > deadline {
                panic!("the Java member did not close: {}", self.peer.describe());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.owned.clear();
    }
}

/// Polls `cond` until it holds (pumping the Java member, if any); panics with `state()`.
async fn wait_until(
    what: &str,
    java: &mut Option<&mut JavaMember>,
    mut cond: impl FnMut(&Option<&mut JavaMember>) -> bool,
    state: impl Fn(&Option<&mut JavaMember>) -> String,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(j) = java.as_mut() {
            j.pump();
        }
        if cond(java) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let extra = java.as_ref().map(|j| j.peer.describe()).unwrap_or_default();
            panic!("timed out: {what}; {}\n{extra}", state(java));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `per_partition` records to each partition of `topic`, values `tag-P-I`.
async fn produce(
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

/// Every value of `expected` processed exactly once, and nothing else; per partition the
/// offsets processed are exactly the offsets written (none twice, none skipped).
fn assert_each_processed_once(what: &str, reads: &[Read], expected: &[String]) {
    let mut by_value: HashMap<&str, Vec<(&str, i32, i64)>> = HashMap::new();
    for (member, _, p, o, v) in reads {
        by_value.entry(v).or_default().push((member, *p, *o));
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
    let expected_set: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let unexpected: Vec<&&str> = by_value
        .keys()
        .filter(|v| !expected_set.contains(**v))
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && twice.is_empty() && unexpected.is_empty(),
        "{what}: missing {missing:?}; processed more than once {twice:?}; unexpected {unexpected:?}"
    );
    let mut offsets: BTreeMap<(String, i32), Vec<i64>> = BTreeMap::new();
    for (_, t, p, o, _) in reads {
        offsets.entry((t.clone(), *p)).or_default().push(*o);
    }
    for ((t, p), mut os) in offsets {
        os.sort_unstable();
        let contiguous = os.windows(2).all(|w| w[1] == w[0] + 1) && os.first() == Some(&0);
        assert!(
            contiguous,
            "{what}: {t}-{p} offsets not 0..n once each: {os:?}"
        );
    }
}

fn consumer_protocol(client: &Client, group: &str) -> ConsumerBuilder {
    Consumer::builder(client)
        .group_id(group)
        .group_protocol(GroupProtocol::Consumer)
}

fn all_reads(members: &[&Member], java: Option<&JavaMember>) -> Vec<Read> {
    let mut out: Vec<Read> = members
        .iter()
        .flat_map(|m| m.reads.lock().unwrap().clone())
        .collect();
    if let Some(j) = java {
        out.extend(j.reads.iter().cloned());
    }
    out
}

/// Whether the owned sets are disjoint and together cover `0..n`, each non-empty.
fn split(sets: &[BTreeSet<i32>], n: i32) -> bool {
    let mut seen = BTreeSet::new();
    for s in sets {
        if s.is_empty() {
            return false;
        }
        for p in s {
            if !seen.insert(*p) {
                return false;
            }
        }
    }
    seen == (0..n).collect()
}

/// Test 1: three ferrokafka members and a Java member share 12 partitions; members join and
/// leave one by one while records flow. Each partition has one owner at a time (hooks), the
/// group settles into a disjoint cover after every change, and every record is processed
/// exactly once: the commit made on revoke lands before the next owner reads.
#[tokio::test]
async fn ferrokafka_and_java_members_share_partitions_as_members_come_and_go() {
    const PARTITIONS: i32 = 12;
    const PER: usize = 20;
    let started = std::time::Instant::now();
    let bootstrap = common::kafka().bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("kip848-share");
    create_topic(&client, &topic, PARTITIONS).await;
    let group = unique_topic("kip848-group");
    let owners = Owners::default();
    let topics = [topic.as_str()];
    let mut expected = Vec::new();

    let state = |ms: &[&Member], j: &Option<&mut JavaMember>| {
        let mut s: Vec<String> = ms
            .iter()
            .map(|m| {
                format!(
                    "{} owns {:?} read {}",
                    m.name,
                    m.owned(),
                    m.reads.lock().unwrap().len()
                )
            })
            .collect();
        if let Some(j) = j {
            s.push(format!("java owns {:?} read {}", j.owned, j.reads.len()));
        }
        s.join("; ")
    };

    // a alone.
    let mut a = Member::start(
        "a",
        consumer_protocol(&client, &group),
        &owners,
        Sub::Topics(&topics),
    )
    .await;
    expected.extend(produce(&client, &topic, PARTITIONS, PER, "p1").await);
    wait_until(
        "a owns everything",
        &mut None,
        |_| a.owned().len() == PARTITIONS as usize,
        |j| state(&[&a], j),
    )
    .await;

    // b joins.
    let mut b = Member::start(
        "b",
        consumer_protocol(&client, &group),
        &owners,
        Sub::Topics(&topics),
    )
    .await;
    expected.extend(produce(&client, &topic, PARTITIONS, PER, "p2").await);
    wait_until(
        "a and b split",
        &mut None,
        |_| split(&[a.owned(), b.owned()], PARTITIONS),
        |j| state(&[&a, &b], j),
    )
    .await;

    // The Java member joins.
    let mut java = JavaMember::start(&bootstrap, &topic, &group);
    expected.extend(produce(&client, &topic, PARTITIONS, PER, "p3").await);
    wait_until(
        "a, b and Java split",
        &mut Some(&mut java),
        |j| {
            split(
                &[a.owned(), b.owned(), j.as_ref().unwrap().owned.clone()],
                PARTITIONS,
            )
        },
        |j| state(&[&a, &b], j),
    )
    .await;

    // c joins.
    let mut c = Member::start(
        "c",
        consumer_protocol(&client, &group),
        &owners,
        Sub::Topics(&topics),
    )
    .await;
    expected.extend(produce(&client, &topic, PARTITIONS, PER, "p4").await);
    wait_until(
        "four members split",
        &mut Some(&mut java),
        |j| {
            split(
                &[
                    a.owned(),
                    b.owned(),
                    c.owned(),
                    j.as_ref().unwrap().owned.clone(),
                ],
                PARTITIONS,
            )
        },
        |j| state(&[&a, &b, &c], j),
    )
    .await;

    // b leaves.
    b.close().await;
    expected.extend(produce(&client, &topic, PARTITIONS, PER, "p5").await);
    wait_until(
        "a, c and Java split after b left",
        &mut Some(&mut java),
        |j| {
            split(
                &[a.owned(), c.owned(), j.as_ref().unwrap().owned.clone()],
                PARTITIONS,
            )
        },
        |j| state(&[&a, &b, &c], j),
    )
    .await;

    // The Java member leaves.
    java.stop().await;
    expected.extend(produce(&client, &topic, PARTITIONS, PER, "p6").await);
    wait_until(
        "a and c split after Java left",
        &mut None,
        |_| split(&[a.owned(), c.owned()], PARTITIONS),
        |j| state(&[&a, &b, &c], j),
    )
    .await;

    // a leaves: c alone reads everything that is left.
    a.close().await;
    expected.extend(produce(&client, &topic, PARTITIONS, PER, "p7").await);
    wait_until(
        "c owns everything and every record is processed",
        &mut None,
        |_| {
            c.owned().len() == PARTITIONS as usize
                && all_reads(&[&a, &b, &c], Some(&java)).len() >= expected.len()
        },
        |j| state(&[&a, &b, &c], j),
    )
    .await;
    // Anything read twice would show up within a moment more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.close().await;

    let reads = all_reads(&[&a, &b, &c], Some(&java));
    assert_each_processed_once("members joining and leaving", &reads, &expected);
    let violations = owners.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "two owners at once: {violations:?}");
    for m in [&a, &b, &c] {
        m.check_healthy();
    }
    assert!(java.lost.is_empty(), "the Java member lost {:?}", java.lost);
    let per_member: BTreeMap<&str, usize> = reads.iter().fold(BTreeMap::new(), |mut acc, r| {
        *acc.entry(r.0.as_str()).or_default() += 1;
        acc
    });
    assert!(
        per_member.len() == 4,
        "every member processed something: {per_member:?}"
    );
    eprintln!(
        "kip848 share: {} records, per member {per_member:?}, {:.1} s",
        reads.len(),
        started.elapsed().as_secs_f64()
    );
    client.close().await;
}

/// Test 4: a regex subscription (evaluated by the broker) picks up a topic created after the
/// member joined; a setting the consumer protocol does not use fails `build()` naming it.
#[tokio::test]
async fn regex_subscription_picks_up_a_new_topic_and_classic_settings_fail_build() {
    let bootstrap = common::kafka().bootstrap();
    let client = connect(&bootstrap).await;

    for (key, value) in [
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
        ("partition.assignment.strategy", "range"),
    ] {
        let e = consumer_protocol(&client, "g")
            .set(key, value)
            .build()
            .await
            .expect_err(key)
            .to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
    let e = ConsumerBuilder::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "g"),
        ("group.protocol", "consumer"),
        ("session.timeout.ms", "10000"),
    ])
    .build()
    .await
    .expect_err("session.timeout.ms with group.protocol=consumer")
    .to_string();
    assert!(e.contains("session.timeout.ms"), "{e}");
    let classic = Consumer::builder(&client)
        .group_id("g")
        .build()
        .await
        .unwrap();
    assert!(classic.subscribe_pattern("x.*").await.is_err());

    let prefix = unique_topic("kip848-regex");
    let first = format!("{prefix}-a");
    let later = format!("{prefix}-b");
    let other = unique_topic("kip848-unmatched");
    create_topic(&client, &first, 2).await;
    create_topic(&client, &other, 1).await;
    let group = unique_topic("kip848-regex-group");
    let owners = Owners::default();
    let pattern = format!("{}-.*", prefix.replace('.', "\\."));
    let mut m = Member::start(
        "m",
        consumer_protocol(&client, &group).group_remote_assignor("uniform"),
        &owners,
        Sub::Pattern(&pattern),
    )
    .await;
    let mut expected = produce(&client, &first, 2, 5, "first").await;
    produce(&client, &other, 1, 5, "other").await;
    wait_until(
        "the member owns the matching topic",
        &mut None,
        |_| m.hooks.owned.lock().unwrap().len() == 2,
        |_| format!("owns {:?}", m.hooks.owned.lock().unwrap()),
    )
    .await;
    create_topic(&client, &later, 3).await;
    expected.extend(produce(&client, &later, 3, 5, "later").await);
    wait_until(
        "the topic created later is assigned and read",
        &mut None,
        |_| {
            m.hooks.owned.lock().unwrap().len() == 5
                && m.reads.lock().unwrap().len() >= expected.len()
        },
        |_| {
            format!(
                "owns {:?}, read {}",
                m.hooks.owned.lock().unwrap(),
                m.reads.lock().unwrap().len()
            )
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.close().await;
    let reads = m.reads.lock().unwrap().clone();
    assert!(
        reads.iter().all(|r| r.1 != other),
        "read the topic the pattern does not match"
    );
    let mut values: Vec<String> = reads.iter().map(|r| r.4.clone()).collect();
    values.sort();
    expected.sort();
    assert_eq!(values, expected);
    m.check_healthy();
    client.close().await;
}

/// The next offset to read per partition of `topic`, from what `reads` processed.
fn next_offsets(reads: &[Read], topic: &str) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for (_, t, p, o, _) in reads {
        if t == topic {
            let e = next.entry(*p).or_insert(0);
            *e = (*e).max(o + 1);
        }
    }
    next
}

/// Test 2: a member dropped without closing (no commit, no leave) is replaced once the
/// broker's session timeout expires, and its partitions continue from its last commit; then a
/// static member restarts within the session timeout and keeps its partitions. The
/// session timeout is a broker setting under KIP-848 (`group.consumer.session.timeout.ms`,
/// bounded below by a server property), hence a node of its own.
#[tokio::test]
async fn a_member_killed_without_leaving_is_replaced_after_the_session_timeout() {
    const PARTITIONS: i32 = 4;
    let cluster = common::kafka_cluster_with(
        KafkaOptions::new(1, common::logs_dir())
            .property("group.consumer.min.session.timeout.ms", "3000")
            .property("group.consumer.session.timeout.ms", "3000")
            .property("group.consumer.min.heartbeat.interval.ms", "500")
            .property("group.consumer.heartbeat.interval.ms", "500"),
    );
    let bootstrap = cluster.bootstrap();
    let admin = connect(&bootstrap).await;
    let topic = unique_topic("kip848-killed");
    create_topic(&admin, &topic, PARTITIONS).await;
    let group = unique_topic("kip848-killed-group");
    let owners = Owners::default();
    let topics = [topic.as_str()];
    // Each member on a client of its own: killing one must not touch the other's sockets.
    let (cx, cy) = (connect(&bootstrap).await, connect(&bootstrap).await);
    let mut x = Member::start(
        "x",
        consumer_protocol(&cx, &group),
        &owners,
        Sub::Topics(&topics),
    )
    .await;
    let mut y = Member::start(
        "y",
        consumer_protocol(&cy, &group),
        &owners,
        Sub::Topics(&topics),
    )
    .await;
    wait_until(
        "x and y split",
        &mut None,
        |_| split(&[x.owned(), y.owned()], PARTITIONS),
        |_| format!("x owns {:?}, y owns {:?}", x.owned(), y.owned()),
    )
    .await;
    // Written once the group is split: x processes (and commits) records of its own.
    let mut expected = produce(&admin, &topic, PARTITIONS, 25, "before").await;
    wait_until(
        "x and y read everything",
        &mut None,
        |_| all_reads(&[&x, &y], None).len() >= expected.len(),
        |_| format!("x owns {:?}, y owns {:?}", x.owned(), y.owned()),
    )
    .await;
    assert!(
        !x.reads.lock().unwrap().is_empty(),
        "x processed nothing before it was killed"
    );
    // x's auto-commit (every second) catches up with what it processed.
    let x_parts: Vec<TopicPartition> = x
        .owned()
        .iter()
        .map(|p| TopicPartition::new(&topic, *p))
        .collect();
    let x_next = next_offsets(&all_reads(&[&x, &y], None), &topic);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let committed = x
            .consumer
            .as_ref()
            .unwrap()
            .committed(&x_parts)
            .await
            .unwrap();
        let caught_up = committed
            .iter()
            .all(|(tp, c)| *c == x_next.get(&tp.partition).copied());
        if caught_up {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "x's commits {committed:?} never reached {x_next:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let killed_at = std::time::Instant::now();
    x.kill().await;
    expected.extend(produce(&admin, &topic, PARTITIONS, 25, "after").await);
    wait_until(
        "y takes x's partitions over after the session timeout",
        &mut None,
        |_| {
            y.owned().len() == PARTITIONS as usize
                && all_reads(&[&x, &y], None).len() >= expected.len()
        },
        |_| format!("y owns {:?}", y.owned()),
    )
    .await;
    let took = killed_at.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    y.close().await;
    let reads = all_reads(&[&x, &y], None);
    assert_each_processed_once("a member killed", &reads, &expected);
    y.check_healthy();
    let violations = owners.violations.lock().unwrap().clone();
    // x never ran its hooks again: its partitions still show it as their holder when y got
    // them, which is exactly the takeover this test is about.
    assert!(
        violations.iter().all(|v| v.contains("while x still held")),
        "{violations:?}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "taken over after {took:?}, before the 3 s session timeout could expire"
    );
    eprintln!(
        "kip848 killed: y took over after {:.1} s",
        took.as_secs_f64()
    );

    // Static membership on the same node: a static member that closes leaves with epoch -2,
    // which keeps its assignment reserved for its instance id for the session timeout; a
    // restart within it gets the same partitions back and the other member is not touched.
    let group = unique_topic("kip848-static-group");
    let owners = Owners::default();
    let (cs, cd) = (connect(&bootstrap).await, connect(&bootstrap).await);
    let statik = |c: &Client| consumer_protocol(c, &group).group_instance_id("static-1");
    let mut s1 = Member::start("s1", statik(&cs), &owners, Sub::Topics(&topics)).await;
    let mut d = Member::start(
        "d",
        consumer_protocol(&cd, &group),
        &owners,
        Sub::Topics(&topics),
    )
    .await;
    wait_until(
        "the static and the dynamic member split",
        &mut None,
        |_| split(&[s1.owned(), d.owned()], PARTITIONS),
        |_| format!("s1 owns {:?}, d owns {:?}", s1.owned(), d.owned()),
    )
    .await;
    let (s_parts, d_parts) = (s1.owned(), d.owned());
    let revocations_before = *d.hooks.revocations.lock().unwrap();
    s1.close().await;
    let mut s2 = Member::start("s2", statik(&cs), &owners, Sub::Topics(&topics)).await;
    wait_until(
        "the restarted static member gets its partitions back",
        &mut None,
        |_| s2.owned() == s_parts,
        |_| {
            format!(
                "s2 owns {:?} (s1 had {s_parts:?}), d owns {:?}",
                s2.owned(),
                d.owned()
            )
        },
    )
    .await;
    assert_eq!(d.owned(), d_parts, "the dynamic member's partitions moved");
    assert_eq!(
        *d.hooks.revocations.lock().unwrap(),
        revocations_before,
        "the dynamic member had partitions revoked while the static member restarted"
    );
    s2.close().await;
    d.close().await;
    for m in [&s1, &s2, &d] {
        m.check_healthy();
    }
    for c in [cx, cy, cs, cd, admin] {
        c.close().await;
    }
}

/// Test 3: a classic group upgraded online — its members restart one by one with
/// `group.protocol=consumer` (Kafka converts the group when the first consumer-protocol
/// member joins and serves the classic members on in the mixed group). Every record is
/// processed exactly once: each member leaves cleanly, committing on revoke.
#[tokio::test]
async fn a_classic_group_is_upgraded_online_member_by_member() {
    const PARTITIONS: i32 = 6;
    let bootstrap = common::kafka().bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("kip848-upgrade");
    create_topic(&client, &topic, PARTITIONS).await;
    let group = unique_topic("kip848-upgrade-group");
    let owners = Owners::default();
    let topics = [topic.as_str()];
    let classic = |client: &Client| {
        Consumer::builder(client)
            .group_id(&group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "500")
    };
    let names = ["m1", "m2", "m3"];
    let mut members = Vec::new();
    for name in names {
        members.push(Member::start(name, classic(&client), &owners, Sub::Topics(&topics)).await);
    }
    let mut expected = produce(&client, &topic, PARTITIONS, 20, "classic").await;
    let mut retired: Vec<Member> = Vec::new();
    let check = |members: &[Member], retired: &[Member], expected: &[String]| {
        let owned: Vec<BTreeSet<i32>> = members.iter().map(Member::owned).collect();
        let all: Vec<&Member> = members.iter().chain(retired).collect();
        split(&owned, PARTITIONS) && all_reads(&all, None).len() >= expected.len()
    };
    wait_until(
        "the classic group settles and reads",
        &mut None,
        |_| check(&members, &retired, &expected),
        |_| {
            format!(
                "{:?}",
                members.iter().map(Member::owned).collect::<Vec<_>>()
            )
        },
    )
    .await;
    for (i, name) in names.iter().enumerate() {
        let mut old = members.remove(i);
        old.close().await;
        retired.push(old);
        let upgraded = format!("{name}-848");
        members.insert(
            i,
            Member::start(
                &upgraded,
                consumer_protocol(&client, &group),
                &owners,
                Sub::Topics(&topics),
            )
            .await,
        );
        expected.extend(produce(&client, &topic, PARTITIONS, 20, &upgraded).await);
        wait_until(
            &format!("the group settles with {upgraded}"),
            &mut None,
            |_| check(&members, &retired, &expected),
            |_| {
                format!(
                    "{:?}",
                    members
                        .iter()
                        .map(|m| (m.name.clone(), m.owned()))
                        .collect::<Vec<_>>()
                )
            },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for m in members.iter_mut() {
        m.close().await;
    }
    let all: Vec<&Member> = members.iter().chain(&retired).collect();
    let reads = all_reads(&all, None);
    assert_each_processed_once("online upgrade", &reads, &expected);
    for m in &all {
        m.check_healthy();
    }
    let violations = owners.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "two owners at once: {violations:?}");
    client.close().await;
}
