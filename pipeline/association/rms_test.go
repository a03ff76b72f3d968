package association

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/inputs"

	"github.com/piperun/piperun/internal/vastdata"
)

func TestWorldToArrayIndexInvertsTheWCS(t *testing.T) {
	m, err := openRMSMapAt(t, vastdata.VASTFile(t, "data", "epoch01.noiseMap.fits"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, px := range [][2]float64{{1, 1}, {128.3, 17.6}, {256, 256}, {10.49, 200.51}, {-5, 300}} {
		ra, dec, err := m.wcs.PixelToWorld(px[0], px[1])
		if err != nil {
			t.Fatal(err)
		}
		i, j, err := m.worldToArrayIndex(ra, dec)
		if err != nil {
			t.Fatal(err)
		}
		// 1-based FITS pixels to 0-based array indexes, rounded.
		wantI, wantJ := int(math.Floor(px[1]-1+0.5)), int(math.Floor(px[0]-1+0.5))
		if i != wantI || j != wantJ {
			t.Errorf("pixel %v: array index (%d, %d), want (%d, %d)", px, i, j, wantI, wantJ)
		}
	}
}

// writeNoiseMap writes a 64 x 64 SIN noise map of 2" pixels with a 15"
// beam: pixel (row y, column x) holds (1 + 64y + x) µJy, except a NaN at
// (40, 40) and a zero at (20, 20).
func writeNoiseMap(t *testing.T) string {
	t.Helper()
	h, err := fits.EncodeHeader([]fits.Card{
		{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 2},
		{Key: "NAXIS1", Value: 64}, {Key: "NAXIS2", Value: 64},
		{Key: "BMAJ", Value: 15.0 / 3600}, {Key: "BMIN", Value: 10.0 / 3600}, {Key: "BPA", Value: 0.0},
		{Key: "CTYPE1", Value: "RA---SIN"}, {Key: "CRVAL1", Value: 150.0}, {Key: "CDELT1", Value: -2.0 / 3600}, {Key: "CRPIX1", Value: 33.0},
		{Key: "CTYPE2", Value: "DEC--SIN"}, {Key: "CRVAL2", Value: -30.0}, {Key: "CDELT2", Value: 2.0 / 3600}, {Key: "CRPIX2", Value: 33.0},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte(nil), h...)
	for y := range 64 {
		for x := range 64 {
			v := float32(1+64*y+x) * 1e-6
			switch {
			case y == 40 && x == 40:
				v = float32(math.NaN())
			case y == 20 && x == 20:
				v = 0
			}
			data = binary.BigEndian.AppendUint32(data, math.Float32bits(v))
		}
	}
	for len(data)%fits.BlockSize != 0 {
		data = append(data, 0)
	}
	path := filepath.Join(t.TempDir(), "noise.fits")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTrueRMS(t *testing.T) {
	m, err := openRMSMapAt(t, writeNoiseMap(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Border: round(round(1.5 beams = 11.25 px) x 1.2) = 13 pixels; NaN
	// distance: round(7.5" / 2") = 4 pixels, the slice [i-4, i+4).
	tests := []struct {
		y, x int // 0-based array indexes
		ok   bool
	}{
		{32, 32, true},
		{12, 32, false}, {13, 32, true}, {50, 32, true}, {51, 32, false},
		{32, 12, false}, {32, 13, true}, {32, 50, true}, {32, 51, false},
		{44, 40, false}, {45, 40, true}, {36, 40, true}, {37, 37, false},
		{20, 20, false}, // a zero rms is no measurement
	}
	for _, tc := range tests {
		// Offsets of up to 0.4 pixel round to the same pixel.
		ra, dec, err := m.wcs.PixelToWorld(float64(tc.x)+1.4, float64(tc.y)+0.6)
		if err != nil {
			t.Fatal(err)
		}
		rms, ok, err := m.trueRMS(context.Background(), ra, dec, 1.2)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.ok {
			t.Errorf("pixel (%d, %d): measured %v, want %v", tc.y, tc.x, ok, tc.ok)
			continue
		}
		if want := float64(float32(1+64*tc.y+tc.x)*1e-6) * 1e3; ok && rms != want {
			t.Errorf("pixel (%d, %d): rms %v mJy, want %v", tc.y, tc.x, rms, want)
		}
	}
}

// openRMSMapAt opens the noise map at path through a root at its directory.
func openRMSMapAt(t *testing.T, path string) (*rmsMap, error) {
	t.Helper()
	root, err := inputs.OpenRoot(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	return openRMSMap(root, filepath.Base(path), 0)
}
