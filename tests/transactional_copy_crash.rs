//! Exactly once through crashes: the `transactional_copy` example (consume-transform-produce
//! in transactions) is killed with SIGKILL at random points 20 times and restarted with the
//! same transactional id and group, then a last instance finishes the input. Each input
//! record must be copied in a committed transaction exactly once, and the group's committed
//! input offsets must reach the input's end.
//!
//! Kill points are random (the seed is printed; `TXN_CRASH_SEED=N` replays the choices,
//! though not the timing). One kill in five lands during start-up (connect,
//! `init_transactions`, group join); two in five right after the example's k-th output line
//! (`ready`, then `begin`, `sent`, `offsets`, `committed` per transaction) plus a delay
//! within the step that follows; two in five exactly after one step of one of the first
//! three transactions, where the example was told to stall (`--stall-after STEP:N`): the
//! offsets and the commit take about a millisecond each, which a kill at a random time hardly
//! ever hits. `--work-ms` keeps each transaction open for a while after its first records
//! are written. A first instance stops by itself (`--max-batches`).
//!
//! # Which output records are committed
//!
//! Two independent readings must agree. First the log itself: raw Fetch requests
//! (read_uncommitted, kafka-protocol encoders, over TCP to the leader) return every data and
//! control batch with its producer id and epoch, and Kafka's rule decides: a producer id's
//! transactional data belongs to its open transaction until that producer's next control
//! batch, COMMIT or ABORT (`sort_by_markers`, checked on a synthetic log below). Nothing may
//! be left without a marker once every instance is gone, and every input (`src` header on
//! each copy) must be among the committed copies exactly once. Then the consumer: a
//! read_committed ferrokafka consumer must hand out exactly those committed copies, in
//! order. On Apache Kafka that checks the consumer's aborted-transaction filtering; Tansu
//! lists no aborted transactions in its Fetch answers, so there the consumer gets every copy
//! and the test expects that (pinned by `what_the_test_brokers_do_with_transactions`).
//! Tansu and Apache Kafka write the markers (the ABORT of a crashed instance's transaction
//! when the next one calls `init_transactions`); librdkafka's mock writes none and does not
//! store TxnOffsetCommit, so this test cannot run there (docs/EXACTLY_ONCE.md).
//!
//! On Apache Kafka the group runs with a static member id (a restart takes the dead member's
//! place instead of waiting out its 6 s session), and committed offsets between instances
//! are read without `require_stable` (see `stable_committed`).
//!
//! Between instances the test also notes the committed offsets (they never go back) and
//! the output high watermarks, which say which instance wrote each copy: every instance
//! writes with epochs higher than its predecessors'. With transactions v1 an instance keeps
//! the one epoch its `init_transactions` got; with transactions v2 (KIP-890: Kafka 4.x
//! formats with `transaction.version=2`) every transaction end bumps it, so the first
//! instance's two transactions carry two epochs. Which one the cluster finalized is read
//! from its ApiVersions answer by the test's own wire client. The scenario runs on the
//! generic suite's broker (Tansu, or the shared Kafka node with transactions v2 under
//! `FERROKAFKA_BROKER=kafka`) and on a Kafka node formatted with
//! `--feature transaction.version=1`; `the_finalized_transaction_version_decides_the_protocol`
//! checks which requests the client sends on each (no AddPartitionsToTxn/AddOffsetsToTxn and
//! EndTxn v5 on v2).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{connect, mock_cluster, unique_topic, within, Broker, Tansu};
use ferrokafka::{Client, Consumer, NewTopic, Producer, Record, TopicPartition};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, OffsetFetchRequest, OffsetFetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const INPUT_RECORDS: usize = 1000;
const INPUT_PARTITIONS: i32 = 3;
const OUTPUT_PARTITIONS: i32 = 2;
const KILLS: usize = 20;
/// Records per transaction: few, so the input lasts through the kills.
const BATCH_SIZE: usize = 5;
/// The example's pretended work per record: transactions stay open (with records written)
/// long enough for kills to land in them.
const WORK_MS: &str = "4";
/// A killed-to-be instance silent this long has run out of input: kill it anyway.
const IDLE: Duration = Duration::from_secs(3);
/// After an instance is gone, time for the broker to finish requests it had already sent.
const SETTLE: Duration = Duration::from_millis(200);

/// The example binary, built by cargo if missing or stale (`common::example_binary`), once
/// per test binary.
fn example_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::example_binary("transactional_copy"))
}

/// xorshift64*: reproducible kill points without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One running instance of the example: its stdout lines as they come, and a transcript of
/// everything it printed, for failure messages.
struct Instance {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    transcript: Arc<Mutex<String>>,
    /// The stdout and stderr readers; they end at EOF, after the process is gone.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Instance {
    fn start(args: &[String], n: usize) -> Instance {
        let mut child = Command::new(example_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let transcript = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::unbounded_channel();
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let t = transcript.clone();
        let stdout = tokio::spawn(async move {
            let mut out = BufReader::new(out).lines();
            while let Ok(Some(line)) = out.next_line().await {
                t.lock().unwrap().push_str(&format!("[{n}] {line}\n"));
                let _ = tx.send(line);
            }
        });
        let t = transcript.clone();
        let stderr = tokio::spawn(async move {
            let mut err = BufReader::new(err).lines();
            while let Ok(Some(line)) = err.next_line().await {
                t.lock()
                    .unwrap()
                    .push_str(&format!("[{n}] stderr: {line}\n"));
            }
        });
        Instance {
            child,
            lines,
            transcript,
            readers: vec![stdout, stderr],
        }
    }

    fn transcript(&self) -> String {
        self.transcript.lock().unwrap().clone()
    }

    /// Fails the test if the instance exited by itself: it must run until killed.
    fn assert_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{what}: the instance exited by itself ({status}):\n{}",
                self.transcript()
            );
        }
    }

    /// Waits for the process to exit and for everything it printed.
    async fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = within("the instance exits", self.child.wait())
            .await
            .unwrap();
        for reader in self.readers.drain(..) {
            within("its output is read", reader).await.unwrap();
        }
        (status, self.transcript())
    }

    async fn sigkill(mut self) -> String {
        self.assert_running("before SIGKILL");
        self.child.start_kill().unwrap();
        self.finish().await.1
    }
}

/// Where `topic`'s partition leader listens.
async fn leader(client: &Client, topic: &str, partition: i32) -> String {
    let meta = within("metadata", client.metadata(&[topic])).await.unwrap();
    let id = meta
        .topic(topic)
        .and_then(|t| t.partition(partition))
        .and_then(|p| p.leader)
        .unwrap_or_else(|| panic!("no leader for {topic}-{partition}"));
    meta.broker(id).unwrap().address()
}

