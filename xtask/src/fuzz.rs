//! `cargo xtask fuzz`: the decoders' fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer).
//!
//! - `--seed` writes the well-formed seed inputs (`ferrokafka::fuzzing::seeds`) into
//!   `fuzz/corpus/<target>/`, the small committed corpus.
//! - Without it, each target (or the ones named) runs for `--runs N` executions (default 10 M)
//!   starting from the committed corpus; inputs it finds interesting go to
//!   `target/fuzz-corpus/<target>/` (not committed), crashes to `fuzz/artifacts/<target>/`.
//!   The summary prints each target's executions, speed and coverage.
//! - `--merge` then folds what the runs found into the committed corpus, minimised
//!   (libFuzzer `-merge=1`: only inputs that add coverage).
//!
//! Needs `cargo install cargo-fuzz`. libFuzzer needs nightly compiler flags; on a stable
//! toolchain the command sets `RUSTC_BOOTSTRAP=1` for the fuzz build only. Not part of CI
//! (CI replays the committed corpus through the same entry points in a unit test).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, describe, Error, Result};

pub const USAGE: &str = "\
usage: cargo xtask fuzz [--seed] [--runs N] [--merge] [TARGET ...]
  targets: response_frame, record_batch_{none,gzip,snappy,lz4,zstd}, consumer_protocol";

#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub seed: bool,
    pub merge: bool,
    pub runs: u64,
    pub targets: Vec<String>,
}

pub fn plan(args: &[String]) -> Result<Plan> {
    let mut plan = Plan {
        seed: false,
        merge: false,
        runs: 10_000_000,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" => plan.seed = true,
            "--merge" => plan.merge = true,
            "--runs" => {
                let n = it.next().and_then(|n| n.parse().ok());
                plan.runs =
                    n.ok_or_else(|| Error::new(format!("--runs needs a count\n{USAGE}")))?;
            }
            t if ferrokafka::fuzzing::TARGETS.contains(&t) => plan.targets.push(t.to_owned()),
            other => return Err(Error::new(format!("unknown argument `{other}`\n{USAGE}"))),
        }
    }
    if plan.targets.is_empty() {
        plan.targets = ferrokafka::fuzzing::TARGETS
            .iter()
            .map(|t| t.to_string())
            .collect();
    }
    Ok(plan)
}

/// `cargo fuzz run` for one target: release build with debug assertions (overflow checks
/// panic), no sanitizer (the crate forbids `unsafe`; ASan would only slow the runs).
pub fn command(root: &Path, target: &str, runs: u64) -> Command {
    let scratch = format!("../target/fuzz-corpus/{target}");
    let committed = format!("corpus/{target}");
    // libFuzzer adds what it finds to the first directory: the scratch one.
    fuzz_run(
        root,
        target,
        [&scratch, &committed],
        [&format!("-runs={runs}"), "-print_final_stats=1"],
    )
}

/// `cargo fuzz run TARGET DIRS.. -- LIBFUZZER_ARGS..` in `fuzz/`, as every run here builds it.
fn fuzz_run<'a>(
    root: &Path,
    target: &str,
    dirs: [&str; 2],
    libfuzzer: impl IntoIterator<Item = &'a str>,
) -> Command {
    let mut cmd = cargo();
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "-O", "-a", "--sanitizer", "none", target])
        .args(dirs)
        .arg("--")
        .args(libfuzzer)
        .current_dir(root.join("fuzz"));
    cmd
}

fn seed(root: &Path) -> Result {
    let mut n = 0;
    for (i, (target, data)) in ferrokafka::fuzzing::seeds().into_iter().enumerate() {
        let dir = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
        let path = dir.join(format!("seed-{i:03}"));
        std::fs::write(&path, data).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        n += 1;
    }
    println!("wrote {n} seed inputs under fuzz/corpus/");
    Ok(())
}

