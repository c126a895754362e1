//! `cargo xtask demo`: a throwaway Tansu broker and the quickstart example run against it;
//! `cargo xtask demo --kafka`: the same example against a throwaway real Apache Kafka node.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::broker::{self, Broker, READY_TIMEOUT};
use crate::kafka::harness::{KafkaCluster, KafkaOptions};
use crate::{cargo, describe, install, kafka, Error, Result};

/// The example the demo runs; it takes the bootstrap address as its only argument.
pub const EXAMPLE: &str = "quickstart";

/// Where the demo broker's stdout and stderr go.
pub fn log_path(root: &Path) -> PathBuf {
    install::brokers_dir(root).join("tansu-demo.log")
}

/// `cargo run --quiet --example quickstart -- <bootstrap>`, run in the workspace root.
pub fn example_command(root: &Path, bootstrap: &str) -> Command {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--example", EXAMPLE, "--", bootstrap])
        .current_dir(root);
    cmd
}

pub fn run(root: &Path) -> Result {
    let binary = install::ensure(root)?;
    let port = broker::free_port()?;
    let log = log_path(root);
    println!(
        "Starting Tansu on 127.0.0.1:{port} (in-memory storage; log: {})",
        log.display()
    );
    // The guard kills the broker when this function returns, on success, error or panic.
    let mut broker = Broker::spawn(&binary, port, &log)?;
    broker.wait_ready(READY_TIMEOUT)?;
    let bootstrap = broker.bootstrap();
    println!("Tansu is ready at {bootstrap}");

    let result = run_example(root, &bootstrap, &log);
    drop(broker);
    println!("Tansu stopped");
    result
}

/// `cargo xtask demo --kafka`: one combined broker+controller node of Apache Kafka, formatted
/// into a temporary directory, removed again when the demo ends.
pub fn run_on_kafka(root: &Path) -> Result {
    let home = kafka::ensure(root)?;
    let logs = install::brokers_dir(root).join("logs");
    println!(
        "Starting Apache Kafka {} (one KRaft node; logs under {})",
        kafka::KAFKA_VERSION,
        logs.display()
    );
    let cluster = KafkaCluster::start(&home, &KafkaOptions::new(1, logs)).map_err(Error::new)?;
    let bootstrap = cluster.bootstrap();
    println!(
        "Apache Kafka is ready at {bootstrap} after {:.1} s",
        cluster.started_in().as_secs_f64()
    );
    let log = cluster.log_path(1).to_path_buf();
    let result = run_example(root, &bootstrap, &log);
    drop(cluster);
    println!("Apache Kafka stopped");
    result
}

fn run_example(root: &Path, bootstrap: &str, log: &Path) -> Result {
    let mut example = example_command(root, bootstrap);
    let line = describe(&example);
    println!("==> {line}");
    let status = example
        .status()
        .map_err(|err| Error::new(format!("could not run `{line}`: {err}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::status(
            format!(
                "the {EXAMPLE} example failed ({status}); the broker's log is in {}",
                log.display()
            ),
            status,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_gets_the_bootstrap_after_the_separator() {
        let cmd = example_command(Path::new("/ws"), "127.0.0.1:4242");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "run",
                "--quiet",
                "--example",
                "quickstart",
                "--",
                "127.0.0.1:4242"
            ]
        );
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/ws")));
    }

    #[test]
    fn demo_log_is_under_target_brokers() {
        assert_eq!(
            log_path(Path::new("/ws")),
            Path::new("/ws/target/brokers/tansu-demo.log")
        );
    }
}
