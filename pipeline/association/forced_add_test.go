package association

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/pipeline/forced"
)

// monitoredConfig is the basic test configuration at 15″ over the given
// epochs with source monitoring on.
func monitoredConfig(t *testing.T, epochs ...string) domain.RunConfig {
	t.Helper()
	vast := vastdata.VASTDir(t)
	cfg := expectedConfig(t, vast, epochs...)
	cfg.YAML = strings.Replace(cfg.YAML, "  radius: 10.0\n", "  radius: 15.0\n", 1)
	return monitored(t, cfg, vastdata.VASTFile(t, "expected", "current-vast", "basic-r15-forced", "config.yaml"))
}

// forcedByProduct reads every forced product of p.
func forcedByProduct(t *testing.T, store *artifacts.Store, p domain.Products) map[string][]pipeline.Measurement {
	t.Helper()
	out := map[string][]pipeline.Measurement{}
	for _, r := range readForcedProducts(t, store, p) {
		out[r.product] = append(out[r.product], r.Measurement)
	}
	return out
}

// addMonitored processes before, then adds the images of all.
func addMonitored(t *testing.T, store *artifacts.Store, before, all []string) (domain.Products, domain.Products) {
	t.Helper()
	first := processVAST(t, store, monitoredConfig(t, before...), Associator{})
	log := &testLog{}
	added, err := pipeline.Process(context.Background(), store, pipeline.Job{
		Run: "vast", ImagesRoot: vastdata.VASTDir(t), Config: monitoredConfig(t, all...), Previous: &first, Add: true, Associate: Associator{},
	}, log)
	if err != nil {
		t.Fatalf("add: %v\n%s", err, strings.Join(log.lines, "\n"))
	}
	return first, added
}

// checkAddedForced checks VAST's add-mode rules on the forced products of
// an addition: every previous forced product is kept, its rows first and
// unchanged; every other forced measurement is in a new image or belongs
// to a source the addition made; ids are unique across the run; the
// figures count the forced rows, which the sources count too. It returns
// the rows the addition made, by product.
func checkAddedForced(t *testing.T, store *artifacts.Store, before, after domain.Products, newImages []string) map[string][]pipeline.Measurement {
	t.Helper()
	prev, now := forcedByProduct(t, store, before), forcedByProduct(t, store, after)
	oldSources := map[int64]bool{}
	for _, s := range readProduct[SourceRow](t, store, before, SourcesProduct) {
		oldSources[s.ID] = true
	}
	sourceOf := map[int64]int64{}
	for _, a := range readProduct[AssociationRow](t, store, after, AssociationsProduct) {
		sourceOf[a.MeasID] = a.SourceID
	}
	made := map[string][]pipeline.Measurement{}
	for name, rows := range prev {
		got := now[name]
		if len(got) < len(rows) || !reflect.DeepEqual(got[:len(rows)], rows) {
			t.Errorf("%s: the previous run's rows are not kept first and unchanged", name)
			continue
		}
		if len(got) == len(rows) {
			a, _ := pipeline.FindArtifact(before, name)
			b, _ := pipeline.FindArtifact(after, name)
			if a.Digest != b.Digest {
				t.Errorf("%s: unchanged rows, yet a new product", name)
			}
		}
	}
	ids := map[int64]bool{}
	maxPrevID := int64(0)
	for _, m := range readAllMeasurements(t, store, before) {
		maxPrevID = max(maxPrevID, m.ID)
	}
	total := 0
	for name, rows := range now {
		total += len(rows)
		for i, m := range rows {
			if ids[m.ID] {
				t.Errorf("%s: id %d used twice", name, m.ID)
			}
			ids[m.ID] = true
			if i < len(prev[name]) {
				continue
			}
			made[name] = append(made[name], m)
			if m.ID <= maxPrevID {
				t.Errorf("%s: new forced measurement %d is numbered among the previous run's (up to %d)", name, m.ID, maxPrevID)
			}
			src, ok := sourceOf[m.ID]
			if !ok {
				t.Errorf("%s: forced measurement %d is in no association", name, m.ID)
			}
			inNew := slices.ContainsFunc(newImages, func(im string) bool { return name == ForcedMeasurementsProduct(im) })
			if !inNew && oldSources[src] {
				t.Errorf("%s: forced measurement %d of source %d, which the previous run had, in a previous image", name, m.ID, src)
			}
		}
	}
	for _, m := range readAllMeasurements(t, store, after) {
		if !m.Forced && ids[m.ID] {
			t.Errorf("selavy measurement %d has a forced measurement's id", m.ID)
		}
	}
	nForced := 0
	for _, s := range readProduct[SourceRow](t, store, after, SourcesProduct) {
		nForced += int(s.NMeasForced)
	}
	if after.Figures.NForcedMeasurements != total || nForced != total {
		t.Errorf("figures count %d forced measurements, the sources %d, the products hold %d", after.Figures.NForcedMeasurements, nForced, total)
	}
	return made
}

