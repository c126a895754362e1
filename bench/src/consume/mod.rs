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
//! The librdkafka mock cluster is not offered: its Fetch path returns one batch per partition
//! per response and is far slower than any client, so it would measure the mock.

pub mod cases;
mod ferro;
mod rdk;
mod rsk;
pub mod worker;

use std::path::PathBuf;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::Timeout;
use rdkafka::ClientContext;

use crate::clients::CLIENTS;
use crate::measure;
use crate::parent::{self, Outcome, Tansu};
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
  --tansu PATH         The tansu binary (default: $FERROKAFKA_TANSU, else
                       target/brokers/tansu)
  --only CASE[,CASE]   Only these cases
  --clients C[,C]      Only these clients (rdkafka, ferrokafka, rskafka)
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

Cases:";

/// The help text, with the list of cases.
pub fn usage() -> String {
    let mut text = USAGE.to_string();
    for c in CASES {
        text.push_str(&format!("\n  {:<12} {}", c.name, c.what));
    }
    text
}

/// Parsed command line of `consume`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub brokers: Option<String>,
    pub tansu: Option<PathBuf>,
    pub only: Vec<String>,
    pub clients: Vec<String>,
    pub quick: bool,
    pub repeat: usize,
    pub replication: i16,
    pub fetch_buffer: usize,
    pub stall_ms: u64,
    pub wrap: Vec<String>,
    pub timeout: Duration,
    pub log_dir: Option<PathBuf>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            brokers: None,
            tansu: None,
            only: Vec::new(),
            clients: CLIENTS.iter().map(|c| c.to_string()).collect(),
            quick: false,
            repeat: 1,
            replication: 1,
            fetch_buffer: cases::FETCH_BUFFER_BYTES,
            stall_ms: 0,
            wrap: Vec::new(),
            timeout: Duration::from_secs(600),
            log_dir: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--brokers" => o.brokers = Some(value("--brokers")?),
                "--tansu" => o.tansu = Some(PathBuf::from(value("--tansu")?)),
                "--only" => o.only = list(&value("--only")?),
                "--clients" => o.clients = list(&value("--clients")?),
                "--quick" => o.quick = true,
                "--repeat" => o.repeat = number("--repeat", &value("--repeat")?)?.max(1),
                "--replication" => {
                    o.replication = number("--replication", &value("--replication")?)? as i16
                }
                "--fetch-buffer" => {
                    // librdkafka takes whole KiB, ferrokafka at least 1 KiB.
                    o.fetch_buffer =
                        number("--fetch-buffer", &value("--fetch-buffer")?)?.max(1024) / 1024 * 1024
                }
                "--stall-ms" => o.stall_ms = number("--stall-ms", &value("--stall-ms")?)? as u64,
                "--wrap" => {
                    o.wrap = value("--wrap")?
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                }
                "--timeout" => {
                    o.timeout =
                        Duration::from_secs(number("--timeout", &value("--timeout")?)? as u64)
                }
                "--log-dir" => o.log_dir = Some(PathBuf::from(value("--log-dir")?)),
                other => return Err(format!("unknown option `{other}`\n{}", usage())),
            }
        }
        for name in &o.only {
            if cases::find(name).is_none() {
                let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
                return Err(format!(
                    "unknown consume case `{name}`: one of {}",
                    names.join(", ")
                ));
            }
        }
        for c in &o.clients {
            if !CLIENTS.contains(&c.as_str()) {
                return Err(format!(
                    "unknown client `{c}`: one of {}",
                    CLIENTS.join(", ")
                ));
            }
        }
        Ok(o)
    }

    fn cases(&self) -> Vec<&'static ConsumeCase> {
        CASES
            .iter()
            .filter(|c| self.only.is_empty() || self.only.iter().any(|o| o == c.name))
            .collect()
    }

    fn records(&self, case: &ConsumeCase) -> u64 {
        if self.quick {
            case.records / 10
        } else {
            case.records
        }
    }

    fn settings(&self) -> Settings {
        Settings::with_budget(self.fetch_buffer)
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn number(name: &str, text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("{name}: `{text}` is not a number"))
}

/// Where the topic lives.
enum Target {
    Tansu(PathBuf),
    External(String),
}

impl Target {
    fn title(&self) -> String {
        match self {
            Target::Tansu(_) => "Tansu (1 broker, memory storage, restarted for every case)".into(),
            Target::External(b) => format!("external cluster at {b}"),
        }
    }
}

