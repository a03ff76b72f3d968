package association

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/pipeline/forced"
	"github.com/piperun/piperun/runconfig"
)

// ForcedMeasurementsProduct returns the name of an image's forced
// measurements product, as VAST names the file:
// forced_measurements_<image name with '.' replaced by '_'>.parquet.
func ForcedMeasurementsProduct(imageName string) string {
	return "forced_measurements_" + strings.ReplaceAll(imageName, ".", "_") + ".parquet"
}

// forcedRunNumber is the run number in forced measurement names
// ("<component>_f_run001"). VAST puts its database's run id there because
// one measurements table holds every run's; piperun's products belong to
// one run, so every run writes what VAST writes for the first run of a
// database.
const forcedRunNumber = 1

// forcedSettings are the settings forced extraction runs with: VAST's
// source_monitoring section and the astrometric uncertainties of
// measurements.
type forcedSettings struct {
	monitor                                     bool
	minSigma, edgeBufferScale, clusterThreshold float64
	allowNaN                                    bool
	// raUncDeg and decUncDeg are measurements.ra/dec_uncertainty, degrees.
	raUncDeg, decUncDeg float64
}

func forcedSettingsOf(job pipeline.Job) (forcedSettings, error) {
	if strings.TrimSpace(job.Config.YAML) == "" {
		return forcedSettings{}, nil
	}
	cfg, err := runconfig.Parse([]byte(job.Config.YAML))
	if err != nil {
		return forcedSettings{}, fmt.Errorf("read source monitoring settings: %w", err)
	}
	sm := cfg.SourceMonitoring
	s := forcedSettings{
		monitor: sm.Monitor, minSigma: sm.MinSigma, edgeBufferScale: sm.EdgeBufferScale,
		clusterThreshold: sm.ClusterThreshold, allowNaN: sm.AllowNaN,
		raUncDeg: cfg.Measurements.RAUncertainty / 3600, decUncDeg: cfg.Measurements.DecUncertainty / 3600,
	}
	// Selavy measurements take their systematic errors from the job's
	// measurement settings; forced ones must agree with them.
	if job.Settings != nil {
		s.raUncDeg, s.decUncDeg = job.Settings.RAUncertaintyArcsec/3600, job.Settings.DecUncertaintyArcsec/3600
	}
	return s, nil
}

// forcedRun is the forced extraction of one job: VAST's source monitoring,
// which measures each source in the images of its sky regions that did not
// detect it.
type forcedRun struct {
	s     forcedSettings
	job   pipeline.Job
	add   bool
	start time.Time
	// prev is, per image index, the previous run's forced product of an
	// image (add mode), and prevRange the span of its rows in engine.meas.
	prev      map[int]domain.Artifact
	prevRange map[int][2]int32
	// prevSources are the previous run's source ids (add mode).
	prevSources map[int64]bool

	// artifacts are the run's forced products, total their rows.
	artifacts []domain.Artifact
	total     int
}

// loadForced reads the forced settings and, in add mode, the previous
// run's forced measurements into the engine, so that the previous sources
// can be rebuilt with them. It returns ranges extended with the spans of
// the forced measurements' ids.
func (e *engine) loadForced(ctx context.Context, store *artifacts.Store, in pipeline.AssociationInput, ranges []measRange) (*forcedRun, []measRange, error) {
	s, err := forcedSettingsOf(in.Job)
	if err != nil {
		return nil, nil, err
	}
	fx := &forcedRun{s: s, job: in.Job, start: time.Now(), prev: map[int]domain.Artifact{}, prevRange: map[int][2]int32{}}
	if !in.Job.Add || in.Job.Previous == nil {
		return fx, ranges, nil
	}
	prev := *in.Job.Previous
	firstNew := int64(math.MaxInt64)
	for i, im := range in.Images {
		if im.New && ranges[i].hi > ranges[i].lo {
			firstNew = min(firstNew, ranges[i].firstID)
		}
	}
	for i, im := range in.Images {
		a, ok := pipeline.FindArtifact(prev, ForcedMeasurementsProduct(im.Image.Name))
		if !ok || im.New {
			continue
		}
		lo := int32(len(e.meas))
		if e.meas, err = appendMeasurements(ctx, store, a.Digest, int32(i), e.meas); err != nil {
			return nil, nil, fmt.Errorf("read previous forced measurements of image %s: %w", im.Image.Name, err)
		}
		hi := int32(len(e.meas))
		// An addition appends to an image's forced measurements, so their
		// ids are contiguous in runs.
		for k := lo; k < hi; k++ {
			m := &e.meas[k]
			if !m.Forced {
				return nil, nil, fmt.Errorf("previous %s: measurement %d is not forced", a.Name, m.ID)
			}
			if m.ID >= firstNew {
				return nil, nil, fmt.Errorf("previous %s: measurement id %d is also a new image's", a.Name, m.ID)
			}
			if k == lo || m.ID != e.meas[k-1].ID+1 {
				ranges = append(ranges, measRange{lo: k, firstID: m.ID})
			}
			ranges[len(ranges)-1].hi = k + 1
		}
		fx.prev[i] = a
		fx.prevRange[i] = [2]int32{lo, hi}
	}
	if len(fx.prev) > 0 || fx.s.monitor {
		fx.prevSources = map[int64]bool{}
		if a, ok := pipeline.FindArtifact(prev, SourcesProduct); ok {
			ids, err := pipeline.ReadParquet[struct {
				ID int64 `parquet:"id"`
			}](ctx, store, a.Digest)
			if err != nil {
				return nil, nil, fmt.Errorf("previous %s: %w", SourcesProduct, err)
			}
			for _, r := range ids {
				fx.prevSources[r.ID] = true
			}
		}
	}
	return fx, ranges, nil
}

