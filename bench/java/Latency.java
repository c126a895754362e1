import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client's latency mode: a KafkaProducer sends 100-byte records at a fixed rate while a
 * KafkaConsumer in the same JVM reads the topic back, with the semantics of the Rust latency
 * worker (bench/src/latency/worker.rs):
 *
 * <ul>
 *   <li>every latency runs from the record's scheduled send time (record i is due
 *       offset + i*1e9/rate ns on the worker's clock), so a client that blocks or falls behind
 *       pays for it (no coordinated omission); the scheduled time is the first 8 bytes of the
 *       value (little endian), the rest is the shared payload pool;
 *   <li>one thread, the generator, parks until each record's time and hands it over;
 *   <li>records scheduled in the warm-up are sent but not measured;
 *   <li>after the last record: wait for every acknowledgement (60 s), then for the consumer to
 *       have received every acknowledged measured record (10 s).
 * </ul>
 *
 * <pre>
 * java -cp .. BenchWorker latency client=java bootstrap=.. topic=.. partitions=.. rate=..
 *     warmup_ms=.. measure_ms=.. linger_ms=.. payload_fnv=..
 * </pre>
 */
final class Latency {
    static final int VALUE_SIZE = 100;
    /** Record 0 is due this long after the clock starts: time to connect first. */
    static final long OFFSET_NS = 500_000_000L;
    static final long SETTLE_NS = 60_000_000_000L;
    static final long DRAIN_NS = 10_000_000_000L;

    private Latency() {}

    /** When each record is due (worker.rs `Schedule`). */
    record Schedule(long rate, long warmup, long measured, long offset) {
        static Schedule of(long rate, long warmupMs, long measureMs, long offset) {
            long r = Math.max(rate, 1);
            return new Schedule(r, Math.round(warmupMs / 1e3 * rate),
                    Math.max(Math.round(measureMs / 1e3 * rate), 1), offset);
        }

        long total() {
            return warmup + measured;
        }

        /** Computed from i (not by adding intervals) so rounding never accumulates. */
        long due(long i) {
            // i * 1e9 fits a long up to 9.2e9 records (a day at 100 k/s).
            return offset + Math.multiplyExact(i, 1_000_000_000L) / rate;
        }

        long measuredFrom() {
            return due(warmup);
        }
    }

    /** Latencies in µs with the buckets of bench/src/latency/histogram.rs (see there). */
    static final class Histogram {
        static final int EXACT = 128;
        static final int PER_OCTAVE = EXACT / 2;
        static final int EXACT_BITS = 7;
        static final int TOP_BIT = 40;
        static final int BUCKETS = EXACT + (TOP_BIT - EXACT_BITS + 1) * PER_OCTAVE;
        final AtomicLongArray counts = new AtomicLongArray(BUCKETS);
        final AtomicLong total = new AtomicLong();
        final AtomicLong max = new AtomicLong();

        static int index(long v) {
            if (Long.compareUnsigned(v, EXACT) < 0) {
                return (int) v;
            }
            int msb = Math.min(63 - Long.numberOfLeadingZeros(v), TOP_BIT);
            long top = (1L << (TOP_BIT + 1)) - 1;
            if (Long.compareUnsigned(v, top) > 0) {
                v = top;
            }
            int shift = msb - (EXACT_BITS - 1);
            long sub = (v >>> shift) - PER_OCTAVE;
            return (int) (EXACT + (long) (shift - 1) * PER_OCTAVE + sub);
        }

        static long upper(int i) {
            if (i < EXACT) {
                return i;
            }
            long shift = (i - EXACT) / PER_OCTAVE + 1;
            long sub = (i - EXACT) % PER_OCTAVE + PER_OCTAVE;
            return ((sub + 1) << shift) - 1;
        }

        void record(long micros) {
            counts.incrementAndGet(index(micros));
            total.incrementAndGet();
            max.accumulateAndGet(micros, Math::max);
        }

        long count() {
            return total.get();
        }

        long quantile(double q) {
            long n = count();
            if (n == 0) {
                return 0;
            }
            long rank = Math.min(Math.max((long) Math.ceil(q * n), 1), n);
            long seen = 0;
            for (int i = 0; i < BUCKETS; i++) {
                seen += counts.get(i);
                if (seen >= rank) {
                    return Math.min(upper(i), max.get());
                }
            }
            return max.get();
        }

        long[] summary() {
            return new long[] {quantile(0.5), quantile(0.99), quantile(0.999), max.get()};
        }
    }

