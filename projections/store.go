package projections

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/internal/sqlitewal"
	"github.com/piperun/piperun/internal/unsynced"
	"github.com/piperun/piperun/statecodec"
)

// ErrNotFound is returned for an unknown run, log or user.
var ErrNotFound = errors.New("not found")

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

const checkpointName = "read-models"

// maxCachedStates bounds the run states the projector keeps between
// batches (some kilobytes to tens of kilobytes each).
var maxCachedStates = 16384

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
// difference from another (domain's configDelta), which version 4's
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

// fillArtifactRefs builds artifact_refs from the runs' states.
func fillArtifactRefs(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, state FROM runs`)
	if err != nil {
		return err
	}
	refs := map[string][]string{}
	for rows.Next() {
		var name string
		var state []byte
		if err := rows.Scan(&name, &state); err != nil {
			rows.Close()
			return err
		}
		var r domain.Run
		if err := statecodec.DecodeState(state, &r); err != nil {
			rows.Close()
			return fmt.Errorf("decode run %s: %w", name, err)
		}
		refs[name] = referencedDigests(&r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for name, digests := range refs {
		for _, d := range digests {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO artifact_refs (digest, run) VALUES (?, ?)`, d, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// referencedDigests lists the artifacts a run's state uses: its products
// and its backup's.
func referencedDigests(r *domain.Run) []string {
	var out []string
	if r.Products != nil {
		for _, a := range r.Products.Artifacts {
			out = append(out, a.Digest)
		}
	}
	if r.Backup != nil {
		for _, a := range r.Backup.Products.Artifacts {
			out = append(out, a.Digest)
		}
	}
	return out
}

// Change tells subscribers that a run's read model changed.
type Change struct {
	Run      string
	Position int64
}

// Store is the read-model database and its projector.
type Store struct {
	db   *sql.DB
	path string
	// ckpt copies committed pages of the WAL into the database file in the
	// background, on ckptDB.
	ckpt   *sqlitewal.Checkpointer
	ckptDB *sql.DB
	// guard, held while the file is open, lets it be written without
	// syncs (see Open).
	guard     *unsynced.Guard
	discarded bool

	// Hints, if set before the projector starts, saves it reading and
	// decoding the read model of a run whose new state the command side
	// has in memory.
	Hints     StateHints
	hintsUsed atomic.Int64

	// prepared are the batches' statements, prepared once per connection
	// rather than once per batch (compiling them was ~2 % of the CPU of a
	// command under load). Bounded: the queries with a variable number of
	// parameters come in at most refsPerStatement and chunksPerInsert sizes.
	prepMu   sync.Mutex
	prepared map[string]*sql.Stmt

	// usersGen changes whenever a user's token may have changed in the
	// read models: when this store applied a revocation or rotation, or
	// found events applied by another process sharing the file. Token
	// caches forget what they resolved under an older value.
	usersGen atomic.Int64

	mu sync.Mutex
	// position is read without mu by WaitFor, which every command calls.
	position atomic.Int64
	// waiters are WaitFor's callers, by the position each waits for
	// (under mu): advance wakes only those it reaches. (Waking every
	// caller at every batch, as a closed channel does, cost a wake-up and
	// a lock per waiting command per batch under load.)
	waiters waitHeap
	subs    map[int]chan Change
	nextSub int
	// cache holds run states as of position in their binary form
	// (statecodec.EncodeState), pointer-free: a rebuild keeps thousands of
	// them, which the garbage collector would otherwise mark on every
	// cycle. A batch decodes a run's state once, when it first touches it.
	cache map[string][]byte
	// seqs caches the last line number of each log of a run, so that
	// appending lines needs no query. Like cache, it holds only what the
	// database holds as of position.
	seqs    map[string]*logSeqs
	applyMu sync.Mutex // one projector at a time
}

// logSeqs are the last line numbers of a run's logs (log -> seq). When
// complete, every log of the run with lines in the database is there, and
// a log that is not has none: so it is for a run the read models did not
// hold (a run's lines go when its row goes) or whose lines were cleared.
type logSeqs struct {
	last     map[string]int64
	complete bool
}

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
	// docs/performance.md), syncing the read models' checkpoints
	// delayed the event store's own syncs, which acknowledge commands:
	// 3,829–4,508 restores/s at p99 20–23 ms against 4,554–5,518/s at p99
	// 15–17 ms without. Where the guard cannot tell a restart of the
	// machine (not Linux), or cannot record this boot, synchronous(NORMAL).
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

// Position returns the global position the read models reflect.
func (s *Store) Position() int64 { return s.position.Load() }

// WaitFor blocks until the read models reflect global position pos, or ctx
// ends. Commands use it to give read-your-writes to their caller.
func (s *Store) WaitFor(ctx context.Context, pos int64) error {
	if s.position.Load() >= pos {
		return nil
	}
	s.mu.Lock()
	if s.position.Load() >= pos {
		s.mu.Unlock()
		return nil
	}
	w := &waiter{pos: pos, ch: make(chan struct{})}
	heap.Push(&s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		// The entry goes now, not when the position passes it: while the
		// projector is stalled, every command's wait times out, and the
		// entries would pile up.
		s.mu.Lock()
		if w.index >= 0 {
			heap.Remove(&s.waiters, w.index)
		}
		s.mu.Unlock()
		return fmt.Errorf("wait for read models to reach position %d: %w", pos, ctx.Err())
	}
}

// waiter is a WaitFor call: ch is closed once position reaches pos. index
// is its place in the heap, -1 once it has left it.
type waiter struct {
	pos   int64
	ch    chan struct{}
	index int
}

// waitHeap is a min-heap of waiters by position (container/heap).
type waitHeap []*waiter

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].pos < h[j].pos }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// Subscribe returns a channel of changes; cancel stops them. A slow
// subscriber misses changes rather than blocking the projector: it should
// re-read the model on any change.
func (s *Store) Subscribe() (<-chan Change, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan Change, 64)
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

