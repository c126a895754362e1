//! Partitioners: which partition a record without an explicit one goes to.
//!
//! The built-ins reproduce the Java client, so that ferrokafka, the Java producer and librdkafka
//! (with `partitioner=murmur2_random`) put the same key on the same partition:
//!
//! - A keyed record goes to `to_positive(murmur2(key)) % partition_count`, Java's
//!   `BuiltInPartitioner.partitionForKey` built on `Utils.murmur2` and `Utils.toPositive`.
//! - [`DefaultPartitioner`] sends keyless records to one "sticky" partition until about
//!   `batch.size` bytes went there, then picks another one uniformly at random: the Java
//!   client's uniform sticky partitioning (KIP-794, `BuiltInPartitioner`).
//! - [`Murmur2Partitioner`] spreads keyless records at random, record by record (librdkafka's
//!   `murmur2_random`).
//! - [`RoundRobinPartitioner`] ignores keys and cycles through the partitions per topic (Java's
//!   `RoundRobinPartitioner`).
//!
//! The hook protocol the producer follows is documented on [`Partitioner`], where authors of
//! custom partitioners see it.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::fasthash::FastMap;

/// Chooses a partition for records without an explicit one.
///
/// Implementations are shared by every task that sends through the producer and called once
/// per record on the send path, so they must be cheap: no I/O, no allocation per record, no
/// lock held for long.
///
/// # When the producer calls each hook
///
/// Hooks may be called from any thread, concurrently, also for the same topic. For one record
/// the order is `partition`, then `on_append`; other records' calls interleave, so a
/// partitioner must accept hooks about a partition it has since moved away from (the built-ins
/// ignore them).
///
/// 1. [`partition`](Partitioner::partition): once per record whose
///    [`Record::partition`](crate::Record) is `None`, before the record is appended, with the
///    topic's current partition count. Records with an explicit partition never reach the
///    partitioner.
/// 2. [`on_append`](Partitioner::on_append): once for each record placed by step 1, after it
///    was appended to a batch of the partition step 1 returned (not if the append failed).
///    `appended_bytes` is how much that batch grew, so the first record of a new batch also
///    counts the record-batch header (like the Java client's `estimatedSizeInBytes` delta).
/// 3. [`on_batch_closed`](Partitioner::on_batch_closed): once per batch, for every batch of
///    every partition (whoever chose its records' partitions), when it stops taking records:
///    it reached `batch.size`, the next record did not fit, or the sender took it while still
///    open (`linger.ms` expired, flush, close). Not again when a batch is retried.
///
/// The producer calls hooks 2 and 3 after releasing the partition's lock. When one append both
/// closes the open batch (the record did not fit) and starts a new one, it calls
/// `on_batch_closed` for the old batch first, then `on_append` for the record.
///
/// # Example
///
/// ```
/// use ferrokafka::Partitioner;
///
/// /// Records whose key starts with `vip-` go to partition 0, all others to the rest.
/// #[derive(Debug)]
/// struct VipFirst;
///
/// impl Partitioner for VipFirst {
///     fn partition(&self, _topic: &str, key: Option<&[u8]>, partition_count: i32) -> i32 {
///         match key {
///             Some(k) if k.starts_with(b"vip-") || partition_count == 1 => 0,
///             Some(k) => 1 + (k.len() as i32 % (partition_count - 1)),
///             None => partition_count - 1,
///         }
///     }
/// }
///
/// assert_eq!(VipFirst.partition("orders", Some(b"vip-7"), 6), 0);
/// ```
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// `key` is the record's key; `partition_count` ≥ 1. Return a partition in
    /// `0..partition_count`; the producer fails the record with an error otherwise.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> i32;

    /// Called by the producer after a record placed by [`partition`](Partitioner::partition)
    /// was appended to a batch of `partition`; `appended_bytes` is how much the batch grew.
    /// Sticky partitioners count bytes here. Default: nothing.
    fn on_append(
        &self,
        _topic: &str,
        _partition: i32,
        _key: Option<&[u8]>,
        _appended_bytes: usize,
    ) {
    }

    /// Called by the producer when a batch of `partition` in `topic` is closed, i.e. stops
    /// taking records; `batch_bytes` is its size. Sticky partitioners switch here. Default:
    /// nothing.
    fn on_batch_closed(&self, _topic: &str, _partition: i32, _batch_bytes: usize) {}
}

