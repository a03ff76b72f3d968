package forced

// Measurement holds the columns VAST derives from a forced fit for its
// measurement tables.
type Measurement struct {
	// FluxInt and FluxPeak are both the fitted amplitude in mJy (the image
	// in Jy/beam), FluxIntErr and FluxPeakErr its uncertainty.
	FluxInt, FluxIntErr, FluxPeak, FluxPeakErr float64
	// ChiSquaredFit is the fit's χ².
	ChiSquaredFit float64
	// LocalRMS is the uncertainty again, and SNR FluxPeak / LocalRMS.
	LocalRMS, SNR float64
	// BMaj and BMin (arcsec) and PA (degrees) are the image's restoring
	// beam, which is what was fitted.
	BMaj, BMin, PA float64
}

// Measurement converts a usable Result on im to VAST's columns.
func (im *Image) Measurement(r Result) Measurement {
	f, e := r.Flux*1e3, r.FluxErr*1e3
	return Measurement{
		FluxInt: f, FluxIntErr: e, FluxPeak: f, FluxPeakErr: e,
		ChiSquaredFit: r.ChiSq,
		LocalRMS:      e, SNR: f / e,
		BMaj: im.BeamMajDeg * 3600, BMin: im.BeamMinDeg * 3600, PA: im.BeamPADeg,
	}
}
