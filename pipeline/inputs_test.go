package pipeline

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/inputs"
	"github.com/piperun/piperun/pipeline/selavy"
	"github.com/piperun/piperun/runconfig"
	"github.com/piperun/piperun/synth"
)

// validatedJob is a job over the survey whose configuration passed the
// checks the API makes when it is saved, as the worker would receive it.
func validatedJob(t *testing.T, sv synth.Survey) Job {
	t.Helper()
	c, err := runconfig.Parse([]byte(runconfig.Render(sv.Inputs(), "inputs")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckPaths(sv.Dir, true); err != nil {
		t.Fatal(err)
	}
	return Job{Run: "inputs", Config: c.Domain(), ImagesRoot: sv.Dir}
}

// processBounded runs Process and fails the test, instead of hanging it,
// if Process has not returned within a generous bound; unblock then
// releases whatever it is stuck on.
func processBounded(t *testing.T, store *artifacts.Store, job Job, unblock func()) (domain.Products, error) {
	t.Helper()
	type result struct {
		p   domain.Products
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := Process(context.Background(), store, job, &testLog{})
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		return r.p, r.err
	case <-time.After(30 * time.Second):
		unblock()
		<-done
		t.Fatal("Process blocked")
		return domain.Products{}, nil
	}
}

// setColumn sets the named column of the n-th line of a text catalogue,
// finding the column in its '#' header line.
func setColumn(t *testing.T, path string, n int, column, v string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	idx := slices.Index(strings.Fields(strings.TrimPrefix(lines[0], "#")), column)
	if idx < 0 {
		t.Fatalf("%s has no column %s", path, column)
	}
	f := strings.Fields(lines[n-1])
	f[idx] = v
	lines[n-1] = "  " + strings.Join(f, " ")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestProcessFailsNamingTheRowOfAnInvalidCatalogueValue(t *testing.T) {
	tests := []struct {
		column, value, want string
	}{
		{"ra_deg_cont", "NaN", "ra_deg_cont = NaN: must be a finite number"},
		{"ra_deg_cont", "+Inf", "ra_deg_cont = +Inf: must be a finite number"},
		{"ra_deg_cont", "1e308", "ra_deg_cont = 1e308: must be within [0, 360]"},
		{"dec_deg_cont", "200", "dec_deg_cont = 200: must be within [-90, 90]"},
		{"flux_int_err", "-0.5", "flux_int_err = -0.5: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.column+"="+tt.value, func(t *testing.T) {
			sv := generate(t, synth.Options{Images: 3, Sources: 30, Seed: 5})
			job := validatedJob(t, sv)
			bad := sv.Images[1].Selavy
			// Two header lines, then components: line 7 is the fifth.
			setColumn(t, filepath.Join(sv.Dir, bad), 7, tt.column, tt.value)
			_, err := Process(context.Background(), newStore(t), job, &testLog{})
			want := bad + ": line 7: " + tt.want
			if !errors.Is(err, selavy.ErrInvalidValue) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant one saying %q", err, want)
			}
		})
	}
}

func TestProcessFailsNamingTheKeywordOfAnInvalidHeader(t *testing.T) {
	tests := []struct{ key, value, want string }{
		{"BMAJ", "0.0", "keyword BMAJ = 0: must be positive and finite"},
		{"CRVAL2", "1E308", "keyword CRVAL2 = 1e+308: must be within [-90, 90]"},
		{"NAXIS1", "4000000000", "keyword NAXIS1 = 4000000000: must be within [1, 1048576]"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			sv := generate(t, synth.Options{Images: 2, Sources: 10, Seed: 6})
			job := validatedJob(t, sv)
			bad := sv.Images[1].Image
			setCard(t, filepath.Join(sv.Dir, bad), tt.key, tt.value)
			_, err := Process(context.Background(), newStore(t), job, &testLog{})
			if !errors.Is(err, fits.ErrBadValue) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant one naming %s and saying %q", err, bad, tt.want)
			}
		})
	}
}

