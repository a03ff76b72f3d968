package eventstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
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

func (c *contract) appendToNewStream(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	v, p := mustAppend(t, s, stream, eventstore.NoStream, newEvents(1, "run.created.v1")...)
	if v != 1 {
		t.Errorf("version of the first event = %d, want 1", v)
	}
	if p < 1 {
		t.Errorf("position of the first event = %d, want >= 1", p)
	}
	evs := mustReadStream(t, s, stream, 1, 0)
	checkVersions(t, evs, stream, 1)
	if evs[0].Position != p {
		t.Errorf("stored position %d, Append returned %d", evs[0].Position, p)
	}
	if got := mustVersion(t, s, stream); got != 1 {
		t.Errorf("StreamVersion = %d, want 1", got)
	}
}

func (c *contract) appendSeveralAtomically(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	v, p := mustAppend(t, s, stream, eventstore.NoStream, newEvents(3, "run.created.v1")...)
	if v != 3 {
		t.Errorf("version after 3 events = %d, want 3", v)
	}
	evs := mustReadStream(t, s, stream, 1, 0)
	checkVersions(t, evs, stream, 1, 2, 3)
	if last := evs[2].Position; last != p {
		t.Errorf("position of the last event %d, Append returned %d", last, p)
	}
	v, p2 := mustAppend(t, s, stream, 3, newEvents(2, "run.processed.v1")...)
	if v != 5 || p2 <= p {
		t.Errorf("second append returned version %d position %d, want 5 and > %d", v, p2, p)
	}
	checkVersions(t, mustReadStream(t, s, stream, 1, 0), stream, 1, 2, 3, 4, 5)
}

func (c *contract) wrongExpectedVersion(t *testing.T) {
	s := c.open(t)
	existing := c.stream("run")
	mustAppend(t, s, existing, eventstore.NoStream, newEvents(2, "run.created.v1")...)
	missing := c.stream("missing")
	tests := []struct {
		name     string
		stream   string
		expected int64
		actual   int64
	}{
		{"behind", existing, 1, 2},
		{"ahead", existing, 3, 2},
		{"NoStream on existing stream", existing, eventstore.NoStream, 2},
		{"version on missing stream", missing, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := mustHead(t, s)
			_, _, err := s.Append(ctx(t), tt.stream, tt.expected, newEvents(3, "run.processed.v1")...)
			if !errors.Is(err, eventstore.ErrConcurrency) {
				t.Fatalf("append at %d to a stream at %d: err = %v, want ErrConcurrency", tt.expected, tt.actual, err)
			}
			var ce *eventstore.ConcurrencyError
			if !errors.As(err, &ce) {
				t.Fatalf("err %v (%T) is not a *ConcurrencyError", err, err)
			}
			if ce.Stream != tt.stream || ce.Expected != tt.expected || ce.Actual != tt.actual {
				t.Errorf("ConcurrencyError = %+v, want stream %q expected %d actual %d", *ce, tt.stream, tt.expected, tt.actual)
			}
			if got := mustVersion(t, s, tt.stream); got != tt.actual {
				t.Errorf("version after the failed append = %d, want %d", got, tt.actual)
			}
			if evs := readOwn(t, s, head, 0, existing, missing); len(evs) != 0 {
				t.Errorf("failed append wrote %d events", len(evs))
			}
		})
	}
}

func (c *contract) anyVersion(t *testing.T) {
	s := c.open(t)
	stream := c.stream("log")
	if v, _ := mustAppend(t, s, stream, eventstore.AnyVersion, newEvents(1, "log.line.v1")...); v != 1 {
		t.Errorf("AnyVersion on a missing stream gave version %d, want 1", v)
	}
	if v, _ := mustAppend(t, s, stream, eventstore.AnyVersion, newEvents(2, "log.line.v1")...); v != 3 {
		t.Errorf("AnyVersion on a stream at 1 gave version %d, want 3", v)
	}
	checkVersions(t, mustReadStream(t, s, stream, 1, 0), stream, 1, 2, 3)
}

