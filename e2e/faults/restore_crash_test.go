//go:build linux

package faults

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to look at the files a crash left

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/statecodec"
)

// armed is a run with a backup: Completed over epochs 01-04, its backup
// the run over 01-03.
type armed struct {
	name      string
	pre, post runView // the run before the addition and after it
	// baseline is the stream's version once armed: what a crash test
	// adds comes after it.
	baseline int64
}

// arm creates the run over epochs 01-03 if needed and processes it, then
// adds epoch 04, so that a restore has a backup to bring back. A run that
// still has its backup (its last restore was lost or failed) is armed
// already.
func (c *cluster) arm(name string) armed {
	c.t.Helper()
	code, _ := c.do("alice", http.MethodGet, "/api/v1/runs/"+name, nil, nil)
	if code == http.StatusNotFound {
		c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": name, "config": vastConfig("01", "02", "03")}, nil)
		c.process(name)
	}
	v := c.settled(name, 60*time.Second)
	if v.RestoreAvailable {
		pre, ok := c.pre[name]
		if !ok {
			c.t.Fatalf("run %s has a backup this test did not make", name)
		}
		return armed{name: name, pre: pre, post: v, baseline: v.Version}
	}
	a := armed{name: name, pre: v}
	c.pre[name] = v
	c.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+name+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
	a.post = c.process(name)
	if !a.post.RestoreAvailable || a.post.NImages != 4 || a.pre.NImages != 3 {
		c.t.Fatalf("arming %s: %d images before, %d after, restore available %v", name, a.pre.NImages, a.post.NImages, a.post.RestoreAvailable)
	}
	a.baseline = a.post.Version
	return a
}

// Phases of a restore a crash can cut, as the files on disk show them.
const (
	phaseNotStored   = "request not stored"
	phaseNoOutcome   = "request stored, no outcome"
	phaseReadsBehind = "outcome stored, read models behind"
	phaseProjected   = "outcome stored and projected"
)

