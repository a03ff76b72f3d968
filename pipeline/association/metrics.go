package association

import (
	"fmt"
	"math"
)

// SourceRow is one row of sources.parquet, with VAST's columns in VAST's
// order. Positions and their uncertainties are in degrees, fluxes in mJy
// (/beam for peak), n_neighbour_dist in degrees.
type SourceRow struct {
	NMeasForced       int64   `parquet:"n_meas_forced"`
	NMeas             int64   `parquet:"n_meas"`
	NMeasSel          int64   `parquet:"n_meas_sel"`
	NSibl             int64   `parquet:"n_sibl"`
	WavgRA            float64 `parquet:"wavg_ra"`
	WavgDec           float64 `parquet:"wavg_dec"`
	AvgCompactness    float64 `parquet:"avg_compactness"`
	MinSNR            float64 `parquet:"min_snr"`
	MaxSNR            float64 `parquet:"max_snr"`
	WavgUncertaintyEW float64 `parquet:"wavg_uncertainty_ew"`
	WavgUncertaintyNS float64 `parquet:"wavg_uncertainty_ns"`
	AvgFluxInt        float64 `parquet:"avg_flux_int"`
	AvgFluxPeak       float64 `parquet:"avg_flux_peak"`
	MaxFluxPeak       float64 `parquet:"max_flux_peak"`
	MaxFluxInt        float64 `parquet:"max_flux_int"`
	MinFluxPeak       float64 `parquet:"min_flux_peak"`
	MinFluxInt        float64 `parquet:"min_flux_int"`
	// MinFluxPeakIslRatio and MinFluxIntIslRatio are the smallest ratios of
	// a measurement's flux to its island's.
	MinFluxPeakIslRatio float64 `parquet:"min_flux_peak_isl_ratio"`
	MinFluxIntIslRatio  float64 `parquet:"min_flux_int_isl_ratio"`
	VInt                float64 `parquet:"v_int"`
	VPeak               float64 `parquet:"v_peak"`
	EtaInt              float64 `parquet:"eta_int"`
	EtaPeak             float64 `parquet:"eta_peak"`
	NRel                int64   `parquet:"n_rel"`
	New                 bool    `parquet:"new"`
	NewHighSigma        float64 `parquet:"new_high_sigma"`
	NNeighbourDist      float64 `parquet:"n_neighbour_dist"`
	// The aggregate pair metrics (see PairAggregates): 0 without pair
	// metrics, or when no pair of the source reaches
	// variability.source_aggregate_pair_metrics_min_abs_vs.
	VsAbsSignificantMaxPeak float64 `parquet:"vs_abs_significant_max_peak"`
	MAbsSignificantMaxPeak  float64 `parquet:"m_abs_significant_max_peak"`
	VsAbsSignificantMaxInt  float64 `parquet:"vs_abs_significant_max_int"`
	MAbsSignificantMaxInt   float64 `parquet:"m_abs_significant_max_int"`
	ID                      int64   `parquet:"id"`
}

// AssociationRow is one row of associations.parquet: a measurement of a
// source, at d2d arcsec from the source's position when it was associated.
// dr (the de Ruiter radius) is 0 in basic association.
type AssociationRow struct {
	SourceID int64   `parquet:"source_id"`
	MeasID   int64   `parquet:"meas_id"`
	D2D      float64 `parquet:"d2d"`
	DR       float64 `parquet:"dr"`
}

// RelationRow is one row of relations.parquet; each relation is listed in
// both directions.
type RelationRow struct {
	FromSourceID int64 `parquet:"from_source_id"`
	ToSourceID   int64 `parquet:"to_source_id"`
}

