//! read_committed against a scripted broker that serves Fetch exactly as Apache Kafka does:
//! the aborted-transactions list for the fetched range, abort and commit control batches, a
//! last stable offset. Neither test broker does (the mock answers LSO = high watermark and no
//! aborted list; Tansu sends an empty list), so the client logic is proven here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, ProducerId};

use crate::client::Client;
use crate::compression::Compression;
use crate::consumer::{Consumer, IsolationLevel, OffsetReset, SeekTo, TopicPartition};
use crate::protocol::records::{stamp_producer, BatchBuilder};
use crate::testing::{FakeCluster, Received};

/// What one batch in the scripted log is.
#[derive(Clone, Copy)]
enum Entry {
    /// `n` data records of producer `pid` (-1: not transactional).
    Data { pid: i64, n: i64 },
    /// A commit (true) or abort (false) marker of producer `pid`.
    Marker { pid: i64, commit: bool },
}

/// The partition's log: encoded batches with their base and end offsets, the aborted
/// transactions `(producer id, first offset, marker offset)`, and the last stable offset.
struct Log {
    batches: Vec<(i64, i64, Bytes)>,
    aborted: Vec<(i64, i64, i64)>,
    lso: i64,
}

impl Log {
    fn build(entries: &[Entry]) -> Log {
        let mut batches = Vec::new();
        let mut open: Vec<(i64, i64)> = Vec::new();
        let mut aborted = Vec::new();
        let mut offset = 0;
        for e in entries {
            let (bytes, n) = match *e {
                Entry::Data { pid, n } => {
                    let mut b = BatchBuilder::new(0);
                    for i in 0..n {
                        let v = format!("p{pid}-o{}", offset + i);
                        b.append(1_000 + offset + i, None, Some(v.as_bytes()), &[]);
                    }
                    let mut batch = b.finish(Compression::None, None).unwrap();
                    if pid >= 0 {
                        stamp_producer(&mut batch, pid, 0, 0, true);
                        if !open.iter().any(|(p, _)| *p == pid) {
                            open.push((pid, offset));
                        }
                    }
                    (batch, n)
                }
                Entry::Marker { pid, commit } => {
                    // A control record: key = version 0, type (0 abort, 1 commit); value =
                    // version 0, coordinator epoch 0.
                    let mut key = BytesMut::new();
                    key.put_i16(0);
                    key.put_i16(i16::from(commit));
                    let mut b = BatchBuilder::new(0);
                    b.append(1_000 + offset, Some(&key), Some(&[0, 0, 0, 0, 0, 0]), &[]);
                    let mut batch = b.finish(Compression::None, None).unwrap();
                    stamp_producer(&mut batch, pid, 0, -1, true);
                    // Control bit (0x20), CRC recomputed over attributes onwards.
                    batch[22] |= 0x20;
                    let crc = crc32c::crc32c(&batch[21..]);
                    batch[17..21].copy_from_slice(&crc.to_be_bytes());
                    let first = open
                        .iter()
                        .position(|(p, _)| *p == pid)
                        .map(|i| open.remove(i));
                    if let (false, Some((_, first))) = (commit, first) {
                        aborted.push((pid, first, offset));
                    }
                    (batch, 1)
                }
            };
            let mut bytes = bytes;
            bytes[..8].copy_from_slice(&offset.to_be_bytes());
            batches.push((offset, offset + n, bytes.freeze()));
            offset += n;
        }
        // Like Kafka: the LSO stops at the first still-open transaction.
        let lso = open.iter().map(|(_, first)| *first).min().unwrap_or(offset);
        Log {
            batches,
            aborted,
            lso,
        }
    }

    /// Kafka's Fetch answer at read_committed: batches from `from` up to the LSO, at most
    /// `max` bytes (at least one batch), and the aborted transactions overlapping them.
    fn fetch(&self, from: i64, max: usize) -> PartitionData {
        let mut data = BytesMut::new();
        let mut last = from;
        for (base, end, bytes) in &self.batches {
            if *end <= from || *base >= self.lso {
                continue;
            }
            if !data.is_empty() && data.len() + bytes.len() > max {
                break;
            }
            data.extend_from_slice(bytes);
            last = *end;
        }
        let aborted = self
            .aborted
            .iter()
            .filter(|(_, first, marker)| *first < last && *marker >= from)
            .map(|&(pid, first, _)| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(pid))
                    .with_first_offset(first)
            })
            .collect();
        PartitionData::default()
            .with_high_watermark(self.batches.last().map_or(0, |b| b.1))
            .with_last_stable_offset(self.lso)
            .with_aborted_transactions(Some(aborted))
            .with_records(Some(data.freeze()))
    }
}

