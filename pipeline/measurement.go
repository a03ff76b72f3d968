package pipeline

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/selavy"
	"github.com/piperun/piperun/runconfig"
)

// Measurement is one row of a measurements/<image>.parquet product: a
// selavy component as VAST stores it (VAST's column names and units), so
// that tools reading either pipeline's products agree:
//   - ra, dec and their errors, ew/ns_sys_err, error_radius and the
//     uncertainties in degrees; weights in 1/degree²;
//   - fluxes and local_rms in mJy (/beam for peak);
//   - bmaj, bmin and the psf_ (deconvolved) sizes in arcsec; pa, psf_pa in
//     degrees;
//   - err_bmaj and err_bmin in degrees and err_pa in radians when Condon
//     errors are on (VAST's Condon estimates, whatever its data model says),
//     and selavy's own arcsec and degrees when they are off, as VAST keeps
//     selavy's columns then.
//
// name is the image's prefix and selavy's component_id
// ("epoch01_component_1a"), unique within an image as VAST requires.
type Measurement struct {
	ID                  int64     `parquet:"id"`
	IslandID            string    `parquet:"island_id"`
	ComponentID         string    `parquet:"component_id"`
	LocalRMS            float64   `parquet:"local_rms"`
	RA                  float64   `parquet:"ra"`
	RAErr               float64   `parquet:"ra_err"`
	Dec                 float64   `parquet:"dec"`
	DecErr              float64   `parquet:"dec_err"`
	FluxPeak            float64   `parquet:"flux_peak"`
	FluxPeakErr         float64   `parquet:"flux_peak_err"`
	FluxInt             float64   `parquet:"flux_int"`
	FluxIntErr          float64   `parquet:"flux_int_err"`
	BMaj                float64   `parquet:"bmaj"`
	ErrBMaj             float64   `parquet:"err_bmaj"`
	BMin                float64   `parquet:"bmin"`
	ErrBMin             float64   `parquet:"err_bmin"`
	PA                  float64   `parquet:"pa"`
	ErrPA               float64   `parquet:"err_pa"`
	PSFBMaj             float64   `parquet:"psf_bmaj"`
	PSFBMin             float64   `parquet:"psf_bmin"`
	PSFPA               float64   `parquet:"psf_pa"`
	FlagC4              bool      `parquet:"flag_c4"`
	ChiSquaredFit       float64   `parquet:"chi_squared_fit"`
	SpectralIndex       float64   `parquet:"spectral_index"`
	SpectralIndexFromTT bool      `parquet:"spectral_index_from_TT"`
	HasSiblings         bool      `parquet:"has_siblings"`
	ImageID             int64     `parquet:"image_id"`
	Time                time.Time `parquet:"time,timestamp(microsecond:utc)"`
	Name                string    `parquet:"name"`
	SNR                 float64   `parquet:"snr"`
	Compactness         float64   `parquet:"compactness"`
	EWSysErr            float64   `parquet:"ew_sys_err"`
	NSSysErr            float64   `parquet:"ns_sys_err"`
	ErrorRadius         float64   `parquet:"error_radius"`
	UncertaintyEW       float64   `parquet:"uncertainty_ew"`
	UncertaintyNS       float64   `parquet:"uncertainty_ns"`
	WeightEW            float64   `parquet:"weight_ew"`
	WeightNS            float64   `parquet:"weight_ns"`
	Forced              bool      `parquet:"forced"`
	FluxIntIslRatio     float64   `parquet:"flux_int_isl_ratio"`
	FluxPeakIslRatio    float64   `parquet:"flux_peak_isl_ratio"`
}

