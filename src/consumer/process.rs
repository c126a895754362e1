//! Concurrent processing with safe commits: [`Consumer::processor`].
//!
//! ```text
//!  recv_batch ──► per-key / per-partition queues ──► ready ──► handler tasks (≤ max_in_flight)
//!   (stops when held bytes ≥ budget)                               │ done / failed
//!                                                                  ▼
//!  commit timer ◄── OffsetTracker per partition (first offset not done) ◄──┘
//!  revoke/lost (group task) ── ProcessingHook ──► driver: drain, answer, hook commits
//! ```
//!
//! Ownership: [`Processor::run`] *is* the driver: one future, polled by the application's
//! task, that owns every piece of processing state — the partitions' offset trackers
//! (offset_tracker.rs), the key queues, the byte count, the latency histogram. No lock is
//! taken on the per-record path. The handler calls run as tokio tasks in a `JoinSet` the
//! driver owns, and the periodic commit as one task whose handle it owns: dropping the
//! `run` future aborts them all and removes the rebalance hook. The group task reaches the
//! driver only through the hook's command channel (process_hook.rs); the application's
//! [`ProcessHandle`] only through a stop flag and the published metrics snapshot.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::consumer::offset_tracker::{OffsetTracker, Received};
use crate::consumer::process_hook::{
    read_seeds, CommitGate, HookCmd, ProcessingHook, Seed, ToCommit,
};
use crate::consumer::process_metrics::{LatencyHistogram, PartitionProcessMetrics, ProcessMetrics};
use crate::consumer::process_options::{ProcessOptions, ProcessOrdering};
use crate::consumer::process_task::{run_one, Done, Outcome};
use crate::consumer::record::{ConsumerRecord, SeekTo, TopicPartition};
use crate::consumer::{Consumer, Shared};
use crate::error::{Error, Result};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type HandlerFuture = Pin<Box<dyn Future<Output = std::result::Result<(), BoxError>> + Send>>;
pub(crate) type DynHandler = Arc<dyn Fn(ConsumerRecord) -> HandlerFuture + Send + Sync>;

/// A finished read of seeds: the partitions (with incarnations) it was for, and the seeds.
type SeedRead = (Vec<(TopicPartition, u64)>, Result<Vec<Seed>>);

/// Records taken per `recv_batch` call.
const TAKE: usize = 500;
/// How often the metrics snapshot is published.
const PUBLISH: Duration = Duration::from_millis(100);

impl Consumer {
    /// A processor that runs `handler` for each record, concurrently, and commits only
    /// what is done: per partition, the first offset not finished yet (see
    /// [`ProcessOptions`] for ordering, limits and failures).
    ///
    /// Nothing happens until [`Processor::run`] is awaited. Once a processor is created,
    /// the consumer does not auto-commit consumed positions: records handed
    /// to the processor are not processed yet. Do not `seek` or `recv` yourself meanwhile,
    /// and do not call `commit()` in a rebalance listener (it fails): the processor
    /// commits on its own revoke hook, which runs before yours. One processor runs at a
    /// time on a consumer (a second `run` fails with [`Error::InvalidState`]); a stopped one
    /// moves each partition's position back to its first record not done, so a later
    /// processor takes the rest.
    ///
    /// Memory: the records held stay within `max_held_bytes` plus one `recv_batch` of 500
    /// records, on top of the consumer's own `fetch.buffer.bytes`.
    ///
    /// ```no_run
    /// # async fn f(consumer: ferrokafka::Consumer) -> ferrokafka::Result<()> {
    /// use ferrokafka::{ProcessOptions, ProcessOrdering};
    ///
    /// consumer.subscribe(&["orders"]).await?;
    /// let processor = consumer.processor(
    ///     ProcessOptions::new().ordering(ProcessOrdering::PerKey).max_in_flight(256),
    ///     |record| async move {
    ///         // Slow work per record: an HTTP call, a database write.
    ///         println!("{}@{}", record.partition, record.offset);
    ///         Ok::<(), std::io::Error>(())
    ///     },
    /// );
    /// let handle = processor.handle();
    /// tokio::spawn(async move {
    ///     let _ = tokio::signal::ctrl_c().await;
    ///     handle.stop();
    /// });
    /// processor.run().await?; // drains in-flight work and commits on stop
    /// consumer.close().await?;
    /// # Ok(()) }
    /// ```
    pub fn processor<H, F, E>(&self, options: ProcessOptions, handler: H) -> Processor<'_>
    where
        H: Fn(ConsumerRecord) -> F + Send + Sync + 'static,
        F: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        // From here on, positions handed out are not "processed": no auto-commit of them,
        // even before `run` starts (a rebalance may come first).
        self.shared.processing.store(true, Ordering::Release);
        let handler = Arc::new(handler);
        let handler: DynHandler = Arc::new(move |record| {
            let handler = handler.clone();
            // Called inside the future, so a panic in the call itself is caught too.
            Box::pin(async move { handler(record).await.map_err(Into::into) })
        });
        Processor {
            consumer: self,
            options,
            handler,
            control: ProcessHandle {
                inner: Arc::new(Control {
                    stop: watch::channel(false).0,
                    metrics: Mutex::new(ProcessMetrics::default()),
                }),
            },
        }
    }
}

