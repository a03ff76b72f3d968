package forced

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/synth"
)

var vastOpts = Options{ClusterThreshold: 3, EdgeBufferScale: 1.2}

func measure(t *testing.T, im *Image, pos []Position, opts Options) []Result {
	t.Helper()
	res, err := im.Measure(context.Background(), pos, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(pos) {
		t.Fatalf("%d results for %d positions", len(res), len(pos))
	}
	return res
}

// TestRecoversInjectedSources measures a synthetic survey image at the
// sources' true positions: each flux comes back within its uncertainty.
func TestRecoversInjectedSources(t *testing.T) {
	dir := t.TempDir()
	sv, err := synth.Generate(dir, synth.Options{Images: 1, Sources: 40, Pixels: 400, Seed: 7, InjectSources: true, NewFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	files := sv.Images[0]
	im, err := Open(filepath.Join(dir, files.Image), filepath.Join(dir, files.Background), filepath.Join(dir, files.Noise))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	pos := make([]Position, len(sv.Sources))
	for i, s := range sv.Sources {
		pos[i] = Position{s.RA, s.Dec}
	}
	res := measure(t, im, pos, vastOpts)
	measured, clustered := 0, 0
	for i, r := range res {
		if r.Status != Measured {
			continue
		}
		measured++
		if r.Cluster > 0 {
			clustered++
		}
		m := im.Measurement(r)
		want := sv.Sources[i].FluxMJy[0]
		if !r.Usable() || math.Abs(m.FluxInt-want) > m.FluxIntErr {
			t.Errorf("source %d (cluster %d): %.4f ± %.4f mJy, injected %.4f", i, r.Cluster, m.FluxInt, m.FluxIntErr, want)
		}
	}
	if measured < len(res)*3/4 || clustered == 0 {
		t.Errorf("measured %d of %d sources, %d in clusters: the test should exercise both fits", measured, len(res), clustered)
	}
}

// TestClusterFitsCloseSourcesTogether puts two sources one beam apart:
// fitted alone each takes up the other's wing; fitted together each gets
// its own flux back.
func TestClusterFitsCloseSourcesTogether(t *testing.T) {
	f := newField(t, 96, 96)
	f.bpa = 30
	f.addSource(44, 48, 0.050)
	f.addSource(51.3, 50.2, 0.020)
	f.addSource(20, 20, 0.010) // isolated
	im := f.open(t)
	pos := []Position{f.sky(t, im, 44, 48), f.sky(t, im, 51.3, 50.2), f.sky(t, im, 20, 20)}

	together := measure(t, im, pos, vastOpts)
	for i, want := range []float64{0.050, 0.020, 0.010} {
		r := together[i]
		if r.Status != Measured || math.Abs(r.Flux-want) > 1e-6*want {
			t.Errorf("clustered fit, source %d: %+v, want flux %g", i, r, want)
		}
	}
	if together[0].Cluster != 1 || together[1].Cluster != 1 || together[2].Cluster != 0 {
		t.Errorf("clusters %d %d %d, want the close pair in cluster 1 and the third alone", together[0].Cluster, together[1].Cluster, together[2].Cluster)
	}
	// A cluster's uncertainty is the noise at the source's pixel, its χ²
	// and degrees of freedom the cluster's.
	if together[0].FluxErr != float64(float32(1e-3)) {
		t.Errorf("cluster uncertainty %g, want the noise map's 1e-3", together[0].FluxErr)
	}
	if together[0].ChiSq != together[1].ChiSq || together[0].DOF != together[1].DOF || together[0].ChiSq > 1e-6 {
		t.Errorf("cluster χ² %g/%d and %g/%d: want one, near 0 for noiseless data", together[0].ChiSq, together[0].DOF, together[1].ChiSq, together[1].DOF)
	}

	alone := measure(t, im, pos, Options{EdgeBufferScale: 1.2})
	for i, want := range []float64{0.050, 0.020} {
		if r := alone[i]; r.Cluster != 0 || r.Flux < want*1.01 {
			t.Errorf("fitted alone, source %d: %+v; want the neighbour's wing to raise it above %g", i, r, want*1.01)
		}
	}
	if r := alone[2]; math.Abs(r.Flux-0.010) > 1e-6*0.010 || r.DOF != 23*23-1 {
		t.Errorf("isolated source: %+v, want flux 0.010 over a 23×23 cut-out", r)
	}
}

// TestEdgeBuffer: forced_phot skips sources within round(round(1.5 BMAJ in
// pixels) × scale) pixels of the border; here round(11.25) = 11 pixels,
// scaled by 1.2 to 13.
func TestEdgeBuffer(t *testing.T) {
	f := newField(t, 64, 64)
	im := f.open(t)
	cases := []struct {
		x, y  float64
		scale float64
		want  Status
	}{
		{12.9, 32, 1.2, OutsideImage},
		{13.1, 32, 1.2, Measured},
		{32, 12.9, 1.2, OutsideImage},
		{32, 64 - 12.9, 1.2, OutsideImage},
		{32, 64 - 13.1, 1.2, Measured},
		{10.9, 32, 1, OutsideImage},
		{11.1, 32, 1, Measured},
		{0.5, 0.5, 0, Measured},
		{-0.5, 32, 0, OutsideImage},
	}
	for _, c := range cases {
		r := measure(t, im, []Position{f.sky(t, im, c.x, c.y)}, Options{EdgeBufferScale: c.scale})[0]
		if r.Status != c.want {
			t.Errorf("(%g, %g) at scale %g: %v, want %v", c.x, c.y, c.scale, r.Status, c.want)
		}
		if math.Abs(r.X-c.x) > 1e-9 || math.Abs(r.Y-c.y) > 1e-9 {
			t.Errorf("(%g, %g): pixel (%g, %g)", c.x, c.y, r.X, r.Y)
		}
	}
}

// TestNaNPixels: a NaN in the image, or a zero in the noise map, within
// the cut-out stops the fit unless NaNs are allowed, when the other pixels
// are used.
func TestNaNPixels(t *testing.T) {
	for _, where := range []string{"image", "noise zero", "noise NaN"} {
		for _, pair := range []bool{false, true} {
			f := newField(t, 64, 64)
			f.addSource(32, 32, 0.030)
			if pair {
				f.addSource(36, 35, 0.010) // fitted with the first
			}
			switch where {
			case "image":
				f.img[30*64+33] = float32(math.NaN())
			case "noise zero":
				f.noise[30*64+33] = 0
			case "noise NaN":
				f.noise[30*64+33] = float32(math.NaN())
			}
			im := f.open(t)
			pos := []Position{f.sky(t, im, 32, 32)}
			if pair {
				pos = append(pos, f.sky(t, im, 36, 35))
			}
			r := measure(t, im, pos, vastOpts)[0]
			if r.Status != NaNPixels || r.Usable() || !math.IsNaN(r.Flux) {
				t.Errorf("%s, pair %v, NaN not allowed: %+v, want no measurement", where, pair, r)
			}
			r = measure(t, im, pos, Options{ClusterThreshold: 3, EdgeBufferScale: 1.2, AllowNaN: true})[0]
			// The 23×23 cut-out (wider for the pair) less the bad pixel,
			// less one degree of freedom per source.
			wantDOF := 23*23 - 1 - 1
			if pair {
				wantDOF = 27*26 - 1 - 2
			}
			if r.Status != Measured || !r.Usable() || math.Abs(r.Flux-0.030) > 1e-6 || r.DOF != wantDOF {
				t.Errorf("%s, pair %v, NaN allowed: %+v, want the flux from the other %d pixels", where, pair, r, wantDOF)
			}
		}
	}
	// A cut-out with no valid pixel at all is never measured.
	f := newField(t, 64, 64)
	for i := range f.noise {
		f.noise[i] = 0
	}
	im := f.open(t)
	if r := measure(t, im, []Position{f.sky(t, im, 32, 32)}, Options{AllowNaN: true})[0]; r.Status != NaNPixels || r.Usable() {
		t.Errorf("all-zero noise: %+v", r)
	}
}

// TestPositionsOffTheImage are not measured and do not disturb the others.
func TestPositionsOffTheImage(t *testing.T) {
	f := newField(t, 64, 64)
	f.addSource(32, 32, 0.02)
	im := f.open(t)
	pos := []Position{
		{330, 30},             // far side of the sky: not projectable
		f.sky(t, im, 200, 32), // beyond the right edge
		f.sky(t, im, 32, -40), // below the bottom
		{math.NaN(), -30},     // no position
		f.sky(t, im, 32, 32),  // on the image
		{150, math.Inf(-1)},   // no position
	}
	res := measure(t, im, pos, vastOpts)
	for i, r := range res {
		want := OutsideImage
		if i == 4 {
			want = Measured
		}
		if r.Status != want {
			t.Errorf("position %d %v: %v, want %v", i, pos[i], r.Status, want)
		}
	}
	if math.Abs(res[4].Flux-0.02) > 1e-7 {
		t.Errorf("on-image source: %+v", res[4])
	}
}

// TestFK5ImageTakesICRSPositions: an FK5 image is measured at the ICRS
// position moved into FK5, ~0.02" away, as astropy does.
func TestFK5ImageTakesICRSPositions(t *testing.T) {
	f := newField(t, 64, 64)
	f.frame = "FK5"
	im := f.open(t)
	ra, dec, err := im.wcs.PixelToWorld(33, 33)
	if err != nil {
		t.Fatal(err)
	}
	r := measure(t, im, []Position{{ra, dec}}, vastOpts)[0]
	if d := math.Hypot(r.X-32, r.Y-32) * 2; d < 0.005 || d > 0.05 {
		t.Errorf("FK5 pixel (%g, %g) is %g\" from the FK5 position's: want the ~0.02\" frame bias", r.X, r.Y, d)
	}
}

func TestMeasureRefusesBadOptions(t *testing.T) {
	f := newField(t, 32, 32)
	im := f.open(t)
	for _, o := range []Options{{ClusterThreshold: -1}, {EdgeBufferScale: math.NaN()}, {NBeam: -3}, {NBeam: 1e9}} {
		if _, err := im.Measure(context.Background(), []Position{{150, -30}}, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func TestSolveSymmetric(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for n := 1; n <= 12; n++ {
		// M = AᵀA + I is positive definite.
		a := make([]float64, n*n)
		for i := range a {
			a[i] = rng.NormFloat64()
		}
		m := make([]float64, n*n)
		for i := range n {
			for j := range n {
				for k := range n {
					m[i*n+j] += a[k*n+i] * a[k*n+j]
				}
			}
			m[i*n+i]++
		}
		b := make([]float64, n)
		for i := range b {
			b[i] = rng.NormFloat64()
		}
		x := solveSymmetric(m, b, n)
		for i := range n {
			s := 0.0
			for j := range n {
				s += m[i*n+j] * x[j]
			}
			if math.Abs(s-b[i]) > 1e-9 {
				t.Fatalf("n=%d: row %d: %g, want %g", n, i, s, b[i])
			}
		}
	}
	// Two identical columns: the flux is shared, not infinite.
	x := solveSymmetric([]float64{2, 2, 2, 2}, []float64{4, 4}, 2)
	if math.Abs(x[0]-1) > 1e-12 || math.Abs(x[1]-1) > 1e-12 {
		t.Errorf("singular system: %v, want [1 1]", x)
	}
}

// TestFindClusters checks the grouping against forced_phot's, and where
// it departs from it.
func TestFindClusters(t *testing.T) {
	same := func(got, want [][]int) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range want {
			if len(got[i]) != len(want[i]) {
				return false
			}
			for j := range want[i] {
				if got[i][j] != want[i][j] {
					return false
				}
			}
		}
		return true
	}
	// Two separate pairs and a lone point: forced_phot gives
	// {0: {0, 2}, 1: {1, 3}}.
	if got := findClusters([]float64{0, 50, 4, 53, 100}, []float64{0, 0, 3, 1, 100}, 6); !same(got, [][]int{{0, 2}, {1, 3}}) {
		t.Errorf("pairs: %v, want [[0 2] [1 3]]", got)
	}
	// A chain 0–1–2 (5 and 5.5 apart, threshold 6): forced_phot gives
	// {0: {0,1,2}, 2: {1,2}} and keeps the second fit for 1 and 2, without
	// 0; merged, all three are fitted together.
	if got := findClusters([]float64{0, 5, 10.5, 100}, []float64{0, 0, 0, 0}, 6); !same(got, [][]int{{0, 1, 2}}) {
		t.Errorf("chain: %v, want [[0 1 2]]", got)
	}
	// The threshold is strict, as the KD-tree's distance bound.
	if c := findClusters([]float64{0, 6}, []float64{0, 0}, 6); len(c) != 0 {
		t.Errorf("points exactly at the threshold clustered: %v", c)
	}
	if c := findClusters([]float64{0, 1}, []float64{0, 0}, 0); len(c) != 0 {
		t.Errorf("threshold 0 clustered: %v", c)
	}
}

// TestOversizedClusterIsRefused: a threshold that chains a crowded field
// into one huge cluster is an error, not a silent hour-long fit.
func TestOversizedClusterIsRefused(t *testing.T) {
	f := newField(t, 256, 256)
	im := f.open(t)
	var pos []Position
	for i := range MaxClusterSize + 1 {
		pos = append(pos, f.sky(t, im, 20+float64(i%15)*14, 20+float64(i/15)*14))
	}
	if _, err := im.Measure(context.Background(), pos, Options{ClusterThreshold: 3}); err == nil {
		t.Error("a cluster of more than MaxClusterSize sources was fitted")
	}
	if res, err := im.Measure(context.Background(), pos, Options{ClusterThreshold: 1}); err != nil || res[0].Cluster != 0 {
		t.Errorf("sources 14 pixels apart with a 7.5-pixel threshold: %v, cluster %d", err, res[0].Cluster)
	}
}
