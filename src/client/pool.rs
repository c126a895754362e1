//! Connections keyed by broker id: opened lazily, shared, replaced when they fail.
//!
//! Each broker has a [`Slot`]. Its current connection is read on the fast path under a short
//! std mutex; opening a new one happens under the slot's async mutex, so concurrent callers
//! share one connection attempt (single flight) and the reconnect backoff
//! (`reconnect.backoff.ms` doubling up to `reconnect.backoff.max.ms`, with jitter) is kept per
//! broker. Bootstrap addresses get slots with negative ids (-1, -2, …) so they share the same
//! machinery until metadata names the real brokers.
//!
//! Every group member (and transactional producer) reaches its coordinator through a socket
//! of its own ([`Pool::coordinator`], keyed by an owner number from
//! [`Pool::new_coordinator_owner`]), not in the broker map. Kafka reads the next request on a
//! connection only once it has answered the previous one, so a shared socket makes every call
//! wait for the one before it: heartbeats would wait behind long-polling Fetches, and — worse
//! — behind another member's JoinGroup, which the coordinator holds until the rebalance
//! completes. Two consumers of one client in one group then starve each other's heartbeats
//! and take turns being expelled forever (seen on Apache Kafka 4.4; Tansu did not hold the
//! heartbeats back, which hid it).
//!
//! Ownership: the pool is owned by the client's shared state; slots and connections are
//! dropped (and their socket tasks aborted) when the pool is closed or a broker's address
//! changes.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use super::connection::{Connection, ConnectionConfig, FinalizedFeatures, Stream};
use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::security;

/// A boxed byte stream to a broker.
pub(crate) type BoxStream = Box<dyn Stream>;
/// The future a [`Connector`] returns.
pub(crate) type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send>>;

/// Opens byte streams to `host:port` addresses. TCP, or TLS wrapping TCP
/// (`security/tls.rs`); tests plug in duplex pipes.
pub(crate) trait Connector: Send + Sync + 'static {
    fn connect(&self, addr: &str) -> ConnectFuture;
}

