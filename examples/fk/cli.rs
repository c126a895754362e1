//! The command line: what it parses into, the options every command shares (`-b`, `-X`,
//! `-F`), and the parsers of `produce` and `consume`. The admin commands parse their own
//! options (`topics.rs`, `groups.rs`, `metadata.rs`) with the helpers here.
//!
//! Every `Err` is a message that names the argument at fault; `main` prints it as a usage
//! error (exit code 2).

use ferrokafka::Compression;

use crate::format::{Format, Output};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Help,
    Produce(ProduceArgs),
    Consume(ConsumeArgs),
    Topics(crate::topics::TopicsArgs),
    Groups(crate::groups::GroupsArgs),
    Metadata(crate::metadata::MetadataArgs),
}

/// `fk produce`'s arguments.
#[derive(Debug)]
pub struct ProduceArgs {
    pub topic: String,
    pub key_delimiter: Option<Vec<u8>>,
    pub partition: Option<i32>,
    /// `-H name=value`, in command-line order, on every record.
    pub headers: Vec<(String, Vec<u8>)>,
    /// `--timestamp MS` for every record; without it the producer stamps each record.
    pub timestamp: Option<i64>,
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
    /// `-p`: read this partition only (not with `-g`).
    pub partition: Option<i32>,
    /// `-o`. With a group it has become `auto.offset.reset` in `properties`.
    pub start: Start,
    /// `-c`: at least 1.
    pub count: Option<u64>,
    /// `-e`: exit once every assigned partition is read up to its end.
    pub exit_at_end: bool,
    /// How records are printed: lines (with `-K`), `-f FORMAT` or `-J`.
    pub output: Output,
    /// Consumer and client properties in command-line order, `-b`, `-g` and `-o` (with
    /// `-g`) included, so the last setting of a key wins.
    pub properties: Vec<(String, String)>,
}

/// Where `fk consume` starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    /// This offset of every partition.
    Offset(i64),
    /// N records before the end of every partition (`-o -N`), or its beginning when it
    /// has fewer.
    FromEnd(i64),
    /// The first record at or after these milliseconds since the epoch (`-o s@MS`).
    Timestamp(i64),
}

/// Parses everything after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    // `-h` anywhere asks for help, as it did before the admin commands existed.
    if args.iter().skip(1).any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let mut rest = Args::new(&args[args.len().min(1)..]);
    match args.first().map(String::as_str) {
        None => Err(
            "no command given: expected `produce`, `consume`, `topics`, `groups` or \
                     `metadata` (or `--help`)"
                .to_owned(),
        ),
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("produce") => parse_produce(rest),
        Some("consume") => parse_consume(rest),
        Some("topics") => crate::topics::parse(&mut rest).map(Command::Topics),
        Some("groups") => crate::groups::parse(&mut rest).map(Command::Groups),
        Some("metadata") => crate::metadata::parse(&mut rest).map(Command::Metadata),
        Some(other) => Err(format!(
            "unknown command `{other}`: expected `produce`, `consume`, `topics`, `groups` or \
             `metadata`"
        )),
    }
}

/// The arguments not parsed yet.
pub struct Args<'a> {
    it: std::slice::Iter<'a, String>,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [String]) -> Args<'a> {
        Args { it: args.iter() }
    }

    /// The next argument (a flag, a positional argument or a subcommand).
    pub fn next_arg(&mut self) -> Option<&'a str> {
        self.it.next().map(String::as_str)
    }

    /// The value that must follow `flag`.
    pub fn value(&mut self, flag: &str) -> Result<String, String> {
        self.it
            .next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    }

    /// The value that must follow `flag`, as a number.
    pub fn number<T: std::str::FromStr>(&mut self, flag: &str, what: &str) -> Result<T, String> {
        let v = self.value(flag)?;
        v.parse()
            .map_err(|_| format!("{flag}: `{v}` is not {what}"))
    }
}

/// `-b`, `-X` and `-F`: the connection and client properties every command takes, in
/// command-line order so the last setting of a key wins.
#[derive(Debug, Default)]
pub struct Connection {
    pub properties: Vec<(String, String)>,
    brokers: bool,
}