// forcedTarget is one forced measurement to attempt: a source in an image.
type forcedTarget struct {
	src     *source
	image   int
	ra, dec float64
}

// extract runs forced extraction when source_monitoring.monitor is on, as
// VAST does after association and the new-source analysis:
//   - a source is expected in every image of the sky regions whose centre
//     is closer than their radius to its position (the weighted mean of
//     its selavy measurements), keeping per epoch the image of the
//     closest region; it is missing from those images, of epochs where it
//     has no selavy measurement;
//   - it is measured in a missing image when its peak flux in its first
//     image (one attempt per measurement there) over the missing image's
//     minimum rms is above source_monitoring.min_sigma;
//   - in add mode only in the new images, and in the previous images for
//     the sources the addition made;
//   - usable results become forced measurements, numbered after every
//     other measurement, image by image in the order the images first
//     appear going through the sources by id, and associated with their
//     source at d2d = dr = 0.
//
// Each image's forced measurements (the previous run's first, in add mode)
// are written to its ForcedMeasurementsProduct.
func (fx *forcedRun) extract(ctx context.Context, store *artifacts.Store, e *engine, in pipeline.AssociationInput, log pipeline.Logger) error {
	images := in.Images
	if !fx.s.monitor {
		return nil
	}
	targets := fx.targets(e, images, log)

	// Images in the order they first appear.
	var order []int
	byImage := map[int][]forcedTarget{}
	for _, t := range targets {
		if _, ok := byImage[t.image]; !ok {
			order = append(order, t.image)
		}
		byImage[t.image] = append(byImage[t.image], t)
	}
	nextID := int64(1)
	for i := range e.meas {
		nextID = max(nextID, e.meas[i].ID+1)
	}
	opts := forced.Options{ClusterThreshold: fx.s.clusterThreshold, AllowNaN: fx.s.allowNaN, EdgeBufferScale: fx.s.edgeBufferScale}
	made := 0
	newRows := map[int][]pipeline.Measurement{}
	for _, i := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := fx.measureImage(ctx, store, e, images, i, byImage[i], opts, nextID, log)
		if err != nil {
			return err
		}
		nextID += int64(len(rows))
		made += len(rows)
		newRows[i] = rows
	}
	for i, im := range images {
		rows := newRows[i]
		prev, hasPrev := fx.prev[i]
		switch {
		case len(rows) == 0 && hasPrev:
			fx.artifacts = append(fx.artifacts, prev)
			r := fx.prevRange[i]
			fx.total += int(r[1] - r[0])
			continue
		case len(rows) == 0:
			continue
		case hasPrev:
			old, err := pipeline.ReadMeasurements(ctx, store, prev.Digest)
			if err != nil {
				return fmt.Errorf("previous forced measurements of image %s: %w", im.Image.Name, err)
			}
			rows = append(old, rows...)
		}
		a, err := pipeline.PutParquet(ctx, store, ForcedMeasurementsProduct(im.Image.Name), rows)
		if err != nil {
			return fmt.Errorf("forced measurements of image %s: %w", im.Image.Name, err)
		}
		fx.artifacts = append(fx.artifacts, a)
		fx.total += len(rows)
	}
	log.Infof("forced extraction: %d measurements made in %d images, %d in the run, in %s",
		made, len(order), fx.total, time.Since(fx.start).Round(time.Millisecond))
	return nil
}