/// Plain TCP. The address is resolved on every attempt, so a broker whose DNS name moved is
/// found again, and every resolved address is tried in turn.
pub(crate) struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, addr: &str) -> ConnectFuture {
        let addr = addr.to_owned();
        Box::pin(async move {
            let stream = TcpStream::connect(addr.as_str()).await?;
            // Requests are whole frames written at once; Nagle would only add latency.
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

struct Slot {
    id: i32,
    /// A second socket to a broker (a group coordinator's, or the consumer's fetch socket):
    /// not a cluster broker in its own right, so metadata lookups neither list nor borrow it.
    coordinator: bool,
    addr: Mutex<String>,
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting: makes connection attempts single-flight and guards the backoff.
    reconnect: tokio::sync::Mutex<ReconnectState>,
}

struct ReconnectState {
    backoff: Backoff,
    /// No attempt before this instant (set after a failure).
    not_before: Option<Instant>,
    last_error: Option<Error>,
}

impl Slot {
    fn usable(&self) -> Option<Arc<Connection>> {
        self.current
            .lock()
            .unwrap()
            .as_ref()
            .filter(|c| c.is_usable())
            .cloned()
    }
}

/// How a caller wants to treat a broker in reconnect backoff.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wait {
    /// Wait until the backoff has passed, then try.
    ForBackoff,
    /// Fail at once with the last error: the caller has other brokers to try.
    No,
}

/// The connection pool.
pub(crate) struct Pool {
    cfg: Arc<ClientConfig>,
    client_id: StrBytes,
    connector: Arc<dyn Connector>,
    slots: Mutex<HashMap<i32, Arc<Slot>>>,
    /// Coordinator sockets by owner (one group member or transactional producer each).
    coordinators: Mutex<HashMap<u64, Arc<Slot>>>,
    /// The next owner number [`Pool::new_coordinator_owner`] hands out.
    next_owner: AtomicU64,
    /// The newest finalized features any connection reported (highest epoch), kept after
    /// that connection closes.
    features: Mutex<FinalizedFeatures>,
    /// Per-broker request and connection metrics (`Client::metrics`).
    pub(crate) stats: Arc<crate::metrics::client::ClientStats>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<i32> = self.slots.lock().unwrap().keys().copied().collect();
        f.debug_struct("Pool").field("brokers", &ids).finish()
    }
}

impl Pool {
    pub(crate) fn new(cfg: Arc<ClientConfig>, connector: Arc<dyn Connector>) -> Pool {
        let pool = Pool {
            client_id: StrBytes::from_string(cfg.client_id.clone()),
            stats: Arc::new(crate::metrics::client::ClientStats::new(&cfg.client_id)),
            cfg,
            connector,
            slots: Mutex::new(HashMap::new()),
            coordinators: Mutex::new(HashMap::new()),
            next_owner: AtomicU64::new(0),
            features: Mutex::new(FinalizedFeatures {
                epoch: -1,
                levels: Vec::new(),
            }),
        };
        let bootstrap: Vec<(i32, String)> = pool
            .cfg
            .bootstrap
            .iter()
            .enumerate()
            .map(|(i, a)| (bootstrap_id(i), a.clone()))
            .collect();
        pool.set_brokers(bootstrap);
        pool
    }

    /// Adds brokers or updates their addresses. A changed address drops the old connection.
    pub(crate) fn set_brokers(&self, brokers: impl IntoIterator<Item = (i32, String)>) {
        self.upsert(brokers.into_iter().map(|(id, addr)| (id, addr, false)));
    }

    /// Registers broker `node_id`'s fetch socket number `lane`, under
    /// [`fetch_lane_slot`]`(node_id, lane)`, at the broker's address, and returns that slot id
    /// for [`Pool::get`]. The consumer's Fetch long-polls (`fetch.max.wait.ms`) and Kafka
    /// answers in order per connection, so a producer or admin call sharing the client would
    /// otherwise wait behind it; a second lane lets a second Fetch (for other partitions) be
    /// served while the first one is.
    pub(crate) fn set_fetch_slot(&self, node_id: i32, lane: u32, addr: String) -> i32 {
        let id = fetch_lane_slot(node_id, lane);
        self.upsert([(id, addr, true)]);
        id
    }

    /// A fresh owner number for [`Pool::set_coordinator`] and [`Pool::coordinator`]: one per
    /// group member or transactional producer, so each gets a coordinator socket of its own.
    pub(crate) fn new_coordinator_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    /// Points `owner`'s coordinator socket at broker `node_id` at `addr`. A different broker
    /// or address drops the old connection (and its backoff: it was another broker's).
    pub(crate) fn set_coordinator(&self, owner: u64, node_id: i32, addr: String) {
        let mut coordinators = self.coordinators.lock().unwrap();
        if let Some(slot) = coordinators.get(&owner) {
            if slot.id == coordinator_slot(node_id) && *slot.addr.lock().unwrap() == addr {
                return;
            }
        }
        let slot = self.new_slot(coordinator_slot(node_id), addr, true);
        coordinators.insert(owner, Arc::new(slot));
    }

    /// `owner`'s connection to its coordinator (set by [`Pool::set_coordinator`]), opening it
    /// if needed.
    pub(crate) async fn coordinator(&self, owner: u64, wait: Wait) -> Result<Arc<Connection>> {
        let slot = self
            .coordinators
            .lock()
            .unwrap()
            .get(&owner)
            .cloned()
            .ok_or_else(|| Error::Connect {
                broker: "group coordinator".into(),
                source: Arc::new(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no coordinator found yet",
                )),
            })?;
        self.connect_slot(&slot, wait).await
    }

    /// Drops `owner`'s coordinator socket: its group member or producer is gone.
    pub(crate) fn release_coordinator(&self, owner: u64) {
        self.coordinators.lock().unwrap().remove(&owner);
    }

    fn upsert(&self, entries: impl IntoIterator<Item = (i32, String, bool)>) {
        let mut slots = self.slots.lock().unwrap();
        for (id, addr, coordinator) in entries {
            match slots.get(&id) {
                Some(slot) => {
                    let mut current = slot.addr.lock().unwrap();
                    if *current != addr {
                        debug!(broker = id, old = %current, new = %addr, "broker address changed");
                        *current = addr;
                        slot.current.lock().unwrap().take();
                    }
                }
                None => {
                    slots.insert(id, Arc::new(self.new_slot(id, addr, coordinator)));
                }
            }
        }
    }

    fn new_slot(&self, id: i32, addr: String, coordinator: bool) -> Slot {
        Slot {
            id,
            coordinator,
            addr: Mutex::new(addr),
            current: Mutex::new(None),
            reconnect: tokio::sync::Mutex::new(ReconnectState {
                backoff: Backoff::new(self.cfg.reconnect_backoff, self.cfg.reconnect_backoff_max),
                not_before: None,
                last_error: None,
            }),
        }
    }

    /// Known broker ids (not bootstrap entries, not coordinator slots), in no particular order.
    pub(crate) fn broker_ids(&self) -> Vec<i32> {
        self.slots
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.id >= 0 && !s.coordinator)
            .map(|s| s.id)
            .collect()
    }

    /// Ids of the bootstrap entries, in configuration order.
    pub(crate) fn bootstrap_ids(&self) -> Vec<i32> {
        (0..self.cfg.bootstrap.len()).map(bootstrap_id).collect()
    }

    /// An already open, usable connection to any broker, if there is one. Coordinator sockets
    /// are left to group traffic.
    pub(crate) fn any_open(&self) -> Option<Arc<Connection>> {
        let slots = self.slots.lock().unwrap();
        let mut open: Vec<&Arc<Slot>> = slots
            .values()
            .filter(|s| !s.coordinator && s.usable().is_some())
            .collect();
        // Prefer real brokers over bootstrap entries: their ids are what metadata speaks of.
        open.sort_by_key(|s| std::cmp::Reverse(s.id));
        open.first().and_then(|s| s.usable())
    }

    /// The connection to broker `id`, opening it if needed.
    pub(crate) async fn get(&self, id: i32, wait: Wait) -> Result<Arc<Connection>> {
        let slot = self
            .slots
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Connect {
                broker: format!("broker {id}").into(),
                source: Arc::new(io::Error::new(
                    io::ErrorKind::NotFound,
                    "broker id not in the cluster metadata",
                )),
            })?;
        self.connect_slot(&slot, wait).await
    }

    /// The usable connection of `slot`, opening it (single flight, after any backoff) if
    /// needed.
    async fn connect_slot(&self, slot: &Arc<Slot>, wait: Wait) -> Result<Arc<Connection>> {
        if let Some(conn) = slot.usable() {
            return Ok(conn);
        }
        let mut state = slot.reconnect.lock().await;
        // Someone else may have connected while we waited for the lock.
        if let Some(conn) = slot.usable() {
            return Ok(conn);
        }
        if let Some(not_before) = state.not_before {
            if Instant::now() < not_before {
                match wait {
                    Wait::ForBackoff => tokio::time::sleep_until(not_before).await,
                    Wait::No => {
                        return Err(state.last_error.clone().unwrap_or_else(|| Error::Connect {
                            broker: self.label(slot).into(),
                            source: Arc::new(io::Error::other("in reconnect backoff")),
                        }))
                    }
                }
            }
        }
        match self.open(slot).await {
            Ok((conn, session_lifetime)) => {
                self.stats.broker(stats_node(slot)).connected();
                state.backoff.reset();
                state.not_before = None;
                state.last_error = None;
                let conn = Arc::new(conn);
                if let Some(lifetime) = session_lifetime {
                    security::reauth::schedule(&conn, self.cfg.clone(), lifetime);
                }
                *slot.current.lock().unwrap() = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                self.stats.broker(stats_node(slot)).connect_failed();
                let delay = state.backoff.next_delay();
                debug!(broker = slot.id, error = %e, backoff_ms = delay.as_millis() as u64, "connect failed");
                state.not_before = Some(Instant::now() + delay);
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// How errors name broker `id`: `broker 3 (host:port)` or `bootstrap host:port`.
    pub(crate) fn describe(&self, id: i32) -> String {
        match self.slots.lock().unwrap().get(&id).cloned() {
            Some(slot) => self.label(&slot),
            None => format!("broker {id}"),
        }
    }

    fn label(&self, slot: &Slot) -> String {
        let addr = slot.addr.lock().unwrap().clone();
        if slot.coordinator && slot.id < 0 {
            let (node, lane) = fetch_slot_owner(slot.id);
            match lane {
                0 => format!("fetch socket of broker {node} ({addr})"),
                _ => format!("fetch socket {lane} of broker {node} ({addr})"),
            }
        } else if slot.coordinator {
            format!(
                "coordinator on broker {} ({addr})",
                coordinator_slot(slot.id)
            )
        } else if slot.id >= 0 {
            format!("broker {} ({addr})", slot.id)
        } else {
            format!("bootstrap {addr}")
        }
    }

    /// Opens a connection for `slot`: connect, ApiVersions, SASL. Returns the connection and
    /// the SASL session lifetime the broker set, if any.
    async fn open(&self, slot: &Slot) -> Result<(Connection, Option<std::time::Duration>)> {
        let label: Arc<str> = self.label(slot).into();
        let addr = slot.addr.lock().unwrap().clone();
        let timeout = self.cfg.connect_timeout;
        let connect_err = |source: io::Error| Error::Connect {
            broker: label.clone(),
            source: Arc::new(source),
        };
        let stream = match tokio::time::timeout(timeout, self.connector.connect(&addr)).await {
            Ok(Ok(s)) => s,
            // A TLS handshake failure becomes `Error::Tls`, which is not retried.
            Ok(Err(e)) => return Err(security::tls::connect_error(label, e)),
            Err(_) => {
                return Err(connect_err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {} ms", timeout.as_millis()),
                )))
            }
        };
        let cfg = ConnectionConfig {
            label: label.clone(),
            client_id: self.client_id.clone(),
            request_timeout: self.cfg.request_timeout,
            max_response_size: self.cfg.max_response_size,
            stats: self.stats.broker(stats_node(slot)),
        };
        // With TLS 1.3 a broker refusing the client certificate says so on the first read.
        let refine = |e: Error| security::tls::refine(e, &label, &addr);
        let conn = Connection::connect(stream, cfg, timeout)
            .await
            .map_err(refine)?;
        if let Some(f) = conn.finalized_features() {
            let mut known = self.features.lock().unwrap();
            if f.epoch >= known.epoch {
                *known = f.clone();
            }
        }
        let mut session_lifetime = None;
        if self.cfg.security.protocol.uses_sasl() {
            // Before the pool hands the connection to anyone: no request of the caller's can
            // reach an unauthenticated socket. The connect timeout bounds the whole exchange.
            let auth = security::sasl::authenticate(&conn, &self.cfg.security, timeout);
            match tokio::time::timeout(timeout, auth).await {
                Ok(Ok(lifetime)) => session_lifetime = lifetime,
                Ok(Err(e)) => {
                    self.stats.broker(stats_node(slot)).auth_failed();
                    return Err(refine(e));
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        operation: format!("SASL authentication with {label}").into(),
                        after: timeout,
                        last: None,
                    })
                }
            }
        }
        Ok((conn, session_lifetime))
    }

    /// Rebootstrap (KIP-899): forgets every broker the metadata named (their slots, sockets
    /// and backoffs) and starts the bootstrap entries afresh, so the next metadata request
    /// resolves and connects to the bootstrap addresses again. For when no known broker
    /// answers any more, or one answered REBOOTSTRAP_REQUIRED. Coordinator sockets stay:
    /// their owners find the coordinator again through the new metadata when they fail.
    pub(crate) fn rebootstrap(&self) {
        let fresh: Vec<(i32, Arc<Slot>)> = self
            .cfg
            .bootstrap
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let id = bootstrap_id(i);
                (id, Arc::new(self.new_slot(id, a.clone(), false)))
            })
            .collect();
        let mut slots = self.slots.lock().unwrap();
        slots.clear();
        slots.extend(fresh);
    }

    /// The cluster's finalized level of feature `name` (e.g. `transaction.version`) from the
    /// newest ApiVersions answer of any connection so far; 0 when no broker listed it.
    pub(crate) fn finalized_feature(&self, name: &str) -> i16 {
        self.features.lock().unwrap().level(name)
    }

    /// Drops every connection (their tasks stop) and forgets the brokers.
    pub(crate) fn close(&self) {
        self.slots.lock().unwrap().clear();
        self.coordinators.lock().unwrap().clear();
    }
}

