//! Fault scenarios on the wire: connections closed by a broker in the middle of a response,
//! and answers slower than the request timeout. The driver and the invariants are in
//! `tests/common/faults.rs`, the proxy in `tests/common/cutting_proxy.rs`; the table is in
//! `docs/RELIABILITY.md`.
//!
//! Where a Produce request reached the log but its answer was lost, the retry must be
//! deduplicated by the broker. The librdkafka mock does not do that for non-transactional
//! producers (it checks sequence numbers only when the request carries a transactional id),
//! so those scenarios run on Tansu behind the proxy, which does.

mod common;

use std::time::Duration;

use common::cutting_proxy::api;
use common::faults::{Backend, Scenario, BROKERS, COORDINATOR};

/// How long a fault may take to meet its target (the stream runs for about a second more
/// after the midpoint, and the group's calls come every few hundred milliseconds).
const TARGET_MET: Duration = Duration::from_secs(10);

#[tokio::test]
async fn connection_cut_mid_fetch_response() {
    // Every broker cuts its next two Fetch responses 40 bytes in (inside the first
    // partition's data): the fetchers reconnect and fetch again from the same position.
    Scenario::new("connection_cut_mid_fetch_response")
        .backend(Backend::MockBehindProxies)
        .fault(|c| async move {
            for b in 1..=BROKERS {
                c.proxy(b).cut_responses(Some(api::FETCH), 40, 2);
            }
            for b in 1..=BROKERS {
                assert!(
                    c.proxy(b).wait_for_cuts(2, TARGET_MET).await,
                    "no Fetch cut"
                );
            }
        })
        .run()
        .await;
}

#[tokio::test]
async fn connection_cut_mid_metadata_response() {
    // A leader moves, so the producer and the fetching member ask for metadata, and the
    // first Metadata response of each broker is cut 30 bytes in.
    Scenario::new("connection_cut_mid_metadata_response")
        .backend(Backend::MockBehindProxies)
        .fault(|c| async move {
            for b in 1..=BROKERS {
                c.proxy(b).cut_responses(Some(api::METADATA), 30, 1);
            }
            c.move_leader(1, 3);
            let mut cut = 0;
            for b in 1..=BROKERS {
                if c.proxy(b).wait_for_cuts(1, Duration::from_secs(3)).await {
                    cut += 1;
                }
            }
            assert!(cut > 0, "no Metadata response was cut");
        })
        .run()
        .await;
}

#[tokio::test]
async fn connection_cut_mid_heartbeat_response() {
    // The coordinator's connection dies in the middle of a Heartbeat answer, twice.
    Scenario::new("connection_cut_mid_heartbeat_response")
        .backend(Backend::MockBehindProxies)
        .fault(|c| async move {
            c.proxy(COORDINATOR)
                .cut_responses(Some(api::HEARTBEAT), 10, 2);
            assert!(
                c.proxy(COORDINATOR).wait_for_cuts(2, TARGET_MET).await,
                "no Heartbeat cut"
            );
        })
        .run()
        .await;
}

#[tokio::test]
async fn connection_cut_mid_offset_commit_response() {
    // An auto-commit's answer is lost mid-frame: the commit may or may not have been stored;
    // the member retries it and goes on.
    Scenario::new("connection_cut_mid_offset_commit_response")
        .backend(Backend::MockBehindProxies)
        .fault(|c| async move {
            c.proxy(COORDINATOR)
                .cut_responses(Some(api::OFFSET_COMMIT), 12, 2);
            assert!(
                c.proxy(COORDINATOR).wait_for_cuts(2, TARGET_MET).await,
                "no OffsetCommit cut"
            );
        })
        .run()
        .await;
}

#[tokio::test]
async fn connection_cut_mid_join_group_response() {
    // A rebalance starts and a JoinGroup answer is cut: the mock counts the member as
    // joined, the member asks again on a new connection.
    Scenario::new("connection_cut_mid_join_group_response")
        .backend(Backend::MockBehindProxies)
        .fault(|c| async move {
            c.proxy(COORDINATOR)
                .cut_responses(Some(api::JOIN_GROUP), 16, 1);
            c.force_rejoin();
            assert!(
                c.proxy(COORDINATOR).wait_for_cuts(1, TARGET_MET).await,
                "no JoinGroup cut"
            );
        })
        .run()
        .await;
}

#[tokio::test]
async fn connection_cut_mid_produce_response() {
    // Two Produce answers are cut after the records were appended: the producer cannot
    // know, retries with the same sequence numbers, and the broker must not append twice.
    Scenario::new("connection_cut_mid_produce_response")
        .backend(Backend::TansuBehindProxy)
        .fault(|c| async move {
            c.proxy(1).cut_responses(Some(api::PRODUCE), 20, 2);
            assert!(
                c.proxy(1).wait_for_cuts(2, TARGET_MET).await,
                "no Produce cut"
            );
        })
        .run()
        .await;
}

#[tokio::test]
async fn rtt_above_request_timeout() {
    // For 4 s every answer takes 2.5 s against a request timeout of 1.5 s: requests time out
    // (Produce possibly persisted), connections are dropped and retried; afterwards nothing
    // is missing and nothing doubled.
    Scenario::new("rtt_above_request_timeout")
        .backend(Backend::TansuBehindProxy)
        .request_timeout(Duration::from_millis(1500))
        .fault(|c| async move {
            c.proxy(1).set_delay(Duration::from_millis(2500));
            tokio::time::sleep(Duration::from_secs(4)).await;
            c.proxy(1).set_delay(Duration::ZERO);
        })
        .run()
        .await;
}