/// One record of a partition's log, data or control, as a raw fetch returns it.
#[derive(Debug, Clone)]
struct LogRecord {
    partition: i32,
    offset: i64,
    producer_id: i64,
    epoch: i16,
    transactional: bool,
    /// A control record: `Some(true)` COMMIT, `Some(false)` ABORT.
    marker: Option<bool>,
    key: Option<Bytes>,
    value: Option<Bytes>,
    /// The `src` header: the input record's topic-partition-offset.
    src: Option<String>,
}

/// Appends the records of every whole batch in `buf` to `out` (a fetch response may end
/// with a partial batch); returns the offset after the last one.
fn decode_batches(mut buf: Bytes, partition: i32, out: &mut Vec<LogRecord>) -> Option<i64> {
    let mut next = None;
    while buf.remaining() >= 12 {
        let len = i32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
        if buf.remaining() < 12 + len {
            break;
        }
        let mut batch = buf.split_to(12 + len);
        // Checks the CRC too; the example does not compress.
        let set = RecordBatchDecoder::decode(&mut batch)
            .unwrap_or_else(|e| panic!("undecodable batch in partition {partition}: {e}"));
        for r in set.records {
            next = Some(r.offset + 1);
            let marker = r.control.then(|| {
                // Control record key: version (i16), type (i16: 0 ABORT, 1 COMMIT).
                let mut key = r.key.clone().expect("control record without a key");
                let (_version, kind) = (key.get_i16(), key.get_i16());
                assert!(kind == 0 || kind == 1, "unknown control type {kind}");
                kind == 1
            });
            out.push(LogRecord {
                partition,
                offset: r.offset,
                producer_id: r.producer_id,
                epoch: r.producer_epoch,
                transactional: r.transactional,
                marker,
                src: r
                    .headers
                    .iter()
                    .find(|(k, _)| &***k == "src")
                    .and_then(|(_, v)| v.as_ref())
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                key: r.key,
                value: r.value,
            });
        }
    }
    next
}

/// Every record of `topic`-`partition`, from offset 0 to the high watermark.
async fn read_log(address: &str, topic: &str, partition: i32) -> Vec<LogRecord> {
    let mut socket = within("connect", TcpStream::connect(address))
        .await
        .unwrap();
    let mut log = Vec::new();
    let mut next = 0;
    for correlation_id in 1.. {
        let f = fetch(&mut socket, topic, partition, next, 0, correlation_id).await;
        let high_watermark = f.high_watermark;
        if next >= high_watermark {
            break;
        }
        let after = decode_batches(f.records, partition, &mut log);
        next = after.unwrap_or_else(|| {
            panic!("{topic}-{partition}: nothing at {next}, high watermark {high_watermark}")
        });
    }
    log
}

/// The partition's high watermark (one fetch).
async fn high_watermark(address: &str, topic: &str, partition: i32) -> i64 {
    let mut socket = within("connect", TcpStream::connect(address))
        .await
        .unwrap();
    fetch(&mut socket, topic, partition, 0, 0, 1)
        .await
        .high_watermark
}

/// What a fetch returned for the partition.
struct Fetched {
    high_watermark: i64,
    last_stable_offset: i64,
    /// Entries in the aborted-transactions list (read_committed only).
    aborted: usize,
    records: Bytes,
}

/// Sends one request on `socket` and decodes its answer: the test's own minimal wire client,
/// so what it reads from the broker does not depend on the client under test.
async fn exchange<Req, Resp>(
    socket: &mut TcpStream,
    api: ApiKey,
    version: i16,
    request: &Req,
    correlation_id: i32,
) -> Resp
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("crash-test-raw")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, Req::header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    within("raw request write", socket.write_all(&frame))
        .await
        .unwrap();
    let len = within("raw response read", socket.read_i32())
        .await
        .unwrap() as usize;
    let mut response = vec![0u8; len];
    within("raw response read", socket.read_exact(&mut response))
        .await
        .unwrap();
    let mut response = Bytes::from(response);
    let header = ResponseHeader::decode(&mut response, Resp::header_version(version)).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    Resp::decode(&mut response, version).unwrap()
}

/// One Fetch v11 (topic names, non-flexible) at `isolation` (0 read_uncommitted, 1
/// read_committed).
async fn fetch(
    socket: &mut TcpStream,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
    correlation_id: i32,
) -> Fetched {
    // Tansu answers min_bytes 0 with no partitions at all: ask for one byte, wait briefly.
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_isolation_level(isolation)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(8 << 20)])]);
    let response: FetchResponse =
        exchange(socket, ApiKey::Fetch, 11, &request, correlation_id).await;
    assert_eq!(response.error_code, 0, "Fetch: {response:?}");
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "Fetch of {topic}-{partition}: {p:?}");
    Fetched {
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        aborted: p.aborted_transactions.as_ref().map_or(0, Vec::len),
        records: p.records.clone().unwrap_or_default(),
    }
}

/// The group's committed offsets of `topic`'s `partitions` (0 where nothing is committed),
/// read with raw FindCoordinator v3 and OffsetFetch v7 with `require_stable` off.
///
/// Why not `Consumer::committed`: it asks, as Java's consumer does, with `require_stable`,
/// and Apache Kafka answers UNSTABLE_OFFSET_COMMIT (retriable) for a partition whose offsets
/// sit in a transaction still open. A SIGKILLed instance's transaction stays open until the
/// next instance's `init_transactions` (or `transaction.timeout.ms`, 60 s), so right after a
/// kill the client would retry until its API timeout. Without `require_stable` the
/// coordinator answers the last committed offsets, which is what the snapshot records.
async fn stable_committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> BTreeMap<i32, i64> {
    let first = bootstrap.split(',').next().unwrap();
    let mut socket = within("connect", TcpStream::connect(first)).await.unwrap();
    let find = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_owned()))
        .with_key_type(0);
    let found: FindCoordinatorResponse =
        exchange(&mut socket, ApiKey::FindCoordinator, 3, &find, 1).await;
    assert_eq!(found.error_code, 0, "FindCoordinator: {found:?}");
    let address = format!("{}:{}", found.host.as_str(), found.port);
    let mut socket = within("connect", TcpStream::connect(&address))
        .await
        .unwrap();
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_indexes(partitions.to_vec())]))
        .with_require_stable(false);
    let response: OffsetFetchResponse =
        exchange(&mut socket, ApiKey::OffsetFetch, 7, &request, 2).await;
    assert_eq!(response.error_code, 0, "OffsetFetch: {response:?}");
    let mut committed: BTreeMap<i32, i64> = partitions.iter().map(|&p| (p, 0)).collect();
    for t in response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
    {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "OffsetFetch of {topic}-{p:?}");
            if p.committed_offset >= 0 {
                committed.insert(p.partition_index, p.committed_offset);
            }
        }
    }
    committed
}

/// The log's transactional data records sorted by Kafka's rule.
#[derive(Debug, Default)]
struct Outcome {
    committed: Vec<LogRecord>,
    aborted: Vec<LogRecord>,
    /// No marker after them (yet).
    undecided: Vec<LogRecord>,
}

