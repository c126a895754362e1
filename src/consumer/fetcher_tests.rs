//! The fetcher against a scripted broker that answers Fetch and ListOffsets as Apache Kafka
//! does (neither test broker answers timestamp lookups, and Tansu answers LATEST wrongly):
//! seek by timestamp, the latest reset, out-of-range resets, control batches, the budget.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};

use crate::client::Client;
use crate::codes::KafkaCode;
use crate::compression::Compression;
use crate::consumer::{Consumer, OffsetReset, SeekTo, TopicPartition};
use crate::protocol::records::BatchBuilder;
use crate::testing::{Behaviour, FakeCluster, FakeConnector, Received};

/// One partition's log as the scripted broker keeps it: (timestamp, value) per offset, and
/// offsets that hold a control record instead of data.
#[derive(Default)]
struct Log {
    records: Vec<(i64, String)>,
    control_at: Vec<i64>,
    /// The codec of every batch.
    codec: Compression,
}

impl Log {
    fn with(n: i64) -> Log {
        Log {
            records: (0..n).map(|i| (1_000 + i, format!("v{i}"))).collect(),
            control_at: Vec::new(),
            codec: Compression::None,
        }
    }

    /// `n` records of about 2 KiB that lz4 squeezes to a few bytes each: a response that
    /// expands far past its wire size.
    fn compressible(n: i64) -> Log {
        Log {
            records: (0..n)
                .map(|i| (1_000 + i, format!("v{i}-{}", "x".repeat(2048))))
                .collect(),
            control_at: Vec::new(),
            codec: Compression::Lz4,
        }
    }

    fn end(&self) -> i64 {
        self.records.len() as i64
    }

    /// Batches from the one containing `from` to the end, at most `max_bytes` (but always at
    /// least one batch, as Kafka does). Batches hold 4 records each, so a fetch from the middle
    /// of a batch starts at its base offset, as a real broker's does.
    fn batches(&self, from: i64, max_bytes: usize) -> (Bytes, i64) {
        let mut out = Vec::new();
        let mut records = 0;
        let mut base = from - from % 4;
        while base < self.end() {
            let mut b = BatchBuilder::new(0);
            let last = (base + 4).min(self.end());
            for o in base..last {
                let (ts, v) = &self.records[o as usize];
                b.append(*ts, None, Some(v.as_bytes()), &[]);
            }
            let mut batch = b.finish(self.codec, None).unwrap();
            batch[..8].copy_from_slice(&base.to_be_bytes());
            if self.control_at.contains(&base) {
                // Attributes bit 5 marks a control batch; the CRC covers the attributes, so
                // recompute it as a broker writing a marker would have.
                batch[22] |= 0x20;
                let crc = crc32c::crc32c(&batch[21..]);
                batch[17..21].copy_from_slice(&crc.to_be_bytes());
            }
            if !out.is_empty() && out.len() + batch.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&batch);
            records += last - base;
            base = last;
        }
        (Bytes::from(out), records)
    }
}

struct Broker {
    log: Mutex<Log>,
    fetched_bytes: AtomicUsize,
    fetched_records: AtomicUsize,
    fetches: AtomicUsize,
    /// Leave Fetch requests unanswered (they stay in flight), only recording them.
    hold: AtomicBool,
    /// Every Fetch received, in arrival order.
    requests: Mutex<Vec<SeenFetch>>,
    /// Every partition answered with records: (partition, fetch offset, records).
    answered: Mutex<Vec<(i32, i64, i64)>>,
}

/// A Fetch request as the scripted broker saw it.
#[derive(Debug, Clone)]
struct SeenFetch {
    max_bytes: i32,
    /// The consumer's `client.rack` (KIP-392), empty when not set.
    rack_id: String,
    /// (partition, fetch offset), in request order.
    partitions: Vec<(i32, i64)>,
}

