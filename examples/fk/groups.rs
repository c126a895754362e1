//! `fk groups`: list, describe, lag, reset-offsets and delete consumer groups through
//! [`ferrokafka::Admin`].
//!
//! `reset-offsets` follows `kafka-consumer-groups.sh`: it only shows the new offsets unless
//! `--execute` is given, clamps them to what the log still has, and refuses a group that
//! has active members (their commits would overwrite the reset).

use std::collections::HashMap;
use std::process::ExitCode;

use ferrokafka::{
    Admin, Client, CommitOffset, GroupMember, KafkaCode, ListGroupsOptions, OffsetSpec,
    TopicPartition,
};

use crate::cli::{unknown, Args, Connection};
use crate::table::{offsets, opt, parse_datetime, state_name, type_name, Table};
use crate::{admin_client, failed, finish, Outcome};

/// `fk groups ...`'s arguments.
#[derive(Debug)]
pub struct GroupsArgs {
    action: Action,
    properties: Vec<(String, String)>,
}

#[derive(Debug)]
enum Action {
    List,
    Describe {
        groups: Vec<String>,
    },
    Lag {
        group: String,
    },
    Reset {
        group: String,
        /// Topics, each with the partitions named (`T:0,1`) or all of them.
        topics: Vec<(String, Option<Vec<i32>>)>,
        to: ResetTo,
        execute: bool,
    },
    Delete {
        groups: Vec<String>,
    },
}

/// Where `reset-offsets` moves each partition's committed offset.
#[derive(Debug, Clone, Copy)]
enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    /// The first record at or after these milliseconds (the end when there is none).
    Datetime(i64),
    /// The committed offset plus (or minus) this many.
    ShiftBy(i64),
}

/// Parses what follows `fk groups`.
pub fn parse(args: &mut Args<'_>) -> Result<GroupsArgs, String> {
    let sub = args
        .next_arg()
        .ok_or("groups: expected list, describe, lag, reset-offsets or delete".to_owned())?;
    let command = format!("groups {sub}");
    let mut conn = Connection::default();
    let mut names: Vec<String> = Vec::new();
    let mut topics = Vec::new();
    let mut to = None;
    let mut execute = None;
    let set_to = |t: ResetTo, to: &mut Option<ResetTo>| -> Result<(), String> {
        if to.replace(t).is_some() {
            return Err(format!(
                "{command}: give one of --to-earliest, --to-latest, --to-offset, \
                 --to-datetime, --shift-by"
            ));
        }
        Ok(())
    };
    while let Some(arg) = args.next_arg() {
        match (sub, arg) {
            ("reset-offsets", "--topic") => topics.push(topic_spec(&args.value(arg)?)?),
            ("reset-offsets", "--to-earliest") => set_to(ResetTo::Earliest, &mut to)?,
            ("reset-offsets", "--to-latest") => set_to(ResetTo::Latest, &mut to)?,
            ("reset-offsets", "--to-offset") => {
                let n: i64 = args.number(arg, "an offset (0 or more)")?;
                if n < 0 {
                    return Err(format!("--to-offset: {n} is not an offset (0 or more)"));
                }
                set_to(ResetTo::Offset(n), &mut to)?
            }
            ("reset-offsets", "--to-datetime") => {
                let ms = parse_datetime(&args.value(arg)?).map_err(|e| format!("{arg}: {e}"))?;
                set_to(ResetTo::Datetime(ms), &mut to)?
            }
            ("reset-offsets", "--shift-by") => set_to(
                ResetTo::ShiftBy(args.number(arg, "a number of records")?),
                &mut to,
            )?,
            ("reset-offsets", "--dry-run" | "--execute") => {
                let e = arg == "--execute";
                if execute.replace(e).is_some_and(|before| before != e) {
                    return Err(format!(
                        "{command}: --dry-run and --execute exclude each other"
                    ));
                }
            }
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
            Err(_) => Err(format!("{command}: expected exactly one GROUP")),
        }
    };
    let action = match sub {
        "list" => {
            if !names.is_empty() {
                return Err(format!("{command}: unexpected argument `{}`", names[0]));
            }
            Action::List
        }
        "describe" | "delete" if names.is_empty() => {
            return Err(format!("{command}: expected one or more GROUP names"))
        }
        "describe" => Action::Describe { groups: names },
        "delete" => Action::Delete { groups: names },
        "lag" => Action::Lag { group: one(names)? },
        "reset-offsets" => {
            let group = one(names)?;
            if topics.is_empty() {
                return Err(format!("{command}: missing --topic TOPIC[:PARTITION,...]"));
            }
            let to = to.ok_or_else(|| {
                format!(
                    "{command}: missing the target: --to-earliest, --to-latest, --to-offset N, \
                     --to-datetime TIME or --shift-by N"
                )
            })?;
            Action::Reset {
                group,
                topics,
                to,
                execute: execute.unwrap_or(false),
            }
        }
        other => {
            return Err(format!(
                "groups: unknown subcommand `{other}`: expected list, describe, lag, \
                 reset-offsets or delete"
            ))
        }
    };
    Ok(GroupsArgs { action, properties })
}

