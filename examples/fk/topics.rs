//! `fk topics`: list, describe, create, delete and alter topics through [`ferrokafka::Admin`].
//!
//! Tables go to stdout with a header line; each topic the broker refuses is printed to
//! stderr as `fk: topic NAME: ERROR`, the others are still done, and the exit code is 1.

use std::process::ExitCode;

use ferrokafka::{
    Admin, AlterConfigOp, ConfigResource, ConfigSource, CreateTopicsOptions, NewPartitions,
    NewTopic,
};

use crate::cli::{key_value, unknown, Args, Connection};
use crate::table::{list, opt, Table};
use crate::{admin_client, failed, finish, Outcome};

/// `fk topics ...`'s arguments.
#[derive(Debug)]
pub struct TopicsArgs {
    action: Action,
    properties: Vec<(String, String)>,
}

#[derive(Debug)]
enum Action {
    List {
        internal: bool,
    },
    Describe {
        topics: Vec<String>,
    },
    Create {
        topic: String,
        partitions: i32,
        replication: i16,
        configs: Vec<(String, String)>,
    },
    Delete {
        topics: Vec<String>,
    },
    Alter {
        topic: String,
        ops: Vec<AlterConfigOp>,
        partitions: Option<i32>,
    },
}

/// Parses what follows `fk topics`.
pub fn parse(args: &mut Args<'_>) -> Result<TopicsArgs, String> {
    let sub = args
        .next_arg()
        .ok_or("topics: expected list, describe, create, delete or alter".to_owned())?;
    let command = format!("topics {sub}");
    let mut conn = Connection::default();
    let mut names: Vec<String> = Vec::new();
    let mut internal = false;
    let mut partitions = None;
    let mut replication = None;
    let mut configs = Vec::new();
    let mut ops = Vec::new();
    while let Some(arg) = args.next_arg() {
        match (sub, arg) {
            ("list", "--internal") => internal = true,
            ("create", "-P") | ("alter", "--partitions") => {
                let n: i32 = args.number(arg, "a partition count (1 or more)")?;
                if n < 1 {
                    return Err(format!("{arg}: {n} is not a partition count (1 or more)"));
                }
                partitions = Some(n);
            }
            ("create", "-R") => {
                let n: i16 = args.number(arg, "a replication factor (1 or more)")?;
                if n < 1 {
                    return Err(format!("-R: {n} is not a replication factor (1 or more)"));
                }
                replication = Some(n);
            }
            ("create", "-c") => configs.push(key_value(arg, args.value(arg)?)?),
            ("alter", "--set") => {
                let (k, v) = key_value(arg, args.value(arg)?)?;
                ops.push(AlterConfigOp::set(k, v));
            }
            ("alter", "--delete") => ops.push(AlterConfigOp::delete(args.value(arg)?)),
            _ if !arg.starts_with('-') => names.push(arg.to_owned()),
            _ => {
                if !conn.take(arg, args)? {
                    return Err(unknown(&command, arg));
                }
            }
        }
    }
    let properties = conn.finish(&command)?;
    let one = |names: Vec<String>| -> Result<String, String> {
        match <[String; 1]>::try_from(names) {
            Ok([name]) => Ok(name),
            Err(_) => Err(format!("{command}: expected exactly one TOPIC")),
        }
    };
    let action = match sub {
        "list" => {
            if !names.is_empty() {
                return Err(format!("{command}: unexpected argument `{}`", names[0]));
            }
            Action::List { internal }
        }
        "describe" | "delete" if names.is_empty() => {
            return Err(format!("{command}: expected one or more TOPIC names"))
        }
        "describe" => Action::Describe { topics: names },
        "delete" => Action::Delete { topics: names },
        "create" => Action::Create {
            topic: one(names)?,
            // -1: the broker's num.partitions and default.replication.factor.
            partitions: partitions.unwrap_or(-1),
            replication: replication.unwrap_or(-1),
            configs,
        },
        "alter" => {
            if ops.is_empty() && partitions.is_none() {
                return Err(format!(
                    "{command}: nothing to change: give --set KEY=VALUE, --delete KEY or \
                     --partitions N"
                ));
            }
            Action::Alter {
                topic: one(names)?,
                ops,
                partitions,
            }
        }
        other => {
            return Err(format!(
                "topics: unknown subcommand `{other}`: expected list, describe, create, \
                 delete or alter"
            ))
        }
    };
    Ok(TopicsArgs { action, properties })
}

pub async fn run(args: TopicsArgs) -> ExitCode {
    let client = match admin_client(&args.properties).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = client.admin();
    let outcome = match args.action {
        Action::List { internal } => list_topics(&admin, internal).await,
        Action::Describe { topics } => describe(&admin, &topics).await,
        Action::Create {
            topic,
            partitions,
            replication,
            configs,
        } => create(&admin, topic, partitions, replication, configs).await,
        Action::Delete { topics } => delete(&admin, &topics).await,
        Action::Alter {
            topic,
            ops,
            partitions,
        } => alter(&admin, &topic, ops, partitions).await,
    };
    finish(client, outcome).await
}

/// `TOPIC PARTITIONS REPLICATION` for every topic, sorted by name.
async fn list_topics(admin: &Admin, internal: bool) -> Outcome {
    let names = admin
        .list_topics_with(internal)
        .await
        .map_err(|e| format!("cannot list topics: {e}"))?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let described = admin
        .describe_topics(&refs)
        .await
        .map_err(|e| format!("cannot describe topics: {e}"))?;
    let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION"]);
    for d in described {
        // A topic deleted between the two calls is simply gone.
        if let Ok(t) = d.result {
            let replication = t.partitions.first().map(|p| p.replicas.len());
            table.row(vec![
                t.name,
                t.partitions.len().to_string(),
                opt(replication),
            ]);
        }
    }
    table.print();
    Ok(0)
}