// phase tells how far the restore of a had come when the server died, from
// copies of the event store and read-model files as the crash left them (the
// copies, so that the restarted server recovers the originals itself).
func (c *cluster) phase(a armed) string {
	c.t.Helper()
	dir := c.t.TempDir()
	for _, f := range []string{"events.db", "events.db-wal", "read.db", "read.db-wal"} {
		b, err := os.ReadFile(filepath.Join(c.dataDir, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
	var requested, outcome int64
	query(c.t, filepath.Join(dir, "events.db"), `SELECT version, type FROM events WHERE stream = ? AND version > ? ORDER BY version`,
		[]any{"run-" + a.name, a.baseline}, func(rows *sql.Rows) error {
			var v int64
			var typ string
			if err := rows.Scan(&v, &typ); err != nil {
				return err
			}
			switch typ {
			case domain.TypeRestoreRequested:
				requested = v
			case domain.TypeRunRestored, domain.TypeRestoreFailed:
				outcome = v
			}
			return nil
		})
	var projected int64
	query(c.t, filepath.Join(dir, "read.db"), `SELECT state FROM runs WHERE name = ?`, []any{a.name}, func(rows *sql.Rows) error {
		var state []byte
		if err := rows.Scan(&state); err != nil {
			return err
		}
		var r domain.Run
		if err := statecodec.DecodeState(state, &r); err != nil {
			return err
		}
		projected = r.Version
		return nil
	})
	switch {
	case requested == 0:
		return phaseNotStored
	case outcome == 0:
		return phaseNoOutcome
	case projected < outcome:
		return phaseReadsBehind
	}
	return phaseProjected
}

// query runs q on the SQLite file at path and calls scan for each row.
func query(t *testing.T, path, q string, args []any, scan func(*sql.Rows) error) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// checkRestoreInvariant checks run a after the server was killed during
// its restore and started again: the run reaches a settled status; it is
// either restored (Completed with exactly the pre-addition products,
// images and configuration, the backup used up) or exactly as before the
// request (the reason in the restore log if the request had been
// stored); the read models agree with a replay of the stream; the stream
// passes the audit; every product is whole. It returns what happened.
func (c *cluster) checkRestoreInvariant(a armed) string {
	c.t.Helper()
	v := c.settled(a.name, 60*time.Second)
	var requests, restored, failed int
	var logName string
	for _, e := range c.events(a.name) {
		if e.Version <= a.baseline {
			continue
		}
		switch e.Type {
		case domain.TypeRestoreRequested:
			requests++
			var rr domain.RestoreRequested
			if err := json.Unmarshal(e.Data, &rr); err != nil {
				c.t.Fatal(err)
			}
			logName = rr.Log
		case domain.TypeRunRestored:
			restored++
		case domain.TypeRestoreFailed:
			failed++
		}
	}
	same := func(want runView) bool {
		return v.Config == want.Config && sameJSON(v.Products, want.Products) && sameJSON(v.Images, want.Images)
	}
	var what string
	switch {
	case requests == 0 && restored+failed == 0:
		what = "request lost"
		if v.Status != a.post.Status || !same(a.post) || !v.RestoreAvailable {
			c.t.Fatalf("run %s: the restore request was lost, yet the run changed: %s, %d images, restore available %v", a.name, v.Status, v.NImages, v.RestoreAvailable)
		}
	case requests == 1 && restored == 1 && failed == 0:
		what = "restored"
		if v.Status != "Completed" || !same(a.pre) || v.RestoreAvailable || v.NImages != a.pre.NImages {
			c.t.Fatalf("run %s: restored, but %s with %d images (want Completed with the %d pre-addition ones), restore available %v",
				a.name, v.Status, v.NImages, a.pre.NImages, v.RestoreAvailable)
		}
		if log := c.logText(a.name, logName); !strings.Contains(log, "INFO Restore complete") {
			c.t.Fatalf("run %s: restore log %s lacks the outcome:\n%s", a.name, logName, log)
		}
	case requests == 1 && failed == 1 && restored == 0:
		what = "failed, reason logged"
		if v.Status != a.post.Status || !same(a.post) || !v.RestoreAvailable {
			c.t.Fatalf("run %s: the restore failed, yet the run is %s with %d images, restore available %v", a.name, v.Status, v.NImages, v.RestoreAvailable)
		}
		if log := c.logText(a.name, logName); !strings.Contains(log, "ERROR Restore failed") {
			c.t.Fatalf("run %s: failed restore's log %s gives no reason:\n%s", a.name, logName, log)
		}
	default:
		c.t.Fatalf("run %s: %d restore requests, %d restored, %d failed after the crash; status %s", a.name, requests, restored, failed, v.Status)
	}
	var replayed runView
	c.must(http.StatusOK, "alice", http.MethodGet, fmt.Sprintf("/api/v1/runs/%s?version=%d", a.name, v.Version), nil, &replayed)
	if replayed.Status != v.Status || replayed.Config != v.Config || !sameJSON(replayed.Products, v.Products) || replayed.RestoreAvailable != v.RestoreAvailable {
		c.t.Fatalf("run %s: the read models (%s, %d images) differ from the replayed stream (%s, %d images)", a.name, v.Status, v.NImages, replayed.Status, replayed.NImages)
	}
	c.audit(a.name)
	c.checkProducts(v)
	return what
}

func (c *cluster) logText(run, log string) string {
	c.t.Helper()
	return string(c.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+run+"/logs/"+log, nil, nil))
}

// requestRestore sends the restore request in the background; the answer
// (if the server lives to give one) is not needed.
func (c *cluster) requestRestore(name string, wrote chan<- struct{}) {
	ctx := context.Background()
	if wrote != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }})
	}
	go func() {
		_, _, _ = c.request(ctx, "alice", http.MethodPost, "/api/v1/runs/"+name+"/restore", map[string]bool{"debug": true})
	}()
}

// lockDB takes the write lock of the SQLite file at path, from this
// process, until release is called.
func lockDB(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

// blockArtifact replaces the stored file of digest with a named pipe: a
// worker that opens it (to verify a backup) blocks in open(2) until a
// writer comes, which none does. unblock puts the file back.
func (c *cluster) blockArtifact(digest string) (unblock func()) {
	c.t.Helper()
	h := strings.TrimPrefix(digest, "sha256:")
	path := filepath.Join(c.dataDir, "artifacts", "sha256", h[:2], h[2:])
	original, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		c.t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		c.t.Fatalf("make a named pipe: %v", err)
	}
	return func() {
		c.t.Helper()
		if err := os.Remove(path); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(path, original, 0o444); err != nil {
			c.t.Fatal(err)
		}
	}
}

