package association

import (
	"cmp"
	"math"
	"slices"
)

// candidate is a possible association of one of a step's measurements with
// a source, found by the advanced and de Ruiter methods.
type candidate struct {
	src  int32 // index into e.sources
	meas int32 // index into the step
	d2d  float64
	dr   float64
	// dist is what decides between candidates: d2d for advanced
	// association, dr for de Ruiter.
	dist float64
	// to is the source the measurement joins: src's, or the fork made
	// for it.
	to *source
}

// advancedParams are the settings of one advanced or de Ruiter step.
type advancedParams struct {
	// limitDeg is the largest on-sky separation of a candidate.
	limitDeg float64
	// deRuiter selects de Ruiter association: candidates must also have a
	// de Ruiter radius of at most drLimit, and the radius decides between
	// candidates.
	deRuiter bool
	drLimit  float64
}

// stepAdvanced associates one step's measurements with the sources as
// VAST's advanced association does (and, with p.deRuiter, its de Ruiter
// association):
//   - every source within p.limitDeg of a measurement is a candidate (with
//     de Ruiter, only those within the de Ruiter radius limit);
//   - many-to-many: among the candidates whose measurement and source
//     both have other candidates, each measurement keeps only the nearest
//     of them (ties all kept) — VAST's rule, which leaves a measurement
//     with a single such candidate alone;
//   - one-to-many: a source left with several measurements keeps the
//     nearest and is forked for each other one, as in basic association
//     (new ids by source id, then distance; the fork copies the source's
//     earlier associations and is related to it both ways);
//   - many-to-one: a measurement left with several sources joins every
//     one of them, and those sources become related to each other;
//   - measurements without a candidate start new sources, in step order;
//   - sources' weighted positions are then updated for the next step.
func (e *engine) stepAdvanced(step []int32, p advancedParams) {
	cands := e.candidates(step, p)

	// Many-to-many.
	perMeas := make([]int32, len(step))
	perSrc := make(map[int32]int32, len(cands))
	for _, c := range cands {
		perMeas[c.meas]++
		perSrc[c.src]++
	}
	nearest := make(map[int32]float64)
	for _, c := range cands {
		if perMeas[c.meas] > 1 && perSrc[c.src] > 1 {
			if d, ok := nearest[c.meas]; !ok || c.dist < d {
				nearest[c.meas] = c.dist
			}
		}
	}
	if len(nearest) > 0 {
		kept := cands[:0]
		for _, c := range cands {
			if perMeas[c.meas] > 1 && perSrc[c.src] > 1 && c.dist != nearest[c.meas] {
				continue
			}
			kept = append(kept, c)
		}
		cands = kept
	}

	// One-to-many.
	bySrc := make(map[int32][]int, len(cands))
	for k := range cands {
		cands[k].to = e.sources[cands[k].src]
		bySrc[cands[k].src] = append(bySrc[cands[k].src], k)
	}
	var contested []int32
	for j, ks := range bySrc {
		if len(ks) > 1 {
			contested = append(contested, j)
		}
	}
	slices.SortFunc(contested, func(a, b int32) int { return cmp.Compare(e.sources[a].ID, e.sources[b].ID) })
	for _, j := range contested {
		ks := bySrc[j]
		// Candidates are in measurement order: ties keep it.
		slices.SortStableFunc(ks, func(a, b int) int { return cmp.Compare(cands[a].dist, cands[b].dist) })
		orig := e.sources[j]
		for _, k := range ks[1:] {
			s := e.newSource(e.nextID)
			for _, r := range orig.Rows {
				e.add(s, r)
			}
			s.relate(orig.ID)
			orig.relate(s.ID)
			cands[k].to = s
		}
	}

	// Many-to-one.
	byMeas := make(map[int32][]*source)
	for _, c := range cands {
		byMeas[c.meas] = append(byMeas[c.meas], c.to)
	}
	for _, to := range byMeas {
		for _, a := range to {
			for _, b := range to {
				if a != b {
					a.relate(b.ID)
				}
			}
		}
	}

	touched := make([]*source, 0, len(step))
	matched := make([]bool, len(step))
	for _, c := range cands {
		e.add(c.to, row{Meas: step[c.meas], D2D: c.d2d, DR: c.dr})
		matched[c.meas] = true
		touched = append(touched, c.to)
	}
	for i, mi := range step {
		if !matched[i] {
			s := e.newSource(e.nextID)
			e.add(s, row{Meas: mi})
			touched = append(touched, s)
		}
	}
	for _, s := range touched {
		s.place()
	}
}

// candidates lists every source within p.limitDeg of each of the step's
// measurements (and, for de Ruiter, within its radius limit), ordered as
// VAST lists them: by source (in the order sources were made), then by
// measurement.
func (e *engine) candidates(step []int32, p advancedParams) []candidate {
	if len(e.sources) == 0 || !(p.limitDeg > 0) {
		return nil
	}
	pts := make([]vec, len(e.sources))
	for i, s := range e.sources {
		pts[i] = unitVec(s.RA, s.Dec)
	}
	tree := newKDTree(pts)
	// The tree finds the sources near the measurement; the limit applies
	// to the exact separation, with a little slack in the chord bound.
	maxD2 := chord2(p.limitDeg) * (1 + 1e-9)
	var cands []candidate
	var near []int32
	for i, mi := range step {
		m := &e.meas[mi]
		near = near[:0]
		tree.each(unitVec(m.RA, m.Dec), maxD2, func(j int32) { near = append(near, j) })
		for _, j := range near {
			s := e.sources[j]
			d := separation(s.RA, s.Dec, m.RA, m.Dec)
			if !(d <= p.limitDeg) {
				continue
			}
			c := candidate{src: j, meas: int32(i), d2d: d * 3600, dist: d * 3600}
			if p.deRuiter {
				c.dr = deRuiterRadius(s.RA, s.Dec, 1/math.Sqrt(s.wEW), 1/math.Sqrt(s.wNS), m.RA, m.Dec, m.UncertaintyEW, m.UncertaintyNS)
				if !(c.dr <= p.drLimit) {
					continue
				}
				c.dist = c.dr
			}
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(a.src, b.src); c != 0 {
			return c
		}
		return cmp.Compare(a.meas, b.meas)
	})
	return cands
}

// deRuiterRadius is the de Ruiter radius of two positions (degrees) with
// their east-west and north-south uncertainties (degrees): their
// separation in each direction over the two positions' combined
// uncertainty in that direction, added in quadrature (de Ruiter, Willis &
// Arp 1977), unitless.
//
// VAST avoids RA wrapping by shifting RAs below 90° and above 270° by 180°,
// which gives the true RA difference except for pairs straddling 90° or
// 270°, where it is off by 180° and the pair never associates; here the
// difference is wrapped into [-180°, 180°] instead, which agrees with VAST
// everywhere else.
func deRuiterRadius(ra1, dec1, uncEW1, uncNS1, ra2, dec2, uncEW2, uncNS2 float64) float64 {
	dra := math.Remainder(ra1-ra2, 360) * degToRad
	d1, d2 := dec1*degToRad, dec2*degToRad
	c := math.Cos((d1 + d2) / 2)
	e1, e2 := uncEW1*degToRad, uncEW2*degToRad
	n1, n2 := uncNS1*degToRad, uncNS2*degToRad
	ew := dra * dra * c * c / (e1*e1 + e2*e2)
	ns := (d1 - d2) * (d1 - d2) / (n1*n1 + n2*n2)
	return math.Sqrt(ew + ns)
}
