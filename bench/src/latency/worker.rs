//! The latency worker: one client produces at a fixed rate while a consumer of the same
//! library reads the topic, both in this process, and it prints one `RESULT` line with the
//! percentiles.
//!
//! Every latency runs from a record's **scheduled** send time, not from when the client
//! accepted it: a client that blocks or falls behind delays the records after it, and
//! measuring from the actual send would hide that ("coordinated omission"). The scheduled
//! time, in nanoseconds since the worker's [`Clock`] started, is the first 8 bytes of the
//! value, so the consumer reads it back with no clock of its own.
//!
//! One plain thread, the generator, sleeps until each record's time and hands it to the
//! client; for the async clients it enters their tokio runtime for the send. The same
//! generator drives every client, so its own timing error (a sleep overshoots by tens of
//! µs; the timer slack is lowered to 1 µs) is the same for all of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::histogram::Histogram;
use super::{ferro, rdk, rsk};
use crate::common::{Measured, WorkerArgs};
use crate::measure;
use crate::payload::Payload;

/// Value size of every record (the first 8 bytes are the scheduled time).
pub const VALUE_SIZE: usize = 100;
/// How long, after the last acknowledgement, the consumer may take to deliver the rest.
const DRAIN: Duration = Duration::from_secs(10);

/// Nanoseconds since the worker started; shared by the producer and the consumer.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn nanos(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// When each record is due: `rate` records per second from `offset` ns on, evenly spaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub rate: u64,
    /// Records in the warm-up, not measured.
    pub warmup: u64,
    /// Records measured after the warm-up.
    pub measured: u64,
    /// Clock time of record 0, ns.
    pub offset: u64,
}

impl Schedule {
    pub fn new(rate: u64, warmup: Duration, measured: Duration, offset: u64) -> Schedule {
        let records = |d: Duration| (d.as_secs_f64() * rate as f64).round() as u64;
        Schedule {
            rate: rate.max(1),
            warmup: records(warmup),
            measured: records(measured).max(1),
            offset,
        }
    }

    pub fn total(&self) -> u64 {
        self.warmup + self.measured
    }

    /// The scheduled time of record `i`, ns on the worker's clock. Computed from `i` rather
    /// than by adding an interval, so rounding never accumulates (1e9 / 3 ns is not whole).
    pub fn due(&self, i: u64) -> u64 {
        self.offset + (i as u128 * 1_000_000_000 / self.rate as u128) as u64
    }

    /// Scheduled times at or after this are measured; before it, warm-up.
    pub fn measured_from(&self) -> u64 {
        self.due(self.warmup)
    }
}

/// A record's value: its scheduled time, then filler from the shared payload pool.
pub fn stamp(payload: &Payload, i: u64, due: u64) -> Vec<u8> {
    let mut value = Vec::with_capacity(VALUE_SIZE);
    value.extend_from_slice(&due.to_le_bytes());
    value.extend_from_slice(&payload.slice(i)[8..]);
    value
}

/// The scheduled time a value carries; None if it is too short (not one of ours).
pub fn read_stamp(value: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(value.get(..8)?.try_into().ok()?))
}

/// What the producer and consumer sides count, from any thread.
pub struct Stats {
    pub clock: Clock,
    pub measured_from: u64,
    /// Scheduled send to acknowledgement, measured records only.
    pub ack: Histogram,
    /// Scheduled send to receipt by the consumer, measured records only.
    pub e2e: Histogram,
    /// Every record acknowledged (warm-up too) and every one that failed.
    pub settled: AtomicU64,
    pub failed: AtomicU64,
    /// Clock time of the latest acknowledgement of a measured record, ns.
    pub last_ack: AtomicU64,
    /// How late the generator handed a record to the client at worst, ns.
    pub max_lag: AtomicU64,
}

impl Stats {
    pub fn new(clock: Clock, schedule: &Schedule) -> Stats {
        Stats {
            clock,
            measured_from: schedule.measured_from(),
            ack: Histogram::default(),
            e2e: Histogram::default(),
            settled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_ack: AtomicU64::new(0),
            max_lag: AtomicU64::new(0),
        }
    }

    /// The client reports the outcome of the record scheduled at `due`.
    pub fn acked(&self, due: u64, ok: bool) {
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        } else if due >= self.measured_from {
            let now = self.clock.nanos();
            self.ack.record(now.saturating_sub(due) / 1000);
            self.last_ack.fetch_max(now, Ordering::Relaxed);
        }
        self.settled.fetch_add(1, Ordering::Relaxed);
    }

    /// The consumer got a record whose value is `value`.
    pub fn received(&self, value: Option<&[u8]>) {
        if let Some(due) = value.and_then(read_stamp) {
            if due >= self.measured_from {
                self.e2e
                    .record(self.clock.nanos().saturating_sub(due) / 1000);
            }
        }
    }
}

