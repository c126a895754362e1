//! Bad input (issue 5): every row of the table fails with a typed error that names the culprit,
//! returns promptly, and loses nothing else (neighbouring records are delivered, the client
//! keeps working afterwards).
//!
//! Brokers: Tansu (or `KAFKA_BOOTSTRAP`) where a real broker's answer matters, librdkafka's mock
//! cluster where fault injection is needed, and tokio listeners for peers that are not Kafka.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::peer::read_all;
use common::{create_topic, mock_cluster, unique_topic, within, Broker};
use ferrokafka::{
    Client, ClientBuilder, Consumer, ConsumerBuilder, Error, KafkaCode, NewTopic, Producer,
    ProducerBuilder, Record,
};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Short enough that a row that waits out a timeout stays quick, long enough for a loaded
/// 2-core machine to finish a loopback connect.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// What "promptly" means for a failure that needs no timeout to elapse.
const PROMPT: Duration = Duration::from_secs(3);

/// The innermost error: `NoBrokerAvailable` keeps the last failure, `Disconnected` its cause.
fn root(e: &Error) -> &Error {
    match e {
        Error::NoBrokerAvailable {
            last: Some(last), ..
        } => root(last),
        Error::Disconnected { cause, .. } => root(cause),
        other => other,
    }
}

/// A client builder whose failures come back quickly.
fn quick(bootstrap: &str) -> ClientBuilder {
    Client::builder()
        .bootstrap_servers(bootstrap)
        .connect_timeout(CONNECT_TIMEOUT)
        .request_timeout(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Builds a client that must fail; returns the error and how long it took.
async fn build_err(builder: ClientBuilder) -> (Error, Duration) {
    let start = Instant::now();
    let e = within("failing build", builder.build())
        .await
        .expect_err("build must fail");
    (e, start.elapsed())
}

/// A closed loopback port: bound, then released.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

/// A TCP listener that is not a Kafka broker: for every connection it reads the client's
/// first request frame (as any server would) and writes `answer(request)`; with `hold` it then
/// keeps the socket open, so the client's error can only come from the bytes it got, not from
/// an EOF. Stopped when dropped.
/// How a fake peer answers a request frame (given without its length prefix).
type Answer = fn(&[u8]) -> Vec<u8>;

/// Whether the innermost error is the one a case expects.
type Expect = fn(&Error) -> bool;

struct FakePeer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakePeer {
    async fn start(answer: Answer, hold: bool) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut s, _)) = listener.accept().await {
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).await.is_err() {
                    continue;
                }
                let mut req = vec![0u8; u32::from_be_bytes(len).min(1 << 20) as usize];
                if s.read_exact(&mut req).await.is_err() {
                    continue;
                }
                let _ = s.write_all(&answer(&req)).await;
                if hold {
                    open.push(s);
                }
            }
        });
        FakePeer { addr, task }
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback address whose accept queue is full: the kernel drops further SYNs, so a connect
/// neither succeeds nor is refused (a blackhole that does not depend on the network). Keep the
/// returned guard alive while it is used.
async fn blackhole() -> (SocketAddr, (tokio::net::TcpListener, Vec<TcpStream>)) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => queued.push(s),
            Ok(Err(e)) => panic!("filling the accept queue of {addr}: {e}"),
            Err(_) => break,
        }
        assert!(queued.len() < 64, "the accept queue of {addr} never filled");
    }
    (addr, (listener, queued))
}

#[tokio::test]
async fn empty_bootstrap_list_fails_at_build() {
    for builder in [
        Client::builder(),
        Client::builder().bootstrap_servers(""),
        Client::builder().bootstrap_servers(" , "),
    ] {
        let (e, took) = build_err(builder).await;
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains("bootstrap.servers is empty"), "{e}");
        assert!(!e.is_retriable(), "{e}");
        assert!(took < PROMPT, "{took:?}");
    }
    // The same through the producer's and consumer's property paths.
    let e = ProducerBuilder::from_properties([("bootstrap.servers", "")])
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(_)) && e.to_string().contains("bootstrap.servers"),
        "{e}"
    );
    let e = ConsumerBuilder::from_properties([("group.id", "g")])
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(_)) && e.to_string().contains("bootstrap.servers"),
        "{e}"
    );
}