func (c *contract) invalidAppend(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	noID := newEvents(1, "run.created.v1")
	noID[0].ID = ""
	noType := newEvents(1, "run.created.v1")
	noType[0].Type = ""
	tests := []struct {
		name     string
		stream   string
		expected int64
		events   []eventstore.EventData
	}{
		{"empty stream name", "", eventstore.NoStream, newEvents(1, "run.created.v1")},
		{"no events", stream, eventstore.NoStream, nil},
		{"expected version below AnyVersion", stream, -2, newEvents(1, "run.created.v1")},
		{"event without id", stream, eventstore.NoStream, noID},
		{"event without type", stream, eventstore.NoStream, noType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.Append(ctx(t), tt.stream, tt.expected, tt.events...); err == nil {
				t.Errorf("Append succeeded, want an error")
			}
		})
	}
	if v := mustVersion(t, s, stream); v != 0 {
		t.Errorf("invalid appends left the stream at version %d", v)
	}
}

func (c *contract) concurrentAppendsToOneStream(t *testing.T) {
	const writers = 50
	s := c.open(t)
	tests := []struct {
		name     string
		existing int // events in the stream before the race
	}{
		{"new stream", 0},
		{"existing stream", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := c.stream("run")
			if tt.existing > 0 {
				mustAppend(t, s, stream, eventstore.NoStream, newEvents(tt.existing, "run.created.v1")...)
			}
			expected := int64(tt.existing)
			start := make(chan struct{})
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					<-start
					_, _, errs[i] = s.Append(ctx(t), stream, expected, newEvents(1, "run.restore-requested.v1")...)
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, eventstore.ErrConcurrency):
					t.Errorf("losing append failed with %v, want ErrConcurrency", err)
				}
			}
			if won != 1 {
				t.Errorf("%d of %d appends at version %d succeeded, want exactly 1", won, writers, expected)
			}
			if v := mustVersion(t, s, stream); v != expected+1 {
				t.Errorf("version after the race = %d, want %d", v, expected+1)
			}
		})
	}
}

