//! Per-broker metrics of a `Client`: requests, latency, in-flight, connections, authentication.
//!
//! Ownership: the pool owns one [`ClientStats`]; it hands each connection the
//! [`BrokerStats`] of the broker it leads to (a broker's fetch lanes and coordinator sockets
//! count under the broker itself). Connections update them once per request, from the task
//! that awaits the request; `Client::metrics` reads them at any time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::export::{self, Counter, Gauge, Histo};
use super::histogram::{Histogram, HistogramSnapshot};
use super::names;

/// Every broker's stats of one client.
#[derive(Debug)]
pub(crate) struct ClientStats {
    client_id: Arc<str>,
    brokers: Mutex<BTreeMap<i32, Arc<BrokerStats>>>,
}

impl ClientStats {
    pub(crate) fn new(client_id: &str) -> ClientStats {
        export::describe_all();
        ClientStats {
            client_id: client_id.into(),
            brokers: Mutex::new(BTreeMap::new()),
        }
    }

    /// The stats of broker `node_id` (negative: a bootstrap address), created on first use.
    pub(crate) fn broker(&self, node_id: i32) -> Arc<BrokerStats> {
        self.brokers
            .lock()
            .unwrap()
            .entry(node_id)
            .or_insert_with(|| Arc::new(BrokerStats::new(&self.client_id, node_id)))
            .clone()
    }

    pub(crate) fn snapshot(&self) -> ClientMetrics {
        let brokers: Vec<Arc<BrokerStats>> =
            self.brokers.lock().unwrap().values().cloned().collect();
        ClientMetrics {
            brokers: brokers.iter().map(|b| b.snapshot()).collect(),
        }
    }
}

/// One broker's counters. Relaxed atomics: each is updated once per request or connection
/// by whichever task made it, and snapshots need no consistency across fields.
#[derive(Debug)]
pub(crate) struct BrokerStats {
    node_id: i32,
    requests: AtomicU64,
    request_errors: AtomicU64,
    in_flight: AtomicI64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    disconnects: AtomicU64,
    auth_failures: AtomicU64,
    latency: Histogram,
    export: BrokerExport,
}

#[derive(Debug)]
struct BrokerExport {
    requests: Counter,
    request_errors: Counter,
    latency: Histo,
    in_flight: Gauge,
    connects: Counter,
    connect_failures: Counter,
    disconnects: Counter,
    auth_failures: Counter,
}

impl BrokerStats {
    pub(crate) fn new(client_id: &Arc<str>, node_id: i32) -> BrokerStats {
        let l = export::labels(client_id, &[("node_id", node_id.to_string())]);
        BrokerStats {
            node_id,
            requests: AtomicU64::new(0),
            request_errors: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            connects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            latency: Histogram::latency(),
            export: BrokerExport {
                requests: Counter::new(names::REQUESTS, &l),
                request_errors: Counter::new(names::REQUEST_ERRORS, &l),
                latency: Histo::new(names::REQUEST_LATENCY, &l),
                in_flight: Gauge::new(names::IN_FLIGHT, &l),
                connects: Counter::new(names::CONNECTS, &l),
                connect_failures: Counter::new(names::CONNECT_FAILURES, &l),
                disconnects: Counter::new(names::DISCONNECTS, &l),
                auth_failures: Counter::new(names::AUTH_FAILURES, &l),
            },
        }
    }

    /// Stats for connections made outside a pool (unit tests): counted nowhere visible.
    #[cfg(test)]
    pub(crate) fn detached() -> Arc<BrokerStats> {
        Arc::new(BrokerStats::new(&Arc::from(""), -1))
    }

    /// A request is about to be queued; the returned guard ends it (answered or not).
    pub(crate) fn request(self: &Arc<Self>) -> RequestTimer {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.export.requests.add(1);
        self.export.in_flight.add(1.0);
        RequestTimer {
            stats: self.clone(),
            started: Instant::now(),
            answered: false,
        }
    }

