package workers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/syncbuf"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/workers"
)

// serverLog gives w a logger that writes to the returned buffer.
func serverLog(w *workers.Workers) *syncbuf.Buffer {
	var b syncbuf.Buffer
	w.Logger = slog.New(slog.NewTextHandler(&b, nil))
	return &b
}

// runLog is the text of the run's log lines, of every log.
func (e *env) runLog(run string) string {
	e.t.Helper()
	recs, _, err := e.svc.History(context.Background(), run)
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, rec := range recs {
		if lw, ok := rec.Event.(domain.LogWritten); ok {
			b.WriteString(strings.Join(lw.Lines, "\n") + "\n")
		}
	}
	return b.String()
}

// reason is the reason of the run's last ProcessingFailed.
func (e *env) reason(run string) string {
	e.t.Helper()
	recs, _, err := e.svc.History(context.Background(), run)
	if err != nil {
		e.t.Fatal(err)
	}
	reason := ""
	for _, rec := range recs {
		if f, ok := rec.Event.(domain.ProcessingFailed); ok {
			reason = f.Reason
		}
	}
	return reason
}

func (e *env) create(run string, images int) {
	e.t.Helper()
	if _, err := e.svc.CreateRun(context.Background(), domain.CreateRun{Name: run, Config: e.config(images), Actor: alice}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) requestProcessing(run string) {
	e.t.Helper()
	if _, err := e.svc.RequestProcessing(context.Background(), run, false, false, alice); err != nil {
		e.t.Fatal(err)
	}
}

// outOfRange fails as association.neighbourDistances did on a catalogue
// row at RA NaN: an index of -1.
func outOfRange(i int) int {
	var s []int
	return s[i]
}

// TestPanickingJobFailsItsRunOnly: a job whose processing panics ends as
// its run's Error, with the panic and where it happened in the run's log
// and the stack in the server's log; the worker goes on, and another run's
// job, before and after, is processed as usual.
func TestPanickingJobFailsItsRunOnly(t *testing.T) {
	e := newEnv(t)
	logs := serverLog(e.w)
	real := e.w.Process
	e.w.Process = func(ctx context.Context, run string, cfg domain.RunConfig, prev *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		if run == "bad" {
			log.Infof("Associating measurements")
			outOfRange(-1)
		}
		return real(ctx, run, cfg, prev, add, log)
	}
	for _, run := range []string{"good", "bad", "after"} {
		e.create(run, 3)
		e.requestProcessing(run)
	}
	e.deliver(e.w, e.lastMessage("good", domain.TypeProcessingRequested))
	e.deliver(e.w, e.lastMessage("bad", domain.TypeProcessingRequested))
	e.deliver(e.w, e.lastMessage("after", domain.TypeProcessingRequested))

	bad := e.load("bad")
	if bad.Status != domain.StatusError || bad.Job != nil {
		t.Fatalf("the panicking job's run is %s with job %v, want Error", bad.Status, bad.Job)
	}
	const value = "runtime error: index out of range [-1]"
	if r := e.reason("bad"); !strings.Contains(r, "panicked: "+value) || !strings.Contains(r, "workers_test.outOfRange, containment_test.go:") {
		t.Fatalf("the failure's reason %q does not give the panic and where it happened", r)
	}
	if l := e.runLog("bad"); !strings.Contains(l, "ERROR Processing failed: processing job ") || !strings.Contains(l, value) || !strings.Contains(l, "INFO Associating measurements") {
		t.Fatalf("the run's log does not give the panic (or lost the job's lines):\n%s", l)
	}
	if s := logs.String(); !strings.Contains(s, "panicked") || !strings.Contains(s, "goroutine ") || !strings.Contains(s, "containment_test.go") {
		t.Fatalf("the server's log has no stack of the panic:\n%s", s)
	}
	for _, run := range []string{"good", "after"} {
		if r := e.load(run); r.Status != domain.StatusCompleted || r.Figures().NImages != 3 {
			t.Fatalf("run %s is %s with %d images, want Completed with 3", run, r.Status, r.Figures().NImages)
		}
		e.audit(run)
	}
	e.audit("bad")
	// The failed run can be processed again, by a job that does not panic.
	e.w.Process = real
	e.requestProcessing("bad")
	e.deliver(e.w, e.lastMessage("bad", domain.TypeProcessingRequested))
	if r := e.load("bad"); r.Status != domain.StatusCompleted {
		t.Fatalf("processed again the run is %s", r.Status)
	}
}

// TestPanickingVerificationFailsTheJob: a panic after the job, while its
// products are checked, is the job's failure too.
func TestPanickingVerificationFailsTheJob(t *testing.T) {
	e := newEnv(t)
	e.w.Artifacts = panickingArtifacts{e.arts}
	e.create("verify", 3)
	e.requestProcessing("verify")
	e.deliver(e.w, e.lastMessage("verify", domain.TypeProcessingRequested))
	if r := e.load("verify"); r.Status != domain.StatusError {
		t.Fatalf("the run is %s, want Error", r.Status)
	}
	if r := e.reason("verify"); !strings.Contains(r, "panicked: the artifact store broke") {
		t.Fatalf("the failure's reason %q does not give the panic", r)
	}
}

// panickingArtifacts is the artifact store whose Verify panics.
type panickingArtifacts struct{ workers.Artifacts }

func (panickingArtifacts) Verify(context.Context, string, int64) error {
	panic("the artifact store broke")
}

// TestPanickingRestoreFails: a restore whose verification panics ends as
// RestoreFailed, the run back to its status before the request, with the
// panic in the restore's log; the backup stays.
func TestPanickingRestoreFails(t *testing.T) {
	e := newEnv(t)
	const run = "restore"
	e.create(run, 3)
	e.requestProcessing(run)
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	if _, err := e.svc.UpdateConfig(context.Background(), run, e.config(4), alice); err != nil {
		t.Fatal(err)
	}
	e.requestProcessing(run)
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	if r := e.load(run); r.Status != domain.StatusCompleted || r.Backup == nil {
		t.Fatalf("after the addition the run is %s, backup %v", r.Status, r.Backup != nil)
	}
	if _, err := e.svc.RequestRestore(context.Background(), run, false, alice); err != nil {
		t.Fatal(err)
	}
	logs := serverLog(e.w)
	e.w.Artifacts = panickingArtifacts{e.arts}
	e.deliver(e.w, e.lastMessage(run, domain.TypeRestoreRequested))
	r := e.load(run)
	if r.Status != domain.StatusCompleted || r.Restore != nil || r.Backup == nil || e.count(run, domain.TypeRestoreFailed) != 1 {
		t.Fatalf("after a panicking restore the run is %s, restore %v, backup %v, %d failures", r.Status, r.Restore, r.Backup != nil, e.count(run, domain.TypeRestoreFailed))
	}
	if l := e.runLog(run); !strings.Contains(l, "ERROR Restore failed: restore of run restore panicked: the artifact store broke (at ") {
		t.Fatalf("the restore's log does not give the panic:\n%s", l)
	}
	if !strings.Contains(logs.String(), "goroutine ") {
		t.Fatalf("the server's log has no stack of the panic:\n%s", logs.String())
	}
	e.audit(run)
	// The restore can be asked for again, and succeeds.
	e.w.Artifacts = e.arts
	if _, err := e.svc.RequestRestore(context.Background(), run, false, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage(run, domain.TypeRestoreRequested))
	if r := e.load(run); r.Status != domain.StatusCompleted || r.Backup != nil || r.Figures().NImages != 3 {
		t.Fatalf("the second restore left the run %s, backup %v, %d images", r.Status, r.Backup != nil, r.Figures().NImages)
	}
}

// blockUntilStopped is a job that runs until its context ends (the
// process stops, or the job is cancelled), then returns what outcome
// says.
func blockUntilStopped(started chan<- struct{}, outcome func(ctx context.Context) (domain.Products, error)) workers.ProcessFunc {
	var once sync.Once
	return func(ctx context.Context, _ string, _ domain.RunConfig, _ *domain.Products, _ bool, _ workers.Logger) (domain.Products, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return outcome(ctx)
	}
}

func stopped(ctx context.Context) (domain.Products, error) { return domain.Products{}, ctx.Err() }

// TestRecoverGivesUpOnAJobThatKeepsStopping: a job whose process stops
// while running it (as a job that crashes the process does) is run again
// by Recover at each start, until it was started MaxJobStarts times; then
// Recover fails it with the reason instead of running it again.
func TestRecoverGivesUpOnAJobThatKeepsStopping(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "crashy"
	e.create(run, 3)
	e.requestProcessing(run)
	jobID := e.load(run).Job.ID

	w := e.w
	started := make(chan struct{})
	w.Process = blockUntilStopped(started, stopped)
	e.deliver0(w, e.lastMessage(run, domain.TypeProcessingRequested))
	for n := 1; ; n++ {
		<-started
		w.Close() // the process stops with the job unfinished
		if r := e.load(run); r.Status != domain.StatusRunning || r.Job == nil || r.Job.Starts != n || e.count(run, domain.TypeProcessingStarted) != n {
			t.Fatalf("after start %d the run is %s with job %+v and %d starts recorded", n, r.Status, r.Job, e.count(run, domain.TypeProcessingStarted))
		}
		if n == domain.MaxJobStarts {
			break
		}
		// The next start: Recover runs the job again, under the bound.
		w = e.newWorkers()
		started = make(chan struct{})
		w.Process = blockUntilStopped(started, stopped)
		if err := w.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	}

	last := e.newWorkers()
	ran := false
	last.Process = func(context.Context, string, domain.RunConfig, *domain.Products, bool, workers.Logger) (domain.Products, error) {
		ran = true
		return domain.Products{}, nil
	}
	if err := last.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	last.Wait()
	if ran {
		t.Fatalf("Recover ran a job that was started %d times", domain.MaxJobStarts)
	}
	r := e.load(run)
	if r.Status != domain.StatusError || r.Job != nil || e.count(run, domain.TypeProcessingStarted) != domain.MaxJobStarts {
		t.Fatalf("after Recover the run is %s with job %v and %d starts, want Error", r.Status, r.Job, e.count(run, domain.TypeProcessingStarted))
	}
	want := fmt.Sprintf("job %s was interrupted %d times (the process stopped while running it); giving up", jobID, domain.MaxJobStarts)
	if reason := e.reason(run); !strings.HasPrefix(reason, want) {
		t.Fatalf("the failure's reason is %q, want %q", reason, want)
	}
	if l := e.runLog(run); !strings.Contains(l, "ERROR Processing failed: "+want) {
		t.Fatalf("the run's log does not say why the job was given up:\n%s", l)
	}
	e.audit(run)
	// Recover again: nothing more.
	before := e.state(run)
	if err := last.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	last.Wait()
	if after := e.state(run); len(after.ids) != len(before.ids) {
		t.Fatal("a second Recover changed the run")
	}
}

// TestRecoverBoundIsASetting: Workers.MaxStarts overrides the bound.
func TestRecoverBoundIsASetting(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "once"
	e.create(run, 3)
	e.requestProcessing(run)
	started := make(chan struct{})
	e.w.Process = blockUntilStopped(started, stopped)
	e.deliver0(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	<-started
	e.w.Close()
	next := e.newWorkers()
	next.MaxStarts = 1
	if err := next.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	next.Wait()
	if r := e.load(run); r.Status != domain.StatusError || !strings.Contains(e.reason(run), "interrupted 1 times") {
		t.Fatalf("with MaxStarts 1 the run is %s (%q), want Error", r.Status, e.reason(run))
	}
}

// deliver0 hands a copy of msg to w's handler without waiting for the
// job it starts.
func (e *env) deliver0(w *workers.Workers, msg *message.Message) {
	e.t.Helper()
	if err := w.Handle(msg.Copy()); err != nil {
		e.t.Fatalf("handle %s: %v", msg.Metadata.Get(messaging.MetaType), err)
	}
}

// TestCancelStopsTheJob: cancelling a Running run ends its job at once
// (the run in Error, the reason in its log); the worker, told by the
// event, stops the job, whose late outcome (here products, as if it had
// finished regardless) is refused.
func TestCancelStopsTheJob(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "cancelled"
	e.create(run, 3)
	e.requestProcessing(run)
	started := make(chan struct{})
	e.w.Process = blockUntilStopped(started, func(context.Context) (domain.Products, error) {
		return domain.Products{Figures: domain.Figures{NImages: 3}}, nil
	})
	e.deliver0(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	<-started
	if _, err := e.svc.CancelJob(ctx, run, bob); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("bob cancelling alice's job: %v, want ErrForbidden", err)
	}
	res, err := e.svc.CancelJob(ctx, run, alice)
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Status != domain.StatusError {
		t.Fatalf("after the cancellation the run is %s", res.Run.Status)
	}
	// The relay delivers the job's end to the worker, which stops the job;
	// Wait returns once it has.
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingFailed))
	r := e.load(run)
	if r.Status != domain.StatusError || r.Job != nil || r.Figures().NImages != 0 {
		t.Fatalf("after the job stopped the run is %s with job %v and %d images", r.Status, r.Job, r.Figures().NImages)
	}
	if n := e.count(run, domain.TypeProcessingCompleted); n != 0 {
		t.Fatalf("the cancelled job's late outcome was recorded (%d completions)", n)
	}
	if e.reason(run) != "cancelled by alice" || !strings.Contains(e.runLog(run), "cancelled by alice") {
		t.Fatalf("the job's end says %q; log:\n%s", e.reason(run), e.runLog(run))
	}
	if _, err := e.svc.CancelJob(ctx, run, alice); !errors.Is(err, domain.ErrNotRunning) {
		t.Fatalf("cancelling a run in Error: %v, want ErrNotRunning", err)
	}
	e.audit(run)
	// Processed again, it completes.
	e.w.Process = processFunc(e.arts, e.survey.Dir)
	e.requestProcessing(run)
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	if r := e.load(run); r.Status != domain.StatusCompleted {
		t.Fatalf("processed again the run is %s", r.Status)
	}
}

