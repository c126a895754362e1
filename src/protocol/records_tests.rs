use super::*;
use proptest::prelude::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A record as the tests write it.
#[derive(Debug, Clone)]
struct Rec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn build(records: &[Rec], codec: Compression) -> BytesMut {
    let mut b = BatchBuilder::new(128);
    for r in records {
        b.append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    b.finish(codec, None).unwrap()
}

fn assert_records_match(decoded: &[DecodedRecord], written: &[Rec], base_offset: i64) {
    assert_eq!(decoded.len(), written.len());
    for (i, (d, w)) in decoded.iter().zip(written).enumerate() {
        assert_eq!(d.offset, base_offset + i as i64);
        assert_eq!(d.timestamp, w.timestamp, "record {i}");
        assert_eq!(d.key.as_deref(), w.key.as_deref(), "record {i}");
        assert_eq!(d.value.as_deref(), w.value.as_deref(), "record {i}");
        assert_eq!(d.headers, w.headers, "record {i}");
    }
}

fn sample_records() -> Vec<Rec> {
    let big: Vec<u8> = b"compressible payload "
        .iter()
        .copied()
        .cycle()
        .take(5000)
        .collect();
    vec![
        Rec {
            timestamp: 1_700_000_000_000,
            key: Some(b"key-1".to_vec()),
            value: Some(b"value-1".to_vec()),
            headers: vec![Header::new("trace", "abc"), Header::new("trace", "def")],
        },
        Rec {
            timestamp: 1_700_000_000_500,
            key: None,
            value: None,
            headers: vec![Header::null("nothing"), Header::new("", "")],
        },
        Rec {
            // Earlier than the base: a negative timestamp delta.
            timestamp: 1_699_999_999_000,
            key: Some(Vec::new()),
            value: Some(Vec::new()),
            headers: Vec::new(),
        },
        Rec {
            timestamp: 1_700_000_001_000,
            key: Some(vec![0xFF; 300]),
            value: Some(big),
            headers: vec![Header::new("bin", vec![0u8, 1, 2, 255])],
        },
    ]
}

#[test]
fn varints_round_trip_at_their_extremes() {
    let ints = [0, 1, -1, 63, -64, 64, 8191, -8192, i32::MAX, i32::MIN];
    let longs = [0, -1, 1 << 40, i64::MAX, i64::MIN];
    let mut buf = BytesMut::new();
    for v in ints {
        put_varint(&mut buf, v);
    }
    for v in longs {
        // Varlongs only occur in a record's fixed fields, which `append_sized` assembles on
        // the stack.
        let mut scratch = Scratch::new();
        scratch.varlong(v);
        buf.extend_from_slice(scratch.bytes());
    }
    for v in ints {
        let (mut direct, mut scratch) = (BytesMut::new(), Scratch::new());
        put_varint(&mut direct, v);
        scratch.varint(v);
        assert_eq!(scratch.bytes(), &direct[..], "{v}");
    }
    let expected_len: usize = ints.iter().map(|&v| varint_len(v)).sum::<usize>()
        + longs.iter().map(|&v| varlong_len(v)).sum::<usize>();
    assert_eq!(buf.len(), expected_len);
    assert_eq!(
        (varint_len(-1), varint_len(i32::MIN), varlong_len(i64::MIN)),
        (1, 5, 10)
    );
    let bytes = buf.freeze();
    let mut r = Reader {
        buf: &bytes,
        pos: 0,
    };
    for v in ints {
        assert_eq!(r.varint().unwrap(), v);
    }
    for v in longs {
        assert_eq!(r.varlong_within(bytes.len()).unwrap(), v);
    }
    // The one-byte fast path respects the limit too: a byte at the limit is not read.
    let one = Bytes::from_static(&[0x02, 0x04]);
    let mut r = Reader { buf: &one, pos: 0 };
    assert_eq!(r.varint_within(1).unwrap(), 1);
    assert!(r.varint_within(1).is_err(), "past the limit");
    assert_eq!((r.pos, r.varint_within(2).unwrap()), (1, 2));
    // Six continuation bytes are not a varint.
    let long = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert!(Reader { buf: &long, pos: 0 }.varint().is_err());
}

#[test]
fn every_codec_round_trips_with_null_empty_and_duplicate_fields() {
    let records = sample_records();
    for codec in CODECS {
        let batch = build(&records, codec).freeze();
        let decoded = decode_batches(batch, true, 1 << 20).unwrap();
        assert_eq!(decoded.len(), 1, "{codec:?}");
        let b = &decoded[0];
        assert_eq!(b.compression, codec);
        assert_eq!(b.base_offset, 0);
        assert_eq!(b.partition_leader_epoch, -1);
        assert_eq!(b.last_offset_delta, 3);
        assert_eq!(b.base_timestamp, 1_700_000_000_000);
        assert_eq!(b.max_timestamp, 1_700_000_001_000);
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_sequence),
            (-1, -1, -1)
        );
        assert!(!b.log_append_time && !b.transactional && !b.control);
        assert_records_match(&b.records, &records, 0);
    }
}

