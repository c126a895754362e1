//! Producers and transactions (KIP-664), for diagnosing a stuck transaction: which producers
//! are active on a partition and since which offset their transaction is open
//! (DescribeProducers, on the partition's leader), which transactions exist (ListTransactions,
//! on every broker) and what one of them covers (DescribeTransactions, on its coordinator).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest,
    ProducerId,
};

use super::{resource_error, Admin, ResourceResult, Target};
use crate::codes::KafkaCode;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::protocol::{str_bytes, topic_name, transactional_id};

/// An active producer of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// The last sequence number it wrote (-1 if none).
    pub last_sequence: i32,
    /// The timestamp of its last write (ms since the epoch; -1 if none).
    pub last_timestamp: i64,
    /// The epoch of the transaction coordinator that last wrote a marker for it, if any.
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction: what a `read_committed` consumer waits
    /// behind. `None` when no transaction is open.
    pub current_txn_start_offset: Option<i64>,
}

/// Filters of [`Admin::list_transactions`]; empty matches everything.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListTransactionsOptions {
    /// Only transactions in these states (`Ongoing`, `PrepareCommit`, `CompleteAbort`, …).
    pub states: Vec<String>,
    /// Only transactions of these producer ids.
    pub producer_ids: Vec<i64>,
    /// Only transactions open for at least this many milliseconds (ListTransactions v1+).
    pub min_duration_ms: Option<i64>,
}

impl ListTransactionsOptions {
    /// Every transaction.
    pub fn new() -> ListTransactionsOptions {
        ListTransactionsOptions::default()
    }

    /// Only transactions in `state` (may be given several times).
    pub fn state(mut self, state: impl Into<String>) -> ListTransactionsOptions {
        self.states.push(state.into());
        self
    }

    /// Only transactions of `producer_id` (may be given several times).
    pub fn producer_id(mut self, producer_id: i64) -> ListTransactionsOptions {
        self.producer_ids.push(producer_id);
        self
    }

    /// Only transactions open for at least `ms` milliseconds.
    pub fn min_duration_ms(mut self, ms: i64) -> ListTransactionsOptions {
        self.min_duration_ms = Some(ms);
        self
    }
}

/// A transaction as [`Admin::list_transactions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its current producer id.
    pub producer_id: i64,
    /// Its state (`Empty`, `Ongoing`, `PrepareCommit`, `CompleteCommit`, …).
    pub state: String,
    /// The broker coordinating it.
    pub coordinator: i32,
}

/// A transaction as [`Admin::describe_transactions`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionDescription {
    /// Its state.
    pub state: String,
    /// Its timeout (`transaction.timeout.ms`).
    pub timeout_ms: i32,
    /// When the open transaction started (ms since the epoch; -1 when none is open).
    pub start_time_ms: i64,
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The partitions the open transaction wrote to.
    pub partitions: Vec<TopicPartition>,
    /// The broker coordinating it.
    pub coordinator: i32,
}

impl Admin {
    /// The active producers of each partition (DescribeProducers, one request per leader).
    /// Each partition gets its own result.
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<ResourceResult<TopicPartition, Vec<ProducerState>>>> {
        Ok(self
            .per_resource(
                ApiKey::DescribeProducers,
                partitions.to_vec(),
                |pending| async move {
                    let (leaders, failed) = self.by_leader(&pending, "DescribeProducers").await?;
                    let mut answers: Vec<(TopicPartition, Result<Vec<ProducerState>>)> =
                        failed.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
                    let calls = leaders.into_iter().map(|(leader, tps)| async move {
                        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                        for tp in &tps {
                            by_topic.entry(&tp.topic).or_default().push(tp.partition);
                        }
                        let result = self
                            .call(Target::Broker(leader), ApiKey::DescribeProducers, |_| {
                                Ok(DescribeProducersRequest::default().with_topics(
                                    by_topic
                                        .iter()
                                        .map(|(t, ps)| {
                                            TopicRequest::default()
                                                .with_name(topic_name(t))
                                                .with_partition_indexes(ps.clone())
                                        })
                                        .collect(),
                                ))
                            })
                            .await;
                        (tps.clone(), leader, result)
                    });
                    for (tps, leader, result) in futures::future::join_all(calls).await {
                        let resp = match result {
                            Ok((_, resp)) => resp,
                            Err(e) => {
                                answers.extend(tps.into_iter().map(|tp| (tp, Err(e.clone()))));
                                continue;
                            }
                        };
                        for t in &resp.topics {
                            for p in &t.partitions {
                                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                                let result = match resource_error(
                                    p.error_code,
                                    p.error_message.as_deref(),
                                    || format!("DescribeProducers for {tp} on broker {leader}"),
                                ) {
                                    Some(e) => Err(e),
                                    None => Ok(p
                                        .active_producers
                                        .iter()
                                        .map(|s| ProducerState {
                                            producer_id: s.producer_id.0,
                                            producer_epoch: s.producer_epoch,
                                            last_sequence: s.last_sequence,
                                            last_timestamp: s.last_timestamp,
                                            coordinator_epoch: s.coordinator_epoch,
                                            current_txn_start_offset: (s.current_txn_start_offset
                                                >= 0)
                                                .then_some(s.current_txn_start_offset),
                                        })
                                        .collect()),
                                };
                                answers.push((tp, result));
                            }
                        }
                    }
                    Ok(answers)
                },
            )
            .await)
    }

