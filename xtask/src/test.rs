//! `cargo xtask test`: formatting, lints and the whole test suite, failing fast.
//!
//! The suite's integration tests start Tansu themselves; this command makes sure the binary
//! is installed and tells them where it is through `FERROKAFKA_TANSU`.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{cargo, install, run_step, Error, Result};

/// The steps, in order. `extra` goes to `cargo test` (a filter, or `-- --nocapture`).
pub fn steps(tansu: &Path, extra: &[String]) -> Vec<Command> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);

    let mut test = cargo();
    test.args(["test", "--workspace"])
        .args(extra)
        .env(install::ENV_OVERRIDE, tansu);

    vec![fmt, clippy, test]
}

pub fn run(root: &Path, extra: &[String]) -> Result {
    let tansu = install::ensure(root)?;
    require_cargo_subcommand("fmt", "rustfmt")?;
    require_cargo_subcommand("clippy", "clippy")?;
    for mut step in steps(&tansu, extra) {
        step.current_dir(root);
        run_step(&mut step)?;
    }
    println!("xtask test: formatting, lints and tests all passed");
    Ok(())
}

/// Fails with an install hint when `cargo <sub>` is not available.
fn require_cargo_subcommand(sub: &str, component: &str) -> Result {
    let works = cargo()
        .args([sub, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if works {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`cargo {sub}` is not available: rustup component add {component}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe;

    #[test]
    fn steps_are_fmt_clippy_test_with_tansu_for_tests_only() {
        let lines: Vec<String> = steps(Path::new("/abs/tansu"), &[])
            .iter()
            .map(describe)
            .collect();
        assert_eq!(
            lines,
            [
                "cargo fmt --all -- --check",
                "cargo clippy --workspace --all-targets -- -D warnings",
                "FERROKAFKA_TANSU=/abs/tansu cargo test --workspace",
            ]
        );
    }

    #[test]
    fn extra_args_go_to_cargo_test() {
        let extra = vec!["harness".to_string(), "--".into(), "--nocapture".into()];
        let steps = steps(Path::new("/t"), &extra);
        assert_eq!(
            describe(&steps[2]),
            "FERROKAFKA_TANSU=/t cargo test --workspace harness -- --nocapture"
        );
    }
}