fn answer(broker: &Broker, r: &Received) -> Option<Bytes> {
    match r.api().0 {
        ApiKey::ListOffsets => {
            let req: ListOffsetsRequest = r.decode();
            let log = broker.log.lock().unwrap();
            let topics = req
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let offset = match p.timestamp {
                                -2 => 0,
                                -1 => log.end(),
                                ts => log
                                    .records
                                    .iter()
                                    .position(|(rts, _)| *rts >= ts)
                                    .map_or(-1, |o| o as i64),
                            };
                            ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_offset(offset)
                                .with_timestamp(-1)
                        })
                        .collect();
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            Some(r.answer(&ListOffsetsResponse::default().with_topics(topics)))
        }
        ApiKey::Fetch => {
            let req: FetchRequest = r.decode();
            broker.fetches.fetch_add(1, AtomicOrdering::SeqCst);
            broker.requests.lock().unwrap().push(SeenFetch {
                max_bytes: req.max_bytes,
                rack_id: req.rack_id.to_string(),
                partitions: req
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .map(|p| (p.partition, p.fetch_offset))
                    .collect(),
            });
            if broker.hold.load(AtomicOrdering::SeqCst) {
                return None;
            }
            let log = broker.log.lock().unwrap();
            let responses = req
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let d = PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_high_watermark(log.end())
                                .with_last_stable_offset(log.end());
                            if p.fetch_offset > log.end() || p.fetch_offset < 0 {
                                return d.with_error_code(KafkaCode::OffsetOutOfRange.code());
                            }
                            let max = (p.partition_max_bytes as usize).min(req.max_bytes as usize);
                            let (bytes, n) = log.batches(p.fetch_offset, max);
                            broker
                                .fetched_bytes
                                .fetch_add(bytes.len(), AtomicOrdering::SeqCst);
                            broker
                                .fetched_records
                                .fetch_add(n as usize, AtomicOrdering::SeqCst);
                            // Records past the fetch offset (a fetch at the log end
                            // gets the last batch again, as from mid-batch).
                            if p.fetch_offset - p.fetch_offset % 4 + n > p.fetch_offset {
                                broker.answered.lock().unwrap().push((
                                    p.partition,
                                    p.fetch_offset,
                                    n,
                                ));
                            }
                            d.with_records(Some(bytes))
                        })
                        .collect();
                    FetchableTopicResponse::default()
                        .with_topic(t.topic.clone())
                        .with_partitions(partitions)
                })
                .collect();
            Some(r.answer(&FetchResponse::default().with_responses(responses)))
        }
        other => panic!("the scripted broker does not answer {other:?}"),
    }
}

async fn setup(log: Log) -> (Client, Arc<Broker>) {
    setup_partitions(log, 1).await
}

/// The scripted broker leading `partitions` partitions of topic `t`, every one holding `log`.
async fn setup_partitions(log: Log, partitions: i32) -> (Client, Arc<Broker>) {
    let broker = Arc::new(Broker {
        log: Mutex::new(log),
        fetched_bytes: AtomicUsize::new(0),
        fetched_records: AtomicUsize::new(0),
        fetches: AtomicUsize::new(0),
        hold: AtomicBool::new(false),
        requests: Mutex::new(Vec::new()),
        answered: Mutex::new(Vec::new()),
    });
    let cluster = FakeCluster::with_brokers(&[1]);
    {
        let mut md = cluster.metadata.lock().unwrap();
        let first = md.topics[0].partitions[0].clone();
        md.topics[0].partitions = (0..partitions)
            .map(|i| first.clone().with_partition_index(i))
            .collect();
    }
    let b = broker.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| answer(&b, r)));
    let connector = Arc::new(FakeConnector::default());
    connector.set("fake:1", Behaviour::Serve(cluster.clone()));
    connector.set("b:1", Behaviour::Serve(cluster));
    let client = Client::builder()
        .bootstrap_servers("b:1")
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .connector(connector)
        .build()
        .await
        .unwrap();
    (client, broker)
}

async fn recv_offset(c: &Consumer) -> i64 {
    tokio::time::timeout(Duration::from_secs(5), c.recv())
        .await
        .expect("a record within 5 s")
        .unwrap()
        .offset
}

/// The consumer property for the number of Fetches in flight per broker.
const LANES_KEY: &str = "fetch.connections.per.broker";

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

async fn consumer(client: &Client, reset: OffsetReset) -> Consumer {
    Consumer::builder(client)
        .offset_reset(reset)
        .set("fetch.max.wait.ms", "10")
        .build()
        .await
        .unwrap()
}

