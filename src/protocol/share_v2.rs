//! ShareAcknowledge v2 (KIP-1222, Kafka 4.2+) on top of kafka-protocol's v1 codec.
//!
//! kafka-protocol 0.18 (its newest release) encodes and decodes ShareAcknowledge at v1 only.
//! v2 differs from v1 by one field each way (Kafka 4.4's `ShareAcknowledge*.json`):
//!
//! ```text
//! request   GroupId  MemberId  ShareSessionEpoch  [IsRenewAck: bool]  Topics  <tags>
//! response  ThrottleTimeMs  ErrorCode  ErrorMessage  [AcquisitionLockTimeoutMs: int32]
//!           Responses  NodeEndpoints  <tags>
//! ```
//!
//! and acknowledge type 4 (Renew) is valid inside the unchanged AcknowledgementBatches. Both
//! versions are flexible with the same header versions, so a v2 request is kafka-protocol's
//! v1 body with one byte inserted after the epoch (and version 2 in the header), and a v2
//! response is a v1 body once the four bytes after the error message are cut out. This module
//! is the one place that knows those positions.
//!
//! Hostile input: the response's prefix (two fixed fields and a compact nullable string) is
//! walked here with every length checked against the bytes left; the rest, with the v2 field
//! cut out, is exactly a v1 body and goes through `protocol::decode_body`, whose bounds
//! pre-pass (`bounds.rs`, v1 layout) runs before kafka-protocol allocates anything. So the v2
//! layout is the v1 layout plus `Fixed(4)` after the error message, checked in two steps;
//! nothing here panics or allocates beyond the frame's size on any input (a property test
//! feeds it arbitrary bytes).
//!
//! ShareFetch v2 (which adds ShareAcquireMode and IsRenewAck) is not spoken: a ShareFetch
//! that carries renewals must ask for no records (KIP-1222: every fetch limit zero), which
//! makes it a ShareAcknowledge with extra fields, so renewals always go in ShareAcknowledge.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, ShareAcknowledgeRequest, ShareAcknowledgeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{decode_body, Frame};
use crate::error::{Error, Result};

/// The ShareAcknowledge version that carries renewals.
pub(crate) const VERSION: i16 = 2;

/// The version kafka-protocol encodes and decodes, which v2 is built from.
const BASE: i16 = 1;

/// The acknowledge type of a renewal (KIP-1222).
pub(crate) const RENEW: i8 = 4;

/// Whether a broker's ShareAcknowledge range (from its ApiVersions answer) includes v2.
pub(crate) fn speaks_v2(range: Option<(i16, i16)>) -> bool {
    range.is_some_and(|(min, max)| min <= VERSION && VERSION <= max)
}

/// Reads kafka-protocol's unsigned varint (at most 5 bytes) at `*pos`.
fn uvarint(buf: &[u8], pos: &mut usize) -> Option<u32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= u32::from(b & 0x7f).wrapping_shl(i * 7);
        if b < 0x80 {
            return Some(value);
        }
    }
    Some(value)
}

/// Skips a compact nullable string at `*pos` (varint length + 1, 0 is null).
fn skip_compact_string(buf: &[u8], pos: &mut usize) -> Option<()> {
    let n = uvarint(buf, pos)?;
    let len = n.saturating_sub(1) as usize;
    let end = pos.checked_add(len).filter(|&e| e <= buf.len())?;
    *pos = end;
    Some(())
}

/// Skips `n` fixed bytes at `*pos`.
fn skip(buf: &[u8], pos: &mut usize, n: usize) -> Option<()> {
    let end = pos.checked_add(n).filter(|&e| e <= buf.len())?;
    *pos = end;
    Some(())
}

/// Where IsRenewAck goes in a request body: after GroupId, MemberId and ShareSessionEpoch.
fn request_insert_at(body: &[u8]) -> Option<usize> {
    let mut pos = 0;
    skip_compact_string(body, &mut pos)?;
    skip_compact_string(body, &mut pos)?;
    skip(body, &mut pos, 4)?;
    Some(pos)
}

