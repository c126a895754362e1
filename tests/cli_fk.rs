//! The `fk` example (a kcat-like CLI) run as a real process: stdin lines in, records on a
//! broker (Tansu, or `KAFKA_BOOTSTRAP`) out, read back by librdkafka and by `fk consume`
//! (alone and in a group that commits); bad arguments and an unreachable broker end with a
//! non-zero exit and a message that names the problem.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::peer::read_all;
use common::{broker_with_topic, connect, unique_topic, within, Broker};
use ferrokafka::{Producer, Record};
use tokio::io::AsyncWriteExt;

/// Upper bound for one `fk` run; it is killed (and the test fails) past it.
const FK_TIMEOUT: Duration = Duration::from_secs(60);

/// The `fk` example binary, built by cargo if it is missing or out of date.
///
/// Cargo gives integration tests `CARGO_BIN_EXE_<name>` for `[[bin]]` targets only, not for
/// examples. A plain `cargo test` does build every example (to check that they compile) and
/// finishes all building before it runs any test, so `target/<profile>/examples/fk` is then
/// there and fresh. But `cargo test --test cli_fk` (or any `--test` filter) builds only this
/// test and the library: the example would be missing or, worse, stale, and the test would
/// check old code. So the test asks cargo itself, once per test binary, to
/// `cargo build --workspace --example fk` into this test's target directory and profile;
/// cargo's own freshness check makes that a no-op (about half a second) when the example is
/// up to date. Nesting is safe: cargo releases the build-directory lock once building is
/// done, before any test runs.
///
/// Why `--workspace`: features are unified over the packages a command selects, and the
/// other workspace members (the benchmark) turn on more features of shared dependencies,
/// so the package-only and the workspace-wide builds are different artifacts, with a
/// librdkafka build each. `cargo xtask test` (what CI runs) is `cargo test --workspace`, so
/// the nested build matches it and reuses what it built. After a package-only `cargo test`
/// it builds the workspace variant once, which takes a few minutes on a fresh target dir.
///
/// The test executable is `<target-dir>/<profile-dir>/deps/cli_fk-<hash>`; the example lands
/// in `<target-dir>/<profile-dir>/examples/fk`.
fn fk_binary() -> &'static Path {
    static FK: OnceLock<PathBuf> = OnceLock::new();
    FK.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe
            .parent() // deps/
            .and_then(Path::parent)
            .unwrap_or_else(|| panic!("unexpected test executable path {}", exe.display()));
        let target_dir = profile_dir.parent().unwrap();
        // `target/debug` holds the dev (and test) profile; other profiles use their own name.
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("unexpected profile directory {}", profile_dir.display()),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let out = Command::new(&cargo)
            .args(["build", "--quiet", "--workspace", "--example", "fk"])
            .args(["--profile", profile])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?} to build the fk example: {e}"));
        assert!(
            out.status.success(),
            "`cargo build --workspace --example fk --profile {profile}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let fk = profile_dir
            .join("examples")
            .join(format!("fk{}", std::env::consts::EXE_SUFFIX));
        assert!(
            fk.is_file(),
            "cargo built the fk example, but it is not at {}",
            fk.display()
        );
        fk
    })
}

/// How one `fk` run ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `fk ARGS` with `stdin` as its input; kills it and fails past [`FK_TIMEOUT`].
async fn fk(args: &[&str], stdin: &str) -> Run {
    // Built (or found fresh) before the clock starts: `took` is fk's own run time.
    let binary = fk_binary();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // fk may exit without reading (a usage error): a broken pipe here is not the test's
    // business, its exit status is.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    let out = match tokio::time::timeout(FK_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => panic!("`fk {}` did not exit within {FK_TIMEOUT:?}", args.join(" ")),
    };
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// A broker and a fresh topic with `partitions` partitions on it.
async fn topic_on_broker(partitions: i32) -> (Broker, String) {
    let (broker, client, topic) = broker_with_topic("cli-fk", partitions).await;
    client.close().await;
    (broker, topic)
}

/// Makes group joins on Tansu take about a second instead of the default session timeout's
/// half (Tansu waits that long in each join round), and keeps fetches of an idle partition
/// short.
const QUICK_GROUP: [&str; 6] = [
    "-X",
    "session.timeout.ms=6000",
    "-X",
    "heartbeat.interval.ms=500",
    "-X",
    "fetch.max.wait.ms=100",
];

