package association

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/pipeline/forced"
	"github.com/piperun/piperun/runconfig"
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

// TestForcedMinSigmaIsStrict sets source_monitoring.min_sigma to the
// median significance of the forced measurements of a run (their source's
// first peak flux over the image's minimum rms): as in VAST, only the
// pairs strictly above it are measured.
func TestForcedMinSigmaIsStrict(t *testing.T) {
	store := newStore(t)
	cfg := monitoredConfig(t, "01", "02", "03", "04")
	p := processVAST(t, store, cfg, Associator{})
	sig := forcedSignificance(t, store, p)
	if len(sig) < 3 {
		t.Fatalf("%d forced measurements, want several", len(sig))
	}
	var values []float64
	for _, s := range sig {
		values = append(values, s)
	}
	slices.Sort(values)
	threshold := values[len(values)/2]
	var want []string
	for k, s := range sig {
		if s > threshold {
			want = append(want, k)
		}
	}
	const on = "  min_sigma: 3.0\n  edge_buffer_scale"
	if !strings.Contains(cfg.YAML, on) {
		t.Fatalf("no %q in the configuration", on)
	}
	cfg.YAML = strings.Replace(cfg.YAML, on, fmt.Sprintf("  min_sigma: %s\n  edge_buffer_scale", strconv.FormatFloat(threshold, 'g', -1, 64)), 1)
	p2 := processVAST(t, store, cfg, Associator{})
	got := slices.Collect(maps.Keys(forcedSignificance(t, store, p2)))
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || len(want) == len(sig) || !slices.Equal(got, want) {
		t.Errorf("min_sigma %v: forced measurements %v, want %v (significances %v)", threshold, got, want, sig)
	}
}

// forcedSignificance maps each forced measurement of p ("source S in
// image") to its source's first peak flux over the image's minimum rms.
func forcedSignificance(t *testing.T, store *artifacts.Store, p domain.Products) map[string]float64 {
	t.Helper()
	images := map[int64]pipeline.ImageRow{}
	for _, im := range readProduct[pipeline.ImageRow](t, store, p, pipeline.ImagesProduct) {
		images[im.ID] = im
	}
	meas := map[int64]pipeline.Measurement{}
	for _, m := range readAllMeasurements(t, store, p) {
		meas[m.ID] = m
	}
	first := map[int64]pipeline.Measurement{}
	assoc := readProduct[AssociationRow](t, store, p, AssociationsProduct)
	for _, a := range assoc {
		m, ok := meas[a.MeasID]
		if !ok {
			continue
		}
		if f, seen := first[a.SourceID]; !seen || images[m.ImageID].DateTime.Before(images[f.ImageID].DateTime) {
			first[a.SourceID] = m
		}
	}
	sourceOf := map[int64]int64{}
	for _, a := range assoc {
		sourceOf[a.MeasID] = a.SourceID
	}
	out := map[string]float64{}
	for _, r := range readForcedProducts(t, store, p) {
		src := sourceOf[r.ID]
		im := images[r.ImageID]
		out[fmt.Sprintf("source %d in %s", src, im.Name)] = first[src].FluxPeak / im.RMSMin
	}
	return out
}

// TestForcedExtractionInEpochMode groups two images into one epoch: as in
// VAST, a source is expected, per epoch, in the first image of the closest
// sky region only (with 01 and 03 in one epoch, never in 03, which shares
// 01's region), and is not measured in an epoch where selavy found it
// (with 01 and 02 in one epoch, the sources first found in 02 are not
// measured in 01).
func TestForcedExtractionInEpochMode(t *testing.T) {
	for _, tc := range []struct {
		epochs [3][]string // A, B, C
		second string      // the later image of epoch A
	}{
		{[3][]string{{"01", "03"}, {"02"}, {"04"}}, "epoch03.fits"},
		{[3][]string{{"01", "02"}, {"03"}, {"04"}}, "epoch02.fits"},
	} {
		t.Run(fmt.Sprint(tc.epochs), func(t *testing.T) {
			cfg := monitoredConfig(t, "01", "02", "03", "04")
			start, end := strings.Index(cfg.YAML, "inputs:\n"), strings.Index(cfg.YAML, "source_monitoring:\n")
			if start < 0 || end < start {
				t.Fatalf("no inputs before source_monitoring:\n%s", cfg.YAML)
			}
			var b strings.Builder
			b.WriteString("inputs:\n")
			for _, kind := range []struct{ key, suffix string }{{"image", ".fits"}, {"selavy", ".selavy.components.txt"}, {"noise", ".noiseMap.fits"}, {"background", ".meanMap.fits"}} {
				fmt.Fprintf(&b, "  %s:\n", kind.key)
				for i, ep := range tc.epochs {
					var paths []string
					for _, n := range ep {
						paths = append(paths, "data/epoch"+n+kind.suffix)
					}
					fmt.Fprintf(&b, "    %c: [%s]\n", 'A'+i, strings.Join(paths, ", "))
				}
			}
			parsed, err := runconfig.Parse([]byte(cfg.YAML[:start] + b.String() + cfg.YAML[end:]))
			if err != nil {
				t.Fatal(err)
			}
			store := newStore(t)
			p := processVAST(t, store, parsed.Domain(), Associator{})
			images := map[int64]pipeline.ImageRow{}
			for _, im := range readProduct[pipeline.ImageRow](t, store, p, pipeline.ImagesProduct) {
				images[im.ID] = im
			}
			meas := map[int64]pipeline.Measurement{}
			for _, m := range readAllMeasurements(t, store, p) {
				meas[m.ID] = m
			}
			epochs := map[int64]map[string]bool{}
			sourceOf := map[int64]int64{}
			for _, a := range readProduct[AssociationRow](t, store, p, AssociationsProduct) {
				sourceOf[a.MeasID] = a.SourceID
				if m, ok := meas[a.MeasID]; ok {
					if epochs[a.SourceID] == nil {
						epochs[a.SourceID] = map[string]bool{}
					}
					epochs[a.SourceID][images[m.ImageID].Epoch] = true
				}
			}
			forcedRows := readForcedProducts(t, store, p)
			if len(forcedRows) == 0 {
				t.Fatal("no forced measurements")
			}
			for _, r := range forcedRows {
				im := images[r.ImageID]
				src := sourceOf[r.ID]
				if im.Name == tc.second {
					t.Errorf("forced measurement %d of source %d in %s, the second image of epoch A's region", r.ID, src, im.Name)
				}
				if epochs[src][im.Epoch] {
					t.Errorf("forced measurement %d of source %d in %s, of epoch %s where selavy found it", r.ID, src, im.Name, im.Epoch)
				}
			}
			if p.Figures.NForcedMeasurements != len(forcedRows) {
				t.Errorf("figures count %d forced measurements, the products hold %d", p.Figures.NForcedMeasurements, len(forcedRows))
			}
		})
	}
}
