//! The transactional producer's state machine and its coordinator calls.
//!
//! ```text
//!  Uninitialized ──init_transactions──► Ready ──begin──► InTransaction ──commit/abort──► Ready
//!        │  (InitProducerId with the transactional id: fences older instances, and the
//!        │   coordinator aborts a transaction they left open)
//!        │                                 │ a record failed ──► Abortable ──abort──► Ready
//!        └────────── PRODUCER_FENCED / INVALID_PRODUCER_EPOCH / auth ──► Fatal (close only)
//! ```
//!
//! Ownership: the `Producer` handle owns the one `Transactions`; its state changes only
//! inside the public calls (`init`, `begin`, `commit`, `abort`), under its mutex. The sender
//! task reads the identity and reports failed batches (`record_failure`). Partitions join
//! the transaction before their first record is appended (`ensure_partition`): concurrent
//! senders of new partitions share one AddPartitionsToTxn.
//!
//! Errors are sorted as Java sorts them (KIP-1050, `classify::classify_txn`): retriable and
//! refresh-retriable inside a call (CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS,
//! NOT_COORDINATOR → the coordinator is found again), abortable (the transaction must be
//! aborted, then the producer goes on), application-recoverable and fatal (only `close`
//! helps; for the former a new producer does).
//!
//! Transactions v2 (KIP-890), when the cluster finalizes `transaction.version` 2 or more
//! (decided at `init_transactions` and again at each `begin_transaction`, as Java does, so a
//! feature upgrade takes effect between transactions): no AddPartitionsToTxn (the partition
//! leader adds a partition when a Produce v12+ of the transaction first reaches it), no
//! AddOffsetsToTxn (TxnOffsetCommit v5 adds the group), and EndTxn v5, whose answer carries
//! the producer epoch (and id) of the next transaction: the coordinator bumps the epoch at
//! every transaction end, so a late write of an ended transaction is refused. With
//! transaction version 1, the v1 calls at the versions before those (EndTxn and
//! TxnOffsetCommit v4 at most, Produce v11 at most for transactional batches), which is
//! what tells the coordinator and the partition leaders which protocol a transaction uses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, EndTxnRequest,
    InitProducerIdRequest, ProducerId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tracing::{debug, info};

use crate::classify::classify_txn;
use crate::client::ClientInner;
use crate::consumer::coordinator::GroupCoordinator;
use crate::consumer::{CommitOffset, ConsumerGroupMetadata, TopicPartition};
use crate::error::{Error, Result};
use crate::producer::idempotence::Identity;
use crate::protocol::{group_id, topic_name, transactional_id as txn_id};

/// Where the transactional producer stands.
#[derive(Debug, Clone)]
enum State {
    Uninitialized,
    Ready,
    InTransaction,
    /// A record of the open transaction failed: it can only be aborted.
    Abortable(Error),
    /// Fenced or unauthorized: every later call returns this.
    Fatal(Error),
}

/// The transactional side of a producer.
#[derive(Debug)]
pub(crate) struct Transactions {
    client: Arc<ClientInner>,
    id: String,
    timeout: Duration,
    coordinator: GroupCoordinator,
    state: Mutex<State>,
    /// The producer id and epoch from InitProducerId; the sender waits for it.
    identity: watch::Sender<Option<Identity>>,
    /// Partitions already in the open transaction.
    added: Mutex<HashSet<TopicPartition>>,
    /// Partitions waiting for an AddPartitionsToTxn.
    pending: Mutex<HashSet<TopicPartition>>,
    /// Held while an AddPartitionsToTxn is in flight (single flight for concurrent sends).
    adding: tokio::sync::Mutex<()>,
    /// Group coordinators, per group id, for TxnOffsetCommit: kept so a consume-transform-
    /// produce loop does not look its group's coordinator up again every transaction.
    groups: Mutex<HashMap<String, Arc<GroupCoordinator>>>,
    /// Offsets were added to the open transaction (it exists on the coordinator even with
    /// no partition).
    offsets_added: Mutex<bool>,
    /// The open (or next) transaction uses transactions v2; set by `init` and `begin` only.
    v2: std::sync::atomic::AtomicBool,
}

