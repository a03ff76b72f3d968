package domaintest

import (
	"reflect"
	"testing"

	"github.com/piperun/piperun/domain"
)

// CompletedRun is a run over epochs 01 and 02, processed once.
func CompletedRun(t *testing.T) *Stream {
	t.Helper()
	s := NewStream(t)
	s.Create(Config(Settings, "epoch01", "epoch02"))
	s.Process("job-1", Products("epoch01", "epoch02"))
	return s
}

// AddedRun is CompletedRun after epoch03 was added successfully.
func AddedRun(t *testing.T) *Stream {
	t.Helper()
	s := CompletedRun(t)
	s.Configure(Config(Settings, "epoch01", "epoch02", "epoch03"))
	s.Process("job-2", Products("epoch01", "epoch02", "epoch03"))
	return s
}

// FailedAddition is CompletedRun after an addition of epoch03 that failed.
func FailedAddition(t *testing.T) *Stream {
	t.Helper()
	s := CompletedRun(t)
	s.Configure(Config(Settings, "epoch01", "epoch02", "epoch03"))
	s.RequestProcessing("job-2")
	s.Start("job-2")
	s.Fail("job-2")
	return s
}

// RunningJob is CompletedRun with a full re-run job-2 requested, and
// started n times (0: still Queued).
func RunningJob(t *testing.T, n int) *Stream {
	t.Helper()
	s := CompletedRun(t)
	s.RequestFullRerun("job-2")
	if n > 0 {
		s.Start("job-2")
	}
	for range n - 1 {
		s.Reported(s.Run.ResumeProcessing("job-2", 100))
	}
	return s
}

// StateRuns returns run states met in a run's life, at every event of the
// streams the decision tests use, plus a state with every field filled
// and one with empty (not nil) slices.
func StateRuns(t *testing.T) []domain.Run {
	t.Helper()
	var out []domain.Run
	collect := func(s *Stream) {
		var r domain.Run
		for _, rec := range s.Recs {
			r.Apply(rec)
			out = append(out, Snapshot(t, r))
		}
	}
	collect(AddedRun(t))
	collect(FailedAddition(t))
	s := AddedRun(t)
	s.Restore("restore-1")
	collect(s)
	s = CompletedRun(t)
	s.Configure(Config(Settings, "epoch01", "epoch02", "epoch03"))
	s.RequestProcessing("job-2") // the job's configuration equals the current one, not the last successful
	collect(s)

	var full domain.Run
	Fill(reflect.ValueOf(&full).Elem(), 0)
	out = append(out, full)
	same := Snapshot(t, full)
	*same.LastSuccessful = same.Config.Clone()
	same.Backup.Config = same.LastSuccessful.Clone()
	same.Job.Config = same.Config.Clone()
	out = append(out, same)
	empty := domain.Run{Name: "e", Logs: []domain.LogRef{}, Products: &domain.Products{Artifacts: []domain.Artifact{}}}
	empty.Config.Inputs.Images = []string{}
	out = append(out, empty, domain.Run{})
	return out
}