/// Concurrent processing of a consumer's records; see [`Consumer::processor`].
pub struct Processor<'a> {
    consumer: &'a Consumer,
    options: ProcessOptions,
    handler: DynHandler,
    control: ProcessHandle,
}

impl std::fmt::Debug for Processor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Stops a running [`Processor`] and reads its metrics; cheap to clone.
#[derive(Clone)]
pub struct ProcessHandle {
    inner: Arc<Control>,
}

impl std::fmt::Debug for ProcessHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessHandle").finish_non_exhaustive()
    }
}

struct Control {
    stop: watch::Sender<bool>,
    /// Written by the driver only (every 100 ms and on exit).
    metrics: Mutex<ProcessMetrics>,
}

impl ProcessHandle {
    /// Asks the processor to stop: it takes no more records, waits for those in flight
    /// (up to the stop timeout), commits, and `run` returns.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// The latest metrics snapshot.
    pub fn metrics(&self) -> ProcessMetrics {
        self.inner.metrics.lock().unwrap().clone()
    }
}

impl Processor<'_> {
    /// A handle to stop the processor and read its metrics from elsewhere.
    pub fn handle(&self) -> ProcessHandle {
        self.control.clone()
    }

    /// Processes records until [`ProcessHandle::stop`], the consumer's `close`, or a
    /// failure the policy says to stop on ([`Error::HandlerFailed`]); on the way out it
    /// drains in-flight records and commits the done prefix. Needs a `group.id`.
    pub async fn run(self) -> Result<()> {
        let shared = self.consumer.shared.clone();
        shared.coordinator()?;
        shared.processing.store(true, Ordering::Release);
        let (cmd_tx, cmds) = mpsc::unbounded_channel();
        let gate = Arc::new(CommitGate::default());
        let revoke_timeout = self
            .options
            .revoke_timeout
            .unwrap_or(shared.cfg.max_poll_interval);
        let _hook = HookGuard::install(
            &shared,
            Arc::new(ProcessingHook {
                cmds: cmd_tx,
                gate: gate.clone(),
                revoke_timeout,
            }),
        )?;
        let mut driver = Driver::new(self, shared.clone(), gate);
        // Partitions assigned before the processor started get their seeds here (later
        // ones through the hook).
        let assigned = shared.assignment.partitions();
        if !assigned.is_empty() {
            match read_seeds(&shared, &assigned).await {
                Ok(seeds) => driver.on_assigned(seeds, assigned),
                Err(e) => warn!(error = %e, "reading committed offsets for processing failed"),
            }
        }
        driver.run(cmds).await
    }
}

/// Removes the hook when `run` ends or its future is dropped.
struct HookGuard(Arc<Shared>);

