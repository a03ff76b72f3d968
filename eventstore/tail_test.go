package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
)

const waitTimeout = 5 * time.Second

func appendN(t *testing.T, s eventstore.Store, stream string, n int) {
	t.Helper()
	ctx := context.Background()
	for range n {
		e := eventstore.EventData{ID: uuid.NewString(), Type: "run.processed.v1", Data: []byte(`{}`), Actor: "tester"}
		if _, _, err := s.Append(ctx, stream, eventstore.AnyVersion, e); err != nil {
			t.Fatal(err)
		}
	}
}

// tail runs Tail in the background and sends every event it hands over on
// the returned channel. Cancel ctx to stop it; its result arrives on done.
func tail(ctx context.Context, s eventstore.Store, after int64, opts eventstore.TailOptions) (<-chan eventstore.Event, <-chan error) {
	events := make(chan eventstore.Event, 10_000)
	done := make(chan error, 1)
	go func() {
		done <- eventstore.Tail(ctx, s, after, opts, func(_ context.Context, batch []eventstore.Event) error {
			if len(batch) == 0 || len(batch) > opts.Batch && opts.Batch > 0 {
				return fmt.Errorf("batch of %d events", len(batch))
			}
			for _, e := range batch {
				events <- e
			}
			return nil
		})
	}()
	return events, done
}

// receive returns the next n events from events, failing after waitTimeout.
func receive(t *testing.T, events <-chan eventstore.Event, done <-chan error, n int) []eventstore.Event {
	t.Helper()
	out := make([]eventstore.Event, 0, n)
	timeout := time.After(waitTimeout)
	for len(out) < n {
		select {
		case e := <-events:
			out = append(out, e)
		case err := <-done:
			t.Fatalf("Tail returned %v after %d of %d events", err, len(out), n)
		case <-timeout:
			t.Fatalf("got %d of %d events in %v", len(out), n, waitTimeout)
		}
	}
	return out
}

func checkPositions(t *testing.T, evs []eventstore.Event, from int64) {
	t.Helper()
	for i, e := range evs {
		if e.Position != from+int64(i) {
			t.Fatalf("event %d has position %d, want %d", i, e.Position, from+int64(i))
		}
	}
}

func TestTailDeliversEveryEventInOrder(t *testing.T) {
	tests := []struct {
		name  string
		after int64
		batch int
	}{
		{"from the start in full batches", 0, 100},
		{"from the start, default batch", 0, 0},
		{"after a checkpoint", 777, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memory.New()
			appendN(t, s, "run-a", 600)
			appendN(t, s, "run-b", 650)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events, done := tail(ctx, s, tt.after, eventstore.TailOptions{Batch: tt.batch, Poll: time.Hour})
			checkPositions(t, receive(t, events, done, int(1250-tt.after)), tt.after+1)
			select {
			case e := <-events:
				t.Errorf("extra event at position %d", e.Position)
			default:
			}
		})
	}
}

func TestTailFollowsNewAppends(t *testing.T) {
	s := memory.New()
	appendN(t, s, "run-a", 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// No polling: only Changed can wake Tail.
	events, done := tail(ctx, s, 0, eventstore.TailOptions{Batch: 10, Poll: time.Hour})
	checkPositions(t, receive(t, events, done, 3), 1)
	for round := range 5 {
		appendN(t, s, "run-b", round+1)
		from := int64(3 + round*(round+1)/2 + 1)
		checkPositions(t, receive(t, events, done, round+1), from)
	}
}

// silentStore never signals Changed, like appends made by another process.
type silentStore struct {
	*memory.Store
	never chan struct{}
}

func (s silentStore) Changed() <-chan struct{} { return s.never }

func TestTailPollsForUnsignalledAppends(t *testing.T) {
	s := silentStore{Store: memory.New(), never: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := tail(ctx, s, 0, eventstore.TailOptions{Poll: 5 * time.Millisecond})
	appendN(t, s, "run-a", 2)
	checkPositions(t, receive(t, events, done, 2), 1)
	appendN(t, s, "run-a", 1)
	checkPositions(t, receive(t, events, done, 1), 3)
}

func TestTailStopsWhenContextEnds(t *testing.T) {
	s := memory.New()
	appendN(t, s, "run-a", 1)
	ctx, cancel := context.WithCancel(context.Background())
	events, done := tail(ctx, s, 0, eventstore.TailOptions{Poll: time.Hour})
	receive(t, events, done, 1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Tail returned %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Tail still running after its context was cancelled")
	}
}

func TestTailStopsWithHandlerError(t *testing.T) {
	s := memory.New()
	appendN(t, s, "run-a", 5)
	errStop := errors.New("projection failed")
	calls := 0
	err := eventstore.Tail(context.Background(), s, 0, eventstore.TailOptions{Batch: 2, Poll: time.Hour},
		func(_ context.Context, batch []eventstore.Event) error {
			calls++
			if calls == 2 {
				return errStop
			}
			return nil
		})
	if !errors.Is(err, errStop) {
		t.Errorf("Tail returned %v, want the handler's error", err)
	}
	if calls != 2 {
		t.Errorf("handler called %d times, want 2", calls)
	}
}

// failingStore fails every read of the global log.
type failingStore struct{ *memory.Store }

var errRead = errors.New("disk on fire")

func (failingStore) ReadAll(context.Context, int64, int) ([]eventstore.Event, error) {
	return nil, errRead
}

func TestTailReturnsReadErrors(t *testing.T) {
	err := eventstore.Tail(context.Background(), failingStore{memory.New()}, 0, eventstore.TailOptions{},
		func(context.Context, []eventstore.Event) error { return nil })
	if !errors.Is(err, errRead) {
		t.Errorf("Tail returned %v, want the read error", err)
	}
}
