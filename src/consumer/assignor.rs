//! Partition assignors and the consumer protocol (subscription/assignment metadata).
//!
//! In the classic group protocol the broker does not look inside what members say: every
//! member sends a *subscription* in JoinGroup, the leader (one of the members) runs a partition
//! assignor over all of them and hands each member an *assignment* through SyncGroup. For a
//! group to mix ferrokafka, librdkafka and Java members, all of them have to agree on two
//! things, both here:
//!
//! - **The bytes.** Subscription and assignment are kafka-protocol's
//!   `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment`, prefixed by an `i16`
//!   version. Decoding follows Kafka's forward-compatibility rule (a newer version only appends
//!   fields, so it is read at the newest version known) and never trusts a length it cannot
//!   back with bytes.
//! - **The algorithms.** [`RangeAssignor`] and [`RoundRobinAssignor`] reproduce the Java
//!   client's results exactly, because members that choose the same protocol name must mean
//!   the same thing whichever of them ends up leader. [`CooperativeStickyAssignor`] only needs to
//!   honour the incremental cooperative protocol (KIP-429): its output is consumed by every
//!   member as is, so it is ferrokafka's own balanced, sticky algorithm.
//!
//! Everything here is pure and synchronous; the group task (`group.rs`) calls it while joining.

use std::cmp::{Ordering, Reverse};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};

use crate::error::{Error, Result};
use crate::protocol::topic_name;

/// The consumer protocol version of the subscriptions ferrokafka sends in JoinGroup.
///
/// Version 3, the newest kafka-protocol knows: v1 adds the owned partitions the cooperative
/// protocol needs, v2 the generation they were assigned in, v3 the rack. Both other clients
/// accept it:
///
/// - librdkafka 2.x writes version 3 itself (`rd_kafka_consumer_protocol_member_metadata_new`
///   in `src/rdkafka_assignor.c`) and, as leader, reads each field only when the version
///   carries it (`rd_kafka_group_MemberMetadata_consumer_read` in `src/rdkafka_cgrp.c`).
/// - The Java client (3.x, `ConsumerProtocol.checkSubscriptionVersion`) decodes any version
///   above its own highest at that highest, so even Java releases that predate v3 read the
///   owned partitions and generation from it.
pub(crate) const SUBSCRIPTION_VERSION: i16 = 3;

/// The consumer protocol version of the assignments ferrokafka sends in SyncGroup as leader.
///
/// The assignment body is the same at every version, so the choice only matters to a reader
/// that checks the number. Version 0 is what librdkafka writes
/// (`rd_kafka_group_MemberState_consumer_write`) and what every consumer ever released reads.
pub(crate) const ASSIGNMENT_VERSION: i16 = 0;

/// What a member tells the group in JoinGroup: what it wants and what it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Subscription {
    /// The topics the member wants to consume.
    pub(crate) topics: Vec<String>,
    /// Opaque data for the leader's assignor.
    pub(crate) user_data: Option<Bytes>,
    /// The partitions the member currently owns, per topic (v1 and later).
    pub(crate) owned_partitions: Vec<(String, Vec<i32>)>,
    /// The generation `owned_partitions` was assigned in, -1 when unknown (v2 and later).
    pub(crate) generation_id: i32,
    /// The member's rack (`client.rack`), for rack-aware assignors (v3 and later).
    pub(crate) rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

/// What the leader gives a member in SyncGroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The partitions assigned, per topic.
    pub(crate) partitions: Vec<(String, Vec<i32>)>,
    /// Opaque data from the leader's assignor.
    pub(crate) user_data: Option<Bytes>,
}

