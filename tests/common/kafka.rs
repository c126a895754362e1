//! Real Apache Kafka (KRaft) started from the classpath that `cargo xtask install-brokers`
//! resolves from Maven Central: one combined broker+controller node, or a cluster of several,
//! each node a JVM process on free loopback ports with its own temporary directory.
//!
//! This file uses nothing but `std`, so `xtask` includes it too (`#[path]`): the one home of
//! the code that formats, starts, stops and waits for Kafka.
//!
//! A JVM broker takes seconds to start, so a test binary shares one single-node cluster
//! ([`shared`]) between its tests; a cluster of its own is only for tests that kill or restart
//! brokers. Every JVM is watched by a small `sh` process reading a pipe from the process that
//! started it: when that process exits in any way (even SIGKILL or abort), the pipe closes and
//! the watchdog kills the JVM and removes the node's directory, so no broker outlives its test
//! binary and a static shared cluster needs no destructor.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The Apache Kafka version `tests/kafka/pom.xml` pins (xtask checks that they agree).
pub const KAFKA_VERSION: &str = "4.4.0";

/// Environment variable naming the directory with `classpath.txt` (set by `cargo xtask`).
pub const KAFKA_HOME_ENV: &str = "FERROKAFKA_KAFKA_HOME";

/// How long a node gets from launch to serving (measured: ~4.5 s alone on 2 cores).
pub const KAFKA_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// `<workspace>/target/brokers/kafka-<version>` unless [`KAFKA_HOME_ENV`] says otherwise.
pub fn kafka_home(workspace: &Path) -> PathBuf {
    match std::env::var_os(KAFKA_HOME_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => workspace
            .join("target")
            .join("brokers")
            .join(format!("kafka-{KAFKA_VERSION}")),
    }
}

/// The Java classpath of the broker and the Java client, as `install-brokers` wrote it.
/// Errors say how to install it.
pub fn kafka_classpath(home: &Path) -> Result<String, String> {
    let file = home.join("classpath.txt");
    match fs::read_to_string(&file) {
        Ok(cp) if !cp.trim().is_empty() => Ok(cp.trim().to_string()),
        _ => Err(format!(
            "Apache Kafka {KAFKA_VERSION} is not installed ({} is missing): run `cargo xtask \
             install-brokers` (needs `java` 17+ and `mvn`; `cargo xtask test` runs it too), or \
             set {KAFKA_HOME_ENV} to a directory holding classpath.txt",
            file.display()
        )),
    }
}

/// How a cluster is laid out and configured.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// Number of combined broker+controller nodes (ids 1..=nodes), all quorum voters.
    pub nodes: usize,
    /// Extra `server.properties` lines, `key=value`, applied to every node after the defaults.
    pub properties: Vec<(String, String)>,
    /// Extra arguments for `kafka-storage format` (e.g. `--feature transaction.version=1`).
    pub format_args: Vec<String>,
    /// Where logs go: `<dir>/kafka-<cluster>-node<id>.log`.
    pub log_dir: PathBuf,
    /// Extra client listeners, `(name, security protocol)` (e.g. `("SASL_SSL", "SASL_SSL")`),
    /// each on a port of its own on every node, advertised next to the PLAINTEXT one (which
    /// stays the inter-broker listener; CONTROLLER stays PLAINTEXT too). Their `ssl.*` /
    /// `sasl.*` settings go in [`KafkaOptions::properties`], prefixed with
    /// `listener.name.<lowercase name>.` where they differ per listener.
    pub listeners: Vec<(String, String)>,
    /// Extra JVM arguments for every node, e.g. `-Dorg.apache.kafka.sasl.oauthbearer.
    /// allowed.urls=...` (Kafka reads some security settings only as system properties).
    pub jvm_args: Vec<String>,
}

impl KafkaOptions {
    /// `nodes` nodes; replication factor and min ISR for internal and new topics follow the
    /// size (1 and 1 for one node; 3 and 2 from three nodes on).
    pub fn new(nodes: usize, log_dir: PathBuf) -> KafkaOptions {
        assert!(nodes >= 1, "a cluster needs a node");
        KafkaOptions {
            nodes,
            properties: Vec::new(),
            format_args: Vec::new(),
            log_dir,
            listeners: Vec::new(),
            jvm_args: Vec::new(),
        }
    }

