package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/projections"
)

// writeLog appends one log event per entry of flushes, of that many lines,
// and returns every line written.
func writeLog(t *testing.T, svc *command.Service, run, log string, flushes ...int) []string {
	t.Helper()
	var all []string
	for _, n := range flushes {
		lw := domain.LogWritten{Log: log, Kind: domain.LogRun}
		for range n {
			line := fmt.Sprintf("line %d of %s", len(all)+1, log)
			lw.Lines = append(lw.Lines, line)
			all = append(all, line)
		}
		if _, err := svc.ExecRun(context.Background(), run, "test", func(*domain.Run) ([]domain.Event, error) {
			return []domain.Event{lw}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

func TestLogLinesFromEveryLine(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "one", Config: testConfig("a"), Actor: domain.Actor{Name: "alice"}}); err != nil {
		t.Fatal(err)
	}
	all := writeLog(t, svc, "one", "2024-01-01-00-00-00_log.txt", 3, 1, 4)
	path := filepath.Join(t.TempDir(), "read.db")
	read := openRead(t, path)
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	// The three events, caught up in one batch, are one row.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM log_chunks`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d rows of log lines after one batch of three log events, want 1", rows)
	}
	for from := int64(1); from <= int64(len(all))+2; from++ {
		got, err := read.LogLines(ctx, "one", "2024-01-01-00-00-00_log.txt", from)
		if err != nil {
			t.Fatal(err)
		}
		want := all[min(from-1, int64(len(all))):]
		if !slices.Equal(got, want) {
			t.Errorf("LogLines from %d = %q, want %q", from, got, want)
		}
	}
}

// TestLogNumberingAcrossBatchesAndRecreation checks the line numbers the
// projector keeps in memory against the database: across batches, across a
// second projector on the same file, and after the run is deleted and
// created again (its old lines are gone, numbering restarts).
func TestLogNumberingAcrossBatchesAndRecreation(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	alice := domain.Actor{Name: "alice"}
	const log = "2024-01-01-00-00-00_log.txt"
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "one", Config: testConfig("a"), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "read.db")
	a, b := openRead(t, path), openRead(t, path)
	first := writeLog(t, svc, "one", log, 2)
	if err := a.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	second := writeLog(t, svc, "one", log, 2)
	if err := b.CatchUp(ctx, es); err != nil { // b never saw the first lines
		t.Fatal(err)
	}
	third := writeLog(t, svc, "one", log, 1)
	if err := a.CatchUp(ctx, es); err != nil { // a's numbering is stale
		t.Fatal(err)
	}
	want := slices.Concat(first, second, third)
	for from := range int64(len(want)) {
		if got, _ := a.LogLines(ctx, "one", log, from+1); !slices.Equal(got, want[from:]) {
			t.Fatalf("lines from %d = %q, want %q", from+1, got, want[from:])
		}
	}

	if _, err := svc.RequestDeletion(ctx, "one", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ExecRun(ctx, "one", "test", func(r *domain.Run) ([]domain.Event, error) { return r.FinishDeletion(), nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "one", Config: testConfig("a"), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	again := writeLog(t, svc, "one", log, 3)
	if err := a.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	for from := range int64(len(again)) {
		if got, _ := a.LogLines(ctx, "one", log, from+1); !slices.Equal(got, again[from:]) {
			t.Fatalf("lines of the re-created run from %d = %q, want %q", from+1, got, again[from:])
		}
	}
}

// TestOpenConvertsPerLineLogs opens a read-model file of the first schema,
// which kept a row per log line, and finds its logs whole and continued.
func TestOpenConvertsPerLineLogs(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "one", Config: testConfig("a"), Actor: domain.Actor{Name: "alice"}}); err != nil {
		t.Fatal(err)
	}
	const log = "2024-01-01-00-00-00_log.txt"
	old := writeLog(t, svc, "one", log, 2, 1)
	r, err := svc.LoadRun(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := es.HeadPosition(ctx)

	path := filepath.Join(t.TempDir(), "read.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE checkpoint (name TEXT PRIMARY KEY, position INTEGER NOT NULL)`,
		`CREATE TABLE runs (name TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, updated TEXT NOT NULL, state BLOB NOT NULL)`,
		`CREATE TABLE log_lines (run TEXT NOT NULL, log TEXT NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL, PRIMARY KEY (run, log, seq))`,
		`CREATE TABLE users (name TEXT PRIMARY KEY, admin INTEGER NOT NULL, token_hash TEXT NOT NULL UNIQUE)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO checkpoint VALUES ('read-models', ?), ('relay:gochannel', 7)`, head); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO runs VALUES ('one', 'alice', ?, ?, ?)`, string(r.Status), r.Updated.Format("2006-01-02T15:04:05.999999999Z07:00"), state); err != nil {
		t.Fatal(err)
	}
	for i, line := range old {
		if _, err := db.ExecContext(ctx, `INSERT INTO log_lines VALUES ('one', ?, ?, ?)`, log, i+1, line); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	read := openRead(t, path)
	if read.Position() != head {
		t.Fatalf("position after conversion %d, want %d", read.Position(), head)
	}
	if got, err := read.LogLines(ctx, "one", log, 1); err != nil || !slices.Equal(got, old) {
		t.Fatalf("converted lines = %q, %v; want %q", got, err, old)
	}
	// The first schema's plain state is read as it is.
	if got, err := read.GetRunState(ctx, "one"); err != nil || !reflect.DeepEqual(got.Config, r.Config) || got.Version != r.Version {
		t.Fatalf("converted state = %+v, %v; want %+v", got, err, r)
	}
	if pos, _ := read.LoadCheckpoint(ctx, "relay:gochannel"); pos != 7 {
		t.Fatalf("relay checkpoint after conversion = %d, want 7", pos)
	}
	more := writeLog(t, svc, "one", log, 2)
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if got, _ := read.LogLines(ctx, "one", log, 1); !slices.Equal(got, slices.Concat(old, more)) {
		t.Fatalf("lines after conversion and more = %q", got)
	}
	if err := read.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening again finds the current schema and changes nothing.
	again, err := projections.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, _ := again.LogLines(ctx, "one", log, 1); !slices.Equal(got, slices.Concat(old, more)) {
		t.Fatalf("lines after reopening = %q", got)
	}
}

// TestLogTailMatchesLogLines reads a log of several chunks from every line
// with LogTail, which skips the run's state: it gives what LogLines gives,
// and nothing (no error) for a log the run does not have.
func TestLogTailMatchesLogLines(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "one", Config: testConfig("a"), Actor: domain.Actor{Name: "alice"}}); err != nil {
		t.Fatal(err)
	}
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	const log = "2024-01-01-00-00-00_log.txt"
	var all []string
	// One batch per flush: one chunk each.
	for _, n := range []int{3, 1, 4, 2} {
		lw := domain.LogWritten{Log: log, Kind: domain.LogRun}
		for range n {
			lw.Lines = append(lw.Lines, fmt.Sprintf("line %d", len(all)+1))
			all = append(all, lw.Lines[len(lw.Lines)-1])
		}
		if _, err := svc.ExecRun(ctx, "one", "test", func(*domain.Run) ([]domain.Event, error) { return []domain.Event{lw}, nil }); err != nil {
			t.Fatal(err)
		}
		if err := read.CatchUp(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	for from := int64(1); from <= int64(len(all))+2; from++ {
		got, err := read.LogTail(ctx, "one", log, from)
		if err != nil {
			t.Fatal(err)
		}
		want := all[min(from-1, int64(len(all))):]
		if !slices.Equal(got, want) {
			t.Errorf("LogTail from %d = %q, want %q", from, got, want)
		}
		viaState, err := read.LogLines(ctx, "one", log, from)
		if err != nil || !slices.Equal(viaState, got) {
			t.Errorf("LogLines from %d = %q (%v), LogTail %q", from, viaState, err, got)
		}
	}
	if got, err := read.LogTail(ctx, "one", "nope.txt", 1); err != nil || len(got) != 0 {
		t.Errorf("LogTail of a log the run does not have: %q, %v; want none", got, err)
	}
}
