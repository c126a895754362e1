//! Connect to a cluster, create a topic, print what the cluster looks like, then produce
//! 1000 keyed records to the topic and show where they landed.
//!
//! ```text
//! cargo run --example quickstart -- 127.0.0.1:9092
//! ```
//! `cargo xtask demo` starts a local broker and runs this against it.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrokafka::{Client, KafkaCode, NewTopic, Producer, Record};

/// How many records the example produces.
const RECORDS: usize = 1000;

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
    for delivery in deliveries {
        let written = delivery.await?;
        partitions
            .entry(written.partition)
            .or_insert_with(|| OffsetRange::new(written.offset))
            .add(written.offset);
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

    client.close().await;
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
