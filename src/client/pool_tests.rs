//! Pool tests: reconnect backoff (under paused time), single flight, replacement.

use super::*;
use crate::testing::{Behaviour, FakeCluster, FakeConnector};
use std::time::Duration;

fn pool(connector: Arc<FakeConnector>, bootstrap: &[&str]) -> Pool {
    let cfg = ClientConfig {
        bootstrap: bootstrap.iter().map(|s| s.to_string()).collect(),
        reconnect_backoff: Duration::from_millis(100),
        reconnect_backoff_max: Duration::from_millis(1000),
        connect_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    Pool::new(Arc::new(cfg), connector)
}

fn gaps_ms(times: &[Instant]) -> Vec<u64> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn reconnect_backoff_grows_with_jitter_and_resets_after_success() {
    let connector = Arc::new(FakeConnector::default());
    let pool = pool(connector.clone(), &["b:1"]);
    pool.set_brokers([(1, "fake:1".to_string())]);
    for _ in 0..6 {
        let e = pool.get(1, Wait::ForBackoff).await.unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e}");
        assert!(e.is_retriable());
    }
    let gaps = gaps_ms(&connector.attempts_to("fake:1"));
    // 100, 200, 400, 800, then capped at 1000 — each within ±20% jitter.
    let expected = [100u64, 200, 400, 800, 1000];
    assert_eq!(gaps.len(), expected.len());
    for (got, want) in gaps.iter().zip(expected) {
        assert!(
            *got >= want * 8 / 10 && *got <= want * 12 / 10,
            "gaps {gaps:?}"
        );
    }
    // The broker comes back: the next attempt (after the backoff) succeeds ...
    connector.set("fake:1", Behaviour::Serve(FakeCluster::with_brokers(&[1])));
    let conn = pool.get(1, Wait::ForBackoff).await.unwrap();
    assert!(conn.is_usable());
    // ... and a later failure starts again from the base delay.
    connector.set("fake:1", Behaviour::Refuse);
    drop(conn);
    pool.set_brokers([(1, "fake:1b".to_string())]); // address change drops the connection
    connector.set("fake:1b", Behaviour::Refuse);
    pool.get(1, Wait::ForBackoff).await.unwrap_err();
    pool.get(1, Wait::ForBackoff).await.unwrap_err();
    let gaps = gaps_ms(&connector.attempts_to("fake:1b"));
    assert!(
        gaps[0] >= 80 && gaps[0] <= 120,
        "backoff did not reset: {gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_wait_fails_fast_during_backoff_without_an_attempt() {
    let connector = Arc::new(FakeConnector::default());
    let pool = pool(connector.clone(), &["b:1"]);
    pool.set_brokers([(1, "fake:1".to_string())]);
    pool.get(1, Wait::No).await.unwrap_err();
    let e = pool.get(1, Wait::No).await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    assert_eq!(
        connector.attempts_to("fake:1").len(),
        1,
        "no second attempt inside the backoff"
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_connection_attempt() {
    let connector = Arc::new(FakeConnector::default());
    connector.set("fake:1", Behaviour::Serve(FakeCluster::with_brokers(&[1])));
    let pool = Arc::new(pool(connector.clone(), &["b:1"]));
    pool.set_brokers([(1, "fake:1".to_string())]);
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let p = pool.clone();
            tokio::spawn(async move { p.get(1, Wait::ForBackoff).await })
        })
        .collect();
    let mut conns = Vec::new();
    for c in calls {
        conns.push(c.await.unwrap().unwrap());
    }
    assert_eq!(connector.attempts_to("fake:1").len(), 1);
    assert!(conns.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
}

#[tokio::test]
async fn a_failed_connection_is_replaced_on_next_use() {
    let connector = Arc::new(FakeConnector::default());
    let cluster = FakeCluster::with_brokers(&[1]);
    connector.set("fake:1", Behaviour::Serve(cluster.clone()));
    let pool = pool(connector.clone(), &["b:1"]);
    pool.set_brokers([(1, "fake:1".to_string())]);
    let first = pool.get(1, Wait::ForBackoff).await.unwrap();
    // Poison it the way a broken frame would.
    first.poison_for_tests(Error::protocol("test"));
    assert!(!first.is_usable());
    let second = pool.get(1, Wait::ForBackoff).await.unwrap();
    assert!(second.is_usable());
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(connector.attempts_to("fake:1").len(), 2);
}

#[tokio::test]
async fn unknown_broker_id_is_a_retriable_connect_error() {
    let pool = pool(Arc::new(FakeConnector::default()), &["b:1"]);
    let e = pool.get(42, Wait::No).await.unwrap_err();
    assert!(e.to_string().contains("broker 42"), "{e}");
    assert!(e.is_retriable());
}
