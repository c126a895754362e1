//! The worker side: one client producing one case, measuring itself, printing `RESULT`.

#[cfg(feature = "peers")]
pub mod confluent;
mod ferro;
#[cfg(feature = "peers")]
mod krafka;
mod rdk;
mod rsk;

use std::time::Duration;

use crate::cases::{self, Case, CASES};
use crate::common::{self, Measured, WorkerArgs};
use crate::kafka::SaslSsl;
use crate::measure;
use crate::payload::Payload;

/// The clients, in table order (rdkafka first: the others are compared with it). franz-go and
/// java are external programs (`external.rs`), for consume too.
#[cfg(not(feature = "peers"))]
pub const CLIENTS: &[&str] = &["rdkafka", "ferrokafka", "rskafka", "franz-go", "java"];
/// The clients, in table order (rdkafka first: the others are compared with it); feature
/// `peers` adds krafka and Confluent's confluent-kafka.
#[cfg(feature = "peers")]
pub const CLIENTS: &[&str] = &[
    "rdkafka",
    "ferrokafka",
    "rskafka",
    "krafka",
    "confluent-kafka",
    "franz-go",
    "java",
];

/// Whether `client` is run against librdkafka's mock cluster: krafka and confluent-kafka are
/// not (issue 16 reports that neither talks to it), so the produce bench lists them as not run
/// there rather than as failures.
pub fn talks_to_mock(client: &str) -> bool {
    !matches!(client, "krafka" | "confluent-kafka")
}

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
    /// SASL_SSL settings for a `tls` case; `None`: plaintext.
    pub sasl_ssl: Option<SaslSsl>,
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

/// `--worker client=.. case=.. bootstrap=.. topic=.. records=.. [batch_size=..] [ca=PATH]`
/// (`ca`: SASL_SSL as the `--kafka` node's SCRAM user, trusting that CA file).
pub fn worker_main(args: &[String]) -> Result<(), String> {
    let kv = WorkerArgs::parse(args)?;
    let client = kv.get("client")?;
    let case = common::find(CASES, kv.get("case")?).ok_or("unknown case")?;
    let records: u64 = kv.parse_value("records")?;
    let job = Job {
        case,
        batch_size: kv.parse_or("batch_size", cases::BATCH_SIZE)?,
        bootstrap: kv.get("bootstrap")?.to_string(),
        topic: kv.get("topic")?.to_string(),
        records,
        payload: Payload::new(case.size),
        sasl_ssl: kv.get("ca").ok().map(|ca| SaslSsl { ca: ca.into() }),
    };
    if job.sasl_ssl.is_some() && !cases::supports(case, client) {
        return Err(format!(
            "{client} cannot run {} (no TLS in this build)",
            case.name
        ));
    }
    let cpu_start = measure::cpu_micros();
    let produced = match client {
        "ferrokafka" => ferro::run(&job),
        "rdkafka" => rdk::run(&job),
        "rskafka" => rsk::run(&job),
        #[cfg(feature = "peers")]
        "krafka" => krafka::run(&job),
        #[cfg(feature = "peers")]
        "confluent-kafka" => confluent::run(&job),
        other => return Err(format!("unknown client `{other}`")),
    }?;
    let bytes = produced.ok * (case.size as u64 + if case.keyed { 9 } else { 0 });
    Measured::now(produced.ok, produced.failed, bytes, produced.elapsed)
        .print_result(client, case.name, cpu_start);
    if produced.failed > 0 || produced.ok != records {
        return Err(format!(
            "{client}: {} of {records} records acknowledged, {} failed",
            produced.ok, produced.failed
        ));
    }
    Ok(())
}