// TestDeleteRunningRun: deleting a Running run cancels its job, stops it,
// and deletes the run.
func TestDeleteRunningRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "doomed"
	e.create(run, 3)
	e.requestProcessing(run)
	started := make(chan struct{})
	e.w.Process = blockUntilStopped(started, stopped)
	e.deliver0(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	<-started
	if _, err := e.svc.RequestDeletion(ctx, run, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingFailed))
	e.deliver(e.w, e.lastMessage(run, domain.TypeDeletionRequested))
	if r := e.load(run); !r.Deleted {
		t.Fatalf("the run is %s, not deleted", r.Status)
	}
	if n := e.count(run, domain.TypeProcessingCompleted); n != 0 {
		t.Fatalf("%d completions of the deleted run's job", n)
	}
	e.audit(run)
}

var bob = domain.Actor{Name: "bob"}

// TestPanickingHandlerDropsTheMessage: a panic in a handler with no run
// outcome to record (here the janitor's) is recovered and logged with its
// stack; the message is dropped rather than redelivered to panic again.
func TestPanickingHandlerDropsTheMessage(t *testing.T) {
	e := newEnv(t)
	const run = "janitored"
	e.create(run, 3)
	e.requestProcessing(run)
	e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	if _, err := e.svc.RequestDeletion(context.Background(), run, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage(run, domain.TypeDeletionRequested))
	logs := serverLog(e.w)
	e.w.Artifacts = deletePanics{e.arts}
	if err := e.w.Handle(e.lastMessage(run, domain.TypeRunDeleted)); err != nil {
		t.Fatalf("a panicking handler returned %v; the message should be dropped", err)
	}
	if s := logs.String(); !strings.Contains(s, "drop message whose handling panicked") || !strings.Contains(s, "the disk went away") || !strings.Contains(s, "goroutine ") {
		t.Fatalf("the server's log does not give the panic and its stack:\n%s", s)
	}
}

// deletePanics is the artifact store whose Delete panics.
type deletePanics struct{ workers.Artifacts }

func (deletePanics) Delete(string) error { panic("the disk went away") }