// targets lists the forced measurements to attempt, by source id, each
// source's images in time order.
func (fx *forcedRun) targets(e *engine, images []pipeline.ImageProducts, log pipeline.Logger) []forcedTarget {
	sky := newSkyRegions(len(images), func(i int) *pipeline.ImageRow { return &images[i].Image })
	if sky == nil {
		return nil
	}
	// Epochs: the configuration's in epoch mode, else one per image.
	epochOf := make([]int, len(images))
	if fx.job.Config.Inputs.Epochs != nil {
		ids := map[string]int{}
		for i, im := range images {
			id, ok := ids[im.Image.Epoch]
			if !ok {
				id = len(ids)
				ids[im.Image.Epoch] = id
			}
			epochOf[i] = id
		}
	} else {
		for i := range epochOf {
			epochOf[i] = i
		}
	}
	type cover struct {
		region int32
		sep    float64
	}
	var (
		out      []forcedTarget
		covers   []cover
		expected []int
		dropped  int
	)
	seen := make([]bool, len(images))
	epochSeen := make([]bool, len(images))
	epochTaken := make([]bool, len(images))
	srcs := slices.Clone(e.sources)
	slices.SortFunc(srcs, func(a, b *source) int { return cmp.Compare(a.ID, b.ID) })
	for _, src := range srcs {
		clear(seen)
		clear(epochSeen)
		detection := len(images)
		var sumEW, sumNS, wEW, wNS float64
		for _, a := range src.Rows {
			m := &e.meas[a.Meas]
			if m.Forced {
				continue
			}
			seen[m.Image] = true
			epochSeen[epochOf[m.Image]] = true
			detection = min(detection, int(m.Image))
			sumEW += wrappedRA(m.RA) * m.WeightEW
			sumNS += m.Dec * m.WeightNS
			wEW += m.WeightEW
			wNS += m.WeightNS
		}
		if detection == len(images) {
			continue
		}
		ra, dec := sumEW/wEW, sumNS/wNS
		if ra >= 360 {
			ra -= 360
		}
		covers = covers[:0]
		sky.containing(ra, dec, func(i int32, _ *skyRegion, d float64) {
			covers = append(covers, cover{i, d})
		})
		if len(covers) == 0 {
			continue
		}
		// Per epoch, the image of the closest region.
		slices.SortFunc(covers, func(a, b cover) int {
			return cmp.Or(cmp.Compare(a.sep, b.sep), cmp.Compare(a.region, b.region))
		})
		clear(epochTaken)
		expected = expected[:0]
		for _, c := range covers {
			for _, im := range sky.regions[c.region].images {
				if ep := epochOf[im]; !epochTaken[ep] {
					epochTaken[ep] = true
					expected = append(expected, im)
				}
			}
		}
		slices.Sort(expected)
		newSource := fx.prevSources == nil || !fx.prevSources[src.ID]
		for _, im := range expected {
			if seen[im] || epochSeen[epochOf[im]] {
				continue
			}
			if fx.prevSources != nil && !images[im].New && !newSource {
				continue
			}
			for _, a := range src.Rows {
				m := &e.meas[a.Meas]
				if m.Forced || int(m.Image) != detection {
					continue
				}
				if !(m.FluxPeak/images[im].Image.RMSMin > fx.s.minSigma) {
					dropped++
					continue
				}
				out = append(out, forcedTarget{src: src, image: im, ra: ra, dec: dec})
			}
		}
	}
	if dropped > 0 {
		log.Debugf("forced extraction: %d source-image pairs left out, the source's detection peak flux being at most %g times the image's minimum rms", dropped, fx.s.minSigma)
	}
	return out
}

