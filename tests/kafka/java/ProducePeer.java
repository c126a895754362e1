import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * `JavaPeer produce`: stdin lines to records with the Java producer's defaults (its default
 * partitioner, batching, idempotence), then one `ack` line per record. See JavaPeer for the
 * protocol.
 */
final class ProducePeer {
    private ProducePeer() {}

    static int run(JavaPeer.Args args) throws Exception {
        String topic = args.get("--topic");
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("--bootstrap"));
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "java-peer-producer");
        if (args.get("--compression") != null) {
            props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args.get("--compression"));
        }
        props.putAll(args.extra);

        List<String> keys = new ArrayList<>();
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            BufferedReader in =
                    new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) {
                    continue;
                }
                String[] f = line.split("\t", -1);
                if (f.length < 2 || f.length > 4) {
                    throw new IllegalArgumentException(
                            "expected KEY<TAB>VALUE[<TAB>HEADERS[<TAB>PARTITION]], got `" + line + "`");
                }
                RecordHeaders headers = new RecordHeaders();
                if (f.length >= 3 && !f[2].isEmpty()) {
                    for (String h : f[2].split(",", -1)) {
                        int eq = h.indexOf('=');
                        if (eq < 0) {
                            throw new IllegalArgumentException("header `" + h + "` is not k=v");
                        }
                        headers.add(
                                Field.decodeString(h.substring(0, eq)), Field.decode(h.substring(eq + 1)));
                    }
                }
                Integer partition = f.length == 4 && !f[3].isEmpty() ? Integer.valueOf(f[3]) : null;
                ProducerRecord<byte[], byte[]> record =
                        new ProducerRecord<>(
                                topic, partition, null, Field.decode(f[0]), Field.decode(f[1]), headers);
                keys.add(f[0]);
                acks.add(producer.send(record));
            }
            producer.flush();
            for (int i = 0; i < acks.size(); i++) {
                RecordMetadata md;
                try {
                    md = acks.get(i).get();
                } catch (ExecutionException e) {
                    System.err.println("JavaPeer produce: record " + i + " failed: " + e.getCause());
                    return JavaPeer.EXIT_FAILED;
                }
                JavaPeer.OUT.println("ack\t" + md.partition() + "\t" + md.offset() + "\t" + keys.get(i));
            }
            JavaPeer.line("done\t" + acks.size());
        }
        return 0;
    }
}
