//! One partition's fetched records, waiting for the application: checked batches whose
//! records are decoded one at a time as `recv` takes them.
//!
//! Why not a `Vec<ConsumerRecord>` built by the fetcher: a decoded record is 136 bytes of
//! struct on top of its bytes, so a prefetch buffer of 100-byte records held more than twice
//! its data (heaptrack, 100b-zstd consume: 20 MB of record structs next to 11 MB of
//! decompressed batches), and every record was moved twice (batch → delivery → application).
//! Here a buffered record costs its bytes in the batch and nothing else; the fetcher has
//! already checked every record ([`BatchView::check`]), so a malformed one still fails the
//! fetch, never `recv`.
//!
//! A compressed batch waits decompressed while the prefetch budget has room for that (the
//! fetcher charges it), and otherwise as fetched, decompressed again when `recv` reaches it:
//! every fetched batch is kept, none dropped to be fetched again, and memory stays within the
//! budget plus the one batch being handed out. Always waiting compressed cost 25–30 % more
//! CPU per record in the bench for a few MiB of RSS (`docs/PERFORMANCE.md`, stop 24).
//!
//! Owned by a `Delivery`: the fetcher task builds it, the application's `recv` drains it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::consumer::record::{ConsumerRecord, TimestampType};
use crate::protocol::records::{BatchView, RecordCursor};

/// The records of one fetched partition, in offset order (see the module docs).
#[derive(Debug)]
pub(crate) struct FetchedRecords {
    topic: Arc<str>,
    partition: i32,
    batches: VecDeque<Batch>,
    /// Records still to hand out (at or after each batch's `from`).
    len: usize,
}

/// A checked batch and what every record of it shares.
#[derive(Debug)]
struct Batch {
    records: RecordCursor,
    /// Records below this offset were fetched again but already handed out: skipped.
    from: i64,
    timestamp_type: TimestampType,
    leader_epoch: i32,
}

impl FetchedRecords {
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> FetchedRecords {
        FetchedRecords {
            topic,
            partition,
            batches: VecDeque::new(),
            len: 0,
        }
    }

    /// Adds a batch whose [`check`](BatchView::check)`(from)` returned `count`; a compressed
    /// one waits `compressed` (as fetched, decompressed again when reached) or decompressed.
    pub(crate) fn push(&mut self, batch: &BatchView, from: i64, count: usize, compressed: bool) {
        if count == 0 {
            return;
        }
        self.len += count;
        self.batches.push_back(Batch {
            records: if compressed {
                batch.compressed_cursor()
            } else {
                batch.cursor()
            },
            from,
            timestamp_type: if batch.log_append_time {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            leader_epoch: batch.partition_leader_epoch,
        });
    }

    /// Records still to hand out.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Memory this holds besides the batches' bytes (for the prefetch budget).
    pub(crate) fn overhead(&self) -> usize {
        self.batches.capacity() * std::mem::size_of::<Batch>()
    }

    /// Bytes of batch data the waiting batches hold.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.batches.iter().map(|b| b.records.held()).sum()
    }
}

impl Iterator for FetchedRecords {
    type Item = ConsumerRecord;

