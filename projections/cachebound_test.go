package projections

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
)

// TestStateCacheIsBounded projects more runs than the projector may keep
// states of: it drops them after the batch, and later events of those runs
// are projected from the stored read models all the same.
func TestStateCacheIsBounded(t *testing.T) {
	defer func(n int) { maxCachedStates = n }(maxCachedStates)
	maxCachedStates = 3
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	s, err := Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice := domain.Actor{Name: "alice"}
	cfg := domain.RunConfig{YAML: "# t", SettingsDigest: "s", Inputs: domain.Inputs{Images: []string{"a.fits"}, Selavy: []string{"a.txt"}, Noise: []string{"a.n"}, Background: []string{"a.b"}}}
	for i := range 5 {
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: fmt.Sprint("r", i), Config: cfg, Actor: alice}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if n := len(s.cache); n > maxCachedStates {
		t.Fatalf("%d states kept after the batch, bound %d", n, maxCachedStates)
	}
	for i := range 5 {
		if _, err := svc.RequestProcessing(ctx, fmt.Sprint("r", i), false, false, alice); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		st, err := s.GetRunState(ctx, fmt.Sprint("r", i))
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != domain.StatusQueued || st.Version != 2 {
			t.Errorf("run r%d: %s at version %d, want Queued at 2", i, st.Status, st.Version)
		}
	}
}

// TestPendingRunStates checks that the recovery's query returns exactly
// the runs with work pending.
func TestPendingRunStates(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	s, err := Open(ctx, filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice := domain.Actor{Name: "alice"}
	cfg := domain.RunConfig{YAML: "# t", SettingsDigest: "s", Inputs: domain.Inputs{Images: []string{"a.fits"}, Selavy: []string{"a.txt"}, Noise: []string{"a.n"}, Background: []string{"a.b"}}}
	for _, name := range []string{"idle", "queued", "running", "deleting"} {
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: name, Config: cfg, Actor: alice}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"queued", "running"} {
		if _, err := svc.RequestProcessing(ctx, name, false, false, alice); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.ExecRun(ctx, "running", "w", func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(r.Job.ID), nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RequestDeletion(ctx, "deleting", alice); err != nil {
		t.Fatal(err)
	}
	if err := s.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	runs, err := s.PendingRunStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Name+":"+string(r.Status))
	}
	if want := "[deleting:Deleting queued:Queued running:Running]"; fmt.Sprint(got) != want {
		t.Fatalf("pending runs %v, want %s", got, want)
	}
}
