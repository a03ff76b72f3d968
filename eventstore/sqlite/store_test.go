package sqlite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/eventstoretest"
	"github.com/piperun/piperun/eventstore/sqlite"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

func TestContract(t *testing.T) {
	eventstoretest.Run(t, eventstoretest.Factory{
		New: func(t *testing.T) eventstore.Store {
			return open(t, filepath.Join(t.TempDir(), "events.db"))
		},
		Reopen: func(t *testing.T, s eventstore.Store) eventstore.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return open(t, s.(*sqlite.Store).Path())
		},
	})
}

// TestTwoStoresOneFile opens the file twice, as two API replicas would, and
// races appends to one stream from both: the database lets exactly one win.
func TestTwoStoresOneFile(t *testing.T) {
	const rounds, writersPerStore = 10, 8
	path := filepath.Join(t.TempDir(), "events.db")
	stores := []*sqlite.Store{open(t, path), open(t, path)}
	for _, s := range stores {
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	ctx := context.Background()
	stream := "run-shared"
	for round := range int64(rounds) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make(chan error, 2*writersPerStore)
		for _, s := range stores {
			for range writersPerStore {
				wg.Go(func() {
					<-start
					_, _, err := s.Append(ctx, stream, round, eventstore.EventData{
						ID: uuid.NewString(), Type: "run.restore-requested.v1", Data: []byte(`{}`), Actor: "tester",
					})
					results <- err
				})
			}
		}
		close(start)
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, eventstore.ErrConcurrency):
				t.Fatalf("round %d: losing append failed with %v, want ErrConcurrency", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d appends at version %d succeeded, want 1", round, won, round)
		}
	}
	// Both see the same history: one event per round, in order.
	for i, s := range stores {
		evs, err := s.ReadStream(ctx, stream, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != rounds {
			t.Fatalf("store %d reads %d events, want %d", i, len(evs), rounds)
		}
		for j, e := range evs {
			if e.Version != int64(j+1) || (j > 0 && e.Position <= evs[j-1].Position) {
				t.Fatalf("store %d: event %d has version %d position %d", i, j, e.Version, e.Position)
			}
		}
	}
}

func TestOpenUnavailable(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(notADir, "events.db"), sqlite.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open under a regular file succeeded")
	}
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("Open under a regular file: err = %v, want ErrUnavailable", err)
	}
}

func TestPathWithURIChars(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data ?#%dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.db")
	s := open(t, path)
	if _, _, err := s.Append(context.Background(), "run-1", eventstore.NoStream, eventstore.EventData{ID: uuid.NewString(), Type: "run.created.v1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %s: %v", path, err)
	}
}

// TestReadOnlyStorage makes the WAL file immutable under a running store,
// which even root cannot write: appends then fail as unavailable, and work
// again once the file is writable.
func TestReadOnlyStorage(t *testing.T) {
	chattr, err := exec.LookPath("chattr")
	if err != nil {
		t.Skip("needs chattr (e2fsprogs) to make a file immutable")
	}
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	newEvent := func() eventstore.EventData {
		return eventstore.EventData{ID: uuid.NewString(), Type: "run.created.v1", Data: []byte(`{}`), Actor: "tester"}
	}
	if _, _, err := s.Append(ctx, "run-1", eventstore.NoStream, newEvent()); err != nil {
		t.Fatal(err)
	}
	wal := path + "-wal"
	if out, err := exec.Command(chattr, "+i", wal).CombinedOutput(); err != nil {
		t.Skipf("cannot make %s immutable (file system or capabilities): %v: %s", wal, err, out)
	}
	writable := func() {
		if out, err := exec.Command(chattr, "-i", wal).CombinedOutput(); err != nil {
			t.Fatalf("chattr -i %s: %v: %s", wal, err, out)
		}
	}
	t.Cleanup(writable) // before t.TempDir's removal, which runs later

	_, _, err = s.Append(ctx, "run-1", 1, newEvent())
	t.Logf("append to a read-only WAL: %v", err)
	if !errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrConcurrency) {
		t.Errorf("append to a read-only WAL: err = %v, want ErrUnavailable", err)
	}
	writable()
	if v, _, err := s.Append(ctx, "run-1", 1, newEvent()); err != nil || v != 2 {
		t.Errorf("append once writable again = %d, %v; want 2, nil", v, err)
	}
}
