//! Glue over the `kafka-protocol` crate: framing, headers and version choice.
//!
//! `kafka-protocol` encodes and decodes every message at an explicit version; this module owns
//! *which* version (the highest both this crate and the broker support, from the broker's
//! ApiVersions answer) and the header versions and length prefix around each message. Nothing
//! here touches a socket; `client/connection.rs` moves the bytes.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use crate::error::{Error, Result};

pub(crate) mod bounds;
pub(crate) mod fetch_split;
mod set_memory;

/// Runs `$m!(request types...)` with the request of every response the client decodes — the
/// one list the layout tests and the fuzz targets share (`scripts/gen_wire_layouts.py` lists
/// the same APIs for the layouts). The order is the fuzz input's API index: append only.
#[cfg(any(test, feature = "fuzzing"))]
macro_rules! for_each_decoded_response {
    ($m:ident) => {
        $m!(
            ProduceRequest,
            FetchRequest,
            ListOffsetsRequest,
            MetadataRequest,
            OffsetCommitRequest,
            OffsetFetchRequest,
            FindCoordinatorRequest,
            JoinGroupRequest,
            HeartbeatRequest,
            LeaveGroupRequest,
            SyncGroupRequest,
            ApiVersionsRequest,
            CreateTopicsRequest,
            DeleteTopicsRequest,
            InitProducerIdRequest,
            AddPartitionsToTxnRequest,
            AddOffsetsToTxnRequest,
            EndTxnRequest,
            TxnOffsetCommitRequest,
            DescribeClusterRequest,
            SaslHandshakeRequest,
            SaslAuthenticateRequest,
            CreateAclsRequest,
            DescribeAclsRequest,
            DeleteAclsRequest,
            DescribeConfigsRequest,
            AlterConfigsRequest,
            IncrementalAlterConfigsRequest,
            CreatePartitionsRequest,
            DeleteRecordsRequest,
            ListGroupsRequest,
            DescribeGroupsRequest,
            DeleteGroupsRequest,
            OffsetDeleteRequest,
            DescribeUserScramCredentialsRequest,
            AlterUserScramCredentialsRequest,
            DescribeProducersRequest,
            ListTransactionsRequest,
            DescribeTransactionsRequest,
            ElectLeadersRequest,
            DescribeTopicPartitionsRequest,
            ConsumerGroupHeartbeatRequest,
            ConsumerGroupDescribeRequest,
            ShareGroupHeartbeatRequest,
            ShareGroupDescribeRequest,
            ShareFetchRequest,
            ShareAcknowledgeRequest,
            DescribeShareGroupOffsetsRequest,
            AlterShareGroupOffsetsRequest,
            DeleteShareGroupOffsetsRequest
        )
    };
}
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use for_each_decoded_response;
mod layouts;
pub(crate) mod records;
pub(crate) mod share_v2;

/// The ApiVersions version ferrokafka tries first. Brokers that do not know it answer
/// UNSUPPORTED_VERSION and the connection steps down (see `Connection::negotiate`).
pub(crate) const API_VERSIONS_MAX: i16 = 4;

/// Name and version sent in ApiVersions v3+ (`client.software.name`/`version`, KIP-511).
pub(crate) const SOFTWARE_NAME: &str = "ferrokafka";
pub(crate) const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Wire strings from the client's own names: the one place they are built.
pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A topic name as messages carry it.
pub(crate) fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(str_bytes(name))
}

/// A topic id as messages carry it (kafka-protocol's `Uuid`, which the crate does not
/// re-export: built through its `TryFrom<Vec<u8>>`, which accepts exactly 16 bytes).
pub(crate) fn wire_topic_id<U>(id: [u8; 16]) -> U
where
    U: TryFrom<Vec<u8>>,
    U::Error: std::fmt::Debug,
{
    U::try_from(id.to_vec()).expect("a topic id is 16 bytes")
}

/// A group id as messages carry it.
pub(crate) fn group_id(id: &str) -> kafka_protocol::messages::GroupId {
    kafka_protocol::messages::GroupId(str_bytes(id))
}

/// A transactional id as messages carry it.
pub(crate) fn transactional_id(id: &str) -> kafka_protocol::messages::TransactionalId {
    kafka_protocol::messages::TransactionalId(str_bytes(id))
}

