package command

import (
	"context"
	"time"

	"github.com/piperun/piperun/domain"
)

// LogName returns a log file name "<YYYY-MM-DD-HH-MM-SS><suffix>" for time
// t that the run does not use yet (a later second is taken on collision).
func LogName(r *domain.Run, t time.Time, suffix string) string {
	used := make(map[string]bool, len(r.Logs))
	for _, l := range r.Logs {
		used[l.Name] = true
	}
	for {
		name := t.UTC().Format("2006-01-02-15-04-05") + suffix
		if !used[name] {
			return name
		}
		t = t.Add(time.Second)
	}
}

// Log name suffixes, as the VAST pipeline names its log files.
const (
	RunLogSuffix     = "_log.txt"
	RestoreLogSuffix = "_restore_log.txt"
)

// CreateRun creates a run.
func (s *Service) CreateRun(ctx context.Context, c domain.CreateRun) (Result, error) {
	return s.ExecRun(ctx, c.Name, c.Actor.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.Create(c)
	})
}

// UpdateConfig replaces a run's configuration.
func (s *Service) UpdateConfig(ctx context.Context, name string, cfg domain.RunConfig, a domain.Actor) (Result, error) {
	return s.ExecRun(ctx, name, a.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.UpdateConfig(cfg, a)
	})
}

// RequestProcessing queues a processing job (full or add mode).
func (s *Service) RequestProcessing(ctx context.Context, name string, debug, fullRerun bool, a domain.Actor) (Result, error) {
	jobID := s.NewID()
	return s.ExecRun(ctx, name, a.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.RequestProcessing(domain.RequestProcessing{
			JobID: jobID, Debug: debug, FullRerun: fullRerun,
			Log: LogName(r, s.Now(), RunLogSuffix), Actor: a,
		})
	})
}

// RequestRestore asks for the run to be restored to its pre-addition
// version.
func (s *Service) RequestRestore(ctx context.Context, name string, debug bool, a domain.Actor) (Result, error) {
	reqID := s.NewID()
	return s.ExecRun(ctx, name, a.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.RequestRestore(domain.RequestRestore{
			RequestID: reqID, Debug: debug,
			Log: LogName(r, s.Now(), RestoreLogSuffix), Actor: a,
		})
	})
}

// RequestDeletion asks for the run to be deleted.
func (s *Service) RequestDeletion(ctx context.Context, name string, a domain.Actor) (Result, error) {
	return s.ExecRun(ctx, name, a.Name, func(r *domain.Run) ([]domain.Event, error) {
		return r.RequestDeletion(a)
	})
}

// CancelJob ends the run's Queued or Running job, as cancelled by a, with
// a line saying so in the job's log. The worker running it stops when it
// sees the job's end; what it records afterwards is refused.
func (s *Service) CancelJob(ctx context.Context, name string, a domain.Actor) (Result, error) {
	return s.ExecRun(ctx, name, a.Name, func(r *domain.Run) ([]domain.Event, error) {
		evs, err := r.CancelJob(a)
		if err != nil {
			return nil, err
		}
		log := s.NewRunLog(name, r.Job.Log, domain.LogRun, false)
		log.Errorf("Job %s cancelled by %s", r.Job.ID, a.Name)
		return append(log.Take(), evs...), nil
	})
}
