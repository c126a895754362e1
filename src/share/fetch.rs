//! One fetch round of a share consumer, and turning acquired records into [`ShareRecord`]s.
//!
//! A round runs when the application wants a record and none is buffered: it groups the
//! assigned partitions by leader, sends one ShareFetch per leader (all at once) with the
//! acknowledgements that are ready for that broker piggy-backed on it, and buffers what the
//! brokers acquired for this member. Acknowledgements for a broker this member no longer
//! fetches from go alone, in a ShareAcknowledge. The broker sends whole record batches, which
//! may hold records acquired by other members or not at all; only the offsets inside this
//! member's AcquiredRecords ranges are handed out, each with its range's delivery count.
//!
//! Ownership: a round runs in a task of its own (see `mod.rs`: a `recv` that is cancelled
//! must not cut a request off between its send and its session-epoch bookkeeping); that task
//! owns the `Sessions` while it runs and hands them back when done.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use tracing::{debug, warn};
use uuid::Uuid;

use super::acks::PendingAcks;
use super::session::{self, loses_session, Prepared, Sessions};
use super::{ShareRecord, Shared};
use crate::classify::{classify, Action};
use crate::client::metadata::TopicsQuery;
use crate::consumer::{ConsumerRecord, TimestampType, TopicPartition};
use crate::error::{Error, Result};
use crate::protocol::records::Batches;
use kafka_protocol::messages::ApiKey;

