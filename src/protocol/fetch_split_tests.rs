//! The split reader against kafka-protocol's own encoder and decoder, at every Fetch version:
//! what it returns decodes to exactly the response a whole-frame decode gives, with each
//! record set in a buffer of its own.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData, SnapshotId,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;
#[cfg(target_os = "linux")]
use crate::protocol::set_memory::mapped;
use crate::protocol::set_memory::{IDLE, MAPPED_FROM};

fn partition(index: i32, records: Option<Bytes>) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_high_watermark(1000 + i64::from(index))
        .with_last_stable_offset(900)
        .with_log_start_offset(3)
        .with_records(records)
}

/// A response using every part of the layout the version has: two topics, null, empty and
/// full record sets, aborted transactions, a preferred replica, the tagged fields of
/// partitions (v12+), node endpoints (v16+), and unknown tags.
fn response(version: i16) -> FetchResponse {
    let set = |n: u8, len: usize| Some(Bytes::from(vec![n; len]));
    let mut p0 = partition(0, set(1, 70_000));
    p0.aborted_transactions = Some(vec![AbortedTransaction::default()
        .with_producer_id(ProducerId(7))
        .with_first_offset(11)]);
    p0.preferred_read_replica = BrokerId(if version >= 11 { 2 } else { -1 });
    let mut p1 = partition(1, None);
    let p2 = partition(2, set(2, 0));
    let mut p3 = partition(7, set(3, 300));
    if version >= 12 {
        p3.diverging_epoch = EpochEndOffset::default().with_epoch(4).with_end_offset(55);
        p3.current_leader = LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(3))
            .with_leader_epoch(9);
        p3.snapshot_id = SnapshotId::default().with_end_offset(5).with_epoch(1);
        p1.unknown_tagged_fields = BTreeMap::from([(40, Bytes::from_static(b"xyz"))]);
    }
    let mut t0 = FetchableTopicResponse::default().with_partitions(vec![p0, p1, p2]);
    let mut t1 = FetchableTopicResponse::default().with_partitions(vec![p3]);
    if version >= 13 {
        t0.topic_id = crate::protocol::wire_topic_id([5; 16]);
        t1.topic_id = crate::protocol::wire_topic_id([6; 16]);
    } else {
        t0.topic = TopicName(StrBytes::from_static_str("alpha"));
        t1.topic = TopicName(StrBytes::from_static_str("beta"));
    }
    let mut resp = FetchResponse::default()
        .with_throttle_time_ms(if version >= 1 { 5 } else { 0 })
        .with_responses(vec![t0, t1]);
    if version >= 7 {
        resp.session_id = 77;
    }
    if version >= 16 {
        resp.node_endpoints = vec![NodeEndpoint::default()
            .with_node_id(BrokerId(3))
            .with_host(StrBytes::from_static_str("b3"))
            .with_port(9092)
            .with_rack(Some(StrBytes::from_static_str("r1")))];
    }
    if version >= 12 {
        resp.unknown_tagged_fields = BTreeMap::from([(99, Bytes::from_static(b"later"))]);
    }
    resp
}

/// The frame after its size: correlation id, header, body.
fn frame(resp: &FetchResponse, version: i16, header_version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    let mut header = ResponseHeader::default().with_correlation_id(42);
    if header_version >= 1 {
        header.unknown_tagged_fields = BTreeMap::from([(3, Bytes::from_static(b"h"))]);
    }
    header.encode(&mut buf, header_version).unwrap();
    resp.encode(&mut buf, version).unwrap();
    buf.freeze()
}

async fn split(frame: &Bytes, version: i16, header_version: i16) -> Result<SplitFetch> {
    let id: [u8; 4] = frame[..4].try_into().unwrap();
    let mut input = &frame[4..];
    read_body(&mut input, id, frame.len() - 4, header_version, version).await
}

