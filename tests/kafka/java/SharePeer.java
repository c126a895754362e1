import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Share groups (KIP-932) through the Java client, for tests/share_kafka.rs.
 *
 * <pre>
 * JavaPeer share-consume --bootstrap B --topic T --group G [--idle-ms MS] [--count N] [-X k=v]...
 *   A KafkaShareConsumer in implicit acknowledgement mode (each poll accepts what the previous
 *   poll returned; close accepts the last poll's records).
 *   stdout: polling                               (after the first poll returned)
 *           shared \t PARTITION \t OFFSET \t DELIVERY_COUNT \t VALUE   per record
 *           idle                                 (no new record for --idle-ms, after the first)
 *           closed \t N                           (consumer closed; N records printed)
 *   stdin:  `stop`, or stdin closing, closes the consumer.
 *   Stops after --count records, or after --idle-ms without a new record (counted from the
 *   first record).
 *
 * JavaPeer share-config --bootstrap B --topic T --group G -X k=v...
 *   Sets the group's configs (IncrementalAlterConfigs on the GROUP resource, e.g.
 *   share.auto.offset.reset=earliest, share.record.lock.duration.ms=15000).
 *   stdout: configured
 * </pre>
 */
final class SharePeer {
    private SharePeer() {}

    static int configure(JavaPeer.Args args) throws Exception {
        args.require("--group");
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("--bootstrap"));
        try (Admin admin = Admin.create(props)) {
            ConfigResource group = new ConfigResource(ConfigResource.Type.GROUP, args.get("--group"));
            List<AlterConfigOp> ops = new ArrayList<>();
            for (String key : args.extra.stringPropertyNames()) {
                ops.add(
                        new AlterConfigOp(
                                new ConfigEntry(key, args.extra.getProperty(key)),
                                AlterConfigOp.OpType.SET));
            }
            Map<ConfigResource, Collection<AlterConfigOp>> change = Map.of(group, ops);
            admin.incrementalAlterConfigs(change).all().get();
        }
        JavaPeer.line("configured");
        return 0;
    }

    static int consume(JavaPeer.Args args) throws Exception {
        args.require("--group");
        long idleMs = args.number("--idle-ms", -1);
        long count = args.number("--count", -1);
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("--bootstrap"));
        props.put(ConsumerConfig.GROUP_ID_CONFIG, args.get("--group"));
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.putAll(args.extra);
        LinkedBlockingQueue<String> commands = new LinkedBlockingQueue<>();
        Thread stdin =
                new Thread(
                        () -> {
                            try (BufferedReader in =
                                    new BufferedReader(
                                            new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                                String line;
                                while ((line = in.readLine()) != null) {
                                    commands.add(line.trim());
                                }
                            } catch (IOException e) {
                                System.err.println("JavaPeer share-consume: stdin: " + e);
                            }
                            commands.add("stop");
                        },
                        "stdin");
        stdin.setDaemon(true);
        stdin.start();
        long printed = 0;
        long lastRecord = -1;
        try (KafkaShareConsumer<byte[], byte[]> consumer = new KafkaShareConsumer<>(props)) {
            consumer.subscribe(Set.of(args.get("--topic")));
            boolean stop = false;
            boolean polled = false;
            while (!stop) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                if (!polled) {
                    polled = true;
                    JavaPeer.line("polling");
                }
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    short delivery = r.deliveryCount().orElse((short) -1);
                    JavaPeer.line(
                            "shared\t"
                                    + r.partition()
                                    + "\t"
                                    + r.offset()
                                    + "\t"
                                    + delivery
                                    + "\t"
                                    + Field.encode(r.value()));
                    printed++;
                    lastRecord = System.currentTimeMillis();
                }
                if (count >= 0 && printed >= count) {
                    stop = true;
                }
                if (idleMs >= 0 && lastRecord >= 0 && System.currentTimeMillis() - lastRecord > idleMs) {
                    JavaPeer.line("idle");
                    stop = true;
                }
                String command;
                while ((command = commands.poll()) != null) {
                    if (command.equals("stop")) {
                        stop = true;
                    }
                }
            }
        }
        JavaPeer.line("closed\t" + printed);
        return 0;
    }
}
