//! Compression off the sender task: a partition's batches leave in the order they were sealed,
//! with sequences in that order, however the compressions finish; one batch's compression
//! failure fails only that batch's records. Against a scripted broker that checks idempotent
//! sequences as Kafka does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};

use super::{Sealer, Sealing, MIN_LIMIT};
use crate::codes::KafkaCode;
use crate::compression::Compression;
use crate::error::Error;
use crate::producer::accumulator::Accumulator;
use crate::producer::batch::{BatchCompletion, BatchOwner};
use crate::producer::config::ProducerConfig;
use crate::producer::partitioner::DefaultPartitioner;
use crate::protocol::records::decode_batches;
use crate::testing::{FakeCluster, Received};
use crate::{Producer, Record};

/// What the broker appended, batch by batch: (base sequence, codec, values).
type Log = Arc<Mutex<Vec<(i32, Compression, Vec<String>)>>>;

/// A one-partition broker that appends a batch only if its CRC is right and, for an
/// idempotent producer, its sequence follows the last one (Kafka's check for a known
/// producer), answering OUT_OF_ORDER_SEQUENCE_NUMBER otherwise. A batch of no producer id
/// (not idempotent) is appended whatever its sequence, as Kafka does.
async fn cluster(log: &Log) -> crate::Client {
    let cluster = FakeCluster::with_brokers(&[1]);
    let log = log.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| {
        Some(match r.api().0 {
            ApiKey::InitProducerId => r.answer(
                &InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(7))
                    .with_producer_epoch(0),
            ),
            ApiKey::Produce => {
                let req: ProduceRequest = r.decode();
                let t = &req.topic_data[0];
                let p = &t.partition_data[0];
                let raw = p.records.clone().unwrap();
                let codec =
                    Compression::from_attributes(i16::from_be_bytes([raw[21], raw[22]])).unwrap();
                let batch = &decode_batches(raw, true, 1 << 24).unwrap()[0];
                let mut log = log.lock().unwrap();
                let expected = log
                    .last()
                    .map_or(0, |(seq, _, values)| seq + values.len() as i32);
                let mut answer = PartitionProduceResponse::default().with_index(p.index);
                if batch.base_sequence == expected || batch.producer_id < 0 {
                    answer = answer.with_base_offset(expected as i64);
                    let values = batch
                        .records
                        .iter()
                        .map(|r| String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned())
                        .collect();
                    log.push((batch.base_sequence, codec, values));
                } else {
                    answer = answer.with_error_code(KafkaCode::OutOfOrderSequenceNumber.code());
                }
                r.answer(&ProduceResponse::default().with_responses(vec![
                    TopicProduceResponse::default()
                        .with_name(t.name.clone())
                        .with_partition_responses(vec![answer]),
                ]))
            }
            other => panic!("not scripted: {other:?}"),
        })
    }));
    cluster.client_builder().build().await.unwrap()
}

/// A gzip producer whose every record is its own batch, with `hook` run before each
/// compression.
async fn producer(client: &crate::Client, hook: fn(usize) -> crate::Result<()>) -> Producer {
    let mut b = Producer::builder(client)
        .batch_size(1)
        .linger(Duration::ZERO)
        .compression(Compression::Gzip, None);
    b.cfg.seal_hook = Some(hook);
    b.build().await.unwrap()
}

/// A big batch: its compression is held back (`slow_big`) or fails (`failing_big`).
const BIG: usize = 2000;

