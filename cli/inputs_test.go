package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/piperun/piperun/client"
	"github.com/piperun/piperun/synth"
)

// TestRunPipelineFailsOnABadInputAndTheServerCarriesOn runs the real
// server over a synthetic survey whose inputs go bad after the run's
// configuration was checked: each job ends in failure with the reason in
// its log (the file, and the line or the refusal), the run can be deleted,
// and the server goes on serving and processing runs. (One of the runs
// also fails its runpipeline command with the reason, as a user sees it.)
func TestRunPipelineFailsOnABadInputAndTheServerCarriesOn(t *testing.T) {
	sv, err := synth.Generate(t.TempDir(), synth.Options{Images: 2, Sources: 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, sv.Dir)
	cat := filepath.Join(sv.Dir, sv.Images[1].Selavy)
	good, err := os.ReadFile(cat)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		os.Remove(cat)
		if err := os.WriteFile(cat, good, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "outside.selavy.components.txt")
	if err := os.WriteFile(outside, good, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spoil func(t *testing.T)
		want  string
	}{
		{"nan", func(t *testing.T) {
			lines := strings.Split(string(good), "\n")
			col := slices.Index(strings.Fields(strings.TrimPrefix(lines[0], "#")), "ra_deg_cont")
			f := strings.Fields(lines[4])
			f[col] = "NaN"
			lines[4] = "  " + strings.Join(f, " ")
			if err := os.WriteFile(cat, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
		}, sv.Images[1].Selavy + ": line 5: ra_deg_cont = NaN: must be a finite number"},
		{"link", func(t *testing.T) {
			os.Remove(cat)
			if err := os.Symlink(outside, cat); err != nil {
				t.Fatal(err)
			}
		}, "open input " + sv.Images[1].Selavy + ": input refused: it is a symbolic link leading outside the images root"},
		{"fifo", func(t *testing.T) {
			os.Remove(cat)
			if err := syscall.Mkfifo(cat, 0o644); err != nil {
				t.Skipf("cannot make a FIFO: %v", err)
			}
		}, "open input " + sv.Images[1].Selavy + ": input refused: it is a FIFO, not a regular file"},
	}
	cfg := writeConfig(t, sv.Inputs(), "survey")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer restore()
			run := "bad-" + tt.name
			if r := ts.as(t, ts.Alice, "", "initpiperun", run, "--config", cfg); r.code != ExitOK {
				t.Fatalf("initpiperun: %s", r)
			}
			tt.spoil(t)
			// Not following the job: were it to hang (on a FIFO), the
			// test must fail, not hang with it.
			if r := ts.as(t, ts.Alice, "", "runpipeline", run, "--no-wait"); r.code != ExitOK {
				t.Fatalf("runpipeline --no-wait: %s", r)
			}
			c := client.New(ts.URL, ts.Alice, nil)
			waitFor(t, "the job to end", time.Minute, func() bool {
				d, err := c.GetRun(context.Background(), run)
				return err == nil && d.Status != "Queued" && d.Status != "Running"
			})
			if d, err := c.GetRun(context.Background(), run); err != nil || d.Status != "Error" {
				t.Fatalf("status after the job: %+v, %v; want Error", d.Status, err)
			}
			list := ts.as(t, ts.Alice, "", "logs", run)
			name := ""
			for _, f := range strings.Fields(list.stdout) {
				if strings.HasSuffix(f, "_log.txt") {
					name = f
				}
			}
			if r := ts.as(t, ts.Alice, "", "logs", run, name); name == "" || r.code != ExitOK || !strings.Contains(r.stdout, tt.want) {
				t.Errorf("the job's log %q (of %s): %s\nwant it to say %q", name, list, r, tt.want)
			}
			if r := ts.as(t, ts.Alice, "", "clearpiperun", run, "--no-confirm"); r.code != ExitOK {
				t.Errorf("clearpiperun after the failure: %s", r)
			}
		})
	}
	// runpipeline, following the job, fails with the reason.
	tests[0].spoil(t)
	if r := ts.as(t, ts.Alice, "", "initpiperun", "followed", "--config", cfg); r.code != ExitOK {
		t.Fatalf("initpiperun: %s", r)
	}
	if r := ts.as(t, ts.Alice, "", "runpipeline", "followed"); r.code != ExitFailure || !strings.Contains(r.stderr, tests[0].want) {
		t.Fatalf("runpipeline: %s\nwant a failure saying %q", r, tests[0].want)
	}
	restore()
	// The server is still up and processes a good run.
	if r := ts.as(t, ts.Alice, "", "initpiperun", "good", "--config", cfg); r.code != ExitOK {
		t.Fatalf("initpiperun: %s", r)
	}
	if r := ts.as(t, ts.Alice, "", "runpipeline", "good"); r.code != ExitOK {
		t.Fatalf("runpipeline of the restored survey: %s", r)
	}
}