impl Transactions {
    pub(crate) fn new(client: Arc<ClientInner>, id: String, timeout: Duration) -> Transactions {
        Transactions {
            coordinator: GroupCoordinator::for_transactional_id(client.clone(), id.clone()),
            client,
            id,
            timeout,
            state: Mutex::new(State::Uninitialized),
            identity: watch::channel(None).0,
            added: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashSet::new()),
            adding: tokio::sync::Mutex::new(()),
            groups: Mutex::new(HashMap::new()),
            offsets_added: Mutex::new(false),
            v2: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the transaction uses transactions v2 (see the module docs). The sender reads
    /// it to choose the Produce version of transactional batches.
    pub(crate) fn uses_v2(&self) -> bool {
        self.v2.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Decides the protocol of the next transaction from the cluster's finalized
    /// `transaction.version` (the newest ApiVersions answer of any connection).
    fn choose_protocol(&self) {
        let level = self.client.pool.finalized_feature("transaction.version");
        let v2 = level >= 2;
        let was = self.v2.swap(v2, std::sync::atomic::Ordering::AcqRel);
        if was != v2 {
            info!(transactional_id = %self.id, transaction_version = level, "transaction protocol chosen");
        }
    }

    /// The highest version of a call whose next version means transactions v2.
    fn v1_cap(&self, v1_max: i16) -> i16 {
        if self.uses_v2() {
            i16::MAX
        } else {
            v1_max
        }
    }

    /// The transactional id, for Produce requests.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// What the sender stamps on batches, once `init_transactions` has run.
    pub(crate) fn identity(&self) -> watch::Receiver<Option<Identity>> {
        self.identity.subscribe()
    }

    /// The identity the next batches must carry: it changes at `init_transactions` and, with
    /// transactions v2, at every transaction end.
    pub(crate) fn latest_identity(&self) -> Option<Identity> {
        *self.identity.borrow()
    }

    fn current_identity(&self) -> Result<Identity> {
        (*self.identity.borrow())
            .ok_or_else(|| Error::InvalidState("init_transactions has not completed".into()))
    }

    /// Fails with the fatal error, if any, or when the state is not `want`.
    fn expect(&self, want: &str, ok: impl Fn(&State) -> bool) -> Result<()> {
        let state = self.state.lock().unwrap();
        match &*state {
            State::Fatal(e) => Err(e.clone()),
            s if ok(s) => Ok(()),
            s => Err(Error::InvalidState(
                format!("{want} is not allowed now (transaction state: {})", name(s)).into(),
            )),
        }
    }

    /// Sorts an error from a coordinator call: those that end the producer stick.
    fn note(&self, e: Error) -> Error {
        if classify_txn(&e, ApiKey::EndTxn).ends_the_producer() {
            *self.state.lock().unwrap() = State::Fatal(e.clone());
        }
        e
    }

    /// InitProducerId with the transactional id, retried while the coordinator is busy
    /// (an older instance's transaction still being aborted answers CONCURRENT_TRANSACTIONS).
    pub(crate) async fn init(&self) -> Result<()> {
        self.expect("init_transactions", |s| matches!(s, State::Uninitialized))?;
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        let resp = self
            .client
            .retrying(ApiKey::InitProducerId, || async {
                let (node, version, resp) = self
                    .coordinator
                    .exchange(ApiKey::InitProducerId, Duration::ZERO, |_, _| {
                        Ok(InitProducerIdRequest::default()
                            .with_transactional_id(Some(txn_id(&self.id)))
                            .with_transaction_timeout_ms(timeout_ms)
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1))
                    })
                    .await?;
                self.coordinator.check(
                    node,
                    ApiKey::InitProducerId,
                    resp.error_code,
                    None,
                    || format!("InitProducerId v{version} for transactional id {}", self.id),
                )?;
                Ok(resp)
            })
            .await
            .map_err(|e| self.note(e))?;
        let identity = Identity {
            producer_id: resp.producer_id.0,
            epoch: resp.producer_epoch,
        };
        info!(transactional_id = %self.id, producer_id = identity.producer_id, epoch = identity.epoch, "transactions initialized");
        self.choose_protocol();
        self.identity.send_replace(Some(identity));
        *self.state.lock().unwrap() = State::Ready;
        Ok(())
    }

    pub(crate) fn begin(&self) -> Result<()> {
        self.expect("begin_transaction", |s| matches!(s, State::Ready))?;
        self.choose_protocol();
        self.added.lock().unwrap().clear();
        *self.offsets_added.lock().unwrap() = false;
        *self.state.lock().unwrap() = State::InTransaction;
        Ok(())
    }

    /// Whether records may be sent now (inside a transaction).
    pub(crate) fn check_send(&self) -> Result<()> {
        self.expect("send", |s| {
            matches!(s, State::InTransaction | State::Abortable(_))
        })
    }

    /// Makes `tp` part of the open transaction before its first record is appended.
    pub(crate) async fn ensure_partition(&self, tp: &TopicPartition) -> Result<()> {
        if self.added.lock().unwrap().contains(tp) {
            return Ok(());
        }
        if self.uses_v2() {
            // Transactions v2: the partition's leader adds it when the transaction's first
            // Produce (v12+) reaches it. Noted here so that `end` knows the transaction
            // exists on the coordinator.
            self.added.lock().unwrap().insert(tp.clone());
            return Ok(());
        }
        self.pending.lock().unwrap().insert(tp.clone());
        let _flight = self.adding.lock().await;
        if self.added.lock().unwrap().contains(tp) {
            return Ok(());
        }
        let batch: Vec<TopicPartition> = self.pending.lock().unwrap().drain().collect();
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.add_partitions(&batch).await;
        match result {
            Ok(()) => {
                self.added.lock().unwrap().extend(batch);
                Ok(())
            }
            Err(e) => {
                let e = self.note(e);
                self.record_failure(&e);
                Err(e)
            }
        }
    }

    async fn add_partitions(&self, tps: &[TopicPartition]) -> Result<()> {
        let id = self.current_identity()?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in tps {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let topics: Vec<AddPartitionsToTxnTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(ps)
            })
            .collect();
        debug!(transactional_id = %self.id, partitions = tps.len(), "AddPartitionsToTxn");
        self.client
            .retrying(ApiKey::AddPartitionsToTxn, || async {
                let (node, version, resp) = self
                    .coordinator
                    .exchange(ApiKey::AddPartitionsToTxn, Duration::ZERO, |_, _| {
                        Ok(AddPartitionsToTxnRequest::default()
                            .with_v3_and_below_transactional_id(txn_id(&self.id))
                            .with_v3_and_below_producer_id(ProducerId(id.producer_id))
                            .with_v3_and_below_producer_epoch(id.epoch)
                            .with_v3_and_below_topics(topics.clone()))
                    })
                    .await?;
                // The first real error wins; OPERATION_NOT_ATTEMPTED (53) only says another
                // partition of the request failed.
                for t in &resp.results_by_topic_v3_and_below {
                    for p in &t.results_by_partition {
                        if p.partition_error_code != 0 && p.partition_error_code != 53 {
                            self.coordinator.check(
                                node,
                                ApiKey::AddPartitionsToTxn,
                                p.partition_error_code,
                                None,
                                || {
                                    format!(
                                        "AddPartitionsToTxn v{version} for {}-{} (transactional id {})",
                                        t.name.0, p.partition_index, self.id
                                    )
                                },
                            )?;
                        }
                    }
                }
                self.coordinator.check(
                    node,
                    ApiKey::AddPartitionsToTxn,
                    resp.error_code,
                    None,
                    || format!("AddPartitionsToTxn v{version} (transactional id {})", self.id),
                )
            })
            .await
    }