/// Kafka's rule, per partition in offset order: a producer id's transactional data records
/// belong to its open transaction until that producer's next control record, which commits
/// or aborts all of them. Apache Kafka never lets a newer epoch of the producer write while
/// a transaction of an older one is open (InitProducerId ends it with a marker first), so
/// records still open when newer-epoch data arrives never got a marker: undecided.
fn sort_by_markers(log: &[LogRecord]) -> Outcome {
    let mut outcome = Outcome::default();
    let mut open: HashMap<(i32, i64), Vec<LogRecord>> = HashMap::new();
    for r in log {
        let txn = open.entry((r.partition, r.producer_id)).or_default();
        match r.marker {
            Some(true) => outcome.committed.append(txn),
            Some(false) => outcome.aborted.append(txn),
            None if r.transactional => {
                if txn.last().is_some_and(|o| o.epoch < r.epoch) {
                    outcome.undecided.append(txn);
                }
                txn.push(r.clone());
            }
            None => {}
        }
    }
    outcome.undecided.extend(open.into_values().flatten());
    outcome
}

/// `topic-partition-offset` → (partition, offset) of `topic`.
fn parse_src(src: &str, topic: &str) -> Option<(i32, i64)> {
    let mut parts = src.rsplitn(3, '-');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    (parts.next()? == topic).then_some((partition, offset))
}

/// What the test saw once an instance was gone.
struct Ended {
    transcript: String,
    /// The group's committed input offsets, per input partition (0: nothing committed).
    committed: BTreeMap<i32, i64>,
    /// The output partitions' high watermarks.
    output_end: Vec<i64>,
}

/// Reads the group's committed offsets and the output high watermarks.
async fn snapshot(topics: &Topics<'_>, leaders: &[String], transcript: String) -> Ended {
    tokio::time::sleep(SETTLE).await;
    let partitions: Vec<i32> = (0..INPUT_PARTITIONS).collect();
    let committed =
        stable_committed(topics.bootstrap, topics.group, topics.input, &partitions).await;
    let mut output_end = Vec::new();
    for (q, address) in leaders.iter().enumerate() {
        output_end.push(high_watermark(address, topics.output, q as i32).await);
    }
    Ended {
        transcript,
        committed,
        output_end,
    }
}

/// Where the copy runs: what `snapshot` reads.
struct Topics<'a> {
    bootstrap: &'a str,
    group: &'a str,
    input: &'a str,
    output: &'a str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_record_is_copied_exactly_once_through_20_crashes() {
    copy_through_crashes(Broker::start()).await;
}

/// The same scenario on transactions v1: a Kafka node formatted with
/// `--feature transaction.version=1` (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn v4, one
/// epoch per producer instance). Also pins what Kafka does with transactions there, as
/// `what_apache_kafka_does_with_transactions` does on v2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_record_is_copied_exactly_once_through_20_crashes_on_transactions_v1() {
    let cluster = transactions_v1_node();
    let bootstrap = cluster.bootstrap();
    assert_eq!(finalized_transaction_version(&bootstrap).await, 1);
    let client = connect(&bootstrap).await;
    let topic = unique_topic("quirks-tv1");
    common::create_topic(&client, &topic, 1).await;
    let k = quirk_run(&bootstrap, &topic).await;
    assert_kafka_quirks(&k, 1);
    let t = timed_out_run(&bootstrap).await;
    assert_timed_out_run(&t, 1);
    client.close().await;
    let at = bootstrap.clone();
    let requests = tokio::task::spawn_blocking(move || requests_of_two_transactions(&at))
        .await
        .unwrap();
    assert_transaction_protocol(&requests, 1);
    copy_through_crashes(Broker::External(bootstrap)).await;
}

/// A single Kafka 4.4 node whose storage was formatted with transactions v1.
fn transactions_v1_node() -> common::KafkaCluster {
    let mut options = common::KafkaOptions::new(1, common::logs_dir());
    options.format_args = vec!["--feature".into(), "transaction.version=1".into()];
    common::kafka_cluster_with(options)
}

