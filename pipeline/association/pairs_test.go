package association

import (
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/piperun/piperun/internal/vastdata"
)

// currentVASTRuns are the folders of expected/current-vast, all made with
// pair metrics on and a |Vs| threshold of 4.3.
var currentVASTRuns = []string{
	"basic-r10", "basic-r15", "advanced-r15", "deruiter-bw2.0",
	"basic-r15-forced", "advanced-r15-forced", "deruiter-bw2.0-forced",
}

func parseFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func parseInt(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// vastPairInputs gathers, from one current-VAST run's CSV outputs, each
// source's measurements (selavy and forced) as pair metrics take them.
func vastPairInputs(t *testing.T, run string) (map[int64][]PairMeasurement, []string) {
	t.Helper()
	images := map[string]int32{}
	var names []string
	for _, im := range vastdata.ReadCSV(t, "expected", "current-vast", run, "images.csv") {
		images[im["name"]] = int32(len(names))
		names = append(names, im["name"])
	}
	meas := map[int64]PairMeasurement{}
	add := func(file string) {
		for _, m := range vastdata.ReadCSV(t, "expected", "current-vast", run, file) {
			tm, err := time.Parse("2006-01-02 15:04:05.999999-07:00", m["time"])
			if err != nil {
				t.Fatalf("%s: time %q: %v", file, m["time"], err)
			}
			im, ok := images[m["image"]]
			if !ok {
				t.Fatalf("%s: unknown image %q", file, m["image"])
			}
			id := parseInt(t, m["id"])
			meas[id] = PairMeasurement{
				ID: id, Image: im, Time: tm.UnixNano(),
				FluxPeak: parseFloat(t, m["flux_peak"]), FluxPeakErr: parseFloat(t, m["flux_peak_err"]),
				FluxInt: parseFloat(t, m["flux_int"]), FluxIntErr: parseFloat(t, m["flux_int_err"]),
			}
		}
	}
	add("measurements.csv")
	if run[len(run)-len("-forced"):] == "-forced" {
		add("forced_measurements.csv")
	}
	bySource := map[int64][]PairMeasurement{}
	for _, a := range vastdata.ReadCSV(t, "expected", "current-vast", run, "associations.csv") {
		m, ok := meas[parseInt(t, a["meas_id"])]
		if !ok {
			t.Fatalf("association to unknown measurement %s", a["meas_id"])
		}
		src := parseInt(t, a["source_id"])
		bySource[src] = append(bySource[src], m)
	}
	return bySource, names
}

// TestPairMetricsMatchCurrentVAST computes the pairs and aggregates of each
// current-VAST run from its own measurements and associations, and
// compares them with its measurement_pairs.csv (every pair, in VAST's a/b
// order, at 32-bit precision) and the aggregate columns of its sources.csv.
func TestPairMetricsMatchCurrentVAST(t *testing.T) {
	for _, run := range currentVASTRuns {
		t.Run(run, func(t *testing.T) {
			bySource, images := vastPairInputs(t, run)
			got := map[[3]int64]PairRow{}
			aggs := map[int64]PairAggregates{}
			for src, ms := range bySource {
				agg, err := sourcePairs(src, ms, images, 4.3, func(r *PairRow) error {
					key := [3]int64{r.SourceID, r.MeasIDA, r.MeasIDB}
					if _, dup := got[key]; dup {
						return fmt.Errorf("pair %v twice", key)
					}
					got[key] = *r
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				aggs[src] = agg
			}
			comparePairs(t, got, vastPairs(t, run))
			for _, s := range vastdata.ReadCSV(t, "expected", "current-vast", run, "sources.csv") {
				id := parseInt(t, s["id"])
				g := aggs[id]
				for col, v := range map[string]float64{
					"vs_abs_significant_max_peak": g.VsPeak, "m_abs_significant_max_peak": g.MPeak,
					"vs_abs_significant_max_int": g.VsInt, "m_abs_significant_max_int": g.MInt,
				} {
					if w := parseFloat(t, s[col]); !closeRel(v, w, 1e-9) {
						t.Errorf("source %d %s = %.12g, current VAST %.12g", id, col, v, w)
					}
				}
			}
		})
	}
}

// vastPairs reads a current-VAST run's measurement_pairs.csv, keyed by
// (source, a, b).
func vastPairs(t *testing.T, run string) map[[3]int64]PairRow {
	t.Helper()
	f32 := func(s string) float32 { return float32(parseFloat(t, s)) }
	out := map[[3]int64]PairRow{}
	for _, w := range vastdata.ReadCSV(t, "expected", "current-vast", run, "measurement_pairs.csv") {
		key := [3]int64{parseInt(t, w["source_id"]), parseInt(t, w["meas_id_a"]), parseInt(t, w["meas_id_b"])}
		out[key] = PairRow{
			MeasIDA: key[1], MeasIDB: key[2],
			FluxIntA: f32(w["flux_int_a"]), FluxIntErrA: f32(w["flux_int_err_a"]),
			FluxPeakA: f32(w["flux_peak_a"]), FluxPeakErrA: f32(w["flux_peak_err_a"]), ImageNameA: w["image_name_a"],
			FluxIntB: f32(w["flux_int_b"]), FluxIntErrB: f32(w["flux_int_err_b"]),
			FluxPeakB: f32(w["flux_peak_b"]), FluxPeakErrB: f32(w["flux_peak_err_b"]), ImageNameB: w["image_name_b"],
			VsPeak: f32(w["vs_peak"]), VsInt: f32(w["vs_int"]), MPeak: f32(w["m_peak"]), MInt: f32(w["m_int"]),
			SourceID: key[0],
		}
	}
	return out
}

// comparePairs checks that got holds exactly the pairs of want, each
// close to VAST's (see pairRowsClose).
func comparePairs(t *testing.T, got, want map[[3]int64]PairRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d pairs, current VAST has %d", len(got), len(want))
	}
	for key, w := range want {
		g, ok := got[key]
		if !ok {
			t.Errorf("no pair %v (source, a, b)", key)
			continue
		}
		if !pairRowsClose(g, w) {
			t.Errorf("pair %v:\n got %+v\nwant %+v", key, g, w)
		}
	}
}

// pairRowsClose compares two pair rows: identities exactly, the 32-bit
// floats within one unit in the last place (VAST rounds the same 64-bit
// values to 32 bits, but its sums may differ in the last bit).
func pairRowsClose(a, b PairRow) bool {
	if a.MeasIDA != b.MeasIDA || a.MeasIDB != b.MeasIDB || a.SourceID != b.SourceID ||
		a.ImageNameA != b.ImageNameA || a.ImageNameB != b.ImageNameB {
		return false
	}
	fa := []float32{a.FluxIntA, a.FluxIntErrA, a.FluxPeakA, a.FluxPeakErrA, a.FluxIntB, a.FluxIntErrB, a.FluxPeakB, a.FluxPeakErrB, a.VsPeak, a.VsInt, a.MPeak, a.MInt}
	fb := []float32{b.FluxIntA, b.FluxIntErrA, b.FluxPeakA, b.FluxPeakErrA, b.FluxIntB, b.FluxIntErrB, b.FluxPeakB, b.FluxPeakErrB, b.VsPeak, b.VsInt, b.MPeak, b.MInt}
	for i := range fa {
		if fa[i] != fb[i] && math.Nextafter32(fa[i], fb[i]) != fb[i] {
			return false
		}
	}
	return true
}

func closeRel(a, b, rel float64) bool {
	return a == b || math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}

// TestSourcePairsAggregates checks the choice of the aggregate pair on a
// hand-made source: the threshold on |Vs| is inclusive, and among the pairs
// that pass it the largest |m| wins, with its own |Vs| (not the largest).
func TestSourcePairsAggregates(t *testing.T) {
	images := []string{"a.fits", "b.fits", "c.fits"}
	ms := []PairMeasurement{
		{ID: 3, Image: 2, Time: 3, FluxPeak: 10, FluxPeakErr: 1, FluxInt: 10, FluxIntErr: 1},
		{ID: 1, Image: 0, Time: 1, FluxPeak: 100, FluxPeakErr: 1, FluxInt: 20, FluxIntErr: 1},
		{ID: 2, Image: 1, Time: 2, FluxPeak: 300, FluxPeakErr: 100, FluxInt: 20, FluxIntErr: 1},
	}
	var order [][2]int64
	agg, err := sourcePairs(9, ms, images, 4.3, func(r *PairRow) error {
		order = append(order, [2]int64{r.MeasIDA, r.MeasIDB})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[[1 2] [1 3] [2 3]]" {
		t.Errorf("pairs in order %v, want a before b in time", order)
	}
	// Peak: (1,2) Vs = -200/100.005 ≈ -2.0 fails the threshold although its
	// |m| = 1 is the largest; (1,3) Vs = 90/√2 ≈ 63.6, m = 180/110 ≈ 1.636;
	// (2,3) Vs = 290/100.005 ≈ 2.9 fails.
	if want := 90 / math.Sqrt2; !closeRel(agg.VsPeak, want, 1e-12) || !closeRel(agg.MPeak, 180.0/110, 1e-12) {
		t.Errorf("peak aggregates %v %v, want %v %v", agg.VsPeak, agg.MPeak, want, 180.0/110)
	}
	// Int: (1,2) equal fluxes; (1,3) Vs = 10/√2 ≈ 7.07, m = 20/30; (2,3) the same.
	if !closeRel(agg.VsInt, 10/math.Sqrt2, 1e-12) || !closeRel(agg.MInt, 20.0/30, 1e-12) {
		t.Errorf("int aggregates %v %v", agg.VsInt, agg.MInt)
	}
	// A threshold met exactly counts.
	one := []PairMeasurement{{ID: 1, FluxPeak: 10, FluxPeakErr: 3, FluxInt: 1, FluxIntErr: 1}, {ID: 2, Time: 1, FluxPeak: 6, FluxPeakErr: 4, FluxInt: 1, FluxIntErr: 1}}
	if agg, _ := sourcePairs(1, one, images, 0.8, nil); agg.VsPeak != 0.8 {
		t.Errorf("|Vs| = 0.8 at threshold 0.8: aggregate %v, want it counted", agg.VsPeak)
	}
}
