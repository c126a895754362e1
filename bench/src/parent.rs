//! The produce benchmark's parent: its options, brokers, one worker process per (broker, case,
//! client, repeat), its tables.

use std::path::PathBuf;

use crate::cases::{self, Case, CASES};
use crate::common::{self, Args, Common, Outcome};
use crate::external;
use crate::target::{self, Target};

const USAGE: &str = "\
Usage: ferrokafka-bench produce [options]

Runs every produce case with rdkafka, ferrokafka and rskafka, each in its own process, against
librdkafka's in-process mock cluster and Tansu (or only --brokers), and prints a table per
broker: msg/s, MB/s, client CPU us per record (user+sys), peak RSS, the broker's CPU, and
ratios against rdkafka.

Options:
  --brokers HOST:PORT  Run only against this external cluster (topics are created with
                       --replication, default 1, and deleted afterwards)
  --kafka              Run only against one real Apache Kafka node started here (from
                       $FERROKAFKA_KAFKA_HOME, else target/brokers/kafka-4.4.0; see `cargo
                       xtask install-brokers`), with a SASL_SSL listener for the TLS case
  --kafka-nodes N      With --kafka: 1 node (default) or 3 (topics with replication factor 3,
                       min.insync.replicas 2)
  --tansu PATH         The tansu binary (default: $FERROKAFKA_TANSU, else
                       target/brokers/tansu; Tansu is skipped if there is none)
  --no-mock            Skip the mock cluster
  --no-tansu           Skip Tansu
  --only CASE[,CASE]   Only these cases
  --clients C[,C]      Only these clients (rdkafka, ferrokafka, rskafka, franz-go, java;
                       krafka and confluent-kafka in a build with feature `peers`)
  --quick              Divide every record count by 10 (a smoke run)
  --repeat N           Run each client N times per case and report the median run
  --replication N      Replication factor of topics on --brokers (default 1)
  --wrap 'CMD ARGS'    Run workers under CMD (e.g. 'valgrind --tool=callgrind')
  --timeout SECS       Kill a worker after SECS (default 600)
  --batch-size BYTES   batch.size of every client (default 1000000)
  --log-dir DIR        Write Tansu's logs there (default: discarded)
  --results FILE       Append the figures to FILE (TSV) for `ferrokafka-bench chart`

Cases:";

/// The help text, with the list of cases.
pub fn usage() -> String {
    common::usage(USAGE, CASES)
}

/// Parsed command line of `produce`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub common: Common,
    pub mock: bool,
    pub use_tansu: bool,
    /// `--kafka`: a real Kafka node, and nothing else.
    pub kafka: bool,
    pub batch_size: usize,
    /// `--results FILE`: where the figures are appended.
    pub results: Option<PathBuf>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            common: Common::default(),
            mock: true,
            use_tansu: true,
            kafka: false,
            batch_size: cases::BATCH_SIZE,
            results: None,
        };
        let mut args = Args::new(args);
        while let Some(arg) = args.next() {
            if o.common.parse_option(arg, &mut args)? {
                continue;
            }
            match arg {
                "--no-mock" => o.mock = false,
                "--no-tansu" => o.use_tansu = false,
                "--kafka" => o.kafka = true,
                "--batch-size" => o.batch_size = args.number("--batch-size")?.max(1),
                "--results" => o.results = Some(PathBuf::from(args.value("--results")?)),
                other => return Err(format!("unknown option `{other}`\n{}", usage())),
            }
        }
        o.common.check(CASES, "case")?;
        if o.kafka && o.common.brokers.is_some() {
            return Err("--kafka and --brokers exclude each other".into());
        }
        Ok(o)
    }
}

/// The produce tables' heading for `target`.
fn title(target: &Target) -> String {
    target.title("; TLS cases over SASL_SSL + SCRAM-SHA-512")
}

pub fn run(o: Options) -> Result<(), String> {
    let c = &o.common;
    let targets = target::chosen(c, o.mock, o.use_tansu, o.kafka)?;
    print_environment(&o);
    let rt = common::admin_runtime()?;
    let mut report = String::new();
    let mut all_rows = Vec::new();
    for target in &targets {
        let mut rows = Vec::new();
        println!("\n## {}\n", title(target));
        for case in c.cases(CASES) {
            if !target.runs(case) {
                println!("-- {}: skipped here (needs --kafka)", case.name);
                continue;
            }
            let records = c.records(case);
            println!("-- {}: {} ({} records)", case.name, case.what, records);
            let clients: Vec<String> = c
                .clients
                .iter()
                .filter(|client| {
                    let why = match cases::supports(case, client) {
                        true => external::left_out(client, target.broker()),
                        false => Some("no TLS for it in this bench"),
                    };
                    if let Some(why) = why {
                        println!("   {client}: left out ({why})");
                    }
                    why.is_none()
                })
                .filter(|client| {
                    let ok = target.serves(client);
                    if !ok {
                        println!("   {client}: not run on the mock cluster (issue 16)");
                    }
                    ok
                })
                .cloned()
                .collect();
            rows.extend(common::run_clients(
                case.name,
                &clients,
                c.repeat,
                |client| run_one(&o, &rt, target, case, client, records),
            ));
        }
        let table = common::results_table(&title(target), &rows, c.repeat);
        println!("\n{table}");
        report.push_str(&table);
        report.push('\n');
        if let Some(path) = &o.results {
            crate::results::append(
                path,
                &crate::results::from_rows("produce", target.id(), &rows),
            )?;
        }
        all_rows.extend(rows);
    }
    println!("\n# Summary\n\n{report}");
    common::failures(&all_rows)
}

