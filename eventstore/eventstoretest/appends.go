// Contract tests of appending: new streams, atomic batches, expected versions, concurrent appends.

package eventstoretest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/piperun/piperun/eventstore"
)

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
