//! Failover scenarios that once found client bugs (fixed): a broker down for good with its
//! partitions or the group coordinator moved away, and a leader move while a batch is still in
//! flight to the old leader (order must hold, with and without idempotence).

mod common;

use std::rc::Rc;

use common::faults::{Ctx, Scenario, COORDINATOR};

/// Broker 2 goes down for good; partition 1, which it led, moves to broker 3.
async fn broker_2_down_for_good_leadership_moved(c: Rc<Ctx>) {
    c.broker_down(2);
    c.move_leader(1, 3);
}

/// The group coordinator's broker goes down for good; partition 0, which it led, moves to
/// broker 2 and the group coordinator to broker 3.
async fn coordinator_broker_down_for_good_all_moved(c: Rc<Ctx>) {
    c.broker_down(COORDINATOR);
    c.move_leader(0, 2);
    c.move_coordinator(3);
}

#[tokio::test]
async fn broker_down_for_good_leadership_moved() {
    Scenario::new("broker_down_for_good_leadership_moved")
        .fault(broker_2_down_for_good_leadership_moved)
        .run()
        .await;
}

#[tokio::test]
async fn coordinator_broker_down_for_good() {
    Scenario::new("coordinator_broker_down_for_good")
        .fault(coordinator_broker_down_for_good_all_moved)
        .run()
        .await;
}

#[tokio::test]
async fn broker_down_for_good_leadership_moved_with_periodic_refresh() {
    Scenario::new("broker_down_for_good_leadership_moved_with_periodic_refresh")
        .metadata_max_age(std::time::Duration::from_secs(2))
        .fault(broker_2_down_for_good_leadership_moved)
        .run()
        .await;
}

/// A batch in flight to a slow old leader gets NOT_LEADER_OR_FOLLOWER late, while the producer
/// already learned the new leader from another partition's error and sent the next batch
/// there.
async fn leader_moves_while_batch_in_flight(name: &'static str, idempotent: bool) {
    let mut s = Scenario::new(name).one_request_in_flight();
    if !idempotent {
        s = s.not_idempotent();
    }
    s.fault(|c| async move {
        c.mock()
            .broker_round_trip_time(2, std::time::Duration::from_millis(600))
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // Requests reaching broker 2 from now on get NOT_LEADER_OR_FOLLOWER, 0.6 s late.
        c.move_leader(1, 3);
        tokio::time::sleep(std::time::Duration::from_millis(650)).await;
        // Broker 3 answers partition 2 NOT_LEADER_OR_FOLLOWER at once: the producer refreshes
        // metadata and learns partition 1's new leader while a partition-1 batch is still
        // waiting for broker 2's late answer.
        c.move_leader(2, 1);
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        c.mock()
            .broker_round_trip_time(2, std::time::Duration::ZERO)
            .unwrap();
    })
    .run()
    .await;
}

#[tokio::test]
async fn leader_moves_while_batch_in_flight_max_in_flight_1_not_idempotent() {
    leader_moves_while_batch_in_flight(
        "leader_moves_while_batch_in_flight_max_in_flight_1_not_idempotent",
        false,
    )
    .await;
}

#[tokio::test]
async fn leader_moves_while_batch_in_flight_idempotent() {
    leader_moves_while_batch_in_flight("leader_moves_while_batch_in_flight_idempotent", true).await;
}

#[tokio::test]
async fn coordinator_broker_down_for_good_with_periodic_refresh() {
    Scenario::new("coordinator_broker_down_for_good_with_periodic_refresh")
        .metadata_max_age(std::time::Duration::from_secs(2))
        .fault(coordinator_broker_down_for_good_all_moved)
        .run()
        .await;
}