/// An earliest-reset consumer with these settings, and `fetch_buffer_bytes` if given. A
/// consumer given a budget has no limit of deliveries per partition, so the tests of the
/// budget see it alone at work (one partition would otherwise stop at two deliveries).
async fn consumer_with(
    client: &Client,
    settings: &[(&str, &str)],
    fetch_buffer_bytes: Option<usize>,
) -> Consumer {
    let mut builder = Consumer::builder(client).offset_reset(OffsetReset::Earliest);
    for (key, value) in settings {
        builder = builder.set(key, value);
    }
    if let Some(bytes) = fetch_buffer_bytes {
        builder = builder.fetch_buffer_bytes(bytes).max_queued(usize::MAX);
    }
    builder.build().await.unwrap()
}

#[tokio::test]
async fn seek_by_timestamp_starts_at_the_first_record_at_or_after_it() {
    let (client, _broker) = setup(Log::with(10)).await;
    let c = consumer(&client, OffsetReset::Earliest).await;
    c.assign(&[tp()]).await.unwrap();
    assert_eq!(recv_offset(&c).await, 0);
    c.seek(&tp(), SeekTo::Timestamp(1_006)).unwrap();
    assert_eq!(
        recv_offset(&c).await,
        6,
        "first record with timestamp >= 1006"
    );
    assert_eq!(recv_offset(&c).await, 7);
    // No record that late: Kafka answers -1, which means the end of the log.
    c.seek(&tp(), SeekTo::Timestamp(9_999)).unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while c.position(&tp()).unwrap() != Some(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("positioned at the end");
}

#[tokio::test]
async fn latest_reset_starts_at_the_end_and_sees_only_new_records() {
    let (client, broker) = setup(Log::with(10)).await;
    let c = consumer(&client, OffsetReset::Latest).await;
    c.assign(&[tp()]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while c.position(&tp()).unwrap() != Some(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("positioned at the high watermark");
    broker
        .log
        .lock()
        .unwrap()
        .records
        .extend((10..13).map(|i| (1_000 + i, format!("v{i}"))));
    assert_eq!(recv_offset(&c).await, 10);
    assert_eq!(recv_offset(&c).await, 11);
}

#[tokio::test]
async fn out_of_range_applies_the_reset_policy_and_mid_batch_fetches_skip_older_records() {
    let (client, _broker) = setup(Log::with(10)).await;
    let c = consumer(&client, OffsetReset::Earliest).await;
    c.assign(&[tp()]).await.unwrap();
    // Offset 6 is in the middle of the batch starting at 4: 4 and 5 must not come out.
    c.seek(&tp(), SeekTo::Offset(6)).unwrap();
    assert_eq!(recv_offset(&c).await, 6);
    c.seek(&tp(), SeekTo::Offset(500)).unwrap();
    assert_eq!(recv_offset(&c).await, 0, "out of range → earliest");
}

#[tokio::test]
async fn control_batches_are_never_handed_out() {
    let mut log = Log::with(12);
    log.control_at = vec![4];
    let (client, _broker) = setup(log).await;
    let c = consumer(&client, OffsetReset::Earliest).await;
    c.assign(&[tp()]).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(recv_offset(&c).await);
    }
    assert_eq!(got, vec![0, 1, 2, 3, 8, 9, 10, 11]);
}

#[tokio::test]
async fn prefetch_stops_at_the_budget_until_the_application_drains() {
    let (client, broker) = setup(Log::with(20_000)).await;
    let budget = 32 * 1024;
    let c = consumer_with(
        &client,
        &[
            ("fetch.max.wait.ms", "10"),
            ("max.partition.fetch.bytes", "4096"),
            ("fetch.max.bytes", "8192"),
        ],
        Some(budget),
    )
    .await;
    c.assign(&[tp()]).await.unwrap();
    assert_eq!(recv_offset(&c).await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fetched = broker.fetched_bytes.load(AtomicOrdering::SeqCst);
    // Without the application reading, prefetching stops within the budget (plus the batch
    // being handed out).
    assert!(
        fetched <= budget + 4096,
        "prefetched {fetched} bytes, budget {budget}"
    );
    // Buffered records are not decoded (`fetched.rs`): what they hold is these wire bytes.
    let fetches = broker.fetches.load(AtomicOrdering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        broker.fetches.load(AtomicOrdering::SeqCst),
        fetches,
        "no fetch while the budget is spent"
    );
    // Draining lets fetching go on, and every record still comes in order.
    for expected in 1..5_000 {
        assert_eq!(recv_offset(&c).await, expected);
    }
    assert!(broker.fetched_bytes.load(AtomicOrdering::SeqCst) > fetched);
}

#[tokio::test]
async fn a_partition_is_fetched_one_delivery_ahead_of_the_application() {
    // Far within the default 64 MiB budget: only the deliveries per partition stop it.
    let (client, broker) = setup_partitions(Log::with(20_000), 2).await;
    let c = consumer_with(
        &client,
        &[
            ("fetch.max.wait.ms", "10"),
            ("max.partition.fetch.bytes", "4096"),
            (LANES_KEY, "1"),
        ],
        None,
    )
    .await;
    c.assign(&tps(2)).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), c.recv())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Each partition: the delivery being read (or waiting) and one more, nothing further.
    let answered = |p: i32| {
        broker
            .answered
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.0 == p)
            .count()
    };
    assert_eq!(
        (answered(0), answered(1)),
        (2, 2),
        "fetched past 2 deliveries"
    );
    let fetches = broker.fetches.load(AtomicOrdering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(broker.fetches.load(AtomicOrdering::SeqCst), fetches);
    // Using deliveries up lets fetching go on; every partition's records arrive in order.
    let mut next = [0i64; 2];
    next[first.partition as usize] = first.offset + 1;
    while next.iter().sum::<i64>() < 4_000 {
        let r = tokio::time::timeout(Duration::from_secs(5), c.recv())
            .await
            .expect("a record within 5 s")
            .unwrap();
        assert_eq!(r.offset, next[r.partition as usize], "{r:?}");
        next[r.partition as usize] += 1;
    }
    assert!(answered(0) + answered(1) > 4, "no fetch after draining");
}

#[tokio::test]
async fn compressed_batches_past_the_budget_wait_compressed_and_none_is_fetched_twice() {
    let (client, broker) = setup(Log::compressible(2_000)).await;
    let budget = 64 * 1024;
    let max_response = 32 * 1024;
    let c = consumer_with(
        &client,
        &[
            ("fetch.max.wait.ms", "10"),
            ("fetch.max.bytes", &max_response.to_string()),
        ],
        Some(budget),
    )
    .await;
    c.assign(&[tp()]).await.unwrap();
    assert_eq!(recv_offset(&c).await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Without the application reading, prefetching stops within the budget...
    let fetched = broker.fetched_bytes.load(AtomicOrdering::SeqCst);
    assert!(
        fetched <= budget + max_response,
        "prefetched {fetched} bytes, budget {budget}"
    );
    let fetches = broker.fetches.load(AtomicOrdering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        broker.fetches.load(AtomicOrdering::SeqCst),
        fetches,
        "no fetch while the budget is spent"
    );
    // ...and every fetched batch was kept, though they hold far more than the budget would
    // hold decompressed (a record takes 2056 bytes there): those past it wait compressed, and
    // are handed out without another fetch. Dropping them once the budget was spent (to
    // fetch them again later), the consumer held about budget / 2056 = 32 records.
    let held = 8 * budget / 2056;
    for next in 1..held as i64 {
        assert_eq!(recv_offset(&c).await, next);
    }
    assert_eq!(
        broker.fetches.load(AtomicOrdering::SeqCst),
        fetches,
        "{held} records were buffered"
    );
    // Each waiting batch is decompressed as the application reaches it: every record
    // arrives, in order, with its value, each fetched once.
    for next in held as i64..2_000 {
        let r = tokio::time::timeout(Duration::from_secs(5), c.recv())
            .await
            .expect("a record within 5 s")
            .unwrap();
        assert_eq!(r.offset, next);
        let value = r.value.as_deref().unwrap();
        assert!(value.starts_with(format!("v{next}-xx").as_bytes()));
        assert_eq!(value.len(), format!("v{next}-").len() + 2048);
    }
    let sent = broker.fetched_records.load(AtomicOrdering::SeqCst);
    assert!(sent <= 2_000 + 8, "{sent} records fetched for 2000");
}

#[tokio::test]
async fn a_compressed_response_as_large_as_the_budget_is_read() {
    // The response takes the whole budget in fetched bytes, so nothing is free to hold a
    // batch decompressed: the batches wait compressed. (Before, the consumer decoded nothing
    // of such a response, dropped it and fetched it again, for ever.)
    let (client, broker) = setup(Log::compressible(2_000)).await;
    let budget = 16 * 1024;
    let c = consumer_with(
        &client,
        &[
            ("fetch.max.wait.ms", "10"),
            ("fetch.max.bytes", &budget.to_string()),
        ],
        Some(budget),
    )
    .await;
    c.assign(&[tp()]).await.unwrap();
    for next in 0..2_000 {
        assert_eq!(recv_offset(&c).await, next);
    }
    let sent = broker.fetched_records.load(AtomicOrdering::SeqCst);
    assert!(sent <= 2_000 + 8, "{sent} records fetched for 2000");
}

fn tps(n: i32) -> Vec<TopicPartition> {
    (0..n).map(|i| TopicPartition::new("t", i)).collect()
}

/// Waits until the scripted broker has received `n` Fetch requests.
async fn wait_for_fetches(broker: &Broker, n: usize) -> Vec<SeenFetch> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let seen = broker.requests.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("fetch requests within 5 s")
}

#[tokio::test]
async fn fetches_in_flight_together_never_share_a_partition() {
    let (client, broker) = setup_partitions(Log::with(100), 6).await;
    broker.hold.store(true, AtomicOrdering::SeqCst);
    let c = consumer_with(&client, &[(LANES_KEY, "2")], None).await;
    c.assign(&tps(6)).await.unwrap();
    wait_for_fetches(&broker, 2).await;
    // Both lanes are busy and unanswered: nothing more may be asked meanwhile.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = broker.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one Fetch per lane: {seen:?}");
    let a: HashSet<i32> = seen[0].partitions.iter().map(|p| p.0).collect();
    let b: HashSet<i32> = seen[1].partitions.iter().map(|p| p.0).collect();
    assert!(a.is_disjoint(&b), "a partition in two Fetches: {seen:?}");
    assert_eq!(a.len() + b.len(), 6, "every partition fetched: {seen:?}");
    assert!(!a.is_empty() && !b.is_empty(), "{seen:?}");
}

#[tokio::test]
async fn fetches_in_flight_together_stay_within_the_budget() {
    let (client, broker) = setup_partitions(Log::with(100), 4).await;
    broker.hold.store(true, AtomicOrdering::SeqCst);
    let budget = 12 * 1024;
    let c = consumer_with(
        &client,
        &[
            (LANES_KEY, "3"),
            ("max.partition.fetch.bytes", "4096"),
            ("fetch.max.bytes", "8192"),
        ],
        Some(budget),
    )
    .await;
    c.assign(&tps(4)).await.unwrap();
    wait_for_fetches(&broker, 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = broker.requests.lock().unwrap().clone();
    let total: i64 = seen.iter().map(|f| f.max_bytes as i64).sum();
    assert!(
        total <= budget as i64,
        "{total} bytes asked for at once, budget {budget}: {seen:?}"
    );
    assert!(seen.iter().all(|f| f.max_bytes <= 8192), "{seen:?}");
    // The budget is shared by the three lanes (4 KiB each), not taken by the first one.
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|f| f.max_bytes == 4096), "{seen:?}");
}

