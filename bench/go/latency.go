package main

// The latency mode: franz-go produces 100-byte records at a fixed rate while a franz-go
// consumer in the same process reads the topic back, with the semantics of the Rust latency
// worker (bench/src/latency/worker.rs), which the parent also runs for the other clients:
//
//   - every latency runs from the record's scheduled send time (record i is due
//     offset + i*1e9/rate ns on the worker's clock), so a client that blocks or falls behind
//     pays for it (no coordinated omission); the scheduled time is the first 8 bytes of the
//     value (little endian), the rest is the shared payload pool;
//   - one goroutine, the generator, sleeps until each record's time and hands it over;
//   - records scheduled in the warm-up are sent but not measured;
//   - after the last record: wait for every acknowledgement (60 s), then for the consumer to
//     have received every acknowledged measured record (10 s).
//
//	franzgo-bench latency client=franz-go bootstrap=.. topic=.. partitions=.. rate=..
//	    warmup_ms=.. measure_ms=.. linger_ms=.. payload_fnv=..

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	latencyValueSize = 100
	// Record 0 is due this long after the clock starts: time to connect first.
	latencyOffset = 500 * time.Millisecond
	settleTimeout = 60 * time.Second
	drainTimeout  = 10 * time.Second
)

// schedule is when each record is due, as worker.rs `Schedule`.
type schedule struct {
	rate, warmup, measured, offset uint64
}

func newSchedule(rate uint64, warmup, measured time.Duration, offset uint64) schedule {
	records := func(d time.Duration) uint64 {
		return uint64(d.Seconds()*float64(rate) + 0.5)
	}
	return schedule{rate: max(rate, 1), warmup: records(warmup), measured: max(records(measured), 1), offset: offset}
}

func (s schedule) total() uint64 { return s.warmup + s.measured }

// due is computed from i (not by adding intervals) so rounding never accumulates.
func (s schedule) due(i uint64) uint64 {
	hi, lo := bits.Mul64(i, 1_000_000_000)
	q, _ := bits.Div64(hi%s.rate, lo, s.rate)
	return s.offset + q
}

func (s schedule) measuredFrom() uint64 { return s.due(s.warmup) }

// latencyStats is what the producer and consumer sides count (worker.rs `Stats`).
type latencyStats struct {
	clock        time.Time
	measuredFrom uint64
	ack, e2e     histogram
	settled      atomic.Uint64
	failed       atomic.Uint64
	lastAck      atomic.Uint64
	maxLag       atomic.Uint64
}

// nanos is the worker's clock: ns since it started (monotonic).
func (st *latencyStats) nanos() uint64 { return uint64(time.Since(st.clock).Nanoseconds()) }

