//! `fk`: a small kcat-like command-line tool built on ferrokafka.
//!
//! ```text
//! cargo run --example fk -- --help
//! printf 'k1:v1\nk2:v2\n' | cargo run --example fk -- produce -b 127.0.0.1:9092 -t events -K :
//! cargo run --example fk -- consume -b 127.0.0.1:9092 -t events -o beginning -K :
//! ```
//!
//! The file has four parts:
//! - `cli`: the usage text and a hand-written argument parser (no clap: the grammar is small,
//!   and every error names the argument at fault);
//! - `produce`: `fk produce`, stdin lines to records;
//! - `consume`: `fk consume`, records to stdout lines, alone or in a consumer group;
//! - `main`: dispatch and exit codes.
//!
//! Exit codes: 0 success, 1 a record, the connection or the consumer failed, 2 a usage error
//! (bad argument or bad `-X` property).

use std::process::ExitCode;

/// Exit code for a run that failed (records not delivered, broker unreachable).
const EXIT_FAILED: u8 = 1;
/// Exit code for a usage error: bad arguments, bad properties.
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
        cli::Command::Consume(args) => runtime().block_on(consume::run(args)),
    }
}

/// A multi-threaded runtime: stdin is read on its own thread, the client runs on tokio's.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
}

/// `client.id=fk`, then the properties from the command line (so `-X client.id=...` wins).
fn with_client_id(properties: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> + '_ {
    std::iter::once(("client.id", "fk"))
        .chain(properties.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The producer or consumer that `build()` gave, or, after saying why there is none, the
/// exit code: a bad `-X` key or value is a usage error, and the message names the property.
fn started<T>(built: Result<T, ferrokafka::Error>, what: &str) -> Result<T, ExitCode> {
    built.map_err(|e| match e {
        ferrokafka::Error::Config(_) => {
            eprintln!("fk: {e}\nRun `fk --help` for usage.");
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            eprintln!("fk: cannot start the {what}: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    })
}

/// The command line: usage text, what it parses into, and the parser.
mod cli {
    use ferrokafka::Compression;

    pub const USAGE: &str = "\
fk: produce to and consume from Kafka (a small kcat-like tool on ferrokafka)

Usage:
  fk produce -b BROKERS -t TOPIC [options] < input
  fk consume -b BROKERS -t TOPIC [options] > output
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
  -F FILE              properties from a Java properties file (key=value or key: value
                       lines, # and ! comments), e.g. the client.properties of Kafka's own
                       tools; applied where it stands among the -X options.
  -h, --help           this message

fk consume prints records to stdout, one per line, in order within each partition, until
it has printed COUNT records (-c) or gets Ctrl-C.

Options for consume:
  -b BROKERS           bootstrap servers, host:port[,host:port...] (required)
  -t TOPIC             topic to read (required)
  -g GROUP             read as a member of consumer group GROUP: the group shares the
                       partitions among its members, and the offsets of the printed records
                       are committed, so the next run with the same GROUP goes on after
                       them. Without -g, fk reads every partition and commits nothing.
  -o beginning|end|OFFSET
                       where to start: the oldest record, after the newest (the default:
                       only new records), or offset OFFSET of every partition. With -g, only
                       for partitions the group has no committed offset for, and OFFSET is
                       not allowed.
  -c COUNT             exit after COUNT records (default: run until Ctrl-C)
  -K DELIM             print `KEY DELIM VALUE` (without spaces), not just the value. A null
                       key or value prints as nothing.
  -X KEY=VALUE         any consumer or client property, e.g. -X fetch.max.wait.ms=100
                       -X isolation.level=read_committed. Repeatable; a later one wins.
  -F FILE              properties from a Java properties file, as for produce.
  -h, --help           this message

Exit status: 0 if every record was delivered (produce) or COUNT records or Ctrl-C ended
the run (consume), 1 if a record failed, the brokers could not be reached or consuming
failed, 2 for a usage error.
";

    /// What the command line asks for.
    #[derive(Debug)]
    pub enum Command {
        Help,
        Produce(ProduceArgs),
        Consume(ConsumeArgs),
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

    /// `fk consume`'s arguments.
    #[derive(Debug)]
    pub struct ConsumeArgs {
        pub topic: String,
        /// `-g`: subscribe in this group (also in `properties`, as `group.id`).
        pub group: Option<String>,
        /// `-o`. With a group it has become `auto.offset.reset` in `properties`.
        pub start: Start,
        /// `-c`: at least 1.
        pub count: Option<u64>,
        pub key_delimiter: Option<Vec<u8>>,
        /// Consumer and client properties in command-line order, `-b`, `-g` and `-o` (with
        /// `-g`) included, so the last setting of a key wins.
        pub properties: Vec<(String, String)>,
    }

    /// Where `fk consume` starts reading.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Start {
        Beginning,
        End,
        Offset(i64),
    }

    /// Parses everything after the program name. `Err` is a message that names the
    /// argument at fault.
    pub fn parse(args: &[String]) -> Result<Command, String> {
        let mut args = args.iter();
        match args.next().map(String::as_str) {
            None => {
                Err("no command given: expected `produce` or `consume` (or `--help`)".to_owned())
            }
            Some("-h" | "--help" | "help") => Ok(Command::Help),
            Some("produce") => parse_produce(args),
            Some("consume") => parse_consume(args),
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
                "-K" => key_delimiter = Some(delimiter(value(&mut args, flag)?)?),
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
                "-X" => properties.push(property(value(&mut args, flag)?)?),
                "-F" => properties.extend(properties_file(&value(&mut args, flag)?)?),
                _ => return Err(format!("produce: unknown option `{flag}`")),
            }
        }
        if !brokers {
            return Err("produce: missing -b BROKERS (the bootstrap servers)".to_owned());
        }
        Ok(Command::Produce(ProduceArgs {
            topic: topic_name("produce", topic)?,
            key_delimiter,
            partition,
            properties,
        }))
    }

    fn parse_consume(mut args: std::slice::Iter<'_, String>) -> Result<Command, String> {
        let mut brokers = false;
        let mut topic = None;
        let mut group = None;
        let mut start = Start::End;
        let mut count = None;
        let mut key_delimiter = None;
        // `-o` becomes `auto.offset.reset` where it stands among the -X options, so whichever
        // of the two comes last wins; its slot is filled in once we know whether -g is given.
        let mut reset_slot = None;
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
                "-g" => {
                    let g = value(&mut args, flag)?;
                    if g.trim().is_empty() {
                        return Err("-g: the group name must not be empty".to_owned());
                    }
                    properties.push(("group.id".to_owned(), g.clone()));
                    group = Some(g);
                }
                "-o" => {
                    let o = value(&mut args, flag)?;
                    start = match o.as_str() {
                        "beginning" => Start::Beginning,
                        "end" => Start::End,
                        _ => match o.parse::<i64>() {
                            Ok(n) if n >= 0 => Start::Offset(n),
                            _ => {
                                return Err(format!(
                                    "-o: `{o}` is not beginning, end or an offset (0 or more)"
                                ))
                            }
                        },
                    };
                    reset_slot = Some(properties.len());
                }
                "-c" => {
                    let c = value(&mut args, flag)?;
                    match c.parse::<u64>() {
                        Ok(n) if n > 0 => count = Some(n),
                        _ => return Err(format!("-c: `{c}` is not a record count (1 or more)")),
                    }
                }
                "-K" => key_delimiter = Some(delimiter(value(&mut args, flag)?)?),
                "-X" => properties.push(property(value(&mut args, flag)?)?),
                "-F" => properties.extend(properties_file(&value(&mut args, flag)?)?),
                _ => return Err(format!("consume: unknown option `{flag}`")),
            }
        }
        if !brokers {
            return Err("consume: missing -b BROKERS (the bootstrap servers)".to_owned());
        }
        let topic = topic_name("consume", topic)?;
        if group.is_some() {
            // In a group the committed offset decides where reading starts; -o only covers
            // partitions without one, which is what auto.offset.reset means.
            let reset = match start {
                Start::Beginning => "earliest",
                Start::End => "latest",
                Start::Offset(n) => {
                    return Err(format!(
                        "-o: offset {n} cannot be combined with -g (the group's committed \
                         offsets decide where it starts); use -o beginning or -o end"
                    ))
                }
            };
            let at = reset_slot.unwrap_or(0);
            properties.insert(at, ("auto.offset.reset".to_owned(), reset.to_owned()));
        }
        Ok(Command::Consume(ConsumeArgs {
            topic,
            group,
            start,
            count,
            key_delimiter,
            properties,
        }))
    }

    /// The value that must follow `flag`.
    fn value(args: &mut std::slice::Iter<'_, String>, flag: &str) -> Result<String, String> {
        args.next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    }

    /// `-t`'s value, which both commands require.
    fn topic_name(command: &str, topic: Option<String>) -> Result<String, String> {
        match topic {
            None => Err(format!("{command}: missing -t TOPIC")),
            Some(t) if t.is_empty() => Err("-t: the topic name must not be empty".to_owned()),
            Some(t) => Ok(t),
        }
    }

    /// `-K`'s value.
    fn delimiter(delim: String) -> Result<Vec<u8>, String> {
        if delim.is_empty() {
            return Err("-K: the key delimiter must not be empty".to_owned());
        }
        Ok(delim.into_bytes())
    }

    /// `-F`'s file: the Java `.properties` format as Kafka's tools read it — `key=value`,
    /// `key: value` or `key value` lines, `#` and `!` comment lines, a trailing `\` joining
    /// the next line, and `\`-escapes (`\=`, `\:`, `\n`, `\t`, `\\`). Unicode escapes
    /// (`\uXXXX`) are read too. Keys are checked by the builder, which names them.
    fn properties_file(path: &str) -> Result<Vec<(String, String)>, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("-F: cannot read {path}: {e}"))?;
        parse_properties(&text).map_err(|e| format!("-F {path}: {e}"))
    }

    pub(crate) fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut lines = text.lines().enumerate();
        while let Some((n, first)) = lines.next() {
            let mut line = first.trim_start().to_owned();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            // An odd number of trailing backslashes continues the line.
            while line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1 {
                line.pop();
                match lines.next() {
                    Some((_, next)) => line.push_str(next.trim_start()),
                    None => break,
                }
            }
            let (key, value) = split_property(&line);
            let key = unescape(&key).map_err(|e| format!("line {}: {e}", n + 1))?;
            let value = unescape(&value).map_err(|e| format!("line {}: {e}", n + 1))?;
            if key.is_empty() {
                return Err(format!("line {}: no key", n + 1));
            }
            out.push((key, value));
        }
        Ok(out)
    }

    /// Splits at the first unescaped `=`, `:` or whitespace (with the whitespace around it).
    fn split_property(line: &str) -> (String, String) {
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '=' | ':' => return (line[..i].to_owned(), line[i + 1..].trim_start().to_owned()),
                c if c.is_whitespace() => {
                    let rest = line[i..].trim_start();
                    let rest = rest
                        .strip_prefix(['=', ':'])
                        .map(str::trim_start)
                        .unwrap_or(rest);
                    return (line[..i].to_owned(), rest.to_owned());
                }
                _ => {}
            }
        }
        (line.to_owned(), String::new())
    }

    fn unescape(s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('f') => out.push('\u{c}'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("bad unicode escape \\u{hex}"))?;
                    out.push(code);
                }
                Some(other) => out.push(other),
                None => {}
            }
        }
        Ok(out)
    }

    /// `-X`'s value. The key itself is checked by the builder, which names it.
    fn property(kv: String) -> Result<(String, String), String> {
        match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(format!("-X: `{kv}` is not KEY=VALUE")),
        }
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
    use super::{started, with_client_id, EXIT_FAILED};

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

