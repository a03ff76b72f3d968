package cli

import (
	"strings"
	"testing"

	"github.com/piperun/piperun/internal/testserver"
)

// TestCancel: 'piperun cancel' ends a queued job for its creator or an
// administrator, and refuses another user and a run with no job (exit 1
// with the reason); 'clearpiperun' deletes a queued run. The server runs
// without workers, so that requested jobs stay queued.
func TestCancel(t *testing.T) {
	ts := startServerWith(t, testserver.EmptyInputFiles(t, 2), testserver.Options{NoWorkers: true})
	for _, run := range []string{"c1", "c2", "c3"} {
		if r := ts.as(t, ts.Alice, "", "initpiperun", run, "--config", writeConfig(t, testserver.PlaceholderInputs(2), run)); r.code != ExitOK {
			t.Fatalf("initpiperun %s: %s", run, r)
		}
	}
	if r := ts.as(t, ts.Alice, "", "cancel", "c1", "--no-confirm"); r.code != ExitFailure || !strings.Contains(r.stderr, "refused by the server") || !strings.Contains(r.stderr, "Initialised") {
		t.Fatalf("cancel of a run with no job: %s", r)
	}
	for _, run := range []string{"c1", "c2", "c3"} {
		if r := ts.as(t, ts.Alice, "", "runpipeline", run, "--no-wait"); r.code != ExitOK {
			t.Fatalf("runpipeline %s: %s", run, r)
		}
	}
	if r := ts.as(t, ts.Bob, "", "cancel", "c1", "--no-confirm"); r.code != ExitFailure || !strings.Contains(r.stderr, "not allowed") {
		t.Fatalf("bob cancelling alice's job: %s", r)
	}
	if r := ts.as(t, ts.Alice, "n\n", "cancel", "c1"); r.code != ExitFailure || !strings.Contains(r.stderr, "aborted") {
		t.Fatalf("cancel answered no: %s", r)
	}
	if r := ts.as(t, ts.Alice, "y\n", "cancel", "c1"); r.code != ExitOK || !strings.Contains(r.stdout, "of run c1 cancelled; the run is Error") {
		t.Fatalf("cancel by the creator: %s", r)
	}
	if r := ts.as(t, ts.Admin, "", "cancel", "c2", "--no-confirm"); r.code != ExitOK {
		t.Fatalf("cancel by an administrator: %s", r)
	}
	st := ts.as(t, ts.Alice, "", "status", "c2")
	if !strings.Contains(st.stdout, "Error") {
		t.Fatalf("status after the cancellation:\n%s", st)
	}
	if r := ts.as(t, ts.Alice, "", "cancel", "c2", "--no-confirm"); r.code != ExitFailure || !strings.Contains(r.stderr, "refused by the server") {
		t.Fatalf("a second cancel: %s", r)
	}
	// A queued run can be deleted: its job is cancelled with it.
	if r := ts.as(t, ts.Alice, "", "clearpiperun", "c3", "--no-confirm", "--no-wait"); r.code != ExitOK || !strings.Contains(r.stdout, "Deletion of run c3 requested") {
		t.Fatalf("clearpiperun of a queued run: %s", r)
	}
	if r := piperun(t, "", "help", "cancel"); r.code != ExitOK || !strings.Contains(r.stdout+r.stderr, "cancel RUN") {
		t.Fatalf("help cancel: %s", r)
	}
}