    /// Lists the transactions every broker coordinates, filtered by state, producer id and
    /// age. Fails if a broker cannot answer within `default.api.timeout.ms`.
    pub async fn list_transactions(
        &self,
        options: &ListTransactionsOptions,
    ) -> Result<Vec<TransactionListing>> {
        let inner = self.inner();
        let ids = inner
            .retrying(ApiKey::Metadata, || self.broker_ids())
            .await?;
        let calls = ids.into_iter().map(|id| async move {
            inner
                .retrying(ApiKey::ListTransactions, || async move {
                    let (_, resp) = self
                        .call(Target::Broker(id), ApiKey::ListTransactions, |version| {
                            let mut req = ListTransactionsRequest::default()
                                .with_state_filters(
                                    options.states.iter().map(|s| str_bytes(s)).collect(),
                                )
                                .with_producer_id_filters(
                                    options
                                        .producer_ids
                                        .iter()
                                        .map(|p| ProducerId(*p))
                                        .collect(),
                                );
                            if let Some(d) = options.min_duration_ms {
                                if version < 1 {
                                    return Err(Error::broker(
                                        KafkaCode::UnsupportedVersion,
                                        Some("filtering by duration needs ListTransactions v1"),
                                        format!("ListTransactions v{version} on broker {id}"),
                                    ));
                                }
                                req.duration_filter = d;
                            }
                            Ok(req)
                        })
                        .await?;
                    Error::check_code(resp.error_code, None, || {
                        format!("ListTransactions on broker {id}")
                    })?;
                    Ok(resp
                        .transaction_states
                        .iter()
                        .map(|t| TransactionListing {
                            transactional_id: t.transactional_id.0.to_string(),
                            producer_id: t.producer_id.0,
                            state: t.transaction_state.to_string(),
                            coordinator: id,
                        })
                        .collect::<Vec<_>>())
                })
                .await
        });
        let mut out = Vec::new();
        for listed in futures::future::join_all(calls).await {
            out.extend(listed?);
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// Describes transactions, each on its coordinator. An unknown transactional id gets
    /// TRANSACTIONAL_ID_NOT_FOUND as its own result.
    pub async fn describe_transactions(
        &self,
        transactional_ids: &[&str],
    ) -> Result<Vec<ResourceResult<String, TransactionDescription>>> {
        let keys: Vec<String> = transactional_ids.iter().map(|t| t.to_string()).collect();
        Ok(self
            .per_resource(ApiKey::DescribeTransactions, keys, |pending| async move {
                let calls = pending.into_iter().map(|id| async move {
                    let result = async {
                        let (node, conn) = self.coordinator(&id, 1).await?;
                        let (_, resp) = self
                            .call_on(&conn, ApiKey::DescribeTransactions, |_| {
                                Ok(DescribeTransactionsRequest::default()
                                    .with_transactional_ids(vec![transactional_id(&id)]))
                            })
                            .await?;
                        let t = resp
                            .transaction_states
                            .iter()
                            .find(|t| t.transactional_id.0.as_str() == id)
                            .ok_or_else(|| {
                                Error::protocol(format!("DescribeTransactions lacks {id}"))
                            })?;
                        Error::check_code(t.error_code, None, || {
                            format!("DescribeTransactions for {id} on broker {node}")
                        })?;
                        let mut partitions: Vec<TopicPartition> = t
                            .topics
                            .iter()
                            .flat_map(|d| {
                                d.partitions
                                    .iter()
                                    .map(move |p| TopicPartition::new(d.topic.0.as_str(), *p))
                            })
                            .collect();
                        partitions.sort();
                        Ok(TransactionDescription {
                            state: t.transaction_state.to_string(),
                            timeout_ms: t.transaction_timeout_ms,
                            start_time_ms: t.transaction_start_time_ms,
                            producer_id: t.producer_id.0,
                            producer_epoch: t.producer_epoch,
                            partitions,
                            coordinator: node,
                        })
                    }
                    .await;
                    (id, result)
                });
                Ok(futures::future::join_all(calls).await)
            })
            .await)
    }
}