// setCard rewrites the value of a header card in place.
func setCard(t *testing.T, path, key, value string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := fits.ReadHeader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < int(h.Size()); off += 80 {
		if strings.HasPrefix(string(b[off:off+80]), key+strings.Repeat(" ", 8-len(key))+"=") {
			card := key + strings.Repeat(" ", 8-len(key)) + "= " + strings.Repeat(" ", 20-len(value)) + value
			copy(b[off:off+80], card+strings.Repeat(" ", 80-len(card)))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s has no %s card", path, key)
}

// measurementsIn decodes every product in the store that is a measurements
// table.
func measurementsIn(t *testing.T, store *artifacts.Store) []Measurement {
	t.Helper()
	var all []Measurement
	err := filepath.WalkDir(store.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		// Products are stored as sha256/ab/cdef... for digest sha256:abcdef...
		digest := "sha256:" + filepath.Base(filepath.Dir(p)) + filepath.Base(p)
		if ok, _ := store.Has(digest); !ok {
			return nil
		}
		if ms, err := ReadParquet[Measurement](context.Background(), store, digest); err == nil {
			all = append(all, ms...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no measurements product found in the store")
	}
	return all
}

func TestInputSwappedForALinkOutsideTheRootAfterValidationIsRefused(t *testing.T) {
	sv := generate(t, synth.Options{Images: 3, Sources: 30, Seed: 7})
	job := validatedJob(t, sv)
	// One image at a time, so that the image before the swapped one is
	// stored and the scan of the store below has products to look in.
	job.Config.YAML = strings.Replace(job.Config.YAML, "num_workers_io: 5", "num_workers_io: 1", 1)
	if !strings.Contains(job.Config.YAML, "num_workers_io: 1") {
		t.Fatal("the rendered configuration has no num_workers_io: 5 to change")
	}
	// A catalogue outside the images root, valid and recognisable.
	outside := filepath.Join(t.TempDir(), "secret.selavy.components.txt")
	b, err := os.ReadFile(filepath.Join(sv.Dir, sv.Images[1].Selavy))
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.ReplaceAll(string(b), " island_", " SECRET_")
	secret = strings.Replace(secret, " SECRET_id ", " island_id ", 1)
	if !strings.Contains(secret, " SECRET_") {
		t.Fatal("synthetic catalogue island ids are not island_...; the test cannot recognise the secret")
	}
	if err := os.WriteFile(outside, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	swapped := sv.Images[1].Selavy
	p := filepath.Join(sv.Dir, swapped)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, p); err != nil {
		t.Fatal(err)
	}
	store := newStore(t)
	_, err = processBounded(t, store, job, func() {})
	for _, m := range measurementsIn(t, store) {
		if strings.HasPrefix(m.IslandID, "SECRET_") {
			t.Errorf("the outside file's component %s landed in a product", m.ComponentID)
			break
		}
	}
	if !errors.Is(err, inputs.ErrRefused) || !strings.Contains(err.Error(), swapped) || !strings.Contains(err.Error(), "outside the images root") {
		t.Fatalf("err = %v, want the swapped %s refused as leading outside the images root", err, swapped)
	}
	if strings.Contains(err.Error(), outside) || strings.Contains(err.Error(), sv.Dir) {
		t.Errorf("error %q shows a server path", err)
	}
}

func TestImageSwappedForALinkOutsideTheRootIsRefused(t *testing.T) {
	sv := generate(t, synth.Options{Images: 2, Sources: 10, Seed: 8})
	job := validatedJob(t, sv)
	for _, rel := range []string{sv.Images[1].Image, sv.Images[0].Noise, sv.Images[1].Background} {
		outside := filepath.Join(t.TempDir(), filepath.Base(rel))
		if err := os.Rename(filepath.Join(sv.Dir, rel), outside); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(sv.Dir, rel)); err != nil {
			t.Fatal(err)
		}
		_, err := processBounded(t, newStore(t), job, func() {})
		if !errors.Is(err, inputs.ErrRefused) || !strings.Contains(err.Error(), rel) {
			t.Errorf("%s linked outside: err = %v, want it refused", rel, err)
		}
		os.Remove(filepath.Join(sv.Dir, rel))
		if err := os.Rename(outside, filepath.Join(sv.Dir, rel)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Process(context.Background(), newStore(t), job, &testLog{}); err != nil {
		t.Fatalf("restored survey: %v", err)
	}
}

func TestInputSwappedForAFIFOIsRefusedWithoutHanging(t *testing.T) {
	sv := generate(t, synth.Options{Images: 2, Sources: 10, Seed: 9})
	job := validatedJob(t, sv)
	for _, rel := range []string{sv.Images[1].Selavy, sv.Images[1].Image, sv.Images[0].Noise} {
		p := filepath.Join(sv.Dir, rel)
		saved, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Skipf("cannot make a FIFO here: %v", err)
		}
		unblock := func() {
			if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
		_, err = processBounded(t, newStore(t), job, unblock)
		if !errors.Is(err, inputs.ErrRefused) || !strings.Contains(err.Error(), rel) || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("%s a FIFO: err = %v, want it refused as a FIFO", rel, err)
		}
		os.Remove(p)
		if err := os.WriteFile(p, saved, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