    /// A record of the open transaction failed: the transaction can only be aborted.
    pub(crate) fn record_failure(&self, e: &Error) {
        let mut state = self.state.lock().unwrap();
        // Fenced (a newer instance owns the id) or unauthorized: nothing more will work.
        if classify_txn(e, ApiKey::Produce).ends_the_producer() {
            *state = State::Fatal(e.clone());
        } else if matches!(*state, State::InTransaction) {
            *state = State::Abortable(e.clone());
        }
    }

    /// AddOffsetsToTxn on the transaction coordinator, then TxnOffsetCommit on the group's
    /// coordinator with the consumer's generation and member id (KIP-447 fencing).
    pub(crate) async fn send_offsets(
        &self,
        offsets: &HashMap<TopicPartition, CommitOffset>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.expect("send_offsets_to_transaction", |s| {
            matches!(s, State::InTransaction)
        })?;
        let id = self.current_identity()?;
        // Transactions v2: TxnOffsetCommit v5 adds the group to the transaction itself.
        let r = if self.uses_v2() {
            Ok(())
        } else {
            self.add_offsets(id, group).await
        };
        let r = match r {
            Ok(()) => self.txn_offset_commit(id, offsets, group).await,
            Err(e) => Err(e),
        };
        if r.is_ok() {
            *self.offsets_added.lock().unwrap() = true;
        }
        r.map_err(|e| {
            let e = self.note(e);
            self.record_failure(&e);
            e
        })
    }

