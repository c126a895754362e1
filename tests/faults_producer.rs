//! Fault scenarios on the produce path and the brokers themselves: leadership moves, brokers
//! going away, the producer-id coordinator failing, and every Produce error a broker may
//! answer. The driver and the invariants are in `tests/common/faults.rs`; the table is in
//! `docs/RELIABILITY.md`.

mod common;

use std::time::Duration;

use common::faults::{initial_leader, Scenario, COORDINATOR};
use rdkafka::types::RDKafkaApiKey;
use rdkafka::types::RDKafkaRespErr::{self, *};

/// A Produce error repeated over the next requests (see `PRODUCE_BURST`), mid-stream.
async fn produce_error(name: &'static str, err: RDKafkaRespErr) {
    Scenario::new(name)
        .one_request_in_flight()
        .fault(move |c| async move { c.inject_produce(err) })
        .run()
        .await;
}

#[tokio::test]
async fn no_fault_baseline() {
    Scenario::new("no_fault_baseline").run().await;
}

#[tokio::test]
async fn partition_leader_moved() {
    // Partition 1 moves from broker 2 to broker 3: the old leader answers
    // NOT_LEADER_OR_FOLLOWER to the producer and to the fetching member.
    Scenario::new("partition_leader_moved")
        .fault(|c| async move { c.move_leader(1, initial_leader(2)) })
        .run()
        .await;
}

#[tokio::test]
async fn broker_down_then_up() {
    // Broker 2 refuses connections for 3 s; leadership stays (the mock never moves it), so
    // partition 1 waits for it and resumes.
    Scenario::new("broker_down_then_up")
        .fault(|c| async move {
            c.broker_down(2);
            tokio::time::sleep(Duration::from_secs(3)).await;
            c.broker_up(2);
        })
        .run()
        .await;
}

#[tokio::test]
async fn broker_down_past_delivery_timeout() {
    // Broker 2 is away for longer than delivery.timeout.ms (4 s here): the records for its
    // partition sent meanwhile fail with a timeout, on time; the rest is delivered, and
    // partition 1 resumes once the broker is back.
    let report = Scenario::new("broker_down_past_delivery_timeout")
        .delivery_timeout(Duration::from_secs(4))
        .deliveries_may_fail(|e| e.is_timeout())
        .fault(|c| async move {
            c.broker_down(2);
            tokio::time::sleep(Duration::from_secs(6)).await;
            c.broker_up(2);
        })
        .run()
        .await;
    assert!(
        !report.failed.is_empty(),
        "no delivery outlived the 4 s delivery timeout"
    );
}

#[tokio::test]
async fn broker_controlled_shutdown() {
    // Broker 2 hands its leadership to broker 3 (the old leader answers
    // NOT_LEADER_OR_FOLLOWER, so the clients look the leader up again), then stops for good.
    Scenario::new("broker_controlled_shutdown")
        .fault(|c| async move {
            c.move_leader(1, 3);
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.broker_down(2);
        })
        .run()
        .await;
}

#[tokio::test]
async fn coordinator_broker_controlled_shutdown() {
    // The broker that coordinates the group and leads partition 0 hands both over, then
    // stops for good: the members find the new coordinator (their connection to the old
    // one is cut), the producer and fetchers follow the leader.
    Scenario::new("coordinator_broker_controlled_shutdown")
        .fault(|c| async move {
            c.move_leader(0, 2);
            c.move_coordinator(3);
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.broker_down(COORDINATOR);
        })
        .run()
        .await;
}

#[tokio::test]
async fn init_producer_id_coordinator_not_available() {
    // The producer's first InitProducerId calls fail (the transaction-state log is not
    // ready): sends wait for an identity, then go out.
    Scenario::new("init_producer_id_coordinator_not_available")
        .setup(|c| {
            c.inject(
                RDKafkaApiKey::InitProducerId,
                &[
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                ],
            )
        })
        .run()
        .await;
}

#[tokio::test]
async fn epoch_bump_meets_init_producer_id_errors() {
    // UNKNOWN_PRODUCER_ID mid-stream asks for an epoch bump (KIP-360), and the bump's
    // InitProducerId fails twice before it succeeds.
    Scenario::new("epoch_bump_meets_init_producer_id_errors")
        .one_request_in_flight()
        .fault(|c| async move {
            c.inject(
                RDKafkaApiKey::InitProducerId,
                &[
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                ],
            );
            c.inject_produce(RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID);
        })
        .run()
        .await;
}

#[tokio::test]
async fn produce_not_leader_or_follower() {
    produce_error(
        "produce_not_leader_or_follower",
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
    )
    .await;
}

#[tokio::test]
async fn produce_leader_not_available() {
    produce_error(
        "produce_leader_not_available",
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    )
    .await;
}

#[tokio::test]
async fn produce_request_timed_out() {
    produce_error(
        "produce_request_timed_out",
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
    )
    .await;
}

#[tokio::test]
async fn produce_not_enough_replicas() {
    produce_error(
        "produce_not_enough_replicas",
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    )
    .await;
}

#[tokio::test]
async fn produce_not_enough_replicas_after_append() {
    produce_error(
        "produce_not_enough_replicas_after_append",
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    )
    .await;
}

#[tokio::test]
async fn produce_network_exception() {
    produce_error(
        "produce_network_exception",
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
    )
    .await;
}

#[tokio::test]
async fn produce_out_of_order_sequence_number() {
    produce_error(
        "produce_out_of_order_sequence_number",
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
    )
    .await;
}

#[tokio::test]
async fn produce_unknown_producer_id() {
    produce_error(
        "produce_unknown_producer_id",
        RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
    )
    .await;
}

#[tokio::test]
async fn produce_kafka_storage_error() {
    produce_error(
        "produce_kafka_storage_error",
        RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
    )
    .await;
}
