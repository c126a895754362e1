//! Sealing compressed batches off the sender task: compression runs on the producer's own
//! compression threads, several batches at a time, while the sender task keeps draining
//! partitions.
//!
//! ```text
//!  partition queue (send order):  Sealed retries │ Sealing ─ Sealing ─ Open ─ Open │ open
//!                                                  ▲ compressing on a compression thread
//!  sender pass: front Sealing done? ─► stamp (producer id, next sequence) ─► request
//!               front Sealing busy? ─► the partition waits; other partitions go on
//! ```
//!
//! Why: compressing a 1 MB batch takes milliseconds (gzip, zstd); done inline, it stalls every
//! other partition's sends and every response, and one core does all the compressing.
//!
//! Order: a batch being compressed keeps its place in its partition's queue, and the sender
//! only ever sends the queue's front. So a partition's batches leave in the order they were
//! sealed, and the idempotent base sequence, given when a batch leaves, follows that order even
//! when a later batch finishes compressing first. Nothing here decides sequences.
//!
//! Threads of its own, not tokio's blocking pool: memory. A compression needs an output
//! buffer of the codec's worst case (about the batch) and, for zstd, match tables; the
//! blocking pool ran each job on whichever thread was idle — or a new one, since the next job
//! starts as the last one finishes — so up to nine threads each kept their own malloc arena
//! of freed buffers and tables, and 100b-zstd peaked at 28–35 MiB whatever `buffer.memory`
//! (docs/PERFORMANCE.md, stop 27). Each compression thread here keeps one
//! [`Compressor`](crate::compression::Compressor) (output buffer and zstd context, reused for
//! every batch) and writes the batch into a buffer of exactly its compressed size.
//!
//! Memory: a batch being compressed still holds its records' bytes of `buffer.memory` (its
//! [`BatchOwner`] gives them back only when the batch is decided, as for any batch), and at
//! most [`Sealer::limit`] compressions run at once, on at most that many threads, each holding
//! one compressor (about `batch.size` of output buffer, plus zstd's tables).
//!
//! Without compression nothing goes through here: the sender seals inline, as cheaply as
//! before (a header write, no copy, no thread hop).
//!
//! Ownership: the [`Sealer`] (owned by the sender task) owns the job queue; its threads are
//! started on demand, up to `limit`, and end when the sealer is dropped and the queue runs
//! dry. A job owns only the batch's builder (its uncompressed bytes); the [`Sealing`] entry in
//! the partition queue owns the records' fate (`BatchOwner`). A running job cannot be
//! aborted: a dropped producer fails the records at once (the owner is dropped with the queue)
//! and the job finishes its batch, whose result is discarded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use bytes::BytesMut;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::accumulator::OpenBatch;
use super::batch::BatchOwner;
use super::config::ProducerConfig;
use crate::compression::{Compression, Compressor};
use crate::error::{Error, Result};
use crate::protocol::records::BatchBuilder;

/// The most compressions in flight when the machine reports no parallelism; and the fewest.
const MIN_LIMIT: usize = 2;
/// More would only add buffers: compression is CPU-bound and the application's own threads
/// need cores too.
const MAX_LIMIT: usize = 8;

/// Starts compressions on the producer's compression threads, at most `limit` at once.
pub(crate) struct Sealer {
    codec: Compression,
    level: Option<i32>,
    limit: usize,
    /// Jobs started and not yet finished (decremented by the thread that ran the job).
    running: Arc<AtomicUsize>,
    /// Told when a job finishes: the sender's wake-up.
    wake: Arc<Notify>,
    /// The job queue; dropping it ends the threads once they are idle.
    jobs: mpsc::Sender<Job>,
    /// The queue's other end, shared by the threads (one waits on it at a time).
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    /// Threads started so far (at most `limit`). Only the sender task starts jobs; atomic so
    /// that `start` can take `&self` like the rest of the drain pass.
    threads: AtomicUsize,
    #[cfg(test)]
    hook: Option<fn(usize) -> Result<()>>,
}

/// One batch to compress, and where its result goes.
struct Job {
    builder: BatchBuilder,
    codec: Compression,
    level: Option<i32>,
    done: oneshot::Sender<Result<BytesMut>>,
    running: Arc<AtomicUsize>,
    wake: Arc<Notify>,
    #[cfg(test)]
    hook: Option<fn(usize) -> Result<()>>,
}

impl Job {
    /// Compresses the batch and hands the result over. A panicking codec fails only its batch
    /// (its result sender is dropped: the entry reports a job that ended early); the slot is
    /// given back and the sender woken either way, so a panic can neither leak a slot nor
    /// stall the partition.
    fn run(self, compressor: &mut Compressor) {
        let Job {
            builder,
            codec,
            level,
            done,
            running,
            wake,
            #[cfg(test)]
            hook,
        } = self;
        let sealed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(test)]
            hook.map_or(Ok(()), |h| h(builder.size()))?;
            builder.finish_using(codec, level, compressor)
        }));
        // Counted down before the wake-up, so the pass it causes may start the next job.
        running.fetch_sub(1, Ordering::AcqRel);
        match sealed {
            // The entry may be gone (the producer was dropped): then so is the batch.
            Ok(sealed) => drop(done.send(sealed)),
            Err(_) => {
                // Closed before the wake-up, so the woken pass sees the job ended.
                drop(done);
                // Whatever state the codec left is not reused.
                *compressor = Compressor::default();
            }
        }
        wake.notify_one();
    }
}

