package association

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalidMeasurement means a measurement holds a value association
// cannot work with: a position that is not finite or not on the sky, a
// weight that is not finite and positive, a flux that is not finite.
var ErrInvalidMeasurement = errors.New("invalid measurement")

// checkMeasurements refuses measurements association cannot place. The
// readers of the inputs check catalogues already; this guards against a
// product that did not come from them, and against settings that make a
// weight infinite (no positional uncertainty at all).
func checkMeasurements(image string, ms []measurement) error {
	for i := range ms {
		m := &ms[i]
		bad := func(col string, v float64, rule string) error {
			return fmt.Errorf("measurements of image %s: measurement %d: %s = %v: %s: %w", image, m.ID, col, v, rule, ErrInvalidMeasurement)
		}
		switch {
		case !(m.RA >= 0 && m.RA <= 360):
			return bad("ra", m.RA, "must be within [0, 360]")
		case !(m.Dec >= -90 && m.Dec <= 90):
			return bad("dec", m.Dec, "must be within [-90, 90]")
		case !(m.WeightEW > 0) || math.IsInf(m.WeightEW, 0):
			return bad("weight_ew", m.WeightEW, "must be positive and finite (is the positional uncertainty zero?)")
		case !(m.WeightNS > 0) || math.IsInf(m.WeightNS, 0):
			return bad("weight_ns", m.WeightNS, "must be positive and finite (is the positional uncertainty zero?)")
		}
		for _, f := range []struct {
			col string
			v   float64
		}{{"flux_peak", m.FluxPeak}, {"flux_peak_err", m.FluxPeakErr}, {"flux_int", m.FluxInt}, {"flux_int_err", m.FluxIntErr}} {
			if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
				return bad(f.col, f.v, "must be finite")
			}
		}
	}
	return nil
}
