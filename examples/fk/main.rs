//! `fk`: a kcat-class command-line tool built on ferrokafka's public API.
//!
//! ```text
//! cargo run --example fk -- --help
//! printf 'k1:v1\nk2:v2\n' | cargo run --example fk -- produce -b 127.0.0.1:9092 -t events -K :
//! cargo run --example fk -- consume -b 127.0.0.1:9092 -t events -o beginning -e -f '%k %s\n'
//! cargo run --example fk -- topics describe -b 127.0.0.1:9092 events
//! cargo run --example fk -- groups lag -b 127.0.0.1:9092 my-group
//! ```
//!
//! One module per concept:
//! - `usage`: the help text (the one place that documents every command and exit code);
//! - `cli`: the argument grammar shared by every command (`-b`, `-X`, `-F`) and the parsers
//!   of `produce` and `consume` (no clap: the grammar is small, and every error names the
//!   argument at fault);
//! - `produce`, `consume`: stdin lines to records, records to stdout;
//! - `format`: `consume -f` format strings and `-J` JSON records;
//! - `topics`, `groups`, `metadata`: the admin commands, each with its own parser;
//! - `table`: aligned tables with a header line, and the time parsing the admin commands
//!   share;
//! - this file: dispatch and exit codes.
//!
//! Exit codes: 0 success, 1 the operation failed (a record, the connection, or a broker error
//! for any one resource: every failed resource is printed), 2 a usage error (bad argument or
//! bad `-X` property).

use std::process::ExitCode;

mod cli;
mod consume;
mod format;
mod groups;
mod metadata;
mod produce;
mod table;
mod topics;
mod usage;

/// Exit code for a run that failed (records not delivered, broker unreachable, a resource
/// the broker refused).
const EXIT_FAILED: u8 = 1;
/// Exit code for a usage error: bad arguments, bad properties.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(message) => return usage_error(&message),
    };
    match command {
        cli::Command::Help => {
            print!("{}", usage::USAGE);
            ExitCode::SUCCESS
        }
        cli::Command::Produce(args) => runtime().block_on(produce::run(args)),
        cli::Command::Consume(args) => runtime().block_on(consume::run(args)),
        cli::Command::Topics(args) => runtime().block_on(topics::run(args)),
        cli::Command::Groups(args) => runtime().block_on(groups::run(args)),
        cli::Command::Metadata(args) => runtime().block_on(metadata::run(args)),
    }
}

/// Prints a usage error the one way every command does, and gives its exit code.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("fk: {message}\nRun `fk --help` for usage.");
    ExitCode::from(EXIT_USAGE)
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

/// The client, producer or consumer that `build()` gave, or, after saying why there is
/// none, the exit code: a bad `-X` key or value is a usage error, and the message names the
/// property.
fn started<T>(built: Result<T, ferrokafka::Error>, what: &str) -> Result<T, ExitCode> {
    built.map_err(|e| match e {
        ferrokafka::Error::Config(_) => usage_error(&e.to_string()),
        _ => {
            eprintln!("fk: cannot start the {what}: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    })
}

/// A client for the admin commands, from `-b`, `-X` and `-F`.
async fn admin_client(properties: &[(String, String)]) -> Result<ferrokafka::Client, ExitCode> {
    let built = ferrokafka::ClientBuilder::from_properties(with_client_id(properties))
        .build()
        .await;
    started(built, "client")
}

/// What an admin command ends with: how many resources failed (each already printed to
/// stderr), or an error that stopped the whole command.
type Outcome = Result<usize, String>;

/// Closes the client and turns an admin command's outcome into the exit code.
async fn finish(client: ferrokafka::Client, outcome: Outcome) -> ExitCode {
    client.close().await;
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_FAILED),
        Err(message) => {
            eprintln!("fk: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Prints one failed resource the way every admin command does: `fk: WHAT: ERROR`.
fn failed(what: impl std::fmt::Display, error: impl std::fmt::Display) {
    eprintln!("fk: {what}: {error}");
}
