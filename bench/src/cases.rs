//! The produce cases, and the settings every client gets for them.
//!
//! Common to every case and client, where the client has the setting:
//! linger 5 ms, batch size 1,000,000 bytes (librdkafka's default `batch.size`), a 32 MiB
//! budget of buffered record bytes (ferrokafka `buffer.memory`, librdkafka
//! `queue.buffering.max.kbytes=32768`, rskafka: at most 32 MiB of records in outstanding
//! `produce` futures), at most 5 requests in flight per connection, 12 partitions.
//!
//! A `tls` case runs only against `--kafka`, over its SASL_SSL listener (SCRAM-SHA-512), and
//! only with ferrokafka, rdkafka and krafka: the bench builds rskafka without its `transport-tls`
//! feature and confluent-kafka without `rustls` (see `Cargo.toml`).

use crate::common::BenchCase;

/// Partitions of every benchmark topic.
pub const PARTITIONS: i32 = 12;
/// `linger.ms`.
pub const LINGER_MS: u64 = 5;
/// `batch.size` in bytes (`--batch-size` overrides it).
pub const BATCH_SIZE: usize = 1_000_000;
/// Bytes of records a client may hold undelivered (`buffer.memory`).
pub const BUDGET: usize = 32 * 1024 * 1024;
/// `max.in.flight.requests.per.connection`.
pub const MAX_IN_FLIGHT: usize = 5;

/// `acks` of a case. acks=all cases also turn idempotence on where the client has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    Leader,
    All,
}

impl Acks {
    pub fn name(self) -> &'static str {
        match self {
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Compression codec of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// One benchmark case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    /// Records to produce (divided by 10 with `--quick`).
    pub records: u64,
    /// Value bytes per record.
    pub size: usize,
    pub acks: Acks,
    pub codec: Codec,
    /// Keyed records (9-byte keys, murmur2 partitioning) or keyless (sticky / round-robin).
    pub keyed: bool,
    /// One line for the table's heading.
    pub what: &'static str,
    /// Over TLS and SASL (the `--kafka` node's SASL_SSL listener).
    pub tls: bool,
}

const fn case(
    name: &'static str,
    records: u64,
    size: usize,
    acks: Acks,
    codec: Codec,
    keyed: bool,
    what: &'static str,
) -> Case {
    Case {
        name,
        records,
        size,
        acks,
        codec,
        keyed,
        what,
        tls: false,
    }
}

/// Every case, in the order they run.
pub const CASES: &[Case] = &[
    case(
        "100b-acks1",
        1_000_000,
        100,
        Acks::Leader,
        Codec::None,
        false,
        "1 M x 100 B, acks=1, keyless into 12 partitions, no compression",
    ),
    case(
        "100b-keyed",
        1_000_000,
        100,
        Acks::Leader,
        Codec::None,
        true,
        "1 M x 100 B, acks=1, keyed (murmur2) into 12 partitions",
    ),
    case(
        "1kb-acksall",
        200_000,
        1024,
        Acks::All,
        Codec::None,
        false,
        "200 k x 1 KiB, acks=all, idempotent (not rskafka)",
    ),
    case(
        "100b-gzip",
        1_000_000,
        100,
        Acks::Leader,
        Codec::Gzip,
        false,
        "1 M x 100 B, acks=1, gzip",
    ),
    case(
        "100b-snappy",
        1_000_000,
        100,
        Acks::Leader,
        Codec::Snappy,
        false,
        "1 M x 100 B, acks=1, snappy",
    ),
    case(
        "100b-lz4",
        1_000_000,
        100,
        Acks::Leader,
        Codec::Lz4,
        false,
        "1 M x 100 B, acks=1, lz4",
    ),
    case(
        "100b-zstd",
        1_000_000,
        100,
        Acks::Leader,
        Codec::Zstd,
        false,
        "1 M x 100 B, acks=1, zstd",
    ),
    case(
        "1kb-1m",
        1_000_000,
        1024,
        Acks::Leader,
        Codec::None,
        false,
        "1 M x 1 KiB, acks=1, 32 MiB budget (the RSS target)",
    ),
    Case {
        tls: true,
        ..case(
            "1kb-sasl-ssl",
            200_000,
            1024,
            Acks::All,
            Codec::None,
            false,
            "200 k x 1 KiB, acks=all, idempotent, SASL_SSL + SCRAM-SHA-512 (--kafka; ferrokafka, rdkafka, krafka)",
        )
    },
];

/// Whether `client` can run `case`: rskafka and confluent-kafka have no TLS in this build, and
/// the external workers are not given the SASL_SSL setup.
pub fn supports(case: &Case, client: &str) -> bool {
    !(case.tls
        && (matches!(client, "rskafka" | "confluent-kafka")
            || crate::external::is_external(client)))
}

impl BenchCase for Case {
    fn name(&self) -> &'static str {
        self.name
    }
    fn what(&self) -> &'static str {
        self.what
    }
    fn records(&self) -> u64 {
        self.records
    }
}

/// The key of record `i` of a keyed case: 9 ASCII bytes, `k` and 8 digits.
pub fn key(i: u64, buf: &mut [u8; 9]) -> &[u8] {
    buf[0] = b'k';
    let mut n = i;
    for slot in buf[1..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded() {
        let mut buf = [0; 9];
        assert_eq!(key(42, &mut buf), b"k00000042");
        assert_eq!(key(123_456_789, &mut buf), b"k23456789");
    }
}
