package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/piperun/piperun/eventstore"
)

// defaultReadAllLimit caps ReadAll when the caller passes limit <= 0.
const defaultReadAllLimit = 1000

// errClosed is returned by every method of a closed store.
var errClosed = fmt.Errorf("memory event store closed: %w", eventstore.ErrUnavailable)

// Store is an in-memory eventstore.Store. The zero value is not usable; call
// New.
type Store struct {
	mu        sync.RWMutex
	log       []eventstore.Event // the global log; an event's Position is its index + 1
	streams   map[string][]int   // stream name -> indexes into log, in version order
	ids       map[string]bool
	snapshots map[string]eventstore.Snapshot
	changed   chan struct{}
	closed    bool
}

var _ eventstore.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		streams:   make(map[string][]int),
		ids:       make(map[string]bool),
		snapshots: make(map[string]eventstore.Snapshot),
		changed:   make(chan struct{}),
	}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected int64, events ...eventstore.EventData) (version, position int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("append to %q: %w", stream, err)
	}
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, errClosed
	}
	current := int64(len(s.streams[stream]))
	if expected != eventstore.AnyVersion && expected != current {
		return 0, 0, &eventstore.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	// Check every id before writing any, so a duplicate leaves nothing behind.
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		if s.ids[e.ID] || seen[e.ID] {
			return 0, 0, fmt.Errorf("append to %q: event id %s already stored", stream, e.ID)
		}
		seen[e.ID] = true
	}
	now := time.Now()
	for _, e := range events {
		current++
		t := e.Time
		if t.IsZero() {
			t = now
		}
		s.log = append(s.log, eventstore.Event{
			ID:       e.ID,
			Stream:   stream,
			Type:     e.Type,
			Version:  current,
			Position: int64(len(s.log) + 1),
			Data:     clone(e.Data),
			Actor:    e.Actor,
			Time:     t.UTC().Round(0),
		})
		s.streams[stream] = append(s.streams[stream], len(s.log)-1)
		s.ids[e.ID] = true
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return current, int64(len(s.log)), nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read stream %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	idx := s.streams[stream]
	if from > 1 {
		idx = idx[min(int(from-1), len(idx)):]
	}
	if limit > 0 && len(idx) > limit {
		idx = idx[:limit]
	}
	out := make([]eventstore.Event, len(idx))
	for i, j := range idx {
		out[i] = copyEvent(s.log[j])
	}
	return out, nil
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("version of stream %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return int64(len(s.streams[stream])), nil
}

// ReadAll implements eventstore.Store. limit <= 0 means 1000.
func (s *Store) ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read global log after %d: %w", after, err)
	}
	if limit <= 0 {
		limit = defaultReadAllLimit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	start := int(min(max(after, 0), int64(len(s.log))))
	end := min(start+limit, len(s.log))
	out := make([]eventstore.Event, 0, end-start)
	for _, e := range s.log[start:end] {
		out = append(out, copyEvent(e))
	}
	return out, nil
}

// HeadPosition implements eventstore.Store.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("head position: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return int64(len(s.log)), nil
}

// Changed implements eventstore.Store.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// SaveSnapshot implements eventstore.Store.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save snapshot of %q: %w", snap.Stream, err)
	}
	if snap.Stream == "" {
		return errors.New("save snapshot: empty stream name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	snap.Data = clone(snap.Data)
	s.snapshots[snap.Stream] = snap
	return nil
}

// LoadSnapshot implements eventstore.Store.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Snapshot{}, fmt.Errorf("load snapshot of %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.Snapshot{}, errClosed
	}
	snap, ok := s.snapshots[stream]
	if !ok {
		return eventstore.Snapshot{}, fmt.Errorf("load snapshot of %q: %w", stream, eventstore.ErrNotFound)
	}
	snap.Data = clone(snap.Data)
	return snap, nil
}

// Close implements eventstore.Store. Later calls fail with an error wrapping
// eventstore.ErrUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// copyEvent returns e with its own copy of Data, so callers cannot change the
// stored event through the slice they were given.
func copyEvent(e eventstore.Event) eventstore.Event {
	e.Data = clone(e.Data)
	return e
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
