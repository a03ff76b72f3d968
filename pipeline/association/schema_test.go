package association

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
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
// reading VAST runs read ours (pandas' index column aside).
func TestProductSchemasMatchVAST(t *testing.T) {
	vast := vastdata.VASTDir(t)
	store := newStore(t)
	p := processVAST(t, store, expectedConfig(t, vast, "01", "02"), Associator{})
	for _, name := range []string{SourcesProduct, AssociationsProduct, RelationsProduct} {
		a, ok := pipeline.FindArtifact(p, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		want, err := os.ReadFile(filepath.Join(vast, "expected", "basic-association", name))
		if err != nil {
			t.Fatal(err)
		}
		if g, w := columns(t, artifactBytes(t, store, a.Digest)), columns(t, want); !slices.Equal(g, w) {
			t.Errorf("%s columns\n got %v\nwant %v", name, g, w)
		}
	}

}
