package projections_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
)

// TestEachRunState checks that every run's projected state is given, equal
// to the state the service loads, the most recently updated first, and
// that returning false stops the listing.
func TestEachRunState(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	clock := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	svc.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	names := []string{"b", "c", "a"}
	for _, n := range names {
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: n, Config: testConfig("x"), Actor: domain.Actor{Name: "alice"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.UpdateConfig(ctx, "b", testConfig("y"), domain.Actor{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := read.EachRunState(ctx, func(r domain.Run) bool {
		want, err := svc.LoadRun(ctx, r.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("run %s: listed state differs from the loaded one:\n%+v\n%+v", r.Name, r, want)
		}
		got = append(got, r.Name)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "a", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("listed %q, want %q (most recently updated first)", got, want)
	}
	got = nil
	if err := read.EachRunState(ctx, func(r domain.Run) bool { got = append(got, r.Name); return len(got) < 2 }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("listing went on after yield returned false: %q", got)
	}
}
