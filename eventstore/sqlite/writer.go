package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/piperun/piperun/eventstore"
)

// appendRequest is one Append call waiting for the writer goroutine. The
// writer fills version, position and err, then closes done.
type appendRequest struct {
	ctx      context.Context
	stream   string
	expected int64
	events   []eventstore.EventData

	version, position int64
	err               error
	done              chan struct{}
}

// writeLoop commits the queued appends in batches until Close closes the
// queue. A batch is whatever queued up while the previous one was being
// written and synced, so under load one fsync serves many appends while a
// lone writer still gets one commit per append, without waiting.
//
// Callers that append in a loop come back as soon as their batch is
// reported, while the writer already starts the next batch with whatever
// queued meanwhile; left alone, concurrent callers split into two cohorts
// that take turns, each with half the appends per commit. So when a batch
// would be smaller than the previous one plus what queued behind it, the
// writer waits for the missing appends, at most a fraction of the time the
// previous batch took. A lone writer's batch is never smaller than that, and
// never waits.
func (s *Store) writeLoop(maxBatch int) {
	defer close(s.writerDone)
	batch := make([]*appendRequest, 0, maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	want, wait := 1, time.Duration(0)
	for req := range s.requests {
		batch = s.gather(append(batch[:0], req), min(want, maxBatch), wait, timer)
		start := time.Now()
		s.writeAndReport(batch)
		wait = min(time.Since(start)/gatherFraction, maxGatherWait)
		// Measured before the callers are released, so that none of them
		// is counted twice.
		want = len(batch) + len(s.requests)
		release(batch)
		clear(batch) // drop references to finished requests
	}
}

const (
	// gatherFraction and maxGatherWait bound how long a batch waits for
	// the appends it expects: a fraction of the time the previous batch
	// took to write and sync.
	gatherFraction = 4
	maxGatherWait  = 2 * time.Millisecond
)

// gather adds the queued requests to batch, up to cap(batch), and then
// waits at most wait for more until it holds want.
func (s *Store) gather(batch []*appendRequest, want int, wait time.Duration, timer *time.Timer) []*appendRequest {
drain:
	for len(batch) < cap(batch) {
		select {
		case r, ok := <-s.requests:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			break drain
		}
	}
	if len(batch) >= want || wait <= 0 {
		return batch
	}
	timer.Reset(wait)
	defer timer.Stop()
	for len(batch) < want {
		select {
		case r, ok := <-s.requests:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// commitBatch writes batch in one transaction and reports to each request.
func (s *Store) commitBatch(batch []*appendRequest) {
	s.writeAndReport(batch)
	release(batch)
}

// writeAndReport writes batch in one transaction and leaves each request's
// result in it.
func (s *Store) writeAndReport(batch []*appendRequest) {
	written, err := s.writeBatch(batch)
	if err != nil {
		s.state.forget()
		failAll(batch, err)
		return
	}
	s.commits.Add(1)
	s.ckpt.Wake()
	if written {
		for _, r := range batch {
			if r.err == nil && r.position > s.written.Load() {
				s.written.Store(r.position)
			}
		}
		s.notifyChanged()
	}
}

// release hands each request of batch its result.
func release(batch []*appendRequest) {
	for _, r := range batch {
		close(r.done)
	}
}

// writeBatch writes and commits batch, leaving each request's result in it.
// An error dooms every request of the batch.
func (s *Store) writeBatch(batch []*appendRequest) (written bool, err error) {
	// The transaction serves many callers, so no single caller's context may
	// end it; a caller whose context is done is skipped instead.
	ctx := context.Background()
	now := time.Now()
	b, err := s.beginBatch(ctx)
	if err != nil {
		return false, err
	}
	s.args, err = b.writeRows(batch, now, s.args)
	clear(s.args) // drop references to the events
	if cap(s.args) > maxKeptArgs {
		s.args = nil // an append of very many events made it
	}
	if errors.Is(err, errRedo) {
		// Throw away what the multi-row INSERT decided, and what it wrote.
		if err := b.tx.Rollback(); err != nil {
			return false, storageError(fmt.Sprintf("roll back appends to %s", s.path), err)
		}
		s.state.forget()
		for _, r := range batch {
			r.version, r.position, r.err = 0, 0, nil
		}
		if b, err = s.beginBatch(ctx); err != nil {
			return false, err
		}
		err = b.writeEach(batch, now)
	}
	if err != nil {
		// The transaction is in doubt (disk full, I/O error): SQLite may
		// have rolled it back already. Nothing in the batch is written.
		_ = b.tx.Rollback() // the append error is the one to report
		return false, err
	}
	if err := b.tx.Commit(); err != nil {
		return false, storageError(fmt.Sprintf("commit appends to %s", s.path), err)
	}
	for _, r := range batch {
		written = written || r.err == nil
	}
	return written, nil
}

// beginBatch starts a write transaction, which takes the file's write lock.
func (s *Store) beginBatch(ctx context.Context) (*batchTx, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, storageError(fmt.Sprintf("begin write transaction on %s", s.path), err)
	}
	b := &batchTx{ctx: ctx, tx: tx, all: &s.stmts, state: &s.state}
	if err := b.begin(); err != nil {
		_ = tx.Rollback() // the read error is the one to report
		return nil, err
	}
	return b, nil
}

// failAll gives every request of batch the error err.
func failAll(batch []*appendRequest, err error) {
	for _, r := range batch {
		r.version, r.position, r.err = 0, 0, err
	}
}

// constraintError explains a constraint violation of one append.
func constraintError(r *appendRequest, err error) error {
	// The (stream, version) index fires only if the stream moved past the
	// version the append was checked against.
	if strings.Contains(err.Error(), "events.stream, events.version") {
		return &eventstore.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: -1}
	}
	return fmt.Errorf("append to %q: event id already stored: %w", r.stream, err)
}