    /// A request the broker never answers (Produce with acks=0).
    pub(crate) fn unanswered_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.export.requests.add(1);
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.export.connects.add(1);
    }

    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        self.export.connect_failures.add(1);
    }

    pub(crate) fn auth_failed(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
        self.export.auth_failures.add(1);
    }

    /// The connection was poisoned (counted once per connection).
    pub(crate) fn disconnected(&self) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
        self.export.disconnects.add(1);
    }

    fn snapshot(&self) -> BrokerMetrics {
        BrokerMetrics {
            node_id: self.node_id,
            requests: self.requests.load(Ordering::Relaxed),
            request_errors: self.request_errors.load(Ordering::Relaxed),
            request_latency: self.latency.snapshot(),
            in_flight: self.in_flight.load(Ordering::Relaxed).max(0) as u64,
            connects: self.connects.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
            auth_failures: self.auth_failures.load(Ordering::Relaxed),
        }
    }
}

/// One request in flight. `answered` records its latency; dropping it otherwise (error,
/// timeout, or the caller gave up) counts a request error. Either way it leaves in-flight.
#[derive(Debug)]
pub(crate) struct RequestTimer {
    stats: Arc<BrokerStats>,
    started: Instant,
    answered: bool,
}

impl RequestTimer {
    /// The response arrived.
    pub(crate) fn answered(mut self) {
        self.answered = true;
        let secs = self.started.elapsed().as_secs_f64();
        self.stats.latency.record(secs);
        self.stats.export.latency.record(secs);
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.stats.export.in_flight.sub(1.0);
        if !self.answered {
            self.stats.request_errors.fetch_add(1, Ordering::Relaxed);
            self.stats.export.request_errors.add(1);
        }
    }
}

/// A snapshot of a client's metrics: one entry per broker it has talked to.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ClientMetrics {
    /// Per broker, by node id (bootstrap addresses first, with negative ids).
    pub brokers: Vec<BrokerMetrics>,
}

impl ClientMetrics {
    /// The entry of broker `node_id`, if the client talked to it.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerMetrics> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    /// Requests sent to every broker together.
    pub fn requests(&self) -> u64 {
        self.brokers.iter().map(|b| b.requests).sum()
    }
}

/// One broker's metrics. Counters are totals since the client was built; a rate is the
/// difference of two snapshots over the time between them.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BrokerMetrics {
    /// The broker's node id; negative for a bootstrap address (before metadata named it).
    pub node_id: i32,
    /// Requests sent (`request-total`), answered or not.
    pub requests: u64,
    /// Requests that got no response: timeout, lost connection, or abandoned by the caller.
    pub request_errors: u64,
    /// Time from queueing each answered request to its response, in seconds.
    pub request_latency: HistogramSnapshot,
    /// Requests sent and not answered yet.
    pub in_flight: u64,
    /// Connections opened (connect, TLS, ApiVersions and SASL all done).
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections closed by an error (lost socket, timeout at the head of the queue, …).
    pub disconnects: u64,
    /// SASL authentications refused.
    pub auth_failures: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_once_and_leaves_in_flight_either_way() {
        let stats = ClientStats::new("c");
        let b = stats.broker(1);
        let ok = b.request();
        let lost = b.request();
        assert_eq!(stats.snapshot().broker(1).unwrap().in_flight, 2);
        ok.answered();
        drop(lost);
        b.connected();
        b.disconnected();
        b.auth_failed();
        let s = stats.snapshot();
        let m = s.broker(1).unwrap();
        assert_eq!(
            (m.requests, m.request_errors, m.in_flight),
            (2, 1, 0),
            "{m:?}"
        );
        assert_eq!(m.request_latency.count, 1);
        assert_eq!((m.connects, m.disconnects, m.auth_failures), (1, 1, 1));
        assert_eq!(s.requests(), 2);
        // Same broker, same stats: a second connection adds to them.
        assert!(Arc::ptr_eq(&b, &stats.broker(1)));
        assert!(stats.snapshot().broker(2).is_none());
    }
}
