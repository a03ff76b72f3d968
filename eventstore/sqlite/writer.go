package sqlite

import (
	"context"
	"database/sql"
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

const (
	// versionQuery reads the end of the (stream, version) index; NULL when
	// the stream is absent.
	versionQuery = `SELECT MAX(version) FROM events WHERE stream = ?`
	// insertAt inserts event ?1 as version ?3 + 1 of stream ?2 if the
	// stream is at version ?3 (0: absent), and inserts nothing otherwise.
	insertAt = `INSERT INTO events (id, stream, version, type, data, actor, time)
		SELECT ?1, ?2, ?3 + 1, ?4, ?5, ?6, ?7
		WHERE IFNULL((SELECT MAX(version) FROM events WHERE stream = ?2), 0) = ?3`
)

// writeStmts are prepared once on the single write connection.
type writeStmts struct {
	version, insertAt, savepoint, release, rollbackTo *sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&w.version, versionQuery},
		{&w.insertAt, insertAt},
		{&w.savepoint, `SAVEPOINT append_one`},
		{&w.release, `RELEASE append_one`},
		{&w.rollbackTo, `ROLLBACK TO append_one`},
	} {
		stmt, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return storageError(fmt.Sprintf("prepare %q", p.sql), err)
		}
		*p.stmt = stmt
	}
	return nil
}

func (w *writeStmts) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{w.version, w.insertAt, w.savepoint, w.release, w.rollbackTo} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// writeLoop commits the queued appends in batches until Close closes the
// queue. A batch is whatever queued up while the previous one was being
// written and synced, so under load one fsync serves many appends while a
// lone writer still gets one commit per append, without waiting.
func (s *Store) writeLoop(maxBatch int) {
	defer close(s.writerDone)
	batch := make([]*appendRequest, 0, maxBatch)
	for req := range s.requests {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-s.requests:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
		clear(batch) // drop references to finished requests
	}
}

// commitBatch writes batch in one transaction and reports to each request.
func (s *Store) commitBatch(batch []*appendRequest) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	// The transaction serves many callers, so no single caller's context may
	// end it; a caller whose context is done is skipped below instead.
	ctx := context.Background()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		failAll(batch, storageError(fmt.Sprintf("begin write transaction on %s", s.path), err))
		return
	}
	st := txStmts{
		version:    tx.StmtContext(ctx, s.stmts.version),
		insertAt:   tx.StmtContext(ctx, s.stmts.insertAt),
		savepoint:  tx.StmtContext(ctx, s.stmts.savepoint),
		release:    tx.StmtContext(ctx, s.stmts.release),
		rollbackTo: tx.StmtContext(ctx, s.stmts.rollbackTo),
	}
	written := false
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("append to %q: %w", r.stream, err)
			continue
		}
		if err := st.append(ctx, r); err != nil {
			// The transaction is in doubt (disk full, I/O error): SQLite may
			// have rolled it back already. Nothing in the batch is written.
			failAll(batch, err)
			_ = tx.Rollback() // the append error is the one to report
			return
		}
		written = written || r.err == nil
	}
	if err := tx.Commit(); err != nil {
		failAll(batch, storageError(fmt.Sprintf("commit appends to %s", s.path), err))
		return
	}
	s.commits.Add(1)
	s.wakeCheckpointer()
	if written {
		s.notifyChanged()
	}
}

// failAll gives every request of batch the error err.
func failAll(batch []*appendRequest, err error) {
	for _, r := range batch {
		r.version, r.position, r.err = 0, 0, err
	}
}

// txStmts are the write statements bound to the batch's transaction.
type txStmts struct {
	version, insertAt, savepoint, release, rollbackTo *sql.Stmt
}

// append checks and writes one request inside the batch transaction. A
// failure of the request alone (wrong version, duplicate id) goes to r.err
// and writes nothing; the error returned dooms the whole batch.
func (st txStmts) append(ctx context.Context, r *appendRequest) error {
	at := r.expected
	if at == eventstore.AnyVersion {
		current, err := st.currentVersion(ctx, r.stream)
		if err != nil {
			return err
		}
		at = current
	}
	// A single INSERT that fails undoes itself and leaves the transaction
	// going; several need a savepoint to go back to.
	savepoint := len(r.events) > 1
	if savepoint {
		if _, err := st.savepoint.ExecContext(ctx); err != nil {
			return storageError("savepoint", err)
		}
	}
	rejected, err := st.insertEvents(ctx, r, at)
	if err != nil {
		return err
	}
	if rejected != nil {
		r.err = rejected
		if savepoint {
			if _, err := st.rollbackTo.ExecContext(ctx); err != nil {
				return storageError("roll back to savepoint", err)
			}
		}
	}
	if savepoint {
		if _, err := st.release.ExecContext(ctx); err != nil {
			return storageError("release savepoint", err)
		}
	}
	return nil
}

// insertEvents writes the events of r after version at of its stream. It
// returns the reason the database refused the append, or an error that dooms
// the batch.
func (st txStmts) insertEvents(ctx context.Context, r *appendRequest, at int64) (rejected, err error) {
	now := time.Now()
	for _, e := range r.events {
		t := e.Time
		if t.IsZero() {
			t = now
		}
		// The statement inserts only if the stream is at version at, so the
		// database, not this code, decides the expected-version check.
		// BEGIN IMMEDIATE holds the write lock, so no other process can move
		// the stream in between; UNIQUE (stream, version) backs it up.
		res, err := st.insertAt.ExecContext(ctx, e.ID, r.stream, at, e.Type, e.Data, e.Actor, t.UnixNano())
		if isConstraint(err) {
			return constraintError(r, err), nil
		}
		if err != nil {
			return nil, storageError(fmt.Sprintf("insert event %s into %q", e.ID, r.stream), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("insert event %s into %q: %w", e.ID, r.stream, err)
		}
		if n == 0 {
			current, err := st.currentVersion(ctx, r.stream)
			if err != nil {
				return nil, err
			}
			return &eventstore.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: current}, nil
		}
		if r.position, err = res.LastInsertId(); err != nil {
			return nil, fmt.Errorf("position of event %s: %w", e.ID, err)
		}
		at++
	}
	r.version = at
	return nil, nil
}

func (st txStmts) currentVersion(ctx context.Context, stream string) (int64, error) {
	var v sql.NullInt64
	if err := st.version.QueryRowContext(ctx, stream).Scan(&v); err != nil {
		return 0, storageError(fmt.Sprintf("version of stream %q", stream), err)
	}
	return v.Int64, nil
}

// constraintError explains a constraint violation of one append.
func constraintError(r *appendRequest, err error) error {
	// The (stream, version) index fires only if a row was written around
	// the guarded insert; report it as the conflict it is.
	if strings.Contains(err.Error(), "events.stream, events.version") {
		return &eventstore.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: -1}
	}
	return fmt.Errorf("append to %q: event id already stored: %w", r.stream, err)
}
