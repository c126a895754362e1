//! Shared harness for the integration tests: timeouts, topic names, a Tansu broker process,
//! an external cluster from `KAFKA_BOOTSTRAP`, and librdkafka's mock cluster.
//!
//! Each `tests/*.rs` file that says `mod common;` compiles its own copy, and not every
//! file uses everything.
#![allow(dead_code)]

use std::fs;
use std::future::Future;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrokafka::{Client, NewTopic};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// Upper bound for any single awaited step of a test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a freshly started Tansu gets to accept TCP connections (it needs ~10 ms).
pub const TANSU_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Tansu's fixed node id.
pub const TANSU_NODE_ID: i32 = 111;

/// Environment variable naming the tansu binary (set by `cargo xtask test`).
pub const TANSU_ENV: &str = "FERROKAFKA_TANSU";

/// Environment variable with the bootstrap of an external cluster (e.g. real Apache Kafka).
pub const EXTERNAL_ENV: &str = "KAFKA_BOOTSTRAP";

/// Environment variable choosing the broker of the generic suites: `tansu` (default) or
/// `kafka` (the shared real Apache Kafka node of [`kafka`]). `cargo xtask test` runs those
/// suites once with each.
pub const BROKER_ENV: &str = "FERROKAFKA_BROKER";

/// Awaits `fut` with [`TEST_TIMEOUT`]; panics with `what` and the timeout if it elapses.
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    init_tracing();
    match tokio::time::timeout(TEST_TIMEOUT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {TEST_TIMEOUT:?}: {what}"),
    }
}

/// Sends ferrokafka's `tracing` events to the test's output when `RUST_LOG` is set (e.g.
/// `RUST_LOG=ferrokafka=debug`), so a failing integration test can be diagnosed.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Unique topic name: prefix + pid + counter + nanos, valid Kafka topic chars.
///
/// Characters of `prefix` outside `[A-Za-z0-9._-]` become `-`, and the prefix is cut so the
/// whole name stays within Kafka's 249-character limit.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let suffix = format!("-{}-{n}-{nanos}", std::process::id());
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean.truncate(249 - suffix.len());
    if clean.is_empty() {
        clean.push('t');
    }
    clean + &suffix
}

/// The workspace root (integration tests compile in the root package).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the tansu binary is: `$FERROKAFKA_TANSU`, else `<workspace>/target/brokers/tansu`.
pub fn tansu_binary() -> PathBuf {
    match std::env::var_os(TANSU_ENV).filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => workspace_root()
            .join("target")
            .join("brokers")
            .join("tansu"),
    }
}

/// Serialises "pick a free port, start Tansu on it, wait until it listens" within this test
/// binary, so two tests starting brokers at once cannot be handed the same port.
static STARTING: Mutex<()> = Mutex::new(());

/// A Tansu broker process on an ephemeral loopback port, killed on Drop.
pub struct Tansu {
    child: Option<Child>,
    port: u16,
    /// The port Tansu tells clients to use, when it differs from `port` (a proxy in front).
    advertised: Option<u16>,
    log: PathBuf,
    binary: PathBuf,
}

