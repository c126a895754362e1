//! The name, type, unit and meaning of every exported metric: one table, used to describe the
//! metrics to the recorder and checked against docs/OPERATIONS.md by a unit test.
//!
//! Names follow the Java client's (`request-latency`, `record-send-total`,
//! `records-lag-max`, …) with a `kafka_<group>_` prefix, underscores, and Prometheus unit
//! suffixes. Every metric has the label `client_id`; broker metrics add `node_id`
//! (negative for bootstrap addresses), lag adds `topic` and `partition`, producer errors
//! `error`.

// The table is read by the exporter (feature `metrics`) and the docs test only.
#![cfg_attr(not(any(test, feature = "metrics")), allow(dead_code))]

pub(crate) struct MetricName {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) help: &'static str,
}

const fn m(
    name: &'static str,
    kind: &'static str,
    unit: &'static str,
    help: &'static str,
) -> MetricName {
    MetricName {
        name,
        kind,
        unit,
        help,
    }
}

pub(crate) const REQUESTS: &str = "kafka_client_request_total";
pub(crate) const REQUEST_ERRORS: &str = "kafka_client_request_error_total";
pub(crate) const REQUEST_LATENCY: &str = "kafka_client_request_latency_seconds";
pub(crate) const IN_FLIGHT: &str = "kafka_client_requests_in_flight";
pub(crate) const CONNECTS: &str = "kafka_client_connection_creation_total";
pub(crate) const CONNECT_FAILURES: &str = "kafka_client_connection_failure_total";
pub(crate) const DISCONNECTS: &str = "kafka_client_connection_close_total";
pub(crate) const AUTH_FAILURES: &str = "kafka_client_failed_authentication_total";

pub(crate) const RECORDS_SENT: &str = "kafka_producer_record_send_total";
pub(crate) const BYTES_SENT: &str = "kafka_producer_byte_total";
pub(crate) const BATCHES_SENT: &str = "kafka_producer_batch_total";
pub(crate) const PRODUCE_REQUESTS: &str = "kafka_producer_request_total";
pub(crate) const BATCH_SIZE: &str = "kafka_producer_batch_size_bytes";
pub(crate) const BATCH_FILL: &str = "kafka_producer_batch_fill_ratio";
pub(crate) const RECORDS_PER_REQUEST: &str = "kafka_producer_records_per_request";
pub(crate) const QUEUE_TIME: &str = "kafka_producer_record_queue_time_seconds";
pub(crate) const RETRIES: &str = "kafka_producer_record_retry_total";
pub(crate) const RECORD_ERRORS: &str = "kafka_producer_record_error_total";
pub(crate) const BUFFER_USED: &str = "kafka_producer_buffer_used_bytes";
pub(crate) const BUFFER_WAIT: &str = "kafka_producer_bufferpool_wait_seconds";

pub(crate) const RECORDS_CONSUMED: &str = "kafka_consumer_records_consumed_total";
pub(crate) const RECORDS_FETCHED: &str = "kafka_consumer_records_fetched_total";
pub(crate) const BYTES_FETCHED: &str = "kafka_consumer_bytes_consumed_total";
pub(crate) const FETCHES: &str = "kafka_consumer_fetch_total";
pub(crate) const FETCH_LATENCY: &str = "kafka_consumer_fetch_latency_seconds";
pub(crate) const LAG: &str = "kafka_consumer_records_lag";
pub(crate) const LAG_MAX: &str = "kafka_consumer_records_lag_max";
pub(crate) const REBALANCES: &str = "kafka_consumer_rebalance_total";
pub(crate) const REBALANCE_LATENCY: &str = "kafka_consumer_rebalance_latency_seconds";
pub(crate) const COMMITS: &str = "kafka_consumer_commit_total";
pub(crate) const COMMIT_FAILURES: &str = "kafka_consumer_commit_failed_total";
pub(crate) const COMMIT_LATENCY: &str = "kafka_consumer_commit_latency_seconds";
pub(crate) const LAST_POLL: &str = "kafka_consumer_last_poll_seconds_ago";

