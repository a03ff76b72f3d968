package domain_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
)

// runningJob is completedRun with a full re-run job-2 requested, and
// started n times (0: still Queued).
func runningJob(t *testing.T, n int) *stream {
	t.Helper()
	s := completedRun(t)
	s.requestFullRerun("job-2")
	if n > 0 {
		s.start("job-2")
	}
	for range n - 1 {
		s.reported(s.run.ResumeProcessing("job-2", 100))
	}
	return s
}

func TestResumeProcessing(t *testing.T) {
	tests := []struct {
		name      string
		starts    int // times job-2 was started before
		job       string
		maxStarts int
		want      string // event type, "" for none
		wantCount int    // Job.Starts after the event, when it is a start
	}{
		{"not started yet: first start", 0, "job-2", 3, domain.TypeProcessingStarted, 1},
		{"interrupted once: started again", 1, "job-2", 3, domain.TypeProcessingStarted, 2},
		{"interrupted twice: started a third time", 2, "job-2", 3, domain.TypeProcessingStarted, 3},
		{"interrupted three times: given up", 3, "job-2", 3, domain.TypeProcessingFailed, 0},
		{"more starts than the bound: given up", 4, "job-2", 3, domain.TypeProcessingFailed, 0},
		{"no bound given: MaxJobStarts", domain.MaxJobStarts, "job-2", 0, domain.TypeProcessingFailed, 0},
		{"under MaxJobStarts with no bound given", domain.MaxJobStarts - 1, "job-2", 0, domain.TypeProcessingStarted, domain.MaxJobStarts},
		{"another job: nothing", 1, "job-1", 3, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := runningJob(t, tc.starts)
			if s.run.Job.Starts != tc.starts {
				t.Fatalf("after %d starts the job counts %d", tc.starts, s.run.Job.Starts)
			}
			evs := s.run.ResumeProcessing(tc.job, tc.maxStarts)
			switch tc.want {
			case "":
				if len(evs) != 0 {
					t.Fatalf("got %v, want no events", evs)
				}
				return
			case domain.TypeProcessingStarted:
				single[domain.ProcessingStarted](t, evs)
				s.reported(evs)
				if s.run.Status != domain.StatusRunning || s.run.Job.Starts != tc.wantCount {
					t.Fatalf("after the start the run is %s with %d starts, want Running with %d", s.run.Status, s.run.Job.Starts, tc.wantCount)
				}
			case domain.TypeProcessingFailed:
				f := single[domain.ProcessingFailed](t, evs)
				want := fmt.Sprintf("job job-2 was interrupted %d times (the process stopped while running it); giving up", tc.starts)
				if f.JobID != "job-2" || !strings.HasPrefix(f.Reason, want) {
					t.Fatalf("got %+v, want job-2 failed with %q", f, want)
				}
				s.reported(evs)
				if s.run.Status != domain.StatusError || s.run.Job != nil {
					t.Fatalf("after giving up the run is %s with job %v", s.run.Status, s.run.Job)
				}
			}
		})
	}
}

// TestResumeProcessingOldState: a state stored before starts were counted
// says only that the job was started; it counts as one start.
func TestResumeProcessingOldState(t *testing.T) {
	r := runningJob(t, 1).run
	r.Job.Starts = 0 // as decoded from such a state
	single[domain.ProcessingStarted](t, r.ResumeProcessing("job-2", 2))
	single[domain.ProcessingFailed](t, r.ResumeProcessing("job-2", 1))
}

