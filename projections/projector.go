// The projector: tailing the log, decoding events and applying each batch in one transaction.

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/eventstore"
)

// Run tails the event store from the checkpoint and keeps the read models
// up to date until ctx ends.
func (s *Store) Run(ctx context.Context, es eventstore.Store, poll time.Duration) error {
	err := eventstore.Tail(ctx, es, s.Position(), eventstore.TailOptions{Poll: poll, Batch: 2000}, s.ApplyBatch)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// catchUpBatch is how many events CatchUp reads and applies at a time. A
// run's events spread over a few thousand positions of a busy log, and its
// state is written once per batch it has events in: larger batches write
// each state fewer times.
const catchUpBatch = 20000

// CatchUp applies every event up to the store's current head and returns.
// The next batch is read and decoded while the current one is written, so
// that a rebuild keeps more than one core busy.
func (s *Store) CatchUp(ctx context.Context, es eventstore.Store) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type next struct {
		batch []decodedEvent
		err   error
	}
	ahead := make(chan next, 1)
	go func() {
		defer close(ahead)
		after := s.Position()
		for {
			batch, err := es.ReadAll(ctx, after, catchUpBatch)
			if err != nil {
				ahead <- next{err: fmt.Errorf("catch up read models: %w", err)}
				return
			}
			if len(batch) == 0 {
				return
			}
			select {
			case ahead <- next{batch: decodeBatch(batch)}:
			case <-ctx.Done():
				return
			}
			after = batch[len(batch)-1].Position
		}
	}()
	for n := range ahead {
		if n.err != nil {
			return n.err
		}
		if err := s.applyDecoded(ctx, n.batch); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// decodedEvent is a stored event with its domain form, decoded ahead of
// applying it. err is the decoding error, reported if the event is
// applied (events already projected are skipped undecoded or not).
type decodedEvent struct {
	ev  eventstore.Event
	rec domain.Recorded
	err error
}

// decodeBatch decodes the run and user events of batch, on all cores:
// decoding JSON is most of a projector's work.
func decodeBatch(batch []eventstore.Event) []decodedEvent {
	out := make([]decodedEvent, len(batch))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(batch)/256))
	chunk := (len(batch) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(batch); lo += chunk {
		hi := min(lo+chunk, len(batch))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				ev := batch[i]
				out[i].ev = ev
				if projected(ev.Stream) {
					out[i].rec, out[i].err = eventjson.Recorded(ev)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// projected reports whether events of stream feed the read models.
func projected(stream string) bool {
	return strings.HasPrefix(stream, "run-") || strings.HasPrefix(stream, "user-")
}

// ApplyBatch applies events (which must follow the checkpoint, in order) in
// one transaction with the new checkpoint. Events at or before the
// checkpoint are skipped, so a batch delivered twice changes nothing.
func (s *Store) ApplyBatch(ctx context.Context, batch []eventstore.Event) error {
	return s.applyDecoded(ctx, decodeBatch(batch))
}

func (s *Store) applyDecoded(ctx context.Context, batch []decodedEvent) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin read-model batch: %w", err)
	}
	defer tx.Rollback()
	// Another process sharing the file may have applied events since: the
	// checkpoint in the database, not ours, says where to start.
	var start int64
	if err := tx.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE name = ?`, checkpointName).Scan(&start); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read projection checkpoint: %w", err)
	}
	if start != s.Position() {
		s.dropCaches()
		s.usersGen.Add(1)
		s.advance(start, nil)
	}
	b := &batchWriter{s: s, tx: tx, touched: map[string]*domain.Run{}, refs: map[string][]string{}, hints: map[string]hint{}, partial: map[string]bool{}, open: map[runLog]int{}}
	defer b.close()
	last := start
	for _, d := range batch {
		if d.ev.Position <= start {
			continue
		}
		last = d.ev.Position
		if err := b.apply(ctx, d); err != nil {
			s.dropCaches() // the caches may hold uncommitted states
			return err
		}
	}
	if last == start {
		return nil
	}
	if err := b.finish(ctx); err != nil {
		s.dropCaches()
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoint (name, position) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET position = excluded.position`, checkpointName, last); err != nil {
		s.dropCaches()
		return fmt.Errorf("write read-model checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		s.dropCaches()
		return fmt.Errorf("commit read-model batch: %w", err)
	}
	s.ckpt.Wake()
	if b.tokensChanged {
		// After the commit: a token cache that reads the generation before
		// it queries the users cannot keep what it read before this batch.
		s.usersGen.Add(1)
	}
	maps.Copy(s.cache, b.states)
	if len(s.cache) > maxCachedStates {
		// The states are read again as needed; a bound keeps a rebuild of
		// a very large log from holding every run in memory.
		s.dropCaches()
	}
	s.advance(last, b.touched)
	return nil
}

// dropCaches forgets the cached run states and log line numbers; they are
// read again from the database when needed.
func (s *Store) dropCaches() {
	s.cache = map[string][]byte{}
	s.seqs = map[string]*logSeqs{}
}

// Reset empties the read models and their checkpoint, for a rebuild.
func (s *Store) Reset(ctx context.Context) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	for _, q := range []string{"DELETE FROM runs", "DELETE FROM log_chunks", "DELETE FROM users", "DELETE FROM ended_sessions", "DELETE FROM artifact_refs", "DELETE FROM checkpoint WHERE name = '" + checkpointName + "'"} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset read models: %w", err)
		}
	}
	s.mu.Lock()
	s.position.Store(0)
	s.mu.Unlock()
	s.dropCaches()
	return nil
}
