package workers_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/projections"
	"github.com/piperun/piperun/workers"
)

// TestSweep stores artifacts a run uses (products and backup), one no run
// uses and the leftover of an unfinished Put, all old, plus a young unused
// one, and checks what a sweep deletes, and that it deletes nothing while
// the read models lag or a job is pending.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	es := memory.New()
	svc := command.New(es)
	read, err := projections.Open(ctx, filepath.Join(dir, "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	arts, err := artifacts.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(content string) string {
		t.Helper()
		d, _, err := arts.Put(ctx, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	path := func(d string) string {
		h := strings.TrimPrefix(d, "sha256:")
		return filepath.Join(arts.Dir(), "sha256", h[:2], h[2:])
	}
	exists := func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	}
	alice := domain.Actor{Name: "alice"}
	products := func(digest string, images ...string) *domain.Products {
		p := &domain.Products{Artifacts: []domain.Artifact{{Name: "measurements.parquet", Digest: digest, Size: 1}}}
		for _, im := range images {
			p.Images = append(p.Images, domain.ImageSummary{Name: im, Path: im})
		}
		return p
	}
	cfg := func(images ...string) domain.RunConfig {
		c := domain.RunConfig{YAML: "# test", SettingsDigest: "s1"}
		for _, im := range images {
			c.Inputs.Images = append(c.Inputs.Images, im)
			c.Inputs.Selavy = append(c.Inputs.Selavy, im+".txt")
			c.Inputs.Noise = append(c.Inputs.Noise, im+".noise")
			c.Inputs.Background = append(c.Inputs.Background, im+".bkg")
		}
		return c
	}
	process := func(run, digest string) {
		t.Helper()
		if _, err := svc.RequestProcessing(ctx, run, false, false, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ExecRun(ctx, run, "worker", func(r *domain.Run) ([]domain.Event, error) {
			return append(r.StartProcessing(r.Job.ID), r.FinishProcessing(r.Job.ID, products(digest, r.Job.Config.Inputs.Images...), nil)...), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	backup, product, orphan, young := put("backup"), put("product"), put("orphan"), put("young")
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "r", Config: cfg("a.fits"), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	process("r", backup)
	if _, err := svc.UpdateConfig(ctx, "r", cfg("a.fits", "b.fits"), alice); err != nil {
		t.Fatal(err)
	}
	process("r", product) // add mode: backup holds the first products
	leftover := filepath.Join(arts.Dir(), "sha256", ".put-123")
	if err := os.WriteFile(leftover, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{path(backup), path(product), path(orphan), leftover} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sweep := func() workers.SweepReport {
		t.Helper()
		rep, err := workers.Sweep(ctx, es, read, arts, 24*time.Hour, log)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	// The read models have not seen the run: nothing goes.
	if rep := sweep(); rep.Skipped == "" || rep.Deleted != 0 || !exists(path(orphan)) {
		t.Fatalf("read models behind: %+v", rep)
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	// A job pending on another run: nothing goes.
	if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: "busy", Config: cfg("a.fits"), Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RequestProcessing(ctx, "busy", false, false, alice); err != nil {
		t.Fatal(err)
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if rep := sweep(); rep.Skipped == "" || rep.Deleted != 0 || !exists(path(orphan)) {
		t.Fatalf("job pending: %+v", rep)
	}
	if _, err := svc.ExecRun(ctx, "busy", "worker", func(r *domain.Run) ([]domain.Event, error) {
		return append(r.StartProcessing(r.Job.ID), r.FinishProcessing(r.Job.ID, products(product, "a.fits"), nil)...), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := read.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}

	rep := sweep()
	if rep.Skipped != "" || rep.Examined != 4 || rep.Deleted != 2 {
		t.Fatalf("sweep: %+v, want 4 old files examined, the orphan and the leftover deleted", rep)
	}
	for p, want := range map[string]bool{path(backup): true, path(product): true, path(young): true, path(orphan): false, leftover: false} {
		if exists(p) != want {
			t.Errorf("%s exists: %v, want %v", p, !want, want)
		}
	}
	// A second sweep finds nothing more.
	if rep := sweep(); rep.Deleted != 0 {
		t.Fatalf("second sweep deleted %d", rep.Deleted)
	}
}

// TestDeleteIfUnchanged checks that a file stored again after it was
// listed is not deleted.
func TestDeleteIfUnchanged(t *testing.T) {
	ctx := context.Background()
	arts, err := artifacts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := arts.Put(ctx, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []artifacts.Entry
	if err := arts.Walk(ctx, func(e artifacts.Entry) error { listed = append(listed, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Digest != d {
		t.Fatalf("walk listed %+v, want %s", listed, d)
	}
	if _, _, err := arts.Put(ctx, strings.NewReader("x")); err != nil { // a job stores it again
		t.Fatal(err)
	}
	gone, err := arts.DeleteIfUnchanged(listed[0])
	if err != nil || gone {
		t.Fatalf("deleted a file stored again since it was listed (%v, %v)", gone, err)
	}
	if ok, _ := arts.Has(d); !ok {
		t.Fatal("the file stored again is gone")
	}
	listed = listed[:0]
	if err := arts.Walk(ctx, func(e artifacts.Entry) error { listed = append(listed, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if gone, err := arts.DeleteIfUnchanged(listed[0]); err != nil || !gone {
		t.Fatalf("an unchanged file was not deleted (%v, %v)", gone, err)
	}
	if ok, _ := arts.Has(d); ok {
		t.Fatal("deleted file still there")
	}
}
