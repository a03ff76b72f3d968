package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/internal/syncbuf"
	"github.com/piperun/piperun/internal/testserver"

	"github.com/piperun/piperun/client"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/projections"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/wiring"
)

func TestUserAddPrintsOnlyTheToken(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 1))
	// The flag after the positional, as a user would type it.
	r := piperun(t, "", "user", "add", "carol", "--admin", "--data-dir", ts.DataDir)
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("user add: %s", r)
	}
	if !regexp.MustCompile(`^\S+\n$`).MatchString(r.stdout) {
		t.Fatalf("user add printed %q, want the token alone on one line", r.stdout)
	}
	token := strings.TrimSpace(r.stdout)
	// The running server accepts the token at once.
	who := ts.as(t, token, "", "whoami")
	if who.code != ExitOK || !strings.HasPrefix(who.stdout, "carol (administrator)") {
		t.Fatalf("whoami with the new token: %s", who)
	}
	if dup := piperun(t, "", "user", "add", "carol", "--data-dir", ts.DataDir); dup.code != ExitFailure || !strings.Contains(dup.stderr, "already exists") || dup.stdout != "" {
		t.Errorf("adding carol again: %s", dup)
	}
	if bad := piperun(t, "", "user", "add", "system:x", "--data-dir", ts.DataDir); bad.code != ExitFailure || bad.stdout != "" {
		t.Errorf("adding an invalid user name: %s", bad)
	}
}

func TestUserAddTakesDataDirFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDataDir, dir)
	r := piperun(t, "", "user", "add", "dave")
	if r.code != ExitOK {
		t.Fatalf("user add with %s set: %s", EnvDataDir, r)
	}
	if _, err := os.Stat(filepath.Join(dir, wiring.EventsFile)); err != nil {
		t.Fatalf("the user was not stored in %s: %v", EnvDataDir, err)
	}
}

func TestTokenAndServerFromEnvironment(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 1))
	t.Setenv(EnvServer, ts.URL)
	t.Setenv(EnvToken, ts.Bob)
	if r := piperun(t, "", "whoami"); r.code != ExitOK || !strings.HasPrefix(r.stdout, "bob (user)") {
		t.Fatalf("whoami from the environment: %s", r)
	}
	// A flag wins over the environment.
	if r := piperun(t, "", "whoami", "--token", ts.Alice); r.code != ExitOK || !strings.HasPrefix(r.stdout, "alice (user)") {
		t.Fatalf("whoami --token: %s", r)
	}
	if r := piperun(t, "", "whoami", "--token", "prt_wrong"); r.code != ExitFailure || !strings.Contains(r.stderr, "did not accept the API token") {
		t.Fatalf("whoami with a wrong token: %s", r)
	}
}