impl Connection {
    /// Takes `flag` (and its value) if it is one of the shared options; `Ok(false)` if not.
    pub fn take(&mut self, flag: &str, args: &mut Args<'_>) -> Result<bool, String> {
        match flag {
            "-b" => {
                self.properties
                    .push(("bootstrap.servers".to_owned(), args.value(flag)?));
                self.brokers = true;
            }
            "-X" => self.properties.push(property(args.value(flag)?)?),
            "-F" => self.properties.extend(properties_file(&args.value(flag)?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The properties, once `-b` was given.
    pub fn finish(self, command: &str) -> Result<Vec<(String, String)>, String> {
        if !self.brokers {
            return Err(format!(
                "{command}: missing -b BROKERS (the bootstrap servers)"
            ));
        }
        Ok(self.properties)
    }
}

/// The error for an option `command` does not know.
pub fn unknown(command: &str, flag: &str) -> String {
    format!("{command}: unknown option `{flag}`")
}

fn parse_produce(mut args: Args<'_>) -> Result<Command, String> {
    let mut conn = Connection::default();
    let mut topic = None;
    let mut key_delimiter = None;
    let mut partition = None;
    let mut headers = Vec::new();
    let mut timestamp = None;
    while let Some(flag) = args.next_arg() {
        match flag {
            "-t" => topic = Some(args.value(flag)?),
            "-K" => key_delimiter = Some(delimiter(args.value(flag)?)?),
            "-p" => partition = Some(partition_number(&mut args, flag)?),
            "-H" => {
                let h = args.value(flag)?;
                match h.split_once('=') {
                    Some((name, value)) if !name.is_empty() => {
                        headers.push((name.to_owned(), value.as_bytes().to_vec()))
                    }
                    _ => return Err(format!("-H: `{h}` is not NAME=VALUE")),
                }
            }
            "--timestamp" => {
                let ms: i64 = args.number(flag, "a timestamp in milliseconds (0 or more)")?;
                if ms < 0 {
                    return Err(format!("--timestamp: {ms} is before 1970"));
                }
                timestamp = Some(ms);
            }
            "--acks" => {
                let acks = args.value(flag)?;
                if !matches!(acks.as_str(), "0" | "1" | "all" | "-1") {
                    return Err(format!("--acks: `{acks}` is not one of 0, 1, all"));
                }
                conn.properties.push(("acks".to_owned(), acks));
            }
            "--compression" => {
                let codec = args.value(flag)?;
                if Compression::from_name(&codec).is_none() {
                    return Err(format!(
                        "--compression: `{codec}` is not one of none, gzip, snappy, lz4, zstd"
                    ));
                }
                conn.properties.push(("compression.type".to_owned(), codec));
            }
            _ => {
                if !conn.take(flag, &mut args)? {
                    return Err(unknown("produce", flag));
                }
            }
        }
    }
    let properties = conn.finish("produce")?;
    Ok(Command::Produce(ProduceArgs {
        topic: topic_name("produce", topic)?,
        key_delimiter,
        partition,
        headers,
        timestamp,
        properties,
    }))
}

fn parse_consume(mut args: Args<'_>) -> Result<Command, String> {
    let mut conn = Connection::default();
    let mut topic = None;
    let mut group = None;
    let mut partition = None;
    let mut start = Start::End;
    let mut count = None;
    let mut exit_at_end = false;
    let mut key_delimiter = None;
    let mut format = None;
    let mut json = false;
    // `-o` becomes `auto.offset.reset` where it stands among the -X options, so whichever
    // of the two comes last wins; its slot is filled in once we know whether -g is given.
    let mut reset_slot = None;
    while let Some(flag) = args.next_arg() {
        match flag {
            "-t" => topic = Some(args.value(flag)?),
            "-g" => {
                let g = args.value(flag)?;
                if g.trim().is_empty() {
                    return Err("-g: the group name must not be empty".to_owned());
                }
                conn.properties.push(("group.id".to_owned(), g.clone()));
                group = Some(g);
            }
            "-p" => partition = Some(partition_number(&mut args, flag)?),
            "-o" => {
                start = parse_start(&args.value(flag)?)?;
                reset_slot = Some(conn.properties.len());
            }
            "-c" => {
                let c = args.value(flag)?;
                match c.parse::<u64>() {
                    Ok(n) if n > 0 => count = Some(n),
                    _ => return Err(format!("-c: `{c}` is not a record count (1 or more)")),
                }
            }
            "-e" => exit_at_end = true,
            "-K" => key_delimiter = Some(delimiter(args.value(flag)?)?),
            "-f" => {
                format = Some(Format::parse(&args.value(flag)?).map_err(|e| format!("-f: {e}"))?)
            }
            "-J" => json = true,
            _ => {
                if !conn.take(flag, &mut args)? {
                    return Err(unknown("consume", flag));
                }
            }
        }
    }
    let mut properties = conn.finish("consume")?;
    let topic = topic_name("consume", topic)?;
    let output = match (key_delimiter, format, json) {
        (key_delimiter, None, false) => Output::Lines { key_delimiter },
        (None, Some(format), false) => Output::Format(format),
        (None, None, true) => Output::Json,
        _ => return Err("-K, -f and -J choose the output format: give one of them".to_owned()),
    };
    if group.is_some() {
        if partition.is_some() {
            return Err(
                "-p: a partition cannot be combined with -g (the group assigns \
                        partitions)"
                    .to_owned(),
            );
        }
        // In a group the committed offset decides where reading starts; -o only covers
        // partitions without one, which is what auto.offset.reset means.
        let reset = match start {
            Start::Beginning => "earliest",
            Start::End => "latest",
            _ => {
                return Err(
                    "-o: only beginning or end can be combined with -g (the group's \
                            committed offsets decide where it starts)"
                        .to_owned(),
                )
            }
        };
        let at = reset_slot.unwrap_or(0);
        properties.insert(at, ("auto.offset.reset".to_owned(), reset.to_owned()));
    }
    Ok(Command::Consume(ConsumeArgs {
        topic,
        group,
        partition,
        start,
        count,
        exit_at_end,
        output,
        properties,
    }))
}

/// `-o`'s value: `beginning`, `end`, `OFFSET`, `-N` or `s@MS`.
fn parse_start(o: &str) -> Result<Start, String> {
    let bad =
        || format!("-o: `{o}` is not beginning, end, an offset, -N (N before the end) or s@MS");
    Ok(match o {
        "beginning" => Start::Beginning,
        "end" => Start::End,
        _ => {
            if let Some(ms) = o.strip_prefix("s@") {
                match ms.parse::<i64>() {
                    Ok(ms) if ms >= 0 => Start::Timestamp(ms),
                    _ => return Err(bad()),
                }
            } else {
                match o.parse::<i64>() {
                    Ok(n) if n >= 0 && !o.starts_with('-') => Start::Offset(n),
                    Ok(n) if n < 0 => Start::FromEnd(-n),
                    _ => return Err(bad()),
                }
            }
        }
    })
}

/// `-p`'s value: a partition number.
fn partition_number(args: &mut Args<'_>, flag: &str) -> Result<i32, String> {
    let p = args.value(flag)?;
    match p.parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(format!(
            "{flag}: `{p}` is not a partition number (0 or more)"
        )),
    }
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

/// A `KEY=VALUE` argument (`-X`, `topics create -c`, `topics alter --set`). The key itself
/// is checked by whoever uses it (the builder or the broker), which names it.
pub fn key_value(flag: &str, kv: String) -> Result<(String, String), String> {
    match kv.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{flag}: `{kv}` is not KEY=VALUE")),
    }
}

/// `-X`'s value.
fn property(kv: String) -> Result<(String, String), String> {
    key_value("-X", kv)
}

/// `-F`'s file: the Java `.properties` format as Kafka's tools read it — `key=value`,
/// `key: value` or `key value` lines, `#` and `!` comment lines, a trailing `\` joining
/// the next line, and `\`-escapes (`\=`, `\:`, `\n`, `\t`, `\\`). Unicode escapes
/// (`\uXXXX`) are read too. Keys are checked by the builder, which names them.
fn properties_file(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("-F: cannot read {path}: {e}"))?;
    parse_properties(&text).map_err(|e| format!("-F {path}: {e}"))
}

fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
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
