package forced

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Options are VAST's source_monitoring settings that shape the fit.
type Options struct {
	// ClusterThreshold: sources closer than this many beam major axes are
	// fitted together; 0 fits every source alone.
	ClusterThreshold float64
	// AllowNaN fits cut-outs with NaN (or zero-noise) pixels using the
	// other pixels; without it such a source is not measured.
	AllowNaN bool
	// EdgeBufferScale scales the margin, half the cut-out, within which
	// sources near the image edge are not measured.
	EdgeBufferScale float64
	// NBeam is the side of the square cut-out in beam major axes (0: 3,
	// forced_phot's default, which VAST uses).
	NBeam float64
	// Workers bounds the goroutines reading and fitting (0: GOMAXPROCS).
	Workers int
}

// MaxClusterSize bounds how many sources are fitted together: a cluster is
// one linear system of its size over a cut-out spanning all its members.
const MaxClusterSize = 200

// Position is a sky position in ICRS degrees.
type Position struct{ RA, Dec float64 }

// Status says whether a position was measured, or why not.
type Status int

const (
	// Measured means the fit ran; its flux may still be unusable (see
	// Result.Usable).
	Measured Status = iota
	// OutsideImage means the position is off the image or within the edge
	// buffer of its border.
	OutsideImage
	// NaNPixels means the cut-out had NaN or zero-noise pixels and
	// AllowNaN was off, or had no valid pixel at all.
	NaNPixels
)