#[tokio::test]
async fn unparsable_bootstrap_list_names_the_bad_entry() {
    for (value, culprit) in [
        ("nonsense", "`nonsense` has no port"),
        ("host:notaport", "invalid port `notaport`"),
        // A good entry does not hide a bad one.
        ("127.0.0.1:9092,host:notaport", "invalid port `notaport`"),
        ("host:0", "invalid port `0`"),
        ("host:70000", "invalid port `70000`"),
        (":9092", "has no host"),
    ] {
        let (e, took) = build_err(Client::builder().bootstrap_servers(value)).await;
        assert!(matches!(e, Error::Config(_)), "{value}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains("bootstrap.servers") && msg.contains(culprit),
            "{value}: {msg}"
        );
        // Nothing was dialled: a parse error is immediate.
        assert!(took < PROMPT, "{value}: {took:?}");
    }
}

#[tokio::test]
async fn a_closed_port_is_refused_at_once() {
    let addr = closed_port();
    let (e, took) = build_err(quick(&addr)).await;
    let Error::NoBrokerAvailable { tried, .. } = &e else {
        panic!("expected NoBrokerAvailable, got {e}");
    };
    assert!(tried.contains(&addr), "{e}");
    assert!(e.is_retriable(), "{e}");
    match root(&e) {
        Error::Connect { broker, source } => {
            assert!(broker.contains(&addr), "{e}");
            assert_eq!(source.kind(), ErrorKind::ConnectionRefused, "{e}");
        }
        other => panic!("expected a Connect error, got {other}"),
    }
    assert!(took < PROMPT, "{took:?}");
}

#[tokio::test]
async fn a_blackholed_broker_fails_within_the_connect_timeout() {
    let (addr, _guard) = blackhole().await;
    let addr = addr.to_string();
    let (e, took) = build_err(quick(&addr)).await;
    assert!(matches!(e, Error::NoBrokerAvailable { .. }), "{e}");
    match root(&e) {
        Error::Connect { broker, source } => {
            assert!(broker.contains(&addr), "{e}");
            assert_eq!(source.kind(), ErrorKind::TimedOut, "{e}");
            assert!(source.to_string().contains("500 ms"), "{e}");
        }
        other => panic!("expected a Connect timeout, got {other}"),
    }
    assert!(
        took >= CONNECT_TIMEOUT,
        "failed before the timeout: {took:?}"
    );
    assert!(took < CONNECT_TIMEOUT + PROMPT, "{took:?}");
}

#[tokio::test]
async fn an_unroutable_address_fails_within_the_connect_timeout() {
    // 10.255.255.1 is a blackhole on most networks (connect times out). Sandboxes with a
    // transparent proxy answer it with HTTP instead, so the cause may differ; what must hold
    // everywhere is a NoBrokerAvailable naming the address, bounded by the timeouts
    // (TCP connect + ApiVersions handshake, each `socket.connection.setup.timeout.ms`).
    let addr = "10.255.255.1:9092";
    let (e, took) = build_err(quick(addr)).await;
    let Error::NoBrokerAvailable { tried, last } = &e else {
        panic!("expected NoBrokerAvailable, got {e}");
    };
    assert!(tried.contains(addr), "{e}");
    assert!(last.is_some(), "{e}");
    assert!(
        matches!(
            root(&e),
            Error::Connect { .. }
                | Error::Timeout { .. }
                | Error::FrameTooLarge { .. }
                | Error::Protocol(_)
                | Error::Io(_)
        ),
        "{e}"
    );
    assert!(took < 2 * CONNECT_TIMEOUT + PROMPT, "{took:?}");
}

#[tokio::test]
async fn sending_to_an_unknown_topic_without_auto_creation_fails_after_max_block() {
    let broker = Broker::start();
    let client = within(
        "client",
        quick(&broker.bootstrap())
            .allow_auto_create_topics(false)
            .build(),
    )
    .await
    .unwrap();
    let max_block = Duration::from_millis(1500);
    let producer = Producer::builder(&client)
        .max_block(max_block)
        .build()
        .await
        .unwrap();
    let missing = unique_topic("missing");
    let start = Instant::now();
    let e = within("send", producer.send(Record::new(&missing).value("x")))
        .await
        .unwrap_err();
    let took = start.elapsed();
    // ferrokafka waits max.block.ms for the topic to appear, then reports the broker's last
    // answer (not a bare timeout), naming the topic.
    assert_eq!(
        e.kafka_code(),
        Some(KafkaCode::UnknownTopicOrPartition),
        "{e}"
    );
    assert!(e.to_string().contains(&missing), "{e}");
    assert!(took >= max_block, "gave up before max.block.ms: {took:?}");
    assert!(took < max_block + PROMPT, "{took:?}");
    // Asking did not create it.
    let meta = within("metadata", client.metadata(&[&missing]))
        .await
        .unwrap();
    assert_eq!(
        meta.topic(&missing).and_then(|t| t.error),
        Some(KafkaCode::UnknownTopicOrPartition)
    );
    // The producer still works for a topic that exists.
    writes_to_a_new_topic(client, producer, "exists").await;
}

