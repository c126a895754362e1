//! The KIP-848 member against a scripted fake coordinator: what each heartbeat carries (full
//! on join and after fencing, incremental otherwise), the reconciliation order (revoke, then
//! acknowledge, then assign), fencing (lost hook, rejoin with epoch 0 and the same member
//! id) and leaving (epoch -1, or -2 for a static member).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions as AssignedPartitions,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    FindCoordinatorResponse, GroupId, OffsetCommitRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::codes::KafkaCode;
use crate::consumer::record::TopicPartition;
use crate::consumer::{Consumer, GroupProtocol, RebalanceContext, RebalanceListener};
use crate::testing::{offset_commit_answer, FakeCluster, DEFAULT_RANGES};

/// The id of topic `t` in the fake cluster's metadata.
const T: [u8; 16] = [9; 16];

/// What happened, in order: heartbeats as the coordinator saw them, and hooks.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Beat(Box<ConsumerGroupHeartbeatRequest>),
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
    Lost(Vec<TopicPartition>),
}

type Log = Arc<Mutex<Vec<Seen>>>;

struct Hooks(Log);

#[async_trait]
impl RebalanceListener for Hooks {
    async fn assigned(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(Seen::Assigned(partitions.to_vec()));
    }
    async fn revoked(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .push(Seen::Revoked(partitions.to_vec()));
    }
    async fn lost(&self, _: &RebalanceContext, partitions: &[TopicPartition]) {
        self.0.lock().unwrap().push(Seen::Lost(partitions.to_vec()));
    }
}

/// The fake coordinator's answers: queued ones first, then "nothing new" at the last epoch.
#[derive(Default)]
struct Script {
    queued: VecDeque<ConsumerGroupHeartbeatResponse>,
    epoch: i32,
    /// Error codes for the next OffsetCommits (then success), and the requests seen.
    commit_codes: VecDeque<i16>,
    commits: Vec<OffsetCommitRequest>,
}

fn answer(epoch: i32, assignment: Option<Vec<i32>>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_member_epoch(epoch)
        .with_heartbeat_interval_ms(40)
        .with_assignment(assignment.map(|parts| {
            Assignment::default().with_topic_partitions(if parts.is_empty() {
                Vec::new()
            } else {
                vec![AssignedPartitions::default()
                    .with_topic_id(T.to_vec().try_into().unwrap())
                    .with_partitions(parts)]
            })
        }))
}

fn refusal(code: KafkaCode) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default().with_error_code(code.code())
}

struct Fake {
    consumer: Consumer,
    log: Log,
    script: Arc<Mutex<Script>>,
}

async fn fake(instance: Option<&str>) -> Fake {
    fake_with(instance, &[]).await
}

