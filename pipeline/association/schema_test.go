package association

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/piperun/piperun/artifacts"
	"github.com/piperun/piperun/internal/vastdata"
	"github.com/piperun/piperun/pipeline"
)

// columns lists a Parquet file's columns as "name kind logical-type", in
// order,
// leaving out pandas' index column.
func columns(t *testing.T, data []byte) []string {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range f.Schema().Fields() {
		if c.Name() == "__index_level_0__" {
			continue
		}
		typ := c.Type().Kind().String()
		if lt := c.Type().LogicalType(); lt != nil {
			typ += " " + lt.String()
		}
		out = append(out, c.Name()+" "+typ)
	}
	return out
}

func artifactBytes(t *testing.T, store *artifacts.Store, digest string) []byte {
	t.Helper()
	rc, err := store.Open(digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProductSchemasMatchVAST checks that sources, associations and
// relations have VAST's column names, order and types, so that tools
// reading VAST runs read ours (pandas' index column aside). Sources have
// the columns of current VAST's sources.csv, in its order but with id last
// (VAST writes id as the parquet index, which pandas puts last), with the
// 2020 files' types for the columns those have and doubles for the rest;
// measurement pairs have the columns of current VAST's
// measurement_pairs.csv, fluxes and metrics as 32-bit floats.
func TestProductSchemasMatchVAST(t *testing.T) {
	vast := vastdata.VASTDir(t)
	store := newStore(t)
	p := processVAST(t, store, expectedConfig(t, vast, "01", "02"), Associator{})
	product := func(name string) []string {
		a, ok := pipeline.FindArtifact(p, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return columns(t, artifactBytes(t, store, a.Digest))
	}
	for _, name := range []string{AssociationsProduct, RelationsProduct} {
		want, err := os.ReadFile(filepath.Join(vast, "expected", "basic-association", name))
		if err != nil {
			t.Fatal(err)
		}
		if g, w := product(name), columns(t, want); !slices.Equal(g, w) {
			t.Errorf("%s columns\n got %v\nwant %v", name, g, w)
		}
	}

	old, err := os.ReadFile(filepath.Join(vast, "expected", "basic-association", SourcesProduct))
	if err != nil {
		t.Fatal(err)
	}
	oldTypes := map[string]string{}
	for _, c := range columns(t, old) {
		name, typ, _ := strings.Cut(c, " ")
		oldTypes[name] = typ
	}
	header := csvHeader(t, filepath.Join(vast, "expected", "current-vast", "basic-r15", "sources.csv"))
	header = append(slices.DeleteFunc(header, func(c string) bool { return c == "id" }), "id")
	var want []string
	for _, c := range header {
		typ, ok := oldTypes[c]
		if !ok {
			typ = "DOUBLE"
		}
		want = append(want, c+" "+typ)
	}
	if g := product(SourcesProduct); !slices.Equal(g, want) {
		t.Errorf("%s columns\n got %v\nwant %v", SourcesProduct, g, want)
	}

	want = nil
	for _, c := range csvHeader(t, filepath.Join(vast, "expected", "current-vast", "basic-r15", "measurement_pairs.csv")) {
		switch {
		case strings.HasPrefix(c, "meas_id_") || c == "source_id":
			want = append(want, c+" INT64 INT(64,true)")
		case strings.HasPrefix(c, "image_name_"):
			want = append(want, c+" BYTE_ARRAY STRING")
		default:
			want = append(want, c+" FLOAT")
		}
	}
	if g := product(MeasurementPairsProduct); !slices.Equal(g, want) {
		t.Errorf("%s columns\n got %v\nwant %v", MeasurementPairsProduct, g, want)
	}
}

// csvHeader is the first line of a CSV file.
func csvHeader(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := csv.NewReader(f).Read()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return h
}