/// Where AcquisitionLockTimeoutMs sits in a response body: after ThrottleTimeMs, ErrorCode
/// and ErrorMessage.
fn response_field_at(body: &[u8]) -> Option<usize> {
    let mut pos = 0;
    skip(body, &mut pos, 4 + 2)?;
    skip_compact_string(body, &mut pos)?;
    Some(pos)
}

fn encode_error(e: impl std::fmt::Display) -> Error {
    Error::protocol(format!("cannot encode ShareAcknowledge v{VERSION}: {e}"))
}

/// A complete ShareAcknowledge v2 request frame (length, header, body) for `req`, with
/// IsRenewAck set to `is_renew_ack` (Kafka requires it true when a batch carries type 4).
pub(crate) fn encode_request(
    req: &ShareAcknowledgeRequest,
    is_renew_ack: bool,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Frame> {
    let api = ApiKey::ShareAcknowledge;
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = api.request_header_version(VERSION);
    let mut body = BytesMut::with_capacity(req.compute_size(BASE).map_err(encode_error)?);
    req.encode(&mut body, BASE).map_err(encode_error)?;
    let at = request_insert_at(&body)
        .ok_or_else(|| encode_error("the v1 body is shorter than its own prefix"))?;
    let header_size = header.compute_size(header_version).map_err(encode_error)?;
    let size = header_size + body.len() + 1;
    let mut frame = BytesMut::with_capacity(4 + size);
    frame.put_i32(i32::try_from(size).map_err(|_| encode_error("request larger than 2 GiB"))?);
    header
        .encode(&mut frame, header_version)
        .map_err(encode_error)?;
    frame.put_slice(&body[..at]);
    frame.put_u8(u8::from(is_renew_ack));
    frame.put_slice(&body[at..]);
    debug_assert_eq!(frame.len(), 4 + size);
    Ok(Frame::Whole(frame.freeze()))
}

/// A ShareAcknowledge v2 answer: the response (as kafka-protocol's v1 type) and its
/// AcquisitionLockTimeoutMs.
#[derive(Debug)]
pub(crate) struct AckResponse {
    pub(crate) response: ShareAcknowledgeResponse,
    /// How long the broker now locks the records this member holds (renewed ones from the
    /// moment it answered); `None` when it sent a negative value (unknown).
    pub(crate) lock_timeout_ms: Option<i32>,
}

/// Decodes a ShareAcknowledge v2 response frame (from the correlation id on).
pub(crate) fn decode_response(mut frame: Bytes) -> Result<AckResponse> {
    let malformed = |what: &str| {
        Error::protocol(format!(
            "malformed ShareAcknowledge v{VERSION} response: {what}"
        ))
    };
    let api = ApiKey::ShareAcknowledge;
    // v2's header is v1's (both flexible): kafka-protocol knows it at v1.
    ResponseHeader::decode(&mut frame, api.response_header_version(BASE))
        .map_err(|e| malformed(&format!("bad header: {e}")))?;
    let at = response_field_at(&frame)
        .ok_or_else(|| malformed("the body ends before AcquisitionLockTimeoutMs"))?;
    let field: [u8; 4] = frame
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("the body ends inside AcquisitionLockTimeoutMs"))?;
    let lock_timeout = i32::from_be_bytes(field);
    let mut v1 = BytesMut::with_capacity(frame.len() - 4);
    v1.put_slice(&frame[..at]);
    v1.put_slice(&frame[at + 4..]);
    let mut v1 = v1.freeze();
    let response: ShareAcknowledgeResponse = decode_body(api, &mut v1, BASE)?;
    Ok(AckResponse {
        response,
        lock_timeout_ms: (lock_timeout >= 0).then_some(lock_timeout),
    })
}

/// The broker's side, for tests (fake brokers and the round trip): a v2 request body as
/// `(request, IsRenewAck)`.
#[cfg(test)]
pub(crate) fn decode_request_body(body: &[u8]) -> Result<(ShareAcknowledgeRequest, bool)> {
    let at = request_insert_at(body).ok_or_else(|| Error::protocol("short v2 request"))?;
    let flag = *body
        .get(at)
        .ok_or_else(|| Error::protocol("no IsRenewAck"))?;
    let mut v1 = BytesMut::new();
    v1.put_slice(&body[..at]);
    v1.put_slice(&body[at + 1..]);
    let req = ShareAcknowledgeRequest::decode(&mut v1.freeze(), BASE)
        .map_err(|e| Error::protocol(e.to_string()))?;
    Ok((req, flag != 0))
}

