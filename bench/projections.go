package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/piperun/piperun/eventstore/sqlite"
	"github.com/piperun/piperun/projections"
)

// ProjectionsOptions configure the projection rebuild benchmark.
type ProjectionsOptions struct {
	// History shapes the event log (default: 1,000,000 events).
	History HistoryOptions
	// Dir receives the event store and read models; a temporary directory
	// (removed afterwards) when empty. An existing event store there is
	// reused as it is, without appending.
	Dir string
	// CPUProfile, if set, is where a CPU profile of the rebuild is written.
	CPUProfile string
}

// ProjectionsResult are the figures of a rebuild.
type ProjectionsResult struct {
	Events  int64 // events in the log
	Written HistoryResult
	Rebuild time.Duration
	// Rate is events per second of rebuild.
	Rate float64
	// CPU is the process's CPU time during the rebuild (0 where it cannot
	// be measured).
	CPU time.Duration
}

// Projections writes an event log of run histories into an embedded event
// store (unless Dir already holds one), then drops the read models and
// rebuilds them from the log, as `piperun projections rebuild` does, and
// reports the rate.
func Projections(ctx context.Context, opts ProjectionsOptions, out io.Writer) (ProjectionsResult, error) {
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "piperun-bench-projections-")
		if err != nil {
			return ProjectionsResult{}, fmt.Errorf("projections benchmark: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return ProjectionsResult{}, fmt.Errorf("projections benchmark: %w", err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		return ProjectionsResult{}, err
	}
	defer store.Close()
	var res ProjectionsResult
	head, err := store.HeadPosition(ctx)
	if err != nil {
		return res, err
	}
	if head == 0 {
		h := opts.History
		h.defaults()
		fmt.Fprintf(out, "writing %d events: runs created, processed (%d log events of %d lines per job), then %d cycles of an image added and a restore; %d concurrent writers\n",
			h.Events, h.LogFlushes, h.LogLines, h.Cycles, h.Writers)
		if res.Written, err = WriteHistory(ctx, store, h); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "wrote %d events of %d runs in %s (%.0f events/s)\n", res.Written.Events, res.Written.Runs,
			res.Written.Elapsed.Round(time.Millisecond), float64(res.Written.Events)/res.Written.Elapsed.Seconds())
		if head, err = store.HeadPosition(ctx); err != nil {
			return res, err
		}
	} else {
		fmt.Fprintf(out, "reusing the %d events of %s\n", head, filepath.Join(dir, "events.db"))
	}
	res.Events = head

	read, err := projections.Open(ctx, filepath.Join(dir, "read.db"))
	if err != nil {
		return res, err
	}
	defer read.Close()
	if err := read.Reset(ctx); err != nil {
		return res, err
	}
	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			return res, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	cpu0, cpuOK := processCPU()
	if err := read.CatchUp(ctx, store); err != nil {
		return res, err
	}
	res.Rebuild = time.Since(start)
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.CPU = cpu1 - cpu0
	}
	if read.Position() != head {
		return res, errors.New("the read models did not reach the head of the log")
	}
	res.Rate = float64(head) / res.Rebuild.Seconds()
	fmt.Fprintf(out, "rebuilt the read models from %d events in %s: %.0f events/s\n", head, res.Rebuild.Round(time.Millisecond), res.Rate)
	if res.CPU > 0 {
		fmt.Fprintf(out, "CPU time of the rebuild: %s (%.2f cores, %.1f µs per event)\n", res.CPU.Round(time.Millisecond),
			res.CPU.Seconds()/res.Rebuild.Seconds(), float64(res.CPU.Microseconds())/float64(head))
	}
	return res, nil
}