func TestCancelJob(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*testing.T) *stream
		actor  domain.Actor
		want   error
		reason string
	}{
		{"queued, by its creator", func(t *testing.T) *stream { return runningJob(t, 0) }, alice, nil, "cancelled by alice"},
		{"running, by its creator", func(t *testing.T) *stream { return runningJob(t, 1) }, alice, nil, "cancelled by alice"},
		{"running, by an administrator", func(t *testing.T) *stream { return runningJob(t, 2) }, admin, nil, "cancelled by root"},
		{"running, by another user", func(t *testing.T) *stream { return runningJob(t, 1) }, bob, domain.ErrForbidden, ""},
		{"completed", completedRun, alice, domain.ErrNotRunning, ""},
		{"failed", failedAddition, admin, domain.ErrNotRunning, ""},
		{"restoring", func(t *testing.T) *stream {
			s := addedRun(t)
			s.requestRestore("restore-1")
			return s
		}, alice, domain.ErrNotRunning, ""},
		{"deleting", func(t *testing.T) *stream {
			s := completedRun(t)
			s.accepted(s.run.RequestDeletion(alice))
			return s
		}, alice, domain.ErrNotRunning, ""},
		{"deleted", func(t *testing.T) *stream {
			s := completedRun(t)
			s.delete()
			return s
		}, alice, domain.ErrNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			evs, err := s.run.CancelJob(tc.actor)
			checkErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			jobID := s.run.Job.ID
			f := single[domain.ProcessingFailed](t, evs)
			if f.JobID != jobID || f.Reason != tc.reason {
				t.Fatalf("got %+v, want job %s failed with %q", f, jobID, tc.reason)
			}
			s.happened(tc.actor, evs...)
			if s.run.Status != domain.StatusError || s.run.Job != nil {
				t.Fatalf("after the cancellation the run is %s with job %v", s.run.Status, s.run.Job)
			}
			// The stopped job's late outcome is refused, success or failure.
			p := products("epoch01", "epoch02")
			if evs := s.run.FinishProcessing(jobID, &p, nil); len(evs) != 0 {
				t.Fatalf("a late completion after the cancellation was accepted: %v", evs)
			}
			if evs := s.run.FinishProcessing(jobID, nil, fmt.Errorf("context canceled")); len(evs) != 0 {
				t.Fatalf("a late failure after the cancellation was accepted: %v", evs)
			}
			if evs := s.run.ResumeProcessing(jobID, 3); len(evs) != 0 {
				t.Fatalf("a cancelled job was started again: %v", evs)
			}
			// The run can be processed again.
			s.requestFullRerun("job-3")
		})
	}
}

// TestDeletionCancelsJob: deleting a Queued or Running run cancels its job
// in the same decision; a late outcome of the job is refused.
func TestDeletionCancelsJob(t *testing.T) {
	for _, starts := range []int{0, 1, 3} {
		for _, a := range []domain.Actor{alice, admin} {
			t.Run(fmt.Sprintf("%d starts by %s", starts, a.Name), func(t *testing.T) {
				s := runningJob(t, starts)
				_, err := s.run.RequestDeletion(bob)
				checkErr(t, err, domain.ErrForbidden)
				evs, err := s.run.RequestDeletion(a)
				checkErr(t, err, nil)
				if len(evs) != 2 {
					t.Fatalf("got %v, want the job's failure and the deletion request", evs)
				}
				f, ok := evs[0].(domain.ProcessingFailed)
				if _, del := evs[1].(domain.DeletionRequested); !ok || !del || f.JobID != "job-2" || !strings.HasPrefix(f.Reason, "cancelled by "+a.Name) {
					t.Fatalf("got %+v, want job-2 cancelled by %s then DeletionRequested", evs, a.Name)
				}
				s.happened(a, evs...)
				if s.run.Status != domain.StatusDeleting || s.run.Job != nil {
					t.Fatalf("after the request the run is %s with job %v", s.run.Status, s.run.Job)
				}
				p := products("epoch01", "epoch02")
				if evs := s.run.FinishProcessing("job-2", &p, nil); len(evs) != 0 {
					t.Fatalf("a late completion of the cancelled job was accepted: %v", evs)
				}
				s.reported(s.run.FinishDeletion())
				if s.run.Exists() {
					t.Fatal("the run still exists")
				}
				if findings := domain.Audit(s.recs); len(findings) > 0 {
					t.Fatalf("audit: %v", findings)
				}
			})
		}
	}
}

func TestFailRestore(t *testing.T) {
	s := addedRun(t)
	s.requestRestore("restore-1")
	if evs := s.run.FailRestore("restore-0", "boom"); len(evs) != 0 {
		t.Fatalf("another request's failure was accepted: %v", evs)
	}
	f := single[domain.RestoreFailed](t, s.run.FailRestore("restore-1", "the restore worker panicked"))
	if f.RequestID != "restore-1" || f.Reason != "the restore worker panicked" {
		t.Fatalf("got %+v", f)
	}
	s.reported([]domain.Event{f})
	if s.run.Status != domain.StatusCompleted || s.run.Backup == nil || s.run.Restore != nil {
		t.Fatalf("after the failure the run is %s, backup %v, restore %v", s.run.Status, s.run.Backup != nil, s.run.Restore)
	}
	if evs := s.run.FailRestore("restore-1", "again"); len(evs) != 0 {
		t.Fatalf("a second failure was accepted: %v", evs)
	}
}
