//! The producer as a service uses it: `retries`, records given back on failure, and what a
//! dropped producer tells the records it did not send. Against a scripted broker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};

use crate::codes::KafkaCode;
use crate::testing::{FakeCluster, Received};
use crate::{Acks, Client, Compression, Error, Header, Producer, Record};

/// A broker that answers every Produce with error `code` (0: success; `None`: never
/// answers), counting them.
async fn broker_answering(code: Option<i16>) -> (Client, Arc<AtomicUsize>) {
    let cluster = FakeCluster::with_brokers(&[1]);
    let produced = Arc::new(AtomicUsize::new(0));
    let seen = produced.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| {
        assert_eq!(r.api().0, ApiKey::Produce, "not scripted");
        seen.fetch_add(1, Ordering::SeqCst);
        let code = code?;
        let req: ProduceRequest = r.decode();
        let t = &req.topic_data[0];
        let p = &t.partition_data[0];
        Some(r.answer(&ProduceResponse::default().with_responses(vec![
                TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_error_code(code)]),
            ])))
    }));
    let client = cluster
        .client_builder()
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    (client, produced)
}

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("hangs")
}

#[tokio::test]
async fn retries_bounds_the_resends_of_a_batch() {
    for (retries, sends) in [(0, 1), (2, 3)] {
        let (client, produced) =
            broker_answering(Some(KafkaCode::NotLeaderOrFollower.code())).await;
        let p = Producer::builder(&client)
            .acks(Acks::Leader)
            .set("retries", &retries.to_string())
            .linger(Duration::ZERO)
            .build()
            .await
            .unwrap();
        let d = p.send(Record::new("t").value("v")).await.unwrap();
        let e = within(d).await.unwrap_err();
        assert_eq!(
            e.kafka_code(),
            Some(KafkaCode::NotLeaderOrFollower),
            "retries={retries}: {e}"
        );
        assert_eq!(produced.load(Ordering::SeqCst), sends, "retries={retries}");
        drop(p);
        client.close().await;
    }
}

#[tokio::test]
async fn by_default_retries_go_on_until_the_delivery_timeout() {
    let (client, produced) = broker_answering(Some(KafkaCode::NotLeaderOrFollower.code())).await;
    let p = Producer::builder(&client)
        .acks(Acks::Leader)
        .linger(Duration::ZERO)
        .delivery_timeout(Duration::from_millis(400))
        .build()
        .await
        .unwrap();
    let d = p.send(Record::new("t").value("v")).await.unwrap();
    let e = within(d).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(produced.load(Ordering::SeqCst) > 3);
    client.close().await;
}

#[tokio::test]
async fn a_failed_delivery_gives_the_record_back() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let (client, _) = broker_answering(Some(KafkaCode::RecordListTooLarge.code())).await;
        let p = Producer::builder(&client)
            .acks(Acks::Leader)
            .compression(codec, None)
            .build()
            .await
            .unwrap();
        let explicit = p
            .send(
                Record::new("t")
                    .partition(0)
                    .key("k1")
                    .value("v1")
                    .header("h", "x")
                    .timestamp(1_700_000_000_000),
            )
            .await
            .unwrap();
        let placed = p.send(Record::new("t").value("v2")).await.unwrap();
        let failed = within(explicit.with_record()).await.unwrap_err();
        assert_eq!(
            failed.error.kafka_code(),
            Some(KafkaCode::RecordListTooLarge)
        );
        let r = failed.record;
        assert_eq!(r.topic, "t");
        assert_eq!(r.partition, Some(0), "the partition the application chose");
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(r.headers, vec![Header::new("h", "x")]);
        assert_eq!(r.timestamp, Some(1_700_000_000_000));
        let failed = within(placed.with_record()).await.unwrap_err();
        assert_eq!(failed.record.partition, None, "the partitioner chose it");
        assert_eq!(
            failed.record.value.as_deref(),
            Some(&b"v2"[..]),
            "{codec:?}"
        );
        // `?` turns it into the plain error.
        let as_error: Error = failed.into();
        assert_eq!(as_error.kafka_code(), Some(KafkaCode::RecordListTooLarge));
        client.close().await;
    }
}

