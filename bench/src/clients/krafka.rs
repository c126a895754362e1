//! krafka: `Producer::enqueue` for every record, keeping the `DeliveryHandle`s and settling
//! them oldest first, then awaiting the rest.
//!
//! Why `enqueue`: it returns as soon as the record is in krafka's accumulator (it waits only
//! for buffer memory), so records keep flowing while earlier batches are on the wire; its
//! `send` is `enqueue(..).await?.await`, one record at a time. This is the pipelined use its
//! documentation shows (`enqueue` into a set of handles, await them afterwards), and the same
//! shape as the ferrokafka worker.
//!
//! Settings: linger, `batch.size`, `buffer.memory`, acks and codec of the case; idempotence
//! on for acks=all (krafka's default) and off for acks=1 (krafka allows it only with
//! acks=all); its built-in partitioner (murmur2 for keys, sticky batches for keyless
//! records, as Java's). krafka fixes Produce requests in flight at 5 per broker, the bench's
//! `max.in.flight`. KIP-714 metrics push off: no other client in the bench sends telemetry.
//! The `tls` case runs over SASL_SSL (SCRAM-SHA-512, rustls with ring, krafka's default).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use krafka::auth::{AuthConfig, TlsConfig};
use krafka::producer::{Acks, DeliveryHandle};
use krafka::{Compression, Kafka, Record};

use super::{Job, Produced};
use crate::cases::{self, Codec};
use crate::connect::runtime;
use crate::kafka;

fn compression(c: Codec) -> Compression {
    match c {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

pub fn run(job: &Job) -> Result<Produced, String> {
    runtime()?.block_on(produce(job))
}

async fn produce(job: &Job) -> Result<Produced, String> {
    let case = job.case;
    let mut builder = Kafka::builder(job.bootstrap.as_str()).client_id("krafka-bench");
    if let Some(s) = &job.sasl_ssl {
        // The `tls` case: SASL_SSL as the `--kafka` node's SCRAM user, trusting its CA.
        let tls = TlsConfig::new().with_ca_cert(s.ca.display().to_string());
        builder = builder
            .security(AuthConfig::sasl_scram_sha512(kafka::USER, kafka::PASSWORD).with_tls(tls));
    }
    let client = builder
        .connect()
        .await
        .map_err(|e| format!("krafka connect: {e}"))?;
    let (acks, idempotent) = match case.acks {
        cases::Acks::Leader => (Acks::Leader, false),
        cases::Acks::All => (Acks::All, true),
    };
    let producer = client
        .producer()
        .acks(acks)
        .idempotent(idempotent)
        .linger(Duration::from_millis(cases::LINGER_MS))
        .batch_size(job.batch_size)
        .buffer_memory(cases::BUDGET)
        .compression(compression(case.codec))
        .metrics_push(false)
        .build()
        .await
        .map_err(|e| format!("krafka producer: {e}"))?;

    // Warm-up: one record delivered before the clock starts (connections, metadata and,
    // with idempotence, the producer id are then in place, as for the other clients).
    let warm_up = producer
        .send(Record::new(job.topic.as_str(), job.payload.bytes(0)))
        .await
        .map_err(|e| format!("krafka warm-up: {e}"))?;
    if !warm_up.is_success() {
        return Err(format!("krafka warm-up not acknowledged: {warm_up:?}"));
    }

    let mut result = Produced::default();
    let mut first_error = None;
    let mut pending: VecDeque<DeliveryHandle> = VecDeque::new();
    let mut key = [0u8; 9];
    let start = Instant::now();
    for i in 0..job.records {
        let mut record = Record::new(job.topic.as_str(), job.payload.bytes(i));
        if case.keyed {
            record = record.key(Bytes::copy_from_slice(cases::key(i, &mut key)));
        }
        let handle = producer
            .enqueue(record)
            .await
            .map_err(|e| format!("krafka enqueue: {e}"))?;
        pending.push_back(handle);
        if i % 64 == 0 {
            settle_decided(&mut pending, &mut result, &mut first_error);
        }
    }
    for handle in pending {
        count(&mut result, &mut first_error, handle.await);
    }
    result.elapsed = start.elapsed();
    producer
        .close()
        .await
        .map_err(|e| format!("krafka close: {e}"))?;
    if let Some(e) = first_error {
        eprintln!("krafka: first delivery error: {e}");
    }
    Ok(result)
}

/// Counts one record's outcome, keeping the first error for the report. (The krafka worker
/// keeps a future per record: krafka has no delivery callback.)
fn count<T, E>(result: &mut Produced, first_error: &mut Option<E>, r: Result<T, E>) {
    match r {
        Ok(_) => result.ok += 1,
        Err(e) => {
            result.failed += 1;
            first_error.get_or_insert(e);
        }
    }
}

/// Settles the deliveries at the front of `pending` that are already decided, oldest first,
/// so the queue stays about as long as the records in flight. Polled with a no-op waker: the
/// worker's send loop comes back here anyway, and waits for the rest at the end.
fn settle_decided<F, T, E>(
    pending: &mut VecDeque<F>,
    result: &mut Produced,
    first_error: &mut Option<E>,
) where
    F: Future<Output = Result<T, E>> + Unpin,
{
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    while let Some(front) = pending.front_mut() {
        match Pin::new(front).poll(&mut cx) {
            Poll::Ready(r) => {
                count(result, first_error, r);
                pending.pop_front();
            }
            Poll::Pending => break,
        }
    }
}