/// `fk produce -b BOOTSTRAP -t TOPIC EXTRA...` with `lines` as input; it must deliver all.
async fn fk_produce(bootstrap: &str, topic: &str, extra: &[&str], lines: &str) {
    let mut args = vec!["produce", "-b", bootstrap, "-t", topic];
    args.extend_from_slice(extra);
    let run = fk(&args, lines).await;
    let n = lines.lines().count();
    assert_eq!(run.code, Some(0), "fk {args:?}: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!("delivered {n}, failed 0")),
        "fk {args:?}: {}",
        run.stderr
    );
}

/// `fk consume -b BOOTSTRAP -t TOPIC EXTRA...`, which must exit 0; its stdout.
async fn fk_consume(bootstrap: &str, topic: &str, extra: &[&str]) -> String {
    let mut args = vec!["consume", "-b", bootstrap, "-t", topic];
    args.extend_from_slice(extra);
    let run = fk(&args, "").await;
    assert_eq!(run.code, Some(0), "fk {args:?}: {}", run.stderr);
    run.stdout
}

fn text(bytes: &Option<Vec<u8>>) -> Option<&str> {
    bytes.as_deref().map(|b| std::str::from_utf8(b).unwrap())
}

#[tokio::test]
async fn produce_splits_keys_at_the_delimiter_and_librdkafka_reads_them_back() {
    let (broker, topic) = topic_on_broker(1).await;
    let bootstrap = broker.bootstrap();
    let run = fk(
        &["produce", "-b", &bootstrap, "-t", &topic, "-K", ":"],
        "k1:v1\nk2:v2\nnokey-line\n",
    )
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("delivered 3, failed 0"),
        "stderr: {}",
        run.stderr
    );

    let read = read_all(&bootstrap, &topic, 1, 3, Duration::from_secs(30));
    let got: Vec<(Option<&str>, Option<&str>)> = read
        .iter()
        .map(|r| (text(&r.key), text(&r.value)))
        .collect();
    assert_eq!(
        got,
        [
            (Some("k1"), Some("v1")),
            (Some("k2"), Some("v2")),
            // No delimiter: a null key and the whole line as the value.
            (None, Some("nokey-line")),
        ]
    );
}

#[tokio::test]
async fn produce_applies_partition_acks_compression_and_x_properties() {
    let (broker, topic) = topic_on_broker(3).await;
    let bootstrap = broker.bootstrap();
    let lines: String = (0..20).map(|i| format!("key{i}=value={i}\n")).collect();
    let run = fk(
        &[
            "produce",
            "-b",
            &bootstrap,
            "-t",
            &topic,
            "-K",
            "=",
            "-p",
            "2",
            "--acks",
            "1",
            "--compression",
            "zstd",
            "-X",
            "linger.ms=1",
            "-X",
            "client.id=fk-test",
        ],
        &lines,
    )
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("delivered 20, failed 0"),
        "stderr: {}",
        run.stderr
    );

    let read = read_all(&bootstrap, &topic, 3, 20, Duration::from_secs(30));
    assert_eq!(read.len(), 20, "librdkafka read {read:?}");
    for (i, r) in read.iter().enumerate() {
        assert_eq!(r.partition, 2, "-p 2 puts every record in partition 2");
        // Only the first `=` splits: the value keeps the rest.
        assert_eq!(text(&r.key), Some(format!("key{i}").as_str()));
        assert_eq!(text(&r.value), Some(format!("value={i}").as_str()));
    }
}