impl HookGuard {
    fn install(shared: &Arc<Shared>, hook: Arc<ProcessingHook>) -> Result<HookGuard> {
        let mut slot = shared.hook.lock().unwrap();
        if slot.is_some() {
            return Err(Error::InvalidState(
                "a processor is already running on this consumer".into(),
            ));
        }
        *slot = Some(hook);
        Ok(HookGuard(shared.clone()))
    }
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        *self.0.hook.lock().unwrap() = None;
    }
}

/// Aborts the periodic commit task when the driver goes away.
struct CommitTask(Option<JoinHandle<Result<Vec<ToCommit>>>>);

impl Drop for CommitTask {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// The queue a record waits in: its partition, and its key in per-key mode.
pub(crate) type QKey = (TopicPartition, Option<Bytes>);

#[derive(Default)]
struct KeyQueue {
    records: VecDeque<ConsumerRecord>,
    /// One record of this queue is in flight.
    busy: bool,
}

enum Ready {
    /// A queue whose head may start.
    Queue(QKey),
    /// An unordered record.
    Record(ConsumerRecord),
}

/// One partition, as the driver sees it.
struct Part {
    /// Distinguishes this ownership of the partition from an earlier one.
    incarnation: u64,
    tracker: Option<OffsetTracker>,
    seed: Option<Seed>,
    /// Records held while the seed is read (`Some` until it arrives).
    stash: Option<Vec<ConsumerRecord>>,
    /// In flight: offset → (abort handle, bytes held).
    in_flight: HashMap<i64, (AbortHandle, usize)>,
    queued: usize,
    /// Last offset and metadata committed by this processor.
    committed: i64,
    committed_meta: Option<String>,
    revoking: bool,
}

struct PendingRevoke {
    parts: Vec<TopicPartition>,
    deadline: Instant,
    reply: oneshot::Sender<Vec<ToCommit>>,
}

/// Counters the driver keeps and publishes.
#[derive(Default)]
struct Counters {
    processed: u64,
    skipped: u64,
    dead_lettered: u64,
    retries: u64,
    panics: u64,
    already_done: u64,
    latency: LatencyHistogram,
}

struct Driver<'a> {
    consumer: &'a Consumer,
    shared: Arc<Shared>,
    options: ProcessOptions,
    handler: DynHandler,
    control: ProcessHandle,
    gate: Arc<CommitGate>,
    parts: HashMap<TopicPartition, Part>,
    next_incarnation: u64,
    queues: HashMap<QKey, KeyQueue>,
    ready: VecDeque<Ready>,
    tasks: JoinSet<Done>,
    in_flight: usize,
    queued: usize,
    held_bytes: usize,
    revokes: Vec<PendingRevoke>,
    counters: Counters,
    /// Records finished since the last successful commit's snapshot (for
    /// `max_uncommitted`), and how many of them the commit in flight covers.
    done_since_commit: usize,
    commit_covers: usize,
    /// Partitions (and incarnations) whose seeds are to be read, and the reads running.
    need_seeds: Vec<(TopicPartition, u64)>,
    seed_tasks: JoinSet<SeedRead>,
    /// Set when the driver must stop, with the error `run` returns (if any).
    stopping: bool,
    failure: Option<Error>,
    closed: bool,
}

/// Bytes a record holds (what the byte budget counts).
fn record_bytes(r: &ConsumerRecord) -> usize {
    let headers: usize = r
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
        .sum();
    r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len) + headers + 64
}

