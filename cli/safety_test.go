package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/wiring"
)

// forged is a description that, printed raw, erases the line it is on and
// writes a status line of its own.
const forged = "ok\r\x1b[2K\nStatus:       Completed\x07\u202e"

// TestForgedDescriptionRefused: initpiperun with control characters in the
// description is refused, naming the character and where it is.
func TestForgedDescriptionRefused(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 2))
	cfg := writeConfig(t, testserver.PlaceholderInputs(2), "r1")
	r := ts.as(t, ts.Alice, "", "initpiperun", "r1", "--config", cfg, "--description", forged)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "character U+000D (carriage return) at position 3") {
		t.Fatalf("initpiperun with a forged description: %s", r)
	}
	if l := ts.as(t, ts.Alice, "", "list"); !strings.Contains(l.stdout, "No runs") {
		t.Errorf("the refused run was created: %s", l)
	}
	// A look-alike name is refused with an accurate message.
	r = ts.as(t, ts.Alice, "", "initpiperun", "r\u00a01", "--config", cfg)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "U+00A0 (no-break space) at position 2") || strings.Contains(r.stderr, "\u00a0") {
		t.Errorf("initpiperun with a no-break space in the name: %s", r)
	}
}

// TestStoredControlCharactersEscaped: a description stored before such
// characters were refused is printed escaped by status, list and history.
func TestStoredControlCharactersEscaped(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 2))
	cfg, err := runconfig.Parse([]byte(runconfig.Render(testserver.PlaceholderInputs(2), "legacy")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := wiring.Open(ctx, wiring.Storage{DataDir: ts.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	// Recorded directly, as an older version that did not check would have.
	_, err = c.Svc.ExecRun(ctx, "legacy", "alice", func(*domain.Run) ([]domain.Event, error) {
		return []domain.Event{domain.RunCreated{Name: "legacy", Description: forged, Owner: "alice", Config: cfg.Domain()}}, nil
	})
	if cerr := c.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	want := `ok\r\x1b[2K\nStatus:`
	for _, args := range [][]string{{"status", "legacy"}, {"list"}, {"history", "legacy"}} {
		var r result
		deadline := time.Now().Add(30 * time.Second)
		for r = ts.as(t, ts.Alice, "", args...); r.code != ExitOK || !strings.Contains(r.stdout, "alice"); r = ts.as(t, ts.Alice, "", args...) {
			if time.Now().After(deadline) {
				t.Fatalf("piperun %s never showed the run: %s", strings.Join(args, " "), r)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if strings.ContainsAny(r.stdout, "\r\x1b\x07\u202e") {
			t.Errorf("piperun %s printed a control character: %q", strings.Join(args, " "), r.stdout)
		}
		if args[0] != "history" && !strings.Contains(r.stdout, want) {
			t.Errorf("piperun %s does not show the description escaped (%s): %q", strings.Join(args, " "), want, r.stdout)
		}
		n := 0
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, "Status:") {
				n++
			}
		}
		if args[0] == "status" && n != 1 {
			t.Errorf("piperun status shows %d status lines", n)
		}
	}
}

// TestUserRevokeAndRotate: the CLI's revoke and rotate, through the server
// (administrators only) and on the data directory.
func TestUserRevokeAndRotate(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 1))
	if r := ts.as(t, ts.Alice, "", "user", "revoke", "bob"); r.code != ExitFailure || !strings.Contains(r.stderr, "not allowed") {
		t.Fatalf("alice revoking bob: %s", r)
	}
	if r := ts.as(t, ts.Bob, "", "whoami"); r.code != ExitOK {
		t.Fatalf("bob after a refused revocation: %s", r)
	}
	if r := ts.as(t, ts.Admin, "", "user", "revoke", "bob"); r.code != ExitOK || r.stdout != "" {
		t.Fatalf("admin revoking bob: %s", r)
	}
	if r := ts.as(t, ts.Bob, "", "whoami"); r.code != ExitFailure || !strings.Contains(r.stderr, "did not accept the API token") {
		t.Fatalf("bob after the revocation: %s", r)
	}
	r := ts.as(t, ts.Admin, "", "user", "rotate", "alice")
	token := strings.TrimSpace(r.stdout)
	if r.code != ExitOK || !strings.HasPrefix(token, "prt_") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("admin rotating alice: %s", r)
	}
	if r := ts.as(t, ts.Alice, "", "whoami"); r.code != ExitFailure {
		t.Errorf("alice's old token after the rotation: %s", r)
	}
	if r := ts.as(t, token, "", "whoami"); r.code != ExitOK || !strings.HasPrefix(r.stdout, "alice") {
		t.Errorf("alice's new token: %s", r)
	}
	// On the data directory, as 'user add' works: no token needed.
	r = piperun(t, "", "user", "rotate", "bob", "--data-dir", ts.DataDir)
	bob := strings.TrimSpace(r.stdout)
	if r.code != ExitOK || !strings.HasPrefix(bob, "prt_") {
		t.Fatalf("user rotate --data-dir: %s", r)
	}
	waitFor(t, "the server to accept bob's new token", 30*time.Second, func() bool {
		return ts.as(t, bob, "", "whoami").code == ExitOK
	})
	if r := piperun(t, "", "user", "revoke", "bob", "--data-dir", ts.DataDir); r.code != ExitOK {
		t.Fatalf("user revoke --data-dir: %s", r)
	}
	waitFor(t, "the server to refuse bob's revoked token", 30*time.Second, func() bool {
		return ts.as(t, bob, "", "whoami").code == ExitFailure
	})
	if r := piperun(t, "", "user", "revoke", "nobody", "--data-dir", ts.DataDir); r.code != ExitFailure || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("revoking an unknown user: %s", r)
	}
}
