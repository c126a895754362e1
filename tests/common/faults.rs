//! The fault-suite driver (`tests/faults_*.rs`, described in `docs/RELIABILITY.md`).
//!
//! One scenario = a fresh cluster of three brokers, a topic whose partitions are led by
//! different brokers, an idempotent ferrokafka producer sending numbered records (value
//! `"<partition>:<sequence>"`), a group of two ferrokafka consumers reading them, and one fault
//! injected when half of the records have been sent. Then the invariants:
//!
//! 1. every record whose delivery future returned `Ok` is in the log exactly once, in send
//!    order per partition — read back by a fresh ferrokafka consumer (assign mode) and by
//!    librdkafka, which must agree;
//! 2. every delivery future completes within `delivery.timeout.ms` (plus scheduling slack),
//!    failures with a typed error, and only where the scenario allows failures at all; every
//!    other await has a deadline too;
//! 3. the two group members together saw every acknowledged record at least once (and
//!    nothing that is not in the log);
//! 4. nothing panics, and `close()` of the producer and both consumers returns `Ok`.
//!
//! A scenario is written as `Scenario::new(name).fault(|ctx| async move { .. }).run().await`;
//! the closure runs at the midpoint while the second half of the records is being sent.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka::{Client, Consumer, Error, OffsetReset, Producer, Record, TopicPartition};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio::time::Instant;

use super::cutting_proxy::CuttingProxy;
use super::{unique_topic, within, Tansu};

/// Brokers in every mock cluster.
pub const BROKERS: i32 = 3;
/// Partitions of the topic: one led by each broker at the start.
pub const PARTITIONS: i32 = 3;
/// Records sent to each partition (small: the mock keeps ≤ 5 MiB per partition, and the
/// suite runs on two cores).
pub const PER_PARTITION: usize = 200;
/// The broker that coordinates the group at the start (it also leads partition 0).
pub const COORDINATOR: i32 = 1;
/// `delivery.timeout.ms` of the producer: short, so failures surface within the test.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// `request.timeout.ms` of every client under test, unless a scenario sets another.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How late a delivery outcome may be reported past `delivery.timeout.ms`: the sender checks
/// expiry on its passes (at most a second apart) and two cores are shared by parallel tests.
const DELIVERY_SLACK: Duration = Duration::from_secs(3);
/// How many Produce requests in a row an injected Produce error fails: a retry meets the
/// error again, as it would while a broker condition lasts.
pub const PRODUCE_BURST: usize = 3;

/// The partition's leader at the start: 0 → broker 1, 1 → broker 2, 2 → broker 3.
pub fn initial_leader(partition: i32) -> i32 {
    partition % BROKERS + 1
}

/// Where the cluster under test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// librdkafka's mock cluster of three brokers; clients connect directly.
    Mock,
    /// The mock with a [`CuttingProxy`] in front of each broker (ports rewritten, so the
    /// clients under test talk to every broker through its proxy).
    MockBehindProxies,
    /// One Tansu broker behind a proxy. Tansu deduplicates idempotent retries by sequence
    /// number, which the mock does not: scenarios where a Produce reached the log but its
    /// answer was lost can only show "no duplicate" here.
    TansuBehindProxy,
}

/// What a fault closure can act on.
pub struct Ctx {
    // Declared before the brokers: dropped first, so no proxy task outlives its broker.
    proxies: Vec<CuttingProxy>,
    mock: Option<MockOwner>,
    tansu: Option<Tansu>,
    pub backend: Backend,
    pub topic: String,
    pub group: String,
    /// What the clients under test bootstrap from (the proxies, when there are any).
    pub bootstrap: String,
    /// What the verifying readers use: the brokers themselves where they can be reached
    /// directly, so the proxies' faults cannot touch the verification.
    pub direct_bootstrap: String,
    /// Brokers stopped by the fault and not restarted: left out of the readers' bootstrap,
    /// so the verification does not wait on refused connections.
    down: std::cell::RefCell<BTreeSet<i32>>,
}

impl Ctx {
    /// The mock cluster; panics for a Tansu scenario.
    pub fn mock(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.mock
            .as_ref()
            .expect("this scenario runs on the mock cluster")
            .cluster()
    }