/// The cluster's finalized `transaction.version` (0 when not listed), from an ApiVersions
/// v3 answer read by the test's own wire client.
async fn finalized_transaction_version(bootstrap: &str) -> i16 {
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
    let address = bootstrap.split(',').next().unwrap();
    let mut socket = within("connect", TcpStream::connect(address))
        .await
        .unwrap();
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("crash-test-raw"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let resp: ApiVersionsResponse = exchange(&mut socket, ApiKey::ApiVersions, 3, &req, 1).await;
    resp.finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .map_or(0, |f| f.max_version_level)
}

async fn copy_through_crashes(broker: Broker) {
    let started = Instant::now();
    let seed = std::env::var("TXN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("TXN_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let bootstrap = broker.bootstrap();
    let transaction_version = finalized_transaction_version(&bootstrap).await;
    println!("transaction.version={transaction_version}");
    let client = connect(&bootstrap).await;
    let (input, output) = (unique_topic("copy-in"), unique_topic("copy-out"));
    within(
        "create topics",
        client.admin().create_topics(&[
            NewTopic::new(&input, INPUT_PARTITIONS, 1),
            NewTopic::new(&output, OUTPUT_PARTITIONS, 1),
        ]),
    )
    .await
    .unwrap();

    // The numbered input, and where each record landed.
    let plain = Producer::builder(&client).build().await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..INPUT_RECORDS {
        let r = Record::new(&input)
            .key(format!("k{i}"))
            .value(format!("value-{i}"));
        deliveries.push(plain.send(r).await.unwrap());
    }
    let mut input_index: HashMap<(i32, i64), usize> = HashMap::new();
    let mut ends: BTreeMap<i32, i64> = (0..INPUT_PARTITIONS).map(|p| (p, 0)).collect();
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = within("input delivery", d).await.unwrap();
        input_index.insert((m.partition, m.offset), i);
        let end = ends.get_mut(&m.partition).unwrap();
        *end = (*end).max(m.offset + 1);
    }
    plain.close(Duration::from_secs(5)).await.unwrap();

    let group = unique_topic("copy-group");
    let mut args: Vec<String> = vec![
        bootstrap.clone(),
        input.clone(),
        output.clone(),
        group.clone(),
        unique_topic("copy-tid"),
        "--batch-size".into(),
        BATCH_SIZE.to_string(),
        "--work-ms".into(),
        WORK_MS.into(),
    ];
    // Quick group joins. Tansu ends each join round after half the session timeout and
    // accepts 1 s (a killed member then costs about a second); Apache Kafka refuses sessions
    // under 6 s, so there a static member id lets a restart take the dead one's place.
    let consumer_props: &[&str] = if broker.is_external() {
        &[
            "session.timeout.ms=6000",
            "heartbeat.interval.ms=500",
            "group.instance.id=copy-1",
        ]
    } else {
        &["session.timeout.ms=1000", "heartbeat.interval.ms=200"]
    };
    for p in consumer_props.iter().chain(&["fetch.max.wait.ms=100"]) {
        args.extend(["-X".to_owned(), p.to_string()]);
    }

    let checker = Consumer::builder(&client)
        .group_id(&group)
        .build()
        .await
        .unwrap();
    let inputs: Vec<TopicPartition> = ends
        .keys()
        .map(|&p| TopicPartition::new(&input, p))
        .collect();
    let topics = Topics {
        bootstrap: &bootstrap,
        group: &group,
        input: &input,
        output: &output,
    };
    let mut leaders = Vec::new();
    for q in 0..OUTPUT_PARTITIONS {
        leaders.push(leader(&client, &output, q).await);
    }
    let mut runs = vec![Ended {
        transcript: String::new(),
        committed: ends.keys().map(|&p| (p, 0)).collect(),
        output_end: vec![0; OUTPUT_PARTITIONS as usize],
    }];
    let transcript = |runs: &[Ended]| {
        runs.iter()
            .map(|r| r.transcript.as_str())
            .collect::<String>()
    };

    // A clean stop by itself after two transactions.
    let mut first_args = args.clone();
    first_args.extend(["--max-batches".to_owned(), "2".to_owned()]);
    let (status, said) = Instance::start(&first_args, 1).finish().await;
    let ended = snapshot(&topics, &leaders, said).await;
    assert!(
        status.success() && ended.transcript.contains("stopped after 2 transactions"),
        "{status}: {}",
        ended.transcript
    );
    assert!(
        ended.committed.values().sum::<i64>() > 0,
        "{}",
        ended.transcript
    );
    runs.push(ended);

    for n in 2..=KILLS + 1 {
        let mode = rng.below(5);
        let mut instance_args = args.clone();
        // Stalled right after a step of a transaction: the points a kill at a random time
        // hardly ever hits (the offsets and the commit take a millisecond each).
        let stall = (mode >= 3).then(|| {
            let step = ["begin", "sent", "offsets", "committed"][rng.below(4) as usize];
            format!("{step}:{}", 1 + rng.below(3))
        });
        if let Some(at) = &stall {
            instance_args.extend(["--stall-after".to_owned(), at.clone()]);
        }
        let mut instance = Instance::start(&instance_args, n);
        if mode == 0 {
            // During start-up: connect, init_transactions, the group join.
            tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
        } else {
            // After the k-th line (`ready`, then four per transaction), plus a delay within
            // the step that follows: the sends with their pretended work after `begin`
            // (~20 ms), the offsets and the commit after `sent` and `offsets` (a few ms
            // each). Or, stalled, at `stalled`.
            let k = if stall.is_some() {
                u64::MAX
            } else {
                1 + rng.below(40)
            };
            let mut last = String::new();
            let mut seen = 0;
            while seen < k && last != "stalled" {
                match tokio::time::timeout(IDLE, instance.lines.recv()).await {
                    Ok(Some(line)) => last = line,
                    Ok(None) => instance.assert_running("stdout closed"),
                    Err(_) => {
                        // Silent: out of input.
                        instance.assert_running("idle");
                        break;
                    }
                }
                seen += 1;
            }
            let step_ms = if last.starts_with("begin") { 25 } else { 5 };
            tokio::time::sleep(Duration::from_millis(rng.below(step_ms))).await;
        }
        let mut said = instance.sigkill().await;
        said.push_str(&format!("[{n}] SIGKILL\n"));
        runs.push(snapshot(&topics, &leaders, said).await);
    }

    // The last instance runs until the committed offsets reach the input's end, then stops
    // cleanly on Ctrl-C (SIGINT).
    let mut last = Instance::start(&args, KILLS + 2);
    // Its Ctrl-C handler is installed once it says `ready`.
    let ready = within("the last instance is ready", last.lines.recv()).await;
    assert_eq!(ready.as_deref(), Some("ready"), "{}", last.transcript());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let committed: BTreeMap<i32, Option<i64>> = within("committed", checker.committed(&inputs))
            .await
            .unwrap()
            .into_iter()
            .map(|(tp, o)| (tp.partition, o))
            .collect();
        if ends.iter().all(|(p, e)| committed[p] == Some(*e)) {
            break;
        }
        last.assert_running("last instance");
        assert!(
            Instant::now() < deadline,
            "committed input offsets {committed:?} did not reach the end {ends:?}:\n{}{}",
            transcript(&runs),
            last.transcript()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pid = last.child.id().unwrap().to_string();
    assert!(StdCommand::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let (status, said) = last.finish().await;
    let ended = snapshot(&topics, &leaders, said).await;
    assert!(
        status.success() && ended.transcript.contains("stopped after"),
        "the last instance did not stop cleanly ({status}):\n{}",
        ended.transcript
    );
    assert_eq!(
        ended.committed, ends,
        "committed input offsets vs the input's end"
    );
    // Nothing is pending any more: the client's own (require_stable) read agrees.
    let stable: BTreeMap<i32, i64> = within("committed", checker.committed(&inputs))
        .await
        .unwrap()
        .into_iter()
        .map(|(tp, o)| (tp.partition, o.unwrap_or(0)))
        .collect();
    assert_eq!(stable, ends, "Consumer::committed vs the input's end");
    runs.push(ended);
    let transcript = transcript(&runs);

    // The whole output log; every data record must be a traceable, transformed copy.
    let mut log = Vec::new();
    for (q, address) in leaders.iter().enumerate() {
        log.extend(read_log(address, &output, q as i32).await);
    }
    let data: Vec<&LogRecord> = log.iter().filter(|r| r.marker.is_none()).collect();
    let mut source: HashMap<(i32, i64), (i32, i64)> = HashMap::new();
    for r in &data {
        assert!(
            r.transactional,
            "output written outside a transaction: {r:?}"
        );
        assert_eq!(
            r.producer_id, data[0].producer_id,
            "one transactional id: {r:?}"
        );
        let src = r
            .src
            .as_deref()
            .and_then(|s| parse_src(s, &input))
            .unwrap_or_else(|| panic!("output record without a valid src header: {r:?}"));
        let i = *input_index
            .get(&src)
            .unwrap_or_else(|| panic!("src names no input record: {r:?}"));
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()), "{r:?}");
        assert_eq!(
            r.value.as_deref(),
            Some(format!("VALUE-{i}").as_bytes()),
            "{r:?}"
        );
        source.insert((r.partition, r.offset), src);
    }
    // Instances never overlap, so the high watermarks taken between them say which instance
    // wrote what. Transactions v1: each wrote with the one epoch its init_transactions got.
    // Transactions v2: EndTxn bumps the epoch, so the first instance's two transactions
    // have two. Either way every instance's epochs are above all of its predecessors'.
    let writer = |r: &LogRecord| {
        (1..runs.len())
            .find(|&i| r.offset < runs[i].output_end[r.partition as usize])
            .expect("below the last high watermark")
    };
    let mut epochs: BTreeMap<usize, std::collections::BTreeSet<i16>> = BTreeMap::new();
    for r in &data {
        epochs.entry(writer(r)).or_default().insert(r.epoch);
    }
    for (instance, used) in &epochs {
        if transaction_version < 2 {
            assert_eq!(
                used.len(),
                1,
                "transactions v1: instance {instance} wrote with several epochs {used:?}"
            );
        }
    }
    if transaction_version >= 2 {
        assert_eq!(
            epochs.get(&1).map(|e| e.len()),
            Some(2),
            "transactions v2: the first instance's two transactions have two epochs: {epochs:?}"
        );
    }
    let epoch_order: Vec<&std::collections::BTreeSet<i16>> = epochs.values().collect();
    assert!(
        epoch_order
            .windows(2)
            .all(|w| w[0].last().unwrap() < w[1].first().unwrap()),
        "epochs by instance {epochs:?}"
    );

    // Committed offsets only move forward from one instance to the next.
    for w in runs.windows(2) {
        assert!(
            w[0].committed.iter().all(|(p, o)| w[1].committed[p] >= *o),
            "committed offsets went back: {:?} → {:?}",
            w[0].committed,
            w[1].committed
        );
    }
    // Kafka's rule says what is committed; it needs markers.
    assert!(
        log.iter().any(|r| r.marker.is_some()),
        "the broker wrote no transaction markers: which copies are committed cannot be read \
         from its log (docs/EXACTLY_ONCE.md)"
    );
    let outcome = sort_by_markers(&log);
    assert!(
        outcome.undecided.is_empty(),
        "seed {seed}: transactions without a marker after every instance is gone: {:?}\n\
         {transcript}",
        outcome.undecided
    );
    let mut copies: BTreeMap<(i32, i64), Vec<&LogRecord>> = BTreeMap::new();
    for r in &outcome.committed {
        copies
            .entry(source[&(r.partition, r.offset)])
            .or_default()
            .push(r);
    }
    let missing: Vec<_> = input_index
        .keys()
        .filter(|k| !copies.contains_key(k))
        .collect();
    let twice: Vec<_> = copies.iter().filter(|(_, c)| c.len() > 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "seed {seed}: inputs without a committed copy {missing:?}; with several {twice:#?}\n\
         {transcript}"
    );
    // The consumer's view of the same log: a read_committed ferrokafka consumer gets
    // exactly the copies the markers commit, each partition in offset order. Apache Kafka
    // lists the aborted transactions in its read_committed Fetch answers and the consumer
    // drops their records; Tansu lists none, so there it gets every copy, aborted ones too
    // (pinned in `what_the_test_brokers_do_with_transactions`).
    let final_end = &runs.last().unwrap().output_end;
    let got = read_committed_copies(&client, &output, final_end).await;
    let mut want: Vec<(i32, i64)> = if broker.is_external() {
        outcome
            .committed
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect()
    } else {
        data.iter().map(|r| (r.partition, r.offset)).collect()
    };
    want.sort();
    assert_eq!(
        got.len(),
        want.len(),
        "seed {seed}: read_committed consumer vs the committed copies by the markers"
    );
    assert!(
        got == want,
        "seed {seed}: read_committed consumer got {:?} where the markers say {:?}",
        got.iter().zip(&want).find(|(g, w)| g != w),
        got.iter().zip(&want).find(|(g, w)| g != w).map(|(_, w)| w)
    );
    // Or the kills proved little.
    assert!(
        !outcome.aborted.is_empty(),
        "seed {seed}: no aborted copy at all: no kill hit an open transaction\n{transcript}"
    );
    println!(
        "{} committed copies, {} aborted",
        outcome.committed.len(),
        outcome.aborted.len()
    );
    println!(
        "{} instances, epochs {epochs:?}, {:.1} s",
        runs.len() - 1,
        started.elapsed().as_secs_f64()
    );
    checker.close().await.unwrap();
    client.close().await;
}

/// The output as a read_committed ferrokafka consumer (no group) sees it: `(partition,
/// offset)` of every record it hands out, per partition in the order received, until its
/// position reaches `end` (the high watermarks once every instance is gone).
async fn read_committed_copies(client: &Client, output: &str, end: &[i64]) -> Vec<(i32, i64)> {
    let consumer = Consumer::builder(client)
        .isolation_level(ferrokafka::IsolationLevel::ReadCommitted)
        .offset_reset(ferrokafka::OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    let tps: Vec<TopicPartition> = (0..end.len() as i32)
        .map(|q| TopicPartition::new(output, q))
        .collect();
    within("assign", consumer.assign(&tps)).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The last batches are markers (and maybe aborted copies): no record comes for them, but
    // the position moves past them.
    while tps
        .iter()
        .any(|tp| consumer.position(tp).unwrap().unwrap_or(0) < end[tp.partition as usize])
    {
        assert!(
            Instant::now() < deadline,
            "read_committed consumer stuck at {:?}, ends {end:?}",
            tps.iter()
                .map(|tp| consumer.position(tp).unwrap())
                .collect::<Vec<_>>()
        );
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            let r = r.unwrap();
            got.push((r.partition, r.offset));
        }
    }
    consumer.close().await.unwrap();
    // Per partition in the order received (interleaving across partitions is free).
    got.sort_by_key(|&(q, _)| q);
    let in_order = got.windows(2).all(|w| w[0].0 != w[1].0 || w[0].1 < w[1].1);
    assert!(in_order, "read_committed records out of order: {got:?}");
    got
}

/// The marker rule above on a synthetic log: interleaved producers, a commit, an abort, a
/// transaction a newer epoch overtook without a marker (a broker that never ended a fenced
/// transaction), one still open, a non-transactional batch, and a truncated batch at the end
/// of the response.
#[test]
fn the_marker_check_sorts_records_as_kafka_does() {
    use kafka_protocol::records::{
        Compression, Record as WireRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = |offset: i64, pid: i64, epoch: i16, marker: Option<bool>| {
        let (key, value) = match marker {
            // Control key: version 0, type; value: version 0, coordinator epoch.
            Some(commit) => (
                Some(Bytes::from(vec![0, 0, 0, commit as u8])),
                Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            ),
            None => (None, Some(Bytes::from(format!("v{offset}")))),
        };
        WireRecord {
            transactional: pid >= 0,
            control: marker.is_some(),
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: if marker.is_some() || pid < 0 {
                -1
            } else {
                offset as i32
            },
            timestamp: 1_000 + offset,
            key,
            value,
            headers: Default::default(),
        }
    };
    let batches = [
        record(0, 7, 3, None),
        record(1, 7, 3, None),
        record(2, 9, 0, None),
        record(3, 7, 3, Some(true)),
        record(4, 9, 0, None),
        record(5, 9, 0, Some(false)),
        record(6, 7, 3, None),
        record(7, 7, 4, None),
        record(8, 7, 4, Some(true)),
        record(9, -1, -1, None),
        record(10, 9, 0, None),
    ];
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    for r in &batches {
        RecordBatchEncoder::encode(&mut buf, std::iter::once(r), &options).unwrap();
    }
    let mut truncated = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut truncated,
        std::iter::once(&record(11, 9, 0, None)),
        &options,
    )
    .unwrap();
    buf.extend_from_slice(&truncated[..truncated.len() - 3]);

    let mut log = Vec::new();
    assert_eq!(decode_batches(buf.freeze(), 0, &mut log), Some(11));
    let outcome = sort_by_markers(&log);
    let offsets = |rs: &[LogRecord]| {
        let mut o: Vec<i64> = rs.iter().map(|r| r.offset).collect();
        o.sort();
        o
    };
    assert_eq!(offsets(&outcome.committed), [0, 1, 7]);
    assert_eq!(offsets(&outcome.aborted), [2, 4]);
    assert_eq!(offsets(&outcome.undecided), [6, 10]);
}

/// What the test brokers do with transactions, pinned so docs/EXACTLY_ONCE.md stays true
/// and a broker upgrade that changes it is noticed. One run per broker: commit a record,
/// abort one, leave one open, then a second producer with the same transactional id
/// initializes and commits a record, and the first one tries to commit (EndTxn with its
/// old epoch) and, if that passed, to write and commit once more. Last, a read_committed
/// ferrokafka consumer reads the partition.
struct QuirkRun {
    /// Every record of the partition: value (`None` for markers), producer id, epoch,
    /// marker.
    log: Vec<(Option<String>, i64, i16, Option<bool>)>,
    /// read_committed fetch while the third transaction was open.
    high_watermark: i64,
    last_stable_offset: i64,
    aborted_entries: usize,
    /// The first producer's EndTxn after the second one's init: the error, if refused.
    old_end_txn: Result<(), ferrokafka::Error>,
    /// The values a read_committed consumer gets.
    read_committed: Vec<String>,
}

async fn quirk_run(bootstrap: &str, topic: &str) -> QuirkRun {
    // A short API timeout: Tansu answers the old producer's EndTxn by closing the
    // connection, which the client retries until this deadline.
    let client = within(
        "client",
        Client::builder()
            .bootstrap_servers(bootstrap)
            .api_timeout(Duration::from_secs(3))
            .build(),
    )
    .await
    .unwrap();
    let tid = unique_topic("quirks");
    let producer = || async {
        let p = Producer::builder(&client)
            .set("transactional.id", &tid)
            .build()
            .await
            .unwrap();
        within("init", p.init_transactions()).await.unwrap();
        p
    };
    let send = |p: &Producer, v: &'static str| {
        let (p, topic) = (p.clone(), topic.to_owned());
        async move {
            within("send", async {
                p.send(Record::new(topic).value(v)).await?.await
            })
            .await
        }
    };
    let old = producer().await;
    old.begin_transaction().unwrap();
    send(&old, "committed").await.unwrap();
    within("commit", old.commit_transaction()).await.unwrap();
    old.begin_transaction().unwrap();
    send(&old, "aborted").await.unwrap();
    within("abort", old.abort_transaction()).await.unwrap();
    old.begin_transaction().unwrap();
    send(&old, "left open").await.unwrap();
    let address = leader(&client, topic, 0).await;
    let mut socket = within("connect", TcpStream::connect(&address))
        .await
        .unwrap();
    let stable = fetch(&mut socket, topic, 0, 0, 1, 1).await;
    let new = producer().await;
    new.begin_transaction().unwrap();
    send(&new, "new").await.unwrap();
    within("commit new", new.commit_transaction())
        .await
        .unwrap();
    let old_end_txn = within("old commit", old.commit_transaction()).await;
    if old_end_txn.is_ok() {
        old.begin_transaction().unwrap();
        send(&old, "late").await.unwrap();
        within("late commit", old.commit_transaction())
            .await
            .unwrap();
    }
    let log = read_log(&address, topic, 0).await;
    let consumer = Consumer::builder(&client)
        .isolation_level(ferrokafka::IsolationLevel::ReadCommitted)
        .offset_reset(ferrokafka::OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    consumer
        .assign(&[TopicPartition::new(topic, 0)])
        .await
        .unwrap();
    let mut read_committed = Vec::new();
    // Until a second of silence: what it filters never comes.
    while let Ok(r) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
        let value = r.unwrap().value.unwrap();
        read_committed.push(String::from_utf8_lossy(&value).into_owned());
    }
    QuirkRun {
        log: log
            .into_iter()
            .map(|r| {
                let value = r
                    .marker
                    .is_none()
                    .then(|| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned());
                (value, r.producer_id, r.epoch, r.marker)
            })
            .collect(),
        high_watermark: stable.high_watermark,
        last_stable_offset: stable.last_stable_offset,
        aborted_entries: stable.aborted,
        old_end_txn,
        read_committed,
    }
}

