//! The KIP-848 heartbeat on the wire: ConsumerGroupHeartbeat requests (full or incremental),
//! their answers, and the member id a consumer makes for itself (KIP-1082).
//!
//! This layer only speaks the wire; `member848.rs` owns the membership and decides what an
//! answer or an error means. A heartbeat is a single attempt: the member retries on its own
//! schedule (the interval the broker returns, or backoff after an error).
//!
//! Full versus incremental (what Java's consumer does too): the first request of a member
//! (epoch 0) and the first one after any failed heartbeat carry every field; later ones
//! leave out what the broker already has (null on the wire), so a stable group's heartbeats
//! stay a few dozen bytes. [`SentFields`] remembers what the broker was last told.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{ApiKey, ConsumerGroupHeartbeatRequest};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use crate::consumer::coordinator::GroupCoordinator;
use crate::error::{Error, Result};
use crate::protocol::{group_id, str_bytes, topic_name};

/// A topic id (16 bytes, as the broker sends it).
pub(crate) type TopicId = [u8; 16];

/// Partitions per topic id, sorted: an assignment as the broker and the member exchange it.
pub(crate) type IdAssignment = BTreeMap<TopicId, Vec<i32>>;

/// The epoch a member sends to leave: -1 for a dynamic member, -2 for a static one (its
/// instance id stays reserved until the session timeout, so a restart gets its partitions
/// back without a rebalance).
pub(crate) fn leave_epoch(static_member: bool) -> i32 {
    if static_member {
        -2
    } else {
        -1
    }
}

/// A new member id: a random (version 4) UUID in URL-safe base64 without padding, as Java's
/// `Uuid.toString` prints it (KIP-1082: the client, not the broker, names the member, so a
/// lost answer to the first heartbeat cannot leave a ghost member behind).
pub(crate) fn new_member_id() -> String {
    loop {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).expect("the OS random source failed");
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        // Java never hands out an id starting with '-' (it would read as a command-line flag).
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// What the member subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subscription {
    /// These topic names.
    Topics(Vec<String>),
    /// Every topic whose name matches this regular expression (RE2/J syntax), evaluated by
    /// the broker (ConsumerGroupHeartbeat v1+).
    Pattern(String),
}

/// What the member wants to tell the broker in one heartbeat.
#[derive(Debug, Clone)]
pub(crate) struct Beat<'a> {
    pub(crate) group: &'a str,
    pub(crate) member_id: &'a str,
    /// 0 to join, the current epoch to stay, -1/-2 to leave.
    pub(crate) epoch: i32,
    pub(crate) instance_id: Option<&'a str>,
    pub(crate) rack_id: Option<&'a str>,
    /// `max.poll.interval.ms`: how long the broker waits for this member to revoke.
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) subscription: &'a Subscription,
    pub(crate) assignor: Option<&'a str>,
    /// The partitions the member owns now (reconciled).
    pub(crate) owned: &'a IdAssignment,
}

/// What the broker was last told, to leave unchanged fields out. Reset (everything sent
/// again) when joining and after a failed heartbeat, since the broker may not have seen it.
#[derive(Debug, Default, Clone)]
pub(crate) struct SentFields {
    subscription: Option<Subscription>,
    owned: Option<IdAssignment>,
    /// Whether the last heartbeat got an answer: the fields above are known to the broker.
    valid: bool,
}

impl SentFields {
    /// Forget what was sent: the next request is a full one.
    pub(crate) fn reset(&mut self) {
        *self = SentFields::default();
    }
}

/// A successful heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The member id the broker knows this member by (the one sent, since KIP-1082).
    pub(crate) member_id: Option<String>,
    pub(crate) epoch: i32,
    /// When to heartbeat next.
    pub(crate) interval: Duration,
    /// A new target assignment, when the broker has one for this member.
    pub(crate) assignment: Option<IdAssignment>,
}

