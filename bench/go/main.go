// Command franzgo-bench is franz-go's worker for ferrokafka's benchmark (bench/): one run of
// one produce or consume case, measured in this process, reported as the same RESULT line the
// Rust workers print.
//
//	franzgo-bench produce client=franz-go case=.. bootstrap=.. topic=.. records=.. batch_size=..
//	    size=.. keyed=0|1 acks=1|all codec=none|gzip|snappy|lz4|zstd linger_ms=.. budget=..
//	    max_in_flight=.. idempotent=0|1 payload_fnv=..
//	franzgo-bench consume client=franz-go case=.. bootstrap=.. topic=.. records=.. partitions=..
//	    fetch_max_wait_ms=.. max_partition_fetch_bytes=.. fetch_max_bytes=.. stall_ms=..
//
// The parent (bench/src/external.rs) derives every setting from its case tables and passes it
// here, so this program holds no case table of its own: the settings cannot drift apart.
//
// Measurement matches bench/src/measure.rs: CPU is getrusage(RUSAGE_SELF) from before the
// client is created to the end, peak RSS is VmHWM; produce time runs from the first send
// after a one-record warm-up to the last acknowledgement, consume time from the first record
// to the last.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fail(err)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("expected produce, consume or latency, then KEY=VALUE arguments")
	}
	kv, err := parseArgs(args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "produce":
		return produce(kv, startWatchdog(kv))
	case "consume":
		return consume(kv, startWatchdog(kv))
	case "latency":
		return latency(kv, startWatchdog(kv))
	default:
		return fmt.Errorf("unknown mode %q: produce, consume or latency", args[0])
	}
}

// workerArgs are the KEY=VALUE arguments of one run.
type workerArgs map[string]string

func parseArgs(args []string) (workerArgs, error) {
	kv := workerArgs{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("worker argument %q is not KEY=VALUE", a)
		}
		kv[k] = v
	}
	return kv, nil
}

func (kv workerArgs) str(key string) (string, error) {
	v, ok := kv[key]
	if !ok {
		return "", fmt.Errorf("worker needs %s=..", key)
	}
	return v, nil
}

func (kv workerArgs) num(key string) (int64, error) {
	v, err := kv.str(key)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", key, err)
	}
	return n, nil
}

// cpuMicros is this process's user and system CPU time so far.
func cpuMicros() (user, sys int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return ru.Utime.Nano() / 1000, ru.Stime.Nano() / 1000
}

// peakRSSKiB is VmHWM from /proc/self/status; 0 if unknown.
func peakRSSKiB() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// commonOpts are the options of every run. franz-go asks ApiVersions at v5 first; Tansu 0.6
// closes the connection on it instead of answering UNSUPPORTED_VERSION, and librdkafka's
// mock cluster answers v3 with a response franz-go cannot read ("unable to read ApiVersions
// response: response did not contain enough data to be valid", retried for ever). Both
// answer v2, so the ApiVersions request is capped at v2 (v3 only adds the client's software
// name and version). Every other API keeps franz-go's own maximum.
func commonOpts(bootstrap string) []kgo.Opt {
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(18, 2)
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.ClientID("franz-go-bench"),
		kgo.MaxVersions(versions),
	}
	// FRANZGO_BENCH_LOG=debug|info|warn: franz-go's own log on stderr, to see why a run
	// does not progress.
	levels := map[string]kgo.LogLevel{"debug": kgo.LogLevelDebug, "info": kgo.LogLevelInfo,
		"warn": kgo.LogLevelWarn}
	if level, ok := levels[os.Getenv("FRANZGO_BENCH_LOG")]; ok {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, nil)))
	}
	return opts
}

// result is what the RESULT line reports.
type result struct {
	records, failed, bytes int64
	elapsed                time.Duration
}

