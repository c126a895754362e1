//! Fault scenarios on the consume path and the group: Fetch errors, every error the group
//! coordinator may answer to OffsetCommit, Heartbeat, JoinGroup and SyncGroup, a moved or
//! unfindable coordinator, and transient metadata errors. The driver and the invariants are
//! in `tests/common/faults.rs`; the table is in `docs/RELIABILITY.md`.

mod common;

use std::time::Duration;

use common::faults::Scenario;
use rdkafka::types::RDKafkaApiKey::{self, *};
use rdkafka::types::RDKafkaRespErr::{self, *};

/// `errors` queued for the next requests of `api`, mid-stream.
async fn inject(name: &'static str, api: RDKafkaApiKey, errors: &'static [RDKafkaRespErr]) {
    Scenario::new(name)
        .fault(move |c| async move { c.inject(api, errors) })
        .run()
        .await;
}

/// `errors` queued for JoinGroup or SyncGroup, then a rebalance, so the members' next
/// JoinGroup/SyncGroup calls meet them. (The mock answers an injected JoinGroup or SyncGroup
/// error with null strings where the protocol has none: ferrokafka rejects such a response as
/// malformed, drops the connection and retries, which the scenario shows recovers.)
async fn inject_on_rejoin(
    name: &'static str,
    api: RDKafkaApiKey,
    errors: &'static [RDKafkaRespErr],
) {
    Scenario::new(name)
        .fault(move |c| async move {
            c.inject(api, errors);
            c.force_rejoin();
        })
        .run()
        .await;
}

/// `errors` queued for the next Fetch requests, as partition errors. From Fetch v7 on the
/// mock puts an injected error in the response's top-level error code too, which a client
/// reads as "the whole request failed" and retries without looking at the partitions; Kafka
/// uses that field only for fetch-session errors. Capping Fetch at v6 (before the clients
/// connect) makes the mock report the error per partition, as a broker does for these codes.
async fn fetch_error(name: &'static str, errors: &'static [RDKafkaRespErr]) {
    Scenario::new(name)
        .setup(|c| c.mock().apiversion(Fetch, Some(0), Some(6)).unwrap())
        .fault(move |c| async move { c.inject(Fetch, errors) })
        .run()
        .await;
}

#[tokio::test]
async fn fetch_not_leader_or_follower() {
    fetch_error(
        "fetch_not_leader_or_follower",
        &[RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 3],
    )
    .await;
}

#[tokio::test]
async fn fetch_offset_out_of_range() {
    // The member applies auto.offset.reset=earliest and reads its partition again from the
    // start: duplicates for the group, still every acknowledged record.
    fetch_error(
        "fetch_offset_out_of_range",
        &[RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE],
    )
    .await;
}

#[tokio::test]
async fn fetch_unknown_topic_or_partition() {
    fetch_error(
        "fetch_unknown_topic_or_partition",
        &[RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART; 3],
    )
    .await;
}

#[tokio::test]
async fn group_coordinator_moved() {
    // The old coordinator answers NOT_COORDINATOR from now on.
    Scenario::new("group_coordinator_moved")
        .fault(|c| async move { c.move_coordinator(2) })
        .run()
        .await;
}

#[tokio::test]
async fn find_coordinator_transient_errors() {
    // The coordinator moves, and the members' lookups of the new one fail a few times.
    Scenario::new("find_coordinator_transient_errors")
        .fault(|c| async move {
            c.inject(
                FindCoordinator,
                &[
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                ],
            );
            c.move_coordinator(3);
        })
        .run()
        .await;
}

/// The mock answers no injected error on Metadata, but reports a topic-level error for a
/// topic while one is set: the leader moves, so every client needs fresh metadata, and the
/// topic is reported with `err` for a while.
async fn metadata_topic_error(name: &'static str, err: RDKafkaRespErr) {
    Scenario::new(name)
        .fault(move |c| async move {
            c.mock().topic_error(&c.topic, err).unwrap();
            c.move_leader(1, 3);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            c.mock()
                .topic_error(&c.topic, RD_KAFKA_RESP_ERR_NO_ERROR)
                .unwrap();
        })
        .run()
        .await;
}

#[tokio::test]
async fn metadata_leader_not_available() {
    metadata_topic_error(
        "metadata_leader_not_available",
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    )
    .await;
}

#[tokio::test]
async fn metadata_unknown_topic_or_partition() {
    metadata_topic_error(
        "metadata_unknown_topic_or_partition",
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
    )
    .await;
}

// OffsetCommit: the members auto-commit every 300 ms, so the next commits meet the errors.

#[tokio::test]
async fn offset_commit_not_coordinator() {
    inject(
        "offset_commit_not_coordinator",
        OffsetCommit,
        &[RD_KAFKA_RESP_ERR_NOT_COORDINATOR; 2],
    )
    .await;
}

#[tokio::test]
async fn offset_commit_coordinator_not_available() {
    inject(
        "offset_commit_coordinator_not_available",
        OffsetCommit,
        &[RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; 2],
    )
    .await;
}

#[tokio::test]
async fn offset_commit_coordinator_load_in_progress() {
    inject(
        "offset_commit_coordinator_load_in_progress",
        OffsetCommit,
        &[RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 2],
    )
    .await;
}

#[tokio::test]
async fn offset_commit_rebalance_in_progress() {
    inject(
        "offset_commit_rebalance_in_progress",
        OffsetCommit,
        &[RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS],
    )
    .await;
}

#[tokio::test]
async fn offset_commit_unknown_member_id() {
    inject(
        "offset_commit_unknown_member_id",
        OffsetCommit,
        &[RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID],
    )
    .await;
}

#[tokio::test]
async fn offset_commit_illegal_generation() {
    inject(
        "offset_commit_illegal_generation",
        OffsetCommit,
        &[RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION],
    )
    .await;
}

// Heartbeat: every 400 ms per member.

#[tokio::test]
async fn heartbeat_not_coordinator() {
    inject(
        "heartbeat_not_coordinator",
        Heartbeat,
        &[RD_KAFKA_RESP_ERR_NOT_COORDINATOR; 2],
    )
    .await;
}

#[tokio::test]
async fn heartbeat_coordinator_not_available() {
    inject(
        "heartbeat_coordinator_not_available",
        Heartbeat,
        &[RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; 2],
    )
    .await;
}

#[tokio::test]
async fn heartbeat_coordinator_load_in_progress() {
    inject(
        "heartbeat_coordinator_load_in_progress",
        Heartbeat,
        &[RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 2],
    )
    .await;
}

#[tokio::test]
async fn heartbeat_rebalance_in_progress() {
    inject(
        "heartbeat_rebalance_in_progress",
        Heartbeat,
        &[RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS],
    )
    .await;
}

#[tokio::test]
async fn heartbeat_unknown_member_id() {
    inject(
        "heartbeat_unknown_member_id",
        Heartbeat,
        &[RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID],
    )
    .await;
}

#[tokio::test]
async fn heartbeat_illegal_generation() {
    inject(
        "heartbeat_illegal_generation",
        Heartbeat,
        &[RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION],
    )
    .await;
}

/// The six group errors of the suite, for JoinGroup and SyncGroup (see `inject_on_rejoin`).
const GROUP_ERRORS: &[RDKafkaRespErr] = &[
    RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
    RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
    RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID,
    RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
];

#[tokio::test]
async fn join_group_errors() {
    inject_on_rejoin("join_group_errors", JoinGroup, GROUP_ERRORS).await;
}

#[tokio::test]
async fn sync_group_errors() {
    inject_on_rejoin("sync_group_errors", SyncGroup, GROUP_ERRORS).await;
}
