package workers_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/sqlite"
	"github.com/piperun/piperun/messaging"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/pipeline/association"
	"github.com/piperun/piperun/projections"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/synth"
	"github.com/piperun/piperun/workers"
)

// env is a worker over a real SQLite event store, real artifacts, real read
// models and the real pipeline on a synthetic survey.
type env struct {
	t      *testing.T
	store  *sqlite.Store
	svc    *command.Service
	arts   *artifacts.Store
	read   *projections.Store
	survey synth.Survey
	w      *workers.Workers
}

// caughtUp gives the workers the read models as of the store's head, as
// the server's projector would shortly after each append.
type caughtUp struct {
	read  *projections.Store
	store eventstore.Store
}

func (c caughtUp) ListRunStates(ctx context.Context) ([]domain.Run, error) {
	if err := c.read.CatchUp(ctx, c.store); err != nil {
		return nil, err
	}
	return c.read.ListRunStates(ctx)
}

func (c caughtUp) ArtifactUse(ctx context.Context, digests []string, except string) (map[string]bool, bool, error) {
	if err := c.read.CatchUp(ctx, c.store); err != nil {
		return nil, false, err
	}
	return c.read.ArtifactUse(ctx, digests, except)
}

// processFunc is the server's adapter of the pipeline (wiring/process.go).
func processFunc(store *artifacts.Store, imagesRoot string) workers.ProcessFunc {
	return func(ctx context.Context, run string, cfg domain.RunConfig, previous *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		return pipeline.Process(ctx, store, pipeline.Job{
			Run: run, Config: cfg, ImagesRoot: imagesRoot, Previous: previous, Add: add,
			Associate: association.Associator{},
		}, log)
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, func(dir string) *artifacts.Store {
		arts, err := artifacts.New(filepath.Join(dir, "artifacts"))
		if err != nil {
			t.Fatal(err)
		}
		return arts
	})
}