/// Encodes a subscription as JoinGroup protocol metadata: `i16` version, then the body.
///
/// A version kafka-protocol does not know is clamped into its range, as the Java client does.
/// Strings longer than the wire allows (32767 bytes) cannot name a Kafka topic or rack, so such
/// topics and racks are left out rather than failing the join.
pub(crate) fn encode_subscription(subscription: &Subscription, version: i16) -> Bytes {
    let version = clamp_version::<ConsumerProtocolSubscription>(version);
    let topics = subscription
        .topics
        .iter()
        .filter(|t| fits_wire_string(t))
        .map(|t| StrBytes::from_string(t.clone()))
        .collect();
    let owned = subscription
        .owned_partitions
        .iter()
        .filter(|(t, _)| fits_wire_string(t))
        .map(|(t, ps)| {
            OwnedTopic::default()
                .with_topic(topic_name(t))
                .with_partitions(ps.clone())
        })
        .collect();
    let rack = subscription
        .rack_id
        .as_ref()
        .filter(|r| fits_wire_string(r))
        .map(|r| StrBytes::from_string(r.clone()));
    let message = ConsumerProtocolSubscription::default()
        .with_topics(topics)
        .with_user_data(subscription.user_data.clone())
        .with_owned_partitions(owned)
        .with_generation_id(subscription.generation_id)
        .with_rack_id(rack);
    version_prefixed(&message, version)
}

/// Decodes JoinGroup protocol metadata written by any consumer (ferrokafka, librdkafka, Java).
///
/// Bytes after the fields of the version read are ignored: a newer writer may have appended
/// fields this reader does not know.
pub(crate) fn decode_subscription(bytes: Bytes) -> Result<Subscription> {
    let (version, body) = split_version::<ConsumerProtocolSubscription>(bytes, "subscription")?;
    check_subscription_claims(&body, version)
        .map_err(|e| malformed("subscription", version, &e))?;
    let mut buf = body;
    let message = ConsumerProtocolSubscription::decode(&mut buf, version)
        .map_err(|e| malformed("subscription", version, &e))?;
    Ok(Subscription {
        topics: message
            .topics
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        user_data: message.user_data,
        owned_partitions: message
            .owned_partitions
            .into_iter()
            .map(|tp| (tp.topic.0.as_str().to_owned(), tp.partitions))
            .collect(),
        generation_id: message.generation_id,
        rack_id: message.rack_id.map(|r| r.as_str().to_owned()),
    })
}

/// Encodes an assignment as SyncGroup member state: `i16` version, then the body.
///
/// Versions are clamped as in [`encode_subscription`]; see [`ASSIGNMENT_VERSION`].
pub(crate) fn encode_assignment(assignment: &Assignment, version: i16) -> Bytes {
    let version = clamp_version::<ConsumerProtocolAssignment>(version);
    let partitions = assignment
        .partitions
        .iter()
        .filter(|(t, _)| fits_wire_string(t))
        .map(|(t, ps)| {
            AssignedTopic::default()
                .with_topic(topic_name(t))
                .with_partitions(ps.clone())
        })
        .collect();
    let message = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(partitions)
        .with_user_data(assignment.user_data.clone());
    version_prefixed(&message, version)
}

/// Decodes SyncGroup member state.
///
/// Empty bytes are an empty assignment: that is what the coordinator sends a member the leader
/// gave nothing (the leader may leave such members out of its SyncGroup request altogether).
pub(crate) fn decode_assignment(bytes: Bytes) -> Result<Assignment> {
    if bytes.is_empty() {
        return Ok(Assignment::default());
    }
    let (version, body) = split_version::<ConsumerProtocolAssignment>(bytes, "assignment")?;
    check_assignment_claims(&body).map_err(|e| malformed("assignment", version, &e))?;
    let mut buf = body;
    let message = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| malformed("assignment", version, &e))?;
    Ok(Assignment {
        partitions: message
            .assigned_partitions
            .into_iter()
            .map(|tp| (tp.topic.0.as_str().to_owned(), tp.partitions))
            .collect(),
        user_data: message.user_data,
    })
}

fn fits_wire_string(s: &str) -> bool {
    s.len() <= i16::MAX as usize
}

fn clamp_version<M: Message>(version: i16) -> i16 {
    version.clamp(M::VERSIONS.min, M::VERSIONS.max)
}