/// Runs one round (see the module docs). Returns the first permanent error a partition or
/// broker answered; transient ones refresh metadata and are left to the next round.
pub(crate) async fn round(shared: &Arc<Shared>, sessions: &mut Sessions) -> Result<()> {
    let assignment = shared.assignment.borrow().clone();
    let acks = shared.held.lock().unwrap().take_ready(None);
    if assignment.partitions.is_empty() && acks.is_empty() {
        // Nothing to fetch: wait for an assignment (or give `recv` a chance to see closing).
        let mut rx = shared.assignment.subscribe();
        let _ = tokio::time::timeout(shared.cfg.fetch_max_wait, rx.changed()).await;
        return Ok(());
    }
    let client = &shared.client.inner;
    let snapshot = client.metadata.snapshot();
    let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, Uuid)>> = BTreeMap::new();
    let mut leaderless = false;
    for (tp, id) in &assignment.partitions {
        match snapshot.leader(&tp.topic, tp.partition) {
            Some(leader) => by_leader.entry(leader).or_default().push((tp.clone(), *id)),
            None => leaderless = true,
        }
    }
    // ShareFetch v1 adds every partition it names to the session, so acknowledgements ride
    // on it only for partitions fetched from that broker now; the others (the partition
    // moved, or left the assignment) go alone in a ShareAcknowledge, sent first so the
    // session's epochs stay in order. So do a partition's acknowledgements that include
    // renewals: a ShareFetch carrying renewals may fetch nothing (KIP-1222), and this one
    // is here to fetch.
    let mut ride: BTreeMap<i32, Vec<PendingAcks>> = BTreeMap::new();
    let mut alone: BTreeMap<i32, Vec<PendingAcks>> = BTreeMap::new();
    for a in acks {
        let fetched = by_leader
            .get(&a.broker)
            .is_some_and(|parts| parts.iter().any(|(tp, _)| *tp == a.tp))
            && !a.renews();
        let to = if fetched { &mut ride } else { &mut alone };
        to.entry(a.broker).or_default().push(a);
    }
    let mut outcome = Outcome {
        refresh: leaderless,
        first_error: None,
    };
    let mut unsent: Vec<PendingAcks> = Vec::new();
    let mut prepared: Vec<Prepared> = Vec::new();
    for (broker, acks) in alone {
        match sessions.prepare_ack(broker, &acks, false) {
            Some(p) => prepared.push(p),
            None => unsent.extend(acks),
        }
    }
    if !prepared.is_empty() {
        let answers = join_all(prepared.iter().map(|p| session::send(client, p))).await;
        for (p, answer) in prepared.iter().zip(answers) {
            shared.settle_renewals(p, &answer);
            sessions.settle(p, &answer);
            outcome.absorb(shared, p, answer)?;
        }
    }
    let mut prepared: Vec<Prepared> = Vec::new();
    for (broker, parts) in &by_leader {
        let acks = ride.remove(broker).unwrap_or_default();
        match sessions.prepare_fetch(*broker, parts, acks) {
            Ok((p, lost)) => {
                prepared.push(p);
                unsent.extend(lost);
            }
            Err(e) => {
                debug!(broker, error = %e, "cannot fetch from broker");
                outcome.refresh = true;
            }
        }
    }
    for a in unsent {
        if a.renews() {
            shared.held.lock().unwrap().finish_renewal(&a.tp, false);
        }
        // The session that acquired them is gone: so is this member's hold on the records,
        // which the broker gives to others when their locks expire (or already has).
        warn!(partition = %a.tp, broker = a.broker, "acknowledgements dropped: no share session");
        shared.count_ack_failure();
    }
    let answers = join_all(prepared.iter().map(|p| session::send(client, p))).await;
    for (p, answer) in prepared.iter().zip(answers) {
        sessions.settle(p, &answer);
        outcome.absorb(shared, p, answer)?;
    }
    let Outcome {
        refresh,
        first_error,
    } = outcome;
    if refresh {
        let topics = shared.topics();
        if let Err(e) = client
            .refresh_metadata(TopicsQuery::Some(topics), Some(snapshot.generation))
            .await
        {
            debug!(error = %e, "metadata refresh after a share fetch failed");
        }
        if first_error.is_none() {
            // Do not spin on a partition whose leader is moving.
            tokio::time::sleep(client.cfg.retry_backoff).await;
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What a round learned from its answers.
struct Outcome {
    /// Metadata looks stale (a leader moved, a broker is gone).
    refresh: bool,
    /// The first error the application must see.
    first_error: Option<Error>,
}

impl Outcome {
    /// Takes in one request's answer: buffers acquired records, counts failed
    /// acknowledgements, forgets what a lost session acquired. Fails only on records that do
    /// not decode.
    fn absorb(
        &mut self,
        shared: &Shared,
        p: &Prepared,
        answer: Result<Vec<session::PartitionAnswer>>,
    ) -> Result<()> {
        let parts = match answer {
            Ok(parts) => parts,
            Err(e) => {
                if loses_session(&e) {
                    shared.forget_broker(p.broker);
                }
                for tp in &p.acked {
                    warn!(partition = %tp, error = %e, "acknowledgements failed");
                    shared.count_ack_failure();
                }
                let action = classify(&e, Some(ApiKey::ShareFetch));
                if action.contains(Action::REFRESH_METADATA) || action.contains(Action::RECONNECT) {
                    self.refresh = true;
                }
                if !action.contains(Action::RETRY) {
                    self.first_error.get_or_insert(e);
                }
                return Ok(());
            }
        };
        for part in parts {
            if let Some(e) = part.ack_error {
                warn!(partition = %part.tp, error = %e, "acknowledgements failed");
                shared.count_ack_failure();
            }
            if let Some(e) = part.error {
                let action = classify(&e, Some(ApiKey::ShareFetch));
                if action.contains(Action::RETRY) {
                    self.refresh |= action.contains(Action::REFRESH_METADATA);
                    debug!(partition = %part.tp, error = %e, "share fetch error");
                } else {
                    self.first_error.get_or_insert(e);
                }
                continue;
            }
            let Some(data) = part.records else { continue };
            if part.acquired.is_empty() {
                continue;
            }
            let (records, gaps) = decode(
                &part.tp,
                data,
                &part.acquired,
                shared.cfg.check_crcs,
                shared.cfg.fetch_max_bytes.max(1) as usize,
            )?;
            shared.buffer_records(p.broker, &part.tp, part.topic_id, records, &gaps);
        }
        Ok(())
    }
}

/// The records of `data` inside the acquired ranges, with their delivery counts, and the
/// acquired offsets with no record to hand out (control records, compacted offsets): those
/// are acknowledged as gaps.
pub(crate) fn decode(
    tp: &TopicPartition,
    data: Bytes,
    acquired: &[(i64, i64, i16)],
    check_crcs: bool,
    max_decompressed: usize,
) -> Result<(Vec<ShareRecord>, Vec<i64>)> {
    let mut ranges: Vec<(i64, i64, i16)> = acquired
        .iter()
        .copied()
        .filter(|(first, last, _)| first <= last)
        .collect();
    ranges.sort_unstable();
    let count_of = |offset: i64| -> Option<i16> {
        let i = ranges.partition_point(|(first, _, _)| *first <= offset);
        let (first, last, count) = *ranges.get(i.checked_sub(1)?)?;
        (first <= offset && offset <= last).then_some(count)
    };
    let mut out = Vec::new();
    let mut seen: HashSet<i64> = HashSet::new();
    for batch in Batches::new(data, check_crcs, max_decompressed) {
        let b = batch?;
        if b.control {
            continue;
        }
        let timestamp_type = if b.log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };
        for r in b.records {
            let Some(delivery_count) = count_of(r.offset) else {
                continue;
            };
            if !seen.insert(r.offset) {
                continue;
            }
            out.push(ShareRecord {
                record: ConsumerRecord {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    timestamp_type,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                    leader_epoch: b.header.partition_leader_epoch,
                },
                delivery_count,
            });
        }
    }
    // Every acquired offset goes back to the broker: those without a record as gaps. A range
    // is at most what one ShareFetch acquired (bounded by `max.poll.records` batches).
    let mut gaps = Vec::new();
    for &(first, last, _) in &ranges {
        for offset in first..=last {
            if !seen.contains(&offset) {
                gaps.push(offset);
            }
        }
    }
    Ok((out, gaps))
}

/// Acknowledgement results of one commit, per partition.
pub(crate) fn commit_results(
    prepared: &[Prepared],
    outcomes: Vec<Result<Vec<session::PartitionAnswer>>>,
) -> HashMap<TopicPartition, Result<()>> {
    let mut results = HashMap::new();
    for (p, outcome) in prepared.iter().zip(outcomes) {
        match outcome {
            Err(e) => {
                for tp in &p.acked {
                    results.insert(tp.clone(), Err(e.clone()));
                }
            }
            Ok(parts) => {
                for tp in &p.acked {
                    results.insert(tp.clone(), Ok(()));
                }
                for part in parts {
                    if let Some(e) = part.ack_error {
                        results.insert(part.tp, Err::<(), Error>(e));
                    }
                }
            }
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Compression;
    use crate::protocol::records::BatchBuilder;

    fn batch(base: i64, n: usize) -> Bytes {
        let mut b = BatchBuilder::new(1024);
        for i in 0..n {
            let v = format!("v{}", base + i as i64);
            b.append(0, None, Some(v.as_bytes()), &[]);
        }
        let mut bytes = b.finish(Compression::None, None).unwrap();
        // The base offset is outside the CRC (which starts at the attributes).
        bytes[..8].copy_from_slice(&base.to_be_bytes());
        bytes.freeze()
    }

    #[test]
    fn only_acquired_offsets_are_handed_out_with_their_delivery_count() {
        let tp = TopicPartition::new("t", 0);
        let mut data = bytes::BytesMut::new();
        data.extend_from_slice(&batch(0, 5));
        data.extend_from_slice(&batch(5, 5));
        // 0..=1 went to another member; 2..=4 first delivery; 6..=7 redelivered; 9..=11
        // acquired but 10 and 11 have no record in this response.
        let acquired = [(2, 4, 1), (6, 7, 3), (9, 11, 1)];
        let (records, gaps) = decode(&tp, data.freeze(), &acquired, true, 1 << 20).unwrap();
        let got: Vec<(i64, i16)> = records
            .iter()
            .map(|r| (r.record.offset, r.delivery_count))
            .collect();
        assert_eq!(got, vec![(2, 1), (3, 1), (4, 1), (6, 3), (7, 3), (9, 1)]);
        assert_eq!(records[0].record.value.as_deref(), Some(&b"v2"[..]));
        assert_eq!(gaps, vec![10, 11]);
    }
}
