package association

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/pipeline"
	"github.com/piperun/piperun/runconfig"
)

// testLog keeps the job's log lines for failure messages.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) add(level, f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(f, a...))
}
func (l *testLog) Debugf(f string, a ...any) { l.add("DEBUG", f, a...) }
func (l *testLog) Infof(f string, a ...any)  { l.add("INFO", f, a...) }
func (l *testLog) Warnf(f string, a ...any)  { l.add("WARN", f, a...) }

// count is the number of lines starting with prefix.
func (l *testLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func newStore(t testing.TB) *artifacts.Store {
	t.Helper()
	s, err := artifacts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expectedConfig is expected/basic-association/config.yaml with its paths
// pointed at data/ (they are relative to VAST's repository), limited to
// the given epochs ("01", ...).
func expectedConfig(t testing.TB, vast string, epochs ...string) domain.RunConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vast, "expected", "basic-association", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "vast_pipeline/tests/data/", "data/"), "\n") {
		keep := true
		if strings.Contains(l, "data/epoch") {
			keep = slices.ContainsFunc(epochs, func(e string) bool { return strings.Contains(l, "data/epoch"+e+".") })
		}
		if keep {
			lines = append(lines, l)
		}
	}
	cfg, err := runconfig.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Domain()
}

func processVAST(t testing.TB, store *artifacts.Store, cfg domain.RunConfig, a pipeline.Associator) domain.Products {
	t.Helper()
	log := &testLog{}
	p, err := pipeline.Process(context.Background(), store, pipeline.Job{
		Run: "vast", ImagesRoot: vastdata.VASTDir(t), Config: cfg, Associate: a,
	}, log)
	if err != nil {
		t.Fatalf("process: %v\n%s", err, strings.Join(log.lines, "\n"))
	}
	return p
}

