//! The consume benchmark: ferrokafka, rdkafka (librdkafka) and rskafka read the same topic.
//!
//! Per case the parent starts a fresh Tansu (it keeps every record in memory, so a big case
//! must not inherit the previous one's), creates the topic, fills it once with librdkafka
//! (not measured), and then runs every client as its own worker process
//! (`ferrokafka-bench --consume-worker ...`), interleaved over the repeats. Each worker assigns
//! all partitions from the beginning (no group: join time would pollute the figures) and reads
//! until it has the case's record count; it reports the time from the first record to the
//! last, its process CPU per record and its peak RSS.
//!
//! `--brokers` reads from an external cluster instead, `--kafka` from one real Apache Kafka
//! node started for the whole run (each case's topic is deleted after it).
//!
//! The librdkafka mock cluster is not offered: its Fetch path returns one batch per partition
//! per response and is far slower than any client, so it would measure the mock.

pub mod cases;
#[cfg(feature = "peers")]
mod confluent;
mod ferro;
#[cfg(feature = "peers")]
mod krafka;
mod rdk;
mod rsk;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;

use crate::common::{self, Args, Common, Outcome, Row, Tansu};
use crate::connect::{self, Counting};
use crate::external;
use crate::kafka::KafkaNode;
use crate::payload::Payload;
use cases::{ConsumeCase, Settings, CASES};

const USAGE: &str = "\
Usage: ferrokafka-bench consume [options]

Fills one topic per case once (librdkafka, not measured) on a fresh Tansu, then reads all of
it with rdkafka, ferrokafka and rskafka, each in its own process (assign from the beginning,
no group), and prints a table: msg/s and MB/s from the first record to the last, client CPU
us per record (user+sys), peak RSS, Tansu's CPU, ratios against rdkafka, and each client's
peak RSS against the prefetch budget + 32 MiB.

Options:
  --brokers HOST:PORT  Run against this external cluster instead of Tansu (topics are
                       created with --replication, default 1, and deleted afterwards)
  --kafka              Run against one real Apache Kafka node started here instead of
                       Tansu (as `produce --kafka`; one node for the whole run)
  --kafka-nodes N      With --kafka: 1 node (default) or 3 (topics with replication factor 3,
                       min.insync.replicas 2)
  --tansu PATH         The tansu binary (default: $FERROKAFKA_TANSU, else
                       target/brokers/tansu)
  --only CASE[,CASE]   Only these cases
  --clients C[,C]      Only these clients (rdkafka, ferrokafka, rskafka, franz-go, java;
                       krafka and confluent-kafka in a build with feature `peers`)
  --quick              Divide every record count by 10 (a smoke run)
  --repeat N           Run each client N times per case and report the median run
  --replication N      Replication factor of topics on --brokers (default 1)
  --fetch-buffer BYTES The prefetch budget: ferrokafka fetch.buffer.bytes, librdkafka
                       queued.max.messages.kbytes (default 67108864, both defaults);
                       fetch.max.bytes is lowered to it when smaller
  --stall-ms MS        Let each client wait MS after assign before it reads, so its
                       prefetch buffer fills: the worst case for peak RSS (msg/s is then
                       not a throughput figure: the first records were already buffered)
  --wrap 'CMD ARGS'    Run workers under CMD (e.g. 'valgrind --tool=callgrind')
  --timeout SECS       Kill a worker after SECS (default 600)
  --log-dir DIR        Write Tansu's logs there (default: discarded)
  --results FILE       Append the figures to FILE (TSV) for `ferrokafka-bench chart`

Cases:";

/// The help text, with the list of cases.
pub fn usage() -> String {
    common::usage(USAGE, CASES)
}

/// Parsed command line of `consume`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub common: Common,
    /// `--kafka`: a real Kafka node instead of Tansu.
    pub kafka: bool,
    pub fetch_buffer: usize,
    pub stall_ms: u64,
    /// `--results FILE`: where the figures are appended.
    pub results: Option<PathBuf>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            common: Common::default(),
            kafka: false,
            fetch_buffer: cases::FETCH_BUFFER_BYTES,
            stall_ms: 0,
            results: None,
        };
        let mut args = Args::new(args);
        while let Some(arg) = args.next() {
            if o.common.parse_option(arg, &mut args)? {
                continue;
            }
            match arg {
                "--fetch-buffer" => {
                    // librdkafka takes whole KiB, ferrokafka at least 1 KiB.
                    o.fetch_buffer = args.number("--fetch-buffer")?.max(1024) / 1024 * 1024
                }
                "--stall-ms" => o.stall_ms = args.number("--stall-ms")? as u64,
                "--kafka" => o.kafka = true,
                "--results" => o.results = Some(PathBuf::from(args.value("--results")?)),
                other => return Err(format!("unknown option `{other}`\n{}", usage())),
            }
        }
        o.common.check(CASES, "consume case")?;
        if o.kafka && o.common.brokers.is_some() {
            return Err("--kafka and --brokers exclude each other".into());
        }
        Ok(o)
    }

    fn settings(&self) -> Settings {
        Settings::with_budget(self.fetch_buffer)
    }
}

