//! Share sessions (KIP-932) and the ShareFetch / ShareAcknowledge wire calls.
//!
//! A share consumer keeps one share session per broker it fetches from. The session epoch
//! says where it stands:
//!
//! ```text
//!   epoch 0 (opens; lists the partitions; may carry no acknowledgements)
//!     └─► 1, 2, 3, … (each request +1; acknowledgements ride on ShareFetch, or go alone in
//!                     ShareAcknowledge when there is nothing to fetch from that broker)
//!           └─► -1 (ShareAcknowledge: last acknowledgements, the broker drops the session)
//!   any failure of a request (SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH, a lost
//!   connection, a timeout) ─► epoch 0 again: the broker replaces the session on an epoch-0
//!   request, and what the old one acquired is no longer this member's to acknowledge.
//! ```
//!
//! Kafka keys a share session by group and member and closes it with the connection, so each
//! consumer talks to each broker over a socket of its own (an owner slot in the pool, like a
//! group coordinator's): a ShareFetch long-polls up to `fetch.max.wait.ms`, and a socket
//! shared with other consumers or the producer would queue their requests behind it.
//!
//! Renewals (KIP-1222) always go alone, in a ShareAcknowledge v2 with IsRenewAck set
//! (`protocol/share_v2.rs` speaks it over kafka-protocol's v1 codec); every other request
//! stays at the version kafka-protocol speaks. Each answer tells [`Observed`] whether that
//! broker lists ShareAcknowledge v2, so `acknowledge(…, Renew)` can refuse at once where no
//! renewal can be sent.
//!
//! Ownership: `Sessions` belongs to the consumer's polling side; one fetch round (or commit,
//! or close) at a time has it, so epochs are used in order. [`Observed`] is shared with the
//! application's calls (written by the requests, read by `acknowledge` and
//! `acquisition_lock_timeout`).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatchA,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch as AckBatchF, FetchPartition, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::{ApiKey, ShareAcknowledgeRequest, ShareFetchRequest};
use tracing::debug;
use uuid::Uuid;

use super::acks::PendingAcks;
use super::config::ShareConfig;
use crate::classify::{classify, Action};
use crate::client::ClientInner;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::protocol::{group_id, share_v2, str_bytes};

/// What the brokers' answers told about them, for the application's calls.
#[derive(Debug)]
pub(crate) struct Observed {
    /// Per broker: whether its ApiVersions lists ShareAcknowledge v2 (renewals).
    renew: Mutex<HashMap<i32, bool>>,
    /// The last AcquisitionLockTimeoutMs a broker sent (ShareFetch, ShareAcknowledge v2);
    /// -1 before any.
    lock_timeout_ms: AtomicI64,
}

impl Default for Observed {
    fn default() -> Observed {
        Observed {
            renew: Mutex::new(HashMap::new()),
            lock_timeout_ms: AtomicI64::new(-1),
        }
    }
}

impl Observed {
    /// Whether `broker` takes renewals; `None` before this consumer talked to it.
    pub(crate) fn renews(&self, broker: i32) -> Option<bool> {
        self.renew.lock().unwrap().get(&broker).copied()
    }

    fn saw_versions(&self, broker: i32, conn: &crate::client::connection::Connection) {
        let v2 = share_v2::speaks_v2(conn.broker_range(ApiKey::ShareAcknowledge));
        self.renew.lock().unwrap().insert(broker, v2);
    }

    fn saw_lock_timeout(&self, ms: i32) {
        if ms >= 0 {
            self.lock_timeout_ms.store(i64::from(ms), Ordering::Relaxed);
        }
    }

    /// The acquisition lock duration the brokers last announced.
    pub(crate) fn lock_timeout(&self) -> Option<std::time::Duration> {
        let ms = self.lock_timeout_ms.load(Ordering::Relaxed);
        u64::try_from(ms).ok().map(std::time::Duration::from_millis)
    }
}

/// The error for a renewal `broker` cannot take.
pub(crate) fn renew_unsupported(broker: impl Into<String>) -> Error {
    Error::UnsupportedApi {
        api: "ShareAcknowledge v2 (AcknowledgeType::Renew, KIP-1222)",
        broker: broker.into().into(),
    }
}

/// One broker's share session.
#[derive(Debug, Default)]
struct Session {
    /// The epoch of the next request: 0 opens a session.
    epoch: i32,
    /// The partitions the session fetches, as the broker knows them.
    partitions: BTreeSet<(Uuid, i32)>,
}

/// Every share session of one consumer, and its sockets.
pub(crate) struct Sessions {
    client: Arc<ClientInner>,
    cfg: Arc<ShareConfig>,
    group: String,
    member_id: String,
    by_broker: HashMap<i32, Session>,
    /// The pool owner number of this consumer's socket to each broker.
    sockets: HashMap<i32, u64>,
    observed: Arc<Observed>,
}

