package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
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
CREATE TABLE IF NOT EXISTS log_lines (
	run TEXT NOT NULL,
	log TEXT NOT NULL,
	seq INTEGER NOT NULL,
	line TEXT NOT NULL,
	PRIMARY KEY (run, log, seq)
);
CREATE TABLE IF NOT EXISTS users (
	name TEXT PRIMARY KEY,
	admin INTEGER NOT NULL,
	token_hash TEXT NOT NULL UNIQUE
);
`

const checkpointName = "read-models"

// Change tells subscribers that a run's read model changed.
type Change struct {
	Run      string
	Position int64
}

// Store is the read-model database and its projector.
type Store struct {
	db   *sql.DB
	path string

	mu       sync.Mutex
	position int64
	waiters  chan struct{} // closed and replaced whenever position advances
	subs     map[int]chan Change
	nextSub  int
	cache    map[string]*domain.Run
	applyMu  sync.Mutex // one projector at a time
}

// Open opens (creating if needed) the read-model database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	// _txlock=immediate: a batch reads the checkpoint and writes in one
	// transaction, which must hold the write lock from its start when two
	// processes share the file.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open read models %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create read-model schema in %s: %w", path, err)
	}
	s := &Store{db: db, path: path, waiters: make(chan struct{}), subs: map[int]chan Change{}, cache: map[string]*domain.Run{}}
	if err := db.QueryRowContext(ctx, `SELECT position FROM checkpoint WHERE name = ?`, checkpointName).Scan(&s.position); err != nil && !errors.Is(err, sql.ErrNoRows) {
		db.Close()
		return nil, fmt.Errorf("read projection checkpoint: %w", err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Position returns the global position the read models reflect.
func (s *Store) Position() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.position
}

// WaitFor blocks until the read models reflect global position pos, or ctx
// ends. Commands use it to give read-your-writes to their caller.
func (s *Store) WaitFor(ctx context.Context, pos int64) error {
	for {
		s.mu.Lock()
		if s.position >= pos {
			s.mu.Unlock()
			return nil
		}
		ch := s.waiters
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for read models to reach position %d: %w", pos, ctx.Err())
		}
	}
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

// CatchUp applies every event up to the store's current head and returns.
func (s *Store) CatchUp(ctx context.Context, es eventstore.Store) error {
	for {
		batch, err := es.ReadAll(ctx, s.Position(), 5000)
		if err != nil {
			return fmt.Errorf("catch up read models: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := s.ApplyBatch(ctx, batch); err != nil {
			return err
		}
	}
}

// ApplyBatch applies events (which must follow the checkpoint, in order) in
// one transaction with the new checkpoint. Events at or before the
// checkpoint are skipped, so a batch delivered twice changes nothing.
func (s *Store) ApplyBatch(ctx context.Context, batch []eventstore.Event) error {
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
		s.cache = map[string]*domain.Run{}
		s.advance(start, nil)
	}
	touched := map[string]*domain.Run{}
	last := start
	for _, ev := range batch {
		if ev.Position <= start {
			continue
		}
		last = ev.Position
		if err := s.apply(ctx, tx, ev, touched); err != nil {
			s.cache = map[string]*domain.Run{} // the cache may hold uncommitted states
			return err
		}
	}
	if last == start {
		return nil
	}
	for name, r := range touched {
		if r.Deleted {
			if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE name = ?`, name); err != nil {
				return fmt.Errorf("delete run %s from read models: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM log_lines WHERE run = ?`, name); err != nil {
				return fmt.Errorf("delete logs of run %s from read models: %w", name, err)
			}
			continue
		}
		state, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode run %s read model: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO runs (name, owner, status, updated, state) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, status = excluded.status, updated = excluded.updated, state = excluded.state`,
			name, r.Owner, string(r.Status), r.Updated.UTC().Format(time.RFC3339Nano), state); err != nil {
			return fmt.Errorf("write run %s read model: %w", name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoint (name, position) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET position = excluded.position`, checkpointName, last); err != nil {
		return fmt.Errorf("write read-model checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		s.cache = map[string]*domain.Run{}
		return fmt.Errorf("commit read-model batch: %w", err)
	}
	s.advance(last, touched)
	return nil
}

