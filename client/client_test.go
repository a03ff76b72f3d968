package client_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/piperun/piperun/internal/testserver"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/client"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/wiring"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewBaseURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{" https://piperun.example.org// ", "https://piperun.example.org"},
	} {
		if got := client.New(tc.in, "", nil).BaseURL(); got != tc.want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorsCarryStatusAndServerMessage(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 2))
	ctx := ctxT(t)
	alice := client.New(ts.URL, ts.Alice, nil)
	if _, err := alice.CreateRun(ctx, "r1", "", config(testserver.PlaceholderInputs(2), "r1")); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	badPaths := testserver.PlaceholderInputs(2)
	badPaths.Images[1] = "missing.fits"
	tests := []struct {
		name    string
		call    func() error
		status  int
		message string
	}{
		{"bad token", func() error { _, err := client.New(ts.URL, "prt_nope", nil).WhoAmI(ctx); return err }, http.StatusUnauthorized, "not valid"},
		{"no token", func() error { _, err := client.New(ts.URL, "", nil).ListRuns(ctx); return err }, http.StatusUnauthorized, "token"},
		{"unknown run", func() error { _, err := alice.GetRun(ctx, "nope"); return err }, http.StatusNotFound, "nope"},
		{"duplicate run", func() error {
			_, err := alice.CreateRun(ctx, "r1", "", config(testserver.PlaceholderInputs(2), "r1"))
			return err
		}, http.StatusConflict, "already exists"},
		{"missing input", func() error {
			_, err := alice.CreateRun(ctx, "r2", "", config(badPaths, "r2"))
			return err
		}, http.StatusBadRequest, "missing.fits"},
		{"bad run name", func() error {
			_, err := alice.CreateRun(ctx, "a/b", "", config(testserver.PlaceholderInputs(2), "r"))
			return err
		}, http.StatusBadRequest, "a/b"},
		{"not the owner", func() error { _, err := client.New(ts.URL, ts.Bob, nil).Delete(ctx, "r1"); return err }, http.StatusForbidden, "alice"},
		{"version beyond the stream", func() error { _, err := alice.GetRunAt(ctx, "r1", 99); return err }, http.StatusBadRequest, "99"},
		{"log that does not exist", func() error { _, err := alice.Log(ctx, "r1", "nope_log.txt", 1); return err }, http.StatusNotFound, "nope_log.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want *client.APIError", err, err)
			}
			if ae.Status != tc.status || !client.IsStatus(err, tc.status) {
				t.Errorf("status %d, want %d (%v)", ae.Status, tc.status, err)
			}
			if !strings.Contains(ae.Message, tc.message) || ae.Message == "" {
				t.Errorf("message %q, want it to mention %q", ae.Message, tc.message)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	c := client.New("http://127.0.0.1:1", "x", nil)
	err := c.Healthz(ctxT(t))
	var ae *client.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("Healthz on a closed port: %v, want a transport error", err)
	}
}

