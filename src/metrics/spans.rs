//! Tracing spans after the OpenTelemetry messaging semantic conventions (`send`, `receive`,
//! `process`), with the `tracing` crate only: `tracing-opentelemetry` (or any subscriber)
//! turns them into OpenTelemetry spans; `otel.name` and `otel.kind` are the names that
//! bridge reads.
//!
//! Granularity: `send` is one span per Produce request (covering its batches), `receive` one
//! per partition answer of a Fetch, `process` one per record — but only where a record is
//! already a unit of work of its own (a `Consumer::processor` handler task, or the
//! application's own loop through `Consumer::process_span`). With no subscriber listening a
//! span costs a load and a branch of the callsite's interest (measured in
//! docs/OPERATIONS.md), and nothing is formatted: names and partition ids are recorded only
//! into enabled spans.
//!
//! Target `ferrokafka::messaging`, level INFO, so a subscriber can keep them and drop the
//! crate's debug logs (`RUST_LOG=ferrokafka::messaging=info`).

use tracing::field::Empty;
use tracing::Span;

/// One Produce request to `broker` with `count` records. Destination and partition are set
/// when the request has a single topic / a single batch (the conventions leave them out for
/// batches to several destinations).
pub(crate) fn send(
    client_id: &str,
    single_topic: Option<&str>,
    single_partition: Option<i32>,
    count: u64,
) -> Span {
    let span = tracing::info_span!(
        target: "ferrokafka::messaging",
        "send",
        otel.name = Empty,
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.name = "send",
        messaging.operation.type = "send",
        messaging.client.id = client_id,
        messaging.destination.name = Empty,
        messaging.destination.partition.id = Empty,
        messaging.batch.message_count = count,
    );
    if !span.is_disabled() {
        match single_topic {
            Some(t) => {
                span.record("otel.name", format!("send {t}"));
                span.record("messaging.destination.name", t);
            }
            None => {
                span.record("otel.name", "send");
            }
        }
        if let Some(p) = single_partition {
            span.record("messaging.destination.partition.id", p.to_string());
        }
    }
    span
}

/// One partition's records of a Fetch answer, starting at `offset`.
pub(crate) fn receive(
    client_id: &str,
    group: Option<&str>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Span {
    let span = tracing::info_span!(
        target: "ferrokafka::messaging",
        "receive",
        otel.name = Empty,
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.name = "receive",
        messaging.operation.type = "receive",
        messaging.client.id = client_id,
        messaging.consumer.group.name = group,
        messaging.destination.name = topic,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = offset,
        messaging.batch.message_count = Empty,
    );
    if !span.is_disabled() {
        span.record("otel.name", format!("receive {topic}"));
        span.record("messaging.destination.partition.id", partition.to_string());
    }
    span
}

/// Processing one record (see `Consumer::process_span`).
pub(crate) fn process(
    client_id: &str,
    group: Option<&str>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Span {
    let span = tracing::info_span!(
        target: "ferrokafka::messaging",
        "process",
        otel.name = Empty,
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.name = "process",
        messaging.operation.type = "process",
        messaging.client.id = client_id,
        messaging.consumer.group.name = group,
        messaging.destination.name = topic,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = offset,
    );
    if !span.is_disabled() {
        span.record("otel.name", format!("process {topic}"));
        span.record("messaging.destination.partition.id", partition.to_string());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The "disabled cost" figure of docs/OPERATIONS.md: with no subscriber, a span is a
    /// check of the callsite's interest. The bound is loose (debug builds, a loaded machine)
    /// and only guards against formatting or allocation creeping into the disabled path.
    #[test]
    fn disabled_spans_cost_next_to_nothing() {
        let n = 200_000;
        let started = Instant::now();
        for i in 0..n {
            let s = process("c", Some("g"), "topic", 3, i);
            assert!(s.is_disabled());
        }
        let per = started.elapsed() / n as u32;
        println!("disabled process span: {per:?} each");
        assert!(per.as_nanos() < 2_000, "{per:?} per disabled span");
    }
}
