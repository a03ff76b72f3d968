package fits

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// WCS maps 1-based FITS pixel coordinates on the first two axes to
// equatorial coordinates in degrees.
type WCS struct {
	// Projection is the three-letter code from CTYPE ("SIN", "TAN", "ARC"),
	// or "linear" when the projection is not one of those and world
	// coordinates are computed as CRVAL + offset, which is only right near
	// the reference pixel.
	Projection string

	crpix  [2]float64
	crval  [2]float64 // (ra, dec) of the reference point
	m      [2][2]float64
	swap   bool // axis 1 is declination
	lonp   float64
	pv1    float64 // PV2_1 and PV2_2 of the celestial latitude axis (SIN ξ, η)
	pv2    float64
	scales [2]float64
}

// NewWCS reads the celestial WCS of the first two axes: CTYPE, CRVAL, CRPIX
// and either CDi_j, or CDELTi with PCi_j (also the older PC00i00j form) or
// CROTA2.
func NewWCS(h *Header) (*WCS, error) {
	w := &WCS{}
	ctype := [2]string{}
	for i := range 2 {
		var err error
		if ctype[i], err = h.String(fmt.Sprintf("CTYPE%d", i+1)); err != nil {
			return nil, err
		}
	}
	lng, lat := -1, -1
	for i, c := range ctype {
		switch {
		case strings.HasPrefix(c, "RA"):
			lng = i
		case strings.HasPrefix(c, "DEC"):
			lat = i
		}
	}
	if lng < 0 || lat < 0 {
		return nil, fmt.Errorf("CTYPE1 %q, CTYPE2 %q: want RA and DEC axes: %w", ctype[0], ctype[1], ErrBadValue)
	}
	w.swap = lng == 1
	w.Projection = "linear"
	if len(ctype[lng]) == 8 && len(ctype[lat]) == 8 && ctype[lng][5:] == ctype[lat][5:] {
		switch p := ctype[lng][5:]; p {
		case "SIN", "TAN", "ARC":
			w.Projection = p
		}
	}
	var crval [2]float64
	for i := range 2 {
		var err error
		if crval[i], err = h.Float(fmt.Sprintf("CRVAL%d", i+1)); err != nil {
			return nil, err
		}
		if w.crpix[i], err = h.Float(fmt.Sprintf("CRPIX%d", i+1)); err != nil {
			return nil, err
		}
	}
	w.crval = [2]float64{crval[lng], crval[lat]}
	// Any RA is a place, but one beyond a turn is not a header's; a Dec
	// beyond a pole is no place at all.
	if err := within(fmt.Sprintf("CRVAL%d", lng+1), crval[lng], -360, 360); err != nil {
		return nil, err
	}
	if err := within(fmt.Sprintf("CRVAL%d", lat+1), crval[lat], -90, 90); err != nil {
		return nil, err
	}
	for i := range 2 {
		if err := finite(fmt.Sprintf("CRPIX%d", i+1), w.crpix[i]); err != nil {
			return nil, err
		}
	}
	if err := w.readMatrix(h); err != nil {
		return nil, err
	}
	for j := range 2 {
		w.scales[j] = math.Hypot(w.m[0][j], w.m[1][j])
		// The matrix's elements come from finite keywords, but their
		// products can overflow.
		if math.IsInf(w.scales[j], 0) || math.IsNaN(w.scales[j]) {
			return nil, fmt.Errorf("pixel scale of axis %d is not finite (CDELT or CD matrix): %w", j+1, ErrBadValue)
		}
	}
	if w.scales[0] == 0 || w.scales[1] == 0 {
		return nil, fmt.Errorf("pixel scale is zero (CDELT or CD matrix): %w", ErrBadValue)
	}
	// For zenithal projections the native longitude of the celestial pole
	// defaults to 180° unless the reference point is the pole itself.
	def := 180.0
	if w.crval[1] >= 90 {
		def = 0
	}
	var err error
	if w.lonp, err = h.FloatOr("LONPOLE", def); err != nil {
		return nil, err
	}
	latAxis := lat + 1
	if w.pv1, err = h.FloatOr(fmt.Sprintf("PV%d_1", latAxis), 0); err != nil {
		return nil, err
	}
	if w.pv2, err = h.FloatOr(fmt.Sprintf("PV%d_2", latAxis), 0); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *WCS) readMatrix(h *Header) error {
	if h.Has("CD1_1") || h.Has("CD1_2") || h.Has("CD2_1") || h.Has("CD2_2") {
		for i := range 2 {
			for j := range 2 {
				v, err := h.FloatOr(fmt.Sprintf("CD%d_%d", i+1, j+1), 0)
				if err != nil {
					return err
				}
				w.m[i][j] = v
			}
		}
		return nil
	}
	var cdelt [2]float64
	for i := range 2 {
		var err error
		key := fmt.Sprintf("CDELT%d", i+1)
		if cdelt[i], err = h.Float(key); err != nil {
			return err
		}
		// The sign says the axis's direction; the size must be real.
		if cdelt[i] == 0 {
			return invalid(key, cdelt[i], "must not be zero")
		}
	}
	pc := [2][2]float64{{1, 0}, {0, 1}}
	hasPC := false
	for i := range 2 {
		for j := range 2 {
			for _, k := range []string{fmt.Sprintf("PC%d_%d", i+1, j+1), fmt.Sprintf("PC%03d%03d", i+1, j+1), fmt.Sprintf("PC%02d_%02d", i+1, j+1)} {
				if h.Has(k) {
					v, err := h.Float(k)
					if err != nil {
						return err
					}
					pc[i][j] = v
					hasPC = true
					break
				}
			}
		}
	}
	if !hasPC && h.Has("CROTA2") {
		rot, err := h.Float("CROTA2")
		if err != nil {
			return err
		}
		s, c := math.Sincos(rot * math.Pi / 180)
		pc = [2][2]float64{{c, -s * cdelt[1] / cdelt[0]}, {s * cdelt[0] / cdelt[1], c}}
	}
	for i := range 2 {
		for j := range 2 {
			w.m[i][j] = cdelt[i] * pc[i][j]
		}
	}
	return nil
}

