package workers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/app"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventjson"
	"github.com/piperun/piperun/internal/lease"
	"github.com/piperun/piperun/messaging"
)

// Logger is what a processing job logs to.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// ProcessFunc runs a processing job: the run's configuration, and in add
// mode the products of the last successful run.
type ProcessFunc func(ctx context.Context, run string, cfg domain.RunConfig, previous *domain.Products, add bool, log Logger) (domain.Products, error)

// Artifacts is the part of the artifact store the workers use.
type Artifacts interface {
	Verify(ctx context.Context, digest string, size int64) error
	Delete(digest string) error
}

// RunStates lists every run's state, for the janitor's reference check and
// for Recover.
type RunStates interface {
	ListRunStates(ctx context.Context) ([]domain.Run, error)
}

// PendingRuns, when RunStates has it, lists only the runs with work
// pending, which is all Recover needs.
type PendingRuns interface {
	PendingRunStates(ctx context.Context) ([]domain.Run, error)
}

// Owner says which runs' jobs and restores are this process's. With
// Kafka, it is the consumer group's assignment: a run belongs to whoever
// is assigned the partition of its events (messaging/kafka.Ownership).
type Owner interface {
	// Owns reports whether this process is, now, the one to carry out
	// the run's work.
	Owns(run string) bool
}

// Actors that appear in events written by the workers.
const (
	ActorProcessing = "system:processing-worker"
	ActorRestore    = "system:restore-worker"
	ActorJanitor    = "system:artifact-janitor"
)

// Workers dispatches run events to the worker that reacts to them.
type Workers struct {
	Svc       *app.Service
	Process   ProcessFunc
	Artifacts Artifacts
	Runs      RunStates
	// Refs, when set, answers the janitor's reference check from an index
	// instead of reading every run (Runs).
	Refs   ArtifactRefs
	Logger *slog.Logger
	// MaxJobs bounds concurrent processing jobs (default 2).
	MaxJobs int
	// FlushEvery is how often a running job's log lines are written
	// (default 1s).
	FlushEvery time.Duration
	// OnRestoreDone, if set, observes each restore's duration and outcome.
	OnRestoreDone func(d time.Duration, ok bool)
	// Leases, when set, makes each job and restore exclusive among the
	// processes sharing the directory: a worker runs one only while it
	// holds its lease, which the kernel frees if the holder dies. Recover
	// can then take up a dead process's job at once, and leaves a live
	// one's alone. Without it, a process only avoids running a job twice
	// itself.
	Leases *lease.Dir
	// Owner, when set, makes each run's jobs and restores exclusive
	// without a shared directory: a worker carries out a run's work only
	// while Owner says the run is its own, and Recover takes up only the
	// runs it owns. A job not running in this process while its run is
	// owned here was left by a previous owner (dead, or revoked and
	// stopped: see Disown), and is started again. A stale owner that has
	// not heard of its revocation yet is fenced by the store's expected
	// version: the job's outcome is recorded once, by whichever worker
	// records it first.
	Owner Owner
	// MaxStarts bounds how many times a job is started (default
	// domain.MaxJobStarts): Recover fails a job that was started that many
	// times and never finished (the process stopped while running it each
	// time) instead of starting it again.
	MaxStarts int

	once  sync.Once
	slots chan struct{}
	mu    sync.Mutex
	// running holds the jobs executing in this process, by job ID.
	running map[string]*runningJob
	wg      sync.WaitGroup
	baseCtx context.Context
	cancel  context.CancelFunc
}

// runningJob is a job executing in this process.
type runningJob struct {
	run  string
	stop context.CancelFunc
	// disowned: the run's partition was revoked; the job is stopped and
	// its outcome left to the new owner.
	disowned bool
}

func (w *Workers) init() {
	w.once.Do(func() {
		n := w.MaxJobs
		if n <= 0 {
			n = 2
		}
		w.slots = make(chan struct{}, n)
		w.running = map[string]*runningJob{}
		if w.Logger == nil {
			w.Logger = slog.Default()
		}
		if w.FlushEvery <= 0 {
			w.FlushEvery = time.Second
		}
		w.baseCtx, w.cancel = context.WithCancel(context.Background())
	})
}

// Close stops running jobs (they are re-driven by Recover at the next
// start) and waits for them.
func (w *Workers) Close() {
	w.init()
	w.cancel()
	w.wg.Wait()
}

// Wait blocks until no job started by this process is running.
func (w *Workers) Wait() { w.wg.Wait() }

