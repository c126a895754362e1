package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// watchdog ends the worker when it makes no progress for stuckAfter: franz-go retries a
// broker that does not answer as it expects for ever (a closed connection is retried, a
// missing leader re-requested), so a run that cannot work would otherwise only end when the
// parent kills it, with no reason given. It prints what the worker was doing and how far it
// got, as the worker's ERROR line, and exits.
type watchdog struct {
	records atomic.Int64
	phases  atomic.Int64
	phase   atomic.Pointer[string]
}

// startWatchdog reads stuck_ms (0 or absent: no watchdog).
func startWatchdog(kv workerArgs) *watchdog {
	w := &watchdog{}
	w.enter("starting")
	ms, err := kv.num("stuck_ms")
	if err != nil || ms <= 0 {
		return w
	}
	stuckAfter := time.Duration(ms) * time.Millisecond
	go func() {
		state := func() [2]int64 { return [2]int64{w.records.Load(), w.phases.Load()} }
		last, since := state(), time.Now()
		for range time.Tick(100 * time.Millisecond) {
			if now := state(); now != last {
				last, since = now, time.Now()
			} else if time.Since(since) >= stuckAfter {
				fail(fmt.Errorf("no progress for %v while %s (%d records done)",
					stuckAfter, *w.phase.Load(), last[0]))
			}
		}
	}()
	return w
}

// enter names what the worker does now; entering a phase counts as progress.
func (w *watchdog) enter(phase string) {
	w.phase.Store(&phase)
	w.phases.Add(1)
}

// tick counts one record done.
func (w *watchdog) tick() { w.records.Add(1) }

// fail reports err as the worker's ERROR line (the parent shows it as the run's result) and
// on stderr, and exits.
func fail(err error) {
	fmt.Printf("ERROR franz-go: %v\n", err)
	fmt.Fprintf(os.Stderr, "franzgo-bench: error: %v\n", err)
	os.Exit(1)
}