/// The broker a slot's connections count under in the metrics: a broker's fetch lanes and
/// coordinator sockets are that broker's.
fn stats_node(slot: &Slot) -> i32 {
    if slot.coordinator && slot.id < 0 {
        fetch_slot_owner(slot.id).0
    } else if slot.coordinator {
        coordinator_slot(slot.id)
    } else {
        slot.id
    }
}

fn bootstrap_id(index: usize) -> i32 {
    -1 - index as i32
}

/// The slot id of a coordinator socket to broker `node_id`: `i32::MAX - node_id`, the id
/// the Java client gives the same separate connection. It only names the socket (the slots
/// live in [`Pool::coordinator`]'s own map); the mapping is its own inverse.
pub(crate) const fn coordinator_slot(node_id: i32) -> i32 {
    i32::MAX - node_id
}

/// The pool slot of the consumer's fetch socket to broker `node_id`: `i32::MIN + node_id`,
/// far below the bootstrap entries (-1, -2, …). The mapping is its own inverse.
pub(crate) const fn fetch_slot(node_id: i32) -> i32 {
    i32::MIN.wrapping_add(node_id)
}

/// Node ids below this get further fetch sockets (lanes) of their own; larger ones (not seen in
/// practice) share lane 0.
const LANE_STRIDE: i32 = 1 << 26;

