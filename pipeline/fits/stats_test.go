package fits

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// imageWith builds a FITS file with the given header cards (after SIMPLE)
// and raw big-endian data.
func imageWith(t *testing.T, cards []Card, data []byte) []byte {
	t.Helper()
	h, err := EncodeHeader(append([]Card{{Key: "SIMPLE", Value: true}}, cards...))
	if err != nil {
		t.Fatal(err)
	}
	out := append(h, data...)
	if pad := len(data) % BlockSize; pad != 0 {
		out = append(out, make([]byte, BlockSize-pad)...)
	}
	return out
}

func statsOf(t *testing.T, file []byte) (PixelStats, error) {
	t.Helper()
	h, err := ReadHeader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return PixelStatsOf(context.Background(), bytes.NewReader(file), h)
}

// numpyMedian is the reference: sort and average the middle two.
func numpyMedian(v []float64, f32 bool) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if f32 {
		return float64((float32(s[(n-1)/2]) + float32(s[n/2])) / 2)
	}
	return (s[(n-1)/2] + s[n/2]) / 2
}

func TestPixelStatsFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 3, 10, 1000, 4097} {
		var data []byte
		var valid []float64
		for i := range n {
			var v float32
			switch {
			case i%7 == 3:
				v = 0 // left out
			case i%11 == 5:
				v = float32(math.NaN()) // left out
			case i%13 == 0:
				v = 0.25 // duplicates
			default:
				v = float32(rng.NormFloat64() * 1e-3)
			}
			data = binary.BigEndian.AppendUint32(data, math.Float32bits(v))
			if v == v && v != 0 {
				valid = append(valid, float64(v))
			}
		}
		file := imageWith(t, []Card{{Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 2}, {Key: "NAXIS1", Value: n}, {Key: "NAXIS2", Value: 1}}, data)
		st, err := statsOf(t, file)
		if err != nil {
			t.Fatal(err)
		}
		if st.N != int64(len(valid)) {
			t.Fatalf("n=%d: N = %d, want %d", n, st.N, len(valid))
		}
		if len(valid) == 0 {
			if !math.IsNaN(st.Median) {
				t.Errorf("no valid pixels: median %v, want NaN", st.Median)
			}
			continue
		}
		if want := numpyMedian(valid, true); st.Median != want {
			t.Errorf("n=%d: median %v, want %v", n, st.Median, want)
		}
		if st.Min != slices.Min(valid) || st.Max != slices.Max(valid) {
			t.Errorf("n=%d: min/max %v %v", n, st.Min, st.Max)
		}
	}
}

func TestPixelStatsScaledIntegersWithBlank(t *testing.T) {
	raw := []int16{5, -3, 7, -32768, 0, 2, 2, 9}
	var data []byte
	var valid []float64
	for _, v := range raw {
		data = binary.BigEndian.AppendUint16(data, uint16(v))
		if v != -32768 {
			if p := 0.5 + 2*float64(v); p != 0 {
				valid = append(valid, p)
			}
		}
	}
	file := imageWith(t, []Card{
		{Key: "BITPIX", Value: 16}, {Key: "NAXIS", Value: 1}, {Key: "NAXIS1", Value: len(raw)},
		{Key: "BSCALE", Value: 2.0}, {Key: "BZERO", Value: 0.5}, {Key: "BLANK", Value: -32768},
	}, data)
	st, err := statsOf(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if st.N != int64(len(valid)) || st.Median != numpyMedian(valid, false) || st.Min != -5.5 || st.Max != 18.5 {
		t.Errorf("stats %+v, want N=%d median=%v", st, len(valid), numpyMedian(valid, false))
	}
}

func TestPixelStatsFloat64(t *testing.T) {
	vals := []float64{-1e300, 3, 1e-300, -0.5, 42}
	var data []byte
	for _, v := range vals {
		data = binary.BigEndian.AppendUint64(data, math.Float64bits(v))
	}
	file := imageWith(t, []Card{{Key: "BITPIX", Value: -64}, {Key: "NAXIS", Value: 1}, {Key: "NAXIS1", Value: len(vals)}}, data)
	st, err := statsOf(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Median != 1e-300 || st.Min != -1e300 || st.Max != 42 {
		t.Errorf("stats %+v", st)
	}
}

func TestPixelStatsErrors(t *testing.T) {
	short := imageWith(t, []Card{{Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 1}, {Key: "NAXIS1", Value: 10000}}, make([]byte, 100))
	if _, err := statsOf(t, short); !errors.Is(err, errTruncated) {
		t.Errorf("truncated data: %v", err)
	}
	badBitpix := imageWith(t, []Card{{Key: "BITPIX", Value: 12}, {Key: "NAXIS", Value: 0}}, nil)
	if _, err := statsOf(t, badBitpix); !errors.Is(err, ErrBadValue) {
		t.Errorf("BITPIX 12: %v", err)
	}
	noAxis := imageWith(t, []Card{{Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 1}}, nil)
	if _, err := statsOf(t, noAxis); !errors.Is(err, ErrMissingKeyword) {
		t.Errorf("missing NAXIS1: %v", err)
	}
	file := imageWith(t, []Card{{Key: "BITPIX", Value: -32}, {Key: "NAXIS", Value: 1}, {Key: "NAXIS1", Value: 4}}, make([]byte, 16))
	h, _ := ReadHeader(bytes.NewReader(file))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := PixelStatsOf(ctx, bytes.NewReader(file), h); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
