//! The admin's per-resource loop against a scripted broker ([`FakeCluster`]): a partition
//! whose leader moved is asked again alone while the others keep their answer, and a change
//! whose outcome is unknown is reported rather than repeated, and a group's lag over 100
//! partitions costs one DescribeGroups, one OffsetFetch and one ListOffsets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponsePartition;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, ListOffsetsRequest,
    ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{CreateTopicsOptions, NewTopic, OffsetSpec};
use crate::codes::KafkaCode;
use crate::consumer::TopicPartition;
use crate::testing::{FakeCluster, Received};

fn name(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

#[tokio::test]
async fn a_partition_whose_leader_moved_is_asked_again_alone() {
    let cluster = FakeCluster::with_brokers(&[1]);
    // Topic `t` gets a second partition, also led by broker 1.
    cluster.metadata.lock().unwrap().topics[0].partitions.push(
        MetadataResponsePartition::default()
            .with_partition_index(1)
            .with_leader_id(BrokerId(1))
            .with_replica_nodes(vec![BrokerId(1)])
            .with_isr_nodes(vec![BrokerId(1)]),
    );
    // What each ListOffsets asked for, in order.
    let asked: Arc<Mutex<Vec<Vec<i32>>>> = Arc::default();
    let log = asked.clone();
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| {
        assert_eq!(r.api().0, ApiKey::ListOffsets);
        let req: ListOffsetsRequest = r.decode();
        let parts: Vec<i32> = req.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition_index)
            .collect();
        let first = log.lock().unwrap().is_empty();
        log.lock().unwrap().push(parts.clone());
        // The first time, partition 1's leader has just moved.
        let answers = parts
            .iter()
            .map(|&p| {
                let moved = first && p == 1;
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p)
                    .with_error_code(if moved {
                        KafkaCode::NotLeaderOrFollower.code()
                    } else {
                        0
                    })
                    .with_offset(if moved { -1 } else { 10 + p as i64 })
                    .with_timestamp(-1)
            })
            .collect();
        Some(r.answer(&ListOffsetsResponse::default().with_topics(vec![
            ListOffsetsTopicResponse::default()
                .with_name(name("t"))
                .with_partitions(answers),
        ])))
    }));
    let client = cluster
        .client_builder()
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let asks = [
        (TopicPartition::new("t", 0), OffsetSpec::Latest),
        (TopicPartition::new("t", 1), OffsetSpec::Latest),
    ];
    let results = client.admin().list_offsets_many(&asks).await.unwrap();
    let offsets: Vec<i64> = results
        .iter()
        .map(|r| r.result.as_ref().unwrap().offset)
        .collect();
    assert_eq!(offsets, vec![10, 11]);
    assert_eq!(*asked.lock().unwrap(), vec![vec![0, 1], vec![1]]);
    client.close().await;
}

#[tokio::test]
async fn a_creation_with_an_unknown_outcome_is_reported_not_repeated() {
    let cluster = FakeCluster::with_brokers(&[1]);
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| {
        assert_eq!(r.api().0, ApiKey::CreateTopics);
        let req: CreateTopicsRequest = r.decode();
        assert!(req.validate_only);
        let topics = req
            .topics
            .iter()
            .map(|t| {
                // `slow` timed out on the controller: it may or may not exist now.
                let code = if t.name.0.as_str() == "slow" {
                    KafkaCode::RequestTimedOut.code()
                } else {
                    0
                };
                CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(code)
                    .with_num_partitions(t.num_partitions)
                    .with_replication_factor(t.replication_factor)
            })
            .collect();
        Some(r.answer(&CreateTopicsResponse::default().with_topics(topics)))
    }));
    let client = cluster
        .client_builder()
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let results = client
        .admin()
        .create_topics_with(
            &[NewTopic::new("fast", 2, 1), NewTopic::new("slow", 1, 1)],
            &CreateTopicsOptions::new().validate_only(true),
        )
        .await
        .unwrap();
    assert_eq!(results[0].resource, "fast");
    assert_eq!(results[0].result.as_ref().unwrap().partitions, 2);
    assert_eq!(results[1].resource, "slow");
    let e = results[1].result.as_ref().unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::RequestTimedOut), "{e}");
    assert_eq!(cluster.count(ApiKey::CreateTopics), 1);
    client.close().await;
}

