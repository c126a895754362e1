//! The transactional producer against real brokers: round trips, state errors, fencing, a
//! producer killed mid-transaction, and offsets committed through a transaction (Tansu stores
//! them; the mock acknowledges TxnOffsetCommit without storing it).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{create_topic, mock_cluster_for_groups, unique_topic, within, Broker};
use ferrokafka::{
    Client, CommitOffset, Consumer, Error, KafkaCode, NewTopic, OffsetReset, Producer, Record,
    TopicPartition,
};

async fn client(bootstrap: &str) -> Client {
    within(
        "client",
        Client::builder()
            .bootstrap_servers(bootstrap)
            .request_timeout(Duration::from_secs(5))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build(),
    )
    .await
    .unwrap()
}

async fn txn_producer(client: &Client, id: &str) -> Producer {
    Producer::builder(client)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "10000")
        .build()
        .await
        .unwrap()
}

async fn send_all(
    p: &Producer,
    topic: &str,
    tag: &str,
    n: usize,
) -> Vec<ferrokafka::Result<ferrokafka::RecordMetadata>> {
    let mut ds = Vec::new();
    for i in 0..n {
        ds.push(
            p.send(
                Record::new(topic)
                    .partition((i % 2) as i32)
                    .value(format!("{tag}-{i}")),
            )
            .await
            .unwrap(),
        );
    }
    let mut out = Vec::new();
    for d in ds {
        out.push(within("delivery", d).await);
    }
    out
}

fn is_fenced(e: &Error) -> bool {
    matches!(
        e.kafka_code(),
        Some(KafkaCode::ProducerFenced | KafkaCode::InvalidProducerEpoch)
    )
}