async fn fake_with(instance: Option<&str>, props: &[(&str, &str)]) -> Fake {
    let cluster = FakeCluster::with_brokers(&[1]);
    cluster.metadata.lock().unwrap().topics[0].topic_id = T.to_vec().try_into().unwrap();
    let mut ranges = DEFAULT_RANGES.to_vec();
    ranges.push((ApiKey::ConsumerGroupHeartbeat as i16, 0, 1));
    *cluster.ranges.lock().unwrap() = Some(ranges);
    let log: Log = Arc::default();
    let script: Arc<Mutex<Script>> = Arc::default();
    let (l, s) = (log.clone(), script.clone());
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r| match r.api().0 {
        ApiKey::FindCoordinator => Some(r.answer(
            &FindCoordinatorResponse::default().with_coordinators(vec![
                    Coordinator::default()
                        .with_key(StrBytes::from_static_str("g"))
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("fake"))
                        .with_port(1),
                ]),
        )),
        ApiKey::ConsumerGroupHeartbeat => {
            let req: ConsumerGroupHeartbeatRequest = r.decode();
            let mut s = s.lock().unwrap();
            let resp = match s.queued.pop_front() {
                Some(resp) => resp,
                None if req.member_epoch < 0 => answer(req.member_epoch, None),
                None => answer(s.epoch, None),
            };
            if resp.error_code == 0 && resp.member_epoch > 0 {
                s.epoch = resp.member_epoch;
            }
            l.lock().unwrap().push(Seen::Beat(Box::new(req)));
            Some(r.answer(&resp))
        }
        // The fetcher's committed-offset lookup shares the coordinator socket, whose answers
        // must come in order: answer it (offset 5). Its Fetches, on sockets of their own,
        // stay unanswered: these tests are about membership, and the consumer is closed
        // long before they time out.
        ApiKey::OffsetFetch => Some(r.answer(&OffsetFetchResponse::default().with_groups(vec![
                    OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("g")))
                        .with_topics(vec![OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_static_str("t")))
                            .with_partitions(vec![OffsetFetchResponsePartitions::default()
                                .with_partition_index(0)
                                .with_committed_offset(5)
                                .with_committed_leader_epoch(-1)
                                .with_metadata(Some(StrBytes::from_static_str("")))])]),
                ]))),
        ApiKey::OffsetCommit => {
            let code = s.lock().unwrap().commit_codes.pop_front().unwrap_or(0);
            s.lock().unwrap().commits.push(r.decode());
            Some(offset_commit_answer(r, |_, _| code))
        }
        _ => None,
    }));
    let client = cluster.client_builder().build().await.unwrap();
    let mut builder = Consumer::builder(&client)
        .group_id("g")
        .group_protocol(GroupProtocol::Consumer)
        .rebalance_listener(Hooks(log.clone()));
    if let Some(id) = instance {
        builder = builder.group_instance_id(id);
    }
    for (k, v) in props {
        builder = builder.set(k, v);
    }
    let consumer = builder.build().await.unwrap();
    Fake {
        consumer,
        log,
        script,
    }
}

impl Fake {
    fn queue(&self, resp: ConsumerGroupHeartbeatResponse) {
        self.script.lock().unwrap().queued.push_back(resp);
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn beats(&self) -> Vec<ConsumerGroupHeartbeatRequest> {
        beats(&self.seen())
    }

    /// Waits (real time, the fake answers at once) until `cond` holds for the log.
    async fn wait(&self, what: &str, cond: impl Fn(&[Seen]) -> bool) {
        for _ in 0..250 {
            if cond(&self.seen()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what}: never happened; saw {:#?}", self.seen());
    }
}

fn beats(seen: &[Seen]) -> Vec<ConsumerGroupHeartbeatRequest> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Beat(b) => Some((**b).clone()),
            _ => None,
        })
        .collect()
}

fn owned_sent(b: &ConsumerGroupHeartbeatRequest) -> Option<Vec<(Vec<u8>, Vec<i32>)>> {
    b.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|t| (t.topic_id.as_bytes().to_vec(), t.partitions.clone()))
            .collect()
    })
}

fn position(seen: &[Seen], pred: impl Fn(&Seen) -> bool) -> usize {
    seen.iter()
        .position(pred)
        .unwrap_or_else(|| panic!("not in {seen:#?}"))
}

fn t0() -> Vec<TopicPartition> {
    vec![TopicPartition::new("t", 0)]
}