#[tokio::test]
async fn every_partition_arrives_in_offset_order_with_fetches_in_flight_together() {
    let (client, broker) = setup_partitions(Log::with(203), 4).await;
    let c = Consumer::builder(&client)
        .offset_reset(OffsetReset::Earliest)
        .set(LANES_KEY, "2")
        .set("fetch.max.wait.ms", "10")
        // About one batch per partition and request: many rounds.
        .set("max.partition.fetch.bytes", "100")
        .build()
        .await
        .unwrap();
    c.assign(&tps(4)).await.unwrap();
    let mut next: HashMap<i32, i64> = HashMap::new();
    while next.values().sum::<i64>() < 4 * 203 {
        let r = tokio::time::timeout(Duration::from_secs(5), c.recv())
            .await
            .expect("a record within 5 s")
            .unwrap();
        let expected = next.entry(r.partition).or_default();
        assert_eq!(r.offset, *expected, "partition {}", r.partition);
        *expected += 1;
    }
    let seen = broker.requests.lock().unwrap().clone();
    assert!(seen.len() > 8, "many rounds: {}", seen.len());
    // A partition in two Fetches at once would be answered twice from the same offset.
    let answered = broker.answered.lock().unwrap().clone();
    let mut from: HashSet<(i32, i64)> = HashSet::new();
    for (partition, offset, _) in &answered {
        assert!(
            from.insert((*partition, *offset)),
            "partition {partition} fetched twice from {offset}"
        );
    }
}

