package association

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// pos is a test measurement: image index and position in degrees.
type pos struct {
	image   int32
	ra, dec float64
}

// runSteps associates the measurements image by image with equal weights
// and returns each source's measurement indexes (1-based, in measurement
// order) and relations, by source id.
func runSteps(radiusArcsec float64, ms []pos) (map[int64][]int, map[int64][]int64, *engine) {
	e := newEngine(radiusArcsec)
	var steps [][]int32
	for i, p := range ms {
		e.meas = append(e.meas, measurement{ID: int64(i + 1), Image: p.image, RA: p.ra, Dec: p.dec, WeightEW: 1, WeightNS: 1, FluxInt: 1, FluxPeak: 1, FluxIntErr: 0.1, FluxPeakErr: 0.1})
		for int(p.image) >= len(steps) {
			steps = append(steps, nil)
		}
		steps[p.image] = append(steps[p.image], int32(i))
	}
	for _, st := range steps {
		e.step(st)
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

const arcsec = 1.0 / 3600

func TestBasicAssociation(t *testing.T) {
	tests := []struct {
		name    string
		radius  float64
		ms      []pos
		members map[int64][]int
		related map[int64][]int64
	}{
		{
			name:   "within the radius joins, beyond starts a source",
			radius: 10,
			ms: []pos{
				{0, 150, -30}, {0, 150.1, -30},
				{1, 150 + 9.9*arcsec/math.Cos(30*degToRad), -30}, {1, 150.1, -30 + 10.1*arcsec},
			},
			members: map[int64][]int{1: {1, 3}, 2: {2}, 3: {4}},
		},
		{
			name:   "one-to-many: the nearest keeps the source, the other forks it",
			radius: 10,
			ms: []pos{
				{0, 150, -30}, {1, 150, -30},
				{2, 150, -30 + 5*arcsec}, {2, 150, -30 + 1*arcsec},
			},
			// Measurement 3 forks source 1 as source 2, which copies 1's
			// earlier associations (1 and 2) and is related to it.
			members: map[int64][]int{1: {1, 2, 4}, 2: {1, 2, 3}},
			related: map[int64][]int64{1: {2}, 2: {1}},
		},
		{
			name:   "one-to-many with three claimants: forks numbered by distance",
			radius: 10,
			ms: []pos{
				{0, 150, -30},
				{1, 150, -30 + 6*arcsec}, {1, 150, -30 - 2*arcsec}, {1, 150, -30 + 4*arcsec},
			},
			members: map[int64][]int{1: {1, 3}, 2: {1, 4}, 3: {1, 2}},
			related: map[int64][]int64{1: {2, 3}, 2: {1}, 3: {1}},
		},
		{
			name:   "many-to-one: a measurement joins only its nearest source",
			radius: 10,
			ms: []pos{
				{0, 150, -30}, {0, 150, -30 + 8*arcsec},
				{1, 150, -30 + 5*arcsec},
			},
			members: map[int64][]int{1: {1}, 2: {2, 3}},
		},
		{
			name:   "new sources are numbered after the forks, in step order",
			radius: 10,
			ms: []pos{
				{0, 10, 10},
				{1, 20, 20}, {1, 10, 10}, {1, 10, 10 + 3*arcsec}, {1, 30, 30},
			},
			members: map[int64][]int{1: {1, 3}, 2: {1, 4}, 3: {2}, 4: {5}},
			related: map[int64][]int64{1: {2}, 2: {1}},
		},
		{
			name:   "across RA 0",
			radius: 10,
			ms: []pos{
				{0, 359.9995, 0}, {1, 0.0005, 0}, {2, 0.001, 0}, {3, 0.5, 0},
			},
			members: map[int64][]int{1: {1, 2, 3}, 2: {4}},
		},
		{
			name:   "at the pole",
			radius: 10,
			ms: []pos{
				{0, 0, 90 - 2*arcsec}, {1, 180, 90 - 2*arcsec}, {2, 90, 90 - 20*arcsec},
			},
			members: map[int64][]int{1: {1, 2}, 2: {3}},
		},
		{
			name:   "the source moves to its weighted mean between steps",
			radius: 10,
			ms: []pos{
				{0, 150, -30}, {1, 150, -30 + 8*arcsec},
				// 12" from the first position but 8" from the mean.
				{2, 150, -30 + 12*arcsec},
			},
			members: map[int64][]int{1: {1, 2, 3}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			members, related, _ := runSteps(tc.radius, tc.ms)
			checkGrouping(t, members, related, tc.members, tc.related)
		})
	}
}

func TestWeightedPositionWrapsRA(t *testing.T) {
	_, _, e := runSteps(10, []pos{{0, 359.9999, 1}, {1, 0.0003, 1}})
	if len(e.sources) != 1 {
		t.Fatalf("%d sources, want 1", len(e.sources))
	}
	r := e.sourceMetrics(e.sources[0])
	if math.Abs(r.WavgRA-0.0001) > 1e-9 || r.WavgDec != 1 {
		t.Errorf("wavg %v %v, want 0.0001 1", r.WavgRA, r.WavgDec)
	}
}

func TestSourceMetrics(t *testing.T) {
	e := newEngine(10)
	// Two measurements: fluxes 10 and 20 (±1 and ±2), weights 1 and 3.
	e.meas = []measurement{
		{ID: 1, RA: 10, Dec: 0, WeightEW: 1, WeightNS: 1, FluxInt: 10, FluxIntErr: 1, FluxPeak: 10, FluxPeakErr: 1, SNR: 5, Compactness: 1, HasSiblings: true,
			FluxPeakIslRatio: 0.5, FluxIntIslRatio: 0.25},
		{ID: 2, Image: 1, RA: 10.0004, Dec: 0.0004, WeightEW: 3, WeightNS: 3, FluxInt: 20, FluxIntErr: 2, FluxPeak: 30, FluxPeakErr: 2, SNR: 15, Compactness: 2,
			FluxPeakIslRatio: 0.4, FluxIntIslRatio: 1},
	}
	e.step([]int32{0})
	e.step([]int32{1})
	r := e.sourceMetrics(e.sources[0])
	// η = N/(N-1) (⟨wf²⟩ - ⟨wf⟩²/⟨w⟩) with w = 1, 1/4.
	etaInt := 2 * ((100+400.0/4)/2 - math.Pow((10+20.0/4)/2, 2)/((1+1.0/4)/2))
	want := SourceRow{
		ID: 1, NMeas: 2, NMeasSel: 2, NSibl: 1,
		WavgRA: (10 + 3*10.0004) / 4, WavgDec: 3 * 0.0004 / 4,
		AvgCompactness: 1.5, MinSNR: 5, MaxSNR: 15,
		WavgUncertaintyEW: 0.5, WavgUncertaintyNS: 0.5,
		AvgFluxInt: 15, AvgFluxPeak: 20, MaxFluxPeak: 30,
		MaxFluxInt: 20, MinFluxPeak: 10, MinFluxInt: 10, MinFluxPeakIslRatio: 0.4, MinFluxIntIslRatio: 0.25,
		VInt: math.Sqrt(50) / 15, VPeak: math.Sqrt(200) / 20,
		EtaInt:  etaInt,
		EtaPeak: 2 * ((100+900.0/4)/2 - math.Pow((10+30.0/4)/2, 2)/((1+1.0/4)/2)),
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"wavg_ra", r.WavgRA, want.WavgRA}, {"wavg_dec", r.WavgDec, want.WavgDec},
		{"v_int", r.VInt, want.VInt}, {"v_peak", r.VPeak, want.VPeak},
		{"eta_int", r.EtaInt, want.EtaInt}, {"eta_peak", r.EtaPeak, want.EtaPeak},
	} {
		if relDiff(c.got, c.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	r.WavgRA, r.WavgDec, r.VInt, r.VPeak, r.EtaInt, r.EtaPeak = want.WavgRA, want.WavgDec, want.VInt, want.VPeak, want.EtaInt, want.EtaPeak
	if r != want {
		t.Errorf("metrics\n got %+v\nwant %+v", r, want)
	}

	// pandas' min and max skip NaN.
	e.meas[0].FluxInt, e.meas[1].FluxPeakIslRatio = math.NaN(), math.NaN()
	if r := e.sourceMetrics(e.sources[0]); r.MaxFluxInt != 20 || r.MinFluxInt != 20 || r.MinFluxPeakIslRatio != 0.5 {
		t.Errorf("with NaNs: max_flux_int %v, min_flux_int %v, min_flux_peak_isl_ratio %v; want 20, 20, 0.5", r.MaxFluxInt, r.MinFluxInt, r.MinFluxPeakIslRatio)
	}
	e.meas[0].FluxInt, e.meas[1].FluxPeakIslRatio = 10, 0.4

	// A single measurement has no variability.
	one := e.sourceMetrics(&source{ID: 2, Rows: []row{{Meas: 1}}})
	if one.VInt != 0 || one.VPeak != 0 || one.EtaInt != 0 || one.EtaPeak != 0 || one.WavgRA != 10.0004 {
		t.Errorf("single measurement: %+v", one)
	}
}

func TestForcedMeasurementsLeftOutOfPosition(t *testing.T) {
	e := newEngine(10)
	e.meas = []measurement{
		{ID: 1, RA: 10, Dec: 1, WeightEW: 1, WeightNS: 1, SNR: 7, Compactness: 1, FluxPeakErr: 1, FluxIntErr: 1},
		{ID: 2, RA: 11, Dec: 2, WeightEW: 1, WeightNS: 1, SNR: 1, Compactness: 5, Forced: true, FluxPeakErr: 1, FluxIntErr: 1},
	}
	r := e.sourceMetrics(&source{ID: 1, Rows: []row{{Meas: 0}, {Meas: 1}}})
	if r.WavgRA != 10 || r.WavgDec != 1 || r.MinSNR != 7 || r.AvgCompactness != 1 || r.NMeasForced != 1 || r.NMeasSel != 1 {
		t.Errorf("position and snr must leave the forced measurement out: %+v", r)
	}
	// VAST's uncertainty sums every weight, forced ones included.
	if relDiff(r.WavgUncertaintyEW, 1/math.Sqrt2) > 1e-15 {
		t.Errorf("wavg_uncertainty_ew %v, want 1/√2", r.WavgUncertaintyEW)
	}
}

func TestEpochDuplicates(t *testing.T) {
	e := newEngine(10)
	// Two overlapping images of one epoch: measurements 1 (image 0) and 3
	// (image 1) are the same source, 1 nearer its image's centre; 2 and 4
	// are 3" apart, beyond the 2.5" duplicate radius; 5 is 2" from 1 but in
	// the same image, and 2" from 3 in the other one.
	e.meas = []measurement{
		{ID: 1, Image: 0, RA: 20, Dec: 0, distFromCentre: 0.1},
		{ID: 2, Image: 0, RA: 10, Dec: 0, distFromCentre: 0.3},
		{ID: 3, Image: 1, RA: 20, Dec: 1 * arcsec, distFromCentre: 0.2},
		{ID: 4, Image: 1, RA: 10, Dec: 3 * arcsec, distFromCentre: 0.1},
		{ID: 5, Image: 0, RA: 20, Dec: -1 * arcsec, distFromCentre: 0.4},
	}
	got := e.epochStep([]int32{0, 1, 2, 3, 4}, true, 2.5*arcsec)
	var ids []int64
	for _, mi := range got {
		ids = append(ids, e.meas[mi].ID)
	}
	// Kept: 1, 2 and 4, sorted by RA. 5 goes too, as in VAST: it is the
	// later member of its pair with 3, although 3 itself was dropped.
	if want := []int64{4, 2, 1}; !slices.Equal(ids, want) {
		t.Errorf("kept %v, want %v", ids, want)
	}
	if single := e.epochStep([]int32{3, 1}, false, 2.5*arcsec); !slices.Equal(single, []int32{3, 1}) {
		t.Errorf("a single image's measurements must keep their order, got %v", single)
	}
}

func TestKDTreeMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 7, 100, 2000} {
		pts := make([]vec, n)
		for i := range pts {
			// Clustered, with exact duplicates, to exercise ties.
			ra, dec := 150+rng.Float64()*0.5, -30+rng.Float64()*0.5
			if i > 0 && rng.IntN(10) == 0 {
				pts[i] = pts[rng.IntN(i)]
				continue
			}
			pts[i] = unitVec(ra, dec)
		}
		tree := newKDTree(pts)
		for range 300 {
			q := unitVec(150+rng.Float64()*0.6-0.05, -30+rng.Float64()*0.6-0.05)
			maxD2 := chord2(rng.Float64() * 0.05)
			skip := int32(rng.IntN(n+1) - 1)
			want, wantD := int32(-1), maxD2
			var within []int32
			for i, p := range pts {
				d := dist2(p, q)
				if d <= maxD2 {
					within = append(within, int32(i))
				}
				if int32(i) != skip && d < wantD {
					want, wantD = int32(i), d
				}
			}
			got, _ := tree.nearest(q, maxD2, skip)
			if got != want && (got < 0 || want < 0 || dist2(pts[got], q) != dist2(pts[want], q)) {
				t.Fatalf("n=%d: nearest %d, want %d", n, got, want)
			}
			var each []int32
			tree.each(q, maxD2, func(i int32) { each = append(each, i) })
			slices.Sort(each)
			if !slices.Equal(each, within) {
				t.Fatalf("n=%d: within %v, want %v", n, each, within)
			}
		}
	}
}

func TestSeparation(t *testing.T) {
	tests := []struct {
		ra1, dec1, ra2, dec2, want float64
	}{
		{0, 0, 90, 0, 90},
		{10, 89, 190, 89, 2},
		{359.5, 0, 0.5, 0, 1},
		{150, -30, 150, -30, 0},
		{0, -90, 0, 90, 180},
	}
	for _, tc := range tests {
		if got := separation(tc.ra1, tc.dec1, tc.ra2, tc.dec2); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("separation(%v, %v, %v, %v) = %v, want %v", tc.ra1, tc.dec1, tc.ra2, tc.dec2, got, tc.want)
		}
	}
}

// checkGrouping compares the sources' members and the relations an
// association made with the ones wanted (no relations when wantRelated is
// nil).
func checkGrouping(t *testing.T, members map[int64][]int, related map[int64][]int64, wantMembers map[int64][]int, wantRelated map[int64][]int64) {
	t.Helper()
	if fmt.Sprint(members) != fmt.Sprint(wantMembers) {
		t.Errorf("sources %v, want %v", members, wantMembers)
	}
	if wantRelated == nil {
		wantRelated = map[int64][]int64{}
	}
	if fmt.Sprint(related) != fmt.Sprint(wantRelated) {
		t.Errorf("relations %v, want %v", related, wantRelated)
	}
}