// Handle is the watermill handler: it reads the event and dispatches it.
// Returning an error nacks the message, which is then redelivered.
//
// A panic while handling a message is recovered, logged with its stack,
// and the message dropped: it would panic again at every redelivery, and
// must not stop the process, which serves every other run. (Jobs and
// restores record their own panics as their run's failure; what else is
// left pending is taken up by Recover at the next start.)
func (w *Workers) Handle(msg *message.Message) (err error) {
	w.init()
	defer func() {
		if v := recover(); v != nil {
			w.Logger.Error("drop message whose handling panicked", "uuid", msg.UUID,
				"type", msg.Metadata.Get(messaging.MetaType), "panic", v, "at", panicLocation(), "stack", string(debug.Stack()))
			err = nil
		}
	}()
	env, err := messaging.FromMessage(msg)
	if err != nil {
		// A message we cannot read will never become readable: drop it
		// loudly rather than block the topic.
		w.Logger.Error("drop unreadable message", "uuid", msg.UUID, "err", err)
		return nil
	}
	ctx := msg.Context()
	switch env.Type {
	case domain.TypeProcessingRequested:
		return w.HandleProcessing(ctx, env.Run)
	case domain.TypeRestoreRequested:
		return w.HandleRestore(ctx, env.Run)
	case domain.TypeDeletionRequested:
		return w.HandleDeletion(ctx, env.Run)
	case domain.TypeProcessingFailed:
		w.stopJob(env)
		return nil
	case domain.TypeRunRestored, domain.TypeRunDeleted:
		return w.HandleJanitor(ctx, env)
	}
	return nil
}

// Recover re-drives every run whose job, restore or deletion was pending,
// e.g. after a crash. It is safe to call at any time.
func (w *Workers) Recover(ctx context.Context) error {
	w.init()
	list := w.Runs.ListRunStates
	if p, ok := w.Runs.(PendingRuns); ok {
		list = p.PendingRunStates
	}
	runs, err := list(ctx)
	if err != nil {
		return fmt.Errorf("recover pending work: %w", err)
	}
	var errs []error
	for _, r := range runs {
		if !w.owns(r.Name) {
			continue
		}
		err := w.recovering("recover run "+r.Name, func() error {
			switch r.Status {
			case domain.StatusQueued, domain.StatusRunning:
				return w.handleProcessing(ctx, r.Name, true)
			case domain.StatusRestoring:
				return w.HandleRestore(ctx, r.Name)
			case domain.StatusDeleting:
				return w.HandleDeletion(ctx, r.Name)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// recovering runs f, and returns a panic in it as an error (logged with
// its stack), so that one run's pending work cannot stop the others'.
func (w *Workers) recovering(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = w.panicked(what, v)
		}
	}()
	return f()
}

// panicked logs a recovered panic with its stack to the server's log, and
// returns it as an error that says what panicked, with the panic's value
// and where it happened: what the run's log shows. It must be called from
// the deferred function that recovered v.
func (w *Workers) panicked(what string, v any) error {
	at := panicLocation()
	w.Logger.Error(what+" panicked", "panic", v, "at", at, "stack", string(debug.Stack()))
	return fmt.Errorf("%s panicked: %v (at %s)", what, v, at)
}

// panicLocation returns the function, file and line that panicked, for a
// deferred function that recovered the panic: the first frame after the
// runtime's panic machinery.
func panicLocation() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && !strings.HasPrefix(f.Function, "runtime."):
			fn := f.Function
			if i := strings.LastIndex(fn, "/"); i >= 0 {
				fn = fn[i+1:]
			}
			return fmt.Sprintf("%s, %s:%d", fn, path.Base(f.File), f.Line)
		}
		if !more {
			return "unknown location"
		}
	}
}

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

// owns reports whether the run's work is this process's: always without
// an Owner.
func (w *Workers) owns(run string) bool {
	return w.Owner == nil || w.Owner.Owns(run)
}

// Disown stops the jobs of the runs that are no longer this process's
// (Owner has just said so: their partitions were revoked). A stopped
// job's outcome is not recorded: the job stays pending for the run's new
// owner, which starts it again.
func (w *Workers) Disown() {
	w.init()
	if w.Owner == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, j := range w.running {
		if !j.disowned && !w.Owner.Owns(j.run) {
			w.Logger.Info("stopping job of a run no longer owned by this process", "run", j.run, "job", id)
			j.disowned = true
			j.stop()
		}
	}
}

// disowned reports whether Disown stopped the job.
func (w *Workers) disowned(jobID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.running[jobID]
	return j != nil && j.disowned
}

