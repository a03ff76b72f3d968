package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/runconfig"
)

func TestMain(m *testing.M) {
	pollInterval = 20 * time.Millisecond
	// The tests pass --server and --token; values from the environment of
	// whoever runs them must not leak in.
	for _, v := range []string{EnvServer, EnvToken, EnvDataDir, EnvESDBURL, EnvAddr, EnvImagesDir} {
		os.Unsetenv(v)
	}
	// The commands remember log positions per server: here, not in the
	// cache directory of whoever runs the tests.
	state, err := os.MkdirTemp("", "piperun-cli-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(EnvStateDir, state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}

// result is what a piperun invocation did.
type result struct {
	code           int
	stdout, stderr string
}

// piperun runs the command line with stdin as standard input.
func piperun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// testServer is a real piperun server running in the test's process.
type testServer struct {
	URL       string
	DataDir   string
	ImagesDir string
	// API tokens of users created before the start.
	Admin, Alice, Bob string
}

// startServer runs a real server (workers on) over imagesDir until the
// test ends, with the users admin (an administrator), alice and bob.
func startServer(t *testing.T, imagesDir string) *testServer {
	t.Helper()
	return startServerWith(t, imagesDir, testserver.Options{})
}

// startServerWith is startServer with options.
func startServerWith(t *testing.T, imagesDir string, opts testserver.Options) *testServer {
	t.Helper()
	srv := testserver.Start(t, imagesDir, []testserver.User{{Name: "admin", Admin: true}, {Name: "alice"}, {Name: "bob"}}, opts)
	return &testServer{URL: srv.URL, DataDir: srv.DataDir, ImagesDir: imagesDir,
		Admin: srv.Tokens["admin"], Alice: srv.Tokens["alice"], Bob: srv.Tokens["bob"]}
}

// as runs a client command against the server with a user's token (put
// after the command's own arguments, which also checks that flags may
// follow positionals), and checks that the token is never printed.
func (ts *testServer) as(t *testing.T, token, stdin string, args ...string) result {
	t.Helper()
	args = append(append([]string(nil), args...), "--server", ts.URL, "--token", token)
	r := piperun(t, stdin, args...)
	if strings.Contains(r.stdout, token) || strings.Contains(r.stderr, token) {
		t.Errorf("piperun %s printed the API token:\n%s", strings.Join(args[:len(args)-4], " "), r)
	}
	return r
}

// writeConfig writes a configuration with the given inputs to a file and
// returns its path.
func writeConfig(t *testing.T, in domain.Inputs, run string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), run+".yaml")
	if err := os.WriteFile(p, []byte(runconfig.Render(in, run)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
