//! Client tests against fake brokers: bootstrap, single-flight refresh, generations, config.

use super::*;
use crate::testing::{Behaviour, FakeCluster, FakeConnector};

async fn client_with(connector: Arc<FakeConnector>, bootstrap: &str) -> Result<Client> {
    Client::builder()
        .bootstrap_servers(bootstrap)
        .connect_timeout(Duration::from_secs(1))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .connector(connector)
        .build()
        .await
}

#[tokio::test]
async fn bootstrap_skips_a_dead_address_and_learns_the_brokers() {
    let connector = Arc::new(FakeConnector::default());
    let cluster = FakeCluster::with_brokers(&[1, 2, 3]);
    connector.set("dead:1", Behaviour::Refuse);
    connector.set("alive:2", Behaviour::Serve(cluster.clone()));
    let client = client_with(connector.clone(), "dead:1,alive:2")
        .await
        .unwrap();
    assert_eq!(connector.attempts_to("dead:1").len(), 1);
    let meta = client.cached_metadata();
    assert_eq!(meta.cluster_id.as_deref(), Some("fake-cluster"));
    assert_eq!(
        meta.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(meta.broker(2).unwrap().address(), "fake:2");
}

#[tokio::test]
async fn bootstrap_with_no_live_address_fails_with_a_typed_error() {
    let connector = Arc::new(FakeConnector::default());
    let e = client_with(connector.clone(), "dead:1,dead:2")
        .await
        .unwrap_err();
    match &e {
        Error::NoBrokerAvailable { tried, last } => {
            assert_eq!(&**tried, "bootstrap dead:1, bootstrap dead:2");
            assert!(
                matches!(last.as_deref(), Some(Error::Connect { .. })),
                "{e}"
            );
        }
        other => panic!("expected NoBrokerAvailable, got {other}"),
    }
    assert!(e.is_retriable());
    assert_eq!(connector.attempts_to("dead:1").len(), 1);
    assert_eq!(connector.attempts_to("dead:2").len(), 1);
}

#[tokio::test]
async fn concurrent_refreshes_share_one_request() {
    let connector = Arc::new(FakeConnector::default());
    let cluster = FakeCluster::with_brokers(&[1]);
    connector.set("b:1", Behaviour::Serve(cluster.clone()));
    connector.set("fake:1", Behaviour::Serve(cluster.clone()));
    let client = client_with(connector, "b:1").await.unwrap();
    let before = cluster.count(ApiKey::Metadata);
    let seen = client.inner.metadata.snapshot().generation;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                c.inner
                    .refresh_metadata(TopicsQuery::Some(vec![]), Some(seen))
                    .await
            })
        })
        .collect();
    let mut generations = Vec::new();
    for c in calls {
        generations.push(c.await.unwrap().unwrap().generation);
    }
    assert_eq!(
        cluster.count(ApiKey::Metadata) - before,
        1,
        "refresh was not single-flight"
    );
    assert!(
        generations.iter().all(|g| *g == seen + 1),
        "{generations:?}"
    );
}

#[tokio::test]
async fn a_stale_caller_does_not_refresh_over_fresher_data() {
    let connector = Arc::new(FakeConnector::default());
    let cluster = FakeCluster::with_brokers(&[1]);
    connector.set("b:1", Behaviour::Serve(cluster.clone()));
    connector.set("fake:1", Behaviour::Serve(cluster.clone()));
    let client = client_with(connector, "b:1").await.unwrap();
    let old = client.inner.metadata.snapshot().generation;
    client
        .inner
        .refresh_metadata(TopicsQuery::Some(vec![]), None)
        .await
        .unwrap();
    let count = cluster.count(ApiKey::Metadata);
    let snap = client
        .inner
        .refresh_metadata(TopicsQuery::Some(vec![]), Some(old))
        .await
        .unwrap();
    assert_eq!(snap.generation, old + 1);
    assert_eq!(
        cluster.count(ApiKey::Metadata),
        count,
        "no request for a stale caller"
    );
}

#[tokio::test(start_paused = true)]
async fn metadata_is_refreshed_periodically() {
    let connector = Arc::new(FakeConnector::default());
    let cluster = FakeCluster::with_brokers(&[1]);
    connector.set("b:1", Behaviour::Serve(cluster.clone()));
    connector.set("fake:1", Behaviour::Serve(cluster.clone()));
    let client = Client::builder()
        .bootstrap_servers("b:1")
        .metadata_max_age(Duration::from_secs(10))
        .connector(connector)
        .build()
        .await
        .unwrap();
    let start = cluster.count(ApiKey::Metadata);
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(cluster.count(ApiKey::Metadata) - start, 3);
    // After close the task is gone: no more refreshes.
    client.close().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(cluster.count(ApiKey::Metadata) - start, 3);
    let e = client.metadata(&["t"]).await.unwrap_err();
    assert!(matches!(e, Error::Closed), "{e}");
}

