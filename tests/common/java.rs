//! The Java client (kafka-clients, the reference implementation) as a peer process:
//! `tests/kafka/java/JavaPeer.java`, compiled by `cargo xtask install-brokers`, driven over
//! its stdin/stdout line protocol (documented at the top of that file).
//!
//! A peer is a child process with piped stdin and stdout; a task reads stdout into a channel,
//! so a test can wait for a line with a timeout or look at what arrived so far without
//! blocking. The JVM is killed when the [`JavaPeer`] is dropped (a failing test leaves no
//! process behind). Its stderr (the Java client's warnings, stack traces) goes to a file
//! under `target/brokers/logs/`, quoted when something fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::kafka;

/// The directory with `classpath.txt` and the compiled peer (`peer/`).
fn home() -> PathBuf {
    kafka::kafka_home(&super::workspace_root())
}

/// `java -cp <peer>:<kafka classpath>`; panics, saying how to install them, when missing.
fn classpath() -> String {
    let home = home();
    let kafka = kafka::kafka_classpath(&home).unwrap_or_else(|e| panic!("{e}"));
    let peer = home.join("peer");
    if !peer.join("JavaPeer.class").is_file() {
        panic!(
            "the Java peer is not compiled ({} has no JavaPeer.class): run `cargo xtask \
             install-brokers` (it compiles tests/kafka/java/*.java with javac)",
            peer.display()
        );
    }
    kafka::check_java().unwrap_or_else(|e| panic!("{e}"));
    format!("{}:{kafka}", peer.display())
}

/// A record as the Java consumer printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// Where the Java producer says a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaAck {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
}

/// One line of the peer's stdout, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `record ...` (consume).
    Record(JavaRecord),
    /// `owned P,P,...`: the whole current assignment.
    Owned(Vec<i32>),
    /// `assigned` / `revoked` / `lost` with the partitions of that callback.
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
    Lost(Vec<i32>),
    /// `ack P O KEY` (produce).
    Ack(JavaAck),
    /// `committed`, `idle`, `closed N`, `done N`, `size B`: the line, unparsed.
    Other(String),
}

/// Escapes bytes into one field of the line protocol: ASCII letters, digits and
/// `- . _ : / ! * + @` as they are, every other byte `%XX`, null as `~`.
pub fn escape(bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else {
        return "~".to_string();
    };
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bytes of a field ([`escape`]'s inverse); panics on a malformed field.
pub fn unescape(field: &str) -> Option<Vec<u8>> {
    if field == "~" {
        return None;
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = field
                    .get(i + 1..i + 3)
                    .unwrap_or_else(|| panic!("truncated escape in `{field}`"));
                out.push(
                    u8::from_str_radix(hex, 16)
                        .unwrap_or_else(|_| panic!("bad escape in `{field}`")),
                );
                i += 3;
            }
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            b => panic!("unescaped byte {b:#04x} in `{field}`"),
        }
    }
    Some(out)
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._:/!*+@".contains(&b)
}

/// Headers as the peer writes them: `k=v,k=v`, both sides escaped.
pub fn escape_headers(headers: &[(String, Option<Vec<u8>>)]) -> String {
    headers
        .iter()
        .map(|(k, v)| format!("{}={}", escape(Some(k.as_bytes())), escape(v.as_deref())))
        .collect::<Vec<_>>()
        .join(",")
}

fn unescape_headers(field: &str) -> Vec<(String, Option<Vec<u8>>)> {
    if field.is_empty() {
        return Vec::new();
    }
    field
        .split(',')
        .map(|h| {
            let (k, v) = h
                .split_once('=')
                .unwrap_or_else(|| panic!("header `{h}` is not k=v"));
            let key = String::from_utf8(unescape(k).expect("header keys are not null"))
                .expect("header keys are UTF-8");
            (key, unescape(v))
        })
        .collect()
}