/// The version range ferrokafka speaks for `api`: what `kafka-protocol` can encode, narrowed
/// where the client's own handling of a message's fields starts at a later version.
pub(crate) fn client_range(api: ApiKey) -> (i16, i16) {
    let r = api.valid_versions();
    let max = match api {
        // Produce v13 and Fetch v13+ name topics by id only: the producer and the fetcher
        // use them when every topic of the request has an id in the metadata (and step down
        // to v12 otherwise, see `by_name_version`).
        // kafka-protocol 0.18 lists these up to v10 (their responses) but encodes the
        // requests only up to v9.
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => r.max.min(9),
        // v4+ is broker-to-broker (KIP-890); clients add partitions with v3 at most.
        ApiKey::AddPartitionsToTxn => r.max.min(3),
        // EndTxn v5 (KIP-890 transactions v2) bumps the epoch per transaction: spoken when
        // the cluster finalizes transaction.version 2 (`producer/transaction.rs` caps it at
        // v4 otherwise).
        _ => r.max,
    };
    (r.min, max)
}

/// The version of a request that names topics by id from v13 on (Produce, Fetch) when some
/// topic of it has no id in the metadata (an old broker, or a topic the cache has not seen
/// yet): the highest version that still names topics.
pub(crate) fn by_name_version(negotiated: i16, every_topic_has_an_id: bool) -> i16 {
    if every_topic_has_an_id {
        negotiated
    } else {
        negotiated.min(12)
    }
}

/// The broker's supported version range per API key, from its ApiVersions response.
#[derive(Clone, Debug, Default)]
pub(crate) struct ApiVersionTable {
    /// Indexed by API key; `None` where the broker does not list the API.
    ranges: Vec<Option<(i16, i16)>>,
}

impl ApiVersionTable {
    pub(crate) fn from_ranges(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        let mut t = ApiVersionTable::default();
        for (key, min, max) in ranges {
            if key < 0 || min > max {
                continue;
            }
            let idx = key as usize;
            if t.ranges.len() <= idx {
                t.ranges.resize(idx + 1, None);
            }
            t.ranges[idx] = Some((min, max));
        }
        t
    }

    /// The broker's range for `api`, if it supports it at all.
    pub(crate) fn broker_range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.ranges.get(api as i16 as usize).copied().flatten()
    }

    /// The highest version of `api` both sides support.
    pub(crate) fn pick(&self, api: ApiKey, broker: &str) -> Result<i16> {
        let (cmin, cmax) = client_range(api);
        let unsupported = || Error::UnsupportedApi {
            api: api_name(api),
            broker: broker.into(),
        };
        let (bmin, bmax) = self.broker_range(api).ok_or_else(unsupported)?;
        let v = cmax.min(bmax);
        if v < cmin.max(bmin) {
            return Err(unsupported());
        }
        Ok(v)
    }
}

/// Every API whose responses ferrokafka decodes, in API key order (ApiVersions, which the
/// handshake itself uses, is not in it): what the negotiation log lists per connection.
pub(crate) const CLIENT_APIS: [ApiKey; 49] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::SaslHandshake,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::SaslAuthenticate,
    ApiKey::CreatePartitions,
    ApiKey::DeleteGroups,
    ApiKey::ElectLeaders,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::OffsetDelete,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::AlterUserScramCredentials,
    ApiKey::DescribeCluster,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::DescribeTopicPartitions,
    ApiKey::ShareGroupHeartbeat,
    ApiKey::ShareGroupDescribe,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
    ApiKey::DescribeShareGroupOffsets,
    ApiKey::AlterShareGroupOffsets,
    ApiKey::DeleteShareGroupOffsets,
];

/// What a connection negotiated, as one line: `ApiVersions v<handshake>` then, for every API
/// in [`CLIENT_APIS`], `Name vN` with the version [`ApiVersionTable::pick`] chooses, or
/// `Name unsupported` where the broker's range and the client's do not meet. Brokers drop old
/// versions (Kafka 4.0 removed many, KIP-896) and lack APIs (Tansu has no fetch sessions),
/// so this line is what to read first when a broker refuses a request.
pub(crate) fn negotiated_summary(table: &ApiVersionTable, handshake_version: i16) -> String {
    let mut line = format!("ApiVersions v{handshake_version}");
    for api in CLIENT_APIS {
        line.push(' ');
        line.push_str(api_name(api));
        match table.pick(api, "") {
            Ok(v) => {
                line.push_str(" v");
                line.push_str(&v.to_string());
            }
            Err(_) => line.push_str(" unsupported"),
        }
    }
    line
}