/// Where the topic lives.
enum Target {
    Tansu(PathBuf),
    External(String),
    /// Started once for the whole run (a JVM takes seconds to start); each case's topic is
    /// deleted after it.
    Kafka(KafkaNode),
}

impl Target {
    fn title(&self) -> String {
        match self {
            Target::Tansu(_) => "Tansu (1 broker, memory storage, restarted for every case)".into(),
            Target::External(b) => format!("external cluster at {b}"),
            Target::Kafka(node) => format!(
                "Apache Kafka {} ({}, KRaft, JVM)",
                crate::kafka::KAFKA_VERSION,
                node.shape()
            ),
        }
    }

    /// Where topics are created and deleted, unless Tansu (restarted for every case).
    fn admin(&self) -> Option<String> {
        match self {
            Target::Tansu(_) => None,
            Target::External(b) => Some(b.clone()),
            Target::Kafka(node) => Some(node.plaintext()),
        }
    }
}

/// A broker holding a case's filled topic; Tansu is stopped on drop.
enum Running {
    Tansu(Tansu),
    External,
}

pub fn run(o: Options) -> Result<(), String> {
    let c = &o.common;
    let target = match &c.brokers {
        Some(b) => Target::External(b.clone()),
        None if o.kafka => {
            println!("starting Apache Kafka ...");
            let node = KafkaNode::start(c.log_dir.as_deref(), c.kafka_nodes)?;
            println!("Kafka ready: PLAINTEXT {}", node.plaintext());
            Target::Kafka(node)
        }
        None => Target::Tansu(common::tansu_binary(c.tansu.as_ref()).ok_or(
            "no Tansu binary: give --tansu PATH, set FERROKAFKA_TANSU, or run \
             `cargo xtask install-brokers`",
        )?),
    };
    print_environment(&o);
    let rt = common::admin_runtime()?;
    let mut rows = Vec::new();
    println!("\n## {}\n", target.title());
    for case in c.cases(CASES) {
        let records = c.records(case);
        println!("-- {}: {} ({} records)", case.name, case.what, records);
        let topic = common::topic_name(&format!("bench-consume-{}", case.name));
        let (running, bootstrap) = match prepare(&o, &rt, &target, case, &topic, records) {
            Ok(p) => p,
            Err(e) => {
                println!("   preparation FAILED: {e}");
                rows.extend(c.clients.iter().map(|client| Row {
                    case: case.name,
                    client: client.clone(),
                    result: Err(format!("preparation: {e}")),
                    rates: Vec::new(),
                }));
                continue;
            }
        };
        let broker_cpu = || match (&running, &target) {
            (Running::Tansu(t), _) => t.cpu_micros(),
            (Running::External, Target::Kafka(node)) => node.cpu_micros(),
            (Running::External, _) => None,
        };
        let broker = match target {
            Target::Tansu(_) => external::Broker::Tansu,
            Target::External(_) | Target::Kafka(_) => external::Broker::Kafka,
        };
        let clients: Vec<String> = c
            .clients
            .iter()
            .filter(|client| match external::left_out(client, broker) {
                Some(why) => {
                    println!("   {client}: left out ({why})");
                    false
                }
                None => true,
            })
            .cloned()
            .collect();
        rows.extend(common::run_clients(
            case.name,
            &clients,
            c.repeat,
            |client| {
                common::with_broker_cpu(broker_cpu, || {
                    worker(&o, case, client, &bootstrap, &topic, records)
                })
            },
        ));
        drop(running);
        if let Some(b) = target.admin() {
            if let Err(e) = rt.block_on(common::delete_topic(&b, &topic)) {
                eprintln!("could not delete {topic}: {e}");
            }
        }
    }
    let table = table(&target, &rows, c.repeat, o.settings());
    println!("\n# Summary\n\n{table}");
    if let Some(path) = &o.results {
        let broker = match target {
            Target::Tansu(_) => "tansu",
            Target::External(_) => "external",
            Target::Kafka(node) => node.id(),
        };
        crate::results::append(path, &crate::results::from_rows("consume", broker, &rows))?;
    }
    common::failures(&rows)
}

