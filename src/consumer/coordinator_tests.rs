//! Coordinator wire tests against scripted fake brokers: lookup at old and new versions, the
//! separate coordinator socket, KIP-394 joins, request fields, commit and fetch retries.

use std::sync::atomic::{AtomicUsize, Ordering};

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    OffsetFetchResponse, SyncGroupResponse,
};

use super::*;
use crate::client::pool::coordinator_slot;
use crate::client::Client;
use crate::testing::{Behaviour, FakeCluster, FakeConnector, Received, DEFAULT_RANGES};

/// A test's view of the brokers: `(broker id, request)` in, response frame out.
type Script = Arc<dyn Fn(i32, &Received) -> Option<Bytes> + Send + Sync>;

struct Harness {
    client: Client,
    connector: Arc<FakeConnector>,
    clusters: Vec<Arc<FakeCluster>>,
}

impl Harness {
    fn group(&self) -> GroupCoordinator {
        GroupCoordinator::new(self.client.inner.clone(), "g".to_owned())
    }

    fn count(&self, api: ApiKey) -> usize {
        self.clusters.iter().map(|c| c.count(api)).sum()
    }
}

/// Brokers `ids` at `fake:<id>`, each a fake cluster answering group APIs through `script`;
/// the bootstrap address `b:1` is served as the first broker.
async fn harness(ids: &[i32], ranges: Option<Vec<(i16, i16, i16)>>, script: Script) -> Harness {
    let connector = Arc::new(FakeConnector::default());
    let mut clusters = Vec::new();
    for &id in ids {
        let cluster = FakeCluster::with_brokers(ids);
        *cluster.ranges.lock().unwrap() = ranges.clone();
        let s = script.clone();
        *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| s(id, r)));
        connector.set(&format!("fake:{id}"), Behaviour::Serve(cluster.clone()));
        clusters.push(cluster);
    }
    connector.set("b:1", Behaviour::Serve(clusters[0].clone()));
    let client = Client::builder()
        .bootstrap_servers("b:1")
        .connect_timeout(Duration::from_secs(1))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .api_timeout(Duration::from_secs(5))
        .connector(connector.clone())
        .build()
        .await
        .unwrap();
    Harness {
        client,
        connector,
        clusters,
    }
}

/// `DEFAULT_RANGES` with `api` capped at `max`.
fn ranges_with(caps: &[(ApiKey, i16)]) -> Option<Vec<(i16, i16, i16)>> {
    Some(
        DEFAULT_RANGES
            .iter()
            .map(
                |&(k, min, max)| match caps.iter().find(|(a, _)| *a as i16 == k) {
                    Some(&(_, cap)) => (k, min.min(cap), cap),
                    None => (k, min, max),
                },
            )
            .collect(),
    )
}

#[test]
fn calls_can_run_on_spawned_tasks() {
    fn send<T: Send>(_: T) {}
    fn all(g: &GroupCoordinator) {
        send(g.coordinator());
        send(g.join_group(JoinParams {
            member_id: String::new(),
            group_instance_id: None,
            session_timeout_ms: 0,
            rebalance_timeout_ms: 0,
            protocol_type: String::new(),
            protocols: Vec::new(),
        }));
        send(g.sync_group(
            0,
            String::new(),
            None,
            String::new(),
            String::new(),
            Vec::new(),
        ));
        send(g.heartbeat(0, String::new(), None));
        send(g.leave_group(String::new(), None));
        send(g.commit_offsets(0, String::new(), None, &[]));
        send(g.fetch_offsets(&[]));
    }
    let _ = all;
}

/// A FindCoordinator answer naming broker `node`, in the layout of the request's version.
fn coordinator_answer(r: &Received, node: i32) -> Bytes {
    let req: FindCoordinatorRequest = r.decode();
    let host = StrBytes::from_static_str("fake");
    let resp = if r.api().1 >= 4 {
        assert_eq!(req.coordinator_keys, vec![str_bytes("g")]);
        assert!(req.key.is_empty());
        FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
            .with_key(str_bytes("g"))
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(node)
            .with_error_message(None)])
    } else {
        assert_eq!(req.key, str_bytes("g"));
        assert!(req.coordinator_keys.is_empty());
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(node)
    };
    assert_eq!(req.key_type, 0, "key type group");
    r.answer(&resp)
}

fn code(c: KafkaCode) -> i16 {
    c.code()
}

