package workers_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/messaging/kafka"
	"github.com/piperun/piperun/workers"
)

// everyPartition is the topic's partitions in these tests.
var everyPartition = []int32{0, 1, 2, 3, 4, 5}

// owned returns a kafka.Ownership as a consumer group's session leaves it
// after assigning partitions (none: nothing owned).
func owned(t *testing.T, partitions ...int32) *kafka.Ownership {
	t.Helper()
	cfg := kafka.Config{Brokers: []string{"kafka:9092"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o := &kafka.Ownership{Config: cfg}
	o.Assigned(messaging.DefaultTopic, partitions, int32(len(everyPartition)))
	return o
}

// TestOwnerKeepsJobsExclusive has two worker instances, as two processes
// with nothing in common but the store: the one that does not own the
// run's partition leaves its job alone (message and Recover); when the
// partition is revoked from the owner, its job stops and its outcome is
// not recorded; the new owner, once assigned, takes the job up through
// Recover and finishes it, once.
func TestOwnerKeepsJobsExclusive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "owned"
	if _, err := e.svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: e.config(3), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, run, false, false, alice); err != nil {
		t.Fatal(err)
	}
	msg := e.lastMessage(run, domain.TypeProcessingRequested)

	firstOwns := owned(t, everyPartition...)
	first := e.newWorkers()
	first.Owner = firstOwns
	started := make(chan struct{})
	first.Process = blockUntilStopped(started, stopped)

	secondOwns := owned(t)
	second := e.newWorkers()
	second.Owner = secondOwns
	var calls atomic.Int32
	real := second.Process
	second.Process = func(ctx context.Context, run string, cfg domain.RunConfig, prev *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		calls.Add(1)
		return real(ctx, run, cfg, prev, add, log)
	}

	e.deliver(second, msg) // not its run
	if err := second.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if r := e.load(run); r.Status != domain.StatusQueued || calls.Load() != 0 {
		t.Fatalf("a worker that does not own the run acted on it: status %s, %d jobs", r.Status, calls.Load())
	}

	if err := first.Handle(msg.Copy()); err != nil {
		t.Fatal(err)
	}
	<-started
	if r := e.load(run); r.Status != domain.StatusRunning {
		t.Fatalf("run is %s while its owner runs its job, want Running", r.Status)
	}

	// The rebalance: revoked from the first, then assigned to the second.
	firstOwns.Revoked(messaging.DefaultTopic, everyPartition)
	first.Disown()
	first.Wait()
	if r := e.load(run); r.Status != domain.StatusRunning || e.count(run, domain.TypeProcessingFailed) != 0 {
		t.Fatalf("after its revocation the run is %s with %d failures; want the job left pending", r.Status, e.count(run, domain.TypeProcessingFailed))
	}
	e.deliver(first, msg) // a late redelivery to the old owner does nothing
	if r := e.load(run); r.Job == nil || r.Job.Starts > 1 {
		t.Fatalf("the old owner took the job up again: %+v", r.Job)
	}

	secondOwns.Assigned(messaging.DefaultTopic, everyPartition, int32(len(everyPartition)))
	if err := second.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	second.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("the new owner ran the job %d times, want 1", n)
	}
	r := e.load(run)
	if r.Status != domain.StatusCompleted || r.Figures().NImages != 3 {
		t.Fatalf("after the takeover the run is %s with %d images", r.Status, r.Figures().NImages)
	}
	if c, f := e.count(run, domain.TypeProcessingCompleted), e.count(run, domain.TypeProcessingFailed); c != 1 || f != 0 {
		t.Fatalf("%d completions and %d failures, want 1 and 0", c, f)
	}
	e.audit(run)
}
