package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/piperun/piperun/internal/testserver"
)

// instance is a running server with its users.
type instance struct {
	t       *testing.T
	url     string
	dataDir string
	tokens  map[string]string
}

// startServer runs a real server over imagesDir, with users alice and bob
// (non-admin) and root (admin).
func startServer(t *testing.T, imagesDir string) *instance {
	t.Helper()
	srv := testserver.Start(t, imagesDir, []testserver.User{{Name: "alice"}, {Name: "bob"}, {Name: "root", Admin: true}},
		testserver.Options{Poll: 50 * time.Millisecond})
	return &instance{t: t, url: srv.URL, dataDir: srv.DataDir, tokens: srv.Tokens}
}

// do sends a request as user and decodes a JSON answer into out (if not
// nil). It returns the status code and the raw body.
func (in *instance) do(user, method, path string, body any, out any) (int, []byte) {
	in.t.Helper()
	return testserver.Do(in.t, in.url, in.tokens[user], method, path, body, out)
}

// must is do that fails the test unless the status is want.
func (in *instance) must(want int, user, method, path string, body any, out any) []byte {
	in.t.Helper()
	code, raw := in.do(user, method, path, body, out)
	if code != want {
		in.t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, user, code, want, raw)
	}
	return raw
}

// errorOf checks that a body is {"error": "..."} and returns the message.
func errorOf(t *testing.T, raw []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error body: %s", raw)
	}
	return e.Error
}

// runView is a run as the API shows it, read by the tests.
type runView = testserver.RunView

func (in *instance) run(name string) runView {
	in.t.Helper()
	var v runView
	in.must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name, nil, &v)
	return v
}

// waitStatus polls the run until its status is one of want, failing after
// a deadline; it returns the run. Statuses seen on the way are recorded.
func (in *instance) waitStatus(name string, seen map[string]bool, want ...string) runView {
	in.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := in.run(name)
		if seen != nil {
			seen[v.Status] = true
		}
		for _, w := range want {
			if v.Status == w {
				return v
			}
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("run %s is %s after 60s, want %v", name, v.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (in *instance) logText(name, log string) string {
	in.t.Helper()
	code, raw := in.do("alice", http.MethodGet, fmt.Sprintf("/api/v1/runs/%s/logs/%s", name, log), nil, nil)
	if code != http.StatusOK {
		in.t.Fatalf("get log %s: %d %s", log, code, raw)
	}
	return string(raw)
}