#[tokio::test]
async fn find_coordinator_v4_plus_uses_a_socket_of_its_own() {
    let script: Script = Arc::new(|_, r| match r.api().0 {
        ApiKey::FindCoordinator => {
            assert_eq!(r.api().1, 6);
            Some(coordinator_answer(r, 1))
        }
        other => panic!("unexpected {other:?}"),
    });
    let h = harness(&[1], None, script).await;
    let broker = h.client.inner.broker(1).await.unwrap();
    let g = h.group();
    let coord = g.coordinator().await.unwrap();
    assert!(
        !Arc::ptr_eq(&broker, &coord),
        "coordinator shares the broker's socket"
    );
    assert_eq!(h.connector.attempts_to("fake:1").len(), 2);
    assert!(
        coord.label().starts_with("coordinator on broker 1"),
        "{}",
        coord.label()
    );
    let pool = &h.client.inner.pool;
    assert_eq!(
        pool.broker_ids(),
        vec![1],
        "the coordinator slot is not a broker"
    );
    assert!(!Arc::ptr_eq(&pool.any_open().unwrap(), &coord));
    assert_eq!(coordinator_slot(coordinator_slot(1)), 1);
    // Cached: no second lookup, same socket.
    assert!(Arc::ptr_eq(&g.coordinator().await.unwrap(), &coord));
    assert_eq!(h.count(ApiKey::FindCoordinator), 1);
    g.mark_dead();
    g.coordinator().await.unwrap();
    assert_eq!(h.count(ApiKey::FindCoordinator), 2);
}

/// Kafka handles one request per connection at a time and holds a JoinGroup until the
/// rebalance completes: two members of one client sharing a coordinator socket would queue
/// each other's heartbeats behind their joins until their sessions expired.
#[tokio::test]
async fn every_member_of_a_client_gets_a_coordinator_socket_of_its_own() {
    let script: Script = Arc::new(|_, r| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r, 1)),
        other => panic!("unexpected {other:?}"),
    });
    let h = harness(&[1], None, script).await;
    let (a, b) = (h.group(), h.group());
    let (ca, cb) = (
        a.coordinator().await.unwrap(),
        b.coordinator().await.unwrap(),
    );
    assert!(
        !Arc::ptr_eq(&ca, &cb),
        "two members share a coordinator socket"
    );
    assert!(
        cb.label().starts_with("coordinator on broker 1"),
        "{}",
        cb.label()
    );
    // Each keeps its own across calls.
    assert!(Arc::ptr_eq(&a.coordinator().await.unwrap(), &ca));
    assert!(Arc::ptr_eq(&b.coordinator().await.unwrap(), &cb));
    // A member that is dropped closes its socket; the other keeps its own.
    let weak = Arc::downgrade(&ca);
    drop(ca);
    drop(a);
    assert!(
        weak.upgrade().is_none(),
        "a dropped member's socket stays open"
    );
    assert!(Arc::ptr_eq(&b.coordinator().await.unwrap(), &cb));
}

