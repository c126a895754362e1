import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;

/**
 * `JavaPeer log-size`: the bytes a topic takes in the brokers' log directories. A test that
 * writes the same compressible records with each codec compares these sizes to see that the
 * batches really were compressed (a consumer cannot tell: it gets the records decompressed).
 */
final class LogSize {
    private LogSize() {}

    static int run(JavaPeer.Args args) throws Exception {
        // One JVM for many topics: starting one costs about a second.
        List<String> topics = List.of(args.get("--topic").split(","));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("--bootstrap"));
        props.putAll(args.extra);
        try (Admin admin = Admin.create(props)) {
            List<Integer> brokers = new ArrayList<>();
            for (Node n : admin.describeCluster().nodes().get()) {
                brokers.add(n.id());
            }
            Map<String, Long> sizes = new LinkedHashMap<>();
            for (String topic : topics) {
                sizes.put(topic, 0L);
            }
            Map<Integer, Map<String, LogDirDescription>> dirs =
                    admin.describeLogDirs(brokers).allDescriptions().get();
            for (Map<String, LogDirDescription> byDir : dirs.values()) {
                for (LogDirDescription dir : byDir.values()) {
                    for (Map.Entry<TopicPartition, ReplicaInfo> e : dir.replicaInfos().entrySet()) {
                        sizes.computeIfPresent(
                                e.getKey().topic(), (t, size) -> size + e.getValue().size());
                    }
                }
            }
            for (Map.Entry<String, Long> e : sizes.entrySet()) {
                JavaPeer.OUT.println("size\t" + e.getKey() + "\t" + e.getValue());
            }
            JavaPeer.OUT.flush();
        }
        return 0;
    }
}
