package forced

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
)

// FuzzMeasure: any positions, pixel values (NaN, ±Inf, zero noise,
// negative noise) and options give a result per position or an error,
// never a panic, and a usable result has a finite flux.
func FuzzMeasure(f *testing.F) {
	seed := func(vals ...float32) []byte {
		var b []byte
		for _, v := range vals {
			b = binary.BigEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	f.Add(seed(1, 2, 3), 150.0, -30.0, 12.0, 12.0, 3.0, 1.2, false)
	f.Add(seed(float32(math.NaN()), 0, -1, float32(math.Inf(1))), 150.001, -30.001, 11.5, 12.5, 3.0, 0.0, true)
	f.Add(seed(1e30, -1e30, 1e-30), 330.0, 30.0, -5.0, 40.0, 0.0, 0.0, true)
	f.Add([]byte{}, math.NaN(), math.Inf(1), 1e300, -1e300, 1e300, 1e300, false)
	f.Fuzz(func(t *testing.T, pix []byte, ra, dec, x, y, threshold, edge float64, allowNaN bool) {
		fd := newField(t, 24, 24)
		vals := make([]float32, 0, len(pix)/4)
		for i := 0; i+4 <= len(pix); i += 4 {
			vals = append(vals, math.Float32frombits(binary.BigEndian.Uint32(pix[i:])))
		}
		for i := range fd.img {
			if len(vals) == 0 {
				break
			}
			fd.img[i] = vals[i%len(vals)]
			fd.noise[(i*7)%len(fd.noise)] = vals[(i+1)%len(vals)]
		}
		im := fd.open(t)
		pos := []Position{{ra, dec}}
		if r, d, err := im.wcs.PixelToWorld(x+1, y+1); err == nil {
			pos = append(pos, Position{r, d}, Position{r + 1e-4, d})
		}
		res, err := im.Measure(context.Background(), pos, Options{ClusterThreshold: threshold, EdgeBufferScale: edge, AllowNaN: allowNaN})
		if err != nil {
			return
		}
		if len(res) != len(pos) {
			t.Fatalf("%d results for %d positions", len(res), len(pos))
		}
		for _, r := range res {
			if r.Usable() && (math.IsNaN(r.Flux) || math.IsInf(r.Flux, 0)) {
				t.Fatalf("usable result with flux %g", r.Flux)
			}
		}
	})
}
