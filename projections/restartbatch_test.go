package projections_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
)

// TestRunChangedInBatchAfterRestart covers a projector that holds no
// states yet (as after a restart) and meets, in one batch, an event that
// left a run's artifacts as they were, then a full re-run that replaces
// the run's products, so that artifact references go and come. The tables
// must be a rebuild's, byte for byte.
func TestRunChangedInBatchAfterRestart(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc, other := app.New(es), app.New(es)
	alice := domain.Actor{Name: "alice"}
	dir := t.TempDir()
	incPath := filepath.Join(dir, "incremental.db")

	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig("a"), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RequestProcessing(ctx, "r", false, false, alice); err != nil {
		t.Fatal(err)
	}
	finish := func(s *app.Service, job string) {
		t.Helper()
		if _, err := s.ExecRun(ctx, "r", "worker", func(r *domain.Run) ([]domain.Event, error) {
			return append(r.StartProcessing(r.Job.ID), r.FinishProcessing(r.Job.ID, sharedProducts(job), nil)...), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	finish(svc, "1")
	first := openRead(t, incPath)
	if err := first.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}

	// An event that leaves the artifacts, then another process's.
	if _, err := svc.UpdateConfig(ctx, "r", testConfig("a", "b"), alice); err != nil {
		t.Fatal(err)
	}
	// A full re-run: no backup keeps the first products' artifacts.
	if _, err := other.RequestProcessing(ctx, "r", false, true, alice); err != nil {
		t.Fatal(err)
	}
	finish(other, "2")
	batch, err := es.ReadAll(ctx, first.Position(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 4 {
		t.Fatalf("%d events after the first projection, want 4", len(batch))
	}
	fresh := openRead(t, incPath) // holds no states yet, as after a restart
	if err := fresh.ApplyBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}

	rebuiltPath := filepath.Join(dir, "rebuilt.db")
	if err := openRead(t, rebuiltPath).CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if inc, reb := dumpTables(t, incPath), dumpTables(t, rebuiltPath); inc != reb {
		t.Fatalf("tables differ:\nincremental %s\nrebuilt     %s", inc, reb)
	}
	got, err := fresh.GetRunState(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if got.Products == nil || got.Status != domain.StatusCompleted || len(got.Config.Inputs.Images) != 2 {
		t.Fatalf("run r after the batch: status %s, products %v, config %v", got.Status, got.Products, got.Config.Inputs)
	}
}
