//! The group task against a fake coordinator: what a member sends in JoinGroup
//! (`client.rack`, KIP-881), and how commits and rejoining are ordered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorResponse, JoinGroupRequest};
use kafka_protocol::protocol::StrBytes;

use crate::codes::KafkaCode;
use crate::consumer::assignor::decode_subscription;
use crate::testing::{offset_commit_answer, FakeCluster, Received};
use crate::{CommitOffset, Consumer, TopicPartition};

/// Broker 1 coordinates group `g`.
fn coordinator_answer(r: &Received) -> Bytes {
    let host = StrBytes::from_static_str("fake");
    let resp = if r.api().1 >= 4 {
        FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
            .with_key(StrBytes::from_static_str("g"))
            .with_node_id(BrokerId(1))
            .with_host(host)
            .with_port(1)])
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(1))
            .with_host(host)
            .with_port(1)
    };
    r.answer(&resp)
}

/// Waits (real time, bounded) until `cluster` has seen `n` requests of `api`.
async fn seen(cluster: &FakeCluster, api: ApiKey, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster.count(api) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {api:?} sent ({} seen)",
            cluster.count(api)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The subscription of the first JoinGroup of a consumer built with `rack`.
async fn subscription_rack(rack: Option<&str>) -> Option<String> {
    let cluster = FakeCluster::with_brokers(&[1]);
    let joins = Arc::new(Mutex::new(Vec::<JoinGroupRequest>::new()));
    let j = joins.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r)),
        ApiKey::JoinGroup => {
            j.lock().unwrap().push(r.decode());
            None // left pending: the request is what the test looks at
        }
        _ => None,
    }));
    let client = cluster.client_builder().build().await.unwrap();
    let mut b = Consumer::builder(&client).group_id("g");
    if let Some(rack) = rack {
        b = b.set("client.rack", rack);
    }
    let consumer = b.build().await.unwrap();
    consumer.subscribe(&["t"]).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let join = loop {
        if let Some(join) = joins.lock().unwrap().first().cloned() {
            break join;
        }
        assert!(tokio::time::Instant::now() < deadline, "no JoinGroup sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(consumer);
    client.close().await;
    let sub = decode_subscription(join.protocols[0].metadata.clone()).unwrap();
    assert_eq!(sub.topics, vec!["t".to_owned()]);
    sub.rack_id
}

#[tokio::test]
async fn client_rack_is_sent_in_the_group_subscription() {
    assert_eq!(
        subscription_rack(Some("eu-west-1a")).await.as_deref(),
        Some("eu-west-1a")
    );
    assert_eq!(subscription_rack(None).await, None);
}

fn commit_of(offset: i64) -> HashMap<TopicPartition, CommitOffset> {
    HashMap::from([(TopicPartition::new("t", 0), CommitOffset::new(offset))])
}

#[tokio::test]
async fn a_commit_while_the_member_joins_is_refused_before_it_is_sent() {
    let cluster = FakeCluster::with_brokers(&[1]);
    *cluster.handler.lock().unwrap() = Some(Box::new(|r: &Received| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r)),
        ApiKey::OffsetCommit => Some(offset_commit_answer(r, |_, _| 0)),
        _ => None, // JoinGroup stays unanswered: the member is rejoining for good
    }));
    let client = cluster.client_builder().build().await.unwrap();
    let consumer = Consumer::builder(&client)
        .group_id("g")
        .auto_commit(false)
        .build()
        .await
        .unwrap();
    // Outside the group a commit goes through (generation -1, as the Java client sends).
    consumer.commit_offsets(&commit_of(3)).await.unwrap();
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 1);
    consumer.subscribe(&["t"]).await.unwrap();
    seen(&cluster, ApiKey::JoinGroup, 1).await;
    // It could reach the coordinator after the next owner read the committed offset.
    let e = consumer.commit_offsets(&commit_of(5)).await.unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::RebalanceInProgress), "{e}");
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 1, "never sent");
    drop(consumer);
    client.close().await;
}

#[tokio::test]
async fn the_member_joins_only_after_the_commits_in_flight_are_answered() {
    let cluster = FakeCluster::with_brokers(&[1]);
    *cluster.handler.lock().unwrap() = Some(Box::new(|r: &Received| match r.api().0 {
        ApiKey::FindCoordinator => Some(coordinator_answer(r)),
        _ => None, // OffsetCommit and JoinGroup stay unanswered
    }));
    let client = cluster
        .client_builder()
        .request_timeout(Duration::from_millis(700))
        .set("default.api.timeout.ms", "900")
        .build()
        .await
        .unwrap();
    let consumer = Arc::new(
        Consumer::builder(&client)
            .group_id("g")
            .auto_commit(false)
            .build()
            .await
            .unwrap(),
    );
    let c = consumer.clone();
    let commit = tokio::spawn(async move { c.commit_offsets(&commit_of(7)).await });
    seen(&cluster, ApiKey::OffsetCommit, 1).await;
    consumer.subscribe(&["t"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !commit.is_finished(),
        "the commit is still waiting for its answer"
    );
    assert_eq!(
        cluster.count(ApiKey::JoinGroup),
        0,
        "JoinGroup sent while a commit was in flight"
    );
    // The commit times out unanswered; only then does the member join.
    assert!(commit.await.unwrap().is_err());
    seen(&cluster, ApiKey::JoinGroup, 1).await;
    drop(consumer);
    client.close().await;
}
