package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/statecodec"
)

// TestHintedRunChangedAgainInBatch covers a projector that takes a run's
// state from the hints after an event that left its artifacts as they
// were (so it reads only the state's leading fields), then meets more
// events of the run in the same batch, from another process whose states
// it has no hints for: a full re-run that replaces the run's products, so
// that artifact references go and come. The tables must be a rebuild's, byte for byte.
//
// With damaged hints (a state whose leading fields decode and whose rest
// does not), the projector must fall back to the read model and still
// match the rebuild.
func TestHintedRunChangedAgainInBatch(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		t.Run(fmt.Sprintf("damaged=%v", damaged), func(t *testing.T) { testHintedRunChangedAgainInBatch(t, damaged) })
	}
}

// cutHints hands out its service's states cut short after their leading
// fields.
type cutHints struct{ svc *command.Service }

func (h cutHints) CachedState(name string, version int64, id string) ([]byte, bool) {
	state, ok := h.svc.CachedState(name, version, id)
	if !ok {
		return nil, false
	}
	var head domain.Run
	if err := statecodec.DecodeSharedStateHead(state, &head); err != nil {
		panic(err)
	}
	b, err := statecodec.EncodeState(head)
	if err != nil {
		panic(err)
	}
	return b[:len(b)-5], true // the leading fields, then the rest cut
}

func testHintedRunChangedAgainInBatch(t *testing.T, damaged bool) {
	ctx := context.Background()
	es := memory.New()
	svc, other := command.New(es), command.New(es)
	alice := domain.Actor{Name: "alice"}
	dir := t.TempDir()
	incPath := filepath.Join(dir, "incremental.db")

	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig("a"), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RequestProcessing(ctx, "r", false, false, alice); err != nil {
		t.Fatal(err)
	}
	finish := func(s *command.Service, job string) {
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

	// The hinted event, then the other process's.
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
	fresh.Hints = svc
	if damaged {
		fresh.Hints = cutHints{svc}
	}
	if err := fresh.ApplyBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n := fresh.HintsUsed(); n != 1 {
		t.Fatalf("the projector took %d states from the hints, want 1", n)
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
