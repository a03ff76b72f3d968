// The read-model file's schema and its migrations from older versions.

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const schema = `
CREATE TABLE IF NOT EXISTS checkpoint (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
	name TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	status TEXT NOT NULL,
	updated TEXT NOT NULL,
	state BLOB NOT NULL
);
-- One row per log event: lines first .. first+n-1 of a log, as a JSON
-- array. A row per line made the log most of a rebuild's writes.
CREATE TABLE IF NOT EXISTS log_chunks (
	run TEXT NOT NULL,
	log TEXT NOT NULL,
	first INTEGER NOT NULL,
	n INTEGER NOT NULL,
	lines TEXT NOT NULL,
	PRIMARY KEY (run, log, first)
) WITHOUT ROWID;
-- Which run (current products or backup) uses which artifact, so that the
-- janitor checks its candidates without reading every run.
CREATE TABLE IF NOT EXISTS artifact_refs (
	digest TEXT NOT NULL,
	run TEXT NOT NULL,
	PRIMARY KEY (digest, run)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS artifact_refs_run ON artifact_refs (run);
CREATE TABLE IF NOT EXISTS users (
	name TEXT PRIMARY KEY,
	admin INTEGER NOT NULL,
	token_hash TEXT NOT NULL UNIQUE
);
-- Web sessions signed out of, until they would have expired anyway (Unix
-- seconds): their cookies are refused.
CREATE TABLE IF NOT EXISTS ended_sessions (
	id TEXT PRIMARY KEY,
	until INTEGER NOT NULL
) WITHOUT ROWID;
`

// addedIndexes were added to schema version 3 without changing the file
// format; migrate creates them in files that lack them.
const addedIndexes = `
-- The janitor asks whether any job is pending on every restore and
-- deletion: a partial index holds just the runs that have one.
CREATE INDEX IF NOT EXISTS runs_pending ON runs (status) WHERE status IN ('Queued', 'Running');
-- The workers' recovery asks every minute for the runs with any work
-- pending.
CREATE INDEX IF NOT EXISTS runs_busy ON runs (status) WHERE status IN ('Queued', 'Running', 'Restoring', 'Deleting');
`

// schemaVersion is kept in PRAGMA user_version. Version 1 kept a row per
// log line (log_lines); version 2 had no artifact_refs. Open converts both.
// Version 4 writes run states as statecodec.EncodeState does (repeated
// configurations once); it reads version 3's plain states as they are, so
// the step changes no row, but it keeps older programs from misreading the
// new states. Version 5 likewise: states may write a configuration as its
// difference from another (statecodec's configDelta), which version 4's
// programs cannot read.
const schemaVersion = 5

// migrate brings a read-model file to schemaVersion, in one transaction so
// that processes opening the file together migrate it once.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("read-model schema version %d is newer than this program's %d", version, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema+addedIndexes); err != nil {
		return err
	}
	if err := fixUpdatedWidth(ctx, tx); err != nil {
		return fmt.Errorf("rewrite the runs' update times: %w", err)
	}
	if version == schemaVersion {
		return tx.Commit()
	}
	var oldLines int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'log_lines'`).Scan(&oldLines); err != nil {
		return err
	}
	if oldLines > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO log_chunks (run, log, first, n, lines)
			SELECT run, log, seq, 1, json_array(line) FROM log_lines`); err != nil {
			return fmt.Errorf("convert log lines: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE log_lines`); err != nil {
			return err
		}
	}
	if version < 3 {
		if err := fillArtifactRefs(ctx, tx); err != nil {
			return fmt.Errorf("index artifact references: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// updatedLayout is the form of runs.updated: RFC 3339 in UTC with all nine
// digits of the fraction, so that the text sorts as the time does. (With
// the fraction's trailing zeros cut, as time.RFC3339Nano has it, which
// earlier versions wrote, "…:05.1Z" sorted after "…:05.12Z".)
const updatedLayout = "2006-01-02T15:04:05.000000000Z"

func updatedText(t time.Time) string { return t.UTC().Format(updatedLayout) }

// updatedFixedMark is the name of a checkpoint row (its position unused)
// recording that every runs.updated is in updatedLayout. Older versions of
// the program, which read the column's either form, ignore it.
const updatedFixedMark = "format:updated-fixed-width"

// fixUpdatedWidth rewrites the update times that earlier versions wrote in
// time.RFC3339Nano into updatedLayout, once per file (updatedFixedMark).
func fixUpdatedWidth(ctx context.Context, tx *sql.Tx) error {
	var done int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM checkpoint WHERE name = ?`, updatedFixedMark).Scan(&done); err != nil {
		return err
	}
	if done > 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, updated FROM runs WHERE length(updated) != ?`, len(updatedLayout))
	if err != nil {
		return err
	}
	fixed := map[string]string{}
	for rows.Next() {
		var name, updated string
		if err := rows.Scan(&name, &updated); err != nil {
			rows.Close()
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, updated)
		if err != nil {
			rows.Close()
			return fmt.Errorf("run %s: %w", name, err)
		}
		fixed[name] = updatedText(t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for name, updated := range fixed {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET updated = ? WHERE name = ?`, updated, name); err != nil {
			return fmt.Errorf("run %s: %w", name, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO checkpoint (name, position) VALUES (?, 0)`, updatedFixedMark)
	return err
}
