//! The transactional producer against a scripted broker: what goes on the wire in order
//! (FindCoordinator key type 1, InitProducerId with the id, AddPartitionsToTxn before the
//! first Produce, the transactional id and bit on Produce, EndTxn) — a real Kafka refuses
//! transactional batches whose Produce request lacks the id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, BrokerId, EndTxnRequest,
    EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;

use crate::protocol::records::decode_batches;
use crate::testing::{FakeCluster, Received};
use crate::{Producer, Record};

fn script(seen: &Mutex<Vec<String>>, r: &Received) -> Option<bytes::Bytes> {
    let (api, _) = r.api();
    let log = |s: String| seen.lock().unwrap().push(s);
    Some(match api {
        ApiKey::FindCoordinator => {
            let req: FindCoordinatorRequest = r.decode();
            log(format!("FindCoordinator type {}", req.key_type));
            r.answer(
                &FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("fake"))
                    .with_port(1),
            )
        }
        ApiKey::InitProducerId => {
            let req: InitProducerIdRequest = r.decode();
            log(format!(
                "InitProducerId {}",
                req.transactional_id
                    .map(|t| t.0.to_string())
                    .unwrap_or_default()
            ));
            r.answer(
                &InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(42))
                    .with_producer_epoch(3),
            )
        }
        ApiKey::AddPartitionsToTxn => {
            let req: AddPartitionsToTxnRequest = r.decode();
            let topics = req.v3_and_below_topics;
            log(format!(
                "AddPartitionsToTxn {:?}",
                topics
                    .iter()
                    .map(|t| t.partitions.clone())
                    .collect::<Vec<_>>()
            ));
            r.answer(
                &AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(
                    topics
                        .iter()
                        .map(|t| {
                            AddPartitionsToTxnTopicResult::default()
                                .with_name(t.name.clone())
                                .with_results_by_partition(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            AddPartitionsToTxnPartitionResult::default()
                                                .with_partition_index(*p)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        ApiKey::Produce => {
            let req: ProduceRequest = r.decode();
            let t = &req.topic_data[0];
            let p = &t.partition_data[0];
            let batch = &decode_batches(p.records.clone().unwrap(), true, 1 << 20).unwrap()[0];
            log(format!(
                "Produce id={} pid={} epoch={} transactional={}",
                req.transactional_id
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                batch.producer_id,
                batch.producer_epoch,
                batch.transactional
            ));
            r.answer(&ProduceResponse::default().with_responses(vec![
                TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(0)]),
            ]))
        }
        ApiKey::EndTxn => {
            let req: EndTxnRequest = r.decode();
            log(format!("EndTxn committed={}", req.committed));
            r.answer(&EndTxnResponse::default())
        }
        other => panic!("not scripted: {other:?}"),
    })
}

#[tokio::test]
async fn a_transaction_puts_the_right_requests_on_the_wire() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cluster = FakeCluster::with_brokers(&[1]);
    let s = seen.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| script(&s, r)));
    // InitProducerId v3+ and the transaction APIs.
    let mut ranges = crate::testing::DEFAULT_RANGES.to_vec();
    ranges.extend([(24, 0, 3), (26, 0, 4)]);
    // FindCoordinator before v4 (one key, top-level answer), InitProducerId v4.
    ranges.retain(|r| r.0 != 22 && r.0 != 10);
    ranges.extend([(22, 0, 4), (10, 0, 3)]);
    *cluster.ranges.lock().unwrap() = Some(ranges);
    let client = cluster.client_builder().build().await.unwrap();
    let p = Producer::builder(&client)
        .set("transactional.id", "tx-1")
        .build()
        .await
        .unwrap();
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    let d = p
        .send(Record::new("t").partition(0).value("v"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), d)
        .await
        .unwrap()
        .unwrap();
    p.commit_transaction().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            "FindCoordinator type 1".to_owned(),
            "InitProducerId tx-1".to_owned(),
            "AddPartitionsToTxn [[0]]".to_owned(),
            "Produce id=tx-1 pid=42 epoch=3 transactional=true".to_owned(),
            "EndTxn committed=true".to_owned(),
        ]
    );
}