impl<'a> Driver<'a> {
    fn new(p: Processor<'a>, shared: Arc<Shared>, gate: Arc<CommitGate>) -> Driver<'a> {
        Driver {
            consumer: p.consumer,
            shared,
            options: p.options,
            handler: p.handler,
            control: p.control,
            gate,
            parts: HashMap::new(),
            next_incarnation: 0,
            queues: HashMap::new(),
            ready: VecDeque::new(),
            tasks: JoinSet::new(),
            in_flight: 0,
            queued: 0,
            held_bytes: 0,
            revokes: Vec::new(),
            counters: Counters::default(),
            done_since_commit: 0,
            commit_covers: 0,
            need_seeds: Vec::new(),
            seed_tasks: JoinSet::new(),
            stopping: false,
            failure: None,
            closed: false,
        }
    }

    fn new_part(&mut self, seed: Option<Seed>) -> Part {
        self.next_incarnation += 1;
        Part {
            incarnation: self.next_incarnation,
            tracker: None,
            seed,
            stash: None,
            in_flight: HashMap::new(),
            queued: 0,
            committed: -1,
            committed_meta: None,
            revoking: false,
        }
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<HookCmd>) -> Result<()> {
        let mut stop = self.control.inner.stop.subscribe();
        let mut commit_tick =
            tokio::time::interval(self.options.commit_interval.max(Duration::from_millis(1)));
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut publish = tokio::time::interval(PUBLISH);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut commit_task = CommitTask(None);
        let mut stop_deadline: Option<Instant> = None;
        loop {
            // Bookkeeping first: hook commands (a revoke must not wait behind records),
            // finished records, then new starts.
            while let Ok(cmd) = cmds.try_recv() {
                self.on_cmd(cmd);
            }
            while let Some(done) = self.tasks.try_join_next() {
                if let Ok(done) = done {
                    self.on_done(done);
                }
            }
            self.check_revokes(Instant::now());
            if *stop.borrow() && !self.stopping {
                self.stopping = true;
            }
            if self.stopping {
                let deadline =
                    *stop_deadline.get_or_insert(Instant::now() + self.options.stop_timeout);
                if Instant::now() >= deadline {
                    self.abort_all();
                }
                if self.in_flight == 0 {
                    break;
                }
            } else {
                while self.in_flight < self.options.max_in_flight
                    && self.within_uncommitted_limit()
                    && self.start_next()
                {}
            }
            let can_take = !self.stopping && self.held_bytes < self.options.max_held_bytes;
            let revoke_deadline = self.revokes.iter().map(|r| r.deadline).min();
            let wake = match (revoke_deadline, stop_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                cmd = cmds.recv() => if let Some(cmd) = cmd { self.on_cmd(cmd) },
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok(done) = done {
                        self.on_done(done);
                    }
                }
                taken = self.consumer.recv_batch(TAKE), if can_take => {
                    // A hook command sent before these records were fetched (new
                    // partitions' seeds) is applied before them.
                    while let Ok(cmd) = cmds.try_recv() {
                        self.on_cmd(cmd);
                    }
                    match taken {
                        Ok(records) => {
                            self.on_records(records);
                            self.read_missing_seeds();
                        }
                        Err(Error::PollIntervalExceeded { .. }) => {
                            // The group task already dropped the partitions (lost).
                            warn!("processing: max.poll.interval.ms exceeded; rejoining");
                        }
                        Err(Error::Closed) => {
                            self.closed = true;
                            self.stopping = true;
                        }
                        Err(e) => {
                            warn!(error = %e, "processing stops: the consumer failed");
                            self.failure.get_or_insert(e);
                            self.stopping = true;
                        }
                    }
                }
                Some(seeded) = self.seed_tasks.join_next(), if !self.seed_tasks.is_empty() => {
                    if let Ok((parts, seeds)) = seeded {
                        self.on_seeds(parts, seeds);
                    }
                }
                _ = stop.changed() => self.stopping = true,
                finished = async { commit_task.0.as_mut().unwrap().await }, if commit_task.0.is_some() => {
                    commit_task.0 = None;
                    self.on_committed(finished);
                }
                _ = commit_tick.tick(), if !self.stopping && commit_task.0.is_none() => {
                    let items = self.to_commit();
                    if items.is_empty() {
                        // Every finished record is covered by an earlier commit.
                        self.done_since_commit = 0;
                    } else {
                        // What this commit covers: every record finished until now.
                        self.commit_covers = self.done_since_commit;
                        let (shared, gate) = (self.shared.clone(), self.gate.clone());
                        commit_task.0 = Some(tokio::spawn(async move { gate.commit(&shared, items).await }));
                    }
                }
                _ = publish.tick() => self.publish(),
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            }
        }
        // Out: every record in flight is done or cancelled. Answer pending revokes, then
        // commit the done prefix (after the periodic commit, so they stay in order).
        self.check_revokes(Instant::now() + Duration::from_secs(3600));
        if let Some(t) = commit_task.0.take() {
            let finished = t.await;
            self.on_committed(finished);
        }
        if !self.closed {
            let items = self.to_commit();
            if !items.is_empty() {
                let finished = self.gate.commit(&self.shared, items).await;
                self.on_committed(Ok(finished));
            }
            // Records taken but never started are not done: read them again if the
            // consumer is used on.
            for (tp, part) in &self.parts {
                let first_not_done = match (&part.tracker, &part.stash) {
                    (Some(t), _) => Some(t.committable()),
                    (None, Some(held)) => held.first().map(|r| r.offset),
                    (None, None) => None,
                };
                if let Some(offset) = first_not_done {
                    let _ = self.shared.seek(tp, SeekTo::Offset(offset));
                }
            }
        }
        self.publish();
        match self.failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn on_cmd(&mut self, cmd: HookCmd) {
        match cmd {
            HookCmd::Assigned { seeds, reply } => {
                let parts: Vec<TopicPartition> = seeds.iter().map(|s| s.tp.clone()).collect();
                self.on_assigned(seeds, parts);
                let _ = reply.send(());
            }
            HookCmd::Revoke {
                parts,
                deadline,
                reply,
            } => {
                for tp in &parts {
                    if let Some(p) = self.parts.get_mut(tp) {
                        p.revoking = true;
                    }
                }
                self.drop_queued(&parts);
                self.revokes.push(PendingRevoke {
                    parts,
                    deadline,
                    reply,
                });
                self.check_revokes(Instant::now());
            }
            HookCmd::Lost { parts, reply } => {
                self.drop_queued(&parts);
                for tp in &parts {
                    self.abort_part(tp);
                    self.parts.remove(tp);
                }
                debug!(
                    partitions = parts.len(),
                    "processing: partitions lost, dropped"
                );
                let _ = reply.send(());
            }
        }
    }

    /// New partitions (with the seeds found for some of them).
    fn on_assigned(&mut self, seeds: Vec<Seed>, parts: Vec<TopicPartition>) {
        let mut seeds: HashMap<TopicPartition, Seed> =
            seeds.into_iter().map(|s| (s.tp.clone(), s)).collect();
        for tp in parts {
            let seed = seeds.remove(&tp);
            if self.parts.get(&tp).is_some_and(|p| !p.revoking) {
                continue;
            }
            let part = self.new_part(seed);
            self.parts.insert(tp, part);
        }
    }

    fn on_records(&mut self, records: Vec<ConsumerRecord>) {
        let per_key = self.options.ordering == ProcessOrdering::PerKey;
        for record in records {
            let tp = record.topic_partition();
            if !self.parts.contains_key(&tp) {
                // A record of a partition that is no longer assigned (revoked while this
                // batch was taken) must not bring it back: its commits are another's now.
                if self.shared.assignment.get(&tp).is_none() {
                    continue;
                }
                // No seed yet (the fetcher can start before the `assigned` hook has read
                // the committed metadata, or there is no hook: manual assignment). Hold
                // the partition's records until its committed offset and done runs are
                // read, so records a previous owner finished are not run again.
                let mut part = self.new_part(None);
                part.stash = Some(Vec::new());
                self.need_seeds.push((tp.clone(), part.incarnation));
                self.parts.insert(tp.clone(), part);
            }
            let part = self.parts.get_mut(&tp).expect("inserted above");
            if part.revoking {
                continue;
            }
            if let Some(stash) = part.stash.as_mut() {
                self.held_bytes += record_bytes(&record);
                stash.push(record);
                continue;
            }
            let tracker = part.tracker.get_or_insert_with(|| {
                let t = match part.seed.take() {
                    // A seek before the committed offset makes the seed meaningless.
                    Some(s) if s.committed <= record.offset => {
                        OffsetTracker::with_done(s.committed, &s.done)
                    }
                    _ => OffsetTracker::new(record.offset),
                };
                part.committed = t.committable();
                t
            });
            if tracker.received(record.offset) == Received::AlreadyDone {
                self.counters.already_done += 1;
                continue;
            }
            self.held_bytes += record_bytes(&record);
            part.queued += 1;
            self.queued += 1;
            match self.options.ordering {
                ProcessOrdering::Unordered => self.ready.push_back(Ready::Record(record)),
                _ => {
                    let key = if per_key { record.key.clone() } else { None };
                    let qkey = (tp, key);
                    let q = self.queues.entry(qkey.clone()).or_default();
                    q.records.push_back(record);
                    if !q.busy && q.records.len() == 1 {
                        self.ready.push_back(Ready::Queue(qkey));
                    }
                }
            }
        }
    }

    /// Reads the seeds of partitions whose records are held (one OffsetFetch for all).
    fn read_missing_seeds(&mut self) {
        if self.need_seeds.is_empty() {
            return;
        }
        let parts = std::mem::take(&mut self.need_seeds);
        let shared = self.shared.clone();
        self.seed_tasks.spawn(async move {
            let tps: Vec<TopicPartition> = parts.iter().map(|(tp, _)| tp.clone()).collect();
            let seeds = read_seeds(&shared, &tps).await;
            (parts, seeds)
        });
    }

    /// Seeds arrived: start the trackers and take the held records.
    fn on_seeds(&mut self, parts: Vec<(TopicPartition, u64)>, seeds: Result<Vec<Seed>>) {
        let mut seeds: HashMap<TopicPartition, Seed> = match seeds {
            Ok(s) => s.into_iter().map(|s| (s.tp.clone(), s)).collect(),
            Err(e) => {
                // Processing goes on from the first record held: done records past the
                // committed offset may run again, nothing is skipped.
                warn!(error = %e, "reading committed offsets for processing failed");
                HashMap::new()
            }
        };
        for (tp, incarnation) in parts {
            let Some(part) = self.parts.get_mut(&tp) else {
                continue;
            };
            if part.incarnation != incarnation {
                continue;
            }
            let Some(held) = part.stash.take() else {
                continue;
            };
            if part.seed.is_none() {
                part.seed = seeds.remove(&tp);
            }
            self.held_bytes -= held.iter().map(record_bytes).sum::<usize>();
            self.on_records(held);
        }
    }

    /// Starts the next ready record; false when none is ready.
    fn start_next(&mut self) -> bool {
        while let Some(ready) = self.ready.pop_front() {
            let (record, qkey) = match ready {
                Ready::Record(r) => (r, None),
                Ready::Queue(k) => {
                    let Some(q) = self.queues.get_mut(&k) else {
                        continue;
                    };
                    if q.busy {
                        continue;
                    }
                    let Some(r) = q.records.pop_front() else {
                        self.queues.remove(&k);
                        continue;
                    };
                    q.busy = true;
                    (r, Some(k))
                }
            };
            let tp = record.topic_partition();
            let Some(part) = self.parts.get_mut(&tp) else {
                continue;
            };
            part.queued -= 1;
            self.queued -= 1;
            let bytes = record_bytes(&record);
            let offset = record.offset;
            let span = crate::metrics::spans::process(
                &self.shared.client.inner.cfg.client_id,
                self.shared.cfg.group_id.as_deref(),
                &tp.topic,
                tp.partition,
                offset,
            );
            let task = run_one(
                self.handler.clone(),
                record,
                self.options.on_failure.clone(),
                tp,
                part.incarnation,
                qkey,
            );
            let abort = self
                .tasks
                .spawn(tracing::Instrument::instrument(task, span));
            part.in_flight.insert(offset, (abort, bytes));
            self.in_flight += 1;
            return true;
        }
        false
    }

    fn on_done(&mut self, d: Done) {
        let Some(part) = self.parts.get_mut(&d.tp) else {
            return;
        };
        if part.incarnation != d.incarnation {
            return;
        }
        let Some((_, bytes)) = part.in_flight.remove(&d.offset) else {
            return;
        };
        self.in_flight -= 1;
        self.held_bytes -= bytes;
        self.counters.retries += d.retries;
        self.counters.panics += d.panics;
        // Progress counts as polling: a processor held back by its own backpressure is
        // not a stalled application (max.poll.interval.ms).
        self.shared.polls.fetch_add(1, Ordering::Relaxed);
        let mark_done = match d.outcome {
            Outcome::Processed(latency) => {
                self.counters.processed += 1;
                self.counters.latency.record(latency);
                true
            }
            Outcome::Skipped => {
                self.counters.skipped += 1;
                true
            }
            Outcome::DeadLettered => {
                self.counters.dead_lettered += 1;
                true
            }
            Outcome::Failed(message) => {
                warn!(partition = %d.tp, offset = d.offset, %message, "handler failed: processing stops");
                self.failure.get_or_insert(Error::HandlerFailed {
                    topic: d.tp.topic.clone(),
                    partition: d.tp.partition,
                    offset: d.offset,
                    message: message.into(),
                });
                self.stopping = true;
                false
            }
        };
        if mark_done {
            if let Some(t) = part.tracker.as_mut() {
                t.done(d.offset);
            }
            self.done_since_commit += 1;
        }
        if let Some(k) = d.qkey {
            if let Some(q) = self.queues.get_mut(&k) {
                q.busy = false;
                if q.records.is_empty() {
                    self.queues.remove(&k);
                } else {
                    self.ready.push_back(Ready::Queue(k));
                }
            }
        }
    }

    /// Drops the records of `parts` that have not started.
    fn drop_queued(&mut self, parts: &[TopicPartition]) {
        let gone: HashSet<&TopicPartition> = parts.iter().collect();
        let (mut bytes, mut count) = (0, 0);
        self.queues.retain(|(tp, _), q| {
            if gone.contains(tp) {
                count += q.records.len();
                bytes += q.records.iter().map(record_bytes).sum::<usize>();
                false
            } else {
                true
            }
        });
        self.ready.retain(|r| match r {
            Ready::Record(rec) if gone.contains(&rec.topic_partition()) => {
                count += 1;
                bytes += record_bytes(rec);
                false
            }
            _ => true,
        });
        self.held_bytes -= bytes;
        self.queued -= count;
        for tp in parts {
            if let Some(p) = self.parts.get_mut(tp) {
                p.queued = 0;
                if let Some(held) = p.stash.take() {
                    self.held_bytes -= held.iter().map(record_bytes).sum::<usize>();
                }
            }
        }
    }

    /// Cancels the records of `tp` in flight (they count as not done).
    fn abort_part(&mut self, tp: &TopicPartition) {
        if let Some(part) = self.parts.get_mut(tp) {
            for (_, (abort, bytes)) in part.in_flight.drain() {
                abort.abort();
                self.in_flight -= 1;
                self.held_bytes -= bytes;
            }
        }
    }

    fn abort_all(&mut self) {
        let tps: Vec<TopicPartition> = self.parts.keys().cloned().collect();
        for tp in &tps {
            self.abort_part(tp);
        }
        // Their queues stay behind busy: nothing of them starts again while stopping.
    }

    /// Answers the revokes whose partitions are drained (or whose deadline passed).
    fn check_revokes(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.revokes.len() {
            let r = &self.revokes[i];
            let drained = r
                .parts
                .iter()
                .all(|tp| self.parts.get(tp).is_none_or(|p| p.in_flight.is_empty()));
            if !drained && now < r.deadline {
                i += 1;
                continue;
            }
            let r = self.revokes.swap_remove(i);
            if !drained {
                warn!(partitions = ?r.parts, "revoke timeout: cancelling records in flight");
            }
            let mut commit = Vec::new();
            for tp in &r.parts {
                self.abort_part(tp);
                if let Some(part) = self.parts.remove(tp) {
                    if let Some(t) = part.tracker {
                        commit.push(ToCommit {
                            tp: tp.clone(),
                            offset: t.committable(),
                            metadata: self.metadata(&t),
                        });
                    }
                }
            }
            let _ = r.reply.send(commit);
        }
    }

    fn metadata(&self, t: &OffsetTracker) -> Option<String> {
        if self.options.store_done_offsets {
            t.encode_done(self.options.metadata_max_bytes)
        } else {
            None
        }
    }

    /// What moved since the last commit.
    fn to_commit(&self) -> Vec<ToCommit> {
        self.parts
            .iter()
            .filter(|(_, p)| !p.revoking)
            .filter_map(|(tp, p)| {
                let t = p.tracker.as_ref()?;
                let offset = t.committable();
                let metadata = self.metadata(t);
                (offset != p.committed || metadata != p.committed_meta).then(|| ToCommit {
                    tp: tp.clone(),
                    offset,
                    metadata,
                })
            })
            .collect()
    }

    fn on_committed(
        &mut self,
        finished: std::result::Result<Result<Vec<ToCommit>>, tokio::task::JoinError>,
    ) {
        match finished {
            Ok(Ok(items)) => {
                self.done_since_commit -= self.commit_covers.min(self.done_since_commit);
                self.commit_covers = 0;
                for c in items {
                    if let Some(p) = self.parts.get_mut(&c.tp) {
                        p.committed = c.offset;
                        p.committed_meta = c.metadata;
                    }
                }
            }
            Ok(Err(e)) => warn!(error = %e, "processing commit failed; retried on the next tick"),
            Err(_) => {}
        }
    }

    /// Whether one more record may start under `max_uncommitted`: the records finished
    /// since the last successful commit plus those in flight (each may finish before the
    /// next commit) stay within it.
    fn within_uncommitted_limit(&self) -> bool {
        self.options
            .max_uncommitted
            .is_none_or(|max| self.done_since_commit + self.in_flight < max)
    }

    /// Copies the counters into the snapshot `ProcessHandle::metrics` reads.
    fn publish(&self) {
        let mut partitions: Vec<PartitionProcessMetrics> = self
            .parts
            .iter()
            .map(|(tp, p)| {
                let (committable, ahead, end) = match &p.tracker {
                    Some(t) => (t.committable(), t.done_ahead(), t.end()),
                    None => (p.committed, 0, p.committed),
                };
                let log_end = self
                    .shared
                    .assignment
                    .get(tp)
                    .map(|s| s.high_watermark.load(Ordering::Relaxed))
                    .filter(|&h| h >= 0)
                    .unwrap_or(end);
                PartitionProcessMetrics {
                    partition: tp.clone(),
                    committable,
                    committed: p.committed,
                    in_flight: p.in_flight.len(),
                    done_not_committed: (committable - p.committed).max(0) as u64 + ahead,
                    lag: (log_end.max(end) - committable).max(0),
                }
            })
            .collect();
        partitions.sort_by(|a, b| a.partition.cmp(&b.partition));
        let c = &self.counters;
        let snapshot = ProcessMetrics {
            in_flight: self.in_flight,
            queued: self.queued,
            held_bytes: self.held_bytes,
            done_not_committed: partitions.iter().map(|p| p.done_not_committed).sum(),
            processed: c.processed,
            skipped: c.skipped,
            dead_lettered: c.dead_lettered,
            retries: c.retries,
            panics: c.panics,
            already_done: c.already_done,
            commits: self.gate.commits.load(Ordering::Relaxed),
            commit_failures: self.gate.failures.load(Ordering::Relaxed),
            handler_latency: c.latency.summary(),
            partitions,
        };
        *self.control.inner.metrics.lock().unwrap() = snapshot;
    }
}