/// Java's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, 4-byte little-endian
/// blocks and Java's tail handling. The exact variant matters: it decides which partition a key
/// lands on, and every Kafka client that interoperates with Java uses it.
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    // Mixing constants of MurmurHash2.
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java computes in `int` with wrapping multiplication and `>>>` (logical shift); u32 with
    // wrapping_mul and `>>` is the same bit pattern. The length enters as Java's `int` length;
    // keys are far below 2 GiB, so truncating to u32 matches.
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java's fall-through switch on `length % 4`: the bytes are masked with 0xff there, so they
    // enter unsigned, never sign-extended.
    let tail = blocks.remainder();
    if !tail.is_empty() {
        if tail.len() == 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit. Unlike `abs`, it maps `i32::MIN` to 0 rather
/// than overflowing, and it is what Java uses before `% partition_count`.
pub(crate) fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

/// The partition of a keyed record: `to_positive(murmur2(key)) % partition_count`.
fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    to_positive(murmur2(key)) % partition_count.max(1)
}

/// The Java client's default partitioning (KIP-794).
///
/// - Keyed records: `murmur2` of the key, exactly as Java, so keys land on the same partitions
///   as with the Java producer.
/// - Keyless records: *uniform sticky*. All of a topic's keyless records go to one partition,
///   so they fill a few large batches instead of many small ones. Once about `batch_size` bytes
///   went there, the next partition is chosen uniformly at random among all partitions (the
///   same one may be chosen again, as in Java).
///
/// The switch follows Java's `BuiltInPartitioner.updatePartitionInfo`: it happens when a batch
/// of the sticky partition closes after at least `batch_size` bytes were appended, so the
/// partition is not left with a small, half-filled batch (which matters with a long
/// `linger.ms`); or, at the latest, as soon as `2 × batch_size` bytes were appended, batch
/// closed or not.
///
/// One difference remains: when a record does not fit the sticky partition's open batch, Java
/// re-partitions that record after the switch (its append loop retries), while ferrokafka's
/// producer asks the partitioner once, so that record starts a new batch on the old partition.
///
/// The Java client's adaptive partitioning (`partitioner.adaptive.partitioning.enable`, which
/// favours partitions whose brokers have shorter queues, and
/// `partitioner.availability.timeout.ms`) is not implemented: every partition is equally
/// likely, as in Java with adaptive partitioning off.
///
/// Called through the [`Partitioner`] trait, the per-record cost is a read lock on the topic
/// map plus one or two atomic operations; the map takes the write lock once per topic. The
/// producer itself skips the map: it keeps each topic's sticky state next to the topic's
/// queue ([`StickyHandle`]), so a record costs only the atomics.
#[derive(Debug)]
pub struct DefaultPartitioner {
    /// `batch.size`, in 1..=i32::MAX (Java's range), so `2 × batch_size` fits a `u32` counter.
    batch_size: u64,
    /// Sticky state per topic, created by the first keyless record of the topic (or by the
    /// producer registering the topic); shared with the producer's [`StickyHandle`]s.
    topics: TopicMap<Arc<StickyState>>,
}

impl DefaultPartitioner {
    /// A partitioner that stays on a partition for about `batch_size` bytes of keyless records;
    /// pass the producer's `batch.size`. Values outside Java's range `1..=i32::MAX` are clamped
    /// to it.
    pub fn new(batch_size: usize) -> DefaultPartitioner {
        DefaultPartitioner {
            batch_size: batch_size.clamp(1, i32::MAX as usize) as u64,
            topics: TopicMap::default(),
        }
    }

    /// The topic's sticky state as a handle that works without looking the topic up: the
    /// producer keeps one per topic queue. It shares the state the trait methods use, so both
    /// ways of calling see (and make) the same choices.
    pub(crate) fn handle(&self, topic: &str) -> StickyHandle {
        StickyHandle {
            state: self.topics.with(topic, Arc::clone),
            batch_size: self.batch_size,
        }
    }

    #[cfg(test)]
    fn sticky_state(&self, topic: &str) -> Option<(u32, u32)> {
        self.topics
            .get(topic, |s| unpack(s.word.load(Ordering::Relaxed)))
    }
}

