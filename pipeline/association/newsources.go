package association

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/pipeline/inputs"
)

// newSourceCheck is a source that should have been seen in an earlier
// image: its flux at detection and the image to measure the rms in.
type newSourceCheck struct {
	row   int     // index into the source rows
	flux  float64 // peak flux at detection, mJy/beam
	image int     // index into the images
}

// markNewSources sets new and new_high_sigma the way VAST's new-source
// analysis does. A source is new when the first image (in time) of the
// sky regions that contain it is not one it was measured in; for each
// earlier image of those regions where it would have been at least
// minSigma above the image's minimum rms, its significance is its
// detection peak flux over the noise map's value at its position (images
// where that position is near the border or a NaN are left out). A source
// with such an image is new, and new_high_sigma is its largest
// significance, as VAST documents the column (in the parity data each new
// source has a single earlier image, so no choice is made there).
func (e *engine) markNewSources(ctx context.Context, rows []SourceRow, images []pipeline.ImageRow, root string, s Settings) error {
	sky := newSkyRegions(len(images), func(i int) *pipeline.ImageRow { return &images[i] })
	if sky == nil {
		return nil
	}

	var checks []newSourceCheck
	seen := make([]bool, len(images))
	for k := range rows {
		src := e.sources[k]
		clear(seen)
		detection := len(images)
		for _, a := range src.Rows {
			// VAST's new-source analysis looks at selavy measurements only.
			if e.meas[a.Meas].Forced {
				continue
			}
			im := int(e.meas[a.Meas].Image)
			seen[im] = true
			detection = min(detection, im)
		}
		var coverage []int
		sky.containing(rows[k].WavgRA, rows[k].WavgDec, func(_ int32, r *skyRegion, _ float64) {
			coverage = append(coverage, r.images...)
		})
		if len(coverage) == 0 {
			continue
		}
		// Images are indexed in time order.
		primary := slices.Min(coverage)
		if seen[primary] {
			continue
		}
		var flux []float64
		for _, a := range src.Rows {
			if m := &e.meas[a.Meas]; int(m.Image) == detection && !m.Forced {
				flux = append(flux, m.FluxPeak)
			}
		}
		for _, im := range coverage {
			if seen[im] || images[im].DateTime.Compare(images[detection].DateTime) >= 0 {
				continue
			}
			for _, f := range flux {
				if f/images[im].RMSMin >= s.NewSourceMinSigma {
					checks = append(checks, newSourceCheck{row: k, flux: f, image: im})
				}
			}
		}
	}
	if len(checks) == 0 {
		return nil
	}
	// Noise maps are inputs: opened beneath the images root, regular files
	// only, as the measurements' inputs are.
	inRoot, err := inputs.OpenRoot(root)
	if err != nil {
		return err
	}
	defer inRoot.Close()
	// One pass per noise map.
	slices.SortStableFunc(checks, func(a, b newSourceCheck) int { return cmp.Compare(a.image, b.image) })
	for lo := 0; lo < len(checks); {
		hi := lo
		for hi < len(checks) && checks[hi].image == checks[lo].image {
			hi++
		}
		im := images[checks[lo].image]
		m, err := openRMSMap(inRoot, im.NoisePath, im.BeamBMaj)
		if err != nil {
			return fmt.Errorf("read noise map %s of image %s: %w", im.NoisePath, im.Name, err)
		}
		for _, c := range checks[lo:hi] {
			r := &rows[c.row]
			rms, ok, err := m.trueRMS(ctx, r.WavgRA, r.WavgDec, s.EdgeBufferScale)
			if err != nil {
				m.Close()
				return fmt.Errorf("read noise map %s of image %s: %w", im.NoisePath, im.Name, err)
			}
			if !ok {
				continue
			}
			sigma := c.flux / rms
			if !r.New || sigma > r.NewHighSigma || math.IsNaN(r.NewHighSigma) {
				r.NewHighSigma = sigma
			}
			r.New = true
		}
		m.Close()
		lo = hi
	}
	return nil
}
