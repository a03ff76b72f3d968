package forced

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/piperun/piperun/pipeline"
)

// DefaultPositionErrorDeg is the positional error VAST gives a forced
// measurement (its POS_DEFAULT_MIN_ERROR, 0.01″), in degrees.
const DefaultPositionErrorDeg = 0.01 / 3600

// RowInfo is what a forced measurement's row takes from the run rather
// than from the fit.
type RowInfo struct {
	// ID is the measurement id; ImageID and Time the image's.
	ID, ImageID int64
	Time        time.Time
	// IslandID is the made-up island: VAST continues the image's own
	// numbering, "<prefix>_<max+1>", "<prefix>_<max+2>", ... in order.
	IslandID string
	// RunID numbers the run in the name, "<component>_f_run<RunID:03d>".
	RunID int64
	// RA and Dec are the position measured at (the source's weighted
	// average position), ICRS degrees.
	RA, Dec float64
	// RAUncertaintyDeg and DecUncertaintyDeg are the configuration's
	// measurements.ra_uncertainty and dec_uncertainty, in degrees.
	RAUncertaintyDeg, DecUncertaintyDeg float64
}

// Row is a usable Result as VAST records a forced measurement: the fit's
// columns (see Measurement), the image's beam as shape and PSF, the made-up
// island and component names, the default positional error, and forced
// set.
func (im *Image) Row(r Result, info RowInfo) pipeline.Measurement {
	m := im.Measurement(r)
	comp := strings.Replace(info.IslandID, "island", "component", 1) + "a"
	ew := math.Hypot(info.RAUncertaintyDeg, DefaultPositionErrorDeg)
	ns := math.Hypot(info.DecUncertaintyDeg, DefaultPositionErrorDeg)
	return pipeline.Measurement{
		ID: info.ID, IslandID: info.IslandID, ComponentID: comp,
		Name: fmt.Sprintf("%s_f_run%03d", comp, info.RunID),
		RA:   info.RA, Dec: info.Dec, RAErr: DefaultPositionErrorDeg, DecErr: DefaultPositionErrorDeg,
		FluxInt: m.FluxInt, FluxIntErr: m.FluxIntErr, FluxPeak: m.FluxPeak, FluxPeakErr: m.FluxPeakErr,
		ChiSquaredFit: m.ChiSquaredFit, LocalRMS: m.LocalRMS, SNR: m.SNR,
		BMaj: m.BMaj, BMin: m.BMin, PA: m.PA, PSFBMaj: m.BMaj, PSFBMin: m.BMin, PSFPA: m.PA,
		ImageID: info.ImageID, Time: info.Time,
		Compactness: 1,
		EWSysErr:    info.RAUncertaintyDeg, NSSysErr: info.DecUncertaintyDeg,
		UncertaintyEW: ew, UncertaintyNS: ns, WeightEW: 1 / (ew * ew), WeightNS: 1 / (ns * ns),
		Forced:          true,
		FluxIntIslRatio: 1, FluxPeakIslRatio: 1,
	}
}