/// `TOPIC` or `TOPIC:0,1,2`, as `kafka-consumer-groups.sh --topic` takes it.
fn topic_spec(spec: &str) -> Result<(String, Option<Vec<i32>>), String> {
    let (topic, partitions) = match spec.split_once(':') {
        None => (spec, None),
        Some((topic, list)) => {
            let parsed: Result<Vec<i32>, _> = list.split(',').map(|p| p.trim().parse()).collect();
            match parsed {
                Ok(ps) if ps.iter().all(|p| *p >= 0) => (topic, Some(ps)),
                _ => return Err(format!("--topic: `{spec}` is not TOPIC or TOPIC:P,P,...")),
            }
        }
    };
    if topic.is_empty() {
        return Err("--topic: the topic name must not be empty".to_owned());
    }
    Ok((topic.to_owned(), partitions))
}

pub async fn run(args: GroupsArgs) -> ExitCode {
    let client = match admin_client(&args.properties).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = client.admin();
    let outcome = match args.action {
        Action::List => list_groups(&admin).await,
        Action::Describe { groups } => describe(&admin, &groups).await,
        Action::Lag { group } => lag(&admin, &group).await,
        Action::Reset {
            group,
            topics,
            to,
            execute,
        } => reset(&client, &group, &topics, to, execute).await,
        Action::Delete { groups } => delete(&admin, &groups).await,
    };
    finish(client, outcome).await
}

async fn list_groups(admin: &Admin) -> Outcome {
    let groups = admin
        .list_groups(&ListGroupsOptions::new())
        .await
        .map_err(|e| format!("cannot list groups: {e}"))?;
    let mut table = Table::new(&["GROUP", "TYPE", "STATE", "PROTOCOL-TYPE", "COORDINATOR"]);
    for g in groups {
        table.row(vec![
            g.group_id,
            g.group_type.as_ref().map(type_name).unwrap_or_default(),
            g.state.as_ref().map(state_name).unwrap_or_default(),
            g.protocol_type,
            g.coordinator.to_string(),
        ]);
    }
    table.print();
    Ok(0)
}

