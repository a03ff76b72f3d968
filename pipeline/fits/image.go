package fits

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/piperun/piperun/pipeline/inputs"
)

// ImageInfo is what the pipeline records about an image, computed the way
// the VAST pipeline computes it so that products can be compared.
type ImageInfo struct {
	// DateTime is DATE-OBS, read as UTC.
	DateTime time.Time
	// DurationSec is DURATION in seconds, 0 when absent (as in VAST).
	DurationSec float64
	// Restoring beam in degrees (BMAJ, BMIN, BPA).
	BeamMajDeg, BeamMinDeg, BeamPADeg float64
	NAxis1, NAxis2                    int
	// RADeg and DecDeg are the world coordinates of 1-based pixel
	// (NAXIS1/2, NAXIS2/2), the pixel VAST calls the centre. For an even
	// axis that is half a pixel short of the geometric centre
	// ((NAXIS+1)/2); it is kept so that centres and sky regions match VAST's.
	RADeg, DecDeg float64
	// Projection is the WCS projection code used for the centre (see WCS).
	Projection string
	// PixelScale1Deg and PixelScale2Deg are the pixel sizes along axes 1
	// and 2.
	PixelScale1Deg, PixelScale2Deg float64
	// RadiusPixels is half the image diagonal: VAST's default circle that
	// covers the whole image.
	RadiusPixels float64
	// FOVBMajDeg and FOVBMinDeg are RadiusPixels times the axis-2 and
	// axis-1 pixel scales (VAST's fov_bmaj, fov_bmin).
	FOVBMajDeg, FOVBMinDeg float64
	// PhysicalBMajDeg and PhysicalBMinDeg are the image's extent along axes
	// 1 and 2 (VAST's physical_bmaj, physical_bmin).
	PhysicalBMajDeg, PhysicalBMinDeg float64
	// FrequencyMHz is the reference value of the FREQ axis, or RESTFREQ /
	// RESTFRQ when there is none; BandwidthMHz is the FREQ axis's CDELT (0
	// without a FREQ axis).
	FrequencyMHz, BandwidthMHz float64
	// Telescope is TELESCOP, "" when absent.
	Telescope string
}

// ReadImageInfo reads the header of the FITS file at path and extracts its
// ImageInfo. Errors name the file and, when one is missing or bad, the
// keyword.
func ReadImageInfo(ctx context.Context, path string) (ImageInfo, error) {
	if err := ctx.Err(); err != nil {
		return ImageInfo{}, err
	}
	f, err := inputs.OpenFile(path)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("read FITS header: %w", err)
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("read FITS header of %s: %w", path, err)
	}
	info, err := ImageInfoFromHeader(h)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("read image info of %s: %w", path, err)
	}
	return info, nil
}

// ImageInfoFromHeader extracts an image's ImageInfo from its header.
func ImageInfoFromHeader(h *Header) (ImageInfo, error) {
	var info ImageInfo
	var err error
	if info.DateTime, err = dateObs(h); err != nil {
		return info, err
	}
	if info.DurationSec, err = h.FloatOr("DURATION", 0); err != nil {
		return info, err
	}
	if info.DurationSec < 0 {
		return info, invalid("DURATION", info.DurationSec, "must not be negative")
	}
	for _, kv := range []struct {
		key   string
		dst   *float64
		check func(string, float64) error
	}{{"BMAJ", &info.BeamMajDeg, positive}, {"BMIN", &info.BeamMinDeg, positive}, {"BPA", &info.BeamPADeg, finite}} {
		if *kv.dst, err = h.Float(kv.key); err != nil {
			return info, err
		}
		// A beam of zero would divide measurements' sizes by zero.
		if err := kv.check(kv.key, *kv.dst); err != nil {
			return info, err
		}
	}
	n1, err := axisLength(h, 1)
	if err != nil {
		return info, err
	}
	n2, err := axisLength(h, 2)
	if err != nil {
		return info, err
	}
	info.NAxis1, info.NAxis2 = n1, n2
	w, err := NewWCS(h)
	if err != nil {
		return info, err
	}
	info.Projection = w.Projection
	if info.RADeg, info.DecDeg, err = w.PixelToWorld(float64(n1)/2, float64(n2)/2); err != nil {
		return info, fmt.Errorf("image centre: %w", err)
	}
	if math.IsNaN(info.RADeg) || math.IsNaN(info.DecDeg) {
		return info, fmt.Errorf("image centre: no position (the WCS gives NaN): %w", ErrBadValue)
	}
	info.PixelScale1Deg, info.PixelScale2Deg = w.PixelScales()
	info.RadiusPixels = math.Hypot(float64(n1), float64(n2)) / 2
	info.FOVBMinDeg = info.RadiusPixels * info.PixelScale1Deg
	info.FOVBMajDeg = info.RadiusPixels * info.PixelScale2Deg
	info.PhysicalBMajDeg = float64(n1) * info.PixelScale1Deg
	info.PhysicalBMinDeg = float64(n2) * info.PixelScale2Deg
	if info.FrequencyMHz, info.BandwidthMHz, err = frequency(h); err != nil {
		return info, err
	}

	if h.Has("TELESCOP") {
		if info.Telescope, err = h.String("TELESCOP"); err != nil {
			return info, err
		}
	}
	return info, nil
}

