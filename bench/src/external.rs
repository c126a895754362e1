//! Workers that are not this binary: franz-go (a Go program, `bench/go/`) and the Java client
//! (`bench/java/BenchWorker.java`), run as peers in the produce and consume benchmarks.
//!
//! The parent launches every worker the same way (`common::run_worker`): a process given
//! `KEY=VALUE` arguments that prints one `RESULT` line and measures itself (getrusage CPU
//! from before the client is created, VmHWM). For an external client this module turns the
//! Rust worker's command line into the external program's: `--worker` becomes `produce`,
//! `--consume-worker` becomes `consume`, and the case's settings (size, keys, acks, codec,
//! linger, budget, fetch sizes, ...) are spelled out from the Rust case tables, so that the Go
//! and Java programs hold no copy of them that could drift.
//!
//! The payload is the one thing they generate themselves (1 MiB of words from a seeded
//! xorshift, `payload.rs`); the parent passes the pool's FNV-1a hash and they refuse to run on
//! a pool that differs.
//!
//! `cargo xtask bench` builds both into `target/bench/` before it runs the bench; the bench
//! looks there, or where [`GO_BINARY_ENV`] and [`JAVA_CLASSPATH_ENV`] say.

use std::path::{Path, PathBuf};

use crate::cases::{self, Acks, CASES};
use crate::common::{self, WorkerArgs};
use crate::consume::cases::{self as consume_cases, Settings};
use crate::payload::Payload;

/// The franz-go worker's client name.
pub const FRANZ_GO: &str = "franz-go";
/// The Java client worker's client name.
pub const JAVA: &str = "java";
/// The franz-go version `bench/go/go.mod` requires (the table heading names it).
pub const FRANZ_GO_VERSION: &str = "v1.22.3";
/// The kafka-clients version `bench/java/pom.xml` pins.
pub const JAVA_CLIENT_VERSION: &str = "4.4.0";

/// Path of the franz-go worker binary, instead of `target/bench/franzgo-bench`.
pub const GO_BINARY_ENV: &str = "FERROKAFKA_BENCH_FRANZ_GO";
/// Java classpath holding `BenchWorker` and kafka-clients, instead of
/// `target/bench/java/classes` + `target/bench/java/classpath.txt`.
pub const JAVA_CLASSPATH_ENV: &str = "FERROKAFKA_BENCH_JAVA_CP";

/// JVM options of the Java worker: the JVM's defaults (heap, GC) except SLF4J's level, so the
/// client's INFO configuration dump does not flood the bench's output.
const JVM_OPTIONS: &[&str] = &["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"];

/// The external clients that have a latency mode (`latency` in both programs); the latency
/// bench adds them to its clients.
pub const LATENCY_CLIENTS: &[&str] = &[FRANZ_GO, JAVA];

/// How long an external worker may go without progress (no acknowledgement, no record
/// received) before it gives up by itself, naming the phase it was stuck in and what it had
/// done; the parent's `--timeout` still kills a worker that does not. A client that cannot
/// talk to a broker retries forever (the Java client reconnects, franz-go re-requests), so
/// without this such a run would only end at the timeout, with no reason given.
pub const STUCK: std::time::Duration = std::time::Duration::from_secs(30);

/// The kind of broker a run goes to, for [`left_out`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// librdkafka's mock cluster.
    Mock,
    Tansu,
    /// Real Kafka or an external cluster.
    Kafka,
}

/// Setting this environment variable to anything runs the left-out pairs anyway (to check
/// whether a newer broker or client still cannot): see [`left_out`].
pub const RUN_LEFT_OUT_ENV: &str = "FERROKAFKA_BENCH_RUN_LEFT_OUT";

/// Why `client` cannot run against `broker`, if it cannot (measured; see PERFORMANCE.md,
/// "Peers: franz-go and the Java client"), unless [`RUN_LEFT_OUT_ENV`] is set.
pub fn left_out(client: &str, broker: Broker) -> Option<&'static str> {
    if std::env::var_os(RUN_LEFT_OUT_ENV).is_some() {
        return None;
    }
    left_out_measured(client, broker)
}

