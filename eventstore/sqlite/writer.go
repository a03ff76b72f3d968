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
	// lastPositionQuery is the position AUTOINCREMENT would pick minus one:
	// the larger of the highest position ever used and the highest present.
	lastPositionQuery = `SELECT MAX(
		IFNULL((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		IFNULL((SELECT MAX(position) FROM events), 0))`
	// insertOne inserts one event and lets AUTOINCREMENT pick its position.
	insertOne = `INSERT INTO events (id, stream, version, type, data, actor, time) VALUES (?, ?, ?, ?, ?, ?, ?)`
	// insertRowsPrefix, followed by rows of rowParams, inserts events at
	// given positions. OR FAIL: a constraint violation stops the statement
	// without undoing its earlier rows, which the writer then rolls back
	// with the whole transaction; so SQLite keeps no statement journal,
	// which would copy every page the statement changes.
	insertRowsPrefix = `INSERT OR FAIL INTO events (position, id, stream, version, type, data, actor, time) VALUES `
	rowParams        = `(?, ?, ?, ?, ?, ?, ?, ?)`
	paramsPerRow     = 8
	// maxRowsLog2 bounds one multi-row INSERT to 1<<maxRowsLog2 events; a
	// batch takes one INSERT per power of two in its event count.
	maxRowsLog2 = 6
	// maxCachedStreams bounds the stream versions the writer remembers
	// (some 100 bytes each): an append to a stream it does not remember
	// has its version read from the database first. A restore appends to
	// its run again within seconds, from the worker; 4096 would forget
	// the runs of a burst of restores before their workers append.
	maxCachedStreams = 1 << 16
	// maxKeptArgs bounds the argument slice kept between batches.
	maxKeptArgs = 4096 * paramsPerRow
)

// The statements the writer prepares once on the write connection.
const (
	stmtDataVersion = iota
	stmtConnMark
	stmtSetConnMark
	stmtVersion
	stmtLastPosition
	stmtInsertOne
	stmtSavepoint
	stmtRelease
	stmtRollbackTo
	stmtInsertRows // stmtInsertRows+k inserts 1<<k events
	numStmts       = stmtInsertRows + maxRowsLog2 + 1
)

func stmtSQL(i int) string {
	switch i {
	case stmtDataVersion:
		return `PRAGMA data_version`
	case stmtConnMark:
		return `PRAGMA temp.user_version`
	case stmtSetConnMark:
		return `PRAGMA temp.user_version = 1`
	case stmtVersion:
		return versionQuery
	case stmtLastPosition:
		return lastPositionQuery
	case stmtInsertOne:
		return insertOne
	case stmtSavepoint:
		return `SAVEPOINT append_one`
	case stmtRelease:
		return `RELEASE append_one`
	case stmtRollbackTo:
		return `ROLLBACK TO append_one`
	}
	rows := 1 << (i - stmtInsertRows)
	return insertRowsPrefix + strings.Repeat(rowParams+", ", rows-1) + rowParams
}

// writeStmts are prepared once on the single write connection.
type writeStmts [numStmts]*sql.Stmt

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for i := range w {
		q := stmtSQL(i)
		stmt, err := db.PrepareContext(ctx, q)
		if err != nil {
			return storageError(fmt.Sprintf("prepare %.60q", q), err)
		}
		w[i] = stmt
	}
	return nil
}

func (w *writeStmts) close() error {
	var errs []error
	for _, s := range w {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

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
	now := time.Now()
	written, err := s.writeBatch(batch, now)
	if err != nil {
		s.state.forget()
		s.recent.forget()
		failAll(batch, err)
		return
	}
	s.commits.Add(1)
	s.ckpt.Wake()
	if written {
		s.recent.add(batch, now)
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
func (s *Store) writeBatch(batch []*appendRequest, now time.Time) (written bool, err error) {
	// The transaction serves many callers, so no single caller's context may
	// end it; a caller whose context is done is skipped instead.
	ctx := context.Background()
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
