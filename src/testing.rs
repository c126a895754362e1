//! Test support: a scripted broker peer over `tokio::io::duplex`.
//!
//! Unit tests drive the client against this peer to produce exactly the bytes a test needs:
//! well-formed Kafka responses (through kafka-protocol's encoders, as a broker would) or
//! deliberately broken frames.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{
    decode_request_header_from_buffer, Decodable, Encodable, HeaderVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A request as the peer received it.
pub(crate) struct Received {
    pub(crate) header: RequestHeader,
    pub(crate) body: Bytes,
}

impl Received {
    /// Decodes the body as `R` at the request's version.
    pub(crate) fn decode<R: Decodable>(&self) -> R {
        R::decode(&mut self.body.clone(), self.header.request_api_version).unwrap()
    }

    /// The API key and version of the request.
    pub(crate) fn api(&self) -> (ApiKey, i16) {
        let key = ApiKey::try_from(self.header.request_api_key).unwrap();
        (key, self.header.request_api_version)
    }

    /// A complete response frame answering this request with `body`, at the request's version.
    pub(crate) fn answer<M: Encodable + HeaderVersion>(&self, body: &M) -> Bytes {
        encode_response(&self.header, body, self.header.request_api_version)
    }
}

/// One end of a duplex pipe playing the broker.
pub(crate) struct FakePeer {
    io: DuplexStream,
}

/// API ranges the fake broker advertises by default: a modern broker without DescribeCluster.
pub(crate) const DEFAULT_RANGES: &[(i16, i16, i16)] = &[
    (0, 3, 11), // Produce
    (1, 4, 16), // Fetch
    (2, 1, 8),  // ListOffsets
    (3, 0, 12), // Metadata
    (8, 2, 9),  // OffsetCommit
    (9, 1, 9),  // OffsetFetch
    (10, 0, 6), // FindCoordinator
    (11, 0, 9), // JoinGroup
    (12, 0, 4), // Heartbeat
    (13, 0, 5), // LeaveGroup
    (14, 0, 5), // SyncGroup
    (18, 0, 4), // ApiVersions
    (19, 2, 7), // CreateTopics
    (20, 1, 6), // DeleteTopics
    (22, 0, 5), // InitProducerId
];

impl FakePeer {
    pub(crate) fn new(io: DuplexStream) -> FakePeer {
        FakePeer { io }
    }

    /// Reads one complete request frame. Panics if the client sent a malformed one.
    pub(crate) async fn read_request(&mut self) -> Received {
        let len = self
            .io
            .read_u32()
            .await
            .expect("client closed the connection") as usize;
        let mut buf = vec![0u8; len];
        self.io
            .read_exact(&mut buf)
            .await
            .expect("client sent half a frame");
        let mut bytes = Bytes::from(buf);
        let header = decode_request_header_from_buffer(&mut bytes).expect("bad request header");
        Received {
            header,
            body: bytes,
        }
    }

    /// Answers `header`'s request with `body`, encoded at the request's version.
    pub(crate) async fn respond<M: Encodable + HeaderVersion>(
        &mut self,
        header: &RequestHeader,
        body: &M,
    ) {
        self.respond_at(header, body, header.request_api_version)
            .await
    }

    /// Answers with `body` encoded at `version` (ApiVersions error answers use v0).
    pub(crate) async fn respond_at<M: Encodable + HeaderVersion>(
        &mut self,
        header: &RequestHeader,
        body: &M,
        version: i16,
    ) {
        let frame = encode_response(header, body, version);
        self.write_raw(&frame).await;
    }

    /// Answers an ApiVersions request with the given `(key, min, max)` ranges.
    pub(crate) async fn respond_api_versions(
        &mut self,
        header: &RequestHeader,
        ranges: &[(i16, i16, i16)],
    ) {
        let resp = api_versions_response(ranges);
        self.respond(header, &resp).await;
    }