#[tokio::test]
async fn what_the_test_brokers_do_with_transactions() {
    let v = |s: &str| Some(s.to_owned());

    // Tansu: valid markers (the third ABORT is the coordinator's, written when the second
    // producer initialized, with the old epoch), the next epoch on the same producer id, the
    // old epoch fenced, LSO at the open transaction's first offset, and an empty aborted list
    // where Apache Kafka would list the aborted transaction (producer 1, offset 2): so
    // read_committed gets the aborted records too (Apache Kafka: "committed", "new").
    // (Produce with the old epoch is refused with an error code: tests/transactions.rs.)
    let tansu = Tansu::start();
    let topic = unique_topic("quirks");
    tansu.create_topic(&topic, 1);
    let t = quirk_run(&tansu.bootstrap(), &topic).await;
    let pid = t.log[0].1;
    assert_eq!(
        t.log,
        [
            (v("committed"), pid, 0, None),
            (None, pid, 0, Some(true)),
            (v("aborted"), pid, 0, None),
            (None, pid, 0, Some(false)),
            (v("left open"), pid, 0, None),
            (None, pid, 0, Some(false)),
            (v("new"), pid, 1, None),
            (None, pid, 1, Some(true)),
        ]
    );
    assert_eq!(
        (t.high_watermark, t.last_stable_offset, t.aborted_entries),
        (5, 4, 0)
    );
    // The old epoch's EndTxn is refused, but not with PRODUCER_FENCED: Tansu closes the
    // connection (its log: `Storage(Api(ProducerFenced))`), every retry too.
    assert!(
        matches!(t.old_end_txn, Err(ferrokafka::Error::Disconnected { .. })),
        "{:?}",
        t.old_end_txn
    );
    assert_eq!(
        t.read_committed,
        ["committed", "aborted", "left open", "new"]
    );

    // librdkafka's mock (2.12.1): no markers at all, a new producer id for every
    // InitProducerId (epoch 0), so the first producer is never fenced (its EndTxn and a
    // later Produce pass); LSO = high watermark; read_committed gets everything.
    let mock = mock_cluster(1);
    let topic = unique_topic("quirks");
    mock.create_topic(&topic, 1, 1).unwrap();
    let m = quirk_run(&mock.bootstrap_servers(), &topic).await;
    let (old, new) = (m.log[0].1, m.log[3].1);
    assert_ne!(old, new);
    assert_eq!(
        m.log,
        [
            (v("committed"), old, 0, None),
            (v("aborted"), old, 0, None),
            (v("left open"), old, 0, None),
            (v("new"), new, 0, None),
            (v("late"), old, 0, None),
        ]
    );
    assert_eq!(
        (m.high_watermark, m.last_stable_offset, m.aborted_entries),
        (3, 3, 0)
    );
    assert!(m.old_end_txn.is_ok(), "{:?}", m.old_end_txn);
    assert_eq!(
        m.read_committed,
        ["committed", "aborted", "left open", "new", "late"]
    );
}