    /// Adds a JVM system property `-Dkey=value` to every node.
    pub fn jvm_property(mut self, key: &str, value: &str) -> KafkaOptions {
        self.jvm_args.push(format!("-D{key}={value}"));
        self
    }

    /// Adds or overrides one server property on every node.
    pub fn property(mut self, key: &str, value: &str) -> KafkaOptions {
        self.properties.push((key.to_string(), value.to_string()));
        self
    }

    /// Adds a client listener `name` speaking `protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT,
    /// SASL_SSL) on a port of its own; see [`KafkaCluster::listener_address`].
    pub fn listener(mut self, name: &str, protocol: &str) -> KafkaOptions {
        assert!(
            !matches!(name, "PLAINTEXT" | "CONTROLLER"),
            "{name} is the harness's own listener"
        );
        self.listeners
            .push((name.to_string(), protocol.to_string()));
        self
    }
}

/// One JVM node of a cluster.
struct Node {
    id: i32,
    port: u16,
    controller_port: u16,
    /// One port per [`KafkaOptions::listeners`] entry, in that order.
    listener_ports: Vec<(String, u16)>,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Write end of the watchdog's pipe: the current JVM pid is written to it; closing it
    /// (this value dropped, or the test process gone) kills that JVM and removes `dir`.
    watchdog: Option<(Child, ChildStdin)>,
}

/// A running KRaft cluster of combined nodes on loopback.
pub struct KafkaCluster {
    cluster_id: String,
    nodes: Vec<Node>,
    classpath: String,
    root: PathBuf,
    /// How long the last start took (all nodes together), for the notes and logs.
    started_in: Duration,
    /// [`KafkaOptions::jvm_args`], kept for restarts.
    jvm_args: Vec<String>,
}

impl KafkaCluster {
    /// Formats and starts a cluster, then waits until every node serves. Ports are picked
    /// free; when one was taken in between, the whole start is tried again (3 attempts).
    pub fn start(home: &Path, options: &KafkaOptions) -> Result<KafkaCluster, String> {
        let classpath = kafka_classpath(home)?;
        check_java()?;
        let mut failures = Vec::new();
        for _ in 0..3 {
            match KafkaCluster::try_start(&classpath, options) {
                Ok(cluster) => return Ok(cluster),
                Err(err) => failures.push(err),
            }
        }
        Err(format!(
            "Apache Kafka did not start:\n{}",
            failures.join("\n\n")
        ))
    }

