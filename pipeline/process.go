package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline/inputs"
)

// Logger receives the job's log lines. Implementations must be safe to call
// from the goroutine running Process; Process calls them sequentially.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Job describes one processing job.
type Job struct {
	Run    string
	Config domain.RunConfig
	// ImagesRoot is the absolute directory that Config.Inputs paths are
	// relative to.
	ImagesRoot string
	// Previous holds the products of the last successful run; it is needed
	// in add mode and ignored otherwise.
	Previous *domain.Products
	// Add selects add mode: images already in Previous keep their ids and
	// products (not re-read), only the new ones are read.
	Add bool
	// Settings override the measurement settings; nil reads them from
	// Config.YAML (VAST's defaults when it is empty).
	Settings *Settings
	// Associate runs source association after the measurements are
	// written; nil stops after measurements (no sources).
	Associate Associator
}

// Associator is the seam for source association: it receives the images
// and their measurement products and returns the products it made (sources,
// associations, relations, ...) and its figures. In add mode it must keep
// the sources of the previous run and associate only the new images' ones.
type Associator interface {
	Associate(ctx context.Context, store *artifacts.Store, in AssociationInput, log Logger) (AssociationResult, error)
}

// AssociationInput is what an Associator works on.
type AssociationInput struct {
	Job Job
	// Images are all the run's images in datetime order, each with its
	// measurements product and whether it is new in this job (always true
	// outside add mode).
	Images []ImageProducts
}

// ImageProducts pairs an image with its measurements product.
type ImageProducts struct {
	Image        ImageRow
	Measurements domain.Artifact
	New          bool
}

// AssociationResult is what an Associator produced.
type AssociationResult struct {
	Artifacts           []domain.Artifact
	NSources            int
	NForcedMeasurements int
	NNewSources         int
	// NMeasurementPairs counts the rows of the measurement_pairs product.
	NMeasurementPairs int
}

// Errors Process returns for a job that cannot run.
var (
	// ErrInvalidJob means the job's inputs are inconsistent (list lengths,
	// duplicate image names, paths escaping the root, add mode without
	// previous products or removing images).
	ErrInvalidJob = errors.New("invalid processing job")
)

