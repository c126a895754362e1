//! Installs real Apache Kafka and the Java client from Maven Central, and compiles the Java
//! peer program the interop tests drive.
//!
//! `tests/kafka/pom.xml` pins the broker (`kafka_2.13`), the Java client and an SLF4J binding;
//! Maven resolves them into its local repository (so offline re-runs work) and writes the
//! classpath to `target/brokers/kafka-<version>/classpath.txt`. Nothing downloaded is
//! committed. Starting and stopping Kafka lives in `tests/common/kafka.rs`, shared with the
//! test harness.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use crate::{run_step, Error, Result};

#[path = "../../tests/common/kafka.rs"]
pub mod harness;

pub use harness::{KAFKA_HOME_ENV, KAFKA_VERSION};

/// The Maven project naming Kafka's artifacts.
pub fn pom(root: &Path) -> PathBuf {
    root.join("tests").join("kafka").join("pom.xml")
}

/// Sources of the Java peer program.
pub fn java_sources(root: &Path) -> PathBuf {
    root.join("tests").join("kafka").join("java")
}

/// Where the Java peer's classes go, next to the classpath.
pub fn peer_classes(home: &Path) -> PathBuf {
    home.join("peer")
}

/// The directory holding `classpath.txt` and the compiled peer, installing both when they
/// are missing or older than their sources. Needs `java`, `javac` and `mvn`.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    let home = harness::kafka_home(root);
    let pom = pom(root);
    check_pom_version(&pom)?;
    let classpath = home.join("classpath.txt");
    if is_stale(&classpath, std::slice::from_ref(&pom)) {
        require_tool(
            "java",
            &["-version"],
            KAFKA_NEEDS,
            "a JDK 17 or later (apt-get install openjdk-17-jdk-headless)",
        )?;
        require_tool("mvn", &["-v"], KAFKA_NEEDS, "Maven (apt-get install maven)")?;
        fs::create_dir_all(&home)
            .map_err(|err| Error::new(format!("cannot create {}: {err}", home.display())))?;
        println!("Installing Apache Kafka {KAFKA_VERSION} and the Java client with Maven");
        maven_classpath(&pom, &classpath)?;
    }
    println!(
        "Apache Kafka {KAFKA_VERSION} is installed at {}",
        home.display()
    );
    compile_peer(root, &home)?;
    Ok(home)
}

/// Compiles `tests/kafka/java/*.java` against the classpath when a source is newer than the
/// classes.
fn compile_peer(root: &Path, home: &Path) -> Result {
    let src = java_sources(root);
    let sources: Vec<PathBuf> = match fs::read_dir(&src) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "java"))
            .collect(),
        Err(_) => return Ok(()),
    };
    if sources.is_empty() {
        return Ok(());
    }
    let out = peer_classes(home);
    let stamp = out.join(".compiled");
    if !is_stale(&stamp, &sources) {
        return Ok(());
    }
    require_tool(
        "javac",
        &["-version"],
        KAFKA_NEEDS,
        "a JDK 17 or later (apt-get install openjdk-17-jdk-headless)",
    )?;
    let classpath = fs::read_to_string(home.join("classpath.txt"))
        .map_err(|err| Error::new(format!("cannot read the Kafka classpath: {err}")))?;
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", out.display())))?;
    let mut javac = Command::new("javac");
    javac
        .args(["-nowarn", "-d"])
        .arg(&out)
        .arg("-cp")
        .arg(classpath.trim())
        .args(&sources);
    run_step(&mut javac)?;
    fs::write(&stamp, b"")
        .map_err(|err| Error::new(format!("cannot write {}: {err}", stamp.display())))?;
    Ok(())
}

/// True when `target` is missing or older than any of `inputs`.
pub fn is_stale(target: &Path, inputs: &[PathBuf]) -> bool {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(target) else {
        return true;
    };
    inputs
        .iter()
        .any(|input| modified(input).unwrap_or(SystemTime::now()) > built)
}

/// The pom's `<kafka.version>` must be the version the harness looks for.
fn check_pom_version(pom: &Path) -> Result {
    let text = fs::read_to_string(pom)
        .map_err(|err| Error::new(format!("cannot read {}: {err}", pom.display())))?;
    let wanted = format!("<kafka.version>{KAFKA_VERSION}</kafka.version>");
    if text.contains(&wanted) {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{} does not pin {wanted}, the version tests/common/kafka.rs expects: change both",
            pom.display()
        )))
    }
}

/// What `java`, `javac` and `mvn` are needed for here.
const KAFKA_NEEDS: &str = "for real Apache Kafka and the Java peer";

/// `mvn dependency:build-classpath` of `pom` into `classpath`, written under another name
/// first so an interrupted run never leaves a partial list that looks installed.
pub fn maven_classpath(pom: &Path, classpath: &Path) -> Result {
    let partial = classpath.with_extension("txt.partial");
    let mut mvn = Command::new("mvn");
    mvn.args(["-q", "-B", "-f"])
        .arg(pom)
        .arg("dependency:build-classpath")
        .arg(format!("-Dmdep.outputFile={}", partial.display()));
    run_step(&mut mvn)?;
    fs::rename(&partial, classpath).map_err(|err| {
        Error::new(format!(
            "cannot move {} into place: {err}",
            partial.display()
        ))
    })
}

/// Fails, saying what it is `needed_for` and what to install, unless `program args` runs.
pub fn require_tool(program: &str, args: &[&str], needed_for: &str, install: &str) -> Result {
    let works = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`{program}` is needed {needed_for}: install {install}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace_root;

    #[test]
    fn the_pom_pins_the_version_the_harness_expects() {
        check_pom_version(&pom(&workspace_root())).unwrap();
    }

    #[test]
    fn a_missing_target_is_stale_and_a_fresh_one_is_not() {
        let dir = std::env::temp_dir().join(format!("xtask-kafka-stale-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in");
        let target = dir.join("out");
        fs::write(&input, b"x").unwrap();
        assert!(is_stale(&target, std::slice::from_ref(&input)));
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&target, b"y").unwrap();
        assert!(!is_stale(&target, std::slice::from_ref(&input)));
        let _ = fs::remove_dir_all(&dir);
    }
}