/// Runs the schedule on this thread: waits for each record's time and calls `send(i, due)`;
/// when behind, sends at once (the lateness then shows in every latency). Records the worst
/// lateness at hand-over in `stats.max_lag`.
pub fn generate(schedule: &Schedule, stats: &Stats, mut send: impl FnMut(u64, u64)) {
    lower_timer_slack();
    for i in 0..schedule.total() {
        let due = schedule.due(i);
        let now = stats.clock.nanos();
        if now < due {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        // Lateness at hand-over: behind the schedule, or a sleep that overshot.
        let late = stats.clock.nanos().saturating_sub(due);
        stats.max_lag.fetch_max(late, Ordering::Relaxed);
        send(i, due);
    }
}

/// Linux lets a sleep overshoot by the thread's timer slack, 50 µs by default: 5 records at
/// 100 k/s. 1 µs makes the generator's own error small against what is measured.
fn lower_timer_slack() {
    let slack_ns: libc::c_ulong = 1;
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, slack_ns);
    }
}

/// Waits until `done()` or `timeout`; false on timeout.
pub fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// What a client run is asked to do.
#[derive(Debug, Clone)]
pub struct Job {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub schedule: Schedule,
    pub payload: Payload,
}

impl Job {
    /// After the producer's last record: waits for every acknowledgement (up to `timeout`)
    /// and then for the consumer to have received every measured record (up to [`DRAIN`]).
    pub fn settle(&self, stats: &Stats, timeout: Duration) -> Result<(), String> {
        let total = self.schedule.total();
        if !wait_until(timeout, || stats.settled.load(Ordering::Relaxed) >= total) {
            return Err(format!(
                "{} of {total} records settled after {timeout:?}",
                stats.settled.load(Ordering::Relaxed)
            ));
        }
        let acked = stats.ack.count();
        wait_until(DRAIN, || stats.e2e.count() >= acked);
        Ok(())
    }
}

/// `--latency-worker client=.. bootstrap=.. topic=.. partitions=.. rate=.. warmup_ms=..
/// measure_ms=..`
pub fn worker_main(args: &[String]) -> Result<(), String> {
    let kv = WorkerArgs::parse(args)?;
    let client = kv.get("client")?;
    let rate: u64 = kv.parse_value("rate")?;
    let clock = Clock::start();
    // Record 0 is due 0.5 s from now: time to connect before the schedule starts (the
    // warm-up absorbs the rest).
    let schedule = Schedule::new(
        rate,
        Duration::from_millis(kv.parse_value("warmup_ms")?),
        Duration::from_millis(kv.parse_value("measure_ms")?),
        500_000_000,
    );
    let job = Job {
        bootstrap: kv.get("bootstrap")?.to_string(),
        topic: kv.get("topic")?.to_string(),
        partitions: kv.parse_value("partitions")?,
        schedule,
        payload: Payload::new(VALUE_SIZE),
    };
    let stats = Arc::new(Stats::new(clock, &schedule));
    let cpu_start = measure::cpu_micros();
    match client {
        "ferrokafka" => ferro::run(&job, &stats),
        "rdkafka" => rdk::run(&job, &stats),
        "rskafka" => rsk::run(&job, &stats),
        #[cfg(feature = "peers")]
        "krafka" => super::krafka::run(&job, &stats),
        #[cfg(feature = "peers")]
        "confluent-kafka" => super::confluent::run(&job, &stats),
        other => return Err(format!("unknown client `{other}` (no latency worker)")),
    }?;
    report(client, &job, &stats, cpu_start);
    let failed = stats.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{client}: {failed} records failed"));
    }
    Ok(())
}

