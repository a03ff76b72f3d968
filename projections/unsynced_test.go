package projections_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/internal/unsynced"
	"github.com/piperun/piperun/projections"
)

// TestUnsyncedReadModelsAfterARestart checks what the read models'
// unsynced writes rely on: after a process crash (same boot) the file is
// kept; after a crash of the machine (the marker names an earlier boot)
// it is discarded, even damaged, and the projector rebuilds it from the
// log; after a clean close it is kept whatever the boot.
func TestUnsyncedReadModelsAfterARestart(t *testing.T) {
	boot, err := unsynced.BootID()
	if err != nil {
		t.Skipf("no boot ID on this system (%v): the read models sync as before", err)
	}
	ctx := context.Background()
	es := memory.New()
	seed(t, ctx, command.New(es))
	path := filepath.Join(t.TempDir(), "read.db")

	s, err := projections.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if p, c, err := projections.Synchronous(ctx, s); err != nil || p != 0 || c != 0 {
		t.Fatalf("synchronous %d (projector), %d (checkpoints), %v; want 0 and 0 (OFF)", p, c, err)
	}
	if err := s.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	want, _ := s.ListRuns(ctx)
	head := s.Position()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".unsynced"); !os.IsNotExist(err) {
		t.Fatalf("the marker outlived a clean close: %v", err)
	}

	reopen := func(marker string) *projections.Store {
		t.Helper()
		if marker != "" {
			if err := os.WriteFile(path+".unsynced", []byte(marker+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s, err := projections.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	check := func(s *projections.Store, what string) {
		t.Helper()
		if err := s.CatchUp(ctx, es); err != nil {
			t.Fatalf("%s: catch up: %v", what, err)
		}
		if got, err := s.ListRuns(ctx); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: runs %+v, %v; want %+v", what, got, err, want)
		}
	}

	// Clean close, any boot: kept.
	s = reopen("")
	if s.Discarded() || s.Position() != head {
		t.Fatalf("after a clean close: discarded %v at position %d, want kept at %d", s.Discarded(), s.Position(), head)
	}
	check(s, "after a clean close")
	s.Close()

	// A killed process in this boot leaves the marker naming this boot:
	// kept, the kernel held its writes.
	s = reopen(boot)
	if s.Discarded() || s.Position() != head {
		t.Fatalf("after a process crash: discarded %v at position %d, want kept at %d", s.Discarded(), s.Position(), head)
	}
	check(s, "after a process crash")
	s.Close()

	// A machine crash: the marker names an earlier boot and the file may be
	// torn. Damage it as a torn write might.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 16384)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	if _, err := f.WriteAt(garbage, 16384); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s = reopen("an-earlier-boot")
	if !s.Discarded() || s.Position() != 0 {
		t.Fatalf("after a machine crash: discarded %v at position %d, want discarded at 0", s.Discarded(), s.Position())
	}
	check(s, "rebuilt after a machine crash")
}
