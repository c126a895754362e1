//! A service-style producer: one client, one producer, concurrent deliveries, a clean stop.
//!
//! ```text
//! cargo run --example producer -- 127.0.0.1:9092 [COUNT]
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo run --example producer
//! ```
//! Sends COUNT (default 10000) keyed records with a header to the topic `producer-example`,
//! creating it if needed, and prints how many were delivered. Ctrl-C stops early and still
//! closes the producer properly; a second Ctrl-C exits at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka::{Client, Compression, Error, KafkaCode, NewTopic, Producer, Record, Topic};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;

const TOPIC: &str = "producer-example";
/// How long `close` may spend delivering what is still buffered when we stop.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);
/// How many delivery errors the summary spells out.
const SHOWN_ERRORS: usize = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    let count: u64 = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("COUNT: `{n}` is not a number"))?,
        None => 10_000,
    };

    // One Client per process. Producers, consumers and admin calls built from it share its
    // connections and metadata, so a service should create it once at startup and pass
    // clones (cheap: an Arc) around.
    let client = Client::builder()
        .bootstrap_servers(&bootstrap)
        .client_id("ferrokafka-producer-example")
        .build()
        .await?;
    match client
        .admin()
        .create_topics(&[NewTopic::new(TOPIC, 3, 1)])
        .await
    {
        Err(e) if e.kafka_code() != Some(KafkaCode::TopicAlreadyExists) => return Err(e.into()),
        _ => {}
    }

    // Idempotence stays at its default (on, with acks=all): retries after a lost response
    // never write a record twice, and each partition keeps the order of `send` calls.
    // A short linger lets records that arrive together share a batch; lz4 compresses that
    // batch cheaply.
    let producer = Producer::builder(&client)
        .linger(Duration::from_millis(10))
        .compression(Compression::Lz4, None)
        .build()
        .await?;

    let started = Instant::now();
    let mut summary = Summary::default();
    // Every accepted record's DeliveryFuture. A FuturesUnordered yields them as they
    // complete, in whatever order the partitions are acknowledged.
    let mut pending = FuturesUnordered::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;

    // The name built once and shared by every record (a `&str` would be copied per record).
    let topic = Topic::from(TOPIC);
    for i in 0..count {
        let record = Record::new(&topic)
            // Records with the same key go to the same partition, in order.
            .key(format!("user-{}", i % 100))
            .value(format!("event {i}"))
            .header("source", "ferrokafka-producer-example");
        tokio::select! {
            biased;
            _ = &mut ctrl_c => {
                interrupted = true;
                break;
            }
            // `send().await` returns as soon as the record is buffered, not when it is
            // delivered. It waits only when the producer's buffer (buffer.memory) is full:
            // that wait is the backpressure that keeps a fast loop from outrunning the
            // brokers with unbounded memory. So: await `send`, collect the futures.
            sent = producer.send(record) => match sent {
                Ok(delivery) => pending.push(delivery),
                // Refused before buffering (too large, unknown topic after max.block.ms,
                // producer closed); nothing of it was sent.
                Err(e) => summary.failed(e),
            },
        }
        // Collect the deliveries that already finished, without waiting, so the set of
        // futures stays small however long the loop runs.
        while let Some(Some(outcome)) = pending.next().now_or_never() {
            summary.outcome(outcome);
        }
    }

    // Wait for the remaining deliveries, unless Ctrl-C comes first.
    while !interrupted {
        tokio::select! {
            biased;
            _ = &mut ctrl_c => interrupted = true,
            next = pending.next() => match next {
                Some(outcome) => summary.outcome(outcome),
                None => break,
            },
        }
    }

    // close() sends everything still buffered (no waiting for linger), waits for the answers
    // up to the deadline, then stops the producer. Records still undelivered at the deadline
    // fail with Error::Closed, so every DeliveryFuture below resolves; none can hang.
    if interrupted {
        eprintln!(
            "Ctrl-C: closing the producer (up to {} s; Ctrl-C again to exit now)",
            CLOSE_DEADLINE.as_secs()
        );
    }
    tokio::select! {
        closed = producer.close(CLOSE_DEADLINE) => {
            if let Err(e) = closed {
                eprintln!("close: {e}");
            }
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("second Ctrl-C: exiting without waiting for deliveries");
            std::process::exit(130);
        }
    }
    while let Some(outcome) = pending.next().await {
        summary.outcome(outcome);
    }
    client.close().await;

    summary.print(count, started.elapsed(), interrupted);
    if summary.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// What happened to the records, for the final report.
#[derive(Default)]
struct Summary {
    delivered: u64,
    failed: u64,
    per_partition: BTreeMap<i32, u64>,
    errors: Vec<Error>,
}

impl Summary {
    /// A resolved DeliveryFuture. `Ok` carries where the record was written. `Err` is final:
    /// the producer has already retried what was worth retrying, within
    /// delivery.timeout.ms. A non-retriable broker error, or Error::Closed from close(),
    /// means the record was not written; a timeout means it may or may not have been. Either
    /// way, the application decides now (log, dead-letter, alert), not the producer.
    fn outcome(&mut self, outcome: ferrokafka::Result<ferrokafka::RecordMetadata>) {
        match outcome {
            Ok(m) => {
                self.delivered += 1;
                *self.per_partition.entry(m.partition).or_default() += 1;
            }
            Err(e) => self.failed(e),
        }
    }

    fn failed(&mut self, e: Error) {
        self.failed += 1;
        if self.errors.len() < SHOWN_ERRORS {
            self.errors.push(e);
        }
    }

    fn print(&self, requested: u64, elapsed: Duration, interrupted: bool) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        println!(
            "{}: delivered {} of {requested} records in {:.2} s ({:.0} records/s), failed {}",
            TOPIC,
            self.delivered,
            secs,
            self.delivered as f64 / secs,
            self.failed
        );
        if interrupted {
            let unsent = requested - self.delivered - self.failed;
            println!("  interrupted: {unsent} records were never sent");
        }
        for (partition, n) in &self.per_partition {
            println!("  partition {partition}: {n} records");
        }
        for e in &self.errors {
            println!("  error: {e}");
        }
        if self.failed as usize > self.errors.len() {
            println!(
                "  ... and {} more errors",
                self.failed as usize - self.errors.len()
            );
        }
    }
}
