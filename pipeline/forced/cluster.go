package forced

import (
	"context"
	"math"
	"slices"
	"sort"
)

// maxNeighbours is how many nearest sources (itself included) forced_phot
// asks its KD-tree for around each source.
const maxNeighbours = 10

// findClusters groups points closer than thr pixels to be fitted
// together. Like forced_phot's cluster, each point looks at its ten nearest
// points (itself included) closer than thr, and those are fitted with it.
// forced_phot then files them under the first founder of a cluster among
// them, looking up founders only, so a point can land in two clusters and
// keep the later fit, which leaves out the neighbours of the earlier one (a
// faint source beside a bright one can come out with their sum). Here
// groups that share a point are merged instead: the clusters are the
// connected components of the "among the ten nearest and closer than thr"
// graph, each sorted, in order of their smallest point. Where
// forced_phot's clusters do not overlap they are the same. Neighbours at
// equal distances are taken in index order (the KD-tree's order for ties
// is its own).
func findClusters(xs, ys []float64, thr float64) [][]int {
	if thr <= 0 || len(xs) < 2 {
		return nil
	}
	// Grid of cells thr wide: neighbours closer than thr lie in the 3×3
	// cells around a point.
	type cell struct{ i, j int64 }
	key := func(x, y float64) cell {
		return cell{int64(math.Floor(x / thr)), int64(math.Floor(y / thr))}
	}
	grid := make(map[cell][]int)
	for p := range xs {
		c := key(xs[p], ys[p])
		grid[c] = append(grid[c], p)
	}
	parent := make([]int, len(xs))
	for p := range parent {
		parent[p] = p
	}
	var find func(int) int
	find = func(p int) int {
		for parent[p] != p {
			parent[p] = parent[parent[p]]
			p = parent[p]
		}
		return p
	}
	type neighbour struct {
		d float64
		p int
	}
	var near []neighbour
	for p := range xs {
		near = near[:0]
		c := key(xs[p], ys[p])
		for di := int64(-1); di <= 1; di++ {
			for dj := int64(-1); dj <= 1; dj++ {
				for _, q := range grid[cell{c.i + di, c.j + dj}] {
					dx, dy := xs[q]-xs[p], ys[q]-ys[p]
					if d := math.Sqrt(dx*dx + dy*dy); d < thr { // the KD-tree's Euclidean distance
						near = append(near, neighbour{d, q})
					}
				}
			}
		}
		if len(near) < 2 {
			continue
		}
		sort.Slice(near, func(a, b int) bool {
			if near[a].d != near[b].d {
				return near[a].d < near[b].d
			}
			return near[a].p < near[b].p
		})
		for _, n := range near[:min(len(near), maxNeighbours)] {
			if a, b := find(p), find(n.p); a != b {
				parent[max(a, b)] = min(a, b)
			}
		}
	}
	index := make(map[int]int) // root -> cluster
	var out [][]int
	size := make(map[int]int)
	for p := range xs {
		size[find(p)]++
	}
	for p := range xs {
		r := find(p)
		if size[r] < 2 {
			continue
		}
		ci, ok := index[r]
		if !ok {
			ci = len(out)
			index[r] = ci
			out = append(out, nil)
		}
		out[ci] = append(out[ci], p)
	}
	return out
}

// clusterResult is the simultaneous fit of a cluster's sources.
type clusterResult struct {
	status        Status
	flux, fluxErr []float64
	chiSq         float64
	dof           int
}