/// The same run on Apache Kafka 4.4 (the shared node, formatted with transactions v2), the
/// reference the two test brokers above are measured against. The v1 run is in
/// `every_input_record_is_copied_exactly_once_through_20_crashes_on_transactions_v1`.
#[tokio::test]
async fn what_apache_kafka_does_with_transactions() {
    let kafka = common::kafka();
    assert_eq!(finalized_transaction_version(&kafka.bootstrap()).await, 2);
    let client = connect(&kafka.bootstrap()).await;
    let topic = unique_topic("quirks");
    common::create_topic(&client, &topic, 1).await;
    let k = quirk_run(&kafka.bootstrap(), &topic).await;
    assert_kafka_quirks(&k, 2);
    let t = timed_out_run(&kafka.bootstrap()).await;
    assert_timed_out_run(&t, 2);
    client.close().await;
}

/// A transaction that Kafka's coordinator aborts because it outlived
/// `transaction.timeout.ms` (1 s here; the test nodes look for such transactions every
/// second), then the producer's next calls: a late record, commit, abort, and a whole new
/// transaction. The Java client 4.4.0, run by hand through the same steps on the same
/// Kafka, gets: the late record refused with InvalidProducerEpochException, the commit
/// refused with it too, then with transactions v2 the abort succeeds and the next
/// transaction commits; with transactions v1 the abort fails with ProducerFencedException
/// and so does everything after it.
struct TimedOutRun {
    late_send: Result<ferrokafka::RecordMetadata, ferrokafka::Error>,
    commit: Result<(), ferrokafka::Error>,
    abort: Result<(), ferrokafka::Error>,
    next: Result<(), ferrokafka::Error>,
    read_committed: Vec<String>,
}

