//go:build unix

package faults

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// scanDataDir fails the test if any file of the data directory holds
// secret, and reports whether one holds want (to show the scan looks where
// the users are kept).
func scanDataDir(t *testing.T, dir, secret, want string) (found bool) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds an API token in clear", p)
		}
		found = found || bytes.Contains(b, []byte(want))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestTokensStoredOnlyAsHashes scans every byte of the data directory (the
// event store, the read models, their write-ahead logs, the artifacts)
// for the API tokens, after `piperun user add` and after the server has
// projected the users and served requests with them: only their SHA-256
// may be there. The first-start administrator's token, printed once on
// standard output, is checked the same way. The server's log is checked for
// the tokens, valid or not, when the cluster stops.
func TestTokensStoredOnlyAsHashes(t *testing.T) {
	c := newCluster(t)
	c.tokens["intruder"] = "prt_" + strings.Repeat("5ec7e7", 8) // sent, refused, never to be logged
	c.must(http.StatusUnauthorized, "intruder", http.MethodGet, "/api/v1/runs", nil, nil)
	for _, u := range []string{"alice", "bob", "root"} {
		c.must(http.StatusOK, u, http.MethodGet, "/api/v1/whoami", nil, nil)
	}
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": "tokens", "config": vastConfig("01")}, nil)
	for _, running := range []bool{true, false} {
		if !running {
			c.srv.stop()
		}
		for _, u := range []string{"alice", "bob", "root"} {
			if !scanDataDir(t, c.dataDir, c.tokens[u], sha256Hex(c.tokens[u])) {
				t.Errorf("the hash of %s's token is nowhere in the data directory (running %v): the scan looks in the wrong place", u, running)
			}
		}
	}
	c.start()

	// A first start on an empty data directory prints the administrator's
	// token once, on standard output only.
	first := &cluster{t: t, dataDir: t.TempDir(), images: c.images, tokens: map[string]string{}, client: c.client, pre: map[string]runView{}}
	t.Cleanup(func() {
		if first.srv != nil {
			first.srv.stop()
		}
	})
	first.start()
	var token string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if token = regexp.MustCompile(`prt_[0-9a-f]+`).FindString(first.srv.stdout.String()); token != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first start printed no administrator token:\n%s", first.srv.stdout.String())
		}
	}
	first.tokens["admin"] = token
	first.must(http.StatusOK, "admin", http.MethodGet, "/api/v1/whoami", nil, nil)
	first.srv.stop()
	if !scanDataDir(t, first.dataDir, token, sha256Hex(token)) {
		t.Error("the hash of the first administrator's token is nowhere in the data directory")
	}
	if strings.Contains(first.srv.logText(), token) {
		t.Error("the first administrator's token appears in the server's log")
	}
}

