package association

import (
	"math"
	"testing"

	"github.com/piperun/piperun/pipeline"
)

// upos is a test measurement with a positional uncertainty (arcsec, the
// same east-west and north-south).
type upos struct {
	image   int32
	ra, dec float64
	unc     float64
}

// runAdvanced associates the measurements image by image with
// stepAdvanced and returns each source's measurement ids and relations by
// source id, as runSteps does.
func runAdvanced(p advancedParams, ms []upos) (map[int64][]int, map[int64][]int64, *engine) {
	e := newEngine(0)
	var steps [][]int32
	for i, m := range ms {
		u := m.unc * arcsec
		e.meas = append(e.meas, measurement{
			ID: int64(i + 1), Image: m.image, RA: m.ra, Dec: m.dec,
			UncertaintyEW: u, UncertaintyNS: u, WeightEW: 1 / (u * u), WeightNS: 1 / (u * u),
			FluxInt: 1, FluxPeak: 1, FluxIntErr: 0.1, FluxPeakErr: 0.1,
		})
		for int(m.image) >= len(steps) {
			steps = append(steps, nil)
		}
		steps[m.image] = append(steps[m.image], int32(i))
	}
	for _, st := range steps {
		e.stepAdvanced(st, p)
	}
	e.sortSources()
	members := map[int64][]int{}
	related := map[int64][]int64{}
	for _, s := range e.sources {
		for _, r := range s.Rows {
			members[s.ID] = append(members[s.ID], int(e.meas[r.Meas].ID))
		}
		if len(s.Related) > 0 {
			related[s.ID] = s.Related
		}
	}
	return members, related, e
}

func TestAdvancedAssociation(t *testing.T) {
	advanced := advancedParams{limitDeg: 10 * arcsec}
	deRuiter := advancedParams{limitDeg: 30 * arcsec, deRuiter: true, drLimit: 5.68}
	tests := []struct {
		name    string
		p       advancedParams
		ms      []upos
		members map[int64][]int
		related map[int64][]int64
	}{
		{
			name: "many-to-one: a measurement within the radius of two sources joins both, which become related",
			p:    advanced,
			ms: []upos{
				{0, 150, -30, 1}, {0, 150, -30 + 8*arcsec, 1},
				{1, 150, -30 + 5*arcsec, 1},
			},
			members: map[int64][]int{1: {1, 3}, 2: {2, 3}},
			related: map[int64][]int64{1: {2}, 2: {1}},
		},
		{
			name: "one-to-many: the nearest keeps the source, the other forks it",
			p:    advanced,
			ms: []upos{
				{0, 150, -30, 1},
				{1, 150, -30 + 5*arcsec, 1}, {1, 150, -30 + 1*arcsec, 1},
			},
			members: map[int64][]int{1: {1, 3}, 2: {1, 2}},
			related: map[int64][]int64{1: {2}, 2: {1}},
		},
		{
			name: "many-to-many: each measurement keeps only the nearest of its shared candidates",
			p:    advanced,
			ms: []upos{
				{0, 150, -30, 1}, {0, 150, -30 + 8*arcsec, 1},
				{1, 150, -30 + 1*arcsec, 1}, {1, 150, -30 + 7*arcsec, 1},
			},
			members: map[int64][]int{1: {1, 3}, 2: {2, 4}},
		},
		{
			// Measurement 3 is 4" from both sources, measurement 4 5" from
			// source 1 only: only (1, 3) is many-to-many, alone for its
			// measurement, so nothing is dropped; source 1 keeps the
			// nearer 3 and is forked (source 3) for 4; 3 joins sources 1
			// and 2, which become related.
			name: "many-to-many leaves a measurement with a single shared candidate alone",
			p:    advanced,
			ms: []upos{
				{0, 150, -30, 1}, {0, 150, -30 + 8*arcsec, 1},
				{1, 150, -30 + 4*arcsec, 1}, {1, 150, -30 - 5*arcsec, 1},
			},
			members: map[int64][]int{1: {1, 3}, 2: {2, 3}, 3: {1, 4}},
			related: map[int64][]int64{1: {2, 3}, 2: {1}, 3: {1}},
		},
		{
			name: "beyond the radius starts a source",
			p:    advanced,
			ms: []upos{
				{0, 150, -30, 1}, {1, 150, -30 + 10.1*arcsec, 1},
			},
			members: map[int64][]int{1: {1}, 2: {2}},
		},
		{
			// Source 1 (1" uncertainty) is claimed by measurement 2, 2"
			// away with a 10" uncertainty (de Ruiter radius 0.2), and 3,
			// 1" away with 1" (0.71): de Ruiter keeps 2, advanced 3.
			name: "de Ruiter: the smaller de Ruiter radius wins, not the smaller separation",
			p:    deRuiter,
			ms: []upos{
				{0, 150, -30, 1},
				{1, 150, -30 + 2*arcsec, 10}, {1, 150, -30 - 1*arcsec, 1},
			},
			members: map[int64][]int{1: {1, 2}, 2: {1, 3}},
			related: map[int64][]int64{1: {2}, 2: {1}},
		},
		{
			name: "advanced on the same measurements keeps the nearer",
			p:    advancedParams{limitDeg: 30 * arcsec},
			ms: []upos{
				{0, 150, -30, 1},
				{1, 150, -30 + 2*arcsec, 10}, {1, 150, -30 - 1*arcsec, 1},
			},
			members: map[int64][]int{1: {1, 3}, 2: {1, 2}},
			related: map[int64][]int64{1: {2}, 2: {1}},
		},
		{
			// 9" with 1" uncertainties is a de Ruiter radius of 6.4.
			name: "de Ruiter: beyond the de Ruiter radius limit starts a source",
			p:    deRuiter,
			ms: []upos{
				{0, 150, -30, 1}, {1, 150, -30 + 9*arcsec, 1},
			},
			members: map[int64][]int{1: {1}, 2: {2}},
		},
		{
			// 40" with 20" uncertainties is a de Ruiter radius of 1.4, but
			// beyond the 30" on-sky cap.
			name: "de Ruiter: beyond the on-sky cap starts a source",
			p:    deRuiter,
			ms: []upos{
				{0, 150, -30, 20}, {1, 150, -30 + 40*arcsec, 20},
			},
			members: map[int64][]int{1: {1}, 2: {2}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			members, related, _ := runAdvanced(tc.p, tc.ms)
			checkGrouping(t, members, related, tc.members, tc.related)
		})
	}
}