/// Prints the `RESULT` line: the shared fields (`records` acknowledged and measured, `secs`
/// from the first measured record's scheduled time to the last acknowledgement, so
/// records / secs is the achieved rate) and the percentiles in µs.
fn report(client: &str, job: &Job, stats: &Stats, cpu_start: (u64, u64)) {
    let acked = stats.ack.count();
    let span = stats
        .last_ack
        .load(Ordering::Relaxed)
        .saturating_sub(stats.measured_from);
    let measured = Measured::now(
        acked,
        stats.failed.load(Ordering::Relaxed),
        acked * VALUE_SIZE as u64,
        Duration::from_nanos(span),
    );
    let (user0, sys0) = cpu_start;
    let (user1, sys1) = measured.cpu_at_end;
    let cpu = (user1 - user0) + (sys1 - sys0);
    let [a50, a99, a999, amax] = stats.ack.summary();
    let [e50, e99, e999, emax] = stats.e2e.summary();
    println!(
        "RESULT client={client} case={}/s records={acked} failed={} bytes={} secs={:.4} \
         cpu_us_per_record={:.4} peak_rss_mb={:.1} ack_p50_us={a50} ack_p99_us={a99} \
         ack_p999_us={a999} ack_max_us={amax} e2e_p50_us={e50} e2e_p99_us={e99} \
         e2e_p999_us={e999} e2e_max_us={emax} e2e_records={} lag_max_us={}",
        job.schedule.rate,
        measured.failed,
        measured.bytes,
        measured.elapsed.as_secs_f64(),
        // Every record the worker handled, warm-up included, used the CPU.
        cpu as f64 / job.schedule.total().max(1) as f64,
        measured.peak_rss_kib as f64 / 1024.0,
        stats.e2e.count(),
        stats.max_lag.load(Ordering::Relaxed) / 1000,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spaces_records_evenly_without_drift() {
        let s = Schedule::new(3, Duration::from_secs(1), Duration::from_secs(2), 1_000);
        assert_eq!((s.warmup, s.measured, s.total()), (3, 6, 9));
        assert_eq!(s.due(0), 1_000);
        assert_eq!(s.due(1), 1_000 + 333_333_333);
        assert_eq!(s.due(3), 1_000 + 1_000_000_000);
        // Record 3 000 000 of a 3/s schedule is exactly 1e6 s in: no accumulated rounding.
        assert_eq!(s.due(3_000_000), 1_000 + 1_000_000 * 1_000_000_000);
        assert_eq!(s.measured_from(), s.due(3));
        let fast = Schedule::new(100_000, Duration::ZERO, Duration::from_millis(10), 0);
        assert_eq!(fast.total(), 1000);
        assert_eq!(fast.due(1) - fast.due(0), 10_000);
        assert_eq!(fast.measured_from(), 0);
    }

    #[test]
    fn the_generator_keeps_to_the_schedule() {
        let clock = Clock::start();
        let s = Schedule::new(
            1000,
            Duration::from_millis(10),
            Duration::from_millis(40),
            clock.nanos() + 5_000_000,
        );
        let stats = Stats::new(clock, &s);
        let mut sent = Vec::new();
        generate(&s, &stats, |i, due| sent.push((i, due, clock.nanos())));
        assert_eq!(sent.len(), 50);
        for (n, (i, due, at)) in sent.into_iter().enumerate() {
            assert_eq!((i, due), (n as u64, s.due(n as u64)));
            assert!(at >= due, "record {i} handed over {} ns early", due - at);
        }
        // A sleep never returns early, so some lateness is always recorded.
        assert!(stats.max_lag.load(Ordering::Relaxed) > 0);
        // The whole run takes the schedule's 50 ms, not less.
        assert!(clock.nanos() >= s.due(49));
    }

    #[test]
    fn values_carry_their_scheduled_time() {
        let p = Payload::new(VALUE_SIZE);
        let v = stamp(&p, 7, 123_456_789);
        assert_eq!(v.len(), VALUE_SIZE);
        assert_eq!(read_stamp(&v), Some(123_456_789));
        assert_eq!(&v[8..], &p.slice(7)[8..]);
        assert_eq!(read_stamp(b"short"), None);
    }

    #[test]
    fn only_measured_records_count() {
        let clock = Clock::start();
        let s = Schedule::new(1000, Duration::from_millis(2), Duration::from_millis(3), 0);
        let stats = Stats::new(clock, &s);
        let p = Payload::new(VALUE_SIZE);
        for i in 0..s.total() {
            stats.acked(s.due(i), true);
            stats.received(Some(&stamp(&p, i, s.due(i))));
        }
        stats.acked(s.due(4), false);
        stats.received(None);
        stats.received(Some(b"x"));
        assert_eq!(stats.ack.count(), 3);
        assert_eq!(stats.e2e.count(), 3);
        assert_eq!(stats.settled.load(Ordering::Relaxed), 6);
        assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
        assert!(stats.last_ack.load(Ordering::Relaxed) > 0);
    }
}