#[tokio::test]
async fn split_responses_decode_as_whole_ones_at_every_version() {
    for version in 4..=18 {
        let header_version = ApiKey::Fetch.response_header_version(version);
        let resp = response(version);
        let frame = frame(&resp, version, header_version);
        let whole: FetchResponse =
            crate::protocol::decode_response::<FetchRequest>(frame.clone(), version).unwrap();

        let got = split(&frame, version, header_version).await.unwrap();
        assert_eq!(got.record_sets.len(), 4, "v{version}");
        // The skeleton holds everything but the record sets' bytes.
        assert!(
            got.skeleton.len() < frame.len() - 70_000,
            "v{version}: skeleton {} of {}",
            got.skeleton.len(),
            frame.len()
        );
        let mut decoded: FetchResponse =
            crate::protocol::decode_response::<FetchRequest>(got.skeleton.clone(), version)
                .unwrap();
        attach(&mut decoded, got.record_sets).unwrap();
        assert_eq!(decoded, whole, "v{version}");
        let sets: Vec<_> = decoded
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.records.clone())
            .collect();
        assert_eq!(sets[1], None, "v{version}: null stays null");
        assert_eq!(
            sets[2].as_deref(),
            Some(&[][..]),
            "v{version}: empty stays empty"
        );
        // Each record set owns its memory: no slice of a shared buffer.
        let full = sets[0].clone().unwrap();
        drop((decoded, sets));
        assert!(full.is_unique(), "v{version}: record set shares its buffer");
    }
}

#[tokio::test]
async fn a_truncated_or_lying_response_is_refused() {
    let version = 16;
    let hv = ApiKey::Fetch.response_header_version(version);
    let frame = frame(&response(version), version, hv);
    for cut in [5, 20, 60, frame.len() - 10] {
        // The declared size is the whole frame, the stream ends early.
        let id: [u8; 4] = frame[..4].try_into().unwrap();
        let mut input = &frame[4..cut];
        let e = read_body(&mut input, id, frame.len() - 4, hv, version)
            .await
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} accepted"));
        assert!(e.to_string().contains("mid-frame"), "{e}");
        // The declared size ends early: a malformed frame, nothing read past it.
        let mut input = &frame[4..];
        let e = read_body(&mut input, id, cut - 4, hv, version)
            .await
            .err()
            .unwrap_or_else(|| panic!("size {cut} accepted"));
        assert!(e.to_string().contains("malformed Fetch response"), "{e}");
    }
    // A topic array claiming 2^31 elements in a few bytes is refused before any is read.
    let mut lying = BytesMut::new();
    lying.put_i32(42);
    lying.put_u8(0); // header tags
    lying.put_i32(0); // throttle
    lying.put_i16(0); // error
    lying.put_i32(0); // session
    lying.put_u8(0xff);
    lying.put_u8(0xff);
    lying.put_u8(0xff);
    lying.put_u8(0xff);
    lying.put_u8(0x07);
    let lying = lying.freeze();
    let e = split(&lying, version, hv).await.err().expect("refused");
    assert!(e.to_string().contains("claims"), "{e}");
}

#[test]
fn attach_refuses_a_count_mismatch() {
    let mut resp = response(12);
    assert!(attach(&mut resp, vec![None; 3]).is_err());
    assert!(attach(&mut resp, vec![None; 4]).is_ok());
}

#[tokio::test]
async fn a_large_record_set_leaves_the_heap_and_is_released_with_its_last_record() {
    // Issue 16: a record set of ~1 MiB from the heap stays resident in the malloc arena of the
    // runtime thread that read it after the application has dropped it; memory of its own goes
    // back to the system, or waits for the next set of its size in the bounded idle list.
    let version = 16;
    let hv = ApiKey::Fetch.response_header_version(version);
    let big = MAPPED_FROM + 12_345;
    let wire = vec![7u8; big];
    let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic_id(crate::protocol::wire_topic_id([5; 16]))
        .with_partitions(vec![
            partition(0, Some(Bytes::from(wire.clone()))),
            partition(1, Some(Bytes::from(vec![8u8; 1000]))),
        ])]);
    let frame = frame(&resp, version, hv);
    let got = split(&frame, version, hv).await.unwrap();
    let set = got.record_sets[0].clone().unwrap();
    assert_eq!(&set[..], &wire[..], "the bytes are the wire's");
    assert_eq!(got.record_sets[1].as_deref(), Some(&[8u8; 1000][..]));
    drop(got);
    // A record is a slice of its set: the set lives as long as any record.
    let record = set.slice(100..200);
    drop(set);
    let addr = record.as_ptr() as usize - 100;
    // A mapping starts on a page; a large block from glibc does not (its header is there).
    assert_eq!(
        addr % 4096,
        0,
        "record set at {addr:#x}: not a mapping of its own"
    );
    #[cfg(target_os = "linux")]
    {
        assert!(mapped(addr));
        assert!(!IDLE.holds(addr), "a record still holds the set");
        drop(record);
        // (Only another thread mapping memory into the freed range in the meantime could
        // fill it again.)
        assert!(
            !mapped(addr) || IDLE.holds(addr),
            "the record set's memory is neither unmapped nor idle after its last record"
        );
    }
}
