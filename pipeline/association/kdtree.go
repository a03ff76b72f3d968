package association

import "math"

// kdTree is a static 3-d tree over points on the unit sphere. Nearest by
// chord is nearest by angle, so it answers the sky's nearest-neighbour
// questions in O(log n) per query after an O(n log n) build.
type kdTree struct {
	pts  []vec
	idx  []int32 // tree order: the median of idx[lo:hi] is at (lo+hi)/2
	axis []uint8 // split axis of the node at each position
}

func newKDTree(pts []vec) *kdTree {
	t := &kdTree{pts: pts, idx: make([]int32, len(pts)), axis: make([]uint8, len(pts))}
	for i := range t.idx {
		t.idx[i] = int32(i)
	}
	t.build(0, len(pts))
	return t
}

func (t *kdTree) build(lo, hi int) {
	for hi-lo > 1 {
		// Split on the axis of largest spread: sky points are flat in
		// small fields, where cycling the axes would waste levels.
		var mn, mx vec
		for a := range 3 {
			mn[a], mx[a] = math.Inf(1), math.Inf(-1)
		}
		for _, i := range t.idx[lo:hi] {
			p := t.pts[i]
			for a := range 3 {
				mn[a] = min(mn[a], p[a])
				mx[a] = max(mx[a], p[a])
			}
		}
		ax := 0
		for a := 1; a < 3; a++ {
			if mx[a]-mn[a] > mx[ax]-mn[ax] {
				ax = a
			}
		}
		m := (lo + hi) / 2
		t.selectNth(lo, hi, m, ax)
		t.axis[m] = uint8(ax)
		t.build(lo, m)
		lo = m + 1
	}
}

// selectNth partially orders idx[lo:hi] on axis ax so that idx[n] holds the
// element that would be there if sorted (Hoare's quickselect, median of
// three pivots).
func (t *kdTree) selectNth(lo, hi, n, ax int) {
	key := func(i int) float64 { return t.pts[t.idx[i]][ax] }
	hi--
	for hi > lo {
		mid := (lo + hi) / 2
		if key(mid) < key(lo) {
			t.idx[mid], t.idx[lo] = t.idx[lo], t.idx[mid]
		}
		if key(hi) < key(lo) {
			t.idx[hi], t.idx[lo] = t.idx[lo], t.idx[hi]
		}
		if key(hi) < key(mid) {
			t.idx[hi], t.idx[mid] = t.idx[mid], t.idx[hi]
		}
		pivot := key(mid)
		i, j := lo, hi
		for i <= j {
			for key(i) < pivot {
				i++
			}
			for key(j) > pivot {
				j--
			}
			if i <= j {
				t.idx[i], t.idx[j] = t.idx[j], t.idx[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return
		}
	}
}

// nearest returns the index of the point nearest to q among those with a
// squared chord distance below maxD2, skipping the point numbered skip
// (-1 for none), or -1 if there is none.
func (t *kdTree) nearest(q vec, maxD2 float64, skip int32) (int32, float64) {
	best, bestD2 := int32(-1), maxD2
	var walk func(lo, hi int)
	walk = func(lo, hi int) {
		for lo < hi {
			m := (lo + hi) / 2
			i := t.idx[m]
			p := t.pts[i]
			if i != skip {
				if d := dist2(p, q); d < bestD2 || d == bestD2 && best >= 0 && i < best {
					best, bestD2 = i, d
				}
			}
			ax := t.axis[m]
			diff := q[ax] - p[ax]
			near, far := [2]int{lo, m}, [2]int{m + 1, hi}
			if diff > 0 {
				near, far = far, near
			}
			walk(near[0], near[1])
			if diff*diff > bestD2 {
				return
			}
			lo, hi = far[0], far[1]
		}
	}
	walk(0, len(t.idx))
	return best, bestD2
}

// each calls fn for every point within squared chord distance maxD2 of q,
// in no particular order.
func (t *kdTree) each(q vec, maxD2 float64, fn func(i int32)) {
	var walk func(lo, hi int)
	walk = func(lo, hi int) {
		for lo < hi {
			m := (lo + hi) / 2
			i := t.idx[m]
			p := t.pts[i]
			if dist2(p, q) <= maxD2 {
				fn(i)
			}
			ax := t.axis[m]
			diff := q[ax] - p[ax]
			if diff <= 0 || diff*diff <= maxD2 {
				walk(lo, m)
			}
			if diff >= 0 || diff*diff <= maxD2 {
				lo = m + 1
				continue
			}
			return
		}
	}
	walk(0, len(t.idx))
}