#[tokio::test]
async fn find_coordinator_before_v4_uses_the_key_and_retries_unavailable() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let script: Script = Arc::new(move |_, r| match r.api().0 {
        ApiKey::FindCoordinator => {
            assert_eq!(r.api().1, 3);
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                let resp = FindCoordinatorResponse::default()
                    .with_error_code(code(KafkaCode::CoordinatorNotAvailable))
                    .with_node_id(BrokerId(-1));
                return Some(r.answer(&resp));
            }
            Some(coordinator_answer(r, 2))
        }
        other => panic!("unexpected {other:?}"),
    });
    let ranges = ranges_with(&[(ApiKey::FindCoordinator, 3)]);
    let h = harness(&[1, 2], ranges, script).await;
    let coord = h.group().coordinator().await.unwrap();
    assert!(coord.label().contains("fake:2"), "{}", coord.label());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn join_group_rejoins_at_once_after_member_id_required() {
    let joins = Arc::new(Mutex::new(Vec::<JoinGroupRequest>::new()));
    let j = joins.clone();
    let script: Script = Arc::new(move |_, r| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r, 1)),
        ApiKey::JoinGroup => {
            assert_eq!(r.api().1, 9);
            let req: JoinGroupRequest = r.decode();
            let first = req.member_id.is_empty();
            j.lock().unwrap().push(req);
            let resp = if first {
                JoinGroupResponse::default()
                    .with_error_code(code(KafkaCode::MemberIdRequired))
                    .with_member_id(str_bytes("m-1"))
            } else {
                JoinGroupResponse::default()
                    .with_generation_id(3)
                    .with_protocol_type(Some(str_bytes("consumer")))
                    .with_protocol_name(Some(str_bytes("range")))
                    .with_leader(str_bytes("m-1"))
                    .with_member_id(str_bytes("m-1"))
                    .with_members(vec![JoinGroupResponseMember::default()
                        .with_member_id(str_bytes("m-1"))
                        .with_metadata(Bytes::from_static(b"sub"))])
            };
            Some(r.answer(&resp))
        }
        other => panic!("unexpected {other:?}"),
    });
    let h = harness(&[1], None, script).await;
    let outcome = h
        .group()
        .join_group(JoinParams {
            member_id: String::new(),
            group_instance_id: None,
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            protocol_type: "consumer".to_owned(),
            protocols: vec![("range".to_owned(), Bytes::from_static(b"sub"))],
        })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        JoinOutcome {
            generation_id: 3,
            protocol_name: Some("range".to_owned()),
            leader: "m-1".to_owned(),
            member_id: "m-1".to_owned(),
            members: vec![("m-1".to_owned(), None, Bytes::from_static(b"sub"))],
            skip_assignment: false,
        }
    );
    let joins = joins.lock().unwrap();
    assert_eq!(joins.len(), 2);
    assert_eq!(joins[1].member_id, str_bytes("m-1"));
    for j in joins.iter() {
        assert_eq!(j.group_id.0, str_bytes("g"));
        assert_eq!(j.group_instance_id, None);
        assert_eq!(j.reason, None);
        assert_eq!(j.session_timeout_ms, 45_000);
        assert_eq!(j.rebalance_timeout_ms, 300_000);
        assert_eq!(j.protocol_type, str_bytes("consumer"));
        assert_eq!(j.protocols.len(), 1);
        assert_eq!(j.protocols[0].name, str_bytes("range"));
        assert_eq!(j.protocols[0].metadata, Bytes::from_static(b"sub"));
    }
}

#[tokio::test(start_paused = true)]
async fn join_group_waits_the_rebalance_timeout_on_top_of_the_request_timeout() {
    let script: Script = Arc::new(|_, r| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r, 1)),
        ApiKey::JoinGroup => None,
        other => panic!("unexpected {other:?}"),
    });
    let h = harness(&[1], None, script).await;
    let params = JoinParams {
        member_id: "m".to_owned(),
        group_instance_id: Some("i".to_owned()),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 120_000,
        protocol_type: "consumer".to_owned(),
        protocols: Vec::new(),
    };
    let g = h.group();
    let start = tokio::time::Instant::now();
    let e = g.join_group(params).await.unwrap_err();
    match e {
        Error::Timeout { after, .. } => {
            assert_eq!(after, Duration::from_secs(30 + 120));
            assert!(start.elapsed() >= after);
        }
        other => panic!("expected a timeout, got {other}"),
    }
    // The timed-out connection is gone: the coordinator is looked up again next time.
    assert_eq!(g.cached(), None);
}

/// What the membership requests carried: (api, member id, group instance id).
type Seen = Arc<Mutex<Vec<(ApiKey, String, Option<String>)>>>;

