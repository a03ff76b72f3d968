package association

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
)

// recordingSink keeps the rows and where each row group ends.
type recordingSink struct {
	rows   []PairRow
	groups []int
}

func (r *recordingSink) write(rows []PairRow) error { r.rows = append(r.rows, rows...); return nil }
func (r *recordingSink) flush() error {
	r.groups = append(r.groups, len(r.rows))
	return nil
}

// pairEngine is an engine holding sources of 1 to 60 measurements (up to
// 1770 pairs each) of random fluxes in 8 images.
func pairEngine() (*engine, pairInputs) {
	rng := rand.New(rand.NewPCG(3, 4))
	e := newEngine(10)
	var images []pipeline.ImageRow
	for i := range 8 {
		images = append(images, pipeline.ImageRow{Name: fmt.Sprintf("im%d.fits", i), DateTime: time.Date(2020, 1, 1+i, 0, 0, 0, 0, time.UTC)})
	}
	for id := int64(1); id <= 300; id++ {
		s := e.newSource(id)
		n := 1 + rng.IntN(20)
		if id%50 == 0 {
			n = 60
		}
		for range n {
			e.meas = append(e.meas, measurement{
				ID: int64(len(e.meas) + 1), Image: int32(rng.IntN(len(images))),
				FluxPeak: 10 + 5*rng.NormFloat64(), FluxPeakErr: 0.5, FluxInt: 12 + 5*rng.NormFloat64(), FluxIntErr: 0.7,
			})
			s.Rows = append(s.Rows, row{Meas: int32(len(e.meas) - 1)})
		}
	}
	return e, newPairInputs(images)
}

// TestPairsIndependentOfWorkersAndBatches: the rows, their order and the
// aggregates do not depend on the number of workers; row groups never
// exceed a batch, and sources with more pairs than a batch are split.
func TestPairsIndependentOfWorkersAndBatches(t *testing.T) {
	e, in := pairEngine()
	var want *recordingSink
	var wantRows []SourceRow
	for _, c := range []struct{ workers, batch int }{{1, 1 << 20}, {1, 1000}, {2, 1000}, {4, 1000}, {3, 7}} {
		sink := &recordingSink{}
		rows := make([]SourceRow, len(e.sources))
		n, err := e.computePairs(context.Background(), in, rows, 2, c.workers, c.batch, sink)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(sink.rows)) {
			t.Errorf("%+v: %d pairs counted, %d written", c, n, len(sink.rows))
		}
		prev := 0
		for _, g := range sink.groups {
			if g-prev > c.batch || g == prev {
				t.Fatalf("%+v: a row group of %d rows", c, g-prev)
			}
			prev = g
		}
		if prev != len(sink.rows) {
			t.Errorf("%+v: rows after the last row group", c)
		}
		if want == nil {
			want, wantRows = sink, rows
			continue
		}
		if !reflect.DeepEqual(sink.rows, want.rows) || !reflect.DeepEqual(rows, wantRows) {
			t.Errorf("%+v: rows or aggregates differ from one worker's", c)
		}
	}
	if len(want.groups) != 1 {
		t.Errorf("one large batch: %d row groups", len(want.groups))
	}
	// Every pair once, sources in id order, each source's pairs together.
	total := 0
	for _, s := range e.sources {
		total += len(s.Rows) * (len(s.Rows) - 1) / 2
	}
	if len(want.rows) != total {
		t.Errorf("%d pairs, want %d", len(want.rows), total)
	}
	for i := 1; i < len(want.rows); i++ {
		if want.rows[i].SourceID < want.rows[i-1].SourceID {
			t.Fatalf("row %d: source %d after %d", i, want.rows[i].SourceID, want.rows[i-1].SourceID)
		}
	}
	nonZero := 0
	for _, r := range wantRows {
		if r.VsAbsSignificantMaxPeak > 0 {
			nonZero++
		}
	}
	if nonZero == 0 {
		t.Error("no source has an aggregate")
	}
}

// TestPairMetricsSetting: with pair metrics the product holds every pair
// and the aggregates are set; without, there is no product and the
// aggregates are 0 (VAST's sources then lack the columns, which its
// database holds as 0). Products do not depend on num_workers.
func TestPairMetricsSetting(t *testing.T) {
	store := newStore(t)
	in := syntheticSurvey(t, store, 6, 200, 3)
	run := func(s Settings) domain.Products {
		t.Helper()
		res, err := Associator{Settings: &s}.Associate(context.Background(), store, in, discardLog{})
		if err != nil {
			t.Fatal(err)
		}
		return domain.Products{Artifacts: res.Artifacts}
	}
	on := DefaultSettings()
	on.PairMinAbsVs = 2
	on.Workers = 1
	withPairs := run(on)
	on.Workers = 3
	if p := run(on); !reflect.DeepEqual(p, withPairs) {
		t.Errorf("3 workers: products differ from 1 worker's\n%v\n%v", p.Artifacts, withPairs.Artifacts)
	}
	pairs := readProduct[PairRow](t, store, withPairs, MeasurementPairsProduct)
	sources := readProduct[SourceRow](t, store, withPairs, SourcesProduct)
	want := 0
	significant := 0
	for _, s := range sources {
		want += int(s.NMeas * (s.NMeas - 1) / 2)
		if s.VsAbsSignificantMaxPeak >= 2 && s.MAbsSignificantMaxPeak > 0 {
			significant++
		}
	}
	if len(pairs) != want || significant == 0 {
		t.Errorf("%d pairs (want %d), %d sources with aggregates", len(pairs), want, significant)
	}

	off := on
	off.PairMetrics = false
	without := run(off)
	if _, ok := pipeline.FindArtifact(without, MeasurementPairsProduct); ok {
		t.Error("measurement pairs written with pair metrics off")
	}
	for _, s := range readProduct[SourceRow](t, store, without, SourcesProduct) {
		if s.VsAbsSignificantMaxPeak != 0 || s.MAbsSignificantMaxPeak != 0 || s.VsAbsSignificantMaxInt != 0 || s.MAbsSignificantMaxInt != 0 {
			t.Fatalf("source %d has aggregates with pair metrics off: %+v", s.ID, s)
		}
	}
}