// print writes the RESULT line with the CPU used since (user0, sys0), taken now.
func (r result) print(client, caseName string, user0, sys0 int64) {
	user1, sys1 := cpuMicros()
	rss := peakRSSKiB()
	records := r.records
	if records < 1 {
		records = 1
	}
	fmt.Printf("RESULT client=%s case=%s records=%d failed=%d bytes=%d secs=%.4f "+
		"cpu_us_per_record=%.4f user_s=%.3f sys_s=%.3f peak_rss_mb=%.1f\n",
		client, caseName, r.records, r.failed, r.bytes, r.elapsed.Seconds(),
		float64((user1-user0)+(sys1-sys0))/float64(records),
		float64(user1-user0)/1e6, float64(sys1-sys0)/1e6, float64(rss)/1024)
}

func produceOpts(kv workerArgs) ([]kgo.Opt, error) {
	bootstrap, err := kv.str("bootstrap")
	if err != nil {
		return nil, err
	}
	var nums [4]int64
	for i, key := range []string{"batch_size", "linger_ms", "budget", "max_in_flight"} {
		if nums[i], err = kv.num(key); err != nil {
			return nil, err
		}
	}
	batchSize, lingerMs, budget, inFlight := nums[0], nums[1], nums[2], nums[3]
	opts := append(commonOpts(bootstrap),
		kgo.ProducerLinger(time.Duration(lingerMs)*time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(batchSize)),
		// The budget is in bytes, as for the other clients; the record count limit is
		// lifted like librdkafka's queue.buffering.max.messages.
		kgo.MaxBufferedBytes(int(budget)),
		kgo.MaxBufferedRecords(10_000_000),
		// Keys: murmur2 like Java; keyless: one partition until its batch is full.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	acks, err := kv.str("acks")
	if err != nil {
		return nil, err
	}
	switch acks {
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	default:
		return nil, fmt.Errorf("acks: %q is not 1 or all", acks)
	}
	switch kv["idempotent"] {
	case "1":
		// Idempotence is franz-go's default; it then allows 5 requests in flight per
		// broker, a limit it does not let one change.
	case "0":
		// Without idempotence franz-go allows 1 request in flight per broker unless told:
		// the common limit is set. (acks=1 is only allowed without idempotence.)
		opts = append(opts, kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(int(inFlight)))
	default:
		return nil, errors.New("worker needs idempotent=0|1")
	}
	codec, err := kv.str("codec")
	if err != nil {
		return nil, err
	}
	c, ok := map[string]kgo.CompressionCodec{
		"none":   kgo.NoCompression(),
		"gzip":   kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(),
		"lz4":    kgo.Lz4Compression(),
		"zstd":   kgo.ZstdCompression(),
	}[codec]
	if !ok {
		return nil, fmt.Errorf("codec: unknown %q", codec)
	}
	return append(opts, kgo.ProducerBatchCompression(c)), nil
}

func produce(kv workerArgs, w *watchdog) error {
	client, caseName, topic := kv["client"], kv["case"], kv["topic"]
	records, err := kv.num("records")
	if err != nil {
		return err
	}
	size, err := kv.num("size")
	if err != nil {
		return err
	}
	wantFNV, err := kv.str("payload_fnv")
	if err != nil {
		return err
	}
	keyed := kv["keyed"] == "1"
	pl := newPayload(int(size))
	if got := fmt.Sprintf("%016x", pl.fnv()); got != wantFNV {
		return fmt.Errorf("payload pool differs from the Rust one: fnv %s, want %s", got, wantFNV)
	}
	opts, err := produceOpts(kv)
	if err != nil {
		return err
	}
	user0, sys0 := cpuMicros()
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return fmt.Errorf("franz-go client: %w", err)
	}
	defer cl.Close()
	ctx := context.Background()
	// Warm-up: one record delivered before the clock starts (metadata, connections).
	w.enter("waiting for the warm-up record's acknowledgement (connecting)")
	if err := cl.ProduceSync(ctx, kgo.SliceRecord(pl.slice(0))).FirstErr(); err != nil {
		return fmt.Errorf("franz-go warm-up: %w", err)
	}
	var ok, failed atomic.Int64
	var firstErr error
	var once sync.Once
	done := func(_ *kgo.Record, err error) {
		w.tick()
		if err == nil {
			ok.Add(1)
			return
		}
		failed.Add(1)
		once.Do(func() { firstErr = err })
	}
	w.enter("producing")
	start := time.Now()
	for i := int64(0); i < records; i++ {
		var key []byte
		if keyed {
			key = recordKey(uint64(i))
		}
		// Blocks while the buffer is full (MaxBufferedBytes / MaxBufferedRecords).
		cl.Produce(ctx, &kgo.Record{Key: key, Value: pl.slice(uint64(i))}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("franz-go flush: %w", err)
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "franz-go: first delivery error: %v\n", firstErr)
	}
	perRecord := size
	if keyed {
		perRecord += 9
	}
	r := result{records: ok.Load(), failed: failed.Load(), elapsed: elapsed}
	r.bytes = r.records * perRecord
	r.print(client, caseName, user0, sys0)
	if r.failed > 0 || r.records != records {
		return fmt.Errorf("%d of %d records acknowledged, %d failed", r.records, records, r.failed)
	}
	return nil
}

