// The writer's SQL: its queries and the statements it prepares once on the write connection.

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

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
