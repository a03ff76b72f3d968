package association

import (
	"cmp"
	"slices"
)

// measurement is what association needs of a measurement.
type measurement struct {
	ID                 int64
	Image              int32 // index of its image in the job's images
	RA, Dec            float64
	WeightEW, WeightNS float64
	// UncertaintyEW and UncertaintyNS are the position's uncertainties
	// (degrees), which the de Ruiter radius uses.
	UncertaintyEW, UncertaintyNS float64
	FluxInt, FluxIntErr          float64
	FluxPeak, FluxPeakErr        float64
	SNR, Compactness             float64
	FluxPeakIslRatio             float64
	FluxIntIslRatio              float64
	HasSiblings, Forced          bool
	distFromCentre               float64 // degrees; orders epoch duplicates
}

// row is one association of a measurement with a source: its separation
// (arcsec) and de Ruiter radius (de Ruiter association only) from the
// source when it was associated.
type row struct {
	Meas int32 // index into the engine's measurements
	D2D  float64
	DR   float64
}

// source is a source while association runs.
type source struct {
	ID      int64
	Rows    []row
	Related []int64 // kept sorted, without duplicates
	// Weighted position sums over the non-forced rows, in row order, as
	// VAST computes them, with RA wrapped (see wrappedRA).
	sumEW, sumNS, wEW, wNS float64
	RA, Dec                float64
}

// engine holds the association state: the measurements read so far and
// the sources made of them.
type engine struct {
	meas    []measurement
	sources []*source
	byID    map[int64]*source
	nextID  int64
	// radiusDeg is the association radius.
	radiusDeg float64
}

func newEngine(radiusArcsec float64) *engine {
	return &engine{byID: map[int64]*source{}, nextID: 1, radiusDeg: radiusArcsec / 3600}
}

// wrappedRA is VAST's RA for weighted means: an RA within 0.1° above 0 is
// counted as above 360°, so that sources straddling 0 average sensibly.
func wrappedRA(ra float64) float64 {
	if ra <= 0.1 {
		return ra + 360
	}
	return ra
}

// add appends an association and updates the source's position sums.
func (e *engine) add(s *source, r row) {
	s.Rows = append(s.Rows, r)
	m := &e.meas[r.Meas]
	if m.Forced {
		return
	}
	s.sumEW += wrappedRA(m.RA) * m.WeightEW
	s.sumNS += m.Dec * m.WeightNS
	s.wEW += m.WeightEW
	s.wNS += m.WeightNS
}

// place sets the source's position to its weighted mean.
func (s *source) place() {
	if s.wEW == 0 || s.wNS == 0 {
		return
	}
	s.RA = s.sumEW / s.wEW
	if s.RA >= 360 {
		s.RA -= 360
	}
	s.Dec = s.sumNS / s.wNS
}

func (e *engine) newSource(id int64) *source {
	s := &source{ID: id}
	e.sources = append(e.sources, s)
	e.byID[id] = s
	if id >= e.nextID {
		e.nextID = id + 1
	}
	return s
}

func (s *source) relate(id int64) {
	if i, found := slices.BinarySearch(s.Related, id); !found {
		s.Related = slices.Insert(s.Related, i, id)
	}
}

