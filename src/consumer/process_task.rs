//! One record's handler call as a task of the processing driver (process.rs): the handler,
//! retries with backoff, panics caught, then the failure policy (skip, dead letter, stop).
//! The task owns nothing shared; it reports a `Done` to the driver, which owns the rest.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::consumer::process::{DynHandler, QKey};
use crate::consumer::process_options::{FailureAction, FailurePolicy};
use crate::consumer::record::{ConsumerRecord, TopicPartition};
use crate::record::Record;

/// What happened to one record.
pub(crate) enum Outcome {
    Processed(std::time::Duration),
    Skipped,
    DeadLettered,
    Failed(String),
}

/// A finished task's report.
pub(crate) struct Done {
    pub(crate) tp: TopicPartition,
    pub(crate) incarnation: u64,
    pub(crate) offset: i64,
    pub(crate) qkey: Option<QKey>,
    pub(crate) outcome: Outcome,
    pub(crate) retries: u64,
    pub(crate) panics: u64,
}

/// One record through the handler and the failure policy. Runs as a task of the driver's
/// `JoinSet`.
pub(crate) async fn run_one(
    handler: DynHandler,
    record: ConsumerRecord,
    policy: FailurePolicy,
    tp: TopicPartition,
    incarnation: u64,
    qkey: Option<QKey>,
) -> Done {
    let offset = record.offset;
    let (mut retries, mut panics) = (0u64, 0u64);
    let mut delay = policy.backoff;
    let outcome = loop {
        let started = Instant::now();
        let attempt = AssertUnwindSafe(handler(record.clone()))
            .catch_unwind()
            .await;
        let message = match attempt {
            Ok(Ok(())) => break Outcome::Processed(started.elapsed()),
            Ok(Err(e)) => e.to_string(),
            Err(panic) => {
                panics += 1;
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                format!("handler panicked: {what}")
            }
        };
        if retries < policy.retries as u64 {
            debug!(partition = %tp, offset, %message, "handler failed: retrying");
            retries += 1;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(policy.backoff_max);
            continue;
        }
        break match &policy.then {
            FailureAction::Skip => {
                warn!(partition = %tp, offset, %message, "handler failed: record skipped");
                Outcome::Skipped
            }
            FailureAction::Stop => Outcome::Failed(message),
            FailureAction::DeadLetter { producer, topic } => {
                let copy = dead_letter(&record, topic, &message);
                let sent = match producer.send(copy).await {
                    Ok(delivery) => delivery.await.map(|_| ()),
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(()) => Outcome::DeadLettered,
                    Err(e) => Outcome::Failed(format!("{message}; dead-letter write failed: {e}")),
                }
            }
        };
    };
    Done {
        tp,
        incarnation,
        offset,
        qkey,
        outcome,
        retries,
        panics,
    }
}

/// The dead-letter copy of a failed record.
fn dead_letter(record: &ConsumerRecord, topic: &str, error: &str) -> Record {
    let mut copy = Record::new(topic).timestamp(record.timestamp);
    copy.key = record.key.clone();
    copy.value = record.value.clone();
    copy.headers = record.headers.clone();
    copy.header("fk.dlq.topic", record.topic.to_string())
        .header("fk.dlq.partition", record.partition.to_string())
        .header("fk.dlq.offset", record.offset.to_string())
        .header("fk.dlq.error", error.to_string())
}