/// Every exported metric.
pub(crate) const ALL: &[MetricName] = &[
    m(
        REQUESTS,
        "counter",
        "",
        "Requests sent to the broker (answered or not).",
    ),
    m(
        REQUEST_ERRORS,
        "counter",
        "",
        "Requests that failed without a response: timeout, lost connection.",
    ),
    m(
        REQUEST_LATENCY,
        "histogram",
        "seconds",
        "Time from queueing a request to its response.",
    ),
    m(
        IN_FLIGHT,
        "gauge",
        "",
        "Requests sent to the broker and not answered yet.",
    ),
    m(
        CONNECTS,
        "counter",
        "",
        "Connections opened (TCP/TLS, ApiVersions and SASL done).",
    ),
    m(
        CONNECT_FAILURES,
        "counter",
        "",
        "Connection attempts that failed (any step).",
    ),
    m(
        DISCONNECTS,
        "counter",
        "",
        "Connections lost or closed because of an error.",
    ),
    m(
        AUTH_FAILURES,
        "counter",
        "",
        "SASL authentications the broker refused.",
    ),
    m(
        RECORDS_SENT,
        "counter",
        "",
        "Records the broker acknowledged (acks=0: written).",
    ),
    m(
        BYTES_SENT,
        "counter",
        "bytes",
        "Record batch bytes the broker acknowledged (after compression).",
    ),
    m(
        BATCHES_SENT,
        "counter",
        "",
        "Record batches the broker acknowledged.",
    ),
    m(
        PRODUCE_REQUESTS,
        "counter",
        "",
        "Produce requests sent (retries included).",
    ),
    m(
        BATCH_SIZE,
        "histogram",
        "bytes",
        "Size of each record batch sent (after compression).",
    ),
    m(
        BATCH_FILL,
        "histogram",
        "",
        "Each batch's uncompressed size as a fraction of batch.size.",
    ),
    m(
        RECORDS_PER_REQUEST,
        "histogram",
        "",
        "Records in each Produce request.",
    ),
    m(
        QUEUE_TIME,
        "histogram",
        "seconds",
        "Time a batch waited from its first record to its first send.",
    ),
    m(
        RETRIES,
        "counter",
        "",
        "Record batches sent again after a retriable error (counted per batch).",
    ),
    m(
        RECORD_ERRORS,
        "counter",
        "",
        "Records whose delivery failed for good, by error name.",
    ),
    m(
        BUFFER_USED,
        "gauge",
        "bytes",
        "Bytes of buffer.memory held by records not yet delivered.",
    ),
    m(
        BUFFER_WAIT,
        "histogram",
        "seconds",
        "Each time send waited for buffer.memory to free up.",
    ),
    m(
        RECORDS_CONSUMED,
        "counter",
        "",
        "Records handed to the application (recv, recv_batch, stream).",
    ),
    m(
        RECORDS_FETCHED,
        "counter",
        "",
        "Records fetched and decoded (read_committed: aborted ones excluded).",
    ),
    m(
        BYTES_FETCHED,
        "counter",
        "bytes",
        "Record batch bytes fetched and decoded.",
    ),
    m(FETCHES, "counter", "", "Fetch requests answered."),
    m(
        FETCH_LATENCY,
        "histogram",
        "seconds",
        "Time from sending a Fetch to its response (includes fetch.max.wait.ms long polls).",
    ),
    m(
        LAG,
        "gauge",
        "",
        "Per partition: high watermark minus the next offset the application gets.",
    ),
    m(
        LAG_MAX,
        "gauge",
        "",
        "The largest lag of the consumer's partitions.",
    ),
    m(
        REBALANCES,
        "counter",
        "",
        "Rebalances this member completed (JoinGroup and SyncGroup).",
    ),
    m(
        REBALANCE_LATENCY,
        "histogram",
        "seconds",
        "Time from starting to join until the assignment arrived.",
    ),
    m(COMMITS, "counter", "", "Offset commits that succeeded."),
    m(
        COMMIT_FAILURES,
        "counter",
        "",
        "Offset commits that failed.",
    ),
    m(
        COMMIT_LATENCY,
        "histogram",
        "seconds",
        "Time of each OffsetCommit round trip.",
    ),
    m(
        LAST_POLL,
        "gauge",
        "seconds",
        "Seconds since the application last called recv (0 while it waits in recv).",
    ),
];