impl Drop for Sessions {
    /// The consumer is gone: its sockets close (and the broker drops its share sessions).
    fn drop(&mut self) {
        for owner in self.sockets.values() {
            self.client.pool.release_coordinator(*owner);
        }
    }
}

/// A request ready to go to one broker.
pub(crate) struct Prepared {
    pub(crate) broker: i32,
    owner: u64,
    epoch: i32,
    call: Call,
    /// Every partition the request names, by id.
    names: HashMap<(Uuid, i32), TopicPartition>,
    /// The partitions whose acknowledgements the request carries.
    pub(crate) acked: Vec<TopicPartition>,
    /// The session's partitions once this request succeeds.
    partitions: BTreeSet<(Uuid, i32)>,
    /// The partitions whose acknowledgements include renewals (a ShareAcknowledge v2).
    pub(crate) renewing: Vec<TopicPartition>,
    observed: Arc<Observed>,
}

enum Call {
    Fetch(ShareFetchRequest),
    Ack(ShareAcknowledgeRequest),
}

/// One partition of an answer.
#[derive(Debug)]
pub(crate) struct PartitionAnswer {
    pub(crate) tp: TopicPartition,
    pub(crate) topic_id: Uuid,
    /// The fetch error (ShareFetch), if any.
    pub(crate) error: Option<Error>,
    /// The outcome of the acknowledgements this request carried for the partition.
    pub(crate) ack_error: Option<Error>,
    pub(crate) records: Option<Bytes>,
    /// `(first offset, last offset, delivery count)` of what this member acquired.
    pub(crate) acquired: Vec<(i64, i64, i16)>,
}