    fn next(&mut self) -> Option<ConsumerRecord> {
        loop {
            let batch = self.batches.front_mut()?;
            let Some(r) = batch.records.next() else {
                // Done (or, for a batch that passed its check, impossible: undecodable).
                self.batches.pop_front();
                continue;
            };
            if r.offset < batch.from {
                continue;
            }
            self.len = self.len.saturating_sub(1);
            let record = ConsumerRecord {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: batch.timestamp_type,
                key: r.key,
                value: r.value,
                headers: r.headers,
                leader_epoch: batch.leader_epoch,
            };
            return Some(record);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::compression::Compression;
    use crate::protocol::records::{decode_batches, BatchBuilder, Batches};
    use crate::record::Header;

    /// A record to write: key, value, header count.
    type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, usize);

    /// Batches of `records`, `per_batch` records each, offsets from
    /// `base`, encoded with `codec`, concatenated as a Fetch response's records field.
    fn fetched_data(
        records: &[Rec],
        per_batch: usize,
        codec: Compression,
        log_append_time: bool,
    ) -> Bytes {
        let mut data = Vec::new();
        let mut offset = 0i64;
        for chunk in records.chunks(per_batch.max(1)) {
            let mut b = BatchBuilder::new(1024);
            for (i, (k, v, h)) in chunk.iter().enumerate() {
                let headers: Vec<Header> = (0..*h)
                    .map(|j| Header {
                        key: format!("h{j}"),
                        value: Some(Bytes::from(vec![j as u8; j])),
                    })
                    .collect();
                b.append(1_000 + i as i64, k.as_deref(), v.as_deref(), &headers);
            }
            let mut batch = b.finish(codec, None).unwrap();
            batch[..8].copy_from_slice(&offset.to_be_bytes());
            if log_append_time {
                // Attributes bit 3, then the CRC over attributes onwards again.
                batch[22] |= 0x08;
                let crc = crc32c::crc32c(&batch[21..]);
                batch[17..21].copy_from_slice(&crc.to_be_bytes());
            }
            offset += chunk.len() as i64;
            data.extend_from_slice(&batch);
        }
        Bytes::from(data)
    }

    /// What the consumer hands out from `data` fetched at `from`, lazily.
    fn lazily(data: Bytes, from: i64, wait_compressed: bool) -> Vec<ConsumerRecord> {
        let mut out = FetchedRecords::new("t".into(), 3);
        let mut batches = Batches::new(data, true, 1 << 20);
        while let Some(view) = batches.next_view() {
            let view = view.unwrap();
            let count = view.check(from).unwrap();
            out.push(&view, from, count, wait_compressed);
        }
        let len = out.len();
        let records: Vec<ConsumerRecord> = out.collect();
        assert_eq!(records.len(), len, "len counts what is handed out");
        records
    }

    /// The same, decoded eagerly.
    fn eagerly(data: Bytes, from: i64) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        for b in decode_batches(data, true, 1 << 20).unwrap() {
            for r in b.records {
                if r.offset < from {
                    continue;
                }
                out.push(ConsumerRecord {
                    topic: "t".into(),
                    partition: 3,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    timestamp_type: if b.header.log_append_time {
                        TimestampType::LogAppendTime
                    } else {
                        TimestampType::CreateTime
                    },
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                    leader_epoch: b.header.partition_leader_epoch,
                });
            }
        }
        out
    }