fn slow_big(size: usize) -> crate::Result<()> {
    if size > BIG {
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(())
}

fn failing_big(size: usize) -> crate::Result<()> {
    if size > BIG {
        return Err(Error::InvalidInput("injected compression failure".into()));
    }
    Ok(())
}

fn value(i: usize) -> String {
    // Record 0 is big; the others are small and compress at once.
    let pad = if i == 0 {
        "x".repeat(BIG)
    } else {
        String::new()
    };
    format!("v{i}{pad}")
}

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("hangs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_follow_seal_order_when_a_later_batch_compresses_first() {
    const {
        assert!(
            MIN_LIMIT >= 2,
            "two compressions must run at once for this test"
        )
    };
    let log: Log = Arc::default();
    let client = cluster(&log).await;
    let p = producer(&client, slow_big).await;
    let mut deliveries = Vec::new();
    for i in 0..6 {
        let record = Record::new("t").partition(0).value(value(i));
        deliveries.push(p.send(record).await.unwrap());
    }
    let mut offsets = Vec::new();
    for d in deliveries {
        offsets.push(within(d).await.expect("delivery failed").offset);
    }
    // Batch 0 took 300 ms to compress while the later ones were done at once, yet it went
    // first, with sequence 0, and every later batch followed in order.
    assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
    let log = log.lock().unwrap().clone();
    let sequences: Vec<i32> = log.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(sequences, [0, 1, 2, 3, 4, 5]);
    assert!(log.iter().all(|(_, c, _)| *c == Compression::Gzip));
    let values: Vec<String> = log.iter().flat_map(|(_, _, v)| v.clone()).collect();
    assert_eq!(values, (0..6).map(value).collect::<Vec<_>>());
    p.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compression_fails_only_its_own_records() {
    let log: Log = Arc::default();
    let client = cluster(&log).await;
    let p = producer(&client, failing_big).await;
    // The failing batch is in the middle: the ones around it are sealed before and after.
    let order = [1, 2, 0, 3, 4];
    let mut deliveries = Vec::new();
    for i in order {
        let record = Record::new("t").partition(0).value(value(i));
        deliveries.push((i, p.send(record).await.unwrap().with_record()));
    }
    for (i, d) in deliveries {
        let outcome = within(d).await;
        if i == 0 {
            let failed = outcome.expect_err("the batch that failed to compress was delivered");
            assert!(
                failed
                    .error
                    .to_string()
                    .contains("injected compression failure"),
                "{}",
                failed.error
            );
        } else {
            outcome.unwrap_or_else(|e| panic!("record {i} failed with its neighbour: {e}"));
        }
    }
    // The failed batch took no sequence: the others follow each other without a gap (the
    // broker would have refused a gap).
    let log = log.lock().unwrap().clone();
    let sequences: Vec<i32> = log.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(sequences, [0, 1, 2, 3]);
    let values: Vec<String> = log.iter().flat_map(|(_, _, v)| v.clone()).collect();
    assert_eq!(values, [1, 2, 3, 4].map(value));
    p.close(Duration::from_secs(5)).await.unwrap();
}

fn owner(acc: &Accumulator) -> (BatchOwner, Arc<BatchCompletion>) {
    let completion = BatchCompletion::new("t".into(), 0, 0);
    let owner = BatchOwner::new(completion.clone(), 0, acc.shared.clone());
    (owner, completion)
}

fn accumulator() -> Accumulator {
    let partitioner = Arc::new(DefaultPartitioner::default());
    Accumulator::new(
        Arc::new(ProducerConfig::default()),
        partitioner.clone(),
        Some(partitioner),
    )
}

#[tokio::test]
async fn an_entry_is_ready_only_once_its_job_answered() {
    let acc = accumulator();
    let (owner, completion) = owner(&acc);
    let (mut entry, job) = Sealing::pending(owner, 1);
    assert!(!entry.ready());
    assert!(!entry.ready(), "asking again does not make it ready");
    job.send(Ok(bytes::BytesMut::from(&b"sealed"[..]))).unwrap();
    assert!(entry.ready());
    let (owner, bytes) = entry.take().expect("a compressed batch");
    assert_eq!(&bytes[..], b"sealed");
    assert!(
        !completion.is_complete(),
        "taking a batch does not decide it"
    );
    drop(owner);
    assert!(completion.is_complete());
}

#[tokio::test]
async fn a_job_that_died_fails_its_batch_instead_of_hanging_it() {
    let acc = accumulator();
    let (owner, completion) = owner(&acc);
    let (mut entry, job) = Sealing::pending(owner, 1);
    drop(job);
    assert!(entry.ready());
    assert!(entry.take().is_none());
    let delivery = crate::producer::batch::DeliveryFuture::new(completion, 0, 1);
    let err = delivery.await.unwrap_err();
    assert!(err.to_string().contains("compression"), "{err}");
}

#[tokio::test]
async fn a_failed_entry_gives_its_records_back_from_the_compressed_batch() {
    let acc = accumulator();
    let t = acc.add_topic("t", 1);
    let mut builder = crate::protocol::records::BatchBuilder::new(1024);
    let fields = crate::protocol::records::fields_len(Some(1), Some(5), &[]);
    let len = builder.record_len(42, fields);
    builder.append_sized(len, 42, Some(b"k"), Some(b"value"), &[]);
    let (owner, completion) = owner(&acc);
    let delivery = crate::producer::batch::DeliveryFuture::new(completion, 0, 42).with_record();
    let sealer = Sealer::new(
        &ProducerConfig {
            compression: Compression::Lz4,
            ..Default::default()
        },
        acc.wake.clone(),
    );
    assert!(sealer.limit() >= MIN_LIMIT);
    let mut entry = sealer.start(crate::producer::accumulator::OpenBatch {
        builder,
        owner,
        created: tokio::time::Instant::now(),
    });
    within(acc.wake.notified()).await;
    assert!(entry.ready());
    assert!(sealer.has_room(), "a finished job gives its slot back");
    entry.fail(Error::Closed);
    let failed = within(delivery).await.unwrap_err();
    assert!(matches!(failed.error, Error::Closed));
    assert_eq!(failed.record.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(failed.record.value.as_deref(), Some(&b"value"[..]));
    drop(t);
}

/// A zstd batch of `n` records of 100 bytes, with its uncompressed size.
fn zstd_input(n: i64) -> (crate::protocol::records::BatchBuilder, usize) {
    let mut builder = crate::protocol::records::BatchBuilder::new(1024);
    for i in 0..n {
        let fields = crate::protocol::records::fields_len(None, Some(100), &[]);
        let len = builder.record_len(i, fields);
        builder.append_sized(len, i, None, Some(&[b'x'; 100]), &[]);
    }
    let size = builder.size();
    (builder, size)
}

fn zstd_sealer(acc: &Accumulator, hook: Option<fn(usize) -> crate::Result<()>>) -> Sealer {
    Sealer::new(
        &ProducerConfig {
            compression: Compression::Zstd,
            seal_hook: hook,
            ..Default::default()
        },
        acc.wake.clone(),
    )
}

/// `builder` handed to `sealer`, once its compression finished.
async fn sealed(
    acc: &Accumulator,
    sealer: &Sealer,
    builder: crate::protocol::records::BatchBuilder,
    owner: BatchOwner,
) -> Sealing {
    let mut entry = sealer.start(crate::producer::accumulator::OpenBatch {
        builder,
        owner,
        created: tokio::time::Instant::now(),
    });
    while !entry.ready() {
        within(acc.wake.notified()).await;
    }
    entry
}

#[tokio::test]
async fn sealed_batches_keep_their_compressed_size_and_one_thread_serves_one_at_a_time() {
    let acc = accumulator();
    let t = acc.add_topic("t", 1);
    let sealer = zstd_sealer(&acc, None);
    for round in 0..3 {
        let (builder, input) = zstd_input(1000);
        let (owner, _completion) = owner(&acc);
        let entry = sealed(&acc, &sealer, builder, owner).await;
        let (_owner, bytes) = entry.take().expect("compressed");
        // zstd writes into a worst-case bound larger than the input; the batch keeps only
        // what it compressed to.
        assert!(bytes.len() < input / 10, "{} of {input}", bytes.len());
        assert_eq!(
            bytes.capacity(),
            bytes.len(),
            "no slack kept while in flight"
        );
        let batches = decode_batches(bytes.freeze(), true, 1 << 24).unwrap();
        assert_eq!(batches[0].records.len(), 1000, "round {round}");
        // One compression at a time needs one thread, whatever the number of batches (the
        // blocking pool could start a thread per job, each with its own arena).
        assert_eq!(sealer.threads(), 1, "round {round}");
    }
    drop(t);
}

#[tokio::test]
async fn a_panicking_compression_fails_its_batch_and_the_thread_serves_the_next() {
    let acc = accumulator();
    let t = acc.add_topic("t", 1);
    let sealer = zstd_sealer(
        &acc,
        Some(|size| {
            assert!(size < 50_000, "a codec bug");
            Ok(())
        }),
    );
    let mut outcomes = Vec::new();
    for n in [1000, 10] {
        let (builder, _) = zstd_input(n);
        let (owner, completion) = owner(&acc);
        let entry = sealed(&acc, &sealer, builder, owner).await;
        outcomes.push(entry.take().is_some());
        let delivery = crate::producer::batch::DeliveryFuture::new(completion, 0, 0);
        if !outcomes[outcomes.len() - 1] {
            let err = within(delivery).await.unwrap_err();
            assert!(err.to_string().contains("compression"), "{err}");
        }
        assert!(sealer.has_room(), "the slot is given back either way");
    }
    assert_eq!(outcomes, [false, true]);
    assert_eq!(sealer.threads(), 1, "the thread survived the panic");
    drop(t);
}

#[tokio::test]
async fn uncompressed_batches_leave_with_a_valid_crc_whether_stamped_or_not() {
    // The CRC is written once, when the producer fields are final: by the stamp of an
    // idempotent batch, else right after finishing. The broker checks it (`cluster`).
    for acks in [crate::Acks::Leader, crate::Acks::All] {
        let log: Log = Arc::default();
        let client = cluster(&log).await;
        let p = Producer::builder(&client)
            .acks(acks)
            .batch_size(64)
            .linger(Duration::ZERO)
            .build()
            .await
            .unwrap();
        let mut futures = Vec::new();
        for i in 0..6 {
            futures.push(
                within(p.send(Record::new("t").value(format!("v{i}"))))
                    .await
                    .unwrap(),
            );
        }
        for f in futures {
            within(f).await.unwrap();
        }
        let log = log.lock().unwrap();
        let values: Vec<&str> = log
            .iter()
            .flat_map(|(_, codec, values)| {
                assert_eq!(*codec, Compression::None);
                values.iter().map(String::as_str)
            })
            .collect();
        assert_eq!(values, ["v0", "v1", "v2", "v3", "v4", "v5"], "{acks:?}");
        // acks=1 turns idempotence off: no sequence; acks=all stamps one.
        let stamped = log.iter().all(|(seq, ..)| *seq >= 0);
        assert_eq!(stamped, acks == crate::Acks::All, "{log:?}");
    }
}
