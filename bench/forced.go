package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/piperun/piperun/pipeline/forced"
	"github.com/piperun/piperun/synth"
)

// ForcedOptions describe a synthetic image for timing Measure.
type ForcedOptions struct {
	// Pixels is the image side (NAXIS1 = NAXIS2) and Sources the number of
	// sources injected and measured.
	Pixels, Sources int
	// FieldRadiusDeg is the radius of the disc the sources are spread
	// over; the image spans 2.1 times it (0: synth's default, one source
	// per 45″ square).
	FieldRadiusDeg float64
	// Seed makes the image reproducible.
	Seed uint64
	// Options are the fit settings.
	Options forced.Options
}

// ForcedResult is what a timing found.
type ForcedResult struct {
	// Generate is the time taken to write the image and maps, Measure the
	// time to open them and measure every source.
	Generate, Measure time.Duration
	// Measured, Usable and Clustered count the results.
	Measured, Usable, Clustered int
}

// Bench writes a synthetic image of o.Sources sources (beam 15″ × 10″)
// into dir and measures all of them
// at their true positions, as forced extraction would on an image where
// none was detected.
func Forced(ctx context.Context, dir string, o ForcedOptions) (ForcedResult, error) {
	var br ForcedResult
	t0 := time.Now()
	sv, err := synth.Generate(dir, synth.Options{Images: 1, Sources: o.Sources, Pixels: o.Pixels, FieldRadiusDeg: o.FieldRadiusDeg, Seed: o.Seed, InjectSources: true, NewFraction: -1})
	if err != nil {
		return br, fmt.Errorf("generate the image: %w", err)
	}
	br.Generate = time.Since(t0)
	pos := make([]forced.Position, len(sv.Sources))
	for i, s := range sv.Sources {
		pos[i] = forced.Position{RA: s.RA, Dec: s.Dec}
	}
	f := sv.Images[0]
	t1 := time.Now()
	im, err := forced.Open(filepath.Join(dir, f.Image), filepath.Join(dir, f.Background), filepath.Join(dir, f.Noise))
	if err != nil {
		return br, err
	}
	defer im.Close()
	res, err := im.Measure(ctx, pos, o.Options)
	if err != nil {
		return br, err
	}
	br.Measure = time.Since(t1)
	for _, r := range res {
		if r.Status == forced.Measured {
			br.Measured++
		}
		if r.Usable() {
			br.Usable++
		}
		if r.Cluster > 0 {
			br.Clustered++
		}
	}
	return br, nil
}

// ForcedFieldRadiusDeg is the field radius that gives synth images of the
// given side pixels of pixelArcsec.
func ForcedFieldRadiusDeg(pixels int, pixelArcsec float64) float64 {
	return float64(pixels) * pixelArcsec / 3600 / 2.1
}
