package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
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
	Svc       *command.Service
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