/// A compression thread: runs jobs until the queue's sender (the sealer) is gone.
fn compression_thread(queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut compressor = Compressor::default();
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        job.run(&mut compressor);
    }
}

impl Sealer {
    /// A sealer for the producer's codec (not `None`), waking the sender through `wake`.
    pub(crate) fn new(cfg: &ProducerConfig, wake: Arc<Notify>) -> Sealer {
        let cores = std::thread::available_parallelism().map_or(MIN_LIMIT, |n| n.get());
        let (jobs, queue) = mpsc::channel();
        Sealer {
            codec: cfg.compression,
            level: cfg.compression_level,
            limit: cores.clamp(MIN_LIMIT, MAX_LIMIT),
            running: Arc::new(AtomicUsize::new(0)),
            wake,
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            threads: AtomicUsize::new(0),
            #[cfg(test)]
            hook: cfg.seal_hook,
        }
    }

    /// How many compressions may run at once.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Compression threads started.
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.threads.load(Ordering::Relaxed)
    }

    /// Whether another compression may start now.
    pub(crate) fn has_room(&self) -> bool {
        self.running.load(Ordering::Acquire) < self.limit
    }

    /// Hands `batch` to a compression thread. The caller puts the returned entry where the
    /// batch was in its partition's queue.
    pub(crate) fn start(&self, batch: OpenBatch) -> Sealing {
        let OpenBatch {
            builder,
            owner,
            created,
        } = batch;
        let record_count = builder.record_count();
        let (tx, rx) = oneshot::channel();
        let running = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        // One thread per compression running at once, started when first needed.
        let threads = self.threads.load(Ordering::Relaxed);
        if running > threads && threads < self.limit {
            let queue = self.queue.clone();
            let spawned = std::thread::Builder::new()
                .name("ferrokafka-compress".into())
                .spawn(move || compression_thread(queue));
            // Without a new thread the job waits for a running one.
            if spawned.is_ok() {
                self.threads.fetch_add(1, Ordering::Relaxed);
            }
        }
        let job = Job {
            builder,
            codec: self.codec,
            level: self.level,
            done: tx,
            running: self.running.clone(),
            wake: self.wake.clone(),
            #[cfg(test)]
            hook: self.hook,
        };
        if self.threads.load(Ordering::Relaxed) == 0 {
            // No thread could be started: dropping the job closes its result, and the entry
            // fails its batch as a job that ended early.
            drop(job);
            self.running.fetch_sub(1, Ordering::AcqRel);
        } else {
            // Cannot fail: the sealer holds the queue's receiving end as well.
            let _ = self.jobs.send(job);
        }
        Sealing {
            owner,
            created,
            record_count,
            rx,
            done: None,
        }
    }
}

/// A batch being compressed, in its partition's queue where the batch was.
pub(crate) struct Sealing {
    pub(crate) owner: BatchOwner,
    /// When the batch's first record was appended (`delivery.timeout.ms` counts from here).
    pub(crate) created: Instant,
    pub(crate) record_count: i32,
    /// The compressed batch, from the compression thread.
    rx: oneshot::Receiver<Result<BytesMut>>,
    /// The job's result once received.
    done: Option<Result<BytesMut>>,
}

impl Sealing {
    /// Whether the compression has finished (successfully or not). Never blocks.
    pub(crate) fn ready(&mut self) -> bool {
        if self.done.is_none() {
            self.done = match self.rx.try_recv() {
                Ok(result) => Some(result),
                Err(oneshot::error::TryRecvError::Empty) => None,
                // The job panicked: its batch is lost, but its records must hear of it.
                Err(oneshot::error::TryRecvError::Closed) => Some(Err(Error::protocol(
                    "batch compression failed (the compression job ended early)",
                ))),
            };
        }
        self.done.is_some()
    }

    /// Whether [`Sealing::ready`] has seen the compression finish.
    pub(crate) fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// The compressed batch (header written, producer fields unset) with its owner, or `None`
    /// after failing only this batch's records with the compression error. Call once
    /// [`Sealing::ready`] said so.
    pub(crate) fn take(self) -> Option<(BatchOwner, BytesMut)> {
        match self.done {
            Some(Ok(bytes)) => Some((self.owner, bytes)),
            Some(Err(e)) => {
                self.owner.finish(Err(e));
                None
            }
            None => {
                self.owner.finish(Err(Error::protocol(
                    "batch taken before its compression finished",
                )));
                None
            }
        }
    }

    /// Fails the batch's records with `err`, keeping the compressed batch (when done) so that
    /// [`DeliveryFuture::with_record`](super::DeliveryFuture::with_record) can give the records
    /// back.
    pub(crate) fn fail(mut self, err: Error) {
        self.ready();
        if let Some(Ok(bytes)) = self.done.take() {
            self.owner.encoded = Some(bytes.freeze());
        }
        self.owner.finish(Err(err));
    }

    /// An entry whose "job" is the returned sender, for tests that decide when (and in which
    /// order) compressions finish.
    #[cfg(test)]
    pub(crate) fn pending(
        owner: BatchOwner,
        record_count: i32,
    ) -> (Sealing, oneshot::Sender<Result<BytesMut>>) {
        let (tx, rx) = oneshot::channel();
        let entry = Sealing {
            owner,
            created: Instant::now(),
            record_count,
            rx,
            done: None,
        };
        (entry, tx)
    }
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
