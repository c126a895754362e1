//! The shared client core: configuration, connection pool, metadata cache, retry loop.
//!
//! A [`Client`] is a cheap handle (`Arc`) to [`ClientInner`]. Producers, consumers and
//! [`Admin`](crate::Admin) hold clones and route every request through it.
//!
//! Tasks: the client owns one background task, the periodic metadata refresh
//! (`metadata.max.age.ms`). It holds only a `Weak` reference, so it never keeps the client
//! alive, and it is aborted when the last handle is dropped or on [`Client::close`]. Each
//! connection owns its own reader and writer tasks (see `connection.rs`).

pub(crate) mod connection;
pub(crate) mod metadata;
pub(crate) mod pool;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::admin::Admin;
use crate::backoff::Backoff;
use crate::classify::{classify, Action};
use crate::codes::KafkaCode;
use crate::config::{self, ClientConfig, CLIENT_KEYS};
use crate::error::{Error, Result};
use connection::Connection;
use metadata::{ClusterMetadata, MetadataCache, Snapshot, TopicsQuery};
use pool::{Connector, Pool, Wait};

use crate::security::{
    OAuthBearerTokenProvider, Pem, ProviderHandle, SaslMechanism, Secret, SecurityProtocol,
};

/// Builds a [`Client`].
///
/// Setters never fail; an invalid value is remembered and reported by [`ClientBuilder::build`],
/// which validates everything before opening any connection.
///
/// ```no_run
/// # async fn f() -> ferrokafka::Result<()> {
/// use std::time::Duration;
/// let client = ferrokafka::Client::builder()
///     .bootstrap_servers("kafka-1:9092,kafka-2:9092")
///     .client_id("billing")
///     .request_timeout(Duration::from_secs(10))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
pub struct ClientBuilder {
    cfg: ClientConfig,
    /// `default.api.timeout.ms`; kept apart from `ClientConfig` because only whole-operation
    /// retry loops use it, never a connection.
    api_timeout: Option<Duration>,
    /// `connect.lazily`: `build()` returns without waiting for a broker (see `lazy_connect`).
    lazy: bool,
    error: Option<Error>,
    connector: Option<Arc<dyn Connector>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.cfg)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// A builder with every setting at its default.
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            cfg: ClientConfig::default(),
            api_timeout: None,
            lazy: false,
            error: None,
            connector: None,
        }
    }

    /// A builder from Java/librdkafka property names, e.g.
    /// `[("bootstrap.servers", "k1:9092"), ("request.timeout.ms", "10000")]`.
    /// Unknown keys and invalid values are reported by `build()`, naming the key.
    pub fn from_properties<K: AsRef<str>, V: AsRef<str>>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> ClientBuilder {
        props.into_iter().fold(ClientBuilder::new(), |b, (k, v)| {
            b.set(k.as_ref(), v.as_ref())
        })
    }

    /// Sets one property by its Java/librdkafka name (`bootstrap.servers`, `client.id`,
    /// `request.timeout.ms`, `socket.connection.setup.timeout.ms`, `reconnect.backoff.ms`,
    /// `reconnect.backoff.max.ms`, `metadata.max.age.ms`, `retry.backoff.ms`,
    /// `retry.backoff.max.ms`, `receive.message.max.bytes`, `allow.auto.create.topics`,
    /// `default.api.timeout.ms`, `metadata.recovery.strategy` (`rebootstrap`, the default, or
    /// `none`), `metadata.recovery.rebootstrap.trigger.ms`), and the security settings (`security.protocol`,
    /// `ssl.ca.location`, `ssl.ca.pem`, `ssl.certificate.location`, `ssl.certificate.pem`,
    /// `ssl.key.location`, `ssl.key.pem`, `ssl.key.password`,
    /// `ssl.endpoint.identification.algorithm`, `sasl.mechanism` (or `sasl.mechanisms`),
    /// `sasl.username`, `sasl.password`, `sasl.jaas.config`, and for OAUTHBEARER
    /// `sasl.oauthbearer.token.endpoint.url`, `sasl.oauthbearer.client.id`,
    /// `sasl.oauthbearer.client.secret`, `sasl.oauthbearer.scope`,
    /// `sasl.oauthbearer.extensions`; see `docs/SECURITY.md`).
    pub fn set(mut self, key: &str, value: &str) -> ClientBuilder {
        let result = match key {
            "default.api.timeout.ms" => {
                config::parse_ms(key, value, 1, i32::MAX as u64).map(|d| self.api_timeout = Some(d))
            }
            "connect.lazily" => config::parse_bool(key, value).map(|b| self.lazy = b),
            _ => match self.cfg.apply(key, value) {
                Ok(true) => Ok(()),
                Ok(false) => Err(config::unknown_key(
                    key,
                    &[CLIENT_KEYS, config::BUILDER_ONLY_CLIENT_KEYS],
                )),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
        self
    }

    /// `bootstrap.servers`: a comma-separated list of `host:port`. Required.
    pub fn bootstrap_servers(self, servers: impl AsRef<str>) -> ClientBuilder {
        self.set("bootstrap.servers", servers.as_ref())
    }

    /// `client.id`, sent with every request (default `ferrokafka`).
    pub fn client_id(mut self, id: impl Into<String>) -> ClientBuilder {
        self.cfg.client_id = id.into();
        self
    }

    /// `request.timeout.ms`: how long a request waits for its response (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.cfg.request_timeout = timeout;
        self
    }

    /// `socket.connection.setup.timeout.ms`: TCP connect plus handshake (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.cfg.connect_timeout = timeout;
        self
    }

    /// `reconnect.backoff.ms` / `reconnect.backoff.max.ms`: the wait after a failed connection
    /// attempt doubles from `base` up to `max`, with ±20% jitter (defaults 50 ms and 1 s).
    pub fn reconnect_backoff(mut self, base: Duration, max: Duration) -> ClientBuilder {
        self.cfg.reconnect_backoff = base;
        self.cfg.reconnect_backoff_max = max;
        self
    }

    /// `retry.backoff.ms` / `retry.backoff.max.ms`: the wait before retrying a failed request
    /// doubles from `base` up to `max`, with jitter (defaults 100 ms and 1 s).
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> ClientBuilder {
        self.cfg.retry_backoff = base;
        self.cfg.retry_backoff_max = max;
        self
    }

    /// `metadata.max.age.ms`: metadata is refreshed in the background at least this often
    /// (default 5 minutes).
    pub fn metadata_max_age(mut self, age: Duration) -> ClientBuilder {
        self.cfg.metadata_max_age = age;
        self
    }

    /// `receive.message.max.bytes`: the largest response accepted (default 100 MB + 512).
    pub fn max_response_size(mut self, bytes: usize) -> ClientBuilder {
        self.cfg.max_response_size = bytes;
        self
    }

    /// `default.api.timeout.ms`: the deadline for a whole client operation such as an admin
    /// call, retries included (default 60 s).
    pub fn api_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.api_timeout = Some(timeout);
        self
    }

    /// `allow.auto.create.topics`: whether metadata requests may create missing topics on
    /// brokers that allow it (default true).
    pub fn allow_auto_create_topics(mut self, allow: bool) -> ClientBuilder {
        self.cfg.allow_auto_create_topics = allow;
        self
    }

    /// `security.protocol`: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
    pub fn security_protocol(mut self, protocol: SecurityProtocol) -> ClientBuilder {
        self.cfg.security.protocol = protocol;
        self
    }

    /// `sasl.mechanism`, `sasl.username` and `sasl.password` at once. Needs
    /// `security.protocol` SASL_PLAINTEXT or SASL_SSL. The password is never logged or shown
    /// in `Debug` output or errors.
    pub fn sasl(
        mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> ClientBuilder {
        let s = &mut self.cfg.security;
        s.mechanism = Some(mechanism);
        s.username = Some(username.into());
        s.password = Some(Secret::new(password));
        s.credentials_from_jaas = false;
        self
    }

    /// OAUTHBEARER with the application's own tokens: sets `sasl.mechanism=OAUTHBEARER` and
    /// takes tokens from `provider` (instead of the `sasl.oauthbearer.*` OIDC settings). The
    /// client caches each token and asks for a new one after 80–85 % of its lifetime; tokens
    /// are never logged. Needs `security.protocol` SASL_PLAINTEXT or SASL_SSL.
    pub fn oauthbearer_token_provider(
        mut self,
        provider: Arc<dyn OAuthBearerTokenProvider>,
    ) -> ClientBuilder {
        let s = &mut self.cfg.security;
        s.mechanism = Some(SaslMechanism::OAuthBearer);
        s.oauth.provider = Some(ProviderHandle(provider));
        self
    }

    /// `ssl.ca.location`: a PEM file of the CA certificates that may sign brokers'
    /// certificates (default: Mozilla's root CAs, built in).
    pub fn ssl_ca_location(mut self, path: impl Into<std::path::PathBuf>) -> ClientBuilder {
        self.cfg.security.ca = Some(Pem::File(path.into()));
        self
    }

    /// `ssl.ca.pem`: the CA certificates as PEM text.
    pub fn ssl_ca_pem(mut self, pem: impl Into<String>) -> ClientBuilder {
        self.cfg.security.ca = Some(Pem::Inline(Secret::new(pem)));
        self
    }

    /// `ssl.certificate.location` and `ssl.key.location`: the client certificate (chain) and
    /// its private key as PEM files, for brokers that require client certificates (mTLS).
    pub fn ssl_client_cert_location(
        mut self,
        certificate: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> ClientBuilder {
        self.cfg.security.certificate = Some(Pem::File(certificate.into()));
        self.cfg.security.key = Some(Pem::File(key.into()));
        self
    }

    /// `ssl.certificate.pem` and `ssl.key.pem`: the client certificate (chain) and its private
    /// key as PEM text.
    pub fn ssl_client_cert_pem(
        mut self,
        certificate: impl Into<String>,
        key: impl Into<String>,
    ) -> ClientBuilder {
        self.cfg.security.certificate = Some(Pem::Inline(Secret::new(certificate)));
        self.cfg.security.key = Some(Pem::Inline(Secret::new(key)));
        self
    }

    /// `ssl.key.password`: the password of an encrypted PKCS#8 private key.
    pub fn ssl_key_password(mut self, password: impl Into<String>) -> ClientBuilder {
        self.cfg.security.key_password = Some(Secret::new(password));
        self
    }

    /// `ssl.endpoint.identification.algorithm`: `true` (`https`, the default) checks that a
    /// broker's certificate names the host connected to; `false` (`none`) skips that check
    /// (the CA chain is still verified) and logs a warning.
    pub fn ssl_hostname_verification(mut self, verify: bool) -> ClientBuilder {
        self.cfg.security.verify_hostname = verify;
        self
    }

    #[cfg(test)]
    pub(crate) fn connector(mut self, connector: Arc<dyn Connector>) -> ClientBuilder {
        self.connector = Some(connector);
        self
    }

    /// `connect.lazily` (default false): with `true`, [`ClientBuilder::build`] validates the
    /// configuration and returns at once, without waiting for a broker, as the Java client
    /// and librdkafka do; a background task keeps trying the bootstrap addresses
    /// (`reconnect.backoff.ms` up to `reconnect.backoff.max.ms`), and every request waits
    /// and retries within its own timeout (`max.block.ms` for a producer's first record
    /// to a topic, `default.api.timeout.ms` for admin calls, the group's join loop for a
    /// consumer). For a service whose pod may start before Kafka. A wrong address or
    /// credentials then shows in those requests' errors (and in warnings), not in `build()`;
    /// [`Client::wait_ready`] waits for the first metadata, as a readiness check.
    ///
    /// The default (`false`) is the eager check: `build()` fails at once, with
    /// [`Error::NoBrokerAvailable`], when no bootstrap address answers.
    pub fn lazy_connect(mut self, lazy: bool) -> ClientBuilder {
        self.lazy = lazy;
        self
    }

    /// Validates the configuration, connects to the first bootstrap address that answers and
    /// loads the cluster's metadata.
    ///
    /// Fails with [`Error::Config`] for an invalid setting (before any network activity) and
    /// with [`Error::NoBrokerAvailable`] when no bootstrap address answers — unless
    /// [`ClientBuilder::lazy_connect`] is on, in which case it returns without connecting.
    pub async fn build(mut self) -> Result<Client> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.cfg.statistics_interval.is_zero() {
            warn!(
                "statistics.interval.ms is set, but ferrokafka has no statistics callback: \
                 use Consumer::metrics() for consumer counters and the `tracing` events \
                 (target `ferrokafka`) for the rest; the setting has no effect"
            );
        }
        self.cfg.validate()?;
        // The OAUTHBEARER token cache (and the OIDC provider's HTTPS configuration).
        let timeout = self.cfg.request_timeout;
        self.cfg.security.prepare(timeout)?;
        // TLS settings are turned into a rustls configuration here, reading the certificate
        // and key files once: a missing or malformed file fails `build()`, naming its key.
        let connector = match self.connector {
            Some(c) => c,
            None => crate::security::connector(&self.cfg.security)?,
        };
        let cfg = Arc::new(self.cfg);
        let inner = Arc::new(ClientInner {
            pool: Pool::new(cfg.clone(), connector),
            metadata: MetadataCache::new(),
            api_timeout: self.api_timeout.unwrap_or(Duration::from_secs(60)),
            closed: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            metadata_failing_since: Mutex::new(None),
            cfg,
        });
        if !self.lazy {
            inner
                .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
                .await?;
        }
        let task = tokio::spawn(periodic_refresh(Arc::downgrade(&inner)));
        inner.tasks.lock().unwrap().push(task);
        Ok(Client { inner })
    }
}

