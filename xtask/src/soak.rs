//! `cargo xtask soak --minutes N [--seed S]`: builds the `soak` binary of the `bench/` member
//! in release mode and runs it: an idempotent producer and a two-member consumer group against
//! librdkafka's in-process mock cluster while brokers are bounced and leaders moved, then a
//! loss and duplicate check (see `bench/src/bin/soak.rs`). Needs no Tansu. Not part of CI.

use std::path::Path;
use std::process::Command;

use crate::bench::PACKAGE;
use crate::{cargo, run_step, Error, Result};

/// The soak binary in the bench package.
pub const BIN: &str = "soak";

pub const USAGE: &str = "\
usage: cargo xtask soak --minutes N [--seed S] [--partitions P] [--rate RECORDS_PER_S]";

/// Checks that the run has a duration (the binary validates the values); everything is passed
/// through.
pub fn plan(args: &[String]) -> Result<Vec<String>> {
    if !args.iter().any(|a| a == "--minutes") {
        return Err(Error::new(format!("--minutes is required\n{USAGE}")));
    }
    Ok(args.to_vec())
}

/// `cargo run --release -p ferrokafka-bench --bin soak -- <args>` in the workspace root.
pub fn command(root: &Path, args: &[String]) -> Command {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--quiet",
        "--package",
        PACKAGE,
        "--bin",
        BIN,
        "--",
    ])
    .args(args)
    .current_dir(root);
    cmd
}

pub fn run(root: &Path, args: &[String]) -> Result {
    let args = plan(args)?;
    run_step(&mut command(root, &args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_pass_through_to_the_soak_binary() {
        let args = plan(&strings(&["--minutes", "10", "--seed", "7"])).unwrap();
        assert_eq!(
            describe(&command(Path::new("/ws"), &args)),
            "cargo run --release --quiet --package ferrokafka-bench --bin soak -- --minutes 10 \
             --seed 7"
        );
    }

    #[test]
    fn minutes_are_required() {
        assert!(plan(&[]).is_err());
        assert!(plan(&strings(&["--seed", "7"])).is_err());
    }
}
