// One batch of appends in a transaction: version checks, positions and inserting the rows.

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/piperun/piperun/eventstore"
)

// writeState is what the writer goroutine knows of the database between its
// transactions: the version of streams it wrote or read recently and the last
// position used. It lets a batch decide each append's expected-version check
// and position without asking the database, and it is trusted only while
// nothing else can have written since:
//
//   - every batch runs under BEGIN IMMEDIATE, which holds the file's write
//     lock (across processes) from before the first read until the commit;
//   - at the start of each batch PRAGMA data_version tells whether any other
//     connection, in this process or another, committed since the previous
//     batch; if one did, or if the previous batch did not commit, everything
//     is forgotten and read again from the database;
//   - data_version compares only within one connection, so the writer marks
//     its connection (PRAGMA temp.user_version, which lives and dies with
//     the connection) and forgets everything when database/sql has replaced
//     it;
//   - UNIQUE (stream, version) and the position primary key back the state
//     up: a wrong entry makes the insert fail, and the batch is then redone
//     from the database alone.
//
// Owned by the writer goroutine (and by tests that call commitBatch while no
// writer runs).
type writeState struct {
	valid        bool  // the fields below describe the database as of dataVersion
	dataVersion  int64 // PRAGMA data_version at the last batch
	lastPosition int64 // 0: not read yet
	versions     map[string]int64
}

// forget drops everything known; the next batch reads the database again.
func (w *writeState) forget() {
	w.valid, w.lastPosition = false, 0
	clear(w.versions)
}

// remember records that stream is at version v.
func (w *writeState) remember(stream string, v int64) {
	if w.versions == nil {
		w.versions = make(map[string]int64)
	}
	if _, ok := w.versions[stream]; !ok && len(w.versions) >= maxCachedStreams {
		for k := range w.versions { // evict one, in map order
			delete(w.versions, k)
			break
		}
	}
	w.versions[stream] = v
}

// batchTx is one write transaction of the writer.
type batchTx struct {
	ctx   context.Context
	tx    *sql.Tx
	all   *writeStmts
	stmts [numStmts]*sql.Stmt // all's statements bound to tx, made on first use
	state *writeState
}

func (b *batchTx) stmt(i int) *sql.Stmt {
	if b.stmts[i] == nil {
		b.stmts[i] = b.tx.StmtContext(b.ctx, b.all[i])
	}
	return b.stmts[i]
}

// begin checks the write state against the database, now that the write
// lock is held.
func (b *batchTx) begin() error {
	var mark, dv int64
	if err := b.stmt(stmtConnMark).QueryRowContext(b.ctx).Scan(&mark); err != nil {
		return storageError("read connection mark", err)
	}
	if err := b.stmt(stmtDataVersion).QueryRowContext(b.ctx).Scan(&dv); err != nil {
		return storageError("read data version", err)
	}
	if mark == 1 && b.state.valid && dv == b.state.dataVersion {
		return nil
	}
	b.state.forget()
	if mark != 1 {
		// A connection the writer has not used yet: its data_version says
		// nothing about the previous one's.
		if _, err := b.stmt(stmtSetConnMark).ExecContext(b.ctx); err != nil {
			return storageError("mark connection", err)
		}
	}
	b.state.valid, b.state.dataVersion = true, dv
	return nil
}

// head returns the version of stream, from the write state or the database.
func (b *batchTx) head(stream string) (int64, error) {
	if v, ok := b.state.versions[stream]; ok {
		return v, nil
	}
	v, err := b.readVersion(stream)
	if err != nil {
		return 0, err
	}
	b.state.remember(stream, v)
	return v, nil
}

func (b *batchTx) readVersion(stream string) (int64, error) {
	var v sql.NullInt64
	if err := b.stmt(stmtVersion).QueryRowContext(b.ctx, stream).Scan(&v); err != nil {
		return 0, storageError(fmt.Sprintf("version of stream %q", stream), err)
	}
	return v.Int64, nil
}

// nextPosition returns the position of the next event inserted.
func (b *batchTx) nextPosition() (int64, error) {
	if b.state.lastPosition == 0 {
		if err := b.stmt(stmtLastPosition).QueryRowContext(b.ctx).Scan(&b.state.lastPosition); err != nil {
			return 0, storageError("last position", err)
		}
	}
	return b.state.lastPosition + 1, nil
}

// check decides r's expected-version check against the stream's version.
// It returns the version to append after, or r's error.
func (b *batchTx) check(r *appendRequest) (at int64, rejected, err error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("append to %q: %w", r.stream, err), nil
	}
	head, err := b.head(r.stream)
	if err != nil {
		return 0, nil, err
	}
	at = r.expected
	if at == eventstore.AnyVersion {
		at = head
	}
	if at != head {
		return 0, &eventstore.ConcurrencyError{Stream: r.stream, Expected: r.expected, Actual: head}, nil
	}
	return at, nil, nil
}

