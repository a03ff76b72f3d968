package domain_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/domain/domaintest"
)

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
			s := domaintest.RunningJob(t, tc.starts)
			if s.Run.Job.Starts != tc.starts {
				t.Fatalf("after %d starts the job counts %d", tc.starts, s.Run.Job.Starts)
			}
			evs := s.Run.ResumeProcessing(tc.job, tc.maxStarts)
			switch tc.want {
			case "":
				if len(evs) != 0 {
					t.Fatalf("got %v, want no events", evs)
				}
				return
			case domain.TypeProcessingStarted:
				domaintest.Single[domain.ProcessingStarted](t, evs)
				s.Reported(evs)
				if s.Run.Status != domain.StatusRunning || s.Run.Job.Starts != tc.wantCount {
					t.Fatalf("after the start the run is %s with %d starts, want Running with %d", s.Run.Status, s.Run.Job.Starts, tc.wantCount)
				}
			case domain.TypeProcessingFailed:
				f := domaintest.Single[domain.ProcessingFailed](t, evs)
				want := fmt.Sprintf("job job-2 was interrupted %d times (the process stopped while running it); giving up", tc.starts)
				if f.JobID != "job-2" || !strings.HasPrefix(f.Reason, want) {
					t.Fatalf("got %+v, want job-2 failed with %q", f, want)
				}
				s.Reported(evs)
				if s.Run.Status != domain.StatusError || s.Run.Job != nil {
					t.Fatalf("after giving up the run is %s with job %v", s.Run.Status, s.Run.Job)
				}
			}
		})
	}
}

// TestResumeProcessingOldState: a state stored before starts were counted
// says only that the job was started; it counts as one start.
func TestResumeProcessingOldState(t *testing.T) {
	r := domaintest.RunningJob(t, 1).Run
	r.Job.Starts = 0 // as decoded from such a state
	domaintest.Single[domain.ProcessingStarted](t, r.ResumeProcessing("job-2", 2))
	domaintest.Single[domain.ProcessingFailed](t, r.ResumeProcessing("job-2", 1))
}

func TestCancelJob(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*testing.T) *domaintest.Stream
		actor  domain.Actor
		want   error
		reason string
	}{
		{"queued, by its creator", func(t *testing.T) *domaintest.Stream { return domaintest.RunningJob(t, 0) }, domaintest.Alice, nil, "cancelled by alice"},
		{"running, by its creator", func(t *testing.T) *domaintest.Stream { return domaintest.RunningJob(t, 1) }, domaintest.Alice, nil, "cancelled by alice"},
		{"running, by an administrator", func(t *testing.T) *domaintest.Stream { return domaintest.RunningJob(t, 2) }, domaintest.Admin, nil, "cancelled by root"},
		{"running, by another user", func(t *testing.T) *domaintest.Stream { return domaintest.RunningJob(t, 1) }, domaintest.Bob, domain.ErrForbidden, ""},
		{"completed", domaintest.CompletedRun, domaintest.Alice, domain.ErrNotRunning, ""},
		{"failed", domaintest.FailedAddition, domaintest.Admin, domain.ErrNotRunning, ""},
		{"restoring", func(t *testing.T) *domaintest.Stream {
			s := domaintest.AddedRun(t)
			s.RequestRestore("restore-1")
			return s
		}, domaintest.Alice, domain.ErrNotRunning, ""},
		{"deleting", func(t *testing.T) *domaintest.Stream {
			s := domaintest.CompletedRun(t)
			s.Accepted(s.Run.RequestDeletion(domaintest.Alice))
			return s
		}, domaintest.Alice, domain.ErrNotRunning, ""},
		{"deleted", func(t *testing.T) *domaintest.Stream {
			s := domaintest.CompletedRun(t)
			s.Delete()
			return s
		}, domaintest.Alice, domain.ErrNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			evs, err := s.Run.CancelJob(tc.actor)
			domaintest.CheckErr(t, err, tc.want)
			if tc.want != nil {
				return
			}
			jobID := s.Run.Job.ID
			f := domaintest.Single[domain.ProcessingFailed](t, evs)
			if f.JobID != jobID || f.Reason != tc.reason {
				t.Fatalf("got %+v, want job %s failed with %q", f, jobID, tc.reason)
			}
			s.Happened(tc.actor, evs...)
			if s.Run.Status != domain.StatusError || s.Run.Job != nil {
				t.Fatalf("after the cancellation the run is %s with job %v", s.Run.Status, s.Run.Job)
			}
			// The stopped job's late outcome is refused, success or failure.
			p := domaintest.Products("epoch01", "epoch02")
			if evs := s.Run.FinishProcessing(jobID, &p, nil); len(evs) != 0 {
				t.Fatalf("a late completion after the cancellation was accepted: %v", evs)
			}
			if evs := s.Run.FinishProcessing(jobID, nil, fmt.Errorf("context canceled")); len(evs) != 0 {
				t.Fatalf("a late failure after the cancellation was accepted: %v", evs)
			}
			if evs := s.Run.ResumeProcessing(jobID, 3); len(evs) != 0 {
				t.Fatalf("a cancelled job was started again: %v", evs)
			}
			// The run can be processed again.
			s.RequestFullRerun("job-3")
		})
	}
}