// awaitBlockedOnPipe waits until a thread of process p sleeps in the
// kernel waiting for the other end of a named pipe, as /proc shows it:
// the worker has reached the blocked artifact.
func (c *cluster) awaitBlockedOnPipe(p *proc) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !testserver.BlockedOnPipe(p.cmd.Process.Pid) {
		select {
		case <-p.done:
			c.t.Fatalf("the server exited before reaching the blocked artifact:\n%s", lastLines(p.logText(), 40))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatal("no worker reached the blocked artifact within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitEvent waits until the run's stream, read from the event store,
// holds an event of one of the types after version after.
func (c *cluster) awaitEvent(run string, after int64, types ...string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, e := range c.events(run) {
			for _, typ := range types {
				if e.Version > after && e.Type == typ {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("run %s: no %v within 30s", run, types)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCrashDuringRestore kills the server with SIGKILL while it restores
// runs, restarts it, and checks every time that each run ends restored, or
// as it was before with the reason logged, never stuck in Restoring or half
// restored, with a clean audit (checkRestoreInvariant). The points a crash
// can cut are first reached deterministically, from outside the binary: a
// lock held on a database file, or a backup file replaced by a named pipe
// on which the worker blocks. Then a sweep kills at increasing delays
// after the request. The files the crash left show where each crash came
// (phase), and the deterministic ones must come where they were aimed.
func TestCrashDuringRestore(t *testing.T) {
	c := newCluster(t)
	seen := map[string]int{}
	// crashed classifies the crash of a and checks it came at want.
	crashed := func(a armed, want string) {
		t.Helper()
		got := c.phase(a)
		if want != "" && got != want {
			t.Fatalf("run %s: the crash came at %q, want %q", a.name, got, want)
		}
		seen[got]++
	}
	var runs []armed

	// 1. The request's append waits for the event store's write lock.
	a := c.arm("append-blocked")
	release := lockDB(t, filepath.Join(c.dataDir, "events.db"))
	wrote := make(chan struct{})
	c.requestRestore(a.name, wrote)
	<-wrote
	c.kill()
	// Killed with the read models written without syncs: the marker of
	// this boot stays, and the restart below keeps them.
	if _, err := os.Stat(filepath.Join(c.dataDir, "read.db.unsynced")); err != nil && unsyncedReadModels() {
		t.Fatalf("no unsynced-writes marker after a kill: %v", err)
	}
	crashed(a, phaseNotStored)
	release()
	c.start()
	c.checkRestoreInvariant(a)
	runs = append(runs, a)

	// 2. The worker is verifying x's backup (blocked on one of its files),
	// so y's request, stored and shown, waits for the worker; then the
	// server is killed again during its start-up recovery, which verifies
	// x's backup in the background: the restarted server serves (and shows
	// x still Restoring) while the recovery is blocked.
	x, y := c.arm("mid-verify"), c.arm("queued-behind")
	unblock := c.blockArtifact(x.pre.Products[0].Digest)
	c.requestRestore(x.name, nil)
	c.awaitBlockedOnPipe(c.srv)
	c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+y.name+"/restore", map[string]bool{}, nil)
	c.kill()
	crashed(x, phaseNoOutcome)
	crashed(y, phaseNoOutcome)
	c.start()
	c.awaitBlockedOnPipe(c.srv)
	if v := c.run(x.name); v.Status != string(domain.StatusRestoring) {
		t.Fatalf("run %s is %s while its recovery is blocked, want Restoring", x.name, v.Status)
	}
	c.kill()
	crashed(x, phaseNoOutcome)
	unblock()
	c.start()
	for _, a := range []armed{x, y} {
		if got := c.checkRestoreInvariant(a); got != "restored" {
			t.Errorf("run %s: %s after the crashes, want restored", a.name, got)
		}
	}
	runs = append(runs, x, y)

	// 3. The read models cannot be written: u's outcome is stored but not
	// projected, and the relay, stuck saving its checkpoint, never hands
	// v's stored request to the worker.
	u, v := c.arm("reads-behind"), c.arm("never-delivered")
	release = lockDB(t, filepath.Join(c.dataDir, "read.db"))
	c.requestRestore(u.name, nil)
	c.awaitEvent(u.name, u.baseline, domain.TypeRunRestored, domain.TypeRestoreFailed)
	c.requestRestore(v.name, nil)
	c.awaitEvent(v.name, v.baseline, domain.TypeRestoreRequested)
	c.kill()
	crashed(u, phaseReadsBehind)
	crashed(v, phaseNoOutcome)
	release()
	c.start()
	for _, a := range []armed{u, v} {
		if got := c.checkRestoreInvariant(a); got != "restored" {
			t.Errorf("run %s: %s after the crash, want restored", a.name, got)
		}
	}
	runs = append(runs, u, v)

	// 4. Everything done and shown.
	a = c.arm("after")
	c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+a.name+"/restore", map[string]bool{}, nil)
	c.settled(a.name, 60*time.Second)
	c.kill()
	crashed(a, phaseProjected)
	c.start()
	c.checkRestoreInvariant(a)
	runs = append(runs, a)

	// 5. The sweep: one run, armed again after each restore, killed at
	// increasing delays after its restore request was sent.
	outcomes := map[string]int{}
	for _, ms := range []float64{0, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 30, 50} {
		a := c.arm("sweep")
		c.requestRestore(a.name, nil)
		time.Sleep(time.Duration(ms * float64(time.Millisecond))) // the delay is the experiment
		c.kill()
		crashed(a, "")
		c.start()
		outcomes[c.checkRestoreInvariant(a)]++
		runs = append(runs, a)
	}
	t.Logf("sweep outcomes: %v; crash points reached: %v", outcomes, seen)

	// Whatever the crashes did, every run's products are whole and its
	// history audits clean.
	checked := map[string]bool{}
	for _, a := range runs {
		if !checked[a.name] {
			checked[a.name] = true
			c.checkProducts(c.run(a.name))
			c.audit(a.name)
		}
	}
	// Every kill was a process crash within this boot: the read models,
	// written without syncs, were trusted at every restart, never
	// discarded and rebuilt.
	c.logMu.Lock()
	logs := c.logs.String()
	c.logMu.Unlock()
	if strings.Contains(logs, "read models discarded") {
		t.Fatal("a restart after a process crash discarded the read models")
	}

	// A crash of the machine, as the next boot sees it: the marker names
	// an earlier boot. The server discards the read models, rebuilds them
	// from the log before it serves, and shows every run as before.
	if !unsyncedReadModels() {
		return
	}
	views := map[string]runView{}
	for name := range checked {
		views[name] = c.run(name)
	}
	c.kill()
	if err := os.WriteFile(filepath.Join(c.dataDir, "read.db.unsynced"), []byte("an-earlier-boot\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	c.start()
	if !strings.Contains(c.srv.logText(), "read models discarded") {
		t.Fatal("the read models were trusted after a restart of the machine with unsynced writes")
	}
	for name, want := range views {
		if got := c.run(name); !sameJSON(got, want) {
			t.Fatalf("run %s after the read models were rebuilt:\n%+v\nwant\n%+v", name, got, want)
		}
	}
	// A clean stop: the last process to close the read models syncs them
	// and removes the marker, and says so.
	c.srv.stop()
	if _, err := os.Stat(filepath.Join(c.dataDir, "read.db.unsynced")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the unsynced-writes marker is left after a clean stop: %v", err)
	}
	if logs := c.srv.logText(); !strings.Contains(logs, "stores closed") {
		t.Fatalf("the server did not say it closed its stores:\n%s", logs)
	}
}

// unsyncedReadModels tells whether this system lets the read models be
// written without syncs (a boot ID to tell a restart of the machine).
func unsyncedReadModels() bool {
	_, err := os.Stat("/proc/sys/kernel/random/boot_id")
	return err == nil
}
