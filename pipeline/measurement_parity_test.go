package pipeline

import (
	"context"
	"strconv"
	"testing"

	"github.com/piperun/piperun/internal/vastdata"
)

// TestVASTMeasurementColumns compares every measurement of the VAST test
// images, column by column, with what the current VAST code stores
// (expected/current-vast/basic-r15/measurements.csv): names built from the
// component id, and errors in VAST's units (err_bmaj and err_bmin in
// degrees, err_pa in radians, as VAST's Condon errors give them).
func TestVASTMeasurementColumns(t *testing.T) {
	want := vastdata.ReadCSV(t, "expected", "current-vast", "basic-r15", "measurements.csv")
	store := newStore(t)
	p := processVAST(t, store, &testLog{}, "01", "02", "03", "04")
	got := map[string]Measurement{}
	for _, im := range p.Images {
		ms, err := ReadMeasurements(context.Background(), store, artifact(t, p, MeasurementsProduct(im.Name)).Digest)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			got[m.Name] = m
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d measurements, current VAST has %d", len(got), len(want))
	}
	columns := map[string]func(m Measurement) float64{
		"ra": func(m Measurement) float64 { return m.RA }, "dec": func(m Measurement) float64 { return m.Dec },
		"ra_err": func(m Measurement) float64 { return m.RAErr }, "dec_err": func(m Measurement) float64 { return m.DecErr },
		"flux_peak": func(m Measurement) float64 { return m.FluxPeak }, "flux_peak_err": func(m Measurement) float64 { return m.FluxPeakErr },
		"flux_int": func(m Measurement) float64 { return m.FluxInt }, "flux_int_err": func(m Measurement) float64 { return m.FluxIntErr },
		"bmaj": func(m Measurement) float64 { return m.BMaj }, "err_bmaj": func(m Measurement) float64 { return m.ErrBMaj },
		"bmin": func(m Measurement) float64 { return m.BMin }, "err_bmin": func(m Measurement) float64 { return m.ErrBMin },
		"pa": func(m Measurement) float64 { return m.PA }, "err_pa": func(m Measurement) float64 { return m.ErrPA },
		"psf_bmaj": func(m Measurement) float64 { return m.PSFBMaj }, "psf_bmin": func(m Measurement) float64 { return m.PSFBMin },
		"local_rms": func(m Measurement) float64 { return m.LocalRMS }, "snr": func(m Measurement) float64 { return m.SNR },
		"compactness":  func(m Measurement) float64 { return m.Compactness },
		"error_radius": func(m Measurement) float64 { return m.ErrorRadius },
		"ew_sys_err":   func(m Measurement) float64 { return m.EWSysErr }, "ns_sys_err": func(m Measurement) float64 { return m.NSSysErr },
		"chi_squared_fit": func(m Measurement) float64 { return m.ChiSquaredFit },
	}
	for _, w := range want {
		m, ok := got[w["name"]]
		if !ok {
			t.Errorf("no measurement named %s", w["name"])
			continue
		}
		if m.ComponentID != w["component_id"] || m.IslandID != w["island_id"] {
			t.Errorf("%s: component %s island %s, want %s %s", w["name"], m.ComponentID, m.IslandID, w["component_id"], w["island_id"])
		}
		for col, get := range columns {
			v, err := strconv.ParseFloat(w[col], 64)
			if err != nil {
				t.Fatalf("%s %s: %v", w["name"], col, err)
			}
			// error_radius comes from an arccos near 1 (see the test data's
			// README): compare it at 1e-4, the rest at 1e-9.
			tol := 1e-9
			if col == "error_radius" {
				tol = 1e-4
			}
			if !closeTo(get(m), v, tol) {
				t.Errorf("%s %s = %.12g, current VAST %.12g", w["name"], col, get(m), v)
			}
		}
	}
}
