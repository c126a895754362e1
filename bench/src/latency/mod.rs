//! The latency benchmark: each client produces 100-byte records at fixed rates (acks=all)
//! while a consumer of the same library reads them back, and reports p50 / p99 / p99.9 / max
//! of the produce acknowledgement and of the end-to-end delivery, both from each record's
//! scheduled send time (see `worker.rs`).
//!
//! As in the produce bench, the parent starts the brokers and creates one fresh topic per
//! run; every (broker, rate, client) runs in its own worker process
//! (`ferrokafka-bench --latency-worker ...`), so CPU and peak RSS are the client's.

#[cfg(feature = "peers")]
mod confluent;
mod ferro;
mod histogram;
#[cfg(feature = "peers")]
mod krafka;
mod rdk;
mod rsk;
mod table;
pub mod worker;

use std::path::PathBuf;

use crate::cases::PARTITIONS;
use crate::common::{self, Args, Common, Outcome};
use crate::results;
use crate::target::{self, Target};
use table::{Latencies, LatencyRow};

const USAGE: &str = "\
Usage: ferrokafka-bench latency [options]

Produces 100-byte records at fixed rates (acks=all, each client's default linger) with
rdkafka, ferrokafka, rskafka, (feature `peers`; not on the mock cluster) krafka and
confluent-kafka, franz-go and the Java client, each in its own process with a consumer of the
same library (assigned, from the latest offset), and prints per broker the p50 / p99 / p99.9 /
max latency of (a) the produce acknowledgement and (b) the consumer's receipt, both from
the record's scheduled send time (a client that falls behind pays for it), the achieved
rate, and ratios against rdkafka (lower is better).

Options:
  --rates R[,R]        Records per second (default 1000,10000,100000)
  --seconds S          Measured seconds per run (default 10), after the warm-up
  --warmup S           Warm-up seconds per run, not measured (default 2)
  --brokers HOST:PORT  Run only against this external cluster (topics created with
                       --replication, default 1, and deleted afterwards)
  --kafka              Run only against one real Apache Kafka node started here
  --kafka-nodes N      With --kafka: 1 node (default) or 3 (topics with replication factor 3,
                       min.insync.replicas 2)
  --tansu PATH         The tansu binary (default: $FERROKAFKA_TANSU, else
                       target/brokers/tansu; Tansu is skipped if there is none)
  --no-mock            Skip librdkafka's mock cluster
  --no-tansu           Skip Tansu
  --clients C[,C]      Only these clients
  --quick              2 measured seconds and 1 of warm-up (a smoke run)
  --replication N      Replication factor of topics on --brokers (default 1)
  --results FILE       Append the figures to FILE (TSV) for `ferrokafka-bench chart`
  --wrap 'CMD ARGS'    Run workers under CMD
  --timeout SECS       Kill a worker after SECS (default 600)
  --log-dir DIR        Write Tansu's logs there (default: discarded)";

pub fn usage() -> String {
    USAGE.to_string()
}

/// The rates run by default, records per second.
pub const DEFAULT_RATES: &[u64] = &[1_000, 10_000, 100_000];

/// Parsed command line of `latency`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub common: Common,
    pub rates: Vec<u64>,
    pub seconds: f64,
    pub warmup: f64,
    pub mock: bool,
    pub use_tansu: bool,
    pub kafka: bool,
    pub results: Option<PathBuf>,
}

/// The clients `latency` runs by default: those with a latency worker.
pub const LATENCY_CLIENTS: &[&str] = &["rdkafka", "ferrokafka", "rskafka"];
/// Run by default after [`LATENCY_CLIENTS`] when the bench is built with feature `peers`.
pub const PEER_CLIENTS: &[&str] = if cfg!(feature = "peers") {
    &["krafka", "confluent-kafka"]
} else {
    &[]
};

/// The clients run when `--clients` is not given.
fn default_clients() -> Vec<String> {
    LATENCY_CLIENTS
        .iter()
        .chain(PEER_CLIENTS)
        .chain(crate::external::LATENCY_CLIENTS)
        .map(|c| c.to_string())
        .collect()
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            // Every client has a latency worker: the Rust ones in `worker.rs` (krafka and
            // confluent-kafka with feature `peers`), franz-go and Java through `external.rs`.
            common: Common {
                clients: default_clients(),
                ..Common::default()
            },
            rates: DEFAULT_RATES.to_vec(),
            seconds: 10.0,
            warmup: 2.0,
            mock: true,
            use_tansu: true,
            kafka: false,
            results: None,
        };
        let mut args = Args::new(args);
        while let Some(arg) = args.next() {
            if o.common.parse_option(arg, &mut args)? {
                continue;
            }
            match arg {
                "--rates" => o.rates = rates(&args.value("--rates")?)?,
                "--seconds" => o.seconds = seconds("--seconds", &args.value("--seconds")?)?,
                "--warmup" => o.warmup = seconds("--warmup", &args.value("--warmup")?)?,
                "--no-mock" => o.mock = false,
                "--no-tansu" => o.use_tansu = false,
                "--kafka" => o.kafka = true,
                "--results" => o.results = Some(PathBuf::from(args.value("--results")?)),
                other => return Err(format!("unknown option `{other}`\n{USAGE}")),
            }
        }
        // The shared options with no meaning here are refused rather than ignored.
        if !o.common.only.is_empty() {
            return Err("latency has no cases: choose rates with --rates".into());
        }
        if o.common.repeat > 1 {
            return Err("latency runs each rate once: --repeat is not supported".into());
        }
        o.common.check::<crate::cases::Case>(&[], "case")?;
        if o.kafka && o.common.brokers.is_some() {
            return Err("--kafka and --brokers exclude each other".into());
        }
        if o.common.quick {
            o.seconds = o.seconds.min(2.0);
            o.warmup = o.warmup.min(1.0);
        }
        Ok(o)
    }
}

