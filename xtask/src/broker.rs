//! Launching Tansu: a free loopback port, the broker's command line, readiness, and a
//! guard that kills the process when it goes out of scope (also on error or panic).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{install, Error, Result};

/// How long a fresh broker gets to accept TCP connections (it needs ~10 ms).
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Port of `cargo xtask tansu` without an argument: Kafka's usual one.
pub const DEFAULT_FOREGROUND_PORT: u16 = 9092;

/// Variables Tansu reads as defaults for its flags, or that send it elsewhere (OTLP).
const TANSU_ENV: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// A loopback port that was free a moment ago: bind port 0, read it, drop the listener.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|err| Error::new(format!("cannot bind a loopback port: {err}")))?;
    let port = listener
        .local_addr()
        .map_err(|err| Error::new(format!("cannot read the bound port: {err}")))?
        .port();
    Ok(port)
}

/// `tansu broker ...` on 127.0.0.1:`port`, in-memory storage.
pub fn broker_command(binary: &Path, port: u16) -> Command {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(binary);
    // Both URLs are needed: the advertised one defaults to localhost:9092.
    cmd.arg("broker")
        .arg("--listener-url")
        .arg(&url)
        .arg("--advertised-listener-url")
        .arg(&url)
        .arg("--storage-engine")
        .arg("memory://tansu/")
        .stdin(Stdio::null());
    for var in TANSU_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// A running broker, killed and reaped on drop.
pub struct Broker {
    child: Child,
    port: u16,
    log: Option<PathBuf>,
}

impl Broker {
    /// Starts `tansu broker` on `port` with its stdout and stderr appended to `log`.
    pub fn spawn(binary: &Path, port: u16, log: &Path) -> Result<Broker> {
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir)
                .map_err(|err| Error::new(format!("cannot create {}: {err}", dir.display())))?;
        }
        let out = fs::File::create(log)
            .map_err(|err| Error::new(format!("cannot create {}: {err}", log.display())))?;
        let err_out = out
            .try_clone()
            .map_err(|err| Error::new(format!("cannot share {}: {err}", log.display())))?;
        let mut cmd = broker_command(binary, port);
        cmd.stdout(out).stderr(err_out);
        let child = cmd
            .spawn()
            .map_err(|err| Error::new(format!("cannot start {}: {err}", binary.display())))?;
        Ok(Broker {
            child,
            port,
            log: Some(log.to_path_buf()),
        })
    }

    /// Starts `tansu broker` on `port` writing to this terminal.
    pub fn spawn_inherited(binary: &Path, port: u16) -> Result<Broker> {
        let child = broker_command(binary, port)
            .spawn()
            .map_err(|err| Error::new(format!("cannot start {}: {err}", binary.display())))?;
        Ok(Broker {
            child,
            port,
            log: None,
        })
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until the port accepts TCP connections; fails if the process exits first or
    /// `timeout` passes, quoting the end of its log.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::new(format!(
                    "Tansu exited ({status}) before accepting connections on {addr}{}",
                    self.log_tail()
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "Tansu did not accept connections on {addr} within {timeout:?}{}",
                    self.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit by itself (foreground mode).
    pub fn wait(&mut self) -> Result<std::process::ExitStatus> {
        self.child
            .wait()
            .map_err(|err| Error::new(format!("cannot wait for Tansu: {err}")))
    }

    fn log_tail(&self) -> String {
        match &self.log {
            Some(log) => format!("\n--- end of {} ---\n{}", log.display(), tail(log, 4096)),
            None => String::new(),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The last `max` bytes of a file, as text (empty if it cannot be read).
pub fn tail(path: &Path, max: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `cargo xtask tansu [PORT]`: a broker in the foreground until Ctrl-C.
pub fn foreground(root: &Path, port: u16) -> Result {
    let binary = install::ensure(root)?;
    let mut broker = Broker::spawn_inherited(&binary, port)?;
    broker.wait_ready(READY_TIMEOUT)?;
    println!(
        "Tansu is running: bootstrap {} (in-memory storage, node id 111). Ctrl-C stops it.",
        broker.bootstrap()
    );
    // Ctrl-C reaches Tansu too (same process group), which then exits.
    let status = broker.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::status(format!("Tansu exited ({status})"), status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_can_be_bound_again() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn broker_command_sets_both_listener_urls() {
        let cmd = broker_command(Path::new("/bin/tansu"), 1234);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "broker",
                "--listener-url",
                "tcp://127.0.0.1:1234",
                "--advertised-listener-url",
                "tcp://127.0.0.1:1234",
                "--storage-engine",
                "memory://tansu/",
            ]
        );
    }

    #[test]
    fn wait_ready_reports_an_early_exit_with_the_log() {
        let dir = std::env::temp_dir().join(format!("xtask-broker-test-{}", std::process::id()));
        let log = dir.join("fake.log");
        // A "broker" that complains about its arguments on stderr and exits at once, never
        // listening (GNU ls does not know --listener-url).
        let fake = Path::new("ls");
        let port = free_port().unwrap();
        let mut broker = Broker::spawn(fake, port, &log).unwrap();
        let err = broker.wait_ready(Duration::from_secs(5)).unwrap_err();
        assert!(err.message.contains("exited"), "{}", err.message);
        assert!(err.message.contains("listener-url"), "{}", err.message);
        drop(broker);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn tail_keeps_the_end() {
        let dir = std::env::temp_dir().join(format!("xtask-tail-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.log");
        fs::write(&path, "0123456789").unwrap();
        assert_eq!(tail(&path, 4), "6789");
        assert_eq!(tail(&path, 100), "0123456789");
        assert_eq!(tail(&dir.join("missing"), 4), "");
        let _ = fs::remove_dir_all(&dir);
    }
}