// Run tails the event store from the checkpoint and keeps the read models
// up to date until ctx ends.
func (s *Store) Run(ctx context.Context, es eventstore.Store, poll time.Duration) error {
	err := eventstore.Tail(ctx, es, s.Position(), eventstore.TailOptions{Poll: poll, Batch: 2000}, s.ApplyBatch)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// catchUpBatch is how many events CatchUp reads and applies at a time. A
// run's events spread over a few thousand positions of a busy log, and its
// state is written once per batch it has events in: larger batches write
// each state fewer times.
const catchUpBatch = 20000

// CatchUp applies every event up to the store's current head and returns.
// The next batch is read and decoded while the current one is written, so
// that a rebuild keeps more than one core busy.
func (s *Store) CatchUp(ctx context.Context, es eventstore.Store) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type next struct {
		batch []decodedEvent
		err   error
	}
	ahead := make(chan next, 1)
	go func() {
		defer close(ahead)
		after := s.Position()
		for {
			batch, err := es.ReadAll(ctx, after, catchUpBatch)
			if err != nil {
				ahead <- next{err: fmt.Errorf("catch up read models: %w", err)}
				return
			}
			if len(batch) == 0 {
				return
			}
			select {
			case ahead <- next{batch: decodeBatch(batch)}:
			case <-ctx.Done():
				return
			}
			after = batch[len(batch)-1].Position
		}
	}()
	for n := range ahead {
		if n.err != nil {
			return n.err
		}
		if err := s.applyDecoded(ctx, n.batch); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// decodedEvent is a stored event with its domain form, decoded ahead of
// applying it. err is the decoding error, reported if the event is
// applied (events already projected are skipped undecoded or not).
type decodedEvent struct {
	ev  eventstore.Event
	rec domain.Recorded
	err error
}

// decodeBatch decodes the run and user events of batch, on all cores:
// decoding JSON is most of a projector's work.
func decodeBatch(batch []eventstore.Event) []decodedEvent {
	out := make([]decodedEvent, len(batch))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(batch)/256))
	chunk := (len(batch) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(batch); lo += chunk {
		hi := min(lo+chunk, len(batch))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				ev := batch[i]
				out[i].ev = ev
				if projected(ev.Stream) {
					out[i].rec, out[i].err = app.Recorded(ev)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// projected reports whether events of stream feed the read models.
func projected(stream string) bool {
	return strings.HasPrefix(stream, "run-") || strings.HasPrefix(stream, "user-")
}

// ApplyBatch applies events (which must follow the checkpoint, in order) in
// one transaction with the new checkpoint. Events at or before the
// checkpoint are skipped, so a batch delivered twice changes nothing.
func (s *Store) ApplyBatch(ctx context.Context, batch []eventstore.Event) error {
	return s.applyDecoded(ctx, decodeBatch(batch))
}

func (s *Store) applyDecoded(ctx context.Context, batch []decodedEvent) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin read-model batch: %w", err)
	}
	defer tx.Rollback()
	// Another process sharing the file may have applied events since: the
	// checkpoint in the database, not ours, says where to start.
	var start int64
	if err := tx.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE name = ?`, checkpointName).Scan(&start); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read projection checkpoint: %w", err)
	}
	if start != s.Position() {
		s.dropCaches()
		s.usersGen.Add(1)
		s.advance(start, nil)
	}
	b := &batchWriter{s: s, tx: tx, touched: map[string]*domain.Run{}, refs: map[string][]string{}, hints: map[string]hint{}, partial: map[string]bool{}, open: map[runLog]int{}}
	defer b.close()
	last := start
	for _, d := range batch {
		if d.ev.Position <= start {
			continue
		}
		last = d.ev.Position
		if err := b.apply(ctx, d); err != nil {
			s.dropCaches() // the caches may hold uncommitted states
			return err
		}
	}
	if last == start {
		return nil
	}
	if err := b.finish(ctx); err != nil {
		s.dropCaches()
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoint (name, position) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET position = excluded.position`, checkpointName, last); err != nil {
		s.dropCaches()
		return fmt.Errorf("write read-model checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		s.dropCaches()
		return fmt.Errorf("commit read-model batch: %w", err)
	}
	s.ckpt.Wake()
	if b.tokensChanged {
		// After the commit: a token cache that reads the generation before
		// it queries the users cannot keep what it read before this batch.
		s.usersGen.Add(1)
	}
	maps.Copy(s.cache, b.states)
	if len(s.cache) > maxCachedStates {
		// The states are read again as needed; a bound keeps a rebuild of
		// a very large log from holding every run in memory.
		s.dropCaches()
	}
	s.advance(last, b.touched)
	return nil
}

// dropCaches forgets the cached run states and log line numbers; they are
// read again from the database when needed.
func (s *Store) dropCaches() {
	s.cache = map[string][]byte{}
	s.seqs = map[string]*logSeqs{}
}

// advance records a new position, wakes WaitFor callers and tells
// subscribers which runs changed.
func (s *Store) advance(pos int64, touched map[string]*domain.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos > s.position.Load() {
		s.position.Store(pos)
	}
	for len(s.waiters) > 0 && s.waiters[0].pos <= s.position.Load() {
		close(heap.Pop(&s.waiters).(*waiter).ch)
	}
	for name := range touched {
		for _, ch := range s.subs {
			select {
			case ch <- Change{Run: name, Position: pos}:
			default:
			}
		}
	}
}

// batchWriter applies one batch of events in a transaction. Run states are
// folded in memory and written once per batch; log lines are buffered for
// the batch and inserted in key order, many rows per statement.
type batchWriter struct {
	s       *Store
	tx      *sql.Tx
	touched map[string]*domain.Run
	// states are the touched runs' states as finish encoded them, for the
	// store's cache once the batch is committed.
	states map[string][]byte
	// refs are the artifacts each touched run used before the batch: those
	// artifact_refs holds for it.
	refs map[string][]string
	// hints are the encoded states the hints gave for runs, as of the
	// event they were taken at: finish stores them as they are unless
	// later events of the batch changed the run.
	hints map[string]hint
	// partial are the runs whose state in touched holds only the leading
	// fields (statecodec.DecodeSharedStateHead) of their hinted state, after an
	// event that left their artifacts as they were: finish needs no more
	// to write their rows. A later event of the run in the batch decodes
	// the whole state first (whole).
	partial map[string]bool
	// chunks are the lines not yet inserted, a chunk per log of a run:
	// within a batch a log's lines are numbered one after the other, so
	// the lines of its events join into one row (fewer rows to write and
	// to read). open finds a log's chunk.
	chunks []logChunk
	open   map[runLog]int
	// tokensChanged: the batch revoked or rotated a token.
	tokensChanged bool
	stmts         map[string]*sql.Stmt
}

type runLog struct{ run, log string }

// hint is a run's state as the hints gave it, at its version.
type hint struct {
	state   []byte
	version int64
	// rec is the event the state follows, kept for a partial run (see
	// whole).
	rec domain.Recorded
}

// logChunk is lines first .. first+n-1 of one log of a run: the lines of
// the log events in parts, one after the other.
type logChunk struct {
	runLog
	first, n int64
	parts    [][]string
}

// chunksPerInsert is how many log chunks one INSERT writes: 5 parameters
// each, well under SQLite's limit on parameters.
const chunksPerInsert = 100

func (b *batchWriter) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := b.stmts[query]; ok {
		return st, nil
	}
	prepared, err := b.s.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	// Bound to the batch's transaction: prepared again only on a
	// connection that has not prepared it yet.
	st := b.tx.StmtContext(ctx, prepared)
	if b.stmts == nil {
		b.stmts = map[string]*sql.Stmt{}
	}
	b.stmts[query] = st
	return st, nil
}

// prepare returns query prepared on the read-model database.
func (s *Store) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if st, ok := s.prepared[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare read-model statement: %w", err)
	}
	if s.prepared == nil {
		s.prepared = map[string]*sql.Stmt{}
	}
	s.prepared[query] = st
	return st, nil
}

