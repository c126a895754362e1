//! Metrics: one set, read two ways — a plain snapshot from `Client::metrics`,
//! `Producer::metrics` and `Consumer::metrics`, and (cargo feature `metrics`) the same
//! figures through the `metrics` crate facade to any exporter.
//!
//! ```text
//! connection (per request) ─► BrokerStats ─┐
//! sender task (per request/batch) ─► ProducerStats ─┼─► snapshots (metrics())
//! fetcher / group task / commits ─► ConsumerStats ─┘    └─► export.rs handles (feature)
//! ```
//!
//! The hot path never touches a shared counter per record: the producer counts records per
//! batch in its sender task, the fetcher per partition answer, and `recv` keeps the plain
//! store it always had. docs/OPERATIONS.md lists every metric (names.rs is the table).

pub(crate) mod client;
pub(crate) mod consumer;
pub(crate) mod export;
mod histogram;
pub(crate) mod names;
pub(crate) mod producer;
pub(crate) mod spans;

pub use client::{BrokerMetrics, ClientMetrics};
pub use consumer::{ConsumerMetrics, PartitionLag};
pub use histogram::HistogramSnapshot;
pub use producer::ProducerMetrics;

#[cfg(test)]
mod tests {
    /// docs/OPERATIONS.md has a table row for every exported metric, with its type.
    #[test]
    fn operations_doc_lists_every_metric() {
        let doc = include_str!("../../docs/OPERATIONS.md");
        for m in super::names::ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", m.name)))
                .unwrap_or_else(|| panic!("docs/OPERATIONS.md does not list {}", m.name));
            assert!(row.contains(m.kind), "{} is a {}: {row}", m.name, m.kind);
        }
    }

    #[test]
    fn names_are_unique_and_prometheus_safe() {
        let mut seen = std::collections::HashSet::new();
        for m in super::names::ALL {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(
                m.name.starts_with("kafka_")
                    && m.name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{}",
                m.name
            );
            assert!(matches!(m.kind, "counter" | "gauge" | "histogram"));
            if m.kind == "counter" {
                assert!(m.name.ends_with("_total"), "{}", m.name);
            }
        }
    }
}