impl Default for DefaultPartitioner {
    /// Java's default `batch.size`, 16384 bytes.
    fn default() -> Self {
        DefaultPartitioner::new(16_384)
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(&self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> i32 {
        match key {
            Some(key) => partition_for_key(key, partition_count.max(1)),
            None => self.topics.with(topic, |state| {
                state.sticky_partition(partition_count.max(1))
            }),
        }
    }

    fn on_append(&self, topic: &str, partition: i32, key: Option<&[u8]>, appended_bytes: usize) {
        if key.is_some() || partition < 0 {
            return;
        }
        self.topics.get(topic, |state| {
            state.on_append(self.batch_size, partition, appended_bytes)
        });
    }

    fn on_batch_closed(&self, topic: &str, partition: i32, _batch_bytes: usize) {
        if partition < 0 {
            return;
        }
        self.topics.get(topic, |state| {
            state.on_batch_closed(self.batch_size, partition)
        });
    }
}

/// One topic's [`DefaultPartitioner`] state, held by the producer next to the topic's queue so
/// the per-record hooks need no map lookup and no lock. Behaves exactly like the
/// partitioner's trait methods for that topic (it is the same state).
#[derive(Debug, Clone)]
pub(crate) struct StickyHandle {
    state: Arc<StickyState>,
    batch_size: u64,
}

impl StickyHandle {
    /// [`Partitioner::partition`] for this handle's topic.
    pub(crate) fn partition(&self, key: Option<&[u8]>, partition_count: i32) -> i32 {
        let partition_count = partition_count.max(1);
        match key {
            Some(key) => partition_for_key(key, partition_count),
            None => self.state.sticky_partition(partition_count),
        }
    }

    /// [`Partitioner::on_append`] for this handle's topic.
    pub(crate) fn on_append(&self, partition: i32, key: Option<&[u8]>, appended_bytes: usize) {
        if key.is_some() || partition < 0 {
            return;
        }
        self.state
            .on_append(self.batch_size, partition, appended_bytes);
    }

    /// [`Partitioner::on_batch_closed`] for this handle's topic.
    pub(crate) fn on_batch_closed(&self, partition: i32) {
        if partition < 0 {
            return;
        }
        self.state.on_batch_closed(self.batch_size, partition);
    }
}

/// Murmur2 for keyed records, like Java; keyless records each go to a random partition
/// (librdkafka's `murmur2_random`).
///
/// Choose it over [`DefaultPartitioner`] when keyless records should spread evenly record by
/// record rather than batch by batch; batches get smaller.
#[derive(Debug, Default)]
pub struct Murmur2Partitioner {
    /// librdkafka's `murmur2`: keyless records hash as the empty key instead of going to a
    /// random partition.
    hash_missing_keys: bool,
}

impl Murmur2Partitioner {
    /// Like the default, but keyless records hash as an empty key, so they all go to one fixed
    /// partition (librdkafka's `murmur2` partitioner).
    pub fn consistent() -> Murmur2Partitioner {
        Murmur2Partitioner {
            hash_missing_keys: true,
        }
    }
}

impl Partitioner for Murmur2Partitioner {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, partition_count: i32) -> i32 {
        let partition_count = partition_count.max(1);
        match key {
            Some(key) => partition_for_key(key, partition_count),
            None if self.hash_missing_keys => partition_for_key(&[], partition_count),
            None => random_below(partition_count),
        }
    }
}

/// Every record, keyed or not, goes to the topic's next partition in turn: 0, 1, 2, …, wrapping
/// around (Java's `RoundRobinPartitioner`, which starts each topic at 0).
///
/// Keys are ignored, so records with the same key do not stay in order.
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    /// Records partitioned so far, per topic. Wraps like Java's `AtomicInteger`.
    counters: TopicMap<AtomicI32>,
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(&self, topic: &str, _key: Option<&[u8]>, partition_count: i32) -> i32 {
        let next = self
            .counters
            .with(topic, |c| c.fetch_add(1, Ordering::Relaxed));
        // `to_positive` as in Java: after 2^31 records the counter wraps negative and the
        // sequence restarts at 0 rather than producing a negative partition.
        to_positive(next) % partition_count.max(1)
    }
}

