package esdb

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/esdb/esdbfake"
	"github.com/piperun/piperun/eventstore/eventstoretest"
)

// factory opens stores on url; Reopen is a restart of the process, the
// server keeps the data.
func factory(url string) eventstoretest.Factory {
	open := func(t *testing.T) eventstore.Store {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		return s
	}
	return eventstoretest.Factory{
		New: open,
		Reopen: func(t *testing.T, s eventstore.Store) eventstore.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return open(t)
		},
	}
}

// TestContract runs the contract suite against a real EventStoreDB server.
func TestContract(t *testing.T) {
	url := os.Getenv("PIPERUN_TEST_ESDB_URL")
	if url == "" {
		t.Skip("EventStoreDB contract suite: set PIPERUN_TEST_ESDB_URL=esdb://localhost:2113?tls=false (docker compose up -d eventstoredb)")
	}
	eventstoretest.Run(t, factory(url))
}

// TestContractFakeServer runs the contract suite through the real client
// against the in-process fake node (see fakeServer).
func TestContractFakeServer(t *testing.T) {
	eventstoretest.Run(t, factory(newFakeServer(t).URL()))
}

func openFake(t *testing.T, f *esdbfake.Server, opts Options) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), f.URL(), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func event(typ string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.NewString(), Type: typ, Data: []byte(`{}`), Actor: "alice", Time: time.Now()}
}

func TestWrongExpectedVersionFromClientError(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f, Options{})
	ctx := context.Background()
	if _, _, err := s.Append(ctx, "run-a", eventstore.NoStream, event("run.created.v1"), event("run.processed.v1")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		stream   string
		expected int64
		actual   int64
	}{
		{"behind", "run-a", 1, 2},
		{"ahead", "run-a", 5, 2},
		{"NoStream on an existing stream", "run-a", eventstore.NoStream, 2},
		{"version on a missing stream", "run-b", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Append(ctx, tt.stream, tt.expected, event("run.processed.v1"))
			var ce *eventstore.ConcurrencyError
			if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrConcurrency) {
				t.Fatalf("err = %v (%T), want a *ConcurrencyError", err, err)
			}
			want := eventstore.ConcurrencyError{Stream: tt.stream, Expected: tt.expected, Actual: tt.actual}
			if *ce != want {
				t.Errorf("error = %+v, want %+v", *ce, want)
			}
		})
	}
}

func TestAppendRefusesWhatESDBCannotStore(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f, Options{})
	notUUID := event("run.created.v1")
	notUUID.ID = "evt-1"
	tests := []struct {
		name   string
		stream string
		ev     eventstore.EventData
		want   string
	}{
		{"id not a UUID", "run-a", notUUID, "not a UUID"},
		{"system stream", "$run-a", event("run.created.v1"), "system stream"},
		{"snapshot stream", "snapshot-run-a", event("run.created.v1"), "reserved for snapshots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Append(context.Background(), tt.stream, eventstore.NoStream, tt.ev)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if n := f.Count(tt.stream); n != 0 {
				t.Errorf("the refused append wrote %d events", n)
			}
		})
	}
}

func TestUnavailableServer(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f, Options{})
	ctx := context.Background()
	if _, _, err := s.Append(ctx, "run-a", eventstore.NoStream, event("run.created.v1")); err != nil {
		t.Fatal(err)
	}
	f.Stop()
	// The first call sees the connection fail; the next ones the client's
	// failed rediscovery, after which it gives up and the store renews it.
	for i := range 3 {
		_, _, err := s.Append(ctx, "run-a", 1, event("run.processed.v1"))
		if !errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrConcurrency) {
			t.Fatalf("append %d to a stopped server: err = %v, want ErrUnavailable", i, err)
		}
		if _, err := s.ReadStream(ctx, "run-a", 1, 0); !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("read %d from a stopped server: err = %v, want ErrUnavailable", i, err)
		}
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	// The server is back: the store recovers without being reopened.
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _, err := s.Append(ctx, "run-a", 1, event("run.processed.v1"))
		if err == nil {
			if v != 2 {
				t.Fatalf("version after recovery = %d, want 2", v)
			}
			break
		}
		if !errors.Is(err, eventstore.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("append after the server came back: %v", err)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	f := newFakeServer(t)
	f.Stop()
	_, err := Open(context.Background(), f.URL())
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("open a stopped server: err = %v, want ErrUnavailable", err)
	}
	if _, err := Open(context.Background(), "http://[::1"); err == nil || errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("open a malformed URL: err = %v, want a parse error", err)
	}
}