fn version_prefixed<M: Encodable>(message: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    // The version is in range and every string was checked against the wire limit, so the
    // only failures left are arrays or user data of 2^31 or more elements, which a consumer
    // never holds.
    message
        .encode(&mut buf, version)
        .expect("consumer protocol message within wire limits");
    buf.freeze()
}

/// Reads the version prefix and picks the version to decode the body at.
fn split_version<M: Message>(mut bytes: Bytes, what: &str) -> Result<(i16, Bytes)> {
    if bytes.len() < 2 {
        return Err(Error::protocol(format!(
            "consumer protocol {what}: {} bytes, too short for a version",
            bytes.len()
        )));
    }
    let version = bytes.get_i16();
    if version < M::VERSIONS.min {
        return Err(Error::protocol(format!(
            "consumer protocol {what}: unsupported version {version}"
        )));
    }
    // Newer versions only append fields (Kafka's rule for this protocol), so the newest
    // layout known reads them correctly.
    Ok((version.min(M::VERSIONS.max), bytes))
}

fn malformed(what: &str, version: i16, cause: &dyn fmt::Display) -> Error {
    Error::protocol(format!(
        "malformed consumer protocol {what} (read at v{version}): {cause}"
    ))
}

/// Smallest encodings of the elements of the arrays in these messages: a string is at least
/// its `i16` length, a topic entry at least an empty name and an empty partition array.
const MIN_STRING: usize = 2;
const MIN_TOPIC_ENTRY: usize = 2 + 4;
const MIN_PARTITION: usize = 4;

/// Proves, before kafka-protocol decodes the body, that no array claims more elements than the
/// bytes after it could hold.
///
/// kafka-protocol's array decoder reserves room for the claimed length before reading any
/// element, so a 10-byte input claiming 2^31 topics would ask for tens of gigabytes. Walking
/// the layout once and comparing each claim with what is left caps what the real decode can
/// reserve at a small multiple of the input's size.
fn check_subscription_claims(body: &[u8], version: i16) -> Result<(), String> {
    let mut walk = ClaimWalk { rest: body };
    for _ in 0..walk.array(MIN_STRING)? {
        walk.string()?;
    }
    walk.bytes()?;
    if version >= 1 {
        walk.topic_entries()?;
    }
    // Generation and rack follow; neither holds an array.
    Ok(())
}

/// [`check_subscription_claims`] for an assignment body.
fn check_assignment_claims(body: &[u8]) -> Result<(), String> {
    ClaimWalk { rest: body }.topic_entries()
}

/// A cursor over encoded bytes that checks lengths and skips contents.
struct ClaimWalk<'a> {
    rest: &'a [u8],
}

impl ClaimWalk<'_> {
    fn skip(&mut self, n: usize) -> Result<(), String> {
        match self.rest.get(n..) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(format!("needs {n} more bytes, {} left", self.rest.len())),
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let Some((head, rest)) = self.rest.split_first_chunk::<N>() else {
            return Err(format!("truncated: {} bytes left", self.rest.len()));
        };
        self.rest = rest;
        Ok(*head)
    }

    fn i16(&mut self) -> Result<i16, String> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.take().map(i32::from_be_bytes)
    }

    /// A nullable string (`i16` length, -1 for null); whether null is allowed is
    /// kafka-protocol's call.
    fn string(&mut self) -> Result<(), String> {
        let len = self.i16()?;
        if len > 0 {
            self.skip(len as usize)?;
        }
        Ok(())
    }

    /// Nullable bytes (`i32` length, -1 for null).
    fn bytes(&mut self) -> Result<(), String> {
        let len = self.i32()?;
        if len > 0 {
            self.skip(len as usize)?;
        }
        Ok(())
    }

    /// An array's element count, refused when that many elements of at least `min_size` bytes
    /// each cannot fit in what is left.
    fn array(&mut self, min_size: usize) -> Result<usize, String> {
        let count = self.i32()?;
        if count < 0 {
            return Err(format!("array length {count}"));
        }
        let count = count as usize;
        if count.saturating_mul(min_size) > self.rest.len() {
            return Err(format!(
                "array claims {count} elements in {} bytes",
                self.rest.len()
            ));
        }
        Ok(count)
    }

    /// `[topic [partition]]`, the shape of owned and assigned partitions.
    fn topic_entries(&mut self) -> Result<(), String> {
        for _ in 0..self.array(MIN_TOPIC_ENTRY)? {
            self.string()?;
            let partitions = self.array(MIN_PARTITION)?;
            self.skip(partitions * MIN_PARTITION)?;
        }
        Ok(())
    }
}

