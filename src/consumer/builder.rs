//! `ConsumerBuilder`: settings by method or by Java property name, checked at `build()`,
//! which starts the consumer's fetcher task (owned by the `Consumer` it returns).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use super::config::{ConsumerConfig, CONSUMER_KEYS};
use super::coordinator::GroupCoordinator;
use super::state::{Assignment, Budget};
use super::{
    assignor, fetcher, Consumer, GroupProtocol, IsolationLevel, Local, Metrics, Mode, OffsetReset,
    RebalanceListener, Shared,
};
use crate::client::{Client, ClientBuilder};
use crate::config::{route_property, Route};
use crate::error::{Error, Result};

/// Builds a [`Consumer`]. Setters never fail; the first invalid value is reported by
/// [`ConsumerBuilder::build`].
pub struct ConsumerBuilder {
    client: Option<Client>,
    client_builder: ClientBuilder,
    cfg: ConsumerConfig,
    listener: Option<Arc<dyn RebalanceListener>>,
    error: Option<Error>,
}

impl std::fmt::Debug for ConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("config", &self.cfg)
            .finish()
    }
}

impl ConsumerBuilder {
    pub(super) fn with(client: Option<Client>) -> ConsumerBuilder {
        ConsumerBuilder {
            client,
            client_builder: ClientBuilder::new(),
            cfg: ConsumerConfig::default(),
            listener: None,
            error: None,
        }
    }

    /// A builder from Java/librdkafka property names. Client keys (`bootstrap.servers`, …)
    /// configure the consumer's own [`Client`]; consumer keys (`group.id`,
    /// `auto.offset.reset`, `enable.auto.commit`, …) the consumer. An unknown key fails
    /// `build()`, naming it.
    pub fn from_properties<K: AsRef<str>, V: AsRef<str>>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> ConsumerBuilder {
        props
            .into_iter()
            .fold(ConsumerBuilder::with(None), |b, (k, v)| {
                b.set(k.as_ref(), v.as_ref())
            })
    }