func (s Status) String() string {
	switch s {
	case Measured:
		return "measured"
	case OutsideImage:
		return "outside the image"
	case NaNPixels:
		return "NaN pixels"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is the forced measurement at one position, in the image's units
// (Jy/beam for the survey's images).
type Result struct {
	// X and Y are the 0-based pixel of the position (NaN when it cannot be
	// projected on the image).
	X, Y float64
	// Flux is the fitted amplitude of the beam; FluxErr its uncertainty:
	// for a source fitted alone the kernel-weighted mean of the noise map
	// over the cut-out, for a source in a cluster the noise map at its
	// pixel. ChiSq is Σ((data − model)/noise)² over the cut-out (of the
	// whole cluster for a cluster) and DOF its degrees of freedom. All are
	// NaN unless Status is Measured.
	Flux, FluxErr, ChiSq float64
	DOF                  int
	// Cluster numbers the cluster the source was fitted with, from 1; 0
	// for a source fitted alone.
	Cluster int
	Status  Status
}

// Usable applies VAST's rule for keeping a forced measurement: a non-zero
// flux and uncertainty that are not NaN and a χ² that is not +∞; stricter
// than VAST, an infinite flux or uncertainty (from infinite pixels) is not
// kept either.
func (r Result) Usable() bool {
	ok := func(v float64) bool { return v != 0 && !math.IsNaN(v) && !math.IsInf(v, 0) }
	return r.Status == Measured && ok(r.Flux) && ok(r.FluxErr) && !math.IsInf(r.ChiSq, 1)
}

func (o Options) nbeam() float64 {
	if o.NBeam > 0 {
		return o.NBeam
	}
	return 3
}

// Measure fits the beam at each position, returning one Result per
// position in order. Errors are reading failures; positions that cannot be
// measured are reported in their Result's Status.
func (im *Image) Measure(ctx context.Context, positions []Position, opts Options) ([]Result, error) {
	if math.IsNaN(opts.ClusterThreshold) || opts.ClusterThreshold < 0 || math.IsNaN(opts.EdgeBufferScale) || opts.EdgeBufferScale < 0 || math.IsNaN(opts.NBeam) || opts.NBeam < 0 || opts.NBeam > 100 {
		return nil, fmt.Errorf("forced extraction: cluster threshold %g, edge buffer scale %g and cut-out %g beams must be non-negative (and the cut-out at most 100 beams)",
			opts.ClusterThreshold, opts.EdgeBufferScale, opts.NBeam)
	}
	nan := math.NaN()
	res := make([]Result, len(positions))
	majPix := im.BeamMajDeg / im.PixelScaleDeg
	minPix := im.BeamMinDeg / im.PixelScaleDeg
	nbeam := opts.nbeam()
	// forced_phot's edge filter: half the cut-out, rounded, scaled and
	// rounded again; positions closer than that to the border are skipped.
	edge := math.RoundToEven(math.RoundToEven(nbeam/2*majPix) * opts.EdgeBufferScale)
	w, h := float64(im.Width), float64(im.Height)
	var kept []int
	for i, p := range positions {
		r := &res[i]
		*r = Result{X: nan, Y: nan, Flux: nan, FluxErr: nan, ChiSq: nan, Status: OutsideImage}
		x, y, err := im.Pixel(p.RA, p.Dec)
		if err != nil {
			continue
		}
		r.X, r.Y = x, y
		if !(x >= edge && x <= w-edge && y >= edge && y <= h-edge) {
			continue
		}
		kept = append(kept, i)
	}
	var clusters [][]int
	inCluster := make(map[int]bool)
	if opts.ClusterThreshold > 0 {
		xs, ys := make([]float64, len(kept)), make([]float64, len(kept))
		for k, i := range kept {
			xs[k], ys[k] = res[i].X, res[i].Y
		}
		for _, c := range findClusters(xs, ys, opts.ClusterThreshold*majPix) {
			if len(c) > MaxClusterSize {
				return nil, fmt.Errorf("forced extraction: %d sources closer than %g beams chain into one cluster, more than %d fitted together: lower source_monitoring.cluster_threshold",
					len(c), opts.ClusterThreshold, MaxClusterSize)
			}
			members := make([]int, len(c))
			for k, m := range c {
				members[k] = kept[m]
				inCluster[kept[m]] = true
			}
			clusters = append(clusters, members)
		}
	}
	half := nbeam / 2 * majPix
	kern := newBeamKernel(majPix, minPix, im.BeamPADeg)

	// Single sources and clusters are independent fits.
	clusterOut := make([]clusterResult, len(clusters))
	var jobs []func(*workspace) error
	for _, i := range kept {
		if inCluster[i] {
			continue
		}
		jobs = append(jobs, func(ws *workspace) error {
			return im.measureOne(ctx, ws, &res[i], half, kern, opts.AllowNaN)
		})
	}
	for c, members := range clusters {
		jobs = append(jobs, func(ws *workspace) error {
			var err error
			clusterOut[c], err = im.measureCluster(ctx, ws, res, members, half, kern, opts.AllowNaN)
			return err
		})
	}
	if err := run(jobs, opts.Workers); err != nil {
		return nil, err
	}
	for c, members := range clusters {
		out := clusterOut[c]
		for k, i := range members {
			r := &res[i]
			r.Status, r.Flux, r.FluxErr, r.ChiSq, r.DOF, r.Cluster = out.status, out.flux[k], out.fluxErr[k], out.chiSq, out.dof, c+1
		}
	}
	return res, nil
}

// workspace holds one worker's buffers.
type workspace struct {
	img, bkg, noise []float64
	buf             []byte
	data, sigma     []float64
	kernels         []float64
}

func run(jobs []func(*workspace) error, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(jobs))
	var (
		next  int
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := &workspace{}
			for {
				mu.Lock()
				if first != nil || next == len(jobs) {
					mu.Unlock()
					return
				}
				j := jobs[next]
				next++
				mu.Unlock()
				if err := j(ws); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// rect is a cut-out [x0, x1) × [y0, y1).
type rect struct{ x0, x1, y0, y1 int }

func (r rect) empty() bool { return r.x0 >= r.x1 || r.y0 >= r.y1 }

// cutout reads the background-subtracted data and the noise over r into
// ws.data and ws.sigma. Zero noise becomes NaN, as in forced_phot. It
// reports whether any pixel of either is NaN.
func (im *Image) cutout(ctx context.Context, ws *workspace, r rect) (hasNaN bool, err error) {
	if ws.img, ws.buf, err = im.image.ReadRect(ctx, r.x0, r.x1, r.y0, r.y1, ws.img, ws.buf); err != nil {
		return false, err
	}
	if ws.bkg, ws.buf, err = im.background.ReadRect(ctx, r.x0, r.x1, r.y0, r.y1, ws.bkg, ws.buf); err != nil {
		return false, err
	}
	if ws.noise, ws.buf, err = im.noise.ReadRect(ctx, r.x0, r.x1, r.y0, r.y1, ws.noise, ws.buf); err != nil {
		return false, err
	}
	n := len(ws.img)
	ws.data, ws.sigma = grow(ws.data, n), grow(ws.sigma, n)
	// numpy subtracts two float32 maps in float32.
	f32 := im.image.Float32() && im.background.Float32()
	for i := range n {
		if f32 {
			ws.data[i] = float64(float32(ws.img[i]) - float32(ws.bkg[i]))
		} else {
			ws.data[i] = ws.img[i] - ws.bkg[i]
		}
		s := ws.noise[i]
		if s == 0 {
			s = math.NaN()
		}
		ws.sigma[i] = s
		if math.IsNaN(ws.data[i]) || math.IsNaN(s) {
			hasNaN = true
		}
	}
	return hasNaN, nil
}

// sq2 is σ², in single precision for a float32 noise map as numpy computes
// it.
func (im *Image) sq2(s float64) float64 {
	if im.noise.Float32() {
		f := float32(s)
		return float64(f * f)
	}
	return s * s
}

func clampRect(r rect, w, h int) rect {
	r.x0, r.y0 = max(r.x0, 0), max(r.y0, 0)
	r.x1, r.y1 = min(r.x1, w), min(r.y1, h)
	return r
}

// roundInt rounds half to even, as numpy does, into an int, saturating
// far outside the image.
func roundInt(v float64) int {
	v = math.RoundToEven(v)
	switch {
	case v > 1<<40:
		return 1 << 40
	case v < -(1 << 40):
		return -(1 << 40)
	}
	return int(v)
}

// measureOne is forced_phot's fit of a single source: the amplitude of the
// beam that minimises χ² has a closed form.
func (im *Image) measureOne(ctx context.Context, ws *workspace, r *Result, half float64, k beamKernel, allowNaN bool) error {
	rc := clampRect(rect{
		x0: roundInt(r.X - half), x1: roundInt(r.X+half) + 1,
		y0: roundInt(r.Y - half), y1: roundInt(r.Y+half) + 1,
	}, im.Width, im.Height)
	r.Status = NaNPixels
	if rc.empty() {
		return nil
	}
	hasNaN, err := im.cutout(ctx, ws, rc)
	if err != nil {
		return err
	}
	if hasNaN && !allowNaN {
		return nil
	}
	var sumDK, sumKK, sumNK, sumK float64
	good := 0
	w := rc.x1 - rc.x0
	for j := range len(ws.data) {
		d, s := ws.data[j], ws.sigma[j]
		if math.IsNaN(d) || math.IsNaN(s) {
			continue
		}
		good++
		kv := k.at(float64(rc.x0+j%w), float64(rc.y0+j/w), r.X, r.Y)
		kn2 := kv / im.sq2(s)
		sumDK += d * kn2
		sumKK += kv * kv / im.sq2(s)
		sumNK += s * kn2
		sumK += kn2
	}
	if good == 0 {
		return nil
	}
	flux := sumDK / sumKK
	var chi float64
	for j := range len(ws.data) {
		d, s := ws.data[j], ws.sigma[j]
		if math.IsNaN(d) || math.IsNaN(s) {
			continue
		}
		kv := k.at(float64(rc.x0+j%w), float64(rc.y0+j/w), r.X, r.Y)
		e := (d - kv*flux) / s
		chi += e * e
	}
	r.Status, r.Flux, r.FluxErr, r.ChiSq, r.DOF = Measured, flux, sumNK/sumK, chi, good-1
	return nil
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
