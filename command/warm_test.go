package command_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/statecodec"
)

// restorableRuns creates n runs on svc, each processed, an image added and
// processed again, so that each can be restored once.
func restorableRuns(t *testing.T, svc *command.Service, n int) []string {
	t.Helper()
	ctx := context.Background()
	var names []string
	for i := range n {
		name := fmt.Sprintf("run-%02d", i)
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: name, Config: testConfig(2), Actor: owner}); err != nil {
			t.Fatal(err)
		}
		for _, cfg := range []int{2, 3} {
			if cfg == 3 {
				if _, err := svc.UpdateConfig(ctx, name, testConfig(3), owner); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := svc.RequestProcessing(ctx, name, false, false, owner); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := svc.ExecRun(ctx, name, "system:worker", func(r *domain.Run) ([]domain.Event, error) {
					if !r.Job.Started {
						return r.StartProcessing(r.Job.ID), nil
					}
					p := domain.Products{Artifacts: []domain.Artifact{{Name: "images.parquet", Digest: fmt.Sprintf("sha256:%s-%d", name, cfg), Size: 1}}}
					return r.FinishProcessing(r.Job.ID, &p, nil), nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		names = append(names, name)
	}
	return names
}

func statesOf(t *testing.T, svc *command.Service, names []string) func(func(domain.Run) bool) {
	return func(yield func(domain.Run) bool) {
		for _, n := range names {
			r, err := svc.LoadRun(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			if !yield(r) {
				return
			}
		}
	}
}

// TestWarmCache checks that a service warmed with runs' states decides
// commands on them without reading the runs' events, that warming stops
// when the cache is full without dropping what it holds, and that a
// warmed state which is stale (another process appended since) decides
// nothing: the restore it would allow is refused on the store's state, and
// the run is restored once.
func TestWarmCache(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: memory.New()}
	other := command.New(store)
	names := restorableRuns(t, other, 6)
	one, err := other.LoadRun(ctx, names[0])
	if err != nil {
		t.Fatal(err)
	}
	size, err := statecodec.EncodeState(one)
	if err != nil {
		t.Fatal(err)
	}

	svc := command.New(store)
	svc.CacheBytes = 4*len(size) + len(size)/2 // room for four
	if n := svc.WarmCache(statesOf(t, other, names)); n != 4 {
		t.Fatalf("warmed %d runs, want the 4 there is room for", n)
	}
	if runs, bytes := svc.CacheSize(); runs != 4 || bytes > svc.CacheBytes {
		t.Fatalf("cache holds %d runs, %d bytes after warming (budget %d)", runs, bytes, svc.CacheBytes)
	}
	if n := svc.WarmCache(statesOf(t, other, names[4:])); n != 0 {
		t.Fatalf("a full cache took %d more runs", n)
	}

	// Another process restores run 1 after the warming: the warmed state
	// is stale.
	if _, err := other.RequestRestore(ctx, names[1], false, owner); err != nil {
		t.Fatal(err)
	}

	reads := store.reads.Load()
	if _, err := svc.RequestRestore(ctx, names[0], false, owner); err != nil {
		t.Fatalf("restore of a warmed run: %v", err)
	}
	if got := store.reads.Load() - reads; got != 0 {
		t.Errorf("a command on a warmed run read %d streams", got)
	}
	if _, err := svc.RequestRestore(ctx, names[1], false, owner); !errors.Is(err, domain.ErrNotRestorable) {
		t.Fatalf("restore of a run restored since it was warmed: %v, want %v", err, domain.ErrNotRestorable)
	}
	recs, _, err := svc.History(ctx, names[1])
	if err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(recs, func(r domain.Recorded) bool { return r.Event.EventType() != domain.TypeRestoreRequested })); n != 1 {
		t.Fatalf("run %s has %d restore requests, want 1", names[1], n)
	}

	// Commands' states go in ahead of warmed ones, and the budget holds.
	var last command.Result
	for _, n := range names[4:] {
		if last, err = svc.RequestRestore(ctx, n, false, owner); err != nil {
			t.Fatal(err)
		}
	}
	if runs, bytes := svc.CacheSize(); runs > 4 || bytes > svc.CacheBytes {
		t.Fatalf("cache holds %d runs, %d bytes (budget %d)", runs, bytes, svc.CacheBytes)
	}
	if _, ok := svc.CachedState(names[5], last.Run.Version, eventID(t, svc.Store, names[5], last.Run.Version)); !ok {
		t.Fatalf("the last commanded run is not cached at version %d", last.Run.Version)
	}
}