/// A broker holding a case's filled topic; Tansu is stopped on drop.
enum Running {
    Tansu(Tansu),
    External,
}

static TOPIC_COUNTER: AtomicU64 = AtomicU64::new(0);

fn topic_name(case: &ConsumeCase) -> String {
    let n = TOPIC_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("bench-consume-{}-{}-{n}", case.name, std::process::id())
}

pub fn run(o: Options) -> Result<(), String> {
    let target = match &o.brokers {
        Some(b) => Target::External(b.clone()),
        None => Target::Tansu(parent::tansu_binary(o.tansu.as_ref()).ok_or(
            "no Tansu binary: give --tansu PATH, set FERROKAFKA_TANSU, or run \
             `cargo xtask install-brokers`",
        )?),
    };
    print_environment(&o);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut rows: Vec<Row> = Vec::new();
    let mut failures = 0;
    println!("\n## {}\n", target.title());
    for case in o.cases() {
        let records = o.records(case);
        println!("-- {}: {} ({} records)", case.name, case.what, records);
        let topic = topic_name(case);
        let prepared = prepare(&o, &rt, &target, case, &topic, records);
        let (running, bootstrap) = match prepared {
            Ok(p) => p,
            Err(e) => {
                println!("   preparation FAILED: {e}");
                for client in &o.clients {
                    failures += 1;
                    rows.push(Row {
                        case,
                        client: client.clone(),
                        result: Err(format!("preparation: {e}")),
                        rates: Vec::new(),
                    });
                }
                continue;
            }
        };
        let broker_cpu = || match &running {
            Running::Tansu(t) => measure::process_cpu_micros(t.child.id()),
            Running::External => None,
        };
        let mut runs: Vec<(String, Vec<Result<Outcome, String>>)> =
            o.clients.iter().map(|c| (c.clone(), Vec::new())).collect();
        for rep in 0..o.repeat {
            for (client, results) in runs.iter_mut() {
                let before = broker_cpu();
                let r = worker(&o, case, client, &bootstrap, &topic, records).map(|mut out| {
                    out.broker_cpu_us = before.zip(broker_cpu()).map(|(b, a)| a.saturating_sub(b));
                    out
                });
                match &r {
                    Ok(out) => println!("   [{}/{}] {}", rep + 1, o.repeat, out.line),
                    Err(e) => println!("   [{}/{}] {client}: FAILED: {e}", rep + 1, o.repeat),
                }
                results.push(r);
            }
        }
        drop(running);
        if let Target::External(b) = &target {
            if let Err(e) = rt.block_on(parent::delete_topic(b, &topic)) {
                eprintln!("could not delete {topic}: {e}");
            }
        }
        for (client, results) in runs {
            let rates: Vec<f64> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().map(Outcome::rate))
                .collect();
            let chosen = parent::median_run(results);
            if chosen.is_err() {
                failures += 1;
            }
            rows.push(Row {
                case,
                client,
                result: chosen,
                rates,
            });
        }
    }
    let table = table(&target, &rows, o.repeat, o.settings());
    println!("\n# Summary\n\n{table}");
    if failures > 0 {
        return Err(format!("{failures} client run(s) failed"));
    }
    Ok(())
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
            let t = Tansu::start(binary, o.log_dir.as_deref())?;
            let b = t.bootstrap();
            rt.block_on(create_topic(&b, topic, case.partitions, 1))?;
            (Running::Tansu(t), b)
        }
        Target::External(b) => {
            rt.block_on(create_topic(b, topic, case.partitions, o.replication))?;
            (Running::External, b.clone())
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
    let producer: BaseProducer<FillContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "ferrokafka-bench-fill")
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("compression.codec", case.codec.name())
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "10000000")
        .create_with_context(FillContext::default())
        .map_err(|e| format!("fill producer: {e}"))?;
    for i in 0..records {
        let partition = cases::fill_partition(i, records, case.partitions);
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(payload.slice(i))
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("fill send: {e}")),
            }
        }
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
    let delivered = ctx.delivered.load(Ordering::Relaxed);
    if delivered != records {
        return Err(format!("{delivered} of {records} records delivered"));
    }
    Ok(())
}

/// Counts failed deliveries of the filling producer.
#[derive(Default)]
struct FillContext {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for FillContext {}

impl ProducerContext for FillContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        } else if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.first_error
                .lock()
                .unwrap()
                .get_or_insert_with(|| e.to_string());
        }
    }
}

