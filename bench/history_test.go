package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
)

// audit checks every run stream of store with the domain's audit and
// returns the runs' final states.
func audit(t *testing.T, store eventstore.Store) map[string]domain.Run {
	t.Helper()
	ctx := context.Background()
	evs, err := store.ReadAll(ctx, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]bool{}
	for _, ev := range evs {
		streams[ev.Stream] = true
	}
	svc := command.New(store)
	runs := map[string]domain.Run{}
	for s := range streams {
		name, ok := strings.CutPrefix(s, "run-")
		if !ok {
			continue
		}
		recs, _, err := svc.History(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if findings := domain.Audit(recs); len(findings) > 0 {
			t.Fatalf("run %s: audit found %v", name, findings)
		}
		runs[name] = domain.Replay(recs)[len(recs)-1]
	}
	return runs
}

func TestWriteHistoryWritesValidInterleavedHistories(t *testing.T) {
	store := memory.New()
	res, err := WriteHistory(context.Background(), store, HistoryOptions{Events: 3000, Writers: 8, LogFlushes: 3, Cycles: 2})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := store.HeadPosition(context.Background())
	if res.Events < 3000 || int64(res.Events) != head {
		t.Fatalf("wrote %d events, log head %d; want at least 3000, equal", res.Events, head)
	}
	runs := audit(t, store)
	if len(runs) < 8 {
		t.Fatalf("%d runs, want one per writer at least", len(runs))
	}
	restored := 0
	for _, r := range runs {
		if r.Status == domain.StatusCompleted && r.Backup == nil && len(r.Logs) == 1+2*2 {
			restored++ // created, processed, then 2 cycles of add and restore
		}
	}
	if restored == 0 {
		t.Fatal("no run went through its whole script")
	}
	// Writers interleave: some run's events are not one contiguous block
	// of the log. (Which runs, and where, is up to the scheduler.)
	all, err := store.ReadAll(context.Background(), 0, res.Events+1)
	if err != nil {
		t.Fatal(err)
	}
	ended := map[string]bool{}
	interleaved := false
	for i, ev := range all {
		if ended[ev.Stream] {
			interleaved = true
			break
		}
		if i > 0 && all[i-1].Stream != ev.Stream {
			ended[all[i-1].Stream] = true
		}
	}
	if !interleaved {
		t.Fatal("the runs of concurrent writers do not interleave in the log")
	}
}

func TestSeededRunsAreRestorable(t *testing.T) {
	store := memory.New()
	fx := fixture{}
	var err error
	if fx.Before, err = syntheticConfig(2, "t"); err != nil {
		t.Fatal(err)
	}
	if fx.After, err = syntheticConfig(3, "t"); err != nil {
		t.Fatal(err)
	}
	fx.BeforeProducts = syntheticProducts("t", fx.Before, 1)
	fx.AfterProducts = syntheticProducts("t", fx.After, 2)
	if err := seedMany(context.Background(), seeder(store), 10, 3, func(i int) string { return seededName("t", i) }, domain.Actor{Name: "alice"}, fx, nil); err != nil {
		t.Fatal(err)
	}
	runs := audit(t, store)
	if len(runs) != 10 {
		t.Fatalf("%d runs, want 10", len(runs))
	}
	for name, r := range runs {
		if !r.RestoreAvailable() || r.Backup.Products.Figures != fx.BeforeProducts.Figures || r.Owner != "alice" {
			t.Errorf("run %s: restore available %v, backup %+v", name, r.RestoreAvailable(), r.Backup)
		}
	}
	// Seeding the same names again is refused by the store, not doubled.
	if err := seedRestorable(context.Background(), seeder(store), seededName("t", 0), domain.Actor{Name: "alice"}, fx); err == nil {
		t.Fatal("seeding an existing run succeeded")
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    Mix
		wantErr bool
	}{
		{in: "restore=90,create=5,process=5", want: Mix{Restore: 90, Create: 5, Process: 5}},
		{in: "restore=1", want: Mix{Restore: 1}},
		{in: " create=2 , process=1", want: Mix{Create: 2, Process: 1}},
		{in: "restore=0", wantErr: true},
		{in: "restore=-1", wantErr: true},
		{in: "delete=1", wantErr: true},
		{in: "restore", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseMix(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMix(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			if again, err := ParseMix(got.String()); err != nil || again != got {
				t.Errorf("ParseMix(%q.String()) = %+v, %v", tt.in, again, err)
			}
		}
	}
}