// step associates one step's measurements (one image, or one epoch's
// images) with the sources, as VAST's basic association does:
//   - each measurement is matched to its nearest source, and kept if that
//     is within the radius;
//   - when several measurements match one source, the nearest keeps it and
//     each other one starts a new source that inherits a copy of the
//     source's earlier associations and is related to it both ways (VAST's
//     one-to-many fork); new ids go by source id, then distance;
//   - unmatched measurements start new sources, in step order;
//   - sources' weighted positions are then updated for the next step.
//
// step holds indexes into e.meas, in the order VAST would list them.
func (e *engine) step(step []int32) {
	n := len(e.sources)
	matchSrc := make([]int32, len(step))
	matchD2D := make([]float64, len(step))
	for i := range matchSrc {
		matchSrc[i] = -1
	}
	if n > 0 && e.radiusDeg > 0 {
		pts := make([]vec, n)
		for i, s := range e.sources {
			pts[i] = unitVec(s.RA, s.Dec)
		}
		tree := newKDTree(pts)
		// The tree finds the nearest source; the radius test is on the
		// exact separation, with a little slack in the chord bound.
		maxD2 := chord2(e.radiusDeg) * (1 + 1e-9)
		for i, mi := range step {
			m := &e.meas[mi]
			j, _ := tree.nearest(unitVec(m.RA, m.Dec), maxD2, -1)
			if j < 0 {
				continue
			}
			s := e.sources[j]
			d := separation(s.RA, s.Dec, m.RA, m.Dec)
			if d <= e.radiusDeg {
				matchSrc[i] = j
				matchD2D[i] = d * 3600
			}
		}
	}

	// One-to-many: group the matches by source.
	claims := map[int32][]int{}
	for i, j := range matchSrc {
		if j >= 0 {
			claims[j] = append(claims[j], i)
		}
	}
	var contested []int32
	for j, c := range claims {
		if len(c) > 1 {
			contested = append(contested, j)
		}
	}
	slices.SortFunc(contested, func(a, b int32) int { return cmp.Compare(e.sources[a].ID, e.sources[b].ID) })
	fork := make([]*source, len(step)) // the new source of a measurement that lost its match
	for _, j := range contested {
		c := claims[j]
		slices.SortStableFunc(c, func(a, b int) int { return cmp.Compare(matchD2D[a], matchD2D[b]) })
		orig := e.sources[j]
		for _, i := range c[1:] {
			s := e.newSource(e.nextID)
			for _, r := range orig.Rows {
				e.add(s, r)
			}
			s.relate(orig.ID)
			orig.relate(s.ID)
			fork[i] = s
		}
	}

	touched := make([]*source, 0, len(step))
	for i, mi := range step {
		var s *source
		switch {
		case fork[i] != nil:
			s = fork[i]
		case matchSrc[i] >= 0:
			s = e.sources[matchSrc[i]]
		default:
			continue
		}
		e.add(s, row{Meas: mi, D2D: matchD2D[i]})
		touched = append(touched, s)
	}
	for i, mi := range step {
		if matchSrc[i] < 0 {
			s := e.newSource(e.nextID)
			e.add(s, row{Meas: mi})
			touched = append(touched, s)
		}
	}
	for _, s := range touched {
		s.place()
	}
}

// epochStep orders one epoch's measurements for step. A single image's
// measurements keep their catalogue order. Several images' measurements
// (epoch mode) lose their duplicates first, as in VAST: sorted by distance
// from their image's centre, a measurement within the duplicate radius of
// an earlier one from another image is dropped; the rest are sorted by RA.
func (e *engine) epochStep(ms []int32, multiImage bool, dupRadiusDeg float64) []int32 {
	if !multiImage {
		return ms
	}
	order := slices.Clone(ms)
	slices.SortStableFunc(order, func(a, b int32) int {
		return cmp.Compare(e.meas[a].distFromCentre, e.meas[b].distFromCentre)
	})
	pts := make([]vec, len(order))
	for i, mi := range order {
		pts[i] = unitVec(e.meas[mi].RA, e.meas[mi].Dec)
	}
	drop := make([]bool, len(order))
	if dupRadiusDeg > 0 && len(order) > 1 {
		tree := newKDTree(pts)
		maxD2 := chord2(dupRadiusDeg) * (1 + 1e-9)
		// VAST drops the later member of every cross-image pair within
		// the radius, whether or not the earlier one was itself dropped.
		for i := range order {
			tree.each(pts[i], maxD2, func(k int32) {
				if int(k) <= i {
					return
				}
				a, b := &e.meas[order[i]], &e.meas[order[k]]
				if a.Image != b.Image && separation(a.RA, a.Dec, b.RA, b.Dec) <= dupRadiusDeg {
					drop[k] = true
				}
			})
		}
	}
	kept := order[:0:0]
	for i, mi := range order {
		if !drop[i] {
			kept = append(kept, mi)
		}
	}
	slices.SortStableFunc(kept, func(a, b int32) int { return cmp.Compare(e.meas[a].RA, e.meas[b].RA) })
	return kept
}

// restore rebuilds a source from a previous run's products.
func (e *engine) restore(id int64, rows []row, related []int64) {
	s := e.newSource(id)
	for _, r := range rows {
		e.add(s, r)
	}
	for _, r := range related {
		s.relate(r)
	}
	s.place()
}

// sortSources orders the sources by id.
func (e *engine) sortSources() {
	slices.SortFunc(e.sources, func(a, b *source) int { return cmp.Compare(a.ID, b.ID) })
}
