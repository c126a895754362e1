//! `fk produce`: stdin lines to records, with the key, headers, partition and timestamp the
//! command line gives.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use ferrokafka::{Error, ProducerBuilder, Record};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use crate::cli::ProduceArgs;
use crate::{started, with_client_id, EXIT_FAILED};

/// How many failures the summary spells out.
const SHOWN_ERRORS: usize = 5;
/// Lines read ahead of the producer. `send().await` already applies the producer's
/// backpressure (buffer.memory); this only decouples the blocking stdin thread.
const READ_AHEAD: usize = 1024;
/// How long `close` may take. Every delivery has been awaited by then, so it only
/// stops the producer's background task.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivered and failed counts, and the first few errors (with their line numbers).
#[derive(Default)]
struct Tally {
    delivered: u64,
    failed: u64,
    errors: Vec<String>,
}

impl Tally {
    fn record(&mut self, line: u64, outcome: Result<(), Error>) {
        match outcome {
            Ok(()) => self.delivered += 1,
            Err(e) => {
                self.failed += 1;
                if self.errors.len() < SHOWN_ERRORS {
                    self.errors.push(format!("line {line}: {e}"));
                }
            }
        }
    }
}

pub async fn run(args: ProduceArgs) -> ExitCode {
    let built = ProducerBuilder::from_properties(with_client_id(&args.properties))
        .build()
        .await;
    let producer = match started(built, "producer") {
        Ok(p) => p,
        Err(code) => return code,
    };

    let mut lines = read_stdin_lines();
    let mut tally = Tally::default();
    // Deliveries in flight, each tagged with its line number for error messages.
    let mut pending = FuturesUnordered::new();
    let mut line_no = 0u64;
    // Why reading stopped early: stdin failed, or `send` failed for a reason that is not
    // about one record (unknown topic, unreachable leader), which every later line would
    // hit too.
    let mut stopped: Option<String> = None;
    loop {
        tokio::select! {
            // Reap finished deliveries while reading, so the in-flight set stays small.
            Some((n, outcome)) = pending.next(), if !pending.is_empty() => {
                tally.record(n, outcome);
            }
            line = lines.recv() => {
                let line = match line {
                    Some(Ok(line)) => line,
                    Some(Err(e)) => {
                        stopped = Some(format!("reading stdin: {e}"));
                        break;
                    }
                    None => break,
                };
                line_no += 1;
                let record = to_record(&args, line);
                // `send` waits while the producer's buffer is full: that is the
                // backpressure that keeps a fast stdin from using unbounded memory.
                match producer.send(record).await {
                    Ok(delivery) => {
                        let n = line_no;
                        pending.push(async move { (n, delivery.await.map(|_| ())) });
                    }
                    // Something wrong with this one record (too large, no such
                    // partition): count it and go on.
                    Err(e @ Error::InvalidInput(_)) => tally.record(line_no, Err(e)),
                    Err(e) => {
                        stopped = Some(format!("line {line_no} could not be sent: {e}"));
                        tally.record(line_no, Err(e));
                        break;
                    }
                }
            }
        }
    }
    while let Some((n, outcome)) = pending.next().await {
        tally.record(n, outcome);
    }
    if let Err(e) = producer.close(CLOSE_TIMEOUT).await {
        eprintln!("fk: closing the producer: {e}");
    }
    producer.client().close().await;

    eprintln!("delivered {}, failed {}", tally.delivered, tally.failed);
    for e in &tally.errors {
        eprintln!("  {e}");
    }
    if tally.failed as usize > tally.errors.len() {
        eprintln!(
            "  ... and {} more",
            tally.failed as usize - tally.errors.len()
        );
    }
    if let Some(reason) = &stopped {
        eprintln!("fk: stopped reading input: {reason}");
    }
    if tally.failed == 0 && stopped.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// One record from one input line, split at the key delimiter when there is one.
fn to_record(args: &ProduceArgs, line: Vec<u8>) -> Record {
    let mut record = Record::new(&args.topic);
    if let Some(p) = args.partition {
        record = record.partition(p);
    }
    if let Some(ms) = args.timestamp {
        record = record.timestamp(ms);
    }
    for (name, value) in &args.headers {
        record = record.header(name.as_str(), value.clone());
    }
    let split = args
        .key_delimiter
        .as_deref()
        .and_then(|delim| find(&line, delim).map(|at| (at, delim.len())));
    match split {
        Some((at, len)) => record
            .key(line[..at].to_vec())
            .value(line[at + len..].to_vec()),
        // No -K, or no delimiter in this line: a null key and the whole line as value.
        None => record.value(line),
    }
}

/// The first position of `needle` in `haystack` (bytes: input need not be UTF-8).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads stdin on a plain thread (blocking reads have no place on the runtime) and hands
/// the lines, without their `\n`, to the async side. The channel closes at end of input,
/// after a read error if there is one.
fn read_stdin_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        break; // the producer side stopped
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}
