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

// writeStmts are prepared once on the single write connection.
type writeStmts struct {
	version, insert, savepoint, release, rollbackTo *sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&w.version, `SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?`},
		{&w.insert, `INSERT INTO events (id, stream, version, type, data, actor, time) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&w.savepoint, `SAVEPOINT append_one`},
		{&w.release, `RELEASE append_one`},
		{&w.rollbackTo, `ROLLBACK TO append_one`},
	} {
		stmt, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return errors.Join(storageError(fmt.Sprintf("prepare %q", p.sql), err), w.close())
		}
		*p.stmt = stmt
	}
	return nil
}

func (w *writeStmts) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{w.version, w.insert, w.savepoint, w.release, w.rollbackTo} {
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
		failAll(batch, storageError("begin write transaction", err))
		return
	}
	st := txStmts{
		version:    tx.StmtContext(ctx, s.stmts.version),
		insert:     tx.StmtContext(ctx, s.stmts.insert),
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
		failAll(batch, storageError("commit appends", err))
		return
	}
	s.commits.Add(1)
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
	version, insert, savepoint, release, rollbackTo *sql.Stmt
}

// append checks and writes one request inside the batch transaction. A
// failure of the request alone (wrong version, duplicate id) goes to r.err
// and is undone to the savepoint; the error returned dooms the whole batch.
func (st txStmts) append(ctx context.Context, r *appendRequest) error {
	var current int64
	if err := st.version.QueryRowContext(ctx, r.stream).Scan(&current); err != nil {
		return storageError(fmt.Sprintf("version of stream %q", r.stream), err)
	}
	// BEGIN IMMEDIATE holds the database's write lock, so no other process
	// can move the stream between this check and the inserts; the
	// UNIQUE (stream, version) index backs it up.
	if r.expected != eventstore.AnyVersion && r.expected != current {
		r.err = &eventstore.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: current}
		return nil
	}
	if _, err := st.savepoint.ExecContext(ctx); err != nil {
		return storageError("savepoint", err)
	}
	version, position, err := st.insertEvents(ctx, r.stream, current, r.events)
	if err != nil {
		if !isConstraint(err) {
			return err
		}
		if _, rerr := st.rollbackTo.ExecContext(ctx); rerr != nil {
			return storageError("roll back to savepoint", rerr)
		}
		r.err = constraintError(r, err)
	} else {
		r.version, r.position = version, position
	}
	if _, err := st.release.ExecContext(ctx); err != nil {
		return storageError("release savepoint", err)
	}
	return nil
}

// insertEvents writes events after version current of stream.
func (st txStmts) insertEvents(ctx context.Context, stream string, current int64, events []eventstore.EventData) (version, position int64, err error) {
	now := time.Now()
	for _, e := range events {
		current++
		t := e.Time
		if t.IsZero() {
			t = now
		}
		res, err := st.insert.ExecContext(ctx, e.ID, stream, current, e.Type, e.Data, e.Actor, t.UnixNano())
		if err != nil {
			return 0, 0, storageError(fmt.Sprintf("insert event %s into %q", e.ID, stream), err)
		}
		if position, err = res.LastInsertId(); err != nil {
			return 0, 0, fmt.Errorf("position of event %s: %w", e.ID, err)
		}
	}
	return current, position, nil
}

// constraintError explains a constraint violation of one append.
func constraintError(r *appendRequest, err error) error {
	// The (stream, version) index only fires if the version check above
	// was bypassed; report it as the conflict it is.
	if strings.Contains(err.Error(), "events.stream, events.version") {
		return &eventstore.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: -1}
	}
	return fmt.Errorf("append to %q: event id already stored: %w", r.stream, err)
}