// Settings are the run settings that change how measurements are built
// (VAST's `measurements` section).
type Settings struct {
	// CondonErrors replaces selavy's flux, shape and position errors by
	// Condon (1997) estimates from the fit and the image's beam.
	CondonErrors bool
	// FluxFractionalError is added in quadrature to both flux errors as a
	// fraction of the flux.
	FluxFractionalError float64
	// RAUncertaintyArcsec and DecUncertaintyArcsec are the systematic
	// positional uncertainties added in quadrature to the error radius.
	RAUncertaintyArcsec, DecUncertaintyArcsec float64
	// LocalRMSFillValue (mJy/beam) replaces a local rms of zero.
	LocalRMSFillValue float64
	// FluxMinError (mJy) and PosMinErrorArcsec floor selavy's errors (VAST's
	// FLUX_DEFAULT_MIN_ERROR and POS_DEFAULT_MIN_ERROR).
	FluxMinError, PosMinErrorArcsec float64
	// NumWorkers and NumWorkersIO are processing.num_workers and
	// num_workers_io (see Workers and WorkersIO): images are read at most
	// WorkersIO(NumWorkersIO, NumWorkers) at once. They do not change
	// the products.
	NumWorkers, NumWorkersIO int
	// QuietHeaderWarnings (run.suppress_astropy_warnings) logs the
	// warnings about how an image's header was interpreted, astropy's
	// kind of warning in VAST, at debug level instead.
	QuietHeaderWarnings bool
}

// DefaultSettings returns VAST's defaults.
func DefaultSettings() Settings {
	return Settings{
		CondonErrors:         true,
		QuietHeaderWarnings:  true,
		RAUncertaintyArcsec:  1,
		DecUncertaintyArcsec: 1,
		LocalRMSFillValue:    0.2,
		FluxMinError:         0.001,
		PosMinErrorArcsec:    0.01,
		NumWorkersIO:         5,
	}
}

// SettingsFromConfig reads the measurement settings of a run configuration;
// an empty configuration gives the defaults.
func SettingsFromConfig(c domain.RunConfig) (Settings, error) {
	s := DefaultSettings()
	if strings.TrimSpace(c.YAML) == "" {
		return s, nil
	}
	cfg, err := runconfig.Parse([]byte(c.YAML))
	if err != nil {
		return s, fmt.Errorf("read measurement settings: %w", err)
	}
	m := cfg.Measurements
	s.CondonErrors = m.CondonErrors
	s.FluxFractionalError = m.FluxFractionalError
	s.RAUncertaintyArcsec = m.RAUncertainty
	s.DecUncertaintyArcsec = m.DecUncertainty
	s.LocalRMSFillValue = m.SelavyLocalRMSFillValue
	s.NumWorkers, s.NumWorkersIO = cfg.Processing.NumWorkers, cfg.Processing.NumWorkersIO
	s.QuietHeaderWarnings = cfg.Run.SuppressAstropyWarnings
	return s, nil
}

// dropped counts the components buildMeasurements left out, by reason.
type dropped struct {
	zero, tiny int
}

