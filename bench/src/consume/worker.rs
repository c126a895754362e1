//! The consume worker: one client reads one case's topic from the beginning, measures itself,
//! prints `RESULT`.

use std::time::{Duration, Instant};

use super::cases::{self, ConsumeCase, Settings, CASES};
use super::{ferro, rdk, rsk};
use crate::common::{self, Measured, WorkerArgs};
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

    /// The result, measured now: call right after the last record (the clients keep polling
    /// the broker after it; that is not the case's work). The time runs from the first record
    /// received to the last.
    pub fn finish(self) -> Measured {
        let elapsed = self.first.map_or(Duration::ZERO, |t| t.elapsed());
        Measured::now(self.records, 0, self.bytes, elapsed)
    }
}

/// `--consume-worker client=.. case=.. bootstrap=.. topic=.. records=.. [fetch_buffer=..]
/// [stall_ms=..]`
pub fn worker_main(args: &[String]) -> Result<(), String> {
    let kv = WorkerArgs::parse(args)?;
    let client = kv.get("client")?;
    let case = common::find(CASES, kv.get("case")?).ok_or("unknown consume case")?;
    let records: u64 = kv.parse_value("records")?;
    let job = Job {
        case,
        settings: Settings::with_budget(kv.parse_or("fetch_buffer", cases::FETCH_BUFFER_BYTES)?),
        stall: Duration::from_millis(kv.parse_or("stall_ms", 0)?),
        bootstrap: kv.get("bootstrap")?.to_string(),
        topic: kv.get("topic")?.to_string(),
        records,
    };
    let cpu_start = measure::cpu_micros();
    let consumed = match client {
        "ferrokafka" => ferro::run(&job),
        "rdkafka" => rdk::run(&job),
        "rskafka" => rsk::run(&job),
        #[cfg(feature = "peers")]
        "krafka" => super::krafka::run(&job),
        #[cfg(feature = "peers")]
        "confluent-kafka" => super::confluent::run(&job),
        other => return Err(format!("unknown client `{other}`")),
    }?;
    consumed.print_result(client, case.name, cpu_start);
    if consumed.records != records {
        return Err(format!(
            "{client}: read {} of {records} records",
            consumed.records
        ));
    }
    Ok(())
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