/// Two tables: one row per topic (id, counts, configs that are not default), then one row
/// per partition (leader, replicas, in-sync and offline replicas).
async fn describe(admin: &Admin, topics: &[String]) -> Outcome {
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let described = admin
        .describe_topics(&refs)
        .await
        .map_err(|e| format!("cannot describe topics: {e}"))?;
    let mut failures = 0;
    let mut found = Vec::new();
    for d in described {
        match d.result {
            Ok(t) => found.push(t),
            Err(e) => {
                failed(format_args!("topic {}", d.resource), e);
                failures += 1;
            }
        }
    }
    let resources: Vec<ConfigResource> = found
        .iter()
        .map(|t| ConfigResource::topic(&t.name))
        .collect();
    let configs = if resources.is_empty() {
        Vec::new()
    } else {
        admin
            .describe_configs(&resources)
            .await
            .map_err(|e| format!("cannot describe topic configs: {e}"))?
    };
    let mut summary = Table::new(&["TOPIC", "ID", "PARTITIONS", "REPLICATION", "CONFIGS"]);
    let mut partitions =
        Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"]);
    for t in &found {
        let overrides = match configs.iter().find(|c| c.resource.name == t.name) {
            Some(c) => match &c.result {
                // Set on the topic itself: what `kafka-topics --describe` shows too.
                Ok(entries) => entries
                    .iter()
                    .filter(|e| e.source == ConfigSource::DynamicTopic)
                    .map(|e| match (&e.value, e.sensitive) {
                        (Some(v), false) => format!("{}={v}", e.name),
                        _ => format!("{}=(sensitive)", e.name),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                Err(e) => {
                    failed(format_args!("configs of topic {}", t.name), e);
                    failures += 1;
                    String::new()
                }
            },
            None => String::new(),
        };
        summary.row(vec![
            t.name.clone(),
            t.topic_id.clone().unwrap_or_default(),
            t.partitions.len().to_string(),
            opt(t.partitions.first().map(|p| p.replicas.len())),
            overrides,
        ]);
        for p in &t.partitions {
            partitions.row(vec![
                t.name.clone(),
                p.id.to_string(),
                opt(p.leader),
                list(&p.replicas),
                list(&p.isr),
                list(&p.offline_replicas),
            ]);
        }
    }
    if !found.is_empty() {
        summary.print();
        println!();
        partitions.print();
    }
    Ok(failures)
}

async fn create(
    admin: &Admin,
    topic: String,
    partitions: i32,
    replication: i16,
    configs: Vec<(String, String)>,
) -> Outcome {
    let new = configs.into_iter().fold(
        NewTopic::new(&topic, partitions, replication),
        |t, (k, v)| t.config(k, v),
    );
    let results = admin
        .create_topics_with(&[new], &CreateTopicsOptions::new())
        .await
        .map_err(|e| format!("cannot create topic {topic}: {e}"))?;
    let mut failures = 0;
    for r in results {
        match r.result {
            Ok(created) => println!(
                "created topic {} with {} partitions, replication {}, id {}",
                r.resource,
                created.partitions,
                created.replication_factor,
                created.topic_id.as_deref().unwrap_or("-")
            ),
            Err(e) => {
                failed(format_args!("topic {}", r.resource), e);
                failures += 1;
            }
        }
    }
    Ok(failures)
}

async fn delete(admin: &Admin, topics: &[String]) -> Outcome {
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics_each(&refs)
        .await
        .map_err(|e| format!("cannot delete topics: {e}"))?;
    let mut failures = 0;
    for r in results {
        match r.result {
            Ok(()) => println!("deleted topic {}", r.resource),
            Err(e) => {
                failed(format_args!("topic {}", r.resource), e);
                failures += 1;
            }
        }
    }
    Ok(failures)
}

/// Incremental config changes first, then the partition count: each is reported on its own.
async fn alter(
    admin: &Admin,
    topic: &str,
    ops: Vec<AlterConfigOp>,
    partitions: Option<i32>,
) -> Outcome {
    let mut failures = 0;
    if !ops.is_empty() {
        let described: Vec<String> = ops.iter().map(describe_op).collect();
        let results = admin
            .incremental_alter_configs(&[(ConfigResource::topic(topic), ops)], false)
            .await
            .map_err(|e| format!("cannot alter the configs of topic {topic}: {e}"))?;
        for r in results {
            match r.result {
                Ok(()) => println!("altered topic {topic}: {}", described.join(", ")),
                Err(e) => {
                    failed(format_args!("configs of topic {topic}"), e);
                    failures += 1;
                }
            }
        }
    }
    if let Some(n) = partitions {
        let results = admin
            .create_partitions(&[NewPartitions::increase_to(topic, n)], false)
            .await
            .map_err(|e| format!("cannot add partitions to topic {topic}: {e}"))?;
        for r in results {
            match r.result {
                Ok(()) => println!("topic {topic} now has {n} partitions"),
                Err(e) => {
                    failed(format_args!("partitions of topic {topic}"), e);
                    failures += 1;
                }
            }
        }
    }
    Ok(failures)
}

/// `set k=v` or `delete k`, for the confirmation line.
fn describe_op(op: &AlterConfigOp) -> String {
    match op {
        AlterConfigOp::Set(name, value) => format!("set {name}={value}"),
        AlterConfigOp::Delete(name) => format!("deleted {name}"),
        other => format!("{other:?}"),
    }
}