func readProduct[T any](t testing.TB, store *artifacts.Store, p domain.Products, name string) []T {
	t.Helper()
	a, ok := pipeline.FindArtifact(p, name)
	if !ok {
		t.Fatalf("no %s in %v", name, p.Artifacts)
	}
	rows, err := pipeline.ReadParquet[T](context.Background(), store, a.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func readExpected[T any](t testing.TB, vast, name string) []T {
	t.Helper()
	return readExpectedIn[T](t, filepath.Join(vast, "expected", "basic-association"), name)
}

// readExpectedIn reads a parquet file of VAST's in dir.
func readExpectedIn[T any](t testing.TB, dir, name string) []T {
	t.Helper()
	// parquet-go cannot read a file of no rows as pandas writes it.
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	f.Close()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if pf.NumRows() == 0 {
		return nil
	}
	rows, err := parquet.ReadFile[T](filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// relDiff is |a-b| relative to the larger magnitude (0 when equal).
func relDiff(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
}

// sourceKeys names each source by its sorted measurement ids, which is how
// sources of two runs over the same measurements are matched.
func sourceKeys(assoc []AssociationRow) map[int64]string {
	ms := map[int64][]int64{}
	for _, a := range assoc {
		ms[a.SourceID] = append(ms[a.SourceID], a.MeasID)
	}
	keys := map[int64]string{}
	for id, m := range ms {
		slices.Sort(m)
		keys[id] = fmt.Sprint(m)
	}
	return keys
}

// sourceMapping maps the source ids of got to those of want through their
// measurements, failing unless it is one to one and onto.
func sourceMapping(t testing.TB, got, want []AssociationRow) map[int64]int64 {
	t.Helper()
	gk, wk := sourceKeys(got), sourceKeys(want)
	byKey := map[string]int64{}
	for id, k := range wk {
		if other, dup := byKey[k]; dup {
			t.Fatalf("expected sources %d and %d have the same measurements %s", other, id, k)
		}
		byKey[k] = id
	}
	m := map[int64]int64{}
	for id, k := range gk {
		w, ok := byKey[k]
		if !ok {
			t.Errorf("source %d (measurements %s) has no counterpart", id, k)
			continue
		}
		m[id] = w
		delete(byKey, k)
	}
	for k, id := range byKey {
		t.Errorf("expected source %d (measurements %s) has no counterpart", id, k)
	}
	return m
}

// compareSources compares every column of the mapped sources, floats within
// tol relative (or loose[column] for the columns it names), and returns the
// largest relative difference per column.
// sourceColumnsSince2020 are the sources columns VAST added after it
// wrote the 2020 references, which those do not have.
var sourceColumnsSince2020 = []string{
	"max_flux_int", "min_flux_peak", "min_flux_int", "min_flux_peak_isl_ratio", "min_flux_int_isl_ratio",
	"vs_abs_significant_max_peak", "m_abs_significant_max_peak", "vs_abs_significant_max_int", "m_abs_significant_max_int",
}

// compareSources compares every column of the sources but those in skip.
func compareSources(t testing.TB, got, want []SourceRow, mapping map[int64]int64, tol float64, loose map[string]float64, skip []string) map[string]float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d sources, want %d", len(got), len(want))
	}
	wantByID := map[int64]SourceRow{}
	for _, w := range want {
		wantByID[w.ID] = w
	}
	worst := map[string]float64{}
	typ := reflect.TypeFor[SourceRow]()
	for _, g := range got {
		w, ok := wantByID[mapping[g.ID]]
		if !ok {
			continue
		}
		gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Name == "ID" {
				continue
			}
			col := strings.Split(f.Tag.Get("parquet"), ",")[0]
			if slices.Contains(skip, col) {
				continue
			}
			switch f.Type.Kind() {
			case reflect.Float64:
				d := relDiff(gv.Field(i).Float(), wv.Field(i).Float())
				worst[col] = max(worst[col], d)
				colTol := tol
				if l, ok := loose[col]; ok {
					colTol = l
				}
				if !(d <= colTol) {
					t.Errorf("source %d (expected %d): %s = %.17g, want %.17g (relative difference %.3g)", g.ID, w.ID, col, gv.Field(i).Float(), wv.Field(i).Float(), d)
				}
			default:
				if gv.Field(i).Interface() != wv.Field(i).Interface() {
					t.Errorf("source %d (expected %d): %s = %v, want %v", g.ID, w.ID, col, gv.Field(i).Interface(), wv.Field(i).Interface())
				}
			}
		}
	}
	return worst
}

// compareAssociations compares associations and relations under the
// mapping, d2d within tol relative and dr within drTol, and returns the
// largest relative differences of d2d and dr.
func compareAssociations(t testing.TB, got, want []AssociationRow, gotRel, wantRel []RelationRow, mapping map[int64]int64, tol, drTol float64) (float64, float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d associations, want %d", len(got), len(want))
	}
	type key struct{ src, meas int64 }
	wantBy := map[key]AssociationRow{}
	for _, w := range want {
		wantBy[key{w.SourceID, w.MeasID}] = w
	}
	worst, worstDR := 0.0, 0.0
	for _, g := range got {
		w, ok := wantBy[key{mapping[g.SourceID], g.MeasID}]
		if !ok {
			t.Errorf("association of measurement %d with source %d (expected %d) is not expected", g.MeasID, g.SourceID, mapping[g.SourceID])
			continue
		}
		d, dr := relDiff(g.D2D, w.D2D), relDiff(g.DR, w.DR)
		worst, worstDR = max(worst, d), max(worstDR, dr)
		if !(d <= tol) || !(dr <= drTol) {
			t.Errorf("measurement %d of source %d: d2d %.17g dr %g, want %.17g and %g", g.MeasID, g.SourceID, g.D2D, g.DR, w.D2D, w.DR)
		}
	}
	var gr, wr []string
	for _, r := range gotRel {
		gr = append(gr, fmt.Sprint(mapping[r.FromSourceID], "->", mapping[r.ToSourceID]))
	}
	for _, r := range wantRel {
		wr = append(wr, fmt.Sprint(r.FromSourceID, "->", r.ToSourceID))
	}
	slices.Sort(gr)
	slices.Sort(wr)
	if !slices.Equal(gr, wr) {
		t.Errorf("relations (mapped to expected ids) %v, want %v", gr, wr)
	}
	return worst, worstDR
}

// expectedAssociation is associations.parquet as VAST (pandas) writes it:
// nullable columns and the pandas index.
type expectedAssociation struct {
	SourceID int64   `parquet:"source_id,optional"`
	MeasID   int64   `parquet:"meas_id,optional"`
	D2D      float64 `parquet:"d2d,optional"`
	DR       float64 `parquet:"dr,optional"`
}

