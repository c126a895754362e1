//! Where the produce and latency benchmarks send their records: the broker kinds both run
//! against, chosen from the options once, then brought up for each run (a fresh mock cluster or
//! Tansu per run, so one client's leftovers never slow the next) and torn down after it.
//! The consume benchmark fills one topic per case instead and has its own (`consume/mod.rs`).

use std::path::{Path, PathBuf};

use rdkafka::mocking::MockCluster;

use crate::cases::Case;
use crate::clients;
use crate::common::{self, Common, Tansu};
use crate::external;
use crate::kafka::KafkaNode;
use crate::measure;

/// Where the records go.
pub enum Target {
    Mock,
    Tansu(PathBuf),
    External(String),
    /// Started once for the whole run: a JVM takes seconds to start.
    Kafka(KafkaNode),
}

/// A broker ready for one run, torn down on drop.
pub enum Running {
    /// Kept alive for the run; its threads serve the brokers.
    Mock {
        _cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    },
    Tansu(Tansu),
    External,
}

/// The brokers `--brokers`, `--kafka`, `--no-mock` and `--no-tansu` ask for, in run order.
pub fn chosen(c: &Common, mock: bool, use_tansu: bool, kafka: bool) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    if let Some(b) = &c.brokers {
        targets.push(Target::External(b.clone()));
    } else if kafka {
        println!("starting Apache Kafka ...");
        let node = KafkaNode::start(c.log_dir.as_deref(), c.kafka_nodes)?;
        println!(
            "Kafka ready: PLAINTEXT {}, SASL_SSL {}",
            node.plaintext(),
            node.sasl_ssl()
        );
        targets.push(Target::Kafka(node));
    } else {
        if mock {
            targets.push(Target::Mock);
        }
        if use_tansu {
            match common::tansu_binary(c.tansu.as_ref()) {
                Some(path) => targets.push(Target::Tansu(path)),
                None => eprintln!(
                    "Tansu skipped: no binary (give --tansu PATH, set FERROKAFKA_TANSU, or run \
                     `cargo xtask install-brokers`)"
                ),
            }
        }
    }
    if targets.is_empty() {
        return Err("no broker to run against".into());
    }
    Ok(targets)
}

impl Target {
    /// The broker's short name in a results file.
    pub fn id(&self) -> &'static str {
        match self {
            Target::Mock => "mock",
            Target::Tansu(_) => "tansu",
            Target::External(_) => "external",
            Target::Kafka(node) => node.id(),
        }
    }

    /// The table heading; `kafka_note` says what the benchmark does on the Kafka node.
    pub fn title(&self, kafka_note: &str) -> String {
        match self {
            Target::Mock => "librdkafka mock cluster (3 brokers, in the parent process)".into(),
            Target::Tansu(_) => "Tansu (1 broker, memory storage, restarted for every run)".into(),
            Target::External(b) => format!("external cluster at {b}"),
            Target::Kafka(node) => format!(
                "Apache Kafka {} ({}, KRaft, JVM{kafka_note})",
                crate::kafka::KAFKA_VERSION,
                node.shape()
            ),
        }
    }

    /// Which kind of broker this is, for the external workers' exclusions.
    pub fn broker(&self) -> external::Broker {
        match self {
            Target::Mock => external::Broker::Mock,
            Target::Tansu(_) => external::Broker::Tansu,
            _ => external::Broker::Kafka,
        }
    }

    /// Whether produce case `case` can run here: TLS cases need the `--kafka` node's SASL_SSL
    /// listener.
    pub fn runs(&self, case: &Case) -> bool {
        !case.tls || matches!(self, Target::Kafka(_))
    }

    /// Whether `client` can run here: some peers cannot talk to librdkafka's mock cluster.
    pub fn serves(&self, client: &str) -> bool {
        !matches!(self, Target::Mock) || clients::talks_to_mock(client)
    }

    /// Brings the broker up for one run with `topic` (`partitions`; `replication` on an
    /// external cluster) and returns it with its PLAINTEXT bootstrap address.
    pub fn start(
        &self,
        rt: &tokio::runtime::Runtime,
        topic: &str,
        partitions: i32,
        replication: i16,
        log_dir: Option<&Path>,
    ) -> Result<(Running, String), String> {
        let create = |b: &str, replication| {
            rt.block_on(common::create_topic(b, topic, partitions, replication))
        };
        Ok(match self {
            Target::Mock => {
                let mock = MockCluster::new(3).map_err(|e| format!("mock cluster: {e}"))?;
                mock.create_topic(topic, partitions, 3)
                    .map_err(|e| format!("mock create_topic: {e}"))?;
                let b = mock.bootstrap_servers();
                (Running::Mock { _cluster: mock }, b)
            }
            Target::Tansu(binary) => {
                let t = Tansu::start(binary, log_dir)?;
                let b = t.bootstrap();
                create(&b, 1)?;
                (Running::Tansu(t), b)
            }
            Target::External(b) => {
                create(b, replication)?;
                (Running::External, b.clone())
            }
            Target::Kafka(node) => {
                let b = node.plaintext();
                create(&b, node.replication())?;
                (Running::External, b)
            }
        })
    }

    /// The broker's CPU time so far, while `running` serves this target (the mock's threads
    /// run in this process).
    pub fn cpu_micros(&self, running: &Running) -> Option<u64> {
        match (running, self) {
            (Running::Mock { .. }, _) => {
                let (u, s) = measure::cpu_micros();
                Some(u + s)
            }
            (Running::Tansu(t), _) => t.cpu_micros(),
            (Running::External, Target::Kafka(node)) => node.cpu_micros(),
            (Running::External, _) => None,
        }
    }

    /// Deletes a run's topic where the broker outlives the run (external cluster, Kafka node).
    pub fn delete_topic(&self, rt: &tokio::runtime::Runtime, topic: &str) {
        let admin = match self {
            Target::External(b) => b.clone(),
            Target::Kafka(node) => node.plaintext(),
            _ => return,
        };
        if let Err(e) = rt.block_on(common::delete_topic(&admin, topic)) {
            eprintln!("could not delete {topic}: {e}");
        }
    }
}
