package sqlite

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/piperun/piperun/eventstore"
)

// recentEvents are the events this process committed last, in position
// order and without gaps, so that ReadAll near the end of the log (a
// projector tailing it, woken by each commit) copies them from memory
// instead of reading them back: reading the rows cost ~17 CPU-µs per event
// under load, 5 % of a command's. A batch whose first position does not
// follow the last one kept (another process wrote in between) starts the
// list again.
type recentEvents struct {
	mu     sync.Mutex
	events []eventstore.Event
	bytes  int // of the events' Data
}

const (
	// recentMax and recentMaxBytes bound the events kept; past either, the
	// older half goes.
	recentMax      = 4096
	recentMaxBytes = 16 << 20
)

// add records the events the committed batch wrote, with the times the
// writer gave them (now for those without one).
func (re *recentEvents) add(batch []*appendRequest, now time.Time) {
	re.mu.Lock()
	defer re.mu.Unlock()
	for _, r := range batch {
		if r.err != nil {
			continue
		}
		n := int64(len(r.events))
		first := r.position - n + 1
		if len(re.events) > 0 && re.events[len(re.events)-1].Position != first-1 {
			re.events, re.bytes = re.events[:0], 0
		}
		for i, e := range r.events {
			t := e.Time
			if t.IsZero() {
				t = now
			}
			re.events = append(re.events, eventstore.Event{
				Position: first + int64(i), ID: e.ID, Stream: r.stream, Version: r.version - n + 1 + int64(i),
				Type: e.Type, Data: slices.Clone(e.Data), Actor: e.Actor, Time: time.Unix(0, t.UnixNano()).UTC(),
			})
			re.bytes += len(e.Data)
		}
	}
	if len(re.events) > recentMax || re.bytes > recentMaxBytes {
		half := len(re.events) / 2
		for _, e := range re.events[:half] {
			re.bytes -= len(e.Data)
		}
		re.events = slices.Delete(re.events, 0, half)
	}
}

// forget drops every event kept: the writer does not know what it wrote.
func (re *recentEvents) forget() {
	re.mu.Lock()
	defer re.mu.Unlock()
	re.events, re.bytes = nil, 0
}

// after returns copies of the kept events with Position > after, at most
// limit; ok is false unless the kept events start at or before after+1 and
// some follow after. last is the position of the last event kept.
func (re *recentEvents) after(after int64, limit int) (evs []eventstore.Event, last int64, ok bool) {
	re.mu.Lock()
	defer re.mu.Unlock()
	if len(re.events) == 0 {
		return nil, 0, false
	}
	first := re.events[0].Position
	last = re.events[len(re.events)-1].Position
	if after < first-1 || after >= last {
		return nil, last, false
	}
	kept := re.events[after-first+1:]
	kept = kept[:min(len(kept), limit)]
	evs = make([]eventstore.Event, len(kept))
	for i, e := range kept {
		e.Data = slices.Clone(e.Data) // readers own what they get
		evs[i] = e
	}
	return evs, last, true
}

// readRecent is ReadAll from the events kept, when they hold what the
// database would answer: they follow after, and either they fill limit or
// no event follows the last of them (another process may have written
// since; the head says).
func (s *Store) readRecent(ctx context.Context, after int64, limit int) ([]eventstore.Event, bool) {
	evs, last, ok := s.recent.after(after, limit)
	if !ok {
		return nil, false
	}
	if len(evs) == limit {
		return evs, true
	}
	head, err := s.HeadPosition(ctx)
	if err != nil || head != last {
		return nil, false // the database answers, or reports the error
	}
	return evs, true
}