// buildMeasurements turns an image's components into measurements the way
// VAST's SelavyImage.read_selavy does: drop components with a zero size or
// flux and those much smaller than the beam, floor the errors, fill a zero
// local rms, compute snr and compactness, Condon errors, positional
// uncertainties and weights, and the island flux ratios. IDs are assigned
// from firstID in catalogue order.
func buildMeasurements(cs []selavy.Component, info fits.ImageInfo, imageID, firstID int64, prefix string, s Settings) ([]Measurement, dropped) {
	var d dropped
	ms := make([]Measurement, 0, len(cs))
	for _, c := range cs {
		if c.MajAxis == 0 || c.MinAxis == 0 || c.FluxPeak == 0 || c.FluxInt == 0 {
			d.zero++
			continue
		}
		// VAST drops components whose fitted axes (arcsec) are not larger
		// than 500 times the beam axes in degrees, i.e. about 0.14 beams.
		if !(c.MajAxis > info.BeamMajDeg*500 && c.MinAxis > info.BeamMinDeg*500) {
			d.tiny++
			continue
		}
		m := Measurement{
			IslandID:            c.IslandID,
			ComponentID:         c.ComponentID,
			LocalRMS:            c.RMSImage,
			RA:                  c.RADeg,
			RAErr:               math.Max(c.RAErr, s.PosMinErrorArcsec) / 3600,
			Dec:                 c.DecDeg,
			DecErr:              math.Max(c.DecErr, s.PosMinErrorArcsec) / 3600,
			FluxPeak:            c.FluxPeak,
			FluxPeakErr:         math.Max(c.FluxPeakErr, s.FluxMinError),
			FluxInt:             c.FluxInt,
			FluxIntErr:          math.Max(c.FluxIntErr, s.FluxMinError),
			BMaj:                c.MajAxis,
			ErrBMaj:             c.MajAxisErr,
			BMin:                c.MinAxis,
			ErrBMin:             c.MinAxisErr,
			PA:                  c.PosAng,
			ErrPA:               c.PosAngErr,
			PSFBMaj:             c.MajAxisDeconv,
			PSFBMin:             c.MinAxisDeconv,
			PSFPA:               c.PosAngDeconv,
			FlagC4:              c.FlagC4,
			ChiSquaredFit:       c.ChiSquaredFit,
			SpectralIndex:       c.SpectralIndex,
			SpectralIndexFromTT: c.SpectralIndexFromTT,
			HasSiblings:         c.HasSiblings,
			ImageID:             imageID,
			Time:                info.DateTime,
			Name:                prefix + c.ComponentID,
		}
		if m.LocalRMS == 0 {
			m.LocalRMS = s.LocalRMSFillValue
		}
		m.SNR = m.FluxPeak / m.LocalRMS
		m.Compactness = m.FluxInt / m.FluxPeak
		if s.CondonErrors {
			condonErrors(&m, info.BeamMajDeg, info.BeamMinDeg)
		}
		if f := s.FluxFractionalError; f > 0 {
			m.FluxPeakErr = math.Hypot(m.FluxPeakErr, f*m.FluxPeak)
			m.FluxIntErr = math.Hypot(m.FluxIntErr, f*m.FluxInt)
		}
		m.EWSysErr = s.RAUncertaintyArcsec / 3600
		m.NSSysErr = s.DecUncertaintyArcsec / 3600
		m.ErrorRadius = errorRadius(m.RA, m.RAErr, m.Dec, m.DecErr)
		m.UncertaintyEW = math.Hypot(m.EWSysErr, m.ErrorRadius)
		m.UncertaintyNS = math.Hypot(m.NSSysErr, m.ErrorRadius)
		m.WeightEW = 1 / (m.UncertaintyEW * m.UncertaintyEW)
		m.WeightNS = 1 / (m.UncertaintyNS * m.UncertaintyNS)
		ms = append(ms, m)
	}
	islandInt := map[string]float64{}
	islandPeak := map[string]float64{}
	for _, m := range ms {
		islandInt[m.IslandID] += m.FluxInt
		islandPeak[m.IslandID] += m.FluxPeak
	}
	for i := range ms {
		ms[i].ID = firstID + int64(i)
		ms[i].FluxIntIslRatio = ms[i].FluxInt / islandInt[ms[i].IslandID]
		ms[i].FluxPeakIslRatio = ms[i].FluxPeak / islandPeak[ms[i].IslandID]
	}
	return ms, d
}

// namePrefix is VAST's prefix for measurement names: the part of the image
// file name after ".i." (if any) up to the next dot, and an underscore.
func namePrefix(imageName string) string {
	s := imageName
	if _, after, ok := strings.Cut(s, ".i."); ok {
		s = after
	}
	s, _, _ = strings.Cut(s, ".")
	return s + "_"
}

