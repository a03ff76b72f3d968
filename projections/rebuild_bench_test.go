package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/piperun/piperun/bench"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/projections"
)

// BenchmarkRebuild rebuilds the read models from a log of run histories
// (created, processed with log events, then images added and restored;
// see bench.WriteHistory) held in memory, so that only the projector is
// measured. It reports events/s. The full-size figure with the embedded
// store is `piperun bench projections` (1,000,000 events).
//
//	go test -run '^$' -bench BenchmarkRebuild -benchtime 3x ./projections/
func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{100_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			es := memory.New()
			if _, err := bench.WriteHistory(ctx, es, bench.HistoryOptions{Events: n}); err != nil {
				b.Fatal(err)
			}
			head, err := es.HeadPosition(ctx)
			if err != nil {
				b.Fatal(err)
			}
			read, err := projections.Open(ctx, filepath.Join(b.TempDir(), "read.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer read.Close()
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				if err := read.Reset(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				c0 := processCPU()
				if err := read.CatchUp(ctx, es); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - c0
				if read.Position() != head {
					b.Fatalf("rebuilt to %d, want %d", read.Position(), head)
				}
			}
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// CPU time per event tells the projector's cost apart from
			// waiting for a core on a busy machine.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(head)/float64(b.N)/1000, "cpu-µs/event")
		})
	}
}