    /// Reads the handshake's ApiVersions request and answers it with [`DEFAULT_RANGES`].
    pub(crate) async fn answer_api_versions(&mut self) {
        let req = self.read_request().await;
        assert_eq!(req.header.request_api_key, ApiKey::ApiVersions as i16);
        self.respond_api_versions(&req.header, DEFAULT_RANGES).await;
    }

    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) {
        // The client may already have hung up in tests that poison the connection.
        let _ = self.io.write_all(bytes).await;
        let _ = self.io.flush().await;
    }
}

pub(crate) fn api_versions_response(ranges: &[(i16, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|&(k, min, max)| {
                ApiVersion::default()
                    .with_api_key(k)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// Encodes a complete response frame for `header`'s request.
pub(crate) fn encode_response<M: Encodable + HeaderVersion>(
    header: &RequestHeader,
    body: &M,
    version: i16,
) -> Bytes {
    let api = ApiKey::try_from(header.request_api_key).unwrap();
    let hv = api.response_header_version(header.request_api_version);
    let mut buf = BytesMut::new();
    buf.put_u32(0);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, hv)
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    let mut out = buf.freeze();
    // Sanity: a frame always starts with its length.
    assert_eq!((&out[..4]).get_u32() as usize, out.len() - 4);
    out.advance(0);
    out
}

/// The answer to an OffsetCommit: every partition asked for, with `code(topic, partition)`.
pub(crate) fn offset_commit_answer(r: &Received, code: impl Fn(&str, i32) -> i16) -> Bytes {
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
    let req: OffsetCommitRequest = r.decode();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code(t.name.0.as_str(), p.partition_index))
                        })
                        .collect(),
                )
        })
        .collect();
    r.answer(&OffsetCommitResponse::default().with_topics(topics))
}

/// Answers a request [`FakeCluster`] does not answer itself: `Some(frame)` (see
/// [`Received::answer`]) or `None` to leave it unanswered.
pub(crate) type Handler = Box<dyn Fn(&Received) -> Option<Bytes> + Send + Sync>;

/// A fake cluster that answers ApiVersions and Metadata by itself, for pool and client tests;
/// other APIs go to its [`Handler`], when a test installs one.
#[derive(Default)]
pub(crate) struct FakeCluster {
    /// The Metadata response every Metadata request gets.
    pub(crate) metadata: std::sync::Mutex<kafka_protocol::messages::MetadataResponse>,
    /// Requests seen, by API key.
    pub(crate) seen: std::sync::Mutex<std::collections::HashMap<i16, usize>>,
    /// API ranges advertised instead of [`DEFAULT_RANGES`].
    pub(crate) ranges: std::sync::Mutex<Option<Vec<(i16, i16, i16)>>>,
    /// Answers every other API.
    pub(crate) handler: std::sync::Mutex<Option<Handler>>,
}

impl FakeCluster {
    pub(crate) fn count(&self, api: ApiKey) -> usize {
        self.seen
            .lock()
            .unwrap()
            .get(&(api as i16))
            .copied()
            .unwrap_or(0)
    }

