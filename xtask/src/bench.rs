//! `cargo xtask bench produce|consume|latency|chart`: builds the `bench/` workspace member in
//! release mode with its features `peers` (krafka and confluent-kafka) and `charts` (plotters'
//! SVG backend), and runs its produce, consume or latency benchmark (ferrokafka, rdkafka,
//! rskafka, krafka, confluent-kafka, and franz-go and the Java client — those two built by
//! `bench_external.rs` — against the same brokers), or draws SVG charts of results files.
//!
//! Without `--brokers`, produce and latency run against librdkafka's mock cluster and Tansu,
//! consume against Tansu only; Tansu is installed first like `cargo xtask test` does.
//! `--kafka` runs against one real Apache Kafka node instead (its classpath installed first,
//! like `install-brokers`), produce with the SASL_SSL case. Not part of CI.

use std::path::Path;
use std::process::Command;

use crate::{bench_external, cargo, install, kafka, run_step, Error, Result};

/// The bench package and its binary.
pub const PACKAGE: &str = "ferrokafka-bench";

pub const USAGE: &str = "\
usage: cargo xtask bench produce [--brokers HOST:PORT | --kafka [--kafka-nodes 3]] [--only CASE[,CASE]] [--quick]
                                 [--repeat N] [--clients C[,C]] [other ferrokafka-bench options]
       cargo xtask bench consume [--brokers HOST:PORT | --kafka [--kafka-nodes 3]] [--only CASE[,CASE]] [--quick]
                                 [--repeat N] [--clients C[,C]] [other ferrokafka-bench options]
       cargo xtask bench latency [--brokers HOST:PORT | --kafka [--kafka-nodes 3]] [--rates R[,R]] [--seconds S]
                                 [--clients C[,C]] [--results FILE] [other options]
       cargo xtask bench chart --out DIR FILE [FILE...]   (SVG charts of --results files)";

/// What `bench` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Arguments for `ferrokafka-bench produce|consume`.
    pub args: Vec<String>,
    /// Whether Tansu is needed (no external cluster, Tansu not switched off).
    pub needs_tansu: bool,
    /// Whether a real Kafka node is started (`--kafka`).
    pub needs_kafka: bool,
}

/// Checks the command line: `produce`, `consume`, `latency` or `chart`, then the bench's own
/// options, passed through.
pub fn plan(args: &[String]) -> Result<Plan> {
    let Some((what, rest)) = args.split_first() else {
        return Err(Error::new(USAGE));
    };
    if !["produce", "consume", "latency", "chart"].contains(&what.as_str()) {
        return Err(Error::new(format!("unknown benchmark `{what}`\n{USAGE}")));
    }
    // chart runs on no broker.
    let needs_kafka = what != "chart" && rest.iter().any(|a| a == "--kafka");
    let external = needs_kafka || what == "chart" || rest.iter().any(|a| a == "--brokers");
    // Only produce and latency have --no-tansu (consume always needs Tansu or --brokers);
    // the bench itself rejects options its command does not have.
    let like_produce = what == "produce" || what == "latency";
    let no_tansu = like_produce && rest.iter().any(|a| a == "--no-tansu");
    let mut bench_args = vec![what.clone()];
    bench_args.extend(rest.iter().cloned());
    Ok(Plan {
        args: bench_args,
        needs_tansu: !external && !no_tansu,
        needs_kafka,
    })
}

/// `cargo run --release -p ferrokafka-bench --features peers,charts[,tls] -- <args>` in the
/// workspace root.
pub fn command(root: &Path, plan: &Plan, tansu: Option<&Path>) -> Command {
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--quiet", "--package", PACKAGE]);
    // krafka and confluent-kafka (feature `peers`) and the charts always; rdkafka's TLS
    // (OpenSSL from source) only when the real-Kafka SASL_SSL case may run (`produce --kafka`).
    let tls = plan.needs_kafka && plan.args.first().is_some_and(|a| a == "produce");
    cmd.args([
        "--features",
        if tls {
            "peers,charts,tls"
        } else {
            "peers,charts"
        },
    ]);
    cmd.arg("--").args(&plan.args).current_dir(root);
    if let Some(tansu) = tansu {
        cmd.arg("--tansu")
            .arg(tansu)
            .arg("--log-dir")
            .arg(install::brokers_dir(root).join("logs"));
    }
    cmd
}