func TestRunLifecycleWithoutProcessing(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 3))
	ctx := ctxT(t)
	c := client.New(ts.URL, ts.Alice, nil)
	if err := c.Healthz(ctx); err != nil {
		t.Fatalf("Healthz: %v", err)
	}
	if err := c.Readyz(ctx); err != nil {
		t.Fatalf("Readyz: %v", err)
	}
	me, err := c.WhoAmI(ctx)
	if err != nil || me.Name != "alice" || me.Admin {
		t.Fatalf("WhoAmI = %+v, %v; want alice, not admin", me, err)
	}
	cfg2 := config(testserver.PlaceholderInputs(2), "r1")
	d, err := c.CreateRun(ctx, "r1", "two images", cfg2)
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if d.Name != "r1" || d.Owner != "alice" || d.Status != domain.StatusInitialised || d.Description != "two images" || d.Config != cfg2 {
		t.Fatalf("created run = %+v", d)
	}
	runs, err := c.ListRuns(ctx)
	if err != nil || len(runs) != 1 || runs[0].Name != "r1" || runs[0].Status != domain.StatusInitialised {
		t.Fatalf("ListRuns = %+v, %v", runs, err)
	}
	cfg3 := config(testserver.PlaceholderInputs(3), "r1")
	if d, err = c.PutConfig(ctx, "r1", cfg3); err != nil || d.Config != cfg3 {
		t.Fatalf("PutConfig = %+v, %v", d, err)
	}
	if d, err = c.GetRun(ctx, "r1"); err != nil || d.Config != cfg3 || d.Version != 2 {
		t.Fatalf("GetRun after PutConfig = version %d, %v; want version 2 with the new config", d.Version, err)
	}
	if old, err := c.GetRunAt(ctx, "r1", 1); err != nil || old.Config != cfg2 || old.Version != 1 {
		t.Fatalf("GetRunAt(1) = version %d config %q, %v; want the first config", old.Version, old.Config, err)
	}
	evs, err := c.Events(ctx, "r1")
	if err != nil || len(evs) != 2 || evs[0].Type != domain.TypeRunCreated || evs[1].Type != domain.TypeConfigUpdated || evs[0].Actor != "alice" {
		t.Fatalf("Events = %+v, %v", evs, err)
	}
	p, err := c.RestorePreview(ctx, "r1")
	if err != nil || p.Available || !p.Allowed || !strings.Contains(p.Reason, "no backup") || p.Config != "" {
		t.Fatalf("RestorePreview = %+v, %v; want unavailable for want of a backup", p, err)
	}
	if bp, err := client.New(ts.URL, ts.Bob, nil).RestorePreview(ctx, "r1"); err != nil || bp.Allowed {
		t.Fatalf("Bob's RestorePreview = %+v, %v; want not allowed", bp, err)
	}
	if _, err := c.Restore(ctx, "r1", false); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("Restore without a backup: %v, want 409", err)
	}
	if logs, err := c.Logs(ctx, "r1"); err != nil || len(logs) != 0 {
		t.Fatalf("Logs = %+v, %v; want none", logs, err)
	}
	del, err := c.Delete(ctx, "r1")
	if err != nil || del.Status != domain.StatusDeleting {
		t.Fatalf("Delete = %+v, %v", del, err)
	}
	for {
		_, err := c.GetRun(ctx, "r1")
		if client.IsStatus(err, http.StatusNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("GetRun while deleting: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the run was not deleted in time")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestProcessAndRestore needs working processing: it runs the pipeline on
// the shared VAST data.
func TestProcessAndRestore(t *testing.T) {
	images := filepath.Join(vastdata.VASTDir(t), "data")
	ts := startServer(t, images)
	ctx := ctxT(t)
	c := client.New(ts.URL, ts.Alice, nil)
	if _, err := c.CreateRun(ctx, "r", "", config(testserver.VASTInputs("epoch01", "epoch02"), "r")); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	job, err := c.Process(ctx, "r", false, false)
	if err != nil || job.Mode != domain.ModeFull || job.JobID == "" || job.Log == "" {
		t.Fatalf("Process = %+v, %v", job, err)
	}
	if ok, reason, err := c.WaitProcessing(ctx, "r", job.JobID, 20*time.Millisecond); err != nil || !ok {
		t.Fatalf("WaitProcessing = %v %q %v; want success", ok, reason, err)
	}
	if lines, err := c.Log(ctx, "r", job.Log, 1); err != nil || len(lines) == 0 {
		t.Fatalf("Log = %q, %v; want lines", lines, err)
	} else if rest, err := c.Log(ctx, "r", job.Log, 2); err != nil || len(rest) != len(lines)-1 {
		t.Fatalf("Log from line 2 = %d lines, %v; want %d", len(rest), err, len(lines)-1)
	}

	if _, err := c.PutConfig(ctx, "r", config(testserver.VASTInputs("epoch01", "epoch02", "epoch03"), "r")); err != nil {
		t.Fatalf("PutConfig: %v", err)
	}
	add, err := c.Process(ctx, "r", false, false)
	if err != nil || add.Mode != domain.ModeAdd {
		t.Fatalf("Process after adding an image = %+v, %v; want add mode", add, err)
	}
	if ok, reason, err := c.WaitProcessing(ctx, "r", add.JobID, 20*time.Millisecond); err != nil || !ok {
		t.Fatalf("WaitProcessing(add) = %v %q %v", ok, reason, err)
	}
	p, err := c.RestorePreview(ctx, "r")
	if err != nil || !p.Available || len(p.Images) != 2 || !strings.Contains(p.Config, "epoch02.fits") || strings.Contains(p.Config, "epoch03.fits") {
		t.Fatalf("RestorePreview = %+v, %v; want the two-image configuration", p, err)
	}

	// A restore whose backup lost an artifact fails, and leaves the run
	// Completed: only the outcome event tells the failure.
	d, err := c.GetRun(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	victim := artifactPath(ts.DataDir, backupDigest(t, ctx, c))
	if err := os.Rename(victim, victim+".away"); err != nil {
		t.Fatal(err)
	}
	req, err := c.Restore(ctx, "r", false)
	if err != nil || req.RequestID == "" || req.Log == "" {
		t.Fatalf("Restore = %+v, %v", req, err)
	}
	ok, reason, err := c.WaitRestore(ctx, "r", req.RequestID, 20*time.Millisecond)
	if err != nil || ok || reason == "" {
		evs, _ := c.Events(ctx, "r")
		var b strings.Builder
		for _, ev := range evs {
			fmt.Fprintf(&b, "%d %s %s %s %.300s\n", ev.Version, ev.Time.Format("15:04:05.000"), ev.Actor, ev.Type, ev.Data)
		}
		_, serr := os.Stat(victim)
		t.Fatalf("WaitRestore with a missing artifact = %v %q %v; want a failure with a reason (victim stat: %v)\n%s", ok, reason, err, serr, b.String())
	}
	after, err := c.GetRun(ctx, "r")
	if err != nil || after.Status != domain.StatusCompleted || after.NImages != d.NImages {
		t.Fatalf("after the failed restore: %+v, %v; want Completed and unchanged", after, err)
	}
	if err := os.Rename(victim+".away", victim); err != nil {
		t.Fatal(err)
	}

	// The second restore's outcome must not be confused with the first's.
	req2, err := c.Restore(ctx, "r", true)
	if err != nil || req2.RequestID == req.RequestID {
		t.Fatalf("second Restore = %+v, %v", req2, err)
	}
	if ok, reason, err := c.WaitRestore(ctx, "r", req2.RequestID, 20*time.Millisecond); err != nil || !ok {
		t.Fatalf("WaitRestore = %v %q %v; want success", ok, reason, err)
	}
	o, err := c.RestoreOutcome(ctx, "r", req.RequestID)
	if err != nil || !o.Done || o.OK {
		t.Fatalf("RestoreOutcome of the first request = %+v, %v; still a failure", o, err)
	}
	restored, err := c.GetRun(ctx, "r")
	if err != nil || restored.NImages != 2 || restored.RestoreAvailable {
		t.Fatalf("restored run: %d images, restorable %v, %v", restored.NImages, restored.RestoreAvailable, err)
	}
}

func TestWaitProcessingReportsFailure(t *testing.T) {
	images := filepath.Join(vastdata.VASTDir(t), "data")
	ts := startServer(t, images)
	ctx := ctxT(t)
	c := client.New(ts.URL, ts.Alice, nil)
	if _, err := c.CreateRun(ctx, "bad", "", config(testserver.VASTInputs("epoch01", "epoch-invalid"), "bad")); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	job, err := c.Process(ctx, "bad", false, false)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	ok, reason, err := c.WaitProcessing(ctx, "bad", job.JobID, 20*time.Millisecond)
	if err != nil || ok || !strings.Contains(reason, "epoch-invalid") {
		t.Fatalf("WaitProcessing = %v %q %v; want a failure naming the invalid catalogue", ok, reason, err)
	}
}

func TestWaitStopsWithContext(t *testing.T) {
	ts := startServer(t, testserver.EmptyInputFiles(t, 1))
	c := client.New(ts.URL, ts.Alice, nil)
	if _, err := c.CreateRun(ctxT(t), "r", "", config(testserver.PlaceholderInputs(1), "r")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := c.WaitRestore(ctx, "r", "no-such-request", 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRestore for a request that never ends: %v, want the context's error", err)
	}
}

// backupDigest returns the digest of an artifact of the run's backup, read
// from the add-mode request that took it.
func backupDigest(t *testing.T, ctx context.Context, c *client.Client) string {
	t.Helper()
	evs, err := c.Events(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type != domain.TypeProcessingRequested {
			continue
		}
		e, err := eventjson.Decode(evs[i].Type, evs[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		if pr := e.(domain.ProcessingRequested); pr.Backup != nil && len(pr.Backup.Products.Artifacts) > 0 {
			return pr.Backup.Products.Artifacts[0].Digest
		}
	}
	t.Fatal("no backup with artifacts in the run's events")
	return ""
}

func artifactPath(dataDir, digest string) string {
	h := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(dataDir, wiring.ArtifactsDir, "sha256", h[:2], h[2:])
}