// recordKey is the key of record i of a keyed case: "k" and 8 digits (cases.rs `key`).
func recordKey(i uint64) []byte {
	return []byte(fmt.Sprintf("k%08d", i%100_000_000))
}

func consume(kv workerArgs, w *watchdog) error {
	client, caseName, topic := kv["client"], kv["case"], kv["topic"]
	bootstrap, err := kv.str("bootstrap")
	if err != nil {
		return err
	}
	var nums [6]int64
	for i, key := range []string{"records", "partitions", "fetch_max_wait_ms",
		"max_partition_fetch_bytes", "fetch_max_bytes", "stall_ms"} {
		if nums[i], err = kv.num(key); err != nil {
			return err
		}
	}
	records, partitions, maxWait, partBytes, maxBytes, stall :=
		nums[0], nums[1], nums[2], nums[3], nums[4], nums[5]
	// Assign every partition from the start, no group (as the Rust workers do).
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < int32(partitions); p++ {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	user0, sys0 := cpuMicros()
	firstRead := &firstBatchRead{}
	cl, err := kgo.NewClient(append(commonOpts(bootstrap),
		kgo.WithHooks(firstRead),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(time.Duration(maxWait)*time.Millisecond),
		kgo.FetchMinBytes(1),
		kgo.FetchMaxPartitionBytes(int32(partBytes)),
		kgo.FetchMaxBytes(int32(maxBytes)),
	)...)
	if err != nil {
		return fmt.Errorf("franz-go client: %w", err)
	}
	defer cl.Close()
	// franz-go fetches in the background from the start: a stall lets its buffer fill.
	w.enter("stalling before the first poll")
	time.Sleep(time.Duration(stall) * time.Millisecond)
	ctx := context.Background()
	var r result
	var first time.Time
	w.enter("fetching")
	for r.records < records {
		fetches := cl.PollFetches(ctx)
		for _, e := range fetches.Errors() {
			return fmt.Errorf("franz-go fetch %s/%d: %w", e.Topic, e.Partition, e.Err)
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			if first.IsZero() {
				first = time.Now()
			}
			r.records++
			w.tick()
			r.bytes += int64(len(rec.Key) + len(rec.Value))
		})
	}
	// The clock starts when the first batch was decoded, not when PollFetches handed over
	// the first record: franz-go hands over whole fetch responses (up to 1 MiB per
	// partition) that it read in the background, and the Rust clients' first record is
	// theirs as soon as its batch is decoded. Timed from the first record, a topic that
	// fits in one response read "instantly" (10 M msg/s in a --quick run on Kafka). After
	// a stall every client has prefetched, and all are timed from the first record.
	if t, ok := firstRead.at.Load().(time.Time); ok && stall == 0 && t.Before(first) {
		first = t
	}
	r.elapsed = time.Since(first)
	r.print(client, caseName, user0, sys0)
	if r.records != records {
		return fmt.Errorf("read %d of %d records", r.records, records)
	}
	return nil
}

// firstBatchRead remembers when franz-go decoded its first record batch.
type firstBatchRead struct{ at atomic.Value }

func (f *firstBatchRead) OnFetchBatchRead(kgo.BrokerMetadata, string, int32, kgo.FetchBatchMetrics) {
	if f.at.Load() == nil {
		f.at.CompareAndSwap(nil, time.Now())
	}
}
