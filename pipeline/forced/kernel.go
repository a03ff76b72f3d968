package forced

import "math"

// beamKernel is the restoring beam as an elliptical Gaussian in pixel
// coordinates with unit peak: exp(−a·dx² − b·dx·dy − c·dy²).
type beamKernel struct{ a, b, c float64 }

// newBeamKernel takes the FWHM of the major and minor axes in pixels and
// the position angle in degrees east of north. Like forced_phot, the major
// axis lies along x at a position angle of 90°, so the angle is turned by
// −90° before use.
func newBeamKernel(majPix, minPix, paDeg float64) beamKernel {
	pa := (paDeg - 90) * math.Pi / 180
	sigmaFac := 0.5 / math.Sqrt(2*math.Ln2)
	sx, sy := majPix*sigmaFac, minPix*sigmaFac
	fx, fy := 0.5/(sx*sx), 0.5/(sy*sy)
	s, c := math.Sincos(pa)
	s2 := math.Sin(2 * pa)
	return beamKernel{
		a: c*c*fx + s*s*fy,
		b: s2*fx - s2*fy,
		c: s*s*fx + c*c*fy,
	}
}

// at evaluates the kernel centred on (x0, y0) at pixel (x, y).
func (k beamKernel) at(x, y, x0, y0 float64) float64 {
	dx, dy := x-x0, y-y0
	return math.Exp(-k.a*dx*dx - k.b*dx*dy - k.c*dy*dy)
}
