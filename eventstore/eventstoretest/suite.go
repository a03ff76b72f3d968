package eventstoretest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
)

const (
	// waitTimeout bounds every wait for something that should happen at
	// once, so that a broken adapter fails the test instead of hanging it.
	waitTimeout = 5 * time.Second
	// callTimeout bounds every call to the store, for the same reason; it
	// leaves room for a remote server.
	callTimeout = 30 * time.Second
)

// ctx returns the context for one call to the store in test t.
func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Factory makes the stores the suite runs against.
type Factory struct {
	// New returns an open store. The store may already hold events (an
	// EventStoreDB server keeps them between runs); the suite uses stream
	// names unique to the run. The suite closes the store when the test ends,
	// so New must not register its own Close.
	New func(t *testing.T) eventstore.Store
	// Reopen closes s and returns a new store over the same storage, as a
	// restarted process would see it. Nil when the store is not durable.
	Reopen func(t *testing.T, s eventstore.Store) eventstore.Store
}

// Run runs the contract suite against the stores f makes.
func Run(t *testing.T, f Factory) {
	if f.New == nil {
		t.Fatal("eventstoretest.Factory.New is nil")
	}
	c := &contract{f: f, run: uuid.NewString()[:8]}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"AppendToNewStream", c.appendToNewStream},
		{"AppendSeveralAtomically", c.appendSeveralAtomically},
		{"WrongExpectedVersion", c.wrongExpectedVersion},
		{"AnyVersion", c.anyVersion},
		{"InvalidAppend", c.invalidAppend},
		{"ConcurrentAppendsToOneStream", c.concurrentAppendsToOneStream},
		{"ConcurrentAppendsToDistinctStreams", c.concurrentAppendsToDistinctStreams},
		{"ReadStreamRange", c.readStreamRange},
		{"ReadMissingStream", c.readMissingStream},
		{"ReadAllOrderAndLimit", c.readAllOrderAndLimit},
		{"HeadPosition", c.headPosition},
		{"ChangedAfterAppend", c.changedAfterAppend},
		{"Snapshots", c.snapshots},
		{"CancelledContext", c.cancelledContext},
		{"EventRoundTrip", c.eventRoundTrip},
		{"OddStreamNames", c.oddStreamNames},
		{"Closed", c.closed},
		{"Durable", c.durable},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type contract struct {
	f   Factory
	run string // random per Run, so streams never collide with earlier runs
}

// open returns a store from the factory that is closed when t ends.
func (c *contract) open(t *testing.T) eventstore.Store {
	t.Helper()
	s := c.f.New(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// stream returns a stream name unique to this run and test.
func (c *contract) stream(name string) string {
	return fmt.Sprintf("%s-%s-%s", name, c.run, uuid.NewString()[:8])
}

// newEvents returns n events with fresh ids.
func newEvents(n int, typ string) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{
			ID:    uuid.NewString(),
			Type:  typ,
			Data:  fmt.Appendf(nil, `{"n":%d}`, i),
			Actor: "system:eventstoretest",
			Time:  time.Now(),
		}
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected int64, events ...eventstore.EventData) (version, position int64) {
	t.Helper()
	v, p, err := s.Append(ctx(t), stream, expected, events...)
	if err != nil {
		t.Fatalf("append %d events to %q at %d: %v", len(events), stream, expected, err)
	}
	return v, p
}

func mustReadStream(t *testing.T, s eventstore.Store, stream string, from int64, limit int) []eventstore.Event {
	t.Helper()
	evs, err := s.ReadStream(ctx(t), stream, from, limit)
	if err != nil {
		t.Fatalf("read stream %q from %d limit %d: %v", stream, from, limit, err)
	}
	return evs
}

func mustVersion(t *testing.T, s eventstore.Store, stream string) int64 {
	t.Helper()
	v, err := s.StreamVersion(ctx(t), stream)
	if err != nil {
		t.Fatalf("version of %q: %v", stream, err)
	}
	return v
}

func mustHead(t *testing.T, s eventstore.Store) int64 {
	t.Helper()
	h, err := s.HeadPosition(ctx(t))
	if err != nil {
		t.Fatalf("head position: %v", err)
	}
	return h
}

// readOwn pages through the global log after position after, limit events
// at a time, and returns the events of the given streams. Events of other
// streams (another run on a shared server) are skipped.
func readOwn(t *testing.T, s eventstore.Store, after int64, limit int, streams ...string) []eventstore.Event {
	t.Helper()
	own := make(map[string]bool, len(streams))
	for _, st := range streams {
		own[st] = true
	}
	var out []eventstore.Event
	for {
		page, err := s.ReadAll(ctx(t), after, limit)
		if err != nil {
			t.Fatalf("read global log after %d: %v", after, err)
		}
		if len(page) == 0 {
			return out
		}
		if limit > 0 && len(page) > limit {
			t.Fatalf("read global log after %d limit %d: got %d events", after, limit, len(page))
		}
		for _, e := range page {
			if e.Position <= after {
				t.Fatalf("read global log after %d: got position %d, not strictly increasing", after, e.Position)
			}
			after = e.Position
			if own[e.Stream] {
				out = append(out, e)
			}
		}
	}
}

// checkVersions fails unless evs are the versions want, in order, of stream.
func checkVersions(t *testing.T, evs []eventstore.Event, stream string, want ...int64) {
	t.Helper()
	if len(evs) != len(want) {
		t.Fatalf("stream %q: got %d events %v, want versions %v", stream, len(evs), versions(evs), want)
	}
	for i, e := range evs {
		if e.Stream != stream || e.Version != want[i] {
			t.Fatalf("stream %q: event %d is %q v%d, want v%d", stream, i, e.Stream, e.Version, want[i])
		}
		if i > 0 && e.Position <= evs[i-1].Position {
			t.Fatalf("stream %q: positions %d then %d, want strictly increasing", stream, evs[i-1].Position, e.Position)
		}
	}
}

func versions(evs []eventstore.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}
