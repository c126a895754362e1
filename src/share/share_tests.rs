//! The share consumer against a scripted broker (`testing::FakeCluster`): what goes on the
//! wire, request by request — share session epochs (0 opens, +1 per request, -1 closes),
//! acknowledgements piggy-backed on ShareFetch or sent alone in ShareAcknowledge, the member
//! id kept from join to leave.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartition, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::share_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorResponse, ShareAcknowledgeRequest, ShareAcknowledgeResponse,
    ShareFetchRequest, ShareFetchResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};
use uuid::Uuid;

use super::*;
use crate::compression::Compression;
use crate::protocol::records::BatchBuilder;
use crate::protocol::str_bytes;
use crate::testing::{FakeCluster, DEFAULT_RANGES};

const TOPIC_ID: Uuid = Uuid::from_bytes([9; 16]);

/// What the fake broker saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Heartbeat {
        member: String,
        epoch: i32,
    },
    /// Epoch, partitions named, acknowledgements `(first, last, types)`.
    Fetch {
        epoch: i32,
        fetched: Vec<i32>,
        acks: Vec<(i64, i64, Vec<i8>)>,
    },
    Ack {
        epoch: i32,
        acks: Vec<(i64, i64, Vec<i8>)>,
    },
}

/// Four records at offsets 0..=3 of `t`-0 in one batch.
fn records() -> bytes::Bytes {
    let mut b = BatchBuilder::new(256);
    for i in 0..4 {
        b.append(0, None, Some(format!("v{i}").as_bytes()), &[]);
    }
    b.finish(Compression::None, None).unwrap().freeze()
}

/// Faults the fake broker injects.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// The second heartbeat is answered FENCED_MEMBER_EPOCH.
    fence_second_heartbeat: bool,
    /// The ShareFetch at epoch 1 is answered INVALID_SHARE_SESSION_EPOCH.
    reject_epoch_1: bool,
    /// The heartbeat interval the broker asks for (ms).
    interval_ms: i32,
}

/// A single-broker cluster that answers the share-group APIs: the first ShareFetch acquires
/// records 0..=3 (delivery count 1), later ones find nothing.
fn share_broker() -> (Arc<FakeCluster>, Arc<Mutex<Vec<Seen>>>) {
    share_broker_with(Faults {
        interval_ms: 60_000,
        ..Faults::default()
    })
}

