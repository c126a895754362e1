//! What the produce and consume benchmarks share: the options both have, the brokers and
//! topics, running one worker process per client run and reading its `RESULT` line, the
//! worker's side of that line, and the results table.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::clients::CLIENTS;
use crate::measure;

/// What the option parsing, the help text and the tables need of a case.
pub trait BenchCase: 'static {
    fn name(&self) -> &'static str;
    /// One line for the table's heading.
    fn what(&self) -> &'static str;
    /// Records of a full run (divided by 10 with `--quick`).
    fn records(&self) -> u64;
}

/// The case of `cases` called `name`.
pub fn find<C: BenchCase>(cases: &'static [C], name: &str) -> Option<&'static C> {
    cases.iter().find(|c| c.name() == name)
}

/// A help text followed by the list of cases.
pub fn usage<C: BenchCase>(text: &str, cases: &[C]) -> String {
    let mut text = text.to_string();
    for c in cases {
        text.push_str(&format!("\n  {:<12} {}", c.name(), c.what()));
    }
    text
}

/// The options both benchmarks have.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub brokers: Option<String>,
    pub tansu: Option<PathBuf>,
    pub only: Vec<String>,
    pub clients: Vec<String>,
    pub quick: bool,
    pub repeat: usize,
    pub replication: i16,
    pub wrap: Vec<String>,
    pub timeout: Duration,
    pub log_dir: Option<PathBuf>,
    /// Nodes of the `--kafka` cluster (1, or 3 for replication factor 3 and
    /// `min.insync.replicas=2`).
    pub kafka_nodes: usize,
}

impl Default for Common {
    fn default() -> Common {
        Common {
            brokers: None,
            tansu: None,
            only: Vec::new(),
            clients: CLIENTS.iter().map(|c| c.to_string()).collect(),
            quick: false,
            repeat: 1,
            replication: 1,
            wrap: Vec::new(),
            timeout: Duration::from_secs(600),
            log_dir: None,
            kafka_nodes: 1,
        }
    }
}