/// The API's name as Kafka spells it, for errors and tracing.
pub(crate) fn api_name(api: ApiKey) -> &'static str {
    // `ApiKey`'s Debug output is the variant name, which is Kafka's API name; cache nothing,
    // this is only called on error and tracing paths.
    macro_rules! names {
        ($($k:ident),*) => { match api { $(ApiKey::$k => stringify!($k),)* _ => "Unknown" } };
    }
    names!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        SaslHandshake,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        OffsetForLeaderEpoch,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        TxnOffsetCommit,
        DescribeConfigs,
        CreateAcls,
        SaslAuthenticate,
        CreatePartitions,
        DeleteGroups,
        DescribeCluster,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        ConsumerGroupHeartbeat,
        DescribeAcls,
        DeleteAcls,
        AlterConfigs,
        IncrementalAlterConfigs,
        OffsetDelete,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        ElectLeaders,
        DescribeTopicPartitions,
        ConsumerGroupDescribe,
        ShareGroupHeartbeat,
        ShareGroupDescribe,
        ShareFetch,
        ShareAcknowledge,
        DescribeShareGroupOffsets,
        AlterShareGroupOffsets,
        DeleteShareGroupOffsets
    )
}

/// Encodes one request frame: 4-byte length, request header, body.
pub(crate) fn encode_request<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Bytes> {
    let api = ApiKey::try_from(R::KEY)
        .map_err(|_| Error::protocol(format!("unknown API key {}", R::KEY)))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = api.request_header_version(version);
    let size = header
        .compute_size(header_version)
        .and_then(|h| req.compute_size(version).map(|b| h + b))
        .map_err(|e| encode_error(api, version, e))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .and_then(|_| req.encode(&mut buf, version))
        .map_err(|e| encode_error(api, version, e))?;
    debug_assert_eq!(buf.len(), 4 + size);
    Ok(buf.freeze())
}

/// A request frame as it goes to the socket: one buffer, or buffers written back to back.
/// A Produce request is the second kind, so that its record batches go out as the `Bytes`
/// the producer encoded them into, never copied into the frame (see [`encode_produce`]).
#[derive(Debug)]
pub(crate) enum Frame {
    Whole(Bytes),
    Chunks(Vec<Bytes>),
}

impl Frame {
    /// The frame's bytes, in order.
    pub(crate) fn chunks(&self) -> &[Bytes] {
        match self {
            Frame::Whole(b) => std::slice::from_ref(b),
            Frame::Chunks(c) => c,
        }
    }
}

/// A ProduceRequest as the producer sends it: no transactional id, record batches by
/// topic and partition.
#[derive(Debug)]
pub(crate) struct ProduceBody {
    /// The transactional producer's id (Kafka authorizes transactional batches by it).
    pub(crate) transactional_id: Option<Arc<str>>,
    pub(crate) acks: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) topics: Vec<ProduceTopic>,
}

/// One topic of a [`ProduceBody`]: `(partition, record batches)` pairs.
#[derive(Debug)]
pub(crate) struct ProduceTopic {
    pub(crate) name: Arc<str>,
    /// The topic id from the metadata the batches were routed by; v13 sends only this.
    pub(crate) id: Option<[u8; 16]>,
    pub(crate) partitions: Vec<(i32, Bytes)>,
}

