package client_test

import (
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/runconfig"
)

// testServer is a real piperun server running in the test's process.
type testServer struct {
	URL       string
	DataDir   string
	ImagesDir string
	// API tokens of the users created before the start.
	Admin, Alice, Bob string
}

// startServer runs a real server (workers on) over imagesDir until the
// test ends, with the users admin (an administrator), alice and bob.
func startServer(t *testing.T, imagesDir string) *testServer {
	t.Helper()
	srv := testserver.Start(t, imagesDir, []testserver.User{{Name: "admin", Admin: true}, {Name: "alice"}, {Name: "bob"}}, testserver.Options{})
	return &testServer{URL: srv.URL, DataDir: srv.DataDir, ImagesDir: imagesDir,
		Admin: srv.Tokens["admin"], Alice: srv.Tokens["alice"], Bob: srv.Tokens["bob"]}
}

func config(in domain.Inputs, run string) string { return runconfig.Render(in, run) }
