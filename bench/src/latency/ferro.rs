//! ferrokafka at a fixed rate: `Producer::send` from the generator thread, each delivery
//! timed the moment its batch completes by one tracker task (see [`Tracker`]),
//! and a `Consumer` assigned every partition from the latest offset, started first.
//!
//! Settings: the library's defaults (linger 5 ms, batch.size 16 KiB, idempotence on) and
//! acks=all; the consumer's defaults (fetch.min.bytes 1, fetch.max.wait.ms 500).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ferrokafka::{
    Acks, Consumer, DeliveryFuture, OffsetReset, Producer, Record, Topic, TopicPartition,
};

use super::worker::{generate, stamp, Job, Stats};
use crate::connect::{self, runtime};

pub fn run(job: &Job, stats: &Arc<Stats>) -> Result<(), String> {
    let rt = runtime()?;
    let client = rt.block_on(connect::ferrokafka_client(&job.bootstrap))?;
    let consumer = Arc::new(rt.block_on(async {
        let consumer = Consumer::builder(&client)
            .offset_reset(OffsetReset::Latest)
            .auto_commit(false)
            .build()
            .await
            .map_err(|e| format!("consumer: {e}"))?;
        let partitions: Vec<TopicPartition> = (0..job.partitions)
            .map(|p| TopicPartition::new(&job.topic, p))
            .collect();
        consumer
            .assign(&partitions)
            .await
            .map_err(|e| format!("assign: {e}"))?;
        Ok::<_, String>(consumer)
    })?);
    let producer = rt.block_on(async {
        let mut builder = Producer::builder(&client).acks(Acks::All);
        // Extra or overriding properties for experiments: `key=value,key=value`.
        for (k, v) in connect::extra_properties(connect::FERRO_PRODUCER_ENV) {
            builder = builder.set(&k, &v);
        }
        builder.build().await.map_err(|e| format!("producer: {e}"))
    })?;
    let reader = {
        let (consumer, stats) = (consumer.clone(), stats.clone());
        rt.spawn(async move {
            loop {
                match consumer.recv_batch(1000).await {
                    Ok(batch) => {
                        for r in &batch {
                            stats.received(r.value.as_deref());
                        }
                    }
                    Err(e) => {
                        eprintln!("ferrokafka: recv_batch: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    };
    let tracker = Arc::new(Tracker::default());
    let tracking = rt.spawn(tracker.clone().run(stats.clone()));
    let waker = rt.block_on(tracker.waker());
    // This thread is not one of the runtime's: it may block on the send, as an application
    // thread handing records to the producer would.
    let handle = rt.handle().clone();
    let mut sent = Ok(());
    let topic = Topic::from(job.topic.as_str());
    generate(&job.schedule, stats, |i, due| {
        if sent.is_err() {
            return;
        }
        let record = Record::new(&topic).value(stamp(&job.payload, i, due));
        match handle.block_on(producer.send(record)) {
            Ok(delivery) => tracker.track(&waker, stats, due, delivery),
            Err(e) => sent = Err(format!("send: {e}")),
        }
    });
    let settled = sent.and_then(|()| job.settle(stats, Duration::from_secs(60)));
    tracking.abort();
    reader.abort();
    rt.block_on(async {
        let _ = producer.close(Duration::from_secs(10)).await;
        let _ = consumer.close().await;
        client.close().await;
    });
    settled
}

/// Times acknowledgements with one wake-up per completed batch, as librdkafka's delivery
/// callbacks do, instead of a task (and a wake-up of a parked runtime worker) per record:
/// the generator polls each delivery once with the tracker task's waker, so the batch will
/// wake that task when it completes, and queues it; the woken task polls the queue (the
/// records of the last few milliseconds) and times every delivery that is done.
///
/// The queue's lock is held from that first poll until the delivery is queued, so a batch that
/// completes in between wakes a tracker that then finds the delivery queued, never one that
/// misses it.
#[derive(Default)]
struct Tracker {
    pending: Mutex<Vec<(u64, DeliveryFuture)>>,
    waker: OnceLock<Waker>,
}

impl Tracker {
    /// The tracker task's waker, once it has run.
    async fn waker(&self) -> Waker {
        loop {
            if let Some(w) = self.waker.get() {
                return w.clone();
            }
            tokio::task::yield_now().await;
        }
    }

    /// From the generator: times `delivery` now if it is already done, else queues it.
    fn track(&self, waker: &Waker, stats: &Stats, due: u64, mut delivery: DeliveryFuture) {
        let mut pending = self.pending.lock().unwrap();
        match Pin::new(&mut delivery).poll(&mut Context::from_waker(waker)) {
            Poll::Ready(r) => stats.acked(due, r.is_ok()),
            Poll::Pending => pending.push((due, delivery)),
        }
    }

    /// The task: on every wake-up, times the deliveries that are done.
    async fn run(self: Arc<Self>, stats: Arc<Stats>) {
        std::future::poll_fn(|cx| {
            if self.waker.get().is_none() {
                let _ = self.waker.set(cx.waker().clone());
            }
            self.pending
                .lock()
                .unwrap()
                .retain_mut(|(due, d)| match Pin::new(d).poll(cx) {
                    Poll::Ready(r) => {
                        stats.acked(*due, r.is_ok());
                        false
                    }
                    Poll::Pending => true,
                });
            Poll::<()>::Pending
        })
        .await
    }
}
