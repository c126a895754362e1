//! Connect to a cluster, create a topic, and print what the cluster looks like.
//!
//! ```text
//! cargo run --example quickstart -- 127.0.0.1:9092
//! ```
//! `cargo xtask demo` starts a local broker and runs this against it.

use std::time::Duration;

use ferrokafka::{Client, KafkaCode, NewTopic};

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

    client.close().await;
    Ok(())
}
