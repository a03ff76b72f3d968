package association

import (
	"net/http"
	"testing"
	"time"

	"github.com/piperun/piperun/internal/testserver"
)

// instance is a running server with one user, alice.
type instance struct {
	t     *testing.T
	url   string
	token string
}

// startServer runs a real server over imagesDir with one user, alice.
func startServer(t *testing.T, imagesDir string) *instance {
	t.Helper()
	srv := testserver.Start(t, imagesDir, []testserver.User{{Name: "alice"}}, testserver.Options{Poll: 50 * time.Millisecond})
	return &instance{t: t, url: srv.URL, token: srv.Tokens["alice"]}
}

// must sends a request as alice, fails the test unless the status is want,
// decodes a JSON answer into out (if not nil) and returns the raw body.
func (in *instance) must(want int, method, path string, body, out any) []byte {
	in.t.Helper()
	code, raw := testserver.Do(in.t, in.url, in.token, method, path, body, out)
	if code != want {
		in.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, raw)
	}
	return raw
}

type product struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

type runView struct {
	Status           string    `json:"status"`
	Version          int64     `json:"version"`
	NImages          int       `json:"n_images"`
	NSources         int       `json:"n_sources"`
	NNewSources      int       `json:"n_new_sources"`
	RestoreAvailable bool      `json:"restore_available"`
	Products         []product `json:"products"`
	Logs             []struct {
		Name string `json:"name"`
	} `json:"logs"`
}

func (in *instance) run(name string) runView {
	in.t.Helper()
	var v runView
	in.must(http.StatusOK, http.MethodGet, "/api/v1/runs/"+name, nil, &v)
	return v
}

// waitDone polls the run until it is Completed or in Error, and fails the
// test, with the newest log, unless it completed.
func (in *instance) waitDone(name string) runView {
	in.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		v := in.run(name)
		switch v.Status {
		case "Completed":
			return v
		case "Error":
			log := ""
			if len(v.Logs) > 0 {
				log = string(in.must(http.StatusOK, http.MethodGet, "/api/v1/runs/"+name+"/logs/"+v.Logs[0].Name, nil, nil))
			}
			in.t.Fatalf("run %s ended in Error; log:\n%s", name, log)
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("run %s is %s after 90s", name, v.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
