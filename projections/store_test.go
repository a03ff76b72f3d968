package projections_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/projections"
)

func testConfig(images ...string) domain.RunConfig {
	c := domain.RunConfig{YAML: "inputs: ...", SettingsDigest: "d1"}
	for _, im := range images {
		c.Inputs.Images = append(c.Inputs.Images, im+".fits")
		c.Inputs.Selavy = append(c.Inputs.Selavy, im+".txt")
		c.Inputs.Noise = append(c.Inputs.Noise, im+".noise.fits")
	}
	return c
}

// seed writes a small history: a user, a run created, processed with log
// lines, and a second run.
func seed(t *testing.T, ctx context.Context, svc *command.Service) {
	t.Helper()
	if _, err := svc.CreateUser(ctx, "alice", false, "test"); err != nil {
		t.Fatal(err)
	}
	alice := domain.Actor{Name: "alice"}
	for _, name := range []string{"one", "two"} {
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: name, Config: testConfig("a", "b"), Actor: alice}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := svc.RequestProcessing(ctx, "one", true, false, alice)
	if err != nil {
		t.Fatal(err)
	}
	log := svc.NewRunLog("one", res.Run.Job.Log, domain.LogRun, true)
	log.Infof("first line")
	log.Debugf("second line")
	if err := log.Flush(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	log.Warnf("third line")
	if err := log.Flush(ctx, "test"); err != nil {
		t.Fatal(err)
	}
}

func openRead(t *testing.T, path string) *projections.Store {
	t.Helper()
	s, err := projections.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestProjectsRunsLogsAndUsers(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	seed(t, ctx, svc)
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	head, _ := es.HeadPosition(ctx)
	if read.Position() != head {
		t.Fatalf("position %d after catch-up, head %d", read.Position(), head)
	}
	runs, err := read.ListRuns(ctx)
	if err != nil || len(runs) != 2 {
		t.Fatalf("ListRuns = %v, %v; want 2 runs", runs, err)
	}
	d, err := read.GetRun(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != domain.StatusQueued || d.Owner != "alice" || len(d.Logs) != 1 || d.Mode != domain.ModeFull {
		t.Fatalf("run one: %+v", d)
	}
	lines, err := read.LogLines(ctx, "one", d.Logs[0].Name, 1)
	if err != nil || len(lines) != 3 {
		t.Fatalf("log lines = %q, %v; want 3", lines, err)
	}
	tail, _ := read.LogLines(ctx, "one", d.Logs[0].Name, 3)
	if len(tail) != 1 || tail[0] != lines[2] {
		t.Fatalf("lines from 3 = %q", tail)
	}
	if _, err := read.LogLines(ctx, "one", "nope.txt", 1); err == nil {
		t.Fatal("unknown log: no error")
	}
	if _, err := read.GetRun(ctx, "three"); err == nil {
		t.Fatal("unknown run: no error")
	}
	tok, err := svc.CreateUser(ctx, "bob", true, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := read.UserByTokenHash(ctx, command.HashToken(tok)); err == nil {
		t.Fatal("user found before the projector saw it")
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	u, err := read.UserByTokenHash(ctx, command.HashToken(tok))
	if err != nil || u.Name != "bob" || !u.Admin {
		t.Fatalf("user by token = %+v, %v", u, err)
	}
	if n, _ := read.CountUsers(ctx); n != 2 {
		t.Fatalf("%d users, want 2", n)
	}
}

func TestBatchAppliedTwiceChangesNothing(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	seed(t, ctx, command.New(es))
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	all, err := es.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := read.ApplyBatch(ctx, all); err != nil {
		t.Fatal(err)
	}
	before, _ := read.GetRun(ctx, "one")
	if err := read.ApplyBatch(ctx, all); err != nil {
		t.Fatal(err)
	}
	after, _ := read.GetRun(ctx, "one")
	if !reflect.DeepEqual(before, after) {
		t.Fatal("re-applied batch changed the run")
	}
	lines, _ := read.LogLines(ctx, "one", after.Logs[0].Name, 1)
	if len(lines) != 3 {
		t.Fatalf("%d log lines after a batch applied twice, want 3", len(lines))
	}
}

func TestTwoProcessesShareTheReadModels(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	seed(t, ctx, command.New(es))
	path := filepath.Join(t.TempDir(), "read.db")
	a, b := openRead(t, path), openRead(t, path)
	all, _ := es.ReadAll(ctx, 0, 0)
	if err := a.ApplyBatch(ctx, all[:3]); err != nil {
		t.Fatal(err)
	}
	// b has not seen a's batch in memory; it must still not apply twice.
	if err := b.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if err := a.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	d, _ := a.GetRun(ctx, "one")
	lines, _ := a.LogLines(ctx, "one", d.Logs[0].Name, 1)
	if len(lines) != 3 {
		t.Fatalf("%d log lines with two projectors, want 3", len(lines))
	}
}

func TestRebuildGivesTheSameModels(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	seed(t, ctx, command.New(es))
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	before, _ := read.ListRuns(ctx)
	if err := read.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if runs, _ := read.ListRuns(ctx); len(runs) != 0 {
		t.Fatal("Reset left runs")
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	after, _ := read.ListRuns(ctx)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("rebuilt models differ:\n%+v\n%+v", before, after)
	}
}

func TestWaitForAndSubscribe(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	read := openRead(t, filepath.Join(t.TempDir(), "read.db"))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go read.Run(runCtx, es, 20*time.Millisecond)
	changes, stop := read.Subscribe()
	defer stop()
	res, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: testConfig("a"), Actor: domain.Actor{Name: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := read.WaitFor(wctx, res.Position); err != nil {
		t.Fatal(err)
	}
	if _, err := read.GetRun(ctx, "r"); err != nil {
		t.Fatalf("run not visible after WaitFor: %v", err)
	}
	select {
	case c := <-changes:
		if c.Run != "r" {
			t.Fatalf("change for %q, want r", c.Run)
		}
	case <-wctx.Done():
		t.Fatal("no change notification")
	}
	short, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer scancel()
	if err := read.WaitFor(short, res.Position+10); err == nil {
		t.Fatal("WaitFor of a future position returned nil")
	}
}

var _ eventstore.Store = memory.New()

// TestNewFilesHaveLargePages checks that a new read-model file gets 16 KiB
// pages (the driver's DSN pragmas would lock SQLite's 4 KiB in), in WAL
// mode, and that an existing file keeps the pages it has.
func TestNewFilesHaveLargePages(t *testing.T) {
	ctx := context.Background()
	pragma := func(path, name string) string {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var v string
		if err := db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	fresh := filepath.Join(t.TempDir(), "read.db")
	openRead(t, fresh)
	if got := pragma(fresh, "page_size"); got != "16384" {
		t.Errorf("new read models have %s-byte pages, want 16384", got)
	}
	if got := pragma(fresh, "journal_mode"); got != "wal" {
		t.Errorf("new read models in journal mode %s, want wal", got)
	}

	old := filepath.Join(t.TempDir(), "read.db")
	db, err := sql.Open("sqlite", "file:"+old+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE placeholder (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	openRead(t, old)
	if got := pragma(old, "page_size"); got != "4096" {
		t.Errorf("an existing file's pages became %s bytes", got)
	}
}

// TestListRunsOrderWithinASecond checks that runs updated within one
// second are listed most recent first, whatever digits their times'
// fractions have, and that a file whose update times an earlier version
// wrote in time.RFC3339Nano (trailing zeros cut: "…:05.1Z" sorted after
// "…:05.12Z") is rewritten once when opened.
func TestListRunsOrderWithinASecond(t *testing.T) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	base := time.Date(2026, 11, 27, 12, 0, 5, 0, time.UTC)
	// Created in this order, each later than the one before.
	times := map[string]time.Time{
		"a": base,
		"b": base.Add(100 * time.Millisecond),
		"c": base.Add(120 * time.Millisecond),
		"d": base.Add(123456789),
		"e": base.Add(200 * time.Millisecond),
	}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		svc.Now = func() time.Time { return times[name] }
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: name, Config: testConfig("x"), Actor: domain.Actor{Name: "alice"}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"e", "d", "c", "b", "a"}
	names := func(read *projections.Store) []string {
		t.Helper()
		runs, err := read.ListRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range runs {
			out = append(out, r.Name)
		}
		return out
	}
	path := filepath.Join(t.TempDir(), "read.db")
	read, err := projections.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if got := names(read); !slices.Equal(got, want) {
		t.Fatalf("runs listed %v, want %v", got, want)
	}
	// As an earlier version left the file.
	if err := read.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for name, at := range times {
		if _, err := db.ExecContext(ctx, `UPDATE runs SET updated = ? WHERE name = ?`, at.Format(time.RFC3339Nano), name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM checkpoint WHERE name LIKE 'format:%'`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	read = openRead(t, path)
	if got := names(read); !slices.Equal(got, want) {
		t.Fatalf("after reopening a file with the old form: runs listed %v, want %v", got, want)
	}
}