#[tokio::test]
async fn joins_in_full_acknowledges_before_assigning_and_revokes_before_acknowledging() {
    let f = fake(None).await;
    f.queue(answer(1, Some(vec![0])));
    f.consumer.subscribe(&["t"]).await.unwrap();
    f.wait("assigned", |s| s.contains(&Seen::Assigned(t0())))
        .await;
    // A few stable heartbeats at the 40 ms interval the coordinator asked for.
    f.wait("stable", |s| beats(s).len() >= 4).await;

    let b = f.beats();
    let join = &b[0];
    assert_eq!(join.member_epoch, 0);
    assert_eq!(
        join.member_id.len(),
        22,
        "a client-made UUID: {:?}",
        join.member_id
    );
    assert_eq!(join.group_id.0.as_str(), "g");
    assert_eq!(join.rebalance_timeout_ms, 300_000);
    let names: Vec<&str> = join
        .subscribed_topic_names
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.0.as_str())
        .collect();
    assert_eq!(names, ["t"]);
    assert_eq!(owned_sent(join), Some(Vec::new()));
    // The acknowledgement: the new owned set alone, with the same member id and new epoch.
    let ack = &b[1];
    assert_eq!(ack.member_id, join.member_id);
    assert_eq!(ack.member_epoch, 1);
    assert_eq!(owned_sent(ack), Some(vec![(T.to_vec(), vec![0])]));
    assert_eq!(ack.subscribed_topic_names, None);
    assert_eq!(ack.rebalance_timeout_ms, -1);
    let seen = f.seen();
    let acked = position(&seen, |s| matches!(s, Seen::Beat(b) if b.member_epoch == 1));
    let assigned = position(&seen, |s| *s == Seen::Assigned(t0()));
    assert!(
        acked < assigned,
        "acknowledged after the assigned hook: {seen:#?}"
    );
    // Stable: nothing but the identity.
    for stable in &b[2..] {
        assert_eq!(stable.member_epoch, 1);
        assert_eq!(owned_sent(stable), None);
        assert_eq!(stable.subscribed_topic_names, None);
    }

    // The coordinator takes the partition away: the hook runs first, then the member says
    // it owns nothing.
    f.queue(answer(2, Some(Vec::new())));
    f.wait("revoke acknowledged", |s| {
        beats(s)
            .iter()
            .any(|b| owned_sent(b) == Some(Vec::new()) && b.member_epoch == 2)
    })
    .await;
    let seen = f.seen();
    let revoked = position(&seen, |s| *s == Seen::Revoked(t0()));
    let acked = position(
        &seen,
        |s| matches!(s, Seen::Beat(b) if b.member_epoch == 2 && owned_sent(b) == Some(Vec::new())),
    );
    assert!(
        revoked < acked,
        "acknowledged before the revoked hook: {seen:#?}"
    );
    assert!(f.consumer.assignment().is_empty());
    assert_eq!(f.consumer.group_metadata().unwrap().generation_id, 2);

    f.consumer.close().await.unwrap();
    let last = f.beats().pop().unwrap();
    assert_eq!(last.member_epoch, -1, "a dynamic member leaves with -1");
    assert_eq!(last.member_id, join.member_id);
    assert!(!f.seen().iter().any(|s| matches!(s, Seen::Lost(_))));
}

#[tokio::test]
async fn a_fenced_member_loses_its_partitions_and_rejoins_with_epoch_zero() {
    let f = fake(Some("instance-1")).await;
    f.queue(answer(3, Some(vec![0])));
    f.consumer.subscribe(&["t"]).await.unwrap();
    f.wait("assigned", |s| s.contains(&Seen::Assigned(t0())))
        .await;
    let member_id = f.beats()[0].member_id.clone();

    f.queue(refusal(KafkaCode::FencedMemberEpoch));
    f.queue(answer(7, Some(vec![0])));
    f.wait("assigned again", |s| {
        s.iter().filter(|e| **e == Seen::Assigned(t0())).count() == 2
    })
    .await;
    let seen = f.seen();
    let lost = position(&seen, |s| *s == Seen::Lost(t0()));
    assert!(
        !seen.contains(&Seen::Revoked(t0())),
        "fenced is lost, not revoked"
    );
    let rejoin = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Seen::Beat(b) if b.member_epoch == 0))
        .nth(1)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no rejoin in {seen:#?}"));
    assert!(rejoin > lost, "rejoined before the lost hook: {seen:#?}");
    let Seen::Beat(rejoin) = seen[rejoin].clone() else {
        unreachable!()
    };
    let rejoin = *rejoin;
    // A full request again, same member id, same static identity.
    assert_eq!(rejoin.member_id, member_id);
    assert!(rejoin.subscribed_topic_names.is_some());
    assert_eq!(rejoin.rebalance_timeout_ms, 300_000);
    assert_eq!(rejoin.instance_id.as_deref(), Some("instance-1"));
    assert_eq!(
        beats(&seen).iter().filter(|b| b.member_epoch == 0).count(),
        2,
        "one join, one rejoin"
    );

    f.consumer.close().await.unwrap();
    let last = f.beats().pop().unwrap();
    assert_eq!(last.member_epoch, -2, "a static member leaves with -2");
    assert_eq!(last.instance_id.as_deref(), Some("instance-1"));
}

