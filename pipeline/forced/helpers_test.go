package forced

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/pipeline/fits"
)

// field is a synthetic image with its maps, written by write: 2"/pixel,
// beam 15" × 10" at BPA 0 (7.5 × 5 pixels) unless changed.
type field struct {
	w, h              int
	img, bkg, noise   []float32
	bmaj, bmin, bpa   float64 // degrees
	frame             string  // RADESYS
	dir               string
	imgP, bkgP, noisP string
}

const pixelDeg = 2.0 / 3600

func newField(t *testing.T, w, h int) *field {
	f := &field{w: w, h: h, img: make([]float32, w*h), bkg: make([]float32, w*h), noise: make([]float32, w*h),
		bmaj: 15.0 / 3600, bmin: 10.0 / 3600, frame: "ICRS", dir: t.TempDir()}
	for i := range f.noise {
		f.noise[i] = 1e-3
	}
	return f
}

// addSource adds the beam with peak flux (Jy/beam) centred on 0-based
// pixel (x0, y0), written independently of the package's kernel: the
// major axis along y at BPA 0, turned east (towards −x) by the BPA.
func (f *field) addSource(x0, y0, flux float64) {
	s := 1 / (2 * math.Sqrt(2*math.Ln2)) / (pixelDeg)
	sMaj, sMin := f.bmaj*s, f.bmin*s
	th := f.bpa * math.Pi / 180
	for y := range f.h {
		for x := range f.w {
			dx, dy := float64(x)-x0, float64(y)-y0
			// Coordinates along the minor and major axes.
			u := dx*math.Cos(th) + dy*math.Sin(th)
			v := -dx*math.Sin(th) + dy*math.Cos(th)
			f.img[y*f.w+x] += float32(flux * math.Exp(-0.5*(u*u/(sMin*sMin)+v*v/(sMaj*sMaj))))
		}
	}
}

func (f *field) write(t *testing.T) {
	t.Helper()
	f.imgP, f.bkgP, f.noisP = filepath.Join(f.dir, "img.fits"), filepath.Join(f.dir, "bkg.fits"), filepath.Join(f.dir, "noise.fits")
	for _, m := range []struct {
		path string
		pix  []float32
	}{{f.imgP, f.img}, {f.bkgP, f.bkg}, {f.noisP, f.noise}} {
		cards := []fits.Card{
			{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 4},
			{Key: "NAXIS1", Value: f.w}, {Key: "NAXIS2", Value: f.h}, {Key: "NAXIS3", Value: 1}, {Key: "NAXIS4", Value: 1},
			{Key: "BMAJ", Value: f.bmaj}, {Key: "BMIN", Value: f.bmin}, {Key: "BPA", Value: f.bpa},
			{Key: "RADESYS", Value: f.frame},
			{Key: "CTYPE1", Value: "RA---SIN"}, {Key: "CRVAL1", Value: 150.0}, {Key: "CDELT1", Value: -pixelDeg}, {Key: "CRPIX1", Value: float64(f.w/2 + 1)},
			{Key: "CTYPE2", Value: "DEC--SIN"}, {Key: "CRVAL2", Value: -30.0}, {Key: "CDELT2", Value: pixelDeg}, {Key: "CRPIX2", Value: float64(f.h/2 + 1)},
			{Key: "CTYPE3", Value: "FREQ"}, {Key: "CRVAL3", Value: 888e6}, {Key: "CTYPE4", Value: "STOKES"}, {Key: "CRVAL4", Value: 1.0},
		}
		if f.frame == "FK5" {
			cards = append(cards, fits.Card{Key: "EQUINOX", Value: 2000.0})
		}
		h, err := fits.EncodeHeader(cards)
		if err != nil {
			t.Fatal(err)
		}
		data := h
		for _, v := range m.pix {
			data = binary.BigEndian.AppendUint32(data, math.Float32bits(v))
		}
		for len(data)%fits.BlockSize != 0 {
			data = append(data, 0)
		}
		if err := os.WriteFile(m.path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *field) open(t *testing.T) *Image {
	t.Helper()
	f.write(t)
	im, err := Open(f.imgP, f.bkgP, f.noisP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	return im
}

// sky returns the ICRS position of 0-based pixel (x, y) of an ICRS image.
func (f *field) sky(t *testing.T, im *Image, x, y float64) Position {
	t.Helper()
	ra, dec, err := im.wcs.PixelToWorld(x+1, y+1)
	if err != nil {
		t.Fatal(err)
	}
	return Position{ra, dec}
}