func (c *contract) concurrentAppendsToDistinctStreams(t *testing.T) {
	const (
		writers = 32
		appends = 5
	)
	s := c.open(t)
	head := mustHead(t, s)
	streams := make([]string, writers)
	for i := range streams {
		streams[i] = c.stream(fmt.Sprintf("run%d", i))
	}
	start := make(chan struct{})
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for _, stream := range streams {
		wg.Go(func() {
			<-start
			for v := range int64(appends) {
				got, _, err := s.Append(ctx(t), stream, v, newEvents(1, "run.processed.v1")...)
				if err != nil {
					errs <- fmt.Errorf("append to %q at %d: %w", stream, v, err)
					return
				}
				if got != v+1 {
					errs <- fmt.Errorf("append to %q at %d returned version %d", stream, v, got)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Small pages, so that paging by position is exercised too.
	evs := readOwn(t, s, head, 7, streams...)
	if len(evs) != writers*appends {
		t.Fatalf("global log holds %d of our events, want %d", len(evs), writers*appends)
	}
	ids := make(map[string]bool)
	next := make(map[string]int64)
	for i, e := range evs {
		if i > 0 && e.Position <= evs[i-1].Position {
			t.Fatalf("positions %d then %d, want strictly increasing", evs[i-1].Position, e.Position)
		}
		if ids[e.ID] {
			t.Fatalf("event %s appears twice in the global log", e.ID)
		}
		ids[e.ID] = true
		next[e.Stream]++
		if e.Version != next[e.Stream] {
			t.Fatalf("global log has %q v%d where v%d was due", e.Stream, e.Version, next[e.Stream])
		}
	}
}

func (c *contract) readStreamRange(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	mustAppend(t, s, stream, eventstore.NoStream, newEvents(5, "run.processed.v1")...)
	tests := []struct {
		from  int64
		limit int
		want  []int64
	}{
		{from: 1, limit: 0, want: []int64{1, 2, 3, 4, 5}},
		{from: 0, limit: 0, want: []int64{1, 2, 3, 4, 5}},
		{from: 3, limit: 0, want: []int64{3, 4, 5}},
		{from: 2, limit: 2, want: []int64{2, 3}},
		{from: 1, limit: 10, want: []int64{1, 2, 3, 4, 5}},
		{from: 5, limit: 1, want: []int64{5}},
		{from: 6, limit: 0, want: []int64{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("from %d limit %d", tt.from, tt.limit), func(t *testing.T) {
			checkVersions(t, mustReadStream(t, s, stream, tt.from, tt.limit), stream, tt.want...)
		})
	}
}

func (c *contract) readMissingStream(t *testing.T) {
	s := c.open(t)
	stream := c.stream("missing")
	if evs := mustReadStream(t, s, stream, 1, 0); len(evs) != 0 {
		t.Errorf("missing stream has %d events", len(evs))
	}
	if v := mustVersion(t, s, stream); v != 0 {
		t.Errorf("missing stream has version %d, want 0", v)
	}
}

func (c *contract) readAllOrderAndLimit(t *testing.T) {
	s := c.open(t)
	a, b := c.stream("a"), c.stream("b")
	head := mustHead(t, s)
	mustAppend(t, s, a, eventstore.NoStream, newEvents(2, "run.created.v1")...)
	mustAppend(t, s, b, eventstore.NoStream, newEvents(1, "run.created.v1")...)
	_, last := mustAppend(t, s, a, 2, newEvents(1, "run.processed.v1")...)
	want := []struct {
		stream  string
		version int64
	}{{a, 1}, {a, 2}, {b, 1}, {a, 3}}

	for _, limit := range []int{0, 1, 2, 3, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			evs := readOwn(t, s, head, limit, a, b)
			if len(evs) != len(want) {
				t.Fatalf("got %d events, want %d", len(evs), len(want))
			}
			for i, e := range evs {
				if e.Stream != want[i].stream || e.Version != want[i].version {
					t.Errorf("event %d is %q v%d, want %q v%d", i, e.Stream, e.Version, want[i].stream, want[i].version)
				}
			}
			if evs[len(evs)-1].Position != last {
				t.Errorf("last position %d, Append returned %d", evs[len(evs)-1].Position, last)
			}
		})
	}
	page, err := s.ReadAll(ctx(t), head, 2)
	if err != nil {
		t.Fatalf("read global log: %v", err)
	}
	if len(page) != 2 {
		t.Errorf("ReadAll limit 2 with 4 events to come returned %d events; a short page means the end of the log", len(page))
	}
	if evs := readOwn(t, s, last, 0, a, b); len(evs) != 0 {
		t.Errorf("ReadAll after the last position returned %d of our events", len(evs))
	}
}

func (c *contract) headPosition(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	before := mustHead(t, s)
	_, p := mustAppend(t, s, stream, eventstore.NoStream, newEvents(2, "run.created.v1")...)
	head := mustHead(t, s)
	if head < p || head <= before {
		t.Errorf("head %d after an append at position %d (head before: %d)", head, p, before)
	}
	// An empty store knows no other writer, so its head is exactly our event.
	if before == 0 && head != p {
		t.Errorf("head %d, want the position of the only append, %d", head, p)
	}
	if evs := readOwn(t, s, head, 0, stream); len(evs) != 0 {
		t.Errorf("%d events after the head", len(evs))
	}
}

func (c *contract) changedAfterAppend(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("Changed is closed before any append")
	default:
	}
	for v := range int64(3) {
		mustAppend(t, s, stream, v, newEvents(1, "run.processed.v1")...)
		select {
		case <-ch:
		case <-time.After(waitTimeout):
			t.Fatalf("Changed not closed %v after append %d", waitTimeout, v+1)
		}
		ch = s.Changed()
	}
}

func (c *contract) snapshots(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	if _, err := s.LoadSnapshot(ctx(t), stream); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("load a missing snapshot: err = %v, want ErrNotFound", err)
	}
	for _, want := range []eventstore.Snapshot{
		{Stream: stream, Version: 3, Data: []byte(`{"status":"Completed"}`)},
		{Stream: stream, Version: 7, Data: []byte(`{"status":"Restoring","images":["a.fits"]}`)},
	} {
		if err := s.SaveSnapshot(ctx(t), want); err != nil {
			t.Fatalf("save snapshot v%d: %v", want.Version, err)
		}
		got, err := s.LoadSnapshot(ctx(t), stream)
		if err != nil {
			t.Fatalf("load snapshot: %v", err)
		}
		if got.Stream != want.Stream || got.Version != want.Version || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("loaded snapshot %q v%d %s, want %q v%d %s", got.Stream, got.Version, got.Data, want.Stream, want.Version, want.Data)
		}
	}
	if _, err := s.LoadSnapshot(ctx(t), c.stream("other")); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("load the snapshot of another stream: err = %v, want ErrNotFound", err)
	}
}