// condonErrors replaces the flux, shape and position errors by the Condon
// (1997, PASP 109, 166) estimates, as VAST does (its version follows TraP):
// ρ² = (θM θm / 4θB θb) (1 + θB²/θM²)^αM (1 + θb²/θm²)^αm SNR² with
// (αM, αm) = (5/2, 1/2), (1/2, 5/2), (3/2, 3/2) for ρ1, ρ2, ρ3. Beam and
// axes are FWHM; the beam is in degrees.
func condonErrors(m *Measurement, beamMaj, beamMin float64) {
	major, minor := m.BMaj/3600, m.BMin/3600
	theta := m.PA * degToRad
	if beamMaj == 0 || beamMin == 0 || major == 0 || minor == 0 || m.FluxPeak == 0 || m.FluxInt == 0 || m.SNR == 0 || m.LocalRMS == 0 {
		// VAST zeroes every error of an unrealistic fit.
		m.FluxPeakErr, m.FluxIntErr, m.ErrBMaj, m.ErrBMin, m.ErrPA, m.RAErr, m.DecErr = 0, 0, 0, 0, 0, 0, 0
		return
	}
	base := major * minor / (4 * beamMaj * beamMin) * m.SNR * m.SNR
	fM := 1 + (beamMaj/major)*(beamMaj/major)
	fm := 1 + (beamMin/minor)*(beamMin/minor)
	rhoSq1 := base * math.Pow(fM, 2.5) * math.Pow(fm, 0.5)
	rhoSq2 := base * math.Pow(fM, 0.5) * math.Pow(fm, 2.5)
	rhoSq3 := base * math.Pow(fM, 1.5) * math.Pow(fm, 1.5)
	rho1, rho2 := math.Sqrt(rhoSq1), math.Sqrt(rhoSq2)

	// Position errors along the axes (Condon eq. 21 with σ(x) = σ(θ)/√(8 ln 2)).
	denom1 := math.Sqrt(4*math.Ln2) * rho1
	denom2 := math.Sqrt(4*math.Ln2) * rho2
	errMajor := major / denom1
	errMinor := minor / denom2
	sinT, cosT := math.Sincos(theta)
	m.RAErr = math.Sqrt(errMajor*errMajor*sinT*sinT + errMinor*errMinor*cosT*cosT)
	m.DecErr = math.Sqrt(errMajor*errMajor*cosT*cosT + errMinor*errMinor*sinT*sinT)

	// Axis and angle errors (eq. 21).
	sigMajor := major * math.Sqrt2 / rho1
	sigMinor := minor * math.Sqrt2 / rho2
	m.ErrBMaj = sigMajor // degrees, as VAST's Condon errors
	m.ErrBMin = sigMinor
	// The angle's error is in radians, at most π; a circular fit has no
	// defined angle.
	m.ErrPA = math.Pi
	if major > minor {
		m.ErrPA = min(2/rho2*(major*minor/(major*major-minor*minor)), math.Pi)
	}

	// Peak and integrated flux errors (eqs. 21 and 42).
	peakErrSq := 2 * m.FluxPeak * m.FluxPeak / rhoSq3
	m.FluxPeakErr = math.Sqrt(peakErrSq)
	m.FluxIntErr = math.Abs(m.FluxInt) * math.Sqrt(peakErrSq/(m.FluxPeak*m.FluxPeak)+
		(beamMaj*beamMin/(major*minor))*((sigMajor/major)*(sigMajor/major)+(sigMinor/minor)*(sigMinor/minor)))
}

// errorRadius is VAST's estimate of the largest on-sky extent of the
// position error: the largest separation from (ra, dec) of the four corners
// (ra ± raErr, dec ± decErr), all in degrees. It uses the cosine formula
// VAST uses, including its quantisation of tiny separations (about 1e-8
// rad), with correctly rounded sines and cosines as numpy's, so that error
// radii and weights are VAST's to the last bit.
func errorRadius(ra, raErr, dec, decErr float64) float64 {
	r1, d1 := ra*degToRad, dec*degToRad
	sinD1, cosD1 := crSin(d1), crCos(d1)
	// The four corners share two declinations and two right ascensions.
	var sinD2, cosD2, cosDRA [2]float64
	for i, d := range [2]float64{dec + decErr, dec - decErr} {
		sinD2[i], cosD2[i] = crSin(d*degToRad), crCos(d*degToRad)
	}
	for i, r := range [2]float64{ra + raErr, ra - raErr} {
		cosDRA[i] = crCos(r1 - r*degToRad)
	}
	var best float64
	for _, c := range [4][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
		i, j := c[0], c[1]
		// The conversions keep each product rounded, as numpy's are.
		cos := float64(sinD1*sinD2[j]) + float64(float64(cosD1*cosD2[j])*cosDRA[i])
		if cos > 1 {
			cos = 1
		}
		if sep := acos(cos) * radToDeg; sep > best {
			best = sep
		}
	}
	return best
}

// Conversions written as numpy's deg2rad and rad2deg compute them, so that
// results round the same way.
const (
	degToRad = math.Pi / 180
	radToDeg = 180 / math.Pi
)
