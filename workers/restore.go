// Restores: checking a run's backup and bringing the run back to it.

package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
)

// HandleRestore carries out the pending restore of a run, if any: it checks
// that the backup is whole and appends RunRestored or RestoreFailed with
// the restore log, in one atomic append.
//
// A panic while verifying the backup is the restore's failure; a panic
// anywhere else in it is recorded as its failure too, if it can be.
func (w *Workers) HandleRestore(ctx context.Context, run string) (err error) {
	w.init()
	if !w.owns(run) {
		return nil
	}
	start := time.Now()
	r, err := w.Svc.LoadRun(ctx, run)
	if err != nil {
		return err
	}
	if r.Restore == nil || r.Status != domain.StatusRestoring {
		return nil
	}
	req := *r.Restore
	held, ok, err := w.lease("restore-" + req.ID)
	if err != nil || !ok {
		return err // !ok: a live process is restoring the run
	}
	finished := false
	defer func() { w.release(held, finished) }()
	defer func() {
		if v := recover(); v != nil {
			err = w.failRestore(ctx, run, req, w.panicked("restore of run "+run, v))
			finished = err == nil
		}
	}()
	log := w.Svc.NewRunLog(run, req.Log, domain.LogRestore, req.Debug)
	log.Infof("Restoring run %s to its version before the last addition of images (backup taken at version %d)", run, req.BackupVersion)
	log.Infof("Requested by %s; status before the request: %s", req.RequestedBy, req.PreviousStatus)
	verifyErr := w.recovering("restore of run "+run, func() error { return w.verifyBackup(ctx, r, log) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	pre := log.Take() // taken once: the decision below may run again after a lost race
	var outcome domain.Event
	res, err := w.Svc.ExecRun(ctx, run, ActorRestore, func(cur *domain.Run) ([]domain.Event, error) {
		evs := cur.FinishRestore(req.ID, verifyErr)
		if len(evs) == 0 {
			return nil, nil
		}
		outcome = evs[0]
		switch e := evs[0].(type) {
		case domain.RunRestored:
			log.Infof("Restored configuration with %d images; %d artifacts of the addition are no longer used", len(cur.Backup.Config.Inputs.Images), len(e.Abandoned))
			log.Infof("Restore complete: run %s is back to its pre-addition version; the backup is used up", run)
		case domain.RestoreFailed:
			log.Errorf("Restore failed: %s", e.Reason)
			log.Infof("Run %s is back to status %s; nothing else was changed", run, req.PreviousStatus)
		}
		return append(joinLogs(append(append([]domain.Event(nil), pre...), log.Take()...)), evs...), nil
	})
	if err != nil {
		return fmt.Errorf("finish restore of run %s: %w", run, err)
	}
	finished = true
	if len(res.Events) > 0 && w.OnRestoreDone != nil {
		_, ok := outcome.(domain.RunRestored)
		w.OnRestoreDone(time.Since(start), ok)
	}
	return nil
}

// failRestore records the failure of a restore that could not be carried
// out, with the reason in its log.
func (w *Workers) failRestore(ctx context.Context, run string, req domain.PendingRestore, failure error) error {
	log := w.Svc.NewRunLog(run, req.Log, domain.LogRestore, req.Debug)
	_, err := w.Svc.ExecRun(ctx, run, ActorRestore, func(cur *domain.Run) ([]domain.Event, error) {
		log.Take() // lines of an earlier decision of this command
		evs := cur.FailRestore(req.ID, failure.Error())
		if len(evs) == 0 {
			return nil, nil
		}
		log.Errorf("Restore failed: %v", failure)
		log.Infof("Run %s is back to status %s; nothing else was changed", run, req.PreviousStatus)
		return append(log.Take(), evs...), nil
	})
	if err != nil {
		return fmt.Errorf("record failed restore of run %s: %w", run, err)
	}
	return nil
}

func (w *Workers) verifyBackup(ctx context.Context, r domain.Run, log *command.RunLog) error {
	b := r.Backup
	if b == nil {
		return errors.New("the run has no backup")
	}
	log.Debugf("Backup configuration:\n%s", b.Config.YAML)
	for _, img := range b.Config.Inputs.Images {
		log.Debugf("Backup image: %s", img)
	}
	if err := b.CheckBackup(); err != nil {
		return err
	}
	log.Infof("Checking %d backup artifacts", len(b.Products.Artifacts))
	for _, a := range b.Products.Artifacts {
		if err := w.Artifacts.Verify(ctx, a.Digest, a.Size); err != nil {
			return fmt.Errorf("backup artifact %s (%s): %w", a.Name, a.Digest, err)
		}
		log.Debugf("Artifact %s %s (%d bytes) is whole", a.Name, a.Digest, a.Size)
	}
	return nil
}

// joinLogs merges consecutive LogWritten events of the same log into one,
// so an outcome and its log lines make two events, not three.
func joinLogs(evs []domain.Event) []domain.Event {
	var out []domain.Event
	for _, e := range evs {
		lw, ok := e.(domain.LogWritten)
		if n := len(out); ok && n > 0 {
			if prev, ok := out[n-1].(domain.LogWritten); ok && prev.Log == lw.Log {
				prev.Lines = append(append([]string(nil), prev.Lines...), lw.Lines...)
				out[n-1] = prev
				continue
			}
		}
		out = append(out, e)
	}
	return out
}
