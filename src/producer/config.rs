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
            "compression.level" => {
                self.compression_level = Some(parse_int(key, value, -1, 22)? as i32)
            }
            "transactional.id" => {
                let v = value.trim();
                self.transactional_id = (!v.is_empty()).then(|| v.to_owned());
            }
            "transaction.timeout.ms" => {
                self.transaction_timeout = parse_ms(key, value, 1, i32::MAX as u64)?
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
            None => matches!(self.acks, None | Some(Acks::All)),
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
    fn in_flight_limit_with_idempotence() {
        let mut c = ProducerConfig::default();
        c.apply("max.in.flight.requests.per.connection", "6")
            .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("<= 5"));
        c.apply("enable.idempotence", "false").unwrap();
        c.validate().unwrap();
    }
}
