//! Connect to a cluster, create a topic, print what the cluster looks like, produce 1000
//! keyed records to the topic and show where they landed, then read them back in a consumer
//! group that commits, and check that every record came back.
//!
//! ```text
//! cargo run --example quickstart -- 127.0.0.1:9092
//! ```
//! `cargo xtask demo` starts a local broker and runs this against it. The exit status is
//! non-zero if a produced record was not read back.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use ferrokafka::{
    Client, Consumer, KafkaCode, NewTopic, OffsetReset, Producer, Record, TopicPartition,
};

/// How many records the example produces.
const RECORDS: usize = 1000;
/// The consumer group that reads them back. Its commits survive the example: run it again
/// against the same cluster and the group goes on after the records it has already read.
const GROUP: &str = "quickstart";
/// How long reading back may take before the records still missing are reported.
const CONSUME_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".to_owned());

    // One Client per process: producers, consumers and admin calls share its connections.
    let client = Client::builder()
        .bootstrap_servers(&bootstrap)
        .client_id("ferrokafka-quickstart")
        .request_timeout(Duration::from_secs(10))
        .build()
        .await?;

    let topic = "quickstart";
    match client
        .admin()
        .create_topics(&[NewTopic::new(topic, 3, 1)])
        .await
    {
        Ok(()) => println!("created topic {topic}"),
        // Running the example twice is fine.
        Err(e) if e.kafka_code() == Some(KafkaCode::TopicAlreadyExists) => {
            println!("topic {topic} already exists")
        }
        Err(e) => return Err(e.into()),
    }

    let cluster = client.admin().describe_cluster().await?;
    println!(
        "cluster {} (controller {})",
        cluster.cluster_id.as_deref().unwrap_or("<no id>"),
        cluster
            .controller_id
            .map_or("none".to_owned(), |id| id.to_string())
    );
    for b in &cluster.brokers {
        println!(
            "  broker {} at {}{}",
            b.id,
            b.address(),
            b.rack
                .as_ref()
                .map_or(String::new(), |r| format!(" rack {r}"))
        );
    }

    let metadata = client.metadata(&[topic]).await?;
    let t = metadata.topic(topic).ok_or("topic missing from metadata")?;
    println!("topic {} ({} partitions)", t.name, t.partitions.len());
    for p in &t.partitions {
        println!(
            "  partition {}: leader {}, replicas {:?}, isr {:?}",
            p.id,
            p.leader.map_or("none".to_owned(), |l| l.to_string()),
            p.replicas,
            p.isr
        );
    }

    // A producer shares the client's connections and metadata. Its defaults are the safe
    // ones: acks=all with idempotence, so a retry never writes a record twice.
    let producer = Producer::builder(&client).build().await?;
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        // The key picks the partition: every record of `user-7` lands in the same one, in order.
        let record = Record::new(topic)
            .key(format!("user-{}", i % 50))
            .value(format!("event {i}"));
        // `send` returns once the record is buffered; its delivery is awaited below, so the
        // records travel in batches instead of one round trip each.
        deliveries.push(producer.send(record).await?);
    }
    let mut partitions: BTreeMap<i32, OffsetRange> = BTreeMap::new();
    // Where each record landed: what reading back must find.
    let mut produced: HashSet<(i32, i64)> = HashSet::with_capacity(RECORDS);
    for delivery in deliveries {
        let written = delivery.await?;
        partitions
            .entry(written.partition)
            .or_insert_with(|| OffsetRange::new(written.offset))
            .add(written.offset);
        produced.insert((written.partition, written.offset));
    }
    // Everything is delivered already; close() just stops the producer's background task.
    producer.close(Duration::from_secs(10)).await?;

    println!("produced {RECORDS} records to {topic}");
    for (partition, range) in &partitions {
        println!(
            "  partition {partition}: {} records, offsets {}..={}",
            range.count, range.first, range.last
        );
    }

    // Read the records back as a member of GROUP. Auto-commit is on (the default): the
    // consumer commits the offsets after the records it has handed out, so the group's next
    // member (or the next run) goes on after them.
    let started = Instant::now();
    let consumer = Consumer::builder(&client)
        .group_id(GROUP)
        // A group with no committed offset yet starts at the oldest records, not (the
        // default) at those written after it joins.
        .offset_reset(OffsetReset::Earliest)
        // The coordinator holds a join round open so that other members can come along;
        // Tansu, the demo's broker, holds it for half the session timeout. A short session
        // keeps the demo quick; services usually keep the default (45 s), which tolerates
        // longer pauses before the group gives a member's partitions away.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .build()
        .await?;
    consumer.subscribe(&[topic]).await?;
    let mut seen: HashSet<(i32, i64)> = HashSet::with_capacity(RECORDS);
    let (mut consumed, mut older) = (0usize, 0usize);
    let mut first_after = None;
    let deadline = tokio::time::sleep(CONSUME_DEADLINE);
    tokio::pin!(deadline);
    while seen.len() < produced.len() {
        let batch = tokio::select! {
            _ = &mut deadline => break,
            batch = consumer.recv_batch(500) => batch?,
        };
        first_after.get_or_insert(started.elapsed());
        for r in batch {
            if produced.contains(&(r.partition, r.offset)) {
                consumed += 1;
                seen.insert((r.partition, r.offset));
            } else {
                // Written before this run and not yet read by the group.
                older += 1;
            }
        }
    }
    let took = started.elapsed();
    // close() commits the offsets after the last record handed out and leaves the group.
    consumer.close().await?;

    // What a new member of the group would start from: the committed offsets.
    let reader = Consumer::builder(&client).group_id(GROUP).build().await?;
    let tps: Vec<TopicPartition> = partitions
        .keys()
        .map(|p| TopicPartition::new(topic, *p))
        .collect();
    let committed = reader.committed(&tps).await?;
    reader.close().await?;

    let missing = produced.len() - seen.len();
    println!(
        "consumed {consumed} records in group {GROUP} in {:.2} s{}",
        took.as_secs_f64(),
        // Most of the wait before the first record is the group join.
        first_after.map_or(String::new(), |t| format!(
            " (the first after {:.2} s: joining the group)",
            t.as_secs_f64()
        )),
    );
    println!(
        "  {} distinct, {} duplicates, {missing} missing",
        seen.len(),
        consumed - seen.len()
    );
    if older > 0 {
        println!("  and {older} records written before this run");
    }
    let mut behind = 0;
    for tp in &tps {
        let end = partitions[&tp.partition].last + 1;
        let offset = committed[tp];
        if offset.is_none_or(|o| o < end) {
            behind += 1;
        }
        let offset = offset.map_or("none".to_owned(), |o| o.to_string());
        println!(
            "  partition {}: committed offset {offset} (end {end})",
            tp.partition
        );
    }

    client.close().await;
    if missing > 0 {
        return Err(format!("{missing} of {RECORDS} produced records were not consumed").into());
    }
    if behind > 0 {
        return Err(format!("{behind} partitions were committed short of their end").into());
    }
    Ok(())
}

/// The records one partition received: how many, and the lowest and highest offset.
struct OffsetRange {
    count: usize,
    first: i64,
    last: i64,
}

impl OffsetRange {
    fn new(offset: i64) -> OffsetRange {
        OffsetRange {
            count: 0,
            first: offset,
            last: offset,
        }
    }

    fn add(&mut self, offset: i64) {
        self.count += 1;
        self.first = self.first.min(offset);
        self.last = self.last.max(offset);
    }
}
