package main

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// histogram counts latencies in microseconds with the buckets of bench/src/latency/histogram.rs,
// so that a percentile means the same for every client: values below 128 µs are exact, above
// each power of two is split into 64 buckets (at most 1/64 above the value), and a
// percentile is the upper bound of its bucket, capped at the exact maximum. Buckets are
// atomic: acknowledgements (franz-go's promise goroutine) and receipts (the consumer
// goroutine) record from different goroutines.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Uint64
}

const (
	histExact     = 128
	histPerOctave = histExact / 2
	histExactBits = 7
	histTopBit    = 40
	histBuckets   = histExact + (histTopBit-histExactBits+1)*histPerOctave
)

func histIndex(v uint64) int {
	if v < histExact {
		return int(v)
	}
	msb := uint64(63 - bits.LeadingZeros64(v))
	if msb > histTopBit {
		msb = histTopBit
	}
	if top := uint64(1)<<(histTopBit+1) - 1; v > top {
		v = top
	}
	shift := msb - (histExactBits - 1)
	sub := (v >> shift) - histPerOctave
	return int(histExact + (shift-1)*histPerOctave + sub)
}

func histUpper(i int) uint64 {
	u := uint64(i)
	if u < histExact {
		return u
	}
	shift := (u-histExact)/histPerOctave + 1
	sub := (u-histExact)%histPerOctave + histPerOctave
	return (sub+1)<<shift - 1
}

func (h *histogram) record(micros uint64) {
	h.counts[histIndex(micros)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if micros <= m || h.max.CompareAndSwap(m, micros) {
			return
		}
	}
}

func (h *histogram) count() uint64 { return h.total.Load() }

func (h *histogram) quantile(q float64) uint64 {
	total := h.count()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	seen := uint64(0)
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(histUpper(i), h.max.Load())
		}
	}
	return h.max.Load()
}

// summary is p50, p99, p99.9 and max in µs.
func (h *histogram) summary() [4]uint64 {
	return [4]uint64{h.quantile(0.5), h.quantile(0.99), h.quantile(0.999), h.max.Load()}
}