/// Highest fetch lane with a socket of its own; higher lanes share this one.
pub(crate) const MAX_FETCH_LANE: u32 = 7;

/// The pool slot of the consumer's fetch socket number `lane` to broker `node_id`: lane 0 is
/// [`fetch_slot`]; lane *k* is `k × 2^26` above it, still far below the bootstrap entries.
pub(crate) const fn fetch_lane_slot(node_id: i32, lane: u32) -> i32 {
    let lane = if lane > MAX_FETCH_LANE {
        MAX_FETCH_LANE
    } else {
        lane
    };
    if lane == 0 || node_id < 0 || node_id >= LANE_STRIDE {
        return fetch_slot(node_id);
    }
    fetch_slot(node_id).wrapping_add(lane as i32 * LANE_STRIDE)
}

/// The broker and lane of a fetch slot id, the inverse of [`fetch_lane_slot`], for labels
/// only (a lane-0 slot of a node id in 2^26..2^29 reads as another node's lane).
fn fetch_slot_owner(slot: i32) -> (i32, u32) {
    let rel = fetch_slot(slot);
    if (0..(MAX_FETCH_LANE as i32 + 1) * LANE_STRIDE).contains(&rel) && rel >= LANE_STRIDE {
        (rel % LANE_STRIDE, (rel / LANE_STRIDE) as u32)
    } else {
        (rel, 0)
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;

#[cfg(test)]
mod fetch_lane_tests {
    use super::*;

    #[test]
    fn fetch_lane_slots_are_distinct_and_invertible() {
        let mut seen = std::collections::HashSet::new();
        for node in [0, 1, 7, 1_000, LANE_STRIDE - 1] {
            for lane in 0..=MAX_FETCH_LANE {
                let slot = fetch_lane_slot(node, lane);
                assert!(
                    seen.insert(slot),
                    "node {node} lane {lane} reuses slot {slot}"
                );
                assert!(slot < -(1 << 20), "far below the bootstrap entries: {slot}");
                assert_ne!(slot, coordinator_slot(node));
                assert_eq!(fetch_slot_owner(slot), (node, lane));
            }
        }
        assert_eq!(fetch_lane_slot(3, 0), fetch_slot(3));
        assert_eq!(fetch_lane_slot(3, 100), fetch_lane_slot(3, MAX_FETCH_LANE));
    }
}
