//! The parent: brokers, one worker process per (broker, case, client, repeat), the tables.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;

use crate::cases::{self, Case, CASES};
use crate::clients::CLIENTS;
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
  --tansu PATH         The tansu binary (default: $FERROKAFKA_TANSU, else
                       target/brokers/tansu; Tansu is skipped if there is none)
  --no-mock            Skip the mock cluster
  --no-tansu           Skip Tansu
  --only CASE[,CASE]   Only these cases
  --clients C[,C]      Only these clients (rdkafka, ferrokafka, rskafka)
  --quick              Divide every record count by 10 (a smoke run)
  --repeat N           Run each client N times per case and report the median run
  --replication N      Replication factor of topics on --brokers (default 1)
  --wrap 'CMD ARGS'    Run workers under CMD (e.g. 'valgrind --tool=callgrind')
  --timeout SECS       Kill a worker after SECS (default 600)
  --batch-size BYTES   batch.size of every client (default 1000000)
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

/// Parsed command line of `produce`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub brokers: Option<String>,
    pub tansu: Option<PathBuf>,
    pub mock: bool,
    pub use_tansu: bool,
    pub only: Vec<String>,
    pub clients: Vec<String>,
    pub quick: bool,
    pub repeat: usize,
    pub replication: i16,
    pub wrap: Vec<String>,
    pub timeout: Duration,
    pub log_dir: Option<PathBuf>,
    pub batch_size: usize,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            brokers: None,
            tansu: None,
            mock: true,
            use_tansu: true,
            only: Vec::new(),
            clients: CLIENTS.iter().map(|c| c.to_string()).collect(),
            quick: false,
            repeat: 1,
            replication: 1,
            wrap: Vec::new(),
            timeout: Duration::from_secs(600),
            log_dir: None,
            batch_size: cases::BATCH_SIZE,
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
                "--no-mock" => o.mock = false,
                "--no-tansu" => o.use_tansu = false,
                "--only" => o.only = list(&value("--only")?),
                "--clients" => o.clients = list(&value("--clients")?),
                "--quick" => o.quick = true,
                "--repeat" => o.repeat = number("--repeat", &value("--repeat")?)?.max(1),
                "--replication" => {
                    o.replication = number("--replication", &value("--replication")?)? as i16
                }
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
                "--batch-size" => {
                    o.batch_size = number("--batch-size", &value("--batch-size")?)?.max(1)
                }
                other => return Err(format!("unknown option `{other}`\n{}", usage())),
            }
        }
        for name in &o.only {
            if cases::find(name).is_none() {
                let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
                return Err(format!(
                    "unknown case `{name}`: one of {}",
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

    fn cases(&self) -> Vec<&'static Case> {
        CASES
            .iter()
            .filter(|c| self.only.is_empty() || self.only.iter().any(|o| o == c.name))
            .collect()
    }

    fn records(&self, case: &Case) -> u64 {
        if self.quick {
            case.records / 10
        } else {
            case.records
        }
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

/// Where the records go.
enum Target {
    Mock,
    Tansu(PathBuf),
    External(String),
}

impl Target {
    fn title(&self) -> String {
        match self {
            Target::Mock => "librdkafka mock cluster (3 brokers, in the parent process)".into(),
            Target::Tansu(_) => "Tansu (1 broker, memory storage, restarted for every run)".into(),
            Target::External(b) => format!("external cluster at {b}"),
        }
    }
}

/// One worker's report, as parsed from its RESULT line, plus the broker's CPU meanwhile.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub records: u64,
    pub bytes: u64,
    pub secs: f64,
    pub cpu_us_per_record: f64,
    pub peak_rss_mb: f64,
    /// Broker CPU (user+sys) during the worker's life, microseconds; None if unknown.
    pub broker_cpu_us: Option<u64>,
    pub line: String,
}

impl Outcome {
    pub(crate) fn rate(&self) -> f64 {
        self.records as f64 / self.secs.max(1e-9)
    }
}

/// Parses `RESULT key=value ...`.
pub fn parse_result(line: &str) -> Option<Outcome> {
    let rest = line.strip_prefix("RESULT ")?;
    let mut o = Outcome {
        line: line.to_string(),
        ..Outcome::default()
    };
    for field in rest.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        match k {
            "records" => o.records = v.parse().ok()?,
            "bytes" => o.bytes = v.parse().ok()?,
            "secs" => o.secs = v.parse().ok()?,
            "cpu_us_per_record" => o.cpu_us_per_record = v.parse().ok()?,
            "peak_rss_mb" => o.peak_rss_mb = v.parse().ok()?,
            _ => {}
        }
    }
    Some(o)
}

static TOPIC_COUNTER: AtomicU64 = AtomicU64::new(0);

fn topic_name(case: &Case, client: &str) -> String {
    let n = TOPIC_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("bench-{}-{client}-{}-{n}", case.name, std::process::id())
}

pub fn run(o: Options) -> Result<(), String> {
    let mut targets = Vec::new();
    if let Some(b) = &o.brokers {
        targets.push(Target::External(b.clone()));
    } else {
        if o.mock {
            targets.push(Target::Mock);
        }
        if o.use_tansu {
            match tansu_binary(o.tansu.as_ref()) {
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut report = String::new();
    let mut failures = 0;
    for target in &targets {
        let mut rows: Vec<Row> = Vec::new();
        println!("\n## {}\n", target.title());
        for case in o.cases() {
            let records = o.records(case);
            println!("-- {}: {} ({} records)", case.name, case.what, records);
            let mut runs: Vec<(String, Vec<Result<Outcome, String>>)> =
                o.clients.iter().map(|c| (c.clone(), Vec::new())).collect();
            for rep in 0..o.repeat {
                for (client, results) in runs.iter_mut() {
                    let r = run_one(&o, &rt, target, case, client, records);
                    match &r {
                        Ok(out) => println!("   [{}/{}] {}", rep + 1, o.repeat, out.line),
                        Err(e) => println!("   [{}/{}] {client}: FAILED: {e}", rep + 1, o.repeat),
                    }
                    results.push(r);
                }
            }
            for (client, results) in runs {
                let rates: Vec<f64> = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok().map(Outcome::rate))
                    .collect();
                let chosen = median_run(results);
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
        let table = table(target, &rows, o.repeat);
        println!("\n{table}");
        report.push_str(&table);
        report.push('\n');
    }
    println!("\n# Summary\n\n{report}");
    if failures > 0 {
        return Err(format!("{failures} client run(s) failed"));
    }
    Ok(())
}

/// The run with the median throughput (any failure makes the whole row a failure).
pub(crate) fn median_run(results: Vec<Result<Outcome, String>>) -> Result<Outcome, String> {
    let mut ok = Vec::new();
    for r in results {
        ok.push(r?);
    }
    ok.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let mid = ok.len() / 2;
    ok.into_iter().nth(mid).ok_or_else(|| "no run".to_string())
}

/// The Tansu binary: `--tansu`, else `FERROKAFKA_TANSU`, else the one `cargo xtask` installs.
pub(crate) fn tansu_binary(explicit: Option<&PathBuf>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.clone());
    }
    if let Some(p) = std::env::var_os("FERROKAFKA_TANSU").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("brokers")
        .join("tansu");
    default.is_file().then_some(default)
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
    println!("# ferrokafka produce benchmark");
    println!("machine: {cores} cores, {model}");
    println!(
        "clients: ferrokafka (this workspace), rdkafka 0.39 / librdkafka {librdkafka}, rskafka 0.6"
    );
    println!(
        "settings: linger {} ms, batch.size {} B, budget {} MiB, max in flight {}, {} partitions{}{}",
        cases::LINGER_MS,
        o.batch_size,
        cases::BUDGET >> 20,
        cases::MAX_IN_FLIGHT,
        cases::PARTITIONS,
        if o.quick { ", --quick (records / 10)" } else { "" },
        if o.repeat > 1 {
            format!(", median of {} runs", o.repeat)
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

fn run_one(
    o: &Options,
    rt: &tokio::runtime::Runtime,
    target: &Target,
    case: &Case,
    client: &str,
    records: u64,
) -> Result<Outcome, String> {
    let topic = topic_name(case, client);
    let (running, bootstrap) = match target {
        Target::Mock => {
            let mock = MockCluster::new(3).map_err(|e| format!("mock cluster: {e}"))?;
            mock.create_topic(&topic, cases::PARTITIONS, 3)
                .map_err(|e| format!("mock create_topic: {e}"))?;
            let b = mock.bootstrap_servers();
            (Running::Mock { _cluster: mock }, b)
        }
        Target::Tansu(binary) => {
            let t = Tansu::start(binary, o.log_dir.as_deref())?;
            let b = t.bootstrap();
            rt.block_on(create_topic(&b, &topic, 1))?;
            (Running::Tansu(t), b)
        }
        Target::External(b) => {
            rt.block_on(create_topic(b, &topic, o.replication))?;
            (Running::External, b.clone())
        }
    };
    let broker_cpu = || match &running {
        Running::Mock { .. } => {
            let (u, s) = measure::cpu_micros();
            Some(u + s)
        }
        Running::Tansu(t) => measure::process_cpu_micros(t.child.id()),
        Running::External => None,
    };
    let before = broker_cpu();
    let result = worker(o, case, client, &bootstrap, &topic, records);
    let after = broker_cpu();
    drop(running);
    if let Target::External(b) = target {
        if let Err(e) = rt.block_on(delete_topic(b, &topic)) {
            eprintln!("could not delete {topic}: {e}");
        }
    }
    let mut outcome = result?;
    outcome.broker_cpu_us = before.zip(after).map(|(b, a)| a.saturating_sub(b));
    Ok(outcome)
}

fn worker(
    o: &Options,
    case: &Case,
    client: &str,
    bootstrap: &str,
    topic: &str,
    records: u64,
) -> Result<Outcome, String> {
    run_worker(
        &o.wrap,
        o.timeout,
        &[
            "--worker".to_owned(),
            format!("client={client}"),
            format!("case={}", case.name),
            format!("bootstrap={bootstrap}"),
            format!("topic={topic}"),
            format!("records={records}"),
            format!("batch_size={}", o.batch_size),
        ],
    )
}

/// Runs this executable as a worker process (under `wrap`, a profiler command, if given) with
/// `args`, echoes its output, and parses its `RESULT` line; kills it after `timeout`. Shared
/// by the produce and consume benchmarks.
pub(crate) fn run_worker(
    wrap: &[String],
    timeout: Duration,
    args: &[String],
) -> Result<Outcome, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut cmd = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start worker: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut result = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("RESULT ") {
                result = Some(line);
            } else {
                println!("   {line}");
            }
        }
        result
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the worker: {e}")),
        }
    };
    let line = reader.join().ok().flatten();
    if !status.success() {
        return Err(format!("worker exited with {status}"));
    }
    let line = line.ok_or("worker printed no RESULT line")?;
    parse_result(&line).ok_or_else(|| format!("cannot parse `{line}`"))
}

async fn create_topic(bootstrap: &str, topic: &str, replication: i16) -> Result<(), String> {
    let client = ferrokafka::Client::builder()
        .bootstrap_servers(bootstrap)
        .client_id("ferrokafka-bench-admin")
        .build()
        .await
        .map_err(|e| format!("admin client for {bootstrap}: {e}"))?;
    let r = client
        .admin()
        .create_topics(&[ferrokafka::NewTopic::new(
            topic,
            cases::PARTITIONS,
            replication,
        )])
        .await
        .map_err(|e| format!("create topic {topic}: {e}"));
    client.close().await;
    r
}

pub(crate) async fn delete_topic(bootstrap: &str, topic: &str) -> Result<(), String> {
    let client = ferrokafka::Client::builder()
        .bootstrap_servers(bootstrap)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let r = client
        .admin()
        .delete_topics(&[topic])
        .await
        .map_err(|e| e.to_string());
    client.close().await;
    r
}

/// A Tansu process on a free loopback port (same flags as the tests), killed on drop.
pub(crate) struct Tansu {
    pub(crate) child: Child,
    port: u16,
}

impl Tansu {
    pub(crate) fn start(binary: &Path, log_dir: Option<&Path>) -> Result<Tansu, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(binary);
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&url)
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null());
        for var in [
            "CLUSTER_ID",
            "LISTENER_URL",
            "ADVERTISED_LISTENER_URL",
            "STORAGE_ENGINE",
            "SCHEMA_REGISTRY",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            cmd.env_remove(var);
        }
        match log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let log = std::fs::File::create(dir.join(format!("tansu-bench-{port}.log")))
                    .map_err(|e| format!("tansu log: {e}"))?;
                let err = log.try_clone().map_err(|e| format!("tansu log: {e}"))?;
                cmd.stdout(log).stderr(err);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut t = Tansu { child, port };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = t.child.try_wait() {
                return Err(format!("Tansu exited ({status}) before listening"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                let _ = t.child.kill();
                return Err(format!("Tansu did not listen on {addr} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line of a table: a client's (median) run of a case.
struct Row {
    case: &'static Case,
    client: String,
    result: Result<Outcome, String>,
    /// msg/s of every successful run.
    rates: Vec<f64>,
}

/// The markdown table of one broker.
fn table(target: &Target, rows: &[Row], repeat: usize) -> String {
    let rows: Vec<TableRow> = rows
        .iter()
        .map(|r| TableRow {
            case: r.case.name,
            client: &r.client,
            result: &r.result,
            rates: &r.rates,
        })
        .collect();
    results_table(&target.title(), &rows, repeat)
}

/// One client's result in one case, as the tables show it.
pub(crate) struct TableRow<'a> {
    pub(crate) case: &'a str,
    pub(crate) client: &'a str,
    pub(crate) result: &'a Result<Outcome, String>,
    /// msg/s of every successful run.
    pub(crate) rates: &'a [f64],
}

/// The markdown results table shared by the produce and consume benchmarks: figures per
/// client and ratios against rdkafka in the same case.
pub(crate) fn results_table(title: &str, rows: &[TableRow], repeat: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "### {title}\n");
    let runs_col = if repeat > 1 { " runs (k msg/s) |" } else { "" };
    let _ = writeln!(
        out,
        "| case | client | msg/s | MB/s | CPU µs/rec | peak RSS MiB | broker CPU | msg/s vs rdkafka | CPU vs rdkafka | RSS vs rdkafka |{runs_col}"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|{}",
        if repeat > 1 { "---|" } else { "" }
    );
    for row in rows {
        let (case, client) = (row.case, row.client);
        let base = rows
            .iter()
            .find(|r| r.case == case && r.client == "rdkafka")
            .and_then(|r| r.result.as_ref().ok());
        let runs = if repeat > 1 {
            let list: Vec<String> = row
                .rates
                .iter()
                .map(|r| format!("{:.0}", r / 1e3))
                .collect();
            format!(" {} |", list.join(" / "))
        } else {
            String::new()
        };
        match row.result {
            Ok(r) => {
                let ratio = |mine: f64, theirs: Option<f64>| match theirs {
                    Some(t) if t > 0.0 => format!("{:.2}x", mine / t),
                    _ => "–".into(),
                };
                let broker = match r.broker_cpu_us {
                    Some(us) => format!("{:.0}%", us as f64 / (r.secs * 1e6) * 100.0),
                    None => "–".into(),
                };
                let _ = writeln!(
                    out,
                    "| {case} | {client} | {:.0} | {:.1} | {:.3} | {:.1} | {broker} | {} | {} | {} |{runs}",
                    r.rate(),
                    r.bytes as f64 / r.secs / 1e6,
                    r.cpu_us_per_record,
                    r.peak_rss_mb,
                    ratio(r.rate(), base.map(Outcome::rate)),
                    ratio(r.cpu_us_per_record, base.map(|b| b.cpu_us_per_record)),
                    ratio(r.peak_rss_mb, base.map(|b| b.peak_rss_mb)),
                );
            }
            Err(e) => {
                let e = e.replace('|', "/");
                let _ = writeln!(
                    out,
                    "| {case} | {client} | failed: {e} | | | | | | | |{runs}"
                );
            }
        }
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
            "--brokers",
            "h:1",
            "--only",
            "100b-acks1,1kb-1m",
            "--quick",
            "--repeat",
            "3",
            "--clients",
            "ferrokafka",
        ]))
        .unwrap();
        assert_eq!(o.brokers.as_deref(), Some("h:1"));
        assert_eq!(o.only, ["100b-acks1", "1kb-1m"]);
        assert_eq!(o.clients, ["ferrokafka"]);
        assert!(o.quick);
        assert_eq!(o.repeat, 3);
        assert_eq!(o.records(cases::find("100b-acks1").unwrap()), 100_000);
        assert_eq!(o.cases().len(), 2);
        assert!(Options::parse(&args(&["--only", "nope"])).is_err());
        assert!(Options::parse(&args(&["--clients", "kafkajs"])).is_err());
        assert!(Options::parse(&args(&["--bogus"])).is_err());
        assert!(Options::parse(&args(&["--repeat"])).is_err());
    }

    #[test]
    fn result_lines_parse() {
        let o = parse_result(
            "RESULT client=rdkafka case=100b-acks1 records=1000 failed=0 bytes=100000 \
             secs=0.5000 cpu_us_per_record=0.8000 user_s=0.1 sys_s=0.1 peak_rss_mb=12.5",
        )
        .unwrap();
        assert_eq!((o.records, o.bytes), (1000, 100_000));
        assert_eq!(o.rate(), 2000.0);
        assert_eq!(o.cpu_us_per_record, 0.8);
        assert_eq!(o.peak_rss_mb, 12.5);
        assert!(parse_result("hello").is_none());
    }

    #[test]
    fn the_median_run_is_reported() {
        let run = |secs: f64| {
            Ok(Outcome {
                records: 100,
                secs,
                ..Outcome::default()
            })
        };
        let m = median_run(vec![run(1.0), run(4.0), run(2.0)]).unwrap();
        assert_eq!(m.secs, 2.0);
        assert!(median_run(vec![run(1.0), Err("x".into())]).is_err());
    }
}
