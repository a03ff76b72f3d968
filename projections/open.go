// Opening and closing the read-model file.

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/piperun/piperun/internal/sqlitewal"
)

// Open opens (creating if needed) the read-model database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	// _txlock=immediate: a batch reads the checkpoint and writes in one
	// transaction, which must hold the write lock from its start when two
	// processes share the file. temp_store(MEMORY): a statement journal,
	// when one is needed, stays in memory instead of a temporary file written
	// page by page. cache_size(-65536): 64 MiB of page cache rather than
	// 2 MiB, so that a batch's pages are read once and written at commit, not
	// spilled to the WAL mid-transaction. wal_autocheckpoint(10000): the
	// projector's own checkpoint comes every 40 MB of WAL rather than every
	// 4 MB; between them a background checkpointer on a connection of its
	// own copies pages as they are committed, so that the projector (which
	// commands wait for) never stalls copying 40 MB: measured under load,
	// that stall was the p99 of command latency. Neither weakens what
	// the synchronous setting keeps.
	//
	// synchronous(NORMAL): in WAL mode SQLite then syncs only at
	// checkpoints, and a crash of the machine may lose the last
	// transactions but never leaves the file inconsistent. That is enough
	// for data derived from the log: the projector's checkpoint is written
	// in the same transactions as the rows, so it resumes from what
	// survived.
	const syncMode = "NORMAL"
	discarded, err := discardUnsyncedFiles(path)
	if err != nil {
		return nil, fmt.Errorf("open read models: %w", err)
	}
	if err := sqlitewal.Create(ctx, path, pageSize); err != nil {
		return nil, fmt.Errorf("create read models: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + syncMode + ")&_pragma=busy_timeout(10000)&_pragma=temp_store(MEMORY)" +
		"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open read models %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if err := migrate(ctx, db); err != nil {
		return nil, errors.Join(fmt.Errorf("create read-model schema in %s: %w", path, err), db.Close())
	}
	s := &Store{db: db, path: path, subs: map[int]chan Change{}, discarded: discarded}
	s.dropCaches()
	var position int64
	if err := db.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE name = ?`, checkpointName).Scan(&position); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, errors.Join(fmt.Errorf("read projection checkpoint: %w", err), db.Close())
	}
	s.position.Store(position)
	// The checkpoints' connection syncs as the projector's does.
	if s.ckptDB, err = sql.Open("sqlite", "file:"+path+"?_pragma=synchronous("+syncMode+")&_pragma=busy_timeout(10000)"); err != nil {
		return nil, errors.Join(fmt.Errorf("open read models %s for checkpoints: %w", path, err), db.Close())
	}
	s.ckptDB.SetMaxOpenConns(1)
	s.ckpt = sqlitewal.Start(s.ckptDB, 20*time.Millisecond)
	return s, nil
}

// pageSize is the page size of new read-model files. With 16 KiB pages
// rather than SQLite's 4 KiB, a run's state (some kilobytes) fits in one
// page instead of a chain of overflow pages, and a rebuild writes a
// quarter of the pages (each a system call, twice: to the WAL and in the
// checkpoint).
const pageSize = 16384

// Close closes the database.
func (s *Store) Close() error {
	s.ckpt.Stop()
	var errs []error
	s.prepMu.Lock()
	for _, st := range s.prepared {
		errs = append(errs, st.Close())
	}
	s.prepared = nil
	s.prepMu.Unlock()
	errs = append(errs, s.db.Close(), s.ckptDB.Close())
	return errors.Join(errs...)
}

// removeDatabase removes the read-model database at path with its WAL and
// shared-memory index.
func removeDatabase(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Discarded reports whether Open found the file left by an earlier version
// that wrote it without syncs, and so started it anew: the read models are
// empty until the projector has caught up with the log.
func (s *Store) Discarded() bool { return s.discarded }

// discardUnsyncedFiles removes the read models at path if an earlier
// version of piperun, which wrote them without syncs, may have left them
// torn: that version kept a marker file beside the database while it had
// it open (path + ".unsynced") and removed it, after a sync, on a clean
// close. A marker still there means the writes may not have reached the
// disk before the machine stopped, so the file is not trusted; the
// projector rebuilds it from the log. The marker and that version's lock
// file are removed with it. It reports whether it discarded anything.
func discardUnsyncedFiles(path string) (bool, error) {
	marker := path + ".unsynced"
	if _, err := os.Lstat(marker); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("check for %s: %w", marker, err)
	}
	if err := removeDatabase(path); err != nil {
		return false, fmt.Errorf("discard read models written without syncs: %w", err)
	}
	for _, p := range []string{marker, path + ".lock"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return true, nil
}