// TestParityWithVAST runs the processing on epochs 01-04 with the settings
// of expected/basic-association/config.yaml and compares sources,
// associations and relations with what VAST produced.
//
// One setting cannot be the one config.yaml states: VAST's associations
// include measurement 6 (epoch02 component_2a) at d2d 11.999995 arcsec from
// the source of epoch01 component_4a, the fork that makes sources 3 and 4
// related. Basic association only accepts a match within the radius, so
// the run that made expected/ used a radius of at least 12 arcsec, not 10
// (every radius from 12 to about 60 arcsec gives the same products). The
// test therefore uses the smallest whole radius that covers the expected
// d2d values; TestConfigRadiusIsHonoured checks what radius 10 gives.
func TestParityWithVAST(t *testing.T) {
	vast := vastdata.VASTDir(t)
	want := readExpected[SourceRow](t, vast, "sources.parquet")
	var wantAssoc []AssociationRow
	for _, a := range readExpected[expectedAssociation](t, vast, "associations.parquet") {
		wantAssoc = append(wantAssoc, AssociationRow(a))
	}
	wantRel := readExpected[RelationRow](t, vast, "relations.parquet")
	if len(want) != 7 || len(wantAssoc) != 21 || len(wantRel) != 2 {
		t.Fatalf("expected products have %d sources, %d associations, %d relations; want 7, 21, 2", len(want), len(wantAssoc), len(wantRel))
	}

	cfg := expectedConfig(t, vast, "01", "02", "03", "04")
	s, err := SettingsFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	maxD2D := 0.0
	for _, a := range wantAssoc {
		maxD2D = max(maxD2D, a.D2D)
	}
	if s.RadiusArcsec != 10 || math.Ceil(maxD2D) != 12 {
		t.Fatalf("config radius %g and largest expected d2d %g: the reasoning above no longer holds", s.RadiusArcsec, maxD2D)
	}
	s.RadiusArcsec = math.Ceil(maxD2D)
	store := newStore(t)
	p := processVAST(t, store, cfg, Associator{Settings: &s})

	got := readProduct[SourceRow](t, store, p, SourcesProduct)
	gotAssoc := readProduct[AssociationRow](t, store, p, AssociationsProduct)
	gotRel := readProduct[RelationRow](t, store, p, RelationsProduct)
	if p.Figures.NSources != len(got) {
		t.Errorf("figures: n_sources %d, sources.parquet has %d", p.Figures.NSources, len(got))
	}
	nNew := 0
	for _, r := range want {
		if r.New {
			nNew++
		}
	}
	if p.Figures.NNewSources != nNew {
		t.Errorf("figures: n_new_sources %d, want %d", p.Figures.NNewSources, nNew)
	}

	mapping := sourceMapping(t, gotAssoc, wantAssoc)
	worst := compareSources(t, got, want, mapping, 1e-6, nil, sourceColumnsSince2020)
	d2d, _ := compareAssociations(t, gotAssoc, wantAssoc, gotRel, wantRel, mapping, 1e-6, 0)
	cols := make([]string, 0, len(worst))
	for c := range worst {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, c := range cols {
		t.Logf("%-20s max relative difference %.3g", c, worst[c])
	}
	t.Logf("%-20s max relative difference %.3g", "associations d2d", d2d)
}

// TestConfigRadiusIsHonoured runs the parity inputs with config.yaml's
// radius of 10 arcsec: epoch02 component_2a (measurement 6), 12 arcsec from
// the nearest source, must then start a source of its own instead of
// forking one, and the other sources stay VAST's.
func TestConfigRadiusIsHonoured(t *testing.T) {
	vast := vastdata.VASTDir(t)
	store := newStore(t)
	p := processVAST(t, store, expectedConfig(t, vast, "01", "02", "03", "04"), Associator{})
	gotAssoc := readProduct[AssociationRow](t, store, p, AssociationsProduct)
	gotRel := readProduct[RelationRow](t, store, p, RelationsProduct)

	var wantAssoc []AssociationRow
	for _, a := range readExpected[expectedAssociation](t, vast, "associations.parquet") {
		if a.SourceID != 3 { // VAST's fork: the copy of measurement 4, and 6
			wantAssoc = append(wantAssoc, AssociationRow(a))
		}
	}
	wantAssoc = append(wantAssoc, AssociationRow{SourceID: 100, MeasID: 6})
	var got, want []string
	for _, k := range sourceKeys(gotAssoc) {
		got = append(got, k)
	}
	for _, k := range sourceKeys(wantAssoc) {
		want = append(want, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("sources by measurements %v, want %v", got, want)
	}
	if len(gotAssoc) != len(wantAssoc) {
		t.Errorf("%d associations, want %d", len(gotAssoc), len(wantAssoc))
	}
	if len(gotRel) != 0 {
		t.Errorf("relations %v, want none", gotRel)
	}
	if p.Figures.NNewSources != 3 {
		t.Errorf("n_new_sources %d, want 3 (VAST's 2 and measurement 6's)", p.Figures.NNewSources)
	}
}
