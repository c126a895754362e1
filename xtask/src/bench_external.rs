//! Builds the benchmark's external workers before `cargo xtask bench` runs: franz-go's Go
//! program (`bench/go/`, `go build` with modules from the Go module proxy) and the Java
//! client's `BenchWorker` (`bench/java/`, kafka-clients resolved by Maven, compiled by javac).
//!
//! Both land in `target/bench/`, where the bench looks for them (`bench/src/external.rs`), and
//! are rebuilt only when a source is newer than the output. Only the clients the run will use
//! are built, so `--clients ferrokafka,rdkafka` needs neither Go nor a JDK. Nothing downloaded
//! is committed: Go keeps modules in its module cache, Maven in its local repository.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kafka::{is_stale, maven_classpath, require_tool};

/// What `go`, `java`, `javac` and `mvn` are needed for here.
const WORKERS_NEED: &str = "to build the benchmark's external workers";
use crate::{run_step, Error, Result};

/// The external clients, by the names the bench's `--clients` uses.
pub const FRANZ_GO: &str = "franz-go";
pub const JAVA: &str = "java";

/// `target/bench`, where the workers are built.
pub fn out_dir(root: &Path) -> PathBuf {
    root.join("target").join("bench")
}

/// The external clients a bench command line will run: those named in `--clients`, or both
/// when it does not choose.
pub fn wanted(bench_args: &[String]) -> Vec<&'static str> {
    let chosen = bench_args
        .iter()
        .position(|a| a == "--clients")
        .and_then(|i| bench_args.get(i + 1));
    [FRANZ_GO, JAVA]
        .into_iter()
        .filter(|c| match chosen {
            Some(list) => list.split(',').any(|x| x.trim() == *c),
            None => true,
        })
        .collect()
}

/// Builds every external worker `bench_args` will run.
pub fn ensure(root: &Path, bench_args: &[String]) -> Result {
    for client in wanted(bench_args) {
        match client {
            FRANZ_GO => build_go(root)?,
            _ => build_java(root)?,
        }
    }
    Ok(())
}

fn sources(dir: &Path, extensions: &[&str], names: &[&str]) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir)
        .map_err(|err| Error::new(format!("cannot list {}: {err}", dir.display())))?;
    Ok(entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| extensions.iter().any(|e| x == *e))
                || p.file_name().is_some_and(|n| names.iter().any(|m| n == *m))
        })
        .collect())
}

/// The `go build` of `bench/go` into `target/bench/franzgo-bench`.
pub fn go_build(root: &Path) -> Command {
    let mut go = Command::new("go");
    go.args(["build", "-trimpath", "-o"])
        .arg(out_dir(root).join("franzgo-bench"))
        .arg(".")
        .current_dir(root.join("bench").join("go"));
    go
}

fn build_go(root: &Path) -> Result {
    let dir = root.join("bench").join("go");
    let binary = out_dir(root).join("franzgo-bench");
    if !is_stale(&binary, &sources(&dir, &["go"], &["go.mod", "go.sum"])?) {
        println!("franz-go worker is up to date at {}", binary.display());
        return Ok(());
    }
    require_tool(
        "go",
        &["version"],
        WORKERS_NEED,
        "Go 1.26 or later (https://go.dev/dl/) for the franz-go worker, or leave franz-go out \
         with --clients",
    )?;
    println!("Building the franz-go worker (modules from the Go module proxy)");
    run_step(&mut go_build(root))?;
    // Its latency histogram and schedule must mean what the Rust workers' do.
    println!("Checking the franz-go worker's latency histogram and schedule (go test)");
    run_step(&mut go_test(root))
}

/// The `go test` of `bench/go` (the latency mode's histogram and schedule).
pub fn go_test(root: &Path) -> Command {
    let mut go = Command::new("go");
    go.args(["test", "-count=1", "."])
        .current_dir(root.join("bench").join("go"));
    go
}