// TestStateChangingRoutesCheckCaller sends every state-changing request of
// the API about alice's run as bob (neither its creator nor an
// administrator), without a token and with a forged one: 403 for bob, 401
// for the others, a JSON error each time, and the run unchanged. The
// administrator may, and is recorded as the actor.
func TestStateChangingRoutesCheckCaller(t *testing.T) {
	c := newCluster(t)
	forged := []byte(c.tokens["alice"])
	forged[len(forged)-1] ^= 1 // another hex digit
	c.tokens["forger"] = string(forged)
	const run = "owned"
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01", "02", "03")}, nil)
	c.process(run)
	c.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+run+"/config", map[string]string{"config": vastConfig("01", "02", "03", "04")}, nil)
	c.process(run) // a backup, so that a restore would be allowed

	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, "/api/v1/runs/" + run + "/config", map[string]string{"config": vastConfig("01", "02")}},
		{http.MethodPost, "/api/v1/runs/" + run + "/process", map[string]bool{"full_rerun": true}},
		{http.MethodPost, "/api/v1/runs/" + run + "/restore", map[string]bool{}},
		{http.MethodDelete, "/api/v1/runs/" + run, nil},
	}
	before := c.run(run)
	for _, r := range routes {
		for _, who := range []struct {
			user string
			want int
		}{{"bob", http.StatusForbidden}, {"", http.StatusUnauthorized}, {"forger", http.StatusUnauthorized}} {
			code, raw := c.do(who.user, r.method, r.path, r.body, nil)
			if code != who.want {
				t.Errorf("%s %s as %q: %d, want %d: %s", r.method, r.path, who.user, code, who.want, raw)
			}
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(raw, &e) != nil || e.Error == "" {
				t.Errorf("%s %s as %q: no JSON error: %s", r.method, r.path, who.user, raw)
			}
		}
	}
	for _, who := range []string{"", "forger"} {
		if code, raw := c.do(who, http.MethodPost, "/api/v1/runs", map[string]string{"name": "anonymous", "config": vastConfig("01")}, nil); code != http.StatusUnauthorized {
			t.Errorf("create run as %q: %d, want 401: %s", who, code, raw)
		}
	}
	if after := c.run(run); !sameJSON(after, before) {
		t.Fatalf("refused requests changed the run: version %d, now %d", before.Version, after.Version)
	}
	c.must(http.StatusNotFound, "alice", http.MethodGet, "/api/v1/runs/anonymous", nil, nil)

	// The administrator may restore alice's run; the event names root.
	c.must(http.StatusAccepted, "root", http.MethodPost, "/api/v1/runs/"+run+"/restore", map[string]bool{}, nil)
	c.settled(run, 60*time.Second)
	var actor string
	for _, e := range c.events(run) {
		if e.Type == "run.restore_requested.v1" {
			actor = e.Actor
		}
	}
	if actor != "root" {
		t.Errorf("the restore request names %q as its actor, want root", actor)
	}
	c.audit(run)
}

// TestEveryEventHasActor reads the whole event store after a run's life
// (creation, processing, addition, restore, deletion) and users' creation:
// every event names who caused it, users' commands their user and the
// workers' events the worker.
func TestEveryEventHasActor(t *testing.T) {
	c := newCluster(t)
	const run = "actors"
	c.must(http.StatusCreated, "alice", http.MethodPost, "/api/v1/runs", map[string]string{"name": run, "config": vastConfig("01", "02")}, nil)
	c.process(run)
	c.must(http.StatusOK, "alice", http.MethodPut, "/api/v1/runs/"+run+"/config", map[string]string{"config": vastConfig("01", "02", "03")}, nil)
	c.process(run)
	c.must(http.StatusAccepted, "alice", http.MethodPost, "/api/v1/runs/"+run+"/restore", map[string]bool{}, nil)
	c.settled(run, 60*time.Second)
	c.must(http.StatusAccepted, "root", http.MethodDelete, "/api/v1/runs/"+run, nil, nil)
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := c.do("alice", http.MethodGet, "/api/v1/runs/"+run, nil, nil); code != http.StatusNotFound; code, _ = c.do("alice", http.MethodGet, "/api/v1/runs/"+run, nil, nil) {
		if time.Now().After(deadline) {
			t.Fatal("the run was not deleted within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.srv.stop()

	// Who may cause each kind of event.
	userCommands := map[string][]string{
		"run.created.v1":              {"alice"},
		"run.config_updated.v1":       {"alice"},
		"run.processing_requested.v1": {"alice"},
		"run.restore_requested.v1":    {"alice"},
		"run.deletion_requested.v1":   {"root"},
		"user.created.v1":             {"system:cli"},
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT stream, version, type, actor FROM events ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var stream, typ, actor string
		var version int64
		if err := rows.Scan(&stream, &version, &typ, &actor); err != nil {
			t.Fatal(err)
		}
		n++
		want, isCommand := userCommands[typ]
		switch {
		case actor == "":
			t.Errorf("%s version %d (%s) has no actor", stream, version, typ)
		case isCommand && !slices.Contains(want, actor):
			t.Errorf("%s version %d (%s) names %q, want one of %v", stream, version, typ, actor, want)
		case !isCommand && !strings.HasPrefix(actor, "system:"):
			t.Errorf("%s version %d (%s), written by a worker, names %q", stream, version, typ, actor)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 15 {
		t.Fatalf("only %d events in the store: the run's life did not happen", n)
	}
	c.start()
}