// lease takes the lease on name when the workers have leases (nil, true
// when they have none).
func (w *Workers) lease(name string) (*lease.Lease, bool, error) {
	if w.Leases == nil {
		return nil, true, nil
	}
	l, ok, err := w.Leases.TryAcquire(name)
	if err != nil {
		return nil, false, fmt.Errorf("workers: %w", err)
	}
	if !ok {
		w.Logger.Info("left to the process that holds its lease", "lease", name)
	}
	return l, ok, nil
}

// release gives up a lease (nil: none); finished removes its file, for
// work whose outcome is recorded.
func (w *Workers) release(l *lease.Lease, finished bool) {
	if l == nil {
		return
	}
	if err := l.Release(finished); err != nil {
		w.Logger.Warn("release lease", "err", err)
	}
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
func (w *Workers) runJob(ctx context.Context, run string, job domain.Job, previous *domain.Products, log *app.RunLog, release func(finished bool)) {
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

func (w *Workers) verifyBackup(ctx context.Context, r domain.Run, log *app.RunLog) error {
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

// HandleDeletion finishes the pending deletion of a run.
func (w *Workers) HandleDeletion(ctx context.Context, run string) error {
	w.init()
	_, err := w.Svc.ExecRun(ctx, run, ActorJanitor, func(r *domain.Run) ([]domain.Event, error) {
		return r.FinishDeletion(), nil
	})
	if err != nil {
		return fmt.Errorf("finish deletion of run %s: %w", run, err)
	}
	return nil
}

// HandleJanitor deletes the artifacts that a restore abandoned or a deleted
// run left, unless some run still references them.
func (w *Workers) HandleJanitor(ctx context.Context, env messaging.Envelope) error {
	w.init()
	e, err := eventjson.Decode(env.Type, env.Data)
	if err != nil {
		w.Logger.Error("janitor: drop undecodable event", "id", env.ID, "err", err)
		return nil
	}
	var candidates []domain.Artifact
	switch e := e.(type) {
	case domain.RunRestored:
		candidates = e.Abandoned
	case domain.RunDeleted:
		candidates = e.Artifacts
	}
	if len(candidates) == 0 {
		return nil
	}
	// The read models may lag behind the event being handled: take the
	// run's own state from the store, the others' from the read models.
	own, err := w.Svc.LoadRun(ctx, env.Run)
	if err != nil {
		return fmt.Errorf("janitor: %w", err)
	}
	live, pending, err := w.othersUse(ctx, env.Run, candidates)
	if err != nil {
		return fmt.Errorf("janitor: %w", err)
	}
	if !own.Deleted {
		pending = pending || own.Job != nil
		uses(&own, live)
	}
	if pending {
		// A running job may have written products with the same content
		// (products are content-addressed) that it has not recorded yet:
		// deleting now could pull them from under it. Leave the
		// candidates; an orphaned file costs only space.
		w.Logger.Info("janitor left artifacts in place while a job is pending", "run", env.Run, "artifacts", len(candidates))
		return nil
	}
	for _, a := range candidates {
		if live[a.Digest] {
			continue
		}
		if err := w.Artifacts.Delete(a.Digest); err != nil {
			return fmt.Errorf("janitor: delete %s: %w", a.Digest, err)
		}
		w.Logger.Info("janitor deleted artifact", "run", env.Run, "artifact", a.Name, "digest", a.Digest)
	}
	return nil
}

// ArtifactRefs answers the janitor's question from an index: which of
// these artifacts do runs other than one use, and is any job pending.
type ArtifactRefs interface {
	ArtifactUse(ctx context.Context, digests []string, except string) (used map[string]bool, pendingJob bool, err error)
}

// othersUse returns the candidates that runs other than run use, and
// whether any of those runs has a job pending: from Refs when set, else by
// reading every run's state.
func (w *Workers) othersUse(ctx context.Context, run string, candidates []domain.Artifact) (map[string]bool, bool, error) {
	if w.Refs != nil {
		digests := make([]string, len(candidates))
		for i, a := range candidates {
			digests[i] = a.Digest
		}
		return w.Refs.ArtifactUse(ctx, digests, run)
	}
	runs, err := w.Runs.ListRunStates(ctx)
	if err != nil {
		return nil, false, err
	}
	live, pending := map[string]bool{}, false
	for i := range runs {
		r := &runs[i]
		if r.Name == run || r.Deleted {
			continue
		}
		pending = pending || r.Job != nil
		uses(r, live)
	}
	return live, pending, nil
}

// uses marks the artifacts of a run's products and backup in live.
func uses(r *domain.Run, live map[string]bool) {
	if r.Products != nil {
		for _, a := range r.Products.Artifacts {
			live[a.Digest] = true
		}
	}
	if r.Backup != nil {
		for _, a := range r.Backup.Products.Artifacts {
			live[a.Digest] = true
		}
	}
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