fn next_epoch(epoch: i32) -> i32 {
    // After i32::MAX the epoch wraps to 1 (0 and -1 mean open and close).
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl Sessions {
    pub(crate) fn new(
        client: Arc<ClientInner>,
        cfg: Arc<ShareConfig>,
        group: String,
        member_id: String,
        observed: Arc<Observed>,
    ) -> Sessions {
        Sessions {
            client,
            cfg,
            group,
            member_id,
            by_broker: HashMap::new(),
            sockets: HashMap::new(),
            observed,
        }
    }

    /// Brokers with an open session.
    pub(crate) fn open_brokers(&self) -> Vec<i32> {
        let mut b: Vec<i32> = self
            .by_broker
            .iter()
            .filter(|(_, s)| s.epoch > 0)
            .map(|(id, _)| *id)
            .collect();
        b.sort_unstable();
        b
    }

    /// This consumer's socket to `broker`, pointed at its current address.
    fn socket(&mut self, broker: i32) -> Result<u64> {
        let snap = self.client.metadata.snapshot();
        let addr = snap
            .cluster
            .broker(broker)
            .map(|b| b.address())
            .ok_or_else(|| {
                Error::broker(
                    crate::KafkaCode::LeaderNotAvailable,
                    Some("broker not in metadata"),
                    format!("share fetch to broker {broker}"),
                )
            })?;
        let pool = &self.client.pool;
        let owner = *self
            .sockets
            .entry(broker)
            .or_insert_with(|| pool.new_coordinator_owner());
        pool.set_coordinator(owner, broker, addr);
        Ok(owner)
    }

    /// A ShareFetch for `parts` (led by `broker`) carrying `acks` (acquired from it, for
    /// partitions among `parts`: v1 adds every partition it names to the session). With no
    /// session yet the request opens one and carries no acknowledgements: those are given
    /// back to the caller (they cannot be sent).
    pub(crate) fn prepare_fetch(
        &mut self,
        broker: i32,
        parts: &[(TopicPartition, Uuid)],
        acks: Vec<PendingAcks>,
    ) -> Result<(Prepared, Vec<PendingAcks>)> {
        let owner = self.socket(broker)?;
        let session = self.by_broker.entry(broker).or_default();
        let epoch = session.epoch;
        let (acks, unsendable) = if epoch == 0 {
            (Vec::new(), acks)
        } else {
            (acks, Vec::new())
        };
        let mut names = HashMap::new();
        let mut topics: Vec<FetchTopic> = Vec::new();
        let mut wanted = BTreeSet::new();
        let mut by_partition: HashMap<(Uuid, i32), Vec<AckBatchF>> = HashMap::new();
        let mut acked = Vec::new();
        for a in &acks {
            acked.push(a.tp.clone());
            by_partition.insert(
                (a.topic_id, a.tp.partition),
                a.batches
                    .iter()
                    .map(|&(first, last, t)| {
                        AckBatchF::default()
                            .with_first_offset(first)
                            .with_last_offset(last)
                            .with_acknowledge_types(vec![t.wire()])
                    })
                    .collect(),
            );
        }
        for (tp, id) in parts {
            names.insert((*id, tp.partition), tp.clone());
            wanted.insert((*id, tp.partition));
            let batches = by_partition
                .remove(&(*id, tp.partition))
                .unwrap_or_default();
            let partition = FetchPartition::default()
                .with_partition_index(tp.partition)
                .with_acknowledgement_batches(batches);
            match topics.iter_mut().find(|t| t.topic_id == *id) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic_id(*id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        debug_assert!(
            by_partition.is_empty(),
            "acknowledgements for unfetched partitions"
        );
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        if epoch > 0 {
            for (id, partition) in session.partitions.difference(&wanted) {
                match forgotten.iter_mut().find(|t| t.topic_id == *id) {
                    Some(t) => t.partitions.push(*partition),
                    None => forgotten.push(
                        ForgottenTopic::default()
                            .with_topic_id(*id)
                            .with_partitions(vec![*partition]),
                    ),
                }
            }
        }
        let cfg = &self.cfg;
        // Java sends the same: the partition limit is gone from v1 (the broker divides
        // MaxBytes), MaxRecords and BatchSize bound what one request acquires.
        let req = ShareFetchRequest::default()
            .with_group_id(Some(group_id(&self.group)))
            .with_member_id(Some(str_bytes(&self.member_id)))
            .with_share_session_epoch(epoch)
            .with_max_wait_ms(cfg.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32)
            .with_min_bytes(cfg.fetch_min_bytes)
            .with_max_bytes(cfg.fetch_max_bytes)
            .with_max_records(cfg.max_poll_records)
            .with_batch_size(cfg.max_poll_records)
            .with_topics(topics)
            .with_forgotten_topics_data(forgotten);
        debug_assert!(
            !acks.iter().any(PendingAcks::renews),
            "renewals go in ShareAcknowledge"
        );
        let prepared = Prepared {
            broker,
            owner,
            epoch,
            call: Call::Fetch(req),
            names,
            acked,
            partitions: wanted,
            renewing: Vec::new(),
            observed: self.observed.clone(),
        };
        Ok((prepared, unsendable))
    }

    /// A ShareAcknowledge carrying `acks` to `broker`; with `close`, at epoch -1, which ends
    /// the session. `None` when there is no session to send it in (the records it would
    /// acknowledge are no longer this member's).
    pub(crate) fn prepare_ack(
        &mut self,
        broker: i32,
        acks: &[PendingAcks],
        close: bool,
    ) -> Option<Prepared> {
        let session = self.by_broker.get(&broker).filter(|s| s.epoch > 0)?;
        let epoch = if close { -1 } else { session.epoch };
        let partitions = session.partitions.clone();
        let owner = self.socket(broker).ok()?;
        let mut names = HashMap::new();
        let mut topics: Vec<AcknowledgeTopic> = Vec::new();
        for a in acks {
            names.insert((a.topic_id, a.tp.partition), a.tp.clone());
            let partition = AcknowledgePartition::default()
                .with_partition_index(a.tp.partition)
                .with_acknowledgement_batches(
                    a.batches
                        .iter()
                        .map(|&(first, last, t)| {
                            AckBatchA::default()
                                .with_first_offset(first)
                                .with_last_offset(last)
                                .with_acknowledge_types(vec![t.wire()])
                        })
                        .collect(),
                );
            match topics.iter_mut().find(|t| t.topic_id == a.topic_id) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    AcknowledgeTopic::default()
                        .with_topic_id(a.topic_id)
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let req = ShareAcknowledgeRequest::default()
            .with_group_id(Some(group_id(&self.group)))
            .with_member_id(Some(str_bytes(&self.member_id)))
            .with_share_session_epoch(epoch)
            .with_topics(topics);
        Some(Prepared {
            broker,
            owner,
            epoch,
            call: Call::Ack(req),
            names,
            acked: acks.iter().map(|a| a.tp.clone()).collect(),
            partitions,
            renewing: acks
                .iter()
                .filter(|a| a.renews())
                .map(|a| a.tp.clone())
                .collect(),
            observed: self.observed.clone(),
        })
    }

    /// Moves the session on after `p`'s outcome: the next epoch on success, closed after
    /// epoch -1, back to 0 after any failure.
    pub(crate) fn settle(&mut self, p: &Prepared, outcome: &Result<Vec<PartitionAnswer>>) {
        let session = self.by_broker.entry(p.broker).or_default();
        match outcome {
            Ok(_) if p.epoch == -1 => {
                self.by_broker.remove(&p.broker);
            }
            Ok(_) => {
                session.epoch = next_epoch(p.epoch);
                session.partitions = p.partitions.clone();
            }
            // Refused before anything was sent (a renewal to a broker without
            // ShareAcknowledge v2): the session is as it was.
            Err(Error::UnsupportedApi { .. }) => {}
            Err(e) => {
                let action = classify(e, Some(ApiKey::ShareFetch));
                debug!(
                    broker = p.broker,
                    epoch = p.epoch,
                    error = %e,
                    ?action,
                    "share session reset"
                );
                session.epoch = 0;
                session.partitions.clear();
            }
        }
    }
}

/// Sends `p` on the consumer's own socket and turns the answer into partitions. A top-level
/// error fails the whole request.
pub(crate) async fn send(client: &ClientInner, p: &Prepared) -> Result<Vec<PartitionAnswer>> {
    let conn = client.coordinator_socket(p.owner).await?;
    let name = |id: Uuid, partition: i32| {
        p.names
            .get(&(id, partition))
            .cloned()
            .unwrap_or_else(|| TopicPartition::new(format!("<topic id {id}>"), partition))
    };
    let broker = p.broker;
    match &p.call {
        Call::Fetch(req) => {
            p.observed.saw_versions(broker, &conn);
            let version = conn.version(ApiKey::ShareFetch)?;
            // The broker may hold the request for `max_wait_ms` before answering.
            let timeout = client
                .cfg
                .request_timeout
                .saturating_add(std::time::Duration::from_millis(req.max_wait_ms as u64));
            let resp = conn.call(req, version, timeout).await?;
            let context = || format!("ShareFetch v{version} to broker {broker}");
            Error::check_code(resp.error_code, resp.error_message.as_deref(), context)?;
            p.observed
                .saw_lock_timeout(resp.acquisition_lock_timeout_ms);
            let mut out = Vec::new();
            for t in resp.responses {
                for part in t.partitions {
                    let tp = name(t.topic_id, part.partition_index);
                    let error =
                        Error::check_code(part.error_code, part.error_message.as_deref(), || {
                            format!("ShareFetch v{version} for {tp} on broker {broker}")
                        })
                        .err();
                    let ack_error = Error::check_code(
                        part.acknowledge_error_code,
                        part.acknowledge_error_message.as_deref(),
                        || format!("acknowledging {tp} (ShareFetch) on broker {broker}"),
                    )
                    .err();
                    out.push(PartitionAnswer {
                        tp,
                        topic_id: t.topic_id,
                        error,
                        ack_error,
                        records: part.records,
                        acquired: part
                            .acquired_records
                            .iter()
                            .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
                            .collect(),
                    });
                }
            }
            Ok(out)
        }
        Call::Ack(req) => {
            p.observed.saw_versions(broker, &conn);
            let timeout = client.cfg.request_timeout;
            let (resp, version) = if p.renewing.is_empty() {
                let version = conn.version(ApiKey::ShareAcknowledge)?;
                (conn.call(req, version, timeout).await?, version)
            } else {
                if p.observed.renews(broker) != Some(true) {
                    return Err(renew_unsupported(conn.label().to_string()));
                }
                let answer = conn
                    .call_raw(
                        ApiKey::ShareAcknowledge,
                        share_v2::VERSION,
                        timeout,
                        |correlation_id, client_id| {
                            share_v2::encode_request(req, true, correlation_id, client_id)
                        },
                        share_v2::decode_response,
                    )
                    .await?;
                if let Some(ms) = answer.lock_timeout_ms {
                    p.observed.saw_lock_timeout(ms);
                }
                (answer.response, share_v2::VERSION)
            };
            let context = || format!("ShareAcknowledge v{version} to broker {broker}");
            Error::check_code(resp.error_code, resp.error_message.as_deref(), context)?;
            let mut out = Vec::new();
            for t in resp.responses {
                for part in t.partitions {
                    let tp = name(t.topic_id, part.partition_index);
                    let ack_error =
                        Error::check_code(part.error_code, part.error_message.as_deref(), || {
                            format!("acknowledging {tp} (ShareAcknowledge) on broker {broker}")
                        })
                        .err();
                    out.push(PartitionAnswer {
                        tp,
                        topic_id: t.topic_id,
                        error: None,
                        ack_error,
                        records: None,
                        acquired: Vec::new(),
                    });
                }
            }
            Ok(out)
        }
    }
}

/// Whether a request failure means the broker no longer has this member's session (so what
/// it acquired there is no longer this member's to acknowledge).
pub(crate) fn loses_session(e: &Error) -> bool {
    let action = classify(e, Some(ApiKey::ShareFetch));
    action.contains(Action::RESET_SHARE_SESSION) || action.contains(Action::RECONNECT)
}
