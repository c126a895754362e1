//! Sealing compressed batches off the sender task: compression runs on tokio's blocking pool,
//! several batches at a time, while the sender task keeps draining partitions.
//!
//! ```text
//!  partition queue (send order):  Sealed retries │ Sealing ─ Sealing ─ Open ─ Open │ open
//!                                                  ▲ compressing on the blocking pool
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
//! Memory: a batch being compressed still holds its records' bytes of `buffer.memory` (its
//! [`BatchOwner`] gives them back only when the batch is decided, as for any batch), and at most
//! [`Sealer::limit`] compressions run at once. A job compresses into a scratch buffer from the
//! sealer's [`ScratchPool`] (a codec's worst case for one batch, about `batch.size`; at most
//! `limit` kept) and sends that back; the sender task copies the batch out, exactly its
//! compressed size, and returns the scratch to the pool.
//!
//! Why a copy, and why on the sender task: the sealed batch waits in memory until the broker
//! acknowledges it. Written straight into its own buffer on the blocking pool, each batch
//! kept the codec's worst case until shrunk (zstd zero-fills a bound the size of the input),
//! and the allocations landed in the malloc arenas of whichever blocking threads ran the
//! jobs, each keeping its own high-water mark: 100b-zstd peaked at 28–35 MiB at every
//! `buffer.memory` (docs/PERFORMANCE.md, stop 27). The scratch is written once and reused; the
//! copy is of compressed bytes (a fraction of the batch, about 1 % of the sender's time at
//! full speed) into the arena the sender frees it from.
//!
//! Without compression nothing goes through here: the sender seals inline, as cheaply as
//! before (a header write, no copy, no thread hop).
//!
//! Ownership: a job on the blocking pool owns only the batch's builder (its uncompressed bytes);
//! the [`Sealing`] entry in the partition queue owns the records' fate (`BatchOwner`) and the
//! job's `JoinHandle`. Blocking jobs cannot be aborted: a dropped producer fails the records at
//! once (the owner is dropped with the queue) and the job finishes its batch and is discarded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::accumulator::OpenBatch;
use super::batch::BatchOwner;
use super::config::ProducerConfig;
use crate::compression::Compression;
use crate::error::{Error, Result};

/// The most compressions in flight when the machine reports no parallelism; and the fewest.
const MIN_LIMIT: usize = 2;
/// More would only add buffers: compression is CPU-bound and the application's own threads
/// need cores too.
const MAX_LIMIT: usize = 8;

/// Starts compressions on the blocking pool, at most `limit` at once.
pub(crate) struct Sealer {
    codec: Compression,
    level: Option<i32>,
    limit: usize,
    /// Jobs started and not yet finished (decremented by the job itself).
    running: Arc<AtomicUsize>,
    /// Told when a job finishes: the sender's wake-up.
    wake: Arc<Notify>,
    scratch: ScratchPool,
    #[cfg(test)]
    hook: Option<fn(usize) -> Result<()>>,
}

impl Sealer {
    /// A sealer for the producer's codec (not `None`), waking the sender through `wake`.
    pub(crate) fn new(cfg: &ProducerConfig, wake: Arc<Notify>) -> Sealer {
        let cores = std::thread::available_parallelism().map_or(MIN_LIMIT, |n| n.get());
        Sealer {
            codec: cfg.compression,
            level: cfg.compression_level,
            limit: cores.clamp(MIN_LIMIT, MAX_LIMIT),
            running: Arc::new(AtomicUsize::new(0)),
            wake,
            scratch: ScratchPool::new(cores.clamp(MIN_LIMIT, MAX_LIMIT)),
            #[cfg(test)]
            hook: cfg.seal_hook,
        }
    }

    /// How many compressions may run at once.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Whether another compression may start now.
    pub(crate) fn has_room(&self) -> bool {
        self.running.load(Ordering::Acquire) < self.limit
    }

