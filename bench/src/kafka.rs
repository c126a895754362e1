//! `--kafka`: real Apache Kafka for the benchmark, one node or (`--kafka-nodes 3`) three, started
//! through the test harness (`tests/common/kafka.rs`, std only, as xtask includes it) from the
//! classpath that `cargo xtask install-brokers` resolves. Three nodes are the production shape the
//! issue asks about: topics with replication factor 3 and `min.insync.replicas=2`, so an acks=all
//! produce waits for a follower's fetch, and each partition leader is on one of three JVMs.
//!
//! Next to the harness's PLAINTEXT listener (the bench's admin calls and the plaintext
//! cases) the node has a `SASL_SSL` listener with SCRAM-SHA-512 for the TLS case: a
//! throw-away CA and a server certificate for `127.0.0.1` made with rcgen at start, and one
//! SCRAM user created when the storage is formatted. Both clients then pay the whole price of
//! a secured cluster: TLS on every byte plus the SASL handshake on every connection.
//!
//! The nodes live as long as the [`KafkaNode`]; the harness's watchdog also kills them if the
//! bench process dies.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::measure;

#[path = "../../tests/common/kafka.rs"]
mod harness;

pub use harness::KAFKA_VERSION;

/// The SCRAM user both clients authenticate as.
pub const USER: &str = "bench";
/// Its password.
pub const PASSWORD: &str = "bench-secret";
/// The name of the TLS listener.
const LISTENER: &str = "SASL_SSL";

/// How a worker reaches the SASL_SSL listener: SCRAM-SHA-512 as [`USER`], trusting `ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSsl {
    /// The PEM file of the CA that signed the broker's certificate.
    pub ca: PathBuf,
}

/// A running Kafka cluster of one or three nodes.
pub struct KafkaNode {
    cluster: harness::KafkaCluster,
    certs: PathBuf,
    /// The broker JVMs' pids, found on first use (the harness does not expose them).
    jvms: OnceLock<Vec<u32>>,
}

impl KafkaNode {
    /// Makes the certificates and starts `nodes` nodes (1 or 3); broker logs go to `log_dir`
    /// (default: a temporary directory).
    pub fn start(log_dir: Option<&Path>, nodes: usize) -> Result<KafkaNode, String> {
        let certs =
            std::env::temp_dir().join(format!("ferrokafka-bench-certs-{}", std::process::id()));
        std::fs::create_dir_all(&certs)
            .map_err(|e| format!("cannot create {}: {e}", certs.display()))?;
        make_certificates(&certs)?;
        let logs = log_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| std::env::temp_dir().join("ferrokafka-bench-kafka-logs"));
        let mut options = harness::KafkaOptions::new(nodes, logs)
            .listener(LISTENER, "SASL_SSL")
            .property("ssl.keystore.type", "PEM")
            .property(
                "ssl.keystore.location",
                &certs.join("server-keystore.pem").display().to_string(),
            )
            .property("sasl.enabled.mechanisms", "SCRAM-SHA-512")
            .property(
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            );
        options.format_args.push("--add-scram".into());
        options
            .format_args
            .push(format!("SCRAM-SHA-512=[name={USER},password={PASSWORD}]"));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let home = harness::kafka_home(&workspace);
        let cluster = harness::KafkaCluster::start(&home, &options)?;
        Ok(KafkaNode {
            cluster,
            certs,
            jvms: OnceLock::new(),
        })
    }

    /// How many nodes the cluster has; topics are created with this replication factor.
    pub fn nodes(&self) -> usize {
        self.cluster.node_ids().len()
    }

    /// The replication factor of the benchmark's topics.
    pub fn replication(&self) -> i16 {
        self.nodes() as i16
    }

    /// The PLAINTEXT listeners of every node: admin calls and the plaintext cases.
    pub fn plaintext(&self) -> String {
        self.cluster.bootstrap()
    }

    /// The SASL_SSL listeners of every node.
    pub fn sasl_ssl(&self) -> String {
        self.cluster.listener_bootstrap(LISTENER)
    }

    /// The broker's short name in a results file: `kafka`, or `kafka-3` for three nodes.
    pub fn id(&self) -> &'static str {
        if self.nodes() == 1 {
            "kafka"
        } else {
            "kafka-3"
        }
    }

    /// "1 node" or "3 nodes, RF 3, min.insync.replicas 2", for table headings.
    pub fn shape(&self) -> String {
        match self.nodes() {
            1 => "1 node".into(),
            n => format!("{n} nodes, RF {n}, min.insync.replicas 2"),
        }
    }

    /// What a worker needs for the SASL_SSL listener.
    pub fn security(&self) -> SaslSsl {
        SaslSsl {
            ca: self.certs.join("ca.pem"),
        }
    }

    /// The brokers' CPU time (user+sys, all nodes together) so far, in microseconds.
    pub fn cpu_micros(&self) -> Option<u64> {
        let pids = self.jvms.get_or_init(|| find_jvms(std::process::id()));
        if pids.is_empty() {
            return None;
        }
        pids.iter()
            .map(|&pid| measure::process_cpu_micros(pid))
            .sum()
    }
}

/// The pids of the Kafka JVMs this process started: the harness names each node's directory
/// `ferrokafka-kafka-<starter pid>-...`, and the JVM's command line holds its
/// `server.properties` path there.
fn find_jvms(starter: u32) -> Vec<u32> {
    let marker = format!("ferrokafka-kafka-{starter}-");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        let is_broker = cmdline.contains("kafka.Kafka")
            && cmdline.contains(&marker)
            && cmdline.contains("server.properties");
        is_broker.then_some(pid)
    })
    .collect()
}

/// `ca.pem` and `server-keystore.pem` (key, certificate for `127.0.0.1` and `localhost`, CA:
/// Kafka's PEM keystore layout) in `dir`.
fn make_certificates(dir: &Path) -> Result<(), String> {
    let e = |what: &str, err: rcgen::Error| format!("certificates: {what}: {err}");
    let ca_key = KeyPair::generate().map_err(|err| e("CA key", err))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|err| e("CA params", err))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ferrokafka bench CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).map_err(|err| e("CA", err))?;
    let key = KeyPair::generate().map_err(|err| e("server key", err))?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(|err| e("server params", err))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server = params
        .signed_by(&key, &ca, &ca_key)
        .map_err(|err| e("server certificate", err))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text)
            .map_err(|err| format!("cannot write {}: {err}", dir.join(name).display()))
    };
    write("ca.pem", ca.pem())?;
    write(
        "server-keystore.pem",
        format!("{}{}{}", key.serialize_pem(), server.pem(), ca.pem()),
    )
}
