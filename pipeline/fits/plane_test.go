package fits

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func writePlane(t *testing.T, name string, cards []Card, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, imageWith(t, cards, data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlaneReadRect(t *testing.T) {
	const w, h = 7, 5
	// Pixel (x, y) holds 10*y + x, with one NaN.
	var f32 []byte
	var i16 []byte
	for y := range h {
		for x := range w {
			v := float32(10*y + x)
			if x == 3 && y == 2 {
				v = float32(math.NaN())
			}
			f32 = binary.BigEndian.AppendUint32(f32, math.Float32bits(v))
			i16 = binary.BigEndian.AppendUint16(i16, uint16(int16(10*y+x)))
		}
	}
	axes := []Card{{Key: "NAXIS", Value: 4}, {Key: "NAXIS1", Value: w}, {Key: "NAXIS2", Value: h}, {Key: "NAXIS3", Value: 1}, {Key: "NAXIS4", Value: 1}}
	float := writePlane(t, "f.fits", append([]Card{{Key: "BITPIX", Value: -32}}, axes...), f32)
	scaled := writePlane(t, "i.fits", append([]Card{{Key: "BITPIX", Value: 16}}, append(axes, Card{Key: "BSCALE", Value: 0.5}, Card{Key: "BZERO", Value: 1.0}, Card{Key: "BLANK", Value: 12})...), i16)
	for _, tc := range []struct {
		path  string
		value func(x, y int) float64
		f32   bool
	}{
		{float, func(x, y int) float64 {
			if x == 3 && y == 2 {
				return math.NaN()
			}
			return float64(10*y + x)
		}, true},
		{scaled, func(x, y int) float64 {
			if 10*y+x == 12 {
				return math.NaN()
			}
			return 1 + 0.5*float64(10*y+x)
		}, false},
	} {
		p, err := OpenPlane(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Width != w || p.Height != h || p.Float32() != tc.f32 {
			t.Errorf("%s: %dx%d float32 %v", tc.path, p.Width, p.Height, p.Float32())
		}
		for _, r := range [][4]int{{0, w, 0, h}, {2, 5, 1, 4}, {6, 7, 4, 5}, {3, 3, 0, 2}} {
			got, _, err := p.ReadRect(context.Background(), r[0], r[1], r[2], r[3], nil, nil)
			if err != nil {
				t.Fatalf("%v: %v", r, err)
			}
			if len(got) != (r[1]-r[0])*(r[3]-r[2]) {
				t.Fatalf("%v: %d pixels", r, len(got))
			}
			for y := r[2]; y < r[3]; y++ {
				for x := r[0]; x < r[1]; x++ {
					g, want := got[(y-r[2])*(r[1]-r[0])+x-r[0]], tc.value(x, y)
					if g != want && !(math.IsNaN(g) && math.IsNaN(want)) {
						t.Errorf("%s (%d, %d) = %g, want %g", tc.path, x, y, g, want)
					}
				}
			}
		}
		for _, r := range [][4]int{{-1, 2, 0, 1}, {0, w + 1, 0, 1}, {0, 1, 0, h + 1}, {3, 2, 0, 1}} {
			if _, _, err := p.ReadRect(context.Background(), r[0], r[1], r[2], r[3], nil, nil); err == nil {
				t.Errorf("%v outside the plane read without error", r)
			}
		}
		p.Close()
	}
}

func TestOpenPlaneRefuses(t *testing.T) {
	data := make([]byte, 4*3*3*2)
	cube := writePlane(t, "cube.fits", []Card{{Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 3}, {Key: "NAXIS1", Value: 3}, {Key: "NAXIS2", Value: 3}, {Key: "NAXIS3", Value: 2}}, data)
	line := writePlane(t, "line.fits", []Card{{Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 1}, {Key: "NAXIS1", Value: 3}}, data[:12])
	short := filepath.Join(t.TempDir(), "short.fits")
	full := imageWith(t, []Card{{Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 2}, {Key: "NAXIS1", Value: 100}, {Key: "NAXIS2", Value: 100}}, nil)
	if err := os.WriteFile(short, full, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cube, line, short, filepath.Join(t.TempDir(), "missing.fits")} {
		if pl, err := OpenPlane(p); err == nil {
			pl.Close()
			t.Errorf("%s opened", p)
		}
	}
}