/// The two rebalance protocols of the classic consumer group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RebalanceProtocol {
    /// Every member gives up all its partitions before each rebalance.
    Eager,
    /// Members keep their partitions through a rebalance and give up only those that move
    /// (KIP-429); a member that gave some up rejoins so they can be handed out.
    Cooperative,
}

/// One member of the group, as the leader sees it after JoinGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    /// The member id the coordinator gave it; unique in the group.
    pub(crate) member_id: String,
    /// Its `group.instance.id`, for static members.
    pub(crate) group_instance_id: Option<String>,
    /// What it sent in JoinGroup.
    pub(crate) subscription: Subscription,
}

/// Each member id with its partitions: topics sorted by name, each topic's partitions sorted.
pub(crate) type MemberAssignments = BTreeMap<String, Vec<(String, Vec<i32>)>>;

/// A client-side partition assignment strategy.
pub(crate) trait Assignor: Send + Sync + fmt::Debug {
    /// The protocol name members offer in JoinGroup; the coordinator picks one all support.
    fn name(&self) -> &'static str;

    /// How members give up partitions when this assignor is in use.
    fn protocol(&self) -> RebalanceProtocol;

    /// Assigns the partitions of every topic some member subscribes to.
    ///
    /// `partitions_per_topic` holds the partition count of each subscribed topic the leader
    /// found in metadata; topics missing from it are skipped. Every member appears in the
    /// result, also one that gets nothing. Member ids are unique in a group; the result for
    /// duplicated ids is unspecified.
    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> MemberAssignments;
}

/// Looks an assignor up by the name in `partition.assignment.strategy`: librdkafka's names
/// (`range`, `roundrobin`, `cooperative-sticky`, in any case) or the Java class names.
pub(crate) fn assignor_by_name(name: &str) -> Option<Arc<dyn Assignor>> {
    const JAVA_PACKAGE: &str = "org.apache.kafka.clients.consumer.";
    let name = name.trim();
    let short = match name.get(..JAVA_PACKAGE.len()) {
        Some(prefix) if prefix == JAVA_PACKAGE => match &name[JAVA_PACKAGE.len()..] {
            "RangeAssignor" => "range",
            "RoundRobinAssignor" => "roundrobin",
            "CooperativeStickyAssignor" => "cooperative-sticky",
            _ => return None,
        },
        _ => name,
    };
    if short.eq_ignore_ascii_case("range") {
        Some(Arc::new(RangeAssignor))
    } else if short.eq_ignore_ascii_case("roundrobin") {
        Some(Arc::new(RoundRobinAssignor))
    } else if short.eq_ignore_ascii_case("cooperative-sticky") {
        Some(Arc::new(CooperativeStickyAssignor))
    } else {
        None
    }
}

/// Java's `String.compareTo`: UTF-16 code units, which differs from Rust's byte order only
/// for characters above U+FFFF. Used wherever Java's sort order decides who gets what.
fn java_str_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The member order of Java's assignors (`AbstractPartitionAssignor.MemberInfo`): static
/// members (those with a group instance id) first, by instance id, then the others by member
/// id. The final member id comparison only makes the order total for inputs Kafka never
/// produces (two members with one instance id).
fn java_member_cmp(a: &Member, b: &Member) -> Ordering {
    let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_str_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_instance.then_with(|| java_str_cmp(&a.member_id, &b.member_id))
}

