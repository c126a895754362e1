//! The worker side: one client producing one case, measuring itself, printing `RESULT`.

mod ferro;
mod rdk;
mod rsk;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cases::{self, Case};
use crate::measure;
use crate::payload::Payload;

/// The clients, in table order (rdkafka first: the others are compared with it).
pub const CLIENTS: &[&str] = &["rdkafka", "ferrokafka", "rskafka"];

/// What one worker run is asked to do.
#[derive(Debug, Clone)]
pub struct Job {
    pub case: &'static Case,
    pub bootstrap: String,
    pub topic: String,
    pub records: u64,
    pub payload: Payload,
    /// `batch.size` in bytes.
    pub batch_size: usize,
}

/// What a client reports back after every record is acknowledged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Produced {
    /// Records acknowledged without error.
    pub ok: u64,
    /// Records that failed (the run is then reported as failed).
    pub failed: u64,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
}

/// A worker's `KEY=VALUE` arguments (produce and consume workers alike).
pub(crate) fn worker_args(args: &[String]) -> Result<BTreeMap<&str, &str>, String> {
    args.iter()
        .map(|arg| {
            arg.split_once('=')
                .ok_or_else(|| format!("worker argument `{arg}` is not KEY=VALUE"))
        })
        .collect()
}

/// `--worker client=.. case=.. bootstrap=.. topic=.. records=.. [batch_size=..]`
pub fn worker_main(args: &[String]) -> Result<(), String> {
    let kv = worker_args(args)?;
    let get = |k: &str| {
        kv.get(k)
            .copied()
            .ok_or_else(|| format!("worker needs {k}=.."))
    };
    let client = get("client")?;
    let case = cases::find(get("case")?).ok_or("unknown case")?;
    let records: u64 = get("records")?
        .parse()
        .map_err(|e| format!("records: {e}"))?;
    let batch_size = match kv.get("batch_size") {
        Some(v) => v.parse().map_err(|e| format!("batch_size: {e}"))?,
        None => cases::BATCH_SIZE,
    };
    let job = Job {
        case,
        bootstrap: get("bootstrap")?.to_string(),
        topic: get("topic")?.to_string(),
        records,
        payload: Payload::new(case.size),
        batch_size,
    };
    let (user0, sys0) = measure::cpu_micros();
    let produced = match client {
        "ferrokafka" => ferro::run(&job),
        "rdkafka" => rdk::run(&job),
        "rskafka" => rsk::run(&job),
        other => return Err(format!("unknown client `{other}`")),
    }?;
    let (user1, sys1) = measure::cpu_micros();
    let cpu = (user1 - user0) + (sys1 - sys0);
    let bytes = produced.ok * (case.size as u64 + if case.keyed { 9 } else { 0 });
    println!(
        "RESULT client={client} case={} records={} failed={} bytes={bytes} secs={:.4} \
         cpu_us_per_record={:.4} user_s={:.3} sys_s={:.3} peak_rss_mb={:.1}",
        case.name,
        produced.ok,
        produced.failed,
        produced.elapsed.as_secs_f64(),
        cpu as f64 / produced.ok.max(1) as f64,
        (user1 - user0) as f64 / 1e6,
        (sys1 - sys0) as f64 / 1e6,
        measure::peak_rss_kib() as f64 / 1024.0,
    );
    if produced.failed > 0 || produced.ok != records {
        return Err(format!(
            "{client}: {} of {records} records acknowledged, {} failed",
            produced.ok, produced.failed
        ));
    }
    Ok(())
}

/// A multi-threaded tokio runtime with one worker per core, as `#[tokio::main]` builds.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}
