package fits

import (
	"fmt"
	"math"
	"strings"
)

// WorldToPixel returns the 1-based pixel (p1, p2) of (ra, dec) in degrees,
// given in the WCS's own celestial frame (see ICRSTo for positions in ICRS).
// It inverts PixelToWorld; a position the projection cannot show (the far
// hemisphere of a SIN or TAN image) is an error.
func (w *WCS) WorldToPixel(ra, dec float64) (p1, p2 float64, err error) {
	if math.IsNaN(ra) || math.IsNaN(dec) || math.IsInf(ra, 0) || math.IsInf(dec, 0) {
		return 0, 0, fmt.Errorf("position (%g, %g): %w", ra, dec, errOutsideProjection)
	}
	var x, y float64
	if w.Projection == "linear" {
		x = math.Remainder(ra-w.crval[0], 360)
		y = dec - w.crval[1]
	} else {
		xr, yr, err := w.project(ra*deg, dec*deg)
		if err != nil {
			return 0, 0, fmt.Errorf("position (%g, %g): %w", ra, dec, err)
		}
		x, y = xr/deg, yr/deg
	}
	if w.swap {
		x, y = y, x
	}
	det := w.m[0][0]*w.m[1][1] - w.m[0][1]*w.m[1][0]
	if det == 0 {
		return 0, 0, fmt.Errorf("pixel matrix is singular: %w", ErrBadValue)
	}
	d1 := (w.m[1][1]*x - w.m[0][1]*y) / det
	d2 := (-w.m[1][0]*x + w.m[0][0]*y) / det
	return d1 + w.crpix[0], d2 + w.crpix[1], nil
}

// project maps celestial (α, δ) in radians to intermediate coordinates in
// radians: the rotation to native spherical coordinates (Calabretta &
// Greisen 2002, eq. 5) followed by the zenithal projection, the inverse of
// PixelToWorld. It works with the native direction cosines rather than θ
// itself: near the reference point θ is within microradians of 90°, where
// going through asin and back would lose half the digits of cos θ.
func (w *WCS) project(a, d float64) (x, y float64, err error) {
	ap, dp, php := w.crval[0]*deg, w.crval[1]*deg, w.lonp*deg
	sinD, cosD := math.Sincos(d)
	sinDp, cosDp := math.Sincos(dp)
	sinA, cosA := math.Sincos(a - ap)
	// cos θ·sin(φ−φp), cos θ·cos(φ−φp) and sin θ.
	u := -cosD * sinA
	v := sinD*cosDp - cosD*sinDp*cosA
	sinT := sinD*sinDp + cosD*cosDp*cosA
	cosT := math.Hypot(u, v)
	// k = R(θ)/cos θ, the radius of the projection over cos θ.
	var k float64
	switch w.Projection {
	case "TAN":
		if sinT <= 0 {
			return 0, 0, errOutsideProjection
		}
		k = 1 / sinT
	case "ARC":
		if cosT == 0 {
			k = 1
		} else {
			k = math.Atan2(cosT, sinT) / cosT
		}
	case "SIN":
		if sinT < 0 {
			return 0, 0, errOutsideProjection
		}
		k = 1
	}
	sinP, cosP := math.Sincos(php)
	// R·sin φ and −R·cos φ with φ = φp + atan2(u, v).
	x = k * (u*cosP + v*sinP)
	y = -k * (v*cosP - u*sinP)
	if w.Projection == "SIN" {
		x += w.pv1 * (1 - sinT)
		y += w.pv2 * (1 - sinT)
	}
	return x, y, nil
}

// CelestialFrame converts ICRS positions to an image's celestial frame, as
// astropy does when it places an ICRS sky coordinate on an image
// (skycoord_to_pixel).
type CelestialFrame struct {
	// Name is "ICRS" or "FK5".
	Name string
	rot  [3][3]float64
}

// ReadCelestialFrame reads RADESYS and EQUINOX with astropy's defaults:
// without RADESYS, an EQUINOX before 1984 means FK4 and any other EQUINOX
// FK5; neither keyword means ICRS. Frames other than ICRS and FK5 at
// equinox J2000 are refused rather than approximated.
func ReadCelestialFrame(h *Header) (CelestialFrame, error) {
	sys := ""
	if h.Has("RADESYS") {
		s, err := h.String("RADESYS")
		if err != nil {
			return CelestialFrame{}, err
		}
		sys = strings.ToUpper(strings.TrimSpace(s))
	}
	equinox := 2000.0
	hasEquinox := h.Has("EQUINOX")
	if hasEquinox {
		var err error
		if equinox, err = h.Float("EQUINOX"); err != nil {
			return CelestialFrame{}, err
		}
	}
	if sys == "" {
		switch {
		case !hasEquinox:
			sys = "ICRS"
		case equinox < 1984:
			sys = "FK4"
		default:
			sys = "FK5"
		}
	}
	switch sys {
	case "ICRS":
		return CelestialFrame{Name: "ICRS", rot: [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}, nil
	case "FK5":
		if equinox != 2000 {
			return CelestialFrame{}, fmt.Errorf("keyword EQUINOX: FK5 at equinox %g is not supported (only J2000): %w", equinox, ErrBadValue)
		}
		return CelestialFrame{Name: "FK5", rot: icrsToFK5J2000()}, nil
	}
	return CelestialFrame{}, fmt.Errorf("keyword RADESYS: frame %q is not supported (ICRS or FK5 J2000): %w", sys, ErrBadValue)
}

// icrsToFK5J2000 is the frame-bias rotation from ICRS to FK5 J2000 (USNO
// Circular 179 eq. 3.4, the matrix astropy uses): the FK5 pole is offset by
// ξ0 = 9.1 mas and η0 = -19.9 mas and its equinox by dα0 = -22.9 mas.
func icrsToFK5J2000() [3][3]float64 {
	const mas = math.Pi / 180 / 3600e3
	eta0, xi0, da0 := -19.9*mas, 9.1*mas, -22.9*mas
	return matMul(matMul(rotAxis(0, -eta0), rotAxis(1, xi0)), rotAxis(2, da0))
}

// rotAxis is the matrix that rotates the coordinate frame by angle radians
// about axis (0 = x, 1 = y, 2 = z), astropy's rotation_matrix.
func rotAxis(axis int, angle float64) [3][3]float64 {
	s, c := math.Sincos(angle)
	i, j := (axis+1)%3, (axis+2)%3
	var m [3][3]float64
	m[axis][axis] = 1
	m[i][i], m[j][j] = c, c
	m[i][j], m[j][i] = s, -s
	return m
}

func matMul(a, b [3][3]float64) [3][3]float64 {
	var m [3][3]float64
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				m[i][j] += a[i][k] * b[k][j]
			}
		}
	}
	return m
}

// FromICRS converts an ICRS (ra, dec) in degrees to the frame.
func (f CelestialFrame) FromICRS(ra, dec float64) (float64, float64) {
	if f.Name == "ICRS" {
		return ra, dec
	}
	sa, ca := math.Sincos(ra * deg)
	sd, cd := math.Sincos(dec * deg)
	v := [3]float64{cd * ca, cd * sa, sd}
	var o [3]float64
	for i := range 3 {
		o[i] = f.rot[i][0]*v[0] + f.rot[i][1]*v[1] + f.rot[i][2]*v[2]
	}
	return normRA(math.Atan2(o[1], o[0]) / deg), math.Atan2(o[2], math.Hypot(o[0], o[1])) / deg
}