#[tokio::test]
async fn a_refusal_for_good_reaches_recv_and_a_pattern_goes_out_as_a_regex() {
    let f = fake(None).await;
    f.queue(refusal(KafkaCode::UnsupportedAssignor));
    f.consumer.subscribe_pattern("t.*").await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), f.consumer.recv())
        .await
        .expect("recv returns the error")
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::UnsupportedAssignor), "{e}");
    let join = &f.beats()[0];
    assert_eq!(join.subscribed_topic_regex.as_deref(), Some("t.*"));
    f.consumer.close().await.unwrap();
}

/// OffsetCommit v9+ carries the member id and epoch; a commit refused with
/// STALE_MEMBER_EPOCH (the epoch moved on meanwhile) goes again with the newer epoch.
#[tokio::test]
async fn commits_carry_the_member_epoch_and_retry_a_stale_one_with_the_new_epoch() {
    let f = fake(None).await;
    f.queue(answer(1, Some(vec![0])));
    f.consumer.subscribe(&["t"]).await.unwrap();
    f.wait("assigned", |s| s.contains(&Seen::Assigned(t0())))
        .await;
    let member_id = f.beats()[0].member_id.clone();
    {
        let mut s = f.script.lock().unwrap();
        s.commit_codes.push_back(KafkaCode::StaleMemberEpoch.code());
        // The next heartbeat brings epoch 2.
        s.queued.push_back(answer(2, None));
    }
    let offsets = [(
        TopicPartition::new("t", 0),
        crate::consumer::CommitOffset::new(7),
    )]
    .into_iter()
    .collect();
    f.consumer.commit_offsets(&offsets).await.unwrap();
    let commits = f.script.lock().unwrap().commits.clone();
    assert!(commits.len() >= 2, "{commits:#?}");
    assert_eq!(commits[0].generation_id_or_member_epoch, 1);
    let last = commits.last().unwrap();
    assert_eq!(last.generation_id_or_member_epoch, 2, "{commits:#?}");
    assert_eq!(last.member_id, member_id);
    assert_eq!(
        last.topics[0].partitions[0].committed_offset, 7,
        "the same offsets again"
    );
    f.consumer.close().await.unwrap();
}

/// An application that stops polling for longer than `max.poll.interval.ms` loses its
/// partitions (the member leaves), gets `PollIntervalExceeded`, and joins again with the same
/// member id once it polls.
#[tokio::test]
async fn a_stalled_application_leaves_and_rejoins_when_it_polls_again() {
    let f = fake_with(None, &[("max.poll.interval.ms", "300")]).await;
    f.queue(answer(1, Some(vec![0])));
    f.consumer.subscribe(&["t"]).await.unwrap();
    f.wait("left", |s| {
        beats(s).iter().any(|b| b.member_epoch == -1) && s.contains(&Seen::Lost(t0()))
    })
    .await;
    assert_eq!(f.beats()[0].rebalance_timeout_ms, 300);
    f.queue(answer(4, Some(vec![0])));
    let e = tokio::time::timeout(Duration::from_secs(5), f.consumer.recv())
        .await
        .expect("recv returns at once")
        .unwrap_err();
    assert!(
        matches!(e, crate::Error::PollIntervalExceeded { .. }),
        "{e}"
    );
    f.wait("rejoined and assigned", |s| {
        s.iter().filter(|e| **e == Seen::Assigned(t0())).count() == 2
    })
    .await;
    let b = f.beats();
    let left = b.iter().position(|b| b.member_epoch == -1).unwrap();
    let rejoin = &b[left + 1];
    assert_eq!(rejoin.member_epoch, 0);
    assert_eq!(rejoin.member_id, b[0].member_id);
    // (Not polled since, it may well have stalled again by now.)
    assert!(f.consumer.metrics().poll_interval_exceeded >= 1);
    f.consumer.close().await.unwrap();
}
