package association

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/runconfig"
)

// Product file names.
const (
	SourcesProduct      = "sources.parquet"
	AssociationsProduct = "associations.parquet"
	RelationsProduct    = "relations.parquet"
)

// Errors of settings association cannot run with (the configuration's
// own checks reject them earlier; Settings given directly may hold them).
var (
	// ErrUnsupportedMethod means the settings name an association method
	// other than basic, advanced and deruiter.
	ErrUnsupportedMethod = errors.New("association method not supported")
	// ErrInvalidSettings means a radius or limit is negative or NaN.
	ErrInvalidSettings = errors.New("invalid association settings")
)

// Associator is VAST's source association (basic, advanced or de Ruiter)
// as a pipeline.Associator. The zero value reads its settings from each
// job's configuration.
type Associator struct {
	// Settings, when set, override the job's configuration.
	Settings *Settings
}

var _ pipeline.Associator = Associator{}

// Associate associates the job's images (only the new ones in add mode,
// against the previous run's sources, whose ids stay) and writes
// sources.parquet, associations.parquet and relations.parquet. The same
// inputs always give the same bytes.
func (a Associator) Associate(ctx context.Context, store *artifacts.Store, in pipeline.AssociationInput, log pipeline.Logger) (pipeline.AssociationResult, error) {
	s, err := a.settings(in.Job)
	if err != nil {
		return pipeline.AssociationResult{}, err
	}
	if err := s.check(); err != nil {
		return pipeline.AssociationResult{}, err
	}
	start := time.Now()
	e := newEngine(s.RadiusArcsec)
	images := make([]pipeline.ImageRow, len(in.Images))
	for i, im := range in.Images {
		images[i] = im.Image
	}
	ranges, err := e.load(ctx, store, in.Images)
	if err != nil {
		return pipeline.AssociationResult{}, err
	}
	fx, ranges, err := e.loadForced(ctx, store, in, ranges)
	if err != nil {
		return pipeline.AssociationResult{}, err
	}

	toAssociate := make([]int, 0, len(in.Images))
	restored := false
	if in.Job.Add && in.Job.Previous != nil {
		if restored, err = e.restorePrevious(ctx, store, *in.Job.Previous, ranges); err != nil {
			return pipeline.AssociationResult{}, err
		}
		if !restored {
			log.Warnf("add mode: the previous products have no %s; associating every image afresh", AssociationsProduct)
		}
	}
	for i, im := range in.Images {
		if !restored || im.New {
			toAssociate = append(toAssociate, i)
		}
	}
	previousSources := len(e.sources)
	epochMode := in.Job.Config.Inputs.Epochs != nil
	nSteps := 0
	if groups := skyRegionGroups(images); s.Parallel && len(groups) > 1 {
		workers := min(pipeline.Workers(s.Workers), len(groups))
		log.Infof("parallel association: %d groups of overlapping sky regions, %d at once (processing.num_workers)", len(groups), workers)
		if nSteps, err = e.associateGroups(ctx, images, ranges, toAssociate, groups, epochMode, s, workers); err != nil {
			return pipeline.AssociationResult{}, err
		}
	} else {
		steps := groupSteps(images, toAssociate, epochMode)
		if err := e.associateSteps(ctx, images, ranges, steps, s); err != nil {
			return pipeline.AssociationResult{}, err
		}
		nSteps = len(steps)
	}
	log.Infof("%s: %d steps, %d measurements, %d sources (%d before)",
		describeMethod(s), nSteps, len(e.meas), len(e.sources), previousSources)

	e.sortSources()
	// Forced measurements join their sources before any metric is taken,
	// pairs included, as in VAST.
	if err := fx.extract(ctx, store, e, in, log); err != nil {
		return pipeline.AssociationResult{}, fmt.Errorf("forced extraction: %w", err)
	}
	rows := make([]SourceRow, len(e.sources))
	for i, src := range e.sources {
		rows[i] = e.sourceMetrics(src)
	}
	if err := neighbourDistances(rows); err != nil {
		return pipeline.AssociationResult{}, err
	}
	if err := e.markNewSources(ctx, rows, images, in.Job.ImagesRoot, s); err != nil {
		return pipeline.AssociationResult{}, err
	}
	res := pipeline.AssociationResult{NSources: len(rows)}
	for _, r := range rows {
		if r.New {
			res.NNewSources++
		}
		res.NForcedMeasurements += int(r.NMeasForced)
	}
	if s.PairMetrics {
		pairStart := time.Now()
		var extra pairSink
		var arrowUpload *pipeline.Upload
		var arrowSink arrowPairs
		if s.WriteArrow {
			if arrowUpload, arrowSink, err = startArrowPairs(ctx, store); err != nil {
				return pipeline.AssociationResult{}, err
			}
			extra = arrowSink
		}
		art, n, err := e.writePairs(ctx, store, newPairInputs(images), rows, s, extra)
		res.NMeasurementPairs = int(n)
		if arrowUpload != nil {
			if err == nil {
				err = arrowSink.a.close()
			}
			arrowArt, arrowErr := arrowUpload.Finish(err)
			if err == nil && arrowErr != nil {
				err = arrowErr
			}
			res.Artifacts = append(res.Artifacts, arrowArt)
		}
		if err != nil {
			return pipeline.AssociationResult{}, err
		}
		res.Artifacts = append(res.Artifacts, art)
		log.Infof("measurement pairs: %d pairs of %d sources (%d workers), in %s",
			n, len(rows), pipeline.Workers(s.Workers), time.Since(pairStart).Round(time.Millisecond))
	} else {
		log.Infof("measurement pairs: not computed (variability.pair_metrics is false)")
	}
	assoc, rels := e.associationRows()
	if s.WriteArrow {
		art, err := e.writeMeasurementsArrow(ctx, store, in.Images, fx.artifacts, assoc, ranges)
		if err != nil {
			return pipeline.AssociationResult{}, err
		}
		res.Artifacts = append(res.Artifacts, art)
	}
	for _, p := range []struct {
		name string
		put  func() (domain.Artifact, error)
	}{
		{SourcesProduct, func() (domain.Artifact, error) { return pipeline.PutParquet(ctx, store, SourcesProduct, rows) }},
		{AssociationsProduct, func() (domain.Artifact, error) { return pipeline.PutParquet(ctx, store, AssociationsProduct, assoc) }},
		{RelationsProduct, func() (domain.Artifact, error) { return pipeline.PutParquet(ctx, store, RelationsProduct, rels) }},
	} {
		art, err := p.put()
		if err != nil {
			return pipeline.AssociationResult{}, err
		}
		res.Artifacts = append(res.Artifacts, art)
	}
	res.Artifacts = append(res.Artifacts, fx.artifacts...)
	res.NForcedMeasurements = fx.total
	log.Infof("sources: %d (%d new), %d associations, %d relations, in %s",
		len(rows), res.NNewSources, len(assoc), len(rels), time.Since(start).Round(time.Millisecond))
	return res, nil
}