#[tokio::test]
async fn lag_of_a_hundred_partitions_costs_one_request_of_each_kind() {
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    use kafka_protocol::messages::{
        DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
        OffsetFetchResponse,
    };

    use crate::consumer::assignor::{encode_assignment, Assignment};

    const N: i32 = 100;
    let cluster = FakeCluster::with_brokers(&[1]);
    cluster.metadata.lock().unwrap().topics[0].partitions = (0..N)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(1))
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])
        })
        .collect();
    // A broker without KIP-848's ConsumerGroupDescribe: describe falls back to the classic
    // DescribeGroups.
    let mut ranges = crate::testing::DEFAULT_RANGES.to_vec();
    ranges.push((15, 0, 5));
    *cluster.ranges.lock().unwrap() = Some(ranges);
    let assignment = encode_assignment(
        &Assignment {
            partitions: vec![("t".to_string(), (0..N).collect())],
            user_data: None,
        },
        3,
    );
    *cluster.handler.lock().unwrap() = Some(Box::new(move |r: &Received| {
        let group = || GroupId(StrBytes::from_static_str("g"));
        match r.api().0 {
            ApiKey::FindCoordinator => {
                let req: FindCoordinatorRequest = r.decode();
                assert_eq!(req.coordinator_keys[0].as_str(), "g");
                Some(
                    r.answer(&FindCoordinatorResponse::default().with_coordinators(vec![
                    Coordinator::default()
                        .with_key(StrBytes::from_static_str("g"))
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("fake"))
                        .with_port(1),
                ])),
                )
            }
            ApiKey::DescribeGroups => Some(r.answer(
                &DescribeGroupsResponse::default().with_groups(vec![
                    DescribedGroup::default()
                        .with_group_id(group())
                        .with_group_state(StrBytes::from_static_str("Stable"))
                        .with_protocol_type(StrBytes::from_static_str("consumer"))
                        .with_protocol_data(StrBytes::from_static_str("range"))
                        .with_members(vec![DescribedGroupMember::default()
                            .with_member_id(StrBytes::from_static_str("m-1"))
                            .with_client_id(StrBytes::from_static_str("app"))
                            .with_member_assignment(assignment.clone())]),
                ]),
            )),
            // Partition p committed at p.
            ApiKey::OffsetFetch => Some(r.answer(&OffsetFetchResponse::default().with_groups(
                vec![OffsetFetchResponseGroup::default()
                    .with_group_id(group())
                    .with_topics(vec![OffsetFetchResponseTopics::default()
                        .with_name(name("t"))
                        .with_partitions(
                            (0..N)
                                .map(|p| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(p as i64)
                                })
                                .collect(),
                        )])],
            ))),
            // Partition p ends at 2p + 3.
            ApiKey::ListOffsets => {
                let req: ListOffsetsRequest = r.decode();
                let answers = req.topics[0]
                    .partitions
                    .iter()
                    .map(|p| {
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_offset(2 * p.partition_index as i64 + 3)
                            .with_timestamp(-1)
                    })
                    .collect();
                Some(r.answer(&ListOffsetsResponse::default().with_topics(vec![
                    ListOffsetsTopicResponse::default()
                        .with_name(name("t"))
                        .with_partitions(answers),
                ])))
            }
            other => panic!("unexpected {other:?}"),
        }
    }));
    let client = cluster.client_builder().build().await.unwrap();
    let lag = client.admin().group_lag("g").await.unwrap();
    assert_eq!(lag.len(), N as usize);
    for (p, row) in lag.iter().enumerate() {
        let p = p as i64;
        assert_eq!(row.partition, TopicPartition::new("t", p as i32));
        assert_eq!(
            (row.committed, row.log_end_offset),
            (Some(p), Some(2 * p + 3))
        );
        assert_eq!(row.lag, Some(p + 3));
        assert_eq!(row.member.as_ref().unwrap().member_id, "m-1");
    }
    for api in [
        ApiKey::DescribeGroups,
        ApiKey::OffsetFetch,
        ApiKey::ListOffsets,
    ] {
        assert_eq!(cluster.count(api), 1, "{api:?}");
    }
    client.close().await;
}