func (c *contract) cancelledContext(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	cancelled, cancel := context.WithCancel(ctx(t))
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Append", func() error {
			_, _, err := s.Append(cancelled, stream, eventstore.NoStream, newEvents(1, "run.created.v1")...)
			return err
		}},
		{"ReadStream", func() error { _, err := s.ReadStream(cancelled, stream, 1, 0); return err }},
		{"StreamVersion", func() error { _, err := s.StreamVersion(cancelled, stream); return err }},
		{"ReadAll", func() error { _, err := s.ReadAll(cancelled, 0, 10); return err }},
		{"HeadPosition", func() error { _, err := s.HeadPosition(cancelled); return err }},
		{"SaveSnapshot", func() error { return s.SaveSnapshot(cancelled, eventstore.Snapshot{Stream: stream, Version: 1}) }},
		{"LoadSnapshot", func() error { _, err := s.LoadSnapshot(cancelled, stream); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		})
	}
	if v := mustVersion(t, s, stream); v != 0 {
		t.Errorf("cancelled append wrote: version %d", v)
	}
	if _, err := s.LoadSnapshot(ctx(t), stream); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("cancelled snapshot save: load err = %v, want ErrNotFound", err)
	}
}

func (c *contract) eventRoundTrip(t *testing.T) {
	s := c.open(t)
	stream := c.stream("run")
	in := []eventstore.EventData{
		{
			ID:    uuid.NewString(),
			Type:  "run.created.v1",
			Data:  []byte(`{"name":"vast-é","nested":{"q":"\"x\"","nul":"\u0000"},"n":[1,2.5e10,-3]}`),
			Actor: "alice",
			Time:  time.Date(2024, 2, 29, 23, 59, 58, 123_456_789, time.FixedZone("AEDT", 11*3600)),
		},
		{
			ID:    uuid.NewString(),
			Type:  "run.processed.v2",
			Data:  []byte(`{}`),
			Actor: "system:processing-worker",
			Time:  time.Now(),
		},
	}
	_, p := mustAppend(t, s, stream, eventstore.NoStream, in...)
	evs := mustReadStream(t, s, stream, 1, 0)
	checkVersions(t, evs, stream, 1, 2)
	for i, got := range evs {
		want := in[i]
		if got.ID != want.ID || got.Type != want.Type || got.Actor != want.Actor || got.Stream != stream {
			t.Errorf("event %d = {ID %s Type %s Actor %s Stream %s}, want {%s %s %s %s}",
				i, got.ID, got.Type, got.Actor, got.Stream, want.ID, want.Type, want.Actor, stream)
		}
		if !bytes.Equal(got.Data, want.Data) {
			t.Errorf("event %d data = %q, want %q", i, got.Data, want.Data)
		}
		if d := got.Time.Sub(want.Time).Abs(); d >= time.Millisecond {
			t.Errorf("event %d time = %v, want %v (off by %v)", i, got.Time, want.Time, d)
		}
	}
	if evs[1].Position != p {
		t.Errorf("position %d, Append returned %d", evs[1].Position, p)
	}
	// ReadAll returns the same fields as ReadStream.
	all := readOwn(t, s, p-1, 0, stream)
	if len(all) != 1 || all[0].ID != evs[1].ID || !bytes.Equal(all[0].Data, evs[1].Data) || !all[0].Time.Equal(evs[1].Time) || all[0].Version != 2 {
		t.Errorf("ReadAll after %d = %+v, want %+v", p-1, all, evs[1])
	}

	// A zero time is replaced by the time of the append.
	zero := newEvents(1, "run.processed.v1")
	zero[0].Time = time.Time{}
	before := time.Now()
	mustAppend(t, s, stream, 2, zero...)
	got := mustReadStream(t, s, stream, 3, 0)
	if len(got) != 1 || got[0].Time.Before(before.Add(-time.Second)) || got[0].Time.After(time.Now().Add(time.Second)) {
		t.Errorf("event appended with a zero time has time %v, want about %v", got[0].Time, before)
	}
}

