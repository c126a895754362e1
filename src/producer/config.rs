//! Producer settings: defaults (the Java client's), property names, and `build()`-time checks.

use std::time::Duration;

use crate::compression::Compression;
use crate::config::{parse_bool, parse_int, parse_ms};
use crate::error::{Error, Result};

/// How many replicas must acknowledge a write before it counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Acks {
    /// `acks=0`: fire and forget. The broker sends no response; offsets are unknown (-1).
    None,
    /// `acks=1`: the partition leader has written the records.
    Leader,
    /// `acks=all` (-1): every in-sync replica has them. Required for idempotence.
    All,
}

impl Acks {
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    fn parse(value: &str) -> Result<Acks> {
        match value.trim().to_ascii_lowercase().as_str() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(Error::config(format!(
                "acks: `{value}` is not one of 0, 1, all, -1"
            ))),
        }
    }
}

/// Producer configuration, filled by `ProducerBuilder`.
#[derive(Debug, Clone)]
pub(crate) struct ProducerConfig {
    /// `acks`; `None` until set, so idempotence can decide the default.
    pub(crate) acks: Option<Acks>,
    /// `enable.idempotence`; `None` = default (on unless acks was set to 0 or 1).
    pub(crate) idempotence: Option<bool>,
    /// `linger.ms`: how long a batch waits for more records before it is sent.
    pub(crate) linger: Duration,
    /// `batch.size`: a batch is sent once it reaches this many bytes.
    pub(crate) batch_size: usize,
    /// `max.request.size`: the largest ProduceRequest; bounds one record too.
    pub(crate) max_request_size: usize,
    /// `buffer.memory`: bytes of records that may wait for delivery; `send` awaits beyond.
    pub(crate) buffer_memory: usize,
    /// `delivery.timeout.ms`: from `send` to the final outcome, retries included.
    pub(crate) delivery_timeout: Duration,
    /// `max.block.ms`: how long `send` may wait for metadata of an unknown topic.
    pub(crate) max_block: Duration,
    /// `max.in.flight.requests.per.connection`.
    pub(crate) max_in_flight: usize,
    /// `compression.type` / `compression.codec`.
    pub(crate) compression: Compression,
    /// `compression.level`; `None` = the codec's default.
    pub(crate) compression_level: Option<i32>,
    /// `partitioner`: the built-in partitioner's name when given as a property.
    pub(crate) partitioner: Option<String>,
    /// `transactional.id`: makes the producer transactional.
    pub(crate) transactional_id: Option<String>,
    /// `transaction.timeout.ms`: the coordinator aborts a transaction open longer than this.
    pub(crate) transaction_timeout: Duration,
    /// `retries`: how often a batch is re-sent after a retriable error; `delivery.timeout.ms`
    /// bounds the retries whatever this says (Java's semantics; default `i32::MAX`).
    pub(crate) retries: u32,
    /// `ProducerBuilder::on_delivery`: told every record's outcome.
    pub(crate) on_delivery: Option<super::report::DeliveryHandler>,
    /// Tests: runs on a compression thread before a batch of this many bytes is compressed (to
    /// delay it, or to fail it with the error returned).
    #[cfg(test)]
    pub(crate) seal_hook: Option<fn(usize) -> Result<()>>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: None,
            idempotence: None,
            // Kafka 4.0's default (KIP-1030): a few ms of batching costs little latency and
            // multiplies throughput.
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            max_request_size: 1_048_576,
            buffer_memory: 32 * 1024 * 1024,
            delivery_timeout: Duration::from_millis(120_000),
            max_block: Duration::from_millis(60_000),
            max_in_flight: 5,
            compression: Compression::None,
            compression_level: None,
            partitioner: None,
            transactional_id: None,
            transaction_timeout: Duration::from_millis(60_000),
            retries: i32::MAX as u32,
            on_delivery: None,
            #[cfg(test)]
            seal_hook: None,
        }
    }
}

/// Producer property names, for unknown-key suggestions.
pub(crate) const PRODUCER_KEYS: &[&str] = &[
    "acks",
    "enable.idempotence",
    "linger.ms",
    "batch.size",
    "max.request.size",
    "buffer.memory",
    "delivery.timeout.ms",
    "max.block.ms",
    "max.in.flight.requests.per.connection",
    "compression.type",
    "compression.codec",
    "compression.level",
    "partitioner",
    "transactional.id",
    "transaction.timeout.ms",
    "retries",
    "partitioner.class",
];

