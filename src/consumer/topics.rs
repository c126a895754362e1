//! The subscribed topics as the cluster has them: missing ones are named in a warning and
//! looked up again every few seconds, and a change in any topic's partition count makes the
//! member rejoin so the group's assignment covers it.
//!
//! The Java consumer picks up a topic created after `subscribe` at its next metadata refresh
//! (`metadata.max.age.ms`, 5 minutes by default). A service started before its topics exist
//! should not wait that long, so while a subscribed topic is missing its metadata is asked
//! for every [`TOPIC_CHECK_INTERVAL`]; topics that exist cost nothing extra (the cached
//! snapshot is compared, refreshed by the client every `metadata.max.age.ms`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::client::metadata::TopicsQuery;
use crate::consumer::Shared;

/// How often a group member checks its subscribed topics: a topic created after
/// `subscribe` is consumed within about this long (plus a rebalance).
pub(crate) const TOPIC_CHECK_INTERVAL: Duration = Duration::from_secs(3);

/// The partition count of each subscribed topic (0 when it does not exist), refreshing the
/// metadata of missing ones first. Warns once per topic that is missing.
pub(crate) async fn check_topics(
    shared: &Shared,
    topics: &[String],
    warned: &mut BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let client = &shared.client.inner;
    let counts = |snapshot: &crate::client::metadata::Snapshot| -> BTreeMap<String, usize> {
        topics
            .iter()
            .map(|t| {
                let n = snapshot
                    .cluster
                    .topic(t)
                    .filter(|m| m.error.is_none())
                    .map_or(0, |m| m.partitions.len());
                (t.clone(), n)
            })
            .collect()
    };
    let mut now = counts(&client.metadata.snapshot());
    let missing: Vec<String> = now
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(t, _)| t.clone())
        .collect();
    if missing.is_empty() {
        return now;
    }
    match client
        .refresh_metadata(TopicsQuery::Some(missing), None)
        .await
    {
        Ok(snapshot) => now = counts(&snapshot),
        Err(e) => debug!(error = %e, "metadata refresh for missing subscribed topics failed"),
    }
    for (topic, n) in &now {
        if *n == 0 {
            if warned.insert(topic.clone()) {
                warn!(
                    topic = %topic,
                    "subscribed topic {topic} does not exist (yet): it is consumed once it is \
                     created (checked every {} s)",
                    TOPIC_CHECK_INTERVAL.as_secs()
                );
            }
        } else if warned.remove(topic) {
            info!(topic = %topic, partitions = n, "subscribed topic {topic} now exists");
        }
    }
    now
}
