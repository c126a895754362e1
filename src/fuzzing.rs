//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; hidden, not part of the
//! API and not covered by semver).
//!
//! Each function feeds arbitrary bytes to one decoder the client runs on bytes from the
//! network, exactly as the client calls it, and returns the typed error it produced — the fuzz
//! targets only check that nothing panics, aborts or allocates out of proportion.

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::compression::Compression;
use crate::error::Result;
use crate::protocol::{self, records};

use crate::protocol::for_each_decoded_response;

macro_rules! count {
    ($($r:ident),*) => { [$(stringify!($r)),*].len() };
}

/// How many response types [`response_frame`] chooses from.
pub const RESPONSES: usize = for_each_decoded_response!(count);

/// Decodes `frame` — a response frame after its length prefix: correlation id, header, body —
/// as the client decodes the response to API number `api % RESPONSES` (Produce, Fetch,
/// ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup, Heartbeat,
/// LeaveGroup, SyncGroup, ApiVersions, CreateTopics, DeleteTopics, InitProducerId,
/// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeCluster,
/// SaslHandshake, SaslAuthenticate), at the
/// version `version` picks from the client's range for it. Returns the API's name.
pub fn response_frame(api: u8, version: u8, frame: &[u8]) -> (&'static str, Result<()>) {
    let frame = Bytes::copy_from_slice(frame);
    let mut i = usize::from(api) % RESPONSES;
    macro_rules! dispatch {
        ($($r:ident),*) => {
            $(
                if i == 0 {
                    let key = ApiKey::try_from(<$r as kafka_protocol::protocol::Request>::KEY)
                        .expect("a known API");
                    let (lo, hi) = protocol::client_range(key);
                    let v = lo + (i16::from(version) % (hi - lo + 1));
                    let res = protocol::decode_response::<$r>(frame, v).map(drop);
                    return (stringify!($r), res);
                }
                i -= 1;
            )*
        };
    }
    for_each_decoded_response!(dispatch);
    unreachable!("{i} left over: the index is reduced modulo RESPONSES")
}

/// The largest decompressed size the record-batch targets allow a batch (the consumer passes
/// its prefetch budget; a smaller cap keeps the fuzzer fast and changes no code path).
pub const MAX_DECOMPRESSED: usize = 1 << 20;

/// Decodes `data` as a Fetch response's record set, as the consumer does with `check.crcs`
/// on — after forcing the first batch's codec bits to `codec` and giving it a correct CRC, so
/// the fuzzer reaches the decompressor and the record decoder instead of stopping at the
/// checksum. Returns the number of records decoded.
pub fn record_batches(codec: &str, data: &[u8]) -> Result<usize> {
    let codec = Compression::from_name(codec).expect("a codec name");
    let mut data = data.to_vec();
    // baseOffset 0..8, batchLength 8..12, leader epoch 12..16, magic 16, CRC 17..21,
    // attributes 21..23, then the CRC'd rest.
    if data.len() >= 23 {
        data[22] = (data[22] & !0x07) | codec.attribute_bits() as u8;
        let length = i32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
        let end = (12 + length.max(0) as usize).min(data.len());
        if end > 21 {
            let crc = crc32c::crc32c(&data[21..end]);
            data[17..21].copy_from_slice(&crc.to_be_bytes());
        }
    }
    let data = Bytes::from(data);
    // The consumer's way too: each batch checked, then its records decoded one at a time.
    // Both ways must agree, record for record.
    let mut views = records::Batches::new(data.clone(), true, MAX_DECOMPRESSED);
    let mut lazy = 0;
    while let Some(view) = views.next_view() {
        let Ok(view) = view else { break };
        let Ok(count) = view.check(i64::MIN) else {
            break;
        };
        let decoded = view.cursor().count();
        assert_eq!(decoded, count, "a checked batch decodes every record");
        // Also when it waited compressed and is decompressed again.
        assert_eq!(view.compressed_cursor().count(), count);
        lazy += count;
    }
    let batches = records::decode_batches(data, true, MAX_DECOMPRESSED)?;
    let eager = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(
        lazy, eager,
        "checked and decoded batches hold the same records"
    );
    Ok(eager)
}

/// Decodes `data` as consumer-protocol group metadata: a JoinGroup subscription when
/// `assignment` is false, a SyncGroup assignment when true.
pub fn consumer_protocol(assignment: bool, data: &[u8]) -> Result<()> {
    let data = Bytes::copy_from_slice(data);
    if assignment {
        crate::consumer::assignor::decode_assignment(data).map(drop)
    } else {
        crate::consumer::assignor::decode_subscription(data).map(drop)
    }
}

/// The fuzz targets, by name: what `fuzz/Cargo.toml` builds and `cargo xtask fuzz` runs.
pub const TARGETS: &[&str] = &[
    "response_frame",
    "record_batch_none",
    "record_batch_gzip",
    "record_batch_snappy",
    "record_batch_lz4",
    "record_batch_zstd",
    "consumer_protocol",
];