/// Per-topic state whose fast path is a shared read lock and a hash lookup, never an allocation:
/// the entry (and its `String` key) is created once per topic under the write lock. The values
/// are atomics, so every update happens under the read lock.
///
/// The map never shrinks; like Java's per-topic partitioner state, it holds one small entry per
/// topic the producer ever wrote to.
#[derive(Debug)]
struct TopicMap<T> {
    map: RwLock<FastMap<String, T>>,
}

impl<T> Default for TopicMap<T> {
    fn default() -> Self {
        TopicMap {
            map: RwLock::new(FastMap::default()),
        }
    }
}

impl<T: Default> TopicMap<T> {
    /// Runs `f` on the topic's state, creating it first if needed.
    fn with<R>(&self, topic: &str, f: impl FnOnce(&T) -> R) -> R {
        // The state is atomics only, so a panic elsewhere while holding the lock cannot leave
        // it inconsistent: ignore poisoning instead of propagating the panic into `send`.
        {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(state) = map.get(topic) {
                return f(state);
            }
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(topic.to_owned()).or_default())
    }

    /// Runs `f` on the topic's state if there is one.
    fn get<R>(&self, topic: &str, f: impl FnOnce(&T) -> R) -> Option<R> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(topic).map(f)
    }
}

/// The sticky partition and the keyless bytes appended to it since it was chosen, packed in one
/// word (partition in the high 32 bits, bytes in the low 32) so that "is this still the sticky
/// partition?", "add the bytes" and "switch" happen in one compare-and-swap: no lock, exactly
/// one switch however many tasks cross the threshold at once, and bytes reported for a
/// partition that is no longer sticky are dropped instead of counted for its successor.
///
/// `Relaxed` ordering is enough: the word is the whole state and publishes no other memory, and
/// every compare-and-swap still acts on the word's latest value.
#[derive(Debug)]
struct StickyState {
    word: AtomicU64,
}

impl Default for StickyState {
    fn default() -> Self {
        StickyState {
            word: AtomicU64::new(UNSET),
        }
    }
}

