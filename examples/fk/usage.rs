//! The help text: the one place that documents every command, option and exit code.

pub const USAGE: &str = "\
fk: produce, consume and administer Kafka (a kcat-class tool on ferrokafka)

Usage:
  fk produce -b BROKERS -t TOPIC [options] < input
  fk consume -b BROKERS -t TOPIC [options] > output
  fk topics list|describe|create|delete|alter -b BROKERS [options] [TOPIC...]
  fk groups list|describe|lag|reset-offsets|delete -b BROKERS [options] [GROUP...]
  fk metadata -b BROKERS [-t TOPIC]... [-J]
  fk --help

Every command takes:
  -b BROKERS           bootstrap servers, host:port[,host:port...] (required)
  -X KEY=VALUE         any client property (and for produce/consume any producer/consumer
                       property), e.g. -X client.id=me -X request.timeout.ms=10000.
                       Repeatable. Options are applied left to right, so a later one wins.
  -F FILE              properties from a Java properties file (key=value or key: value
                       lines, # and ! comments), e.g. the client.properties of Kafka's own
                       tools; applied where it stands among the -X options.
  -h, --help           this message

fk produce reads records from stdin, one per line (the newline is not part of the record;
every line is a record, an empty one too), sends them, and prints `delivered N, failed M`
to stderr, with the first errors.

Options for produce:
  -t TOPIC             topic to write to (required)
  -K DELIM             split each line at the first DELIM: the key before it, the value
                       after it. A line without DELIM has a null key and is all value.
                       Without -K, every record has a null key.
  -H NAME=VALUE        add this header to every record (repeatable, in order; the value
                       may be empty)
  -p PARTITION         write every record to this partition (default: the partitioner
                       chooses, by key when there is one)
  --timestamp MS       give every record this timestamp (milliseconds since the epoch;
                       default: the time it is sent)
  --acks 0|1|all       acknowledgements to wait for (default all, with idempotence)
  --compression CODEC  none, gzip, snappy, lz4 or zstd (default none)

fk consume prints records to stdout, in order within each partition, until it has printed
COUNT records (-c), every partition is read to its end (-e), or it gets Ctrl-C.

Options for consume:
  -t TOPIC             topic to read (required)
  -p PARTITION         read only this partition (not with -g)
  -g GROUP             read as a member of consumer group GROUP: the group shares the
                       partitions among its members, and the offsets of the printed records
                       are committed, so the next run with the same GROUP goes on after
                       them. Without -g, fk reads every partition and commits nothing.
  -o beginning|end|OFFSET|-N|s@MS
                       where to start: the oldest record, after the newest (the default:
                       only new records), offset OFFSET of every partition, N records before
                       the end of every partition (or its oldest record), or the first
                       record whose timestamp is at or after MS milliseconds since the
                       epoch (the end when there is none). With -g, only beginning or end,
                       and only for partitions the group has no committed offset for.
  -c COUNT             exit after COUNT records
  -e                   exit once every assigned partition is read to its end: the high
                       watermark read when the partition was assigned (at start without
                       -g). Records written later are not waited for.
  -K DELIM             print `KEY DELIM VALUE` (without spaces), not just the value. A null
                       key or value prints as nothing.
  -f FORMAT            print each record as FORMAT says (no newline is added):
                         %t topic   %p partition   %o offset   %T timestamp (ms)
                         %k key     %s value       %K key length   %S value length
                         %h headers as k=v,k=v (a null header value prints its key alone)
                         %% a percent sign; \\n newline, \\t tab, \\r return, \\\\ backslash
                       A null key or value prints as nothing and its length as -1.
                       Example: -f '%t/%p@%o %k=%s [%h]\\n'
  -J                   print each record as one JSON object on its own line:
                       {\"topic\",\"partition\",\"offset\",\"tstype\" (create|logappend),\"ts\",
                       \"key\",\"payload\",\"headers\": [{\"key\",\"value\"}]}. A key, value or
                       header value is a string when it is UTF-8, null when null, and
                       {\"base64\": \"...\"} (standard base64) for other bytes.
  -K, -f and -J exclude each other; without them each record prints as its value and a
  newline.

fk topics (tables with a header line on stdout):
  topics list [--internal]          TOPIC PARTITIONS REPLICATION, internal topics too with
                                    --internal
  topics describe TOPIC...          a table of topics (id, partitions, replication, configs
                                    set on the topic), then one of partitions (leader,
                                    replicas, ISR, offline replicas)
  topics create TOPIC [-P N] [-R N] [-c KEY=VALUE]...
                                    N partitions, replication factor N (default: the
                                    broker's), topic configs
  topics delete TOPIC...
  topics alter TOPIC [--set KEY=VALUE]... [--delete KEY]... [--partitions N]
                                    incremental config changes; --partitions grows the topic
                                    to N partitions

fk groups:
  groups list                       GROUP TYPE STATE PROTOCOL-TYPE COORDINATOR
  groups describe GROUP...          a table of groups (type, state, assignor, coordinator,
                                    members), then one of members with their assignments
  groups lag GROUP                  per partition: committed offset, end offset, lag and
                                    member; then `total lag N`
  groups reset-offsets GROUP --topic TOPIC[:P,P...]... TARGET [--dry-run|--execute]
                                    TARGET is --to-earliest, --to-latest, --to-offset N,
                                    --to-datetime TIME (RFC 3339, e.g. 2026-12-06T14:00:00Z,
                                    or milliseconds since the epoch) or --shift-by N (from the
                                    committed offset; negative goes back). New offsets are
                                    kept within the log's first and end offsets. Prints
                                    GROUP TOPIC PARTITION CURRENT NEW; commits them only with
                                    --execute (--dry-run is the default). Refused while the
                                    group has active members.
  groups delete GROUP...            delete empty groups and their committed offsets

fk metadata prints the cluster id and controller, a brokers table (id, address, rack,
controller) and a partitions table (leader, replicas, ISR) of every topic that is not
internal, or of each -t TOPIC; -J prints it all as one JSON object.

Errors go to stderr, prefixed `fk: `. When a broker refuses some of the resources of a
command (a topic, a group, a partition), each refused one is printed and the others are
still done.

Exit status: 0 success (every record delivered, COUNT records or -e's end or Ctrl-C for
consume, every resource done); 1 the operation failed (a record was not delivered, the
brokers could not be reached, consuming failed, or the broker refused any one resource);
2 a usage error (bad argument or bad -X property).
";