/// Starts the broker (Tansu) and creates and fills the case's topic.
fn prepare(
    o: &Options,
    rt: &tokio::runtime::Runtime,
    target: &Target,
    case: &ConsumeCase,
    topic: &str,
    records: u64,
) -> Result<(Running, String), String> {
    let (running, bootstrap) = match target {
        Target::Tansu(binary) => {
            let t = Tansu::start(binary, o.common.log_dir.as_deref())?;
            let b = t.bootstrap();
            rt.block_on(common::create_topic(&b, topic, case.partitions, 1))?;
            (Running::Tansu(t), b)
        }
        Target::External(b) => {
            rt.block_on(common::create_topic(
                b,
                topic,
                case.partitions,
                o.common.replication,
            ))?;
            (Running::External, b.clone())
        }
        Target::Kafka(node) => {
            let b = node.plaintext();
            rt.block_on(common::create_topic(
                &b,
                topic,
                case.partitions,
                node.replication(),
            ))?;
            (Running::External, b)
        }
    };
    let started = Instant::now();
    fill(case, &bootstrap, topic, records)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "   filled {records} records ({:.0} MB) with librdkafka in {secs:.1} s ({:.0} records/s)",
        records as f64 * case.size as f64 / 1e6,
        records as f64 / secs
    );
    Ok((running, bootstrap))
}

/// Writes the case's records with librdkafka (fast, and the batches the compressed cases are
/// about: "as librdkafka writes them"): acks=all, linger 5 ms, 1 MB batches, partitions in
/// contiguous equal ranges. Not measured.
fn fill(case: &ConsumeCase, bootstrap: &str, topic: &str, records: u64) -> Result<(), String> {
    let payload = Payload::new(case.size);
    let producer: BaseProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "ferrokafka-bench-fill")
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("compression.codec", case.codec.name())
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "10000000")
        .create_with_context(Counting::default())
        .map_err(|e| format!("fill producer: {e}"))?;
    for i in 0..records {
        let partition = cases::fill_partition(i, records, case.partitions);
        let record = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(payload.slice(i))
            .partition(partition);
        connect::send(&producer, record).map_err(|e| format!("fill send: {e}"))?;
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Timeout::After(Duration::from_secs(300)))
        .map_err(|e| format!("fill flush: {e}"))?;
    let ctx = producer.context();
    if let Some(e) = ctx.first_error.lock().unwrap().take() {
        return Err(format!(
            "{} of {records} records not delivered, first error: {e}",
            ctx.failed.load(Ordering::Relaxed)
        ));
    }
    // Every record must be in the log: otherwise the consumers would wait for ever. (Tansu
    // 0.6's ListOffsets apparently answers the last batch's base offset + 1 as the high
    // watermark, so the delivery reports are what is checked.)
    let delivered = ctx.ok.load(Ordering::Relaxed);
    if delivered != records {
        return Err(format!("{delivered} of {records} records delivered"));
    }
    Ok(())
}

fn worker(
    o: &Options,
    case: &ConsumeCase,
    client: &str,
    bootstrap: &str,
    topic: &str,
    records: u64,
) -> Result<Outcome, String> {
    common::run_worker(
        &o.common.wrap,
        o.common.timeout,
        &[
            "--consume-worker".to_owned(),
            format!("client={client}"),
            format!("case={}", case.name),
            format!("bootstrap={bootstrap}"),
            format!("topic={topic}"),
            format!("records={records}"),
            format!("fetch_buffer={}", o.fetch_buffer),
            format!("stall_ms={}", o.stall_ms),
        ],
    )
}

fn print_environment(o: &Options) {
    let s = o.settings();
    common::print_machine("consume");
    println!(
        "settings: fetch.max.wait.ms {}, fetch.min.bytes 1, max.partition.fetch.bytes {}, \
         fetch.max.bytes {}, prefetch budget {} MiB, check.crcs on, assign from the \
         beginning{}{}{}",
        s.fetch_max_wait_ms,
        s.max_partition_fetch_bytes,
        s.fetch_max_bytes,
        s.fetch_buffer_bytes >> 20,
        if o.common.quick {
            ", --quick (records / 10)"
        } else {
            ""
        },
        if o.stall_ms > 0 {
            format!(
                ", each client waits {} ms after assign (RSS worst case)",
                o.stall_ms
            )
        } else {
            String::new()
        },
        if o.common.repeat > 1 {
            format!(", median of {} runs", o.common.repeat)
        } else {
            String::new()
        }
    );
}

