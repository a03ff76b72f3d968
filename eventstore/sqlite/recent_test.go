package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/piperun/piperun/eventstore"
)

// readAllFromDB is ReadAll as the database answers it, without the events
// kept in memory.
func readAllFromDB(t *testing.T, s *Store, after int64, limit int) []eventstore.Event {
	t.Helper()
	rows, err := s.reads.all.QueryContext(context.Background(), after, limit)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := scanEvents(rows, limit)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestReadAllRecentMatchesDatabase appends from many goroutines of one
// store, with appends refused for their expected version, events with and
// without times, several events per append, and another store on the same
// file writing in between; ReadAll then answers every (after, limit) as the
// database does, from memory where it can.
func TestReadAllRecentMatchesDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, other := open(t, path), open(t, path)
	defer s.Close()
	defer other.Close()

	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			stream := fmt.Sprintf("run-%d", g)
			var v int64
			for i := range 40 {
				evs := make([]eventstore.EventData, 1+i%3)
				for j := range evs {
					evs[j] = event(fmt.Sprintf(`{"g":%d,"i":%d,"j":%d}`, g, i, j))
					if j == 1 {
						evs[j].Time = time.Time{} // the writer's time
					}
				}
				if i%7 == 3 { // refused: one past the head
					if _, _, err := s.Append(ctx, stream, v+1, evs...); !errors.Is(err, eventstore.ErrConcurrency) {
						t.Errorf("append past the head: %v", err)
					}
					continue
				}
				nv, _, err := s.Append(ctx, stream, v, evs...)
				if err != nil {
					t.Error(err)
					return
				}
				v = nv
				if g == 0 && i%10 == 5 {
					if _, _, err := other.Append(ctx, fmt.Sprintf("other-%d", i), eventstore.NoStream, event(`{}`)); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()

	head, err := s.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	for after := int64(0); after <= head; after++ {
		for _, limit := range []int{1, 7, 500} {
			if _, ok := s.readRecent(ctx, after, limit); ok {
				served++
			}
			got, err := s.ReadAll(ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if want := readAllFromDB(t, s, after, limit); !reflect.DeepEqual(got, want) {
				t.Fatalf("ReadAll(%d, %d): %d events, the database %d, or they differ", after, limit, len(got), len(want))
			}
		}
	}
	if served == 0 {
		t.Error("no read was served from memory")
	}

	// Another process appends last: the events kept no longer reach the
	// head, and short reads go to the database.
	if _, _, err := other.Append(ctx, "other-last", eventstore.NoStream, event(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.readRecent(ctx, head-3, 500); ok {
		t.Error("a short read served from memory while another process's event follows")
	}
	got, err := s.ReadAll(ctx, head-3, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3].Stream != "other-last" {
		t.Fatalf("read after another process's append: %d events", len(got))
	}
}

// TestReadAllRecentOwnsNothingShared changes the data of events ReadAll
// returned from memory and of the appended events: a later read gives the
// stored bytes.
func TestReadAllRecentOwnsNothingShared(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	e := event(`{"a":1}`)
	if _, _, err := s.Append(ctx, "run-1", eventstore.NoStream, e); err != nil {
		t.Fatal(err)
	}
	e.Data[0] = 'X'
	first, ok := s.readRecent(ctx, 0, 10)
	if !ok || len(first) != 1 {
		t.Fatalf("read from memory: %d events, ok %v", len(first), ok)
	}
	first[0].Data[1] = 'Y'
	again, err := s.ReadAll(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0].Data) != `{"a":1}` {
		t.Fatalf("data %s, want the stored {\"a\":1}", again[0].Data)
	}
}