/// A connection to a Kafka cluster, shared by producers, consumers and [`Admin`].
///
/// Cloning is cheap and every clone uses the same connections and metadata. Background work
/// stops when the last clone is dropped or [`Client::close`] is called.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

/// The state behind every [`Client`] handle.
pub(crate) struct ClientInner {
    pub(crate) cfg: Arc<ClientConfig>,
    pub(crate) pool: Pool,
    pub(crate) metadata: MetadataCache,
    pub(crate) api_timeout: Duration,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Since when every metadata refresh has failed (`None` after a success): the clock of
    /// `metadata.recovery.rebootstrap.trigger.ms`. Touched only by `refresh_metadata`.
    metadata_failing_since: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ClientInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInner")
            .field("bootstrap", &self.cfg.bootstrap)
            .field("pool", &self.pool)
            .finish()
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl Client {
    /// A [`ClientBuilder`] with default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Fetches fresh metadata for `topics` (all of them must be named; use
    /// [`Admin::list_topics`] to discover topics). The result has the cluster's brokers and
    /// the requested topics; a topic that does not exist carries its error code
    /// (UNKNOWN_TOPIC_OR_PARTITION), or is created if `allow.auto.create.topics` is on and the
    /// broker allows it. Retries transient failures until `default.api.timeout.ms`.
    pub async fn metadata(&self, topics: &[&str]) -> Result<ClusterMetadata> {
        let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let snapshot = self
            .inner
            .retrying(ApiKey::Metadata, || {
                self.inner
                    .refresh_metadata(TopicsQuery::Some(names.clone()), None)
            })
            .await?;
        let mut cluster = snapshot.cluster.clone();
        cluster.topics.retain(|t| names.contains(&t.name));
        Ok(cluster)
    }

    /// Waits until the client has the cluster's metadata (one broker answered), retrying
    /// within `timeout`: the readiness check of a client built with
    /// [`ClientBuilder::lazy_connect`]. Returns at once if metadata is already there (always
    /// the case for an eagerly built client). Fails with the last error (typically
    /// [`Error::NoBrokerAvailable`]) when no broker answered in time, or at once with a
    /// permanent one (TLS, SASL).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let cfg = &self.inner.cfg;
        let mut backoff = Backoff::new(cfg.reconnect_backoff, cfg.reconnect_backoff_max);
        loop {
            if self.inner.metadata.snapshot().fetched_at.is_some() {
                return Ok(());
            }
            let err = match self
                .inner
                .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if !err.is_retriable() || Instant::now() + delay >= deadline {
                return Err(err);
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// The metadata the client currently holds, without asking the cluster.
    pub fn cached_metadata(&self) -> ClusterMetadata {
        self.inner.metadata.snapshot().cluster.clone()
    }

    /// Per-broker request, latency and connection metrics of this client (and of every
    /// producer and consumer built on it). Cheap: a few atomic loads per broker.
    pub fn metrics(&self) -> crate::metrics::ClientMetrics {
        self.inner.pool.stats.snapshot()
    }

    /// Administration (topics, cluster) through this client's connections.
    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
    }

    /// Stops background work and closes every connection. Further calls on any clone fail
    /// with [`Error::Closed`]. Requests in flight fail with a retriable disconnect error.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let tasks: Vec<JoinHandle<()>> = self.inner.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        self.inner.pool.close();
    }
}

impl ClientInner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Refreshes metadata (single flight). With `seen_generation`, returns at once if a newer
    /// snapshot than the one the caller saw is already installed.
    pub(crate) async fn refresh_metadata(
        &self,
        query: TopicsQuery,
        seen_generation: Option<u64>,
    ) -> Result<Arc<Snapshot>> {
        self.check_open()?;
        let _flight = self.metadata.refresh_lock.lock().await;
        if let Some(seen) = seen_generation {
            let current = self.metadata.snapshot();
            if current.generation > seen {
                return Ok(current);
            }
        }
        let (topics, covered_all) = match query {
            TopicsQuery::All => (None, true),
            TopicsQuery::Some(names) => {
                self.metadata.add_interest(names.iter().map(String::as_str));
                let topics = self
                    .metadata
                    .interest()
                    .into_iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n))))
                    })
                    .collect();
                (Some(topics), false)
            }
        };
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(self.cfg.allow_auto_create_topics);
        let mut resp = self
            .send_to_any(&req)
            .await
            .inspect_err(|_| self.metadata_failed())?;
        if resp.error_code == KafkaCode::RebootstrapRequired.code() && self.cfg.rebootstrap {
            // KIP-1102: the broker says this client's view of the cluster is beyond repair
            // (e.g. the cluster behind the bootstrap name was replaced): start over from the
            // bootstrap addresses, once.
            self.rebootstrap("a broker answered REBOOTSTRAP_REQUIRED");
            resp = self
                .send_to_any(&req)
                .await
                .inspect_err(|_| self.metadata_failed())?;
        }
        Error::check_code(resp.error_code, None, || "Metadata".to_owned())
            .inspect_err(|_| self.metadata_failed())?;
        *self.metadata_failing_since.lock().unwrap() = None;
        let cluster = ClusterMetadata::from_response(&resp);
        self.pool
            .set_brokers(cluster.brokers.iter().map(|b| (b.id, b.address())));
        let snapshot = self.metadata.install(cluster, covered_all);
        debug!(
            generation = snapshot.generation,
            brokers = snapshot.cluster.brokers.len(),
            "metadata refreshed"
        );
        Ok(snapshot)
    }

    /// A metadata refresh failed. With `metadata.recovery.strategy=rebootstrap`, once
    /// refreshes have failed for `metadata.recovery.rebootstrap.trigger.ms` (KIP-1102: the
    /// known brokers accept connections but never answer, say), the client rebootstraps.
    fn metadata_failed(&self) {
        if !self.cfg.rebootstrap {
            return;
        }
        let mut since = self.metadata_failing_since.lock().unwrap();
        let started = *since.get_or_insert_with(Instant::now);
        if started.elapsed() >= self.cfg.rebootstrap_trigger {
            // The clock starts again: the next rebootstrap comes a trigger period later.
            *since = None;
            drop(since);
            self.rebootstrap("metadata.recovery.rebootstrap.trigger.ms passed without metadata");
        }
    }

    /// Goes back to the bootstrap addresses (see [`Pool::rebootstrap`]).
    fn rebootstrap(&self, why: &str) {
        warn!(reason = why, bootstrap = ?self.cfg.bootstrap, "rebootstrapping");
        self.pool.rebootstrap();
    }

    /// Sends `req` to any broker that answers: an open connection first, then the known
    /// brokers, then the bootstrap addresses (KIP-899's rebootstrap: a cluster whose every
    /// broker moved is found again through bootstrap, whose names are resolved again on
    /// every connection attempt; with `metadata.recovery.strategy=none` only until the first
    /// metadata arrived). Brokers in reconnect backoff are skipped, not waited for.
    pub(crate) async fn send_to_any<R: Request>(&self, req: &R) -> Result<R::Response> {
        let mut tried = Vec::new();
        let mut last = None;
        if let Some(conn) = self.pool.any_open() {
            match conn.send(req).await {
                Ok(r) => return Ok(r),
                Err(e) if is_broker_unreachable(&e) => {
                    tried.push(conn.label().to_string());
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        let mut ids = self.pool.broker_ids();
        // Spread metadata load over the cluster instead of always asking the same broker.
        ids.sort_by_key(|id| crate::backoff::jitter(Duration::from_millis(100 + *id as u64 % 7)));
        if self.cfg.rebootstrap || self.metadata.snapshot().fetched_at.is_none() {
            ids.extend(self.pool.bootstrap_ids());
        }
        for id in ids {
            let result = match self.pool.get(id, Wait::No).await {
                Ok(conn) => conn.send(req).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(r) => return Ok(r),
                Err(e) if is_broker_unreachable(&e) => {
                    tried.push(self.pool.describe(id));
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoBrokerAvailable {
            tried: tried.join(", ").into(),
            last: last.map(Arc::new),
        })
    }

    /// The connection to broker `id`, waiting out its reconnect backoff if needed.
    pub(crate) async fn broker(&self, id: i32) -> Result<Arc<Connection>> {
        self.check_open()?;
        self.pool.get(id, Wait::ForBackoff).await
    }

    /// The coordinator socket of `owner` (see [`Pool::coordinator`]).
    pub(crate) async fn coordinator_socket(&self, owner: u64) -> Result<Arc<Connection>> {
        self.check_open()?;
        self.pool.coordinator(owner, Wait::ForBackoff).await
    }

    /// The current leader of a partition, refreshing metadata once if it is unknown.
    // Unused since the admin client batches partitions per leader from fresh metadata
    // (`Admin::by_leader`); kept for single-partition callers.
    #[allow(dead_code)]
    pub(crate) async fn leader(&self, topic: &str, partition: i32) -> Result<i32> {
        let snapshot = self.metadata.snapshot();
        if let Some(l) = snapshot.leader(topic, partition) {
            return Ok(l);
        }
        let snapshot = self
            .refresh_metadata(
                TopicsQuery::Some(vec![topic.to_owned()]),
                Some(snapshot.generation),
            )
            .await?;
        let t = snapshot.cluster.topic(topic);
        if let Some(code) = t.and_then(|t| t.error) {
            return Err(Error::broker(
                code,
                None,
                format!("Metadata for topic {topic}"),
            ));
        }
        snapshot.leader(topic, partition).ok_or_else(|| {
            let code = match t {
                Some(t) if t.partition(partition).is_some() => crate::KafkaCode::LeaderNotAvailable,
                _ => crate::KafkaCode::UnknownTopicOrPartition,
            };
            Error::broker(code, None, format!("leader of {topic}-{partition}"))
        })
    }

    /// The one retry loop for whole operations: runs `attempt` until it succeeds, the
    /// classifier calls the error permanent, or `default.api.timeout.ms` would pass. Errors
    /// that call for it refresh metadata (generation-checked) before the next attempt.
    pub(crate) async fn retrying<T, F, Fut>(&self, api: ApiKey, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.api_timeout;
        let mut backoff = Backoff::new(self.cfg.retry_backoff, self.cfg.retry_backoff_max);
        loop {
            self.check_open()?;
            let generation = self.metadata.snapshot().generation;
            let err = match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let action = classify(&err, Some(api));
            let delay = backoff.next_delay();
            if !action.contains(Action::RETRY) || Instant::now() + delay >= deadline {
                return Err(err);
            }
            debug!(api = crate::protocol::api_name(api), error = %err, ?action, "retrying");
            if action.contains(Action::REFRESH_METADATA) {
                // Best effort: if the refresh fails, the next attempt reports why.
                if let Err(e) = self
                    .refresh_metadata(TopicsQuery::Some(Vec::new()), Some(generation))
                    .await
                {
                    debug!(error = %e, "metadata refresh before retry failed");
                }
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// Errors after which another broker may still answer.
fn is_broker_unreachable(e: &Error) -> bool {
    matches!(
        e,
        Error::Connect { .. } | Error::Disconnected { .. } | Error::Timeout { .. } | Error::Io(_)
    )
}

/// Keeps metadata for the topics of interest no older than `metadata.max.age.ms`. A client
/// built lazily has none yet: it is fetched first, retried with the reconnect backoff until
/// a broker answers.
async fn periodic_refresh(client: Weak<ClientInner>) {
    let mut backoff = match client.upgrade() {
        Some(c) => Backoff::new(c.cfg.reconnect_backoff, c.cfg.reconnect_backoff_max),
        None => return,
    };
    let mut failures = 0u32;
    loop {
        let delay = {
            let Some(c) = client.upgrade() else { return };
            if c.metadata.snapshot().fetched_at.is_some() {
                break;
            }
            match c
                .refresh_metadata(TopicsQuery::Some(Vec::new()), None)
                .await
            {
                Ok(_) => break,
                Err(Error::Closed) => return,
                Err(e) => {
                    failures += 1;
                    // Once, then every 20th try: a broker that is still starting is normal.
                    if failures == 1 || failures.is_multiple_of(20) {
                        warn!(error = %e, failures, "no broker answered yet; still trying");
                    }
                    backoff.next_delay()
                }
            }
        };
        tokio::time::sleep(delay).await;
    }
    loop {
        let age = match client.upgrade() {
            Some(c) => c.cfg.metadata_max_age,
            None => return,
        };
        tokio::time::sleep(age).await;
        let Some(c) = client.upgrade() else { return };
        let seen = c.metadata.snapshot();
        let stale = seen.fetched_at.is_none_or(|t| t.elapsed() >= age);
        if stale {
            if let Err(e) = c
                .refresh_metadata(TopicsQuery::Some(Vec::new()), Some(seen.generation))
                .await
            {
                warn!(error = %e, "periodic metadata refresh failed");
            }
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
