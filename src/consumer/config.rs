//! Consumer settings: defaults (the Java client's), property names, and `build()`-time checks.

use std::time::Duration;

use crate::config::{parse_bool, parse_int, parse_ms};
use crate::error::{Error, Result};

/// What to do when a partition has no committed offset, or its offset is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OffsetReset {
    /// Start from the oldest record still in the log.
    Earliest,
    /// Start after the newest record: only records written from now on.
    Latest,
    /// Fail: `recv` returns [`Error::NoOffset`](crate::Error::NoOffset) for the partition.
    None,
}

impl OffsetReset {
    fn parse(key: &str, value: &str) -> Result<OffsetReset> {
        match value.trim().to_ascii_lowercase().as_str() {
            // librdkafka's aliases too, so its configs carry over unchanged.
            "earliest" | "smallest" | "beginning" => Ok(OffsetReset::Earliest),
            "latest" | "largest" | "end" => Ok(OffsetReset::Latest),
            "none" | "error" => Ok(OffsetReset::None),
            _ => Err(Error::config(format!(
                "{key}: `{value}` is not one of earliest, latest, none"
            ))),
        }
    }
}

/// Which records a consumer may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions (Java's default).
    ReadUncommitted,
    /// Only records of committed transactions, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    pub(crate) fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// `group.protocol`: how the consumer takes part in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum GroupProtocol {
    /// JoinGroup/SyncGroup/Heartbeat, client-side assignors (the default).
    #[default]
    Classic,
    /// KIP-848: ConsumerGroupHeartbeat, assignment computed by the broker, incremental
    /// reconciliation (Kafka 4.0+).
    Consumer,
}

/// Keys that only mean something to the classic protocol: set together with
/// `group.protocol=consumer` they fail `build()`, as in the Java client.
const CLASSIC_ONLY_KEYS: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
];

/// Consumer configuration, filled by `ConsumerBuilder`.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerConfig {
    /// `group.id`: needed for `subscribe` and for committing offsets.
    pub(crate) group_id: Option<String>,
    /// `group.instance.id`: static membership (KIP-345).
    pub(crate) group_instance_id: Option<String>,
    /// `session.timeout.ms`: the coordinator drops a member it has not heard from for this long.
    pub(crate) session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub(crate) heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest the application may go without calling `recv`.
    pub(crate) max_poll_interval: Duration,
    /// `enable.auto.commit`.
    pub(crate) auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub(crate) auto_commit_interval: Duration,
    /// `auto.offset.reset`.
    pub(crate) offset_reset: OffsetReset,
    /// `fetch.min.bytes`.
    pub(crate) fetch_min_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub(crate) fetch_max_wait: Duration,
    /// `fetch.max.bytes`: the most one Fetch response may carry.
    pub(crate) fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub(crate) max_partition_fetch_bytes: i32,
    /// `fetch.buffer.bytes`: one budget for every prefetched byte, whatever the partition
    /// count (librdkafka: `queued.max.messages.kbytes`).
    pub(crate) fetch_buffer_bytes: usize,
    /// Deliveries of one partition that may wait for the application (the one it is reading
    /// included) before the partition is fetched again: 2 keeps one fetch ahead of the
    /// application per partition (the Java consumer keeps none: it fetches a partition only
    /// once its buffered records are used up). Not a property: tests lift it to see the
    /// budget alone at work.
    pub(crate) max_queued: usize,
    /// `fetch.connections.per.broker`: Fetch requests in flight to one broker at once, each
    /// on a socket of its own and for a disjoint set of partitions (1: one Fetch per broker,
    /// as the Java client and librdkafka do).
    pub(crate) fetch_connections: u32,
    /// `isolation.level`.
    pub(crate) isolation: IsolationLevel,
    /// `check.crcs`: verify each batch's CRC-32C (off only for brokers that write CRC 0).
    pub(crate) check_crcs: bool,
    /// `partition.assignment.strategy`: assignor names, preferred first.
    pub(crate) assignors: Vec<String>,
    /// `enable.auto.offset.store` (librdkafka): `true` stores each record's offset + 1 as it
    /// is handed out; `false` leaves storing to `Consumer::store_offset(s)`, and commits
    /// (auto and `commit()`) send only what was stored.
    pub(crate) auto_offset_store: bool,
    /// `max.poll.records`: the most records one `recv_batch` hands out; `None`: no cap
    /// beyond `recv_batch`'s own argument.
    pub(crate) max_poll_records: Option<usize>,
    /// `client.rack`: sent as Fetch's rack id (v11+, KIP-392) and in the JoinGroup
    /// subscription (v3, KIP-881) for rack-aware assignment.
    pub(crate) client_rack: Option<String>,
    /// `group.protocol`.
    pub(crate) group_protocol: GroupProtocol,
    /// `group.remote.assignor`: the broker-side assignor a KIP-848 member asks for (`None`:
    /// the broker's default).
    pub(crate) remote_assignor: Option<String>,
    /// Classic-only keys that were set explicitly, so `validate` can name them.
    pub(crate) classic_keys_set: Vec<&'static str>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            group_instance_id: None,
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            offset_reset: OffsetReset::Latest,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            fetch_buffer_bytes: 64 * 1024 * 1024,
            max_queued: 2,
            fetch_connections: 2,
            isolation: IsolationLevel::ReadUncommitted,
            check_crcs: true,
            assignors: vec!["range".to_owned()],
            auto_offset_store: true,
            max_poll_records: None,
            client_rack: None,
            group_protocol: GroupProtocol::Classic,
            remote_assignor: None,
            classic_keys_set: Vec::new(),
        }
    }
}