// errRedo reports that a batch's multi-row INSERT hit a constraint: one of
// its appends is refused (a duplicate id), or the write state was wrong. The
// transaction is rolled back and the batch redone one append at a time.
var errRedo = errors.New("redo the batch one append at a time")

// writeRows decides every append of batch, then inserts all their events
// with as few statements as possible. It returns errRedo when an INSERT hit a
// constraint, which leaves the transaction and the write state to be thrown
// away.
func (b *batchTx) writeRows(batch []*appendRequest, now time.Time, args []any) ([]any, error) {
	pos, err := b.nextPosition()
	if err != nil {
		return args, err
	}
	args = args[:0]
	for _, r := range batch {
		at, rejected, err := b.check(r)
		if err != nil {
			return args, err
		}
		if rejected != nil {
			r.err = rejected
			continue
		}
		for _, e := range r.events {
			at++
			t := e.Time
			if t.IsZero() {
				t = now
			}
			args = append(args, pos, e.ID, r.stream, at, e.Type, e.Data, e.Actor, t.UnixNano())
			pos++
		}
		r.version, r.position = at, pos-1
		b.state.remember(r.stream, at)
	}
	for rest := args; len(rest) > 0; {
		k := maxRowsLog2
		for len(rest) < paramsPerRow<<k {
			k--
		}
		n := paramsPerRow << k
		if _, err := b.stmt(stmtInsertRows+k).ExecContext(b.ctx, rest[:n]...); err != nil {
			if isConstraint(err) {
				return args, errRedo
			}
			return args, storageError(fmt.Sprintf("insert %d events", n/paramsPerRow), err)
		}
		rest = rest[n:]
	}
	b.state.lastPosition = pos - 1
	return args, nil
}

// writeEach checks and writes the appends of batch one at a time, so that an
// append the database refuses (a duplicate id) fails alone.
func (b *batchTx) writeEach(batch []*appendRequest, now time.Time) error {
	for _, r := range batch {
		at, rejected, err := b.check(r)
		if err != nil {
			return err
		}
		if rejected == nil {
			rejected, err = b.appendOne(r, at, now)
			if err != nil {
				return err
			}
		}
		r.err = rejected
	}
	// AUTOINCREMENT picked the positions; read the last one again when
	// next needed.
	b.state.lastPosition = 0
	return nil
}

// appendOne writes the events of r after version at of its stream. It
// returns the reason the database refused the append, or an error that dooms
// the batch.
func (b *batchTx) appendOne(r *appendRequest, at int64, now time.Time) (rejected, err error) {
	// A single INSERT that fails undoes itself and leaves the transaction
	// going; several need a savepoint to go back to.
	savepoint := len(r.events) > 1
	if savepoint {
		if _, err := b.stmt(stmtSavepoint).ExecContext(b.ctx); err != nil {
			return nil, storageError("savepoint", err)
		}
	}
	v, pos := at, int64(0)
	for _, e := range r.events {
		t := e.Time
		if t.IsZero() {
			t = now
		}
		res, err := b.stmt(stmtInsertOne).ExecContext(b.ctx, e.ID, r.stream, v+1, e.Type, e.Data, e.Actor, t.UnixNano())
		if isConstraint(err) {
			rejected = constraintError(r, err)
			break
		}
		if err != nil {
			return nil, storageError(fmt.Sprintf("insert event %s into %q", e.ID, r.stream), err)
		}
		if pos, err = res.LastInsertId(); err != nil {
			return nil, fmt.Errorf("position of event %s: %w", e.ID, err)
		}
		v++
	}
	if rejected != nil && savepoint {
		if _, err := b.stmt(stmtRollbackTo).ExecContext(b.ctx); err != nil {
			return nil, storageError("roll back to savepoint", err)
		}
	}
	if savepoint {
		if _, err := b.stmt(stmtRelease).ExecContext(b.ctx); err != nil {
			return nil, storageError("release savepoint", err)
		}
	}
	var ce *eventstore.ConcurrencyError
	if errors.As(rejected, &ce) {
		// The write state was wrong about the stream: ask the database.
		if ce.Actual, err = b.readVersion(r.stream); err != nil {
			return nil, err
		}
		b.state.remember(r.stream, ce.Actual)
	}
	if rejected == nil {
		r.version, r.position = v, pos
		b.state.remember(r.stream, v)
	}
	return rejected, nil
}