/// A partition as the assignors handle it: (index into [`Group::topics`], partition).
type Slot = (usize, i32);

/// The assignors' common view of the group: members in Java's order, the assignable topics
/// and who subscribes to each.
struct Group<'a> {
    /// Members in [`java_member_cmp`] order; "position" below means an index here.
    members: Vec<&'a Member>,
    /// Topics that some member subscribes to and that have partitions, by name (Rust order).
    topics: Vec<(&'a str, i32)>,
    /// For each topic, the positions of its subscribers, ascending.
    subscribers: Vec<Vec<usize>>,
}

impl<'a> Group<'a> {
    fn new(members: &'a [Member], partitions_per_topic: &'a BTreeMap<String, i32>) -> Self {
        let mut ordered: Vec<&Member> = members.iter().collect();
        ordered.sort_by(|a, b| java_member_cmp(a, b));
        let wanted: BTreeSet<&str> = members
            .iter()
            .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
            .collect();
        let topics: Vec<(&str, i32)> = partitions_per_topic
            .iter()
            .filter(|&(name, &count)| count > 0 && wanted.contains(name.as_str()))
            .map(|(name, &count)| (name.as_str(), count))
            .collect();
        let mut group = Group {
            members: ordered,
            subscribers: vec![Vec::new(); topics.len()],
            topics,
        };
        for position in 0..group.members.len() {
            for topic in &group.members[position].subscription.topics {
                if let Some(t) = group.topic_index(topic) {
                    // Positions arrive in ascending order; a topic listed twice by one
                    // member would repeat the last one.
                    if group.subscribers[t].last() != Some(&position) {
                        group.subscribers[t].push(position);
                    }
                }
            }
        }
        group
    }

    fn topic_index(&self, topic: &str) -> Option<usize> {
        self.topics.binary_search_by(|(t, _)| (*t).cmp(topic)).ok()
    }

    fn subscribes(&self, position: usize, topic: usize) -> bool {
        self.subscribers[topic].binary_search(&position).is_ok()
    }

    /// Turns per-position partition sets into the result map.
    fn finish(&self, assigned: Vec<BTreeSet<Slot>>) -> MemberAssignments {
        let mut out = BTreeMap::new();
        for (position, slots) in assigned.into_iter().enumerate() {
            let mut lists: Vec<(String, Vec<i32>)> = Vec::new();
            let mut last_topic = None;
            for (t, p) in slots {
                match lists.last_mut() {
                    Some((_, partitions)) if last_topic == Some(t) => partitions.push(p),
                    _ => {
                        lists.push((self.topics[t].0.to_owned(), vec![p]));
                        last_topic = Some(t);
                    }
                }
            }
            out.insert(self.members[position].member_id.clone(), lists);
        }
        out
    }
}

/// Java's `RangeAssignor`: per topic, the subscribers in member order each get a contiguous
/// range; the first `partitions % subscribers` of them get one partition more.
///
/// Partition counts are balanced per topic, not overall: with several topics the first members
/// get the extra partition of each.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> MemberAssignments {
        let group = Group::new(members, partitions_per_topic);
        let mut assigned = vec![BTreeSet::new(); group.members.len()];
        for (t, &(_, count)) in group.topics.iter().enumerate() {
            let subscribers = &group.subscribers[t];
            if subscribers.is_empty() {
                continue;
            }
            let each = count / subscribers.len() as i32;
            let extra = count % subscribers.len() as i32;
            for (i, &position) in subscribers.iter().enumerate() {
                let i = i as i32;
                let start = each * i + i.min(extra);
                let len = each + i32::from(i < extra);
                assigned[position].extend((start..start + len).map(|p| (t, p)));
            }
        }
        group.finish(assigned)
    }
}