// associateSteps associates the steps' images in order.
func (e *engine) associateSteps(ctx context.Context, images []pipeline.ImageRow, ranges []measRange, steps [][]int, s Settings) error {
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		var ms []int32
		for _, im := range st {
			r := ranges[im]
			for k := r.lo; k < r.hi; k++ {
				ms = append(ms, k)
			}
		}
		if len(st) > 1 {
			for _, mi := range ms {
				m := &e.meas[mi]
				im := images[m.Image]
				m.distFromCentre = separation(m.RA, m.Dec, im.RA, im.Dec)
			}
		}
		ms = e.epochStep(ms, len(st) > 1, s.EpochDuplicateRadiusArcsec/3600)
		switch s.Method {
		case runconfig.MethodAdvanced:
			e.stepAdvanced(ms, advancedParams{limitDeg: s.RadiusArcsec / 3600})
		case runconfig.MethodDeRuiter:
			e.stepAdvanced(ms, deRuiterParams(s, images, st))
		default:
			e.step(ms)
		}
	}
	return nil
}

// deRuiterParams are the de Ruiter settings of a step over the given
// images: VAST caps the separation of a match at the beamwidth limit times
// half the largest beam major axis of the step's images.
func deRuiterParams(s Settings, images []pipeline.ImageRow, step []int) advancedParams {
	bmaj := 0.0
	for _, im := range step {
		bmaj = max(bmaj, images[im].BeamBMaj)
	}
	return advancedParams{limitDeg: s.DeRuiterBeamwidthLimit * bmaj / 2, deRuiter: true, drLimit: s.DeRuiterRadius}
}

// describeMethod names the method and its settings for the log.
func describeMethod(s Settings) string {
	switch s.Method {
	case runconfig.MethodAdvanced:
		return fmt.Sprintf("advanced association (radius %g arcsec)", s.RadiusArcsec)
	case runconfig.MethodDeRuiter:
		return fmt.Sprintf("de Ruiter association (de Ruiter radius %g, beamwidth limit %g)", s.DeRuiterRadius, s.DeRuiterBeamwidthLimit)
	}
	return fmt.Sprintf("basic association (radius %g arcsec)", s.RadiusArcsec)
}

func (a Associator) settings(job pipeline.Job) (Settings, error) {
	if a.Settings != nil {
		return *a.Settings, nil
	}
	return SettingsFromConfig(job.Config)
}

// measRange is the span of an image's measurements in engine.meas, and
// their first id (ids are contiguous within an image).
type measRange struct {
	lo, hi  int32
	firstID int64
}