// TestDeletionCancelsJob: deleting a Queued or Running run cancels its job
// in the same decision; a late outcome of the job is refused.
func TestDeletionCancelsJob(t *testing.T) {
	for _, starts := range []int{0, 1, 3} {
		for _, a := range []domain.Actor{domaintest.Alice, domaintest.Admin} {
			t.Run(fmt.Sprintf("%d starts by %s", starts, a.Name), func(t *testing.T) {
				s := domaintest.RunningJob(t, starts)
				_, err := s.Run.RequestDeletion(domaintest.Bob)
				domaintest.CheckErr(t, err, domain.ErrForbidden)
				evs, err := s.Run.RequestDeletion(a)
				domaintest.CheckErr(t, err, nil)
				if len(evs) != 2 {
					t.Fatalf("got %v, want the job's failure and the deletion request", evs)
				}
				f, ok := evs[0].(domain.ProcessingFailed)
				if _, del := evs[1].(domain.DeletionRequested); !ok || !del || f.JobID != "job-2" || !strings.HasPrefix(f.Reason, "cancelled by "+a.Name) {
					t.Fatalf("got %+v, want job-2 cancelled by %s then DeletionRequested", evs, a.Name)
				}
				s.Happened(a, evs...)
				if s.Run.Status != domain.StatusDeleting || s.Run.Job != nil {
					t.Fatalf("after the request the run is %s with job %v", s.Run.Status, s.Run.Job)
				}
				p := domaintest.Products("epoch01", "epoch02")
				if evs := s.Run.FinishProcessing("job-2", &p, nil); len(evs) != 0 {
					t.Fatalf("a late completion of the cancelled job was accepted: %v", evs)
				}
				s.Reported(s.Run.FinishDeletion())
				if s.Run.Exists() {
					t.Fatal("the run still exists")
				}
				if findings := domain.Audit(s.Recs); len(findings) > 0 {
					t.Fatalf("audit: %v", findings)
				}
			})
		}
	}
}

func TestFailRestore(t *testing.T) {
	s := domaintest.AddedRun(t)
	s.RequestRestore("restore-1")
	if evs := s.Run.FailRestore("restore-0", "boom"); len(evs) != 0 {
		t.Fatalf("another request's failure was accepted: %v", evs)
	}
	f := domaintest.Single[domain.RestoreFailed](t, s.Run.FailRestore("restore-1", "the restore worker panicked"))
	if f.RequestID != "restore-1" || f.Reason != "the restore worker panicked" {
		t.Fatalf("got %+v", f)
	}
	s.Reported([]domain.Event{f})
	if s.Run.Status != domain.StatusCompleted || s.Run.Backup == nil || s.Run.Restore != nil {
		t.Fatalf("after the failure the run is %s, backup %v, restore %v", s.Run.Status, s.Run.Backup != nil, s.Run.Restore)
	}
	if evs := s.Run.FailRestore("restore-1", "again"); len(evs) != 0 {
		t.Fatalf("a second failure was accepted: %v", evs)
	}
}
