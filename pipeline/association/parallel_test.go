package association

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/runconfig"
)

// twoFieldSurvey stores a survey of two fields far apart (sky regions 1
// and 2), observed alternately, sources near each other within a field so
// that association makes relations, and returns the association input.
func twoFieldSurvey(t *testing.T, store *artifacts.Store, imagesPerField, sources int) pipeline.AssociationInput {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	type field struct{ ra, dec float64 }
	fields := []field{{150, -30}, {250, 10}}
	truths := make([][][2]float64, len(fields))
	for f, fc := range fields {
		for i := range sources {
			// Pairs of sources 12" apart: their measurements, scattered
			// by 3", sometimes swap or share a match.
			x := float64(i/2) * 60 / 3600
			y := float64(i%2) * 12 / 3600
			truths[f] = append(truths[f], [2]float64{fc.ra + x/math.Cos(fc.dec*degToRad), fc.dec + y})
		}
	}
	in := pipeline.AssociationInput{Job: pipeline.Job{Run: "two fields", ImagesRoot: t.TempDir()}}
	id := int64(1)
	start := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for im := range 2 * imagesPerField {
		f := im % 2
		var ms []pipeline.Measurement
		for _, tr := range truths[f] {
			unc := 1.0 / 3600
			ms = append(ms, pipeline.Measurement{
				ID: id, ImageID: int64(im + 1),
				RA:       tr[0] + 3.0/3600*rng.NormFloat64()/math.Cos(fields[f].dec*degToRad),
				Dec:      tr[1] + 3.0/3600*rng.NormFloat64(),
				FluxPeak: 10 + 3*rng.Float64(), FluxInt: 10 + 3*rng.Float64(), FluxPeakErr: 0.2, FluxIntErr: 0.3,
				SNR: 40, Compactness: 1, UncertaintyEW: unc, UncertaintyNS: unc, WeightEW: 1 / (unc * unc), WeightNS: 1 / (unc * unc),
			})
			id++
		}
		name := fmt.Sprintf("field%d-%03d.fits", f+1, im+1)
		a, err := pipeline.PutParquet(context.Background(), store, pipeline.MeasurementsProduct(name), ms)
		if err != nil {
			t.Fatal(err)
		}
		in.Images = append(in.Images, pipeline.ImageProducts{
			Image: pipeline.ImageRow{
				ID: int64(im + 1), SkyRegID: int64(f + 1), Name: name, Path: name, DateTime: start.Add(time.Duration(im) * time.Hour),
				RA: fields[f].ra, Dec: fields[f].dec, FOVBMin: 1, NMeas: int64(len(ms)), RMSMin: math.NaN(),
				BeamBMaj: 15.0 / 3600, BeamBMin: 12.0 / 3600,
			},
			Measurements: a, New: true,
		})
	}
	return in
}

// products are one association's products, read back.
type products struct {
	sources []SourceRow
	assoc   []AssociationRow
	rels    []RelationRow
	pairs   []PairRow
	raw     domain.Products
}

