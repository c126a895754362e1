//! What concurrent processing (`Consumer::processor`) costs over a plain `recv_batch` loop:
//! records/s and CPU per record with a handler that does nothing, so only the machinery
//! (queues, a task per record, offset trackers, commits) is measured.
//!
//! ```text
//! cargo run --release -p ferrokafka-bench --bin process_overhead -- [--bootstrap HOST:PORT]
//!     [--records N] [--partitions P] [--repeat R]
//! ```
//!
//! Without `--bootstrap` it starts Tansu (`$FERROKAFKA_TANSU`, else
//! `target/brokers/tansu`) with in-memory storage on a free port. One topic of N records
//! (default 500 000; 100-byte values, 1 000 keys) over P partitions (default 6) is read
//! completely by a fresh consumer group in each mode, R times (default 3; the median run is
//! reported):
//!
//! - `recv_batch`: `recv_batch(1000)` in a loop, nothing else (no commits);
//! - `process per-key` / `process unordered`: a processor, 256 in flight, no-op handler,
//!   commits every 500 ms (the defaults otherwise).
//!
//! CPU is this process's user + system time (getrusage), so the broker is not counted.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokafka::{
    Client, Consumer, NewTopic, OffsetReset, ProcessOptions, ProcessOrdering, Producer, Record,
};

fn cpu_micros() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A Tansu child, killed on drop.
struct Tansu(Child);

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tansu() -> (Tansu, String) {
    let binary = std::env::var_os("FERROKAFKA_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/brokers/tansu")
        });
    assert!(
        binary.is_file(),
        "no Tansu at {} (cargo xtask install-brokers, or set FERROKAFKA_TANSU)",
        binary.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(binary)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start Tansu");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "Tansu did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Tansu(child), format!("127.0.0.1:{port}"))
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    RecvBatch,
    Process(ProcessOrdering),
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::RecvBatch => "recv_batch(1000) loop",
            Mode::Process(ProcessOrdering::PerKey) => "processor, per-key, 256 in flight",
            Mode::Process(_) => "processor, unordered, 256 in flight",
        }
    }
}

/// Reads the whole topic once in `mode`; returns (seconds, CPU µs).
async fn run(client: &Client, topic: &str, records: u64, mode: Mode, n: usize) -> (f64, u64) {
    let consumer = Consumer::builder(client)
        .group_id(format!("process-overhead-{n}-{}", std::process::id()))
        .offset_reset(OffsetReset::Earliest)
        .auto_commit(false)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[topic]).await.unwrap();
    // The clock starts at the first record, so joining the group is not counted.
    let (cpu0, t0);
    match mode {
        Mode::RecvBatch => {
            let first = consumer.recv_batch(1000).await.unwrap();
            cpu0 = cpu_micros();
            t0 = Instant::now();
            let mut seen = first.len() as u64;
            while seen < records {
                seen += consumer.recv_batch(1000).await.unwrap().len() as u64;
            }
        }
        Mode::Process(ordering) => {
            let count = Arc::new(AtomicU64::new(0));
            let started = Arc::new(std::sync::Mutex::new(None));
            let processor = consumer.processor(
                ProcessOptions::new().ordering(ordering).max_in_flight(256),
                {
                    let (count, started) = (count.clone(), started.clone());
                    move |_r| {
                        let (count, started) = (count.clone(), started.clone());
                        async move {
                            if count.fetch_add(1, Ordering::Relaxed) == 0 {
                                *started.lock().unwrap() = Some((cpu_micros(), Instant::now()));
                            }
                            Ok::<(), std::convert::Infallible>(())
                        }
                    }
                },
            );
            let handle = processor.handle();
            let watcher = tokio::spawn(async move {
                while count.load(Ordering::Relaxed) < records {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                handle.stop();
            });
            processor.run().await.unwrap();
            watcher.await.unwrap();
            (cpu0, t0) = started.lock().unwrap().unwrap();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_micros() - cpu0;
    consumer.close().await.unwrap();
    (secs, cpu)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let records: u64 = opt("--records").map_or(500_000, |v| v.parse().unwrap());
    let partitions: i32 = opt("--partitions").map_or(6, |v| v.parse().unwrap());
    let repeat: usize = opt("--repeat").map_or(3, |v| v.parse().unwrap());
    let (_tansu, bootstrap) = match opt("--bootstrap") {
        Some(b) => (None, b),
        None => {
            let (t, b) = start_tansu();
            (Some(t), b)
        }
    };
    let client = Client::builder()
        .bootstrap_servers(&bootstrap)
        .build()
        .await
        .unwrap();
    let topic = format!("process-overhead-{}", std::process::id());
    client
        .admin()
        .create_topics(&[NewTopic::new(&topic, partitions, 1)])
        .await
        .unwrap();
    let producer = Producer::builder(&client).build().await.unwrap();
    let value = vec![b'x'; 100];
    let mut pending = Vec::new();
    for i in 0..records {
        let r = Record::new(&topic)
            .key(format!("key-{}", i % 1000))
            .value(value.clone());
        pending.push(producer.send(r).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    println!("{records} records of 100 B over {partitions} partitions at {bootstrap}");
    println!("| mode | records/s | CPU µs/record |\n|---|---:|---:|");
    let mut n = 0;
    for mode in [
        Mode::RecvBatch,
        Mode::Process(ProcessOrdering::PerKey),
        Mode::Process(ProcessOrdering::Unordered),
    ] {
        let mut runs = Vec::new();
        for _ in 0..repeat {
            n += 1;
            runs.push(run(&client, &topic, records, mode, n).await);
        }
        runs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let (secs, cpu) = runs[runs.len() / 2];
        println!(
            "| {} | {:.0} | {:.2} |",
            mode.name(),
            records as f64 / secs,
            cpu as f64 / records as f64
        );
    }
    client.close().await;
}