// measureImage measures the targets on image i and returns the forced
// measurements of the usable results, numbered from firstID, which it
// also associates with their sources.
func (fx *forcedRun) measureImage(ctx context.Context, store *artifacts.Store, e *engine, images []pipeline.ImageProducts, i int, targets []forcedTarget, opts forced.Options, firstID int64, log pipeline.Logger) ([]pipeline.Measurement, error) {
	info := images[i].Image
	if info.BackgroundPath == "" {
		return nil, fmt.Errorf("forced extraction on image %s needs its background map (inputs.background)", info.Name)
	}
	root := fx.job.ImagesRoot
	path := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	img, err := forced.Open(path(info.Path), path(info.BackgroundPath), path(info.NoisePath))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", info.Name, err)
	}
	defer img.Close()
	pos := make([]forced.Position, len(targets))
	for k, t := range targets {
		pos[k] = forced.Position{RA: t.ra, Dec: t.dec}
	}
	res, err := img.Measure(ctx, pos, opts)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", info.Name, err)
	}
	var outside, nan, unusable int
	var usable []int
	for k, r := range res {
		switch {
		case r.Status == forced.OutsideImage:
			outside++
		case r.Status == forced.NaNPixels:
			nan++
		case !r.Usable():
			unusable++
		default:
			usable = append(usable, k)
		}
	}
	log.Infof("forced extraction on image %s: %d forced measurements of %d sources (%d outside the image or its edge buffer, %d with NaN pixels, %d fits unusable)",
		info.Name, len(usable), len(targets), outside, nan, unusable)
	if len(usable) == 0 {
		return nil, nil
	}
	prefix, next, err := fx.nextIsland(ctx, store, images[i], i)
	if err != nil {
		return nil, err
	}
	rows := make([]pipeline.Measurement, 0, len(usable))
	for n, k := range usable {
		t := targets[k]
		m := img.Row(res[k], forced.RowInfo{
			ID: firstID + int64(n), ImageID: info.ID, Time: info.DateTime,
			IslandID: prefix + strconv.FormatInt(next+int64(n), 10), RunID: forcedRunNumber,
			RA: t.ra, Dec: t.dec, RAUncertaintyDeg: fx.s.raUncDeg, DecUncertaintyDeg: fx.s.decUncDeg,
		})
		rows = append(rows, m)
		e.meas = append(e.meas, measurement{
			ID: m.ID, Image: int32(i), RA: m.RA, Dec: m.Dec,
			WeightEW: m.WeightEW, WeightNS: m.WeightNS, UncertaintyEW: m.UncertaintyEW, UncertaintyNS: m.UncertaintyNS,
			FluxInt: m.FluxInt, FluxIntErr: m.FluxIntErr, FluxPeak: m.FluxPeak, FluxPeakErr: m.FluxPeakErr,
			SNR: m.SNR, Compactness: m.Compactness, Forced: true,
			FluxIntIslRatio: m.FluxIntIslRatio, FluxPeakIslRatio: m.FluxPeakIslRatio,
		})
		e.add(t.src, row{Meas: int32(len(e.meas) - 1)})
	}
	return rows, nil
}

// nextIsland continues the image's island numbering as VAST does: the
// prefix of its first measurement's island id ("island_" for an image
// without measurements) and one more than the highest island number among
// its measurements and previous forced measurements.
func (fx *forcedRun) nextIsland(ctx context.Context, store *artifacts.Store, im pipeline.ImageProducts, i int) (string, int64, error) {
	var ids []string
	ms, err := pipeline.ReadMeasurements(ctx, store, im.Measurements.Digest)
	if err != nil {
		return "", 0, fmt.Errorf("measurements of image %s: %w", im.Image.Name, err)
	}
	for _, m := range ms {
		ids = append(ids, m.IslandID)
	}
	if a, ok := fx.prev[i]; ok {
		fs, err := pipeline.ReadMeasurements(ctx, store, a.Digest)
		if err != nil {
			return "", 0, fmt.Errorf("previous forced measurements of image %s: %w", im.Image.Name, err)
		}
		for _, m := range fs {
			ids = append(ids, m.IslandID)
		}
	}
	if len(ids) == 0 {
		return "island_", 1, nil
	}
	// Python's rsplit('_', 1)[0] + '_'.
	prefix := ids[0] + "_"
	if cut := strings.LastIndexByte(ids[0], '_'); cut >= 0 {
		prefix = ids[0][:cut+1]
	}
	highest := int64(math.MinInt64)
	for _, id := range ids {
		n, err := strconv.ParseInt(id[strings.LastIndexByte(id, '_')+1:], 10, 64)
		if err != nil {
			return "", 0, fmt.Errorf("forced extraction on image %s: island id %q does not end in a number, so the forced islands cannot continue its numbering", im.Image.Name, id)
		}
		highest = max(highest, n)
	}
	return prefix, highest + 1, nil
}