fn membership_script(seen: Seen) -> Script {
    Arc::new(move |_, r| {
        let s = |v: &StrBytes| v.to_string();
        let o = |v: &Option<StrBytes>| v.as_ref().map(|v| v.to_string());
        let api = r.api().0;
        match api {
            ApiKey::FindCoordinator => Some(coordinator_answer(r, 1)),
            ApiKey::SyncGroup => {
                let req: SyncGroupRequest = r.decode();
                assert_eq!(req.generation_id, 4);
                assert_eq!(req.protocol_type, Some(str_bytes("consumer")));
                assert_eq!(req.protocol_name, Some(str_bytes("range")));
                assert_eq!(req.assignments.len(), 1);
                assert_eq!(req.assignments[0].member_id, str_bytes("m"));
                seen.lock()
                    .unwrap()
                    .push((api, s(&req.member_id), o(&req.group_instance_id)));
                let resp = SyncGroupResponse::default()
                    .with_protocol_type(Some(str_bytes("consumer")))
                    .with_protocol_name(Some(str_bytes("range")))
                    .with_assignment(Bytes::from_static(b"mine"));
                Some(r.answer(&resp))
            }
            ApiKey::Heartbeat => {
                let req: HeartbeatRequest = r.decode();
                assert_eq!(req.generation_id, 4);
                seen.lock()
                    .unwrap()
                    .push((api, s(&req.member_id), o(&req.group_instance_id)));
                Some(r.answer(&HeartbeatResponse::default()))
            }
            ApiKey::LeaveGroup => {
                let req: LeaveGroupRequest = r.decode();
                if r.api().1 >= 3 {
                    assert!(req.member_id.is_empty());
                    assert_eq!(req.members.len(), 1);
                    let m = &req.members[0];
                    assert_eq!(m.reason, None);
                    seen.lock()
                        .unwrap()
                        .push((api, s(&m.member_id), o(&m.group_instance_id)));
                } else {
                    assert!(req.members.is_empty());
                    seen.lock().unwrap().push((api, s(&req.member_id), None));
                }
                Some(r.answer(&LeaveGroupResponse::default()))
            }
            other => panic!("unexpected {other:?}"),
        }
    })
}

#[tokio::test]
async fn sync_heartbeat_and_leave_encode_the_group_instance_id() {
    for instance in [None, Some("i-1".to_owned())] {
        let seen: Seen = Arc::default();
        let h = harness(&[1], None, membership_script(seen.clone())).await;
        let g = h.group();
        let mine = g
            .sync_group(
                4,
                "m".to_owned(),
                instance.clone(),
                "consumer".to_owned(),
                "range".to_owned(),
                vec![("m".to_owned(), Bytes::from_static(b"plan"))],
            )
            .await
            .unwrap();
        assert_eq!(mine, Bytes::from_static(b"mine"));
        g.heartbeat(4, "m".to_owned(), instance.clone())
            .await
            .unwrap();
        g.leave_group("m".to_owned(), instance.clone())
            .await
            .unwrap();
        let expected: Vec<_> = [ApiKey::SyncGroup, ApiKey::Heartbeat, ApiKey::LeaveGroup]
            .into_iter()
            .map(|api| (api, "m".to_owned(), instance.clone()))
            .collect();
        assert_eq!(*seen.lock().unwrap(), expected);
    }
}

#[tokio::test]
async fn old_versions_leave_by_member_id_and_refuse_static_membership() {
    let seen: Seen = Arc::default();
    let ranges = ranges_with(&[(ApiKey::LeaveGroup, 2), (ApiKey::Heartbeat, 2)]);
    let h = harness(&[1], ranges, membership_script(seen.clone())).await;
    let g = h.group();
    g.leave_group("m".to_owned(), None).await.unwrap();
    let e = g
        .heartbeat(4, "m".to_owned(), Some("i-1".to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(e.to_string().contains("group.instance.id"), "{e}");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(ApiKey::LeaveGroup, "m".to_owned(), None)],
        "nothing sent for the refused heartbeat"
    );
}

#[tokio::test]
async fn a_coordinator_error_forgets_the_coordinator() {
    let script: Script = Arc::new(|_, r| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r, 1)),
        ApiKey::Heartbeat => Some(r.answer(
            &HeartbeatResponse::default().with_error_code(code(KafkaCode::NotCoordinator)),
        )),
        other => panic!("unexpected {other:?}"),
    });
    let h = harness(&[1], None, script).await;
    let g = h.group();
    for round in 1..=2 {
        let e = g.heartbeat(1, "m".to_owned(), None).await.unwrap_err();
        assert_eq!(e.kafka_code(), Some(KafkaCode::NotCoordinator), "{e}");
        assert!(e.to_string().contains("group g"), "{e}");
        assert_eq!(h.count(ApiKey::FindCoordinator), round);
        assert_eq!(h.count(ApiKey::Heartbeat), round, "single attempt");
    }
}

fn commit_answer(r: &Received, codes: &dyn Fn(&str, i32) -> KafkaCode) -> Bytes {
    crate::testing::offset_commit_answer(r, |t, p| codes(t, p).code())
}

/// No error: code 0 in [`commit_answer`] scripts.
const OK: KafkaCode = KafkaCode::Unknown(0);

fn offset(topic: &str, partition: i32, offset: i64) -> CommitOffset {
    CommitOffset {
        topic: topic.to_owned(),
        partition,
        offset,
        leader_epoch: None,
        metadata: None,
    }
}