// readAllMeasurements reads every selavy measurements product of p.
func readAllMeasurements(t *testing.T, store *artifacts.Store, p domain.Products) []pipeline.Measurement {
	t.Helper()
	var out []pipeline.Measurement
	for _, a := range p.Artifacts {
		if strings.HasPrefix(a.Name, "measurements/") {
			out = append(out, readProduct[pipeline.Measurement](t, store, p, a.Name)...)
		}
	}
	return out
}

// TestAddModeForcedExtractionOfALaterImage processes epochs 01-03 with
// monitoring and adds 04. No source is new in 04, so the previous images'
// forced products stay as they were (same digests), and 04's are those of
// a run over all four images: the sources missing from it are measured at
// the same positions either way (their positions come from 01-03).
func TestAddModeForcedExtractionOfALaterImage(t *testing.T) {
	store := newStore(t)
	before, after := addMonitored(t, store, []string{"01", "02", "03"}, []string{"01", "02", "03", "04"})
	made := checkAddedForced(t, store, before, after, []string{"epoch04.fits"})
	for name := range made {
		if name != ForcedMeasurementsProduct("epoch04.fits") {
			t.Errorf("the addition made forced measurements in %s", name)
		}
	}
	fresh := processVAST(t, store, monitoredConfig(t, "01", "02", "03", "04"), Associator{})
	name := ForcedMeasurementsProduct("epoch04.fits")
	want := forcedByProduct(t, store, fresh)[name]
	got := made[name]
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("%d forced measurements in epoch04, a run over all images %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.RA != w.RA || g.Dec != w.Dec || g.FluxInt != w.FluxInt || g.FluxIntErr != w.FluxIntErr || g.IslandID != w.IslandID || g.Name != w.Name {
			t.Errorf("epoch04 forced measurement %d: %+v, a run over all images %+v", i, g, w)
		}
	}
	if digest(t, after, SourcesProduct) == digest(t, before, SourcesProduct) {
		t.Error("the sources did not change with the addition")
	}
}

