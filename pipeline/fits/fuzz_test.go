package fits

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/piperun/piperun/internal/vastdata"
)

// checkImageInfo states, independently of ImageInfoFromHeader, what an
// accepted image's facts must be.
func checkImageInfo(t *testing.T, info ImageInfo) {
	t.Helper()
	for name, v := range map[string]float64{
		"BeamMajDeg": info.BeamMajDeg, "BeamMinDeg": info.BeamMinDeg, "BeamPADeg": info.BeamPADeg,
		"RADeg": info.RADeg, "DecDeg": info.DecDeg, "PixelScale1Deg": info.PixelScale1Deg, "PixelScale2Deg": info.PixelScale2Deg,
		"RadiusPixels": info.RadiusPixels, "FOVBMajDeg": info.FOVBMajDeg, "FOVBMinDeg": info.FOVBMinDeg,
		"PhysicalBMajDeg": info.PhysicalBMajDeg, "PhysicalBMinDeg": info.PhysicalBMinDeg,
		"FrequencyMHz": info.FrequencyMHz, "BandwidthMHz": info.BandwidthMHz, "DurationSec": info.DurationSec,
	} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("%s = %v accepted", name, v)
		}
	}
	if info.BeamMajDeg <= 0 || info.BeamMinDeg <= 0 || info.PixelScale1Deg <= 0 || info.PixelScale2Deg <= 0 || info.FrequencyMHz <= 0 || info.DurationSec < 0 {
		t.Fatalf("beam, pixel scale, frequency or duration not positive: %+v", info)
	}
	if info.NAxis1 < 1 || info.NAxis1 > MaxAxisLength || info.NAxis2 < 1 || info.NAxis2 > MaxAxisLength {
		t.Fatalf("axes %d x %d accepted", info.NAxis1, info.NAxis2)
	}
	if info.RADeg < 0 || info.RADeg >= 360 || info.DecDeg < -90 || info.DecDeg > 90 {
		t.Fatalf("centre (%v, %v) accepted", info.RADeg, info.DecDeg)
	}
}

func FuzzReadFITSHeader(f *testing.F) {
	seed, err := EncodeHeader([]Card{
		{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 2},
		{Key: "NAXIS1", Value: 2}, {Key: "NAXIS2", Value: 2},
		{Key: "BMAJ", Value: 4.166666666667e-03}, {Key: "BMIN", Value: 2.777777777778e-03}, {Key: "BPA", Value: 0.0},
		{Key: "CTYPE1", Value: "RA---SIN"}, {Key: "CRVAL1", Value: 150.0}, {Key: "CDELT1", Value: -5.555555555556e-04}, {Key: "CRPIX1", Value: 129.0},
		{Key: "CTYPE2", Value: "DEC--SIN"}, {Key: "CRVAL2", Value: -30.0}, {Key: "CDELT2", Value: 5.555555555556e-04}, {Key: "CRPIX2", Value: 129.0},
		{Key: "RESTFRQ", Value: 1.420405751786e9}, {Key: "DATE-OBS", Value: "2020-08-03T04:33:55.479"},
		{Key: "OBSERVER", Value: "O'Brien"}, {Key: "HISTORY", Comment: "seed"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(seed, make([]byte, 16)...))
	f.Add(seed[:BlockSize])
	f.Add(rawHeader("SIMPLE  =                    T", "D       =         1.5D+02", "S       = 'a''b' / c", "C       =   (1, 2)", "U       =  / undefined"))
	f.Add([]byte(strings.Repeat("SIMPLE  =                    T", 3)))
	// The real images' and noise maps' headers, with a little data.
	if dir, err := vastdata.Find(); err == nil {
		paths, _ := filepath.Glob(filepath.Join(dir, "data", "epoch0*.fits"))
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			if h, err := ReadHeader(bytes.NewReader(b)); err == nil {
				f.Add(b[:min(len(b), int(h.Size())+64)])
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHeader(bytes.NewReader(data))
		if err != nil {
			return
		}
		if h.Size()%BlockSize != 0 || h.Size() > int64(len(data)) {
			t.Fatalf("Size %d for %d bytes", h.Size(), len(data))
		}
		for _, c := range h.Cards() {
			if len(c.Key) > 8 {
				t.Fatalf("key %q longer than 8", c.Key)
			}
		}
		// None of these may panic, whatever the header says, and what is
		// accepted must be valid.
		if info, err := ImageInfoFromHeader(h); err == nil {
			checkImageInfo(t, info)
		}
		if w, err := NewWCS(h); err == nil {
			s1, s2 := w.PixelScales()
			if !(s1 > 0 && s2 > 0) || math.IsInf(s1, 0) || math.IsInf(s2, 0) {
				t.Fatalf("pixel scales %v, %v accepted", s1, s2)
			}
		}
		PixelStatsOf(context.Background(), bytes.NewReader(data), h)
	})
}