async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: i16,
) -> Result<(), String> {
    let client = ferrokafka::Client::builder()
        .bootstrap_servers(bootstrap)
        .client_id("ferrokafka-bench-admin")
        .build()
        .await
        .map_err(|e| format!("admin client for {bootstrap}: {e}"))?;
    let r = client
        .admin()
        .create_topics(&[ferrokafka::NewTopic::new(topic, partitions, replication)])
        .await
        .map_err(|e| format!("create topic {topic}: {e}"));
    client.close().await;
    r
}

fn worker(
    o: &Options,
    case: &ConsumeCase,
    client: &str,
    bootstrap: &str,
    topic: &str,
    records: u64,
) -> Result<Outcome, String> {
    parent::run_worker(
        &o.wrap,
        o.timeout,
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
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let s = o.settings();
    println!("# ferrokafka consume benchmark");
    println!("machine: {cores} cores, {model}");
    println!(
        "clients: ferrokafka (this workspace), rdkafka 0.39 / librdkafka {librdkafka}, rskafka 0.6"
    );
    println!(
        "settings: fetch.max.wait.ms {}, fetch.min.bytes 1, max.partition.fetch.bytes {}, \
         fetch.max.bytes {}, prefetch budget {} MiB, check.crcs on, assign from the \
         beginning{}{}{}",
        s.fetch_max_wait_ms,
        s.max_partition_fetch_bytes,
        s.fetch_max_bytes,
        s.fetch_buffer_bytes >> 20,
        if o.quick {
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
        if o.repeat > 1 {
            format!(", median of {} runs", o.repeat)
        } else {
            String::new()
        }
    );
}

/// One line of the table: a client's (median) run of a case.
struct Row {
    case: &'static ConsumeCase,
    client: String,
    result: Result<Outcome, String>,
    /// msg/s of every successful run.
    rates: Vec<f64>,
}

/// The markdown table, the same columns as the produce bench's, then each case's peak RSS
/// against the prefetch budget + 32 MiB.
fn table(target: &Target, rows: &[Row], repeat: usize, settings: Settings) -> String {
    use std::fmt::Write;
    let table_rows: Vec<parent::TableRow> = rows
        .iter()
        .map(|r| parent::TableRow {
            case: r.case.name,
            client: &r.client,
            result: &r.result,
            rates: &r.rates,
        })
        .collect();
    let mut out = parent::results_table(&target.title(), &table_rows, repeat);
    let limit = (settings.fetch_buffer_bytes + cases::RSS_ALLOWANCE) as f64 / (1 << 20) as f64;
    let _ = writeln!(
        out,
        "\nPeak RSS against the prefetch budget ({} MiB) + 32 MiB = {limit:.0} MiB \
         (rskafka has no budget):\n",
        settings.fetch_buffer_bytes >> 20
    );
    let mut names: Vec<&str> = rows.iter().map(|r| r.case.name).collect();
    names.dedup();
    for name in names {
        let parts: Vec<String> = rows
            .iter()
            .filter(|r| r.case.name == name)
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

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

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
        ]))
        .unwrap();
        assert_eq!(o.only, ["100b", "100p-10mb"]);
        assert_eq!(o.clients, ["ferrokafka", "rdkafka"]);
        assert!(o.quick);
        assert_eq!(o.repeat, 3);
        assert_eq!(o.fetch_buffer, 16 << 20);
        assert_eq!(o.stall_ms, 2000);
        assert_eq!(o.settings().fetch_max_bytes, 16 << 20);
        assert_eq!(o.records(cases::find("100b").unwrap()), 100_000);
        assert_eq!(o.cases().len(), 2);
        assert!(Options::parse(&args(&["--only", "100b-acks1"])).is_err());
        assert!(Options::parse(&args(&["--clients", "kafkajs"])).is_err());
        assert!(Options::parse(&args(&["--no-mock"])).is_err());
        assert!(Options::parse(&args(&["--repeat"])).is_err());
        let d = Options::parse(&[]).unwrap();
        assert_eq!(d.fetch_buffer, 64 << 20);
        assert_eq!(d.clients, ["rdkafka", "ferrokafka", "rskafka"]);
    }

    #[test]
    fn the_table_has_ratios_and_the_rss_verdict() {
        let case = cases::find("100b").unwrap();
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
