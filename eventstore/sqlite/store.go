package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/internal/sqlitewal"
)

// defaultReadAllLimit caps ReadAll when the caller passes limit <= 0.
const defaultReadAllLimit = 1000

// Options configures Open. Zero fields take their defaults.
type Options struct {
	// MaxBatch is the most appends committed in one transaction
	// (default 256).
	MaxBatch int
	// ReadConns is the size of the read connection pool (default 4).
	ReadConns int
	// BusyTimeout is how long a statement waits for a lock held by another
	// process before it fails with eventstore.ErrUnavailable (default 5s).
	BusyTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	return o
}

const schema = `
CREATE TABLE IF NOT EXISTS events (
	position INTEGER PRIMARY KEY AUTOINCREMENT,
	id       TEXT    NOT NULL UNIQUE,
	stream   TEXT    NOT NULL,
	version  INTEGER NOT NULL,
	type     TEXT    NOT NULL,
	data     BLOB,
	actor    TEXT    NOT NULL,
	time     INTEGER NOT NULL, -- Unix nanoseconds
	UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
	stream  TEXT    PRIMARY KEY,
	version INTEGER NOT NULL,
	data    BLOB
);`

const eventColumns = `position, id, stream, version, type, data, actor, time`

// schemaVersion is kept in PRAGMA user_version, so that an older binary
// refuses a file a newer one has migrated.
const schemaVersion = 1

// Store is the SQLite eventstore.Store. It is safe for concurrent use.
type Store struct {
	path string
	// write has a single connection, used by the writer goroutine and by
	// SaveSnapshot; its transactions are BEGIN IMMEDIATE, which takes the
	// file's write lock at once, before any version is read.
	write        *sql.DB
	read         *sql.DB
	scan         *sql.DB // ReadAll's connection far from the log's end: read in order, through mmap
	checkpointer *sql.DB
	stmts        writeStmts
	reads        readStmts
	// state and args belong to the writer goroutine.
	state writeState
	args  []any

	requests   chan *appendRequest
	writerDone chan struct{}
	closeMu    sync.RWMutex // held for reading while sending on requests
	closed     atomic.Bool

	changedMu sync.Mutex
	changed   chan struct{}

	ckpt *sqlitewal.Checkpointer // nil until Open succeeds

	commits atomic.Int64 // write transactions committed, for tests and benchmarks
	// written is the last position this process's appends committed: near
	// the end of the log, as far as ReadAll needs to know (see there).
	written atomic.Int64
}

var _ eventstore.Store = (*Store)(nil)

// Open opens the event store in the SQLite file at path, creating it if
// needed. Several processes may open the same file.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	s := &Store{
		path:       abs,
		requests:   make(chan *appendRequest, opts.MaxBatch),
		writerDone: make(chan struct{}),
		changed:    make(chan struct{}),
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds())
	// synchronous=FULL syncs the WAL at every commit, so an acknowledged
	// append survives a power loss; NORMAL would not promise that.
	// temp_store=MEMORY keeps statement journals, which only undo a failed
	// statement, and the temp schema off the disk.
	s.write, err = openDB(abs, 1, busy, "_txlock=immediate", "_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)", "_pragma=temp_store(MEMORY)",
		fmt.Sprintf("_pragma=wal_autocheckpoint(%d)", writerCheckpointFrames))
	if err == nil {
		// No mmap for point reads: measured under load (bench http),
		// remapping the growing file on read transactions cost more than
		// the pread(2)s it saved. ReadAll far from the log's end (a
		// rebuild reads all of it) has a connection of its own that maps
		// the file: a rebuild of 1,000,000 events went from ~75,000 to
		// ~83,000 events/s. Near the end, where a projector tails the log
		// as it is written, it reads without: there SQLite unmapped the
		// whole file at each read after a commit (munmap, 3 % of the CPU
		// under HTTP load).
		s.read, err = openDB(abs, opts.ReadConns, busy, "_pragma=query_only(1)")
	}
	if err == nil {
		s.scan, err = openDB(abs, 1, busy, "_pragma=query_only(1)", "_pragma=mmap_size(8589934592)")
	}
	if err == nil {
		s.checkpointer, err = openDB(abs, 1, busy, "_pragma=synchronous(FULL)")
	}
	if err == nil {
		err = s.init(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open event store %s: %w", abs, err), s.closeDBs())
	}
	go s.writeLoop(opts.MaxBatch)
	s.ckpt = sqlitewal.Start(s.checkpointer, checkpointInterval)
	return s, nil
}

