//! Glue over the `kafka-protocol` crate: framing, headers and version choice.
//!
//! `kafka-protocol` encodes and decodes every message at an explicit version; this module owns
//! *which* version (the highest both this crate and the broker support, from the broker's
//! ApiVersions answer) and the header versions and length prefix around each message. Nothing
//! here touches a socket; `client/connection.rs` moves the bytes.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use crate::error::{Error, Result};

pub(crate) mod records;

/// The ApiVersions version ferrokafka tries first. Brokers that do not know it answer
/// UNSUPPORTED_VERSION and the connection steps down (see `Connection::negotiate`).
pub(crate) const API_VERSIONS_MAX: i16 = 4;

/// Name and version sent in ApiVersions v3+ (`client.software.name`/`version`, KIP-511).
pub(crate) const SOFTWARE_NAME: &str = "ferrokafka";
pub(crate) const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version range ferrokafka speaks for `api`: what `kafka-protocol` can encode, narrowed
/// where the client's own handling of a message's fields starts at a later version.
pub(crate) fn client_range(api: ApiKey) -> (i16, i16) {
    let r = api.valid_versions();
    let max = match api {
        // v13 names topics by id only; the producer routes by name.
        ApiKey::Produce => r.max.min(12),
        // v13+ also switch to topic ids; the fetcher will opt in when it handles them.
        ApiKey::Fetch => r.max.min(12),
        // kafka-protocol 0.18 lists these up to v10 (their responses) but encodes the
        // requests only up to v9.
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => r.max.min(9),
        // v4+ is broker-to-broker (KIP-890); clients add partitions with v3 at most.
        ApiKey::AddPartitionsToTxn => r.max.min(3),
        // v5 (KIP-890 transactions v2) bumps the epoch per transaction, which the
        // transactional producer does not do yet.
        ApiKey::EndTxn => r.max.min(4),
        _ => r.max,
    };
    (r.min, max)
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
        SaslAuthenticate,
        CreatePartitions,
        DeleteGroups,
        DescribeCluster,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        ConsumerGroupHeartbeat
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
    R::Response::decode(&mut frame, version).map_err(|e| {
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
    fn pick_rejects_disjoint_ranges() {
        // kafka-protocol speaks Produce 3..; a broker offering only 0..2 shares nothing.
        let t = ApiVersionTable::from_ranges([(0, 0, 2)]);
        let e = t.pick(ApiKey::Produce, "broker 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "broker broker 1 does not support the Produce API at any version ferrokafka speaks"
        );
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
