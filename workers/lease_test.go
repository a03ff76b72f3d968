package workers_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/lease"
	"github.com/piperun/piperun/workers"
)

// TestLeasesKeepJobsExclusive has two worker instances, as two processes
// sharing a data directory, with leases: while the first runs a job, the
// second's Recover and a redelivered message leave it alone; once the
// first is gone (its lease freed, as the kernel frees a dead process's),
// a redelivery alone makes the second take the job up and finish it once.
func TestLeasesKeepJobsExclusive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "leased"
	if _, err := e.svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: e.config(3), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.RequestProcessing(ctx, run, false, false, alice)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "leases")
	leases := func() *lease.Dir {
		d, err := lease.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	msg := e.lastMessage(run, domain.TypeProcessingRequested)

	first := e.newWorkers()
	first.Leases = leases()
	started := make(chan struct{})
	first.Process = func(ctx context.Context, _ string, _ domain.RunConfig, _ *domain.Products, _ bool, _ workers.Logger) (domain.Products, error) {
		close(started)
		<-ctx.Done() // runs until its process goes
		return domain.Products{}, ctx.Err()
	}
	if err := first.Handle(msg.Copy()); err != nil {
		t.Fatal(err)
	}
	<-started

	second := e.newWorkers()
	second.Leases = leases()
	var calls atomic.Int32
	real := second.Process
	second.Process = func(ctx context.Context, run string, cfg domain.RunConfig, prev *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		calls.Add(1)
		return real(ctx, run, cfg, prev, add, log)
	}
	if err := second.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	e.deliver(second, msg)
	second.Wait()
	if n := calls.Load(); n != 0 {
		t.Fatalf("the second worker ran the job %d times while the first held it", n)
	}
	if r := e.load(run); r.Status != domain.StatusRunning {
		t.Fatalf("run is %s while the first worker runs its job, want Running", r.Status)
	}

	first.Close() // gone, the job unfinished: its lease is free
	e.deliver(second, msg)
	if n := calls.Load(); n != 1 {
		t.Fatalf("the second worker ran the job %d times after the first went, want 1", n)
	}
	r := e.load(run)
	if r.Status != domain.StatusCompleted || r.Figures().NImages != 3 {
		t.Fatalf("after the takeover the run is %s with %d images", r.Status, r.Figures().NImages)
	}
	if n := e.count(run, domain.TypeProcessingCompleted); n != 1 {
		t.Fatalf("%d completions, want 1", n)
	}
	e.audit(run)
	// The finished job's lease file is gone.
	if _, err := os.Stat(filepath.Join(dir, "job-"+res.Run.Job.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lease file of the finished job: %v", err)
	}
}
