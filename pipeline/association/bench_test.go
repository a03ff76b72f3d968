package association

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/runconfig"
)

type discardLog struct{}

func (discardLog) Debugf(string, ...any) {}
func (discardLog) Infof(string, ...any)  {}
func (discardLog) Warnf(string, ...any)  {}

// syntheticSurvey stores the measurements of a survey of images x sources,
// the sources on a 45" grid shifted by up to 10" each, measured with jitter
// arcsec of scatter, and returns the association input. Its images have no
// rms statistics, so no noise map is read.
func syntheticSurvey(tb testing.TB, store *artifacts.Store, images, sources int, jitter float64) pipeline.AssociationInput {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	side := int(math.Ceil(math.Sqrt(float64(sources))))
	const spacing = 45.0 / 3600
	radius := spacing * float64(side) / 2
	cosDec := math.Cos(30 * degToRad)
	type truth struct{ ra, dec float64 }
	ts := make([]truth, sources)
	for i := range ts {
		x := (float64(i%side)+0.5)*spacing - radius + (rng.Float64()-0.5)*20.0/3600
		y := (float64(i/side)+0.5)*spacing - radius + (rng.Float64()-0.5)*20.0/3600
		ts[i] = truth{150 + x/cosDec, -30 + y}
	}
	in := pipeline.AssociationInput{Job: pipeline.Job{Run: "bench", ImagesRoot: tb.TempDir()}}
	id := int64(1)
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := make([]pipeline.Measurement, sources)
	for im := range images {
		for i, tr := range ts {
			unc := 1.0 / 3600
			ms[i] = pipeline.Measurement{
				ID: id, ImageID: int64(im + 1),
				RA:       tr.ra + jitter/3600*rng.NormFloat64()/cosDec,
				Dec:      tr.dec + jitter/3600*rng.NormFloat64(),
				FluxPeak: 10 + rng.Float64(), FluxInt: 10 + rng.Float64(), FluxPeakErr: 0.2, FluxIntErr: 0.3,
				SNR: 40, Compactness: 1, UncertaintyEW: unc, UncertaintyNS: unc, WeightEW: 1 / (unc * unc), WeightNS: 1 / (unc * unc),
			}
			id++
		}
		name := fmt.Sprintf("image%03d.fits", im+1)
		a, err := pipeline.PutParquet(context.Background(), store, pipeline.MeasurementsProduct(name), ms)
		if err != nil {
			tb.Fatal(err)
		}
		in.Images = append(in.Images, pipeline.ImageProducts{
			Image: pipeline.ImageRow{
				ID: int64(im + 1), SkyRegID: 1, Name: name, Path: name, DateTime: start.Add(time.Duration(im) * 24 * time.Hour),
				RA: 150, Dec: -30, FOVBMin: 2 * radius, NMeas: int64(sources), RMSMin: math.NaN(),
				BeamBMaj: 15.0 / 3600, BeamBMin: 12.0 / 3600,
			},
			Measurements: a, New: true,
		})
	}
	return in
}

// BenchmarkAssociate associates synthetic surveys of 10^4, 10^5 and 10^6
// measurements (products read and written included) with each method at
// its default settings and reports measurements per second.
func BenchmarkAssociate(b *testing.B) {
	for _, size := range []struct{ images, sources int }{{10, 1000}, {100, 1000}, {100, 10000}} {
		for _, method := range []string{runconfig.MethodBasic, runconfig.MethodAdvanced, runconfig.MethodDeRuiter} {
			benchmarkAssociate(b, size.images, size.sources, method)
		}
	}
}

func benchmarkAssociate(b *testing.B, images, sources int, method string) {
	s := DefaultSettings()
	s.Method = method
	b.Run(fmt.Sprintf("%s/%dx%d", method, images, sources), func(b *testing.B) {
		store, err := artifacts.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		in := syntheticSurvey(b, store, images, sources, 0.5)
		b.ResetTimer()
		for b.Loop() {
			res, err := Associator{Settings: &s}.Associate(context.Background(), store, in, discardLog{})
			if err != nil {
				b.Fatal(err)
			}
			if res.NSources < sources {
				b.Fatalf("%d sources, want at least %d", res.NSources, sources)
			}
		}
		b.ReportMetric(float64(images*sources)*float64(b.N)/b.Elapsed().Seconds(), "meas/s")
	})
}

// TestSyntheticSurveyAssociates checks the benchmark's survey: with little
// jitter every method finds every source once, with all its measurements.
func TestSyntheticSurveyAssociates(t *testing.T) {
	store := newStore(t)
	in := syntheticSurvey(t, store, 5, 300, 0.5)
	for _, method := range []string{runconfig.MethodBasic, runconfig.MethodAdvanced, runconfig.MethodDeRuiter} {
		s := DefaultSettings()
		s.Method = method
		res, err := Associator{Settings: &s}.Associate(context.Background(), store, in, discardLog{})
		if err != nil {
			t.Fatal(err)
		}
		if res.NSources != 300 || res.NNewSources != 0 {
			t.Errorf("%s: %d sources (%d new), want 300 (0 new)", method, res.NSources, res.NNewSources)
		}
		rows := readProduct[SourceRow](t, store, domain.Products{Artifacts: res.Artifacts}, SourcesProduct)
		for _, r := range rows {
			if r.NMeas != 5 {
				t.Fatalf("%s: source %d has %d measurements, want 5", method, r.ID, r.NMeas)
			}
		}
	}
}