async fn timed_out_run(bootstrap: &str) -> TimedOutRun {
    let client = connect(bootstrap).await;
    let topic = unique_topic("txn-timeout");
    common::create_topic(&client, &topic, 1).await;
    let p = Producer::builder(&client)
        .set("transactional.id", &unique_topic("txn-timeout"))
        .set("transaction.timeout.ms", "1000")
        .build()
        .await
        .unwrap();
    within("init", p.init_transactions()).await.unwrap();
    let send = |v: &'static str| {
        let (p, topic) = (p.clone(), topic.clone());
        async move {
            within("send", async {
                p.send(Record::new(topic).value(v)).await?.await
            })
            .await
        }
    };
    p.begin_transaction().unwrap();
    send("timed out").await.unwrap();
    // The coordinator's ABORT marker moves the last stable offset past the record.
    let address = leader(&client, &topic, 0).await;
    let mut socket = within("connect", TcpStream::connect(&address))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut correlation = 1;
    while fetch(&mut socket, &topic, 0, 0, 1, correlation)
        .await
        .last_stable_offset
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "Kafka did not abort the timed-out transaction within 60 s"
        );
        correlation += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let late_send = send("late").await;
    let commit = within("commit", p.commit_transaction()).await;
    let abort = within("abort", p.abort_transaction()).await;
    let next = async {
        p.begin_transaction()?;
        send("next").await?;
        within("commit next", p.commit_transaction()).await
    }
    .await;
    let consumer = Consumer::builder(&client)
        .isolation_level(ferrokafka::IsolationLevel::ReadCommitted)
        .offset_reset(ferrokafka::OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    consumer
        .assign(&[TopicPartition::new(&topic, 0)])
        .await
        .unwrap();
    let mut read_committed = Vec::new();
    while let Ok(r) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
        let value = r.unwrap().value.unwrap();
        read_committed.push(String::from_utf8_lossy(&value).into_owned());
    }
    client.close().await;
    TimedOutRun {
        late_send,
        commit,
        abort,
        next,
        read_committed,
    }
}

/// What Kafka 4.4 and the Java client do in `timed_out_run` (see there), with transactions
/// v1 or v2; ferrokafka must do the same.
fn assert_timed_out_run(t: &TimedOutRun, transaction_version: i16) {
    use ferrokafka::KafkaCode;
    let code = |r: &Result<(), ferrokafka::Error>| r.as_ref().err().and_then(|e| e.kafka_code());
    assert_eq!(
        t.late_send.as_ref().err().and_then(|e| e.kafka_code()),
        Some(KafkaCode::InvalidProducerEpoch),
        "late record: {:?}",
        t.late_send
    );
    assert_eq!(
        code(&t.commit),
        Some(KafkaCode::InvalidProducerEpoch),
        "commit: {:?}",
        t.commit
    );
    if transaction_version >= 2 {
        // The abort gets the epoch the coordinator bumped to; the producer goes on.
        assert!(t.abort.is_ok(), "abort: {:?}", t.abort);
        assert!(t.next.is_ok(), "next transaction: {:?}", t.next);
        assert_eq!(t.read_committed, ["next"]);
    } else {
        // One epoch per instance: the coordinator's bump fenced this one for good.
        assert_eq!(
            code(&t.abort),
            Some(KafkaCode::ProducerFenced),
            "abort: {:?}",
            t.abort
        );
        assert_eq!(
            code(&t.next),
            Some(KafkaCode::ProducerFenced),
            "next: {:?}",
            t.next
        );
        assert!(t.read_committed.is_empty(), "{:?}", t.read_committed);
    }
}

/// What Apache Kafka 4.4 does in `quirk_run`, with transactions v1 or v2.
fn assert_kafka_quirks(k: &QuirkRun, transaction_version: i16) {
    let v = |s: &str| Some(s.to_owned());
    let pid = k.log[0].1;
    let epochs: [i16; 8] = if transaction_version >= 2 {
        // v2: every marker carries the epoch EndTxn bumped to, which the next transaction
        // writes with; the second producer's InitProducerId bumps it once more (its ABORT
        // of the open transaction), and so does its commit.
        [0, 1, 1, 2, 2, 3, 4, 5]
    } else {
        // v1: one epoch per producer instance; the coordinator's ABORT for the second
        // producer's InitProducerId carries the bumped epoch, the next the one after.
        [0, 0, 0, 0, 0, 1, 2, 2]
    };
    let want = [
        (v("committed"), pid, epochs[0], None),
        (None, pid, epochs[1], Some(true)),
        (v("aborted"), pid, epochs[2], None),
        (None, pid, epochs[3], Some(false)),
        (v("left open"), pid, epochs[4], None),
        (None, pid, epochs[5], Some(false)),
        (v("new"), pid, epochs[6], None),
        (None, pid, epochs[7], Some(true)),
    ];
    assert_eq!(k.log, want, "transaction.version={transaction_version}");
    assert_eq!(
        (k.high_watermark, k.last_stable_offset, k.aborted_entries),
        (5, 4, 1)
    );
    assert!(
        matches!(&k.old_end_txn, Err(e) if matches!(
            e.kafka_code(),
            Some(ferrokafka::KafkaCode::ProducerFenced | ferrokafka::KafkaCode::InvalidProducerEpoch)
        )),
        "{:?}",
        k.old_end_txn
    );
    assert_eq!(k.read_committed, ["committed", "new"]);
}

