package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/piperun/piperun/eventstore"
)

// TestReadAllNearAndFar checks that ReadAll gives the same events whether
// it reads through the mapped connection (far from the last position this
// process wrote, or when it has written nothing) or the other (near it).
func TestReadAllNearAndFar(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 2*nearEnd + 100
	for i := 0; i < n; i += 500 {
		var evs []eventstore.EventData
		for j := i; j < min(i+500, n); j++ {
			evs = append(evs, eventstore.EventData{ID: fmt.Sprintf("e%d", j), Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, j)), Actor: "a", Time: time.Unix(int64(j), 0).UTC()})
		}
		if _, _, err := s.Append(ctx, fmt.Sprintf("s-%d", i), 0, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if w := s.written.Load(); w != n {
		t.Fatalf("written = %d, want %d", w, n)
	}
	fresh, err := Open(ctx, path, Options{}) // knows no position: maps
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for _, after := range []int64{0, n - nearEnd - 1, n - nearEnd, n - 10} {
		near, err := s.ReadAll(ctx, after, 50)
		if err != nil {
			t.Fatal(err)
		}
		far, err := fresh.ReadAll(ctx, after, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(near) != int(min(50, n-after)) || !reflect.DeepEqual(near, far) {
			t.Fatalf("after %d: %d events from the writing store, %d from a fresh one, or they differ", after, len(near), len(far))
		}
		for i, e := range near {
			if e.Position != after+int64(i)+1 {
				t.Fatalf("after %d: event %d at position %d", after, i, e.Position)
			}
		}
	}
}
