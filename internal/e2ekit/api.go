package e2ekit

import (
	"net/http"
	"testing"

	"github.com/piperun/piperun/internal/testserver"
)

// API is a client of one API replica, sending requests as the users whose
// tokens it holds.
type API struct {
	T      *testing.T
	Proc   *Proc
	URL    string
	Tokens map[string]string
}

// Do sends a request as user and decodes a JSON answer into out.
func (a *API) Do(user, method, path string, body, out any) (int, []byte) {
	a.T.Helper()
	return testserver.Do(a.T, a.URL, a.Tokens[user], method, path, body, out)
}

// Must is Do that fails the test unless the status is want; it returns the
// body.
func (a *API) Must(want int, user, method, path string, body, out any) []byte {
	a.T.Helper()
	code, raw := a.Do(user, method, path, body, out)
	if code != want {
		a.T.Fatalf("%s %s on %s as %s: status %d, want %d: %s", method, path, a.Proc.Name, user, code, want, raw)
	}
	return raw
}

// Run returns the run as alice sees it.
func (a *API) Run(name string) testserver.RunView {
	a.T.Helper()
	var v testserver.RunView
	a.Must(http.StatusOK, "alice", http.MethodGet, "/api/v1/runs/"+name, nil, &v)
	return v
}