impl Common {
    /// Takes `arg` (and its value from `args`) if it is one of the shared options; false if
    /// it is not.
    pub fn parse_option(&mut self, arg: &str, args: &mut Args) -> Result<bool, String> {
        match arg {
            "--brokers" => self.brokers = Some(args.value("--brokers")?),
            "--tansu" => self.tansu = Some(PathBuf::from(args.value("--tansu")?)),
            "--only" => self.only = list(&args.value("--only")?),
            "--clients" => self.clients = list(&args.value("--clients")?),
            "--quick" => self.quick = true,
            "--repeat" => self.repeat = args.number("--repeat")?.max(1),
            "--replication" => self.replication = args.number("--replication")? as i16,
            "--wrap" => {
                self.wrap = args
                    .value("--wrap")?
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            }
            "--timeout" => self.timeout = Duration::from_secs(args.number("--timeout")? as u64),
            "--log-dir" => self.log_dir = Some(PathBuf::from(args.value("--log-dir")?)),
            "--kafka-nodes" => match args.number("--kafka-nodes")? {
                n @ (1 | 3) => self.kafka_nodes = n,
                n => return Err(format!("--kafka-nodes {n}: 1 or 3")),
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks `--only` against `cases` (`noun` names a case in the message) and `--clients`.
    pub fn check<C: BenchCase>(&self, cases: &[C], noun: &str) -> Result<(), String> {
        for name in &self.only {
            if !cases.iter().any(|c| c.name() == name) {
                let names: Vec<&str> = cases.iter().map(|c| c.name()).collect();
                return Err(format!(
                    "unknown {noun} `{name}`: one of {}",
                    names.join(", ")
                ));
            }
        }
        for c in &self.clients {
            if !CLIENTS.contains(&c.as_str()) {
                return Err(format!(
                    "unknown client `{c}`: one of {}",
                    CLIENTS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The cases to run (`--only`), in their order.
    pub fn cases<C: BenchCase>(&self, cases: &'static [C]) -> Vec<&'static C> {
        cases
            .iter()
            .filter(|c| self.only.is_empty() || self.only.iter().any(|o| o == c.name()))
            .collect()
    }

    /// The records of a run of `case` (`--quick`: a tenth).
    pub fn records(&self, case: &impl BenchCase) -> u64 {
        if self.quick {
            case.records() / 10
        } else {
            case.records()
        }
    }
}

/// A command line, option by option.
pub struct Args<'a>(std::slice::Iter<'a, String>);

impl<'a> Args<'a> {
    pub fn new(args: &'a [String]) -> Args<'a> {
        Args(args.iter())
    }

    pub fn next(&mut self) -> Option<&'a str> {
        self.0.next().map(String::as_str)
    }

    /// The value of option `name`.
    pub fn value(&mut self, name: &str) -> Result<String, String> {
        self.0
            .next()
            .cloned()
            .ok_or_else(|| format!("{name} needs a value"))
    }

    /// The value of option `name`, a number.
    pub fn number(&mut self, name: &str) -> Result<usize, String> {
        let text = self.value(name)?;
        text.parse()
            .map_err(|_| format!("{name}: `{text}` is not a number"))
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Prints the heading of `benchmark`'s output, the machine and the clients.
pub fn print_machine(benchmark: &str) {
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
    println!("# ferrokafka {benchmark} benchmark");
    println!("machine: {cores} cores, {model}");
    println!(
        "clients: ferrokafka (this workspace), rdkafka 0.39 / librdkafka {librdkafka}, \
         rskafka 0.6{}, franz-go {} (Go), kafka-clients {} (Java)",
        if cfg!(feature = "peers") {
            ", krafka 0.28, confluent-kafka 1.0"
        } else {
            ""
        },
        crate::external::FRANZ_GO_VERSION,
        crate::external::JAVA_CLIENT_VERSION
    );
}

/// The parent's runtime for the admin calls (creating and deleting topics).
pub fn admin_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

static TOPIC_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A topic name no other run of this process uses: `prefix`, the process id, a counter.
pub fn topic_name(prefix: &str) -> String {
    let n = TOPIC_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

pub async fn create_topic(
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

pub async fn delete_topic(bootstrap: &str, topic: &str) -> Result<(), String> {
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

/// The Tansu binary: `--tansu`, else `FERROKAFKA_TANSU`, else the one `cargo xtask` installs.
pub fn tansu_binary(explicit: Option<&PathBuf>) -> Option<PathBuf> {
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

/// A Tansu process on a free loopback port (same flags as the tests), killed on drop.
pub struct Tansu {
    child: Child,
    port: u16,
}

impl Tansu {
    pub fn start(binary: &Path, log_dir: Option<&Path>) -> Result<Tansu, String> {
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

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Tansu's CPU time (user+sys) so far, in microseconds.
    pub fn cpu_micros(&self) -> Option<u64> {
        measure::process_cpu_micros(self.child.id())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    pub fn rate(&self) -> f64 {
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

/// Runs `work` once the broker is quiet, and sets the broker's CPU time meanwhile in its
/// outcome (`broker_cpu`: the broker's CPU so far in microseconds, None if unknown).
pub fn with_broker_cpu(
    broker_cpu: impl Fn() -> Option<u64>,
    work: impl FnOnce() -> Result<Outcome, String>,
) -> Result<Outcome, String> {
    settle(&broker_cpu);
    let before = broker_cpu();
    let result = work();
    let after = broker_cpu();
    let mut outcome = result?;
    outcome.broker_cpu_us = before.zip(after).map(|(b, a)| a.saturating_sub(b));
    Ok(outcome)
}

/// A window in which a quiet broker uses under [`QUIET_SHARE`] of a core.
const QUIET_WINDOW: Duration = Duration::from_millis(250);
/// What counts as quiet: 10 % of one core.
const QUIET_SHARE: f64 = 0.10;
/// Longest wait for a quiet broker.
const QUIET_MAX: Duration = Duration::from_secs(15);

/// Waits until the broker (a shared JVM Kafka node) has finished what the previous run left
/// it — log appends still being flushed, a deleted topic's files, garbage collection — so
/// that work is not charged to the next client. Without it the client that ran second in a
/// round lost on real Kafka whichever it was (1kb-acksall: rdkafka ahead in all three rounds
/// when it ran first, ferrokafka ahead in all five when it did). A broker whose CPU is unknown
/// (the mock, in-process) is not waited for.
fn settle(broker_cpu: &impl Fn() -> Option<u64>) {
    let Some(mut last) = broker_cpu() else {
        return;
    };
    let start = Instant::now();
    loop {
        std::thread::sleep(QUIET_WINDOW);
        let Some(now) = broker_cpu() else { return };
        if is_quiet(now.saturating_sub(last), QUIET_WINDOW) {
            return;
        }
        if start.elapsed() >= QUIET_MAX {
            println!("   (the broker was still busy after {QUIET_MAX:?}; running anyway)");
            return;
        }
        last = now;
    }
}

/// Whether `cpu_us` of broker CPU within `window` is below [`QUIET_SHARE`] of a core.
fn is_quiet(cpu_us: u64, window: Duration) -> bool {
    (cpu_us as f64) < window.as_micros() as f64 * QUIET_SHARE
}

/// The order clients run in round `round`: each round starts one client further on, so no
/// client always runs right after the same one (whose leftovers at the broker it would pay
/// for) or always first.
fn round_order(clients: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..clients).map(move |i| (i + round) % clients)
}

/// Runs this executable as a worker process (under `wrap`, a profiler command, if given) with
/// `args`, echoes its output, and parses its `RESULT` line; kills it after `timeout`.
pub fn run_worker(wrap: &[String], timeout: Duration, args: &[String]) -> Result<Outcome, String> {
    // This executable, or the Go / Java program of an external client.
    let worker = crate::external::launch(args)?;
    let mut cmd = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(&worker.program);
            c
        }
        None => Command::new(&worker.program),
    };
    cmd.args(&worker.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start worker: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || read_worker_output(BufReader::new(stdout)));
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
    let (line, error) = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(error.unwrap_or_else(|| format!("worker exited with {status}")));
    }
    let line = line.ok_or("worker printed no RESULT line")?;
    parse_result(&line).ok_or_else(|| format!("cannot parse `{line}`"))
}

/// Reads a worker's stdout: its `RESULT` line and its last `ERROR ` line (without the
/// prefix), echoing every other line. The external workers (external.rs) print why they
/// failed as an `ERROR ` line: that reason, not just the exit status, is the run's result in
/// the table.
fn read_worker_output(out: impl BufRead) -> (Option<String>, Option<String>) {
    let (mut result, mut error) = (None, None);
    for line in out.lines().map_while(Result::ok) {
        if line.starts_with("RESULT ") {
            result = Some(line);
        } else {
            println!("   {line}");
            if let Some(why) = line.strip_prefix("ERROR ") {
                error = Some(why.to_string());
            }
        }
    }
    (result, error)
}

/// One line of a table: a client's (median) run of a case.
pub struct Row {
    pub case: &'static str,
    pub client: String,
    pub result: Result<Outcome, String>,
    /// msg/s of every successful run.
    pub rates: Vec<f64>,
}

/// Runs every client `repeat` times on `case`, interleaved (each client once, then again,
/// each round starting one client further on: [`round_order`]), printing each run, and
/// returns a row per client with its median run.
pub fn run_clients(
    case: &'static str,
    clients: &[String],
    repeat: usize,
    mut run: impl FnMut(&str) -> Result<Outcome, String>,
) -> Vec<Row> {
    let mut runs: Vec<(String, Vec<Result<Outcome, String>>)> =
        clients.iter().map(|c| (c.clone(), Vec::new())).collect();
    for rep in 0..repeat {
        for i in round_order(runs.len(), rep) {
            let (client, results) = &mut runs[i];
            let r = run(client);
            match &r {
                Ok(out) => println!("   [{}/{}] {}", rep + 1, repeat, out.line),
                Err(e) => println!("   [{}/{}] {client}: FAILED: {e}", rep + 1, repeat),
            }
            results.push(r);
        }
    }
    runs.into_iter()
        .map(|(client, results)| Row {
            case,
            client,
            rates: results
                .iter()
                .filter_map(|r| r.as_ref().ok().map(Outcome::rate))
                .collect(),
            result: median_run(results),
        })
        .collect()
}

/// The run with the median throughput (any failure makes the whole row a failure).
fn median_run(results: Vec<Result<Outcome, String>>) -> Result<Outcome, String> {
    let mut ok = Vec::new();
    for r in results {
        ok.push(r?);
    }
    ok.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let mid = ok.len() / 2;
    ok.into_iter().nth(mid).ok_or_else(|| "no run".to_string())
}

/// The failed rows, as the closing error says.
pub fn failures(rows: &[Row]) -> Result<(), String> {
    match rows.iter().filter(|r| r.result.is_err()).count() {
        0 => Ok(()),
        n => Err(format!("{n} client run(s) failed")),
    }
}

/// The markdown results table: figures per client and ratios against rdkafka in the same
/// case.
pub fn results_table(title: &str, rows: &[Row], repeat: usize) -> String {
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
        let (case, client) = (row.case, &row.client);
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
        match &row.result {
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

/// A worker's `KEY=VALUE` arguments.
pub struct WorkerArgs<'a>(BTreeMap<&'a str, &'a str>);

impl<'a> WorkerArgs<'a> {
    pub fn parse(args: &'a [String]) -> Result<WorkerArgs<'a>, String> {
        args.iter()
            .map(|arg| {
                arg.split_once('=')
                    .ok_or_else(|| format!("worker argument `{arg}` is not KEY=VALUE"))
            })
            .collect::<Result<_, _>>()
            .map(WorkerArgs)
    }

    /// The value of `key`, which must be given.
    pub fn get(&self, key: &str) -> Result<&'a str, String> {
        self.0
            .get(key)
            .copied()
            .ok_or_else(|| format!("worker needs {key}=.."))
    }

    /// The value of `key` parsed, which must be given.
    pub fn parse_value<T: FromStr>(&self, key: &str) -> Result<T, String>
    where
        T::Err: Display,
    {
        self.get(key)?.parse().map_err(|e| format!("{key}: {e}"))
    }

    /// The value of `key` parsed, `default` if it is not given.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, String>
    where
        T::Err: Display,
    {
        match self.0.contains_key(key) {
            true => self.parse_value(key),
            false => Ok(default),
        }
    }
}

/// What a worker measured of its run, for its `RESULT` line.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Records produced (acknowledged) or consumed.
    pub records: u64,
    /// Records that failed.
    pub failed: u64,
    /// Key + value bytes of the records.
    pub bytes: u64,
    /// The measured span: first send to last acknowledgement, first record to last.
    pub elapsed: Duration,
    /// Process CPU (user, sys) in microseconds and peak RSS in KiB at the end of the work.
    pub cpu_at_end: (u64, u64),
    pub peak_rss_kib: u64,
}

impl Measured {
    /// The figures, with the process's CPU time and peak RSS taken now.
    pub fn now(records: u64, failed: u64, bytes: u64, elapsed: Duration) -> Measured {
        Measured {
            records,
            failed,
            bytes,
            elapsed,
            cpu_at_end: measure::cpu_micros(),
            peak_rss_kib: measure::peak_rss_kib(),
        }
    }

    /// Prints the `RESULT` line `parse_result` reads, with the CPU used since `cpu_start`
    /// (`measure::cpu_micros` before the run).
    pub fn print_result(&self, client: &str, case: &str, cpu_start: (u64, u64)) {
        let (user0, sys0) = cpu_start;
        let (user1, sys1) = self.cpu_at_end;
        let cpu = (user1 - user0) + (sys1 - sys0);
        println!(
            "RESULT client={client} case={case} records={} failed={} bytes={} secs={:.4} \
             cpu_us_per_record={:.4} user_s={:.3} sys_s={:.3} peak_rss_mb={:.1}",
            self.records,
            self.failed,
            self.bytes,
            self.elapsed.as_secs_f64(),
            cpu as f64 / self.records.max(1) as f64,
            (user1 - user0) as f64 / 1e6,
            (sys1 - sys0) as f64 / 1e6,
            self.peak_rss_kib as f64 / 1024.0,
        );
    }
}

/// A command line for the tests.
#[cfg(test)]
pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_workers_error_line_is_its_reason() {
        let out = "connecting\nERROR java: no progress for 30.0s while fetching (0 records done)\n";
        let (result, error) = read_worker_output(std::io::Cursor::new(out));
        assert_eq!(result, None);
        assert_eq!(
            error.as_deref(),
            Some("java: no progress for 30.0s while fetching (0 records done)")
        );
        let ok = "RESULT client=java case=c records=1\n";
        let (result, error) = read_worker_output(std::io::Cursor::new(ok));
        assert_eq!(result.as_deref(), Some(ok.trim_end()));
        assert_eq!(error, None);
    }

    use super::*;

    fn names_are_unique_and_found<C: BenchCase>(cases: &'static [C]) {
        for c in cases {
            assert_eq!(find(cases, c.name()).unwrap().name(), c.name());
            assert_eq!(cases.iter().filter(|d| d.name() == c.name()).count(), 1);
        }
        assert!(find(cases, "nope").is_none());
    }

    #[test]
    fn each_round_starts_one_client_further_on() {
        let rounds: Vec<Vec<usize>> = (0..4).map(|r| round_order(3, r).collect()).collect();
        assert_eq!(
            rounds,
            [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
        // Every client runs first, and after every other client, once per `clients` rounds.
        for c in 0..3 {
            assert_eq!(rounds[..3].iter().filter(|r| r[0] == c).count(), 1);
        }
    }

    #[test]
    fn clients_run_in_rotated_order_and_rows_stay_per_client() {
        let clients = strings(&["a", "b"]);
        let mut order = Vec::new();
        let rows = run_clients("c", &clients, 2, |client| {
            order.push(client.to_string());
            Err(format!("{client} not run"))
        });
        assert_eq!(order, ["a", "b", "b", "a"]);
        assert_eq!(rows[0].client, "a");
        assert_eq!(rows[0].result.as_ref().unwrap_err(), "a not run");
        assert_eq!(rows[1].client, "b");
    }

    #[test]
    fn a_broker_is_quiet_below_a_tenth_of_a_core() {
        let window = Duration::from_millis(250);
        assert!(is_quiet(0, window));
        assert!(is_quiet(24_999, window));
        assert!(!is_quiet(25_000, window));
        assert!(!is_quiet(250_000, window));
        // Unknown broker CPU (the in-process mock): no wait at all.
        let start = Instant::now();
        settle(&|| None);
        assert!(start.elapsed() < window);
    }

    #[test]
    fn case_names_are_unique_and_found() {
        names_are_unique_and_found(crate::cases::CASES);
        names_are_unique_and_found(crate::consume::cases::CASES);
    }

    #[test]
    fn shared_options_parse() {
        let args = strings(&[
            "--brokers",
            "h:1",
            "--only",
            "a, b,",
            "--repeat",
            "0",
            "--wrap",
            "perf record",
            "--timeout",
            "5",
            "--kafka-nodes",
            "3",
            "--own",
        ]);
        let mut args = Args::new(&args);
        let mut c = Common::default();
        while let Some(arg) = args.next() {
            if !c.parse_option(arg, &mut args).unwrap() {
                assert_eq!(arg, "--own");
            }
        }
        assert_eq!(c.brokers.as_deref(), Some("h:1"));
        assert_eq!(c.only, ["a", "b"]);
        assert_eq!(c.repeat, 1);
        assert_eq!(c.wrap, ["perf", "record"]);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.kafka_nodes, 3);
        let args = strings(&["--kafka-nodes", "2"]);
        let mut args = Args::new(&args);
        let arg = args.next().unwrap();
        assert_eq!(
            c.parse_option(arg, &mut args),
            Err("--kafka-nodes 2: 1 or 3".to_string())
        );
        let args = strings(&["--repeat", "x"]);
        let mut args = Args::new(&args);
        let arg = args.next().unwrap();
        assert_eq!(
            c.parse_option(arg, &mut args),
            Err("--repeat: `x` is not a number".to_string())
        );
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

    #[test]
    fn worker_arguments() {
        let args = strings(&["records=12", "topic=t"]);
        let kv = WorkerArgs::parse(&args).unwrap();
        assert_eq!(kv.get("topic"), Ok("t"));
        assert_eq!(kv.parse_value::<u64>("records"), Ok(12));
        assert_eq!(kv.parse_or("stall_ms", 7u64), Ok(7));
        assert_eq!(kv.get("case"), Err("worker needs case=..".to_string()));
        assert!(kv.parse_value::<u64>("topic").is_err());
        assert!(WorkerArgs::parse(&strings(&["bad"])).is_err());
    }
}
