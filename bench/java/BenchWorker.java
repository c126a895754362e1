import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client's (kafka-clients) worker for ferrokafka's benchmark (bench/): one run of one
 * produce or consume case, measured in this process, reported as the same RESULT line the
 * Rust workers print.
 *
 * <pre>
 * java -cp .. BenchWorker produce client=java case=.. bootstrap=.. topic=.. records=..
 *     batch_size=.. size=.. keyed=0|1 acks=1|all codec=.. linger_ms=.. budget=..
 *     max_in_flight=.. idempotent=0|1 payload_fnv=..
 * java -cp .. BenchWorker consume client=java case=.. bootstrap=.. topic=.. records=..
 *     partitions=.. fetch_max_wait_ms=.. max_partition_fetch_bytes=.. fetch_max_bytes=..
 *     stall_ms=..
 * </pre>
 *
 * The parent (bench/src/external.rs) passes every setting, derived from its case tables.
 *
 * Measurement: CPU is utime + stime from /proc/self/stat (10 ms ticks), read first thing in
 * main, so the JVM's own start (before main) is not counted but loading and JIT-compiling the
 * client's classes, and the GC, are; peak RSS is VmHWM of the whole JVM. Produce time runs from
 * the first send after a one-record warm-up to the last acknowledgement, consume time from the
 * first record to the last: neither includes the JVM's start.
 */
public final class BenchWorker {
    private static final long CLOCK_TICKS = 100;

    public static void main(String[] argv) {
        long[] cpu0 = cpu();
        try {
            if (argv.length == 0) {
                throw new IllegalArgumentException("expected produce, consume, latency or selftest, then KEY=VALUE arguments");
            }
            Map<String, String> kv = parseArgs(argv);
            switch (argv[0]) {
                case "produce" -> produce(kv, cpu0, Watchdog.start(kv));
                case "consume" -> consume(kv, cpu0, Watchdog.start(kv));
                case "latency" -> Latency.run(kv, cpu0, Watchdog.start(kv));
                case "selftest" -> Latency.selftest();
                default -> throw new IllegalArgumentException("unknown mode " + argv[0]);
            }
        } catch (Exception e) {
            Watchdog.fail(e.toString());
        }
        // Background threads of a closed client must not keep the JVM.
        System.exit(0);
    }