// measureCluster fits the beam at every member's position at once over the
// cut-out that covers all of theirs, weighting by the noise, as
// forced_phot does with astropy's Levenberg-Marquardt fitter. The model is
// linear in the amplitudes, so the least-squares solution is found directly
// from the normal equations. A member's uncertainty is the noise map at its
// nearest pixel, χ² and the degrees of freedom are the cluster's.
func (im *Image) measureCluster(ctx context.Context, ws *workspace, res []Result, members []int, half float64, k beamKernel, allowNaN bool) (clusterResult, error) {
	n := len(members)
	nan := math.NaN()
	out := clusterResult{status: NaNPixels, flux: make([]float64, n), fluxErr: make([]float64, n), chiSq: nan}
	for i := range out.flux {
		out.flux[i], out.fluxErr[i] = nan, nan
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, m := range members {
		minX, maxX = math.Min(minX, res[m].X-half), math.Max(maxX, res[m].X+half)
		minY, maxY = math.Min(minY, res[m].Y-half), math.Max(maxY, res[m].Y+half)
	}
	rc := clampRect(rect{x0: roundInt(minX), x1: roundInt(maxX) + 1, y0: roundInt(minY), y1: roundInt(maxY) + 1}, im.Width, im.Height)
	if rc.empty() {
		return out, nil
	}
	hasNaN, err := im.cutout(ctx, ws, rc)
	if err != nil {
		return out, err
	}
	if hasNaN && !allowNaN {
		return out, nil
	}
	w := rc.x1 - rc.x0
	npix := len(ws.data)
	ws.kernels = grow(ws.kernels, n*npix)
	for a, m := range members {
		ka := ws.kernels[a*npix : (a+1)*npix]
		for j := range npix {
			ka[j] = k.at(float64(rc.x0+j%w), float64(rc.y0+j/w), res[m].X, res[m].Y)
		}
	}
	// Normal equations M·A = b with weights 1/σ².
	mat := make([]float64, n*n)
	rhs := make([]float64, n)
	good := 0
	for j := range npix {
		d, s := ws.data[j], ws.sigma[j]
		if math.IsNaN(d) || math.IsNaN(s) {
			continue
		}
		good++
		wt := 1 / (s * s)
		for a := range n {
			ka := ws.kernels[a*npix+j] * wt
			rhs[a] += ka * d
			for b := a; b < n; b++ {
				mat[a*n+b] += ka * ws.kernels[b*npix+j]
			}
		}
	}
	if good == 0 {
		return out, nil
	}
	for a := range n {
		for b := range a {
			mat[a*n+b] = mat[b*n+a]
		}
	}
	amp := solveSymmetric(mat, rhs, n)
	var chi float64
	for j := range npix {
		d, s := ws.data[j], ws.sigma[j]
		if math.IsNaN(d) || math.IsNaN(s) {
			continue
		}
		model := 0.0
		for a := range n {
			model += amp[a] * ws.kernels[a*npix+j]
		}
		e := (d - model) / s
		chi += e * e
	}
	out.status, out.chiSq, out.dof = Measured, chi, good-n
	for a, m := range members {
		out.flux[a] = amp[a]
		px := roundInt(res[m].X) - rc.x0
		py := roundInt(res[m].Y) - rc.y0
		out.fluxErr[a] = ws.sigma[py*w+px]
	}
	return out, nil
}

// solveSymmetric solves M·x = b for a symmetric positive semi-definite M
// (n×n, row-major) by its eigen-decomposition (cyclic Jacobi), dropping
// directions with eigenvalues too small to resolve: two sources at the same
// pixel share the flux equally instead of taking ±∞.
func solveSymmetric(m, b []float64, n int) []float64 {
	a := slices.Clone(m)
	v := make([]float64, n*n)
	for i := range n {
		v[i*n+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for p := range n {
			for q := p + 1; q < n; q++ {
				off += a[p*n+q] * a[p*n+q]
			}
		}
		if off == 0 || math.IsNaN(off) {
			break
		}
		scale := 0.0
		for p := range n {
			scale += a[p*n+p] * a[p*n+p]
		}
		if off <= 1e-30*scale {
			break
		}
		for p := range n {
			for q := p + 1; q < n; q++ {
				apq := a[p*n+q]
				if apq == 0 {
					continue
				}
				theta := (a[q*n+q] - a[p*n+p]) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n {
					akp, akq := a[k*n+p], a[k*n+q]
					a[k*n+p], a[k*n+q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := range n {
					apk, aqk := a[p*n+k], a[q*n+k]
					a[p*n+k], a[q*n+k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := range n {
					vkp, vkq := v[k*n+p], v[k*n+q]
					v[k*n+p], v[k*n+q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	maxEig := 0.0
	for i := range n {
		maxEig = math.Max(maxEig, math.Abs(a[i*n+i]))
	}
	x := make([]float64, n)
	for i := range n {
		lam := a[i*n+i]
		if !(lam > 1e-12*maxEig) {
			continue
		}
		dot := 0.0
		for k := range n {
			dot += v[k*n+i] * b[k]
		}
		for k := range n {
			x[k] += v[k*n+i] * dot / lam
		}
	}
	return x
}
