package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piperun/piperun/artifacts"
)

// TestArtifactsSweep stores a file no run uses in a data directory, makes
// it two days old, and sweeps: it goes; a young one stays; a bad --grace is
// a usage error.
func TestArtifactsSweep(t *testing.T) {
	dir := t.TempDir()
	arts, err := artifacts.New(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := arts.Put(context.Background(), strings.NewReader("abandoned"))
	if err != nil {
		t.Fatal(err)
	}
	young, _, err := arts.Put(context.Background(), strings.NewReader("just written"))
	if err != nil {
		t.Fatal(err)
	}
	h := strings.TrimPrefix(old, "sha256:")
	then := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "artifacts", "sha256", h[:2], h[2:]), then, then); err != nil {
		t.Fatal(err)
	}
	r := piperun(t, "", "artifacts", "sweep", "--data-dir", dir)
	if r.code != ExitOK || !strings.Contains(r.stdout, "deleted 1 that no run uses") {
		t.Fatalf("artifacts sweep: %s", r)
	}
	if ok, _ := arts.Has(old); ok {
		t.Error("the abandoned file is still there")
	}
	if ok, _ := arts.Has(young); !ok {
		t.Error("the young file was deleted")
	}
	if r := piperun(t, "", "artifacts", "sweep", "--data-dir", dir, "--grace", "-1h"); r.code != ExitUsage || !strings.Contains(r.stderr, "--grace") {
		t.Fatalf("artifacts sweep --grace -1h: %s", r)
	}
}