/// Java's `RoundRobinAssignor`: all partitions, by topic (Java's string order) then number,
/// dealt to the members in member order, passing over a member not subscribed to the
/// partition's topic.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> MemberAssignments {
        let group = Group::new(members, partitions_per_topic);
        let mut assigned = vec![BTreeSet::new(); group.members.len()];
        let mut topic_order: Vec<usize> = (0..group.topics.len()).collect();
        topic_order.sort_by(|&a, &b| java_str_cmp(group.topics[a].0, group.topics[b].0));
        let mut next = 0;
        for t in topic_order {
            if group.subscribers[t].is_empty() {
                continue;
            }
            for p in 0..group.topics[t].1 {
                // Ends: the topic has a subscriber.
                while !group.subscribes(next, t) {
                    next = (next + 1) % group.members.len();
                }
                assigned[next].insert((t, p));
                next = (next + 1) % group.members.len();
            }
        }
        group.finish(assigned)
    }
}

/// A balanced, sticky assignor for the cooperative protocol.
///
/// 1. **Ownership.** A partition belongs to the member that claims it in its subscription's
///    owned partitions. When several claim it, the claim from the highest generation wins (a
///    member that missed a rebalance still lists what it had before); among equal generations
///    the first member in member order wins.
/// 2. **Keep.** Every owner keeps its partitions of topics it still subscribes to.
/// 3. **Fill.** Partitions nobody keeps go, one at a time, to the subscriber with the fewest
///    partitions; partitions of topics with fewer subscribers go first, since they have fewer
///    places to go.
/// 4. **Balance.** While some member has at least two more partitions than a member that could
///    take one of them, one moves from the fullest such member to the emptiest taker, partitions
///    that did not belong to the giver first. Each move shrinks the sum of squared counts, so
///    this ends; with identical subscriptions it ends with counts within one of each other, and
///    moves no more partitions than that requires.
/// 5. **Withhold.** A partition that ends up with another member than its owner is left out of
///    this round (KIP-429): the owner sees it gone, revokes it and rejoins, and the next
///    rebalance, where nobody owns it, hands it out.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        members: &[Member],
        partitions_per_topic: &BTreeMap<String, i32>,
    ) -> MemberAssignments {
        let group = Group::new(members, partitions_per_topic);
        let owners = owners(&group);
        let mut held = Holdings::new(group.members.len());
        for (&slot, &(owner, _)) in &owners {
            if group.subscribes(owner, slot.0) {
                held.owned[owner].insert(slot);
            }
        }
        fill(&group, &mut held);
        balance(&group, &owners, &mut held);
        let assigned = held
            .owned
            .into_iter()
            .zip(held.other)
            .map(|(mut owned, other)| {
                // What a member holds but did not own is withheld if somebody else owns it.
                owned.extend(other.into_iter().filter(|slot| !owners.contains_key(slot)));
                owned
            })
            .collect();
        group.finish(assigned)
    }
}

/// The generation a member's owned partitions date from. Subscriptions before v2 have no
/// field for it; the Java cooperative-sticky assignor then sends it as its whole user data, a
/// bare big-endian `i32`. Other user data (librdkafka's sticky data is longer) is not read.
fn claim_generation(subscription: &Subscription) -> i32 {
    if subscription.generation_id >= 0 {
        return subscription.generation_id;
    }
    match subscription.user_data.as_deref() {
        Some(&[a, b, c, d]) => i32::from_be_bytes([a, b, c, d]),
        _ => -1,
    }
}

/// Step 1 of [`CooperativeStickyAssignor`]: the owner (position, generation) of each claimed
/// partition of an assignable topic.
fn owners(group: &Group<'_>) -> BTreeMap<Slot, (usize, i32)> {
    let mut owners = BTreeMap::new();
    for (position, member) in group.members.iter().enumerate() {
        let generation = claim_generation(&member.subscription);
        for (topic, partitions) in &member.subscription.owned_partitions {
            let Some(t) = group.topic_index(topic) else {
                continue;
            };
            for &p in partitions {
                if !(0..group.topics[t].1).contains(&p) {
                    continue;
                }
                match owners.entry((t, p)) {
                    Entry::Vacant(e) => {
                        e.insert((position, generation));
                    }
                    Entry::Occupied(mut e) => {
                        if generation > e.get().1 {
                            e.insert((position, generation));
                        }
                    }
                }
            }
        }
    }
    owners
}