fn answer(log: &Mutex<Log>, r: &Received) -> Option<Bytes> {
    assert_eq!(r.api().0, ApiKey::Fetch, "only Fetch is scripted");
    let req: FetchRequest = r.decode();
    assert_eq!(
        req.isolation_level, 1,
        "read_committed must say so in the request"
    );
    let log = log.lock().unwrap();
    let responses = req
        .topics
        .iter()
        .map(|t| {
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            log.fetch(p.fetch_offset, p.partition_max_bytes as usize)
                                .with_partition_index(p.partition)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(r.answer(&FetchResponse::default().with_responses(responses)))
}

async fn consumer(log: Log, max_partition_bytes: usize) -> (Consumer, Client) {
    let log = Arc::new(Mutex::new(log));
    let cluster = FakeCluster::with_brokers(&[1]);
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| answer(&log, r)));
    let client = cluster.client_builder().build().await.unwrap();
    let c = Consumer::builder(&client)
        .isolation_level(IsolationLevel::ReadCommitted)
        .offset_reset(OffsetReset::Earliest)
        .set("fetch.max.wait.ms", "10")
        .set(
            "max.partition.fetch.bytes",
            &max_partition_bytes.to_string(),
        )
        .build()
        .await
        .unwrap();
    let tp = TopicPartition::new("t", 0);
    c.assign(std::slice::from_ref(&tp)).await.unwrap();
    // Positioned explicitly: the scripted broker answers only Fetch.
    c.seek(&tp, SeekTo::Offset(0)).unwrap();
    (c, client)
}

/// Receives `n` records and returns their (offset, value).
async fn read(c: &Consumer, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(5), c.recv())
            .await
            .expect("a record within 5 s")
            .unwrap();
        out.push((
            r.offset,
            String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
        ));
    }
    out
}

/// Nothing more arrives within a short wait.
async fn nothing_more(c: &Consumer) {
    let more = tokio::time::timeout(Duration::from_millis(300), c.recv()).await;
    assert!(more.is_err(), "unexpected extra record: {more:?}");
}

#[tokio::test]
async fn interleaved_transactions_hand_out_only_committed_records() {
    use Entry::*;
    let log = Log::build(&[
        Data { pid: 1, n: 2 }, // 0-1 aborted later
        Data { pid: 2, n: 2 }, // 2-3 committed later
        Data { pid: 1, n: 2 }, // 4-5 aborted later
        Marker {
            pid: 2,
            commit: true,
        }, // 6
        Marker {
            pid: 1,
            commit: false,
        }, // 7
        Data { pid: -1, n: 2 }, // 8-9 not transactional
        Data { pid: 1, n: 1 }, // 10 a new transaction of pid 1...
        Marker {
            pid: 1,
            commit: true,
        }, // 11 ...committed
    ]);
    let (c, _client) = consumer(log, 1 << 20).await;
    let got = read(&c, 5).await;
    assert_eq!(
        got.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![2, 3, 8, 9, 10]
    );
    assert_eq!(got[0].1, "p2-o2");
    nothing_more(&c).await;
    // Positioned past the last marker.
    assert_eq!(c.position(&TopicPartition::new("t", 0)).unwrap(), Some(12));
}

#[tokio::test]
async fn an_aborted_transaction_spanning_two_fetches_is_dropped_in_both() {
    use Entry::*;
    let log = Log::build(&[
        Data { pid: 7, n: 3 }, // 0-2
        Data { pid: 7, n: 3 }, // 3-5 (next fetch)
        Marker {
            pid: 7,
            commit: false,
        }, // 6
        Data { pid: 8, n: 2 }, // 7-8
        Marker {
            pid: 8,
            commit: true,
        }, // 9
    ]);
    // One batch per fetch: the abort spans several responses.
    let (c, _client) = consumer(log, 1).await;
    let got = read(&c, 2).await;
    assert_eq!(got.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![7, 8]);
    nothing_more(&c).await;
}

#[tokio::test]
async fn control_records_at_the_end_of_a_fetch_are_never_handed_out() {
    use Entry::*;
    let log = Log::build(&[
        Data { pid: 3, n: 2 }, // 0-1
        Marker {
            pid: 3,
            commit: true,
        }, // 2: last batch of the fetch
        Data { pid: 4, n: 1 }, // 3: open transaction, beyond the LSO
    ]);
    let (c, _client) = consumer(log, 1 << 20).await;
    let got = read(&c, 2).await;
    assert_eq!(got.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![0, 1]);
    nothing_more(&c).await;
    assert_eq!(c.position(&TopicPartition::new("t", 0)).unwrap(), Some(3));
}