/// Runs one fuzz input through the target `target`, as the target binary does.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "response_frame" => {
            if let [api, version, frame @ ..] = data {
                let _ = response_frame(*api, *version, frame);
            }
        }
        "consumer_protocol" => {
            if let [which, rest @ ..] = data {
                let _ = consumer_protocol(which & 1 == 1, rest);
            }
        }
        t => {
            let codec = t.strip_prefix("record_batch_").expect("a known target");
            let _ = record_batches(codec, data);
        }
    }
}

/// Well-formed inputs to start each target from: every response at every version the client
/// speaks (kafka-protocol's encoding of its default value), a batch of three records with
/// headers in each codec, and subscriptions and assignments of every version.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::protocol::{Encodable, Request};

    let mut out = Vec::new();
    let mut i: u8 = 0;
    macro_rules! responses {
        ($($r:ident),*) => {
            $(
                let key = ApiKey::try_from(<$r as Request>::KEY).expect("a known API");
                let (lo, hi) = protocol::client_range(key);
                for v in lo..=hi {
                    let mut frame = bytes::BytesMut::new();
                    let header = ResponseHeader::default().with_correlation_id(7);
                    if header.encode(&mut frame, key.response_header_version(v)).is_err()
                        || <$r as Request>::Response::default().encode(&mut frame, v).is_err()
                    {
                        continue;
                    }
                    let mut input = vec![i, (v - lo) as u8];
                    input.extend_from_slice(&frame);
                    out.push(("response_frame", input));
                }
                i += 1;
            )*
        };
    }
    for_each_decoded_response!(responses);
    debug_assert_eq!(usize::from(i), RESPONSES);

    let headers = [crate::record::Header::new("trace", &b"abc"[..])];
    for (target, codec) in [
        ("record_batch_none", Compression::None),
        ("record_batch_gzip", Compression::Gzip),
        ("record_batch_snappy", Compression::Snappy),
        ("record_batch_lz4", Compression::Lz4),
        ("record_batch_zstd", Compression::Zstd),
    ] {
        let mut b = records::BatchBuilder::new(256);
        for n in 0..3u8 {
            let (key, value) = ([b'k', n], [b'v'; 40]);
            let fields = records::fields_len(Some(2), Some(value.len()), &headers);
            let len = b.record_len(1_700_000_000_000 + i64::from(n), fields);
            b.append_sized(len, 1_700_000_000_000, Some(&key), Some(&value), &headers);
        }
        let batch = b.finish(codec, None).expect("a batch encodes");
        out.push((target, batch.to_vec()));
    }

    use crate::consumer::assignor::{self, Assignment, Subscription};
    let subscription = Subscription {
        topics: vec!["orders".into(), "payments".into()],
        user_data: Some(Bytes::from_static(b"data")),
        owned_partitions: vec![("orders".into(), vec![0, 2])],
        generation_id: 4,
        rack_id: Some("r1".into()),
    };
    for v in 0..=3 {
        let mut input = vec![0];
        input.extend_from_slice(&assignor::encode_subscription(&subscription, v));
        out.push(("consumer_protocol", input));
    }
    let assignment = Assignment {
        partitions: vec![("orders".into(), vec![0, 1, 2])],
        user_data: None,
    };
    for v in 0..=3 {
        let mut input = vec![1];
        input.extend_from_slice(&assignor::encode_assignment(&assignment, v));
        out.push(("consumer_protocol", input));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed fuzz input (seeds, and inputs that once crashed) still decodes to a
    /// typed result: a regression test for whatever the fuzzers found.
    #[test]
    fn the_committed_fuzz_corpus_replays_without_panicking() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let mut replayed = 0;
        for target in TARGETS {
            let dir = root.join(target);
            let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
                panic!("{}: {e} (run `cargo xtask fuzz --seed`)", dir.display())
            });
            for entry in entries {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                run(target, &data);
                replayed += 1;
            }
        }
        assert!(replayed >= seeds().len(), "{replayed} inputs");
    }

    #[test]
    fn seeds_decode_as_well_formed_input() {
        let mut ok = 0;
        for (target, data) in seeds() {
            match target {
                "response_frame" => {
                    let (name, res) = response_frame(data[0], data[1], &data[2..]);
                    res.unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                "consumer_protocol" => consumer_protocol(data[0] == 1, &data[1..]).unwrap(),
                t => {
                    let codec = t.strip_prefix("record_batch_").unwrap();
                    assert_eq!(record_batches(codec, &data).unwrap(), 3, "{t}");
                }
            }
            ok += 1;
        }
        assert!(ok > 100, "{ok}");
    }

    #[test]
    fn a_lying_api_versions_reply_is_a_protocol_error_not_an_abort() {
        // ApiVersions (index 11) v3: correlation id, error code, a compact array claiming
        // 2^32 - 2 entries. Before the bounds pre-pass this aborted the process.
        let frame = [0, 0, 0, 7, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0];
        let (name, res) = response_frame(11, 3, &frame);
        assert_eq!(name, "ApiVersionsRequest");
        let e = res.unwrap_err();
        assert!(e.to_string().contains("claims 4294967294 elements"), "{e}");
    }
}