/// What each member holds while [`CooperativeStickyAssignor`] works, split by whether the
/// member owned it before. Handing on a partition its holder did not own costs nobody a
/// revocation, so those are the first to move.
struct Holdings {
    /// Partitions a member keeps from its own owned partitions.
    owned: Vec<BTreeSet<Slot>>,
    /// Partitions a member got that it did not own.
    other: Vec<BTreeSet<Slot>>,
}

impl Holdings {
    fn new(members: usize) -> Self {
        Holdings {
            owned: vec![BTreeSet::new(); members],
            other: vec![BTreeSet::new(); members],
        }
    }

    fn count(&self, member: usize) -> usize {
        self.owned[member].len() + self.other[member].len()
    }

    /// The subscriber (other than `except`) holding the fewest partitions; the first in
    /// member order on a tie.
    fn emptiest(&self, candidates: &[usize], except: usize) -> Option<usize> {
        candidates
            .iter()
            .copied()
            .filter(|&c| c != except)
            .min_by_key(|&c| self.count(c))
    }
}

/// Step 3 of [`CooperativeStickyAssignor`].
fn fill(group: &Group<'_>, held: &mut Holdings) {
    let taken: BTreeSet<Slot> = held.owned.iter().flatten().copied().collect();
    let mut free: Vec<Slot> = group
        .topics
        .iter()
        .enumerate()
        .flat_map(|(t, &(_, count))| (0..count).map(move |p| (t, p)))
        .filter(|slot| !taken.contains(slot))
        .collect();
    free.sort_by_key(|&(t, p)| (group.subscribers[t].len(), t, p));
    for slot in free {
        // Every topic in the group has a subscriber.
        if let Some(to) = held.emptiest(&group.subscribers[slot.0], usize::MAX) {
            held.other[to].insert(slot);
        }
    }
}

/// Step 4 of [`CooperativeStickyAssignor`].
fn balance(group: &Group<'_>, owners: &BTreeMap<Slot, (usize, i32)>, held: &mut Holdings) {
    let members = held.owned.len();
    let mut givers: Vec<usize> = (0..members).collect();
    loop {
        let Some(fewest) = (0..members).map(|m| held.count(m)).min() else {
            return;
        };
        givers.sort_by_key(|&m| (Reverse(held.count(m)), m));
        let mut chosen = None;
        'search: for &from in &givers {
            let have = held.count(from);
            if have < fewest + 2 {
                // Sorted by count: nobody after this one can give either.
                break;
            }
            for (giving_owned, pool) in [(false, &held.other[from]), (true, &held.owned[from])] {
                // Partitions come grouped by topic, and the taker depends only on the topic.
                let mut taker: Option<(usize, Option<usize>)> = None;
                for &slot in pool.iter().rev() {
                    let to = match taker {
                        Some((t, to)) if t == slot.0 => to,
                        _ => {
                            let to = held.emptiest(&group.subscribers[slot.0], from);
                            taker = Some((slot.0, to));
                            to
                        }
                    };
                    if let Some(to) = to.filter(|&to| held.count(to) + 2 <= have) {
                        chosen = Some((from, giving_owned, to, slot));
                        break 'search;
                    }
                }
            }
        }
        let Some((from, giving_owned, to, slot)) = chosen else {
            return;
        };
        if giving_owned {
            held.owned[from].remove(&slot);
        } else {
            held.other[from].remove(&slot);
        }
        if owners.get(&slot).is_some_and(|&(owner, _)| owner == to) {
            held.owned[to].insert(slot);
        } else {
            held.other[to].insert(slot);
        }
    }
}

#[cfg(test)]
#[path = "assignor_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "assignor_codec_tests.rs"]
mod codec_tests;
