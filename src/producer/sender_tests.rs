//! The sender against a scripted broker that checks idempotent sequences as Kafka does,
//! including the rule that makes pipelining a new producer's first batches unsafe: a broker
//! with no state for a producer id accepts *any* first sequence on a partition.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    ProducerId,
};

use crate::codes::KafkaCode;
use crate::protocol::records::decode_batches;
use crate::testing::{FakeCluster, Received};
use crate::{Producer, Record};

/// One partition's log and the broker's producer state for it, as Kafka keeps them.
#[derive(Default)]
struct Partition {
    /// `(producer id, epoch, last sequence)` of the last append.
    producer: Option<(i64, i16, i32)>,
    log: Vec<String>,
    produce_requests: usize,
}

impl Partition {
    /// Kafka's sequence check (`ProducerAppendInfo.checkSequence`): an unknown producer may
    /// start at any sequence; a new epoch must start at 0; otherwise the next one in line.
    fn check(&self, pid: i64, epoch: i16, seq: i32) -> Result<(), KafkaCode> {
        match self.producer {
            None => Ok(()),
            Some((p, e, _)) if p != pid || e != epoch => {
                if seq == 0 {
                    Ok(())
                } else {
                    Err(KafkaCode::OutOfOrderSequenceNumber)
                }
            }
            Some((_, _, last)) if seq == last + 1 => Ok(()),
            Some(_) => Err(KafkaCode::OutOfOrderSequenceNumber),
        }
    }
}

fn broker(state: &Mutex<Partition>, r: &Received) -> Option<bytes::Bytes> {
    Some(match r.api().0 {
        ApiKey::InitProducerId => {
            let req: InitProducerIdRequest = r.decode();
            // A bump keeps the id and raises the epoch.
            let epoch = if req.producer_id.0 >= 0 {
                req.producer_epoch + 1
            } else {
                0
            };
            r.answer(
                &InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(7))
                    .with_producer_epoch(epoch),
            )
        }
        ApiKey::Produce => {
            let req: ProduceRequest = r.decode();
            let t = &req.topic_data[0];
            let p = &t.partition_data[0];
            let batch = &decode_batches(p.records.clone().unwrap(), true, 1 << 20).unwrap()[0];
            let mut st = state.lock().unwrap();
            st.produce_requests += 1;
            let first = st.produce_requests == 1;
            let outcome = if first {
                // The leader has not caught up with the topic yet (as right after
                // CreateTopics): the first batch fails, not appended. It answers late, so a
                // client that pipelines has sent the next batches already.
                drop(st);
                std::thread::sleep(Duration::from_millis(300));
                st = state.lock().unwrap();
                Err(KafkaCode::NotLeaderOrFollower)
            } else {
                st.check(batch.producer_id, batch.producer_epoch, batch.base_sequence)
            };
            let mut answer = PartitionProduceResponse::default().with_index(p.index);
            match outcome {
                Ok(()) => {
                    answer = answer.with_base_offset(st.log.len() as i64);
                    let last = batch.base_sequence + batch.records.len() as i32 - 1;
                    st.producer = Some((batch.producer_id, batch.producer_epoch, last));
                    for rec in &batch.records {
                        let v = rec.value.as_ref().unwrap();
                        st.log.push(String::from_utf8_lossy(v).into_owned());
                    }
                }
                Err(code) => answer = answer.with_error_code(code.code()),
            }
            r.answer(&ProduceResponse::default().with_responses(
                vec![TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(vec![answer])],
            ))
        }
        other => panic!("not scripted: {other:?}"),
    })
}

