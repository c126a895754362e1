//! The `fk` example (a kcat-like CLI) run as a real process: stdin lines in, records on a
//! broker (Tansu, or `KAFKA_BOOTSTRAP`) out, read back by librdkafka; bad arguments and an
//! unreachable broker end with a non-zero exit and a message that names the problem.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::peer::read_all;
use common::{unique_topic, within, Broker};
use ferrokafka::{Client, NewTopic};
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
    let started = Instant::now();
    let mut child = tokio::process::Command::new(fk_binary())
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
    let broker = Broker::start();
    let client = within(
        "client",
        Client::builder()
            .bootstrap_servers(broker.bootstrap())
            .build(),
    )
    .await
    .unwrap();
    let topic = unique_topic("cli-fk");
    within(
        "create topic",
        client
            .admin()
            .create_topics(&[NewTopic::new(&topic, partitions, 1)]),
    )
    .await
    .unwrap();
    client.close().await;
    (broker, topic)
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
async fn help_documents_the_key_delimiter_and_consume_is_reserved() {
    let help = fk(&["--help"], "").await;
    assert_eq!(help.code, Some(0), "stderr: {}", help.stderr);
    assert!(help.stdout.contains("fk produce -b BROKERS -t TOPIC"));
    assert!(
        help.stdout.contains("A line without DELIM has a null key"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("(coming with the consumer)"));
    assert_eq!(fk(&["produce", "--help"], "").await.stdout, help.stdout);

    let consume = fk(&["consume", "-b", "127.0.0.1:1", "-t", "t"], "").await;
    assert_eq!(consume.code, Some(2));
    assert!(
        consume.stderr.contains("coming with the consumer"),
        "{}",
        consume.stderr
    );
}

#[tokio::test]
async fn an_unreachable_broker_fails_quickly_with_a_clear_message() {
    let run = fk(
        &[
            "produce",
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
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("cannot start the producer") && run.stderr.contains("127.0.0.1:1"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.took < Duration::from_secs(15),
        "took {:?}: the connection timeouts should bound it",
        run.took
    );
}
