// Waiting for a position (WaitFor) and notifying subscribers of changes.

package projections

import (
	"container/heap"
	"context"
	"fmt"

	"github.com/piperun/piperun/domain"
)

// Position returns the global position the read models reflect.
func (s *Store) Position() int64 { return s.position.Load() }

// WaitFor blocks until the read models reflect global position pos, or ctx
// ends. Commands use it to give read-your-writes to their caller.
func (s *Store) WaitFor(ctx context.Context, pos int64) error {
	if s.position.Load() >= pos {
		return nil
	}
	s.mu.Lock()
	if s.position.Load() >= pos {
		s.mu.Unlock()
		return nil
	}
	w := &waiter{pos: pos, ch: make(chan struct{})}
	heap.Push(&s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		// The entry goes now, not when the position passes it: while the
		// projector is stalled, every command's wait times out, and the
		// entries would pile up.
		s.mu.Lock()
		if w.index >= 0 {
			heap.Remove(&s.waiters, w.index)
		}
		s.mu.Unlock()
		return fmt.Errorf("wait for read models to reach position %d: %w", pos, ctx.Err())
	}
}

// waiter is a WaitFor call: ch is closed once position reaches pos. index
// is its place in the heap, -1 once it has left it.
type waiter struct {
	pos   int64
	ch    chan struct{}
	index int
}

// waitHeap is a min-heap of waiters by position (container/heap).
type waitHeap []*waiter

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].pos < h[j].pos }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// Subscribe returns a channel of changes; cancel stops them. A slow
// subscriber misses changes rather than blocking the projector: it should
// re-read the model on any change.
func (s *Store) Subscribe() (<-chan Change, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan Change, 64)
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

// advance records a new position, wakes WaitFor callers and tells
// subscribers which runs changed.
func (s *Store) advance(pos int64, touched map[string]*domain.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos > s.position.Load() {
		s.position.Store(pos)
	}
	for len(s.waiters) > 0 && s.waiters[0].pos <= s.position.Load() {
		close(heap.Pop(&s.waiters).(*waiter).ch)
	}
	for name := range touched {
		for _, ch := range s.subs {
			select {
			case ch <- Change{Run: name, Position: pos}:
			default:
			}
		}
	}
}