/// Found on a real 3-node Kafka (tests/kafka_failover.rs): a partition's first batch failed
/// with a retriable error while the next ones, pipelined behind it, were appended (the broker
/// knew nothing of the producer id yet, so any first sequence was fine); the first batch then
/// got OUT_OF_ORDER_SEQUENCE_NUMBER, an epoch bump renumbered it, and it landed after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_producers_first_batch_is_not_overtaken_when_it_fails() {
    let state = Arc::new(Mutex::new(Partition::default()));
    let cluster = FakeCluster::with_brokers(&[1]);
    let s = state.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| broker(&s, r)));
    let client = cluster
        .client_builder()
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    // One record per batch and no linger: every record is its own batch, so up to five go
    // out at once.
    let p = Producer::builder(&client)
        .batch_size(1)
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20 {
        let record = Record::new("t").partition(0).value(format!("v{i}"));
        deliveries.push(p.send(record).await.unwrap());
    }
    for d in deliveries {
        tokio::time::timeout(Duration::from_secs(10), d)
            .await
            .expect("delivery hangs")
            .expect("delivery failed");
    }
    let log = state.lock().unwrap().log.clone();
    let want: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    assert_eq!(log, want, "the partition's log is not in send order");
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// A batch past its delivery timeout while it is being compressed waits for the compression
/// (milliseconds), then expires with its records given back from the compressed batch.
#[tokio::test(start_paused = true)]
async fn a_batch_expires_only_once_its_compression_is_done() {
    use crate::producer::accumulator::{Accumulator, PartitionState, Queued};
    use crate::producer::batch::{BatchCompletion, BatchOwner, DeliveryFuture};
    use crate::producer::config::ProducerConfig;
    use crate::producer::partitioner::DefaultPartitioner;
    use crate::producer::seal::Sealing;
    use crate::Error;

    let partitioner = Arc::new(DefaultPartitioner::default());
    let acc = Accumulator::new(
        Arc::new(ProducerConfig::default()),
        partitioner.clone(),
        Some(partitioner),
    );
    let completion = BatchCompletion::new("t".into(), 0, 0);
    let owner = BatchOwner::new(completion.clone(), 0, acc.shared.clone());
    let delivery = DeliveryFuture::new(completion.clone(), 0, 42).with_record();
    let (entry, job) = Sealing::pending(owner, 1);
    let mut st = PartitionState::default();
    st.queue.push_back(Queued::Sealing(entry));
    let timeout = Duration::from_secs(30);
    tokio::time::advance(timeout + Duration::from_millis(1)).await;
    let now = tokio::time::Instant::now();
    assert_eq!(super::drain::expire_queued(&mut st, now, timeout), 0);
    assert_eq!(st.queue.len(), 1, "kept while its compression runs");
    assert!(!completion.is_complete());
    // The compressed batch the job would have made.
    let mut builder = crate::protocol::records::BatchBuilder::new(256);
    let fields = crate::protocol::records::fields_len(None, Some(1), &[]);
    builder.append_sized(builder.record_len(42, fields), 42, None, Some(b"v"), &[]);
    let sealed = builder
        .finish(crate::compression::Compression::Gzip, None)
        .unwrap();
    job.send(Ok(sealed)).unwrap();
    assert_eq!(super::drain::expire_queued(&mut st, now, timeout), 1);
    assert!(st.queue.is_empty());
    let failed = delivery.await.unwrap_err();
    assert!(
        matches!(failed.error, Error::Timeout { .. }),
        "{}",
        failed.error
    );
    assert_eq!(failed.record.value.as_deref(), Some(&b"v"[..]));
}

/// A fake broker that appends every Produce and notes when each arrived, on tokio's clock
/// (paused in tests that use it) and on the real one.
fn timing_cluster(
    arrivals: &Arc<Mutex<Vec<(tokio::time::Instant, std::time::Instant)>>>,
) -> Arc<FakeCluster> {
    let cluster = FakeCluster::with_brokers(&[1]);
    let arrivals = arrivals.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| {
        assert_eq!(r.api().0, ApiKey::Produce, "not scripted: {:?}", r.api());
        arrivals
            .lock()
            .unwrap()
            .push((tokio::time::Instant::now(), std::time::Instant::now()));
        let req: ProduceRequest = r.decode();
        let t = &req.topic_data[0];
        Some(r.answer(&ProduceResponse::default().with_responses(
            vec![TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(t.partition_data[0].index)
                        .with_base_offset(0)])],
        )))
    }));
    cluster
}