func associateWith(t *testing.T, store *artifacts.Store, in pipeline.AssociationInput, s Settings) products {
	t.Helper()
	log := &testLog{}
	res, err := Associator{Settings: &s}.Associate(context.Background(), store, in, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.Parallel && log.count("INFO parallel association: 2 groups") != 1 {
		t.Errorf("no parallel association log line: %q", log.lines)
	}
	p := domain.Products{Artifacts: res.Artifacts}
	return products{
		sources: readProduct[SourceRow](t, store, p, SourcesProduct),
		assoc:   readProduct[AssociationRow](t, store, p, AssociationsProduct),
		rels:    readProduct[RelationRow](t, store, p, RelationsProduct),
		pairs:   readProduct[PairRow](t, store, p, MeasurementPairsProduct),
		raw:     p,
	}
}

// renumbered gives the products with their source ids replaced by ids.
func (p products) renumbered(ids map[int64]int64) products {
	out := products{}
	for _, r := range p.sources {
		r.ID = ids[r.ID]
		out.sources = append(out.sources, r)
	}
	for _, a := range p.assoc {
		a.SourceID = ids[a.SourceID]
		out.assoc = append(out.assoc, a)
	}
	for _, r := range p.rels {
		out.rels = append(out.rels, RelationRow{ids[r.FromSourceID], ids[r.ToSourceID]})
	}
	for _, r := range p.pairs {
		r.SourceID = ids[r.SourceID]
		out.pairs = append(out.pairs, r)
	}
	slices.SortFunc(out.sources, func(a, b SourceRow) int { return int(a.ID - b.ID) })
	slices.SortStableFunc(out.assoc, func(a, b AssociationRow) int { return int(a.SourceID - b.SourceID) })
	slices.SortFunc(out.rels, func(a, b RelationRow) int {
		return int(cmpOr(a.FromSourceID-b.FromSourceID, a.ToSourceID-b.ToSourceID))
	})
	slices.SortStableFunc(out.pairs, func(a, b PairRow) int { return int(a.SourceID - b.SourceID) })
	return out
}

func cmpOr(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

// TestParallelAssociationEqualsSerial: with source_association.parallel
// the two fields are associated apart and the products are the serial
// ones but for the source ids, which VAST renumbers field by field: the
// first group's sources first, each group's in the order it made them.
// The products do not depend on the number of workers.
func TestParallelAssociationEqualsSerial(t *testing.T) {
	for _, method := range []string{runconfig.MethodBasic, runconfig.MethodAdvanced, runconfig.MethodDeRuiter} {
		t.Run(method, func(t *testing.T) {
			store := newStore(t)
			in := twoFieldSurvey(t, store, 4, 30)
			s := DefaultSettings()
			s.Method = method
			s.PairMinAbsVs = 1
			serial := associateWith(t, store, in, s)
			if len(serial.rels) == 0 {
				t.Fatal("the survey makes no relations: the test would not check their renumbering")
			}
			s.Parallel = true
			s.Workers = 1
			parallel := associateWith(t, store, in, s)
			s.Workers = 2
			if p2 := associateWith(t, store, in, s); !reflect.DeepEqual(p2.raw, parallel.raw) {
				t.Errorf("2 workers: products differ from 1 worker's")
			}

			// VAST's ids: the serial sources of field 1, then of field 2,
			// each field's in serial id order.
			field := map[int64]int{}
			imageOf := func(meas int64) int { return int((meas-1)/30) % 2 }
			for _, a := range serial.assoc {
				field[a.SourceID] = imageOf(a.MeasID) + 1
			}
			var order []int64
			for f := 1; f <= 2; f++ {
				for _, r := range serial.sources {
					if field[r.ID] == f {
						order = append(order, r.ID)
					}
				}
			}
			ids := map[int64]int64{}
			for i, id := range order {
				ids[id] = int64(i + 1)
			}
			want := serial.renumbered(ids)
			got := parallel.renumbered(map[int64]int64(identity(parallel.sources)))
			for name, pair := range map[string][2]any{
				"sources": {got.sources, want.sources}, "associations": {got.assoc, want.assoc},
				"relations": {got.rels, want.rels}, "pairs": {got.pairs, want.pairs},
			} {
				if !reflect.DeepEqual(pair[0], pair[1]) {
					t.Errorf("%s differ from the serial ones renumbered", name)
				}
			}
			if ids[serial.sources[0].ID] == serial.sources[0].ID && reflect.DeepEqual(parallel.raw, serial.raw) {
				t.Error("parallel association kept the serial ids")
			}
		})
	}
}

func identity(rows []SourceRow) map[int64]int64 {
	m := map[int64]int64{}
	for _, r := range rows {
		m[r.ID] = r.ID
	}
	return m
}

// TestSkyRegionGroups follows VAST's grouping: overlap is within 1.1
// times a region's radius, groups are closed under it, and a region
// reached from a later group belongs to it.
func TestSkyRegionGroups(t *testing.T) {
	im := func(region int64, ra, radius float64) pipeline.ImageRow {
		return pipeline.ImageRow{SkyRegID: region, RA: ra, Dec: 0, FOVBMin: radius}
	}
	images := []pipeline.ImageRow{
		im(1, 10, 1), im(2, 11.05, 1), // 1.05° apart: within 1.1 x 1°
		im(3, 50, 1), im(1, 10, 1),
		im(4, 12.3, 1.2), // reaches 2 (1.25° < 1.32°) but 2 does not reach it
		im(5, 100, 1),
	}
	got := skyRegionGroups(images)
	// Region 4's group is started after 1's: it takes 2, and 1 with it,
	// since its closure reaches them; VAST's later assignment wins.
	want := [][]int{{2}, {0, 1, 3, 4}, {5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
}