func storeMax(a *atomic.Uint64, v uint64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

func (st *latencyStats) acked(due uint64, ok bool) {
	if !ok {
		st.failed.Add(1)
	} else if due >= st.measuredFrom {
		now := st.nanos()
		st.ack.record(subSat(now, due) / 1000)
		storeMax(&st.lastAck, now)
	}
	st.settled.Add(1)
}

func (st *latencyStats) received(value []byte) {
	if len(value) < 8 {
		return
	}
	due := binary.LittleEndian.Uint64(value)
	if due >= st.measuredFrom {
		st.e2e.record(subSat(st.nanos(), due) / 1000)
	}
}

func subSat(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func waitUntil(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func latency(kv workerArgs, w *watchdog) error {
	client := kv["client"]
	var nums [5]int64
	var err error
	for i, key := range []string{"rate", "warmup_ms", "measure_ms", "partitions", "linger_ms"} {
		if nums[i], err = kv.num(key); err != nil {
			return err
		}
	}
	rate, warmupMs, measureMs, partitions, lingerMs := nums[0], nums[1], nums[2], nums[3], nums[4]
	bootstrap, err := kv.str("bootstrap")
	if err != nil {
		return err
	}
	topic, err := kv.str("topic")
	if err != nil {
		return err
	}
	pl := newPayload(latencyValueSize)
	if want, err := kv.str("payload_fnv"); err != nil {
		return err
	} else if got := fmt.Sprintf("%016x", pl.fnv()); got != want {
		return fmt.Errorf("payload pool differs from the Rust one: fnv %s, want %s", got, want)
	}
	st := &latencyStats{clock: time.Now()}
	sched := newSchedule(uint64(rate), time.Duration(warmupMs)*time.Millisecond,
		time.Duration(measureMs)*time.Millisecond, uint64(latencyOffset))
	st.measuredFrom = sched.measuredFrom()
	user0, sys0 := cpuMicros()

	// The consumer: every partition from its end (the topic is fresh), no group.
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < int32(partitions); p++ {
		offsets[p] = kgo.NewOffset().AtEnd()
	}
	// The consumer's fetch wait is the other clients' default, 500 ms (franz-go's is 5 s):
	// a broker that holds a fetch until the wait ends (Tansu) would otherwise add seconds
	// (e2e p50 1.3 s on Tansu at 1 k/s with franz-go's default).
	consumer, err := kgo.NewClient(append(commonOpts(bootstrap),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))...)
	if err != nil {
		return fmt.Errorf("franz-go consumer: %w", err)
	}
	defer consumer.Close()
	// The producer: acks=all with idempotence (franz-go's defaults), the common linger
	// (franz-go's own default is 10 ms, the other clients' 5 ms).
	producer, err := kgo.NewClient(append(commonOpts(bootstrap),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Duration(lingerMs)*time.Millisecond),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)...)
	if err != nil {
		return fmt.Errorf("franz-go producer: %w", err)
	}
	defer producer.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ctx.Err() == nil {
			fetches := consumer.PollFetches(ctx)
			fetches.EachError(func(t string, p int32, err error) {
				if ctx.Err() == nil {
					fmt.Printf("franz-go: fetch %s/%d: %v\n", t, p, err)
				}
			})
			fetches.EachRecord(func(r *kgo.Record) {
				w.tick()
				st.received(r.Value)
			})
		}
	}()

	promise := func(r *kgo.Record, err error) {
		w.tick()
		st.acked(binary.LittleEndian.Uint64(r.Value), err == nil)
	}
	// The first records are due before any can be acknowledged: connecting is a phase.
	w.enter("producing at the fixed rate (connecting first)")
	generate(sched, st, func(i, due uint64) {
		value := make([]byte, latencyValueSize)
		binary.LittleEndian.PutUint64(value, due)
		copy(value[8:], pl.slice(i)[8:])
		producer.Produce(context.Background(), &kgo.Record{Value: value}, promise)
	})
	total := sched.total()
	w.enter("waiting for the last acknowledgements")
	if !waitUntil(settleTimeout, func() bool { return st.settled.Load() >= total }) {
		return fmt.Errorf("%d of %d records settled after %v", st.settled.Load(), total, settleTimeout)
	}
	acked := st.ack.count()
	w.enter("waiting for the consumer to receive the last records")
	waitUntil(drainTimeout, func() bool { return st.e2e.count() >= acked })
	cancel()
	<-readerDone
	reportLatency(client, sched, st, user0, sys0)
	if f := st.failed.Load(); f > 0 {
		return fmt.Errorf("%s: %d records failed", client, f)
	}
	return nil
}

// generate waits for each record's time on this goroutine (locked to its thread, as the
// Rust generator is one thread) and calls send; when behind it sends at once.
func generate(s schedule, st *latencyStats, send func(i, due uint64)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := uint64(0); i < s.total(); i++ {
		due := s.due(i)
		if now := st.nanos(); now < due {
			time.Sleep(time.Duration(due - now))
		}
		storeMax(&st.maxLag, subSat(st.nanos(), due))
		send(i, due)
	}
}

// reportLatency prints the RESULT line of worker.rs `report`.
func reportLatency(client string, s schedule, st *latencyStats, user0, sys0 int64) {
	user1, sys1 := cpuMicros()
	acked := st.ack.count()
	span := subSat(st.lastAck.Load(), st.measuredFrom)
	a, e := st.ack.summary(), st.e2e.summary()
	fmt.Printf("RESULT client=%s case=%d/s records=%d failed=%d bytes=%d secs=%.4f "+
		"cpu_us_per_record=%.4f peak_rss_mb=%.1f ack_p50_us=%d ack_p99_us=%d "+
		"ack_p999_us=%d ack_max_us=%d e2e_p50_us=%d e2e_p99_us=%d e2e_p999_us=%d "+
		"e2e_max_us=%d e2e_records=%d lag_max_us=%d\n",
		client, s.rate, acked, st.failed.Load(), acked*latencyValueSize,
		float64(span)/1e9,
		float64((user1-user0)+(sys1-sys0))/float64(max(s.total(), 1)),
		float64(peakRSSKiB())/1024,
		a[0], a[1], a[2], a[3], e[0], e[1], e[2], e[3], st.e2e.count(), st.maxLag.Load()/1000)
}