fn rates(text: &str) -> Result<Vec<u64>, String> {
    let rates: Vec<u64> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<u64>() {
            Ok(r) if r > 0 => Ok(r),
            _ => Err(format!("--rates: `{s}` is not a positive whole number")),
        })
        .collect::<Result<_, _>>()?;
    if rates.is_empty() {
        return Err("--rates needs at least one rate".into());
    }
    Ok(rates)
}

fn seconds(name: &str, text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("{name}: `{text}` is not a number of seconds")),
    }
}

/// The latency tables' heading for `target`.
fn title(target: &Target) -> String {
    target.title("")
}

pub fn run(o: Options) -> Result<(), String> {
    let c = &o.common;
    let targets = target::chosen(c, o.mock, o.use_tansu, o.kafka)?;
    common::print_machine("latency");
    println!(
        "settings: 100-byte values, acks=all (idempotence on where the client has it), each \
         client's default linger (5 ms for all) and batch size, {PARTITIONS} partitions, \
         {} s measured after {} s of warm-up per run, consumer assigned from the latest offset",
        o.seconds, o.warmup
    );
    let rt = common::admin_runtime()?;
    let mut report = String::new();
    let mut failed = 0;
    for target in &targets {
        println!("\n## {}\n", title(target));
        let mut rows = Vec::new();
        for &rate in &o.rates {
            println!("-- {rate} records/s");
            for client in &c.clients {
                if !target.serves(client) {
                    println!("   {client}: not run on the mock cluster (issue 16)");
                    continue;
                }
                if let Some(why) = crate::external::left_out(client, target.broker()) {
                    println!("   {client}: left out ({why})");
                    continue;
                }
                let result = run_one(&o, &rt, target, rate, client).and_then(|out| {
                    println!("   {}", out.line);
                    Latencies::from_outcome(&out)
                });
                if let Err(e) = &result {
                    println!("   {client}: FAILED: {e}");
                    failed += 1;
                }
                rows.push(LatencyRow {
                    rate,
                    client: client.clone(),
                    result,
                });
            }
        }
        let text = table::render(&title(target), &rows);
        println!("\n{text}");
        report.push_str(&text);
        report.push('\n');
        if let Some(path) = &o.results {
            results::append(path, &table::records(target.id(), &rows))?;
        }
    }
    println!("\n# Summary\n\n{report}");
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} client run(s) failed")),
    }
}

fn run_one(
    o: &Options,
    rt: &tokio::runtime::Runtime,
    target: &Target,
    rate: u64,
    client: &str,
) -> Result<Outcome, String> {
    let topic = common::topic_name(&format!("latency-{rate}-{client}"));
    let (running, bootstrap) = target.start(
        rt,
        &topic,
        PARTITIONS,
        o.common.replication,
        o.common.log_dir.as_deref(),
    )?;
    let broker_cpu = || target.cpu_micros(&running);
    let ms = |s: f64| ((s * 1000.0).round() as u64).to_string();
    let args = vec![
        "--latency-worker".to_owned(),
        format!("client={client}"),
        format!("bootstrap={bootstrap}"),
        format!("topic={topic}"),
        format!("partitions={PARTITIONS}"),
        format!("rate={rate}"),
        format!("warmup_ms={}", ms(o.warmup)),
        format!("measure_ms={}", ms(o.seconds)),
    ];
    let result = common::with_broker_cpu(broker_cpu, || {
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
        let d = Options::parse(&[]).unwrap();
        assert_eq!(d.rates, [1_000, 10_000, 100_000]);
        assert_eq!((d.seconds, d.warmup), (10.0, 2.0));
        assert!(d.mock && d.use_tansu && !d.kafka && d.results.is_none());
        assert_eq!(d.common.clients, default_clients());
        assert_eq!(d.common.clients[..LATENCY_CLIENTS.len()], *LATENCY_CLIENTS);
        assert!(d
            .common
            .clients
            .ends_with(&["franz-go".into(), "java".into()]));
        let o = Options::parse(&args(&[
            "--rates",
            "500, 20000",
            "--seconds",
            "3.5",
            "--warmup",
            "0",
            "--no-mock",
            "--clients",
            "ferrokafka,rdkafka",
            "--results",
            "out.tsv",
        ]))
        .unwrap();
        assert_eq!(o.rates, [500, 20_000]);
        assert_eq!((o.seconds, o.warmup), (3.5, 0.0));
        assert!(!o.mock && o.use_tansu);
        assert_eq!(o.common.clients, ["ferrokafka", "rdkafka"]);
        assert_eq!(o.results, Some(PathBuf::from("out.tsv")));
        let q = Options::parse(&args(&["--quick"])).unwrap();
        assert_eq!((q.seconds, q.warmup), (2.0, 1.0));
        for bad in [
            &["--rates", "0"][..],
            &["--rates", "1k"],
            &["--rates", ","],
            &["--seconds", "-1"],
            &["--seconds", "NaN"],
            &["--only", "100b"],
            &["--repeat", "3"],
            &["--clients", "kafkajs"],
            &["--kafka", "--brokers", "h:1"],
            &["--batch-size", "1"],
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