fn left_out_measured(client: &str, broker: Broker) -> Option<&'static str> {
    match (client, broker) {
        // kafka-clients 4.4 asks ApiVersions v5, which the mock (librdkafka 2.12) does not
        // know; the client reads its reply as a throttle of 1 179 648 ms on every broker.
        (JAVA, Broker::Mock) => {
            Some("the Java client 4.4 reads the mock's ApiVersions reply as a 20-minute throttle")
        }
        _ => None,
    }
}

/// Whether `client` runs as an external program.
pub fn is_external(client: &str) -> bool {
    client == FRANZ_GO || client == JAVA
}

/// What runs one worker: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The worker process for a Rust worker command line (`--worker ..` or `--consume-worker ..`):
/// this executable with `args` for the Rust clients, the Go or Java program for the others.
pub fn launch(args: &[String]) -> Result<Launch, String> {
    let own = || -> Result<Launch, String> {
        Ok(Launch {
            program: std::env::current_exe().map_err(|e| format!("own executable: {e}"))?,
            args: args.to_vec(),
        })
    };
    let Some((mode, rest)) = args.split_first() else {
        return own();
    };
    let kv = WorkerArgs::parse(rest)?;
    let client = kv.get("client")?;
    if !is_external(client) {
        return own();
    }
    let mut worker = match mode.as_str() {
        "--worker" => produce_args(&kv)?,
        "--consume-worker" => consume_args(&kv)?,
        "--latency-worker" => latency_args(),
        other => return Err(format!("unknown worker mode `{other}`")),
    };
    worker.push(format!("stuck_ms={}", STUCK.as_millis()));
    // The Rust worker's own arguments follow: the external ones read what they need.
    worker.extend(rest.iter().cloned());
    match client {
        FRANZ_GO => Ok(Launch {
            program: go_binary()?,
            args: worker,
        }),
        _ => {
            let mut args: Vec<String> = JVM_OPTIONS.iter().map(|s| s.to_string()).collect();
            args.extend(["-cp".into(), java_classpath()?, "BenchWorker".into()]);
            args.extend(worker);
            Ok(Launch {
                program: PathBuf::from("java"),
                args,
            })
        }
    }
}

/// `produce` and the produce case's settings, as `KEY=VALUE`.
fn produce_args(kv: &WorkerArgs) -> Result<Vec<String>, String> {
    let case = common::find(CASES, kv.get("case")?).ok_or("unknown case")?;
    if case.tls || kv.get("ca").is_ok() {
        return Err(format!(
            "{} has no SASL_SSL setup in this bench",
            kv.get("client")?
        ));
    }
    Ok(vec![
        "produce".into(),
        format!("size={}", case.size),
        format!("keyed={}", u8::from(case.keyed)),
        format!("acks={}", case.acks.name()),
        format!("codec={}", case.codec.name()),
        format!("linger_ms={}", cases::LINGER_MS),
        format!("budget={}", cases::BUDGET),
        format!("max_in_flight={}", cases::MAX_IN_FLIGHT),
        format!("idempotent={}", u8::from(case.acks == Acks::All)),
        format!("payload_fnv={:016x}", Payload::new(case.size).fnv()),
    ])
}

/// `latency` and its settings, as `KEY=VALUE`: the linger all clients of the latency bench
/// use (franz-go's own default is 10 ms), and the pool of the 100-byte values. The rate,
/// warm-up and measured time are among the Rust worker's arguments.
fn latency_args() -> Vec<String> {
    vec![
        "latency".into(),
        format!("linger_ms={}", cases::LINGER_MS),
        format!(
            "payload_fnv={:016x}",
            Payload::new(crate::latency::worker::VALUE_SIZE).fnv()
        ),
    ]
}

/// `consume` and the consume case's settings, as `KEY=VALUE`.
fn consume_args(kv: &WorkerArgs) -> Result<Vec<String>, String> {
    let case = common::find(consume_cases::CASES, kv.get("case")?).ok_or("unknown case")?;
    let s = Settings::with_budget(kv.parse_or("fetch_buffer", consume_cases::FETCH_BUFFER_BYTES)?);
    Ok(vec![
        "consume".into(),
        format!("partitions={}", case.partitions),
        format!("fetch_max_wait_ms={}", s.fetch_max_wait_ms),
        format!("max_partition_fetch_bytes={}", s.max_partition_fetch_bytes),
        format!("fetch_max_bytes={}", s.fetch_max_bytes),
        "stall_ms=0".into(),
    ])
}