func (c *contract) oddStreamNames(t *testing.T) {
	s := c.open(t)
	for _, name := range []string{"run-a_b.c-1", "run with spaces", "run/ä?#%'\";--"} {
		t.Run(name, func(t *testing.T) {
			stream := c.stream(name)
			mustAppend(t, s, stream, eventstore.NoStream, newEvents(2, "run.created.v1")...)
			checkVersions(t, mustReadStream(t, s, stream, 1, 0), stream, 1, 2)
			if v := mustVersion(t, s, stream); v != 2 {
				t.Errorf("version = %d, want 2", v)
			}
			snap := eventstore.Snapshot{Stream: stream, Version: 2, Data: []byte(`{}`)}
			if err := s.SaveSnapshot(ctx(t), snap); err != nil {
				t.Fatalf("save snapshot: %v", err)
			}
			if got, err := s.LoadSnapshot(ctx(t), stream); err != nil || got.Stream != stream || got.Version != 2 {
				t.Errorf("load snapshot = %+v, %v", got, err)
			}
		})
	}
}

func (c *contract) closed(t *testing.T) {
	s := c.f.New(t)
	stream := c.stream("run")
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, _, err := s.Append(ctx(t), stream, eventstore.NoStream, newEvents(1, "run.created.v1")...); err == nil {
		t.Error("Append on a closed store succeeded")
	}
	if _, err := s.ReadAll(ctx(t), 0, 1); err == nil {
		t.Error("ReadAll on a closed store succeeded")
	}
}

func (c *contract) durable(t *testing.T) {
	if c.f.Reopen == nil {
		t.Skip("the store is not durable (Factory.Reopen is nil)")
	}
	s := c.f.New(t)
	stream := c.stream("run")
	in := newEvents(3, "run.created.v1")
	_, p := mustAppend(t, s, stream, eventstore.NoStream, in...)
	snap := eventstore.Snapshot{Stream: stream, Version: 3, Data: []byte(`{"v":3}`)}
	if err := s.SaveSnapshot(ctx(t), snap); err != nil {
		t.Fatalf("save snapshot: %v", err)
	}

	s = c.f.Reopen(t, s)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close reopened store: %v", err)
		}
	})
	evs := mustReadStream(t, s, stream, 1, 0)
	checkVersions(t, evs, stream, 1, 2, 3)
	for i, e := range evs {
		if e.ID != in[i].ID || !bytes.Equal(e.Data, in[i].Data) {
			t.Errorf("event %d after reopen = %s %s, want %s %s", i, e.ID, e.Data, in[i].ID, in[i].Data)
		}
	}
	if head := mustHead(t, s); head < p {
		t.Errorf("head after reopen %d, before %d", head, p)
	}
	if got, err := s.LoadSnapshot(ctx(t), stream); err != nil || got.Version != 3 || !bytes.Equal(got.Data, snap.Data) {
		t.Errorf("snapshot after reopen = %+v, %v", got, err)
	}
	// The expected-version check and positions carry on from the stored state.
	if _, _, err := s.Append(ctx(t), stream, eventstore.NoStream, newEvents(1, "run.created.v1")...); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Errorf("NoStream on a reopened existing stream: err = %v, want ErrConcurrency", err)
	}
	v, p2 := mustAppend(t, s, stream, 3, newEvents(1, "run.processed.v1")...)
	if v != 4 || p2 <= p {
		t.Errorf("append after reopen gave version %d position %d, want 4 and > %d", v, p2, p)
	}
}
