package association

import (
	"cmp"
	"math"
	"slices"
)

// PairRow is one row of measurement_pairs.parquet: two measurements of one
// source and their two-epoch variability metrics (Mooley et al. 2016,
// ApJ 818, 105, section 5), measurement a the earlier in time. Fluxes and
// metrics are 32-bit floats, as VAST stores them; the metrics are computed
// in 64 bits first.
type PairRow struct {
	MeasIDA      int64   `parquet:"meas_id_a"`
	MeasIDB      int64   `parquet:"meas_id_b"`
	FluxIntA     float32 `parquet:"flux_int_a"`
	FluxIntErrA  float32 `parquet:"flux_int_err_a"`
	FluxPeakA    float32 `parquet:"flux_peak_a"`
	FluxPeakErrA float32 `parquet:"flux_peak_err_a"`
	ImageNameA   string  `parquet:"image_name_a,dict"`
	FluxIntB     float32 `parquet:"flux_int_b"`
	FluxIntErrB  float32 `parquet:"flux_int_err_b"`
	FluxPeakB    float32 `parquet:"flux_peak_b"`
	FluxPeakErrB float32 `parquet:"flux_peak_err_b"`
	ImageNameB   string  `parquet:"image_name_b,dict"`
	VsPeak       float32 `parquet:"vs_peak"`
	VsInt        float32 `parquet:"vs_int"`
	MPeak        float32 `parquet:"m_peak"`
	MInt         float32 `parquet:"m_int"`
	SourceID     int64   `parquet:"source_id"`
}

// PairMeasurement is what pair metrics need of one measurement.
type PairMeasurement struct {
	ID                    int64
	Image                 int32 // index into the image names
	Time                  int64 // observation time, for the pair's order
	FluxPeak, FluxPeakErr float64
	FluxInt, FluxIntErr   float64
}

// PairAggregates are a source's aggregate pair metrics: among its pairs
// whose |Vs| reaches the threshold, the one with the largest |m| gives both
// absolute values (VAST's vs_abs_significant_max_* and
// m_abs_significant_max_*); 0 when no pair reaches it.
type PairAggregates struct {
	VsPeak, MPeak float64
	VsInt, MInt   float64
}

// vsMetric is the two-epoch t-statistic of two fluxes.
func vsMetric(a, b, errA, errB float64) float64 { return (a - b) / math.Hypot(errA, errB) }

// mMetric is the modulation index of two fluxes.
func mMetric(a, b float64) float64 { return 2 * (a - b) / (a + b) }

// sourcePairs emits every pair of the source's measurements, ordered as
// VAST orders them (by time, then id: a is never later than b), and returns
// the source's aggregates over pairs with |Vs| ≥ minAbsVs. ms is sorted in
// place. emit may keep the row only until it returns.
func sourcePairs(sourceID int64, ms []PairMeasurement, images []string, minAbsVs float64, emit func(*PairRow) error) (PairAggregates, error) {
	slices.SortFunc(ms, func(x, y PairMeasurement) int {
		return cmp.Or(cmp.Compare(x.Time, y.Time), cmp.Compare(x.ID, y.ID))
	})
	var agg PairAggregates
	bestPeak, bestInt := -1.0, -1.0
	var row PairRow
	row.SourceID = sourceID
	for i := range ms {
		a := &ms[i]
		row.MeasIDA = a.ID
		row.FluxIntA, row.FluxIntErrA = float32(a.FluxInt), float32(a.FluxIntErr)
		row.FluxPeakA, row.FluxPeakErrA = float32(a.FluxPeak), float32(a.FluxPeakErr)
		row.ImageNameA = images[a.Image]
		for j := i + 1; j < len(ms); j++ {
			b := &ms[j]
			vsPeak := vsMetric(a.FluxPeak, b.FluxPeak, a.FluxPeakErr, b.FluxPeakErr)
			vsInt := vsMetric(a.FluxInt, b.FluxInt, a.FluxIntErr, b.FluxIntErr)
			mPeak := mMetric(a.FluxPeak, b.FluxPeak)
			mInt := mMetric(a.FluxInt, b.FluxInt)
			// The first pair with the largest |m| wins, as pandas' idxmax.
			if math.Abs(vsPeak) >= minAbsVs && math.Abs(mPeak) > bestPeak {
				bestPeak = math.Abs(mPeak)
				agg.VsPeak, agg.MPeak = math.Abs(vsPeak), bestPeak
			}
			if math.Abs(vsInt) >= minAbsVs && math.Abs(mInt) > bestInt {
				bestInt = math.Abs(mInt)
				agg.VsInt, agg.MInt = math.Abs(vsInt), bestInt
			}
			if emit == nil {
				continue
			}
			row.MeasIDB = b.ID
			row.FluxIntB, row.FluxIntErrB = float32(b.FluxInt), float32(b.FluxIntErr)
			row.FluxPeakB, row.FluxPeakErrB = float32(b.FluxPeak), float32(b.FluxPeakErr)
			row.ImageNameB = images[b.Image]
			row.VsPeak, row.VsInt = float32(vsPeak), float32(vsInt)
			row.MPeak, row.MInt = float32(mPeak), float32(mInt)
			if err := emit(&row); err != nil {
				return agg, err
			}
		}
	}
	return agg, nil
}
