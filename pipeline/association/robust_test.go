package association

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/pipeline/fits"
	"github.com/piperun/piperun/pipeline/selavy"
)

func TestNeighbourDistancesOnAnyFiniteInput(t *testing.T) {
	tests := []struct {
		name string
		pos  [][2]float64
		want []float64
	}{
		{"no sources", nil, nil},
		{"one source", [][2]float64{{10, 20}}, []float64{0}},
		{"two at one place", [][2]float64{{10, 20}, {10, 20}}, []float64{0, 0}},
		{"many at one place", [][2]float64{{0, -90}, {0, -90}, {0, -90}, {0, -90}, {0, -90}}, []float64{0, 0, 0, 0, 0}},
		{"across RA 0", [][2]float64{{359.5, 0}, {0.5, 0}, {180, 0}}, []float64{1, 1, 179.5}},
		{"poles", [][2]float64{{0, 90}, {123, 90}, {0, -90}}, []float64{0, 0, 180}},
		{"finite extremes", [][2]float64{{1e308, -1e308}, {-1e308, 1e308}, {5e-324, 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := make([]SourceRow, len(tt.pos))
			for i, p := range tt.pos {
				rows[i] = SourceRow{ID: int64(i + 1), WavgRA: p[0], WavgDec: p[1], NNeighbourDist: -1}
			}
			if err := neighbourDistances(rows); err != nil {
				t.Fatal(err)
			}
			for i, r := range rows {
				if math.IsNaN(r.NNeighbourDist) || r.NNeighbourDist < 0 || r.NNeighbourDist > 180 {
					t.Errorf("source %d: n_neighbour_dist %v", r.ID, r.NNeighbourDist)
				}
				if tt.want != nil && math.Abs(r.NNeighbourDist-tt.want[i]) > 1e-9 {
					t.Errorf("source %d: n_neighbour_dist %v, want %v", r.ID, r.NNeighbourDist, tt.want[i])
				}
			}
		})
	}
}

func TestNeighbourDistancesRefuseNonFinitePositions(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, onDec := range []bool{false, true} {
			rows := []SourceRow{{ID: 1, WavgRA: 10, WavgDec: 20}, {ID: 7, WavgRA: bad, WavgDec: 20}, {ID: 3, WavgRA: 11, WavgDec: 20}}
			if onDec {
				rows[1].WavgRA, rows[1].WavgDec = 10, bad
			}
			err := neighbourDistances(rows)
			if !errors.Is(err, ErrInvalidMeasurement) || !strings.Contains(err.Error(), "source 7") {
				t.Errorf("position with %v (dec: %v): err = %v, want ErrInvalidMeasurement naming source 7", bad, onDec, err)
			}
		}
	}
}

