//! Concurrent processing (`Consumer::processor`) against real Apache Kafka (the shared node
//! of `common::kafka()`).
//!
//! - `per_key_processing_of_100k_records`: 100 000 records over 6 partitions with 1 000
//!   keys, handler latency 0–20 ms, 256 in flight, per-key ordering: every record is
//!   processed once, records of a key run one after another in sequence order, and the
//!   throughput is at least 50× one-at-a-time processing. The one-at-a-time figure is not
//!   run (it would take ~17 minutes): it is the sum of the measured handler latencies, i.e.
//!   mean latency × record count. Nothing is scaled down; the run takes ~10–20 s.
//! - `killed_ten_times_skips_nothing`: the `process_worker` example (one consumer process)
//!   is SIGKILLed at random points 10 times and restarted; a last instance finishes. No
//!   record is skipped (every offset below the final committed offsets has a finished
//!   handler call, and the committed offsets reach the log end), and per kill the records
//!   that ran again — finished before the kill, started again after it — stay within the
//!   in-flight limit (64 here, so that 80 000 records last through ten instances). The
//!   worker commits continuously (`commit_interval` zero), stores the done offsets in the
//!   commit metadata, and sets `max_uncommitted` to the in-flight limit: records finished
//!   since the last successful commit plus those in flight never exceed it, however slow
//!   the commits are (without it the bound depends on the commit round trip: 144 records
//!   ran again once when the machine was busy).
//! - `second_member_joining_mid_run_never_overlaps`: a second member joins while the first
//!   is busy; no record is ever being processed by both members at the same time (start and
//!   end of every handler call are recorded), and every record is processed. The done
//!   offsets are left out of the commit metadata here, so that records finished out of
//!   order before the handover run again on the new owner and the check has pairs to
//!   compare.
//! - `done_offsets_in_commit_metadata_are_skipped_after_a_restart`: a processor stopped
//!   while one record hangs commits the offset of that record plus, in the metadata, the
//!   done records after it; a new processor in the group runs only the hung record. The
//!   application's own rebalance listener keeps running next to the processor's hook.
//! - `failure_policies`: errors and panics are retried, then skipped (counted), sent to a
//!   dead-letter topic, or stop the processor with `Error::HandlerFailed` and a commit that
//!   stops before the failed record.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, create_topic, unique_topic};
use ferrokafka::{
    Client, Consumer, ConsumerBuilder, Error, FailureAction, FailurePolicy, OffsetReset,
    OffsetSpec, ProcessOptions, ProcessOrdering, Producer, Record, TopicPartition,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const KEYS: usize = 1000;
const PARTITIONS: i32 = 6;

/// A reproducible pseudo-random handler latency in `0..=max_ms` per record.
fn latency(partition: i32, offset: i64, max_ms: u64) -> Duration {
    let mut z = ((partition as u64) << 48) ^ offset as u64;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    Duration::from_micros(z % (max_ms * 1000 + 1))
}

/// Writes `n` records: key `key-K` (K = i mod 1000), value `K:SEQ` (SEQ = the record's
/// number among its key's records).
async fn produce_keyed(client: &Client, topic: &str, n: usize) {
    let producer = Producer::builder(client).build().await.unwrap();
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let (k, seq) = (i % KEYS, i / KEYS);
        let r = Record::new(topic)
            .key(format!("key-{k}"))
            .value(format!("{k}:{seq}"));
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// The same records written by librdkafka (idempotent, so in order per partition), for the
/// ordering test: an independent writer, so that the per-key order check is about the
/// processor alone. (ferrokafka's producer once wrote a key's first record after its tenth
/// here, right after topic creation: a retried first batch overtaken by its successors, fixed
/// since — `kafka_failover` and `sender_tests` cover it.)
fn produce_keyed_rdkafka(bootstrap: &str, topic: &str, n: usize) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in 0..n {
        let (k, seq) = (i % KEYS, i / KEYS);
        let (key, value) = (format!("key-{k}"), format!("{k}:{seq}"));
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "librdkafka send failed: {e}"
                    );
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

async fn log_ends(client: &Client, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let mut ends = HashMap::new();
    for p in 0..partitions {
        let end = client
            .admin()
            .list_offsets(topic, p, OffsetSpec::Latest)
            .await
            .unwrap();
        ends.insert(p, end);
    }
    ends
}

async fn group_consumer(client: &Client, group: &str) -> Consumer {
    Consumer::builder(client)
        .group_id(group)
        .auto_commit(false)
        .offset_reset(OffsetReset::Earliest)
        .set("heartbeat.interval.ms", "500")
        .set("session.timeout.ms", "10000")
        .build()
        .await
        .unwrap()
}

async fn committed(consumer: &Consumer, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer
        .committed(&tps)
        .await
        .unwrap()
        .into_iter()
        .map(|(tp, c)| (tp.partition, c.unwrap_or(-1)))
        .collect()
}

/// One handler call as the test saw it.
#[derive(Debug, Clone)]
struct Call {
    partition: i32,
    offset: i64,
    key: usize,
    seq: usize,
    start: Instant,
    end: Instant,
    slept: Duration,
}

fn parse_value(v: &[u8]) -> (usize, usize) {
    let s = std::str::from_utf8(v).unwrap();
    let (k, seq) = s.split_once(':').unwrap();
    (k.parse().unwrap(), seq.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_processing_of_100k_records() {
    const RECORDS: usize = 100_000;
    let kafka = common::kafka();
    let client = connect(&kafka.bootstrap()).await;
    let topic = unique_topic("process-100k");
    create_topic(&client, &topic, PARTITIONS).await;
    let t = Instant::now();
    let (bootstrap, fill_topic) = (kafka.bootstrap(), topic.clone());
    tokio::task::spawn_blocking(move || produce_keyed_rdkafka(&bootstrap, &fill_topic, RECORDS))
        .await
        .unwrap();
    println!("produced {RECORDS} in {:?}", t.elapsed());

    let consumer = group_consumer(&client, &unique_topic("process-100k-group")).await;
    consumer.subscribe(&[topic.as_str()]).await.unwrap();
    let calls: Arc<Mutex<Vec<Call>>> = Arc::new(Mutex::new(Vec::with_capacity(RECORDS)));
    let count = Arc::new(AtomicUsize::new(0));
    let processor = consumer.processor(
        ProcessOptions::new()
            .ordering(ProcessOrdering::PerKey)
            .max_in_flight(256)
            .commit_interval(Duration::from_millis(200)),
        {
            let (calls, count) = (calls.clone(), count.clone());
            move |r| {
                let (calls, count) = (calls.clone(), count.clone());
                async move {
                    let start = Instant::now();
                    tokio::time::sleep(latency(r.partition, r.offset, 20)).await;
                    let end = Instant::now();
                    let (key, seq) = parse_value(r.value.as_deref().unwrap());
                    calls.lock().unwrap().push(Call {
                        partition: r.partition,
                        offset: r.offset,
                        key,
                        seq,
                        start,
                        end,
                        slept: end - start,
                    });
                    count.fetch_add(1, Ordering::Relaxed);
                    Ok::<(), std::convert::Infallible>(())
                }
            }
        },
    );
    let handle = processor.handle();
    let watcher = {
        let (handle, count) = (handle.clone(), count.clone());
        tokio::spawn(async move {
            while count.load(Ordering::Relaxed) < RECORDS {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            handle.stop();
        })
    };
    tokio::time::timeout(Duration::from_secs(100), processor.run())
        .await
        .expect("processing 100 000 records took over 100 s")
        .unwrap();
    watcher.await.unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), RECORDS, "every record once, no more");
    let unique: HashSet<(i32, i64)> = calls.iter().map(|c| (c.partition, c.offset)).collect();
    assert_eq!(unique.len(), RECORDS, "no record processed twice");

    // Per key: sequence numbers 0, 1, 2, ... in start order, each after the previous ended.
    let mut by_key: HashMap<usize, Vec<&Call>> = HashMap::new();
    for c in &calls {
        by_key.entry(c.key).or_default().push(c);
    }
    assert_eq!(by_key.len(), KEYS);
    for (key, list) in &by_key {
        // The log itself first: the producer wrote each key's records in sequence order.
        let mut by_offset = list.clone();
        by_offset.sort_by_key(|c| c.offset);
        let seqs: Vec<(i64, usize)> = by_offset.iter().map(|c| (c.offset, c.seq)).collect();
        assert!(
            seqs.windows(2).all(|w| w[0].1 < w[1].1),
            "key {key}: the log holds its records out of sequence order (offset, seq): {seqs:?}"
        );
    }
    for (key, mut list) in by_key {
        list.sort_by_key(|c| c.start);
        for (i, c) in list.iter().enumerate() {
            assert_eq!(c.seq, i, "key {key}: record {i} ran out of order");
            if i > 0 {
                assert!(
                    c.start >= list[i - 1].end,
                    "key {key}: seq {i} started before seq {} ended",
                    i - 1
                );
            }
        }
    }

    let first = calls.iter().map(|c| c.start).min().unwrap();
    let last = calls.iter().map(|c| c.end).max().unwrap();
    let wall = last - first;
    let serial: Duration = calls.iter().map(|c| c.slept).sum();
    let mean = serial / RECORDS as u32;
    let speedup = serial.as_secs_f64() / wall.as_secs_f64();
    println!(
        "{RECORDS} records in {wall:?} ({:.0}/s); mean handler latency {mean:?}; \
         one at a time would take {serial:?}: {speedup:.1}x",
        RECORDS as f64 / wall.as_secs_f64()
    );
    assert!(
        speedup >= 50.0,
        "throughput only {speedup:.1}x one-at-a-time processing (need 50x)"
    );

    // Stopping committed everything: the committed offsets are the log ends.
    let m = handle.metrics();
    assert_eq!(m.processed, RECORDS as u64);
    assert_eq!((m.in_flight, m.done_not_committed), (0, 0), "{m:?}");
    assert!(m.handler_latency.mean >= Duration::from_millis(5), "{m:?}");
    let ends = log_ends(&client, &topic, PARTITIONS).await;
    assert_eq!(committed(&consumer, &topic, PARTITIONS).await, ends);
    consumer.close().await.unwrap();
}

/// Offsets with a finished handler call (`E` lines) and started ones (`S` lines) in one
/// worker log.
/// A set of (partition, offset).
type Offsets = HashSet<(i32, i64)>;

fn read_worker_log(path: &PathBuf) -> (Offsets, Offsets) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut started, mut ended) = (HashSet::new(), HashSet::new());
    for line in text.lines() {
        let mut f = line.split(' ');
        let (kind, p, o) = (f.next(), f.next(), f.next());
        let (Some(kind), Some(p), Some(o)) = (kind, p, o) else {
            continue; // a line cut by the kill
        };
        let (Ok(p), Ok(o)) = (p.parse::<i32>(), o.parse::<i64>()) else {
            continue;
        };
        match kind {
            "S" => started.insert((p, o)),
            "E" => ended.insert((p, o)),
            _ => false,
        };
    }
    (started, ended)
}

/// xorshift64*: reproducible kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ten_times_skips_nothing() {
    // 64 in flight (~5 000 records/s here): enough input that every one of the ten
    // instances is killed mid-stream.
    const RECORDS: usize = 80_000;
    const KILLS: usize = 10;
    const IN_FLIGHT: usize = 64;
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    let client = connect(&bootstrap).await;
    let topic = unique_topic("process-kill");
    let group = unique_topic("process-kill-group");
    create_topic(&client, &topic, PARTITIONS).await;
    produce_keyed(&client, &topic, RECORDS).await;
    let ends = log_ends(&client, &topic, PARTITIONS).await;
    let worker = tokio::task::spawn_blocking(|| common::example_binary("process_worker"))
        .await
        .unwrap();
    let seed = std::env::var("PROCESS_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill seed {seed} (PROCESS_KILL_SEED={seed} replays the kill delays)");
    let mut rng = Rng(seed);
    let dir = std::env::temp_dir().join(unique_topic("process-kill-logs"));
    std::fs::create_dir_all(&dir).unwrap();
    let checker = group_consumer(&client, &group).await;

    let mut logs: Vec<PathBuf> = Vec::new();
    let started_at = Instant::now();
    for run in 0..=KILLS {
        let log = dir.join(format!("run-{run}.log"));
        let mut child = Command::new(&worker)
            .args([&bootstrap, &topic, &group])
            .arg(&log)
            .args(["--in-flight", &IN_FLIGHT.to_string()])
            .args(["--max-latency-ms", "20", "--commit-ms", "0"])
            .args(["--max-uncommitted", &IN_FLIGHT.to_string()])
            .args(["--instance", "worker"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), out.next_line())
            .await
            .expect("worker not ready within 30 s")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"));
        logs.push(log.clone());
        if run < KILLS {
            // Joining takes a moment; most kills land while records are in flight.
            let delay = Duration::from_millis(300 + rng.below(1500));
            tokio::time::sleep(delay).await;
            child.start_kill().unwrap();
            child.wait().await.unwrap();
            let (s, e) = read_worker_log(&log);
            println!(
                "run {run}: killed after {delay:?}: {} started, {} ended",
                s.len(),
                e.len()
            );
        } else {
            // The last instance finishes: wait for the committed offsets to reach the
            // log ends, then stop it gracefully (closing stdin).
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if committed(&checker, &topic, PARTITIONS).await == ends {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "committed offsets did not reach {ends:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            drop(child.stdin.take());
            let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .expect("worker did not stop within 30 s")
                .unwrap();
            assert!(status.success(), "last worker exited with {status}");
        }
    }
    println!("{} runs in {:?}", KILLS + 1, started_at.elapsed());

    // At least once: every offset below the committed offsets has a finished call.
    // At most once per kill, nearly: a killed instance leaves at most `IN_FLIGHT` finished but
    // uncommitted records (`--max-uncommitted`), which a later instance may run again. Each
    // record run again is charged to the run that last finished it: an instance killed before
    // it reached some partitions leaves an earlier run's leftovers there to the next one, so a
    // single run may repeat the leftovers of several kills, but never more than `IN_FLIGHT`
    // from any one of them.
    let mut ended_before: HashSet<(i32, i64)> = HashSet::new();
    let mut last_finisher: HashMap<(i32, i64), usize> = HashMap::new();
    let mut worst = 0;
    for (run, log) in logs.iter().enumerate() {
        let (started, ended) = read_worker_log(log);
        // Ran again: finished in an earlier run, started again in this one.
        let again = started.intersection(&ended_before).count();
        let mut by_kill: BTreeMap<usize, usize> = BTreeMap::new();
        for record in &started {
            if let Some(&earlier) = last_finisher.get(record) {
                *by_kill.entry(earlier).or_default() += 1;
            }
        }
        println!(
            "run {run}: {} started, {again} of them ran before (by the run that last finished \
             them: {by_kill:?})",
            started.len()
        );
        for (earlier, n) in &by_kill {
            worst = worst.max(*n);
            assert!(
                *n <= IN_FLIGHT,
                "run {run} processed {n} records again that run {earlier} had finished before \
                 its kill (more than the in-flight limit {IN_FLIGHT})"
            );
        }
        for record in &ended {
            last_finisher.insert(*record, run);
        }
        ended_before.extend(ended);
    }
    for (p, end) in &ends {
        for o in 0..*end {
            assert!(
                ended_before.contains(&(*p, o)),
                "record {p}@{o} was never processed, yet offsets up to {end} were committed"
            );
        }
    }
    println!("most records of one kill run again: {worst}");
    checker.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_member_joining_mid_run_never_overlaps() {
    const RECORDS: usize = 20_000;
    const IN_FLIGHT: usize = 64;
    let kafka = common::kafka();
    let client = connect(&kafka.bootstrap()).await;
    let topic = unique_topic("process-join");
    let group = unique_topic("process-join-group");
    create_topic(&client, &topic, PARTITIONS).await;
    produce_keyed(&client, &topic, RECORDS).await;

    // (member, partition, offset, start, end) of every handler call.
    type Calls = Arc<Mutex<Vec<(usize, i32, i64, Instant, Instant)>>>;
    let calls: Calls = Arc::new(Mutex::new(Vec::new()));
    let done: Arc<Mutex<HashSet<(i32, i64)>>> = Arc::new(Mutex::new(HashSet::new()));
    let run_member = |member: usize, consumer: Arc<Consumer>| {
        let (calls, done, topic) = (calls.clone(), done.clone(), topic.clone());
        tokio::spawn(async move {
            consumer.subscribe(&[topic.as_str()]).await.unwrap();
            let (handler_calls, handler_done) = (calls.clone(), done.clone());
            let processor = consumer.processor(
                // Without the done offsets in the commit metadata, the new owner runs the
                // records finished past the commit point again: records processed by both
                // members, which the overlap check below needs.
                ProcessOptions::new()
                    .max_in_flight(IN_FLIGHT)
                    .commit_interval(Duration::from_millis(100))
                    .store_done_offsets(false),
                move |r| {
                    let (calls, done) = (handler_calls.clone(), handler_done.clone());
                    async move {
                        let start = Instant::now();
                        tokio::time::sleep(latency(r.partition, r.offset, 20)).await;
                        let end = Instant::now();
                        calls
                            .lock()
                            .unwrap()
                            .push((member, r.partition, r.offset, start, end));
                        done.lock().unwrap().insert((r.partition, r.offset));
                        Ok::<(), std::convert::Infallible>(())
                    }
                },
            );
            let handle = processor.handle();
            let stopper = {
                let (done, handle) = (done.clone(), handle.clone());
                tokio::spawn(async move {
                    while done.lock().unwrap().len() < RECORDS {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    handle.stop();
                })
            };
            processor.run().await.unwrap();
            stopper.abort();
            consumer.close().await.unwrap();
            handle.metrics()
        })
    };
    // Each member has a client of its own, as two processes would.
    let a = Arc::new(group_consumer(&connect(&kafka.bootstrap()).await, &group).await);
    let first = run_member(0, a);
    // Let the first member get well into the input, then join.
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.lock().unwrap().len() < RECORDS / 5 {
        assert!(
            Instant::now() < deadline,
            "the first member made no progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let joined_at = Instant::now();
    let b = Arc::new(group_consumer(&connect(&kafka.bootstrap()).await, &group).await);
    let second = run_member(1, b);
    let (ma, mb) = tokio::time::timeout(Duration::from_secs(100), async {
        (first.await.unwrap(), second.await.unwrap())
    })
    .await
    .expect("the two members did not finish within 100 s");
    println!("first member: {ma:?}\nsecond member: {mb:?}");

    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        done.lock().unwrap().len(),
        RECORDS,
        "every record processed"
    );
    let second_calls = calls.iter().filter(|c| c.0 == 1).count();
    assert!(second_calls > 0, "the second member never got records");
    let first_after_join = calls.iter().filter(|c| c.0 == 0 && c.3 > joined_at).count();
    println!(
        "second member ran {second_calls} calls; the first ran {first_after_join} after the join"
    );
    // (member, start, end) of each call, per record.
    type Runs = Vec<(usize, Instant, Instant)>;
    let mut by_record: HashMap<(i32, i64), Runs> = HashMap::new();
    for (m, p, o, s, e) in &calls {
        by_record.entry((*p, *o)).or_default().push((*m, *s, *e));
    }
    let mut both = 0;
    for ((p, o), runs) in &by_record {
        for x in runs {
            for y in runs {
                if x.0 < y.0 {
                    both += 1;
                    assert!(
                        x.2 <= y.1 || y.2 <= x.1,
                        "record {p}@{o} was processed by both members at once: {x:?} {y:?}"
                    );
                }
            }
        }
    }
    // Records run on both members only when the revoke dropped queued records behind done
    // ones (a key's later record waiting for its earlier one): the new owner re-runs the done
    // ones past the commit. On a quiet machine the drain can leave nothing of the kind, and
    // then there is no pair to compare; the count says how many pairs the check above saw.
    println!("{both} records were processed by both members (one after the other)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_offsets_in_commit_metadata_are_skipped_after_a_restart() {
    let kafka = common::kafka();
    let client = connect(&kafka.bootstrap()).await;
    let topic = unique_topic("process-meta");
    let group = unique_topic("process-meta-group");
    create_topic(&client, &topic, 1).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    for i in 0..200 {
        let r = Record::new(&topic).value(format!("{i}"));
        producer.send(r).await.unwrap().await.unwrap();
    }
    // First life: offset 5 hangs; everything else finishes. Stop with a short timeout.
    let consumer = group_consumer(&client, &group).await;
    consumer.subscribe(&[topic.as_str()]).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let processor = consumer.processor(
        ProcessOptions::new()
            .ordering(ProcessOrdering::Unordered)
            .max_in_flight(32)
            .stop_timeout(Duration::from_millis(300)),
        {
            let seen = seen.clone();
            move |r| {
                let seen = seen.clone();
                async move {
                    if r.offset == 5 {
                        std::future::pending::<()>().await;
                    }
                    seen.lock().unwrap().push(r.offset);
                    Ok::<(), std::convert::Infallible>(())
                }
            }
        },
    );
    let handle = processor.handle();
    let stopper = {
        let (seen, handle) = (seen.clone(), handle.clone());
        tokio::spawn(async move {
            while seen.lock().unwrap().len() < 199 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            handle.stop();
        })
    };
    common::within("first processor", processor.run())
        .await
        .unwrap();
    stopper.await.unwrap();
    let m = handle.metrics();
    assert_eq!(m.processed, 199, "{m:?}");
    assert_eq!(committed(&consumer, &topic, 1).await[&0], 5);
    consumer.close().await.unwrap();

    // Second life: only offset 5 runs; the 194 done records after it are skipped. The
    // application's own listener still runs (after the processor's hook), and committing
    // consumed positions from it is refused while a processor owns the commits.
    let hooks = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::builder(&client)
        .group_id(&group)
        .auto_commit(false)
        .offset_reset(OffsetReset::Earliest)
        .rebalance_listener(AppListener(hooks.clone()))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[topic.as_str()]).await.unwrap();
    let again = Arc::new(Mutex::new(Vec::new()));
    let processor = consumer.processor(ProcessOptions::new(), {
        let again = again.clone();
        move |r| {
            let again = again.clone();
            async move {
                again.lock().unwrap().push(r.offset);
                Ok::<(), std::convert::Infallible>(())
            }
        }
    });
    let handle = processor.handle();
    let stopper = {
        let handle = handle.clone();
        let consumer_topic = topic.clone();
        let client = client.clone();
        let group = group.clone();
        tokio::spawn(async move {
            let check = group_consumer(&client, &group).await;
            loop {
                if committed(&check, &consumer_topic, 1).await[&0] == 200 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            check.close().await.unwrap();
            handle.stop();
        })
    };
    common::within("second processor", processor.run())
        .await
        .unwrap();
    stopper.await.unwrap();
    assert_eq!(*again.lock().unwrap(), vec![5]);
    let m = handle.metrics();
    assert_eq!(m.already_done, 194, "{m:?}");
    consumer.close().await.unwrap();
    let hooks = hooks.lock().unwrap().clone();
    assert_eq!(
        hooks,
        vec![
            "assigned [0] commit refused".to_string(),
            "revoked [0]".to_string()
        ]
    );
}

/// The application's listener next to a processor: notes each call.
struct AppListener(Arc<Mutex<Vec<String>>>);

#[ferrokafka::async_trait]
impl ferrokafka::RebalanceListener for AppListener {
    async fn assigned(&self, ctx: &ferrokafka::RebalanceContext, partitions: &[TopicPartition]) {
        let refused = if ctx.commit().await.is_err() {
            " commit refused"
        } else {
            " commit accepted"
        };
        let ps: Vec<i32> = partitions.iter().map(|tp| tp.partition).collect();
        self.0
            .lock()
            .unwrap()
            .push(format!("assigned {ps:?}{refused}"));
    }

    async fn revoked(&self, _ctx: &ferrokafka::RebalanceContext, partitions: &[TopicPartition]) {
        let ps: Vec<i32> = partitions.iter().map(|tp| tp.partition).collect();
        self.0.lock().unwrap().push(format!("revoked {ps:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policies() {
    let kafka = common::kafka();
    let client = connect(&kafka.bootstrap()).await;
    let topic = unique_topic("process-fail");
    let dlq = unique_topic("process-fail-dlq");
    create_topic(&client, &topic, 1).await;
    create_topic(&client, &dlq, 1).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    for i in 0..100 {
        let r = Record::new(&topic)
            .key(format!("k{}", i % 7))
            .value(format!("{i}"));
        producer.send(r).await.unwrap().await.unwrap();
    }
    let fast = |then| {
        FailurePolicy::retry_then(2, then)
            .backoff(Duration::from_millis(5), Duration::from_millis(20))
    };
    // Offset 10 returns an error, offset 20 panics, every time.
    let handler = |r: ferrokafka::ConsumerRecord| async move {
        match r.offset {
            10 => Err(format!("bad record {}", r.offset)),
            20 => panic!("handler bug at {}", r.offset),
            _ => Ok(()),
        }
    };

    async fn run_until_committed(
        client: &Client,
        topic: &str,
        options: ProcessOptions,
        handler: impl Fn(
                ferrokafka::ConsumerRecord,
            )
                -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
            + Send
            + Sync
            + 'static,
        until: i64,
    ) -> (ferrokafka::Result<()>, ferrokafka::ProcessMetrics, i64) {
        let group = unique_topic("process-fail-group");
        let consumer = group_consumer(client, &group).await;
        consumer.subscribe(&[topic]).await.unwrap();
        let processor = consumer.processor(options, handler);
        let handle = processor.handle();
        let stopper = {
            let handle = handle.clone();
            tokio::spawn(async move {
                loop {
                    let m = handle.metrics();
                    if m.partitions.first().is_some_and(|p| p.committable >= until) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                handle.stop();
            })
        };
        let result = common::within("processor", processor.run()).await;
        stopper.abort();
        let c = committed(&consumer, topic, 1).await[&0];
        consumer.close().await.unwrap();
        (result, handle.metrics(), c)
    }
    let boxed = move |r| -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), String>> + Send>,
    > { Box::pin(handler(r)) };

    // Skip: both failures are retried twice, then skipped and counted; the rest is done.
    let (r, m, c) = run_until_committed(
        &client,
        &topic,
        ProcessOptions::new().on_failure(fast(FailureAction::Skip)),
        boxed,
        100,
    )
    .await;
    r.unwrap();
    assert_eq!(
        (m.processed, m.skipped, m.retries, m.panics),
        (98, 2, 4, 3),
        "{m:?}"
    );
    assert_eq!(c, 100);

    // Dead letter: the two records land in the dead-letter topic with their error.
    let dead_letters = Producer::builder(&client).build().await.unwrap();
    let (r, m, c) = run_until_committed(
        &client,
        &topic,
        ProcessOptions::new().on_failure(fast(FailureAction::DeadLetter {
            producer: dead_letters.clone(),
            topic: dlq.clone(),
        })),
        boxed,
        100,
    )
    .await;
    r.unwrap();
    assert_eq!((m.processed, m.dead_lettered), (98, 2), "{m:?}");
    assert_eq!(c, 100);
    let reader = ConsumerBuilder::from_properties([("bootstrap.servers", kafka.bootstrap())])
        .offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    reader
        .assign(&[TopicPartition::new(&dlq, 0)])
        .await
        .unwrap();
    let copies = common::within("dead letters", reader.recv_batch(2))
        .await
        .unwrap();
    let copies = if copies.len() < 2 {
        let mut all = copies;
        all.push(common::within("dead letter", reader.recv()).await.unwrap());
        all
    } else {
        copies
    };
    let mut by_offset: Vec<(String, String)> = copies
        .iter()
        .map(|r| {
            let h = |k: &str| {
                r.headers
                    .iter()
                    .find(|h| h.key == k)
                    .and_then(|h| h.value.clone())
                    .map(|v| String::from_utf8(v.to_vec()).unwrap())
                    .unwrap()
            };
            (h("fk.dlq.offset"), h("fk.dlq.error"))
        })
        .collect();
    by_offset.sort();
    assert_eq!(by_offset[0], ("10".into(), "bad record 10".into()));
    assert_eq!(by_offset[1].0, "20");
    assert!(
        by_offset[1].1.contains("handler bug at 20"),
        "{by_offset:?}"
    );
    reader.close().await.unwrap();

    // Stop: the first failure ends the run with HandlerFailed; the commit stops before it.
    let (r, _m, c) = run_until_committed(
        &client,
        &topic,
        ProcessOptions::new()
            .ordering(ProcessOrdering::PerPartition)
            .on_failure(fast(FailureAction::Stop)),
        boxed,
        i64::MAX,
    )
    .await;
    match r {
        Err(Error::HandlerFailed {
            partition: 0,
            offset: 10,
            message,
            ..
        }) => assert_eq!(&*message, "bad record 10"),
        other => panic!("expected HandlerFailed at offset 10, got {other:?}"),
    }
    assert_eq!(
        c, 10,
        "per-partition order: everything before 10 is done, 10 is not"
    );
}
