package fits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageHeadersAreCheckedForWhatTheyMayHold(t *testing.T) {
	tests := []struct {
		name string
		drop string
		set  []Card
		want string
	}{
		{"zero beam", "BMAJ", []Card{{Key: "BMAJ", Value: 0.0}}, "keyword BMAJ = 0: must be positive and finite"},
		{"negative beam", "BMIN", []Card{{Key: "BMIN", Value: -0.003}}, "keyword BMIN = -0.003: must be positive and finite"},
		{"Dec reference beyond the pole", "CRVAL2", []Card{{Key: "CRVAL2", Value: 1e308}}, "keyword CRVAL2 = 1e+308: must be within [-90, 90]"},
		{"Dec reference just beyond the pole", "CRVAL2", []Card{{Key: "CRVAL2", Value: -90.5}}, "keyword CRVAL2 = -90.5: must be within [-90, 90]"},
		{"RA reference of 1e308", "CRVAL1", []Card{{Key: "CRVAL1", Value: 1e308}}, "keyword CRVAL1 = 1e+308: must be within [-360, 360]"},
		{"huge axis", "NAXIS1", []Card{{Key: "NAXIS1", Value: int64(1) << 40}}, "keyword NAXIS1 = 1099511627776: must be within [1, 1048576]"},
		{"empty axis", "NAXIS2", []Card{{Key: "NAXIS2", Value: 0}}, "keyword NAXIS2 = 0: must be within [1, 1048576]"},
		{"zero pixel size", "CDELT1", []Card{{Key: "CDELT1", Value: 0.0}}, "keyword CDELT1 = 0: must not be zero"},
		{"pixel size overflowing", "", []Card{{Key: "CD1_1", Value: 1.5e308}, {Key: "CD2_1", Value: 1.5e308}}, "pixel scale of axis 1 is not finite"},
		{"negative frequency", "CRVAL3", []Card{{Key: "CRVAL3", Value: -1.4e9}}, "keyword CRVAL3 = -1400: must be positive and finite"},
		{"negative duration", "", []Card{{Key: "DURATION", Value: -1.0}}, "keyword DURATION = -1: must not be negative"},
		{"infinite number", "", nil, `keyword BMAJ: value "1E400" is not a number`},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := minimalImage(t, tt.drop, tt.set...)
			if tt.name == "infinite number" {
				// 1E400 overflows: it is not a FITS number.
				i := strings.Index(string(data), "BMAJ    = ")
				copy(data[i:i+cardSize], fmt.Sprintf("%-80s", "BMAJ    =                1E400"))
			}
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".fits")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadImageInfo(context.Background(), p)
			if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("err = %v\nwant ErrBadValue naming %s and saying %q", err, p, tt.want)
			}
		})
	}
}

func TestHugeAxesAreRefusedBeforeAnyPixelIsRead(t *testing.T) {
	data := imageWith(t, []Card{
		{Key: "SIMPLE", Value: true}, {Key: "BITPIX", Value: -64}, {Key: "NAXIS", Value: 2},
		{Key: "NAXIS1", Value: int64(1) << 21}, {Key: "NAXIS2", Value: 1},
	}, nil)
	if _, err := statsOf(t, data); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), "NAXIS1") {
		t.Errorf("stats of a 2^21-pixel axis: %v, want NAXIS1 refused", err)
	}
}
