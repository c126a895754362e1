//! Soak test (issue 5): an idempotent producer and a consumer group of two ferrokafka consumers
//! against librdkafka's in-process mock cluster of three brokers, while a seeded chaos loop
//! bounces brokers and moves partition leaders and the group coordinator.
//!
//! ```text
//! soak --minutes N [--seed S] [--partitions P] [--rate RECORDS_PER_S]
//! ```
//!
//! Every record's value is its sequence number. At the end (producing stopped, producer
//! flushed, the group given a deadline to catch up) the log is read back with a fresh
//! assign-mode consumer, and the run prints records sent, acknowledged, failed (by error
//! kind), consumed by the group (distinct), duplicates in the log and losses. It exits non-zero
//! on any loss, duplicate, delivery that never resolved, or acknowledged offset that the log
//! contradicts. `cargo xtask soak` builds this in release mode and runs it.
//!
//! The mock keeps at most 5 MiB or 100 000 batches per partition and silently drops the
//! oldest beyond that, which would look like a loss: the run computes the worst case (one
//! record per batch) before starting and refuses a plan that could reach either limit.
//!
//! Known limit of the broker: librdkafka 2.12's mock checks producer sequences only for
//! transactional producers, so it does not deduplicate an idempotent producer's retry of a
//! request whose response was lost when a broker went down. Every duplicate is therefore
//! printed with its offsets and the acknowledged one, to tell such a retry (the later copy
//! acknowledged, the earlier one never) from a client bug.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrokafka::{
    Client, Consumer, DeliveryFuture, Error, OffsetReset, OffsetSpec, Producer, Record,
    RecordMetadata, TopicPartition,
};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaApiKey;
use tokio::sync::{mpsc, watch};

const USAGE: &str =
    "usage: soak --minutes N [--seed S] [--partitions P (default 16)] [--rate RECORDS_PER_S (default 400)]";

/// The mock's retention per partition (rdkafka_mock.c: `max_size`, `max_cnt`).
const MOCK_MAX_BYTES: u64 = 5 * 1024 * 1024;
const MOCK_MAX_BATCHES: u64 = 100_000;
/// Record Batch v2 header (61 bytes) and a record of a 16-byte value without key or headers
/// (length, attributes, deltas, key length, value length, header count: at most 10 bytes).
const BATCH_OVERHEAD: u64 = 61;
const VALUE_LEN: usize = 16;
const RECORD_LEN: u64 = VALUE_LEN as u64 + 10;
const BROKERS: i32 = 3;

struct Options {
    minutes: f64,
    seed: u64,
    partitions: i32,
    rate: u32,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut minutes = None;
        let mut seed = None;
        let mut partitions = 16;
        let mut rate = 400;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            let bad = |v: &str| format!("{flag}: `{v}` is not valid\n{USAGE}");
            match flag.as_str() {
                "--minutes" => {
                    let v = value()?;
                    minutes = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|m| *m > 0.0 && m.is_finite())
                            .ok_or_else(|| bad(v))?,
                    );
                }
                "--seed" => {
                    let v = value()?;
                    seed = Some(v.parse::<u64>().map_err(|_| bad(v))?);
                }
                "--partitions" => {
                    let v = value()?;
                    partitions = v
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 2)
                        .ok_or_else(|| bad(v))?;
                }
                "--rate" => {
                    let v = value()?;
                    rate = v
                        .parse::<u32>()
                        .ok()
                        .filter(|r| *r >= 1)
                        .ok_or_else(|| bad(v))?;
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        let minutes = minutes.ok_or_else(|| format!("--minutes is required\n{USAGE}"))?;
        // Without --seed, one from the clock; it is printed so a failing run can be replayed.
        let seed = seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
        Ok(Options {
            minutes,
            seed,
            partitions,
            rate,
        })
    }
}

/// SplitMix64: a seeded generator, so a run's chaos schedule can be replayed from its seed
/// (the timing of the clients around it cannot).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn broker(&mut self) -> i32 {
        self.range(1, BROKERS as u64) as i32
    }
}

/// Seconds since the run started, for log lines.
struct Clock(Instant);

impl Clock {
    fn t(&self) -> String {
        format!("[{:7.1}s]", self.0.elapsed().as_secs_f64())
    }
}

