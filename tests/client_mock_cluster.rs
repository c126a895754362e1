//! The client core against librdkafka's mock cluster (3 brokers, in-process): metadata,
//! ApiVersions fallback, leader moves and brokers going down and up.

mod common;

use std::time::Duration;

use common::{mock_cluster, unique_topic, within};
use ferrokafka::{Client, OffsetSpec};

async fn client(bootstrap: &str, api_timeout: Duration) -> Client {
    within(
        "client build",
        Client::builder()
            .bootstrap_servers(bootstrap)
            .request_timeout(Duration::from_secs(5))
            .api_timeout(api_timeout)
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn metadata_lists_all_three_brokers() {
    let mock = mock_cluster(3);
    let topic = unique_topic("mock-meta");
    mock.create_topic(&topic, 6, 3).unwrap();
    let client = client(&mock.bootstrap_servers(), Duration::from_secs(10)).await;
    let meta = within("metadata", client.metadata(&[&topic]))
        .await
        .unwrap();
    assert_eq!(
        meta.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let t = meta.topic(&topic).unwrap();
    assert_eq!(t.partitions.len(), 6);
    let leaders: std::collections::BTreeSet<i32> =
        t.partitions.iter().filter_map(|p| p.leader).collect();
    assert!(
        leaders.len() > 1,
        "partitions should spread over brokers: {leaders:?}"
    );
    for p in &t.partitions {
        assert_eq!(p.replicas.len(), 3);
    }
    client.close().await;
}

#[tokio::test]
async fn api_versions_falls_back_below_v3() {
    // The mock answers ApiVersions v3+ with UNSUPPORTED_VERSION and a body that fits no
    // layout. The client starts at v4, so it only gets metadata (and builds at all) if the
    // step-down works; the same connection then serves a request at the negotiated versions.
    let mock = mock_cluster(1);
    let topic = unique_topic("mock-apiv");
    mock.create_topic(&topic, 1, 1).unwrap();
    let client = client(&mock.bootstrap_servers(), Duration::from_secs(10)).await;
    let offset = within(
        "list offsets",
        client.admin().list_offsets(&topic, 0, OffsetSpec::Latest),
    )
    .await
    .unwrap();
    assert_eq!(offset, 0);
    client.close().await;
}

#[tokio::test]
async fn moved_leader_is_found_after_not_leader_or_follower() {
    let mock = mock_cluster(3);
    let topic = unique_topic("mock-move");
    mock.create_topic(&topic, 1, 3).unwrap();
    mock.partition_leader(&topic, 0, Some(1)).unwrap();
    let client = client(&mock.bootstrap_servers(), Duration::from_secs(20)).await;
    let admin = client.admin();
    within(
        "offsets",
        admin.list_offsets(&topic, 0, OffsetSpec::Earliest),
    )
    .await
    .unwrap();
    // The admin client looks partitions up in metadata of its own per attempt (it must not
    // auto-create topics or track them in the client's cache), so the leader is read here.
    let before = client.metadata(&[&topic]).await.unwrap();
    assert_eq!(before.topic(&topic).unwrap().partitions[0].leader, Some(1));

    mock.partition_leader(&topic, 0, Some(3)).unwrap();
    // Leader 1 now answers NOT_LEADER_OR_FOLLOWER; the admin's retry looks the leader up
    // again and goes to broker 3.
    within(
        "offsets after move",
        admin.list_offsets(&topic, 0, OffsetSpec::Earliest),
    )
    .await
    .unwrap();
    let after = client.metadata(&[&topic]).await.unwrap();
    assert_eq!(after.topic(&topic).unwrap().partitions[0].leader, Some(3));
    client.close().await;
}

#[tokio::test]
async fn requests_to_a_down_broker_fail_retriably_then_succeed_when_it_is_back() {
    let mock = mock_cluster(3);
    let topic = unique_topic("mock-down");
    mock.create_topic(&topic, 1, 3).unwrap();
    mock.partition_leader(&topic, 0, Some(2)).unwrap();
    let client = client(&mock.bootstrap_servers(), Duration::from_secs(2)).await;
    let admin = client.admin();
    within(
        "offsets",
        admin.list_offsets(&topic, 0, OffsetSpec::Earliest),
    )
    .await
    .unwrap();

    mock.broker_down(2).unwrap();
    let e = within(
        "offsets while down",
        admin.list_offsets(&topic, 0, OffsetSpec::Earliest),
    )
    .await
    .unwrap_err();
    assert!(e.is_retriable(), "expected a retriable error, got {e}");
    assert!(
        matches!(
            e,
            ferrokafka::Error::Connect { .. }
                | ferrokafka::Error::Disconnected { .. }
                | ferrokafka::Error::Timeout { .. }
        ),
        "expected a connection-level error, got {e:?}"
    );

    mock.broker_up(2).unwrap();
    within(
        "offsets after up",
        admin.list_offsets(&topic, 0, OffsetSpec::Earliest),
    )
    .await
    .unwrap();
    client.close().await;
}
