import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * JavaPeer: the Java client (kafka-clients) as the reference peer of ferrokafka's interop
 * tests (tests/kafka_interop.rs drives it through tests/common/java.rs).
 *
 * <p>A line protocol on stdin and stdout, tab-separated, one record or event per line. Every
 * key, value and header field is escaped as {@link Field} says ({@code ~} is null, other
 * bytes outside {@code [A-Za-z0-9-._:/!*+@]} are {@code %XX}). Diagnostics and the client's
 * own logging go to stderr; any failure exits non-zero (1 a Kafka or I/O failure, 2 a usage
 * error).
 *
 * <pre>
 * JavaPeer produce --bootstrap B --topic T [--compression none|gzip|snappy|lz4|zstd] [-X k=v]...
 *   stdin:  KEY \t VALUE [\t HEADERS [\t PARTITION]]     one record per line, until EOF
 *           HEADERS is k=v,k=v (each side escaped; empty = no headers);
 *           PARTITION is a number, or empty for the default partitioner
 *   stdout: ack \t PARTITION \t OFFSET \t KEY             per record, in input order, once
 *                                                        every record is flushed
 *           done \t N
 *
 * JavaPeer consume --bootstrap B --topic T [--group G] [--assignor NAME] [--from-beginning]
 *                  [--count N] [--idle-ms MS] [--isolation read_committed|read_uncommitted]
 *                  [--commit auto|manual] [-X k=v]...
 *   With --group it subscribes (NAME: range, roundrobin, sticky, cooperative-sticky, as the
 *   protocol names go; default range; none with -X group.protocol=consumer, where the broker
 *   assigns); without, it assigns every partition of T.
 *   --commit manual turns auto-commit off and commits (synchronously) the offsets after the
 *   records printed: after each poll and when partitions are revoked, so a partition moves to
 *   another member exactly at what this one printed.
 *   stdout: owned \t P,P,...      the whole current assignment, after every change
 *           assigned \t P,...     | revoked \t P,...  | lost \t P,...   (rebalance callbacks)
 *           record \t PARTITION \t OFFSET \t KEY \t VALUE \t HEADERS \t TIMESTAMP
 *           committed                                  (answer to a `commit` line)
 *           idle                                       (no new record for --idle-ms)
 *           closed \t N                                 (consumer closed; N records printed)
 *   stdin:  `commit` commits now (manual mode: what was printed; auto: the positions);
 *           `stop`, or stdin closing, closes the consumer (leaving the group cleanly)
 *   It also stops after --count records, or after --idle-ms without a new record (counted
 *   from the first record: until one arrives it waits, however long that takes).
 *   Every line is flushed as it is written, so a test sees events as they happen.
 *
 * JavaPeer share-consume | share-config ...   share groups (KIP-932): see SharePeer
 *
 * JavaPeer log-size --bootstrap B --topic T[,T...]
 *   stdout: size \t T \t BYTES   per topic: bytes of its log on the brokers (DescribeLogDirs),
 *                                to see that compression really happened
 * </pre>
 */
public final class JavaPeer {
    private JavaPeer() {}

    /** Exit code for a failed run (Kafka error, I/O error). */
    static final int EXIT_FAILED = 1;
    /** Exit code for bad arguments. */
    static final int EXIT_USAGE = 2;

    /** stdout, flushed by the callers at each point a test waits for. */
    static final PrintWriter OUT =
            new PrintWriter(
                    new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8)));

    public static void main(String[] argv) {
        Args args;
        try {
            args = Args.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("JavaPeer: " + e.getMessage());
            System.exit(EXIT_USAGE);
            return;
        }
        int code;
        try {
            switch (args.command) {
                case "produce":
                    code = ProducePeer.run(args);
                    break;
                case "consume":
                    code = ConsumePeer.run(args);
                    break;
                case "log-size":
                    code = LogSize.run(args);
                    break;
                case "share-consume":
                    code = SharePeer.consume(args);
                    break;
                case "share-config":
                    code = SharePeer.configure(args);
                    break;
                default:
                    System.err.println("JavaPeer: unknown command `" + args.command + "`");
                    code = EXIT_USAGE;
            }
        } catch (Exception e) {
            System.err.println("JavaPeer " + args.command + " failed:");
            e.printStackTrace();
            code = EXIT_FAILED;
        }
        OUT.flush();
        // The client's threads are not all daemons: exit explicitly.
        System.exit(code);
    }

    /** Writes one line and flushes it. */
    static void line(String text) {
        OUT.println(text);
        OUT.flush();
    }

    /** Partition numbers as `P,P,...`, sorted. */
    static String partitions(java.util.Collection<org.apache.kafka.common.TopicPartition> tps) {
        List<Integer> ps = new ArrayList<>();
        for (org.apache.kafka.common.TopicPartition tp : tps) {
            ps.add(tp.partition());
        }
        ps.sort(null);
        StringBuilder out = new StringBuilder();
        for (int p : ps) {
            if (out.length() > 0) {
                out.append(',');
            }
            out.append(p);
        }
        return out.toString();
    }

    /** The command line: a command, `--name value` options, flags, and `-X key=value`. */
    static final class Args {
        private static final Set<String> FLAGS = Set.of("--from-beginning");
        private static final Set<String> OPTIONS =
                Set.of(
                        "--bootstrap",
                        "--topic",
                        "--compression",
                        "--group",
                        "--assignor",
                        "--count",
                        "--idle-ms",
                        "--isolation",
                        "--commit");

        String command;
        final Map<String, String> options = new LinkedHashMap<>();
        final Set<String> flags = new HashSet<>();
        /** `-X` properties, applied after (so over) everything the options set. */
        final Properties extra = new Properties();

        static Args parse(String[] argv) {
            if (argv.length == 0) {
                throw new IllegalArgumentException("usage: JavaPeer produce|consume|log-size ...");
            }
            Args a = new Args();
            a.command = argv[0];
            for (int i = 1; i < argv.length; i++) {
                String arg = argv[i];
                if (FLAGS.contains(arg)) {
                    a.flags.add(arg);
                } else if (OPTIONS.contains(arg) || arg.equals("-X")) {
                    if (i + 1 >= argv.length) {
                        throw new IllegalArgumentException(arg + " needs a value");
                    }
                    String value = argv[++i];
                    if (arg.equals("-X")) {
                        int eq = value.indexOf('=');
                        if (eq <= 0) {
                            throw new IllegalArgumentException("-X " + value + ": expected key=value");
                        }
                        a.extra.put(value.substring(0, eq), value.substring(eq + 1));
                    } else {
                        a.options.put(arg, value);
                    }
                } else {
                    throw new IllegalArgumentException("unknown argument `" + arg + "`");
                }
            }
            a.require("--bootstrap");
            a.require("--topic");
            return a;
        }

        void require(String name) {
            if (!options.containsKey(name)) {
                throw new IllegalArgumentException(command + " needs " + name);
            }
        }

        String get(String name) {
            return options.get(name);
        }

        String get(String name, String fallback) {
            return options.getOrDefault(name, fallback);
        }

        long number(String name, long fallback) {
            String v = options.get(name);
            if (v == null) {
                return fallback;
            }
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(name + " " + v + ": not a number");
            }
        }

        boolean flag(String name) {
            return flags.contains(name);
        }
    }
}