fn partitions(field: Option<&str>) -> Vec<i32> {
    match field {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|p| p.parse().unwrap_or_else(|_| panic!("bad partition `{p}`")))
            .collect(),
    }
}

/// Parses one stdout line of the peer; panics on a malformed one.
pub fn parse(line: &str) -> Event {
    let f: Vec<&str> = line.split('\t').collect();
    let num = |i: usize| -> i64 {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("field {i} of `{line}` is not a number"))
    };
    match f[0] {
        "record" => {
            assert_eq!(f.len(), 7, "record line `{line}`");
            Event::Record(JavaRecord {
                partition: num(1) as i32,
                offset: num(2),
                key: unescape(f[3]),
                value: unescape(f[4]),
                headers: unescape_headers(f[5]),
                timestamp: num(6),
            })
        }
        "ack" => {
            assert_eq!(f.len(), 4, "ack line `{line}`");
            Event::Ack(JavaAck {
                partition: num(1) as i32,
                offset: num(2),
                key: unescape(f[3]),
            })
        }
        "owned" => Event::Owned(partitions(f.get(1).copied())),
        "assigned" => Event::Assigned(partitions(f.get(1).copied())),
        "revoked" => Event::Revoked(partitions(f.get(1).copied())),
        "lost" => Event::Lost(partitions(f.get(1).copied())),
        _ => Event::Other(line.to_string()),
    }
}

/// A running `JavaPeer` process.
pub struct JavaPeer {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: PathBuf,
}

impl JavaPeer {
    /// Starts `java JavaPeer <args>`. The JVM is small and tuned for a short start (C1 only,
    /// serial GC): tests start many.
    pub fn spawn<S: AsRef<str>>(args: &[S]) -> JavaPeer {
        static N: AtomicU64 = AtomicU64::new(0);
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let what = format!("JavaPeer {}", args.join(" "));
        let dir = super::logs_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let stderr = dir.join(format!(
            "java-peer-{}-{}.log",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let err = std::fs::File::create(&stderr)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr.display()));
        let mut child = Command::new("java")
            .args([
                "-Xms64m",
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-cp",
            ])
            .arg(classpath())
            .arg("JavaPeer")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        JavaPeer {
            what,
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    /// What was started, and the end of its stderr: for panic messages.
    pub fn describe(&self) -> String {
        format!(
            "{}\n--- end of its stderr ({}) ---\n{}",
            self.what,
            self.stderr.display(),
            kafka::log_tail(&self.stderr, 6000)
        )
    }

    /// Writes one line to the peer's stdin. A peer that has exited cannot take it: that
    /// panics with its stderr.
    pub async fn send_line(&mut self, line: &str) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("stdin of {} is closed", self.what));
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        if let Err(e) = stdin.write_all(buf.as_bytes()).await {
            panic!("cannot write to {}: {e}\n{}", self.what, self.describe());
        }
    }

    /// Writes many lines (buffered), then closes stdin: the produce input.
    pub async fn send_all_and_close(&mut self, lines: &[String]) {
        let mut stdin = self
            .stdin
            .take()
            .unwrap_or_else(|| panic!("stdin of {} is closed", self.what));
        let mut buf = String::new();
        for line in lines {
            buf.push_str(line);
            buf.push('\n');
        }
        let written = async {
            stdin.write_all(buf.as_bytes()).await?;
            stdin.shutdown().await
        }
        .await;
        if let Err(e) = written {
            panic!("cannot write to {}: {e}\n{}", self.what, self.describe());
        }
    }