// newEnvWith is an environment in a new directory: a synthetic survey, the
// SQLite event store and read models, and the artifact store openArtifacts
// returns (given the directory), with workers over them.
func newEnvWith(t *testing.T, openArtifacts func(dir string) *artifacts.Store) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	survey, err := synth.Generate(filepath.Join(dir, "images"), synth.Options{Images: 4, Sources: 12, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	read, err := projections.Open(ctx, filepath.Join(dir, "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		read.Close()
		store.Close()
	})
	e := &env{t: t, store: store, svc: command.New(store), arts: openArtifacts(dir), read: read, survey: survey}
	e.w = e.newWorkers()
	return e
}

// newWorkers returns a worker instance, as another process would have.
func (e *env) newWorkers() *workers.Workers {
	w := &workers.Workers{
		Svc: e.svc, Process: processFunc(e.arts, e.survey.Dir), Artifacts: e.arts,
		Runs: caughtUp{e.read, e.store}, Refs: caughtUp{e.read, e.store}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		FlushEvery: 5 * time.Millisecond,
	}
	e.t.Cleanup(w.Close)
	return w
}

// config is a valid configuration over the first n synthetic images.
func (e *env) config(n int) domain.RunConfig {
	e.t.Helper()
	c, err := runconfig.Parse([]byte(runconfig.Render(synth.Inputs(e.survey.Images[:n]), "dup")))
	if err == nil {
		err = c.CheckPaths(e.survey.Dir, true)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Domain()
}

var alice = domain.Actor{Name: "alice"}

// stream returns the run's events.
func (e *env) stream(run string) []eventstore.Event {
	e.t.Helper()
	evs, err := e.store.ReadStream(context.Background(), command.RunStream(run), 1, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// lastMessage is the newest event of type typ in the run's stream, as the
// relay would publish it.
func (e *env) lastMessage(run, typ string) *message.Message {
	e.t.Helper()
	evs := e.stream(run)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return messaging.ToMessage(evs[i])
		}
	}
	e.t.Fatalf("run %s has no %s event", run, typ)
	return nil
}

// deliver hands a copy of msg to the worker's handler, as a redelivery
// would, and waits for any job it started.
func (e *env) deliver(w *workers.Workers, msg *message.Message) {
	e.t.Helper()
	if err := w.Handle(msg.Copy()); err != nil {
		e.t.Fatalf("handle %s: %v", msg.Metadata.Get(messaging.MetaType), err)
	}
	w.Wait()
}

// files lists the artifact store's files.
func (e *env) files() []string {
	e.t.Helper()
	var out []string
	err := filepath.WalkDir(e.arts.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// state is what a redelivery must leave alone: the run's stream and the
// artifact files.
type state struct {
	ids   []string
	files []string
}

func (e *env) state(run string) state {
	var s state
	for _, ev := range e.stream(run) {
		s.ids = append(s.ids, ev.ID)
	}
	s.files = e.files()
	return s
}

// deliverAgain delivers msg once more, to w and to a fresh worker instance
// (another process, or this one after a restart), and checks that neither
// changed anything.
func (e *env) deliverAgain(run string, msg *message.Message) {
	e.t.Helper()
	before := e.state(run)
	for _, w := range []*workers.Workers{e.w, e.newWorkers()} {
		e.deliver(w, msg)
		if after := e.state(run); !slices.Equal(before.ids, after.ids) || !slices.Equal(before.files, after.files) {
			e.t.Fatalf("redelivered %s changed things: %d events and %d files before, %d and %d after",
				msg.Metadata.Get(messaging.MetaType), len(before.ids), len(before.files), len(after.ids), len(after.files))
		}
	}
}

func (e *env) load(run string) domain.Run {
	e.t.Helper()
	r, err := e.svc.LoadRun(context.Background(), run)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// count returns how many events of type typ the run's stream holds.
func (e *env) count(run, typ string) int {
	n := 0
	for _, ev := range e.stream(run) {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// audit checks the run's history with the domain's audit.
func (e *env) audit(run string) {
	e.t.Helper()
	recs, _, err := e.svc.History(context.Background(), run)
	if err != nil {
		e.t.Fatal(err)
	}
	if findings := domain.Audit(recs); len(findings) > 0 {
		e.t.Fatalf("audit of run %s: %v", run, findings)
	}
}

// TestDuplicateDelivery delivers every message a run's life produces twice
// (then once more to a fresh worker), and checks that the repeat changes
// neither the event stream nor the artifact files: processing (full and
// add), restore (successful and failed), the janitor after a restore and
// after a deletion, and the deletion.
func TestDuplicateDelivery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "dup"
	if _, err := e.svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: e.config(3), Actor: alice}); err != nil {
		t.Fatal(err)
	}

	// Full processing, with the message delivered twice at once while the
	// job runs: one job, one start, one outcome.
	if _, err := e.svc.RequestProcessing(ctx, run, false, false, alice); err != nil {
		t.Fatal(err)
	}
	full := e.lastMessage(run, domain.TypeProcessingRequested)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := e.w.Handle(full.Copy()); err != nil {
				t.Errorf("handle processing: %v", err)
			}
		})
	}
	wg.Wait()
	e.w.Wait()
	if r := e.load(run); r.Status != domain.StatusCompleted {
		t.Fatalf("after processing the run is %s", r.Status)
	}
	if s, c := e.count(run, domain.TypeProcessingStarted), e.count(run, domain.TypeProcessingCompleted); s != 1 || c != 1 {
		t.Fatalf("a message delivered twice at once gave %d starts and %d completions, want 1 and 1", s, c)
	}
	e.deliverAgain(run, full)
	preAddition := e.load(run).Products

	// Add an image: add mode, with a backup.
	if _, err := e.svc.UpdateConfig(ctx, run, e.config(4), alice); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, run, true, false, alice); err != nil {
		t.Fatal(err)
	}
	add := e.lastMessage(run, domain.TypeProcessingRequested)
	e.deliver(e.w, add)
	if r := e.load(run); r.Status != domain.StatusCompleted || r.Backup == nil || r.Figures().NImages != 4 {
		t.Fatalf("after the addition: %s, backup %v, %d images", r.Status, r.Backup != nil, r.Figures().NImages)
	}
	e.deliverAgain(run, add)
	e.deliverAgain(run, full) // an old message, redelivered late

	// A restore whose backup is damaged fails; the failure is final for
	// that request.
	victim := preAddition.Artifacts[0]
	path := artifactPath(e.arts, victim.Digest)
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append([]byte("damaged"), original...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestRestore(ctx, run, false, alice); err != nil {
		t.Fatal(err)
	}
	failed := e.lastMessage(run, domain.TypeRestoreRequested)
	e.deliver(e.w, failed)
	if r := e.load(run); r.Status != domain.StatusCompleted || r.Backup == nil || e.count(run, domain.TypeRestoreFailed) != 1 {
		t.Fatalf("after a restore of a damaged backup: %s, backup %v, %d failures", r.Status, r.Backup != nil, e.count(run, domain.TypeRestoreFailed))
	}
	e.deliverAgain(run, failed)
	if err := os.WriteFile(path, original, 0o644); err != nil {
		t.Fatal(err)
	}
	e.deliverAgain(run, failed) // even with the backup whole again

	// A restore, delivered twice at once: one outcome.
	if _, err := e.svc.RequestRestore(ctx, run, false, alice); err != nil {
		t.Fatal(err)
	}
	restore := e.lastMessage(run, domain.TypeRestoreRequested)
	for range 2 {
		wg.Go(func() {
			if err := e.w.Handle(restore.Copy()); err != nil {
				t.Errorf("handle restore: %v", err)
			}
		})
	}
	wg.Wait()
	r := e.load(run)
	if r.Status != domain.StatusCompleted || r.Backup != nil || e.count(run, domain.TypeRunRestored) != 1 {
		t.Fatalf("after the restore: %s, backup %v, %d restores", r.Status, r.Backup != nil, e.count(run, domain.TypeRunRestored))
	}
	if !equalArtifacts(r.Products.Artifacts, preAddition.Artifacts) {
		t.Fatal("the restore did not bring back the pre-addition products")
	}
	e.deliverAgain(run, restore)
	e.deliverAgain(run, failed)

	// The janitor deletes what only the addition used, once.
	restored := e.lastMessage(run, domain.TypeRunRestored)
	before := e.files()
	e.deliver(e.w, restored)
	if n := len(before) - len(e.files()); n == 0 {
		t.Fatal("the janitor deleted nothing after a restore that abandoned the addition's products")
	}
	for _, a := range r.Products.Artifacts {
		if err := e.arts.Verify(ctx, a.Digest, a.Size); err != nil {
			t.Fatalf("the janitor damaged a product the run still uses: %v", err)
		}
	}
	e.deliverAgain(run, restored)

	// Deletion, then the janitor on the deleted run's products.
	if _, err := e.svc.RequestDeletion(ctx, run, alice); err != nil {
		t.Fatal(err)
	}
	deletion := e.lastMessage(run, domain.TypeDeletionRequested)
	e.deliver(e.w, deletion)
	if !e.load(run).Deleted {
		t.Fatal("the run was not deleted")
	}
	e.deliverAgain(run, deletion)
	deleted := e.lastMessage(run, domain.TypeRunDeleted)
	e.deliver(e.w, deleted)
	for _, a := range r.Products.Artifacts {
		if ok, err := e.arts.Has(a.Digest); err != nil || ok {
			t.Fatalf("product %s of the deleted run is still stored (%v)", a.Name, err)
		}
	}
	e.deliverAgain(run, deleted)

	// Every message of the history at once, in order, once more; then the
	// crash recovery, twice.
	before2 := e.state(run)
	for _, ev := range e.stream(run) {
		e.deliver(e.w, messaging.ToMessage(ev))
	}
	for range 2 {
		if err := e.w.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		e.w.Wait()
	}
	if after := e.state(run); !slices.Equal(before2.ids, after.ids) || !slices.Equal(before2.files, after.files) {
		t.Fatal("replaying the whole history to the worker changed things")
	}
	e.audit(run)
}

// TestDuplicateDeliveryToAnotherWorker delivers a processing request to a
// second worker instance while the first one runs the job. Both share the
// event store, as two processes on one data directory do.
func TestDuplicateDeliveryToAnotherWorker(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "twice"
	if _, err := e.svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: e.config(4), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, run, false, false, alice); err != nil {
		t.Fatal(err)
	}
	msg := e.lastMessage(run, domain.TypeProcessingRequested)
	// The first worker's job blocks until released, so the second delivery
	// surely lands while it runs.
	release := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	inner := e.w.Process
	e.w.Process = func(ctx context.Context, run string, cfg domain.RunConfig, previous *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		once.Do(func() { close(started) })
		<-release
		return inner(ctx, run, cfg, previous, add, log)
	}
	if err := e.w.Handle(msg.Copy()); err != nil {
		t.Fatal(err)
	}
	<-started
	before := e.state(run)
	other := e.newWorkers()
	var ranAgain atomic.Bool
	other.Process = func(ctx context.Context, run string, cfg domain.RunConfig, previous *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		ranAgain.Store(true)
		return inner(ctx, run, cfg, previous, add, log)
	}
	if err := other.Handle(msg.Copy()); err != nil {
		t.Fatal(err)
	}
	other.Wait()
	after := e.state(run)
	close(release)
	e.w.Wait()
	if !slices.Equal(before.ids, after.ids) {
		t.Errorf("a duplicate delivered to another worker while the job ran changed the stream: %d events before, %d after", len(before.ids), len(after.ids))
	}
	if ranAgain.Load() {
		t.Error("a duplicate delivered to another worker while the job ran started the job a second time")
	}
	if c := e.count(run, domain.TypeProcessingCompleted) + e.count(run, domain.TypeProcessingFailed); c != 1 {
		t.Errorf("%d job outcomes, want 1", c)
	}
	e.audit(run)
}

