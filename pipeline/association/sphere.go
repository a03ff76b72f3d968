package association

import "math"

const (
	degToRad = math.Pi / 180
	radToDeg = 180 / math.Pi
)

// vec is a point on the unit sphere.
type vec [3]float64

func unitVec(ra, dec float64) vec {
	sr, cr := math.Sincos(ra * degToRad)
	sd, cd := math.Sincos(dec * degToRad)
	return vec{cd * cr, cd * sr, sd}
}

func dist2(a, b vec) float64 {
	x, y, z := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	return x*x + y*y + z*z
}

// chord2 is the squared chord length of an angle in degrees; an angle at or
// beyond 180° spans the whole sphere.
func chord2(angleDeg float64) float64 {
	if angleDeg >= 180 {
		return 4
	}
	c := 2 * math.Sin(angleDeg*degToRad/2)
	return c * c
}

// separation is the angle in degrees between two positions in degrees,
// with the Vincenty formula astropy's SkyCoord.separation uses, accurate
// at every scale.
func separation(ra1, dec1, ra2, dec2 float64) float64 {
	sdlon, cdlon := math.Sincos(ra2*degToRad - ra1*degToRad)
	slat1, clat1 := math.Sincos(dec1 * degToRad)
	slat2, clat2 := math.Sincos(dec2 * degToRad)
	num1 := clat2 * sdlon
	num2 := clat1*slat2 - slat1*clat2*cdlon
	den := slat1*slat2 + clat1*clat2*cdlon
	return math.Atan2(math.Hypot(num1, num2), den) * radToDeg
}