/// The broker's side, for tests: a v2 response body (no header).
#[cfg(test)]
pub(crate) fn encode_response_body(resp: &ShareAcknowledgeResponse, lock_timeout_ms: i32) -> Bytes {
    let mut v1 = BytesMut::new();
    resp.encode(&mut v1, BASE).unwrap();
    let at = response_field_at(&v1).unwrap();
    let mut out = BytesMut::new();
    out.put_slice(&v1[..at]);
    out.put_i32(lock_timeout_ms);
    out.put_slice(&v1[at..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::share_acknowledge_request::{
        AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch,
    };
    use kafka_protocol::messages::share_acknowledge_response::{
        PartitionData, ShareAcknowledgeTopicResponse,
    };
    use kafka_protocol::messages::GroupId;
    use proptest::prelude::*;

    fn request(
        group: &str,
        member: Option<&str>,
        epoch: i32,
        types: &[i8],
    ) -> ShareAcknowledgeRequest {
        ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_string(group.to_owned()))))
            .with_member_id(member.map(|m| StrBytes::from_string(m.to_owned())))
            .with_share_session_epoch(epoch)
            .with_topics(vec![AcknowledgeTopic::default()
                .with_topic_id(uuid::Uuid::from_bytes([3; 16]))
                .with_partitions(vec![AcknowledgePartition::default()
                    .with_partition_index(5)
                    .with_acknowledgement_batches(
                        types
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                AcknowledgementBatch::default()
                                    .with_first_offset(10 * i as i64)
                                    .with_last_offset(10 * i as i64 + 3)
                                    .with_acknowledge_types(vec![*t])
                            })
                            .collect(),
                    )])])
    }

    /// The frame split into (header version field, body after the header).
    fn split(frame: &Frame, client_id: &str) -> (i16, Bytes) {
        let Frame::Whole(b) = frame else {
            panic!("one buffer")
        };
        let len = i32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        assert_eq!(len, b.len() - 4);
        let version = i16::from_be_bytes([b[6], b[7]]);
        // length, api key, version, correlation id, client id (i16 length), header tags.
        let body_at = 4 + 2 + 2 + 4 + 2 + client_id.len() + 1;
        (version, b.slice(body_at..))
    }

    /// The bytes Kafka 4.4's generated Java code writes for this request at v2: group "g",
    /// member "m", epoch 7, IsRenewAck, one topic (id 0x03 × 16), partition 5, one batch
    /// 10..=11 of type 4. Hand-assembled from `ShareAcknowledgeRequest.json`.
    #[test]
    fn a_renewal_is_the_schema_s_v2_bytes() {
        let req = ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_static_str("g"))))
            .with_member_id(Some(StrBytes::from_static_str("m")))
            .with_share_session_epoch(7)
            .with_topics(vec![AcknowledgeTopic::default()
                .with_topic_id(uuid::Uuid::from_bytes([3; 16]))
                .with_partitions(vec![AcknowledgePartition::default()
                    .with_partition_index(5)
                    .with_acknowledgement_batches(vec![
                        AcknowledgementBatch::default()
                            .with_first_offset(10)
                            .with_last_offset(11)
                            .with_acknowledge_types(vec![RENEW]),
                    ])])]);
        let frame = encode_request(&req, true, 9, &StrBytes::from_static_str("c")).unwrap();
        let (version, body) = split(&frame, "c");
        assert_eq!(version, 2);
        let mut want = vec![2, b'g', 2, b'm', 0, 0, 0, 7, 1, 2];
        want.extend([3; 16]);
        want.extend([2, 0, 0, 0, 5, 2]);
        want.extend(10i64.to_be_bytes());
        want.extend(11i64.to_be_bytes());
        want.extend([2, 4, 0, 0, 0, 0]);
        assert_eq!(&body[..], &want[..]);
    }

    #[test]
    fn the_response_s_lock_timeout_is_read_and_the_rest_decodes_as_v1() {
        let resp = ShareAcknowledgeResponse::default()
            .with_error_message(Some(StrBytes::from_static_str("fine")))
            .with_responses(vec![ShareAcknowledgeTopicResponse::default()
                .with_topic_id(uuid::Uuid::from_bytes([1; 16]))
                .with_partitions(vec![PartitionData::default()
                    .with_partition_index(2)
                    .with_error_code(121)])]);
        let body = encode_response_body(&resp, 15_000);
        let mut frame = BytesMut::new();
        frame.put_i32(77); // correlation id
        frame.put_u8(0); // header tags
        frame.put_slice(&body);
        let got = decode_response(frame.freeze()).unwrap();
        assert_eq!(got.response, resp);
        assert_eq!(got.lock_timeout_ms, Some(15_000));
        // Cut anywhere inside the prefix or the field: an error, not a panic.
        for cut in 0..(4 + 1 + 4 + 2 + 5 + 4) {
            let mut short = BytesMut::new();
            short.put_i32(77);
            short.put_u8(0);
            short.put_slice(&body[..cut.min(body.len())]);
            assert!(decode_response(short.freeze()).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn v2_is_spoken_only_where_the_broker_lists_it() {
        assert!(!speaks_v2(None));
        assert!(!speaks_v2(Some((1, 1))));
        assert!(speaks_v2(Some((1, 2))));
        assert!(speaks_v2(Some((1, 3))));
        assert!(!speaks_v2(Some((3, 4))));
    }

    proptest! {
        /// Encoding at v2 and reading it back as a broker would gives the same request.
        #[test]
        fn requests_round_trip(
            group in "[a-z]{0,40}",
            member in proptest::option::of("[A-Za-z0-9_-]{0,200}"),
            epoch in any::<i32>(),
            types in proptest::collection::vec(0i8..=4, 0..20),
            renew in any::<bool>(),
        ) {
            let req = request(&group, member.as_deref(), epoch, &types);
            let frame = encode_request(&req, renew, 1, &StrBytes::from_static_str("cid")).unwrap();
            let (version, body) = split(&frame, "cid");
            prop_assert_eq!(version, 2);
            let (back, flag) = decode_request_body(&body).unwrap();
            prop_assert_eq!(back, req);
            prop_assert_eq!(flag, renew);
        }

        /// Responses round-trip through the broker-side encoder, for every lock timeout.
        #[test]
        fn responses_round_trip(
            message in proptest::option::of("[ -~]{0,300}"),
            code in any::<i16>(),
            lock in any::<i32>(),
            parts in proptest::collection::vec((any::<i32>(), any::<i16>()), 0..10),
        ) {
            let resp = ShareAcknowledgeResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
                .with_responses(vec![ShareAcknowledgeTopicResponse::default()
                    .with_partitions(parts.iter().map(|(i, c)| PartitionData::default()
                        .with_partition_index(*i)
                        .with_error_code(*c)).collect())]);
            let mut frame = BytesMut::new();
            frame.put_i32(1);
            frame.put_u8(0);
            frame.put_slice(&encode_response_body(&resp, lock));
            let got = decode_response(frame.freeze()).unwrap();
            prop_assert_eq!(got.response, resp);
            prop_assert_eq!(got.lock_timeout_ms, (lock >= 0).then_some(lock));
        }

        /// Any bytes at all: an answer or an error, never a panic or a huge allocation.
        #[test]
        fn hostile_responses_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_response(Bytes::from(bytes));
        }

        /// A valid response with one byte changed or the end cut off: still no panic.
        #[test]
        fn damaged_responses_never_panic(at in any::<usize>(), value in any::<u8>(), cut in any::<usize>()) {
            let resp = ShareAcknowledgeResponse::default()
                .with_responses(vec![ShareAcknowledgeTopicResponse::default()
                    .with_partitions(vec![PartitionData::default(); 3])]);
            let mut frame = BytesMut::new();
            frame.put_i32(1);
            frame.put_u8(0);
            frame.put_slice(&encode_response_body(&resp, 30_000));
            let n = frame.len();
            frame[at % n] = value;
            frame.truncate(cut % (n + 1));
            let _ = decode_response(frame.freeze());
        }
    }
}