impl StickyState {
    /// The keyless path: the sticky partition, choosing one if there is none yet.
    fn sticky_partition(&self, partition_count: i32) -> i32 {
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let (sticky, _) = unpack(current);
            // A sticky partition beyond the count only happens if the caller's count went
            // down (stale metadata); choose again rather than return an invalid partition.
            if sticky != NO_PARTITION && sticky < partition_count as u32 {
                return sticky as i32;
            }
            let chosen = random_below(partition_count);
            // Only one caller installs a choice; the others take the winner's, so that
            // concurrent first records of a topic all go to the same partition.
            match self.word.compare_exchange_weak(
                current,
                pack(chosen as u32, 0),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return chosen,
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts a keyless record's bytes (the caller filters keyed records: like Java, only the
    /// records the sticky logic placed count towards the switch).
    fn on_append(&self, batch_size: u64, partition: i32, appended_bytes: usize) {
        let cap = 2 * batch_size;
        self.update(|sticky, produced| {
            if sticky != partition as u32 {
                // Appended before another record switched the topic away: not this stint's.
                return None;
            }
            let produced = (u64::from(produced) + appended_bytes as u64).min(u64::from(u32::MAX));
            if produced >= cap {
                // Java's safety cap: switch even though the partition's batch is still open
                // (a long linger.ms, or batches shared with keyed records).
                Some(UNSET)
            } else {
                Some(pack(sticky, produced as u32))
            }
        });
    }

    fn on_batch_closed(&self, batch_size: u64, partition: i32) {
        self.update(|sticky, produced| {
            // Enough went to the sticky partition and it has no half-filled batch left: switch.
            // The next keyless record picks the new partition (`sticky_partition`), which needs
            // the partition count this hook does not have.
            (sticky == partition as u32 && u64::from(produced) >= batch_size).then_some(UNSET)
        });
    }

    /// Applies `update` to the state word until it sticks; `update` returns `None` to leave
    /// the state as it is.
    fn update(&self, update: impl Fn(u32, u32) -> Option<u64>) {
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let (sticky, produced) = unpack(current);
            let Some(next) = update(sticky, produced) else {
                return;
            };
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

/// "No sticky partition yet": the next keyless record chooses one. Partitions are `i32` ≥ 0, so
/// `u32::MAX` is never a real one.
const NO_PARTITION: u32 = u32::MAX;
/// The state word with no sticky partition and nothing produced.
const UNSET: u64 = pack(NO_PARTITION, 0);

const fn pack(partition: u32, produced: u32) -> u64 {
    ((partition as u64) << 32) | produced as u64
}

const fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

/// A uniformly random partition in `0..partition_count` (`partition_count` ≥ 1).
fn random_below(partition_count: i32) -> i32 {
    // Lemire's multiply-shift maps 32 random bits onto the range without a division; the bias
    // (under partition_count / 2^32) is far below anything measurable in partition balance.
    ((u64::from(random_u32()) * partition_count.max(1) as u64) >> 32) as i32
}

/// 32 random bits from a per-thread SplitMix64 generator. Partition choice needs speed and
/// spread, not cryptographic strength, and a thread-local state avoids contention on a shared
/// atomic (Java uses `ThreadLocalRandom` for the same reason).
fn random_u32() -> u32 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|state| {
        let mut s = state.get();
        if s == 0 {
            // As in `backoff::jitter`: a fresh RandomState is seeded from the OS (once per
            // thread, then incremented), so hashing nothing gives a random seed without a
            // `rand` dependency. Different threads get different sequences.
            s = RandomState::new().build_hasher().finish() | 1;
        }
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 32) as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// Apache Kafka's `UtilsTest.testMurmur2`, checked against the Java source
    /// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
    const JAVA_VECTORS: &[(&[u8], i32)] = &[
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];

    #[test]
    fn murmur2_matches_java_utils_test() {
        for &(input, want) in JAVA_VECTORS {
            assert_eq!(
                murmur2(input),
                want,
                "{:?}",
                std::str::from_utf8(input).unwrap()
            );
        }
    }

    /// librdkafka's own checks of its Java-compatible murmur2, already `toPositive`d:
    /// `unittest_murmurhashneutral2` in src/rdmurmur2.c and the `murmur2` expectations of
    /// tests/0048-partitioner.c (which librdkafka generated with Java, `tests/java/Murmur2Cli`).
    /// Together with the Java vectors they cover every tail length (0–3 bytes).
    #[test]
    fn murmur2_matches_librdkafka_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"kafka", 1_348_980_580),
            (b"amqp", 767_747_138),
            (b"giberish123456789", 257_239_820),
            (b"", 0x106e_08d9),
            (b"23456", 0x058d_780f),
            (
                b"this is another string with more length to it perhaps",
                0x4f77_03da,
            ),
            (b"hejsan", 0x5ec1_9395),
        ];
        for &(input, want) in cases {
            assert_eq!(to_positive(murmur2(input)), want, "{input:?}");
        }
    }

