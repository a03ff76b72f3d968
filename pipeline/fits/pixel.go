package fits

import (
	"encoding/binary"
	"fmt"
	"math"
)

// PixelFormat says how the primary array's pixels are stored: BITPIX, the
// BSCALE/BZERO scaling to physical values, and the BLANK value of integer
// pixels.
type PixelFormat struct {
	BitPix   int
	BScale   float64
	BZero    float64
	HasBlank bool
	Blank    int64
}

// ParsePixelFormat reads the pixel format from a header.
func ParsePixelFormat(h *Header) (PixelFormat, error) {
	bitpix, err := h.Int("BITPIX")
	if err != nil {
		return PixelFormat{}, err
	}
	switch bitpix {
	case 8, 16, 32, 64, -32, -64:
	default:
		return PixelFormat{}, fmt.Errorf("keyword BITPIX: %d is not a FITS pixel type: %w", bitpix, ErrBadValue)
	}
	p := PixelFormat{BitPix: int(bitpix)}
	if p.BScale, err = h.FloatOr("BSCALE", 1); err != nil {
		return PixelFormat{}, err
	}
	if p.BZero, err = h.FloatOr("BZERO", 0); err != nil {
		return PixelFormat{}, err
	}
	// BLANK applies to integer pixels only; float pixels use NaN.
	if bitpix > 0 && h.Has("BLANK") {
		if p.Blank, err = h.Int("BLANK"); err != nil {
			return PixelFormat{}, err
		}
		p.HasBlank = true
	}
	return p, nil
}

// BytesPerPixel is the size of one stored pixel.
func (p PixelFormat) BytesPerPixel() int {
	if p.BitPix < 0 {
		return -p.BitPix / 8
	}
	return p.BitPix / 8
}

// Scaled reports whether stored values differ from physical ones.
func (p PixelFormat) Scaled() bool { return p.BScale != 1 || p.BZero != 0 }

// Value decodes the big-endian pixel at the start of b into its physical
// value. ok is false for a BLANK integer pixel.
func (p PixelFormat) Value(b []byte) (v float64, ok bool) {
	switch p.BitPix {
	case -32:
		v = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case -64:
		v = math.Float64frombits(binary.BigEndian.Uint64(b))
	default:
		var i int64
		switch p.BitPix {
		case 8:
			i = int64(b[0])
		case 16:
			i = int64(int16(binary.BigEndian.Uint16(b)))
		case 32:
			i = int64(int32(binary.BigEndian.Uint32(b)))
		case 64:
			i = int64(binary.BigEndian.Uint64(b))
		}
		if p.HasBlank && i == p.Blank {
			return 0, false
		}
		v = float64(i)
	}
	if p.Scaled() {
		v = p.BZero + p.BScale*v
	}
	return v, true
}
