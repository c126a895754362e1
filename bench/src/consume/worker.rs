//! The consume worker: one client reads one case's topic from the beginning, measures itself,
//! prints `RESULT`.

use std::time::{Duration, Instant};

use super::cases::{self, ConsumeCase, Settings};
use super::{ferro, rdk, rsk};
use crate::measure;

/// What one consume worker run is asked to do.
#[derive(Debug, Clone)]
pub struct Job {
    pub case: &'static ConsumeCase,
    pub bootstrap: String,
    pub topic: String,
    /// Records to read (the whole topic).
    pub records: u64,
    pub settings: Settings,
    /// How long the application waits after assigning before it reads (`--stall-ms`): the
    /// prefetch buffer fills meanwhile, which is the worst case for memory.
    pub stall: Duration,
}

/// What a client reports after reading every record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Consumed {
    pub records: u64,
    /// Key + value bytes of the records read.
    pub bytes: u64,
    /// From the first record received to the last.
    pub elapsed: Duration,
    /// Process CPU (user, sys) in microseconds and peak RSS in KiB, taken at the last record
    /// (the clients keep polling the broker after it; that is not the case's work).
    pub cpu_at_end: (u64, u64),
    pub peak_rss_kib: u64,
}

/// Counts records and bytes; the clients call `record` for every record they receive.
#[derive(Debug)]
pub struct Counter {
    want: u64,
    records: u64,
    bytes: u64,
    first: Option<Instant>,
}

impl Counter {
    pub fn new(want: u64) -> Counter {
        Counter {
            want,
            records: 0,
            bytes: 0,
            first: None,
        }
    }

    /// Counts one record of `bytes` key + value bytes.
    #[inline]
    pub fn record(&mut self, bytes: usize) {
        if self.first.is_none() {
            self.first = Some(Instant::now());
        }
        self.records += 1;
        self.bytes += bytes as u64;
    }

    pub fn remaining(&self) -> u64 {
        self.want.saturating_sub(self.records)
    }

    pub fn done(&self) -> bool {
        self.records >= self.want
    }

    /// The result, measured now (call right after the last record).
    pub fn finish(self) -> Consumed {
        let elapsed = self.first.map_or(Duration::ZERO, |t| t.elapsed());
        Consumed {
            records: self.records,
            bytes: self.bytes,
            elapsed,
            cpu_at_end: measure::cpu_micros(),
            peak_rss_kib: measure::peak_rss_kib(),
        }
    }
}

/// `--consume-worker client=.. case=.. bootstrap=.. topic=.. records=.. [fetch_buffer=..]
/// [stall_ms=..]`
pub fn worker_main(args: &[String]) -> Result<(), String> {
    let kv = crate::clients::worker_args(args)?;
    let get = |k: &str| {
        kv.get(k)
            .copied()
            .ok_or_else(|| format!("worker needs {k}=.."))
    };
    let client = get("client")?;
    let case = cases::find(get("case")?).ok_or("unknown consume case")?;
    let records: u64 = get("records")?
        .parse()
        .map_err(|e| format!("records: {e}"))?;
    let budget = match kv.get("fetch_buffer") {
        Some(v) => v.parse().map_err(|e| format!("fetch_buffer: {e}"))?,
        None => cases::FETCH_BUFFER_BYTES,
    };
    let stall_ms: u64 = match kv.get("stall_ms") {
        Some(v) => v.parse().map_err(|e| format!("stall_ms: {e}"))?,
        None => 0,
    };
    let job = Job {
        case,
        bootstrap: get("bootstrap")?.to_string(),
        topic: get("topic")?.to_string(),
        records,
        settings: Settings::with_budget(budget),
        stall: Duration::from_millis(stall_ms),
    };
    let (user0, sys0) = measure::cpu_micros();
    let consumed = match client {
        "ferrokafka" => ferro::run(&job),
        "rdkafka" => rdk::run(&job),
        "rskafka" => rsk::run(&job),
        other => return Err(format!("unknown client `{other}`")),
    }?;
    let (user1, sys1) = consumed.cpu_at_end;
    let cpu = (user1 - user0) + (sys1 - sys0);
    println!(
        "RESULT client={client} case={} records={} failed=0 bytes={} secs={:.4} \
         cpu_us_per_record={:.4} user_s={:.3} sys_s={:.3} peak_rss_mb={:.1}",
        case.name,
        consumed.records,
        consumed.bytes,
        consumed.elapsed.as_secs_f64(),
        cpu as f64 / consumed.records.max(1) as f64,
        (user1 - user0) as f64 / 1e6,
        (sys1 - sys0) as f64 / 1e6,
        consumed.peak_rss_kib as f64 / 1024.0,
    );
    if consumed.records != records {
        return Err(format!(
            "{client}: read {} of {records} records",
            consumed.records
        ));
    }
    Ok(())
}

/// A multi-threaded tokio runtime with one worker per core, as `#[tokio::main]` builds (the
/// produce bench's clients use the same).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_stops_at_the_wanted_count() {
        let mut c = Counter::new(3);
        assert_eq!(c.remaining(), 3);
        c.record(100);
        c.record(100);
        assert!(!c.done());
        c.record(50);
        assert!(c.done());
        assert_eq!(c.remaining(), 0);
        let r = c.finish();
        assert_eq!((r.records, r.bytes), (3, 250));
        assert!(r.peak_rss_kib > 0);
    }
}