// openDB returns a pool of at most conns connections to the file at path.
// Connections open on first use.
func openDB(path string, conns int, params ...string) (*sql.DB, error) {
	// A file: URI, so that '?' or '#' in a directory name stay part of it.
	u := url.URL{Scheme: "file", Path: path}
	db, err := sql.Open("sqlite", u.String()+"?"+strings.Join(params, "&"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// init checks the journal mode, creates the schema and prepares the write
// statements.
func (s *Store) init(ctx context.Context) error {
	var mode string
	if err := s.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return storageError("read journal mode", err)
	}
	// SQLite silently keeps the old mode where WAL is impossible (some
	// network file systems); concurrent readers and group commit need it.
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	// An acknowledged append is durable only if every commit syncs.
	var synchronous int
	if err := s.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&synchronous); err != nil {
		return storageError("read synchronous", err)
	}
	if synchronous != 2 {
		return fmt.Errorf("write connection has synchronous=%d, want 2 (FULL)", synchronous)
	}
	var version int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return storageError("read schema version", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this program's %d", version, schemaVersion)
	}
	if version < schemaVersion {
		if _, err := s.write.ExecContext(ctx, schema+fmt.Sprintf("\nPRAGMA user_version = %d;", schemaVersion)); err != nil {
			return storageError("create schema", err)
		}
	}
	if err := s.stmts.prepare(ctx, s.write); err != nil {
		return err
	}
	if err := s.reads.prepare(ctx, s.read); err != nil {
		return err
	}
	all, err := s.scan.PrepareContext(ctx, globalLogQuery)
	if err != nil {
		return storageError("prepare the global log query", err)
	}
	s.reads.all = all
	return nil
}

// closeDBs closes what Open opened.
func (s *Store) closeDBs() error {
	errs := []error{s.stmts.close(), s.reads.close()}
	for _, db := range []*sql.DB{s.read, s.scan, s.checkpointer, s.write} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// Append implements eventstore.Store. Concurrent appends are committed
// together; each is checked on its own and gets its own result once the
// batch is durable. If ctx ends while the append waits for its batch, Append
// returns ctx's error and the events may or may not have been written.
func (s *Store) Append(ctx context.Context, stream string, expected int64, events ...eventstore.EventData) (version, position int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("append to %q: %w", stream, err)
	}
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return 0, 0, err
	}
	req := &appendRequest{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan struct{})}
	if err := s.submit(ctx, req); err != nil {
		return 0, 0, err
	}
	select {
	case <-req.done:
		if req.err != nil {
			return 0, 0, req.err
		}
		return req.version, req.position, nil
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("append to %q: %w (the events may have been written)", stream, ctx.Err())
	}
}

// submit queues req for the writer goroutine.
func (s *Store) submit(ctx context.Context, req *appendRequest) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return errClosed
	}
	select {
	case s.requests <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("append to %q: %w", req.stream, ctx.Err())
	}
}

// Changed implements eventstore.Store. The channel is closed after each
// committed batch that wrote events.
func (s *Store) Changed() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	return s.changed
}

func (s *Store) notifyChanged() {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// SaveSnapshot implements eventstore.Store.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if s.closed.Load() {
		return errClosed
	}
	if snap.Stream == "" {
		return errors.New("save snapshot: empty stream name")
	}
	_, err := s.write.ExecContext(ctx,
		`INSERT INTO snapshots (stream, version, data) VALUES (?, ?, ?)
		 ON CONFLICT (stream) DO UPDATE SET version = excluded.version, data = excluded.data`,
		snap.Stream, snap.Version, snap.Data)
	if err != nil {
		return storageError(fmt.Sprintf("save snapshot of %q", snap.Stream), err)
	}
	return nil
}

// LoadSnapshot implements eventstore.Store.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, error) {
	if s.closed.Load() {
		return eventstore.Snapshot{}, errClosed
	}
	snap := eventstore.Snapshot{Stream: stream}
	err := s.reads.snapshot.QueryRowContext(ctx, stream).Scan(&snap.Version, &snap.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Snapshot{}, fmt.Errorf("load snapshot of %q: %w", stream, eventstore.ErrNotFound)
	}
	if err != nil {
		return eventstore.Snapshot{}, storageError(fmt.Sprintf("load snapshot of %q", stream), err)
	}
	return snap, nil
}

// Close waits for the appends already queued, then closes the database.
// Later calls fail with an error wrapping eventstore.ErrUnavailable.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed.Load() {
		s.closeMu.Unlock()
		return nil
	}
	s.closed.Store(true)
	close(s.requests)
	s.closeMu.Unlock()
	<-s.writerDone
	s.ckpt.Stop()
	if err := s.closeDBs(); err != nil {
		return fmt.Errorf("close event store %s: %w", s.path, err)
	}
	return nil
}

// errClosed is returned by every method of a closed store.
var errClosed = fmt.Errorf("sqlite event store closed: %w", eventstore.ErrUnavailable)

// storageError wraps err with op, and with eventstore.ErrUnavailable when
// SQLite reports a condition of the storage rather than of the request.
func storageError(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM:
			return fmt.Errorf("%s: %w: %w", op, eventstore.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isConstraint reports a constraint violation, which fails one append and
// leaves the rest of its batch and the transaction usable.
func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }
