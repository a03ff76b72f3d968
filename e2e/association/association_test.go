package association

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/internal/testserver"
	"github.com/piperun/piperun/internal/vastdata"
	assoc "github.com/piperun/piperun/pipeline/association"
)

// config is a VAST run configuration over the given epochs of the shared
// test data, in that order.
func config(epochs ...string) string { return testserver.VASTConfig("association", epochs...) }

// products are a run's association products.
type products struct {
	sources   []assoc.SourceRow
	assocs    []assoc.AssociationRow
	relations []assoc.RelationRow
}

func download[T any](t *testing.T, in *instance, run, name string) []T {
	t.Helper()
	raw := in.must(http.StatusOK, http.MethodGet, "/api/v1/runs/"+run+"/products/"+name, nil, nil)
	rows, err := parquet.Read[T](bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("%s of run %s: %v", name, run, err)
	}
	return rows
}

func (in *instance) products(run string) products {
	in.t.Helper()
	return products{
		sources:   download[assoc.SourceRow](in.t, in, run, assoc.SourcesProduct),
		assocs:    download[assoc.AssociationRow](in.t, in, run, assoc.AssociationsProduct),
		relations: download[assoc.RelationRow](in.t, in, run, assoc.RelationsProduct),
	}
}

// mapping maps the source ids of a to those of b by the sources'
// measurements, failing unless it is one to one and onto.
func mapping(t *testing.T, a, b []assoc.AssociationRow) map[int64]int64 {
	t.Helper()
	keys := func(rows []assoc.AssociationRow) map[int64]string {
		ms := map[int64][]int64{}
		for _, r := range rows {
			ms[r.SourceID] = append(ms[r.SourceID], r.MeasID)
		}
		out := map[int64]string{}
		for id, m := range ms {
			slices.Sort(m)
			out[id] = fmt.Sprint(m)
		}
		return out
	}
	byKey := map[string]int64{}
	for id, k := range keys(b) {
		byKey[k] = id
	}
	m := map[int64]int64{}
	for id, k := range keys(a) {
		other, ok := byKey[k]
		if !ok {
			t.Fatalf("source %d (measurements %s) has no counterpart", id, k)
		}
		m[id] = other
		delete(byKey, k)
	}
	if len(byKey) > 0 {
		t.Fatalf("sources without counterpart: %v", byKey)
	}
	return m
}