#[test]
fn compression_shrinks_the_records_section_only() {
    let records = sample_records();
    let plain = build(&records, Compression::None);
    for codec in CODECS.into_iter().skip(1) {
        let batch = build(&records, codec);
        assert!(batch.len() < plain.len(), "{codec:?}");
        let records_section =
            compression::decompress(codec, &batch[RECORD_BATCH_OVERHEAD..], 1 << 20).unwrap();
        assert_eq!(
            records_section,
            &plain[RECORD_BATCH_OVERHEAD..],
            "{codec:?}"
        );
    }
}

#[test]
fn uncompressed_fields_are_slices_of_the_input() {
    let batch = build(&sample_records(), Compression::None).freeze();
    let range = batch.as_ptr() as usize..batch.as_ptr() as usize + batch.len();
    let decoded = decode_batches(batch.clone(), true, 0).unwrap();
    let value = decoded[0].records[0].value.as_ref().unwrap();
    assert!(range.contains(&(value.as_ptr() as usize)));
    let header = decoded[0].records[0].headers[0].value.as_ref().unwrap();
    assert!(range.contains(&(header.as_ptr() as usize)));
}

#[test]
fn empty_batch_has_sentinel_header_fields() {
    let b = BatchBuilder::new(0);
    assert!(b.is_empty());
    assert_eq!(b.size(), RECORD_BATCH_OVERHEAD);
    assert_eq!(b.base_timestamp(), -1);
    let decoded =
        decode_batches(b.finish(Compression::None, None).unwrap().freeze(), true, 0).unwrap();
    assert_eq!(decoded[0].last_offset_delta, -1);
    assert!(decoded[0].records.is_empty());
}

#[test]
fn stamp_producer_rewrites_fields_and_keeps_the_crc_valid() {
    let records = sample_records();
    for codec in [Compression::None, Compression::Zstd] {
        let mut batch = build(&records, codec);
        stamp_producer(&mut batch, 4242, 7, 1000, true);
        let b = &decode_batches(batch.clone().freeze(), true, 1 << 20).unwrap()[0];
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_sequence),
            (4242, 7, 1000)
        );
        assert!(b.transactional);
        assert_eq!(b.compression, codec, "the codec bits survive");
        assert_records_match(&b.records, &records, 0);
        // An epoch bump re-stamps the same bytes.
        stamp_producer(&mut batch, 4242, 8, 0, false);
        let b = &decode_batches(batch.freeze(), true, 1 << 20).unwrap()[0];
        assert_eq!(
            (b.producer_epoch, b.base_sequence, b.transactional),
            (8, 0, false)
        );
    }
}

#[test]
fn corrupted_batches_fail_the_crc_check() {
    let batch = build(&sample_records(), Compression::None);
    // A flipped bit in a value, in the attributes, and in the stored CRC itself.
    for at in [batch.len() - 20, ATTRIBUTES_AT + 1, CRC_AT] {
        let mut bad = batch.clone();
        bad[at] ^= 0x01;
        let e = decode_batches(bad.clone().freeze(), true, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("CRC-32C"), "{e}");
        if at != ATTRIBUTES_AT + 1 {
            // Without the check the batch still parses (the mock cluster's CRC-0 markers).
            decode_batches(bad.freeze(), false, 1 << 20).unwrap();
        }
    }
}