/// An error's kind for the summary: the variant, with the broker's code where there is one.
fn kind(e: &Error) -> String {
    let variant = match e {
        Error::Broker { .. } => "Broker",
        Error::Connect { .. } => "Connect",
        Error::Disconnected { .. } => "Disconnected",
        Error::Io(_) => "Io",
        Error::Timeout { .. } => "Timeout",
        Error::Protocol(_) => "Protocol",
        Error::FrameTooLarge { .. } => "FrameTooLarge",
        Error::UnsupportedApi { .. } => "UnsupportedApi",
        Error::NoBrokerAvailable { .. } => "NoBrokerAvailable",
        Error::Config(_) => "Config",
        Error::InvalidInput(_) => "InvalidInput",
        Error::BufferFull => "BufferFull",
        Error::Closed => "Closed",
        Error::NoOffset { .. } => "NoOffset",
        Error::PollIntervalExceeded { .. } => "PollIntervalExceeded",
        Error::InvalidState(_) => "InvalidState",
        _ => "Other",
    };
    match e.kafka_code() {
        Some(code) => format!("{variant}({code})"),
        None => variant.to_string(),
    }
}

/// Counts per error kind, with the first message of each kind kept as an example.
#[derive(Default)]
struct Kinds(BTreeMap<String, (u64, String)>);

impl Kinds {
    fn add(&mut self, e: &Error) -> bool {
        let entry = self.0.entry(kind(e)).or_insert((0, e.to_string()));
        entry.0 += 1;
        entry.0 == 1
    }

    fn total(&self) -> u64 {
        self.0.values().map(|(n, _)| n).sum()
    }