// load reads every image's measurements.
func (e *engine) load(ctx context.Context, store *artifacts.Store, images []pipeline.ImageProducts) ([]measRange, error) {
	total := 0
	for _, im := range images {
		total += int(im.Image.NMeas)
	}
	e.meas = make([]measurement, 0, total)
	ranges := make([]measRange, len(images))
	for i, im := range images {
		r := measRange{lo: int32(len(e.meas))}
		var err error
		if e.meas, err = appendMeasurements(ctx, store, im.Measurements.Digest, int32(i), e.meas); err != nil {
			return nil, fmt.Errorf("read measurements of image %s: %w", im.Image.Name, err)
		}
		if err := checkMeasurements(im.Image.Name, e.meas[r.lo:]); err != nil {
			return nil, err
		}
		for k := r.lo; k < int32(len(e.meas)); k++ {
			if k == r.lo {
				r.firstID = e.meas[k].ID
			} else if e.meas[k].ID != e.meas[k-1].ID+1 {
				return nil, fmt.Errorf("measurements of image %s: ids are not contiguous (%d after %d)", im.Image.Name, e.meas[k].ID, e.meas[k-1].ID)
			}
		}
		r.hi = int32(len(e.meas))
		ranges[i] = r
	}
	return ranges, nil
}

// restorePrevious rebuilds the sources of the previous run from its
// associations and relations; false when it has none.
func (e *engine) restorePrevious(ctx context.Context, store *artifacts.Store, prev domain.Products, ranges []measRange) (bool, error) {
	aa, ok := pipeline.FindArtifact(prev, AssociationsProduct)
	if !ok {
		return false, nil
	}
	assoc, err := pipeline.ReadParquet[AssociationRow](ctx, store, aa.Digest)
	if err != nil {
		return false, fmt.Errorf("previous %s: %w", AssociationsProduct, err)
	}
	var rels []RelationRow
	if ra, ok := pipeline.FindArtifact(prev, RelationsProduct); ok {
		if rels, err = pipeline.ReadParquet[RelationRow](ctx, store, ra.Digest); err != nil {
			return false, fmt.Errorf("previous %s: %w", RelationsProduct, err)
		}
	}
	index := measIndex(ranges)
	related := map[int64][]int64{}
	for _, r := range rels {
		related[r.FromSourceID] = append(related[r.FromSourceID], r.ToSourceID)
	}
	// Rows are stored by source, each source's in association order.
	for lo := 0; lo < len(assoc); {
		hi := lo
		var rows []row
		for ; hi < len(assoc) && assoc[hi].SourceID == assoc[lo].SourceID; hi++ {
			mi, ok := index(assoc[hi].MeasID)
			if !ok {
				return false, fmt.Errorf("previous %s: measurement %d of source %d is in no image of the run", AssociationsProduct, assoc[hi].MeasID, assoc[hi].SourceID)
			}
			rows = append(rows, row{Meas: mi, D2D: assoc[hi].D2D, DR: assoc[hi].DR})
		}
		id := assoc[lo].SourceID
		if _, dup := e.byID[id]; dup {
			return false, fmt.Errorf("previous %s: rows of source %d are not together", AssociationsProduct, id)
		}
		e.restore(id, rows, related[id])
		lo = hi
	}
	return true, nil
}

// measIndex finds a measurement's index in the engine's measurements by
// its id, which is contiguous within an image.
func measIndex(ranges []measRange) func(id int64) (int32, bool) {
	byFirst := slices.Clone(ranges)
	slices.SortFunc(byFirst, func(a, b measRange) int { return cmp.Compare(a.firstID, b.firstID) })
	return func(id int64) (int32, bool) {
		i, _ := slices.BinarySearchFunc(byFirst, id, func(r measRange, id int64) int {
			if id < r.firstID {
				return 1
			}
			if id >= r.firstID+int64(r.hi-r.lo) {
				return -1
			}
			return 0
		})
		if i >= len(byFirst) {
			return 0, false
		}
		r := byFirst[i]
		if id < r.firstID || id >= r.firstID+int64(r.hi-r.lo) {
			return 0, false
		}
		return r.lo + int32(id-r.firstID), true
	}
}

// groupSteps splits the images to associate into steps: one per image in
// time order, or in epoch mode one per epoch, epochs in the sorted order
// of their names as VAST sorts them.
func groupSteps(images []pipeline.ImageRow, which []int, epochMode bool) [][]int {
	if !epochMode {
		steps := make([][]int, len(which))
		for i, im := range which {
			steps[i] = []int{im}
		}
		return steps
	}
	byEpoch := map[string][]int{}
	var names []string
	for _, im := range which {
		ep := images[im].Epoch
		if _, ok := byEpoch[ep]; !ok {
			names = append(names, ep)
		}
		byEpoch[ep] = append(byEpoch[ep], im)
	}
	slices.Sort(names)
	steps := make([][]int, len(names))
	for i, n := range names {
		steps[i] = byEpoch[n]
	}
	return steps
}

// associationRows lists the associations by source id, each source's in
// association order, and the relations in both directions by (from, to).
func (e *engine) associationRows() ([]AssociationRow, []RelationRow) {
	n := 0
	for _, s := range e.sources {
		n += len(s.Rows)
	}
	assoc := make([]AssociationRow, 0, n)
	rels := []RelationRow{}
	for _, s := range e.sources {
		for _, r := range s.Rows {
			assoc = append(assoc, AssociationRow{SourceID: s.ID, MeasID: e.meas[r.Meas].ID, D2D: r.D2D, DR: r.DR})
		}
		for _, to := range s.Related {
			rels = append(rels, RelationRow{FromSourceID: s.ID, ToSourceID: to})
		}
	}
	return assoc, rels
}
