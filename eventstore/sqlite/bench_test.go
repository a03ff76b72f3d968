package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"

	"github.com/piperun/piperun/eventstore"
)

func openBench(b *testing.B) *Store {
	b.Helper()
	// PIPERUN_BENCH_FDATASYNC=1 measures SQLite syncing with fdatasync(2),
	// as SQLite's own Linux builds do, instead of modernc's default fsync.
	// The switch is process-wide, so it belongs to main, not to Open.
	if os.Getenv("PIPERUN_BENCH_FDATASYNC") != "" {
		prev, err := sqlite.Fdatasync(true)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _, _ = sqlite.Fdatasync(prev) })
	}
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "events.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// newID makes the benchmarks' event ids: random UUIDs, or with
// PIPERUN_BENCH_UUIDV7=1 time-ordered ones as the service makes them
// (command.Service), which insert at the right edge of the id index
// instead of all over it.
func newID() string {
	if os.Getenv("PIPERUN_BENCH_UUIDV7") != "" {
		return uuid.Must(uuid.NewV7()).String()
	}
	return uuid.NewString()
}

func benchEvent() eventstore.EventData {
	return eventstore.EventData{
		ID:    newID(),
		Type:  "run.processed.v1",
		Data:  []byte(`{"run":"bench","images":4,"sources":12345}`),
		Actor: "system:bench",
		Time:  time.Now(),
	}
}

// benchAppends runs b.N single-event appends from writers goroutines, each on
// its own stream, and reports throughput, p99 latency and appends per commit.
func benchAppends(b *testing.B, writers int) {
	s := openBench(b)
	ctx := context.Background()
	var next atomic.Int64
	latencies := make([][]time.Duration, writers)
	errs := make(chan error, writers)
	commits := s.commits.Load()
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("run-%d-%s", w, uuid.NewString())
			for v := int64(0); next.Add(1) <= int64(b.N); v++ {
				t0 := time.Now()
				if _, _, err := s.Append(ctx, stream, v, benchEvent()); err != nil {
					errs <- err
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-commits), "appends/commit")
	if cpu > 0 {
		// Less sensitive than appends/s to other work on the machine.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/append")
	}
}

// BenchmarkAppendParallel64 is the group-commit case: 64 writers on distinct
// streams, single-event appends.
func BenchmarkAppendParallel64(b *testing.B) { benchAppends(b, 64) }

// BenchmarkAppendSingleWriter is a lone writer: one commit, one fsync, per
// append.
func BenchmarkAppendSingleWriter(b *testing.B) { benchAppends(b, 1) }

// BenchmarkFsync is the floor of a durable commit on this file system: write
// a small record to a file and fsync it.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, 128)
	cpu := processCPU()
	for b.Loop() {
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
	if cpu := processCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/fsync")
	}
}

// BenchmarkReadAll pages through a log of 20,000 events, 1000 at a time.
func BenchmarkReadAll(b *testing.B) {
	const events, page = 20_000, 1000
	s := openBench(b)
	ctx := context.Background()
	for i := range events / 100 {
		batch := make([]eventstore.EventData, 100)
		for j := range batch {
			batch[j] = benchEvent()
		}
		if _, _, err := s.Append(ctx, fmt.Sprintf("run-%d", i), eventstore.NoStream, batch...); err != nil {
			b.Fatal(err)
		}
	}
	read := 0
	b.ResetTimer()
	for b.Loop() {
		after := int64(0)
		for {
			evs, err := s.ReadAll(ctx, after, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			read += len(evs)
			after = evs[len(evs)-1].Position
		}
	}
	if read != b.N*events {
		b.Fatalf("read %d events, want %d", read, b.N*events)
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCommitBatch64 is the writer goroutine's share of the group-commit
// case, without the callers: batches of 64 single-event appends, one per
// stream of 64, committed by hand. Its cpu-µs/append is the writer's cost,
// the bound on appends/s when the writer is the bottleneck.
func BenchmarkCommitBatch64(b *testing.B) {
	const streams = 64
	s := openBench(b)
	ctx := context.Background()
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("run-%d-%s", i, uuid.NewString())
	}
	batch := make([]*appendRequest, streams)
	cpu := processCPU()
	appends := 0
	for v := int64(0); b.Loop(); v++ {
		for i := range batch {
			batch[i] = &appendRequest{ctx: ctx, stream: names[i], expected: v, events: []eventstore.EventData{benchEvent()}, done: make(chan struct{})}
		}
		s.commitBatch(batch)
		for _, r := range batch {
			if r.err != nil {
				b.Fatal(r.err)
			}
		}
		appends += streams
	}
	if cpu := processCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(appends), "cpu-µs/append")
	}
	b.ReportMetric(float64(appends)/b.Elapsed().Seconds(), "appends/s")
}