/// The Java client's built-in partitioner classes and the names they map to. Java 3.3+
/// deprecated `DefaultPartitioner` and `UniformStickyPartitioner` in favour of the built-in
/// logic, which is what `default` is here (sticky for keyless records, murmur2 for keys).
const JAVA_PARTITIONERS: &[(&str, &str)] = &[
    (
        "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
        "default",
    ),
    (
        "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        "round_robin",
    ),
];

impl ProducerConfig {
    /// Applies one producer property; `Ok(false)` if the key is not a producer key.
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<bool> {
        match key {
            "acks" | "request.required.acks" => self.acks = Some(Acks::parse(value)?),
            "enable.idempotence" => self.idempotence = Some(parse_bool(key, value)?),
            // Negative linger is rejected here, as Java does (range 0..).
            "linger.ms" | "queue.buffering.max.ms" => {
                self.linger = parse_ms(key, value, 0, 900_000)?
            }
            "batch.size" => self.batch_size = parse_int(key, value, 1, i32::MAX as i64)? as usize,
            "max.request.size" | "message.max.bytes" => {
                self.max_request_size = parse_int(key, value, 1_000, i32::MAX as i64)? as usize
            }
            "buffer.memory" => {
                self.buffer_memory = parse_int(key, value, 1_024, i64::MAX / 2)? as usize
            }
            "delivery.timeout.ms" | "message.timeout.ms" => {
                self.delivery_timeout = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "max.block.ms" => self.max_block = parse_ms(key, value, 0, i32::MAX as u64)?,
            "max.in.flight.requests.per.connection" | "max.in.flight" => {
                self.max_in_flight = parse_int(key, value, 1, 1_000_000)? as usize
            }
            "compression.type" | "compression.codec" => {
                self.compression = Compression::from_name(value).ok_or_else(|| {
                    Error::config(format!(
                        "{key}: `{value}` is not one of none, gzip, snappy, lz4, zstd"
                    ))
                })?
            }
            // librdkafka's range and meaning: -1 is "the codec's own default", not zstd's
            // negative level -1 (which the builder's `compression` still reaches).
            "compression.level" => {
                self.compression_level = match parse_int(key, value, -1, 22)? {
                    -1 => None,
                    level => Some(level as i32),
                }
            }
            "transactional.id" => {
                let v = value.trim();
                self.transactional_id = (!v.is_empty()).then(|| v.to_owned());
            }
            "transaction.timeout.ms" => {
                self.transaction_timeout = parse_ms(key, value, 1, i32::MAX as u64)?
            }
            "retries" | "message.send.max.retries" => {
                self.retries = parse_int(key, value, 0, i32::MAX as i64)? as u32
            }
            "partitioner.class" => {
                let class = value.trim();
                let name = JAVA_PARTITIONERS
                    .iter()
                    .find(|(c, _)| *c == class)
                    .map(|(_, name)| *name);
                match name {
                    Some(name) => self.partitioner = Some(name.to_owned()),
                    None if class.ends_with(".UniformStickyPartitioner") => {
                        return Err(Error::config(format!(
                            "{key}: `{class}` (sticky, keys ignored) is not built in: use \
                             ProducerBuilder::partitioner with a Partitioner of your own, or \
                             `partitioner=default` (sticky for keyless records, murmur2 for keys)"
                        )))
                    }
                    None => {
                        return Err(Error::config(format!(
                            "{key}: `{class}` is not a built-in partitioner class (known: {}); \
                             a partitioner of your own is set with ProducerBuilder::partitioner",
                            JAVA_PARTITIONERS
                                .iter()
                                .map(|(c, _)| *c)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )))
                    }
                }
            }
            "partitioner" => {
                let v = value.trim().to_ascii_lowercase();
                match v.as_str() {
                    "default" | "sticky" | "murmur2" | "murmur2_random" | "round_robin" | "roundrobin" => {
                        self.partitioner = Some(v)
                    }
                    _ => {
                        return Err(Error::config(format!(
                            "partitioner: `{value}` is not one of default, murmur2, murmur2_random, round_robin"
                        )))
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether idempotence is in effect: on by default, off when acks was set to 0 or 1
    /// (as in the Java client).
    pub(crate) fn idempotent(&self) -> bool {
        if self.transactional_id.is_some() {
            return true;
        }
        match self.idempotence {
            Some(v) => v,
            // As in Java: settings that contradict idempotence (acks 0/1, retries=0) turn
            // the default off instead of failing.
            None => matches!(self.acks, None | Some(Acks::All)) && self.retries > 0,
        }
    }

    pub(crate) fn effective_acks(&self) -> Acks {
        self.acks.unwrap_or(Acks::All)
    }

    /// Cross-field checks, run by `build()`.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.transactional_id.is_some() {
            if self.idempotence == Some(false) {
                return Err(Error::config(
                    "transactional.id requires idempotence (remove enable.idempotence=false)",
                ));
            }
            if self.acks.is_some_and(|a| a != Acks::All) {
                return Err(Error::config("transactional.id requires acks=all"));
            }
        }
        if self.idempotence == Some(true) && self.acks.is_some_and(|a| a != Acks::All) {
            return Err(Error::config(
                "enable.idempotence=true requires acks=all (set acks=all, or enable.idempotence=false)",
            ));
        }
        if (self.idempotence == Some(true) || self.transactional_id.is_some()) && self.retries == 0
        {
            // As in Java: without retries a transient error would leave a sequence gap.
            return Err(Error::config(
                "enable.idempotence=true requires retries > 0 (set retries, or enable.idempotence=false)",
            ));
        }
        if self.idempotent() && self.max_in_flight > 5 {
            return Err(Error::config(format!(
                "enable.idempotence requires max.in.flight.requests.per.connection <= 5 (got {})",
                self.max_in_flight
            )));
        }
        if self.batch_size > self.buffer_memory {
            return Err(Error::config(format!(
                "batch.size ({}) is larger than buffer.memory ({})",
                self.batch_size, self.buffer_memory
            )));
        }
        if self.max_request_size > self.buffer_memory {
            return Err(Error::config(format!(
                "max.request.size ({}) is larger than buffer.memory ({}): such a record could never be buffered",
                self.max_request_size, self.buffer_memory
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotence_defaults_follow_acks() {
        let mut c = ProducerConfig::default();
        assert!(c.idempotent());
        assert_eq!(c.effective_acks(), Acks::All);
        c.apply("acks", "1").unwrap();
        assert!(!c.idempotent(), "an explicit acks=1 turns idempotence off");
        c.validate().unwrap();
        c.apply("enable.idempotence", "true").unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("requires acks=all"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = ProducerConfig::default();
        for (k, v) in [
            ("linger.ms", "-1"),
            ("acks", "2"),
            ("compression.type", "brotli"),
            ("batch.size", "zero"),
            ("partitioner", "random-ish"),
        ] {
            let e = c.apply(k, v).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
        assert!(!c.apply("bootstrap.servers", "x:1").unwrap());
    }

    #[test]
    fn compression_level_minus_one_means_the_codecs_default() {
        let mut c = ProducerConfig::default();
        c.apply("compression.level", "6").unwrap();
        assert_eq!(c.compression_level, Some(6));
        c.apply("compression.level", "-1").unwrap();
        assert_eq!(c.compression_level, None);
        assert!(c.apply("compression.level", "-2").is_err());
    }

    #[test]
    fn retries_are_parsed_and_bounded() {
        let mut c = ProducerConfig::default();
        assert_eq!(c.retries, i32::MAX as u32);
        c.apply("retries", "3").unwrap();
        assert_eq!(c.retries, 3);
        c.apply("message.send.max.retries", "0").unwrap();
        assert_eq!(c.retries, 0);
        c.validate().unwrap();
        assert!(
            !c.idempotent(),
            "retries=0 turns the default idempotence off"
        );
        c.apply("enable.idempotence", "true").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("requires retries > 0"), "{e}");
        for bad in ["-1", "many"] {
            let e = c.apply("retries", bad).unwrap_err().to_string();
            assert!(e.contains("retries"), "{e}");
        }
    }

    #[test]
    fn java_partitioner_classes_map_to_the_built_in_ones() {
        let mut c = ProducerConfig::default();
        c.apply(
            "partitioner.class",
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        )
        .unwrap();
        assert_eq!(c.partitioner.as_deref(), Some("round_robin"));
        c.apply(
            "partitioner.class",
            "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
        )
        .unwrap();
        assert_eq!(c.partitioner.as_deref(), Some("default"));
        let e = c
            .apply(
                "partitioner.class",
                "org.apache.kafka.clients.producer.UniformStickyPartitioner",
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not built in") && e.contains("ProducerBuilder::partitioner"),
            "{e}"
        );
        let e = c
            .apply("partitioner.class", "com.example.MyPartitioner")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("com.example.MyPartitioner") && e.contains("RoundRobinPartitioner"),
            "{e}"
        );
    }

    #[test]
    fn in_flight_limit_with_idempotence() {
        let mut c = ProducerConfig::default();
        c.apply("max.in.flight.requests.per.connection", "6")
            .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("<= 5"));
        c.apply("enable.idempotence", "false").unwrap();
        c.validate().unwrap();
    }
}