fn share_broker_with(faults: Faults) -> (Arc<FakeCluster>, Arc<Mutex<Vec<Seen>>>) {
    let cluster = FakeCluster::with_brokers(&[1]);
    cluster.metadata.lock().unwrap().topics[0].topic_id = TOPIC_ID;
    let mut ranges = DEFAULT_RANGES.to_vec();
    ranges.extend([(76, 1, 1), (78, 1, 1), (79, 1, 1)]);
    *cluster.ranges.lock().unwrap() = Some(ranges);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r| {
        let (api, _) = r.api();
        match api {
            ApiKey::FindCoordinator => Some(r.answer(
                &FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                    .with_key(str_bytes("g"))
                    .with_node_id(BrokerId(1))
                    .with_host(str_bytes("fake"))
                    .with_port(1)]),
            )),
            ApiKey::ShareGroupHeartbeat => {
                let req: ShareGroupHeartbeatRequest = r.decode();
                let beats = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen::Heartbeat {
                        member: req.member_id.to_string(),
                        epoch: req.member_epoch,
                    });
                    log.iter()
                        .filter(|s| matches!(s, Seen::Heartbeat { .. }))
                        .count()
                };
                if faults.fence_second_heartbeat && beats == 2 {
                    return Some(
                        r.answer(&ShareGroupHeartbeatResponse::default().with_error_code(110)),
                    );
                }
                let mut resp = ShareGroupHeartbeatResponse::default()
                    .with_member_id(Some(req.member_id.clone()))
                    .with_member_epoch(if req.member_epoch == -1 { -1 } else { 1 })
                    .with_heartbeat_interval_ms(faults.interval_ms);
                if req.member_epoch == 0 {
                    assert_eq!(
                        req.subscribed_topic_names.as_ref().map(|t| t.len()),
                        Some(1),
                        "a join names the subscription"
                    );
                    resp.assignment = Some(WireAssignment::default().with_topic_partitions(
                        vec![TopicPartitions::default()
                            .with_topic_id(TOPIC_ID)
                            .with_partitions(vec![0])],
                    ));
                }
                Some(r.answer(&resp))
            }
            ApiKey::ShareFetch => {
                let req: ShareFetchRequest = r.decode();
                let mut fetched = Vec::new();
                let mut acks = Vec::new();
                for t in &req.topics {
                    assert_eq!(t.topic_id, TOPIC_ID);
                    for p in &t.partitions {
                        fetched.push(p.partition_index);
                        for b in &p.acknowledgement_batches {
                            acks.push((b.first_offset, b.last_offset, b.acknowledge_types.clone()));
                        }
                    }
                }
                let first = req.share_session_epoch == 0;
                let opened_before = log
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|s| matches!(s, Seen::Fetch { epoch: 0, .. }));
                log.lock().unwrap().push(Seen::Fetch {
                    epoch: req.share_session_epoch,
                    fetched,
                    acks: acks.clone(),
                });
                if faults.reject_epoch_1 && req.share_session_epoch == 1 {
                    return Some(r.answer(&ShareFetchResponse::default().with_error_code(123)));
                }
                if first && opened_before {
                    // A reopened session: the old one's records are gone, nothing new.
                    return Some(r.answer(&ShareFetchResponse::default()));
                }
                let mut part = PartitionData::default().with_partition_index(0);
                if first {
                    part = part
                        .with_records(Some(records()))
                        .with_acquired_records(vec![AcquiredRecords::default()
                            .with_first_offset(0)
                            .with_last_offset(3)
                            .with_delivery_count(1)]);
                } else if acks.is_empty() {
                    return Some(r.answer(&ShareFetchResponse::default()));
                }
                Some(r.answer(&ShareFetchResponse::default().with_responses(vec![
                    ShareFetchableTopicResponse::default()
                        .with_topic_id(TOPIC_ID)
                        .with_partitions(vec![part]),
                ])))
            }
            ApiKey::ShareAcknowledge => {
                let req: ShareAcknowledgeRequest = r.decode();
                let mut acks = Vec::new();
                for t in &req.topics {
                    for p in &t.partitions {
                        for b in &p.acknowledgement_batches {
                            acks.push((b.first_offset, b.last_offset, b.acknowledge_types.clone()));
                        }
                    }
                }
                log.lock().unwrap().push(Seen::Ack {
                    epoch: req.share_session_epoch,
                    acks,
                });
                // Offset 2's acknowledgement comes too late: its lock expired.
                let code = if req.topics.is_empty() { 0 } else { 121 };
                Some(
                    r.answer(
                        &ShareAcknowledgeResponse::default().with_responses(
                            req.topics
                                .iter()
                                .map(|t| {
                                    ShareAcknowledgeTopicResponse::default()
                                        .with_topic_id(t.topic_id)
                                        .with_partitions(vec![AckPartition::default()
                                            .with_partition_index(0)
                                            .with_error_code(code)])
                                })
                                .collect(),
                        ),
                    ),
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }));
    (cluster, seen)
}

async fn consumer(cluster: &Arc<FakeCluster>, mode: &str) -> ShareConsumer {
    let client = cluster.client_builder().build().await.unwrap();
    let c = ShareConsumer::builder(&client)
        .group_id("g")
        .set("share.acknowledgement.mode", mode)
        .fetch_max_wait(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    c.subscribe(&["t"]).await.unwrap();
    c
}

fn fetches_and_acks(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .filter(|s| !matches!(s, Seen::Heartbeat { .. }))
        // Empty polls after the first (nothing acquired, nothing acknowledged) vary in number.
        .filter(|s| !matches!(s, Seen::Fetch { epoch, acks, .. } if *epoch > 1 && acks.is_empty()))
        .cloned()
        .collect()
}

#[tokio::test]
async fn explicit_acknowledgements_go_in_share_acknowledge_and_close_ends_the_session() {
    let (cluster, seen) = share_broker();
    let c = consumer(&cluster, "explicit").await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), c.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        got.iter()
            .map(|r| (r.offset, r.delivery_count))
            .collect::<Vec<_>>(),
        vec![(0, 1), (1, 1), (2, 1), (3, 1)]
    );
    assert_eq!(got[1].value.as_deref(), Some(&b"v1"[..]));
    c.acknowledge(&got[0], AcknowledgeType::Accept).unwrap();
    c.acknowledge(&got[1], AcknowledgeType::Release).unwrap();
    c.acknowledge(&got[2], AcknowledgeType::Reject).unwrap();
    let results = c.commit().await.unwrap();
    let e = results[&TopicPartition::new("t", 0)].clone().unwrap_err();
    assert_eq!(e.kafka_code(), Some(crate::KafkaCode::InvalidRecordState));
    // Record 3 was never acknowledged: close releases it and closes the session.
    c.close().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        fetches_and_acks(&seen),
        vec![
            Seen::Fetch {
                epoch: 0,
                fetched: vec![0],
                acks: vec![]
            },
            Seen::Ack {
                epoch: 1,
                acks: vec![(0, 0, vec![1]), (1, 1, vec![2]), (2, 2, vec![3])]
            },
            Seen::Ack {
                epoch: -1,
                acks: vec![(3, 3, vec![2])]
            },
        ]
    );
    // Joined with a client-generated id, left with the same id at epoch -1.
    let beats: Vec<&Seen> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Heartbeat { .. }))
        .collect();
    let member = c.member_id().to_owned();
    assert_eq!(member.len(), 36, "a UUID: {member}");
    assert_eq!(
        beats,
        vec![
            &Seen::Heartbeat {
                member: member.clone(),
                epoch: 0
            },
            &Seen::Heartbeat { member, epoch: -1 }
        ]
    );
    assert!(matches!(c.recv().await, Err(Error::Closed)));
}