    /// The proxy in front of `broker` (1-based; Tansu's proxy is broker 1).
    pub fn proxy(&self, broker: i32) -> &CuttingProxy {
        &self.proxies[(broker - 1) as usize]
    }

    /// Stops `broker`: open connections are closed, new ones refused. Leadership stays.
    pub fn broker_down(&self, broker: i32) {
        self.mock().broker_down(broker).unwrap();
        self.down.borrow_mut().insert(broker);
    }

    /// Lets `broker` accept connections again.
    pub fn broker_up(&self, broker: i32) {
        self.mock().broker_up(broker).unwrap();
        self.down.borrow_mut().remove(&broker);
    }

    /// The direct bootstrap without the brokers that are down.
    fn live_bootstrap(&self) -> String {
        let down = self.down.borrow();
        self.direct_bootstrap
            .split(',')
            .enumerate()
            .filter(|(i, _)| !down.contains(&(*i as i32 + 1)))
            .map(|(_, a)| a)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Queues `errors` for the next requests of `api`, on whichever broker they reach.
    pub fn inject(&self, api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) {
        self.mock().request_errors(api, errors);
    }

    /// Queues `err` for the next [`PRODUCE_BURST`] Produce requests. Scenarios that do this
    /// run the producer with one request in flight per broker (see
    /// [`Scenario::one_request_in_flight`]).
    pub fn inject_produce(&self, err: RDKafkaRespErr) {
        self.inject(RDKafkaApiKey::Produce, &[err; PRODUCE_BURST]);
    }

    /// Makes the group rebalance now: one member's next heartbeat says
    /// REBALANCE_IN_PROGRESS, it rejoins, and the mock moves the group to joining, so the
    /// other member follows. Used to make JoinGroup and SyncGroup happen mid-stream.
    pub fn force_rejoin(&self) {
        self.inject(
            RDKafkaApiKey::Heartbeat,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS],
        );
    }

    /// Moves the leadership of `partition` to `broker`.
    pub fn move_leader(&self, partition: i32, broker: i32) {
        self.mock()
            .partition_leader(&self.topic, partition, Some(broker))
            .unwrap();
    }

    /// Moves the group's coordinator to `broker`.
    pub fn move_coordinator(&self, broker: i32) {
        self.mock()
            .coordinator(MockCoordinator::Group(self.group.clone()), broker)
            .unwrap();
    }

    fn clear_injected_errors(&self) {
        if self.mock.is_some() {
            let mock = self.mock();
            use RDKafkaApiKey::*;
            for api in [
                Produce,
                Fetch,
                ListOffsets,
                Metadata,
                OffsetCommit,
                OffsetFetch,
                FindCoordinator,
                JoinGroup,
                Heartbeat,
                LeaveGroup,
                SyncGroup,
                InitProducerId,
            ] {
                mock.clear_request_errors(api);
            }
        }
        for p in &self.proxies {
            p.stop_cutting();
            p.set_delay(Duration::ZERO);
        }
    }
}

type Setup = Box<dyn FnOnce(&Ctx)>;
type FailureFilter = Box<dyn Fn(&Error) -> bool>;
type Fault = Box<dyn FnOnce(Rc<Ctx>) -> Pin<Box<dyn Future<Output = ()>>>>;

/// One fault scenario; see the module docs.
pub struct Scenario {
    name: &'static str,
    backend: Backend,
    setup: Option<Setup>,
    fault: Option<Fault>,
    /// Which delivery errors the fault may cause (none by default).
    allowed_failure: Option<FailureFilter>,
    delivery_timeout: Duration,
    request_timeout: Duration,
    max_in_flight: usize,
    metadata_max_age: Option<Duration>,
    idempotent: bool,
}

/// What a scenario saw, for its summary line.
#[derive(Debug)]
pub struct Report {
    pub acked: usize,
    pub failed: Vec<String>,
    pub log_records: usize,
    pub consumed: usize,
    pub rebalances: (u64, u64),
    pub consumer_errors: Vec<String>,
    pub elapsed: Duration,
}

/// One delivery outcome: partition, sequence, time from `send` to outcome, result.
type Outcome = (
    i32,
    usize,
    Duration,
    Result<ferrokafka::RecordMetadata, Error>,
);