#[tokio::test]
async fn leader_lookup_uses_the_cache_and_fetches_unknown_topics() {
    let connector = Arc::new(FakeConnector::default());
    let cluster = FakeCluster::with_brokers(&[7]);
    connector.set("b:1", Behaviour::Serve(cluster.clone()));
    connector.set("fake:7", Behaviour::Serve(cluster.clone()));
    let client = client_with(connector, "b:1").await.unwrap();
    let before = cluster.count(ApiKey::Metadata);
    assert_eq!(client.inner.leader("t", 0).await.unwrap(), 7);
    assert_eq!(
        cluster.count(ApiKey::Metadata) - before,
        1,
        "first lookup fetches the topic"
    );
    assert_eq!(client.inner.leader("t", 0).await.unwrap(), 7);
    assert_eq!(
        cluster.count(ApiKey::Metadata) - before,
        1,
        "second lookup is served from cache"
    );
    let e = client.inner.leader("t", 5).await.unwrap_err();
    assert_eq!(
        e.kafka_code(),
        Some(crate::KafkaCode::UnknownTopicOrPartition),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_configuration_fails_at_build_naming_the_key() {
    let cases: Vec<(ClientBuilder, &str)> = vec![
        (Client::builder(), "bootstrap.servers is empty"),
        (
            Client::builder().bootstrap_servers("nohost"),
            "bootstrap.servers entry `nohost`",
        ),
        (
            ClientBuilder::from_properties([
                ("bootstrap.servers", "a:1"),
                ("request.timeout.ms", "-1"),
            ]),
            "request.timeout.ms",
        ),
        (
            ClientBuilder::from_properties([("bootstrap.servers", "a:1"), ("linger.mss", "5")]),
            "unknown configuration property `linger.mss`",
        ),
        (
            ClientBuilder::from_properties([
                ("bootstrap.servers", "a:1"),
                ("reconnect.backoff.ms", "5000"),
            ]),
            "reconnect.backoff.max.ms",
        ),
        (
            ClientBuilder::from_properties([
                ("bootstrap.servers", "a:1"),
                ("allow.auto.create.topics", "maybe"),
            ]),
            "allow.auto.create.topics",
        ),
    ];
    for (builder, needle) in cases {
        // A fake connector that refuses everything: validation must fail before any connect.
        let connector = Arc::new(FakeConnector::default());
        let e = builder
            .connector(connector.clone())
            .build()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{needle}: {e}");
        assert!(
            e.to_string().contains(needle),
            "expected `{needle}` in `{e}`"
        );
        assert!(
            connector.attempts.lock().unwrap().is_empty(),
            "{needle}: connected before validating"
        );
    }
}

#[tokio::test]
async fn properties_set_the_same_settings_as_typed_setters() {
    let b = ClientBuilder::from_properties([
        ("bootstrap.servers", "h:1,h:2"),
        ("client.id", "svc"),
        ("request.timeout.ms", "1234"),
        ("default.api.timeout.ms", "4321"),
    ]);
    assert!(b.error.is_none());
    assert_eq!(b.cfg.bootstrap, vec!["h:1", "h:2"]);
    assert_eq!(b.cfg.client_id, "svc");
    assert_eq!(b.cfg.request_timeout, Duration::from_millis(1234));
    assert_eq!(b.api_timeout, Some(Duration::from_millis(4321)));
}

/// KIP-1102: a broker answering REBOOTSTRAP_REQUIRED sends the client back to its bootstrap
/// address, which now leads to another cluster (brokers and addresses all new); with
/// `metadata.recovery.strategy=none` the error is returned instead.
#[tokio::test]
async fn rebootstrap_required_starts_over_from_the_bootstrap_address() {
    for rebootstrap in [true, false] {
        let connector = Arc::new(FakeConnector::default());
        let old = FakeCluster::with_brokers(&[1]);
        let new = FakeCluster::with_brokers(&[7]);
        let mut ranges = crate::testing::DEFAULT_RANGES.to_vec();
        ranges.retain(|r| r.0 != ApiKey::Metadata as i16);
        ranges.push((ApiKey::Metadata as i16, 0, 13));
        *old.ranges.lock().unwrap() = Some(ranges);
        connector.set("b:1", Behaviour::Serve(old.clone()));
        connector.set("fake:1", Behaviour::Serve(old.clone()));
        connector.set("fake:7", Behaviour::Serve(new.clone()));
        let client = Client::builder()
            .bootstrap_servers("b:1")
            .set(
                "metadata.recovery.strategy",
                if rebootstrap { "rebootstrap" } else { "none" },
            )
            .api_timeout(Duration::from_millis(500))
            .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
            .connector(connector.clone())
            .build()
            .await
            .unwrap();
        assert_eq!(client.cached_metadata().brokers[0].id, 1);
        // The bootstrap name now points at the new cluster; the old one wants a rebootstrap.
        connector.set("b:1", Behaviour::Serve(new.clone()));
        old.metadata.lock().unwrap().error_code = KafkaCode::RebootstrapRequired.code();
        let result = client.metadata(&["t"]).await;
        if rebootstrap {
            let meta = result.unwrap();
            assert_eq!(
                meta.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
                vec![7]
            );
            assert!(new.count(ApiKey::Metadata) >= 1);
        } else {
            let e = result.unwrap_err();
            assert_eq!(e.kafka_code(), Some(KafkaCode::RebootstrapRequired), "{e}");
            assert_eq!(new.count(ApiKey::Metadata), 0);
        }
    }
}

#[test]
fn the_recovery_strategy_is_checked_at_build() {
    let b = ClientBuilder::from_properties([
        ("bootstrap.servers", "a:1"),
        ("metadata.recovery.strategy", "none"),
        ("metadata.recovery.rebootstrap.trigger.ms", "1000"),
    ]);
    assert!(b.error.is_none());
    assert!(!b.cfg.rebootstrap);
    assert_eq!(b.cfg.rebootstrap_trigger, Duration::from_secs(1));
    let b = ClientBuilder::from_properties([("metadata.recovery.strategy", "sometimes")]);
    let e = b.error.expect("an invalid strategy is an error");
    assert!(e.to_string().contains("metadata.recovery.strategy"), "{e}");
}