// sourceMetrics computes a source's aggregate columns the way VAST's
// finalisation does (new, new_high_sigma and n_neighbour_dist are set
// elsewhere).
func (e *engine) sourceMetrics(s *source) SourceRow {
	r := SourceRow{ID: s.ID, NMeas: int64(len(s.Rows)), NRel: int64(len(s.Related))}
	var forced int64
	for _, a := range s.Rows {
		m := &e.meas[a.Meas]
		if m.Forced {
			forced++
		}
		if m.HasSiblings {
			r.NSibl++
		}
	}
	r.NMeasForced = forced
	r.NMeasSel = r.NMeas - forced

	// Position, compactness and snr leave forced measurements out when
	// there are any; the uncertainties (VAST's quirk) do not.
	var sumEW, sumNS, wEW, wNS, allWEW, allWNS, compact float64
	var nSel float64
	r.MinSNR, r.MaxSNR = math.Inf(1), math.Inf(-1)
	for _, a := range s.Rows {
		m := &e.meas[a.Meas]
		allWEW += m.WeightEW
		allWNS += m.WeightNS
		if forced > 0 && m.Forced {
			continue
		}
		sumEW += wrappedRA(m.RA) * m.WeightEW
		sumNS += m.Dec * m.WeightNS
		wEW += m.WeightEW
		wNS += m.WeightNS
		compact += m.Compactness
		nSel++
		r.MinSNR = math.Min(r.MinSNR, m.SNR)
		r.MaxSNR = math.Max(r.MaxSNR, m.SNR)
	}
	r.WavgRA = sumEW / wEW
	if r.WavgRA >= 360 {
		r.WavgRA -= 360
	}
	r.WavgDec = sumNS / wNS
	r.AvgCompactness = compact / nSel
	r.WavgUncertaintyEW = 1 / math.Sqrt(allWEW)
	r.WavgUncertaintyNS = 1 / math.Sqrt(allWNS)

	n := float64(len(s.Rows))
	var sumInt, sumPeak float64
	r.MaxFluxPeak = math.Inf(-1)
	// pandas' min and max skip NaN, and give NaN when all are.
	r.MaxFluxInt, r.MinFluxPeak, r.MinFluxInt = math.NaN(), math.NaN(), math.NaN()
	r.MinFluxPeakIslRatio, r.MinFluxIntIslRatio = math.NaN(), math.NaN()
	for _, a := range s.Rows {
		m := &e.meas[a.Meas]
		sumInt += m.FluxInt
		sumPeak += m.FluxPeak
		r.MaxFluxPeak = math.Max(r.MaxFluxPeak, m.FluxPeak)
		r.MaxFluxInt = nanMax(r.MaxFluxInt, m.FluxInt)
		r.MinFluxPeak = nanMin(r.MinFluxPeak, m.FluxPeak)
		r.MinFluxInt = nanMin(r.MinFluxInt, m.FluxInt)
		r.MinFluxPeakIslRatio = nanMin(r.MinFluxPeakIslRatio, m.FluxPeakIslRatio)
		r.MinFluxIntIslRatio = nanMin(r.MinFluxIntIslRatio, m.FluxIntIslRatio)
	}
	r.AvgFluxInt = sumInt / n
	r.AvgFluxPeak = sumPeak / n
	if len(s.Rows) > 1 {
		var ssInt, ssPeak float64
		for _, a := range s.Rows {
			m := &e.meas[a.Meas]
			ssInt += (m.FluxInt - r.AvgFluxInt) * (m.FluxInt - r.AvgFluxInt)
			ssPeak += (m.FluxPeak - r.AvgFluxPeak) * (m.FluxPeak - r.AvgFluxPeak)
		}
		// pandas' std: sample standard deviation (ddof 1).
		r.VInt = math.Sqrt(ssInt/(n-1)) / r.AvgFluxInt
		r.VPeak = math.Sqrt(ssPeak/(n-1)) / r.AvgFluxPeak
		r.EtaInt = e.eta(s, func(m *measurement) (float64, float64) { return m.FluxInt, m.FluxIntErr })
		r.EtaPeak = e.eta(s, func(m *measurement) (float64, float64) { return m.FluxPeak, m.FluxPeakErr })
	}
	return r
}

// eta is the η variability statistic over all the source's measurements:
// N/(N-1) (⟨w f²⟩ - ⟨w f⟩²/⟨w⟩) with w = 1/σ². VAST sets it (and V) to 0
// for a single measurement.
func (e *engine) eta(s *source, flux func(*measurement) (float64, float64)) float64 {
	n := float64(len(s.Rows))
	var wf2, wf, w float64
	for _, a := range s.Rows {
		f, sigma := flux(&e.meas[a.Meas])
		wi := 1 / (sigma * sigma)
		wf2 += wi * f * f
		wf += wi * f
		w += wi
	}
	wf2, wf, w = wf2/n, wf/n, w/n
	return n / (n - 1) * (wf2 - wf*wf/w)
}

// neighbourDistances sets each row's n_neighbour_dist: the separation in
// degrees to the nearest other source (0 when there is no other source). A
// source without a finite position (weights so large that their sums
// overflow) is an error: it has no neighbour to measure.
func neighbourDistances(rows []SourceRow) error {
	for i := range rows {
		r := &rows[i]
		if math.IsNaN(r.WavgRA) || math.IsInf(r.WavgRA, 0) || math.IsNaN(r.WavgDec) || math.IsInf(r.WavgDec, 0) {
			return fmt.Errorf("source %d has no finite position (wavg_ra %v, wavg_dec %v): %w", r.ID, r.WavgRA, r.WavgDec, ErrInvalidMeasurement)
		}
	}
	if len(rows) < 2 {
		for i := range rows {
			rows[i].NNeighbourDist = 0
		}
		return nil
	}
	pts := make([]vec, len(rows))
	for i, r := range rows {
		pts[i] = unitVec(r.WavgRA, r.WavgDec)
	}
	tree := newKDTree(pts)
	for i := range rows {
		j, _ := tree.nearest(pts[i], math.Inf(1), int32(i))
		if j < 0 {
			// Only possible if a point were not finite, which is checked
			// above; no neighbour is 0, as for a lone source.
			rows[i].NNeighbourDist = 0
			continue
		}
		rows[i].NNeighbourDist = separation(rows[i].WavgRA, rows[i].WavgDec, rows[j].WavgRA, rows[j].WavgDec)
	}
	return nil
}

// nanMin is the smaller of a and b, ignoring a NaN unless both are.
func nanMin(a, b float64) float64 {
	if math.IsNaN(a) || b < a {
		return b
	}
	return a
}

// nanMax is the larger of a and b, ignoring a NaN unless both are.
func nanMax(a, b float64) float64 {
	if math.IsNaN(a) || b > a {
		return b
	}
	return a
}