    /// A cluster of brokers `ids` at `fake:<id>` with one topic `t` of one partition led by
    /// the first broker.
    pub(crate) fn with_brokers(ids: &[i32]) -> std::sync::Arc<FakeCluster> {
        use kafka_protocol::messages::metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        };
        use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let resp = MetadataResponse::default()
            .with_cluster_id(Some(StrBytes::from_static_str("fake-cluster")))
            .with_controller_id(BrokerId(ids[0]))
            .with_brokers(
                ids.iter()
                    .map(|&id| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(id))
                            .with_host(StrBytes::from_static_str("fake"))
                            .with_port(id)
                    })
                    .collect(),
            )
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                .with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(ids[0]))
                    .with_replica_nodes(vec![BrokerId(ids[0])])
                    .with_isr_nodes(vec![BrokerId(ids[0])])])]);
        std::sync::Arc::new(FakeCluster {
            metadata: std::sync::Mutex::new(resp),
            ..Default::default()
        })
    }

    /// A client builder bootstrapping from `b:1` through a connector on which `b:1` and
    /// every broker's `fake:<id>` (as in the metadata now) are this cluster.
    pub(crate) fn client_builder(self: &std::sync::Arc<Self>) -> crate::client::ClientBuilder {
        let connector = std::sync::Arc::new(FakeConnector::default());
        connector.set("fake:1", Behaviour::Serve(self.clone()));
        for broker in &self.metadata.lock().unwrap().brokers {
            let addr = format!("{}:{}", broker.host, broker.port);
            connector.set(&addr, Behaviour::Serve(self.clone()));
        }
        connector.set("b:1", Behaviour::Serve(self.clone()));
        crate::client::Client::builder()
            .bootstrap_servers("b:1")
            .connector(connector)
    }

    /// Serves one client connection until it closes.
    pub(crate) async fn serve(self: std::sync::Arc<Self>, mut peer: FakePeer) {
        loop {
            let len = match peer.io.read_u32().await {
                Ok(n) => n as usize,
                Err(_) => return,
            };
            let mut buf = vec![0u8; len];
            if peer.io.read_exact(&mut buf).await.is_err() {
                return;
            }
            let mut bytes = Bytes::from(buf);
            let header = decode_request_header_from_buffer(&mut bytes).unwrap();
            *self
                .seen
                .lock()
                .unwrap()
                .entry(header.request_api_key)
                .or_default() += 1;
            match ApiKey::try_from(header.request_api_key).unwrap() {
                ApiKey::ApiVersions => {
                    let ranges = self.ranges.lock().unwrap().clone();
                    let ranges = ranges.as_deref().unwrap_or(DEFAULT_RANGES);
                    peer.respond_api_versions(&header, ranges).await
                }
                ApiKey::Metadata => {
                    let req = Received {
                        header: header.clone(),
                        body: bytes,
                    }
                    .decode::<kafka_protocol::messages::MetadataRequest>();
                    let mut resp = self.metadata.lock().unwrap().clone();
                    // Like a broker: only the topics asked for (null means all).
                    if let Some(asked) = req.topics {
                        resp.topics
                            .retain(|t| asked.iter().any(|a| a.name == t.name));
                    }
                    peer.respond(&header, &resp).await
                }
                other => {
                    let req = Received {
                        header: header.clone(),
                        body: bytes,
                    };
                    let answer = match self.handler.lock().unwrap().as_ref() {
                        Some(handler) => handler(&req),
                        None => panic!("FakeCluster does not answer {other:?}"),
                    };
                    if let Some(frame) = answer {
                        peer.write_raw(&frame).await;
                    }
                }
            }
        }
    }
}

/// What a [`FakeConnector`] does for one address.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// Connection refused.
    Refuse,
    /// Accept and serve as this cluster.
    Serve(std::sync::Arc<FakeCluster>),
}

/// A connector whose addresses are scripted, recording every attempt with its (tokio) time.
#[derive(Default)]
pub(crate) struct FakeConnector {
    pub(crate) behaviour: std::sync::Mutex<std::collections::HashMap<String, Behaviour>>,
    pub(crate) attempts: std::sync::Mutex<Vec<(String, tokio::time::Instant)>>,
}

impl FakeConnector {
    pub(crate) fn set(&self, addr: &str, b: Behaviour) {
        self.behaviour.lock().unwrap().insert(addr.to_owned(), b);
    }

    pub(crate) fn attempts_to(&self, addr: &str) -> Vec<tokio::time::Instant> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == addr)
            .map(|(_, t)| *t)
            .collect()
    }
}

impl crate::client::pool::Connector for FakeConnector {
    fn connect(&self, addr: &str) -> crate::client::pool::ConnectFuture {
        self.attempts
            .lock()
            .unwrap()
            .push((addr.to_owned(), tokio::time::Instant::now()));
        let b = self
            .behaviour
            .lock()
            .unwrap()
            .get(addr)
            .cloned()
            .unwrap_or(Behaviour::Refuse);
        Box::pin(async move {
            match b {
                Behaviour::Refuse => {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                }
                Behaviour::Serve(cluster) => {
                    let (client, server) = tokio::io::duplex(1 << 16);
                    tokio::spawn(cluster.serve(FakePeer::new(server)));
                    Ok(Box::new(client) as crate::client::pool::BoxStream)
                }
            }
        })
    }
}