    static Map<String, String> parseArgs(String[] argv) {
        Map<String, String> kv = new HashMap<>();
        for (int i = 1; i < argv.length; i++) {
            int eq = argv[i].indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException("worker argument `" + argv[i] + "` is not KEY=VALUE");
            }
            kv.put(argv[i].substring(0, eq), argv[i].substring(eq + 1));
        }
        return kv;
    }

    static String get(Map<String, String> kv, String key) {
        String v = kv.get(key);
        if (v == null) {
            throw new IllegalArgumentException("worker needs " + key + "=..");
        }
        return v;
    }

    static long num(Map<String, String> kv, String key) {
        return Long.parseLong(get(kv, key));
    }

    /** User and system CPU time of this process so far, in microseconds. */
    static long[] cpu() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            // Fields after the command name (which may hold spaces) follow the last ')'.
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split("\\s+");
            long perTick = 1_000_000 / CLOCK_TICKS;
            return new long[] {Long.parseLong(f[11]) * perTick, Long.parseLong(f[12]) * perTick};
        } catch (Exception e) {
            return new long[] {0, 0};
        }
    }

    /** VmHWM in KiB; 0 if unknown. */
    static long peakRssKib() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
                }
            }
        } catch (Exception e) {
            // unknown
        }
        return 0;
    }

    static void printResult(Map<String, String> kv, long records, long failed, long bytes, long nanos, long[] cpu0) {
        long[] cpu1 = cpu();
        long user = cpu1[0] - cpu0[0];
        long sys = cpu1[1] - cpu0[1];
        System.out.printf(
                "RESULT client=%s case=%s records=%d failed=%d bytes=%d secs=%.4f cpu_us_per_record=%.4f "
                        + "user_s=%.3f sys_s=%.3f peak_rss_mb=%.1f%n",
                kv.get("client"), kv.get("case"), records, failed, bytes, nanos / 1e9,
                (double) (user + sys) / Math.max(records, 1), user / 1e6, sys / 1e6, peakRssKib() / 1024.0);
        System.out.flush();
    }

    /**
     * Settings of every client. kafka-clients 4.4 sends ApiVersions v5 with the cluster id and
     * node id it expects (metadata.cluster.check.enable, on by default) once it knows them from
     * a metadata response. Tansu 0.6 and librdkafka's mock do not know v5: the mock closes the
     * connection on it, Tansu parses it as v4 and closes the connection when the bytes of the
     * cluster id do not parse as tagged fields. Neither answers UNSUPPORTED_VERSION, the one
     * reply the client falls back on, so it reconnects to the leader forever and never
     * produces (seen in its NetworkClient debug log: "Cancelled in-flight API_VERSIONS request
     * ... due to node 111 being disconnected", again and again). Without the check the client
     * sends the same v5 request with a null cluster id, which both brokers parse; the check only
     * guards against misrouted connections, it changes nothing the bench measures.
     */
    static void common(Properties p) {
        p.put(CommonClientConfigs.METADATA_CLUSTER_CHECK_ENABLE_CONFIG, "false");
    }

    static void produce(Map<String, String> kv, long[] cpu0, Watchdog w) throws Exception {
        long records = num(kv, "records");
        int size = (int) num(kv, "size");
        boolean keyed = get(kv, "keyed").equals("1");
        boolean all = get(kv, "acks").equals("all");
        Payload payload = new Payload(size);
        String fnv = String.format("%016x", payload.fnv());
        if (!fnv.equals(get(kv, "payload_fnv"))) {
            throw new IllegalStateException("payload pool differs from the Rust one: fnv " + fnv);
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, get(kv, "bootstrap"));
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "java-bench");
        common(p);
        p.put(ProducerConfig.LINGER_MS_CONFIG, get(kv, "linger_ms"));
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, get(kv, "batch_size"));
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, get(kv, "budget"));
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, get(kv, "max_in_flight"));
        p.put(ProducerConfig.ACKS_CONFIG, all ? "all" : "1");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, get(kv, "idempotent").equals("1") ? "true" : "false");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, get(kv, "codec"));
        // The default partitioner: murmur2 for keys, uniform sticky (KIP-794) for keyless.
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        String topic = get(kv, "topic");
        AtomicLong ok = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        AtomicReference<Exception> firstError = new AtomicReference<>();
        Callback done = (meta, e) -> {
            w.tick();
            if (e == null) {
                ok.incrementAndGet();
            } else {
                failed.incrementAndGet();
                firstError.compareAndSet(null, e);
            }
        };
        long start;
        long end;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            // Warm-up: one record delivered before the clock starts (metadata, connections).
            w.enter("waiting for the warm-up record's acknowledgement (connecting)");
            producer.send(new ProducerRecord<>(topic, payload.value(0))).get();
            w.enter("producing");
            start = System.nanoTime();
            for (long i = 0; i < records; i++) {
                byte[] key = keyed ? key(i) : null;
                // The Java client copies the value into its batch: a fresh array per record
                // is not needed, but the record object is.
                producer.send(new ProducerRecord<>(topic, key, payload.value(i)), done);
            }
            producer.flush();
            end = System.nanoTime();
            w.enter("closing the producer");
        }
        if (firstError.get() != null) {
            System.err.println("java: first delivery error: " + firstError.get());
        }
        long n = ok.get();
        printResult(kv, n, failed.get(), n * (size + (keyed ? 9 : 0)), end - start, cpu0);
        if (failed.get() > 0 || n != records) {
            throw new IllegalStateException(n + " of " + records + " records acknowledged, " + failed.get() + " failed");
        }
    }

    /** The key of record i of a keyed case: "k" and 8 digits (cases.rs `key`). */
    static byte[] key(long i) {
        return String.format("k%08d", i % 100_000_000L).getBytes(StandardCharsets.US_ASCII);
    }

    static void consume(Map<String, String> kv, long[] cpu0, Watchdog w) throws Exception {
        long records = num(kv, "records");
        int partitions = (int) num(kv, "partitions");
        String topic = get(kv, "topic");
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, get(kv, "bootstrap"));
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "java-bench");
        common(p);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, get(kv, "fetch_max_wait_ms"));
        p.put(ConsumerConfig.FETCH_MIN_BYTES_CONFIG, "1");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, get(kv, "max_partition_fetch_bytes"));
        p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, get(kv, "fetch_max_bytes"));
        p.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        long count = 0;
        long bytes = 0;
        long first = 0;
        long end;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            // Assign every partition from the beginning, no group (as the Rust workers do).
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            // The Java consumer fetches only inside poll: a stall buffers nothing.
            w.enter("stalling before the first poll");
            Thread.sleep(num(kv, "stall_ms"));
            w.enter("fetching");
            while (count < records) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (first == 0) {
                        first = System.nanoTime();
                    }
                    count++;
                    w.tick();
                    bytes += (r.key() == null ? 0 : r.key().length) + (r.value() == null ? 0 : r.value().length);
                }
            }
            end = System.nanoTime();
            w.enter("closing the consumer");
        }
        printResult(kv, count, 0, bytes, end - first, cpu0);
        if (count != records) {
            throw new IllegalStateException("read " + count + " of " + records + " records");
        }
    }

    /**
     * The record values: slices of one 1 MiB pool of word-like text, generated exactly as
     * bench/src/payload.rs does (the parent passes the pool's FNV-1a hash to prove it).
     */
    static final class Payload {
        static final int POOL = 1 << 20;
        static final String[] WORDS = {
            "order", "id", "customer", "total", "price", "sku", "status", "shipped", "pending", "user",
            "event", "click", "view", "session", "amount", "currency", "EUR", "USD", "true", "false",
            "null", "timestamp", "region", "eu-west", "us-east", "item", "quantity", "warehouse",
        };
        final byte[] pool;
        final int size;

        Payload(int size) {
            this.size = size;
            byte[] buf = new byte[POOL + 64];
            int len = 0;
            long state = 0x9e3779b97f4a7c15L;
            long n = 0;
            while (len < POOL) {
                // xorshift64* on unsigned 64-bit values.
                state ^= state >>> 12;
                state ^= state << 25;
                state ^= state >>> 27;
                long r = state * 0x2545f4914f6cdd1dL;
                byte[] w = WORDS[(int) Long.remainderUnsigned(r, WORDS.length)].getBytes(StandardCharsets.US_ASCII);
                len = put(buf, len, w);
                if (r >>> 60 == 0) {
                    n += (r >>> 40) & 0xffff;
                    len = put(buf, len, Long.toUnsignedString(n).getBytes(StandardCharsets.US_ASCII));
                }
                len = put(buf, len, new byte[] {((r >>> 58) & 3) == 0 ? (byte) ',' : (byte) ' '});
            }
            pool = java.util.Arrays.copyOf(buf, POOL);
        }

        private static int put(byte[] buf, int len, byte[] b) {
            int room = Math.min(b.length, buf.length - len);
            System.arraycopy(b, 0, buf, len, room);
            return len + room;
        }

        /** The value of record i (the Java client takes whole arrays: a copy of the slice). */
        byte[] value(long i) {
            int at = (int) Long.remainderUnsigned(i * 7919L, POOL - size);
            return java.util.Arrays.copyOfRange(pool, at, at + size);
        }

        long fnv() {
            long h = 0xcbf29ce484222325L;
            for (byte b : pool) {
                h ^= b & 0xff;
                h *= 0x100000001b3L;
            }
            return h;
        }
    }
}
