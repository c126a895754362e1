//! `fk metadata`: the cluster as Metadata reports it — brokers (id, address, rack), the
//! controller, and topics with their partitions' leaders, replicas and in-sync replicas —
//! as tables or, with `-J`, one JSON document.

use std::process::ExitCode;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ferrokafka::{Client, ClusterMetadata};
use serde_json::{json, Value};

use crate::cli::{unknown, Args, Connection};
use crate::table::{list, opt, Table};
use crate::{admin_client, failed, finish, Outcome};

/// `fk metadata`'s arguments.
#[derive(Debug)]
pub struct MetadataArgs {
    /// `-t`, repeatable; every topic that is not internal when empty.
    topics: Vec<String>,
    json: bool,
    properties: Vec<(String, String)>,
}

/// Parses what follows `fk metadata`.
pub fn parse(args: &mut Args<'_>) -> Result<MetadataArgs, String> {
    let mut conn = Connection::default();
    let mut topics = Vec::new();
    let mut json = false;
    while let Some(flag) = args.next_arg() {
        match flag {
            "-t" => {
                let t = args.value(flag)?;
                if t.is_empty() {
                    return Err("-t: the topic name must not be empty".to_owned());
                }
                topics.push(t);
            }
            "-J" => json = true,
            _ => {
                if !conn.take(flag, args)? {
                    return Err(unknown("metadata", flag));
                }
            }
        }
    }
    Ok(MetadataArgs {
        topics,
        json,
        properties: conn.finish("metadata")?,
    })
}

pub async fn run(args: MetadataArgs) -> ExitCode {
    let client = match admin_client(&args.properties).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let outcome = show(&client, &args).await;
    finish(client, outcome).await
}

async fn show(client: &Client, args: &MetadataArgs) -> Outcome {
    let topics = if args.topics.is_empty() {
        client
            .admin()
            .list_topics()
            .await
            .map_err(|e| format!("cannot list topics: {e}"))?
    } else {
        args.topics.clone()
    };
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let metadata = client
        .metadata(&refs)
        .await
        .map_err(|e| format!("cannot read metadata: {e}"))?;
    // A topic asked for with -t that does not exist (or is refused) is a failed resource.
    let mut failures = 0;
    for name in &args.topics {
        match metadata.topic(name) {
            None => {
                failed(format_args!("topic {name}"), "not in the metadata");
                failures += 1;
            }
            Some(t) if t.error.is_some() => {
                failed(format_args!("topic {name}"), t.error.unwrap());
                failures += 1;
            }
            Some(_) => {}
        }
    }
    if args.json {
        println!("{}", to_json(&metadata));
    } else {
        print_tables(&metadata);
    }
    Ok(failures)
}

/// Cluster id and controller, then a brokers table and a partitions table.
fn print_tables(m: &ClusterMetadata) {
    println!(
        "cluster {} controller {}",
        m.cluster_id.as_deref().unwrap_or("-"),
        m.controller_id.map_or("-".to_owned(), |c| c.to_string())
    );
    println!();
    let mut brokers = Table::new(&["BROKER", "ADDRESS", "RACK", "CONTROLLER"]);
    for b in &m.brokers {
        let controller = if m.controller_id == Some(b.id) {
            "yes"
        } else {
            "no"
        };
        brokers.row(vec![
            b.id.to_string(),
            b.address(),
            b.rack.clone().unwrap_or_default(),
            controller.to_owned(),
        ]);
    }
    brokers.print();
    println!();
    let mut partitions = Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "ERROR"]);
    for t in m.topics.iter().filter(|t| t.error.is_none()) {
        for p in &t.partitions {
            partitions.row(vec![
                t.name.clone(),
                p.id.to_string(),
                opt(p.leader),
                list(&p.replicas),
                list(&p.isr),
                opt(p.error),
            ]);
        }
    }
    partitions.print();
}

/// The whole answer as one JSON object.
fn to_json(m: &ClusterMetadata) -> Value {
    let brokers: Vec<Value> = m
        .brokers
        .iter()
        .map(|b| json!({ "id": b.id, "host": b.host, "port": b.port, "rack": b.rack }))
        .collect();
    let topics: Vec<Value> = m
        .topics
        .iter()
        .map(|t| {
            let partitions: Vec<Value> = t
                .partitions
                .iter()
                .map(|p| {
                    json!({
                        "partition": p.id,
                        "leader": p.leader,
                        "replicas": p.replicas,
                        "isr": p.isr,
                        "error": p.error.map(|e| e.to_string()),
                    })
                })
                .collect();
            json!({
                "topic": t.name,
                // Kafka's text form of a topic id.
                "id": t.id.map(|id| URL_SAFE_NO_PAD.encode(id)),
                "internal": t.internal,
                "error": t.error.map(|e| e.to_string()),
                "partitions": partitions,
            })
        })
        .collect();
    json!({
        "cluster_id": m.cluster_id,
        "controller": m.controller_id,
        "brokers": brokers,
        "topics": topics,
    })
}
