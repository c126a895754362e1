//! Developer commands for ferrokafka, run as `cargo xtask <command>`.
//!
//! The alias lives in `.cargo/config.toml`. Every command works on a fresh machine that has
//! the Rust toolchain and Python with pip: the test broker (Tansu) is installed on demand
//! under `target/brokers/`.

mod bench;
mod bench_external;
mod broker;
mod demo;
mod fuzz;
mod install;
mod kafka;
mod soak;
mod test;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

const USAGE: &str = "\
Usage: cargo xtask <command> [args]

Commands:
  install-brokers   Install the test brokers under target/brokers/ (once): Tansu (pip) and
                    Apache Kafka + the Java client (Maven; needs java 17+ and mvn)
  demo [--kafka]    Start Tansu (or, with --kafka, a real Apache Kafka node) and run the
                    quickstart example against it
  test [ARGS..]     cargo fmt --check, cargo clippy -D warnings, cargo test --workspace [ARGS..]
                    (e.g. `cargo xtask test -- --nocapture`, `cargo xtask test --test harness`)
  tansu [PORT]      Run Tansu in the foreground on 127.0.0.1:PORT (default 9092); Ctrl-C stops it
  bench produce [--brokers HOST:PORT] [--only CASE] [--quick]
                    Produce benchmark: ferrokafka vs rdkafka, rskafka, krafka, confluent-kafka,
                    franz-go and the Java client on the mock cluster and Tansu, or an external
                    cluster (builds the Go and Java workers first: needs go, javac and mvn; see
                    docs/PERFORMANCE.md); also `bench consume`, `bench latency [--rates R,..]`,
                    `bench chart --out DIR FILE..`
  soak --minutes N [--seed S]
                    Producer + consumer group on the mock cluster under broker chaos; fails on loss/duplicates
  fuzz [--seed] [--runs N] [--merge] [TARGET ..]
                    The decoders' fuzz targets in fuzz/ (needs `cargo install cargo-fuzz`)
  help              Show this message

Environment:
  FERROKAFKA_TANSU       Path of a tansu binary to use instead of installing one
  FERROKAFKA_KAFKA_HOME  Directory with Kafka's classpath.txt instead of target/brokers/kafka-VERSION
  FERROKAFKA_BROKER      kafka: run the generic suites on a real Kafka node instead of Tansu
  KAFKA_BOOTSTRAP        host:port of an external cluster for the generic suites";

/// A failed command: what to tell the developer, and the process exit code.
#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub code: u8,
}

impl Error {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            code: 1,
        }
    }

    /// A failure that carries a child process's exit status (never 0).
    pub fn status(message: impl Into<String>, status: ExitStatus) -> Error {
        let code = match status.code() {
            Some(code) if (1..=255).contains(&code) => code as u8,
            _ => 1,
        };
        Error {
            message: message.into(),
            code,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T = ()> = std::result::Result<T, Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::from(err.code)
        }
    }
}

fn dispatch(args: &[String]) -> Result {
    let root = workspace_root();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            eprintln!("{USAGE}");
            return Err(Error::new("no command given"));
        }
    };
    match command {
        "install-brokers" => {
            no_extra_args(command, rest)?;
            install::ensure(&root)?;
            kafka::ensure(&root).map(|_| ())
        }
        "demo" => match rest {
            [] => demo::run(&root),
            [flag] if flag == "--kafka" => demo::run_on_kafka(&root),
            _ => Err(Error::new("usage: cargo xtask demo [--kafka]")),
        },
        "test" => test::run(&root, rest),
        "bench" => bench::run(&root, rest),
        "soak" => soak::run(&root, rest),
        "fuzz" => fuzz::run(&root, rest),
        "tansu" => {
            let port = match rest {
                [] => broker::DEFAULT_FOREGROUND_PORT,
                [port] => parse_port(port)?,
                _ => return Err(Error::new("usage: cargo xtask tansu [PORT]")),
            };
            broker::foreground(&root, port)
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("{USAGE}");
            Err(Error::new(format!("unknown command `{other}`")))
        }
    }
}

fn no_extra_args(command: &str, rest: &[String]) -> Result {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`cargo xtask {command}` takes no arguments (got {rest:?})"
        )))
    }
}

fn parse_port(text: &str) -> Result<u16> {
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(Error::new(format!(
            "`{text}` is not a TCP port: give a number from 1 to 65535"
        ))),
    }
}

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask lives in a subdirectory of the workspace")
        .to_path_buf()
}

/// `cargo`, the same one that runs xtask when it is set.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    Command::new(program)
}

/// The command line of `cmd` as a person would type it, with the variables it sets.
pub fn describe(cmd: &Command) -> String {
    let mut words: Vec<String> = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    let program = Path::new(cmd.get_program());
    // Show `cargo`, not the absolute path of the toolchain's cargo.
    let program = match program.file_name() {
        Some(name) if name == "cargo" => name.to_string_lossy().into_owned(),
        _ => program.to_string_lossy().into_owned(),
    };
    words.push(program);
    words.extend(cmd.get_args().map(|arg| arg.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Prints `cmd`, runs it with inherited stdio and fails if it does not exit with 0.
pub fn run_step(cmd: &mut Command) -> Result {
    let line = describe(cmd);
    println!("==> {line}");
    let status = cmd
        .status()
        .map_err(|err| Error::new(format!("could not run `{line}`: {err}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::status(format!("`{line}` failed ({status})"), status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked() {
        assert_eq!(parse_port("9092").unwrap(), 9092);
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("x").is_err());
    }

    #[test]
    fn describe_shows_env_program_and_args() {
        let mut cmd = Command::new("/usr/local/bin/cargo");
        cmd.args(["test", "--workspace"]).env("A", "b");
        assert_eq!(describe(&cmd), "A=b cargo test --workspace");
    }

    #[test]
    fn failures_keep_the_exit_code() {
        let status = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
        assert_eq!(Error::status("x", status).code, 3);
        assert_eq!(Error::new("x").code, 1);
    }

    #[test]
    fn workspace_root_holds_the_library() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("xtask").join("Cargo.toml").is_file());
    }

    #[test]
    fn extra_args_are_refused() {
        assert!(dispatch(&["demo".into(), "x".into()]).is_err());
        assert!(dispatch(&["no-such-command".into()]).is_err());
    }
}