/// The value of libFuzzer's `stat::NAME:` line in its final statistics.
fn stat(output: &str, name: &str) -> Option<u64> {
    let key = format!("stat::{name}:");
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

/// The last `cov: N ft: M` figures libFuzzer printed.
fn coverage(output: &str) -> String {
    output
        .lines()
        .rev()
        .find_map(|l| {
            let at = l.find("cov: ")?;
            let rest = &l[at..];
            let end = rest.find(" corp").unwrap_or(rest.len());
            Some(rest[..end].to_owned())
        })
        .unwrap_or_default()
}

pub fn run(root: &Path, args: &[String]) -> Result {
    let plan = plan(args)?;
    if plan.seed {
        return seed(root);
    }
    let mut summary = Vec::new();
    for target in &plan.targets {
        std::fs::create_dir_all(root.join("target/fuzz-corpus").join(target))
            .map_err(|e| Error::new(e.to_string()))?;
        let mut cmd = command(root, target, plan.runs);
        let line = describe(&cmd);
        println!("==> {line}");
        let started = Instant::now();
        let out = cmd
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                Error::new(format!(
                    "could not run `{line}`: {e} (cargo install cargo-fuzz)"
                ))
            })?;
        let err = String::from_utf8_lossy(&out.stderr);
        let secs = started.elapsed().as_secs_f64();
        if !out.status.success() {
            eprintln!("{err}");
            return Err(Error::status(
                format!(
                    "{target}: the fuzzer failed ({}); the input is under fuzz/artifacts/{target}/",
                    out.status
                ),
                out.status,
            ));
        }
        let execs = stat(&err, "number_of_executed_units").unwrap_or(0);
        let per_sec = stat(&err, "average_exec_per_sec").unwrap_or(0);
        summary.push(format!(
            "{target:<22} {execs:>11} runs  {per_sec:>7}/s  {secs:>7.0} s  {}  0 crashes",
            coverage(&err)
        ));
        if plan.merge {
            // Into the committed corpus (first directory) what the scratch one adds.
            let (committed, scratch) = (
                format!("corpus/{target}"),
                format!("../target/fuzz-corpus/{target}"),
            );
            crate::run_step(&mut fuzz_run(
                root,
                target,
                [&committed, &scratch],
                ["-merge=1"],
            ))?;
        }
    }
    println!("\nsummary (cargo xtask fuzz --runs {}):", plan.runs);
    for line in summary {
        println!("  {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_target_runs_by_default_ten_million_times() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.runs, 10_000_000);
        assert_eq!(p.targets.len(), 7);
        assert_eq!(
            describe(&command(Path::new("/ws"), "response_frame", p.runs)),
            "RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a --sanitizer none response_frame \
             ../target/fuzz-corpus/response_frame corpus/response_frame -- -runs=10000000 \
             -print_final_stats=1"
        );
    }

    #[test]
    fn targets_and_options_are_parsed_and_unknown_ones_refused() {
        let p = plan(&strings(&["--runs", "5", "record_batch_lz4", "--merge"])).unwrap();
        assert_eq!((p.runs, p.merge, p.seed), (5, true, false));
        assert_eq!(p.targets, ["record_batch_lz4"]);
        assert!(plan(&strings(&["no_such_target"])).is_err());
        assert!(plan(&strings(&["--runs"])).is_err());
    }

    #[test]
    fn libfuzzer_statistics_are_read() {
        let out =
            "#1000 DONE   cov: 812 ft: 2301 corp: 410/30Kb lim: 4096 exec/s: 5000 rss: 60Mb\n\
                   stat::number_of_executed_units: 10000000\n\
                   stat::average_exec_per_sec:     52631\n";
        assert_eq!(stat(out, "number_of_executed_units"), Some(10_000_000));
        assert_eq!(stat(out, "average_exec_per_sec"), Some(52_631));
        assert_eq!(coverage(out), "cov: 812 ft: 2301");
    }
}
