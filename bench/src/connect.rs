//! Client construction the produce and consume workers share (and the consume bench's
//! librdkafka filler): the runtime, the ferrokafka and rskafka clients, extra properties from
//! the environment, and librdkafka's delivery counting and sending.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::ClientBuilder;

use crate::kafka::{self, SaslSsl};

/// Environment variable with extra librdkafka properties (`key=value,...`), producer and
/// consumer alike.
pub const RDKAFKA_EXTRA_ENV: &str = "FERROKAFKA_BENCH_RDKAFKA";

/// Environment variable with extra ferrokafka producer properties (`key=value,...`), read by
/// the produce and latency workers.
pub const FERRO_PRODUCER_ENV: &str = "FERROKAFKA_BENCH_PRODUCER";

/// The `key=value,key=value` properties in the environment variable `var`, for experiments:
/// they add to or override a client's configuration.
pub fn extra_properties(var: &str) -> Vec<(String, String)> {
    let Ok(extra) = std::env::var(var) else {
        return Vec::new();
    };
    extra
        .split(',')
        .filter(|kv| !kv.trim().is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A multi-threaded tokio runtime with one worker per core, as `#[tokio::main]` builds.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// The ferrokafka client of a worker.
pub async fn ferrokafka_client(bootstrap: &str) -> Result<ferrokafka::Client, String> {
    ferrokafka_secure_client(bootstrap, None).await
}

/// The ferrokafka client of a worker, over SASL_SSL when `sasl_ssl` is given.
pub async fn ferrokafka_secure_client(
    bootstrap: &str,
    sasl_ssl: Option<&SaslSsl>,
) -> Result<ferrokafka::Client, String> {
    let mut builder = ferrokafka::Client::builder()
        .bootstrap_servers(bootstrap)
        .client_id("ferrokafka-bench");
    if let Some(s) = sasl_ssl {
        builder = builder
            .security_protocol(ferrokafka::SecurityProtocol::SaslSsl)
            .sasl(
                ferrokafka::SaslMechanism::ScramSha512,
                kafka::USER,
                kafka::PASSWORD,
            )
            .ssl_ca_location(&s.ca);
    }
    builder.build().await.map_err(|e| format!("client: {e}"))
}

/// librdkafka's settings for SASL_SSL as the `--kafka` node's SCRAM user.
pub fn rdkafka_sasl_ssl(cfg: &mut rdkafka::config::ClientConfig, s: &SaslSsl) {
    cfg.set("security.protocol", "SASL_SSL")
        .set("sasl.mechanisms", "SCRAM-SHA-512")
        .set("sasl.username", kafka::USER)
        .set("sasl.password", kafka::PASSWORD)
        .set("ssl.ca.location", s.ca.display().to_string());
}

/// An rskafka client for each of `topic`'s partitions `0..partitions`.
pub async fn rskafka_partitions(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Result<Vec<Arc<PartitionClient>>, String> {
    let client = ClientBuilder::new(bootstrap.split(',').map(str::to_string).collect())
        .client_id("rskafka-bench")
        .build()
        .await
        .map_err(|e| format!("rskafka client: {e}"))?;
    let mut clients = Vec::new();
    for p in 0..partitions {
        let partition = client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await
            .map_err(|e| format!("rskafka partition client {p}: {e}"))?;
        clients.push(Arc::new(partition));
    }
    Ok(clients)
}

/// A librdkafka producer context counting delivery reports.
#[derive(Default)]
pub struct Counting {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

impl Counting {
    /// Counts one record's outcome (`error`: why it failed), keeping the first error. Every
    /// client's delivery callback or handler calls this.
    pub fn outcome(&self, error: Option<&dyn std::fmt::Display>) {
        match error {
            None => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Some(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.outcome(result.as_ref().err().map(|(e, _)| e as _));
    }
}

/// Sends `record` with librdkafka; while its queue is full, serves delivery reports (which
/// frees room) and tries again.
pub fn send(
    producer: &BaseProducer<Counting>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}
