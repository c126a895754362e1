//! Metrics, exporter and tracing against real Apache Kafka (the shared node of
//! `common::kafka()`).
//!
//! - `snapshots_and_exporter_count_exactly`: 400 records of 100 bytes produced; the producer
//!   snapshot counts exactly 400 records and the batches' bytes, with no error or retry and
//!   an empty buffer at the end; a consumer that has read 150 of them shows lag 250 exactly
//!   (high watermark 400 from the Fetch answer, position 150), then lag 0 with 400 records
//!   consumed; 60 more produced while it does not read show lag 60 exactly; after reading them
//!   it has consumed 460 records and fetched exactly the bytes the producer sent. Time since
//!   the last poll grows while it does not poll. The client snapshot has per-broker requests,
//!   latency and a connection. The `metrics` facade (metrics-util's debugging recorder)
//!   receives the same figures under the documented names and labels.
//! - `spans_and_trace_context`: a test subscriber captures `send`, `receive` and `process`
//!   spans with the OpenTelemetry messaging attributes (system, operation, destination,
//!   partition, offset, consumer group, client id), and a `traceparent`/`tracestate`
//!   injected on produce is extracted on consume.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{create_topic, kafka, unique_topic, within};
use ferrokafka::{
    Client, Consumer, ConsumerMetrics, OffsetReset, Producer, Record, TopicPartition, TraceContext,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

/// The process-wide debugging recorder and span capture, installed before any client is
/// built. The capture is the global subscriber, not a thread-scoped one: tracing caches each
/// callsite's interest process-wide, and a test running in parallel without a subscriber
/// could otherwise leave a callsite marked uninteresting.
fn recorder() -> &'static Snapshotter {
    spans();
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other metrics recorder in this test binary");
        snapshotter
    })
}

async fn client(client_id: &str) -> Client {
    within(
        "client",
        Client::builder()
            .bootstrap_servers(kafka().bootstrap())
            .client_id(client_id)
            .build(),
    )
    .await
    .unwrap()
}

/// Every exported metric of `client_id`: (name, kind, labels other than client_id) → value.
type Exported = Vec<(String, MetricKind, Vec<(String, String)>, DebugValue)>;

/// The debugging recorder's snapshots drain what they read (counters and gauges swap to 0,
/// histograms are cleared), so every snapshot is merged into this process-wide total:
/// counters add up (those published as absolute totals keep the largest), histograms
/// append, gauges keep the last value read.
fn exported(client_id: &str) -> Exported {
    static TOTAL: OnceLock<Mutex<HashMap<CompositeKey, DebugValue>>> = OnceLock::new();
    let mut total = TOTAL.get_or_init(Default::default).lock().unwrap();
    for (ck, _, _, value) in recorder().snapshot().into_vec() {
        let absolute = ck.key().name() == "kafka_consumer_records_consumed_total";
        match (total.get_mut(&ck), value) {
            (Some(DebugValue::Counter(sum)), DebugValue::Counter(v)) if absolute => {
                *sum = (*sum).max(v)
            }
            (Some(DebugValue::Counter(sum)), DebugValue::Counter(v)) => *sum += v,
            (Some(DebugValue::Histogram(all)), DebugValue::Histogram(v)) => all.extend(v),
            (_, v) => {
                total.insert(ck, v);
            }
        }
    }
    total
        .iter()
        .filter_map(|(ck, value)| {
            let key = ck.key();
            let labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let mine = labels
                .iter()
                .any(|(k, v)| k == "client_id" && v == client_id);
            mine.then(|| {
                let rest = labels
                    .into_iter()
                    .filter(|(k, _)| k != "client_id")
                    .collect();
                // DebugValue is not Clone.
                let value = match value {
                    DebugValue::Counter(v) => DebugValue::Counter(*v),
                    DebugValue::Gauge(v) => DebugValue::Gauge(*v),
                    DebugValue::Histogram(v) => DebugValue::Histogram(v.clone()),
                };
                (key.name().to_owned(), ck.kind(), rest, value)
            })
        })
        .collect()
}