func axisLength(h *Header, i int) (int, error) {
	key := fmt.Sprintf("NAXIS%d", i)
	n, err := h.Int(key)
	if err != nil {
		return 0, err
	}
	if n <= 0 || n > MaxAxisLength {
		return 0, fmt.Errorf("keyword %s = %d: must be within [1, %d]: %w", key, n, MaxAxisLength, ErrBadValue)
	}
	return int(n), nil
}

// ParseDateObs parses a FITS date-time (ISO 8601 without zone, any number
// of fractional digits, optionally a trailing Z; or a date alone) as UTC.
func ParseDateObs(s string) (time.Time, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "Z")
	layout := "2006-01-02T15:04:05"
	if len(s) == len("2006-01-02") {
		layout = "2006-01-02"
	}
	// time.Parse accepts fractional seconds after the seconds field even
	// though the layout has none.
	t, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a FITS date (YYYY-MM-DDThh:mm:ss[.s...]): %w", s, ErrBadValue)
	}
	return t, nil
}

func dateObs(h *Header) (time.Time, error) {
	s, err := h.String("DATE-OBS")
	if err != nil {
		return time.Time{}, err
	}
	t, err := ParseDateObs(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("keyword DATE-OBS: %w", err)
	}
	return t, nil
}

// frequency finds a FREQ axis (CRVAL in CUNIT, Hz by default) or falls back
// to the rest frequency, as VAST does.
func frequency(h *Header) (mhz, bwMHz float64, err error) {
	naxis, err := h.Int("NAXIS")
	if err != nil {
		return 0, 0, err
	}
	for i := int64(1); i <= naxis && i <= 999; i++ {
		ct, err := h.String(fmt.Sprintf("CTYPE%d", i))
		if err != nil || !strings.HasPrefix(ct, "FREQ") {
			continue
		}
		scale := 1e-6
		if h.Has(fmt.Sprintf("CUNIT%d", i)) {
			u, err := h.String(fmt.Sprintf("CUNIT%d", i))
			if err != nil {
				return 0, 0, err
			}
			switch strings.ToUpper(strings.TrimSpace(u)) {
			case "", "HZ":
			case "KHZ":
				scale = 1e-3
			case "MHZ":
				scale = 1
			case "GHZ":
				scale = 1e3
			default:
				return 0, 0, fmt.Errorf("keyword CUNIT%d: unknown frequency unit %q: %w", i, u, ErrBadValue)
			}
		}
		key := fmt.Sprintf("CRVAL%d", i)
		v, err := h.Float(key)
		if err != nil {
			return 0, 0, err
		}
		if err := positive(key, v*scale); err != nil {
			return 0, 0, err
		}
		bw, err := h.FloatOr(fmt.Sprintf("CDELT%d", i), 0)
		if err != nil {
			return 0, 0, err
		}
		return v * scale, math.Abs(bw) * scale, nil
	}
	for _, key := range []string{"RESTFREQ", "RESTFRQ"} {
		if h.Has(key) {
			v, err := h.Float(key)
			if err != nil {
				return 0, 0, err
			}
			if err := positive(key, v); err != nil {
				return 0, 0, err
			}
			return v * 1e-6, 0, nil
		}
	}
	return 0, 0, fmt.Errorf("keyword RESTFREQ (no FREQ axis either): %w", ErrMissingKeyword)
}

// JulianDate returns the Julian date of t.
func JulianDate(t time.Time) float64 {
	// Split the days into whole and fractional parts to keep precision.
	const unixEpochJD = 2440587.5
	sec := t.Unix()
	days := sec / 86400
	rem := float64(sec%86400)/86400 + float64(t.Nanosecond())/86400e9
	return unixEpochJD + float64(days) + rem
}