// PixelScales returns the size in degrees of a pixel along the first two
// axes (astropy's proj_plane_pixel_scales).
func (w *WCS) PixelScales() (float64, float64) { return w.scales[0], w.scales[1] }

var errOutsideProjection = errors.New("pixel lies outside the projection")

// PixelToWorld returns the (RA, Dec) in degrees of 1-based pixel (p1, p2),
// RA in [0, 360).
func (w *WCS) PixelToWorld(p1, p2 float64) (ra, dec float64, err error) {
	d := [2]float64{p1 - w.crpix[0], p2 - w.crpix[1]}
	var xi [2]float64
	for i := range 2 {
		xi[i] = w.m[i][0]*d[0] + w.m[i][1]*d[1]
	}
	x, y := xi[0], xi[1]
	if w.swap {
		x, y = y, x
	}
	if w.Projection == "linear" {
		return normRA(w.crval[0] + x), w.crval[1] + y, nil
	}
	phi, theta, err := w.native(x*deg, y*deg)
	if err != nil {
		return 0, 0, fmt.Errorf("pixel (%g, %g): %w", p1, p2, err)
	}
	// Native to celestial spherical coordinates for a zenithal projection
	// (Calabretta & Greisen 2002, eq. 2), whose reference point is the
	// native pole, so δp = δ0.
	ap, dp, php := w.crval[0]*deg, w.crval[1]*deg, w.lonp*deg
	sinT, cosT := math.Sincos(theta)
	sinD, cosD := math.Sincos(dp)
	dphi := phi - php
	sinP, cosP := math.Sincos(dphi)
	ra = ap + math.Atan2(-cosT*sinP, sinT*cosD-cosT*sinD*cosP)
	dec = math.Asin(clamp(sinT*sinD + cosT*cosD*cosP))
	return normRA(ra / deg), dec / deg, nil
}

// native deprojects intermediate coordinates (radians) to native spherical
// (φ, θ) in radians (Calabretta & Greisen 2002, §5.1).
func (w *WCS) native(x, y float64) (phi, theta float64, err error) {
	r := math.Hypot(x, y)
	switch w.Projection {
	case "TAN":
		theta = math.Atan2(1, r)
	case "ARC":
		theta = math.Pi/2 - r
	case "SIN":
		xi, eta := w.pv1, w.pv2
		if xi == 0 && eta == 0 {
			if r > 1 {
				return 0, 0, errOutsideProjection
			}
			theta = math.Acos(r)
			break
		}
		// Slant orthographic: solve the quadratic for sin θ and take the
		// root nearer the pole.
		a := xi*xi + eta*eta + 1
		b := xi*(x-xi) + eta*(y-eta)
		c := (x-xi)*(x-xi) + (y-eta)*(y-eta) - 1
		disc := b*b - a*c
		if disc < 0 {
			return 0, 0, errOutsideProjection
		}
		s1, s2 := (-b+math.Sqrt(disc))/a, (-b-math.Sqrt(disc))/a
		s := s1
		if math.Abs(s2-1) < math.Abs(s1-1) {
			s = s2
		}
		if s < -1 || s > 1 {
			return 0, 0, errOutsideProjection
		}
		theta = math.Asin(s)
		x -= xi * (1 - s)
		y -= eta * (1 - s)
	}
	if x == 0 && y == 0 {
		return 0, theta, nil
	}
	return math.Atan2(x, -y), theta, nil
}

const deg = math.Pi / 180

func normRA(ra float64) float64 {
	ra = math.Mod(ra, 360)
	if ra < 0 {
		ra += 360
	}
	return ra
}

func clamp(v float64) float64 { return math.Max(-1, math.Min(1, v)) }