impl Tansu {
    /// Starts Tansu (binary from env FERROKAFKA_TANSU, else <workspace>/target/brokers/tansu)
    /// on a free loopback port with in-memory storage, and waits until it accepts TCP
    /// connections. Panics (never skips) if the binary is missing or it does not come up.
    pub fn start() -> Tansu {
        let binary = tansu_binary();
        if !binary.is_file() {
            panic!(
                "the Tansu test broker is not installed at {}: run `cargo xtask install-brokers` \
                 (or `cargo xtask test`, which installs it), or set {TANSU_ENV} to a tansu binary",
                binary.display()
            );
        }
        let _guard = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        // Another process may take the port between our probe and Tansu's bind: then Tansu
        // exits at once and we try another port.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let log = log_path(port);
            let mut tansu = Tansu {
                child: None,
                port,
                advertised: ADVERTISE.with(|a| a.get()),
                log,
                binary: binary.clone(),
            };
            tansu.spawn(true);
            match tansu.wait_ready() {
                Ok(()) => return tansu,
                Err(err) => failures.push(err),
            }
        }
        panic!("Tansu did not start:\n{}", failures.join("\n\n"));
    }

    /// Starts Tansu telling clients to connect to `advertised_port` (where a test proxy
    /// listens) instead of its own port.
    pub fn start_advertising(advertised_port: u16) -> Tansu {
        ADVERTISE.with(|a| a.set(Some(advertised_port)));
        let t = Tansu::start();
        ADVERTISE.with(|a| a.set(None));
        t
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file with the broker's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the process and waits for it to exit (port closed).
    pub fn kill(&mut self) {
        self.stop();
        let addr = self.addr();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            if Instant::now() >= deadline {
                panic!("{addr} still accepts connections 5 s after Tansu was killed");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again on the SAME port (memory storage: data is gone), waits until ready.
    /// Kills the running process first if there is one.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
        let deadline = Instant::now() + TANSU_READY_TIMEOUT;
        loop {
            self.spawn(false);
            match self.wait_ready() {
                Ok(()) => return,
                // The port may briefly still be held; retry until the deadline.
                Err(err) if Instant::now() >= deadline => {
                    panic!("Tansu did not restart on port {}:\n{err}", self.port)
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Creates a topic with the tansu CLI:
    /// `tansu topic create --broker tcp://127.0.0.1:PORT --partitions N NAME`.
    /// Panics with the CLI's output on failure (e.g. the topic already exists).
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let out = Command::new(&self.binary)
            .arg("topic")
            .arg("create")
            .arg("--broker")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .arg("--partitions")
            .arg(partitions.to_string())
            .arg(name)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        if !out.status.success() {
            panic!(
                "`tansu topic create --partitions {partitions} {name}` on {} failed ({}):\n\
                 stdout: {}\nstderr: {}",
                self.bootstrap(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Launches the process; a fresh log on first start, appended to on restart.
    fn spawn(&mut self, fresh_log: bool) {
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        let mut log = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh_log)
            .truncate(fresh_log)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let _ = writeln!(
            log,
            "--- test harness: starting tansu on port {} ---",
            self.port
        );
        let err_log = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", self.log.display()));
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised.unwrap_or(self.port));
        let mut cmd = Command::new(&self.binary);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&advertised)
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        // Tansu reads these as defaults for its flags, or sends telemetry with them.
        for var in [
            "CLUSTER_ID",
            "LISTENER_URL",
            "ADVERTISED_LISTENER_URL",
            "STORAGE_ENGINE",
            "SCHEMA_REGISTRY",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            cmd.env_remove(var);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// Waits until the port accepts TCP connections while the process runs.
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = self.addr();
        let deadline = Instant::now() + TANSU_READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "Tansu exited ({status}) before listening on {addr}; end of {}:\n{}",
                    self.log.display(),
                    kafka::log_tail(&self.log, 4096)
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "Tansu did not accept connections on {addr} within {TANSU_READY_TIMEOUT:?}; \
                     end of {}:\n{}",
                    self.log.display(),
                    kafka::log_tail(&self.log, 4096)
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills and reaps the process, if any. Never panics (used by Drop).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    listener.local_addr().expect("bound address").port()
}

/// `<workspace>/target/brokers/logs/tansu-<port>.log`.
fn log_path(port: u16) -> PathBuf {
    workspace_root()
        .join("target")
        .join("brokers")
        .join("logs")
        .join(format!("tansu-{port}.log"))
}

/// Bootstrap of an external cluster from env KAFKA_BOOTSTRAP, if set (and not empty).
pub fn external_bootstrap() -> Option<String> {
    std::env::var(EXTERNAL_ENV)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The broker of a generic suite: the external cluster (KAFKA_BOOTSTRAP), the shared real
/// Kafka node (FERROKAFKA_BROKER=kafka), or a fresh Tansu. Keep the returned guard alive for
/// as long as the test uses the broker.
pub enum Broker {
    External(String),
    Kafka(&'static KafkaCluster),
    Tansu(Tansu),
}

impl Broker {
    pub fn start() -> Broker {
        if let Some(bootstrap) = external_bootstrap() {
            return Broker::External(bootstrap);
        }
        match std::env::var(BROKER_ENV).unwrap_or_default().trim() {
            "" | "tansu" => Broker::Tansu(Tansu::start()),
            "kafka" => Broker::Kafka(kafka()),
            other => panic!("{BROKER_ENV}={other}: expected `tansu` or `kafka`"),
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Broker::External(bootstrap) => bootstrap.clone(),
            Broker::Kafka(cluster) => cluster.bootstrap(),
            Broker::Tansu(tansu) => tansu.bootstrap(),
        }
    }

    /// True for a broker other than Tansu (an external cluster or real Apache Kafka), where
    /// Tansu's quirks do not apply.
    pub fn is_external(&self) -> bool {
        !matches!(self, Broker::Tansu(_))
    }
}

/// The single real Apache Kafka node this test binary shares (started on first use; each
/// test uses its own topics and groups). Panics with install instructions when Kafka is not
/// installed, never skips.
pub fn kafka() -> &'static KafkaCluster {
    let cluster = kafka::shared(&workspace_root());
    wait_for_brokers(cluster, 1);
    cluster
}

/// A fresh real Apache Kafka cluster of `nodes` combined nodes (from 3 nodes on: replication
/// factor 3 and `min.insync.replicas=2` by default), for tests that kill or restart brokers.
/// Stopped and its directories removed on drop.
pub fn kafka_cluster(nodes: usize) -> KafkaCluster {
    kafka_cluster_with(KafkaOptions::new(nodes, logs_dir()))
}

/// [`kafka_cluster`] with options (extra server properties, format arguments).
pub fn kafka_cluster_with(options: KafkaOptions) -> KafkaCluster {
    let cluster = KafkaCluster::start(&kafka::kafka_home(&workspace_root()), &options)
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for_brokers(&cluster, options.nodes);
    eprintln!(
        "kafka harness: {}-node Apache Kafka {} at {} ready in {:.1} s",
        options.nodes,
        kafka::KAFKA_VERSION,
        cluster.bootstrap(),
        cluster.started_in().as_secs_f64()
    );
    cluster
}

/// `<workspace>/target/brokers/logs`.
pub fn logs_dir() -> PathBuf {
    workspace_root().join("target").join("brokers").join("logs")
}

/// Waits until a Metadata answer (asked by librdkafka, a client independent of the one under
/// test) lists `n` brokers.
pub fn wait_for_brokers(cluster: &KafkaCluster, n: usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .create()
        .unwrap_or_else(|e| panic!("cannot create a librdkafka client: {e}"));
    let deadline = Instant::now() + kafka::KAFKA_READY_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(md) if md.brokers().len() >= n => return,
            Ok(md) => last = format!("{} of {n} brokers listed", md.brokers().len()),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "Kafka at {} did not list {n} brokers within {:?}: {last}",
        cluster.bootstrap(),
        kafka::KAFKA_READY_TIMEOUT
    );
}

/// A client of `bootstrap` with the default settings.
pub async fn connect(bootstrap: &str) -> Client {
    within(
        "client",
        Client::builder().bootstrap_servers(bootstrap).build(),
    )
    .await
    .unwrap()
}

/// Creates `topic` with `partitions` partitions (replication factor 1); panics if it fails.
pub async fn create_topic(client: &Client, topic: &str, partitions: i32) {
    within(
        "create topic",
        client
            .admin()
            .create_topics(&[NewTopic::new(topic, partitions, 1)]),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot create topic {topic}: {e}"));
}

/// A broker ([`Broker::start`]), a client of it with the default settings, and a fresh topic
/// named after `prefix` with `partitions` partitions. Keep the broker alive while testing.
pub async fn broker_with_topic(prefix: &str, partitions: i32) -> (Broker, Client, String) {
    let broker = Broker::start();
    let client = connect(&broker.bootstrap()).await;
    let topic = unique_topic(prefix);
    create_topic(&client, &topic, partitions).await;
    (broker, client, topic)
}

/// librdkafka's mock cluster with `n` brokers on loopback ports; dropped, it shuts down.
/// Its state lives as long as the value: use a fresh one per test.
pub fn mock_cluster(n: i32) -> MockCluster<'static, DefaultProducerContext> {
    MockCluster::new(n).unwrap_or_else(|e| panic!("cannot create a mock cluster of {n}: {e}"))
}

pub mod peer;
pub mod proxy;

thread_local! {
    static ADVERTISE: std::cell::Cell<Option<u16>> = const { std::cell::Cell::new(None) };
}

/// A mock cluster for consumer-group tests. librdkafka 2.12's mock advertises JoinGroup v6,
/// SyncGroup v4 and LeaveGroup v4, but its handlers parse only the non-flexible layouts
/// (arrays as int32 counts, LeaveGroup's v0 member id) and drop the connection otherwise;
/// librdkafka itself never sends those versions. Capping them makes the mock answer what it
/// can parse; every other API keeps its full range.
pub fn mock_cluster_for_groups(n: i32) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = mock_cluster(n);
    cap_group_api_versions(&cluster);
    cluster
}

/// Caps JoinGroup, SyncGroup and LeaveGroup at the versions librdkafka's mock can parse (see
/// [`mock_cluster_for_groups`]).
pub fn cap_group_api_versions(cluster: &MockCluster<'_, DefaultProducerContext>) {
    use rdkafka::types::RDKafkaApiKey;
    for (api, max) in [
        (RDKafkaApiKey::JoinGroup, 5),
        (RDKafkaApiKey::SyncGroup, 3),
        (RDKafkaApiKey::LeaveGroup, 2),
    ] {
        cluster
            .apiversion(api, Some(0), Some(max))
            .unwrap_or_else(|e| panic!("cannot cap {api:?} at v{max}: {e}"));
    }
}

pub mod cutting_proxy;
pub mod faults;
pub mod java;
pub mod kafka;
pub mod tls_proxy;

pub use kafka::{KafkaCluster, KafkaOptions};

/// The binary of example `name`, built by cargo if missing or stale: cargo gives tests no
/// `CARGO_BIN_EXE_` for examples, and a `--test` filter does not build them. Built with the
/// test's own profile and target directory.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected profile directory {}", profile_dir.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args(["build", "--quiet", "--workspace", "--example", name])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
    assert!(
        out.status.success(),
        "building the {name} example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "no example binary at {}", bin.display());
    bin
}