/// The workspace's `target/bench`, where `cargo xtask bench` builds the external workers.
fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("bench")
}

fn go_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(GO_BINARY_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let path = bench_dir().join("franzgo-bench");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no franz-go worker at {}: `cargo xtask bench` builds it (needs go), or set \
             {GO_BINARY_ENV}",
            path.display()
        ))
    }
}

fn java_classpath() -> Result<String, String> {
    if let Ok(cp) = std::env::var(JAVA_CLASSPATH_ENV) {
        if !cp.is_empty() {
            return Ok(cp);
        }
    }
    let dir = bench_dir().join("java");
    let classes = dir.join("classes");
    let deps = std::fs::read_to_string(dir.join("classpath.txt")).ok();
    match deps {
        Some(deps) if classes.join("BenchWorker.class").is_file() => {
            Ok(format!("{}:{}", classes.display(), deps.trim()))
        }
        _ => Err(format!(
            "no Java worker in {}: `cargo xtask bench` builds it (needs java, javac, mvn), \
             or set {JAVA_CLASSPATH_ENV}",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::strings;

    fn value<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
        args.iter()
            .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn rust_clients_run_this_executable_unchanged() {
        let args = strings(&["--worker", "client=rdkafka", "case=100b-acks1"]);
        let l = launch(&args).unwrap();
        assert_eq!(l.program, std::env::current_exe().unwrap());
        assert_eq!(l.args, args);
    }

    #[test]
    fn produce_settings_are_spelled_out_from_the_case() {
        std::env::set_var(GO_BINARY_ENV, "/opt/franzgo-bench");
        let args = strings(&[
            "--worker",
            "client=franz-go",
            "case=1kb-acksall",
            "bootstrap=h:1",
            "topic=t",
            "records=5",
            "batch_size=1000",
        ]);
        let l = launch(&args).unwrap();
        assert_eq!(l.program, PathBuf::from("/opt/franzgo-bench"));
        let a = &l.args;
        assert_eq!(a[0], "produce");
        assert_eq!(value(a, "size"), Some("1024"));
        assert_eq!(value(a, "keyed"), Some("0"));
        assert_eq!(value(a, "acks"), Some("all"));
        assert_eq!(value(a, "idempotent"), Some("1"));
        assert_eq!(value(a, "codec"), Some("none"));
        assert_eq!(value(a, "linger_ms"), Some("5"));
        assert_eq!(value(a, "budget"), Some("33554432"));
        assert_eq!(value(a, "max_in_flight"), Some("5"));
        assert_eq!(value(a, "batch_size"), Some("1000"));
        assert_eq!(value(a, "topic"), Some("t"));
        assert_eq!(value(a, "client"), Some("franz-go"));
        let fnv = value(a, "payload_fnv").unwrap();
        assert_eq!(fnv.len(), 16);
        let keyed = strings(&["--worker", "client=franz-go", "case=100b-keyed"]);
        let k = launch(&keyed).unwrap();
        assert_eq!(value(&k.args, "keyed"), Some("1"));
        assert_eq!(value(&k.args, "codec"), Some("none"));
        assert_eq!(value(&k.args, "acks"), Some("1"));
        let tls = strings(&["--worker", "client=franz-go", "case=1kb-sasl-ssl"]);
        assert!(launch(&tls).unwrap_err().contains("SASL_SSL"));
        let unknown = strings(&["--worker", "client=franz-go", "case=nope"]);
        assert!(launch(&unknown).is_err());
    }

    #[test]
    fn consume_settings_follow_the_budget_and_java_runs_in_a_jvm() {
        std::env::set_var(JAVA_CLASSPATH_ENV, "/cp/classes:/cp/kafka-clients.jar");
        let args = strings(&[
            "--consume-worker",
            "client=java",
            "case=100p-10mb",
            "records=7",
            "fetch_buffer=16777216",
            "stall_ms=250",
        ]);
        let l = launch(&args).unwrap();
        assert_eq!(l.program, PathBuf::from("java"));
        let at = l.args.iter().position(|a| a == "BenchWorker").unwrap();
        assert_eq!(
            l.args[at - 2..at],
            ["-cp", "/cp/classes:/cp/kafka-clients.jar"]
        );
        let a = &l.args[at + 1..];
        assert_eq!(a[0], "consume");
        assert_eq!(value(a, "partitions"), Some("100"));
        assert_eq!(value(a, "fetch_max_wait_ms"), Some("500"));
        assert_eq!(value(a, "max_partition_fetch_bytes"), Some("1048576"));
        // fetch.max.bytes is lowered to a smaller budget, as for the Rust clients.
        assert_eq!(value(a, "fetch_max_bytes"), Some("16777216"));
        // The worker's own stall_ms comes after the default and wins (last KEY=VALUE).
        let stalls: Vec<&String> = a.iter().filter(|x| x.starts_with("stall_ms=")).collect();
        assert_eq!(stalls.last().map(|s| s.as_str()), Some("stall_ms=250"));
        assert!(launch(&strings(&["--bogus", "client=java"])).is_err());
    }

    #[test]
    fn latency_workers_get_the_common_linger_and_the_value_pool() {
        std::env::set_var(JAVA_CLASSPATH_ENV, "/cp/classes:/cp/kafka-clients.jar");
        let args = strings(&[
            "--latency-worker",
            "client=java",
            "bootstrap=h:1",
            "topic=t",
            "partitions=12",
            "rate=1000",
            "warmup_ms=2000",
            "measure_ms=5000",
        ]);
        let l = launch(&args).unwrap();
        assert_eq!(l.program, PathBuf::from("java"));
        let at = l.args.iter().position(|a| a == "BenchWorker").unwrap();
        let a = &l.args[at + 1..];
        assert_eq!(a[0], "latency");
        assert_eq!(value(a, "linger_ms"), Some("5"));
        let fnv = format!("{:016x}", Payload::new(100).fnv());
        assert_eq!(value(a, "payload_fnv"), Some(fnv.as_str()));
        assert_eq!(value(a, "stuck_ms"), Some("30000"));
        for (k, v) in [
            ("rate", "1000"),
            ("warmup_ms", "2000"),
            ("partitions", "12"),
        ] {
            assert_eq!(value(a, k), Some(v));
        }
        // The Rust clients' latency workers stay this executable.
        let rust = strings(&["--latency-worker", "client=ferrokafka", "rate=1"]);
        assert_eq!(launch(&rust).unwrap().args, rust);
    }

    #[test]
    fn peers_are_left_out_where_they_cannot_run() {
        let f = left_out_measured;
        assert!(f(JAVA, Broker::Tansu).is_none());
        assert!(f(JAVA, Broker::Mock).is_some());
        assert!(f(JAVA, Broker::Kafka).is_none());
        assert!(f(FRANZ_GO, Broker::Tansu).is_none());
        assert!(f(FRANZ_GO, Broker::Mock).is_none());
        assert!(f("rdkafka", Broker::Mock).is_none());
    }

    #[test]
    fn an_external_result_line_parses() {
        // The Go and Java programs print this format (same fields as `Measured::print_result`).
        let o = common::parse_result(
            "RESULT client=franz-go case=100b-acks1 records=100000 failed=0 bytes=10000000 \
             secs=0.2500 cpu_us_per_record=1.2500 user_s=0.100 sys_s=0.025 peak_rss_mb=30.5",
        )
        .unwrap();
        assert_eq!((o.records, o.bytes), (100_000, 10_000_000));
        assert_eq!(o.rate(), 400_000.0);
        assert_eq!((o.cpu_us_per_record, o.peak_rss_mb), (1.25, 30.5));
    }

    #[test]
    fn the_pinned_versions_are_the_built_ones() {
        let go_mod = include_str!("../go/go.mod");
        assert!(go_mod.contains(&format!("github.com/twmb/franz-go {FRANZ_GO_VERSION}")));
        let pom = include_str!("../java/pom.xml");
        assert!(pom.contains(&format!(
            "<kafka.version>{JAVA_CLIENT_VERSION}</kafka.version>"
        )));
    }
}