#[tokio::test]
async fn commit_and_abort_round_trips_and_state_errors_on_the_mock() {
    let cluster = mock_cluster_for_groups(3);
    let topic = unique_topic("txn");
    cluster.create_topic(&topic, 2, 1).unwrap();
    let c = client(&cluster.bootstrap_servers()).await;
    let p = txn_producer(&c, &unique_topic("tid")).await;
    // Nothing is allowed before init_transactions.
    assert!(matches!(p.begin_transaction(), Err(Error::InvalidState(_))));
    within("init", p.init_transactions()).await.unwrap();
    assert!(matches!(
        within("commit", p.commit_transaction()).await,
        Err(Error::InvalidState(_))
    ));
    assert!(
        matches!(
            p.send(Record::new(&topic).value("x")).await,
            Err(Error::InvalidState(_))
        ),
        "a send outside a transaction is refused"
    );
    p.begin_transaction().unwrap();
    assert!(matches!(p.begin_transaction(), Err(Error::InvalidState(_))));
    for r in send_all(&p, &topic, "committed", 20).await {
        r.unwrap();
    }
    within("commit", p.commit_transaction()).await.unwrap();
    p.begin_transaction().unwrap();
    for r in send_all(&p, &topic, "aborted", 10).await {
        r.unwrap();
    }
    within("abort", p.abort_transaction()).await.unwrap();
    // An empty transaction commits without touching the coordinator.
    p.begin_transaction().unwrap();
    within("empty commit", p.commit_transaction())
        .await
        .unwrap();
    p.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    // On Tansu: librdkafka's mock accepts the old epoch's Produce and EndTxn.
    let broker = Broker::start();
    let c = client(&broker.bootstrap()).await;
    let topic = unique_topic("fence");
    create_topic(&c, &topic, 2).await;
    let id = unique_topic("tid");
    let old = txn_producer(&c, &id).await;
    within("init old", old.init_transactions()).await.unwrap();
    old.begin_transaction().unwrap();
    for r in send_all(&old, &topic, "old", 4).await {
        r.unwrap();
    }
    let new = txn_producer(&c, &id).await;
    within("init new", new.init_transactions()).await.unwrap();
    // The old instance's next write is refused by the broker (its epoch is stale)...
    let late = send_all(&old, &topic, "late", 2).await;
    for r in &late {
        let e = r.as_ref().unwrap_err();
        assert!(is_fenced(e), "{e}");
    }
    // ...and every later call fails fatally.
    let e = within("old commit", old.commit_transaction())
        .await
        .unwrap_err();
    assert!(is_fenced(&e), "{e}");
    let again = within("old abort", old.abort_transaction())
        .await
        .unwrap_err();
    assert!(
        is_fenced(&again) || matches!(again, Error::InvalidState(_)),
        "{again}"
    );
    // The new one works.
    new.begin_transaction().unwrap();
    for r in send_all(&new, &topic, "new", 4).await {
        r.unwrap();
    }
    within("new commit", new.commit_transaction())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_producer_killed_mid_transaction_is_replaced_cleanly() {
    let cluster = mock_cluster_for_groups(3);
    let topic = unique_topic("kill");
    cluster.create_topic(&topic, 2, 1).unwrap();
    let c = client(&cluster.bootstrap_servers()).await;
    let id = unique_topic("tid");
    let old = txn_producer(&c, &id).await;
    within("init old", old.init_transactions()).await.unwrap();
    old.begin_transaction().unwrap();
    for r in send_all(&old, &topic, "dead", 4).await {
        r.unwrap();
    }
    drop(old); // killed: no commit, no abort
    let new = txn_producer(&c, &id).await;
    // The coordinator aborts the dead instance's transaction; init completes.
    within("init new", new.init_transactions()).await.unwrap();
    new.begin_transaction().unwrap();
    for r in send_all(&new, &topic, "alive", 4).await {
        r.unwrap();
    }
    within("commit", new.commit_transaction()).await.unwrap();
}

#[tokio::test]
async fn offsets_sent_to_a_transaction_are_committed_only_with_it() {
    let broker = Broker::start();
    let c = client(&broker.bootstrap()).await;
    let (input, output) = (unique_topic("in"), unique_topic("out"));
    within(
        "create",
        c.admin()
            .create_topics(&[NewTopic::new(&input, 1, 1), NewTopic::new(&output, 2, 1)]),
    )
    .await
    .unwrap();
    let plain = Producer::builder(&c).build().await.unwrap();
    for i in 0..10 {
        within(
            "in",
            plain
                .send(Record::new(&input).value(format!("in-{i}")))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let group = unique_topic("g");
    let consumer = Consumer::builder(&c)
        .group_id(&group)
        .auto_commit(false)
        .offset_reset(OffsetReset::Earliest)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&input]).await.unwrap();
    let mut last = 0;
    for _ in 0..5 {
        last = within("recv", consumer.recv()).await.unwrap().offset;
    }
    let meta = consumer.group_metadata().unwrap();
    let tp = TopicPartition::new(&input, 0);
    let offsets: HashMap<TopicPartition, CommitOffset> =
        [(tp.clone(), CommitOffset::new(last + 1))]
            .into_iter()
            .collect();
    let p = txn_producer(&c, &unique_topic("tid")).await;
    within("init", p.init_transactions()).await.unwrap();
    // Aborted: the offsets do not land.
    p.begin_transaction().unwrap();
    send_all(&p, &output, "copy", 2).await;
    within("offsets", p.send_offsets_to_transaction(&offsets, &meta))
        .await
        .unwrap();
    within("abort", p.abort_transaction()).await.unwrap();
    assert_eq!(
        consumer.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp],
        None
    );
    // Committed: they do.
    p.begin_transaction().unwrap();
    send_all(&p, &output, "copy", 2).await;
    within("offsets", p.send_offsets_to_transaction(&offsets, &meta))
        .await
        .unwrap();
    within("commit", p.commit_transaction()).await.unwrap();
    assert_eq!(
        consumer.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp],
        Some(last + 1)
    );
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn coordinator_errors_on_add_partitions_and_end_txn_are_retried() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr::*};
    let cluster = mock_cluster_for_groups(3);
    let topic = unique_topic("txerr");
    cluster.create_topic(&topic, 2, 1).unwrap();
    let c = client(&cluster.bootstrap_servers()).await;
    let p = txn_producer(&c, &unique_topic("tid")).await;
    within("init", p.init_transactions()).await.unwrap();
    let errors = [
        RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
    ];
    cluster.request_errors(RDKafkaApiKey::AddPartitionsToTxn, &errors);
    cluster.request_errors(RDKafkaApiKey::EndTxn, &errors);
    p.begin_transaction().unwrap();
    for r in send_all(&p, &topic, "retried", 6).await {
        r.unwrap();
    }
    within("commit", p.commit_transaction()).await.unwrap();
    // And an abort after the same faults.
    cluster.request_errors(RDKafkaApiKey::EndTxn, &errors);
    p.begin_transaction().unwrap();
    for r in send_all(&p, &topic, "aborted", 2).await {
        r.unwrap();
    }
    within("abort", p.abort_transaction()).await.unwrap();
}
