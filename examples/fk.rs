//! `fk`: a small kcat-like command-line tool built on ferrokafka.
//!
//! ```text
//! cargo run --example fk -- --help
//! printf 'k1:v1\nk2:v2\n' | cargo run --example fk -- produce -b 127.0.0.1:9092 -t events -K :
//! ```
//!
//! The file is laid out so the consumer side can slot in next to the producer side:
//! - `cli`: the usage text and a hand-written argument parser (no clap: the grammar is small,
//!   and every error names the argument at fault);
//! - `produce`: `fk produce`, stdin lines to records;
//! - `consume`: reserved, until the consumer exists;
//! - `main`: dispatch and exit codes.
//!
//! Exit codes: 0 success, 1 a record or the connection failed, 2 a usage error (bad argument,
//! bad `-X` property, or a subcommand that is not available yet).

use std::process::ExitCode;

/// Exit code for a run that failed (records not delivered, broker unreachable).
const EXIT_FAILED: u8 = 1;
/// Exit code for a usage error: bad arguments, bad properties, unavailable subcommand.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("fk: {message}\nRun `fk --help` for usage.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match command {
        cli::Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        cli::Command::Produce(args) => runtime().block_on(produce::run(args)),
        cli::Command::Consume => consume::run(),
    }
}

/// A multi-threaded runtime: stdin is read on its own thread, the producer runs on tokio's.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
}

/// The command line: usage text, what it parses into, and the parser.
mod cli {
    use ferrokafka::Compression;

    pub const USAGE: &str = "\
fk: produce to Kafka from the command line (a small kcat-like tool on ferrokafka)

Usage:
  fk produce -b BROKERS -t TOPIC [options] < input
  fk consume                     (coming with the consumer)
  fk --help

fk produce reads records from stdin, one per line (the newline is not part of the record;
every line is a record, an empty one too), sends them, and prints `delivered N, failed M`
to stderr, with the first errors.

Options for produce:
  -b BROKERS           bootstrap servers, host:port[,host:port...] (required)
  -t TOPIC             topic to write to (required)
  -K DELIM             split each line at the first DELIM: the key before it, the value
                       after it. A line without DELIM has a null key and is all value.
                       Without -K, every record has a null key.
  -p PARTITION         write every record to this partition (default: the partitioner
                       chooses, by key when there is one)
  --acks 0|1|all       acknowledgements to wait for (default all, with idempotence)
  --compression CODEC  none, gzip, snappy, lz4 or zstd (default none)
  -X KEY=VALUE         any producer or client property, e.g. -X linger.ms=50
                       -X client.id=me -X max.block.ms=10000. Repeatable. Options are
                       applied left to right, so a later one wins.
  -h, --help           this message

Exit status: 0 if every record was delivered, 1 if any failed or the brokers could not be
reached, 2 for a usage error.
";

    /// What the command line asks for.
    #[derive(Debug)]
    pub enum Command {
        Help,
        Produce(ProduceArgs),
        /// Reserved: exits with a "not yet" message.
        Consume,
    }

    /// `fk produce`'s arguments.
    #[derive(Debug)]
    pub struct ProduceArgs {
        pub topic: String,
        pub key_delimiter: Option<Vec<u8>>,
        pub partition: Option<i32>,
        /// Producer and client properties in command-line order, `-b`, `--acks`,
        /// `--compression` included (as `bootstrap.servers`, `acks`, `compression.type`),
        /// so the last setting of a key wins.
        pub properties: Vec<(String, String)>,
    }

    /// Parses everything after the program name. `Err` is a message that names the
    /// argument at fault.
    pub fn parse(args: &[String]) -> Result<Command, String> {
        let mut args = args.iter();
        match args.next().map(String::as_str) {
            None => Err("no command given: expected `produce` (or `--help`)".to_owned()),
            Some("-h" | "--help" | "help") => Ok(Command::Help),
            Some("produce") => parse_produce(args),
            Some("consume") => Ok(Command::Consume),
            Some(other) => Err(format!(
                "unknown command `{other}`: expected `produce` or `consume`"
            )),
        }
    }

