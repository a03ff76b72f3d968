package association

import "github.com/piperun/piperun/pipeline"

// skyRegion is a sky region of the run's images (the pointing their
// SkyRegID names): its centre, its radius (the images' FOVBMin) and its
// images, by index, in time order.
type skyRegion struct {
	ra, dec, radius float64
	images          []int
}

// skyRegions are the sky regions of a run's images, with a tree over their
// centres to find the regions that contain a position.
type skyRegions struct {
	regions []*skyRegion
	tree    *kdTree
	maxD2   float64
}

// newSkyRegions groups n images, image(i) giving the i-th in time order,
// by sky region, each region taking the centre and radius of its first
// image. It returns nil when there are no images.
func newSkyRegions(n int, image func(i int) *pipeline.ImageRow) *skyRegions {
	regionOf := map[int64]*skyRegion{}
	var regions []*skyRegion
	for i := range n {
		im := image(i)
		r, ok := regionOf[im.SkyRegID]
		if !ok {
			r = &skyRegion{ra: im.RA, dec: im.Dec, radius: im.FOVBMin}
			regionOf[im.SkyRegID] = r
			regions = append(regions, r)
		}
		r.images = append(r.images, i)
	}
	if len(regions) == 0 {
		return nil
	}
	pts := make([]vec, len(regions))
	maxRadius := 0.0
	for i, r := range regions {
		pts[i] = unitVec(r.ra, r.dec)
		maxRadius = max(maxRadius, r.radius)
	}
	return &skyRegions{regions: regions, tree: newKDTree(pts), maxD2: chord2(maxRadius) * (1 + 1e-9)}
}

// containing calls fn with each region whose centre is less than its
// radius from (ra, dec): its index, the region and that separation in
// degrees.
func (s *skyRegions) containing(ra, dec float64, fn func(i int32, r *skyRegion, sep float64)) {
	s.tree.each(unitVec(ra, dec), s.maxD2, func(i int32) {
		r := s.regions[i]
		if d := separation(r.ra, r.dec, ra, dec); d < r.radius {
			fn(i, r, d)
		}
	})
}