func TestRunCommandsWithoutProcessing(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 3))
	cfg2 := writeConfig(t, testserver.PlaceholderInputs(2), "r1")
	cfg3 := writeConfig(t, testserver.PlaceholderInputs(3), "r1")

	r := ts.as(t, ts.Alice, "", "initpiperun", "r1", "--config", cfg2, "--description", "two synthetic images")
	if r.code != ExitOK || !strings.Contains(r.stdout, "Created run r1 (status Initialised)") {
		t.Fatalf("initpiperun: %s", r)
	}
	if r := ts.as(t, ts.Alice, "", "initpiperun", "r1", "--config", cfg2); r.code != ExitFailure || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("initpiperun of an existing name: %s", r)
	}
	bad := testserver.PlaceholderInputs(2)
	bad.Noise[1] = "nowhere.fits"
	if r := ts.as(t, ts.Alice, "", "initpiperun", "r2", "--config", writeConfig(t, bad, "r2")); r.code != ExitFailure || !strings.Contains(r.stderr, "nowhere.fits") {
		t.Errorf("initpiperun with a missing input: %s", r)
	}
	if r := ts.as(t, ts.Alice, "", "initpiperun", "r2", "--config", filepath.Join(t.TempDir(), "absent.yaml")); r.code != ExitFailure || !strings.Contains(r.stderr, "read configuration") {
		t.Errorf("initpiperun with a missing file: %s", r)
	}
	// --config - reads standard input.
	text, _ := os.ReadFile(cfg2)
	if r := ts.as(t, ts.Bob, string(text), "initpiperun", "bobs", "--config", "-"); r.code != ExitOK {
		t.Errorf("initpiperun --config -: %s", r)
	}

	st := ts.as(t, ts.Alice, "", "status", "r1")
	for _, want := range []string{"Run:", "r1", "two synthetic images", "alice", "Initialised", "Restorable:"} {
		if !strings.Contains(st.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	var d projections.RunDetail
	js := ts.as(t, ts.Alice, "", "status", "r1", "--json")
	if err := json.Unmarshal([]byte(js.stdout), &d); err != nil || d.Name != "r1" || d.Version != 1 {
		t.Fatalf("status --json: %v, %+v\n%s", err, d, js)
	}

	if r := ts.as(t, ts.Alice, "", "config", "set", "r1", cfg3); r.code != ExitOK || !strings.Contains(r.stdout, "version 2") {
		t.Fatalf("config set: %s", r)
	}
	want3, _ := os.ReadFile(cfg3)
	if r := ts.as(t, ts.Alice, "", "config", "get", "r1"); r.stdout != string(want3) {
		t.Errorf("config get after set = %q, want the new file", r.stdout)
	}
	if r := ts.as(t, ts.Alice, "", "config", "get", "r1", "--version", "1"); r.stdout != string(text) {
		t.Errorf("config get --version 1 = %q, want the first file", r.stdout)
	}
	if r := ts.as(t, ts.Bob, "", "config", "set", "r1", cfg2); r.code != ExitFailure || !strings.Contains(r.stderr, "not allowed") {
		t.Errorf("config set by another user: %s", r)
	}

	list := ts.as(t, ts.Alice, "", "list")
	if list.code != ExitOK || !regexp.MustCompile(`(?m)^NAME\s+STATUS\s+OWNER`).MatchString(list.stdout) ||
		!regexp.MustCompile(`(?m)^r1\s+Initialised\s+alice\s`).MatchString(list.stdout) ||
		!regexp.MustCompile(`(?m)^bobs\s+Initialised\s+bob\s`).MatchString(list.stdout) {
		t.Errorf("list:\n%s", list)
	}
	var runs []projections.RunSummary
	if err := json.Unmarshal([]byte(ts.as(t, ts.Alice, "", "list", "--json").stdout), &runs); err != nil || len(runs) != 2 {
		t.Errorf("list --json: %v, %+v", err, runs)
	}

	hist := ts.as(t, ts.Alice, "", "history", "r1")
	if hist.code != ExitOK || !regexp.MustCompile(`(?m)^1\s+\S+ \S+\s+alice\s+run.created.v1\s+owner=alice images=2`).MatchString(hist.stdout) ||
		!regexp.MustCompile(`(?m)^2\s.*run.config_updated.v1\s+images=3`).MatchString(hist.stdout) {
		t.Errorf("history:\n%s", hist)
	}
	if r := ts.as(t, ts.Alice, "", "audit", "r1"); r.code != ExitOK || r.stdout != "audit passed: 2 events, 0 restores checked\n" {
		t.Errorf("audit: %s", r)
	}
	if r := ts.as(t, ts.Alice, "", "logs", "r1"); r.code != ExitOK || !strings.Contains(r.stdout, "no logs yet") {
		t.Errorf("logs: %s", r)
	}

	// Without a backup there is nothing to restore: the command says why
	// before asking anything.
	rs := ts.as(t, ts.Alice, "y\n", "restorepiperun", "r1")
	if rs.code != ExitFailure || !strings.Contains(rs.stderr, "run r1 cannot be restored") || !strings.Contains(rs.stderr, "no backup") || strings.Contains(rs.stdout, "(y/n)") {
		t.Errorf("restorepiperun without a backup: %s", rs)
	}
	if r := ts.as(t, ts.Alice, "", "status", "nope"); r.code != ExitFailure || !strings.Contains(r.stderr, "nope") {
		t.Errorf("status of an unknown run: %s", r)
	}
}

func TestClearConfirmation(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 1))
	cfg := writeConfig(t, testserver.PlaceholderInputs(1), "r")
	if r := ts.as(t, ts.Alice, "", "initpiperun", "r", "--config", cfg); r.code != ExitOK {
		t.Fatalf("initpiperun: %s", r)
	}
	for _, answer := range []string{"n\n", "", "maybe\n"} {
		r := ts.as(t, ts.Alice, answer, "clearpiperun", "r")
		if r.code != ExitFailure || !strings.Contains(r.stdout, "Delete run r and all its products? (y/n)") || !strings.Contains(r.stderr, "aborted") {
			t.Errorf("clearpiperun answered %q: %s", answer, r)
		}
		if st := ts.as(t, ts.Alice, "", "status", "r"); st.code != ExitOK {
			t.Fatalf("the run is gone after answering %q: %s", answer, st)
		}
	}
	if r := ts.as(t, ts.Bob, "", "clearpiperun", "r", "--no-confirm"); r.code != ExitFailure || !strings.Contains(r.stderr, "not allowed") {
		t.Errorf("clearpiperun by another user: %s", r)
	}
	r := ts.as(t, ts.Alice, "y\n", "clearpiperun", "r")
	if r.code != ExitOK || !strings.Contains(r.stdout, "Run r deleted.") {
		t.Fatalf("clearpiperun answered y: %s", r)
	}
	if st := ts.as(t, ts.Alice, "", "status", "r"); st.code != ExitFailure {
		t.Errorf("the run still shows after clearpiperun: %s", st)
	}
	// The name is free again, and the history keeps the deleted run.
	if r := ts.as(t, ts.Alice, "", "initpiperun", "r", "--config", cfg); r.code != ExitOK {
		t.Fatalf("initpiperun after deletion: %s", r)
	}
	if h := ts.as(t, ts.Alice, "", "history", "r", "--no-logs"); !strings.Contains(h.stdout, "run.deleted.v1") {
		t.Errorf("history lost the deleted run:\n%s", h)
	}
}