func (b *batchWriter) close() {
	for _, st := range b.stmts {
		st.Close() // the transaction's binding, not the prepared statement
	}
}

func (b *batchWriter) exec(ctx context.Context, query string, args ...any) error {
	st, err := b.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

func (b *batchWriter) apply(ctx context.Context, d decodedEvent) error {
	ev := d.ev
	if !projected(ev.Stream) {
		return nil
	}
	if d.err != nil {
		return fmt.Errorf("project %s: %w", ev.Stream, d.err)
	}
	rec := d.rec
	if strings.HasPrefix(ev.Stream, "user-") {
		return b.applyUser(ctx, strings.TrimPrefix(ev.Stream, "user-"), rec)
	}
	name := strings.TrimPrefix(ev.Stream, "run-")
	_, created := rec.Event.(domain.RunCreated)
	r, ok := b.touched[name]
	if ok && b.partial[name] {
		var err error
		if r, err = b.whole(ctx, name); err != nil {
			return err
		}
	}
	applied := false
	if !ok && !created {
		var err error
		if r, err = b.hinted(ctx, name, ev.Version, ev.ID, rec); err != nil {
			return err
		}
		applied = r != nil
	}
	if r == nil {
		var err error
		if r, err = b.loadState(ctx, name); err != nil {
			return err
		}
		b.touched[name] = r
		if !r.Deleted { // a deleted run's references went with its row
			b.refs[name] = referencedDigests(r)
		}
	}
	if created && r.Deleted {
		if err := b.clearLogs(ctx, name); err != nil {
			return fmt.Errorf("clear logs of re-created run %s: %w", name, err)
		}
	}
	if !applied {
		r.Apply(rec)
	}
	if lw, ok := rec.Event.(domain.LogWritten); ok {
		if err := b.appendLines(ctx, name, lw); err != nil {
			return err
		}
	}
	return nil
}

// StateHints hands the projector, when it has it in memory, the state of a
// run right after a given event: app.Service's command cache, which holds
// the state it has just appended. The projector then need not read and
// decode the run's read model; the state is the same, since both are
// Apply over the same stored events.
type StateHints interface {
	// CachedState returns the state of run name right after its event
	// eventID, which the store holds at version, in statecodec.EncodeState's
	// form; the bytes must never change.
	CachedState(name string, version int64, eventID string) ([]byte, bool)
}

// hinted returns the state of run name after its event version (whose ID
// is id) from the store's hints, when the projector does not hold the run
// already and the hints have exactly that state (nil otherwise). The
// artifacts it used before come from artifact_refs. After an event that
// left the run's artifacts as they were, only the state's leading fields
// are decoded (see partial).
func (b *batchWriter) hinted(ctx context.Context, name string, version int64, id string, rec domain.Recorded) (*domain.Run, error) {
	if b.s.Hints == nil {
		return nil, nil
	}
	if _, ok := b.s.cache[name]; ok {
		return nil, nil
	}
	state, ok := b.s.Hints.CachedState(name, version, id)
	if !ok {
		return nil, nil
	}
	r := &domain.Run{}
	partial := domain.LeavesArtifacts(rec.Event)
	decode := statecodec.DecodeSharedState
	if partial {
		decode = statecodec.DecodeSharedStateHead
	}
	if err := decode(state, r); err != nil || r.Version != version || partial && r.Deleted {
		return nil, nil // not a state to trust: read the read model instead
	}
	if partial {
		b.partial[name] = true
	} else {
		refs, err := b.artifactRefs(ctx, name)
		if err != nil {
			return nil, err
		}
		b.refs[name] = refs
	}
	b.touched[name] = r
	b.hints[name] = hint{state: state, version: version, rec: rec}
	b.s.hintsUsed.Add(1)
	return r, nil
}

// artifactRefs returns the artifacts artifact_refs holds for run name.
func (b *batchWriter) artifactRefs(ctx context.Context, name string) ([]string, error) {
	st, err := b.stmt(ctx, `SELECT digest FROM artifact_refs WHERE run = ?`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read artifact references of run %s: %w", name, err)
	}
	var refs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read artifact references of run %s: %w", name, err)
		}
		refs = append(refs, d)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read artifact references of run %s: %w", name, err)
	}
	return refs, nil
}