fn build_java(root: &Path) -> Result {
    let src = root.join("bench").join("java");
    let pom = src.join("pom.xml");
    let out = out_dir(root).join("java");
    fs::create_dir_all(&out)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", out.display())))?;
    let classpath = out.join("classpath.txt");
    let hint = "a JDK 17 or later (apt-get install openjdk-17-jdk-headless) and Maven (apt-get \
                install maven) for the Java worker, or leave java out with --clients";
    if is_stale(&classpath, std::slice::from_ref(&pom)) {
        require_tool("mvn", &["-v"], WORKERS_NEED, hint)?;
        println!("Resolving kafka-clients for the Java worker with Maven");
        maven_classpath(&pom, &classpath)?;
    }
    let classes = out.join("classes");
    let stamp = classes.join(".compiled");
    let mut inputs = sources(&src, &["java"], &[])?;
    inputs.push(classpath.clone());
    if !is_stale(&stamp, &inputs) {
        println!("Java worker is up to date in {}", classes.display());
        return Ok(());
    }
    require_tool("javac", &["-version"], WORKERS_NEED, hint)?;
    require_tool("java", &["-version"], WORKERS_NEED, hint)?;
    let deps = fs::read_to_string(&classpath)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", classpath.display())))?;
    let _ = fs::remove_dir_all(&classes);
    fs::create_dir_all(&classes)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", classes.display())))?;
    println!("Compiling the Java worker");
    let mut javac = Command::new("javac");
    javac
        .args(["-nowarn", "-d"])
        .arg(&classes)
        .arg("-cp")
        .arg(deps.trim())
        .args(
            inputs
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x == "java")),
        );
    run_step(&mut javac)?;
    // The latency mode's histogram and schedule must mean what the Rust workers' do: the
    // worker checks them itself (`BenchWorker selftest`) before it counts as built.
    println!("Checking the Java worker's latency histogram and schedule (selftest)");
    let mut selftest = Command::new("java");
    selftest
        .arg("-cp")
        .arg(format!("{}:{}", classes.display(), deps.trim()))
        .args(["BenchWorker", "selftest"]);
    run_step(&mut selftest)?;
    fs::write(&stamp, b"")
        .map_err(|err| Error::new(format!("cannot write {}: {err}", stamp.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{describe, workspace_root};

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_the_chosen_external_clients_are_built() {
        assert_eq!(wanted(&strings(&["produce", "--quick"])), [FRANZ_GO, JAVA]);
        assert_eq!(
            wanted(&strings(&["consume", "--clients", "rdkafka, java"])),
            [JAVA]
        );
        assert!(wanted(&strings(&["produce", "--clients", "ferrokafka,rdkafka"])).is_empty());
        assert_eq!(
            wanted(&strings(&["produce", "--clients", "franz-go"])),
            [FRANZ_GO]
        );
    }

    #[test]
    fn a_missing_tool_is_named_with_what_to_install() {
        let e = require_tool(
            "ferrokafka-no-such-tool",
            &[],
            WORKERS_NEED,
            "it from somewhere",
        )
        .unwrap_err();
        assert!(e.message.contains("`ferrokafka-no-such-tool`"));
        assert!(e.message.contains("install it from somewhere"));
        require_tool("cargo", &["--version"], WORKERS_NEED, "Rust").unwrap();
    }

    #[test]
    fn go_builds_into_target_bench() {
        assert_eq!(
            describe(&go_build(Path::new("/ws"))),
            "go build -trimpath -o /ws/target/bench/franzgo-bench ."
        );
        assert_eq!(describe(&go_test(Path::new("/ws"))), "go test -count=1 .");
    }

    #[test]
    fn the_java_worker_pins_the_client_the_tests_use() {
        let root = workspace_root();
        let version = |pom: &Path| {
            let text = fs::read_to_string(pom).unwrap();
            let start = text.find("<kafka.version>").unwrap() + "<kafka.version>".len();
            let end = text[start..].find('<').unwrap() + start;
            text[start..end].to_string()
        };
        assert_eq!(
            version(&root.join("bench").join("java").join("pom.xml")),
            version(&crate::kafka::pom(&root))
        );
        let sources = sources(&root.join("bench").join("go"), &["go"], &["go.mod"]).unwrap();
        assert!(sources.iter().any(|p| p.ends_with("main.go")));
        assert!(sources.iter().any(|p| p.ends_with("go.mod")));
    }
}
