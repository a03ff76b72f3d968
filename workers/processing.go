// Processing jobs: starting a run's pending job, running it, recording its outcome.

package workers

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/messaging"
)

// stopJob stops the job that a ProcessingFailed event ended, if this
// process runs it: a cancellation (or deletion) of its run, recorded by
// another part of the service. (A job's own failure arrives here too,
// once the job has returned: nothing to stop then.)
func (w *Workers) stopJob(env messaging.Envelope) {
	e, err := eventjson.Decode(env.Type, env.Data)
	if err != nil {
		w.Logger.Error("drop undecodable event", "id", env.ID, "err", err)
		return
	}
	f, ok := e.(domain.ProcessingFailed)
	if !ok {
		return
	}
	w.mu.Lock()
	j := w.running[f.JobID]
	w.mu.Unlock()
	if j != nil {
		w.Logger.Info("stopping job that ended", "run", env.Run, "job", f.JobID, "reason", f.Reason)
		j.stop()
	}
}

// HandleProcessing starts the pending job of a run in the background,
// unless a worker has started it already: a message delivered again, or to
// every process that relays the log, must not run a job twice. The job's
// outcome is appended when it ends.
func (w *Workers) HandleProcessing(ctx context.Context, run string) error {
	return w.handleProcessing(ctx, run, false)
}

// handleProcessing is HandleProcessing; with resume it also runs again a
// job that was started but never finished, which Recover asks for since the
// worker that started it died with the process.
func (w *Workers) handleProcessing(ctx context.Context, run string, resume bool) error {
	w.init()
	if !w.owns(run) {
		return nil
	}
	r, err := w.Svc.LoadRun(ctx, run)
	if err != nil {
		return err
	}
	if r.Job == nil {
		return nil
	}
	job := *r.Job
	w.mu.Lock()
	if _, ok := w.running[job.ID]; ok {
		w.mu.Unlock()
		return nil
	}
	// The job's context exists from here on, so that a cancellation that
	// arrives before the job starts stops it too.
	jobCtx, stop := context.WithCancel(w.baseCtx)
	w.running[job.ID] = &runningJob{run: run, stop: stop}
	w.mu.Unlock()
	held, ok, err := w.lease("job-" + job.ID)
	if err != nil || !ok {
		// !ok: a live process runs the job.
		w.done(job.ID)
		return err
	}
	release := func(finished bool) { w.release(held, finished) }

	log := w.Svc.NewRunLog(run, job.Log, domain.LogRun, job.Debug)
	res, err := w.Svc.ExecRun(ctx, run, ActorProcessing, func(r *domain.Run) ([]domain.Event, error) {
		log.Take() // lines of an earlier decision of this command
		evs := r.StartProcessing(job.ID)
		if len(evs) == 0 && (resume || held != nil || w.Owner != nil) {
			// Started before but not finished, and (with leases) no live
			// process holds it, or (with an owner) the run is ours and
			// the job not running here: the worker that ran it died or
			// was disowned. Started again, unless that happened too often.
			evs = r.ResumeProcessing(job.ID, w.MaxStarts)
			if len(evs) > 0 {
				if f, ok := evs[0].(domain.ProcessingFailed); ok {
					log.Errorf("Processing failed: %s", f.Reason)
					return append(log.Take(), evs...), nil
				}
				log.Warnf("Job %s was interrupted (the process stopped while running it); running it again: start %d of at most %d",
					job.ID, max(r.Job.Starts, 1)+1, cmp.Or(max(w.MaxStarts, 0), domain.MaxJobStarts))
			}
		}
		if len(evs) == 0 {
			return nil, nil
		}
		log.Infof("Processing run %s (%s mode) with %d images", run, job.Mode, len(job.Config.Inputs.Images))
		return append(log.Take(), evs...), nil
	})
	if err != nil {
		release(false)
		w.done(job.ID)
		return err
	}
	if res.Run.Job == nil || res.Run.Job.ID != job.ID {
		release(true) // finished already
		w.done(job.ID)
		return nil
	}
	if len(res.Events) == 0 {
		// Another worker runs it, or ran it and died: without leases
		// there is no telling, and Recover, at the next start, takes it
		// up again.
		w.done(job.ID)
		return nil
	}
	var previous *domain.Products
	if job.Mode == domain.ModeAdd && res.Run.Products != nil {
		p := res.Run.Products.Clone()
		previous = &p
	}
	w.wg.Add(1)
	go w.runJob(jobCtx, run, job, previous, log, release)
	return nil
}