#[tokio::test]
async fn invalid_topic_names_fail_on_create_and_send() {
    let broker = Broker::start();
    let client = within("client", quick(&broker.bootstrap()).build())
        .await
        .unwrap();
    let producer = Producer::builder(&client)
        .max_block(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let long = "x".repeat(250);
    for (name, why) in [
        ("bad topic!", "character ` `"),
        (long.as_str(), "longer than 249 characters"),
    ] {
        // Create: rejected before anything is sent.
        let e = within(
            "create",
            client.admin().create_topics(&[NewTopic::new(name, 1, 1)]),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(name) && msg.contains(why), "{msg}");
        let start = Instant::now();
        let e = within("send", producer.send(Record::new(name).value("x")))
            .await
            .unwrap_err();
        // Send: also rejected by the client itself, before any metadata request (brokers
        // that auto-create topics would otherwise create it).
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
        assert!(
            e.to_string().contains(name) && e.to_string().contains(why),
            "{e}"
        );
        assert!(!e.is_retriable(), "{e}");
        assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
    }
    // Nothing else is affected: a valid topic is created and written.
    writes_to_a_new_topic(client, producer, "valid").await;
}

/// Creates a topic named after `prefix`, checks that `producer` writes its first record at
/// offset 0, then closes the producer and the client.
async fn writes_to_a_new_topic(client: Client, producer: Producer, prefix: &str) {
    let topic = unique_topic(prefix);
    create_topic(&client, &topic, 1).await;
    let d = producer
        .send(Record::new(&topic).value("ok"))
        .await
        .unwrap();
    assert_eq!(within("delivery", d).await.unwrap().offset, 0);
    producer.close(Duration::from_secs(10)).await.unwrap();
    client.close().await;
}

/// Values of partition 0 of `topic` as librdkafka reads them back, in offset order.
fn log_values(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    let mut read = read_all(bootstrap, topic, 1, expected, Duration::from_secs(30));
    read.sort_by_key(|r| r.offset);
    read.into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_record_over_max_request_size_fails_alone() {
    let mock = mock_cluster(1);
    let topic = unique_topic("max-request");
    mock.create_topic(&topic, 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let client = within("client", quick(&bootstrap).build()).await.unwrap();
    let producer = Producer::builder(&client)
        .max_request_size(10_000)
        // Long enough that the neighbours share batches with where the big record would go.
        .linger(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..3 {
        let v = format!("before-{i}");
        pending.push(producer.send(Record::new(&topic).value(v)).await.unwrap());
    }
    let e = producer
        .send(Record::new(&topic).value(vec![7u8; 20_000]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("max.request.size (10000)") && msg.contains("larger"),
        "{msg}"
    );
    for i in 0..3 {
        let v = format!("after-{i}");
        pending.push(producer.send(Record::new(&topic).value(v)).await.unwrap());
    }
    for (i, d) in pending.into_iter().enumerate() {
        assert_eq!(within("delivery", d).await.unwrap().offset, i as i64);
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        log_values(&bootstrap, &topic, 6),
        ["before-0", "before-1", "before-2", "after-0", "after-1", "after-2"]
    );
    client.close().await;
}

#[tokio::test]
async fn message_too_large_from_the_broker_fails_that_record_only() {
    // Neither test broker enforces a size limit: Tansu 0.6 accepted a 100 KB record into a
    // topic created with max.message.bytes=2000, and librdkafka's mock accepted 4 MB (it only
    // drops requests over its receive.message.max.bytes). So the broker's answer is injected:
    // the mock answers the next Produce request with MESSAGE_TOO_LARGE (10), and the
    // oversized record is sent alone so that request carries it and nothing else.
    let mock = mock_cluster(1);
    let topic = unique_topic("too-large");
    mock.create_topic(&topic, 1, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let client = within("client", quick(&bootstrap).build()).await.unwrap();
    let producer = Producer::builder(&client)
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let send_all = |prefix: &'static str| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let mut pending = Vec::new();
            for i in 0..3 {
                let r = Record::new(&topic).value(format!("{prefix}-{i}"));
                pending.push(producer.send(r).await.unwrap());
            }
            let mut offsets = Vec::new();
            for d in pending {
                offsets.push(within("delivery", d).await.unwrap().offset);
            }
            offsets
        }
    };
    assert_eq!(send_all("before").await, [0, 1, 2]);
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let big = producer
        .send(Record::new(&topic).value(vec![7u8; 100_000]))
        .await
        .unwrap();
    let start = Instant::now();
    let e = within("big delivery", big).await.unwrap_err();
    // Not retriable: it fails at once instead of being retried until delivery.timeout.ms.
    assert_eq!(e.kafka_code(), Some(KafkaCode::MessageTooLarge), "{e}");
    assert!(!e.is_retriable(), "{e}");
    assert!(e.to_string().contains(&format!("{topic}-0")), "{e}");
    assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
    // The producer goes on; the failed record took no offset.
    assert_eq!(send_all("after").await, [3, 4, 5]);
    producer.close(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        log_values(&bootstrap, &topic, 6),
        ["before-0", "before-1", "before-2", "after-0", "after-1", "after-2"]
    );
    client.close().await;
}

#[tokio::test]
async fn absurd_config_values_fail_at_build_naming_the_key() {
    // A closed port as bootstrap: if any of these got past validation, build would fail with
    // NoBrokerAvailable instead of Config.
    let dead = closed_port();
    let producer_rows = [
        ("linger.ms", "-1", "linger.ms: -1 is out of range"),
        ("batch.size", "0", "batch.size: 0 is out of range"),
        (
            "request.timeout.ms",
            "abc",
            "request.timeout.ms: `abc` is not an integer",
        ),
    ];
    for (key, value, expected) in producer_rows {
        let e =
            ProducerBuilder::from_properties([("bootstrap.servers", dead.as_str()), (key, value)])
                .build()
                .await
                .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{key}={value}: {e}");
        assert!(e.to_string().contains(expected), "{key}={value}: {e}");
    }
    let (e, _) = build_err(quick(&dead).set("request.timeout.ms", "abc")).await;
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(e.to_string().contains("request.timeout.ms"), "{e}");

    let consumer_rows: [(&[(&str, &str)], &str); 3] = [
        (
            &[("session.timeout.ms", "0")],
            "session.timeout.ms: 0 is out of range",
        ),
        (&[("request.timeout.ms", "abc")], "request.timeout.ms"),
        (
            &[
                ("fetch.buffer.bytes", "1048576"),
                ("fetch.max.bytes", "2097152"),
            ],
            "fetch.max.bytes (2097152) is larger than fetch.buffer.bytes (1048576)",
        ),
    ];
    for (props, expected) in consumer_rows {
        let mut all = vec![("bootstrap.servers", dead.as_str()), ("group.id", "g")];
        all.extend_from_slice(props);
        let e = ConsumerBuilder::from_properties(all)
            .build()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{props:?}: {e}");
        assert!(e.to_string().contains(expected), "{props:?}: {e}");
    }

    // On a working client too: the bad value is reported, the client is unharmed.
    let mock = mock_cluster(1);
    let client = within("client", quick(&mock.bootstrap_servers()).build())
        .await
        .unwrap();
    let e = Producer::builder(&client)
        .set("linger.ms", "-1")
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("linger.ms"), "{e}");
    let e = Consumer::builder(&client)
        .set("session.timeout.ms", "0")
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("session.timeout.ms"), "{e}");
    within("metadata", client.metadata(&[])).await.unwrap();
    client.close().await;
}

/// Seeded xorshift bytes: "random" garbage that is the same on every run.
fn garbage(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn a_peer_speaking_garbage_gives_a_typed_error() {
    // Exact cases first: each rejection path of the reader, and an undecodable body.
    let http: Answer = |_| b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".to_vec();
    let mismatched: Answer = |_| {
        let mut v = 12u32.to_be_bytes().to_vec();
        v.extend_from_slice(&0x7fab_cdefu32.to_be_bytes());
        v.extend_from_slice(&garbage(1, 8));
        v
    };
    let too_short: Answer = |_| vec![0, 0, 0, 2, 9, 9];
    // The right correlation id (echoed from the request), then a body too short for
    // ApiVersions.
    let undecodable: Answer = |req| {
        let mut body = req[4..8].to_vec();
        body.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0x9a]);
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend(body);
        v
    };
    // An ApiVersions v4 body whose compact array claims 2^32 - 2 entries in 15 bytes:
    // kafka-protocol 0.18 reserves the claimed count before decoding (137 GB, a process abort)
    // unless the bounds pre-pass refuses the frame first.
    let lying_array: Answer = |req| {
        let mut body = req[4..8].to_vec();
        body.extend_from_slice(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend(body);
        v
    };
    let cases: [(&str, Answer, Expect); 5] = [
        ("http", http, |e| {
            // "HTTP" read as a length: 0x48545450 bytes, over receive.message.max.bytes.
            matches!(
                e,
                Error::FrameTooLarge {
                    size: 0x4854_5450,
                    limit: 100_000_512
                }
            )
        }),
        (
            "mismatched",
            mismatched,
            |e| matches!(e, Error::Protocol(m) if m.contains("correlation id 2141965807 does not match")),
        ),
        (
            "too short",
            too_short,
            |e| matches!(e, Error::Protocol(m) if m.contains("2 bytes is too short")),
        ),
        (
            "undecodable",
            undecodable,
            |e| matches!(e, Error::Protocol(m) if m.contains("ApiVersions v4 response")),
        ),
        (
            "lying array",
            lying_array,
            |e| matches!(e, Error::Protocol(m) if m.contains("claims 4294967294 elements")),
        ),
    ];
    let mock = mock_cluster(1);
    for (what, answer, expected) in cases {
        let peer = FakePeer::start(answer, true).await;
        let (e, took) = build_err(quick(&peer.addr())).await;
        assert!(matches!(e, Error::NoBrokerAvailable { .. }), "{what}: {e}");
        assert!(expected(root(&e)), "{what}: {e}");
        assert!(
            e.to_string().contains(&peer.addr()),
            "{what}: names the peer: {e}"
        );
        assert!(took < PROMPT, "{what}: {took:?}");
        // The client goes on to the next bootstrap address and works.
        let both = format!("{},{}", peer.addr(), mock.bootstrap_servers());
        let client = within(what, quick(&both).build()).await.unwrap();
        within(what, client.metadata(&[])).await.unwrap();
        client.close().await;
    }
    // Seeded random bytes, written and then the socket closed: depending on the first four
    // bytes (read as a length) the frame is too large, too short, cut off, or has a wrong
    // correlation id. Every one is a typed error, promptly.
    fn random(_: &[u8]) -> Vec<u8> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEED: AtomicU64 = AtomicU64::new(1);
        garbage(SEED.fetch_add(1, Ordering::Relaxed), 64)
    }
    let peer = FakePeer::start(random, false).await;
    for attempt in 0..16 {
        let (e, took) = build_err(quick(&peer.addr())).await;
        assert!(
            matches!(
                root(&e),
                Error::FrameTooLarge { .. } | Error::Protocol(_) | Error::Io(_)
            ),
            "attempt {attempt}: {e}"
        );
        assert!(took < PROMPT, "attempt {attempt}: {took:?}");
    }
}

#[tokio::test]
async fn a_frame_claiming_2_gb_is_rejected_before_reading_it() {
    // The peer sends only the length 0x7fffffff and keeps the socket open: a client that tried
    // to allocate or read the body would wait for bytes that never come.
    let peer = FakePeer::start(|_| 0x7fff_ffffu32.to_be_bytes().to_vec(), true).await;
    for (limit, builder) in [
        (100_000_512, quick(&peer.addr())),
        (
            1_000_000,
            quick(&peer.addr()).set("receive.message.max.bytes", "1000000"),
        ),
    ] {
        let (e, took) = build_err(builder).await;
        assert!(matches!(e, Error::NoBrokerAvailable { .. }), "{e}");
        match root(&e) {
            Error::FrameTooLarge { size, limit: l } => {
                assert_eq!(*size, 0x7fff_ffff, "{e}");
                assert_eq!(*l, limit, "{e}");
            }
            other => panic!("expected FrameTooLarge, got {other}"),
        }
        assert!(
            e.to_string().contains("receive.message.max.bytes"),
            "names the setting: {e}"
        );
        assert!(took < PROMPT, "{took:?}");
    }
}