#[tokio::test]
async fn commit_retries_only_the_retriable_partitions() {
    let commits = Arc::new(Mutex::new(Vec::<OffsetCommitRequest>::new()));
    let c = commits.clone();
    let script: Script = Arc::new(move |_, r| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r, 1)),
        ApiKey::OffsetCommit => {
            assert_eq!(r.api().1, 9);
            let first = c.lock().unwrap().is_empty();
            c.lock().unwrap().push(r.decode());
            Some(commit_answer(r, &|t, p| match (t, p, first) {
                ("t", 1, true) => KafkaCode::CoordinatorLoadInProgress,
                ("u", 0, _) => KafkaCode::OffsetMetadataTooLarge,
                _ => OK,
            }))
        }
        other => panic!("unexpected {other:?}"),
    });
    // The broker lists v10, which kafka-protocol cannot encode: v9 must be used.
    let ranges = ranges_with(&[(ApiKey::OffsetCommit, 10)]);
    let h = harness(&[1], ranges, script).await;
    let mut with_extras = offset("t", 0, 10);
    with_extras.leader_epoch = Some(7);
    with_extras.metadata = Some("meta".to_owned());
    let offsets = [with_extras, offset("t", 1, 20), offset("u", 0, 30)];
    // Outside a group: generation -1, no member id.
    let out = h
        .group()
        .commit_offsets(-1, String::new(), None, &offsets)
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!((out[0].0.as_str(), out[0].1), ("t", 0));
    assert!(out[0].2.is_none() && out[1].2.is_none(), "{out:?}");
    let e = out[2].2.as_ref().expect("u-0 fails");
    assert_eq!(e.kafka_code(), Some(KafkaCode::OffsetMetadataTooLarge));
    assert!(
        e.to_string().contains("group g") && e.to_string().contains("u-0"),
        "{e}"
    );

    let commits = commits.lock().unwrap();
    assert_eq!(commits.len(), 2, "one retry");
    let first = &commits[0];
    assert_eq!(first.generation_id_or_member_epoch, -1);
    assert!(first.member_id.is_empty());
    assert_eq!(first.group_instance_id, None);
    let t = first
        .topics
        .iter()
        .find(|t| t.name.0 == str_bytes("t"))
        .unwrap();
    assert_eq!(t.partitions[0].committed_offset, 10);
    assert_eq!(t.partitions[0].committed_leader_epoch, 7);
    assert_eq!(t.partitions[0].committed_metadata, Some(str_bytes("meta")));
    assert_eq!(t.partitions[1].committed_leader_epoch, -1);
    assert_eq!(t.partitions[1].committed_metadata, None);
    // The retry carries only the partition that failed retriably.
    let retry = &commits[1];
    assert_eq!(retry.topics.len(), 1);
    assert_eq!(retry.topics[0].name.0, str_bytes("t"));
    let parts: Vec<i32> = retry.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(parts, vec![1]);
}

#[tokio::test]
async fn commit_finds_a_moved_coordinator_and_retries_there() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let l = lookups.clone();
    let script: Script = Arc::new(move |broker, r| match r.api().0 {
        ApiKey::FindCoordinator => {
            let node = if l.fetch_add(1, Ordering::SeqCst) == 0 {
                1
            } else {
                2
            };
            Some(coordinator_answer(r, node))
        }
        ApiKey::OffsetCommit => {
            let answer = if broker == 1 {
                KafkaCode::NotCoordinator
            } else {
                OK
            };
            Some(commit_answer(r, &|_, _| answer))
        }
        other => panic!("unexpected {other:?}"),
    });
    let h = harness(&[1, 2], None, script).await;
    let out = h
        .group()
        .commit_offsets(5, "m".to_owned(), None, &[offset("t", 0, 1)])
        .await
        .unwrap();
    assert!(out[0].2.is_none(), "{out:?}");
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        2,
        "coordinator looked up again"
    );
    assert_eq!(h.clusters[0].count(ApiKey::OffsetCommit), 1);
    assert_eq!(h.clusters[1].count(ApiKey::OffsetCommit), 1);
}

