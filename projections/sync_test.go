package projections_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/projections"
)

// TestReadModelsDurabilityAndEarlierVersionsFiles checks how the read models
// are kept: synced at checkpoints (NORMAL, on both connections), kept across
// a clean close, and discarded and rebuilt from the log, even damaged, when
// an earlier version that wrote them without syncs left its marker beside
// them (it removed the marker only after a sync); the marker and that
// version's lock file go with them.
func TestReadModelsDurabilityAndEarlierVersionsFiles(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	seed(t, ctx, command.New(es))
	path := filepath.Join(t.TempDir(), "read.db")

	s, err := projections.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if p, c, err := projections.Synchronous(ctx, s); err != nil || p != 1 || c != 1 {
		t.Fatalf("synchronous %d (projector), %d (checkpoints), %v; want 1 and 1 (NORMAL)", p, c, err)
	}
	if err := s.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	want, _ := s.ListRuns(ctx)
	head := s.Position()
	if head == 0 || len(want) == 0 {
		t.Fatalf("the seed made no runs (position %d)", head)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	reopen := func() *projections.Store {
		t.Helper()
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

	s = reopen()
	if s.Discarded() || s.Position() != head {
		t.Fatalf("after a clean close: discarded %v at position %d, want kept at %d", s.Discarded(), s.Position(), head)
	}
	check(s, "after a clean close")
	s.Close()

	// An earlier version's files: its marker (naming a boot) and lock
	// file, and a database damaged as a torn write might leave it.
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
	for _, p := range []string{path + ".unsynced", path + ".lock"} {
		if err := os.WriteFile(p, []byte("an-earlier-boot\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen()
	if !s.Discarded() || s.Position() != 0 {
		t.Fatalf("with an earlier version's marker: discarded %v at position %d, want discarded at 0", s.Discarded(), s.Position())
	}
	for _, p := range []string{path + ".unsynced", path + ".lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after the discard: %v", filepath.Base(p), err)
		}
	}
	check(s, "rebuilt after an earlier version's unsynced writes")
	s.Close()

	s = reopen()
	if s.Discarded() || s.Position() != head {
		t.Fatalf("after the rebuild and a clean close: discarded %v at position %d, want kept at %d", s.Discarded(), s.Position(), head)
	}
}