// Process runs the job: it reads every input image that needs reading,
// writes their measurements, images.parquet, bands.parquet and
// skyregions.parquet, calls the Associator if any, and returns the products.
// Products are deterministic: the same inputs and settings give the same
// digests. It stops between images when ctx is cancelled.
func Process(ctx context.Context, store *artifacts.Store, job Job, log Logger) (domain.Products, error) {
	settings, err := jobSettings(job)
	if err != nil {
		return domain.Products{}, err
	}
	imgs, err := inputImages(job)
	if err != nil {
		return domain.Products{}, err
	}
	var prev map[string]ImageRow
	if job.Add {
		if prev, err = previousImages(ctx, store, job, imgs); err != nil {
			return domain.Products{}, err
		}
	}

	var fresh, old []*image
	var nextImageID, nextMeasID int64 = 1, 1
	for _, im := range imgs {
		if r, ok := prev[im.imagePath]; ok {
			im.row = r
			a, _ := FindArtifact(*job.Previous, r.MeasurementsPath)
			im.reused = &a
			old = append(old, im)
			nextImageID = max(nextImageID, r.ID+1)
			nextMeasID += r.NMeas
			continue
		}
		fresh = append(fresh, im)
	}
	if job.Add {
		// The previous run's forced measurements hold the ids after its
		// selavy measurements' (see ImageRow).
		nextMeasID += int64(job.Previous.Figures.NForcedMeasurements)
		log.Infof("add mode: %d previous images kept, %d new images to read", len(old), len(fresh))
	}

	// Every input is opened through the root, which refuses whatever is
	// not a regular file inside it at the moment it is opened: the
	// configuration's check cannot stop a file being swapped since.
	root, err := inputs.OpenRoot(job.ImagesRoot)
	if err != nil {
		return domain.Products{}, err
	}
	defer root.Close()

	// Images are read concurrently, at most processing.num_workers_io at
	// once; log lines then come from several goroutines.
	workersIO := WorkersIO(settings.NumWorkersIO, settings.NumWorkers)
	if len(fresh) > 0 {
		log.Infof("reading %d images, at most %d at once (processing.num_workers_io)", len(fresh), min(workersIO, len(fresh)))
	}
	plog := &lockedLogger{log: log}
	// Headers first, so that new images get ids in time order.
	if err := forEachBounded(ctx, len(fresh), workersIO, func(ctx context.Context, i int) error {
		return readImageFiles(ctx, root, fresh[i], settings.QuietHeaderWarnings, plog)
	}); err != nil {
		return domain.Products{}, err
	}
	sortImages(fresh)

	artifactsOut := []domain.Artifact{}
	for _, im := range old {
		artifactsOut = append(artifactsOut, *im.reused)
	}
	measArtifacts := map[string]domain.Artifact{}
	for _, im := range old {
		measArtifacts[im.imagePath] = *im.reused
	}
	for _, im := range fresh {
		im.row.ID = nextImageID
		nextImageID++
	}
	// Measurement ids follow image ids: an image takes its first id from
	// the one before it once it has counted its measurements.
	firstIDs := make([]chan int64, len(fresh)+1)
	for i := range firstIDs {
		firstIDs[i] = make(chan int64, 1)
	}
	firstIDs[0] <- nextMeasID
	measured := make([]domain.Artifact, len(fresh))
	if err := forEachBounded(ctx, len(fresh), workersIO, func(ctx context.Context, i int) error {
		var err error
		measured[i], err = measureImage(ctx, store, root, fresh[i], func(n int) (int64, error) {
			select {
			case first := <-firstIDs[i]:
				firstIDs[i+1] <- first + int64(n)
				return first, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}, settings, plog)
		return err
	}); err != nil {
		return domain.Products{}, err
	}
	for i, im := range fresh {
		artifactsOut = append(artifactsOut, measured[i])
		measArtifacts[im.imagePath] = measured[i]
	}

	all := append(slices.Clone(old), fresh...)
	rows := make([]ImageRow, len(all))
	for i, im := range all {
		rows[i] = im.row
	}
	bands, regions := assignBandsAndRegions(rows)
	slices.SortFunc(rows, compareRows)

	for _, p := range []struct {
		name string
		put  func() (domain.Artifact, error)
	}{
		{ImagesProduct, func() (domain.Artifact, error) { return PutParquet(ctx, store, ImagesProduct, rows) }},
		{BandsProduct, func() (domain.Artifact, error) { return PutParquet(ctx, store, BandsProduct, bands) }},
		{SkyRegionsProduct, func() (domain.Artifact, error) { return PutParquet(ctx, store, SkyRegionsProduct, regions) }},
	} {
		a, err := p.put()
		if err != nil {
			return domain.Products{}, err
		}
		artifactsOut = append(artifactsOut, a)
	}

	out := domain.Products{Figures: domain.Figures{NImages: len(rows)}}
	byPath := map[string]*image{}
	for _, im := range all {
		byPath[im.imagePath] = im
	}
	assocIn := AssociationInput{Job: job}
	for _, r := range rows {
		out.Figures.NSelavyMeasurements += int(r.NMeas)
		out.Images = append(out.Images, domain.ImageSummary{
			Name: r.Name, Path: r.Path, Epoch: r.Epoch, DateTime: r.DateTime,
			FrequencyMHz: r.Frequency, BMajDeg: r.BeamBMaj, BMinDeg: r.BeamBMin, BPADeg: r.BeamBPA,
			RADeg: r.RA, DecDeg: r.Dec, NMeasurements: int(r.NMeas),
		})
		assocIn.Images = append(assocIn.Images, ImageProducts{Image: r, Measurements: measArtifacts[r.Path], New: byPath[r.Path].reused == nil})
	}
	if job.Associate != nil {
		if err := ctx.Err(); err != nil {
			return domain.Products{}, err
		}
		res, err := job.Associate.Associate(ctx, store, assocIn, log)
		if err != nil {
			return domain.Products{}, fmt.Errorf("associate sources: %w", err)
		}
		artifactsOut = append(artifactsOut, res.Artifacts...)
		out.Figures.NSources = res.NSources
		out.Figures.NForcedMeasurements = res.NForcedMeasurements
		out.Figures.NNewSources = res.NNewSources
		out.Figures.NMeasurementPairs = res.NMeasurementPairs
	}
	slices.SortFunc(artifactsOut, func(a, b domain.Artifact) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(artifactsOut); i++ {
		if artifactsOut[i].Name == artifactsOut[i-1].Name {
			return domain.Products{}, fmt.Errorf("two products named %s", artifactsOut[i].Name)
		}
	}
	out.Artifacts = artifactsOut
	log.Infof("processed %d images (%d read), %d selavy measurements", out.Figures.NImages, len(fresh), out.Figures.NSelavyMeasurements)
	return out, nil
}

func jobSettings(job Job) (Settings, error) {
	if job.Settings != nil {
		return *job.Settings, nil
	}
	return SettingsFromConfig(job.Config)
}
