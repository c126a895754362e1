//! `client.rack` reaches the group: the subscription a member sends in JoinGroup carries it
//! (consumer protocol v3, KIP-881), for rack-aware assignors on the leader.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorResponse, JoinGroupRequest};
use kafka_protocol::protocol::StrBytes;

use crate::consumer::assignor::decode_subscription;
use crate::testing::{FakeCluster, Received};
use crate::Consumer;

/// The subscription of the first JoinGroup of a consumer built with `rack`.
async fn subscription_rack(rack: Option<&str>) -> Option<String> {
    let cluster = FakeCluster::with_brokers(&[1]);
    let joins = Arc::new(Mutex::new(Vec::<JoinGroupRequest>::new()));
    let j = joins.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| match r.api().0 {
        ApiKey::FindCoordinator => {
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
            Some(r.answer(&resp))
        }
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
