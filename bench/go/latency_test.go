package main

import (
	"testing"
	"time"
)

// The same expectations as bench/src/latency/histogram.rs and worker.rs: the Go worker's
// percentiles and schedule must mean what the Rust workers' do.

func TestHistogramBucketsBoundTheirValues(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 200, 4999, 1 << 20, 1<<20 + 12_345} {
		i := histIndex(v)
		if histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) || histUpper(i)-v > v/64 {
			t.Fatalf("%d: bucket %d ends at %d", v, i, histUpper(i))
		}
	}
	if histIndex(^uint64(0)) != histBuckets-1 || histUpper(128) != 129 {
		t.Fatal("bucket layout differs from histogram.rs")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for v := uint64(1); v <= 1000; v++ {
		h.record(v)
	}
	s := h.summary()
	for i, want := range []uint64{500, 990, 999, 1000} {
		if s[i] < want || s[i]-want > want/64 {
			t.Fatalf("quantile %d: %d, want about %d", i, s[i], want)
		}
	}
	h.record(250_000)
	if h.quantile(1) != 250_000 || h.quantile(0.99) >= 1000 {
		t.Fatalf("outlier: p100 %d p99 %d", h.quantile(1), h.quantile(0.99))
	}
	var one histogram
	one.record(1_000_003)
	if one.summary() != [4]uint64{1_000_003, 1_000_003, 1_000_003, 1_000_003} {
		t.Fatalf("single sample: %v", one.summary())
	}
}

func TestScheduleSpacesRecordsWithoutDrift(t *testing.T) {
	s := newSchedule(3, time.Second, 2*time.Second, 1_000)
	if s.warmup != 3 || s.measured != 6 || s.total() != 9 {
		t.Fatalf("%+v", s)
	}
	if s.due(1) != 1_000+333_333_333 || s.due(3) != 1_000+1_000_000_000 {
		t.Fatalf("due(1) %d due(3) %d", s.due(1), s.due(3))
	}
	if s.due(3_000_000) != 1_000+1_000_000*1_000_000_000 || s.measuredFrom() != s.due(3) {
		t.Fatalf("drift: %d", s.due(3_000_000))
	}
}

func TestOnlyMeasuredRecordsCount(t *testing.T) {
	s := newSchedule(1000, 2*time.Millisecond, 3*time.Millisecond, 0)
	st := &latencyStats{clock: time.Now(), measuredFrom: s.measuredFrom()}
	v := make([]byte, latencyValueSize)
	for i := uint64(0); i < s.total(); i++ {
		st.acked(s.due(i), true)
		v[0], v[1], v[2], v[3] = byte(s.due(i)), byte(s.due(i)>>8), byte(s.due(i)>>16), byte(s.due(i)>>24)
		st.received(v)
	}
	st.acked(s.due(4), false)
	st.received([]byte("x"))
	if st.ack.count() != 3 || st.e2e.count() != 3 || st.settled.Load() != 6 || st.failed.Load() != 1 {
		t.Fatalf("ack %d e2e %d settled %d failed %d", st.ack.count(), st.e2e.count(),
			st.settled.Load(), st.failed.Load())
	}
}
