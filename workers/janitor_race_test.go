package workers_test

import (
	"context"
	"testing"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/workers"
)

// TestJanitorSparesProductsOfRunningJobs: two runs over the same images
// make the same (content-addressed) products. While run b's job, which has
// written its products, has not yet recorded them, run a is restored and
// the janitor deletes what a's addition made: b's products must survive.
// The janitor knows only recorded products, so it deletes nothing while any
// job is pending.
func TestJanitorSparesProductsOfRunningJobs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, run := range []string{"a", "b"} {
		if _, err := e.svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: e.config(3), Actor: alice}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.RequestProcessing(ctx, run, false, false, alice); err != nil {
			t.Fatal(err)
		}
		e.deliver(e.w, e.lastMessage(run, domain.TypeProcessingRequested))
	}
	// a adds image 4.
	if _, err := e.svc.UpdateConfig(ctx, "a", e.config(4), alice); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, "a", false, false, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage("a", domain.TypeProcessingRequested))

	// b adds image 4 too; its job stops once its products are written.
	other := e.newWorkers()
	written, release := make(chan struct{}), make(chan struct{})
	inner := other.Process
	other.Process = func(ctx context.Context, run string, cfg domain.RunConfig, previous *domain.Products, add bool, log workers.Logger) (domain.Products, error) {
		p, err := inner(ctx, run, cfg, previous, add, log)
		close(written)
		<-release
		return p, err
	}
	if _, err := e.svc.UpdateConfig(ctx, "b", e.config(4), alice); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestProcessing(ctx, "b", false, false, alice); err != nil {
		t.Fatal(err)
	}
	if err := other.Handle(e.lastMessage("b", domain.TypeProcessingRequested).Copy()); err != nil {
		t.Fatal(err)
	}
	<-written

	// a is restored, and the janitor cleans up after it.
	if _, err := e.svc.RequestRestore(ctx, "a", false, alice); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.w, e.lastMessage("a", domain.TypeRestoreRequested))
	e.deliver(e.w, e.lastMessage("a", domain.TypeRunRestored))

	close(release)
	other.Wait()
	b := e.load("b")
	if b.Status != domain.StatusCompleted {
		t.Fatalf("b is %s", b.Status)
	}
	for _, art := range b.Products.Artifacts {
		if err := e.arts.Verify(ctx, art.Digest, art.Size); err != nil {
			t.Errorf("product %s of run b: %v", art.Name, err)
		}
	}
}
