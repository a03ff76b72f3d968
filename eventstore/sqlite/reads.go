// Reading events: a stream, a stream's version, the global log and its head.

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/piperun/piperun/eventstore"
)

// globalLogQuery reads ReadAll's events.
const globalLogQuery = `SELECT ` + eventColumns + ` FROM events WHERE position > ? ORDER BY position LIMIT ?`

// nearEnd is how far from the last position it wrote ReadAll reads
// without mmap.
const nearEnd = 4096

// readStmts are the read queries, prepared once for the pool: database/sql
// prepares each on a connection the first time it runs there, and a query
// prepared anew each time cost as much as running it.
type readStmts struct {
	stream, version, all, tail, head, snapshot *sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&r.stream, `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`},
		{&r.version, versionQuery},
		{&r.tail, globalLogQuery},
		{&r.head, `SELECT COALESCE(MAX(position), 0) FROM events`},
		{&r.snapshot, `SELECT version, data FROM snapshots WHERE stream = ?`},
	} {
		stmt, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return storageError(fmt.Sprintf("prepare %q", p.sql), err)
		}
		*p.stmt = stmt
	}
	return nil
}

func (r *readStmts) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{r.stream, r.version, r.all, r.tail, r.head, r.snapshot} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, limit int) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.reads.stream.QueryContext(ctx, stream, from, limit)
	if err != nil {
		return nil, storageError(fmt.Sprintf("read stream %q", stream), err)
	}
	evs, err := scanEvents(rows, 0)
	if err != nil {
		return nil, storageError(fmt.Sprintf("read stream %q", stream), err)
	}
	return evs, nil
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	var v sql.NullInt64
	err := s.reads.version.QueryRowContext(ctx, stream).Scan(&v)
	if err != nil {
		return 0, storageError(fmt.Sprintf("version of stream %q", stream), err)
	}
	return v.Int64, nil
}

// ReadAll implements eventstore.Store. limit <= 0 means 1000.
func (s *Store) ReadAll(ctx context.Context, after int64, limit int) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = defaultReadAllLimit
	}
	// Far from the end, or not knowing it (another process writes, or none
	// has yet), through mmap; near the end, without.
	all := s.reads.all
	if w := s.written.Load(); w > 0 && w-after <= nearEnd {
		all = s.reads.tail
	}
	rows, err := all.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, storageError(fmt.Sprintf("read global log after %d", after), err)
	}
	// Room for a batch up front: growing the slice from nothing copied
	// each event's fields again and again (measured in a rebuild's
	// profile). Not for the largest batch: a projector tailing the log
	// asks for thousands and most often gets a few.
	evs, err := scanEvents(rows, min(limit, 1024))
	if err != nil {
		return nil, storageError(fmt.Sprintf("read global log after %d", after), err)
	}
	return evs, nil
}

// HeadPosition implements eventstore.Store.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	var p int64
	if err := s.reads.head.QueryRowContext(ctx).Scan(&p); err != nil {
		return 0, storageError("head position", err)
	}
	return p, nil
}

// scanEvents reads events from rows, into a slice with room for capacity.
func scanEvents(rows *sql.Rows, capacity int) ([]eventstore.Event, error) {
	defer rows.Close()
	evs := make([]eventstore.Event, 0, capacity)
	for rows.Next() {
		var e eventstore.Event
		var nanos int64
		if err := rows.Scan(&e.Position, &e.ID, &e.Stream, &e.Version, &e.Type, &e.Data, &e.Actor, &nanos); err != nil {
			return nil, err
		}
		e.Time = time.Unix(0, nanos).UTC()
		evs = append(evs, e)
	}
	return evs, rows.Err()
}