func TestServeWorkerAndRebuild(t *testing.T) {
	dataDir := t.TempDir()
	images := testserver.EmptyInputFiles(t, 1)

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--images-dir", images}, nil, &out, &errOut)
	}()
	// The first start creates an administrator and prints its token.
	re := regexp.MustCompile(`export PIPERUN_SERVER=(\S+) PIPERUN_TOKEN=(\S+)`)
	waitFor(t, "serve to print the first administrator's token", 30*time.Second, func() bool {
		select {
		case code := <-done:
			t.Fatalf("serve stopped with exit %d:\n%s\n%s", code, out.String(), errOut.String())
		default:
		}
		return re.MatchString(out.String())
	})
	m := re.FindStringSubmatch(out.String())
	r := piperun(t, "", "whoami", "--server", m[1], "--token", m[2])
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, "admin (administrator)") {
		t.Fatalf("whoami with the first-start token: %s", r)
	}
	if r := piperun(t, "", "initpiperun", "r", "--config", writeConfig(t, testserver.PlaceholderInputs(1), "r"), "--server", m[1], "--token", m[2]); r.code != ExitOK {
		t.Fatalf("initpiperun: %s", r)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("serve exited %d after its context ended:\n%s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of its context ending")
	}

	// A worker-only process on the same data directory, from the
	// environment this time.
	t.Setenv(EnvDataDir, dataDir)
	t.Setenv(EnvImagesDir, images)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var wout, werr syncbuf.Buffer
	go func() { done <- Run(ctx, []string{"worker"}, nil, &wout, &werr) }()
	waitFor(t, "the worker to run", 30*time.Second, func() bool {
		select {
		case code := <-done:
			t.Fatalf("worker stopped with exit %d:\n%s", code, werr.String())
		default:
		}
		return strings.Contains(werr.String(), "worker running")
	})
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("worker exited %d:\n%s", code, werr.String())
	}

	rb := piperun(t, "", "projections", "rebuild")
	if rb.code != ExitOK || !strings.Contains(rb.stdout, "rebuilt read models") {
		t.Fatalf("projections rebuild: %s", rb)
	}
}