/// `fk consume`: records to stdout lines.
mod consume {
    use std::io::{self, Write};
    use std::process::ExitCode;

    use ferrokafka::{Consumer, ConsumerBuilder, ConsumerRecord, SeekTo, TopicPartition};

    use super::cli::{ConsumeArgs, Start};
    use super::{started, with_client_id, EXIT_FAILED};

    /// The most records taken from the consumer at once: one stdout flush per batch instead
    /// of per record.
    const BATCH: usize = 500;
    /// Exit code after a second Ctrl-C during `close` (128 + SIGINT, as shells report it).
    const EXIT_INTERRUPTED: u8 = 130;

    pub async fn run(args: ConsumeArgs) -> ExitCode {
        let built = ConsumerBuilder::from_properties(with_client_id(&args.properties))
            .build()
            .await;
        let consumer = match started(built, "consumer") {
            Ok(c) => c,
            Err(code) => return code,
        };

        // Ctrl-C is the normal way to stop without -c, so it ends the run successfully. Only
        // an await inside `print` can be cut short by it, and records are written out in the
        // same poll that takes them from the consumer, so nothing handed out goes unprinted.
        let printed = tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => Ok(()),
            printed = print(&consumer, &args) => printed,
        };
        // With -g, close() commits the offsets after the last printed record (auto-commit is
        // on unless -X turned it off) and leaves the group, so the next run with the same
        // group starts right after them, and another member takes over the partitions now
        // rather than after the session timeout.
        tokio::select! {
            closed = consumer.close() => {
                if let Err(e) = closed {
                    eprintln!("fk: closing the consumer: {e}");
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("fk: second Ctrl-C: exiting without closing the consumer");
                return ExitCode::from(EXIT_INTERRUPTED);
            }
        }
        consumer.client().close().await;
        match printed {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("fk: {message}");
                ExitCode::from(EXIT_FAILED)
            }
        }
    }

    /// Starts reading and prints records. Returns after -c records, when stdout's reader has
    /// gone away, or on an error; otherwise runs until Ctrl-C drops it.
    async fn print(consumer: &Consumer, args: &ConsumeArgs) -> Result<(), String> {
        if args.group.is_some() {
            consumer
                .subscribe(&[&args.topic])
                .await
                .map_err(|e| format!("cannot subscribe to {}: {e}", args.topic))?;
        } else {
            let partitions = partitions(consumer, &args.topic).await?;
            consumer
                .assign(&partitions)
                .await
                .map_err(|e| format!("cannot assign {}: {e}", args.topic))?;
            // An explicit seek rather than auto.offset.reset: it also overrides a committed
            // offset should someone pass -X group.id without -g.
            let to = match args.start {
                Start::Beginning => SeekTo::Beginning,
                Start::End => SeekTo::End,
                Start::Offset(n) => SeekTo::Offset(n),
            };
            for tp in &partitions {
                consumer.seek(tp, to).map_err(|e| format!("{tp}: {e}"))?;
            }
        }

        let mut out = io::BufWriter::new(io::stdout().lock());
        let mut left = args.count;
        while left != Some(0) {
            // Never take more than -c still wants: with -g, whatever the consumer hands out
            // counts as consumed and is committed at close.
            let max = left.map_or(BATCH, |n| n.min(BATCH as u64) as usize);
            let batch = consumer
                .recv_batch(max)
                .await
                .map_err(|e| format!("consuming {}: {e}", args.topic))?;
            let written = batch
                .iter()
                .try_for_each(|r| write_line(&mut out, r, args.key_delimiter.as_deref()))
                .and_then(|()| out.flush());
            match written {
                Ok(()) => {}
                // The reader went away (`fk consume ... | head`): stop quietly, as `cat` does.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(format!("writing to stdout: {e}")),
            }
            if let Some(n) = &mut left {
                *n -= batch.len() as u64;
            }
        }
        Ok(())
    }

    /// Every partition of `topic`, from fresh metadata.
    async fn partitions(consumer: &Consumer, topic: &str) -> Result<Vec<TopicPartition>, String> {
        let metadata = consumer
            .client()
            .metadata(&[topic])
            .await
            .map_err(|e| format!("cannot read the metadata of {topic}: {e}"))?;
        let t = metadata
            .topic(topic)
            .ok_or_else(|| format!("topic {topic} does not exist"))?;
        if let Some(code) = t.error {
            return Err(format!("topic {topic}: {code}"));
        }
        if t.partitions.is_empty() {
            return Err(format!("topic {topic} has no partitions"));
        }
        Ok(t.partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.id))
            .collect())
    }

    /// `value\n`, or `key DELIM value\n` with -K; a null key or value is written as nothing.
    /// Bytes go out as they are: records need not be UTF-8.
    fn write_line(
        out: &mut impl Write,
        r: &ConsumerRecord,
        delim: Option<&[u8]>,
    ) -> io::Result<()> {
        if let Some(delim) = delim {
            out.write_all(r.key.as_deref().unwrap_or_default())?;
            out.write_all(delim)?;
        }
        out.write_all(r.value.as_deref().unwrap_or_default())?;
        out.write_all(b"\n")
    }
}