    fn same(a: &[ConsumerRecord], b: &[ConsumerRecord]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(
                (x.offset, x.timestamp, x.timestamp_type, &x.key, &x.value),
                (y.offset, y.timestamp, y.timestamp_type, &y.key, &y.value)
            );
            assert_eq!(x.headers, y.headers);
            assert_eq!((x.partition, x.leader_epoch), (y.partition, y.leader_epoch));
        }
    }

    #[test]
    fn log_append_time_and_skipped_offsets() {
        let recs: Vec<_> = (0..10u8)
            .map(|i| (Some(vec![i]), Some(vec![i; 20]), (i % 3) as usize))
            .collect();
        let data = fetched_data(&recs, 4, Compression::Lz4, true);
        let got = lazily(data.clone(), 5, true);
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (5..10).collect::<Vec<i64>>()
        );
        assert!(got
            .iter()
            .all(|r| r.timestamp_type == TimestampType::LogAppendTime));
        same(&got, &eagerly(data, 5));
    }

    #[test]
    fn a_malformed_record_fails_the_check_not_the_iteration() {
        let recs: Vec<_> = (0..3u8).map(|i| (None, Some(vec![i; 8]), 0)).collect();
        let data = fetched_data(&recs, 3, Compression::None, false);
        let mut bad = data.to_vec();
        // The last record's header count (its last byte): 0 → 1 header that is not there.
        let last = bad.len() - 1;
        assert_eq!(bad[last], 0);
        bad[last] = 2;
        let mut batches = Batches::new(Bytes::from(bad.clone()), false, 1 << 20);
        let view = batches.next_view().unwrap().unwrap();
        let e = view.check(0).unwrap_err().to_string();
        assert!(e.contains("record truncated"), "{e}");
        let eager = decode_batches(Bytes::from(bad), false, 1 << 20).unwrap_err();
        assert_eq!(eager.to_string(), e);
    }

    #[test]
    fn a_compressed_batch_waits_compressed_until_its_first_record_is_taken() {
        // Two batches of values lz4 squeezes to almost nothing.
        let recs: Vec<_> = (0..20u8).map(|i| (None, Some(vec![i; 1000]), 0)).collect();
        let data = fetched_data(&recs, 10, Compression::Lz4, false);
        let mut out = FetchedRecords::new("t".into(), 0);
        let mut batches = Batches::new(data.clone(), true, 1 << 20);
        while let Some(view) = batches.next_view() {
            let view = view.unwrap();
            assert!(view.records.len() > 10_000, "decompressed for the check");
            out.push(&view, 0, view.check(0).unwrap(), true);
        }
        let fetched = out.held();
        assert!(
            fetched < data.len(),
            "the batches hold {fetched} bytes, at most their {} fetched ones",
            data.len()
        );
        // Taking the first record decompresses the first batch only.
        let first = out.next().unwrap();
        assert_eq!(first.value.as_deref(), Some(&[0u8; 1000][..]));
        let held = out.held();
        assert!(held > 10_000 && held < 10_000 + fetched, "{held}");
        let rest: Vec<_> = out.by_ref().collect();
        assert_eq!(rest.len(), 19);
        assert!(rest
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as i64 + 1
                && r.value.as_deref() == Some(&[i as u8 + 1; 1000][..])));
        assert_eq!(out.held(), 0);
    }

    fn codec() -> impl Strategy<Value = Compression> {
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Snappy),
            Just(Compression::Lz4),
            Just(Compression::Zstd),
        ]
    }

    /// Up to `n` records with keys below `key` bytes, values below `value` bytes, 0–2 headers.
    fn recs(
        key: usize,
        value: usize,
        n: std::ops::Range<usize>,
    ) -> impl Strategy<Value = Vec<Rec>> {
        proptest::collection::vec(
            (
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..key)),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..value)),
                0usize..3,
            ),
            n,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn lazy_records_are_the_eagerly_decoded_ones(
            recs in recs(40, 200, 0..60),
            per_batch in 1usize..20,
            codec in codec(),
            append_time in any::<bool>(),
            from in 0i64..70,
            wait_compressed in any::<bool>(),
        ) {
            let data = fetched_data(&recs, per_batch, codec, append_time);
            same(&lazily(data.clone(), from, wait_compressed), &eagerly(data, from));
        }

        #[test]
        fn check_fails_exactly_where_decoding_does(
            recs in recs(10, 30, 1..10),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let data = fetched_data(&recs, 10, Compression::None, false);
            let mut bad = data.to_vec();
            for (i, v) in flips {
                // Only the records section: the header's fields are not what is tested.
                let n = bad.len() - 61;
                bad[61 + i.index(n)] = v;
            }
            let bad = Bytes::from(bad);
            let mut views = Batches::new(bad.clone(), false, 1 << 20);
            let checked: Result<Vec<usize>, String> = std::iter::from_fn(|| views.next_view())
                .map(|v| v.and_then(|v| v.check(0)).map_err(|e| e.to_string()))
                .collect();
            let decoded = decode_batches(bad, false, 1 << 20).map_err(|e| e.to_string());
            match (checked, decoded) {
                (Ok(counts), Ok(batches)) => {
                    let n = batches
                        .iter()
                        .flat_map(|b| &b.records)
                        .filter(|r| r.offset >= 0)
                        .count();
                    prop_assert_eq!(counts.iter().sum::<usize>(), n);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "check {:?} but decode {:?}", a, b.map(|_| ())),
            }
        }
    }
}