/// Builds the request for `beat`: every field when `sent` is not valid (join, after an
/// error) or the epoch is 0; otherwise only what changed since `sent`.
pub(crate) fn build_request(
    beat: &Beat<'_>,
    sent: &SentFields,
    version: i16,
) -> Result<ConsumerGroupHeartbeatRequest> {
    let full = !sent.valid || beat.epoch == 0;
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(beat.group))
        .with_member_id(str_bytes(beat.member_id))
        .with_member_epoch(beat.epoch)
        .with_instance_id(beat.instance_id.map(str_bytes))
        .with_rebalance_timeout_ms(-1)
        .with_rack_id(None)
        .with_subscribed_topic_names(None)
        .with_subscribed_topic_regex(None)
        .with_server_assignor(None)
        .with_topic_partitions(None);
    if beat.epoch < 0 {
        // Leaving: the broker needs nothing else.
        return Ok(req);
    }
    if full {
        req.rebalance_timeout_ms = beat.rebalance_timeout_ms;
        req.rack_id = beat.rack_id.map(str_bytes);
        req.server_assignor = beat.assignor.map(str_bytes);
    }
    let sub_changed = full || sent.subscription.as_ref() != Some(beat.subscription);
    if sub_changed {
        match beat.subscription {
            Subscription::Topics(topics) => {
                req.subscribed_topic_names = Some(topics.iter().map(|t| topic_name(t)).collect());
                // Leaving a pattern for names: an empty regex clears it on the broker.
                if !full && matches!(sent.subscription, Some(Subscription::Pattern(_))) {
                    req.subscribed_topic_regex = Some(StrBytes::from_static_str(""));
                }
            }
            Subscription::Pattern(regex) => {
                if version < 1 {
                    return Err(Error::config(format!(
                        "a regex subscription (`{regex}`) needs ConsumerGroupHeartbeat v1 \
                         (Kafka 4.0+); the coordinator speaks v{version}"
                    )));
                }
                req.subscribed_topic_regex = Some(str_bytes(regex));
                // A join must name its topics (the list may be empty); a change from names to
                // a pattern must clear the names.
                if full || matches!(sent.subscription, Some(Subscription::Topics(_))) {
                    req.subscribed_topic_names = Some(Vec::new());
                }
            }
        }
    }
    if full || sent.owned.as_ref() != Some(beat.owned) {
        req.topic_partitions = Some(
            beat.owned
                .iter()
                .map(|(id, parts)| {
                    TopicPartitions::default()
                        .with_topic_id(
                            // 16 bytes always make a UUID; kafka-protocol does not
                            // re-export the uuid crate to say it more directly.
                            id.to_vec().try_into().expect("a topic id is 16 bytes"),
                        )
                        .with_partitions(parts.clone())
                })
                .collect(),
        );
    }
    Ok(req)
}

