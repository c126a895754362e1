//! Export through the `metrics` crate facade (cargo feature `metrics`), so any exporter
//! (Prometheus, OpenTelemetry, StatsD) receives ferrokafka's metrics.
//!
//! Handles are registered once, when the stats they mirror are created (a client, a broker's
//! first connection, a producer, a consumer), so recording is a call on a cached handle: no
//! key hashing, no label allocation on the request path. The global recorder must therefore
//! be installed before the client is built (as every `metrics` exporter's docs say).
//!
//! Without the feature the same types exist as empty no-ops, so the hooks are written once
//! and compile to nothing.

use std::sync::Arc;

/// Labels of one handle: `client_id` always, plus e.g. `node_id`, `topic`, `partition`.
pub(crate) type Labels = Vec<(&'static str, String)>;

#[cfg(feature = "metrics")]
mod imp {
    use super::Labels;

    fn labels(l: &Labels) -> Vec<::metrics::Label> {
        l.iter()
            .map(|(k, v)| ::metrics::Label::new(*k, v.clone()))
            .collect()
    }

    fn key(name: &'static str, l: &Labels) -> ::metrics::Key {
        ::metrics::Key::from_parts(name, labels(l))
    }

    fn metadata() -> ::metrics::Metadata<'static> {
        ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()))
    }

    /// A monotonically increasing count.
    #[derive(Clone)]
    pub(crate) struct Counter(::metrics::Counter);

    impl Counter {
        pub(crate) fn new(name: &'static str, l: &Labels) -> Counter {
            Counter(::metrics::with_recorder(|r| {
                r.register_counter(&key(name, l), &metadata())
            }))
        }
        pub(crate) fn add(&self, n: u64) {
            self.0.increment(n);
        }
        /// Publishes a total kept elsewhere (a snapshot counter).
        pub(crate) fn absolute(&self, n: u64) {
            self.0.absolute(n);
        }
    }

    /// A value that goes up and down.
    #[derive(Clone)]
    pub(crate) struct Gauge(::metrics::Gauge);

    impl Gauge {
        pub(crate) fn new(name: &'static str, l: &Labels) -> Gauge {
            Gauge(::metrics::with_recorder(|r| {
                r.register_gauge(&key(name, l), &metadata())
            }))
        }
        pub(crate) fn set(&self, v: f64) {
            self.0.set(v);
        }
        pub(crate) fn add(&self, v: f64) {
            self.0.increment(v);
        }
        pub(crate) fn sub(&self, v: f64) {
            self.0.decrement(v);
        }
    }

    /// A distribution (latencies in seconds, sizes in bytes).
    #[derive(Clone)]
    pub(crate) struct Histo(::metrics::Histogram);

    impl Histo {
        pub(crate) fn new(name: &'static str, l: &Labels) -> Histo {
            Histo(::metrics::with_recorder(|r| {
                r.register_histogram(&key(name, l), &metadata())
            }))
        }
        pub(crate) fn record(&self, v: f64) {
            self.0.record(v);
        }
    }

    /// Describes every metric (unit and help text) to the installed recorder, once per
    /// process, so exporters print `# HELP` lines.
    pub(crate) fn describe_all() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            ::metrics::with_recorder(|r| {
                for m in super::super::names::ALL {
                    let unit = match m.unit {
                        "seconds" => Some(::metrics::Unit::Seconds),
                        "bytes" => Some(::metrics::Unit::Bytes),
                        _ => None,
                    };
                    let name = ::metrics::KeyName::from_const_str(m.name);
                    match m.kind {
                        "counter" => r.describe_counter(name, unit, m.help.into()),
                        "gauge" => r.describe_gauge(name, unit, m.help.into()),
                        _ => r.describe_histogram(name, unit, m.help.into()),
                    }
                }
            })
        });
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use super::Labels;

    #[derive(Clone)]
    pub(crate) struct Counter;
    impl Counter {
        pub(crate) fn new(_: &'static str, _: &Labels) -> Counter {
            Counter
        }
        pub(crate) fn add(&self, _: u64) {}
        pub(crate) fn absolute(&self, _: u64) {}
    }

    #[derive(Clone)]
    pub(crate) struct Gauge;
    impl Gauge {
        pub(crate) fn new(_: &'static str, _: &Labels) -> Gauge {
            Gauge
        }
        pub(crate) fn set(&self, _: f64) {}
        pub(crate) fn add(&self, _: f64) {}
        pub(crate) fn sub(&self, _: f64) {}
    }

    #[derive(Clone)]
    pub(crate) struct Histo;
    impl Histo {
        pub(crate) fn new(_: &'static str, _: &Labels) -> Histo {
            Histo
        }
        pub(crate) fn record(&self, _: f64) {}
    }

    pub(crate) fn describe_all() {}
}

pub(crate) use imp::{describe_all, Counter, Gauge, Histo};

/// Whether handles do anything: lets callers skip building labels and per-partition handles
/// when the feature is off.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counter")
    }
}
impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gauge")
    }
}
impl std::fmt::Debug for Histo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Histo")
    }
}

/// The `client_id` label every metric carries, plus `extra`.
pub(crate) fn labels(client_id: &Arc<str>, extra: &[(&'static str, String)]) -> Labels {
    let mut l = vec![("client_id", client_id.to_string())];
    l.extend(extra.iter().cloned());
    l
}
