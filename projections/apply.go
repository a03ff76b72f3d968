// Applying one batch of events: the batch writer, its statements and its run states.

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/statecodec"
)

// batchWriter applies one batch of events in a transaction. Run states are
// folded in memory and written once per batch; log lines are buffered for
// the batch and inserted in key order, many rows per statement.
type batchWriter struct {
	s       *Store
	tx      *sql.Tx
	touched map[string]*domain.Run
	// states are the touched runs' states as finish encoded them, for the
	// store's cache once the batch is committed.
	states map[string][]byte
	// refs are the artifacts each touched run used before the batch: those
	// artifact_refs holds for it.
	refs map[string][]string
	// hints are the encoded states the hints gave for runs, as of the
	// event they were taken at: finish stores them as they are unless
	// later events of the batch changed the run.
	hints map[string]hint
	// partial are the runs whose state in touched holds only the leading
	// fields (statecodec.DecodeSharedStateHead) of their hinted state, after an
	// event that left their artifacts as they were: finish needs no more
	// to write their rows. A later event of the run in the batch decodes
	// the whole state first (whole).
	partial map[string]bool
	// chunks are the lines not yet inserted, a chunk per log of a run:
	// within a batch a log's lines are numbered one after the other, so
	// the lines of its events join into one row (fewer rows to write and
	// to read). open finds a log's chunk.
	chunks []logChunk
	open   map[runLog]int
	// tokensChanged: the batch revoked or rotated a token.
	tokensChanged bool
	stmts         map[string]*sql.Stmt
}

type runLog struct{ run, log string }

func (b *batchWriter) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := b.stmts[query]; ok {
		return st, nil
	}
	prepared, err := b.s.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	// Bound to the batch's transaction: prepared again only on a
	// connection that has not prepared it yet.
	st := b.tx.StmtContext(ctx, prepared)
	if b.stmts == nil {
		b.stmts = map[string]*sql.Stmt{}
	}
	b.stmts[query] = st
	return st, nil
}

// prepare returns query prepared on the read-model database.
func (s *Store) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if st, ok := s.prepared[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare read-model statement: %w", err)
	}
	if s.prepared == nil {
		s.prepared = map[string]*sql.Stmt{}
	}
	s.prepared[query] = st
	return st, nil
}

func (b *batchWriter) close() {
	for _, st := range b.stmts {
		st.Close() // the transaction's binding, not the prepared statement
	}
}

func (b *batchWriter) exec(ctx context.Context, query string, args ...any) error {
	st, err := b.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

func (b *batchWriter) apply(ctx context.Context, d decodedEvent) error {
	ev := d.ev
	if !projected(ev.Stream) {
		return nil
	}
	if d.err != nil {
		return fmt.Errorf("project %s: %w", ev.Stream, d.err)
	}
	rec := d.rec
	if strings.HasPrefix(ev.Stream, "user-") {
		return b.applyUser(ctx, strings.TrimPrefix(ev.Stream, "user-"), rec)
	}
	name := strings.TrimPrefix(ev.Stream, "run-")
	_, created := rec.Event.(domain.RunCreated)
	r, ok := b.touched[name]
	if ok && b.partial[name] {
		var err error
		if r, err = b.whole(ctx, name); err != nil {
			return err
		}
	}
	applied := false
	if !ok && !created {
		var err error
		if r, err = b.hinted(ctx, name, ev.Version, ev.ID, rec); err != nil {
			return err
		}
		applied = r != nil
	}
	if r == nil {
		var err error
		if r, err = b.loadState(ctx, name); err != nil {
			return err
		}
		b.touched[name] = r
		if !r.Deleted { // a deleted run's references went with its row
			b.refs[name] = referencedDigests(r)
		}
	}
	if created && r.Deleted {
		if err := b.clearLogs(ctx, name); err != nil {
			return fmt.Errorf("clear logs of re-created run %s: %w", name, err)
		}
	}
	if !applied {
		r.Apply(rec)
	}
	if lw, ok := rec.Event.(domain.LogWritten); ok {
		if err := b.appendLines(ctx, name, lw); err != nil {
			return err
		}
	}
	return nil
}

func (b *batchWriter) loadState(ctx context.Context, name string) (*domain.Run, error) {
	if state, ok := b.s.cache[name]; ok {
		r := &domain.Run{}
		if err := statecodec.DecodeSharedState(state, r); err != nil {
			return nil, fmt.Errorf("decode cached state of run %s: %w", name, err)
		}
		return r, nil
	}
	st, err := b.stmt(ctx, `SELECT state FROM runs WHERE name = ?`)
	if err != nil {
		return nil, err
	}
	var state []byte
	err = st.QueryRowContext(ctx, name).Scan(&state)
	r := &domain.Run{}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// A run without a row has no log lines either.
		b.s.seqs[name] = &logSeqs{last: map[string]int64{}, complete: true}
	case err != nil:
		return nil, fmt.Errorf("read run %s read model: %w", name, err)
	default:
		if err := statecodec.DecodeSharedState(state, r); err != nil {
			return nil, fmt.Errorf("decode run %s read model: %w", name, err)
		}
	}
	return r, nil
}

// finish writes the buffered lines and the states of the runs the batch
// touched.
func (b *batchWriter) finish(ctx context.Context) error {
	if err := b.flushLines(ctx); err != nil {
		return err
	}
	// In key order, the rows of runs one after another.
	b.states = make(map[string][]byte, len(b.touched))
	for _, name := range slices.Sorted(maps.Keys(b.touched)) {
		r := b.touched[name]
		h, ok := b.hints[name]
		state := h.state
		if !ok || h.version != r.Version {
			var err error
			if state, err = statecodec.EncodeState(*r); err != nil {
				return fmt.Errorf("encode run %s read model: %w", name, err)
			}
		}
		// A deleted run's state has no row, but the cache keeps it (so
		// that re-creating the run clears its logs) as before.
		b.states[name] = state
		if r.Deleted {
			if err := b.exec(ctx, `DELETE FROM runs WHERE name = ?`, name); err != nil {
				return fmt.Errorf("delete run %s from read models: %w", name, err)
			}
			if err := b.clearLogs(ctx, name); err != nil {
				return fmt.Errorf("delete logs of run %s from read models: %w", name, err)
			}
			if err := b.exec(ctx, `DELETE FROM artifact_refs WHERE run = ?`, name); err != nil {
				return fmt.Errorf("delete artifact references of run %s: %w", name, err)
			}
			continue
		}
		if !b.partial[name] { // a partial run's artifacts are as they were
			if err := b.updateRefs(ctx, name, r); err != nil {
				return fmt.Errorf("update artifact references of run %s: %w", name, err)
			}
		}
		if err := b.exec(ctx, `INSERT INTO runs (name, owner, status, updated, state) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, status = excluded.status, updated = excluded.updated, state = excluded.state`,
			name, r.Owner, string(r.Status), updatedText(r.Updated), state); err != nil {
			return fmt.Errorf("write run %s read model: %w", name, err)
		}
	}
	return nil
}