// TestAddModeForcedExtractionOfAnEarlierImage processes epochs 01, 03 and
// 04 with monitoring and adds 02, where two sources first appear: as VAST's
// add mode does, every source missing from 02 is measured there, and the
// two new sources in the previous images, and nothing else. The expected
// pairs are derived from the products: the sources' selavy images, their
// first detection's peak flux and the images' minimum rms (one sky region
// covers every source).
func TestAddModeForcedExtractionOfAnEarlierImage(t *testing.T) {
	store := newStore(t)
	before, after := addMonitored(t, store, []string{"01", "03", "04"}, []string{"01", "02", "03", "04"})
	made := checkAddedForced(t, store, before, after, []string{"epoch02.fits"})

	images := readProduct[pipeline.ImageRow](t, store, after, pipeline.ImagesProduct)
	slices.SortFunc(images, func(a, b pipeline.ImageRow) int { return a.DateTime.Compare(b.DateTime) })
	imageIdx := map[int64]int{}
	for i, im := range images {
		imageIdx[im.ID] = i
	}
	meas := map[int64]pipeline.Measurement{}
	for _, m := range readAllMeasurements(t, store, after) {
		meas[m.ID] = m
	}
	oldSources := map[int64]bool{}
	for _, s := range readProduct[SourceRow](t, store, before, SourcesProduct) {
		oldSources[s.ID] = true
	}
	selavy := map[int64][]pipeline.Measurement{}
	for _, a := range readProduct[AssociationRow](t, store, after, AssociationsProduct) {
		if m, ok := meas[a.MeasID]; ok {
			selavy[a.SourceID] = append(selavy[a.SourceID], m)
		}
	}
	var want []string
	newSources := 0
	for src, ms := range selavy {
		if !oldSources[src] {
			newSources++
		}
		first := slices.MinFunc(ms, func(a, b pipeline.Measurement) int { return imageIdx[a.ImageID] - imageIdx[b.ImageID] })
		for _, im := range images {
			if slices.ContainsFunc(ms, func(m pipeline.Measurement) bool { return m.ImageID == im.ID }) {
				continue
			}
			if im.Name != "epoch02.fits" && oldSources[src] {
				continue
			}
			if first.FluxPeak/im.RMSMin > 3 {
				want = append(want, fmt.Sprintf("source %d in %s", src, im.Name))
			}
		}
	}
	sourceOf := map[int64]int64{}
	for _, a := range readProduct[AssociationRow](t, store, after, AssociationsProduct) {
		sourceOf[a.MeasID] = a.SourceID
	}
	var got []string
	for name, rows := range made {
		for _, m := range rows {
			im := images[imageIdx[m.ImageID]].Name
			if ForcedMeasurementsProduct(im) != name {
				t.Errorf("forced measurement %d of image %s is in %s", m.ID, im, name)
			}
			got = append(got, fmt.Sprintf("source %d in %s", sourceOf[m.ID], im))
		}
	}
	// A pair may be left out only when its fit is unusable (epoch04 has
	// NaN pixels near one source), which the engine says on its own.
	rows := map[int64]SourceRow{}
	for _, s := range readProduct[SourceRow](t, store, after, SourcesProduct) {
		rows[s.ID] = s
	}
	var unusable []string
	for _, w := range want {
		if slices.Contains(got, w) {
			continue
		}
		var src int64
		var image string
		if _, err := fmt.Sscanf(w, "source %d in %s", &src, &image); err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(vastdata.VASTDir(t), "data", strings.TrimSuffix(image, ".fits"))
		im, err := forced.Open(base+".fits", base+".meanMap.fits", base+".noiseMap.fits")
		if err != nil {
			t.Fatal(err)
		}
		res, err := im.Measure(context.Background(), []forced.Position{{RA: rows[src].WavgRA, Dec: rows[src].WavgDec}}, forced.Options{ClusterThreshold: 3, EdgeBufferScale: 1.2})
		im.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Usable() {
			t.Errorf("%s: no forced measurement, though its fit is usable: %+v", w, res[0])
		}
		unusable = append(unusable, w)
	}
	slices.Sort(got)
	slices.Sort(want)
	t.Logf("forced measurements made: %v; unusable fits: %v", got, unusable)
	if newSources == 0 || len(got) == 0 || len(got)+len(unusable) != len(want) {
		t.Errorf("the addition (%d new sources) made forced measurements\n%v\nwant\n%v", newSources, got, want)
	}
	// Restoring swaps the manifest back: the pre-addition forced products
	// are still whole in the store, whatever the addition wrote.
	for _, a := range before.Artifacts {
		if err := store.Verify(context.Background(), a.Digest, a.Size); err != nil {
			t.Errorf("pre-addition %s: %v", a.Name, err)
		}
	}
}