/// A lone record lingers `linger.ms`, not a timer tick more: tokio's timer rounds a deadline
/// up to its next 1 ms tick and then parks for whole ticks from the current one, so a batch
/// started between ticks (here 0.3 ms after one) used to reach the wire 6 ms after its
/// record with `linger.ms` = 5.
#[tokio::test(start_paused = true)]
async fn a_lingering_batch_leaves_at_linger_ms_not_a_tick_later() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let cluster = timing_cluster(&arrivals);
    let client = cluster.client_builder().build().await.unwrap();
    let p = Producer::builder(&client)
        .idempotence(false)
        .linger(Duration::from_millis(5))
        .build()
        .await
        .unwrap();
    // Two records: one on a tick, one 0.3 ms after a tick.
    for (i, offset) in [Duration::ZERO, Duration::from_micros(300)]
        .into_iter()
        .enumerate()
    {
        // Wait until the clock is on a tick again (auto-advance moves it tick by tick), then
        // step off it by `offset`.
        tokio::time::sleep(Duration::from_millis(10)).await;
        tokio::time::advance(offset).await;
        let sent = tokio::time::Instant::now();
        let delivery = p
            .send(Record::new("t").partition(0).value("v"))
            .await
            .unwrap();
        delivery.await.expect("delivery failed");
        let (arrived, _) = arrivals.lock().unwrap()[i];
        let lingered = arrived - sent;
        assert!(
            lingered <= Duration::from_millis(5) && lingered > Duration::from_millis(4),
            "record {offset:?} after a tick: on the wire {lingered:?} after send, want 5 ms \
             within a tick below"
        );
    }
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// A cluster whose topic `t` has a partition per entry of `leaders`, led by that broker.
fn cluster_led_by(leaders: &[i32]) -> Arc<FakeCluster> {
    use kafka_protocol::messages::metadata_response::MetadataResponsePartition;
    use kafka_protocol::messages::BrokerId;

    let mut brokers = leaders.to_vec();
    brokers.sort_unstable();
    brokers.dedup();
    let cluster = FakeCluster::with_brokers(&brokers);
    cluster.metadata.lock().unwrap().topics[0].partitions = leaders
        .iter()
        .enumerate()
        .map(|(i, &leader)| {
            MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(leader))
                .with_replica_nodes(vec![BrokerId(leader)])
                .with_isr_nodes(vec![BrokerId(leader)])
        })
        .collect();
    cluster
}

/// Produces `batches[p]` one-record batches to partition `p` of `t`, led by broker
/// `leaders[p]`, with two batches to a request (`max.request.size`) and one request in flight
/// per broker; returns the partitions of every Produce request, in arrival order. Every
/// request is answered after 20 ms, so that the rest is queued while the first ones are out.
async fn produce_requests(leaders: &[i32], batches: &[usize]) -> Vec<Vec<i32>> {
    let cluster = cluster_led_by(leaders);
    let requests: Arc<Mutex<Vec<Vec<i32>>>> = Arc::default();
    let seen = requests.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| {
        assert_eq!(r.api().0, ApiKey::Produce, "not scripted: {:?}", r.api());
        let req: ProduceRequest = r.decode();
        let t = &req.topic_data[0];
        seen.lock()
            .unwrap()
            .push(t.partition_data.iter().map(|p| p.index).collect());
        std::thread::sleep(Duration::from_millis(20));
        Some(r.answer(&ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(
                    t.partition_data
                        .iter()
                        .map(|p| {
                            PartitionProduceResponse::default()
                                .with_index(p.index)
                                .with_base_offset(0)
                        })
                        .collect(),
                ),
        ])))
    }));
    let client = cluster.client_builder().build().await.unwrap();
    // One 480-byte record per batch (two would pass batch.size); two batches pass
    // max.request.size, so a request holds two batches.
    let p = Producer::builder(&client)
        .idempotence(false)
        .linger(Duration::ZERO)
        .batch_size(1_000)
        .max_request_size(1_000)
        .max_in_flight(1)
        .build()
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for (partition, &n) in batches.iter().enumerate() {
        for _ in 0..n {
            let record = Record::new("t")
                .partition(partition as i32)
                .value(vec![b'v'; 480]);
            deliveries.push(p.send(record).await.unwrap());
        }
    }
    for d in deliveries {
        d.await.expect("delivery failed");
    }
    p.close(Duration::from_secs(5)).await.unwrap();
    let requests = requests.lock().unwrap().clone();
    assert_eq!(
        requests.iter().map(Vec::len).sum::<usize>(),
        batches.iter().sum::<usize>(),
        "{requests:?}"
    );
    requests
}