    fn try_start(classpath: &str, options: &KafkaOptions) -> Result<KafkaCluster, String> {
        static CLUSTERS: AtomicU64 = AtomicU64::new(0);
        let seq = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("{}-{seq}-{nanos}", std::process::id());
        let root = std::env::temp_dir().join(format!("ferrokafka-kafka-{name}"));
        fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        fs::create_dir_all(&options.log_dir)
            .map_err(|e| format!("cannot create {}: {e}", options.log_dir.display()))?;

        // Holding the listeners until every port is chosen keeps two nodes from being
        // handed the same port.
        let mut held = Vec::new();
        let mut ports = Vec::new();
        let per_node = 2 + options.listeners.len();
        for _ in 0..options.nodes * per_node {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
            ports.push(l.local_addr().map_err(|e| e.to_string())?.port());
            held.push(l);
        }
        drop(held);

        let mut cluster = KafkaCluster {
            cluster_id: cluster_id(),
            nodes: Vec::new(),
            classpath: classpath.to_string(),
            root: root.clone(),
            started_in: Duration::ZERO,
            jvm_args: options.jvm_args.clone(),
        };
        for i in 0..options.nodes {
            let id = i as i32 + 1;
            let dir = root.join(format!("node{id}"));
            cluster.nodes.push(Node {
                id,
                port: ports[per_node * i],
                controller_port: ports[per_node * i + 1],
                listener_ports: options
                    .listeners
                    .iter()
                    .enumerate()
                    .map(|(j, (name, _))| (name.clone(), ports[per_node * i + 2 + j]))
                    .collect(),
                log: options.log_dir.join(format!("kafka-{name}-node{id}.log")),
                dir,
                child: None,
                watchdog: None,
            });
        }
        let voters = cluster
            .nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        for i in 0..cluster.nodes.len() {
            let node = &cluster.nodes[i];
            fs::create_dir_all(node.dir.join("data"))
                .map_err(|e| format!("cannot create {}: {e}", node.dir.display()))?;
            let props = server_properties(node, &voters, options);
            let file = node.dir.join("server.properties");
            fs::write(&file, props).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            cluster.format(i, options)?;
        }
        let started = Instant::now();
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_ready(i)?;
        }
        cluster.started_in = started.elapsed();
        Ok(cluster)
    }

    /// Every node's address, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node ids, 1..=nodes.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// `127.0.0.1:PORT` of one node's broker listener.
    pub fn address(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.node(id).port)
    }

    /// `127.0.0.1:PORT` of one node's extra listener `name` (see [`KafkaOptions::listener`]).
    pub fn listener_address(&self, id: i32, name: &str) -> String {
        let node = self.node(id);
        let port = node
            .listener_ports
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("node {id} has no listener {name}"))
            .1;
        format!("127.0.0.1:{port}")
    }

    /// Every node's address on listener `name`, comma-separated.
    pub fn listener_bootstrap(&self, name: &str) -> String {
        self.nodes
            .iter()
            .map(|n| self.listener_address(n.id, name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node's log file (stdout and stderr of its JVM).
    pub fn log_path(&self, id: i32) -> &Path {
        &self.node(id).log
    }

    /// How long the cluster took from launching its JVMs until every node served.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// True while the node's JVM runs.
    pub fn is_running(&mut self, id: i32) -> bool {
        let i = self.index(id);
        match self.nodes[i].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL: the node dies at once, without a controlled shutdown. Waits for the exit.
    pub fn kill(&mut self, id: i32) {
        self.signal_and_wait(id, "KILL", Duration::from_secs(10));
    }

    /// SIGTERM: a controlled shutdown (leadership moves away first). Waits for the exit.
    pub fn stop(&mut self, id: i32) {
        self.signal_and_wait(id, "TERM", Duration::from_secs(60));
    }

    /// Starts a stopped or killed node again on the same ports and data, and waits until it
    /// serves. Panics with the log's tail if it does not.
    pub fn restart(&mut self, id: i32) {
        let i = self.index(id);
        if self.is_running(id) {
            panic!("node {id} is still running: stop or kill it first");
        }
        let started = Instant::now();
        // The old listening port may linger briefly after a kill.
        loop {
            self.spawn(i).unwrap_or_else(|e| panic!("{e}"));
            match self.wait_ready(i) {
                Ok(()) => break,
                Err(err) if started.elapsed() > KAFKA_READY_TIMEOUT => {
                    panic!("node {id} did not restart:\n{err}")
                }
                Err(_) => thread::sleep(Duration::from_millis(500)),
            }
        }
        eprintln!(
            "kafka harness: node {id} restarted in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    /// Starts every node again, all of them stopped or killed, each with its client
    /// (PLAINTEXT) listener on a new free port (the controller port stays: it is the quorum's
    /// address), and waits until all serve. The nodes keep their ids and data and advertise
    /// the new ports, so a client that knew the old addresses finds none of them again.
    /// Returns the new `bootstrap()`. Panics with a log's tail if a node does not come up.
    pub fn restart_all_on_new_ports(&mut self) -> String {
        let started = Instant::now();
        for i in 0..self.nodes.len() {
            let id = self.nodes[i].id;
            assert!(
                !self.is_running(id),
                "node {id} is still running: stop or kill it first"
            );
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .unwrap_or_else(|e| panic!("cannot pick a loopback port: {e}"))
                .port();
            let node = &mut self.nodes[i];
            let path = node.dir.join("server.properties");
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let old = format!("PLAINTEXT://127.0.0.1:{}", node.port);
            let new = format!("PLAINTEXT://127.0.0.1:{port}");
            fs::write(&path, text.replace(&old, &new))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            node.port = port;
        }
        // All at once: one node alone has no controller quorum and never becomes ready.
        for i in 0..self.nodes.len() {
            self.spawn(i).unwrap_or_else(|e| panic!("{e}"));
        }
        for i in 0..self.nodes.len() {
            self.wait_ready(i)
                .unwrap_or_else(|e| panic!("node {} did not restart:\n{e}", self.nodes[i].id));
        }
        eprintln!(
            "kafka harness: {} nodes restarted on new ports in {:.1} s",
            self.nodes.len(),
            started.elapsed().as_secs_f64()
        );
        self.bootstrap()
    }

    fn node(&self, id: i32) -> &Node {
        &self.nodes[self.index(id)]
    }

    fn index(&self, id: i32) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    fn java(&self) -> Command {
        let mut cmd = Command::new("java");
        cmd.arg("-cp").arg(&self.classpath);
        cmd
    }

    fn format(&self, i: usize, options: &KafkaOptions) -> Result<(), String> {
        let node = &self.nodes[i];
        let mut cmd = self.java();
        // One `--cluster-id=` argument: an id starting with `-` (a quarter of them, base64url)
        // would otherwise be read as an option and fail the format.
        cmd.args(["-Xmx256m", "kafka.tools.StorageTool", "format"])
            .arg(format!("--cluster-id={}", self.cluster_id))
            .arg("-c")
            .arg(node.dir.join("server.properties"))
            .args(&options.format_args)
            .stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run java (kafka-storage format): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "kafka-storage format of node {} failed ({}):\n{}\n{}",
                node.id,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Launches node `i`'s JVM (appending to its log) and tells its watchdog the pid.
    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let classpath = self.classpath.clone();
        let jvm_args = self.jvm_args.clone();
        let node = &mut self.nodes[i];
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("cannot open {}: {e}", node.log.display()))?;
        let _ = writeln!(
            log,
            "--- kafka harness: starting node {} (broker 127.0.0.1:{}, controller {}) ---",
            node.id, node.port, node.controller_port
        );
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("java")
            .args(["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC"])
            .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
            .arg("-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS")
            .args(&jvm_args)
            .arg("-cp")
            .arg(&classpath)
            .arg("kafka.Kafka")
            .arg(node.dir.join("server.properties"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("cannot start java: {e}"))?;
        let pid = child.id();
        node.child = Some(child);
        if node.watchdog.is_none() {
            node.watchdog = Some(watchdog(&node.dir)?);
        }
        let (_, stdin) = node.watchdog.as_mut().expect("watchdog started");
        writeln!(stdin, "{pid}").map_err(|e| format!("cannot reach the watchdog: {e}"))?;
        Ok(())
    }

    /// Waits until node `i` accepts TCP connections on its broker port and has logged that
    /// it started (the socket opens only once the broker serves). Fails with the log's tail
    /// when the JVM exits first or the timeout passes.
    fn wait_ready(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
        let deadline = Instant::now() + KAFKA_READY_TIMEOUT;
        loop {
            let child = node.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                return Err(format!(
                    "Kafka node {} exited ({status}) before serving on {addr}; end of {}:\n{}",
                    node.id,
                    node.log.display(),
                    log_tail(&node.log, 6000)
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && log_tail(&node.log, 64 * 1024).contains("Kafka Server started")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if let Some(mut child) = node.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(format!(
                    "Kafka node {} did not serve on {addr} within {KAFKA_READY_TIMEOUT:?}; \
                     end of {}:\n{}",
                    node.id,
                    node.log.display(),
                    log_tail(&node.log, 6000)
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_and_wait(&mut self, id: i32, signal: &str, timeout: Duration) {
        let i = self.index(id);
        let node = &mut self.nodes[i];
        let Some(mut child) = node.child.take() else {
            panic!("node {id} is not running");
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            let _ = child.kill();
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() >= deadline {
                // A controlled shutdown that hangs is ended the hard way.
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = writeln!(
            fs::OpenOptions::new()
                .append(true)
                .open(&node.log)
                .expect("log exists"),
            "--- kafka harness: node {id} stopped with SIG{signal} ---"
        );
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            // Closing the pipe makes the watchdog remove the node's directory.
            if let Some((mut dog, stdin)) = node.watchdog.take() {
                drop(stdin);
                let _ = dog.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// `sh` reading pids from a pipe; at end of input it kills the last one and removes `dir`
/// (and the cluster's directory above it once the last node's is gone).
fn watchdog(dir: &Path) -> Result<(Child, ChildStdin), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(
            "pid=; while read -r line; do pid=$line; done; \
             [ -n \"$pid\" ] && kill -9 \"$pid\" 2>/dev/null; sleep 0.2; rm -rf \"$1\"; \
             rmdir \"$(dirname \"$1\")\" 2>/dev/null",
        )
        .arg("kafka-watchdog")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the watchdog shell: {e}"))?;
    let stdin = child.stdin.take().expect("piped");
    Ok((child, stdin))
}

fn server_properties(node: &Node, voters: &str, options: &KafkaOptions) -> String {
    let (rf, isr) = if options.nodes >= 3 { (3, 2) } else { (1, 1) };
    let extra = |f: &dyn Fn(&str, &str, u16) -> String| -> String {
        node.listener_ports
            .iter()
            .zip(&options.listeners)
            .map(|((name, port), (_, protocol))| f(name, protocol, *port))
            .collect()
    };
    let mut props: Vec<(String, String)> = [
        ("process.roles", "broker,controller".to_string()),
        ("node.id", node.id.to_string()),
        ("controller.quorum.voters", voters.to_string()),
        (
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}{}",
                node.port,
                node.controller_port,
                extra(&|name, _, port| format!(",{name}://127.0.0.1:{port}"))
            ),
        ),
        (
            "advertised.listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{}{}",
                node.port,
                extra(&|name, _, port| format!(",{name}://127.0.0.1:{port}"))
            ),
        ),
        ("controller.listener.names", "CONTROLLER".into()),
        ("inter.broker.listener.name", "PLAINTEXT".into()),
        (
            "listener.security.protocol.map",
            format!(
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{}",
                extra(&|name, protocol, _| format!(",{name}:{protocol}"))
            ),
        ),
        ("log.dirs", node.dir.join("data").display().to_string()),
        ("offsets.topic.replication.factor", rf.to_string()),
        ("offsets.topic.num.partitions", "1".into()),
        ("transaction.state.log.replication.factor", rf.to_string()),
        ("transaction.state.log.min.isr", isr.to_string()),
        ("transaction.state.log.num.partitions", "1".into()),
        (
            "share.coordinator.state.topic.replication.factor",
            rf.to_string(),
        ),
        ("share.coordinator.state.topic.min.isr", isr.to_string()),
        ("share.coordinator.state.topic.num.partitions", "1".into()),
        ("default.replication.factor", rf.to_string()),
        ("min.insync.replicas", isr.to_string()),
        ("num.partitions", "1".into()),
        ("group.initial.rebalance.delay.ms", "0".into()),
        // Timed-out transactions are aborted within a second (default: ten), so a test of
        // `transaction.timeout.ms` is quick.
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "1000".into(),
        ),
        ("log.cleaner.dedupe.buffer.size", "2097152".into()),
        ("num.network.threads", "2".into()),
        ("num.io.threads", "2".into()),
        // Tests create and delete topics freely.
        ("auto.create.topics.enable", "true".into()),
        ("delete.topic.enable", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (key, value) in &options.properties {
        match props.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => props.push((key.clone(), value.clone())),
        }
    }
    let mut text = String::from("# written by the ferrokafka test harness\n");
    for (k, v) in props {
        text.push_str(&format!("{k}={v}\n"));
    }
    text
}

/// A random cluster id: 16 bytes, URL-safe base64 without padding (22 characters), as
/// `kafka-storage random-uuid` prints; made here to save a JVM start.
fn cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ ((std::process::id() as u64) << 32);
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        // splitmix64: enough for a unique id, not for secrets.
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        *b = (z ^ (z >> 31)) as u8;
    }
    let mut out = String::new();
    let mut bits = 0u32;
    let mut acc = 0u32;
    for b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Fails with what to install when `java` is missing.
pub fn check_java() -> Result<(), String> {
    match Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err("`java` (17 or later) is not on PATH: install a JDK, e.g. \
                  `apt-get install openjdk-17-jdk-headless`"
            .to_string()),
    }
}

/// The last `max` bytes of a file, as text.
pub fn log_tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The single-node cluster this test binary shares between its tests, started on first use
/// (the JVM start takes seconds). Each test uses topics and groups of its own.
pub fn shared(workspace: &Path) -> &'static KafkaCluster {
    static SHARED: OnceLock<KafkaCluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let options = KafkaOptions::new(1, workspace.join("target/brokers/logs"));
        let cluster =
            KafkaCluster::start(&kafka_home(workspace), &options).unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "kafka harness: shared Apache Kafka {KAFKA_VERSION} node at {} ready in {:.1} s",
            cluster.bootstrap(),
            cluster.started_in().as_secs_f64()
        );
        cluster
    })
}