func TestGlobalLogHidesSystemAndSnapshotStreams(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		name     string
		prefixes []string
		want     []string // streams in the global log, in order
	}{
		{"every stream", nil, []string{"run-a", "user-bob", "log-x", "run-a"}},
		{"prefixes", []string{"run-", "user-"}, []string{"run-a", "user-bob", "run-a"}},
	}
	w := openFake(t, f, Options{})
	ctx := context.Background()
	if _, _, err := w.Append(ctx, "run-a", eventstore.NoStream, event("run.created.v1")); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(ctx, eventstore.Snapshot{Stream: "run-a", Version: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"user-bob", "log-x"} {
		if _, _, err := w.Append(ctx, st, eventstore.NoStream, event("x.v1")); err != nil {
			t.Fatal(err)
		}
	}
	_, last, err := w.Append(ctx, "run-a", 1, event("run.processed.v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(ctx, eventstore.Snapshot{Stream: "run-a", Version: 2, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openFake(t, f, Options{StreamPrefixes: tt.prefixes})
			for _, limit := range []int{0, 1, 2} {
				var got []string
				var after int64
				for {
					page, err := s.ReadAll(ctx, after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					for _, e := range page {
						got = append(got, e.Stream)
						after = e.Position
					}
				}
				if strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Errorf("limit %d: global log streams %v, want %v", limit, got, tt.want)
				}
			}
			head, err := s.HeadPosition(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if head != last {
				t.Errorf("head %d, want the last run-a event at %d (snapshots and system events come after it)", head, last)
			}
		})
	}
}

func TestSnapshotStreamIsCapped(t *testing.T) {
	f := newFakeServer(t)
	s := openFake(t, f, Options{})
	ctx := context.Background()
	for v := int64(1); v <= 3; v++ {
		if err := s.SaveSnapshot(ctx, eventstore.Snapshot{Stream: "run-a", Version: v, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Count("$$snapshot-run-a"); n != 1 {
		t.Errorf("metadata of the snapshot stream written %d times, want once", n)
	}
	// Another process saving the same stream finds the metadata set.
	other := openFake(t, f, Options{})
	if err := other.SaveSnapshot(ctx, eventstore.Snapshot{Stream: "run-a", Version: 4, Data: []byte(`{"v":4}`)}); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("$$snapshot-run-a"); n != 1 {
		t.Errorf("metadata written %d times after a second process saved, want once", n)
	}
	evs, err := s.ReadStream(ctx, "snapshot-run-a", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Version != 4 {
		t.Errorf("readable snapshot events %+v, want only the last (revision 3, version 4)", evs)
	}
	got, err := s.LoadSnapshot(ctx, "run-a")
	if err != nil || got.Version != 4 || string(got.Data) != `{"v":4}` {
		t.Errorf("load = %+v, %v", got, err)
	}
}

func TestChangedByAnotherProcess(t *testing.T) {
	f := newFakeServer(t)
	reader := openFake(t, f, Options{StreamPrefixes: []string{"run-"}})
	writer := openFake(t, f, Options{})
	ctx := context.Background()
	// The reader subscribes in the background after Open, and a subscription
	// from the end of $all sees only later events: append until one of the
	// writer's events wakes the reader.
	deadline := time.Now().Add(5 * time.Second)
	for v := int64(0); ; v++ {
		ch := reader.Changed()
		if _, _, err := writer.Append(ctx, "run-a", v, event("run.processed.v1")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("appends by another store never closed Changed")
		}
	}
}

// newFakeServer starts an in-process fake node for the test.
func newFakeServer(t *testing.T) *esdbfake.Server {
	t.Helper()
	f := esdbfake.New("127.0.0.1:0")
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}