    fn summary(&self) -> String {
        if self.0.is_empty() {
            return "none".to_string();
        }
        self.0
            .iter()
            .map(|(k, (n, _))| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the producer side saw.
#[derive(Default)]
struct Produced {
    /// `send` accepted the record (a delivery future exists).
    sent: u64,
    /// `send` itself failed.
    send_errors: Kinds,
    /// Sequence number → where the broker acknowledged it.
    acked: HashMap<u64, (i32, i64)>,
    /// Sequence number → delivery error kind.
    failed: HashMap<u64, String>,
    delivery_errors: Kinds,
}

/// What the group saw.
#[derive(Default)]
struct Grouped {
    seen: HashSet<u64>,
    deliveries: u64,
    errors: Kinds,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Worst-case log size per partition for the plan: one record per batch.
fn plan_per_partition(o: &Options) -> (u64, u64) {
    let records = (o.rate as f64 * o.minutes * 60.0 / o.partitions as f64).ceil() as u64;
    (records, records * (BATCH_OVERHEAD + RECORD_LEN))
}

fn run(o: &Options) -> Result<bool, String> {
    let (records_pp, bytes_pp) = plan_per_partition(o);
    println!(
        "soak: seed {} | {} min | {} partitions (replication 3) on {BROKERS} mock brokers | \
         {} records/s of {VALUE_LEN} B",
        o.seed, o.minutes, o.partitions, o.rate
    );
    println!(
        "soak: retention plan: ≤ {records_pp} records per partition; worst case (one record per \
         batch) {records_pp} batches, {bytes_pp} B ({:.1}% of the mock's {MOCK_MAX_BYTES} B, \
         {:.1}% of its {MOCK_MAX_BATCHES} batches)",
        bytes_pp as f64 * 100.0 / MOCK_MAX_BYTES as f64,
        records_pp as f64 * 100.0 / MOCK_MAX_BATCHES as f64,
    );
    if bytes_pp * 10 > MOCK_MAX_BYTES * 8 || records_pp * 10 > MOCK_MAX_BATCHES * 8 {
        return Err(
            "the plan could reach the mock's retention (which would drop acknowledged records): \
             use more --partitions, a lower --rate or fewer --minutes"
                .to_string(),
        );
    }

    let mock: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(BROKERS).map_err(|e| format!("mock cluster: {e}"))?;
    // librdkafka 2.12's mock advertises JoinGroup v6, SyncGroup v4 and LeaveGroup v4 but parses
    // only the non-flexible layouts (as tests/common/mod.rs explains); cap them.
    for (api, max) in [
        (RDKafkaApiKey::JoinGroup, 5),
        (RDKafkaApiKey::SyncGroup, 3),
        (RDKafkaApiKey::LeaveGroup, 2),
    ] {
        mock.apiversion(api, Some(0), Some(max))
            .map_err(|e| format!("cap {api:?}: {e}"))?;
    }
    let topic = format!("soak-{}", o.seed);
    let group = format!("soak-group-{}", o.seed);
    mock.create_topic(&topic, o.partitions, 3)
        .map_err(|e| format!("create_topic: {e}"))?;
    // Leaders spread evenly and known to the chaos loop from the start.
    let mut leaders: Vec<i32> = (0..o.partitions).map(|p| p % BROKERS + 1).collect();
    for (p, &l) in leaders.iter().enumerate() {
        mock.partition_leader(&topic, p as i32, Some(l))
            .map_err(|e| format!("partition_leader: {e}"))?;
    }
    let bootstrap = mock.bootstrap_servers();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let clock = Arc::new(Clock(Instant::now()));
    let produced = Arc::new(Mutex::new(Produced::default()));
    let grouped = Arc::new(Mutex::new(Grouped::default()));

    // Clients: one for the producer, one per group member (separate connections, as separate
    // processes would have).
    let client = |id: &'static str| {
        let bootstrap = bootstrap.clone();
        rt.block_on(async move {
            Client::builder()
                .bootstrap_servers(&bootstrap)
                .client_id(id)
                .request_timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(2))
                .retry_backoff(Duration::from_millis(50), Duration::from_millis(500))
                .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
                .build()
                .await
                .map_err(|e| format!("client {id}: {e}"))
        })
    };
    let producer_client = client("soak-producer")?;
    let producer = rt
        .block_on(
            Producer::builder(&producer_client)
                .set("acks", "all")
                .set("enable.idempotence", "true")
                // Batching keeps the mock's batch count per partition low.
                .linger(Duration::from_millis(50))
                .build(),
        )
        .map_err(|e| format!("producer: {e}"))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut members = Vec::new();
    for name in ["soak-member-1", "soak-member-2"] {
        let c = client(name)?;
        let consumer = rt
            .block_on(
                Consumer::builder(&c)
                    .group_id(&group)
                    .offset_reset(OffsetReset::Earliest)
                    .set("session.timeout.ms", "6000")
                    .set("heartbeat.interval.ms", "500")
                    .set("fetch.max.wait.ms", "100")
                    .set("auto.commit.interval.ms", "1000")
                    .build(),
            )
            .map_err(|e| format!("consumer {name}: {e}"))?;
        rt.block_on(consumer.subscribe(&[&topic]))
            .map_err(|e| format!("subscribe {name}: {e}"))?;
        let consumer = Arc::new(consumer);
        let task = rt.spawn(member(
            name,
            consumer.clone(),
            grouped.clone(),
            clock.clone(),
            stop_rx.clone(),
        ));
        members.push((name, c, consumer, task));
    }

    // Producer: numbered records at the planned rate; a collector awaits every delivery.
    let producing = Arc::new(AtomicBool::new(true));
    let (dtx, drx) = mpsc::unbounded_channel();
    let collector = rt.spawn(collect(drx, produced.clone(), clock.clone()));
    let send_loop = rt.spawn(produce(
        producer.clone(),
        topic.clone(),
        o.partitions,
        o.rate,
        producing.clone(),
        dtx,
        produced.clone(),
        clock.clone(),
    ));
    let progress = rt.spawn(report_progress(
        produced.clone(),
        grouped.clone(),
        clock.clone(),
    ));

    // Chaos, on this thread: the mock cluster handle stays here.
    let end = Instant::now() + Duration::from_secs_f64(o.minutes * 60.0);
    let mut rng = Rng(o.seed);
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    while Instant::now() < end {
        let wait = Duration::from_millis(rng.range(1_000, 6_000));
        std::thread::sleep(wait.min(end.saturating_duration_since(Instant::now())));
        if Instant::now() >= end {
            break;
        }
        let action = rng.range(0, 3);
        let result = match action {
            0 | 1 => {
                // A bounce; as a failover (1) its partitions get new leaders while it is down,
                // otherwise (0) they wait for it (broker_down moves no leader by itself).
                let b = rng.broker();
                // Up to 10 s: longer than the members' 6 s session timeout, so a bounce of
                // the coordinator's broker can expire the group's sessions and force a
                // rebalance, not only reconnects.
                let down_for = Duration::from_millis(rng.range(300, 10_000));
                let mut moved = Vec::new();
                let r = mock.broker_down(b).and_then(|_| {
                    if action == 1 {
                        for (p, l) in leaders.iter_mut().enumerate() {
                            if *l == b {
                                let to = (b + rng.range(0, 1) as i32) % BROKERS + 1;
                                mock.partition_leader(&topic, p as i32, Some(to))?;
                                moved.push(format!("p{p}->{to}"));
                                *l = to;
                            }
                        }
                    }
                    Ok(())
                });
                let what = if action == 1 { "failover" } else { "bounce" };
                println!(
                    "{} chaos: {what}: broker {b} down for {} ms{}",
                    clock.t(),
                    down_for.as_millis(),
                    if moved.is_empty() {
                        String::new()
                    } else {
                        format!(", leaders moved {}", moved.join(" "))
                    }
                );
                std::thread::sleep(down_for);
                *counts.entry(what).or_default() += 1;
                // Always bring it back, even if moving leaders failed.
                r.and(mock.broker_up(b))
            }
            2 => {
                let n = rng.range(1, 4);
                let mut moved = Vec::new();
                let mut r = Ok(());
                for _ in 0..n {
                    let p = rng.range(0, o.partitions as u64 - 1) as usize;
                    let to = (leaders[p] + rng.range(0, 1) as i32) % BROKERS + 1;
                    r = r.and(mock.partition_leader(&topic, p as i32, Some(to)));
                    moved.push(format!("p{p}:{}->{to}", leaders[p]));
                    leaders[p] = to;
                }
                println!("{} chaos: leaders moved {}", clock.t(), moved.join(" "));
                *counts.entry("leader moves").or_default() += n;
                r
            }
            _ => {
                let b = rng.broker();
                println!("{} chaos: group coordinator -> broker {b}", clock.t());
                *counts.entry("coordinator moves").or_default() += 1;
                mock.coordinator(MockCoordinator::Group(group.clone()), b)
            }
        };
        if let Err(e) = result {
            return Err(format!("mock cluster chaos call failed: {e}"));
        }
    }
    let chaos = counts
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!("{} chaos over ({chaos}); stopping the producer", clock.t());

    // Wind down: stop sending, flush, let every delivery resolve.
    producing.store(false, Ordering::SeqCst);
    let wind_down = rt.block_on(async {
        let _ = send_loop.await;
        let flushed = tokio::time::timeout(Duration::from_secs(180), producer.flush()).await;
        let collected = tokio::time::timeout(Duration::from_secs(60), collector).await;
        (flushed.is_ok(), collected.is_ok())
    });
    println!(
        "{} producer flushed: {} / deliveries collected: {}",
        clock.t(),
        if wind_down.0 { "yes" } else { "NO (timed out)" },
        if wind_down.1 { "yes" } else { "NO (timed out)" }
    );

    // Let the group catch up with every acknowledged record.
    let acked: HashMap<u64, (i32, i64)> = produced.lock().unwrap().acked.clone();
    let catch_up = Instant::now() + Duration::from_secs(180);
    loop {
        let missing = {
            let g = grouped.lock().unwrap();
            acked.keys().filter(|s| !g.seen.contains(s)).count()
        };
        if missing == 0 {
            println!("{} group caught up", clock.t());
            break;
        }
        if Instant::now() >= catch_up {
            println!(
                "{} group did NOT catch up: {missing} acknowledged records unseen after 180 s",
                clock.t()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = stop_tx.send(true);
    rt.block_on(async {
        progress.abort();
        for (name, c, consumer, task) in members {
            let _ = task.await;
            let m = consumer.metrics();
            println!(
                "{} {name}: {} group joins (rebalances), {} commits, {} failed commits",
                clock.t(),
                m.rebalances,
                m.commits,
                m.commit_failures
            );
            match tokio::time::timeout(Duration::from_secs(30), consumer.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => println!("{} {name}: close failed: {e}", clock.t()),
                Err(_) => println!("{} {name}: close timed out", clock.t()),
            }
            c.close().await;
        }
        if let Err(e) = producer.close(Duration::from_secs(10)).await {
            println!("{} producer close: {e}", clock.t());
        }
        producer_client.close().await;
    });

    // Read the whole log back with a fresh consumer (no group).
    let log = rt.block_on(read_back(&bootstrap, &topic, o.partitions, &clock))?;
    drop(mock);

    let (p, g) = (produced.lock().unwrap(), grouped.lock().unwrap());
    let ok = verdict(o, &p, &g, &log);
    Ok(ok)
}

/// One group member: records every sequence number it receives.
async fn member(
    name: &'static str,
    consumer: Arc<Consumer>,
    grouped: Arc<Mutex<Grouped>>,
    clock: Arc<Clock>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let batch = tokio::select! {
            _ = stop.changed() => return,
            b = consumer.recv_batch(1_000) => b,
        };
        match batch {
            Ok(records) => {
                let mut g = grouped.lock().unwrap();
                for r in records {
                    g.deliveries += 1;
                    if let Some(seq) = parse_seq(r.value.as_deref()) {
                        g.seen.insert(seq);
                    }
                }
            }
            Err(e) => {
                let first = grouped.lock().unwrap().errors.add(&e);
                if first {
                    println!("{} {name}: first {} error: {e}", clock.t(), kind(&e));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn parse_seq(value: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(value?).ok()?.parse().ok()
}

/// Sends records `0, 1, 2, …` (value = the number, partition = number mod partitions) at
/// `rate` per second until `producing` is cleared.
#[allow(clippy::too_many_arguments)]
async fn produce(
    producer: Producer,
    topic: String,
    partitions: i32,
    rate: u32,
    producing: Arc<AtomicBool>,
    deliveries: mpsc::UnboundedSender<(u64, DeliveryFuture)>,
    produced: Arc<Mutex<Produced>>,
    clock: Arc<Clock>,
) {
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    while producing.load(Ordering::SeqCst) {
        tick.tick().await;
        // Catch up to the planned count, so a stalled `send` does not lower the total rate.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while seq < due && producing.load(Ordering::SeqCst) {
            let record = Record::new(&topic)
                .partition((seq % partitions as u64) as i32)
                .value(format!("{seq:0width$}", width = VALUE_LEN));
            match producer.send(record).await {
                Ok(d) => {
                    produced.lock().unwrap().sent += 1;
                    let _ = deliveries.send((seq, d));
                }
                Err(e) => {
                    let first = produced.lock().unwrap().send_errors.add(&e);
                    if first {
                        println!("{} producer: first send {} error: {e}", clock.t(), kind(&e));
                    }
                }
            }
            seq += 1;
        }
    }
}

/// Awaits every delivery future (in any order) and records its outcome.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<(u64, DeliveryFuture)>,
    produced: Arc<Mutex<Produced>>,
    clock: Arc<Clock>,
) {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            next = rx.recv(), if open => match next {
                Some((seq, d)) => pending.push(async move { (seq, d.await) }),
                None => open = false,
            },
            Some((seq, outcome)) = pending.next() => {
                record_outcome(&produced, &clock, seq, outcome);
            }
            else => return,
        }
    }
}

fn record_outcome(
    produced: &Mutex<Produced>,
    clock: &Clock,
    seq: u64,
    outcome: Result<RecordMetadata, Error>,
) {
    let mut p = produced.lock().unwrap();
    match outcome {
        Ok(m) => {
            p.acked.insert(seq, (m.partition, m.offset));
        }
        Err(e) => {
            if p.delivery_errors.add(&e) {
                println!(
                    "{} producer: first delivery {} error (record {seq}): {e}",
                    clock.t(),
                    kind(&e)
                );
            }
            p.failed.insert(seq, kind(&e));
        }
    }
}

async fn report_progress(
    produced: Arc<Mutex<Produced>>,
    grouped: Arc<Mutex<Grouped>>,
    clock: Arc<Clock>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (sent, acked, failed) = {
            let p = produced.lock().unwrap();
            (p.sent, p.acked.len(), p.failed.len())
        };
        let (seen, deliveries, errors) = {
            let g = grouped.lock().unwrap();
            (g.seen.len(), g.deliveries, g.errors.total())
        };
        println!(
            "{} progress: sent {sent}, acknowledged {acked}, failed {failed}, in flight {}; \
             group: distinct {seen}, deliveries {deliveries}, errors {errors}",
            clock.t(),
            sent.saturating_sub((acked + failed) as u64)
        );
    }
}

/// The log as read back: sequence number → every (partition, offset) holding it, plus
/// per-partition facts.
struct Log {
    copies: HashMap<u64, Vec<(i32, i64)>>,
    /// Per partition: (log start offset, high watermark, records read, offsets missing
    /// between start and high watermark, records whose value is not a number).
    partitions: Vec<(i64, i64, u64, u64, u64)>,
    complete: bool,
}

async fn read_back(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    clock: &Clock,
) -> Result<Log, String> {
    let client = Client::builder()
        .bootstrap_servers(bootstrap)
        .client_id("soak-reader")
        .build()
        .await
        .map_err(|e| format!("reader client: {e}"))?;
    let admin = client.admin();
    let mut bounds = Vec::new();
    for p in 0..partitions {
        let start = admin
            .list_offsets(topic, p, OffsetSpec::Earliest)
            .await
            .map_err(|e| format!("earliest offset of {topic}-{p}: {e}"))?;
        let end = admin
            .list_offsets(topic, p, OffsetSpec::Latest)
            .await
            .map_err(|e| format!("latest offset of {topic}-{p}: {e}"))?;
        bounds.push((start, end));
    }
    let consumer = Consumer::builder(&client)
        .offset_reset(OffsetReset::Earliest)
        .auto_commit(false)
        .set("fetch.max.wait.ms", "50")
        .build()
        .await
        .map_err(|e| format!("reader: {e}"))?;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer
        .assign(&tps)
        .await
        .map_err(|e| format!("reader assign: {e}"))?;
    let mut copies: HashMap<u64, Vec<(i32, i64)>> = HashMap::new();
    let mut offsets: Vec<Vec<i64>> = vec![Vec::new(); partitions as usize];
    let mut unparsable = vec![0u64; partitions as usize];
    let mut next: Vec<i64> = bounds.iter().map(|b| b.0).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let done = |next: &[i64]| next.iter().zip(&bounds).all(|(n, b)| *n >= b.1);
    while !done(&next) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv_batch(10_000)).await {
            Ok(Ok(records)) => {
                for r in records {
                    let p = r.partition as usize;
                    next[p] = next[p].max(r.offset + 1);
                    offsets[p].push(r.offset);
                    match parse_seq(r.value.as_deref()) {
                        Some(seq) => copies.entry(seq).or_default().push((r.partition, r.offset)),
                        None => unparsable[p] += 1,
                    }
                }
            }
            Ok(Err(e)) => {
                println!("{} reader: {e}", clock.t());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => {}
        }
    }
    let complete = done(&next);
    let _ = consumer.close().await;
    client.close().await;
    let partitions = bounds
        .iter()
        .zip(offsets.iter_mut())
        .zip(&unparsable)
        .map(|((&(start, end), offs), &bad)| {
            offs.sort_unstable();
            offs.dedup();
            let missing = ((end - start).max(0) as u64).saturating_sub(offs.len() as u64);
            (start, end, offs.len() as u64, missing, bad)
        })
        .collect();
    println!(
        "{} log read back{}",
        clock.t(),
        if complete {
            ""
        } else {
            " INCOMPLETE (deadline)"
        }
    );
    Ok(Log {
        copies,
        partitions,
        complete,
    })
}

/// Prints the result; true if nothing was lost or duplicated.
fn verdict(o: &Options, p: &Produced, g: &Grouped, log: &Log) -> bool {
    let acked = p.acked.len() as u64;
    let failed = p.failed.len() as u64;
    let unresolved = p.sent - acked - failed;
    let in_log = |s: &u64| log.copies.contains_key(s);
    let lost_log: Vec<u64> = sorted(p.acked.keys().filter(|s| !in_log(s)).copied());
    let lost_group: Vec<u64> = sorted(p.acked.keys().filter(|s| !g.seen.contains(s)).copied());
    let dup_acked: Vec<u64> = sorted(
        p.acked
            .keys()
            .filter(|s| log.copies.get(s).is_some_and(|c| c.len() > 1))
            .copied(),
    );
    let dup_any: Vec<u64> = sorted(
        log.copies
            .iter()
            .filter(|(_, c)| c.len() > 1)
            .map(|(s, _)| *s),
    );
    // An acknowledged (partition, offset) must hold that very record.
    let misplaced: Vec<u64> = sorted(p.acked.iter().filter_map(|(s, at)| {
        let copies = log.copies.get(s)?;
        (!copies.contains(at)).then_some(*s)
    }));
    let failed_in_log = p.failed.keys().filter(|s| in_log(s)).count();
    let log_records: u64 = log.partitions.iter().map(|x| x.2).sum();
    let gaps: u64 = log.partitions.iter().map(|x| x.3).sum();
    let unparsable: u64 = log.partitions.iter().map(|x| x.4).sum();
    let trimmed: Vec<String> = log
        .partitions
        .iter()
        .enumerate()
        .filter(|(_, x)| x.0 > 0)
        .map(|(i, x)| format!("p{i} starts at {}", x.0))
        .collect();
    let max_records = log.partitions.iter().map(|x| x.2).max().unwrap_or(0);

    println!();
    println!("==== soak result (seed {}, {} min) ====", o.seed, o.minutes);
    println!("records sent:          {}", p.sent + p.send_errors.total());
    println!(
        "  send() rejected:     {} ({})",
        p.send_errors.total(),
        p.send_errors.summary()
    );
    println!("acknowledged:          {acked}");
    println!(
        "failed:                {failed} ({})",
        p.delivery_errors.summary()
    );
    println!("  failed but in log:   {failed_in_log} (possibly persisted; not a loss)");
    println!("unresolved deliveries: {unresolved}");
    println!(
        "consumed by group:     {} distinct ({} deliveries, {} redelivered; errors: {})",
        g.seen.len(),
        g.deliveries,
        g.deliveries.saturating_sub(g.seen.len() as u64),
        g.errors.summary()
    );
    println!(
        "log read back:         {log_records} records in {} partitions{}{}",
        o.partitions,
        if log.complete { "" } else { ", INCOMPLETE" },
        if unparsable > 0 {
            format!(", {unparsable} not numbered")
        } else {
            String::new()
        }
    );
    println!(
        "bytes per partition:   ≤ {} B at most {max_records} records (worst case one record per \
         batch: {max_records} × {} B; mock keeps {MOCK_MAX_BYTES} B / {MOCK_MAX_BATCHES} batches)",
        max_records * (BATCH_OVERHEAD + RECORD_LEN),
        BATCH_OVERHEAD + RECORD_LEN
    );
    println!(
        "retention:             {}",
        if trimmed.is_empty() {
            "every partition starts at offset 0 (nothing dropped)".to_string()
        } else {
            format!("TRIMMED: {}", trimmed.join(", "))
        }
    );
    println!("offset gaps in log:    {gaps}");
    println!(
        "duplicates in log:     {} acknowledged records twice ({} records in all)",
        dup_acked.len(),
        dup_any.len()
    );
    println!("losses:                {} acknowledged but not in the log, {} acknowledged but not seen by the group", lost_log.len(), lost_group.len());
    println!(
        "offset mismatches:     {} acknowledged offsets holding another record",
        misplaced.len()
    );

    const SHOW: usize = 20;
    if !dup_any.is_empty() {
        println!(
            "-- duplicates (first {SHOW}): seq: log copies (partition@offset) / acknowledged at"
        );
        for s in dup_any.iter().take(SHOW) {
            let copies = &log.copies[s];
            let acked_at = p.acked.get(s);
            let later_acked = acked_at.is_some_and(|a| copies.iter().all(|c| c.1 <= a.1));
            println!(
                "   {s}: {:?} / {:?}{}",
                copies,
                acked_at,
                if later_acked {
                    " (the last copy was acknowledged: a retry of an appended request whose \
                     answer was lost)"
                } else {
                    ""
                }
            );
        }
    }
    for (what, list) in [
        ("lost from the log", &lost_log),
        ("never seen by the group", &lost_group),
        ("misplaced", &misplaced),
    ] {
        if !list.is_empty() {
            println!("-- {what} (first {SHOW}):");
            for s in list.iter().take(SHOW) {
                println!(
                    "   {s}: acknowledged at {:?}, log copies {:?}",
                    p.acked.get(s),
                    log.copies.get(s)
                );
            }
        }
    }
    let ok = lost_log.is_empty()
        && lost_group.is_empty()
        && dup_any.is_empty()
        && misplaced.is_empty()
        && unresolved == 0
        && log.complete
        && trimmed.is_empty();
    println!("RESULT: {}", if ok { "PASS" } else { "FAIL" });
    ok
}

fn sorted(it: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = it.collect();
    v.sort_unstable();
    v
}