    /// Sets one property by name.
    pub fn set(mut self, key: &str, value: &str) -> ConsumerBuilder {
        let applied = self.cfg.apply(key, value);
        match route_property(applied, key, self.client.is_none(), CONSUMER_KEYS) {
            Ok(Route::Own) => {}
            Ok(Route::Client) => self.client_builder = self.client_builder.set(key, value),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// `group.id`: the consumer group to join on `subscribe` and to commit offsets to.
    pub fn group_id(mut self, group: impl Into<String>) -> ConsumerBuilder {
        self.cfg.group_id = Some(group.into());
        self
    }

    /// `group.instance.id`: static membership; a restart within the session timeout keeps
    /// the assignment without a rebalance.
    pub fn group_instance_id(mut self, id: impl Into<String>) -> ConsumerBuilder {
        self.cfg.group_instance_id = Some(id.into());
        self
    }

    /// `auto.offset.reset` (default `Latest`).
    pub fn offset_reset(mut self, policy: OffsetReset) -> ConsumerBuilder {
        self.cfg.offset_reset = policy;
        self
    }

    /// `enable.auto.commit` (default true): commit every `auto.commit.interval.ms` (5 s),
    /// when partitions are revoked, and on [`Consumer::close`]. What is committed is the
    /// offset after the last record *handed out* by `recv`/`stream`, or, with
    /// [`ConsumerBuilder::auto_offset_store`] off, the last offset *stored* with
    /// [`Consumer::store_offset`]. See [`Consumer::recv`] for what that means on a crash.
    pub fn auto_commit(mut self, on: bool) -> ConsumerBuilder {
        self.cfg.auto_commit = on;
        self
    }

    /// `enable.auto.offset.store` (default true). Off: handing a record out no longer
    /// marks it for commit; the application calls [`Consumer::store_offset`] once it has
    /// processed the record, and commits send only stored offsets (librdkafka's semantics).
    pub fn auto_offset_store(mut self, on: bool) -> ConsumerBuilder {
        self.cfg.auto_offset_store = on;
        self
    }

    /// `max.poll.records`: the most records one [`Consumer::recv_batch`] returns.
    pub fn max_poll_records(mut self, n: usize) -> ConsumerBuilder {
        self.cfg.max_poll_records = Some(n.max(1));
        self
    }

    /// `client.rack`: this consumer's rack (e.g. availability zone), sent in Fetch (v11+)
    /// for follower fetching (KIP-392) and in the group subscription for rack-aware
    /// assignors.
    pub fn client_rack(mut self, rack: impl Into<String>) -> ConsumerBuilder {
        self.cfg.client_rack = Some(rack.into());
        self
    }

    /// `isolation.level` (default `ReadUncommitted`).
    pub fn isolation_level(mut self, level: IsolationLevel) -> ConsumerBuilder {
        self.cfg.isolation = level;
        self
    }

    /// `fetch.buffer.bytes` (default 64 MiB): every prefetched byte, all partitions together.
    pub fn fetch_buffer_bytes(mut self, bytes: usize) -> ConsumerBuilder {
        self.cfg.fetch_buffer_bytes = bytes;
        self
    }

    /// How many deliveries of one partition may wait before it is fetched again (tests only:
    /// a large value leaves the prefetch budget as the only limit).
    #[cfg(test)]
    pub(crate) fn max_queued(mut self, deliveries: usize) -> ConsumerBuilder {
        self.cfg.max_queued = deliveries;
        self
    }

    /// `fetch.connections.per.broker` (default 2, 1 to 8): Fetch requests in flight to one
    /// broker at once, each on a socket of its own and for a disjoint set of partitions. 1 is
    /// what the Java client and librdkafka do; 2 keeps a broker that serves one request at a
    /// time busy while the client decodes. Out of range fails at `build()`.
    pub fn fetch_connections_per_broker(mut self, n: u32) -> ConsumerBuilder {
        self.cfg.fetch_connections = n;
        self
    }

    /// `group.protocol` (default `Classic`). `Consumer` speaks KIP-848 (Kafka 4.0+): the
    /// broker assigns, and `session.timeout.ms`, `heartbeat.interval.ms` and
    /// `partition.assignment.strategy` are the broker's business (setting them fails `build()`).
    pub fn group_protocol(mut self, protocol: GroupProtocol) -> ConsumerBuilder {
        self.cfg.group_protocol = protocol;
        self
    }

    /// `group.remote.assignor`: the broker-side assignor (e.g. `uniform`, `range`) a
    /// `group.protocol=consumer` member asks for; unset, the broker's default.
    pub fn group_remote_assignor(mut self, name: impl Into<String>) -> ConsumerBuilder {
        self.cfg.remote_assignor = Some(name.into());
        self
    }

    /// Hooks called on rebalances, awaited before the rebalance goes on.
    pub fn rebalance_listener(mut self, l: impl RebalanceListener + 'static) -> ConsumerBuilder {
        self.listener = Some(Arc::new(l));
        self
    }

    /// Validates the configuration and starts the consumer (and its client, when built from
    /// properties). Nothing is fetched before `subscribe` or `assign`.
    pub async fn build(self) -> Result<Consumer> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.cfg.validate()?;
        let classic = self.cfg.group_protocol == GroupProtocol::Classic;
        for name in self.cfg.assignors.iter().filter(|_| classic) {
            if assignor::assignor_by_name(name).is_none() {
                return Err(Error::config(format!(
                    "partition.assignment.strategy: `{name}` is not one of range, roundrobin, \
                     cooperative-sticky"
                )));
            }
        }
        let client = match self.client {
            Some(c) => c,
            None => self.client_builder.build().await?,
        };
        let cfg = Arc::new(self.cfg);
        let coordinator = cfg
            .group_id
            .as_ref()
            .map(|g| Arc::new(GroupCoordinator::new(client.inner.clone(), g.clone())));
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::new(&client.inner.cfg.client_id));
        let shared = Arc::new(Shared {
            client,
            cfg: cfg.clone(),
            assignment: Arc::new(Assignment::default()),
            budget: Budget::new(cfg.fetch_buffer_bytes),
            coordinator,
            membership: Mutex::new((-1, String::new())),
            commits_open: AtomicBool::new(true),
            commits_in_flight: tokio::sync::RwLock::new(()),
            fatal: OnceLock::new(),
            polls: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            metrics,
            tx,
            listener: self.listener,
            hook: Mutex::new(None),
            processing: std::sync::atomic::AtomicBool::new(false),
            closed: tokio::sync::watch::channel(false).0,
            is_closed: std::sync::atomic::AtomicBool::new(false),
        });
        let fetcher = fetcher::Fetcher {
            client: shared.client.inner.clone(),
            cfg,
            assignment: shared.assignment.clone(),
            budget: shared.budget.clone(),
            group: shared.coordinator.clone(),
            tx: shared.tx.clone(),
            stats: shared.metrics.clone(),
        };
        let fetch_task = tokio::spawn(fetcher.run());
        Ok(Consumer {
            shared,
            local: Mutex::new(Local::default()),
            rx: tokio::sync::Mutex::new(rx),
            group: Mutex::new(None),
            fetch_task: Mutex::new(Some(fetch_task)),
            mode: Mutex::new(Mode::None),
            background: Mutex::new(Vec::new()),
            assign_committer: Mutex::new(None),
        })
    }
}