// advance records a new position, wakes WaitFor callers and tells
// subscribers which runs changed.
func (s *Store) advance(pos int64, touched map[string]*domain.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos > s.position {
		s.position = pos
	}
	close(s.waiters)
	s.waiters = make(chan struct{})
	for name := range touched {
		for _, ch := range s.subs {
			select {
			case ch <- Change{Run: name, Position: pos}:
			default:
			}
		}
	}
}

func (s *Store) apply(ctx context.Context, tx *sql.Tx, ev eventstore.Event, touched map[string]*domain.Run) error {
	switch {
	case strings.HasPrefix(ev.Stream, "user-"):
		rec, err := app.Recorded(ev)
		if err != nil {
			return fmt.Errorf("project %s: %w", ev.Stream, err)
		}
		if u, ok := rec.Event.(domain.UserCreated); ok {
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (name, admin, token_hash) VALUES (?, ?, ?)
				ON CONFLICT(name) DO UPDATE SET admin = excluded.admin, token_hash = excluded.token_hash`, u.Name, u.Admin, u.TokenHash); err != nil {
				return fmt.Errorf("project user %s: %w", u.Name, err)
			}
		}
		return nil
	case strings.HasPrefix(ev.Stream, "run-"):
	default:
		return nil
	}
	name := strings.TrimPrefix(ev.Stream, "run-")
	r, ok := touched[name]
	if !ok {
		var err error
		if r, err = s.loadState(ctx, tx, name); err != nil {
			return err
		}
		touched[name] = r
	}
	rec, err := app.Recorded(ev)
	if err != nil {
		return fmt.Errorf("project %s: %w", ev.Stream, err)
	}
	if _, created := rec.Event.(domain.RunCreated); created && r.Deleted {
		if _, err := tx.ExecContext(ctx, `DELETE FROM log_lines WHERE run = ?`, name); err != nil {
			return fmt.Errorf("clear logs of re-created run %s: %w", name, err)
		}
	}
	r.Apply(rec)
	if lw, ok := rec.Event.(domain.LogWritten); ok {
		if err := s.appendLines(ctx, tx, name, lw); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) loadState(ctx context.Context, tx *sql.Tx, name string) (*domain.Run, error) {
	if r, ok := s.cache[name]; ok {
		return r, nil
	}
	var state []byte
	err := tx.QueryRowContext(ctx, `SELECT state FROM runs WHERE name = ?`, name).Scan(&state)
	r := &domain.Run{}
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("read run %s read model: %w", name, err)
	default:
		if err := json.Unmarshal(state, r); err != nil {
			return nil, fmt.Errorf("decode run %s read model: %w", name, err)
		}
	}
	s.cache[name] = r
	return r, nil
}

func (s *Store) appendLines(ctx context.Context, tx *sql.Tx, run string, lw domain.LogWritten) error {
	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM log_lines WHERE run = ? AND log = ?`, run, lw.Log).Scan(&next); err != nil {
		return fmt.Errorf("read log %s of run %s: %w", lw.Log, run, err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO log_lines (run, log, seq, line) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("prepare log insert: %w", err)
	}
	defer stmt.Close()
	for _, line := range lw.Lines {
		next++
		if _, err := stmt.ExecContext(ctx, run, lw.Log, next, line); err != nil {
			return fmt.Errorf("write log %s of run %s: %w", lw.Log, run, err)
		}
	}
	return nil
}

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
		if err := json.Unmarshal(state, &r); err != nil {
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
	if err := json.Unmarshal(state, &r); err != nil {
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
	rows, err := s.db.QueryContext(ctx, `SELECT line FROM log_lines WHERE run = ? AND log = ? AND seq >= ? ORDER BY seq`, run, log, from)
	if err != nil {
		return nil, fmt.Errorf("read log %s of run %s: %w", log, run, err)
	}
	defer rows.Close()
	lines := []string{}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, fmt.Errorf("read log %s of run %s: %w", log, run, err)
		}
		lines = append(lines, l)
	}
	return lines, rows.Err()
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
	for _, q := range []string{"DELETE FROM runs", "DELETE FROM log_lines", "DELETE FROM users", "DELETE FROM checkpoint WHERE name = '" + checkpointName + "'"} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset read models: %w", err)
		}
	}
	s.mu.Lock()
	s.position = 0
	s.cache = map[string]*domain.Run{}
	s.mu.Unlock()
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
	rows, err := s.db.QueryContext(ctx, `SELECT state FROM runs ORDER BY name`)
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
		if err := json.Unmarshal(state, &r); err != nil {
			return nil, fmt.Errorf("list run states: decode: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
