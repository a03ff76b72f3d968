package fits

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

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
		// None of these may panic, whatever the header says.
		ImageInfoFromHeader(h)
		PixelStatsOf(context.Background(), bytes.NewReader(data), h)
	})
}