// HintsUsed is how many times the projector took a run's state from Hints.
func (s *Store) HintsUsed() int64 { return s.hintsUsed.Load() }

// whole decodes the whole hinted state of a partial run, for a later
// event of the batch; its artifacts are those it used before the batch,
// since the hinted event left them as they were. A state that does not
// decode (which EncodeState's never fails to) is not trusted: the run's
// read model, before the batch, is read and the hinted event applied to
// it, as without hints.
func (b *batchWriter) whole(ctx context.Context, name string) (*domain.Run, error) {
	h := b.hints[name]
	delete(b.partial, name)
	delete(b.hints, name)
	r := &domain.Run{}
	if err := statecodec.DecodeSharedState(h.state, r); err != nil {
		if r, err = b.loadState(ctx, name); err != nil {
			return nil, err
		}
		r.Apply(h.rec)
	}
	b.touched[name] = r
	b.refs[name] = referencedDigests(r) // as before h.rec, which left them
	return r, nil
}

func (b *batchWriter) loadState(ctx context.Context, name string) (*domain.Run, error) {
	if state, ok := b.s.cache[name]; ok {
		r := &domain.Run{}
		if err := statecodec.DecodeSharedState(state, r); err != nil {
			return nil, fmt.Errorf("decode cached state of run %s: %w", name, err)
		}
		return r, nil
	}
	st, err := b.stmt(ctx, `SELECT state FROM runs WHERE name = ?`)
	if err != nil {
		return nil, err
	}
	var state []byte
	err = st.QueryRowContext(ctx, name).Scan(&state)
	r := &domain.Run{}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// A run without a row has no log lines either.
		b.s.seqs[name] = &logSeqs{last: map[string]int64{}, complete: true}
	case err != nil:
		return nil, fmt.Errorf("read run %s read model: %w", name, err)
	default:
		if err := statecodec.DecodeSharedState(state, r); err != nil {
			return nil, fmt.Errorf("decode run %s read model: %w", name, err)
		}
	}
	return r, nil
}

