package forced

import (
	"errors"
	"fmt"
	"math"

	"github.com/piperun/piperun/pipeline/fits"
)

// Image is an image with its background (meanMap) and noise (noiseMap)
// maps, opened for forced measurements. Only the pixels around the
// measured positions are read. An Image is safe for concurrent use.
type Image struct {
	image, background, noise *fits.Plane

	wcs   *fits.WCS
	frame fits.CelestialFrame
	// Restoring beam from the image header, in degrees.
	BeamMajDeg, BeamMinDeg, BeamPADeg float64
	// PixelScaleDeg is the pixel size along axis 2 (forced_phot's scale).
	PixelScaleDeg float64
	// Width and Height are NAXIS1 and NAXIS2.
	Width, Height int
}

// Open opens an image and its background and noise maps, which must have
// the image's shape.
func Open(image, background, noise string) (*Image, error) {
	im := &Image{}
	var err error
	closeAll := func() {
		for _, p := range []*fits.Plane{im.image, im.background, im.noise} {
			if p != nil {
				p.Close()
			}
		}
	}
	if im.image, err = fits.OpenPlane(image); err != nil {
		return nil, fmt.Errorf("forced extraction: %w", err)
	}
	if im.background, err = fits.OpenPlane(background); err != nil {
		closeAll()
		return nil, fmt.Errorf("forced extraction: background map: %w", err)
	}
	if im.noise, err = fits.OpenPlane(noise); err != nil {
		closeAll()
		return nil, fmt.Errorf("forced extraction: noise map: %w", err)
	}
	if err := im.init(); err != nil {
		closeAll()
		return nil, fmt.Errorf("forced extraction on %s: %w", image, err)
	}
	return im, nil
}

func (im *Image) init() error {
	h := im.image.Header
	im.Width, im.Height = im.image.Width, im.image.Height
	for _, p := range []*fits.Plane{im.background, im.noise} {
		if p.Width != im.Width || p.Height != im.Height {
			return fmt.Errorf("%s is %dx%d, the image %dx%d", p.Path(), p.Width, p.Height, im.Width, im.Height)
		}
	}
	for _, kv := range []struct {
		key string
		dst *float64
	}{{"BMAJ", &im.BeamMajDeg}, {"BMIN", &im.BeamMinDeg}, {"BPA", &im.BeamPADeg}} {
		v, err := h.Float(kv.key)
		if err != nil {
			return fmt.Errorf("restoring beam: %w", err)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("restoring beam: keyword %s is %g: %w", kv.key, v, fits.ErrBadValue)
		}
		*kv.dst = v
	}
	if im.BeamMajDeg <= 0 || im.BeamMinDeg <= 0 {
		return fmt.Errorf("restoring beam %g x %g deg: axes must be positive: %w", im.BeamMajDeg, im.BeamMinDeg, fits.ErrBadValue)
	}
	var err error
	if im.wcs, err = fits.NewWCS(h); err != nil {
		return err
	}
	if im.frame, err = fits.ReadCelestialFrame(h); err != nil {
		return err
	}
	_, im.PixelScaleDeg = im.wcs.PixelScales()
	if im.BeamMajDeg/im.PixelScaleDeg > maxBeamPixels {
		return fmt.Errorf("restoring beam spans %g pixels, more than %d: %w", im.BeamMajDeg/im.PixelScaleDeg, maxBeamPixels, fits.ErrBadValue)
	}
	return nil
}

// maxBeamPixels bounds the beam's major axis in pixels, so that a header
// with a nonsensical beam cannot make a cut-out the size of memory.
const maxBeamPixels = 1000

// Close closes the three files.
func (im *Image) Close() error {
	return errors.Join(im.image.Close(), im.background.Close(), im.noise.Close())
}

// Pixel returns the 0-based pixel (x along NAXIS1) of an ICRS position in
// degrees, converted to the image's frame as astropy does.
func (im *Image) Pixel(ra, dec float64) (x, y float64, err error) {
	fra, fdec := im.frame.FromICRS(ra, dec)
	p1, p2, err := im.wcs.WorldToPixel(fra, fdec)
	if err != nil {
		return 0, 0, err
	}
	return p1 - 1, p2 - 1, nil
}