// equalUnderMapping checks that two runs' products are the same once a's
// source ids are mapped to b's.
func equalUnderMapping(t *testing.T, a, b products) {
	t.Helper()
	m := mapping(t, a.assocs, b.assocs)
	src := func(rows []assoc.SourceRow, ids map[int64]int64) []string {
		var out []string
		for _, r := range rows {
			if ids != nil {
				r.ID = ids[r.ID]
			}
			out = append(out, fmt.Sprintf("%+v", r))
		}
		slices.Sort(out)
		return out
	}
	if g, w := src(a.sources, m), src(b.sources, nil); !slices.Equal(g, w) {
		t.Errorf("sources differ:\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	as := func(rows []assoc.AssociationRow, ids map[int64]int64) []string {
		var out []string
		for _, r := range rows {
			if ids != nil {
				r.SourceID = ids[r.SourceID]
			}
			out = append(out, fmt.Sprintf("%+v", r))
		}
		slices.Sort(out)
		return out
	}
	if g, w := as(a.assocs, m), as(b.assocs, nil); !slices.Equal(g, w) {
		t.Errorf("associations differ:\n%v\nwant\n%v", g, w)
	}
	rel := func(rows []assoc.RelationRow, ids map[int64]int64) []string {
		out := []string{}
		for _, r := range rows {
			if ids != nil {
				r.FromSourceID, r.ToSourceID = ids[r.FromSourceID], ids[r.ToSourceID]
			}
			out = append(out, fmt.Sprintf("%+v", r))
		}
		slices.Sort(out)
		return out
	}
	if g, w := rel(a.relations, m), rel(b.relations, nil); !slices.Equal(g, w) {
		t.Errorf("relations differ: %v, want %v", g, w)
	}
}

// TestAddThenRestore runs over epochs 01, 03 and 02, adds 04, restores,
// and checks that the association products after the restore are the
// pre-addition artifacts and equal to a fresh run's over 01, 03 and 02,
// while the addition itself kept the source ids and grew the sources.
func TestAddThenRestore(t *testing.T) {
	vast := vastdata.VASTDir(t)
	in := startServer(t, vast)

	in.must(http.StatusCreated, http.MethodPost, "/api/v1/runs", map[string]string{"name": "assoc", "config": config("01", "03", "02")}, nil)
	in.must(http.StatusAccepted, http.MethodPost, "/api/v1/runs/assoc/process", map[string]bool{}, nil)
	first := in.waitDone("assoc")
	before := in.products("assoc")
	if first.NSources == 0 || first.NSources != len(before.sources) {
		t.Fatalf("run figures: %d sources, sources.parquet has %d", first.NSources, len(before.sources))
	}
	for _, name := range []string{assoc.SourcesProduct, assoc.AssociationsProduct, assoc.RelationsProduct} {
		if !slices.ContainsFunc(first.Products, func(p product) bool { return p.Name == name }) {
			t.Fatalf("no %s among the run's products %v", name, first.Products)
		}
	}

	// Add epoch 04: add mode keeps the sources and their ids.
	in.must(http.StatusOK, http.MethodPut, "/api/v1/runs/assoc/config", map[string]string{"config": config("01", "03", "02", "04")}, nil)
	var proc struct {
		Mode string `json:"mode"`
	}
	in.must(http.StatusAccepted, http.MethodPost, "/api/v1/runs/assoc/process", map[string]bool{}, &proc)
	if proc.Mode != "add" {
		t.Fatalf("processing after adding epoch 04 is in %q mode, want add", proc.Mode)
	}
	added := in.waitDone("assoc")
	after := in.products("assoc")
	if added.NImages != 4 || added.NSources != len(after.sources) {
		t.Fatalf("after the addition: %d images, %d sources (sources.parquet has %d)", added.NImages, added.NSources, len(after.sources))
	}
	grown := map[int64]bool{}
	nMeas := map[int64]int64{}
	for _, s := range after.sources {
		nMeas[s.ID] = s.NMeas
	}
	for _, s := range before.sources {
		n, ok := nMeas[s.ID]
		if !ok {
			t.Errorf("source %d disappeared when epoch 04 was added", s.ID)
		}
		if n > s.NMeas {
			grown[s.ID] = true
		}
	}
	if len(grown) == 0 {
		t.Error("no source gained a measurement from epoch 04")
	}
	kept := map[assoc.AssociationRow]bool{}
	for _, a := range after.assocs {
		kept[a] = true
	}
	for _, a := range before.assocs {
		if !kept[a] {
			t.Errorf("association %+v was lost or changed by the addition", a)
		}
	}

	// Restore: the artifacts are the pre-addition ones.
	in.must(http.StatusAccepted, http.MethodPost, "/api/v1/runs/assoc/restore", map[string]bool{}, nil)
	restored := in.waitDone("assoc")
	if !slices.Equal(restored.Products, first.Products) {
		t.Fatalf("products after restore\n%v\nwant the pre-addition ones\n%v", restored.Products, first.Products)
	}
	if restored.NSources != first.NSources || restored.NNewSources != first.NNewSources {
		t.Errorf("figures after restore: %d sources (%d new), want %d (%d)", restored.NSources, restored.NNewSources, first.NSources, first.NNewSources)
	}

	// And they are what a fresh run over the same images makes.
	in.must(http.StatusCreated, http.MethodPost, "/api/v1/runs", map[string]string{"name": "fresh", "config": config("01", "03", "02")}, nil)
	in.must(http.StatusAccepted, http.MethodPost, "/api/v1/runs/fresh/process", map[string]bool{}, nil)
	fresh := in.waitDone("fresh")
	equalUnderMapping(t, in.products("assoc"), in.products("fresh"))
	if fresh.NSources != restored.NSources || fresh.NNewSources != restored.NNewSources {
		t.Errorf("fresh run: %d sources (%d new), restored run %d (%d)", fresh.NSources, fresh.NNewSources, restored.NSources, restored.NNewSources)
	}
}