fn counter(e: &Exported, name: &str) -> u64 {
    e.iter()
        .filter(|m| m.0 == name)
        .map(|m| match m.3 {
            DebugValue::Counter(v) => v,
            ref other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

fn gauge(e: &Exported, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    e.iter()
        .find(|m| {
            m.0 == name
                && labels
                    .iter()
                    .all(|(k, v)| m.2.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|m| match m.3 {
            DebugValue::Gauge(v) => v.into_inner(),
            ref other => panic!("{name} is not a gauge: {other:?}"),
        })
}

fn histogram_len(e: &Exported, name: &str) -> usize {
    e.iter()
        .filter(|m| m.0 == name)
        .map(|m| match &m.3 {
            DebugValue::Histogram(v) => v.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

async fn produce(producer: &Producer, topic: &str, n: usize, value_len: usize) {
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let mut value = format!("{i:08}").into_bytes();
        value.resize(value_len, b'x');
        let r = Record::new(topic).partition(0).value(value);
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }
}

async fn read(consumer: &Consumer, n: usize) {
    for _ in 0..n {
        within("recv", consumer.recv()).await.unwrap();
    }
}

fn lag_of(m: &ConsumerMetrics) -> (Option<i64>, Option<i64>, Option<u64>) {
    let p = &m.partitions[0];
    (p.high_watermark, p.position, p.lag)
}

#[tokio::test]
async fn snapshots_and_exporter_count_exactly() {
    recorder();
    let topic = unique_topic("metrics");
    let (pid, cid) = (unique_topic("producer-id"), unique_topic("consumer-id"));
    let pclient = client(&pid).await;
    create_topic(&pclient, &topic, 1).await;
    let producer = Producer::builder(&pclient).build().await.unwrap();
    produce(&producer, &topic, 400, 100).await;

    let p = producer.metrics();
    assert_eq!(p.records_sent, 400, "{p:?}");
    assert_eq!((p.record_errors, p.retries), (0, 0), "{p:?}");
    assert!(p.batches_sent >= 1 && p.requests >= 1, "{p:?}");
    // A 100-byte value costs at least 100 bytes and a record header of a few varints; each
    // batch adds its 61-byte header.
    assert!(
        p.bytes_sent >= 400 * 100 + 61 * p.batches_sent
            && p.bytes_sent <= 400 * 120 + 61 * p.batches_sent,
        "{p:?}"
    );
    assert_eq!(p.batch_size.count, p.batches_sent, "first sends only");
    assert_eq!(p.batch_size.sum as u64, p.bytes_sent);
    assert_eq!(p.records_per_request.sum as u64, 400);
    assert_eq!(p.queue_time.count, p.batches_sent);
    assert_eq!(
        p.buffer_used, 0,
        "everything delivered gives its buffer back"
    );

    let cclient = client(&cid).await;
    let consumer = Consumer::builder(&cclient)
        .offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    consumer
        .assign(&[TopicPartition::new(&topic, 0)])
        .await
        .unwrap();
    read(&consumer, 150).await;
    let m = consumer.metrics();
    assert_eq!(m.records, 150);
    // Every record was in the log before the first Fetch, so its high watermark is 400.
    assert_eq!(lag_of(&m), (Some(400), Some(150), Some(250)), "{m:?}");
    assert_eq!(m.max_lag, Some(250));

    read(&consumer, 250).await;
    let m = consumer.metrics();
    assert_eq!(
        (m.records, lag_of(&m).2, m.max_lag),
        (400, Some(0), Some(0))
    );

    // Produced while the consumer does not read: the fetcher still fetches them (the buffer
    // has room) and learns the new high watermark.
    produce(&producer, &topic, 60, 100).await;
    let m = within("high watermark 460", async {
        loop {
            let m = consumer.metrics();
            if m.partitions[0].high_watermark == Some(460) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(lag_of(&m), (Some(460), Some(400), Some(60)), "{m:?}");
    assert_eq!(m.max_lag, Some(60));
    assert!(
        m.fetches >= 2 && m.fetch_latency.count == m.fetches,
        "{m:?}"
    );
    // The exporter got the same lag after that Fetch answer (published at its end), and the
    // records handed out so far.
    let e = within("exported lag 60", async {
        loop {
            let e = exported(&cid);
            let lag = [("topic", topic.as_str()), ("partition", "0")];
            if gauge(&e, "kafka_consumer_records_lag", &lag) == Some(60.0) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(gauge(&e, "kafka_consumer_records_lag_max", &[]), Some(60.0));
    assert_eq!(counter(&e, "kafka_consumer_records_consumed_total"), 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = consumer.metrics().since_last_poll;
    assert!(idle >= Duration::from_millis(300), "{idle:?}");

    read(&consumer, 60).await;
    let m = consumer.metrics();
    let p = producer.metrics();
    assert_eq!(
        (m.records, m.records_fetched, lag_of(&m).2),
        (460, 460, Some(0))
    );
    assert_eq!(p.records_sent, 460);
    assert_eq!(
        m.bytes_fetched, p.bytes_sent,
        "the consumer fetched exactly the batches the producer sent"
    );
    assert!(m.since_last_poll < Duration::from_millis(300));

    let c = pclient.metrics();
    let broker = c
        .brokers
        .iter()
        .find(|b| b.node_id >= 0 && b.requests > 0)
        .unwrap_or_else(|| panic!("no broker with requests: {c:?}"));
    assert!(broker.connects >= 1, "{broker:?}");
    assert!(broker.request_latency.count > 0 && broker.request_latency.count <= broker.requests);
    assert_eq!(broker.auth_failures, 0);
    let cm = cclient.metrics();
    assert!(cm.requests() > m.fetches, "Fetches and metadata: {cm:?}");

    // The same figures through the `metrics` facade.
    let e = exported(&pid);
    assert_eq!(counter(&e, "kafka_producer_record_send_total"), 460);
    assert_eq!(counter(&e, "kafka_producer_byte_total"), p.bytes_sent);
    assert_eq!(counter(&e, "kafka_producer_record_error_total"), 0);
    assert_eq!(
        histogram_len(&e, "kafka_producer_batch_size_bytes") as u64,
        p.batch_size.count
    );
    assert!(histogram_len(&e, "kafka_producer_record_queue_time_seconds") > 0);
    assert!(gauge(&e, "kafka_producer_buffer_used_bytes", &[]).is_some());
    let node = broker.node_id.to_string();
    assert!(
        counter(&e, "kafka_client_request_total") >= broker.requests,
        "every broker's requests, this one's included"
    );
    assert!(
        e.iter()
            .any(|m| m.0 == "kafka_client_request_latency_seconds"
                && m.2.iter().any(|(k, v)| k == "node_id" && *v == node)),
        "latency per broker: {e:?}"
    );
    assert!(counter(&e, "kafka_client_connection_creation_total") >= 1);
    let in_flight = gauge(&e, "kafka_client_requests_in_flight", &[("node_id", &node)]);
    assert!(
        in_flight.is_some_and(|v| (0.0..=1.0).contains(&v)),
        "nothing (or a metadata refresh) in flight: {in_flight:?}"
    );

    let e = exported(&cid);
    assert_eq!(
        counter(&e, "kafka_consumer_bytes_consumed_total"),
        p.bytes_sent
    );
    assert_eq!(counter(&e, "kafka_consumer_records_fetched_total"), 460);
    assert!(histogram_len(&e, "kafka_consumer_fetch_latency_seconds") as u64 >= m.fetches);

    producer.close(Duration::from_secs(10)).await.unwrap();
    consumer.close().await.unwrap();
}

/// A span as the subscriber saw it when it closed.
#[derive(Debug, Clone)]
struct Captured {
    name: &'static str,
    fields: HashMap<String, String>,
}

mod capture {
    use super::Captured;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::Subscriber;
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    struct Fields(HashMap<String, String>);

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    /// Keeps every closed span of target `ferrokafka::messaging` with its fields.
    pub(super) struct Capture(pub(super) Arc<Mutex<Vec<Captured>>>);

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            let mut fields = Fields(HashMap::new());
            attrs.record(&mut fields);
            ctx.span(id).unwrap().extensions_mut().insert(fields);
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            let span = ctx.span(id).unwrap();
            let mut ext = span.extensions_mut();
            values.record(ext.get_mut::<Fields>().unwrap());
        }

        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            let span = ctx.span(&id).unwrap();
            if span.metadata().target() != "ferrokafka::messaging" {
                return;
            }
            let fields = span.extensions().get::<Fields>().unwrap().0.clone();
            self.0.lock().unwrap().push(Captured {
                name: span.metadata().name(),
                fields,
            });
        }
    }
}

fn find<'a>(spans: &'a [Captured], name: &str, topic: &str) -> &'a Captured {
    spans
        .iter()
        .find(|s| {
            s.name == name
                && s.fields
                    .get("messaging.destination.name")
                    .map(String::as_str)
                    == Some(topic)
        })
        .unwrap_or_else(|| panic!("no `{name}` span for {topic}: {spans:#?}"))
}

fn field<'a>(s: &'a Captured, key: &str) -> &'a str {
    s.fields
        .get(key)
        .unwrap_or_else(|| panic!("`{}` span without {key}: {s:?}", s.name))
}

/// Every closed messaging span of the process (see [`recorder`]).
fn spans() -> &'static Arc<Mutex<Vec<Captured>>> {
    static SPANS: OnceLock<Arc<Mutex<Vec<Captured>>>> = OnceLock::new();
    SPANS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(capture::Capture(spans.clone()));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        spans
    })
}

#[tokio::test]
async fn spans_and_trace_context() {
    recorder();

    let topic = unique_topic("spans");
    let group = unique_topic("spans-group");
    let client_id = unique_topic("spans-client");
    let client = client(&client_id).await;
    create_topic(&client, &topic, 1).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    let ctx = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .unwrap()
        .with_state("congo=t61rcWkgMzE");
    let mut deliveries = Vec::new();
    for i in 0..5 {
        let mut r = Record::new(&topic).partition(0).value(format!("v{i}"));
        if i == 2 {
            ctx.inject(&mut r);
        }
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        within("delivery", d).await.unwrap();
    }

    let consumer = Consumer::builder(&client)
        .group_id(&group)
        .offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).await.unwrap();
    let mut extracted = Vec::new();
    for _ in 0..5 {
        let record = within("recv", consumer.recv()).await.unwrap();
        let span = consumer.process_span(&record);
        let _entered = span.enter();
        extracted.push(TraceContext::extract(&record));
    }
    assert_eq!(
        extracted[2].as_ref(),
        Some(&ctx),
        "traceparent and tracestate"
    );
    assert!(
        extracted
            .iter()
            .enumerate()
            .all(|(i, e)| i == 2 || e.is_none()),
        "{extracted:?}"
    );
    consumer.close().await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();

    let spans = spans().lock().unwrap().clone();
    let send = find(&spans, "send", &topic);
    assert_eq!(field(send, "messaging.system"), "kafka");
    assert_eq!(field(send, "messaging.operation.name"), "send");
    assert_eq!(field(send, "messaging.operation.type"), "send");
    assert_eq!(field(send, "messaging.client.id"), client_id);
    assert_eq!(field(send, "otel.kind"), "producer");
    assert_eq!(field(send, "otel.name"), format!("send {topic}"));
    let sent: u64 = spans
        .iter()
        .filter(|s| s.name == "send" && s.fields.get("messaging.destination.name") == Some(&topic))
        .map(|s| {
            field(s, "messaging.batch.message_count")
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(sent, 5, "every record in some send span");

    let receive = find(&spans, "receive", &topic);
    assert_eq!(field(receive, "messaging.system"), "kafka");
    assert_eq!(field(receive, "messaging.operation.type"), "receive");
    assert_eq!(field(receive, "messaging.destination.partition.id"), "0");
    assert_eq!(field(receive, "messaging.consumer.group.name"), group);
    assert_eq!(field(receive, "messaging.client.id"), client_id);
    assert_eq!(field(receive, "messaging.kafka.offset"), "0");

    let processed: Vec<&str> = spans
        .iter()
        .filter(|s| {
            s.name == "process" && s.fields.get("messaging.destination.name") == Some(&topic)
        })
        .map(|s| field(s, "messaging.kafka.offset"))
        .collect();
    assert_eq!(processed, ["0", "1", "2", "3", "4"]);
    let process = find(&spans, "process", &topic);
    assert_eq!(field(process, "messaging.operation.type"), "process");
    assert_eq!(field(process, "messaging.consumer.group.name"), group);
    assert_eq!(field(process, "messaging.destination.partition.id"), "0");
}
