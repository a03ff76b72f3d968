package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/wiring"
)

// RestoreOptions configure the restore-time benchmark. Zero fields take
// the defaults noted.
type RestoreOptions struct {
	// Sizes are the sizes of the runs restored, in measurements (default
	// 10^3, 10^5, 10^7).
	Sizes []int64
	// Restores is the number of restores timed per size, each of its own
	// run (default 5).
	Restores int
	// Images is the number of images of a run before the addition (default
	// 4); the measurements are shared equally between them, and the
	// addition adds one image of as many.
	Images int
	// Dir is the data directory; a temporary one (removed afterwards) when
	// empty.
	Dir string
}

func (o *RestoreOptions) defaults() {
	if len(o.Sizes) == 0 {
		o.Sizes = []int64{1e3, 1e5, 1e7}
	}
	if o.Restores <= 0 {
		o.Restores = 5
	}
	if o.Images <= 0 {
		o.Images = 4
	}
}

// RestoreResult are the figures of one run size.
type RestoreResult struct {
	Measurements int64
	// BackupBytes is the size of the backup's artifacts, which a restore
	// checks.
	BackupBytes int64
	// Accepted is each restore request's time to its 202; Completed the
	// time from sending it to the run reading Completed.
	Accepted, Completed []time.Duration
	// Rehash is how long hashing the backup's artifacts in full takes: what
	// each restore would cost if the artifact store re-read them.
	Rehash time.Duration
}

// Restore times restores from request to Completed for runs of each size,
// against a server run in this process: for each size it writes
// measurement products of that many rows, seeds runs that took them as
// their backup before an addition, starts the server, and restores the runs
// one at a time over HTTP, polling the run until it is Completed.
func Restore(ctx context.Context, opts RestoreOptions, out io.Writer) ([]RestoreResult, error) {
	opts.defaults()
	dataDir := opts.Dir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "piperun-bench-restore-")
		if err != nil {
			return nil, fmt.Errorf("restore benchmark: %w", err)
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}
	imagesDir := filepath.Join(dataDir, "images")
	if err := os.MkdirAll(imagesDir, 0o750); err != nil {
		return nil, fmt.Errorf("restore benchmark: %w", err)
	}
	c, err := wiring.Open(ctx, wiring.Storage{DataDir: dataDir})
	if err != nil {
		return nil, err
	}
	token, err := c.Svc.CreateUser(ctx, "bench-"+randomSuffix(), true, "system:bench")
	if err != nil {
		c.Close()
		return nil, err
	}
	results := make([]RestoreResult, len(opts.Sizes))
	fixtures := make([]fixture, len(opts.Sizes))
	owner := domain.Actor{Name: "alice"}
	for i, size := range opts.Sizes {
		start := time.Now()
		fx, err := sizedFixture(ctx, c.Artifacts, size, opts.Images)
		if err != nil {
			c.Close()
			return nil, err
		}
		fixtures[i] = fx
		results[i].Measurements = size
		for _, a := range fx.BeforeProducts.Artifacts {
			results[i].BackupBytes += a.Size
		}
		if err := seedMany(ctx, seeder(c.Store), opts.Restores, 4, func(j int) string { return restoreRunName(size, j) }, owner, fx, nil); err != nil {
			c.Close()
			return nil, err
		}
		fmt.Fprintf(out, "seeded %d runs of %d measurements (backup: %d artifacts, %s) in %s\n", opts.Restores, size,
			len(fx.BeforeProducts.Artifacts), bytesString(results[i].BackupBytes), time.Since(start).Round(time.Millisecond))
	}
	if err := c.Read.CatchUp(ctx, c.Store); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "each run: created, processed, an image added and processed in add mode (the backup), every step a command of the service with the processing itself skipped; products: measurements Parquet files of synthetic rows written through the artifact store")

	srv, err := startLocal(ctx, dataDir, imagesDir, true, 0)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	cl := newClient(srv.URL, token, 4)
	if err := cl.waitRelay(ctx, out); err != nil {
		return nil, err
	}
	for i, size := range opts.Sizes {
		for j := range opts.Restores {
			acc, done, err := timeRestore(ctx, cl, restoreRunName(size, j))
			if err != nil {
				return nil, err
			}
			results[i].Accepted = append(results[i].Accepted, acc)
			results[i].Completed = append(results[i].Completed, done)
		}
	}
	if err := srv.Close(); err != nil {
		return nil, err
	}
	store, err := artifacts.New(filepath.Join(dataDir, wiring.ArtifactsDir))
	if err != nil {
		return nil, err
	}
	for i, fx := range fixtures {
		start := time.Now()
		for _, a := range fx.BeforeProducts.Artifacts {
			if err := store.VerifyContent(ctx, a.Digest, a.Size); err != nil {
				return nil, err
			}
		}
		results[i].Rehash = time.Since(start)
	}
	printRestore(out, results)
	return results, nil
}