/// Sends one heartbeat and records what the broker now knows in `sent`. Any failure
/// resets `sent`, so the next heartbeat is a full one.
pub(crate) async fn heartbeat(
    coordinator: &GroupCoordinator,
    beat: &Beat<'_>,
    sent: &mut SentFields,
) -> Result<Answer> {
    debug!(
        group = beat.group,
        member = beat.member_id,
        epoch = beat.epoch,
        full = !sent.valid,
        "ConsumerGroupHeartbeat"
    );
    let snapshot = sent.clone();
    sent.reset();
    let (node, version, resp) = coordinator
        .exchange(
            ApiKey::ConsumerGroupHeartbeat,
            Duration::ZERO,
            |version, _| build_request(beat, &snapshot, version),
        )
        .await?;
    coordinator.check(
        node,
        ApiKey::ConsumerGroupHeartbeat,
        resp.error_code,
        resp.error_message.as_deref(),
        || {
            format!(
                "ConsumerGroupHeartbeat v{version} for group {} (member `{}`, epoch {})",
                beat.group, beat.member_id, beat.epoch
            )
        },
    )?;
    *sent = SentFields {
        subscription: Some(beat.subscription.clone()),
        owned: Some(beat.owned.clone()),
        valid: beat.epoch >= 0,
    };
    let assignment = resp.assignment.map(|a| {
        let mut out = IdAssignment::new();
        for t in a.topic_partitions {
            let parts = out.entry(*t.topic_id.as_bytes()).or_default();
            parts.extend(t.partitions);
            parts.sort_unstable();
            parts.dedup();
        }
        out
    });
    Ok(Answer {
        member_id: resp.member_id.map(|m| m.to_string()),
        epoch: resp.member_epoch,
        interval: Duration::from_millis(resp.heartbeat_interval_ms.max(0) as u64),
        assignment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat<'a>(sub: &'a Subscription, owned: &'a IdAssignment, epoch: i32) -> Beat<'a> {
        Beat {
            group: "g",
            member_id: "m",
            epoch,
            instance_id: None,
            rack_id: Some("r1"),
            rebalance_timeout_ms: 300_000,
            subscription: sub,
            assignor: Some("uniform"),
            owned,
        }
    }

    #[test]
    fn member_ids_are_22_url_safe_characters_and_differ() {
        let a = new_member_id();
        let b = new_member_id();
        assert_eq!(a.len(), 22, "{a}");
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(!a.starts_with('-'));
    }

    #[test]
    fn join_is_full_and_a_stable_heartbeat_leaves_everything_out() {
        let sub = Subscription::Topics(vec!["a".into(), "b".into()]);
        let owned = IdAssignment::new();
        let req = build_request(&beat(&sub, &owned, 0), &SentFields::default(), 1).unwrap();
        assert_eq!(req.member_epoch, 0);
        assert_eq!(req.rebalance_timeout_ms, 300_000);
        assert_eq!(req.rack_id.as_deref(), Some("r1"));
        assert_eq!(req.server_assignor.as_deref(), Some("uniform"));
        assert_eq!(req.subscribed_topic_names.as_ref().unwrap().len(), 2);
        assert_eq!(req.topic_partitions, Some(Vec::new()));
        assert_eq!(req.subscribed_topic_regex, None);

        let sent = SentFields {
            subscription: Some(sub.clone()),
            owned: Some(owned.clone()),
            valid: true,
        };
        let req = build_request(&beat(&sub, &owned, 3), &sent, 1).unwrap();
        assert_eq!(req.member_epoch, 3);
        assert_eq!(req.rebalance_timeout_ms, -1);
        assert_eq!(req.rack_id, None);
        assert_eq!(req.server_assignor, None);
        assert_eq!(req.subscribed_topic_names, None);
        assert_eq!(req.topic_partitions, None);

        // A reconciled assignment is acknowledged by sending the new owned set, alone.
        let mut now = IdAssignment::new();
        now.insert([7; 16], vec![0, 2]);
        let req = build_request(&beat(&sub, &now, 3), &sent, 1).unwrap();
        let tps = req.topic_partitions.unwrap();
        assert_eq!(tps.len(), 1);
        assert_eq!(tps[0].topic_id.as_bytes(), &[7; 16]);
        assert_eq!(tps[0].partitions, vec![0, 2]);
        assert_eq!(req.subscribed_topic_names, None);
    }

    #[test]
    fn patterns_need_v1_and_switching_clears_the_other_kind() {
        let pattern = Subscription::Pattern("orders-.*".into());
        let owned = IdAssignment::new();
        let e = build_request(&beat(&pattern, &owned, 0), &SentFields::default(), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("v1"), "{e}");
        let req = build_request(&beat(&pattern, &owned, 0), &SentFields::default(), 1).unwrap();
        assert_eq!(req.subscribed_topic_regex.as_deref(), Some("orders-.*"));
        assert_eq!(req.subscribed_topic_names, Some(Vec::new()));

        let topics = Subscription::Topics(vec!["x".into()]);
        let sent = SentFields {
            subscription: Some(pattern.clone()),
            owned: Some(owned.clone()),
            valid: true,
        };
        let req = build_request(&beat(&topics, &owned, 5), &sent, 1).unwrap();
        assert_eq!(req.subscribed_topic_regex.as_deref(), Some(""));
        assert_eq!(req.subscribed_topic_names.unwrap().len(), 1);
    }

    #[test]
    fn leaving_sends_only_the_identity() {
        let sub = Subscription::Topics(vec!["a".into()]);
        let mut owned = IdAssignment::new();
        owned.insert([1; 16], vec![0]);
        let req = build_request(
            &Beat {
                instance_id: Some("i-1"),
                ..beat(&sub, &owned, leave_epoch(true))
            },
            &SentFields::default(),
            1,
        )
        .unwrap();
        assert_eq!(req.member_epoch, -2);
        assert_eq!(req.instance_id.as_deref(), Some("i-1"));
        assert_eq!(req.subscribed_topic_names, None);
        assert_eq!(req.topic_partitions, None);
        assert_eq!(leave_epoch(false), -1);
    }
}