// TestCreateProcessAddRestore drives a whole story through the command
// line: it needs working processing, on the shared VAST data.
func TestCreateProcessAddRestore(t *testing.T) {
	images := filepath.Join(vastdata.VASTDir(t), "data")
	ts := startServer(t, images)
	cfg2 := writeConfig(t, testserver.VASTInputs("epoch01", "epoch02"), "story")
	cfg3 := writeConfig(t, testserver.VASTInputs("epoch01", "epoch02", "epoch03"), "story")

	if r := ts.as(t, ts.Alice, "", "initpiperun", "story", "--config", cfg2); r.code != ExitOK {
		t.Fatalf("initpiperun: %s", r)
	}
	run := ts.as(t, ts.Alice, "", "runpipeline", "story")
	if run.code != ExitOK || !strings.Contains(run.stdout, "full mode") || !strings.Contains(run.stdout, " INFO ") ||
		!strings.Contains(run.stdout, "Run story completed: 2 images") {
		t.Fatalf("runpipeline: %s", run)
	}
	// The log lines printed while following are the log, in order, once.
	c := client.New(ts.URL, ts.Alice, nil)
	logs, err := c.Logs(context.Background(), "story")
	if err != nil || len(logs) != 1 {
		t.Fatalf("logs after the first run: %+v, %v", logs, err)
	}
	lines, err := c.Log(context.Background(), "story", logs[0].Name, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(lines, "\n") + "\n"; !strings.Contains(run.stdout, want) {
		t.Errorf("runpipeline did not print the log as written:\n%s\nwant it to contain:\n%s", run.stdout, want)
	}

	if r := ts.as(t, ts.Alice, "", "config", "set", "story", cfg3); r.code != ExitOK {
		t.Fatalf("config set: %s", r)
	}
	add := ts.as(t, ts.Alice, "", "runpipeline", "story", "--debug")
	if add.code != ExitOK || !strings.Contains(add.stdout, "add mode") || !strings.Contains(add.stdout, "3 images") {
		t.Fatalf("runpipeline after adding an image: %s", add)
	}
	if r := ts.as(t, ts.Alice, "", "status", "story"); !strings.Contains(r.stdout, "yes (piperun restorepiperun story)") {
		t.Errorf("status does not show the run as restorable:\n%s", r)
	} else if !regexp.MustCompile(`Measurement pairs:\s+[1-9]\d*\n`).MatchString(r.stdout) {
		t.Errorf("status does not count the measurement pairs of three images:\n%s", r)
	}

	// Another user may not restore it; the question is not even asked.
	if r := ts.as(t, ts.Bob, "y\n", "restorepiperun", "story"); r.code != ExitFailure || !strings.Contains(r.stderr, "not allowed") || strings.Contains(r.stdout, "(y/n)") {
		t.Errorf("restorepiperun by another user: %s", r)
	}

	// Answering no changes nothing.
	no := ts.as(t, ts.Alice, "n\n", "restorepiperun", "story")
	if no.code != ExitFailure || !strings.Contains(no.stderr, "aborted") ||
		!strings.Contains(no.stdout, "Restore run story to this configuration? (y/n)") ||
		!strings.Contains(no.stdout, "epoch02.fits") || strings.Contains(no.stdout, "epoch03.fits") {
		t.Fatalf("restorepiperun answered n: %s", no)
	}
	if d, err := c.GetRun(context.Background(), "story"); err != nil || d.NImages != 3 || !d.RestoreAvailable {
		t.Fatalf("after answering n: %d images, restorable %v, %v", d.NImages, d.RestoreAvailable, err)
	}

	// Answering yes restores it and prints the restore log.
	yes := ts.as(t, ts.Alice, "y\n", "restore", "story", "--debug")
	if yes.code != ExitOK || !strings.Contains(yes.stdout, "Run story restored.") || !strings.Contains(yes.stdout, " DEBUG ") || !strings.Contains(yes.stdout, "Restore complete") {
		t.Fatalf("restore answered y: %s", yes)
	}
	st := ts.as(t, ts.Alice, "", "status", "story", "--json")
	var d projections.RunDetail
	if err := json.Unmarshal([]byte(st.stdout), &d); err != nil || d.NImages != 2 || d.RestoreAvailable {
		t.Fatalf("after the restore: %v %+v", err, d)
	}
	if got, _ := os.ReadFile(cfg2); d.Config != string(got) {
		t.Errorf("restored configuration differs from the pre-addition one")
	}
	if _, err := runconfig.Parse([]byte(d.Config)); err != nil {
		t.Errorf("restored configuration does not parse: %v", err)
	}

	// The backup is used up.
	if r := ts.as(t, ts.Alice, "", "restorepiperun", "story", "--no-confirm"); r.code != ExitFailure || !strings.Contains(r.stderr, "no backup") {
		t.Errorf("second restore: %s", r)
	}
	hist := ts.as(t, ts.Alice, "", "history", "story", "--no-logs")
	for _, re := range []string{
		`run.processing_requested.v1\s+mode=add job=\S+ added=\[epoch03.fits\] backup_version=\d+`,
		`alice\s+run.restore_requested.v1\s+request=\S+ backup_version=\d+ debug=true`,
		`system:restore-worker\s+run.restored.v1`,
	} {
		if !regexp.MustCompile(re).MatchString(hist.stdout) {
			t.Errorf("history does not match %s:\n%s", re, hist.stdout)
		}
	}
	if strings.Contains(hist.stdout, "run.log_written.v1") {
		t.Errorf("history --no-logs shows log events")
	}
	if r := ts.as(t, ts.Alice, "", "audit", "story"); r.code != ExitOK || !regexp.MustCompile(`^audit passed: \d+ events, 1 restores checked\n$`).MatchString(r.stdout) {
		t.Errorf("audit: %s", r)
	}
}

func TestRunPipelineReportsFailure(t *testing.T) {
	images := filepath.Join(vastdata.VASTDir(t), "data")
	ts := startServer(t, images)
	cfg := writeConfig(t, testserver.VASTInputs("epoch01", "epoch-invalid"), "bad")
	if r := ts.as(t, ts.Alice, "", "initpiperun", "bad", "--config", cfg); r.code != ExitOK {
		t.Fatalf("initpiperun: %s", r)
	}
	r := ts.as(t, ts.Alice, "", "runpipeline", "bad")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "processing of run bad failed") || !strings.Contains(r.stderr, "epoch-invalid") {
		t.Fatalf("runpipeline of a run with an invalid catalogue: %s", r)
	}
	if d, err := client.New(ts.URL, ts.Alice, nil).GetRun(context.Background(), "bad"); err != nil || d.Status != "Error" {
		t.Errorf("status after the failure: %+v, %v", d.Status, err)
	}
}