func restoreRunName(size int64, i int) string { return fmt.Sprintf("restore-%d-%d", size, i) }

// timeRestore requests the restore of run and polls it until it is
// Completed.
func timeRestore(ctx context.Context, cl *client, run string) (accepted, completed time.Duration, err error) {
	start := time.Now()
	code, err := cl.do(ctx, http.MethodPost, "/api/v1/runs/"+run+"/restore", map[string]bool{"debug": false}, nil)
	if err != nil {
		return 0, 0, err
	}
	accepted = time.Since(start)
	if code != http.StatusAccepted {
		return 0, 0, fmt.Errorf("restore %s: HTTP %d, want 202", run, code)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := cl.runStatus(ctx, run)
		if err != nil {
			return 0, 0, err
		}
		switch st {
		case string(domain.StatusCompleted):
			return accepted, time.Since(start), nil
		case string(domain.StatusRestoring):
		default:
			return 0, 0, fmt.Errorf("restore %s ended %s (see its restore log)", run, st)
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("restore %s still Restoring after 5 minutes", run)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// sizedFixture writes products of size measurements over images images,
// and of size/images more for the added image, and returns the fixture.
func sizedFixture(ctx context.Context, store *artifacts.Store, size int64, images int) (fixture, error) {
	var fx fixture
	var err error
	if fx.Before, err = syntheticConfig(images, "bench"); err != nil {
		return fx, err
	}
	if fx.After, err = syntheticConfig(images+1, "bench"); err != nil {
		return fx, err
	}
	all := fx.After.Inputs.Images
	per := make([]int, len(all))
	for i := range per {
		per[i] = int(size) / images
		if i < int(size)%images {
			per[i]++
		}
	}
	meas := make([]domain.Artifact, len(all))
	rows := make([]pipeline.ImageRow, len(all))
	for i, img := range all {
		stem := img[:len(img)-len(".fits")]
		rows[i] = pipeline.ImageRow{
			ID: int64(i + 1), BandID: 1, SkyRegID: 1, MeasurementsPath: pipeline.MeasurementsProduct(img), Polarisation: "I",
			Name: img, Path: img, NoisePath: stem + ".noiseMap.fits", BackgroundPath: stem + ".meanMap.fits", SelavyPath: stem + ".selavy.components.txt",
			DateTime: time.Date(2020, 8, 3+i, 4, 33, 55, 479e6, time.UTC), RA: 150, Dec: -30,
			BeamBMaj: 15.0 / 3600, BeamBMin: 10.0 / 3600, Frequency: 888, Bandwidth: 288, NSel: int64(per[i]), NMeas: int64(per[i]),
		}
	}
	// Two writers: encoding Parquet is the slow part.
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	next := make(chan int)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				first := int64(1)
				for _, n := range per[:i] {
					first += int64(n)
				}
				meas[i], errs[i] = putMeasurements(ctx, store, pipeline.MeasurementsProduct(all[i]), int64(i+1), first, per[i], rows[i].DateTime, uint64(size))
			}
		}()
	}
	for i := range all {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fx, err
		}
	}
	products := func(n int) (domain.Products, error) {
		var p domain.Products
		imgs, err := pipeline.PutParquet(ctx, store, pipeline.ImagesProduct, rows[:n])
		if err != nil {
			return p, err
		}
		p.Artifacts = append(slices.Clone(meas[:n]), imgs)
		for i, r := range rows[:n] {
			p.Images = append(p.Images, domain.ImageSummary{
				Name: r.Name, Path: r.Path, DateTime: r.DateTime, FrequencyMHz: r.Frequency,
				BMajDeg: r.BeamBMaj, BMinDeg: r.BeamBMin, RADeg: r.RA, DecDeg: r.Dec, NMeasurements: per[i],
			})
			p.Figures.NSelavyMeasurements += per[i]
		}
		p.Figures.NImages = n
		return p, nil
	}
	if fx.BeforeProducts, err = products(images); err != nil {
		return fx, err
	}
	fx.AfterProducts, err = products(images + 1)
	return fx, err
}

func printRestore(out io.Writer, results []RestoreResult) {
	fmt.Fprintln(out)
	var rows [][]string
	for _, r := range results {
		acc, done := slices.Clone(r.Accepted), slices.Clone(r.Completed)
		slices.Sort(acc)
		slices.Sort(done)
		rows = append(rows, []string{
			fmt.Sprintf("%d", r.Measurements), bytesString(r.BackupBytes), fmt.Sprintf("%d", len(done)),
			ms(acc[len(acc)/2]), ms(done[len(done)/2]), ms(done[len(done)-1]), ms(r.Rehash),
		})
	}
	writeTable(out, []string{"measurements", "backup", "restores", "accepted p50 ms", "completed p50 ms", "completed max ms", "full re-hash of the backup ms"}, rows)
}

// bytesString formats a byte count in binary units.
func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