    /// Hands `batch` to the blocking pool. The caller puts the returned entry where the batch
    /// was in its partition's queue.
    pub(crate) fn start(&self, batch: OpenBatch) -> Sealing {
        let OpenBatch {
            builder,
            owner,
            created,
        } = batch;
        let record_count = builder.record_count();
        let (tx, rx) = oneshot::channel();
        let (codec, level) = (self.codec, self.level);
        let running = self.running.clone();
        let wake = self.wake.clone();
        let pool = self.scratch.clone();
        let mut scratch = pool.take();
        running.fetch_add(1, Ordering::AcqRel);
        #[cfg(test)]
        let hook = self.hook;
        let job = tokio::task::spawn_blocking(move || {
            #[cfg(test)]
            let sealed = match hook.map_or(Ok(()), |h| h(builder.size())) {
                Ok(()) => builder.finish_using(codec, level, &mut scratch),
                Err(e) => Err(e),
            };
            #[cfg(not(test))]
            let sealed = builder.finish_using(codec, level, &mut scratch);
            let sealed = sealed.map(|()| scratch);
            // Counted down before the wake-up, so the pass it causes may start the next job.
            running.fetch_sub(1, Ordering::AcqRel);
            // The entry may be gone (the producer was dropped): then so is the batch.
            let _ = tx.send(sealed);
            wake.notify_one();
        });
        Sealing {
            owner,
            created,
            record_count,
            rx,
            pool,
            done: None,
            _job: Some(job),
        }
    }
}

/// Compression output buffers of one producer, reused by its jobs. Shared by the sealer (which
/// takes one per job) and the sender task (which gives it back after copying the batch out);
/// locked once per batch, never per record.
#[derive(Clone)]
struct ScratchPool {
    bufs: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Buffers kept at most: one per compression that may run at once.
    max: usize,
}

impl ScratchPool {
    fn new(max: usize) -> ScratchPool {
        ScratchPool {
            bufs: Arc::new(Mutex::new(Vec::new())),
            max,
        }
    }

    /// A kept buffer, or a new empty one (it grows on its first batch).
    fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `buf` for the next job, unless `max` are kept already (a job may start before
    /// the sender gave back the previous one's).
    fn give(&self, buf: Vec<u8>) {
        let mut bufs = self.lock();
        if bufs.len() < self.max {
            bufs.push(buf);
        }
    }

    /// Kept buffers.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A plain list, valid whatever a panicking holder did.
        self.bufs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A batch being compressed, in its partition's queue where the batch was.
pub(crate) struct Sealing {
    pub(crate) owner: BatchOwner,
    /// When the batch's first record was appended (`delivery.timeout.ms` counts from here).
    pub(crate) created: Instant,
    pub(crate) record_count: i32,
    /// The job's scratch, holding the sealed batch.
    rx: oneshot::Receiver<Result<Vec<u8>>>,
    /// Where the scratch goes back once the batch is copied out of it.
    pool: ScratchPool,
    /// The job's result once received.
    done: Option<Result<BytesMut>>,
    /// The compression job; only held (a blocking job cannot be aborted), never awaited:
    /// its result comes through `rx`.
    _job: Option<JoinHandle<()>>,
}

impl Sealing {
    /// Whether the compression has finished (successfully or not). Never blocks.
    pub(crate) fn ready(&mut self) -> bool {
        if self.done.is_none() {
            self.done = match self.rx.try_recv() {
                Ok(result) => Some(result.map(|scratch| {
                    let batch = BytesMut::from(&scratch[..]);
                    self.pool.give(scratch);
                    batch
                })),
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
    ) -> (Sealing, oneshot::Sender<Result<Vec<u8>>>) {
        let (tx, rx) = oneshot::channel();
        let entry = Sealing {
            owner,
            created: Instant::now(),
            record_count,
            rx,
            pool: ScratchPool::new(1),
            done: None,
            _job: None,
        };
        (entry, tx)
    }
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
