package fits

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
)

// Plane reads rectangles of pixels from the first image plane (axes 1 and
// 2; further axes must have length 1, like the frequency and Stokes axes of
// the survey's images) of a FITS file, without reading the rest of it.
// Its methods are safe for concurrent use.
type Plane struct {
	// Header is the file's primary header.
	Header *Header
	// Width and Height are NAXIS1 and NAXIS2.
	Width, Height int
	// Format is the pixels' storage.
	Format PixelFormat

	path   string
	f      *os.File
	offset int64
	bpp    int
}

// OpenPlane opens the FITS file at path and checks that its primary array
// is one image plane and that the file holds all of it.
func OpenPlane(path string) (*Plane, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image plane: %w", err)
	}
	p, err := newPlane(f, path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open image plane of %s: %w", path, err)
	}
	return p, nil
}

func newPlane(f *os.File, path string) (*Plane, error) {
	h, err := ReadHeader(f)
	if err != nil {
		return nil, err
	}
	d, err := newDataDesc(h)
	if err != nil {
		return nil, err
	}
	naxis, err := h.Int("NAXIS")
	if err != nil {
		return nil, err
	}
	if naxis < 2 {
		return nil, fmt.Errorf("keyword NAXIS: %d axes, want an image of at least 2: %w", naxis, ErrBadValue)
	}
	p := &Plane{Header: h, Format: d.PixelFormat, path: path, f: f, offset: d.offset, bpp: d.bytesPerElem}
	if p.Width, err = axisLength(h, 1); err != nil {
		return nil, err
	}
	if p.Height, err = axisLength(h, 2); err != nil {
		return nil, err
	}
	for i := int64(3); i <= naxis; i++ {
		n, err := h.Int(fmt.Sprintf("NAXIS%d", i))
		if err != nil {
			return nil, err
		}
		if n != 1 {
			return nil, fmt.Errorf("keyword NAXIS%d: %d, want 1 (a single image plane): %w", i, n, ErrBadValue)
		}
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if need := p.offset + int64(p.Width)*int64(p.Height)*int64(p.bpp); st.Size() < need {
		return nil, fmt.Errorf("file has %d bytes, its header needs %d: %w", st.Size(), need, errTruncated)
	}
	return p, nil
}

// Path is the file the plane was opened from.
func (p *Plane) Path() string { return p.path }

// Close closes the file.
func (p *Plane) Close() error { return p.f.Close() }

// Float32 reports whether the pixels are stored as unscaled 32-bit floats,
// the values numpy would compute with in single precision.
func (p *Plane) Float32() bool { return p.Format.BitPix == -32 && !p.Format.Scaled() }

// ReadRect reads the pixels with 0-based x0 <= x < x1 and y0 <= y < y1
// (x along NAXIS1) into dst, row after row, dst[(y-y0)*(x1-x0)+(x-x0)],
// growing dst as needed and returning it. BLANK integer pixels read as NaN.
// The rectangle must lie within the plane.
func (p *Plane) ReadRect(ctx context.Context, x0, x1, y0, y1 int, dst []float64, buf []byte) ([]float64, []byte, error) {
	if x0 < 0 || y0 < 0 || x1 > p.Width || y1 > p.Height || x0 > x1 || y0 > y1 {
		return dst, buf, fmt.Errorf("read pixels [%d,%d)x[%d,%d) of %s: outside the %dx%d plane", x0, x1, y0, y1, p.path, p.Width, p.Height)
	}
	if err := ctx.Err(); err != nil {
		return dst, buf, err
	}
	w := x1 - x0
	n := w * (y1 - y0)
	dst = grow(dst, n)
	row := w * p.bpp
	if cap(buf) < row {
		buf = make([]byte, row)
	}
	buf = buf[:row]
	for y := y0; y < y1; y++ {
		off := p.offset + (int64(y)*int64(p.Width)+int64(x0))*int64(p.bpp)
		if _, err := p.f.ReadAt(buf, off); err != nil {
			if err == io.EOF {
				err = errTruncated
			}
			return dst, buf, fmt.Errorf("read pixels of %s row %d: %w", p.path, y, err)
		}
		out := dst[(y-y0)*w : (y-y0+1)*w]
		for i := range out {
			v, ok := p.Format.Value(buf[i*p.bpp:])
			if !ok {
				v = math.NaN()
			}
			out[i] = v
		}
	}
	return dst, buf, nil
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