/// `topic:0,1;other:2`.
fn assignment(partitions: &[TopicPartition]) -> String {
    let mut by_topic: Vec<(&str, Vec<String>)> = Vec::new();
    for tp in partitions {
        match by_topic.last_mut() {
            Some((t, ps)) if *t == &*tp.topic => ps.push(tp.partition.to_string()),
            _ => by_topic.push((&tp.topic, vec![tp.partition.to_string()])),
        }
    }
    by_topic
        .iter()
        .map(|(t, ps)| format!("{t}:{}", ps.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

/// Two tables: one row per group, then one row per member with its assignment.
async fn describe(admin: &Admin, groups: &[String]) -> Outcome {
    let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let described = admin
        .describe_groups(&refs)
        .await
        .map_err(|e| format!("cannot describe groups: {e}"))?;
    let mut failures = 0;
    let mut summary = Table::new(&[
        "GROUP",
        "TYPE",
        "STATE",
        "ASSIGNOR",
        "COORDINATOR",
        "MEMBERS",
    ]);
    let mut members = Table::new(&["GROUP", "MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
    let mut any = false;
    for d in described {
        let g = match d.result {
            Ok(g) => g,
            Err(e) => {
                failed(format_args!("group {}", d.resource), e);
                failures += 1;
                continue;
            }
        };
        any = true;
        summary.row(vec![
            g.group_id.clone(),
            type_name(&g.protocol),
            state_name(&g.state),
            g.assignor.clone(),
            g.coordinator.to_string(),
            g.members.len().to_string(),
        ]);
        for m in &g.members {
            members.row(vec![
                g.group_id.clone(),
                m.member_id.clone(),
                m.client_id.clone(),
                m.host.clone(),
                assignment(&m.assignment),
            ]);
        }
    }
    if any {
        summary.print();
        println!();
        members.print();
    }
    Ok(failures)
}

/// One row per partition the group committed or has assigned, then the total.
async fn lag(admin: &Admin, group: &str) -> Outcome {
    let rows = admin
        .group_lag(group)
        .await
        .map_err(|e| format!("group {group}: {e}"))?;
    let mut failures = 0;
    let mut total = 0;
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "END",
        "LAG",
        "MEMBER",
        "CLIENT-ID",
    ]);
    for r in rows {
        if let Some(e) = &r.error {
            failed(format_args!("group {group}, {}", r.partition), e);
            failures += 1;
        }
        total += r.lag.unwrap_or(0);
        let member: Option<&GroupMember> = r.member.as_ref();
        table.row(vec![
            r.partition.topic.to_string(),
            r.partition.partition.to_string(),
            opt(r.committed),
            opt(r.log_end_offset),
            opt(r.lag),
            member.map(|m| m.member_id.clone()).unwrap_or_default(),
            member.map(|m| m.client_id.clone()).unwrap_or_default(),
        ]);
    }
    table.print();
    println!("\ntotal lag {total}");
    Ok(failures)
}

/// Computes the new offsets, prints them, and commits them with `--execute`.
async fn reset(
    client: &Client,
    group: &str,
    topics: &[(String, Option<Vec<i32>>)],
    to: ResetTo,
    execute: bool,
) -> Outcome {
    let admin = client.admin();
    // Active members would commit over the reset (and the coordinator refuses an admin
    // commit to a group with members anyway): refuse early, saying so.
    let described = admin
        .describe_groups(&[group])
        .await
        .map_err(|e| format!("cannot describe group {group}: {e}"))?;
    for d in described {
        match d.result {
            Ok(g) if !g.members.is_empty() => {
                return Err(format!(
                    "group {group} has {} active member(s) (state {}): stop its consumers \
                     before resetting its offsets",
                    g.members.len(),
                    state_name(&g.state)
                ))
            }
            Ok(_) => {}
            // Resetting a group that does not exist yet creates it with these offsets.
            Err(e) if e.kafka_code() == Some(KafkaCode::GroupIdNotFound) => {}
            Err(e) => return Err(format!("cannot describe group {group}: {e}")),
        }
    }

    let partitions = reset_partitions(client, topics).await?;
    let committed: HashMap<TopicPartition, i64> = admin
        .list_group_offsets(group, Some(&partitions))
        .await
        .map_err(|e| format!("cannot read the committed offsets of group {group}: {e}"))?
        .into_iter()
        .filter_map(|r| r.result.ok().map(|o| (r.resource, o.offset)))
        .collect();
    let earliest = offsets(&admin, &partitions, OffsetSpec::Earliest).await?;
    let latest = offsets(&admin, &partitions, OffsetSpec::Latest).await?;
    let by_time = match to {
        ResetTo::Datetime(ms) => offsets(&admin, &partitions, OffsetSpec::Timestamp(ms)).await?,
        _ => HashMap::new(),
    };

    let mut failures = 0;
    let mut new_offsets = Vec::new();
    let mut table = Table::new(&["GROUP", "TOPIC", "PARTITION", "CURRENT", "NEW"]);
    for tp in &partitions {
        let (low, high) = (earliest[tp], latest[tp]);
        let current = committed.get(tp).copied();
        let target = match to {
            ResetTo::Earliest => low,
            ResetTo::Latest => high,
            ResetTo::Offset(n) => n,
            // -1: no record that recent, so the end.
            ResetTo::Datetime(_) => match by_time[tp] {
                -1 => high,
                o => o,
            },
            ResetTo::ShiftBy(n) => match current {
                Some(c) => c.saturating_add(n),
                None => {
                    failed(
                        format_args!("group {group}, {tp}"),
                        "no committed offset to shift",
                    );
                    failures += 1;
                    continue;
                }
            },
        };
        // As kafka-consumer-groups does: never before the first record still in the log or
        // past its end.
        let new = target.clamp(low, high);
        table.row(vec![
            group.to_owned(),
            tp.topic.to_string(),
            tp.partition.to_string(),
            opt(current),
            new.to_string(),
        ]);
        new_offsets.push((tp.clone(), CommitOffset::new(new)));
    }
    table.print();
    if !execute {
        eprintln!("fk: dry run: nothing changed; add --execute to commit these offsets");
        return Ok(failures);
    }
    let results = admin
        .alter_group_offsets(group, &new_offsets)
        .await
        .map_err(|e| format!("cannot commit the offsets of group {group}: {e}"))?;
    let mut done = 0;
    for r in results {
        match r.result {
            Ok(()) => done += 1,
            Err(e) => {
                failed(format_args!("group {group}, {}", r.resource), e);
                failures += 1;
            }
        }
    }
    eprintln!("fk: committed {done} new offsets for group {group}");
    Ok(failures)
}

/// The partitions `--topic` names: every partition of the topic, or the ones listed (which
/// must exist).
async fn reset_partitions(
    client: &Client,
    topics: &[(String, Option<Vec<i32>>)],
) -> Result<Vec<TopicPartition>, String> {
    let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
    let metadata = client
        .metadata(&names)
        .await
        .map_err(|e| format!("cannot read the metadata of {}: {e}", names.join(", ")))?;
    let mut out = Vec::new();
    for (topic, only) in topics {
        let t = metadata
            .topic(topic)
            .ok_or_else(|| format!("topic {topic} does not exist"))?;
        if let Some(code) = t.error {
            return Err(format!("topic {topic}: {code}"));
        }
        match only {
            None => out.extend(
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(topic, p.id)),
            ),
            Some(ps) => {
                for p in ps {
                    if t.partition(*p).is_none() {
                        return Err(format!("topic {topic} has no partition {p}"));
                    }
                    out.push(TopicPartition::new(topic, *p));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

async fn delete(admin: &Admin, groups: &[String]) -> Outcome {
    let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let results = admin
        .delete_groups(&refs)
        .await
        .map_err(|e| format!("cannot delete groups: {e}"))?;
    let mut failures = 0;
    for r in results {
        match r.result {
            Ok(()) => println!("deleted group {}", r.resource),
            Err(e) => {
                failed(format_args!("group {}", r.resource), e);
                failures += 1;
            }
        }
    }
    Ok(failures)
}