    fn parse_produce(mut args: std::slice::Iter<'_, String>) -> Result<Command, String> {
        let mut brokers = false;
        let mut topic = None;
        let mut key_delimiter = None;
        let mut partition = None;
        let mut properties = Vec::new();
        while let Some(flag) = args.next() {
            let flag = flag.as_str();
            match flag {
                "-h" | "--help" => return Ok(Command::Help),
                "-b" => {
                    properties.push(("bootstrap.servers".to_owned(), value(&mut args, flag)?));
                    brokers = true;
                }
                "-t" => topic = Some(value(&mut args, flag)?),
                "-K" => {
                    let delim = value(&mut args, flag)?;
                    if delim.is_empty() {
                        return Err("-K: the key delimiter must not be empty".to_owned());
                    }
                    key_delimiter = Some(delim.into_bytes());
                }
                "-p" => {
                    let p = value(&mut args, flag)?;
                    match p.parse::<i32>() {
                        Ok(n) if n >= 0 => partition = Some(n),
                        _ => {
                            return Err(format!("-p: `{p}` is not a partition number (0 or more)"))
                        }
                    }
                }
                "--acks" => {
                    let acks = value(&mut args, flag)?;
                    if !matches!(acks.as_str(), "0" | "1" | "all" | "-1") {
                        return Err(format!("--acks: `{acks}` is not one of 0, 1, all"));
                    }
                    properties.push(("acks".to_owned(), acks));
                }
                "--compression" => {
                    let codec = value(&mut args, flag)?;
                    if Compression::from_name(&codec).is_none() {
                        return Err(format!(
                            "--compression: `{codec}` is not one of none, gzip, snappy, lz4, zstd"
                        ));
                    }
                    properties.push(("compression.type".to_owned(), codec));
                }
                "-X" => {
                    let kv = value(&mut args, flag)?;
                    match kv.split_once('=') {
                        Some((k, v)) if !k.trim().is_empty() => {
                            properties.push((k.trim().to_owned(), v.to_owned()))
                        }
                        _ => return Err(format!("-X: `{kv}` is not KEY=VALUE")),
                    }
                }
                _ => return Err(format!("produce: unknown option `{flag}`")),
            }
        }
        if !brokers {
            return Err("produce: missing -b BROKERS (the bootstrap servers)".to_owned());
        }
        let topic = topic.ok_or("produce: missing -t TOPIC")?;
        if topic.is_empty() {
            return Err("-t: the topic name must not be empty".to_owned());
        }
        Ok(Command::Produce(ProduceArgs {
            topic,
            key_delimiter,
            partition,
            properties,
        }))
    }

    /// The value that must follow `flag`.
    fn value(args: &mut std::slice::Iter<'_, String>, flag: &str) -> Result<String, String> {
        args.next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    }
}

/// `fk produce`: stdin lines to records.
mod produce {
    use std::io::BufRead;
    use std::process::ExitCode;
    use std::time::Duration;

    use ferrokafka::{Error, ProducerBuilder, Record};
    use futures::stream::{FuturesUnordered, StreamExt};
    use tokio::sync::mpsc;

    use super::cli::ProduceArgs;
    use super::{EXIT_FAILED, EXIT_USAGE};

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
        let producer = ProducerBuilder::from_properties(
            std::iter::once(("client.id", "fk")).chain(
                args.properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
        )
        .build()
        .await;
        let producer = match producer {
            Ok(p) => p,
            // A bad -X key or value: the message names the property.
            Err(e @ Error::Config(_)) => {
                eprintln!("fk: {e}\nRun `fk --help` for usage.");
                return ExitCode::from(EXIT_USAGE);
            }
            Err(e) => {
                eprintln!("fk: cannot start the producer: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
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
}

/// `fk consume`: reserved until the consumer exists.
mod consume {
    use std::process::ExitCode;

    use super::EXIT_USAGE;

    pub fn run() -> ExitCode {
        eprintln!("fk: consume is not available yet (coming with the consumer)");
        ExitCode::from(EXIT_USAGE)
    }
}
