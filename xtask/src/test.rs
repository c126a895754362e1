//! `cargo xtask test`: formatting, lints and the whole test suite, failing fast.
//!
//! The suite's integration tests start their brokers themselves; this command makes sure
//! Tansu and Apache Kafka are installed and tells the tests where (`FERROKAFKA_TANSU`,
//! `FERROKAFKA_KAFKA_HOME`). The generic suites run twice: on Tansu, then on one real Kafka
//! node (`FERROKAFKA_BROKER=kafka`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{cargo, install, kafka, run_step, Error, Result};

/// The integration suites written for any Kafka-protocol broker (`common::Broker`), run a
/// second time against real Apache Kafka.
pub const GENERIC_SUITES: &[&str] = &[
    "client_tansu",
    "producer_tansu",
    "consumer_tansu",
    "transactions",
    "cli_fk",
    "bad_input",
    "transactional_copy_crash",
    "service",
];

/// The steps, in order. `extra` goes to `cargo test` (a filter, or `-- --nocapture`); with
/// `extra` given, the generic suites are not re-run on Kafka (set `FERROKAFKA_BROKER=kafka`
/// to choose that broker for a filtered run).
pub fn steps(tansu: &Path, kafka_home: &Path, extra: &[String]) -> Vec<Command> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);

    let mut test = cargo();
    test.args(["test", "--workspace"])
        .args(extra)
        .env(install::ENV_OVERRIDE, tansu)
        .env(kafka::KAFKA_HOME_ENV, kafka_home);

    let mut steps = vec![fmt, clippy, test];
    if extra.is_empty() {
        let mut on_kafka = cargo();
        on_kafka.arg("test");
        for suite in GENERIC_SUITES {
            on_kafka.args(["--test", suite]);
        }
        on_kafka
            .env("FERROKAFKA_BROKER", "kafka")
            .env(install::ENV_OVERRIDE, tansu)
            .env(kafka::KAFKA_HOME_ENV, kafka_home);
        steps.push(on_kafka);
    }
    steps
}

pub fn run(root: &Path, extra: &[String]) -> Result {
    let tansu = install::ensure(root)?;
    let kafka_home = kafka::ensure(root)?;
    require_cargo_subcommand("fmt", "rustfmt")?;
    require_cargo_subcommand("clippy", "clippy")?;
    for mut step in steps(&tansu, &kafka_home, extra) {
        step.current_dir(root);
        run_step(&mut step)?;
    }
    println!("xtask test: formatting, lints and tests all passed");
    Ok(())
}

/// Fails with an install hint when `cargo <sub>` is not available.
fn require_cargo_subcommand(sub: &str, component: &str) -> Result {
    let works = cargo()
        .args([sub, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if works {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`cargo {sub}` is not available: rustup component add {component}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe;

    #[test]
    fn steps_are_fmt_clippy_test_then_the_generic_suites_on_kafka() {
        let lines: Vec<String> = steps(Path::new("/abs/tansu"), Path::new("/k"), &[])
            .iter()
            .map(describe)
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "cargo fmt --all -- --check");
        assert_eq!(
            lines[1],
            "cargo clippy --workspace --all-targets -- -D warnings"
        );
        assert!(lines[2].ends_with("cargo test --workspace"), "{}", lines[2]);
        assert!(lines[2].contains("FERROKAFKA_TANSU=/abs/tansu"));
        assert!(lines[2].contains("FERROKAFKA_KAFKA_HOME=/k"));
        assert!(lines[3].contains("FERROKAFKA_BROKER=kafka"), "{}", lines[3]);
        for suite in GENERIC_SUITES {
            assert!(
                lines[3].contains(&format!("--test {suite}")),
                "{}",
                lines[3]
            );
        }
    }

    #[test]
    fn extra_args_go_to_cargo_test_and_skip_the_second_run() {
        let extra = vec!["harness".to_string(), "--".into(), "--nocapture".into()];
        let steps = steps(Path::new("/t"), Path::new("/k"), &extra);
        assert_eq!(steps.len(), 3);
        assert!(describe(&steps[2]).ends_with("cargo test --workspace harness -- --nocapture"));
    }

    #[test]
    fn every_generic_suite_exists() {
        let root = crate::workspace_root();
        for suite in GENERIC_SUITES {
            assert!(
                root.join("tests").join(format!("{suite}.rs")).is_file(),
                "{suite}"
            );
        }
    }
}