// clearLogs deletes every log line of run, buffered ones included.
func (b *batchWriter) clearLogs(ctx context.Context, run string) error {
	kept := b.chunks[:0]
	for _, c := range b.chunks {
		if c.run != run {
			kept = append(kept, c)
		}
	}
	b.chunks = kept
	clear(b.open)
	for i, c := range b.chunks {
		b.open[c.runLog] = i
	}
	b.s.seqs[run] = &logSeqs{last: map[string]int64{}, complete: true}
	return b.exec(ctx, `DELETE FROM log_chunks WHERE run = ?`, run)
}

func (b *batchWriter) appendLines(ctx context.Context, run string, lw domain.LogWritten) error {
	if len(lw.Lines) == 0 {
		return nil
	}
	logs := b.s.seqs[run]
	if logs == nil {
		logs = &logSeqs{last: map[string]int64{}}
		b.s.seqs[run] = logs
	}
	key := runLog{run: run, log: lw.Log}
	if i, ok := b.open[key]; ok {
		// Lines of this log were buffered in this batch: these follow them.
		c := &b.chunks[i]
		c.parts = append(c.parts, lw.Lines)
		c.n += int64(len(lw.Lines))
		logs.last[lw.Log] = c.first + c.n - 1
		return nil
	}
	last, ok := logs.last[lw.Log]
	if !ok && !logs.complete {
		st, err := b.stmt(ctx, `SELECT COALESCE(MAX(first + n - 1), 0) FROM log_chunks WHERE run = ? AND log = ?`)
		if err != nil {
			return err
		}
		if err := st.QueryRowContext(ctx, run, lw.Log).Scan(&last); err != nil {
			return fmt.Errorf("read log %s of run %s: %w", lw.Log, run, err)
		}
	}
	b.open[key] = len(b.chunks)
	b.chunks = append(b.chunks, logChunk{runLog: key, first: last + 1, n: int64(len(lw.Lines)), parts: [][]string{lw.Lines}})
	logs.last[lw.Log] = last + int64(len(lw.Lines))
	return nil
}

// flushLines inserts the buffered log chunks, many per statement, in key
// order: the chunks of a run go to the same pages one after the other
// instead of to every active run's pages in turn. (OR FAIL: a failing
// statement fails the batch, so SQLite needs no statement journal to undo
// just that statement.)
func (b *batchWriter) flushLines(ctx context.Context) error {
	// A chunk per log: run and log order them.
	slices.SortFunc(b.chunks, func(x, y logChunk) int {
		if c := strings.Compare(x.run, y.run); c != 0 {
			return c
		}
		return strings.Compare(x.log, y.log)
	})
	for len(b.chunks) > 0 {
		n := min(len(b.chunks), chunksPerInsert)
		query := `INSERT OR FAIL INTO log_chunks (run, log, first, n, lines) VALUES (?, ?, ?, ?, ?)` + strings.Repeat(`, (?, ?, ?, ?, ?)`, n-1)
		args := make([]any, 0, 5*n)
		for _, c := range b.chunks[:n] {
			lines, err := linesJSON(c.parts...)
			if err != nil {
				return fmt.Errorf("encode log %s of run %s: %w", c.log, c.run, err)
			}
			args = append(args, c.run, c.log, c.first, c.n, lines)
		}
		if err := b.exec(ctx, query, args...); err != nil {
			c := b.chunks[0]
			return fmt.Errorf("write log %s of run %s: %w", c.log, c.run, err)
		}
		b.chunks = b.chunks[n:]
	}
	b.chunks = nil
	clear(b.open)
	return nil
}

