package association

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/runconfig"
)

func addVAST(t *testing.T, store *artifacts.Store, cfg domain.RunConfig, prev domain.Products) domain.Products {
	t.Helper()
	log := &testLog{}
	p, err := pipeline.Process(context.Background(), store, pipeline.Job{
		Run: "vast", ImagesRoot: vastdata.VASTDir(t), Config: cfg, Previous: &prev, Add: true, Associate: Associator{},
	}, log)
	if err != nil {
		t.Fatalf("add: %v\n%s", err, strings.Join(log.lines, "\n"))
	}
	return p
}

func digest(t *testing.T, p domain.Products, name string) string {
	t.Helper()
	a, ok := pipeline.FindArtifact(p, name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	return a.Digest
}

// In add mode the pairs of every source are computed again, as in VAST.
var associationProducts = []string{SourcesProduct, AssociationsProduct, RelationsProduct, MeasurementPairsProduct}

// methodSettings are the settings of VAST's reference runs, one per
// method (basic at 12 arcsec, the smallest radius with the parity data's
// fork).
func methodSettings() map[string]Settings {
	basic := DefaultSettings()
	basic.RadiusArcsec = 12
	advanced := DefaultSettings()
	advanced.Method, advanced.RadiusArcsec = runconfig.MethodAdvanced, 15
	deRuiter := DefaultSettings()
	deRuiter.Method, deRuiter.DeRuiterRadius, deRuiter.DeRuiterBeamwidthLimit = runconfig.MethodDeRuiter, 5.68, 2
	return map[string]Settings{"basic": basic, "advanced": advanced, "deruiter": deRuiter}
}

// TestAddingLaterImagesContinuesTheRun: with every method, adding images
// later than all the run's images gives exactly (byte for byte) the
// products of a run over all of them, since association goes in time
// order either way (as in VAST, whose add mode rebuilds the sources from
// the previous products and associates only the new images). Both one
// image (epoch04) and several (epochs 02-04, the steps with forks and
// many-to-one matches) are added.
func TestAddingLaterImagesContinuesTheRun(t *testing.T) {
	vast := vastdata.VASTDir(t)
	all := []string{"01", "02", "03", "04"}
	for method, s := range methodSettings() {
		for _, before := range [][]string{all[:3], all[:1]} {
			t.Run(fmt.Sprintf("%s after %v", method, before), func(t *testing.T) {
				store := newStore(t)
				first := processVAST(t, store, expectedConfig(t, vast, before...), Associator{Settings: &s})
				log := &testLog{}
				added, err := pipeline.Process(context.Background(), store, pipeline.Job{
					Run: "vast", ImagesRoot: vast, Config: expectedConfig(t, vast, all...),
					Previous: &first, Add: true, Associate: Associator{Settings: &s},
				}, log)
				if err != nil {
					t.Fatal(err)
				}
				fresh := processVAST(t, store, expectedConfig(t, vast, all...), Associator{Settings: &s})
				for _, name := range associationProducts {
					if digest(t, added, name) != digest(t, fresh, name) {
						t.Errorf("%s after adding %v differs from a fresh run's", name, all[len(before):])
					}
				}
				if added.Figures != fresh.Figures {
					t.Errorf("figures %+v, want %+v", added.Figures, fresh.Figures)
				}
				again := processVAST(t, store, expectedConfig(t, vast, before...), Associator{Settings: &s})
				for _, name := range associationProducts {
					if digest(t, again, name) != digest(t, first, name) {
						t.Errorf("%s: two runs over the same inputs differ", name)
					}
				}
			})
		}
	}
}

// TestAddModeAssociatesOnlyTheNewImages adds an image earlier than the
// last one with every method: as in VAST's add mode, only its measurements
// are associated, against the existing sources, whose ids and earlier
// associations (with their d2d and dr) all stay.
func TestAddModeAssociatesOnlyTheNewImages(t *testing.T) {
	vast := vastdata.VASTDir(t)
	for method, s := range methodSettings() {
		t.Run(method, func(t *testing.T) {
			store := newStore(t)
			before := processVAST(t, store, expectedConfig(t, vast, "01", "02", "04"), Associator{Settings: &s})
			log := &testLog{}
			after, err := pipeline.Process(context.Background(), store, pipeline.Job{
				Run: "vast", ImagesRoot: vast, Config: expectedConfig(t, vast, "01", "02", "03", "04"),
				Previous: &before, Add: true, Associate: Associator{Settings: &s},
			}, log)
			if err != nil {
				t.Fatal(err)
			}
			oldAssoc := readProduct[AssociationRow](t, store, before, AssociationsProduct)
			newAssoc := readProduct[AssociationRow](t, store, after, AssociationsProduct)
			type key struct{ s, m int64 }
			now := map[key]AssociationRow{}
			for _, a := range newAssoc {
				now[key{a.SourceID, a.MeasID}] = a
			}
			for _, a := range oldAssoc {
				if n, ok := now[key{a.SourceID, a.MeasID}]; !ok || n != a {
					t.Errorf("association %+v lost or changed", a)
				}
				delete(now, key{a.SourceID, a.MeasID})
			}
			// Epoch03's measurements are 17 to 20 in this run (after
			// epoch04's); sources forked for them copy older ones.
			nOld := int64(len(readProduct[SourceRow](t, store, before, SourcesProduct)))
			seen := map[int64]bool{}
			for k, a := range now {
				if a.MeasID >= 17 {
					seen[a.MeasID] = true
					continue
				}
				if k.s <= nOld {
					t.Errorf("new association %+v of an old measurement with an old source", a)
				}
			}
			if len(seen) != 4 {
				t.Errorf("epoch03 measurements associated: %v, want 17 to 20", seen)
			}
		})
	}
}

// TestAddModeKeepsSourceIDs adds an image earlier than the last one: only
// its measurements are associated, against the existing sources, whose
// ids and earlier associations stay while their metrics change.
func TestAddModeKeepsSourceIDs(t *testing.T) {
	vast := vastdata.VASTDir(t)
	store := newStore(t)
	before := processVAST(t, store, expectedConfig(t, vast, "01", "02", "04"), Associator{})
	after := addVAST(t, store, expectedConfig(t, vast, "01", "02", "03", "04"), before)

	oldSrc := readProduct[SourceRow](t, store, before, SourcesProduct)
	newSrc := readProduct[SourceRow](t, store, after, SourcesProduct)
	oldAssoc := readProduct[AssociationRow](t, store, before, AssociationsProduct)
	newAssoc := readProduct[AssociationRow](t, store, after, AssociationsProduct)

	// Epoch03 repeats epoch01's positions: its 4 measurements (ids 17 to
	// 20 in this run, after epoch04's) join the 4 sources of epoch01.
	byID := map[int64]SourceRow{}
	for _, r := range newSrc {
		byID[r.ID] = r
	}
	if len(newSrc) != len(oldSrc) {
		t.Errorf("%d sources after the addition, want the %d of before", len(newSrc), len(oldSrc))
	}
	grown := 0
	for _, o := range oldSrc {
		n, ok := byID[o.ID]
		if !ok {
			t.Errorf("source %d disappeared", o.ID)
			continue
		}
		if n.NMeas == o.NMeas+1 {
			grown++
			if n.AvgFluxPeak == o.AvgFluxPeak && n.WavgRA == o.WavgRA {
				t.Errorf("source %d gained a measurement but kept its metrics", o.ID)
			}
		} else if n.NNeighbourDist = o.NNeighbourDist; n != o { // neighbours may move
			t.Errorf("source %d changed without a new measurement:\n%+v\n%+v", o.ID, o, n)
		}
	}
	if grown != 4 {
		t.Errorf("%d sources gained a measurement, want 4", grown)
	}
	// The earlier associations are all still there, with their d2d.
	type key struct{ s, m int64 }
	kept := map[key]float64{}
	for _, a := range newAssoc {
		kept[key{a.SourceID, a.MeasID}] = a.D2D
	}
	for _, a := range oldAssoc {
		if d, ok := kept[key{a.SourceID, a.MeasID}]; !ok || d != a.D2D {
			t.Errorf("association %+v lost or changed", a)
		}
	}
	var added []int64
	for _, a := range newAssoc {
		if _, ok := kept[key{a.SourceID, a.MeasID}]; ok && !slices.ContainsFunc(oldAssoc, func(o AssociationRow) bool { return o.SourceID == a.SourceID && o.MeasID == a.MeasID }) {
			added = append(added, a.MeasID)
		}
	}
	slices.Sort(added)
	if want := []int64{17, 18, 19, 20}; !slices.Equal(added, want) {
		t.Errorf("new associations of measurements %v, want %v", added, want)
	}
}

func TestEpochModeAssociatesEachEpochAsOneStep(t *testing.T) {
	vast := vastdata.VASTDir(t)
	files := func(kind string, epochs ...string) string {
		var b strings.Builder
		for _, e := range epochs {
			fmt.Fprintf(&b, "      - data/epoch%s.%s\n", e, kind)
		}
		return b.String()
	}
	var y strings.Builder
	y.WriteString("inputs:\n")
	for _, k := range []struct{ key, kind string }{{"image", "fits"}, {"selavy", "selavy.components.txt"}, {"noise", "noiseMap.fits"}, {"background", "meanMap.fits"}} {
		fmt.Fprintf(&y, "  %s:\n    a:\n%s    b:\n%s    c:\n%s", k.key, files(k.kind, "01", "03"), files(k.kind, "02"), files(k.kind, "04"))
	}
	cfg, err := runconfig.Parse([]byte(y.String()))
	if err != nil {
		t.Fatal(err)
	}
	store := newStore(t)
	p := processVAST(t, store, cfg.Domain(), Associator{})
	got := readProduct[AssociationRow](t, store, p, AssociationsProduct)

	// Epoch a's two images have the same sources at the same positions:
	// epoch03's measurements (ids 12 to 15) are duplicates of epoch01's
	// and are left out; the sources are then those of a run over epochs
	// 01, 02 and 04.
	plain := newStore(t)
	want := readProduct[AssociationRow](t, plain, processVAST(t, plain, expectedConfig(t, vast, "01", "02", "04"), Associator{}), AssociationsProduct)
	// Images are numbered in time order: epoch04's measurements are 16 to
	// 20 in the epoch mode run, 12 to 16 in the plain one.
	renumber := map[int64]int64{12: 16, 13: 17, 14: 18, 15: 19, 16: 20}
	for i := range want {
		if id, ok := renumber[want[i].MeasID]; ok {
			want[i].MeasID = id
		}
	}
	gk, wk := sortedKeys(sourceKeys(got)), sortedKeys(sourceKeys(want))
	if !slices.Equal(gk, wk) {
		t.Errorf("epoch mode sources %v, want %v", gk, wk)
	}
}

func sortedKeys(m map[int64]string) []string {
	var out []string
	for _, k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestUnsupportedSettingsFail: settings given directly (the configuration
// rejects these itself) with an unknown method or a NaN limit fail the
// association with the package's sentinel.
func TestUnsupportedSettingsFail(t *testing.T) {
	vast := vastdata.VASTDir(t)
	cfg := expectedConfig(t, vast, "01")
	for _, tc := range []struct {
		name string
		edit func(*Settings)
		want error
	}{
		{"unknown method", func(s *Settings) { s.Method = "nearest" }, ErrUnsupportedMethod},
		{"NaN radius", func(s *Settings) { s.Method = runconfig.MethodAdvanced; s.RadiusArcsec = math.NaN() }, ErrInvalidSettings},
		{"negative de Ruiter radius", func(s *Settings) { s.Method = runconfig.MethodDeRuiter; s.DeRuiterRadius = -1 }, ErrInvalidSettings},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSettings()
			tc.edit(&s)
			store := newStore(t)
			_, err := pipeline.Process(context.Background(), store, pipeline.Job{
				Run: "vast", ImagesRoot: vast, Config: cfg, Associate: Associator{Settings: &s},
			}, &testLog{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}
