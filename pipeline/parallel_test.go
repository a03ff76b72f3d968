package pipeline

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/piperun/piperun/synth"
)

// TestForEachBoundedHonoursTheLimit: the first limit calls run together
// (each waits until the test has seen all of them in), and no further
// call starts before one of them has ended.
func TestForEachBoundedHonoursTheLimit(t *testing.T) {
	for _, limit := range []int{1, 2, 5} {
		var released atomic.Bool
		gate := make(chan struct{})
		entered := make(chan int, 4*limit)
		var early atomic.Int64
		done := make(chan error, 1)
		go func() {
			done <- forEachBounded(context.Background(), 4*limit, limit, func(ctx context.Context, i int) error {
				if i >= limit && !released.Load() {
					early.Add(1)
				}
				if i < limit {
					entered <- i
					<-gate
				}
				return nil
			})
		}()
		for range limit {
			<-entered
		}
		// Give a call started too early the chance to show itself; a
		// correct bound passes whatever the scheduling.
		for range 1000 {
			runtime.Gosched()
		}
		released.Store(true)
		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := early.Load(); n > 0 {
			t.Errorf("limit %d: %d calls started while %d were running", limit, n, limit)
		}
	}
}

// TestForEachBoundedReportsTheFailure: the lowest failing index's error,
// not the cancellation it causes in the others; none starts after it.
func TestForEachBoundedReportsTheFailure(t *testing.T) {
	var started atomic.Int64
	bad := errors.New("bad input")
	err := forEachBounded(context.Background(), 100, 1, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 3 {
			return fmt.Errorf("image %d: %w", i, bad)
		}
		return nil
	})
	if !errors.Is(err, bad) || err.Error() != "image 3: bad input" {
		t.Fatalf("err = %v", err)
	}
	if started.Load() != 4 {
		t.Errorf("%d calls started, want 4 (none after the failure)", started.Load())
	}
	// A call waiting on another that failed sees the cancellation; the
	// failure is reported.
	release := make(chan struct{})
	err = forEachBounded(context.Background(), 2, 2, func(ctx context.Context, i int) error {
		if i == 1 {
			close(release)
			return bad
		}
		<-release
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, bad) {
		t.Errorf("err = %v, want the failure", err)
	}
}

// TestImagesReadConcurrentlyGiveTheSameProducts: reading one image at a
// time or several gives the same products (measurement ids in image time
// order), and the log names the bound.
func TestImagesReadConcurrentlyGiveTheSameProducts(t *testing.T) {
	sv := generate(t, synth.Options{Images: 6, Sources: 120, Seed: 9})
	var first any
	for _, workersIO := range []int{1, 3, 6} {
		job := synthJob(sv, sv.Images)
		s := DefaultSettings()
		s.NumWorkersIO = workersIO
		job.Settings = &s
		log := &testLog{}
		p := mustProcess(t, newStore(t), job, log)
		if want := fmt.Sprintf("INFO reading 6 images, at most %d at once", workersIO); log.count(want) != 1 {
			t.Errorf("no log line %q in %q", want, log.lines)
		}
		if first == nil {
			first = p
		} else if !reflect.DeepEqual(p, first) {
			t.Errorf("%d images read at once: products differ from one at a time", workersIO)
		}
	}
}