#[tokio::test]
async fn bad_arguments_fail_with_a_message_naming_the_argument() {
    // No broker is needed: every one of these is rejected before fk connects anywhere.
    let cases: &[(&[&str], &str)] = &[
        (
            &["produce", "-b", "127.0.0.1:1", "-t", "t", "--acks", "7"],
            "--acks",
        ),
        (&["produce", "-b", "127.0.0.1:1"], "-t"),
        (&["produce", "-t", "t"], "-b"),
        (
            &["produce", "-b", "127.0.0.1:1", "-t", "t", "-p", "x"],
            "-p",
        ),
        (
            &[
                "produce",
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "--compression",
                "brotli",
            ],
            "--compression",
        ),
        (
            &["produce", "-b", "127.0.0.1:1", "-t", "t", "-X", "linger.ms"],
            "-X",
        ),
        (
            &[
                "produce",
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "-X",
                "no.such.property=1",
            ],
            "no.such.property",
        ),
        (
            &[
                "produce",
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "-X",
                "linger.ms=-5",
            ],
            "linger.ms",
        ),
        (
            &["produce", "-b", "127.0.0.1:1", "-t", "t", "--frobnicate"],
            "--frobnicate",
        ),
        (&["produce", "-b"], "-b"),
        (
            &["consume", "-b", "127.0.0.1:1", "-t", "t", "-o", "sideways"],
            "-o",
        ),
        (
            &["consume", "-b", "127.0.0.1:1", "-t", "t", "-o", "s@x"],
            "-o",
        ),
        (
            // An absolute offset means nothing to a group, whose commits decide.
            &[
                "consume",
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "-g",
                "g",
                "-o",
                "5",
            ],
            "-o",
        ),
        (
            &["consume", "-b", "127.0.0.1:1", "-t", "t", "-c", "0"],
            "-c",
        ),
        (
            &["consume", "-b", "127.0.0.1:1", "-t", "t", "-c", "x"],
            "-c",
        ),
        (&["consume", "-b", "127.0.0.1:1", "-t", "t", "-K", ""], "-K"),
        (&["consume", "-b", "127.0.0.1:1", "-t", "t", "-g"], "-g"),
        (&["consume", "-b", "127.0.0.1:1"], "-t"),
        (&["consume", "-t", "t"], "-b"),
        (
            &[
                "consume",
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "-X",
                "no.such.property=1",
            ],
            "no.such.property",
        ),
        (
            &[
                "consume",
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "-X",
                "auto.offset.reset=sideways",
            ],
            "auto.offset.reset",
        ),
        (
            &["consume", "-b", "127.0.0.1:1", "-t", "t", "-p", "-1"],
            "-p",
        ),
        (&["frobnicate"], "frobnicate"),
        (&[], "produce"),
    ];
    for (args, named) in cases {
        let run = fk(args, "a line\n").await;
        assert_eq!(
            run.code,
            Some(2),
            "fk {args:?} should be a usage error; stderr: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(named),
            "fk {args:?}: the message should name `{named}`: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "fk {args:?} printed {}", run.stdout);
    }
}

#[tokio::test]
async fn help_documents_both_commands_and_the_key_delimiter() {
    let help = fk(&["--help"], "").await;
    assert_eq!(help.code, Some(0), "stderr: {}", help.stderr);
    assert!(help.stdout.contains("fk produce -b BROKERS -t TOPIC"));
    assert!(help.stdout.contains("fk consume -b BROKERS -t TOPIC"));
    assert!(
        help.stdout.contains("A line without DELIM has a null key"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("-o beginning|end|OFFSET"));
    assert!(!help.stdout.contains("coming with the consumer"));
    assert_eq!(fk(&["produce", "--help"], "").await.stdout, help.stdout);
    assert_eq!(fk(&["consume", "--help"], "").await.stdout, help.stdout);
}

/// `-F` reads a Java properties file (comments, `:` and spaced separators, continuations,
/// escapes) and applies it where it stands among the `-X` options.
#[tokio::test]
async fn a_properties_file_is_read_like_java_reads_it() {
    let dir = std::env::temp_dir().join(format!("fk-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.properties");
    std::fs::write(
        &good,
        "# comment\n! another comment\n\n  default.api.timeout.ms = 2000\n\
         socket.connection.setup.timeout.ms: 1000\nclient.id fk-\\\n    props\n\
         # linger.ms=-5 is commented out\n",
    )
    .unwrap();
    // Every property is valid, so fk gets as far as the (unreachable) broker: exit 1, and
    // within the file's timeouts.
    let run = fk(
        &[
            "produce",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "-F",
            good.to_str().unwrap(),
        ],
        "a line\n",
    )
    .await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    assert!(run.took < Duration::from_secs(15), "took {:?}", run.took);

    let bad = dir.join("bad.properties");
    std::fs::write(&bad, "client.id=x\nlinger.ms=-5\n").unwrap();
    for command in ["produce", "consume"] {
        let run = fk(
            &[
                command,
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "-F",
                bad.to_str().unwrap(),
            ],
            "",
        )
        .await;
        assert_eq!(run.code, Some(2), "{command}: stderr: {}", run.stderr);
        assert!(
            run.stderr.contains("linger.ms"),
            "{command}: {}",
            run.stderr
        );
    }
    // A later -X wins over the file: the file's 10-minute API timeout would outlast the test.
    let slow = dir.join("slow.properties");
    std::fs::write(&slow, "default.api.timeout.ms=600000\n").unwrap();
    let run = fk(
        &[
            "produce",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "-F",
            slow.to_str().unwrap(),
            "-X",
            "default.api.timeout.ms=2000",
            "-X",
            "socket.connection.setup.timeout.ms=1000",
        ],
        "",
    )
    .await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.took < Duration::from_secs(15), "took {:?}", run.took);
    let missing = dir.join("missing.properties");
    let run = fk(
        &[
            "consume",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "-F",
            missing.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("-F: cannot read") && run.stderr.contains("missing.properties"),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_fails_quickly_with_a_clear_message() {
    for (command, what) in [
        ("produce", "cannot start the producer"),
        ("consume", "cannot start the consumer"),
    ] {
        let run = fk(
            &[
                command,
                "-b",
                "127.0.0.1:1",
                "-t",
                "t",
                "-X",
                "default.api.timeout.ms=2000",
                "-X",
                "socket.connection.setup.timeout.ms=1000",
            ],
            "a line\n",
        )
        .await;
        assert_eq!(run.code, Some(1), "{command}: stderr: {}", run.stderr);
        assert!(
            run.stderr.contains(what) && run.stderr.contains("127.0.0.1:1"),
            "{command}: stderr: {}",
            run.stderr
        );
        assert!(
            run.took < Duration::from_secs(15),
            "{command} took {:?}: the connection timeouts should bound it",
            run.took
        );
    }
}

#[tokio::test]
async fn consume_from_the_beginning_prints_exactly_the_produced_lines() {
    let (broker, topic) = topic_on_broker(1).await;
    let bootstrap = broker.bootstrap();
    // An empty line and inner spaces must survive the round trip as they are.
    let lines: String = (0..50)
        .map(|i| match i {
            20 => "\n".to_owned(),
            _ => format!("line {i} of 50\n"),
        })
        .collect();
    fk_produce(&bootstrap, &topic, &[], &lines).await;

    // One partition: the output is the input, in order, and -c stops it after 50 lines.
    let out = fk_consume(&bootstrap, &topic, &["-o", "beginning", "-c", "50"]).await;
    assert_eq!(out, lines);

    // An absolute -o starts there, and -c below what is available stops early.
    let out = fk_consume(&bootstrap, &topic, &["-o", "45", "-c", "3"]).await;
    assert_eq!(out, "line 45 of 50\nline 46 of 50\nline 47 of 50\n");
}

#[tokio::test]
async fn consume_with_a_key_delimiter_prints_keys_and_keeps_partition_order() {
    let (broker, topic) = topic_on_broker(3).await;
    let bootstrap = broker.bootstrap();
    // Four keys spread over the three partitions; the key decides the partition, so the
    // events of one key keep their order.
    let mut lines: String = (0..60)
        .map(|i| format!("user{}:event {i}\n", i % 4))
        .collect();
    lines.push_str("no-key-line\n");
    fk_produce(&bootstrap, &topic, &["-K", ":"], &lines).await;
    // Null values, which fk produce cannot write: a key with no value, and neither.
    let client = connect(&bootstrap).await;
    let producer = Producer::builder(&client).build().await.unwrap();
    for record in [
        Record::new(&topic).key("null-value"),
        Record::new(&topic).partition(0),
    ] {
        let delivery = producer.send(record).await.unwrap();
        within("delivery", delivery).await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    client.close().await;

    let out = fk_consume(
        &bootstrap,
        &topic,
        &["-K", ":", "-o", "beginning", "-c", "63"],
    )
    .await;
    let mut got: Vec<&str> = out.lines().collect();
    for user in 0..4 {
        let events: Vec<usize> = got
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("user{user}:event ")))
            .map(|i| i.parse().unwrap())
            .collect();
        let expected: Vec<usize> = (0..60).filter(|i| i % 4 == user).collect();
        assert_eq!(events, expected, "user{user}'s events in order:\n{out}");
    }
    // A null key prints as nothing before the delimiter, a null value as nothing after it.
    let mut expected: Vec<&str> = lines
        .lines()
        .map(|l| match l {
            "no-key-line" => ":no-key-line",
            l => l,
        })
        .collect();
    expected.extend(["null-value:", ":"]);
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn consume_in_a_group_continues_where_the_last_run_committed() {
    let (broker, topic) = topic_on_broker(1).await;
    let bootstrap = broker.bootstrap();
    let lines: Vec<String> = (0..30).map(|i| format!("record {i}")).collect();
    fk_produce(&bootstrap, &topic, &[], &(lines.join("\n") + "\n")).await;

    let group = unique_topic("fk-group");
    // `-o beginning` in both runs: it only applies without a committed offset, so the second
    // run starting at record 10 (not 0) shows that the first run's commit was used.
    let mut args = vec!["-g", group.as_str(), "-o", "beginning", "-c", "10"];
    args.extend_from_slice(&QUICK_GROUP);
    for run in 0..2 {
        let out = fk_consume(&bootstrap, &topic, &args).await;
        let expected = lines[run * 10..(run + 1) * 10].join("\n") + "\n";
        assert_eq!(out, expected, "run {run}");
    }
}

/// The kcat-class additions, end to end on the shared real Kafka node: headers on produce, `-f` with every token, `-J`
/// parsed as JSON, `-e` ending at the end of the log, `-o -N`, then the admin commands
/// (`topics create/describe/list/delete`, `metadata`, `groups list/describe/lag`,
/// `groups reset-offsets` dry run and `--execute`) and their exit codes.
#[tokio::test]
async fn format_json_end_of_log_and_the_admin_commands() {
    // Real Kafka: Tansu's ListOffsets LATEST is wrong (../shared/brokers.md), and -e and
    // -o -N rely on it.
    let bootstrap = common::kafka().bootstrap();
    let b = bootstrap.as_str();
    let topic = unique_topic("cli-fk-admin");

    let run = fk(
        &["topics", "create", "-b", b, &topic, "-P", "1", "-R", "1"],
        "",
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("with 1 partitions"), "{}", run.stdout);
    let run = fk(&["topics", "list", "-b", b], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.lines().any(|l| l.starts_with(&topic)),
        "{}",
        run.stdout
    );

    fk_produce(
        b,
        &topic,
        &["-K", ":", "-H", "h1=x", "-H", "h2=y"],
        "k1:v1\nk2:value2\n",
    )
    .await;

    // -e ends at the end of the log without -c; every -f token.
    let out = fk_consume(
        b,
        &topic,
        &[
            "-o",
            "beginning",
            "-e",
            "-f",
            "%t|%p|%o|%k|%s|%K|%S|%h|%T|%%\\n",
        ],
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let first: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(
        &first[..8],
        &[topic.as_str(), "0", "0", "k1", "v1", "2", "2", "h1=x,h2=y"]
    );
    assert!(
        first[8].parse::<i64>().unwrap() > 1_600_000_000_000,
        "{out}"
    );
    assert_eq!(first[9], "%");
    assert!(lines[1].contains("|1|k2|value2|2|6|"), "{out}");

    // -J: one JSON object per record; -o -1 starts one before the end.
    let out = fk_consume(b, &topic, &["-o", "-1", "-e", "-J"]).await;
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 1, "{out}");
    assert_eq!(records[0]["key"], "k2");
    assert_eq!(records[0]["payload"], "value2");
    assert_eq!(records[0]["offset"], 1);
    assert_eq!(records[0]["headers"][1]["value"], "y");

    let run = fk(&["metadata", "-b", b, "-t", &topic], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("BROKER") && run.stdout.contains(&topic),
        "{}",
        run.stdout
    );
    let run = fk(&["topics", "describe", "-b", b, &topic], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("PARTITION"), "{}", run.stdout);

    // A group that read one record: lag 1; a dry run changes nothing, --execute does.
    let group = unique_topic("cli-fk-g");
    let mut args = vec!["-g", group.as_str(), "-o", "beginning", "-c", "1"];
    args.extend_from_slice(&QUICK_GROUP);
    assert_eq!(fk_consume(b, &topic, &args).await, "v1\n");
    let run = fk(&["groups", "list", "-b", b], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains(&group), "{}", run.stdout);
    let run = fk(&["groups", "describe", "-b", b, &group], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lag = fk(&["groups", "lag", "-b", b, &group], "").await;
    assert_eq!(lag.code, Some(0), "{}", lag.stderr);
    assert!(lag.stdout.contains("total lag 1"), "{}", lag.stdout);
    let reset = [
        "groups",
        "reset-offsets",
        "-b",
        b,
        &group,
        "--topic",
        &topic,
        "--to-earliest",
    ];
    let run = fk(&reset, "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("dry run"), "{}", run.stderr);
    let run = fk(&["groups", "lag", "-b", b, &group], "").await;
    assert!(
        run.stdout.contains("total lag 1"),
        "dry run changed offsets: {}",
        run.stdout
    );
    let mut execute = reset.to_vec();
    execute.push("--execute");
    let run = fk(&execute, "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = fk(&["groups", "lag", "-b", b, &group], "").await;
    assert!(
        run.stdout.contains("total lag 2"),
        "--execute did not reset: {}",
        run.stdout
    );

    // Exit codes: a failed operation is 1 and names the resource; bad usage is 2.
    let missing = unique_topic("cli-fk-missing");
    let run = fk(&["topics", "delete", "-b", b, &missing], "").await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains(&missing), "{}", run.stderr);
    let run = fk(&["topics", "bogus", "-b", b], "").await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let run = fk(&["topics", "delete", "-b", b, &topic], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}
