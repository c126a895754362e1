//! Tests of the integration-test harness itself (tests/common): they need no library code,
//! only the Tansu binary and librdkafka's mock cluster.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use common::{mock_cluster, unique_topic, within, Tansu};

/// Sends a hand-made ApiVersions v0 request and returns the API keys the peer advertises,
/// so a test knows a Kafka broker answers on `addr`, not just any listener.
fn api_keys(addr: &str) -> Vec<i16> {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let correlation_id: i32 = 0x0BAD_CAFE;
    let client_id = b"harness";
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // version 0
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    stream.write_all(&request).unwrap();

    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).unwrap();
    let i16_at = |at: usize| i16::from_be_bytes([response[at], response[at + 1]]);
    let i32_at = |at: usize| i32::from_be_bytes(response[at..at + 4].try_into().unwrap());
    assert_eq!(i32_at(0), correlation_id, "correlation id echoed by {addr}");
    assert_eq!(i16_at(4), 0, "ApiVersions error code from {addr}");
    let count = i32_at(6) as usize;
    assert_eq!(response.len(), 10 + count * 6, "ApiVersions v0 body size");
    (0..count).map(|i| i16_at(10 + i * 6)).collect()
}

#[test]
fn tansu_answers_kafka_and_restarts_on_the_same_port_without_its_data() {
    let mut tansu = Tansu::start();
    let port = tansu.port();
    assert_ne!(port, 0);
    assert_eq!(tansu.bootstrap(), format!("127.0.0.1:{port}"));
    let keys = api_keys(&tansu.bootstrap());
    for key in [0, 1, 3, 18, 19] {
        assert!(
            keys.contains(&key),
            "Tansu advertises API key {key}: {keys:?}"
        );
    }
    assert!(tansu.log_path().ends_with(format!("tansu-{port}.log")));
    assert!(tansu.log_path().is_file());

    // A topic created through the CLI exists: creating it again fails loudly.
    let topic = unique_topic("harness");
    tansu.create_topic(&topic, 2);
    let again = catch_unwind(AssertUnwindSafe(|| tansu.create_topic(&topic, 2)));
    let message = match again {
        Ok(()) => panic!("creating {topic} twice succeeded"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(message.contains("already exists"), "{message}");

    tansu.kill();
    assert!(
        TcpStream::connect(tansu.bootstrap()).is_err(),
        "port {port} still open after kill"
    );

    tansu.restart();
    assert_eq!(tansu.port(), port, "restart keeps the port");
    assert!(api_keys(&tansu.bootstrap()).contains(&18));
    // Memory storage: the restarted broker has forgotten the topic.
    tansu.create_topic(&topic, 2);

    // Restart also works while the broker is running.
    tansu.restart();
    assert!(api_keys(&tansu.bootstrap()).contains(&18));
}

#[test]
fn two_tansu_brokers_get_different_ports_and_drop_stops_them() {
    let a = Tansu::start();
    let b = Tansu::start();
    assert_ne!(a.port(), b.port());
    let b_addr = b.bootstrap();
    drop(b);
    assert!(
        TcpStream::connect(&b_addr).is_err(),
        "{b_addr} still open after drop"
    );
    assert!(api_keys(&a.bootstrap()).contains(&18));
}

#[test]
fn mock_cluster_of_three_lists_three_kafka_brokers() {
    let cluster = mock_cluster(3);
    let bootstrap = cluster.bootstrap_servers();
    let addrs: Vec<&str> = bootstrap.split(',').collect();
    assert_eq!(addrs.len(), 3, "bootstrap {bootstrap:?}");
    let mut distinct = addrs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "bootstrap {bootstrap:?}");
    for addr in addrs {
        assert!(api_keys(addr).contains(&3), "{addr} advertises Metadata");
    }
}

#[test]
fn unique_topics_differ_and_use_only_valid_characters() {
    let a = unique_topic("orders");
    let b = unique_topic("orders");
    assert_ne!(a, b);
    assert!(a.starts_with("orders-"), "{a}");
    let odd = unique_topic("spaces and/slashes:ü");
    let long = unique_topic(&"x".repeat(400));
    for name in [&a, &b, &odd, &long] {
        assert!(!name.is_empty() && name.len() <= 249, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "{name}"
        );
    }
}

#[tokio::test]
async fn within_returns_the_output() {
    assert_eq!(within("ready value", async { 42 }).await, 42);
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "timed out after 60s: a future that never completes")]
async fn within_panics_naming_what_timed_out() {
    within(
        "a future that never completes",
        std::future::pending::<()>(),
    )
    .await;
}

#[test]
fn the_shared_kafka_node_is_apache_kafka_4_with_kraft_and_its_own_log() {
    let kafka = common::kafka();
    let bootstrap = kafka.bootstrap();
    assert_eq!(kafka.node_ids(), vec![1]);
    let keys = api_keys(&bootstrap);
    // ConsumerGroupHeartbeat (68) and ShareFetch (78) exist only on Kafka 4.x brokers; Tansu
    // and librdkafka's mock lack ShareFetch.
    for key in [0, 1, 3, 18, 68, 78] {
        assert!(
            keys.contains(&key),
            "Kafka advertises API key {key}: {keys:?}"
        );
    }
    let log = common::kafka::log_tail(kafka.log_path(1), 1 << 20);
    assert!(log.contains("Kafka Server started"), "{log}");
    // Shared: a second call hands out the same node.
    assert_eq!(common::kafka().bootstrap(), bootstrap);
}

#[test]
fn a_kafka_node_can_be_killed_and_restarted_with_its_data() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let mut cluster = common::kafka_cluster(1);
    let bootstrap = cluster.bootstrap();
    let topic = unique_topic("harness-kafka");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    producer
        .send(BaseRecord::<(), str>::to(&topic).payload("kept"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    drop(producer);

    cluster.kill(1);
    assert!(!cluster.is_running(1));
    assert!(
        TcpStream::connect(&bootstrap).is_err(),
        "{bootstrap} still open after kill"
    );
    cluster.restart(1);
    common::wait_for_brokers(&cluster, 1);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(30))
        .unwrap();
    assert_eq!((low, high), (0, 1), "the record survived the restart");
}