    /// Closes stdin: a consumer closes (leaving its group) as on a `stop` line.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line, waiting up to `timeout`; `None` once stdout closed. Panics on
    /// timeout with the peer's stderr.
    pub async fn line(&mut self, timeout: Duration) -> Option<String> {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(line) => line,
            Err(_) => panic!(
                "no line from the Java peer within {timeout:?}: {}",
                self.describe()
            ),
        }
    }

    /// The next parsed line; `None` once stdout closed.
    pub async fn event(&mut self, timeout: Duration) -> Option<Event> {
        self.line(timeout).await.map(|l| parse(&l))
    }

    /// A line already printed, if any (never waits).
    pub fn try_event(&mut self) -> Option<Event> {
        self.lines.try_recv().ok().map(|l| parse(&l))
    }

    /// Reads every remaining line until stdout closes and the process exits, waiting up to
    /// `timeout` in all; panics unless it exited with status 0.
    pub async fn finish(mut self, timeout: Duration) -> Vec<Event> {
        self.stdin = None;
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.line(left).await {
                Some(line) => events.push(parse(&line)),
                None => break,
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let status = self.wait(left).await;
        if !status.success() {
            panic!("{status}: {}", self.describe());
        }
        events
    }

    async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("cannot wait for {}: {e}", self.what),
            Err(_) => panic!(
                "{} did not exit within {timeout:?}: {}",
                self.what,
                self.describe()
            ),
        }
    }
}

/// Produces `lines` (`KEY\tVALUE[\tHEADERS[\tPARTITION]]`, fields [`escape`]d) with the Java
/// producer; `args` after `--bootstrap B --topic T` (e.g. `--compression`, `-X k=v`). Returns
/// the acks in input order.
pub async fn produce(
    bootstrap: &str,
    topic: &str,
    args: &[&str],
    lines: &[String],
) -> Vec<JavaAck> {
    let mut cmd = vec!["produce", "--bootstrap", bootstrap, "--topic", topic];
    cmd.extend_from_slice(args);
    let mut peer = JavaPeer::spawn(&cmd);
    peer.send_all_and_close(lines).await;
    let what = peer.what.clone();
    let events = peer.finish(Duration::from_secs(120)).await;
    let acks: Vec<JavaAck> = events
        .iter()
        .filter_map(|e| match e {
            Event::Ack(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        events.last(),
        Some(&Event::Other(format!("done\t{}", lines.len()))),
        "{what} did not finish with `done`"
    );
    assert_eq!(acks.len(), lines.len(), "{what}: one ack per record");
    acks
}

/// Reads `topic` with the Java consumer (`args` after `--bootstrap B --topic T`, e.g.
/// `--from-beginning --count N`) until it stops by itself; returns the records it printed.
pub async fn consume(bootstrap: &str, topic: &str, args: &[&str]) -> Vec<JavaRecord> {
    let mut cmd = vec!["consume", "--bootstrap", bootstrap, "--topic", topic];
    cmd.extend_from_slice(args);
    let mut peer = JavaPeer::spawn(&cmd);
    // stdin stays open: closing it would stop the consumer before --count / --idle-ms.
    let mut records = Vec::new();
    loop {
        match peer.event(Duration::from_secs(60)).await {
            Some(Event::Record(r)) => records.push(r),
            Some(Event::Other(line)) if line.starts_with("closed") => break,
            Some(_) => {}
            None => panic!("the Java consumer stopped early: {}", peer.describe()),
        }
    }
    peer.finish(Duration::from_secs(30)).await;
    records
}

/// The bytes each of `topics` takes on the brokers' disks, as the Java admin client reports
/// (one JVM for all of them).
pub async fn log_sizes(bootstrap: &str, topics: &[String]) -> HashMap<String, u64> {
    let list = topics.join(",");
    let peer = JavaPeer::spawn(&["log-size", "--bootstrap", bootstrap, "--topic", &list]);
    let events = peer.finish(Duration::from_secs(60)).await;
    let sizes: HashMap<String, u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Other(line) => line.strip_prefix("size\t"),
            _ => None,
        })
        .map(|rest| {
            let (topic, size) = rest.split_once('\t').expect("size TOPIC BYTES");
            (topic.to_string(), size.parse().expect("size is a number"))
        })
        .collect();
    assert_eq!(sizes.len(), topics.len(), "log-size answered {events:?}");
    sizes
}