fn print_environment(o: &Options) {
    common::print_machine("produce");
    println!(
        "settings: linger {} ms, batch.size {} B, budget {} MiB, max in flight {}, {} partitions{}{}",
        cases::LINGER_MS,
        o.batch_size,
        cases::BUDGET >> 20,
        cases::MAX_IN_FLIGHT,
        cases::PARTITIONS,
        if o.common.quick { ", --quick (records / 10)" } else { "" },
        if o.common.repeat > 1 {
            format!(", median of {} runs", o.common.repeat)
        } else {
            String::new()
        }
    );
}

fn run_one(
    o: &Options,
    rt: &tokio::runtime::Runtime,
    target: &Target,
    case: &Case,
    client: &str,
    records: u64,
) -> Result<Outcome, String> {
    let topic = common::topic_name(&format!("bench-{}-{client}", case.name));
    let mut extra = Vec::new();
    let (running, mut bootstrap) = target.start(
        rt,
        &topic,
        cases::PARTITIONS,
        o.common.replication,
        o.common.log_dir.as_deref(),
    )?;
    if let (true, Target::Kafka(node)) = (case.tls, target) {
        // Topics are made and deleted over PLAINTEXT; the TLS case produces over SASL_SSL.
        extra.push(format!("ca={}", node.security().ca.display()));
        bootstrap = node.sasl_ssl();
    }
    let broker_cpu = || target.cpu_micros(&running);
    let result = common::with_broker_cpu(broker_cpu, || {
        let mut args = vec![
            "--worker".to_owned(),
            format!("client={client}"),
            format!("case={}", case.name),
            format!("bootstrap={bootstrap}"),
            format!("topic={topic}"),
            format!("records={records}"),
            format!("batch_size={}", o.batch_size),
        ];
        args.extend(extra.iter().cloned());
        common::run_worker(&o.common.wrap, o.common.timeout, &args)
    });
    drop(running);
    target.delete_topic(rt, &topic);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::strings as args;

    #[test]
    fn options_parse() {
        let o = Options::parse(&args(&[
            "--brokers",
            "h:1",
            "--only",
            "100b-acks1,1kb-1m",
            "--quick",
            "--repeat",
            "3",
            "--clients",
            "ferrokafka",
            "--no-mock",
            "--batch-size",
            "0",
            "--results",
            "r.tsv",
        ]))
        .unwrap();
        let c = &o.common;
        assert_eq!(c.brokers.as_deref(), Some("h:1"));
        assert_eq!(c.only, ["100b-acks1", "1kb-1m"]);
        assert_eq!(c.clients, ["ferrokafka"]);
        assert!(c.quick);
        assert_eq!(c.repeat, 3);
        assert!(!o.mock && o.use_tansu);
        assert_eq!(o.batch_size, 1);
        assert_eq!(o.results, Some(PathBuf::from("r.tsv")));
        let case = common::find(CASES, "100b-acks1").unwrap();
        assert_eq!(c.records(case), 100_000);
        assert_eq!(c.cases(CASES).len(), 2);
        assert!(Options::parse(&args(&["--only", "nope"])).is_err());
        assert!(Options::parse(&args(&["--clients", "kafkajs"])).is_err());
        assert!(Options::parse(&args(&["--bogus"])).is_err());
        assert!(Options::parse(&args(&["--repeat"])).is_err());
        let o = Options::parse(&args(&["--kafka", "--only", "1kb-sasl-ssl"])).unwrap();
        assert!(o.kafka);
        assert!(Options::parse(&args(&["--kafka", "--brokers", "h:1"])).is_err());
        let tls = common::find(CASES, "1kb-sasl-ssl").unwrap();
        assert!(tls.tls && !Target::Mock.runs(tls));
        assert!(!cases::supports(tls, "rskafka") && cases::supports(tls, "rdkafka"));
        assert!(!Target::Mock.serves("krafka") && !Target::Mock.serves("confluent-kafka"));
        assert!(
            Target::Mock.serves("ferrokafka") && Target::External("h:1".into()).serves("krafka")
        );
    }
}