    /// Partition choices worked out by hand from the verified hashes: take the Java vector,
    /// clear the sign bit (`-973932308 & 0x7fffffff = 1173551340`), then reduce modulo the
    /// partition count (`1173551340 % 3 = 0`). The librdkafka rows are the expectations of its
    /// tests/0048-partitioner.c for the `murmur2` partitioner with 17 partitions (7 in quick
    /// mode), e.g. `0x5ec19395 % 17 = 1589744533 % 17 = 5`.
    #[test]
    fn keyed_partitions_match_java_and_librdkafka() {
        const LONG: &[u8] = b"this is another string with more length to it perhaps";
        // (key, partition count, expected partition, how it was derived)
        let cases: &[(&[u8], i32, i32, &str)] = &[
            (b"21", 3, 0, "1173551340 % 3"),
            (b"21", 100, 40, "1173551340 % 100"),
            (b"foobar", 7, 0, "1357151166 % 7"),
            (b"foobar", 12, 6, "1357151166 % 12"),
            (b"abc", 10, 7, "479470107 % 10"),
            (b"a-little-bit-long-string", 16, 0, "1161502112 % 16"),
            (b"a-little-bit-longer-string", 6, 5, "661178819 % 6"),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                50,
                27,
                "2088585677 % 50",
            ),
            (b"", 17, 11, "librdkafka 0048: 0x106e08d9 % 17"),
            (b"23456", 17, 9, "librdkafka 0048: 0x058d780f % 17"),
            (LONG, 17, 11, "librdkafka 0048: 0x4f7703da % 17"),
            (b"hejsan", 17, 5, "librdkafka 0048: 0x5ec19395 % 17"),
            (b"hejsan", 7, 6, "librdkafka 0048, quick: 0x5ec19395 % 7"),
        ];
        let default = DefaultPartitioner::default();
        let murmur = Murmur2Partitioner::default();
        for &(key, count, want, derivation) in cases {
            assert_eq!(
                default.partition("t", Some(key), count),
                want,
                "{derivation}"
            );
            assert_eq!(
                murmur.partition("t", Some(key), count),
                want,
                "{derivation}"
            );
        }
    }

    #[test]
    fn to_positive_clears_only_the_sign_bit() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
    }

    /// Java's `Utils.murmur2` transcribed literally (signed ints, `& 0xff` on every byte, `>>>`
    /// as a shift of the unsigned bits) as an independent reference for the proptest below:
    /// it catches sign-extension slips on bytes ≥ 0x80, which no published vector contains.
    fn java_style_murmur2(data: &[u8]) -> i32 {
        let length = data.len() as i32;
        let m: i32 = 0x5bd1_e995;
        let ushr = |x: i32, n: u32| ((x as u32) >> n) as i32;
        let byte = |i: i32| (data[i as usize] as i8 as i32) & 0xff;
        let mut h: i32 = (0x9747_b28c_u32 as i32) ^ length;
        for i in 0..length / 4 {
            let i4 = i * 4;
            let mut k = byte(i4)
                .wrapping_add(byte(i4 + 1) << 8)
                .wrapping_add(byte(i4 + 2) << 16)
                .wrapping_add(byte(i4 + 3) << 24);
            k = k.wrapping_mul(m);
            k ^= ushr(k, 24);
            k = k.wrapping_mul(m);
            h = h.wrapping_mul(m);
            h ^= k;
        }
        let base = length & !3;
        let rem = length % 4;
        if rem == 3 {
            h ^= byte(base + 2) << 16;
        }
        if rem >= 2 {
            h ^= byte(base + 1) << 8;
        }
        if rem >= 1 {
            h ^= byte(base);
            h = h.wrapping_mul(m);
        }
        h ^= ushr(h, 13);
        h = h.wrapping_mul(m);
        h ^= ushr(h, 15);
        h
    }

    proptest! {
        #[test]
        fn keyed_partition_is_murmur2_mod_count(
            key in proptest::collection::vec(any::<u8>(), 0..64),
            count in 1i32..1000,
        ) {
            let want = to_positive(murmur2(&key)) % count;
            prop_assert!((0..count).contains(&want));
            prop_assert_eq!(DefaultPartitioner::default().partition("t", Some(&key), count), want);
            prop_assert_eq!(Murmur2Partitioner::default().partition("t", Some(&key), count), want);
            prop_assert_eq!(Murmur2Partitioner::consistent().partition("t", Some(&key), count), want);
        }

        #[test]
        fn murmur2_matches_java_style_reference(key in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(murmur2(&key), java_style_murmur2(&key));
        }
    }

    #[test]
    fn java_style_reference_agrees_with_the_vectors() {
        for &(input, want) in JAVA_VECTORS {
            assert_eq!(java_style_murmur2(input), want);
        }
    }

    #[test]
    fn default_keyed_records_are_deterministic_and_ignore_stickiness() {
        let p = DefaultPartitioner::new(100);
        let first = p.partition("t", Some(b"customer-42"), 12);
        for _ in 0..50 {
            let keyless = p.partition("t", None, 12);
            p.on_append("t", keyless, None, 60);
            p.on_batch_closed("t", keyless, 60);
            assert_eq!(p.partition("t", Some(b"customer-42"), 12), first);
        }
        // The same answer from a fresh partitioner: no hidden per-instance state.
        assert_eq!(
            DefaultPartitioner::default().partition("other", Some(b"customer-42"), 12),
            first
        );
    }

    #[test]
    fn default_keyless_sticks_until_batch_size_then_switches_on_close() {
        // A huge partition count makes re-choosing the same partition (allowed, as in Java)
        // a one-in-a-million event, so "it moved" is observable.
        let count = 1 << 20;
        let p = DefaultPartitioner::new(1000);
        let sticky = p.partition("t", None, count);
        for _ in 0..9 {
            assert_eq!(p.partition("t", None, count), sticky);
            p.on_append("t", sticky, None, 100);
        }
        // 900 bytes: a batch closing now does not switch yet.
        p.on_batch_closed("t", sticky, 900);
        assert_eq!(p.sticky_state("t"), Some((sticky as u32, 900)));
        assert_eq!(p.partition("t", None, count), sticky);
        p.on_append("t", sticky, None, 100);
        // 1000 bytes reached but the batch is still open: stay (Java's enableSwitch=false).
        assert_eq!(p.partition("t", None, count), sticky);
        // Another partition's batch closing is none of our business.
        p.on_batch_closed("t", sticky + 1, 5000);
        assert_eq!(p.partition("t", None, count), sticky);
        // The sticky partition's batch closes: switch.
        p.on_batch_closed("t", sticky, 1000);
        assert_eq!(p.sticky_state("t"), Some((NO_PARTITION, 0)));
        let next = p.partition("t", None, count);
        assert_ne!(next, sticky);
        assert_eq!(p.sticky_state("t"), Some((next as u32, 0)));
    }

    #[test]
    fn default_keyless_switches_at_twice_batch_size_without_a_close() {
        let count = 1 << 20;
        let p = DefaultPartitioner::new(1000);
        let sticky = p.partition("t", None, count);
        p.on_append("t", sticky, None, 1999);
        assert_eq!(p.partition("t", None, count), sticky);
        p.on_append("t", sticky, None, 1);
        assert_ne!(p.partition("t", None, count), sticky);
    }

    #[test]
    fn default_ignores_keyed_and_stale_appends() {
        let count = 1 << 20;
        let p = DefaultPartitioner::new(1000);
        let sticky = p.partition("t", None, count);
        // Keyed records on the sticky partition do not count (Java counts only records the
        // sticky logic placed).
        p.on_append("t", sticky, Some(b"k"), 5000);
        // An append that raced with a switch, reported for a partition no longer sticky.
        p.on_append("t", sticky + 1, None, 5000);
        p.on_append("t", -1, None, 5000);
        assert_eq!(p.sticky_state("t"), Some((sticky as u32, 0)));
        // Hooks for a topic that never had a keyless record create nothing.
        p.on_append("unknown", 0, None, 5000);
        p.on_batch_closed("unknown", 0, 5000);
        assert_eq!(p.sticky_state("unknown"), None);
    }

    #[test]
    fn default_sticky_state_is_per_topic() {
        let count = 1 << 20;
        let p = DefaultPartitioner::new(100);
        let a = p.partition("a", None, count);
        let b = p.partition("b", None, count);
        p.on_append("a", a, None, 100);
        p.on_batch_closed("a", a, 100);
        assert_ne!(p.partition("a", None, count), a);
        assert_eq!(p.partition("b", None, count), b);
        assert_eq!(p.sticky_state("b"), Some((b as u32, 0)));
    }

    #[test]
    fn default_keyless_switches_spread_uniformly() {
        let (count, switches) = (8, 8000);
        let p = DefaultPartitioner::new(100);
        let mut hits = vec![0u32; count as usize];
        for _ in 0..switches {
            let sticky = p.partition("t", None, count);
            hits[sticky as usize] += 1;
            p.on_append("t", sticky, None, 100);
            p.on_batch_closed("t", sticky, 100);
        }
        // Expected 1000 each, standard deviation ~30: a ±30% band never fails by chance but
        // catches a skewed or stuck generator.
        for (partition, &n) in hits.iter().enumerate() {
            assert!((700..=1300).contains(&n), "partition {partition}: {hits:?}");
        }
    }

    #[test]
    fn single_partition_is_always_zero() {
        let d = DefaultPartitioner::new(10);
        let m = Murmur2Partitioner::default();
        let r = RoundRobinPartitioner::default();
        for i in 0..100 {
            let key = format!("key-{i}");
            for p in [&d as &dyn Partitioner, &m, &r] {
                assert_eq!(p.partition("t", None, 1), 0);
                assert_eq!(p.partition("t", Some(key.as_bytes()), 1), 0);
            }
            d.on_append("t", 0, None, 10);
            d.on_batch_closed("t", 0, 10);
        }
    }

    #[test]
    fn a_shrunk_partition_count_never_yields_an_out_of_range_partition() {
        let p = DefaultPartitioner::new(1000);
        // Force a sticky partition that is out of range for the smaller count below.
        while p.partition("t", None, 100) < 10 {
            p.on_append("t", p.partition("t", None, 100), None, 5000);
        }
        for _ in 0..100 {
            assert!((0..10).contains(&p.partition("t", None, 10)));
        }
        // Nonsense counts do not panic (no `% 0`).
        assert_eq!(p.partition("t", None, 0), 0);
        assert_eq!(p.partition("t", Some(b"k"), -3), 0);
        assert_eq!(RoundRobinPartitioner::default().partition("t", None, 0), 0);
    }

    #[test]
    fn default_survives_concurrent_use() {
        let p = DefaultPartitioner::new(500);
        let count = 6;
        std::thread::scope(|s| {
            for t in 0..4 {
                let p = &p;
                s.spawn(move || {
                    for i in 0..5000 {
                        let key = (i % 3 == 0).then(|| format!("{t}-{i}"));
                        let key = key.as_deref().map(str::as_bytes);
                        let partition = p.partition("t", key, count);
                        assert!((0..count).contains(&partition));
                        p.on_append("t", partition, key, 50);
                        if i % 7 == 0 {
                            p.on_batch_closed("t", partition, 400);
                        }
                    }
                });
            }
        });
        let (sticky, produced) = p.sticky_state("t").unwrap();
        assert!(sticky == NO_PARTITION || sticky < count as u32);
        assert!(u64::from(produced) < 2 * 500);
    }

    #[test]
    fn murmur2_keyless_is_random_or_consistent() {
        let random = Murmur2Partitioner::default();
        let seen: std::collections::HashSet<i32> =
            (0..200).map(|_| random.partition("t", None, 4)).collect();
        assert_eq!(seen.len(), 4, "{seen:?}");
        // librdkafka `murmur2`: a missing key hashes like an empty one (0x106e08d9 % 17 = 11).
        let consistent = Murmur2Partitioner::consistent();
        for _ in 0..20 {
            assert_eq!(consistent.partition("t", None, 17), 11);
        }
    }

    #[test]
    fn round_robin_cycles_in_order_per_topic() {
        let p = RoundRobinPartitioner::default();
        let a: Vec<i32> = (0..10).map(|_| p.partition("a", None, 4)).collect();
        assert_eq!(a, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
        // Another topic starts its own cycle at 0; keys do not matter.
        let b: Vec<i32> = (0..4)
            .map(|i| p.partition("b", Some(format!("k{i}").as_bytes()), 3))
            .collect();
        assert_eq!(b, [0, 1, 2, 0]);
        // And "a" continued where it was.
        assert_eq!(p.partition("a", Some(b"x"), 4), 2);
    }

    #[test]
    fn round_robin_wraps_like_java() {
        let p = RoundRobinPartitioner::default();
        p.counters
            .with("t", |c| c.store(i32::MAX - 1, Ordering::Relaxed));
        // Java: toPositive(getAndIncrement()) % n over 2147483646, 2147483647, -2147483648, …
        let got: Vec<i32> = (0..4).map(|_| p.partition("t", None, 5)).collect();
        assert_eq!(got, [1, 2, 0, 1]);
    }

    #[test]
    fn partitioners_are_object_safe_and_shareable() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Arc<dyn Partitioner>>();
        let all: Vec<Arc<dyn Partitioner>> = vec![
            Arc::new(DefaultPartitioner::default()),
            Arc::new(Murmur2Partitioner::default()),
            Arc::new(RoundRobinPartitioner::default()),
        ];
        for p in &all {
            assert!((0..3).contains(&p.partition("t", Some(b"k"), 3)));
            // The default hooks exist and do nothing harmful.
            p.on_append("t", 0, Some(b"k"), 10);
            p.on_batch_closed("t", 0, 10);
            assert!(!format!("{p:?}").is_empty());
        }
    }
}