/// Records seen by the group members: partition → sequences, plus `recv` errors.
#[derive(Default)]
struct Seen {
    by_partition: BTreeMap<i32, BTreeSet<usize>>,
    records: usize,
    errors: Vec<String>,
}

impl Scenario {
    pub fn new(name: &'static str) -> Scenario {
        Scenario {
            name,
            backend: Backend::Mock,
            setup: None,
            fault: None,
            allowed_failure: None,
            delivery_timeout: DELIVERY_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_in_flight: 5,
            metadata_max_age: None,
            idempotent: true,
        }
    }

    pub fn backend(mut self, backend: Backend) -> Scenario {
        self.backend = backend;
        self
    }

    /// Runs before any client under test exists (e.g. to fail the producer's first
    /// InitProducerId).
    pub fn setup(mut self, f: impl FnOnce(&Ctx) + 'static) -> Scenario {
        self.setup = Some(Box::new(f));
        self
    }

    /// The fault, started when half of the records have been sent; the rest is sent while
    /// it runs. It should undo what must not outlive it (a slow broker, a cut); injected
    /// errors still queued when the stream is done are cleared before verification.
    pub fn fault<F, Fut>(mut self, f: F) -> Scenario
    where
        F: FnOnce(Rc<Ctx>) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.fault = Some(Box::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Deliveries may fail, with an error `typed` accepts, in time. By default every one must
    /// succeed: a fault shorter than `delivery.timeout.ms` must not lose a record.
    pub fn deliveries_may_fail(mut self, typed: impl Fn(&Error) -> bool + 'static) -> Scenario {
        self.allowed_failure = Some(Box::new(typed));
        self
    }

    /// `delivery.timeout.ms` of the producer (default [`DELIVERY_TIMEOUT`]).
    pub fn delivery_timeout(mut self, d: Duration) -> Scenario {
        self.delivery_timeout = d;
        self
    }

    /// `max.in.flight.requests.per.connection=1` for the producer. Needed where errors are
    /// injected into single Produce requests: the librdkafka mock checks no sequence numbers
    /// for non-transactional producers, so when one request fails while a later batch of the
    /// same partition is already pipelined behind it, the mock appends the later batch first,
    /// where a real broker rejects it with OUT_OF_ORDER_SEQUENCE_NUMBER (and the client then
    /// re-sends both in order). With one request per broker at a time that cannot happen, and
    /// the log's order is the client's doing alone. Faults that fail every request to a
    /// broker (a moved leader, a dead broker) keep the default of 5.
    pub fn one_request_in_flight(mut self) -> Scenario {
        self.max_in_flight = 1;
        self
    }

    /// `enable.idempotence=false` (acks=all still): for ordering questions that must not
    /// depend on the broker checking sequence numbers.
    pub fn not_idempotent(mut self) -> Scenario {
        self.idempotent = false;
        self
    }

    /// `metadata.max.age.ms` of the clients under test (default: the client's, 5 minutes, so
    /// no scenario is rescued by a periodic refresh).
    pub fn metadata_max_age(mut self, d: Duration) -> Scenario {
        self.metadata_max_age = Some(d);
        self
    }

    /// `request.timeout.ms` of the clients under test.
    pub fn request_timeout(mut self, d: Duration) -> Scenario {
        self.request_timeout = d;
        self
    }

    pub async fn run(self) -> Report {
        super::init_tracing();
        let started = Instant::now();
        let name = self.name;
        let ctx = Rc::new(build_cluster(self.backend).await);
        if let Some(setup) = self.setup {
            setup(&ctx);
        }

        // The group: two members, each with its own client (a poisoned connection of one
        // party must not be hidden by another's), reading from the start of the stream.
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut members = Vec::new();
        for _ in 0..2 {
            let client = client(&ctx.bootstrap, self.request_timeout, self.metadata_max_age).await;
            let consumer = Arc::new(
                within(
                    &format!("{name}: build consumer"),
                    Consumer::builder(&client)
                        .group_id(&ctx.group)
                        .offset_reset(OffsetReset::Earliest)
                        .set("session.timeout.ms", "6000")
                        .set("heartbeat.interval.ms", "400")
                        .set("fetch.max.wait.ms", "50")
                        .set("auto.commit.interval.ms", "300")
                        // The mock writes control batches with CRC 0.
                        .set("check.crcs", "false")
                        .build(),
                )
                .await
                .unwrap(),
            );
            members.push((client, consumer));
        }
        // Both subscribe back to back, so both join within the mock's initial rebalance delay
        // and the group starts with one generation.
        let mut tasks = Vec::new();
        for (_, consumer) in &members {
            within(
                &format!("{name}: subscribe"),
                consumer.subscribe(&[&ctx.topic]),
            )
            .await
            .unwrap();
            tasks.push(tokio::spawn(consume(
                consumer.clone(),
                seen.clone(),
                stop.clone(),
            )));
        }
        let mut members: Vec<_> = members
            .into_iter()
            .zip(tasks)
            .map(|((client, consumer), task)| (client, consumer, task))
            .collect();
        wait_for_stable_group(name, &members[0].1, &members[1].1).await;
        let t_group = started.elapsed();

        // The producer, with its own client.
        let producer_client =
            client(&ctx.bootstrap, self.request_timeout, self.metadata_max_age).await;
        let producer = within(
            &format!("{name}: build producer"),
            Producer::builder(&producer_client)
                .delivery_timeout(self.delivery_timeout)
                .linger(Duration::from_millis(5))
                .max_in_flight(self.max_in_flight)
                .idempotence(self.idempotent)
                .build(),
        )
        .await
        .unwrap();

        let (mid_tx, mid_rx) = tokio::sync::oneshot::channel();
        let sending = tokio::spawn(send_all(producer.clone(), ctx.topic.clone(), mid_tx));
        let fault = self.fault;
        let fault_ctx = ctx.clone();
        within(&format!("{name}: midpoint and fault"), async move {
            mid_rx.await.expect("the sender reached the midpoint");
            if let Some(fault) = fault {
                fault(fault_ctx).await;
            }
        })
        .await;
        let pending = within(&format!("{name}: sending"), sending)
            .await
            .expect("the sending task panicked");

        let t_sent = started.elapsed();
        // Invariant 2: every outcome arrives, in time; failures only where allowed.
        let outcomes = within(
            &format!("{name}: delivery outcomes"),
            futures::future::join_all(pending),
        )
        .await;
        let mut acked: BTreeMap<i32, BTreeSet<usize>> = BTreeMap::new();
        let mut failed = Vec::new();
        let mut unexpected = Vec::new();
        let mut late = Vec::new();
        let delivery_timeout = self.delivery_timeout;
        for o in outcomes {
            let (p, seq, took, result) = o.expect("a delivery task panicked");
            if took > delivery_timeout + DELIVERY_SLACK {
                late.push(format!("{p}:{seq} after {took:?}"));
            }
            match result {
                Ok(md) => {
                    assert_eq!(md.partition, p, "{name}: {p}:{seq} acknowledged elsewhere");
                    acked.entry(p).or_default().insert(seq);
                }
                Err(e) => {
                    let line = format!("{p}:{seq} after {took:?}: {e} ({e:?})");
                    if !self.allowed_failure.as_ref().is_some_and(|ok| ok(&e)) {
                        unexpected.push(line.clone());
                    }
                    failed.push(line);
                }
            }
        }
        assert!(
            late.is_empty(),
            "{name}: {} outcomes later than delivery.timeout.ms {delivery_timeout:?} + \
             {DELIVERY_SLACK:?}, e.g. {:?}",
            late.len(),
            &late[..late.len().min(5)]
        );
        assert!(
            unexpected.is_empty(),
            "{name}: {} deliveries failed, not as the fault allows, e.g. {:#?}",
            unexpected.len(),
            &unexpected[..unexpected.len().min(5)]
        );
        let acked_count: usize = acked.values().map(BTreeSet::len).sum();
        assert!(acked_count > 0, "{name}: nothing was acknowledged");

        let t_outcomes = started.elapsed();
        // Invariant 3: the group saw every acknowledged record.
        within(&format!("{name}: group members catch up"), async {
            loop {
                if missing(&acked, &seen.lock().unwrap().by_partition).is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;

        let t_caught_up = started.elapsed();
        // Invariant 4: close returns, Ok.
        within(
            &format!("{name}: producer close"),
            producer.close(Duration::from_secs(10)),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: producer close: {e}"));
        // The application loops stop first, so `recv` errors seen are the fault's, not
        // the `Closed` a close would hand to a waiting `recv`.
        stop.store(true, Ordering::Relaxed);
        let mut rebalances = Vec::new();
        for (_, consumer, task) in &mut members {
            within(&format!("{name}: consumer task"), task)
                .await
                .expect("the consuming task panicked");
            rebalances.push(consumer.metrics().rebalances);
        }
        // Both leave at once: one after the other, the second would first follow the
        // rebalance the first one's LeaveGroup starts.
        let closes = within(
            &format!("{name}: consumer close"),
            futures::future::join_all(members.iter().map(|(_, c, _)| c.close())),
        )
        .await;
        for r in closes {
            r.unwrap_or_else(|e| panic!("{name}: consumer close: {e}"));
        }
        for (client, _, _) in &members {
            within(&format!("{name}: consumer client close"), client.close()).await;
        }
        within(
            &format!("{name}: producer client close"),
            producer_client.close(),
        )
        .await;

        let t_closed = started.elapsed();
        // Invariant 1, from two independent readers.
        ctx.clear_injected_errors();
        let (b, t) = (ctx.live_bootstrap(), ctx.topic.clone());
        let theirs = tokio::task::spawn_blocking(move || read_back_librdkafka(&b, &t, acked_count));
        let ours = read_back_ferrokafka(name, &ctx, acked_count).await;
        let theirs_log = within(&format!("{name}: librdkafka read-back"), theirs)
            .await
            .expect("librdkafka reader panicked");
        let mut problems = Vec::new();
        problems.extend(check_log("ferrokafka", &ours, &acked));
        problems.extend(check_log("librdkafka", &theirs_log, &acked));
        if ours != theirs_log {
            problems.push(format!(
                "the readers disagree: ferrokafka read {} records, librdkafka {}",
                ours.values().map(Vec::len).sum::<usize>(),
                theirs_log.values().map(Vec::len).sum::<usize>()
            ));
        }
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        let in_log: BTreeMap<i32, BTreeSet<usize>> = ours
            .iter()
            .map(|(p, v)| (*p, v.iter().filter_map(|(_, s)| seq_of(*p, s)).collect()))
            .collect();
        let phantom = missing(&seen.by_partition, &in_log);
        if !phantom.is_empty() {
            problems.push(format!(
                "group members got records that are not in the log: {phantom:?}"
            ));
        }
        assert!(
            problems.is_empty(),
            "{name}: invariants violated:\n  {}\n(failed deliveries: {:?})",
            problems.join("\n  "),
            &failed[..failed.len().min(5)]
        );
        let report = Report {
            acked: acked_count,
            failed,
            log_records: ours.values().map(Vec::len).sum(),
            consumed: seen.records,
            rebalances: (rebalances[0], rebalances[1]),
            consumer_errors: seen.errors,
            elapsed: started.elapsed(),
        };
        eprintln!(
            "{name}: acked {}, failed {}, log {}, consumed {} (rebalances {:?}), recv errors {:?}, {:.1?}",
            report.acked,
            report.failed.len(),
            report.log_records,
            report.consumed,
            report.rebalances,
            report.consumer_errors,
            report.elapsed
        );
        eprintln!(
            "{name}: phases: group {t_group:.1?} sent {t_sent:.1?} outcomes {t_outcomes:.1?} \
             caught up {t_caught_up:.1?} closed {t_closed:.1?} verified {:.1?}",
            report.elapsed
        );
        report
    }
}

async fn build_cluster(backend: Backend) -> Ctx {
    let topic = unique_topic("faults");
    let group = unique_topic("faults-g");
    match backend {
        Backend::Mock | Backend::MockBehindProxies => {
            let owner = MockOwner::new();
            let mock = owner.cluster();
            // Replicated on every broker, so leadership can move anywhere.
            mock.create_topic(&topic, PARTITIONS, BROKERS).unwrap();
            for p in 0..PARTITIONS {
                mock.partition_leader(&topic, p, Some(initial_leader(p)))
                    .unwrap();
            }
            mock.coordinator(MockCoordinator::Group(group.clone()), COORDINATOR)
                .unwrap();
            let direct = mock.bootstrap_servers();
            let mut proxies = Vec::new();
            let mut bootstrap = direct.clone();
            if backend == Backend::MockBehindProxies {
                // Bootstrap order is broker id order.
                let ports: Vec<u16> = direct
                    .split(',')
                    .map(|a| a.rsplit(':').next().unwrap().parse().unwrap())
                    .collect();
                for port in &ports {
                    proxies.push(CuttingProxy::start(*port).await);
                }
                for proxy in &proxies {
                    for (port, other) in ports.iter().zip(&proxies) {
                        proxy.rewrite_port(*port, other.port());
                    }
                }
                bootstrap = proxies
                    .iter()
                    .map(|p| format!("127.0.0.1:{}", p.port()))
                    .collect::<Vec<_>>()
                    .join(",");
            }
            drop(mock);
            Ctx {
                proxies,
                mock: Some(owner),
                tansu: None,
                backend,
                topic,
                group,
                bootstrap,
                direct_bootstrap: direct,
                down: Default::default(),
            }
        }
        Backend::TansuBehindProxy => {
            // Tansu advertises the proxy's port, so every client (the verifying librdkafka
            // reader too) goes through the proxy: its faults are disarmed before verifying.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let proxy_port = listener.local_addr().unwrap().port();
            let tansu = Tansu::start_advertising(proxy_port);
            let proxy = CuttingProxy::with_listener(listener, tansu.port());
            tansu.create_topic(&topic, PARTITIONS);
            let bootstrap = format!("127.0.0.1:{proxy_port}");
            Ctx {
                proxies: vec![proxy],
                mock: None,
                tansu: Some(tansu),
                backend,
                topic,
                group,
                bootstrap: bootstrap.clone(),
                direct_bootstrap: bootstrap,
                down: Default::default(),
            }
        }
    }
}

/// A librdkafka handle that owns a mock cluster of [`BROKERS`] brokers (created through
/// `test.mock.num.brokers`, so the cluster's C handle is reachable for the one setting the
/// `rdkafka` crate does not wrap). The handle itself stays idle: a producer that never
/// produces, so it sends none of the requests the scenarios inject errors into.
struct MockOwner {
    rk: rdkafka::producer::BaseProducer,
}

impl MockOwner {
    /// Like `mock_cluster_for_groups` (same API version caps, for the same reason: the mock
    /// misparses the flexible versions of JoinGroup, SyncGroup and LeaveGroup), plus a short
    /// initial rebalance delay.
    fn new() -> MockOwner {
        let rk: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
            .set("test.mock.num.brokers", BROKERS.to_string())
            .create()
            .expect("a librdkafka handle with a mock cluster");
        let owner = MockOwner { rk };
        let cluster = owner.cluster();
        super::cap_group_api_versions(&cluster);
        // The mock holds a new group's first JoinGroup for 3 s (Kafka's
        // group.initial.rebalance.delay.ms) to collect members; both members subscribe within
        // milliseconds, so 1 s is plenty (with room for a loaded machine) and saves 2 s in each
        // of the ~45 scenarios.
        // SAFETY: the pointer is the live mock cluster owned by `owner.rk` (checked non-null);
        // the setter only stores an integer under the cluster's own lock.
        #[allow(unsafe_code)]
        unsafe {
            use rdkafka::producer::Producer as _;
            let rk = owner.rk.client().native_ptr();
            let mcluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(rk);
            assert!(
                !mcluster.is_null(),
                "test.mock.num.brokers made no mock cluster"
            );
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(mcluster, 1000);
        }
        drop(cluster);
        owner
    }

    fn cluster(&self) -> MockCluster<'_, DefaultProducerContext> {
        use rdkafka::producer::Producer as _;
        self.rk
            .client()
            .mock_cluster()
            .expect("test.mock.num.brokers made a mock cluster")
    }
}

async fn client(
    bootstrap: &str,
    request_timeout: Duration,
    metadata_max_age: Option<Duration>,
) -> Client {
    let mut builder = Client::builder()
        .bootstrap_servers(bootstrap)
        .request_timeout(request_timeout)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(300))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300));
    if let Some(age) = metadata_max_age {
        builder = builder.metadata_max_age(age);
    }
    within("client", builder.build()).await.unwrap()
}

/// Sends `PER_PARTITION` records to each partition, round-robin, paced over about two
/// seconds so a fault at the midpoint meets records being batched, in flight and not yet
/// sent. Each delivery is awaited by its own task from the moment it was sent, so the time
/// to its outcome is measured exactly.
async fn send_all(
    producer: Producer,
    topic: String,
    midpoint: tokio::sync::oneshot::Sender<()>,
) -> Vec<tokio::task::JoinHandle<Outcome>> {
    let total = PER_PARTITION * PARTITIONS as usize;
    let mut midpoint = Some(midpoint);
    let mut pending = Vec::with_capacity(total);
    for i in 0..total {
        if i == total / 2 {
            if let Some(m) = midpoint.take() {
                let _ = m.send(());
            }
        }
        let p = (i % PARTITIONS as usize) as i32;
        let seq = i / PARTITIONS as usize;
        let sent = Instant::now();
        let delivery = within(
            "send",
            producer.send(
                Record::new(topic.as_str())
                    .partition(p)
                    .value(format!("{p}:{seq}")),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("send {p}:{seq}: {e}"));
        pending.push(tokio::spawn(async move {
            let result = delivery.await;
            (p, seq, sent.elapsed(), result)
        }));
        if i % 6 == 5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    pending
}

/// A group member's application loop: `recv` until told to stop, noting every record.
async fn consume(consumer: Arc<Consumer>, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            Err(_) => {}
            Ok(Ok(r)) => {
                let value = r
                    .value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                let seq = seq_of(r.partition, &value).unwrap_or_else(|| {
                    panic!(
                        "partition {} offset {} holds `{value}`, not one of its records",
                        r.partition, r.offset
                    )
                });
                let mut s = seen.lock().unwrap();
                s.by_partition.entry(r.partition).or_default().insert(seq);
                s.records += 1;
            }
            Ok(Err(e)) => {
                seen.lock().unwrap().errors.push(e.to_string());
                // An application would go on polling; not in a tight loop.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until the two members split every partition between them (the mock's first
/// rebalance waits 3 s for more members), so the fault meets a settled group.
async fn wait_for_stable_group(name: &str, a: &Consumer, b: &Consumer) {
    within(&format!("{name}: group settles"), async {
        loop {
            let x: BTreeSet<i32> = a.assignment().iter().map(|tp| tp.partition).collect();
            let y: BTreeSet<i32> = b.assignment().iter().map(|tp| tp.partition).collect();
            if !x.is_empty()
                && !y.is_empty()
                && x.is_disjoint(&y)
                && x.len() + y.len() == PARTITIONS as usize
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Reads the whole topic with a fresh ferrokafka consumer in assign mode, until at least
/// `at_least` records arrived and half a second passed without more (the mock answers a
/// Fetch within 50 ms), or 20 s passed: then the invariant check reports what is missing.
async fn read_back_ferrokafka(
    name: &str,
    ctx: &Ctx,
    at_least: usize,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let client = client(&ctx.live_bootstrap(), REQUEST_TIMEOUT, None).await;
    let consumer = within(
        &format!("{name}: read-back consumer"),
        Consumer::builder(&client)
            .offset_reset(OffsetReset::Earliest)
            .set("fetch.max.wait.ms", "50")
            .set("check.crcs", "false")
            .build(),
    )
    .await
    .unwrap();
    let parts: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&ctx.topic, p))
        .collect();
    within(
        &format!("{name}: read-back assign"),
        consumer.assign(&parts),
    )
    .await
    .unwrap();
    let mut log: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    within(&format!("{name}: ferrokafka read-back"), async {
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
                Ok(Ok(r)) => {
                    let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                        .into_owned();
                    log.entry(r.partition).or_default().push((r.offset, value));
                    count += 1;
                }
                Ok(Err(e)) => panic!("{name}: read-back consumer: {e}"),
                Err(_) if count >= at_least => break,
                Err(_) => {}
            }
        }
    })
    .await;
    within(&format!("{name}: read-back close"), consumer.close())
        .await
        .unwrap();
    within(&format!("{name}: read-back client close"), client.close()).await;
    log
}

/// Reads the whole topic with librdkafka (assign mode, from the beginning) until at least
/// `at_least` records arrived and half a second passed without more, or 20 s passed. Like
/// `peer::read_all`, except that librdkafka's transient connection errors are not fatal: a
/// broker a scenario stopped for good may still be chosen as the reader's group coordinator
/// by the mock, and librdkafka reports the refused connection as a consumer error.
fn read_back_librdkafka(
    bootstrap: &str,
    topic: &str,
    at_least: usize,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    use rdkafka::Message as _;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("faults-reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("librdkafka consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut log: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let mut count = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut quiet_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        if count >= at_least && quiet_since.elapsed() >= Duration::from_millis(500) {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                log.entry(m.partition())
                    .or_default()
                    .push((m.offset(), value));
                count += 1;
                quiet_since = std::time::Instant::now();
            }
            Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
            ))) => {}
            Some(Err(e)) => panic!("librdkafka reader: {e}"),
            None => {}
        }
    }
    for v in log.values_mut() {
        v.sort();
    }
    log
}

/// The sequence number in a value `"<partition>:<seq>"` written to `partition`.
fn seq_of(partition: i32, value: &str) -> Option<usize> {
    let (p, s) = value.split_once(':')?;
    (p.parse::<i32>().ok()? == partition)
        .then(|| s.parse().ok())
        .flatten()
}

/// `want` minus `have`, per partition (empty partitions left out).
fn missing(
    want: &BTreeMap<i32, BTreeSet<usize>>,
    have: &BTreeMap<i32, BTreeSet<usize>>,
) -> BTreeMap<i32, Vec<usize>> {
    let empty = BTreeSet::new();
    want.iter()
        .map(|(p, w)| {
            let h = have.get(p).unwrap_or(&empty);
            (*p, w.difference(h).copied().collect::<Vec<_>>())
        })
        .filter(|(_, m)| !m.is_empty())
        .collect()
}

/// Invariant 1 on one reader's view of the log: each offset once, each value one of ours in
/// its own partition, sequences strictly increasing (no duplicate, send order), every
/// acknowledged record present.
fn check_log(
    reader: &str,
    log: &BTreeMap<i32, Vec<(i64, String)>>,
    acked: &BTreeMap<i32, BTreeSet<usize>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut present: BTreeMap<i32, BTreeSet<usize>> = BTreeMap::new();
    for (p, records) in log {
        let mut sorted = records.clone();
        sorted.sort();
        let mut last: Option<(i64, usize)> = None;
        let mut first_at: BTreeMap<usize, i64> = BTreeMap::new();
        for (offset, value) in &sorted {
            let Some(seq) = seq_of(*p, value) else {
                problems.push(format!("{reader}: {p}@{offset} holds `{value}`"));
                continue;
            };
            if let Some((lo, ls)) = last {
                if lo == *offset {
                    problems.push(format!("{reader}: offset {p}@{offset} read twice"));
                } else if let Some(before) = first_at.get(&seq) {
                    problems.push(format!(
                        "{reader}: duplicate {p}:{seq} at offsets {before} and {offset}"
                    ));
                } else if seq < ls {
                    problems.push(format!(
                        "{reader}: out of order in partition {p}: {p}:{ls} at {lo} before \
                         {p}:{seq} at {offset}"
                    ));
                }
            }
            last = Some((*offset, seq));
            first_at.entry(seq).or_insert(*offset);
            present.entry(*p).or_default().insert(seq);
        }
    }
    if !problems.is_empty() {
        for (p, records) in log {
            let mut sorted = records.clone();
            sorted.sort();
            let seqs: Vec<usize> = sorted.iter().filter_map(|(_, v)| seq_of(*p, v)).collect();
            problems.push(format!(
                "{reader}: partition {p} from offset {}: {}",
                sorted.first().map_or(0, |r| r.0),
                runs(&seqs)
            ));
        }
    }
    let lost = missing(acked, &present);
    if !lost.is_empty() {
        problems.push(format!(
            "{reader}: acknowledged records missing from the log: {lost:?}"
        ));
    }
    problems.truncate(20);
    problems
}

/// `[0, 1, 2, 9, 3, 4]` → `"0-2 9 3-4"`: a partition's sequences in log order, compactly.
fn runs(seqs: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            seqs[i].to_string()
        } else {
            format!("{}-{}", seqs[i], seqs[j])
        });
        i = j + 1;
    }
    out.join(" ")
}
