import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.LinkedBlockingQueue;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * `JavaPeer consume`: records and group events to stdout lines, commands from stdin. See
 * JavaPeer for the protocol.
 *
 * <p>KafkaConsumer is single-threaded: a daemon thread only reads stdin into a queue, and the
 * main thread polls (100 ms at a time) and handles the queued commands between polls, so the
 * consumer is only ever touched by the main thread (rebalance callbacks run inside poll).
 */
final class ConsumePeer {
    private ConsumePeer() {}

    /** What stdin closing means: the same as a `stop` line. */
    private static final String EOF = "stop";

    /** Java's assignor class for each protocol name the tests use. */
    private static String assignorClass(String name) {
        switch (name) {
            case "range":
                return "org.apache.kafka.clients.consumer.RangeAssignor";
            case "roundrobin":
                return "org.apache.kafka.clients.consumer.RoundRobinAssignor";
            case "sticky":
                return "org.apache.kafka.clients.consumer.StickyAssignor";
            case "cooperative-sticky":
                return "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
            default:
                throw new IllegalArgumentException("--assignor " + name + ": unknown assignor");
        }
    }

    static int run(JavaPeer.Args args) throws Exception {
        String topic = args.get("--topic");
        String group = args.get("--group");
        String commit = args.get("--commit", "auto");
        if (!commit.equals("auto") && !commit.equals("manual")) {
            throw new IllegalArgumentException("--commit " + commit + ": expected auto or manual");
        }
        boolean manual = commit.equals("manual");
        long count = args.number("--count", -1);
        long idleMs = args.number("--idle-ms", -1);

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("--bootstrap"));
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "java-peer-consumer");
        props.put(
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG,
                args.flag("--from-beginning") ? "earliest" : "latest");
        props.put(
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, args.get("--isolation", "read_uncommitted"));
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, Boolean.toString(!manual));
            // With -X group.protocol=consumer (KIP-848) the broker assigns, and Java refuses
            // a client-side assignor.
            if (!"consumer".equalsIgnoreCase(args.extra.getProperty("group.protocol", "classic"))) {
                props.put(
                        ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                        assignorClass(args.get("--assignor", "range")));
            }
        } else {
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        }
        props.putAll(args.extra);

        LinkedBlockingQueue<String> commands = new LinkedBlockingQueue<>();
        Thread stdin =
                new Thread(
                        () -> {
                            BufferedReader in =
                                    new BufferedReader(
                                            new InputStreamReader(System.in, StandardCharsets.UTF_8));
                            try {
                                String line;
                                while ((line = in.readLine()) != null) {
                                    commands.add(line.trim());
                                }
                            } catch (IOException e) {
                                System.err.println("JavaPeer consume: stdin: " + e);
                            }
                            commands.add(EOF);
                        },
                        "stdin");
        stdin.setDaemon(true);
        stdin.start();

        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            Session s = new Session(consumer, manual);
            if (group != null) {
                consumer.subscribe(List.of(topic), s);
            } else {
                List<TopicPartition> all = new ArrayList<>();
                for (PartitionInfo p : consumer.partitionsFor(topic)) {
                    all.add(new TopicPartition(topic, p.partition()));
                }
                consumer.assign(all);
                if (args.flag("--from-beginning")) {
                    consumer.seekToBeginning(all);
                } else {
                    consumer.seekToEnd(all);
                }
                s.owned.addAll(all);
                JavaPeer.line("owned\t" + JavaPeer.partitions(s.owned));
            }

            // The idle clock starts at the first record: a JVM that is slow to start, join or
            // find its offsets must not look like a topic with nothing more to read.
            long lastRecord = -1;
            loop:
            while (count < 0 || s.printed < count) {
                for (String cmd; (cmd = commands.poll()) != null; ) {
                    switch (cmd) {
                        case "":
                            break;
                        case "stop":
                            break loop;
                        case "commit":
                            if (manual) {
                                s.commitPrinted(true);
                            } else {
                                consumer.commitSync();
                            }
                            JavaPeer.line("committed");
                            break;
                        default:
                            System.err.println("JavaPeer consume: unknown command `" + cmd + "`");
                            return JavaPeer.EXIT_USAGE;
                    }
                }
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                if (records.isEmpty()) {
                    if (idleMs >= 0
                            && lastRecord >= 0
                            && System.nanoTime() - lastRecord > idleMs * 1_000_000L) {
                        JavaPeer.line("idle");
                        break;
                    }
                    continue;
                }
                lastRecord = System.nanoTime();
                Set<TopicPartition> rewound = new HashSet<>();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    if (count >= 0 && s.printed >= count) {
                        // Stopping mid-batch: put the position back on the first record not
                        // printed, so an auto-commit on close does not skip it.
                        if (rewound.add(tp)) {
                            consumer.seek(tp, r.offset());
                        }
                        continue;
                    }
                    JavaPeer.OUT.println(recordLine(r));
                    s.printed++;
                    s.pending.put(tp, new OffsetAndMetadata(r.offset() + 1));
                }
                JavaPeer.OUT.flush();
                if (manual) {
                    s.commitPrinted(false);
                }
            }
            if (manual) {
                s.commitPrinted(true);
            }
            consumer.close();
            JavaPeer.line("closed\t" + s.printed);
        }
        return 0;
    }

    /** `record \t PARTITION \t OFFSET \t KEY \t VALUE \t HEADERS \t TIMESTAMP`. */
    private static String recordLine(ConsumerRecord<byte[], byte[]> r) {
        StringBuilder headers = new StringBuilder();
        for (Header h : r.headers()) {
            if (headers.length() > 0) {
                headers.append(',');
            }
            headers.append(Field.encode(h.key())).append('=').append(Field.encode(h.value()));
        }
        return "record\t"
                + r.partition()
                + "\t"
                + r.offset()
                + "\t"
                + Field.encode(r.key())
                + "\t"
                + Field.encode(r.value())
                + "\t"
                + headers
                + "\t"
                + r.timestamp();
    }

    /** The consumer's state across polls and rebalance callbacks. */
    private static final class Session implements ConsumerRebalanceListener {
        final KafkaConsumer<byte[], byte[]> consumer;
        final boolean manual;
        /** Partitions owned now, as the callbacks reported them (deltas when cooperative). */
        final Set<TopicPartition> owned = new TreeSet<>((a, b) -> a.partition() - b.partition());
        /** Offsets after the records printed and not yet committed (manual mode). */
        final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
        long printed;

        Session(KafkaConsumer<byte[], byte[]> consumer, boolean manual) {
            this.consumer = consumer;
            this.manual = manual;
        }

        /**
         * Commits the offsets after the printed records. Between polls a rebalance may be under
         * way (the commit is then refused): unless `must`, that only defers them to the next
         * poll or to the revoke callback, which commits before the partitions move.
         */
        void commitPrinted(boolean must) {
            if (!manual || pending.isEmpty()) {
                return;
            }
            try {
                consumer.commitSync(new HashMap<>(pending));
                pending.clear();
            } catch (RebalanceInProgressException | CommitFailedException e) {
                if (must) {
                    throw e;
                }
                System.err.println("JavaPeer consume: commit deferred: " + e);
            }
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            owned.addAll(partitions);
            JavaPeer.line("assigned\t" + JavaPeer.partitions(partitions));
            JavaPeer.line("owned\t" + JavaPeer.partitions(owned));
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            // Before the partitions move on: what was printed from them must be committed, or
            // the next owner reads it again.
            commitPrinted(true);
            owned.removeAll(partitions);
            JavaPeer.line("revoked\t" + JavaPeer.partitions(partitions));
            JavaPeer.line("owned\t" + JavaPeer.partitions(owned));
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            // Another member may own them already: committing would fail; forget them.
            for (TopicPartition tp : partitions) {
                pending.remove(tp);
            }
            owned.removeAll(partitions);
            JavaPeer.line("lost\t" + JavaPeer.partitions(partitions));
            JavaPeer.line("owned\t" + JavaPeer.partitions(owned));
        }
    }
}