/// Encodes a Produce request frame (v3–v13) whose records fields are the producer's batch
/// buffers themselves: the small encoded parts between them are slices of one buffer, the
/// batches are spliced in by reference. The bytes are exactly what kafka-protocol's
/// `ProduceRequest` encoder writes (a test compares every version), without the copy of every
/// record it makes into the frame.
pub(crate) fn encode_produce(
    body: &ProduceBody,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Frame> {
    let api = ApiKey::Produce;
    if !(3..=13).contains(&version) {
        // Before v3 there is no Record Batch v2.
        return Err(encode_error(
            api,
            version,
            "not a version the producer writes",
        ));
    }
    // From v9 on the request is "flexible": compact (varint) lengths and tagged fields.
    let flexible = version >= 9;
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = api.request_header_version(version);
    let header_size = header
        .compute_size(header_version)
        .map_err(|e| encode_error(api, version, e))?;
    // Everything but the batches: a bound of 10 bytes per length or count, 4 per partition
    // index, 1 per tagged-field count.
    let parts = body
        .topics
        .iter()
        .map(|t| t.partitions.len())
        .sum::<usize>();
    // A name, or from v13 a 16-byte id.
    let names = body
        .topics
        .iter()
        .map(|t| t.name.len().max(16))
        .sum::<usize>();
    let capacity = 4
        + body.transactional_id.as_ref().map_or(0, |id| id.len())
        + header_size
        + 2
        + 2
        + 4
        + 10
        + 1
        + body.topics.len() * (10 + 10 + 1)
        + names
        + parts * (4 + 10 + 1);
    let mut glue = BytesMut::with_capacity(capacity);
    glue.put_i32(0); // the size, filled in below
    header
        .encode(&mut glue, header_version)
        .map_err(|e| encode_error(api, version, e))?;
    // transactional_id: a nullable string.
    match (&body.transactional_id, flexible) {
        (None, true) => put_uvarint(&mut glue, 0),
        (None, false) => glue.put_i16(-1),
        (Some(id), true) => {
            put_uvarint(&mut glue, id.len() as u64 + 1);
            glue.put_slice(id.as_bytes());
        }
        (Some(id), false) => {
            let len = i16::try_from(id.len())
                .map_err(|_| encode_error(api, version, "transactional id too long"))?;
            glue.put_i16(len);
            glue.put_slice(id.as_bytes());
        }
    }
    glue.put_i16(body.acks);
    glue.put_i32(body.timeout_ms);
    put_length(&mut glue, body.topics.len(), flexible, version)?;
    // Where each batch goes between the encoded parts.
    let mut splices: Vec<(usize, &Bytes)> = Vec::with_capacity(parts);
    let mut batch_bytes = 0usize;
    for topic in &body.topics {
        if version >= 13 {
            // v13 names the topic by its id alone (the caller steps down to v12 when the
            // metadata has no id for some topic).
            let id = topic
                .id
                .ok_or_else(|| encode_error(api, version, "topic without an id"))?;
            glue.put_slice(&id);
        } else if flexible {
            put_uvarint(&mut glue, topic.name.len() as u64 + 1);
        } else {
            let len = i16::try_from(topic.name.len())
                .map_err(|_| encode_error(api, version, "topic name too long"))?;
            glue.put_i16(len);
        }
        if version < 13 {
            glue.put_slice(topic.name.as_bytes());
        }
        put_length(&mut glue, topic.partitions.len(), flexible, version)?;
        for (index, records) in &topic.partitions {
            glue.put_i32(*index);
            put_length(&mut glue, records.len(), flexible, version)?;
            splices.push((glue.len(), records));
            batch_bytes += records.len();
            if flexible {
                glue.put_u8(0); // partition's tagged fields: none
            }
        }
        if flexible {
            glue.put_u8(0); // topic's tagged fields: none
        }
    }
    if flexible {
        glue.put_u8(0); // request's tagged fields: none
    }
    let size = i32::try_from(glue.len() - 4 + batch_bytes)
        .map_err(|_| encode_error(api, version, "request larger than 2 GiB"))?;
    glue[..4].copy_from_slice(&size.to_be_bytes());
    let glue = glue.freeze();
    let mut chunks = Vec::with_capacity(2 * splices.len() + 1);
    let mut from = 0;
    for (at, records) in splices {
        chunks.push(glue.slice(from..at));
        chunks.push(records.clone());
        from = at;
    }
    chunks.push(glue.slice(from..));
    Ok(Frame::Chunks(chunks))
}

/// An array count or a bytes length: `i32`, or from v9 the "compact" unsigned varint of
/// length + 1.
fn put_length(buf: &mut BytesMut, len: usize, flexible: bool, version: i16) -> Result<()> {
    let len = i32::try_from(len)
        .map_err(|_| encode_error(ApiKey::Produce, version, "length beyond i32"))?;
    if flexible {
        put_uvarint(buf, len as u64 + 1);
    } else {
        buf.put_i32(len);
    }
    Ok(())
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn encode_error(api: ApiKey, version: i16, e: impl std::fmt::Display) -> Error {
    // Encoding fails only when a field does not exist at this version or a value is out of
    // range: a bug or a caller's invalid input, never the broker's fault.
    Error::protocol(format!("cannot encode {} v{version}: {e}", api_name(api)))
}

/// Strips the response header (whose version depends on the API and version) and decodes the
/// body. `frame` starts at the correlation id.
pub(crate) fn decode_response<R: Request>(mut frame: Bytes, version: i16) -> Result<R::Response> {
    let api = ApiKey::try_from(R::KEY)
        .map_err(|_| Error::protocol(format!("unknown API key {}", R::KEY)))?;
    let header_version = api.response_header_version(version);
    ResponseHeader::decode(&mut frame, header_version).map_err(|e| {
        Error::protocol(format!(
            "bad {} v{version} response header: {e}",
            api_name(api)
        ))
    })?;
    decode_body(api, &mut frame, version)
}

/// Decodes a response body (after its header) of `api` at `version`.
///
/// kafka-protocol reserves memory for whatever array lengths the body claims, so the body is
/// walked first (`bounds`): a lying frame costs a protocol error, not the process. Every
/// response decode goes through here.
pub(crate) fn decode_body<M: Decodable>(api: ApiKey, body: &mut Bytes, version: i16) -> Result<M> {
    bounds::check(api, version, body).map_err(|e| {
        Error::protocol(format!(
            "malformed {} v{version} response: {e}",
            api_name(api)
        ))
    })?;
    M::decode(body, version).map_err(|e| {
        Error::protocol(format!(
            "cannot decode {} v{version} response: {e}",
            api_name(api)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    #[test]
    fn pick_uses_the_highest_common_version() {
        let t = ApiVersionTable::from_ranges([(3, 0, 12), (18, 0, 2), (22, 0, 2)]);
        assert_eq!(t.pick(ApiKey::Metadata, "b").unwrap(), 12);
        assert_eq!(t.pick(ApiKey::ApiVersions, "b").unwrap(), 2);
        // InitProducerId: broker 0..2, client 0..6 → 2.
        assert_eq!(t.pick(ApiKey::InitProducerId, "b").unwrap(), 2);
        let e = t.pick(ApiKey::Produce, "b").unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedApi { api: "Produce", .. }),
            "{e}"
        );
    }

    #[test]
    fn the_negotiation_summary_names_every_client_api_with_its_chosen_version() {
        // A broker with KIP-896's floors (Produce from v3, Fetch from v4) and no transactions.
        let mut ranges: Vec<(i16, i16, i16)> = CLIENT_APIS
            .iter()
            .map(|&api| (api as i16, 0, 100))
            .collect();
        ranges[0] = (ApiKey::Produce as i16, 3, 11);
        ranges[1] = (ApiKey::Fetch as i16, 4, 8);
        ranges
            .retain(|&(k, _, _)| k != ApiKey::EndTxn as i16 && k != ApiKey::AddOffsetsToTxn as i16);
        // OffsetCommit offered only below what the client speaks: no common version.
        ranges.push((ApiKey::OffsetCommit as i16, 0, 0));
        let t = ApiVersionTable::from_ranges(ranges);
        let line = negotiated_summary(&t, 3);
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 2 * (CLIENT_APIS.len() + 1), "{line}");
        assert_eq!(
            &words[..6],
            ["ApiVersions", "v3", "Produce", "v11", "Fetch", "v8"]
        );
        for (api, chosen) in CLIENT_APIS.iter().zip(words[2..].chunks(2)) {
            assert_eq!(chosen[0], api_name(*api), "{line}");
            let expected = match t.pick(*api, "") {
                Ok(v) => format!("v{v}"),
                Err(_) => "unsupported".to_owned(),
            };
            assert_eq!(chosen[1], expected, "{line}");
        }
        for gone in [
            "EndTxn unsupported",
            "AddOffsetsToTxn unsupported",
            "OffsetCommit unsupported",
        ] {
            assert!(line.contains(gone), "{line}");
        }
        // ListOffsets: the broker offers up to 100, the client's own maximum is chosen.
        let lo = client_range(ApiKey::ListOffsets).1;
        assert!(line.contains(&format!("ListOffsets v{lo} ")), "{line}");
    }

    /// The summary's list is the list of APIs whose responses the client decodes: adding an
    /// API to the client without listing it would leave its version out of the log.
    #[test]
    fn client_apis_are_the_apis_the_client_decodes() {
        macro_rules! keys {
            ($($r:ident),*) => {
                vec![$(kafka_protocol::messages::$r::KEY),*]
            };
        }
        let mut decoded: Vec<i16> = for_each_decoded_response!(keys);
        decoded.retain(|&k| k != ApiKey::ApiVersions as i16);
        decoded.sort_unstable();
        let listed: Vec<i16> = CLIENT_APIS.iter().map(|&a| a as i16).collect();
        assert_eq!(listed, decoded);
    }

    #[test]
    fn pick_rejects_disjoint_ranges() {
        // kafka-protocol speaks Produce 3..; a broker offering only 0..2 shares nothing.
        let t = ApiVersionTable::from_ranges([(0, 0, 2)]);
        let e = t.pick(ApiKey::Produce, "broker 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "broker broker 1 does not support the Produce API at any version ferrokafka speaks"
        );
    }

    /// Every Produce version the producer writes, against kafka-protocol's own encoder: the
    /// spliced frame must be byte for byte the same request.
    #[test]
    fn spliced_produce_frames_match_kafka_protocol() {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::{ProduceRequest, TopicName};
        let batch = |n: usize| Bytes::from((0..n).map(|i| i as u8).collect::<Vec<u8>>());
        let long_name: String = "t".repeat(200);
        let mut body = ProduceBody {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30_000,
            topics: vec![
                ProduceTopic {
                    name: "orders".into(),
                    id: Some([7; 16]),
                    partitions: vec![(0, batch(100)), (7, batch(0)), (3, batch(300))],
                },
                ProduceTopic {
                    name: long_name.as_str().into(),
                    id: Some(*b"0123456789abcdef"),
                    partitions: vec![(11, batch(70))],
                },
            ],
        };
        let client_id = StrBytes::from_static_str("ferrokafka-test");
        for (version, txn) in (3..=13).flat_map(|v| [(v, None), (v, Some("tx-1"))]) {
            body.transactional_id = txn.map(Arc::from);
            let req = ProduceRequest::default()
                .with_transactional_id(txn.map(|t| {
                    kafka_protocol::messages::TransactionalId(StrBytes::from_static_str(t))
                }))
                .with_acks(body.acks)
                .with_timeout_ms(body.timeout_ms)
                .with_topic_data(
                    body.topics
                        .iter()
                        .map(|t| {
                            TopicProduceData::default()
                                .with_name(TopicName(StrBytes::from_string(t.name.to_string())))
                                .with_topic_id(wire_topic_id(t.id.unwrap()))
                                .with_partition_data(
                                    t.partitions
                                        .iter()
                                        .map(|(i, b)| {
                                            PartitionProduceData::default()
                                                .with_index(*i)
                                                .with_records(Some(b.clone()))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let want = encode_request(&req, version, 77, &client_id).unwrap();
            let frame = encode_produce(&body, version, 77, &client_id).unwrap();
            let got: Vec<u8> = frame.chunks().concat();
            assert_eq!(got, &want[..], "v{version} transactional id {txn:?}");
            // The batches are the producer's buffers, not copies.
            let spliced = frame
                .chunks()
                .iter()
                .filter(|c| c.len() == 300)
                .any(|c| c.as_ptr() == body.topics[0].partitions[2].1.as_ptr());
            assert!(spliced, "v{version}: batch copied");
        }
        for version in [2, 14] {
            assert!(encode_produce(&body, version, 1, &client_id).is_err());
        }
        // v13 has no name to fall back on: a topic without an id is refused, not sent nil.
        body.topics[1].id = None;
        assert!(encode_produce(&body, 13, 1, &client_id).is_err());
        assert!(encode_produce(&body, 12, 1, &client_id).is_ok());
    }

    #[test]
    fn request_frames_carry_length_and_header() {
        let req = MetadataRequest::default();
        let frame = encode_request(&req, 1, 42, &StrBytes::from_static_str("cid")).unwrap();
        let len = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(i16::from_be_bytes([frame[4], frame[5]]), 3); // api key
        assert_eq!(i16::from_be_bytes([frame[6], frame[7]]), 1); // version
        assert_eq!(i32::from_be_bytes(frame[8..12].try_into().unwrap()), 42);
    }
}