// TestDeRuiterRowsCarryTheRadius: a de Ruiter association records the
// separation and the de Ruiter radius against the source's weighted
// uncertainty; advanced association records dr 0.
func TestDeRuiterRowsCarryTheRadius(t *testing.T) {
	ms := []upos{{0, 150, -30, 1}, {1, 150, -30 + 1*arcsec, 1}, {2, 150, -30 + 3*arcsec, 2}}
	_, _, e := runAdvanced(advancedParams{limitDeg: 30 * arcsec, deRuiter: true, drLimit: 5.68}, ms)
	if len(e.sources) != 1 || len(e.sources[0].Rows) != 3 {
		t.Fatalf("sources %+v, want one of 3 measurements", e.sources)
	}
	rows := e.sources[0].Rows
	// Step 2: the source is measurement 1 (1"), the measurement 1" away
	// with 1": dr = 1/sqrt(2).
	if math.Abs(rows[1].DR-1/math.Sqrt2) > 1e-9 || math.Abs(rows[1].D2D-1) > 1e-9 {
		t.Errorf("second association d2d %v dr %v, want 1 and %v", rows[1].D2D, rows[1].DR, 1/math.Sqrt2)
	}
	// Step 3: the source, the mean of two 1" measurements, is at +0.5"
	// with 1/sqrt(2)"; the measurement 2.5" away with 2": dr = 2.5/sqrt(4.5).
	if want := 2.5 / math.Sqrt(4.5); math.Abs(rows[2].DR-want) > 1e-6 || math.Abs(rows[2].D2D-2.5) > 1e-6 {
		t.Errorf("third association d2d %v dr %v, want 2.5 and %v", rows[2].D2D, rows[2].DR, want)
	}
	_, _, e = runAdvanced(advancedParams{limitDeg: 30 * arcsec}, ms)
	for _, r := range e.sources[0].Rows {
		if r.DR != 0 {
			t.Errorf("advanced association row %+v: dr should be 0", r)
		}
	}
}

func TestDeRuiterRadius(t *testing.T) {
	const a = arcsec
	tests := []struct {
		name                 string
		ra1, dec1, ra2, dec2 float64
		unc1, unc2           float64 // arcsec, both directions
		want                 float64
	}{
		{"north-south", 150, -30, 150, -30 + 1*a, 1, 1, 1 / math.Sqrt2},
		// At Dec 60 an RA difference of 2" is 1" on the sky.
		{"east-west at Dec 60", 150, 60, 150 + 2*a, 60, 1, 1, 1 / math.Sqrt2},
		{"both", 150, 0, 150 + 3*a, 4 * a, 1, 0, 5},
		{"across RA 0", 359.9999, 0, 0.0001, 0, 0.36, 0.36, 0.72 / math.Sqrt(2*0.36*0.36)},
		// VAST's RA shift gives 180° here; the wrapped difference is 0.72".
		{"across RA 90", 89.9999, 0, 90.0001, 0, 0.36, 0.36, 0.72 / math.Sqrt(2*0.36*0.36)},
		{"across RA 270", 269.9999, 0, 270.0001, 0, 0.36, 0.36, 0.72 / math.Sqrt(2*0.36*0.36)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := deRuiterRadius(tc.ra1, tc.dec1, tc.unc1*a, tc.unc1*a, tc.ra2, tc.dec2, tc.unc2*a, tc.unc2*a)
			if math.Abs(got-tc.want) > 1e-6*tc.want {
				t.Errorf("de Ruiter radius %.9g, want %.9g", got, tc.want)
			}
		})
	}
}

// TestDeRuiterCapIsHalfTheLargestBeam: the on-sky cap of a de Ruiter step
// is the beamwidth limit times half the largest beam major axis of the
// step's images (VAST's bw_limit * max_beam_maj / 2), and the radius limit
// is deruiter_radius.
func TestDeRuiterCapIsHalfTheLargestBeam(t *testing.T) {
	s := DefaultSettings()
	s.DeRuiterBeamwidthLimit, s.DeRuiterRadius = 2.5, 4
	images := []pipeline.ImageRow{{BeamBMaj: 10 * arcsec}, {BeamBMaj: 24 * arcsec}, {BeamBMaj: 100 * arcsec}}
	p := deRuiterParams(s, images, []int{0, 1})
	if want := 2.5 * 24 * arcsec / 2; math.Abs(p.limitDeg-want) > 1e-15 || !p.deRuiter || p.drLimit != 4 {
		t.Errorf("params %+v, want a cap of %g deg (30 arcsec) and dr limit 4", p, want)
	}
}
