package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

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