/// The most `fetch.connections.per.broker` allows.
const MAX_FETCH_CONNECTIONS: i64 = crate::client::pool::MAX_FETCH_LANE as i64 + 1;

/// Consumer property names, for unknown-key suggestions.
pub(crate) const CONSUMER_KEYS: &[&str] = &[
    "group.id",
    "group.instance.id",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "fetch.min.bytes",
    "fetch.max.wait.ms",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.buffer.bytes",
    "fetch.connections.per.broker",
    "isolation.level",
    "check.crcs",
    "partition.assignment.strategy",
    "enable.auto.offset.store",
    "max.poll.records",
    "client.rack",
    "group.protocol",
    "group.remote.assignor",
];

impl ConsumerConfig {
    /// Applies one consumer property; `Ok(false)` if the key is not a consumer key.
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<bool> {
        if let Some(k) = CLASSIC_ONLY_KEYS.iter().find(|k| **k == key) {
            if !self.classic_keys_set.contains(k) {
                self.classic_keys_set.push(k);
            }
        }
        match key {
            "group.protocol" => {
                self.group_protocol = match value.trim().to_ascii_lowercase().as_str() {
                    "classic" => GroupProtocol::Classic,
                    "consumer" => GroupProtocol::Consumer,
                    _ => {
                        return Err(Error::config(format!(
                            "{key}: `{value}` is not one of classic, consumer"
                        )))
                    }
                }
            }
            "group.remote.assignor" => self.remote_assignor = non_empty(value),
            "group.id" => self.group_id = non_empty(value),
            "group.instance.id" => self.group_instance_id = non_empty(value),
            "session.timeout.ms" => {
                self.session_timeout = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "heartbeat.interval.ms" => {
                self.heartbeat_interval = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "max.poll.interval.ms" => {
                self.max_poll_interval = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "enable.auto.commit" => self.auto_commit = parse_bool(key, value)?,
            "auto.commit.interval.ms" => {
                self.auto_commit_interval = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "auto.offset.reset" => self.offset_reset = OffsetReset::parse(key, value)?,
            "fetch.min.bytes" => {
                self.fetch_min_bytes = parse_int(key, value, 0, i32::MAX as i64)? as i32
            }
            "fetch.max.wait.ms" | "fetch.wait.max.ms" => {
                self.fetch_max_wait = parse_ms(key, value, 0, i32::MAX as u64)?
            }
            "fetch.max.bytes" => {
                self.fetch_max_bytes = parse_int(key, value, 1_024, i32::MAX as i64)? as i32
            }
            "max.partition.fetch.bytes" => {
                self.max_partition_fetch_bytes = parse_int(key, value, 1, i32::MAX as i64)? as i32
            }
            "fetch.buffer.bytes" => {
                self.fetch_buffer_bytes = parse_int(key, value, 1_024, i64::MAX / 2)? as usize
            }
            "fetch.connections.per.broker" => {
                self.fetch_connections = parse_int(key, value, 1, MAX_FETCH_CONNECTIONS)? as u32
            }
            "isolation.level" => {
                self.isolation = match value.trim().to_ascii_lowercase().as_str() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => {
                        return Err(Error::config(format!(
                            "{key}: `{value}` is not one of read_uncommitted, read_committed"
                        )))
                    }
                }
            }
            "check.crcs" => self.check_crcs = parse_bool(key, value)?,
            "enable.auto.offset.store" => self.auto_offset_store = parse_bool(key, value)?,
            "max.poll.records" => {
                self.max_poll_records = Some(parse_int(key, value, 1, i32::MAX as i64)? as usize)
            }
            "client.rack" => self.client_rack = non_empty(value),
            "partition.assignment.strategy" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(Error::config(format!("{key}: no assignor given")));
                }
                self.assignors = names;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Cross-field checks, run by `build()`.
    pub(crate) fn validate(&self) -> Result<()> {
        match self.group_protocol {
            GroupProtocol::Consumer => {
                if let Some(key) = self.classic_keys_set.first() {
                    // The broker owns these under KIP-848 (group.consumer.* settings); a
                    // value the client would silently ignore is a migration left half done.
                    return Err(Error::config(format!(
                        "{key} is not supported when group.protocol=consumer (the broker's \
                         group.consumer.* settings apply)"
                    )));
                }
            }
            GroupProtocol::Classic => {
                if self.remote_assignor.is_some() {
                    return Err(Error::config(
                        "group.remote.assignor is only supported when group.protocol=consumer",
                    ));
                }
            }
        }
        if self.heartbeat_interval >= self.session_timeout {
            return Err(Error::config(format!(
                "heartbeat.interval.ms ({} ms) must be lower than session.timeout.ms ({} ms)",
                self.heartbeat_interval.as_millis(),
                self.session_timeout.as_millis()
            )));
        }
        if !(1..=MAX_FETCH_CONNECTIONS).contains(&i64::from(self.fetch_connections)) {
            return Err(Error::config(format!(
                "fetch.connections.per.broker ({}) must be between 1 and {MAX_FETCH_CONNECTIONS}",
                self.fetch_connections
            )));
        }
        if self.group_instance_id.is_some() && self.group_id.is_none() {
            return Err(Error::config("group.instance.id requires group.id"));
        }
        if (self.fetch_max_bytes as usize) > self.fetch_buffer_bytes {
            return Err(Error::config(format!(
                "fetch.max.bytes ({}) is larger than fetch.buffer.bytes ({}): one response \
                 could never fit the prefetch budget",
                self.fetch_max_bytes, self.fetch_buffer_bytes
            )));
        }
        Ok(())
    }
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_key() {
        let mut c = ConsumerConfig::default();
        for (k, v) in [
            ("auto.offset.reset", "sometimes"),
            ("session.timeout.ms", "-5"),
            ("isolation.level", "serializable"),
            ("enable.auto.commit", "yes please"),
        ] {
            let e = c.apply(k, v).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
        assert!(!c.apply("acks", "1").unwrap());
    }

    #[test]
    fn cross_field_checks() {
        let mut c = ConsumerConfig::default();
        c.validate().unwrap();
        c.apply("heartbeat.interval.ms", "50000").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("heartbeat.interval.ms"), "{e}");
        let mut c = ConsumerConfig::default();
        c.apply("group.instance.id", "a").unwrap();
        assert!(c.validate().is_err());
        c.apply("group.id", "g").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn fetch_connections_set_by_the_typed_setter_are_validated_too() {
        let mut c = ConsumerConfig::default();
        for bad in [0, 9] {
            c.fetch_connections = bad;
            let e = c.validate().unwrap_err();
            assert!(
                e.to_string().contains("fetch.connections.per.broker"),
                "{e}"
            );
        }
        c.fetch_connections = 8;
        c.validate().unwrap();
    }

    #[test]
    fn fetch_connections_per_broker_is_bounded_by_the_lanes_the_pool_has() {
        let mut c = ConsumerConfig::default();
        assert_eq!(c.fetch_connections, 2);
        c.apply("fetch.connections.per.broker", "1").unwrap();
        assert_eq!(c.fetch_connections, 1);
        c.apply("fetch.connections.per.broker", "8").unwrap();
        assert_eq!(c.fetch_connections, 8);
        for bad in ["0", "9", "two"] {
            let e = c.apply("fetch.connections.per.broker", bad).unwrap_err();
            assert!(
                e.to_string().contains("fetch.connections.per.broker"),
                "{e}"
            );
        }
    }

    #[test]
    fn service_keys_are_accepted() {
        let mut c = ConsumerConfig::default();
        assert!(c.auto_offset_store);
        assert_eq!(c.max_poll_records, None);
        assert_eq!(c.client_rack, None);
        c.apply("enable.auto.offset.store", "false").unwrap();
        c.apply("max.poll.records", "7").unwrap();
        c.apply("client.rack", "eu-west-1a").unwrap();
        assert!(!c.auto_offset_store);
        assert_eq!(c.max_poll_records, Some(7));
        assert_eq!(c.client_rack.as_deref(), Some("eu-west-1a"));
        for (k, v) in [
            ("max.poll.records", "0"),
            ("enable.auto.offset.store", "maybe"),
        ] {
            let e = c.apply(k, v).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn classic_only_keys_fail_with_the_consumer_protocol() {
        for key in CLASSIC_ONLY_KEYS {
            let mut c = ConsumerConfig::default();
            c.apply("group.protocol", "consumer").unwrap();
            let value = if *key == "partition.assignment.strategy" {
                "range"
            } else {
                "10000"
            };
            c.apply(key, value).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("group.protocol=consumer"),
                "{e}"
            );
        }
        let mut c = ConsumerConfig::default();
        c.apply("group.protocol", "CONSUMER").unwrap();
        c.apply("group.remote.assignor", "uniform").unwrap();
        c.validate().unwrap();
        assert_eq!(c.group_protocol, GroupProtocol::Consumer);
        assert_eq!(c.remote_assignor.as_deref(), Some("uniform"));
        let mut c = ConsumerConfig::default();
        c.apply("group.remote.assignor", "uniform").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("group.remote.assignor"), "{e}");
        let e = c.apply("group.protocol", "modern").unwrap_err().to_string();
        assert!(e.contains("group.protocol"), "{e}");
    }

    #[test]
    fn librdkafka_aliases() {
        let mut c = ConsumerConfig::default();
        c.apply("auto.offset.reset", "smallest").unwrap();
        assert_eq!(c.offset_reset, OffsetReset::Earliest);
        c.apply("partition.assignment.strategy", "cooperative-sticky")
            .unwrap();
        assert_eq!(c.assignors, vec!["cooperative-sticky".to_owned()]);
    }
}
