//! Produce benchmark: ferrokafka, rdkafka (librdkafka) and rskafka against the same broker.
//!
//! ```text
//! ferrokafka-bench produce [--brokers HOST:PORT | --kafka] [--tansu PATH] [--no-mock]
//!                          [--no-tansu] [--only CASE,..] [--clients NAME,..] [--quick] [--repeat N]
//!                          [--wrap 'CMD ARGS'] [--log-dir DIR]
//! ```
//!
//! The parent process starts the brokers (librdkafka's mock cluster in-process, Tansu as a
//! child process, one real Apache Kafka node with `--kafka`, or an external cluster), creates one fresh topic per run, and re-executes
//! itself as a **worker** per (broker, case, client):
//! `ferrokafka-bench --worker client=.. case=.. bootstrap=.. topic=.. records=..`. The worker
//! produces, waits for every acknowledgement and prints one `RESULT ...` line; its CPU time
//! (user+sys of the whole process) and peak RSS therefore belong to that client alone. The
//! mock cluster's threads run in the parent, whose CPU during a run is reported as the
//! broker's.
//!
//! `cargo xtask bench produce` builds this in release mode and runs it.
//!
//! `ferrokafka-bench consume [...]` (`cargo xtask bench consume`) is the consume benchmark:
//! a topic per case filled once on a fresh Tansu, then read in full by each client in its own
//! worker process (`--consume-worker ...`); see `consume/mod.rs`.
//!
//! `ferrokafka-bench latency [...]` (`cargo xtask bench latency`) measures produce and
//! end-to-end latency at fixed rates (`latency/mod.rs`); `ferrokafka-bench chart --out DIR
//! FILE...` draws SVG charts of the `--results FILE` every bench can write (`chart.rs`).

mod cases;
mod chart;
mod clients;
mod common;
mod connect;
mod consume;
mod external;
mod kafka;
mod latency;
mod measure;
mod parent;
mod payload;
mod results;
mod target;

use std::process::ExitCode;

fn usage() -> String {
    [
        parent::usage(),
        consume::usage(),
        latency::usage(),
        chart::usage(),
    ]
    .join("\n\n")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--worker") => clients::worker_main(&args[1..]),
        Some("produce") => parent::Options::parse(&args[1..]).and_then(parent::run),
        Some("--consume-worker") => consume::worker::worker_main(&args[1..]),
        Some("consume") => consume::Options::parse(&args[1..]).and_then(consume::run),
        Some("--latency-worker") => latency::worker::worker_main(&args[1..]),
        Some("latency") => latency::Options::parse(&args[1..]).and_then(latency::run),
        Some("chart") => chart::Options::parse(&args[1..]).and_then(chart::run),
        Some("help" | "-h" | "--help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => {
            eprintln!("{}", usage());
            Err("expected a command: produce, consume, latency or chart".to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrokafka-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