    async fn add_offsets(&self, id: Identity, group: &ConsumerGroupMetadata) -> Result<()> {
        self.client
            .retrying(ApiKey::AddOffsetsToTxn, || async {
                let (node, version, resp) = self
                    .coordinator
                    .exchange(ApiKey::AddOffsetsToTxn, Duration::ZERO, |_, _| {
                        Ok(AddOffsetsToTxnRequest::default()
                            .with_transactional_id(txn_id(&self.id))
                            .with_producer_id(ProducerId(id.producer_id))
                            .with_producer_epoch(id.epoch)
                            .with_group_id(group_id(&group.group_id)))
                    })
                    .await?;
                self.coordinator
                    .check(node, ApiKey::AddOffsetsToTxn, resp.error_code, None, || {
                        format!(
                            "AddOffsetsToTxn v{version} for group {} (transactional id {})",
                            group.group_id, self.id
                        )
                    })
            })
            .await
    }

    async fn txn_offset_commit(
        &self,
        id: Identity,
        offsets: &HashMap<TopicPartition, CommitOffset>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let group_coordinator = self
            .groups
            .lock()
            .unwrap()
            .entry(group.group_id.clone())
            .or_insert_with(|| {
                Arc::new(GroupCoordinator::new(
                    self.client.clone(),
                    group.group_id.clone(),
                ))
            })
            .clone();
        let mut by_topic: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, c) in offsets {
            by_topic.entry(&tp.topic).or_default().push(
                TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(c.offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(c.metadata.clone().map(StrBytes::from_string)),
            );
        }
        let topics: Vec<TxnOffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                TxnOffsetCommitRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partitions(ps)
            })
            .collect();
        self.client
            .retrying(ApiKey::TxnOffsetCommit, || async {
                let (node, version, resp) = group_coordinator
                    .exchange_at_most(
                        ApiKey::TxnOffsetCommit,
                        self.v1_cap(4),
                        Duration::ZERO,
                        |version, _| {
                            let mut req = TxnOffsetCommitRequest::default()
                                .with_transactional_id(txn_id(&self.id))
                                .with_group_id(group_id(&group.group_id))
                                .with_producer_id(ProducerId(id.producer_id))
                                .with_producer_epoch(id.epoch)
                                .with_topics(topics.clone());
                            // KIP-447 fields exist from v3.
                            if version >= 3 {
                                req = req
                                    .with_generation_id(group.generation_id)
                                    .with_member_id(StrBytes::from_string(group.member_id.clone()))
                                    .with_group_instance_id(
                                        group.group_instance_id.clone().map(StrBytes::from_string),
                                    );
                            } else {
                                req.group_instance_id = None;
                            }
                            Ok(req)
                        },
                    )
                    .await?;
                for t in &resp.topics {
                    for p in &t.partitions {
                        group_coordinator.check(
                            node,
                            ApiKey::TxnOffsetCommit,
                            p.error_code,
                            None,
                            || {
                                format!(
                                    "TxnOffsetCommit v{version} for {}-{} in group {}",
                                    t.name.0, p.partition_index, group.group_id
                                )
                            },
                        )?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// EndTxn after the caller flushed every record of the transaction. A commit of a
    /// transaction in which something failed is refused with that (abortable) error.
    pub(crate) async fn end(&self, commit: bool) -> Result<()> {
        let what = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        {
            let state = self.state.lock().unwrap();
            match &*state {
                State::Fatal(e) => return Err(e.clone()),
                State::Abortable(e) if commit => return Err(e.clone()),
                State::InTransaction | State::Abortable(_) => {}
                s => {
                    return Err(Error::InvalidState(
                        format!("{what} without begin_transaction (state: {})", name(s)).into(),
                    ))
                }
            }
        }
        let id = self.current_identity()?;
        // A transaction that touched nothing does not exist on the coordinator: nothing to end.
        let touched = !self.added.lock().unwrap().is_empty() || *self.offsets_added.lock().unwrap();
        if touched {
            let r = self
                .client
                .retrying(ApiKey::EndTxn, || async {
                    let (node, version, resp) = self
                        .coordinator
                        .exchange_at_most(ApiKey::EndTxn, self.v1_cap(4), Duration::ZERO, |_, _| {
                            Ok(EndTxnRequest::default()
                                .with_transactional_id(txn_id(&self.id))
                                .with_producer_id(ProducerId(id.producer_id))
                                .with_producer_epoch(id.epoch)
                                .with_committed(commit))
                        })
                        .await?;
                    self.coordinator
                        .check(node, ApiKey::EndTxn, resp.error_code, None, || {
                            format!("EndTxn v{version} (transactional id {})", self.id)
                        })?;
                    Ok((version, resp))
                })
                .await;
            match r {
                Ok((version, resp)) if version >= 5 => {
                    // Transactions v2: the coordinator bumped the epoch (or, at the end of
                    // the epoch range, gave a new producer id); the next transaction's
                    // batches carry it, and the sender restarts every sequence at 0.
                    let next = Identity {
                        producer_id: resp.producer_id.0,
                        epoch: resp.producer_epoch,
                    };
                    if next.producer_id >= 0 && next.epoch >= 0 && next != id {
                        debug!(transactional_id = %self.id, producer_id = next.producer_id, epoch = next.epoch, "epoch bumped by EndTxn");
                        self.identity.send_replace(Some(next));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let e = self.note(e);
                    if commit {
                        self.record_failure(&e);
                    }
                    return Err(e);
                }
            }
        }
        debug!(transactional_id = %self.id, commit, "transaction ended");
        self.added.lock().unwrap().clear();
        *self.offsets_added.lock().unwrap() = false;
        *self.state.lock().unwrap() = State::Ready;
        Ok(())
    }
}

fn name(s: &State) -> &'static str {
    match s {
        State::Uninitialized => "uninitialized (call init_transactions)",
        State::Ready => "ready (no open transaction)",
        State::InTransaction => "in a transaction",
        State::Abortable(_) => "failed (abort_transaction needed)",
        State::Fatal(_) => "fatal",
    }
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
