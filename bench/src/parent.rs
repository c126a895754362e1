//! The produce benchmark's parent: its options, brokers, one worker process per (broker, case,
//! client, repeat), its tables.

use std::path::PathBuf;

use rdkafka::mocking::MockCluster;

use crate::cases::{self, Case, CASES};
use crate::clients;
use crate::common::{self, Args, Common, Outcome, Tansu};
use crate::external;
use crate::kafka::KafkaNode;
use crate::measure;

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

/// Where the records go.
enum Target {
    Mock,
    Tansu(PathBuf),
    External(String),
    /// Started once for the whole run: a JVM takes seconds to start.
    Kafka(KafkaNode),
}

impl Target {
    /// The broker's short name in a results file.
    fn id(&self) -> &'static str {
        match self {
            Target::Mock => "mock",
            Target::Tansu(_) => "tansu",
            Target::External(_) => "external",
            Target::Kafka(_) => "kafka",
        }
    }

    fn title(&self) -> String {
        match self {
            Target::Mock => "librdkafka mock cluster (3 brokers, in the parent process)".into(),
            Target::Tansu(_) => "Tansu (1 broker, memory storage, restarted for every run)".into(),
            Target::External(b) => format!("external cluster at {b}"),
            Target::Kafka(_) => format!(
                "Apache Kafka {} (1 node, KRaft, JVM; TLS cases over SASL_SSL + SCRAM-SHA-512)",
                crate::kafka::KAFKA_VERSION
            ),
        }
    }

    fn broker(&self) -> external::Broker {
        match self {
            Target::Mock => external::Broker::Mock,
            Target::Tansu(_) => external::Broker::Tansu,
            _ => external::Broker::Kafka,
        }
    }

    /// Whether `case` can run here: TLS cases need the `--kafka` node's SASL_SSL listener.
    fn runs(&self, case: &Case) -> bool {
        !case.tls || matches!(self, Target::Kafka(_))
    }

    /// Whether `client` can run here: some peers cannot talk to librdkafka's mock cluster.
    fn serves(&self, client: &str) -> bool {
        !matches!(self, Target::Mock) || clients::talks_to_mock(client)
    }
}

pub fn run(o: Options) -> Result<(), String> {
    let c = &o.common;
    let mut targets = Vec::new();
    if let Some(b) = &c.brokers {
        targets.push(Target::External(b.clone()));
    } else if o.kafka {
        println!("starting Apache Kafka ...");
        let node = KafkaNode::start(c.log_dir.as_deref())?;
        println!(
            "Kafka ready: PLAINTEXT {}, SASL_SSL {}",
            node.plaintext(),
            node.sasl_ssl()
        );
        targets.push(Target::Kafka(node));
    } else {
        if o.mock {
            targets.push(Target::Mock);
        }
        if o.use_tansu {
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
    print_environment(&o);
    let rt = common::admin_runtime()?;
    let mut report = String::new();
    let mut all_rows = Vec::new();
    for target in &targets {
        let mut rows = Vec::new();
        println!("\n## {}\n", target.title());
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
        let table = common::results_table(&target.title(), &rows, c.repeat);
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

/// A broker ready for one run, torn down on drop.
enum Running {
    /// Kept alive for the run; its threads serve the brokers.
    Mock {
        _cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    },
    Tansu(Tansu),
    External,
}

/// Creates `topic` on `bootstrap` with the cases' partitions.
fn create(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: &str,
    replication: i16,
) -> Result<(), String> {
    rt.block_on(common::create_topic(
        bootstrap,
        topic,
        cases::PARTITIONS,
        replication,
    ))
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
    let (running, bootstrap) = match target {
        Target::Mock => {
            let mock = MockCluster::new(3).map_err(|e| format!("mock cluster: {e}"))?;
            mock.create_topic(&topic, cases::PARTITIONS, 3)
                .map_err(|e| format!("mock create_topic: {e}"))?;
            let b = mock.bootstrap_servers();
            (Running::Mock { _cluster: mock }, b)
        }
        Target::Tansu(binary) => {
            let t = Tansu::start(binary, o.common.log_dir.as_deref())?;
            let b = t.bootstrap();
            rt.block_on(common::create_topic(&b, &topic, cases::PARTITIONS, 1))?;
            (Running::Tansu(t), b)
        }
        Target::External(b) => {
            create(rt, b, &topic, o.common.replication)?;
            (Running::External, b.clone())
        }
        Target::Kafka(node) => {
            // Topics are made and deleted over PLAINTEXT; the TLS case produces over SASL_SSL.
            create(rt, &node.plaintext(), &topic, 1)?;
            let bootstrap = if case.tls {
                extra.push(format!("ca={}", node.security().ca.display()));
                node.sasl_ssl()
            } else {
                node.plaintext()
            };
            (Running::External, bootstrap)
        }
    };
    let broker_cpu = || match &running {
        Running::Mock { .. } => {
            let (u, s) = measure::cpu_micros();
            Some(u + s)
        }
        Running::Tansu(t) => t.cpu_micros(),
        Running::External => match target {
            Target::Kafka(node) => node.cpu_micros(),
            _ => None,
        },
    };
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
    let admin = match target {
        Target::External(b) => Some(b.clone()),
        Target::Kafka(node) => Some(node.plaintext()),
        _ => None,
    };
    if let Some(b) = admin {
        if let Err(e) = rt.block_on(common::delete_topic(&b, &topic)) {
            eprintln!("could not delete {topic}: {e}");
        }
    }
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
