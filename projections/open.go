// Opening and closing the read-model file, with the guard for writes without syncs.

package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/piperun/piperun/internal/sqlitewal"
	"github.com/piperun/piperun/internal/unsynced"
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
	// synchronous(OFF) where the guard allows it: the read models are
	// derived from the event log, so they need not survive a crash of the
	// machine, only never be trusted after one. Nothing is synced while
	// they are open; the last process to close them syncs them; and a
	// process opening them in a later boot without that sync having happened
	// discards them and rebuilds them from the log (the projector starts
	// from position 0). A killed process loses nothing: the kernel holds
	// what it wrote. Measured under load (bench http, 32 clients; see
	// docs/performance.md), syncing the read models at their checkpoints
	// (synchronous=NORMAL) delayed the event store's own syncs, which
	// acknowledge commands: 4,524–7,619 restores/s at p99 12–23 ms against
	// 7,879–9,655/s at p99 7.5–9.2 ms without syncs, and the load's goal
	// (5,000/s at p99 20 ms) was missed. Where the guard cannot tell a
	// restart of the machine (not Linux), or cannot record this boot,
	// synchronous(NORMAL).
	discarded := false
	guard, err := unsynced.Open(path, func() error { discarded = true; return removeDatabase(path) })
	if err != nil {
		return nil, fmt.Errorf("open read models: %w", err)
	}
	syncMode := "NORMAL"
	if guard.Unsynced() {
		syncMode = "OFF"
	}
	fail := func(err error) (*Store, error) { return nil, errors.Join(err, guard.Close()) }
	if err := sqlitewal.Create(ctx, path, pageSize); err != nil {
		return fail(fmt.Errorf("create read models: %w", err))
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + syncMode + ")&_pragma=busy_timeout(10000)&_pragma=temp_store(MEMORY)" +
		"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fail(fmt.Errorf("open read models %s: %w", path, err))
	}
	db.SetMaxOpenConns(4)
	if err := migrate(ctx, db); err != nil {
		return fail(errors.Join(fmt.Errorf("create read-model schema in %s: %w", path, err), db.Close()))
	}
	s := &Store{db: db, path: path, subs: map[int]chan Change{}, guard: guard, discarded: discarded}
	s.dropCaches()
	var position int64
	if err := db.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE name = ?`, checkpointName).Scan(&position); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fail(errors.Join(fmt.Errorf("read projection checkpoint: %w", err), db.Close()))
	}
	s.position.Store(position)
	// The checkpoints' connection syncs as the projector's does.
	if s.ckptDB, err = sql.Open("sqlite", "file:"+path+"?_pragma=synchronous("+syncMode+")&_pragma=busy_timeout(10000)"); err != nil {
		return fail(errors.Join(fmt.Errorf("open read models %s for checkpoints: %w", path, err), db.Close()))
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
	// After the connections: the last process to close syncs the file.
	return errors.Join(append(errs, s.guard.Close())...)
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

// Discarded reports whether Open found the file written without syncs
// before the machine restarted, and so started it anew: the read models
// are empty until the projector has caught up with the log.
func (s *Store) Discarded() bool { return s.discarded }