#[tokio::test]
async fn successive_fetches_rotate_the_partition_order() {
    let (client, broker) = setup_partitions(Log::with(400), 3).await;
    let c = consumer_with(
        &client,
        &[
            (LANES_KEY, "1"),
            ("fetch.max.wait.ms", "10"),
            ("max.partition.fetch.bytes", "100"),
        ],
        None,
    )
    .await;
    c.assign(&tps(3)).await.unwrap();
    for _ in 0..40 {
        tokio::time::timeout(Duration::from_secs(5), c.recv())
            .await
            .expect("a record within 5 s")
            .unwrap();
    }
    let seen = wait_for_fetches(&broker, 4).await;
    // The fetches after the first one (which may go out before every offset is known).
    let full: Vec<&SeenFetch> = seen.iter().filter(|f| f.partitions.len() == 3).collect();
    assert!(full.len() >= 3, "{seen:?}");
    let firsts: HashSet<i32> = full[..3].iter().map(|f| f.partitions[0].0).collect();
    assert_eq!(
        firsts.len(),
        3,
        "every partition leads a request in turn: {seen:?}"
    );
}

#[tokio::test]
async fn client_rack_is_sent_in_every_fetch() {
    for (rack, want) in [(Some("eu-west-1a"), "eu-west-1a"), (None, "")] {
        let (client, broker) = setup(Log::with(8)).await;
        let mut settings = vec![("fetch.max.wait.ms", "10")];
        if let Some(rack) = rack {
            settings.push(("client.rack", rack));
        }
        let c = consumer_with(&client, &settings, None).await;
        c.assign(&[tp()]).await.unwrap();
        assert_eq!(recv_offset(&c).await, 0);
        let seen = broker.requests.lock().unwrap().clone();
        assert!(!seen.is_empty());
        for f in &seen {
            assert_eq!(f.rack_id, want, "{f:?}");
        }
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn partitions_of_one_response_hold_no_memory_of_each_other() {
    // Issue 16: a partition the application has drained must free its records' memory even
    // while another partition of the same Fetch response is still buffered, so each record
    // set is read into a buffer of its own rather than sliced from one response buffer.
    let (client, broker) = setup_partitions(Log::with(8), 2).await;
    let c = consumer_with(&client, &[(LANES_KEY, "1")], None).await;
    c.assign(&tps(2)).await.unwrap();
    let mut first: HashMap<i32, crate::consumer::ConsumerRecord> = HashMap::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while first.len() < 2 {
            let r = c.recv().await.unwrap();
            if r.offset == 0 {
                first.insert(r.partition, r);
            }
        }
    })
    .await
    .expect("offset 0 of both partitions within 5 s");
    let seen = broker.requests.lock().unwrap().clone();
    assert!(
        seen[0].partitions.contains(&(0, 0)) && seen[0].partitions.contains(&(1, 0)),
        "the test needs both partitions in the first response: {seen:?}"
    );
    // Everything else that could hold the buffers goes away with the consumer.
    c.close().await.unwrap();
    drop(c);
    client.close().await;
    let (r0, r1) = (&first[&0], &first[&1]);
    let v0 = r0.value.clone().unwrap();
    let v1 = r1.value.clone().unwrap();
    drop(first);
    // One record per partition left: each value's buffer is shared only with the other
    // records of its own batch (gone now), never with the other partition's.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !(v0.is_unique() && v1.is_unique()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("each partition's records own their memory");
}