// linesJSON returns json.Marshal of the lines of parts, one after the
// other, as a string ("null" for just a nil slice, as json.Marshal gives
// for one). Log lines are plain ASCII text as a rule, which it quotes as
// they are; the others go to json.Marshal one by one (encoding/json writes
// a []string's elements as it writes strings).
func linesJSON(parts ...[]string) (string, error) {
	if len(parts) == 1 && parts[0] == nil {
		return "null", nil
	}
	size := 2
	for _, lines := range parts {
		for _, l := range lines {
			size += len(l) + 3
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteByte('[')
	for _, lines := range parts {
		for _, l := range lines {
			if sb.Len() > 1 {
				sb.WriteByte(',')
			}
			if !plainJSON(l) {
				b, err := json.Marshal(l)
				if err != nil {
					return "", err
				}
				sb.Write(b)
				continue
			}
			sb.WriteByte('"')
			sb.WriteString(l)
			sb.WriteByte('"')
		}
	}
	sb.WriteByte(']')
	return sb.String(), nil
}

// plainJSON reports whether encoding/json writes s quoted as it is:
// printable ASCII without the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte tells the bytes plainJSON accepts.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// finish writes the buffered lines and the states of the runs the batch
// touched.
func (b *batchWriter) finish(ctx context.Context) error {
	if err := b.flushLines(ctx); err != nil {
		return err
	}
	// In key order, the rows of runs one after another.
	b.states = make(map[string][]byte, len(b.touched))
	for _, name := range slices.Sorted(maps.Keys(b.touched)) {
		r := b.touched[name]
		h, ok := b.hints[name]
		state := h.state
		if !ok || h.version != r.Version {
			var err error
			if state, err = statecodec.EncodeState(*r); err != nil {
				return fmt.Errorf("encode run %s read model: %w", name, err)
			}
		}
		// A deleted run's state has no row, but the cache keeps it (so
		// that re-creating the run clears its logs) as before.
		b.states[name] = state
		if r.Deleted {
			if err := b.exec(ctx, `DELETE FROM runs WHERE name = ?`, name); err != nil {
				return fmt.Errorf("delete run %s from read models: %w", name, err)
			}
			if err := b.clearLogs(ctx, name); err != nil {
				return fmt.Errorf("delete logs of run %s from read models: %w", name, err)
			}
			if err := b.exec(ctx, `DELETE FROM artifact_refs WHERE run = ?`, name); err != nil {
				return fmt.Errorf("delete artifact references of run %s: %w", name, err)
			}
			continue
		}
		if !b.partial[name] { // a partial run's artifacts are as they were
			if err := b.updateRefs(ctx, name, r); err != nil {
				return fmt.Errorf("update artifact references of run %s: %w", name, err)
			}
		}
		if err := b.exec(ctx, `INSERT INTO runs (name, owner, status, updated, state) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, status = excluded.status, updated = excluded.updated, state = excluded.state`,
			name, r.Owner, string(r.Status), updatedText(r.Updated), state); err != nil {
			return fmt.Errorf("write run %s read model: %w", name, err)
		}
	}
	return nil
}

// updateRefs brings run's rows of artifact_refs from the artifacts it used
// before the batch to those r uses, touching only the rows that change
// (the digests are random keys: rewriting every row of every touched run
// dirtied pages all over the table), many rows per statement.
func (b *batchWriter) updateRefs(ctx context.Context, run string, r *domain.Run) error {
	now := referencedDigests(r)
	if slices.Equal(b.refs[run], now) {
		return nil // most events change no artifact: nothing to compare
	}
	before, after := digestSet(b.refs[run]), digestSet(now)
	var gone, added []any
	for _, d := range slices.Sorted(maps.Keys(before)) {
		if !after[d] {
			gone = append(gone, d)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(after)) {
		if !before[d] {
			added = append(added, d)
		}
	}
	for chunk := range slices.Chunk(gone, refsPerStatement) {
		query := `DELETE FROM artifact_refs WHERE run = ? AND digest IN (?` + strings.Repeat(`, ?`, len(chunk)-1) + `)`
		if err := b.exec(ctx, query, append([]any{run}, chunk...)...); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(added, refsPerStatement) {
		query := `INSERT OR IGNORE INTO artifact_refs (digest, run) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, len(chunk)-1)
		args := make([]any, 0, 2*len(chunk))
		for _, d := range chunk {
			args = append(args, d, run)
		}
		if err := b.exec(ctx, query, args...); err != nil {
			return err
		}
	}
	return nil
}

func digestSet(digests []string) map[string]bool {
	set := make(map[string]bool, len(digests))
	for _, d := range digests {
		set[d] = true
	}
	return set
}

// refsPerStatement bounds the rows of artifact_refs one statement writes,
// well under SQLite's limit on parameters.
const refsPerStatement = 200

// ListRuns returns every run, most recently changed first.
func (s *Store) ListRuns(ctx context.Context) ([]RunSummary, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state FROM runs ORDER BY updated DESC, name`)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	out := []RunSummary{}
	for rows.Next() {
		var state []byte
		if err := rows.Scan(&state); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		var r domain.Run
		if err := statecodec.DecodeState(state, &r); err != nil {
			return nil, fmt.Errorf("list runs: decode: %w", err)
		}
		out = append(out, Summary(r))
	}
	return out, rows.Err()
}

// GetRunState returns the projected state of a run.
func (s *Store) GetRunState(ctx context.Context, name string) (domain.Run, error) {
	var state []byte
	err := s.db.QueryRowContext(ctx, `SELECT state FROM runs WHERE name = ?`, name).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Run{}, fmt.Errorf("run %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return domain.Run{}, fmt.Errorf("read run %s: %w", name, err)
	}
	var r domain.Run
	if err := statecodec.DecodeState(state, &r); err != nil {
		return domain.Run{}, fmt.Errorf("decode run %s: %w", name, err)
	}
	return r, nil
}

// GetRun returns the detail model of a run.
func (s *Store) GetRun(ctx context.Context, name string) (RunDetail, error) {
	r, err := s.GetRunState(ctx, name)
	if err != nil {
		return RunDetail{}, err
	}
	return View(r), nil
}

// LogLines returns the lines of one log of a run, from line number from
// (1-based) on.
func (s *Store) LogLines(ctx context.Context, run, log string, from int64) ([]string, error) {
	r, err := s.GetRunState(ctx, run)
	if err != nil {
		return nil, err
	}
	found := false
	for _, l := range r.Logs {
		found = found || l.Name == log
	}
	if !found {
		return nil, fmt.Errorf("log %q of run %q: %w", log, run, ErrNotFound)
	}
	return s.LogTail(ctx, run, log, from)
}

// LogTail returns the lines of one log of a run from line number from
// (1-based) on, without reading the run's state: a log the run does not
// have (yet) has no lines. It costs the lines it returns, not the run or
// the log before from, so that a live stream may ask on every change.
func (s *Store) LogTail(ctx context.Context, run, log string, from int64) ([]string, error) {
	// The chunk that holds line from is the last to start at or before it;
	// both lookups follow the primary key.
	rows, err := s.db.QueryContext(ctx, `SELECT first, lines FROM log_chunks WHERE run = ?1 AND log = ?2 AND first >= COALESCE(
		(SELECT MAX(first) FROM log_chunks WHERE run = ?1 AND log = ?2 AND first <= ?3), 0) ORDER BY first`, run, log, from)
	if err != nil {
		return nil, fmt.Errorf("read log %s of run %s: %w", log, run, err)
	}
	defer rows.Close()
	lines := []string{}
	for rows.Next() {
		var first int64
		var text []byte
		if err := rows.Scan(&first, &text); err != nil {
			return nil, fmt.Errorf("read log %s of run %s: %w", log, run, err)
		}
		var chunk []string
		if err := json.Unmarshal(text, &chunk); err != nil {
			return nil, fmt.Errorf("decode log %s of run %s: %w", log, run, err)
		}
		if skip := from - first; skip > 0 {
			chunk = chunk[min(skip, int64(len(chunk))):]
		}
		lines = append(lines, chunk...)
	}
	return lines, rows.Err()
}

// revokedTokenHash is what the users table holds for a revoked token: the
// column is unique and not null, and no token hashes to it (hashes are
// hex).
func revokedTokenHash(user string) string { return "revoked:" + user }

// applyUser projects an event of a user's stream.
func (b *batchWriter) applyUser(ctx context.Context, name string, rec domain.Recorded) error {
	var err error
	switch e := rec.Event.(type) {
	case domain.UserCreated:
		err = b.exec(ctx, `INSERT INTO users (name, admin, token_hash) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET admin = excluded.admin, token_hash = excluded.token_hash`, e.Name, e.Admin, e.TokenHash)
	case domain.UserTokenRevoked:
		b.tokensChanged = true
		err = b.exec(ctx, `UPDATE users SET token_hash = ? WHERE name = ?`, revokedTokenHash(name), name)
	case domain.UserTokenRotated:
		b.tokensChanged = true
		err = b.exec(ctx, `UPDATE users SET token_hash = ? WHERE name = ?`, e.TokenHash, name)
	case domain.SessionEnded:
		// Records whose session has expired anyway are no longer needed;
		// the event's time, not the clock, keeps a rebuild identical.
		if err = b.exec(ctx, `DELETE FROM ended_sessions WHERE until < ?`, rec.Time.Unix()); err == nil {
			err = b.exec(ctx, `INSERT INTO ended_sessions (id, until) VALUES (?, ?)
				ON CONFLICT(id) DO UPDATE SET until = excluded.until`, e.Session, e.Until.Unix())
		}
	}
	if err != nil {
		return fmt.Errorf("project user %s: %w", name, err)
	}
	return nil
}

// UsersGeneration returns a value that changes whenever a user's token may
// have changed in the read models (see Store.usersGen). A cache of resolved
// tokens reads it before resolving one and drops what it holds when it
// changes.
func (s *Store) UsersGeneration() int64 { return s.usersGen.Load() }

// SessionEnded reports whether the web session id was signed out of.
func (s *Store) SessionEnded(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ended_sessions WHERE id = ?`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up session: %w", err)
	}
	return n > 0, nil
}

// UserByTokenHash finds the user holding a token.
func (s *Store) UserByTokenHash(ctx context.Context, hash string) (domain.User, error) {
	var u domain.User
	err := s.db.QueryRowContext(ctx, `SELECT name, admin, token_hash FROM users WHERE token_hash = ?`, hash).Scan(&u.Name, &u.Admin, &u.TokenHash)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.User{}, ErrNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("look up token: %w", err)
	}
	return u, nil
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// Reset empties the read models and their checkpoint, for a rebuild.
func (s *Store) Reset(ctx context.Context) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	for _, q := range []string{"DELETE FROM runs", "DELETE FROM log_chunks", "DELETE FROM users", "DELETE FROM ended_sessions", "DELETE FROM artifact_refs", "DELETE FROM checkpoint WHERE name = '" + checkpointName + "'"} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset read models: %w", err)
		}
	}
	s.mu.Lock()
	s.position.Store(0)
	s.mu.Unlock()
	s.dropCaches()
	return nil
}

// LoadCheckpoint returns a named position kept beside the read models (the
// relay's, for example); 0 when none was saved.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// SaveCheckpoint stores a named position.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	if name == checkpointName {
		return fmt.Errorf("save checkpoint: %q is reserved for the read models", name)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO checkpoint (name, position) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET position = excluded.position`, name, position); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return nil
}

// ListRunStates returns the projected state of every run.
func (s *Store) ListRunStates(ctx context.Context) ([]domain.Run, error) {
	return s.runStates(ctx, `SELECT state FROM runs ORDER BY name`)
}

// PendingRunStates returns the states of the runs with work pending (a job
// queued or running, a restore, a deletion), from an index: the workers'
// periodic recovery asks for them every minute, and reading every run's
// state for that would cost more than the recovery.
func (s *Store) PendingRunStates(ctx context.Context) ([]domain.Run, error) {
	// The literals match the partial index runs_busy.
	return s.runStates(ctx, `SELECT state FROM runs WHERE status IN ('Queued', 'Running', 'Restoring', 'Deleting') ORDER BY name`)
}

func (s *Store) runStates(ctx context.Context, query string) ([]domain.Run, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("list run states: %w", err)
	}
	defer rows.Close()
	var out []domain.Run
	for rows.Next() {
		var state []byte
		if err := rows.Scan(&state); err != nil {
			return nil, fmt.Errorf("list run states: %w", err)
		}
		var r domain.Run
		if err := statecodec.DecodeState(state, &r); err != nil {
			return nil, fmt.Errorf("list run states: decode: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ArtifactUse reports which of digests a run other than except uses (in its
// products or its backup), and whether any run has a processing job queued
// or running. It reads an index, not the runs' states.
func (s *Store) ArtifactUse(ctx context.Context, digests []string, except string) (used map[string]bool, pendingJob bool, err error) {
	// The literals match the partial index runs_pending (bound parameters
	// would not let SQLite use it).
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE status IN ('Queued', 'Running'))`).Scan(&pendingJob); err != nil {
		return nil, false, fmt.Errorf("look for pending jobs: %w", err)
	}
	used = map[string]bool{}
	for _, d := range digests {
		// EXISTS stops at the first other run: a product shared by many
		// runs must not cost a count of them all.
		var inUse bool
		if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM artifact_refs WHERE digest = ? AND run != ?)`, d, except).Scan(&inUse); err != nil {
			return nil, false, fmt.Errorf("look up uses of %s: %w", d, err)
		}
		if inUse {
			used[d] = true
		}
	}
	return used, pendingJob, nil
}
