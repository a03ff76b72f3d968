package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
)

// queue requests a full re-run of the run as its owner (no worker takes it
// up here) and, with start, starts the job as a worker would.
func (fx *fixture) queue(t *testing.T, name, owner string, start bool) string {
	t.Helper()
	ctx := context.Background()
	res, err := fx.svc.RequestProcessing(ctx, name, false, true, domain.Actor{Name: owner})
	if err != nil {
		t.Fatal(err)
	}
	job := res.Run.Job.ID
	if start {
		if _, err := fx.svc.ExecRun(ctx, name, "system:processing-worker", func(r *domain.Run) ([]domain.Event, error) {
			return r.StartProcessing(job), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return job
}

func (fx *fixture) load(t *testing.T, name string) domain.Run {
	t.Helper()
	r, err := fx.svc.LoadRun(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runLog is the text of every line written to the run's log name.
func (fx *fixture) runLog(t *testing.T, name, log string) string {
	t.Helper()
	recs, _, err := fx.svc.History(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, rec := range recs {
		if lw, ok := rec.Event.(domain.LogWritten); ok && lw.Log == log {
			b.WriteString(strings.Join(lw.Lines, "\n") + "\n")
		}
	}
	return b.String()
}

// TestCancel: POST /api/v1/runs/{name}/cancel ends a Queued or Running
// job for its creator or an administrator (200, run in Error, the reason
// in the job's log), refuses another user (403) and a run with no job
// running (409), and the stopped job's late outcome is refused.
func TestCancel(t *testing.T) {
	fx := newFixture(t)
	for _, run := range []string{"q", "r", "adm", "other", "late"} {
		fx.seedRun(t, run, "alice")
	}
	type answer struct {
		Status string `json:"status"`
		JobID  string `json:"job_id"`
		Reason string `json:"reason"`
		Error  string `json:"error"`
	}
	cancel := func(run, user string) (int, answer) {
		t.Helper()
		o := fx.send(t, http.MethodPost, runPath(run, "cancel"), fx.as(user), nil)
		var a answer
		if err := json.Unmarshal(o.body, &a); err != nil {
			t.Fatalf("cancel %s as %s: %d with a body that is not JSON: %q", run, user, o.code, o.body)
		}
		return o.code, a
	}
	for _, tc := range []struct {
		run, user string
		start     bool
	}{
		{"q", "alice", false},
		{"r", "alice", true},
		{"adm", "root", true},
	} {
		job := fx.queue(t, tc.run, "alice", tc.start)
		logName := fx.load(t, tc.run).Job.Log
		code, a := cancel(tc.run, tc.user)
		if code != http.StatusOK || a.Status != string(domain.StatusError) || a.JobID != job || a.Reason != "cancelled by "+tc.user {
			t.Fatalf("cancel %s as %s: %d %+v; want 200, Error, job %s cancelled by %s", tc.run, tc.user, code, a, job, tc.user)
		}
		if r := fx.load(t, tc.run); r.Status != domain.StatusError || r.Job != nil {
			t.Fatalf("after the cancellation run %s is %s with job %v", tc.run, r.Status, r.Job)
		}
		if l := fx.runLog(t, tc.run, logName); !strings.Contains(l, "ERROR Job "+job+" cancelled by "+tc.user) {
			t.Fatalf("the job's log does not say who cancelled it:\n%s", l)
		}
		// Nothing left to cancel.
		if code, a := cancel(tc.run, tc.user); code != http.StatusConflict || a.Error == "" {
			t.Fatalf("a second cancellation of %s: %d %+v, want 409 with an error", tc.run, code, a)
		}
	}

	fx.queue(t, "other", "alice", true)
	if code, a := cancel("other", "bob"); code != http.StatusForbidden || a.Error == "" {
		t.Fatalf("bob cancelling alice's run: %d %+v, want 403 with an error", code, a)
	}
	if r := fx.load(t, "other"); r.Status != domain.StatusRunning {
		t.Fatalf("after bob's refused cancellation the run is %s", r.Status)
	}
	if code, _ := cancel("fz", "alice"); code != http.StatusConflict {
		t.Fatalf("cancelling a Completed run: %d, want 409", code)
	}
	if code, _ := cancel("nosuchrun", "root"); code != http.StatusNotFound {
		t.Fatalf("cancelling a run that does not exist: %d, want 404", code)
	}

	// The stopped job's outcome, arriving after the cancellation, is
	// refused: the run stays as the cancellation left it.
	job := fx.queue(t, "late", "alice", true)
	if code, _ := cancel("late", "alice"); code != http.StatusOK {
		t.Fatalf("cancel: %d", code)
	}
	res, err := fx.svc.ExecRun(context.Background(), "late", "system:processing-worker", func(r *domain.Run) ([]domain.Event, error) {
		return r.FinishProcessing(job, &domain.Products{Figures: domain.Figures{NImages: 99}}, nil), nil
	})
	if err != nil || len(res.Events) != 0 {
		t.Fatalf("the late outcome was recorded: %v, %v", res.Events, err)
	}
	if r := fx.load(t, "late"); r.Status != domain.StatusError || r.Figures().NImages == 99 {
		t.Fatalf("after the late outcome the run is %s with %d images", r.Status, r.Figures().NImages)
	}
}

// TestDeleteRunning: DELETE of a Running (or Queued) run by its creator or
// an administrator cancels its job and deletes the run; another user is
// refused.
func TestDeleteRunning(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		run, user string
		start     bool
	}{
		{"del-running", "alice", true},
		{"del-queued", "alice", false},
		{"del-admin", "root", true},
	} {
		fx.seedRun(t, tc.run, "alice")
		job := fx.queue(t, tc.run, "alice", tc.start)
		if o := fx.send(t, http.MethodDelete, runPath(tc.run), fx.as("bob"), nil); o.code != http.StatusForbidden {
			t.Fatalf("bob deleting alice's running run: %d %s, want 403", o.code, o.body)
		}
		o := fx.send(t, http.MethodDelete, runPath(tc.run), fx.as(tc.user), nil)
		if o.code != http.StatusAccepted {
			t.Fatalf("delete %s as %s: %d %s, want 202", tc.run, tc.user, o.code, o.body)
		}
		r := fx.load(t, tc.run)
		if r.Status != domain.StatusDeleting || r.Job != nil {
			t.Fatalf("after the deletion request run %s is %s with job %v", tc.run, r.Status, r.Job)
		}
		recs, _, err := fx.svc.History(context.Background(), tc.run)
		if err != nil {
			t.Fatal(err)
		}
		var reason string
		for _, rec := range recs {
			if f, ok := rec.Event.(domain.ProcessingFailed); ok && f.JobID == job {
				reason = f.Reason
			}
		}
		if !strings.HasPrefix(reason, "cancelled by "+tc.user) {
			t.Fatalf("the job's end says %q, want it cancelled by %s", reason, tc.user)
		}
		if findings := domain.Audit(recs); len(findings) > 0 {
			t.Fatalf("audit: %v", findings)
		}
	}
}