#[test]
fn truncated_tail_batch_is_ignored() {
    let first = build(&sample_records()[..2], Compression::None);
    let second = build(&sample_records(), Compression::Lz4);
    let mut data = first.to_vec();
    data.extend_from_slice(&second);
    let all = decode_batches(Bytes::from(data.clone()), true, 1 << 20).unwrap();
    assert_eq!(all.len(), 2);
    for cut in [1, 11, 12, 17, RECORD_BATCH_OVERHEAD, second.len() - 1] {
        let partial = Bytes::from(data[..first.len() + cut].to_vec());
        let got = decode_batches(partial, true, 1 << 20).unwrap();
        assert_eq!(got.len(), 1, "cut at {cut}");
        assert_eq!(got[0].records.len(), 2);
    }
    assert!(decode_batches(Bytes::new(), true, 0).unwrap().is_empty());
}

#[test]
fn other_magic_values_are_named_in_the_error() {
    let mut batch = build(&sample_records(), Compression::None);
    batch[16] = 1;
    let e = decode_batches(batch.freeze(), false, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("magic 1"), "{e}");
}

#[test]
fn decompression_is_bounded_per_batch() {
    let records = sample_records();
    let batch = build(&records, Compression::Gzip).freeze();
    let e = decode_batches(batch.clone(), true, 1000).unwrap_err();
    assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
    decode_batches(batch, true, 1 << 20).unwrap();
}