#[tokio::test]
async fn a_delivered_record_resolves_as_before_through_with_record() {
    let (client, _) = broker_answering(Some(0)).await;
    let p = Producer::builder(&client)
        .acks(Acks::Leader)
        .build()
        .await
        .unwrap();
    let d = p.send(Record::new("t").value("v")).await.unwrap();
    let m = within(d.with_record()).await.unwrap();
    assert_eq!((m.partition, m.offset), (0, 0));
    client.close().await;
}

#[tokio::test]
async fn records_of_a_dropped_producer_fail_naming_the_cause_and_come_back() {
    // The broker never answers: one batch stays in flight, the others queued.
    let (client, _) = broker_answering(None).await;
    let p = Producer::builder(&client)
        .acks(Acks::Leader)
        .batch_size(1)
        .max_in_flight(1)
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..5 {
        let r = Record::new("t").value(format!("v{i}"));
        deliveries.push(p.send(r).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(p);
    for (i, d) in deliveries.into_iter().enumerate() {
        let failed = within(d.with_record()).await.unwrap_err();
        assert!(
            matches!(failed.error, Error::ProducerDropped),
            "record {i}: {:?}",
            failed.error
        );
        assert!(
            failed
                .error
                .to_string()
                .contains("producer dropped before close/flush"),
            "{}",
            failed.error
        );
        assert_eq!(
            failed.record.value.as_deref(),
            Some(format!("v{i}").as_bytes()),
            "record {i} given back"
        );
    }
    client.close().await;
}

/// A producer whose delivery handler records `(partition, offset, error, value given back)`.
type Reports = Arc<std::sync::Mutex<Vec<(i32, Option<i64>, Option<Error>, Option<bytes::Bytes>)>>>;

async fn reporting_producer(client: &Client, codec: Compression) -> (Producer, Reports) {
    let reports = Reports::default();
    let seen = reports.clone();
    let p = Producer::builder(client)
        .acks(Acks::Leader)
        .compression(codec, None)
        .linger(Duration::from_millis(50))
        .on_delivery(move |mut d| {
            let value = d.take_record().and_then(|r| r.value);
            let e = d.error().cloned();
            seen.lock()
                .unwrap()
                .push((d.partition(), d.offset(), e, value));
        })
        .build()
        .await
        .unwrap();
    (p, reports)
}

#[tokio::test]
async fn the_delivery_handler_hears_of_every_record_whose_future_was_dropped() {
    let (client, _) = broker_answering(Some(0)).await;
    let (p, reports) = reporting_producer(&client, Compression::None).await;
    for i in 0..3 {
        drop(
            p.send(Record::new("t").partition(0).value(format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    within(p.flush()).await.unwrap();
    let reports = reports.lock().unwrap().clone();
    let offsets: Vec<_> = reports.iter().map(|r| (r.0, r.1)).collect();
    // One batch, base offset 0 from the scripted broker.
    assert_eq!(offsets, [(0, Some(0)), (0, Some(1)), (0, Some(2))]);
    assert!(reports.iter().all(|r| r.2.is_none() && r.3.is_none()));
    client.close().await;
}

#[tokio::test]
async fn the_delivery_handler_gets_failed_records_back() {
    for codec in [Compression::None, Compression::Zstd] {
        let (client, _) = broker_answering(Some(KafkaCode::RecordListTooLarge.code())).await;
        let (p, reports) = reporting_producer(&client, codec).await;
        let mut futures = Vec::new();
        for i in 0..2 {
            let r = Record::new("t").partition(0).value(format!("v{i}"));
            futures.push(p.send(r).await.unwrap());
        }
        // Both ways of learning the outcome work side by side.
        for f in futures {
            assert!(within(f).await.is_err());
        }
        let reports = reports.lock().unwrap().clone();
        assert_eq!(reports.len(), 2, "{codec:?}");
        for (i, (partition, offset, error, value)) in reports.into_iter().enumerate() {
            assert_eq!((partition, offset), (0, None));
            let code = error.expect("failed").kafka_code();
            assert_eq!(code, Some(KafkaCode::RecordListTooLarge));
            assert_eq!(
                value.as_deref(),
                Some(format!("v{i}").as_bytes()),
                "{codec:?}"
            );
        }
        client.close().await;
    }
}