func (w *Workers) done(jobID string) {
	w.mu.Lock()
	if j := w.running[jobID]; j != nil {
		j.stop()
	}
	delete(w.running, jobID)
	w.mu.Unlock()
}

// runJob runs a job and records its outcome. ctx ends when the process
// shuts down (the job is then left pending, for Recover) or when the job
// was ended by its run's cancellation or deletion (its late outcome is
// then offered to the run, which refuses it).
func (w *Workers) runJob(ctx context.Context, run string, job domain.Job, previous *domain.Products, log *command.RunLog, release func(finished bool)) {
	defer w.wg.Done()
	defer w.done(job.ID)
	// Released once the outcome is recorded, or left for another worker
	// when shutting down first.
	defer func() { release(w.baseCtx.Err() == nil) }()
	// What panics outside the job itself (the job's own panics are its
	// failure, see process) is logged; the process goes on.
	defer func() {
		if v := recover(); v != nil {
			_ = w.panicked(fmt.Sprintf("processing worker of run %s (job %s)", run, job.ID), v)
		}
	}()
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-w.slots }()

	flushCtx, stopFlush := context.WithCancel(ctx)
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		defer func() {
			if v := recover(); v != nil {
				_ = w.panicked("log flush of run "+run, v)
			}
		}()
		t := time.NewTicker(w.FlushEvery)
		defer t.Stop()
		for {
			select {
			case <-flushCtx.Done():
				return
			case <-t.C:
				if err := log.Flush(flushCtx, ActorProcessing); err != nil && flushCtx.Err() == nil {
					w.Logger.Warn("flush job log", "run", run, "err", err)
				}
			}
		}
	}()
	start := time.Now()
	products, perr := w.process(ctx, run, job, previous, log)
	stopFlush()
	<-flushed
	if w.baseCtx.Err() != nil || w.disowned(job.ID) {
		// Shutting down, or the run is no longer ours: leave the job
		// pending, for Recover here or at its new owner.
		return
	}
	if perr != nil {
		log.Errorf("Processing failed: %v", perr)
	} else {
		log.Infof("Processing finished in %.2f s: %d images, %d sources, %d selavy measurements",
			time.Since(start).Seconds(), products.Figures.NImages, products.Figures.NSources, products.Figures.NSelavyMeasurements)
	}
	lines := log.Take()
	// With the process's context: a job stopped by its cancellation still
	// offers its outcome, which the run refuses (the job is no longer the
	// pending one).
	w.appendWithRetry(w.baseCtx, "finish job", run, ActorProcessing, func(r *domain.Run) ([]domain.Event, error) {
		evs := r.FinishProcessing(job.ID, &products, perr)
		if len(evs) == 0 {
			return nil, nil
		}
		return append(append([]domain.Event(nil), lines...), evs...), nil
	})
}

// process runs the job's ProcessFunc and checks its products; a panic in
// either is the job's failure.
func (w *Workers) process(ctx context.Context, run string, job domain.Job, previous *domain.Products, log Logger) (p domain.Products, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = domain.Products{}, w.panicked(fmt.Sprintf("processing job %s of run %s", job.ID, run), v)
		}
	}()
	p, err = w.Process(ctx, run, job.Config, previous, job.Mode == domain.ModeAdd, log)
	if err != nil {
		return p, err
	}
	// Never record products that are not there (the janitor may have
	// removed a file with the same content while the job ran).
	for _, a := range p.Artifacts {
		if err := w.Artifacts.Verify(ctx, a.Digest, a.Size); err != nil {
			return p, fmt.Errorf("product %s is not whole after the job: %w; process the run again", a.Name, err)
		}
	}
	return p, nil
}

// appendWithRetry keeps trying an append whose failure is transient (the
// store unavailable), so that a finished job's outcome is not lost.
func (w *Workers) appendWithRetry(ctx context.Context, what, run, actor string, decide func(r *domain.Run) ([]domain.Event, error)) {
	backoff := 200 * time.Millisecond
	for {
		_, err := w.Svc.ExecRun(ctx, run, actor, decide)
		if err == nil {
			return
		}
		w.Logger.Error(what+"; will retry", "run", run, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