// artifactPath is where the artifact store keeps a digest's file.
func artifactPath(s *artifacts.Store, digest string) string {
	h := digest[len("sha256:"):]
	return filepath.Join(s.Dir(), "sha256", h[:2], h[2:])
}

func equalArtifacts(a, b []domain.Artifact) bool {
	return slices.Equal(a, b)
}

// TestRecoverResumesInterruptedJob: a job whose worker died stays with
// redeliveries (which cannot tell a dead worker from a busy one), and
// Recover at the next start runs it again, once.
func TestRecoverResumesInterruptedJob(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const run = "interrupted"
	if _, err := e.svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: e.config(3), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, run, false, false, alice); err != nil {
		t.Fatal(err)
	}
	msg := e.lastMessage(run, domain.TypeProcessingRequested)
	started := make(chan struct{})
	e.w.Process = func(ctx context.Context, _ string, _ domain.RunConfig, _ *domain.Products, _ bool, _ workers.Logger) (domain.Products, error) {
		close(started)
		<-ctx.Done() // runs until the process "dies"
		return domain.Products{}, ctx.Err()
	}
	if err := e.w.Handle(msg.Copy()); err != nil {
		t.Fatal(err)
	}
	<-started
	e.w.Close() // the process stops with the job unfinished
	if r := e.load(run); r.Status != domain.StatusRunning {
		t.Fatalf("after the worker stopped mid-job the run is %s, want Running", r.Status)
	}

	next := e.newWorkers()
	e.deliver(next, msg)
	if r := e.load(run); r.Status != domain.StatusRunning {
		t.Fatalf("a redelivery finished the job (%s); only Recover should take it up", r.Status)
	}
	for range 2 {
		if err := next.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		next.Wait()
	}
	r := e.load(run)
	if r.Status != domain.StatusCompleted || r.Figures().NImages != 3 {
		t.Fatalf("after Recover the run is %s with %d images", r.Status, r.Figures().NImages)
	}
	if n := e.count(run, domain.TypeProcessingCompleted); n != 1 {
		t.Fatalf("%d completions, want 1", n)
	}
	e.audit(run)
}
