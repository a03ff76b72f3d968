package association

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/inputs"
)

// rmsMap reads pixels of a noise map on demand: only the few pixels around
// each new source are needed, and maps can be large.
type rmsMap struct {
	f            *os.File
	offset       int64 // start of the data
	nx, ny       int   // NAXIS1, NAXIS2
	pixels       fits.PixelFormat
	wcs          *fits.WCS
	crpix        [2]float64
	pixelArcsec  float64 // size of a pixel along the second axis
	beamMajArcec float64
}

func openRMSMap(root *inputs.Root, rel string, fallbackBeamMajDeg float64) (*rmsMap, error) {
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	m, err := newRMSMap(f, fallbackBeamMajDeg)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

func newRMSMap(f *os.File, fallbackBeamMajDeg float64) (*rmsMap, error) {
	h, err := fits.ReadHeader(f)
	if err != nil {
		return nil, err
	}
	m := &rmsMap{f: f, offset: h.Size()}
	if m.pixels, err = fits.ParsePixelFormat(h); err != nil {
		return nil, err
	}
	nx, err := h.Int("NAXIS1")
	if err != nil {
		return nil, err
	}
	ny, err := h.Int("NAXIS2")
	if err != nil {
		return nil, err
	}
	// Rows are read into buffers of up to NAXIS1 pixels.
	if nx <= 0 || ny <= 0 || nx > fits.MaxAxisLength || ny > fits.MaxAxisLength {
		return nil, fmt.Errorf("image is %d x %d pixels (each axis must be within [1, %d]): %w", nx, ny, fits.MaxAxisLength, fits.ErrBadValue)
	}
	m.nx, m.ny = int(nx), int(ny)
	if m.wcs, err = fits.NewWCS(h); err != nil {
		return nil, err
	}
	for i := range 2 {
		if m.crpix[i], err = h.Float(fmt.Sprintf("CRPIX%d", i+1)); err != nil {
			return nil, err
		}
	}
	_, scale := m.wcs.PixelScales()
	m.pixelArcsec = scale * 3600
	bmaj, err := h.FloatOr("BMAJ", fallbackBeamMajDeg)
	if err != nil {
		return nil, err
	}
	m.beamMajArcec = bmaj * 3600
	// Both size the border and NaN checks in pixels: they must be real.
	if !(bmaj > 0) || math.IsInf(m.beamMajArcec, 0) {
		return nil, fmt.Errorf("keyword BMAJ = %v: must be positive and finite: %w", bmaj, fits.ErrBadValue)
	}
	if !(m.pixelArcsec > 0) || math.IsInf(m.pixelArcsec, 0) {
		return nil, fmt.Errorf("pixel scale %v arcsec: must be positive and finite: %w", m.pixelArcsec, fits.ErrBadValue)
	}
	return m, nil
}

func (m *rmsMap) Close() error { return m.f.Close() }

var errNoPixel = errors.New("position has no pixel")

// worldToArrayIndex returns the 0-based (row, column) of the pixel nearest
// to (ra, dec), as astropy's world_to_array_index: the WCS is inverted by
// Newton's method on PixelToWorld, then rounded with floor(p + 0.5).
func (m *rmsMap) worldToArrayIndex(ra, dec float64) (int, int, error) {
	p := m.crpix
	cosDec := math.Cos(dec * degToRad)
	residual := func(p [2]float64) ([2]float64, error) {
		r, d, err := m.wcs.PixelToWorld(p[0], p[1])
		if err != nil {
			return [2]float64{}, err
		}
		dra := math.Remainder(r-ra, 360)
		return [2]float64{dra * cosDec, d - dec}, nil
	}
	for range 60 {
		f, err := residual(p)
		if err != nil {
			return 0, 0, errNoPixel
		}
		fx, err := residual([2]float64{p[0] + 1, p[1]})
		if err != nil {
			return 0, 0, errNoPixel
		}
		fy, err := residual([2]float64{p[0], p[1] + 1})
		if err != nil {
			return 0, 0, errNoPixel
		}
		a, b := fx[0]-f[0], fy[0]-f[0]
		c, d := fx[1]-f[1], fy[1]-f[1]
		det := a*d - b*c
		if det == 0 {
			return 0, 0, errNoPixel
		}
		dx := (d*f[0] - b*f[1]) / det
		dy := (a*f[1] - c*f[0]) / det
		p[0] -= dx
		p[1] -= dy
		if math.Abs(dx) < 1e-10 && math.Abs(dy) < 1e-10 {
			break
		}
	}
	x, y := p[0]-1, p[1]-1 // 0-based
	if math.IsNaN(x) || math.IsNaN(y) || math.Abs(x) > 1e12 || math.Abs(y) > 1e12 {
		return 0, 0, errNoPixel
	}
	return int(math.Floor(y + 0.5)), int(math.Floor(x + 0.5)), nil
}

// readRow reads pixels [x0, x1) of row y of the first plane.
func (m *rmsMap) readRow(y, x0, x1 int) ([]float64, error) {
	size := m.pixels.BytesPerPixel()
	buf := make([]byte, (x1-x0)*size)
	off := m.offset + (int64(y)*int64(m.nx)+int64(x0))*int64(size)
	if _, err := m.f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("data end early: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	out := make([]float64, x1-x0)
	for i := range out {
		v, ok := m.pixels.Value(buf[i*size:])
		if !ok {
			v = math.NaN() // a BLANK pixel
		}
		out[i] = v
	}
	return out, nil
}

// trueRMS is VAST's rms of a noise map at a position, in mJy: the pixel
// value there, or ok false when the position lies within
// edgeBuffer × 1.5 beams (major axis) of the border or within half a beam
// of a NaN pixel, where forced extraction would not measure either.
func (m *rmsMap) trueRMS(ctx context.Context, ra, dec, edgeBuffer float64) (float64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	i, j, err := m.worldToArrayIndex(ra, dec)
	if err != nil {
		return 0, false, nil
	}
	// Python's round() rounds half to even.
	npix := int(math.RoundToEven(math.RoundToEven(3.0/2*m.beamMajArcec/m.pixelArcsec) * edgeBuffer))
	if i < npix || i >= m.ny-npix || j < npix || j >= m.nx-npix {
		return 0, false, nil
	}
	d := int(math.RoundToEven(m.beamMajArcec / 2 / m.pixelArcsec))
	// numpy slices [i-d, i+d) clipped to the array.
	r0, r1 := max(i-d, 0), min(i+d, m.ny)
	c0, c1 := max(j-d, 0), min(j+d, m.nx)
	for r := r0; r < r1 && c0 < c1; r++ {
		row, err := m.readRow(r, c0, c1)
		if err != nil {
			return 0, false, err
		}
		for _, v := range row {
			if math.IsNaN(v) {
				return 0, false, nil
			}
		}
	}
	v, err := m.readRow(i, j, j+1)
	if err != nil {
		return 0, false, err
	}
	rms := v[0] * 1e3
	if math.IsNaN(rms) || rms == 0 {
		return 0, false, nil
	}
	return rms, true, nil
}