/// Requests fill up (`max.request.size`) before a pass reaches the last partitions: the next
/// pass starts past the last partition drained, so no partition waits for the others' queues
/// to empty. With a fixed order, partition 2 here waited behind every batch of partitions 0
/// and 1 (on Tansu, a broker-bound producer left one partition's records undelivered for
/// most of the run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_partition_gets_its_turn_when_requests_are_full() {
    let requests = produce_requests(&[1, 1, 1], &[8, 8, 8]).await;
    // Once all three partitions have batches queued (by the second request at the latest),
    // each one is in every second request: none waits for the others to drain.
    for partition in 0..3 {
        let first = requests
            .iter()
            .position(|r| r.contains(&partition))
            .unwrap();
        assert!(
            first <= 3,
            "partition {partition} first sent in request {first}: {requests:?}"
        );
    }
}

/// The same with a second leader, pass by pass (requests are never answered here: a test
/// completes them by hand, so the interleaving is the same on every run). Each leader has its
/// own place to start from: with one cursor for all, broker 2's partition, drained last in
/// its pass, sent broker 1's next pass back to partition 0, and partition 2 waited for
/// partitions 0 and 1 to empty.
#[tokio::test]
async fn each_leader_drains_its_partitions_in_turn() {
    use crate::client::metadata::ClusterMetadata;
    use crate::producer::accumulator::{Accumulator, NewRecord};
    use crate::producer::config::ProducerConfig;
    use crate::producer::partitioner::DefaultPartitioner;
    use crate::protocol::records::fields_len;
    let leaders = [1, 1, 1, 2];
    let cluster = cluster_led_by(&leaders);
    let client = cluster.client_builder().build().await.unwrap();
    let md = cluster.metadata.lock().unwrap().clone();
    client
        .inner
        .metadata
        .install(ClusterMetadata::from_response(&md), true);
    let cfg = ProducerConfig {
        idempotence: Some(false),
        linger: Duration::ZERO,
        batch_size: 1_000,
        max_request_size: 1_000,
        max_in_flight: 1,
        ..Default::default()
    };
    let partitioner = Arc::new(DefaultPartitioner::default());
    let acc = Arc::new(Accumulator::new(
        Arc::new(cfg),
        partitioner.clone(),
        Some(partitioner),
    ));
    let topic = acc.add_topic("t", leaders.len());
    let value = [b'v'; 480];
    let mut deliveries = Vec::new();
    for partition in 0..leaders.len() as i32 {
        for _ in 0..8 {
            // One record per batch: two would pass batch.size; two batches fill a request.
            let record = NewRecord {
                timestamp: 1,
                key: None,
                value: Some(&value),
                headers: &[],
                fields_len: fields_len(None, Some(value.len()), &[]),
            };
            deliveries.push(acc.append(&topic, partition, &record, 0).unwrap());
        }
    }
    let mut sender = super::Sender::new(client.inner.clone(), acc.clone(), None);
    // Sends one pass, then completes the requests to `done` by hand.
    let mut pass = |done: &[i32]| -> Vec<i32> {
        let before: Vec<usize> = (0..leaders.len())
            .map(|p| topic.partitions[p].lock().unwrap().in_flight)
            .collect();
        sender.pass(false);
        let mut sent = Vec::new();
        for (p, &leader) in leaders.iter().enumerate() {
            let mut st = topic.partitions[p].lock().unwrap();
            if st.in_flight > before[p] {
                sent.push(p as i32);
            }
            if done.contains(&leader) {
                st.in_flight = 0;
            }
        }
        for broker in done {
            sender.in_flight_by_broker.insert(*broker, 0);
        }
        sent
    };
    // Both brokers free: two batches for broker 1, one for broker 2; only broker 2 answers.
    assert_eq!(pass(&[2]), vec![0, 1, 3]);
    // Broker 1 busy: only partition 3 goes; then broker 1 answers.
    assert_eq!(pass(&[1]), vec![3]);
    // Broker 2 busy now; broker 1 goes on from partition 2, then partition 1's turn comes.
    assert_eq!(pass(&[1]), vec![0, 2], "partition 2 skipped again");
    assert_eq!(pass(&[1]), vec![1, 2]);
    drop(deliveries);
}