func TestCheckMeasurementsNamesImageAndMeasurement(t *testing.T) {
	good := measurement{ID: 41, RA: 10, Dec: -30, WeightEW: 1e6, WeightNS: 1e6, FluxPeak: 1, FluxInt: 1, FluxPeakErr: 0.1, FluxIntErr: 0.1}
	if err := checkMeasurements("epoch01.fits", []measurement{good}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  func(m *measurement)
		want string
	}{
		{"NaN RA", func(m *measurement) { m.RA = math.NaN() }, "ra = NaN"},
		{"RA 1e308", func(m *measurement) { m.RA = 1e308 }, "ra = 1e+308"},
		{"Dec 200", func(m *measurement) { m.Dec = 200 }, "dec = 200: must be within [-90, 90]"},
		{"infinite weight", func(m *measurement) { m.WeightEW = math.Inf(1) }, "weight_ew = +Inf"},
		{"zero weight", func(m *measurement) { m.WeightNS = 0 }, "weight_ns = 0"},
		{"NaN flux", func(m *measurement) { m.FluxInt = math.NaN() }, "flux_int = NaN"},
	}
	for _, tt := range tests {
		m := good
		m.ID = 42
		tt.set(&m)
		err := checkMeasurements("epoch01.fits", []measurement{good, m})
		if !errors.Is(err, ErrInvalidMeasurement) || !strings.Contains(err.Error(), "image epoch01.fits: measurement 42: "+tt.want) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

// fuzzEngine decodes measurements from data and associates them as
// Associate does: image by image or epoch by epoch, then source metrics
// and neighbour distances. Each measurement takes a flags byte, an image
// byte and eight 8-byte numbers; a number whose flag bit is set is taken as
// raw float64 bits (NaN, Inf, 1e308, ...), otherwise it is scaled into the
// field's usual range.
func fuzzEngine(t *testing.T, data []byte, radiusArcsec, dupArcsec float64, epochMode bool) {
	const size = 2 + 8*8
	e := newEngine(radiusArcsec)
	images := 0
	for len(data) >= size && len(e.meas) < 64 {
		flags, image := data[0], int32(data[1]%4)
		var v [8]float64
		for k := range v {
			b := binary.LittleEndian.Uint64(data[2+8*k:])
			if flags&(1<<k) != 0 {
				v[k] = math.Float64frombits(b)
				continue
			}
			u := float64(uint16(b)) / 65536
			switch k {
			case 0:
				v[k] = u * 360
			case 1:
				v[k] = u*180 - 90
			case 2, 3:
				v[k] = 1 / math.Pow(u/3600+1e-6, 2)
			default:
				v[k] = u*1000 - 100
			}
		}
		e.meas = append(e.meas, measurement{ID: int64(len(e.meas) + 1), Image: image, RA: v[0], Dec: v[1], WeightEW: v[2], WeightNS: v[3],
			FluxPeak: v[4], FluxPeakErr: v[5], FluxInt: v[6], FluxIntErr: v[7], SNR: v[4], Compactness: 1, HasSiblings: flags&1 != 0})
		images = max(images, int(image)+1)
		data = data[size:]
	}
	checkErr := checkMeasurements("fuzz", e.meas)
	// One step per image, or in epoch mode images 0-1 and 2-3 as two epochs.
	steps := make([][]int32, images)
	for i, m := range e.meas {
		k := m.Image
		if epochMode {
			k /= 2
		}
		steps[k] = append(steps[k], int32(i))
	}
	for _, st := range steps {
		if len(st) == 0 {
			continue
		}
		if epochMode {
			for _, mi := range st {
				m := &e.meas[mi]
				m.distFromCentre = separation(m.RA, m.Dec, 10, 20)
			}
		}
		e.step(e.epochStep(st, epochMode, dupArcsec/3600))
	}
	e.sortSources()
	rows := make([]SourceRow, len(e.sources))
	for i, s := range e.sources {
		rows[i] = e.sourceMetrics(s)
	}
	err := neighbourDistances(rows)
	if checkErr == nil && err == nil {
		for _, r := range rows {
			if math.IsNaN(r.NNeighbourDist) || r.NNeighbourDist < 0 || r.NNeighbourDist > 180 {
				t.Fatalf("source %d: n_neighbour_dist %v", r.ID, r.NNeighbourDist)
			}
		}
	}
	if err != nil && !errors.Is(err, ErrInvalidMeasurement) {
		t.Fatalf("neighbourDistances: %v", err)
	}
	e.associationRows()
}

// encodeFuzzMeasurement is the inverse of fuzzEngine's decoding for raw
// values.
func encodeFuzzMeasurement(image byte, v [8]float64) []byte {
	b := []byte{0xff, image}
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func FuzzAssociation(f *testing.F) {
	w := 1 / math.Pow(1.0/3600, 2)
	one := func(image byte, ra, dec float64) []byte {
		return encodeFuzzMeasurement(image, [8]float64{ra, dec, w, w, 5, 0.5, 6, 0.6})
	}
	f.Add([]byte{}, 10.0, 0.0, false)
	f.Add(one(0, 10, 20), 10.0, 0.0, false)
	f.Add(append(one(0, 10, 20), one(1, 10, 20)...), 10.0, 0.0, false)
	f.Add(append(append(one(0, 10, 20), one(0, 10, 20)...), one(1, 10, 20)...), 10.0, 2.5, true)
	f.Add(append(one(0, math.NaN(), 20), one(1, 10, 20)...), 10.0, 0.0, false)
	f.Add(append(one(0, 1e308, 1e308), one(1, math.Inf(1), 20)...), 10.0, 0.0, false)
	f.Add(append(one(0, 359.9999, 0), one(1, 0.0001, 0)...), 10.0, 0.0, false)
	// The real catalogues, one image each, as VAST's test run associates them.
	if dir, err := vastdata.Find(); err == nil {
		var seed []byte
		paths, _ := filepath.Glob(filepath.Join(dir, "data", "epoch0*.selavy.components.txt"))
		for i, p := range paths {
			cs, err := selavy.ReadFile(context.Background(), p)
			if err != nil {
				continue
			}
			for _, c := range cs {
				seed = append(seed, encodeFuzzMeasurement(byte(i), [8]float64{c.RADeg, c.DecDeg, w, w, c.FluxPeak, c.FluxPeakErr, c.FluxInt, c.FluxIntErr})...)
			}
		}
		f.Add(seed, 10.0, 0.0, false)
		f.Add(seed, 10.0, 2.5, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, radiusArcsec, dupArcsec float64, epochMode bool) {
		fuzzEngine(t, data, radiusArcsec, dupArcsec, epochMode)
	})
}

func TestNoiseMapHeadersAreChecked(t *testing.T) {
	tests := []struct {
		key   string
		value any
		want  string
	}{
		{"NAXIS1", int64(1) << 21, "each axis must be within [1, 1048576]"},
		{"BMAJ", 0.0, "keyword BMAJ = 0: must be positive and finite"},
		{"BMAJ", -1.0, "keyword BMAJ = -1: must be positive and finite"},
	}
	for _, tt := range tests {
		path := writeNoiseMap(t)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The first occurrence of a keyword wins: put the bad card first.
		card, err := fits.EncodeHeader([]fits.Card{{Key: tt.key, Value: tt.value}})
		if err != nil {
			t.Fatal(err)
		}
		// Insert it after SIMPLE and drop 80 bytes of the header's blank
		// padding, which the insertion pushed past the first block.
		b = append(append(append([]byte(nil), b[:80]...), card[:80]...), b[80:]...)
		b = append(b[:fits.BlockSize], b[fits.BlockSize+80:]...)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := openRMSMapAt(t, path)
		if err == nil {
			m.Close()
		}
		if !errors.Is(err, fits.ErrBadValue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s = %v: err = %v, want %q", tt.key, tt.value, err, tt.want)
		}
	}
}