#[test]
fn lying_counts_and_lengths_are_protocol_errors() {
    let one = &sample_records()[..1];
    // A record count far beyond what the bytes hold.
    let mut batch = build(one, Compression::None);
    batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let e = decode_batches(batch.freeze(), false, 0).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
    // Fewer records declared than present: trailing bytes.
    let mut batch = build(&sample_records()[..2], Compression::None);
    batch[57..61].copy_from_slice(&1i32.to_be_bytes());
    assert!(decode_batches(batch.freeze(), false, 0).is_err());
    // A negative batch length.
    let mut batch = build(one, Compression::None);
    batch[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(decode_batches(batch.freeze(), false, 0).is_err());
    // Unknown codec id 6.
    let mut batch = build(one, Compression::None);
    batch[22] = 6;
    let e = decode_batches(batch.freeze(), false, 0).unwrap_err();
    assert!(e.to_string().contains("codec id 6"), "{e}");
}

/// Header fields of the hand-built batch, written out byte by byte from the protocol spec.
fn hand_built_batch(attributes: i16) -> Vec<u8> {
    // Record 0: attributes 0, timestampDelta 0, offsetDelta 0, key "k" (length 1 -> zigzag
    // 0x02), value "v1" (0x04), one header "h" with a null value (-1 -> 0x01).
    let r0 = [
        0x00, 0x00, 0x00, 0x02, b'k', 0x04, b'v', b'1', 0x02, 0x02, b'h', 0x01,
    ];
    // Record 1: timestampDelta 300 (zigzag 600 = 0xD8 0x04), offsetDelta 1 (0x02), null key
    // (0x01), empty value (0x00), no headers.
    let r1 = [0x00, 0xD8, 0x04, 0x02, 0x01, 0x00, 0x00];
    let mut records = vec![(r0.len() * 2) as u8]; // length 12 -> zigzag 24
    records.extend_from_slice(&r0);
    records.push((r1.len() * 2) as u8); // length 7 -> zigzag 14
    records.extend_from_slice(&r1);

    let mut b = Vec::new();
    b.extend_from_slice(&100i64.to_be_bytes()); // baseOffset
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes()); // batchLength
    b.extend_from_slice(&5i32.to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // baseTimestamp
    b.extend_from_slice(&1_700_000_000_300i64.to_be_bytes()); // maxTimestamp
    b.extend_from_slice(&9i64.to_be_bytes()); // producerId
    b.extend_from_slice(&1i16.to_be_bytes()); // producerEpoch
    b.extend_from_slice(&20i32.to_be_bytes()); // baseSequence
    b.extend_from_slice(&2i32.to_be_bytes()); // records count
    assert_eq!(b.len(), RECORD_BATCH_OVERHEAD);
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn hand_built_batch_decodes_to_the_spec_fields() {
    let data = hand_built_batch(0);
    let got = decode_batches(Bytes::from(data.clone()), true, 0).unwrap();
    let b = &got[0];
    assert_eq!(
        (b.base_offset, b.partition_leader_epoch, b.last_offset_delta),
        (100, 5, 1)
    );
    assert_eq!(
        (b.producer_id, b.producer_epoch, b.base_sequence),
        (9, 1, 20)
    );
    assert_eq!(b.compression, Compression::None);
    let r = &b.records;
    assert_eq!((r[0].offset, r[0].timestamp), (100, 1_700_000_000_000));
    assert_eq!(r[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(r[0].value.as_deref(), Some(&b"v1"[..]));
    assert_eq!(r[0].headers, vec![Header::null("h")]);
    assert_eq!((r[1].offset, r[1].timestamp), (101, 1_700_000_000_300));
    assert_eq!(
        (r[1].key.as_deref(), r[1].value.as_deref()),
        (None, Some(&b""[..]))
    );
    assert!(r[1].headers.is_empty());

    // Our encoder writes the same records section for the same records.
    let mut builder = BatchBuilder::new(0);
    builder.append(
        1_700_000_000_000,
        Some(b"k"),
        Some(b"v1"),
        &[Header::null("h")],
    );
    builder.append(1_700_000_000_300, None, Some(b""), &[]);
    let ours = builder.finish(Compression::None, None).unwrap();
    assert_eq!(
        &ours[RECORD_BATCH_OVERHEAD..],
        &data[RECORD_BATCH_OVERHEAD..]
    );
    assert_eq!(&ours[23..43], &data[23..43], "offset delta and timestamps");

    // LogAppendTime + transactional + control: every record carries maxTimestamp.
    let data = hand_built_batch(0x08 | 0x10 | 0x20);
    let b = &decode_batches(Bytes::from(data), true, 0).unwrap()[0];
    assert!(b.log_append_time && b.transactional && b.control);
    assert!(b.records.iter().all(|r| r.timestamp == 1_700_000_000_300));
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..max))
}

fn arb_record() -> impl Strategy<Value = Rec> {
    let header = ("[a-z]{0,4}", arb_bytes(20)).prop_map(|(key, value)| Header {
        key,
        value: value.map(Bytes::from),
    });
    (
        prop_oneof![any::<i64>(), 1_600_000_000_000i64..1_800_000_000_000i64],
        arb_bytes(200),
        arb_bytes(300),
        proptest::collection::vec(header, 0..4),
    )
        .prop_map(|(timestamp, key, value, headers)| Rec {
            timestamp,
            key,
            value,
            headers,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any sequence of varints and varlongs, written by both encoders, reads back in order
    /// with the predicted lengths; cut anywhere, the reader fails instead of inventing a value.
    #[test]
    fn varints_round_trip(
        ints in proptest::collection::vec(any::<i32>(), 0..40),
        longs in proptest::collection::vec(any::<i64>(), 0..40),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut buf = BytesMut::new();
        for &v in &ints {
            let mut scratch = Scratch::new();
            scratch.varint(v);
            put_varint(&mut buf, v);
            prop_assert_eq!(scratch.bytes(), &buf[buf.len() - varint_len(v)..]);
        }
        for &v in &longs {
            let mut scratch = Scratch::new();
            scratch.varlong(v);
            prop_assert_eq!(scratch.bytes().len(), varlong_len(v));
            buf.extend_from_slice(scratch.bytes());
        }
        let bytes = buf.freeze();
        let mut r = Reader { buf: &bytes, pos: 0 };
        for &v in &ints {
            prop_assert_eq!(r.varint_within(bytes.len()).unwrap(), v);
        }
        for &v in &longs {
            prop_assert_eq!(r.varlong_within(bytes.len()).unwrap(), v);
        }
        prop_assert_eq!(r.pos, bytes.len());
        if !ints.is_empty() {
            // A limit inside the last varint: every earlier value reads, the last does not.
            let last = *ints.last().unwrap();
            let end: usize = ints.iter().map(|&v| varint_len(v)).sum();
            let limit = end - 1 - cut.index(varint_len(last));
            let mut r = Reader { buf: &bytes, pos: 0 };
            for &v in &ints[..ints.len() - 1] {
                prop_assert_eq!(r.varint_within(limit).unwrap(), v);
            }
            prop_assert!(r.varint_within(limit).is_err());
        }
    }

    #[test]
    fn encoded_len_is_the_exact_growth_and_batches_round_trip(
        records in proptest::collection::vec(arb_record(), 1..20),
        codec in 0..5usize,
    ) {
        let mut b = BatchBuilder::new(0);
        for r in &records {
            let predicted = b.encoded_len(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
            let bound = BatchBuilder::max_record_len(
                r.key.as_ref().map(Vec::len), r.value.as_ref().map(Vec::len), &r.headers);
            prop_assert!(predicted <= bound);
            let before = b.size();
            b.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
            prop_assert_eq!(b.size() - before, predicted);
        }
        prop_assert_eq!(b.record_count(), records.len() as i32);
        prop_assert_eq!(b.base_timestamp(), records[0].timestamp);
        let batch = b.finish(CODECS[codec], None).unwrap().freeze();
        let decoded = decode_batches(batch, true, 1 << 20).unwrap();
        assert_records_match(&decoded[0].records, &records, 0);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), crc in any::<bool>()) {
        let _ = decode_batches(Bytes::from(data), crc, 1 << 16);
    }

    #[test]
    fn mutated_batches_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        codec in 0..5usize,
    ) {
        let mut batch = build(&sample_records(), CODECS[codec]).to_vec();
        for (at, byte) in flips {
            // Mostly past the header, where the record parser is exercised.
            let i = at % batch.len();
            batch[i] ^= byte;
        }
        let _ = decode_batches(Bytes::from(batch), false, 1 << 16);
    }
}

/// Interop with librdkafka through its in-process mock cluster: its batches decode here, and
/// ours are accepted by its consumer with CRC checks on.
mod interop {
    use std::time::Duration;

    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{FetchRequest, ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers, Message, OwnedHeaders};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    use super::*;
    use crate::Client;

    const STEP: Duration = Duration::from_secs(30);

    async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
        tokio::time::timeout(STEP, fut)
            .await
            .unwrap_or_else(|_| panic!("timed out after {STEP:?}: {what}"))
    }

    /// Records with keys, headers (duplicate keys, a null value) and compressible values, so
    /// librdkafka does not fall back to sending them uncompressed.
    fn interop_records(tag: &str) -> Vec<Rec> {
        let value = |i: usize| format!("{tag} value {i} ").repeat(40).into_bytes();
        vec![
            Rec {
                timestamp: 1_700_000_000_000,
                key: Some(format!("{tag}-k0").into_bytes()),
                value: Some(value(0)),
                headers: vec![Header::new("h", "1"), Header::new("h", "2")],
            },
            Rec {
                timestamp: 1_700_000_000_010,
                key: None,
                value: Some(value(1)),
                headers: vec![Header::null("n")],
            },
            Rec {
                timestamp: 1_700_000_000_020,
                key: Some(format!("{tag}-k2").into_bytes()),
                value: Some(value(2)),
                headers: Vec::new(),
            },
        ]
    }

    async fn client_for(
        mock: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    ) -> Client {
        within(
            "client bootstrap",
            Client::builder()
                .bootstrap_servers(mock.bootstrap_servers())
                .build(),
        )
        .await
        .unwrap()
    }

    /// Reads partition 0 of `topic` from offset 0 with raw Fetch requests until `want` records
    /// arrived (the mock answers with one batch per fetch).
    async fn fetch_all(client: &Client, topic: &str, want: usize) -> Vec<DecodedBatch> {
        let leader = within("leader", client.inner.leader(topic, 0))
            .await
            .unwrap();
        let conn = within("connection", client.inner.broker(leader))
            .await
            .unwrap();
        let mut batches: Vec<DecodedBatch> = Vec::new();
        let mut offset = 0i64;
        let deadline = tokio::time::Instant::now() + STEP;
        while batches.iter().map(|b| b.records.len()).sum::<usize>() < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fetching {topic} took too long"
            );
            let req = FetchRequest::default()
                .with_max_wait_ms(200)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)])]);
            // By name: v12 at most (v13+ names topics by id).
            let version = crate::protocol::by_name_version(
                conn.version(kafka_protocol::messages::ApiKey::Fetch)
                    .unwrap(),
                false,
            );
            let resp = within("fetch", conn.call(&req, version, STEP))
                .await
                .unwrap();
            let part = &resp.responses[0].partitions[0];
            assert_eq!(part.error_code, 0, "fetch error for {topic}");
            let data = part.records.clone().unwrap_or_default();
            for b in decode_batches(data, true, 1 << 20).unwrap() {
                offset = b.base_offset + i64::from(b.last_offset_delta) + 1;
                batches.push(b);
            }
        }
        batches
    }

    /// The codecs this build of librdkafka implements. The rdkafka dev-dependency is built
    /// without its `zstd` feature (no libzstd), and librdkafka then refuses
    /// `compression.codec=zstd` at configuration time; zstd is then checked against the
    /// reference `zstd` CLI instead (`zstd_interoperates_with_reference_libzstd`).
    fn librdkafka_codecs() -> Vec<Compression> {
        CODECS
            .into_iter()
            .filter(|c| {
                ClientConfig::new()
                    .set("compression.codec", c.name())
                    .create::<rdkafka::producer::BaseProducer>()
                    .is_ok()
            })
            .collect()
    }

    #[test]
    fn librdkafka_supports_at_least_the_classic_codecs() {
        let codecs = librdkafka_codecs();
        assert_eq!(&codecs[..4], &CODECS[..4], "{codecs:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_written_by_librdkafka_decode() {
        let mock = MockCluster::new(1).unwrap();
        let client = client_for(&mock).await;
        for codec in librdkafka_codecs() {
            let topic = format!("from-librdkafka-{}", codec.name());
            mock.create_topic(&topic, 1, 1).unwrap();
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", mock.bootstrap_servers())
                .set("compression.codec", codec.name())
                .set("linger.ms", "50")
                .create()
                .unwrap();
            let records = interop_records(codec.name());
            let sends = records.iter().map(|r| {
                let mut headers = OwnedHeaders::new();
                for h in &r.headers {
                    headers = headers.insert(rdkafka::message::Header {
                        key: &h.key,
                        value: h.value.as_deref(),
                    });
                }
                let mut rec = FutureRecord::<[u8], [u8]>::to(&topic)
                    .partition(0)
                    .timestamp(r.timestamp)
                    .headers(headers);
                if let Some(k) = &r.key {
                    rec = rec.key(k.as_slice());
                }
                if let Some(v) = &r.value {
                    rec = rec.payload(v.as_slice());
                }
                producer.send(rec, Duration::from_secs(10))
            });
            for delivery in within("librdkafka produce", futures::future::join_all(sends)).await {
                delivery.unwrap();
            }
            let batches = fetch_all(&client, &topic, records.len()).await;
            for b in &batches {
                assert_eq!(
                    b.compression, codec,
                    "{topic}: librdkafka used another codec"
                );
            }
            let decoded: Vec<DecodedRecord> = batches.into_iter().flat_map(|b| b.records).collect();
            assert_records_match(&decoded, &records, 0);
        }
        client.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_we_write_are_read_by_librdkafka() {
        let mock = MockCluster::new(1).unwrap();
        let client = client_for(&mock).await;
        for codec in librdkafka_codecs() {
            let topic = format!("to-librdkafka-{}", codec.name());
            mock.create_topic(&topic, 1, 1).unwrap();
            within("metadata", client.metadata(&[&topic]))
                .await
                .unwrap();
            let leader = within("leader", client.inner.leader(&topic, 0))
                .await
                .unwrap();
            let conn = within("connection", client.inner.broker(leader))
                .await
                .unwrap();
            let records = interop_records(codec.name());
            // Two batches, so offsets continue across our batch boundaries.
            for chunk in [&records[..2], &records[2..]] {
                let batch = build(chunk, codec);
                let req = ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(10_000)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.clone())))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch.freeze()))])]);
                // By name: v12 at most (v13 names topics by id).
                let version = crate::protocol::by_name_version(
                    conn.version(kafka_protocol::messages::ApiKey::Produce)
                        .unwrap(),
                    false,
                );
                let resp = within("produce", conn.call(&req, version, STEP))
                    .await
                    .unwrap();
                let part = &resp.responses[0].partition_responses[0];
                assert_eq!(part.error_code, 0, "{topic}: produce rejected");
            }

            let consumer: StreamConsumer = ClientConfig::new()
                .set("bootstrap.servers", mock.bootstrap_servers())
                .set("group.id", "records-interop")
                .set("enable.auto.commit", "false")
                .set("check.crcs", "true")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
            for (i, want) in records.iter().enumerate() {
                let msg = within("librdkafka consume", consumer.recv())
                    .await
                    .unwrap_or_else(|e| panic!("{topic}: librdkafka rejected record {i}: {e}"));
                assert_eq!(msg.offset(), i as i64, "{topic}");
                assert_eq!(msg.key(), want.key.as_deref(), "{topic} record {i}");
                assert_eq!(msg.payload(), want.value.as_deref(), "{topic} record {i}");
                assert_eq!(msg.timestamp().to_millis(), Some(want.timestamp));
                let headers: Vec<Header> = msg
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| Header {
                                key: h.key.to_owned(),
                                value: h.value.map(Bytes::copy_from_slice),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(headers, want.headers, "{topic} record {i}");
            }
        }
        client.close().await;
    }

    /// zstd against libzstd, the reference implementation, through its CLI: our frames decode
    /// there, and its frames (at a normal and a high level, whose window is larger) decode
    /// here. Needed only while librdkafka lacks zstd; with it, the tests above cover zstd.
    #[test]
    fn zstd_interoperates_with_reference_libzstd() {
        if librdkafka_codecs().contains(&Compression::Zstd) {
            return;
        }
        assert!(
            zstd_cli(&["--version"], b"").is_some(),
            "zstd interop is untested: librdkafka was built without libzstd and there is no \
             `zstd` CLI; enable rdkafka's `zstd` feature or install zstd"
        );
        let mut input = b"{\"user\":42,\"page\":\"/checkout\"} ".repeat(3000);
        input.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        let mut ours = Vec::new();
        compression::compress(Compression::Zstd, None, &input, &mut ours).unwrap();
        let decoded = zstd_cli(&["-d", "-c"], &ours).expect("zstd -d");
        assert!(decoded == input, "libzstd decoded our frame differently");
        for level in ["-1", "-3", "-19"] {
            let theirs = zstd_cli(&[level, "-c"], &input).expect("zstd -c");
            let decoded = compression::decompress(Compression::Zstd, &theirs, input.len()).unwrap();
            assert!(decoded == input, "level {level}");
        }
    }

    /// Runs the `zstd` CLI with `stdin`; `None` if it is not installed or fails.
    fn zstd_cli(args: &[&str], stdin: &[u8]) -> Option<Vec<u8>> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("zstd")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut pipe = child.stdin.take()?;
        let data = stdin.to_vec();
        // Feed stdin from another thread so a full stdout pipe cannot deadlock the two.
        let feeder = std::thread::spawn(move || pipe.write_all(&data));
        let out = child.wait_with_output().ok()?;
        feeder.join().ok()?.ok()?;
        out.status.success().then_some(out.stdout)
    }
}

#[test]
fn a_batch_finished_without_its_crc_gets_the_same_bytes_once_written_or_stamped() {
    let build = || {
        let mut b = BatchBuilder::new(128);
        for i in 0..5 {
            b.append(1_000 + i, Some(b"k"), Some(format!("v{i}").as_bytes()), &[]);
        }
        b
    };
    let full = build().finish(Compression::None, None).unwrap();
    let mut partial = build().finish_without_crc().unwrap();
    assert_ne!(partial[CRC_AT..CRC_AT + 4], full[CRC_AT..CRC_AT + 4]);
    write_crc(&mut partial);
    assert_eq!(partial, full);
    // Stamping writes the CRC too: the same as stamping a finished batch.
    let (mut a, mut b) = (build().finish_without_crc().unwrap(), full.clone());
    stamp_producer(&mut a, 7, 1, 42, false);
    stamp_producer(&mut b, 7, 1, 42, false);
    assert_eq!(a, b);
    let decoded = decode_batches(a.freeze(), true, 1 << 20).unwrap();
    assert_eq!((decoded[0].producer_id, decoded[0].base_sequence), (7, 42));
}