#[tokio::test]
async fn implicit_acceptance_rides_on_the_next_share_fetch() {
    let (cluster, seen) = share_broker();
    let c = consumer(&cluster, "implicit").await;
    for _ in 0..4 {
        tokio::time::timeout(Duration::from_secs(10), c.recv())
            .await
            .unwrap()
            .unwrap();
    }
    // The fifth poll accepts the four and finds nothing new.
    assert!(tokio::time::timeout(Duration::from_millis(300), c.recv())
        .await
        .is_err());
    c.close().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        fetches_and_acks(&seen),
        vec![
            Seen::Fetch {
                epoch: 0,
                fetched: vec![0],
                acks: vec![]
            },
            Seen::Fetch {
                epoch: 1,
                fetched: vec![0],
                acks: vec![(0, 3, vec![1])]
            },
            Seen::Ack {
                epoch: -1,
                acks: vec![]
            },
        ]
    );
    assert_eq!(c.acknowledgement_failures(), 0);
}

#[tokio::test]
async fn a_fenced_member_rejoins_with_its_id_and_a_lost_session_reopens_at_epoch_0() {
    let (cluster, seen) = share_broker_with(Faults {
        fence_second_heartbeat: true,
        reject_epoch_1: true,
        interval_ms: 20,
    });
    let c = consumer(&cluster, "implicit").await;
    for _ in 0..4 {
        tokio::time::timeout(Duration::from_secs(10), c.recv())
            .await
            .unwrap()
            .unwrap();
    }
    // The next poll carries the acceptances at epoch 1, which the broker refuses: the
    // acknowledgements are lost (counted) and the session reopens at epoch 0.
    assert!(tokio::time::timeout(Duration::from_millis(300), c.recv())
        .await
        .is_err());
    assert_eq!(c.acknowledgement_failures(), 1);
    c.close().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let fetches: Vec<(i32, usize)> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Fetch { epoch, acks, .. } => Some((*epoch, acks.len())),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(fetches, vec![(0, 0), (1, 1), (0, 0)], "{seen:?}");
    let member = c.member_id().to_owned();
    let beats: Vec<(String, i32)> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Heartbeat { member, epoch } => Some((member.clone(), *epoch)),
            _ => None,
        })
        .collect();
    // Joined (0), heartbeat at 1 refused as fenced, rejoined at 0 with the same id, left at -1.
    assert_eq!(
        &beats[..3],
        &[
            (member.clone(), 0),
            (member.clone(), 1),
            (member.clone(), 0)
        ]
    );
    assert_eq!(beats.last(), Some(&(member, -1)));
}

#[tokio::test]
async fn a_broker_without_share_groups_fails_recv_with_unsupported_api() {
    // The fake broker's default API list has no ShareGroupHeartbeat (like Tansu, or Kafka
    // before 4.0).
    let cluster = FakeCluster::with_brokers(&[1]);
    *cluster.handler.lock().unwrap() = Some(Box::new(|r| match r.api().0 {
        ApiKey::FindCoordinator => Some(r.answer(
            &FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                .with_key(str_bytes("g"))
                .with_node_id(BrokerId(1))
                .with_host(str_bytes("fake"))
                .with_port(1)]),
        )),
        other => panic!("unexpected {other:?}"),
    }));
    let c = consumer(&cluster, "implicit").await;
    let e = tokio::time::timeout(Duration::from_secs(10), c.recv())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedApi {
                api: "ShareGroupHeartbeat",
                ..
            }
        ),
        "{e:?}"
    );
    // Unsubscribed consumers are told what is missing.
    let client = cluster.client_builder().build().await.unwrap();
    let idle = ShareConsumer::builder(&client)
        .group_id("g")
        .build()
        .await
        .unwrap();
    assert!(matches!(idle.recv().await, Err(Error::InvalidState(_))));
    // group.id is required.
    let e = ShareConsumer::builder(&client).build().await.unwrap_err();
    assert!(e.to_string().contains("group.id"), "{e}");
}