    /** What the producer and consumer sides count (worker.rs `Stats`). */
    static final class Stats {
        /** The worker's clock starts when the clients are connected (see `run`). */
        long clock = System.nanoTime();
        long measuredFrom;
        final Histogram ack = new Histogram();
        final Histogram e2e = new Histogram();
        final AtomicLong settled = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        final AtomicLong lastAck = new AtomicLong();
        final AtomicLong maxLag = new AtomicLong();

        long nanos() {
            return System.nanoTime() - clock;
        }

        void acked(long due, boolean ok) {
            if (!ok) {
                failed.incrementAndGet();
            } else if (due >= measuredFrom) {
                long now = nanos();
                ack.record(Math.max(now - due, 0) / 1000);
                lastAck.accumulateAndGet(now, Math::max);
            }
            settled.incrementAndGet();
        }

        void received(byte[] value) {
            if (value == null || value.length < 8) {
                return;
            }
            long due = stamp(value);
            if (due >= measuredFrom) {
                e2e.record(Math.max(nanos() - due, 0) / 1000);
            }
        }
    }

    static long stamp(byte[] value) {
        return ByteBuffer.wrap(value, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    static boolean waitUntil(long timeoutNs, java.util.function.BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutNs;
        while (!done.getAsBoolean()) {
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            Thread.sleep(5);
        }
        return true;
    }

    static void run(Map<String, String> kv, long[] cpu0, Watchdog w) throws Exception {
        String client = BenchWorker.get(kv, "client");
        String topic = BenchWorker.get(kv, "topic");
        int partitions = (int) BenchWorker.num(kv, "partitions");
        BenchWorker.Payload payload = new BenchWorker.Payload(VALUE_SIZE);
        String fnv = String.format("%016x", payload.fnv());
        if (!fnv.equals(BenchWorker.get(kv, "payload_fnv"))) {
            throw new IllegalStateException("payload pool differs from the Rust one: fnv " + fnv);
        }
        Stats stats = new Stats();
        Schedule s = Schedule.of(BenchWorker.num(kv, "rate"), BenchWorker.num(kv, "warmup_ms"),
                BenchWorker.num(kv, "measure_ms"), OFFSET_NS);
        stats.measuredFrom = s.measuredFrom();

        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, BenchWorker.get(kv, "bootstrap"));
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, "java-bench-latency");
        BenchWorker.common(c);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, BenchWorker.get(kv, "bootstrap"));
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "java-bench-latency");
        BenchWorker.common(p);
        // acks=all with idempotence: the Java client's defaults, named anyway.
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, BenchWorker.get(kv, "linger_ms"));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c);
                KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            // The consumer: every partition from its end, no group. The Java consumer is not
            // thread-safe: it is created here but used only by the reader thread.
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            AtomicBoolean stop = new AtomicBoolean();
            java.util.concurrent.CountDownLatch ready = new java.util.concurrent.CountDownLatch(1);
            Thread reader = new Thread(() -> {
                consumer.assign(tps);
                consumer.seekToEnd(tps);
                // Resolves the end offsets now (one ListOffsets), so the consumer is ready
                // when the schedule starts.
                for (TopicPartition tp : tps) {
                    consumer.position(tp);
                }
                ready.countDown();
                while (!stop.get()) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                        w.tick();
                        stats.received(r.value());
                    }
                }
            }, "latency-reader");
            reader.setDaemon(true);
            reader.start();
            // Connect before the schedule starts. The Rust workers get 0.5 s for this, then
            // the warm-up; the JVM loads and compiles the client's classes first, and on the
            // loaded 2-core machine the first send() blocked on metadata for seconds, so the
            // first measured records were already seconds late (ack p50 3.1 s at 1 k/s on
            // Tansu). Fetching the metadata and the consumer's positions first, then starting
            // the clock, measures the client, not its start-up.
            w.enter("connecting (metadata, the consumer's end offsets)");
            producer.partitionsFor(topic);
            ready.await();
            stats.clock = System.nanoTime();
            // The first records are due before any can be acknowledged: connecting is a phase.
            w.enter("producing at the fixed rate (connecting first)");
            generate(s, stats, (i, due) -> {
                byte[] value = payload.value(i);
                ByteBuffer.wrap(value, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(due);
                // The callback runs on the producer's I/O thread as the response arrives.
                producer.send(new ProducerRecord<>(topic, value), (meta, e) -> {
                    w.tick();
                    stats.acked(due, e == null);
                });
            });
            long total = s.total();
            w.enter("waiting for the last acknowledgements");
            if (!waitUntil(SETTLE_NS, () -> stats.settled.get() >= total)) {
                throw new IllegalStateException(stats.settled.get() + " of " + total + " records settled after 60s");
            }
            long acked = stats.ack.count();
            w.enter("waiting for the consumer to receive the last records");
            waitUntil(DRAIN_NS, () -> stats.e2e.count() >= acked);
            stop.set(true);
            reader.join(5_000);
            w.enter("closing the clients");
        }
        report(client, s, stats, cpu0);
        if (stats.failed.get() > 0) {
            throw new IllegalStateException(client + ": " + stats.failed.get() + " records failed");
        }
    }

    interface Send {
        void send(long i, long due);
    }

    /** Parks until each record's time and calls send; when behind, sends at once. */
    static void generate(Schedule s, Stats stats, Send send) {
        for (long i = 0; i < s.total(); i++) {
            long due = s.due(i);
            for (long now = stats.nanos(); now < due; now = stats.nanos()) {
                LockSupport.parkNanos(due - now);
            }
            stats.maxLag.accumulateAndGet(Math.max(stats.nanos() - due, 0), Math::max);
            send.send(i, due);
        }
    }

    /** The RESULT line of worker.rs `report`. */
    static void report(String client, Schedule s, Stats stats, long[] cpu0) {
        long[] cpu1 = BenchWorker.cpu();
        long acked = stats.ack.count();
        long span = Math.max(stats.lastAck.get() - stats.measuredFrom, 0);
        long[] a = stats.ack.summary();
        long[] e = stats.e2e.summary();
        System.out.printf(
                "RESULT client=%s case=%d/s records=%d failed=%d bytes=%d secs=%.4f cpu_us_per_record=%.4f "
                        + "peak_rss_mb=%.1f ack_p50_us=%d ack_p99_us=%d ack_p999_us=%d ack_max_us=%d "
                        + "e2e_p50_us=%d e2e_p99_us=%d e2e_p999_us=%d e2e_max_us=%d e2e_records=%d lag_max_us=%d%n",
                client, s.rate(), acked, stats.failed.get(), acked * VALUE_SIZE, span / 1e9,
                (double) ((cpu1[0] - cpu0[0]) + (cpu1[1] - cpu0[1])) / Math.max(s.total(), 1),
                BenchWorker.peakRssKib() / 1024.0, a[0], a[1], a[2], a[3], e[0], e[1], e[2], e[3],
                stats.e2e.count(), stats.maxLag.get() / 1000);
        System.out.flush();
    }

    /** Self-checks of the schedule and histogram (`BenchWorker selftest`); throws on a failure. */
    static void selftest() {
        Schedule s = Schedule.of(3, 1000, 2000, 1000);
        check(s.warmup() == 3 && s.measured() == 6 && s.total() == 9, "schedule sizes " + s);
        check(s.due(1) == 1000 + 333_333_333L && s.due(3) == 1000 + 1_000_000_000L, "due");
        check(s.due(3_000_000) == 1000 + 1_000_000L * 1_000_000_000L, "drift");
        for (long v : new long[] {0, 1, 127, 128, 129, 200, 4999, 1 << 20, (1 << 20) + 12_345}) {
            int i = Histogram.index(v);
            check(Histogram.upper(i) >= v && (i == 0 || Histogram.upper(i - 1) < v)
                    && Histogram.upper(i) - v <= v / 64, "bucket of " + v);
        }
        check(Histogram.index(-1L) == Histogram.BUCKETS - 1 && Histogram.upper(128) == 129, "layout");
        Histogram h = new Histogram();
        for (long v = 1; v <= 1000; v++) {
            h.record(v);
        }
        long[] sum = h.summary();
        long[] want = {500, 990, 999, 1000};
        for (int i = 0; i < 4; i++) {
            check(sum[i] >= want[i] && sum[i] - want[i] <= want[i] / 64, "quantile " + i + ": " + sum[i]);
        }
        h.record(250_000);
        check(h.quantile(1) == 250_000 && h.quantile(0.99) < 1000, "outlier");
        Histogram one = new Histogram();
        one.record(1_000_003);
        check(java.util.Arrays.equals(one.summary(), new long[] {1_000_003, 1_000_003, 1_000_003, 1_000_003}),
                "single sample");
        Stats st = new Stats();
        Schedule m = Schedule.of(1000, 2, 3, 0);
        st.measuredFrom = m.measuredFrom();
        for (long i = 0; i < m.total(); i++) {
            st.acked(m.due(i), true);
            byte[] v = new byte[VALUE_SIZE];
            ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN).putLong(m.due(i));
            st.received(v);
        }
        st.acked(m.due(4), false);
        st.received(new byte[] {1});
        check(st.ack.count() == 3 && st.e2e.count() == 3 && st.settled.get() == 6 && st.failed.get() == 1,
                "only measured records count");
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("selftest failed: " + what);
        }
    }
}