/// The markdown table, the same columns as the produce bench's, then each case's peak RSS
/// against the prefetch budget + 32 MiB.
fn table(target: &Target, rows: &[Row], repeat: usize, settings: Settings) -> String {
    use std::fmt::Write;
    let mut out = common::results_table(&target.title(), rows, repeat);
    let limit = (settings.fetch_buffer_bytes + cases::RSS_ALLOWANCE) as f64 / (1 << 20) as f64;
    let _ = writeln!(
        out,
        "\nPeak RSS against the prefetch budget ({} MiB) + 32 MiB = {limit:.0} MiB \
         (rskafka and confluent-kafka have no byte budget, krafka one in records):\n",
        settings.fetch_buffer_bytes >> 20
    );
    let mut names: Vec<&str> = rows.iter().map(|r| r.case).collect();
    names.dedup();
    for name in names {
        let parts: Vec<String> = rows
            .iter()
            .filter(|r| r.case == name)
            .filter_map(|r| {
                let rss = r.result.as_ref().ok()?.peak_rss_mb;
                let verdict = if rss <= limit { "within" } else { "OVER" };
                Some(format!("{} {rss:.1} MiB ({verdict})", r.client))
            })
            .collect();
        let _ = writeln!(out, "- {name}: {}", parts.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::strings as args;

    #[test]
    fn options_parse() {
        let o = Options::parse(&args(&[
            "--only",
            "100b,100p-10mb",
            "--quick",
            "--repeat",
            "3",
            "--clients",
            "ferrokafka,rdkafka",
            "--fetch-buffer",
            "16777300",
            "--stall-ms",
            "2000",
            "--results",
            "r.tsv",
        ]))
        .unwrap();
        let c = &o.common;
        assert_eq!(c.only, ["100b", "100p-10mb"]);
        assert_eq!(c.clients, ["ferrokafka", "rdkafka"]);
        assert!(c.quick);
        assert_eq!(c.repeat, 3);
        assert_eq!(o.fetch_buffer, 16 << 20);
        assert_eq!(o.stall_ms, 2000);
        assert_eq!(o.results, Some(PathBuf::from("r.tsv")));
        assert_eq!(o.settings().fetch_max_bytes, 16 << 20);
        assert_eq!(c.records(common::find(CASES, "100b").unwrap()), 100_000);
        assert_eq!(c.cases(CASES).len(), 2);
        assert!(Options::parse(&args(&["--only", "100b-acks1"])).is_err());
        assert!(Options::parse(&args(&["--clients", "kafkajs"])).is_err());
        assert!(Options::parse(&args(&["--no-mock"])).is_err());
        assert!(Options::parse(&args(&["--kafka"])).unwrap().kafka);
        assert!(Options::parse(&args(&["--kafka", "--brokers", "h:1"])).is_err());
        assert!(Options::parse(&args(&["--repeat"])).is_err());
        let d = Options::parse(&[]).unwrap();
        assert_eq!(d.fetch_buffer, 64 << 20);
        assert_eq!(d.common.clients, crate::clients::CLIENTS);
    }

    #[test]
    fn the_table_has_ratios_and_the_rss_verdict() {
        let case = "100b";
        let run = |secs: f64, rss: f64| Outcome {
            records: 1000,
            bytes: 100_000,
            secs,
            cpu_us_per_record: 1.0,
            peak_rss_mb: rss,
            broker_cpu_us: Some(500_000),
            line: String::new(),
        };
        let rows = vec![
            Row {
                case,
                client: "rdkafka".into(),
                result: Ok(run(1.0, 50.0)),
                rates: vec![1000.0],
            },
            Row {
                case,
                client: "ferrokafka".into(),
                result: Ok(run(0.5, 100.0)),
                rates: vec![2000.0],
            },
        ];
        let t = table(
            &Target::External("k:9092".into()),
            &rows,
            1,
            Settings::with_budget(64 << 20),
        );
        assert!(
            t.contains(
                "| 100b | ferrokafka | 2000 | 0.2 | 1.000 | 100.0 | 100% | 2.00x | 1.00x | 2.00x |"
            ),
            "{t}"
        );
        assert!(
            t.contains("- 100b: rdkafka 50.0 MiB (within), ferrokafka 100.0 MiB (OVER)"),
            "{t}"
        );
    }
}