pub fn run(root: &Path, args: &[String]) -> Result {
    let plan = plan(args)?;
    let tansu = if plan.needs_tansu {
        Some(install::ensure(root)?)
    } else {
        None
    };
    // franz-go and the Java client run as programs of their own, built here.
    if matches!(plan.args[0].as_str(), "produce" | "consume" | "latency") {
        bench_external::ensure(root, &plan.args)?;
    }
    let mut cmd = command(root, &plan, tansu.as_deref());
    if plan.needs_kafka {
        cmd.env(kafka::KAFKA_HOME_ENV, kafka::ensure(root)?);
    }
    run_step(&mut cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn produce_options_pass_through() {
        let p = plan(&strings(&["produce", "--quick", "--only", "100b-acks1"])).unwrap();
        assert_eq!(p.args, ["produce", "--quick", "--only", "100b-acks1"]);
        assert!(p.needs_tansu);
        let cmd = command(
            Path::new("/ws"),
            &p,
            Some(Path::new("/ws/target/brokers/tansu")),
        );
        assert_eq!(
            describe(&cmd),
            "cargo run --release --quiet --package ferrokafka-bench --features peers,charts -- produce \
             --quick --only 100b-acks1 --tansu /ws/target/brokers/tansu --log-dir \
             /ws/target/brokers/logs"
        );
    }

    #[test]
    fn an_external_cluster_needs_no_tansu() {
        let p = plan(&strings(&["produce", "--brokers", "k:9092"])).unwrap();
        assert!(!p.needs_tansu);
        assert_eq!(
            describe(&command(Path::new("/ws"), &p, None)),
            "cargo run --release --quiet --package ferrokafka-bench --features peers,charts -- produce \
             --brokers k:9092"
        );
        assert!(
            !plan(&strings(&["produce", "--no-tansu"]))
                .unwrap()
                .needs_tansu
        );
        let k = plan(&strings(&["produce", "--kafka", "--only", "1kb-sasl-ssl"])).unwrap();
        assert!(k.needs_kafka && !k.needs_tansu);
        assert_eq!(k.args, ["produce", "--kafka", "--only", "1kb-sasl-ssl"]);
        assert!(describe(&command(Path::new("/ws"), &k, None))
            .contains("ferrokafka-bench --features peers,charts,tls -- produce --kafka"));
    }

    #[test]
    fn consume_options_pass_through() {
        let p = plan(&strings(&["consume", "--repeat", "3", "--only", "100b"])).unwrap();
        assert_eq!(p.args, ["consume", "--repeat", "3", "--only", "100b"]);
        assert!(p.needs_tansu);
        assert_eq!(
            describe(&command(
                Path::new("/ws"),
                &p,
                Some(Path::new("/ws/target/brokers/tansu"))
            )),
            "cargo run --release --quiet --package ferrokafka-bench --features peers,charts -- consume \
             --repeat 3 --only 100b --tansu /ws/target/brokers/tansu --log-dir \
             /ws/target/brokers/logs"
        );
        let external = plan(&strings(&["consume", "--brokers", "k:9092"])).unwrap();
        assert!(!external.needs_tansu);
        let k = plan(&strings(&["consume", "--kafka"])).unwrap();
        assert!(k.needs_kafka && !k.needs_tansu);
        assert!(describe(&command(Path::new("/ws"), &k, None))
            .contains("ferrokafka-bench --features peers,charts -- consume --kafka"));
    }

    #[test]
    fn latency_runs_where_produce_does_and_chart_needs_no_broker() {
        let p = plan(&strings(&["latency", "--rates", "1000"])).unwrap();
        assert_eq!(p.args, ["latency", "--rates", "1000"]);
        assert!(p.needs_tansu && !p.needs_kafka);
        let k = plan(&strings(&["latency", "--kafka"])).unwrap();
        assert!(k.needs_kafka && !k.needs_tansu);
        // No TLS case in latency: OpenSSL is not built for it.
        assert_eq!(
            describe(&command(Path::new("/ws"), &k, None)),
            "cargo run --release --quiet --package ferrokafka-bench --features peers,charts -- \
             latency --kafka"
        );
        assert!(
            !plan(&strings(&["latency", "--no-tansu"]))
                .unwrap()
                .needs_tansu
        );
        let c = plan(&strings(&["chart", "--out", "docs/perf", "r.tsv"])).unwrap();
        assert!(!c.needs_tansu && !c.needs_kafka);
        assert!(!plan(&strings(&["chart", "--kafka"])).unwrap().needs_kafka);
    }

    #[test]
    fn only_the_four_commands_exist() {
        assert!(plan(&[]).is_err());
        assert!(plan(&strings(&["fetch"])).is_err());
    }
}