#[tokio::test]
async fn commit_that_never_reaches_a_coordinator_is_an_error() {
    let script: Script = Arc::new(|_, r| match r.api().0 {
        ApiKey::FindCoordinator => Some(r.answer(
            &FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                .with_key(str_bytes("g"))
                .with_node_id(BrokerId(-1))
                .with_error_code(code(KafkaCode::GroupAuthorizationFailed))]),
        )),
        other => panic!("unexpected {other:?}"),
    });
    let h = harness(&[1], None, script).await;
    let e = h
        .group()
        .commit_offsets(5, "m".to_owned(), None, &[offset("t", 0, 1)])
        .await
        .unwrap_err();
    assert_eq!(
        e.kafka_code(),
        Some(KafkaCode::GroupAuthorizationFailed),
        "{e}"
    );
    assert_eq!(h.count(ApiKey::FindCoordinator), 1, "not retriable");
}

/// Answers OffsetFetch: t-0 at 42 (epoch 5, metadata), t-1 with nothing committed; the first
/// answer has t-0 UNSTABLE_OFFSET_COMMIT.
fn fetch_script(requests: Arc<Mutex<Vec<(i16, OffsetFetchRequest)>>>) -> Script {
    Arc::new(move |_, r| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r, 1)),
        ApiKey::OffsetFetch => {
            let version = r.api().1;
            let req: OffsetFetchRequest = r.decode();
            let first = requests.lock().unwrap().is_empty();
            let asked: Vec<(String, Vec<i32>)> = if version >= 8 {
                assert!(req.group_id.is_empty());
                assert_eq!(req.groups.len(), 1);
                let g = &req.groups[0];
                assert_eq!(g.group_id.0, str_bytes("g"));
                assert_eq!(g.member_id, None);
                assert_eq!(g.member_epoch, -1);
                g.topics
                    .iter()
                    .flatten()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            } else {
                assert_eq!(req.group_id.0, str_bytes("g"));
                assert!(req.groups.is_empty());
                req.topics
                    .iter()
                    .flatten()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            };
            assert_eq!(req.require_stable, version >= 7);
            requests.lock().unwrap().push((version, req));
            // (partition, offset, epoch, metadata, error)
            let answer = |p: i32| match p {
                0 if first && version >= 7 => {
                    (0, -1, -1, None, KafkaCode::UnstableOffsetCommit.code())
                }
                0 => (0, 42, 5, Some(str_bytes("m")), 0),
                _ => (p, -1, -1, Some(str_bytes("")), 0),
            };
            let resp = if version >= 8 {
                let topics = asked
                    .iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(t))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|&p| {
                                        let (i, o, e, m, c) = answer(p);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(i)
                                            .with_committed_offset(o)
                                            .with_committed_leader_epoch(e)
                                            .with_metadata(m)
                                            .with_error_code(c)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponse::default()
                    .with_groups(vec![OffsetFetchResponseGroup::default()
                        .with_group_id(group_id("g"))
                        .with_topics(topics)])
            } else {
                let topics = asked
                    .iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|&p| {
                                        let (i, o, e, m, c) = answer(p);
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(i)
                                            .with_committed_offset(o)
                                            .with_committed_leader_epoch(e)
                                            .with_metadata(m)
                                            .with_error_code(c)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponse::default().with_topics(topics)
            };
            Some(r.answer(&resp))
        }
        other => panic!("unexpected {other:?}"),
    })
}

#[tokio::test]
async fn fetch_offsets_maps_nothing_committed_to_none_at_old_and_new_versions() {
    for (ranges, version, attempts) in [
        (None, 9, 2),
        (ranges_with(&[(ApiKey::OffsetFetch, 10)]), 9, 2),
        (ranges_with(&[(ApiKey::OffsetFetch, 7)]), 7, 2),
        (ranges_with(&[(ApiKey::OffsetFetch, 5)]), 5, 1),
    ] {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let h = harness(&[1], ranges, fetch_script(requests.clone())).await;
        let keys = [("t".to_owned(), 0), ("t".to_owned(), 1)];
        let got = h.group().fetch_offsets(&keys).await.unwrap();
        assert_eq!(got.len(), 2, "v{version}");
        assert_eq!(
            got[&("t".to_owned(), 0)],
            Some(CommittedOffset {
                offset: 42,
                leader_epoch: Some(5),
                metadata: Some("m".to_owned()),
            }),
            "v{version}"
        );
        assert_eq!(got[&("t".to_owned(), 1)], None, "v{version}");
        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), attempts, "v{version}");
        assert!(requests.iter().all(|(v, _)| *v == version));
    }
}