/// Which protocol the transactional producer speaks follows the cluster's finalized
/// `transaction.version`: on the shared node (v2) no AddPartitionsToTxn or AddOffsetsToTxn
/// and EndTxn v5; the v1 node is checked the other way round in
/// `every_input_record_is_copied_exactly_once_through_20_crashes_on_transactions_v1`.
#[tokio::test]
async fn the_finalized_transaction_version_decides_the_protocol() {
    let bootstrap = common::kafka().bootstrap();
    let requests = tokio::task::spawn_blocking(move || requests_of_two_transactions(&bootstrap))
        .await
        .unwrap();
    assert_transaction_protocol(&requests, 2);
}

/// Checks the requests `requests_of_two_transactions` recorded against the protocol of
/// `transaction_version`.
fn assert_transaction_protocol(requests: &[(String, i64)], transaction_version: i16) {
    let versions = |api: &str| -> Vec<i64> {
        requests
            .iter()
            .filter(|(a, _)| a == api)
            .map(|(_, v)| *v)
            .collect()
    };
    let (add_partitions, add_offsets) =
        (versions("AddPartitionsToTxn"), versions("AddOffsetsToTxn"));
    let (end, offsets, produce) = (
        versions("EndTxn"),
        versions("TxnOffsetCommit"),
        versions("Produce"),
    );
    let summary = format!(
        "transaction.version={transaction_version}: AddPartitionsToTxn {add_partitions:?} \
         AddOffsetsToTxn {add_offsets:?} TxnOffsetCommit {offsets:?} EndTxn {end:?} \
         Produce {produce:?}"
    );
    println!("{summary}");
    assert_eq!(end.len(), 2, "{summary}");
    assert_eq!(offsets.len(), 2, "{summary}");
    assert!(!produce.is_empty(), "{summary}");
    if transaction_version >= 2 {
        // KIP-890: partitions join through Produce v12+, the group through TxnOffsetCommit
        // v5, and EndTxn v5 bumps the epoch.
        assert!(
            add_partitions.is_empty() && add_offsets.is_empty(),
            "{summary}"
        );
        assert!(end.iter().all(|&v| v == 5), "{summary}");
        assert!(offsets.iter().all(|&v| v == 5), "{summary}");
        assert!(produce.iter().all(|&v| v >= 12), "{summary}");
    } else {
        assert!(add_partitions.len() >= 2, "{summary}");
        assert_eq!(add_offsets.len(), 2, "{summary}");
        assert!(end.iter().all(|&v| v <= 4), "{summary}");
        assert!(offsets.iter().all(|&v| v <= 4), "{summary}");
        assert!(produce.iter().all(|&v| v <= 11), "{summary}");
    }
}

/// Runs two consume-transform-produce transactions (records to two partitions, the
/// consumer's offsets) against `bootstrap` and returns `(API, version)` of every request the
/// client sent meanwhile, from the `kafka_request` span each request opens. On a thread of
/// its own with a single-threaded runtime, so the thread-local subscriber sees every task.
fn requests_of_two_transactions(bootstrap: &str) -> Vec<(String, i64)> {
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Requests(Arc<Mutex<Vec<(String, i64)>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Requests {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if attrs.metadata().name() != "kafka_request" {
                return;
            }
            #[derive(Default)]
            struct Fields(Option<String>, Option<i64>);
            impl tracing::field::Visit for Fields {
                fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                    if f.name() == "api" {
                        self.0 = Some(v.to_owned());
                    }
                }
                fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
                    if f.name() == "version" {
                        self.1 = Some(v);
                    }
                }
                fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
            }
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            if let (Some(api), Some(version)) = (fields.0, fields.1) {
                self.0.lock().unwrap().push((api, version));
            }
        }
    }

    let bootstrap = bootstrap.to_owned();
    std::thread::spawn(move || {
        let recorded = Requests::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = connect(&bootstrap).await;
            let (input, output) = (unique_topic("tv-in"), unique_topic("tv-out"));
            within(
                "create topics",
                client
                    .admin()
                    .create_topics(&[NewTopic::new(&input, 1, 1), NewTopic::new(&output, 2, 1)]),
            )
            .await
            .unwrap();
            let plain = Producer::builder(&client).build().await.unwrap();
            for i in 0..2 {
                let r = Record::new(&input).value(format!("in-{i}"));
                within("input", async { plain.send(r).await?.await })
                    .await
                    .unwrap();
            }
            let consumer = Consumer::builder(&client)
                .group_id(unique_topic("tv-group"))
                .offset_reset(ferrokafka::OffsetReset::Earliest)
                .auto_commit(false)
                .build()
                .await
                .unwrap();
            consumer.subscribe(&[&input]).await.unwrap();
            let producer = Producer::builder(&client)
                .set("transactional.id", &unique_topic("tv-tid"))
                .build()
                .await
                .unwrap();
            // From here on every request is recorded.
            let _recording = tracing::subscriber::set_default(
                tracing_subscriber::registry().with(recorded.clone()),
            );
            within("init", producer.init_transactions()).await.unwrap();
            for _ in 0..2 {
                let r = within("recv", consumer.recv()).await.unwrap();
                producer.begin_transaction().unwrap();
                for q in 0..2 {
                    let out = Record::new(&output)
                        .value(format!("out-{}", r.offset))
                        .partition(q);
                    within("send", async { producer.send(out).await?.await })
                        .await
                        .unwrap();
                }
                let offsets = std::collections::HashMap::from([(
                    TopicPartition::new(&input, 0),
                    ferrokafka::CommitOffset::new(r.offset + 1),
                )]);
                let group = consumer.group_metadata().expect("in a group");
                within(
                    "offsets",
                    producer.send_offsets_to_transaction(&offsets, &group),
                )
                .await
                .unwrap();
                within("commit", producer.commit_transaction())
                    .await
                    .unwrap();
            }
            drop(_recording);
            producer.close(Duration::from_secs(5)).await.unwrap();
            consumer.close().await.unwrap();
            client.close().await;
        });
        let requests = recorded.0.lock().unwrap().clone();
        requests
    })
    .join()
    .unwrap()
}
