package association

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/piperun/piperun/pipeline"
)

// skyRegionGroups groups the images by overlapping sky regions, as VAST's
// group_skyregions does: a region's neighbours are the regions whose
// centre is within 1.1 times its extraction radius of its centre
// (itself included); taking the regions in id order, each not yet grouped
// starts a group of everything reachable through neighbours, and a region
// reached from two groups belongs to the later. It returns the indexes of
// each group's images, groups in VAST's order.
func skyRegionGroups(images []pipeline.ImageRow) [][]int {
	type region struct{ ra, dec, radius float64 }
	regions := map[int64]region{}
	for _, im := range images {
		regions[im.SkyRegID] = region{im.RA, im.Dec, im.FOVBMin}
	}
	ids := make([]int64, 0, len(regions))
	for id := range regions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	neighbours := map[int64][]int64{}
	for _, a := range ids {
		ra := regions[a]
		for _, b := range ids {
			rb := regions[b]
			if separation(ra.ra, ra.dec, rb.ra, rb.dec) <= ra.radius*1.1 {
				neighbours[a] = append(neighbours[a], b)
			}
		}
	}
	groupOf := map[int64]int{}
	done := map[int64]bool{}
	nGroups := 0
	for _, id := range ids {
		if done[id] {
			continue
		}
		members := []int64{id}
		in := map[int64]bool{id: true}
		for k := 0; k < len(members); k++ {
			for _, n := range neighbours[members[k]] {
				if !in[n] {
					in[n] = true
					members = append(members, n)
				}
			}
		}
		for _, m := range members {
			done[m] = true
			groupOf[m] = nGroups
		}
		nGroups++
	}
	// Groups left empty by later ones are dropped, the rest keep their
	// order.
	byGroup := make([][]int, nGroups)
	for i, im := range images {
		g := groupOf[im.SkyRegID]
		byGroup[g] = append(byGroup[g], i)
	}
	return slices.DeleteFunc(byGroup, func(g []int) bool { return len(g) == 0 })
}

// associateGroups associates each group of images on its own, at most
// workers groups at once, as VAST's parallel association does, and merges
// the sources. A group's new sources are numbered after those of the
// groups before it, in the order the group made them (VAST's id
// correction); in add mode the previous run's sources keep their ids and
// each stays with the group of its first measurement's image, new ones are
// numbered from the previous largest id on. It returns the number of steps.
func (e *engine) associateGroups(ctx context.Context, images []pipeline.ImageRow, ranges []measRange, toAssociate []int, groups [][]int, epochMode bool, s Settings, workers int) (int, error) {
	groupOf := make([]int, len(images))
	for g, members := range groups {
		for _, i := range members {
			groupOf[i] = g
		}
	}
	old := map[int64]bool{}
	firstNew := int64(1)
	for _, src := range e.sources {
		old[src.ID] = true
		firstNew = max(firstNew, src.ID+1)
	}
	// Each group's engine shares the measurements, whose steps are
	// disjoint, and starts new ids past every previous one so that they
	// never collide with another group's previous sources.
	engines := make([]*engine, len(groups))
	for g := range engines {
		engines[g] = &engine{meas: e.meas, byID: map[int64]*source{}, nextID: firstNew, radiusDeg: e.radiusDeg}
	}
	for _, src := range e.sources {
		ge := engines[groupOf[e.meas[src.Rows[0].Meas].Image]]
		ge.sources = append(ge.sources, src)
		ge.byID[src.ID] = src
	}
	steps := make([][][]int, len(groups))
	nSteps := 0
	for g := range groups {
		var mine []int
		for _, i := range toAssociate {
			if groupOf[i] == g {
				mine = append(mine, i)
			}
		}
		steps[g] = groupSteps(images, mine, epochMode)
		nSteps += len(steps[g])
	}

	errs := make([]error, len(groups))
	slots := make(chan struct{}, max(1, workers))
	var wg sync.WaitGroup
	for g := range groups {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[g] = engines[g].associateSteps(ctx, images, ranges, steps[g], s)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}

	next := firstNew
	e.sources = e.sources[:0]
	e.byID = map[int64]*source{}
	for _, ge := range engines {
		slices.SortFunc(ge.sources, func(a, b *source) int { return cmp.Compare(a.ID, b.ID) })
		ids := make(map[int64]int64, len(ge.sources))
		for _, src := range ge.sources {
			if old[src.ID] {
				ids[src.ID] = src.ID
			} else {
				ids[src.ID] = next
				next++
			}
		}
		for _, src := range ge.sources {
			src.ID = ids[src.ID]
			for k, r := range src.Related {
				if id, ok := ids[r]; ok {
					src.Related[k] = id
				}
			}
			slices.Sort(src.Related)
			e.sources = append(e.sources, src)
			e.byID[src.ID] = src
		}
	}
	e.nextID = next
	return nSteps, nil
}
