//! A test helper for tests/processing_kafka.rs: one consumer process running
//! `Consumer::processor` that logs every handler start and end, so the test can kill it
//! with SIGKILL at random points, restart it, and check what ran (and ran again).
//!
//! ```text
//! process_worker BOOTSTRAP TOPIC GROUP LOG [--in-flight N] [--max-latency-ms M]
//!                [--commit-ms C] [--max-uncommitted U] [--instance ID] [--no-done-offsets]
//! ```
//!
//! Each handler call appends `S <partition> <offset> <unix-ns>` when it starts and
//! `E <partition> <offset> <unix-ns>` when it ends (after a random 0..M ms sleep) to LOG,
//! one `write` per line with no buffer in the process, so a SIGKILL loses none of the lines
//! written before it. An `E` line is written before the record counts as done, so every
//! committed record has one. Closing stdin stops the processor (drain, commit) and the
//! process exits 0.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrokafka::{ConsumerBuilder, OffsetReset, ProcessOptions, ProcessOrdering};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A pseudo-random latency per record and process (splitmix64 of the coordinates).
fn latency(partition: i32, offset: i64, nonce: u64, max_ms: u64) -> Duration {
    let mut z = (partition as u64) << 48 ^ offset as u64 ^ nonce;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    Duration::from_micros(z % (max_ms * 1000 + 1))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: process_worker BOOTSTRAP TOPIC GROUP LOG [options]");
        std::process::exit(2);
    }
    let (bootstrap, topic, group, log_path) = (&args[0], &args[1], &args[2], &args[3]);
    let mut in_flight = 256usize;
    let mut max_latency_ms = 20u64;
    let mut commit_ms = 0u64;
    let mut instance = None;
    let mut done_offsets = true;
    let mut max_uncommitted = None;
    let mut rest = args[4..].iter();
    while let Some(a) = rest.next() {
        let mut value = || rest.next().expect("option needs a value").clone();
        match a.as_str() {
            "--in-flight" => in_flight = value().parse().unwrap(),
            "--max-latency-ms" => max_latency_ms = value().parse().unwrap(),
            "--commit-ms" => commit_ms = value().parse().unwrap(),
            "--instance" => instance = Some(value()),
            "--max-uncommitted" => max_uncommitted = Some(value().parse().unwrap()),
            "--no-done-offsets" => done_offsets = false,
            other => panic!("unknown option {other}"),
        }
    }
    let log: Arc<Mutex<File>> = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap(),
    ));
    let mut builder = ConsumerBuilder::from_properties([("bootstrap.servers", bootstrap)])
        .group_id(group.clone())
        .auto_commit(false)
        .offset_reset(OffsetReset::Earliest)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500");
    if let Some(id) = instance {
        builder = builder.group_instance_id(id);
    }
    let consumer = builder.build().await.unwrap();
    consumer.subscribe(&[topic.as_str()]).await.unwrap();
    let nonce = now_ns() as u64;
    let mut options = ProcessOptions::new()
        .ordering(ProcessOrdering::PerKey)
        .max_in_flight(in_flight)
        .commit_interval(Duration::from_millis(commit_ms))
        .store_done_offsets(done_offsets);
    if let Some(n) = max_uncommitted {
        options = options.max_uncommitted(n);
    }
    let handler_log = log.clone();
    let processor = consumer.processor(options, move |record| {
        let log = handler_log.clone();
        async move {
            let line = format!("S {} {} {}\n", record.partition, record.offset, now_ns());
            log.lock().unwrap().write_all(line.as_bytes()).unwrap();
            tokio::time::sleep(latency(
                record.partition,
                record.offset,
                nonce,
                max_latency_ms,
            ))
            .await;
            let line = format!("E {} {} {}\n", record.partition, record.offset, now_ns());
            log.lock().unwrap().write_all(line.as_bytes()).unwrap();
            Ok::<(), std::convert::Infallible>(())
        }
    });
    let handle = processor.handle();
    std::thread::spawn(move || {
        // EOF (or anything) on stdin: stop gracefully.
        let mut buf = [0u8; 1];
        let _ = std::io::stdin().read(&mut buf);
        handle.stop();
    });
    println!("ready");
    processor.run().await.unwrap();
    consumer.close().await.unwrap();
    println!("stopped");
}
